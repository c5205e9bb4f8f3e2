package policy

import (
	"strconv"
	"strings"
)

// Parse compiles a policy document of the given kind. It returns a
// *MalformedError (wrapping ErrMalformed) for a document that is too large,
// not JSON, or not a policy; errors are reported in document order, so the
// same document always gives the same message. A document whose
// worst-case evaluation cost exceeds MaxEvaluationCost is refused
// (cost.go).
func Parse(doc []byte, kind Kind) (*Policy, error) {
	p, err := parse(doc, kind)
	if err != nil {
		return nil, err
	}
	if p.cost > MaxEvaluationCost {
		return nil, costError(p.cost)
	}
	return p, nil
}

// ParseStored is Parse for a document accepted before the cost bound
// existed (a stored key or identity policy): the bound is not enforced,
// so that an upgrade never makes a key's policy stop compiling, which
// would lock everyone out of the key. New documents go through Parse.
func ParseStored(doc []byte, kind Kind) (*Policy, error) { return parse(doc, kind) }

func parse(doc []byte, kind Kind) (*Policy, error) {
	if len(doc) > MaxSize {
		return nil, malformed("Policy document exceeds the maximum size of %d bytes.", MaxSize)
	}
	if kind == KeyPolicy {
		if err := checkKeyPolicyCharacters(doc); err != nil {
			return nil, err
		}
	}
	top, err := decodeJSON(doc)
	if err != nil {
		return nil, err
	}
	if top.kind != nodeObject {
		return nil, malformed("The policy must be a JSON object.")
	}
	p := &Policy{kind: kind}
	var stmts []node
	hasStatement := false
	for i, name := range top.names {
		v := &top.elems[i]
		switch name {
		case "Version":
			if v.kind != nodeString || v.text != "2012-10-17" && v.text != "2008-10-17" {
				return nil, malformed(`The policy Version must be "2012-10-17" or "2008-10-17".`)
			}
			p.version = v.text
		case "Id":
			if v.kind != nodeString {
				return nil, malformed("The policy Id must be a string.")
			}
			p.id, p.hasID = v.text, true
		case "Statement":
			hasStatement = true
			switch v.kind {
			case nodeArray:
				stmts = v.elems
			case nodeObject:
				stmts = []node{*v}
			default:
				return nil, malformed("The policy Statement must be an object or a list of objects.")
			}
		default:
			return nil, malformed("The policy contains an unsupported element: %s.", name)
		}
	}
	if !hasStatement {
		return nil, malformed("The policy must contain a Statement.")
	}
	p.statements = make([]statement, 0, len(stmts))
	for i := range stmts {
		st, err := parseStatement(&stmts[i], kind, i+1, p.version == "2012-10-17")
		if err != nil {
			return nil, err
		}
		if st.sid != "" {
			for j := range p.statements {
				if p.statements[j].sid == st.sid {
					return nil, malformed("Statement IDs (SID) in a single policy must be unique: %q.", st.sid)
				}
			}
		}
		p.statements = append(p.statements, st)
	}
	p.cost = p.computeCost()
	for i := range p.statements {
		if ps := p.statements[i].principals; ps != nil {
			for _, a := range ps.arns {
				p.namesIAM = p.namesIAM || a.iam
			}
		}
	}
	return p, nil
}

// statement is a compiled policy statement.
type statement struct {
	sid          string
	allow        bool
	principals   *principalSet // nil when the statement names no principal
	notPrincipal bool
	hasAction    bool // a statement without Action or Resource has no effect
	notAction    bool
	actions      patterns // in lower case
	actionText   []string // as written, for marshalling
	hasResource  bool
	notResource  bool
	resources    patterns
	conditions   []condition
}

