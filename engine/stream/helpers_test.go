package stream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

var testCtx = map[string]string{"bucket": "logs", "object": "2026/01/01.gz"}

func newTestProvider(t testing.TB) *LocalProvider {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	p, err := NewLocalProvider(key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Destroy)
	return p
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	if n <= 1<<20 {
		rand.Read(b)
		return b
	}
	// Benchmark inputs: crypto/rand makes 256 MiB slowly, and a GC that
	// starts meanwhile spins trying to stop the goroutine in the vDSO.
	var seed [32]byte
	rand.Read(seed[:])
	mrand.NewChaCha8(seed).Read(b)
	return b
}

// encrypt writes plaintext through a Writer in pieces of step bytes
// (random-sized if 0). Its destination alternates between a bytes.Buffer,
// whose spare capacity the Writer seals into (see window), and a plain
// io.Writer, so that every test that builds streams with it covers both.
func encrypt(t testing.TB, p KeyProvider, cfg Config, plaintext []byte, step int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if encrypts.Add(1)%2 == 0 {
		encryptTo(t, &buf, p, cfg, plaintext, step)
	} else {
		encryptTo(t, struct{ io.Writer }{&buf}, p, cfg, plaintext, step)
	}
	return buf.Bytes()
}

var encrypts atomic.Int64

