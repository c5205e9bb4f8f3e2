package kms

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// schema1Fixture is kms/testdata/schema1/fixture.json (see make.go there).
type schema1Fixture struct {
	Region, Account                    string
	Key, Alias, Description, Policy    string
	Tags                               []Tag
	GrantID, GrantName, Grantee        string
	Ciphertext, Plaintext              string
	EncryptionContext                  map[string]string
	Disabled, Pending                  string
	User, AccessKeyID, SecretAccessKey string
	AdminAccessKeyID                   string
	Role                               string
}

// openFixture copies the schema-1 data dir to a temporary one and opens
// its store and root there.
func openFixture(t *testing.T) (*schema1Fixture, *keystore.Bolt, *hsm.Software) {
	t.Helper()
	src := filepath.Join("testdata", "schema1")
	raw, err := os.ReadFile(filepath.Join(src, "fixture.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := new(schema1Fixture)
	if err := json.Unmarshal(raw, f); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"coffer.db", "root.key"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{Path: filepath.Join(dir, "root.key")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	store, err := keystore.OpenBolt(filepath.Join(dir, "coffer.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return f, store, root
}

func openService(t *testing.T, region string, store keystore.Store, root hsm.Backend) *Service {
	t.Helper()
	s, err := New(Config{Region: region, Account: "111122223333", Store: store, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var rootCaller = &Caller{ARN: "arn:aws:iam::111122223333:root", Account: "111122223333"}

// dump returns every entry of every bucket kms uses, as stored.
func dump(t *testing.T, store keystore.Store) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	err := store.View(context.Background(), func(tx keystore.Tx) error {
		for b := range bucketScopes {
			out[b] = map[string]string{}
			if err := tx.Scan(b, "", "", func(k string, v []byte) bool { out[b][k] = string(v); return true }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// storedVersion reads and verifies the schema version as stored.
func storedVersion(t *testing.T, store keystore.Store, root hsm.Backend) string {
	t.Helper()
	wrapped, version, err := readSchemaMeta(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	key, err := unwrapRecordKey(context.Background(), root, wrapped, version)
	if err != nil {
		t.Fatal(err)
	}
	v, err := key.openAt(versionOfVersion, bucketMeta, metaSchemaVersion, version)
	if err != nil {
		t.Fatal(err)
	}
	return string(v)
}

// TestSchema1Upgrade opens a data dir written by the release before
// schema 2 and checks that everything in it survived the upgrade.
func TestSchema1Upgrade(t *testing.T) {
	f, store, root := openFixture(t)
	ctx := context.Background()
	before := dump(t, store)
	if _, ok := before[bucketKeys][f.Key]; !ok {
		t.Fatalf("the fixture is not at schema 1: keys bucket %v", slices.Collect(maps.Keys(before[bucketKeys])))
	}
	s := openService(t, f.Region, store, root)

	for id, want := range map[string]string{f.Key: StateEnabled, f.Disabled: StateDisabled, f.Pending: StatePendingDeletion} {
		d, err := s.DescribeKey(ctx, rootCaller, &KeyIDInput{KeyId: id})
		if err != nil {
			t.Fatalf("DescribeKey %s: %v", id, err)
		}
		if d.KeyMetadata.KeyState != want || d.KeyMetadata.Arn != "arn:aws:kms:"+f.Region+":"+f.Account+":key/"+id {
			t.Errorf("key %s: state %s arn %s, want %s", id, d.KeyMetadata.KeyState, d.KeyMetadata.Arn, want)
		}
		if id == f.Key && d.KeyMetadata.Description != f.Description {
			t.Errorf("description %q, want %q", d.KeyMetadata.Description, f.Description)
		}
	}
	tags, err := s.ListResourceTags(ctx, rootCaller, &ListResourceTagsInput{KeyId: f.Key})
	if err != nil || !sameTags(tags.Tags, f.Tags) {
		t.Errorf("tags %v, %v; want %v", tags, err, f.Tags)
	}
	pol, err := s.GetKeyPolicy(ctx, rootCaller, &GetKeyPolicyInput{KeyId: f.Key, PolicyName: "default"})
	if err != nil || pol.Policy != f.Policy {
		t.Errorf("policy %v, %v", pol, err)
	}
	// The alias resolves, and is listed.
	d, err := s.DescribeKey(ctx, rootCaller, &KeyIDInput{KeyId: f.Alias})
	if err != nil || d.KeyMetadata.KeyId != f.Key {
		t.Errorf("DescribeKey %s: %v, %v", f.Alias, d, err)
	}
	aliases, err := s.ListAliases(ctx, rootCaller, &ListAliasesInput{KeyId: f.Key})
	if err != nil || len(aliases.Aliases) != 1 || aliases.Aliases[0].AliasName != f.Alias {
		t.Errorf("ListAliases: %+v, %v", aliases, err)
	}
	grants, err := s.ListGrants(ctx, rootCaller, &ListGrantsInput{KeyId: f.Key})
	if err != nil || len(grants.Grants) != 1 || grants.Grants[0].GrantId != f.GrantID || grants.Grants[0].Name != f.GrantName ||
		grants.Grants[0].GranteePrincipal != f.Grantee {
		t.Errorf("ListGrants: %+v, %v", grants, err)
	}
	blob, _ := base64.StdEncoding.DecodeString(f.Ciphertext)
	dec, err := s.Decrypt(ctx, rootCaller, &DecryptInput{CiphertextBlob: blob, EncryptionContext: f.EncryptionContext})
	if err != nil || string(dec.Plaintext) != f.Plaintext || dec.KeyId != "arn:aws:kms:"+f.Region+":"+f.Account+":key/"+f.Key {
		t.Errorf("Decrypt: %+v, %v", dec, err)
	}
	if _, err := s.Encrypt(ctx, rootCaller, &EncryptInput{KeyId: f.Alias, Plaintext: []byte("after")}); err != nil {
		t.Errorf("Encrypt: %v", err)
	}
	caller, secret, err := s.AccessKey(ctx, f.AccessKeyID)
	if err != nil || string(secret) != f.SecretAccessKey || caller.ARN != "arn:aws:iam::"+f.Account+":user/"+f.User {
		t.Errorf("AccessKey: %+v, %v", caller, err)
	}
	if _, _, err := s.AccessKey(ctx, f.AdminAccessKeyID); err != nil {
		t.Errorf("administrator's AccessKey: %v", err)
	}
	if creds, err := s.Bootstrap(ctx); err != nil || creds != nil {
		t.Errorf("Bootstrap after the upgrade: %v, %v (want nothing to do)", creds, err)
	}
	role, err := s.GetRole(ctx, rootCaller, &RoleNameInput{RoleName: f.Role})
	if err != nil {
		t.Fatalf("GetRole: %v", err)
	}
	if _, err := s.AssumeRole(ctx, rootCaller, &AssumeRoleInput{RoleArn: role.Role.Arn, RoleSessionName: "after"}); err != nil {
		t.Errorf("AssumeRole (the session-token key): %v", err)
	}
	usage, err := s.AllUsage(ctx)
	if err != nil || !slices.ContainsFunc(usage, func(e UsageEntry) bool {
		return e.Operation == "Encrypt" && strings.HasSuffix(e.KeyArn, f.Key) && e.Calls == 1
	}) {
		t.Errorf("AllUsage: %+v, %v", usage, err)
	}

	// As stored: schema 2, every record sealed, per-Region records under
	// their Region.
	if v := storedVersion(t, store, root); v != "2" {
		t.Errorf("schema version %q, want 2", v)
	}
	after := dump(t, store)
	for _, want := range []struct{ bucket, key string }{
		{bucketKeys, f.Region + "/" + f.Key},
		{bucketKeys, f.Region + "/" + f.Disabled},
		{bucketKeys, f.Region + "/" + f.Pending},
		{bucketAliases, f.Account + "/" + f.Region + "/" + f.Alias},
		{bucketGrants, f.Region + "/" + f.Key + "/" + f.GrantID},
		{bucketAccessKeys, f.AccessKeyID},
		{bucketPrincipals, "arn:aws:iam::" + f.Account + ":user/" + f.User},
		{bucketMeta, "bootstrapped"},
	} {
		v, ok := after[want.bucket][want.key]
		if !ok {
			t.Errorf("%s/%s missing after the upgrade; the bucket holds %v", want.bucket, want.key, slices.Collect(maps.Keys(after[want.bucket])))
			continue
		}
		if v[0] != recordFormat {
			t.Errorf("%s/%s is not sealed: %q", want.bucket, want.key, v)
		}
	}
	for b, entries := range before {
		for k := range entries {
			if bucketScopes[b] != scopeGlobal {
				if _, ok := after[b][k]; ok {
					t.Errorf("%s/%s still under its schema-1 key", b, k)
				}
			}
		}
	}

	// Opening it again changes nothing.
	s.FlushUsage(ctx)
	s.Close()
	settled := dump(t, store)
	s2 := openService(t, f.Region, store, root)
	if !maps.EqualFunc(settled, dump(t, store), maps.Equal) {
		t.Error("a second New changed the store")
	}
	if d, err := s2.DescribeKey(ctx, rootCaller, &KeyIDInput{KeyId: f.Alias}); err != nil || d.KeyMetadata.KeyId != f.Key {
		t.Errorf("after reopening: %v, %v", d, err)
	}
}

func sameTags(a, b []Tag) bool {
	cmp := func(x, y Tag) int { return strings.Compare(x.TagKey, y.TagKey) }
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, cmp)
	slices.SortFunc(b, cmp)
	return slices.Equal(a, b)
}

// TestSchema1UpgradeOtherRegion: keys of another Region are not silently
// filed under the configured one.
func TestSchema1UpgradeOtherRegion(t *testing.T) {
	_, store, root := openFixture(t)
	before := dump(t, store)
	_, err := New(Config{Region: "us-east-1", Account: "111122223333", Store: store, Root: root})
	if err == nil || !strings.Contains(err.Error(), "eu-west-1") {
		t.Fatalf("New in another Region: %v", err)
	}
	if !maps.EqualFunc(before, dump(t, store), maps.Equal) {
		t.Error("a refused upgrade changed the store")
	}
}

func TestFreshStoreSchema(t *testing.T) {
	store := keystore.NewMemory()
	root := softRoot(t)
	s := openService(t, "us-east-1", store, root)
	if v := storedVersion(t, store, root); v != "2" {
		t.Fatalf("fresh store at schema %q", v)
	}
	k, err := s.CreateKey(context.Background(), rootCaller, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	raw := dump(t, store)[bucketKeys]["us-east-1/"+k.KeyMetadata.KeyId]
	if raw == "" || raw[0] != recordFormat {
		t.Fatalf("key record as stored: %q", raw)
	}
}

func softRoot(t *testing.T) *hsm.Software {
	t.Helper()
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root
}

// edit changes one stored entry, bypassing kms; a nil result deletes it.
func edit(t *testing.T, store keystore.Store, bucket, key string, fn func([]byte) []byte) {
	t.Helper()
	err := store.Update(context.Background(), func(tx keystore.Tx) error {
		v, err := tx.Get(bucket, key)
		if err != nil {
			return err
		}
		if v == nil {
			t.Fatalf("%s/%s is not stored", bucket, key)
		}
		old := bytes.Clone(v)
		if v = fn(v); v == nil {
			return tx.Delete(bucket, key)
		}
		if bytes.Equal(v, old) {
			t.Fatalf("the edit left %s/%s as it was", bucket, key)
		}
		return tx.Put(bucket, key, v)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func getRaw(t *testing.T, store keystore.Store, bucket, key string) []byte {
	t.Helper()
	var v []byte
	if err := store.View(context.Background(), func(tx keystore.Tx) (err error) { v, err = tx.Get(bucket, key); return }); err != nil {
		t.Fatal(err)
	}
	return v
}

func wantInternal(t *testing.T, what string, err error) {
	t.Helper()
	var ke *Error
	if !errors.Is(err, ErrInternal) || !errors.As(err, &ke) {
		t.Errorf("%s: %v, want ErrInternal", what, err)
		return
	}
	if ke.Message != "An internal error occurred." {
		t.Errorf("%s: served message %q", what, ke.Message)
	}
}

// TestRecordTampering edits records in the store behind kms's back: each
// edit must be refused, never served.
func TestRecordTampering(t *testing.T) {
	ctx := context.Background()
	const region = "us-east-1"
	type setup struct {
		store              keystore.Store
		root               hsm.Backend
		enabled, disabled  string
		accessKey, aliasOf string
	}
	newSetup := func(t *testing.T) setup {
		store, root := keystore.NewMemory(), softRoot(t)
		s := openService(t, region, store, root)
		a, err := s.CreateKey(ctx, rootCaller, &CreateKeyInput{Description: "enabled"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.CreateKey(ctx, rootCaller, &CreateKeyInput{Description: "disabled"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.DisableKey(ctx, rootCaller, &KeyIDInput{KeyId: b.KeyMetadata.KeyId}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateAlias(ctx, rootCaller, &AliasInput{AliasName: "alias/a", TargetKeyId: a.KeyMetadata.KeyId}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateUser(ctx, rootCaller, &UserNameInput{UserName: "u"}); err != nil {
			t.Fatal(err)
		}
		ak, err := s.CreateAccessKey(ctx, rootCaller, &UserNameInput{UserName: "u"})
		if err != nil {
			t.Fatal(err)
		}
		return setup{store, root, a.KeyMetadata.KeyId, b.KeyMetadata.KeyId, ak.AccessKey.AccessKeyId, "alias/a"}
	}
	keyAt := func(id string) string { return region + "/" + id }

	// Untouched, a fresh service (no cache) serves every record.
	t.Run("control", func(t *testing.T) {
		st := newSetup(t)
		s := openService(t, region, st.store, st.root)
		if _, err := s.DescribeKey(ctx, rootCaller, &KeyIDInput{KeyId: st.aliasOf}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Encrypt(ctx, rootCaller, &EncryptInput{KeyId: st.enabled, Plaintext: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.AccessKey(ctx, st.accessKey); err != nil {
			t.Fatal(err)
		}
	})

	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, st *setup)
		probe  func(s *Service, st setup) error
	}{
		{"flipped byte", func(t *testing.T, st *setup) {
			edit(t, st.store, bucketKeys, keyAt(st.enabled), func(v []byte) []byte { v[len(v)-2] ^= 0x01; return v })
		}, func(s *Service, st setup) error {
			_, err := s.DescribeKey(ctx, rootCaller, &KeyIDInput{KeyId: st.enabled})
			return err
		}},
		{"flipped tag bit", func(t *testing.T, st *setup) {
			edit(t, st.store, bucketKeys, keyAt(st.enabled), func(v []byte) []byte { v[1] ^= 0x80; return v })
		}, func(s *Service, st setup) error {
			_, err := s.Encrypt(ctx, rootCaller, &EncryptInput{KeyId: st.enabled, Plaintext: []byte("x")})
			return err
		}},
		{"Disabled edited to Enabled", func(t *testing.T, st *setup) {
			edit(t, st.store, bucketKeys, keyAt(st.disabled), func(v []byte) []byte {
				if !bytes.Contains(v, []byte(`"state":"Disabled"`)) {
					t.Fatalf("no state in %q", v)
				}
				return bytes.Replace(v, []byte(`"state":"Disabled"`), []byte(`"state":"Enabled"`), 1)
			})
		}, func(s *Service, st setup) error {
			_, err := s.Encrypt(ctx, rootCaller, &EncryptInput{KeyId: st.disabled, Plaintext: []byte("x")})
			return err
		}},
		{"policy edited", func(t *testing.T, st *setup) {
			edit(t, st.store, bucketKeys, keyAt(st.disabled), func(v []byte) []byte {
				return bytes.Replace(v, []byte(`Enable IAM User Permissions`), []byte(`Enable everyone's permissions`), 1)
			})
		}, func(s *Service, st setup) error {
			_, err := s.GetKeyPolicy(ctx, rootCaller, &GetKeyPolicyInput{KeyId: st.disabled, PolicyName: "default"})
			return err
		}},
		{"record moved to another key", func(t *testing.T, st *setup) {
			enabled := getRaw(t, st.store, bucketKeys, keyAt(st.enabled))
			edit(t, st.store, bucketKeys, keyAt(st.disabled), func([]byte) []byte { return enabled })
		}, func(s *Service, st setup) error {
			_, err := s.DescribeKey(ctx, rootCaller, &KeyIDInput{KeyId: st.disabled})
			return err
		}},
		{"record moved to another bucket", func(t *testing.T, st *setup) {
			// An alias record put where the access key was: both are JSON.
			alias := getRaw(t, st.store, bucketAliases, "111122223333/"+region+"/"+st.aliasOf)
			edit(t, st.store, bucketAccessKeys, st.accessKey, func([]byte) []byte { return alias })
		}, func(s *Service, st setup) error {
			_, _, err := s.AccessKey(ctx, st.accessKey)
			return err
		}},
		{"alias edited", func(t *testing.T, st *setup) {
			edit(t, st.store, bucketAliases, "111122223333/"+region+"/"+st.aliasOf, func(v []byte) []byte {
				return bytes.Replace(v, []byte(st.enabled), []byte(st.disabled), 1)
			})
		}, func(s *Service, st setup) error {
			_, err := s.Encrypt(ctx, rootCaller, &EncryptInput{KeyId: st.aliasOf, Plaintext: []byte("x")})
			return err
		}},
		{"listing meets an edited record", func(t *testing.T, st *setup) {
			edit(t, st.store, bucketKeys, keyAt(st.disabled), func(v []byte) []byte { v[40] ^= 0x20; return v })
		}, func(s *Service, st setup) error {
			_, err := s.ListKeys(ctx, rootCaller, &ListInput{})
			return err
		}},
		{"record of another data dir", func(t *testing.T, st *setup) {
			other := newSetup(t) // another record key, under another root
			foreign := getRaw(t, other.store, bucketKeys, keyAt(other.enabled))
			if err := st.store.Update(ctx, func(tx keystore.Tx) error { return tx.Put(bucketKeys, keyAt(other.enabled), foreign) }); err != nil {
				t.Fatal(err)
			}
			st.enabled = other.enabled
		}, func(s *Service, st setup) error {
			if _, err := s.ListKeys(ctx, rootCaller, &ListInput{}); !errors.Is(err, ErrInternal) {
				return err
			}
			_, err := s.DescribeKey(ctx, rootCaller, &KeyIDInput{KeyId: st.enabled}) // the foreign key's ID
			return err
		}},
		{"schema-1 record put back", func(t *testing.T, st *setup) {
			edit(t, st.store, bucketKeys, keyAt(st.disabled), func(v []byte) []byte {
				return bytes.Replace(v[1+recordTagSize:], []byte(`"state":"Disabled"`), []byte(`"state":"Enabled"`), 1)
			})
		}, func(s *Service, st setup) error {
			_, err := s.DescribeKey(ctx, rootCaller, &KeyIDInput{KeyId: st.disabled})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newSetup(t)
			tc.tamper(t, &st)
			s := openService(t, region, st.store, st.root) // no cached record
			wantInternal(t, tc.name, tc.probe(s, st))
		})
	}

	t.Run("record moved to another Region", func(t *testing.T) {
		st := newSetup(t)
		raw := getRaw(t, st.store, bucketKeys, keyAt(st.enabled))
		if err := st.store.Update(ctx, func(tx keystore.Tx) error { return tx.Put(bucketKeys, "eu-west-1/"+st.enabled, raw) }); err != nil {
			t.Fatal(err)
		}
		s := openService(t, "eu-west-1", st.store, st.root)
		_, err := s.DescribeKey(ctx, rootCaller, &KeyIDInput{KeyId: st.enabled})
		wantInternal(t, "moved Region", err)
	})
}

// TestSchemaMetaTampering: the entries that bootstrap records fail closed.
func TestSchemaMetaTampering(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, store keystore.Store, root hsm.Backend)
		want   string
	}{
		{"version edited", func(t *testing.T, store keystore.Store, _ hsm.Backend) {
			edit(t, store, bucketMeta, metaSchemaVersion, func(v []byte) []byte { v[len(v)-1] = '3'; return v })
		}, "does not authenticate"},
		{"newer version", func(t *testing.T, store keystore.Store, root hsm.Backend) {
			wrapped, version, _ := readSchemaMeta(context.Background(), store)
			key, err := unwrapRecordKey(context.Background(), root, wrapped, version)
			if err != nil {
				t.Fatal(err)
			}
			edit(t, store, bucketMeta, metaSchemaVersion, func([]byte) []byte { return key.sealVersion(3) })
		}, "newer than this release"},
		{"version deleted", func(t *testing.T, store keystore.Store, _ hsm.Backend) {
			edit(t, store, bucketMeta, metaSchemaVersion, func([]byte) []byte { return nil })
		}, "no schema version"},
		{"record key edited", func(t *testing.T, store keystore.Store, _ hsm.Backend) {
			edit(t, store, bucketMeta, metaRecordKey, func(v []byte) []byte { v[len(v)-1] ^= 1; return v })
		}, "unwrap the record key"},
		{"record key and version deleted", func(t *testing.T, store keystore.Store, _ hsm.Backend) {
			// What is left looks like no schema-1 store: refused, not re-sealed.
			edit(t, store, bucketMeta, metaSchemaVersion, func([]byte) []byte { return nil })
			edit(t, store, bucketMeta, metaRecordKey, func([]byte) []byte { return nil })
		}, "not a schema-1 record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, root := keystore.NewMemory(), softRoot(t)
			s := openService(t, "us-east-1", store, root)
			if _, err := s.CreateKey(context.Background(), rootCaller, &CreateKeyInput{}); err != nil {
				t.Fatal(err)
			}
			tc.tamper(t, store, root)
			_, err := New(Config{Region: "us-east-1", Account: "111122223333", Store: store, Root: root})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error saying %q", err, tc.want)
			}
		})
	}
	t.Run("another root", func(t *testing.T) {
		store := keystore.NewMemory()
		openService(t, "us-east-1", store, softRoot(t))
		if _, err := New(Config{Region: "us-east-1", Account: "111122223333", Store: store, Root: softRoot(t)}); err == nil {
			t.Fatal("New under another root succeeded")
		}
	})
}

// TestRewrapRecordKey moves a store between roots: the record key moves
// too, and a second run finds everything moved.
func TestRewrapRecordKey(t *testing.T) {
	ctx := context.Background()
	store, from, to := keystore.NewMemory(), softRoot(t), softRoot(t)
	s := openService(t, "us-east-1", store, from)
	k, err := s.CreateKey(ctx, rootCaller, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := s.Encrypt(ctx, rootCaller, &EncryptInput{KeyId: k.KeyMetadata.KeyId, Plaintext: []byte("moved")})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	st, err := Rewrap(ctx, store, from, to)
	if err != nil || !st.RecordKey || st.KeyVersions != 1 {
		t.Fatalf("Rewrap: %+v, %v", st, err)
	}
	if st, err := Rewrap(ctx, store, from, to); err != nil || st.RecordKey || st.KeyVersions != 0 || st.AlreadyMoved != 2 {
		t.Fatalf("second Rewrap: %+v, %v", st, err)
	}
	if _, err := New(Config{Region: "us-east-1", Account: "111122223333", Store: store, Root: from}); err == nil {
		t.Fatal("the old root still opens the store")
	}
	s2 := openService(t, "us-east-1", store, to)
	dec, err := s2.Decrypt(ctx, rootCaller, &DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil || string(dec.Plaintext) != "moved" {
		t.Fatalf("Decrypt after Rewrap: %v, %v", dec, err)
	}
}

// TestRewrapSchema1: a data dir never opened by this release moves as it
// is, and is upgraded when the service next starts, on the new root.
func TestRewrapSchema1(t *testing.T) {
	ctx := context.Background()
	f, store, from := openFixture(t)
	to := softRoot(t)
	st, err := Rewrap(ctx, store, from, to)
	if err != nil || st.RecordKey || st.KeyVersions != 4 || st.AccessKeys != 2 || !st.TokenKey {
		t.Fatalf("Rewrap: %+v, %v", st, err)
	}
	s := openService(t, f.Region, store, to)
	blob, _ := base64.StdEncoding.DecodeString(f.Ciphertext)
	dec, err := s.Decrypt(ctx, rootCaller, &DecryptInput{CiphertextBlob: blob, EncryptionContext: f.EncryptionContext})
	if err != nil || string(dec.Plaintext) != f.Plaintext {
		t.Fatalf("Decrypt: %v, %v", dec, err)
	}
	if v := storedVersion(t, store, to); v != "2" {
		t.Fatalf("schema %q", v)
	}
}

// TestRecordSeal: a sealed record opens only where it was sealed, under
// the key that sealed it, byte for byte; the length prefixes keep the
// bucket/key boundary from shifting.
func TestRecordSeal(t *testing.T) {
	k, _ := newRecordKey(bytes.Repeat([]byte{7}, recordKeySize))
	sealed := k.seal("ab", "c/d", []byte(`{"state":"Enabled"}`))
	if v, err := k.open("ab", "c/d", sealed); err != nil || string(v) != `{"state":"Enabled"}` {
		t.Fatalf("open: %q, %v", v, err)
	}
	for _, where := range [][2]string{{"a", "bc/d"}, {"abc", "/d"}, {"ab", "c/e"}, {"ab", "c/d\x00"}} {
		if _, err := k.open(where[0], where[1], sealed); !errors.Is(err, ErrInternal) {
			t.Errorf("opened under %q/%q", where[0], where[1])
		}
	}
	if _, err := k.openAt(schemaVersion+1, "ab", "c/d", sealed); err == nil {
		t.Error("opened at another schema version")
	}
	other, _ := newRecordKey(bytes.Repeat([]byte{8}, recordKeySize))
	if _, err := other.open("ab", "c/d", sealed); err == nil {
		t.Error("opened under another record key")
	}
	for i := range sealed {
		for _, bit := range []byte{0x01, 0x80} {
			b := bytes.Clone(sealed)
			b[i] ^= bit
			if _, err := k.open("ab", "c/d", b); err == nil {
				t.Fatalf("opened with byte %d flipped by %#x", i, bit)
			}
		}
	}
	for _, n := range []int{0, 1, recordTagSize, len(sealed) - 1} {
		if _, err := k.open("ab", "c/d", sealed[:n]); err == nil {
			t.Errorf("opened truncated to %d bytes", n)
		}
	}
	if _, err := k.open("ab", "c/d", append(bytes.Clone(sealed), ' ')); err == nil {
		t.Error("opened with a byte appended")
	}
}

// TestRecordTagLayout: the tag is HMAC-SHA-256 of the layout record.go
// documents, computed here from scratch (records written by earlier
// releases verify only if it never changes), also for store keys longer
// than tag's stack buffer and from many goroutines sharing the key's
// pooled MAC state.
func TestRecordTagLayout(t *testing.T) {
	raw := bytes.Repeat([]byte{7}, recordKeySize)
	k, _ := newRecordKey(raw)
	want := func(version uint32, bucket, key string, value []byte) []byte {
		h := hmac.New(sha256.New, raw)
		field := func(b []byte) {
			h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
			h.Write(b)
		}
		field([]byte(labelRecord))
		h.Write(binary.BigEndian.AppendUint32(nil, version))
		field([]byte(bucket))
		field([]byte(key))
		field(value)
		return h.Sum(nil)
	}
	cases := []struct {
		bucket, key string
		value       []byte
	}{
		{"keys", "us-east-1/1234abcd-12ab-34cd-56ef-1234567890ab", []byte(`{"state":"Enabled"}`)},
		{"", "", nil},
		{"aliases", strings.Repeat("k", 300), bytes.Repeat([]byte{0xff}, 5000)},
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				c := cases[(g+i)%len(cases)]
				if got, w := k.tag(nil, 2, c.bucket, c.key, c.value), want(2, c.bucket, c.key, c.value); !bytes.Equal(got, w) {
					t.Errorf("tag of %q/%.20q: %x, want %x", c.bucket, c.key, got, w)
					return
				}
			}
		})
	}
	wg.Wait()
}
