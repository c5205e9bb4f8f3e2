package hsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gated wraps a real backend: every session call counts itself, reports
// that it started, and waits until the gate opens. Tests use it to hold a
// worker busy at a known point instead of relying on timing.
type gated struct {
	SessionBackend
	gate    chan struct{} // closed: open
	once    sync.Once
	started chan struct{}
	calls   atomic.Int64
}

func newGated(t *testing.T) *gated {
	s, err := OpenSoftware(SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	g := &gated{SessionBackend: s, gate: make(chan struct{}), started: make(chan struct{}, 1024)}
	t.Cleanup(g.open)
	return g
}

func (g *gated) open() { g.once.Do(func() { close(g.gate) }) }

func (g *gated) OpenSession(ctx context.Context) (Session, error) {
	s, err := g.SessionBackend.OpenSession(ctx)
	if err != nil {
		return nil, err
	}
	return gatedSession{s, g}, nil
}

type gatedSession struct {
	Session
	g *gated
}

func (s gatedSession) enter(ctx context.Context) error {
	s.g.calls.Add(1)
	s.g.started <- struct{}{}
	select {
	case <-s.g.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s gatedSession) Wrap(ctx context.Context, pt, aad []byte) ([]byte, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	return s.Session.Wrap(ctx, pt, aad)
}

func (s gatedSession) Unwrap(ctx context.Context, w, aad []byte) ([]byte, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	return s.Session.Unwrap(ctx, w, aad)
}

func newTestPool(t *testing.T, b SessionBackend, cfg PoolConfig) *Pool {
	t.Helper()
	p, err := NewPool(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// waitFor polls a condition on the pool's state; the test's own deadline
// bounds it, so nothing here depends on how fast the machine is.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 1e6 {
			t.Fatalf("never: %s", what)
		}
		runtime.Gosched()
		if i > 1000 {
			time.Sleep(time.Millisecond)
		}
	}
}

// wrapN wraps n distinct materials, each under its own aad.
func wrapN(t *testing.T, b Backend, n int) (pts, blobs, aads [][]byte) {
	t.Helper()
	for i := range n {
		pt := []byte(fmt.Sprintf("material %02d................", i))
		aad := []byte(fmt.Sprintf("key/%d#0", i))
		w, err := b.Wrap(context.Background(), pt, aad)
		if err != nil {
			t.Fatal(err)
		}
		pts, blobs, aads = append(pts, pt), append(blobs, w), append(aads, aad)
	}
	return pts, blobs, aads
}

type result struct {
	out []byte
	err error
}

func unwrapAsync(p *Pool, ctx context.Context, w, aad []byte) <-chan result {
	ch := make(chan result, 1)
	go func() {
		out, err := p.Unwrap(ctx, w, aad)
		ch <- result{out, err}
	}()
	return ch
}

func TestPoolBatches(t *testing.T) {
	ctx := context.Background()
	g := newGated(t)
	pts, blobs, aads := wrapN(t, g, 7)
	p := newTestPool(t, g, PoolConfig{Workers: 1, Batch: 8})

	first := unwrapAsync(p, ctx, blobs[0], aads[0])
	<-g.started // the only worker is now busy with the first request
	var rest []<-chan result
	for i := 1; i < 7; i++ {
		rest = append(rest, unwrapAsync(p, ctx, blobs[i], aads[i]))
	}
	waitFor(t, "six requests queued", func() bool { return p.Stats().Queued == 6 })
	g.open()
	for i, ch := range append([]<-chan result{first}, rest...) {
		if r := <-ch; r.err != nil || !bytes.Equal(r.out, pts[i]) {
			t.Fatalf("request %d: %q %v", i, r.out, r.err)
		}
	}
	st := p.Stats()
	if st.MaxBatch != 6 || st.Batches != 2 || st.Calls != 7 {
		t.Fatalf("stats %+v: want the six queued requests taken as one batch", st)
	}
	var m strings.Builder
	p.WriteMetrics(&m)
	for _, want := range []string{
		`coffer_hsm_batch_size_bucket{backend="software",le="8"} 2`,
		`coffer_hsm_batch_size_bucket{backend="software",le="4"} 1`,
		`coffer_hsm_requests_total{backend="software",op="unwrap"} 7`,
		`coffer_hsm_call_duration_seconds_count{backend="software",op="unwrap"} 7`,
		`coffer_hsm_queue_depth{backend="software"} 0`,
	} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, m.String())
		}
	}
}

