package fuzzpolicy

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/coffer-kms/coffer/policy"
)

// likeOracle is the backtracking matcher the policy package used before
// issue 19.9 (quadratic, but simple): * any run of bytes, ? one byte.
func likeOracle(p, s string) bool {
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case star >= 0:
			mark++
			pi, si = star+1, mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// FuzzStringLike is a differential fuzz of the linear wildcard matcher
// (policy/glob.go) against likeOracle, through the public API: a
// StringLike condition on an encryption context value and an ArnLike on
// the caller's ARN, each allowing exactly when the oracle matches.
func FuzzStringLike(f *testing.F) {
	f.Add("*a*a*a*b", "aaaaab")
	f.Add("a?b*", "axbyy")
	f.Add("*"+strings.Repeat("a", 70)+"?b*", strings.Repeat("a", 200)+"xb")
	f.Add("arn:aws:iam::*:user/a?ice*", "arn:aws:iam::111122223333:user/alice")
	f.Fuzz(func(t *testing.T, pat, val string) {
		if len(val) > 2048 || strings.Contains(pat, "${") || !utf8.ValidString(pat) {
			return // beyond the request limits; a template (tested in policy); JSON would replace the bytes
		}
		pj, _ := json.Marshal(pat)
		for _, arn := range []bool{false, true} {
			cond := `{"StringLike":{"kms:EncryptionContext:k":` + string(pj) + `}}`
			want := likeOracle(pat, val)
			r := &policy.Request{PrincipalARN: "arn:aws:iam::111122223333:user/alice", PrincipalAccount: account, Action: "kms:Decrypt", Resource: keyARN,
				Context: &policy.Context{EncryptionContext: map[string]string{"k": val}, HasEncryptionContext: true}}
			if arn {
				if strings.Count(pat, ":") < 5 || strings.Count(val, ":") < 5 || len(val) > 1024 {
					continue // ArnLike splits; covered by the policy package's tests
				}
				i, j := strings.LastIndexByte(pat, ':'), strings.LastIndexByte(val, ':')
				// compare the last part only: the parts before must match literally
				pat2, val2 := "arn:a:b:c:d:"+pat[i+1:], "arn:a:b:c:d:"+val[j+1:]
				pj2, _ := json.Marshal(pat2)
				cond = `{"ArnLike":{"aws:PrincipalArn":` + string(pj2) + `}}`
				want = likeOracle(pat[i+1:], val[j+1:])
				r.PrincipalARN = val2
				r.Context = &policy.Context{PrincipalARN: val2}
			}
			doc := `{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":` + cond + `}]}`
			p, err := policy.ParseStored([]byte(doc), policy.KeyPolicy)
			if err != nil {
				continue // not a valid condition value
			}
			if got := p.Evaluate(r) == policy.Allow; got != want {
				t.Fatalf("%s: %q ~ %q: %v, oracle %v", cond, pat, val, got, want)
			}
		}
	})
}
