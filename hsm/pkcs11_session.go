//go:build cgo

package hsm

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/miekg/pkcs11"
)

// p11Session is one PKCS#11 session, logged in. It is used by one
// goroutine at a time (a pool worker, or a caller holding it through
// PKCS11.withSession) and re-establishes itself when the token drops it.
type p11Session struct {
	b     *PKCS11
	sh    pkcs11.SessionHandle
	slot  uint
	open  bool   // false after a failure until reopen succeeds
	gen   uint64 // the backend's session generation when it was opened
	epoch uint64 // the module's initialization when it was opened
}

// Wrap implements Session.
func (s *p11Session) Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	if err := checkPlaintext(plaintext); err != nil {
		return nil, err
	}
	if err := s.b.enter(); err != nil {
		return nil, err
	}
	defer s.b.life.RUnlock()
	return s.seal(ctx, "wrap", wrapVersionPKCS11, s.rootKey, plaintext, aad)
}

// Unwrap implements Session.
func (s *p11Session) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	if len(wrapped) < blobOverhead || wrapped[0] != wrapVersionPKCS11 {
		return nil, ErrUnwrap
	}
	if err := s.b.enter(); err != nil {
		return nil, err
	}
	defer s.b.life.RUnlock()
	return s.unseal(ctx, "unwrap", s.rootKey, wrapped, aad)
}

// Encrypt implements KeyStoreSession.
func (s *p11Session) Encrypt(ctx context.Context, keyID string, plaintext, aad []byte) ([]byte, error) {
	if err := s.b.checkKeyStoreLabel(keyID); err != nil {
		return nil, err
	}
	if err := checkPlaintext(plaintext); err != nil {
		return nil, err
	}
	if err := s.b.enter(); err != nil {
		return nil, err
	}
	defer s.b.life.RUnlock()
	key := func() (pkcs11.ObjectHandle, error) { return s.keyStoreKey(keyID) }
	return s.seal(ctx, "encrypt", blobVersionKeyStore, key, plaintext, aad)
}

// Decrypt implements KeyStoreSession.
func (s *p11Session) Decrypt(ctx context.Context, keyID string, blob, aad []byte) ([]byte, error) {
	if err := s.b.checkKeyStoreLabel(keyID); err != nil {
		return nil, err
	}
	if len(blob) < blobOverhead || blob[0] != blobVersionKeyStore {
		return nil, ErrUnwrap
	}
	if err := s.b.enter(); err != nil {
		return nil, err
	}
	defer s.b.life.RUnlock()
	key := func() (pkcs11.ObjectHandle, error) { return s.keyStoreKey(keyID) }
	return s.unseal(ctx, "decrypt", key, blob, aad)
}

// GenerateRandom implements KeyStoreSession.
func (s *p11Session) GenerateRandom(ctx context.Context, n int) (out []byte, err error) {
	if err := checkRandomLen(n); err != nil {
		return nil, err
	}
	if err := s.b.enter(); err != nil {
		return nil, err
	}
	defer s.b.life.RUnlock()
	err = s.do(ctx, "generate random", false, func() (err error) {
		out, err = s.b.mod.ctx.GenerateRandom(s.sh, n)
		return err
	})
	if err == nil && len(out) != n {
		clear(out)
		return nil, fmt.Errorf("hsm: pkcs11: token returned %d random bytes, want %d", len(out), n)
	}
	return out, err
}

// Close implements Session.
func (s *p11Session) Close() error {
	s.b.life.RLock()
	defer s.b.life.RUnlock()
	if !s.b.closed {
		s.forget()
	}
	s.open = false
	return nil
}

