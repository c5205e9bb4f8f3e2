package stream

import (
	"crypto/cipher"
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sys/cpu"

	"github.com/coffer-kms/coffer/asm"
)

// Suite is a DARE cipher suite. The zero value means "choose for this CPU".
type Suite byte

const (
	// AutoSuite picks AES256GCM where the CPU has AES hardware and
	// ChaCha20Poly1305 where it does not.
	AutoSuite Suite = iota
	// AES256GCM is DARE's AES_256_GCM (cipher ID 0).
	AES256GCM
	// ChaCha20Poly1305 is DARE's CHACHA20_POLY1305 (cipher ID 1).
	ChaCha20Poly1305
)

func (s Suite) String() string {
	switch s {
	case AutoSuite:
		return "auto"
	case AES256GCM:
		return "AES-256-GCM"
	case ChaCha20Poly1305:
		return "ChaCha20-Poly1305"
	}
	return fmt.Sprintf("Suite(%d)", byte(s))
}

// dareID is the cipher byte DARE writes in every package header.
func (s Suite) dareID() byte { return byte(s) - 1 }

func suiteFromDARE(id byte) (Suite, bool) {
	switch id {
	case 0:
		return AES256GCM, true
	case 1:
		return ChaCha20Poly1305, true
	}
	return 0, false
}

// hasAESHardware reports what golang.org/x/sys/cpu says about AES
// instructions: AES-NI with carry-less multiply on amd64, the AES and PMULL
// extensions on arm64. Elsewhere Go's AES is not constant time in hardware,
// so ChaCha20-Poly1305 is the better choice.
func hasAESHardware() bool {
	switch runtime.GOARCH {
	case "amd64":
		return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ
	case "arm64":
		return cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
	case "s390x":
		return cpu.S390X.HasAES && cpu.S390X.HasAESGCM
	}
	return false
}

// DefaultSuite is the suite AutoSuite resolves to on this CPU.
func DefaultSuite() Suite {
	if hasAESHardware() {
		return AES256GCM
	}
	return ChaCha20Poly1305
}

func (s Suite) resolve() Suite {
	if s == AutoSuite {
		return DefaultSuite()
	}
	return s
}

// DefaultAESGCM is the AES-GCM constructor the parallel path uses unless
// Config.NewAESGCM says otherwise: package asm's fastest kernel for this CPU
// (VAES where present, the standard library's AES-GCM otherwise).
func DefaultAESGCM(key []byte) (cipher.AEAD, error) { return asm.New(key) }

// gcmPool holds asm contexts between streams, zeroed (asm.GCM.Reset), so
// that a stream costs no allocation for its cipher.
var gcmPool = sync.Pool{New: func() any { return new(pooledGCM) }}

// pooledGCM marks an asm context that came from gcmPool and may go back.
type pooledGCM struct{ asm.GCM }

// viaSIO reports whether the sequential path (Workers == 1) runs through
// minio/sio's own reader and writer: where asm has no kernel (a CPU without
// VAES, or the purego build) and for ChaCha20-Poly1305, unless the caller
// supplied an AES-GCM. Elsewhere it seals and opens with the kernel on an
// inline ring, the same bytes.
func viaSIO(cfg *Config, s Suite) bool {
	if cfg.viaSIO {
		return true
	}
	return s != AES256GCM || (cfg.NewAESGCM == nil && asm.Kernel() == "stdlib")
}

// newAEAD returns the AEAD for suite under key.
func newAEAD(s Suite, key []byte, newAESGCM func([]byte) (cipher.AEAD, error)) (cipher.AEAD, error) {
	switch s {
	case AES256GCM:
		if newAESGCM == nil {
			g := gcmPool.Get().(*pooledGCM)
			if err := g.Init(key); err != nil {
				gcmPool.Put(g)
				return nil, err
			}
			return g, nil
		}
		a, err := newAESGCM(key)
		if err != nil {
			return nil, err
		}
		if a.NonceSize() != 12 || a.Overhead() != tagSize {
			return nil, fmt.Errorf("stream: AES-GCM constructor gave a %d-byte nonce and %d-byte tag, DARE needs 12 and 16", a.NonceSize(), a.Overhead())
		}
		return a, nil
	case ChaCha20Poly1305:
		return chacha20poly1305.New(key)
	}
	return nil, fmt.Errorf("stream: unknown cipher suite %v", s)
}

// releaseAEAD zeroes a from newAEAD and returns it to the pool if it came
// from there. Nothing may use a after.
func releaseAEAD(a cipher.AEAD) {
	if g, ok := a.(*pooledGCM); ok {
		g.Reset()
		gcmPool.Put(g)
	}
}
