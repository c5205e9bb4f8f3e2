// Package sts fuzzes the opening of STS session tokens, which arrive
// untrusted in X-Amz-Security-Token with every request signed by temporary
// credentials.
package sts

import (
	"context"
	"errors"
	"testing"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/kms"
)

const account = "111122223333"

// session makes a service and one genuine set of temporary credentials.
func session(t testing.TB) (*kms.Service, *kms.AssumeRoleOutput) {
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := kms.New(kms.Config{Region: "us-east-1", Account: account, Store: keystore.NewMemory(), Root: root})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin := &kms.Caller{ARN: "arn:aws:iam::" + account + ":root", Account: account}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"sts:AssumeRole"}]}`
	role, err := svc.CreateRole(ctx, admin, &kms.CreateRoleInput{RoleName: "fuzz", AssumeRolePolicyDocument: trust})
	if err != nil {
		t.Fatal(err)
	}
	out, err := svc.AssumeRole(ctx, admin, &kms.AssumeRoleInput{RoleArn: role.Role.Arn, RoleSessionName: "fuzz"})
	if err != nil {
		t.Fatal(err)
	}
	return svc, out
}

// FuzzSessionToken asserts that a token opens only as the genuine one with
// its own access key ID, and that everything else is ErrInvalidToken,
// without a panic.
func FuzzSessionToken(f *testing.F) {
	svc, genuine := session(f)
	f.Add(genuine.AccessKeyID, genuine.SessionToken)
	f.Add(genuine.AccessKeyID, genuine.SessionToken[:len(genuine.SessionToken)/2])
	f.Add("ASIAAAAAAAAAAAAAAAAA", genuine.SessionToken)
	f.Add(genuine.AccessKeyID, genuine.SessionToken[:10]+"\n"+genuine.SessionToken[10:]) // the decoder skips line breaks
	f.Add(genuine.AccessKeyID, "")
	f.Add(genuine.AccessKeyID, "AQID")
	f.Fuzz(func(t *testing.T, akid, token string) {
		c, secret, err := svc.SessionCredentials(context.Background(), akid, token)
		if err == nil {
			if akid != genuine.AccessKeyID || token != genuine.SessionToken {
				t.Fatalf("a token no AssumeRole issued opened as %s", c.ARN)
			}
			if string(secret) != genuine.SecretAccessKey || c.RoleARN == "" {
				t.Fatal("the genuine token opened to another session")
			}
			return
		}
		if !errors.Is(err, kms.ErrInvalidToken) {
			t.Fatalf("error %v, want ErrInvalidToken", err)
		}
	})
}
