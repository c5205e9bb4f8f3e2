package kms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
	// PendingID is the call's request ID: the outbox entry's name, after
	// its owner's (PendingOwner).
	PendingID() string
	// PendingOwner is the node ID (Config.NodeID) of the node whose trail
	// the record is bound for; "" on a store with one node.
	PendingOwner() string
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
		return tx.Put(bucketOutbox, outboxName(p.PendingOwner(), p.PendingID()), rec)
	}, p
}

// outboxName is the outbox entry name of request id owned by node:
// "<node>/<id>", or "<id>" for no node (a store with one node, and every
// entry of a release before owners).
func outboxName(node, id string) string {
	if node == "" {
		return id
	}
	return node + "/" + id
}

// splitOutboxName undoes outboxName; request IDs hold no '/'.
func splitOutboxName(name string) (node, id string) {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i], name[i+1:]
	}
	return "", name
}

// NodeID is the node's ID, Config.NodeID.
func (s *Service) NodeID() string { return s.node }

// metaNodeAlive is the meta entry, "node-alive/<node ID>", where a node
// with an ID writes the time at each FlushOutbox (every second from the
// server's service-event loop): another node takes over its outbox
// entries only once that time is older than the take-over bound.
const metaNodeAlive = "node-alive/"

// putAlive records in tx that node is alive at t (metaNodeAlive).
func putAlive(tx keystore.Tx, node string, t time.Time) error {
	return tx.Put(bucketMeta, metaNodeAlive+node, []byte(t.UTC().Format(time.RFC3339Nano)))
}

// aliveAt reads when node last recorded it was alive; false when it never
// did (or the entry does not read as a time).
func aliveAt(tx keystore.Tx, node string) (time.Time, bool, error) {
	raw, err := tx.Get(bucketMeta, metaNodeAlive+node)
	if err != nil || raw == nil {
		return time.Time{}, false, err
	}
	t, perr := time.Parse(time.RFC3339Nano, string(raw))
	return t, perr == nil, nil
}

