package engine

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sync"

	"github.com/coffer-kms/coffer/asm"
)

// Blob layout, version 1 (all integers big-endian):
//
//	off  len  field
//	0    1    format version (1)
//	1    16   key ID (the UUID's 16 bytes)
//	17   4    material version (index of the CMK's key material)
//	21   32   salt for HKDF-SHA-256
//	53   12   AES-GCM nonce
//	65   n    ciphertext
//	65+n 16   tag
//
// The additional data is the 65-byte header followed by the canonical
// encoding of the encryption context.
const (
	BlobVersion  = 1
	KeyIDSize    = 16
	SaltSize     = 32
	NonceSize    = 12
	TagSize      = 16
	HeaderSize   = 1 + KeyIDSize + 4 + SaltSize + NonceSize
	BlobOverhead = HeaderSize + TagSize

	// MaxBlobSize is AWS's CiphertextBlob limit.
	MaxBlobSize = 6144
)

// KeyID is a KMS key's UUID in binary form.
type KeyID [KeyIDSize]byte

// Blob is a ciphertext blob. Accessors are valid only on a value returned by
// ParseBlob (or Seal), which checks the length and version.
type Blob []byte

// ParseBlob checks the framing of b and returns it as a Blob, without
// copying. It does not authenticate anything: only Open does.
func ParseBlob(b []byte) (Blob, error) {
	if len(b) < BlobOverhead || len(b) > MaxBlobSize || b[0] != BlobVersion {
		return nil, ErrInvalidCiphertext
	}
	return Blob(b), nil
}

// KeyID returns the key the blob was sealed under.
func (b Blob) KeyID() (id KeyID) { copy(id[:], b[1:17]); return id }

// MaterialVersion returns the index of the key material used.
func (b Blob) MaterialVersion() uint32 { return binary.BigEndian.Uint32(b[17:21]) }

func (b Blob) header() []byte { return b[:HeaderSize] }
func (b Blob) salt() []byte   { return b[21:53] }
func (b Blob) nonce() []byte  { return b[53:65] }
func (b Blob) sealed() []byte { return b[HeaderSize:] }

// labelMessageKey starts the HKDF info of every per-message key, followed
// by the blob's key ID and material version: it binds the derived key to
// this blob format, the key and the version. It is the engine's only
// domain-separation label; never change its bytes (every stored ciphertext
// depends on them).
const labelMessageKey = "coffer/v1 message key"

var messageKeyInfoBytes = []byte(labelMessageKey)

// message is the working state of one Seal or Open: its header, its
// derived key, its additional data, the HKDF state and an AES-GCM context.
// It is pooled because on the stack those arrays would escape, three
// allocations a call: the header through crypto/rand.Read, the key
// through hash.Hash's Sum, the additional data through asm.GCM (whose
// standard-library path passes it to a cipher.AEAD).
type message struct {
	kdf    kdf
	gcm    asm.GCM
	header [HeaderSize]byte
	key    [32]byte
	aad    [512]byte
}

var messagePool = sync.Pool{New: func() any { return &message{kdf: kdf{h: sha256.New()}} }}

// keyed derives the message key for header (already in m.header) from
// material and keys m.gcm with it, then clears the key.
func (m *message) keyed(material Material) error {
	m.kdf.derive(&m.key, material, m.header[21:53], messageKeyInfoBytes, m.header[1:21])
	err := m.gcm.Init(m.key[:])
	clear(m.key[:])
	return err
}

// release zeroes what m held of the message and returns it to the pool.
func (m *message) release() {
	m.gcm.Reset()
	clear(m.key[:])
	clear(m.header[:])
	clear(m.aad[:])
	messagePool.Put(m)
}

// Seal encrypts plaintext under a fresh key derived from material and
// appends the blob to dst.
func Seal(dst []byte, material Material, id KeyID, version uint32, plaintext []byte, encCtx map[string]string) ([]byte, error) {
	m := messagePool.Get().(*message)
	defer m.release()
	header := m.header[:]
	header[0] = BlobVersion
	copy(header[1:17], id[:])
	binary.BigEndian.PutUint32(header[17:21], version)
	if _, err := rand.Read(header[21:]); err != nil {
		return nil, err
	}
	if err := m.keyed(material); err != nil {
		return nil, err
	}
	aad := AppendEncryptionContext(append(m.aad[:0], header...), encCtx)
	dst = slices.Grow(dst, BlobOverhead+len(plaintext))
	dst = append(dst, header...)
	return m.gcm.Seal(dst, header[53:65], plaintext, aad), nil
}

// Open authenticates b under material and encCtx and appends the plaintext
// to dst. Every failure is ErrInvalidCiphertext.
func Open(dst []byte, material Material, b Blob, encCtx map[string]string) ([]byte, error) {
	m := messagePool.Get().(*message)
	defer m.release()
	copy(m.header[:], b.header())
	if err := m.keyed(material); err != nil {
		return nil, ErrInvalidCiphertext
	}
	aad := AppendEncryptionContext(append(m.aad[:0], m.header[:]...), encCtx)
	out, err := m.gcm.Open(dst, b.nonce(), b.sealed(), aad)
	if err != nil {
		return nil, ErrInvalidCiphertext
	}
	return out, nil
}

// AppendEncryptionContext appends the canonical encoding of ctx to dst:
// the pair count, then each pair sorted by key (byte order), each string
// length-prefixed with a big-endian uint16 count (callers bound the
// context, as KMS does, far below 64 KiB). Equal maps always encode
// to equal bytes and different maps never do.
func AppendEncryptionContext(dst []byte, ctx map[string]string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(ctx)))
	if len(ctx) == 0 {
		return dst
	}
	var stack [8]string
	keys := stack[:0]
	for k := range ctx {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := ctx[k]
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(k)))
		dst = append(dst, k...)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(v)))
		dst = append(dst, v...)
	}
	return dst
}

// BlobHeader is the decoded header of a blob.
type BlobHeader struct {
	KeyID           KeyID
	MaterialVersion uint32
	Salt            [SaltSize]byte
	Nonce           [NonceSize]byte
}

// Header decodes b's header.
func (b Blob) Header() BlobHeader {
	var h BlobHeader
	h.KeyID = b.KeyID()
	h.MaterialVersion = b.MaterialVersion()
	copy(h.Salt[:], b.salt())
	copy(h.Nonce[:], b.nonce())
	return h
}

// Sealed returns the ciphertext and tag that follow the header.
func (b Blob) Sealed() []byte { return b.sealed() }

// AppendBlob encodes a blob from its header and sealed part.
func AppendBlob(dst []byte, h BlobHeader, sealed []byte) []byte {
	dst = append(dst, BlobVersion)
	dst = append(dst, h.KeyID[:]...)
	dst = binary.BigEndian.AppendUint32(dst, h.MaterialVersion)
	dst = append(dst, h.Salt[:]...)
	dst = append(dst, h.Nonce[:]...)
	return append(dst, sealed...)
}
