package policy

import (
	"reflect"
	"testing"
)

func TestMarshalCanonical(t *testing.T) {
	p := keyPolicy(t, `{"Id":"k","Statement":{"Sid":"s","Effect":"Deny",
		"Principal":{"Service":"logs.amazonaws.com","AWS":["111122223333","arn:aws:iam::111122223333:user/bob"]},
		"Action":"KMS:Decrypt","Resource":"*",
		"Condition":{"StringEquals":{"kms:EncryptionContext:A":["x","y"],"kms:CallerAccount":111122223333},"Bool":{"aws:SecureTransport":false}}}}`)
	got, err := p.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"Id":"k","Statement":[{"Sid":"s","Effect":"Deny",` +
		`"Principal":{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::111122223333:user/bob"],"Service":["logs.amazonaws.com"]},` +
		`"Action":["KMS:Decrypt"],"Resource":["*"],` +
		`"Condition":{"StringEquals":{"kms:EncryptionContext:A":["x","y"],"kms:CallerAccount":["111122223333"]},"Bool":{"aws:SecureTransport":["false"]}}}]}`
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// Parsing the canonical form compiles to the same policy, for a spread of
// real-world documents.
func TestMarshalRoundTrip(t *testing.T) {
	for _, c := range []struct {
		doc  string
		kind Kind
	}{
		{defaultPolicy, KeyPolicy},
		{string(DefaultKeyPolicy(acct)), KeyPolicy},
		{`{"Statement":[]}`, KeyPolicy},
		{`{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":"*","NotAction":"kms:Schedule*","NotResource":"arn:aws:kms:*:*:key/x"}}`, KeyPolicy},
		{`{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333","Federated":"cognito-identity.amazonaws.com"},"Action":"kms:*"}}`, KeyPolicy},
		{`{"Statement":{"Sid":"quote\"and\\slash<>&","Effect":"Allow","Principal":"*","Resource":"*"}}`, KeyPolicy},
		{`{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*","Condition":{
			"ForAnyValue:StringLikeIfExists":{"kms:ResourceAliases":["alias/a*","alias/b?"]},
			"NumericLessThan":{"kms:RotationPeriodInDays":[1.5e2,"200"]},
			"DateGreaterThan":{"aws:CurrentTime":["2020-01-01","1700000000"]},
			"IpAddress":{"aws:SourceIp":["10.0.0.0/8","::1"]},
			"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/*"},
			"Null":{"kms:ViaService":["True"]},
			"Bool":{"aws:SecureTransport":"TRUE"}}}}`, IdentityPolicy},
		{`{"Statement":{"Sid":"\u00e9\u2028\u0001","Effect":"Allow","Action":"kms:*","Resource":"*"}}`, IdentityPolicy},
	} {
		p := mustParse(t, c.doc, c.kind)
		canon, err := p.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		p2 := mustParse(t, string(canon), c.kind)
		if !reflect.DeepEqual(p, p2) {
			t.Errorf("%s: canonical form %s compiles differently", c.doc, canon)
		}
		again, _ := p2.MarshalJSON()
		if string(again) != string(canon) {
			t.Errorf("canonical form not stable:\n%s\n%s", canon, again)
		}
	}
}
