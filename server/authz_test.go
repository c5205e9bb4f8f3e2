package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/coffer-kms/coffer/kms"
)

const otherAccount = "444455556666"

// principal creates a user in an account (through the service, as that
// account's root) with an optional identity policy, and returns a client
// signed as it.
func (e *testEnv) principal(t *testing.T, account, name, identityPolicy string) (*awskms.Client, string) {
	t.Helper()
	ctx := context.Background()
	root := &kms.Caller{ARN: "arn:aws:iam::" + account + ":root", Account: account}
	if _, err := e.svc.CreateUser(ctx, root, &kms.UserNameInput{UserName: name}); err != nil {
		t.Fatal(err)
	}
	if identityPolicy != "" {
		if _, err := e.svc.PutUserPolicy(ctx, root, &kms.UserPolicyInput{UserName: name, PolicyName: "p", PolicyDocument: identityPolicy}); err != nil {
			t.Fatal(err)
		}
	}
	ak, err := e.svc.CreateAccessKey(ctx, root, &kms.UserNameInput{UserName: name})
	if err != nil {
		t.Fatal(err)
	}
	return e.newClient(ak.AccessKey.AccessKeyId, ak.AccessKey.SecretAccessKey), "arn:aws:iam::" + account + ":user/" + name
}

const (
	allowUse  = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey","kms:DescribeKey"],"Resource":"*"}]}`
	allowAll  = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`
	denyDec   = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"},{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}]}`
	ctxPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:tenant":"acme"}}}]}`
)

// keyPolicy builds a key policy: the admin may always administer and
// encrypt (so the test can set up), plus the given statements.
func keyPolicy(extra ...string) string {
	stmts := []string{`{"Sid":"admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/admin"},"Action":"kms:*","Resource":"*"}`}
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(append(stmts, extra...), ",") + `]}`
}

