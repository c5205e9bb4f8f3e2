package kms

import (
	"context"
	"errors"
	"sync"

	"github.com/coffer-kms/coffer/keystore"
)

// The audit outbox: a change and its audit record commit together.
//
// A transport that audits a call that may change state puts a PendingAudit
// in the call's context (PendingAuditKey). Every store transaction the call
// commits also puts the pending record in bucketOutbox, under the call's
// request ID, in the same transaction: no change is durable without a
// durable record of the call that made it. Once the transport's own record
// of the call is durable in the trail, it reports the request ID drained
// (AuditDrained) and the entry is deleted in the background. An entry found
// at start (a crash between the commit and the trail, or before the delete)
// is the transport's to reconcile with its trail: PendingAudits lists them,
// DrainAudit deletes one once it is in the trail.
//
// Invariant (DESIGN.md): a change exists in the store only if the record of
// the call that made it is in the trail or in the outbox.

// PendingAuditKey is the context key of a call's PendingAudit.
var PendingAuditKey = pendingAuditKey{}

type pendingAuditKey struct{}

// PendingAudit is the audit record of a call in progress, as the transport
// would write it if the call's changes commit.
type PendingAudit interface {
	// PendingID is the call's request ID: the outbox entry's name.
	PendingID() string
	// PendingRecord is the record to keep with the change. It is called
	// inside the store transaction, possibly more than once.
	PendingRecord() ([]byte, error)
	// Committed is called after a transaction that holds the record has
	// committed: from then on the record must reach the trail.
	Committed()
}

func pendingAudit(ctx context.Context) PendingAudit {
	p, _ := ctx.Value(PendingAuditKey).(PendingAudit)
	return p
}

// withOutbox wraps fn, a transaction's function, so that it also puts the
// pending record of ctx's call (if any) in the outbox.
func withOutbox(ctx context.Context, fn func(keystore.Tx) error) (func(keystore.Tx) error, PendingAudit) {
	p := pendingAudit(ctx)
	if p == nil {
		return fn, nil
	}
	return func(tx keystore.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		rec, err := p.PendingRecord()
		if err != nil {
			return err
		}
		return tx.Put(bucketOutbox, p.PendingID(), rec)
	}, p
}

// outboxDrain collects request IDs whose records reached the trail, for
// one background transaction to delete many at once.
type outboxDrain struct {
	mu  sync.Mutex
	ids []string
}

// AuditDrained reports that the record of request id is durable in the
// trail: its outbox entry, if the call left one, may go.
func (s *Service) AuditDrained(id string) {
	s.drain.mu.Lock()
	s.drain.ids = append(s.drain.ids, id)
	s.drain.mu.Unlock()
}

// FlushOutbox deletes the outbox entries of drained calls, in one
// transaction; the service's maintenance and Close call it.
func (s *Service) FlushOutbox(ctx context.Context) error {
	s.drain.mu.Lock()
	ids := s.drain.ids
	s.drain.ids = nil
	s.drain.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	err := s.store.Update(ctx, func(tx keystore.Tx) error {
		for _, id := range ids {
			if err := tx.Delete(bucketOutbox, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.drain.mu.Lock()
		s.drain.ids = append(s.drain.ids, ids...) // tried again next time
		s.drain.mu.Unlock()
	}
	return err
}

// PendingEntry is an outbox entry found at start.
type PendingEntry struct {
	ID     string // the request ID
	Record []byte // the record PendingAudit gave
}

// PendingAudits lists the outbox: records of committed changes that may not
// have reached the trail.
func (s *Service) PendingAudits(ctx context.Context) ([]PendingEntry, error) {
	var out []PendingEntry
	err := s.store.View(ctx, func(tx keystore.Tx) error {
		out = out[:0]
		return tx.Scan(bucketOutbox, "", "", func(id string, raw []byte) bool {
			out = append(out, PendingEntry{ID: id, Record: raw})
			return true
		})
	})
	return out, err
}

// DrainAudit deletes the outbox entry of request id now.
func (s *Service) DrainAudit(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("kms: empty request ID")
	}
	return s.store.Update(ctx, func(tx keystore.Tx) error { return tx.Delete(bucketOutbox, id) })
}
