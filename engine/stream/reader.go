package stream

import (
	"bytes"
	"context"
	"crypto/cipher"
	"errors"
	"io"

	"github.com/minio/sio"
)

// Reader decrypts a stream. NewReader reads and authenticates the header;
// Read returns the plaintext of the body.
//
// What Read guarantees: every byte it returns is plaintext of a package
// whose tag verified under this stream's body key at that package's
// position in the stream; nothing unauthenticated is ever returned. The
// stream as a whole is authentic only when Read returns io.EOF: a body that
// is truncated, carries trailing data, or has package i modified, moved or
// spliced in is reported by an error (ErrTruncated, ErrTrailingData,
// ErrNotAuthentic, ErrSpliced, wrapped in a *PackageError) in place of
// io.EOF, after the plaintext of the packages before it has been returned;
// the final package's plaintext is released only once the end of the body
// has been confirmed, so trailing data withholds it.
// A consumer that must not act on part of a stream should hold its output
// until io.EOF, as the coffer CLI does by writing to a temporary file that
// it renames only then. Errors are sticky.
//
// The parallel path reads up to a few packages ahead of the caller and
// opens them on other goroutines, but reports results strictly in order,
// so it returns exactly the bytes and the error the sequential path does.
type Reader struct {
	src io.Reader
	h   *Header
	err error // sticky; io.EOF at the end

	// The sequential path where asm has no kernel: minio/sio's reader.
	dec       io.Reader
	framed    *framedSource
	delivered int64

	// The ring: the parallel path, and the sequential path on an inline
	// ring where asm has a kernel.
	ring    *ring
	aead    cipher.AEAD
	framer  framer
	srcDone bool  // no more packages will be read from src
	endErr  error // reported once the ring drains; nil means io.EOF
	cur     *slot
	off     int
	// at is src when it can also read at offsets (a file, a bytes.Reader):
	// the caller's goroutine then reads only package headers, at pos, and
	// each worker reads its package's payload itself.
	at  io.ReaderAt
	pos int64

	// In WriteTo (placing), the destination's spare capacity where a
	// *bytes.Buffer or *bufio.Writer lends it (see window): packages are
	// opened straight into it. queued is the plaintext of the packages
	// submitted and not yet delivered.
	win     window
	placing bool
	queued  int

	// In WriteTo from a lending source (see lendingSource), the bytes its
	// WriteTo handed to the sink's Write, read from lentPos: packages wholly
	// in them are opened from there. A package cut at their end is gathered
	// in the tail slot's buffer (carry bytes so far; carryN its length once
	// its header is read) until the next Write completes it.
	lent      []byte
	lentPos   int
	starved   bool // the lent bytes end inside a package: the next Write is needed
	carry     int
	carryN    int
	lentFinal *slot // the final package, read where the lent bytes end: not yet known to end the body
	extra     bool  // the source had bytes after the final package
}

