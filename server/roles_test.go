package server_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/coffer-kms/coffer/kms"
)

func (e *testEnv) stsClient(creds aws.CredentialsProvider) *sts.Client {
	return sts.New(sts.Options{Region: testRegion, BaseEndpoint: aws.String(e.url), Credentials: creds, RetryMaxAttempts: 1})
}

func (e *testEnv) kmsClientWith(creds aws.CredentialsProvider) *awskms.Client {
	return awskms.New(awskms.Options{Region: testRegion, BaseEndpoint: aws.String(e.url), Credentials: creds, RetryMaxAttempts: 1})
}

// role creates a role in the test account through the service, as its root.
func (e *testEnv) role(t *testing.T, name, trust, identityPolicy string) string {
	t.Helper()
	ctx := context.Background()
	root := &kms.Caller{ARN: "arn:aws:iam::" + testAccount + ":root", Account: testAccount}
	out, err := e.svc.CreateRole(ctx, root, &kms.CreateRoleInput{RoleName: name, AssumeRolePolicyDocument: trust})
	if err != nil {
		t.Fatal(err)
	}
	if identityPolicy != "" {
		if _, err := e.svc.PutRolePolicy(ctx, root, &kms.RolePolicyInput{RoleName: name, PolicyName: "p", PolicyDocument: identityPolicy}); err != nil {
			t.Fatal(err)
		}
	}
	return out.Role.Arn
}

func trustPolicy(principal string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + principal + `"},"Action":"sts:AssumeRole"}]}`
}