func TestPoolCoalesces(t *testing.T) {
	ctx := context.Background()
	g := newGated(t)
	pts, blobs, aads := wrapN(t, g, 2)
	p := newTestPool(t, g, PoolConfig{Workers: 1})

	blocker := unwrapAsync(p, ctx, blobs[1], aads[1])
	<-g.started
	const n = 16
	var same []<-chan result
	for range n {
		same = append(same, unwrapAsync(p, ctx, blobs[0], aads[0]))
	}
	// Same blob, other aad: a different question, never coalesced.
	other := unwrapAsync(p, ctx, blobs[0], aads[1])
	waitFor(t, "identical requests joined", func() bool { st := p.Stats(); return st.Coalesced == n-1 && st.Queued == 2 })
	g.open()
	if r := <-blocker; r.err != nil {
		t.Fatal(r.err)
	}
	if r := <-other; !errors.Is(r.err, ErrUnwrap) {
		t.Fatalf("other aad: %v, want ErrUnwrap", r.err)
	}
	var outs [][]byte
	for _, ch := range same {
		r := <-ch
		if r.err != nil || !bytes.Equal(r.out, pts[0]) {
			t.Fatalf("coalesced request: %q %v", r.out, r.err)
		}
		outs = append(outs, r.out)
	}
	if c := g.calls.Load(); c != 3 {
		t.Fatalf("%d backend calls, want 3 (blocker, the %d identical requests as one, other aad)", c, n)
	}
	clear(outs[0]) // each caller zeroes its own copy without touching the others'
	for i, o := range outs[1:] {
		if !bytes.Equal(o, pts[0]) {
			t.Fatalf("copy %d changed when copy 0 was zeroed", i+1)
		}
	}
}

func TestPoolDeadline(t *testing.T) {
	g := newGated(t)
	_, blobs, aads := wrapN(t, g, 2)
	p := newTestPool(t, g, PoolConfig{Workers: 1})

	// The worker holds the first request in a backend call that does not
	// return; its caller still gets its answer at its deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	inCall := unwrapAsync(p, ctx, blobs[0], aads[0])
	<-g.started
	// The second waits in the queue and gives up there.
	queued := unwrapAsync(p, ctx, blobs[1], aads[1])
	for name, ch := range map[string]<-chan result{"in call": inCall, "queued": queued} {
		if r := <-ch; !errors.Is(r.err, context.DeadlineExceeded) || r.out != nil {
			t.Fatalf("%s: %q %v, want context.DeadlineExceeded", name, r.out, r.err)
		}
	}
	// With no deadline of its own, a request gets the pool's Timeout.
	p2 := newTestPool(t, g, PoolConfig{Workers: 1, Timeout: 10 * time.Millisecond})
	if _, err := p2.Unwrap(context.Background(), blobs[1], aads[1]); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no caller deadline: %v, want context.DeadlineExceeded", err)
	}
	g.open()
	p.Close()
	// The abandoned queued request never reached the backend.
	if c := g.calls.Load(); c != 2 {
		t.Fatalf("%d backend calls, want 2 (one per pool's blocked request)", c)
	}
}

