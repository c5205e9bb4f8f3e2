package kms

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/keystore"
)

// fillGrants puts n real grants of key keyID for grantee, with their index
// entries and the key's count, directly through the records view in one
// transaction (the state CreateGrant would leave, without n calls).
func fillGrants(tb testing.TB, s *Service, keyID, grantee, retiring string, n int) {
	tb.Helper()
	err := s.store.Update(context.Background(), func(tx keystore.Tx) error {
		if err := s.ensureGrantIndexesTx(tx); err != nil {
			return err
		}
		total, err := grantCountTx(tx, keyID)
		if err != nil {
			return err
		}
		for i := range n {
			id := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%d", keyID, grantee, i))
			g := &grantRecord{KeyID: keyID, GrantID: hex.EncodeToString(id[:]), Created: time.Unix(0, 0).UTC(),
				GranteePrincipal: grantee, RetiringPrincipal: retiring, IssuingAccount: "arn:aws:iam::111122223333:root",
				Operations: []string{"Decrypt"}}
			if err := putGrantTx(tx, g); err != nil {
				return err
			}
			if err := indexGrantTx(tx, g); err != nil {
				return err
			}
		}
		return setGrantCountTx(tx, keyID, total+n)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func isLimitExceeded(err error) bool {
	var ke *Error
	return errors.As(err, &ke) && ke.Kind == ErrLimitExceeded
}

// The per-grantee (500) and per-key (50 000) limits hold through the index
// and the count, and deleting a grant makes room again.
func TestGrantLimitsFromIndexes(t *testing.T) {
	s, root := newFormsService(t)
	ctx := context.Background()
	k, err := s.CreateKey(ctx, root, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	key := k.KeyMetadata.KeyId
	const bob = "arn:aws:iam::444455556666:root"
	fillGrants(t, s, key, bob, "", maxGrantsPerGranteeOnKey-1)
	grant := func(to string) (*CreateGrantOutput, error) {
		return s.CreateGrant(ctx, root, &CreateGrantInput{KeyId: key, GranteePrincipal: to, Operations: []string{"Encrypt"}})
	}
	last, err := grant(bob)
	if err != nil {
		t.Fatalf("grant %d to one grantee: %v", maxGrantsPerGranteeOnKey, err)
	}
	if _, err := grant(bob); !isLimitExceeded(err) {
		t.Fatalf("grant %d to one grantee: %v, want LimitExceededException", maxGrantsPerGranteeOnKey+1, err)
	}
	if _, err := s.RevokeGrant(ctx, root, &RevokeGrantInput{KeyId: key, GrantId: last.GrantId}); err != nil {
		t.Fatal(err)
	}
	if _, err := grant(bob); err != nil {
		t.Fatalf("after a revocation: %v", err)
	}
	// The key's count: 500 grants now; fill to one short of the limit.
	var n int
	if err := s.store.View(ctx, func(tx keystore.Tx) (err error) { n, err = grantCountTx(tx, key); return err }); err != nil || n != maxGrantsPerGranteeOnKey {
		t.Fatalf("count %d (%v), want %d", n, err, maxGrantsPerGranteeOnKey)
	}
	if err := s.store.Update(ctx, func(tx keystore.Tx) error { return setGrantCountTx(tx, key, maxGrantsPerKey-1) }); err != nil {
		t.Fatal(err)
	}
	if _, err := grant("arn:aws:iam::555555555555:root"); err != nil {
		t.Fatalf("grant %d on the key: %v", maxGrantsPerKey, err)
	}
	if _, err := grant("arn:aws:iam::666666666666:root"); !isLimitExceeded(err) {
		t.Fatalf("grant %d on the key: %v, want LimitExceededException", maxGrantsPerKey+1, err)
	}
}

// ListRetirableGrants pages over the index: every grant the principal may
// retire, on every key, once, and none retired or revoked; principals
// whose ARN is a prefix of another's are told apart.
func TestListRetirableGrantsIndex(t *testing.T) {
	s, root := newFormsService(t)
	ctx := context.Background()
	var keys []string
	for range 2 {
		k, err := s.CreateKey(ctx, root, &CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.KeyMetadata.KeyId)
	}
	const (
		janitor = "arn:aws:iam::444455556666:user/j"
		grantee = "arn:aws:iam::555555555555:root"
	)
	var want []string
	for i := range 7 {
		g, err := s.CreateGrant(ctx, root, &CreateGrantInput{KeyId: keys[i%2], GranteePrincipal: grantee, RetiringPrincipal: janitor, Operations: []string{"Decrypt"}})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, g.GrantId)
	}
	// Another retiring principal, and a grant without one.
	for _, r := range []string{janitor + "/k", janitor + "k", ""} { // paths: user k under path /j/, user jk
		if _, err := s.CreateGrant(ctx, root, &CreateGrantInput{KeyId: keys[0], GranteePrincipal: grantee, RetiringPrincipal: r, Operations: []string{"Decrypt"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RevokeGrant(ctx, root, &RevokeGrantInput{KeyId: keys[0], GrantId: want[0]}); err != nil {
		t.Fatal(err)
	}
	want = want[1:]
	var got []string
	marker := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		out, err := s.ListRetirableGrants(ctx, root, &ListRetirableGrantsInput{RetiringPrincipal: janitor, ListInput: ListInput{Limit: ptr(2), Marker: marker}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Grants) > 2 {
			t.Fatalf("a page of %d", len(out.Grants))
		}
		for _, g := range out.Grants {
			if g.RetiringPrincipal != janitor {
				t.Fatalf("listed a grant retired by %s", g.RetiringPrincipal)
			}
			got = append(got, g.GrantId)
		}
		if !out.Truncated {
			break
		}
		marker = out.NextMarker
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("ListRetirableGrants: %v, want %v", got, want)
	}
}

// A store whose grants predate the indexes: the first CreateGrant builds
// them (and the counts) from the grants; until then ListRetirableGrants
// scans.
func TestGrantIndexesBuiltOnce(t *testing.T) {
	s, root := newFormsService(t)
	ctx := context.Background()
	k, err := s.CreateKey(ctx, root, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	key := k.KeyMetadata.KeyId
	const janitor = "arn:aws:iam::444455556666:root"
	// Grants as an older release left them: records only, no index.
	err = s.store.Update(ctx, func(tx keystore.Tx) error {
		for i := range 3 {
			g := &grantRecord{KeyID: key, GrantID: fmt.Sprintf("%064x", i), GranteePrincipal: "arn:aws:iam::555555555555:root",
				RetiringPrincipal: janitor, IssuingAccount: "arn:aws:iam::111122223333:root", Operations: []string{"Decrypt"}}
			if err := putGrantTx(tx, g); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	list := func() int {
		out, err := s.ListRetirableGrants(ctx, root, &ListRetirableGrantsInput{RetiringPrincipal: janitor})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Grants)
	}
	if n := list(); n != 3 {
		t.Fatalf("before the indexes: %d retirable grants, want 3", n)
	}
	if _, err := s.CreateGrant(ctx, root, &CreateGrantInput{KeyId: key, GranteePrincipal: "arn:aws:iam::555555555555:root", RetiringPrincipal: janitor, Operations: []string{"Decrypt"}}); err != nil {
		t.Fatal(err)
	}
	var built bool
	var count int
	if err := s.store.View(ctx, func(tx keystore.Tx) (err error) {
		if built, err = s.grantIndexesBuilt(tx); err != nil {
			return err
		}
		count, err = grantCountTx(tx, key)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !built || count != 4 {
		t.Fatalf("after the first CreateGrant: built %v, count %d, want true and 4", built, count)
	}
	if n := list(); n != 4 {
		t.Fatalf("from the index: %d retirable grants, want 4", n)
	}
	// Deleting the key deletes its grants with their entries and count.
	if err := s.store.Update(ctx, func(tx keystore.Tx) error { return s.deleteKeyGrantsTx(tx, key) }); err != nil {
		t.Fatal(err)
	}
	if n := list(); n != 0 {
		t.Fatalf("after the key's grants were deleted: %d retirable grants", n)
	}
	err = s.store.View(ctx, func(tx keystore.Tx) error {
		for _, b := range []string{bucketGrantsByGrantee, bucketGrantsByRetiring, bucketGrantCounts} {
			if err := tx.Scan(b, "", "", func(name string, _ []byte) bool { t.Errorf("%s/%s left behind", b, name); return true }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
