// Package fuzzpolicy fuzzes the policy parser with the property that makes
// its output trustworthy: any document either fails with a MalformedError
// (the same one every time) or compiles to a policy whose canonical form
// parses back to the same canonical form and decides every request the
// same way; documents over policy.MaxSize are always refused; nothing
// panics.
package fuzzpolicy

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/policy"
)

const (
	account = "111122223333"
	keyARN  = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

// requests is a spread of callers, actions and contexts that the seed
// policies tell apart.
var requests = func() []*policy.Request {
	full := &policy.Context{
		EncryptionContext: map[string]string{"AppName": "ExampleApp", "aws:ebs:id": "vol-1", "a": "b"}, HasEncryptionContext: true,
		EncryptionAlgorithm: "SYMMETRIC_DEFAULT", GrantOperations: []string{"Encrypt", "Decrypt"}, IsGrantRequest: true,
		GrantIsForAWSResource: true, GranteePrincipal: "arn:aws:iam::111122223333:role/App", RequestAlias: "alias/app",
		ResourceAliases: []string{"alias/app"}, KeySpec: "SYMMETRIC_DEFAULT", KeyUsage: "ENCRYPT_DECRYPT", KeyOrigin: "AWS_KMS",
		ViaService: "ec2.us-east-1.amazonaws.com", SourceIP: netip.MustParseAddr("10.1.2.3"), HasTransport: true, SecureTransport: true,
		CurrentTime: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), Extra: map[string][]string{"kms:rotationperiodindays": {"365"}},
	}
	var out []*policy.Request
	for _, p := range []struct{ arn, account string }{
		{"arn:aws:iam::111122223333:root", account},
		{"arn:aws:iam::111122223333:user/alice", account},
		{"arn:aws:sts::111122223333:assumed-role/ExampleRole/s", account},
		{"arn:aws:iam::444455556666:user/mallory", "444455556666"},
		{"logs.us-east-1.amazonaws.com", ""},
	} {
		for _, action := range []string{"kms:Decrypt", "kms:PutKeyPolicy", "kms:CreateGrant"} {
			for _, ctx := range []*policy.Context{nil, full} {
				var c *policy.Context
				if ctx != nil {
					cc := *ctx
					cc.CallerAccount, cc.PrincipalARN = p.account, p.arn
					c = &cc
				}
				out = append(out, &policy.Request{PrincipalARN: p.arn, PrincipalAccount: p.account, Action: action, Resource: keyARN, Context: c})
			}
		}
	}
	return out
}()

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}]}`), true)
	f.Fuzz(func(t *testing.T, doc []byte, keyPolicy bool) {
		kind := policy.IdentityPolicy
		if keyPolicy {
			kind = policy.KeyPolicy
		}
		if _, err := policy.Parse(doc, policy.TrustPolicy); err != nil {
			var me *policy.MalformedError
			if !errors.As(err, &me) || !errors.Is(err, policy.ErrMalformed) || me.Msg == "" {
				t.Fatalf("trust policy: error %v is not a MalformedError with a message", err)
			}
		}
		p, err := policy.Parse(doc, kind)
		if err != nil {
			var me *policy.MalformedError
			if !errors.As(err, &me) || !errors.Is(err, policy.ErrMalformed) || me.Msg == "" {
				t.Fatalf("parse error %#v is not a MalformedError with a message", err)
			}
			if _, again := policy.Parse(doc, kind); again == nil || again.Error() != err.Error() {
				t.Fatalf("the same document gave %q, then %v", err, again)
			}
			return
		}
		if len(doc) > policy.MaxSize {
			t.Fatalf("a document of %d bytes was accepted", len(doc))
		}
		// The same document padded past the limit is refused.
		padded := append(bytes.Repeat([]byte{' '}, policy.MaxSize+1-len(doc)), doc...)
		if _, err := policy.Parse(padded, kind); !errors.Is(err, policy.ErrMalformed) {
			t.Fatalf("a document of %d bytes: %v", len(padded), err)
		}

		canon, err := p.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		p2, err := policy.Parse(canon, kind)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, canon)
		}
		again, err := p2.MarshalJSON()
		if err != nil || !bytes.Equal(canon, again) {
			t.Fatalf("canonical form is not stable:\n%s\n%s", canon, again)
		}
		for _, r := range requests {
			for _, grant := range []bool{false, true} {
				if d1, d2 := policy.Authorize(p, account, nil, grant, r), policy.Authorize(p2, account, nil, grant, r); d1 != d2 {
					t.Fatalf("%s %s: %v, but the canonical form decides %v\n%s", r.PrincipalARN, r.Action, d1, d2, canon)
				}
			}
			if d1, d2 := policy.Authorize(nil, account, []*policy.Policy{p}, false, r), policy.Authorize(nil, account, []*policy.Policy{p2}, false, r); d1 != d2 {
				t.Fatalf("as an identity policy, %s %s: %v, but the canonical form decides %v\n%s", r.PrincipalARN, r.Action, d1, d2, canon)
			}
			if d1, d2 := p.Evaluate(r), p2.Evaluate(r); d1 != d2 {
				t.Fatalf("Evaluate %s %s: %v, but the canonical form decides %v\n%s", r.PrincipalARN, r.Action, d1, d2, canon)
			}
		}
		e1 := policy.CheckLockout(p, keyARN, account, "arn:aws:iam::111122223333:user/alice", account, nil)
		e2 := policy.CheckLockout(p2, keyARN, account, "arn:aws:iam::111122223333:user/alice", account, nil)
		if (e1 == nil) != (e2 == nil) {
			t.Fatalf("lockout check: %v, but on the canonical form %v", e1, e2)
		}
	})
}

// worstRequests are requests at the limits the cost bound assumes, made to
// make patterns work: long values of one letter, a large encryption
// context with keys differing by case, long ARNs.
var worstRequests = func() []*policy.Request {
	long := strings.Repeat("a", 3000)
	big := map[string]string{"k": long, "K": long, "a": strings.Repeat("a", 1500)}
	for i := 0; len(big) < 300; i++ {
		big[fmt.Sprintf("a%d", i)] = "a"
	}
	user := "arn:aws:iam::111122223333:user/" + strings.Repeat("a", 500)
	var out []*policy.Request
	for _, ec := range []map[string]string{big, {"k": "a", "AppName": "aaaa"}} {
		for _, who := range []string{user, "arn:aws:iam::111122223333:root", "arn:aws:sts::111122223333:assumed-role/ExampleRole/s"} {
			out = append(out, &policy.Request{PrincipalARN: who, PrincipalAccount: account, Action: "kms:Decrypt", Resource: keyARN,
				Context: &policy.Context{EncryptionContext: ec, HasEncryptionContext: true, PrincipalARN: who, CallerAccount: account,
					Username: strings.Repeat("a", 64), ViaService: "ec2.us-east-1.amazonaws.com", RequestAlias: "alias/" + strings.Repeat("a", 200),
					TagKeys: []string{"a", "aa", strings.Repeat("a", 128)}, ResourceTags: []policy.Tag{{Key: "a", Value: strings.Repeat("a", 256)}, {Key: "A", Value: "a"}},
					GrantOperations: []string{"Decrypt", "Encrypt"}, SourceIP: netip.MustParseAddr("10.1.2.3"), CurrentTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}})
		}
	}
	return out
}()

// FuzzEvaluationCost checks the cost bound's promise (issue 19.9): every
// policy Parse accepts has a bound within policy.MaxEvaluationCost, and no
// request within the limits makes one evaluation of it count more steps
// than its bound (steps counted by the evaluator, not timed).
func FuzzEvaluationCost(f *testing.F) {
	f.Add([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringLike":{"kms:EncryptionContext:k":"*aaaa*b"}}}]}`), true)
	f.Fuzz(func(t *testing.T, doc []byte, keyPolicy bool) {
		kind := policy.IdentityPolicy
		if keyPolicy {
			kind = policy.KeyPolicy
		}
		p, err := policy.ParseStored(doc, kind)
		if err != nil {
			return
		}
		_, strictErr := policy.Parse(doc, kind)
		if (strictErr == nil) != (p.Cost() <= policy.MaxEvaluationCost) {
			t.Fatalf("cost %d, limit %d, Parse: %v", p.Cost(), policy.MaxEvaluationCost, strictErr)
		}
		if strictErr != nil && !strings.Contains(strictErr.Error(), "MaxEvaluationCost") {
			t.Fatalf("refused for its cost without naming the limit: %v", strictErr)
		}
		for _, r := range append(worstRequests[:len(worstRequests):len(worstRequests)], requests...) {
			steps := policy.CountSteps(func() {
				if keyPolicy {
					policy.Authorize(p, account, nil, false, r)
				} else {
					policy.AuthorizeIdentity([]*policy.Policy{p}, r)
				}
			})
			if steps > p.Cost() {
				t.Fatalf("%s: %d steps, bound %d\n%s", r.PrincipalARN, steps, p.Cost(), doc)
			}
		}
	})
}
