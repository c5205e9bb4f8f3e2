// Package kms is Coffer's key management service: every AWS KMS operation
// as a Go method on Service, the key-state machine, aliases, tags, key
// policies and rotation. It knows nothing of HTTP; the server package
// decodes requests into the *Input types here and encodes the *Output types.
//
// State lives in a keystore.Store; key material is stored only wrapped under
// the hsm root and unwrapped on demand into a bounded cache. Every method
// that changes state returns only after the change is durable.
package kms

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coffer-kms/coffer/engine"
	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/policy"
)

// Config configures a Service. Region, Account, Store and Root are required.
type Config struct {
	Region  string
	Account string // 12 digits: the account that owns keys by default
	Store   keystore.Store
	Root    hsm.Backend
	// Now is the clock; tests inject one to drive rotation and deletion.
	// Default time.Now.
	Now func() time.Time
	// Random is the entropy source for key material, data keys and
	// GenerateRandom. Default crypto/rand.Reader.
	Random io.Reader
	// Cache bounds what the service keeps in memory (cache.go): each cache
	// in entries and every entry in age, on the Now clock.
	Cache CacheConfig
	// NodeID names this node in a cluster of nodes on one store
	// (PostgreSQL): the audit outbox entries of its calls are its own,
	// recovered by it at start and taken over by another node only once
	// stale (outbox.go). Letters, digits, '.', '_' and '-', at most 64.
	// "": the store has one node (bbolt), whose entries are nobody's.
	NodeID string
	// OutboxTakeover is how old another node's outbox entry must be, and
	// how long ago that node last showed life in the store, before this
	// node takes it over; longer than any live call keeps an entry.
	// Default 30 s. Used only with NodeID.
	OutboxTakeover time.Duration
}

// Caller is the authenticated principal making a request.
type Caller struct {
	ARN         string // arn:aws:iam::<account>:user/<name> or :root, or a role session's arn:aws:sts::…:assumed-role/<role>/<session>
	Account     string
	AccessKeyID string
	// RoleARN is, for a role session, the role: its identity policies
	// apply and it is aws:PrincipalArn. roleID is the role's unique ID, so
	// that a role deleted and created again under the same name does not
	// revive the old role's sessions.
	RoleARN string
	roleID  string
	// userID is an IAM user's unique ID (AIDA…), aws:userid.
	userID string
	// viaService is kms:ViaService: the service the caller acts for, set
	// only by ActAs once the caller is shown to be allowed to act for it.
	viaService string
	// SourceIP and the transport, for aws:SourceIp and aws:SecureTransport.
	SourceIP        netip.Addr
	SecureTransport bool
	HasTransport    bool
}

// Service implements the KMS operations.
type Service struct {
	region, account string
	store           keystore.Store
	root            hsm.Backend
	ks              hsm.KeyStoreBackend // custom key stores; nil without an HSM
	now             func() time.Time
	random          io.Reader
	node            string        // Config.NodeID
	takeover        time.Duration // Config.OutboxTakeover

	// writeMu serialises read-modify-write of records so that the cache is
	// updated in commit order. Writes of one key record (updateKey,
	// putNewKey) take it shared and that key's stripe of keyMu (lockKey):
	// two of one key are in commit order, writes of different keys run in
	// parallel (on PostgreSQL each is a SERIALIZABLE transaction, retried on
	// a conflict; bbolt runs them one at a time anyway). Every other writer
	// takes it exclusive, so it excludes them all, as before.
	writeMu sync.RWMutex
	keyMu   [64]sync.Mutex // by the xxhash of the key ID

	cache *caches // every cache, behind one invalidation entry point
	maint lastMaintenance
	usage usage
	last  lastUsage   // GetKeyLastUsage (lastusage.go)
	drain outboxDrain // request IDs whose outbox entries may go

	onAccessKeyDeleted atomic.Pointer[func(string)]

	// keyIdx is set once the Region's key indexes are known built (keyindex.go).
	keyIdx atomic.Bool
	// acctIdx is set once its keys-by-account index is known built too.
	acctIdx atomic.Bool

	tokens tokenKeys // STS session tokens

	cacheCfg CacheConfig
	regions  *regionGroup // the Services of every served Region (regions.go)
}

var accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// New returns a Service over cfg.Store and cfg.Root. It upgrades a store
// written by an older release to the current schema, and fails when the
// store's record key cannot be unwrapped or the store is newer than it knows.
func New(cfg Config) (*Service, error) {
	if !accountPattern.MatchString(cfg.Account) {
		return nil, fmt.Errorf("kms: account %q is not 12 digits", cfg.Account)
	}
	if !regionPattern.MatchString(cfg.Region) {
		return nil, fmt.Errorf("kms: region %q is not a region name", cfg.Region)
	}
	if cfg.Store == nil || cfg.Root == nil {
		return nil, errors.New("kms: Store and Root are required")
	}
	if cfg.NodeID != "" && !nodeIDPattern.MatchString(cfg.NodeID) {
		return nil, fmt.Errorf("kms: node ID %q is not 1 to 64 letters, digits, '.', '_' or '-'", cfg.NodeID)
	}
	s := &Service{
		region:  cfg.Region,
		account: cfg.Account,
		store:   cfg.Store,
		root:    cfg.Root,
		ks:      hsm.KeyStoreOf(cfg.Root),
		now:     cfg.Now,
		random:  cfg.Random,
		node:    cfg.NodeID,
	}
	s.takeover = cfg.OutboxTakeover
	if s.takeover <= 0 {
		s.takeover = 30 * time.Second
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.random == nil {
		s.random = rand.Reader
	}
	s.cacheCfg = cfg.Cache
	s.cache = newCaches(cfg.Cache, s.now)
	s.regions = &regionGroup{m: map[string]*Service{cfg.Region: s}}
	s.last.started = s.now().UTC()
	// From here on kms reads and writes authenticated, per-Region records
	// (record.go, schema.go); a schema-1 store is upgraded first.
	recs, err := openRecords(context.Background(), cfg.Store, cfg.Root, cfg.Region, s.random)
	if err != nil {
		return nil, err
	}
	s.store = recs
	return s, nil
}

// Region and Account return the service's configuration.
func (s *Service) Region() string  { return s.region }
func (s *Service) Account() string { return s.account }

// Close drops and zeroes every cached key version and secret.
func (s *Service) Close() error {
	s.FlushUsage(context.Background())
	s.FlushOutbox(context.Background())
	s.cache.dropAll()
	s.tokens.mu.Lock()
	s.tokens.key.Zero()
	s.tokens.key = nil
	s.tokens.mu.Unlock()
	return nil
}

// Store buckets.
const (
	bucketKeys       = "keys"
	bucketAliases    = "aliases"
	bucketPrincipals = "principals"
	bucketAccessKeys = "access-keys"
	bucketMeta       = "meta"
	bucketGrants     = "grants"
	bucketUsage      = "usage"
	bucketKeyStores  = "custom-key-stores"
	bucketOutbox     = "audit-outbox"
	bucketImports    = "import-tokens"
	bucketLastUsage  = "key-last-usage"
)

// keyRecord is a KMS key as stored. Snapshots in the cache are never
// mutated: updates copy, change and replace.
type keyRecord struct {
	ID                 string       `json:"id"`
	Account            string       `json:"account"`
	Region             string       `json:"region"`
	Created            time.Time    `json:"created"`
	Description        string       `json:"description"`
	Usage              string       `json:"usage"`
	Spec               string       `json:"spec"`
	Origin             string       `json:"origin"`
	Manager            string       `json:"manager"`
	State              string       `json:"state"`
	DeletionDate       time.Time    `json:"deletionDate,omitzero"`
	PendingWindowDays  int          `json:"pendingWindowDays,omitempty"`
	Policy             string       `json:"policy"`
	Tags               []Tag        `json:"tags,omitempty"`
	Versions           []keyVersion `json:"versions"`
	RotationEnabled    bool         `json:"rotationEnabled,omitempty"`
	RotationPeriodDays int          `json:"rotationPeriodDays,omitempty"`
	NextRotation       time.Time    `json:"nextRotation,omitzero"`
	OnDemandRotations  int          `json:"onDemandRotations,omitempty"`
	LastOnDemand       time.Time    `json:"lastOnDemand,omitzero"`
	// Keys in a custom key store: the store, its cluster, and while the
	// store is disconnected (State Unavailable) the state to return to.
	CustomKeyStoreID string `json:"customKeyStoreId,omitempty"`
	ClusterID        string `json:"clusterId,omitempty"`
	AvailableState   string `json:"availableState,omitempty"`
	// Keys with imported material (Origin EXTERNAL, import.go): the
	// material imported for an on-demand rotation that RotateKeyOnDemand has
	// not made current yet (AWS's PENDING_ROTATION), wrapped for version
	// index len(Versions).
	PendingMaterial *keyVersion `json:"pendingMaterial,omitempty"`
	// ExpirationModel and ValidTo are read from records written before
	// expiry was kept per material (keyVersion), and moved to the current
	// version when the record is decoded (upgradeImportExpiry); they are
	// never written.
	ExpirationModel string    `json:"expirationModel,omitempty"`
	ValidTo         time.Time `json:"validTo,omitzero"`
	// Multi-Region keys (mrk.go): the Region of the primary key and those
	// of its replicas, the same in every record of the family.
	PrimaryRegion  string   `json:"primaryRegion,omitempty"`
	ReplicaRegions []string `json:"replicaRegions,omitempty"`

	// Derived by prepare before a record is shared; never stored.
	arnCache string
	compiled *policy.Policy
}

// keyVersion is one generation of a key's material, wrapped under the root.
type keyVersion struct {
	MaterialID   string    `json:"materialId"` // 64 hex characters
	Wrapped      []byte    `json:"wrapped"`
	Created      time.Time `json:"created"`
	RotationType string    `json:"rotationType,omitempty"` // "" for the original material
	// HSMKey names the HSM object of a custom-key-store key, whose
	// material never leaves the HSM; Wrapped is empty then.
	HSMKey string `json:"hsmKey,omitempty"`
	// Imported material: its KeyMaterialDescription and when it was
	// imported. A deleted or expired import keeps its MaterialID with an
	// empty Wrapped, so that only the same material may come back.
	Description string    `json:"description,omitempty"`
	Imported    time.Time `json:"imported,omitzero"`
	// How this imported material expires, and when: AWS keeps both per
	// material (RotationsListEntry); cleared when the material is deleted.
	ExpirationModel string    `json:"expirationModel,omitempty"`
	ValidTo         time.Time `json:"validTo,omitzero"`
}

func (r *keyRecord) arn() string {
	if r.arnCache != "" {
		return r.arnCache
	}
	return "arn:aws:kms:" + r.Region + ":" + r.Account + ":key/" + r.ID
}

func (r *keyRecord) clone() *keyRecord {
	c := *r
	c.arnCache, c.compiled = "", nil
	c.Tags = append([]Tag(nil), r.Tags...)
	c.Versions = append([]keyVersion(nil), r.Versions...)
	if r.PendingMaterial != nil {
		p := *r.PendingMaterial
		c.PendingMaterial = &p
	}
	c.ReplicaRegions = append([]string(nil), r.ReplicaRegions...)
	return &c
}

func (r *keyRecord) metadata() *KeyMetadata {
	m := &KeyMetadata{
		AWSAccountId:          r.Account,
		KeyId:                 r.ID,
		Arn:                   r.arn(),
		CreationDate:          ts(r.Created),
		Enabled:               r.State == StateEnabled,
		Description:           r.Description,
		KeyUsage:              r.Usage,
		KeyState:              r.State,
		Origin:                r.Origin,
		CustomKeyStoreId:      r.CustomKeyStoreID,
		CloudHsmClusterId:     r.ClusterID,
		KeyManager:            r.Manager,
		CustomerMasterKeySpec: r.Spec,
		KeySpec:               r.Spec,
	}
	// The algorithm lists AWS reports for the key's spec and usage
	// (reference §1.2); a list the usage does not have is left out.
	if spec, ok := engine.LookupSpec(r.Spec); ok {
		if algs, ok := spec.Algorithms(r.Usage); ok {
			m.EncryptionAlgorithms = algs.Encryption
			m.SigningAlgorithms = algs.Signing
			m.KeyAgreementAlgorithms = algs.KeyAgreement
			m.MacAlgorithms = algs.MAC
		}
	}
	switch r.State {
	case StatePendingDeletion:
		// The date only: botocore's KeyMetadata.PendingDeletionWindowInDays
		// "is present only when the KeyState of the KMS key is
		// PendingReplicaDeletion".
		m.DeletionDate = ts(r.DeletionDate)
	case StatePendingReplicaDeletion:
		// The waiting period, not yet a date: it starts when the last
		// replica is deleted (AWS's KeyMetadata.PendingDeletionWindowInDays).
		m.PendingDeletionWindowInDays = r.PendingWindowDays
	}
	if n := len(r.Versions); n > 0 {
		m.CurrentKeyMaterialId = r.Versions[n-1].MaterialID
	}
	if r.Origin == OriginExternal {
		model, validTo := r.keyExpiry()
		m.ExpirationModel, m.ValidTo = model, ts(validTo)
	}
	m.MultiRegion, m.MultiRegionConfiguration = r.multiRegion()
	return m
}

// materialAAD binds wrapped material to its key and version.
func materialAAD(arn string, version int) []byte {
	return fmt.Appendf(nil, "%s|%s|%d", labelKeyMaterial, arn, version)
}

// loadKey returns the record of key id, from the cache or the store; nil
// when no such key exists.
func (s *Service) loadKey(ctx context.Context, id string) (*keyRecord, error) {
	if r, ok := s.cache.keys.getAt(id, s.requestTime(ctx)); ok {
		return r, nil
	}
	gen := s.cache.keys.generation()
	var r *keyRecord
	err := s.store.View(ctx, func(tx keystore.Tx) error {
		var err error
		r, err = getKeyTx(tx, id)
		return err
	})
	if err != nil || r == nil {
		return nil, err
	}
	// A writer that got there first has the newer snapshot; a change
	// since gen makes this one possibly stale, so it is not kept.
	return s.cache.keys.fill(id, r, gen), nil
}

func getKeyTx(tx keystore.Tx, id string) (*keyRecord, error) {
	raw, err := tx.Get(bucketKeys, id)
	if err != nil || raw == nil {
		return nil, err
	}
	return decodeKey(id, raw)
}

// decodeKey decodes the stored record of key id, read by Get or passed by
// a scan of bucketKeys.
func decodeKey(id string, raw []byte) (*keyRecord, error) {
	r := new(keyRecord)
	if !decodeKeyJSON(raw, r) { // what json.Marshal writes, in one pass (keyjson.go)
		*r = keyRecord{}
		if err := json.Unmarshal(raw, r); err != nil {
			return nil, fmt.Errorf("kms: corrupt record of key %s: %w", id, err)
		}
	}
	r.upgradeImportExpiry()
	return r.prepare(), nil
}

// deleteKeyTx deletes key r's record with its index entries: the one way a
// key record leaves the store, as putKeyTx is the one way it enters.
func deleteKeyTx(tx keystore.Tx, r *keyRecord) error {
	if err := unindexKeyTx(tx, r); err != nil { // keyindex.go
		return err
	}
	return tx.Delete(bucketKeys, r.ID)
}

func putKeyTx(tx keystore.Tx, r *keyRecord) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := tx.Put(bucketKeys, r.ID, raw); err != nil {
		return err
	}
	return indexKeyTx(tx, r) // keyindex.go
}

