//go:build cgo

package hsm

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/miekg/pkcs11"
)

// PKCS11 is the token root of trust: the root key is a non-extractable
// AES-256 object in a PKCS#11 token, used with CKM_AES_GCM. It also runs
// custom-key-store keys (KeyStoreBackend).
//
// Wrapped blobs are version 2 | iv[12] | ciphertext | tag[16]: the IV comes
// from crypto/rand on this side, so the layout does not depend on the
// token writing one back.
type PKCS11 struct {
	cfg PKCS11Config // PIN cleared; the PIN lives in pin
	mod *module

	// life guards every call into the module: calls hold it shared, Close
	// holds it exclusively, so a module is never finalized under a call.
	life   sync.RWMutex
	closed bool   // guarded by life
	pin    []byte // guarded by life; zeroed by Close

	// The backend's own sessions, for Wrap and Unwrap called directly.
	sem      chan struct{} // one token per session in use
	mu       sync.Mutex
	idle     []*p11Session // guarded by mu
	draining bool          // guarded by mu

	// Object handles are valid in every session of the process; they are
	// looked up once and forgotten whenever a session is re-established.
	root atomic.Uint64 // 0: not looked up yet
	keys sync.Map      // label → pkcs11.ObjectHandle

	slot atomic.Uint64 // last slot the token was found in

	// Reconnection (pkcs11_reconnect.go). gen is the session generation:
	// a session opened in an older one is retired before its next call.
	started    atomic.Bool // OpenPKCS11 finished: failures start outages
	down       atomic.Pointer[outage]
	downUntil  atomic.Int64 // unix ns: no attempt before it during an outage
	gen        atomic.Uint64
	reconnects atomic.Uint64
	lastProbe  atomic.Int64 // unix ns of Healthy's last look at the token
	attempt    sync.Mutex   // one reconnection attempt at a time
	loop       struct {
		sync.Mutex
		running, stopped bool // guarded by the mutex
		stop             chan struct{}
		wg               sync.WaitGroup
	}
}

var (
	_ Backend         = (*PKCS11)(nil)
	_ SessionBackend  = (*PKCS11)(nil)
	_ KeyStoreBackend = (*PKCS11)(nil)
	_ KeyStoreSession = (*p11Session)(nil)
	_ HealthChecker   = (*PKCS11)(nil)
)

// OpenPKCS11 loads the module, finds the token, logs in and finds (or,
// per cfg.RootKey, creates) the root key. The PIN is checked here, so a
// wrong one fails at start rather than on the first request.
func OpenPKCS11(cfg PKCS11Config) (*PKCS11, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	mod, err := acquireModule(cfg.ModulePath)
	if err != nil {
		return nil, err
	}
	b := &PKCS11{mod: mod, pin: []byte(cfg.PIN), sem: make(chan struct{}, cfg.Sessions)}
	b.loop.stop = make(chan struct{})
	cfg.PIN = ""
	b.cfg = cfg
	if err := b.start(); err != nil {
		b.Close()
		return nil, err
	}
	b.started.Store(true)
	return b, nil
}

func (b *PKCS11) start() error {
	s, err := b.newSession()
	if err != nil {
		return err
	}
	defer b.putIdle(s)
	if err := b.enter(); err != nil {
		return err
	}
	defer b.life.RUnlock()
	p11 := b.mod.ctx
	if _, err := p11.GetMechanismInfo(s.slot, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, nil)}); err != nil {
		return fmt.Errorf("hsm: pkcs11: token does not offer CKM_AES_GCM: %w", err)
	}
	h, err := s.findKey(b.cfg.KeyLabel)
	switch {
	case err == nil:
		return b.checkRoot(s, h)
	case err != ErrKeyNotFound:
		return err
	case b.cfg.RootKey == RootKeyCreate:
		h, err := s.generateKey(b.cfg.KeyLabel)
		if err == nil {
			b.root.Store(uint64(h))
		}
		return err
	case b.cfg.RootKey == RootKeyDeferred:
		return nil
	default:
		return fmt.Errorf("%w: no root key labelled %q on the token; run `coffer admin hsm init`", ErrKeyNotFound, b.cfg.KeyLabel)
	}
}