func TestAuthorizationMatrix(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alice, aliceARN := e.principal(t, testAccount, "alice", allowUse)
	bob, bobARN := e.principal(t, testAccount, "bob", "")
	carol, _ := e.principal(t, testAccount, "carol", denyDec)
	dave, _ := e.principal(t, testAccount, "dave", ctxPolicy)
	mallory, malloryARN := e.principal(t, otherAccount, "mallory", allowAll)
	trent, _ := e.principal(t, otherAccount, "trent", "")
	clients := map[string]*awskms.Client{"admin": e.client, "alice": alice, "bob": bob, "carol": carol, "dave": dave, "mallory": mallory, "trent": trent}

	defaultPolicy := ""
	delegates := keyPolicy(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}`)
	bobDirect := keyPolicy(`{"Effect":"Allow","Principal":{"AWS":"` + bobARN + `"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}`)
	crossAcct := keyPolicy(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}`,
		`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":["kms:Encrypt","kms:Decrypt","kms:DescribeKey"],"Resource":"*"}`)
	crossUser := keyPolicy(`{"Effect":"Allow","Principal":{"AWS":"` + malloryARN + `"},"Action":"kms:Decrypt","Resource":"*"}`)
	denyAll := keyPolicy(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}`,
		`{"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringNotEquals":{"kms:EncryptionContext:purpose":"audit"}}}`)
	noDelegation := keyPolicy()

	type grantSpec struct {
		to          string
		ops         []types.GrantOperation
		constraints *types.GrantConstraints
	}
	for _, c := range []struct {
		name    string
		policy  string
		grant   *grantSpec
		caller  string
		action  string // Encrypt, Decrypt, GenerateDataKey, DescribeKey, DisableKey, PutKeyPolicy
		ec      map[string]string
		useARN  bool // address the key by ARN (needed across accounts)
		allowed bool
	}{
		{"default policy, admin", defaultPolicy, nil, "admin", "Encrypt", nil, false, true},
		{"default policy, alice with identity policy", defaultPolicy, nil, "alice", "Decrypt", nil, false, true},
		{"default policy, alice outside her identity policy", defaultPolicy, nil, "alice", "DisableKey", nil, false, false},
		{"default policy, bob without identity policy", defaultPolicy, nil, "bob", "Encrypt", nil, false, false},
		{"default policy, carol's identity deny", defaultPolicy, nil, "carol", "Decrypt", nil, false, false},
		{"default policy, carol's identity allow", defaultPolicy, nil, "carol", "Encrypt", nil, false, true},
		{"condition met", defaultPolicy, nil, "dave", "Encrypt", map[string]string{"tenant": "acme"}, false, true},
		{"condition not met", defaultPolicy, nil, "dave", "Encrypt", map[string]string{"tenant": "other"}, false, false},
		{"condition key missing", defaultPolicy, nil, "dave", "Encrypt", nil, false, false},
		{"key policy names bob directly", bobDirect, nil, "bob", "Encrypt", nil, false, true},
		{"directly named, action not named", bobDirect, nil, "bob", "DescribeKey", nil, false, false},
		{"no delegation: identity policy alone is not enough", noDelegation, nil, "alice", "Encrypt", nil, false, false},
		{"delegation to the account", delegates, nil, "alice", "Encrypt", nil, false, true},
		{"key policy deny beats identity allow", denyAll, nil, "alice", "Decrypt", map[string]string{"purpose": "x"}, false, false},
		{"key policy deny does not apply", denyAll, nil, "alice", "Decrypt", map[string]string{"purpose": "audit"}, false, true},
		{"grant to bob", noDelegation, &grantSpec{bobARN, []types.GrantOperation{types.GrantOperationDecrypt, types.GrantOperationEncrypt}, nil}, "bob", "Decrypt", nil, false, true},
		{"grant, operation not granted", noDelegation, &grantSpec{bobARN, []types.GrantOperation{types.GrantOperationDecrypt}, nil}, "bob", "GenerateDataKey", nil, false, false},
		{"grant constraint subset met", noDelegation, &grantSpec{bobARN, []types.GrantOperation{types.GrantOperationEncrypt},
			&types.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "acme"}}}, "bob", "Encrypt", map[string]string{"tenant": "acme", "x": "y"}, false, true},
		{"grant constraint subset not met", noDelegation, &grantSpec{bobARN, []types.GrantOperation{types.GrantOperationEncrypt},
			&types.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "acme"}}}, "bob", "Encrypt", map[string]string{"tenant": "evil"}, false, false},
		{"grant constraint equals not met by a superset", noDelegation, &grantSpec{bobARN, []types.GrantOperation{types.GrantOperationEncrypt},
			&types.GrantConstraints{EncryptionContextEquals: map[string]string{"tenant": "acme"}}}, "bob", "Encrypt", map[string]string{"tenant": "acme", "x": "y"}, false, false},
		{"grant does not beat identity deny", defaultPolicy, &grantSpec{"arn:aws:iam::111122223333:user/carol", []types.GrantOperation{types.GrantOperationDecrypt}, nil}, "carol", "Decrypt", nil, false, false},
		{"cross-account: key policy allows the account, its IAM allows", crossAcct, nil, "mallory", "Decrypt", nil, true, true},
		{"cross-account: its IAM does not allow", crossAcct, nil, "trent", "Decrypt", nil, true, false},
		{"cross-account: key policy allows another action only", crossAcct, nil, "mallory", "GenerateDataKey", nil, true, false},
		{"cross-account: named user", crossUser, nil, "mallory", "Decrypt", nil, true, true},
		{"cross-account: not in the key policy", defaultPolicy, nil, "mallory", "Encrypt", nil, true, false},
		{"cross-account: management is never allowed", crossAcct, nil, "mallory", "DisableKey", nil, true, false},
		{"lockout check: PutKeyPolicy shutting the admin out", defaultPolicy, nil, "admin", "PutKeyPolicy", nil, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := &awskms.CreateKeyInput{BypassPolicyLockoutSafetyCheck: true}
			if c.policy != "" {
				in.Policy = aws.String(c.policy)
			}
			key := must[*awskms.CreateKeyOutput](t)(e.client.CreateKey(ctx, in)).KeyMetadata
			keyRef := *key.KeyId
			if c.useARN {
				keyRef = *key.Arn
			}
			var grantTokens []string
			if c.grant != nil {
				g := must[*awskms.CreateGrantOutput](t)(e.client.CreateGrant(ctx, &awskms.CreateGrantInput{KeyId: key.KeyId,
					GranteePrincipal: aws.String(c.grant.to), Operations: c.grant.ops, Constraints: c.grant.constraints}))
				grantTokens = []string{*g.GrantToken}
			}
			blob := must[*awskms.EncryptOutput](t)(e.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: key.KeyId, Plaintext: []byte("secret"), EncryptionContext: c.ec})).CiphertextBlob
			cl := clients[c.caller]
			var err error
			switch c.action {
			case "Encrypt":
				_, err = cl.Encrypt(ctx, &awskms.EncryptInput{KeyId: &keyRef, Plaintext: []byte("x"), EncryptionContext: c.ec, GrantTokens: grantTokens})
			case "Decrypt":
				var out *awskms.DecryptOutput
				out, err = cl.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blob, EncryptionContext: c.ec, GrantTokens: grantTokens})
				if err == nil && string(out.Plaintext) != "secret" {
					t.Fatal("wrong plaintext")
				}
			case "GenerateDataKey":
				_, err = cl.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: &keyRef, KeySpec: types.DataKeySpecAes256, EncryptionContext: c.ec, GrantTokens: grantTokens})
			case "DescribeKey":
				_, err = cl.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &keyRef})
			case "DisableKey":
				_, err = cl.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: &keyRef})
			case "PutKeyPolicy":
				shutOut := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + bobARN + `"},"Action":"kms:*","Resource":"*"}]}`
				_, err = cl.PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{KeyId: &keyRef, Policy: aws.String(shutOut)})
			}
			switch {
			case c.allowed && err != nil:
				t.Fatalf("%s by %s refused: %v", c.action, c.caller, err)
			case !c.allowed && err == nil:
				t.Fatalf("%s by %s allowed", c.action, c.caller)
			case !c.allowed:
				code := apiCode(err)
				if code != "AccessDeniedException" && code != "NotFoundException" && code != "MalformedPolicyDocumentException" {
					t.Fatalf("refusal is %s: %v", code, err)
				}
				if code == "AccessDeniedException" && !strings.Contains(apiMessage(err), "is not authorized to perform: kms:"+c.action) {
					t.Fatalf("AccessDenied message %q", apiMessage(err))
				}
			}
			if !c.allowed && c.action == "DisableKey" {
				d := must[*awskms.DescribeKeyOutput](t)(e.client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: key.KeyId}))
				if !d.KeyMetadata.Enabled {
					t.Fatal("a refused DisableKey changed the key")
				}
			}
		})
	}
	_ = aliceARN
}

