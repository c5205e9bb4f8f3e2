package stream

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	mrand "math/rand/v2"
	"testing"

	"github.com/minio/sio"
)

// interopSizes cross the package boundary at random and include 0 and exact
// multiples.
func interopSizes() []int {
	sizes := []int{0, 1, maxPayload - 1, maxPayload, maxPayload + 1, 2 * maxPayload, 5 * maxPayload}
	for range 12 {
		sizes = append(sizes, mrand.IntN(6*maxPayload))
	}
	return sizes
}

var suites = []Suite{AES256GCM, ChaCha20Poly1305}

// dataKey unwraps the data key of a stream's header with p.
func dataKey(t testing.TB, p KeyProvider, h *Header) []byte {
	t.Helper()
	dk, err := p.Decrypt(context.Background(), h.KeyARN, h.Blob, h.Context)
	if err != nil {
		t.Fatal(err)
	}
	return dk
}

func sioConfig(key []byte, s Suite) sio.Config {
	return sio.Config{MinVersion: sio.Version20, MaxVersion: sio.Version20, Key: key, CipherSuites: []byte{s.dareID()}}
}

// sio decrypts every body Coffer writes, given the body key derived from
// the data key (Header.BodyKey).
func TestSIODecryptsCofferBodies(t *testing.T) {
	p := newTestProvider(t)
	for _, s := range suites {
		for _, m := range modes {
			for _, n := range interopSizes() {
				pt := randBytes(n)
				h, b := body(t, encrypt(t, p, m.cfg(Config{Suite: s, Context: testCtx}), pt, 0))
				if h.Empty != (n == 0) {
					t.Fatalf("Empty flag %v for %d bytes", h.Empty, n)
				}
				key, err := h.BodyKey(dataKey(t, p, h))
				if err != nil {
					t.Fatal(err)
				}
				var got bytes.Buffer
				if _, err := sio.Decrypt(&got, bytes.NewReader(b), sioConfig(key, s)); err != nil && n > 0 {
					t.Fatalf("%v %s %d bytes: sio: %v", s, m.name, n, err)
				}
				if !bytes.Equal(got.Bytes(), pt) {
					t.Fatalf("%v %s %d bytes: sio decrypted other bytes", s, m.name, n)
				}
				if n == 0 && len(b) != 0 {
					t.Fatal("empty plaintext, non-empty body")
				}
			}
		}
	}
}

// sioStream builds a Coffer stream whose body minio/sio wrote.
func sioStream(t *testing.T, p *LocalProvider, s Suite, pt []byte) []byte {
	t.Helper()
	dk, blob, arn, err := p.GenerateDataKey(context.Background(), p.KeyID(), testCtx)
	if err != nil {
		t.Fatal(err)
	}
	h := &Header{Suite: s, Empty: len(pt) == 0, KeyARN: arn, Blob: blob, Context: testCtx}
	copy(h.MessageID[:], randBytes(messageIDSize))
	hk, _ := deriveKey(dk, &h.MessageID, labelHeaderKey)
	if h.MAC, err = h.mac(hk); err != nil {
		t.Fatal(err)
	}
	out, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := h.BodyKey(dk)
	var b bytes.Buffer
	if _, err := sio.Encrypt(&b, bytes.NewReader(pt), sioConfig(key, s)); err != nil {
		t.Fatal(err)
	}
	return append(out, b.Bytes()...)
}

// Coffer decrypts every body sio writes, on both paths and through
// ReaderAt.
func TestCofferDecryptsSIOBodies(t *testing.T) {
	p := newTestProvider(t)
	for _, s := range suites {
		for _, n := range interopSizes() {
			pt := randBytes(n)
			stream := sioStream(t, p, s, pt)
			for _, m := range modes {
				got, err := decrypt(p, m.cfg(Config{Context: testCtx}), stream, 0)
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("%v %s %d bytes: %v", s, m.name, n, err)
				}
			}
			ra, err := NewReaderAt(context.Background(), bytes.NewReader(stream), int64(len(stream)), p, Config{})
			if err != nil {
				t.Fatalf("%v %d bytes: NewReaderAt: %v", s, n, err)
			}
			got := make([]byte, ra.Size())
			if m, err := ra.ReadAt(got, 0); (err != nil && n > 0) || m != n || !bytes.Equal(got, pt) {
				t.Fatalf("%v %d bytes: ReadAt: %d, %v", s, n, m, err)
			}
		}
	}
}

func stdlibGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// The ring, parallel and inline (sequential), writes exactly the bytes sio writes for the same key
// and nonce, with every AEAD it may be given.
func TestRingBytesEqualSIO(t *testing.T) {
	p := newTestProvider(t)
	type variant struct {
		name  string
		suite Suite
		aead  func([]byte) (cipher.AEAD, error)
	}
	variants := []variant{
		{"aes/default", AES256GCM, nil},
		{"aes/stdlib", AES256GCM, stdlibGCM},
		{"chacha20poly1305", ChaCha20Poly1305, nil},
	}
	for _, v := range variants {
		for _, n := range interopSizes() {
			if n == 0 {
				continue
			}
			pt := randBytes(n)
			for _, workers := range []int{1, 2 + mrand.IntN(7)} {
				cfg := Config{Suite: v.suite, Workers: workers, NewAESGCM: v.aead}
				h, b := body(t, encrypt(t, p, cfg, pt, 0))
				key, _ := h.BodyKey(dataKey(t, p, h))
				var nonce [12]byte
				copy(nonce[:], pkgHeader(b).nonce())
				sc := sioConfig(key, v.suite)
				sc.Nonce = &nonce
				var want bytes.Buffer
				if _, err := sio.Encrypt(&want, bytes.NewReader(pt), sc); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b, want.Bytes()) {
					t.Fatalf("%s, %d workers, %d bytes: body differs from sio's", v.name, cfg.Workers, n)
				}
			}
		}
	}
}

func TestSuiteSelection(t *testing.T) {
	want := ChaCha20Poly1305
	if hasAESHardware() {
		want = AES256GCM
	}
	if got := DefaultSuite(); got != want {
		t.Fatalf("DefaultSuite = %v, want %v", got, want)
	}
	p := newTestProvider(t)
	for _, s := range append(suites, AutoSuite) {
		h, _ := body(t, encrypt(t, p, Config{Suite: s}, randBytes(100), 0))
		if h.Suite != s.resolve() {
			t.Fatalf("asked for %v, header records %v", s, h.Suite)
		}
	}
}
