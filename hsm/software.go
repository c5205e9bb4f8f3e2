package hsm

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"

	"golang.org/x/crypto/scrypt"

	"github.com/coffer-kms/coffer/internal/atomicfile"
)

// Root key file layout (all integers big-endian):
//
//	magic "CFRK" | version 1 | mode
//	mode 0 (plain):  key[32] | sha256(key)[:8]
//	mode 1 (scrypt): logN | r | p | salt[16] | nonce[12] | gcm(kek, key)[48]
//
// The plain mode relies on the file's 0600 permission, like an SSH key without
// a passphrase; the scrypt mode also needs the passphrase to start.
const (
	rootMagic     = "CFRK"
	rootVersion   = 1
	modePlain     = 0
	modeScrypt    = 1
	rootKeySize   = 32
	scryptLogN    = 15
	scryptR       = 8
	scryptP       = 1
	scryptSaltLen = 16
)

// SoftwareConfig configures the software root.
type SoftwareConfig struct {
	// Path of the sealed root key file; created (0600) when absent.
	Path string
	// Passphrase, when non-empty, seals the root key under scrypt.
	Passphrase []byte
	// InMemory keeps a fresh root key only in memory (for --dev); Path is ignored.
	InMemory bool
}

// Software is the sealed-file root of trust.
type Software struct {
	key []byte // zeroed by Close
	// aead is nil once closed. The standard library gives no way to wipe
	// the expanded key schedule inside it; dropping the only reference is
	// the best this backend can do.
	aead atomic.Pointer[softAEAD]
}

type softAEAD struct{ cipher.AEAD }

var (
	_ Backend        = (*Software)(nil)
	_ SessionBackend = (*Software)(nil)
)

