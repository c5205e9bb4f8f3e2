package policy

import (
	"errors"
	"strings"
	"testing"
)

// Each malformed document with the whole message it must give.
func TestParseMalformed(t *testing.T) {
	const stmt = `"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"`
	for _, c := range []struct {
		doc  string
		kind Kind
		want string
	}{
		// JSON
		{`{`, KeyPolicy, "The policy is not valid JSON: the document ends early."},
		{``, KeyPolicy, "The policy is not valid JSON: the document ends early."},
		{`{"Statement":[}`, KeyPolicy, "The policy is not valid JSON: invalid character '}' looking for beginning of value at offset 14."},
		{`{"Statement":[]} {}`, KeyPolicy, "The policy is not valid JSON: data after the document at offset 17."},
		{`{"Statement":[],"Statement":[]}`, KeyPolicy, `The policy is not valid: the member "Statement" appears twice in one object (offset 16).`},
		{`[]`, KeyPolicy, "The policy must be a JSON object."},
		{`{"Statement":` + strings.Repeat("[", 20) + strings.Repeat("]", 20) + `}`, KeyPolicy, "The policy is not valid: nested more than 16 levels deep."},
		// key policy alphabet
		{"{\"Id\":\"\x01\",\"Statement\":[]}", KeyPolicy, "The policy contains a character that is not allowed in a key policy: U+0001 at offset 7."},
		{`{"Id":"鍵","Statement":[]}`, KeyPolicy, "The policy contains a character that is not allowed in a key policy: U+9375 at offset 7."},
		{"{\"Id\":\"\xff\",\"Statement\":[]}", KeyPolicy, "The policy is not valid UTF-8 at offset 7."},
		// top level
		{`{"Version":"2012-10-17"}`, KeyPolicy, "The policy must contain a Statement."},
		{`{"Version":"2020-01-01","Statement":[]}`, KeyPolicy, `The policy Version must be "2012-10-17" or "2008-10-17".`},
		{`{"Version":20121017,"Statement":[]}`, KeyPolicy, `The policy Version must be "2012-10-17" or "2008-10-17".`},
		{`{"Id":7,"Statement":[]}`, KeyPolicy, "The policy Id must be a string."},
		{`{"Statement":"Allow"}`, KeyPolicy, "The policy Statement must be an object or a list of objects."},
		{`{"Statement":[],"Foo":1}`, KeyPolicy, "The policy contains an unsupported element: Foo."},
		{`{"Statement":[7]}`, KeyPolicy, "The policy Statement must be an object or a list of objects; statement 1 is not an object."},
		// statement elements
		{`{"Statement":[{` + stmt + `,"Bogus":1}]}`, KeyPolicy, "The policy contains an unsupported element in statement 1: Bogus."},
		{`{"Statement":[{` + stmt + `,"effect":"Deny"}]}`, KeyPolicy, "The policy contains an unsupported element in statement 1: effect."},
		{`{"Statement":[{"Sid":1,` + stmt + `}]}`, KeyPolicy, "The Sid of statement 1 must be a string."},
		{`{"Statement":[{"Sid":"a",` + stmt + `},{"Sid":"a",` + stmt + `}]}`, KeyPolicy, `Statement IDs (SID) in a single policy must be unique: "a".`},
		{`{"Statement":[{"Principal":"*","Action":"kms:*","Resource":"*"}]}`, KeyPolicy, "Policy contains a statement with no Effect (statement 1)."},
		{`{"Statement":[{` + stmt + `},{"Sid":"Two","Principal":"*","Action":"kms:*","Resource":"*"}]}`, KeyPolicy, `Policy contains a statement with no Effect (statement "Two").`},
		{`{"Statement":[{"Effect":"allow","Principal":"*","Action":"kms:*","Resource":"*"}]}`, KeyPolicy, `The Effect of statement 1 must be "Allow" or "Deny".`},
		// principals
		{`{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`, KeyPolicy, "Policy contains a statement with no Principal (statement 1); each key policy statement must name one or more principals."},
		{`{"Statement":[{"Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"kms:*","Resource":"*"}]}`, KeyPolicy, "A statement cannot have both Principal and NotPrincipal (statement 1)."},
		{`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"kms:*","Resource":"*"}]}`, KeyPolicy, `Policy contains a statement with one or more invalid principals (statement 1): "bob" is not an account ID or the ARN of an account root, user or role.`},
		{`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/*"},"Action":"kms:*","Resource":"*"}]}`, KeyPolicy, `Policy contains a statement with one or more invalid principals (statement 1): "arn:aws:iam::111122223333:user/*" is not an account ID or the ARN of an account root, user or role.`},
		{`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::11112222333:root"},"Action":"kms:*","Resource":"*"}]}`, KeyPolicy, `Policy contains a statement with one or more invalid principals (statement 1): "arn:aws:iam::11112222333:root" is not an account ID or the ARN of an account root, user or role.`},
		{`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"AIDACKCEVSQ6C2EXAMPLE"},"Action":"kms:*","Resource":"*"}]}`, KeyPolicy, `Policy contains a statement with one or more invalid principals (statement 1): "AIDACKCEVSQ6C2EXAMPLE" is not an account ID or the ARN of an account root, user or role.`},
		{`{"Statement":[{"Effect":"Allow","Principal":"arn:aws:iam::111122223333:root","Action":"kms:*","Resource":"*"}]}`, KeyPolicy, `Policy contains a statement with one or more invalid principals (statement 1): a Principal given as a string must be "*".`},
		{`{"Statement":[{"Effect":"Allow","Principal":{},"Action":"kms:*","Resource":"*"}]}`, KeyPolicy, `Policy contains a statement with one or more invalid principals (statement 1): the Principal must be "*" or an object such as {"AWS": "arn:aws:iam::111122223333:root"}.`},
		{`{"Statement":[{"Effect":"Allow","Principal":{"CanonicalUser":"79a59df900b949e55d96a1e698fbace"},"Action":"kms:*","Resource":"*"}]}`, KeyPolicy, `Policy contains a statement with one or more invalid principals (statement 1): unsupported principal type "CanonicalUser".`},
		{`{"Statement":[{"Effect":"Allow","Principal":{"AWS":[]},"Action":"kms:*","Resource":"*"}]}`, KeyPolicy, `Policy contains a statement with one or more invalid principals (statement 1): the AWS principals must be a string or a non-empty list of strings.`},
		{`{"Statement":[{"Effect":"Allow","Principal":{"Service":"*"},"Action":"kms:*","Resource":"*"}]}`, KeyPolicy, `Policy contains a statement with one or more invalid principals (statement 1): invalid Service principal "*".`},
		{`{"Statement":[{` + stmt + `}]}`, IdentityPolicy, "Policy document should not specify a principal (statement 1): an identity policy applies to the principal it is attached to."},
		// actions and resources
		{`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","NotAction":"kms:X","Resource":"*"}]}`, KeyPolicy, "A statement cannot have both Action and NotAction (statement 1)."},
		{`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"Encrypt","Resource":"*"}]}`, KeyPolicy, `Action "Encrypt" in statement 1 must be prefaced by a vendor, e.g. kms:Encrypt.`},
		{`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:","Resource":"*"}]}`, KeyPolicy, `Action "kms:" in statement 1 must be prefaced by a vendor, e.g. kms:Encrypt.`},
		{`{"Statement":[{"Effect":"Allow","Principal":"*","Action":[],"Resource":"*"}]}`, KeyPolicy, "The Action of statement 1 must be a string or a non-empty list of strings."},
		{`{"Statement":[{"Effect":"Allow","Principal":"*","NotAction":["kms:Encrypt",1],"Resource":"*"}]}`, KeyPolicy, "The NotAction of statement 1 must be a string or a non-empty list of strings."},
		{`{"Statement":[{"Effect":"Allow","Resource":"*"}]}`, IdentityPolicy, "Policy statement must contain actions (statement 1)."},
		{`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","NotResource":"*"}]}`, KeyPolicy, "A statement cannot have both Resource and NotResource (statement 1)."},
		{`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"key/1234"}]}`, KeyPolicy, `Resource "key/1234" in statement 1 must be in ARN format or "*".`},
		{`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":{"arn":"x"}}]}`, KeyPolicy, "The Resource of statement 1 must be a string or a non-empty list of strings."},
		{`{"Statement":[{"Effect":"Allow","Action":"kms:*"}]}`, IdentityPolicy, "Policy statement must contain resources (statement 1)."},
		// conditions
		{`{"Statement":[{` + stmt + `,"Condition":[]}]}`, KeyPolicy, "The Condition of statement 1 must be an object."},
		{`{"Statement":[{` + stmt + `,"Condition":{"StringEqualz":{"kms:CallerAccount":"1"}}}]}`, KeyPolicy, "Unknown condition operator: StringEqualz (statement 1)."},
		{`{"Statement":[{` + stmt + `,"Condition":{"NullIfExists":{"kms:CallerAccount":"true"}}}]}`, KeyPolicy, "Unknown condition operator: NullIfExists (statement 1)."},
		{`{"Statement":[{` + stmt + `,"Condition":{"ForSomeValues:StringEquals":{"kms:CallerAccount":"1"}}}]}`, KeyPolicy, "Unknown condition operator: ForSomeValues:StringEquals (statement 1)."},
		{`{"Statement":[{` + stmt + `,"Condition":{"StringEquals":{}}}]}`, KeyPolicy, "The condition operator StringEquals in statement 1 must map one or more condition keys to values."},
		{`{"Statement":[{` + stmt + `,"Condition":{"StringEquals":"kms:CallerAccount"}}]}`, KeyPolicy, "The condition operator StringEquals in statement 1 must map one or more condition keys to values."},
		{`{"Statement":[{` + stmt + `,"Condition":{"StringEquals":{"CallerAccount":"1"}}}]}`, KeyPolicy, `The condition key "CallerAccount" in statement 1 must be prefaced by a vendor, e.g. kms:, aws:.`},
		{`{"Statement":[{` + stmt + `,"Condition":{"StringEquals":{"kms:EncryptionContext:":"1"}}}]}`, KeyPolicy, "The condition key kms:EncryptionContext: in statement 1 names no encryption context key."},
		{`{"Statement":[{` + stmt + `,"Condition":{"StringEquals":{"kms:CallerAccount":[]}}}]}`, KeyPolicy, "The values of condition key kms:CallerAccount in statement 1 must be strings, numbers or booleans, or a non-empty list of them."},
		{`{"Statement":[{` + stmt + `,"Condition":{"StringEquals":{"kms:CallerAccount":null}}}]}`, KeyPolicy, "The values of condition key kms:CallerAccount in statement 1 must be strings, numbers or booleans, or a non-empty list of them."},
		{`{"Statement":[{` + stmt + `,"Condition":{"StringEquals":{"kms:CallerAccount":[["1"]]}}}]}`, KeyPolicy, "The values of condition key kms:CallerAccount in statement 1 must be strings, numbers or booleans, or a non-empty list of them."},
		{`{"Statement":[{` + stmt + `,"Condition":{"NumericLessThan":{"kms:RotationPeriodInDays":"ninety"}}}]}`, KeyPolicy, `The condition NumericLessThan on kms:RotationPeriodInDays in statement 1 has a value that is not a number: "ninety".`},
		{`{"Statement":[{` + stmt + `,"Condition":{"NumericEquals":{"kms:RotationPeriodInDays":"0x10"}}}]}`, KeyPolicy, `The condition NumericEquals on kms:RotationPeriodInDays in statement 1 has a value that is not a number: "0x10".`},
		{`{"Statement":[{` + stmt + `,"Condition":{"NumericEquals":{"kms:RotationPeriodInDays":"NaN"}}}]}`, KeyPolicy, `The condition NumericEquals on kms:RotationPeriodInDays in statement 1 has a value that is not a number: "NaN".`},
		{`{"Statement":[{` + stmt + `,"Condition":{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}}]}`, KeyPolicy, `The condition DateLessThan on aws:CurrentTime in statement 1 has a value that is not a date: "tomorrow".`},
		{`{"Statement":[{` + stmt + `,"Condition":{"Bool":{"aws:SecureTransport":"yes"}}}]}`, KeyPolicy, `The condition Bool on aws:SecureTransport in statement 1 has a value that is not true or false: "yes".`},
		{`{"Statement":[{` + stmt + `,"Condition":{"Null":{"kms:ViaService":1}}}]}`, KeyPolicy, `The condition Null on kms:ViaService in statement 1 has a value that is not true or false: "1".`},
		{`{"Statement":[{` + stmt + `,"Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}}]}`, KeyPolicy, `The condition IpAddress on aws:SourceIp in statement 1 has a value that is not an IP address or CIDR block: "10.0.0.0/33".`},
		{`{"Statement":[{` + stmt + `,"Condition":{"NotIpAddress":{"aws:SourceIp":"fe80::1%eth0"}}}]}`, KeyPolicy, `The condition NotIpAddress on aws:SourceIp in statement 1 has a value that is not an IP address or CIDR block: "fe80::1%eth0".`},
	} {
		_, err := Parse([]byte(c.doc), c.kind)
		var me *MalformedError
		if !errors.As(err, &me) || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want a *MalformedError", c.doc, err)
			continue
		}
		if me.Msg != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.doc, me.Msg, c.want)
		}
	}
}

