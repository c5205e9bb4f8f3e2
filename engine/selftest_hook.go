//go:build selftesthook

package engine

import "os"

// corruptedVector names the self-test row whose known answer is corrupted,
// from COFFER_SELFTEST_CORRUPT: only in binaries built with the
// selftesthook tag, to prove a failing self-test stops `coffer serve`.
func corruptedVector() string {
	if v := os.Getenv("COFFER_SELFTEST_CORRUPT"); v != "" {
		return v
	}
	return corruptVector
}
