package kms

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// BenchmarkCreateGrant measures CreateGrant on a key that already has
// grants=n grants (at most 400 per grantee), filled as real grant records
// with their index entries and count (fillGrants), in a bbolt store (a
// B+tree: a prefix scan seeks) and in the memory store (whose Scan sorts
// the whole bucket: a test double, shown for comparison). Each iteration
// creates one grant to a grantee with none and, untimed, revokes it, so
// that the key stays at n grants.
func BenchmarkCreateGrant(b *testing.B) {
	for _, store := range []string{"bolt", "memory"} {
		for _, n := range []int{1000, 50000} {
			b.Run(fmt.Sprintf("store=%s/grants=%d", store, n), func(b *testing.B) {
				s, c, key := grantBenchService(b, store)
				ctx := context.Background()
				const per = 400
				for i := 0; i < n-1; i += per {
					fillGrants(b, s, key, fmt.Sprintf("arn:aws:iam::%012d:root", 100000000000+i/per), "arn:aws:iam::444455556666:root", min(per, n-1-i))
				}
				in := &CreateGrantInput{KeyId: key, GranteePrincipal: "arn:aws:iam::999999999999:root", RetiringPrincipal: "arn:aws:iam::444455556666:root",
					Operations: []string{"Decrypt"}}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					out, err := s.CreateGrant(ctx, c, in)
					if err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if _, err := s.RevokeGrant(ctx, c, &RevokeGrantInput{KeyId: key, GrantId: out.GrantId}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			})
		}
	}
}

func grantBenchService(b *testing.B, store string) (*Service, *Caller, string) {
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		b.Fatal(err)
	}
	var st keystore.Store = keystore.NewMemory()
	if store == "bolt" {
		if st, err = keystore.OpenBolt(filepath.Join(b.TempDir(), "coffer.db")); err != nil {
			b.Fatal(err)
		}
	}
	s, err := New(Config{Region: "us-east-1", Account: "111122223333", Store: st, Root: root})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	c := &Caller{ARN: "arn:aws:iam::111122223333:root", Account: "111122223333"}
	out, err := s.CreateKey(context.Background(), c, &CreateKeyInput{})
	if err != nil {
		b.Fatal(err)
	}
	return s, c, out.KeyMetadata.KeyId
}
