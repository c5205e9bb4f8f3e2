package policy

// applies reports whether the statement's action, resource and conditions
// cover the request; principals are the caller's business.
func (st *statement) applies(r *Request) bool {
	count(1)
	if !st.hasAction || st.actions.match(r.Action, true) == st.notAction {
		return false
	}
	if !st.hasResource || st.resources.matchIn(r.Resource, false, r.Context) == st.notResource {
		return false
	}
	for i := range st.conditions {
		c := &st.conditions[i]
		if r.lockout && !c.key.lockoutKnown() {
			if st.allow {
				continue
			}
			return false
		}
		if !c.eval(r.Context) {
			return false
		}
	}
	return true
}

// keyVerdict is a key policy's view of a request: whether a statement
// denies it, allows the caller directly, or allows the caller's account.
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
		if st.principals == nil { // an identity policy names no one
			continue
		}
		var direct, via bool
		if st.notPrincipal {
			direct = !st.principals.matchExactly(r)
		} else {
			direct, via = st.principals.match(r)
		}
		if !direct && !via || !st.applies(r) {
			continue
		}
		if !st.allow {
			return keyVerdict{deny: true}
		}
		v.direct = v.direct || direct
		v.viaAccount = v.viaAccount || via
	}
	return v
}

// Evaluate applies one policy to a request: Deny if a statement denies it,
// Allow if one allows it, NotApplicable otherwise. For a key policy only
// statements that name the caller directly count (one that names its
// account delegates, which Authorize resolves).
func (p *Policy) Evaluate(r *Request) Decision {
	if p == nil {
		return NotApplicable
	}
	if !r.withinBounds() {
		return Deny
	}
	if p.kind == KeyPolicy {
		switch v := p.evalKeyPolicy(r); {
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

// AuthorizeIdentity decides an operation that identity policies alone
// govern (CreateKey, ListKeys, ListAliases, GenerateRandom,
// ListRetirableGrants, custom key store operations): Deny if one denies,
// Allow if one allows. An account root is allowed everything in its own
// account unless a policy denies it.
//
// A request beyond the limits the evaluation cost bound assumes (cost.go)
// is denied, here and in Authorize and Evaluate.
func AuthorizeIdentity(identity []*Policy, r *Request) Decision {
	if !r.withinBounds() {
		return Deny
	}
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

// Authorize decides a key operation from the key policy of a key owned by
// keyAccount, the caller's identity policies (of the caller's own account)
// and whether a grant allows it; see the package documentation for the
// rules. A nil key policy allows no one.
func Authorize(keyPolicy *Policy, keyAccount string, identity []*Policy, allowedByGrant bool, r *Request) Decision {
	if !r.withinBounds() {
		return Deny
	}
	kv := keyPolicy.evalKeyPolicy(r)
	if kv.deny {
		return Deny
	}
	id := AuthorizeIdentity(identity, r)
	if id == Deny {
		return Deny
	}
	switch {
	case r.isService(): // services have no identity policies
		if kv.direct {
			return Allow
		}
	case r.PrincipalAccount == keyAccount:
		if kv.direct || kv.viaAccount && id == Allow {
			return Allow
		}
	default: // another account: both the key policy and its own IAM
		if (kv.direct || kv.viaAccount) && id == Allow {
			return Allow
		}
	}
	if allowedByGrant {
		return Allow
	}
	return NotApplicable
}

// CheckLockout is KMS's lockout safety check: once p is the key policy of
// keyARN (owned by keyAccount), could the caller, with its identity
// policies, still call PutKeyPolicy? It returns ErrLockout if not.
//
// Conditions on who the caller is (kms:CallerAccount, aws:PrincipalArn,
// aws:PrincipalAccount) are evaluated; the others depend on a request not
// yet made, so they are assumed to hold in Allow statements and not to hold
// in Deny statements: the check refuses only a policy under which no
// future request could succeed.
func CheckLockout(p *Policy, keyARN, keyAccount, callerARN, callerAccount string, identity []*Policy) error {
	r := &Request{
		PrincipalARN: callerARN, PrincipalAccount: callerAccount,
		Action: "kms:PutKeyPolicy", Resource: keyARN,
		Context: &Context{CallerAccount: callerAccount, PrincipalARN: callerARN},
		lockout: true,
	}
	if Authorize(p, keyAccount, identity, false, r) != Allow {
		return ErrLockout
	}
	return nil
}

// DefaultKeyPolicy is the key policy KMS gives a key created without one,
// byte for byte as GetKeyPolicy returns it: the account root may do
// everything, which delegates to the account's identity policies.
func DefaultKeyPolicy(account string) []byte {
	return []byte(`{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::` + account + `:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}`)
}
