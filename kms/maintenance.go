package kms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/coffer-kms/coffer/keystore"
)

// RunMaintenance performs the work that time makes due: it rotates keys
// whose automatic rotation date has passed and deletes keys (with their
// aliases) whose deletion window has ended. It reports how many of each.
func (s *Service) RunMaintenance(ctx context.Context) (rotated, deleted int, err error) {
	defer s.maint.note(time.Now(), &rotated, &deleted, &err)
	now := s.now()
	if err := s.ensureKeyIndexes(ctx); err != nil {
		return 0, 0, err
	}
	// The due keys come from the keys-due index (keyindex.go) in batches,
	// each done before the next is read: the work is proportional to what
	// is due, and the memory to a batch, whatever the number of keys.
	for after := ""; ; {
		ids, kinds, next, more, err := s.dueKeys(ctx, now, after)
		if err != nil {
			return rotated, deleted, err
		}
		r, d, err := s.maintainBatch(ctx, now, ids, kinds)
		rotated, deleted = rotated+r, deleted+d
		if err != nil || !more {
			if err == nil {
				err = s.sweepImportTokens(ctx, now)
			}
			return rotated, deleted, err
		}
		after = next
	}
}

// maintainBatch does the work kinds[i] on key ids[i]: expiries first, then
// deletions, then rotations.
func (s *Service) maintainBatch(ctx context.Context, now time.Time, ids []string, kinds []work) (rotated, deleted int, err error) {
	var dueRotate, dueDelete, dueExpire []string
	for i, id := range ids {
		switch kinds[i] {
		case workDelete:
			dueDelete = append(dueDelete, id)
		case workExpire:
			dueExpire = append(dueExpire, id)
		case workRotate:
			dueRotate = append(dueRotate, id)
		}
	}
	// Imported material whose ValidTo has passed is deleted (import.go);
	// import tokens past their 24 hours go at the end of the run.
	for _, id := range dueExpire {
		if err := s.expireMaterial(ctx, id, now); err != nil {
			return rotated, deleted, err
		}
	}
	for _, id := range dueDelete {
		if err := s.deleteKey(ctx, id, now); err != nil {
			return rotated, deleted, err
		}
		deleted++
	}
	// Each key is checked again inside its rotation's transaction: it may
	// have changed since the scan.
	for _, id := range dueRotate {
		_, done, err := s.rotate(ctx, id, rotationAutomatic)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since the scan
		}
		if err != nil {
			return rotated, deleted, err
		}
		if done {
			rotated++
		}
	}
	return rotated, deleted, nil
}

// deleteKey removes a key whose deletion window has passed, and its aliases.
// A multi-Region replica goes with its family's records (deleteReplica).
func (s *Service) deleteKey(ctx context.Context, id string, now time.Time) error {
	var (
		hsmKey, account string
		deletedAliases  []string
	)
	ctx, event, err := s.serviceEventContext(ctx, "DeleteKey")
	if err != nil {
		return err
	}
	if r, err := s.loadKey(ctx, id); err != nil {
		return err
	} else if r != nil && r.isReplica() {
		if done, err := s.deleteReplica(ctx, r, now, event); done || err != nil {
			return err
		}
	}
	_, err = s.updateKey(ctx, id, func(tx keystore.Tx, r *keyRecord) (*keyRecord, error) {
		hsmKey, deletedAliases = "", nil // fn may run more than once
		event.on(nil)
		if r.State != StatePendingDeletion || now.Before(r.DeletionDate) {
			return r, nil // cancelled meanwhile
		}
		event.on(r)
		if r.CustomKeyStoreID != "" {
			hsmKey = r.Versions[0].HSMKey
		}
		names, err := s.deleteKeyDataTx(tx, r)
		if err != nil {
			return nil, err
		}
		deletedAliases, account = names, r.Account
		return nil, nil
	})
	s.cache.invalidate(cacheGrants, id)
	for _, n := range deletedAliases {
		s.cache.invalidate(cacheAlias, aliasStoreKey(account, n))
	}
	if err == nil && hsmKey != "" {
		// The record is gone for good; now the HSM object may go too.
		s.destroyStoreKey(ctx, hsmKey)
	}
	if err == errKeyGone {
		return nil
	}
	return err
}

