package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-kms/coffer/bench"
	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/keystore/postgres"
	"github.com/coffer-kms/coffer/kms"
)

func newBenchScaleCmd() *cobra.Command {
	var (
		keys, createConc, sweepKeys int
		aliases, bulk               bool
		duration                    time.Duration
		serverCPU, client           int
		out, dataDir, pgURL         string
		serveArgs                   []string
	)
	cmd := &cobra.Command{
		Use:   "scale",
		Short: "Fill a data dir with many keys through a real server and measure what grows",
		Long: `Starts ` + "`coffer serve`" + ` (bbolt, rate limits off) on a fresh data dir pinned to --server-cpu,
creates --keys keys through the API (each with an alias unless --aliases=false) from
--create-concurrency connections, then measures: the creation rate; the store's size and the
server's RSS per key; a restart until the first answer; ListKeys and ListAliases paged to
the end; DescribeKey and Encrypt at concurrency 32 on one key (hot) and uniformly over
all keys (cold), with server CPU per request. With the server stopped, it opens the data
dir in process and times the maintenance loop: a run with nothing due, then automatic
rotation of --sweep-keys keys made due by a clock moved a year on, then their deletion
(ScheduleKeyDeletion, the clock moved past the window).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			if dataDir == "" {
				tmp, err := os.MkdirTemp("", "coffer-scale-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				dataDir = filepath.Join(tmp, "data")
			} else if _, err := os.Stat(dataDir); err == nil {
				return fmt.Errorf("--data-dir %s exists: the scale run needs a fresh one", dataDir)
			}
			cfg := bench.ScaleConfig{Binary: self, DataDir: dataDir, PostgresURL: pgURL, Keys: keys, Aliases: aliases, CreateConcurrency: createConc,
				Duration: duration, ServerCPU: serverCPU, ClientCPU: client, Log: cmd.ErrOrStderr(),
				// AWS's CreateKey quota (50/s) would make it a measurement of the throttle.
				ServeArgs: append([]string{"--throttle=false"}, serveArgs...)}
			if bulk {
				cfg.Aliases = false
				cfg.Bulk = func(ctx context.Context) ([]string, error) {
					return scaleBulk(ctx, dataDir, pgURL, keys, cmd.ErrOrStderr())
				}
			}
			rep, err := bench.RunScale(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			rep.Command = "coffer " + strings.Join(os.Args[1:], " ")
			if sweepKeys != 0 {
				if rep.Sweeps, err = scaleSweeps(cmd.Context(), dataDir, pgURL, sweepKeys, cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			return writeJSON(cmd, out, rep)
		},
	}
	f := cmd.Flags()
	f.IntVar(&keys, "keys", 10000, "number of keys to create (1000000 for the full run)")
	f.BoolVar(&aliases, "aliases", true, "give every key an alias")
	f.BoolVar(&bulk, "bulk", false, "make the keys in process, 1000 to a transaction, with the server stopped (no aliases; the rate is not the API's); the next start, which appends their CreateKey records from the outbox to the trail, is timed by itself (drainStartSeconds)")
	f.IntVar(&createConc, "create-concurrency", 64, "connections creating keys")
	f.IntVar(&sweepKeys, "sweep-keys", -1, "keys the rotation and deletion sweeps act on (-1: all; 0: no sweeps)")
	f.DurationVar(&duration, "duration", 3*time.Second, "length of each latency measurement")
	f.IntVar(&serverCPU, "server-cpu", 0, "CPU for the server (-1: no pinning)")
	f.IntVar(&client, "client-cpu", 1, "CPU for the load generator (-1: no pinning)")
	f.StringVar(&out, "out", "", "write the JSON report here (default stdout)")
	f.StringVar(&dataDir, "data-dir", "", "data dir to fill (must not exist; default a temporary one, removed at exit)")
	f.StringArrayVar(&serveArgs, "serve-arg", nil, "extra flag for coffer serve (repeatable)")
	f.StringVar(&pgURL, "postgres-url", "", "serve from this empty PostgreSQL database instead of bbolt")
	return cmd
}

// scaleSweeps opens the data dir a scale run left (the server stopped) in
// process, with a clock it moves, and times the maintenance loop over up
// to n of its keys (n < 0: all).
// scaleBulk creates n keys in the data dir in process, as CreateKey
// would make them (kms.Service.BulkCreateKeys), and returns their IDs.
//
// Each key's CreateKey record goes into the store's audit outbox with it,
// for the next start to append to its trail: on PostgreSQL as the data
// dir's node's own (its node-id, made by the server's first start), which
// that node's start pages over, rather than nobody's, which a start takes
// over in one transaction.
func scaleBulk(ctx context.Context, dataDir, pgURL string, n int, log io.Writer) ([]string, error) {
	open := openScaleService
	if pgURL != "" {
		node, err := nodeID(dataDir)
		if err != nil {
			return nil, err
		}
		open = func(ctx context.Context, dataDir, pgURL string, now func() time.Time) (*kms.Service, func(), error) {
			return openScaleNode(ctx, dataDir, pgURL, now, node)
		}
	}
	svc, closeAll, err := open(ctx, dataDir, pgURL, time.Now)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	t0 := time.Now()
	err = svc.BulkCreateKeys(ctx, scaleAccount, "scale", n, 1000, func(done int) {
		if done%50000 == 0 || done == n {
			fmt.Fprintf(log, "scale: bulk %d/%d keys, %.0f/s\n", done, n, float64(done)/time.Since(t0).Seconds())
		}
	})
	if err != nil {
		return nil, err
	}
	return scaleKeyIDs(ctx, svc, -1)
}

const scaleAccount = "111122223333"

// openScaleService opens the data dir's root and store in process.
func openScaleService(ctx context.Context, dataDir, pgURL string, now func() time.Time) (*kms.Service, func(), error) {
	return openScaleNode(ctx, dataDir, pgURL, now, "")
}

// openScaleNode is openScaleService as node (kms.Config.NodeID; "" for
// none).
func openScaleNode(ctx context.Context, dataDir, pgURL string, now func() time.Time, node string) (*kms.Service, func(), error) {
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{Path: filepath.Join(dataDir, "root.key"), Passphrase: passphraseFromEnv()})
	if err != nil {
		return nil, nil, err
	}
	var store keystore.Store
	if pgURL != "" {
		store, err = postgres.Open(ctx, postgres.Config{URL: pgURL})
	} else {
		store, err = keystore.OpenBolt(filepath.Join(dataDir, "coffer.db"))
	}
	if err != nil {
		root.Close()
		return nil, nil, err
	}
	svc, err := kms.New(kms.Config{Region: "us-east-1", Account: scaleAccount, Store: store, Root: root, Now: now, NodeID: node})
	if err != nil {
		store.Close()
		root.Close()
		return nil, nil, err
	}
	return svc, func() { svc.Close(); store.Close(); root.Close() }, nil
}

// scaleKeyIDs lists up to n key IDs (-1: all) of the scale account.
func scaleKeyIDs(ctx context.Context, svc *kms.Service, n int) ([]string, error) {
	c := &kms.Caller{ARN: "arn:aws:iam::" + scaleAccount + ":root", Account: scaleAccount}
	var ids []string
	for marker := ""; n < 0 || len(ids) < n; {
		out, err := svc.ListKeys(ctx, c, &kms.ListInput{Limit: new(1000), Marker: marker})
		if err != nil {
			return nil, err
		}
		for _, k := range out.Keys {
			ids = append(ids, k.KeyId)
		}
		if !out.Truncated {
			break
		}
		marker = out.NextMarker
	}
	if n >= 0 && len(ids) > n {
		ids = ids[:n]
	}
	return ids, nil
}

func scaleSweeps(ctx context.Context, dataDir, pgURL string, n int, log io.Writer) (*bench.SweepReport, error) {
	var (
		mu    sync.Mutex
		clock = time.Now()
	)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	setClock := func(t time.Time) { mu.Lock(); clock = t; mu.Unlock() }
	svc, closeAll, err := openScaleService(ctx, dataDir, pgURL, now)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	c := &kms.Caller{ARN: "arn:aws:iam::" + scaleAccount + ":root", Account: scaleAccount}
	ids, err := scaleKeyIDs(ctx, svc, n)
	if err != nil {
		return nil, err
	}
	rep := &bench.SweepReport{}
	timed := func(what string, dst *float64, fn func() error) error {
		t0 := time.Now()
		err := fn()
		*dst = time.Since(t0).Seconds()
		fmt.Fprintf(log, "scale: %s: %.2fs\n", what, *dst)
		return err
	}
	run := func(rotated, deleted *int) func() error {
		return func() error {
			r, d, err := svc.RunMaintenance(ctx)
			if rotated != nil {
				*rotated = r
			}
			if deleted != nil {
				*deleted = d
			}
			return err
		}
	}
	if err := timed("maintenance, nothing due", &rep.IdleSeconds, run(nil, nil)); err != nil {
		return nil, err
	}
	err = timed(fmt.Sprintf("EnableKeyRotation on %d keys", len(ids)), &rep.EnableSeconds, func() error {
		for _, id := range ids {
			if _, err := svc.EnableKeyRotation(ctx, c, &kms.EnableKeyRotationInput{KeyId: id}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	setClock(time.Now().AddDate(1, 0, 1))
	if err := timed("maintenance, rotations due", &rep.RotateSeconds, run(&rep.Rotated, nil)); err != nil {
		return nil, err
	}
	err = timed(fmt.Sprintf("ScheduleKeyDeletion on %d keys", len(ids)), &rep.ScheduleSeconds, func() error {
		for _, id := range ids {
			if _, err := svc.ScheduleKeyDeletion(ctx, c, &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: new(7)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	setClock(now().AddDate(0, 0, 8))
	if err := timed("maintenance, deletions due", &rep.DeleteSeconds, run(nil, &rep.Deleted)); err != nil {
		return nil, err
	}
	if rep.Rotated != len(ids) || rep.Deleted != len(ids) {
		return nil, fmt.Errorf("bench: the sweeps rotated %d and deleted %d of %d keys", rep.Rotated, rep.Deleted, len(ids))
	}
	return rep, nil
}