// statementElements is the order in which a statement's elements are
// checked, so that the first problem reported does not depend on how the
// document orders them.
var statementElements = []string{"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}

func parseStatement(n *node, kind Kind, num int, vars bool) (statement, error) {
	var st statement
	where := "statement " + strconv.Itoa(num)
	if n.kind != nodeObject {
		return st, malformed("The policy Statement must be an object or a list of objects; %s is not an object.", where)
	}
	for _, name := range n.names {
		known := false
		for _, e := range statementElements {
			known = known || name == e
		}
		if !known {
			return st, malformed("The policy contains an unsupported element in %s: %s.", where, name)
		}
	}
	if v, ok := n.member("Sid"); ok {
		if v.kind != nodeString {
			return st, malformed("The Sid of %s must be a string.", where)
		}
		st.sid = v.text
		if st.sid != "" {
			where = "statement " + strconv.Quote(st.sid)
		}
	}

	v, ok := n.member("Effect")
	switch {
	case !ok:
		return st, malformed("Policy contains a statement with no Effect (%s).", where)
	case v.kind == nodeString && v.text == "Allow":
		st.allow = true
	case v.kind == nodeString && v.text == "Deny":
	default:
		return st, malformed(`The Effect of %s must be "Allow" or "Deny".`, where)
	}

	p, hasP := n.member("Principal")
	np, hasNP := n.member("NotPrincipal")
	switch {
	case hasP && hasNP:
		return st, malformed("A statement cannot have both Principal and NotPrincipal (%s).", where)
	case kind == IdentityPolicy && (hasP || hasNP):
		return st, malformed("Policy document should not specify a principal (%s): an identity policy applies to the principal it is attached to.", where)
	case kind == KeyPolicy && !hasP && !hasNP:
		return st, malformed("Policy contains a statement with no Principal (%s); each key policy statement must name one or more principals.", where)
	case kind == TrustPolicy && !hasP && !hasNP:
		return st, malformed("Policy contains a statement with no Principal (%s); a trust policy must name who may assume the role.", where)
	case hasNP:
		p, st.notPrincipal = np, true
		fallthrough
	case hasP:
		ps, err := parsePrincipals(p)
		if err != nil {
			return st, malformed("Policy contains a statement with one or more invalid principals (%s): %s.", where, err.Error())
		}
		st.principals = ps
	}

	a, hasA := n.member("Action")
	na, hasNA := n.member("NotAction")
	switch {
	case hasA && hasNA:
		return st, malformed("A statement cannot have both Action and NotAction (%s).", where)
	case !hasA && !hasNA && (kind == IdentityPolicy || kind == TrustPolicy):
		return st, malformed("Policy statement must contain actions (%s).", where)
	case hasNA:
		a, st.notAction = na, true
		fallthrough
	case hasA:
		list, ok := stringList(a)
		if !ok {
			return st, malformed("The %s of %s must be a string or a non-empty list of strings.", elementName("Action", st.notAction), where)
		}
		st.actionText = list
		for _, s := range list {
			if i := strings.IndexByte(s, ':'); s != "*" && (i <= 0 || i == len(s)-1) {
				return st, malformed("Action %q in %s must be prefaced by a vendor, e.g. kms:Encrypt.", s, where)
			}
			st.actions = append(st.actions, compilePattern(toLowerASCII(s)))
		}
		st.hasAction = true
	}

	r, hasR := n.member("Resource")
	nr, hasNR := n.member("NotResource")
	switch {
	case kind == TrustPolicy && (hasR || hasNR):
		return st, malformed("A trust policy statement cannot name a Resource: it is about the role (%s).", where)
	case kind == TrustPolicy:
		st.resources, st.hasResource = append(st.resources, compilePattern("*")), true
	case hasR && hasNR:
		return st, malformed("A statement cannot have both Resource and NotResource (%s).", where)
	case !hasR && !hasNR && kind == IdentityPolicy:
		return st, malformed("Policy statement must contain resources (%s).", where)
	case hasNR:
		r, st.notResource = nr, true
		fallthrough
	case hasR:
		list, ok := stringList(r)
		if !ok {
			return st, malformed("The %s of %s must be a string or a non-empty list of strings.", elementName("Resource", st.notResource), where)
		}
		for _, s := range list {
			if s != "*" && !strings.HasPrefix(s, "arn:") {
				return st, malformed(`Resource %q in %s must be in ARN format or "*".`, s, where)
			}
			p := compilePattern(s)
			if vars {
				p.tmpl = parseTemplate(s)
			}
			st.resources = append(st.resources, p)
		}
		st.hasResource = true
	}

	if c, ok := n.member("Condition"); ok {
		conds, err := parseConditions(c, where, vars)
		if err != nil {
			return st, err
		}
		st.conditions = conds
	}
	return st, nil
}

func elementName(name string, not bool) string {
	if not {
		return "Not" + name
	}
	return name
}

// stringList reads a string or a non-empty list of strings.
func stringList(n *node) ([]string, bool) {
	switch n.kind {
	case nodeString:
		return []string{n.text}, true
	case nodeArray:
		if len(n.elems) == 0 {
			return nil, false
		}
		out := make([]string, len(n.elems))
		for i := range n.elems {
			if n.elems[i].kind != nodeString {
				return nil, false
			}
			out[i] = n.elems[i].text
		}
		return out, true
	}
	return nil, false
}