// CheckNodeID refuses to start a node whose ID another running node
// already uses — a data directory copied with its node-id file — which
// would make the two take each other's outbox entries for their own. A
// node with an ID writes its node-alive time about every second; when that
// time is fresh, CheckNodeID waits wait and reads it again: written anew
// meanwhile, before this node has written anything, it is another node's
// (a node restarted within seconds of its last write finds it unchanged).
// Call it before the node's first FlushOutbox, Close or OwnAuditsPage,
// which write this node's time. Best effort: a node that shows no life in
// wait is not found.
func (s *Service) CheckNodeID(ctx context.Context, wait time.Duration) error {
	if s.node == "" {
		return nil
	}
	read := func() (t time.Time, ok bool, err error) {
		err = s.store.View(ctx, func(tx keystore.Tx) error {
			t, ok, err = aliveAt(tx, s.node)
			return err
		})
		return t, ok, err
	}
	before, ok, err := read()
	if err != nil || !ok || time.Since(before) > 2*wait {
		return err // no node has shown life under this ID for a while
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(wait):
	}
	after, _, err := read()
	if err != nil {
		return err
	}
	if !after.Equal(before) {
		return fmt.Errorf("another running node uses node ID %s (it wrote its node-alive time in the last %v): was this data directory copied from it? Give one of them a new ID by removing its node-id file", s.node, wait)
	}
	return nil
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
// transaction; the service's maintenance and Close call it, and so does
// the server's service-event loop every second on a node with an ID,
// where the same transaction records that the node is alive
// (metaNodeAlive).
func (s *Service) FlushOutbox(ctx context.Context) error {
	s.drain.mu.Lock()
	ids := s.drain.ids
	s.drain.ids = nil
	s.drain.mu.Unlock()
	if len(ids) == 0 && s.node == "" {
		return nil
	}
	var err error
	if len(ids) > 0 {
		err = s.outboxBarrier(ctx) // the records of ids are durable after it
	}
	if err == nil {
		err = s.store.Update(ctx, func(tx keystore.Tx) error {
			for _, id := range ids {
				if err := tx.Delete(bucketOutbox, outboxName(s.node, id)); err != nil {
					return err
				}
			}
			if s.node == "" {
				return nil
			}
			return putAlive(tx, s.node, s.now())
		})
	}
	if err != nil {
		s.drain.mu.Lock()
		s.drain.ids = append(s.drain.ids, ids...) // tried again next time
		s.drain.mu.Unlock()
	}
	return err
}

// PendingEntry is an outbox entry.
type PendingEntry struct {
	ID     string // the request ID
	Node   string // its owner's node ID; "" for none
	Record []byte // the record PendingAudit gave
	// From is, for an entry ClaimAudits took over, the node ID it was
	// taken from ("" for an entry without owner).
	From string
}

// PendingAudits lists the outbox: records of committed changes that may not
// have reached the trail, of every node.
func (s *Service) PendingAudits(ctx context.Context) ([]PendingEntry, error) {
	var out []PendingEntry
	err := s.store.View(ctx, func(tx keystore.Tx) error {
		out = out[:0]
		return tx.Scan(bucketOutbox, "", "", func(name string, raw []byte) bool {
			node, id := splitOutboxName(name)
			out = append(out, PendingEntry{ID: id, Node: node, Record: raw})
			return true
		})
	})
	return out, err
}

// OwnAuditsPage lists this node's outbox entries (on a store with one
// node, all of them), for the reconciliation at start, a page at a time so
// that its memory does not grow with the backlog (a million keys made by
// BulkCreateKeys leave a million entries): up to limit entries whose names
// sort after after ("" from the first), and the name to continue after,
// "" when there are no more. Entries deleted between pages (DrainAudits)
// do not disturb the cursor. On a node with an ID each page's transaction
// writes the node's node-alive time first: a node that takes over entries
// (ClaimAudits) reads that time and these entries in one transaction too,
// so the two conflict (SERIALIZABLE) and never both get an entry — a node
// restarted after longer than the take-over bound recovers what it lists,
// another takes over only what it did not.
func (s *Service) OwnAuditsPage(ctx context.Context, after string, limit int) (entries []PendingEntry, next string, err error) {
	if limit <= 0 {
		return nil, "", errors.New("kms: OwnAuditsPage needs a positive limit")
	}
	prefix := ""
	if s.node != "" {
		prefix = s.node + "/"
	}
	fn := func(tx keystore.Tx) error {
		entries, next = entries[:0], ""
		if s.node != "" {
			if err := putAlive(tx, s.node, s.now()); err != nil {
				return err
			}
		}
		return tx.Scan(bucketOutbox, prefix, after, func(name string, raw []byte) bool {
			if len(entries) == limit {
				next = entries[len(entries)-1].name()
				return false
			}
			node, id := splitOutboxName(name)
			entries = append(entries, PendingEntry{ID: id, Node: node, Record: raw})
			return true
		})
	}
	if s.node == "" {
		err = s.store.View(ctx, fn)
	} else {
		err = s.store.Update(ctx, fn)
	}
	return entries, next, err
}

// OutboxHolds reports which of request ids have an entry of this node in
// the outbox (on a store with one node: an entry), in one read
// transaction.
func (s *Service) OutboxHolds(ctx context.Context, ids []string) (map[string]bool, error) {
	held := map[string]bool{}
	err := s.store.View(ctx, func(tx keystore.Tx) error {
		clear(held)
		for _, id := range ids {
			raw, err := tx.Get(bucketOutbox, outboxName(s.node, id))
			if err != nil {
				return err
			}
			if raw != nil {
				held[id] = true
			}
		}
		return nil
	})
	return held, err
}

func (e *PendingEntry) name() string { return outboxName(e.Node, e.ID) }

// Time is the eventTime of the entry's record.
func (e *PendingEntry) Time() (time.Time, bool) { return recordTime(e.Record) }

// DrainAudit deletes this node's outbox entry of request id now (after the
// outbox barrier).
func (s *Service) DrainAudit(ctx context.Context, id string) error {
	return s.DrainAudits(ctx, []string{id})
}

// drainBatch is how many outbox entries one DrainAudits transaction
// deletes.
const drainBatch = 1000

// DrainAudits deletes this node's outbox entries of request ids now (after
// one outbox barrier), drainBatch to a transaction: the reconciliation at
// start drains a backlog (a crash, or the service events of a sweep run
// with the server stopped) in len(ids)/drainBatch transactions, not one
// fsync'd commit an entry.
func (s *Service) DrainAudits(ctx context.Context, ids []string) error {
	for _, id := range ids {
		if id == "" {
			return errors.New("kms: empty request ID")
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if err := s.outboxBarrier(ctx); err != nil {
		return err
	}
	for len(ids) > 0 {
		batch := ids[:min(len(ids), drainBatch)]
		ids = ids[len(batch):]
		err := s.store.Update(ctx, func(tx keystore.Tx) error {
			for _, id := range batch {
				if err := tx.Delete(bucketOutbox, outboxName(s.node, id)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// OutboxLock is the cluster-wide lock (keystore.Locker) under which a node
// takes over outbox entries (ClaimAudits).
const OutboxLock = "audit-outbox"

// ClaimAudits takes over the outbox entries this node must append to its
// trail although it did not write them, and returns them: service events
// without an owner (written by a release before owners), and every entry
// of another node, or of none, whose record is older than the take-over
// bound (Config.OutboxTakeover) and whose node has not shown life
// (metaNodeAlive) within it — a node that died and did not come back. It
// runs only on a node with an ID, under the cluster's OutboxLock (none
// when another node holds it), and moves each entry under this node's name
// in one transaction, delete and put together: two nodes never both get
// one (the transaction is SERIALIZABLE on PostgreSQL; the loser retries
// and finds it gone). The caller appends each to its trail and drains it
// as its own; a crash before that leaves it this node's, for its next
// start (or, if it never comes back, for another take-over).
func (s *Service) ClaimAudits(ctx context.Context) ([]PendingEntry, error) {
	if s.node == "" {
		return nil, nil
	}
	unlock, ok, err := s.tryLock(ctx, OutboxLock)
	if err != nil || !ok {
		return nil, err
	}
	defer unlock()
	// Candidates are read outside the claiming transaction, whose reads
	// are then of single entries: a scan inside it would conflict with
	// every call that puts an entry meanwhile.
	// This node's own entries (a range of the bucket: its ID and '/') may
	// be a backlog of any size (BulkCreateKeys), which its reconciliation
	// pages over; the scans go around that range, not through it — drained,
	// its entries stay on PostgreSQL's pages until a vacuum, and a read
	// of each would walk them. Request IDs are ASCII, so every own name
	// sorts before own+"\xff". Only candidates are kept.
	now := s.now()
	own := s.node + "/"
	var cands []PendingEntry
	err = s.store.View(ctx, func(tx keystore.Tx) error {
		cands = cands[:0]
		take := func(name string, raw []byte) bool {
			node, id := splitOutboxName(name)
			if node == s.node {
				return true
			}
			e := PendingEntry{ID: id, Node: node, Record: raw}
			if node == "" && strings.HasPrefix(id, ServiceEventPrefix) {
				cands = append(cands, e) // nobody's: any node appends it, once
				return true
			}
			if at, ok := recordTime(raw); !ok || now.Sub(at) >= s.takeover {
				cands = append(cands, e)
			}
			return true
		}
		if err := tx.Scan(bucketOutbox, "", "", func(name string, raw []byte) bool {
			return name < own && take(name, raw)
		}); err != nil {
			return err
		}
		return tx.Scan(bucketOutbox, "", own+"\xff", take)
	})
	if err != nil {
		return nil, err
	}
	if len(cands) == 0 {
		return nil, nil
	}
	var out []PendingEntry
	err = s.store.Update(ctx, func(tx keystore.Tx) error {
		out = out[:0]
		// This node is alive, as of the entries it takes: whoever sees
		// them under its name sees that too, and leaves them to it.
		if err := putAlive(tx, s.node, now); err != nil {
			return err
		}
		alive := map[string]bool{}
		for _, e := range cands {
			if e.Node != "" { // a node's: not while it shows life
				live, seen := alive[e.Node]
				if !seen {
					t, ok, err := aliveAt(tx, e.Node)
					if err != nil {
						return err
					}
					live = ok && now.Sub(t) < s.takeover
					alive[e.Node] = live
				}
				if live {
					continue
				}
			}
			raw, err := tx.Get(bucketOutbox, outboxName(e.Node, e.ID))
			if err != nil {
				return err
			}
			if raw == nil {
				continue // appended and drained by its node meanwhile
			}
			if err := tx.Delete(bucketOutbox, outboxName(e.Node, e.ID)); err != nil {
				return err
			}
			if err := tx.Put(bucketOutbox, outboxName(s.node, e.ID), raw); err != nil {
				return err
			}
			out = append(out, PendingEntry{ID: e.ID, Node: s.node, Record: raw, From: e.Node})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// recordTime is the eventTime of an outbox record. Records are
// audit.Record's AppendJSON, whose eventTime is a fixed-width RFC 3339 UTC
// string read in place; anything else is decoded.
func recordTime(raw []byte) (time.Time, bool) {
	const member = `"eventTime":"`
	if i := bytes.Index(raw, []byte(member)); i >= 0 {
		if v := raw[i+len(member):]; len(v) > len(time.RFC3339) && v[20] == '"' {
			if t, err := time.Parse(time.RFC3339, string(v[:20])); err == nil {
				return t, true
			}
		}
	}
	var r struct {
		EventTime string `json:"eventTime"`
	}
	if json.Unmarshal(raw, &r) != nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, r.EventTime)
	return t, err == nil
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

// PendingOwner implements PendingAudit: the node that made the change
// appends its record (server's RunServiceEvents).
func (e *serviceEvent) PendingOwner() string { return e.s.node }

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
	id, err := s.newServiceEventID()
	if err != nil {
		return nil, nil, err
	}
	e := &serviceEvent{s: s, id: id, name: name, at: s.now()}
	return context.WithValue(ctx, PendingAuditKey, PendingAudit(e)), e, nil
}

// newServiceEventID is a fresh service event's request ID (its outbox
// entry's name): ServiceEventPrefix and a random (version 4) UUID, which is
// also the record's event ID.
func (s *Service) newServiceEventID() (string, error) {
	raw, err := s.randomBytes(16)
	if err != nil {
		return "", err
	}
	raw[6] = raw[6]&0x0f | 0x40
	raw[8] = raw[8]&0x3f | 0x80
	return ServiceEventPrefix + formatKeyID(engine.KeyID(raw)), nil
}

// on records that the event changes key r (nil: it changes nothing).
func (e *serviceEvent) on(r *keyRecord) {
	e.arn, e.acct = "", ""
	if r != nil {
		e.arn, e.acct = r.arn(), r.Account
	}
}
