package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/keystore/postgres"
	"github.com/coffer-kms/coffer/kms"
	"github.com/coffer-kms/coffer/server"
)

// DefaultListen is where `coffer serve` listens unless told otherwise.
const DefaultListen = "127.0.0.1:7300"

type serveOptions struct {
	listen              string
	metricsListen       string
	dataDir             string
	region              string
	regions             []string
	account             string
	dev                 bool
	maintenanceInterval time.Duration
	shutdownTimeout     time.Duration
	logLevel            string
	logFormat           string
	cpuProfile          string
	gcPercent           int
	memoryLimit         string
	audit               bool
	auditSync           auditSync
	printCredentials    bool
	allowCoreDumps      bool
	root                rootOptions
	store               storeOptions
	tls                 tlsOptions
	rateLimitsOn        bool
	rateLimits          *server.RateLimits // from the config file; nil: off
	cache               kms.CacheConfig
}

func newServeCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the AWS KMS API",
		Long: `Serve the AWS KMS API (AWS JSON 1.1, SigV4) on --listen.

With no flags Coffer keeps its state in ./coffer-data: a bbolt database and
the root key sealed in root.key. The first start creates an administrator and
writes its credentials to <data-dir>/credentials (mode 0600), then prints a
line to paste that points the AWS tools at that file; --print-credentials
prints the secret itself instead.

Every flag may also be set as COFFER_<FLAG> in the environment
(COFFER_LISTEN, COFFER_DATA_DIR, ...) and as a key of the YAML file named
by --config; a flag wins over the environment, which wins over the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rc, err := resolveConfig(cmd)
			if err != nil {
				return err
			}
			if o.rateLimitsOn {
				if o.rateLimits, err = rateLimitsOf(rc.file); err != nil {
					return err
				}
			}
			return runServe(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", DefaultListen, "address to listen on")
	f.StringVar(&o.metricsListen, "metrics-listen", "", "serve GET /metrics only on this address (default: on --listen)")
	f.StringVar(&o.dataDir, "data-dir", "./coffer-data", "directory for the database, root key and credentials")
	f.StringVar(&o.region, "region", "us-east-1", "AWS region this server answers as")
	f.StringSliceVar(&o.regions, "regions", nil, "every AWS Region this server serves, comma-separated; the SigV4 credential scope picks one (default: just --region)")
	f.StringVar(&o.account, "account", "111122223333", "12-digit account that owns keys")
	f.BoolVar(&o.dev, "dev", false, "in-memory throw-away server that accepts any well-formed signature (never for real keys)")
	f.DurationVar(&o.maintenanceInterval, "maintenance-interval", time.Minute, "how often due rotations and deletions run")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long requests in flight may take to finish at shutdown")
	f.IntVar(&o.cache.Entries, "cache-entries", 10000, "the most entries each in-memory cache holds (key records, unwrapped key material, grants, identities, access keys, aliases, each separately)")
	f.DurationVar(&o.cache.TTL, "cache-ttl", 5*time.Minute, "the longest a cache entry is kept: unwrapped material older than this is unwrapped again, records read again")
	f.IntVar(&o.cache.UsageEntries, "usage-entries", 65536, "the most keys whose usage counts and last use are held in memory between flushes; reaching it starts a flush")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", logFormatText, "text or json (log/slog's JSON handler: one object a line); request lines carry requestId, as the audit record does")
	o.root.flags(cmd, true)
	o.store.flags(cmd)
	o.tls.flags(cmd)
	addConfigFlag(cmd)
	f.BoolVar(&o.rateLimitsOn, "throttle", true, "throttle each account as AWS does (ThrottlingException): AWS's default request quotas, or those of the config file's rate-limits key")
	f.BoolVar(&o.audit, "audit", true, "write the audit trail to <data-dir>/audit (never off in production: calls are then unaudited)")
	f.Var(&o.auditSync, "audit-sync", "when a call's response waits for its audit record: commit (its fdatasync: nothing acknowledged is lost) or interval:<d>, e.g. interval:10ms (its write into the trail file, with an fdatasync every d: a crash of the process loses nothing, a power loss at most the last d of records)")
	f.BoolVar(&o.printCredentials, "print-credentials", false, "on the first start, print the administrator's secret key to stdout (it is always in <data-dir>/credentials)")
	f.BoolVar(&o.allowCoreDumps, "allow-core-dumps", false, "leave core dumps and ptrace allowed (by default they are off: the process's memory holds key material)")
	f.StringVar(&o.cpuProfile, "cpu-profile", "", "write a CPU profile of the whole run to this file (for performance work)")
	f.IntVar(&o.gcPercent, "gc-percent", 400, "garbage-collector target (GOGC); the live heap is small, so collecting less often saves CPU. It does not bound memory: --memory-limit does. GOGC in the environment wins")
	f.StringVar(&o.memoryLimit, "memory-limit", "auto", "soft limit on the Go heap (GOMEMLIMIT), e.g. 512MiB or 2GiB; the GC works harder near it, whatever --gc-percent says. auto: 3/4 of the cgroup memory limit, else 1GiB (or 3/4 of physical memory if less); off: none. GOMEMLIMIT in the environment wins")
	return cmd
}

// recoverTimeout bounds the start's reconciliation of the audit outbox
// with the trail (server's RecoverAudit), each of its store calls included.
const recoverTimeout = 5 * time.Minute

func runServe(ctx context.Context, o serveOptions, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	log, err := newLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		return err
	}
	if o.dev { // first thing, before any log line
		fmt.Fprintln(stderr, "WARNING: --dev: keys live only in memory and are lost at exit, and ANY well-formed SigV4")
		fmt.Fprintln(stderr, "WARNING: signature is accepted as the account root. Never use --dev for real data.")
	}
	if err := selfTest(log); err != nil {
		return err
	}
	if !o.allowCoreDumps {
		if err := disableCoreDumps(); err != nil {
			log.Warn("could not turn core dumps off", "err", err)
		}
	}
	if _, set := os.LookupEnv("GOGC"); !set && o.gcPercent > 0 {
		debug.SetGCPercent(o.gcPercent)
	}
	limit, source, lerr := applyMemoryLimit(o.memoryLimit, os.LookupEnv, systemMemory)
	if lerr != nil {
		return lerr
	}
	log.Info("memory limit", "limit", formatSize(limit), "from", source)
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}

	if err := o.store.check(); err != nil {
		return err
	}
	// The port first: a server that cannot serve fails before it creates
	// anything in the data dir.
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	defer ln.Close() // Serve closes it too; closing twice is harmless

	var (
		store       keystore.Store
		root        hsm.Backend
		rootMetrics func(io.Writer)
		pgStore     *postgres.Store // --store postgres
	)
	if o.dev {
		store = keystore.NewMemory()
		root, err = hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	} else {
		if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
			return err
		}
		root, rootMetrics, err = openRoot(o.dataDir, o.root)
		if err == nil && o.store.kind == storePostgres {
			if pgStore, err = o.store.openPostgres(ctx); err != nil {
				root.Close()
				return err
			}
			store = pgStore
		} else if err == nil {
			store, err = keystore.OpenBolt(filepath.Join(o.dataDir, "coffer.db"))
			if errors.Is(err, keystore.ErrLocked) {
				root.Close()
				return fmt.Errorf("%w: is another coffer serve running on data dir %s?", err, o.dataDir)
			}
		}
	}
	if err != nil {
		return err
	}
	defer root.Close()
	defer store.Close()

	kcfg := kms.Config{Region: o.region, Account: o.account, Store: store, Root: root, Cache: o.cache}
	if pgStore != nil {
		// Nodes share the audit outbox: each entry names its node.
		if kcfg.NodeID, err = nodeID(o.dataDir); err != nil {
			return fmt.Errorf("node ID: %w", err)
		}
		kcfg.OutboxTakeover = o.store.outboxTakeover()
	}
	svc, err := kms.New(kcfg)
	if err != nil {
		return err
	}
	// Before Close can write this node's node-alive time: a refused node
	// writes nothing (its service holds nothing to zero yet).
	if err := svc.CheckNodeID(ctx, nodeAliveWait); err != nil {
		return fmt.Errorf("node ID: %w", err)
	}
	defer svc.Close()
	// Every other served Region: a Service of its own over the same store.
	var others []*kms.Service
	for _, r := range o.regions {
		if r == o.region {
			continue
		}
		rs, err := svc.InRegion(r)
		if err != nil {
			return err
		}
		defer rs.Close()
		others = append(others, rs)
	}

	endpoint := "http://" + ln.Addr().String()
	var (
		tlsConfig *tls.Config
		certs     *server.Certificates
		caBundle  string
	)
	if o.tls.enabled() {
		if tlsConfig, certs, caBundle, err = setupTLS(o.tls, o.dataDir, o.listen); err != nil {
			ln.Close()
			return err
		}
		endpoint = "https://" + ln.Addr().String()
		if caBundle != "" {
			fmt.Fprintf(stdout, "# Coffer serves TLS with a self-signed certificate; point the AWS tools at it:\nexport AWS_CA_BUNDLE=%s\n", caBundle)
		}
	}
	if !o.dev {
		creds, err := svc.Bootstrap(ctx)
		if err != nil {
			ln.Close()
			return fmt.Errorf("create administrator: %w", err)
		}
		if creds != nil {
			path := filepath.Join(o.dataDir, "credentials")
			if err := writeCredentials(path, creds, o.region); err != nil {
				ln.Close()
				return err
			}
			if o.printCredentials {
				fmt.Fprintf(stdout, "# Coffer created administrator %s. Its secret is shown only now (also in %s):\n", creds.PrincipalARN, path)
				// AWS_DEFAULT_REGION too: the AWS CLI v1 and boto3 read only that one.
				fmt.Fprintf(stdout, "export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_REGION=%s AWS_DEFAULT_REGION=%s AWS_ENDPOINT_URL_KMS=%s\n",
					creds.AccessKeyID, creds.SecretAccessKey, o.region, o.region, endpoint)
			} else {
				// The secret stays in the file: stdout ends up in terminals'
				// scrollback, CI logs and journald.
				if abs, err := filepath.Abs(path); err == nil {
					path = abs
				}
				fmt.Fprintf(stdout, "# Coffer created administrator %s; its credentials are in %s (mode 0600):\n", creds.PrincipalARN, path)
				fmt.Fprintf(stdout, "export AWS_SHARED_CREDENTIALS_FILE=%s AWS_REGION=%s AWS_DEFAULT_REGION=%s AWS_ENDPOINT_URL_KMS=%s\n", path, o.region, o.region, endpoint)
			}
		}
	}

	var trail *audit.Writer
	if o.audit && !o.dev {
		signer, err := kms.AuditSigner(ctx, root, filepath.Join(o.dataDir, kms.AuditKeyFile), filepath.Join(o.dataDir, "audit"))
		if err != nil {
			ln.Close()
			return err
		}
		if trail, err = audit.Open(audit.Config{Dir: filepath.Join(o.dataDir, "audit"), Signer: signer, Logger: log, SyncInterval: o.auditSync.interval}); err != nil {
			ln.Close()
			return err
		}
		log.Info("audit trail open", "sync", o.auditSync.String())
		defer trail.Close() // seals the chain with a final digest
	} else {
		log.Warn("the audit trail is off: calls are not audited")
	}
	cfg := server.Config{Service: svc, Regions: others, Dev: o.dev, Logger: log, SeparateMetrics: o.metricsListen != "", RateLimits: o.rateLimits,
		Status: server.StatusConfig{Version: binaryVersion(), Root: o.root.kind, Store: storeKind(o)}}
	if trail != nil {
		cfg.Audit = trail
	}
	srv, err := server.New(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	if rootMetrics != nil {
		srv.AddMetrics(rootMetrics)
	}
	if h, ok := root.(hsm.HealthChecker); ok { // the software root is always ready
		srv.AddReadyCheck("root of trust", h.Healthy)
	}
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	if pgStore != nil {
		// Other nodes' changes reach this node's caches; without the feed
		// (or the database) the node is not ready.
		srv.AddReadyCheck("postgres", pgStore.Healthy)
		srv.AddReadyCheck("postgres change feed", o.store.followChanges(fctx, svc, log))
	}
	if trail != nil {
		// Changes whose records were still in the store's outbox when the
		// last run stopped reach the trail before anything is served.
		// Its store calls get recoverTimeout, not the store's per-call
		// bound: it may walk a large outbox (a bulk creation's; or one
		// drained just before this start, whose deleted rows PostgreSQL
		// walks until a vacuum removes them).
		rctx, rcancel := context.WithTimeout(ctx, recoverTimeout)
		recovered, drained, err := srv.RecoverAudit(rctx, filepath.Join(o.dataDir, "audit"))
		rcancel()
		if err != nil {
			ln.Close()
			return fmt.Errorf("reconcile the audit outbox with the trail: %w", err)
		}
		if recovered+drained > 0 {
			log.Info("audit outbox reconciled", "recovered", recovered, "alreadyInTrail", drained)
		}
		srv.AddReadyCheck("audit trail", trail.Err)
		srv.AddMetrics(auditMetrics(trail))
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	mctx, mcancel := context.WithCancel(ctx)
	defer mcancel()
	go svc.Run(mctx, o.maintenanceInterval, log)
	for _, rs := range others {
		go rs.Run(mctx, o.maintenanceInterval, log)
	}
	go srv.RunServiceEvents(mctx, time.Second) // the records of maintenance's changes, from the outbox to the trail
	go func() {                                // usage counters reach the store every few seconds
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-mctx.Done():
				return
			case <-t.C:
				for _, rs := range append([]*kms.Service{svc}, others...) {
					if err := rs.FlushUsage(mctx); err != nil && mctx.Err() == nil {
						log.Error("usage flush failed", "region", rs.Region(), "err", err)
					}
				}
			}
		}
	}()

	errc := make(chan error, 2)
	if o.metricsListen != "" {
		mln, err := net.Listen("tcp", o.metricsListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		go func() { errc <- srv.ServeMetrics(mln) }()
		log.Info("metrics served", "metrics", "http://"+mln.Addr().String()+"/metrics")
	}
	if tlsConfig != nil {
		go certs.Watch(mctx, o.tls.pollInterval, log)
		go reloadOnHUP(mctx, certs, log)
		go func() { errc <- srv.ServeTLS(ln, tlsConfig) }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	log.Info("coffer serving", "endpoint", endpoint, "region", o.region, "regions", o.regions, "account", o.account, "dataDir", o.dataDir, "store", o.store.kind, "dev", o.dev)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	mcancel()
	log.Info("stopped")
	return nil
}

// passphraseFromEnv reads the optional root-key passphrase.
func passphraseFromEnv() []byte {
	if p := os.Getenv("COFFER_ROOT_PASSPHRASE"); p != "" {
		return []byte(p)
	}
	return nil
}

// writeCredentials writes the administrator's key in the AWS
// shared-credentials format (0600), for AWS_SHARED_CREDENTIALS_FILE.
func writeCredentials(path string, c *kms.Credentials, region string) error {
	body := fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\nregion = %s\n", c.AccessKeyID, c.SecretAccessKey, region)
	return writeFileAtomic(path, []byte(body))
}
