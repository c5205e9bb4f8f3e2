package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
