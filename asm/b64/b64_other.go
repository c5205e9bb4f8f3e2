//go:build !amd64 || purego

package b64

const useVBMI = false

func encodeBlocks(*byte, *byte, int, *kernelTables) { panic("b64: no kernel") }

func decodeBlocks(*byte, *byte, int, *kernelTables) int { panic("b64: no kernel") }
