package policy

import (
	"errors"
	"math/bits"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// Evaluation cost bound (issue 19.9).
//
// Every match the evaluator makes is linear in the value (matchSegments:
// the pattern split on its stars, each segment found once), but for a
// segment holding a ? and longer than 64 bytes, bounded by the product of
// its length and the value's. The request side is bounded too: the
// limits below are what Coffer lets a request carry (kms validates the
// encryption context at 8192 bytes, a key has at most 50 tags and 50
// aliases, ARNs are at most 2048 bytes), and Authorize refuses a request
// beyond them. So the work of one evaluation of a compiled policy has an
// upper bound that depends on the policy alone. Parse computes it, in
// steps (a step is one iteration of an inner matching loop: a byte
// compared, a value visited), and refuses a document whose bound exceeds
// MaxEvaluationCost, so that no policy can make each request on its key
// cost orders of magnitude more than a normal one.
//
// The formulas below mirror the counters the evaluator keeps under
// CountSteps; fuzz/policy checks that every accepted policy evaluates
// within its bound.

// MaxEvaluationCost is the largest worst-case cost, in steps, of one
// evaluation of one policy that Parse accepts. At about a nanosecond a
// matcher step on this project's machine the worst case stays near a
// millisecond (BENCHMARKS.md, "Policy evaluation cost bound"), while 32 KiB of
// ordinary statements — AWS's largest key policy — stays far below it.
const MaxEvaluationCost = 1_000_000

// Request limits the bound assumes. A request beyond them is refused by
// Authorize, AuthorizeIdentity and Evaluate (Deny): it could cost more than
// the bound.
const (
	// MaxRequestStringBytes bounds every single-valued string of a request:
	// the caller's ARN, the resource, and single-valued condition keys
	// (AWS's limit for an ARN).
	MaxRequestStringBytes = 2048
	// MaxActionBytes bounds the action name (Coffer's longest is far
	// shorter; actions come from the operation catalogue, not the caller).
	MaxActionBytes = 128
	// MaxEncryptionContextBytes bounds the encryption context: the sum of
	// its keys' and values' lengths (kms validates every request's
	// context against the same limit).
	MaxEncryptionContextBytes = 8192
	// MaxRequestListValues and MaxRequestListValueBytes bound the
	// multivalued keys: grant operations, aliases and tags of a key (at
	// most 50 of each), tag keys of a request, and the values of Extra.
	MaxRequestListValues     = 50
	MaxRequestListValueBytes = 256
	// MaxExtraKeys bounds the number of Context.Extra keys, each at most
	// MaxExtraKeyBytes long.
	MaxExtraKeys     = 8
	MaxExtraKeyBytes = 128
	// MaxRequestNameBytes bounds the short single-valued keys: names and
	// IDs (aws:username and sts:RoleSessionName are at most 64 characters
	// in IAM and STS, aws:userid a unique ID and a session name), the
	// caller's account, and enumerated values (kms:KeySpec, kms:KeyUsage,
	// kms:KeyOrigin, kms:EncryptionAlgorithm, kms:GrantConstraintType).
	MaxRequestNameBytes = 128
	// MaxResourceBytes bounds the resource: a key ARN, "*", or the ARN of
	// an IAM user or role (a path of at most 512 characters and a name of
	// at most 64, in IAM).
	MaxResourceBytes = 1024
	// maxEncryptionContextPairs is the most pairs a context of
	// MaxEncryptionContextBytes can hold: its keys are distinct and not
	// empty, so at most 256 of one byte and the rest of two or more.
	maxEncryptionContextPairs = 256 + (MaxEncryptionContextBytes-256)/2
)

// typedValueBytes bounds the text of a typed value (an IP address, a
// time) when a string operator formats it.
const typedValueBytes = 64

// Cost returns the policy's worst-case evaluation cost in steps: an upper
// bound on the work of deciding any request within the limits above.
func (p *Policy) Cost() int64 { return p.cost }

// evaluation step counting: a test hook, off in production (one atomic load
// per match).
var (
	counting atomic.Bool
	counted  atomic.Int64
)

func count(n int) {
	if counting.Load() {
		counted.Add(int64(n))
	}
}

// CountSteps runs fn and returns the evaluation steps it took, as the
// bound counts them. It is a test hook: evaluations running concurrently
// with fn are counted too, and calls of CountSteps must not overlap.
func CountSteps(fn func()) int64 {
	counted.Store(0)
	counting.Store(true)
	defer counting.Store(false)
	fn()
	return counted.Load()
}

// withinBounds reports whether a request is within the limits the cost
// bound assumes.
func (r *Request) withinBounds() bool {
	if len(r.PrincipalARN) > MaxRequestStringBytes || len(r.Resource) > MaxResourceBytes || len(r.Action) > MaxActionBytes {
		return false
	}
	c := r.Context
	if c == nil {
		return true
	}
	for _, s := range [...]string{c.GranteePrincipal, c.RetiringPrincipal, c.RequestAlias, c.PrincipalARN} {
		if len(s) > MaxRequestStringBytes {
			return false
		}
	}
	for _, s := range [...]string{c.EncryptionAlgorithm, c.GrantConstraintType, c.KeySpec, c.KeyUsage, c.KeyOrigin, c.ViaService,
		c.CallerAccount, c.Username, c.UserID, c.RoleSessionName} {
		if len(s) > MaxRequestNameBytes {
			return false
		}
	}
	if len(c.EncryptionContext) > maxEncryptionContextPairs {
		return false
	}
	total := 0
	for k, v := range c.EncryptionContext {
		total += len(k) + len(v)
	}
	if total > MaxEncryptionContextBytes {
		return false
	}
	if !listWithin(c.GrantOperations) || !listWithin(c.ResourceAliases) || !listWithin(c.TagKeys) ||
		!tagsWithin(c.ResourceTags) || !tagsWithin(c.RequestTags) || len(c.Extra) > MaxExtraKeys {
		return false
	}
	for k, l := range c.Extra {
		if len(k) > MaxExtraKeyBytes || !listWithin(l) {
			return false
		}
	}
	return true
}

func listWithin(l []string) bool {
	if len(l) > MaxRequestListValues {
		return false
	}
	for _, s := range l {
		if len(s) > MaxRequestListValueBytes {
			return false
		}
	}
	return true
}

func tagsWithin(tags []Tag) bool {
	if len(tags) > MaxRequestListValues {
		return false
	}
	for _, t := range tags {
		if len(t.Key) > MaxRequestListValueBytes || len(t.Value) > MaxRequestListValueBytes {
			return false
		}
	}
	return true
}

// reqBound is what a request may hold for a condition key: the steps of
// finding its values (scan), how many values (n), their total length
// (bytes) and the longest (maxLen).
type reqBound struct{ scan, n, bytes, maxLen int64 }

func boundOf(cd *condition) reqBound {
	const (
		s    = MaxRequestStringBytes
		ec   = MaxEncryptionContextBytes
		ln   = MaxRequestListValues
		lb   = MaxRequestListValueBytes
		list = ln * lb
	)
	switch cd.key {
	case keyEncryptionContext:
		// The values are those whose key equals subKey but for case: one
		// per spelling of subKey in its case-folding orbits, and at most
		// ec divided by the shortest spelling's length.
		variants, minLen := int64(1), 0
		for _, r := range cd.subKey {
			orbit, short := int64(1), utf8.RuneLen(r)
			for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
				orbit++
				short = min(short, utf8.RuneLen(f))
			}
			if r == utf8.RuneError { // an invalid byte decodes to it
				short = 1
			}
			minLen += short
			variants = min(variants*orbit, ec)
		}
		n := min(variants, int64(ec/max(minLen, 1)))
		// Finding them: a scan of at most ecIndexMin pairs, or a binary
		// search of the index and a walk of the matching run.
		sub := int64(len(cd.foldKey)) + 1
		scan := ecIndexMin*(1+int64(len(cd.subKey))) + (bitsLen(ec)+1)*sub + max(n, 1)*sub
		return reqBound{scan: scan, n: max(n, 1), bytes: ec, maxLen: ec}
	case keyEncryptionContextKeys:
		return reqBound{scan: 0, n: maxEncryptionContextPairs, bytes: ec, maxLen: ec}
	case keyGrantOperations, keyResourceAliases, keyTagKeys:
		return reqBound{n: ln, bytes: list, maxLen: lb}
	case keyResourceTag, keyRequestTag:
		return reqBound{scan: ln * (1 + lb), n: ln, bytes: list, maxLen: lb}
	case keySourceIP, keyCurrentTime:
		return reqBound{n: 1, bytes: typedValueBytes, maxLen: typedValueBytes}
	case keyGrantIsForAWSResource, keySecureTransport, keyReEncryptOnSameKey:
		return reqBound{n: 1, bytes: 5, maxLen: 5}
	case keyEncryptionAlgorithm, keyGrantConstraintType, keyKeySpec, keyKeyUsage, keyKeyOrigin, keyViaService,
		keyCallerAccount, keyUsername, keyUserID, keyRoleSessionName:
		return reqBound{n: 1, bytes: MaxRequestNameBytes, maxLen: MaxRequestNameBytes}
	case keyExtra:
		return reqBound{scan: int64(len(cd.lowerKey)) + 1 + MaxExtraKeys*(1+MaxExtraKeyBytes), n: ln, bytes: list, maxLen: lb}
	}
	return reqBound{n: 1, bytes: s, maxLen: s}
}