func TestParseSizeLimit(t *testing.T) {
	doc := []byte(defaultPolicy)
	pad := func(n int) []byte { // the default policy, padded with spaces to n bytes
		return append(append([]byte{}, doc[:len(doc)-1]...), append([]byte(strings.Repeat(" ", n-len(doc))), '}')...)
	}
	if _, err := Parse(pad(MaxSize), KeyPolicy); err != nil {
		t.Fatalf("a policy of exactly MaxSize bytes: %v", err)
	}
	_, err := Parse(pad(MaxSize+1), KeyPolicy)
	if !errors.Is(err, ErrMalformed) || err.Error() != "Policy document exceeds the maximum size of 32768 bytes." {
		t.Fatalf("a policy one byte over: %v", err)
	}
}

// The first problem in document order is reported, whatever Go's map order.
func TestParseErrorsAreDeterministic(t *testing.T) {
	doc := []byte(`{"Statement":[{"Effect":"Permit","Principal":{"AWS":"bob"},"Action":"Encrypt","Resource":"key","Condition":{"Foo":{}}}]}`)
	for range 20 {
		_, err := Parse(doc, KeyPolicy)
		if err == nil || !strings.HasPrefix(err.Error(), "The Effect of statement 1") {
			t.Fatalf("got %v", err)
		}
	}
}

