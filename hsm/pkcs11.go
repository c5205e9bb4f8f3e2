package hsm

import (
	"errors"
	"fmt"
)

// PKCS11Config configures the PKCS#11 root. The zero value of every
// optional field means the documented default.
type PKCS11Config struct {
	// ModulePath is the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so.
	ModulePath string
	// TokenLabel selects the token by label; Slot selects it by slot ID.
	// Exactly one must be set. A label survives token re-insertion (the
	// slot is looked up again on every reconnection); a slot does not.
	TokenLabel string
	Slot       *uint
	// PIN is the user PIN; the caller reads it from a file or the
	// environment. It is kept for re-login after a reconnection and zeroed
	// by Close.
	PIN string
	// KeyLabel names the root key object (default "coffer-root").
	KeyLabel string
	// Sessions bounds the sessions the backend's own Wrap and Unwrap use
	// (default 4). A Pool opens its own sessions on top.
	Sessions int
	// RootKey says what OpenPKCS11 does when the token has no root key.
	RootKey RootKeyMode
}

// RootKeyMode is what OpenPKCS11 does about a missing root key.
type RootKeyMode int

const (
	// RootKeyRequired (the default) fails OpenPKCS11 with ErrKeyNotFound:
	// a server should not start against the wrong token.
	RootKeyRequired RootKeyMode = iota
	// RootKeyCreate generates the root key on first use.
	RootKeyCreate
	// RootKeyDeferred opens the token without a root key, for
	// `coffer admin hsm init`, which then calls InitRootKey. Wrap and
	// Unwrap return ErrKeyNotFound until it exists.
	RootKeyDeferred
)

// DefaultKeyLabel names the root key object when PKCS11Config.KeyLabel is empty.
const DefaultKeyLabel = "coffer-root"

const defaultSessions = 4

// ErrLogin reports a token that refuses the PIN (incorrect, locked or
// expired); retrying cannot help. For a custom key store it is AWS's
// INVALID_CREDENTIALS connection error.
var ErrLogin = errors.New("hsm: pkcs11: the token refused the PIN")

// ErrNoCgo is what OpenPKCS11 returns in a binary built with CGO_ENABLED=0.
var ErrNoCgo = fmt.Errorf("%w: PKCS#11 needs cgo; this binary was built with CGO_ENABLED=0", ErrUnsupported)

func (c *PKCS11Config) validate() error {
	if c.ModulePath == "" {
		return errors.New("hsm: pkcs11: module path is required")
	}
	if (c.TokenLabel == "") == (c.Slot == nil) {
		return errors.New("hsm: pkcs11: set exactly one of token label and slot")
	}
	if c.PIN == "" {
		return errors.New("hsm: pkcs11: user PIN is required")
	}
	if c.KeyLabel == "" {
		c.KeyLabel = DefaultKeyLabel
	}
	if err := checkLabel(c.KeyLabel); err != nil {
		return err
	}
	if c.Sessions < 0 {
		return fmt.Errorf("hsm: pkcs11: sessions must be positive, got %d", c.Sessions)
	}
	if c.Sessions == 0 {
		c.Sessions = defaultSessions
	}
	if c.RootKey < RootKeyRequired || c.RootKey > RootKeyDeferred {
		return fmt.Errorf("hsm: pkcs11: unknown root key mode %d", c.RootKey)
	}
	return nil
}
