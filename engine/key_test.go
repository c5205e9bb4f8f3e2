package engine

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
)

// testKeys caches one generated key per spec: RSA generation dominates the
// package's test time on slow machines, and every test only reads its key
// (tests that Zero generate their own).
var testKeys struct {
	sync.Mutex
	m map[string]*Key
}

func testKey(t *testing.T, spec string) *Key {
	t.Helper()
	testKeys.Lock()
	defer testKeys.Unlock()
	if k, ok := testKeys.m[spec]; ok {
		return k
	}
	k, err := GenerateKey(spec, rand.Reader)
	if err != nil {
		t.Fatalf("GenerateKey(%s): %v", spec, err)
	}
	if testKeys.m == nil {
		testKeys.m = make(map[string]*Key)
	}
	testKeys.m[spec] = k
	return k
}

func marshal(t *testing.T, k *Key) []byte {
	t.Helper()
	b, err := k.MarshalBinary()
	if err != nil {
		t.Fatalf("%v: MarshalBinary: %v", k, err)
	}
	return b
}

// skipSlow skips specs whose generation takes seconds on the CI's shared
// cores under -short; a plain go test still runs them.
func skipSlow(t *testing.T, spec string) {
	if spec == "RSA_4096" && testing.Short() {
		t.Skip("RSA-4096 generation is slow; runs without -short")
	}
}

type publicKey interface{ Equal(crypto.PublicKey) bool }

