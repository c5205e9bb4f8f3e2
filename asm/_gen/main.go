// Command _gen writes asm's AES-GCM kernels, gcm_amd64.s, with avo.
//
// Run it from this directory (see README):
//
//	go run . -out ../gcm_amd64.s
//
// The Go declarations of the functions it writes live in ../gcm_amd64.go;
// go vet's asmdecl check holds the two together.
package main

import (
	. "github.com/mmcloughlin/avo/build"
)

func main() {
	ConstraintExpr("!purego")

	genConstants()
	genCPUID()
	genInit()
	genTag()
	genVAES512()
	genVAES256()

	Generate()
}
