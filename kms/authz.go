package kms

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/policy"
)

// Authorization follows AWS KMS: key operations are decided by the key
// policy, the caller's identity policies and grants (policy.Authorize);
// IAM-only operations (CreateKey, ListKeys, ListAliases, GenerateRandom,
// ListRetirableGrants, the administration API) by identity policies alone.
// Every operation authorizes before anything observable happens.

// identityEntry is a principal's compiled policies and, for a role, its
// unique ID.
type identityEntry struct {
	policies []*policy.Policy
	id       string
}

// forgetPrincipal drops what is cached about a principal's policies.
func (s *Service) forgetPrincipal(arn string) { s.cache.invalidate(cachePrincipal, arn) }

// validateIdentityPolicy checks an identity policy document.
func (s *Service) validateIdentityPolicy(doc string) error {
	if _, err := policy.Parse([]byte(doc), policy.IdentityPolicy); err != nil {
		return newError(ErrMalformedPolicy, "%s", err.Error())
	}
	return nil
}

// identity returns the caller's identity policies (none for an account
// root, which policy treats as allowed everything in its account).
//
// A role session's policies are its role's, and a session whose role is
// gone is refused: a missing role is never cached.
func (s *Service) identity(ctx context.Context, c *Caller) ([]*policy.Policy, error) {
	arn := c.principalARN()
	gone := func() error {
		return newError(ErrAccessDenied, "The role %s of this session no longer exists.", c.RoleARN)
	}
	if e, ok := s.cache.identities.get(arn); ok {
		if c.RoleARN != "" && e.id != c.roleID {
			return nil, gone()
		}
		return e.policies, nil
	}
	gen := s.cache.identities.generation()
	p, err := s.principal(ctx, arn)
	if err != nil {
		return nil, err
	}
	if c.RoleARN != "" && (p == nil || p.ID != c.roleID) {
		return nil, gone()
	}
	ps := []*policy.Policy{}
	id := ""
	if p != nil {
		id = p.ID
		for _, doc := range p.Policies {
			cp, err := policy.ParseStored([]byte(doc), policy.IdentityPolicy)
			if err != nil {
				// Stored policies were valid when put: one that no longer
				// parses is corruption, and dropping it could drop a Deny.
				return nil, internal(fmt.Errorf("kms: an identity policy of %s does not parse: %w", arn, err))
			}
			ps = append(ps, cp)
		}
	}
	s.cache.identities.fill(arn, identityEntry{ps, id}, gen)
	return ps, nil
}

// principalARN is the identity whose policies apply to c: the role of a
// role session, otherwise the caller itself (aws:PrincipalArn).
func (c *Caller) principalARN() string {
	if c.RoleARN != "" {
		return c.RoleARN
	}
	return c.ARN
}

// requestContext starts the condition keys of a request by c on key r.
func (s *Service) requestContext(ctx context.Context, c *Caller, r *keyRecord) *policy.Context {
	pc := &policy.Context{
		CallerAccount: c.Account, PrincipalARN: c.principalARN(), SourceIP: c.SourceIP,
		SecureTransport: c.SecureTransport, HasTransport: c.HasTransport, CurrentTime: s.now(),
		ViaService: c.viaService, // trusted: set only by ActAs (managed.go)
	}
	pc.Username, pc.UserID, pc.RoleSessionName = c.identityKeys()
	if r != nil {
		pc.KeySpec, pc.KeyUsage, pc.KeyOrigin = r.Spec, r.Usage, r.Origin
		pc.ResourceTags = policyTags(r.Tags)
		id, account := r.ID, r.Account
		pc.ResourceAliasesFunc = func() ([]string, error) { return s.aliasesOf(ctx, account, id) }
	}
	return pc
}

// identityKeys are aws:username (IAM users only), aws:userid (the user's
// unique ID, RoleId:session for a role session, the account for its root)
// and sts:RoleSessionName (role sessions only), from IAM's "AWS global
// condition context keys" (docs.aws.amazon.com/IAM/latest/UserGuide/
// reference_policies_condition-keys.html) and its table of the values of
// aws:userid and aws:username by principal ("Request information that you
// can use for policy variables", reference_policies_variables.html).
func (c *Caller) identityKeys() (username, userID, session string) {
	arn := c.ARN
	switch {
	case c.RoleARN != "":
		if i := strings.LastIndexByte(arn, '/'); i >= 0 {
			session = arn[i+1:]
		}
		if c.roleID != "" && session != "" {
			userID = c.roleID + ":" + session
		}
	case strings.HasSuffix(arn, ":root"):
		userID = c.Account
	default:
		if i := strings.Index(arn, ":user/"); i >= 0 {
			username = arn[strings.LastIndexByte(arn, '/')+1:]
		}
		userID = c.userID
	}
	return username, userID, session
}

