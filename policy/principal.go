package policy

import (
	"errors"
	"slices"
	"strings"
)

// principalSet is a compiled Principal or NotPrincipal element.
type principalSet struct {
	any       bool
	aws       []string // as marshalled: bare account IDs become root ARNs
	roots     []rootPrincipal
	arns      []arnPrincipal
	services  []string
	federated []string // kept for marshalling; no Coffer caller is federated
}

type rootPrincipal struct {
	arn     string // arn:aws:iam::111122223333:root
	account string
	prefix  string // "arn:aws:", the partition its users' ARNs share
}

type arnPrincipal struct {
	arn string
	// iam marks the ARN of an IAM user or role, which Request.Bound may
	// tie to a unique ID (an assumed-role session ARN is not).
	iam bool
	// sessions is "arn:aws:sts::<account>:assumed-role/<name>/" for a role:
	// the sessions of the role are that role, as in AWS.
	sessions string
}

func parsePrincipals(n *node) (*principalSet, error) {
	ps := &principalSet{}
	if n.kind == nodeString {
		if n.text != "*" {
			return nil, errors.New(`a Principal given as a string must be "*"`)
		}
		ps.any, ps.aws = true, []string{"*"}
		return ps, nil
	}
	if n.kind != nodeObject || len(n.names) == 0 {
		return nil, errors.New(`the Principal must be "*" or an object such as {"AWS": "arn:aws:iam::111122223333:root"}`)
	}
	for i, typ := range n.names {
		list, ok := stringList(&n.elems[i])
		if !ok {
			return nil, errors.New("the " + typ + " principals must be a string or a non-empty list of strings")
		}
		switch typ {
		case "AWS":
			for _, a := range list {
				if err := ps.addAWS(a); err != nil {
					return nil, err
				}
			}
		case "Service", "Federated":
			for _, a := range list {
				if a == "" || strings.ContainsAny(a, "*? \t\r\n") {
					return nil, errors.New("invalid " + typ + " principal " + quote(a))
				}
				if typ == "Service" {
					ps.services = append(ps.services, a)
				} else {
					ps.federated = append(ps.federated, a)
				}
			}
		default:
			return nil, errors.New("unsupported principal type " + quote(typ))
		}
	}
	return ps, nil
}

func (ps *principalSet) addAWS(a string) error {
	if a == "*" {
		ps.any = true
		ps.aws = append(ps.aws, a)
		return nil
	}
	if isAccountID(a) {
		a = "arn:aws:iam::" + a + ":root"
	}
	parts, ok := splitARN(a)
	if !ok || parts[0] != "arn" || !isPartition(parts[1]) || parts[3] != "" || !isAccountID(parts[4]) {
		return errors.New(quote(a) + " is not an account ID or the ARN of an account root, user or role")
	}
	account, resource := parts[4], parts[5]
	typ, name, _ := strings.Cut(resource, "/")
	switch {
	case parts[2] == "iam" && resource == "root":
		ps.roots = append(ps.roots, rootPrincipal{arn: a, account: account, prefix: "arn:" + parts[1] + ":"})
	case parts[2] == "iam" && (typ == "user" || typ == "role") && isIAMPath(name):
		p := arnPrincipal{arn: a, iam: true}
		if typ == "role" {
			p.sessions = "arn:" + parts[1] + ":sts::" + account + ":assumed-role/" + name[strings.LastIndexByte(name, '/')+1:] + "/"
		}
		ps.arns = append(ps.arns, p)
	case parts[2] == "sts" && typ == "assumed-role" && isIAMPath(name) && strings.Count(name, "/") == 1:
		ps.arns = append(ps.arns, arnPrincipal{arn: a})
	default:
		return errors.New(quote(a) + " is not an account ID or the ARN of an account root, user or role")
	}
	ps.aws = append(ps.aws, a)
	return nil
}

func quote(s string) string { return `"` + s + `"` }

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isPartition(s string) bool {
	if s == "aws" {
		return true
	}
	rest, ok := strings.CutPrefix(s, "aws-")
	if !ok || rest == "" {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; (c < 'a' || c > 'z') && c != '-' {
			return false
		}
	}
	return true
}

// isIAMPath accepts an IAM name with an optional path: letters, digits and
// +=,.@_- separated by single slashes; no wildcards (AWS allows none in a
// Principal).
func isIAMPath(s string) bool {
	if s == "" || s[0] == '/' || s[len(s)-1] == '/' || strings.Contains(s, "//") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("+=,.@_-/", c) >= 0) {
			return false
		}
	}
	return true
}

// match reports whether a Principal set names the caller directly — its
// ARN, "*", its service name, or for an account root its own account — or
// names the caller's account, which delegates to the account's identity
// policies.
func (ps *principalSet) match(r *Request) (direct, viaAccount bool) {
	count(1)
	if ps.any {
		return true, false
	}
	caller := r.PrincipalARN
	if r.isService() {
		for _, s := range ps.services {
			count(len(s) + 1)
			if s == caller {
				return true, false
			}
		}
		return false, false
	}
	for i := range ps.arns {
		if ps.arns[i].match(caller) && ps.arns[i].bound(r) {
			return true, false
		}
	}
	for i := range ps.roots {
		root := &ps.roots[i]
		count(len(root.arn) + len(root.prefix) + 2)
		if root.arn == caller {
			return true, false
		}
		if root.account == r.PrincipalAccount && strings.HasPrefix(caller, root.prefix) {
			viaAccount = true
		}
	}
	return false, viaAccount
}

// matchExactly is NotPrincipal's test: an account root listed there
// excludes only the root itself, not the account's users and roles, as in
// AWS.
func (ps *principalSet) matchExactly(r *Request) bool {
	count(1)
	if ps.any {
		return true
	}
	caller := r.PrincipalARN
	for _, s := range ps.services {
		count(len(s) + 1)
		if s == caller {
			return true
		}
	}
	for i := range ps.arns {
		if ps.arns[i].match(caller) && ps.arns[i].bound(r) {
			return true
		}
	}
	for i := range ps.roots {
		count(len(ps.roots[i].arn) + 1)
		if ps.roots[i].arn == caller {
			return true
		}
	}
	return false
}

func (p *arnPrincipal) match(caller string) bool {
	count(len(p.arn) + len(p.sessions) + 2)
	if caller == p.arn {
		return true
	}
	if p.sessions == "" || !strings.HasPrefix(caller, p.sessions) {
		return false
	}
	session := caller[len(p.sessions):]
	return session != "" && strings.IndexByte(session, '/') < 0
}

// bound reports whether a principal ARN that matched the caller by name
// is the caller: Request.Bound decides for an IAM user or role.
func (p *arnPrincipal) bound(r *Request) bool {
	return !p.iam || r.Bound == nil || r.Bound(p.arn)
}

// NamedPrincipals returns the ARNs of the IAM users and roles the policy's
// Principal and NotPrincipal elements name, each once, in order: those a
// key policy binds to unique IDs (Request.Bound).
func (p *Policy) NamedPrincipals() []string {
	var out []string
	for i := range p.statements {
		ps := p.statements[i].principals
		if ps == nil {
			continue
		}
		for j := range ps.arns {
			if a := ps.arns[j].arn; ps.arns[j].iam && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}
