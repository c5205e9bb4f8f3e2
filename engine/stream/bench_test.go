package stream

import (
	"bytes"
	"context"
	"crypto/cipher"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/minio/sio"

	"github.com/coffer-kms/coffer/asm"
)

// Throughput of a whole stream, memory to memory, against two baselines:
// a plain copy of the same bytes (io.Copy into a reused buffer) and
// minio/sio itself. mode=sequential is this package's sio path (header
// included), mode=parallel the ring with GOMAXPROCS workers.
//
//	go test -run '^$' -bench 'Encrypt|Decrypt' -benchtime 20x ./engine/stream
var benchSizes = []int{1 << 20, 256 << 20}

// The -writer modes hide the bytes.Buffer behind a plain io.Writer, which
// lends no spare capacity (see window): the path of a pipe or a socket.
//
// copy2 is the plain copy on two goroutines, each copying half of the bytes
// into its half of the buffer's spare capacity: what the memory of this
// machine gives two cores, the bound of any parallel path.
var benchModes = []string{"copy", "copy2", "sio", "sequential", "parallel", "sequential-writer", "parallel-writer"}

// copy2 copies src into out on two goroutines.
func copy2(out *bytes.Buffer, src []byte) {
	out.Grow(len(src))
	dst := out.AvailableBuffer()[:len(src)]
	half := len(src) / 2
	var wg sync.WaitGroup
	wg.Go(func() { copy(dst[:half], src[:half]) })
	copy(dst[half:], src[half:])
	wg.Wait()
	out.Write(dst) // the buffer's own bytes: nothing more is copied
}

// benchWorkers is the Workers setting of a stream mode.
func benchWorkers(mode string) int {
	if strings.HasPrefix(mode, "parallel") {
		return 0
	}
	return 1
}

// benchDst is out as the destination of a stream mode.
func benchDst(mode string, out *bytes.Buffer) io.Writer {
	if strings.HasSuffix(mode, "-writer") {
		return struct{ io.Writer }{out}
	}
	return out
}

