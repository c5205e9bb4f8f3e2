package bench

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Pin restricts every thread of a process (0: this one) to one CPU.
// Threads and children created afterwards inherit the restriction, so a
// caller pins itself to the server's CPU, starts the server, then pins
// itself to its own CPU.
func Pin(pid, cpu int) error {
	if pid == 0 {
		pid = os.Getpid()
	}
	var set unix.CPUSet
	set.Set(cpu)
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			return fmt.Errorf("bench: pin thread %d to CPU %d: %w", tid, cpu, err)
		}
	}
	return nil
}
