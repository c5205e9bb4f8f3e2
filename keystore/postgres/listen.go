package postgres

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Listener follows the changes other nodes commit (Channel) on a
// connection of its own and hands each to OnChange. A node that may have
// missed changes — the connection lost, a change it cannot name — calls
// OnReset, which must drop everything cached: at once when the connection
// is lost, every ResetInterval while it is down (what was cached meanwhile
// may be stale too), and once more after LISTEN is back, before Healthy
// reports it ready again.
type Listener struct {
	// URL is the database's; the listener opens its own connection.
	URL string
	// OnChange is called with the bucket and store key of each change.
	OnChange func(bucket, key string)
	// OnReset drops every cache.
	OnReset func()
	// Logger, if set, reports losses and reconnections.
	Logger *slog.Logger
	// ResetInterval is how often OnReset runs while the connection is down
	// and how often an idle connection is checked; default 500ms, so a
	// node is never stale for more than a second.
	ResetInterval time.Duration

	up    atomic.Bool
	ready chan struct{} // closed the first time LISTEN is established
	once  atomic.Bool
}

// ErrListenerDown is Healthy's answer while the change feed is down.
var ErrListenerDown = errors.New("keystore/postgres: change feed (LISTEN) down: caches cannot be trusted")

// Healthy reports whether the change feed is up, for a readiness check.
func (l *Listener) Healthy() error {
	if !l.up.Load() {
		return ErrListenerDown
	}
	return nil
}

// Run follows changes until ctx ends, reconnecting after every loss.
func (l *Listener) Run(ctx context.Context) {
	interval := l.ResetInterval
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	for ctx.Err() == nil {
		err := l.session(ctx, interval)
		if ctx.Err() != nil {
			break
		}
		if l.up.Swap(false) && l.Logger != nil {
			l.Logger.Error("change feed lost: caches dropped until it is back", "err", err)
		}
		l.OnReset()
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	l.up.Store(false)
}

// session connects, listens and delivers until the connection fails.
func (l *Listener) session(ctx context.Context, interval time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := pgx.Connect(cctx, l.URL)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return err
	}
	// Changes committed before LISTEN took effect were not heard: drop
	// what may predate them, then serve.
	l.OnReset()
	if !l.up.Swap(true) && l.Logger != nil && l.once.Swap(true) {
		l.Logger.Info("change feed back: caches were dropped")
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, interval)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil {
			if n != nil {
				l.deliver(n.Payload)
			}
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !pgconn.Timeout(err) {
			return err
		}
		// Idle: check that the connection is alive, so that a silent loss
		// is found within about two intervals.
		pctx, cancel := context.WithTimeout(ctx, interval)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return err
		}
	}
}

func (l *Listener) deliver(payload string) {
	bucket, key, ok := strings.Cut(payload, ":")
	if !ok {
		l.OnReset()
		return
	}
	l.OnChange(bucket, key)
}
