package audit

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// VerifyReport is the outcome of Verify.
type VerifyReport struct {
	Files   int    // trail files read
	Records int    // lines that verified, digests included
	Digests int    // signed digests that verified
	LastSeq uint64 // of the last line that verified
	// Unsealed counts the records after the last digest: their chain was
	// checked, but no signature covers them yet (a crash, or a trail cut
	// short after a digest, leaves some).
	Unsealed int
	// SealedAt is the time of the last digest, which its signature covers.
	// A running Writer seals at least every DigestInterval, so a SealedAt
	// long before the Writer stopped means the trail was cut short.
	SealedAt time.Time
	// TornTail reports that the newest file ends in a line with no newline:
	// a write a crash cut short, never acknowledged, and dropped by Open.
	TornTail bool
	// Anchor is the head recorded beside the trail (see Anchor); nil when
	// the trail is unanchored (written before anchors): then nothing shows
	// whether records were cut off its end.
	Anchor *Anchor
	// Gaps are the losses an operator acknowledged (AcknowledgeGap), which
	// the chain goes on across.
	Gaps []Gap
	// Archive is the archive manifest (see Archive): the trail was checked
	// from its FirstSeq, linked to its PrevHash. Nil when nothing was
	// archived, and then the trail starts at seq 1.
	Archive *Manifest
	// ArchivedLeft counts files the manifest names as archived that are
	// still in the directory (Archive stopped before removing them; a
	// re-run removes them). Verify skips them.
	ArchivedLeft int
	// Bad names the first bad record; nil when the chain holds.
	Bad *BadRecord
}

// BadRecord names the first record that breaks the chain.
type BadRecord struct {
	File   string // path of the trail file
	Line   int    // from 1
	Seq    uint64 // the sequence number the record has or should have
	Reason string
}

func (b *BadRecord) Error() string {
	return fmt.Sprintf("%s line %d (seq %d): %s", filepath.Base(b.File), b.Line, b.Seq, b.Reason)
}

// Verify replays the trail in dir: every line's sequence number and link to
// the line before it, across files, and every digest's range and signature
// against pub. The trail starts at seq 1, or where its signed archive
// manifest (ManifestFile, see Archive) says the records kept start, linked
// to the last archived one; VerifyArchive checks the archived segments. When the chain breaks it returns a report whose Bad names the
// first bad record, and an error wrapping ErrBroken.
//
// The trail must reach its anchor (AnchorPath(dir)): a trail that ends
// before it, or holds no records while the anchor says it had some, is
// broken (the tail cut, files deleted), and Bad names what is missing.
// Records after the anchor and after the last digest (Unsealed) are
// chained but nothing outside them shows they were not cut off; an
// unanchored trail (Anchor nil) has no such check at all.
func Verify(dir string, pub *ecdsa.PublicKey) (*VerifyReport, error) {
	rep, _, err := verify(dir, pub)
	return rep, err
}