// OpenSoftware opens the root key at cfg.Path, creating it on first use.
func OpenSoftware(cfg SoftwareConfig) (*Software, error) {
	if cfg.InMemory {
		key := make([]byte, rootKeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		return newSoftware(key)
	}
	raw, err := os.ReadFile(cfg.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return createRoot(cfg)
	case err != nil:
		return nil, fmt.Errorf("hsm: read root key: %w", err)
	}
	key, err := unsealRoot(raw, cfg.Passphrase)
	if err != nil {
		return nil, err
	}
	return newSoftware(key)
}

func newSoftware(key []byte) (*Software, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	s := &Software{key: key}
	s.aead.Store(&softAEAD{aead})
	return s, nil
}

func createRoot(cfg SoftwareConfig) (*Software, error) {
	key := make([]byte, rootKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	sealed, err := sealRoot(key, cfg.Passphrase)
	if err != nil {
		return nil, err
	}
	err = os.MkdirAll(filepath.Dir(cfg.Path), 0o700)
	if err == nil {
		err = atomicfile.Create(cfg.Path, sealed, 0o600) // never over an existing root key
	}
	if err != nil {
		clear(key)
		return nil, fmt.Errorf("hsm: write root key: %w", err)
	}
	return newSoftware(key)
}

func sealRoot(key, passphrase []byte) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(rootMagic)
	b.WriteByte(rootVersion)
	if len(passphrase) == 0 {
		b.WriteByte(modePlain)
		b.Write(key)
		sum := sha256.Sum256(key)
		b.Write(sum[:8])
		return b.Bytes(), nil
	}
	b.WriteByte(modeScrypt)
	b.Write([]byte{scryptLogN, scryptR, scryptP})
	salt := make([]byte, scryptSaltLen)
	nonce := make([]byte, 12)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	kek, err := scrypt.Key(passphrase, salt, 1<<scryptLogN, scryptR, scryptP, 32)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	aead, err := gcmFor(kek)
	if err != nil {
		return nil, err
	}
	b.Write(salt)
	b.Write(nonce)
	header := b.Bytes()
	return aead.Seal(header, nonce, key, header[:len(rootMagic)+2]), nil
}

func unsealRoot(raw, passphrase []byte) ([]byte, error) {
	if len(raw) < len(rootMagic)+2 || string(raw[:4]) != rootMagic || raw[4] != rootVersion {
		return nil, fmt.Errorf("%w: not a Coffer root key file", ErrSealed)
	}
	body := raw[6:]
	switch raw[5] {
	case modePlain:
		if len(body) != rootKeySize+8 {
			return nil, fmt.Errorf("%w: truncated root key file", ErrSealed)
		}
		key := bytes.Clone(body[:rootKeySize])
		sum := sha256.Sum256(key)
		if subtle.ConstantTimeCompare(sum[:8], body[rootKeySize:]) != 1 {
			clear(key)
			return nil, fmt.Errorf("%w: root key file is corrupt", ErrSealed)
		}
		if len(passphrase) != 0 {
			clear(key)
			return nil, fmt.Errorf("%w: root key is not sealed with a passphrase", ErrSealed)
		}
		return key, nil
	case modeScrypt:
		if len(passphrase) == 0 {
			return nil, fmt.Errorf("%w: root key is sealed with a passphrase; none was given", ErrSealed)
		}
		if len(body) != 3+scryptSaltLen+12+rootKeySize+16 {
			return nil, fmt.Errorf("%w: truncated root key file", ErrSealed)
		}
		logN, r, p := body[0], int(body[1]), int(body[2])
		if logN < 10 || logN > 22 || r < 1 || r > 32 || p < 1 || p > 16 {
			return nil, fmt.Errorf("%w: unsupported scrypt parameters", ErrSealed)
		}
		salt := body[3 : 3+scryptSaltLen]
		nonce := body[3+scryptSaltLen : 3+scryptSaltLen+12]
		kek, err := scrypt.Key(passphrase, salt, 1<<logN, r, p, 32)
		if err != nil {
			return nil, err
		}
		defer clear(kek)
		aead, err := gcmFor(kek)
		if err != nil {
			return nil, err
		}
		key, err := aead.Open(nil, nonce, body[3+scryptSaltLen+12:], raw[:6])
		if err != nil {
			return nil, fmt.Errorf("%w: wrong passphrase or corrupt file", ErrSealed)
		}
		return key, nil
	default:
		return nil, fmt.Errorf("%w: unknown sealing mode %d", ErrSealed, raw[5])
	}
}

// Name implements Backend.
func (s *Software) Name() string { return "software" }

// Wrap implements Backend: version | nonce | AES-256-GCM(root, plaintext, aad).
// Nonces are random; the number of wraps under one root (one per key
// version) stays far below the 2^32 bound of SP 800-38D.
func (s *Software) Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	aead, err := s.use(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkPlaintext(plaintext); err != nil {
		return nil, err
	}
	out := make([]byte, 1+gcmNonceSize, len(plaintext)+blobOverhead)
	out[0] = wrapVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[1:], plaintext, aad), nil
}

// Unwrap implements Backend.
func (s *Software) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	aead, err := s.use(ctx)
	if err != nil {
		return nil, err
	}
	if len(wrapped) < blobOverhead || wrapped[0] != wrapVersion {
		return nil, ErrUnwrap
	}
	pt, err := aead.Open(nil, wrapped[1:1+gcmNonceSize], wrapped[1+gcmNonceSize:], aad)
	if err != nil {
		return nil, ErrUnwrap
	}
	return pt, nil
}

func (s *Software) use(ctx context.Context) (cipher.AEAD, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a := s.aead.Load()
	if a == nil {
		return nil, ErrClosed
	}
	return a.AEAD, nil
}

// OpenSession implements SessionBackend. The software root is stateless,
// so a session is the backend itself with a Close that leaves it open.
func (s *Software) OpenSession(ctx context.Context) (Session, error) {
	if _, err := s.use(ctx); err != nil {
		return nil, err
	}
	return softwareSession{s}, nil
}

type softwareSession struct{ *Software }

func (softwareSession) Close() error { return nil }

// Close zeroes the root key; every later call returns ErrClosed.
func (s *Software) Close() error {
	s.aead.Store(nil)
	clear(s.key)
	return nil
}

func gcmFor(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
