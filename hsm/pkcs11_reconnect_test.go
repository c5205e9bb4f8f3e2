//go:build cgo

package hsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The outage tests put a pool under load (a few goroutines unwrapping in
// a loop with short deadlines), take the token away, and check what the
// issue asks: while it is away every error is an ErrUnavailable (never an
// internal one, never later than the deadline); once it is back, calls
// succeed again within a bounded time without a restart; the reconnection
// is counted and Healthy follows.

const (
	callDeadline = 200 * time.Millisecond
	// lateness is how far past its deadline a call may return on a loaded
	// two-core machine and still count as not hanging.
	lateness = 300 * time.Millisecond
)

// load unwraps blobs through p from a few goroutines until stop is called,
// which returns how many calls succeeded and failed.
type load struct {
	t        *testing.T
	ok, fail atomic.Int64
	lastOK   atomic.Int64 // unix ns
	bad      atomic.Pointer[string]
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startLoad(t *testing.T, p *Pool, pts, blobs, aads [][]byte) *load {
	l := &load{t: t, stop: make(chan struct{})}
	for g := range 4 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := g; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				k := i % len(blobs)
				ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
				start := time.Now()
				got, err := p.Unwrap(ctx, blobs[k], aads[k])
				took := time.Since(start)
				cancel()
				switch {
				case took > callDeadline+lateness:
					l.report("call took %v, past its %v deadline (err %v)", took, callDeadline, err)
				case err == nil && !bytes.Equal(got, pts[k]):
					l.report("blob %d: wrong plaintext", k)
				case err == nil:
					l.ok.Add(1)
					l.lastOK.Store(time.Now().UnixNano())
				case errors.Is(err, ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
					// A deadline error is allowed only in time (checked
					// above): a loaded machine may leave a call queued.
					l.fail.Add(1)
				default:
					l.report("error outside the ErrUnavailable family: %v", err)
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	return l
}

func (l *load) report(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.bad.CompareAndSwap(nil, &msg)
}

func (l *load) end() {
	close(l.stop)
	l.wg.Wait()
	if m := l.bad.Load(); m != nil {
		l.t.Fatal(*m)
	}
}

// waitUntil polls cond every 10 ms for at most d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// captureLog sends slog's default logger to a buffer for the test.
func captureLog(t *testing.T) func() string {
	var mu sync.Mutex
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return buf.String()
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// TestPKCS11SessionsKilledUnderLoad closes every session of the token from
// outside (C_CloseAllSessions on the module handle, as a token reset
// would), over and over for half a second while a pool is under load: calls
// fail only with ErrUnavailable errors, in time, and the pool recovers by
// itself when the killing stops.
func TestPKCS11SessionsKilledUnderLoad(t *testing.T) {
	b := openPKCS11(t, "killed-under-load")
	p := newTestPool(t, b, PoolConfig{Workers: 3, Batch: 4})
	pts, blobs, aads := wrapN(t, p, 16)
	before := b.Reconnects()
	l := startLoad(t, p, pts, blobs, aads)
	defer func() {
		if l != nil {
			l.end()
		}
	}()
	waitUntil(t, 5*time.Second, "first unwraps", func() bool { return l.ok.Load() > 20 })

	kill := time.Now()
	for time.Since(kill) < 500*time.Millisecond {
		b.mod.ctx.CloseAllSessions(uint(b.slot.Load()))
		time.Sleep(2 * time.Millisecond)
	}
	back := time.Now().UnixNano()
	took := waitUntil(t, 8*time.Second, "unwraps after the sessions came back", func() bool { return l.lastOK.Load() > back+int64(50*time.Millisecond) })
	waitUntil(t, 8*time.Second, "Healthy after the sessions came back", func() bool { return p.Healthy() == nil })
	l.end()
	l = nil
	if n := b.Reconnects(); n <= before {
		t.Fatalf("reconnections %d, want more than %d", n, before)
	}
	t.Logf("reconnections %d, serving again %v after the last kill", b.Reconnects()-before, took)
}

// TestPKCS11TokenRemovedAndReturned takes the token away for real as far
// as SoftHSM2 can: its directory is moved out of the token directory and
// back. SoftHSM2 sees the token again only after C_Initialize, which the
// reconnection loop does once the outage has lasted reinitAfter.
func TestPKCS11TokenRemovedAndReturned(t *testing.T) {
	b := openPKCS11(t, "removed-returned")
	p := newTestPool(t, b, PoolConfig{Workers: 3, Batch: 4})
	pts, blobs, aads := wrapN(t, p, 16)
	logs := captureLog(t)
	before := b.Reconnects()
	if err := p.Healthy(); err != nil {
		t.Fatalf("Healthy before the removal: %v", err)
	}
	tokenDir := tokenDirOf(t)
	away := tokenDir + ".away"
	if err := os.Rename(tokenDir, away); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := os.Rename(away, tokenDir); err != nil {
				t.Fatalf("put the token back: %v", err)
			}
		}
	}
	defer restore()

	// An idle backend notices through Healthy's probe.
	b.lastProbe.Store(0)
	if err := p.Healthy(); !errors.Is(err, ErrReconnecting) {
		t.Fatalf("Healthy with the token away: %v, want ErrReconnecting", err)
	}
	var m bytes.Buffer
	p.WriteMetrics(&m)
	if !bytes.Contains(m.Bytes(), []byte(`coffer_hsm_up{backend="pkcs11"} 0`)) {
		t.Fatalf("metrics do not say the HSM is down:\n%s", m.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
	_, err := p.Unwrap(ctx, blobs[0], aads[0])
	cancel()
	if !errors.Is(err, ErrReconnecting) {
		t.Fatalf("Unwrap with the token away: %v, want ErrReconnecting", err)
	}

	l := startLoad(t, p, pts, blobs, aads)
	defer func() {
		if l != nil {
			l.end()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	if n := l.ok.Load(); n != 0 {
		t.Fatalf("%d unwraps succeeded with the token away", n)
	}
	if err := p.Healthy(); !errors.Is(err, ErrReconnecting) {
		t.Fatalf("Healthy during the outage: %v", err)
	}
	restore()
	back := time.Now().UnixNano()
	defer func() {
		if t.Failed() {
			t.Logf("log:\n%s", logs())
		}
	}()
	took := waitUntil(t, 8*time.Second, "unwraps after the token came back", func() bool { return l.lastOK.Load() > back })
	if err := p.Healthy(); err != nil {
		t.Fatalf("Healthy after the token came back: %v", err)
	}
	l.end()
	l = nil
	if n := b.Reconnects(); n <= before {
		t.Fatalf("reconnections %d, want more than %d", n, before)
	}
	out := logs()
	if n := strings.Count(out, "hsm: token unavailable"); n != 1 {
		t.Fatalf("%d 'token unavailable' lines for one outage, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "ckr=") || !strings.Contains(out, "hsm: token back") {
		t.Fatalf("log lacks the CKR condition or the recovery:\n%s", out)
	}
	t.Logf("serving again %v after the token came back; log:\n%s", took, out)
}

// tokenDirOf finds the test token's directory under SoftHSM2's token
// directory (one per token).
func tokenDirOf(t *testing.T) string {
	t.Helper()
	root := filepath.Join(filepath.Dir(os.Getenv("SOFTHSM2_CONF")), "tokens")
	ents, err := os.ReadDir(root)
	if err != nil || len(ents) != 1 {
		t.Fatalf("token directory %s: %v (%d entries, want 1)", root, err, len(ents))
	}
	return filepath.Join(root, ents[0].Name())
}
