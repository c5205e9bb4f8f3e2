package kms

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/engine"
	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// retryingStore is a keystore.Store whose Update runs fn twice, as a
// backend that retries a conflicting transaction may: once on a
// transaction that is then rolled back, once for real. It counts the
// transactions open at any moment, so that a root can tell whether it is
// called inside one, and the deepest nesting seen.
type retryingStore struct {
	keystore.Store
	open    atomic.Int64 // transactions (View or Update) open now
	deepest atomic.Int64
	views   atomic.Int64 // View calls
}

var _ keystore.Store = (*retryingStore)(nil)

// errThrowaway rolls back the first run of an Update's fn.
var errThrowaway = errors.New("retryingStore: throwaway run")

func (s *retryingStore) enter() func() {
	n := s.open.Add(1)
	for {
		d := s.deepest.Load()
		if n <= d || s.deepest.CompareAndSwap(d, n) {
			break
		}
	}
	return func() { s.open.Add(-1) }
}

func (s *retryingStore) View(ctx context.Context, fn func(keystore.Tx) error) error {
	s.views.Add(1)
	return s.Store.View(ctx, func(tx keystore.Tx) error {
		defer s.enter()()
		return fn(tx)
	})
}

func (s *retryingStore) Update(ctx context.Context, fn func(keystore.Tx) error) error {
	run := func(tx keystore.Tx) error {
		defer s.enter()()
		return fn(tx)
	}
	err := s.Store.Update(ctx, func(tx keystore.Tx) error {
		if err := run(tx); err != nil {
			return err
		}
		return errThrowaway
	})
	if err != errThrowaway {
		return err
	}
	return s.Store.Update(ctx, run)
}

// watchedRoot is an hsm.Backend that counts its calls and those made while
// a transaction of store is open. beforeWrap, when set, runs before a Wrap
// (with the wrap not yet done), once: tests use it to change a key between
// rotate's read and its transaction.
type watchedRoot struct {
	hsm.Backend
	store           *retryingStore
	wraps, unwraps  atomic.Int64
	wrapsInTx       atomic.Int64
	unwrapsInTx     atomic.Int64
	beforeWrapMu    sync.Mutex
	beforeWrap      func()
	beforeWrapFired bool
}

var _ hsm.Backend = (*watchedRoot)(nil)

func (r *watchedRoot) Wrap(ctx context.Context, pt, aad []byte) ([]byte, error) {
	r.wraps.Add(1)
	if r.store.open.Load() > 0 {
		r.wrapsInTx.Add(1)
	}
	r.beforeWrapMu.Lock()
	var hook func()
	if !r.beforeWrapFired {
		hook, r.beforeWrapFired = r.beforeWrap, r.beforeWrap != nil
	}
	r.beforeWrapMu.Unlock()
	if hook != nil {
		hook()
	}
	return r.Backend.Wrap(ctx, pt, aad)
}

func (r *watchedRoot) Unwrap(ctx context.Context, w, aad []byte) ([]byte, error) {
	r.unwraps.Add(1)
	if r.store.open.Load() > 0 {
		r.unwrapsInTx.Add(1)
	}
	return r.Backend.Unwrap(ctx, w, aad)
}

// onNextWrap arms r's hook for the next Wrap.
func (r *watchedRoot) onNextWrap(f func()) {
	r.beforeWrapMu.Lock()
	r.beforeWrap, r.beforeWrapFired = f, false
	r.beforeWrapMu.Unlock()
}

// testClock is a clock tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type txHarness struct {
	s     *Service
	c     *Caller
	store *retryingStore
	root  *watchedRoot
	clock *testClock
}

func newTxHarness(t *testing.T) *txHarness {
	t.Helper()
	soft, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	h := &txHarness{
		store: &retryingStore{Store: keystore.NewMemory()},
		clock: &testClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
		c:     &Caller{ARN: "arn:aws:iam::111122223333:root", Account: "111122223333"},
	}
	h.root = &watchedRoot{Backend: soft, store: h.store}
	h.s, err = New(Config{Region: "us-east-1", Account: "111122223333", Store: h.store, Root: h.root, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.s.Close() })
	return h
}

// checkNoRootInTx fails the test if the root was called while a store
// transaction was open.
func (h *txHarness) checkNoRootInTx(t *testing.T) {
	t.Helper()
	if n := h.root.wrapsInTx.Load(); n != 0 {
		t.Errorf("%d Wrap calls inside a store transaction", n)
	}
	if n := h.root.unwrapsInTx.Load(); n != 0 {
		t.Errorf("%d Unwrap calls inside a store transaction", n)
	}
}

