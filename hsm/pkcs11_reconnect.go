//go:build cgo

package hsm

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/miekg/pkcs11"
)

// How the PKCS#11 root comes back by itself.
//
// A call whose session fails with a return value that means the session,
// the login, the token or the module is gone (tokenGone) first reopens its
// own session once, in line: a session closed under us with the token
// still present costs the caller nothing. When that fails too, the backend
// is down: it records one outage, logs its condition once, and from then
// on every call answers ErrReconnecting at once, without touching the
// module, until one reconnection loop (with jittered exponential backoff,
// minBackoff to maxBackoff) has found the slot by token label again, opened
// a session, logged in with the PIN the backend was opened with and found
// the root key by label. Success bumps the session generation: every
// session opened before it (the backend's own and each pool worker's) is
// retired and reopened before its next call, which replaces the pool's
// sessions without the pool knowing.
//
// Attempts are serialized by PKCS11.attempt and spaced by the backoff. A
// caller that finds the next attempt due makes it itself if no attempt is
// running (never waiting for one) and it needs no re-initialization, so a
// request arriving after the backoff is served without waiting for the
// loop's timer.
//
// SoftHSM2 (and some network HSM clients) only see a token that came back
// after C_Finalize and C_Initialize. So once an outage has lasted
// reinitAfter, the loop re-initializes the module before it tries. That
// ends every session of every backend in the process that uses the module
// (sessions remember the module's epoch and are forgotten, not closed, when
// it changes), which is why it waits: a session lost with the token still
// there never needs it.
const (
	minBackoff    = 100 * time.Millisecond
	maxBackoff    = 5 * time.Second
	reinitAfter   = time.Second
	probeInterval = time.Second
)

// An outage is one period during which the token cannot be reached. It is
// created once, by the call that found the token gone, and replaced only
// by nil (the token is back) or by a login outage (the token refused the
// PIN on reconnection: retrying could lock the PIN, so the backend stays
// down until it is restarted with the right one).
type outage struct {
	since time.Time
	err   error // what every call answers during the outage
	login bool

	// guarded by PKCS11.attempt
	cond   string        // last condition logged
	delay  time.Duration // current backoff
	reinit time.Time     // last re-initialization of the module
}

// tokenGone is the one table of return values after which the session, its
// login, the object handles it used, the token or the module cannot be
// trusted: the remedy is a new session (and perhaps a re-initialized
// module), a new login and a fresh lookup of the keys. CKR_GENERAL_ERROR
// and CKR_FUNCTION_FAILED are here because tokens use them for internal
// failures (SoftHSM2 answers CKR_GENERAL_ERROR for a token whose directory
// vanished); a decrypt that returns CKR_GENERAL_ERROR on a healthy session
// is a forged ciphertext instead (see p11Session.do).
func tokenGone(code uint) bool {
	switch code {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_SESSION_COUNT,
		pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_DEVICE_MEMORY,
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED, pkcs11.CKR_SLOT_ID_INVALID,
		pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_FUNCTION_FAILED,
		pkcs11.CKR_USER_NOT_LOGGED_IN, pkcs11.CKR_OPERATION_ACTIVE,
		pkcs11.CKR_KEY_HANDLE_INVALID, pkcs11.CKR_OBJECT_HANDLE_INVALID,
		pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED:
		return true
	}
	return false
}

// condition names what is wrong for the log: the CKR_ name when the
// module said it, else our own words ("no token labelled …").
func condition(err error) string {
	if _, ok := ckrCode(err); ok {
		var e pkcs11.Error
		errors.As(err, &e)
		s := e.Error() // "pkcs11: 0x5: CKR_GENERAL_ERROR"
		return s[strings.LastIndex(s, " ")+1:]
	}
	if errors.Is(err, ErrKeyNotFound) {
		return "root key missing"
	}
	if errors.Is(err, ErrLogin) {
		return "PIN refused"
	}
	return err.Error()
}

