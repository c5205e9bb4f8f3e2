package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// ScaleConfig describes a scale run (issue 26.2): one `coffer serve` on a
// data dir filled with Keys keys (and an alias each) through the API, then
// measured.
type ScaleConfig struct {
	Binary  string
	DataDir string // created; left in place for the caller (the sweeps)
	// PostgresURL, when set, serves from that (empty) database instead of
	// bbolt; the store's size is then not measured.
	PostgresURL string
	Keys        int
	// Aliases gives every key an alias (ListAliases paging has a set to
	// page over).
	Aliases bool
	// CreateConcurrency is the number of connections creating keys.
	CreateConcurrency int
	// Duration is the length of each latency measurement.
	Duration  time.Duration
	ServeArgs []string
	// ServerCPU and ClientCPU pin the server and the generator; -1: no pinning.
	ServerCPU, ClientCPU int
	Log                  io.Writer
	// Bulk, when set, makes the keys instead of the API: called with the
	// server stopped after its first start made the data dir, it creates
	// Keys keys in process (kms.Service.BulkCreateKeys) and returns their
	// IDs. Aliases must be off. Its rate is not CreateKey's through the
	// API, and there is no RSS after creation (the server made nothing).
	Bulk func(ctx context.Context) ([]string, error)
}

// ScaleReport is what a scale run measured; the sweeps (in process, on
// the data dir after the server stopped) are added by the command.
type ScaleReport struct {
	Machine Machine `json:"machine"`
	Command string  `json:"command"`
	Store   string  `json:"store"`
	Keys    int     `json:"keys"`
	Aliases int     `json:"aliases"`

	CreateSeconds float64 `json:"createSeconds"`
	CreatePerSec  float64 `json:"createKeysPerSecond"` // CreateKey (+ CreateAlias) pairs per second
	CreateErrors  int     `json:"createErrors"`
	// Bulk: the keys were made in process in batched transactions
	// (ScaleConfig.Bulk), not through the API; RSSAfterCreate is -1.
	Bulk bool `json:"bulk,omitempty"`

	StoreBytes       int64   `json:"storeBytes"` // coffer.db; -1: not measured (PostgreSQL)
	AuditBytes       int64   `json:"auditBytes"`
	StoreBytesPerKey float64 `json:"storeBytesPerKey"`
	// RSS after the keys were made, after a restart, and after the
	// cold loads (every key touched); the anonymous part excludes the
	// pages of the store's memory-mapped file.
	RSSAfterCreateKiB     int64 `json:"rssAfterCreateKiB"`
	RSSAnonAfterCreateKiB int64 `json:"rssAnonAfterCreateKiB"`
	RSSAfterStartKiB      int64 `json:"rssAfterStartKiB"`
	RSSAnonAfterStartKiB  int64 `json:"rssAnonAfterStartKiB"`
	RSSAfterLoadKiB       int64 `json:"rssAfterLoadKiB"`
	RSSAnonAfterLoadKiB   int64 `json:"rssAnonAfterLoadKiB"`

	// StartSeconds is a restart on the full data dir until the server
	// answers a DescribeKey.
	StartSeconds float64 `json:"startSeconds"`
	// DrainStartSeconds (Bulk) is the first start after the bulk creation,
	// until a DescribeKey is answered: it appends the keys' CreateKey
	// records from the store's audit outbox to the trail before it serves
	// (server's RecoverAudit), a one-time cost StartSeconds, measured on the
	// start after, does not include.
	DrainStartSeconds float64 `json:"drainStartSeconds,omitempty"`

	ListKeysSeconds    float64 `json:"listKeysSeconds"`
	ListKeysPages      int     `json:"listKeysPages"`
	ListAliasesSeconds float64 `json:"listAliasesSeconds"`
	ListAliasesPages   int     `json:"listAliasesPages"`

	// Latency: DescribeKey and Encrypt on one key (hot) and uniformly
	// over all keys (cold).
	Latency []ScalePoint `json:"latency"`

	Sweeps *SweepReport `json:"sweeps,omitempty"`
}

