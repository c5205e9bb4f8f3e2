package kms

import (
	"context"
	"encoding/json"
	"flag"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/policy"
)

var coldKeys = flag.Int("cold-keys", 20000, "BenchmarkColdEncrypt: keys in the store")

// BenchmarkColdEncrypt measures Encrypt on bbolt with -cold-keys keys and
// caches of 1000 entries: hot, one key; cold, each request the next key in
// turn, so that every request misses the key record and material caches
// and reads, verifies and decodes the key's record (the scale run's cold
// load, in process).
//
//	go test -run '^$' -bench ColdEncrypt -benchmem ./kms
func BenchmarkColdEncrypt(b *testing.B) {
	s := boltBenchService(b, CacheConfig{Entries: 1000})
	defer s.Close()
	ctx := context.Background()
	n := *coldKeys
	if err := s.BulkCreateKeys(ctx, "111122223333", "cold", n, 1000, nil); err != nil {
		b.Fatal(err)
	}
	c := &Caller{ARN: "arn:aws:iam::111122223333:root", Account: "111122223333"}
	var ids []string
	for marker := ""; ; {
		out, err := s.ListKeys(ctx, c, &ListInput{Limit: new(1000), Marker: marker})
		if err != nil {
			b.Fatal(err)
		}
		for _, k := range out.Keys {
			ids = append(ids, k.KeyId)
		}
		if !out.Truncated {
			break
		}
		marker = out.NextMarker
	}
	pt := make([]byte, 1024)
	for _, mode := range []string{"hot", "cold"} {
		b.Run("keys="+mode, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				id := ids[0]
				if mode == "cold" {
					i = (i + 1) % len(ids)
					id = ids[i]
				}
				if _, err := s.Encrypt(ctx, c, &EncryptInput{KeyId: id, Plaintext: pt}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// boltBenchService is a Service on a bbolt store in a temporary directory,
// with an in-memory software root and caches bounded by cache.
func boltBenchService(b *testing.B, cache CacheConfig) *Service {
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		b.Fatal(err)
	}
	store, err := keystore.OpenBolt(filepath.Join(b.TempDir(), "coffer.db"))
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{Region: "us-east-1", Account: "111122223333", Store: store, Root: root, Cache: cache})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkRecordOpen measures verifying one stored key record of the
// size a key with the default policy has (about 860 bytes), as every read
// of a record does.
func BenchmarkRecordOpen(b *testing.B) {
	k, _ := newRecordKey(make([]byte, recordKeySize))
	sealed := k.seal(bucketKeys, "us-east-1/00002366-a48e-47e7-8b03-c559596ab8a9", make([]byte, 860))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.open(bucketKeys, "us-east-1/00002366-a48e-47e7-8b03-c559596ab8a9", sealed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeKey measures decoding one stored key record (a key with
// the default policy, as the scale runs make them) by decodeKey's one pass
// and, in the same run, by encoding/json as before.
func BenchmarkDecodeKey(b *testing.B) {
	raw, err := json.Marshal(&keyRecord{
		ID: "00002366-a48e-47e7-8b03-c559596ab8a9", Account: "111122223333", Region: "us-east-1",
		Created: time.Date(2026, 12, 7, 21, 41, 53, 409685406, time.UTC), Description: "scale",
		Usage: "ENCRYPT_DECRYPT", Spec: "SYMMETRIC_DEFAULT", Origin: "AWS_KMS", Manager: "CUSTOMER", State: StateEnabled,
		Policy: string(policy.DefaultKeyPolicy("111122223333")),
		Versions: []keyVersion{{MaterialID: strings.Repeat("e1", 32), Wrapped: make([]byte, 61),
			Created: time.Date(2026, 12, 7, 21, 41, 53, 409685406, time.UTC)}},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("impl=onepass", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		for b.Loop() {
			var r keyRecord
			if !decodeKeyJSON(raw, &r) {
				b.Fatal("gave up")
			}
		}
	})
	b.Run("impl=encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		for b.Loop() {
			var r keyRecord
			if err := json.Unmarshal(raw, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
