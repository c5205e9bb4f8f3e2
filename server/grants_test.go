package server_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

func TestGrantsLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	id := e.createKey("granted")
	grantee := "arn:aws:iam::111122223333:user/app"
	retiree := "arn:aws:iam::111122223333:role/janitor"
	// A grant names principals that exist (issue 19.6).
	e.principal(t, testAccount, "app", "")
	e.role(t, "janitor", trustPolicy("arn:aws:iam::111122223333:root"), "")

	g := must[*awskms.CreateGrantOutput](t)(c.CreateGrant(ctx, &awskms.CreateGrantInput{
		KeyId: &id, GranteePrincipal: aws.String(grantee), RetiringPrincipal: aws.String(retiree),
		Operations:  []types.GrantOperation{types.GrantOperationEncrypt, types.GrantOperationDecrypt},
		Constraints: &types.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "acme"}},
		Name:        aws.String("app-grant"),
	}))
	if len(*g.GrantId) != 64 || *g.GrantToken == "" {
		t.Fatalf("CreateGrant output %+v", g)
	}
	// Name idempotency: the same request returns the same grant, a new token.
	again := must[*awskms.CreateGrantOutput](t)(c.CreateGrant(ctx, &awskms.CreateGrantInput{
		KeyId: &id, GranteePrincipal: aws.String(grantee), RetiringPrincipal: aws.String(retiree),
		Operations:  []types.GrantOperation{types.GrantOperationDecrypt, types.GrantOperationEncrypt},
		Constraints: &types.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "acme"}},
		Name:        aws.String("app-grant"),
	}))
	if *again.GrantId != *g.GrantId || *again.GrantToken == *g.GrantToken {
		t.Fatal("a repeated named CreateGrant made a new grant or reused the token")
	}
	// The grant token works on operations that take GrantTokens; a forged one does not.
	must[*awskms.EncryptOutput](t)(c.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("x"), GrantTokens: []string{*g.GrantToken}}))
	_, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("x"), GrantTokens: []string{"not-a-token"}})
	wantCode(t, err, "InvalidGrantTokenException")

	for i := range 3 {
		e.principal(t, testAccount, fmt.Sprintf("u%d", i), "")
		must[*awskms.CreateGrantOutput](t)(c.CreateGrant(ctx, &awskms.CreateGrantInput{
			KeyId: &id, GranteePrincipal: aws.String(fmt.Sprintf("arn:aws:iam::111122223333:user/u%d", i)),
			Operations: []types.GrantOperation{types.GrantOperationGenerateDataKey},
		}))
	}
	var seen int
	var marker *string
	for {
		page := must[*awskms.ListGrantsOutput](t)(c.ListGrants(ctx, &awskms.ListGrantsInput{KeyId: &id, Limit: aws.Int32(3), Marker: marker}))
		seen += len(page.Grants)
		for _, gr := range page.Grants {
			if *gr.KeyId != "arn:aws:kms:us-east-1:111122223333:key/"+id || *gr.IssuingAccount != "arn:aws:iam::111122223333:root" {
				t.Fatalf("grant entry %+v", gr)
			}
		}
		if !page.Truncated {
			break
		}
		marker = page.NextMarker
	}
	if seen != 4 {
		t.Fatalf("ListGrants saw %d grants, want 4", seen)
	}
	one := must[*awskms.ListGrantsOutput](t)(c.ListGrants(ctx, &awskms.ListGrantsInput{KeyId: &id, GrantId: g.GrantId}))
	if len(one.Grants) != 1 || *one.Grants[0].Name != "app-grant" || one.Grants[0].Constraints.EncryptionContextSubset["tenant"] != "acme" {
		t.Fatalf("ListGrants(GrantId): %+v", one.Grants)
	}
	ret := must[*awskms.ListRetirableGrantsOutput](t)(c.ListRetirableGrants(ctx, &awskms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(retiree)}))
	if len(ret.Grants) != 1 || *ret.Grants[0].GrantId != *g.GrantId {
		t.Fatalf("ListRetirableGrants: %+v", ret.Grants)
	}

	must[*awskms.RetireGrantOutput](t)(c.RetireGrant(ctx, &awskms.RetireGrantInput{GrantToken: g.GrantToken}))
	_, err = c.RetireGrant(ctx, &awskms.RetireGrantInput{GrantToken: g.GrantToken})
	wantCode(t, err, "NotFoundException")
	rest := must[*awskms.ListGrantsOutput](t)(c.ListGrants(ctx, &awskms.ListGrantsInput{KeyId: &id}))
	if len(rest.Grants) != 3 {
		t.Fatalf("%d grants after retiring one", len(rest.Grants))
	}
	must[*awskms.RevokeGrantOutput](t)(c.RevokeGrant(ctx, &awskms.RevokeGrantInput{KeyId: &id, GrantId: rest.Grants[0].GrantId}))
	must[*awskms.RetireGrantOutput](t)(c.RetireGrant(ctx, &awskms.RetireGrantInput{KeyId: &id, GrantId: rest.Grants[1].GrantId}))
	rest = must[*awskms.ListGrantsOutput](t)(c.ListGrants(ctx, &awskms.ListGrantsInput{KeyId: &id}))
	if len(rest.Grants) != 1 {
		t.Fatalf("%d grants after revoke and retire", len(rest.Grants))
	}

	_, err = c.RevokeGrant(ctx, &awskms.RevokeGrantInput{KeyId: &id, GrantId: aws.String("nope")})
	wantCode(t, err, "InvalidGrantIdException")
	_, err = c.CreateGrant(ctx, &awskms.CreateGrantInput{KeyId: &id, GranteePrincipal: aws.String(grantee),
		Operations: []types.GrantOperation{types.GrantOperationSign}})
	wantCode(t, err, "ValidationException")
	_, err = c.CreateGrant(ctx, &awskms.CreateGrantInput{KeyId: &id, GranteePrincipal: aws.String(grantee),
		Operations:  []types.GrantOperation{types.GrantOperationDecrypt},
		Constraints: &types.GrantConstraints{EncryptionContextSubset: map[string]string{"a": "b"}, EncryptionContextEquals: map[string]string{"a": "b"}}})
	wantCode(t, err, "ValidationException")
	_, err = c.CreateGrant(ctx, &awskms.CreateGrantInput{KeyId: &id, GranteePrincipal: aws.String(grantee),
		Operations: []types.GrantOperation{types.GrantOperationDecrypt}, DryRun: aws.Bool(true)})
	wantCode(t, err, "DryRunOperationException")
	must[*awskms.DisableKeyOutput](t)(c.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: &id}))
	_, err = c.CreateGrant(ctx, &awskms.CreateGrantInput{KeyId: &id, GranteePrincipal: aws.String(grantee),
		Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
	wantCode(t, err, "DisabledException")

	// Grants go with their key.
	must[*awskms.ScheduleKeyDeletionOutput](t)(c.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: &id, PendingWindowInDays: aws.Int32(7)}))
	e.clock.Advance(8 * 24 * 60 * 60 * 1e9)
	if _, d, err := e.svc.RunMaintenance(ctx); d != 1 || err != nil {
		t.Fatal("key not deleted")
	}
	ret = must[*awskms.ListRetirableGrantsOutput](t)(c.ListRetirableGrants(ctx, &awskms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(retiree)}))
	if len(ret.Grants) != 0 {
		t.Fatal("grants outlived their key")
	}
}
