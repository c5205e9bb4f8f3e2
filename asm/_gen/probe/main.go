// Command probe measures the instruction throughput that bounds the VAES
// AES-GCM kernels on the machine it runs on: VAESENC and VPCLMULQDQ alone,
// and AES-256 counter mode (four zmm vectors, 14 rounds: 256 bytes) with a
// given number of independent zmm carry-less multiplies spread among its
// rounds, which is the kernel's main loop without its data movement.
//
//	cd asm/_gen && go run ./probe
//
// It writes a throwaway program (assembly text, not a kernel: nothing of it
// is linked into Coffer) to a temporary directory and runs it. Cycles are
// calibrated against a chain of dependent 64-bit additions, one cycle each.
package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A probe is a loop body and the count that its cycles are divided by.
type probe struct {
	name, what string
	body       string
	per        int
}

func main() {
	probes := []probe{
		{"aes1", "VAESENC zmm, 1 chain (latency)", aes("Z", 1, 96), 96},
		{"aes4", "VAESENC zmm, 4 chains", aes("Z", 4, 96), 96},
		{"aes8", "VAESENC zmm, 8 chains", aes("Z", 8, 96), 96},
		{"aesy8", "VAESENC ymm, 8 chains", aes("Y", 8, 96), 96},
		{"clmul8", "VPCLMULQDQ zmm, 8 independent", clmuls("Z", 96), 96},
		{"clmuly8", "VPCLMULQDQ ymm, 8 independent", clmuls("Y", 96), 96},
		{"ctr0", "AES-256 CTR, 256 B, no GHASH", stitched(0), 1},
		{"ctr13", "AES-256 CTR, 256 B + 13 zmm clmul (Karatsuba, 1 reduction per 512 B)", stitched(13), 1},
		{"ctr17", "AES-256 CTR, 256 B + 17 zmm clmul (schoolbook)", stitched(17), 1},
	}

	var s strings.Builder
	s.WriteString("#include \"textflag.h\"\n\n")
	loop(&s, "adds", strings.Repeat("\tADDQ $1, AX\n", 100))
	var decls, runs strings.Builder
	for _, p := range probes {
		loop(&s, p.name, p.body)
		fmt.Fprintf(&decls, "func %s(n int)\n", p.name)
		fmt.Fprintf(&runs, "\tfmt.Printf(\"%%-8s %%7.2f cycles  %s\\n\", %q, best(%s)/%d)\n", p.what, p.name, p.name, p.per)
	}
	prog := `package main

import (
	"fmt"
	"time"
)

` + decls.String() + `func adds(n int)

const iters = 200000

var ns float64 // per cycle

// best runs f 25 times and returns its fastest time per iteration in cycles.
func best(f func(int)) float64 {
	min := 1e18
	for range 25 {
		t := time.Now()
		f(iters)
		if d := float64(time.Since(t).Nanoseconds()) / iters; d < min {
			min = d
		}
	}
	return min / ns
}

func main() {
	ns = 1
	ns = best(adds) / 100
	fmt.Printf("clock %.2f GHz (100 dependent ADDQ)\n", 1/ns)
` + runs.String() + "}\n"

	dir, err := os.MkdirTemp("", "vaes-probe")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	files := map[string]string{
		"go.mod":    "module probe\n\ngo 1.26\n",
		"main.go":   prog,
		"k_amd64.s": s.String(),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	cmd := exec.Command("go", "run", ".")
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		log.Fatal(err)
	}
}

// loop writes a function that runs body n times.
func loop(s *strings.Builder, name, body string) {
	fmt.Fprintf(s, "TEXT ·%s(SB), NOSPLIT, $0-8\n\tMOVQ n+0(FP), CX\n%s_loop:\n%s\tDECQ CX\n\tJNZ %s_loop\n\tVZEROUPPER\n\tRET\n\n",
		name, name, body, name)
}

// aes is count VAESENC on chains independent registers of the given kind,
// all with the key in register 15 (ymm) or 31 (zmm).
func aes(kind string, chains, count int) string {
	key := map[string]int{"Y": 15, "Z": 31}[kind]
	var b strings.Builder
	for i := 0; i < count; i++ {
		fmt.Fprintf(&b, "\tVAESENC %s%d, %s%d, %s%d\n", kind, key, kind, i%chains, kind, i%chains)
	}
	return b.String()
}

// clmuls is count independent VPCLMULQDQ: eight sources, eight results.
func clmuls(kind string, count int) string {
	var b strings.Builder
	for i := 0; i < count; i++ {
		fmt.Fprintf(&b, "\tVPCLMULQDQ $0x11, %s15, %s%d, %s%d\n", kind, kind, i%8, kind, 8+i%7)
	}
	return b.String()
}

// stitched is 14 rounds on 4 zmm vectors with clmuls independent zmm
// carry-less multiplies spread evenly among them.
func stitched(clmuls int) string {
	var rounds []string
	for r := 0; r < 14; r++ {
		for v := 0; v < 4; v++ {
			rounds = append(rounds, fmt.Sprintf("\tVAESENC Z31, Z%d, Z%d\n", v, v))
		}
	}
	var b strings.Builder
	done := 0
	for i, r := range rounds {
		b.WriteString(r)
		for due := clmuls * (i + 1) / len(rounds); done < due; done++ {
			fmt.Fprintf(&b, "\tVPCLMULQDQ $0x11, Z30, Z%d, Z%d\n", 16+done%6, 22+done%6)
		}
	}
	return b.String()
}
