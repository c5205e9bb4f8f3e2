package bench

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// unthrottled turns off Coffer's request quotas in every server a load
// benchmark starts: on a quiet host one core serves more than AWS's default
// quota for cryptographic operations (50,000 requests a second), and the
// calls past it would be answered ThrottlingException, which measures the
// quota rather than the server. A ServeArgs --throttle=true after it wins.
const unthrottled = "--throttle=false"

// HarnessConfig describes a full load run: a real `coffer serve` and a bare
// fasthttp server, both measured with the same requests.
type HarnessConfig struct {
	Binary    string   // the coffer binary (serve and bench bare)
	ServeArgs []string // extra `coffer serve` flags
	// CompareServeArgs, when set, starts a second Coffer with these extra
	// flags (e.g. --audit=false) and measures it in the same run.
	CompareServeArgs []string
	Ops              []string
	Concurrency      []int
	Duration         time.Duration
	Warmup           time.Duration
	Runs             int
	// ServerCPU and ClientCPU pin the servers and the generator to
	// different CPUs; -1 disables pinning.
	ServerCPU, ClientCPU int
	// RSSEvery samples Coffer's RSS during each measured run (0: off).
	RSSEvery time.Duration
	// TLS serves both Coffer (--tls-self-signed) and the bare server over
	// TLS, and loads them over TLS.
	TLS bool
	Log io.Writer
}

// Summary is the median of a configuration's runs, for Coffer and the bare server.
type Summary struct {
	Op          string      `json:"op"`
	Concurrency int         `json:"concurrency"`
	Coffer      *LoadResult `json:"coffer"`
	Bare        *LoadResult `json:"bare"`
	CPURatio    float64     `json:"cpuRatio"` // Coffer CPU/request ÷ bare CPU/request
	RPSRatio    float64     `json:"rpsRatio"`
	// Compare is the second Coffer (CompareServeArgs), and CompareRPSRatio
	// Coffer's throughput as a fraction of it.
	Compare         *LoadResult   `json:"compare,omitempty"`
	CompareRPSRatio float64       `json:"compareRpsRatio,omitempty"`
	CompareArgs     []string      `json:"compareArgs,omitempty"`
	Runs            []*LoadResult `json:"runs"`
}

// Report is a harness run's results and where they come from.
type Report struct {
	Machine  Machine   `json:"machine"`
	Command  string    `json:"command"`
	Duration string    `json:"duration"`
	Runs     int       `json:"runs"`
	Results  []Summary `json:"results"`
}

// Machine describes where a run happened.
type Machine struct {
	CPU    string `json:"cpu"`
	CPUs   int    `json:"cpus"`
	Go     string `json:"go"`
	Kernel string `json:"kernel"`
	Commit string `json:"commit"`
	Date   string `json:"date"`
	Pinned string `json:"pinned"`
}

// child is a server process started by the harness.
type child struct {
	cmd      *exec.Cmd
	endpoint string
}

var endpointPattern = regexp.MustCompile(`(?:endpoint=|listening on )(https?://127\.0\.0\.1:[0-9]+)`)

func startChild(bin string, args []string, dir string) (*child, error) {
	return startProcess(bin, args, nil, dir, endpointPattern, 20*time.Second)
}

// startProcess starts bin with args (and env added to this process's
// environment) and waits up to wait for a line of its output that
// pattern's first group turns into the endpoint. A process that does not
// get there is killed, and the error quotes its last lines of output.
func startProcess(bin string, args, env []string, dir string, pattern *regexp.Regexp, wait time.Duration) (*child, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	found := make(chan string, 1)
	var (
		mu   sync.Mutex
		tail []string // the last lines, for the error of a failed start
	)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			mu.Lock()
			if tail = append(tail, sc.Text()); len(tail) > 5 {
				tail = tail[1:]
			}
			mu.Unlock()
			if m := pattern.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case ep := <-found:
		return &child{cmd: cmd, endpoint: ep}, nil
	case <-time.After(wait):
		cmd.Process.Kill()
		cmd.Wait()
		mu.Lock()
		defer mu.Unlock()
		return nil, fmt.Errorf("bench: %s %v did not start within %s; its last output: %q", bin, args, wait, tail)
	}
}

