package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the schema's versions, in order; migrations[i] takes the
// schema from version i to i+1. Never edit one that has shipped: append.
var migrations = []string{
	// 1: the ordered buckets. bytea keys compare as bytes (memcmp), so
	// index order is bbolt's whatever the database's collation.
	`CREATE TABLE coffer_kv (
		bucket bytea NOT NULL,
		key    bytea NOT NULL,
		value  bytea NOT NULL,
		PRIMARY KEY (bucket, key)
	)`,
}

// SchemaVersion is the version Open migrates to.
var SchemaVersion = len(migrations)

// migrationLock is the advisory lock key that serialises migrations
// ("coffer" in ASCII).
const migrationLock int64 = 0x636f66666572

// migrate brings the schema to SchemaVersion in one transaction, under a
// transaction-scoped advisory lock: of nodes starting at once, one
// migrates and the others wait for it, then find nothing to do. A schema
// newer than this build knows is refused.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return dbErr(ctx, err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS coffer_schema_migrations (
			version integer PRIMARY KEY,
			applied timestamptz NOT NULL DEFAULT now())`); err != nil {
			return dbErr(ctx, err)
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM coffer_schema_migrations`).Scan(&have); err != nil {
			return dbErr(ctx, err)
		}
		if have > SchemaVersion {
			return fmt.Errorf("keystore/postgres: the database's schema is version %d, newer than this build's %d: upgrade Coffer", have, SchemaVersion)
		}
		for v := have; v < SchemaVersion; v++ {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("keystore/postgres: migration to version %d: %w", v+1, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO coffer_schema_migrations (version) VALUES ($1)`, v+1); err != nil {
				return dbErr(ctx, err)
			}
		}
		return nil
	})
}