// NewReader reads the header from src, has p unwrap the data key (through
// cfg.Cache if set), authenticates the header and returns a Reader for the
// body. It fails with ErrMalformedHeader, ErrUnsupportedVersion,
// ErrContextMismatch, ErrHeaderAuth, or the provider's error.
func NewReader(ctx context.Context, src io.Reader, p KeyProvider, cfg Config) (*Reader, error) {
	h, err := ReadHeader(src)
	if err != nil {
		return nil, err
	}
	bodyKey, err := cfg.openHeader(ctx, p, h)
	if err != nil {
		return nil, err
	}
	defer clear(bodyKey)
	r := &Reader{src: src, h: h}
	if h.Empty {
		r.srcDone = true
		r.endErr = checkEnd(src, 0)
		r.err = r.endErr
		if r.err == nil {
			r.err = io.EOF
		}
		return r, nil
	}
	if n := workers(cfg.Workers); n == 1 && viaSIO(&cfg, h.Suite) {
		r.framed = &framedSource{src: src}
		r.framed.fr.cipher = h.Suite.dareID()
		if r.framed.aead, err = newAEAD(h.Suite, bodyKey, cfg.NewAESGCM); err != nil {
			return nil, err
		}
		r.dec, err = sio.DecryptReader(r.framed, sio.Config{
			MinVersion:   sio.Version20,
			MaxVersion:   sio.Version20,
			CipherSuites: []byte{h.Suite.dareID()},
			Key:          bodyKey,
		})
	} else {
		r.aead, err = newAEAD(h.Suite, bodyKey, cfg.NewAESGCM)
		r.framer.cipher = h.Suite.dareID()
		r.ring = newRing(n, r.openSlot)
		if ra, ok := src.(io.ReaderAt); ok && n > 1 {
			if sk, ok := src.(io.Seeker); ok {
				if pos, err := sk.Seek(0, io.SeekCurrent); err == nil {
					r.at, r.pos = ra, pos
					r.ring.work = r.openSlotAt
				}
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// checkEnd reports ErrTrailingData if src has more bytes.
func checkEnd(src io.Reader, nextPackage int64) error {
	var one [1]byte
	n, err := io.ReadFull(src, one[:])
	switch {
	case n > 0:
		return packageError(nextPackage, ErrTrailingData)
	case err == io.EOF:
		return nil
	}
	return err
}

// Header returns the stream's authenticated header.
func (r *Reader) Header() *Header { return r.h }

// Read implements io.Reader with the guarantees described on Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.dec != nil {
		n, err := r.dec.Read(p)
		r.delivered += int64(n)
		if err != nil {
			r.fail(r.sioError(err))
		}
		return n, r.err
	}
	for r.cur == nil || r.off == len(r.cur.out) {
		if err := r.advance(); err != nil {
			return 0, r.fail(err)
		}
	}
	n := copy(p, r.cur.out[r.off:])
	r.off += n
	r.queued -= n
	return n, nil
}

// WriteTo implements io.WriterTo: io.Copy hands each package's plaintext
// straight to w.
//
// On the parallel path, a w that can be written at offsets and truncated
// and that ends where it is positioned (a file being written, such as the
// temporary file of `coffer decrypt`) is written by the workers, each the
// plaintext of the package it opened at that package's place. The result
// is the same as writing in order: on an error in package i, w is truncated
// after the plaintext of packages 0..i-1 and positioned there, and the
// final package is written only once the end of the body is confirmed.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	if r.dec != nil {
		return io.CopyBuffer(w, onlyReader{r}, make([]byte, maxPayload))
	}
	if wa, base, ok := r.canWriteAt(w); ok {
		return r.writeToAt(w, wa, base)
	}
	// Packages read from here on are opened into w's window where it lends
	// one; WriteTo returns only at the end of the stream or on an error,
	// which releases the ring first (the window's rule).
	r.win, r.placing = newWindow(w), true
	defer func() {
		// Every placed package was delivered, or the stream failed and
		// its workers are done: zero what it did not deliver.
		r.win.scrub()
		r.placing = false
	}()
	var total int64
	if src := r.lendingSource(); src != nil {
		n, err := r.readLending(src, w)
		total += n
		if err != nil {
			return total, r.fail(err)
		}
	}
	for r.err == nil {
		if r.cur == nil || r.off == len(r.cur.out) {
			if err := r.advance(); err != nil {
				if r.fail(err) == io.EOF {
					return total, nil
				}
				return total, err
			}
			continue
		}
		n, err := r.win.write(w, r.cur.out[r.off:], r.cur.win != nil && r.off == 0)
		r.off += n
		r.queued -= n
		total += int64(n)
		if err != nil {
			return total, r.fail(err)
		}
	}
	if r.err == io.EOF {
		return total, nil
	}
	return total, r.err
}

// lender is a source whose WriteTo hands its unread bytes to the Write of
// the writer it is given, rather than copying them through a buffer of
// its own (a test's source that hands them in pieces).
type lender interface {
	io.WriterTo
	lendsBytes()
}

// lendingSource returns the Reader's source as an io.WriterTo when it
// lends its bytes (a *bytes.Reader or *bytes.Buffer, which pass all they
// hold to one Write) and nothing has been read from the body yet: WriteTo
// then opens packages straight from those bytes, without the copy into a
// package buffer that a Read or ReadAt costs — on a stream in memory as
// long as the opening itself.
func (r *Reader) lendingSource() io.WriterTo {
	if r.ring == nil || r.err != nil || r.srcDone || r.cur != nil || r.ring.count > 0 || r.framer.seq > 0 {
		return nil
	}
	switch src := r.src.(type) {
	case *bytes.Reader:
		return src
	case *bytes.Buffer:
		return src
	case lender:
		return src
	}
	return nil
}

