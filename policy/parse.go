package policy

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var (
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	iamARNRE  = regexp.MustCompile(`^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:(root|user/[\w+=,.@/-]+|role/[\w+=,.@/-]+|assumed-role/[\w+=,.@/-]+)$`)
)

// Parse compiles a policy document of the given kind.
func Parse(doc []byte, kind Kind) (*Policy, error) {
	if len(doc) > MaxSize {
		return nil, malformed("Policy document exceeds the maximum size of %d bytes.", MaxSize)
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		return nil, malformed("The policy is not valid JSON.")
	}
	if dec.More() {
		return nil, malformed("The policy has data after the JSON document.")
	}
	p := &Policy{kind: kind}
	var stmts []any
	for k, v := range top {
		switch k {
		case "Version":
			s, ok := v.(string)
			if !ok || (s != "2012-10-17" && s != "2008-10-17") {
				return nil, malformed("The policy Version must be \"2012-10-17\" or \"2008-10-17\".")
			}
		case "Id":
			if _, ok := v.(string); !ok {
				return nil, malformed("The policy Id must be a string.")
			}
		case "Statement":
			switch st := v.(type) {
			case []any:
				stmts = st
			case map[string]any:
				stmts = []any{st}
			default:
				return nil, malformed("The policy Statement must be an object or a list of objects.")
			}
		default:
			return nil, malformed("The policy contains an unsupported element: %s.", k)
		}
	}
	if stmts == nil {
		return nil, malformed("The policy must contain a Statement.")
	}
	sids := map[string]bool{}
	for i, raw := range stmts {
		obj, ok := raw.(map[string]any)
		if !ok {
			return nil, malformed("Statement %d is not an object.", i+1)
		}
		st, err := parseStatement(obj, kind, i+1)
		if err != nil {
			return nil, err
		}
		if st.sid != "" {
			if sids[st.sid] {
				return nil, malformed("Statement IDs (SID) must be unique within a policy: %s.", st.sid)
			}
			sids[st.sid] = true
		}
		p.statements = append(p.statements, st)
	}
	return p, nil
}

func stringList(v any) ([]string, bool) {
	switch x := v.(type) {
	case string:
		return []string{x}, true
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, len(out) > 0
	}
	return nil, false
}

func parseStatement(obj map[string]any, kind Kind, n int) (statement, error) {
	var st statement
	name := func() string {
		if st.sid != "" {
			return "statement " + strconv.Quote(st.sid)
		}
		return "statement " + strconv.Itoa(n)
	}
	if sid, ok := obj["Sid"]; ok {
		s, ok := sid.(string)
		if !ok {
			return st, malformed("The Sid of statement %d must be a string.", n)
		}
		st.sid = s
	}
	for k, v := range obj {
		switch k {
		case "Sid":
		case "Effect":
			switch v {
			case "Allow":
				st.allow = true
			case "Deny":
			default:
				return st, malformed("The Effect of %s must be \"Allow\" or \"Deny\".", name())
			}
		case "Principal", "NotPrincipal":
			ps, err := parsePrincipals(v)
			if err != nil {
				return st, malformed("Policy contains a statement with one or more invalid principals (%s).", name())
			}
			st.principals, st.hasPrincipal, st.notPrincipal = ps, true, k == "NotPrincipal"
		case "Action", "NotAction":
			list, ok := stringList(v)
			if !ok {
				return st, malformed("The %s of %s must be a string or a list of strings.", k, name())
			}
			for _, a := range list {
				if a != "*" && !strings.Contains(a, ":") {
					return st, malformed("Action %q in %s has no service prefix.", a, name())
				}
				st.actions = append(st.actions, compileGlob(strings.ToLower(a)))
			}
			st.hasAction, st.notAction = true, k == "NotAction"
		case "Resource", "NotResource":
			list, ok := stringList(v)
			if !ok {
				return st, malformed("The %s of %s must be a string or a list of strings.", k, name())
			}
			for _, r := range list {
				st.resources = append(st.resources, compileGlob(r))
			}
			st.hasResource, st.notResource = true, k == "NotResource"
		case "Condition":
			conds, err := parseConditions(v, name())
			if err != nil {
				return st, err
			}
			st.conditions = conds
		default:
			return st, malformed("The policy contains an unsupported element in %s: %s.", name(), k)
		}
	}
	if _, ok := obj["Effect"]; !ok {
		return st, malformed("Policy contains a statement with no Effect (%s).", name())
	}
	if _, a := obj["Action"]; a {
		if _, na := obj["NotAction"]; na {
			return st, malformed("A statement cannot have both Action and NotAction (%s).", name())
		}
	}
	if _, r := obj["Resource"]; r {
		if _, nr := obj["NotResource"]; nr {
			return st, malformed("A statement cannot have both Resource and NotResource (%s).", name())
		}
	}
	_, p := obj["Principal"]
	_, np := obj["NotPrincipal"]
	switch {
	case p && np:
		return st, malformed("A statement cannot have both Principal and NotPrincipal (%s).", name())
	case kind == KeyPolicy && !p && !np:
		return st, malformed("Policy contains a statement with no Principal (%s); key policy statements must name one.", name())
	case kind == IdentityPolicy && (p || np):
		return st, malformed("Identity policies cannot name a Principal (%s).", name())
	}
	if !st.hasAction {
		return st, malformed("Policy statement must contain actions (%s).", name())
	}
	return st, nil
}

