//go:build !linux

package bench

import "errors"

// Pin needs Linux's sched_setaffinity; the load harness reads /proc too, so
// its measurements run on Linux only.
func Pin(pid, cpu int) error {
	return errors.New("bench: pinning to a CPU is implemented on Linux only")
}
