//go:build unix && !linux

package main

import "golang.org/x/sys/unix"

// disableCoreDumps keeps the server's memory, where key material and
// secrets live in the clear, out of core files: RLIMIT_CORE 0 for this
// process and what it starts. (Linux also makes the process non-dumpable:
// coredump_linux.go; the BSDs and macOS have no portable equivalent.)
func disableCoreDumps() error {
	return unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0})
}
