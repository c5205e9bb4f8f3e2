package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/audit"
)

// writeTrail writes a node's trail in dir: n Encrypt records, the i-th at
// base plus the i-th of at, signed by the node's own key.
func writeTrail(t *testing.T, dir, node string, base time.Time, at []int) {
	t.Helper()
	key, err := audit.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	w, err := audit.Open(audit.Config{Dir: dir, Signer: key, DigestEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.WritePublicKey(dir, &key.PublicKey); err != nil {
		t.Fatal(err)
	}
	for i, s := range at {
		r := &audit.Record{EventName: "Encrypt", AWSRegion: "us-east-1", RequestID: node + "-" + string(rune('0'+i)),
			EventID: "5e0d4a27-9a1e-4f6c-9a57-3c1f1b0f9d31", EventTime: base.Add(time.Duration(s) * time.Second).Format(time.RFC3339)}
		if err := w.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// `coffer audit query` and `verify` over the trails of two nodes, named as
// a directory of data directories or one by one.
func TestAuditCommandsSeveralTrails(t *testing.T) {
	parent := t.TempDir()
	a, b := filepath.Join(parent, "node-a", "audit"), filepath.Join(parent, "node-b", "audit")
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	writeTrail(t, a, "a", base, []int{0, 2, 4, 6})
	writeTrail(t, b, "b", base, []int{1, 3, 5})
	run := func(args ...string) (string, error) {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		err := root.Execute()
		return out.String(), err
	}
	for _, args := range [][]string{
		{"audit", "query", parent},
		{"audit", "query", a, b},
		{"audit", "query", "--dir", a, "--dir", b},
	} {
		out, err := run(args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var r struct {
				RequestID string `json:"requestID"`
				EventName string `json:"eventName"`
				Trail     string `json:"trail"`
			}
			if err := json.Unmarshal([]byte(line), &r); err != nil || r.EventName != "Encrypt" {
				t.Fatalf("%v: line %q: %v", args, line, err)
			}
			if want := map[byte]string{'a': a, 'b': b}[r.RequestID[0]]; r.Trail != want {
				t.Fatalf("%v: %s from trail %q, want %q", args, r.RequestID, r.Trail, want)
			}
			got = append(got, r.RequestID)
		}
		if strings.Join(got, ",") != "a-0,b-0,a-1,b-1,a-2,b-2,a-3" {
			t.Fatalf("%v: records in the order %v", args, got)
		}
	}
	// One trail: the output is as before, with no trail member.
	if out, err := run("audit", "query", "--dir", a, "--since", "2h"); err != nil || strings.Count(out, "\n") != 4 || strings.Contains(out, `"trail"`) {
		t.Fatalf("one trail: %v\n%s", err, out)
	}

	out, err := run("audit", "verify", parent)
	if err != nil || !strings.Contains(out, "trail "+a+":\n  OK: 6 records") || !strings.Contains(out, "trail "+b+":\n  OK: 5 records") ||
		!strings.Contains(out, "all 2 trails verify") {
		t.Fatalf("verify of two trails: %v\n%s", err, out)
	}
	// B's first record changed: B is broken, A still verifies, the command fails naming B.
	fs, _ := filepath.Glob(filepath.Join(b, "audit-*.jsonl"))
	raw, err := os.ReadFile(fs[0])
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(fs[0], bytes.Replace(raw, []byte(`"b-0"`), []byte(`"b-9"`), 1), 0o600)
	out, err = run("audit", "verify", a, b)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 audit trails do not verify: "+b) ||
		!strings.Contains(out, "trail "+a+":\n  OK: 6 records") || !strings.Contains(out, "trail "+b+":\n  BROKEN: first bad record") {
		t.Fatalf("verify with B broken: %v\n%s", err, out)
	}
	if _, err := run("audit", "verify", filepath.Join(parent, "node-a")); err != nil {
		t.Fatalf("a node's data directory names its trail: %v", err)
	}
}
