package kms

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/keystore"
)

// lockStore is a store shared with other nodes as far as Run can tell: a
// keystore.Locker whose lock another node may hold.
type lockStore struct {
	*keystore.Memory
	mu       sync.Mutex
	heldElse bool     // another node holds every lock
	names    []string // TryLock calls
	unlocked int
}

func (l *lockStore) TryLock(_ context.Context, name string) (func(), bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.names = append(l.names, name)
	if l.heldElse {
		return nil, false, nil
	}
	return func() { l.mu.Lock(); l.unlocked++; l.mu.Unlock() }, true, nil
}

// Run's maintenance takes the store's "maintenance/<region>" lock, skips
// while another node holds it and releases it after.
func TestMaintenanceUnderClusterLock(t *testing.T) {
	ctx := context.Background()
	clock := time.Now().UTC()
	store := &lockStore{Memory: keystore.NewMemory(), heldElse: true}
	s, err := New(Config{Region: "eu-west-1", Account: "111122223333", Store: store, Root: softRoot(t), Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k, err := s.CreateKey(ctx, rootCaller, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	window := 7
	if _, err := s.ScheduleKeyDeletion(ctx, rootCaller, &ScheduleKeyDeletionInput{KeyId: k.KeyMetadata.KeyId, PendingWindowInDays: &window}); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(8 * 24 * time.Hour)
	if _, d, ran, err := s.maintainOnce(ctx); err != nil || ran || d != 0 {
		t.Fatalf("maintenance with the lock held elsewhere: ran %v, deleted %d, %v; want skipped", ran, d, err)
	}
	if _, err := s.DescribeKey(ctx, rootCaller, &KeyIDInput{KeyId: k.KeyMetadata.KeyId}); err != nil {
		t.Fatalf("key gone while another node held the lock: %v", err)
	}
	store.heldElse = false
	if _, d, ran, err := s.maintainOnce(ctx); err != nil || !ran || d != 1 {
		t.Fatalf("maintenance with the lock free: ran %v, deleted %d, %v; want 1 deletion", ran, d, err)
	}
	if _, err := s.DescribeKey(ctx, rootCaller, &KeyIDInput{KeyId: k.KeyMetadata.KeyId}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DescribeKey after the deletion: %v", err)
	}
	if len(store.names) != 2 || store.names[0] != "maintenance/eu-west-1" || store.unlocked != 1 {
		t.Fatalf("locks taken %q, released %d times; want maintenance/eu-west-1 twice, released once", store.names, store.unlocked)
	}
}
