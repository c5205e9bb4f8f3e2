package kms

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// bulkChildEnv names the data dir of the child process
// TestBulkCreateKeysKill9 runs (and kills).
const bulkChildEnv = "COFFER_TEST_BULK_CHILD"

const bulkKillBatch = 50

func openBulkDir(t *testing.T, dir string) (*Service, func()) {
	t.Helper()
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{Path: filepath.Join(dir, "root.key")})
	if err != nil {
		t.Fatal(err)
	}
	store, err := keystore.OpenBolt(filepath.Join(dir, "coffer.db"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Region: "us-east-1", Account: matrixAccount, Store: store, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	return s, func() { s.Close(); store.Close(); root.Close() }
}

// TestBulkCreateKeysKill9: a process creating keys in bulk on bbolt, killed
// with SIGKILL after some batches committed, leaves every key it stored
// with its CreateKey record in the outbox and no record without its key:
// each batch's keys and records commit in one transaction, whole batches
// only.
func TestBulkCreateKeysKill9(t *testing.T) {
	if dir := os.Getenv(bulkChildEnv); dir != "" {
		s, closeAll := openBulkDir(t, dir)
		defer closeAll()
		err := s.BulkCreateKeys(context.Background(), matrixAccount, "kill", 1_000_000, bulkKillBatch, func(done int) {
			fmt.Printf("done %d\n", done)
		})
		t.Fatalf("the bulk creation returned before it was killed: %v", err)
	}
	dir := t.TempDir()
	_, closeAll := openBulkDir(t, dir) // the root key and the store made
	closeAll()
	child := exec.Command(os.Args[0], "-test.run=^TestBulkCreateKeysKill9$", "-test.count=1")
	child.Env = append(os.Environ(), bulkChildEnv+"="+dir)
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	acked := 0
	sc := bufio.NewScanner(stdout)
	deadline := time.Now().Add(time.Minute)
	for acked < 3*bulkKillBatch && time.Now().Before(deadline) && sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "done "); ok {
			acked, _ = strconv.Atoi(n)
		}
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	if acked < 3*bulkKillBatch {
		t.Fatalf("the child reported %d keys before it was killed", acked)
	}

	s, closeAll := openBulkDir(t, dir)
	defer closeAll()
	ctx := context.Background()
	keys := map[string]bool{}
	records := map[string]int{}
	if err := s.store.View(ctx, func(tx keystore.Tx) error {
		if err := tx.Scan(bucketKeys, "", "", func(id string, raw []byte) bool {
			r, err := decodeKey(id, raw)
			if err != nil {
				t.Fatal(err)
			}
			keys[r.arn()] = true
			return true
		}); err != nil {
			return err
		}
		return tx.Scan(bucketOutbox, "", "", func(name string, raw []byte) bool {
			var r audit.Record
			if err := json.Unmarshal(raw, &r); err != nil || r.RequestID != name || r.EventName != "CreateKey" || len(r.Resources) != 1 {
				t.Fatalf("outbox entry %s: %s (%v)", name, raw, err)
			}
			records[r.Resources[0].ARN]++
			return true
		})
	}); err != nil {
		t.Fatal(err)
	}
	if len(keys) < acked || len(keys)%bulkKillBatch != 0 {
		t.Fatalf("%d keys after the kill, %d acknowledged, batches of %d", len(keys), acked, bulkKillBatch)
	}
	for arn := range keys {
		if records[arn] != 1 {
			t.Fatalf("key %s has %d records in the outbox, want 1", arn, records[arn])
		}
	}
	for arn := range records {
		if !keys[arn] {
			t.Fatalf("a record of %s, which is not stored", arn)
		}
	}
	t.Logf("%d keys, each with its record, after a kill with %d acknowledged", len(keys), acked)
}
