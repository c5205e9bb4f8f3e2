package kms

import (
	"errors"
	"fmt"
)

// Kinds of failure. Every error a Service method returns wraps exactly one
// of these (test with errors.Is); the server maps each to its AWS error code
// and status in one table. The message of the wrapping *Error is what the
// caller sees, and never contains plaintext or key material.
var (
	ErrNotFound             = errors.New("NotFoundException")
	ErrInvalidArn           = errors.New("InvalidArnException")
	ErrDisabled             = errors.New("DisabledException")
	ErrInvalidState         = errors.New("KMSInvalidStateException")
	ErrInvalidCiphertext    = errors.New("InvalidCiphertextException")
	ErrIncorrectKey         = errors.New("IncorrectKeyException")
	ErrInvalidKeyUsage      = errors.New("InvalidKeyUsageException")
	ErrAlreadyExists        = errors.New("AlreadyExistsException")
	ErrInvalidAliasName     = errors.New("InvalidAliasNameException")
	ErrLimitExceeded        = errors.New("LimitExceededException")
	ErrInvalidMarker        = errors.New("InvalidMarkerException")
	ErrTag                  = errors.New("TagException")
	ErrValidation           = errors.New("ValidationException")
	ErrUnsupportedOperation = errors.New("UnsupportedOperationException")
	ErrMalformedPolicy      = errors.New("MalformedPolicyDocumentException")
	ErrDryRun               = errors.New("DryRunOperationException")
	// ErrConflict is AWS's answer to a rotation while another is in
	// progress (RotateKeyOnDemand).
	ErrConflict          = errors.New("ConflictException")
	ErrInvalidGrantToken = errors.New("InvalidGrantTokenException")
	ErrInvalidGrantId    = errors.New("InvalidGrantIdException")
	ErrAccessDenied      = errors.New("AccessDeniedException")
	// ErrNotAuthorized is not in the KMS model, but AWS answers it for a
	// reserved alias name (alias/aws/…), one of the errors common to all
	// AWS services ("NotAuthorized", 400).
	ErrNotAuthorized          = errors.New("NotAuthorizedException")
	ErrKeyUnavailable         = errors.New("KeyUnavailableException")
	ErrDependencyTimeout      = errors.New("DependencyTimeoutException")
	ErrInternal               = errors.New("KMSInternalException")
	ErrCustomKeyStoreNotFound = errors.New("CustomKeyStoreNotFoundException")

	ErrCustomKeyStoreInvalidState = errors.New("CustomKeyStoreInvalidStateException")
	ErrCustomKeyStoreNameInUse    = errors.New("CustomKeyStoreNameInUseException")
	ErrCustomKeyStoreHasCMKs      = errors.New("CustomKeyStoreHasCMKsException")
	ErrCloudHsmClusterNotFound    = errors.New("CloudHsmClusterNotFoundException")
	ErrCloudHsmClusterInUse       = errors.New("CloudHsmClusterInUseException")
	ErrIncorrectTrustAnchor       = errors.New("IncorrectTrustAnchorException")
	ErrInvalidSignature           = errors.New("KMSInvalidSignatureException")
	ErrInvalidMac                 = errors.New("KMSInvalidMacException")
	ErrExpiredImportToken         = errors.New("ExpiredImportTokenException")
	ErrInvalidImportToken         = errors.New("InvalidImportTokenException")
	ErrIncorrectKeyMaterial       = errors.New("IncorrectKeyMaterialException")
)

// Error is a failure with the message AWS would send.
type Error struct {
	Kind    error
	Message string
	cause   error // for logs; never sent
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Kind }

// Cause returns the underlying failure of an internal error, for logs.
func (e *Error) Cause() error { return e.cause }

func newError(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// invalidCiphertext is the one answer to every blob that does not open. AWS
// sends this exception with no message; so do we.
var invalidCiphertext = &Error{Kind: ErrInvalidCiphertext, Message: ""}

// unknownCiphertextKey answers a well-formed blob whose key does not exist,
// is in another Region, or is gone: AWS's AccessDeniedException with its
// message (the AWS KMS developer guide's troubleshooting of Decrypt; moto's
// kms models.decrypt and local-kms issue #28 quote it). A blob that does
// not parse stays InvalidCiphertextException.
var unknownCiphertextKey = &Error{Kind: ErrAccessDenied,
	Message: "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access."}

// dryRun is DryRun's success.
var dryRun = &Error{Kind: ErrDryRun, Message: "The request would have succeeded, but the DryRun option is set."}
