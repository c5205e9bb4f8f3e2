//go:build !linux

package main

import "errors"

// disableCoreDumps is implemented on Linux only.
func disableCoreDumps() error {
	return errors.New("not implemented on this system")
}
