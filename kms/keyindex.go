package kms

import (
	"context"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/keystore"
)

// Key indexes (issue 26.2). Four questions used to be answered by reading
// every key or every alias of the store: which keys the maintenance loop
// must act on now (a scan and a decode of every key record, every
// interval), which keys live in a custom key store (a scan of every key),
// which aliases name a key (a scan of every alias of the account, in
// CreateAlias's per-key limit, in kms:ResourceAliases, in ListAliases with
// KeyId and in the deletion of a key), and how many keys of an account are
// in each state (GetStatus: a scan and a decode of every key of every
// account). Each now has an index, written in the transaction that writes
// the key or the alias:
//
//	keys-due        <region>/<due at>|<key id>       → empty
//	key-due-of      <region>/<key id>                → the key's keys-due name
//	keys-by-store   <region>/<store id>/<key id>     → empty
//	aliases-by-key  <account>/<region>/<key id>/<alias name> → empty
//	keys-by-account <account>/<region>/<key id>      → the key's state
//
// <due at> is dueAt(r) in a fixed-width UTC form (dueLayout), so that byte
// order is time order and the loop reads the due prefix of the index and
// stops. keys-by-account is one entry a key rather than a counter an
// (account, Region, state): a counter would be a row every write of every
// key of the account conflicts on (PostgreSQL's SERIALIZABLE retries), and
// keeping it needs the key's old state, which is that entry anyway.
//
// A store from before the indexes has none: the first maintenance run of a
// Region builds them, indexBuildBatch records to a transaction, and sets
// meta/key-indexes/<region> to keyIndexesVersion; until then every reader
// scans as before. A store whose entry is "1" (built before
// keys-by-account) has the other three: the build then indexes the keys
// again (indexKeyTx changes nothing it finds right) and not the aliases.
const (
	bucketKeysDue       = "keys-due"
	bucketKeyDueOf      = "key-due-of"
	bucketKeysByStore   = "keys-by-store"
	bucketAliasesByKey  = "aliases-by-key"
	bucketKeysByAccount = "keys-by-account"
)

// keyIndexesVersion is the value of meta/key-indexes/<region> once every
// index above is built; "1" said so of all but keys-by-account.
const keyIndexesVersion = "2"

// dueLayout is time.RFC3339Nano with a fixed number of digits: byte order
// is time order.
const dueLayout = "2006-01-02T15:04:05.000000000Z"

// dueAt is the earliest instant at which the maintenance loop has work on
// r (maintenanceWork), and false when it never will as r stands: every
// kind of work is a condition on r and an instant, so that
// maintenanceWork(r, now) != none exactly when dueAt(r) <= now.
func dueAt(r *keyRecord) (time.Time, bool) {
	var at time.Time
	ok := false
	consider := func(cond bool, t time.Time) {
		if cond && (!ok || t.Before(at)) {
			at, ok = t, true
		}
	}
	consider(r.State == StatePendingDeletion, r.DeletionDate)
	if r.Origin == OriginExternal { // each imported material's own expiry (expiredMaterial)
		expires := func(v *keyVersion) {
			consider(len(v.Wrapped) > 0 && v.ExpirationModel == ExpirationExpires && !v.ValidTo.IsZero(), v.ValidTo)
		}
		for i := range r.Versions {
			expires(&r.Versions[i])
		}
		if r.PendingMaterial != nil {
			expires(r.PendingMaterial)
		}
	}
	consider(r.State == StateEnabled && r.RotationEnabled, r.NextRotation)
	return at, ok
}

// maintenance work on a key, in the order the loop prefers them.
type work uint8

const (
	workNone work = iota
	workDelete
	workExpire
	workRotate
)

// maintenanceWork is what the loop must do to r at now.
func maintenanceWork(r *keyRecord, now time.Time) work {
	switch {
	case r.State == StatePendingDeletion && !now.Before(r.DeletionDate):
		return workDelete
	case materialExpired(r, now):
		return workExpire
	case rotationDue(r, now):
		return workRotate
	}
	return workNone
}

func dueName(r *keyRecord) string {
	at, ok := dueAt(r)
	if !ok {
		return ""
	}
	return at.UTC().Format(dueLayout) + "|" + r.ID
}

func storeIndexName(storeID, keyID string) string { return storeID + "/" + keyID }

func aliasIndexName(account, keyID, alias string) string {
	return account + "/" + keyID + "/" + alias
}

func accountIndexName(account, keyID string) string { return account + "/" + keyID }

