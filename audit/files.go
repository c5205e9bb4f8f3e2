package audit

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/internal/atomicfile"
)

// File names sort by creation time and carry the file's sequence number:
// audit-20261123T011400Z-000001.jsonl. Readers order files by the sequence
// number, so a clock that steps back cannot reorder the trail.
const (
	filePrefix     = "audit-"
	fileSuffix     = ".jsonl"
	fileTimeLayout = "20060102T150405Z"
)

func fileName(t time.Time, seq uint64) string {
	return fmt.Sprintf("%s%s-%06d%s", filePrefix, t.UTC().Format(fileTimeLayout), seq, fileSuffix)
}

// trailFile is one file of the trail.
type trailFile struct {
	path  string
	seq   uint64
	start time.Time
}

// parseFileName reads the time and sequence out of a file name.
func parseFileName(base string) (t time.Time, seq uint64, ok bool) {
	rest, found := strings.CutPrefix(base, filePrefix)
	if !found {
		return t, 0, false
	}
	rest, found = strings.CutSuffix(rest, fileSuffix)
	if !found || len(rest) < len(fileTimeLayout)+2 || rest[len(fileTimeLayout)] != '-' {
		return t, 0, false
	}
	t, err := time.Parse(fileTimeLayout, rest[:len(fileTimeLayout)])
	if err != nil {
		return t, 0, false
	}
	seq, err = strconv.ParseUint(rest[len(fileTimeLayout)+1:], 10, 64)
	return t, seq, err == nil
}

// listFiles returns the trail's files in order.
func listFiles(dir string) ([]trailFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var fs []trailFile
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if t, seq, ok := parseFileName(e.Name()); ok {
			fs = append(fs, trailFile{path: filepath.Join(dir, e.Name()), seq: seq, start: t})
		}
	}
	slices.SortFunc(fs, func(a, b trailFile) int {
		return cmp.Or(cmp.Compare(a.seq, b.seq), cmp.Compare(a.path, b.path))
	})
	return fs, nil
}

// chainFields are the members Verify and recovery read from a line.
type chainFields struct {
	Seq      uint64  `json:"seq"`
	PrevHash string  `json:"prevHash"`
	Digest   *Digest `json:"digest"`
	Gap      *Gap    `json:"gap"`
}

// recoverTrail finds where the chain continues: the last complete record
// (a rotation may have left the newest file empty), the last digest, and the
// newest file, whose torn end (a write a crash cut short, never
// acknowledged) it truncates. It then holds the head against the anchor
// (checkAnchor), returning the end of a gap AcknowledgeGap is to record.
func (w *Writer) recoverTrail() (gapLast uint64, err error) {
	fs, err := listFiles(w.cfg.Dir)
	if err != nil {
		return 0, err
	}
	if len(fs) == 0 {
		return w.checkAnchor()
	}
	last := fs[len(fs)-1]
	raw, err := os.ReadFile(last.path)
	if err != nil {
		return 0, err
	}
	// A power loss between two fdatasyncs (SyncInterval) can leave a later
	// block of what was written and lose an earlier one: zeros where records
	// were, then records, which cannot be chained to those before the hole.
	// They are kept beside the trail, in a file readers ignore, and the chain
	// goes on from the last record before the hole — unless that is before
	// the anchor, which checkAnchor refuses, changing nothing.
	var aside []byte
	asideAt := 0
	if z := bytes.IndexByte(raw, 0); z >= 0 && !isZero(raw[z:]) {
		asideAt = bytes.LastIndexByte(raw[:z], '\n') + 1
		aside = bytes.TrimRight(raw[asideAt:], "\x00")
	}
	whole := len(raw)
	if aside != nil {
		raw = raw[:asideAt]
	}
	// A torn write ends without a newline; on some file systems it can also
	// leave blocks of zeros that were never written. No record holds a NUL
	// byte, so lines with one at the end are torn too.
	good := bytes.LastIndexByte(raw, '\n') + 1
	for good > 0 {
		start := bytes.LastIndexByte(raw[:good-1], '\n') + 1
		if bytes.IndexByte(raw[start:good], 0) < 0 {
			break
		}
		good = start
	}
	torn := whole - good
	raw = raw[:good]

	headFound := false
	for i := len(fs) - 1; i >= 0; i-- {
		data := raw
		if i < len(fs)-1 {
			if data, err = os.ReadFile(fs[i].path); err != nil {
				return 0, err
			}
			data = data[:bytes.LastIndexByte(data, '\n')+1]
		}
		for end := len(data); end > 0; {
			start := bytes.LastIndexByte(data[:end-1], '\n') + 1
			line := data[start : end-1]
			end = start
			if len(line) == 0 && !headFound {
				continue
			}
			var c chainFields
			if err := json.Unmarshal(line, &c); err != nil {
				if headFound {
					break // the digest search ends at damage; Verify will name it
				}
				return 0, fmt.Errorf("%w: the last record of %s is not readable (%v); run verify and move the file aside", ErrCorrupt, fs[i].path, err)
			}
			if !headFound {
				w.seq, w.prev, w.hasPrev = c.Seq, sha256.Sum256(line), true
				headFound = true
			}
			if c.Digest != nil || c.Gap != nil { // a gap record seals the chain too
				w.sealed = c.Seq
				break
			}
		}
		if w.sealed != 0 {
			break
		}
	}

	if gapLast, err = w.checkAnchor(); err != nil {
		return 0, err // nothing changed
	}
	if aside != nil {
		path := fmt.Sprintf("%s-after-hole-at-%d.lost", strings.TrimSuffix(last.path, fileSuffix), asideAt)
		if err := atomicfile.WriteFile(path, aside, 0o600); err != nil {
			return 0, fmt.Errorf("audit: keep what follows the hole in %s: %w", last.path, err)
		}
		w.cfg.Logger.Warn("audit trail: the newest file has zeros followed by other bytes (a power loss between fdatasyncs, or a torn write); the chain goes on before the zeros, and what followed them is kept aside",
			"file", last.path, "holeAt", asideAt, "keptIn", path, "bytes", len(aside))
	}
	if torn > 0 {
		if err := truncate(last.path, int64(good)); err != nil {
			return 0, fmt.Errorf("audit: drop the torn final line of %s: %w", last.path, err)
		}
		w.stats.TornBytes = int64(torn)
	}
	f, err := w.open(last.path, false)
	if err != nil {
		return 0, err
	}
	// What a killed process wrote is in the page cache but perhaps not on
	// disk (SyncInterval, or a batch whose fsync never returned): make it
	// durable before the anchor can name it.
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, fmt.Errorf("audit: fsync %s: %w", last.path, err)
	}
	w.f, w.fileSeq, w.fileBytes, w.allocated, w.dropped, w.fileStart = f, last.seq, int64(len(raw)), int64(len(raw)), 0, last.start
	return gapLast, nil
}

func truncate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
