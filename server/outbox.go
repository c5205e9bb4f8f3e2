package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/kms"
)

// A call that may change state keeps its audit record with its change: the
// operation's context is a kms.PendingAudit, and every store transaction
// the call commits puts the record in the store's outbox (kms/outbox.go).
// DESIGN.md, "A change and its audit record", states the invariant.

var _ kms.PendingAudit = (*opContext)(nil)

// decoded records a call's decoded input on its context, for its pending
// audit record.
func decoded(ctx context.Context, in any) {
	if oc, ok := ctx.(*opContext); ok {
		oc.in = in
	}
}

// PendingID implements kms.PendingAudit.
func (c *opContext) PendingID() string { return c.requestID }

// PendingOwner implements kms.PendingAudit: this node, whose trail the
// record is bound for.
func (c *opContext) PendingOwner() string { return c.s.svc.NodeID() }

// PendingRecord implements kms.PendingAudit: the call's record as far as it
// is known before its outcome.
func (c *opContext) PendingRecord() ([]byte, error) {
	r := c.s.baseRecord(c.req, "kms.amazonaws.com", c.requestID, c.row.Name, c.row, c.caller)
	for _, arn := range c.info.KeyARNs {
		acct := arnAccount(arn)
		r.Resources = append(r.Resources, audit.Resource{ARN: arn, Type: audit.ResourceTypeKey, AccountID: acct})
		if r.RecipientAccountID == "" {
			r.RecipientAccountID = acct
		}
	}
	if c.in != nil {
		r.RequestParameters = appendRequestParameters(nil, c.row, c.in)
	}
	return r.AppendJSON(nil)
}

// Committed implements kms.PendingAudit.
func (c *opContext) Committed() { c.committed = true }

// owed are request IDs whose change committed while the trail could not
// take their record; their records wait in the outbox.
type owed struct {
	n   atomic.Int32 // len(ids), read without the lock on every call
	mu  sync.Mutex
	ids []string
}

func (s *Server) owe(id string) {
	s.owed.mu.Lock()
	s.owed.ids = append(s.owed.ids, id)
	s.owed.n.Store(int32(len(s.owed.ids)))
	s.owed.mu.Unlock()
}

// appendOwed moves the records of owed calls from the outbox to the trail,
// once the trail takes records again.
func (s *Server) appendOwed() {
	if s.owed.n.Load() == 0 {
		return
	}
	s.owed.mu.Lock()
	defer s.owed.mu.Unlock()
	defer func() { s.owed.n.Store(int32(len(s.owed.ids))) }()
	if len(s.owed.ids) == 0 || s.audit.Err() != nil {
		return
	}
	entries, err := s.svc.PendingAudits(context.Background())
	if err != nil {
		return
	}
	byID := make(map[string][]byte, len(entries))
	for _, e := range entries {
		if e.Node == s.svc.NodeID() {
			byID[e.ID] = e.Record
		}
	}
	left := s.owed.ids[:0]
	for _, id := range s.owed.ids {
		raw, ok := byID[id]
		if !ok {
			continue
		}
		if err := s.appendRecovered(raw, ""); err != nil {
			left = append(left, id)
			continue
		}
		s.svc.AuditDrained(id)
	}
	s.owed.ids = left
}

// appendRecovered appends an outbox record to the trail, marked as
// recovered: its outcome is the commit, its response unknown. from is the
// node it was taken over from (kms.ClaimAudits), "" for this node's own.
func (s *Server) appendRecovered(raw []byte, from string) error {
	var r audit.Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("server: an outbox record does not decode: %w", err)
	}
	r.Seq, r.PrevHash = 0, ""
	r.AdditionalEventData = json.RawMessage(`{"recoveredFromOutbox":true}`)
	if from != "" {
		extra, err := json.Marshal(struct {
			Recovered bool   `json:"recoveredFromOutbox"`
			From      string `json:"recoveredFromNode"`
		}{true, from})
		if err != nil {
			return err
		}
		r.AdditionalEventData = extra
	}
	return s.audit.Append(context.Background(), &r)
}

