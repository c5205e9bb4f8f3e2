package policy

import "strings"

// pattern is a compiled wildcard pattern: * matches any run of characters
// (none included), ? exactly one byte. Most patterns in real policies are
// "*", a literal, or a literal followed by one star ("kms:*",
// "kms:GenerateDataKey*"); those are told apart at compile time so that
// matching them is a comparison. Any other pattern is split on its stars
// once, at compile time (segs), and matched in time linear in the value
// for each segment without a ? (issue 19.9): see globMatch.
type pattern struct {
	text string // as compiled; lower case for actions
	kind patternKind
	lit  string    // patLiteral: text; patPrefix: text without the final star
	segs []segment // patGlob: text split on '*'
	// tmpl, when set, is the pattern's policy variables: the pattern is
	// then matched with matchIn, against its expansion for the request.
	tmpl *template
}

// segment is the text between two stars of a pattern (or before the first,
// or after the last). wild says it holds a ?, so that it cannot be found
// with strings.Index.
type segment struct {
	text string
	wild bool
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
	default:
		p.segs = splitSegments(s)
	}
	return p
}

// splitSegments cuts a pattern on its stars. The first and the last
// segment are anchored (at the start and at the end of the value); empty
// segments between two stars match anywhere and are dropped, so that a
// pattern of n stars has at most n+1 segments.
func splitSegments(s string) []segment {
	parts := strings.Split(s, "*")
	segs := make([]segment, 0, len(parts))
	for i, t := range parts {
		if t == "" && i != 0 && i != len(parts)-1 {
			continue
		}
		segs = append(segs, segment{text: t, wild: strings.IndexByte(t, '?') >= 0})
	}
	return segs
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
	return matchSegments(p.segs, s, fold)
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

// globMatch matches s against pattern p as a general wildcard pattern,
// whatever its kind: the matcher every compiled kind must agree with.
func globMatch(p, s string, fold bool) bool {
	return matchSegments(splitSegments(p), s, fold)
}

// matchSegments matches s against a pattern split on its stars. With no
// star (one segment) s must match it whole. Otherwise the first segment is
// matched at the start of s, the last at its end, and each one between is
// found leftmost in what remains, after the one before: taking the
// leftmost occurrence is never wrong, as every segment has a fixed length
// and the stars around it absorb anything, so an earlier occurrence leaves
// at least as much room for the segments after it. There is no
// backtracking: each byte of s is a candidate start of at most one
// segment's search, so the work is linear in len(s) for segments without
// a ? (strings.Index) and at most len(s) × the segment's length for the
// others (found by trying each position; AWS's patterns rarely hold a ?).
func matchSegments(segs []segment, s string, fold bool) bool {
	if len(segs) == 1 {
		return len(s) == len(segs[0].text) && segmentAt(&segs[0], s, fold)
	}
	first, last := &segs[0], &segs[len(segs)-1]
	if len(s) < len(first.text)+len(last.text) ||
		!segmentAt(first, s[:len(first.text)], fold) || !segmentAt(last, s[len(s)-len(last.text):], fold) {
		return false
	}
	w := s[len(first.text) : len(s)-len(last.text)]
	for i := 1; i < len(segs)-1; i++ {
		j := segmentIndex(&segs[i], w, fold)
		if j < 0 {
			return false
		}
		w = w[j+len(segs[i].text):]
	}
	return true
}

// segmentAt reports whether s, of the segment's length, matches it.
func segmentAt(g *segment, s string, fold bool) bool {
	i := 0
	for ; i < len(g.text); i++ {
		c, b := g.text[i], s[i]
		if fold {
			b = lowerASCII(b)
		}
		if b != c && c != '?' {
			break
		}
	}
	count(i + 1)
	return i == len(g.text)
}

// segmentIndex finds the segment's leftmost occurrence in w, or -1.
func segmentIndex(g *segment, w string, fold bool) int {
	switch {
	case !g.wild && !fold:
		// strings.Index is linear: a vectorised brute force for short
		// segments, Rabin-Karp once candidates fail too often.
		i := strings.Index(w, g.text)
		n := len(w) + 1
		if i >= 0 {
			n = i + 1 + len(g.text)
		}
		if len(g.text) > indexBruteMax {
			n *= 2
		}
		count(n)
		return i
	case len(w) <= shiftAndMin:
		for i := 0; i+len(g.text) <= len(w); i++ {
			if segmentAt(g, w[i:i+len(g.text)], fold) {
				return i
			}
		}
		count(1)
		return -1
	}
	return shiftAndIndex(g, w, fold)
}

// indexBruteMax is the longest segment strings.Index finds by a
// vectorised brute force on every platform Go supports; a longer one falls
// back to Rabin-Karp, measured at about twice the time a byte (BENCHMARKS.md),
// so its bytes count twice.
const indexBruteMax = 32

// shiftAndMin is the window length up to which a segment with a ? (or
// matched with fold) is searched position by position; beyond it the
// search is bit-parallel (shiftAndIndex), whose table costs about as much
// as a short search.
const shiftAndMin = 64

// shiftAndIndex is segmentIndex by the Shift-And algorithm (Baeza-Yates
// and Gonnet): one word of state, one bit per byte of the segment's first
// 64 bytes, updated once per byte of w, so that the search is linear
// whatever the ? in those bytes. A longer segment is a candidate where its
// first 64 bytes match and is then compared whole.
func shiftAndIndex(g *segment, w string, fold bool) int {
	head := g.text[:min(len(g.text), 64)]
	var tbl [256]uint64
	var any uint64
	for i := 0; i < len(head); i++ {
		c, bit := head[i], uint64(1)<<i
		switch {
		case c == '?':
			any |= bit
		case fold && 'A' <= c && c <= 'Z':
			// a folded byte of w is never upper case: no byte matches
		case fold && 'a' <= c && c <= 'z':
			tbl[c] |= bit
			tbl[c-('a'-'A')] |= bit
		default:
			tbl[c] |= bit
		}
	}
	count(shiftAndMin + len(head))
	last := uint64(1) << (len(head) - 1)
	var d uint64
	for j := 0; j < len(w); j++ {
		d = (d<<1 | 1) & (tbl[w[j]] | any)
		if d&last == 0 {
			continue
		}
		if i := j + 1 - len(head); i+len(g.text) <= len(w) &&
			(len(head) == len(g.text) || segmentAt(g, w[i:i+len(g.text)], fold)) {
			count(j + 1)
			return i
		}
	}
	count(len(w) + 1)
	return -1
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
