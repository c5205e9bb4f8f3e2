package keystore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/coffer-kms/coffer/keystore"
)

// BenchmarkOpenBolt measures OpenBolt, whose consistency check reads the
// whole file, on stores of keys records of about the size kms writes
// (~600 bytes of metadata and wrapped material each).
func BenchmarkOpenBolt(b *testing.B) {
	for _, keys := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "coffer.db")
			s, err := keystore.OpenBolt(path)
			if err != nil {
				b.Fatal(err)
			}
			val := make([]byte, 600)
			for i := 0; i < keys; i += 10000 {
				err := s.Update(context.Background(), func(tx keystore.Tx) error {
					for j := i; j < min(i+10000, keys); j++ {
						id := fmt.Sprintf("%08x-0000-4000-8000-%012x", j*7919, j)
						if err := tx.Put("keys", id, val); err != nil {
							return err
						}
						if err := tx.Put("aliases", "alias/k"+id, []byte(id)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			s.Close()
			b.ResetTimer()
			for b.Loop() {
				s, err := keystore.OpenBolt(path)
				if err != nil {
					b.Fatal(err)
				}
				st := s.CheckStats()
				b.ReportMetric(float64(st.Duration.Microseconds())/1000, "check-ms")
				b.ReportMetric(float64(st.Pages*4096)/(1<<20), "MiB")
				s.Close()
			}
		})
	}
}
