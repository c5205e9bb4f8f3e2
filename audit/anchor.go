package audit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// writeAnchor records seq and head (valid when seq > 0) in path, atomically.
func writeAnchor(path string, s crypto.Signer, seq uint64, head *[32]byte, now time.Time) error {
	a := &Anchor{Seq: seq, Time: now.UTC().Format(time.RFC3339Nano)}
	if seq > 0 {
		a.HeadHash = hex.EncodeToString(head[:])
	}
	h, err := a.signedHash()
	if err != nil {
		return err
	}
	if a.Signature, err = s.Sign(rand.Reader, h[:], crypto.SHA256); err != nil {
		return fmt.Errorf("sign anchor: %w", err)
	}
	raw, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, append(raw, '\n'), 0o600); err != nil {
		return fmt.Errorf("anchor: %w", err)
	}
	return nil
}

// ReadAnchor reads and checks the anchor of the trail in dir. It returns
// nil and no error when there is none (a trail written before anchors, or
// never opened by a Writer that has them: "unanchored").
func ReadAnchor(dir string, pub *ecdsa.PublicKey) (*Anchor, error) {
	path := AnchorPath(dir)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var a Anchor
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("audit: anchor %s is not readable: %v", path, err)
	}
	h, err := a.signedHash()
	if err != nil || pub == nil || !ecdsa.VerifyASN1(pub, h[:], a.Signature) {
		return nil, fmt.Errorf("audit: the signature of anchor %s does not verify with the public key", path)
	}
	return &a, nil
}
