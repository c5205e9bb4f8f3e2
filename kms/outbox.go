package kms

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/engine"
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
		if err != nil || rec == nil { // nil: the transaction changed nothing to record
			return err
		}
		return tx.Put(bucketOutbox, p.PendingID(), rec)
	}, p
}

// outboxDrain collects request IDs whose records reached the trail, for
// one background transaction to delete many at once.
type outboxDrain struct {
	mu      sync.Mutex
	ids     []string
	barrier func(context.Context) error // see SetOutboxBarrier; nil: none
}

// SetOutboxBarrier makes FlushOutbox and DrainAudit call barrier before
// they delete entries, and delete nothing when it fails: a transport whose
// trail acknowledges records before they are durable (audit.Config's
// SyncInterval) passes the trail's Sync, which returns once every record
// acknowledged so far is durable, so that no entry goes before its record
// is durable. Set it before the service runs.
func (s *Service) SetOutboxBarrier(barrier func(context.Context) error) {
	s.drain.mu.Lock()
	s.drain.barrier = barrier
	s.drain.mu.Unlock()
}

func (s *Service) outboxBarrier(ctx context.Context) error {
	s.drain.mu.Lock()
	b := s.drain.barrier
	s.drain.mu.Unlock()
	if b == nil {
		return nil
	}
	return b(ctx)
}

// AuditDrained reports that the record of request id is in the trail
// (durable, or durable once the outbox barrier returns): its outbox entry,
// if the call left one, may go.
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
	err := s.outboxBarrier(ctx) // the records of ids are durable after it
	if err == nil {
		err = s.store.Update(ctx, func(tx keystore.Tx) error {
			for _, id := range ids {
				if err := tx.Delete(bucketOutbox, id); err != nil {
					return err
				}
			}
			return nil
		})
	}
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

// DrainAudit deletes the outbox entry of request id now (after the outbox
// barrier).
func (s *Service) DrainAudit(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("kms: empty request ID")
	}
	if err := s.outboxBarrier(ctx); err != nil {
		return err
	}
	return s.store.Update(ctx, func(tx keystore.Tx) error { return tx.Delete(bucketOutbox, id) })
}

// ServiceEventPrefix starts the outbox name of a change the service makes
// by itself — automatic rotation, deletion at the end of a waiting period —
// whose record no call writes: the transport appends such entries to the
// trail as it finds them (server's RunServiceEvents) and drains them.
const ServiceEventPrefix = "svc-"

// serviceEvent is the PendingAudit of a service event: CloudTrail's
// AwsServiceEvent, made by KMS itself. Its key is known only inside the
// transaction (fn sets it); a transaction that changes nothing clears it.
type serviceEvent struct {
	s         *Service
	id, name  string
	at        time.Time
	arn, acct string // set by the transaction's function; "" for no change
}

func (e *serviceEvent) PendingID() string { return e.id }

func (e *serviceEvent) PendingRecord() ([]byte, error) {
	if e.arn == "" {
		return nil, nil
	}
	r := audit.Record{
		EventVersion:       audit.EventVersion,
		UserIdentity:       audit.UserIdentity{Type: "AWSService", PrincipalID: audit.EventSource, AccountID: e.acct},
		EventTime:          e.at.UTC().Format(time.RFC3339),
		EventSource:        audit.EventSource,
		EventName:          e.name,
		AWSRegion:          e.s.region,
		RequestID:          e.id,
		EventID:            e.id[len(ServiceEventPrefix):],
		EventType:          audit.EventTypeServiceEvent,
		Resources:          []audit.Resource{{ARN: e.arn, Type: audit.ResourceTypeKey, AccountID: e.acct}},
		RecipientAccountID: e.acct,
	}
	return r.AppendJSON(nil)
}

func (e *serviceEvent) Committed() {}

// serviceEventContext returns ctx carrying a new service event name; set
// its key with event.on(r) inside the transaction that makes the change.
func (s *Service) serviceEventContext(ctx context.Context, name string) (context.Context, *serviceEvent, error) {
	raw, err := s.randomBytes(16)
	if err != nil {
		return nil, nil, err
	}
	raw[6] = raw[6]&0x0f | 0x40
	raw[8] = raw[8]&0x3f | 0x80
	e := &serviceEvent{s: s, id: ServiceEventPrefix + formatKeyID(engine.KeyID(raw)), name: name, at: s.now()}
	return context.WithValue(ctx, PendingAuditKey, PendingAudit(e)), e, nil
}

// on records that the event changes key r (nil: it changes nothing).
func (e *serviceEvent) on(r *keyRecord) {
	e.arn, e.acct = "", ""
	if r != nil {
		e.arn, e.acct = r.arn(), r.Account
	}
}
