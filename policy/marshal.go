package policy

import (
	"encoding/json"
	"strconv"
)

// MarshalJSON writes the policy in a canonical form: members in a fixed
// order, Statement always a list, every list a list, account IDs as root
// ARNs, "Principal": "*" as {"AWS": ["*"]}, numbers and booleans in
// conditions as strings. Names and values keep the case they were written
// in, and statements, conditions and values their order. Parsing the output
// gives a policy that decides every request the same way and marshals to
// the same bytes.
func (p *Policy) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	sep := false
	member := func(name string) {
		if sep {
			b = append(b, ',')
		}
		sep = true
		b = appendString(b, name)
		b = append(b, ':')
	}
	if p.version != "" {
		member("Version")
		b = appendString(b, p.version)
	}
	if p.hasID {
		member("Id")
		b = appendString(b, p.id)
	}
	member("Statement")
	b = append(b, '[')
	for i := range p.statements {
		if i > 0 {
			b = append(b, ',')
		}
		b = p.statements[i].appendJSON(b)
	}
	return append(b, ']', '}'), nil
}

func (st *statement) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if st.sid != "" {
		b = appendString(b, "Sid")
		b = append(b, ':')
		b = appendString(b, st.sid)
		b = append(b, ',')
	}
	b = append(b, `"Effect":`...)
	if st.allow {
		b = append(b, `"Allow"`...)
	} else {
		b = append(b, `"Deny"`...)
	}
	if ps := st.principals; ps != nil {
		b = append(b, ',')
		b = appendString(b, elementName("Principal", st.notPrincipal))
		b = append(b, ":{"...)
		n := 0
		for _, kind := range [...]struct {
			name string
			list []string
		}{{"AWS", ps.aws}, {"Service", ps.services}, {"Federated", ps.federated}} {
			if len(kind.list) == 0 {
				continue
			}
			if n > 0 {
				b = append(b, ',')
			}
			n++
			b = appendString(b, kind.name)
			b = append(b, ':')
			b = appendStrings(b, kind.list)
		}
		b = append(b, '}')
	}
	if st.hasAction {
		b = append(b, ',')
		b = appendString(b, elementName("Action", st.notAction))
		b = append(b, ':')
		b = appendStrings(b, st.actionText)
	}
	if st.hasResource {
		b = append(b, ',')
		b = appendString(b, elementName("Resource", st.notResource))
		b = append(b, ':')
		b = append(b, '[')
		for i := range st.resources {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, st.resources[i].text)
		}
		b = append(b, ']')
	}
	if len(st.conditions) > 0 {
		// Conditions of one operator are adjacent: Parse appends them
		// operator by operator.
		b = append(b, `,"Condition":{`...)
		for i := range st.conditions {
			c := &st.conditions[i]
			first := i == 0 || st.conditions[i-1].op != c.op
			if first {
				if i > 0 {
					b = append(b, "},"...)
				}
				b = appendString(b, c.op)
				b = append(b, ":{"...)
			} else {
				b = append(b, ',')
			}
			b = appendString(b, c.rawKey)
			b = append(b, ':')
			b = appendStrings(b, c.values)
		}
		b = append(b, "}}"...)
	}
	return append(b, '}')
}

func appendStrings(b []byte, list []string) []byte {
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendString writes s as a JSON string. Strings that need no escaping —
// nearly all of them in policies — are copied as they are.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			q, err := json.Marshal(s)
			if err != nil { // cannot happen for a string
				return strconv.AppendQuote(b, s)
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
