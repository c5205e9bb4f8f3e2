package audit

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/internal/atomicfile"
)

// Anchor is the trail's head recorded outside the trail, in the file
// AnchorPath(dir) beside the audit directory: the sequence number and hash
// of a record the Writer had made durable, signed with the audit signing
// key. The Writer rewrites it at least every AnchorInterval while records
// are committed, at every digest and on Close, always after the records it
// names are durable, so it never runs ahead of the trail. A trail that ends
// before its anchor lost records: Open refuses it and Verify reports it.
type Anchor struct {
	Seq       uint64 `json:"seq"`
	HeadHash  string `json:"headHash"` // hex SHA-256 of line Seq ("" when Seq is 0)
	Time      string `json:"time"`     // RFC 3339 UTC, when it was written
	Signature []byte `json:"signature"`

	// Damaged names the anchor file's other slot when it holds something
	// that does not verify (ReadAnchor); empty when it does or is empty.
	Damaged string `json:"-"`
}

// AnchorPath is the anchor file of the trail in dir: a sibling of the
// directory (dir + ".anchor"), so that emptying or deleting the directory
// leaves it.
func AnchorPath(dir string) string { return filepath.Clean(dir) + ".anchor" }

func (a *Anchor) signedHash() ([32]byte, error) {
	var head [32]byte
	if a.Seq > 0 || a.HeadHash != "" {
		if len(a.HeadHash) != 2*len(head) {
			return head, errors.New("headHash is not a SHA-256")
		}
		if _, err := hex.Decode(head[:], []byte(a.HeadHash)); err != nil {
			return head, errors.New("headHash is not a SHA-256")
		}
	}
	msg := make([]byte, 0, len(labelAnchor)+8+len(head)+len(a.Time))
	msg = append(msg, labelAnchor...)
	msg = binary.BigEndian.AppendUint64(msg, a.Seq)
	msg = append(msg, head[:]...)
	msg = append(msg, a.Time...)
	return sha256.Sum256(msg), nil
}

// The anchor file holds two slots of anchorSlot bytes: each is one JSON
// line, then NUL bytes to the slot's end (an empty slot is all NULs). The
// Writer replaces the whole file atomically (atomicfile) at Open, writing
// slot 0 and leaving slot 1 empty, then writes the slots in turn in place,
// each with one pwrite and one fdatasync: a write cut short by a power
// loss damages only the slot it was writing, and the other still holds the
// anchor before it, which is what replacing the file would have left.
// ReadAnchor takes the verifying slot with the higher seq. A file of one
// line (written before slots) is slot 0 alone.
const (
	anchorSlot  = 4096
	anchorSlots = 2
	anchorBytes = anchorSlot * anchorSlots
)

// encodeAnchor signs seq and head (valid when seq > 0) and returns the
// anchor as a full slot.
func encodeAnchor(s crypto.Signer, seq uint64, head *[32]byte, now time.Time) ([]byte, error) {
	a := &Anchor{Seq: seq, Time: now.UTC().Format(time.RFC3339Nano)}
	if seq > 0 {
		a.HeadHash = hex.EncodeToString(head[:])
	}
	h, err := a.signedHash()
	if err != nil {
		return nil, err
	}
	if a.Signature, err = s.Sign(rand.Reader, h[:], crypto.SHA256); err != nil {
		return nil, fmt.Errorf("sign anchor: %w", err)
	}
	raw, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	if len(raw) >= anchorSlot { // a signature of a P-256 key is under 80 bytes
		return nil, fmt.Errorf("anchor of %d bytes does not fit a slot", len(raw))
	}
	slot := make([]byte, anchorSlot)
	copy(slot, raw)
	slot[len(raw)] = '\n'
	return slot, nil
}

// writeAnchor replaces path, atomically, with the anchor of seq and head
// in slot 0 and an empty slot 1.
func writeAnchor(path string, s crypto.Signer, seq uint64, head *[32]byte, now time.Time) error {
	slot, err := encodeAnchor(s, seq, head, now)
	if err != nil {
		return err
	}
	return replaceAnchor(path, slot)
}

