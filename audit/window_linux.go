package audit

import (
	"fmt"
	"runtime/debug"
	"syscall"
)

// window is a shared, writable mapping of the current file's preallocated
// space, through which the interval policy writes records: a record copied
// into a shared mapping is in the page cache as soon as the copy returns,
// as after write(2) — a crash of the process loses nothing — without a
// system call per group of records. fdatasync writes the pages a mapping
// dirtied as it writes those write(2) dirtied.
//
// It maps from the page the next record starts in to the end of the
// preallocated zeros, and is mapped again each time the Writer preallocates
// (every preallocChunk bytes), so that the pages of durable records are
// unmapped and can be dropped from the cache (dropDurable).
type window struct {
	b   []byte
	off int64 // the file offset of b[0], a multiple of the page size
}

// remap maps [from, end) of f, from rounded down to a page, in place of
// what w mapped. Where f cannot be mapped the window stays empty and the
// Writer writes with write(2).
func (w *window) remap(f file, from, end int64) {
	w.unmap()
	d, ok := f.(*dataSyncFile)
	from &^= int64(pageSize - 1)
	if !ok || end <= from || end-from > 1<<30 {
		return
	}
	b, err := syscall.Mmap(int(d.Fd()), from, int(end-from), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return
	}
	w.b, w.off = b, from
}

func (w *window) unmap() {
	if w.b != nil {
		syscall.Munmap(w.b)
		w.b = nil
	}
}

// writeAt copies b to the file at off through the mapping and reports
// whether it could: false (and nothing written) when [off, off+len(b)) is
// not mapped. A fault, where the file was cut short under the mapping by
// someone else, is an error rather than a crash of the process.
func (w *window) writeAt(b []byte, off int64) (ok bool, err error) {
	if w.b == nil || off < w.off || off+int64(len(b)) > w.off+int64(len(w.b)) {
		return false, nil
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			f, isFault := r.(interface{ Addr() uintptr })
			if !isFault {
				panic(r)
			}
			err = fmt.Errorf("%w: a fault writing through the mapping at %#x", errFileTruncated, f.Addr())
		}
	}()
	copy(w.b[off-w.off:], b)
	return true, nil
}