// errBodyEnded stops a lending source's WriteTo once the body has ended
// (its final package or a framing error) before the bytes it lends do.
var errBodyEnded = errors.New("stream: end of the body")

// readLending has src lend its bytes to a sink whose Write reads packages
// from them (readLent), submits them to be opened and, when the ring is
// full, writes the oldest package's plaintext to w. Before each Write
// returns, every package opened from its bytes is done with them. It
// returns with the body read and how it ends recorded (srcDone, endErr,
// the final package's after) for WriteTo's loop to deliver the rest.
func (r *Reader) readLending(src io.WriterTo, w io.Writer) (int64, error) {
	sink := lentSink{r: r, w: w}
	r.ring.setWork(r.openSlot) // not openSlotAt: the package is in the lent bytes
	_, err := src.WriteTo(&sink)
	r.lent = nil
	switch {
	case sink.err != nil:
		return sink.total, sink.err
	case err != nil && err != errBodyEnded:
		return sink.total, err
	}
	r.ring.awaitAll()
	switch {
	case !r.srcDone:
		// The source ended inside the body: at the package begun (its
		// header read), or at the next.
		r.srcDone = true
		index := int64(r.framer.seq)
		if r.carryN > 0 {
			index--
		}
		r.endErr = packageError(index, ErrTruncated)
	case r.lentFinal != nil && r.extra:
		r.lentFinal.after = packageError(int64(r.lentFinal.seq)+1, ErrTrailingData)
	}
	r.lentFinal = nil
	return sink.total, nil
}

// lentSink is the writer a lending source's WriteTo writes to.
type lentSink struct {
	r     *Reader
	w     io.Writer
	total int64 // plaintext written to w
	err   error // w's error or a package's, reported in place of the source's
}

func (ls *lentSink) Write(b []byte) (int, error) {
	r := ls.r
	if r.srcDone {
		r.extra = r.extra || len(b) > 0
		return 0, errBodyEnded
	}
	r.lent, r.lentPos, r.starved = b, 0, false
	// Nothing opened from b may still be at work when Write returns.
	defer r.ring.awaitAll()
	for !r.srcDone && !r.starved {
		if r.ring.full() {
			n, err := r.deliverOldest(ls.w)
			ls.total += n
			if err != nil {
				ls.err = err
				return r.lentPos, err
			}
		}
		r.readLent()
	}
	if r.lentPos < len(b) {
		return r.lentPos, errBodyEnded
	}
	return len(b), nil
}

// deliverOldest writes the plaintext of the oldest package to w, or
// returns its error, and removes it from the ring.
func (r *Reader) deliverOldest(w io.Writer) (int64, error) {
	s := r.ring.oldest()
	if s.err != nil {
		return 0, packageError(int64(s.seq), s.err)
	}
	if s.after != nil {
		return 0, s.after
	}
	n, err := r.win.write(w, s.out, s.win != nil)
	r.queued -= n
	r.ring.pop()
	return int64(n), err
}

type onlyReader struct{ io.Reader }

// truncater is a destination that can be cut short, as *os.File can.
type truncater interface{ Truncate(size int64) error }

// canWriteAt reports whether WriteTo may write w at offsets: the parallel
// path before anything was read, and w an io.WriterAt, io.Seeker and
// truncater whose end is its current offset (nothing after it would be
// cut by a truncation). It returns the offset.
func (r *Reader) canWriteAt(w io.Writer) (io.WriterAt, int64, bool) {
	if r.ring == nil || r.ring.inline || r.err != nil || r.cur != nil || r.ring.count > 0 {
		return nil, 0, false
	}
	if _, ok := w.(truncater); !ok {
		return nil, 0, false
	}
	wa := writerAt(w)
	if wa == nil {
		return nil, 0, false
	}
	sk := w.(io.Seeker)
	base, err := sk.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, 0, false
	}
	end, err := sk.Seek(0, io.SeekEnd)
	if _, err2 := sk.Seek(base, io.SeekStart); err != nil || err2 != nil || end != base {
		return nil, 0, false
	}
	return wa, base, true
}

