package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// twoTrails writes the trails of two nodes, each with its own Writer and
// signing key, their records interleaved in time: node A at even seconds
// from base, B at odd ones, with one second both write in. The trails
// sit as two nodes' data directories under one parent:
// parent/node-a/audit and parent/node-b/audit.
func twoTrails(t *testing.T) (parent string, dirs [2]string, base time.Time) {
	t.Helper()
	parent = t.TempDir()
	base = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for n, name := range []string{"node-a", "node-b"} {
		dirs[n] = filepath.Join(parent, name, "audit")
		key := newKey(t)
		// A small file size so that each trail spans several files.
		w := mustOpen(t, Config{Dir: dirs[n], Signer: key, DigestEvery: 4, MaxFileBytes: 4 << 10})
		if err := WritePublicKey(dirs[n], &key.PublicKey); err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			r := rec(100*n + i)
			r.EventTime = base.Add(time.Duration(2*i+n) * time.Second).Format(time.RFC3339)
			if i == 9 {
				r.EventTime = base.Add(30 * time.Second).Format(time.RFC3339) // the same second on both
			}
			if err := w.Append(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(parent, "not-a-node"), 0o700)
	return parent, dirs, base
}

// QueryTrails answers over several nodes' trails in time order, each
// record with the trail it came from; Trails finds them in a directory
// of data directories.
func TestQueryTrailsMerges(t *testing.T) {
	parent, dirs, base := twoTrails(t)
	found, err := Trails(parent)
	if err != nil || len(found) != 2 || found[0] != dirs[0] || found[1] != dirs[1] {
		t.Fatalf("Trails(%s) = %v, %v; want %v", parent, found, err, dirs)
	}
	if again, err := Trails(dirs[1], dirs[0]); err != nil || again[0] != dirs[1] || again[1] != dirs[0] {
		t.Fatalf("Trails of two trails: %v, %v", again, err)
	}
	if _, err := Trails(filepath.Join(parent, "not-a-node")); err == nil {
		t.Fatal("a directory with no trail was taken")
	}
	if _, err := Trails(parent, dirs[0]); err == nil {
		t.Fatal("a trail named twice was taken")
	}
	var got []string
	last := time.Time{}
	err = QueryTrails(found, Filter{}, func(trail int, r *Record) error {
		at, err := time.Parse(time.RFC3339, r.EventTime)
		if err != nil || at.Before(last) {
			return fmt.Errorf("record %s at %s after one at %s", r.RequestID, r.EventTime, last)
		}
		last = at
		// The record's trail is the node that wrote it: B's request IDs are 100+.
		if node := strings.HasPrefix(r.RequestID, "req-0001"); node != (trail == 1) {
			return fmt.Errorf("record %s attributed to trail %d", r.RequestID, trail)
		}
		got = append(got, strings.TrimPrefix(r.RequestID, "req-000"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "000,100,001,101,002,102,003,103,004,104,005,105,006,106,007,107,008,108,009,109"
	if strings.Join(got, ",") != want {
		t.Fatalf("merged order:\n%s\nwant\n%s", strings.Join(got, ","), want)
	}
	// Filters apply to each trail; fn's error stops the merge.
	got = got[:0]
	f := Filter{Since: base.Add(13 * time.Second), Until: base.Add(18 * time.Second)}
	if err := QueryTrails(found, f, func(trail int, r *Record) error {
		got = append(got, fmt.Sprint(trail, strings.TrimPrefix(r.RequestID, "req-000")))
		return nil
	}); err != nil || strings.Join(got, ",") != "1106,0007,1107,0008,1108" {
		t.Fatalf("filtered: %v, %v", got, err)
	}
	stop := errors.New("stop")
	n := 0
	if err := QueryTrails(found, Filter{}, func(int, *Record) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("fn's error: %v after %d records", err, n)
	}
	if err := QueryTrails([]string{dirs[0], filepath.Join(parent, "gone")}, Filter{}, func(int, *Record) error { return nil }); err == nil {
		t.Fatal("a missing trail was not an error")
	}
}

// VerifyTrails checks each node's chain on its own, against its own key,
// and names the trail that breaks while the other still verifies.
func TestVerifyTrailsEach(t *testing.T) {
	_, dirs, _ := twoTrails(t)
	reps, err := VerifyTrails(dirs[:])
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range reps {
		if r.Dir != dirs[i] || r.Err != nil || r.Report.Records < 10 || r.Report.Digests == 0 || r.Report.Files < 2 {
			t.Fatalf("trail %d: %+v %+v", i, r, r.Report)
		}
	}
	// Each trail is signed by its own node: B's key does not verify A's trail.
	b, err := os.ReadFile(filepath.Join(dirs[1], PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	a := filepath.Join(dirs[0], PublicKeyFile)
	aPub, _ := os.ReadFile(a)
	os.WriteFile(a, b, 0o644)
	if reps, err := VerifyTrails(dirs[:]); err == nil || reps[0].Err == nil || reps[1].Err != nil {
		t.Fatalf("A's trail verified with B's key: %v", err)
	}
	os.WriteFile(a, aPub, 0o644)
	// A record of B's trail changed: B is broken, A still verifies.
	fs := trail(t, dirs[1])
	raw, err := os.ReadFile(fs[0].path)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(fs[0].path, []byte(strings.Replace(string(raw), "req-000101", "req-000199", 1)), 0o600)
	reps, err = VerifyTrails(dirs[:])
	if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), dirs[1]) || strings.Contains(err.Error(), dirs[0]) {
		t.Fatalf("one broken trail: %v", err)
	}
	if reps[0].Err != nil || reps[1].Err == nil || reps[1].Report.Bad == nil || reps[1].Report.Bad.Seq != 2 {
		t.Fatalf("reports: A %v, B %v %+v", reps[0].Err, reps[1].Err, reps[1].Report.Bad)
	}
}
