//go:build cgo

package hsm

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
)

// The failure tests reach into the module the way an operator or a flaky
// token would: sessions closed under the backend, a logout, C_Finalize.

func TestPKCS11ReconnectsAfterSessionsClosed(t *testing.T) {
	ctx := context.Background()
	b := openPKCS11(t, "reconnect")
	w, err := b.Wrap(ctx, []byte("material"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.mod.ctx.CloseAllSessions(uint(b.slot.Load())); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Unwrap(ctx, w, nil); err != nil || string(got) != "material" {
		t.Fatalf("after C_CloseAllSessions: %q %v", got, err)
	}
	if n := b.Reconnects(); n != 1 {
		t.Fatalf("%d reconnections, want 1", n)
	}
	if err := b.mod.ctx.CloseAllSessions(uint(b.slot.Load())); err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping after C_CloseAllSessions: %v", err)
	}

	// A logout from elsewhere leaves the session open but without the
	// right to use private objects: log in again and go on.
	s, err := b.newSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := b.mod.ctx.Logout(s.sh); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Wrap(ctx, []byte("material"), nil); err != nil {
		t.Fatalf("after C_Logout: %v", err)
	}
	if n := b.Reconnects(); n != 3 {
		t.Fatalf("%d reconnections, want 3", n)
	}
}

func TestPKCS11ForgedBlobDoesNotReconnect(t *testing.T) {
	ctx := context.Background()
	b := openPKCS11(t, "forged")
	w, err := b.Wrap(ctx, []byte("material"), nil)
	if err != nil {
		t.Fatal(err)
	}
	w[len(w)-1] ^= 1 // the tag: SoftHSM2 answers CKR_GENERAL_ERROR
	for range 10 {
		if _, err := b.Unwrap(ctx, w, nil); !errors.Is(err, ErrUnwrap) {
			t.Fatalf("forged tag: %v, want ErrUnwrap", err)
		}
	}
	if n := b.Reconnects(); n != 0 {
		t.Fatalf("a forged blob caused %d reconnections", n)
	}
}

// finalizeModule kills the module under every backend in the process, as
// a crashed or unplugged HSM would, and brings it back when the test ends.
func finalizeModule(t *testing.T, b *PKCS11) {
	if err := b.mod.ctx.Finalize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.mod.ctx.Initialize(); err != nil {
			t.Errorf("re-initialize module: %v", err)
		}
	})
}

func TestPKCS11DeadModule(t *testing.T) {
	b := openPKCS11(t, "dead")
	w, err := b.Wrap(context.Background(), []byte("material"), nil)
	if err != nil {
		t.Fatal(err)
	}
	finalizeModule(t, b)
	// A generous deadline: the answer must be ErrUnavailable, not a wait
	// until the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 3 {
		if _, err := b.Unwrap(ctx, w, nil); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("dead module: %v, want ErrUnavailable", err)
		}
		if _, err := b.GenerateRandom(ctx, 8); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("dead module, GenerateRandom: %v, want ErrUnavailable", err)
		}
		if err := b.Ping(ctx); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("dead module, Ping: %v, want ErrUnavailable", err)
		}
	}

	// When the module comes back, the backend reconnects by itself once
	// the backoff has passed.
	if err := b.mod.ctx.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer b.mod.ctx.Finalize() // the cleanup initializes it again
	b.downUntil.Store(0)
	if got, err := b.Unwrap(ctx, w, nil); err != nil || string(got) != "material" {
		t.Fatalf("after the module came back: %q %v", got, err)
	}
}

func TestPoolOverDeadPKCS11(t *testing.T) {
	b := openPKCS11(t, "pool-dead")
	p := newTestPool(t, b, PoolConfig{Workers: 2})
	w, err := p.Wrap(context.Background(), []byte("material"), nil)
	if err != nil {
		t.Fatal(err)
	}
	finalizeModule(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 4 {
		if _, err := p.Unwrap(ctx, w, nil); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("dead module through the pool: %v, want ErrUnavailable", err)
		}
	}
	var m bytes.Buffer
	p.WriteMetrics(&m)
	if want := `coffer_hsm_errors_total{backend="pkcs11",kind="unavailable"} 4`; !bytes.Contains(m.Bytes(), []byte(want)) {
		t.Fatalf("metrics lack %s:\n%s", want, m.String())
	}
}