// writeToAt is WriteTo with the workers writing the plaintext to wa at
// base + 64 KiB × package index.
func (r *Reader) writeToAt(w io.Writer, wa io.WriterAt, base int64) (int64, error) {
	open := r.ring.work
	r.ring.setWork(func(s *slot) {
		open(s)
		if s.err == nil && s.after == nil {
			if _, err := wa.WriteAt(s.out, base+int64(s.seq)*maxPayload); err != nil {
				s.after = err
			}
		}
	})
	var total int64
	var err error
	for {
		if err = r.advance(); err != nil {
			break
		}
		total += int64(len(r.cur.out))
		r.off = len(r.cur.out)
	}
	if err == io.EOF {
		r.fail(err)
		err = nil
	} else {
		r.fail(err)
		// Packages after the failed one may have been written: cut them.
		if terr := w.(truncater).Truncate(base + total); terr != nil {
			err = errors.Join(err, terr)
		}
	}
	if _, serr := w.(io.Seeker).Seek(base+total, io.SeekStart); serr != nil && err == nil {
		err = serr
	}
	return total, err
}

// advance moves to the next opened package, reading ahead from src as far
// as the ring allows.
func (r *Reader) advance() error {
	if r.cur != nil {
		r.ring.pop()
		r.cur = nil
	}
	for !r.srcDone && !r.ring.full() {
		r.readPackage()
	}
	s := r.ring.oldest()
	if s == nil {
		if r.endErr != nil {
			return r.endErr
		}
		return io.EOF
	}
	if s.err != nil {
		return packageError(int64(s.seq), s.err)
	}
	if s.after != nil {
		return s.after
	}
	r.cur, r.off = s, 0
	return nil
}

// readPackage reads the next package from src into the ring's tail and
// submits it to be opened; or, at the end of the body or on a framing
// error, records how the body ends.
func (r *Reader) readPackage() {
	index := int64(r.framer.seq)
	s := r.ring.tail()
	buf := *s.buf
	// The package header is read and checked here, in order. From a
	// source that reads at offsets the payload is left to the worker
	// (openSlotAt), so that the copies in run in parallel; errors are the
	// same, at the same package.
	var err error
	if r.at != nil {
		err = readFullAt(r.at, buf[:pkgHeaderSize], r.pos)
	} else {
		_, err = io.ReadFull(r.src, buf[:pkgHeaderSize])
	}
	n := 0
	if err == nil {
		n, err = r.framer.next(pkgHeader(buf[:pkgHeaderSize]))
	}
	if err == nil && r.at == nil {
		_, err = io.ReadFull(r.src, buf[pkgHeaderSize:n])
	}
	if err != nil {
		r.endBody(index, err)
		return
	}
	if r.at != nil {
		s.off = r.pos
		r.pos += int64(n)
	}
	if r.framer.final {
		// The final package is released only once the end of the body
		// is confirmed.
		r.srcDone = true
		if r.at != nil {
			s.after = checkEnd(io.NewSectionReader(r.at, r.pos, 1), index+1)
			// Leave the source where the body ends, as reading it would.
			r.src.(io.Seeker).Seek(r.pos, io.SeekStart)
		} else {
			s.after = checkEnd(r.src, index+1)
		}
	}
	r.submit(s, n)
}

// endBody records how the body ends when package index cannot be read:
// the error reported once the packages before it are delivered.
func (r *Reader) endBody(index int64, err error) {
	r.srcDone = true
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = ErrTruncated
	}
	if err == ErrTruncated || err == ErrTrailingData || err == ErrNotAuthentic || err == ErrSpliced {
		err = packageError(index, err)
	}
	r.endErr = err
}

// submit submits the tail slot s, holding a package of n bytes that the
// framer has just accepted, to be opened.
func (r *Reader) submit(s *slot, n int) {
	s.n, s.seq, s.hi = n, r.framer.seq-1, max(s.hi, n)
	size := n - pkgHeaderSize - tagSize
	if r.placing {
		s.win = r.win.place(r.queued, size, r.queued+len(r.ring.slots)*maxPayload)
	}
	r.queued += size
	r.ring.submit(s)
}