func TestParseAccepts(t *testing.T) {
	for _, doc := range []string{
		defaultPolicy,
		string(DefaultKeyPolicy(acct)),
		`{"Statement":[]}`,
		`{"Version":"2008-10-17","Statement":{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"*","Resource":"*"}}`,
		// bare account IDs, users and roles with paths, sessions, services, federated
		`{"Statement":{"Effect":"Allow","Principal":{"AWS":["111122223333","arn:aws:iam::444455556666:user/dev/bob","arn:aws:iam::111122223333:role/service-role/App","arn:aws:sts::111122223333:assumed-role/App/s-1"],"Service":["logs.amazonaws.com"],"Federated":"cognito-identity.amazonaws.com"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}}`,
		// other partitions
		`{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws-us-gov:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}}`,
		// Latin-1 is allowed in key policies, and the policy may be indented with tabs
		"{\n\t\"Id\": \"clé\",\r\n\t\"Statement\": []\n}",
		// every operator with IfExists and qualifiers, numbers and booleans as values
		`{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{
			"ForAnyValue:StringEqualsIfExists":{"kms:GrantOperations":["Decrypt"]},
			"ForAllValues:StringLike":{"kms:EncryptionContextKeys":"app-*"},
			"NumericLessThanEquals":{"kms:RotationPeriodInDays":365},
			"Bool":{"aws:SecureTransport":true},
			"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"},
			"BinaryEquals":{"aws:Custom":"QmluYXJ5"},
			"ArnLikeIfExists":{"aws:PrincipalArn":"arn:aws:iam::*:role/*"},
			"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32","192.0.2.1"]},
			"Null":{"kms:ViaService":"true"}}}}`,
	} {
		if _, err := Parse([]byte(doc), KeyPolicy); err != nil {
			t.Errorf("%s: %v", doc, err)
		}
	}
	// Identity policies may use characters key policies may not.
	if _, err := Parse([]byte(`{"Statement":{"Sid":"鍵","Effect":"Allow","Action":"kms:*","Resource":"*"}}`), IdentityPolicy); err != nil {
		t.Error(err)
	}
}

// KMS accepts a key policy statement without Action or Resource, and the
// statement has no effect.
func TestStatementWithoutActionOrResourceIsIneffective(t *testing.T) {
	for _, doc := range []string{
		`{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*"}}`,
		`{"Statement":{"Effect":"Allow","Principal":"*","Resource":"*"}}`,
		`{"Statement":{"Effect":"Deny","Principal":"*","Resource":"*"}}`,
	} {
		p := keyPolicy(t, doc)
		if d := Authorize(p, acct, nil, false, req(root, "kms:Encrypt", nil)); d != NotApplicable {
			t.Errorf("%s: %v", doc, d)
		}
	}
}
