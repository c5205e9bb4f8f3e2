//go:build ignore

// This program made the schema-1 fixture beside it: a data dir (coffer.db
// and a software root.key) written by the release before records were
// authenticated and keyed by Region, and fixture.json, which says what is
// in it. It was run once, from the repository root, at the commit that
// added it:
//
//	go run ./kms/testdata/schema1/make.go kms/testdata/schema1
//
// Running it again with a later release would not make a schema-1 store;
// the fixture is kept as it was made.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/kms"
)

// Fixture is fixture.json.
type Fixture struct {
	Region, Account string
	// Key is enabled, rotated once, tagged, under a custom policy, with an
	// alias and a grant; Ciphertext was made under its first version.
	Key, Alias, Description, Policy string
	Tags                            []kms.Tag
	GrantID, GrantName, Grantee     string
	Ciphertext                      string // base64
	Plaintext                       string
	EncryptionContext               map[string]string
	// Disabled and Pending are in those states.
	Disabled, Pending string
	// User has an access key; Admin is the bootstrapped administrator.
	User, AccessKeyID, SecretAccessKey string
	AdminAccessKeyID                   string
	Role                               string
}

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: go run make.go DIR")
	}
	dir := os.Args[1]
	if err := run(dir); err != nil {
		log.Fatal(err)
	}
}

func run(dir string) error {
	ctx := context.Background()
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{Path: filepath.Join(dir, "root.key")})
	if err != nil {
		return err
	}
	defer root.Close()
	store, err := keystore.OpenBolt(filepath.Join(dir, "coffer.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	f := Fixture{Region: "eu-west-1", Account: "111122223333"}
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	s, err := kms.New(kms.Config{Region: f.Region, Account: f.Account, Store: store, Root: root, Now: func() time.Time { return now }})
	if err != nil {
		return err
	}
	defer s.Close()
	admin, err := s.Bootstrap(ctx)
	if err != nil {
		return err
	}
	f.AdminAccessKeyID = admin.AccessKeyID
	c := &kms.Caller{ARN: "arn:aws:iam::" + f.Account + ":root", Account: f.Account}

	f.Description = "the fixture's main key"
	f.Policy = `{"Version":"2012-10-17","Id":"fixture","Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},{"Sid":"App","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/app"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}]}`
	f.Tags = []kms.Tag{{TagKey: "team", TagValue: "storage"}}
	k, err := s.CreateKey(ctx, c, &kms.CreateKeyInput{Description: f.Description, Tags: f.Tags})
	if err != nil {
		return err
	}
	f.Key = k.KeyMetadata.KeyId
	f.Tags = append(f.Tags, kms.Tag{TagKey: "env", TagValue: "prod"})
	if _, err := s.TagResource(ctx, c, &kms.TagResourceInput{KeyId: f.Key, Tags: f.Tags[1:]}); err != nil {
		return err
	}
	if _, err := s.PutKeyPolicy(ctx, c, &kms.PutKeyPolicyInput{KeyId: f.Key, PolicyName: "default", Policy: &f.Policy}); err != nil {
		return err
	}
	f.Alias = "alias/fixture"
	if _, err := s.CreateAlias(ctx, c, &kms.AliasInput{AliasName: f.Alias, TargetKeyId: f.Key}); err != nil {
		return err
	}
	f.Grantee, f.GrantName = "arn:aws:iam::111122223333:user/app", "fixture-grant"
	g, err := s.CreateGrant(ctx, c, &kms.CreateGrantInput{KeyId: f.Key, GranteePrincipal: f.Grantee, Operations: []string{"Decrypt", "Encrypt"}, Name: f.GrantName})
	if err != nil {
		return err
	}
	f.GrantID = g.GrantId
	f.Plaintext, f.EncryptionContext = "schema one says hello", map[string]string{"purpose": "fixture"}
	enc, err := s.Encrypt(ctx, c, &kms.EncryptInput{KeyId: f.Alias, Plaintext: []byte(f.Plaintext), EncryptionContext: f.EncryptionContext})
	if err != nil {
		return err
	}
	f.Ciphertext = base64.StdEncoding.EncodeToString(enc.CiphertextBlob)
	if _, err := s.RotateKeyOnDemand(ctx, c, &kms.KeyIDInput{KeyId: f.Key}); err != nil {
		return err
	}

	d, err := s.CreateKey(ctx, c, &kms.CreateKeyInput{Description: "disabled"})
	if err != nil {
		return err
	}
	f.Disabled = d.KeyMetadata.KeyId
	if _, err := s.DisableKey(ctx, c, &kms.KeyIDInput{KeyId: f.Disabled}); err != nil {
		return err
	}
	p, err := s.CreateKey(ctx, c, &kms.CreateKeyInput{Description: "pending deletion"})
	if err != nil {
		return err
	}
	f.Pending = p.KeyMetadata.KeyId
	window := 30
	if _, err := s.ScheduleKeyDeletion(ctx, c, &kms.ScheduleKeyDeletionInput{KeyId: f.Pending, PendingWindowInDays: &window}); err != nil {
		return err
	}

	f.User = "app"
	if _, err := s.CreateUser(ctx, c, &kms.UserNameInput{UserName: f.User}); err != nil {
		return err
	}
	ak, err := s.CreateAccessKey(ctx, c, &kms.UserNameInput{UserName: f.User})
	if err != nil {
		return err
	}
	f.AccessKeyID, f.SecretAccessKey = ak.AccessKey.AccessKeyId, ak.AccessKey.SecretAccessKey

	// A role and one session, so that the session-token key is stored.
	f.Role = "fixture-role"
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}`
	role, err := s.CreateRole(ctx, c, &kms.CreateRoleInput{RoleName: f.Role, AssumeRolePolicyDocument: trust})
	if err != nil {
		return err
	}
	if _, err := s.AssumeRole(ctx, c, &kms.AssumeRoleInput{RoleArn: role.Role.Arn, RoleSessionName: "fixture"}); err != nil {
		return fmt.Errorf("assume role: %w", err)
	}
	// Usage counters, as the server records them.
	s.RecordUsage(f.Account, k.KeyMetadata.Arn, "Encrypt")
	s.RecordUsage(f.Account, "", "CreateKey")
	if err := s.FlushUsage(ctx); err != nil {
		return err
	}

	out, err := json.MarshalIndent(f, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "fixture.json"), append(out, '\n'), 0o644)
}
