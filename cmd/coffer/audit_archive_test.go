package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/kms"
)

// TestAuditArchiveCommand: `coffer audit archive` moves old segments of a
// real data dir's trail, signed with its audit key, and `audit verify`
// then checks the rest, and with --archive the archived segments.
func TestAuditArchiveCommand(t *testing.T) {
	dataDir := t.TempDir()
	root, _, err := openRoot(dataDir, rootOptions{kind: "software"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(dataDir, "audit")
	signer, err := kms.AuditSigner(context.Background(), root, filepath.Join(dataDir, kms.AuditKeyFile), dir)
	root.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The clock is read by the writer's goroutine too (anchors, digests).
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	w, err := audit.Open(audit.Config{Dir: dir, Signer: signer, MaxFileBytes: 1500, DigestEvery: 3, Now: func() time.Time { return time.Unix(0, now.Load()).UTC() }})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		r := &audit.Record{EventName: "Encrypt", AWSRegion: "us-east-1", RequestID: strings.Repeat("r", 200), EventID: audit.NewEventID()}
		if err := w.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		now.Add(int64(time.Hour))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(args)
		err := cmd.Execute()
		return out.String(), err
	}
	archive := filepath.Join(t.TempDir(), "archive")
	if out, err := run("audit", "archive", "--data-dir", dataDir, "--before", "yesterday", "--to", archive); err == nil {
		t.Fatalf("a bad time was accepted: %s", out)
	}
	out, err := run("audit", "archive", "--data-dir", dataDir, "--before", "2026-01-01T10:00:00Z", "--to", archive)
	if err != nil || !strings.Contains(out, "archived audit-") || !strings.Contains(out, "the trail now starts at seq") {
		t.Fatalf("archive: %v\n%s", err, out)
	}
	if entries, _ := os.ReadDir(archive); len(entries) == 0 {
		t.Fatal("nothing in the archive directory")
	}
	out, err = run("audit", "verify", dir, "--archive", archive)
	if err != nil || !strings.Contains(out, "OK:") || !strings.Contains(out, "archived: records 1..") || !strings.Contains(out, "archive OK:") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
}
