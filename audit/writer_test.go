package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Many goroutines append at once: every acknowledged record is in the trail
// once, at the sequence number Append reported, each goroutine's records in
// the order it appended them, and the chain verifies. Run with -race.
func TestConcurrentAppendsAllPresentInOrder(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	w := mustOpen(t, Config{Dir: dir, Signer: key, DigestEvery: 100, MaxFileBytes: 64 << 10})
	const goroutines, each = 16, 60
	acked := make([][]uint64, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				r := rec(g*each + i)
				if err := w.Append(context.Background(), r); err != nil {
					t.Error(err)
					return
				}
				acked[g] = append(acked[g], r.Seq)
			}
		})
	}
	wg.Wait()
	st := w.Stats()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st.Records != goroutines*each || st.Batches >= goroutines*each {
		t.Fatalf("stats %+v: want %d records in fewer fsyncs", st, goroutines*each)
	}
	t.Logf("%d records in %d fsyncs (%.1f per fsync, largest batch %d), %d digests, %d files",
		st.Records, st.Batches, float64(st.Records)/float64(st.Batches), st.LargestBatch, st.Digests, len(trail(t, dir)))

	bySeq := map[uint64]string{}
	for _, r := range all(t, dir) {
		bySeq[r.Seq] = r.RequestID
	}
	for g, seqs := range acked {
		for i, seq := range seqs {
			if want := fmt.Sprintf("req-%06d", g*each+i); bySeq[seq] != want {
				t.Fatalf("seq %d holds %q, want %q", seq, bySeq[seq], want)
			}
			if i > 0 && seq <= seqs[i-1] {
				t.Fatalf("goroutine %d: seq %d acknowledged after %d", g, seq, seqs[i-1])
			}
		}
	}
	rep, err := Verify(dir, &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != goroutines*each+rep.Digests || rep.Unsealed != 0 || rep.Digests < goroutines*each/100 {
		t.Fatalf("report %+v", rep)
	}
}

func TestRecordLineAndDefaults(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	w := mustOpen(t, Config{Dir: dir, Signer: key})
	r := &Record{EventName: "Decrypt", AWSRegion: "eu-west-1", RequestID: "r1", EventID: NewEventID(), UserIdentity: UserIdentity{Type: "Root"}}
	if err := w.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if r.Seq != 1 || r.EventVersion != "1.08" || r.EventSource != "kms.amazonaws.com" || r.EventType != "AwsApiCall" {
		t.Fatalf("defaults not filled: %+v", r)
	}
	if _, err := time.Parse(time.RFC3339, r.EventTime); err != nil || !strings.HasSuffix(r.EventTime, "Z") {
		t.Fatalf("eventTime %q", r.EventTime)
	}
	w.Close()
	lines := fileLines(t, trail(t, dir)[0].path)
	if len(lines) != 2 {
		t.Fatalf("%d lines, want the record and the final digest", len(lines))
	}
	want := `{"eventVersion":"1.08","userIdentity":{"type":"Root"},"eventTime":"` + r.EventTime +
		`","eventSource":"kms.amazonaws.com","eventName":"Decrypt","awsRegion":"eu-west-1","requestID":"r1","eventID":"` + r.EventID +
		`","readOnly":false,"eventType":"AwsApiCall","seq":1,"prevHash":""}` + "\n"
	if string(lines[0]) != want {
		t.Fatalf("line\n%s\nwant\n%s", lines[0], want)
	}
	sum := sha256.Sum256(lines[0][:len(lines[0])-1])
	if !strings.Contains(string(lines[1]), `"eventName":"Digest"`) || !strings.HasSuffix(string(lines[1]), `"seq":2,"prevHash":"`+hex.EncodeToString(sum[:])+"\"}\n") {
		t.Fatalf("digest line %s", lines[1])
	}
}

