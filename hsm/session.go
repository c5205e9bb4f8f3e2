package hsm

import (
	"bytes"
	"context"
	"fmt"
)

// A Session is one serial line to a backend: a PKCS#11 session, or a view
// of the software root. A Pool gives each worker its own Session and never
// uses one from two goroutines at once, so implementations need no locks
// of their own. Errors follow Backend: ErrUnwrap, ErrUnavailable, ErrClosed.
type Session interface {
	Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error)
	// Close releases the session, not the backend.
	Close() error
}

// batchUnwrapper is a Session that can unwrap several blobs in one trip to
// its backend. Each result and error must be exactly what Unwrap would
// have returned for that blob alone.
type batchUnwrapper interface {
	unwrapBatch(ctx context.Context, wrapped, aads [][]byte) ([][]byte, []error)
}

// SessionBackend is a Backend that can open independent sessions, which
// is what a Pool runs on.
type SessionBackend interface {
	Backend
	OpenSession(ctx context.Context) (Session, error)
}

// KeyStoreBackend runs the crypto of custom-key-store keys: keys generated
// inside the HSM that never leave it (origin AWS_CLOUDHSM in the API).
// Key IDs are opaque strings returned by GenerateKey.
type KeyStoreBackend interface {
	// GenerateKey creates a non-extractable AES-256 key named label and
	// returns the ID the other methods take. ErrKeyExists if label is taken.
	GenerateKey(ctx context.Context, label string) (keyID string, err error)
	// Encrypt seals plaintext under the key, binding aad; the blob is
	// self-describing like a wrapped root blob.
	Encrypt(ctx context.Context, keyID string, plaintext, aad []byte) ([]byte, error)
	// Decrypt reverses Encrypt; every mismatch returns ErrUnwrap,
	// an unknown key ErrKeyNotFound.
	Decrypt(ctx context.Context, keyID string, blob, aad []byte) ([]byte, error)
	// DestroyKey deletes the key from the token; ErrKeyNotFound if absent.
	DestroyKey(ctx context.Context, keyID string) error
	// GenerateRandom returns n bytes from the HSM's generator (1 ≤ n ≤ MaxRandom).
	GenerateRandom(ctx context.Context, n int) ([]byte, error)
	// Ping checks that the token answers and the login holds, reconnecting
	// if needed (ConnectCustomKeyStore); ErrUnavailable or ErrLogin if not.
	Ping(ctx context.Context) error
}

// KeyStoreSession is a Session that also runs the per-call custom-key-store
// operations, so a Pool can bound and batch them like unwraps.
type KeyStoreSession interface {
	Session
	Encrypt(ctx context.Context, keyID string, plaintext, aad []byte) ([]byte, error)
	Decrypt(ctx context.Context, keyID string, blob, aad []byte) ([]byte, error)
	GenerateRandom(ctx context.Context, n int) ([]byte, error)
}

// Limits on caller input, checked before any HSM call.
const (
	// MaxPlaintext bounds what Wrap and Encrypt accept; CMK material and
	// secrets are far smaller, and KMS caps Encrypt at 4096 bytes.
	MaxPlaintext = 64 << 10
	// MaxRandom bounds GenerateRandom.
	MaxRandom = 64 << 10
	// MaxLabel bounds key labels.
	MaxLabel = 128
)

// Rewrap moves wrapped material from one root to another (the software to
// HSM migration): it unwraps with from, wraps with to under the same aad,
// and zeroes the plaintext in between.
func Rewrap(ctx context.Context, from, to Backend, wrapped, aad []byte) ([]byte, error) {
	pt, err := from.Unwrap(ctx, wrapped, aad)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	return to.Wrap(ctx, pt, aad)
}

func checkPlaintext(plaintext []byte) error {
	if len(plaintext) > MaxPlaintext {
		return fmt.Errorf("hsm: plaintext of %d bytes exceeds the %d-byte limit", len(plaintext), MaxPlaintext)
	}
	return nil
}

func checkRandomLen(n int) error {
	if n < 1 || n > MaxRandom {
		return fmt.Errorf("hsm: random length %d out of range 1..%d", n, MaxRandom)
	}
	return nil
}

// checkLabel rejects labels that cannot name a token object cleanly.
func checkLabel(label string) error {
	if label == "" || len(label) > MaxLabel {
		return fmt.Errorf("hsm: key label must be 1..%d bytes, got %d", MaxLabel, len(label))
	}
	for i := 0; i < len(label); i++ {
		if c := label[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("hsm: key label must be printable ASCII (byte %d is 0x%02x)", i, c)
		}
	}
	return nil
}

// cloneSecret copies b for another owner; the copy is the owner's to zero.
func cloneSecret(b []byte) []byte { return bytes.Clone(b) }
