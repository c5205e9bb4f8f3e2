//go:build !purego

package b64

import "golang.org/x/sys/cpu"

var useVBMI = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VBMI

// encodeBlocks encodes blocks×48 bytes of src into blocks×64 characters at
// dst.
//
//go:noescape
func encodeBlocks(dst, src *byte, blocks int, t *kernelTables)

// decodeBlocks decodes blocks×64 characters of src into blocks×48 bytes at
// dst, stopping before the first block that holds a byte outside the
// alphabet; it returns the number of blocks decoded.
//
//go:noescape
func decodeBlocks(dst, src *byte, blocks int, t *kernelTables) int
