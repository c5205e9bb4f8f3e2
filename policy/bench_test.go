package policy

import (
	"net/netip"
	"testing"
)

// threeStatements is the shape of the key policy the KMS console writes:
// the account, key administrators, key users.
const threeStatements = `{"Version":"2012-10-17","Id":"key-consolepolicy-3","Statement":[
	{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
	{"Sid":"Allow access for Key Administrators","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/KeyAdmin"},
	 "Action":["kms:Create*","kms:Describe*","kms:Enable*","kms:List*","kms:Put*","kms:Update*","kms:Revoke*","kms:Disable*","kms:Get*","kms:Delete*","kms:TagResource","kms:UntagResource","kms:ScheduleKeyDeletion","kms:CancelKeyDeletion","kms:RotateKeyOnDemand"],"Resource":"*"},
	{"Sid":"Allow use of the key","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:user/alice","arn:aws:iam::111122223333:role/App"]},
	 "Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*"}]}`

// conditions is a condition-heavy policy: an encryption context and caller
// account for use, set qualifiers on the context keys, and a deny for
// requests not over TLS or from outside the network.
const conditions = `{"Version":"2012-10-17","Statement":[
	{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
	{"Sid":"Use with tenant context","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":["kms:Decrypt","kms:GenerateDataKey*"],"Resource":"*",
	 "Condition":{"StringEquals":{"kms:EncryptionContext:tenant":"acme","kms:CallerAccount":"111122223333"},
	              "ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["tenant","purpose"]},
	              "StringLikeIfExists":{"kms:ViaService":"s3.*.amazonaws.com"}}},
	{"Sid":"Deny plain HTTP","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}},
	{"Sid":"Deny outside","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","192.168.0.0/16"]}}}]}`

type benchCase struct {
	name      string
	keyPolicy *Policy
	identity  []*Policy
	r         *Request
	want      Decision
}

func benchCases(b testing.TB) []benchCase {
	useCtx := &Context{
		EncryptionContext: map[string]string{"tenant": "acme", "purpose": "backup"}, HasEncryptionContext: true,
		EncryptionAlgorithm: "SYMMETRIC_DEFAULT", KeySpec: "SYMMETRIC_DEFAULT", KeyUsage: "ENCRYPT_DECRYPT",
		SourceIP: netip.MustParseAddr("10.1.2.3"), HasTransport: true, SecureTransport: true, CurrentTime: at,
	}
	return []benchCase{
		// a user allowed by its identity policy through the default key policy
		{"policy=default", keyPolicy(b, defaultPolicy), []*Policy{identityPolicy(b, `{"Statement":{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey*"],"Resource":"*"}}`)},
			req(alice, "kms:Encrypt", nil), Allow},
		// a key user named in the third statement
		{"policy=three-statements", keyPolicy(b, threeStatements), nil, req(alice, "kms:GenerateDataKey", nil), Allow},
		{"policy=conditions", keyPolicy(b, conditions), nil, req(alice, "kms:Decrypt", useCtx), Allow},
		// a caller of another account: nothing allows, every statement is read
		{"policy=three-statements/cross-account", keyPolicy(b, threeStatements), nil, req(mallory, "kms:Decrypt", nil), NotApplicable},
	}
}

// BenchmarkEvaluate measures the whole decision for one request
// (Authorize: key policy, identity policies, grants).
func BenchmarkEvaluate(b *testing.B) {
	for _, c := range benchCases(b) {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if Authorize(c.keyPolicy, acct, c.identity, false, c.r) != c.want {
					b.Fatal("wrong decision")
				}
			}
		})
	}
	// The most expensive policy the cost bound accepts (issue 19.9), on
	// the request that makes it work hardest; it allocates once per
	// request only for the request's own context, never per policy.
	_, p := globAtBound(b)
	r := worstRequest()
	b.Run("policy=at-bound", func(b *testing.B) {
		b.ReportAllocs()
		b.ReportMetric(float64(p.Cost()), "bound-steps")
		for b.Loop() {
			if Authorize(p, acct, nil, false, r) != NotApplicable {
				b.Fatal("wrong decision")
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for _, c := range []struct{ name, doc string }{
		{"policy=default", defaultPolicy},
		{"policy=three-statements", threeStatements},
		{"policy=conditions", conditions},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.doc)))
			b.ReportAllocs()
			doc := []byte(c.doc)
			for b.Loop() {
				if _, err := Parse(doc, KeyPolicy); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Deciding a request does not allocate (a count, not a timing).
func TestEvaluateDoesNotAllocate(t *testing.T) {
	for _, c := range benchCases(t) {
		allocs := testing.AllocsPerRun(100, func() {
			if Authorize(c.keyPolicy, acct, c.identity, false, c.r) != c.want {
				t.Fatal("wrong decision")
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %.0f allocations per decision", c.name, allocs)
		}
	}
}