func TestAppendRefusesBadRecordsAndStaysHealthy(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	w := mustOpen(t, Config{Dir: dir, Signer: key})
	defer w.Close()
	for name, r := range map[string]*Record{
		"parameters not JSON": {EventName: "Encrypt", RequestParameters: []byte(`{"keyId":`)},
		"response not JSON":   {EventName: "CreateKey", ResponseElements: []byte(`nope`)},
		"digest from caller":  {EventName: "Digest", Digest: &Digest{}},
		"longer than MaxLine": {EventName: "Encrypt", UserAgent: strings.Repeat("a", MaxLine)},
	} {
		if err := w.Append(context.Background(), r); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%s: %v, want ErrInvalidRecord", name, err)
		}
	}
	// A multi-line JSON value is compacted onto the record's line.
	r := rec(1)
	r.RequestParameters = []byte("{\n  \"keyId\": \"k\",\r\n  \"grantTokens\": 2\n}\n")
	if err := w.Append(context.Background(), r); err != nil || w.Stats().Failed {
		t.Fatalf("after refusals: %v %+v", err, w.Stats())
	}
	w.Close()
	if got := all(t, w.cfg.Dir); len(got) != 2 || string(got[0].RequestParameters) != `{"keyId":"k","grantTokens":2}` {
		t.Fatalf("records %+v", got)
	}
}