func parsePrincipals(v any) (*principalSet, error) {
	ps := &principalSet{}
	if s, ok := v.(string); ok {
		if s != "*" {
			return nil, errBadPrincipal
		}
		ps.any = true
		return ps, nil
	}
	obj, ok := v.(map[string]any)
	if !ok || len(obj) == 0 {
		return nil, errBadPrincipal
	}
	for k, val := range obj {
		list, ok := stringList(val)
		if !ok {
			return nil, errBadPrincipal
		}
		switch k {
		case "AWS":
			for _, a := range list {
				switch {
				case a == "*":
					ps.any = true
				case accountRE.MatchString(a):
					ps.accounts = append(ps.accounts, a)
				case iamARNRE.MatchString(a):
					if acct, ok := strings.CutSuffix(a, ":root"); ok {
						ps.accounts = append(ps.accounts, acct[strings.LastIndexByte(acct, ':')+1:])
					} else {
						ps.arns = append(ps.arns, a)
					}
				default:
					return nil, errBadPrincipal
				}
			}
		case "Service", "Federated", "CanonicalUser":
			for _, a := range list {
				if a == "" {
					return nil, errBadPrincipal
				}
				ps.services = append(ps.services, a)
			}
		default:
			return nil, errBadPrincipal
		}
	}
	return ps, nil
}

var errBadPrincipal = malformed("invalid principal")

// condition operators.
type opKind int8

const (
	opString opKind = iota
	opStringIgnoreCase
	opStringLike
	opNumeric
	opDate
	opBool
	opIP
	opArn
	opNull
)

type cmp int8

const (
	cmpEq cmp = iota
	cmpLt
	cmpLe
	cmpGt
	cmpGe
)

var operators = map[string]struct {
	kind   opKind
	cmp    cmp
	negate bool
}{
	"StringEquals": {opString, cmpEq, false}, "StringNotEquals": {opString, cmpEq, true},
	"StringEqualsIgnoreCase": {opStringIgnoreCase, cmpEq, false}, "StringNotEqualsIgnoreCase": {opStringIgnoreCase, cmpEq, true},
	"StringLike": {opStringLike, cmpEq, false}, "StringNotLike": {opStringLike, cmpEq, true},
	"NumericEquals": {opNumeric, cmpEq, false}, "NumericNotEquals": {opNumeric, cmpEq, true},
	"NumericLessThan": {opNumeric, cmpLt, false}, "NumericLessThanEquals": {opNumeric, cmpLe, false},
	"NumericGreaterThan": {opNumeric, cmpGt, false}, "NumericGreaterThanEquals": {opNumeric, cmpGe, false},
	"DateEquals": {opDate, cmpEq, false}, "DateNotEquals": {opDate, cmpEq, true},
	"DateLessThan": {opDate, cmpLt, false}, "DateLessThanEquals": {opDate, cmpLe, false},
	"DateGreaterThan": {opDate, cmpGt, false}, "DateGreaterThanEquals": {opDate, cmpGe, false},
	"Bool":      {opBool, cmpEq, false},
	"IpAddress": {opIP, cmpEq, false}, "NotIpAddress": {opIP, cmpEq, true},
	"ArnEquals": {opArn, cmpEq, false}, "ArnLike": {opArn, cmpEq, false},
	"ArnNotEquals": {opArn, cmpEq, true}, "ArnNotLike": {opArn, cmpEq, true},
	"Null": {opNull, cmpEq, false},
}