func (c *child) stop() {
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// RunHarness runs every configuration and returns the report.
func RunHarness(ctx context.Context, cfg HarnessConfig) (*Report, error) {
	if cfg.Runs <= 0 {
		cfg.Runs = 1
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	dir, err := os.MkdirTemp("", "coffer-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	pinned := "no"
	if cfg.ServerCPU >= 0 {
		if err := Pin(0, cfg.ServerCPU); err != nil { // children inherit it
			return nil, err
		}
		pinned = fmt.Sprintf("servers on CPU %d, generator on CPU %d", cfg.ServerCPU, cfg.ClientCPU)
	}
	serveArgs, bareArgs := []string{"serve", "--data-dir", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0", unthrottled}, []string{"bench", "bare", "--listen", "127.0.0.1:0"}
	if cfg.TLS {
		serveArgs, bareArgs = append(serveArgs, "--tls-self-signed"), append(bareArgs, "--tls")
	}
	coffer, err := startChild(cfg.Binary, append(serveArgs, cfg.ServeArgs...), dir)
	if err != nil {
		return nil, err
	}
	defer coffer.stop()
	bare, err := startChild(cfg.Binary, bareArgs, dir)
	if err != nil {
		return nil, err
	}
	defer bare.stop()
	if cfg.ClientCPU >= 0 {
		if err := Pin(0, cfg.ClientCPU); err != nil {
			return nil, err
		}
	}

	id, secret, err := readCredentials(filepath.Join(dir, "data", "credentials"))
	if err != nil {
		return nil, err
	}
	base := LoadConfig{Endpoint: coffer.endpoint, Region: "us-east-1", AccessKeyID: id, Secret: secret, PlaintextSize: 1024}
	keyID, blob, err := prepareKey(base)
	if err != nil {
		return nil, err
	}
	base.KeyID, base.Blob = keyID, blob
	var alt *child
	var altBase LoadConfig
	if len(cfg.CompareServeArgs) > 0 {
		if cfg.ServerCPU >= 0 {
			Pin(0, cfg.ServerCPU)
		}
		alt, err = startChild(cfg.Binary, append([]string{"serve", "--data-dir", filepath.Join(dir, "data-compare"), "--listen", "127.0.0.1:0", unthrottled}, append(cfg.ServeArgs, cfg.CompareServeArgs...)...), dir)
		if cfg.ClientCPU >= 0 {
			Pin(0, cfg.ClientCPU)
		}
		if err != nil {
			return nil, err
		}
		defer alt.stop()
		aid, asecret, err := readCredentials(filepath.Join(dir, "data-compare", "credentials"))
		if err != nil {
			return nil, err
		}
		altBase = LoadConfig{Endpoint: alt.endpoint, Region: "us-east-1", AccessKeyID: aid, Secret: asecret, PlaintextSize: 1024}
		if altBase.KeyID, altBase.Blob, err = prepareKey(altBase); err != nil {
			return nil, err
		}
	}

	rep := &Report{Machine: describeMachine(pinned), Duration: cfg.Duration.String(), Runs: cfg.Runs}
	for _, op := range cfg.Ops {
		for _, conc := range cfg.Concurrency {
			s := Summary{Op: op, Concurrency: conc}
			var cofferRuns, bareRuns, altRuns []*LoadResult
			targets := []string{"coffer", "bare"}
			if alt != nil {
				targets = append(targets, "compare")
				s.CompareArgs = cfg.CompareServeArgs
			}
			for _, c := range []*child{coffer, bare, alt} {
				if c == nil {
					continue
				}
				lc := base
				if c == alt { // the second Coffer is warmed up too, or its first run is measured cold
					lc = altBase
				}
				lc.Endpoint, lc.Op, lc.Concurrency, lc.ServerPID = c.endpoint, op, conc, c.cmd.Process.Pid
				if cfg.Warmup > 0 {
					warm := lc
					warm.Duration = cfg.Warmup
					if _, err := RunLoad(ctx, warm); err != nil {
						return nil, err
					}
				}
			}
			for run := 0; run < cfg.Runs; run++ {
				for _, target := range targets {
					c, lc := coffer, base
					switch target {
					case "bare":
						c = bare
					case "compare":
						c, lc = alt, altBase
					}
					lc.Endpoint, lc.Op, lc.Concurrency, lc.Duration, lc.ServerPID = c.endpoint, op, conc, cfg.Duration, c.cmd.Process.Pid
					if target == "coffer" {
						lc.RSSEvery = cfg.RSSEvery
					}
					recs0, syncs0, writes0, counted := auditCounters(c.endpoint)
					r, err := RunLoad(ctx, lc)
					if err != nil {
						return nil, err
					}
					r.Target = target
					if recs1, syncs1, writes1, ok := auditCounters(c.endpoint); counted && ok {
						if syncs1 > syncs0 {
							r.AuditRecordsPerFsync = (recs1 - recs0) / (syncs1 - syncs0)
						}
						if writes1 > writes0 {
							r.AuditRecordsPerWrite = (recs1 - recs0) / (writes1 - writes0)
						}
					}
					fmt.Fprintf(cfg.Log, "%-16s c=%-4d %-7s run %d: %8.0f req/s  p50 %6.0fµs  p99 %6.0fµs  p999 %6.0fµs  cpu/req %5.1fµs  errors %d  records/fsync %.1f  records/write %.1f\n",
						op, conc, target, run+1, r.RPS, r.P50us, r.P99us, r.P999us, r.ServerCPUus, r.Errors, r.AuditRecordsPerFsync, r.AuditRecordsPerWrite)
					switch target {
					case "coffer":
						cofferRuns = append(cofferRuns, r)
					case "bare":
						bareRuns = append(bareRuns, r)
					default:
						altRuns = append(altRuns, r)
					}
					s.Runs = append(s.Runs, r)
				}
			}
			s.Coffer, s.Bare = median(cofferRuns), median(bareRuns)
			if s.Bare.ServerCPUus > 0 {
				s.CPURatio = s.Coffer.ServerCPUus / s.Bare.ServerCPUus
			}
			if s.Bare.RPS > 0 {
				s.RPSRatio = s.Coffer.RPS / s.Bare.RPS
			}
			if len(altRuns) > 0 {
				s.Compare = median(altRuns)
				if s.Compare.RPS > 0 {
					s.CompareRPSRatio = s.Coffer.RPS / s.Compare.RPS
				}
			}
			rep.Results = append(rep.Results, s)
		}
	}
	return rep, nil
}

// median returns the run with the median server CPU per request.
func median(runs []*LoadResult) *LoadResult {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b *LoadResult) int {
		switch {
		case a.ServerCPUus < b.ServerCPUus:
			return -1
		case a.ServerCPUus > b.ServerCPUus:
			return 1
		}
		return 0
	})
	return sorted[len(sorted)/2]
}

func readCredentials(path string) (id, secret string, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "aws_access_key_id":
			id = strings.TrimSpace(v)
		case "aws_secret_access_key":
			secret = strings.TrimSpace(v)
		}
	}
	if id == "" || secret == "" {
		return "", "", errors.New("bench: no credentials in " + path)
	}
	return id, secret, nil
}