// readLent is readPackage from the lent bytes (see Reader.lent).
func (r *Reader) readLent() {
	s := r.ring.tail()
	b := r.lent[r.lentPos:]
	if r.carry == 0 && len(b) >= pkgHeaderSize {
		index := int64(r.framer.seq)
		n, err := r.framer.next(pkgHeader(b[:pkgHeaderSize]))
		if err != nil {
			r.endBody(index, err)
			return
		}
		if n <= len(b) {
			s.lent = b[:n:n]
			r.lentPos += n
			r.lentSubmit(s, n)
			return
		}
		r.carryN = n
	}
	// Gather the package in the slot's buffer: its header first, if it
	// was cut, then the rest.
	buf := *s.buf
	if r.carryN == 0 {
		k := copy(buf[r.carry:pkgHeaderSize], b)
		r.carry += k
		r.lentPos += k
		if r.carry < pkgHeaderSize {
			r.starved = true
			return
		}
		index := int64(r.framer.seq)
		n, err := r.framer.next(pkgHeader(buf[:pkgHeaderSize]))
		if err != nil {
			r.endBody(index, err)
			return
		}
		r.carryN = n
		b = r.lent[r.lentPos:]
	}
	k := copy(buf[r.carry:r.carryN], b)
	r.carry += k
	r.lentPos += k
	if r.carry < r.carryN {
		r.starved = true
		return
	}
	n := r.carryN
	r.carry, r.carryN = 0, 0
	r.lentSubmit(s, n)
}

// lentSubmit submits a package read by readLent. A final package ends the
// body where bytes follow it in those lent (trailing data) or is held as
// lentFinal until the source has lent all it has.
func (r *Reader) lentSubmit(s *slot, n int) {
	if r.framer.final {
		r.srcDone = true
		if r.lentPos < len(r.lent) {
			s.after = packageError(int64(r.framer.seq), ErrTrailingData)
		} else {
			r.lentFinal = s
		}
	}
	r.submit(s, n)
}

func (r *Reader) openSlotAt(s *slot) {
	if err := readFullAt(r.at, (*s.buf)[pkgHeaderSize:s.n], s.off+pkgHeaderSize); err != nil {
		// The body ends (or fails) inside this package: reported in its
		// place, as the sequential path does, and nothing of it released.
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = packageError(int64(s.seq), ErrTruncated)
		}
		s.after = err
		return
	}
	r.openSlot(s)
}

// readFullAt is io.ReadFull at an offset: io.EOF when nothing is there,
// io.ErrUnexpectedEOF when only part is.
func readFullAt(ra io.ReaderAt, b []byte, off int64) error {
	n, err := ra.ReadAt(b, off)
	switch {
	case n == len(b):
		return nil
	case n == 0 && (err == io.EOF || err == nil):
		return io.EOF
	case err == nil || err == io.EOF:
		return io.ErrUnexpectedEOF
	}
	return err
}

func (r *Reader) openSlot(s *slot) {
	pkg, dst := (*s.buf)[:s.n], s.win
	if s.lent != nil {
		// Opened from the lender's bytes, which are only read, into the
		// window or the slot's own buffer; and not held after.
		pkg, s.lent = s.lent, nil
		if dst == nil {
			dst = (*s.buf)[pkgHeaderSize:]
		}
	}
	if dst != nil {
		s.out, s.err = openTo(r.aead, dst, pkg, s.seq, &s.nonce)
		return
	}
	s.out, s.err = open(r.aead, pkg, s.seq, &s.nonce)
}

// Close stops reading, waits for packages being opened and zeroes the
// buffers. It does not close the source. Reading to io.EOF or an error
// does the same; Close is for stopping early.
func (r *Reader) Close() error {
	if r.err == nil {
		r.fail(ErrClosed)
	}
	return nil
}

func (r *Reader) fail(err error) error {
	if r.err == nil {
		r.err = err
	}
	if r.ring != nil {
		r.ring.release()
		r.cur = nil
		releaseAEAD(r.aead)
		r.aead = nil
	}
	r.dec = nil
	if r.framed != nil {
		r.framed.release()
	}
	return r.err
}