func parseConditions(v any, stmt string) ([]condition, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, malformed("The Condition of %s must be an object.", stmt)
	}
	var out []condition
	for opName, block := range obj {
		name := opName
		c := condition{opName: opName}
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
			return nil, malformed("Unknown condition operator: %s (%s).", opName, stmt)
		}
		c.kind, c.cmp, c.negate = op.kind, op.cmp, op.negate
		keys, ok := block.(map[string]any)
		if !ok || len(keys) == 0 {
			return nil, malformed("The condition %s of %s must map condition keys to values.", opName, stmt)
		}
		for key, raw := range keys {
			cc := c
			if err := cc.setKey(key); err != nil {
				return nil, malformed("%s (%s).", err.Error(), stmt)
			}
			vals, err := conditionValues(raw)
			if err == nil && len(vals) == 0 {
				return nil, malformed("Condition key %s in %s has no values.", key, stmt)
			}
			if err != nil {
				return nil, malformed("The values of condition key %s in %s must be strings, numbers or booleans.", key, stmt)
			}
			if err := cc.compile(vals); err != nil {
				return nil, malformed("Condition %s on %s in %s: %s.", opName, key, stmt, err.Error())
			}
			out = append(out, cc)
		}
	}
	return out, nil
}

func conditionValues(raw any) ([]string, error) {
	one := func(v any) (string, bool) {
		switch x := v.(type) {
		case string:
			return x, true
		case json.Number:
			return x.String(), true
		case bool:
			return strconv.FormatBool(x), true
		}
		return "", false
	}
	if l, ok := raw.([]any); ok {
		out := make([]string, 0, len(l))
		for _, v := range l {
			s, ok := one(v)
			if !ok {
				return nil, errBadValue
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, ok := one(raw)
	if !ok {
		return nil, errBadValue
	}
	return []string{s}, nil
}

var errBadValue = malformed("bad value")

// compile turns the condition's values into the matchers its operator uses.
func (c *condition) compile(vals []string) error {
	c.values = vals
	switch c.kind {
	case opStringLike, opArn:
		for _, v := range vals {
			c.globs = append(c.globs, compileGlob(v))
		}
	case opStringIgnoreCase:
		for i, v := range vals {
			c.values[i] = strings.ToLower(v)
		}
	case opNumeric:
		for _, v := range vals {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return malformed("%q is not a number", v)
			}
			c.numbers = append(c.numbers, f)
		}
	case opDate:
		for _, v := range vals {
			t, ok := parseDate(v)
			if !ok {
				return malformed("%q is not a date", v)
			}
			c.numbers = append(c.numbers, float64(t.UnixNano())/1e9)
		}
	case opBool, opNull:
		for i, v := range vals {
			lv := strings.ToLower(v)
			if lv != "true" && lv != "false" {
				return malformed("%q is not true or false", v)
			}
			c.values[i] = lv
		}
	case opIP:
		for _, v := range vals {
			pfx, err := netip.ParsePrefix(v)
			if err != nil {
				addr, aerr := netip.ParseAddr(v)
				if aerr != nil {
					return malformed("%q is not an IP address or CIDR block", v)
				}
				pfx = netip.PrefixFrom(addr, addr.BitLen())
			}
			c.prefixes = append(c.prefixes, pfx.Masked())
		}
	}
	return nil
}

// parseDate reads ISO 8601 dates and times, or epoch seconds.
func parseDate(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), true
	}
	return time.Time{}, false
}
