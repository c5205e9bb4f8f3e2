package kms

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/engine"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/policy"
)

// Multi-Region keys.
//
// A multi-Region key is a family of keys with one key ID, "mrk-" and 32
// hex digits as AWS's are (developer guide, "Multi-Region keys in AWS KMS":
// "mrk-1234abcd12ab34cd56ef1234567890ab"), one in each Region of the family:
// the primary, made by CreateKey with MultiRegion, and its replicas, made by
// ReplicateKey in other served Regions. Each is a key record of its own
// Region (its own policy, tags, description, aliases, grants and state);
// every record of the family carries the family's PrimaryRegion and
// ReplicaRegions, and the operations that change the family (ReplicateKey,
// UpdatePrimaryRegion) rewrite every record of it in one store transaction.
//
// The family shares its material: each version is the primary's, unwrapped
// and wrapped again under the replica's ARN (materialAAD binds ARN and
// version index), before the store transaction and outside it. A ciphertext
// blob names the key by its 16 bytes and the version by index, so a blob of
// one Region's key opens with any other's: the 16 bytes of an mrk- ID are
// its hex, and a blob whose key bytes name no UUID key of the Region names
// the Region's mrk- key of those bytes (openKey). Rotation of the primary
// (on demand or automatic) adds the new version to every served replica
// right after it commits, in the same call; replicas refuse the rotation
// operations, as AWS's do.

const mrkPrefix = "mrk-"

// MultiRegionConfiguration is AWS's shape of the same name.
type MultiRegionConfiguration struct {
	MultiRegionKeyType string            `json:"MultiRegionKeyType"`
	PrimaryKey         *MultiRegionKey   `json:"PrimaryKey,omitempty"`
	ReplicaKeys        []*MultiRegionKey `json:"ReplicaKeys"`
}

// MultiRegionKey is AWS's shape of the same name.
type MultiRegionKey struct {
	Arn    string `json:"Arn"`
	Region string `json:"Region"`
}

func parseMRKHex(h string) (engine.KeyID, bool) {
	var out engine.KeyID
	if len(h) != 32 {
		return out, false
	}
	for i := 0; i < 32; i += 2 {
		hi, ok1 := lowerHex(h[i])
		lo, ok2 := lowerHex(h[i+1])
		if !ok1 || !ok2 {
			return out, false
		}
		out[i/2] = hi<<4 | lo
	}
	return out, true
}

// mrkKeyID is the mrk- ID of key bytes b.
func mrkKeyID(b engine.KeyID) string { return mrkPrefix + hex.EncodeToString(b[:]) }

func isMRK(id string) bool { return len(id) == len(mrkPrefix)+32 && id[:len(mrkPrefix)] == mrkPrefix }

// blobKeyMatches reports whether id is a key whose bytes are kid.
func blobKeyMatches(id string, kid engine.KeyID) bool {
	k, ok := parseKeyID(id)
	return ok && k == kid
}

func (s *Service) newMRKID() (string, error) {
	b, err := s.randomBytes(16)
	if err != nil {
		return "", err
	}
	return mrkPrefix + hex.EncodeToString(b), nil
}

// loadBlobKey returns the key a blob's key bytes name in s's Region: the
// UUID key of those bytes, else the mrk- key.
func (s *Service) loadBlobKey(ctx context.Context, kid engine.KeyID) (*keyRecord, error) {
	r, err := s.loadKey(ctx, formatKeyID(kid))
	if err != nil || r != nil {
		return r, err
	}
	return s.loadKey(ctx, mrkKeyID(kid))
}

func arnIn(region, account, id string) string {
	return "arn:aws:kms:" + region + ":" + account + ":key/" + id
}

// multiRegion is DescribeKey's MultiRegion and MultiRegionConfiguration.
func (r *keyRecord) multiRegion() (bool, *MultiRegionConfiguration) {
	if r.PrimaryRegion == "" {
		return false, nil
	}
	c := &MultiRegionConfiguration{MultiRegionKeyType: MultiRegionReplica,
		PrimaryKey:  &MultiRegionKey{Arn: arnIn(r.PrimaryRegion, r.Account, r.ID), Region: r.PrimaryRegion},
		ReplicaKeys: []*MultiRegionKey{}}
	if r.PrimaryRegion == r.Region {
		c.MultiRegionKeyType = MultiRegionPrimary
	}
	for _, reg := range r.ReplicaRegions {
		c.ReplicaKeys = append(c.ReplicaKeys, &MultiRegionKey{Arn: arnIn(reg, r.Account, r.ID), Region: reg})
	}
	return true, c
}

