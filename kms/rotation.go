package kms

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/policy"
)

// Rotation limits, as AWS's.
const (
	minRotationDays     = 90
	maxRotationDays     = 2560
	defaultRotationDays = 365
	maxOnDemand         = 25
)

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

// EnableKeyRotationInput is the EnableKeyRotation request.
type EnableKeyRotationInput struct {
	KeyId                string `json:"KeyId"`
	RotationPeriodInDays *int   `json:"RotationPeriodInDays"`
}

// Whether a rotation operation may rotate imported material: only
// RotateKeyOnDemand does, of material imported for it (import.go).
const (
	automaticOnly = false
	orImported    = true
)

// checkRotatable guards the rotation operations, whose key member is k;
// imported is orImported for RotateKeyOnDemand, which rotates symmetric
// EXTERNAL keys too, automaticOnly for the operations of automatic
// rotation, which AWS refuses for imported material.
//
// Deviation: AWS rotates a multi-Region key with imported material once
// the same new material is imported into the primary and each replica
// (PENDING_MULTI_REGION_IMPORT_AND_ROTATION); Coffer refuses new material
// and on-demand rotation for multi-Region EXTERNAL keys with
// UnsupportedOperationException (import.go's importTarget).
func checkRotatable(r *keyRecord, k *KeyMember, imported bool) error {
	if err := checkCustomerManaged(r); err != nil {
		return err
	}
	if r.isReplica() {
		// AWS rotates a multi-Region key through its primary only.
		return newError(ErrUnsupportedOperation, "%s is a multi-Region replica key: rotation is managed on its primary key in %s.", r.arn(), r.PrimaryRegion)
	}
	switch {
	case r.Spec != SpecSymmetric:
		return newError(ErrUnsupportedOperation, "%s cannot be rotated: only symmetric encryption keys support rotation.", r.arn())
	case r.Origin == OriginExternal && imported && r.PrimaryRegion == "":
	case r.Origin == OriginExternal && imported:
		// Refused: AWS's texts disagree. botocore's RotateKeyOnDemand says
		// "You cannot perform on-demand rotation of asymmetric KMS keys,
		// HMAC KMS keys, multi-Region KMS keys with imported key material,
		// or KMS keys in a custom key store", while its ImportKeyMaterial
		// describes importing NEW_KEY_MATERIAL into the primary, the same
		// material as EXISTING_KEY_MATERIAL into each replica, then
		// rotating the primary, and DeleteImportedKeyMaterial names a
		// PENDING_MULTI_REGION_IMPORT_AND_ROTATION state no shape defines.
		// Until the model is one text, Coffer keeps the refusal the
		// operation's own documentation states.
		return newError(ErrUnsupportedOperation, "%s is a multi-Region key with imported key material, which cannot be rotated on demand.", r.arn())
	case r.Origin != OriginAWSKMS:
		return newError(ErrUnsupportedOperation, "%s cannot be rotated: only symmetric keys with AWS_KMS origin support automatic rotation.", r.arn())
	}
	return k.checkState(r)
}

