package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/coffer-kms/coffer/kms"
	"github.com/coffer-kms/coffer/server"
)

// TestThrottlingPerAccount: a burst over an account's cryptographic quota
// is answered ThrottlingException (HTTP 400, AWS's message) while another
// account goes on; the SDK's standard retryer gets through afterwards.
func TestThrottlingPerAccount(t *testing.T) {
	e := newEnv(t)
	e.configure = func(c *server.Config) {
		c.RateLimits = &server.RateLimits{Accounts: map[string]map[string]float64{testAccount: {"cryptographic": 5}}}
	}
	e.restart()
	ctx := context.Background()
	key := e.createKey("throttled")
	other, _ := e.principal(t, otherAccount, "tenant", allowAll)
	otherKey := must[*awskms.CreateKeyOutput](t)(other.CreateKey(ctx, &awskms.CreateKeyInput{}))

	throttled := 0
	for range 20 {
		_, err := e.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")})
		if err == nil {
			continue
		}
		wantCode(t, err, "ThrottlingException")
		if msg := apiMessage(err); msg != "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls." {
			t.Fatalf("message %q", msg)
		}
		var re *smithyhttp.ResponseError
		if !errors.As(err, &re) || re.HTTPStatusCode() != 400 {
			t.Fatalf("status of %v, want 400", err)
		}
		throttled++
	}
	if throttled < 10 {
		t.Fatalf("%d of 20 calls throttled at 5 per second", throttled)
	}
	// Another account's quota is its own (AWS's default).
	for range 20 {
		if _, err := other.Encrypt(ctx, &awskms.EncryptInput{KeyId: otherKey.KeyMetadata.KeyId, Plaintext: []byte("x")}); err != nil {
			t.Fatalf("the other account: %v", err)
		}
	}
	// Management operations draw on their own quotas, not the shared one.
	if _, err := e.client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(key)}); err != nil {
		t.Fatalf("DescribeKey while Encrypt is throttled: %v", err)
	}
	// The SDK's standard retryer, with its defaults, gets through.
	retrying := awskms.NewFromConfig(aws.Config{Region: testRegion, Credentials: e.client.Options().Credentials}, func(o *awskms.Options) {
		o.BaseEndpoint = aws.String(e.url)
	})
	for range 5 {
		if _, err := retrying.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")}); err != nil {
			t.Fatalf("with the standard retryer: %v", err)
		}
	}
	m := e.metricsText(t)
	if !strings.Contains(m, `coffer_throttled_total{operation="Encrypt"}`) || strings.Contains(m, `coffer_throttled_total{operation="Encrypt"} 0`) {
		t.Fatalf("no throttle counted in /metrics")
	}
	for _, l := range strings.Split(m, "\n") {
		if strings.HasPrefix(l, "coffer_throttled_total") && (strings.Contains(l, testAccount) || strings.Contains(l, key)) {
			t.Fatalf("/metrics names an account or key: %s", l)
		}
	}
}

// TestRateLimitsValidate refuses unknown quota names, rates that are not
// positive and account IDs that are not 12 digits.
func TestRateLimitsValidate(t *testing.T) {
	for _, bad := range []server.RateLimits{
		{Default: map[string]float64{"Cryptographic": 1}},
		{Default: map[string]float64{"Encrypt": 1}}, // shares the cryptographic quota
		{Default: map[string]float64{"CreateKey": 0}},
		{Accounts: map[string]map[string]float64{"12345": {"CreateKey": 1}}},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	ok := server.RateLimits{Default: map[string]float64{"cryptographic": 10, "CreateAlias": 1}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestThrottlingPerRegion: AWS's quotas are per account and Region. With
// the account's cryptographic quota at 5 a second in a server serving two
// Regions, a burst that exhausts it in one leaves the other's whole: its
// next five calls, made at once, all go through (one shared bucket would
// have at most one token by then), and the other Region then throttles on
// its own.
func TestThrottlingPerRegion(t *testing.T) {
	e := newEnv(t)
	e.configure = func(c *server.Config) {
		eu, err := c.Service.InRegion(otherRegion)
		if err != nil {
			t.Fatal(err)
		}
		c.Regions = []*kms.Service{eu}
		c.RateLimits = &server.RateLimits{Accounts: map[string]map[string]float64{testAccount: {"cryptographic": 5}}}
	}
	e.restart()
	ctx := context.Background()
	us, eu := e.client, e.clientIn(otherRegion)
	usKey := e.createKey("us")
	euKey := must[*awskms.CreateKeyOutput](t)(eu.CreateKey(ctx, &awskms.CreateKeyInput{})).KeyMetadata.KeyId
	encrypt := func(c *awskms.Client, key *string) error {
		_, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: key, Plaintext: []byte("x")})
		return err
	}
	throttled := 0
	for range 20 {
		if err := encrypt(us, aws.String(usKey)); err != nil {
			wantCode(t, err, "ThrottlingException")
			throttled++
		}
	}
	if throttled < 10 {
		t.Fatalf("%d of 20 calls in %s throttled at 5 per second", throttled, testRegion)
	}
	for i := range 5 {
		if err := encrypt(eu, euKey); err != nil {
			t.Fatalf("call %d in %s right after %s's quota ran out: %v", i+1, otherRegion, testRegion, err)
		}
	}
	throttled = 0
	for range 15 {
		if err := encrypt(eu, euKey); err != nil {
			wantCode(t, err, "ThrottlingException")
			throttled++
		}
	}
	if throttled < 10 {
		t.Fatalf("%d of 15 further calls in %s throttled at 5 per second", throttled, otherRegion)
	}
}
