package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/coffer-kms/coffer/server"
)

// usage reads the account's call counters as `coffer admin usage` does,
// through the authenticated GetUsage: what each key is used for is not on
// the unauthenticated /metrics.
func (e *testEnv) usage(t *testing.T, arn string) map[string]float64 {
	t.Helper()
	status, _, _, raw := e.send(t, rawRequest{target: "CofferAdmin.GetUsage", body: "{}"})
	if status != 200 {
		t.Fatalf("GetUsage: %d %s", status, raw)
	}
	var out struct {
		Usage []struct {
			KeyArn, Operation string
			Calls             float64
		}
	}
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, u := range out.Usage {
		if u.KeyArn == arn {
			got[u.Operation] += u.Calls
		}
	}
	return got
}

func (e *testEnv) metricsText(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, raw)
	}
	return string(raw)
}

func TestUsageCountsPerKeyAndOperation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.createKey("metered")
	arn := "arn:aws:kms:us-east-1:111122223333:key/" + id
	var blob []byte
	for range 3 {
		enc := must[*awskms.EncryptOutput](t)(e.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("x")}))
		blob = enc.CiphertextBlob
	}
	must[*awskms.DecryptOutput](t)(e.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blob}))
	if m := e.metricsText(t); !strings.Contains(m, `coffer_requests_total{operation="Encrypt",code="OK"} 3`) {
		t.Fatalf("no request counter in /metrics:\n%.2000s", m)
	}
	got := e.usage(t, arn)
	if got["Encrypt"] != 3 || got["Decrypt"] != 1 {
		t.Fatalf("usage before flush: %v", got)
	}
	// Counts survive a restart (Close flushes them to the store).
	e.restart()
	got = e.usage(t, arn)
	if got["Encrypt"] != 3 || got["Decrypt"] != 1 || got["CreateKey"] != 1 {
		t.Fatalf("usage after restart: %v", got)
	}
}

// TestMetricsNameNoKeysAndDoNotGrow: /metrics is unauthenticated, so it
// must not list the account or its keys, and a scrape must cost the same
// at 10 keys as at 32,000 (it was one series per key and operation).
func TestMetricsNameNoKeysAndDoNotGrow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var arns []string
	use := func(n int) {
		for range n {
			id := e.createKey("scraped")
			arns = append(arns, "arn:aws:kms:us-east-1:111122223333:key/"+id)
			must[*awskms.EncryptOutput](t)(e.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("x")}))
			must[*awskms.DescribeKeyOutput](t)(e.client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &id}))
		}
	}
	lines := func(m string) int { return strings.Count(m, "\n") }
	use(10)
	at10 := e.metricsText(t)
	use(90)
	at100 := e.metricsText(t)
	for _, m := range []string{at10, at100} {
		if strings.Contains(m, testAccount) || strings.Contains(m, "arn:") || strings.Contains(m, e.creds.AccessKeyID) {
			t.Fatalf("/metrics names the account, a key or a principal:\n%s", m)
		}
	}
	if lines(at10) != lines(at100) {
		t.Fatalf("/metrics has %d lines after 10 keys, %d after 100", lines(at10), lines(at100))
	}
	for _, want := range []string{`coffer_requests_total{operation="CreateKey",code="OK"} 100`, `coffer_request_duration_seconds_bucket{operation="Encrypt",le="+Inf"} 100`, "go_goroutines ", "go_memstats_heap_inuse_bytes "} {
		if !strings.Contains(at100, want) {
			t.Fatalf("/metrics lacks %s:\n%s", want, at100)
		}
	}
	// The usage is still metered, per key, behind authentication.
	if got := e.usage(t, arns[99]); got["Encrypt"] != 1 {
		t.Fatalf("usage of the last key: %v", got)
	}
}

// TestMetricsOnTheirOwnListener: with SeparateMetrics, /metrics is served
// only where ServeMetrics listens (--metrics-listen), not next to the API.
func TestMetricsOnTheirOwnListener(t *testing.T) {
	e := newEnv(t)
	e.stop()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.configure = func(c *server.Config) { c.SeparateMetrics = true }
	e.beforeServe = func(s *server.Server) { go s.ServeMetrics(ln) }
	e.start()
	e.createKey("counted")
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == 200 || strings.Contains(string(raw), "coffer_requests_total") {
		t.Fatalf("the API listener still serves /metrics: %d %.200s", resp.StatusCode, raw)
	}
	e.url = "http://" + ln.Addr().String()
	if m := e.metricsText(t); !strings.Contains(m, `coffer_requests_total{operation="CreateKey",code="OK"} 1`) {
		t.Fatalf("the metrics listener:\n%.2000s", m)
	}
}
