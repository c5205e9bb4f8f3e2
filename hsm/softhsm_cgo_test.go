//go:build cgo

package hsm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Tests run against SoftHSM2 through its PKCS#11 module, with one token
// created for the test binary in a temporary directory. Tests that need
// it skip, saying why, when the module or softhsm2-util is missing.
const (
	testTokenLabel = "coffer-test"
	testPIN        = "1234"
	testSOPIN      = "5678"
)

var softhsm struct {
	module string
	skip   string  // non-empty: why PKCS#11 tests skip
	mod    *module // held for the whole run, so tests do not reload the library
}

func setupSoftHSM() (cleanup func()) {
	softhsm.module = os.Getenv("COFFER_PKCS11_MODULE")
	if softhsm.module == "" {
		softhsm.module = "/usr/lib/softhsm/libsofthsm2.so"
	}
	if _, err := os.Stat(softhsm.module); err != nil {
		softhsm.skip = fmt.Sprintf("PKCS#11 module %s absent (apt-get install softhsm2)", softhsm.module)
		return func() {}
	}
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		softhsm.skip = "softhsm2-util not on PATH (apt-get install softhsm2)"
		return func() {}
	}
	dir, err := os.MkdirTemp("", "coffer-softhsm-")
	if err != nil {
		softhsm.skip = err.Error()
		return func() {}
	}
	removeDir := func() { os.RemoveAll(dir) }
	tokens := filepath.Join(dir, "tokens")
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.Mkdir(tokens, 0o700); err == nil {
		err = os.WriteFile(conf, []byte(body), 0o600)
	}
	os.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command(util, "--init-token", "--free", "--label", testTokenLabel, "--pin", testPIN, "--so-pin", testSOPIN).CombinedOutput()
	if err != nil {
		softhsm.skip = fmt.Sprintf("softhsm2-util --init-token: %v: %s", err, out)
		return removeDir
	}
	if softhsm.mod, err = acquireModule(softhsm.module); err != nil {
		softhsm.skip = err.Error()
		return removeDir
	}
	return func() {
		softhsm.mod.release()
		removeDir()
	}
}

func pkcs11Config(t testing.TB, keyLabel string) PKCS11Config {
	t.Helper()
	if softhsm.skip != "" {
		t.Skip(softhsm.skip)
	}
	return PKCS11Config{
		ModulePath: softhsm.module,
		TokenLabel: testTokenLabel,
		PIN:        testPIN,
		KeyLabel:   keyLabel,
		RootKey:    RootKeyCreate,
	}
}

// openPKCS11 opens the test token with a root key labelled keyLabel,
// created on first use, closed when the test ends.
func openPKCS11(t testing.TB, keyLabel string) *PKCS11 {
	t.Helper()
	b, err := OpenPKCS11(pkcs11Config(t, keyLabel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// tryPKCS11 is openPKCS11 for helpers that must not skip: nil when the
// token is not available.
func tryPKCS11(t testing.TB, keyLabel string) *PKCS11 {
	t.Helper()
	if softhsm.skip != "" {
		return nil
	}
	return openPKCS11(t, keyLabel)
}