// Healthy implements HealthChecker: nil while the token can be reached;
// during an outage the error every call gets (ErrReconnecting, or ErrLogin
// when the token refused the PIN on reconnection). At most once per
// probeInterval it asks the token for its info, so an idle server notices
// a removed token too.
func (b *PKCS11) Healthy() error {
	if o := b.down.Load(); o != nil {
		return o.err
	}
	now := time.Now().UnixNano()
	last := b.lastProbe.Load()
	if now-last < int64(probeInterval) || !b.lastProbe.CompareAndSwap(last, now) {
		return nil
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if b.down.Load() != nil {
		return b.down.Load().err
	}
	info, err := b.mod.ctx.GetTokenInfo(uint(b.slot.Load()))
	switch {
	case err != nil:
		return b.markDown("probe", err)
	case b.cfg.TokenLabel != "" && info.Label != b.cfg.TokenLabel:
		return b.markDown("probe", fmt.Errorf("the slot now holds token %q", info.Label))
	}
	return nil
}

// Reconnects counts sessions re-established after the token dropped them:
// in line by a call, or by the reconnection loop after an outage.
func (b *PKCS11) Reconnects() uint64 { return b.reconnects.Load() }

// fail turns a failure to reach the token into the caller's error. Before
// the backend has started (OpenPKCS11) it is reported as is; after, it
// starts (or joins) an outage.
func (b *PKCS11) fail(what string, err error) error {
	if !b.started.Load() {
		if errors.Is(err, ErrLogin) {
			return err
		}
		return unavailable(what, err)
	}
	return b.markDown(what, err)
}

// markDown starts an outage unless one is running, and returns the error
// of the outage in force.
func (b *PKCS11) markDown(what string, cause error) error {
	login := errors.Is(cause, ErrLogin)
	o := &outage{since: time.Now(), login: login, cond: condition(cause), delay: minBackoff}
	if login {
		o.err = fmt.Errorf("%w (token %q, on reconnection)", cause, b.cfg.TokenLabel)
	} else {
		o.err = fmt.Errorf("%w: pkcs11: token %q: %s: %v", ErrReconnecting, b.cfg.TokenLabel, what, cause)
	}
	if !b.down.CompareAndSwap(nil, o) {
		if cur := b.down.Load(); cur != nil {
			return cur.err
		}
		return o.err // it came back meanwhile; this call still failed
	}
	if login {
		slog.Error("hsm: token refuses the PIN on reconnection; not retrying (restart with the right PIN)", "token", b.cfg.TokenLabel, "ckr", o.cond)
		return o.err
	}
	slog.Warn("hsm: token unavailable", "token", b.cfg.TokenLabel, "ckr", o.cond, "op", what)
	b.downUntil.Store(time.Now().Add(jitter(o.delay)).UnixNano())
	b.startLoop()
	return o.err
}

// jitter spreads d over [d/2, d) so that replicas do not retry in step.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// ready fails fast during an outage. A caller that finds the next attempt
// due makes it (the caller holds life shared, so without re-initializing
// the module), unless one is running.
func (b *PKCS11) ready() error {
	o := b.down.Load()
	if o == nil {
		return nil
	}
	if o.login || time.Now().UnixNano() < b.downUntil.Load() || !b.attempt.TryLock() {
		return o.err
	}
	defer b.attempt.Unlock()
	if b.down.Load() == o && !o.reinitDue() { // else it changed while we took the lock, or it is the loop's
		b.tryReconnect(o)
	}
	if o := b.down.Load(); o != nil {
		return o.err
	}
	return nil
}

// reinitDue reports whether the next attempt should re-initialize the
// module first, which only the loop can do: callers hold life shared. The
// caller holds attempt.
func (o *outage) reinitDue() bool {
	return time.Since(o.since) >= reinitAfter && time.Since(o.reinit) >= reinitAfter
}

func (b *PKCS11) startLoop() {
	b.loop.Lock()
	defer b.loop.Unlock()
	if b.loop.running || b.loop.stopped {
		return
	}
	b.loop.running = true
	b.loop.wg.Add(1)
	go b.reconnectLoop()
}

// reconnectLoop makes the outage's attempts at the backoff's pace until the
// token is back, the outage needs a person (login), or Close.
func (b *PKCS11) reconnectLoop() {
	defer b.loop.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		b.loop.Lock()
		o := b.down.Load()
		if o == nil || o.login {
			b.loop.running = false
			b.loop.Unlock()
			return
		}
		b.loop.Unlock()
		t.Reset(max(time.Until(time.Unix(0, b.downUntil.Load())), 0))
		select {
		case <-b.loop.stop:
			return
		case <-t.C:
		}
		b.attempt.Lock()
		if o := b.down.Load(); o != nil && !o.login && time.Now().UnixNano() >= b.downUntil.Load() {
			if o.reinitDue() {
				o.reinit = time.Now()
				if err := b.reinitModule(); err != nil && !errors.Is(err, ErrClosed) {
					b.noteCondition(o, err)
				}
			}
			if b.enter() == nil {
				b.tryReconnect(o)
				b.leave()
			}
		}
		b.attempt.Unlock()
	}
}

