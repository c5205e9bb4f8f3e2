package stream

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"

	"github.com/minio/sio"
)

// Writer encrypts a stream: Write plaintext, then Close. It writes the
// header before the first body byte (or at Close for an empty stream) and
// the body as one DARE 2.0 stream under the body key. A Writer is not safe
// for concurrent use.
type Writer struct {
	dst       io.Writer
	h         *Header
	headerKey []byte // until the header is written
	size      int64  // declared plaintext size, 0 if none
	written   int64
	err       error // sticky

	// The sequential path where asm has no kernel: minio/sio's writer.
	enc io.WriteCloser

	// The ring: the parallel path, and the sequential path on an inline
	// ring where asm has a kernel.
	ring   *ring
	sealer sealer
	cur    *slot
	seq    uint32

	// At offsets (the parallel path to an io.WriterAt that is also an
	// io.Seeker, such as a file): each worker writes the package it sealed
	// where it belongs, bodyAt + seq·maxPackage, and the caller's
	// goroutine only checks the results. end is where the written stream
	// ends so far; Close leaves dst's offset there, as plain writes would.
	at     io.WriterAt
	bodyAt int64
	end    int64

	// The destination's spare capacity, where a *bytes.Buffer or
	// *bufio.Writer lends it (see window): packages are sealed straight
	// into it. queued is the length of the packages submitted and not yet
	// written.
	win    window
	queued int
}

// NewWriter returns a Writer that encrypts to dst under a new data key from
// p (or from cfg.Cache): cfg.KeyID names the KMS key, cfg.Context the
// encryption context. Close must be called to write the final package.
func NewWriter(ctx context.Context, dst io.Writer, p KeyProvider, cfg Config) (*Writer, error) {
	suite := cfg.Suite.resolve()
	if suite != AES256GCM && suite != ChaCha20Poly1305 {
		return nil, fmt.Errorf("stream: unknown cipher suite %v", cfg.Suite)
	}
	dk, blob, arn, err := cfg.generate(ctx, p)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	w := &Writer{dst: dst, size: cfg.Size, h: &Header{Suite: suite, KeyARN: arn, Blob: blob, Context: cfg.Context}}
	rand.Read(w.h.MessageID[:])
	if err := w.h.check(); err != nil {
		return nil, err
	}
	if w.headerKey, err = deriveKey(dk, &w.h.MessageID, labelHeaderKey); err != nil {
		return nil, err
	}
	bodyKey, err := w.h.BodyKey(dk)
	if err != nil {
		return nil, err
	}
	defer clear(bodyKey)

	if n := workers(cfg.Workers); n == 1 && viaSIO(&cfg, suite) {
		w.enc, err = sio.EncryptWriter(onlyWriter{dst}, sio.Config{
			MinVersion:   sio.Version20,
			MaxVersion:   sio.Version20,
			CipherSuites: []byte{suite.dareID()},
			Key:          bodyKey,
		})
	} else {
		w.sealer.cipher = suite.dareID()
		rand.Read(w.sealer.nonce[:])
		w.sealer.aead, err = newAEAD(suite, bodyKey, cfg.NewAESGCM)
		w.ring = newRing(n, w.sealSlot)
		if n > 1 {
			w.at = writerAt(dst)
		}
		if w.at == nil {
			w.win = newWindow(dst)
		}
	}
	if err != nil {
		return nil, err
	}
	return w, nil
}

// writerAt returns dst as an io.WriterAt if it is one that can be written
// at offsets from its current one: it is also an io.Seeker that knows its
// offset (a pipe does not), and an empty WriteAt succeeds. An *os.File
// whose descriptor has O_APPEND, however it was opened (a shell's >> too),
// refuses every WriteAt: Linux's pwrite would append.
func writerAt(dst io.Writer) io.WriterAt {
	wa, ok := dst.(io.WriterAt)
	if !ok {
		return nil
	}
	sk, ok := dst.(io.Seeker)
	if !ok {
		return nil
	}
	pos, err := sk.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil
	}
	if _, err := wa.WriteAt(nil, pos); err != nil {
		return nil
	}
	return wa
}

// onlyWriter hides a Close method: sio's writer closes its destination, and
// the caller's file is the caller's to close.
type onlyWriter struct{ io.Writer }

// Header returns the stream's header. Its MAC is set once the header is
// written.
func (w *Writer) Header() *Header { return w.h }