// TestAssumeRole drives roles end to end with the AWS SDK's STS client and
// stscreds provider: a user assumes a role it is trusted for and uses the
// temporary credentials against KMS under the role's identity policy and
// under key policies naming the role; untrusted callers, tampered, missing
// and expired tokens and deleted roles are refused.
func TestAssumeRole(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	e := newEnv(t)
	ctx := context.Background()
	_, aliceARN := e.principal(t, testAccount, "alice", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`)
	ak, err := e.svc.CreateAccessKey(ctx, &kms.Caller{ARN: "arn:aws:iam::" + testAccount + ":root", Account: testAccount}, &kms.UserNameInput{UserName: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	aliceCreds := credentials.NewStaticCredentialsProvider(ak.AccessKey.AccessKeyId, ak.AccessKey.SecretAccessKey, "")
	e.principal(t, testAccount, "bob", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`)

	roleARN := e.role(t, "pipeline", trustPolicy(aliceARN), allowUse)
	keyForRoleID := must[*awskms.CreateKeyOutput](t)(e.client.CreateKey(ctx, &awskms.CreateKeyInput{
		Policy: aws.String(keyPolicy(`{"Effect":"Allow","Principal":{"AWS":"` + roleARN + `"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}`))})).KeyMetadata.KeyId
	keyForRole := *keyForRoleID
	defaultKey := e.createKey("default policy: the account delegates to identity policies")

	// AssumeRole through the SDK's credentials provider.
	provider := stscreds.NewAssumeRoleProvider(e.stsClient(aliceCreds), roleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "nightly-batch"
		o.Duration = 15 * time.Minute
	})
	creds, err := provider.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SessionToken == "" || creds.Expires.Sub(time.Now()) > 16*time.Minute {
		t.Fatalf("temporary credentials: %s, token %d bytes, expires %v", creds.AccessKeyID, len(creds.SessionToken), creds.Expires)
	}
	sessionARN := "arn:aws:sts::" + testAccount + ":assumed-role/pipeline/nightly-batch"
	who := must[*sts.GetCallerIdentityOutput](t)(e.stsClient(aws.NewCredentialsCache(provider)).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))
	if aws.ToString(who.Arn) != sessionARN || aws.ToString(who.Account) != testAccount || !strings.HasSuffix(aws.ToString(who.UserId), ":nightly-batch") {
		t.Fatalf("GetCallerIdentity as the session: %s %s %s", aws.ToString(who.Arn), aws.ToString(who.Account), aws.ToString(who.UserId))
	}

	session := e.kmsClientWith(aws.NewCredentialsCache(provider))
	for _, key := range []string{keyForRole, defaultKey} {
		enc, err := session.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("as the role")})
		if err != nil {
			t.Fatalf("encrypt under %s as the role: %v", key, err)
		}
		if _, err := session.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}); err != nil {
			t.Fatalf("decrypt as the role: %v", err)
		}
	}
	// The role's identity policy does not allow key administration.
	_, err = session.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: aws.String(defaultKey)})
	wantCode(t, err, "AccessDeniedException")
	if !strings.Contains(apiMessage(err), sessionARN) {
		t.Fatalf("denial does not name the session: %s", apiMessage(err))
	}

	// A grant to the role applies to its sessions.
	granted := *must[*awskms.CreateKeyOutput](t)(e.client.CreateKey(ctx, &awskms.CreateKeyInput{Policy: aws.String(keyPolicy())})).KeyMetadata.KeyId
	_, err = session.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(granted), Plaintext: []byte("x")})
	wantCode(t, err, "AccessDeniedException")
	must[*awskms.CreateGrantOutput](t)(e.client.CreateGrant(ctx, &awskms.CreateGrantInput{KeyId: aws.String(granted), GranteePrincipal: aws.String(roleARN), Operations: []types.GrantOperation{types.GrantOperationEncrypt}}))
	if _, err := session.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(granted), Plaintext: []byte("x")}); err != nil {
		t.Fatalf("encrypt under a grant to the role: %v", err)
	}

	// Bob is not trusted by the role; a role that does not exist looks the same.
	bobAK, err := e.svc.CreateAccessKey(ctx, &kms.Caller{ARN: "arn:aws:iam::" + testAccount + ":root", Account: testAccount}, &kms.UserNameInput{UserName: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	bobSTS := e.stsClient(credentials.NewStaticCredentialsProvider(bobAK.AccessKey.AccessKeyId, bobAK.AccessKey.SecretAccessKey, ""))
	for _, arn := range []string{roleARN, "arn:aws:iam::" + testAccount + ":role/nonexistent"} {
		_, err = bobSTS.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(arn), RoleSessionName: aws.String("s1")})
		wantCode(t, err, "AccessDenied")
	}
	aliceSTS := e.stsClient(aliceCreds)
	_, err = aliceSTS.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s1"), DurationSeconds: aws.Int32(7200)})
	wantCode(t, err, "ValidationError") // above the role's MaxSessionDuration (3600)
	_, err = aliceSTS.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("bad name!")})
	wantCode(t, err, "ValidationError")

	// Tampered, missing and misplaced tokens.
	tampered := []byte(creds.SessionToken)
	tampered[len(tampered)/2] ^= 'A' ^ 'B'
	for name, c := range map[string]aws.Credentials{
		"tampered token":        {AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: string(tampered)},
		"no token":              {AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey},
		"token of another key":  {AccessKeyID: "ASIAAAAAAAAAAAAAAAAA", SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken},
		"token with a user key": {AccessKeyID: ak.AccessKey.AccessKeyId, SecretAccessKey: ak.AccessKey.SecretAccessKey, SessionToken: creds.SessionToken},
	} {
		_, err := e.kmsClientWith(credentials.StaticCredentialsProvider{Value: c}).ListKeys(ctx, &awskms.ListKeysInput{})
		if apiCode(err) != "UnrecognizedClientException" {
			t.Errorf("%s: %v, want UnrecognizedClientException", name, err)
		}
	}

	// Sessions survive a restart: the token carries the session.
	e.restart()
	session = e.kmsClientWith(credentials.StaticCredentialsProvider{Value: creds})
	if _, err := session.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyForRole), Plaintext: []byte("x")}); err != nil {
		t.Fatalf("session after restart: %v", err)
	}

	// Role chaining is limited to an hour.
	_, err = e.stsClient(credentials.StaticCredentialsProvider{Value: creds}).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("chain"), DurationSeconds: aws.Int32(3600)})
	if apiCode(err) != "AccessDenied" { // the role trusts alice, not its own sessions
		t.Fatalf("a session assuming a role that does not trust it: %v", err)
	}

	// Expired: the service's clock moves past the session's end.
	e.clock.Advance(16 * time.Minute)
	_, err = session.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyForRole), Plaintext: []byte("x")})
	wantCode(t, err, "ExpiredTokenException")
	_, err = e.stsClient(credentials.StaticCredentialsProvider{Value: creds}).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	wantCode(t, err, "ExpiredToken")

	// A deleted role's sessions are refused at once.
	aliceSTS = e.stsClient(aliceCreds) // the restarted server listens elsewhere
	fresh := must[*sts.AssumeRoleOutput](t)(aliceSTS.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s2")}))
	freshCreds := credentials.NewStaticCredentialsProvider(*fresh.Credentials.AccessKeyId, *fresh.Credentials.SecretAccessKey, *fresh.Credentials.SessionToken)
	if _, err := e.kmsClientWith(freshCreds).Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyForRole), Plaintext: []byte("x")}); err != nil {
		t.Fatalf("fresh session (the service clock was advanced): %v", err)
	}
	if _, err := e.svc.DeleteRole(ctx, &kms.Caller{ARN: "arn:aws:iam::" + testAccount + ":root", Account: testAccount}, &kms.RoleNameInput{RoleName: "pipeline"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.kmsClientWith(freshCreds).Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyForRole), Plaintext: []byte("x")})
	wantCode(t, err, "AccessDeniedException")
	// A new role of the same name is another role: the old sessions stay dead.
	e.role(t, "pipeline", trustPolicy(aliceARN), allowUse)
	renewed := must[*sts.AssumeRoleOutput](t)(aliceSTS.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("s3")}))
	renewedCreds := credentials.NewStaticCredentialsProvider(*renewed.Credentials.AccessKeyId, *renewed.Credentials.SecretAccessKey, *renewed.Credentials.SessionToken)
	// The key policy names the old role by its unique ID (issue 19.6):
	// the new role gets nothing from it until the policy is put again.
	_, err = e.kmsClientWith(renewedCreds).Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyForRole), Plaintext: []byte("x")})
	wantCode(t, err, "AccessDeniedException")
	if _, err := e.client.PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{KeyId: aws.String(keyForRole), PolicyName: aws.String("default"),
		Policy: aws.String(keyPolicy(`{"Effect":"Allow","Principal":{"AWS":"` + roleARN + `"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}`))}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.kmsClientWith(renewedCreds).Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyForRole), Plaintext: []byte("x")}); err != nil {
		t.Fatalf("session of the new role: %v", err)
	}
	_, err = e.kmsClientWith(freshCreds).Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyForRole), Plaintext: []byte("x")})
	wantCode(t, err, "AccessDeniedException")

	// The trail has the STS calls and the session's calls, never a secret
	// or a token.
	all := e.trailAndLogs()
	for _, want := range []string{`"eventSource":"sts.amazonaws.com"`, `"eventName":"AssumeRole"`, `"type":"AssumedRole"`, sessionARN} {
		if !bytes.Contains(all, []byte(want)) {
			t.Errorf("the audit trail lacks %s", want)
		}
	}
	for _, secret := range []string{creds.SecretAccessKey, creds.SessionToken, *fresh.Credentials.SecretAccessKey, *fresh.Credentials.SessionToken} {
		if bytes.Contains(all, []byte(secret)) {
			t.Fatal("a session secret or token appears in the audit trail or the logs")
		}
	}
}

