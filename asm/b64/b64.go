// Package b64 is standard base64 (RFC 4648 §4, with padding), exactly as
// encoding/base64's StdEncoding encodes and decodes it, with AVX-512 VBMI
// kernels for the bulk of long inputs.
//
// Every KMS blob crosses the wire as base64, and for a 1 KiB Encrypt the two
// conversions cost encoding/base64 about 2 µs, a tenth of the request. The
// kernels take whole blocks, 48 bytes to 64 characters, in a few
// instructions each (see b64_amd64.s); encoding/base64 does the rest: the
// last partial block and padding, and, when decoding, everything from the
// first block that is not 64 plain alphabet characters, so that padding,
// the CR and LF it skips and its errors (with their offsets) are its own.
//
// The kernels run where golang.org/x/sys/cpu reports AVX-512 F, BW and VBMI
// and the build has no purego tag; elsewhere the package is encoding/base64.
package b64

import (
	"encoding/base64"
	"slices"
)

// Block sizes: the kernels turn blockBytes bytes into blockChars characters,
// at most maxBlocks blocks a call so that a long input does not hold off
// goroutine preemption (assembly cannot be preempted) for more than a few
// microseconds.
const (
	blockBytes = 48
	blockChars = 64
	maxBlocks  = 256
)

// Kernel names the implementation in use: "vbmi" or "stdlib".
func Kernel() string {
	if useVBMI {
		return "vbmi"
	}
	return "stdlib"
}

// EncodedLen is base64.StdEncoding.EncodedLen.
func EncodedLen(n int) int { return base64.StdEncoding.EncodedLen(n) }

// DecodedLen is base64.StdEncoding.DecodedLen.
func DecodedLen(n int) int { return base64.StdEncoding.DecodedLen(n) }

// AppendEncode appends the base64 of src to dst, as
// base64.StdEncoding.AppendEncode does.
func AppendEncode(dst, src []byte) []byte {
	n := EncodedLen(len(src))
	dst = slices.Grow(dst, n)
	Encode(dst[len(dst):len(dst)+n], src)
	return dst[:len(dst)+n]
}

// Encode writes the base64 of src to dst, which must hold EncodedLen(len(src))
// bytes, as base64.StdEncoding.Encode does.
func Encode(dst, src []byte) {
	for useVBMI && len(src) >= blockBytes {
		blocks := min(len(src)/blockBytes, maxBlocks)
		_ = dst[blocks*blockChars-1]
		encodeBlocks(&dst[0], &src[0], blocks, &tables)
		dst, src = dst[blocks*blockChars:], src[blocks*blockBytes:]
	}
	base64.StdEncoding.Encode(dst, src)
}

// Decode decodes src into dst, which must hold DecodedLen(len(src)) bytes,
// and returns the number of bytes written, as base64.StdEncoding.Decode
// does: the same CR and LF skipping, padding rules and errors.
func Decode(dst, src []byte) (int, error) {
	done := 0 // blocks the kernel decoded
	for useVBMI && len(src)-done*blockChars >= blockChars {
		blocks := min((len(src)-done*blockChars)/blockChars, maxBlocks)
		_ = dst[(done+blocks)*blockBytes-1]
		n := decodeBlocks(&dst[done*blockBytes], &src[done*blockChars], blocks, &tables)
		done += n
		if n < blocks {
			break
		}
	}
	// Whole blocks of alphabet characters decode the same on their own
	// as inside a longer input, so encoding/base64 takes over where the
	// kernel stopped.
	n, err := base64.StdEncoding.Decode(dst[done*blockBytes:], src[done*blockChars:])
	if e, ok := err.(base64.CorruptInputError); ok {
		err = e + base64.CorruptInputError(done*blockChars)
	}
	return done*blockBytes + n, err
}
