package server

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/kms"
)

// outboxFixture is a service with an audit trail and a server over both,
// on a clock the test moves.
type outboxFixture struct {
	svc   *kms.Service
	srv   *Server
	trail *audit.Writer
	dir   string
	now   time.Time
	c     *kms.Caller
}

func newOutboxFixture(t *testing.T) *outboxFixture {
	t.Helper()
	return newOutboxFixtureSync(t, 0)
}

// newOutboxFixtureSync is newOutboxFixture with the trail's SyncInterval.
func newOutboxFixtureSync(t *testing.T, syncInterval time.Duration) *outboxFixture {
	t.Helper()
	f := &outboxFixture{dir: t.TempDir(), now: time.Now(), c: &kms.Caller{ARN: "arn:aws:iam::111122223333:root", Account: "111122223333"}}
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	f.svc, err = kms.New(kms.Config{Region: "us-east-1", Account: "111122223333", Store: keystore.NewMemory(), Root: root,
		Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	key, err := audit.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	if f.trail, err = audit.Open(audit.Config{Dir: f.dir, Signer: key, SyncInterval: syncInterval}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.trail.Close() })
	if f.srv, err = New(Config{Service: f.svc, Audit: f.trail}); err != nil {
		t.Fatal(err)
	}
	return f
}

// records are the trail's records of event name.
func (f *outboxFixture) records(t *testing.T, name string) []*audit.Record {
	t.Helper()
	var out []*audit.Record
	if err := audit.Query(f.dir, audit.Filter{EventName: name}, func(r *audit.Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *outboxFixture) pending(t *testing.T) []kms.PendingEntry {
	t.Helper()
	es, err := f.svc.PendingAudits(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestOutboxRecovered: a change committed by a call whose record never
// reached the trail (the process died first) is in the outbox, and
// RecoverAudit puts its record in the trail, marked recovered, once; a
// record already in the trail is only drained.
func TestOutboxRecovered(t *testing.T) {
	f := newOutboxFixture(t)
	// A call as the server runs one, but the process "dies" before its
	// trail record: the operation context carries the pending record.
	var req fasthttp.RequestCtx
	info := &kms.RequestInfo{}
	req.SetUserValue(kms.RequestInfoKey, info)
	octx := f.srv.operationContext(&req, time.Now())
	octx.requestID, octx.info = "11111111-2222-4333-8444-555555555555", info
	octx.s, octx.row, octx.caller, octx.pending = f.srv, mustRow(t, "CreateKey"), f.c, true
	in := &kms.CreateKeyInput{Description: "lost"}
	decoded(octx, in)
	out, err := f.svc.CreateKey(octx, f.c, in)
	if err != nil {
		t.Fatal(err)
	}
	if !octx.committed {
		t.Fatal("the call's transaction did not report its record committed")
	}
	if es := f.pending(t); len(es) != 1 || es[0].ID != octx.requestID {
		t.Fatalf("outbox after the commit: %v", es)
	}
	if rs := f.records(t, "CreateKey"); len(rs) != 0 {
		t.Fatalf("%d CreateKey records before recovery", len(rs))
	}
	recovered, drained, err := f.srv.RecoverAudit(context.Background(), f.dir)
	if err != nil || recovered != 1 || drained != 0 {
		t.Fatalf("RecoverAudit: %d recovered, %d drained, %v", recovered, drained, err)
	}
	rs := f.records(t, "CreateKey")
	if len(rs) != 1 || rs[0].RequestID != octx.requestID || len(rs[0].Resources) != 1 ||
		!strings.HasSuffix(rs[0].Resources[0].ARN, out.KeyMetadata.KeyId) || !strings.Contains(string(rs[0].AdditionalEventData), "recoveredFromOutbox") {
		t.Fatalf("recovered record: %+v", rs)
	}
	var params struct{ Description string }
	if json.Unmarshal(rs[0].RequestParameters, &params); params.Description != "lost" {
		t.Fatalf("recovered request parameters %s", rs[0].RequestParameters)
	}
	if es := f.pending(t); len(es) != 0 {
		t.Fatalf("outbox after recovery: %v", es)
	}
	// A second reconciliation finds nothing to do: no duplicate record.
	if r, d, err := f.srv.RecoverAudit(context.Background(), f.dir); err != nil || r+d != 0 {
		t.Fatalf("second RecoverAudit: %d, %d, %v", r, d, err)
	}
	if rs := f.records(t, "CreateKey"); len(rs) != 1 {
		t.Fatalf("%d CreateKey records after a second recovery", len(rs))
	}
}

// TestServiceEventsThroughOutbox: the changes maintenance makes by itself
// (deletion at the end of the waiting period, automatic rotation) commit
// with their records, which reach the trail as AwsServiceEvents.
func TestServiceEventsThroughOutbox(t *testing.T) {
	f := newOutboxFixture(t)
	ctx := context.Background()
	doomed, err := f.svc.CreateKey(ctx, f.c, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	rotating, err := f.svc.CreateKey(ctx, f.c, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ScheduleKeyDeletion(ctx, f.c, &kms.ScheduleKeyDeletionInput{KeyId: doomed.KeyMetadata.KeyId, PendingWindowInDays: ptr(7)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.EnableKeyRotation(ctx, f.c, &kms.EnableKeyRotationInput{KeyId: rotating.KeyMetadata.KeyId, RotationPeriodInDays: ptr(90)}); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(91 * 24 * time.Hour)
	rotated, deleted, err := f.svc.RunMaintenance(ctx)
	if err != nil || rotated != 1 || deleted != 1 {
		t.Fatalf("maintenance: %d rotated, %d deleted, %v", rotated, deleted, err)
	}
	if es := f.pending(t); len(es) != 2 {
		t.Fatalf("outbox after maintenance: %d entries, want 2", len(es))
	}
	if n, err := f.srv.AppendServiceEvents(ctx); err != nil || n != 2 {
		t.Fatalf("AppendServiceEvents: %d, %v", n, err)
	}
	for name, key := range map[string]string{"DeleteKey": doomed.KeyMetadata.KeyId, "RotateKey": rotating.KeyMetadata.KeyId} {
		rs := f.records(t, name)
		if len(rs) != 1 || rs[0].EventType != audit.EventTypeServiceEvent || len(rs[0].Resources) != 1 || !strings.HasSuffix(rs[0].Resources[0].ARN, key) {
			t.Errorf("%s: %+v", name, rs)
		}
	}
	if es := f.pending(t); len(es) != 0 {
		t.Fatalf("outbox after the service events reached the trail: %v", es)
	}
	// Maintenance with nothing due leaves no record.
	if _, _, err := f.svc.RunMaintenance(ctx); err != nil {
		t.Fatal(err)
	}
	if es := f.pending(t); len(es) != 0 {
		t.Fatalf("maintenance with nothing due left %d outbox entries", len(es))
	}
}

func mustRow(t *testing.T, name string) *kms.Operation {
	row, ok := kms.LookupOperation(kms.APIKMS, name)
	if !ok {
		t.Fatalf("no row %s", name)
	}
	return row
}

func ptr[T any](v T) *T { return &v }

// TestOutboxWaitsForDurableRecord: with the trail's interval policy a
// record is acknowledged once written, and durable only after the next
// fdatasync; the outbox entry of the call goes only after it (the
// service's outbox barrier is the trail's Sync), and stays when the
// barrier fails, so that a power loss that takes the record leaves the
// entry for RecoverAudit.
func TestOutboxWaitsForDurableRecord(t *testing.T) {
	f := newOutboxFixtureSync(t, time.Hour)
	ctx := context.Background()
	// call makes a change as the server runs a call, appends its record and
	// reports it drained, as the server does after the call.
	call := func(id string) {
		t.Helper()
		var req fasthttp.RequestCtx
		info := &kms.RequestInfo{}
		req.SetUserValue(kms.RequestInfoKey, info)
		octx := f.srv.operationContext(&req, time.Now())
		octx.requestID, octx.info = id, info
		octx.s, octx.row, octx.caller, octx.pending = f.srv, mustRow(t, "CreateKey"), f.c, true
		in := &kms.CreateKeyInput{Description: "interval"}
		decoded(octx, in)
		if _, err := f.svc.CreateKey(octx, f.c, in); err != nil || !octx.committed {
			t.Fatalf("CreateKey: %v, committed %v", err, octx.committed)
		}
		raw, err := octx.PendingRecord()
		if err != nil {
			t.Fatal(err)
		}
		if err := f.srv.appendRecovered(raw, ""); err != nil {
			t.Fatal(err)
		}
		f.svc.AuditDrained(id)
	}
	call("11111111-2222-4333-8444-555555555556")
	if s := f.trail.Stats(); s.Syncs != 0 {
		t.Fatalf("%d fdatasyncs before the flush", s.Syncs)
	}
	if err := f.svc.FlushOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	if es := f.pending(t); len(es) != 0 {
		t.Fatalf("outbox after the flush: %v", es)
	}
	if s := f.trail.Stats(); s.Syncs != 1 {
		t.Fatalf("the flush deleted the entry after %d fdatasyncs, want 1", s.Syncs)
	}

	call("11111111-2222-4333-8444-555555555557")
	f.svc.SetOutboxBarrier(func(context.Context) error { return errors.New("the trail is failing") })
	if err := f.svc.FlushOutbox(ctx); err == nil {
		t.Fatal("FlushOutbox deleted entries past a failing barrier")
	}
	if es := f.pending(t); len(es) != 1 {
		t.Fatalf("outbox after a failed barrier: %v", es)
	}
	f.svc.SetOutboxBarrier(f.trail.Sync)
	if err := f.svc.FlushOutbox(ctx); err != nil || len(f.pending(t)) != 0 {
		t.Fatalf("the entry left after the barrier passed: %v, %v", err, f.pending(t))
	}
}
