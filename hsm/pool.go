package hsm

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Pool puts a bounded set of backend sessions between many callers and
// the HSM. Requests wait in a bounded queue; each of W workers owns one
// Session and takes up to B queued requests at a time, running them back
// to back; concurrent unwraps of the same blob under the same aad (and
// custom-key-store decrypts of the same blob) share one backend call.
//
// Every request is bounded in time: a full queue answers ErrQueueFull at
// once, a request answers ctx.Err() when its deadline passes however long
// the HSM takes (with no deadline, PoolConfig.Timeout applies), and a dead
// HSM answers ErrUnavailable from the session's own reconnection policy.
//
// Pool implements Backend and KeyStoreBackend, so the kms package uses it
// in place of the backend it runs on. It owns that backend: Close closes it.
type Pool struct {
	b   SessionBackend
	ks  KeyStoreBackend // nil when b has no custom-key-store support
	cfg PoolConfig

	queue chan *job
	stop  chan struct{}
	wg    sync.WaitGroup
	sess  []Session

	// gate orders submissions against Close: submit holds it shared from
	// the closed check to the enqueue, so nothing enters the queue after
	// Close has drained it.
	gate   sync.RWMutex
	closed bool // guarded by gate

	mu      sync.Mutex
	flights map[string]*job // coalescable jobs not yet finished; guarded by mu

	m *poolMetrics
}

// PoolConfig configures a Pool; zero values mean the defaults.
type PoolConfig struct {
	// Workers is the number of workers, each with its own session (default 4).
	Workers int
	// Batch is the most requests a worker takes from the queue at once (default 16).
	Batch int
	// Queue bounds the requests waiting for a worker (default 256).
	Queue int
	// Timeout bounds a request whose context has no deadline (default 5s).
	Timeout time.Duration
}

const (
	defaultWorkers = 4
	defaultBatch   = 16
	defaultQueue   = 256
	defaultTimeout = 5 * time.Second
)

var (
	_ Backend         = (*Pool)(nil)
	_ KeyStoreBackend = (*Pool)(nil)
	_ HealthChecker   = (*Pool)(nil)
)

type op uint8

const (
	opWrap op = iota
	opUnwrap
	opEncrypt
	opDecrypt
	opRandom
	numOps
)

var opNames = [numOps]string{"wrap", "unwrap", "encrypt", "decrypt", "random"}

// secretInput reports ops whose input is plaintext, which the pool's copy
// must not outlive.
func (o op) secretInput() bool { return o == opWrap || o == opEncrypt }

// coalesces reports ops whose result depends on nothing but the input.
func (o op) coalesces() bool { return o == opUnwrap || o == opDecrypt }

// A job is one backend call, answering one waiter or, when coalesced,
// every waiter that asked for the same thing while it was pending.
type job struct {
	op      op
	keyID   string
	in, aad []byte // the pool's own copy, in one buffer
	n       int
	ctx     context.Context // the first waiter's values, without its cancellation
	flight  string          // key in Pool.flights; "" when not coalesced
	waiters []*waiter       // guarded by Pool.mu while flight != ""
}

// A waiter is one caller. Exactly one of the worker (delivering a result)
// and the caller (giving up at its deadline) wins the state transition
// out of waiting, so a result is either received or zeroed, never leaked.
type waiter struct {
	ctx   context.Context
	state atomic.Uint32
	out   []byte
	err   error
	done  chan struct{}
}

const (
	waiting uint32 = iota
	delivered
	abandoned
)

