package bench

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// PeersConfig describes a peers run (issue 26): Coffer in each audit mode,
// the bare fasthttp server and local-kms, all started on this machine,
// pinned to one CPU and loaded with the same requests in one run.
type PeersConfig struct {
	Binary string // the coffer binary
	// LocalKMS is the local-kms binary (github.com/nsmithuk/local-kms),
	// installed outside the repository; "" leaves the peer out.
	LocalKMS string
	// AuditModes are the Coffer servers to measure: "on" (the default
	// flags), "off" (--audit=false), or any other value passed as
	// --audit-sync=<value>. A mode whose flag the binary lacks is skipped
	// and reported in Skipped.
	AuditModes  []string
	ServeArgs   []string // extra `coffer serve` flags for every Coffer
	Ops         []string
	Concurrency []int
	Duration    time.Duration
	Warmup      time.Duration
	// ServerCPU and ClientCPU pin the servers and the generator; -1: no pinning.
	ServerCPU, ClientCPU int
	Log                  io.Writer
}

// PeersReport is a peers run's results.
type PeersReport struct {
	Machine  Machine `json:"machine"`
	Command  string  `json:"command"`
	Duration string  `json:"duration"`
	// Targets names the servers in the order of every point's Results.
	Targets []string `json:"targets"`
	// Skipped lists the audit modes left out, with why.
	Skipped []string     `json:"skipped,omitempty"`
	Points  []PeersPoint `json:"points"`
	// LocalKMS is the peer's module version.
	LocalKMS string `json:"localKms,omitempty"`
}

// PeersPoint is one operation at one concurrency against every target.
type PeersPoint struct {
	Op          string        `json:"op"`
	Concurrency int           `json:"concurrency"`
	Results     []*LoadResult `json:"results"`
	// Per Coffer target: its CPU per request ÷ the bare server's, and its
	// req/s ÷ local-kms's.
	CPUvsBare     map[string]float64 `json:"cpuVsBare"`
	RPSvsLocalKMS map[string]float64 `json:"rpsVsLocalKms,omitempty"`
}

// localKMSPattern finds local-kms's port in its start line; it listens on
// every interface (its own code), and is loaded over 127.0.0.1.
var localKMSPattern = regexp.MustCompile(`Local KMS started on [0-9.]*:([0-9]+)`)

// auditModeArgs are the `coffer serve` flags of an audit mode.
func auditModeArgs(mode string) []string {
	switch mode {
	case "on":
		return nil
	case "off":
		return []string{"--audit=false"}
	}
	return []string{"--audit-sync=" + mode}
}

// serveFlags returns a check of whether bin's `coffer serve` knows a
// flag, from one run of its --help.
func serveFlags(bin string) func(flag string) bool {
	out, _ := exec.Command(bin, "serve", "--help").CombinedOutput()
	return func(flag string) bool { return strings.Contains(string(out), flag) }
}

type peerTarget struct {
	name string
	c    *child
	base LoadConfig
}

