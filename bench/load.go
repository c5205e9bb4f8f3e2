// Package bench is Coffer's load generator: SigV4-signed KMS requests
// against a running server at a set concurrency, for a bounded time and
// count, on loopback only. It reports throughput, latency percentiles,
// errors and the server's CPU time per request, and measures a bare
// fasthttp server answering the same requests in the same run so that every
// figure also comes as a ratio to the transport's own cost.
package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// LoadConfig describes one load run.
type LoadConfig struct {
	Endpoint    string // http://127.0.0.1:port — loopback only
	Region      string
	AccessKeyID string
	Secret      string
	KeyID       string
	// Op is Encrypt, Decrypt, GenerateDataKey, CreateKey, or Mixed: each
	// connection alternating CreateKey and Encrypt, so that the key count
	// grows all run long (the soak of bounded memory).
	Op            string
	Concurrency   int
	Duration      time.Duration
	MaxRequests   int // 0: bounded by Duration only
	PlaintextSize int // Encrypt/Decrypt payload (default 1024)
	// Blob is the ciphertext Decrypt sends; RunLoad makes one when empty
	// and the target is a real KMS.
	Blob []byte
	// KeyIDs, when set, spreads the requests uniformly over these keys:
	// each names one drawn at random in place of KeyID (the cold-key path,
	// issue 26.5).
	KeyIDs []string
	// ServerPID, when set, is the process whose CPU time is charged to the run.
	ServerPID int
	// RSSEvery, when set with ServerPID, samples the server's resident set
	// size at this interval during the run, and with it the size of the
	// server's /metrics page.
	RSSEvery time.Duration
}

// LoadResult is what one run measured.
type LoadResult struct {
	Target       string  `json:"target"` // "coffer" or "bare"
	Op           string  `json:"op"`
	Concurrency  int     `json:"concurrency"`
	Requests     int     `json:"requests"`
	Errors       int     `json:"errors"`
	FirstError   string  `json:"firstError,omitempty"`
	Seconds      float64 `json:"seconds"`
	RPS          float64 `json:"rps"`
	P50us        float64 `json:"p50us"`
	P99us        float64 `json:"p99us"`
	P999us       float64 `json:"p999us"`
	ServerCPUus  float64 `json:"serverCpuUsPerRequest"`
	ServerRSSKiB int64   `json:"serverRssKiB,omitempty"`
	// RSSSamples are the server's RSS in KiB every RSSEvery, in order.
	RSSSamples []int64 `json:"rssSamplesKiB,omitempty"`
	RSSEvery   string  `json:"rssEvery,omitempty"`
	// RSSAnonSamples are the anonymous part of each RSS sample (without
	// the pages of the store's memory-mapped file), and MetricsBytes the
	// sizes of GET /metrics, at the same instants.
	RSSAnonSamples []int64 `json:"rssAnonSamplesKiB,omitempty"`
	MetricsBytes   []int   `json:"metricsBytes,omitempty"`
	// AuditRecordsPerFsync is how many audit records the server's group
	// commit made durable per fsync during the run (0: no audit trail).
	AuditRecordsPerFsync float64 `json:"auditRecordsPerFsync,omitempty"`
	// AuditRecordsPerWrite is how many per write(2) of a group: with
	// --audit-sync=interval the group is smaller than what an fsync
	// covers, and each write costs the writer goroutine a round trip.
	AuditRecordsPerWrite float64 `json:"auditRecordsPerWrite,omitempty"`
}

// keyPlaceholder marks where a spread run's key goes in a request body.
const keyPlaceholder = "coffer-bench-key-placeholder"

// maxLatencySamples bounds the memory a run keeps for percentiles.
const maxLatencySamples = 4 << 20

// ErrNotLoopback refuses targets off this machine.
var ErrNotLoopback = errors.New("bench: the endpoint must be a loopback address")

