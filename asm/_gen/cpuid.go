package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/reg"
)

// genCPUID writes cpuidex, which dispatch uses to see VAES and VPCLMULQDQ on
// CPUs without AVX-512: golang.org/x/sys/cpu reports them only with it.
func genCPUID() {
	TEXT("cpuidex", NOSPLIT, "func(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)")
	Load(Param("leaf"), EAX)
	Load(Param("subleaf"), ECX)
	CPUID()
	Store(EAX, Return("eax"))
	Store(EBX, Return("ebx"))
	Store(ECX, Return("ecx"))
	Store(EDX, Return("edx"))
	RET()
}
