package main

import (
	"bytes"
	"context"
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
// its record and that the chain verifies.
func TestKill9AuditKeepsEveryAcknowledgedCall(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, dir)
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
	// Restart: the writer recovers the chain and goes on; then stop it cleanly.
	p2 := startServe(t, dir)
	if _, err := sdkClient(t, credFile, p2.endpoint).DescribeKey(context.Background(), &awskms.DescribeKeyInput{KeyId: key.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	p2.cmd.Process.Signal(syscall.SIGTERM)
	<-p2.done
	p2.done <- nil

	auditDir := filepath.Join(dir, "coffer-data", "audit")
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
