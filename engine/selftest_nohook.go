//go:build !selftesthook

package engine

// corruptedVector is the test hook's (selftest_hook.go): in a normal build
// only this package's tests corrupt a vector.
func corruptedVector() string { return corruptVector }
