package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSelfTestCorruptedVectorRefusesToStart: a binary built with the
// selftesthook tag, told to corrupt one known answer, refuses to serve and
// names the failing primitive; without the hook variable it serves.
func TestSelfTestCorruptedVectorRefusesToStart(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "coffer-hook")
	if out, err := exec.Command("go", "build", "-tags", "selftesthook", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build with selftesthook: %v\n%s", err, out)
	}
	for _, row := range []string{"aes-gcm/stdlib", "hkdf-sha256", "ecdsa-p256"} {
		cmd := exec.Command(bin, "serve", "--dev", "--listen", "127.0.0.1:0")
		cmd.Env = append(os.Environ(), "COFFER_SELFTEST_CORRUPT="+row)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("serve started with %s corrupted:\n%s", row, out)
		}
		if !strings.Contains(string(out), "refusing to start") || !strings.Contains(string(out), row+": ") || strings.Contains(string(out), "coffer serving") {
			t.Fatalf("with %s corrupted:\n%s", row, out)
		}
	}
}

// TestVersionReportsSelfTest: coffer version lists every tested
// implementation and the one in use.
func TestVersionReportsSelfTest(t *testing.T) {
	out, err := exec.Command(cofferBin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"self-test: aes-gcm/stdlib ok", "self-test: chacha20-poly1305 ok", "self-test: hkdf-sha256 ok (in use)", "self-test: rsa ok", "self-test: ed25519 ok"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("version lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(string(out), "aes-gcm/") < 1 || !strings.Contains(string(out), ") ok (in use)") && !strings.Contains(string(out), "ok (in use)") {
		t.Errorf("no AES-GCM kernel in use:\n%s", out)
	}
}