func TestPoolOverPKCS11Reconnects(t *testing.T) {
	ctx := context.Background()
	b := openPKCS11(t, "pool-reconnect")
	p := newTestPool(t, b, PoolConfig{Workers: 2})
	pts, blobs, aads := wrapN(t, p, 8)
	if err := b.mod.ctx.CloseAllSessions(uint(b.slot.Load())); err != nil {
		t.Fatal(err)
	}
	for i := range blobs {
		if got, err := p.Unwrap(ctx, blobs[i], aads[i]); err != nil || !bytes.Equal(got, pts[i]) {
			t.Fatalf("after C_CloseAllSessions: %q %v", got, err)
		}
	}
	if n := b.Reconnects(); n < 1 || n > 2 {
		t.Fatalf("%d reconnections, want one per worker session that was used", n)
	}
}

func TestPKCS11RootKey(t *testing.T) {
	ctx := context.Background()
	cfg := pkcs11Config(t, "root-modes")

	cfg.RootKey = RootKeyRequired
	if _, err := OpenPKCS11(cfg); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("missing root key, required: %v, want ErrKeyNotFound", err)
	}

	cfg.RootKey = RootKeyDeferred
	b, err := OpenPKCS11(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Wrap(ctx, []byte("material"), nil); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("wrap before init: %v, want ErrKeyNotFound", err)
	}
	if err := b.InitRootKey(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.InitRootKey(ctx); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second init: %v, want ErrKeyExists", err)
	}
	w, err := b.Wrap(ctx, []byte("material"), nil)
	if err != nil {
		t.Fatal(err)
	}

	cfg.RootKey = RootKeyRequired
	b2, err := OpenPKCS11(cfg)
	if err != nil {
		t.Fatalf("reopen with the key present: %v", err)
	}
	defer b2.Close()
	if got, err := b2.Unwrap(ctx, w, nil); err != nil || string(got) != "material" {
		t.Fatalf("unwrap in a second backend: %v", err)
	}
	checkKeyAttributes(t, b2, cfg.KeyLabel)
}