// recoverPage is how many outbox entries RecoverAudit holds at once, and
// how many trail request IDs it checks against the outbox in one read.
const recoverPage = 1000

// recoverWriters is how many records RecoverAudit has waiting for the trail
// at once: the trail's group commit makes their fsyncs one, where records
// appended one after the other were one fsync each.
const recoverWriters = 128

// RecoverAudit reconciles this node's entries in the store's audit outbox
// with the trail in dir, before the server serves: a record already in the
// trail is drained; any other is appended (a call's as recovered, a service
// event as it is), then drained. It returns how many of each. On a node
// with an ID (a cluster) its entries are those it wrote, plus those it
// takes over (kms.ClaimAudits): another node's in-flight calls are left to
// that node.
//
// The backlog may be large (kms.BulkCreateKeys leaves one CreateKey
// record per key: a million), so nothing here grows with it: the entries
// are read recoverPage at a time (kms.OwnAuditsPage), twice — once for the
// oldest record's time, then to append and drain them — and the trail's
// records since that time are checked against the outbox recoverPage at a
// time (kms.OutboxHolds), keeping only those found in both.
func (s *Server) RecoverAudit(ctx context.Context, dir string) (recovered, drained int, err error) {
	if s.audit == nil {
		return 0, 0, nil
	}
	claimed, err := s.svc.ClaimAudits(ctx)
	if err != nil {
		return 0, 0, err
	}
	from := make(map[string]string, len(claimed))
	for _, e := range claimed {
		from[e.ID] = e.From
	}
	n := 0
	oldest := time.Now()
	for after := ""; ; {
		page, next, err := s.svc.OwnAuditsPage(ctx, after, recoverPage)
		if err != nil {
			return 0, 0, err
		}
		for i := range page {
			if t, ok := page[i].Time(); ok && t.Before(oldest) {
				oldest = t
			}
		}
		n += len(page)
		if next == "" {
			break
		}
		after = next
	}
	if n == 0 {
		return 0, 0, nil
	}
	// Records are stamped to the second: read back a little before.
	found, err := s.inTrail(ctx, dir, oldest.Add(-time.Minute))
	if err != nil {
		return 0, 0, err
	}
	// Each page is in the trail before it is drained (kms.DrainAudits, one
	// transaction): a crash between leaves entries the next start finds
	// recorded.
	for after := ""; ; {
		page, next, err := s.svc.OwnAuditsPage(ctx, after, recoverPage)
		if err != nil {
			return recovered, drained, err
		}
		missing := page[:0:0]
		ids := make([]string, len(page))
		for i, e := range page {
			ids[i] = e.ID
			if found[e.ID] {
				drained++
			} else {
				missing = append(missing, e)
			}
		}
		if err := s.appendPending(missing, from); err != nil {
			return recovered, drained, err
		}
		recovered += len(missing)
		if err := s.svc.DrainAudits(ctx, ids); err != nil {
			return recovered, drained, err
		}
		if next == "" {
			return recovered, drained, nil
		}
		after = next
	}
}

// inTrail returns the request IDs of this node's outbox entries whose
// records the trail in dir holds among those since since.
func (s *Server) inTrail(ctx context.Context, dir string, since time.Time) (map[string]bool, error) {
	found := map[string]bool{}
	batch := make([]string, 0, recoverPage)
	check := func() error {
		held, err := s.svc.OutboxHolds(ctx, batch)
		for id := range held {
			found[id] = true
		}
		batch = batch[:0]
		return err
	}
	err := audit.RecentRequestIDs(dir, since, func(id string) error {
		batch = append(batch, id)
		if len(batch) < recoverPage {
			return nil
		}
		return check()
	})
	if err == nil {
		err = check()
	}
	return found, err
}