// MultiRegionConfiguration.MultiRegionKeyType values, and kms:MultiRegionKeyType's.
const (
	MultiRegionPrimary = "PRIMARY"
	MultiRegionReplica = "REPLICA"
)

func (r *keyRecord) isReplica() bool { return r.PrimaryRegion != "" && r.PrimaryRegion != r.Region }

// family is every Region of r's multi-Region family.
func (r *keyRecord) family() []string {
	return append([]string{r.PrimaryRegion}, r.ReplicaRegions...)
}

// recordsIn is the records view of region over s's store (served or not).
func (s *Service) recordsIn(region string) (*records, error) {
	recs, ok := s.store.(*records)
	if !ok {
		return nil, errors.New("kms: internal error: the store is not a records view")
	}
	return &records{store: recs.store, key: recs.key, place: inRegion(region)}, nil
}

// lockFamily takes the write locks of the served Services of regions, in
// Region order, and returns their release.
func (s *Service) lockFamily(regions []string) func() {
	rs := slices.Clone(regions)
	sort.Strings(rs)
	rs = slices.Compact(rs)
	var held []*Service
	for _, reg := range rs {
		if p := s.peer(reg); p != nil {
			p.writeMu.Lock()
			held = append(held, p)
		}
	}
	return func() {
		for _, p := range held {
			p.writeMu.Unlock()
		}
	}
}

// invalidateFamily drops the cached records of key id in the served
// Services of regions.
func (s *Service) invalidateFamily(id string, regions []string) {
	for _, reg := range regions {
		if p := s.peer(reg); p != nil {
			p.cache.invalidate(cacheKey, id)
		}
	}
}

// rewrap returns versions from..len-1 of src's material wrapped for the
// key at arn. It calls the root and runs outside any transaction.
func (s *Service) rewrap(ctx context.Context, src *keyRecord, from int, arn string) ([]keyVersion, error) {
	var out []keyVersion
	for i := from; i < len(src.Versions); i++ {
		v := src.Versions[i]
		if len(v.Wrapped) == 0 {
			return nil, newError(ErrUnsupportedOperation, "%s has no key material to replicate.", src.arn())
		}
		raw, err := s.root.Unwrap(ctx, v.Wrapped, materialAAD(src.arn(), i))
		if err != nil {
			return nil, hsmFailure(err, "unwrap key material to replicate")
		}
		w, err := s.root.Wrap(ctx, raw, materialAAD(arn, i))
		clear(raw)
		if err != nil {
			return nil, hsmFailure(err, "wrap replicated key material")
		}
		v.Wrapped = w
		out = append(out, v)
	}
	return out, nil
}

var errFamilyMoved = newError(ErrConflict, "The multi-Region key changed while the request was made. Try again.")

// ReplicateKeyInput is the ReplicateKey request.
type ReplicateKeyInput struct {
	KeyId                          string  `json:"KeyId"`
	ReplicaRegion                  string  `json:"ReplicaRegion"`
	Policy                         *string `json:"Policy"`
	BypassPolicyLockoutSafetyCheck bool    `json:"BypassPolicyLockoutSafetyCheck"`
	Description                    string  `json:"Description"`
	Tags                           []Tag   `json:"Tags"`
}

// ReplicateKeyOutput is the ReplicateKey response.
type ReplicateKeyOutput struct {
	ReplicaKeyMetadata *KeyMetadata `json:"ReplicaKeyMetadata"`
	ReplicaPolicy      string       `json:"ReplicaPolicy"`
	ReplicaTags        []Tag        `json:"ReplicaTags"`
}

// replicaRegionPattern is botocore's pattern of ReplicaRegion and
// PrimaryRegion.
var replicaRegionPattern = regexp.MustCompile(`^([a-z]+-){2,3}\d+$`)

