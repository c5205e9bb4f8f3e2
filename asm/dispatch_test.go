package asm

import (
	"runtime"
	"slices"
	"testing"

	"github.com/klauspost/cpuid/v2"
)

// expectedKernel is the dispatch decision worked out independently, from
// klauspost/cpuid rather than the golang.org/x/sys/cpu flags dispatch uses.
func expectedKernel() kernel {
	if runtime.GOARCH != "amd64" || purego {
		return kernelStdlib
	}
	c := cpuid.CPU
	if !c.Supports(cpuid.AESNI, cpuid.CLMUL, cpuid.VAES, cpuid.VPCLMULQDQ, cpuid.AVX2) {
		return kernelStdlib
	}
	if c.Supports(cpuid.AVX512F, cpuid.AVX512BW, cpuid.AVX512VL, cpuid.BMI2) {
		return kernelVAES512
	}
	return kernelVAES256
}

// TestDispatch fails when New would run a slower kernel than the CPU allows,
// or claims one the CPU cannot run.
func TestDispatch(t *testing.T) {
	want := expectedKernel()
	if Kernel() != want.String() {
		t.Fatalf("Kernel() = %s, want %s for features %v", Kernel(), want, Features())
	}
	a, err := New(testKeys["AES128"])
	if err != nil {
		t.Fatal(err)
	}
	if k := a.(*GCM).kernel; k != want {
		t.Fatalf("New chose %s, want %s", k, want)
	}
	// Every kernel slower than the best one also runs (and so is tested).
	names := Kernels()
	for k := want; k > kernelNone; k-- {
		if k == kernelVAES256 && want < kernelVAES256 {
			continue
		}
		if !slices.Contains(names, k.String()) {
			t.Errorf("Kernels() = %v lacks %s", names, k)
		}
	}
	t.Logf("kernel %s; kernels %v; features %v", Kernel(), names, Features())
}

// TestGuard proves the guard: the stdlib kernel, reached without being named
// on a CPU with a faster one, panics instead of running slowly.
func TestGuard(t *testing.T) {
	if best == kernelStdlib {
		t.Skip("the stdlib kernel is the fastest here")
	}
	var g GCM
	if err := g.init(testKeys["AES128"], kernelStdlib); err != nil {
		t.Fatal(err)
	}
	mustPanic(t, "stdlib Seal where "+best.String()+" is available", func() { g.Seal(nil, make([]byte, 12), nil, nil) })
	mustPanic(t, "stdlib Open where "+best.String()+" is available", func() { g.Open(nil, make([]byte, 12), make([]byte, 16), nil) })
}
