package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// ordinaryStatements are the statements of AWS's documented key and
// identity policies: the console's key policy, encryption context and
// grant conditions, and per-Region key ARNs.
var ordinaryStatements = []string{
	`{"Sid":"Admins%d","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/KeyAdmin%d"},"Action":["kms:Create*","kms:Describe*","kms:Enable*","kms:List*","kms:Put*","kms:Update*","kms:Revoke*","kms:Disable*","kms:Get*","kms:Delete*","kms:TagResource","kms:UntagResource","kms:ScheduleKeyDeletion","kms:CancelKeyDeletion"],"Resource":"*"}`,
	`{"Sid":"Use%d","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:user/alice%d","arn:aws:iam::111122223333:role/App"]},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*"}`,
	`{"Sid":"Context%d","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/Tenant%d"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:tenant":"acme"},"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["tenant","purpose"]}}}`,
	`{"Sid":"Grants%d","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/Svc%d"},"Action":["kms:CreateGrant","kms:ListGrants","kms:RevokeGrant"],"Resource":"*","Condition":{"Bool":{"kms:GrantIsForAWSResource":"true"},"StringLike":{"kms:ViaService":"ec2.*.amazonaws.com"}}}`,
	`{"Sid":"Deny%d","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"arn:aws:kms:*:111122223333:key/*","Condition":{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","192.168.%d.0/24"]},"StringNotEqualsIfExists":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/Break*"}}}`,
}

// ordinaryPolicy is a key policy of nearly MaxSize bytes made of
// ordinary statements.
func ordinaryPolicy() string {
	var b strings.Builder
	b.WriteString(`{"Version":"2012-10-17","Statement":[`)
	b.WriteString(`{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}`)
	for i := 0; ; i++ {
		st := "," + fmt.Sprintf(ordinaryStatements[i%len(ordinaryStatements)], i, i%250)
		if b.Len()+len(st)+2 > MaxSize {
			break
		}
		b.WriteString(st)
	}
	b.WriteString(`]}`)
	return b.String()
}

// AWS's largest key policies pass the bound when made of ordinary
// statements.
func TestCostOrdinaryMaxSizePolicyPasses(t *testing.T) {
	doc := ordinaryPolicy()
	p, err := Parse([]byte(doc), KeyPolicy)
	if err != nil {
		t.Fatalf("a %d-byte policy of ordinary statements: %.300v", len(doc), err)
	}
	t.Logf("%d bytes, %d statements: cost %d of %d", len(doc), len(p.statements), p.Cost(), MaxEvaluationCost)
	if p.Cost() > MaxEvaluationCost*3/4 {
		t.Errorf("cost %d leaves too little room under the limit %d", p.Cost(), MaxEvaluationCost)
	}
}

// globAtBound is a StringLike pattern whose segment between two stars
// holds a ?, so that it is searched position by position, and fails only at
// its last byte: the worst case of matchSegments, against a request's
// encryption context value of the same letter. Its length is the largest
// the bound accepts.
func globAtBound(t testing.TB) (string, *Policy) {
	t.Helper()
	mk := func(l int) string {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringLike":{"kms:EncryptionContext:k":"*` + strings.Repeat("a", l) + `?b*"}}}]}`
	}
	lo, hi := 1, 4096
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if _, err := Parse([]byte(mk(mid)), KeyPolicy); err == nil {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	doc := mk(lo)
	return doc, mustParse(t, doc, KeyPolicy)
}

// worstRequest is a request at the limits the bound assumes, made to
// match globAtBound's pattern as slowly as possible.
func worstRequest() *Request {
	ec := map[string]string{"k": strings.Repeat("a", MaxEncryptionContextBytes-1)}
	return req(alice, "kms:Decrypt", &Context{EncryptionContext: ec, HasEncryptionContext: true})
}

// A policy just over the bound is refused with a MalformedError naming
// the limit; the pattern one byte shorter is accepted and evaluates within
// its bound.
func TestCostBoundRefusesAndAccepts(t *testing.T) {
	doc, p := globAtBound(t)
	if p.Cost() > MaxEvaluationCost {
		t.Fatalf("accepted a policy of cost %d", p.Cost())
	}
	over := strings.Replace(doc, "*a", "*aa", 1)
	_, err := Parse([]byte(over), KeyPolicy)
	var me *MalformedError
	if !errors.As(err, &me) || !strings.Contains(me.Msg, "MaxEvaluationCost") || !strings.Contains(me.Msg, fmt.Sprint(MaxEvaluationCost)) {
		t.Fatalf("a policy over the bound: %v", err)
	}
	if _, err := Parse([]byte(`{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*","Condition":`+over[strings.Index(over, `{"StringLike"`):len(over)-4]+`}}`), IdentityPolicy); !errors.As(err, &me) {
		t.Fatalf("an identity policy over the bound: %v", err)
	}
	if _, err := ParseStored([]byte(over), KeyPolicy); err != nil {
		t.Fatalf("a stored policy over the bound must still compile: %v", err)
	}
	r := worstRequest()
	steps := CountSteps(func() { p.Evaluate(r) })
	if steps > p.Cost() || steps < p.Cost()/2 {
		t.Fatalf("the policy at the bound took %d steps; its bound is %d", steps, p.Cost())
	}
}

// The 140 ms policy of issue 19.9: many conditions of long wildcard
// patterns. It is refused.
func TestCostPathologicalPolicyRefused(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"Version":"2012-10-17","Statement":[`)
	for i := 0; i < 40; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"Sid":"s%d","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringLike":{"kms:EncryptionContext:k%d":"*%sb*"}}}`, i, i, strings.Repeat("a", 700))
	}
	b.WriteString(`]}`)
	if _, err := Parse([]byte(b.String()), KeyPolicy); !errors.Is(err, ErrMalformed) {
		t.Fatalf("pathological policy: %v", err)
	}
}

