//go:build cgo

package hsm

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/miekg/pkcs11"
)

// A PKCS#11 library is process-global: C_Initialize succeeds once and
// C_Finalize ends every session of every user in the process. Backends
// that name the same module therefore share one initialized context,
// counted here, and the last to close finalizes it.
var modules = struct {
	sync.Mutex
	m map[string]*module
}{m: make(map[string]*module)}

type module struct {
	path string
	ctx  *pkcs11.Ctx
	refs int // guarded by modules
}

func acquireModule(path string) (*module, error) {
	path = filepath.Clean(path)
	modules.Lock()
	defer modules.Unlock()
	if m := modules.m[path]; m != nil {
		m.refs++
		return m, nil
	}
	ctx := pkcs11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("hsm: pkcs11: cannot load module %q", path)
	}
	if err := ctx.Initialize(); err != nil && !hasCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		ctx.Destroy()
		return nil, fmt.Errorf("hsm: pkcs11: initialize module %q: %w", path, err)
	}
	m := &module{path: path, ctx: ctx, refs: 1}
	modules.m[path] = m
	return m, nil
}

func (m *module) release() {
	modules.Lock()
	defer modules.Unlock()
	if m.refs--; m.refs > 0 {
		return
	}
	delete(modules.m, m.path)
	m.ctx.Finalize() // fails harmlessly if someone finalized it already
	m.ctx.Destroy()
}

// CKR_AEAD_DECRYPT_FAILED comes from PKCS#11 3.0, newer than the headers
// miekg/pkcs11 v1.1.2 ships.
const ckrAEADDecryptFailed = 0x35

func ckrCode(err error) (uint, bool) {
	var e pkcs11.Error
	if errors.As(err, &e) {
		return uint(e), true
	}
	return 0, false
}

func hasCode(err error, code uint) bool {
	c, ok := ckrCode(err)
	return ok && c == code
}

// sessionLost reports return values after which the session, its login or
// the object handles it used cannot be trusted: the remedy is a new
// session, a new login and one retry. CKR_GENERAL_ERROR is here because
// tokens use it for internal failures; a decrypt that returns it on a
// healthy session is a forged ciphertext instead (see p11Session.do).
func sessionLost(code uint) bool {
	switch code {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED,
		pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_DEVICE_MEMORY,
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED,
		pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_FUNCTION_FAILED,
		pkcs11.CKR_USER_NOT_LOGGED_IN, pkcs11.CKR_OPERATION_ACTIVE,
		pkcs11.CKR_KEY_HANDLE_INVALID, pkcs11.CKR_OBJECT_HANDLE_INVALID,
		pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED:
		return true
	}
	return false
}

// forgedData reports decrypt return values that mean the ciphertext, tag
// or AAD does not authenticate.
func forgedData(code uint) bool {
	switch code {
	case pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE,
		pkcs11.CKR_DATA_INVALID, pkcs11.CKR_DATA_LEN_RANGE, ckrAEADDecryptFailed:
		return true
	}
	return false
}

func unavailable(what string, err error) error {
	return fmt.Errorf("%w: pkcs11: %s: %v", ErrUnavailable, what, err)
}
