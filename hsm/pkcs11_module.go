//go:build cgo

package hsm

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"

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
	// epoch counts initializations: a session handle from an older epoch
	// means nothing (or another session) in this one.
	epoch atomic.Uint64
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

// reinit finalizes and initializes the module again, for a token that the
// library sees again only then (SoftHSM2 reads its token directory at
// C_Initialize). Every session in the process ends.
func (m *module) reinit() error {
	modules.Lock()
	defer modules.Unlock()
	m.ctx.Finalize() // fails harmlessly if someone finalized it already
	m.epoch.Add(1)
	if err := m.ctx.Initialize(); err != nil && !hasCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		return fmt.Errorf("hsm: pkcs11: re-initialize module %q: %w", m.path, err)
	}
	return nil
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