// Counted work never exceeds the bound, for policies of every operator
// family against requests at the limits.
func TestCostCountedWithinBound(t *testing.T) {
	docs := []string{defaultPolicy, threeStatements, conditions, ordinaryPolicy(),
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"arn:aws:kms:*:${aws:PrincipalAccount}:key/*","Condition":{
			"StringLike":{"kms:EncryptionContext:K":["*a?a*","${kms:EncryptionContext:k}*"]},"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/${aws:username}*"},
			"ForAnyValue:StringLike":{"kms:EncryptionContextKeys":"*k*","aws:TagKeys":"*"},"NumericLessThan":{"kms:EncryptionContext:n":"5"},
			"DateGreaterThan":{"kms:EncryptionContext:d":"2020-01-01"},"IpAddress":{"kms:EncryptionContext:ip":"10.0.0.0/8"},"StringEqualsIgnoreCase":{"aws:ResourceTag/Team":"X"}}}}`,
	}
	big := map[string]string{"k": strings.Repeat("a", 3000), "K": strings.Repeat("a", 3000)}
	for i := 0; len(big) < 600; i++ {
		big[fmt.Sprintf("k%03d", i)] = "aa"
	}
	small := map[string]string{"k": "aaaa", "n": "3", "d": "2021-01-01", "ip": "10.1.1.1", "tenant": "acme"}
	tags := []Tag{{"team", "x"}, {"TEAM", "y"}}
	for _, doc := range docs {
		// ParseStored: the bound must hold for every compiled policy, not
		// only for those under the limit.
		p, err := ParseStored([]byte(doc), KeyPolicy)
		if err != nil {
			t.Fatal(err)
		}
		for _, ec := range []map[string]string{nil, small, big} {
			for _, who := range []string{alice, root, session, mallory} {
				r := req(who, "kms:Decrypt", &Context{EncryptionContext: ec, HasEncryptionContext: ec != nil, ResourceTags: tags, TagKeys: []string{"a", "b"}, Username: "alice"})
				steps := CountSteps(func() { Authorize(p, acct, nil, false, r) })
				if steps > p.Cost() {
					t.Errorf("%.60s… for %s: %d steps, bound %d", doc, who, steps, p.Cost())
				}
			}
		}
	}
}

// A request beyond the limits the bound assumes is denied.
func TestCostRequestBeyondLimitsDenied(t *testing.T) {
	p := keyPolicy(t, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}`)
	huge := map[string]string{"k": strings.Repeat("v", MaxEncryptionContextBytes)}
	for name, r := range map[string]*Request{
		"context":  req(alice, "kms:Decrypt", &Context{EncryptionContext: huge}),
		"tag keys": req(alice, "kms:UntagResource", &Context{TagKeys: make([]string, MaxRequestListValues+1)}),
		"username": req(alice, "kms:Decrypt", &Context{Username: strings.Repeat("u", MaxRequestNameBytes+1)}),
	} {
		if d := Authorize(p, acct, nil, false, r); d != Deny {
			t.Errorf("%s beyond the limits: %v", name, d)
		}
	}
	if d := Authorize(p, acct, nil, false, req(alice, "kms:Decrypt", nil)); d != Allow {
		t.Fatalf("an ordinary request: %v", d)
	}
}
