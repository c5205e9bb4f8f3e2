package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/coffer-kms/coffer/kms"
	"github.com/coffer-kms/coffer/server"
)

const otherRegion = "eu-west-1"

// newRegionsEnv is a server that serves testRegion and otherRegion, and a
// client of otherRegion.
func newRegionsEnv(t *testing.T) (*testEnv, *awskms.Client) {
	e := newEnv(t)
	e.configure = func(c *server.Config) {
		eu, err := c.Service.InRegion(otherRegion)
		if err != nil {
			t.Fatal(err)
		}
		c.Regions = []*kms.Service{eu}
	}
	e.restart()
	return e, e.clientIn(otherRegion)
}

func (e *testEnv) clientIn(region string) *awskms.Client {
	return awskms.New(awskms.Options{
		Region:           region,
		BaseEndpoint:     aws.String(e.url),
		Credentials:      credentials.NewStaticCredentialsProvider(e.creds.AccessKeyID, e.creds.SecretAccessKey, ""),
		RetryMaxAttempts: 1,
	})
}

func TestRegionsArePerRegion(t *testing.T) {
	e, eu := newRegionsEnv(t)
	ctx := context.Background()
	us := e.client
	usKey := must[*awskms.CreateKeyOutput](t)(us.CreateKey(ctx, &awskms.CreateKeyInput{}))
	euKey := must[*awskms.CreateKeyOutput](t)(eu.CreateKey(ctx, &awskms.CreateKeyInput{}))
	if !strings.HasPrefix(*euKey.KeyMetadata.Arn, "arn:aws:kms:"+otherRegion+":") {
		t.Fatalf("eu key ARN %s", *euKey.KeyMetadata.Arn)
	}
	if !strings.HasPrefix(*usKey.KeyMetadata.Arn, "arn:aws:kms:"+testRegion+":") {
		t.Fatalf("us key ARN %s", *usKey.KeyMetadata.Arn)
	}
	list := func(c *awskms.Client) map[string]bool {
		out := must[*awskms.ListKeysOutput](t)(c.ListKeys(ctx, &awskms.ListKeysInput{}))
		m := map[string]bool{}
		for _, k := range out.Keys {
			m[*k.KeyId] = true
		}
		return m
	}
	if l := list(eu); !l[*euKey.KeyMetadata.KeyId] || l[*usKey.KeyMetadata.KeyId] {
		t.Fatalf("eu-west-1 lists %v", l)
	}
	if l := list(us); l[*euKey.KeyMetadata.KeyId] || !l[*usKey.KeyMetadata.KeyId] {
		t.Fatalf("us-east-1 lists %v", l)
	}
	// Another Region's key, by ARN or ID, is not found.
	_, err := eu.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: usKey.KeyMetadata.Arn})
	wantCode(t, err, "NotFoundException")
	_, err = eu.Encrypt(ctx, &awskms.EncryptInput{KeyId: usKey.KeyMetadata.KeyId, Plaintext: []byte("x")})
	wantCode(t, err, "NotFoundException")
	// Aliases are per Region: the same name in both.
	for _, c := range []struct {
		cl *awskms.Client
		id *string
	}{{us, usKey.KeyMetadata.KeyId}, {eu, euKey.KeyMetadata.KeyId}} {
		must[*awskms.CreateAliasOutput](t)(c.cl.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: c.id}))
		d := must[*awskms.DescribeKeyOutput](t)(c.cl.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String("alias/app")}))
		if *d.KeyMetadata.KeyId != *c.id {
			t.Fatalf("alias/app names %s, want %s", *d.KeyMetadata.KeyId, *c.id)
		}
	}
	// A Region not served is refused as AWS refuses a scope that does not
	// match the endpoint.
	_, err = e.clientIn("ap-south-1").ListKeys(ctx, &awskms.ListKeysInput{})
	wantCode(t, err, "InvalidSignatureException")
	if !strings.Contains(apiMessage(err), "Credential should be scoped to a valid region") {
		t.Fatalf("message %q", apiMessage(err))
	}
	// The audit trail names each call's Region; a restart keeps both.
	e.restart()
	eu = e.clientIn(otherRegion)
	if l := list(eu); !l[*euKey.KeyMetadata.KeyId] || l[*usKey.KeyMetadata.KeyId] {
		t.Fatalf("after restart eu-west-1 lists %v", l)
	}
	e.stop()
	trail := string(e.trailAndLogs())
	if !strings.Contains(trail, `"awsRegion":"`+otherRegion+`"`) {
		t.Fatalf("the trail has no %s record", otherRegion)
	}
}
