package keystore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// churn puts n values of a page or so each into bucket "churn" and deletes
// them again, leaving about n free pages in the file.
func churn(t testing.TB, s Store, n int) {
	ctx := context.Background()
	val := make([]byte, 3000)
	for _, del := range []bool{false, true} {
		for i := 0; i < n; i += 1000 {
			err := s.Update(ctx, func(tx Tx) error {
				for j := i; j < min(i+1000, n); j++ {
					k := fmt.Sprintf("%09d", j)
					if del {
						if err := tx.Delete("churn", k); err != nil {
							return err
						}
					} else if err := tx.Put("churn", k, val); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A commit writes what it changed, not the list of free pages: a store
// that once held much more than it holds now does not pay for its history
// on every write. The list, kept only in memory, is rebuilt at open, and
// the free pages are used again rather than leaked.
func TestBoltCommitIgnoresFreePages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coffer.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	churn(t, s, n)
	// The file as a crash would leave it: every commit durable, the list
	// not written since the open.
	crashed := filepath.Join(t.TempDir(), "crashed.db")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(crashed, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, synced := cutShort(crashed); synced {
		t.Fatal("the list was written while the store was open")
	}
	s.Close()
	if _, synced := cutShort(path); !synced {
		t.Fatal("Close did not write the list")
	}
	c, err := OpenBolt(crashed) // the list rebuilt by walking the tree
	if err != nil {
		t.Fatal(err)
	}
	if free := c.db.Stats().FreePageN; free < n {
		t.Fatalf("%d free pages after a crash, want at least %d", free, n)
	}
	c.Close()

	s, err = OpenBolt(path) // the free pages found again by the open's walk
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if free := s.db.Stats().FreePageN; free < n {
		t.Fatalf("%d free pages after reopening, want at least %d", free, n)
	}
	pageAlloc := func() int64 { st := s.db.Stats(); return st.TxStats.GetPageAlloc() }
	before := pageAlloc()
	err = s.Update(context.Background(), func(tx Tx) error { return tx.Put("keys", "k", []byte("v")) })
	if err != nil {
		t.Fatal(err)
	}
	// A synced list of 20 000 free pages alone is 160 KB (40 pages).
	if alloc := pageAlloc() - before; alloc > 8*int64(s.db.Info().PageSize) {
		t.Fatalf("one small commit allocated %d bytes of pages", alloc)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	churn(t, s, n)
	fi2, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if grew := fi2.Size() - fi.Size(); grew > fi.Size()/10 {
		t.Fatalf("the file grew from %d to %d bytes refilling its free pages", fi.Size(), fi2.Size())
	}
}

// BenchmarkBoltUpdateFreePages measures one small fsynced Update in a
// store with about free free pages (bbolt's list of them is not written
// at commit: boltOptions).
func BenchmarkBoltUpdateFreePages(b *testing.B) {
	for _, free := range []int{0, 300000} {
		b.Run(fmt.Sprintf("free=%d", free), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "coffer.db")
			s, err := OpenBolt(path)
			if err != nil {
				b.Fatal(err)
			}
			churn(b, s, free)
			s.Close()
			if s, err = OpenBolt(path); err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			for i := 0; b.Loop(); i++ {
				err := s.Update(ctx, func(tx Tx) error { return tx.Put("keys", fmt.Sprintf("k%08d", i), make([]byte, 500)) })
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
