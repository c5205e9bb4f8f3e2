package stream

import (
	"bufio"
	"bytes"
	"io"
	"unsafe"
)

// A window is spare capacity of the destination, lent by a *bytes.Buffer or
// a *bufio.Writer through AvailableBuffer, into which packages are sealed
// (Writer) or plaintext opened (Reader.WriteTo) where it will end up. The
// Write that appends such output passes the very bytes the destination
// would copy it to, and Go's copy does nothing when source and destination
// are the same: the output reaches the destination without the copy an
// io.Writer otherwise costs, which on a 256 MiB stream in memory is as long
// as the sealing itself.
//
// A region of the window is placed for a slot when it is submitted, at the
// offset its output will have when every output queued before it has been
// written: all packages but the last are full, so the offsets are known in
// advance and the workers fill their regions out of order while the
// caller's goroutine writes them out in order. Whoever places regions keeps
// two rules:
//
//   - every placed region is written (or the stream fails, and the ring's
//     release waits for the workers) before control returns to the caller
//     of Write, Close or WriteTo, so nothing else touches the destination
//     while a worker may still be writing into its capacity;
//   - the destination is grown only when no region is placed, since growing
//     may move its memory.
//
// write checks, before each Write of a placed region, that the destination
// still lends capacity starting at that region; if it does not (its owner
// broke the first rule), the region is written as any other output, by a
// copy, and the window places nothing more.
type window struct {
	dst     interface{ AvailableBuffer() []byte } // nil: the destination lends nothing
	grow    func(n int)                           // the destination's Grow, if it has one
	buf     []byte                                // the capacity lent when the window opened; nil when closed
	written int                                   // bytes written to the destination since it opened
	placed  int                                   // regions placed and not yet written
	hi      int                                   // where the furthest region placed since it opened ends
}

// newWindow returns the window of dst, empty for destinations that lend no
// capacity or whose Write of lent bytes is not known to skip the copy.
func newWindow(dst io.Writer) window {
	switch d := dst.(type) {
	case *bytes.Buffer:
		return window{dst: d, grow: d.Grow}
	case *bufio.Writer:
		return window{dst: d}
	}
	return window{}
}

// place returns a region of n bytes for output that will be written after
// ahead bytes of output queued before it, or nil if there is no room (the
// output then goes through the slot's own buffer). Opening the window
// first grows the destination to hold reserve more bytes, the output the
// caller expects to place before the window closes again.
func (w *window) place(ahead, n, reserve int) []byte {
	if w.dst == nil {
		return nil
	}
	if w.buf == nil {
		if w.grow != nil {
			w.grow(max(reserve, ahead+n))
		}
		w.buf = w.dst.AvailableBuffer()
		w.buf = w.buf[:cap(w.buf)]
		w.written, w.hi = 0, 0
	}
	off := w.written + ahead
	if off+n > len(w.buf) {
		if w.placed == 0 {
			w.buf = nil // reopened, grown, on the next place
		}
		return nil
	}
	w.placed++
	w.hi = max(w.hi, off+n)
	return w.buf[off : off+n : off+n]
}

// scrub zeroes the regions placed and not written, once nothing writes
// them any more: a Reader that fails leaves no plaintext it did not deliver
// in the destination's free capacity.
func (w *window) scrub() {
	if w.buf != nil && w.written < w.hi {
		clear(w.buf[w.written:w.hi])
	}
	w.buf, w.placed = nil, 0
}

// write writes out to dst: placed says it is a region place returned.
func (w *window) write(dst io.Writer, out []byte, placed bool) (int, error) {
	if placed {
		w.placed--
		av := w.dst.AvailableBuffer()
		if cap(av) >= len(out) && unsafe.SliceData(av) == unsafe.SliceData(out) {
			out = av[:len(out)] // the same bytes: the Write copies nothing
		} else {
			w.dst = nil // not where it was lent: copy, and lend no more
		}
	}
	n, err := dst.Write(out)
	if w.buf != nil {
		w.written += n
		if w.placed == 0 {
			w.buf = nil
		}
	}
	return n, err
}

// overlaps reports whether a and b share memory.
func overlaps(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	pa, pb := uintptr(unsafe.Pointer(unsafe.SliceData(a))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return pa < pb+uintptr(len(b)) && pb < pa+uintptr(len(a))
}
