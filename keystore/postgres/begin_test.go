package postgres_test

import (
	"context"
	"testing"

	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/keystore/postgres"
)

// A View's transaction begins with its first Get, pipelined with the
// SELECT: the snapshot is that Get's, so a change committed between it
// and the next read is not seen by the next read.
func TestViewSnapshotFromFirstGet(t *testing.T) {
	ctx := context.Background()
	url := pg.Database(t)
	s, other := open(t, url), open(t, url)
	put := func(st *postgres.Store, v string) {
		t.Helper()
		if err := st.Update(ctx, func(tx keystore.Tx) error {
			if err := tx.Put("b", "x", []byte(v)); err != nil {
				return err
			}
			return tx.Put("b", "y", []byte(v))
		}); err != nil {
			t.Fatal(err)
		}
	}
	put(s, "old")
	for _, first := range []string{"get", "scan"} {
		put(s, "old")
		var x, y []byte
		if err := s.View(ctx, func(tx keystore.Tx) error {
			var err error
			if first == "get" {
				x, err = tx.Get("b", "x")
			} else {
				err = tx.Scan("b", "x", "", func(_ string, v []byte) bool { x = v; return false })
			}
			if err != nil {
				return err
			}
			put(other, "new") // committed by another node meanwhile
			y, err = tx.Get("b", "y")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if string(x) != "old" || string(y) != "old" {
			t.Fatalf("first read by %s: x=%q y=%q, want both from the snapshot of the first read", first, x, y)
		}
	}
	// An Update that reads first, then writes, commits both; one that
	// makes no statement commits nothing and fails nothing.
	if err := s.Update(ctx, func(tx keystore.Tx) error {
		v, err := tx.Get("b", "x")
		if err != nil {
			return err
		}
		return tx.Put("b", "z", append(v, '!'))
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(keystore.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.View(ctx, func(tx keystore.Tx) error {
		v, err := tx.Get("b", "z")
		if err == nil && string(v) != "new!" {
			t.Errorf("z = %q", v)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
