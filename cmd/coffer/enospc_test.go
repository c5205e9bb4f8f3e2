package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/coffer-kms/coffer/audit"
)

// TestDiskFullHealsWithoutRestart runs `coffer serve` on a small tmpfs (it
// needs root to mount one; CI runs as root), fills the file system, and
// checks issue 18's promises with a real ENOSPC: calls are refused once the
// trail cannot be written, a refused CreateKey creates nothing, and when
// space returns the same process serves again, with every change in the
// store audited and the trail verifying.
func TestDiskFullHealsWithoutRestart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Room for the store, the trail's preallocation and the audit writer's
	// 64 MiB reserve, which Open checks.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })

	p := startServe(t, dir)
	credFile := filepath.Join(dir, "coffer-data", "credentials")
	c := sdkClient(t, credFile, p.endpoint)
	ctx := context.Background()
	key, err := c.CreateKey(ctx, &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}

	// Fill the file system to the last byte.
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	for n := len(buf) / 2; n > 0; n /= 2 { // the last partial megabyte too
		if _, err := f.Write(buf[:n]); err != nil && !errors.Is(err, syscall.ENOSPC) {
			t.Fatal(err)
		}
	}
	f.Close()

	// Calls go on until the trail's preallocated room is used up; then
	// they are refused, promptly.
	var refusal error
	served := 0
	for ; served < 200000 && refusal == nil; served++ {
		_, refusal = c.Encrypt(ctx, &awskms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("fill the trail")})
	}
	if refusal == nil || !strings.Contains(refusal.Error(), "audit trail cannot be written") {
		t.Fatalf("after %d calls on a full disk: %v, want the audit trail's refusal", served, refusal)
	}
	t.Logf("%d calls served on the full disk before the trail refused: %v", served-1, refusal)
	countKeys := func() int {
		out, err := c.ListKeys(ctx, &awskms.ListKeysInput{Limit: aws.Int32(1000)})
		if err != nil {
			return -1
		}
		return len(out.Keys)
	}
	before := countKeys()
	for range 5 {
		if _, err := c.CreateKey(ctx, &awskms.CreateKeyInput{Description: aws.String("refused")}); err == nil {
			t.Fatal("CreateKey was acknowledged while the trail could not be written")
		}
	}

	// Space returns: the same process heals by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	var healed *awskms.CreateKeyOutput
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if healed, err = c.CreateKey(ctx, &awskms.CreateKeyInput{Description: aws.String("after")}); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("no recovery within 15 s of space returning: %v", err)
	}
	if before >= 0 {
		if after := countKeys(); after != before+1 {
			t.Fatalf("%d keys before the refused calls, %d after one more was created: a refused CreateKey changed the store", before, after)
		}
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	p.done <- nil

	auditDir := filepath.Join(dir, "coffer-data", "audit")
	out, err := exec.Command(cofferBin, "audit", "verify", auditDir).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "OK:") {
		t.Fatalf("the trail does not verify after the disk filled and healed: %v\n%s", err, out)
	}
	created := map[string]bool{}
	audit.Query(auditDir, audit.Filter{EventName: "CreateKey"}, func(r *audit.Record) error {
		if r.ErrorCode == "" {
			for _, res := range r.Resources {
				created[res.ARN] = true
			}
		}
		return nil
	})
	for _, arn := range []string{*key.KeyMetadata.Arn, *healed.KeyMetadata.Arn} {
		if !created[arn] {
			t.Errorf("key %s has no CreateKey record", arn)
		}
	}
	if len(created) != 2 {
		t.Errorf("%d successful CreateKey records, want the 2 acknowledged", len(created))
	}
}