// tryReconnect makes one attempt to end outage o: find the token by label,
// open a session, log in, find the root key. On success the new session
// joins the backend's own, every older session is retired, and the outage
// ends; on failure the backoff grows. The caller holds attempt and life
// (shared).
func (b *PKCS11) tryReconnect(o *outage) {
	s, err := b.connect()
	if err != nil {
		if errors.Is(err, ErrLogin) {
			lo := &outage{since: o.since, login: true, cond: condition(err),
				err: fmt.Errorf("%w (token %q, on reconnection)", err, b.cfg.TokenLabel)}
			if b.down.CompareAndSwap(o, lo) {
				slog.Error("hsm: token refuses the PIN on reconnection; not retrying (restart with the right PIN)", "token", b.cfg.TokenLabel)
			}
			return
		}
		b.noteCondition(o, err)
		o.delay = min(2*o.delay, maxBackoff)
		b.downUntil.Store(time.Now().Add(jitter(o.delay)).UnixNano())
		return
	}
	s.gen = b.gen.Add(1)
	n := b.reconnects.Add(1)
	b.down.CompareAndSwap(o, nil)
	b.downUntil.Store(0)
	slog.Info("hsm: token back", "token", b.cfg.TokenLabel, "after", time.Since(o.since).Round(time.Millisecond), "reconnects", n)
	b.putIdle(s)
}

// noteCondition logs the outage's condition when it changes (not per
// attempt). The caller holds attempt.
func (b *PKCS11) noteCondition(o *outage, err error) {
	if c := condition(err); c != o.cond {
		o.cond = c
		slog.Warn("hsm: token still unavailable", "token", b.cfg.TokenLabel, "ckr", c, "for", time.Since(o.since).Round(time.Millisecond))
	}
}

// connect opens and logs in a session and finds the root key in it (unless
// the backend runs without one yet). The caller holds life shared.
func (b *PKCS11) connect() (*p11Session, error) {
	s := &p11Session{b: b}
	if err := s.reopen(); err != nil {
		return nil, err
	}
	b.keys.Clear()
	if b.cfg.RootKey == RootKeyDeferred && b.root.Load() == 0 {
		return s, nil
	}
	h, err := s.findKey(b.cfg.KeyLabel)
	if err != nil {
		s.forget()
		if err == ErrKeyNotFound {
			err = fmt.Errorf("%w: no root key labelled %q on the token", ErrKeyNotFound, b.cfg.KeyLabel)
		}
		return nil, err
	}
	b.root.Store(uint64(h))
	return s, nil
}

// reinitModule finalizes and initializes the module again, with every
// call of this backend held off.
func (b *PKCS11) reinitModule() error {
	b.life.Lock()
	defer b.life.Unlock()
	if b.closed {
		return ErrClosed
	}
	return b.mod.reinit()
}
