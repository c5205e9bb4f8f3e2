package policy

import (
	"net/netip"
	"slices"
	"strings"
	"time"
)

type statement struct {
	sid          string
	allow        bool
	hasPrincipal bool
	notPrincipal bool
	principals   *principalSet
	hasAction    bool
	notAction    bool
	actions      []glob
	hasResource  bool
	notResource  bool
	resources    []glob
	conditions   []condition
}

type principalSet struct {
	any      bool
	accounts []string // account roots: "111122223333"
	arns     []string // users and roles
	services []string
}

// match reports whether the set names the caller directly (its ARN, *, or
// its account when the caller is that account's root) or through its
// account (delegation to the account's identity policies).
func (ps *principalSet) match(r *Request) (direct, viaAccount bool) {
	if ps == nil { // a statement with no principal names no one
		return false, false
	}
	if ps.any || slices.Contains(ps.arns, r.PrincipalARN) {
		return true, false
	}
	if slices.Contains(ps.accounts, r.PrincipalAccount) {
		if r.isRoot() {
			return true, false
		}
		return false, true
	}
	return false, false
}

// glob is a pattern with * (any run) and ? (any one character).
type glob struct {
	pat     string
	literal bool
}

func compileGlob(p string) glob {
	return glob{pat: p, literal: !strings.ContainsAny(p, "*?")}
}

