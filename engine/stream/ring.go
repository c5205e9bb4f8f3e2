package stream

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// A ring is the ordered, bounded pipeline behind the Writer and Reader. It
// owns a fixed number of slots, each with one package buffer; the caller's
// goroutine fills the slot at the tail, submits it to be sealed or opened,
// and consumes slots from the head in submission order. So:
//
//   - at most len(slots) package buffers (64 KiB + 32 bytes each) belong to
//     a stream at any time, however long the stream;
//   - at most workers packages are being sealed or opened at once;
//   - the caller's io.Reader or io.Writer is used only on the caller's
//     goroutine, inside its own Read, Write or Close call, unless it reads
//     or writes at offsets (see the package documentation), when the work
//     on a slot includes reading or writing that slot's package.
//
// A ring for one worker is inline: it has one slot and submit does the work
// on the caller's goroutine, so the sequential path is the same code with
// no goroutine, channel or lock, and its one buffer stays in cache.
//
// Otherwise workers are started on demand, up to the ring's limit; each
// takes submitted slots in order and, when none is waiting, waits for the
// next (a token on wake) up to idleWait, then exits. So a stream starts no
// goroutine per package (no allocation per package), release ends its
// workers, and a stream abandoned without Close loses them after idleWait.
type ring struct {
	slots       []slot
	head, count int // the FIFO of submitted slots; the caller's goroutine only
	inline      bool

	// work is done on each submitted slot; workers read it under mu.
	work func(*slot)

	mu      sync.Mutex
	next    int // the submitted slot no worker has taken yet
	queued  int // how many submitted slots no worker has taken
	running int // workers started and not yet exited
	waiting int // workers waiting for a slot, less the wake tokens sent to them
	limit   int
	wake    chan struct{} // a token wakes one waiting worker; closed at release
	closed  bool

	live, peak int // package buffers held now and at most (for tests)

	awaited atomic.Pointer[slot] // the slot oldest waits for, if it waits
}

type slot struct {
	buf   *[]byte // maxPackage bytes; nil until first used
	src   []byte  // writer: a whole payload borrowed from the caller's Write, sealed from there
	lent  []byte  // reader: a whole package lent by the source (see Reader.lent), opened from there
	win   []byte  // a region of the destination's window the output goes to (see window), or nil
	off   int64   // reader at offsets: where the package starts in the source
	hi    int     // bytes of buf that may hold plaintext, cleared at release
	n     int     // writer: payload bytes filled; reader: package length
	seq   uint32
	final bool
	nonce [12]byte // the package's AEAD nonce (see packageNonce)
	out   []byte   // the sealed package or the opened plaintext
	err   error
	after error // reported instead of the plaintext once the package authenticates
	done  chan struct{}
	ready bool // done has been received
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, maxPackage); return &b }}

// maxSlots caps the buffers of one stream at 4 MiB whatever GOMAXPROCS is.
const maxSlots = 64

// workers resolves Config.Workers: 0 means GOMAXPROCS.
func workers(n int) int {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return n
}

// slotsFor is the ring size for n workers: enough that every worker has a
// package while the caller fills one and drains another.
func slotsFor(n int) int {
	if n == 1 {
		return 1
	}
	return min(max(8*n, 3), maxSlots)
}

// newRing returns a ring that runs work on each submitted slot, on the
// caller's goroutine for one worker.
func newRing(workers int, work func(*slot)) *ring {
	r := &ring{slots: make([]slot, slotsFor(workers)), work: work, inline: workers == 1, limit: workers}
	if !r.inline {
		r.wake = make(chan struct{}, workers)
		for i := range r.slots {
			r.slots[i].done = make(chan struct{}, 1)
		}
	}
	return r
}

// setWork replaces the work done on slots submitted from now on.
func (r *ring) setWork(work func(*slot)) {
	r.mu.Lock()
	r.work = work
	r.mu.Unlock()
}

// full reports whether every slot is submitted.
func (r *ring) full() bool { return r.count == len(r.slots) }

