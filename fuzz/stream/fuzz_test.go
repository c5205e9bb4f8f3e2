// Package stream fuzzes the header parser and the body reader of package
// engine/stream.
package stream

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/coffer-kms/coffer/engine/stream"
)

var update = flag.Bool("update", false, "rewrite the golden streams and the seed corpora")

// fuzzMaster is fixed so that the golden streams, written once with it, are
// the only genuine streams in the fuzzer's world.
var fuzzMaster = bytes.Repeat([]byte{0x42}, 32)

var fuzzContext = map[string]string{"purpose": "fuzz"}

// goldens are the plaintext lengths and suites of testdata/golden.
var goldens = []struct {
	n     int
	suite stream.Suite
}{
	{0, stream.AES256GCM}, {1, stream.AES256GCM}, {100, stream.AES256GCM},
	{1, stream.ChaCha20Poly1305}, {65537, stream.AES256GCM},
}

func goldenName(i int) string {
	return filepath.Join("testdata", "golden", strconv.Itoa(i)+".cfs")
}

// plaintext is golden stream n's plaintext.
func plaintext(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + n)
	}
	return b
}

func provider(t testing.TB) *stream.LocalProvider {
	p, err := stream.NewLocalProvider(fuzzMaster)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// loadGoldens reads the golden streams, writing them first under -update.
func loadGoldens(t testing.TB) [][]byte {
	p := provider(t)
	var out [][]byte
	for i, g := range goldens {
		if *update {
			var buf bytes.Buffer
			w, err := stream.NewWriter(context.Background(), &buf, p, stream.Config{KeyID: p.KeyID(), Context: fuzzContext, Suite: g.suite})
			if err != nil {
				t.Fatal(err)
			}
			w.Write(plaintext(g.n))
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Dir(goldenName(i)), 0o755)
			if err := os.WriteFile(goldenName(i), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		b, err := os.ReadFile(goldenName(i))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// writeSeeds writes a seed corpus in the go fuzz v1 format.
func writeSeeds(t testing.TB, target string, seeds map[string][]byte) {
	dir := filepath.Join("testdata", "fuzz", target)
	os.MkdirAll(dir, 0o755)
	for name, b := range seeds {
		data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func seedsFrom(goldens [][]byte) map[string][]byte {
	seeds := map[string][]byte{}
	for i, g := range goldens {
		if len(g) > 4096 {
			continue // the fuzzer reaches the big one through f.Add
		}
		seeds[fmt.Sprintf("golden-%d", i)] = g
		h, _, _ := stream.ParseHeader(g)
		seeds[fmt.Sprintf("truncated-%d", i)] = g[:len(g)-1]
		seeds[fmt.Sprintf("trailing-%d", i)] = append(bytes.Clone(g), 0)
		if h != nil && len(g) > h.Size() {
			b := bytes.Clone(g)
			b[h.Size()+4] ^= 0x80 // the final flag
			seeds[fmt.Sprintf("final-flag-%d", i)] = b
		}
		b := bytes.Clone(g)
		b[8] = 2 // a future format version
		seeds[fmt.Sprintf("version-%d", i)] = b
	}
	return seeds
}

// FuzzHeader: whatever ParseHeader accepts, Marshal reproduces byte for
// byte, and ReadHeader reads the same header without consuming more.
func FuzzHeader(f *testing.F) {
	gs := loadGoldens(f)
	if *update {
		writeSeeds(f, "FuzzHeader", seedsFrom(gs))
	}
	for _, g := range gs {
		f.Add(g)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := stream.ParseHeader(b)
		if err != nil {
			if h != nil || n != 0 {
				t.Fatal("a failed parse returned a header")
			}
			return
		}
		m, err := h.Marshal()
		if err != nil {
			t.Fatalf("a parsed header does not marshal: %v", err)
		}
		if !bytes.Equal(m, b[:n]) || h.Size() != n {
			t.Fatalf("Marshal(Parse(b)) != b[:%d]", n)
		}
		r := bytes.NewReader(b)
		h2, err := stream.ReadHeader(r)
		if err != nil {
			t.Fatalf("ReadHeader refuses what ParseHeader accepts: %v", err)
		}
		if m2, _ := h2.Marshal(); !bytes.Equal(m2, m) || r.Len() != len(b)-n {
			t.Fatal("ReadHeader read another header or consumed the body")
		}
	})
}

// readAll decrypts b and returns the plaintext released and the error.
func readAll(p stream.KeyProvider, b []byte, workers int) ([]byte, error) {
	r, err := stream.NewReader(context.Background(), bytes.NewReader(b), p, stream.Config{Workers: workers})
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// copyAll decrypts b with io.Copy into a buffer: Reader.WriteTo, which opens
// packages straight from the bytes a bytes.Reader lends.
func copyAll(p stream.KeyProvider, b []byte, workers int) ([]byte, error) {
	r, err := stream.NewReader(context.Background(), bytes.NewReader(b), p, stream.Config{Workers: workers})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	_, err = io.Copy(&out, r)
	return out.Bytes(), err
}

// FuzzStream: a stream decrypts only if it is, byte for byte, one of the
// genuine golden streams, and then to its plaintext; the sequential (sio)
// and parallel paths release the same plaintext before the same kind of
// error; ReaderAt agrees on success.
func FuzzStream(f *testing.F) {
	gs := loadGoldens(f)
	if *update {
		writeSeeds(f, "FuzzStream", seedsFrom(gs))
	}
	for _, g := range gs {
		f.Add(g)
	}
	p := provider(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, errSeq := readAll(p, b, 1)
		par, errPar := readAll(p, b, 2)
		if !bytes.Equal(seq, par) {
			t.Fatalf("sequential released %d bytes, parallel %d", len(seq), len(par))
		}
		if (errSeq == nil) != (errPar == nil) {
			t.Fatalf("sequential: %v, parallel: %v", errSeq, errPar)
		}
		for _, sentinel := range []error{stream.ErrTruncated, stream.ErrTrailingData, stream.ErrSpliced, stream.ErrHeaderAuth, stream.ErrMalformedHeader} {
			if errors.Is(errSeq, sentinel) != errors.Is(errPar, sentinel) {
				t.Fatalf("sequential: %v, parallel: %v", errSeq, errPar)
			}
		}
		for _, workers := range []int{1, 2} {
			lent, errLent := copyAll(p, b, workers)
			if !bytes.Equal(lent, seq) || fmt.Sprint(errLent) != fmt.Sprint(errSeq) {
				t.Fatalf("copied from lent bytes (%d workers): %d bytes, %v; read: %d bytes, %v", workers, len(lent), errLent, len(seq), errSeq)
			}
		}
		ra, errAt := stream.NewReaderAt(context.Background(), bytes.NewReader(b), int64(len(b)), p, stream.Config{})
		var at []byte
		if errAt == nil {
			at = make([]byte, ra.Size())
			_, errAt = ra.ReadAt(at, 0)
			if errAt == io.EOF && ra.Size() == 0 {
				errAt = nil
			}
		}
		if (errAt == nil) != (errSeq == nil) || (errAt == nil && !bytes.Equal(at, seq)) {
			t.Fatalf("ReaderAt: %v, Reader: %v", errAt, errSeq)
		}
		if errSeq != nil {
			return
		}
		for i, g := range gs {
			if bytes.Equal(b, g) {
				if !bytes.Equal(seq, plaintext(goldens[i].n)) {
					t.Fatalf("golden %d decrypted to other plaintext", i)
				}
				return
			}
		}
		t.Fatalf("a stream that is not genuine decrypted (%d bytes of plaintext)", len(seq))
	})
}
