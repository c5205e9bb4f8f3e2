package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/coffer-kms/coffer/server"
)

// TestStatusOfRunningServer asks a real server (bolt store, audit trail on)
// for its status, signed with the administrator's credentials.
func TestStatusOfRunningServer(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, dir)
	credFile := filepath.Join(dir, "coffer-data", "credentials")
	c := sdkClient(t, credFile, p.endpoint)
	ctx := context.Background()
	for range 2 {
		if _, err := c.CreateKey(ctx, &awskms.CreateKeyInput{}); err != nil {
			t.Fatal(err)
		}
	}
	k, err := c.CreateKey(ctx, &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: k.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: k.KeyMetadata.KeyId, Plaintext: []byte("x")}); err == nil {
		t.Fatal("Encrypt under a disabled key succeeded")
	}
	env := append(os.Environ(), "AWS_SHARED_CREDENTIALS_FILE="+credFile, "AWS_CONFIG_FILE=/dev/null", "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=", "AWS_PROFILE=")

	out, stderr, err := runCoffer(t, env, nil, "status", "--endpoint", p.endpoint, "--json")
	if err != nil {
		t.Fatalf("coffer status --json: %v\n%s", err, stderr)
	}
	var st server.StatusOutput
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if st.KeysByState["Enabled"] != 2 || st.KeysByState["Disabled"] != 1 {
		t.Errorf("keys by state %v, want Enabled=2 Disabled=1", st.KeysByState)
	}
	if st.Root != "software" || st.Store != "bolt" || st.Version == "" || st.UptimeSeconds <= 0 {
		t.Errorf("root %q store %q version %q uptime %v", st.Root, st.Store, st.Version, st.UptimeSeconds)
	}
	if len(st.Regions) != 1 || st.Regions[0] != "us-east-1" {
		t.Errorf("regions %v", st.Regions)
	}
	if st.Audit == nil || st.Audit.Records == 0 || st.Audit.LastCommit == nil || st.Audit.Failed {
		t.Errorf("audit %+v, want records and a last commit", st.Audit)
	}
	if st.LastMaintenance == nil {
		t.Error("no last maintenance: serve runs one at start")
	}
	caches := map[string]bool{}
	for _, c := range st.Caches {
		caches[c.Cache] = true
	}
	if !caches["keys"] || !caches["materials"] {
		t.Errorf("caches %v", st.Caches)
	}

	out, stderr, err = runCoffer(t, env, nil, "status", "--endpoint", p.endpoint)
	if err != nil {
		t.Fatalf("coffer status: %v\n%s", err, stderr)
	}
	printed := strings.Join(strings.Fields(string(out)), " ")
	for _, want := range []string{"uptime", "root of trust software", "store bolt", "regions us-east-1", "keys Disabled=1 Enabled=2", "cache keys", "audit ok", "last maintenance"} {
		if !strings.Contains(printed, want) {
			t.Errorf("coffer status printed no %q:\n%s", want, out)
		}
	}

	// Unsigned by a principal allowed coffer:GetStatus: refused.
	bad := append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDNOTAKEY", "AWS_SECRET_ACCESS_KEY=nope", "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_REGION=us-east-1")
	if _, _, err := runCoffer(t, bad, nil, "status", "--endpoint", p.endpoint); err == nil {
		t.Error("coffer status with unknown credentials succeeded")
	}
}