// ScalePoint is one latency measurement.
type ScalePoint struct {
	Op     string      `json:"op"`
	Spread string      `json:"spread"` // "hot" or "cold"
	Result *LoadResult `json:"result"`
}

// SweepReport is the maintenance loop over the whole key set, run in
// process on the data dir with a clock moved forward.
type SweepReport struct {
	IdleSeconds     float64 `json:"idleSeconds"` // a run with nothing due
	EnableSeconds   float64 `json:"enableRotationSeconds"`
	RotateSeconds   float64 `json:"rotateSeconds"`
	Rotated         int     `json:"rotated"`
	ScheduleSeconds float64 `json:"scheduleDeletionSeconds"`
	DeleteSeconds   float64 `json:"deleteSeconds"`
	Deleted         int     `json:"deleted"`
}

// RunScale fills a fresh data dir with cfg.Keys keys through a real
// server and measures it.
func RunScale(ctx context.Context, cfg ScaleConfig) (*ScaleReport, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Keys <= 0 || cfg.CreateConcurrency <= 0 || cfg.Duration <= 0 {
		return nil, errors.New("bench: Keys, CreateConcurrency and Duration must be positive")
	}
	pinned := "no"
	if cfg.ServerCPU >= 0 {
		pinned = fmt.Sprintf("server on CPU %d, generator on CPU %d", cfg.ServerCPU, cfg.ClientCPU)
	}
	rep := &ScaleReport{Machine: describeMachine(pinned), Store: "bolt", Keys: cfg.Keys}
	if cfg.PostgresURL != "" {
		rep.Store = "postgres"
		cfg.ServeArgs = append(cfg.ServeArgs, "--store=postgres", "--postgres-url="+cfg.PostgresURL)
	}
	start := func() (*child, LoadConfig, error) {
		if cfg.ServerCPU >= 0 {
			if err := Pin(0, cfg.ServerCPU); err != nil {
				return nil, LoadConfig{}, err
			}
		}
		// The start on a full store is what is measured: it may take long.
		c, err := startProcess(cfg.Binary, append([]string{"serve", "--data-dir", cfg.DataDir, "--listen", "127.0.0.1:0"}, cfg.ServeArgs...),
			nil, filepath.Dir(cfg.DataDir), endpointPattern, 5*time.Minute)
		if cfg.ClientCPU >= 0 {
			Pin(0, cfg.ClientCPU)
		}
		if err != nil {
			return nil, LoadConfig{}, err
		}
		id, secret, err := readCredentials(filepath.Join(cfg.DataDir, "credentials"))
		if err != nil {
			c.stop()
			return nil, LoadConfig{}, err
		}
		return c, LoadConfig{Endpoint: c.endpoint, Region: "us-east-1", AccessKeyID: id, Secret: secret, PlaintextSize: 1024}, nil
	}
	srv, base, err := start()
	if err != nil {
		return nil, err
	}
	defer func() {
		if srv != nil { // nil after a failed restart
			srv.stop()
		}
	}()

	if cfg.Bulk != nil {
		if cfg.Aliases {
			return nil, errors.New("bench: a bulk scale run makes no aliases")
		}
		srv.stop()
		srv = nil
		t0 := time.Now()
		ids, err := cfg.Bulk(ctx)
		if err != nil {
			return nil, err
		}
		if len(ids) != cfg.Keys {
			return nil, fmt.Errorf("bench: bulk creation made %d keys, want %d", len(ids), cfg.Keys)
		}
		rep.Bulk = true
		rep.CreateSeconds = time.Since(t0).Seconds()
		rep.CreatePerSec = float64(cfg.Keys) / rep.CreateSeconds
		rep.RSSAfterCreateKiB, rep.RSSAnonAfterCreateKiB = -1, -1
		fmt.Fprintf(cfg.Log, "scale: %d keys in bulk in %.1fs (%.0f/s, not comparable with the API)\n", cfg.Keys, rep.CreateSeconds, rep.CreatePerSec)
		// The first start drains the outbox the bulk creation filled (one
		// CreateKey record a key) into the trail: timed by itself.
		t0 = time.Now()
		if srv, base, err = start(); err != nil {
			return nil, fmt.Errorf("bench: start after the bulk creation: %w", err)
		}
		client := &fasthttp.HostClient{Addr: hostOf(base.Endpoint)}
		if err := callWith(client, base, "DescribeKey", map[string]string{"KeyId": ids[0]}, &struct{}{}); err != nil {
			return nil, err
		}
		rep.DrainStartSeconds = time.Since(t0).Seconds()
		fmt.Fprintf(cfg.Log, "scale: the start that appends the %d keys' records to the trail: %.1fs\n", cfg.Keys, rep.DrainStartSeconds)
		srv.stop()
		srv = nil
		return measureScale(ctx, cfg, rep, ids, start, &srv)
	}
	// 1. The keys, each with its alias, from CreateConcurrency connections.
	ids := make([]string, cfg.Keys)
	var next atomic.Int64
	var errs atomic.Int64
	var firstErr atomic.Value
	host, _ := checkLoopback(base.Endpoint)
	client := &fasthttp.HostClient{Addr: host, MaxConns: cfg.CreateConcurrency}
	t0 := time.Now()
	var wg sync.WaitGroup
	for range cfg.CreateConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= cfg.Keys {
					return
				}
				var out struct{ KeyMetadata struct{ KeyId string } }
				err := callWith(client, base, "CreateKey", map[string]string{"Description": "scale"}, &out)
				if err == nil && cfg.Aliases {
					err = callWith(client, base, "CreateAlias", map[string]string{"AliasName": fmt.Sprintf("alias/scale/%09d", i), "TargetKeyId": out.KeyMetadata.KeyId}, &struct{}{})
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ids[i] = out.KeyMetadata.KeyId
			}
		}()
	}
	done := make(chan struct{})
	go func() { // progress, for runs of minutes
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n := min(int(next.Load()), cfg.Keys)
				fmt.Fprintf(cfg.Log, "scale: %d/%d keys, %.0f/s\n", n, cfg.Keys, float64(n)/time.Since(t0).Seconds())
			}
		}
	}()
	wg.Wait()
	close(done)
	rep.CreateSeconds = time.Since(t0).Seconds()
	rep.CreateErrors = int(errs.Load())
	if rep.CreateErrors > 0 {
		return nil, fmt.Errorf("bench: %d of %d creations failed, the first: %v", rep.CreateErrors, cfg.Keys, firstErr.Load())
	}
	rep.CreatePerSec = float64(cfg.Keys) / rep.CreateSeconds
	if cfg.Aliases {
		rep.Aliases = cfg.Keys
	}
	fmt.Fprintf(cfg.Log, "scale: %d keys in %.1fs (%.0f/s)\n", cfg.Keys, rep.CreateSeconds, rep.CreatePerSec)
	pid := srv.cmd.Process.Pid
	rep.RSSAfterCreateKiB, _ = processRSS(pid)
	rep.RSSAnonAfterCreateKiB, _ = processRSSAnon(pid)
	srv.stop()
	srv = nil
	return measureScale(ctx, cfg, rep, ids, start, &srv)
}

