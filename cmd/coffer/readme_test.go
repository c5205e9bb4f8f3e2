package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

// TestReadmeCLI runs the README's AWS CLI walkthrough, verbatim but for the
// port and the credentials file's path, against a real `coffer serve`
// started as `make run` starts it (the Makefile's RUN_ARGS), from the
// repository root as the README says: twice in a row on one data dir (the
// block cleans up after itself and leaves its key usable), leaving the
// repository as it was.
func TestReadmeCLI(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the AWS CLI is not installed; this test runs the README's aws commands")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed; the README wraps key material for import with it")
	}
	if testing.Short() {
		t.Skip("-short: the README's commands take two minutes with the AWS CLI v1; make test runs them")
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "<!-- cli:begin -->\n```sh\n")
	block, _, ok2 := strings.Cut(block, "```\n<!-- cli:end -->")
	if !ok || !ok2 {
		t.Fatal("README has no cli:begin/cli:end block")
	}
	for _, want := range []string{"http://127.0.0.1:7300", "AWS_SHARED_CREDENTIALS_FILE=coffer-data/credentials"} {
		if !strings.Contains(block, want) {
			t.Fatalf("README's commands do not use %s", want)
		}
	}
	dir := t.TempDir()
	p := startServe(t, dir, makeRunArgs(t, repo)...)
	script := strings.ReplaceAll(block, "http://127.0.0.1:7300", p.endpoint)
	script = strings.ReplaceAll(script, "AWS_SHARED_CREDENTIALS_FILE=coffer-data/credentials",
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "coffer-data", "credentials"))
	before, gitOK := gitStatus(t, repo)
	var keys []string
	for run := 1; run <= 2; run++ {
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script+"\necho \"README-KEY=$KEY\"\n")
		cmd.Dir = repo
		cmd.Env = cleanAWSEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("run %d: README commands failed: %v\n%s", run, err, out)
		}
		if n := strings.Count(string(out), "hello, coffer"); n != 2 {
			t.Fatalf("run %d: decrypt printed the plaintext %d times, want 2 (before and after rotation):\n%s", run, n, out)
		}
		if !strings.Contains("\n"+string(out), "\ntrue\n") {
			t.Fatalf("run %d: verify did not print the signature valid:\n%s", run, out)
		}
		// The imported key and the multi-Region key (its replica decrypting
		// in eu-west-1) each print their plaintext once.
		for _, line := range []string{"under imported material", "encrypted in us-east-1", `"Enabled"`} {
			if n := strings.Count("\n"+string(out), "\n"+line+"\n"); n != 1 {
				t.Fatalf("run %d: %q printed %d times on a line of its own, want 1:\n%s", run, line, n, out)
			}
		}
		for _, want := range []string{`"AliasName": "alias/app"`, `"RotationType": "ON_DEMAND"`, `"KeyState": "PendingDeletion"`, `"TagValue": "data"`,
			`"MacAlgorithm": "HMAC_SHA_256"`, `"MultiRegionKeyType": "REPLICA"`, `"Region": "eu-west-1"`, `"Region": "us-east-1"`} {
			if !strings.Contains(string(out), want) {
				t.Fatalf("run %d: output lacks %s:\n%s", run, want, out)
			}
		}
		_, key, _ := strings.Cut(string(out), "README-KEY=")
		keys = append(keys, strings.TrimSpace(key))
	}
	if after, _ := gitStatus(t, repo); gitOK && after != before {
		t.Fatalf("the README's commands changed the repository:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// The block leaves its key usable.
	c := sdkClient(t, filepath.Join(dir, "coffer-data", "credentials"), p.endpoint)
	for _, key := range keys {
		if _, err := c.Encrypt(context.Background(), &awskms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")}); err != nil {
			t.Fatalf("the README's key %s is not usable after the block: %v", key, err)
		}
	}
}

// makeRunArgs returns the arguments `make run` gives coffer serve: the
// Makefile's RUN_ARGS.
func makeRunArgs(t *testing.T, repo string) []string {
	mk, err := os.ReadFile(filepath.Join(repo, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mk), "\n") {
		if args, ok := strings.CutPrefix(line, "RUN_ARGS ?="); ok {
			return strings.Fields(args)
		}
	}
	t.Fatal("the Makefile has no RUN_ARGS ?= line")
	return nil
}

// gitStatus returns `git status --porcelain` of the repository at dir, and
// whether it could (not in a checkout, or without git, it cannot).
func gitStatus(t *testing.T, dir string) (string, bool) {
	cmd := exec.Command("git", "status", "--porcelain", "--untracked-files=all")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Logf("git status: %v; the repository is not checked for stray files", err)
		return "", false
	}
	return string(out), true
}