// encryptTo is encrypt to dst; it returns the Writer, closed.
func encryptTo(t testing.TB, dst io.Writer, p KeyProvider, cfg Config, plaintext []byte, step int) *Writer {
	t.Helper()
	if cfg.KeyID == "" {
		cfg.KeyID = p.(*LocalProvider).KeyID()
	}
	w, err := NewWriter(context.Background(), dst, p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for rest := plaintext; len(rest) > 0; {
		n := min(step, len(rest))
		if step <= 0 {
			n = min(1+mrand.IntN(3*maxPayload), len(rest))
		}
		if m, err := w.Write(rest[:n]); err != nil || m != n {
			t.Fatalf("Write: %d, %v", m, err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w
}

// decrypt reads a stream with Read calls of step bytes (random if 0), from
// a source that reads at offsets (a bytes.Reader) and again from a plain
// io.Reader, and fails unless both give the same bytes and the same error.
//
// It also copies the stream into a file (io.Copy, which the parallel path
// writes at offsets from its workers) and fails unless the file then holds
// the same bytes and the copy returned the same error.
func decrypt(p KeyProvider, cfg Config, stream []byte, step int) ([]byte, error) {
	out, err := decryptReads(p, cfg, stream, step)
	if errors.Is(err, errReadsDiffer) {
		return out, err
	}
	out3, err3 := decryptToFile(p, cfg, stream)
	if !bytes.Equal(out, out3) || fmt.Sprint(err) != fmt.Sprint(err3) {
		return out, fmt.Errorf("reads and a copy to a file differ: %d bytes, %v; %d bytes, %v", len(out), err, len(out3), err3)
	}
	for _, c := range copies {
		out4, err4 := decryptToBuffer(p, cfg, stream, c.src, c.dst)
		if !bytes.Equal(out, out4) || fmt.Sprint(err) != fmt.Sprint(err4) {
			return out, fmt.Errorf("reads and a copy from a %s to a %s differ: %d bytes, %v; %d bytes, %v", c.src, c.dst, len(out), err, len(out4), err4)
		}
	}
	return out, err
}

// copies are the sources and destinations decrypt copies between: every
// source (lending all at once, lending in pieces, not lending) into a
// destination that lends its capacity, and every destination.
var copies = []struct{ src, dst string }{
	{"bytes.Reader", "bytes.Buffer"},
	{"pieces", "bytes.Buffer"},
	{"reader", "bytes.Buffer"},
	{"bytes.Buffer", "bufio.Writer"},
	{"pieces", "writer"},
	{"bytes.Reader", "writer"},
}

// pieces is a source that lends its bytes (see lender) to its WriteTo's
// writer in pieces: of the sizes in cuts first, then of random sizes (a
// few bytes, cut inside package headers; about a package; or more).
type pieces struct {
	b    []byte
	cuts []int
}

func (s *pieces) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

func (s *pieces) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for len(s.b) > 0 {
		var n int
		switch k := mrand.IntN(3); {
		case len(s.cuts) > 0:
			n, s.cuts = s.cuts[0], s.cuts[1:]
		case k == 0:
			n = 1 + mrand.IntN(20)
		case k == 1:
			n = maxPackage - 20 + mrand.IntN(40)
		default:
			n = 1 + mrand.IntN(3*maxPackage)
		}
		n = min(n, len(s.b))
		m, err := w.Write(s.b[:n])
		s.b = s.b[m:]
		total += int64(m)
		if err != nil {
			return total, err
		}
		if m < n {
			return total, io.ErrShortWrite
		}
	}
	return total, nil
}

func (*pieces) lendsBytes() {}

// decryptReads is the part of decrypt that reads with Read calls of step
// bytes: from a source that reads at offsets and from a plain io.Reader.
func decryptReads(p KeyProvider, cfg Config, stream []byte, step int) ([]byte, error) {
	out, err := decryptFrom(p, cfg, bytes.NewReader(stream), step)
	out2, err2 := decryptFrom(p, cfg, struct{ io.Reader }{bytes.NewReader(stream)}, step)
	if !bytes.Equal(out, out2) || fmt.Sprint(err) != fmt.Sprint(err2) {
		return out, fmt.Errorf("%w: %d bytes, %v; %d bytes, %v", errReadsDiffer, len(out), err, len(out2), err2)
	}
	return out, err
}

var errReadsDiffer = errors.New("reads at offsets and plain reads differ")

// decryptToBuffer decrypts stream with io.Copy from src — a source that
// lends its bytes (a bytes.Reader, a bytes.Buffer, pieces) or a plain
// reader — into a bytes.Buffer that holds a prefix: directly, through a
// bufio.Writer of 1 MiB (both of which the Reader opens packages into, see
// window) or through a plain writer. It returns what follows the prefix,
// and fails if anything it did not deliver is left in the buffer's free
// capacity or if the source's bytes were changed.
func decryptToBuffer(p KeyProvider, cfg Config, stream []byte, src, dst string) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("prefix")
	lent := bytes.Clone(stream)
	var from io.Reader
	switch src {
	case "bytes.Reader":
		from = bytes.NewReader(lent)
	case "bytes.Buffer":
		from = bytes.NewBuffer(lent)
	case "pieces":
		from = &pieces{b: lent}
	default:
		from = struct{ io.Reader }{bytes.NewReader(lent)}
	}
	r, err := NewReader(context.Background(), from, p, cfg)
	if err != nil {
		return nil, err
	}
	var n int64
	var copyErr error
	switch dst {
	case "bufio.Writer":
		bw := bufio.NewWriterSize(&buf, 1<<20)
		n, copyErr = io.Copy(bw, r)
		if err := bw.Flush(); err != nil && copyErr == nil { // else bufio kept copyErr
			return nil, err
		}
	case "writer":
		n, copyErr = io.Copy(struct{ io.Writer }{&buf}, r)
	default:
		n, copyErr = io.Copy(&buf, r)
	}
	if !bytes.Equal(lent, stream) {
		return nil, fmt.Errorf("decrypting from a %s changed its bytes", src)
	}
	b := buf.Bytes()
	if !bytes.HasPrefix(b, []byte("prefix")) || n != int64(len(b)-6) {
		return nil, fmt.Errorf("copied %d bytes; the buffer holds %d after a prefix %q", n, len(b)-6, b[:min(6, len(b))])
	}
	if copyErr != nil {
		if free := b[len(b):cap(b)]; !allZero(free) {
			return nil, fmt.Errorf("after %v, the buffer's free capacity holds bytes it was not given", copyErr)
		}
	}
	return b[6:], copyErr
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// decryptToFile decrypts stream with io.Copy into a file after a prefix
// and returns what the file holds after the prefix, checking that its
// offset is at its end.
func decryptToFile(p KeyProvider, cfg Config, stream []byte) ([]byte, error) {
	f, err := os.CreateTemp("", "stream-test-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	prefix := []byte("prefix")
	if _, err := f.Write(prefix); err != nil {
		return nil, err
	}
	r, err := NewReader(context.Background(), bytes.NewReader(stream), p, cfg)
	if err != nil {
		return nil, err
	}
	n, copyErr := io.Copy(f, r)
	b, err := os.ReadFile(f.Name())
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(b, prefix) {
		return nil, errors.New("the copy overwrote the file's prefix")
	}
	b = b[len(prefix):]
	if pos, err := f.Seek(0, io.SeekCurrent); err != nil || pos != int64(len(prefix)+len(b)) || n != int64(len(b)) {
		return nil, fmt.Errorf("copied %d bytes; the file holds %d after the prefix and its offset is %d (%v)", n, len(b), pos, err)
	}
	return b, copyErr
}

func decryptFrom(p KeyProvider, cfg Config, src io.Reader, step int) ([]byte, error) {
	r, err := NewReader(context.Background(), src, p, cfg)
	if err != nil {
		return nil, err
	}
	var out []byte
	for {
		n := step
		if step <= 0 {
			n = 1 + mrand.IntN(3*maxPayload)
		}
		b := make([]byte, n)
		m, err := r.Read(b)
		out = append(out, b[:m]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// body splits a stream into its header and body.
func body(t testing.TB, stream []byte) (*Header, []byte) {
	t.Helper()
	h, n, err := ParseHeader(stream)
	if err != nil {
		t.Fatal(err)
	}
	return h, stream[n:]
}

// modes are the paths every behaviour is tested on: the sequential path
// (the kernel on an inline ring where asm has one, else minio/sio), the
// sequential path through minio/sio on every CPU, and the parallel ring.
var modes = []mode{{"sequential", 1, false}, {"sio", 1, true}, {"parallel", 4, false}}

type mode struct {
	name    string
	workers int
	viaSIO  bool
}

// cfg is c on m's path.
func (m mode) cfg(c Config) Config {
	c.Workers, c.viaSIO = m.workers, m.viaSIO
	return c
}

// memFile is an in-memory file: Write at its offset, WriteAt anywhere
// (in parallel, as io.WriterAt allows for disjoint ranges), Seek. It stands
// for an *os.File as the Writer's destination.
type memFile struct {
	mu   sync.RWMutex // held to grow b; read-held to copy into it
	b    []byte       // room: the file is b[:size]
	size atomic.Int64
	off  int64 // Write's and Seek's, used by one goroutine
}

func (f *memFile) Write(p []byte) (int, error) {
	n, err := f.WriteAt(p, f.off)
	f.off += int64(n)
	return n, err
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	end := off + int64(len(p))
	f.mu.RLock()
	if end > int64(len(f.b)) {
		f.mu.RUnlock()
		f.mu.Lock()
		if end > int64(len(f.b)) {
			f.b = append(f.b, make([]byte, end-int64(len(f.b)))...)
		}
		f.mu.Unlock()
		f.mu.RLock()
	}
	copy(f.b[off:], p)
	f.mu.RUnlock()
	for size := f.size.Load(); end > size && !f.size.CompareAndSwap(size, end); size = f.size.Load() {
	}
	return len(p), nil
}

func (f *memFile) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		f.off = offset
	case io.SeekCurrent:
		f.off += offset
	case io.SeekEnd:
		f.off = f.size.Load() + offset
	}
	return f.off, nil
}

// bytes returns the file's contents.
func (f *memFile) bytes() []byte { return f.b[:f.size.Load()] }

// reset empties the file and keeps its room.
func (f *memFile) reset() { f.size.Store(0); f.off = 0 }

// encryptAt is encrypt to a memFile that already holds prefix: the Writer
// writes at offsets. It checks that the prefix is intact and that the
// file's offset is at the end of the stream after Close, and returns the
// stream.
func encryptAt(t testing.TB, p KeyProvider, cfg Config, plaintext, prefix []byte, step int) []byte {
	t.Helper()
	f := &memFile{}
	f.Write(prefix)
	if w := encryptTo(t, f, p, cfg, plaintext, step); w.at == nil && workers(cfg.Workers) > 1 {
		t.Fatal("a memFile destination was not written at offsets")
	}
	b := f.bytes()
	if !bytes.Equal(b[:len(prefix)], prefix) {
		t.Fatal("the bytes before the stream changed")
	}
	if f.off != int64(len(b)) {
		t.Fatalf("offset %d after Close, the file is %d bytes", f.off, len(b))
	}
	return b[len(prefix):]
}
