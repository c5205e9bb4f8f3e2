package kms

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/engine"
)

// symKey is a symmetric engine key of 32 bytes of b, with its storage.
func symKey(t *testing.T, b byte) (*engine.Key, []byte) {
	t.Helper()
	k, err := engine.ParseKey("SYMMETRIC_DEFAULT", bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k, k.Symmetric()
}

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestMaterialCacheZeroesOnlyAfterLastRelease(t *testing.T) {
	c := newMaterialCache(10, time.Minute, nil)
	k, raw := symKey(t, 7)
	_, e1 := c.put("k", 0, k)
	_, e2, ok := c.get("k", 0)
	if !ok {
		t.Fatal("miss right after put")
	}
	c.dropKey("k")
	if _, _, ok := c.get("k", 0); ok {
		t.Fatal("hit after dropKey")
	}
	c.release(e1)
	if raw[0] != 7 {
		t.Fatal("material zeroed while still in use")
	}
	c.release(e2)
	if !bytes.Equal(raw, make([]byte, 32)) || k.Symmetric() != nil {
		t.Fatal("material not zeroed after its last release")
	}
}

func TestMaterialCacheBounds(t *testing.T) {
	c := newMaterialCache(3, time.Minute, nil)
	var raws [][]byte
	for v := range 5 {
		k, raw := symKey(t, 1)
		_, e := c.put("k", v, k)
		c.release(e)
		raws = append(raws, raw)
	}
	if len(c.entries) != 3 {
		t.Fatalf("%d entries, bound 3", len(c.entries))
	}
	zeroed := 0
	for _, raw := range raws {
		if raw[0] == 0 {
			zeroed++
		}
	}
	if zeroed != 2 {
		t.Fatalf("%d evicted materials zeroed, want 2", zeroed)
	}

	clock := &fakeClock{t: time.Unix(1e9, 0)}
	short := newMaterialCache(10, time.Minute, clock.now)
	k, raw := symKey(t, 1)
	_, e := short.put("k", 0, k)
	short.release(e)
	clock.advance(time.Minute - time.Second)
	if _, e, ok := short.get("k", 0); !ok {
		t.Fatal("entry expired before its TTL on the injected clock")
	} else {
		short.release(e)
	}
	clock.advance(2 * time.Second)
	if _, _, ok := short.get("k", 0); ok || raw[0] != 0 {
		t.Fatal("expired entry served or not zeroed")
	}
}

func TestBoundedEvictsUnreferencedFirst(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	var evicted []int
	b := newBounded[string](3, time.Hour, clock.now, func(v int) { evicted = append(evicted, v) })
	for i, k := range []string{"a", "b", "c"} {
		b.put(k, i)
	}
	b.get("a") // referenced: survives the next sweep
	b.get("c")
	b.put("d", 3)
	if b.len() != 3 {
		t.Fatalf("%d entries, bound 3", b.len())
	}
	if _, ok := b.get("b"); ok || len(evicted) != 1 || evicted[0] != 1 {
		t.Fatalf("evicted %v, want only b's value 1", evicted)
	}
	for _, k := range []string{"a", "c", "d"} {
		if _, ok := b.get(k); !ok {
			t.Fatalf("%s evicted", k)
		}
	}
	for i := range 100 { // many more than the bound: always bounded
		b.put(string(rune('e'+i)), i)
		if b.len() > 3 {
			t.Fatalf("%d entries, bound 3", b.len())
		}
	}
}

func TestBoundedExpiresOnInjectedClock(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	var evicted []string
	b := newBounded[string](10, time.Minute, clock.now, func(v string) { evicted = append(evicted, v) })
	b.put("k", "v")
	clock.advance(59 * time.Second)
	if v, ok := b.get("k"); !ok || v != "v" {
		t.Fatal("entry expired early")
	}
	clock.advance(time.Second)
	if _, ok := b.get("k"); ok {
		t.Fatal("entry served at its TTL")
	}
	if len(evicted) != 1 || b.len() != 0 {
		t.Fatalf("expired entry not evicted: %v, %d left", evicted, b.len())
	}
}

// TestBoundedStaleFill: a read that began before a change must not put
// what it read into the cache after the change.
func TestBoundedStaleFill(t *testing.T) {
	b := newBounded[string, string](10, time.Hour, time.Now, nil)
	gen := b.generation() // a reader starts, reads "old" from the store
	b.invalidate("k")     // meanwhile a writer commits "new" and invalidates
	if got := b.fill("k", "old", gen); got != "old" {
		t.Fatalf("fill returned %q", got)
	}
	if _, ok := b.get("k"); ok {
		t.Fatal("a stale read was cached after an invalidation")
	}
	gen = b.generation()
	b.publish("k", "newest")
	if got := b.fill("k", "older", gen); got != "newest" {
		t.Fatalf("fill over a published value returned %q", got)
	}
	if v, _ := b.get("k"); v != "newest" {
		t.Fatalf("cached %q, want the published value", v)
	}
}

// TestCachesInvalidate: each kind of change drops exactly what it names,
// secrets are zeroed, and dropAll empties everything.
func TestCachesInvalidate(t *testing.T) {
	c := newCaches(CacheConfig{}, time.Now)
	fill := func() (secret []byte, raw []byte) {
		c.keys.put("key1", &keyRecord{ID: "key1", State: StateEnabled})
		c.keys.put("key2", &keyRecord{ID: "key2", State: StateEnabled})
		k, raw := symKey(t, 9)
		_, e := c.materials.put("key1", 0, k)
		c.materials.release(e)
		c.grants.put("key1", []*grantRecord{{GrantID: "g"}})
		c.identities.put("arn:aws:iam::111122223333:user/u", identityEntry{id: "u"})
		secret = bytes.Repeat([]byte{5}, 40)
		c.accessKeys.put("AKIAEXAMPLEEXAMPLE", accessKeyEntry{secret: secret})
		return secret, raw
	}
	secret, raw := fill()
	c.invalidate(cacheKey, "key1")
	if _, ok := c.keys.get("key1"); ok {
		t.Error("key record kept after its invalidation")
	}
	if _, ok := c.keys.get("key2"); !ok {
		t.Error("another key's record dropped")
	}
	if _, _, ok := c.materials.get("key1", 0); ok || raw[0] != 0 {
		t.Error("key material kept or not zeroed after the key's invalidation")
	}
	if _, ok := c.grants.get("key1"); !ok {
		t.Error("grants dropped by a key change")
	}
	c.invalidate(cacheGrants, "key1")
	if _, ok := c.grants.get("key1"); ok {
		t.Error("grants kept after their invalidation")
	}
	c.invalidate(cachePrincipal, "arn:aws:iam::111122223333:user/u")
	if _, ok := c.identities.get("arn:aws:iam::111122223333:user/u"); ok {
		t.Error("identity kept after its invalidation")
	}
	c.invalidate(cacheAccessKey, "AKIAEXAMPLEEXAMPLE")
	if _, ok := c.accessKeys.get("AKIAEXAMPLEEXAMPLE"); ok || secret[0] != 0 {
		t.Error("access key secret kept or not zeroed after its invalidation")
	}

	secret, raw = fill()
	c.dropAll()
	if c.keys.len()+c.grants.len()+c.identities.len()+c.accessKeys.len() != 0 || len(c.materials.entries) != 0 {
		t.Error("dropAll left entries")
	}
	if secret[0] != 0 || raw[0] != 0 {
		t.Error("dropAll did not zero secrets")
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

// TestAliasCacheFollowsChanges: an alias resolved once (and so cached)
// follows UpdateAlias and DeleteAlias at once.
func TestAliasCacheFollowsChanges(t *testing.T) {
	s, c := newFormsService(t)
	ctx := t.Context()
	k1, _, _ := newFormsKey(t, s, c)
	k2, _, _ := newFormsKey(t, s, c)
	alias := "alias/forms-" + k1
	encryptVia := func() (string, error) {
		out, err := s.Encrypt(ctx, c, &EncryptInput{KeyId: alias, Plaintext: []byte("x")})
		if err != nil {
			return "", err
		}
		return out.KeyId, nil
	}
	if got, err := encryptVia(); err != nil || got != s.keyARN(c.Account, k1) {
		t.Fatalf("before: %s, %v", got, err)
	}
	if _, err := s.UpdateAlias(ctx, c, &AliasInput{AliasName: alias, TargetKeyId: k2}); err != nil {
		t.Fatal(err)
	}
	if got, err := encryptVia(); err != nil || got != s.keyARN(c.Account, k2) {
		t.Fatalf("after UpdateAlias: %s, %v; want %s", got, err, k2)
	}
	if _, err := s.DeleteAlias(ctx, c, &DeleteAliasInput{AliasName: alias}); err != nil {
		t.Fatal(err)
	}
	var ke *Error
	if _, err := encryptVia(); !errors.As(err, &ke) || ke.Kind != ErrNotFound {
		t.Fatalf("after DeleteAlias: %v, want NotFoundException", err)
	}
}

func TestCacheStatsCountHitsAndMisses(t *testing.T) {
	now := func() time.Time { return time.Unix(1000, 0) }
	b := newBounded[string, int](4, time.Minute, now, nil)
	b.get("a") // miss
	b.put("a", 1)
	b.get("a")                 // hit
	b.view("a", func(*int) {}) // hit
	b.view("b", func(*int) {}) // miss
	st := boundedStat("keys", b)
	if st.Hits != 2 || st.Misses != 2 || st.Entries != 1 {
		t.Fatalf("stats %+v, want 2 hits, 2 misses, 1 entry", st)
	}
}

// TestKeyPrincipalsFollowTheKey: a key's cached policy bindings go with
// every change to the key (its invalidation, or a new snapshot published
// by this node, which may carry a new policy).
func TestKeyPrincipalsFollowTheKey(t *testing.T) {
	c := newCaches(CacheConfig{}, time.Now)
	bind := map[string]string{"arn:aws:iam::111122223333:user/u": "AIDAEXAMPLE"}
	c.keyPrincipals.put("k", bind)
	c.publishKey("k", &keyRecord{ID: "k", State: StateEnabled})
	if _, ok := c.keyPrincipals.get("k"); ok {
		t.Fatal("bindings kept after a new snapshot of the key was published")
	}
	c.keyPrincipals.put("k", bind)
	c.invalidate(cacheKey, "k")
	if _, ok := c.keyPrincipals.get("k"); ok {
		t.Fatal("bindings kept after the key's invalidation")
	}
}
