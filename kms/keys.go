package kms

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/policy"
)

// CreateKeyInput is the CreateKey request.
type CreateKeyInput struct {
	Policy                         *string `json:"Policy"`
	Description                    string  `json:"Description"`
	KeyUsage                       string  `json:"KeyUsage"`
	CustomerMasterKeySpec          string  `json:"CustomerMasterKeySpec"`
	KeySpec                        string  `json:"KeySpec"`
	Origin                         string  `json:"Origin"`
	CustomKeyStoreId               string  `json:"CustomKeyStoreId"`
	BypassPolicyLockoutSafetyCheck bool    `json:"BypassPolicyLockoutSafetyCheck"`
	Tags                           []Tag   `json:"Tags"`
	MultiRegion                    bool    `json:"MultiRegion"`
	XksKeyId                       string  `json:"XksKeyId"`
}

// CreateKeyOutput is the CreateKey response.
type CreateKeyOutput struct {
	KeyMetadata *KeyMetadata `json:"KeyMetadata"`
}

// Limits of the key API.
const (
	maxDescription = 8192
	maxTagsPerKey  = 50
	maxPolicyBytes = 32768
)

// createKeyContext is CreateKey's request context: the key it would
// create (kms:KeySpec, kms:KeyUsage, kms:KeyOrigin, kms:MultiRegion,
// kms:MultiRegionKeyType), the
// lockout bypass and the tags it sets, as AWS's "AWS KMS condition keys"
// lists them for CreateKey (docs.aws.amazon.com/kms/latest/developerguide/
// conditions-kms.html) with aws:RequestTag/<key> and aws:TagKeys (IAM's
// global condition keys). Identity policies alone decide CreateKey, so
// these are the only way to restrict what keys a principal may create.
func (s *Service) createKeyContext(ctx context.Context, c *Caller, in *CreateKeyInput, spec, usage string) *policy.Context {
	pc := withRequestTags(s.requestContext(ctx, c, nil), in.Tags)
	pc.KeySpec, pc.KeyUsage, pc.KeyOrigin = spec, usage, in.Origin
	if pc.KeyOrigin == "" {
		pc.KeyOrigin = OriginAWSKMS
	}
	pc.MultiRegion = strconv.FormatBool(in.MultiRegion)
	if in.MultiRegion {
		// "You can use the kms:MultiRegionKeyType condition key to allow
		// or deny permission to create multi-Region primary keys"
		// (developer guide, "Create multi-Region primary keys").
		pc.MultiRegionKeyType = MultiRegionPrimary
	}
	pc.Extra = map[string][]string{
		"kms:bypasspolicylockoutsafetycheck": {strconv.FormatBool(in.BypassPolicyLockoutSafetyCheck)},
	}
	return pc
}