// NewPool opens cfg.Workers sessions on b and starts the workers.
func NewPool(b SessionBackend, cfg PoolConfig) (*Pool, error) {
	if b == nil {
		return nil, fmt.Errorf("hsm: pool needs a backend")
	}
	for _, v := range []struct {
		name string
		n    int64
	}{{"workers", int64(cfg.Workers)}, {"batch", int64(cfg.Batch)}, {"queue", int64(cfg.Queue)}, {"timeout", int64(cfg.Timeout)}} {
		if v.n < 0 {
			return nil, fmt.Errorf("hsm: pool %s must not be negative, got %d", v.name, v.n)
		}
	}
	cfg.Workers = orDefault(cfg.Workers, defaultWorkers)
	cfg.Batch = orDefault(cfg.Batch, defaultBatch)
	cfg.Queue = orDefault(cfg.Queue, defaultQueue)
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	p := &Pool{
		b:       b,
		cfg:     cfg,
		queue:   make(chan *job, cfg.Queue),
		stop:    make(chan struct{}),
		flights: make(map[string]*job),
	}
	p.ks, _ = b.(KeyStoreBackend)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	for range cfg.Workers {
		s, err := b.OpenSession(ctx)
		if err != nil {
			for _, s := range p.sess {
				s.Close()
			}
			return nil, fmt.Errorf("hsm: pool: open session: %w", err)
		}
		p.sess = append(p.sess, s)
	}
	p.m = newPoolMetrics(p)
	for _, s := range p.sess {
		p.wg.Add(1)
		go p.work(s)
	}
	return p, nil
}

func orDefault(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

// Name implements Backend: the name of the backend the pool runs on.
func (p *Pool) Name() string { return p.b.Name() }

// Wrap implements Backend.
func (p *Pool) Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	if err := checkPlaintext(plaintext); err != nil {
		return nil, err
	}
	return p.submit(ctx, opWrap, "", plaintext, aad, 0)
}

// Unwrap implements Backend; concurrent identical calls share one HSM call
// and each caller gets its own copy to zero.
func (p *Pool) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	return p.submit(ctx, opUnwrap, "", wrapped, aad, 0)
}

// Encrypt implements KeyStoreBackend.
func (p *Pool) Encrypt(ctx context.Context, keyID string, plaintext, aad []byte) ([]byte, error) {
	if err := checkPlaintext(plaintext); err != nil {
		return nil, err
	}
	return p.submit(ctx, opEncrypt, keyID, plaintext, aad, 0)
}

// Decrypt implements KeyStoreBackend.
func (p *Pool) Decrypt(ctx context.Context, keyID string, blob, aad []byte) ([]byte, error) {
	return p.submit(ctx, opDecrypt, keyID, blob, aad, 0)
}

// GenerateRandom implements KeyStoreBackend.
func (p *Pool) GenerateRandom(ctx context.Context, n int) ([]byte, error) {
	if err := checkRandomLen(n); err != nil {
		return nil, err
	}
	return p.submit(ctx, opRandom, "", nil, nil, n)
}

// GenerateKey implements KeyStoreBackend. Key creation is rare and goes to
// the backend directly, outside the workers.
func (p *Pool) GenerateKey(ctx context.Context, label string) (string, error) {
	if err := p.direct(); err != nil {
		return "", err
	}
	return p.ks.GenerateKey(ctx, label)
}

// Ping implements KeyStoreBackend, like GenerateKey.
func (p *Pool) Ping(ctx context.Context) error {
	if err := p.direct(); err != nil {
		return err
	}
	return p.ks.Ping(ctx)
}

// DestroyKey implements KeyStoreBackend, like GenerateKey.
func (p *Pool) DestroyKey(ctx context.Context, keyID string) error {
	if err := p.direct(); err != nil {
		return err
	}
	return p.ks.DestroyKey(ctx, keyID)
}

// Healthy implements HealthChecker: ErrClosed after Close, else what the
// backend says (nil for a backend that is not a HealthChecker).
func (p *Pool) Healthy() error {
	p.gate.RLock()
	closed := p.closed
	p.gate.RUnlock()
	if closed {
		return ErrClosed
	}
	if h, ok := p.b.(HealthChecker); ok {
		return h.Healthy()
	}
	return nil
}

func (p *Pool) direct() error {
	p.gate.RLock()
	defer p.gate.RUnlock()
	switch {
	case p.closed:
		return ErrClosed
	case p.ks == nil:
		return fmt.Errorf("%w: %s backend has no custom key store", ErrUnsupported, p.b.Name())
	}
	return nil
}

// Close answers queued requests with ErrClosed, waits for the workers to
// finish their batches, closes the sessions and then the backend.
func (p *Pool) Close() error {
	p.gate.Lock()
	if p.closed {
		p.gate.Unlock()
		return nil
	}
	p.closed = true
	p.gate.Unlock()
	close(p.stop)
	p.wg.Wait()
	for {
		select {
		case j := <-p.queue:
			p.finish(j, nil, ErrClosed)
			continue
		default:
		}
		break
	}
	for _, s := range p.sess {
		s.Close()
	}
	return p.b.Close()
}

