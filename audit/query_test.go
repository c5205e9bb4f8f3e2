package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestQueryFilters(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	w := mustOpen(t, Config{Dir: dir, Signer: key, DigestEvery: 3})
	base := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	other := "arn:aws:kms:us-east-1:111122223333:key/ffffffff-0000-0000-0000-000000000000"
	for i := range 9 {
		r := rec(i)
		r.EventTime = base.Add(time.Duration(i) * time.Hour).Format(time.RFC3339)
		switch i % 3 {
		case 1:
			r.EventName = "Decrypt"
			r.Resources[0].ARN = other
			r.RequestParameters = nil
		case 2:
			r.EventName = "ListAliases"
			r.Resources = nil
			r.RequestParameters = []byte(`{"keyId":"` + other + `"}`)
		}
		if err := w.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	ids := func(f Filter) string {
		var got []string
		if err := Query(dir, f, func(r *Record) error { got = append(got, strings.TrimPrefix(r.RequestID, "req-00000")); return nil }); err != nil {
			t.Fatal(err)
		}
		return strings.Join(got, ",")
	}
	for _, c := range []struct {
		f    Filter
		want string
	}{
		{Filter{}, "0,1,2,3,4,5,6,7,8"},
		{Filter{EventName: "Decrypt"}, "1,4,7"},
		{Filter{KeyID: "1234abcd-12ab-34cd-56ef-1234567890ab"}, "0,3,6"},
		{Filter{KeyID: testKeyARN}, "0,3,6"},
		{Filter{KeyID: "ffffffff-0000-0000-0000-000000000000"}, "1,2,4,5,7,8"}, // resources, then requestParameters.keyId
		{Filter{KeyID: "alias/app"}, "0,3,6"},
		{Filter{KeyID: "key/1234"}, ""},
		{Filter{Since: base.Add(2 * time.Hour), Until: base.Add(5 * time.Hour)}, "2,3,4"},
		{Filter{EventName: "Decrypt", Since: base.Add(3 * time.Hour)}, "4,7"},
		{Filter{EventName: EventNameDigest}, ",,"}, // three digests, which have no request ID
	} {
		if got := ids(c.f); got != c.want {
			t.Errorf("%+v: %s, want %s", c.f, got, c.want)
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := Query(dir, Filter{}, func(*Record) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("fn's error: %v after %d records", err, n)
	}
}

// Tail follows records appended after it starts, across rotation, in order.
func TestTailFollowsAcrossRotation(t *testing.T) {
	dir, key := t.TempDir(), newKey(t)
	w := mustOpen(t, Config{Dir: dir, Signer: key, MaxFileBytes: 1500, DigestEvery: 1 << 30})
	defer w.Close()
	for i := range 3 { // before Tail starts: not passed
		w.Append(context.Background(), rec(i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 100)
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- tail(ctx, dir, time.Millisecond, ready, func(r *Record) error { got <- r.RequestID; return nil })
	}()
	<-ready
	for i := 3; i < 20; i++ {
		if err := w.Append(context.Background(), rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 3; i < 20; i++ {
		if id, want := <-got, fmt.Sprintf("req-%06d", i); id != want {
			t.Fatalf("tail gave %s, want %s", id, want)
		}
	}
	if n := len(trail(t, dir)); n < 3 {
		t.Fatalf("%d files: no rotation to follow", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
