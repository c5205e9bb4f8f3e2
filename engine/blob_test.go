package engine

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
)

func testMaterial(t testing.TB) Material {
	m := make(Material, 32)
	if _, err := rand.Read(m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSealOpenRoundTrip(t *testing.T) {
	m := testMaterial(t)
	id := KeyID{1, 2, 3}
	for _, n := range []int{1, 15, 16, 17, 4096} {
		pt := make([]byte, n)
		rand.Read(pt)
		ctx := map[string]string{"purpose": "test", "b": "2"}
		blob, err := Seal(nil, m, id, 7, pt, ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(blob) != n+BlobOverhead {
			t.Fatalf("blob length %d, want %d", len(blob), n+BlobOverhead)
		}
		b, err := ParseBlob(blob)
		if err != nil {
			t.Fatal(err)
		}
		if b.KeyID() != id || b.MaterialVersion() != 7 {
			t.Fatalf("header fields: %x %d", b.KeyID(), b.MaterialVersion())
		}
		got, err := Open(nil, m, b, map[string]string{"b": "2", "purpose": "test"})
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("open: %v", err)
		}
	}
}

func TestOpenRejectsEveryTamper(t *testing.T) {
	m := testMaterial(t)
	ctx := map[string]string{"k": "v"}
	blob, err := Seal(nil, m, KeyID{9}, 0, []byte("attack at dawn"), ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range blob {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(blob)
			bad[i] ^= bit
			b, err := ParseBlob(bad)
			if err == nil {
				_, err = Open(nil, m, b, ctx)
			}
			if !errors.Is(err, ErrInvalidCiphertext) {
				t.Fatalf("flip byte %d bit %x: %v", i, bit, err)
			}
		}
	}
	b, _ := ParseBlob(blob)
	for _, c := range []map[string]string{nil, {"k": "V"}, {"k": "v", "x": ""}, {"K": "v"}} {
		if _, err := Open(nil, m, b, c); !errors.Is(err, ErrInvalidCiphertext) {
			t.Fatalf("context %v accepted", c)
		}
	}
	if _, err := Open(nil, testMaterial(t), b, ctx); !errors.Is(err, ErrInvalidCiphertext) {
		t.Fatal("wrong material accepted")
	}
	for _, n := range []int{0, 1, BlobOverhead - 1} {
		if _, err := ParseBlob(blob[:n]); !errors.Is(err, ErrInvalidCiphertext) {
			t.Fatalf("truncated to %d accepted", n)
		}
	}
}

func TestEncryptionContextEncodingIsInjective(t *testing.T) {
	cases := []map[string]string{
		nil,
		{"a": "bc"},
		{"ab": "c"},
		{"a": "b", "c": ""},
		{"a": "", "bc": ""},
	}
	seen := map[string]int{}
	for i, c := range cases {
		enc := string(AppendEncryptionContext(nil, c))
		if j, ok := seen[enc]; ok && !(len(cases[i]) == 0 && len(cases[j]) == 0) {
			t.Fatalf("contexts %v and %v encode alike", cases[j], c)
		}
		seen[enc] = i
	}
	if !bytes.Equal(AppendEncryptionContext(nil, nil), AppendEncryptionContext(nil, map[string]string{})) {
		t.Fatal("nil and empty contexts must be the same context")
	}
}

func TestMaterialNeverPrints(t *testing.T) {
	m := Material("super-secret-material-0123456789")
	for _, verb := range []string{"%v", "%s", "%x", "%q", "%#v", "%+v"} {
		if s := fmt.Sprintf(verb, m); bytes.Contains([]byte(s), []byte("secret")) || s != "[REDACTED]" {
			t.Fatalf("%s printed %q", verb, s)
		}
	}
	m2 := Material(bytes.Clone(m))
	if !m.Equal(m2) {
		t.Fatal("Equal")
	}
	m2.Zero()
	if m.Equal(m2) || !bytes.Equal(m2, make([]byte, len(m2))) {
		t.Fatal("Zero")
	}
}

func BenchmarkSeal(b *testing.B) {
	m := testMaterial(b)
	ctx := map[string]string{"purpose": "bench"}
	for _, size := range []int{64, 1024, 4096} {
		pt := make([]byte, size)
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			dst := make([]byte, 0, size+BlobOverhead)
			for b.Loop() {
				if _, err := Seal(dst[:0], m, KeyID{}, 0, pt, ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	m := testMaterial(b)
	ctx := map[string]string{"purpose": "bench"}
	for _, size := range []int{64, 1024, 4096} {
		blob, _ := Seal(nil, m, KeyID{}, 0, make([]byte, size), ctx)
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			dst := make([]byte, 0, size)
			for b.Loop() {
				pb, err := ParseBlob(blob)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Open(dst[:0], m, pb, ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseBlob(b *testing.B) {
	blob, _ := Seal(nil, testMaterial(b), KeyID{1}, 3, make([]byte, 1024), nil)
	b.ReportAllocs()
	for b.Loop() {
		pb, err := ParseBlob(blob)
		if err != nil || pb.MaterialVersion() != 3 {
			b.Fatal(err)
		}
	}
}

// BenchmarkKeySetup is the per-message cost before any byte is sealed:
// HKDF-SHA-256 of the message key and the AES-GCM key schedule.
func BenchmarkKeySetup(b *testing.B) {
	material := testMaterial(b)
	b.ReportAllocs()
	for b.Loop() {
		m := messagePool.Get().(*message)
		if err := m.keyed(material); err != nil {
			b.Fatal(err)
		}
		m.release()
	}
}
