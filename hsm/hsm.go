// Package hsm holds the root of Coffer's key hierarchy.
//
// A Backend wraps and unwraps CMK key material under a root key that never
// leaves it: the software backend keeps that key sealed in a file, a PKCS#11
// backend keeps it inside a token. Every wrap binds caller-supplied
// additional data (the key ARN and material version), so wrapped material
// cannot be moved between keys or versions.
//
// Backends are safe for concurrent use.
package hsm

import (
	"context"
	"errors"
)

// Backend is a root of trust.
type Backend interface {
	// Wrap encrypts plaintext under the root key, binding aad. The result is
	// opaque and self-describing: only Unwrap of the same backend with the
	// same aad recovers plaintext.
	Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	// Unwrap reverses Wrap. Any mismatch of root key, aad or bytes returns
	// ErrUnwrap; a backend that cannot be reached returns ErrUnavailable.
	Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error)
	// Name identifies the backend kind ("software", "pkcs11").
	Name() string
	// Close releases the backend and zeroes any key it holds.
	Close() error
}

var (
	// ErrUnwrap reports wrapped bytes that do not authenticate under the
	// root key and the given additional data.
	ErrUnwrap = errors.New("hsm: wrapped key does not authenticate")
	// ErrUnavailable reports a backend that cannot serve the call now.
	ErrUnavailable = errors.New("hsm: backend unavailable")
	// ErrSealed reports a root key file that cannot be opened with the
	// passphrase given (or is corrupt).
	ErrSealed = errors.New("hsm: root key cannot be unsealed")
)

// wrapVersion is the first byte of every wrapped blob this package writes.
const wrapVersion = 1