// measureScale measures a filled data dir whose server is stopped: steps
// 2 to 4 of a scale run. *srvp is the running server, for the caller to
// stop.
func measureScale(ctx context.Context, cfg ScaleConfig, rep *ScaleReport, ids []string,
	start func() (*child, LoadConfig, error), srvp **child) (*ScaleReport, error) {
	// 2. A restart on the full data dir, until a request is answered.
	t0 := time.Now()
	srv, base, err := start()
	if err != nil {
		return nil, fmt.Errorf("bench: restart on %d keys: %w", cfg.Keys, err)
	}
	*srvp = srv
	client := &fasthttp.HostClient{Addr: hostOf(base.Endpoint)}
	if err := callWith(client, base, "DescribeKey", map[string]string{"KeyId": ids[0]}, &struct{}{}); err != nil {
		return nil, err
	}
	rep.StartSeconds = time.Since(t0).Seconds()
	pid := srv.cmd.Process.Pid
	rep.RSSAfterStartKiB, _ = processRSS(pid)
	rep.RSSAnonAfterStartKiB, _ = processRSSAnon(pid)
	rep.StoreBytes, rep.StoreBytesPerKey = -1, -1
	if cfg.PostgresURL == "" {
		rep.StoreBytes = fileSize(filepath.Join(cfg.DataDir, "coffer.db"))
		rep.StoreBytesPerKey = float64(rep.StoreBytes) / float64(cfg.Keys)
	}
	rep.AuditBytes = dirSize(filepath.Join(cfg.DataDir, "audit"))

	// 3. Full paging of ListKeys (1000 a page, AWS's maximum) and
	// ListAliases (100).
	if rep.ListKeysSeconds, rep.ListKeysPages, err = pageAll(client, base, "ListKeys", 1000, "Keys", cfg.Keys); err != nil {
		return nil, err
	}
	if cfg.Aliases {
		if rep.ListAliasesSeconds, rep.ListAliasesPages, err = pageAll(client, base, "ListAliases", 100, "Aliases", cfg.Keys); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(cfg.Log, "scale: restart %.2fs, ListKeys %.2fs (%d pages), ListAliases %.2fs (%d pages)\n",
		rep.StartSeconds, rep.ListKeysSeconds, rep.ListKeysPages, rep.ListAliasesSeconds, rep.ListAliasesPages)

	// 4. Latency and CPU per request, hot and cold.
	for _, op := range []string{"DescribeKey", "Encrypt"} {
		for _, spread := range []string{"hot", "cold"} {
			lc := base
			lc.Op, lc.Concurrency, lc.Duration, lc.ServerPID = op, 32, cfg.Duration, pid
			if spread == "hot" {
				lc.KeyID = ids[0]
			} else {
				lc.KeyIDs = ids
			}
			r, err := RunLoad(ctx, lc)
			if err != nil {
				return nil, err
			}
			if r.Errors > 0 {
				return nil, fmt.Errorf("bench: %s %s: %d errors, the first: %s", op, spread, r.Errors, r.FirstError)
			}
			r.Target = "coffer"
			fmt.Fprintf(cfg.Log, "scale: %-11s %-4s %8.0f req/s  p50 %6.0fµs  p99 %6.0fµs  cpu/req %5.1fµs\n", op, spread, r.RPS, r.P50us, r.P99us, r.ServerCPUus)
			rep.Latency = append(rep.Latency, ScalePoint{Op: op, Spread: spread, Result: r})
		}
	}
	rep.RSSAfterLoadKiB, _ = processRSS(pid)
	rep.RSSAnonAfterLoadKiB, _ = processRSSAnon(pid)
	return rep, nil
}

// pageAll pages op through to the end and returns the time it took.
func pageAll(client *fasthttp.HostClient, cfg LoadConfig, op string, limit int, member string, want int) (float64, int, error) {
	t0 := time.Now()
	pages, total, marker := 0, 0, ""
	for {
		in := map[string]any{"Limit": limit}
		if marker != "" {
			in["Marker"] = marker
		}
		var out map[string]any
		if err := callWith(client, cfg, op, in, &out); err != nil {
			return 0, 0, err
		}
		pages++
		items, _ := out[member].([]any)
		total += len(items)
		truncated, _ := out["Truncated"].(bool)
		if !truncated {
			break
		}
		marker, _ = out["NextMarker"].(string)
	}
	if total < want {
		return 0, 0, fmt.Errorf("bench: %s listed %d, want at least %d", op, total, want)
	}
	return time.Since(t0).Seconds(), pages, nil
}

func hostOf(endpoint string) string {
	h, _ := checkLoopback(endpoint)
	return h
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return st.Size()
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
