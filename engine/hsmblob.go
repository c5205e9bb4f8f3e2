package engine

import "encoding/binary"

// HSM blob layout, version 2, for keys in a custom key store, whose material
// never leaves the HSM (all integers big-endian):
//
//	off  len  field
//	0    1    format version (2)
//	1    16   key ID (the UUID's 16 bytes)
//	17   4    material version (always 0: such keys do not rotate)
//	21   n    what the HSM returned: its own version, IV, ciphertext and tag
//
// The HSM binds as additional data the 21-byte header followed by the
// canonical encoding of the encryption context (HSMBlobAAD), so the key,
// the version and the context are authenticated exactly as in version 1.
const (
	HSMBlobVersion    = 2
	HSMBlobHeaderSize = 1 + KeyIDSize + 4
	// hsmSealedMin is the least an HSM-sealed part can be: a tag.
	hsmSealedMin = TagSize
)

// HSMBlob is a version-2 ciphertext blob. Accessors are valid only on a
// value returned by ParseHSMBlob.
type HSMBlob []byte

// IsHSMBlob reports whether b claims to be a version-2 blob; ParseHSMBlob
// still checks its framing.
func IsHSMBlob(b []byte) bool { return len(b) > 0 && b[0] == HSMBlobVersion }

// ParseHSMBlob checks the framing of b and returns it as an HSMBlob, without
// copying or authenticating anything: only the HSM does.
func ParseHSMBlob(b []byte) (HSMBlob, error) {
	if len(b) < HSMBlobHeaderSize+hsmSealedMin || len(b) > MaxBlobSize || b[0] != HSMBlobVersion {
		return nil, ErrInvalidCiphertext
	}
	return HSMBlob(b), nil
}

// KeyID returns the key the blob was sealed under.
func (b HSMBlob) KeyID() (id KeyID) { copy(id[:], b[1:17]); return id }

// MaterialVersion returns the index of the key version used.
func (b HSMBlob) MaterialVersion() uint32 { return binary.BigEndian.Uint32(b[17:21]) }

// Header returns the blob's 21-byte header.
func (b HSMBlob) Header() []byte { return b[:HSMBlobHeaderSize] }

// Sealed returns what the HSM produced.
func (b HSMBlob) Sealed() []byte { return b[HSMBlobHeaderSize:] }

// AppendHSMBlobHeader appends the header of a version-2 blob to dst.
func AppendHSMBlobHeader(dst []byte, id KeyID, version uint32) []byte {
	dst = append(dst, HSMBlobVersion)
	dst = append(dst, id[:]...)
	return binary.BigEndian.AppendUint32(dst, version)
}

// HSMBlobAAD appends to dst the additional data the HSM binds to a
// version-2 blob with header h under encryption context ctx.
func HSMBlobAAD(dst, h []byte, ctx map[string]string) []byte {
	return AppendEncryptionContext(append(dst, h...), ctx)
}