func checkLoopback(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("bench: endpoint %q must be http://host:port or https://host:port", endpoint)
	}
	host, _, err := net.SplitHostPort(u.Host)
	if err != nil {
		return "", err
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", ErrNotLoopback
	}
	return u.Host, nil
}

// requestBody is the JSON body of op.
func requestBody(cfg *LoadConfig) ([]byte, error) {
	switch cfg.Op {
	case "Encrypt":
		pt := make([]byte, cfg.PlaintextSize)
		return json.Marshal(map[string]any{"KeyId": cfg.KeyID, "Plaintext": pt, "EncryptionContext": map[string]string{"purpose": "bench"}})
	case "Decrypt":
		return json.Marshal(map[string]any{"CiphertextBlob": base64.StdEncoding.EncodeToString(cfg.Blob), "EncryptionContext": map[string]string{"purpose": "bench"}})
	case "GenerateDataKey":
		return json.Marshal(map[string]any{"KeyId": cfg.KeyID, "KeySpec": "AES_256", "EncryptionContext": map[string]string{"purpose": "bench"}})
	case "CreateKey":
		return []byte(`{"Description":"bench"}`), nil
	case "DescribeKey":
		return json.Marshal(map[string]any{"KeyId": cfg.KeyID})
	}
	return nil, fmt.Errorf("bench: unknown operation %q", cfg.Op)
}

