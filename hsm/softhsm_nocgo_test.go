//go:build !cgo

package hsm

import "testing"

func setupSoftHSM() func() { return func() {} }

func openPKCS11(t testing.TB, keyLabel string) *PKCS11 {
	t.Skip("built without cgo: no PKCS#11")
	return nil
}

func tryPKCS11(t testing.TB, keyLabel string) *PKCS11 { return nil }
