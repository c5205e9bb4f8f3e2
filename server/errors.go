package server

import (
	"errors"

	"github.com/coffer-kms/coffer/kms"
)

// errorStatus maps each kind of service failure to the AWS error code it
// is sent as and the HTTP status AWS uses. Only the three server faults
// are 5xx, as in the AWS KMS model.
var errorStatus = []struct {
	kind   error
	status int
}{
	{kms.ErrNotFound, 400},
	{kms.ErrInvalidArn, 400},
	{kms.ErrDisabled, 400},
	{kms.ErrInvalidState, 400},
	{kms.ErrInvalidCiphertext, 400},
	{kms.ErrIncorrectKey, 400},
	{kms.ErrInvalidKeyUsage, 400},
	{kms.ErrInvalidSignature, 400},
	{kms.ErrInvalidMac, 400},
	{kms.ErrAlreadyExists, 400},
	{kms.ErrInvalidAliasName, 400},
	{kms.ErrLimitExceeded, 400},
	{kms.ErrInvalidMarker, 400},
	{kms.ErrTag, 400},
	{kms.ErrValidation, 400},
	{kms.ErrUnsupportedOperation, 400},
	{kms.ErrMalformedPolicy, 400},
	{kms.ErrDryRun, 412},
	{kms.ErrConflict, 400},
	{kms.ErrInvalidGrantToken, 400},
	{kms.ErrInvalidGrantId, 400},
	{kms.ErrAccessDenied, 400},
	{kms.ErrNotAuthorized, 400},
	{kms.ErrCustomKeyStoreNotFound, 400},
	{kms.ErrCustomKeyStoreInvalidState, 400},
	{kms.ErrCustomKeyStoreNameInUse, 400},
	{kms.ErrCustomKeyStoreHasCMKs, 400},
	{kms.ErrCloudHsmClusterNotFound, 400},
	{kms.ErrCloudHsmClusterInUse, 400},
	{kms.ErrIncorrectTrustAnchor, 400},
	{kms.ErrExpiredImportToken, 400},
	{kms.ErrInvalidImportToken, 400},
	{kms.ErrIncorrectKeyMaterial, 400},
	{kms.ErrKeyUnavailable, 500},
	{kms.ErrDependencyTimeout, 503},
	{kms.ErrInternal, 500},
}

// classify returns the AWS error code, status and message for err.
func classify(err error) (code string, status int, message string) {
	var ae *authError
	if errors.As(err, &ae) {
		// AWS JSON services answer every authentication failure of a JSON
		// request with 400, MissingAuthenticationToken included.
		return ae.code, 400, ae.message
	}
	var pe *protocolError
	if errors.As(err, &pe) {
		return pe.code, pe.status, pe.message
	}
	var ke *kms.Error
	if errors.As(err, &ke) {
		for _, e := range errorStatus {
			if errors.Is(ke.Kind, e.kind) {
				return e.kind.Error(), e.status, ke.Message
			}
		}
	}
	if kms.StoreUnavailable(err) {
		// A store transaction's own failure, not wrapped by the service:
		// the database did not answer.
		return kms.ErrDependencyTimeout.Error(), 503, "The system timed out while trying to fulfill the request."
	}
	return kms.ErrInternal.Error(), 500, "An internal error occurred."
}

// protocolError is a failure of the transport itself: unknown operation,
// unreadable JSON, oversize body.
type protocolError struct {
	code    string
	status  int
	message string
}

func (e *protocolError) Error() string { return e.code + ": " + e.message }