func TestIdentityOnlyOperationsAndAdminAPI(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bob, _ := e.principal(t, testAccount, "bob", "")
	_, err := bob.CreateKey(ctx, &awskms.CreateKeyInput{})
	wantCode(t, err, "AccessDeniedException")
	_, err = bob.ListKeys(ctx, &awskms.ListKeysInput{})
	wantCode(t, err, "AccessDeniedException")
	_, err = bob.GenerateRandom(ctx, &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(8)})
	wantCode(t, err, "AccessDeniedException")
	// The administration API follows identity policies too.
	status, code, _, _ := e.sendAs(t, bob, "CofferAdmin.CreateUser", `{"UserName":"eve"}`)
	if status != 400 || code != "AccessDeniedException" {
		t.Fatalf("bob created a user: %d %s", status, code)
	}
	status, _, _, raw := e.send(t, rawRequest{target: "CofferAdmin.CreateUser", body: `{"UserName":"eve"}`})
	if status != 200 || !strings.Contains(raw, `"Arn":"arn:aws:iam::111122223333:user/eve"`) {
		t.Fatalf("admin CreateUser: %d %s", status, raw)
	}
	status, _, _, raw = e.send(t, rawRequest{target: "CofferAdmin.CreateAccessKey", body: `{"UserName":"eve"}`})
	if status != 200 || !strings.Contains(raw, `"SecretAccessKey"`) {
		t.Fatalf("admin CreateAccessKey: %d %s", status, raw)
	}
}

// sendAs is not possible with an SDK client's credentials from outside, so
// the admin test above uses the service to make bob's key and signs by hand.
func (e *testEnv) sendAs(t *testing.T, _ *awskms.Client, target, body string) (int, string, string, string) {
	t.Helper()
	ak, err := e.svc.CreateAccessKey(context.Background(), &kms.Caller{ARN: "arn:aws:iam::111122223333:root", Account: testAccount}, &kms.UserNameInput{UserName: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	return e.send(t, rawRequest{target: target, body: body, id: ak.AccessKey.AccessKeyId, secret: ak.AccessKey.SecretAccessKey})
}
