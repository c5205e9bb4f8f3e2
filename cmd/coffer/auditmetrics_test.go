package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

// TestAuditWritesMetric: /metrics counts the trail's group writes
// (coffer_audit_writes_total) beside its records, under
// --audit-sync=interval: every call was written by some group, so there
// is at least one write, and never more writes than records.
func TestAuditWritesMetric(t *testing.T) {
	if testing.Short() {
		t.Skip("starts coffer serve")
	}
	dir := t.TempDir()
	p := startServe(t, dir, "--audit-sync=interval:10ms")
	c := sdkClient(t, filepath.Join(dir, "coffer-data", "credentials"), p.endpoint)
	ctx := context.Background()
	key, err := c.CreateKey(ctx, &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 8 {
				if _, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("x")}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	resp, err := http.Get(p.endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	counter := func(name string) int {
		m := regexp.MustCompile(`(?m)^` + name + ` (\d+)$`).FindSubmatch(text)
		if m == nil {
			t.Fatalf("/metrics has no %s:\n%s", name, text)
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	records, writes := counter("coffer_audit_records_total"), counter("coffer_audit_writes_total")
	if records < 65 { // CreateKey and 64 Encrypts at least
		t.Errorf("coffer_audit_records_total %d, want at least 65", records)
	}
	if writes < 1 || writes > records {
		t.Errorf("coffer_audit_writes_total %d for %d records, want 1..%d", writes, records, records)
	}
}
