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
// calibrated against chains of dependent register additions (1 cycle each)
// and multiplies (3 cycles each), every measurement the median of 11 samples
// of at least 10 ms of the thread's CPU time. It ends with VAESENC zmm's latency and issue rate and
// the AES bound they give: 64 bytes × VAESENC per cycle ÷ rounds × clock.
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
		{"aes12", "VAESENC zmm, 12 chains", aes("Z", 12, 96), 96},
		{"aesy8", "VAESENC ymm, 8 chains", aes("Y", 8, 96), 96},
		{"clmul8", "VPCLMULQDQ zmm, 8 independent", clmuls("Z", 96), 96},
		{"clmuly8", "VPCLMULQDQ ymm, 8 independent", clmuls("Y", 96), 96},
		{"ctr0", "AES-256 CTR, 256 B, no GHASH", stitched(0), 1},
		{"ctr13", "AES-256 CTR, 256 B + 13 zmm clmul (Karatsuba, 1 reduction per 512 B)", stitched(13), 1},
		{"ctr17", "AES-256 CTR, 256 B + 17 zmm clmul (schoolbook)", stitched(17), 1},
	}

	var s strings.Builder
	s.WriteString("#include \"textflag.h\"\n\n")
	// The clock chains. ADDQ $1 is kept to show why it cannot be one: Intel
	// cores from Golden Cove on (Sapphire and Emerald Rapids among them) fold
	// an add of a small immediate into the register renamer, so a chain of
	// them is not executed one per cycle and times as 3 to 6 times the clock.
	// An add of a register and a multiply are executed: 1 and 3 cycles.
	loop(&s, "addimm", strings.Repeat("\tADDQ $1, AX\n", 100))
	loop(&s, "addreg", "\tMOVQ $1, BX\n"+strings.Repeat("\tADDQ BX, AX\n", 100))
	// AX is not reset in the loop: a fresh AX each iteration would let the
	// out-of-order core overlap iterations. A multiply's latency does not
	// depend on its operands.
	loop(&s, "imul", strings.Repeat("\tIMULQ AX, AX\n", 100))
	var decls, runs strings.Builder
	decls.WriteString("func addimm(n int)\nfunc addreg(n int)\nfunc imul(n int)\n")
	for _, p := range probes {
		loop(&s, p.name, p.body)
		fmt.Fprintf(&decls, "func %s(n int)\n", p.name)
		fmt.Fprintf(&runs, "\tcycles[%q] = measure(%s) / ns / %d\n", p.name, p.name, p.per)
		fmt.Fprintf(&runs, "\tfmt.Printf(\"%%-8s %%7.2f cycles  %s\\n\", %q, cycles[%q])\n", p.what, p.name, p.name)
	}
	prog := `package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

` + decls.String() + `
// measure returns f's median time per iteration in nanoseconds: f runs long
// enough for each sample to take at least 10 ms, 11 samples. Time is the
// thread's CPU time (CLOCK_THREAD_CPUTIME_ID, monotonic), not the wall
// clock: on a shared host the wall clock also counts the time the thread
// waited for a core, which made a cycle look two to three times as long. The
// median, not the fastest, because a sample may still have caught the core
// at another frequency or been disturbed by an interrupt.
func measure(f func(int)) float64 {
	n := 1000
	for {
		t := cpuNow()
		f(n)
		if cpuNow()-t >= 10e6 {
			break
		}
		n *= 2
	}
	var samples []float64
	for range 11 {
		t := cpuNow()
		f(n)
		samples = append(samples, float64(cpuNow()-t)/float64(n))
	}
	slices.Sort(samples)
	return samples[len(samples)/2]
}

// cpuNow is the calling thread's CPU time in nanoseconds.
func cpuNow() int64 {
	var ts syscall.Timespec
	const threadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, threadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		panic(errno)
	}
	return ts.Nano()
}

// cpuMHz is the first "cpu MHz" of /proc/cpuinfo, 0 if there is none.
func cpuMHz() float64 {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "cpu MHz" {
			mhz, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return mhz
		}
	}
	return 0
}

func main() {
	runtime.LockOSThread()
	cycles := map[string]float64{}
	measure(imul) // warm the core up before anything is timed
	add := measure(addreg) / 100
	mul := measure(imul) / 300
	imm := measure(addimm) / 100
	ns := (add + mul) / 2 // per cycle
	fmt.Printf("clock %.2f GHz: 100 dependent ADDQ reg %.2f GHz, 100 dependent IMULQ (3 cycles) %.2f GHz; /proc/cpuinfo cpu MHz %.0f\n",
		1/ns, 1/add, 1/mul, cpuMHz())
	fmt.Printf("         (100 dependent ADDQ $1 time as %.2f GHz: the renamer folds them, not a clock)\n", 1/imm)
` + runs.String() + `
	lat := cycles["aes1"]
	thr := min(cycles["aes4"], cycles["aes8"], cycles["aes12"])
	issue, per := 1, "once"
	if thr < 0.75 {
		issue, per = 2, "twice"
	}
	fmt.Printf("\nVAESENC zmm: latency %.2f cycles, throughput %.2f cycles per instruction: issues %s per cycle\n", lat, thr, per)
	// The AES part of AES-GCM: a zmm vector is four 16-byte blocks, and each
	// takes one VAESENC per round (the last is VAESENCLAST); the whitening
	// XOR with the first round key is a VPXORD on another port.
	for _, k := range []struct {
		name   string
		rounds int
	}{{"AES-256", 14}, {"AES-128", 10}} {
		fmt.Printf("%s bound: 64 B × %d per cycle ÷ %d rounds × %.2f GHz = %.1f GB/s (measured rate: %.1f GB/s)\n",
			k.name, issue, k.rounds, 1/ns, 64*float64(issue)/float64(k.rounds)/ns, 64/thr/float64(k.rounds)/ns)
	}
	l := int(lat + 0.5)
	fmt.Printf("blocks in flight to reach it: latency × issue rate × 4 blocks per zmm = %d × %d × 4 = %d\n", l, issue, l*issue*4)
}
`

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