func (p *Pool) submit(ctx context.Context, o op, keyID string, in, aad []byte, n int) ([]byte, error) {
	if o >= opEncrypt && p.ks == nil {
		return nil, fmt.Errorf("%w: %s backend has no custom key store", ErrUnsupported, p.b.Name())
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.Timeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.m.requests[o].Inc()
	w := &waiter{ctx: ctx, done: make(chan struct{})}
	buf := make([]byte, len(in)+len(aad))
	copy(buf, in)
	copy(buf[len(in):], aad)
	j := &job{op: o, keyID: keyID, in: buf[:len(in):len(in)], aad: buf[len(in):], n: n,
		ctx: context.WithoutCancel(ctx), waiters: []*waiter{w}}
	if o.coalesces() {
		j.flight = flightKey(o, keyID, in, aad)
	}

	p.gate.RLock()
	if p.closed {
		p.gate.RUnlock()
		return nil, ErrClosed
	}
	if j.flight != "" {
		p.mu.Lock()
		if f := p.flights[j.flight]; f != nil {
			f.waiters = append(f.waiters, w)
			p.mu.Unlock()
			p.gate.RUnlock()
			p.m.coalesced.Inc()
			return p.wait(w)
		}
		p.flights[j.flight] = j
		p.mu.Unlock()
	}
	select {
	case p.queue <- j:
	default:
		p.m.queueFull.Inc()
		p.finish(j, nil, ErrQueueFull)
	}
	p.gate.RUnlock()
	return p.wait(w)
}

// flightKey names what a coalescable job computes: every input, length-
// prefixed so that no two different requests share a key.
func flightKey(o op, keyID string, in, aad []byte) string {
	k := make([]byte, 0, 1+8+len(keyID)+len(in)+len(aad))
	k = append(k, byte(o))
	k = binary.BigEndian.AppendUint32(k, uint32(len(keyID)))
	k = append(k, keyID...)
	k = binary.BigEndian.AppendUint32(k, uint32(len(in)))
	k = append(k, in...)
	k = append(k, aad...)
	return string(k)
}

func (p *Pool) wait(w *waiter) ([]byte, error) {
	select {
	case <-w.done:
		return w.out, w.err
	case <-w.ctx.Done():
		if w.state.CompareAndSwap(waiting, abandoned) {
			p.m.timeouts.Inc()
			return nil, w.ctx.Err()
		}
		<-w.done // the worker won: the result is ours to return
		return w.out, w.err
	}
}

func (p *Pool) work(s Session) {
	defer p.wg.Done()
	// Results of batched unwraps are handed to the waiters by a goroutine
	// of the worker's own, so that the session is back in the token while
	// they are delivered.
	results := make(chan delivery, 1)
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		for d := range results {
			for i, j := range d.jobs {
				p.finish(j, d.outs[i], d.errs[i])
			}
		}
	}()
	defer func() { close(results); <-delivered }()
	batch := make([]*job, 0, p.cfg.Batch)
	for {
		select {
		case j := <-p.queue:
			batch = append(batch[:0], j)
		case <-p.stop:
			return
		}
	fill:
		for len(batch) < p.cfg.Batch {
			select {
			case j := <-p.queue:
				batch = append(batch, j)
			default:
				break fill
			}
		}
		p.m.recordBatch(len(batch))
		p.runBatch(s, batch, results)
		clear(batch)
	}
}