// indexKeyTx brings r's index entries up to date; it is called with every
// write of a key record (putKeyTx).
func indexKeyTx(tx keystore.Tx, r *keyRecord) error {
	if r.CustomKeyStoreID != "" { // a key never changes store
		if err := tx.Put(bucketKeysByStore, storeIndexName(r.CustomKeyStoreID, r.ID), []byte{}); err != nil {
			return err
		}
	}
	name := accountIndexName(r.Account, r.ID)
	state, err := tx.Get(bucketKeysByAccount, name)
	if err != nil {
		return err
	}
	if state == nil || string(state) != r.State {
		if err := tx.Put(bucketKeysByAccount, name, []byte(r.State)); err != nil {
			return err
		}
	}
	old, err := tx.Get(bucketKeyDueOf, r.ID)
	if err != nil {
		return err
	}
	want := dueName(r)
	if string(old) == want && (old != nil || want == "") {
		return nil
	}
	if old != nil {
		if err := tx.Delete(bucketKeysDue, string(old)); err != nil {
			return err
		}
	}
	if want == "" {
		return tx.Delete(bucketKeyDueOf, r.ID)
	}
	if err := tx.Put(bucketKeysDue, want, []byte{}); err != nil {
		return err
	}
	return tx.Put(bucketKeyDueOf, r.ID, []byte(want))
}

// unindexKeyTx removes the entries of r, which is being deleted.
func unindexKeyTx(tx keystore.Tx, r *keyRecord) error {
	if err := tx.Delete(bucketKeysByAccount, accountIndexName(r.Account, r.ID)); err != nil {
		return err
	}
	if r.CustomKeyStoreID != "" {
		if err := tx.Delete(bucketKeysByStore, storeIndexName(r.CustomKeyStoreID, r.ID)); err != nil {
			return err
		}
	}
	old, err := tx.Get(bucketKeyDueOf, r.ID)
	if err != nil || old == nil {
		return err
	}
	if err := tx.Delete(bucketKeysDue, string(old)); err != nil {
		return err
	}
	return tx.Delete(bucketKeyDueOf, r.ID)
}

// indexAliasTx adds a's entry and drops the one of the key it named before
// (UpdateAlias), read from the store: it is called before a is written
// (putAliasTx).
func indexAliasTx(tx keystore.Tx, a *aliasRecord) error {
	old, err := getAliasTx(tx, a.Account, a.Name)
	if err != nil {
		return err
	}
	if old != nil && old.Target != a.Target {
		if err := tx.Delete(bucketAliasesByKey, aliasIndexName(old.Account, old.Target, old.Name)); err != nil {
			return err
		}
	}
	return tx.Put(bucketAliasesByKey, aliasIndexName(a.Account, a.Target, a.Name), []byte{})
}

// deleteAliasTx deletes alias a with its index entry.
func deleteAliasTx(tx keystore.Tx, a *aliasRecord) error {
	if err := tx.Delete(bucketAliasesByKey, aliasIndexName(a.Account, a.Target, a.Name)); err != nil {
		return err
	}
	return tx.Delete(bucketAliases, aliasStoreKey(a.Account, a.Name))
}

// keyIndexesMeta is the meta entry saying the Region's key indexes are built.
func (s *Service) keyIndexesMeta() string { return "key-indexes/" + s.region }

// keyIndexesBuilt reports whether the Region's keys-due, key-due-of,
// keys-by-store and aliases-by-key indexes exist (whatever the entry's
// version).
func (s *Service) keyIndexesBuilt(tx keystore.Tx) (bool, error) {
	if s.keyIdx.Load() {
		return true, nil
	}
	v, err := tx.Get(bucketMeta, s.keyIndexesMeta())
	if v != nil {
		s.keyIdx.Store(true) // never unset: nothing deletes the entry
		if string(v) == keyIndexesVersion {
			s.acctIdx.Store(true)
		}
	}
	return v != nil, err
}

// accountIndexBuilt reports whether the Region's keys-by-account index
// exists (the entry is at keyIndexesVersion).
func (s *Service) accountIndexBuilt(tx keystore.Tx) (bool, error) {
	if s.acctIdx.Load() {
		return true, nil
	}
	v, err := tx.Get(bucketMeta, s.keyIndexesMeta())
	if string(v) == keyIndexesVersion {
		s.keyIdx.Store(true)
		s.acctIdx.Store(true) // never unset: the version only grows
		return true, err
	}
	return false, err
}

// indexBuildBatch is how many keys, or aliases, one transaction of
// ensureKeyIndexes indexes.
const indexBuildBatch = 1000

