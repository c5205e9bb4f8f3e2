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
		byID[e.ID] = e.Record
	}
	left := s.owed.ids[:0]
	for _, id := range s.owed.ids {
		raw, ok := byID[id]
		if !ok {
			continue
		}
		if err := s.appendRecovered(raw); err != nil {
			left = append(left, id)
			continue
		}
		s.svc.AuditDrained(id)
	}
	s.owed.ids = left
}

// appendRecovered appends an outbox record to the trail, marked as
// recovered: its outcome is the commit, its response unknown.
func (s *Server) appendRecovered(raw []byte) error {
	var r audit.Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("server: an outbox record does not decode: %w", err)
	}
	r.Seq, r.PrevHash = 0, ""
	r.AdditionalEventData = json.RawMessage(`{"recoveredFromOutbox":true}`)
	return s.audit.Append(context.Background(), &r)
}

// RecoverAudit reconciles the store's audit outbox with the trail in dir,
// before the server serves: a record already in the trail is drained; any
// other is appended as recovered, then drained. It returns how many of each.
func (s *Server) RecoverAudit(ctx context.Context, dir string) (recovered, drained int, err error) {
	if s.audit == nil {
		return 0, 0, nil
	}
	entries, err := s.svc.PendingAudits(ctx)
	if err != nil || len(entries) == 0 {
		return 0, 0, err
	}
	ids := make([]string, len(entries))
	oldest := time.Now()
	for i, e := range entries {
		ids[i] = e.ID
		var r audit.Record
		if json.Unmarshal(e.Record, &r) == nil {
			if t, err := time.Parse(time.RFC3339, r.EventTime); err == nil && t.Before(oldest) {
				oldest = t
			}
		}
	}
	// Records are stamped to the second: read back a little before.
	found, err := audit.Recorded(dir, ids, oldest.Add(-time.Minute))
	if err != nil {
		return 0, 0, err
	}
	for _, e := range entries {
		if !found[e.ID] {
			if err := s.appendRecovered(e.Record); err != nil {
				return recovered, drained, err
			}
			recovered++
		} else {
			drained++
		}
		if err := s.svc.DrainAudit(ctx, e.ID); err != nil {
			return recovered, drained, err
		}
	}
	return recovered, drained, nil
}

// RunServiceEvents appends to the trail, every interval until ctx ends, the
// records of the changes the service made by itself (kms's service events:
// automatic rotation, deletion at the end of a waiting period), which wait
// in the outbox, and drains them.
func (s *Server) RunServiceEvents(ctx context.Context, interval time.Duration) {
	if s.audit == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
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

// AppendServiceEvents appends the service events waiting in the outbox to
// the trail and drains them; it returns how many.
func (s *Server) AppendServiceEvents(ctx context.Context) (int, error) {
	if s.audit == nil || s.audit.Err() != nil {
		return 0, nil
	}
	entries, err := s.svc.PendingAudits(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.ID, kms.ServiceEventPrefix) {
			continue // a call's: its own request appends it
		}
		var r audit.Record
		if err := json.Unmarshal(e.Record, &r); err != nil {
			return n, fmt.Errorf("server: an outbox record does not decode: %w", err)
		}
		r.Seq, r.PrevHash = 0, ""
		if err := s.audit.Append(context.Background(), &r); err != nil {
			return n, err
		}
		if err := s.svc.DrainAudit(ctx, e.ID); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