// RunPeers starts every target, loads each operation and concurrency on
// each in turn (targets interleaved, so that the noise of a shared machine
// falls on all of them alike) and returns the report.
func RunPeers(ctx context.Context, cfg PeersConfig) (*PeersReport, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	dir, err := os.MkdirTemp("", "coffer-peers-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	pinned := "no"
	pinServers := func() error {
		if cfg.ServerCPU >= 0 {
			return Pin(0, cfg.ServerCPU) // children inherit it
		}
		return nil
	}
	if cfg.ServerCPU >= 0 {
		pinned = fmt.Sprintf("every server on CPU %d, generator on CPU %d", cfg.ServerCPU, cfg.ClientCPU)
	}
	if err := pinServers(); err != nil {
		return nil, err
	}
	rep := &PeersReport{Machine: describeMachine(pinned), Duration: cfg.Duration.String()}
	var targets []*peerTarget
	defer func() {
		for _, t := range targets {
			t.c.stop()
		}
	}()
	hasFlag := serveFlags(cfg.Binary)
	for _, mode := range cfg.AuditModes {
		args := auditModeArgs(mode)
		if len(args) > 0 && !hasFlag(strings.SplitN(args[0], "=", 2)[0]) {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("audit %s: this coffer has no %s flag", mode, strings.SplitN(args[0], "=", 2)[0]))
			continue
		}
		data := filepath.Join(dir, "coffer-"+sanitize(mode))
		serve := []string{"serve", "--data-dir", data, "--listen", "127.0.0.1:0"}
		if hasFlag("--throttle") {
			serve = append(serve, unthrottled)
		}
		c, err := startChild(cfg.Binary, append(append(serve, cfg.ServeArgs...), args...), dir)
		if err != nil {
			return nil, err
		}
		t := &peerTarget{name: "coffer audit " + mode, c: c}
		targets = append(targets, t)
		id, secret, err := readCredentials(filepath.Join(data, "credentials"))
		if err != nil {
			return nil, err
		}
		t.base = LoadConfig{Endpoint: c.endpoint, Region: "us-east-1", AccessKeyID: id, Secret: secret, PlaintextSize: 1024}
	}
	bare, err := startChild(cfg.Binary, []string{"bench", "bare", "--listen", "127.0.0.1:0"}, dir)
	if err != nil {
		return nil, err
	}
	targets = append(targets, &peerTarget{name: "bare", c: bare, base: LoadConfig{Endpoint: bare.endpoint, Region: "us-east-1",
		AccessKeyID: "AKIAIOSFODNN7EXAMPLE", Secret: "bench", PlaintextSize: 1024, KeyID: "bare", Blob: make([]byte, 64)}})
	if cfg.LocalKMS != "" {
		env := []string{"PORT=0", "KMS_REGION=us-east-1", "KMS_ACCOUNT_ID=111122223333",
			"KMS_DATA_PATH=" + filepath.Join(dir, "local-kms"), "KMS_SEED_PATH=" + filepath.Join(dir, "no-seed.yaml")}
		c, err := startProcess(cfg.LocalKMS, nil, env, dir, localKMSPattern, 20*time.Second)
		if err != nil {
			return nil, err
		}
		c.endpoint = "http://127.0.0.1:" + c.endpoint
		// local-kms does not check SigV4: any credentials pass.
		targets = append(targets, &peerTarget{name: "local-kms", c: c, base: LoadConfig{Endpoint: c.endpoint, Region: "us-east-1",
			AccessKeyID: "AKIAIOSFODNN7EXAMPLE", Secret: "local-kms", PlaintextSize: 1024}})
		rep.LocalKMS = moduleOf(cfg.LocalKMS)
	}
	if cfg.ClientCPU >= 0 {
		if err := Pin(0, cfg.ClientCPU); err != nil {
			return nil, err
		}
	}
	for _, t := range targets {
		rep.Targets = append(rep.Targets, t.name)
		if t.name == "bare" {
			continue
		}
		if t.base.KeyID, t.base.Blob, err = prepareKey(t.base); err != nil {
			return nil, fmt.Errorf("bench: prepare a key on %s: %w", t.name, err)
		}
	}
	for _, op := range cfg.Ops {
		for _, conc := range cfg.Concurrency {
			p := PeersPoint{Op: op, Concurrency: conc, CPUvsBare: map[string]float64{}, RPSvsLocalKMS: map[string]float64{}}
			for _, t := range targets {
				lc := t.base
				lc.Op, lc.Concurrency, lc.ServerPID = op, conc, t.c.cmd.Process.Pid
				if cfg.Warmup > 0 {
					warm := lc
					warm.Duration = cfg.Warmup
					if _, err := RunLoad(ctx, warm); err != nil {
						return nil, err
					}
				}
				lc.Duration = cfg.Duration
				r, err := RunLoad(ctx, lc)
				if err != nil {
					return nil, err
				}
				r.Target = t.name
				fmt.Fprintf(cfg.Log, "%-16s c=%-4d %-18s %8.0f req/s  p50 %6.0fµs  p99 %6.0fµs  cpu/req %6.1fµs  errors %d\n",
					op, conc, t.name, r.RPS, r.P50us, r.P99us, r.ServerCPUus, r.Errors)
				if r.Errors > 0 {
					fmt.Fprintf(cfg.Log, "  first error: %s\n", r.FirstError)
				}
				p.Results = append(p.Results, r)
			}
			peerRatios(&p)
			rep.Points = append(rep.Points, p)
		}
	}
	return rep, nil
}

// peerRatios fills p's ratios from its results.
func peerRatios(p *PeersPoint) {
	var bare, peer *LoadResult
	for _, r := range p.Results {
		switch r.Target {
		case "bare":
			bare = r
		case "local-kms":
			peer = r
		}
	}
	for _, r := range p.Results {
		if !strings.HasPrefix(r.Target, "coffer") {
			continue
		}
		if bare != nil && bare.ServerCPUus > 0 {
			p.CPUvsBare[r.Target] = r.ServerCPUus / bare.ServerCPUus
		}
		if peer != nil && peer.RPS > 0 {
			p.RPSvsLocalKMS[r.Target] = r.RPS / peer.RPS
		}
	}
}

// moduleOf is the main module and version a Go binary was built from
// (what `go version -m` prints), or its path when that cannot be read.
func moduleOf(bin string) string {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return bin
	}
	return info.Main.Path + "@" + info.Main.Version
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

func sanitize(s string) string { return unsafeName.ReplaceAllString(s, "-") }

// ErrNoLocalKMS reports a peers run asked for local-kms without its binary.
var ErrNoLocalKMS = errors.New("bench: local-kms binary not found (make bench-peers installs it)")