// checkRoot refuses a root key that could leave the token.
func (b *PKCS11) checkRoot(s *p11Session, h pkcs11.ObjectHandle) error {
	attrs, err := b.mod.ctx.GetAttributeValue(s.sh, h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, nil),
	})
	if err != nil {
		return fmt.Errorf("hsm: pkcs11: read root key attributes: %w", err)
	}
	sensitive := len(attrs[0].Value) == 1 && attrs[0].Value[0] != 0
	extractable := len(attrs[1].Value) != 1 || attrs[1].Value[0] != 0
	if !sensitive || extractable {
		return fmt.Errorf("hsm: pkcs11: root key %q is extractable or not sensitive; refusing to use it", b.cfg.KeyLabel)
	}
	if n, err := ulong(attrs[2].Value); err != nil || n != rootKeySize {
		return fmt.Errorf("hsm: pkcs11: root key %q is not a 256-bit AES key", b.cfg.KeyLabel)
	}
	b.root.Store(uint64(h))
	return nil
}

// InitRootKey creates the root key (for `coffer admin hsm init`);
// ErrKeyExists if the token already holds one under the label.
func (b *PKCS11) InitRootKey(ctx context.Context) error {
	return b.withSession(ctx, func(s *p11Session) error {
		if err := b.enter(); err != nil {
			return err
		}
		defer b.life.RUnlock()
		return s.do(ctx, "create root key", false, func() error {
			if _, err := s.findKey(b.cfg.KeyLabel); err != ErrKeyNotFound {
				if err == nil {
					return fmt.Errorf("%w: the token already holds a root key labelled %q", ErrKeyExists, b.cfg.KeyLabel)
				}
				return err
			}
			h, err := s.generateKey(b.cfg.KeyLabel)
			if err == nil {
				b.root.Store(uint64(h))
			}
			return err
		})
	})
}

// Name implements Backend.
func (b *PKCS11) Name() string { return "pkcs11" }

// Wrap implements Backend.
func (b *PKCS11) Wrap(ctx context.Context, plaintext, aad []byte) (out []byte, err error) {
	err = b.withSession(ctx, func(s *p11Session) error {
		out, err = s.Wrap(ctx, plaintext, aad)
		return err
	})
	return out, err
}

// Unwrap implements Backend.
func (b *PKCS11) Unwrap(ctx context.Context, wrapped, aad []byte) (out []byte, err error) {
	err = b.withSession(ctx, func(s *p11Session) error {
		out, err = s.Unwrap(ctx, wrapped, aad)
		return err
	})
	return out, err
}

// GenerateKey implements KeyStoreBackend; the key ID is the label.
func (b *PKCS11) GenerateKey(ctx context.Context, label string) (keyID string, err error) {
	if err := b.checkKeyStoreLabel(label); err != nil {
		return "", err
	}
	err = b.withSession(ctx, func(s *p11Session) error {
		if err := b.enter(); err != nil {
			return err
		}
		defer b.life.RUnlock()
		return s.do(ctx, "generate key", false, func() error {
			if _, err := s.findKey(label); err != ErrKeyNotFound {
				if err == nil {
					return fmt.Errorf("%w: label %q", ErrKeyExists, label)
				}
				return err
			}
			h, err := s.generateKey(label)
			if err == nil {
				b.keys.Store(label, h)
			}
			return err
		})
	})
	if err != nil {
		return "", err
	}
	return label, nil
}

// DestroyKey implements KeyStoreBackend.
func (b *PKCS11) DestroyKey(ctx context.Context, keyID string) error {
	if err := b.checkKeyStoreLabel(keyID); err != nil {
		return err
	}
	return b.withSession(ctx, func(s *p11Session) error {
		if err := b.enter(); err != nil {
			return err
		}
		defer b.life.RUnlock()
		return s.do(ctx, "destroy key", false, func() error {
			h, err := s.keyStoreKey(keyID)
			if err != nil {
				return err
			}
			b.keys.Delete(keyID)
			return b.mod.ctx.DestroyObject(s.sh, h)
		})
	})
}

// Encrypt implements KeyStoreBackend.
func (b *PKCS11) Encrypt(ctx context.Context, keyID string, plaintext, aad []byte) (out []byte, err error) {
	err = b.withSession(ctx, func(s *p11Session) error {
		out, err = s.Encrypt(ctx, keyID, plaintext, aad)
		return err
	})
	return out, err
}

// Decrypt implements KeyStoreBackend.
func (b *PKCS11) Decrypt(ctx context.Context, keyID string, blob, aad []byte) (out []byte, err error) {
	err = b.withSession(ctx, func(s *p11Session) error {
		out, err = s.Decrypt(ctx, keyID, blob, aad)
		return err
	})
	return out, err
}

