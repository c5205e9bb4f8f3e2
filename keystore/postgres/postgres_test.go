package postgres_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/keystore/postgres"
	"github.com/coffer-kms/coffer/keystore/postgres/pgtest"
	"github.com/coffer-kms/coffer/keystore/storetest"
)

var pg *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }

func open(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), postgres.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keystore.Store { return open(t, pg.Database(t)) })
}

// Nodes starting at once migrate once, and a later start finds nothing to do.
func TestMigrateConcurrently(t *testing.T) {
	url := pg.Database(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), postgres.Config{URL: url, MaxConns: 2})
			if err == nil {
				s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s := open(t, url)
	_ = s
}

// Keys of any bytes keep byte order, and a scan longer than a page is whole.
func TestBinaryKeysAndPages(t *testing.T) {
	s := open(t, pg.Database(t))
	ctx := context.Background()
	keys := []string{"a\x00", "a\x00\x01", "a\xff", "a\xff\xff", "b"}
	if err := s.Update(ctx, func(tx keystore.Tx) error {
		for _, k := range keys {
			if err := tx.Put("b", k, []byte(k)); err != nil {
				return err
			}
		}
		for i := range 600 {
			if err := tx.Put("p", string(rune('A'+i%26))+string(rune('0'+i/26)), nil); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.View(ctx, func(tx keystore.Tx) error {
		var got []string
		tx.Scan("b", "a\xff", "", func(k string, _ []byte) bool { got = append(got, k); return true })
		if len(got) != 2 || got[0] != "a\xff" || got[1] != "a\xff\xff" {
			t.Errorf("prefix a\\xff: %q", got)
		}
		got = nil
		tx.Scan("b", "a", "a\x00", func(k string, _ []byte) bool { got = append(got, k); return true })
		if len(got) != 3 || got[0] != "a\x00\x01" {
			t.Errorf("after a\\x00: %q", got)
		}
		n, last := 0, ""
		tx.Scan("p", "", "", func(k string, _ []byte) bool {
			if k <= last {
				t.Errorf("%q after %q", k, last)
			}
			last = k
			n++
			return true
		})
		if n != 600 {
			t.Errorf("scan of 600 keys saw %d", n)
		}
		return nil
	})
}

// A change in a notified bucket reaches a Listener once it commits; one
// rolled back never does.
func TestListener(t *testing.T) {
	url := pg.Database(t)
	s := open(t, url)
	changes := make(chan string, 16)
	resets := make(chan struct{}, 16)
	l := &postgres.Listener{URL: url,
		OnChange: func(b, k string) { changes <- b + "|" + k },
		OnReset:  func() { resets <- struct{}{} }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for l.Healthy() != nil {
		if time.Now().After(deadline) {
			t.Fatal("listener never up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Update(ctx, func(tx keystore.Tx) error { return tx.Put("keys", "us-east-1/k1", []byte("x")) })
	s.Update(ctx, func(tx keystore.Tx) error { tx.Put("keys", "us-east-1/k2", []byte("x")); return context.Canceled })
	s.Update(ctx, func(tx keystore.Tx) error { return tx.Put("usage", "u", []byte("x")) })
	s.Update(ctx, func(tx keystore.Tx) error { return tx.Delete("aliases", "1/us-east-1/alias/a") }) // absent: no change
	s.Update(ctx, func(tx keystore.Tx) error { return tx.Delete("keys", "us-east-1/k1") })
	for _, want := range []string{"keys|us-east-1/k1", "keys|us-east-1/k1"} {
		select {
		case got := <-changes:
			if got != want {
				t.Fatalf("change %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no notification")
		}
	}
	select {
	case got := <-changes:
		t.Fatalf("unexpected change %q", got)
	case <-time.After(100 * time.Millisecond):
	}
}

// Import copies a store in one transaction, is a no-op when rerun, and
// refuses a database holding other data unless told to replace it.
func TestImport(t *testing.T) {
	s := open(t, pg.Database(t))
	ctx := context.Background()
	data := map[[2]string]string{{"keys", "us-east-1/k"}: "v1", {"meta", "m"}: "", {"aliases", "a\x00b"}: "v3"}
	src := func(yield func(b, k string, v []byte) error) error {
		for bk, v := range data {
			if err := yield(bk[0], bk[1], []byte(v)); err != nil {
				return err
			}
		}
		return nil
	}
	if total, written, err := s.Import(ctx, src, false); err != nil || total != 3 || written != 3 {
		t.Fatalf("first import: %d %d %v", total, written, err)
	}
	if _, written, err := s.Import(ctx, src, false); err != nil || written != 0 {
		t.Fatalf("rerun: %d written, %v", written, err)
	}
	s.Update(ctx, func(tx keystore.Tx) error { return tx.Put("keys", "us-east-1/other", []byte("x")) })
	if _, _, err := s.Import(ctx, src, false); !errors.Is(err, postgres.ErrNotEmpty) {
		t.Fatalf("import over other data: %v", err)
	}
	if _, written, err := s.Import(ctx, src, true); err != nil || written != 1 {
		t.Fatalf("replace: %d written, %v", written, err)
	}
	s.View(ctx, func(tx keystore.Tx) error {
		for bk, v := range data {
			if got, _ := tx.Get(bk[0], bk[1]); string(got) != v || got == nil {
				t.Errorf("%q: %q", bk, got)
			}
		}
		if got, _ := tx.Get("keys", "us-east-1/other"); got != nil {
			t.Error("replace kept an entry the source does not have")
		}
		return nil
	})
}