// replaceAnchor replaces path, atomically, with slot in slot 0 and an
// empty slot 1.
func replaceAnchor(path string, slot []byte) error {
	if err := atomicfile.WriteFile(path, append(slot, make([]byte, anchorBytes-anchorSlot)...), 0o600); err != nil {
		return fmt.Errorf("anchor: %w", err)
	}
	return nil
}

// errAnchorReplaced says the anchor file is not the one the Writer wrote
// (removed, or of another size): the Writer then replaces it whole.
var errAnchorReplaced = errors.New("the anchor file was removed or replaced")

// writeAnchorSlot writes slot (encodeAnchor's) as slot i of path, in
// place, and makes it durable.
func writeAnchorSlot(path string, i int, slot []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return errAnchorReplaced
	}
	if err != nil {
		return fmt.Errorf("anchor: %w", err)
	}
	err = writeSlotTo(f, i, slot)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("anchor: %w", cerr)
	}
	return err
}

func writeSlotTo(f *os.File, i int, slot []byte) error {
	if fi, err := f.Stat(); err != nil {
		return fmt.Errorf("anchor: %w", err)
	} else if fi.Size() != anchorBytes {
		return errAnchorReplaced
	}
	if _, err := f.WriteAt(slot, int64(i)*anchorSlot); err != nil {
		return fmt.Errorf("anchor: %w", err)
	}
	if err := datasync(f); err != nil {
		return fmt.Errorf("anchor: fsync: %w", err)
	}
	return nil
}

// ReadAnchor reads and checks the anchor of the trail in dir. It returns
// nil and no error when there is none (a trail written before anchors, or
// never opened by a Writer that has them: "unanchored"). When one slot
// verifies and the other holds something that does not, the anchor is the
// one that verifies and its Damaged says which slot was not (a write cut
// short, or the file changed by hand).
func ReadAnchor(dir string, pub *ecdsa.PublicKey) (*Anchor, error) {
	path := AnchorPath(dir)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, anchorBytes+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > anchorBytes {
		return nil, fmt.Errorf("audit: anchor %s is not readable: longer than %d bytes", path, anchorBytes)
	}
	var best *Anchor
	var damaged []string
	for i := 0; i*anchorSlot < len(raw); i++ {
		a, err := readSlot(raw[i*anchorSlot:min(len(raw), (i+1)*anchorSlot)], pub)
		switch {
		case err != nil:
			damaged = append(damaged, fmt.Sprintf("slot %d %v", i, err))
		case a != nil && (best == nil || a.Seq > best.Seq):
			best = a
		}
	}
	if best == nil {
		reason := "it holds no anchor"
		if len(damaged) > 0 {
			reason = strings.Join(damaged, "; ")
		}
		return nil, fmt.Errorf("audit: anchor %s: %s", path, reason)
	}
	best.Damaged = strings.Join(damaged, "; ")
	return best, nil
}

// readSlot reads one slot of the anchor file: nil for an empty one.
func readSlot(slot []byte, pub *ecdsa.PublicKey) (*Anchor, error) {
	end := len(slot)
	for end > 0 && slot[end-1] == 0 {
		end--
	}
	if end == 0 {
		return nil, nil
	}
	line, rest, ok := bytes.Cut(slot[:end], []byte{'\n'})
	if !ok || len(rest) > 0 {
		return nil, errors.New("is not one line")
	}
	var a Anchor
	if err := json.Unmarshal(line, &a); err != nil {
		return nil, fmt.Errorf("is not readable: %v", err)
	}
	h, err := a.signedHash()
	if err != nil || pub == nil || !ecdsa.VerifyASN1(pub, h[:], a.Signature) {
		return nil, errors.New("does not verify with the public key")
	}
	// The signature covers the head's bytes, not their spelling: the
	// head in capitals verifies too. Callers compare it as the Writer
	// writes it, in small letters.
	a.HeadHash = strings.ToLower(a.HeadHash)
	return &a, nil
}
