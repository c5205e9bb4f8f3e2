package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

// TestCacheFlagsBoundCaches: --cache-entries reaches the service: a server
// started with a bound of 4 that has described 12 keys holds at most 4
// key records and 4 materials, as /metrics reports them, while one started
// with the default holds all 12.
func TestCacheFlagsBoundCaches(t *testing.T) {
	if testing.Short() {
		t.Skip("starts coffer serve twice")
	}
	entries := func(args ...string) map[string]int {
		dir := t.TempDir()
		p := startServe(t, dir, args...)
		c := sdkClient(t, filepath.Join(dir, "coffer-data", "credentials"), p.endpoint)
		ctx := context.Background()
		for range 12 {
			key, err := c.CreateKey(ctx, &awskms.CreateKeyInput{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("x")}); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := http.Get(p.endpoint + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out := map[string]int{}
		for _, m := range regexp.MustCompile(`coffer_cache_entries\{cache="([a-z-]+)"\} (\d+)`).FindAllStringSubmatch(string(text), -1) {
			out[m[1]], _ = strconv.Atoi(m[2])
		}
		return out
	}
	small, dflt := entries("--cache-entries", "4"), entries()
	for _, cache := range []string{"keys", "materials"} {
		if _, ok := small[cache]; !ok {
			t.Fatalf("/metrics has no coffer_cache_entries for %q: %v", cache, small)
		}
		if small[cache] > 4 {
			t.Errorf("--cache-entries 4: the %s cache holds %d", cache, small[cache])
		}
		if dflt[cache] < 12 {
			t.Errorf("default bound: the %s cache holds %d of the 12 keys used", cache, dflt[cache])
		}
	}
}
