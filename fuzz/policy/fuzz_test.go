// Package policy fuzzes the policy parser: any document either fails with
// a MalformedError or compiles to a policy whose canonical form parses back
// to the same canonical form, and evaluating it never panics.
package policy

import (
	"bytes"
	"errors"
	"testing"

	"github.com/coffer-kms/coffer/policy"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}]}`), true)
	f.Fuzz(func(t *testing.T, doc []byte, keyPolicy bool) {
		kind := policy.IdentityPolicy
		if keyPolicy {
			kind = policy.KeyPolicy
		}
		p, err := policy.Parse(doc, kind)
		if err != nil {
			var me *policy.MalformedError
			if !errors.As(err, &me) || !errors.Is(err, policy.ErrMalformed) {
				t.Fatalf("parse error %v is not a MalformedError", err)
			}
			if len(me.Msg) == 0 {
				t.Fatal("a MalformedError with no message")
			}
			return
		}
		canon, err := p.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		p2, err := policy.Parse(canon, kind)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, canon)
		}
		again, _ := p2.MarshalJSON()
		if !bytes.Equal(canon, again) {
			t.Fatalf("canonical form is not stable:\n%s\n%s", canon, again)
		}
		r := &policy.Request{PrincipalARN: "arn:aws:iam::111122223333:user/alice", PrincipalAccount: "111122223333",
			Action: "kms:Decrypt", Resource: "arn:aws:kms:us-east-1:111122223333:key/k",
			Context: &policy.Context{EncryptionContext: map[string]string{"a": "b"}, HasEncryptionContext: true, CallerAccount: "111122223333"}}
		d1 := policy.Authorize(p, "111122223333", nil, false, r)
		d2 := policy.Authorize(p2, "111122223333", nil, false, r)
		if d1 != d2 {
			t.Fatalf("canonical form decides differently: %v vs %v", d1, d2)
		}
	})
}
