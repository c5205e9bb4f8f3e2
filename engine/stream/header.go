package stream

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"unicode/utf8"
)

// magic opens every Coffer stream. Its first byte is not ASCII and it ends in
// a newline, so a transfer that strips the eighth bit or rewrites line
// endings breaks it visibly.
const magic = "\x89coffer\n"

// FormatVersion is the version of the header layout this package writes and
// reads.
const FormatVersion = 1

// Limits on the variable fields. The blob limit is AWS KMS's; the others keep
// a header small enough to read before anything is authenticated.
const (
	MaxKeyARNSize  = 2048
	MaxBlobSize    = 6144
	MaxContextSize = 16 << 10 // the encoded context, count and lengths included
	DataKeySize    = 32       // AES-256, as GenerateDataKey with KeySpec AES_256 returns
)

const (
	messageIDSize = 32
	macSize       = sha256.Size

	// fixedSize is everything before the key ARN: magic, version, suite,
	// flags, reserved, payload size, message ID and three lengths.
	fixedSize = len(magic) + 1 + 1 + 1 + 1 + 4 + messageIDSize + 2 + 2 + 2

	flagEmpty = 1 << 0 // the body is empty: the plaintext had no bytes

	// MaxHeaderSize bounds the bytes a reader consumes before the header
	// MAC is checked.
	MaxHeaderSize = fixedSize + MaxKeyARNSize + MaxBlobSize + MaxContextSize + macSize
)

// Header is the authenticated preamble of a stream:
//
//	offset  size  field
//	0       8     magic "\x89coffer\n"
//	8       1     format version (1)
//	9       1     cipher suite, as DARE numbers it (0 AES-256-GCM, 1 ChaCha20-Poly1305)
//	10      1     flags (bit 0: the body is empty); other bits zero
//	11      1     reserved, zero
//	12      4     package payload size, big endian (65536, DARE 2.0's only size)
//	16      32    message ID: random, the HKDF salt of this stream's keys
//	48      2     n1 = length of the key ARN (1..2048)
//	50      2     n2 = length of the ciphertext blob (1..6144)
//	52      2     n3 = length of the encoded encryption context (0..16384)
//	54      n1    key ARN of the KMS key that generated the data key
//	        n2    KMS ciphertext blob of the data key
//	        n3    encryption context: count, then per pair in strictly
//	              increasing key order a length-prefixed key (1 or more
//	              bytes) and value, all lengths uint16 big endian, UTF-8
//	        32    HMAC-SHA-256 of all the above under the header key
//
// The encoding is canonical: ParseHeader accepts exactly the bytes Marshal
// writes, so a parsed header marshals back to the same bytes.
type Header struct {
	Suite     Suite
	Empty     bool // the plaintext is empty and so is the body
	MessageID [messageIDSize]byte
	KeyARN    string
	Blob      []byte            // the data key as the KMS key wrapped it
	Context   map[string]string // the encryption context the data key is bound to
	MAC       [macSize]byte
}

// PayloadSize is the plaintext bytes in every package but the last: DARE
// 2.0's fixed 64 KiB.
const PayloadSize = maxPayload

// Size is the length of the marshaled header.
func (h *Header) Size() int {
	return fixedSize + len(h.KeyARN) + len(h.Blob) + contextSize(h.Context) + macSize
}

// Marshal returns the header's encoding. It fails if a field is out of range.
func (h *Header) Marshal() ([]byte, error) {
	b, err := h.appendSigned(make([]byte, 0, h.Size()))
	if err != nil {
		return nil, err
	}
	return append(b, h.MAC[:]...), nil
}

// appendSigned appends everything the MAC covers.
func (h *Header) appendSigned(b []byte) ([]byte, error) {
	if err := h.check(); err != nil {
		return nil, err
	}
	var flags byte
	if h.Empty {
		flags |= flagEmpty
	}
	b = append(b, magic...)
	b = append(b, FormatVersion, h.Suite.dareID(), flags, 0)
	b = binary.BigEndian.AppendUint32(b, PayloadSize)
	b = append(b, h.MessageID[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.KeyARN)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.Blob)))
	b = binary.BigEndian.AppendUint16(b, uint16(contextSize(h.Context)))
	b = append(b, h.KeyARN...)
	b = append(b, h.Blob...)
	return appendContext(b, h.Context), nil
}

