package stream

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/minio/sio"
)

// What the window relies on: a region it places is the destination's own
// memory once written, so the Write copied nothing — bytes changed in the
// region after the Write show in the destination.
func TestWindowAliases(t *testing.T) {
	var buf bytes.Buffer
	buf.WriteString("head")
	for _, dst := range []io.Writer{&buf, bufio.NewWriterSize(&buf, 1<<16)} {
		w := newWindow(dst)
		a := w.place(0, 100, 300)
		b := w.place(100, 50, 0)
		if a == nil || b == nil {
			t.Fatalf("%T: no room placed", dst)
		}
		copy(a, bytes.Repeat([]byte{'a'}, 100))
		copy(b, bytes.Repeat([]byte{'b'}, 50))
		if _, err := w.write(dst, a, true); err != nil {
			t.Fatal(err)
		}
		if _, err := w.write(dst, b, true); err != nil {
			t.Fatal(err)
		}
		a[0], b[0] = 'A', 'B'
		if bw, ok := dst.(*bufio.Writer); ok {
			bw.Flush()
		}
		got := buf.String()
		if want := "head" + "A" + string(bytes.Repeat([]byte{'a'}, 99)) + "B" + string(bytes.Repeat([]byte{'b'}, 49)); got[len(got)-154:] != want {
			t.Fatalf("%T: the destination does not hold the placed regions' memory: %q", dst, got)
		}
		if w.placed != 0 || w.buf != nil {
			t.Fatalf("%T: window still open after its regions were written", dst)
		}
		buf.Reset()
		buf.WriteString("head")
	}
	// A destination whose memory moved behind the window's back (grown
	// by its owner while a region was placed) is not trusted again: the
	// region is copied, and nothing more is placed.
	buf.Reset()
	w := newWindow(&buf)
	r := w.place(0, 10, 10)
	copy(r, "0123456789")
	buf.Grow(cap(buf.Bytes()) + 1<<20)
	if _, err := w.write(&buf, r, true); err != nil || buf.String() != "0123456789" {
		t.Fatalf("moved destination: %q, %v", buf.String(), err)
	}
	if w.place(0, 10, 10) != nil {
		t.Fatal("a window that found its destination moved placed again")
	}
	// Destinations whose Write of lent bytes is not known to skip the
	// copy lend nothing.
	if w := newWindow(struct{ io.Writer }{&buf}); w.place(0, 1, 1) != nil {
		t.Fatal("a plain io.Writer lent room")
	}
}

// Every path writes the same format into every kind of destination —
// lending room or not, grown in advance or not, holding bytes already —
// and minio/sio decrypts each body; the Reader's copy into the same kinds
// gives back the plaintext.
func TestWindowDestinations(t *testing.T) {
	p := newTestProvider(t)
	dsts := []struct {
		name string
		make func(out *bytes.Buffer) (io.Writer, func())
	}{
		{"bytes.Buffer", func(out *bytes.Buffer) (io.Writer, func()) { return out, func() {} }},
		{"bytes.Buffer grown", func(out *bytes.Buffer) (io.Writer, func()) { out.Grow(8 << 20); return out, func() {} }},
		{"bufio.Writer 1 MiB", func(out *bytes.Buffer) (io.Writer, func()) {
			bw := bufio.NewWriterSize(out, 1<<20)
			return bw, func() { bw.Flush() }
		}},
		{"bufio.Writer 4 KiB", func(out *bytes.Buffer) (io.Writer, func()) {
			bw := bufio.NewWriter(out)
			return bw, func() { bw.Flush() }
		}},
		{"io.Writer", func(out *bytes.Buffer) (io.Writer, func()) { return struct{ io.Writer }{out}, func() {} }},
	}
	sizes := interopSizes()
	if testing.Short() { // the purego and arm64 (qemu) passes
		sizes = []int{0, 1, maxPayload, maxPayload + 1, 3*maxPayload + 7}
	}
	for _, m := range modes {
		for _, d := range dsts {
			for _, n := range sizes {
				pt := randBytes(n)
				var out bytes.Buffer
				out.WriteString("prefix")
				dst, flush := d.make(&out)
				for _, step := range []int{0, n + 1} { // random pieces, one Write
					out.Truncate(6)
					encryptTo(t, dst, p, m.cfg(Config{Suite: AES256GCM}), pt, step)
					flush()
					if !bytes.HasPrefix(out.Bytes(), []byte("prefix")) {
						t.Fatalf("%s, %s: the prefix was overwritten", m.name, d.name)
					}
					stream := out.Bytes()[6:]
					h, b := body(t, stream)
					key, err := h.BodyKey(dataKey(t, p, h))
					if err != nil {
						t.Fatal(err)
					}
					var got bytes.Buffer
					if _, err := sio.Decrypt(&got, bytes.NewReader(b), sioConfig(key, AES256GCM)); (err != nil && n > 0) || !bytes.Equal(got.Bytes(), pt) {
						t.Fatalf("%s, %s, %d bytes, step %d: sio: %v", m.name, d.name, n, step, err)
					}
					r, err := NewReader(context.Background(), bytes.NewReader(stream), p, m.cfg(Config{}))
					if err != nil {
						t.Fatal(err)
					}
					var back bytes.Buffer
					back.WriteString("prefix")
					bdst, bflush := d.make(&back)
					if _, err := io.Copy(bdst, r); err != nil {
						t.Fatalf("%s, %s, %d bytes: decrypt: %v", m.name, d.name, n, err)
					}
					bflush()
					if !bytes.Equal(back.Bytes()[6:], pt) {
						t.Fatalf("%s, %s, %d bytes, step %d: decrypted other bytes", m.name, d.name, n, step)
					}
				}
			}
		}
	}
}

func TestOverlaps(t *testing.T) {
	b := make([]byte, 100)
	for _, c := range []struct {
		x, y []byte
		want bool
	}{
		{b[:10], b[10:20], false},
		{b[:11], b[10:20], true},
		{b[15:16], b[10:20], true},
		{b[19:30], b[10:20], true},
		{b[20:30], b[10:20], false},
		{nil, b, false},
		{b, make([]byte, 10), false},
	} {
		if got := overlaps(c.x, c.y); got != c.want {
			t.Errorf("overlaps(b[%d:], %d bytes) = %v", len(b)-cap(c.x), len(c.y), got)
		}
	}
}