func (h *txHarness) createKey(t *testing.T) string {
	t.Helper()
	out, err := h.s.CreateKey(context.Background(), h.c, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	return out.KeyMetadata.KeyId
}

// record reads key id's record from the store, not the cache.
func (h *txHarness) record(t *testing.T, id string) *keyRecord {
	t.Helper()
	var r *keyRecord
	err := h.s.store.View(context.Background(), func(tx keystore.Tx) (err error) {
		r, err = getKeyTx(tx, id)
		return err
	})
	if err != nil || r == nil {
		t.Fatalf("read key %s: %v (record %v)", id, err, r)
	}
	return r
}

func (h *txHarness) encrypt(t *testing.T, id string, pt string) []byte {
	t.Helper()
	out, err := h.s.Encrypt(context.Background(), h.c, &EncryptInput{KeyId: id, Plaintext: []byte(pt)})
	if err != nil {
		t.Fatal(err)
	}
	return out.CiphertextBlob
}

// checkDecrypts fails the test unless every blob still opens to its plaintext.
func (h *txHarness) checkDecrypts(t *testing.T, blobs map[string][]byte) {
	t.Helper()
	for pt, blob := range blobs {
		out, err := h.s.Decrypt(context.Background(), h.c, &DecryptInput{CiphertextBlob: blob})
		if err != nil {
			t.Fatalf("decrypt %q: %v", pt, err)
		}
		if !bytes.Equal(out.Plaintext, []byte(pt)) {
			t.Fatalf("decrypt %q: got %q", pt, out.Plaintext)
		}
	}
}

func TestRotationWrapsOutsideTransactions(t *testing.T) {
	h := newTxHarness(t)
	ctx := context.Background()
	h.checkNoRootInTx(t) // New: the record key

	wraps := h.root.wraps.Load()
	id := h.createKey(t)
	if got := h.root.wraps.Load() - wraps; got != 1 {
		t.Fatalf("CreateKey made %d wraps, want 1", got)
	}
	h.checkNoRootInTx(t)
	blobs := map[string][]byte{"v0": h.encrypt(t, id, "v0")}

	wraps = h.root.wraps.Load()
	if _, err := h.s.RotateKeyOnDemand(ctx, h.c, &KeyIDInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	if got := h.root.wraps.Load() - wraps; got != 1 {
		t.Fatalf("RotateKeyOnDemand made %d wraps, want 1", got)
	}
	r := h.record(t, id)
	if len(r.Versions) != 2 || r.OnDemandRotations != 1 {
		t.Fatalf("after one on-demand rotation, whose transaction ran twice: %d versions, %d on-demand rotations; want 2, 1",
			len(r.Versions), r.OnDemandRotations)
	}
	h.checkNoRootInTx(t)
	blobs["v1"] = h.encrypt(t, id, "v1")
	h.checkDecrypts(t, blobs)

	if _, err := h.s.EnableKeyRotation(ctx, h.c, &EnableKeyRotationInput{KeyId: id, RotationPeriodInDays: new(90)}); err != nil {
		t.Fatal(err)
	}
	if rotated, _, err := h.s.RunMaintenance(ctx); rotated != 0 || err != nil {
		t.Fatalf("RunMaintenance before the key is due: rotated %d, %v", rotated, err)
	}
	h.clock.advance(days(91))
	wraps = h.root.wraps.Load()
	if rotated, _, err := h.s.RunMaintenance(ctx); rotated != 1 || err != nil {
		t.Fatalf("RunMaintenance when the key is due: rotated %d, %v; want 1", rotated, err)
	}
	if got := h.root.wraps.Load() - wraps; got != 1 {
		t.Fatalf("automatic rotation made %d wraps, want 1", got)
	}
	r = h.record(t, id)
	if len(r.Versions) != 3 || r.Versions[2].RotationType != rotationAutomatic {
		t.Fatalf("after automatic rotation: %d versions, last %q", len(r.Versions), r.Versions[len(r.Versions)-1].RotationType)
	}
	if want := h.clock.Now().Add(days(90)); !r.NextRotation.Equal(want) {
		t.Fatalf("next rotation %v, want %v", r.NextRotation, want)
	}
	if rotated, _, err := h.s.RunMaintenance(ctx); rotated != 0 || err != nil {
		t.Fatalf("RunMaintenance right after rotating: rotated %d, %v", rotated, err)
	}
	blobs["v2"] = h.encrypt(t, id, "v2")
	h.checkDecrypts(t, blobs)
	h.checkNoRootInTx(t)
	if h.root.unwraps.Load() == 0 {
		t.Fatal("no Unwrap was observed: the test does not exercise decryption through the root")
	}
}

// A rotation that loses the race to another keeps neither's material
// bound to the wrong index: it prepares again and both versions open.
func TestRotationRetriesWhenAnotherRotationWins(t *testing.T) {
	h := newTxHarness(t)
	ctx := context.Background()
	id := h.createKey(t)
	blobs := map[string][]byte{"v0": h.encrypt(t, id, "v0")}

	h.root.onNextWrap(func() {
		// Between the first rotation's read and its transaction.
		if _, err := h.s.RotateKeyOnDemand(ctx, h.c, &KeyIDInput{KeyId: id}); err != nil {
			t.Error(err)
		}
	})
	wraps := h.root.wraps.Load()
	if _, err := h.s.RotateKeyOnDemand(ctx, h.c, &KeyIDInput{KeyId: id}); err != nil {
		var e *Error
		if errors.As(err, &e) {
			t.Fatal(err, e.Cause())
		}
		t.Fatal(err)
	}
	if got := h.root.wraps.Load() - wraps; got != 3 {
		t.Fatalf("%d wraps, want 3: the loser's, the winner's, the loser's again", got)
	}
	r := h.record(t, id)
	if len(r.Versions) != 3 || r.OnDemandRotations != 2 {
		t.Fatalf("%d versions, %d on-demand rotations; want 3, 2", len(r.Versions), r.OnDemandRotations)
	}
	for v := range r.Versions {
		pt, err := h.root.Unwrap(ctx, r.Versions[v].Wrapped, materialAAD(r.arn(), v))
		if err != nil {
			t.Fatalf("version %d does not open under its own index: %v", v, err)
		}
		clear(pt)
	}
	blobs["v2"] = h.encrypt(t, id, "v2")
	h.checkDecrypts(t, blobs)
	h.checkNoRootInTx(t)
}

// An on-demand rotation that loses every race gives up after
// rotationAttempts with AWS's ConflictException (a rotation in progress),
// and leaves the winners' versions as they are.
func TestRotationGivesUpAfterLosingEveryRace(t *testing.T) {
	h := newTxHarness(t)
	ctx := context.Background()
	id := h.createKey(t)
	var hook func()
	hook = func() {
		if _, err := h.s.RotateKeyOnDemand(ctx, h.c, &KeyIDInput{KeyId: id}); err != nil {
			t.Error(err)
		}
		h.root.onNextWrap(hook) // the loser's next attempt loses too
	}
	h.root.onNextWrap(hook)
	_, err := h.s.RotateKeyOnDemand(ctx, h.c, &KeyIDInput{KeyId: id})
	h.root.onNextWrap(nil)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("got %v, want ConflictException", err)
	}
	r := h.record(t, id)
	if len(r.Versions) != 1+rotationAttempts || r.OnDemandRotations != rotationAttempts {
		t.Fatalf("%d versions, %d on-demand rotations; want %d, %d", len(r.Versions), r.OnDemandRotations, 1+rotationAttempts, rotationAttempts)
	}
	h.checkNoRootInTx(t)
}

// Automatic rotation checks again, inside its transaction, that the key is
// still due: what RunMaintenance's scan saw may have changed by then.
func TestAutomaticRotationSkipsKeysNoLongerDue(t *testing.T) {
	ctx := context.Background()
	changes := []struct {
		name   string
		change func(h *txHarness, id string) error
	}{
		{"disabled", func(h *txHarness, id string) error {
			_, err := h.s.DisableKey(ctx, h.c, &KeyIDInput{KeyId: id})
			return err
		}},
		{"rotation disabled", func(h *txHarness, id string) error {
			_, err := h.s.DisableKeyRotation(ctx, h.c, &KeyIDInput{KeyId: id})
			return err
		}},
		{"scheduled for deletion", func(h *txHarness, id string) error {
			_, err := h.s.ScheduleKeyDeletion(ctx, h.c, &ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: new(7)})
			return err
		}},
		{"rotated elsewhere", func(h *txHarness, id string) error {
			_, _, err := h.s.rotate(ctx, id, rotationAutomatic)
			return err
		}},
	}
	// when: the change is made before rotate reads the key, or between its
	// read (and wrap) and its transaction.
	for _, when := range []string{"before read", "before transaction"} {
		for _, ch := range changes {
			t.Run(when+"/"+ch.name, func(t *testing.T) {
				h := newTxHarness(t)
				id := h.createKey(t)
				if _, err := h.s.EnableKeyRotation(ctx, h.c, &EnableKeyRotationInput{KeyId: id, RotationPeriodInDays: new(90)}); err != nil {
					t.Fatal(err)
				}
				h.clock.advance(days(91))
				before := h.record(t, id)
				want := len(before.Versions)
				if ch.name == "rotated elsewhere" {
					want++
				}
				var rotated bool
				var err error
				if when == "before read" {
					if err := ch.change(h, id); err != nil {
						t.Fatal(err)
					}
					_, rotated, err = h.s.rotate(ctx, id, rotationAutomatic)
				} else {
					h.root.onNextWrap(func() {
						if err := ch.change(h, id); err != nil {
							t.Error(err)
						}
					})
					var n int
					n, _, err = h.s.RunMaintenance(ctx)
					rotated = n != 0
				}
				if err != nil || rotated {
					t.Fatalf("rotated %v, %v; want a skip", rotated, err)
				}
				after := h.record(t, id)
				if len(after.Versions) != want {
					t.Fatalf("%d versions, want %d", len(after.Versions), want)
				}
				h.checkNoRootInTx(t)
			})
		}
	}
}