// seal encrypts under the key returned by key: version | iv | ct | tag.
func (s *p11Session) seal(ctx context.Context, what string, version byte, key func() (pkcs11.ObjectHandle, error), plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+gcmNonceSize, len(plaintext)+blobOverhead)
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	err := s.do(ctx, what, false, func() error {
		h, err := key()
		if err != nil {
			return err
		}
		ct, err := s.gcm(true, h, out[1:], aad, plaintext)
		if err != nil {
			return err
		}
		if len(ct) != len(plaintext)+gcmTagSize {
			return fmt.Errorf("hsm: pkcs11: %s: token returned %d bytes for %d", what, len(ct), len(plaintext))
		}
		out = append(out, ct...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// unseal decrypts a blob that seal wrote; its version byte is checked.
func (s *p11Session) unseal(ctx context.Context, what string, key func() (pkcs11.ObjectHandle, error), blob, aad []byte) ([]byte, error) {
	var pt []byte
	err := s.do(ctx, what, true, func() error {
		h, err := key()
		if err != nil {
			return err
		}
		pt, err = s.gcm(false, h, blob[1:1+gcmNonceSize], aad, blob[1+gcmNonceSize:])
		return err
	})
	if err != nil {
		clear(pt)
		return nil, err
	}
	if len(pt) != len(blob)-blobOverhead {
		clear(pt)
		return nil, ErrUnwrap
	}
	return pt, nil
}

// gcm runs one CKM_AES_GCM operation with a 128-bit tag.
//
// Decryption calls the module through its function list into C memory
// that is zeroed before it is freed (decryptOne): miekg/pkcs11 v1.1.2
// receives the output in a C buffer it frees without zeroing, and on a
// failed C_Decrypt does not free at all. Its path remains only for a module
// whose function list cannot be had, and for encryption, whose output is
// ciphertext.
func (s *p11Session) gcm(encrypt bool, key pkcs11.ObjectHandle, iv, aad, in []byte) ([]byte, error) {
	if !encrypt {
		if pt, ok, err := s.decryptOne(key, iv, aad, in); ok {
			return pt, err
		}
	}
	params := pkcs11.NewGCMParams(iv, aad, gcmTagSize*8)
	defer params.Free()
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}
	p11 := s.b.mod.ctx
	if encrypt {
		if err := p11.EncryptInit(s.sh, mech, key); err != nil {
			return nil, err
		}
		return p11.Encrypt(s.sh, in)
	}
	if err := p11.DecryptInit(s.sh, mech, key); err != nil {
		return nil, err
	}
	return p11.Decrypt(s.sh, in)
}

// do runs fn, which calls the token through s.sh, and applies the
// reconnection policy (pkcs11_reconnect.go). During an outage it fails
// fast with the outage's error. A session from before the last
// reconnection is reopened first. When the token reports the session lost
// (tokenGone), the session is reopened in line and fn runs once more; if
// that cannot be done, or the loss repeats, the backend is down. For
// decryption a CKR_GENERAL_ERROR on a session that is still healthy is a
// forged blob (SoftHSM2 reports a bad GCM tag so), and answers ErrUnwrap
// without any reconnection. The caller holds life.
func (s *p11Session) do(ctx context.Context, what string, decrypt bool, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := s.b
	if err := b.ready(); err != nil {
		return err
	}
	if s.open && (s.gen != b.gen.Load() || s.epoch != b.mod.epoch.Load()) {
		s.forget() // retired by a reconnection
	}
	if !s.open {
		if err := s.reopen(); err != nil {
			return b.fail(what, err)
		}
	}
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		code, ok := ckrCode(err)
		switch {
		case !ok:
			return err // ours: ErrKeyNotFound, ErrKeyExists, a length check
		case decrypt && forgedData(code):
			return ErrUnwrap
		case decrypt && code == pkcs11.CKR_GENERAL_ERROR && s.healthy():
			return ErrUnwrap
		case !tokenGone(code):
			return fmt.Errorf("hsm: pkcs11: %s: %w", what, err)
		}
		s.drop()
		if attempt == 1 {
			return b.fail(what, err)
		}
		if o := b.down.Load(); o != nil {
			return o.err // another call found the token gone: leave it to the loop
		}
		if err := s.reopen(); err != nil {
			return b.fail(what, err)
		}
		b.reconnects.Add(1)
	}
}

// healthy reports whether the session is still open and logged in.
func (s *p11Session) healthy() bool {
	info, err := s.b.mod.ctx.GetSessionInfo(s.sh)
	return err == nil && (info.State == pkcs11.CKS_RW_USER_FUNCTIONS || info.State == pkcs11.CKS_RO_USER_FUNCTIONS)
}

// drop abandons the session after a failure and forgets object handles,
// which a re-inserted token may have renumbered.
func (s *p11Session) drop() {
	s.forget()
	s.b.root.Store(0)
	s.b.keys.Clear()
}

// forget closes the session if its handle still means it: after the
// module was re-initialized the same number may name another session.
func (s *p11Session) forget() {
	if s.open && s.epoch == s.b.mod.epoch.Load() {
		s.b.mod.ctx.CloseSession(s.sh) // usually already gone
	}
	s.open = false
}

// reopen finds the token (its slot may have changed), opens a session and
// logs in. Errors are the module's or ErrLogin; the caller decides what
// they mean for the backend (PKCS11.fail). The caller holds life.
func (s *p11Session) reopen() error {
	b := s.b
	p11 := b.mod.ctx
	gen, epoch := b.gen.Load(), b.mod.epoch.Load()
	slot, err := b.findSlot()
	if err != nil {
		return fmt.Errorf("find token: %w", err)
	}
	sh, err := p11.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	// Login is per token, not per session: a second session finds the
	// token logged in already.
	if err := p11.Login(sh, pkcs11.CKU_USER, string(b.pin)); err != nil && !hasCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		p11.CloseSession(sh)
		if hasCode(err, pkcs11.CKR_PIN_INCORRECT) || hasCode(err, pkcs11.CKR_PIN_LOCKED) || hasCode(err, pkcs11.CKR_PIN_EXPIRED) {
			return fmt.Errorf("%w: %v", ErrLogin, err)
		}
		return fmt.Errorf("log in: %w", err)
	}
	b.slot.Store(uint64(slot))
	s.sh, s.slot, s.open, s.gen, s.epoch = sh, slot, true, gen, epoch
	return nil
}

