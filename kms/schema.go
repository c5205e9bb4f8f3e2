package kms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// The store's schema. Version 1 (every release before records were
// authenticated; no version entry) kept plain JSON under the names kms
// uses; version 2 seals every record (record.go) and keys per-Region
// records by Region (bucketScopes). New upgrades a version-1 store to 2 in
// one transaction and refuses a store newer than it knows.
const schemaVersion = 2

// Meta entries that bootstrap records; records does not reach them.
const (
	// metaRecordKey is the record key wrapped under the root with
	// []byte(labelRecordKey); the root's AEAD authenticates it.
	metaRecordKey = "record-mac-key"
	// metaSchemaVersion is the schema version in decimal, sealed as a
	// record of version versionOfVersion (sealVersion), so that every
	// release, older or newer, can authenticate it before it knows it.
	metaSchemaVersion = "schema-version"
	versionOfVersion  = 0
)

func (k *recordKey) sealVersion(v int) []byte {
	return k.sealAt(versionOfVersion, bucketMeta, metaSchemaVersion, []byte(strconv.Itoa(v)))
}

// scope says whether a bucket's records belong to a Region, and so where
// the Region goes in their store keys.
type scope uint8

const (
	// scopeGlobal: stored under the name kms uses (IAM-like, or the store's own).
	scopeGlobal scope = iota
	// scopeRegion: "<region>/" + name, for records named by key ID.
	scopeRegion
	// scopeAccountRegion: a name "<account>/<rest>" is stored as
	// "<account>/<region>/<rest>", for records an account names.
	scopeAccountRegion
)

// bucketScopes lists every bucket kms uses; the version-1 upgrade moves
// exactly these.
//
//	bucket             schema 1                     schema 2
//	keys               <key id>                     <region>/<key id>
//	grants             <key id>/<grant id>          <region>/<key id>/<grant id>
//	usage              <account>|<op>|<key arn>     <region>/<account>|<op>|<key arn>
//	aliases            <account>/<alias name>       <account>/<region>/<alias name>
//	custom-key-stores  <account>/<store id>         <account>/<region>/<store id>
//	principals, access-keys, meta                   unchanged (global, as IAM)
var bucketScopes = map[string]scope{
	bucketKeys:          scopeRegion,
	bucketKeyPrincipals: scopeRegion, // schema 2 on: <region>/<key id>
	// Grant indexes (grants.go), schema 2 on, built once per Region:
	bucketGrantsByGrantee:  scopeRegion, // <region>/<key id>/<grantee>|<grant id>
	bucketGrantsByRetiring: scopeRegion, // <region>/<retiring principal>|<key id>/<grant id>
	bucketGrantCounts:      scopeRegion, // <region>/<key id>
	bucketGrants:           scopeRegion,
	bucketUsage:            scopeRegion,
	bucketAliases:          scopeAccountRegion,
	bucketKeyStores:        scopeAccountRegion,
	bucketPrincipals:       scopeGlobal,
	bucketAccessKeys:       scopeGlobal,
	bucketMeta:             scopeGlobal,
	bucketOutbox:           scopeGlobal, // by request ID, which is unique across Regions
	bucketImports:          scopeRegion, // <key id>/<token name>
	bucketLastUsage:        scopeRegion, // <key id>
	// Key indexes (keyindex.go), built once per Region:
	bucketKeysDue:       scopeRegion,        // <region>/<due at>|<key id>
	bucketKeyDueOf:      scopeRegion,        // <region>/<key id>
	bucketKeysByStore:   scopeRegion,        // <region>/<store id>/<key id>
	bucketAliasesByKey:  scopeAccountRegion, // <account>/<region>/<key id>/<alias name>
	bucketKeysByAccount: scopeAccountRegion, // <account>/<region>/<key id>
}

// bucketKeyPrincipals holds, by key ID, the unique IDs of the IAM users
// and roles the key's policy names (authz.go, issue 19.6).
const bucketKeyPrincipals = "key-principals"

// placer maps the name kms gives a record (or a prefix of names) to its
// store key.
type placer func(bucket, name string) (string, error)

