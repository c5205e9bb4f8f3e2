//go:build !cgo

package hsm

import (
	"errors"
	"testing"
)

func TestOpenPKCS11WithoutCgo(t *testing.T) {
	_, err := OpenPKCS11(PKCS11Config{ModulePath: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "t", PIN: "1"})
	if !errors.Is(err, ErrNoCgo) || !errors.Is(err, ErrUnsupported) {
		t.Fatalf("%v, want ErrNoCgo", err)
	}
}
