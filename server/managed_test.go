package server_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	smithymw "github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/coffer-kms/coffer/kms"
)

// viaHeader sets X-Coffer-Via-Service on every request of a client: in the
// Build step, so that SigV4 (Finalize) signs it, or after signing when
// unsigned is set.
func viaHeader(value string, unsigned bool) func(*awskms.Options) {
	return func(o *awskms.Options) {
		o.APIOptions = append(o.APIOptions, func(st *smithymw.Stack) error {
			set := func(in any) {
				if req, ok := in.(*smithyhttp.Request); ok {
					req.Header.Set("X-Coffer-Via-Service", value)
				}
			}
			if unsigned {
				return st.Finalize.Add(smithymw.FinalizeMiddlewareFunc("via-after-signing",
					func(ctx context.Context, in smithymw.FinalizeInput, next smithymw.FinalizeHandler) (smithymw.FinalizeOutput, smithymw.Metadata, error) {
						set(in.Request)
						return next.HandleFinalize(ctx, in)
					}), smithymw.After)
			}
			return st.Build.Add(smithymw.BuildMiddlewareFunc("via",
				func(ctx context.Context, in smithymw.BuildInput, next smithymw.BuildHandler) (smithymw.BuildOutput, smithymw.Metadata, error) {
					set(in.Request)
					return next.HandleBuild(ctx, in)
				}), smithymw.After)
		})
	}
}

