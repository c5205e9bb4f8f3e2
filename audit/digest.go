package audit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/coffer-kms/coffer/internal/atomicfile"
)

// Digest is the body of a digest record: a signature over the chain head
// (the SHA-256 of the line before the digest), the range of sequence numbers
// it seals (from the record after the previous digest to the record before
// this one) and the digest record's eventTime.
type Digest struct {
	FirstSeq  uint64 `json:"firstSeq"`
	LastSeq   uint64 `json:"lastSeq"`
	HeadHash  string `json:"headHash"`  // hex
	Signature []byte `json:"signature"` // ASN.1 ECDSA P-256 over SHA-256 of the signed message
}

// signedHash is the SHA-256 of what a digest's signature covers: a domain
// string, the range, the raw head hash and the time the digest was made. It
// fails when HeadHash is not 64 hex digits.
func (d *Digest) signedHash(eventTime string) ([32]byte, error) {
	var head [32]byte
	if len(d.HeadHash) != 2*len(head) {
		return head, errors.New("headHash is not a SHA-256")
	}
	if _, err := hex.Decode(head[:], []byte(d.HeadHash)); err != nil {
		return head, errors.New("headHash is not a SHA-256")
	}
	msg := make([]byte, 0, len(labelDigest)+16+len(head)+len(eventTime))
	msg = append(msg, labelDigest...)
	msg = binary.BigEndian.AppendUint64(msg, d.FirstSeq)
	msg = binary.BigEndian.AppendUint64(msg, d.LastSeq)
	msg = append(msg, head[:]...)
	msg = append(msg, eventTime...)
	return sha256.Sum256(msg), nil
}

func (d *Digest) sign(s crypto.Signer, eventTime string) error {
	h, err := d.signedHash(eventTime)
	if err != nil {
		return err
	}
	d.Signature, err = s.Sign(rand.Reader, h[:], crypto.SHA256)
	return err
}

func (d *Digest) verify(pub *ecdsa.PublicKey, eventTime string) bool {
	h, err := d.signedHash(eventTime)
	return err == nil && pub != nil && ecdsa.VerifyASN1(pub, h[:], d.Signature)
}

// GenerateSigningKey returns a new audit signing key (ECDSA P-256). The
// caller keeps it sealed; its public half goes to WritePublicKey.
func GenerateSigningKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// signerKey checks that s signs with ECDSA P-256.
func signerKey(s crypto.Signer) (*ecdsa.PublicKey, error) {
	pub, ok := s.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("audit: the signing key must be ECDSA P-256")
	}
	return pub, nil
}

// PublicKeyFile is the name, in the audit directory, of the PEM public key
// that verifies the digests.
const PublicKeyFile = "audit-signing.pub"

// WritePublicKey writes pub as a PEM "PUBLIC KEY" (PKIX) to
// dir/audit-signing.pub, replacing it atomically.
func WritePublicKey(dir string, pub *ecdsa.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("audit: public key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, PublicKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
}

// ReadPublicKey reads the key WritePublicKey wrote to dir.
func ReadPublicKey(dir string) (*ecdsa.PublicKey, error) {
	raw, err := os.ReadFile(filepath.Join(dir, PublicKeyFile))
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("audit: no PEM PUBLIC KEY block in " + PublicKeyFile)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: %s: %w", PublicKeyFile, err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("audit: " + PublicKeyFile + " is not an ECDSA P-256 key")
	}
	return pub, nil
}
