package kms

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// Every HSM failure maps to the exception package hsm's table names, for
// the root and for custom key stores alike, wrapped or not; only a store's
// ErrUnwrap is the caller's invalid ciphertext.
func TestHSMFailureMapping(t *testing.T) {
	cases := []struct {
		err         error
		root, store error
	}{
		{context.DeadlineExceeded, ErrDependencyTimeout, ErrDependencyTimeout},
		{context.Canceled, ErrDependencyTimeout, ErrDependencyTimeout},
		{hsm.ErrQueueFull, ErrDependencyTimeout, ErrDependencyTimeout},
		{hsm.ErrUnavailable, ErrKeyUnavailable, ErrKeyUnavailable},
		{hsm.ErrReconnecting, ErrDependencyTimeout, ErrDependencyTimeout},
		{hsm.ErrClosed, ErrKeyUnavailable, ErrKeyUnavailable},
		{hsm.ErrLogin, ErrKeyUnavailable, ErrKeyUnavailable},
		{hsm.ErrUnwrap, ErrInternal, ErrInvalidCiphertext},
		{errors.New("CKR_DEVICE_ERROR"), ErrInternal, ErrInternal},
	}
	for _, c := range cases {
		for _, err := range []error{c.err, fmt.Errorf("pool: %w", c.err)} {
			if got := hsmFailure(err, "key"); !errors.Is(got, c.root) {
				t.Errorf("hsmFailure(%v) = %v, want %v", err, got, c.root)
			}
			if got := storeFailure(err, "key"); !errors.Is(got, c.store) {
				t.Errorf("storeFailure(%v) = %v, want %v", err, got, c.store)
			}
		}
	}
}

// A store that did not answer is a dependency's timeout, not an internal
// failure; every other store failure stays KMSInternalException.
func TestStoreFailureMapping(t *testing.T) {
	lost := fmt.Errorf("keystore/postgres: database unavailable (%w): connection refused", keystore.ErrUnavailable)
	if err := internal(lost); !errors.Is(err, ErrDependencyTimeout) || err.(*Error).Cause() != lost {
		t.Errorf("a lost store: %v, want DependencyTimeoutException keeping its cause", err)
	}
	if err := internal(errors.New("keystore/postgres: ERROR: disk full")); !errors.Is(err, ErrInternal) {
		t.Errorf("another store failure: %v, want KMSInternalException", err)
	}
}
