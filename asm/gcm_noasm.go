//go:build !amd64 || purego

package asm

// Without the VAES kernels the standard library is the only implementation.
const best = kernelStdlib

func available(k kernel) bool { return k == kernelStdlib }

type keySchedule struct{}

func (g *GCM) initVAES([]byte) { panic("asm: internal error: no VAES kernel in this build") }

func (g *GCM) sealVAES(_, _, _, _ []byte) { panic("asm: internal error: no VAES kernel in this build") }

func (g *GCM) openVAES(_, _, _, _ []byte) bool {
	panic("asm: internal error: no VAES kernel in this build")
}
