package stream

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
)

// DARE 2.0, as minio/sio writes it. A body is a sequence of packages:
//
//	header   16 bytes: version 0x20, cipher ID, payload length - 1 (uint16
//	         little endian), 12-byte nonce whose first bit flags the final
//	         package
//	sealed   payload (1..65536 bytes) and 16-byte tag
//
// Every package but the last carries exactly 64 KiB. All packages share the
// stream's random nonce; package i is sealed with that nonce (final bit
// included) whose last four bytes are XORed with i, little endian, and with
// the header's first four bytes as additional data. A sequence number that
// does not match its position fails the tag (reordering), the final flag
// is authenticated (truncation), and a nonce other than the first package's
// marks a package from another stream (splicing).
const (
	dareVersion   = 0x20
	pkgHeaderSize = 16
	maxPayload    = 1 << 16
	tagSize       = 16
	maxPackage    = pkgHeaderSize + maxPayload + tagSize
	finalFlag     = 0x80
)

// pkgHeader gives zero-copy access to a package header.
type pkgHeader []byte

func (h pkgHeader) version() byte { return h[0] }
func (h pkgHeader) cipher() byte  { return h[1] }
func (h pkgHeader) length() int   { return int(binary.LittleEndian.Uint16(h[2:4])) + 1 }
func (h pkgHeader) final() bool   { return h[4]&finalFlag != 0 }
func (h pkgHeader) nonce() []byte { return h[4:pkgHeaderSize] }
func (h pkgHeader) ad() []byte    { return h[:4] }

// packageNonce sets n to the AEAD nonce of package seq. The nonce is passed
// to a cipher.AEAD, through which it escapes: callers keep it in memory that
// lives with the package (a slot), so that sealing and opening a package
// allocates nothing.
func packageNonce(n *[12]byte, h pkgHeader, seq uint32) {
	copy(n[:], h.nonce())
	binary.LittleEndian.PutUint32(n[8:], binary.LittleEndian.Uint32(n[8:])^seq)
}

// sealer seals the packages of one stream. It is safe for concurrent use
// when its AEAD is (every AEAD this package builds is).
type sealer struct {
	aead   cipher.AEAD
	cipher byte
	nonce  [12]byte
}

// seal seals the n payload bytes at buf[pkgHeaderSize:] in place as package
// seq and returns the package, a prefix of buf. nonce is scratch space.
func (s *sealer) seal(buf []byte, n int, seq uint32, final bool, nonce *[12]byte) []byte {
	if n < 1 || n > maxPayload || len(buf) < pkgHeaderSize+n+tagSize {
		panic("stream: internal error: package payload out of range")
	}
	return s.sealFrom(buf, buf[pkgHeaderSize:pkgHeaderSize+n], seq, final, nonce)
}

// sealFrom seals payload as package seq into buf, which must not overlap
// payload unless payload sits exactly at buf[pkgHeaderSize:], and returns
// the package, a prefix of buf.
func (s *sealer) sealFrom(buf, payload []byte, seq uint32, final bool, nonce *[12]byte) []byte {
	n := len(payload)
	if n < 1 || n > maxPayload || len(buf) < pkgHeaderSize+n+tagSize {
		panic("stream: internal error: package payload out of range")
	}
	h := pkgHeader(buf[:pkgHeaderSize])
	h[0] = dareVersion
	h[1] = s.cipher
	binary.LittleEndian.PutUint16(h[2:4], uint16(n-1))
	copy(h[4:], s.nonce[:])
	if final {
		h[4] |= finalFlag
	} else {
		h[4] &^= finalFlag
	}
	packageNonce(nonce, h, seq)
	return s.aead.Seal(buf[:pkgHeaderSize], nonce[:], payload, h.ad())
}

// framer checks the header of each package as it arrives, in order: the
// part of DARE's checks that needs the stream's state.
type framer struct {
	cipher byte
	ref    [12]byte // the first package's nonce, final bit cleared
	seq    uint32
	final  bool
}

// next checks the header of the next package and returns its total length.
// Any inconsistency is a modified package: the header is authenticated as
// additional data and through the nonce.
func (f *framer) next(h pkgHeader) (int, error) {
	if f.final {
		return 0, ErrTrailingData
	}
	if h.version() != dareVersion || h.cipher() != f.cipher {
		return 0, ErrNotAuthentic
	}
	if !h.final() && h.length() != maxPayload {
		return 0, ErrNotAuthentic
	}
	if f.seq == 0 {
		copy(f.ref[:], h.nonce())
		f.ref[0] &^= finalFlag
	}
	want := f.ref
	if h.final() {
		want[0] |= finalFlag
	}
	if subtle.ConstantTimeCompare(h.nonce(), want[:]) != 1 {
		return 0, ErrSpliced
	}
	f.final = h.final()
	f.seq++
	if f.seq == 0 {
		return 0, ErrNotAuthentic // 2^32 packages: DARE's sequence number would wrap
	}
	return pkgHeaderSize + h.length() + tagSize, nil
}

// open authenticates and decrypts pkg, a whole package whose header framer
// accepted as package seq, in place, and returns the plaintext.
func open(aead cipher.AEAD, pkg []byte, seq uint32, nonce *[12]byte) ([]byte, error) {
	return openTo(aead, pkg[pkgHeaderSize:pkgHeaderSize], pkg, seq, nonce)
}

// openTo is open with the plaintext written to dst[:0] instead, which must
// have room for it and either not overlap pkg or be its payload.
func openTo(aead cipher.AEAD, dst, pkg []byte, seq uint32, nonce *[12]byte) ([]byte, error) {
	h := pkgHeader(pkg[:pkgHeaderSize])
	packageNonce(nonce, h, seq)
	p, err := aead.Open(dst[:0], nonce[:], pkg[pkgHeaderSize:], h.ad())
	if err != nil {
		return nil, ErrNotAuthentic
	}
	return p, nil
}

func constantTimeEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