// runBatch runs a worker's batch in its session. Unwraps go to the backend
// together when the session can take them in one trip (a PKCS#11 session:
// one call into the module for the lot), the rest one by one.
func (p *Pool) runBatch(s Session, batch []*job, results chan<- delivery) {
	bs, ok := s.(batchUnwrapper)
	if !ok {
		for _, j := range batch {
			p.run(s, j)
		}
		return
	}
	var unwraps []*job
	for _, j := range batch {
		switch {
		case j.op != opUnwrap:
			p.run(s, j)
		case !p.abandonIfGone(j):
			unwraps = append(unwraps, j)
		}
	}
	if len(unwraps) == 1 {
		p.run(s, unwraps[0])
		return
	}
	if len(unwraps) == 0 {
		return
	}
	wrapped, aads := make([][]byte, len(unwraps)), make([][]byte, len(unwraps))
	for i, j := range unwraps {
		wrapped[i], aads[i] = j.in, j.aad
	}
	start := time.Now()
	outs, errs := bs.unwrapBatch(unwraps[0].ctx, wrapped, aads)
	for i := range unwraps {
		p.m.latency[opUnwrap].UpdateDuration(start)
		p.m.calls.Add(1)
		p.m.countError(errs[i])
	}
	results <- delivery{unwraps, outs, errs}
}

// delivery is a batch's results on their way to its waiters.
type delivery struct {
	jobs []*job
	outs [][]byte
	errs []error
}

// run makes the backend call for j unless every waiter has gone.
func (p *Pool) run(s Session, j *job) {
	if p.abandonIfGone(j) {
		return
	}
	start := time.Now()
	out, err := call(s, j)
	p.m.latency[j.op].UpdateDuration(start)
	p.m.calls.Add(1)
	p.m.countError(err)
	p.finish(j, out, err)
}

func call(s Session, j *job) ([]byte, error) {
	switch j.op {
	case opWrap:
		return s.Wrap(j.ctx, j.in, j.aad)
	case opUnwrap:
		return s.Unwrap(j.ctx, j.in, j.aad)
	}
	ks, ok := s.(KeyStoreSession)
	if !ok {
		return nil, ErrUnsupported
	}
	switch j.op {
	case opEncrypt:
		return ks.Encrypt(j.ctx, j.keyID, j.in, j.aad)
	case opDecrypt:
		return ks.Decrypt(j.ctx, j.keyID, j.in, j.aad)
	default:
		return ks.GenerateRandom(j.ctx, j.n)
	}
}

// abandonIfGone reports whether no waiter of j is still waiting in time;
// if so it retires j (no new waiter can join it) and answers any waiter
// that has not noticed its deadline yet.
func (p *Pool) abandonIfGone(j *job) bool {
	if j.flight != "" {
		p.mu.Lock()
		defer p.mu.Unlock()
	}
	for _, w := range j.waiters {
		if w.state.Load() == waiting && w.ctx.Err() == nil {
			return false
		}
	}
	if j.flight != "" && p.flights[j.flight] == j {
		delete(p.flights, j.flight)
	}
	if j.op.secretInput() {
		clear(j.in)
	}
	for _, w := range j.waiters {
		if w.state.CompareAndSwap(waiting, delivered) {
			w.err = w.ctx.Err()
			close(w.done)
		}
	}
	return true
}

// finish delivers j's result to every waiter still waiting: the original
// to one, a copy to each other (so each can zero its own), and zeroes the
// result if nobody took it.
func (p *Pool) finish(j *job, out []byte, err error) {
	// A coalesced job's waiters grow under p.mu until it leaves p.flights,
	// so they are read only under it.
	var ws []*waiter
	if j.flight != "" {
		p.mu.Lock()
		if p.flights[j.flight] == j {
			delete(p.flights, j.flight)
		}
		ws = j.waiters
		p.mu.Unlock()
	} else {
		ws = j.waiters
	}
	if j.op.secretInput() {
		clear(j.in)
	}
	var live []*waiter
	for _, w := range ws {
		if w.state.CompareAndSwap(waiting, delivered) {
			live = append(live, w)
		}
	}
	for i, w := range live {
		switch {
		case err != nil:
			w.err = err
		case i == len(live)-1:
			w.out, out = out, nil
		default:
			w.out = cloneSecret(out)
		}
		close(w.done)
	}
	clear(out)
}

// KeyStoreOf returns what runs custom-key-store keys on b: b itself when it
// supports them (a Pool only when the backend under it does), nil when it
// does not, as for the software root.
func KeyStoreOf(b Backend) KeyStoreBackend {
	if p, ok := b.(*Pool); ok {
		if p.ks == nil {
			return nil
		}
		return p
	}
	ks, _ := b.(KeyStoreBackend)
	return ks
}