// Files rotate by size and by age, and the chain runs on across them: the
// first record of a file links to the last line of the one before.
func TestRotationContinuesTheChain(t *testing.T) {
	dir, key, clk := t.TempDir(), newKey(t), newClock()
	cfg := Config{Dir: dir, Signer: key, MaxFileBytes: 2000, MaxFileAge: time.Hour, DigestEvery: 7, Now: clk.Now}
	w := mustOpen(t, cfg)
	for i := range 20 {
		if err := w.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	bySize := len(trail(t, dir))
	clk.Add(61 * time.Minute)
	w.Append(context.Background(), rec(20)) // a new file: the last one is too old
	w.Close()
	fs := trail(t, dir)
	if bySize < 3 || len(fs) != bySize+1 {
		t.Fatalf("%d files by size, %d in all", bySize, len(fs))
	}
	for i, f := range fs {
		st, _ := os.Stat(f.path)
		if st.Size() > cfg.MaxFileBytes || st.Mode().Perm() != 0o600 || f.seq != uint64(i+1) {
			t.Fatalf("%s: %d bytes, mode %v", f.path, st.Size(), st.Mode())
		}
		if i > 0 {
			prev := fileLines(t, fs[i-1].path)
			last := prev[len(prev)-1]
			sum := sha256.Sum256(last[:len(last)-1])
			first := fileLines(t, f.path)[0]
			if !strings.Contains(string(first), `"prevHash":"`+hex.EncodeToString(sum[:])+`"`) {
				t.Fatalf("%s does not link to %s", filepath.Base(f.path), filepath.Base(fs[i-1].path))
			}
		}
	}
	if got, want := filepath.Base(fs[0].path), "audit-20261123T011400Z-000001.jsonl"; got != want {
		t.Fatalf("first file %s, want %s", got, want)
	}
	if got, want := filepath.Base(fs[len(fs)-1].path), fmt.Sprintf("audit-20261123T021500Z-%06d.jsonl", len(fs)); got != want {
		t.Fatalf("last file %s, want %s", got, want)
	}
	if rep, err := Verify(dir, &key.PublicKey); err != nil || rep.Files != len(fs) || rep.Unsealed != 0 {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

func TestDigestsByCountAndByTime(t *testing.T) {
	dir, key, clk := t.TempDir(), newKey(t), newClock()
	w := mustOpen(t, Config{Dir: dir, Signer: key, DigestEvery: 5, DigestInterval: time.Minute, Now: clk.Now})
	for i := range 12 {
		w.Append(context.Background(), rec(i))
	}
	clk.Add(time.Minute)
	w.Append(context.Background(), rec(12)) // sealed at once: the last digest is a minute old
	st := w.Stats()
	w.Close()
	var digests []*Digest
	for _, r := range all(t, dir) {
		if r.Digest != nil {
			digests = append(digests, r.Digest)
		}
	}
	// After records 1-5 (seq 1-5) and 6-10 (seq 7-11), then 11-13 by time.
	want := [][2]uint64{{1, 5}, {7, 11}, {13, 15}}
	if st.Digests != 3 || len(digests) != 3 {
		t.Fatalf("%d digests (stats %d), want 3", len(digests), st.Digests)
	}
	for i, d := range digests {
		if d.FirstSeq != want[i][0] || d.LastSeq != want[i][1] {
			t.Fatalf("digest %d seals %d-%d, want %d-%d", i, d.FirstSeq, d.LastSeq, want[i][0], want[i][1])
		}
	}
}

// An idle Writer seals what waits once DigestInterval has passed.
func TestIdleDigestAfterInterval(t *testing.T) {
	dir, key, clk := t.TempDir(), newKey(t), newClock()
	w := mustOpen(t, Config{Dir: dir, Signer: key, DigestInterval: 4 * time.Millisecond, Now: clk.Now})
	defer w.Close()
	w.Append(context.Background(), rec(0))
	clk.Add(time.Second)
	for w.Stats().Digests == 0 { // the ticker runs every millisecond
		time.Sleep(time.Millisecond)
	}
	if rep, err := Verify(dir, &key.PublicKey); err != nil || rep.Unsealed != 0 || rep.Digests != 1 {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

// A full queue blocks Append; a context that ends returns its error and the
// record is neither acknowledged nor written.
func TestBackPressureHonoursContext(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	fl := &faults{gate: make(chan struct{}), syncing: make(chan struct{}, 1)}
	w := fl.open(t, Config{Dir: dir, Signer: key, QueueSize: 2, MaxBatch: 1})
	errs := make(chan error, 3)
	go func() { errs <- w.Append(context.Background(), rec(0)) }()
	<-fl.syncing // record 0 is in the writer's fsync, which waits for the gate
	for i := 1; i <= 2; i++ {
		go func() { errs <- w.Append(context.Background(), rec(i)) }()
	}
	for w.Stats().QueueDepth < 2 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Append(ctx, rec(3)); !errors.Is(err, context.Canceled) {
		t.Fatalf("append to a full queue with an ended context: %v", err)
	}
	close(fl.gate)
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	var ids []string
	for _, r := range all(t, dir) {
		ids = append(ids, r.RequestID)
	}
	if got := strings.Join(ids, ","); got != "req-000000,req-000001,req-000002," && got != "req-000000,req-000002,req-000001," {
		t.Fatalf("records %s", got)
	}
}

// A write or fsync that fails refuses the records it carried and every
// Append after, promptly, until the disk recovers; then the trail goes on
// by itself, with no restart, and the chain verifies.
func TestWriteAndFsyncFailuresMakeItUnavailableUntilTheDiskRecovers(t *testing.T) {
	for _, c := range []struct {
		name  string
		set   func(*faults, error)
		cause error
		short string
	}{
		{"disk full", func(f *faults, e error) { f.writeErr.Store(&e) }, syscall.ENOSPC, "no space"},
		{"fsync", func(f *faults, e error) { f.syncErr.Store(&e) }, syscall.EIO, "I/O error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, key := t.TempDir(), newKey(t)
			fl := &faults{}
			w := fl.open(t, Config{Dir: dir, Signer: key})
			if err := w.Append(context.Background(), rec(0)); err != nil {
				t.Fatal(err)
			}
			c.set(fl, c.cause)
			err := w.Append(context.Background(), rec(1))
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, c.cause) {
				t.Fatalf("append when the disk fails: %v", err)
			}
			if err := w.Err(); err == nil || err.Error() != c.short || !errors.Is(err, c.cause) {
				t.Fatalf("Err while failing: %v", err)
			}
			// Refused at once while failing, however often it is retried.
			start := time.Now()
			for i := range 20 {
				if err := w.Append(context.Background(), rec(2+i)); !errors.Is(err, ErrUnavailable) || !w.Stats().Failed {
					t.Fatalf("append while failing: %v", err)
				}
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("refusals took %v", d)
			}
			fl.writeErr.Store(nil)
			fl.syncErr.Store(nil)
			waitHealthy(t, w)
			r := rec(99)
			if err := w.Append(context.Background(), r); err != nil {
				t.Fatalf("append once the disk recovered: %v", err)
			}
			if r.Seq != 2 {
				t.Fatalf("the record after the failure has seq %d, want 2 (refused records take no number)", r.Seq)
			}
			if err := w.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			rep := mustVerify(t, dir, &key.PublicKey)
			if rep.Anchor == nil || rep.Anchor.Seq != rep.LastSeq {
				t.Fatalf("anchor %+v, last seq %d", rep.Anchor, rep.LastSeq)
			}
			var ids []string
			for _, r := range all(t, dir) {
				if r.Digest == nil {
					ids = append(ids, r.RequestID)
				}
			}
			if got := strings.Join(ids, ","); got != "req-000000,req-000099" {
				t.Fatalf("records %s", got)
			}
			// A new Writer goes on from there.
			w2 := mustOpen(t, Config{Dir: dir, Signer: key})
			if err := w2.Append(context.Background(), rec(3)); err != nil {
				t.Fatal(err)
			}
			w2.Close()
			mustVerify(t, dir, &key.PublicKey)
		})
	}
}

func waitHealthy(t testing.TB, w *Writer) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); w.Err() != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the writer did not heal: %v", w.Err())
		}
	}
}