// checkKeyAttributes asserts the key can never leave the token.
func checkKeyAttributes(t *testing.T, b *PKCS11, label string) {
	t.Helper()
	err := b.withSession(context.Background(), func(s *p11Session) error {
		h, err := s.findKey(label)
		if err != nil {
			return err
		}
		attrs, err := b.mod.ctx.GetAttributeValue(s.sh, h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_ALWAYS_SENSITIVE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_NEVER_EXTRACTABLE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, nil),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, nil),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, nil),
		})
		if err != nil {
			return err
		}
		want := []byte{1, 1, 1, 1, 0, 1, 1, 1, 0}
		for i, a := range attrs {
			if !bytes.Equal(a.Value, want[i:i+1]) {
				t.Errorf("attribute %#x = %v, want %d", a.Type, a.Value, want[i])
			}
		}
		_, err = b.mod.ctx.GetAttributeValue(s.sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if !hasCode(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
			t.Errorf("reading the key value: %v, want CKR_ATTRIBUTE_SENSITIVE", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPKCS11Config(t *testing.T) {
	good := pkcs11Config(t, "config")
	slot := uint(0)
	for name, mutate := range map[string]func(*PKCS11Config){
		"no module":        func(c *PKCS11Config) { c.ModulePath = "" },
		"missing module":   func(c *PKCS11Config) { c.ModulePath = "/nonexistent/libpkcs11.so" },
		"label and slot":   func(c *PKCS11Config) { c.Slot = &slot },
		"neither":          func(c *PKCS11Config) { c.TokenLabel = "" },
		"no PIN":           func(c *PKCS11Config) { c.PIN = "" },
		"wrong PIN":        func(c *PKCS11Config) { c.PIN = "0000" },
		"unknown token":    func(c *PKCS11Config) { c.TokenLabel = "no such token" },
		"bad key label":    func(c *PKCS11Config) { c.KeyLabel = "tab\there" },
		"long key label":   func(c *PKCS11Config) { c.KeyLabel = string(bytes.Repeat([]byte("k"), MaxLabel+1)) },
		"negative session": func(c *PKCS11Config) { c.Sessions = -1 },
		"bad root mode":    func(c *PKCS11Config) { c.RootKey = 7 },
	} {
		cfg := good
		mutate(&cfg)
		b, err := OpenPKCS11(cfg)
		if err == nil {
			b.Close()
			t.Errorf("%s: accepted", name)
			continue
		}
		if bytes.Contains([]byte(err.Error()), []byte(testPIN)) && name != "wrong PIN" {
			t.Errorf("%s: error shows the PIN: %v", name, err)
		}
		if name == "wrong PIN" && !errors.Is(err, ErrLogin) {
			t.Errorf("wrong PIN: %v, want ErrLogin", err)
		}
		t.Logf("%s: %v", name, err)
	}
	// By slot instead of label.
	b := openPKCS11(t, "config")
	cfg := good
	cfg.TokenLabel, cfg.Slot = "", &[]uint{uint(b.slot.Load())}[0]
	bySlot, err := OpenPKCS11(cfg)
	if err != nil {
		t.Fatal(err)
	}
	bySlot.Close()
}

func TestPKCS11CloseZeroesPIN(t *testing.T) {
	b, err := OpenPKCS11(pkcs11Config(t, "close"))
	if err != nil {
		t.Fatal(err)
	}
	pin := b.pin
	if string(pin) != testPIN {
		t.Fatal("PIN not kept for re-login")
	}
	b.Close()
	if !bytes.Equal(pin, make([]byte, len(pin))) {
		t.Fatal("Close left the PIN in memory")
	}
	if _, err := b.OpenSession(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("OpenSession after Close: %v", err)
	}
}

// TestPoolPKCS11Batches drives the batched path (one call into the module
// for a worker's unwraps) with forged blobs among genuine ones and a lost
// session in the middle: every answer is what Unwrap gives alone.
func TestPoolPKCS11Batches(t *testing.T) {
	ctx := context.Background()
	b := openPKCS11(t, "pool-batches")
	p := newTestPool(t, b, PoolConfig{Workers: 1, Batch: 16})
	pts, blobs, aads := wrapN(t, p, 48)
	forged := func(i int) bool { return i%7 == 3 }
	for i := range blobs {
		if forged(i) {
			blobs[i][len(blobs[i])-1-i%16] ^= 1
		}
	}
	round := func() {
		t.Helper()
		var wg sync.WaitGroup
		for i := range blobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := p.Unwrap(ctx, blobs[i], aads[i])
				switch {
				case forged(i) && !errors.Is(err, ErrUnwrap):
					t.Errorf("forged blob %d: %q %v, want ErrUnwrap", i, got, err)
				case !forged(i) && (err != nil || !bytes.Equal(got, pts[i])):
					t.Errorf("blob %d: %q %v", i, got, err)
				}
			}()
		}
		wg.Wait()
	}
	for range 5 {
		round()
	}
	if st := p.Stats(); st.MaxBatch < 2 {
		t.Fatalf("no batch formed (largest %d): the batched path was not exercised", st.MaxBatch)
	}
	if n := b.Reconnects(); n != 0 {
		t.Fatalf("forged blobs in batches caused %d reconnections", n)
	}
	if err := b.mod.ctx.CloseAllSessions(uint(b.slot.Load())); err != nil {
		t.Fatal(err)
	}
	round()
	if n := b.Reconnects(); n != 1 {
		t.Fatalf("%d reconnections after the session was lost, want 1", n)
	}
}
