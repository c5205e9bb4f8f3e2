package kms

import "strings"

// State checks, as AWS's operation × key-state table prescribes.

func invalidState(r *keyRecord) error {
	switch r.State {
	case StatePendingDeletion:
		return newError(ErrInvalidState, "%s is pending deletion.", r.arn())
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