// call sends one signed request and decodes the JSON answer into out.
func call(cfg LoadConfig, op string, in, out any) error {
	host, err := checkLoopback(cfg.Endpoint)
	if err != nil {
		return err
	}
	_, isTLS := schemeOf(cfg.Endpoint)
	return callWith(&fasthttp.HostClient{Addr: host, IsTLS: isTLS, TLSConfig: loopbackTLS}, cfg, op, in, out)
}

// callWith is call on client, whose connections later calls reuse.
func callWith(client *fasthttp.HostClient, cfg LoadConfig, op string, in, out any) error {
	host, err := checkLoopback(cfg.Endpoint)
	if err != nil {
		return err
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod("POST")
	scheme, _ := schemeOf(cfg.Endpoint)
	req.SetRequestURI(scheme + host + "/")
	req.Header.SetHost(host)
	req.Header.SetContentType("application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService."+op)
	req.SetBody(body)
	s := &signer{id: cfg.AccessKeyID, secret: cfg.Secret, region: cfg.Region}
	s.sign(req, time.Now())
	if err := client.DoTimeout(req, resp, 30*time.Second); err != nil {
		return err
	}
	if resp.StatusCode() != 200 {
		return fmt.Errorf("bench: %s: %d %s", op, resp.StatusCode(), resp.Body())
	}
	return json.Unmarshal(resp.Body(), out)
}

// prepareKey creates the key the run uses and a ciphertext for Decrypt.
func prepareKey(cfg LoadConfig) (string, []byte, error) {
	var created struct{ KeyMetadata struct{ KeyId string } }
	if err := call(cfg, "CreateKey", map[string]string{"Description": "bench"}, &created); err != nil {
		return "", nil, err
	}
	var enc struct{ CiphertextBlob string }
	in := map[string]any{"KeyId": created.KeyMetadata.KeyId, "Plaintext": make([]byte, cfg.PlaintextSize), "EncryptionContext": map[string]string{"purpose": "bench"}}
	if err := call(cfg, "Encrypt", in, &enc); err != nil {
		return "", nil, err
	}
	blob, err := base64.StdEncoding.DecodeString(enc.CiphertextBlob)
	return created.KeyMetadata.KeyId, blob, err
}

func describeMachine(pinned string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC().Format(time.RFC3339), Pinned: pinned}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(raw))
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}

// auditCounters reads a Coffer's audit record, fsync and write counters from its
// /metrics page; ok is false for a server without an audit trail.
func auditCounters(endpoint string) (records, fsyncs, writes float64, ok bool) {
	status, body, err := fasthttp.GetTimeout(nil, endpoint+"/metrics", 5*time.Second)
	if err != nil || status != fasthttp.StatusOK {
		return 0, 0, 0, false
	}
	var haveRecords, haveFsyncs bool
	for line := range strings.SplitSeq(string(body), "\n") {
		name, value, found := strings.Cut(line, " ")
		if !found {
			continue
		}
		switch name {
		case "coffer_audit_records_total":
			records, err = strconv.ParseFloat(value, 64)
			haveRecords = err == nil
		case "coffer_audit_fsyncs_total":
			fsyncs, err = strconv.ParseFloat(value, 64)
			haveFsyncs = err == nil
		case "coffer_audit_writes_total": // 0 from a server without it: records/write is then not reported
			writes, _ = strconv.ParseFloat(value, 64)
		}
	}
	return records, fsyncs, writes, haveRecords && haveFsyncs
}
