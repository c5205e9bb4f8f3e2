// Package asym fuzzes the parsers of untrusted bytes that package engine's
// asymmetric operations expose to callers: peer public keys
// (DeriveSharedSecret), signatures (Verify) and RSA-OAEP ciphertexts
// (DecryptOAEP).
package asym

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"sync"
	"testing"

	"github.com/coffer-kms/coffer/engine"
)

// keys are generated once per test binary: RSA generation is slow, and
// every target only reads them.
var keys = sync.OnceValue(func() map[string]*engine.Key {
	m := map[string]*engine.Key{}
	for _, spec := range []string{"RSA_2048", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519", "ML_DSA_44"} {
		k, err := engine.GenerateKey(spec, rand.Reader)
		if err != nil {
			panic(err)
		}
		m[spec] = k
	}
	return m
})

// FuzzDeriveSharedSecret: arbitrary DER as the peer's SPKI never panics,
// every refusal is ErrInvalidPublicKey, and what is accepted is a valid
// P-256 point whose shared secret the standard library agrees with.
func FuzzDeriveSharedSecret(f *testing.F) {
	k := keys()["ECC_NIST_P256"]
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	good, _ := x509.MarshalPKIXPublicKey(peer.PublicKey())
	f.Add(good)
	for _, spec := range []string{"ECC_NIST_P384", "ECC_SECG_P256K1", "RSA_2048"} {
		der, _ := keys()[spec].PublicKeyDER()
		f.Add(der)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, der []byte) {
		z, err := k.DeriveSharedSecret("ECDH", der)
		if err != nil {
			if !errors.Is(err, engine.ErrInvalidPublicKey) {
				t.Fatalf("error %v is not ErrInvalidPublicKey", err)
			}
			return
		}
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			t.Fatalf("accepted what x509 refuses: %v", err)
		}
		peer, err := ecdh.P256().NewPublicKey(pointOf(t, pub))
		if err != nil {
			t.Fatalf("accepted an invalid point: %v", err)
		}
		ours, err := k.Private().(interface {
			ECDH() (*ecdh.PrivateKey, error)
		}).ECDH()
		if err != nil {
			t.Fatal(err)
		}
		want, err := ours.ECDH(peer)
		if err != nil || !bytes.Equal(z, want) {
			t.Fatalf("shared secret differs from crypto/ecdh's: %v", err)
		}
	})
}

func pointOf(t *testing.T, pub any) []byte {
	p, ok := pub.(interface {
		ECDH() (*ecdh.PublicKey, error)
	})
	if !ok {
		t.Fatalf("accepted a %T", pub)
	}
	e, err := p.ECDH()
	if err != nil {
		t.Fatalf("accepted an invalid point: %v", err)
	}
	return e.Bytes()
}

// FuzzVerify: arbitrary signature bytes for a fixed message never panic
// and never verify, for every signature family; the only error is
// ErrSignatureMismatch. The seeds include genuine signatures of another
// message, so the fuzzer starts from well-formed encodings.
func FuzzVerify(f *testing.F) {
	specs := []string{"RSA_2048", "ECC_NIST_P256", "ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519", "ML_DSA_44"}
	algs := []string{"RSASSA_PSS_SHA_256", "ECDSA_SHA_256", "ECDSA_SHA_256", "ED25519_SHA_512", "ML_DSA_SHAKE_256"}
	for i, spec := range specs {
		sig, err := keys()[spec].Sign(algs[i], engine.MessageRaw, []byte("seed message"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), sig)
	}
	f.Add(uint8(1), []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, which uint8, sig []byte) {
		i := int(which) % len(specs)
		err := keys()[specs[i]].Verify(algs[i], engine.MessageRaw, []byte("fuzz message"), sig)
		if err == nil {
			t.Fatalf("%s: a signature nobody made verified: %x", specs[i], sig)
		}
		if err != engine.ErrSignatureMismatch {
			t.Fatalf("%s: error %v", specs[i], err)
		}
	})
}

// FuzzDecryptOAEP: arbitrary ciphertexts never panic, every failure is the
// one opaque ErrInvalidCiphertext, and anything that decrypts is at most
// MaxOAEPPlaintext long.
func FuzzDecryptOAEP(f *testing.F) {
	k := keys()["RSA_2048"]
	for _, alg := range []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"} {
		ct, err := engine.EncryptOAEP(k.Public(), "RSA_2048", alg, []byte("seed"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(alg == "RSAES_OAEP_SHA_256", ct)
	}
	f.Add(false, []byte{})
	f.Fuzz(func(t *testing.T, sha256 bool, ct []byte) {
		alg := "RSAES_OAEP_SHA_1"
		if sha256 {
			alg = "RSAES_OAEP_SHA_256"
		}
		pt, err := k.DecryptOAEP(alg, ct)
		if err != nil {
			if err != engine.ErrInvalidCiphertext {
				t.Fatalf("error %v is not the opaque one", err)
			}
			return
		}
		if len(pt) > engine.MaxOAEPPlaintext("RSA_2048", alg) {
			t.Fatalf("%d bytes decrypted", len(pt))
		}
	})
}
