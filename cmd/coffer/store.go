package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-kms/coffer/keystore/postgres"
	"github.com/coffer-kms/coffer/kms"
)

// storeOptions choose where `coffer serve` keeps its state.
type storeOptions struct {
	kind     string // bolt or postgres
	url      string
	maxConns int32
	timeout  time.Duration
	takeover time.Duration // --outbox-takeover; 0: 2 × timeout + 10 s
}

const (
	storeBolt     = "bolt"
	storePostgres = "postgres"
)

func (o *storeOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.kind, "store", storeBolt, "where keys live: bolt (<data-dir>/coffer.db, one node) or postgres (--postgres-url, any number of nodes)")
	f.StringVar(&o.url, "postgres-url", "", "PostgreSQL connection URL for --store postgres, e.g. postgres://coffer@db:5432/coffer (COFFER_POSTGRES_URL)")
	f.Int32Var(&o.maxConns, "postgres-max-conns", 10, "size of the PostgreSQL connection pool")
	f.DurationVar(&o.timeout, "postgres-timeout", 5*time.Second, "bound on connecting to PostgreSQL and on each store transaction: a lost database fails calls after this")
	f.DurationVar(&o.takeover, "outbox-takeover", 0, "with --store postgres: how long a node must have been silent, and its audit outbox entries old, before another node appends them to its own trail (default 2 × --postgres-timeout + 10s)")
}

// outboxTakeover is kms.Config.OutboxTakeover: longer than any live call
// keeps its outbox entry (a transaction retried up to the timeout, then
// the trail's append, then a flush within a second) and than a node's
// silence between two of its once-a-second flushes.
func (o *storeOptions) outboxTakeover() time.Duration {
	if o.takeover > 0 {
		return o.takeover
	}
	return 2*o.timeout + 10*time.Second
}

// nodeIDFile holds, in the data dir, the node ID of a node on PostgreSQL
// (kms.Config.NodeID): made at its first start, the same at every start
// after, so that a node restarted recovers its own audit outbox entries.
const nodeIDFile = "node-id"

// nodeAliveWait is how long a node starting on PostgreSQL watches for
// another node's heartbeat under its own ID (kms.Service.CheckNodeID), when
// the last one is fresh: the heartbeat comes every second (RunServiceEvents).
const nodeAliveWait = 2500 * time.Millisecond

// nodeID reads the data dir's node ID, making one (16 random hex digits)
// the first time.
func nodeID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, nodeIDFile)
	raw, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(raw))
		if id == "" {
			return "", fmt.Errorf("%s is empty", path)
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", err
	}
	return id, nil
}

func (o *storeOptions) check() error {
	switch o.kind {
	case storeBolt:
		return nil
	case storePostgres:
		if o.url == "" {
			return fmt.Errorf("--store postgres needs --postgres-url (or COFFER_POSTGRES_URL)")
		}
		if o.takeover != 0 && o.takeover < 3*time.Second {
			// A live node shows it every second: a shorter bound takes
			// over its calls while it runs them.
			return fmt.Errorf("--outbox-takeover %v: at least 3s", o.takeover)
		}
		return nil
	}
	return fmt.Errorf("--store: %q is neither %s nor %s", o.kind, storeBolt, storePostgres)
}

func (o *storeOptions) openPostgres(ctx context.Context) (*postgres.Store, error) {
	s, err := postgres.Open(ctx, postgres.Config{URL: o.url, MaxConns: o.maxConns, Timeout: o.timeout})
	if err != nil {
		return nil, fmt.Errorf("--postgres-url: %w", err)
	}
	return s, nil
}

// followChanges starts the change feed of a node on PostgreSQL: changes
// other nodes commit invalidate svc's caches, and a lost feed drops them
// all. It returns the feed's readiness check.
func (o *storeOptions) followChanges(ctx context.Context, svc *kms.Service, log *slog.Logger) func() error {
	l := &postgres.Listener{URL: o.url, OnChange: svc.ApplyChange, OnReset: svc.DropCaches, Logger: log}
	go l.Run(ctx)
	return l.Healthy
}
