package main

import (
	"context"
	"fmt"
	"log/slog"
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
}

func (o *storeOptions) check() error {
	switch o.kind {
	case storeBolt:
		return nil
	case storePostgres:
		if o.url == "" {
			return fmt.Errorf("--store postgres needs --postgres-url (or COFFER_POSTGRES_URL)")
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
