// Package policy is the AWS policy language as KMS uses it: key policies
// (resource-based, every statement names a Principal) and identity
// policies (attached to a user or role, naming none). A document is parsed
// once into a compiled Policy — patterns classified, action names folded to
// lower case, condition values converted to numbers, dates and CIDR blocks
// — so that evaluation is a few comparisons and does not allocate.
//
// # Parsing
//
// Parse accepts what AWS accepts: Version "2012-10-17" or "2008-10-17", an
// optional Id, Statement as one object or a list, and in each statement Sid,
// Effect, Principal or NotPrincipal ("*", or {"AWS": …} with ARNs of users,
// roles and account roots, bare 12-digit account IDs meaning the account's
// root, "*"; {"Service": …} naming services, which call with their name as
// Request.PrincipalARN; {"Federated": …}, kept but matching no caller),
// Action or
// NotAction and Resource or NotResource with * and ? wildcards, and
// Condition. A key policy statement without Action or Resource is accepted
// and has no effect, as in KMS. Documents are limited to MaxSize bytes. A
// document that is not valid gives a *MalformedError (wrapping ErrMalformed)
// whose message says what is wrong and where, fit for a
// MalformedPolicyDocumentException.
//
// Conditions support the String*, Arn*, Bool, Numeric*, Date*, Null,
// IpAddress, NotIpAddress and BinaryEquals operators, the IfExists suffix
// and the ForAnyValue: and ForAllValues: set qualifiers. Condition key names
// are case-insensitive, the context key of kms:EncryptionContext:<key>
// included (its value compares as the operator says), as in AWS KMS.
// The KMS keys and aws:PrincipalArn, aws:PrincipalAccount, aws:SourceIp,
// aws:CurrentTime, aws:SecureTransport, aws:ResourceTag/<key>,
// aws:RequestTag/<key> (tag key part case-insensitive), aws:TagKeys,
// aws:username, aws:userid and sts:RoleSessionName are fields of Context;
// any other key is looked up in Context.Extra. In a 2012-10-17 document,
// policy variables (${aws:username}, ${kms:EncryptionContext:user} …) and
// the escapes ${*}, ${?}, ${$} are expanded in Resource and in String* and
// Arn* condition values (see variables.go).
//
// # Deciding
//
// A Policy is immutable and safe for concurrent use. Authorize decides a
// key operation the way AWS KMS does:
//
//   - an explicit Deny in the key policy or in the caller's identity
//     policies wins over everything, grants included;
//   - a key policy statement that names the caller (its ARN, or "*") allows
//     a caller of the key's account directly; the account root is named by
//     its ARN or by the bare account ID;
//   - a statement that names the caller's account delegates to the account's
//     identity policies: one of them must allow the action on the key;
//   - a caller of another account needs both: the key policy must name it or
//     its account, and its own identity policies must allow;
//   - a service principal is allowed by a statement naming it (services
//     have no identity policies);
//   - otherwise a grant may allow; otherwise the request is implicitly
//     denied (NotApplicable).
//
// NotPrincipal, NotAction and NotResource match everything the element does
// not list; an account root listed in NotPrincipal excludes only the root,
// not the account's users and roles, as in AWS. The sessions of a role
// (arn:aws:sts::<account>:assumed-role/<role>/<session>) are matched by the
// role's ARN.
//
// AuthorizeIdentity decides the operations that have no key policy
// (CreateKey, ListKeys, GenerateRandom, …) from identity policies alone. An
// account root is allowed everything in its own account unless a policy
// denies it. CheckLockout is KMS's lockout safety check for a new key
// policy, and DefaultKeyPolicy writes the policy KMS gives a key created
// without one.
//
// The package does no I/O and knows nothing of HTTP.
package policy

import (
	"errors"
	"fmt"
)

// MaxSize is the largest policy document accepted, in bytes (AWS KMS's
// limit for key policies).
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

// ErrLockout is the lockout safety check's failure, in AWS's words; the
// server sends it as a MalformedPolicyDocumentException. It is a
// *MalformedError, so errors.Is(err, ErrMalformed) holds for it too.
var ErrLockout error = &MalformedError{Msg: "The new key policy will not allow you to update the key policy in the future."}

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
	// TrustPolicy documents are a role's AssumeRolePolicyDocument:
	// resource-based like key policies, but about the role itself, so a
	// statement names no Resource and applies to the role.
	TrustPolicy
)

// Policy is a compiled policy document.
type Policy struct {
	kind       Kind
	version    string // as written; "" when absent
	id         string
	hasID      bool
	statements []statement
	cost       int64 // worst-case evaluation steps (cost.go)
	// namesIAM reports a statement naming an IAM user or role, the only
	// principals Request.Bound is asked about.
	namesIAM bool
}

// NamesIAMPrincipals reports whether evaluating p can ask Request.Bound:
// whether a statement names an IAM user or role ARN. A caller spares
// building Bound for the policies that cannot (the default key policy
// names only the account).
func (p *Policy) NamesIAMPrincipals() bool { return p != nil && p.namesIAM }