func TestGenerateKeyRoundTrip(t *testing.T) {
	for _, s := range Specs() {
		if !s.Supported() {
			continue
		}
		t.Run(s.Name(), func(t *testing.T) {
			skipSlow(t, s.Name())
			k := testKey(t, s.Name())
			if k.Spec() != s || k.Kind() != s.Kind() {
				t.Fatalf("key of spec %v kind %v, want %v %v", k.Spec().Name(), k.Kind(), s.Name(), s.Kind())
			}
			checkShape(t, k)

			b := marshal(t, k)
			p, err := ParseKey(s.Name(), b)
			if err != nil {
				t.Fatalf("ParseKey(MarshalBinary()): %v", err)
			}
			if !p.Equal(k) || !k.Equal(p) {
				t.Fatal("parsed key differs from the generated one")
			}
			if pub := k.Public(); pub != nil && !pub.(publicKey).Equal(p.Public()) {
				t.Fatal("parsed key's public key differs")
			}
			if b2 := marshal(t, p); !bytes.Equal(b, b2) {
				t.Fatal("marshal(parse(b)) != b")
			}

			// The parsed key owns its bytes: the caller may clear b.
			clear(b)
			if !p.Equal(k) {
				t.Fatal("clearing ParseKey's input changed the key")
			}

			other, err := GenerateKey(s.Name(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if other.Equal(k) {
				t.Fatal("two generated keys are equal")
			}
		})
	}
}

// checkShape checks the material has the spec's size or curve, and that
// only the accessor of its kind returns anything.
func checkShape(t *testing.T, k *Key) {
	t.Helper()
	s := k.Spec()
	wantSecret := map[string]int{"SYMMETRIC_DEFAULT": 32, "HMAC_224": 28, "HMAC_256": 32, "HMAC_384": 48, "HMAC_512": 64}
	if n, ok := wantSecret[s.Name()]; ok {
		var got Material
		if s.Kind() == KindSymmetric {
			got = k.Symmetric()
			if k.HMAC() != nil {
				t.Error("a symmetric key returns an HMAC secret")
			}
		} else {
			got = k.HMAC()
			if k.Symmetric() != nil {
				t.Error("an HMAC key returns symmetric material")
			}
		}
		if len(got) != n {
			t.Errorf("%d bytes of material, want %d", len(got), n)
		}
		if bytes.Equal(got, make([]byte, n)) {
			t.Error("generated material is all zeros")
		}
		if k.Private() != nil || k.Public() != nil {
			t.Error("a secret key returns a private or public key")
		}
		return
	}

	if k.Symmetric() != nil || k.HMAC() != nil {
		t.Error("an asymmetric key returns a secret")
	}
	switch p := k.Private().(type) {
	case *rsa.PrivateKey:
		want := map[string]int{"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}[s.Name()]
		if p.N.BitLen() != want || s.Kind() != KindRSA {
			t.Errorf("%d-bit RSA key for %s", p.N.BitLen(), s.Name())
		}
		if _, ok := k.Public().(*rsa.PublicKey); !ok {
			t.Errorf("Public() is a %T", k.Public())
		}
	case *ecdsa.PrivateKey:
		want := map[string]elliptic.Curve{"ECC_NIST_P256": elliptic.P256(), "ECC_NIST_P384": elliptic.P384(), "ECC_NIST_P521": elliptic.P521()}[s.Name()]
		if p.Curve != want || s.Kind() != KindEC {
			t.Errorf("key on %s for %s", p.Curve.Params().Name, s.Name())
		}
		// KEY_AGREEMENT keys are used through crypto/ecdh.
		if _, err := p.ECDH(); err != nil {
			t.Errorf("ECDH(): %v", err)
		}
	case ed25519.PrivateKey:
		if len(p) != ed25519.PrivateKeySize || s.Kind() != KindEd25519 {
			t.Errorf("%d-byte Ed25519 key for %s", len(p), s.Name())
		}
		if _, ok := k.Public().(ed25519.PublicKey); !ok {
			t.Errorf("Public() is a %T", k.Public())
		}
	case *secp256k1Key:
		if s.Name() != "ECC_SECG_P256K1" || s.Kind() != KindEC {
			t.Errorf("secp256k1 key for %s", s.Name())
		}
		if _, ok := k.Public().(Secp256k1PublicKey); !ok {
			t.Errorf("Public() is a %T", k.Public())
		}
	case *mldsaKey:
		if p.params != s.mldsa || s.Kind() != KindMLDSA || p.params == nil {
			t.Errorf("ML-DSA key of the wrong parameter set for %s", s.Name())
		}
		if !p.params.isPublic(k.Public()) {
			t.Errorf("Public() is a %T", k.Public())
		}
	default:
		t.Fatalf("Private() is a %T", p)
	}
}

func TestParseKeyLengths(t *testing.T) {
	tests := []struct {
		spec     string
		good     []int
		tooShort int
		tooLong  int
	}{
		{"SYMMETRIC_DEFAULT", []int{32}, 31, 33},
		// HMAC: from the digest length to the block size (imported material).
		{"HMAC_224", []int{28, 40, 64}, 27, 65},
		{"HMAC_256", []int{32, 64}, 31, 65},
		{"HMAC_384", []int{48, 128}, 47, 129},
		{"HMAC_512", []int{64, 128}, 63, 129},
	}
	for _, tt := range tests {
		for _, n := range tt.good {
			b := bytes.Repeat([]byte{0xa5}, n)
			k, err := ParseKey(tt.spec, b)
			if err != nil {
				t.Errorf("%s: ParseKey(%d bytes): %v", tt.spec, n, err)
				continue
			}
			if got := marshal(t, k); !bytes.Equal(got, b) {
				t.Errorf("%s: %d bytes do not round-trip", tt.spec, n)
			}
		}
		for _, n := range []int{0, 16, tt.tooShort, tt.tooLong, 1024} {
			if _, err := ParseKey(tt.spec, make([]byte, n)); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("%s: ParseKey(%d bytes) error %v, want ErrInvalidKey", tt.spec, n, err)
			}
		}
	}
}

func TestParseKeyRejects(t *testing.T) {
	rsa2048 := testKey(t, "RSA_2048")
	p256 := testKey(t, "ECC_NIST_P256")
	p384 := testKey(t, "ECC_NIST_P384")
	ed := testKey(t, "ECC_NIST_EDWARDS25519")
	rsaDER, p256DER, p384DER, edDER := marshal(t, rsa2048), marshal(t, p256), marshal(t, p384), marshal(t, ed)

	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519DER, err := x509.MarshalPKCS8PrivateKey(x)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(p256.Private().(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, spec string
		der        []byte
	}{
		{"P-256 key as P-384", "ECC_NIST_P384", p256DER},
		{"P-384 key as P-256", "ECC_NIST_P256", p384DER},
		{"P-256 key as P-521", "ECC_NIST_P521", p256DER},
		{"RSA-2048 key as RSA_3072", "RSA_3072", rsaDER},
		{"RSA-2048 key as RSA_4096", "RSA_4096", rsaDER},
		{"RSA key as P-256", "ECC_NIST_P256", rsaDER},
		{"P-256 key as RSA_2048", "RSA_2048", p256DER},
		{"Ed25519 key as P-256", "ECC_NIST_P256", edDER},
		{"P-256 key as Ed25519", "ECC_NIST_EDWARDS25519", p256DER},
		{"RSA key as Ed25519", "ECC_NIST_EDWARDS25519", rsaDER},
		{"X25519 key as Ed25519", "ECC_NIST_EDWARDS25519", x25519DER},
		{"PKCS#1, not PKCS#8", "RSA_2048", x509.MarshalPKCS1PrivateKey(rsa2048.Private().(*rsa.PrivateKey))},
		{"SEC 1, not PKCS#8", "ECC_NIST_P256", sec1},
		{"trailing byte", "ECC_NIST_P256", append(bytes.Clone(p256DER), 0)},
		{"trailing DER value", "RSA_2048", append(bytes.Clone(rsaDER), 0x05, 0x00)},
		{"truncated", "RSA_2048", rsaDER[:len(rsaDER)-1]},
		{"truncated to the header", "ECC_NIST_P256", p256DER[:4]},
		{"empty", "ECC_NIST_EDWARDS25519", nil},
		{"garbage", "RSA_2048", bytes.Repeat([]byte{0xff}, 300)},
		{"an empty SEQUENCE", "ECC_NIST_P256", []byte{0x30, 0x00}},
		{"32 raw bytes as Ed25519", "ECC_NIST_EDWARDS25519", bytes.Repeat([]byte{1}, 32)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKey(tt.spec, tt.der)
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("ParseKey(%s) = %v, %v; want ErrInvalidKey", tt.spec, k, err)
			}
			if k != nil {
				t.Fatal("a key returned with an error")
			}
		})
	}

	// A flipped bit inside the RSA private exponent must not yield a key:
	// x509 validates the key it parses.
	bad := bytes.Clone(rsaDER)
	bad[len(bad)/2] ^= 1
	if _, err := ParseKey("RSA_2048", bad); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("ParseKey(corrupt RSA key) error %v, want ErrInvalidKey", err)
	}
}

