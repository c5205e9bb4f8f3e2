package server

import (
	"context"
	"testing"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/kms"
)

// TestRecoverAuditBulkBacklog: a start over the CreateKey records of keys
// made in bulk, some already in the trail (a start killed between its
// appends and its drain), appends each of the others once, drains them
// all, and leaves one record per key in the trail.
func TestRecoverAuditBulkBacklog(t *testing.T) {
	f := newOutboxFixture(t)
	ctx := context.Background()
	const n, before = 2*recoverPage + 500, recoverPage + 200
	if err := f.svc.BulkCreateKeys(ctx, f.c.Account, "bulk", n, 1000, nil); err != nil {
		t.Fatal(err)
	}
	// The first pages' records reached the trail before the kill; the
	// outbox still holds them.
	page, next, err := f.svc.OwnAuditsPage(ctx, "", recoverPage)
	if err != nil || next == "" {
		t.Fatal(next, err)
	}
	more, _, err := f.svc.OwnAuditsPage(ctx, next, before-recoverPage)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.appendPending(append(page, more...), nil); err != nil {
		t.Fatal(err)
	}
	recovered, drained, err := f.srv.RecoverAudit(ctx, f.dir)
	if err != nil || recovered != n-before || drained != before {
		t.Fatalf("RecoverAudit: %d appended, %d found in the trail, %v; want %d and %d", recovered, drained, err, n-before, before)
	}
	if left, err := f.svc.PendingAudits(ctx); err != nil || len(left) != 0 {
		t.Fatalf("%d entries left, %v", len(left), err)
	}
	perKey := map[string]int{}
	if err := audit.Query(f.dir, audit.Filter{EventName: "CreateKey"}, func(r *audit.Record) error {
		perKey[r.Resources[0].ARN]++
		if r.EventType != audit.EventTypeServiceEvent || string(r.AdditionalEventData) != kms.BulkCreateEventData {
			t.Fatalf("a record %+v", r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(perKey) != n {
		t.Fatalf("records of %d keys, want %d", len(perKey), n)
	}
	for arn, c := range perKey {
		if c != 1 {
			t.Fatalf("%d records of %s", c, arn)
		}
	}
}