// sioError maps the sequential path's errors to this package's: framing
// errors come from framedSource already located; what sio itself reports
// is a package that failed its cryptographic checks.
func (r *Reader) sioError(err error) error {
	var pe *PackageError
	var se sio.Error
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.As(err, &se):
		return packageError(r.delivered/maxPayload, ErrNotAuthentic)
	}
	return err
}

// framedSource passes the body to sio unchanged while checking DARE's
// framing itself, with the same framer and in the same order as the
// parallel path, so that both paths fail the same way on the same input
// where sio's fixed-size reads could not tell the cases apart: a body that
// ends early (ErrTruncated), a package header out of place (ErrNotAuthentic,
// ErrSpliced), and bytes after the final package (ErrTrailingData). It
// returns these as read errors at the start of the offending package, after
// sio has consumed every package before it; sio still does every
// cryptographic check. A final package is read ahead and held back until the
// end of the body is confirmed, so trailing data withholds its plaintext.
type framedSource struct {
	src     io.Reader
	fr      framer
	aead    cipher.AEAD // to authenticate a final package before blaming trailing data
	hdr     [pkgHeaderSize]byte
	hdrN    int    // header bytes to pass on
	hdrOff  int    // header bytes passed on
	rest    int    // bytes of a non-final package still to pass on from src
	final   []byte // the rest of a final package, read ahead, still to pass on
	buf     *[]byte
	pending error // returned once the bytes before it are passed on
}

func (f *framedSource) Read(p []byte) (int, error) {
	if f.hdrOff == f.hdrN && f.rest == 0 && len(f.final) == 0 {
		if f.pending == nil {
			f.pending = f.nextPackage()
		}
		if f.pending != nil {
			f.release()
			return 0, f.pending
		}
	}
	if f.hdrOff < f.hdrN {
		n := copy(p, f.hdr[f.hdrOff:f.hdrN])
		f.hdrOff += n
		return n, nil
	}
	if len(f.final) > 0 {
		n := copy(p, f.final)
		f.final = f.final[n:]
		return n, nil
	}
	n, err := f.src.Read(p[:min(len(p), f.rest)])
	f.rest -= n
	if err == io.EOF && f.rest > 0 {
		f.rest, f.pending, err = 0, packageError(int64(f.fr.seq)-1, ErrTruncated), nil
	}
	if err != nil {
		f.pending = err
	}
	return n, err
}

// nextPackage reads and checks the next package header and, for a final
// package, the rest of the package and one byte past it. It returns io.EOF
// after the final package.
func (f *framedSource) nextPackage() error {
	if f.fr.final {
		return io.EOF
	}
	index := int64(f.fr.seq)
	if _, err := io.ReadFull(f.src, f.hdr[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return packageError(index, ErrTruncated)
		}
		return err
	}
	n, err := f.fr.next(pkgHeader(f.hdr[:]))
	if err != nil {
		return packageError(index, err)
	}
	f.hdrN, f.hdrOff = pkgHeaderSize, 0
	if !f.fr.final {
		f.rest = n - pkgHeaderSize
		return nil
	}
	f.buf = bufPool.Get().(*[]byte)
	if _, err := io.ReadFull(f.src, (*f.buf)[:n-pkgHeaderSize]); err != nil {
		f.hdrN = 0
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return packageError(index, ErrTruncated)
		}
		return err
	}
	f.final = (*f.buf)[:n-pkgHeaderSize]
	if err := checkEnd(f.src, index+1); err != nil {
		if errors.Is(err, ErrTrailingData) && !f.authentic(uint32(index)) {
			return nil // pass it on: sio finds the package forged
		}
		f.final, f.hdrN = nil, 0
		return err
	}
	return nil
}

// authentic reports whether the read-ahead final package authenticates as
// package seq, opening a copy so that sio still gets the ciphertext.
func (f *framedSource) authentic(seq uint32) bool {
	pkg := make([]byte, 0, pkgHeaderSize+len(f.final))
	pkg = append(append(pkg, f.hdr[:]...), f.final...)
	var nonce [12]byte
	p, err := open(f.aead, pkg, seq, &nonce)
	clear(p)
	return err == nil
}

// release returns the read-ahead buffer; it held ciphertext only.
func (f *framedSource) release() {
	if f.buf != nil {
		bufPool.Put(f.buf)
		f.buf, f.final = nil, nil
	}
}