// TestAssumeRoleAcrossAccounts: a role trusting another account's root
// delegates to that account's identity policies, as AWS does.
func TestAssumeRoleAcrossAccounts(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	e := newEnv(t)
	ctx := context.Background()
	roleARN := e.role(t, "shared", trustPolicy("arn:aws:iam::"+otherAccount+":root"), allowUse)
	key := e.createKey("shared")
	rootOther := &kms.Caller{ARN: "arn:aws:iam::" + otherAccount + ":root", Account: otherAccount}
	for _, u := range []struct{ name, policy string }{
		{"allowed", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"` + roleARN + `"}]}`},
		{"notallowed", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`},
	} {
		e.principal(t, otherAccount, u.name, u.policy)
		ak, err := e.svc.CreateAccessKey(ctx, rootOther, &kms.UserNameInput{UserName: u.name})
		if err != nil {
			t.Fatal(err)
		}
		c := e.stsClient(credentials.NewStaticCredentialsProvider(ak.AccessKey.AccessKeyId, ak.AccessKey.SecretAccessKey, ""))
		out, err := c.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("x-acct")})
		if u.name == "notallowed" {
			wantCode(t, err, "AccessDenied")
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(*out.AssumedRoleUser.Arn, "arn:aws:sts::"+testAccount+":assumed-role/shared/") {
			t.Fatalf("assumed role ARN %s", *out.AssumedRoleUser.Arn)
		}
		session := e.kmsClientWith(credentials.NewStaticCredentialsProvider(*out.Credentials.AccessKeyId, *out.Credentials.SecretAccessKey, *out.Credentials.SessionToken))
		// The session is of the role's account: the key's default policy
		// delegates to the role's identity policy.
		if _, err := session.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")}); err != nil {
			t.Fatalf("cross-account session: %v", err)
		}
	}
}