// RunLoad drives cfg.Op at cfg.Concurrency until Duration or MaxRequests.
func RunLoad(ctx context.Context, cfg LoadConfig) (*LoadResult, error) {
	host, err := checkLoopback(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	if cfg.Concurrency <= 0 || cfg.Duration <= 0 {
		return nil, errors.New("bench: Concurrency and Duration must be positive")
	}
	if cfg.Duration > 30*time.Minute {
		return nil, errors.New("bench: Duration is capped at 30 minutes")
	}
	if cfg.PlaintextSize == 0 {
		cfg.PlaintextSize = 1024
	}
	// Each connection sends ops[i%len(ops)] as its i-th request.
	ops := []string{cfg.Op}
	if cfg.Op == "Mixed" {
		ops = []string{"CreateKey", "Encrypt"}
	}
	bodies := make([][]byte, len(ops))
	for i, op := range ops {
		c := cfg
		c.Op = op
		if len(cfg.KeyIDs) > 0 {
			c.KeyID = keyPlaceholder
		}
		if bodies[i], err = requestBody(&c); err != nil {
			return nil, err
		}
	}
	// With KeyIDs each body is the template with a key drawn per request.
	var spread [][2][]byte
	if len(cfg.KeyIDs) > 0 {
		for _, b := range bodies {
			before, after, ok := bytes.Cut(b, []byte(keyPlaceholder))
			if !ok {
				return nil, fmt.Errorf("bench: %s names no key to spread", cfg.Op)
			}
			spread = append(spread, [2][]byte{before, after})
		}
	}
	scheme, isTLS := schemeOf(cfg.Endpoint)
	client := &fasthttp.HostClient{Addr: host, MaxConns: cfg.Concurrency, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		IsTLS: isTLS, TLSConfig: loopbackTLS}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()

	var (
		issued   atomic.Int64
		errCount atomic.Int64
		firstErr atomic.Value
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, 1<<16)
		wg       sync.WaitGroup
	)
	cpu0, _ := processCPU(cfg.ServerPID)
	var (
		rss, rssAnon []int64
		metricsBytes []int
	)
	// /metrics is read on a connection of its own: the load's are all busy.
	metricsClient := &fasthttp.HostClient{Addr: host, ReadTimeout: 10 * time.Second, IsTLS: isTLS, TLSConfig: loopbackTLS}
	rssDone := make(chan struct{})
	if cfg.RSSEvery > 0 && cfg.ServerPID > 0 {
		go func() {
			defer close(rssDone)
			t := time.NewTicker(cfg.RSSEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if v, err := processRSS(cfg.ServerPID); err == nil {
						anon, _ := processRSSAnon(cfg.ServerPID)
						rss, rssAnon = append(rss, v), append(rssAnon, anon)
						metricsBytes = append(metricsBytes, metricsSize(metricsClient, host))
					}
				}
			}
		}()
	} else {
		close(rssDone)
	}
	start := time.Now()
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &signer{id: cfg.AccessKeyID, secret: cfg.Secret, region: cfg.Region}
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			local := make([]time.Duration, 0, 4096)
			var body []byte
			rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
			for i := 0; ctx.Err() == nil; i++ {
				if cfg.MaxRequests > 0 && issued.Add(1) > int64(cfg.MaxRequests) {
					break
				}
				req.Reset()
				req.Header.SetMethod("POST")
				req.SetRequestURI(scheme + host + "/")
				req.Header.SetHost(host)
				req.Header.SetContentType("application/x-amz-json-1.1")
				req.Header.Set("X-Amz-Target", "TrentService."+ops[i%len(ops)])
				if spread != nil {
					t := spread[i%len(ops)]
					body = append(append(append(body[:0], t[0]...), cfg.KeyIDs[rng.IntN(len(cfg.KeyIDs))]...), t[1]...)
					req.SetBody(body)
				} else {
					req.SetBody(bodies[i%len(ops)])
				}
				t0 := time.Now()
				s.sign(req, t0)
				err := client.Do(req, resp)
				d := time.Since(t0)
				if ctx.Err() != nil && err != nil {
					break // cut off by the end of the run, not a server error
				}
				if err == nil && resp.StatusCode() != 200 {
					err = fmt.Errorf("status %d: %.200s", resp.StatusCode(), resp.Body())
				}
				if err != nil {
					errCount.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				if len(local) < cap(local) {
					local = append(local, d)
				} else {
					mu.Lock()
					if len(lat) < maxLatencySamples {
						lat = append(lat, local...)
					}
					mu.Unlock()
					local = local[:0]
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cancel()
	<-rssDone
	cpu1, _ := processCPU(cfg.ServerPID)

	res := &LoadResult{Op: cfg.Op, Concurrency: cfg.Concurrency, Requests: len(lat), Errors: int(errCount.Load()), Seconds: elapsed.Seconds()}
	if v, ok := firstErr.Load().(string); ok {
		res.FirstError = v
	}
	res.RPS = float64(res.Requests) / elapsed.Seconds()
	slices.Sort(lat)
	res.P50us, res.P99us, res.P999us = percentile(lat, 0.50), percentile(lat, 0.99), percentile(lat, 0.999)
	if len(rss) > 0 {
		res.RSSSamples, res.RSSEvery, res.RSSAnonSamples, res.MetricsBytes = rss, cfg.RSSEvery.String(), rssAnon, metricsBytes
	}
	if cfg.ServerPID > 0 && res.Requests > 0 {
		res.ServerCPUus = float64((cpu1 - cpu0).Microseconds()) / float64(res.Requests+res.Errors)
		res.ServerRSSKiB, _ = processRSS(cfg.ServerPID)
	}
	return res, nil
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return float64(sorted[i].Nanoseconds()) / 1000
}

// metricsSize is the size of the server's /metrics page (-1 when it could
// not be read).
func metricsSize(client *fasthttp.HostClient, host string) int {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + host + "/metrics")
	req.Header.SetHost(host)
	if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
		return -1
	}
	return len(resp.Body())
}

// loopbackTLS is the load generator's TLS client configuration. It does not
// verify the server's certificate: the target is a self-signed server on
// this machine's loopback (checkLoopback refuses anything else), and what
// is measured is the cost of the TLS connection, not a trust decision.
var loopbackTLS = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}

// schemeOf returns the request URI scheme of endpoint and whether it is TLS.
func schemeOf(endpoint string) (string, bool) {
	if strings.HasPrefix(endpoint, "https://") {
		return "https://", true
	}
	return "http://", false
}
