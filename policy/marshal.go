package policy

import (
	"encoding/json"
	"errors"
)

// MarshalJSON writes the policy in a canonical form: fixed member order,
// lists always lists, account principals as root ARNs, action names in
// lower case, conditions sorted. Parsing the output compiles to the same
// policy, and marshalling that again gives the same bytes.
func (p *Policy) MarshalJSON() ([]byte, error) {
	type cond = map[string]map[string][]string
	type stmt struct {
		Sid          string              `json:"Sid,omitempty"`
		Effect       string              `json:"Effect"`
		Principal    map[string][]string `json:"Principal,omitempty"`
		NotPrincipal map[string][]string `json:"NotPrincipal,omitempty"`
		Action       []string            `json:"Action,omitempty"`
		NotAction    []string            `json:"NotAction,omitempty"`
		Resource     []string            `json:"Resource,omitempty"`
		NotResource  []string            `json:"NotResource,omitempty"`
		Condition    cond                `json:"Condition,omitempty"`
	}
	doc := struct {
		Version   string `json:"Version"`
		Statement []stmt `json:"Statement"`
	}{Version: "2012-10-17", Statement: []stmt{}}
	pats := func(gs []glob) []string {
		out := make([]string, len(gs))
		for i, g := range gs {
			out[i] = g.pat
		}
		return out
	}
	for _, st := range p.statements {
		s := stmt{Sid: st.sid, Effect: "Deny"}
		if st.allow {
			s.Effect = "Allow"
		}
		if st.hasPrincipal {
			m := map[string][]string{}
			var aws []string
			if st.principals.any {
				aws = append(aws, "*")
			}
			for _, a := range st.principals.accounts {
				aws = append(aws, "arn:aws:iam::"+a+":root")
			}
			aws = append(aws, st.principals.arns...)
			if len(aws) > 0 {
				m["AWS"] = aws
			}
			if len(st.principals.services) > 0 {
				m["Service"] = st.principals.services
			}
			if st.notPrincipal {
				s.NotPrincipal = m
			} else {
				s.Principal = m
			}
		}
		if st.notAction {
			s.NotAction = pats(st.actions)
		} else {
			s.Action = pats(st.actions)
		}
		if st.hasResource {
			if st.notResource {
				s.NotResource = pats(st.resources)
			} else {
				s.Resource = pats(st.resources)
			}
		}
		if len(st.conditions) > 0 {
			s.Condition = cond{}
			for _, c := range st.conditions {
				if s.Condition[c.opName] == nil {
					s.Condition[c.opName] = map[string][]string{}
				}
				s.Condition[c.opName][c.rawKey] = append(s.Condition[c.opName][c.rawKey], c.values...)
			}
		}
		doc.Statement = append(doc.Statement, s)
	}
	return json.Marshal(doc)
}

// ErrLockout is the lockout safety check's failure.
var ErrLockout = errors.New("The new key policy will not allow you to update the key policy in the future.")

// CheckLockout is AWS's lockout safety check: after this key policy is in
// place, may the caller still call PutKeyPolicy on the key?
func CheckLockout(p *Policy, keyARN, keyAccount, callerARN, callerAccount string, identity []*Policy) error {
	r := &Request{PrincipalARN: callerARN, PrincipalAccount: callerAccount, Action: "kms:PutKeyPolicy", Resource: keyARN, Context: &Context{CallerAccount: callerAccount, PrincipalARN: callerARN}}
	if Authorize(p, keyAccount, identity, false, r) != Allow {
		return ErrLockout
	}
	return nil
}
