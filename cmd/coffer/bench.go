package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-kms/coffer/bench"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test a Coffer server against a bare fasthttp server on this machine",
	}
	cmd.AddCommand(newBenchRunCmd(), newBenchBareCmd(), newBenchPeersCmd(), newBenchScaleCmd())
	return cmd
}

func newBenchRunCmd() *cobra.Command {
	var (
		ops, conc         string
		duration, warmup  time.Duration
		rssEvery          time.Duration
		runs              int
		serverCPU, client int
		out               string
		serveArgs         []string
		compareArgs       []string
		useTLS            bool
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Start coffer serve and a bare fasthttp server, load both, report ratios",
		Long: `Starts ` + "`coffer serve`" + ` (a fresh data dir, SigV4 on) and a bare fasthttp server that
answers every request with a canned response, both on loopback, pinned to --server-cpu;
pins itself to --client-cpu; then for each operation and concurrency runs the same
signed requests against both --runs times for --duration and reports the medians:
req/s, p50/p99/p999 latency, errors, and server CPU time per request (from /proc),
with Coffer's CPU per request as a ratio to the bare server's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			cfg := bench.HarnessConfig{
				Binary: self, ServeArgs: serveArgs, CompareServeArgs: compareArgs, Duration: duration, Warmup: warmup, Runs: runs,
				ServerCPU: serverCPU, ClientCPU: client, RSSEvery: rssEvery, TLS: useTLS, Log: cmd.ErrOrStderr(),
			}
			cfg.Ops = strings.Split(ops, ",")
			for _, c := range strings.Split(conc, ",") {
				n, err := strconv.Atoi(c)
				if err != nil || n <= 0 {
					return fmt.Errorf("--concurrency: %q", c)
				}
				cfg.Concurrency = append(cfg.Concurrency, n)
			}
			rep, err := bench.RunHarness(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			rep.Command = "coffer " + strings.Join(os.Args[1:], " ")
			raw, _ := json.MarshalIndent(rep, "", "  ")
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(append(raw, '\n'))
				return err
			}
			return os.WriteFile(out, append(raw, '\n'), 0o644)
		},
	}
	f := cmd.Flags()
	f.StringVar(&ops, "ops", "Encrypt,Decrypt,GenerateDataKey", "operations to load, comma-separated")
	f.StringVar(&conc, "concurrency", "32,256", "concurrencies, comma-separated")
	f.DurationVar(&duration, "duration", 10*time.Second, "length of each measured run")
	f.DurationVar(&warmup, "warmup", 2*time.Second, "unmeasured load before each configuration")
	f.IntVar(&runs, "runs", 3, "runs per configuration; the median is reported")
	f.IntVar(&serverCPU, "server-cpu", 0, "CPU for the servers (-1: no pinning)")
	f.IntVar(&client, "client-cpu", 1, "CPU for the load generator (-1: no pinning)")
	f.StringVar(&out, "out", "", "write the JSON report here (default stdout)")
	f.DurationVar(&rssEvery, "rss-every", 0, "sample Coffer's RSS at this interval during measured runs (0: off)")
	f.BoolVar(&useTLS, "tls", false, "serve Coffer (--tls-self-signed) and the bare server over TLS and load them over TLS")
	f.StringArrayVar(&serveArgs, "serve-arg", nil, "extra flag for coffer serve (repeatable)")
	f.StringArrayVar(&compareArgs, "compare-serve-arg", nil, "also measure a second Coffer started with this extra flag, e.g. --audit=false (repeatable)")
	return cmd
}

func newBenchBareCmd() *cobra.Command {
	var (
		listen string
		useTLS bool
	)
	cmd := &cobra.Command{
		Use:    "bare",
		Short:  "Serve the bare fasthttp baseline (used by bench run)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			if useTLS {
				fmt.Fprintf(cmd.OutOrStdout(), "listening on https://%s\n", ln.Addr())
				return bench.ServeBareTLS(ln)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "listening on http://%s\n", ln.Addr())
			return bench.ServeBare(ln)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "address")
	cmd.Flags().BoolVar(&useTLS, "tls", false, "serve TLS with a self-signed certificate made in memory")
	return cmd
}

func newBenchPeersCmd() *cobra.Command {
	var (
		ops, conc, modes  string
		duration, warmup  time.Duration
		serverCPU, client int
		out, localKMS     string
		serveArgs         []string
	)
	cmd := &cobra.Command{
		Use:   "peers",
		Short: "Measure Coffer in each audit mode beside the bare fasthttp server and local-kms, in one run",
		Long: `Starts a Coffer for each --audit-modes value ("on": the defaults, "off": --audit=false,
anything else: --audit-sync=<value>, skipped when this coffer lacks the flag), the bare
fasthttp server and local-kms (--local-kms, a binary installed outside the repository;
make bench-peers installs the pinned version), all on loopback and pinned to --server-cpu;
creates a key on each through its API; then for each operation and concurrency loads every
target in turn for --duration with the same signed requests and reports req/s, p50/p99
and server CPU per request (from /proc), with Coffer's CPU per request ÷ the bare
server's and Coffer's req/s ÷ local-kms's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			if localKMS != "" {
				if _, err := os.Stat(localKMS); err != nil {
					return fmt.Errorf("%w: %v", bench.ErrNoLocalKMS, err)
				}
			}
			cfg := bench.PeersConfig{Binary: self, LocalKMS: localKMS, ServeArgs: serveArgs, Duration: duration, Warmup: warmup,
				ServerCPU: serverCPU, ClientCPU: client, Log: cmd.ErrOrStderr(),
				Ops: strings.Split(ops, ","), AuditModes: strings.Split(modes, ",")}
			if cfg.Concurrency, err = parseConcurrency(conc); err != nil {
				return err
			}
			rep, err := bench.RunPeers(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			rep.Command = "coffer " + strings.Join(os.Args[1:], " ")
			return writeJSON(cmd, out, rep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&ops, "ops", "GenerateDataKey,Encrypt,Decrypt", "operations to load, comma-separated")
	f.StringVar(&conc, "concurrency", "32,256", "concurrencies, comma-separated")
	f.StringVar(&modes, "audit-modes", "on,off,interval:10ms", `Coffer audit modes: on, off, or an --audit-sync value`)
	f.DurationVar(&duration, "duration", 3*time.Second, "length of each measured run")
	f.DurationVar(&warmup, "warmup", time.Second, "unmeasured load before each measured run")
	f.IntVar(&serverCPU, "server-cpu", 0, "CPU for the servers (-1: no pinning)")
	f.IntVar(&client, "client-cpu", 1, "CPU for the load generator (-1: no pinning)")
	f.StringVar(&out, "out", "", "write the JSON report here (default stdout)")
	f.StringVar(&localKMS, "local-kms", "", "the local-kms binary (empty: leave the peer out)")
	f.StringArrayVar(&serveArgs, "serve-arg", nil, "extra flag for every coffer serve (repeatable)")
	return cmd
}

func parseConcurrency(list string) ([]int, error) {
	var out []int
	for _, c := range strings.Split(list, ",") {
		n, err := strconv.Atoi(c)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--concurrency: %q", c)
		}
		out = append(out, n)
	}
	return out, nil
}

// writeJSON writes v indented to path, or to stdout when path is "" or "-".
func writeJSON(cmd *cobra.Command, path string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if path == "" || path == "-" {
		_, err = cmd.OutOrStdout().Write(append(raw, '\n'))
		return err
	}
	return os.WriteFile(path, append(raw, '\n'), 0o644)
}
