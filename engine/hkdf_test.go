package engine

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// RFC 5869, appendix A.1 (SHA-256, test case 1): T(1) is the first 32
// bytes of OKM.
func TestHKDFKnownAnswer(t *testing.T) {
	ikm := bytes.Repeat([]byte{0x0b}, 22)
	salt, _ := hex.DecodeString("000102030405060708090a0b0c")
	info, _ := hex.DecodeString("f0f1f2f3f4f5f6f7f8f9")
	want := "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
	var out [32]byte
	k := kdfPool.Get().(*kdf)
	k.derive(&out, ikm, salt, info[:3], info[3:])
	if got := hex.EncodeToString(out[:]); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestHKDFMatchesStandardLibrary(t *testing.T) {
	k := &kdf{h: sha256.New()}
	for n := range 200 {
		ikm, salt, info := make([]byte, 1+n%64), make([]byte, n%65), make([]byte, n%40)
		rand.Read(ikm)
		rand.Read(salt)
		rand.Read(info)
		var out [32]byte
		k.derive(&out, ikm, salt, info[:len(info)/2], info[len(info)/2:])
		want, err := hkdf.Key(sha256.New, ikm, salt, string(info), 32)
		if err != nil || !bytes.Equal(out[:], want) {
			t.Fatalf("case %d differs from crypto/hkdf", n)
		}
	}
}
