package policy

import "testing"

func TestPattern(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		fold       bool
		want       bool
	}{
		{"*", "", false, true},
		{"*", "anything", false, true},
		{"kms:encrypt", "kms:Encrypt", true, true},
		{"kms:encrypt", "kms:Encrypt", false, false},
		{"kms:encrypt", "kms:Encrypt2", true, false},
		{"kms:*", "KMS:Decrypt", true, true},
		{"kms:*", "km", true, false},
		{"kms:generatedatakey*", "kms:GenerateDataKeyPairWithoutPlaintext", true, true},
		{"kms:generatedatakey*", "kms:GenerateData", true, false},
		{"kms:*key", "kms:DescribeKey", true, true},
		{"kms:*key", "kms:DescribeKeys", true, false},
		{"kms:re*crypt*", "kms:ReEncryptFrom", true, true},
		{"kms:?ecrypt", "kms:Decrypt", true, true},
		{"kms:?ecrypt", "kms:ecrypt", true, false},
		{"a*b*c", "aXbYbZc", false, true},
		{"a*b*c", "aXbYbZ", false, false},
		{"a**", "a", false, true},
		{"*a", "bbbbbbbbbbbbbbbbbbbbbbbbbbbba", false, true},
		{"*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false, false},
		{"arn:aws:kms:*:111122223333:key/*", keyARN, false, true},
		{"arn:aws:kms:*:444455556666:key/*", keyARN, false, false},
		{"", "", false, true},
		{"", "x", false, false},
	} {
		p := compilePattern(c.pattern)
		if got := p.match(c.s, c.fold); got != c.want {
			t.Errorf("%q ~ %q (fold %v): %v, want %v", c.pattern, c.s, c.fold, got, c.want)
		}
		if got := globMatch(c.pattern, c.s, c.fold); got != c.want { // the general matcher agrees
			t.Errorf("globMatch %q ~ %q: %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

func TestARNPattern(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"arn:aws:iam::111122223333:user/alice", alice, true},
		{"arn:aws:iam::*:user/*", alice, true},
		{"arn:aws:iam::*:*", alice, true},
		{"arn:aws:*:*:*:*", alice, true},
		{"arn:aws:iam:*:*:user/alice", alice, true}, // an empty region matches *
		{"arn:aws:iam::???????????:user/alice", alice, false},
		{"arn:aws:iam::111122223333:user/ALICE", alice, false},
		{"arn:aws:*:user/alice", alice, false},                           // five parts: a star would span colons
		{"arn:aws:s3:::bucket/a:b:*", "arn:aws:s3:::bucket/a:b:c", true}, // the resource part keeps its colons
		{"arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a:b:c", true},
		{"*", alice, true},
		{"*", "not an arn", true},
		{"not*", "not an arn", true},
		{"arn:*:*:*:*:*", "not an arn", false},
	} {
		p := compileARNPattern(c.pattern)
		if got := p.match(c.s); got != c.want {
			t.Errorf("%q ~ %q: %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

func TestParseNumberAndDate(t *testing.T) {
	for s, ok := range map[string]bool{"1": true, "-1.5": true, "+2": true, "1e3": true, "1.5E-2": true, ".5": true, "5.": true,
		"": false, "-": false, "e3": false, "1e": false, "0x10": false, "Inf": false, "NaN": false, "1_000": false, " 1": false, "1e999": false} {
		if _, got := parseNumber(s); got != ok {
			t.Errorf("parseNumber(%q): %v", s, got)
		}
	}
	for s, ok := range map[string]bool{"2026-11-23": true, "2026-11-23T12:00:00Z": true, "2026-11-23T12:00:00.123Z": true,
		"2026-11-23T12:00:00+0100": true, "2026-11-23T12:00Z": true, "1795000000": true, "-1": true,
		"": false, "tomorrow": false, "2026-13-01": false, "23/11/2026": false} {
		if _, got := parseDate(s); got != ok {
			t.Errorf("parseDate(%q): %v", s, got)
		}
	}
}
