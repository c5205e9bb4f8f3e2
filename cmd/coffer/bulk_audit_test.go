package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/kms"
)

// TestBulkKeysAuditedAtStart: keys made in bulk (as `coffer bench scale
// --bulk` makes them, with the server stopped) reach the trail when a
// server next opens the data dir, before it serves: `coffer audit verify`
// passes, `coffer audit query` finds one CreateKey record per key naming
// the key's ARN, made by the service (AwsServiceEvent, AWSService) and
// otherwise the record an API CreateKey with the same description gets,
// and the outbox is empty.
func TestBulkKeysAuditedAtStart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data := filepath.Join(dir, "coffer-data")
	stop := func(p *process) {
		p.cmd.Process.Signal(syscall.SIGTERM)
		<-p.done
		p.done <- nil
	}
	p := startServe(t, dir)
	made, err := sdkClient(t, filepath.Join(data, "credentials"), p.endpoint).CreateKey(ctx, &awskms.CreateKeyInput{Description: aws.String("scale")})
	if err != nil {
		t.Fatal(err)
	}
	stop(p)
	const n = 2500 // three batches of scaleBulk's 1 000
	ids, err := scaleBulk(ctx, data, "", n, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != n+1 {
		t.Fatalf("%d keys after the bulk creation, want %d", len(ids), n+1)
	}
	stop(startServe(t, dir)) // appends the records before it serves

	auditDir := filepath.Join(data, "audit")
	if out, err := exec.Command(cofferBin, "audit", "verify", auditDir).CombinedOutput(); err != nil || !bytes.HasPrefix(out, []byte("OK:")) {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	raw, err := exec.Command(cofferBin, "audit", "query", "--event-name", "CreateKey", auditDir).Output()
	if err != nil {
		t.Fatal(err)
	}
	byARN := map[string][]*audit.Record{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		r := new(audit.Record)
		if err := json.Unmarshal(sc.Bytes(), r); err != nil {
			t.Fatal(err)
		}
		if len(r.Resources) != 1 {
			t.Fatalf("a CreateKey record with resources %+v", r.Resources)
		}
		byARN[r.Resources[0].ARN] = append(byARN[r.Resources[0].ARN], r)
	}
	if len(byARN) != n+1 {
		t.Fatalf("CreateKey records name %d keys, want %d", len(byARN), n+1)
	}
	api := byARN[*made.KeyMetadata.Arn]
	if len(api) != 1 || api[0].EventType != audit.EventTypeAPICall {
		t.Fatalf("the API CreateKey's records: %+v", api)
	}
	want := normalRecord(t, api[0])
	for _, id := range ids {
		arn := "arn:aws:kms:us-east-1:" + scaleAccount + ":key/" + id
		rs := byARN[arn]
		if id == *made.KeyMetadata.KeyId {
			continue
		}
		if len(rs) != 1 {
			t.Fatalf("key %s has %d CreateKey records, want 1", id, len(rs))
		}
		r := rs[0]
		if r.EventType != audit.EventTypeServiceEvent || r.UserIdentity.Type != "AWSService" || r.UserIdentity.PrincipalID != audit.EventSource ||
			r.UserIdentity.ARN != "" || r.UserIdentity.AccessKeyID != "" || string(r.AdditionalEventData) != kms.BulkCreateEventData ||
			r.RecipientAccountID != scaleAccount || !strings.HasPrefix(r.RequestID, kms.ServiceEventPrefix) {
			t.Fatalf("key %s: a bulk record %+v", id, r)
		}
		var md struct{ KeyMetadata struct{ KeyId, Arn string } }
		if err := json.Unmarshal(r.ResponseElements, &md); err != nil || md.KeyMetadata.KeyId != id || md.KeyMetadata.Arn != arn {
			t.Fatalf("key %s: response elements %s", id, r.ResponseElements)
		}
		if got := normalRecord(t, r); got != want {
			t.Fatalf("a bulk key's record, but for who, when and which key:\n%s\nthe API CreateKey's:\n%s", got, want)
		}
	}
	svc, closeAll, err := openScaleService(ctx, data, "", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	if left, err := svc.PendingAudits(ctx); err != nil || len(left) != 0 {
		t.Fatalf("%d entries left in the outbox, %v", len(left), err)
	}
}

// normalRecord is r without what differs between two CreateKey records of
// the same request: who made it and from where, when, its IDs and chain
// position, the key's ID, ARN and dates, and how it was made.
func normalRecord(t *testing.T, r *audit.Record) string {
	t.Helper()
	c := *r
	c.UserIdentity, c.EventTime, c.SourceIPAddress, c.UserAgent = audit.UserIdentity{}, "", "", ""
	c.RequestID, c.EventID, c.EventType, c.AdditionalEventData, c.Seq, c.PrevHash = "", "", "", nil, 0, ""
	c.Resources = []audit.Resource{{Type: r.Resources[0].Type, AccountID: r.Resources[0].AccountID}}
	var resp map[string]map[string]json.RawMessage
	if err := json.Unmarshal(r.ResponseElements, &resp); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"KeyId", "Arn", "CreationDate", "CurrentKeyMaterialId"} {
		if _, ok := resp["KeyMetadata"][m]; !ok {
			t.Fatalf("response elements without KeyMetadata.%s: %s", m, r.ResponseElements)
		}
		delete(resp["KeyMetadata"], m)
	}
	var err error
	if c.ResponseElements, err = json.Marshal(resp); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
