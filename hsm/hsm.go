// Package hsm holds the root of Coffer's key hierarchy.
//
// A Backend wraps and unwraps CMK key material under a root key that never
// leaves it: the software backend (OpenSoftware) keeps that key sealed in a
// file, the PKCS#11 backend (OpenPKCS11) keeps it inside a token as a
// non-extractable AES-256 key used with CKM_AES_GCM. Every wrap binds
// caller-supplied additional data (the key ARN and material version), so
// wrapped material cannot be moved between keys or versions. Each backend
// writes its own version byte first, so a blob given to the wrong backend
// fails as ErrUnwrap like any other forgery.
//
// A Pool (NewPool) runs a backend through a fixed number of sessions with a
// bounded queue, batching and coalescing of identical unwraps; it is itself
// a Backend. The PKCS#11 backend and a Pool over it also run
// custom-key-store keys (KeyStoreBackend): keys generated in the token that
// never leave it.
//
// Errors are sentinels for errors.Is; the server maps them once:
//
//	ErrUnwrap                  InvalidCiphertextException (or the kms equivalent)
//	ErrReconnecting            DependencyTimeoutException (the token is gone and
//	                           the backend is reconnecting by itself)
//	ErrUnavailable, ErrClosed  KeyUnavailableException
//	ErrQueueFull               DependencyTimeoutException
//	context.DeadlineExceeded   DependencyTimeoutException
//	ErrKeyNotFound             NotFoundException / the custom key store's key is gone
//	ErrLogin                   custom key store INVALID_CREDENTIALS
//
// Backends and pools are safe for concurrent use. Plaintext they return
// belongs to the caller, who zeroes it when done.
package hsm

import (
	"context"
	"errors"
	"fmt"
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

// HealthChecker is a backend that can say whether it can serve now, for a
// readiness check: Healthy returns nil when it can, else the error calls
// would get (ErrReconnecting during a PKCS#11 outage). It is cheap and
// safe for concurrent use. The software backend is always healthy and
// does not implement it.
type HealthChecker interface {
	Healthy() error
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
	// ErrClosed reports use of a closed backend or pool. It is an
	// ErrUnavailable, so callers that map only ErrUnavailable still answer
	// KeyUnavailableException.
	ErrClosed = fmt.Errorf("%w: closed", ErrUnavailable)
	// ErrReconnecting reports a PKCS#11 token that went away (session,
	// login, token or module lost) while the backend reconnects by itself:
	// every call fails with it at once until the token is back. It is an
	// ErrUnavailable, so callers that map only ErrUnavailable still treat
	// it as the backend being unreachable; the server answers
	// DependencyTimeoutException, AWS's retryable "temporary dependency
	// failure", rather than KeyUnavailableException.
	ErrReconnecting = fmt.Errorf("%w: reconnecting", ErrUnavailable)
	// ErrQueueFull reports a pool whose queue cannot take another request;
	// the server answers DependencyTimeoutException.
	ErrQueueFull = errors.New("hsm: request queue full")
	// ErrKeyNotFound reports a custom-key-store key (or the root key) that
	// the token does not hold.
	ErrKeyNotFound = errors.New("hsm: key not found")
	// ErrKeyExists reports an attempt to create a key under a label that
	// the token already holds.
	ErrKeyExists = errors.New("hsm: key already exists")
	// ErrUnsupported reports an operation the backend cannot perform, such
	// as custom-key-store crypto on the software root, or PKCS#11 in a
	// binary built without cgo.
	ErrUnsupported = errors.New("hsm: operation not supported by this backend")
)

// Version bytes: the first byte of every blob this package writes names
// the backend and purpose, so a blob fed to the wrong backend fails as
// ErrUnwrap before any key is touched.
const (
	wrapVersion         = 1 // software root: version | nonce[12] | AES-256-GCM
	wrapVersionPKCS11   = 2 // PKCS#11 root: version | iv[12] | CKM_AES_GCM, same layout
	blobVersionKeyStore = 3 // custom-key-store key: version | iv[12] | CKM_AES_GCM
)

// gcmNonceSize and gcmTagSize fix the layout shared by every blob.
const (
	gcmNonceSize = 12
	gcmTagSize   = 16
	blobOverhead = 1 + gcmNonceSize + gcmTagSize
)