// EnableKeyRotation turns on automatic rotation every RotationPeriodInDays
// (90..2560, default 365).
func (s *Service) EnableKeyRotation(ctx context.Context, c *Caller, in *EnableKeyRotationInput) (*Empty, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	period := defaultRotationDays
	if in.RotationPeriodInDays != nil {
		period = *in.RotationPeriodInDays
		v.rangeInt("rotationPeriodInDays", period, minRotationDays, maxRotationDays)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	withPeriod := func(r *keyRecord) *policy.Context {
		pc := s.requestContext(ctx, c, r)
		pc.Extra = map[string][]string{"kms:rotationperiodindays": {strconv.Itoa(period)}}
		return pc
	}
	_, err := s.mutateKey(ctx, c, &opEnableKeyRotation.Keys[0], in.KeyId, withPeriod, func(r *keyRecord) error {
		if err := checkRotatable(r, &opEnableKeyRotation.Keys[0], automaticOnly); err != nil {
			return err
		}
		base := s.now().UTC()
		if r.RotationEnabled {
			// A new period counts from the last automatic rotation, as AWS does.
			base = r.NextRotation.Add(-days(r.RotationPeriodDays))
		}
		r.RotationEnabled = true
		r.RotationPeriodDays = period
		r.NextRotation = base.Add(days(period))
		return nil
	})
	return &Empty{}, err
}

// DisableKeyRotation turns automatic rotation off; existing versions stay.
func (s *Service) DisableKeyRotation(ctx context.Context, c *Caller, in *KeyIDInput) (*Empty, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	if err := v.err(); err != nil {
		return nil, err
	}
	_, err := s.mutateKey(ctx, c, &opDisableKeyRotation.Keys[0], in.KeyId, nil, func(r *keyRecord) error {
		if err := checkRotatable(r, &opDisableKeyRotation.Keys[0], automaticOnly); err != nil {
			return err
		}
		r.RotationEnabled = false
		r.NextRotation = time.Time{}
		return nil
	})
	return &Empty{}, err
}

// GetKeyRotationStatusOutput is the GetKeyRotationStatus response.
type GetKeyRotationStatusOutput struct {
	KeyRotationEnabled   bool       `json:"KeyRotationEnabled"`
	KeyId                string     `json:"KeyId"`
	RotationPeriodInDays int        `json:"RotationPeriodInDays,omitempty"`
	NextRotationDate     *Timestamp `json:"NextRotationDate,omitempty"`
}

// GetKeyRotationStatus reports whether and when the key rotates.
func (s *Service) GetKeyRotationStatus(ctx context.Context, c *Caller, in *KeyIDInput) (*GetKeyRotationStatusOutput, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	if err := v.err(); err != nil {
		return nil, err
	}
	r, err := s.keyFor(ctx, c, &opGetKeyRotationStatus.Keys[0], in.KeyId, nil)
	if err != nil {
		return nil, err
	}
	switch {
	case r.Spec == SpecSymmetric && r.Origin == OriginExternal && r.State != StatePendingImport:
		// A symmetric key with imported material rotates on demand only
		// (RotateKeyOnDemand of PENDING_ROTATION material, import.go), so
		// its status is answered, not refused: "You cannot enable automatic
		// rotation of ... KMS keys with imported key material" and "you can
		// use GetKeyRotationStatus to identify the date and time that an in
		// progress on-demand rotation was initiated" (botocore's current
		// GetKeyRotationStatus); earlier models: "The key rotation status
		// for these KMS keys is always false". KeyRotationEnabled is false
		// with no period or date. OnDemandRotationStartDate is never set:
		// Coffer completes an on-demand rotation within the call, so none
		// is ever in progress. A key in PendingImport keeps the key-state
		// table's [6] refusal below.
		return &GetKeyRotationStatusOutput{KeyId: r.arn()}, nil
	case r.Spec != SpecSymmetric || r.Origin != OriginAWSKMS:
		return nil, newError(ErrUnsupportedOperation, "%s does not support rotation.", r.arn())
	}
	rot, err := s.rotationOf(ctx, r) // a replica's is its primary's (mrk.go)
	if err != nil {
		return nil, err
	}
	out := &GetKeyRotationStatusOutput{KeyRotationEnabled: rot.RotationEnabled, KeyId: r.arn()}
	if rot.RotationEnabled {
		out.RotationPeriodInDays = rot.RotationPeriodDays
		out.NextRotationDate = ts(rot.NextRotation)
	}
	return out, nil
}

// RotateKeyOnDemandOutput is the RotateKeyOnDemand response.
type RotateKeyOnDemandOutput struct {
	KeyId string `json:"KeyId"`
}

// RotateKeyOnDemand adds new key material now (at most 25 times per key).
// The automatic schedule is unchanged.
func (s *Service) RotateKeyOnDemand(ctx context.Context, c *Caller, in *KeyIDInput) (*RotateKeyOnDemandOutput, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	if err := v.err(); err != nil {
		return nil, err
	}
	r, err := s.keyFor(ctx, c, &opRotateKeyOnDemand.Keys[0], in.KeyId, nil)
	if err != nil {
		return nil, err
	}
	if err := checkRotatable(r, &opRotateKeyOnDemand.Keys[0], orImported); err != nil {
		return nil, err
	}
	if r.OnDemandRotations >= maxOnDemand {
		return nil, newError(ErrLimitExceeded, "%s has reached the limit of %d on-demand rotations.", r.arn(), maxOnDemand)
	}
	if r.Origin == OriginExternal {
		r, err = s.rotateImported(ctx, r.ID)
	} else {
		r, _, err = s.rotate(ctx, r.ID, rotationOnDemand)
	}
	if err != nil {
		return nil, err
	}
	return &RotateKeyOnDemandOutput{KeyId: r.arn()}, nil
}

// Rotation kinds, as ListKeyRotations reports them.
const (
	rotationOnDemand  = "ON_DEMAND"
	rotationAutomatic = "AUTOMATIC"
)

// rotationAttempts bounds how often rotate prepares new material when other
// rotations of the same key keep committing first.
const rotationAttempts = 3

var (
	// errVersionsMoved reports, inside rotate's transaction, a key that
	// gained a version since its material was prepared: the prepared
	// version is bound to an index that is no longer the next one.
	errVersionsMoved = errors.New("kms: the key's versions changed while its new material was prepared")
	// errNotDue reports a key that automatic rotation found no longer due,
	// when it read the key or inside its transaction: disabled, rotation turned off, rotated by
	// another node, or scheduled for deletion since it was found due.
	errNotDue = errors.New("kms: the key is no longer due for automatic rotation")
)

// rotationDue reports whether automatic rotation of r is due at now.
func rotationDue(r *keyRecord, now time.Time) bool {
	return r.State == StateEnabled && r.RotationEnabled && !now.Before(r.NextRotation)
}

// rotate appends a new material version to key id; kind is rotationOnDemand
// or rotationAutomatic. It returns the new record and true, or nil, false
// and no error when an automatic rotation found the key no longer due and
// changed nothing.
//
// The material is generated and wrapped before the store transaction, which
// may run more than once and must not hold the root (an HSM round-trip) or
// consume entropy. The wrap binds the version index, so the transaction
// only appends the prepared version if the key still has the versions it
// was prepared against; if another rotation committed first, the prepared
// version is dropped and the key read again.
func (s *Service) rotate(ctx context.Context, id, kind string) (*keyRecord, bool, error) {
	for range rotationAttempts {
		var r *keyRecord
		err := s.store.View(ctx, func(tx keystore.Tx) (err error) {
			r, err = getKeyTx(tx, id)
			return err
		})
		switch {
		case err != nil:
			return nil, false, internal(err)
		case r == nil:
			return nil, false, errKeyGone
		}
		now := s.now().UTC()
		if err := checkRotation(r, kind, now); err != nil {
			if err == errNotDue {
				return nil, false, nil
			}
			return nil, false, err
		}
		n := len(r.Versions)
		ver, err := s.newVersion(ctx, r, now, kind)
		if err != nil {
			return nil, false, err
		}
		// An automatic rotation is the service's own change: its record
		// (RotateKey, an AwsServiceEvent) commits with it through the outbox.
		uctx, event := ctx, (*serviceEvent)(nil)
		if kind == rotationAutomatic {
			if uctx, event, err = s.serviceEventContext(ctx, "RotateKey"); err != nil {
				clear(ver.Wrapped)
				return nil, false, err
			}
		}
		out, err := s.updateKey(uctx, id, func(_ keystore.Tx, r *keyRecord) (*keyRecord, error) {
			if err := checkRotation(r, kind, now); err != nil {
				return nil, err
			}
			if event != nil {
				event.on(r)
			}
			if len(r.Versions) != n {
				return nil, errVersionsMoved
			}
			switch kind {
			case rotationOnDemand:
				r.OnDemandRotations++
				r.LastOnDemand = now
			case rotationAutomatic:
				r.NextRotation = now.Add(days(r.RotationPeriodDays))
			}
			r.Versions = append(r.Versions, ver)
			return r, nil
		})
		switch {
		case err == nil:
			// Rotation ends the cached versions' time in memory, as
			// disabling does: the next use of any version is unwrapped afresh.
			s.cache.invalidate(cacheKey, id)
			// A multi-Region primary's new version reaches its replicas
			// now, in the same call (mrk.go).
			s.syncReplicas(ctx, out)
			return out, true, nil
		case err == errVersionsMoved:
			clear(ver.Wrapped)
			continue
		case err == errNotDue:
			clear(ver.Wrapped)
			return nil, false, nil
		default:
			clear(ver.Wrapped)
			return nil, false, internal(err)
		}
	}
	if kind == rotationOnDemand {
		// Other rotations of the key kept committing first (other nodes, or
		// concurrent calls): AWS answers a rotation in progress so.
		return nil, false, newError(ErrConflict, "%s is being rotated by another request. Try again later.", s.keyARN(s.account, id))
	}
	return nil, false, internal(fmt.Errorf("kms: rotation of key %s lost the race %d times", id, rotationAttempts))
}

// checkRotation reports whether r may gain a version of kind now: for
// on-demand rotation the errors RotateKeyOnDemand answers, for automatic
// rotation errNotDue when the schedule no longer calls for it.
func checkRotation(r *keyRecord, kind string, now time.Time) error {
	if kind == rotationAutomatic && !rotationDue(r, now) {
		return errNotDue
	}
	if kind == rotationAutomatic && r.Manager == ManagerAWS {
		// KMS rotates AWS managed keys every year; only customers are
		// refused their management (managed.go).
		return opRotateKeyOnDemand.Keys[0].checkState(r)
	}
	if err := checkRotatable(r, &opRotateKeyOnDemand.Keys[0], kind == rotationOnDemand); err != nil {
		return err
	}
	if kind == rotationOnDemand && r.OnDemandRotations >= maxOnDemand {
		return newError(ErrLimitExceeded, "%s has reached the limit of %d on-demand rotations.", r.arn(), maxOnDemand)
	}
	return nil
}

// ListKeyRotationsInput is the ListKeyRotations request.
type ListKeyRotationsInput struct {
	KeyId              string `json:"KeyId"`
	IncludeKeyMaterial string `json:"IncludeKeyMaterial"`
	ListInput
}

// RotationsListEntry is one key material in ListKeyRotations. The import
// members are present for symmetric EXTERNAL keys only, as botocore's
// model says.
type RotationsListEntry struct {
	KeyId                  string     `json:"KeyId"`
	KeyMaterialId          string     `json:"KeyMaterialId"`
	KeyMaterialDescription *string    `json:"KeyMaterialDescription,omitempty"`
	ImportState            string     `json:"ImportState,omitempty"`
	KeyMaterialState       string     `json:"KeyMaterialState"`
	ExpirationModel        string     `json:"ExpirationModel,omitempty"`
	ValidTo                *Timestamp `json:"ValidTo,omitempty"`
	RotationDate           *Timestamp `json:"RotationDate,omitempty"`
	RotationType           string     `json:"RotationType,omitempty"`
}

// Key material states and import states of ListKeyRotations.
const (
	materialCurrent         = "CURRENT"
	materialNonCurrent      = "NON_CURRENT"
	materialPendingRotation = "PENDING_ROTATION"
	importImported          = "IMPORTED"
	importPending           = "PENDING_IMPORT"
)

// ListKeyRotationsOutput is the ListKeyRotations response.
type ListKeyRotationsOutput struct {
	Rotations  []RotationsListEntry `json:"Rotations"`
	NextMarker string               `json:"NextMarker,omitempty"`
	Truncated  bool                 `json:"Truncated"`
}

// ListKeyRotations pages through the key's rotations, oldest first; with
// ALL_KEY_MATERIAL the original material is listed too, and material
// imported for a rotation that has not happened yet (PENDING_ROTATION),
// last.
func (s *Service) ListKeyRotations(ctx context.Context, c *Caller, in *ListKeyRotationsInput) (*ListKeyRotationsOutput, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	v.enum("includeKeyMaterial", in.IncludeKeyMaterial, includeKeyMaterial)
	v.limit(in.Limit)
	v.marker(in.Marker)
	if err := v.err(); err != nil {
		return nil, err
	}
	after, err := decodeMarker("rotations", in.Marker)
	if err != nil {
		return nil, err
	}
	start := 0
	if after != "" {
		n, err := strconv.Atoi(after)
		if err != nil || n < 0 {
			return nil, newError(ErrInvalidMarker, "Invalid marker: %s", truncate(in.Marker))
		}
		start = n + 1
	}
	r, err := s.keyFor(ctx, c, &opListKeyRotations.Keys[0], in.KeyId, nil)
	if err != nil {
		return nil, err
	}
	imported := r.Origin == OriginExternal
	if r.Spec != SpecSymmetric || (r.Origin != OriginAWSKMS && !imported) {
		return nil, newError(ErrUnsupportedOperation, "%s does not support rotation.", r.arn())
	}
	limit := pageLimit(in.Limit, 100, 1000)
	out := &ListKeyRotationsOutput{Rotations: []RotationsListEntry{}}
	current := len(r.Versions) - 1
	last := current
	if r.PendingMaterial != nil && in.IncludeKeyMaterial == "ALL_KEY_MATERIAL" {
		last++ // the pending material, listed last
	}
	for i := start; i <= last; i++ {
		ver, state := r.PendingMaterial, materialPendingRotation
		if i <= current {
			ver, state = &r.Versions[i], materialNonCurrent
			if i == current {
				state = materialCurrent
			}
		}
		if ver.RotationType == "" && in.IncludeKeyMaterial != "ALL_KEY_MATERIAL" {
			continue
		}
		if len(out.Rotations) == limit {
			out.Truncated = true
			out.NextMarker = encodeMarker("rotations", strconv.Itoa(i-1))
			break
		}
		e := RotationsListEntry{KeyId: r.ID, KeyMaterialId: ver.MaterialID, KeyMaterialState: state}
		if ver.RotationType != "" {
			e.RotationDate = ts(ver.Created)
			e.RotationType = ver.RotationType
		}
		if imported {
			if ver.Description != "" {
				desc := ver.Description
				e.KeyMaterialDescription = &desc
			}
			e.ImportState, e.ExpirationModel, e.ValidTo = importPending, "", nil
			if len(ver.Wrapped) > 0 {
				e.ImportState, e.ExpirationModel, e.ValidTo = importImported, ver.ExpirationModel, ts(ver.ValidTo)
			}
		}
		out.Rotations = append(out.Rotations, e)
	}
	return out, nil
}

// rotateImported completes an on-demand rotation of a symmetric EXTERNAL
// key: the material imported for it (PENDING_ROTATION, import.go) becomes
// the current version, the previous one NON_CURRENT. The material was
// wrapped for version index len(Versions) when it was imported, and only
// this function appends to an EXTERNAL key's versions, consuming it.
func (s *Service) rotateImported(ctx context.Context, id string) (*keyRecord, error) {
	now := s.now().UTC()
	out, err := s.updateKey(ctx, id, func(_ keystore.Tx, r *keyRecord) (*keyRecord, error) {
		if err := checkRotation(r, rotationOnDemand, now); err != nil {
			return nil, err
		}
		p := r.PendingMaterial
		if p == nil {
			return nil, newError(ErrInvalidState, "%s has no key material in PENDING_ROTATION state: import new key material with ImportType NEW_KEY_MATERIAL before rotating it on demand.", r.arn())
		}
		ver := *p
		ver.Created, ver.RotationType = now, rotationOnDemand
		r.Versions = append(r.Versions, ver)
		r.PendingMaterial = nil
		r.OnDemandRotations++
		r.LastOnDemand = now
		return r, nil
	})
	if err != nil {
		return nil, internal(err)
	}
	s.cache.invalidate(cacheKey, id)
	return out, nil
}