// writeHeader writes the header, the first bytes of the stream.
func (w *Writer) writeHeader(empty bool) error {
	w.h.Empty = empty
	mac, err := w.h.mac(w.headerKey)
	clear(w.headerKey)
	w.headerKey = nil
	if err != nil {
		return err
	}
	w.h.MAC = mac
	b, err := w.h.Marshal()
	if err != nil {
		return err
	}
	if w.at != nil {
		// Where the stream starts: dst's offset now, which nothing but
		// this Writer should move until Close.
		pos, err := w.dst.(io.Seeker).Seek(0, io.SeekCurrent)
		if err != nil {
			return err
		}
		w.bodyAt = pos + int64(len(b))
		w.end = w.bodyAt
	}
	_, err = w.win.write(w.dst, b, false)
	return err
}

// Write encrypts p. It returns an error if p would exceed Config.Size, or
// if writing to the destination failed; errors are sticky.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if w.size > 0 && int64(len(p)) > w.size-w.written {
		return 0, w.fail(fmt.Errorf("%w: %d bytes declared", ErrSizeExceeded, w.size))
	}
	if w.headerKey != nil {
		if err := w.writeHeader(false); err != nil {
			return 0, w.fail(err)
		}
	}
	var n int
	var err error
	if w.enc != nil {
		n, err = w.enc.Write(p)
	} else {
		n, err = w.writeParallel(p)
	}
	w.written += int64(n)
	if err != nil {
		return n, w.fail(err)
	}
	return n, nil
}

// writeParallel fills packages from p. Whole packages that are not the
// last of p are sealed straight from p, without a copy; p is the caller's
// again only when they are sealed, so Write waits for that before it
// returns (writing them out may come later).
func (w *Writer) writeParallel(p []byte) (int, error) {
	n := 0
	borrowed := false
	defer func() {
		if borrowed {
			w.ring.awaitAll()
		}
	}()
	for len(p) > 0 {
		if w.cur == nil && len(p) > maxPayload {
			if err := w.nextSlot(); err != nil {
				return n, err
			}
			w.cur.src, w.cur.n = p[:maxPayload:maxPayload], maxPayload
			borrowed = true
			// Sealed into the destination if it lends room for it and
			// for the rest of p (one window for the whole Write).
			if err := w.submitPlaced(false, sealedSize(len(p))); err != nil {
				return n, err
			}
			p = p[maxPayload:]
			n += maxPayload
			continue
		}
		if w.cur == nil {
			if err := w.nextSlot(); err != nil {
				return n, err
			}
		}
		// A full package is sealed only once more plaintext arrives: if
		// Close comes first, it is the final package.
		if w.cur.n == maxPayload {
			if err := w.submit(false); err != nil {
				return n, err
			}
			continue
		}
		c := copy((*w.cur.buf)[pkgHeaderSize+w.cur.n:pkgHeaderSize+maxPayload], p)
		w.cur.n += c
		w.cur.hi = max(w.cur.hi, pkgHeaderSize+w.cur.n)
		p = p[c:]
		n += c
	}
	// The window's rule: its regions are written before Write returns.
	for w.win.placed > 0 {
		if err := w.flushOldest(true); err != nil {
			return n, err
		}
	}
	return n, nil
}

// ReadFrom encrypts everything r yields, reading straight into package
// buffers. It does not close the Writer.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if w.enc != nil || w.err != nil || w.size > 0 {
		return io.Copy(onlyWriter{w}, r)
	}
	var total int64
	for {
		if w.cur == nil {
			if err := w.nextSlot(); err != nil {
				return total, w.fail(err)
			}
		}
		if w.cur.n == maxPayload {
			// Seal the full package only if more plaintext follows.
			var one [1]byte
			n, err := io.ReadFull(r, one[:])
			if err == io.EOF {
				return total, nil
			} else if err != nil {
				return total, w.fail(err)
			}
			if err := w.submit(false); err != nil {
				return total, err
			}
			if err := w.nextSlot(); err != nil {
				return total, w.fail(err)
			}
			(*w.cur.buf)[pkgHeaderSize] = one[0]
			w.cur.n, total, w.written = n, total+int64(n), w.written+int64(n)
			w.cur.hi = max(w.cur.hi, pkgHeaderSize+w.cur.n)
		}
		n, err := io.ReadAtLeast(r, (*w.cur.buf)[pkgHeaderSize+w.cur.n:pkgHeaderSize+maxPayload], 1)
		if n > 0 && w.headerKey != nil {
			if err := w.writeHeader(false); err != nil {
				return total, w.fail(err)
			}
		}
		w.cur.n += n
		w.cur.hi = max(w.cur.hi, pkgHeaderSize+w.cur.n)
		total += int64(n)
		w.written += int64(n)
		if err == io.EOF {
			return total, nil
		} else if err != nil {
			return total, w.fail(err)
		}
	}
}

// nextSlot makes room for a package, writing out the oldest if the ring
// is full, and makes it current.
func (w *Writer) nextSlot() error {
	if w.ring.full() {
		if err := w.flushOldest(true); err != nil {
			return err
		}
	}
	w.cur = w.ring.tail()
	return nil
}

