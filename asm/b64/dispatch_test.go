package b64

import (
	"runtime"
	"testing"

	"golang.org/x/sys/cpu"
)

// The kernel runs exactly where the build and the CPU allow it.
func TestDispatch(t *testing.T) {
	want := "stdlib"
	if runtime.GOARCH == "amd64" && !purego && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VBMI {
		want = "vbmi"
	}
	if got := Kernel(); got != want {
		t.Fatalf("kernel %s, want %s", got, want)
	}
}
