package kms

import (
	"strings"

	"github.com/coffer-kms/coffer/engine"
)

// State checks, as AWS's operation × key-state table prescribes.

func invalidState(r *keyRecord) error {
	switch r.State {
	case StatePendingDeletion:
		return newError(ErrInvalidState, "%s is pending deletion.", r.arn())
	case StatePendingReplicaDeletion:
		return newError(ErrInvalidState, "%s is pending replica deletion.", r.arn())
	case StatePendingImport:
		return newError(ErrInvalidState, "%s is pending import.", r.arn())
	case StateUnavailable:
		return newError(ErrInvalidState, "%s is unavailable. You cannot perform this operation on an unavailable KMS key.", r.arn())
	case StateDisabled:
		return newError(ErrInvalidState, "%s is disabled.", r.arn())
	default:
		return newError(ErrInvalidState, "%s is %s.", r.arn(), r.State)
	}
}

// checkCustomerManaged refuses management of AWS managed keys.
func checkCustomerManaged(r *keyRecord) error {
	if r.Manager == ManagerAWS {
		return newError(ErrUnsupportedOperation, "%s is an AWS managed key. You cannot perform this operation on it.", r.arn())
	}
	return nil
}

// checkSymmetric refuses operations that need a symmetric encryption key.
func checkSymmetric(r *keyRecord, k *KeyMember) error {
	if err := k.checkUsage(r); err != nil {
		return err
	}
	if r.Spec != SpecSymmetric {
		return newError(ErrInvalidKeyUsage, "%s key usage is %s which is not valid for %s.", r.arn(), r.Usage, strings.TrimPrefix(k.Action, "kms:"))
	}
	return nil
}

// keyKind is how a key's cryptography runs, which the crypto operations
// switch on once the key is resolved.
type keyKind uint8

const (
	kindUnsupported keyKind = iota // a spec this server has no cryptography for
	kindSymmetric                  // AES-256 material unwrapped from the root into the engine
	kindHSM                        // material that never leaves a custom key store's HSM
	kindRSA                        // an RSA private key unwrapped from the root
	kindEC                         // an ECDSA, ECDH or Ed25519 private key unwrapped from the root
	kindHMAC                       // an HMAC secret unwrapped from the root
	kindMLDSA                      // an ML-DSA private key unwrapped from the root
)

// kind is r's key kind, from its key store and its spec's table row.
func (r *keyRecord) kind() keyKind {
	if r.CustomKeyStoreID != "" {
		return kindHSM
	}
	spec, ok := engine.LookupSpec(r.Spec)
	if !ok {
		return kindUnsupported
	}
	switch spec.Kind() {
	case engine.KindSymmetric:
		return kindSymmetric
	case engine.KindRSA:
		return kindRSA
	case engine.KindEC, engine.KindEd25519:
		return kindEC
	case engine.KindHMAC:
		return kindHMAC
	case engine.KindMLDSA:
		return kindMLDSA
	}
	return kindUnsupported
}