func bitsLen(n int) int64 { return int64(bits.Len(uint(n))) }

// segmentsCost bounds matchSegments' counted steps for a pattern against
// any value of length sLen. The anchored first and last segments cost
// their length plus one. The searches between them scan the value once
// between them (strings.Index and Shift-And never revisit a byte a
// previous segment consumed), at one step a byte plus one per search. A
// segment with a ? (or any, with fold) costs in addition either its
// position-by-position search of a window of at most shiftAndMin bytes
// (each position at most its length plus one), or its Shift-And table
// and, beyond 64 bytes, the comparison of every candidate whole.
func segmentsCost(segs []segment, sLen int64, fold bool) int64 {
	if len(segs) == 1 {
		return int64(len(segs[0].text)) + 1
	}
	mid := segs[1 : len(segs)-1]
	total := int64(len(segs[0].text)+len(segs[len(segs)-1].text)) + 2 // the anchors
	scan := sLen + 2*int64(len(mid)) + 1                              // the scans
	for i := range mid {
		if !mid[i].wild && !fold && len(mid[i].text) > indexBruteMax {
			scan *= 2 // Rabin-Karp (segmentIndex)
			break
		}
	}
	total += scan
	for i := range mid {
		if !mid[i].wild && !fold {
			continue
		}
		l := int64(len(mid[i].text))
		naive := (min(sLen, shiftAndMin)+1)*(l+1) + 1
		table := shiftAndMin + min(l, 64)
		if l > 64 {
			table += (sLen + 1) * (l + 1)
		}
		total += max(naive, table)
	}
	return total
}

