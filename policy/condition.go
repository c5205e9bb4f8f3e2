package policy

import (
	"cmp"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// opKind is the family of a condition operator.
type opKind int8

const (
	opString opKind = iota
	opStringIgnoreCase
	opStringLike
	opBinary
	opNumeric
	opDate
	opBool
	opIP
	opArn
	opNull
)

// comparison is what a Numeric* or Date* operator asks of (request, policy).
type comparison int8

const (
	cmpEq comparison = iota
	cmpLt
	cmpLe
	cmpGt
	cmpGe
)

func (c comparison) holds(order int) bool {
	switch c {
	case cmpLt:
		return order < 0
	case cmpLe:
		return order <= 0
	case cmpGt:
		return order > 0
	case cmpGe:
		return order >= 0
	}
	return order == 0
}

type operator struct {
	kind   opKind
	cmp    comparison
	negate bool // the operator holds when the positive one does not
}

var operators = map[string]operator{
	"StringEquals":              {opString, cmpEq, false},
	"StringNotEquals":           {opString, cmpEq, true},
	"StringEqualsIgnoreCase":    {opStringIgnoreCase, cmpEq, false},
	"StringNotEqualsIgnoreCase": {opStringIgnoreCase, cmpEq, true},
	"StringLike":                {opStringLike, cmpEq, false},
	"StringNotLike":             {opStringLike, cmpEq, true},
	"BinaryEquals":              {opBinary, cmpEq, false},
	"NumericEquals":             {opNumeric, cmpEq, false},
	"NumericNotEquals":          {opNumeric, cmpEq, true},
	"NumericLessThan":           {opNumeric, cmpLt, false},
	"NumericLessThanEquals":     {opNumeric, cmpLe, false},
	"NumericGreaterThan":        {opNumeric, cmpGt, false},
	"NumericGreaterThanEquals":  {opNumeric, cmpGe, false},
	"DateEquals":                {opDate, cmpEq, false},
	"DateNotEquals":             {opDate, cmpEq, true},
	"DateLessThan":              {opDate, cmpLt, false},
	"DateLessThanEquals":        {opDate, cmpLe, false},
	"DateGreaterThan":           {opDate, cmpGt, false},
	"DateGreaterThanEquals":     {opDate, cmpGe, false},
	"Bool":                      {opBool, cmpEq, false},
	"IpAddress":                 {opIP, cmpEq, false},
	"NotIpAddress":              {opIP, cmpEq, true},
	"ArnEquals":                 {opArn, cmpEq, false},
	"ArnLike":                   {opArn, cmpEq, false},
	"ArnNotEquals":              {opArn, cmpEq, true},
	"ArnNotLike":                {opArn, cmpEq, true},
	"Null":                      {opNull, cmpEq, false},
}

type setQualifier int8

const (
	setNone setQualifier = iota
	setAny               // ForAnyValue:
	setAll               // ForAllValues:
)

// condition is one (operator, key, values) triple; the conditions of a
// statement all have to hold.
type condition struct {
	op       string // as written: qualifier, operator, IfExists
	kind     opKind
	cmp      comparison
	negate   bool
	ifExists bool
	set      setQualifier
	key      keyID
	rawKey   string // as written
	lowerKey string // for Context.Extra
	// subKey is the part of a key after its prefix, as written: the context
	// key of kms:EncryptionContext:<key>, the tag key of
	// aws:ResourceTag/<key> and aws:RequestTag/<key>.
	subKey string
	// foldKey is subKey case-folded (foldCase), to find a key of a large
	// encryption context in its index.
	foldKey string
	values  []string

	// vars: the document's Version expands policy variables; tmpls are
	// the values that hold placeholders (String* and Arn* operators).
	vars  bool
	tmpls []*template
	// eqValues are the values without placeholders (all of them when the
	// document has no variables), which String* compare directly; values
	// stays as written, for marshalling.
	eqValues []string
	// Compiled forms of values, for the operators that need them.
	pats    patterns
	arns    []arnPattern
	numbers []float64
	times   []time.Time
	nets    []netip.Prefix
	// Null: which answers the policy accepts (absent, present).
	nullAbsent, nullPresent bool
}

func parseConditions(n *node, where string, vars bool) ([]condition, error) {
	if n.kind != nodeObject {
		return nil, malformed("The Condition of %s must be an object.", where)
	}
	var out []condition
	for i, opName := range n.names {
		c := condition{op: opName, vars: vars}
		name := opName
		if rest, ok := strings.CutPrefix(name, "ForAnyValue:"); ok {
			c.set, name = setAny, rest
		} else if rest, ok := strings.CutPrefix(name, "ForAllValues:"); ok {
			c.set, name = setAll, rest
		}
		if rest, ok := strings.CutSuffix(name, "IfExists"); ok && rest != "Null" {
			c.ifExists, name = true, rest
		}
		op, ok := operators[name]
		if !ok {
			return nil, malformed("Unknown condition operator: %s (%s).", opName, where)
		}
		c.kind, c.cmp, c.negate = op.kind, op.cmp, op.negate
		block := &n.elems[i]
		if block.kind != nodeObject || len(block.names) == 0 {
			return nil, malformed("The condition operator %s in %s must map one or more condition keys to values.", opName, where)
		}
		for j, key := range block.names {
			cc := c
			if err := cc.setKey(key, where); err != nil {
				return nil, err
			}
			if cc.set == setAll && cc.key.singleValued() {
				// ForAllValues holds vacuously when the key is absent: on a
				// key with one value at most, an Allow then allows every
				// request without it (a request with no encryption
				// context, for kms:EncryptionContext:<key>). IAM Access
				// Analyzer reports this as an error ("ForAllValues with
				// single-valued condition key"); refusing it is the
				// stricter choice (DESIGN.md).
				return nil, malformed("The condition %s on %s in %s uses ForAllValues with a single-valued condition key, which holds for every request without the key; use %s.",
					opName, key, where, strings.TrimPrefix(opName, "ForAllValues:"))
			}
			vals, err := conditionValues(&block.elems[j], key, where)
			if err != nil {
				return nil, err
			}
			if err := cc.compile(vals); err != nil {
				return nil, malformed("The condition %s on %s in %s has %s.", opName, key, where, err.Error())
			}
			out = append(out, cc)
		}
	}
	return out, nil
}

func (c *condition) setKey(k, where string) error {
	c.rawKey, c.lowerKey = k, toLowerASCII(k)
	if ec, ok := strings.CutPrefix(c.lowerKey, "kms:encryptioncontext:"); ok {
		if ec == "" {
			return malformed("The condition key %s in %s names no encryption context key.", k, where)
		}
		c.key, c.subKey = keyEncryptionContext, k[len("kms:encryptioncontext:"):]
		c.foldKey = foldCase(c.subKey)
		return nil
	}
	for _, tk := range [...]struct {
		prefix string
		key    keyID
	}{{"aws:resourcetag/", keyResourceTag}, {"aws:requesttag/", keyRequestTag}} {
		if tag, ok := strings.CutPrefix(c.lowerKey, tk.prefix); ok {
			if tag == "" {
				return malformed("The condition key %s in %s names no tag key.", k, where)
			}
			c.key, c.subKey = tk.key, k[len(tk.prefix):]
			return nil
		}
	}
	if i := strings.IndexByte(k, ':'); i <= 0 || i == len(k)-1 {
		return malformed("The condition key %q in %s must be prefaced by a vendor, e.g. kms:, aws:.", k, where)
	}
	c.key = knownKeys[c.lowerKey] // keyExtra when not known
	return nil
}

// conditionValues reads a condition key's value or list of values; AWS
// takes numbers and booleans for their text.
func conditionValues(n *node, key, where string) ([]string, error) {
	bad := func() error {
		return malformed("The values of condition key %s in %s must be strings, numbers or booleans, or a non-empty list of them.", key, where)
	}
	scalar := func(n *node) bool { return n.kind == nodeString || n.kind == nodeNumber || n.kind == nodeBool }
	if n.kind != nodeArray {
		if !scalar(n) {
			return nil, bad()
		}
		return []string{n.text}, nil
	}
	if len(n.elems) == 0 {
		return nil, bad()
	}
	out := make([]string, len(n.elems))
	for i := range n.elems {
		if !scalar(&n.elems[i]) {
			return nil, bad()
		}
		out[i] = n.elems[i].text
	}
	return out, nil
}

// compile checks the values against the operator and precomputes what
// matching needs. Its errors complete the sentence "The condition … has …".
func (c *condition) compile(vals []string) error {
	c.values, c.eqValues = vals, vals
	if c.vars && (c.kind == opString || c.kind == opStringIgnoreCase || c.kind == opStringLike || c.kind == opArn) {
		// Values with placeholders are matched through their template
		// only, so that the literal text "${aws:username}" never matches.
		plain := make([]string, 0, len(vals))
		for _, v := range vals {
			if t := parseTemplate(v); t != nil {
				c.tmpls = append(c.tmpls, t)
			} else {
				plain = append(plain, v)
			}
		}
		vals = plain
	}
	c.eqValues = vals
	for _, v := range vals {
		switch c.kind {
		case opStringLike:
			c.pats = append(c.pats, compilePattern(v))
		case opArn:
			c.arns = append(c.arns, compileARNPattern(v))
		case opNumeric:
			f, ok := parseNumber(v)
			if !ok {
				return fmt.Errorf("a value that is not a number: %q", v)
			}
			c.numbers = append(c.numbers, f)
		case opDate:
			t, ok := parseDate(v)
			if !ok {
				return fmt.Errorf("a value that is not a date: %q", v)
			}
			c.times = append(c.times, t)
		case opBool, opNull:
			lv := toLowerASCII(v)
			if lv != "true" && lv != "false" {
				return fmt.Errorf("a value that is not true or false: %q", v)
			}
			c.nullAbsent = c.nullAbsent || lv == "true"
			c.nullPresent = c.nullPresent || lv == "false"
		case opIP:
			p, ok := parseNet(v)
			if !ok {
				return fmt.Errorf("a value that is not an IP address or CIDR block: %q", v)
			}
			c.nets = append(c.nets, p)
		}
	}
	return nil
}

// eval decides the condition for a request. A condition on an absent key
// holds only with IfExists, ForAllValues (vacuously), or a negated
// operator; Null asks about presence itself.
func (c *condition) eval(ctx *Context) bool {
	if c.kind == opNull {
		if ctx.present(c) {
			return c.nullPresent
		}
		return c.nullAbsent
	}
	n, matched := ctx.scan(c, true, nil)
	if n == 0 {
		switch {
		case c.ifExists, c.set == setAll:
			return true
		case c.set == setAny:
			return false
		}
		return c.negate
	}
	switch {
	case c.set == setAny && c.negate: // some value matches none of the policy's
		return matched < n
	case c.set == setAll && !c.negate: // every value matches one of the policy's
		return matched == n
	case c.negate: // no value matches any of the policy's
		return matched == 0
	}
	return matched > 0
}

// matchAny applies the positive form of the operator to one request value
// and each policy value, and reports whether any pair matches.
func (c *condition) matchAny(v *value, ctx *Context) bool {
	if c.tmpls != nil && c.matchTemplates(v, ctx) {
		return true
	}
	switch c.kind {
	case opString, opBinary:
		s := v.str()
		for _, want := range c.eqValues {
			if len(s) == len(want) { // Go compares lengths first
				count(len(want))
			}
			count(1)
			if s == want {
				return true
			}
		}
	case opStringIgnoreCase:
		s := v.str()
		for _, want := range c.eqValues {
			count(len(want) + 1)
			if strings.EqualFold(s, want) {
				return true
			}
		}
	case opBool:
		s := v.str()
		for _, want := range c.values {
			count(len(want) + 1)
			if strings.EqualFold(s, want) {
				return true
			}
		}
	case opStringLike:
		return c.pats.match(v.str(), false)
	case opArn:
		s := v.str()
		for i := range c.arns {
			if c.arns[i].match(s) {
				return true
			}
		}
	case opNumeric:
		s := v.str()
		count(len(s) + 1 + len(c.numbers))
		x, ok := parseNumber(s)
		if !ok {
			return false
		}
		for _, want := range c.numbers {
			if c.cmp.holds(cmp.Compare(x, want)) {
				return true
			}
		}
	case opDate:
		t := v.t
		count(8*(len(v.s)+1) + len(c.times))
		if v.kind != valTime {
			var ok bool
			if t, ok = parseDate(v.s); !ok {
				return false
			}
		}
		for _, want := range c.times {
			if c.cmp.holds(t.Compare(want)) {
				return true
			}
		}
	case opIP:
		addr := v.ip
		count(len(v.s) + 1 + len(c.nets))
		if v.kind != valIP {
			var err error
			if addr, err = netip.ParseAddr(v.s); err != nil {
				return false
			}
		}
		addr = addr.Unmap()
		for _, p := range c.nets {
			if p.Contains(addr) {
				return true
			}
		}
	}
	return false
}

// parseNumber reads a decimal number, optionally signed and with a
// fraction and exponent; not the hexadecimal, Inf and NaN forms
// strconv.ParseFloat also takes.
func parseNumber(s string) (float64, bool) {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	digits := 0
	for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		digits++
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		exp := i
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		}
		if i == exp {
			return 0, false
		}
	}
	if i != len(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil // out of range is an error too
}

// dateLayouts are the ISO 8601 forms AWS documents for Date* values.
var dateLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04Z07:00", "2006-01-02"}

// parseDate reads an ISO 8601 date or time, or epoch seconds.
func parseDate(v string) (time.Time, bool) {
	if v == "" {
		return time.Time{}, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), true
	}
	if len(v) < len("2006-01-02") || v[4] != '-' {
		return time.Time{}, false // spares time.Parse, whose failures allocate
	}
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseNet reads a CIDR block or a single address (a /32 or /128).
func parseNet(v string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(v); err == nil {
		if p.Addr().Is4In6() && p.Bits() >= 96 { // requests are compared unmapped
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

// matchTemplates matches a request value against the condition's values
// that hold policy variables.
func (c *condition) matchTemplates(v *value, ctx *Context) bool {
	s := v.str()
	for _, t := range c.tmpls {
		if t.match(ctx, s, c.kind != opStringLike && c.kind != opArn, c.kind == opStringIgnoreCase, c.kind == opArn) {
			return true
		}
	}
	return false
}