func (h *Header) check() error {
	switch {
	case h.Suite != AES256GCM && h.Suite != ChaCha20Poly1305:
		return fmt.Errorf("%w: unknown cipher suite %d", ErrMalformedHeader, h.Suite)
	case len(h.KeyARN) == 0 || len(h.KeyARN) > MaxKeyARNSize:
		return fmt.Errorf("%w: key ARN of %d bytes (want 1..%d)", ErrMalformedHeader, len(h.KeyARN), MaxKeyARNSize)
	case len(h.Blob) == 0 || len(h.Blob) > MaxBlobSize:
		return fmt.Errorf("%w: ciphertext blob of %d bytes (want 1..%d)", ErrMalformedHeader, len(h.Blob), MaxBlobSize)
	}
	return checkContext(h.Context)
}

// ParseHeader parses the header at the start of b and returns it with its
// length. It checks the encoding only; the MAC is checked once the data key
// is known.
func ParseHeader(b []byte) (*Header, int, error) {
	if len(b) < fixedSize {
		return nil, 0, fmt.Errorf("%w: %d bytes, shorter than the fixed part", ErrMalformedHeader, len(b))
	}
	n, err := parseFixed(b[:fixedSize])
	if err != nil {
		return nil, 0, err
	}
	if len(b) < n {
		return nil, 0, fmt.Errorf("%w: %d bytes, the header says %d", ErrMalformedHeader, len(b), n)
	}
	h, err := parseRest(b[:n])
	if err != nil {
		return nil, 0, err
	}
	return h, n, nil
}

// ReadHeader reads exactly one header from r, consuming nothing after it.
func ReadHeader(r io.Reader) (*Header, error) {
	fixed := make([]byte, fixedSize, 512)
	if _, err := io.ReadFull(r, fixed); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("%w: the input ends inside the header", ErrMalformedHeader)
		}
		return nil, err
	}
	n, err := parseFixed(fixed)
	if err != nil {
		return nil, err
	}
	b := slices.Grow(fixed, n-fixedSize)[:n]
	if _, err := io.ReadFull(r, b[fixedSize:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("%w: the input ends inside the header", ErrMalformedHeader)
		}
		return nil, err
	}
	return parseRest(b)
}

// parseFixed checks the fixed part and returns the header's full length.
func parseFixed(b []byte) (int, error) {
	if string(b[:len(magic)]) != magic {
		return 0, fmt.Errorf("%w: not a Coffer stream (bad magic)", ErrMalformedHeader)
	}
	if v := b[8]; v != FormatVersion {
		return 0, fmt.Errorf("%w: format version %d, this build reads %d", ErrUnsupportedVersion, v, FormatVersion)
	}
	if _, ok := suiteFromDARE(b[9]); !ok {
		return 0, fmt.Errorf("%w: unknown cipher suite %d", ErrMalformedHeader, b[9])
	}
	if b[10]&^flagEmpty != 0 || b[11] != 0 {
		return 0, fmt.Errorf("%w: unknown flags", ErrMalformedHeader)
	}
	if p := binary.BigEndian.Uint32(b[12:16]); p != PayloadSize {
		return 0, fmt.Errorf("%w: package payload size %d, DARE 2.0 has %d", ErrMalformedHeader, p, PayloadSize)
	}
	n1 := int(binary.BigEndian.Uint16(b[48:50]))
	n2 := int(binary.BigEndian.Uint16(b[50:52]))
	n3 := int(binary.BigEndian.Uint16(b[52:54]))
	switch {
	case n1 == 0 || n1 > MaxKeyARNSize:
		return 0, fmt.Errorf("%w: key ARN of %d bytes (want 1..%d)", ErrMalformedHeader, n1, MaxKeyARNSize)
	case n2 == 0 || n2 > MaxBlobSize:
		return 0, fmt.Errorf("%w: ciphertext blob of %d bytes (want 1..%d)", ErrMalformedHeader, n2, MaxBlobSize)
	case n3 < 2 || n3 > MaxContextSize:
		return 0, fmt.Errorf("%w: encryption context of %d bytes (want 2..%d)", ErrMalformedHeader, n3, MaxContextSize)
	}
	return fixedSize + n1 + n2 + n3 + macSize, nil
}

// parseRest parses a whole header whose fixed part parseFixed accepted.
func parseRest(b []byte) (*Header, error) {
	suite, _ := suiteFromDARE(b[9])
	h := &Header{Suite: suite, Empty: b[10]&flagEmpty != 0}
	copy(h.MessageID[:], b[16:48])
	n1 := int(binary.BigEndian.Uint16(b[48:50]))
	n2 := int(binary.BigEndian.Uint16(b[50:52]))
	rest := b[fixedSize : len(b)-macSize]
	h.KeyARN = string(rest[:n1])
	h.Blob = bytes.Clone(rest[n1 : n1+n2])
	ctx, err := parseContext(rest[n1+n2:])
	if err != nil {
		return nil, err
	}
	h.Context = ctx
	copy(h.MAC[:], b[len(b)-macSize:])
	return h, nil
}