// GenerateRandom implements KeyStoreBackend.
func (b *PKCS11) GenerateRandom(ctx context.Context, n int) (out []byte, err error) {
	err = b.withSession(ctx, func(s *p11Session) error {
		out, err = s.GenerateRandom(ctx, n)
		return err
	})
	return out, err
}

// Ping implements KeyStoreBackend.
func (b *PKCS11) Ping(ctx context.Context) error {
	return b.withSession(ctx, func(s *p11Session) error {
		if err := b.enter(); err != nil {
			return err
		}
		defer b.life.RUnlock()
		return s.do(ctx, "ping", false, func() error {
			if _, err := b.mod.ctx.GetTokenInfo(s.slot); err != nil {
				return err
			}
			if !s.healthy() {
				return pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN)
			}
			return nil
		})
	})
}

// OpenSession implements SessionBackend: a new PKCS#11 session, logged in,
// for one pool worker.
func (b *PKCS11) OpenSession(ctx context.Context) (Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return b.newSession()
}

// Close stops reconnecting, closes every session, zeroes the PIN and, if
// no other backend in the process uses the module, finalizes it. Later
// calls return ErrClosed.
func (b *PKCS11) Close() error {
	b.loop.Lock()
	if !b.loop.stopped {
		b.loop.stopped = true
		close(b.loop.stop)
	}
	b.loop.Unlock()
	b.loop.wg.Wait()
	b.mu.Lock()
	b.draining = true
	idle := b.idle
	b.idle = nil
	b.mu.Unlock()
	for _, s := range idle {
		s.Close()
	}
	b.life.Lock()
	defer b.life.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	clear(b.pin)
	b.root.Store(0)
	b.keys.Clear()
	b.mod.release()
	return nil
}

// enter takes the shared side of life; the caller must RUnlock it.
func (b *PKCS11) enter() error {
	b.life.RLock()
	if b.closed {
		b.life.RUnlock()
		return ErrClosed
	}
	return nil
}

// leave releases what enter took.
func (b *PKCS11) leave() { b.life.RUnlock() }

// newSession opens a session, or fails fast during an outage.
func (b *PKCS11) newSession() (*p11Session, error) {
	if err := b.enter(); err != nil {
		return nil, err
	}
	defer b.life.RUnlock()
	if err := b.ready(); err != nil {
		return nil, err
	}
	s := &p11Session{b: b}
	if err := s.reopen(); err != nil {
		return nil, b.fail("open session", err)
	}
	return s, nil
}

// withSession runs fn on one of the backend's own sessions, waiting for
// one to be free (bounded by cfg.Sessions) no longer than ctx allows.
func (b *PKCS11) withSession(ctx context.Context, fn func(*p11Session) error) error {
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-b.sem }()
	b.mu.Lock()
	if b.draining {
		b.mu.Unlock()
		return ErrClosed
	}
	var s *p11Session
	if n := len(b.idle); n > 0 {
		s = b.idle[n-1]
		b.idle = b.idle[:n-1]
	}
	b.mu.Unlock()
	if s == nil {
		var err error
		if s, err = b.newSession(); err != nil {
			return err
		}
	}
	defer b.putIdle(s)
	return fn(s)
}

func (b *PKCS11) putIdle(s *p11Session) {
	b.mu.Lock()
	if !b.draining {
		b.idle = append(b.idle, s)
		s = nil
	}
	b.mu.Unlock()
	if s != nil {
		s.Close()
	}
}

func (b *PKCS11) checkKeyStoreLabel(label string) error {
	if err := checkLabel(label); err != nil {
		return err
	}
	if label == b.cfg.KeyLabel {
		// An encryption oracle under the root key would forge wrapped blobs.
		return fmt.Errorf("%w: the root key cannot serve as a custom-key-store key", ErrKeyNotFound)
	}
	return nil
}

// ulong decodes a CK_ULONG attribute, which tokens return in host order.
func ulong(v []byte) (uint64, error) {
	switch len(v) {
	case 4:
		return uint64(binary.NativeEndian.Uint32(v)), nil
	case 8:
		return binary.NativeEndian.Uint64(v), nil
	}
	return 0, fmt.Errorf("hsm: pkcs11: CK_ULONG of %d bytes", len(v))
}
