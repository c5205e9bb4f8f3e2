package asm

import (
	"crypto/cipher"
	"errors"
	"strconv"
	"unsafe"
)

const (
	nonceSize = 12
	tagSize   = 16
	blockSize = 16

	// maxPlaintext is GCM's limit for a 12-byte nonce: 2^32-2 blocks, so
	// that the 32-bit block counter, which starts at 2, never wraps.
	maxPlaintext = (1<<32 - 2) * blockSize

	// chunkSize bounds the bytes one assembly call processes. Assembly is
	// not asynchronously preemptible; at 20 GB/s a chunk takes about 50 µs.
	// It is a multiple of 256 so that every chunk but the last ends on a
	// whole 16-block group.
	chunkSize = 1 << 20
)

// errOpen is the one error Open returns, whatever went wrong.
var errOpen = errors.New("cipher: message authentication failed")

// kernel identifies an implementation. Larger is faster.
type kernel uint8

const (
	kernelNone kernel = iota
	kernelStdlib
	kernelVAES256
	kernelVAES512
)

var kernelNames = [...]string{
	kernelNone:    "none",
	kernelStdlib:  "stdlib",
	kernelVAES256: "vaes256",
	kernelVAES512: "vaes512",
}

func (k kernel) String() string { return kernelNames[k] }

// Kernel names the implementation New uses on this CPU: "vaes512",
// "vaes256" or "stdlib".
func Kernel() string { return best.String() }

// Kernels lists every implementation this CPU can run, fastest first.
func Kernels() []string {
	var names []string
	for k := best; k > kernelNone; k-- {
		if available(k) {
			names = append(names, k.String())
		}
	}
	return names
}

// KeySizeError is returned for a key that is neither 16 nor 32 bytes long.
type KeySizeError int

func (k KeySizeError) Error() string {
	return "asm: invalid AES-GCM key size " + strconv.Itoa(int(k)) + " (want 16 or 32 bytes)"
}

// ErrKernelUnavailable is returned by NewKernel for an implementation that
// does not exist or that this CPU cannot run.
var ErrKernelUnavailable = errors.New("asm: AES-GCM kernel unavailable on this CPU")

// GCM is an AES-GCM context with a 12-byte nonce and a 16-byte tag. The zero
// value is unusable until Init; after Init, *GCM implements cipher.AEAD and
// is safe for concurrent use. Copying an initialised GCM copies its key.
type GCM struct {
	// ks comes first: an allocation of a GCM then starts the hash-key table
	// on the allocation's alignment.
	ks     keySchedule
	kernel kernel
	// named is set when the caller chose the kernel (NewKernel); otherwise
	// the slow paths check that nothing faster was available.
	named bool
	std   cipher.AEAD // kernelStdlib only
}

var _ cipher.AEAD = (*GCM)(nil)

// New returns an AES-GCM AEAD (12-byte nonce, 16-byte tag) for a 16- or
// 32-byte key using the fastest kernel.
func New(key []byte) (cipher.AEAD, error) {
	g := new(GCM)
	if err := g.Init(key); err != nil {
		return nil, err
	}
	return g, nil
}

// NewKernel is New with the implementation named rather than chosen, so that
// tests, fuzzers and benchmarks outside this package can exercise every
// kernel the CPU runs (see Kernels). Production code calls New.
func NewKernel(name string, key []byte) (cipher.AEAD, error) {
	for k := kernelStdlib; k <= kernelVAES512; k++ {
		if k.String() == name && available(k) {
			g := new(GCM)
			if err := g.init(key, k); err != nil {
				return nil, err
			}
			g.named = true
			return g, nil
		}
	}
	return nil, ErrKernelUnavailable
}

// Init sets g up for key, which must be 16 or 32 bytes, with the fastest
// kernel. With a VAES kernel it does not allocate; on the stdlib kernel it
// allocates what crypto/aes and crypto/cipher allocate.
func (g *GCM) Init(key []byte) error {
	g.named = false
	return g.init(key, best)
}

func (g *GCM) init(key []byte, k kernel) error {
	if len(key) != 16 && len(key) != 32 {
		g.Reset()
		return KeySizeError(len(key))
	}
	g.kernel = k
	g.std = nil
	if k == kernelStdlib {
		std, err := newStdlib(key)
		if err != nil {
			g.Reset()
			return err
		}
		g.std = std
		return nil
	}
	g.initVAES(key)
	return nil
}