// updateKey applies fn to a copy of key id's record inside one store
// transaction and, once it is durable, publishes the new snapshot. fn may
// also touch other records through tx. A nil result from fn deletes the key.
func (s *Service) updateKey(ctx context.Context, id string, fn func(tx keystore.Tx, r *keyRecord) (*keyRecord, error)) (*keyRecord, error) {
	defer s.lockKey(id)()
	var out *keyRecord
	err := s.store.Update(ctx, func(tx keystore.Tx) error {
		cur, err := getKeyTx(tx, id)
		if err != nil {
			return err
		}
		if cur == nil {
			return errKeyGone
		}
		next, err := fn(tx, cur.clone())
		if err != nil {
			return err
		}
		out = next
		if next == nil {
			return deleteKeyTx(tx, cur)
		}
		next.prepare()
		return putKeyTx(tx, next)
	})
	if err == errKeyGone {
		// Another node deleted it: whatever this one cached of the key is
		// stale, and is dropped now rather than when the change feed says
		// so (or, without one, when it ages out).
		s.cache.publishKey(id, nil)
	}
	if err != nil {
		return nil, err
	}
	s.cache.publishKey(id, out)
	return out, nil
}

// errKeyGone reports a key deleted between resolution and update.
var errKeyGone = newError(ErrNotFound, "Key does not exist")

