package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"

	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/keystore/postgres"
)

// newStoreCmd is `coffer admin store`: work on a store itself, offline.
func newStoreCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "store", Short: "Work on the store itself (offline: no server involved)"}
	var from, to string
	var replace bool
	migrate := &cobra.Command{
		Use:   "migrate --from DATA_DIR --to postgres://…",
		Short: "Copy a bbolt data dir's store into PostgreSQL, in one transaction",
		Long: `Copy every record of DATA_DIR/coffer.db into the PostgreSQL database --to
names, in one transaction, byte for byte: records stay authenticated, so
nodes started on the database with the same root of trust (DATA_DIR's
root.key and passphrase, or the same PKCS#11 token) serve the same keys.
Stop the server on DATA_DIR first. Safe to rerun: a database that already
holds exactly these records is left as it is; one holding other records is
refused unless --replace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return errors.New("--from and --to are required")
			}
			return migrateStore(cmd.Context(), filepath.Join(from, "coffer.db"), to, replace, cmd.OutOrStdout())
		},
	}
	f := migrate.Flags()
	f.StringVar(&from, "from", "", "data dir of a stopped coffer serve (its coffer.db)")
	f.StringVar(&to, "to", os.Getenv("COFFER_POSTGRES_URL"), "PostgreSQL URL (default $COFFER_POSTGRES_URL)")
	f.BoolVar(&replace, "replace", false, "replace whatever the database holds by the data dir's records")
	cmd.AddCommand(migrate)
	return cmd
}

func migrateStore(ctx context.Context, path, url string, replace bool, out interface{ Write([]byte) (int, error) }) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if _, err := os.Stat(path); err != nil {
		return err
	}
	// The checked open first: a damaged file, or one a server holds, is
	// refused before anything is copied.
	b, err := keystore.OpenBolt(path)
	if err != nil {
		return err
	}
	b.Close()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer db.Close()
	dst, err := postgres.Open(ctx, postgres.Config{URL: url})
	if err != nil {
		return err
	}
	defer dst.Close()
	entries := func(yield func(bucket, key string, value []byte) error) error {
		return db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
				return bk.ForEach(func(k, v []byte) error {
					if v == nil {
						return fmt.Errorf("%s: nested bucket %q/%q: not a Coffer store", path, name, k)
					}
					return yield(string(name), string(k), v)
				})
			})
		})
	}
	total, written, err := dst.Import(ctx, entries, replace)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "copied %s into PostgreSQL: %d records, %d written (0: it was already there)\n", path, total, written)
	return nil
}
