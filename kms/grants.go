package kms

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/policy"
)

// Grant limits, as AWS's.
const (
	maxGrantsPerKey          = 50000
	maxGrantsPerGranteeOnKey = 500
)

var (
	grantOperations = []string{"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom",
		"ReEncryptTo", "Sign", "Verify", "GetPublicKey", "CreateGrant", "RetireGrant", "DescribeKey", "GenerateDataKeyPair",
		"GenerateDataKeyPairWithoutPlaintext", "GenerateMac", "VerifyMac", "DeriveSharedSecret"}
	// symmetricGrantOperations are those a symmetric encryption key supports.
	symmetricGrantOperations = []string{"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
		"ReEncryptFrom", "ReEncryptTo", "CreateGrant", "RetireGrant", "DescribeKey", "GenerateDataKeyPair",
		"GenerateDataKeyPairWithoutPlaintext"}
	principalPattern = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
	grantNamePattern = regexp.MustCompile(`^[a-zA-Z0-9:/_-]+$`)
	grantIDPattern   = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

// GrantConstraints limit a grant to requests with certain encryption contexts.
type GrantConstraints struct {
	EncryptionContextSubset map[string]string `json:"EncryptionContextSubset,omitempty"`
	EncryptionContextEquals map[string]string `json:"EncryptionContextEquals,omitempty"`
}

// allows reports whether a request's encryption context satisfies c.
func (c *GrantConstraints) allows(ec map[string]string) bool {
	if c == nil {
		return true
	}
	if c.EncryptionContextEquals != nil && !maps.Equal(c.EncryptionContextEquals, ec) {
		return false
	}
	for k, v := range c.EncryptionContextSubset {
		if got, ok := ec[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// grantRecord is a grant as stored under "<key id>/<grant id>".
type grantRecord struct {
	KeyID             string            `json:"keyId"`
	GrantID           string            `json:"grantId"`
	Name              string            `json:"name,omitempty"`
	Created           time.Time         `json:"created"`
	GranteePrincipal  string            `json:"grantee"`
	RetiringPrincipal string            `json:"retiring,omitempty"`
	IssuingAccount    string            `json:"issuingAccount"`
	Operations        []string          `json:"operations"`
	Constraints       *GrantConstraints `json:"constraints,omitempty"`
	// PrincipalIDs binds the grantee and retiring principals, when IAM
	// users or roles, to their unique IDs at creation (issue 19.6; see
	// bindPrincipals). nil for grants created before bindings existed.
	PrincipalIDs map[string]string `json:"principalIds,omitempty"`
}

// names reports whether the grant's principal arn (its grantee or retiring
// principal) is the caller: by ARN, or for a role session its role, and by
// the unique ID the grant bound; uid is the caller's (uniqueID).
func (g *grantRecord) names(c *Caller, uid, arn string) bool {
	return c.is(arn) && boundTo(g.PrincipalIDs, c, uid, arn)
}

// sameRequest reports whether g was created by a CreateGrant with these
// parameters (for Name idempotency).
func (g *grantRecord) sameRequest(in *CreateGrantInput) bool {
	return g.GranteePrincipal == in.GranteePrincipal && g.RetiringPrincipal == in.RetiringPrincipal &&
		slices.Equal(sortedCopy(g.Operations), sortedCopy(in.Operations)) &&
		constraintsEqual(g.Constraints, in.Constraints)
}

func sortedCopy(s []string) []string { c := slices.Clone(s); slices.Sort(c); return c }

func constraintsEqual(a, b *GrantConstraints) bool {
	var za, zb GrantConstraints
	if a != nil {
		za = *a
	}
	if b != nil {
		zb = *b
	}
	return maps.Equal(za.EncryptionContextEquals, zb.EncryptionContextEquals) && maps.Equal(za.EncryptionContextSubset, zb.EncryptionContextSubset)
}

// Grant tokens carry the key and grant they name: "cgt1." and
// base64url(key ID bytes | grant ID bytes | random).
const grantTokenPrefix = "cgt1."

// grantTokenPrefixMRK begins the grant tokens of multi-Region keys, whose
// key bytes are those of an mrk- ID rather than a UUID.
const grantTokenPrefixMRK = "cgt2."

func (s *Service) grantToken(keyID, grantID string) (string, error) {
	kid, _ := parseKeyID(keyID)
	gid, _ := hex.DecodeString(grantID)
	nonce, err := s.randomBytes(16)
	if err != nil {
		return "", err
	}
	raw := append(append(kid[:], gid...), nonce...)
	prefix := grantTokenPrefix
	if isMRK(keyID) {
		prefix = grantTokenPrefixMRK
	}
	return prefix + base64.RawURLEncoding.EncodeToString(raw), nil
}

func parseGrantToken(tok string) (keyID, grantID string, err error) {
	bad := newError(ErrInvalidGrantToken, "The grant token is not valid.")
	rest, ok := strings.CutPrefix(tok, grantTokenPrefix)
	mrk := false
	if !ok {
		if rest, ok = strings.CutPrefix(tok, grantTokenPrefixMRK); !ok {
			return "", "", bad
		}
		mrk = true
	}
	raw, derr := base64.RawURLEncoding.DecodeString(rest)
	if derr != nil || len(raw) != 16+32+16 {
		return "", "", bad
	}
	var kid [16]byte
	copy(kid[:], raw[:16])
	if mrk {
		return mrkKeyID(kid), hex.EncodeToString(raw[16:48]), nil
	}
	return formatKeyID(kid), hex.EncodeToString(raw[16:48]), nil
}

// checkGrantTokens validates the GrantTokens of a request: each must be a
// well-formed token of this service.
func checkGrantTokens(tokens []string) error {
	for _, t := range tokens {
		if _, _, err := parseGrantToken(t); err != nil {
			return err
		}
	}
	return nil
}

func grantStoreKey(keyID, grantID string) string { return keyID + "/" + grantID }

func putGrantTx(tx keystore.Tx, g *grantRecord) error {
	raw, err := json.Marshal(g)
	if err != nil {
		return err
	}
	return tx.Put(bucketGrants, grantStoreKey(g.KeyID, g.GrantID), raw)
}

// Grant indexes (issue 19.9). CreateGrant's limits and its idempotency
// check, and ListRetirableGrants, read indexes instead of scanning every
// grant of the key, or of the store: each grant has an entry in
// grants-by-grantee ("<key id>/<grantee>|<grant id>") and, when it has a
// retiring principal, in grants-by-retiring ("<retiring principal>|<key
// id>/<grant id>"), and each key a count of its grants in grant-counts
// ("<key id>", decimal). '|' is in no principal (principalPattern), so a
// prefix ending in it names one principal exactly. All are Region-scoped
// like the grants, and written and deleted in the transactions that write
// and delete the grants. A store from before the indexes has none: the
// first CreateGrant builds them for the Region, in its transaction, and
// sets the meta entry grantIndexesMeta; until then ListRetirableGrants
// scans the grants as it did.
const (
	bucketGrantsByGrantee  = "grants-by-grantee"
	bucketGrantsByRetiring = "grants-by-retiring"
	bucketGrantCounts      = "grant-counts"
)

// grantIndexesMeta is the meta entry saying the Region's grant indexes
// are built.
func (s *Service) grantIndexesMeta() string { return "grant-indexes/" + s.region }

func granteeIndexKey(keyID, grantee, grantID string) string {
	return keyID + "/" + grantee + "|" + grantID
}
func retiringIndexKey(retiring, keyID, grantID string) string {
	return retiring + "|" + grantStoreKey(keyID, grantID)
}

// indexGrantTx adds g's index entries; unindexGrantTx removes them.
func indexGrantTx(tx keystore.Tx, g *grantRecord) error {
	if err := tx.Put(bucketGrantsByGrantee, granteeIndexKey(g.KeyID, g.GranteePrincipal, g.GrantID), []byte{}); err != nil {
		return err
	}
	if g.RetiringPrincipal == "" {
		return nil
	}
	return tx.Put(bucketGrantsByRetiring, retiringIndexKey(g.RetiringPrincipal, g.KeyID, g.GrantID), []byte{})
}

func unindexGrantTx(tx keystore.Tx, g *grantRecord) error {
	if err := tx.Delete(bucketGrantsByGrantee, granteeIndexKey(g.KeyID, g.GranteePrincipal, g.GrantID)); err != nil {
		return err
	}
	if g.RetiringPrincipal == "" {
		return nil
	}
	return tx.Delete(bucketGrantsByRetiring, retiringIndexKey(g.RetiringPrincipal, g.KeyID, g.GrantID))
}

// grantCountTx is the number of grants of the key.
func grantCountTx(tx keystore.Tx, keyID string) (int, error) {
	raw, err := tx.Get(bucketGrantCounts, keyID)
	if err != nil || raw == nil {
		return 0, err
	}
	n, err := strconv.Atoi(string(raw))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("kms: the grant count of key %s is %q", keyID, raw)
	}
	return n, nil
}

func setGrantCountTx(tx keystore.Tx, keyID string, n int) error {
	if n == 0 {
		return tx.Delete(bucketGrantCounts, keyID)
	}
	return tx.Put(bucketGrantCounts, keyID, []byte(strconv.Itoa(n)))
}

// grantIndexesBuilt reports whether the Region's grant indexes exist.
func (s *Service) grantIndexesBuilt(tx keystore.Tx) (bool, error) {
	v, err := tx.Get(bucketMeta, s.grantIndexesMeta())
	return v != nil, err
}

// ensureGrantIndexesTx builds the Region's grant indexes from its grants,
// once (the one full scan left, in the first CreateGrant of a store that
// predates them).
func (s *Service) ensureGrantIndexesTx(tx keystore.Tx) error {
	if built, err := s.grantIndexesBuilt(tx); err != nil || built {
		return err
	}
	var gs []*grantRecord
	if err := scanGrants(tx, "", "", func(g *grantRecord) bool { gs = append(gs, g); return true }); err != nil {
		return err
	}
	counts := map[string]int{}
	for _, g := range gs {
		if err := indexGrantTx(tx, g); err != nil {
			return err
		}
		counts[g.KeyID]++
	}
	for id, n := range counts {
		if err := setGrantCountTx(tx, id, n); err != nil {
			return err
		}
	}
	return tx.Put(bucketMeta, s.grantIndexesMeta(), []byte("1"))
}

// deleteGrantTx deletes grant g with its index entries and count, when
// the indexes exist.
func (s *Service) deleteGrantTx(tx keystore.Tx, g *grantRecord) error {
	if err := tx.Delete(bucketGrants, grantStoreKey(g.KeyID, g.GrantID)); err != nil {
		return err
	}
	built, err := s.grantIndexesBuilt(tx)
	if err != nil || !built {
		return err
	}
	if err := unindexGrantTx(tx, g); err != nil {
		return err
	}
	n, err := grantCountTx(tx, g.KeyID)
	if err != nil {
		return err
	}
	return setGrantCountTx(tx, g.KeyID, max(n-1, 0))
}

// deleteKeyGrantsTx deletes every grant of a key (the key is being
// deleted), with their index entries and count.
func (s *Service) deleteKeyGrantsTx(tx keystore.Tx, keyID string) error {
	var gs []*grantRecord
	if err := scanGrants(tx, keyID+"/", "", func(g *grantRecord) bool { gs = append(gs, g); return true }); err != nil {
		return err
	}
	for _, g := range gs {
		if err := s.deleteGrantTx(tx, g); err != nil {
			return err
		}
	}
	return nil
}

func scanGrants(tx keystore.Tx, prefix, after string, fn func(*grantRecord) bool) error {
	var derr error
	err := tx.Scan(bucketGrants, prefix, after, func(_ string, raw []byte) bool {
		g := new(grantRecord)
		if derr = json.Unmarshal(raw, g); derr != nil {
			return false
		}
		return fn(g)
	})
	if err != nil {
		return err
	}
	return derr
}

// CreateGrantInput is the CreateGrant request.
type CreateGrantInput struct {
	KeyId             string            `json:"KeyId"`
	GranteePrincipal  string            `json:"GranteePrincipal"`
	RetiringPrincipal string            `json:"RetiringPrincipal"`
	Operations        []string          `json:"Operations"`
	Constraints       *GrantConstraints `json:"Constraints"`
	GrantTokens       []string          `json:"GrantTokens"`
	Name              string            `json:"Name"`
	DryRun            bool              `json:"DryRun"`
}

// CreateGrantOutput is the CreateGrant response.
type CreateGrantOutput struct {
	GrantToken string `json:"GrantToken"`
	GrantId    string `json:"GrantId"`
}

// CreateGrant lets a principal use a key for some operations, optionally
// under encryption-context constraints. With a Name, retrying the same
// request returns the original grant.
func (s *Service) CreateGrant(ctx context.Context, c *Caller, in *CreateGrantInput) (*CreateGrantOutput, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	if v.required("granteePrincipal", in.GranteePrincipal != "") {
		v.length("granteePrincipal", in.GranteePrincipal, 1, 256)
		v.pattern("granteePrincipal", in.GranteePrincipal, principalPattern)
	}
	if in.RetiringPrincipal != "" {
		v.length("retiringPrincipal", in.RetiringPrincipal, 1, 256)
		v.pattern("retiringPrincipal", in.RetiringPrincipal, principalPattern)
	}
	if v.required("operations", in.Operations != nil) {
		for _, op := range in.Operations {
			v.enum("operations.member", op, grantOperations)
		}
	}
	if in.Name != "" {
		v.length("name", in.Name, 1, 256)
		v.pattern("name", in.Name, grantNamePattern)
	}
	v.grantTokens(in.GrantTokens)
	if in.Constraints != nil {
		v.encryptionContext("constraints.encryptionContextSubset", in.Constraints.EncryptionContextSubset)
		v.encryptionContext("constraints.encryptionContextEquals", in.Constraints.EncryptionContextEquals)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if len(in.Operations) == 0 {
		return nil, newError(ErrValidation, "A grant must allow at least one operation.")
	}
	if in.Constraints != nil && in.Constraints.EncryptionContextSubset != nil && in.Constraints.EncryptionContextEquals != nil {
		return nil, newError(ErrValidation, "Grant constraints may include EncryptionContextEquals or EncryptionContextSubset, not both.")
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	r, err := s.keyForWith(ctx, c, &opCreateGrant.Keys[0], in.KeyId, func(r *keyRecord) *policy.Context {
		pc := s.requestContext(ctx, c, r)
		pc.GrantOperations, pc.GranteePrincipal, pc.IsGrantRequest = in.Operations, in.GranteePrincipal, true
		pc.RetiringPrincipal = in.RetiringPrincipal
		if in.Constraints != nil {
			// kms:GrantConstraintType names the constraint the request
			// holds (AWS KMS condition keys: kms:GrantConstraintType).
			if ec := in.Constraints.EncryptionContextEquals; ec != nil {
				pc.EncryptionContext, pc.HasEncryptionContext = ec, true
				pc.GrantConstraintType = "EncryptionContextEquals"
			} else if ec := in.Constraints.EncryptionContextSubset; ec != nil {
				pc.EncryptionContext, pc.HasEncryptionContext = ec, true
				pc.GrantConstraintType = "EncryptionContextSubset"
			}
		}
		return pc
	}, in.derivableFrom)
	if err != nil {
		return nil, err
	}
	if err := opCreateGrant.Keys[0].checkState(r); err != nil {
		return nil, err
	}
	for _, op := range in.Operations {
		if !slices.Contains(symmetricGrantOperations, op) {
			return nil, newError(ErrValidation, "Grant operation %s is not valid for %s, a symmetric encryption key.", op, r.arn())
		}
	}
	// The principals it names must exist (and are bound in the
	// transaction below). AWS answers a grantee or retiring principal
	// that does not resolve with InvalidArnException (seen from AWS by
	// clients creating a grant for a role IAM has not yet propagated:
	// hashicorp/terraform-provider-aws pull request 3038); the API
	// reference documents no other error for it.
	grantPrincipals := []string{in.GranteePrincipal, in.RetiringPrincipal}
	err = s.store.View(ctx, func(tx keystore.Tx) error {
		_, missing, err := s.bindPrincipals(tx, grantPrincipals, false)
		if err == nil && missing != "" {
			err = invalidGrantPrincipal(missing)
		}
		return err
	})
	if err != nil {
		return nil, internal(err)
	}
	if in.DryRun {
		return nil, dryRun
	}
	idRaw, err := s.randomBytes(32)
	if err != nil {
		return nil, err
	}
	g := &grantRecord{
		KeyID: r.ID, GrantID: hex.EncodeToString(idRaw), Name: in.Name, Created: s.now().UTC(),
		GranteePrincipal: in.GranteePrincipal, RetiringPrincipal: in.RetiringPrincipal,
		IssuingAccount: "arn:aws:iam::" + c.Account + ":root", Operations: slices.Clone(in.Operations), Constraints: in.Constraints,
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err = s.store.Update(ctx, func(tx keystore.Tx) error {
		ids, missing, err := s.bindPrincipals(tx, grantPrincipals, true)
		if err != nil {
			return err
		}
		if missing != "" {
			return invalidGrantPrincipal(missing)
		}
		g.PrincipalIDs = ids
		if err := s.ensureGrantIndexesTx(tx); err != nil {
			return err
		}
		// The grantee's grants on the key: at most
		// maxGrantsPerGranteeOnKey, read from the index, for the limit
		// and for a retried request (same Name and parameters).
		perGrantee := 0
		var existing *grantRecord
		var ierr error
		err = tx.Scan(bucketGrantsByGrantee, r.ID+"/"+g.GranteePrincipal+"|", "", func(name string, _ []byte) bool {
			perGrantee++
			if in.Name == "" {
				return perGrantee < maxGrantsPerGranteeOnKey
			}
			var o *grantRecord
			if o, ierr = getGrantTx(tx, r.ID, name[strings.LastIndexByte(name, '|')+1:]); ierr != nil {
				return false
			}
			if o != nil && o.Name == in.Name && o.sameRequest(in) && maps.Equal(o.PrincipalIDs, ids) {
				existing = o
				return false
			}
			return true
		})
		if err == nil {
			err = ierr
		}
		if err != nil {
			return err
		}
		if existing != nil {
			g = existing
			return nil
		}
		total, err := grantCountTx(tx, r.ID)
		if err != nil {
			return err
		}
		if total >= maxGrantsPerKey || perGrantee >= maxGrantsPerGranteeOnKey {
			return newError(ErrLimitExceeded, "The grant limit for %s has been reached.", r.arn())
		}
		if err := putGrantTx(tx, g); err != nil {
			return err
		}
		if err := indexGrantTx(tx, g); err != nil {
			return err
		}
		return setGrantCountTx(tx, r.ID, total+1)
	})
	if err != nil {
		return nil, internal(err)
	}
	s.cache.invalidate(cacheGrants, r.ID)
	tok, err := s.grantToken(r.ID, g.GrantID)
	if err != nil {
		return nil, err
	}
	return &CreateGrantOutput{GrantToken: tok, GrantId: g.GrantID}, nil
}

// derivableFrom reports whether parent, a grant of the key to the caller,
// lets the caller create the grant in asks for. It is consulted only when
// no policy allows the caller CreateGrant: AWS's developer guide, "Creating
// grants", section "Granting CreateGrant permission"
// (docs.aws.amazon.com/kms/latest/developerguide/create-grant-overview.html#grant-creategrant):
// a principal that gets CreateGrant from a grant rather than from a policy
// can only create grants that allow some or all of the parent grant's
// operations, with grant constraints at least as strict as the parent's;
// those limits do not apply to a permission from a policy. Any one of the
// caller's grants that allows the child is enough.
func (in *CreateGrantInput) derivableFrom(parent *grantRecord) bool {
	if !slices.Contains(parent.Operations, "CreateGrant") {
		return false
	}
	for _, op := range in.Operations {
		if !slices.Contains(parent.Operations, op) {
			return false
		}
	}
	return in.Constraints.atLeastAsStrictAs(parent.Constraints)
}

// atLeastAsStrictAs reports whether a child grant's constraints c allow
// no request that the parent's constraints p refuse, as the same section
// has it: a child may add pairs to the parent's EncryptionContextSubset
// but not remove them, and may turn it into an EncryptionContextEquals
// (holding the parent's pairs), not the reverse; so a parent with
// EncryptionContextEquals allows only children with the same
// EncryptionContextEquals (one with more or other pairs would allow a
// context the parent refuses). Keys and values compare exactly: AWS calls
// grant constraint keys case-insensitive, and an exact comparison is the
// stricter reading for a child.
func (c *GrantConstraints) atLeastAsStrictAs(p *GrantConstraints) bool {
	if p == nil {
		return true
	}
	var child GrantConstraints
	if c != nil {
		child = *c
	}
	if p.EncryptionContextEquals != nil {
		return child.EncryptionContextEquals != nil && maps.Equal(child.EncryptionContextEquals, p.EncryptionContextEquals)
	}
	pairs := child.EncryptionContextEquals
	if pairs == nil {
		pairs = child.EncryptionContextSubset
	}
	for k, v := range p.EncryptionContextSubset {
		if got, ok := pairs[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// GrantListEntry is one grant in ListGrants and ListRetirableGrants.
type GrantListEntry struct {
	KeyId             string            `json:"KeyId"`
	GrantId           string            `json:"GrantId"`
	Name              string            `json:"Name,omitempty"`
	CreationDate      *Timestamp        `json:"CreationDate"`
	GranteePrincipal  string            `json:"GranteePrincipal"`
	RetiringPrincipal string            `json:"RetiringPrincipal,omitempty"`
	IssuingAccount    string            `json:"IssuingAccount"`
	Operations        []string          `json:"Operations"`
	Constraints       *GrantConstraints `json:"Constraints,omitempty"`
}

func (s *Service) grantEntry(g *grantRecord, account string) GrantListEntry {
	return GrantListEntry{
		KeyId: s.keyARN(account, g.KeyID), GrantId: g.GrantID, Name: g.Name, CreationDate: ts(g.Created),
		GranteePrincipal: g.GranteePrincipal, RetiringPrincipal: g.RetiringPrincipal, IssuingAccount: g.IssuingAccount,
		Operations: g.Operations, Constraints: g.Constraints,
	}
}

// ListGrantsInput is the ListGrants request.
type ListGrantsInput struct {
	KeyId            string `json:"KeyId"`
	GrantId          string `json:"GrantId"`
	GranteePrincipal string `json:"GranteePrincipal"`
	ListInput
}

// ListGrantsOutput is the ListGrants and ListRetirableGrants response.
type ListGrantsOutput struct {
	Grants     []GrantListEntry `json:"Grants"`
	NextMarker string           `json:"NextMarker,omitempty"`
	Truncated  bool             `json:"Truncated"`
}

// ListGrants pages through a key's grants.
func (s *Service) ListGrants(ctx context.Context, c *Caller, in *ListGrantsInput) (*ListGrantsOutput, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	if in.GrantId != "" {
		v.length("grantId", in.GrantId, 1, 128)
	}
	if in.GranteePrincipal != "" {
		v.length("granteePrincipal", in.GranteePrincipal, 1, 256)
	}
	v.limit(in.Limit)
	v.marker(in.Marker)
	if err := v.err(); err != nil {
		return nil, err
	}
	if in.GrantId != "" && !grantIDPattern.MatchString(in.GrantId) {
		return nil, newError(ErrInvalidGrantId, "Grant ID %s is not valid.", truncate(in.GrantId))
	}
	after, err := decodeMarker("grants", in.Marker)
	if err != nil {
		return nil, err
	}
	r, err := s.keyFor(ctx, c, &opListGrants.Keys[0], in.KeyId, nil)
	if err != nil {
		return nil, err
	}
	if after != "" {
		after = grantStoreKey(r.ID, after)
	}
	return s.listGrants(ctx, r.ID+"/", after, pageLimit(in.Limit, 50, 100), r.Account, func(g *grantRecord) bool {
		return (in.GrantId == "" || g.GrantID == in.GrantId) && (in.GranteePrincipal == "" || g.GranteePrincipal == in.GranteePrincipal)
	})
}

func (s *Service) listGrants(ctx context.Context, prefix, after string, limit int, account string, keep func(*grantRecord) bool) (*ListGrantsOutput, error) {
	out := &ListGrantsOutput{Grants: []GrantListEntry{}}
	var last string
	err := s.store.View(ctx, func(tx keystore.Tx) error {
		return scanGrants(tx, prefix, after, func(g *grantRecord) bool {
			if !keep(g) {
				return true
			}
			if len(out.Grants) == limit {
				out.Truncated = true
				return false
			}
			acct := account
			if acct == "" {
				if k, _ := getKeyTx(tx, g.KeyID); k != nil {
					acct = k.Account
				}
			}
			out.Grants = append(out.Grants, s.grantEntry(g, acct))
			last = g.GrantID
			if prefix == "" {
				last = grantStoreKey(g.KeyID, g.GrantID)
			}
			return true
		})
	})
	if err != nil {
		return nil, internal(err)
	}
	if out.Truncated {
		op := "grants"
		if prefix == "" {
			op = "retirable"
		}
		out.NextMarker = encodeMarker(op, last)
	}
	return out, nil
}

// ListRetirableGrantsInput is the ListRetirableGrants request.
type ListRetirableGrantsInput struct {
	RetiringPrincipal string `json:"RetiringPrincipal"`
	ListInput
}

// ListRetirableGrants pages through the grants, on any key, that a
// principal may retire.
func (s *Service) ListRetirableGrants(ctx context.Context, c *Caller, in *ListRetirableGrantsInput) (*ListGrantsOutput, error) {
	var v validator
	if v.required("retiringPrincipal", in.RetiringPrincipal != "") {
		v.length("retiringPrincipal", in.RetiringPrincipal, 1, 256)
		v.pattern("retiringPrincipal", in.RetiringPrincipal, principalPattern)
	}
	v.limit(in.Limit)
	v.marker(in.Marker)
	if err := v.err(); err != nil {
		return nil, err
	}
	after, err := decodeMarker("retirable", in.Marker)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeIdentity(ctx, c, opListRetirableGrants.Action, "*"); err != nil {
		return nil, err
	}
	limit := pageLimit(in.Limit, 50, 100)
	out := &ListGrantsOutput{Grants: []GrantListEntry{}}
	var last string
	indexed := false
	err = s.store.View(ctx, func(tx keystore.Tx) error {
		out.Grants, out.Truncated, last = out.Grants[:0], false, "" // View may run fn again
		if built, err := s.grantIndexesBuilt(tx); err != nil || !built {
			return err
		}
		indexed = true
		var ierr error
		prefix := in.RetiringPrincipal + "|"
		err := tx.Scan(bucketGrantsByRetiring, prefix, after, func(name string, _ []byte) bool {
			keyID, grantID, _ := strings.Cut(name[len(prefix):], "/")
			var g *grantRecord
			if g, ierr = getGrantTx(tx, keyID, grantID); ierr != nil || g == nil {
				return ierr == nil
			}
			if len(out.Grants) == limit {
				out.Truncated = true
				return false
			}
			var k *keyRecord
			if k, ierr = getKeyTx(tx, g.KeyID); ierr != nil {
				return false
			}
			acct := ""
			if k != nil {
				acct = k.Account
			}
			out.Grants = append(out.Grants, s.grantEntry(g, acct))
			last = name
			return true
		})
		if err == nil {
			err = ierr
		}
		return err
	})
	if err != nil {
		return nil, internal(err)
	}
	if !indexed { // a store whose indexes are not built yet
		return s.listGrants(ctx, "", after, limit, "", func(g *grantRecord) bool {
			return g.RetiringPrincipal == in.RetiringPrincipal
		})
	}
	if out.Truncated {
		out.NextMarker = encodeMarker("retirable", last)
	}
	return out, nil
}

// RetireGrantInput is the RetireGrant request.
type RetireGrantInput struct {
	GrantToken string `json:"GrantToken"`
	KeyId      string `json:"KeyId"`
	GrantId    string `json:"GrantId"`
	DryRun     bool   `json:"DryRun"`
}

// RetireGrant deletes a grant named by its token, or by key and grant ID.
// Who may is in retireAllowed.
func (s *Service) RetireGrant(ctx context.Context, c *Caller, in *RetireGrantInput) (*Empty, error) {
	var v validator
	if in.GrantToken != "" {
		v.length("grantToken", in.GrantToken, 1, 8192)
	}
	if in.KeyId != "" {
		v.length("keyId", in.KeyId, 1, 2048)
	}
	if in.GrantId != "" {
		v.length("grantId", in.GrantId, 1, 128)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	// The caller's identity first: it refuses the sessions of a deleted
	// role, and its policies may deny kms:RetireGrant.
	ident, err := s.identity(ctx, c)
	if err != nil {
		return nil, err
	}
	var (
		r       *keyRecord
		grantID string
	)
	switch {
	case in.GrantToken != "":
		var keyID string
		if keyID, grantID, err = parseGrantToken(in.GrantToken); err != nil {
			return nil, err
		}
		if in.GrantId != "" && in.GrantId != grantID {
			return nil, newError(ErrInvalidGrantId, "The grant ID does not match the grant token.")
		}
		if r, err = s.loadKey(ctx, keyID); err != nil {
			return nil, internal(err)
		}
	case in.KeyId != "" && in.GrantId != "":
		if r, err = s.resolveKeyIDOrARN(ctx, c, in.KeyId); err != nil {
			return nil, err
		}
		grantID = in.GrantId
	default:
		return nil, newError(ErrValidation, "Specify either GrantToken, or KeyId and GrantId.")
	}
	if !grantIDPattern.MatchString(grantID) {
		return nil, newError(ErrInvalidGrantId, "Grant ID %s is not valid.", truncate(grantID))
	}
	notFound := newError(ErrNotFound, "Grant ID %s not found", grantID)
	if r == nil {
		return nil, notFound // a token of a key that is gone
	}
	// Grants never change, so the one read here is the one deleted, if it
	// is still there.
	g, err := s.findGrant(ctx, r.ID, grantID)
	if err != nil {
		return nil, internal(err)
	}
	if g == nil {
		return nil, notFound
	}
	if err := s.retireAllowed(ctx, c, ident, r, g); err != nil {
		return nil, err
	}
	return &Empty{}, s.deleteGrant(ctx, r.ID, grantID, in.DryRun, func(*grantRecord) error { return nil })
}

// retireAllowed decides whether c may retire g, a grant of key r, from
// AWS's developer guide, "Retiring and revoking grants"
// (docs.aws.amazon.com/kms/latest/developerguide/grant-delete.html) and
// the RetireGrant API reference:
//
//   - the grant's retiring principal may, and its grantee principal when it
//     is also the retiring principal or the grant includes RetireGrant;
//   - as a backup, the account in which the grant was created (its
//     IssuingAccount): its root, and the IAM principals of that account to
//     which an identity policy delegates kms:RetireGrant;
//   - when the retiring principal is an account, the IAM principals of that
//     account to which an identity policy delegates kms:RetireGrant;
//   - kms:RetireGrant "is not effective in a key policy": a key policy
//     Allow gives no one the permission;
//   - a Deny of kms:RetireGrant in the caller's identity policies refuses
//     everyone above, the principals named in the grant included. AWS names
//     IAM policies for the Deny; Coffer also honours a Deny in the key
//     policy, the stricter reading.
func (s *Service) retireAllowed(ctx context.Context, c *Caller, ident []*policy.Policy, r *keyRecord, g *grantRecord) error {
	const action = "kms:RetireGrant"
	if r.compiledPolicy() == nil {
		return internal(fmt.Errorf("kms: the key policy of %s does not compile", r.arn()))
	}
	binder := &policyBinder{s: s, ctx: ctx, keyID: r.ID, c: c}
	req := policy.Request{PrincipalARN: c.ARN, PrincipalAccount: c.Account, Action: action, Resource: r.arn(),
		Context: s.requestContext(ctx, c, r), Bound: binder.bound}
	id := policy.AuthorizeIdentity(ident, &req) // an account root is allowed unless denied
	keyDeny := r.compiledPolicy().Evaluate(&req) == policy.Deny
	if req.Context.InputErr != nil {
		return internal(req.Context.InputErr)
	}
	if binder.err != nil {
		return internal(binder.err)
	}
	if id == policy.Deny || keyDeny {
		return accessDenied(c, action, r.arn(), "with an explicit deny in a resource-based or identity-based policy")
	}
	uid, err := s.uniqueID(ctx, c)
	if err != nil {
		return internal(err)
	}
	named := g.names(c, uid, g.RetiringPrincipal) || g.names(c, uid, g.GranteePrincipal) && slices.Contains(g.Operations, "RetireGrant")
	accountRoot := "arn:aws:iam::" + c.Account + ":root"
	delegated := id == policy.Allow && (g.IssuingAccount == accountRoot || g.RetiringPrincipal == accountRoot)
	if named || delegated {
		return nil
	}
	return accessDenied(c, action, r.arn(), "because the grant does not name the caller and no identity-based policy allows the "+action+" action")
}

// findGrant reads one grant (nil when there is none).
func (s *Service) findGrant(ctx context.Context, keyID, grantID string) (*grantRecord, error) {
	var g *grantRecord
	err := s.store.View(ctx, func(tx keystore.Tx) (err error) {
		g, err = getGrantTx(tx, keyID, grantID)
		return err
	})
	return g, err
}

// getGrantTx reads one grant (nil when there is none).
func getGrantTx(tx keystore.Tx, keyID, grantID string) (*grantRecord, error) {
	raw, err := tx.Get(bucketGrants, grantStoreKey(keyID, grantID))
	if err != nil || raw == nil {
		return nil, err
	}
	g := new(grantRecord)
	return g, json.Unmarshal(raw, g)
}

// RevokeGrantInput is the RevokeGrant request.
type RevokeGrantInput struct {
	KeyId   string `json:"KeyId"`
	GrantId string `json:"GrantId"`
	DryRun  bool   `json:"DryRun"`
}

// RevokeGrant deletes a grant of a key; its permissions end at once.
func (s *Service) RevokeGrant(ctx context.Context, c *Caller, in *RevokeGrantInput) (*Empty, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	if v.required("grantId", in.GrantId != "") {
		v.length("grantId", in.GrantId, 1, 128)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if !grantIDPattern.MatchString(in.GrantId) {
		return nil, newError(ErrInvalidGrantId, "Grant ID %s is not valid.", truncate(in.GrantId))
	}
	r, err := s.keyFor(ctx, c, &opRevokeGrant.Keys[0], in.KeyId, nil)
	if err != nil {
		return nil, err
	}
	return &Empty{}, s.deleteGrant(ctx, r.ID, in.GrantId, in.DryRun, func(*grantRecord) error { return nil })
}

func (s *Service) deleteGrant(ctx context.Context, keyID, grantID string, dry bool, allowed func(*grantRecord) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.store.Update(ctx, func(tx keystore.Tx) error {
		raw, err := tx.Get(bucketGrants, grantStoreKey(keyID, grantID))
		if err != nil {
			return err
		}
		if raw == nil {
			return newError(ErrNotFound, "Grant ID %s not found", grantID)
		}
		g := new(grantRecord)
		if err := json.Unmarshal(raw, g); err != nil {
			return err
		}
		if err := allowed(g); err != nil {
			return err
		}
		if dry {
			return dryRun
		}
		return s.deleteGrantTx(tx, g)
	})
	if err != nil {
		return internal(err)
	}
	s.cache.invalidate(cacheGrants, keyID)
	return nil
}

// keyGrants returns the grants of a key: loaded on first use and dropped on
// every change, so that authorization reads no store on the hot path.
func (s *Service) keyGrants(ctx context.Context, keyID string) ([]*grantRecord, error) {
	if gs, ok := s.cache.grants.getAt(keyID, s.requestTime(ctx)); ok {
		return gs, nil
	}
	gen := s.cache.grants.generation()
	var gs []*grantRecord
	err := s.store.View(ctx, func(tx keystore.Tx) error {
		gs = []*grantRecord{} // View may run fn again
		return scanGrants(tx, keyID+"/", "", func(g *grantRecord) bool { gs = append(gs, g); return true })
	})
	if err != nil {
		return nil, err
	}
	return s.cache.grants.fill(keyID, gs, gen), nil
}

// grantAllows reports whether a grant of the key to the caller passes match.
func (s *Service) grantAllows(ctx context.Context, keyID string, c *Caller, match grantMatch) (bool, error) {
	gs, err := s.keyGrants(ctx, keyID)
	if err != nil {
		return false, err
	}
	uid, resolved := "", false
	for _, g := range gs {
		if !c.is(g.GranteePrincipal) {
			continue
		}
		if !resolved {
			if uid, err = s.uniqueID(ctx, c); err != nil {
				return false, err
			}
			resolved = true
		}
		if g.names(c, uid, g.GranteePrincipal) && match(g) {
			return true, nil
		}
	}
	return false, nil
}

// is reports whether a grant's principal names the caller: its ARN, or
// for a role session its role, as AWS matches grants to role sessions.
func (c *Caller) is(principal string) bool {
	if principal == "" {
		return false
	}
	if subtle.ConstantTimeCompare([]byte(principal), []byte(c.ARN)) == 1 {
		return true
	}
	return c.RoleARN != "" && subtle.ConstantTimeCompare([]byte(principal), []byte(c.RoleARN)) == 1
}

// invalidGrantPrincipal refuses a grant naming a principal that does not
// exist.
func invalidGrantPrincipal(arn string) error {
	return newError(ErrInvalidArn, "%s is not a valid principal: no such user or role exists.", truncate(arn))
}
