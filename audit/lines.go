package audit

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

var errLineTooLong = errors.New("line longer than MaxLine")

// lineReader reads a trail file line by line, telling a complete line from
// a torn final one, and skipping lines longer than MaxLine.
type lineReader struct {
	r    *bufio.Reader
	buf  []byte
	line int   // number of the line last returned, from 1
	off  int64 // bytes consumed by complete lines
	// zeros is set when the reader stopped at a NUL byte where a line
	// should start: the Writer's preallocated space after the last record.
	zeros bool
	// nulAt is the file offset of the first NUL byte inside the line last
	// returned (or skipped as too long), -1 when it has none. No record
	// holds one: a line with one runs into a hole of zeros.
	nulAt int64
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line without its newline, valid until the next
// call, and whether a newline ended it (false only at the end of the file).
// It returns io.EOF after the last line, and errLineTooLong (having skipped
// the line) for a line longer than MaxLine.
//
// A NUL byte where a line should start ends the file (io.EOF, with zeros
// set): no record holds one, and the newest file ends in zeros the Writer
// preallocated.
func (lr *lineReader) next() (line []byte, complete bool, err error) {
	lr.buf = lr.buf[:0]
	lr.nulAt = -1
	if b, err := lr.r.Peek(1); err == nil && b[0] == 0 {
		lr.zeros = true
		return nil, false, io.EOF
	}
	tooLong := false
	var n int64 // bytes of this line so far
	for {
		frag, err := lr.r.ReadSlice('\n')
		if i := bytes.IndexByte(frag, 0); i >= 0 && lr.nulAt < 0 {
			lr.nulAt = lr.off + n + int64(i)
			if err != nil && isZero(frag[i:]) {
				return lr.tornIntoZeros(frag[:i], err, tooLong)
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			if !tooLong {
				lr.buf = append(lr.buf, frag...)
				if len(lr.buf) > MaxLine {
					tooLong, lr.buf = true, lr.buf[:0]
				}
			}
			n += int64(len(frag))
			continue
		case err == io.EOF:
			if len(frag) == 0 && len(lr.buf) == 0 && !tooLong {
				return nil, false, io.EOF
			}
			lr.line++
			if tooLong || len(lr.buf)+len(frag) > MaxLine {
				return nil, false, errLineTooLong
			}
			return append(lr.buf, frag...), false, nil
		case err != nil:
			return nil, false, err
		}
		lr.line++
		lr.off += n + int64(len(frag))
		if tooLong || len(lr.buf)+len(frag) > MaxLine+1 {
			return nil, true, errLineTooLong
		}
		if len(lr.buf) == 0 {
			return frag[:len(frag)-1], true, nil
		}
		lr.buf = append(lr.buf, frag...)
		return lr.buf[:len(lr.buf)-1], true, nil
	}
}

// restIsZero reports whether everything after the point where next stopped
// at zeros is zeros too.
func (lr *lineReader) restIsZero() (bool, error) {
	for {
		b, err := lr.r.ReadSlice(0xff) // any byte: it only fills the buffer
		for _, c := range b {
			if c != 0 {
				return false, nil
			}
		}
		switch err {
		case nil, bufio.ErrBufferFull:
		case io.EOF:
			return true, nil
		default:
			return false, err
		}
	}
}

// tornIntoZeros ends a line that runs into NUL bytes reaching past what is
// buffered (err is bufio.ErrBufferFull or io.EOF): when they run to the end
// of the file, the line is torn — a write cut short in space the Writer had
// preallocated, as a power loss leaves the records it had not yet made
// durable — and is returned incomplete, as a torn line at the end of the
// file is; otherwise the zeros are a hole, reported as a line too long
// (nulAt set) since the reader has gone past them.
func (lr *lineReader) tornIntoZeros(head []byte, err error, tooLong bool) ([]byte, bool, error) {
	lr.line++
	if tooLong || len(lr.buf)+len(head) > MaxLine {
		return nil, false, errLineTooLong
	}
	lr.buf = append(lr.buf, head...) // before the buffer is read again
	zero := true
	if err == bufio.ErrBufferFull {
		var rerr error
		if zero, rerr = lr.restIsZero(); rerr != nil {
			return nil, false, rerr
		}
	}
	if !zero {
		return nil, false, errLineTooLong
	}
	lr.zeros = true
	return lr.buf, false, nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
