package kms

import (
	"context"
	"encoding/json"
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
	if e, ok := s.cache.identities.getAt(arn, s.requestTime(ctx)); ok {
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
	var pc *policy.Context
	rp := firstPolicy(ctx)
	if rp != nil {
		pc = &rp.pc
	} else {
		pc = new(policy.Context)
	}
	*pc = policy.Context{
		CallerAccount: c.Account, PrincipalARN: c.principalARN(), SourceIP: c.SourceIP,
		SecureTransport: c.SecureTransport, HasTransport: c.HasTransport, CurrentTime: s.requestTime(ctx),
		ViaService: c.viaService, // trusted: set only by ActAs (managed.go)
	}
	pc.Username, pc.UserID, pc.RoleSessionName = c.identityKeys()
	if r != nil {
		pc.KeySpec, pc.KeyUsage, pc.KeyOrigin = r.Spec, r.Usage, r.Origin
		pc.MultiRegion, pc.MultiRegionKeyType = "false", ""
		if r.PrimaryRegion != "" {
			pc.MultiRegion, pc.MultiRegionKeyType = "true", MultiRegionPrimary
			if r.isReplica() {
				pc.MultiRegionKeyType = MultiRegionReplica
			}
		}
		pc.ResourceTags = policyTags(r.Tags)
		if rp != nil {
			rp.s, rp.ctx, rp.account, rp.id = s, ctx, r.Account, r.ID
			pc.ResourceAliasesFunc = rp.aliases
		} else {
			id, account := r.ID, r.Account
			pc.ResourceAliasesFunc = func() ([]string, error) { return s.aliasesOf(ctx, account, id) }
		}
	}
	return pc
}

// requestPolicy is the policy context of a request's first
// requestContext, kept in its RequestInfo, and what that context's
// kms:ResourceAliases are looked up with: authorizing a request on one key
// allocates neither the context nor the closure.
type requestPolicy struct {
	pc          policy.Context
	used        bool
	s           *Service
	ctx         context.Context
	account, id string
	aliases     func() ([]string, error) // resourceAliases, bound once
}

func (rp *requestPolicy) resourceAliases() ([]string, error) {
	return rp.s.aliasesOf(rp.ctx, rp.account, rp.id)
}

// reset drops what the last request left, keeping the bound closure.
func (rp *requestPolicy) reset() {
	*rp = requestPolicy{aliases: rp.aliases}
}

// firstPolicy returns the request's requestPolicy the first time it is
// asked for in a request, nil after (a request that authorizes on two
// keys, as ReEncrypt, holds two contexts at once) or without a
// RequestInfo.
func firstPolicy(ctx context.Context) *requestPolicy {
	ri, ok := ctx.Value(RequestInfoKey).(*RequestInfo)
	if !ok || ri == nil {
		return nil
	}
	if ri.policy == nil {
		ri.policy = &requestPolicy{}
		ri.policy.aliases = ri.policy.resourceAliases
	}
	if ri.policy.used {
		return nil
	}
	ri.policy.used = true
	return ri.policy
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
		return s.scanAliasesOf(tx, account, id, "", func(name string) bool {
			out = append(out, name)
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
	var binder *policyBinder // only a policy naming IAM users or roles asks it (the default names the account)
	if r.compiledPolicy().NamesIAMPrincipals() {
		binder = &policyBinder{s: s, ctx: ctx, keyID: r.ID, c: c}
		req.Bound = binder.bound
	}
	// Authorize(…, grant=true) is Authorize(…, false) with NotApplicable
	// turned into Allow, so asking the grants afterwards decides the same.
	decision := policy.Authorize(r.compiledPolicy(), r.Account, ident, false, &req)
	if pc.InputErr != nil {
		return internal(pc.InputErr) // decided on missing facts: refuse
	}
	if binder != nil && binder.err != nil {
		return internal(binder.err) // the binding could not be read: refuse
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
	return s.bindNewKeyPolicy(ctx, arn, p)
}

// bindNewKeyPolicy refuses a key policy naming a principal that does not
// exist and, for a key not created yet (CreateKey), records the binding
// before the key exists, so that no key is ever without it. PutKeyPolicy
// records it in the transaction that replaces the policy (keypolicy.go).
func (s *Service) bindNewKeyPolicy(ctx context.Context, arn string, p *policy.Policy) error {
	keyID := arn[strings.LastIndexByte(arn, '/')+1:]
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.store.Update(ctx, func(tx keystore.Tx) error {
		cur, err := tx.Get(bucketKeys, keyID)
		if err != nil {
			return err
		}
		return s.bindKeyPolicyTx(tx, keyID, p, cur == nil)
	})
	if err != nil {
		return internal(err)
	}
	return nil
}

// compiledPolicy returns the key policy compiled; records are compiled when
// they enter the cache (prepare), so this is a field read.
func (r *keyRecord) compiledPolicy() *policy.Policy { return r.compiled }

// prepare computes a record's derived fields before it is shared.
func (r *keyRecord) prepare() *keyRecord {
	r.arnCache = "arn:aws:kms:" + r.Region + ":" + r.Account + ":key/" + r.ID
	if p := compileKeyPolicy(r.Policy); p != nil { // shared by every record with this text (cache.go)
		r.compiled = p
	}
	return r
}

// Principals by unique ID (issue 19.6). AWS binds a principal that a key
// policy or a grant names to the principal's unique ID when the policy or
// grant is put, and refuses one that names a principal that does not
// exist: "If your key policy includes a principal that has been deleted
// and recreated, the new principal is not the principal the key policy
// names" (AWS KMS developer guide, "Key policies in AWS KMS", section
// "Specifying principals", docs.aws.amazon.com/kms/latest/developerguide/
// key-policy-overview.html, which also says a policy naming a deleted
// principal shows its unique ID in place of its ARN; IAM's "Unique
// identifiers", docs.aws.amazon.com/IAM/latest/UserGuide/
// reference_identifiers.html#identifiers-unique-ids). Coffer records, for
// each IAM user or role ARN a key policy or grant names, the unique ID it
// stood for (a principal ARN → unique ID map: bucket key-principals for a
// key policy, the grant record for a grant), and a statement or grant
// naming that ARN applies to a caller only when the caller's unique ID is
// the recorded one.

// bindPrincipals maps each IAM user or role ARN of arns to its unique ID.
// An ARN of an account Coffer holds no principal of is recorded with an
// empty ID: no principal exists to bind, and one created later under that
// ARN is not the one named (stricter than matching it by name). missing is
// the first ARN of a Coffer account that names no principal. With assign,
// a user created before unique IDs gets one.
func (s *Service) bindPrincipals(tx keystore.Tx, arns []string, assign bool) (ids map[string]string, missing string, err error) {
	ids = map[string]string{}
	for _, arn := range arns {
		typ := iamResourceType(arn)
		if typ != "user" && typ != "role" {
			continue
		}
		if _, done := ids[arn]; done {
			continue
		}
		p, err := getPrincipalTx(tx, arn)
		if err != nil {
			return nil, "", err
		}
		if p == nil || typ == "role" && p.Type != "Role" || typ == "user" && p.Type != "IAMUser" {
			known, err := accountKnown(tx, arn)
			if err != nil {
				return nil, "", err
			}
			if known {
				return nil, arn, nil
			}
			ids[arn] = ""
			continue
		}
		if p.ID == "" && assign {
			if p.ID, err = s.newUserID(); err != nil {
				return nil, "", err
			}
			if err := putJSON(tx, bucketPrincipals, arn, p); err != nil {
				return nil, "", err
			}
			s.forgetPrincipal(arn)
		}
		ids[arn] = p.ID
	}
	return ids, "", nil
}

// accountKnown reports whether Coffer holds any principal of the account of
// arn, an IAM ARN: whether it is a Coffer account, whose users and roles a
// policy or grant may name only if they exist.
func accountKnown(tx keystore.Tx, arn string) (bool, error) {
	i := strings.Index(arn, ":iam::")
	if i < 0 {
		return false, nil
	}
	j := strings.IndexByte(arn[i+len(":iam::"):], ':')
	if j < 0 {
		return false, nil
	}
	prefix := arn[:i+len(":iam::")+j+1]
	found := false
	err := tx.Scan(bucketPrincipals, prefix, "", func(string, []byte) bool { found = true; return false })
	return found, err
}

// uniqueID is the caller's unique ID as a principal a policy or grant may
// name: a role session's role ID, or a user's ID — the one its access key
// was resolved with, otherwise (a caller made in process) its principal
// record's, given one if it has none yet. "" for a root, or a user Coffer
// holds no record of.
func (s *Service) uniqueID(ctx context.Context, c *Caller) (string, error) {
	switch {
	case c.RoleARN != "":
		return c.roleID, nil
	case c.userID != "":
		return c.userID, nil
	case !isUserARN(c.ARN):
		return "", nil
	}
	if e, ok := s.cache.identities.getAt(c.ARN, s.requestTime(ctx)); ok && e.id != "" {
		return e.id, nil
	}
	p, err := s.principal(ctx, c.ARN)
	if err != nil || p == nil {
		return "", err
	}
	if p.ID == "" {
		return s.ensureUserID(ctx, c.ARN)
	}
	return p.ID, nil
}

// boundTo reports whether arn, a principal a key policy or grant names and
// that matched c by name, is c by unique ID; uid is c's (uniqueID). ids
// nil: recorded before Coffer bound principals (names match, as they did).
// Only IAM user and role ARNs are bound; an ARN the record lacks is no one.
func boundTo(ids map[string]string, c *Caller, uid, arn string) bool {
	if ids == nil {
		return true
	}
	if t := iamResourceType(arn); t != "user" && t != "role" {
		return true
	}
	id, ok := ids[arn]
	if !ok {
		return false
	}
	if c.RoleARN != "" && arn != c.RoleARN || c.RoleARN == "" && arn != c.ARN {
		return false
	}
	return id == uid
}

// invalidPrincipals is AWS's answer to a key policy naming a principal that
// does not exist (MalformedPolicyDocumentException).
func invalidPrincipals(arn string) error {
	return newError(ErrMalformedPolicy, "Policy contains a statement with one or more invalid principals. (%s does not exist.)", truncate(arn))
}

// bindKeyPolicyTx binds the principals policy p names for key keyID and,
// with put, records the binding (key-principals) for authorization.
func (s *Service) bindKeyPolicyTx(tx keystore.Tx, keyID string, p *policy.Policy, put bool) error {
	ids, missing, err := s.bindPrincipals(tx, p.NamedPrincipals(), put)
	if err != nil {
		return err
	}
	if missing != "" {
		return invalidPrincipals(missing)
	}
	if !put {
		return nil
	}
	return putJSON(tx, bucketKeyPrincipals, keyID, ids)
}

// keyPolicyIDs returns the binding of key keyID's policy; nil for a key
// whose policy was put before bindings existed.
func (s *Service) keyPolicyIDs(ctx context.Context, keyID string) (map[string]string, error) {
	if ids, ok := s.cache.keyPrincipals.getAt(keyID, s.requestTime(ctx)); ok {
		return nilIfEmpty(ids), nil
	}
	gen := s.cache.keyPrincipals.generation()
	var ids map[string]string
	err := s.store.View(ctx, func(tx keystore.Tx) error {
		ids = nil // View may run fn again
		raw, err := tx.Get(bucketKeyPrincipals, keyID)
		if err != nil || raw == nil {
			return err
		}
		return json.Unmarshal(raw, &ids)
	})
	if err != nil {
		return nil, err
	}
	if ids == nil {
		ids = map[string]string{} // "no bindings" is cached too
	}
	return nilIfEmpty(s.cache.keyPrincipals.fill(keyID, ids, gen)), nil
}

// nilIfEmpty is a key's bindings as keyPolicyIDs answers them: nil for none.
func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// policyBinder answers policy.Request.Bound for key r's policy and caller
// c, reading the key's binding and the caller's unique ID once, on the
// first question: most decisions never ask (roots, accounts, "*").
type policyBinder struct {
	s      *Service
	ctx    context.Context
	keyID  string
	c      *Caller
	loaded bool
	ids    map[string]string
	uid    string
	err    error
}

func (b *policyBinder) bound(arn string) bool {
	if !b.loaded {
		b.loaded = true
		if b.ids, b.err = b.s.keyPolicyIDs(b.ctx, b.keyID); b.err == nil && b.ids != nil {
			b.uid, b.err = b.s.uniqueID(b.ctx, b.c)
		}
	}
	return b.err == nil && boundTo(b.ids, b.c, b.uid, arn)
}
