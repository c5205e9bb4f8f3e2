package audit

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sealedTrail writes 10 records with a digest every 4, one line per write:
// seq 1-4, digest 5, seq 6-9, digest 10, seq 11-12, final digest 13. The
// line at index i has seq i+1.
func sealedTrail(t *testing.T, cfg Config) (string, *ecdsa.PublicKey) {
	key := newKey(t)
	cfg.Dir, cfg.Signer = t.TempDir(), key
	if cfg.DigestEvery == 0 {
		cfg.DigestEvery = 4
	}
	writeN(t, cfg, 0, 10)
	return cfg.Dir, &key.PublicKey
}

func mustVerify(t *testing.T, dir string, pub *ecdsa.PublicKey) *VerifyReport {
	t.Helper()
	rep, err := Verify(dir, pub)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func mustBreak(t *testing.T, dir string, pub *ecdsa.PublicKey) *BadRecord {
	t.Helper()
	rep, err := Verify(dir, pub)
	if !errors.Is(err, ErrBroken) || rep == nil || rep.Bad == nil {
		t.Fatalf("tampering not caught: %v", err)
	}
	if !strings.Contains(err.Error(), rep.Bad.Reason) {
		t.Fatalf("error %q does not give the reason", err)
	}
	return rep.Bad
}

func TestVerifyNamesTheFirstBadRecord(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutate func([][]byte) [][]byte
		line   int
		seq    uint64
		reason string
	}{
		{"edited", func(l [][]byte) [][]byte {
			l[2] = bytes.Replace(l[2], []byte(`"Encrypt"`), []byte(`"Decrypt"`), 1)
			return l
		}, 3, 3, "changed"},
		{"edited before a digest", func(l [][]byte) [][]byte {
			l[3] = bytes.Replace(l[3], []byte(`"192.0.2.10"`), []byte(`"192.0.2.11"`), 1)
			return l
		}, 4, 4, "changed"},
		// A link that does not match cannot tell an edited record from an
		// edited prevHash after it: Verify names the earlier line.
		{"prevHash edited", func(l [][]byte) [][]byte {
			l[6] = bytes.Replace(l[6], []byte(`"prevHash":"`), []byte(`"prevHash":"0`), 1)
			return l
		}, 6, 6, "changed"},
		{"deleted", func(l [][]byte) [][]byte { return append(l[:2:2], l[3:]...) }, 3, 4, "missing"},
		{"inserted", func(l [][]byte) [][]byte {
			return append(append(append([][]byte{}, l[:3]...), l[1]), l[3:]...)
		}, 4, 2, "inserted"},
		{"reordered", func(l [][]byte) [][]byte { l[2], l[3] = l[3], l[2]; return l }, 3, 4, "out of order"},
		{"digest deleted", func(l [][]byte) [][]byte { return append(l[:4:4], l[5:]...) }, 5, 6, "missing"},
		{"digest range forged", func(l [][]byte) [][]byte {
			l[12] = bytes.Replace(l[12], []byte(`"lastSeq":12`), []byte(`"lastSeq":11`), 1)
			return l
		}, 13, 13, "digest seals"},
		{"digest head forged", func(l [][]byte) [][]byte {
			l[9] = bytes.Replace(l[9], []byte(`"headHash":"`), []byte(`"headHash":"0`), 1)
			return l
		}, 10, 10, "headHash"},
		{"digest time edited", func(l [][]byte) [][]byte {
			l[9] = bytes.Replace(l[9], []byte(`"eventTime":"20`), []byte(`"eventTime":"19`), 1)
			return l
		}, 10, 10, "signature"},
		{"signature moved", func(l [][]byte) [][]byte {
			sig := func(b []byte) []byte {
				i := bytes.Index(b, []byte(`"signature":"`)) + len(`"signature":"`)
				return b[i : i+bytes.IndexByte(b[i:], '"')]
			}
			l[12] = bytes.Replace(l[12], sig(l[12]), sig(l[9]), 1)
			return l
		}, 13, 13, "signature"},
		{"not JSON", func(l [][]byte) [][]byte { l[7] = []byte("{\"seq\":8,\n"); return l }, 8, 8, "not a JSON record"},
		{"first record removed", func(l [][]byte) [][]byte { return l[1:] }, 1, 2, "seq 2 where 1 belongs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, pub := sealedTrail(t, Config{})
			path := trail(t, dir)[0].path
			writeLines(t, path, c.mutate(fileLines(t, path)))
			bad := mustBreak(t, dir, pub)
			if bad.File != path || bad.Line != c.line || bad.Seq != c.seq || !strings.Contains(bad.Reason, c.reason) {
				t.Fatalf("bad record %+v, want line %d, seq %d, %q", bad, c.line, c.seq, c.reason)
			}
		})
	}
}

func TestVerifyIntactTrail(t *testing.T) {
	dir, pub := sealedTrail(t, Config{})
	rep := mustVerify(t, dir, pub)
	if since := time.Since(rep.SealedAt); since < 0 || since > time.Hour {
		t.Fatalf("sealed at %v", rep.SealedAt)
	}
	rep.SealedAt = time.Time{}
	if rep.Anchor == nil || rep.Anchor.Seq != 13 || rep.Gaps != nil {
		t.Fatalf("anchor %+v, gaps %+v", rep.Anchor, rep.Gaps)
	}
	rep.Anchor = nil
	if !reflect.DeepEqual(*rep, VerifyReport{Files: 1, Records: 13, Digests: 3, LastSeq: 13}) {
		t.Fatalf("report %+v", rep)
	}
	if _, err := Verify(dir, &newKey(t).PublicKey); !errors.Is(err, ErrBroken) {
		t.Fatal("verified with another key")
	}
	if _, err := Verify(dir, nil); err == nil {
		t.Fatal("verified with no key")
	}
	if rep := mustVerify(t, t.TempDir(), pub); rep.Records != 0 || rep.Files != 0 {
		t.Fatalf("empty directory: %+v", rep)
	}
}

