package keystore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/keystore"
)

// smallDB writes a real database of a few dozen pages and returns its bytes.
func smallDB(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "coffer.db")
	s, err := keystore.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(context.Background(), func(tx keystore.Tx) error {
		for i := range 300 {
			for _, b := range []string{"keys", "aliases", "grants"} {
				if err := tx.Put(b, fmt.Sprintf("%s-%04d", b, i), []byte(strings.Repeat(string(rune('a'+i%26)), 40+i%90))); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// readAll reads everything through the Store API and returns the first error.
func readAll(s keystore.Store) error {
	return s.View(context.Background(), func(tx keystore.Tx) error {
		for _, b := range []string{"keys", "aliases", "grants"} {
			n := 0
			if err := tx.Scan(b, "", "", func(string, []byte) bool { n++; return true }); err != nil {
				return err
			}
			for i := 0; i < 300; i += 37 {
				if _, err := tx.Get(b, fmt.Sprintf("%s-%04d", b, i)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func TestBoltRefusesGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coffer.db")
	garbage := make([]byte, 5*4096)
	rand.NewChaCha8([32]byte{1}).Read(garbage)
	os.WriteFile(path, garbage, 0o600)
	_, err := keystore.OpenBolt(path)
	if !errors.Is(err, keystore.ErrCorrupt) || !strings.Contains(err.Error(), "coffer.db is corrupt") || !strings.Contains(err.Error(), "restore it from a backup") {
		t.Fatalf("garbage file: %v", err)
	}
}

func TestBoltRefusesTruncated(t *testing.T) {
	raw := smallDB(t)
	dir := t.TempDir()
	// bbolt grows its file ahead of use: cutting only the unused end loses
	// nothing, and such a file opens and reads whole.
	for _, n := range []int{len(raw) - 4096, len(raw) - 1} {
		path := filepath.Join(dir, fmt.Sprintf("cut-%d", n), "coffer.db")
		os.MkdirAll(filepath.Dir(path), 0o700)
		os.WriteFile(path, raw[:n], 0o600)
		s, err := keystore.OpenBolt(path)
		if err != nil {
			t.Fatalf("cut of the unused end to %d bytes: %v", n, err)
		}
		if err := readAll(s); err != nil {
			t.Fatalf("cut of the unused end to %d bytes: %v", n, err)
		}
		s.Close()
	}
	for _, n := range []int{1, 100, 4096, 8192, 8192 + 17, 3 * 4096, len(raw) / 4, len(raw) / 2} {
		path := filepath.Join(dir, fmt.Sprintf("cut-%d", n), "coffer.db")
		os.MkdirAll(filepath.Dir(path), 0o700)
		os.WriteFile(path, raw[:n], 0o600)
		s, err := keystore.OpenBolt(path)
		if err == nil {
			s.Close()
			t.Errorf("a file cut to %d of %d bytes opened", n, len(raw))
			continue
		}
		if !errors.Is(err, keystore.ErrCorrupt) || !strings.Contains(err.Error(), "coffer.db is corrupt") {
			t.Errorf("cut to %d bytes: %v", n, err)
		}
	}
}

// A file truncated under a running store faults on its memory-mapped
// pages: the transaction fails with ErrCorrupt and the process lives.
func TestBoltFaultContained(t *testing.T) {
	raw := smallDB(t)
	path := filepath.Join(t.TempDir(), "coffer.db")
	os.WriteFile(path, raw, 0o600)
	s, err := keystore.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := readAll(s); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 2*4096); err != nil {
		t.Fatal(err)
	}
	err = readAll(s)
	if !errors.Is(err, keystore.ErrCorrupt) || !strings.Contains(err.Error(), "memory fault") {
		t.Fatalf("read of a truncated file: %v", err)
	}
	// A Tx method's error that the caller drops still fails the transaction.
	err = s.View(context.Background(), func(tx keystore.Tx) error {
		tx.Get("keys", "keys-0299")
		return nil
	})
	if !errors.Is(err, keystore.ErrCorrupt) {
		t.Fatalf("ignored corruption: %v", err)
	}
	err = s.Update(context.Background(), func(tx keystore.Tx) error {
		tx.Put("keys", "keys-0299", []byte("x"))
		return nil
	})
	if err == nil {
		t.Fatal("an Update on a truncated file succeeded")
	}
}

// The caller's own panics are not taken for corruption.
func TestBoltCallerPanicPropagates(t *testing.T) {
	s, err := keystore.OpenBolt(filepath.Join(t.TempDir(), "coffer.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Update(context.Background(), func(tx keystore.Tx) error { return tx.Put("b", "k", []byte("v")) })
	for name, fn := range map[string]func(keystore.Tx) error{
		"fn": func(keystore.Tx) error { panic("caller bug") },
		"scan": func(tx keystore.Tx) error {
			return tx.Scan("b", "", "", func(string, []byte) bool { panic("caller bug") })
		},
	} {
		func() {
			defer func() {
				if r := recover(); r != "caller bug" {
					t.Errorf("%s: recovered %v, want the caller's panic", name, r)
				}
			}()
			s.View(context.Background(), fn)
		}()
	}
	if err := readAll(s); err != nil {
		t.Fatalf("store after a caller's panic: %v", err)
	}
}

// A seeded set of bit flips and truncations of a real database: opening
// either fails with ErrCorrupt or succeeds, and then every read and write
// either returns an error or data. A crash fails the whole test binary.
func TestBoltBitFlips(t *testing.T) {
	raw := smallDB(t)
	rng := rand.New(rand.NewPCG(18, 4))
	dir := t.TempDir()
	opened, refused := 0, 0
	const cases = 400
	for i := range cases {
		mut := append([]byte(nil), raw...)
		what := ""
		switch {
		case i%10 == 9:
			n := rng.IntN(len(mut))
			mut, what = mut[:n], fmt.Sprintf("cut to %d", n)
		case i%3 == 0: // the first pages hold the meta pages, the freelist and the roots
			off := rng.IntN(min(len(mut), 4*4096))
			mut[off] ^= 1 << rng.IntN(8)
			what = fmt.Sprintf("bit flip at %d", off)
		default:
			off := rng.IntN(len(mut))
			mut[off] ^= 1 << rng.IntN(8)
			what = fmt.Sprintf("bit flip at %d", off)
		}
		path := filepath.Join(dir, "coffer.db")
		os.Remove(path)
		if err := os.WriteFile(path, mut, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := keystore.OpenBolt(path)
		if err != nil {
			if !errors.Is(err, keystore.ErrCorrupt) {
				t.Errorf("%s: open failed without ErrCorrupt: %v", what, err)
			}
			refused++
			continue
		}
		opened++
		_ = readAll(s)
		if i%8 == 0 {
			_ = s.Update(context.Background(), func(tx keystore.Tx) error { return tx.Put("keys", "new", []byte("v")) })
			_ = readAll(s)
		}
		s.Close()
	}
	t.Logf("%d mutations: %d opened, %d refused", cases, opened, refused)
	if refused == 0 || opened == 0 {
		t.Errorf("expected some mutations refused and some harmless: %d opened, %d refused", opened, refused)
	}
}

// A change the tree can still be walked through but that breaks its
// invariants (here a key out of order) is refused at open.
func TestBoltCheckAtOpen(t *testing.T) {
	raw := smallDB(t)
	i := strings.Index(string(raw), "keys-0100")
	if i < 0 {
		t.Fatal("key not found in the file")
	}
	raw[i+5] = '9' // keys-9100, between keys-0099 and keys-0101
	path := filepath.Join(t.TempDir(), "coffer.db")
	os.WriteFile(path, raw, 0o600)
	_, err := keystore.OpenBolt(path)
	// The guarded walk at open finds the order broken before bbolt's Check
	// would (which reports it as "key[…]").
	if !errors.Is(err, keystore.ErrCorrupt) || !strings.Contains(err.Error(), "coffer.db is corrupt: ") ||
		!(strings.Contains(err.Error(), "out of order") || strings.Contains(err.Error(), "key[")) {
		t.Fatalf("out-of-order key: %v", err)
	}
	t.Log(err)
}
