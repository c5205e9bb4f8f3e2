package policy

import (
	"net/netip"
	"testing"
	"time"
)

var at = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// testContext is a request context with every kind of key present.
func testContext() *Context {
	return &Context{
		EncryptionContext:    map[string]string{"Department": "IT", "project": "alpha-7", "empty": ""},
		HasEncryptionContext: true,
		EncryptionAlgorithm:  "SYMMETRIC_DEFAULT",
		GrantOperations:      []string{"Decrypt", "Encrypt"},
		GranteePrincipal:     "arn:aws:iam::111122223333:role/App",
		IsGrantRequest:       true,
		RetiringPrincipal:    "arn:aws:iam::111122223333:role/Janitor",
		GrantConstraintType:  "EncryptionContextSubset",
		ReEncryptOnSameKey:   true, HasReEncryptOnSameKey: true,
		RequestAlias:    "alias/app",
		ResourceAliases: []string{"alias/app", "alias/other"},
		KeySpec:         "SYMMETRIC_DEFAULT",
		KeyUsage:        "ENCRYPT_DECRYPT",
		KeyOrigin:       "AWS_KMS",
		ViaService:      "ec2.us-east-1.amazonaws.com",
		SourceIP:        netip.MustParseAddr("10.1.2.3"),
		HasTransport:    true,
		CurrentTime:     at,
		Extra: map[string][]string{
			"kms:rotationperiodindays": {"180"},
			"aws:mixedcase":            {"v"},
			"aws:expiry":               {"2026-12-01T00:00:00Z"},
			"aws:peerip":               {"192.0.2.7"},
		},
	}
}

// condHolds evaluates one Condition element for alice's Decrypt request.
func condHolds(t *testing.T, cond string, ctx *Context) bool {
	t.Helper()
	p := identityPolicy(t, `{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*","Condition":`+cond+`}}`)
	return p.Evaluate(req(alice, "kms:Decrypt", ctx)) == Allow
}