// A trail cut short after a digest is caught by its anchor. Without one
// (a trail from before anchors) it verifies, reporting the records after
// the last digest as unsealed; they are still chain-checked.
func TestVerifyUnsealedTail(t *testing.T) {
	dir, pub := sealedTrail(t, Config{})
	path := trail(t, dir)[0].path
	l := fileLines(t, path)
	writeLines(t, path, l[:12]) // the final digest is gone
	if bad := mustBreak(t, dir, pub); bad.Seq != 13 || !strings.Contains(bad.Reason, "records 13..13 are missing") {
		t.Fatalf("cut after a digest, anchored: %+v", bad)
	}
	if err := os.Remove(AnchorPath(dir)); err != nil {
		t.Fatal(err)
	}
	if rep := mustVerify(t, dir, pub); rep.LastSeq != 12 || rep.Unsealed != 2 || rep.Digests != 2 || rep.Bad != nil {
		t.Fatalf("report %+v", rep)
	}
	l[10] = bytes.Replace(l[10], []byte("req-"), []byte("REQ-"), 1)
	writeLines(t, path, l[:12])
	if bad := mustBreak(t, dir, pub); bad.Seq != 11 || bad.Line != 11 {
		t.Fatalf("edit in the unsealed tail: %+v", bad)
	}
}

// A crash mid-write leaves a torn final line: reported, not an error, in the
// newest file; in an older file it means the file was cut short.
func TestVerifyTornLines(t *testing.T) {
	dir, pub := sealedTrail(t, Config{MaxFileBytes: 2500})
	fs := trail(t, dir)
	if len(fs) < 3 {
		t.Fatalf("%d files", len(fs))
	}
	newest := fs[len(fs)-1].path
	raw, _ := os.ReadFile(newest)
	os.WriteFile(newest, append(raw, `{"eventVersion":"1.08","userIdentity":{"ty`...), 0o600)
	if rep := mustVerify(t, dir, pub); !rep.TornTail || rep.Unsealed != 0 {
		t.Fatalf("report %+v", rep)
	}
	os.WriteFile(newest, raw, 0o600)
	older := fs[1].path
	raw, _ = os.ReadFile(older)
	os.WriteFile(older, raw[:len(raw)-10], 0o600)
	if bad := mustBreak(t, dir, pub); bad.File != older || !strings.Contains(bad.Reason, "cut short") {
		t.Fatalf("a cut older file: %+v", bad)
	}
}

// Deleting a whole file in the middle is caught at the first record of the
// next file.
func TestVerifyDeletedFile(t *testing.T) {
	dir, pub := sealedTrail(t, Config{MaxFileBytes: 2500})
	fs := trail(t, dir)
	mustVerify(t, dir, pub)
	os.Remove(fs[1].path)
	bad := mustBreak(t, dir, pub)
	if bad.File != fs[2].path || bad.Line != 1 || !strings.Contains(bad.Reason, "is a file missing") {
		t.Fatalf("deleted file: %+v", bad)
	}
}

// The same record moved into another file is caught where it lands.
func TestVerifyRecordMovedAcrossFiles(t *testing.T) {
	dir, pub := sealedTrail(t, Config{MaxFileBytes: 2500})
	fs := trail(t, dir)
	a, b := fileLines(t, fs[0].path), fileLines(t, fs[1].path)
	writeLines(t, fs[0].path, a[:len(a)-1])
	writeLines(t, fs[1].path, append([][]byte{a[len(a)-1]}, b...))
	// The chain is over the sequence of lines, not where files split it.
	mustVerify(t, dir, pub)
	// Swapping the last lines of two files is not harmless.
	a, b = fileLines(t, fs[0].path), fileLines(t, fs[1].path)
	a[len(a)-1], b[len(b)-1] = b[len(b)-1], a[len(a)-1]
	writeLines(t, fs[0].path, a)
	writeLines(t, fs[1].path, b)
	if bad := mustBreak(t, dir, pub); bad.File != fs[0].path || bad.Line != len(a) {
		t.Fatalf("swapped across files: %+v", bad)
	}
}

func TestVerifyLineTooLong(t *testing.T) {
	dir, pub := sealedTrail(t, Config{})
	path := trail(t, dir)[0].path
	l := fileLines(t, path)
	l[4] = append(bytes.Repeat([]byte("x"), MaxLine+10), '\n')
	writeLines(t, path, l)
	if bad := mustBreak(t, dir, pub); bad.Line != 5 || !strings.Contains(bad.Reason, "longer") {
		t.Fatalf("long line: %+v", bad)
	}
}

// The chain hash is over the exact bytes of a line.
func TestChainIsOverExactLineBytes(t *testing.T) {
	dir, _ := sealedTrail(t, Config{})
	l := fileLines(t, trail(t, dir)[0].path)
	sum := sha256.Sum256(bytes.TrimSuffix(l[0], []byte("\n")))
	if !bytes.Contains(l[1], []byte(`"prevHash":"`+hex.EncodeToString(sum[:])+`"`)) {
		t.Fatal("line 2 does not carry the SHA-256 of line 1")
	}
}
