package policy

import (
	"slices"
	"testing"
)

// Request.Bound ties a statement naming an IAM user or role to the
// principal it was bound to (issue 19.6): a principal that matches by ARN
// but not by Bound is not the one named. Roots, accounts and "*" never
// consult it.
func TestBoundPrincipals(t *testing.T) {
	const doc = `{"Version":"2012-10-17","Statement":[
		{"Sid":"user","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:Encrypt","Resource":"*"},
		{"Sid":"role","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/KeyAdmin"},"Action":"kms:Encrypt","Resource":"*"},
		{"Sid":"star","Effect":"Allow","Principal":"*","Action":"kms:DescribeKey","Resource":"*"},
		{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:GetKeyPolicy","Resource":"*"},
		{"Sid":"not","Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:Decrypt","Resource":"*"}]}`
	p := keyPolicy(t, doc)
	if got, want := p.NamedPrincipals(), []string{alice, admin}; !slices.Equal(got, want) {
		t.Fatalf("NamedPrincipals: %v, want %v", got, want)
	}
	var asked []string
	never := func(arn string) bool { asked = append(asked, arn); return false }
	always := func(string) bool { return true }
	for _, c := range []struct {
		who, action string
		bound       func(string) bool
		want        Decision
	}{
		{alice, "kms:Encrypt", nil, Allow},
		{alice, "kms:Encrypt", always, Allow},
		{alice, "kms:Encrypt", never, NotApplicable},
		{session, "kms:Encrypt", always, Allow},
		{session, "kms:Encrypt", never, NotApplicable},
		{alice, "kms:DescribeKey", never, Allow},      // "*"
		{root, "kms:GetKeyPolicy", never, Allow},      // the root
		{alice, "kms:Decrypt", always, NotApplicable}, // excluded from the Deny by NotPrincipal
		{alice, "kms:Decrypt", never, Deny},           // another alice is not excluded
	} {
		r := req(c.who, c.action, nil)
		r.Bound = c.bound
		if got := p.Evaluate(r); got != c.want {
			t.Errorf("%s %s (bound %v): %v, want %v", c.who, c.action, c.bound != nil, got, c.want)
		}
	}
	for _, a := range asked {
		if a != alice && a != admin {
			t.Errorf("Bound asked about %s", a)
		}
	}
	// The default key policy never asks, and does not allocate.
	d := keyPolicy(t, defaultPolicy)
	r := req(alice, "kms:Encrypt", nil)
	r.Bound = func(arn string) bool { t.Errorf("asked about %s", arn); return false }
	if allocs := testing.AllocsPerRun(100, func() { Authorize(d, acct, nil, false, r) }); allocs != 0 {
		t.Errorf("%.0f allocations", allocs)
	}
}
