package stream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// openAll decrypts stream on both paths and through ReaderAt and requires
// each to fail with want.
func openAll(t *testing.T, name string, p KeyProvider, cfg Config, stream []byte, want error) {
	t.Helper()
	for _, m := range modes {
		cfg = m.cfg(cfg)
		if _, err := decrypt(p, cfg, stream, 0); !errors.Is(err, want) {
			t.Errorf("%s, %s: got %v, want %v", name, m.name, err, want)
		}
	}
	ra, err := NewReaderAt(context.Background(), bytes.NewReader(stream), int64(len(stream)), p, cfg)
	if err == nil {
		_, err = ra.ReadAt(make([]byte, ra.Size()), 0)
	}
	if !errors.Is(err, want) {
		t.Errorf("%s, ReaderAt: got %v, want %v", name, err, want)
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestTampering(t *testing.T) {
	p := newTestProvider(t)
	const n = 3*maxPayload + 100 // four packages, the last short
	pt := randBytes(n)
	stream := encrypt(t, p, Config{Context: testCtx}, pt, 0)
	h, b := body(t, stream)
	hdr := stream[:len(stream)-len(b)]
	pkg := func(i int) []byte { return b[i*maxPackage : min((i+1)*maxPackage, len(b))] }
	other := encrypt(t, p, Config{Context: testCtx}, pt, 0)
	_, ob := body(t, other)

	// Truncation: at every package boundary, inside a package, inside a
	// package header, and the whole body.
	for _, cut := range []int{0, 1, 15, 16, 100, maxPackage, maxPackage + 7, 2 * maxPackage, 3 * maxPackage, len(b) - 1} {
		openAll(t, "truncated body", p, Config{}, stream[:len(hdr)+cut], ErrTruncated)
	}
	// Trailing data, down to one byte, and a whole repeated package.
	openAll(t, "1 trailing byte", p, Config{}, cat(stream, []byte{0}), ErrTrailingData)
	openAll(t, "100 trailing bytes", p, Config{}, cat(stream, make([]byte, 100)), ErrTrailingData)
	openAll(t, "final package twice", p, Config{}, cat(stream, pkg(3)), ErrTrailingData)
	// Reordering.
	openAll(t, "packages 0 and 1 swapped", p, Config{}, cat(hdr, pkg(1), pkg(0), pkg(2), pkg(3)), ErrNotAuthentic)
	openAll(t, "package 1 repeated", p, Config{}, cat(hdr, pkg(0), pkg(1), pkg(1), pkg(2), pkg(3)), ErrNotAuthentic)
	// Splicing: a package from another stream, and another stream's body.
	openAll(t, "package 2 from another stream", p, Config{}, cat(hdr, pkg(0), pkg(1), ob[2*maxPackage:3*maxPackage], pkg(3)), ErrSpliced)
	openAll(t, "another stream's body", p, Config{}, cat(hdr, ob), ErrNotAuthentic)
	// Every byte of a package: header, payload, tag.
	for _, off := range []int{0, 1, 2, 3, 4, 15, 16, 1000, maxPackage - 1, maxPackage + 3, maxPackage + 4, maxPackage + 15, len(b) - 1} {
		bad := bytes.Clone(stream)
		bad[len(hdr)+off] ^= 0x01
		want := ErrNotAuthentic
		if off >= maxPackage && off%maxPackage >= 4 && off%maxPackage < 16 {
			want = ErrSpliced // the nonce bytes
		}
		openAll(t, "flipped body byte", p, Config{}, bad, want)
	}
	// The final flag set on a full package in the middle.
	bad := bytes.Clone(stream)
	bad[len(hdr)+maxPackage+4] |= finalFlag
	openAll(t, "final flag on package 1", p, Config{}, bad, ErrNotAuthentic)

	// Header: every field, the MAC, the empty flag.
	for off := range len(hdr) {
		bad := bytes.Clone(stream)
		bad[off] ^= 0x04
		for _, m := range modes {
			if _, err := decrypt(p, m.cfg(Config{}), bad, 0); err == nil {
				t.Fatalf("header byte %d flipped: decrypted", off)
			}
		}
	}
	openAll(t, "MAC flipped", p, Config{}, flip(stream, len(hdr)-1), ErrHeaderAuth)
	openAll(t, "message ID flipped", p, Config{}, flip(stream, 20), ErrHeaderAuth)
	openAll(t, "suite changed", p, Config{}, flip(stream, 9), ErrHeaderAuth)
	empty := flip(stream, 10)
	openAll(t, "empty flag set", p, Config{}, empty, ErrHeaderAuth)
	openAll(t, "bad magic", p, Config{}, flip(stream, 0), ErrMalformedHeader)
	openAll(t, "version 2", p, Config{}, flip(stream, 8), ErrUnsupportedVersion)
	openAll(t, "cut header", p, Config{}, stream[:len(hdr)-1], ErrMalformedHeader)

	// Wrong key, wrong context.
	openAll(t, "wrong master key", newTestProvider(t), Config{}, stream, ErrLocalKeyID)
	other2 := newTestProvider(t)
	openAll(t, "wrong master key, its key ID", other2, Config{KeyID: other2.KeyID()}, stream, ErrLocalBlob)
	openAll(t, "required context missing", p, Config{Context: map[string]string{"bucket": "other"}}, stream, ErrContextMismatch)
	openAll(t, "required context key absent", p, Config{Context: map[string]string{"tenant": "a"}}, stream, ErrContextMismatch)
	if _, err := decrypt(p, Config{Context: map[string]string{"bucket": "logs"}}, stream, 0); err != nil {
		t.Fatalf("required context present: %v", err)
	}
	_ = h
}

func flip(b []byte, off int) []byte {
	c := bytes.Clone(b)
	c[off] ^= 0x01
	return c
}

// The header's context is bound to the data key by the provider: a header
// rewritten with another context (and a MAC the attacker cannot compute)
// fails before any body byte.
func TestHeaderContextRewritten(t *testing.T) {
	p := newTestProvider(t)
	stream := encrypt(t, p, Config{Context: testCtx}, randBytes(10), 0)
	h, b := body(t, stream)
	h.Context = map[string]string{"bucket": "logs", "object": "other"}
	forged, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	openAll(t, "context rewritten", p, Config{}, cat(forged, b), ErrLocalBlob)
}

// What a reader releases before an error: exactly the packages before the
// damaged one, on both paths.
func TestPlaintextBeforeError(t *testing.T) {
	p := newTestProvider(t)
	pt := randBytes(5 * maxPayload)
	stream := encrypt(t, p, Config{}, pt, 0)
	_, b := body(t, stream)
	bad := flip(stream, len(stream)-len(b)+2*maxPackage+100) // package 2's payload
	for _, m := range modes {
		for _, step := range []int{1000, maxPayload, 1 << 20} {
			got, err := decrypt(p, m.cfg(Config{}), bad, step)
			var pe *PackageError
			if !errors.As(err, &pe) || pe.Package != 2 || !errors.Is(err, ErrNotAuthentic) {
				t.Fatalf("%s: %v", m.name, err)
			}
			if !bytes.Equal(got, pt[:2*maxPayload]) {
				t.Fatalf("%s step %d: released %d bytes, want the %d of packages 0 and 1", m.name, step, len(got), 2*maxPayload)
			}
		}
	}
}

func TestEmptyStream(t *testing.T) {
	p := newTestProvider(t)
	for _, m := range modes {
		stream := encrypt(t, p, m.cfg(Config{}), nil, 0)
		h, b := body(t, stream)
		if !h.Empty || len(b) != 0 {
			t.Fatalf("%s: empty stream has Empty=%v and %d body bytes", m.name, h.Empty, len(b))
		}
		got, err := decrypt(p, Config{}, stream, 0)
		if err != nil || len(got) != 0 {
			t.Fatal(err)
		}
		openAll(t, "empty stream with a body", p, Config{}, cat(stream, encrypt(t, p, Config{}, []byte("x"), 0)[len(stream):]), ErrTrailingData)
	}
}

// Trailing data withholds the final package's plaintext on both paths:
// only the packages before it are released.
func TestTrailingDataWithholdsFinal(t *testing.T) {
	p := newTestProvider(t)
	for _, n := range []int{100, 2*maxPayload + 100, 3 * maxPayload} {
		pt := randBytes(n)
		stream := cat(encrypt(t, p, Config{}, pt, 0), []byte("x"))
		for _, m := range modes {
			got, err := decrypt(p, m.cfg(Config{}), stream, 0)
			if !errors.Is(err, ErrTrailingData) || len(got) != (n-1)/maxPayload*maxPayload {
				t.Fatalf("%s, %d bytes: released %d, %v", m.name, n, len(got), err)
			}
		}
	}
}

// A source that lends its bytes in pieces may end a piece exactly where the
// final package ends: bytes in a later piece are trailing data all the
// same, and withhold the final package; bytes cut anywhere else are read
// as one body.
func TestLentPiecesAtPackageEnds(t *testing.T) {
	p := newTestProvider(t)
	pt := randBytes(2*maxPayload + 100)
	stream := encrypt(t, p, Config{}, pt, 0)
	_, b := body(t, stream)
	hdr := len(stream) - len(b)
	for _, m := range modes {
		if m.viaSIO {
			continue // minio/sio's reader: not a ring, no lending
		}
		for _, c := range []struct {
			name  string
			extra []byte
			cuts  []int // piece sizes after the header
			want  error
			got   int
		}{
			{"trailing byte in the next piece", []byte("x"), []int{len(b)}, ErrTrailingData, 2 * maxPayload},
			{"trailing package in the next piece", b[:maxPackage], []int{len(b)}, ErrTrailingData, 2 * maxPayload},
			{"trailing byte in the same piece", []byte("x"), []int{len(b) + 1}, ErrTrailingData, 2 * maxPayload},
			{"one piece a package", nil, []int{maxPackage, maxPackage, len(b) - 2*maxPackage}, nil, len(pt)},
			{"cut in a header", nil, []int{maxPackage + 3, 10, 3}, nil, len(pt)},
			{"truncated in a header", nil, []int{maxPackage + 3}, ErrTruncated, maxPayload},
			{"truncated in a payload", nil, []int{maxPackage + 30}, ErrTruncated, maxPayload},
		} {
			src := &pieces{b: cat(stream, c.extra), cuts: c.cuts}
			if c.name[:9] == "truncated" {
				src.b = src.b[:hdr+c.cuts[0]]
			}
			r, err := NewReader(context.Background(), src, p, m.cfg(Config{}))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			_, err = io.Copy(&out, r)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) || out.Len() != c.got || !bytes.Equal(out.Bytes(), pt[:out.Len()]) {
				t.Errorf("%s, %s: released %d bytes, %v; want %d, %v", m.name, c.name, out.Len(), err, c.got, c.want)
			}
		}
	}
}

// atFile is a file that counts the writes at offsets it takes.
type atFile struct {
	*os.File
	at atomic.Int64
}

func (f *atFile) WriteAt(p []byte, off int64) (int, error) {
	f.at.Add(1)
	return f.File.WriteAt(p, off)
}

// Copied into a file, the parallel Reader's workers write each package's
// plaintext at its offset; a package that fails leaves the file holding
// exactly the plaintext before it, whatever the workers wrote after it.
func TestWriteToFileAtOffsets(t *testing.T) {
	p := newTestProvider(t)
	const packages = 40
	pt := randBytes(packages*maxPayload - 100)
	stream := encrypt(t, p, Config{}, pt, 0)
	_, b := body(t, stream)
	hdrLen := len(stream) - len(b)
	for i, bad := range []int{-1, 0, 7, packages - 1, -1, 7} {
		s := stream
		if bad >= 0 {
			s = flip(stream, hdrLen+bad*maxPackage+pkgHeaderSize+100)
		}
		var src io.Reader = bytes.NewReader(s) // read at offsets too
		if i >= 4 {
			src = struct{ io.Reader }{src} // read in order only
		}
		f, err := os.Create(filepath.Join(t.TempDir(), "out"))
		if err != nil {
			t.Fatal(err)
		}
		dst := &atFile{File: f}
		r, err := NewReader(context.Background(), src, p, Config{Workers: 4})
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(dst, r)
		got, _ := os.ReadFile(f.Name())
		f.Close()
		want := pt
		if bad >= 0 {
			want = pt[:bad*maxPayload]
			var pe *PackageError
			if !errors.As(err, &pe) || pe.Package != int64(bad) || !errors.Is(err, ErrNotAuthentic) {
				t.Fatalf("package %d modified: %v", bad, err)
			}
		} else if err != nil {
			t.Fatal(err)
		}
		if n != int64(len(want)) || !bytes.Equal(got, want) {
			t.Fatalf("package %d modified: copied %d bytes, the file holds %d, want %d of the plaintext", bad, n, len(got), len(want))
		}
		if bad != 0 && dst.at.Load() == 0 {
			t.Fatalf("package %d modified: nothing was written at offsets", bad)
		}
	}
}