// tail returns the slot to fill next. The ring must not be full.
func (r *ring) tail() *slot {
	if r.full() {
		panic("stream: internal error: tail of a full ring")
	}
	s := &r.slots[(r.head+r.count)%len(r.slots)]
	if s.buf == nil {
		s.buf = bufPool.Get().(*[]byte)
		r.live++
		r.peak = max(r.peak, r.live)
	}
	s.n, s.out, s.err, s.after, s.ready, s.final, s.src, s.lent, s.win = 0, nil, nil, nil, false, false, nil, nil, nil
	return s
}

func (r *ring) awaitAll() {
	for i := range r.count {
		s := &r.slots[(r.head+i)%len(r.slots)]
		if !s.ready {
			<-s.done
			s.ready = true
		}
	}
}

// submit appends the tail slot to the FIFO and has the ring's work done on
// it: at once on an inline ring, else by a worker.
func (r *ring) submit(s *slot) {
	if s != &r.slots[(r.head+r.count)%len(r.slots)] {
		panic("stream: internal error: submitted slot is not the tail")
	}
	r.count++
	if r.inline {
		r.work(s)
		s.ready = true
		return
	}
	r.mu.Lock()
	r.queued++
	start := false
	switch {
	case r.waiting > 0:
		r.waiting--
		r.wake <- struct{}{} // never blocks: one token per waiting worker
	case r.running < r.limit:
		r.running++
		start = true
	}
	r.mu.Unlock()
	if start {
		go r.worker()
	}
}

// idleWait is how long a worker without a slot waits for the next before it
// exits. The caller's goroutine is usually filling the next package, and a
// worker that waits for it is cheaper than a new one; a stream abandoned
// without Close loses its workers after this long.
const idleWait = 20 * time.Millisecond

// worker works on submitted slots in order, waiting up to idleWait for the
// next, until the ring is released.
func (r *ring) worker() {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		r.mu.Lock()
		if r.queued == 0 {
			if r.closed {
				r.running--
				r.mu.Unlock()
				return
			}
			r.waiting++
			r.mu.Unlock()
			if timer == nil {
				timer = time.NewTimer(idleWait)
			} else {
				timer.Reset(idleWait)
			}
			select {
			case <-r.wake:
				continue
			case <-timer.C:
			}
			r.mu.Lock()
			select {
			case <-r.wake: // woken as the timer fired
				r.mu.Unlock()
				continue
			default:
			}
			r.waiting--
			r.running--
			r.mu.Unlock()
			return
		}
		s := &r.slots[r.next]
		r.next = (r.next + 1) % len(r.slots)
		r.queued--
		work := r.work
		r.mu.Unlock()
		work(s)
		s.done <- struct{}{}
		if r.awaited.Load() == s {
			// The caller's goroutine waits for this slot to deliver it and
			// refill the ring. Readied by the send, it would run only once
			// this worker blocks (the other workers hold the other Ps):
			// the workers would drain the ring and idle while it refills.
			runtime.Gosched()
		}
	}
}

// oldest returns the head slot once its work is done, or nil if the FIFO
// is empty.
func (r *ring) oldest() *slot {
	if r.count == 0 {
		return nil
	}
	s := &r.slots[r.head]
	if !s.ready {
		r.awaited.Store(s)
		<-s.done
		r.awaited.Store(nil)
		s.ready = true
	}
	return s
}

// oldestIfDone is oldest without waiting.
func (r *ring) oldestIfDone() *slot {
	if r.count == 0 {
		return nil
	}
	s := &r.slots[r.head]
	if !s.ready {
		select {
		case <-s.done:
			s.ready = true
		default:
			return nil
		}
	}
	return s
}

// pop removes the head slot, which oldest returned.
func (r *ring) pop() {
	r.head = (r.head + 1) % len(r.slots)
	r.count--
}

// release waits for work in flight, zeroes what may hold plaintext and
// returns the buffers to the pool. The ring is unusable after.
func (r *ring) release() {
	for r.count > 0 {
		r.oldest()
		r.pop()
	}
	if r.wake != nil {
		r.mu.Lock()
		if !r.closed {
			r.closed = true
			close(r.wake) // waiting workers exit
		}
		r.mu.Unlock()
	}
	for i := range r.slots {
		s := &r.slots[i]
		if s.buf != nil {
			clear((*s.buf)[:s.hi])
			bufPool.Put(s.buf)
			s.buf, s.out = nil, nil
			r.live--
		}
	}
}
