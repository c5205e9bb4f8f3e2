package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/kms"
	"github.com/coffer-kms/coffer/server"
)

// scrapeFullServer wires a server as serve does with every metrics source
// on (an HSM pool, the audit trail, rate limits), makes a few calls and
// returns the names of the series /metrics serves.
func scrapeFullServer(t *testing.T) map[string]bool {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	soft, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := hsm.NewPool(soft, hsm.PoolConfig{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	svc, err := kms.New(kms.Config{Region: "us-east-1", Account: "111122223333", Store: keystore.NewMemory(), Root: pool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	signer, err := kms.AuditSigner(ctx, pool, filepath.Join(dir, kms.AuditKeyFile), filepath.Join(dir, "audit"))
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.Open(audit.Config{Dir: filepath.Join(dir, "audit"), Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	srv, err := server.New(server.Config{Service: svc, Dev: true, Audit: trail, RateLimits: &server.RateLimits{}})
	if err != nil {
		t.Fatal(err)
	}
	srv.AddMetrics(pool.WriteMetrics)
	srv.AddMetrics(auditMetrics(trail))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(ctx) })
	endpoint := "http://" + ln.Addr().String()

	c := awskms.New(awskms.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""), RetryMaxAttempts: 1})
	k, err := c.CreateKey(ctx, &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: k.KeyMetadata.KeyId, Plaintext: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String("alias/missing")}) // a non-OK code

	resp, err := http.Get(endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	names := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		names[strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
		// Public, unauthenticated: never a key ARN or an account ID.
		if strings.Contains(line, "arn:") || strings.Contains(line, "111122223333") || strings.Contains(line, *k.KeyMetadata.KeyId) {
			t.Errorf("/metrics names a key or an account: %s", line)
		}
	}
	return names
}

var metricNameRE = regexp.MustCompile(`\bcoffer_[a-z0-9_]+`)

// TestDashboardQueriesServedMetrics checks that deploy/grafana-dashboard.json
// parses and that every metric it queries is one /metrics serves.
func TestDashboardQueriesServedMetrics(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	served := scrapeFullServer(t)
	queried := map[string]bool{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			for _, name := range metricNameRE.FindAllString(tg.Expr, -1) {
				queried[name] = true
				if !served[name] {
					t.Errorf("panel %q queries %s, which /metrics does not serve", p.Title, name)
				}
			}
		}
	}
	for _, want := range []string{"coffer_requests_total", "coffer_request_duration_seconds_bucket", "coffer_throttled_total",
		"coffer_cache_hits_total", "coffer_cache_misses_total", "coffer_audit_queue_depth", "coffer_hsm_queue_depth", "coffer_region_requests_total"} {
		if !queried[want] {
			t.Errorf("the dashboard has no panel on %s", want)
		}
	}
}

// TestDeployFiles checks the systemd unit's hardening and the Dockerfile's
// shape; no container builder runs here to build the image itself.
func TestDeployFiles(t *testing.T) {
	unit, err := os.ReadFile("../../deploy/coffer.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nUser=coffer\n", "\nDynamicUser=yes\n", "\nStateDirectory=coffer\n", "\nProtectSystem=strict\n",
		"\nNoNewPrivileges=yes\n", "\nLimitCORE=0\n", "\nExecStart=/usr/local/bin/coffer serve", "\n[Install]\n"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("deploy/coffer.service lacks %q", strings.TrimSpace(want))
		}
	}
	docker, err := os.ReadFile("../../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FROM golang:1.26 AS build", "CGO_ENABLED=0", "FROM gcr.io/distroless/static", "USER 65532:65532"} {
		if !strings.Contains(string(docker), want) {
			t.Errorf("deploy/Dockerfile lacks %q", want)
		}
	}
}
