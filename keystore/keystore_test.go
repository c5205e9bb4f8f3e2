package keystore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/keystore/storetest"
)

func TestBoltConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keystore.Store {
		s, err := keystore.OpenBolt(filepath.Join(t.TempDir(), "coffer.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keystore.Store {
		s := keystore.NewMemory()
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestBoltSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "coffer.db")
	s, err := keystore.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Update(ctx, func(tx keystore.Tx) error { return tx.Put("keys", "k1", []byte("meta")) })
	s.Close()
	s, err = keystore.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.View(ctx, func(tx keystore.Tx) error {
		if v, _ := tx.Get("keys", "k1"); string(v) != "meta" {
			t.Fatalf("after reopen: %q", v)
		}
		return nil
	})
}
