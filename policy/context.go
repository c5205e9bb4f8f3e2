package policy

import (
	"cmp"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Request is what a decision is about.
type Request struct {
	// PrincipalARN is the caller: arn:aws:iam::<account>:user/<name>,
	// …:role/<name>, arn:aws:sts::<account>:assumed-role/<role>/<session>,
	// the account root arn:aws:iam::<account>:root, or for an AWS service
	// its name ("logs.amazonaws.com"), matched by Service principals.
	PrincipalARN     string
	PrincipalAccount string // the caller's account; "" for a service
	Action           string // "kms:Encrypt"; matched case-insensitively
	Resource         string // the key ARN ("*" for operations on no key)
	Context          *Context
	// Bound, when set, is asked about a statement's principal that names
	// an IAM user or role by ARN and matched the caller by that ARN: it
	// reports whether the ARN still stands for the caller, i.e. whether
	// the unique ID the ARN was bound to when the policy was put is the
	// caller's (kms: a user or role deleted and created again under the
	// same name is another principal, as in AWS). nil: names match by ARN
	// alone. Roots, accounts, "*" and services never consult it.
	Bound func(principalARN string) bool

	// lockout makes conditions on keys a future request may carry
	// optimistic: assumed to hold in Allow statements and not to hold in
	// Deny statements (see CheckLockout).
	lockout bool
}

// isRoot reports whether the caller is its account's root.
func (r *Request) isRoot() bool {
	a := r.PrincipalARN
	return len(a) == len("arn:aws:iam::")+len(r.PrincipalAccount)+len(":root") &&
		strings.HasPrefix(a, "arn:aws:iam::") && strings.HasSuffix(a, ":root") &&
		a[len("arn:aws:iam::"):len(a)-len(":root")] == r.PrincipalAccount
}

// isService reports whether the caller is an AWS service principal.
func (r *Request) isService() bool {
	return r.PrincipalARN != "" && !strings.HasPrefix(r.PrincipalARN, "arn:")
}

// Context holds the condition keys of a request. The zero value has none
// present; a field left empty is an absent key. It is read during one
// evaluation at a time (ResourceAliasesFunc fills ResourceAliases in place).
type Context struct {
	// EncryptionContext gives kms:EncryptionContext:<key> and
	// kms:EncryptionContextKeys; an empty or nil map means both are absent.
	EncryptionContext map[string]string
	// HasEncryptionContext records that the request carried the member.
	HasEncryptionContext bool
	EncryptionAlgorithm  string   // kms:EncryptionAlgorithm
	GrantOperations      []string // kms:GrantOperations
	GranteePrincipal     string   // kms:GranteePrincipal
	// GrantIsForAWSResource is kms:GrantIsForAWSResource, present only
	// when IsGrantRequest is set.
	GrantIsForAWSResource bool
	IsGrantRequest        bool
	RetiringPrincipal     string // kms:RetiringPrincipal
	// GrantConstraintType is kms:GrantConstraintType:
	// "EncryptionContextEquals" or "EncryptionContextSubset".
	GrantConstraintType string
	// ReEncryptOnSameKey is kms:ReEncryptOnSameKey, present only when
	// HasReEncryptOnSameKey is set.
	ReEncryptOnSameKey    bool
	HasReEncryptOnSameKey bool
	RequestAlias          string   // kms:RequestAlias
	ResourceAliases       []string // kms:ResourceAliases
	// ResourceAliasesFunc, when set, supplies kms:ResourceAliases on first
	// use, so that requests whose policies never ask do not pay for it. It
	// returns an error when the aliases cannot be read: the key is then
	// absent for this evaluation and InputErr records why.
	ResourceAliasesFunc func() ([]string, error)
	// InputErr is the first failure of a lazily computed condition key.
	// A decision made while it is set was made on missing facts and must
	// not be used: the caller refuses the request (authorization never
	// fails open).
	InputErr      error
	KeySpec       string // kms:KeySpec
	KeyUsage      string // kms:KeyUsage
	KeyOrigin     string // kms:KeyOrigin
	ViaService    string // kms:ViaService
	CallerAccount string // kms:CallerAccount and aws:PrincipalAccount
	PrincipalARN  string // aws:PrincipalArn
	SourceIP      netip.Addr
	// SecureTransport is aws:SecureTransport, present only when
	// HasTransport is set.
	SecureTransport bool
	HasTransport    bool
	CurrentTime     time.Time // aws:CurrentTime; the zero time is absent
	// ResourceTags are the key's tags, aws:ResourceTag/<tag key>.
	ResourceTags []Tag
	// RequestTags are the tags the request sets, aws:RequestTag/<tag key>
	// (CreateKey, TagResource).
	RequestTags []Tag
	// TagKeys are the tag keys of the request, aws:TagKeys (CreateKey,
	// TagResource, UntagResource).
	TagKeys []string
	// Username is aws:username, present for IAM users only.
	Username string
	// UserID is aws:userid: the user's unique ID, RoleId:session for a
	// role session, the account ID for the account root.
	UserID string
	// RoleSessionName is sts:RoleSessionName, for role sessions only.
	RoleSessionName string
	// MultiRegion is kms:MultiRegion ("true" or "false"), and
	// MultiRegionKeyType kms:MultiRegionKeyType (PRIMARY or REPLICA, for
	// multi-Region keys only); "" is absent.
	MultiRegion        string
	MultiRegionKeyType string
	// Extra holds any other key by its lower-case name. A key in another
	// case is still found, by a slower scan.
	Extra map[string][]string

	// ecIndex is the encryption context sorted by case-folded key, built
	// on first use for a context of more than ecIndexMin pairs, so that
	// each kms:EncryptionContext:<key> condition finds its values by
	// binary search instead of visiting every pair (cost.go).
	ecIndex []ecPair
}

type ecPair struct{ fold, k, v string }

// ecIndexMin is the size above which an encryption context is indexed;
// smaller ones are scanned, without allocating.
const ecIndexMin = 16

// foldCase maps s to a form equal for exactly the strings
// strings.EqualFold calls equal: each rune becomes the smallest rune of
// its simple case-folding orbit (an invalid byte the replacement
// character, as EqualFold decodes it).
func foldCase(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf || 'a' <= s[i] && s[i] <= 'z' {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b = utf8.AppendRune(b, m)
	}
	return string(b)
}

// encryptionContextIndex returns the context's index, building it once.
func (c *Context) encryptionContextIndex() []ecPair {
	if c.ecIndex == nil {
		idx := make([]ecPair, 0, len(c.EncryptionContext))
		for k, v := range c.EncryptionContext {
			idx = append(idx, ecPair{foldCase(k), k, v})
		}
		slices.SortFunc(idx, func(a, b ecPair) int { return cmp.Compare(a.fold, b.fold) })
		c.ecIndex = idx
	}
	return c.ecIndex
}

// Tag is a resource tag, as aws:ResourceTag/<key> and aws:RequestTag/<key>
// see it.
type Tag struct{ Key, Value string }

// keyID names the condition keys that are fields of Context.
type keyID int8

const (
	keyExtra keyID = iota
	keyEncryptionContext
	keyEncryptionContextKeys
	keyEncryptionAlgorithm
	keyGrantOperations
	keyGranteePrincipal
	keyGrantIsForAWSResource
	keyRetiringPrincipal
	keyGrantConstraintType
	keyReEncryptOnSameKey
	keyRequestAlias
	keyResourceAliases
	keyKeySpec
	keyKeyUsage
	keyKeyOrigin
	keyMultiRegion
	keyMultiRegionKeyType
	keyViaService
	keyCallerAccount
	keyPrincipalARN
	keySourceIP
	keySecureTransport
	keyCurrentTime
	keyResourceTag // aws:ResourceTag/<tag key>
	keyRequestTag  // aws:RequestTag/<tag key>
	keyTagKeys
	keyUsername
	keyUserID
	keyRoleSessionName
)

var knownKeys = map[string]keyID{
	"kms:encryptioncontextkeys":  keyEncryptionContextKeys,
	"kms:encryptionalgorithm":    keyEncryptionAlgorithm,
	"kms:grantoperations":        keyGrantOperations,
	"kms:granteeprincipal":       keyGranteePrincipal,
	"kms:grantisforawsresource":  keyGrantIsForAWSResource,
	"kms:retiringprincipal":      keyRetiringPrincipal,
	"kms:grantconstrainttype":    keyGrantConstraintType,
	"kms:reencryptonsamekey":     keyReEncryptOnSameKey,
	"kms:requestalias":           keyRequestAlias,
	"kms:resourcealiases":        keyResourceAliases,
	"kms:keyspec":                keyKeySpec,
	"kms:keyusage":               keyKeyUsage,
	"kms:keyorigin":              keyKeyOrigin,
	"kms:multiregion":            keyMultiRegion,
	"kms:multiregionkeytype":     keyMultiRegionKeyType,
	"kms:viaservice":             keyViaService,
	"kms:calleraccount":          keyCallerAccount,
	"aws:principalaccount":       keyCallerAccount,
	"aws:principalarn":           keyPrincipalARN,
	"aws:sourceip":               keySourceIP,
	"aws:securetransport":        keySecureTransport,
	"aws:currenttime":            keyCurrentTime,
	"aws:tagkeys":                keyTagKeys,
	"aws:username":               keyUsername,
	"aws:userid":                 keyUserID,
	"sts:rolesessionname":        keyRoleSessionName,
	"kms:customermasterkeyspec":  keyKeySpec,
	"kms:customermasterkeyusage": keyKeyUsage,
}

// singleValued reports whether a request carries one value of the key at
// most. Keys that are not fields of Context (Extra) may be multivalued.
func (k keyID) singleValued() bool {
	switch k {
	case keyExtra, keyEncryptionContextKeys, keyGrantOperations, keyResourceAliases, keyTagKeys:
		return false
	}
	return true
}

// lockoutKnown reports whether the lockout check knows the key's value
// for the future PutKeyPolicy request: only who the caller is.
func (k keyID) lockoutKnown() bool { return k == keyCallerAccount || k == keyPrincipalARN }

// value is one value of a condition key. Most are strings; the source
// address and the time keep their types so that IpAddress and Date*
// operators compare them without formatting and parsing.
type value struct {
	s    string
	ip   netip.Addr
	t    time.Time
	kind valueKind
}

type valueKind int8

const (
	valString valueKind = iota
	valIP
	valTime
)

// str is the value as a string, for string operators on typed keys.
func (v *value) str() string {
	switch v.kind {
	case valIP:
		return v.ip.String()
	case valTime:
		return v.t.UTC().Format(time.RFC3339)
	}
	return v.s
}

// present reports whether the request has at least one value for the key.
func (c *Context) present(cd *condition) bool {
	n, _ := c.scan(cd, false, nil)
	return n > 0
}

// scan counts the values of the condition's key and, with match, those
// that match the condition's positive operator. It calls matchAny directly
// rather than taking a callback, so that the value it fills stays on the
// stack.
//
// With last, it also stores there the last value visited.
func (c *Context) scan(cd *condition, match bool, last *value) (n, matched int) {
	if c == nil {
		return 0, 0
	}
	var v value
	visit := func() {
		n++
		count(1)
		if match && cd.matchAny(&v, c) {
			matched++
		}
		if last != nil {
			*last = v
		}
	}
	one := func(s string) {
		if s != "" {
			v.s = s
			visit()
		}
	}
	list := func(l []string) {
		for _, s := range l {
			v.s = s
			visit()
		}
	}
	switch cd.key {
	case keyEncryptionContext:
		// The context key part is not case sensitive; the operator decides
		// how values compare (AWS developer guide, "AWS KMS condition
		// keys", kms:EncryptionContext:context-key and "Case sensitivity
		// of the encryption context condition"). A context holding keys
		// that differ only by case gives the condition key one value per
		// such key: a Deny then matches if any of them does.
		if len(c.EncryptionContext) > ecIndexMin {
			idx := c.encryptionContextIndex()
			i, _ := slices.BinarySearchFunc(idx, cd.foldKey, func(p ecPair, k string) int { return cmp.Compare(p.fold, k) })
			steps := bits.Len(uint(len(idx))) * (len(cd.foldKey) + 1)
			for ; i < len(idx) && idx[i].fold == cd.foldKey; i++ {
				steps += len(cd.foldKey) + 1
				v.s = idx[i].v // an empty value is still a value
				visit()
			}
			count(steps + len(cd.foldKey) + 1)
			break
		}
		steps := 0
		for k, s := range c.EncryptionContext {
			steps += 1 + min(len(k), len(cd.subKey))
			if k == cd.subKey || strings.EqualFold(k, cd.subKey) {
				v.s = s // an empty value is still a value
				visit()
			}
		}
		count(steps)
	case keyEncryptionContextKeys:
		if len(c.EncryptionContext) > ecIndexMin {
			for _, p := range c.encryptionContextIndex() {
				v.s = p.k
				visit()
			}
			break
		}
		for k := range c.EncryptionContext {
			v.s = k
			visit()
		}
	case keyEncryptionAlgorithm:
		one(c.EncryptionAlgorithm)
	case keyGrantOperations:
		list(c.GrantOperations)
	case keyGranteePrincipal:
		one(c.GranteePrincipal)
	case keyGrantIsForAWSResource:
		if c.IsGrantRequest {
			one(boolString(c.GrantIsForAWSResource))
		}
	case keyRetiringPrincipal:
		one(c.RetiringPrincipal)
	case keyGrantConstraintType:
		one(c.GrantConstraintType)
	case keyReEncryptOnSameKey:
		if c.HasReEncryptOnSameKey {
			one(boolString(c.ReEncryptOnSameKey))
		}
	case keyRequestAlias:
		one(c.RequestAlias)
	case keyResourceAliases:
		if c.ResourceAliases == nil && c.ResourceAliasesFunc != nil && c.InputErr == nil {
			aliases, err := c.ResourceAliasesFunc()
			if err == nil && !listWithin(aliases) {
				err = errAliasesBound
			}
			if err != nil {
				c.InputErr = err
				break
			}
			c.ResourceAliases = aliases
		}
		list(c.ResourceAliases)
	case keyKeySpec:
		one(c.KeySpec)
	case keyKeyUsage:
		one(c.KeyUsage)
	case keyKeyOrigin:
		one(c.KeyOrigin)
	case keyMultiRegion:
		one(c.MultiRegion)
	case keyMultiRegionKeyType:
		one(c.MultiRegionKeyType)
	case keyViaService:
		one(c.ViaService)
	case keyCallerAccount:
		one(c.CallerAccount)
	case keyPrincipalARN:
		one(c.PrincipalARN)
	case keySourceIP:
		if c.SourceIP.IsValid() {
			v.ip, v.kind = c.SourceIP, valIP
			visit()
		}
	case keySecureTransport:
		if c.HasTransport {
			one(boolString(c.SecureTransport))
		}
	case keyCurrentTime:
		if !c.CurrentTime.IsZero() {
			v.t, v.kind = c.CurrentTime, valTime
			visit()
		}
	case keyResourceTag, keyRequestTag:
		// The tag key part is matched without regard to case, as condition
		// key names are (and as kms:EncryptionContext:<key> is): a key with
		// tags differing only by case gives one value per such tag, so a
		// Deny matches if any does. AWS documents condition key names as
		// case-insensitive and says nothing narrower for the tag key part;
		// this is the stricter reading (DESIGN.md).
		tags := c.ResourceTags
		if cd.key == keyRequestTag {
			tags = c.RequestTags
		}
		count(len(tags) * (1 + MaxRequestListValueBytes))
		for i := range tags {
			if tags[i].Key == cd.subKey || strings.EqualFold(tags[i].Key, cd.subKey) {
				v.s = tags[i].Value // an empty value is still a value
				visit()
			}
		}
	case keyTagKeys:
		list(c.TagKeys)
	case keyUsername:
		one(c.Username)
	case keyUserID:
		one(c.UserID)
	case keyRoleSessionName:
		one(c.RoleSessionName)
	default:
		count(len(cd.lowerKey) + 1)
		l, ok := c.Extra[cd.lowerKey]
		if !ok && len(c.Extra) > 0 {
			for k, vals := range c.Extra {
				count(1 + len(k))
				if strings.EqualFold(k, cd.lowerKey) {
					l = vals
					break
				}
			}
		}
		list(l)
	}
	return n, matched
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
