// Package policy is the AWS policy language as KMS uses it: key policies
// (resource-based, with principals) and identity policies, parsed once into
// a compiled form and evaluated without allocating in the common case.
//
// A Policy is immutable and safe for concurrent use. Authorize combines a
// key policy, the caller's identity policies and the grants that apply the
// way AWS KMS does: an explicit Deny anywhere wins; otherwise the key policy
// must allow the caller directly, or allow the caller's account (which
// delegates to the account's identity policies, and then one of them must
// allow), or a grant must allow. A principal of another account also needs
// its own identity policies to allow.
//
// The package does no I/O and knows nothing of HTTP.
package policy

import (
	"errors"
	"fmt"
)

// MaxSize is the largest policy document accepted, as AWS KMS's key policies.
const MaxSize = 32 * 1024

// ErrMalformed is wrapped by every parse failure.
var ErrMalformed = errors.New("policy: malformed document")

// MalformedError says what is wrong with a document, in words fit for a
// MalformedPolicyDocumentException.
type MalformedError struct{ Msg string }

func (e *MalformedError) Error() string { return e.Msg }
func (e *MalformedError) Unwrap() error { return ErrMalformed }

func malformed(format string, args ...any) error {
	return &MalformedError{Msg: fmt.Sprintf(format, args...)}
}

// Decision is the outcome of evaluating policies for a request.
type Decision int8

const (
	// NotApplicable: nothing allows the request (an implicit deny).
	NotApplicable Decision = iota
	// Allow: the request is allowed.
	Allow
	// Deny: an explicit Deny matched.
	Deny
)

func (d Decision) String() string {
	switch d {
	case Allow:
		return "Allow"
	case Deny:
		return "Deny"
	}
	return "NotApplicable"
}

// Kind tells Parse which rules the document follows.
type Kind int8

const (
	// KeyPolicy documents are resource-based: every statement names a
	// Principal or NotPrincipal.
	KeyPolicy Kind = iota
	// IdentityPolicy documents are attached to a principal and name none.
	IdentityPolicy
)

// Policy is a compiled policy document.
type Policy struct {
	kind       Kind
	statements []statement
}
