package kms

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/internal/atomicfile"
)

// AuditKeyFile is the name, in a data dir, of the file that holds the audit
// signing key: the key's SEC 1 DER encoding wrapped under the root with the
// additional data labelAuditSigningKey, as the root's Wrap returned it. It
// lives beside the store rather than in it so that the audit trail can be
// opened, and verified, without the store.
const AuditKeyFile = "audit-signing.key"

var auditKeyAAD = []byte(labelAuditSigningKey)

// AuditSigner returns the audit trail's signing key (ECDSA P-256, what
// audit.Config.Signer takes), kept wrapped under root in the file path
// (AuditKeyFile in the data dir) and created there on first use. Its public
// half is written to pubDir (audit.PublicKeyFile) for verifiers when the key
// is created, and again whenever pubDir holds no readable one. The same
// file is re-wrapped by RewrapAll when the data dir moves to another root.
func AuditSigner(ctx context.Context, root hsm.Backend, path, pubDir string) (*ecdsa.PrivateKey, error) {
	wrapped, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newAuditSigner(ctx, root, path, pubDir)
	}
	if err != nil {
		return nil, err
	}
	der, err := root.Unwrap(ctx, wrapped, auditKeyAAD)
	if err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	defer clear(der)
	k, err := x509.ParseECPrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	if _, err := audit.ReadPublicKey(pubDir); err != nil {
		if err := audit.WritePublicKey(pubDir, &k.PublicKey); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func newAuditSigner(ctx context.Context, root hsm.Backend, path, pubDir string) (*ecdsa.PrivateKey, error) {
	k, err := audit.GenerateSigningKey()
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	w, err := root.Wrap(ctx, der, auditKeyAAD)
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	if err := atomicfile.WriteFile(path, w, 0o600); err != nil {
		return nil, err
	}
	if err := audit.WritePublicKey(pubDir, &k.PublicKey); err != nil {
		return nil, err
	}
	return k, nil
}

// rewrapAuditKey moves the audit signing key in the file path from one root
// to the other, replacing the file atomically. It reports whether it moved
// the key now or found it moved by an earlier run; neither when there is no
// such file (the audit trail was never on).
func rewrapAuditKey(ctx context.Context, path string, from, to hsm.Backend) (moved, already bool, err error) {
	wrapped, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	w, moved, err := RewrapOne(ctx, from, to, wrapped, auditKeyAAD)
	switch {
	case err != nil:
		return false, false, err
	case !moved:
		return false, true, nil
	}
	return true, false, atomicfile.WriteFile(path, w, 0o600)
}
