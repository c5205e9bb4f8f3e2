package kms

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// TestRequestTimeReadOnce holds a served Encrypt, Decrypt and
// GenerateDataKey, their caches warm, to one read of the service's clock
// each: the condition keys, every cache's freshness and the key's last use
// share the request's time. It also holds the outputs to the request's memory.
func TestRequestTimeReadOnce(t *testing.T) {
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	var reads atomic.Int64
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { reads.Add(1); return base }
	s, err := New(Config{Region: "us-east-1", Account: "111122223333", Store: keystore.NewMemory(), Root: root, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := &Caller{ARN: "arn:aws:iam::111122223333:root", Account: "111122223333"}
	key, err := s.CreateKey(context.Background(), c, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	id := key.KeyMetadata.KeyId
	ec := map[string]string{"purpose": "clock"}
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Encrypt", func(ctx context.Context) error {
			_, err := s.Encrypt(ctx, c, &EncryptInput{KeyId: id, Plaintext: []byte("secret"), EncryptionContext: ec})
			return err
		}},
		{"GenerateDataKey", func(ctx context.Context) error {
			_, err := s.GenerateDataKey(ctx, c, &GenerateDataKeyInput{KeyId: id, KeySpec: "AES_256", EncryptionContext: ec})
			return err
		}},
	}
	blob, err := s.Encrypt(context.Background(), c, &EncryptInput{KeyId: id, Plaintext: []byte("secret"), EncryptionContext: ec})
	if err != nil {
		t.Fatal(err)
	}
	calls = append(calls, struct {
		name string
		call func(ctx context.Context) error
	}{"Decrypt", func(ctx context.Context) error {
		out, err := s.Decrypt(ctx, c, &DecryptInput{CiphertextBlob: blob.CiphertextBlob, EncryptionContext: ec})
		if err == nil && string(out.Plaintext) != "secret" {
			t.Errorf("Decrypt returned %d bytes, not the plaintext", len(out.Plaintext))
		}
		return err
	}})
	for _, tc := range calls {
		if err := tc.call(context.Background()); err != nil { // warms the caches
			t.Fatal(err)
		}
		ri := &RequestInfo{}
		ctx := context.WithValue(context.Background(), RequestInfoKey, ri)
		reads.Store(0)
		if err := tc.call(ctx); err != nil {
			t.Fatal(err)
		}
		if len(ri.KeyARNs) == 0 {
			t.Fatalf("%s noted no key", tc.name)
		}
		s.RecordRequestLastUsage(ri, tc.name, "req") // the last use takes the request's time
		if n := reads.Load(); n != 1 {
			t.Errorf("%s and its last use read the clock %d times, want once", tc.name, n)
		}
		if len(ri.Output()) == 0 {
			t.Errorf("%s wrote no output into the request's memory", tc.name)
		}
		ri.ClearOutput()
		for _, b := range ri.Output() {
			if b != 0 {
				t.Fatalf("%s: output memory not cleared", tc.name)
			}
		}
	}
}