// CreateKey creates a symmetric encryption key in the caller's account.
func (s *Service) CreateKey(ctx context.Context, c *Caller, in *CreateKeyInput) (*CreateKeyOutput, error) {
	var v validator
	v.length("description", in.Description, 0, maxDescription)
	v.enum("keyUsage", in.KeyUsage, keyUsages)
	v.enum("customerMasterKeySpec", in.CustomerMasterKeySpec, keySpecs)
	v.enum("keySpec", in.KeySpec, keySpecs)
	v.enum("origin", in.Origin, origins)
	if in.Policy != nil {
		v.length("policy", *in.Policy, 1, 131072)
	}
	if in.CustomKeyStoreId != "" {
		v.length("customKeyStoreId", in.CustomKeyStoreId, 1, 64)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	spec := in.KeySpec
	if in.CustomerMasterKeySpec != "" {
		if spec != "" {
			return nil, newError(ErrValidation, "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.")
		}
		spec = in.CustomerMasterKeySpec
	}
	if spec == "" {
		spec = SpecSymmetric
	}
	usage, err := keySpecUsage(spec, in.KeyUsage)
	if err != nil {
		return nil, err
	}
	if in.CustomKeyStoreId != "" && spec != SpecSymmetric {
		// "Custom key stores support only symmetric encryption KMS keys"
		// (botocore CreateKeyRequest.CustomKeyStoreId): CreateKey's
		// modelled UnsupportedOperationException.
		return nil, newError(ErrUnsupportedOperation, "KeySpec %s is not supported for custom key stores. Custom key stores support only SYMMETRIC_DEFAULT keys.", spec)
	}
	switch {
	case in.CustomKeyStoreId != "" && in.Origin != OriginCloudHSM:
		return nil, newError(ErrValidation, "A key in custom key store %s must have Origin AWS_CLOUDHSM.", in.CustomKeyStoreId)
	case in.Origin == OriginCloudHSM && in.CustomKeyStoreId == "":
		return nil, newError(ErrValidation, "Origin AWS_CLOUDHSM needs the CustomKeyStoreId of the store that holds the key.")
	case in.Origin != "" && in.Origin != OriginAWSKMS && in.Origin != OriginCloudHSM && in.Origin != OriginExternal:
		return nil, newError(ErrUnsupportedOperation, "Origin %s is not supported by this server.", in.Origin)
	}
	if in.MultiRegion && in.CustomKeyStoreId != "" {
		// AWS: multi-Region keys cannot be created in a custom key store.
		return nil, newError(ErrUnsupportedOperation, "Multi-Region keys cannot be created in a custom key store.")
	}
	if in.XksKeyId != "" {
		return nil, newError(ErrUnsupportedOperation, "External key stores are not supported by this server.")
	}
	tags, err := mergeTags(nil, in.Tags)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeIdentityWith(ctx, c, opCreateKey.Action, "*", s.createKeyContext(ctx, c, in, spec, usage)); err != nil {
		return nil, err
	}

	newID := s.newKeyID
	if in.MultiRegion {
		newID = s.newMRKID // mrk.go
	}
	keyID, err := newID()
	if err != nil {
		return nil, err
	}
	policyDoc := string(policy.DefaultKeyPolicy(c.Account))
	if in.Policy != nil {
		policyDoc = *in.Policy
		if err := s.checkNewKeyPolicy(ctx, c, policyDoc, s.keyARN(c.Account, keyID), c.Account, in.BypassPolicyLockoutSafetyCheck); err != nil {
			return nil, err
		}
	}
	now := s.now().UTC()
	r := s.newKeyRecord(keyID, c.Account, now, in.Description, usage, spec, policyDoc)
	r.Tags = tags
	if in.MultiRegion {
		r.PrimaryRegion = s.region
	}
	r.prepare()
	switch {
	case in.Origin == OriginExternal:
		// No material until ImportKeyMaterial (import.go).
		r.Origin, r.State = OriginExternal, StatePendingImport
	case in.CustomKeyStoreId != "":
		if err := s.createStoreKey(ctx, c, r, in.CustomKeyStoreId, now); err != nil {
			return nil, err
		}
		r.prepare()
	default:
		ver, err := s.newVersion(ctx, r, now, "")
		if err != nil {
			return nil, err
		}
		r.Versions = []keyVersion{ver}
	}

	// The material, or the HSM object, exists before the transaction, which
	// only puts the record; a custom-key-store key whose record is not
	// stored has its HSM object destroyed, after writeMu is released. The
	// key is noted first, so that the audit record the transaction keeps
	// with it (outbox.go) names it; a failure un-notes it.
	noted := noteKey(ctx, r)
	if err := s.putNewKey(ctx, r); err != nil {
		noted.undo()
		if len(r.Versions) > 0 {
			s.destroyStoreKey(context.WithoutCancel(ctx), r.Versions[0].HSMKey)
		}
		return nil, internal(err)
	}
	return &CreateKeyOutput{KeyMetadata: r.metadata()}, nil
}

// putNewKey stores and publishes the record of a key just created. A key
// in a custom key store is stored only if its store is still the connected
// store it was made in: the store may have been disconnected, changed or
// deleted while the HSM made the key.
func (s *Service) putNewKey(ctx context.Context, r *keyRecord) error {
	defer s.lockKey(r.ID)()
	err := s.store.Update(ctx, func(tx keystore.Tx) error {
		if r.CustomKeyStoreID != "" {
			ks, err := keyStoreTx(tx, r.Account, r.CustomKeyStoreID)
			if err != nil {
				return err
			}
			if ks.State != StoreConnected {
				return newError(ErrCustomKeyStoreInvalidState, "Custom key store %s is %s; it must be CONNECTED.", ks.ID, ks.State)
			}
			if ks.ClusterID != r.ClusterID {
				return newError(ErrCustomKeyStoreInvalidState, "Custom key store %s changed cluster while the key was created.", ks.ID)
			}
		}
		return putKeyTx(tx, r)
	})
	if err != nil {
		return err
	}
	s.cache.publishKey(r.ID, r)
	return nil
}

// lockKey takes the write lock of key id, for a write of its record
// alone: writeMu shared, so that no other writer runs, and the key's
// stripe of keyMu, so that its writes publish in commit order. It returns
// the unlock.
func (s *Service) lockKey(id string) func() {
	m := &s.keyMu[xxhash.Sum64String(id)%uint64(len(s.keyMu))]
	s.writeMu.RLock()
	m.Lock()
	return func() {
		m.Unlock()
		s.writeMu.RUnlock()
	}
}

// newVersion generates fresh key material for r and wraps it under the root
// for the version index len(r.Versions). It calls the root and reads
// entropy, so it runs before any store transaction, never inside one: the
// caller's transaction must check that the index is still the next one.
// The plaintext is zeroed as soon as it is wrapped.
func (s *Service) newVersion(ctx context.Context, r *keyRecord, now time.Time, rotation string) (keyVersion, error) {
	mid, err := s.randomBytes(32)
	if err != nil {
		return keyVersion{}, err
	}
	material, err := newMaterial(r.Spec, s.random)
	if err != nil {
		return keyVersion{}, err
	}
	wrapped, err := s.root.Wrap(ctx, material, materialAAD(r.arn(), len(r.Versions)))
	clear(material)
	if err != nil {
		return keyVersion{}, hsmFailure(err, "new key material")
	}
	return keyVersion{MaterialID: hex.EncodeToString(mid), Wrapped: wrapped, Created: now, RotationType: rotation}, nil
}

// KeyIDInput is the request of operations that take only a KeyId.
type KeyIDInput struct {
	KeyId       string   `json:"KeyId"`
	GrantTokens []string `json:"GrantTokens"`
}

// DescribeKeyOutput is the DescribeKey response.
type DescribeKeyOutput struct {
	KeyMetadata *KeyMetadata `json:"KeyMetadata"`
}

// DescribeKey returns a key's metadata in any state.
func (s *Service) DescribeKey(ctx context.Context, c *Caller, in *KeyIDInput) (*DescribeKeyOutput, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	v.grantTokens(in.GrantTokens)
	if err := v.errWithTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	r, err := s.keyFor(ctx, c, &opDescribeKey.Keys[0], in.KeyId, nil)
	if err != nil {
		return nil, err
	}
	return &DescribeKeyOutput{KeyMetadata: r.metadata()}, nil
}

// ListInput is the paging part of every List request.
type ListInput struct {
	Limit  *int   `json:"Limit"`
	Marker string `json:"Marker"`
}

// KeyListEntry is one key in ListKeys.
type KeyListEntry struct {
	KeyId  string `json:"KeyId"`
	KeyArn string `json:"KeyArn"`
}

// ListKeysOutput is the ListKeys response.
type ListKeysOutput struct {
	Keys       []KeyListEntry `json:"Keys"`
	NextMarker string         `json:"NextMarker,omitempty"`
	Truncated  bool           `json:"Truncated"`
}

// ListKeys pages through the caller account's keys in key-ID order.
func (s *Service) ListKeys(ctx context.Context, c *Caller, in *ListInput) (*ListKeysOutput, error) {
	var v validator
	v.limit(in.Limit)
	v.marker(in.Marker)
	if err := v.err(); err != nil {
		return nil, err
	}
	after, err := decodeMarker("keys", in.Marker)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeIdentity(ctx, c, opListKeys.Action, "*"); err != nil {
		return nil, err
	}
	limit := pageLimit(in.Limit, 100, 1000)
	out := &ListKeysOutput{Keys: []KeyListEntry{}}
	err = s.store.View(ctx, func(tx keystore.Tx) error {
		built, err := s.accountIndexBuilt(tx)
		if err != nil {
			return err
		}
		if built {
			// The account's entries of keys-by-account, in key ID order
			// as the keys bucket's: a page reads a page of entries, however
			// many keys other accounts hold.
			prefix := accountIndexName(c.Account, "")
			start := ""
			if after != "" {
				start = accountIndexName(c.Account, after)
			}
			return tx.Scan(bucketKeysByAccount, prefix, start, func(name string, _ []byte) bool {
				if len(out.Keys) == limit {
					out.Truncated = true
					return false
				}
				id := name[len(prefix):]
				out.Keys = append(out.Keys, KeyListEntry{KeyId: id, KeyArn: s.keyARN(c.Account, id)})
				return true
			})
		}
		// A store whose index is not built yet (its first maintenance run
		// builds it): every key of the Region. Records are decoded from the
		// scan itself: loading each through the cache would open a
		// transaction inside this one and fill the cache with every key in
		// the store.
		return tx.Scan(bucketKeys, "", after, func(id string, raw []byte) bool {
			r, err := decodeKey(id, raw)
			if err != nil || r.Account != c.Account {
				return true // as before: a record that does not decode is not listed
			}
			if len(out.Keys) == limit {
				out.Truncated = true
				return false
			}
			out.Keys = append(out.Keys, KeyListEntry{KeyId: r.ID, KeyArn: r.arn()})
			return true
		})
	})
	if err != nil {
		return nil, internal(err)
	}
	if out.Truncated {
		out.NextMarker = encodeMarker("keys", out.Keys[len(out.Keys)-1].KeyId)
	}
	return out, nil
}

// Markers are opaque to callers: the operation's name and the last key
// returned, base64url-encoded.
func encodeMarker(op, last string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(op + "\x00" + last))
}

