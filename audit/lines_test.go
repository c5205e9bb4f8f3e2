package audit

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// Lines of every length around the reader's buffer size and MaxLine come
// back whole, or as too long, with the right numbers and offsets, whether
// the last one is complete or torn, and whatever size the reads are.
func TestLineReaderAcrossBoundaries(t *testing.T) {
	const buf = 64 << 10
	for _, n := range []int{0, 1, buf - 2, buf - 1, buf, buf + 1, 2*buf + 3, MaxLine - 1, MaxLine, MaxLine + 1, MaxLine + buf} {
		for _, torn := range []bool{false, true} {
			for _, oneByte := range []bool{false, true} {
				if oneByte && n > 2*buf+3 {
					continue // slow, and nothing new
				}
				long := bytes.Repeat([]byte{'x'}, n)
				content := append(append([]byte("a\n"), long...), '\n')
				content = append(content, "last"...)
				if !torn {
					content = append(content, '\n')
				}
				var r io.Reader = bytes.NewReader(content)
				if oneByte {
					r = iotest.OneByteReader(r)
				}
				lr := newLineReader(r)
				if line, ok, err := lr.next(); string(line) != "a" || !ok || err != nil || lr.off != 2 {
					t.Fatalf("n=%d: first line %q %v %v", n, line, ok, err)
				}
				line, ok, err := lr.next()
				switch {
				case n > MaxLine && !errors.Is(err, errLineTooLong):
					t.Fatalf("n=%d: a line longer than MaxLine: %v", n, err)
				case n <= MaxLine && (err != nil || !ok || !bytes.Equal(line, long)):
					t.Fatalf("n=%d: %d bytes, %v, %v", n, len(line), ok, err)
				}
				if lr.line != 2 || lr.off != int64(n+3) {
					t.Fatalf("n=%d: line %d, offset %d", n, lr.line, lr.off)
				}
				line, ok, err = lr.next()
				if string(line) != "last" || ok == torn || err != nil || lr.line != 3 {
					t.Fatalf("n=%d torn=%v: last line %q %v %v", n, torn, line, ok, err)
				}
				if want := int64(len(content)); !torn && lr.off != want || torn && lr.off != want-4 {
					t.Fatalf("n=%d torn=%v: offset %d of %d", n, torn, lr.off, want)
				}
				if _, _, err := lr.next(); err != io.EOF {
					t.Fatalf("n=%d: after the end: %v", n, err)
				}
			}
		}
	}
}

// A line that runs into NUL bytes reaching the end of the file is torn (a
// write cut short in preallocated space), however long the zeros; NUL
// bytes with data after them are a hole.
func TestLineReaderTornIntoZeros(t *testing.T) {
	for _, zeros := range []int{1, 100, 64 << 10, 4 << 20} {
		for _, after := range []string{"", "x\n"} {
			content := append([]byte("a\n{\"seq\":2,"), make([]byte, zeros)...)
			content = append(content, after...)
			lr := newLineReader(bytes.NewReader(content))
			lr.next()
			line, complete, err := lr.next()
			switch {
			case after == "" && (string(line) != `{"seq":2,` || complete || err != nil || lr.off != 2):
				t.Fatalf("zeros=%d to the end: %q %v %v, offset %d", zeros, line, complete, err, lr.off)
			case after != "" && (lr.nulAt != 11 || err == nil && complete == false):
				t.Fatalf("zeros=%d then data: %q %v %v, NUL at %d", zeros, line, complete, err, lr.nulAt)
			}
		}
	}
}