// cleanAWSEnv is the environment without any AWS_* variable of the
// developer's, so that only the README's settings apply.
func cleanAWSEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return env
}

// TestRolesWithAWSCLI makes a role with `coffer admin role`, assumes it
// with `aws sts assume-role` and uses the session with `aws kms` and
// `aws sts get-caller-identity`, as the README shows.
func TestRolesWithAWSCLI(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the AWS CLI is not installed")
	}
	dir := t.TempDir()
	p := startServe(t, dir)
	if _, exports := p.output(5 * time.Second); exports["AWS_SHARED_CREDENTIALS_FILE"] == "" {
		t.Fatal("the first start printed no credentials file")
	}
	env := append(cleanAWSEnv(), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "coffer-data", "credentials"),
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1", "AWS_ENDPOINT_URL_KMS="+p.endpoint, "AWS_CONFIG_FILE=/dev/null")
	run := func(env []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env, cmd.Dir = env, dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	os.WriteFile(filepath.Join(dir, "trust.json"), []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/admin"},"Action":"sts:AssumeRole"}]}`), 0o600)
	os.WriteFile(filepath.Join(dir, "use.json"), []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt","kms:CreateKey"],"Resource":"*"}]}`), 0o600)
	if out := run(env, cofferBin, "admin", "role", "create", "pipeline", "--trust", "trust.json"); !strings.Contains(out, `"Arn": "arn:aws:iam::111122223333:role/pipeline"`) {
		t.Fatalf("role create: %s", out)
	}
	run(env, cofferBin, "admin", "role-policy", "put", "pipeline", "use", "--document", "use.json")
	creds := run(env, "aws", "sts", "assume-role", "--endpoint-url", p.endpoint, "--role-arn", "arn:aws:iam::111122223333:role/pipeline",
		"--role-session-name", "cli", "--query", "Credentials.[AccessKeyId,SecretAccessKey,SessionToken]", "--output", "text")
	f := strings.Fields(creds)
	if len(f) != 3 || !strings.HasPrefix(f[0], "ASIA") {
		t.Fatalf("assume-role printed %q", creds)
	}
	session := append(cleanAWSEnv(), "AWS_ACCESS_KEY_ID="+f[0], "AWS_SECRET_ACCESS_KEY="+f[1], "AWS_SESSION_TOKEN="+f[2],
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	if out := run(session, "aws", "sts", "get-caller-identity", "--endpoint-url", p.endpoint, "--query", "Arn", "--output", "text"); strings.TrimSpace(out) != "arn:aws:sts::111122223333:assumed-role/pipeline/cli" {
		t.Fatalf("get-caller-identity: %q", out)
	}
	key := strings.TrimSpace(run(session, "aws", "kms", "create-key", "--endpoint-url", p.endpoint, "--query", "KeyMetadata.KeyId", "--output", "text"))
	run(session, "aws", "kms", "encrypt", "--endpoint-url", p.endpoint, "--key-id", key, "--plaintext", "from a role", "--query", "CiphertextBlob", "--output", "text")
	cmd := exec.Command("aws", "kms", "disable-key", "--endpoint-url", p.endpoint, "--key-id", key)
	cmd.Env = session
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "AccessDeniedException") {
		t.Fatalf("disable-key as the role: %v\n%s", err, out)
	}
}
