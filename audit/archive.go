package audit

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/coffer-kms/coffer/internal/atomicfile"
)

// ManifestFile is the name, in the audit directory, of the archive
// manifest: which segments Archive moved out of the trail, and where the
// chain goes on. Without it the trail must start at seq 1.
const ManifestFile = "archived.json"

// Manifest records, signed with the audit signing key, which segments of
// the trail were archived and the chain state at the first record kept, so
// that Verify can check the trail from there (FirstSeq, linked to
// PrevHash, with the records up to SealedSeq sealed) and an archived
// segment cannot be slipped out of the trail unnoticed: one removed
// without a manifest that names it leaves a hole Verify reports.
type Manifest struct {
	FirstSeq  uint64    `json:"firstSeq"`  // of the first record kept in the trail
	PrevHash  string    `json:"prevHash"`  // hex SHA-256 of the last archived line
	SealedSeq uint64    `json:"sealedSeq"` // seq of the last digest or gap record archived (0: none)
	Segments  []Segment `json:"segments"`  // every segment ever archived, in order
	Time      string    `json:"time"`      // RFC 3339 UTC, when it was written
	Signature []byte    `json:"signature"`
}

// Segment is one archived trail file.
type Segment struct {
	Name     string `json:"name"`
	FirstSeq uint64 `json:"firstSeq"`
	LastSeq  uint64 `json:"lastSeq"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"` // hex, of the whole file
}

// signedHash covers the label and the manifest's JSON without its signature.
func (m *Manifest) signedHash() ([32]byte, error) {
	c := *m
	c.Signature = nil
	raw, err := json.Marshal(&c)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(append([]byte(labelArchive), raw...)), nil
}

// ReadManifest reads and checks the archive manifest of the trail in dir;
// nil and no error when nothing was archived.
func ReadManifest(dir string, pub *ecdsa.PublicKey) (*Manifest, error) {
	path := filepath.Join(dir, ManifestFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("audit: archive manifest %s is not readable: %v", path, err)
	}
	h, err := m.signedHash()
	if err != nil || pub == nil || !ecdsa.VerifyASN1(pub, h[:], m.Signature) {
		return nil, fmt.Errorf("audit: the signature of archive manifest %s does not verify with the public key", path)
	}
	if m.FirstSeq < 2 || len(m.PrevHash) != 64 || len(m.Segments) == 0 || m.Segments[len(m.Segments)-1].LastSeq+1 != m.FirstSeq {
		return nil, fmt.Errorf("audit: archive manifest %s is inconsistent", path)
	}
	return &m, nil
}

func writeManifest(dir string, s crypto.Signer, m *Manifest, now time.Time) error {
	m.Time = now.UTC().Format(time.RFC3339Nano)
	m.Signature = nil
	h, err := m.signedHash()
	if err != nil {
		return err
	}
	if m.Signature, err = s.Sign(rand.Reader, h[:], crypto.SHA256); err != nil {
		return fmt.Errorf("sign archive manifest: %w", err)
	}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, ManifestFile), append(raw, '\n'), 0o600)
}

// ArchiveConfig says what Archive moves and where.
type ArchiveConfig struct {
	Dir    string        // the audit directory
	To     string        // where archived segments go, created 0700 if missing
	Before time.Time     // archive segments whose records are all older
	Signer crypto.Signer // the audit signing key, to sign the manifest
	Now    func() time.Time

	// crash, when set, is called at each step ("copied", "manifest"); when
	// it returns true Archive stops there as if the process had died.
	crash func(step string) bool
}

// ArchiveReport says what Archive did.
type ArchiveReport struct {
	Archived []Segment // moved by this run (or finished, after a crash)
	Manifest *Manifest // nil when nothing was ever archived
}

// errCrashed is returned by Archive when a test's crash hook stopped it.
var errCrashed = errors.New("audit: archive stopped by a simulated crash")