func decodeMarker(op, marker string) (string, error) {
	if marker == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(marker)
	if err != nil {
		return "", newError(ErrInvalidMarker, "Invalid marker: %s", truncate(marker))
	}
	prefix, last, ok := strings.Cut(string(raw), "\x00")
	if !ok || prefix != op || last == "" {
		return "", newError(ErrInvalidMarker, "Invalid marker: %s", truncate(marker))
	}
	return last, nil
}

// UpdateKeyDescriptionInput is the UpdateKeyDescription request.
type UpdateKeyDescriptionInput struct {
	KeyId       string  `json:"KeyId"`
	Description *string `json:"Description"`
}

// Empty is the response of operations that return nothing.
type Empty struct{}

// UpdateKeyDescription replaces a key's description.
func (s *Service) UpdateKeyDescription(ctx context.Context, c *Caller, in *UpdateKeyDescriptionInput) (*Empty, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	if v.required("description", in.Description != nil) {
		v.length("description", *in.Description, 0, maxDescription)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	_, err := s.mutateKey(ctx, c, &opUpdateKeyDescription.Keys[0], in.KeyId, nil, func(r *keyRecord) error {
		if err := opUpdateKeyDescription.Keys[0].checkState(r); err != nil {
			return err
		}
		if err := checkCustomerManaged(r); err != nil {
			return err
		}
		r.Description = *in.Description
		return nil
	})
	return &Empty{}, err
}

// mutateKey resolves keyID for the caller and applies fn to its record
// durably. fn sees a private copy and may refuse with an error.
func (s *Service) mutateKey(ctx context.Context, c *Caller, k *KeyMember, keyID string, pc func(*keyRecord) *policy.Context, fn func(r *keyRecord) error) (*keyRecord, error) {
	return s.mutateKeyTx(ctx, c, k, keyID, pc, func(_ keystore.Tx, r *keyRecord) error { return fn(r) })
}

// mutateKeyTx is mutateKey for changes that read other records in the
// same transaction.
func (s *Service) mutateKeyTx(ctx context.Context, c *Caller, k *KeyMember, keyID string, pc func(*keyRecord) *policy.Context, fn func(tx keystore.Tx, r *keyRecord) error) (*keyRecord, error) {
	r, err := s.keyFor(ctx, c, k, keyID, pc)
	if err != nil {
		return nil, err
	}
	out, err := s.updateKey(ctx, r.ID, func(tx keystore.Tx, r *keyRecord) (*keyRecord, error) {
		if err := fn(tx, r); err != nil {
			return nil, err
		}
		return r, nil
	})
	if err != nil {
		return nil, internal(err)
	}
	return out, nil
}

// EnableKey sets a Disabled key to Enabled.
func (s *Service) EnableKey(ctx context.Context, c *Caller, in *KeyIDInput) (*Empty, error) {
	return s.setEnabled(ctx, c, in, true)
}

// DisableKey sets an Enabled key to Disabled.
func (s *Service) DisableKey(ctx context.Context, c *Caller, in *KeyIDInput) (*Empty, error) {
	return s.setEnabled(ctx, c, in, false)
}

func (s *Service) setEnabled(ctx context.Context, c *Caller, in *KeyIDInput, enable bool) (*Empty, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	if err := v.err(); err != nil {
		return nil, err
	}
	k := &opDisableKey.Keys[0]
	if enable {
		k = &opEnableKey.Keys[0]
	}
	_, err := s.mutateKey(ctx, c, k, in.KeyId, nil, func(r *keyRecord) error {
		if err := checkCustomerManaged(r); err != nil {
			return err
		}
		if err := k.checkState(r); err != nil {
			return err
		}
		if r.State == StateUnavailable {
			// The store is disconnected: the change applies when it connects.
			r.AvailableState = StateDisabled
			if enable {
				r.AvailableState = StateEnabled
			}
			return nil
		}
		if enable {
			r.State = StateEnabled
		} else {
			r.State = StateDisabled
		}
		return nil
	})
	return &Empty{}, err
}

// ScheduleKeyDeletionInput is the ScheduleKeyDeletion request.
type ScheduleKeyDeletionInput struct {
	KeyId               string `json:"KeyId"`
	PendingWindowInDays *int   `json:"PendingWindowInDays"`
}

// ScheduleKeyDeletionOutput is the ScheduleKeyDeletion response.
type ScheduleKeyDeletionOutput struct {
	KeyId               string     `json:"KeyId"`
	DeletionDate        *Timestamp `json:"DeletionDate,omitempty"` // none while PendingReplicaDeletion
	KeyState            string     `json:"KeyState"`
	PendingWindowInDays int        `json:"PendingWindowInDays"`
}

// ScheduleKeyDeletion starts a key's waiting period; when it passes the key,
// its material and its aliases are deleted. A multi-Region primary key
// that still has replicas is PendingReplicaDeletion instead, with no
// deletion date: its waiting period starts when the last replica is
// deleted (deleteReplicaTx), as AWS's does.
func (s *Service) ScheduleKeyDeletion(ctx context.Context, c *Caller, in *ScheduleKeyDeletionInput) (*ScheduleKeyDeletionOutput, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	days := 30
	if in.PendingWindowInDays != nil {
		days = *in.PendingWindowInDays
		v.rangeInt("pendingWindowInDays", days, 1, 365)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if days < 7 || days > 30 {
		return nil, newError(ErrValidation, "PendingWindowInDays must be between 7 and 30")
	}
	withWindow := func(r *keyRecord) *policy.Context {
		pc := s.requestContext(ctx, c, r)
		pc.Extra = map[string][]string{"kms:schedulekeydeletionpendingwindowindays": {strconv.Itoa(days)}}
		return pc
	}
	r, err := s.mutateKeyTx(ctx, c, &opScheduleKeyDeletion.Keys[0], in.KeyId, withWindow, func(tx keystore.Tx, r *keyRecord) error {
		if err := checkCustomerManaged(r); err != nil {
			return err
		}
		if err := opScheduleKeyDeletion.Keys[0].checkState(r); err != nil {
			return err
		}
		r.PendingWindowDays = days
		if !r.isReplica() && len(r.ReplicaRegions) > 0 {
			// Only replicas that exist hold the primary back (a store may
			// list a replica deleted before deletion forgot it: mrk.go).
			live, err := s.liveReplicas(tx, r)
			if err != nil {
				return err
			}
			if len(live) > 0 {
				r.State, r.DeletionDate = StatePendingReplicaDeletion, time.Time{}
				return nil
			}
		}
		r.State = StatePendingDeletion
		r.DeletionDate = s.now().UTC().Add(time.Duration(days) * 24 * time.Hour)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := &ScheduleKeyDeletionOutput{KeyId: r.arn(), KeyState: r.State, PendingWindowInDays: days}
	if r.State == StatePendingDeletion {
		out.DeletionDate = ts(r.DeletionDate)
	}
	return out, nil
}

// CancelKeyDeletionOutput is the CancelKeyDeletion response.
type CancelKeyDeletionOutput struct {
	KeyId string `json:"KeyId"`
}

// CancelKeyDeletion returns a key pending deletion (or pending replica
// deletion) to Disabled, as AWS does.
func (s *Service) CancelKeyDeletion(ctx context.Context, c *Caller, in *KeyIDInput) (*CancelKeyDeletionOutput, error) {
	var v validator
	v.keyID("keyId", in.KeyId)
	if err := v.err(); err != nil {
		return nil, err
	}
	r, err := s.mutateKeyTx(ctx, c, &opCancelKeyDeletion.Keys[0], in.KeyId, nil, func(tx keystore.Tx, r *keyRecord) error {
		if err := opCancelKeyDeletion.Keys[0].checkState(r); err != nil {
			return err
		}
		r.State = StateDisabled
		r.DeletionDate = time.Time{}
		r.PendingWindowDays = 0
		r.AvailableState = ""
		if r.CustomKeyStoreID != "" {
			ks, err := getKeyStoreTx(tx, r.Account, r.CustomKeyStoreID)
			if err != nil {
				return err
			}
			if ks == nil || ks.State != StoreConnected {
				r.setStoreConnected(false)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &CancelKeyDeletionOutput{KeyId: r.arn()}, nil
}

// newKeyRecord is the record CreateKey starts from for a customer managed
// key made by KMS, Enabled, before material, tags and the options of the
// request (and BulkCreateKeys's records, which are exactly that).
func (s *Service) newKeyRecord(id, account string, now time.Time, description, usage, spec, policyDoc string) *keyRecord {
	return &keyRecord{
		ID:          id,
		Account:     account,
		Region:      s.region,
		Created:     now,
		Description: description,
		Usage:       usage,
		Spec:        spec,
		Origin:      OriginAWSKMS,
		Manager:     ManagerCustomer,
		State:       StateEnabled,
		Policy:      policyDoc,
	}
}
