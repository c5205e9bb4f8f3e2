package audit

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
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

// dropCache lets the kernel drop f's cached pages in [off, off+n), which
// must be durable already: clean pages go straight back to the page
// allocator. Errors are ignored; the pages then stay cached.
func dropCache(f *os.File, off, n int64) {
	unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
}
