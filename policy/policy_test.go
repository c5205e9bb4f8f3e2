package policy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const (
	acct    = "111122223333"
	other   = "444455556666"
	root    = "arn:aws:iam::111122223333:root"
	alice   = "arn:aws:iam::111122223333:user/alice"
	bob     = "arn:aws:iam::111122223333:user/bob"
	mallory = "arn:aws:iam::444455556666:user/mallory"
	keyARN  = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

func mustParse(t testing.TB, doc string, kind Kind) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc), kind)
	if err != nil {
		t.Fatalf("parse %s: %v", doc, err)
	}
	return p
}

func req(principal, action string, ctx *Context) *Request {
	account := strings.Split(principal, ":")[4]
	if ctx == nil {
		ctx = &Context{}
	}
	ctx.CallerAccount, ctx.PrincipalARN = account, principal
	return &Request{PrincipalARN: principal, PrincipalAccount: account, Action: action, Resource: keyARN, Context: ctx}
}

const defaultPolicy = `{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`

func TestAuthorizeMatrix(t *testing.T) {
	aliceUse := mustParse(t, `{"Statement":{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}}`, IdentityPolicy)
	denyDecrypt := mustParse(t, `{"Statement":{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}}`, IdentityPolicy)
	otherKeyOnly := mustParse(t, `{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"arn:aws:kms:*:*:key/other"}}`, IdentityPolicy)
	direct := `{"Statement":[
		{"Sid":"root","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"},
		{"Sid":"bob","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:Encrypt","Resource":"*"},
		{"Sid":"mallory","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:user/mallory"},"Action":["kms:Decrypt","kms:Encrypt"],"Resource":"*"},
		{"Sid":"nodisable","Effect":"Deny","Principal":"*","Action":"kms:Disable*","Resource":"*"}]}`
	for _, c := range []struct {
		name      string
		keyPolicy string
		principal string
		identity  []*Policy
		grant     bool
		action    string
		want      Decision
	}{
		{"root via default policy", defaultPolicy, root, nil, false, "kms:Encrypt", Allow},
		{"user with identity allow", defaultPolicy, alice, []*Policy{aliceUse}, false, "kms:Encrypt", Allow},
		{"user, action not in identity", defaultPolicy, alice, []*Policy{aliceUse}, false, "kms:ScheduleKeyDeletion", NotApplicable},
		{"user without identity policy", defaultPolicy, alice, nil, false, "kms:Encrypt", NotApplicable},
		{"identity deny beats allow", defaultPolicy, alice, []*Policy{aliceUse, denyDecrypt}, false, "kms:Decrypt", Deny},
		{"identity scoped to another key", defaultPolicy, alice, []*Policy{otherKeyOnly}, false, "kms:Encrypt", NotApplicable},
		{"grant alone", defaultPolicy, alice, nil, true, "kms:Decrypt", Allow},
		{"grant does not beat deny", defaultPolicy, alice, []*Policy{denyDecrypt}, true, "kms:Decrypt", Deny},
		{"key policy names user directly", direct, bob, nil, false, "kms:Encrypt", Allow},
		{"directly named, other action, no IAM", direct, bob, nil, false, "kms:Decrypt", NotApplicable},
		{"key policy deny beats root", direct, root, nil, false, "kms:DisableKey", Deny},
		{"key policy deny beats identity allow", direct, alice, []*Policy{mustParse(t, `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, IdentityPolicy)}, false, "kms:DisableKeyRotation", Deny},
		{"cross-account needs own IAM", direct, mallory, nil, false, "kms:Decrypt", NotApplicable},
		{"cross-account with own IAM", direct, mallory, []*Policy{aliceUse}, false, "kms:Decrypt", Allow},
		{"cross-account not in key policy", defaultPolicy, mallory, []*Policy{aliceUse}, false, "kms:Decrypt", NotApplicable},
		{"action case-insensitive", direct, bob, nil, false, "KMS:ENCRYPT", Allow},
	} {
		t.Run(c.name, func(t *testing.T) {
			kp := mustParse(t, c.keyPolicy, KeyPolicy)
			got := Authorize(kp, acct, c.identity, c.grant, req(c.principal, c.action, nil))
			if got != c.want {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestNotElements(t *testing.T) {
	p := mustParse(t, `{"Statement":[
		{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"NotAction":["kms:Schedule*","kms:Disable*"],"NotResource":"arn:aws:kms:*:*:key/secret"}]}`, KeyPolicy)
	check := func(principal, action, resource string, want Decision) {
		t.Helper()
		r := req(principal, action, nil)
		r.Resource = resource
		if got := Authorize(p, acct, nil, false, r); got != want {
			t.Fatalf("%s %s %s: %v, want %v", principal, action, resource, got, want)
		}
	}
	check(alice, "kms:Encrypt", keyARN, Allow)
	check(bob, "kms:Encrypt", keyARN, NotApplicable)
	check(alice, "kms:ScheduleKeyDeletion", keyARN, NotApplicable)
	check(alice, "kms:Encrypt", "arn:aws:kms:us-east-1:111122223333:key/secret", NotApplicable)
}

func TestConditionOperators(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	ctx := func() *Context {
		return &Context{
			EncryptionContext: map[string]string{"Department": "IT", "project": "alpha-7"}, HasEncryptionContext: true,
			EncryptionAlgorithm: "SYMMETRIC_DEFAULT", GrantOperations: []string{"Decrypt", "Encrypt"},
			RequestAlias: "alias/app", ResourceAliases: []string{"alias/app", "alias/other"}, KeySpec: "SYMMETRIC_DEFAULT",
			KeyUsage: "ENCRYPT_DECRYPT", KeyOrigin: "AWS_KMS", SourceIP: netip.MustParseAddr("10.1.2.3"),
			SecureTransport: false, HasTransport: true, CurrentTime: at,
			Extra: map[string][]string{"kms:rotationperiodindays": {"180"}},
		}
	}
	for _, c := range []struct {
		cond string
		want bool
	}{
		{`{"StringEquals":{"kms:EncryptionContext:Department":"IT"}}`, true},
		{`{"StringEquals":{"kms:EncryptionContext:department":"IT"}}`, false}, // context keys are case-sensitive
		{`{"StringEquals":{"KMS:ENCRYPTIONCONTEXT:Department":"IT"}}`, true},  // the prefix is not
		{`{"StringEquals":{"kms:EncryptionContext:Department":["HR","IT"]}}`, true},
		{`{"StringNotEquals":{"kms:EncryptionContext:Department":"IT"}}`, false},
		{`{"StringNotEquals":{"kms:EncryptionContext:Missing":"IT"}}`, true},
		{`{"StringEqualsIgnoreCase":{"kms:EncryptionContext:Department":"it"}}`, true},
		{`{"StringNotEqualsIgnoreCase":{"kms:EncryptionContext:Department":"it"}}`, false},
		{`{"StringLike":{"kms:EncryptionContext:project":"alpha-?"}}`, true},
		{`{"StringLike":{"kms:EncryptionContext:project":"beta*"}}`, false},
		{`{"StringNotLike":{"kms:EncryptionContext:project":"beta*"}}`, true},
		{`{"StringEquals":{"kms:EncryptionContext:Missing":"x"}}`, false},
		{`{"StringEqualsIfExists":{"kms:EncryptionContext:Missing":"x"}}`, true},
		{`{"StringEqualsIfExists":{"kms:EncryptionContext:Department":"HR"}}`, false},
		{`{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["Department","project","extra"]}}`, true},
		{`{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["Department"]}}`, false},
		{`{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":["Department"]}}`, true},
		{`{"ForAnyValue:StringEquals":{"kms:GrantOperations":["Sign"]}}`, false},
		{`{"ForAllValues:StringEquals":{"kms:GrantOperations":["Decrypt","Encrypt","ReEncryptFrom"]}}`, true},
		{`{"StringEquals":{"kms:EncryptionAlgorithm":"SYMMETRIC_DEFAULT","kms:KeySpec":"SYMMETRIC_DEFAULT"}}`, true},
		{`{"StringEquals":{"kms:KeyUsage":"SIGN_VERIFY"}}`, false},
		{`{"StringEquals":{"kms:KeyOrigin":"AWS_KMS","kms:CallerAccount":"111122223333"}}`, true},
		{`{"StringEquals":{"kms:RequestAlias":"alias/app"}}`, true},
		{`{"ForAnyValue:StringLike":{"kms:ResourceAliases":"alias/oth*"}}`, true},
		{`{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/alice"}}`, true},
		{`{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/a*"}}`, true},
		{`{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/a*"}}`, false},
		{`{"Bool":{"aws:SecureTransport":"false"}}`, true},
		{`{"Bool":{"aws:SecureTransport":true}}`, false},
		{`{"Bool":{"kms:GrantIsForAWSResource":"true"}}`, false},
		{`{"NumericLessThanEquals":{"kms:RotationPeriodInDays":"180"}}`, true},
		{`{"NumericGreaterThan":{"kms:RotationPeriodInDays":365}}`, false},
		{`{"NumericNotEquals":{"kms:RotationPeriodInDays":"90"}}`, true},
		{`{"DateLessThan":{"aws:CurrentTime":"2027-01-01T00:00:00Z"}}`, true},
		{`{"DateGreaterThan":{"aws:CurrentTime":"2027-01-01"}}`, false},
		{`{"DateGreaterThanEquals":{"aws:CurrentTime":"1795000000"}}`, true},
		{`{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, true},
		{`{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","192.168.0.1"]}}`, false},
		{`{"IpAddress":{"aws:SourceIp":"192.168.0.0/16"}}`, false},
		{`{"Null":{"kms:EncryptionContext:Missing":"true"}}`, true},
		{`{"Null":{"kms:EncryptionContext:Department":"true"}}`, false},
		{`{"Null":{"kms:ViaService":"false"}}`, false},
		{`{"StringEquals":{"kms:EncryptionContext:Department":"IT"},"Bool":{"aws:SecureTransport":"true"}}`, false}, // operators AND
	} {
		p := mustParse(t, `{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*","Condition":`+c.cond+`}}`, IdentityPolicy)
		got := p.Evaluate(req(alice, "kms:Decrypt", ctx())) == Allow
		if got != c.want {
			t.Errorf("%s: %v, want %v", c.cond, got, c.want)
		}
	}
}

func TestMalformed(t *testing.T) {
	for doc, want := range map[string]string{
		`{`:                        "not valid JSON",
		`[]`:                       "not valid JSON",
		`{"Version":"2012-10-17"}`: "must contain a Statement",
		`{"Version":"2020-01-01","Statement":[]}`:                                                                                                     "Version",
		`{"Statement":[{"Principal":"*","Action":"kms:*","Resource":"*"}]}`:                                                                           "no Effect",
		`{"Statement":[{"Effect":"Permit","Principal":"*","Action":"kms:*","Resource":"*"}]}`:                                                         "Effect",
		`{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`:                                                                          "no Principal",
		`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"kms:*","Resource":"*"}]}`:                                                "invalid principals",
		`{"Statement":[{"Effect":"Allow","Principal":"*","Resource":"*"}]}`:                                                                           "must contain actions",
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"Encrypt","Resource":"*"}]}`:                                                        "no service prefix",
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","NotAction":"kms:X","Resource":"*"}]}`:                                      "both Action and NotAction",
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEqualz":{"a:b":"c"}}}]}`:                 "Unknown condition operator: StringEqualz",
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"NumericEquals":{"a:b":"x"}}}]}`:                "not a number",
		`{"Statement":[{"Sid":"a","Effect":"Allow","Principal":"*","Action":"kms:*"},{"Sid":"a","Effect":"Allow","Principal":"*","Action":"kms:*"}]}`: "unique",
		`{"Statement":[],"Foo":1}`: "unsupported element: Foo",
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Bogus":1}]}`: "unsupported element",
		`{"Statement":[]} {}`: "after the JSON",
	} {
		_, err := Parse([]byte(doc), KeyPolicy)
		var me *MalformedError
		if !errors.As(err, &me) || !errors.Is(err, ErrMalformed) || !strings.Contains(me.Msg, want) {
			t.Errorf("%s: %v, want a message containing %q", doc, err, want)
		}
	}
	big := `{"Statement":[],"Id":"` + strings.Repeat("x", MaxSize) + `"}`
	if _, err := Parse([]byte(big), KeyPolicy); err == nil || !strings.Contains(err.Error(), "maximum size") {
		t.Fatalf("oversize: %v", err)
	}
	if _, err := Parse([]byte(`{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}`), IdentityPolicy); err == nil {
		t.Fatal("identity policy with a Principal accepted")
	}
}

