// Package postgres is a keystore.Store on PostgreSQL, for several Coffer
// nodes sharing one database. Everything lives in one table,
//
//	coffer_kv(bucket bytea, key bytea, value bytea, primary key (bucket, key))
//
// so that a scan is an index range in byte order, as bbolt's. Updates run
// at SERIALIZABLE and are retried on serialization failures, so a check
// then write in one Update (an alias name free, a rotation under its
// limit) holds across nodes as it does in one process. Views run at
// REPEATABLE READ READ ONLY: one consistent snapshot, never a conflict.
//
// Every Put or Delete in a bucket of Config.NotifyBuckets is announced in
// the same transaction with pg_notify on Channel, so that other nodes
// (Listener) drop what they cached once it commits, and never before.
//
// The schema is versioned (coffer_schema_migrations) and migrated by Open
// under a transaction-scoped advisory lock: nodes starting at once migrate
// once.
package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coffer-kms/coffer/keystore"
)

// Channel is the LISTEN/NOTIFY channel that carries changes. A payload is
// "<bucket>:<store key>", or "*" for a change that cannot be named (a key
// that is not UTF-8): drop everything.
const Channel = "coffer_changes"

// DefaultNotifyBuckets are the buckets whose changes kms caches: keys,
// aliases, grants, principals (with their policies) and access keys.
var DefaultNotifyBuckets = []string{"keys", "aliases", "grants", "principals", "access-keys"}

// Config configures Open; the zero value of each field is its default.
type Config struct {
	// URL is a libpq connection string or postgres:// URL.
	URL string
	// MaxConns bounds the connection pool; default 10.
	MaxConns int32
	// Timeout bounds connecting and each View or Update whose context has
	// no earlier deadline, so that a lost database fails calls quickly;
	// default 5s.
	Timeout time.Duration
	// NotifyBuckets are announced on Channel; nil: DefaultNotifyBuckets.
	NotifyBuckets []string
}

// Store is a keystore.Store on PostgreSQL.
type Store struct {
	pool    *pgxpool.Pool
	cfg     Config
	notify  map[string]bool
	closed  atomic.Bool
	retries atomic.Uint64

	locksMu sync.Mutex
	locks   map[*pgxpool.Conn]bool // held by TryLock (lock.go)
}

var _ keystore.Store = (*Store)(nil)

// ErrUnavailable wraps failures to reach the database; it wraps
// keystore.ErrUnavailable.
var ErrUnavailable = fmt.Errorf("keystore/postgres: database unavailable (%w)", keystore.ErrUnavailable)