// verify is Verify, also returning the seq of the last digest or gap
// record (0: none).
func verify(dir string, pub *ecdsa.PublicKey) (rep *VerifyReport, sealed uint64, err error) {
	if pub == nil {
		return nil, 0, errors.New("audit: Verify needs the signing public key")
	}
	fs, err := listFiles(dir)
	if err != nil {
		return nil, 0, err
	}
	v := &verifier{pub: pub, rep: &VerifyReport{Files: len(fs)}}
	if v.anchor, err = ReadAnchor(dir, pub); err != nil {
		return v.rep, 0, v.bad(AnchorPath(dir), 0, 0, "%v", err)
	}
	v.rep.Anchor = v.anchor
	if v.rep.Archive, err = ReadManifest(dir, pub); err != nil {
		return v.rep, 0, v.bad(filepath.Join(dir, ManifestFile), 0, 0, "%v", err)
	}
	if m := v.rep.Archive; m != nil {
		v.seq, v.sealed = m.FirstSeq-1, m.SealedSeq
		copy(v.prev[:], m.PrevHash)
		archived := map[string]bool{}
		for _, s := range m.Segments {
			archived[s.Name] = true
		}
		for len(fs) > 0 && archived[filepath.Base(fs[0].path)] {
			fs = fs[1:]
			v.rep.ArchivedLeft++
		}
		v.rep.Files = len(fs)
	}
	var lastFile string
	for i, f := range fs {
		if i > 0 && f.seq > fs[i-1].seq+1 {
			v.fileGap = fmt.Sprintf("; the file numbers jump from %06d to %06d", fs[i-1].seq, f.seq)
		}
		if err := v.file(f, i == len(fs)-1); err != nil {
			return v.rep, 0, err
		}
		v.fileGap, lastFile = "", f.path
	}
	v.rep.LastSeq = v.seq
	v.rep.Unsealed = int(v.seq - v.sealed)
	if a := v.anchor; a != nil && v.seq < a.Seq {
		if v.seq == 0 {
			return v.rep, 0, v.bad(dir, 0, 1, "the trail holds no records, but its anchor (written %s) records seq %d: the trail was deleted", a.Time, a.Seq)
		}
		torn := ""
		if v.rep.TornTail {
			torn = "; the newest file ends mid-record"
		}
		return v.rep, 0, v.bad(lastFile, v.prevLine+1, v.seq+1, "the trail ends at seq %d, but its anchor (written %s) records seq %d: records %d..%d are missing (the tail was cut or the newest files deleted%s)",
			v.seq, a.Time, a.Seq, v.seq+1, a.Seq, torn)
	}
	return v.rep, v.sealed, nil
}

type verifier struct {
	pub    *ecdsa.PublicKey
	rep    *VerifyReport
	seq    uint64   // of the last good line
	prev   [64]byte // its SHA-256, hex
	sealed uint64   // seq of the last digest (or gap record)
	anchor *Anchor
	// fileGap notes, while the file after it is read, that file numbers
	// jump: a file is missing.
	fileGap string
	// Where the last good line is, to blame it when the next one does not
	// link to it.
	prevFile string
	prevLine int
}

func (v *verifier) bad(file string, line int, seq uint64, format string, args ...any) error {
	v.rep.Bad = &BadRecord{File: file, Line: line, Seq: seq, Reason: fmt.Sprintf(format, args...)}
	v.rep.LastSeq = v.seq
	return fmt.Errorf("%w: %s", ErrBroken, v.rep.Bad.Error())
}

func (v *verifier) file(f trailFile, newest bool) error {
	fh, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer fh.Close()
	lr := newLineReader(fh)
	for {
		line, complete, err := lr.next()
		switch {
		case err == io.EOF && lr.zeros:
			switch zero, err := lr.restIsZero(); {
			case err != nil:
				return err
			case !zero:
				return v.bad(f.path, lr.line+1, v.seq+1, "NUL bytes where a record should start, and records after them: lines were blanked out")
			case !newest:
				return v.bad(f.path, lr.line+1, v.seq+1, "preallocated zeros at the end of a file that is not the newest: the file was not closed by its writer")
			}
			return nil
		case err == io.EOF:
			return nil
		case err == errLineTooLong && lr.nulAt >= 0:
			return v.bad(f.path, lr.line, v.seq+1, "%s", holeReason(lr.nulAt))
		case err == errLineTooLong:
			return v.bad(f.path, lr.line, v.seq+1, "longer than %d bytes", MaxLine)
		case err != nil:
			return err
		case !complete && newest:
			v.rep.TornTail = true
			return nil
		case !complete:
			return v.bad(f.path, lr.line, v.seq+1, "torn line at the end of a file that is not the newest: the file was cut short")
		case lr.nulAt >= 0:
			return v.bad(f.path, lr.line, v.seq+1, "%s", holeReason(lr.nulAt))
		}
		if err := v.line(f.path, lr.line, line); err != nil {
			return err
		}
	}
}