func TestPoolQueueFull(t *testing.T) {
	ctx := context.Background()
	g := newGated(t)
	pts, blobs, aads := wrapN(t, g, 4)
	p := newTestPool(t, g, PoolConfig{Workers: 1, Queue: 2})

	chs := []<-chan result{unwrapAsync(p, ctx, blobs[0], aads[0])}
	<-g.started
	chs = append(chs, unwrapAsync(p, ctx, blobs[1], aads[1]), unwrapAsync(p, ctx, blobs[2], aads[2]))
	waitFor(t, "queue full", func() bool { return p.Stats().Queued == 2 })
	// No deadline here: a pool that blocked instead of refusing would hang the test.
	if _, err := p.Unwrap(ctx, blobs[3], aads[3]); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("full queue: %v, want ErrQueueFull", err)
	}
	if _, err := p.Wrap(ctx, pts[3], aads[3]); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("full queue, wrap: %v, want ErrQueueFull", err)
	}
	g.open()
	for i, ch := range chs {
		if r := <-ch; r.err != nil || !bytes.Equal(r.out, pts[i]) {
			t.Fatalf("request %d: %v", i, r.err)
		}
	}
	if st := p.Stats(); st.QueueFull != 2 {
		t.Fatalf("stats %+v, want 2 refused", st)
	}
	var m strings.Builder
	p.WriteMetrics(&m)
	if want := `coffer_hsm_errors_total{backend="software",kind="queue_full"} 2`; !strings.Contains(m.String(), want) {
		t.Fatalf("metrics lack %s", want)
	}
}

func TestPoolCloseAnswersQueued(t *testing.T) {
	ctx := context.Background()
	g := newGated(t)
	_, blobs, aads := wrapN(t, g, 3)
	p, err := NewPool(g, PoolConfig{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	inCall := unwrapAsync(p, ctx, blobs[0], aads[0])
	<-g.started
	queued := unwrapAsync(p, ctx, blobs[1], aads[1])
	waitFor(t, "queued", func() bool { return p.Stats().Queued == 1 })
	closed := make(chan error)
	go func() { closed <- p.Close() }()
	g.open() // let the worker finish the call it is in, so Close can return
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if r := <-inCall; r.err != nil {
		t.Fatalf("request in the backend when Close began: %v", r.err)
	}
	if r := <-queued; r.err != nil && !errors.Is(r.err, ErrClosed) {
		t.Fatalf("queued request: %v, want success or ErrClosed", r.err)
	}
	if _, err := p.Unwrap(ctx, blobs[2], aads[2]); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestPoolConfig(t *testing.T) {
	s, err := OpenSoftware(SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, cfg := range []PoolConfig{{Workers: -1}, {Batch: -1}, {Queue: -1}, {Timeout: -time.Second}} {
		if _, err := NewPool(s, cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if _, err := NewPool(nil, PoolConfig{}); err == nil {
		t.Error("nil backend accepted")
	}
	p, err := NewPool(s, PoolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if p.cfg.Workers != defaultWorkers || p.cfg.Batch != defaultBatch || cap(p.queue) != defaultQueue || p.cfg.Timeout != defaultTimeout {
		t.Fatalf("defaults: %+v", p.cfg)
	}
	// The software root has no custom key store.
	if _, err := p.GenerateRandom(context.Background(), 16); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("GenerateRandom on software: %v", err)
	}
	if _, err := p.GenerateKey(context.Background(), "k"); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("GenerateKey on software: %v", err)
	}
}

func TestRewrap(t *testing.T) {
	ctx := context.Background()
	from, err := OpenSoftware(SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	to := openPKCS11(t, "rewrap-target")
	aad := []byte("key/1#0")
	w, err := from.Wrap(ctx, []byte("material"), aad)
	if err != nil {
		t.Fatal(err)
	}
	moved, err := Rewrap(ctx, from, to, w, aad)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := to.Unwrap(ctx, moved, aad); err != nil || string(got) != "material" {
		t.Fatalf("unwrap moved blob: %q %v", got, err)
	}
	if _, err := Rewrap(ctx, from, to, w, []byte("other")); !errors.Is(err, ErrUnwrap) {
		t.Fatalf("rewrap under the wrong aad: %v", err)
	}
}