// TestParseKeyErrorsHideMaterial: errors end up in logs; they name the spec
// and what is wrong, never the bytes.
func TestParseKeyErrorsHideMaterial(t *testing.T) {
	secret := bytes.Repeat([]byte{0x5c}, 33)
	_, err := ParseKey("SYMMETRIC_DEFAULT", secret)
	if err == nil || strings.Contains(err.Error(), hex.EncodeToString(secret[:8])) || strings.Contains(err.Error(), string(secret[:8])) {
		t.Fatalf("error %q", err)
	}
}

func TestZero(t *testing.T) {
	for _, spec := range []string{"SYMMETRIC_DEFAULT", "HMAC_224", "HMAC_512"} {
		t.Run(spec, func(t *testing.T) {
			k, err := GenerateKey(spec, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			m := k.Symmetric()
			if m == nil {
				m = k.HMAC()
			}
			backing := m[:cap(m)]
			k.Zero()
			if !bytes.Equal(backing, make([]byte, len(backing))) {
				t.Fatal("Zero left secret bytes in the backing array")
			}
			checkRefuses(t, k)
		})
	}

	t.Run("ECC_NIST_EDWARDS25519", func(t *testing.T) {
		k, err := GenerateKey("ECC_NIST_EDWARDS25519", rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		p := k.Private().(ed25519.PrivateKey)
		k.Zero()
		if !bytes.Equal(p, make([]byte, len(p))) {
			t.Fatal("Zero left Ed25519 key bytes")
		}
		checkRefuses(t, k)
	})

	// RSA and ECDSA: the limbs of the private values we can reach.
	t.Run("ECC_NIST_P384", func(t *testing.T) {
		k, err := GenerateKey("ECC_NIST_P384", rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		p := k.Private().(*ecdsa.PrivateKey)
		limbs := p.D.Bits()
		k.Zero()
		checkLimbs(t, "D", p.D, limbs)
		checkRefuses(t, k)
	})
	t.Run("RSA_2048", func(t *testing.T) {
		k, err := ParseKey("RSA_2048", marshal(t, testKey(t, "RSA_2048")))
		if err != nil {
			t.Fatal(err)
		}
		p := k.Private().(*rsa.PrivateKey)
		ints := map[string]*big.Int{"D": p.D, "P": p.Primes[0], "Q": p.Primes[1],
			"Dp": p.Precomputed.Dp, "Dq": p.Precomputed.Dq, "Qinv": p.Precomputed.Qinv}
		limbs := map[string][]big.Word{}
		for name, x := range ints {
			limbs[name] = x.Bits()
		}
		k.Zero()
		for name, x := range ints {
			checkLimbs(t, name, x, limbs[name])
		}
		checkRefuses(t, k)
	})
}

func checkLimbs(t *testing.T, name string, x *big.Int, limbs []big.Word) {
	t.Helper()
	if x.Sign() != 0 {
		t.Errorf("%s is not zero after Zero", name)
	}
	for _, w := range limbs {
		if w != 0 {
			t.Errorf("Zero left a limb of %s", name)
			return
		}
	}
}

// checkRefuses checks a zeroed key yields no material and cannot be
// marshalled, compared or zeroed into a panic.
func checkRefuses(t *testing.T, k *Key) {
	t.Helper()
	if k.Symmetric() != nil || k.HMAC() != nil || k.Private() != nil || k.Public() != nil {
		t.Error("a zeroed key still returns material")
	}
	if b, err := k.MarshalBinary(); !errors.Is(err, ErrKeyZeroed) || b != nil {
		t.Errorf("MarshalBinary of a zeroed key = %x, %v; want ErrKeyZeroed", b, err)
	}
	if k.Equal(k) {
		t.Error("a zeroed key equals itself")
	}
	k.Zero() // twice is harmless
	if k.Spec() == nil || k.Kind() == 0 {
		t.Error("a zeroed key forgot its spec")
	}
}

func TestKeyFormatHidesMaterial(t *testing.T) {
	for _, spec := range []string{"SYMMETRIC_DEFAULT", "HMAC_256", "ECC_NIST_EDWARDS25519"} {
		k := testKey(t, spec)
		raw := marshal(t, k)
		secret := raw
		if p, ok := k.Private().(ed25519.PrivateKey); ok {
			secret = p.Seed()
		}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q"} {
			for _, v := range []any{k, *k} {
				out := fmt.Sprintf(verb, v)
				if strings.Contains(out, hex.EncodeToString(secret[:8])) || strings.Contains(strings.ToLower(out), hex.EncodeToString(secret[:8])) ||
					strings.Contains(out, fmt.Sprint(secret[:8])) || !strings.Contains(out, spec) {
					t.Errorf("%s printed with %s as %q", spec, verb, out)
				}
			}
		}
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy exhausted") }

func TestGenerateKeyReaderError(t *testing.T) {
	// crypto/rsa and crypto/ecdsa ignore the reader since Go 1.26; the
	// specs that read it must report its failure.
	for _, spec := range []string{"SYMMETRIC_DEFAULT", "HMAC_384", "ECC_NIST_EDWARDS25519"} {
		if k, err := GenerateKey(spec, failingReader{}); err == nil {
			t.Errorf("%s: GenerateKey with a failing reader returned %v", spec, k)
		}
	}
}

func TestGenerateKeyNilReader(t *testing.T) {
	for _, spec := range []string{"SYMMETRIC_DEFAULT", "HMAC_256", "ECC_NIST_EDWARDS25519", "ECC_NIST_P256"} {
		if _, err := GenerateKey(spec, nil); err != nil {
			t.Errorf("%s: GenerateKey(nil reader): %v", spec, err)
		}
	}
}

// FuzzParseKey asserts that whatever ParseKey accepts is a key of the spec
// whose stored form parses back to an equal key, and that nothing panics.
func FuzzParseKey(f *testing.F) {
	names := []string{}
	for _, s := range Specs() {
		names = append(names, s.Name())
	}
	for _, spec := range []string{"SYMMETRIC_DEFAULT", "HMAC_224", "RSA_2048", "ECC_NIST_P256", "ECC_NIST_P521", "ECC_NIST_EDWARDS25519"} {
		k, err := GenerateKey(spec, rand.Reader)
		if err != nil {
			f.Fatal(err)
		}
		b, err := k.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		for i, n := range names {
			if n == spec {
				f.Add(uint8(i), b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, i uint8, b []byte) {
		spec := names[int(i)%len(names)]
		k, err := ParseKey(spec, b)
		if err != nil {
			if k != nil {
				t.Fatal("key returned with an error")
			}
			return
		}
		if k.Spec().Name() != spec {
			t.Fatalf("parsed as %s, asked for %s", k.Spec().Name(), spec)
		}
		out, err := k.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		k2, err := ParseKey(spec, out)
		if err != nil || !k2.Equal(k) {
			t.Fatalf("stored form does not parse back: %v", err)
		}
	})
}
