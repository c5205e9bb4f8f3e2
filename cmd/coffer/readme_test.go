package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReadmeCLI runs the README's AWS CLI walkthrough, verbatim but for the
// port, against a real `coffer serve` started as `make run` starts it.
func TestReadmeCLI(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the AWS CLI is not installed; this test runs the README's aws commands")
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "<!-- cli:begin -->\n```sh\n")
	block, _, ok2 := strings.Cut(block, "```\n<!-- cli:end -->")
	if !ok || !ok2 {
		t.Fatal("README has no cli:begin/cli:end block")
	}
	if !strings.Contains(block, "http://127.0.0.1:7300") {
		t.Fatal("README's commands do not use the default endpoint")
	}
	dir := t.TempDir()
	p := startServe(t, dir)
	script := strings.ReplaceAll(block, "http://127.0.0.1:7300", p.endpoint)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = cleanAWSEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README commands failed: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "hello, coffer"); n != 2 {
		t.Fatalf("decrypt printed the plaintext %d times, want 2 (before and after rotation):\n%s", n, out)
	}
	for _, want := range []string{`"AliasName": "alias/app"`, `"RotationType": "ON_DEMAND"`, `"KeyState": "PendingDeletion"`, `"TagValue": "data"`} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("output lacks %s:\n%s", want, out)
		}
	}
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
