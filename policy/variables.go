package policy

import (
	"strings"
	"unsafe"
)

// Policy variables, as IAM's "IAM policy elements: Variables and tags"
// (docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html)
// has them: in a document of Version 2012-10-17 (never in 2008-10-17, where
// "${" is literal text), a Resource or a String* or Arn* condition value may
// hold ${key}, replaced at evaluation by the request's value of condition
// key "key" (names case-insensitive, as condition keys), and the escapes
// ${*}, ${?} and ${$}, which stand for a literal *, ? and $ (never a
// wildcard). A variable whose key has no single value in the request
// (absent, as aws:username for a role session or aws:PrincipalTag/… which
// Coffer's principals never carry, or multivalued) cannot be resolved: the
// value holding it then matches nothing, as IAM's "Policy variables with no
// value" says a resource or condition with an unresolvable variable does
// not match.
//
// Placeholders are parsed once, at Parse; evaluation substitutes into a
// buffer only for values that hold one, so policies without variables
// evaluate as before, without allocating.

// tmplPart is one piece of a value with variables: literal text (in which
// * and ? are wildcards for the pattern operators), an escaped character
// (never a wildcard), or a variable.
type tmplPart struct {
	text    string // literal text, or the escaped character
	escaped bool
	isVar   bool
	cd      *condition // the variable's key, for Context.scan
}

// template is a value with at least one placeholder.
type template struct {
	parts []tmplPart
}

// parseTemplate finds the placeholders of s; nil when it has none. An
// unterminated "${" is literal text.
func parseTemplate(s string) *template {
	if !strings.Contains(s, "${") {
		return nil
	}
	t := &template{}
	lit := func(x string) {
		if x != "" {
			t.parts = append(t.parts, tmplPart{text: x})
		}
	}
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			break
		}
		lit(s[:i])
		name := s[i+2 : i+j]
		switch name {
		case "*", "?", "$":
			t.parts = append(t.parts, tmplPart{text: name, escaped: true})
		default:
			cd := &condition{}
			cd.rawKey, cd.lowerKey = name, toLowerASCII(name)
			if err := cd.setKey(name, ""); err != nil {
				cd.key, cd.lowerKey = keyExtra, "\x00unresolvable" // matches no key
			}
			t.parts = append(t.parts, tmplPart{isVar: true, cd: cd})
		}
		s = s[i+j+1:]
	}
	lit(s)
	for _, p := range t.parts {
		if p.isVar || p.escaped {
			return t
		}
	}
	return nil
}

// expand writes the template for ctx into buf: the text and, in mask, which
// bytes are literal whatever they are (escapes, variable values). It
// reports false when a variable cannot be resolved.
func (t *template) expand(ctx *Context, buf []byte, mask []bool) ([]byte, []bool, bool) {
	for i := range t.parts {
		p := &t.parts[i]
		switch {
		case p.isVar:
			v, ok := ctx.single(p.cd)
			if !ok {
				return buf, mask, false
			}
			count(len(v) + 1)
			buf = append(buf, v...)
			for range len(v) {
				mask = append(mask, true)
			}
		default:
			count(len(p.text) + 1)
			buf = append(buf, p.text...)
			for range len(p.text) {
				mask = append(mask, p.escaped)
			}
		}
	}
	return buf, mask, true
}

// single returns the key's value when the request has exactly one.
func (c *Context) single(cd *condition) (string, bool) {
	if c == nil {
		return "", false
	}
	var v value
	n, _ := c.scan(cd, false, &v)
	if n != 1 {
		return "", false
	}
	return v.str(), true
}

// maskedGlob is matchSegments over an expanded template: a byte whose mask
// is set is literal even when it is * or ?. The pattern is cut on its
// unmasked stars as it is matched, and each segment between the anchored
// first and last is found leftmost, as matchSegments does: with
// strings.Index when it holds no wildcard ?, otherwise position by
// position in a short window or by Shift-And in a long one.
func maskedGlob(p []byte, mask []bool, s string, fold bool) bool {
	count(len(p) + 1) // finding the stars
	first, last := -1, -1
	for i, c := range p {
		if c == '*' && !mask[i] {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return len(s) == len(p) && maskedAt(p, mask, s, fold)
	}
	head, tail := p[:first], p[last+1:]
	if len(s) < len(head)+len(tail) || !maskedAt(head, mask[:first], s[:len(head)], fold) ||
		!maskedAt(tail, mask[last+1:], s[len(s)-len(tail):], fold) {
		return false
	}
	w := s[len(head) : len(s)-len(tail)]
	for i := first + 1; i < last; {
		j := i
		for p[j] != '*' || mask[j] {
			j++
		}
		if j > i {
			k := maskedIndex(p[i:j], mask[i:j], w, fold)
			if k < 0 {
				return false
			}
			w = w[k+j-i:]
		}
		i = j + 1
	}
	return true
}

// maskedAt is segmentAt for a masked segment.
func maskedAt(seg []byte, mask []bool, s string, fold bool) bool {
	i := 0
	for ; i < len(seg); i++ {
		c, b := seg[i], s[i]
		if fold {
			b = lowerASCII(b)
		}
		if b != c && (c != '?' || mask[i]) {
			break
		}
	}
	count(i + 1)
	return i == len(seg)
}

// maskedIndex is segmentIndex for a masked segment.
func maskedIndex(seg []byte, mask []bool, w string, fold bool) int {
	wild := fold
	for i, c := range seg {
		wild = wild || c == '?' && !mask[i]
	}
	count(len(seg) + 1)
	if !wild {
		// The expansion is not modified while it is searched for.
		g := segment{text: unsafe.String(&seg[0], len(seg))}
		return segmentIndex(&g, w, false)
	}
	for i := 0; i+len(seg) <= len(w); i++ {
		if maskedAt(seg, mask[:len(seg)], w[i:i+len(seg)], fold) {
			return i
		}
	}
	count(1)
	return -1
}

// matchTemplate matches s against a template: as a pattern (wildcards in
// the literal text) or, with exact, as a string (StringEquals); with arn,
// part by part as ArnLike does.
func (t *template) match(ctx *Context, s string, exact, fold, arn bool) bool {
	var (
		bufA  [256]byte
		maskA [256]bool
	)
	p, mask, ok := t.expand(ctx, bufA[:0], maskA[:0])
	if !ok {
		return false
	}
	if exact {
		count(len(p) + 1)
	}
	switch {
	case exact && fold:
		return strings.EqualFold(string(p), s)
	case exact:
		return string(p) == s
	case arn:
		count(len(p) + len(s) + 2)
		pp, okp := splitARNBytes(p)
		sp, oks := splitARN(s)
		if !okp || !oks {
			return okp == oks && maskedGlob(p, mask, s, false)
		}
		off := 0
		for i := range sp {
			if !maskedGlob(pp[i], mask[off:off+len(pp[i])], sp[i], false) {
				return false
			}
			off += len(pp[i]) + 1
		}
		return true
	}
	return maskedGlob(p, mask, s, fold)
}

// splitARNBytes is splitARN for an expanded pattern.
func splitARNBytes(b []byte) (parts [6][]byte, ok bool) {
	for i := 0; i < 5; i++ {
		j := -1
		for k, c := range b {
			if c == ':' {
				j = k
				break
			}
		}
		if j < 0 {
			return parts, false
		}
		parts[i], b = b[:j], b[j+1:]
	}
	parts[5] = b
	return parts, true
}