// appendPending appends the records of outbox entries to the trail,
// recoverWriters at a time, and returns the first failure once every
// append has returned: a call's record as recovered (from names the node a
// taken-over entry came from), a service event's as it is, as
// AppendServiceEvents appends them.
func (s *Server) appendPending(entries []kms.PendingEntry, from map[string]string) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range min(recoverWriters, len(entries)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(entries) {
					return
				}
				e := &entries[i]
				var err error
				if strings.HasPrefix(e.ID, kms.ServiceEventPrefix) {
					err = s.appendServiceEvent(e.Record)
				} else {
					err = s.appendRecovered(e.Record, from[e.ID])
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					next.Store(int64(len(entries))) // the rest waits for the next start
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// appendServiceEvent appends the outbox record of a service event (kms's
// service events, which no call records) to the trail.
func (s *Server) appendServiceEvent(raw []byte) error {
	var r audit.Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("server: an outbox record does not decode: %w", err)
	}
	r.Seq, r.PrevHash = 0, ""
	return s.audit.Append(context.Background(), &r)
}

// RunServiceEvents appends to the trail, every interval until ctx ends, the
// records of the changes the service made by itself (kms's service events:
// automatic rotation, deletion at the end of a waiting period), which wait
// in the outbox, and drains them. On a node with an ID it also flushes the
// outbox each interval, which records that the node is alive
// (kms.FlushOutbox), and appends what it takes over (kms.ClaimAudits).
func (s *Server) RunServiceEvents(ctx context.Context, interval time.Duration) {
	if s.audit == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if s.svc.NodeID() != "" {
			if err := s.svc.FlushOutbox(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("audit outbox flush failed", "err", err)
			}
		}
		if _, err := s.AppendServiceEvents(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("service events wait in the outbox", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// appendedEvents are this node's outbox entries appended to the trail whose
// delete failed: not appended again while they wait for the next flush.
// mu also makes AppendServiceEvents run one at a time.
type appendedEvents struct {
	mu  sync.Mutex
	ids map[string]bool
}

// AppendServiceEvents appends to the trail the service events of this node
// waiting in the outbox (on a store with one node: all of them) and the
// entries it takes over (kms.ClaimAudits), and drains them; it returns how
// many. Each service event is in one node's outbox entries, or in none's,
// and moves to one node's in the transaction that takes it: it reaches one
// trail, once.
func (s *Server) AppendServiceEvents(ctx context.Context) (int, error) {
	if s.audit == nil || s.audit.Err() != nil {
		return 0, nil
	}
	s.appended.mu.Lock() // one run at a time: a second would read what the first is appending
	defer s.appended.mu.Unlock()
	claimed, err := s.svc.ClaimAudits(ctx)
	if err != nil {
		return 0, err
	}
	entries, err := s.svc.PendingAudits(ctx)
	if err != nil {
		return 0, err
	}
	from := make(map[string]string, len(claimed))
	for _, e := range claimed {
		from[e.ID] = e.From
	}
	present := make(map[string]bool, len(entries))
	n := 0
	for _, e := range entries {
		if e.Node != s.svc.NodeID() {
			continue // another node's
		}
		present[e.ID] = true
		if s.appended.ids[e.ID] {
			continue // in the trail, its delete to come
		}
		src, took := from[e.ID]
		switch {
		case took && !strings.HasPrefix(e.ID, kms.ServiceEventPrefix):
			// A call of a node gone: its record as recovered.
			if err := s.appendRecovered(e.Record, src); err != nil {
				s.owe(e.ID)
				return n, err
			}
		case strings.HasPrefix(e.ID, kms.ServiceEventPrefix):
			if err := s.appendServiceEvent(e.Record); err != nil {
				return n, err
			}
		default:
			continue // a call's: its own request appends it
		}
		n++
		if err := s.svc.DrainAudit(ctx, e.ID); err != nil {
			if s.appended.ids == nil {
				s.appended.ids = map[string]bool{}
			}
			s.appended.ids[e.ID] = true
			s.svc.AuditDrained(e.ID) // the next flush tries again
			return n, err
		}
	}
	for id := range s.appended.ids {
		if !present[id] {
			delete(s.appended.ids, id)
		}
	}
	return n, nil
}
