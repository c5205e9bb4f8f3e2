package audit

import (
	"os"
	"syscall"
)

// datasync makes f's data durable, and its metadata only where reading the
// data back needs it (a changed size).
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