// material returns version v of r's material, unwrapping it through the
// root on a cache miss. The caller must pass the entry to
// s.cache.materials.release when done with the material.
//
// Concurrent misses of one version make one unwrap: the first caller leads
// and fills the cache before it lets the others look again, so a cold key
// costs exactly one root call however many requests arrive at once.
func (s *Service) material(ctx context.Context, r *keyRecord, v int) (*engine.Key, *materialEntry, error) {
	if m, e, ok := s.cache.materials.getAt(r.ID, v, s.requestTime(ctx)); ok {
		return m, e, nil
	}
	if v < 0 || v >= len(r.Versions) {
		return nil, nil, invalidCiphertext
	}
	k := versionRef{r.ID, v}
	fl := &s.cache.flights
	for {
		fl.mu.Lock()
		f, follow := fl.m[k]
		if !follow {
			f = &unwrapFlight{done: make(chan struct{})}
			fl.m[k] = f
		}
		fl.mu.Unlock()
		if !follow {
			m, e, err := s.unwrapMaterial(ctx, r, v)
			f.err = err
			fl.mu.Lock()
			delete(fl.m, k)
			fl.mu.Unlock()
			close(f.done)
			return m, e, err
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, nil, newError(ErrDependencyTimeout, "The system timed out while trying to fulfill the request.")
		}
		if m, e, ok := s.cache.materials.get(r.ID, v); ok {
			return m, e, nil
		}
		if f.err != nil && !errors.Is(f.err, ErrDependencyTimeout) {
			return nil, nil, f.err // the root refused: so it would again
		}
		// The leader ran out of time, or the entry is already gone: lead anew.
	}
}