// policyTags are a key's tags as condition keys see them; nil (no
// allocation) for an untagged key.
func policyTags(tags []Tag) []policy.Tag {
	if len(tags) == 0 {
		return nil
	}
	out := make([]policy.Tag, len(tags))
	for i, t := range tags {
		out[i] = policy.Tag{Key: t.TagKey, Value: t.TagValue}
	}
	return out
}

// withRequestTags adds the tags a request sets: aws:RequestTag/<key> and
// aws:TagKeys.
func withRequestTags(pc *policy.Context, tags []Tag) *policy.Context {
	pc.RequestTags = policyTags(tags)
	pc.TagKeys = make([]string, len(tags))
	for i, t := range tags {
		pc.TagKeys[i] = t.TagKey
	}
	return pc
}

// withEncryptionContext adds a request's encryption context and algorithm.
func withEncryptionContext(pc *policy.Context, ec map[string]string, alg string) *policy.Context {
	pc.EncryptionContext, pc.HasEncryptionContext = ec, true
	if alg == "" {
		alg = AlgSymmetric
	}
	pc.EncryptionAlgorithm = alg
	return pc
}

// aliasesOf lists the alias names of a key (kms:ResourceAliases). A store
// that cannot say is an error, never an empty list: an empty list would
// lift a Deny conditioned on the key's aliases.
func (s *Service) aliasesOf(ctx context.Context, account, id string) ([]string, error) {
	out := []string{}
	err := s.store.View(ctx, func(tx keystore.Tx) error {
		out = out[:0] // View may run fn again
		return scanAliases(tx, account, "", func(a *aliasRecord) bool {
			if a.Target == id {
				out = append(out, a.Name)
			}
			return true
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// authorizeKey decides action by c on key r, and refuses with AWS's
// AccessDeniedException. A grant of the key to the caller that includes
// the action's grant operation and whose constraints the request's
// encryption context satisfies may allow it.
func (s *Service) authorizeKey(ctx context.Context, c *Caller, r *keyRecord, action string, pc *policy.Context) error {
	return s.authorizeKeyWith(ctx, c, r, action, pc, nil)
}

// grantMatch reports whether one grant of the key to the caller allows a
// request.
type grantMatch func(*grantRecord) bool

// authorizeKeyWith is authorizeKey with the test a grant must pass to
// allow the request (nil: the default above). Grants are consulted only
// when the policies neither allow nor deny, so that match knows the
// permission, if any, comes from a grant and not from a policy (CreateGrant
// restricts what a grant-given permission may create).
func (s *Service) authorizeKeyWith(ctx context.Context, c *Caller, r *keyRecord, action string, pc *policy.Context, match grantMatch) error {
	ident, err := s.identity(ctx, c)
	if err != nil {
		return err
	}
	if r.compiledPolicy() == nil {
		return internal(fmt.Errorf("kms: the key policy of %s does not compile", r.arn()))
	}
	req := policy.Request{PrincipalARN: c.ARN, PrincipalAccount: c.Account, Action: action, Resource: r.arn(), Context: pc}
	// Authorize(…, grant=true) is Authorize(…, false) with NotApplicable
	// turned into Allow, so asking the grants afterwards decides the same.
	decision := policy.Authorize(r.compiledPolicy(), r.Account, ident, false, &req)
	if pc.InputErr != nil {
		return internal(pc.InputErr) // decided on missing facts: refuse
	}
	if decision == policy.NotApplicable {
		if op := grantOperationOf(action); op != "" {
			if match == nil {
				ec := pc.EncryptionContext
				match = func(g *grantRecord) bool { return slices.Contains(g.Operations, op) && g.Constraints.allows(ec) }
			}
			allowed, err := s.grantAllows(ctx, r.ID, c, match)
			if err != nil {
				return internal(err)
			}
			if allowed {
				decision = policy.Allow
			}
		}
	}
	switch decision {
	case policy.Allow:
		return nil
	case policy.Deny:
		return accessDenied(c, action, r.arn(), "with an explicit deny in a resource-based or identity-based policy")
	}
	if r.compiledPolicy().Evaluate(&req) == policy.NotApplicable && c.Account == r.Account {
		if policy.AuthorizeIdentity(ident, &req) == policy.Allow {
			return accessDenied(c, action, r.arn(), "because no resource-based policy allows the "+action+" action")
		}
		return accessDenied(c, action, r.arn(), "because no identity-based policy allows the "+action+" action")
	}
	return accessDenied(c, action, r.arn(), "because no resource-based policy allows the "+action+" action")
}

// authorizeIdentity decides an IAM-only action.
func (s *Service) authorizeIdentity(ctx context.Context, c *Caller, action, resource string) error {
	return s.authorizeIdentityWith(ctx, c, action, resource, s.requestContext(ctx, c, nil))
}

// authorizeIdentityWith is authorizeIdentity with the request context pc
// (CreateKey's carries the key it would create).
func (s *Service) authorizeIdentityWith(ctx context.Context, c *Caller, action, resource string, pc *policy.Context) error {
	ident, err := s.identity(ctx, c)
	if err != nil {
		return err
	}
	req := policy.Request{PrincipalARN: c.ARN, PrincipalAccount: c.Account, Action: action, Resource: resource, Context: pc}
	switch policy.AuthorizeIdentity(ident, &req) {
	case policy.Allow:
		return nil
	case policy.Deny:
		return accessDenied(c, action, resource, "with an explicit deny in an identity-based policy")
	}
	return accessDenied(c, action, resource, "because no identity-based policy allows the "+action+" action")
}

func accessDenied(c *Caller, action, resource, why string) error {
	return newError(ErrAccessDenied, "User: %s is not authorized to perform: %s on resource: %s %s", c.ARN, action, resource, why)
}

// keyFor resolves keyID, the request member k of the catalogue, for the
// caller and authorizes k's action on it. A key of another account is found
// only for operations AWS allows across accounts.
func (s *Service) keyFor(ctx context.Context, c *Caller, k *KeyMember, keyID string, pc func(*keyRecord) *policy.Context) (*keyRecord, error) {
	return s.keyForWith(ctx, c, k, keyID, pc, nil)
}

// keyForWith is keyFor with the grant test of authorizeKeyWith.
func (s *Service) keyForWith(ctx context.Context, c *Caller, k *KeyMember, keyID string, pc func(*keyRecord) *policy.Context, match grantMatch) (*keyRecord, error) {
	r, err := s.resolveKeyAs(ctx, c, keyID, k.Forms)
	if err != nil {
		return nil, err
	}
	if r.Account != c.Account && !k.CrossAccount {
		return nil, keyNotFound(r.arn())
	}
	var ctxKeys *policy.Context
	if pc != nil {
		ctxKeys = pc(r)
	} else {
		ctxKeys = s.requestContext(ctx, c, r)
	}
	ctxKeys.RequestAlias = requestAlias(keyID)
	if err := s.authorizeKeyWith(ctx, c, r, k.Action, ctxKeys, match); err != nil {
		return nil, err
	}
	return r, nil
}

// requestAlias is kms:RequestAlias for a KeyId: the alias name when the
// request names the key by alias name or alias ARN, "" otherwise. AWS's
// "AWS KMS condition keys" (docs.aws.amazon.com/kms/latest/developerguide/
// conditions-kms.html#conditions-kms-request-alias): the key's value is the
// alias name in the request, an alias ARN giving its alias name.
func requestAlias(keyID string) string {
	switch keyIDForm(keyID) {
	case FormAliasName:
		return keyID
	case FormAliasARN:
		if a, ok := parseKMSARN(keyID); ok && a.kind == "alias" {
			return "alias/" + a.name
		}
	}
	return ""
}

// checkNewKeyPolicy validates a key policy document for key arn and, unless
// bypassed, runs the lockout safety check for the caller.
func (s *Service) checkNewKeyPolicy(ctx context.Context, c *Caller, doc, arn, keyAccount string, bypass bool) error {
	if len(doc) > maxPolicyBytes {
		return newError(ErrLimitExceeded, "Policy document exceeds the maximum size of %d bytes.", maxPolicyBytes)
	}
	p, err := policy.Parse([]byte(doc), policy.KeyPolicy)
	if err != nil {
		return newError(ErrMalformedPolicy, "%s", err.Error())
	}
	if bypass {
		return nil
	}
	ident, err := s.identity(ctx, c)
	if err != nil {
		return err
	}
	if err := policy.CheckLockout(p, arn, keyAccount, c.ARN, c.Account, ident); err != nil {
		return newError(ErrMalformedPolicy, "%s", err.Error())
	}
	return nil
}

// compiledPolicy returns the key policy compiled; records are compiled when
// they enter the cache (prepare), so this is a field read.
func (r *keyRecord) compiledPolicy() *policy.Policy { return r.compiled }

// prepare computes a record's derived fields before it is shared.
func (r *keyRecord) prepare() *keyRecord {
	r.arnCache = "arn:aws:kms:" + r.Region + ":" + r.Account + ":key/" + r.ID
	if p, err := policy.ParseStored([]byte(r.Policy), policy.KeyPolicy); err == nil {
		r.compiled = p
	}
	return r
}
