package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/middleware"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/coffer-kms/coffer/audit"
)

// TestKill9AuditKeepsEveryAcknowledgedCall kills the server under load and
// checks, after a restart, that every call whose response was received has
// its record and that the chain verifies; under each audit commit policy
// (with interval:<d> a response waits only for the record's write, which
// the kernel keeps when the process dies: the trail verifies as the killed
// process left it).
func TestKill9AuditKeepsEveryAcknowledgedCall(t *testing.T) {
	for _, policy := range []string{"commit", "interval:10ms"} {
		t.Run(policy, func(t *testing.T) { testKill9Audit(t, policy) })
	}
}

func testKill9Audit(t *testing.T, policy string) {
	dir := t.TempDir()
	p := startServe(t, dir, "--audit-sync="+policy)
	credFile := filepath.Join(dir, "coffer-data", "credentials")
	c := sdkClient(t, credFile, p.endpoint)
	key, err := c.CreateKey(context.Background(), &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				out, err := c.Encrypt(context.Background(), &awskms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("audited")})
				if err != nil {
					return
				}
				id, _ := middleware.GetRequestIDMetadata(out.ResultMetadata)
				mu.Lock()
				acked[id] = true
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.done <- nil
	wg.Wait()
	if len(acked) < 50 {
		t.Fatalf("only %d calls acknowledged before the kill", len(acked))
	}
	auditDir := filepath.Join(dir, "coffer-data", "audit")
	if out, err := exec.Command(cofferBin, "audit", "verify", auditDir).CombinedOutput(); err != nil || !bytes.HasPrefix(out, []byte("OK:")) {
		t.Fatalf("coffer audit verify of the trail kill -9 left: %v\n%s", err, out)
	}
	// Restart: the writer recovers the chain and goes on; then stop it cleanly.
	p2 := startServe(t, dir, "--audit-sync="+policy)
	if _, err := sdkClient(t, credFile, p2.endpoint).DescribeKey(context.Background(), &awskms.DescribeKeyInput{KeyId: key.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	p2.cmd.Process.Signal(syscall.SIGTERM)
	<-p2.done
	p2.done <- nil

	out, err := exec.Command(cofferBin, "audit", "verify", auditDir).CombinedOutput()
	if err != nil || !bytes.HasPrefix(out, []byte("OK:")) || !bytes.Contains(out, []byte("\nlast sealed at ")) {
		t.Fatalf("coffer audit verify after kill -9 and a clean stop: %v\n%s", err, out)
	}
	found := 0
	audit.Query(auditDir, audit.Filter{EventName: "Encrypt"}, func(r *audit.Record) error {
		if acked[r.RequestID] {
			found++
			delete(acked, r.RequestID)
		}
		return nil
	})
	if len(acked) != 0 {
		t.Fatalf("%d acknowledged calls have no audit record (found %d)", len(acked), found)
	}
	t.Logf("%d acknowledged Encrypt calls all audited; %s", found, bytes.TrimSpace(out))
	if policy != "commit" {
		return // tampering once is enough
	}

	// Tampering is caught by the same command, naming the record.
	names, _ := filepath.Glob(filepath.Join(auditDir, "audit-*.jsonl"))
	raw, _ := readFile(names[0])
	lines := bytes.SplitAfter(raw, []byte("\n"))
	lines[2] = bytes.Replace(lines[2], []byte(`"Encrypt"`), []byte(`"Decrypt"`), 1)
	writeFile(names[0], bytes.Join(lines, nil))
	out, err = exec.Command(cofferBin, "audit", "verify", auditDir).CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("first bad record")) || !bytes.Contains(out, []byte("line 3")) {
		t.Fatalf("an edited record passed: %s", out)
	}
}

// TestAuditCutTailRefusedUntilAcknowledged: the newest trail file deleted
// after a clean stop is an ERROR for verify, serve refuses to start naming
// the missing records, and `coffer audit acknowledge-gap` records the loss so
// that verify reports it and serve starts.
func TestAuditCutTailRefusedUntilAcknowledged(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, dir)
	credFile := filepath.Join(dir, "coffer-data", "credentials")
	if _, err := sdkClient(t, credFile, p.endpoint).CreateKey(context.Background(), &awskms.CreateKeyInput{}); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	p.done <- nil

	auditDir := filepath.Join(dir, "coffer-data", "audit")
	names, _ := filepath.Glob(filepath.Join(auditDir, "audit-*.jsonl"))
	for _, n := range names {
		os.Remove(n)
	}
	out, err := exec.Command(cofferBin, "audit", "verify", auditDir).CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("the trail was deleted")) {
		t.Fatalf("verify of a deleted trail: %v\n%s", err, out)
	}
	serve := exec.Command(cofferBin, "serve", "--listen", "127.0.0.1:0")
	serve.Dir = dir
	out, err = serve.CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("records 1..")) || !bytes.Contains(out, []byte("acknowledge-gap")) {
		t.Fatalf("serve with its trail deleted: %v\n%s", err, out)
	}
	ack := exec.Command(cofferBin, "audit", "acknowledge-gap", "--data-dir", "coffer-data", "--reason", "test: trail deleted", "--by", "tester")
	ack.Dir = dir
	if out, err := ack.CombinedOutput(); err != nil || !bytes.Contains(out, []byte("recorded: records 1..")) {
		t.Fatalf("acknowledge-gap: %v\n%s", err, out)
	}
	out, err = exec.Command(cofferBin, "audit", "verify", auditDir).CombinedOutput()
	if err != nil || !bytes.HasPrefix(out, []byte("OK:")) || !bytes.Contains(out, []byte(`acknowledged gap: records 1..`)) || !bytes.Contains(out, []byte(`by "tester": test: trail deleted`)) {
		t.Fatalf("verify after acknowledge-gap: %v\n%s", err, out)
	}
	p2 := startServe(t, dir)
	p2.cmd.Process.Signal(syscall.SIGTERM)
	<-p2.done
	p2.done <- nil
}