// inRegion places records of region.
func inRegion(region string) placer {
	return func(bucket, name string) (string, error) {
		sc, ok := bucketScopes[bucket]
		if !ok {
			return "", fmt.Errorf("kms: internal error: bucket %q has no scope", bucket)
		}
		switch sc {
		case scopeRegion:
			return region + "/" + name, nil
		case scopeAccountRegion:
			account, rest, ok := strings.Cut(name, "/")
			if !ok {
				return "", fmt.Errorf("kms: internal error: %s name %q has no account", bucket, name)
			}
			return account + "/" + region + "/" + rest, nil
		}
		return name, nil
	}
}

// asStored takes names as store keys: for work across every Region (Rewrap).
func asStored(_, name string) (string, error) { return name, nil }

// openRecords returns the view of store kms works through, for region. On
// a store at schema 1, or a fresh one, it first makes a record key and
// upgrades (or initialises) the store to schema 2.
func openRecords(ctx context.Context, store keystore.Store, root hsm.Backend, region string, random io.Reader) (*records, error) {
	for range 3 {
		wrapped, version, err := readSchemaMeta(ctx, store)
		if err != nil {
			return nil, err
		}
		if wrapped != nil {
			key, err := unwrapRecordKey(ctx, root, wrapped, version)
			if err != nil {
				return nil, err
			}
			return &records{store: store, key: key, place: inRegion(region)}, nil
		}
		if version != nil {
			return nil, errors.New("kms: the store has a schema version but no record key: it was edited or damaged")
		}
		// Schema 1, or empty. The key is made and wrapped before the
		// transaction, which may run more than once.
		fresh := make([]byte, recordKeySize)
		if _, err := io.ReadFull(random, fresh); err != nil {
			return nil, fmt.Errorf("kms: make the record key: %w", err)
		}
		w, err := root.Wrap(ctx, fresh, []byte(labelRecordKey))
		if err != nil {
			clear(fresh)
			return nil, fmt.Errorf("kms: wrap the record key: %w", err)
		}
		key, _ := newRecordKey(fresh)
		err = store.Update(ctx, func(tx keystore.Tx) error {
			if cur, err := tx.Get(bucketMeta, metaRecordKey); err != nil || cur != nil {
				if err == nil {
					err = errRecordKeyRace
				}
				return err
			}
			if err := upgradeV1(tx, key, region); err != nil {
				return err
			}
			if err := tx.Put(bucketMeta, metaRecordKey, w); err != nil {
				return err
			}
			return tx.Put(bucketMeta, metaSchemaVersion, key.sealVersion(schemaVersion))
		})
		if errors.Is(err, errRecordKeyRace) {
			clear(fresh)
			continue // another node initialised the store: use its key
		}
		if err != nil {
			clear(fresh)
			return nil, fmt.Errorf("kms: upgrade the store to schema %d: %w", schemaVersion, err)
		}
		return &records{store: store, key: key, place: inRegion(region)}, nil
	}
	return nil, errors.New("kms: the store's record key keeps changing")
}

// ErrOtherRoot is New's answer when the root of trust cannot unwrap the
// store's record key (hsm.ErrUnwrap): the store was initialised under
// another root. A node refuses to serve rather than write records and key
// material that no other node — nor this one with its right root — could
// read. (The root's AEAD cannot tell another root from a damaged
// record-mac-key entry; another root is by far the likelier.) Failures to
// reach the root (an HSM down) are reported as they are.
var ErrOtherRoot = errors.New("the store's records were sealed under another root of trust: every node must use the same root key file and passphrase, or the same PKCS#11 token")

var errRecordKeyRace = errors.New("kms: record key made concurrently")

