package audit

import (
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dropCache really takes durable pages out of the page cache, and only those
// in its range. (The file is written a page at a time so that the kernel
// caches it in single-page folios: a large folio that reaches past the
// range stays.)
func TestDropCacheEvicts(t *testing.T) {
	f, err := os.Create(t.TempDir() + "/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const pages = 64
	buf := make([]byte, pages*pageSize)
	for i := range buf {
		buf[i] = byte(i)
	}
	for off := 0; off < len(buf); off += pageSize {
		if _, err := f.Write(buf[off : off+pageSize]); err != nil {
			t.Fatal(err)
		}
	}
	if err := datasync(f); err != nil {
		t.Fatal(err)
	}
	resident := func() (n int) {
		m, err := unix.Mmap(int(f.Fd()), 0, len(buf), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Munmap(m)
		vec := make([]byte, pages)
		if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
			t.Fatal(e)
		}
		for _, v := range vec {
			n += int(v & 1)
		}
		return n
	}
	if n := resident(); n != pages {
		t.Skipf("%d of %d freshly written pages resident: this filesystem does not keep them cached", n, pages)
	}
	dropCache(f, 0, pages/2*int64(pageSize))
	if n := resident(); n != pages/2 {
		t.Fatalf("%d pages resident after dropping the first %d, want %d", n, pages/2, pages/2)
	}
}