// findSlot resolves the configured token to a slot ID.
func (b *PKCS11) findSlot() (uint, error) {
	if b.cfg.Slot != nil {
		return *b.cfg.Slot, nil
	}
	p11 := b.mod.ctx
	slots, err := p11.GetSlotList(true)
	if err != nil {
		return 0, err
	}
	var found []uint
	for _, slot := range slots {
		if info, err := p11.GetTokenInfo(slot); err == nil && info.Label == b.cfg.TokenLabel {
			found = append(found, slot)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("no token labelled %q: %w", b.cfg.TokenLabel, pkcs11.Error(pkcs11.CKR_TOKEN_NOT_PRESENT))
	case 1:
		return found[0], nil
	}
	return 0, fmt.Errorf("%d tokens labelled %q; select one by slot", len(found), b.cfg.TokenLabel)
}

func (s *p11Session) rootKey() (pkcs11.ObjectHandle, error) {
	if h := s.b.root.Load(); h != 0 {
		return pkcs11.ObjectHandle(h), nil
	}
	h, err := s.findKey(s.b.cfg.KeyLabel)
	if err == ErrKeyNotFound {
		return 0, fmt.Errorf("%w: no root key labelled %q on the token; run `coffer admin hsm init`", ErrKeyNotFound, s.b.cfg.KeyLabel)
	}
	if err != nil {
		return 0, err
	}
	s.b.root.Store(uint64(h))
	return h, nil
}

func (s *p11Session) keyStoreKey(label string) (pkcs11.ObjectHandle, error) {
	if h, ok := s.b.keys.Load(label); ok {
		return h.(pkcs11.ObjectHandle), nil
	}
	h, err := s.findKey(label)
	if err == ErrKeyNotFound {
		return 0, fmt.Errorf("%w: label %q", ErrKeyNotFound, label)
	}
	if err != nil {
		return 0, err
	}
	s.b.keys.Store(label, h)
	return h, nil
}

// findKey finds the one AES secret key labelled label; ErrKeyNotFound
// itself (unwrapped) when there is none.
func (s *p11Session) findKey(label string) (pkcs11.ObjectHandle, error) {
	p11 := s.b.mod.ctx
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
	if err := p11.FindObjectsInit(s.sh, tmpl); err != nil {
		return 0, err
	}
	objs, _, err := p11.FindObjects(s.sh, 2)
	if ferr := p11.FindObjectsFinal(s.sh); err == nil {
		err = ferr
	}
	switch {
	case err != nil:
		return 0, err
	case len(objs) == 0 && !s.healthy():
		// A session that lost its login sees no private objects: that is
		// a lost session, not a missing key.
		return 0, pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN)
	case len(objs) == 0:
		return 0, ErrKeyNotFound
	case len(objs) > 1:
		return 0, fmt.Errorf("hsm: pkcs11: several keys labelled %q on the token", label)
	}
	return objs[0], nil
}

// generateKey creates a token-resident AES-256 key that can encrypt and
// decrypt and can never be read out or wrapped.
func (s *p11Session) generateKey(label string) (pkcs11.ObjectHandle, error) {
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, rootKeySize),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(label)),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
	}
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}
	return s.b.mod.ctx.GenerateKey(s.sh, mech, tmpl)
}
