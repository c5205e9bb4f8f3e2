package asm

import "github.com/klauspost/cpuid/v2"

// reported are the features that decide the kernel, in the order Features
// lists them.
var reported = []cpuid.FeatureID{
	cpuid.AESNI, cpuid.CLMUL, cpuid.AVX, cpuid.AVX2, cpuid.BMI2,
	cpuid.AVX512F, cpuid.AVX512BW, cpuid.AVX512VL, cpuid.VAES, cpuid.VPCLMULQDQ,
	cpuid.AESARM, cpuid.PMULL,
}

// Features reports the CPU features relevant to AES-GCM that this CPU and
// its operating system support, as klauspost/cpuid names them, for `coffer
// version`. Dispatch does not use this list; it uses golang.org/x/sys/cpu.
func Features() []string {
	var out []string
	for _, f := range reported {
		if cpuid.CPU.Supports(f) {
			out = append(out, f.String())
		}
	}
	return out
}
