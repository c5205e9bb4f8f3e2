package postgres_test

import (
	"context"
	"syscall"
	"testing"

	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/keystore/postgres"
)

// BenchmarkViewGet is the read of a record that misses the caches: a View
// with one Get, against a real PostgreSQL on loopback; cpu-ns/op is the
// process's CPU time (getrusage), most of it the round trips' syscalls.
func BenchmarkViewGet(b *testing.B) {
	ctx := context.Background()
	s, err := postgres.Open(ctx, postgres.Config{URL: pg.Database(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Update(ctx, func(tx keystore.Tx) error { return tx.Put("b", "k", make([]byte, 900)) }); err != nil {
		b.Fatal(err)
	}
	cpu0 := processCPU()
	for b.Loop() {
		if err := s.View(ctx, func(tx keystore.Tx) error {
			_, err := tx.Get("b", "k")
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

func processCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
