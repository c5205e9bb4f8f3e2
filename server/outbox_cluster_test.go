package server

// The audit outbox shared by the nodes of a cluster on one PostgreSQL
// database: each entry is its node's; another node takes it over only once
// the node is gone, and each record reaches one trail, once.

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore/postgres"
	"github.com/coffer-kms/coffer/keystore/postgres/pgtest"
	"github.com/coffer-kms/coffer/kms"
)

// nodeClock is the nodes' shared service clock, which the test moves.
type nodeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *nodeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *nodeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	nodeRegion  = "us-east-1"
	nodeAccount = "111122223333"
)

// TestOutboxAcrossNodes runs the cluster's outbox tests on one private
// PostgreSQL server, a database each.
func TestOutboxAcrossNodes(t *testing.T) {
	pg := pgtest.ForTest(t, "starts PostgreSQL")
	t.Run("owned entries", func(t *testing.T) { testOutboxOwned(t, pg.Database(t)) })
	t.Run("service events once", func(t *testing.T) { testServiceEventsOnce(t, pg.Database(t)) })
	t.Run("entries without owner", func(t *testing.T) { testOutboxLegacy(t, pg.Database(t)) })
}

// outboxNode is one node of a cluster: its service on the shared database
// and root key file, its own trail, its server.
type outboxNode struct {
	svc *kms.Service
	srv *Server
	dir string // the trail
}

const testTakeover = 10 * time.Second

