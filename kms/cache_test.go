package kms

import (
	"bytes"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/engine"
)

func TestMaterialCacheZeroesOnlyAfterLastRelease(t *testing.T) {
	c := newMaterialCache(10, time.Minute)
	m := engine.Material(bytes.Repeat([]byte{7}, 32))
	got, e1 := c.put("k", 0, m)
	_, e2, ok := c.get("k", 0)
	if !ok {
		t.Fatal("miss right after put")
	}
	c.dropKey("k")
	if _, _, ok := c.get("k", 0); ok {
		t.Fatal("hit after dropKey")
	}
	c.release(e1)
	if got[0] != 7 {
		t.Fatal("material zeroed while still in use")
	}
	c.release(e2)
	if !bytes.Equal(got, make([]byte, 32)) {
		t.Fatal("material not zeroed after its last release")
	}
}

func TestMaterialCacheBounds(t *testing.T) {
	c := newMaterialCache(3, time.Minute)
	var ms []engine.Material
	for v := range 5 {
		m, e := c.put("k", v, engine.Material(bytes.Repeat([]byte{1}, 32)))
		c.release(e)
		ms = append(ms, m)
	}
	if len(c.entries) != 3 {
		t.Fatalf("%d entries, bound 3", len(c.entries))
	}
	zeroed := 0
	for _, m := range ms {
		if m[0] == 0 {
			zeroed++
		}
	}
	if zeroed != 2 {
		t.Fatalf("%d evicted materials zeroed, want 2", zeroed)
	}

	short := newMaterialCache(10, time.Nanosecond)
	m, e := short.put("k", 0, engine.Material(bytes.Repeat([]byte{1}, 32)))
	short.release(e)
	time.Sleep(time.Millisecond)
	if _, _, ok := short.get("k", 0); ok || m[0] != 0 {
		t.Fatal("expired entry served or not zeroed")
	}
}

func TestValidatorMessages(t *testing.T) {
	var v validator
	v.keyID("keyId", "")
	v.secretLength("plaintext", make([]byte, 5000), 1, 4096)
	v.enum("keySpec", "AES_512", dataKeySpecs)
	err := v.err()
	want := "3 validation errors detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null; " +
		"Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096; " +
		"Value 'AES_512' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	var one validator
	one.rangeInt("numberOfBytes", 0, 1, 1024)
	if got := one.err().Error(); got != "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1" {
		t.Fatal(got)
	}
}

func TestKeyIDRoundTrip(t *testing.T) {
	const id = "1234abcd-12ab-34cd-56ef-1234567890ab"
	b, ok := parseKeyID(id)
	if !ok || formatKeyID(b) != id {
		t.Fatal("key ID round trip")
	}
	for _, bad := range []string{"", "1234ABCD-12ab-34cd-56ef-1234567890ab", "1234abcd12ab34cd56ef1234567890ab", id + "0",
		// the right length and the four dashes, plus a fifth (found by fuzz/request: it read past the end)
		"00000000-0000-0000-0000--00000000000", "00000000-0000-0000-0000-0000-0000000", "00000000-0000-0000-0000-00000000000-"} {
		if _, ok := parseKeyID(bad); ok {
			t.Fatalf("%q parsed", bad)
		}
	}
}

func TestMarkers(t *testing.T) {
	m := encodeMarker("keys", "abc")
	if got, err := decodeMarker("keys", m); err != nil || got != "abc" {
		t.Fatal("marker round trip")
	}
	if _, err := decodeMarker("aliases", m); err == nil {
		t.Fatal("a ListKeys marker was accepted by ListAliases")
	}
}