// ensureKeyIndexes builds the Region's key indexes, once: it reads every
// key and alias of the Region (the one full scan left, in the first
// maintenance run of a store that predates them), indexBuildBatch records
// to a transaction, then sets meta/key-indexes/<region>. Batches keep each
// transaction within the store's bound (on PostgreSQL one transaction over
// 100 000 keys outlived --postgres-timeout, failed, and was begun again at
// every start and every maintenance run, holding the write lock): every
// write indexes what it writes (putKeyTx, putAliasTx), so what changes
// between batches is indexed by its writer, and indexKeyTx is idempotent.
func (s *Service) ensureKeyIndexes(ctx context.Context) error {
	if s.acctIdx.Load() {
		return nil
	}
	var built, aliasesBuilt bool
	if err := s.store.View(ctx, func(tx keystore.Tx) error {
		var err error
		if aliasesBuilt, err = s.keyIndexesBuilt(tx); err != nil {
			return err
		}
		built, err = s.accountIndexBuilt(tx)
		return err
	}); err != nil || built {
		return err
	}
	// Aliases are stored by account: the accounts are those of the keys,
	// which an alias can only name in its own account.
	accounts := map[string]bool{}
	batch := func(fn func(tx keystore.Tx) (int, error)) (int, error) {
		var n int
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
		err := s.store.Update(ctx, func(tx keystore.Tx) error {
			var err error
			n, err = fn(tx)
			return err
		})
		return n, err
	}
	for after := ""; ; {
		var last string
		n, err := batch(func(tx keystore.Tx) (int, error) {
			n := 0
			last = ""
			var failed error
			err := tx.Scan(bucketKeys, "", after, func(id string, raw []byte) bool {
				n, last = n+1, id
				if r, err := decodeKey(id, raw); err == nil { // a record that does not decode is no one's to maintain
					accounts[r.Account] = true
					failed = indexKeyTx(tx, r)
				}
				return failed == nil && n < indexBuildBatch
			})
			if err == nil {
				err = failed
			}
			return n, err
		})
		if err != nil {
			return err
		}
		if n < indexBuildBatch {
			break
		}
		after = last
	}
	if aliasesBuilt { // an entry at "1": the alias index is complete
		clear(accounts)
	}
	for account := range accounts {
		for after := ""; ; {
			var last string
			n, err := batch(func(tx keystore.Tx) (int, error) {
				var aliases []*aliasRecord
				if err := scanAliases(tx, account, after, func(a *aliasRecord) bool {
					aliases = append(aliases, a)
					return len(aliases) < indexBuildBatch
				}); err != nil {
					return 0, err
				}
				last = ""
				for _, a := range aliases {
					if err := tx.Put(bucketAliasesByKey, aliasIndexName(a.Account, a.Target, a.Name), []byte{}); err != nil {
						return 0, err
					}
					last = a.Name
				}
				return len(aliases), nil
			})
			if err != nil {
				return err
			}
			if n < indexBuildBatch {
				break
			}
			after = last
		}
	}
	err := s.store.Update(ctx, func(tx keystore.Tx) error {
		return tx.Put(bucketMeta, s.keyIndexesMeta(), []byte(keyIndexesVersion))
	})
	if err == nil {
		s.keyIdx.Store(true)
		s.acctIdx.Store(true)
	}
	return err
}

// scanAliasesOf calls fn with the name of each alias of account that
// names key keyID, in name order after after, until fn returns false.
func (s *Service) scanAliasesOf(tx keystore.Tx, account, keyID, after string, fn func(name string) bool) error {
	built, err := s.keyIndexesBuilt(tx)
	if err != nil {
		return err
	}
	if !built {
		return scanAliases(tx, account, after, func(a *aliasRecord) bool {
			if a.Target != keyID {
				return true
			}
			return fn(a.Name)
		})
	}
	prefix := aliasIndexName(account, keyID, "")
	if after != "" {
		after = prefix + after
	}
	return tx.Scan(bucketAliasesByKey, prefix, after, func(name string, _ []byte) bool {
		return fn(strings.TrimPrefix(name, prefix))
	})
}

// maintenanceBatch bounds the keys a maintenance run holds at once.
const maintenanceBatch = 1000

// dueKeys returns up to maintenanceBatch keys with work at now, with the
// work, after the index entry after (""), and the entry to continue from;
// more is false when there are no further due entries.
func (s *Service) dueKeys(ctx context.Context, now time.Time, after string) (ids []string, kinds []work, next string, more bool, err error) {
	limit := now.UTC().Format(dueLayout) + "|\xff"
	err = s.store.View(ctx, func(tx keystore.Tx) error {
		ids, kinds, next, more = ids[:0], kinds[:0], after, false
		var failed error
		err := tx.Scan(bucketKeysDue, "", after, func(name string, _ []byte) bool {
			if name > limit {
				return false
			}
			if len(ids) == maintenanceBatch {
				more = true
				return false
			}
			next = name
			_, id, _ := strings.Cut(name, "|")
			r, err := getKeyTx(tx, id)
			if err != nil || r == nil {
				failed = err
				return err == nil
			}
			if w := maintenanceWork(r, now); w != workNone {
				ids, kinds = append(ids, id), append(kinds, w)
			}
			return true
		})
		if err == nil {
			err = failed
		}
		return err
	})
	return ids, kinds, next, more, err
}
