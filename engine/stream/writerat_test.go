package stream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Files are written at offsets, from where the file's offset was, which
// Close leaves at the end of the stream; a file opened for appending and a
// pipe are written in order.
func TestWriterFileDestinations(t *testing.T) {
	p := newTestProvider(t)
	pt := randBytes(5*maxPayload + 77)
	cfg := Config{KeyID: p.KeyID(), Workers: 3}

	// streamTo encrypts pt to f and reports whether it wrote at offsets.
	streamTo := func(f *os.File) bool {
		t.Helper()
		return encryptTo(t, f, p, cfg, pt, len(pt)).at != nil
	}
	check := func(name string, stream []byte) {
		t.Helper()
		if got, err := decrypt(p, Config{}, stream, 0); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%s: %v, equal=%v", name, err, bytes.Equal(got, pt))
		}
	}

	dir := t.TempDir()
	for _, flag := range []int{0, os.O_APPEND} {
		path := filepath.Join(dir, "out")
		f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|flag, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("before")
		if atOffsets := streamTo(f); atOffsets != (flag == 0) {
			t.Fatalf("append=%v: written at offsets=%v", flag != 0, atOffsets)
		}
		f.WriteString("after")
		f.Close()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("before")) || !bytes.HasSuffix(b, []byte("after")) {
			t.Fatalf("append=%v: the file does not hold before, stream, after in that order", flag != 0)
		}
		check("file", b[len("before"):len(b)-len("after")])
	}

	// A descriptor opened for appending outside package os (a shell's >>):
	// Linux's pwrite would append every package at the end.
	path := filepath.Join(dir, "appended")
	fd, err := syscall.Open(path, syscall.O_CREAT|syscall.O_WRONLY|syscall.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), path)
	if streamTo(f) {
		t.Fatal("a descriptor with O_APPEND was written at offsets")
	}
	f.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	check("appending descriptor", b)

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		got <- b
	}()
	if streamTo(w) {
		t.Fatal("a pipe was written at offsets")
	}
	w.Close()
	check("pipe", <-got)
}

// failAt is a memFile whose writes past room bytes fail.
type failAt struct {
	memFile
	room int64
}

func (f *failAt) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.room {
		return 0, errDisk
	}
	return f.memFile.WriteAt(p, off)
}

func (f *failAt) Write(p []byte) (int, error) {
	n, err := f.WriteAt(p, f.off)
	f.off += int64(n)
	return n, err
}

// A failed write at an offset, made by a worker, fails the Write or Close
// that collects that package, and every later call.
func TestWriterAtFails(t *testing.T) {
	p := newTestProvider(t)
	for _, room := range []int64{300, 3 * maxPackage, 9*maxPackage + 100} {
		f := &failAt{room: room}
		w, err := NewWriter(context.Background(), f, p, Config{KeyID: p.KeyID(), Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		if w.at == nil {
			t.Fatal("not written at offsets")
		}
		_, err = w.Write(make([]byte, 10*maxPayload))
		if err == nil {
			err = w.Close()
		}
		if !errors.Is(err, errDisk) {
			t.Fatalf("%d bytes of room: %v", room, err)
		}
		if _, err := w.Write([]byte("x")); !errors.Is(err, errDisk) {
			t.Fatalf("%d bytes of room, Write after the failure: %v", room, err)
		}
	}
}
