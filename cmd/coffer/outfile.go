package main

import (
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// writebackEvery is how many bytes an output file takes between two starts
// of write-back.
const writebackEvery = 32 << 20

// outFile is the temporary output file of encrypt and decrypt. Written the
// plain way, all of it would sit dirty in the page cache (1 GiB is well
// under the kernel's dirty thresholds on most machines) until the fsync
// before the rename, which then waits for the whole file to reach the disk
// after the encryption has finished: the disk would idle while the CPU
// works, and the other way round. outFile starts write-back of what has
// been written every writebackEvery bytes, on a goroutine of its own, so
// that the disk writes while packages are sealed and the final fsync finds
// little left (sync_file_range(2) on Linux; elsewhere nothing is started
// early). It passes Write, WriteAt and Seek through, so the stream Writer
// still writes at offsets from its workers.
type outFile struct {
	f       *os.File
	written atomic.Int64
	next    atomic.Int64 // written-byte count at which to start write-back again
	kick    chan struct{}
	wg      sync.WaitGroup
}

var (
	_ io.WriterAt = (*outFile)(nil)
	_ io.Seeker   = (*outFile)(nil)
)

func newOutFile(f *os.File) *outFile {
	o := &outFile{f: f, kick: make(chan struct{}, 1)}
	o.next.Store(writebackEvery)
	o.wg.Go(func() {
		for range o.kick {
			startWriteback(f)
		}
	})
	return o
}

func (o *outFile) wrote(n int) {
	if total := o.written.Add(int64(n)); total >= o.next.Load() {
		o.next.Store(total + writebackEvery)
		select {
		case o.kick <- struct{}{}:
		default: // write-back is being started already
		}
	}
}

func (o *outFile) Write(p []byte) (int, error) {
	n, err := o.f.Write(p)
	o.wrote(n)
	return n, err
}

func (o *outFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := o.f.WriteAt(p, off)
	o.wrote(n)
	return n, err
}

func (o *outFile) Seek(offset int64, whence int) (int64, error) { return o.f.Seek(offset, whence) }

// stop ends the write-back goroutine; the caller's fsync does the rest.
func (o *outFile) stop() {
	close(o.kick)
	o.wg.Wait()
}

// Truncate lets the stream Reader cut what its workers wrote after a
// package that failed.
func (o *outFile) Truncate(size int64) error { return o.f.Truncate(size) }