// cost bounds pattern.match (or matchIn) against a value of length sLen;
// fold is that of the match (actions).
func (p *pattern) cost(sLen int64, fold bool) int64 {
	if p.tmpl != nil {
		return p.tmpl.cost(sLen, tmplGlob)
	}
	switch p.kind {
	case patAny:
		return 1
	case patLiteral, patPrefix:
		return int64(len(p.lit)) + 1
	}
	return segmentsCost(p.segs, sLen, fold)
}

// tmplMode is how a template is matched (template.match).
type tmplMode int8

const (
	tmplGlob  tmplMode = iota // as a pattern
	tmplExact                 // as a string (StringEquals…)
	tmplARN                   // part by part (ArnLike…)
)

func (c *condition) tmplMode() tmplMode {
	switch c.kind {
	case opArn:
		return tmplARN
	case opStringLike:
		return tmplGlob
	}
	return tmplExact
}

// cost bounds template.match against one value of length sLen: the
// expansion (finding each variable's value) and the match of the
// expansion.
func (t *template) cost(sLen int64, mode tmplMode) int64 {
	var expand, expLen int64
	for i := range t.parts {
		p := &t.parts[i]
		if p.isVar {
			b := boundOf(p.cd)
			expand += b.scan + b.n + b.maxLen + 1
			expLen += b.maxLen
			continue
		}
		expand += int64(len(p.text)) + 1
		expLen += int64(len(p.text))
	}
	switch mode {
	case tmplExact:
		return expand + expLen + 1
	case tmplARN:
		// both split (expLen+sLen+2), then six parts, each a masked glob
		return expand + expLen + sLen + 2 + 6*t.globCost(expLen, sLen)
	}
	return expand + t.globCost(expLen, sLen)
}

// globCost bounds maskedGlob over an expansion of at most expLen bytes
// against a value of at most sLen: finding the stars, the anchors, the
// scans (counted twice: strings.Index may run Rabin-Karp) and each
// middle segment's own step, all linear. Only the template's literal text
// holds wildcards (a variable's value is literal): when it holds a ?, a
// segment may be searched position by position, at most (sLen+1) × its
// length.
func (t *template) globCost(expLen, sLen int64) int64 {
	var stars int64
	wild := false
	for i := range t.parts {
		if p := &t.parts[i]; !p.isVar && !p.escaped {
			stars += int64(strings.Count(p.text, "*"))
			wild = wild || strings.IndexByte(p.text, '?') >= 0
		}
	}
	c := (expLen + 1) + (expLen + 2) + 2*(sLen+2*stars+1) + (expLen + stars)
	if wild {
		c += (sLen+1)*(expLen+1) + stars
	}
	return c
}

