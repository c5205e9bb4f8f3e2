package audit

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const testKeyARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// rec is a typical Encrypt record.
func rec(i int) *Record {
	return &Record{
		EventTime: "2026-11-23T01:14:00Z",
		EventName: "Encrypt",
		AWSRegion: "us-east-1",
		UserIdentity: UserIdentity{Type: "IAMUser", PrincipalID: "AIDAEXAMPLE", ARN: "arn:aws:iam::111122223333:user/alice",
			AccountID: "111122223333", AccessKeyID: "AKIAIOSFODNN7EXAMPLE"},
		SourceIPAddress:    "192.0.2.10",
		UserAgent:          "aws-sdk-go-v2/1.47.7 os/linux lang/go#1.26",
		RequestParameters:  []byte(`{"keyId":"alias/app","encryptionContext":{"tenant":"acme"},"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}`),
		RequestID:          fmt.Sprintf("req-%06d", i),
		EventID:            "5e0d4a27-9a1e-4f6c-9a57-3c1f1b0f9d31",
		ReadOnly:           true,
		Resources:          []Resource{{ARN: testKeyARN, Type: ResourceTypeKey, AccountID: "111122223333"}},
		RecipientAccountID: "111122223333",
	}
}

func mustOpen(t testing.TB, cfg Config) *Writer {
	t.Helper()
	w, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// writeN appends n records one after another and closes the Writer.
func writeN(t testing.TB, cfg Config, first, n int) {
	t.Helper()
	w := mustOpen(t, cfg)
	for i := range n {
		if err := w.Append(context.Background(), rec(first+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func trail(t testing.TB, dir string) []trailFile {
	t.Helper()
	fs, err := listFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// fileLines splits a file into its lines, newlines kept.
func fileLines(t testing.TB, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(raw, []byte("\n"))[:bytes.Count(raw, []byte("\n"))]
}

func writeLines(t testing.TB, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

// all returns every record of the trail, digests included, in order.
func all(t testing.TB, dir string) []*Record {
	t.Helper()
	var out []*Record
	for _, tf := range trail(t, dir) {
		if _, err := readRecords(tf.path, 0, nil, func(r *Record) error { out = append(out, r); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 23, 1, 14, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// faultyFile fails or stalls writes and fsyncs on demand.
type faultyFile struct {
	file
	writeErr, syncErr *atomic.Pointer[error]
	gate              chan struct{} // Sync waits for it when not nil
	syncing           chan struct{} // told when a Sync starts, when not nil
}

func (f *faultyFile) WriteAt(b []byte, off int64) (int, error) {
	if e := f.writeErr.Load(); e != nil {
		return 0, *e
	}
	return f.file.WriteAt(b, off)
}

func (f *faultyFile) Sync() error {
	if f.syncing != nil {
		select {
		case f.syncing <- struct{}{}:
		default:
		}
	}
	if f.gate != nil {
		<-f.gate
	}
	if e := f.syncErr.Load(); e != nil {
		return *e
	}
	return f.file.Sync()
}

type faults struct {
	writeErr, syncErr atomic.Pointer[error]
	gate, syncing     chan struct{}
}

func (fl *faults) open(t testing.TB, cfg Config) *Writer {
	t.Helper()
	w, err := openWith(cfg, func(path string, fresh bool) (file, error) {
		f, err := createFile(path, fresh)
		if err != nil {
			return nil, err
		}
		return &faultyFile{file: f, writeErr: &fl.writeErr, syncErr: &fl.syncErr, gate: fl.gate, syncing: fl.syncing}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}