// submit hands the current package to a worker and writes out any sealed
// packages at the head of the ring. On the inline ring the package is
// sealed into the destination's window where it lends room: it is written
// out before submit returns.
func (w *Writer) submit(final bool) error {
	if w.ring.inline {
		return w.submitPlaced(final, maxPackage)
	}
	return w.submitPlaced(final, 0)
}

// sealedSize is the length of the packages n bytes of plaintext make.
func sealedSize(n int) int {
	return n + (n+maxPayload-1)/maxPayload*(pkgHeaderSize+tagSize)
}

// submitPlaced is submit, placing the package in the destination's window
// if reserve > 0: the caller then writes it out before returning to its
// own caller (the window's rule), and reserve is the room the window
// should have for the packages it expects to place meanwhile.
func (w *Writer) submitPlaced(final bool, reserve int) error {
	if w.seq == 1<<32-1 && !final {
		return fmt.Errorf("stream: more than 2^32 packages (256 TiB): DARE's sequence number would wrap")
	}
	s := w.cur
	s.seq, s.final = w.seq, final
	s.off = w.bodyAt + int64(w.seq)*maxPackage // every package but the last is full
	size := pkgHeaderSize + s.n + tagSize
	if reserve > 0 {
		s.win = w.win.place(w.queued, size, w.queued+reserve)
		if overlaps(s.win, s.src) {
			// The caller's plaintext lies in the destination's free
			// capacity: seal it through the slot's buffer.
			w.win.placed--
			s.win = nil
		}
	}
	w.queued += size
	w.seq++
	w.cur = nil
	w.ring.submit(s)
	for w.ring.count > 0 {
		if err := w.flushOldest(false); err != nil || w.ring.oldestIfDone() == nil {
			return err
		}
	}
	return nil
}

// sealSlot runs on a worker: it seals the slot's package and, at offsets,
// writes it.
func (w *Writer) sealSlot(s *slot) {
	switch {
	case s.src != nil:
		dst := *s.buf
		if s.win != nil {
			dst = s.win
		}
		s.out = w.sealer.sealFrom(dst, s.src, s.seq, s.final, &s.nonce)
		s.src = nil
	case s.win != nil:
		s.out = w.sealer.sealFrom(s.win, (*s.buf)[pkgHeaderSize:pkgHeaderSize+s.n], s.seq, s.final, &s.nonce)
	default:
		s.out = w.sealer.seal(*s.buf, s.n, s.seq, s.final, &s.nonce)
	}
	if w.at != nil {
		_, s.err = w.at.WriteAt(s.out, s.off)
	}
}

// flushOldest writes the oldest sealed package to dst; if wait is false it
// returns at once when that package is not sealed yet.
func (w *Writer) flushOldest(wait bool) error {
	var s *slot
	if wait {
		s = w.ring.oldest()
	} else {
		s = w.ring.oldestIfDone()
	}
	if s == nil {
		return nil
	}
	var err error
	if w.at != nil {
		err = s.err
		w.end = max(w.end, s.off+int64(len(s.out)))
	} else {
		_, err = w.win.write(w.dst, s.out, s.win != nil)
	}
	w.queued -= len(s.out)
	w.ring.pop()
	return err
}

// Close seals the final package, writes everything still buffered and
// zeroes the buffers. It does not close the destination. An empty stream
// is a header with the empty flag and no body.
func (w *Writer) Close() error {
	if w.err != nil {
		if w.err == ErrClosed {
			return nil
		}
		return w.err
	}
	var err error
	switch {
	case w.headerKey != nil:
		err = w.writeHeader(true)
		if w.enc != nil {
			w.enc.Close() // nothing was written: it only recycles its buffer
		}
	case w.enc != nil:
		err = w.enc.Close()
	default:
		// Close writes every package out: the final one may be placed.
		if err = w.submitPlaced(true, pkgHeaderSize+w.cur.n+tagSize); err == nil {
			for w.ring.count > 0 && err == nil {
				err = w.flushOldest(true)
			}
		}
		if err == nil && w.at != nil {
			_, err = w.dst.(io.Seeker).Seek(w.end, io.SeekStart)
		}
	}
	if err != nil {
		return w.fail(err)
	}
	w.release()
	w.err = ErrClosed
	return nil
}

func (w *Writer) release() {
	clear(w.headerKey)
	w.headerKey = nil
	if w.ring != nil {
		w.ring.release()
	}
	releaseAEAD(w.sealer.aead)
	w.sealer.aead = nil
}

func (w *Writer) fail(err error) error {
	w.err = err
	w.release()
	return err
}