// deleteKeyDataTx deletes, in tx, what goes with key r besides its record:
// its aliases (whose names it returns), its last use and its grants.
func (s *Service) deleteKeyDataTx(tx keystore.Tx, r *keyRecord) ([]string, error) {
	var names []string
	err := s.scanAliasesOf(tx, r.Account, r.ID, "", func(name string) bool {
		names = append(names, name)
		return true
	})
	if err != nil {
		return nil, err
	}
	for _, n := range names { // with its aliases-by-key entry (keyindex.go)
		if err := deleteAliasTx(tx, &aliasRecord{Account: r.Account, Name: n, Target: r.ID}); err != nil {
			return nil, err
		}
	}
	if err := tx.Delete(bucketLastUsage, r.ID); err != nil {
		return nil, err
	}
	if err := s.deleteKeyGrantsTx(tx, r.ID); err != nil { // with their indexes (grants.go)
		return nil, err
	}
	return names, nil
}

// MaintenanceLock starts the name of the cluster-wide lock
// (keystore.Locker) under which Run calls RunMaintenance:
// "maintenance/<region>", so that each Region's maintenance runs on one
// node at a time and Services of several Regions do not exclude each other.
const MaintenanceLock = "maintenance"

// maintainOnce runs RunMaintenance under the store's MaintenanceLock when
// the store is a keystore.Locker (PostgreSQL: one node of the cluster at a
// time); ran is false when another node holds it. The lock only saves
// duplicated work: every item is re-checked and done in its own store
// transaction (SERIALIZABLE on PostgreSQL), so two nodes that both run
// (a lock lost with its connection) still do each item once, and a node
// that dies mid-run leaves each item either done or not started — the
// next run, on any node, finds what is still due.
func (s *Service) maintainOnce(ctx context.Context) (rotated, deleted int, ran bool, err error) {
	unlock, ok, err := s.tryLock(ctx, MaintenanceLock+"/"+s.region)
	if err != nil {
		return 0, 0, false, fmt.Errorf("kms: take the maintenance lock: %w", err)
	}
	if !ok {
		return 0, 0, false, nil
	}
	defer unlock()
	rotated, deleted, err = s.RunMaintenance(ctx)
	return rotated, deleted, true, err
}

// tryLock takes the store's cluster-wide lock name when the store is a
// keystore.Locker; a store without locks is one process's: ok.
func (s *Service) tryLock(ctx context.Context, name string) (unlock func(), ok bool, err error) {
	var base keystore.Store = s.store
	if r, ok := base.(*records); ok {
		base = r.store
	}
	if l, ok := base.(keystore.Locker); ok {
		return l.TryLock(ctx, name)
	}
	return func() {}, true, nil
}

// Run calls RunMaintenance every interval until ctx ends, under the
// store's cluster-wide maintenance lock when it has one (maintainOnce);
// usage counters and the audit outbox, which are this node's, are flushed
// whether or not it holds the lock.
func (s *Service) Run(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.FlushUsage(ctx); err != nil && ctx.Err() == nil {
			log.Error("usage flush failed", "err", err)
		}
		if err := s.FlushOutbox(ctx); err != nil && ctx.Err() == nil {
			log.Error("audit outbox flush failed", "err", err)
		}
		if r, d, ran, err := s.maintainOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Error("key maintenance failed", "err", err)
		} else if !ran {
			log.Debug("key maintenance skipped: another node holds the maintenance lock")
		} else if r+d > 0 {
			log.Info("key maintenance", "rotated", r, "deleted", d)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
