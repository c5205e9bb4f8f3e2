//go:build !cgo

package hsm

import "context"

// PKCS11 is the token root of trust. This binary was built without cgo,
// so OpenPKCS11 always fails with ErrNoCgo; the type exists so that code
// wiring it compiles the same either way.
type PKCS11 struct{}

var (
	_ SessionBackend  = (*PKCS11)(nil)
	_ KeyStoreBackend = (*PKCS11)(nil)
	_ HealthChecker   = (*PKCS11)(nil)
)

// OpenPKCS11 returns ErrNoCgo: PKCS#11 modules are C libraries.
func OpenPKCS11(cfg PKCS11Config) (*PKCS11, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return nil, ErrNoCgo
}

func (*PKCS11) InitRootKey(context.Context) error { return ErrNoCgo }
func (*PKCS11) Name() string                      { return "pkcs11" }
func (*PKCS11) Reconnects() uint64                { return 0 }
func (*PKCS11) Healthy() error                    { return ErrNoCgo }
func (*PKCS11) Close() error                      { return nil }

func (*PKCS11) Wrap(context.Context, []byte, []byte) ([]byte, error)   { return nil, ErrNoCgo }
func (*PKCS11) Unwrap(context.Context, []byte, []byte) ([]byte, error) { return nil, ErrNoCgo }
func (*PKCS11) OpenSession(context.Context) (Session, error)           { return nil, ErrNoCgo }

func (*PKCS11) GenerateKey(context.Context, string) (string, error) { return "", ErrNoCgo }
func (*PKCS11) DestroyKey(context.Context, string) error            { return ErrNoCgo }
func (*PKCS11) Ping(context.Context) error                          { return ErrNoCgo }
func (*PKCS11) GenerateRandom(context.Context, int) ([]byte, error) { return nil, ErrNoCgo }
func (*PKCS11) Encrypt(context.Context, string, []byte, []byte) ([]byte, error) {
	return nil, ErrNoCgo
}
func (*PKCS11) Decrypt(context.Context, string, []byte, []byte) ([]byte, error) {
	return nil, ErrNoCgo
}