func BenchmarkEncrypt(b *testing.B) {
	p := newTestProvider(b)
	for _, size := range benchSizes {
		// Set up on first use: a -bench pattern that skips this size
		// (the gate runs 1 MiB only) skips its setup too.
		var pt []byte
		var out bytes.Buffer
		for _, mode := range benchModes {
			b.Run(fmt.Sprintf("mode=%s/size=%d", mode, size), func(b *testing.B) {
				if pt == nil {
					pt = randBytes(size)
					out.Grow(size + size/maxPayload*32 + 4096)
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				key := randBytes(32)
				defer reportCPU(b)()
				for b.Loop() {
					out.Reset()
					switch mode {
					case "copy":
						io.Copy(&out, bytes.NewReader(pt))
					case "copy2":
						copy2(&out, pt)
					case "sio":
						if _, err := sio.Encrypt(&out, bytes.NewReader(pt), sioConfig(key, AES256GCM)); err != nil {
							b.Fatal(err)
						}
					default:
						encryptAll(b, benchDst(mode, &out), p, Config{KeyID: p.KeyID(), Workers: benchWorkers(mode), Suite: AES256GCM}, pt)
					}
				}
			})
		}
	}
}

// BenchmarkEncryptFile encrypts 256 MiB into a file in the test's
// temporary directory with the parallel Writer: dst=file hands it the
// *os.File, which it writes at offsets from its workers; dst=writer hides
// the file behind a plain io.Writer, which it writes in order from the
// caller's goroutine.
//
//	go test -run '^$' -bench EncryptFile -benchtime 10x -count 5 ./engine/stream
func BenchmarkEncryptFile(b *testing.B) {
	p := newTestProvider(b)
	pt := randBytes(256 << 20)
	f, err := os.Create(filepath.Join(b.TempDir(), "stream"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for _, dst := range []string{"file", "writer"} {
		b.Run("dst="+dst, func(b *testing.B) {
			b.SetBytes(int64(len(pt)))
			for b.Loop() {
				if _, err := f.Seek(0, io.SeekStart); err != nil {
					b.Fatal(err)
				}
				var out io.Writer = f
				if dst == "writer" {
					out = struct{ io.Writer }{f}
				}
				encryptAll(b, out, p, Config{KeyID: p.KeyID(), Suite: AES256GCM}, pt)
			}
		})
	}
}

// reportCPU starts counting the process's CPU time (user and system, all
// threads); the function it returns reports it per operation as cpu-ns/op.
// On a machine shared with other work, wall time per operation varies with
// the load while CPU time per operation mostly does not; the ratio of the two
// on the parallel path is how many cores it kept busy.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// encryptAll encrypts pt to dst in one io.Copy, as a pipeline would.
func encryptAll(b *testing.B, dst io.Writer, p KeyProvider, cfg Config, pt []byte) {
	w, err := NewWriter(context.Background(), dst, p, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(w, bytes.NewReader(pt)); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

// decryptAll decrypts stream into dst through io.Copy (Reader.WriteTo).
func decryptAll(b *testing.B, dst io.Writer, p KeyProvider, cfg Config, stream []byte) {
	r, err := NewReader(context.Background(), bytes.NewReader(stream), p, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(dst, r); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkDecrypt(b *testing.B) {
	p := newTestProvider(b)
	for _, size := range benchSizes {
		var pt, stream, sioBody, key []byte
		var out bytes.Buffer
		for _, mode := range benchModes {
			b.Run(fmt.Sprintf("mode=%s/size=%d", mode, size), func(b *testing.B) {
				if pt == nil { // on first use, as in BenchmarkEncrypt
					pt = randBytes(size)
					stream = encrypt(b, p, Config{Suite: AES256GCM}, pt, 1<<20)
					var h *Header
					h, sioBody = body(b, stream)
					key, _ = h.BodyKey(dataKey(b, p, h))
					out.Grow(size)
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				stop := reportCPU(b)
				for b.Loop() {
					out.Reset()
					switch mode {
					case "copy":
						io.Copy(&out, bytes.NewReader(pt))
					case "copy2":
						copy2(&out, pt)
					case "sio":
						if _, err := sio.Decrypt(&out, bytes.NewReader(sioBody), sioConfig(key, AES256GCM)); err != nil {
							b.Fatal(err)
						}
					default:
						decryptAll(b, benchDst(mode, &out), p, Config{Workers: benchWorkers(mode)}, stream)
					}
				}
				stop()
				if !bytes.Equal(out.Bytes(), pt) {
					b.Fatal("decrypted other bytes")
				}
			})
		}
	}
}

// BenchmarkStreamKernel is the 256 MiB stream, into a bytes.Buffer, on each
// AES-GCM kernel this CPU runs (Config.NewAESGCM set to it, so that even
// the sequential path uses the named kernel): it compares a kernel's
// loop from and into memory, which BenchmarkEncrypt and BenchmarkDecrypt
// show only for the fastest.
func BenchmarkStreamKernel(b *testing.B) {
	p := newTestProvider(b)
	const size = 256 << 20
	pt := randBytes(size)
	var out bytes.Buffer
	out.Grow(size + size/maxPayload*32 + 4096)
	stream := encrypt(b, p, Config{Suite: AES256GCM}, pt, 1<<20)
	for _, kernel := range asm.Kernels() {
		newGCM := func(key []byte) (cipher.AEAD, error) { return asm.NewKernel(kernel, key) }
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("kernel=%s/op=encrypt/workers=%d", kernel, workers), func(b *testing.B) {
				b.SetBytes(size)
				cfg := Config{KeyID: p.KeyID(), Workers: workers, Suite: AES256GCM, NewAESGCM: newGCM}
				for b.Loop() {
					out.Reset()
					encryptAll(b, &out, p, cfg, pt)
				}
			})
			b.Run(fmt.Sprintf("kernel=%s/op=decrypt/workers=%d", kernel, workers), func(b *testing.B) {
				b.SetBytes(size)
				for b.Loop() {
					out.Reset()
					decryptAll(b, &out, p, Config{Workers: workers, NewAESGCM: newGCM}, stream)
				}
				if !bytes.Equal(out.Bytes(), pt) {
					b.Fatal("decrypted other bytes")
				}
			})
		}
	}
}