func TestAppendAfterClose(t *testing.T) {
	w := mustOpen(t, Config{Dir: t.TempDir(), Signer: newKey(t)})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(context.Background(), rec(0)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("append after close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if len(trail(t, w.cfg.Dir)) != 0 {
		t.Fatal("a Writer that wrote nothing left a file")
	}
}

// Close races with appenders: each Append either succeeds (and its record is
// there) or returns ErrUnavailable; none hangs.
func TestCloseWhileAppending(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	w := mustOpen(t, Config{Dir: dir, Signer: key, QueueSize: 4})
	var ok sync.Map
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				r := rec(g*1000 + i)
				err := w.Append(context.Background(), r)
				if errors.Is(err, ErrUnavailable) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				ok.Store(r.RequestID, true)
			}
		})
	}
	for w.Stats().Records < 50 {
		time.Sleep(time.Millisecond)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for _, r := range all(t, dir) {
		ok.Delete(r.RequestID)
	}
	ok.Range(func(k, _ any) bool { t.Errorf("acknowledged %s is missing", k); return true })
	if rep, err := Verify(dir, &key.PublicKey); err != nil || rep.Unsealed != 0 {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

func TestOpenChecksConfig(t *testing.T) {
	if _, err := Open(Config{Signer: newKey(t)}); err == nil {
		t.Fatal("opened without a directory")
	}
	if _, err := Open(Config{Dir: t.TempDir()}); err == nil {
		t.Fatal("opened without a signer")
	}
}

func TestPublicKeyRoundTrip(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	if _, err := ReadPublicKey(dir); err == nil {
		t.Fatal("read a key that is not there")
	}
	if err := WritePublicKey(dir, &key.PublicKey); err != nil {
		t.Fatal(err)
	}
	pub, err := ReadPublicKey(dir)
	if err != nil || !pub.Equal(&key.PublicKey) {
		t.Fatalf("public key round trip: %v", err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, PublicKeyFile))
	if !strings.HasPrefix(string(raw), "-----BEGIN PUBLIC KEY-----\n") {
		t.Fatalf("not PEM: %s", raw)
	}
	os.WriteFile(filepath.Join(dir, PublicKeyFile), []byte("not a key"), 0o644)
	if _, err := ReadPublicKey(dir); err == nil {
		t.Fatal("read garbage as a key")
	}
}

func TestNewEventIDIsAUUID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := NewEventID()
		if len(id) != 36 || id[14] != '4' || !strings.ContainsRune("89ab", rune(id[19])) || strings.Count(id, "-") != 4 || seen[id] {
			t.Fatalf("event ID %q", id)
		}
		seen[id] = true
	}
}