// unwrapMaterial unwraps version v of r through the root and caches it.
func (s *Service) unwrapMaterial(ctx context.Context, r *keyRecord, v int) (*engine.Key, *materialEntry, error) {
	if len(r.Versions[v].Wrapped) == 0 {
		// Imported material deleted since the key's state was checked.
		return nil, nil, newError(ErrInvalidState, "%s is pending import.", r.arn())
	}
	pt, err := s.root.Unwrap(ctx, r.Versions[v].Wrapped, materialAAD(r.arn(), v))
	if err != nil {
		return nil, nil, hsmFailure(err, r.arn())
	}
	key, err := engine.ParseKey(r.Spec, pt) // a copy: the unwrapped bytes go now
	clear(pt)
	if err != nil {
		return nil, nil, internal(fmt.Errorf("kms: the material of %s version %d: %w", r.arn(), v, err))
	}
	m, e := s.cache.materials.put(r.ID, v, key)
	return m, e, nil
}

// hsmFailure is the KMS error for a failed call to the root or to a custom
// key store's HSM, as package hsm's table has it; what names the key or
// store the call was for. hsm.ErrUnwrap is the caller's to judge: stored
// material that does not authenticate is an internal failure, a caller's
// ciphertext that does not is not (see storeFailure).
func hsmFailure(err error, what string) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, hsm.ErrQueueFull):
		return newError(ErrDependencyTimeout, "The system timed out while trying to fulfill the request.")
	case errors.Is(err, hsm.ErrReconnecting):
		// A token that went away and is being reconnected is a temporary
		// dependency failure (503, retried by the SDKs), the same answer
		// for the whole outage; KeyUnavailableException stays for a root
		// that will not come back by itself (closed, PIN refused).
		return newError(ErrDependencyTimeout, "The HSM is reconnecting; retry the request.")
	case errors.Is(err, hsm.ErrUnavailable), errors.Is(err, hsm.ErrLogin), errors.Is(err, hsm.ErrClosed):
		return newError(ErrKeyUnavailable, "The HSM is unavailable for %s.", what)
	default:
		return newError(ErrInternal, "The HSM failed for %s.", what)
	}
}

// randomBytes reads n bytes of entropy.
func (s *Service) randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if err := s.fillRandom(b); err != nil {
		return nil, err
	}
	return b, nil
}

// fillRandom fills b from the service's entropy source.
func (s *Service) fillRandom(b []byte) error {
	if _, err := io.ReadFull(s.random, b); err != nil {
		return newError(ErrInternal, "Entropy source failed.")
	}
	return nil
}
