// Package blob fuzzes the ciphertext-blob parser of package engine.
package blob

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/coffer-kms/coffer/engine"
)

// fuzzMaterial and fuzzContext are fixed so that the seed blobs, made with
// them, are the only genuine ciphertexts the fuzzer can start from.
var (
	fuzzMaterial = engine.Material(bytes.Repeat([]byte{0x42}, 32))
	fuzzContext  = map[string]string{"purpose": "fuzz"}
	fuzzKeyID    = engine.KeyID{0xc0, 0xff, 0xee}
)

func genuine(t testing.TB, pt string, version uint32) []byte {
	b, err := engine.Seal(nil, fuzzMaterial, fuzzKeyID, version, []byte(pt), fuzzContext)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldenBlobs were sealed once with fuzzMaterial, fuzzKeyID and fuzzContext
// (material versions 0 and 1). They are the only genuine blobs in the fuzzer's
// world, and known-answer vectors of format version 1: if the format or the
// key derivation ever changes, TestGoldenBlobsOpen fails.
var goldenBlobs = map[string]string{
	"a":              "01c0ffee00000000000000000000000000000000008c5d03a52e13fb843470dba511c8c614d301819c69e842cb3ba4b7ef17cd5683f6282f0693083765a5ccee554ff3049b075036dc57b8a23d547e4b3248",
	"attack at dawn": "01c0ffee0000000000000000000000000000000001ea6d140505d3fb164e40d4d4588e37fc2d3d5cfa25fa74a6abfa02c139a1fca1776b35cd83773ff19406deb18c90b2dce81f52eb6760c96907883c5f88521de6127552f221e1b5d89ce7",
}

func TestGoldenBlobsOpen(t *testing.T) {
	for want, h := range goldenBlobs {
		raw, _ := hex.DecodeString(h)
		b, err := engine.ParseBlob(raw)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := engine.Open(nil, fuzzMaterial, b, fuzzContext)
		if err != nil || string(pt) != want {
			t.Fatalf("golden blob for %q: %q, %v", want, pt, err)
		}
	}
	// And a fresh Seal round-trips (the golden vectors do not pin randomness).
	b, _ := engine.ParseBlob(genuine(t, "fresh", 3))
	if pt, err := engine.Open(nil, fuzzMaterial, b, fuzzContext); err != nil || string(pt) != "fresh" {
		t.Fatal("fresh seal")
	}
}

// FuzzParseBlob asserts two properties: anything that parses re-encodes to
// the same bytes, and nothing but a genuine blob opens.
func FuzzParseBlob(f *testing.F) {
	seeds := map[string]bool{}
	for _, h := range goldenBlobs {
		raw, _ := hex.DecodeString(h)
		seeds[string(raw)] = true
		f.Add(raw)
	}
	f.Add([]byte{})
	f.Add([]byte{engine.BlobVersion})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := engine.ParseBlob(data)
		if err != nil {
			if err != engine.ErrInvalidCiphertext {
				t.Fatalf("parse error %v is not the opaque one", err)
			}
			return
		}
		if re := engine.AppendBlob(nil, b.Header(), b.Sealed()); !bytes.Equal(re, data) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", data, re)
		}
		pt, err := engine.Open(nil, fuzzMaterial, b, fuzzContext)
		if err == nil && !seeds[string(data)] {
			t.Fatalf("a blob no Seal produced opened to %q", pt)
		}
		if err != nil && err != engine.ErrInvalidCiphertext {
			t.Fatalf("open error %v is not the opaque one", err)
		}
	})
}

// FuzzParseHSMBlob asserts that the framing of custom-key-store blobs is
// exact: anything that parses re-encodes to the same bytes, every failure
// is the opaque error, and a version-1 blob never passes for one.
func FuzzParseHSMBlob(f *testing.F) {
	var id engine.KeyID
	copy(id[:], "0123456789abcdef")
	f.Add(append(engine.AppendHSMBlobHeader(nil, id, 0), make([]byte, 45)...))
	f.Add(engine.AppendHSMBlobHeader(nil, id, 7))
	f.Add([]byte{engine.HSMBlobVersion})
	f.Add(genuine(f, "version one", 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := engine.ParseHSMBlob(data)
		if err != nil {
			if err != engine.ErrInvalidCiphertext {
				t.Fatalf("parse error %v is not the opaque one", err)
			}
			return
		}
		if data[0] != engine.HSMBlobVersion || !engine.IsHSMBlob(data) {
			t.Fatalf("a version-%d blob parsed as an HSM blob", data[0])
		}
		if len(b.Sealed()) == 0 || len(data) > engine.MaxBlobSize {
			t.Fatalf("framing of %d bytes accepted", len(data))
		}
		if re := append(engine.AppendHSMBlobHeader(nil, b.KeyID(), b.MaterialVersion()), b.Sealed()...); !bytes.Equal(re, data) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", data, re)
		}
		if !bytes.Equal(engine.HSMBlobAAD(nil, b.Header(), fuzzContext)[:engine.HSMBlobHeaderSize], b.Header()) {
			t.Fatal("the additional data does not start with the header")
		}
	})
}
