package stream

import (
	"runtime"
	"sync"
)

// A ring is the ordered, bounded pipeline behind the parallel Writer and
// Reader. It owns a fixed number of slots, each with one package buffer;
// the caller's goroutine fills the slot at the tail, submits it to be
// sealed or opened on another goroutine, and consumes slots from the head
// in submission order. So:
//
//   - at most len(slots) package buffers (64 KiB + 32 bytes each) belong to
//     a stream at any time, however long the stream;
//   - at most workers packages are being sealed or opened at once;
//   - the caller's io.Reader or io.Writer is used only on the caller's
//     goroutine, inside its own Read, Write or Close call, unless it reads
//     or writes at offsets (see the package documentation), when the work
//     on a slot includes reading or writing that slot's package.
type ring struct {
	slots       []slot
	head, count int           // the FIFO of submitted slots
	sem         chan struct{} // one token per worker
	live, peak  int           // package buffers held now and at most (for tests)
}

type slot struct {
	buf   *[]byte // maxPackage bytes; nil until first used
	src   []byte  // writer: a whole payload borrowed from the caller's Write, sealed from there
	off   int64   // reader at offsets: where the package starts in the source
	hi    int     // bytes of buf that may hold plaintext, cleared at release
	n     int     // writer: payload bytes filled; reader: package length
	seq   uint32
	final bool
	out   []byte // the sealed package or the opened plaintext
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
func slotsFor(n int) int { return min(max(8*n, 3), maxSlots) }

func newRing(workers int) *ring {
	r := &ring{slots: make([]slot, slotsFor(workers)), sem: make(chan struct{}, workers)}
	for i := range r.slots {
		r.slots[i].done = make(chan struct{}, 1)
	}
	return r
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
	s.n, s.out, s.err, s.after, s.ready, s.final, s.src = 0, nil, nil, nil, false, false, nil
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

// submit appends the tail slot to the FIFO and runs work on it on another
// goroutine, at most len(sem) at once.
func (r *ring) submit(s *slot, work func(*slot)) {
	if s != &r.slots[(r.head+r.count)%len(r.slots)] {
		panic("stream: internal error: submitted slot is not the tail")
	}
	r.count++
	go func() {
		r.sem <- struct{}{}
		work(s)
		<-r.sem
		s.done <- struct{}{}
	}()
}

// oldest returns the head slot once its work is done, or nil if the FIFO
// is empty.
func (r *ring) oldest() *slot {
	if r.count == 0 {
		return nil
	}
	s := &r.slots[r.head]
	if !s.ready {
		<-s.done
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
