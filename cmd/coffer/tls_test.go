package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

// TestTLSSelfSignedWithAWSCLIAndSDK: `coffer serve --tls-self-signed`
// prints the AWS_CA_BUNDLE line; the AWS CLI with --ca-bundle and
// aws-sdk-go-v2 with only that bundle trusted both work; SIGHUP reloads.
func TestTLSSelfSignedWithAWSCLIAndSDK(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, dir, "--tls-self-signed")
	if !strings.HasPrefix(p.endpoint, "https://") {
		t.Fatalf("endpoint %s, want https", p.endpoint)
	}
	var bundle string
	for deadline := time.Now().Add(5 * time.Second); bundle == "" && time.Now().Before(deadline); {
		_, exports := p.output(time.Second)
		bundle = exports["AWS_CA_BUNDLE"]
	}
	if bundle == "" || bundle != filepath.Join(dir, "coffer-data", "tls", "cert.pem") {
		t.Fatalf("AWS_CA_BUNDLE %q", bundle)
	}
	credFile := filepath.Join(dir, "coffer-data", "credentials")
	raw, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(raw)
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithSharedCredentialsFiles([]string{credFile}),
		config.WithSharedConfigFiles([]string{credFile}), config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	c := awskms.NewFromConfig(cfg, func(o *awskms.Options) {
		o.BaseEndpoint, o.RetryMaxAttempts = aws.String(p.endpoint), 1
		o.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	})
	key, err := c.CreateKey(context.Background(), &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatalf("SDK over TLS: %v", err)
	}
	// SIGHUP reloads the (unchanged) pair and the server goes on.
	p.cmd.Process.Signal(syscall.SIGHUP)

	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the AWS CLI is not installed")
	}
	env := append(cleanAWSEnv(), "AWS_SHARED_CREDENTIALS_FILE="+credFile, "AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null")
	cmd := exec.Command("aws", "kms", "encrypt", "--endpoint-url", p.endpoint, "--ca-bundle", bundle,
		"--key-id", *key.KeyMetadata.KeyId, "--plaintext", "over tls", "--query", "KeyId", "--output", "text")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), *key.KeyMetadata.KeyId) {
		t.Fatalf("aws kms encrypt --ca-bundle: %v\n%s", err, out)
	}
	// Without the bundle the CLI does not trust the server.
	cmd = exec.Command("aws", "kms", "list-keys", "--endpoint-url", p.endpoint)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("aws kms list-keys without the CA bundle succeeded:\n%s", out)
	}
	// AWS_CA_BUNDLE as printed works the same.
	cmd = exec.Command("aws", "kms", "list-keys", "--endpoint-url", p.endpoint)
	cmd.Env = append(env, "AWS_CA_BUNDLE="+bundle)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("aws kms list-keys with AWS_CA_BUNDLE: %v\n%s", err, out)
	}
}
