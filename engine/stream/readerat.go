package stream

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ReaderAt decrypts any range of a stream held in an io.ReaderAt (a file,
// an object store range reader). Each ReadAt reads and authenticates only
// the packages its range touches, opening them on up to Config.Workers
// goroutines. It is safe for concurrent use.
//
// NewReaderAt authenticates the header and the last package, so Size is the
// authentic plaintext length: truncation and trailing data are detected
// before any ReadAt. Every byte ReadAt returns comes from a package whose
// tag verified at its position; a package that fails gives ErrNotAuthentic
// or ErrSpliced (in a *PackageError) and n counts only the bytes before it.
type ReaderAt struct {
	src      io.ReaderAt
	h        *Header
	body     int64 // offset of the body in src
	size     int64 // plaintext size
	packages int64
	aead     cipher.AEAD
	cipher   byte
	ref      [12]byte // the stream nonce, final bit cleared
	workers  int
}

// NewReaderAt returns a ReaderAt for the stream of size bytes in src.
func NewReaderAt(ctx context.Context, src io.ReaderAt, size int64, p KeyProvider, cfg Config) (*ReaderAt, error) {
	h, err := ReadHeader(io.NewSectionReader(src, 0, size))
	if err != nil {
		return nil, err
	}
	bodyKey, err := cfg.openHeader(ctx, p, h)
	if err != nil {
		return nil, err
	}
	defer clear(bodyKey)
	r := &ReaderAt{src: src, h: h, body: int64(h.Size()), workers: workers(cfg.Workers), cipher: h.Suite.dareID()}
	bodyLen := size - r.body
	if h.Empty {
		if bodyLen != 0 {
			return nil, packageError(0, ErrTrailingData)
		}
		return r, nil
	}
	full, rem := bodyLen/maxPackage, bodyLen%maxPackage
	switch {
	case bodyLen == 0:
		return nil, packageError(0, ErrTruncated)
	case rem == 0:
		r.packages, r.size = full, full*maxPayload
	case rem <= pkgHeaderSize+tagSize:
		return nil, packageError(full, ErrTruncated)
	default:
		r.packages, r.size = full+1, full*maxPayload+rem-pkgHeaderSize-tagSize
	}
	if r.packages > 1<<32 {
		return nil, packageError(1<<32, ErrTrailingData)
	}
	if r.aead, err = newAEAD(h.Suite, bodyKey, cfg.NewAESGCM); err != nil {
		return nil, err
	}
	// Package 0 sets the stream nonce every other package must carry, so
	// it is authenticated first; the last package must be the final one,
	// which catches a body cut at a package boundary and a final package
	// followed by more.
	buf := bufPool.Get().(*[]byte)
	defer func() { clear(*buf); bufPool.Put(buf) }()
	if _, err := r.src.ReadAt((*buf)[:pkgHeaderSize], r.body); err != nil {
		return nil, fmt.Errorf("stream: read package 0: %w", err)
	}
	copy(r.ref[:], pkgHeader(*buf).nonce())
	r.ref[0] &^= finalFlag
	var nonce [12]byte
	for _, i := range []int64{0, r.packages - 1} {
		if _, err := r.openPackage(*buf, i, &nonce); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Header returns the stream's authenticated header.
func (r *ReaderAt) Header() *Header { return r.h }

// Size is the plaintext length.
func (r *ReaderAt) Size() int64 { return r.size }

// openPackage reads package i into buf, checks it against its position and
// returns its plaintext (in buf). The package is authenticated before its
// position is judged, so a forged header field reads as ErrNotAuthentic and
// only a genuine final package out of place reads as truncation or trailing
// data, as on the streaming paths.
func (r *ReaderAt) openPackage(buf []byte, i int64, nonce *[12]byte) ([]byte, error) {
	last := i == r.packages-1
	avail := maxPackage
	if last {
		avail = int(r.size-i*maxPayload) + pkgHeaderSize + tagSize
	}
	pkg := buf[:avail]
	if _, err := r.src.ReadAt(pkg, r.body+i*maxPackage); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, packageError(i, ErrTruncated) // src shrank under us
		}
		return nil, err
	}
	h := pkgHeader(pkg[:pkgHeaderSize])
	if h.version() != dareVersion || h.cipher() != r.cipher || (!h.final() && h.length() != maxPayload) {
		return nil, packageError(i, ErrNotAuthentic)
	}
	if i > 0 {
		want := r.ref
		if h.final() {
			want[0] |= finalFlag
		}
		if !constantTimeEqual(h.nonce(), want[:]) {
			return nil, packageError(i, ErrSpliced)
		}
	}
	claim := pkgHeaderSize + h.length() + tagSize
	if claim > avail {
		return nil, packageError(i, ErrTruncated)
	}
	p, err := open(r.aead, pkg[:claim], uint32(i), nonce)
	switch {
	case err != nil:
		return nil, packageError(i, err)
	case h.final() && (!last || claim < avail):
		return nil, packageError(i+1, ErrTrailingData)
	case !h.final() && last:
		return nil, packageError(i+1, ErrTruncated)
	}
	return p, nil
}

// ReadAt implements io.ReaderAt.
func (r *ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("stream: ReadAt: negative offset")
	}
	if off >= r.size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), r.size)
	first, last := off/maxPayload, (end-1)/maxPayload
	count := last - first + 1

	// Packages go to workers in order; on failure n stops at the first
	// failed package, and a failure cancels packages not yet started.
	errs := make([]error, count)
	var next int64
	var mu sync.Mutex
	var failed bool
	var wg sync.WaitGroup
	for range min(int64(r.workers), count) {
		wg.Go(func() {
			buf := bufPool.Get().(*[]byte)
			defer func() { clear(*buf); bufPool.Put(buf) }()
			var nonce [12]byte // one per worker, not per package
			for {
				mu.Lock()
				j := next
				next++
				stop := failed
				mu.Unlock()
				if j >= count || stop {
					return
				}
				i := first + j
				plain, err := r.openPackage(*buf, i, &nonce)
				if err != nil {
					errs[j] = err
					mu.Lock()
					failed = true
					mu.Unlock()
					continue
				}
				lo := max(off, i*maxPayload)
				hi := min(end, i*maxPayload+int64(len(plain)))
				copy(p[lo-off:hi-off], plain[lo-i*maxPayload:hi-i*maxPayload])
			}
		})
	}
	wg.Wait()
	for j, err := range errs {
		if err != nil {
			return int(max(off, (first+int64(j))*maxPayload) - off), err
		}
	}
	if failed {
		// A package after a failure was skipped: report the failure's
		// position as the end, which errs already did; unreachable.
		panic("stream: internal error: ReadAt failed without an error")
	}
	n := int(end - off)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