// TestManagedKeys drives AWS managed keys over a real socket with the AWS
// SDK: 64 concurrent first uses create one key; it is used through S3 by
// a principal allowed to act for S3 and refused to direct use; every
// management call gets AWS's exception; a restart keeps it.
func TestManagedKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	e := newEnv(t)
	ctx := context.Background()
	root := &kms.Caller{ARN: "arn:aws:iam::" + testAccount + ":root", Account: testAccount}
	if _, err := e.svc.CreateUser(ctx, root, &kms.UserNameInput{UserName: "s3svc"}); err != nil {
		t.Fatal(err)
	}
	actAsS3 := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"coffer:ActAs","Resource":"arn:aws:iam::` + testAccount + `:service/s3"}]}`
	if _, err := e.svc.PutUserPolicy(ctx, root, &kms.UserPolicyInput{UserName: "s3svc", PolicyName: "p", PolicyDocument: actAsS3}); err != nil {
		t.Fatal(err)
	}
	ak, err := e.svc.CreateAccessKey(ctx, root, &kms.UserNameInput{UserName: "s3svc"})
	if err != nil {
		t.Fatal(err)
	}
	client := func(opts ...func(*awskms.Options)) *awskms.Client {
		c := e.newClient(ak.AccessKey.AccessKeyId, ak.AccessKey.SecretAccessKey)
		return awskms.New(c.Options(), opts...)
	}
	viaS3 := client(viaHeader("s3."+testRegion+".amazonaws.com", false))
	direct := client()
	alias := aws.String("alias/aws/s3")

	// 64 concurrent first uses: GenerateDataKey through S3 and DescribeKey
	// by the administrator.
	var wg sync.WaitGroup
	ids := make([]string, 64)
	errs := make([]error, 64)
	for i := range 64 {
		wg.Go(func() {
			if i%2 == 0 {
				out, err := viaS3.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: alias, KeySpec: types.DataKeySpecAes256})
				if errs[i] = err; err == nil {
					ids[i] = aws.ToString(out.KeyId)
				}
				return
			}
			out, err := e.client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: alias})
			if errs[i] = err; err == nil {
				ids[i] = aws.ToString(out.KeyMetadata.Arn)
			}
		})
	}
	wg.Wait()
	for i := range 64 {
		if errs[i] != nil {
			t.Fatalf("first use %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("first use %d got %s, first use 0 got %s", i, ids[i], ids[0])
		}
	}
	keyARN := ids[0]
	keyID := keyARN[strings.LastIndexByte(keyARN, '/')+1:]
	keys := must[*awskms.ListKeysOutput](t)(e.client.ListKeys(ctx, &awskms.ListKeysInput{}))
	if len(keys.Keys) != 1 || aws.ToString(keys.Keys[0].KeyId) != keyID {
		t.Fatalf("ListKeys after 64 first uses: %d keys, want the one managed key", len(keys.Keys))
	}
	found := false
	for _, a := range must[*awskms.ListAliasesOutput](t)(e.client.ListAliases(ctx, &awskms.ListAliasesInput{})).Aliases {
		if aws.ToString(a.AliasName) == "alias/aws/s3" {
			found = aws.ToString(a.TargetKeyId) == keyID
		}
	}
	if !found {
		t.Fatalf("ListAliases has no alias/aws/s3 → %s", keyID)
	}
	md := must[*awskms.DescribeKeyOutput](t)(e.client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(keyID)})).KeyMetadata
	if md.KeyManager != types.KeyManagerTypeAws || md.KeyState != types.KeyStateEnabled {
		t.Fatalf("DescribeKey: KeyManager %s, state %s", md.KeyManager, md.KeyState)
	}

	// Use through S3; refusals to direct use and to false claims.
	ct := must[*awskms.EncryptOutput](t)(viaS3.Encrypt(ctx, &awskms.EncryptInput{KeyId: alias, Plaintext: []byte("object")}))
	pt := must[*awskms.DecryptOutput](t)(viaS3.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: ct.CiphertextBlob}))
	if string(pt.Plaintext) != "object" {
		t.Fatalf("Decrypt through S3: %q", pt.Plaintext)
	}
	_, err = direct.Encrypt(ctx, &awskms.EncryptInput{KeyId: alias, Plaintext: []byte("x")})
	wantCode(t, err, "AccessDeniedException")
	_, err = e.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: ct.CiphertextBlob})
	wantCode(t, err, "AccessDeniedException")
	_, err = client(viaHeader("ec2."+testRegion+".amazonaws.com", false)).Encrypt(ctx, &awskms.EncryptInput{KeyId: alias, Plaintext: []byte("x")})
	wantCode(t, err, "AccessDeniedException") // not allowed to act for EC2
	_, err = client(viaHeader("s3."+testRegion+".amazonaws.com", true)).Encrypt(ctx, &awskms.EncryptInput{KeyId: alias, Plaintext: []byte("x")})
	wantCode(t, err, "IncompleteSignatureException") // the header must be signed
	_, err = client(viaHeader("s3", false)).Encrypt(ctx, &awskms.EncryptInput{KeyId: alias, Plaintext: []byte("x")})
	wantCode(t, err, "ValidationException")
	nobody, _ := e.principal(t, testAccount, "nobody", allowAll)
	_, err = awskms.New(nobody.Options(), viaHeader("s3."+testRegion+".amazonaws.com", false)).Encrypt(ctx, &awskms.EncryptInput{KeyId: alias, Plaintext: []byte("x")})
	wantCode(t, err, "AccessDeniedException") // kms:* does not include coffer:ActAs

	// Every management call, by the administrator and through S3.
	id := aws.String(keyID)
	mine := e.createKey("mine")
	must[*awskms.CreateAliasOutput](t)(e.client.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/mine"), TargetKeyId: aws.String(mine)}))
	calls := []struct {
		name string
		call func(c *awskms.Client) error
		code string
	}{
		{"PutKeyPolicy", func(c *awskms.Client) error {
			_, err := c.PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{KeyId: id, PolicyName: aws.String("default"), Policy: aws.String(`{"Version":"2012-10-17","Statement":[]}`)})
			return err
		}, "AccessDeniedException"},
		{"DisableKey", func(c *awskms.Client) error {
			_, err := c.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: id})
			return err
		}, "AccessDeniedException"},
		{"EnableKey", func(c *awskms.Client) error {
			_, err := c.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: id})
			return err
		}, "AccessDeniedException"},
		{"ScheduleKeyDeletion", func(c *awskms.Client) error {
			_, err := c.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: aws.Int32(7)})
			return err
		}, "AccessDeniedException"},
		{"RotateKeyOnDemand", func(c *awskms.Client) error {
			_, err := c.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: id})
			return err
		}, "AccessDeniedException"},
		{"EnableKeyRotation", func(c *awskms.Client) error {
			_, err := c.EnableKeyRotation(ctx, &awskms.EnableKeyRotationInput{KeyId: id})
			return err
		}, "AccessDeniedException"},
		{"DisableKeyRotation", func(c *awskms.Client) error {
			_, err := c.DisableKeyRotation(ctx, &awskms.DisableKeyRotationInput{KeyId: id})
			return err
		}, "AccessDeniedException"},
		{"UpdateKeyDescription", func(c *awskms.Client) error {
			_, err := c.UpdateKeyDescription(ctx, &awskms.UpdateKeyDescriptionInput{KeyId: id, Description: aws.String("x")})
			return err
		}, "AccessDeniedException"},
		{"TagResource", func(c *awskms.Client) error {
			_, err := c.TagResource(ctx, &awskms.TagResourceInput{KeyId: id, Tags: tags("k", "v")})
			return err
		}, "AccessDeniedException"},
		{"UntagResource", func(c *awskms.Client) error {
			_, err := c.UntagResource(ctx, &awskms.UntagResourceInput{KeyId: id, TagKeys: []string{"k"}})
			return err
		}, "AccessDeniedException"},
		{"CreateAlias to it", func(c *awskms.Client) error {
			_, err := c.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/s3-too"), TargetKeyId: id})
			return err
		}, "AccessDeniedException"},
		{"UpdateAlias to it", func(c *awskms.Client) error {
			_, err := c.UpdateAlias(ctx, &awskms.UpdateAliasInput{AliasName: aws.String("alias/mine"), TargetKeyId: id})
			return err
		}, "AccessDeniedException"},
		{"UpdateAlias alias/aws/s3", func(c *awskms.Client) error {
			_, err := c.UpdateAlias(ctx, &awskms.UpdateAliasInput{AliasName: alias, TargetKeyId: aws.String(mine)})
			return err
		}, "NotAuthorizedException"},
		{"DeleteAlias alias/aws/s3", func(c *awskms.Client) error {
			_, err := c.DeleteAlias(ctx, &awskms.DeleteAliasInput{AliasName: alias})
			return err
		}, "NotAuthorizedException"},
	}
	for _, c := range []*awskms.Client{e.client, viaS3} {
		for _, tc := range calls {
			if got := apiCode(tc.call(c)); got != tc.code {
				t.Errorf("%s: %s, want %s", tc.name, got, tc.code)
			}
		}
	}
	rot := must[*awskms.GetKeyRotationStatusOutput](t)(e.client.GetKeyRotationStatus(ctx, &awskms.GetKeyRotationStatusInput{KeyId: id}))
	if !rot.KeyRotationEnabled || aws.ToInt32(rot.RotationPeriodInDays) != 365 {
		t.Fatalf("GetKeyRotationStatus: enabled %v, period %d", rot.KeyRotationEnabled, aws.ToInt32(rot.RotationPeriodInDays))
	}

	// A restart keeps the key, its alias and its ciphertexts.
	e.restart()
	viaS3 = client(viaHeader("s3."+testRegion+".amazonaws.com", false))
	after := must[*awskms.DescribeKeyOutput](t)(viaS3.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: alias})).KeyMetadata
	if aws.ToString(after.Arn) != keyARN || after.KeyManager != types.KeyManagerTypeAws {
		t.Fatalf("after restart alias/aws/s3 is %s (%s), want %s", aws.ToString(after.Arn), after.KeyManager, keyARN)
	}
	pt = must[*awskms.DecryptOutput](t)(viaS3.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: ct.CiphertextBlob}))
	if string(pt.Plaintext) != "object" {
		t.Fatalf("Decrypt after restart: %q", pt.Plaintext)
	}
	if n := len(must[*awskms.ListKeysOutput](t)(e.client.ListKeys(ctx, &awskms.ListKeysInput{})).Keys); n != 2 {
		t.Fatalf("ListKeys after restart: %d keys, want the managed key and mine", n)
	}
}