func TestListKeysPagesWithoutLoadingEachKey(t *testing.T) {
	h := newTxHarness(t)
	ctx := context.Background()
	const mine, others = 2500, 300
	other := "444455556666"
	want := make([]string, 0, mine)
	now := h.clock.Now()
	// Records are put directly, in one transaction: 2,800 CreateKeys
	// would spend the test's time in the root.
	err := h.s.store.Update(ctx, func(tx keystore.Tx) error {
		want = want[:0] // fn runs twice
		for i := range mine + others {
			var kid engine.KeyID
			binary.BigEndian.PutUint64(kid[:8], uint64(i)*0x9e3779b97f4a7c15) // spread accounts through the ID order
			binary.BigEndian.PutUint64(kid[8:], uint64(i))
			r := &keyRecord{ID: formatKeyID(kid), Account: h.c.Account, Region: "us-east-1", Created: now,
				Usage: UsageEncryptDecrypt, Spec: SpecSymmetric, Origin: OriginAWSKMS, Manager: ManagerCustomer,
				State: StateEnabled, Policy: "{}", Versions: []keyVersion{{MaterialID: "00", Wrapped: []byte{1}, Created: now}}}
			if i >= mine {
				r.Account = other
			} else {
				want = append(want, r.ID)
			}
			if err := putKeyTx(tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)

	var got []string
	marker := ""
	pages := 0
	limit := 1000
	h.store.deepest.Store(0)
	views := h.store.views.Load()
	for {
		out, err := h.s.ListKeys(ctx, h.c, &ListInput{Limit: &limit, Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(out.Keys) > limit {
			t.Fatalf("page %d has %d keys, limit %d", pages, len(out.Keys), limit)
		}
		for _, k := range out.Keys {
			if k.KeyArn != "arn:aws:kms:us-east-1:"+h.c.Account+":key/"+k.KeyId {
				t.Fatalf("key %s has ARN %s", k.KeyId, k.KeyArn)
			}
			got = append(got, k.KeyId)
		}
		if !out.Truncated {
			if out.NextMarker != "" {
				t.Fatal("a last page with a marker")
			}
			break
		}
		if pages == 10 {
			t.Fatal("ListKeys does not end")
		}
		marker = out.NextMarker
	}
	if pages != 3 {
		t.Fatalf("%d pages of 1000 over %d keys, want 3", pages, mine)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ListKeys returned %d keys (%d distinct), want the account's %d in ID order",
			len(got), len(slices.Compact(slices.Clone(got))), len(want))
	}
	// The key cache is being replaced, so it is not inspected; what this
	// asserts instead is that no key was read in a transaction of its own
	// and that none was opened inside the scan.
	if n := h.store.views.Load() - views; n > int64(3*pages) {
		t.Fatalf("ListKeys opened %d read transactions for %d pages: it reads keys one by one", n, pages)
	}
	if d := h.store.deepest.Load(); d > 1 {
		t.Fatalf("transactions nested %d deep", d)
	}
}

// tokenRoot is a watchedRoot that also runs custom-key-store keys, as a
// PKCS#11 root does, with a fake token: it counts the objects made and
// destroyed and the calls made inside a store transaction. onGenerate, when
// set, runs after an object is made.
type tokenRoot struct {
	*watchedRoot
	mu                   sync.Mutex
	objects              map[string]bool
	generated, destroyed int
	callsInTx            int
	onGenerate           func()
}

var _ hsm.KeyStoreBackend = (*tokenRoot)(nil)

func (r *tokenRoot) call() {
	if r.store.open.Load() > 0 {
		r.callsInTx++
	}
}

func (r *tokenRoot) GenerateKey(_ context.Context, label string) (string, error) {
	r.mu.Lock()
	r.call()
	r.generated++
	r.objects[label] = true
	hook := r.onGenerate
	r.mu.Unlock()
	if hook != nil {
		hook()
	}
	return label, nil
}

func (r *tokenRoot) DestroyKey(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.call()
	if !r.objects[id] {
		return hsm.ErrKeyNotFound
	}
	delete(r.objects, id)
	r.destroyed++
	return nil
}

func (r *tokenRoot) Ping(context.Context) error { return nil }

func (r *tokenRoot) Encrypt(context.Context, string, []byte, []byte) ([]byte, error) {
	return nil, hsm.ErrUnsupported
}

func (r *tokenRoot) Decrypt(context.Context, string, []byte, []byte) ([]byte, error) {
	return nil, hsm.ErrUnsupported
}

func (r *tokenRoot) GenerateRandom(context.Context, int) ([]byte, error) {
	return nil, hsm.ErrUnsupported
}

// A custom-key-store key's HSM object is made before CreateKey's
// transaction; when the transaction then refuses (the store was
// disconnected meanwhile), the object is destroyed and no key remains.
func TestCreateKeyInCustomKeyStoreOutsideTransaction(t *testing.T) {
	h := newTxHarness(t)
	ctx := context.Background()
	tok := &tokenRoot{watchedRoot: h.root, objects: map[string]bool{}}
	s, err := New(Config{Region: "us-east-1", Account: h.c.Account, Store: h.store, Root: tok, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.CreateCustomKeyStore(ctx, h.c, &CreateCustomKeyStoreInput{CustomKeyStoreName: "tx",
		CloudHsmClusterId: new("cluster-1234567abcdefgh"), KeyStorePassword: new("password"),
		TrustAnchorCertificate: new("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")})
	if err != nil {
		t.Fatal(err)
	}
	store := &CustomKeyStoreIDInput{CustomKeyStoreId: out.CustomKeyStoreId}
	if _, err := s.ConnectCustomKeyStore(ctx, h.c, store); err != nil {
		t.Fatal(err)
	}
	in := &CreateKeyInput{Origin: OriginCloudHSM, CustomKeyStoreId: out.CustomKeyStoreId}
	if _, err := s.CreateKey(ctx, h.c, in); err != nil {
		t.Fatal(err)
	}
	tok.onGenerate = func() {
		if _, err := s.DisconnectCustomKeyStore(ctx, h.c, store); err != nil {
			t.Error(err)
		}
	}
	if _, err := s.CreateKey(ctx, h.c, in); !errors.Is(err, ErrCustomKeyStoreInvalidState) {
		t.Fatalf("CreateKey in a store disconnected meanwhile: %v", err)
	}
	tok.onGenerate = nil
	if tok.generated != 2 || tok.destroyed != 1 || len(tok.objects) != 1 {
		t.Fatalf("%d objects made, %d destroyed, %d left; want 2, 1, 1", tok.generated, tok.destroyed, len(tok.objects))
	}
	if tok.callsInTx != 0 {
		t.Fatalf("%d HSM calls inside a store transaction", tok.callsInTx)
	}
	keys, err := s.ListKeys(ctx, h.c, &ListInput{})
	if err != nil || len(keys.Keys) != 1 {
		t.Fatalf("%v keys after one refused CreateKey, want 1: %v", keys, err)
	}
	h.checkNoRootInTx(t)
}