func (v *validator) region(field, r string) {
	if v.required(field, r != "") {
		v.length(field, r, 1, 32)
		if !replicaRegionPattern.MatchString(r) {
			v.fail(field, r, "Member must satisfy regular expression pattern: ^([a-z]+-){2,3}\\d+$")
		}
	}
}

// ReplicateKey makes a replica of a multi-Region primary key in another
// served Region: the same key ID and material, with its own policy (the
// default key policy unless Policy is given), description and tags.
//
// AWS's replica is in the transient Creating state while its Region makes
// it, which "might still be in progress when the ReplicateKey operation
// completes" (developer guide, "Key states of AWS KMS keys"), and then
// Enabled. Coffer makes the replica's record and rewrites the family's in
// one store transaction, after the material is wrapped for the replica,
// so there is no moment at which the replica exists and is not usable:
// the response, and every DescribeKey after it in either Region, show the
// replica Enabled and listed in the family's ReplicaKeys. Answering
// Creating would describe a state no following call could observe.
//
// The replica of a primary with imported material (Origin EXTERNAL) has no
// material: it is PendingImport until the primary's material is imported
// into it (pendingImportVersions).
func (s *Service) ReplicateKey(ctx context.Context, c *Caller, in *ReplicateKeyInput) (*ReplicateKeyOutput, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	v.region("replicaRegion", in.ReplicaRegion)
	v.length("description", in.Description, 0, maxDescription)
	if in.Policy != nil {
		v.length("policy", *in.Policy, 1, 131072)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	// kms:ReplicaRegion: the Region of the replica (AWS's "AWS KMS
	// condition keys"; its example allows ReplicateKey into listed
	// Regions only).
	r, err := s.primaryKey(ctx, c, &opReplicateKey.Keys[0], in.KeyId, "; replicate its primary key in %s.",
		func(pc *policy.Context) { extra(pc, "kms:replicaregion", in.ReplicaRegion) })
	if err != nil {
		return nil, err
	}
	if slices.Contains(r.family(), in.ReplicaRegion) {
		// A Region the family lists has the key, unless its replica was
		// deleted by a version that left it listed (changeFamily forgets it).
		if cur, err := s.keyIn(ctx, in.ReplicaRegion, r.ID); err != nil || cur != nil {
			if err == nil {
				err = newError(ErrAlreadyExists, "A key with ID %s already exists in %s.", r.ID, in.ReplicaRegion)
			}
			return nil, err
		}
	}
	peer := s.peer(in.ReplicaRegion)
	if peer == nil {
		return nil, newError(ErrUnsupportedOperation, "%s is not a Region this server serves: a replica can be made only in a served Region.", in.ReplicaRegion)
	}
	tags, err := mergeTags(nil, in.Tags)
	if err != nil {
		return nil, err
	}
	// The replica is a key created in its Region: kms:CreateKey there, as
	// AWS requires of the caller.
	// Its kms:KeyOrigin is the primary's and kms:MultiRegionKeyType REPLICA.
	cpc := peer.createKeyContext(ctx, c, &CreateKeyInput{MultiRegion: true, Tags: in.Tags, Policy: in.Policy, Origin: r.Origin,
		BypassPolicyLockoutSafetyCheck: in.BypassPolicyLockoutSafetyCheck}, r.Spec, r.Usage)
	cpc.MultiRegionKeyType = MultiRegionReplica
	if err := peer.authorizeIdentityWith(ctx, c, opCreateKey.Action, "*", cpc); err != nil {
		return nil, err
	}
	replicaARN := arnIn(in.ReplicaRegion, r.Account, r.ID)
	doc := string(policy.DefaultKeyPolicy(r.Account))
	if in.Policy != nil {
		doc = *in.Policy
		if err := peer.checkNewKeyPolicy(ctx, c, doc, replicaARN, r.Account, in.BypassPolicyLockoutSafetyCheck); err != nil {
			return nil, err
		}
	}
	state := StateEnabled
	var versions []keyVersion
	if r.Origin == OriginExternal {
		state, versions = StatePendingImport, pendingImportVersions(r)
	} else if versions, err = s.rewrap(ctx, r, 0, replicaARN); err != nil {
		return nil, err
	}
	rep := &keyRecord{
		ID: r.ID, Account: r.Account, Region: in.ReplicaRegion, Created: s.now().UTC(),
		Description: in.Description, Usage: r.Usage, Spec: r.Spec, Origin: r.Origin, Manager: r.Manager,
		State: state, Policy: doc, Tags: tags, Versions: versions,
	}
	_, err = s.changeFamily(ctx, r, func(tx keystore.Tx, primary *keyRecord, recs map[string]*keyRecord, txIn func(string) keystore.Tx) error {
		if err := opReplicateKey.Keys[0].checkState(primary); err != nil {
			return err // scheduled for deletion or disabled since it was resolved
		}
		if len(primary.Versions) != len(versions) {
			return errFamilyMoved
		}
		if slices.Contains(primary.family(), in.ReplicaRegion) {
			return newError(ErrAlreadyExists, "A key with ID %s already exists in %s.", r.ID, in.ReplicaRegion)
		}
		rtx := txIn(in.ReplicaRegion)
		if cur, err := getKeyTx(rtx, r.ID); err != nil || cur != nil {
			if err == nil {
				err = newError(ErrAlreadyExists, "A key with ID %s already exists in %s.", r.ID, in.ReplicaRegion)
			}
			return err
		}
		for _, f := range recs {
			f.ReplicaRegions = append(f.ReplicaRegions, in.ReplicaRegion)
		}
		rep.PrimaryRegion, rep.ReplicaRegions = primary.PrimaryRegion, slices.Clone(primary.ReplicaRegions)
		rep.prepare()
		return putKeyTx(rtx, rep)
	}, in.ReplicaRegion)
	if err != nil {
		for _, ver := range versions {
			clear(ver.Wrapped)
		}
		return nil, err
	}
	return &ReplicateKeyOutput{ReplicaKeyMetadata: rep.metadata(), ReplicaPolicy: doc, ReplicaTags: nonNilTags(tags)}, nil
}

// pendingImportVersions are the versions of a replica of r, a primary with
// imported material: AWS "does not copy or synchronize the key material
// from a primary key with imported key material to its replica keys. You
// must import the same key material into related primary and replica
// keys" (developer guide, "Importing key material into multi-Region
// keys"). Each version keeps the primary's KeyMaterialId and place, with no
// material and no expiry (each key of the family has its own), so the
// replica is PendingImport and ImportKeyMaterial (import.go) takes only the
// primary's material into it: the KeyMaterialId, HMAC of the material over
// the key ID the family shares, is the primary's for that material alone,
// and other material is IncorrectKeyMaterialException.
func pendingImportVersions(r *keyRecord) []keyVersion {
	out := make([]keyVersion, len(r.Versions))
	for i, v := range r.Versions {
		out[i] = keyVersion{MaterialID: v.MaterialID, Created: v.Created, RotationType: v.RotationType, Description: v.Description}
	}
	return out
}

func nonNilTags(t []Tag) []Tag {
	if t == nil {
		return []Tag{}
	}
	return t
}

// changeFamily applies fn, in one store transaction, to every record of
// r's multi-Region family (recs, by Region, the primary's among them); fn
// may also write other Regions' records through txIn. Every record of recs
// is written back. extra names Regions whose locks and caches fn touches
// besides the family's.
func (s *Service) changeFamily(ctx context.Context, r *keyRecord, fn func(tx keystore.Tx, primary *keyRecord, recs map[string]*keyRecord, txIn func(string) keystore.Tx) error, extra ...string) (map[string]*keyRecord, error) {
	regions := append(r.family(), extra...)
	unlock := s.lockFamily(regions)
	defer unlock()
	views := map[string]*records{}
	for _, reg := range regions {
		v, err := s.recordsIn(reg)
		if err != nil {
			return nil, internal(err)
		}
		views[reg] = v
	}
	var recs map[string]*keyRecord
	err := s.store.Update(ctx, func(tx keystore.Tx) error {
		rt, ok := tx.(recordTx)
		if !ok {
			return errors.New("kms: internal error: not a records transaction")
		}
		txIn := func(reg string) keystore.Tx {
			v := views[reg]
			if v == nil {
				v, _ = s.recordsIn(reg)
			}
			return recordTx{rt.tx, v}
		}
		primary, err := getKeyTx(txIn(r.PrimaryRegion), r.ID)
		if err != nil {
			return err
		}
		if primary == nil {
			return errKeyGone
		}
		recs = map[string]*keyRecord{}
		var gone []string
		for _, reg := range primary.family() {
			f, err := getKeyTx(txIn(reg), r.ID)
			if err != nil {
				return err
			}
			if f == nil {
				gone = append(gone, reg)
				continue
			}
			recs[reg] = f.clone()
		}
		p := recs[primary.PrimaryRegion]
		if p == nil {
			return errKeyGone
		}
		// A replica whose record is gone (deleted by a version that left
		// its Region listed) leaves the family with this change.
		forgetReplicas(recs, p, s.now(), gone...)
		if err := fn(rt, p, recs, txIn); err != nil {
			return err
		}
		for reg, f := range recs {
			f.prepare()
			if err := putKeyTx(txIn(reg), f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if _, ok := err.(*Error); ok {
			return nil, err
		}
		return nil, internal(err)
	}
	s.invalidateFamily(r.ID, regions)
	return recs, nil
}

// syncReplicas brings every served replica of primary r up to r's
// versions: after a rotation of the primary, in the same call.
func (s *Service) syncReplicas(ctx context.Context, r *keyRecord) {
	if r.PrimaryRegion == "" || r.isReplica() {
		return
	}
	for _, reg := range r.ReplicaRegions {
		p := s.peer(reg)
		if p == nil {
			continue
		}
		if err := p.syncReplica(ctx, s, r); err != nil {
			slog.Error("kms: a rotation of a multi-Region primary key did not reach a replica", "key", r.arn(), "replicaRegion", reg, "err", err)
		}
	}
}

// syncReplica appends to s's replica of primary r the versions it lacks.
func (s *Service) syncReplica(ctx context.Context, from *Service, r *keyRecord) error {
	for range rotationAttempts {
		rep, err := s.loadKey(ctx, r.ID)
		if err != nil || rep == nil {
			return err
		}
		n := len(rep.Versions)
		if n >= len(r.Versions) {
			return nil
		}
		add, err := from.rewrap(ctx, r, n, rep.arn())
		if err != nil {
			return err
		}
		_, err = s.updateKey(ctx, r.ID, func(_ keystore.Tx, cur *keyRecord) (*keyRecord, error) {
			if len(cur.Versions) != n {
				return nil, errVersionsMoved
			}
			cur.Versions = append(cur.Versions, add...)
			return cur, nil
		})
		if err != errVersionsMoved {
			if err == nil {
				s.cache.invalidate(cacheKey, r.ID)
			}
			return err
		}
	}
	return errVersionsMoved
}

// UpdatePrimaryRegionInput is the UpdatePrimaryRegion request.
type UpdatePrimaryRegionInput struct {
	KeyId         string `json:"KeyId"`
	PrimaryRegion string `json:"PrimaryRegion"`
}

// UpdatePrimaryRegion makes the replica in PrimaryRegion the family's
// primary and the primary a replica. AWS's two keys are in the transient
// Updating state for a few seconds after the call returns, and DescribeKey
// may show both as replicas meanwhile (developer guide, "Change the
// primary key"). Coffer rewrites every record of the family in one store
// transaction, under the locks of every served Region of it, so a call
// sees the family either before or after the change, never between: the
// keys stay Enabled and never show Updating. The automatic rotation
// schedule moves to the new primary.
func (s *Service) UpdatePrimaryRegion(ctx context.Context, c *Caller, in *UpdatePrimaryRegionInput) (*Empty, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	v.region("primaryRegion", in.PrimaryRegion)
	if err := v.err(); err != nil {
		return nil, err
	}
	k := &opUpdatePrimaryRegion.Keys[0]
	// kms:PrimaryRegion: the Region the primary moves to (AWS's "AWS KMS
	// condition keys").
	r, err := s.primaryKey(ctx, c, k, in.KeyId, ".", func(pc *policy.Context) { extra(pc, "kms:primaryregion", in.PrimaryRegion) })
	if err != nil {
		return nil, err
	}
	if in.PrimaryRegion == r.Region {
		return &Empty{}, nil
	}
	if !slices.Contains(r.ReplicaRegions, in.PrimaryRegion) {
		return nil, newError(ErrNotFound, "Key '%s' does not exist", arnIn(in.PrimaryRegion, r.Account, r.ID))
	}
	// The new primary's key policy must allow kms:UpdatePrimaryRegion too,
	// as AWS requires; it is checked where it is served.
	if p := s.peer(in.PrimaryRegion); p != nil {
		if _, err := p.keyFor(ctx, c, k, r.ID, nil); err != nil {
			return nil, err
		}
	}
	old := r.Region
	_, err = s.changeFamily(ctx, r, func(_ keystore.Tx, primary *keyRecord, recs map[string]*keyRecord, _ func(string) keystore.Tx) error {
		if primary.Region != old || !slices.Contains(primary.ReplicaRegions, in.PrimaryRegion) {
			return errFamilyMoved
		}
		next := recs[in.PrimaryRegion]
		if next == nil {
			return newError(ErrNotFound, "Key '%s' does not exist", arnIn(in.PrimaryRegion, r.Account, r.ID))
		}
		if err := k.checkState(next); err != nil {
			return err
		}
		replicas := []string{old}
		for _, reg := range primary.ReplicaRegions {
			if reg != in.PrimaryRegion {
				replicas = append(replicas, reg)
			}
		}
		next.RotationEnabled, next.RotationPeriodDays, next.NextRotation = primary.RotationEnabled, primary.RotationPeriodDays, primary.NextRotation
		primary.RotationEnabled, primary.RotationPeriodDays, primary.NextRotation = false, 0, time.Time{}
		for _, f := range recs {
			f.PrimaryRegion, f.ReplicaRegions = in.PrimaryRegion, slices.Clone(replicas)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &Empty{}, nil
}

// primaryKey resolves keyID, authorizes k's action and checks k's states
// (usableKey), and refuses a key that is not the primary of a multi-Region
// family; replicaHint ends the message for a replica ("." or a hint with
// one %s for the primary's Region).
func (s *Service) primaryKey(ctx context.Context, c *Caller, k *KeyMember, keyID, replicaHint string, adjust func(*policy.Context)) (*keyRecord, error) {
	r, err := s.usableKey(ctx, c, k, keyID, adjust)
	if err != nil {
		return nil, err
	}
	if r.PrimaryRegion == "" {
		return nil, newError(ErrUnsupportedOperation, "%s is not a multi-Region key.", r.arn())
	}
	if r.isReplica() {
		hint := replicaHint
		if strings.Contains(hint, "%s") {
			hint = fmt.Sprintf(hint, r.PrimaryRegion)
		}
		return nil, newError(ErrUnsupportedOperation, "%s is not a multi-Region primary key%s", r.arn(), hint)
	}
	return r, nil
}

// errNoDeletionDue ends a family change that finds nothing to delete.
var errNoDeletionDue = newError(ErrConflict, "nothing is due for deletion")

// deleteReplica deletes replica r, whose deletion window has passed, in
// one store transaction with the rest of its family's records: no record
// of the family lists its Region any more (ReplicateKey may make a replica
// there again), and a primary that is PendingReplicaDeletion and had no
// other replica becomes PendingDeletion, its waiting period starting now,
// as AWS's does. done is false when the family has no primary record (a
// store written before PendingReplicaDeletion, when a primary could go
// first): the replica is then deleted as a single-Region key is.
func (s *Service) deleteReplica(ctx context.Context, r *keyRecord, now time.Time, event *serviceEvent) (done bool, err error) {
	var deleted []string
	_, err = s.changeFamily(ctx, r, func(_ keystore.Tx, primary *keyRecord, recs map[string]*keyRecord, txIn func(string) keystore.Tx) error {
		deleted = nil // fn may run more than once
		event.on(nil)
		tx := txIn(s.region)
		rep := recs[s.region]
		if rep == nil { // a record its family no longer lists
			var err error
			if rep, err = getKeyTx(tx, r.ID); err != nil || rep == nil {
				if err == nil {
					err = errNoDeletionDue // deleted meanwhile
				}
				return err
			}
		}
		if rep.State != StatePendingDeletion || now.Before(rep.DeletionDate) || !rep.isReplica() {
			return errNoDeletionDue // cancelled, or the primary, since the scan
		}
		event.on(rep)
		names, err := s.deleteKeyDataTx(tx, rep)
		if err != nil {
			return err
		}
		if err := deleteKeyTx(tx, rep); err != nil {
			return err
		}
		deleted = names
		delete(recs, s.region)
		forgetReplicas(recs, primary, now, s.region)
		return nil
	}, s.region)
	s.cache.invalidate(cacheGrants, r.ID)
	for _, n := range deleted {
		s.cache.invalidate(cacheAlias, aliasStoreKey(r.Account, n))
	}
	switch err {
	case errKeyGone:
		return false, nil
	case errNoDeletionDue:
		return true, nil
	}
	return true, err
}

// rotationOf returns the record that holds r's automatic rotation: r, or
// for a replica its family's primary. Automatic rotation is a property a
// multi-Region family shares and sets on its primary (AWS's
// GetKeyRotationStatus: "To enable or disable automatic rotation of a set
// of related multi-Region keys, set the property on the primary key"), and
// UpdatePrimaryRegion moves it with the primary; a replica reports it.
func (s *Service) rotationOf(ctx context.Context, r *keyRecord) (*keyRecord, error) {
	if !r.isReplica() {
		return r, nil
	}
	p, err := s.keyIn(ctx, r.PrimaryRegion, r.ID)
	if err != nil {
		return nil, err
	}
	if p == nil || p.isReplica() {
		return r, nil // the family is changing; r's own (off) is what it had
	}
	return p, nil
}

// forgetReplicas takes regions out of the family list of every record of
// recs; a primary pending replica deletion left with no replica becomes
// PendingDeletion, its waiting period starting at now.
func forgetReplicas(recs map[string]*keyRecord, primary *keyRecord, now time.Time, regions ...string) {
	if len(regions) == 0 {
		return
	}
	for _, f := range recs {
		f.ReplicaRegions = slices.DeleteFunc(f.ReplicaRegions, func(reg string) bool { return slices.Contains(regions, reg) })
	}
	if primary.State == StatePendingReplicaDeletion && len(primary.ReplicaRegions) == 0 {
		primary.State = StatePendingDeletion
		primary.DeletionDate = now.UTC().Add(days(primary.PendingWindowDays))
	}
}

// liveReplicas returns the Regions of primary r's replicas whose records
// exist, read in tx (a records transaction of r's Region).
func (s *Service) liveReplicas(tx keystore.Tx, r *keyRecord) ([]string, error) {
	rt, ok := tx.(recordTx)
	if !ok {
		return nil, errors.New("kms: internal error: not a records transaction")
	}
	var live []string
	for _, reg := range r.ReplicaRegions {
		v, err := s.recordsIn(reg)
		if err != nil {
			return nil, err
		}
		f, err := getKeyTx(recordTx{rt.tx, v}, r.ID)
		if err != nil {
			return nil, err
		}
		if f != nil {
			live = append(live, reg)
		}
	}
	return live, nil
}

// keyIn returns the record of key id in region (served or not), or nil.
func (s *Service) keyIn(ctx context.Context, region, id string) (*keyRecord, error) {
	if peer := s.peer(region); peer != nil {
		r, err := peer.loadKey(ctx, id)
		if err != nil {
			return nil, internal(err)
		}
		return r, nil
	}
	v, err := s.recordsIn(region)
	if err != nil {
		return nil, internal(err)
	}
	var r *keyRecord
	err = v.View(ctx, func(tx keystore.Tx) error {
		var err error
		r, err = getKeyTx(tx, id)
		return err
	})
	if err != nil {
		return nil, internal(err)
	}
	return r, nil
}
