package kms

import (
	"bytes"
	"context"
	"runtime"
	"sync"
	"testing"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// TestAccessKeySecretRace: with a one-entry cache, two access keys evict
// each other on every lookup, and eviction zeroes the cached secret. A
// caller must never see those zeros (issue 19.10): a signing key derived
// from them would be cached for the key and day. Run under -race.
func TestAccessKeySecretRace(t *testing.T) {
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Region: "us-east-1", Account: "111122223333", Store: keystore.NewMemory(), Root: root,
		Cache: CacheConfig{Entries: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	admin := &Caller{ARN: "arn:aws:iam::111122223333:root", Account: "111122223333"}
	secrets := map[string][]byte{}
	var ids []string
	for _, u := range []string{"alice", "bob"} {
		if _, err := s.CreateUser(ctx, admin, &UserNameInput{UserName: u}); err != nil {
			t.Fatal(err)
		}
		out, err := s.CreateAccessKey(ctx, admin, &UserNameInput{UserName: u})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, out.AccessKey.AccessKeyId)
		secrets[out.AccessKey.AccessKeyId] = []byte(out.AccessKey.SecretAccessKey)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				id := ids[(g+i)%2]
				_, secret, err := s.AccessKey(ctx, id)
				if err != nil {
					errs <- err.Error()
					return
				}
				runtime.Gosched() // let the other key evict this one meanwhile
				if !bytes.Equal(secret, secrets[id]) {
					errs <- "AccessKey returned a secret that is not the key's (zeroed by an eviction?)"
					return
				}
				clear(secret) // the caller's copy: clearing it must not touch the cache
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
