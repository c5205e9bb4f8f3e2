package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// syncRing makes files durable with fdatasync submitted through io_uring
// and waited for on an eventfd through Go's network poller, so that the
// goroutine waiting for the disk does not hold a scheduler P in a blocking
// system call. With one CPU (GOMAXPROCS=1) a plain fdatasync stops every
// request for as long as the disk takes, until the runtime's monitor hands
// the P on; here requests run on while the kernel's worker waits for the
// disk, and group commit gathers them for the next fsync.
//
// A syncRing serves one goroutine at a time (the Writer's). When io_uring
// is not available (old kernels, seccomp filters) newSyncRing fails and the
// Writer calls fdatasync directly.
type syncRing struct {
	fd      int
	rings   []byte // SQ and CQ rings (one mapping with IORING_FEAT_SINGLE_MMAP)
	cqRings []byte // the CQ ring when it is a mapping of its own
	sqes    []byte

	sqTail, sqMask *uint32
	sqArray        []uint32
	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           []byte

	event *os.File // eventfd the ring signals each completion on
	buf   [8]byte
}

// io_uring ABI (include/uapi/linux/io_uring.h).
const (
	iouOffSQRing      = 0
	iouOffCQRing      = 0x8000000
	iouOffSQEs        = 0x10000000
	iouFeatSingleMmap = 1 << 0
	iouOpFsync        = 3
	iouFsyncDatasync  = 1 << 0
	iouRegisterEvent  = 4
	iouSQESize        = 64
	iouCQESize        = 16
)

// iouParams is struct io_uring_params.
type iouParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
		userAddr                                                        uint64
	}
	cqOff struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
		userAddr                                                        uint64
	}
}

var errNoRing = errors.New("audit: io_uring unavailable")

func newSyncRing() (r *syncRing, err error) {
	var p iouParams
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 4, uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("%w: io_uring_setup: %v", errNoRing, errno)
	}
	r = &syncRing{fd: int(fd)}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	sqSize := int(p.sqOff.array + p.sqEntries*4)
	cqSize := int(p.cqOff.cqes + p.cqEntries*iouCQESize)
	if p.features&iouFeatSingleMmap != 0 {
		sqSize = max(sqSize, cqSize)
	}
	if r.rings, err = unix.Mmap(r.fd, iouOffSQRing, sqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return r, fmt.Errorf("%w: mmap SQ ring: %v", errNoRing, err)
	}
	cq := r.rings
	if p.features&iouFeatSingleMmap == 0 {
		if r.cqRings, err = unix.Mmap(r.fd, iouOffCQRing, cqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
			return r, fmt.Errorf("%w: mmap CQ ring: %v", errNoRing, err)
		}
		cq = r.cqRings
	}
	if r.sqes, err = unix.Mmap(r.fd, iouOffSQEs, int(p.sqEntries)*iouSQESize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return r, fmt.Errorf("%w: mmap SQEs: %v", errNoRing, err)
	}
	r.sqTail = word(r.rings, p.sqOff.tail)
	r.sqMask = word(r.rings, p.sqOff.ringMask)
	r.sqArray = unsafe.Slice(word(r.rings, p.sqOff.array), p.sqEntries)
	r.cqHead = word(cq, p.cqOff.head)
	r.cqTail = word(cq, p.cqOff.tail)
	r.cqMask = *word(cq, p.cqOff.ringMask)
	r.cqes = cq[p.cqOff.cqes : p.cqOff.cqes+p.cqEntries*iouCQESize]

	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return r, fmt.Errorf("%w: eventfd: %v", errNoRing, err)
	}
	r.event = os.NewFile(uintptr(efd), "io_uring-eventfd") // non-blocking: waits go through the poller
	e := int32(efd)
	if _, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), iouRegisterEvent, uintptr(unsafe.Pointer(&e)), 1, 0, 0); errno != 0 {
		return r, fmt.Errorf("%w: register eventfd: %v", errNoRing, errno)
	}
	return r, nil
}

func word(b []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }

// fdatasync makes f's data durable, as fdatasync(2) does.
func (r *syncRing) fdatasync(f *os.File) error {
	tail := atomic.LoadUint32(r.sqTail)
	i := tail & *r.sqMask
	sqe := r.sqes[i*iouSQESize : (i+1)*iouSQESize]
	clear(sqe)
	sqe[0] = iouOpFsync
	binary.LittleEndian.PutUint32(sqe[4:], uint32(f.Fd()))
	binary.LittleEndian.PutUint32(sqe[28:], iouFsyncDatasync)
	binary.LittleEndian.PutUint64(sqe[32:], uint64(tail)) // user_data: which submission
	r.sqArray[i] = i
	atomic.StoreUint32(r.sqTail, tail+1)
	for {
		n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), 1, 0, 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return fmt.Errorf("io_uring_enter: %w", errno)
		}
		if n != 1 {
			return fmt.Errorf("io_uring_enter submitted %d of 1", n)
		}
		break
	}
	for {
		head := atomic.LoadUint32(r.cqHead)
		if head != atomic.LoadUint32(r.cqTail) {
			cqe := r.cqes[(head&r.cqMask)*iouCQESize:]
			user := binary.LittleEndian.Uint64(cqe[0:])
			res := int32(binary.LittleEndian.Uint32(cqe[8:]))
			atomic.StoreUint32(r.cqHead, head+1)
			if user != uint64(tail) {
				continue // not ours: cannot happen with one submission at a time
			}
			if res < 0 {
				return unix.Errno(-res)
			}
			return nil
		}
		if _, err := r.event.Read(r.buf[:]); err != nil {
			return fmt.Errorf("io_uring eventfd: %w", err)
		}
	}
}

func (r *syncRing) close() {
	if r.event != nil {
		r.event.Close()
	}
	for _, m := range [][]byte{r.sqes, r.cqRings, r.rings} {
		if m != nil {
			unix.Munmap(m)
		}
	}
	unix.Close(r.fd)
}