func newOutboxNode(t *testing.T, url, rootDir, id string, clock *nodeClock) *outboxNode {
	t.Helper()
	st, err := postgres.Open(context.Background(), postgres.Config{URL: url, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{Path: filepath.Join(rootDir, "root.key")})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := kms.New(kms.Config{Region: nodeRegion, Account: nodeAccount, Store: st, Root: root, Now: clock.Now,
		NodeID: id, OutboxTakeover: testTakeover})
	if err != nil {
		t.Fatal(err)
	}
	n := &outboxNode{svc: svc, dir: t.TempDir()}
	key, err := audit.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.Open(audit.Config{Dir: n.dir, Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close(); svc.Close(); st.Close(); root.Close() })
	if n.srv, err = New(Config{Service: svc, Audit: trail}); err != nil {
		t.Fatal(err)
	}
	return n
}

// inFlight runs CreateKey on n as its server runs a call, up to the commit
// of the change with its outbox entry, and stops there: the call is still
// running, or its process died before the trail. It returns the request ID.
func (n *outboxNode) inFlight(t *testing.T, requestID string) string {
	t.Helper()
	c := &kms.Caller{ARN: "arn:aws:iam::" + nodeAccount + ":root", Account: nodeAccount}
	var req fasthttp.RequestCtx
	info := &kms.RequestInfo{}
	req.SetUserValue(kms.RequestInfoKey, info)
	octx := n.srv.operationContext(&req, time.Now())
	octx.requestID, octx.info = requestID, info
	octx.s, octx.row, octx.caller, octx.pending = n.srv, mustRow(t, "CreateKey"), c, true
	in := &kms.CreateKeyInput{Description: "in flight"}
	decoded(octx, in)
	if _, err := n.svc.CreateKey(octx, c, in); err != nil {
		t.Fatal(err)
	}
	if !octx.committed {
		t.Fatal("the call's transaction did not report its record committed")
	}
	return requestID
}

// trailRecords are the records named name in the trails of nodes, by
// request ID, as `coffer audit query` over the trails reads them; it fails
// t on an eventId found twice.
func trailRecords(t *testing.T, name string, nodes ...*outboxNode) map[string][]*audit.Record {
	t.Helper()
	dirs := make([]string, len(nodes))
	for i, n := range nodes {
		dirs[i] = n.dir
	}
	byReq := map[string][]*audit.Record{}
	events := map[string]int{}
	err := audit.QueryTrails(dirs, audit.Filter{EventName: name}, func(trail int, r *audit.Record) error {
		byReq[r.RequestID] = append(byReq[r.RequestID], r)
		if prev, dup := events[r.EventID]; dup {
			return fmt.Errorf("eventId %s in trail %d and in trail %d", r.EventID, prev, trail)
		}
		events[r.EventID] = trail
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return byReq
}

// testOutboxOwned: node B starting does not append node A's
// in-flight calls; while A shows life its entries are left to it however
// old; once A is gone for the take-over bound, B and C racing append each
// of A's records exactly once between them, marked recovered from A.
func testOutboxOwned(t *testing.T, url string) {
	rootDir := t.TempDir()
	clock := &nodeClock{t: time.Now()}
	ctx := context.Background()
	a := newOutboxNode(t, url, rootDir, "node-a", clock)
	ids := []string{
		a.inFlight(t, "aaaaaaaa-0000-4000-8000-000000000001"),
		a.inFlight(t, "aaaaaaaa-0000-4000-8000-000000000002"),
		a.inFlight(t, "aaaaaaaa-0000-4000-8000-000000000003"),
	}
	if err := a.svc.FlushOutbox(ctx); err != nil { // A is alive
		t.Fatal(err)
	}

	b := newOutboxNode(t, url, rootDir, "node-b", clock)
	recovered, drained, err := b.srv.RecoverAudit(ctx, b.dir)
	if err != nil || recovered+drained != 0 {
		t.Fatalf("B's start: %d recovered, %d drained, %v; want A's in-flight calls left to A", recovered, drained, err)
	}
	if rs := trailRecords(t, "CreateKey", a, b); len(rs) != 0 {
		t.Fatalf("after B's start the trails hold %d of A's in-flight calls", len(rs))
	}

	// Older than the bound, but A still flushes: still A's.
	clock.Advance(testTakeover + time.Second)
	if err := a.svc.FlushOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := b.srv.AppendServiceEvents(ctx); err != nil || n != 0 {
		t.Fatalf("B's loop while A is alive: %d appended, %v", n, err)
	}
	pending, err := b.svc.PendingAudits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 3 {
		t.Fatalf("outbox while A is alive: %+v", pending)
	}
	for _, e := range pending {
		if e.Node != "node-a" {
			t.Fatalf("entry %s owned by %q, want node-a", e.ID, e.Node)
		}
	}

	// A dies (it flushes no more); past the bound B and C race.
	c := newOutboxNode(t, url, rootDir, "node-c", clock)
	if r, d, err := c.srv.RecoverAudit(ctx, c.dir); err != nil || r+d != 0 {
		t.Fatalf("C's start: %d recovered, %d drained, %v", r, d, err)
	}
	clock.Advance(testTakeover + time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 5 {
		for _, n := range []*outboxNode{b, c} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := n.srv.AppendServiceEvents(ctx); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rs := trailRecords(t, "CreateKey", a, b, c)
	for _, id := range ids {
		if len(rs[id]) != 1 {
			t.Fatalf("request %s: %d records in the trails, want 1", id, len(rs[id]))
		}
		if ad := string(rs[id][0].AdditionalEventData); !strings.Contains(ad, `"recoveredFromOutbox":true`) || !strings.Contains(ad, `"recoveredFromNode":"node-a"`) {
			t.Fatalf("request %s: additionalEventData %s", id, ad)
		}
	}
	if len(rs) != len(ids) {
		t.Fatalf("%d CreateKey requests in the trails, want %d", len(rs), len(ids))
	}
	if pending, err := b.svc.PendingAudits(ctx); err != nil || len(pending) != 0 {
		t.Fatalf("outbox after the take-over: %+v, %v", pending, err)
	}
}

// testServiceEventsOnce: the service events one node's
// maintenance commits reach one trail once while every node's loop runs at
// the same time.
func testServiceEventsOnce(t *testing.T, url string) {
	rootDir := t.TempDir()
	clock := &nodeClock{t: time.Now()}
	ctx := context.Background()
	a := newOutboxNode(t, url, rootDir, "node-a", clock)
	b := newOutboxNode(t, url, rootDir, "node-b", clock)
	caller := &kms.Caller{ARN: "arn:aws:iam::" + nodeAccount + ":root", Account: nodeAccount}
	const keys = 20
	for range keys {
		k, err := a.svc.CreateKey(ctx, caller, &kms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.svc.ScheduleKeyDeletion(ctx, caller, &kms.ScheduleKeyDeletionInput{KeyId: k.KeyMetadata.KeyId, PendingWindowInDays: ptr(7)}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(8 * 24 * time.Hour)
	if _, deleted, err := a.svc.RunMaintenance(ctx); err != nil || deleted != keys {
		t.Fatalf("maintenance: %d deleted, %v", deleted, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 3 {
		for _, n := range []*outboxNode{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := n.srv.AppendServiceEvents(ctx); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rs := trailRecords(t, "DeleteKey", a, b)
	if len(rs) != keys {
		t.Fatalf("%d DeleteKey service events in the trails, want %d", len(rs), keys)
	}
	for id, r := range rs {
		if len(r) != 1 || r[0].EventType != audit.EventTypeServiceEvent {
			t.Fatalf("service event %s: %d records %+v", id, len(r), r)
		}
	}
	if pending, err := a.svc.PendingAudits(ctx); err != nil || len(pending) != 0 {
		t.Fatalf("outbox after the loops: %+v, %v", pending, err)
	}
}

// testOutboxLegacy: entries an earlier release left, without an owner, are
// still read: its service events are appended by one node at once, its
// calls once older than the bound, each once.
func testOutboxLegacy(t *testing.T, url string) {
	rootDir := t.TempDir()
	clock := &nodeClock{t: time.Now()}
	ctx := context.Background()
	old := newOutboxNode(t, url, rootDir, "", clock) // no node ID: as before owners
	call := old.inFlight(t, "0bd0bd0b-0000-4000-8000-000000000001")
	caller := &kms.Caller{ARN: "arn:aws:iam::" + nodeAccount + ":root", Account: nodeAccount}
	k, err := old.svc.CreateKey(ctx, caller, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.svc.ScheduleKeyDeletion(ctx, caller, &kms.ScheduleKeyDeletionInput{KeyId: k.KeyMetadata.KeyId, PendingWindowInDays: ptr(7)}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(8 * 24 * time.Hour)
	if _, deleted, err := old.svc.RunMaintenance(ctx); err != nil || deleted != 1 {
		t.Fatalf("maintenance: %d deleted, %v", deleted, err)
	}
	pending, err := old.svc.PendingAudits(ctx)
	if err != nil || len(pending) != 2 || pending[0].Node != "" || pending[1].Node != "" {
		t.Fatalf("entries without owner: %+v, %v", pending, err)
	}

	b := newOutboxNode(t, url, rootDir, "node-b", clock)
	c := newOutboxNode(t, url, rootDir, "node-c", clock)
	run := func() {
		var wg sync.WaitGroup
		for _, n := range []*outboxNode{b, c, b, c} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := n.srv.AppendServiceEvents(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	run()
	// The call's record is 8 days old on this clock: taken over at once
	// with the service event.
	if rs := trailRecords(t, "DeleteKey", b, c); len(rs) != 1 {
		t.Fatalf("%d DeleteKey service events in the trails, want 1", len(rs))
	}
	rs := trailRecords(t, "CreateKey", b, c)
	if len(rs[call]) != 1 || len(rs) != 1 || !strings.Contains(string(rs[call][0].AdditionalEventData), `"recoveredFromOutbox":true`) {
		t.Fatalf("the call without owner in the trails: %+v", rs)
	}
	if pending, err := b.svc.PendingAudits(ctx); err != nil || len(pending) != 0 {
		t.Fatalf("outbox after the take-over: %+v, %v", pending, err)
	}
}
