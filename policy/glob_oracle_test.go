package policy

import (
	"strings"
	"testing"
)

// backtrackGlob is the matcher globMatch replaced (issue 19.9): correct but
// quadratic. It is kept as the oracle the linear matcher must agree with;
// a set mask marks a byte literal even when it is * or ?.
func backtrackGlob(p string, mask []bool, s string, fold bool) bool {
	wild := func(i int, c byte) bool { return i < len(p) && p[i] == c && (mask == nil || !mask[i]) }
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case wild(pi, '*'):
			star, mark = pi, si
			pi++
		case pi < len(p) && (wild(pi, '?') || p[pi] == s[si] || fold && p[pi] == lowerASCII(s[si])):
			pi++
			si++
		case star >= 0:
			mark++
			pi, si = star+1, mark
		default:
			return false
		}
	}
	for wild(pi, '*') {
		pi++
	}
	return pi == len(p)
}

// FuzzGlobMatch compares the compiled matcher (every kind), globMatch and
// maskedGlob with the backtracking oracle on arbitrary patterns and
// values, with and without fold; maskBits marks bytes of the pattern
// literal, as a template's expansion does.
func FuzzGlobMatch(f *testing.F) {
	for _, c := range [][2]string{{"*a*a*a*b", "aaaaab"}, {"a?b*", "axbyy"}, {"*?", ""}, {"kms:re*crypt*", "KMS:ReEncryptFrom"},
		{"*" + strings.Repeat("a", 70) + "?b*", strings.Repeat("a", 200) + "xb"}, {"**", "x"}, {"?*?", "ab"}} {
		f.Add(c[0], c[1], false, uint64(0))
		f.Add(toLowerASCII(c[0]), c[1], true, uint64(0))
	}
	f.Add("a*b?c", "a*bXc", false, uint64(0b110))
	f.Fuzz(func(t *testing.T, p, s string, fold bool, maskBits uint64) {
		if fold {
			p = toLowerASCII(p)
		}
		want := backtrackGlob(p, nil, s, fold)
		cp := compilePattern(p)
		if got := cp.match(s, fold); got != want {
			t.Fatalf("compiled %q ~ %q (fold %v): %v, oracle %v", p, s, fold, got, want)
		}
		if got := globMatch(p, s, fold); got != want {
			t.Fatalf("globMatch %q ~ %q (fold %v): %v, oracle %v", p, s, fold, got, want)
		}
		if got := maskedGlob([]byte(p), make([]bool, len(p)), s, fold); got != want {
			t.Fatalf("maskedGlob %q ~ %q (fold %v): %v, oracle %v", p, s, fold, got, want)
		}
		mask := make([]bool, len(p))
		for i := range mask {
			mask[i] = maskBits>>(i%64)&1 == 1
		}
		if got, want := maskedGlob([]byte(p), mask, s, fold), backtrackGlob(p, mask, s, fold); got != want {
			t.Fatalf("maskedGlob %q (mask %b) ~ %q (fold %v): %v, oracle %v", p, maskBits, s, fold, got, want)
		}
	})
}

// Long values take the Shift-And and strings.Index paths; the oracle
// agrees on them too.
func TestGlobLongValues(t *testing.T) {
	long := strings.Repeat("ab", 300)
	for _, p := range []string{"*b?b*", "*" + strings.Repeat("ab", 40) + "?*", "*" + strings.Repeat("ab", 40) + "*", "*a?a*",
		"a*" + strings.Repeat("?", 70) + "*b", "*" + strings.Repeat("ab", 20) + "c*", "*ba?*b", "*BA*", "*b?A*"} {
		for _, s := range []string{long, long + "c", "x" + long, strings.ToUpper(long)} {
			for _, fold := range []bool{false, true} {
				q := p
				if fold {
					q = toLowerASCII(p)
				}
				want := backtrackGlob(q, nil, s, fold)
				cp := compilePattern(q)
				if got := cp.match(s, fold); got != want {
					t.Errorf("%q ~ %.20q… (fold %v): %v, oracle %v", q, s, fold, got, want)
				}
				if got := maskedGlob([]byte(q), make([]bool, len(q)), s, fold); got != want {
					t.Errorf("maskedGlob %q ~ %.20q… (fold %v): %v, oracle %v", q, s, fold, got, want)
				}
			}
		}
	}
}