// holeReason names a run of NUL bytes inside a line.
func holeReason(off int64) string {
	return fmt.Sprintf("a hole of NUL bytes from byte %d of the file, inside a record: the file was cut short under its writer and written past the cut, or blocks were lost", off)
}

func (v *verifier) line(file string, n int, line []byte) error {
	var c Record
	if err := json.Unmarshal(line, &c); err != nil {
		return v.bad(file, n, v.seq+1, "not a JSON record: %v", err)
	}
	want := v.seq + 1
	prev := v.prev[:]
	if v.seq == 0 {
		prev = nil
	}
	switch {
	case c.Seq == want && c.PrevHash == string(prev):
	case c.Seq > want && c.Gap != nil && c.PrevHash == string(prev):
		g := c.Gap
		switch {
		case g.FirstSeq != want || g.LastSeq != c.Seq-1:
			return v.bad(file, n, c.Seq, "gap record covers seq %d-%d, but the records missing are %d-%d", g.FirstSeq, g.LastSeq, want, c.Seq-1)
		case g.HeadHash != string(prev):
			return v.bad(file, n, c.Seq, "gap record headHash is not the hash of the record before it")
		case !g.verify(v.pub, c.EventTime):
			return v.bad(file, n, c.Seq, "gap record signature does not verify with the public key")
		}
		v.sealed = c.Seq
		v.rep.Gaps = append(v.rep.Gaps, *g)
	case c.Seq > want && c.Gap != nil:
		return v.bad(v.prevFile, v.prevLine, v.seq, "changed: its hash is not the prevHash of the gap record after it (or that prevHash was changed)")
	case c.Seq == want && c.Gap != nil:
		return v.bad(file, n, c.Seq, "gap record for no missing record")
	case c.Seq == want && v.seq == 0:
		return v.bad(file, n, c.Seq, "the first record has a prevHash")
	case c.Seq == want:
		return v.bad(v.prevFile, v.prevLine, v.seq, "changed: its hash is not the prevHash of the record after it (or that prevHash was changed)")
	case c.Seq < want:
		return v.bad(file, n, c.Seq, "out of order or inserted: seq %d where %d belongs", c.Seq, want)
	case n == 1 && v.seq > 0:
		return v.bad(file, n, c.Seq, "records %d..%d missing or out of order: seq %d where %d belongs (is a file missing, or the one before cut short?%s)", want, c.Seq-1, c.Seq, want, v.fileGap)
	case n == 1:
		return v.bad(file, n, c.Seq, "records %d..%d missing: the trail starts at seq %d where %d belongs (files deleted%s)", want, c.Seq-1, c.Seq, want, v.fileGap)
	default:
		return v.bad(file, n, c.Seq, "records %d..%d missing or out of order: seq %d where %d belongs", want, c.Seq-1, c.Seq, want)
	}
	if d := c.Digest; d != nil {
		switch {
		case d.HeadHash != string(prev):
			return v.bad(file, n, c.Seq, "digest headHash is not the hash of the record before it")
		case d.FirstSeq != v.sealed+1 || d.LastSeq != v.seq:
			return v.bad(file, n, c.Seq, "digest seals seq %d-%d, but the unsealed records are %d-%d", d.FirstSeq, d.LastSeq, v.sealed+1, v.seq)
		case !d.verify(v.pub, c.EventTime):
			return v.bad(file, n, c.Seq, "digest signature does not verify with the public key")
		}
		v.sealed = c.Seq
		v.rep.Digests++
		v.rep.SealedAt, _ = time.Parse(time.RFC3339, c.EventTime)
	}
	sum := sha256.Sum256(line)
	hex.Encode(v.prev[:], sum[:])
	if a := v.anchor; a != nil && c.Seq == a.Seq && a.HeadHash != string(v.prev[:]) {
		return v.bad(file, n, c.Seq, "not the record the anchor records at this seq: the trail was replaced from here")
	}
	v.seq, v.prevFile, v.prevLine = c.Seq, file, n
	v.rep.Records++
	return nil
}