// Open connects, migrates the schema to the newest version and returns the
// store.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 10
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.NotifyBuckets == nil {
		cfg.NotifyBuckets = DefaultNotifyBuckets
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("keystore/postgres: %w", err)
	}
	pc.MaxConns = cfg.MaxConns
	pc.ConnConfig.ConnectTimeout = cfg.Timeout
	pc.HealthCheckPeriod = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("keystore/postgres: %w", err)
	}
	s := &Store{pool: pool, cfg: cfg, notify: map[string]bool{}}
	for _, b := range cfg.NotifyBuckets {
		s.notify[b] = true
	}
	mctx, cancel := context.WithTimeout(ctx, 4*cfg.Timeout)
	defer cancel()
	if err := migrate(mctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// View implements keystore.Store.
func (s *Store) View(ctx context.Context, fn func(keystore.Tx) error) error {
	return s.run(ctx, beginView, false, fn)
}

// Update implements keystore.Store. fn runs in a SERIALIZABLE transaction
// and is called again, in a fresh transaction, when PostgreSQL aborts it
// for a serialization failure or deadlock (SQLSTATE 40001, 40P01): it may
// run more than once and must have no effect outside tx.
func (s *Store) Update(ctx context.Context, fn func(keystore.Tx) error) error {
	return s.run(ctx, beginUpdate, true, fn)
}

// The statements that begin a View's and an Update's transaction. A
// transaction is begun with its first statement, not before (tx.begin).
const (
	beginView   = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
	beginUpdate = "BEGIN ISOLATION LEVEL SERIALIZABLE"
)

func (s *Store) run(ctx context.Context, begin string, write bool, fn func(keystore.Tx) error) error {
	if s.closed.Load() {
		return keystore.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
	}
	backoff := time.Millisecond
	for {
		err := s.attempt(ctx, begin, write, fn)
		if !retryable(err) {
			return err
		}
		s.retries.Add(1)
		t := time.NewTimer(backoff/2 + rand.N(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("keystore/postgres: gave up retrying a conflicting transaction: %w", ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

// Retries is how many transactions were run again after a conflict.
func (s *Store) Retries() uint64 { return s.retries.Load() }

func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// 23505: two transactions inserting one key; under SERIALIZABLE
		// PostgreSQL reports most such races as 40001, a few as this.
		return pe.Code == "40001" || pe.Code == "40P01" || pe.Code == "23505"
	}
	return false
}

func (s *Store) attempt(ctx context.Context, begin string, write bool, fn func(keystore.Tx) error) (err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return dbErr(ctx, err)
	}
	// A connection released inside a transaction (a failure below that
	// left it so) is closed by the pool, never reused.
	defer conn.Release()
	t := &tx{ctx: ctx, conn: conn, beginSQL: begin, write: write, s: s}
	defer func() {
		if err != nil && t.begun {
			conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	ferr := fn(t)
	if t.dbErr != nil && (ferr == nil || retryable(t.dbErr)) {
		// The transaction is dead: whatever fn made of the failure, a
		// conflict is retried and nothing is committed.
		return t.dbErr
	}
	if ferr != nil {
		return ferr
	}
	if !t.begun {
		return nil // fn made no statement: nothing to commit
	}
	// The notifications and COMMIT in one round trip.
	b := &pgx.Batch{}
	if len(t.changes) > 0 {
		b.Queue(`SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, Channel, t.changes)
	}
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	var tag pgconn.CommandTag
	for range b.Len() {
		if tag, err = br.Exec(); err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return dbErr(ctx, err)
	}
	if tag.String() != "COMMIT" { // PostgreSQL answers ROLLBACK for a transaction that had failed
		return dbErr(ctx, fmt.Errorf("the transaction was rolled back at commit (%s)", tag))
	}
	return nil
}

// dbErr wraps a failure of the database; serialization failures keep
// their *pgconn.PgError reachable for retryable. A connection that could
// not be made or was lost, the store's timeout, and the server's own
// "shutting down / starting up" errors wrap ErrUnavailable.
func dbErr(ctx context.Context, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if unavailableCode(pe.Code) {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return fmt.Errorf("keystore/postgres: %w", err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// unavailableCode reports SQLSTATEs that say the server cannot serve now
// rather than that the statement failed: class 08 (connection exception),
// 57P01-57P03 (admin shutdown, crash shutdown, cannot connect now) and
// 53300 (too many connections).
func unavailableCode(code string) bool {
	return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03" || code == "53300"
}

// Ping checks that the database answers, within the store's timeout.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, min(s.cfg.Timeout, 2*time.Second))
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return dbErr(ctx, err)
	}
	return nil
}

// Healthy is Ping for a readiness check.
func (s *Store) Healthy() error { return s.Ping(context.Background()) }

// Close implements keystore.Store.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.releaseLocks()
	s.pool.Close()
	return nil
}

// querier is what a tx runs its statements on: a pooled connection, or
// (Import) a transaction already begun.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

type tx struct {
	ctx      context.Context
	conn     querier
	beginSQL string // beginView or beginUpdate
	begun    bool   // the transaction is open on conn
	write    bool
	s        *Store
	changes  []string
	dbErr    error // the first database failure; the transaction is dead after it
}

// begin opens the transaction before a statement that cannot carry it
// (Get pipelines the two instead: the read of a record that misses the
// caches is then two round trips, BEGIN with SELECT and COMMIT, not three).
func (t *tx) begin() error {
	if t.begun {
		return nil
	}
	if _, err := t.conn.Exec(t.ctx, t.beginSQL); err != nil {
		return t.fail(err)
	}
	t.begun = true
	return nil
}

func (t *tx) fail(err error) error {
	err = dbErr(t.ctx, err)
	if t.dbErr == nil {
		t.dbErr = err
	}
	return err
}

func (t *tx) Get(bucket, key string) ([]byte, error) {
	if t.dbErr != nil {
		return nil, t.dbErr
	}
	const get = `SELECT value FROM coffer_kv WHERE bucket = $1 AND key = $2`
	var v []byte
	var err error
	if t.begun {
		err = t.conn.QueryRow(t.ctx, get, []byte(bucket), []byte(key)).Scan(&v)
	} else {
		// BEGIN and the SELECT in one round trip: PostgreSQL runs the
		// pipeline's BEGIN first, so the SELECT reads in the transaction.
		b := &pgx.Batch{}
		b.Queue(t.beginSQL)
		b.Queue(get, []byte(bucket), []byte(key))
		br := t.conn.SendBatch(t.ctx, b)
		if _, err = br.Exec(); err == nil {
			t.begun = true
			err = br.QueryRow().Scan(&v)
		}
		if cerr := br.Close(); cerr != nil && (err == nil || errors.Is(err, pgx.ErrNoRows)) {
			err = cerr
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, t.fail(err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

func checkSizes(bucket, key string, value []byte) error {
	if bucket == "" || key == "" {
		return errors.New("keystore: empty bucket or key")
	}
	if len(key) > keystore.MaxKeySize || len(value) > keystore.MaxValueSize {
		return keystore.ErrTooLarge
	}
	return nil
}

func (t *tx) Put(bucket, key string, value []byte) error {
	if !t.write {
		return keystore.ErrReadOnly
	}
	if err := checkSizes(bucket, key, value); err != nil {
		return err
	}
	if t.dbErr != nil {
		return t.dbErr
	}
	if value == nil {
		value = []byte{}
	}
	if err := t.begin(); err != nil {
		return err
	}
	if _, err := t.conn.Exec(t.ctx, `INSERT INTO coffer_kv (bucket, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (bucket, key) DO UPDATE SET value = EXCLUDED.value`, []byte(bucket), []byte(key), value); err != nil {
		return t.fail(err)
	}
	t.changed(bucket, key)
	return nil
}

func (t *tx) Delete(bucket, key string) error {
	if !t.write {
		return keystore.ErrReadOnly
	}
	if t.dbErr != nil {
		return t.dbErr
	}
	if err := t.begin(); err != nil {
		return err
	}
	tag, err := t.conn.Exec(t.ctx, `DELETE FROM coffer_kv WHERE bucket = $1 AND key = $2`, []byte(bucket), []byte(key))
	if err != nil {
		return t.fail(err)
	}
	if tag.RowsAffected() > 0 {
		t.changed(bucket, key)
	}
	return nil
}

// changed queues the notification of a change, sent just before commit.
func (t *tx) changed(bucket, key string) {
	if !t.s.notify[bucket] {
		return
	}
	p := bucket + ":" + key
	if !utf8.ValidString(p) || strings.ContainsRune(p, 0) {
		p = "*"
	}
	t.changes = append(t.changes, p)
}

// scanPage is how many rows a scan reads at a time; the callbacks run
// between pages, so they may use the transaction.
const scanPage = 256

func (t *tx) Scan(bucket, prefix, after string, fn func(string, []byte) bool) error {
	if t.dbErr != nil {
		return t.dbErr
	}
	from := []byte(prefix)
	if after >= prefix {
		// Scan strictly after: after+"\x00" is the least key above after.
		from = append([]byte(after), 0)
	}
	to := prefixEnd([]byte(prefix))
	if err := t.begin(); err != nil {
		return err
	}
	for {
		var rows pgx.Rows
		var err error
		if to == nil {
			rows, err = t.conn.Query(t.ctx, `SELECT key, value FROM coffer_kv WHERE bucket = $1 AND key >= $2 ORDER BY key LIMIT $3`,
				[]byte(bucket), from, scanPage)
		} else {
			rows, err = t.conn.Query(t.ctx, `SELECT key, value FROM coffer_kv WHERE bucket = $1 AND key >= $2 AND key < $3 ORDER BY key LIMIT $4`,
				[]byte(bucket), from, to, scanPage)
		}
		if err != nil {
			return t.fail(err)
		}
		type kv struct{ k, v []byte }
		var page []kv
		for rows.Next() {
			var k, v []byte
			if err := rows.Scan(&k, &v); err != nil {
				rows.Close()
				return t.fail(err)
			}
			if v == nil {
				v = []byte{}
			}
			page = append(page, kv{k, v})
		}
		if err := rows.Err(); err != nil {
			return t.fail(err)
		}
		for _, e := range page {
			if !bytes.HasPrefix(e.k, []byte(prefix)) {
				return nil
			}
			if !fn(string(e.k), e.v) {
				return nil
			}
		}
		if len(page) < scanPage {
			return nil
		}
		from = append(page[len(page)-1].k, 0)
	}
}

// prefixEnd is the least key above every key with prefix p, or nil when
// there is none (p empty or all 0xff).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
