package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

const softhsmModule = "/usr/lib/softhsm/libsofthsm2.so"

// softToken makes a SoftHSM2 token in a private SOFTHSM2_CONF and returns a
// PIN file for it.
func softToken(t *testing.T, label string) string {
	t.Helper()
	if _, err := os.Stat(softhsmModule); err != nil {
		t.Skip("SoftHSM2 is not installed (apt-get install softhsm2); .ci/run installs it")
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		t.Skip("softhsm2-util is not installed")
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tokens"), 0o700)
	conf := filepath.Join(dir, "softhsm2.conf")
	os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\n"), 0o600)
	t.Setenv("SOFTHSM2_CONF", conf)
	if out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", label, "--pin", "1234", "--so-pin", "567890").CombinedOutput(); err != nil {
		t.Fatalf("init token: %v\n%s", err, out)
	}
	pin := filepath.Join(dir, "pin")
	os.WriteFile(pin, []byte("1234\n"), 0o600)
	return pin
}

func TestServeWithPKCS11Root(t *testing.T) {
	pin := softToken(t, "coffer-test")
	hsmArgs := []string{"--pkcs11-module", softhsmModule, "--pkcs11-token", "coffer-test", "--pkcs11-pin-file", pin}
	out, err := exec.Command(cofferBin, append([]string{"admin", "hsm", "init"}, hsmArgs...)...).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("created root key")) {
		t.Fatalf("coffer admin hsm init: %v\n%s", err, out)
	}
	if out, err := exec.Command(cofferBin, append([]string{"admin", "hsm", "init"}, hsmArgs...)...).CombinedOutput(); err == nil {
		t.Fatalf("a second hsm init succeeded: %s", out)
	}
	dir := t.TempDir()
	p := startServe(t, dir, append([]string{"--hsm", "pkcs11"}, hsmArgs...)...)
	credFile := filepath.Join(dir, "coffer-data", "credentials")
	c := sdkClient(t, credFile, p.endpoint)
	ctx := context.Background()
	key, err := c.CreateKey(ctx, &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("under the HSM")})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(p.endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metricsText), "hsm") {
		t.Fatal("/metrics has no HSM pool metrics")
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	p.done <- nil

	// Restart on the token: old ciphertext decrypts; the material was never on disk in the clear.
	p2 := startServe(t, dir, append([]string{"--hsm", "pkcs11"}, hsmArgs...)...)
	dec, err := sdkClient(t, credFile, p2.endpoint).Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil || string(dec.Plaintext) != "under the HSM" {
		t.Fatalf("decrypt after restart: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "coffer-data", "root.key")); err == nil {
		t.Fatal("a software root key was written for a PKCS#11 data dir")
	}
	p2.cmd.Process.Signal(syscall.SIGTERM)
	<-p2.done
	p2.done <- nil

	// The data dir refuses another kind of root.
	cmd := exec.Command(cofferBin, "serve", "--listen", "127.0.0.1:0")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil || !bytes.Contains(out, []byte("was created with the pkcs11 root")) {
		t.Fatalf("software root on a PKCS#11 data dir: %v\n%s", err, out)
	}
}

// TestMigrateSoftwareToPKCS11 moves a data dir made on the software root to
// a token: old ciphertext decrypts, the administrator's access key still
// signs, a role session issued before the move still works and roles can
// still be assumed, the audit chain still verifies, and a second run
// changes nothing.
func TestMigrateSoftwareToPKCS11(t *testing.T) {
	pin := softToken(t, "coffer-migrate")
	hsmArgs := []string{"--pkcs11-module", softhsmModule, "--pkcs11-token", "coffer-migrate", "--pkcs11-pin-file", pin}
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "coffer-data")
	credFile := filepath.Join(dataDir, "credentials")
	ctx := context.Background()

	p := startServe(t, dir)
	c := sdkClient(t, credFile, p.endpoint)
	var blobs [][]byte
	for i := range 3 {
		key, err := c.CreateKey(ctx, &awskms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 { // a rotated key: both versions must move
			if _, err := c.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: key.KeyMetadata.KeyId}); err != nil {
				t.Fatal(err)
			}
		}
		enc, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("before the move")})
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, enc.CiphertextBlob)
	}
	// A role, and a session of it: the first AssumeRole makes the
	// session-token key, wrapped under the root.
	env := append(cleanAWSEnv(), "AWS_SHARED_CREDENTIALS_FILE="+credFile, "AWS_CONFIG_FILE=/dev/null",
		"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL_KMS="+p.endpoint)
	os.WriteFile(filepath.Join(dir, "trust.json"), []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/admin"},"Action":"sts:AssumeRole"}]}`), 0o600)
	role := exec.Command(cofferBin, "admin", "role", "create", "pipeline", "--trust", "trust.json")
	role.Env, role.Dir = env, dir
	if out, err := role.CombinedOutput(); err != nil {
		t.Fatalf("role create: %v\n%s", err, out)
	}
	session := assumeRole(t, credFile, p.endpoint)
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	p.done <- nil

	migrate := func() string {
		t.Helper()
		out, err := exec.Command(cofferBin, append([]string{"admin", "hsm", "migrate", "--data-dir", dataDir}, hsmArgs...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("migrate: %v\n%s", err, out)
		}
		return string(out)
	}
	// Without the token's root key the migration refuses and changes nothing.
	if out, err := exec.Command(cofferBin, append([]string{"admin", "hsm", "migrate", "--data-dir", dataDir}, hsmArgs...)...).CombinedOutput(); err == nil {
		t.Fatalf("migrate without a root key in the token succeeded: %s", out)
	}
	if out, err := exec.Command(cofferBin, append([]string{"admin", "hsm", "init"}, hsmArgs...)...).CombinedOutput(); err != nil {
		t.Fatalf("hsm init: %v\n%s", err, out)
	}
	if out := migrate(); !strings.Contains(out, "re-wrapped 4 key versions and 1 access keys") ||
		!strings.Contains(out, "session-token key") || !strings.Contains(out, "record key") || !strings.Contains(out, "audit signing key") {
		t.Fatalf("migrate said:\n%s", out)
	}
	if out := migrate(); !strings.Contains(out, "nothing to do") {
		t.Fatalf("second migrate said:\n%s", out)
	}

	// The software root no longer opens the data dir's server; the token does.
	cmd := exec.Command(cofferBin, "serve", "--listen", "127.0.0.1:0")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil || !bytes.Contains(out, []byte("was created with the pkcs11 root")) {
		t.Fatalf("software root after migration: %v\n%s", err, out)
	}
	p2 := startServe(t, dir, append([]string{"--hsm", "pkcs11"}, hsmArgs...)...)
	c2 := sdkClient(t, credFile, p2.endpoint)
	for i, b := range blobs {
		dec, err := c2.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: b})
		if err != nil || string(dec.Plaintext) != "before the move" {
			t.Fatalf("blob %d after migration: %v", i, err)
		}
	}
	sessionSTS := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(p2.endpoint), Credentials: session, RetryMaxAttempts: 1})
	id, err := sessionSTS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Arn) != "arn:aws:sts::111122223333:assumed-role/pipeline/before-the-move" {
		t.Fatalf("a session from before the migration: %v", err)
	}
	assumeRole(t, credFile, p2.endpoint)
	p2.cmd.Process.Signal(syscall.SIGTERM)
	<-p2.done
	p2.done <- nil
	if out, err := exec.Command(cofferBin, "audit", "verify", filepath.Join(dataDir, "audit")).CombinedOutput(); err != nil {
		t.Fatalf("audit verify after migration: %v\n%s", err, out)
	}
}

// assumeRole assumes role pipeline as the administrator in credFile and
// returns the session's credentials.
func assumeRole(t *testing.T, credFile, endpoint string) aws.CredentialsProvider {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithSharedCredentialsFiles([]string{credFile}), config.WithSharedConfigFiles([]string{credFile}),
		config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	c := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint, o.RetryMaxAttempts = aws.String(endpoint), 1 })
	out, err := c.AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:aws:iam::111122223333:role/pipeline"), RoleSessionName: aws.String("before-the-move")})
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	k := out.Credentials
	return credentials.NewStaticCredentialsProvider(aws.ToString(k.AccessKeyId), aws.ToString(k.SecretAccessKey), aws.ToString(k.SessionToken))
}
