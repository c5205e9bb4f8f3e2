package policy

import (
	"net/netip"
	"strconv"
	"strings"
)

type setQualifier int8

const (
	setNone setQualifier = iota
	setAny
	setAll
)

type condition struct {
	opName   string // as written, for marshalling
	kind     opKind
	cmp      cmp
	negate   bool
	ifExists bool
	set      setQualifier
	key      string // lower case; "kms:encryptioncontext:" for context sub-keys
	rawKey   string
	ecKey    string // the case-sensitive sub-key of kms:EncryptionContext:
	values   []string
	globs    []glob
	numbers  []float64
	prefixes []netip.Prefix
}

func (c *condition) setKey(k string) error {
	if k == "" {
		return malformed("empty condition key")
	}
	c.rawKey = k
	lk := strings.ToLower(k)
	if strings.HasPrefix(lk, "kms:encryptioncontext:") {
		c.key, c.ecKey = "kms:encryptioncontext:", k[len("kms:encryptioncontext:"):]
		if c.ecKey == "" {
			return malformed("condition key %s names no encryption context key", k)
		}
		return nil
	}
	if !strings.Contains(lk, ":") {
		return malformed("condition key %s has no service prefix", k)
	}
	c.key = lk
	return nil
}

// eval decides the condition for a request's context.
func (c *condition) eval(ctx *Context) bool {
	var buf [1]string
	vals, present := ctx.lookup(c, &buf)
	if c.kind == opNull {
		want := c.values[0] == "true" // Null: true means "absent"
		return want == !present
	}
	if !present || len(vals) == 0 {
		switch {
		case c.set == setAll:
			return true // vacuously: every one of no values matches
		case c.ifExists || c.negate:
			return true
		}
		return false
	}
	switch c.set {
	case setAll:
		for _, v := range vals {
			if !c.matchOne(v) {
				return false
			}
		}
		return true
	default: // ForAnyValue and single-valued keys
		for _, v := range vals {
			if c.matchOne(v) {
				return true
			}
		}
		return false
	}
}

// matchOne applies the operator to one context value; negated operators
// hold when the value matches none of the policy's values.
func (c *condition) matchOne(v string) bool {
	m := c.matchAny(v)
	if c.negate {
		return !m
	}
	return m
}

func (c *condition) matchAny(v string) bool {
	switch c.kind {
	case opString:
		for _, want := range c.values {
			if v == want {
				return true
			}
		}
	case opStringIgnoreCase:
		for _, want := range c.values {
			if strings.EqualFold(v, want) {
				return true
			}
		}
	case opStringLike, opArn:
		return anyGlob(c.globs, v, false)
	case opBool:
		return strings.EqualFold(v, c.values[0])
	case opNumeric, opDate:
		var x float64
		if c.kind == opNumeric {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return false
			}
			x = f
		} else {
			t, ok := parseDate(v)
			if !ok {
				return false
			}
			x = float64(t.UnixNano()) / 1e9
		}
		for _, n := range c.numbers {
			switch c.cmp {
			case cmpEq:
				if x == n {
					return true
				}
			case cmpLt:
				if x < n {
					return true
				}
			case cmpLe:
				if x <= n {
					return true
				}
			case cmpGt:
				if x > n {
					return true
				}
			case cmpGe:
				if x >= n {
					return true
				}
			}
		}
	case opIP:
		addr, err := netip.ParseAddr(v)
		if err != nil {
			return false
		}
		for _, p := range c.prefixes {
			if p.Contains(addr.Unmap()) || p.Contains(addr) {
				return true
			}
		}
	}
	return false
}
