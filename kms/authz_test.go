package kms

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// failingStore is a store whose reads of one bucket fail while failing is
// set, as a database that drops a connection mid-request does.
type failingStore struct {
	keystore.Store
	bucket  string
	failing atomic.Bool
}

var errInjected = errors.New("injected store failure")

func (f *failingStore) View(ctx context.Context, fn func(keystore.Tx) error) error {
	return f.Store.View(ctx, func(tx keystore.Tx) error { return fn(failingTx{tx, f}) })
}

func (f *failingStore) Update(ctx context.Context, fn func(keystore.Tx) error) error {
	return f.Store.Update(ctx, func(tx keystore.Tx) error { return fn(failingTx{tx, f}) })
}

type failingTx struct {
	keystore.Tx
	f *failingStore
}

func (t failingTx) Get(bucket, key string) ([]byte, error) {
	if bucket == t.f.bucket && t.f.failing.Load() {
		return nil, errInjected
	}
	return t.Tx.Get(bucket, key)
}

func (t failingTx) Scan(bucket, prefix, after string, fn func(string, []byte) bool) error {
	if bucket == t.f.bucket && t.f.failing.Load() {
		return errInjected
	}
	return t.Tx.Scan(bucket, prefix, after, fn)
}

// TestAuthorizationFailsClosed: a key policy denies Encrypt to keys whose
// aliases match alias/restricted*. When the aliases cannot be read, the
// Deny cannot be evaluated, and the request must be refused — an empty
// alias list would lift the Deny.
func TestAuthorizationFailsClosed(t *testing.T) {
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	store := &failingStore{Store: keystore.NewMemory(), bucket: bucketAliases}
	s, err := New(Config{Region: "us-east-1", Account: "111122223333", Store: store, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	c := &Caller{ARN: "arn:aws:iam::111122223333:root", Account: "111122223333"}
	denyRestricted := new(string)
	*denyRestricted = `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Deny","Principal":"*","Action":"kms:Encrypt","Resource":"*",
		 "Condition":{"ForAnyValue:StringLike":{"kms:ResourceAliases":"alias/restricted*"}}}]}`
	restricted, err := s.CreateKey(ctx, c, &CreateKeyInput{Policy: denyRestricted})
	if err != nil {
		t.Fatal(err)
	}
	open, err := s.CreateKey(ctx, c, &CreateKeyInput{Policy: denyRestricted})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := s.CreateKey(ctx, c, &CreateKeyInput{}) // the default policy never asks for aliases
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAlias(ctx, c, &AliasInput{AliasName: "alias/restricted-payroll", TargetKeyId: restricted.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	encrypt := func(id string) error {
		_, err := s.Encrypt(ctx, c, &EncryptInput{KeyId: id, Plaintext: []byte("x")})
		return err
	}
	kindOf := func(err error) error {
		var ke *Error
		if errors.As(err, &ke) {
			return ke.Kind
		}
		return err
	}

	// With the store healthy, the Deny holds and the other key works.
	if err := encrypt(restricted.KeyMetadata.KeyId); kindOf(err) != ErrAccessDenied {
		t.Fatalf("restricted key, store healthy: %v, want AccessDeniedException", err)
	}
	if err := encrypt(open.KeyMetadata.KeyId); err != nil {
		t.Fatalf("unrestricted key, store healthy: %v", err)
	}

	store.failing.Store(true)
	for _, id := range []string{restricted.KeyMetadata.KeyId, open.KeyMetadata.KeyId} {
		err := encrypt(id)
		if kindOf(err) != ErrInternal {
			t.Errorf("key %s with its aliases unreadable: %v, want KMSInternalException", id, err)
		}
		var ke *Error
		if errors.As(err, &ke) && !errors.Is(ke.Cause(), errInjected) {
			t.Errorf("the refusal's cause is %v, not the store's failure", ke.Cause())
		}
	}
	// A policy that never asks for the aliases does not read them.
	if err := encrypt(plain.KeyMetadata.KeyId); err != nil {
		t.Errorf("a key whose policy does not ask for aliases failed with the alias store down: %v", err)
	}
	store.failing.Store(false)
	if err := encrypt(restricted.KeyMetadata.KeyId); kindOf(err) != ErrAccessDenied {
		t.Errorf("store healed: %v, want AccessDeniedException", err)
	}
}

// TestIdentityPolicyCorruptFailsClosed: an identity policy that no longer
// parses (stored corruption) refuses the caller's requests rather than
// being skipped, which would drop any Deny it holds.
func TestIdentityPolicyCorruptFailsClosed(t *testing.T) {
	s, c := newFormsService(t)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, c, &UserNameInput{UserName: "bob"}); err != nil {
		t.Fatal(err)
	}
	bob := &Caller{ARN: "arn:aws:iam::111122223333:user/bob", Account: "111122223333"}
	if err := s.updatePrincipal(ctx, bob.ARN, "bob", func(p *Principal) error {
		p.Policies = map[string]string{"broken": `{"Statement":[{"Effect":"Deny"`}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.forgetPrincipal(bob.ARN)
	_, err := s.ListKeys(ctx, bob, &ListInput{})
	var ke *Error
	if !errors.As(err, &ke) || ke.Kind != ErrInternal {
		t.Fatalf("ListKeys by a principal whose stored policy is corrupt: %v, want KMSInternalException", err)
	}
}
