package main

import "golang.org/x/sys/unix"

// disableCoreDumps keeps the server's memory, where key material and
// secrets live in the clear, out of core files and away from ptrace by
// other processes of the same user: RLIMIT_CORE 0 (for this process and
// what it starts) and not dumpable (which also makes /proc/<pid>/mem and
// friends root's).
func disableCoreDumps() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return err
	}
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
