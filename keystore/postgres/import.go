package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ErrNotEmpty reports an Import into a database that holds other data.
var ErrNotEmpty = errors.New("keystore/postgres: the database already holds other data")

// Entries yields every entry of a source store, bucket by bucket.
type Entries func(yield func(bucket, key string, value []byte) error) error

// Import copies every entry of src into the store in one transaction,
// byte for byte (kms's records stay authenticated: their tags bind bucket
// and key, not the backend). It is safe to rerun: a database that already
// holds exactly src's entries is left as it is. A database holding
// anything else is refused with ErrNotEmpty unless replace is set; then
// its content is replaced by src's. It returns how many entries src had
// and how many were written.
func (s *Store) Import(ctx context.Context, src Entries, replace bool) (total, written int, err error) {
	if _, ok := ctx.Deadline(); !ok {
		// One transaction for the whole copy: the per-call timeout does
		// not apply, the caller's context does.
		ctx = context.WithoutCancel(ctx)
	}
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(ptx pgx.Tx) error {
		total, written = 0, 0
		t := &tx{ctx: ctx, conn: ptx, begun: true, write: true, s: s}
		seen := map[string]map[string]bool{}
		if err := src(func(bucket, key string, value []byte) error {
			total++
			if seen[bucket] == nil {
				seen[bucket] = map[string]bool{}
			}
			seen[bucket][key] = true
			cur, err := t.Get(bucket, key)
			if err != nil {
				return err
			}
			if cur != nil && bytes.Equal(cur, value) {
				return nil
			}
			if cur != nil && !replace {
				return fmt.Errorf("%w: %s/%q differs from the source", ErrNotEmpty, bucket, key)
			}
			written++
			return t.Put(bucket, key, value)
		}); err != nil {
			return err
		}
		// Entries the source does not have.
		rows, err := ptx.Query(ctx, `SELECT bucket, key FROM coffer_kv`)
		if err != nil {
			return dbErr(ctx, err)
		}
		var extra [][2][]byte
		for rows.Next() {
			var b, k []byte
			if err := rows.Scan(&b, &k); err != nil {
				rows.Close()
				return dbErr(ctx, err)
			}
			if !seen[string(b)][string(k)] {
				extra = append(extra, [2][]byte{b, k})
			}
		}
		if err := rows.Err(); err != nil {
			return dbErr(ctx, err)
		}
		if len(extra) > 0 && !replace {
			return fmt.Errorf("%w: %d entries the source does not have (%s/%q, ...)", ErrNotEmpty, len(extra), extra[0][0], extra[0][1])
		}
		for _, e := range extra {
			written++
			if err := t.Delete(string(e[0]), string(e[1])); err != nil {
				return err
			}
		}
		if t.dbErr != nil {
			return t.dbErr
		}
		if len(t.changes) > 0 {
			if _, err := ptx.Exec(ctx, `SELECT pg_notify($1, '*')`, Channel); err != nil {
				return dbErr(ctx, err)
			}
		}
		return nil
	})
	return total, written, err
}