// arnCost bounds arnPattern.match against a value of length sLen: the
// value is split (sLen+1), then each part matched.
func (a *arnPattern) cost(sLen int64) int64 {
	c := sLen + 1
	if !a.split {
		return c + a.whole.cost(sLen, false)
	}
	for i := range a.parts {
		c += a.parts[i].cost(sLen, false)
	}
	return c
}

// cost bounds one evaluation of the condition: finding and visiting the
// key's values, then matching each against the policy's values. The match
// of one value costs costAt(its length), a linear function a + b·len, so
// over at most n values of at most maxLen bytes each and bytes in all the
// total is at most n·a + b·min(bytes, n·maxLen): as many values as can be
// long priced at maxLen, the rest at 0.
func (c *condition) cost() int64 {
	b := boundOf(c)
	total := b.scan + b.n
	if c.kind == opNull {
		return total
	}
	if c.kind == opString || c.kind == opBinary {
		// Strings of different lengths compare in one step; a value is
		// compared byte by byte only with policy values of its length, and
		// at most bytes/len of the request's values have that length.
		for _, w := range c.eqValues {
			total += b.n
			if l := int64(len(w)); l > 0 {
				total += min(b.n*l, b.bytes)
			}
		}
		if len(c.tmpls) == 0 {
			return total
		}
	}
	long := b.n
	if b.maxLen > 0 {
		long = min(b.n, (b.bytes+b.maxLen-1)/b.maxLen)
	}
	return total + long*c.costAt(b.maxLen) + (b.n-long)*c.costAt(0)
}

// costAt is the per-value part of cost for a value of length sLen.
func (c *condition) costAt(sLen int64) int64 {
	per := int64(0)
	for _, t := range c.tmpls {
		per += t.cost(sLen, c.tmplMode())
	}
	switch c.kind {
	case opStringIgnoreCase, opBool:
		vals := c.eqValues
		if c.kind == opBool {
			vals = c.values
		}
		for _, v := range vals {
			per += int64(len(v)) + 1
		}
	case opStringLike:
		for i := range c.pats {
			per += c.pats[i].cost(sLen, false)
		}
	case opArn:
		for i := range c.arns {
			per += c.arns[i].cost(sLen)
		}
	case opNumeric:
		per += sLen + 1 + int64(len(c.numbers))
	case opDate:
		per += 8*(sLen+1) + int64(len(c.times))
	case opIP:
		per += sLen + 1 + int64(len(c.nets))
	}
	return per
}

// cost bounds one evaluation of the statement: principals, actions,
// resources, conditions.
func (st *statement) cost() int64 {
	total := int64(1)
	if ps := st.principals; ps != nil {
		total += ps.cost()
	}
	for i := range st.actions {
		total += st.actions[i].cost(MaxActionBytes, true)
	}
	for i := range st.resources {
		total += st.resources[i].cost(MaxResourceBytes, false)
	}
	for i := range st.conditions {
		total += st.conditions[i].cost()
	}
	return total
}

// cost bounds principalSet.match and matchExactly: each entry is compared
// with the caller's ARN, at most its length plus one.
func (ps *principalSet) cost() int64 {
	c := int64(1)
	for _, s := range ps.services {
		c += int64(len(s)) + 1
	}
	for i := range ps.arns {
		c += int64(len(ps.arns[i].arn)+len(ps.arns[i].sessions)) + 2
	}
	for i := range ps.roots {
		c += int64(len(ps.roots[i].arn)+len(ps.roots[i].prefix)) + 2
	}
	return c
}

// computeCost sums the statements' bounds, saturating.
func (p *Policy) computeCost() int64 {
	var total int64
	for i := range p.statements {
		total += p.statements[i].cost()
		if total > 1<<60 {
			return 1 << 60
		}
	}
	return total
}

// costError is the refusal of a policy over the bound, naming the limit.
func costError(cost int64) error {
	return malformed("The policy's worst-case evaluation cost (%d steps: statements × condition values × pattern length) exceeds the limit of %d steps (MaxEvaluationCost); use fewer statements, condition values or wildcards.", cost, MaxEvaluationCost)
}

// errAliasesBound is the InputErr of a key whose aliases exceed the
// request limits (kms allows 50 per key): the decision is refused.
var errAliasesBound = errors.New("policy: the key's aliases exceed the evaluation limits")
