// Package audit fuzzes the audit-log reader: Verify and Query over
// arbitrary file contents never panic, and a genuine chain verifies only
// while untouched.
package audit

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/audit"
)

func FuzzVerify(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	// A genuine log to mutate.
	dir := f.TempDir()
	w, err := audit.Open(audit.Config{Dir: dir, Signer: key, DigestEvery: 2})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		w.Append(context.Background(), &audit.Record{EventName: "Encrypt", EventTime: time.Unix(int64(i), 0).UTC().Format(time.RFC3339), EventType: audit.EventTypeAPICall})
	}
	w.Close()
	names, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	genuine, _ := os.ReadFile(names[0])
	f.Add(genuine)
	f.Add([]byte("{}\n"))
	f.Add([]byte(`{"seq":1,"prevHash":""}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, "audit-20260101T000000Z-000001.jsonl"), data, 0o600)
		rep, err := audit.Verify(d, &key.PublicKey)
		if err == nil && rep.Bad != nil {
			t.Fatal("a bad record without an error")
		}
		if err == nil && rep.Digests > 0 && string(data) != string(genuine) && rep.Records >= 4 {
			// Only the untouched genuine log (or a prefix ending in one of
			// its digests) can carry a valid signature over 4+ records.
			if len(data) > len(genuine) || string(genuine[:len(data)]) != string(data) {
				t.Fatalf("a modified log with %d records verified", rep.Records)
			}
		}
		audit.Query(d, audit.Filter{EventName: "Encrypt", KeyID: "k"}, func(*audit.Record) error { return nil })
	})
}