// match tests s; fold compares ASCII letters case-insensitively (the
// pattern is then lower case already).
func (g glob) match(s string, fold bool) bool {
	if g.literal {
		if fold {
			return strings.EqualFold(g.pat, s)
		}
		return g.pat == s
	}
	if g.pat == "*" {
		return true
	}
	p := g.pat
	// Iterative matching with one backtrack point per star.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		if pi < len(p) && (p[pi] == '?' || eqByte(p[pi], s[si], fold)) {
			pi++
			si++
		} else if pi < len(p) && p[pi] == '*' {
			star, mark = pi, si
			pi++
		} else if star >= 0 {
			pi = star + 1
			mark++
			si = mark
		} else {
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

func eqByte(p, s byte, fold bool) bool {
	if p == s {
		return true
	}
	if fold && 'A' <= s && s <= 'Z' {
		return p == s+('a'-'A')
	}
	return false
}

func anyGlob(gs []glob, s string, fold bool) bool {
	for _, g := range gs {
		if g.match(s, fold) {
			return true
		}
	}
	return false
}

// applies reports whether the statement's action, resource and conditions
// cover the request (principals are checked by the caller).
func (st *statement) applies(r *Request) bool {
	if !st.hasAction || anyGlob(st.actions, r.Action, true) == st.notAction {
		return false
	}
	if !st.hasResource || anyGlob(st.resources, r.Resource, false) == st.notResource {
		return false
	}
	for i := range st.conditions {
		if !st.conditions[i].eval(r.Context) {
			return false
		}
	}
	return true
}

// keyVerdict is a key policy's view of a request.
type keyVerdict struct {
	deny, direct, viaAccount bool
}

func (p *Policy) evalKeyPolicy(r *Request) keyVerdict {
	var v keyVerdict
	if p == nil {
		return v
	}
	for i := range p.statements {
		st := &p.statements[i]
		if !st.hasPrincipal {
			continue
		}
		direct, via := st.principals.match(r)
		if st.notPrincipal {
			direct, via = !(direct || via), false
		}
		if !(direct || via) || !st.applies(r) {
			continue
		}
		if !st.allow {
			v.deny = true
			return v
		}
		v.direct = v.direct || direct
		v.viaAccount = v.viaAccount || via
	}
	return v
}

// Evaluate applies an identity policy (or, for a key policy, only the
// statements that name the caller directly) to a request.
func (p *Policy) Evaluate(r *Request) Decision {
	if p == nil {
		return NotApplicable
	}
	if p.kind == KeyPolicy {
		v := p.evalKeyPolicy(r)
		switch {
		case v.deny:
			return Deny
		case v.direct:
			return Allow
		}
		return NotApplicable
	}
	d := NotApplicable
	for i := range p.statements {
		st := &p.statements[i]
		if !st.applies(r) {
			continue
		}
		if !st.allow {
			return Deny
		}
		d = Allow
	}
	return d
}

// identityDecision combines a principal's identity policies. An account
// root is allowed everything in its own account, as in AWS.
func identityDecision(identity []*Policy, r *Request) Decision {
	d := NotApplicable
	for _, p := range identity {
		switch p.Evaluate(r) {
		case Deny:
			return Deny
		case Allow:
			d = Allow
		}
	}
	if d == NotApplicable && r.isRoot() {
		return Allow
	}
	return d
}

// Authorize decides a key operation: the key policy of a key owned by
// keyAccount, the caller's identity policies, and whether a grant allows it.
func Authorize(keyPolicy *Policy, keyAccount string, identity []*Policy, grantAllows bool, r *Request) Decision {
	kv := keyPolicy.evalKeyPolicy(r)
	if kv.deny {
		return Deny
	}
	id := identityDecision(identity, r)
	if id == Deny {
		return Deny
	}
	if r.PrincipalAccount == keyAccount {
		if kv.direct || (kv.viaAccount && id == Allow) {
			return Allow
		}
	} else if (kv.direct || kv.viaAccount) && id == Allow {
		return Allow
	}
	if grantAllows {
		return Allow
	}
	return NotApplicable
}

// AuthorizeIdentity decides an operation governed by identity policies
// only (CreateKey, ListKeys, ListAliases, GenerateRandom, ...).
func AuthorizeIdentity(identity []*Policy, r *Request) Decision {
	return identityDecision(identity, r)
}

// Request is what a decision is about.
type Request struct {
	PrincipalARN     string // arn:aws:iam::<account>:user/<name>, or :root
	PrincipalAccount string
	Action           string // "kms:Encrypt"; matched case-insensitively
	Resource         string // the key ARN
	Context          *Context
}

func (r *Request) isRoot() bool {
	a := r.PrincipalARN
	return strings.HasSuffix(a, ":root") && strings.HasPrefix(a, "arn:aws:iam::") &&
		a[len("arn:aws:iam::"):len(a)-len(":root")] == r.PrincipalAccount
}

// Context holds the condition keys of a request. The zero value has none
// present; fields left empty are absent keys.
type Context struct {
	EncryptionContext     map[string]string // kms:EncryptionContext:<key>, kms:EncryptionContextKeys
	HasEncryptionContext  bool              // the request carried the member (possibly empty)
	EncryptionAlgorithm   string
	GrantOperations       []string
	GranteePrincipal      string
	GrantIsForAWSResource bool
	IsGrantRequest        bool
	RequestAlias          string
	ResourceAliases       []string
	// ResourceAliasesFunc, when set, supplies kms:ResourceAliases on first
	// use, so that requests whose policies never ask do not pay for it.
	ResourceAliasesFunc func() []string
	KeySpec             string
	KeyUsage            string
	KeyOrigin           string
	ViaService          string
	CallerAccount       string
	PrincipalARN        string
	SourceIP            netip.Addr
	SecureTransport     bool
	HasTransport        bool
	CurrentTime         time.Time
	// Extra holds any other key, by lower-case name.
	Extra map[string][]string
}

// lookup returns the values of a condition key. buf is scratch space for
// single values, so that most lookups do not allocate.
func (c *Context) lookup(cd *condition, buf *[1]string) ([]string, bool) {
	if c == nil {
		return nil, false
	}
	one := func(s string) ([]string, bool) {
		if s == "" {
			return nil, false
		}
		buf[0] = s
		return buf[:], true
	}
	switch cd.key {
	case "kms:encryptioncontext:":
		v, ok := c.EncryptionContext[cd.ecKey]
		if !ok {
			return nil, false
		}
		buf[0] = v
		return buf[:], true
	case "kms:encryptioncontextkeys":
		if len(c.EncryptionContext) == 0 {
			return nil, c.HasEncryptionContext
		}
		keys := make([]string, 0, len(c.EncryptionContext))
		for k := range c.EncryptionContext {
			keys = append(keys, k)
		}
		return keys, true
	case "kms:encryptionalgorithm":
		return one(c.EncryptionAlgorithm)
	case "kms:grantoperations":
		return c.GrantOperations, len(c.GrantOperations) > 0
	case "kms:granteeprincipal":
		return one(c.GranteePrincipal)
	case "kms:grantisforawsresource":
		if !c.IsGrantRequest {
			return nil, false
		}
		if c.GrantIsForAWSResource {
			return one("true")
		}
		return one("false")
	case "kms:requestalias":
		return one(c.RequestAlias)
	case "kms:resourcealiases":
		if c.ResourceAliases == nil && c.ResourceAliasesFunc != nil {
			c.ResourceAliases = c.ResourceAliasesFunc()
		}
		return c.ResourceAliases, len(c.ResourceAliases) > 0
	case "kms:keyspec":
		return one(c.KeySpec)
	case "kms:keyusage":
		return one(c.KeyUsage)
	case "kms:keyorigin":
		return one(c.KeyOrigin)
	case "kms:viaservice":
		return one(c.ViaService)
	case "kms:calleraccount", "aws:principalaccount":
		return one(c.CallerAccount)
	case "aws:principalarn":
		return one(c.PrincipalARN)
	case "aws:sourceip":
		if !c.SourceIP.IsValid() {
			return nil, false
		}
		return one(c.SourceIP.String())
	case "aws:securetransport":
		if !c.HasTransport {
			return nil, false
		}
		if c.SecureTransport {
			return one("true")
		}
		return one("false")
	case "aws:currenttime":
		if c.CurrentTime.IsZero() {
			return nil, false
		}
		return one(c.CurrentTime.UTC().Format(time.RFC3339))
	}
	v, ok := c.Extra[cd.key]
	return v, ok
}
