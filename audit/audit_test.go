package audit

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rec(i int) *Record {
	return &Record{EventVersion: "1.08", EventTime: time.Now().UTC().Format(time.RFC3339), EventSource: "kms.amazonaws.com",
		EventName: "Encrypt", AWSRegion: "us-east-1", RequestID: fmt.Sprintf("req-%d", i), EventID: fmt.Sprintf("ev-%d", i),
		EventType: EventTypeAPICall, UserIdentity: UserIdentity{Type: "IAMUser", ARN: "arn:aws:iam::111122223333:user/alice"},
		Resources: []Resource{{ARN: "arn:aws:kms:us-east-1:111122223333:key/k", Type: "AWS::KMS::Key"}}}
}

func writeN(t *testing.T, cfg Config, n int) {
	t.Helper()
	w, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestGroupCommitConcurrentAndVerify(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	w, err := Open(Config{Dir: dir, Signer: key, DigestEvery: 100})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if err := w.Append(context.Background(), rec(g*1000+i)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	st := w.Stats()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st.Records != 800 || st.Batches >= 800 {
		t.Fatalf("stats %+v: want 800 records in fewer fsyncs", st)
	}
	t.Logf("800 records in %d fsyncs (%.1f per fsync), %d digests", st.Batches, 800/float64(st.Batches), st.Digests)
	rep, err := Verify(dir, &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records < 808 || rep.Digests < 8 || rep.Unsealed != 0 || rep.Bad != nil {
		t.Fatalf("report %+v", rep)
	}
	seen := map[string]bool{}
	Query(dir, Filter{EventName: "Encrypt"}, func(r *Record) error { seen[r.RequestID] = true; return nil })
	if len(seen) != 800 {
		t.Fatalf("query found %d records", len(seen))
	}
	if _, err := Verify(dir, &newKey(t).PublicKey); !errors.Is(err, ErrBroken) {
		t.Fatal("verified with the wrong public key")
	}
}

func lines(t *testing.T, dir string) (string, [][]byte) {
	names, _ := files(dir)
	raw, err := os.ReadFile(names[0])
	if err != nil {
		t.Fatal(err)
	}
	return names[0], bytes.SplitAfter(raw, []byte("\n"))
}

func TestVerifyNamesTheFirstBadRecord(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutate func([][]byte) [][]byte
		seq    uint64
		reason string
	}{
		{"edited", func(l [][]byte) [][]byte {
			l[4] = bytes.Replace(l[4], []byte(`"Encrypt"`), []byte(`"Decrypt"`), 1)
			return l
		}, 5, "changed"},
		{"deleted", func(l [][]byte) [][]byte { return append(l[:4:4], l[5:]...) }, 6, "missing"},
		{"inserted", func(l [][]byte) [][]byte {
			return append(append(append([][]byte{}, l[:4]...), l[2]), l[4:]...)
		}, 3, "out of order or inserted"},
		{"reordered", func(l [][]byte) [][]byte { l[3], l[4] = l[4], l[3]; return l }, 5, "out of order"},
		{"digest forged", func(l [][]byte) [][]byte {
			i := len(l) - 2 // the final digest
			l[i] = bytes.Replace(l[i], []byte(`"lastSeq":`), []byte(`"lastSeq":1`), 1)
			return l
		}, 0, "digest"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, key := t.TempDir(), newKey(t)
			writeN(t, Config{Dir: dir, Signer: key}, 10)
			name, l := lines(t, dir)
			os.WriteFile(name, bytes.Join(c.mutate(l), nil), 0o600)
			rep, err := Verify(dir, &key.PublicKey)
			if !errors.Is(err, ErrBroken) || rep.Bad == nil {
				t.Fatalf("tampering not caught: %v", err)
			}
			if !strings.Contains(rep.Bad.Reason, c.reason) || (c.seq != 0 && rep.Bad.Seq != c.seq) {
				t.Fatalf("bad record %+v, want seq %d and %q", rep.Bad, c.seq, c.reason)
			}
		})
	}
}

func TestRecoveryAfterTornWriteAndRotation(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	writeN(t, Config{Dir: dir, Signer: key, MaxFileBytes: 2000}, 20)
	names, _ := files(dir)
	if len(names) < 3 {
		t.Fatalf("%d files: rotation by size did not happen", len(names))
	}
	// A crash mid-write leaves a torn line at the end of the last file.
	last := names[len(names)-1]
	f, _ := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0o600)
	f.WriteString(`{"eventVersion":"1.08","eventTi`)
	f.Close()
	writeN(t, Config{Dir: dir, Signer: key, MaxFileBytes: 2000}, 5)
	rep, err := Verify(dir, &key.PublicKey)
	if err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if rep.Records != 25+rep.Digests {
		t.Fatalf("report %+v", rep)
	}
	// Deleting a whole file in the middle is caught at the next file.
	os.Remove(names[1])
	if _, err := Verify(dir, &key.PublicKey); !errors.Is(err, ErrBroken) {
		t.Fatal("a deleted file went unnoticed")
	}
}

func TestFailedWriterRefuses(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	w, err := Open(Config{Dir: dir, Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(context.Background(), rec(0)); err != nil {
		t.Fatal(err)
	}
	w.f.Close() // the disk goes away under the writer
	if err := w.Append(context.Background(), rec(1)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("append to a dead file: %v", err)
	}
	if err := w.Append(context.Background(), rec(2)); !errors.Is(err, ErrUnavailable) || !w.Stats().Failed {
		t.Fatal("the writer did not stay failed")
	}
	w.Close()
}

func TestPublicKeyRoundTrip(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	if err := WritePublicKey(dir, &key.PublicKey); err != nil {
		t.Fatal(err)
	}
	pub, err := ReadPublicKey(dir)
	if err != nil || !pub.Equal(&key.PublicKey) {
		t.Fatalf("public key round trip: %v", err)
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, par := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("parallel=%d", par), func(b *testing.B) {
			w, err := Open(Config{Dir: b.TempDir(), Signer: newKey(b)})
			if err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(par)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := w.Append(context.Background(), rec(1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			st := w.Stats()
			b.ReportMetric(float64(st.Records)/float64(st.Batches), "records/fsync")
			w.Close()
		})
	}
}

// After a crash the next digest must start where the last one ended, even
// when records follow that digest.
func TestRecoveryContinuesTheDigestRange(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	w, err := Open(Config{Dir: dir, Signer: key, DigestEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 { // a digest after 3, then 2 unsealed records
		w.Append(context.Background(), rec(i))
	}
	w.f.Close() // crash: no final digest
	w2, err := Open(Config{Dir: dir, Signer: key, DigestEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		w2.Append(context.Background(), rec(10+i))
	}
	w2.Close()
	if rep, err := Verify(dir, &key.PublicKey); err != nil || rep.Unsealed != 0 {
		t.Fatalf("after recovery: %v %+v", err, rep)
	}
}