func TestStatementWithoutResourceIsIneffective(t *testing.T) {
	p := mustParse(t, `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*"}}`, KeyPolicy)
	if Authorize(p, acct, nil, false, req(root, "kms:Encrypt", nil)) != NotApplicable {
		t.Fatal("a statement without Resource allowed something")
	}
}

func TestLockout(t *testing.T) {
	ok := mustParse(t, defaultPolicy, KeyPolicy)
	if err := CheckLockout(ok, keyARN, acct, root, acct, nil); err != nil {
		t.Fatal(err)
	}
	admin := mustParse(t, `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, IdentityPolicy)
	if err := CheckLockout(ok, keyARN, acct, alice, acct, []*Policy{admin}); err != nil {
		t.Fatal(err)
	}
	onlyBob := mustParse(t, `{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:*","Resource":"*"}}`, KeyPolicy)
	if err := CheckLockout(onlyBob, keyARN, acct, alice, acct, []*Policy{admin}); !errors.Is(err, ErrLockout) {
		t.Fatalf("a policy that shuts the caller out passed: %v", err)
	}
}

func TestMarshalIsCanonical(t *testing.T) {
	p := mustParse(t, `{"Version":"2012-10-17","Statement":[{"Sid":"s","Effect":"Deny","Principal":{"AWS":["111122223333","arn:aws:iam::111122223333:user/bob"],"Service":"logs.amazonaws.com"},"Action":"KMS:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:A":["x","y"]},"Bool":{"aws:SecureTransport":"false"}}}]}`, KeyPolicy)
	a, err := p.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := mustParse(t, string(a), KeyPolicy).MarshalJSON()
	if string(a) != string(b) {
		t.Fatalf("not canonical:\n%s\n%s", a, b)
	}
}

func BenchmarkEvaluate(b *testing.B) {
	three := mustParse(b, `{"Version":"2012-10-17","Statement":[
		{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
		{"Sid":"Allow use of the key","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*"},
		{"Sid":"Allow attachment of persistent resources","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":["kms:CreateGrant","kms:ListGrants","kms:RevokeGrant"],"Resource":"*","Condition":{"Bool":{"kms:GrantIsForAWSResource":"true"}}}]}`, KeyPolicy)
	conds := mustParse(b, `{"Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:tenant":"acme","kms:CallerAccount":"111122223333"},"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["tenant","purpose"]}}},
		{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`, KeyPolicy)
	identity := []*Policy{mustParse(b, `{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}`, IdentityPolicy)}
	for _, c := range []struct {
		name     string
		p        *Policy
		identity []*Policy
		r        *Request
		want     Decision
	}{
		{"policy=default", mustParse(b, defaultPolicy, KeyPolicy), identity, req(alice, "kms:Encrypt", nil), Allow},
		{"policy=three-statements", three, nil, req(alice, "kms:GenerateDataKey", nil), Allow},
		{"policy=conditions", conds, nil, req(alice, "kms:Decrypt", &Context{EncryptionContext: map[string]string{"tenant": "acme", "purpose": "x"}, HasEncryptionContext: true, HasTransport: true, SecureTransport: true}), Allow},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if Authorize(c.p, acct, c.identity, false, c.r) != c.want {
					b.Fatal("wrong decision")
				}
			}
		})
	}
}

// An identity policy handed to Authorize as a key policy names no one.
func TestIdentityPolicyAsKeyPolicyNamesNoOne(t *testing.T) {
	p := mustParse(t, `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`, IdentityPolicy)
	if d := Authorize(p, acct, nil, false, req(alice, "kms:Encrypt", nil)); d != NotApplicable {
		t.Fatalf("got %v", d)
	}
}
