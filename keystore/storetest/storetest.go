// Package storetest is the conformance suite every keystore.Store passes.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/coffer-kms/coffer/keystore"
)

// Run runs the suite; open returns a fresh, empty store each call.
func Run(t *testing.T, open func(t *testing.T) keystore.Store) {
	ctx := context.Background()
	t.Run("PutGetDelete", func(t *testing.T) {
		s := open(t)
		if err := s.Update(ctx, func(tx keystore.Tx) error {
			if v, err := tx.Get("b", "missing"); err != nil || v != nil {
				return fmt.Errorf("missing key: %q %v", v, err)
			}
			return tx.Put("b", "k", []byte("v1"))
		}); err != nil {
			t.Fatal(err)
		}
		get := func() []byte {
			var v []byte
			if err := s.View(ctx, func(tx keystore.Tx) (err error) { v, err = tx.Get("b", "k"); return }); err != nil {
				t.Fatal(err)
			}
			return v
		}
		if string(get()) != "v1" {
			t.Fatal("put not visible")
		}
		s.Update(ctx, func(tx keystore.Tx) error { return tx.Delete("b", "k") })
		if get() != nil {
			t.Fatal("delete not visible")
		}
		if err := s.Update(ctx, func(tx keystore.Tx) error { return tx.Put("b", "empty", nil) }); err != nil {
			t.Fatal(err)
		}
		s.View(ctx, func(tx keystore.Tx) error {
			v, _ := tx.Get("b", "empty")
			if v == nil || len(v) != 0 {
				t.Fatalf("empty value read back as %v", v)
			}
			return nil
		})
	})
	t.Run("RollbackOnError", func(t *testing.T) {
		s := open(t)
		boom := errors.New("boom")
		err := s.Update(ctx, func(tx keystore.Tx) error {
			tx.Put("b", "k", []byte("v"))
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update error %v", err)
		}
		s.View(ctx, func(tx keystore.Tx) error {
			if v, _ := tx.Get("b", "k"); v != nil {
				t.Fatal("failed transaction left a write")
			}
			return nil
		})
	})
	t.Run("ReadOnlyView", func(t *testing.T) {
		s := open(t)
		err := s.View(ctx, func(tx keystore.Tx) error { return tx.Put("b", "k", []byte("v")) })
		if !errors.Is(err, keystore.ErrReadOnly) {
			t.Fatalf("Put in View: %v", err)
		}
	})
	t.Run("ReadYourWrites", func(t *testing.T) {
		s := open(t)
		s.Update(ctx, func(tx keystore.Tx) error {
			tx.Put("b", "a", []byte("1"))
			if v, _ := tx.Get("b", "a"); string(v) != "1" {
				t.Fatal("write not visible in its own transaction")
			}
			tx.Delete("b", "a")
			if v, _ := tx.Get("b", "a"); v != nil {
				t.Fatal("delete not visible in its own transaction")
			}
			return nil
		})
	})
	t.Run("ScanOrderPrefixAfter", func(t *testing.T) {
		s := open(t)
		s.Update(ctx, func(tx keystore.Tx) error {
			for _, k := range []string{"x/3", "x/1", "y/1", "x/2", "w/9"} {
				tx.Put("b", k, []byte(k))
			}
			return nil
		})
		scan := func(prefix, after string, limit int) string {
			var got []string
			s.View(ctx, func(tx keystore.Tx) error {
				return tx.Scan("b", prefix, after, func(k string, v []byte) bool {
					if k != string(v) {
						t.Fatalf("value of %s is %s", k, v)
					}
					got = append(got, k)
					return len(got) < limit
				})
			})
			if got == nil {
				got = []string{}
			}
			return fmt.Sprint(got)
		}
		for _, c := range []struct {
			prefix, after string
			limit         int
			want          string
		}{
			{"x/", "", 10, "[x/1 x/2 x/3]"},
			{"x/", "x/1", 10, "[x/2 x/3]"},
			{"x/", "", 2, "[x/1 x/2]"},
			{"", "", 10, "[w/9 x/1 x/2 x/3 y/1]"},
			{"", "x/3", 10, "[y/1]"},
			{"z", "", 10, "[]"},
			{"x/", "a", 10, "[x/1 x/2 x/3]"},
		} {
			if got := scan(c.prefix, c.after, c.limit); got != c.want {
				t.Errorf("Scan(%q,%q,%d) = %s, want %s", c.prefix, c.after, c.limit, got, c.want)
			}
		}
		if got := func() string {
			var got []string
			s.View(ctx, func(tx keystore.Tx) error {
				return tx.Scan("nobucket", "", "", func(k string, _ []byte) bool { got = append(got, k); return true })
			})
			return fmt.Sprint(got)
		}(); got != "[]" {
			t.Errorf("scan of absent bucket: %s", got)
		}
	})
	t.Run("Limits", func(t *testing.T) {
		s := open(t)
		big := make([]byte, keystore.MaxValueSize+1)
		if err := s.Update(ctx, func(tx keystore.Tx) error { return tx.Put("b", "k", big) }); !errors.Is(err, keystore.ErrTooLarge) {
			t.Fatalf("oversize value: %v", err)
		}
	})
	t.Run("ConcurrentCounters", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 25 {
					err := s.Update(ctx, func(tx keystore.Tx) error {
						v, _ := tx.Get("b", "n")
						n := 0
						fmt.Sscan(string(v), &n)
						return tx.Put("b", "n", fmt.Append(nil, n+1))
					})
					if err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		s.View(ctx, func(tx keystore.Tx) error {
			if v, _ := tx.Get("b", "n"); string(v) != "200" {
				t.Fatalf("lost updates: counter %s, want 200", v)
			}
			return nil
		})
	})
}