func TestConditionOperators(t *testing.T) {
	for _, c := range []struct {
		cond string
		want bool
	}{
		// String*
		{`{"StringEquals":{"kms:EncryptionContext:Department":"IT"}}`, true},
		{`{"StringEquals":{"kms:EncryptionContext:Department":"it"}}`, false},
		{`{"StringEquals":{"kms:EncryptionContext:Department":["HR","IT"]}}`, true},
		{`{"StringEquals":{"kms:EncryptionContext:empty":""}}`, true},
		{`{"StringEquals":{"kms:EncryptionContext:Missing":"x"}}`, false},
		{`{"StringNotEquals":{"kms:EncryptionContext:Department":"IT"}}`, false},
		{`{"StringNotEquals":{"kms:EncryptionContext:Department":["HR","Sales"]}}`, true},
		{`{"StringNotEquals":{"kms:EncryptionContext:Missing":"IT"}}`, true}, // negated operators hold on absent keys
		{`{"StringEqualsIgnoreCase":{"kms:EncryptionContext:Department":"it"}}`, true},
		{`{"StringEqualsIgnoreCase":{"kms:EncryptionContext:Department":"hr"}}`, false},
		{`{"StringNotEqualsIgnoreCase":{"kms:EncryptionContext:Department":"it"}}`, false},
		{`{"StringNotEqualsIgnoreCase":{"kms:EncryptionContext:Department":"hr"}}`, true},
		{`{"StringLike":{"kms:EncryptionContext:project":"alpha-?"}}`, true},
		{`{"StringLike":{"kms:EncryptionContext:project":"*-7"}}`, true},
		{`{"StringLike":{"kms:EncryptionContext:project":"Alpha*"}}`, false}, // case-sensitive
		{`{"StringNotLike":{"kms:EncryptionContext:project":"beta*"}}`, true},
		{`{"StringNotLike":{"kms:EncryptionContext:project":["beta*","alpha*"]}}`, false},
		// Arn*: each part separately; a star does not cross a colon between parts
		{`{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/alice"}}`, true},
		{`{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/a*"}}`, true},
		{`{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/?lice"}}`, true},
		{`{"ArnLike":{"aws:PrincipalArn":"arn:aws:*:user/alice"}}`, false},
		{`{"ArnLike":{"aws:PrincipalArn":"arn:*:*:*:*:*"}}`, true},
		{`{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/*"}}`, false},
		{`{"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/bob"}}`, true},
		{`{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/a*"}}`, false},
		{`{"ArnLike":{"kms:EncryptionContext:Department":"*"}}`, true}, // fewer than six parts: a whole-string pattern
		{`{"ArnLike":{"kms:EncryptionContext:Department":"arn:*:*:*:*:*"}}`, false},
		// Bool
		{`{"Bool":{"aws:SecureTransport":"false"}}`, true},
		{`{"Bool":{"aws:SecureTransport":"FALSE"}}`, true},
		{`{"Bool":{"aws:SecureTransport":true}}`, false},
		{`{"Bool":{"kms:GrantIsForAWSResource":"false"}}`, true},
		{`{"Bool":{"kms:GrantIsForAWSResource":"true"}}`, false},
		// Numeric*
		{`{"NumericEquals":{"kms:RotationPeriodInDays":"180"}}`, true},
		{`{"NumericEquals":{"kms:RotationPeriodInDays":180.0}}`, true},
		{`{"NumericEquals":{"kms:RotationPeriodInDays":1.8e2}}`, true},
		{`{"NumericNotEquals":{"kms:RotationPeriodInDays":"90"}}`, true},
		{`{"NumericNotEquals":{"kms:RotationPeriodInDays":["90","180"]}}`, false},
		{`{"NumericLessThan":{"kms:RotationPeriodInDays":"180"}}`, false},
		{`{"NumericLessThan":{"kms:RotationPeriodInDays":"180.5"}}`, true},
		{`{"NumericLessThanEquals":{"kms:RotationPeriodInDays":"180"}}`, true},
		{`{"NumericGreaterThan":{"kms:RotationPeriodInDays":365}}`, false},
		{`{"NumericGreaterThan":{"kms:RotationPeriodInDays":-1}}`, true},
		{`{"NumericGreaterThanEquals":{"kms:RotationPeriodInDays":"180"}}`, true},
		{`{"NumericEquals":{"kms:EncryptionContext:Department":"1"}}`, false}, // not a number
		// Date*, against the typed time and against strings
		{`{"DateEquals":{"aws:CurrentTime":"2026-11-23T12:00:00Z"}}`, true},
		{`{"DateEquals":{"aws:CurrentTime":"2026-11-23T13:00:00+01:00"}}`, true},
		{`{"DateNotEquals":{"aws:CurrentTime":"2026-11-23T12:00:00Z"}}`, false},
		{`{"DateLessThan":{"aws:CurrentTime":"2027-01-01T00:00:00Z"}}`, true},
		{`{"DateLessThan":{"aws:CurrentTime":"2026-11-23T12:00:00Z"}}`, false},
		{`{"DateLessThanEquals":{"aws:CurrentTime":"2026-11-23T12:00:00Z"}}`, true},
		{`{"DateGreaterThan":{"aws:CurrentTime":"2027-01-01"}}`, false},
		{`{"DateGreaterThan":{"aws:CurrentTime":"2026-11-23"}}`, true},
		{`{"DateGreaterThanEquals":{"aws:CurrentTime":"1795000000"}}`, true},
		{`{"DateGreaterThanEquals":{"aws:CurrentTime":1795000000}}`, true},
		{`{"DateLessThan":{"aws:Expiry":"2026-12-02"}}`, true},
		{`{"DateLessThan":{"aws:Expiry":"2026-11-30"}}`, false},
		{`{"DateLessThan":{"kms:EncryptionContext:Department":"2026-11-30"}}`, false}, // not a date
		// IpAddress, NotIpAddress
		{`{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, true},
		{`{"IpAddress":{"aws:SourceIp":"10.1.2.3"}}`, true},
		{`{"IpAddress":{"aws:SourceIp":"::ffff:10.0.0.0/104"}}`, true},
		{`{"IpAddress":{"aws:SourceIp":"192.168.0.0/16"}}`, false},
		{`{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}`, false},
		{`{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","192.168.0.1"]}}`, false},
		{`{"NotIpAddress":{"aws:SourceIp":"192.168.0.0/16"}}`, true},
		{`{"IpAddress":{"aws:PeerIp":"192.0.2.0/24"}}`, true},
		{`{"IpAddress":{"kms:EncryptionContext:Department":"0.0.0.0/0"}}`, false}, // not an address
		// String operators on typed keys see their text
		{`{"StringEquals":{"aws:SourceIp":"10.1.2.3"}}`, true},
		{`{"StringLike":{"aws:CurrentTime":"2026-11-23T*"}}`, true},
		// BinaryEquals compares the base64 text
		{`{"BinaryEquals":{"kms:EncryptionContext:Department":"IT"}}`, true},
		// Null: true means absent
		{`{"Null":{"kms:EncryptionContext:Missing":"true"}}`, true},
		{`{"Null":{"kms:EncryptionContext:Department":"true"}}`, false},
		{`{"Null":{"kms:EncryptionContext:Department":"false"}}`, true},
		{`{"Null":{"kms:ViaService":false}}`, true},
		{`{"Null":{"aws:Unknown":"false"}}`, false},
		{`{"Null":{"aws:Unknown":["true","false"]}}`, true},
		// several keys and several operators must all hold
		{`{"StringEquals":{"kms:EncryptionAlgorithm":"SYMMETRIC_DEFAULT","kms:KeySpec":"SYMMETRIC_DEFAULT"}}`, true},
		{`{"StringEquals":{"kms:EncryptionAlgorithm":"SYMMETRIC_DEFAULT","kms:KeySpec":"RSA_2048"}}`, false},
		{`{"StringEquals":{"kms:EncryptionContext:Department":"IT"},"Bool":{"aws:SecureTransport":"true"}}`, false},
	} {
		if got := condHolds(t, c.cond, testContext()); got != c.want {
			t.Errorf("%s: %v, want %v", c.cond, got, c.want)
		}
	}
}

func TestConditionKeys(t *testing.T) {
	for _, c := range []struct {
		cond string
		want bool
	}{
		// AWS: "The key name is not case sensitive" (issue 19.3 corrected
		// this row, which had the context key case-sensitive).
		{`{"StringEquals":{"kms:EncryptionContext:department":"IT"}}`, true},
		{`{"StringEquals":{"kms:EncryptionContext:DEPARTMENT":"it"}}`, false}, // the value follows the operator
		{`{"StringEquals":{"KMS:ENCRYPTIONCONTEXT:Department":"IT"}}`, true},  // the rest of the name is not
		{`{"StringEquals":{"KMS:CallerAccount":"111122223333"}}`, true},
		{`{"StringEquals":{"aws:PrincipalAccount":"111122223333"}}`, true},
		{`{"StringEquals":{"aws:principalarn":"arn:aws:iam::111122223333:user/alice"}}`, true},
		{`{"StringEquals":{"kms:EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}`, true},
		{`{"StringEquals":{"kms:GranteePrincipal":"arn:aws:iam::111122223333:role/App"}}`, true},
		{`{"StringEquals":{"kms:RequestAlias":"alias/app"}}`, true},
		{`{"StringEquals":{"kms:KeySpec":"SYMMETRIC_DEFAULT"}}`, true},
		{`{"StringEquals":{"kms:CustomerMasterKeySpec":"SYMMETRIC_DEFAULT"}}`, true},
		{`{"StringEquals":{"kms:KeyUsage":"ENCRYPT_DECRYPT"}}`, true},
		{`{"StringEquals":{"kms:KeyOrigin":"AWS_KMS"}}`, true},
		{`{"StringEquals":{"kms:ViaService":"ec2.us-east-1.amazonaws.com"}}`, true},
		{`{"StringLike":{"kms:ViaService":"ec2.*.amazonaws.com"}}`, true},
		{`{"StringEquals":{"kms:RotationPeriodInDays":"180"}}`, true},
		{`{"StringEquals":{"kms:RetiringPrincipal":"arn:aws:iam::111122223333:role/Janitor"}}`, true},
		{`{"StringEquals":{"kms:GrantConstraintType":"EncryptionContextSubset"}}`, true},
		{`{"StringEquals":{"kms:GrantConstraintType":"EncryptionContextEquals"}}`, false},
		{`{"Bool":{"kms:ReEncryptOnSameKey":"true"}}`, true},
		{`{"Bool":{"kms:ReEncryptOnSameKey":"false"}}`, false},
		{`{"StringEquals":{"aws:MixedCase":"v"}}`, true}, // Extra, by its lower-case name
		{`{"StringEquals":{"aws:NotThere":"v"}}`, false},
	} {
		if got := condHolds(t, c.cond, testContext()); got != c.want {
			t.Errorf("%s: %v, want %v", c.cond, got, c.want)
		}
	}
	// Extra keys written in another case are found too.
	ctx := testContext()
	ctx.Extra = map[string][]string{"aws:MixedCase": {"v"}}
	if !condHolds(t, `{"StringEquals":{"aws:mixedcase":"v"}}`, ctx) {
		t.Error("Extra key in mixed case not found")
	}
}

// The set qualifiers, on multi-valued keys and on absent ones.
func TestSetQualifiers(t *testing.T) {
	for _, c := range []struct {
		cond string
		want bool
	}{
		{`{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["Department","project","empty","extra"]}}`, true},
		{`{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["Department"]}}`, false},
		{`{"ForAllValues:StringLike":{"kms:EncryptionContextKeys":["*"]}}`, true},
		{`{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":["Department"]}}`, true},
		{`{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":["department"]}}`, false},
		{`{"ForAnyValue:StringEquals":{"kms:GrantOperations":["Sign"]}}`, false},
		{`{"ForAnyValue:StringEquals":{"kms:GrantOperations":["Sign","Encrypt"]}}`, true},
		{`{"ForAllValues:StringEquals":{"kms:GrantOperations":["Decrypt","Encrypt","ReEncryptFrom"]}}`, true},
		{`{"ForAllValues:StringEquals":{"kms:GrantOperations":["Decrypt"]}}`, false},
		{`{"ForAnyValue:StringLike":{"kms:ResourceAliases":"alias/oth*"}}`, true},
		{`{"ForAllValues:StringLike":{"kms:ResourceAliases":"alias/*"}}`, true},
		// negated operators with qualifiers
		{`{"ForAnyValue:StringNotEquals":{"kms:GrantOperations":["Decrypt"]}}`, true},            // Encrypt is not Decrypt
		{`{"ForAnyValue:StringNotEquals":{"kms:GrantOperations":["Decrypt","Encrypt"]}}`, false}, // every value is listed
		{`{"ForAllValues:StringNotEquals":{"kms:GrantOperations":["Sign","Verify"]}}`, true},     // none is listed
		{`{"ForAllValues:StringNotEquals":{"kms:GrantOperations":["Sign","Encrypt"]}}`, false},   // one is listed
		{`{"StringNotEquals":{"kms:GrantOperations":["Sign","Encrypt"]}}`, false},                // no qualifier: none may match
		{`{"StringEquals":{"kms:GrantOperations":["Encrypt"]}}`, true},                           // no qualifier: any may match
		// absent keys: ForAllValues holds vacuously, ForAnyValue does not
		{`{"ForAllValues:StringEquals":{"aws:TagKeys":["a"]}}`, true},
		{`{"ForAnyValue:StringEquals":{"aws:TagKeys":["a"]}}`, false},
		{`{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["a"]}}`, false},
		{`{"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":["a"]}}`, true},
		{`{"ForAllValues:StringNotEquals":{"aws:TagKeys":["a"]}}`, true},
		// single-valued keys are sets of one
		{`{"ForAnyValue:StringEquals":{"kms:CallerAccount":["111122223333","444455556666"]}}`, true},
	} {
		if got := condHolds(t, c.cond, testContext()); got != c.want {
			t.Errorf("%s: %v, want %v", c.cond, got, c.want)
		}
	}
}

func TestIfExists(t *testing.T) {
	for _, c := range []struct {
		cond string
		want bool
	}{
		{`{"StringEqualsIfExists":{"kms:EncryptionContext:Missing":"x"}}`, true},
		{`{"StringEqualsIfExists":{"kms:EncryptionContext:Department":"HR"}}`, false},
		{`{"StringEqualsIfExists":{"kms:EncryptionContext:Department":"IT"}}`, true},
		{`{"StringNotEqualsIfExists":{"kms:EncryptionContext:Department":"IT"}}`, false},
		{`{"StringLikeIfExists":{"kms:ViaService":"ec2.*"}}`, true},
		{`{"ArnLikeIfExists":{"aws:SourceArn":"arn:aws:s3:::bucket"}}`, true},
		{`{"BoolIfExists":{"aws:MultiFactorAuthPresent":"true"}}`, true},
		{`{"BoolIfExists":{"aws:SecureTransport":"true"}}`, false},
		{`{"NumericLessThanIfExists":{"kms:ScheduleKeyDeletionPendingWindowInDays":"10"}}`, true},
		{`{"NumericLessThanIfExists":{"kms:RotationPeriodInDays":"10"}}`, false},
		{`{"DateLessThanIfExists":{"aws:TokenIssueTime":"2020-01-01"}}`, true},
		{`{"IpAddressIfExists":{"aws:VpcSourceIp":"10.0.0.0/8"}}`, true},
		{`{"IpAddressIfExists":{"aws:SourceIp":"192.168.0.0/16"}}`, false},
	} {
		if got := condHolds(t, c.cond, testContext()); got != c.want {
			t.Errorf("%s: %v, want %v", c.cond, got, c.want)
		}
	}
}

// Absent keys: the zero Context and a nil one have no keys at all, and an
// empty encryption context has no kms:EncryptionContextKeys (AWS's advice
// for requiring a context is Null false on it).
func TestAbsentKeys(t *testing.T) {
	for _, ctx := range []*Context{nil, {}, {HasEncryptionContext: true, EncryptionContext: map[string]string{}}} {
		for cond, want := range map[string]bool{
			`{"Null":{"kms:EncryptionContextKeys":"false"}}`:                   false,
			`{"Null":{"kms:EncryptionContextKeys":"true"}}`:                    true,
			`{"StringEquals":{"kms:EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}`: false,
			`{"Bool":{"aws:SecureTransport":"false"}}`:                         false,
			`{"Bool":{"kms:GrantIsForAWSResource":"false"}}`:                   false,
			`{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}`:                       false,
			`{"NotIpAddress":{"aws:SourceIp":"0.0.0.0/0"}}`:                    true,
			`{"DateLessThan":{"aws:CurrentTime":"2100-01-01"}}`:                false,
			`{"ForAnyValue:StringLike":{"kms:ResourceAliases":"*"}}`:           false,
		} {
			p := identityPolicy(t, `{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*","Condition":`+cond+`}}`)
			r := &Request{PrincipalARN: alice, PrincipalAccount: acct, Action: "kms:Decrypt", Resource: keyARN, Context: ctx}
			if got := p.Evaluate(r) == Allow; got != want {
				t.Errorf("context %+v, %s: %v, want %v", ctx, cond, got, want)
			}
		}
	}
}

// kms:ResourceAliases is computed only when a policy asks, and only once.
func TestResourceAliasesFunc(t *testing.T) {
	calls := 0
	ctx := &Context{ResourceAliasesFunc: func() ([]string, error) { calls++; return []string{"alias/app"}, nil }}
	p := identityPolicy(t, `{"Statement":[
		{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"kms:ResourceAliases":"alias/app"}}},
		{"Effect":"Deny","Action":"kms:Encrypt","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"kms:ResourceAliases":"alias/secret"}}}]}`)
	if d := p.Evaluate(req(alice, "kms:Decrypt", ctx)); d != NotApplicable || calls != 0 {
		t.Fatalf("other action: %v after %d calls", d, calls)
	}
	if d := p.Evaluate(req(alice, "kms:Encrypt", ctx)); d != Allow || calls != 1 {
		t.Fatalf("got %v after %d calls", d, calls)
	}
}

// TestEncryptionContextKeyCaseInsensitive is the example of AWS's developer
// guide, "AWS KMS condition keys", kms:EncryptionContext:context-key: a key
// policy statement denying GenerateDataKey when the context includes
// Stage=Restricted. The key part of the condition key is not case
// sensitive, so the Deny also stops a request whose context spells the key
// "stage"; the value compares as the operator says, so StringEquals does
// not match "restricted".
func TestEncryptionContextKeyCaseInsensitive(t *testing.T) {
	p := keyPolicy(t, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:GenerateDataKey","Resource":"*",
		 "Condition":{"StringEquals":{"kms:EncryptionContext:Stage":"Restricted"}}}]}`)
	for _, c := range []struct {
		ec   map[string]string
		want Decision
	}{
		{map[string]string{"Stage": "Restricted"}, Deny},
		{map[string]string{"stage": "Restricted"}, Deny},
		{map[string]string{"STAGE": "Restricted", "App": "x"}, Deny},
		{map[string]string{"stage": "restricted"}, Allow}, // StringEquals: values are case-sensitive
		{map[string]string{"Stage": "Test"}, Allow},
		{map[string]string{"stage": "Test", "Stage": "Restricted"}, Deny}, // any spelling's value may match
		{nil, Allow},
	} {
		r := req(alice, "kms:GenerateDataKey", &Context{EncryptionContext: c.ec, HasEncryptionContext: true})
		if got := p.Evaluate(r); got != c.want {
			t.Errorf("context %v: %v, want %v", c.ec, got, c.want)
		}
	}
}