// Archive moves out of the trail in cfg.Dir, to cfg.To, the sealed
// segments (files) whose records are all older than cfg.Before. It first
// verifies the trail, and archives only a prefix of it, never the newest
// file (the Writer's), never a file holding or following the anchored head
// or the last digest: what stays verifies from the manifest on, under a
// digest that stays too.
//
// Each step survives a crash, and a re-run finishes what one left: every
// segment is copied (synced, renamed, the directory synced) and the copy
// read back and hashed; then the signed manifest naming the segments and
// the chain state after them is written; only then are the originals
// removed. A crash before the manifest leaves the trail as it was (the
// copies are reused if identical); one after it leaves originals that
// Verify skips as archived and the next run removes.
//
// It may run while the server runs: the Writer appends only to the
// newest file.
func Archive(cfg ArchiveConfig) (*ArchiveReport, error) {
	if cfg.Signer == nil || cfg.To == "" || cfg.Before.IsZero() {
		return nil, errors.New("audit: Archive needs a signing key, a target directory and a time")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	pub, err := signerKey(cfg.Signer)
	if err != nil {
		return nil, err
	}
	if abs, err := filepath.Abs(cfg.To); err == nil {
		if d, err := filepath.Abs(cfg.Dir); err == nil && abs == d {
			return nil, errors.New("audit: the archive directory is the audit directory")
		}
	}
	rep, sealed, err := verify(cfg.Dir, pub)
	if err != nil {
		return nil, fmt.Errorf("audit: not archiving a trail that does not verify: %w", err)
	}
	m := rep.Archive
	out := &ArchiveReport{Manifest: m}
	if err := os.MkdirAll(cfg.To, 0o700); err != nil {
		return nil, err
	}

	// Finish a run a crash stopped after its manifest.
	if m != nil {
		for _, s := range m.Segments {
			src := filepath.Join(cfg.Dir, s.Name)
			if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err := copySegment(src, filepath.Join(cfg.To, s.Name), s.SHA256); err != nil {
				return out, err
			}
			if err := os.Remove(src); err != nil {
				return out, err
			}
			out.Archived = append(out.Archived, s)
		}
		if err := atomicfile.SyncDir(cfg.Dir); err != nil {
			return out, err
		}
	}

	files, err := listFiles(cfg.Dir)
	if err != nil {
		return out, err
	}
	limit := sealed // the last digest stays
	if rep.Anchor != nil && rep.Anchor.Seq < limit {
		limit = rep.Anchor.Seq
	}
	var (
		picked []Segment
		next   = Manifest{SealedSeq: 0}
	)
	if m != nil {
		next.Segments, next.SealedSeq = slices.Clone(m.Segments), m.SealedSeq
	}
	for i, f := range files {
		if i == len(files)-1 {
			break // the newest file is the Writer's
		}
		sc, err := scanSegment(f.path)
		if err != nil {
			return out, err
		}
		if sc.lastSeq >= limit || !sc.newest.Before(cfg.Before) || sc.records == 0 {
			break
		}
		seg := Segment{Name: filepath.Base(f.path), FirstSeq: sc.firstSeq, LastSeq: sc.lastSeq, Size: sc.size, SHA256: sc.sum}
		picked = append(picked, seg)
		next.Segments = append(next.Segments, seg)
		next.FirstSeq, next.PrevHash = sc.lastSeq+1, sc.lastHash
		if sc.sealed != 0 {
			next.SealedSeq = sc.sealed
		}
	}
	if len(picked) == 0 {
		return out, nil
	}
	for _, s := range picked {
		if err := copySegment(filepath.Join(cfg.Dir, s.Name), filepath.Join(cfg.To, s.Name), s.SHA256); err != nil {
			return out, err
		}
	}
	if cfg.crash != nil && cfg.crash("copied") {
		return out, errCrashed
	}
	if err := writeManifest(cfg.Dir, cfg.Signer, &next, cfg.Now()); err != nil {
		return out, err
	}
	out.Manifest = &next
	if cfg.crash != nil && cfg.crash("manifest") {
		return out, errCrashed
	}
	for _, s := range picked {
		if err := os.Remove(filepath.Join(cfg.Dir, s.Name)); err != nil {
			return out, err
		}
		out.Archived = append(out.Archived, s)
	}
	return out, atomicfile.SyncDir(cfg.Dir)
}

// segmentScan is what Archive needs to know of a file.
type segmentScan struct {
	records           int
	firstSeq, lastSeq uint64
	sealed            uint64 // seq of its last digest or gap record
	lastHash          string // hex SHA-256 of its last line
	newest            time.Time
	size              int64
	sum               string
}

// scanSegment reads a whole trail file (Verify has checked it).
func scanSegment(path string) (*segmentScan, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	sc := &segmentScan{size: int64(len(raw)), sum: hex.EncodeToString(sum[:])}
	for line := range bytes.Lines(raw) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		var r struct {
			chainFields
			EventTime string `json:"eventTime"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("audit: %s: %v", path, err)
		}
		t, err := time.Parse(time.RFC3339, r.EventTime)
		if err != nil {
			return nil, fmt.Errorf("audit: %s seq %d: eventTime: %v", path, r.Seq, err)
		}
		if sc.records == 0 {
			sc.firstSeq = r.Seq
		}
		sc.records++
		sc.lastSeq = r.Seq
		if t.After(sc.newest) {
			sc.newest = t
		}
		if r.Digest != nil || r.Gap != nil {
			sc.sealed = r.Seq
		}
		h := sha256.Sum256(line)
		sc.lastHash = hex.EncodeToString(h[:])
	}
	return sc, nil
}

// copySegment copies src to dst durably and checks the copy's hash
// against want. A dst already there with that hash (a re-run) is kept.
func copySegment(src, dst, want string) error {
	if got, err := fileSHA256(dst); err == nil && got == want {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := atomicfile.Write(dst, 0o600, func(f *os.File) error { _, err := io.Copy(f, in); return err }); err != nil {
		return fmt.Errorf("audit: archive %s: %w", filepath.Base(src), err)
	}
	got, err := fileSHA256(dst)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("audit: the copy %s does not hash as %s does: not removing the original", dst, src)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// VerifyArchive checks the segments the trail in dir archived, in
// archiveDir: each is there with the hash the manifest records, and
// together they chain from seq 1, with valid digests, to the state the
// manifest says the trail goes on from. It returns the manifest; nil when
// nothing was archived.
func VerifyArchive(dir, archiveDir string, pub *ecdsa.PublicKey) (*Manifest, *VerifyReport, error) {
	m, err := ReadManifest(dir, pub)
	if err != nil || m == nil {
		return m, nil, err
	}
	v := &verifier{pub: pub, rep: &VerifyReport{Files: len(m.Segments)}}
	for _, s := range m.Segments {
		path := filepath.Join(archiveDir, s.Name)
		got, err := fileSHA256(path)
		if err != nil {
			return m, v.rep, v.bad(path, 0, s.FirstSeq, "archived segment unreadable: %v", err)
		}
		if got != s.SHA256 {
			return m, v.rep, v.bad(path, 0, s.FirstSeq, "archived segment changed: its SHA-256 is not the one the manifest records")
		}
		if err := v.file(trailFile{path: path}, false); err != nil {
			return m, v.rep, err
		}
		if v.seq != s.LastSeq {
			return m, v.rep, v.bad(path, 0, v.seq, "archived segment ends at seq %d, the manifest says %d", v.seq, s.LastSeq)
		}
	}
	v.rep.LastSeq = v.seq
	if v.seq+1 != m.FirstSeq || string(v.prev[:]) != m.PrevHash || v.sealed != m.SealedSeq {
		return m, v.rep, v.bad(archiveDir, 0, v.seq, "the archived segments do not end where the manifest says the trail goes on (seq %d)", m.FirstSeq)
	}
	return m, v.rep, nil
}
