package stream

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// KeyProvider is a KMS as a stream needs it: one call to make a data key
// when a stream is written, one to unwrap it when it is read. Coffer's
// service in process, a remote Coffer and AWS KMS (package awskms) all
// implement it, and so does LocalProvider for offline use.
type KeyProvider interface {
	// GenerateDataKey returns a fresh 32-byte data key, the same key
	// wrapped under the KMS key keyID and bound to encCtx, and the ARN of
	// that KMS key (keyID may be an alias). The caller owns plaintext and
	// zeroes it.
	GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (plaintext, ciphertextBlob []byte, keyARN string, err error)
	// Decrypt unwraps ciphertextBlob under the KMS key keyID with the
	// encryption context it was bound to. It fails if keyID does not name
	// the key the blob is under.
	Decrypt(ctx context.Context, keyID string, ciphertextBlob []byte, encCtx map[string]string) (plaintext []byte, err error)
}

// LocalProvider is a KeyProvider backed by one 256-bit master key held in
// memory: data keys are wrapped with AES-256-GCM under a key derived from
// the master key and a random salt (HKDF-SHA-256), with the provider's key
// ID and the canonical encryption context as additional data. It is meant
// for offline use and tests; its blobs are readable only by a LocalProvider
// with the same master key.
type LocalProvider struct {
	id  string
	key []byte
}

var _ KeyProvider = (*LocalProvider)(nil)

// ErrLocalKeyID: the key ID given to a LocalProvider is not its own.
var ErrLocalKeyID = errors.New("stream: local provider: unknown key ID")

// ErrLocalBlob: a LocalProvider cannot unwrap a blob: another master key,
// another encryption context, or a damaged blob.
var ErrLocalBlob = errors.New("stream: local provider: cannot unwrap the data key (wrong master key, wrong encryption context or damaged blob)")

const (
	localBlobVersion = 1
	localSaltSize    = 32
	localNonceSize   = 12
	localBlobSize    = 1 + localSaltSize + localNonceSize + DataKeySize + 16
)

// NewLocalProvider returns a provider under a copy of masterKey (32 bytes).
// Its key ID is "local:" and 16 hex digits that identify, but do not
// reveal, the master key.
func NewLocalProvider(masterKey []byte) (*LocalProvider, error) {
	if len(masterKey) != 32 {
		return nil, fmt.Errorf("stream: local provider: master key of %d bytes, want 32", len(masterKey))
	}
	m := hmac.New(sha256.New, masterKey)
	m.Write([]byte(labelLocalKeyID))
	return &LocalProvider{id: "local:" + hex.EncodeToString(m.Sum(nil)[:8]), key: append([]byte(nil), masterKey...)}, nil
}

// KeyID is the provider's one key ID, which is also its ARN.
func (p *LocalProvider) KeyID() string { return p.id }

// Destroy zeroes the master key. The provider fails every call after.
func (p *LocalProvider) Destroy() { clear(p.key); p.key = nil }

func (p *LocalProvider) aead(salt []byte) (cipher.AEAD, error) {
	if p.key == nil {
		return nil, errors.New("stream: local provider: destroyed")
	}
	k, err := hkdf.Key(sha256.New, p.key, salt, labelLocalWrap, 32)
	if err != nil {
		return nil, err
	}
	defer clear(k)
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func (p *LocalProvider) ad(encCtx map[string]string) ([]byte, error) {
	if err := checkContext(encCtx); err != nil {
		return nil, err
	}
	ad := append([]byte(labelLocalWrap), 0)
	ad = append(ad, p.id...)
	return appendContext(ad, encCtx), nil
}

func (p *LocalProvider) checkID(keyID string) error {
	if keyID != "" && keyID != p.id {
		return fmt.Errorf("%w %q (this provider's key is %s)", ErrLocalKeyID, keyID, p.id)
	}
	return nil
}

// GenerateDataKey implements KeyProvider. keyID must be "" or KeyID().
func (p *LocalProvider) GenerateDataKey(_ context.Context, keyID string, encCtx map[string]string) ([]byte, []byte, string, error) {
	if err := p.checkID(keyID); err != nil {
		return nil, nil, "", err
	}
	ad, err := p.ad(encCtx)
	if err != nil {
		return nil, nil, "", err
	}
	dk := make([]byte, DataKeySize)
	blob := make([]byte, 1+localSaltSize+localNonceSize, localBlobSize)
	blob[0] = localBlobVersion
	rand.Read(dk)
	rand.Read(blob[1:])
	a, err := p.aead(blob[1 : 1+localSaltSize])
	if err != nil {
		return nil, nil, "", err
	}
	blob = a.Seal(blob, blob[1+localSaltSize:], dk, ad)
	return dk, blob, p.id, nil
}

// Decrypt implements KeyProvider. keyID must be "" or KeyID().
func (p *LocalProvider) Decrypt(_ context.Context, keyID string, blob []byte, encCtx map[string]string) ([]byte, error) {
	if err := p.checkID(keyID); err != nil {
		return nil, err
	}
	if len(blob) != localBlobSize || blob[0] != localBlobVersion {
		return nil, ErrLocalBlob
	}
	ad, err := p.ad(encCtx)
	if err != nil {
		return nil, err
	}
	a, err := p.aead(blob[1 : 1+localSaltSize])
	if err != nil {
		return nil, err
	}
	dk, err := a.Open(nil, blob[1+localSaltSize:1+localSaltSize+localNonceSize], blob[1+localSaltSize+localNonceSize:], ad)
	if err != nil {
		return nil, ErrLocalBlob
	}
	return dk, nil
}
