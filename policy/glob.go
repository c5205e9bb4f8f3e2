package policy

import "strings"

// pattern is a compiled wildcard pattern: * matches any run of characters
// (none included), ? exactly one byte. Most patterns in real policies are
// "*", a literal, or a literal followed by one star ("kms:*",
// "kms:GenerateDataKey*"); those are told apart at compile time so that
// matching them is a comparison.
type pattern struct {
	text string // as compiled; lower case for actions
	kind patternKind
	lit  string // patLiteral: text; patPrefix: text without the final star
	// tmpl, when set, is the pattern's policy variables: the pattern is
	// then matched with matchIn, against its expansion for the request.
	tmpl *template
}

// matchIn is match for a pattern that may hold policy variables.
func (p *pattern) matchIn(s string, fold bool, ctx *Context) bool {
	if p.tmpl != nil {
		return p.tmpl.match(ctx, s, false, fold, false)
	}
	return p.match(s, fold)
}

type patternKind int8

const (
	patAny patternKind = iota
	patLiteral
	patPrefix
	patGlob
)

func compilePattern(s string) pattern {
	p := pattern{text: s, kind: patGlob}
	switch i := strings.IndexAny(s, "*?"); {
	case s == "*":
		p.kind = patAny
	case i < 0:
		p.kind, p.lit = patLiteral, s
	case i == len(s)-1 && s[i] == '*':
		p.kind, p.lit = patPrefix, s[:i]
	}
	return p
}

// match tests s against the pattern. With fold, ASCII letters of s match
// case-insensitively; the pattern must then be in lower case already.
func (p *pattern) match(s string, fold bool) bool {
	switch p.kind {
	case patAny:
		count(1)
		return true
	case patLiteral:
		count(len(p.lit) + 1)
		if fold {
			return len(s) == len(p.lit) && hasPrefixFold(s, p.lit)
		}
		return s == p.lit
	case patPrefix:
		count(len(p.lit) + 1)
		if fold {
			return len(s) >= len(p.lit) && hasPrefixFold(s, p.lit)
		}
		return strings.HasPrefix(s, p.lit)
	}
	return globMatch(p.text, s, fold)
}

// hasPrefixFold reports whether s begins with lower, ignoring the case of
// ASCII letters in s; lower is in lower case.
func hasPrefixFold(s, lower string) bool {
	if len(s) < len(lower) {
		return false
	}
	for i := 0; i < len(lower); i++ {
		if lowerASCII(s[i]) != lower[i] {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// toLowerASCII folds only ASCII letters, the way matching compares them,
// so that a compiled action pattern and its canonical form agree.
func toLowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = lowerASCII(b[j])
			}
			return string(b)
		}
	}
	return s
}

// globMatch is the classic linear-time wildcard match: on a mismatch after
// a star, the star absorbs one more byte and matching resumes, so there is
// one backtrack point and no recursion.
func globMatch(p, s string, fold bool) bool {
	pi, si, star, mark := 0, 0, -1, 0
	steps := 1
	for si < len(s) {
		steps++
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si] || fold && p[pi] == lowerASCII(s[si])):
			pi++
			si++
		case star >= 0:
			mark++
			pi, si = star+1, mark
		default:
			count(steps)
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		steps++
		pi++
	}
	count(steps)
	return pi == len(p)
}

// patterns is a list of alternatives.
type patterns []pattern

func (ps patterns) match(s string, fold bool) bool {
	for i := range ps {
		if ps[i].match(s, fold) {
			return true
		}
	}
	return false
}

// matchIn is match for patterns that may hold policy variables.
func (ps patterns) matchIn(s string, fold bool, ctx *Context) bool {
	for i := range ps {
		if ps[i].matchIn(s, fold, ctx) {
			return true
		}
	}
	return false
}

// arnPattern matches ARNs as the Arn* condition operators do: each of the
// six colon-separated parts separately, so that a wildcard never spans a
// colon between parts (the resource part may itself contain colons). A
// pattern of fewer than six parts matches no ARN, except "*" which matches
// everything; against a value that is not an ARN it is a plain pattern.
type arnPattern struct {
	parts [6]pattern
	whole pattern
	split bool
}

func compileARNPattern(s string) arnPattern {
	a := arnPattern{whole: compilePattern(s)}
	if parts, ok := splitARN(s); ok {
		a.split = true
		for i, part := range parts {
			a.parts[i] = compilePattern(part)
		}
	}
	return a
}

func (a *arnPattern) match(s string) bool {
	count(len(s) + 1)
	parts, ok := splitARN(s)
	if !a.split || !ok {
		return a.whole.kind == patAny || a.split == ok && a.whole.match(s, false)
	}
	for i := range parts {
		if !a.parts[i].match(parts[i], false) {
			return false
		}
	}
	return true
}

// splitARN cuts arn:partition:service:region:account:resource into its
// six parts; the last keeps any further colons.
func splitARN(s string) (parts [6]string, ok bool) {
	for i := 0; i < 5; i++ {
		j := strings.IndexByte(s, ':')
		if j < 0 {
			return parts, false
		}
		parts[i], s = s[:j], s[j+1:]
	}
	parts[5] = s
	return parts, true
}