// contextSize is the encoded length of ctx.
func contextSize(ctx map[string]string) int {
	n := 2
	for k, v := range ctx {
		n += 4 + len(k) + len(v)
	}
	return n
}

func checkContext(ctx map[string]string) error {
	if len(ctx) > 0xffff || contextSize(ctx) > MaxContextSize {
		return fmt.Errorf("%w: encryption context larger than %d bytes", ErrMalformedHeader, MaxContextSize)
	}
	for k, v := range ctx {
		if k == "" || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("%w: encryption context keys must be non-empty UTF-8, values UTF-8", ErrMalformedHeader)
		}
	}
	return nil
}

// appendContext appends the canonical encoding of ctx: pairs sorted by key.
func appendContext(b []byte, ctx map[string]string) []byte {
	keys := make([]string, 0, len(ctx))
	for k := range ctx {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.BigEndian.AppendUint16(b, uint16(len(keys)))
	for _, k := range keys {
		b = binary.BigEndian.AppendUint16(b, uint16(len(k)))
		b = append(b, k...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(ctx[k])))
		b = append(b, ctx[k]...)
	}
	return b
}

func parseContext(b []byte) (map[string]string, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: encryption context: %s", ErrMalformedHeader, why)
	}
	field := func() (string, bool) {
		if len(b) < 2 {
			return "", false
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return "", false
		}
		s := string(b[2 : 2+n])
		b = b[2+n:]
		return s, true
	}
	count := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if count == 0 {
		if len(b) != 0 {
			return nil, bad("bytes after the last pair")
		}
		return nil, nil
	}
	ctx := make(map[string]string, min(count, 64))
	prev := ""
	for i := range count {
		k, ok1 := field()
		v, ok2 := field()
		switch {
		case !ok1 || !ok2:
			return nil, bad("truncated")
		case k == "" || !utf8.ValidString(k) || !utf8.ValidString(v):
			return nil, bad("keys must be non-empty UTF-8, values UTF-8")
		case i > 0 && k <= prev:
			return nil, bad("keys not in strictly increasing order")
		}
		ctx[k] = v
		prev = k
	}
	if len(b) != 0 {
		return nil, bad("bytes after the last pair")
	}
	return ctx, nil
}

// Key derivation. The data key never touches the stream directly: the body
// key (the DARE key) and the header key are HKDF-SHA-256 outputs with the
// header's random message ID as salt, so every stream has its own keys even
// when a cached data key serves many streams, and a body cannot be moved
// under another stream's header. The infos are labelBodyKey and
// labelHeaderKey (labels.go).
func deriveKey(dataKey []byte, messageID *[messageIDSize]byte, info string) ([]byte, error) {
	if len(dataKey) != DataKeySize {
		return nil, fmt.Errorf("%w: data key of %d bytes, want %d", ErrDataKey, len(dataKey), DataKeySize)
	}
	return hkdf.Key(sha256.New, dataKey, messageID[:], info, 32)
}

// BodyKey returns the key the body's DARE stream is sealed under:
// HKDF-SHA-256 with the data key as input key material, the header's message
// ID as salt, the info "coffer stream v1 body key", 32 bytes. It is the key
// to give minio/sio to decrypt a body on its own:
//
//	sio.Decrypt(dst, body, sio.Config{MinVersion: sio.Version20, Key: key})
//
// The caller owns the returned key and should clear it after use.
func (h *Header) BodyKey(dataKey []byte) ([]byte, error) {
	return deriveKey(dataKey, &h.MessageID, labelBodyKey)
}

// mac returns the header MAC under headerKey.
func (h *Header) mac(headerKey []byte) ([macSize]byte, error) {
	var sum [macSize]byte
	signed, err := h.appendSigned(nil)
	if err != nil {
		return sum, err
	}
	m := hmac.New(sha256.New, headerKey)
	m.Write(signed)
	m.Sum(sum[:0])
	return sum, nil
}

// Verify checks the header MAC under the key derived from dataKey, in
// constant time.
func (h *Header) Verify(dataKey []byte) error {
	key, err := deriveKey(dataKey, &h.MessageID, labelHeaderKey)
	if err != nil {
		return err
	}
	defer clear(key)
	sum, err := h.mac(key)
	if err != nil {
		return err
	}
	if !hmac.Equal(sum[:], h.MAC[:]) {
		return ErrHeaderAuth
	}
	return nil
}