// Reset zeroes all key material in g and leaves it unusable until Init. The
// stdlib kernel's key lives inside crypto/aes, which cannot be zeroed; Reset
// drops the reference to it.
func (g *GCM) Reset() {
	clear(unsafe.Slice((*byte)(unsafe.Pointer(&g.ks)), unsafe.Sizeof(g.ks)))
	g.kernel = kernelNone
	g.named = false
	g.std = nil
}

// NonceSize returns 12.
func (g *GCM) NonceSize() int { return nonceSize }

// Overhead returns 16, the tag size.
func (g *GCM) Overhead() int { return tagSize }

// Seal encrypts and authenticates plaintext, authenticates additionalData
// and appends the result to dst, as cipher.AEAD specifies. It panics if the
// nonce is not 12 bytes long, if plaintext is longer than GCM allows, or if
// the output overlaps plaintext other than exactly or overlaps
// additionalData at all.
func (g *GCM) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	if len(nonce) != nonceSize {
		panic("crypto/cipher: incorrect nonce length given to GCM")
	}
	if uint64(len(plaintext)) > maxPlaintext {
		panic("crypto/cipher: message too large for GCM")
	}
	ret, out := sliceForAppend(dst, len(plaintext)+tagSize)
	if inexactOverlap(out, plaintext) {
		panic("crypto/cipher: invalid buffer overlap of output and input")
	}
	if anyOverlap(out, additionalData) {
		panic("crypto/cipher: invalid buffer overlap of output and additional data")
	}
	switch g.kernel {
	case kernelVAES512, kernelVAES256:
		g.sealVAES(out, nonce, plaintext, additionalData)
	case kernelStdlib:
		g.checkStdlibExpected()
		g.std.Seal(out[:0], nonce, plaintext, additionalData)
	default:
		panic("asm: GCM used before Init")
	}
	return ret
}

// Open authenticates and decrypts ciphertext, authenticates additionalData
// and, on success, appends the plaintext to dst, as cipher.AEAD specifies.
// Every failure returns the same error and leaves no plaintext in dst's
// spare capacity. It panics for a nonce that is not 12 bytes long and for
// the same overlaps Seal does.
func (g *GCM) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	if len(nonce) != nonceSize {
		panic("crypto/cipher: incorrect nonce length given to GCM")
	}
	if g.kernel == kernelNone {
		panic("asm: GCM used before Init")
	}
	if len(ciphertext) < tagSize || uint64(len(ciphertext)) > maxPlaintext+tagSize {
		return nil, errOpen
	}
	ret, out := sliceForAppend(dst, len(ciphertext)-tagSize)
	if inexactOverlap(out, ciphertext) {
		panic("crypto/cipher: invalid buffer overlap of output and input")
	}
	if anyOverlap(out, additionalData) {
		panic("crypto/cipher: invalid buffer overlap of output and additional data")
	}
	var ok bool
	if g.kernel == kernelStdlib {
		g.checkStdlibExpected()
		_, err := g.std.Open(out[:0], nonce, ciphertext, additionalData)
		ok = err == nil
	} else {
		ok = g.openVAES(out, nonce, ciphertext, additionalData)
	}
	if !ok {
		// The VAES kernels decrypt before the tag is checked.
		clear(out)
		return nil, errOpen
	}
	return ret, nil
}

// checkStdlibExpected is the guard against a dispatch bug: the stdlib kernel
// must not run where a faster one is available unless the caller named it.
func (g *GCM) checkStdlibExpected() {
	if !g.named && best != kernelStdlib {
		panic("asm: internal error: stdlib AES-GCM in use where " + best.String() + " is available")
	}
}

// sliceForAppend extends in by n bytes, reusing its capacity when it can,
// and returns the whole slice and the n new bytes.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return
}

// anyOverlap reports whether x and y share memory at any index.
func anyOverlap(x, y []byte) bool {
	return len(x) > 0 && len(y) > 0 &&
		uintptr(unsafe.Pointer(&x[0])) <= uintptr(unsafe.Pointer(&y[len(y)-1])) &&
		uintptr(unsafe.Pointer(&y[0])) <= uintptr(unsafe.Pointer(&x[len(x)-1]))
}

// inexactOverlap reports whether x and y share memory at any
// non-corresponding index.
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 || &x[0] == &y[0] {
		return false
	}
	return anyOverlap(x, y)
}
