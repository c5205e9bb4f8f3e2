package stream

import (
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
// io.EOF, after the plaintext of the packages before it has been returned.
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

	// The sequential path: minio/sio's reader.
	dec       io.Reader
	framed    *framedSource
	delivered int64

	// The parallel path.
	ring    *ring
	aead    cipher.AEAD
	framer  framer
	srcDone bool  // no more packages will be read from src
	endErr  error // reported once the ring drains; nil means io.EOF
	cur     *slot
	off     int
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
	if n := workers(cfg.Workers); n == 1 {
		r.framed = &framedSource{src: src}
		r.dec, err = sio.DecryptReader(r.framed, sio.Config{
			MinVersion:   sio.Version20,
			MaxVersion:   sio.Version20,
			CipherSuites: []byte{h.Suite.dareID()},
			Key:          bodyKey,
		})
	} else {
		r.aead, err = newAEAD(h.Suite, bodyKey, cfg.NewAESGCM)
		r.framer.cipher = h.Suite.dareID()
		r.ring = newRing(n)
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
	return n, nil
}

// WriteTo implements io.WriterTo: io.Copy hands each package's plaintext
// straight to w.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	if r.dec != nil {
		return io.CopyBuffer(w, onlyReader{r}, make([]byte, maxPayload))
	}
	var total int64
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
		n, err := w.Write(r.cur.out[r.off:])
		r.off += n
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

type onlyReader struct{ io.Reader }

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
	r.cur, r.off = s, 0
	return nil
}

// readPackage reads the next package from src into the ring's tail and
// submits it to be opened; or, at the end of the body or on a framing
// error, records how the body ends.
func (r *Reader) readPackage() {
	index := int64(r.framer.seq)
	stop := func(err error) {
		r.srcDone = true
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = ErrTruncated
		}
		if err == ErrTruncated || err == ErrTrailingData || err == ErrNotAuthentic || err == ErrSpliced {
			err = packageError(index, err)
		}
		r.endErr = err
	}
	s := r.ring.tail()
	buf := *s.buf
	if _, err := io.ReadFull(r.src, buf[:pkgHeaderSize]); err != nil {
		stop(err)
		return
	}
	n, err := r.framer.next(pkgHeader(buf[:pkgHeaderSize]))
	if err != nil {
		stop(err)
		return
	}
	if _, err := io.ReadFull(r.src, buf[pkgHeaderSize:n]); err != nil {
		stop(err)
		return
	}
	s.n, s.seq, s.hi = n, r.framer.seq-1, max(s.hi, n)
	r.ring.submit(s, r.openSlot)
	if r.framer.final {
		r.srcDone = true
		r.endErr = checkEnd(r.src, index+1)
	}
}

func (r *Reader) openSlot(s *slot) {
	s.out, s.err = open(r.aead, (*s.buf)[:s.n], s.seq)
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
	}
	r.dec = nil
	return r.err
}

// sioError maps minio/sio's errors to this package's.
func (r *Reader) sioError(err error) error {
	var se sio.Error
	if !errors.As(err, &se) {
		if errors.Is(err, ErrTrailingData) {
			return packageError((r.delivered+maxPayload-1)/maxPayload, ErrTrailingData)
		}
		return err
	}
	index := r.delivered / maxPayload
	switch se.Error() {
	case "sio: unexpected EOF":
		return packageError(index, ErrTruncated)
	case "sio: header nonce mismatch":
		return packageError(index, ErrSpliced)
	case "sio: invalid payload size":
		if r.framed.cut {
			return packageError(index, ErrTruncated) // a short last read: the package was cut
		}
	}
	return packageError(index, ErrNotAuthentic)
}

// framedSource passes the body to sio unchanged but follows DARE's
// framing as it goes, so that the sequential path tells apart what sio's
// fixed-size reads cannot: a body cut inside a package (cut) and bytes after
// a final package (reported as ErrTrailingData where sio would read them as
// part of the final package).
type framedSource struct {
	src     io.Reader
	hdr     [pkgHeaderSize]byte
	hdrN    int   // header bytes read from src
	hdrOff  int   // header bytes passed on
	rest    int   // bytes of the package after its header still to pass on
	final   bool  // the current package says it is the last
	cut     bool  // src ended inside a package
	pending error // returned once the bytes before it are passed on
}

func (f *framedSource) Read(p []byte) (int, error) {
	if f.hdrOff == f.hdrN && f.rest == 0 {
		if f.pending != nil {
			return 0, f.pending
		}
		if f.final {
			f.pending = io.EOF
			if err := checkEnd(f.src, 0); err != nil {
				f.pending = err
				if errors.Is(err, ErrTrailingData) {
					f.pending = ErrTrailingData
				}
			}
			return 0, f.pending
		}
		n, err := io.ReadFull(f.src, f.hdr[:])
		f.hdrN, f.hdrOff = n, 0
		switch err {
		case nil:
			h := pkgHeader(f.hdr[:])
			f.rest, f.final = h.length()+tagSize, h.final()
		case io.ErrUnexpectedEOF:
			f.cut, f.pending = true, io.EOF
		default:
			f.pending = err
			return 0, err
		}
	}
	if f.hdrOff < f.hdrN {
		n := copy(p, f.hdr[f.hdrOff:f.hdrN])
		f.hdrOff += n
		return n, nil
	}
	n, err := f.src.Read(p[:min(len(p), f.rest)])
	f.rest -= n
	if err == io.EOF {
		if f.rest > 0 {
			f.cut = true
		}
		f.rest, f.pending = 0, io.EOF
		err = nil
	}
	if err != nil {
		f.pending = err
	}
	return n, err
}