// readSchemaMeta returns the raw meta entries that bootstrap records.
func readSchemaMeta(ctx context.Context, store keystore.Store) (wrapped, version []byte, err error) {
	err = store.View(ctx, func(tx keystore.Tx) error {
		if wrapped, err = tx.Get(bucketMeta, metaRecordKey); err != nil {
			return err
		}
		version, err = tx.Get(bucketMeta, metaSchemaVersion)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("kms: read the store's schema: %w", err)
	}
	return wrapped, version, nil
}

// unwrapRecordKey opens the record key and, with it, the schema version,
// which must be the one this release writes. Any failure is fatal: kms
// never serves records it cannot authenticate.
func unwrapRecordKey(ctx context.Context, root hsm.Backend, wrapped, version []byte) (*recordKey, error) {
	raw, err := root.Unwrap(ctx, wrapped, []byte(labelRecordKey))
	if errors.Is(err, hsm.ErrUnwrap) {
		return nil, fmt.Errorf("kms: unwrap the record key: %w", ErrOtherRoot)
	}
	if err != nil {
		return nil, fmt.Errorf("kms: unwrap the record key: %w", err)
	}
	key, err := newRecordKey(raw)
	if err != nil {
		clear(raw)
		return nil, err
	}
	if version == nil {
		return nil, errors.New("kms: the store has a record key but no schema version: it was edited or damaged")
	}
	v, err := key.openAt(versionOfVersion, bucketMeta, metaSchemaVersion, version)
	if err != nil {
		return nil, errors.New("kms: the store's schema version does not authenticate under its record key: it was edited, or comes from another data dir")
	}
	n, err := strconv.Atoi(string(v))
	switch {
	case err != nil || n < schemaVersion:
		return nil, fmt.Errorf("kms: the store's schema version %q is not one this release knows", v)
	case n > schemaVersion:
		return nil, fmt.Errorf("kms: the store is at schema %d, newer than this release knows (%d): run a newer Coffer", n, schemaVersion)
	}
	return key, nil
}

// upgradeV1 moves every record of a schema-1 store to its schema-2 key,
// sealed. It accepts only what schema 1 holds — JSON records, and in meta
// the bootstrap marker and the session-token key — so that a schema-2
// store stripped of its record key and version is refused, not re-sealed
// as found. Every record is held in memory for the length of the upgrade.
func upgradeV1(tx keystore.Tx, key *recordKey, region string) error {
	place := inRegion(region)
	for _, bucket := range []string{bucketKeys, bucketGrants, bucketUsage, bucketAliases, bucketKeyStores, bucketPrincipals, bucketAccessKeys, bucketMeta} {
		type entry struct {
			name  string
			value []byte
		}
		var entries []entry
		if err := tx.Scan(bucket, "", "", func(k string, v []byte) bool {
			entries = append(entries, entry{k, v})
			return true
		}); err != nil {
			return err
		}
		for _, e := range entries {
			if err := checkV1(bucket, e.name, e.value, region); err != nil {
				return err
			}
		}
		for _, e := range entries {
			if err := tx.Delete(bucket, e.name); err != nil {
				return err
			}
		}
		for _, e := range entries {
			k, err := place(bucket, e.name)
			if err != nil {
				return err
			}
			if err := tx.Put(bucket, k, key.seal(bucket, k, e.value)); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkV1 refuses what schema 1 could not have written.
func checkV1(bucket, name string, value []byte, region string) error {
	bad := func(why string) error {
		return fmt.Errorf("kms: %s/%q is not a schema-1 record (%s); the store is not upgraded", bucket, name, why)
	}
	if bucket == bucketMeta {
		switch name {
		case "bootstrapped":
			if !strings.HasPrefix(string(value), "arn:") {
				return bad("not an ARN")
			}
		case tokenKeyMeta: // wrapped under the root, which authenticates it
		default:
			return bad("unknown meta entry")
		}
		return nil
	}
	if !json.Valid(value) {
		return bad("not JSON")
	}
	if bucket == bucketKeys {
		var probe struct {
			ID     string `json:"id"`
			Region string `json:"region"`
		}
		if err := json.Unmarshal(value, &probe); err != nil || probe.ID != name {
			return bad("not a key record")
		}
		if probe.Region != region {
			return fmt.Errorf("kms: key %s is in Region %s, but the service is configured for %s: start it in %[2]s to upgrade the store", name, probe.Region, region)
		}
	}
	return nil
}
