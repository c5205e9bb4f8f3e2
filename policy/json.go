package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"unicode/utf8"
)

// node is a JSON value that keeps object members in document order, so
// that the first error in a document is the one reported, every time.
type node struct {
	kind  nodeKind
	text  string // a string's value, a number's digits, "true" or "false"
	elems []node // array elements, or object member values
	names []string
}

type nodeKind int8

const (
	nodeNull nodeKind = iota
	nodeString
	nodeNumber
	nodeBool
	nodeArray
	nodeObject
)

// member returns an object's member by exact name.
func (n *node) member(name string) (*node, bool) {
	for i, k := range n.names {
		if k == name {
			return &n.elems[i], true
		}
	}
	return nil, false
}

// maxDepth is far deeper than the policy grammar goes (six levels), and
// keeps hostile nesting from recursing 16 000 levels down.
const maxDepth = 16

// decodeJSON reads one JSON value. Offsets in its messages count bytes
// from 0.
func decodeJSON(doc []byte) (node, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	n, err := decodeValue(dec, doc, 0)
	if err != nil {
		return node{}, err
	}
	end := skipSpace(doc, int(dec.InputOffset()), "")
	if _, err := dec.Token(); err != io.EOF {
		return node{}, malformed("The policy is not valid JSON: data after the document at offset %d.", end)
	}
	return n, nil
}

// skipSpace returns the offset of the first byte at or after i that is
// neither JSON white space nor in also.
func skipSpace(doc []byte, i int, also string) int {
	for i < len(doc) && strings.IndexByte(" \t\r\n"+also, doc[i]) >= 0 {
		i++
	}
	return i
}

func decodeValue(dec *json.Decoder, doc []byte, depth int) (node, error) {
	if depth > maxDepth {
		return node{}, malformed("The policy is not valid: nested more than %d levels deep.", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return node{}, jsonError(dec, err)
	}
	switch t := tok.(type) {
	case nil:
		return node{kind: nodeNull}, nil
	case string:
		return node{kind: nodeString, text: t}, nil
	case json.Number:
		return node{kind: nodeNumber, text: t.String()}, nil
	case bool:
		if t {
			return node{kind: nodeBool, text: "true"}, nil
		}
		return node{kind: nodeBool, text: "false"}, nil
	case json.Delim:
		n := node{kind: nodeArray}
		if t == '{' {
			n.kind = nodeObject
		}
		for dec.More() {
			if n.kind == nodeObject {
				at := skipSpace(doc, int(dec.InputOffset()), ",")
				k, err := dec.Token()
				if err != nil {
					return node{}, jsonError(dec, err)
				}
				name, ok := k.(string)
				if !ok {
					return node{}, malformed("The policy is not valid JSON: an object member name is not a string at offset %d.", at)
				}
				for _, seen := range n.names {
					if seen == name {
						return node{}, malformed("The policy is not valid: the member %q appears twice in one object (offset %d).", name, at)
					}
				}
				n.names = append(n.names, name)
			}
			v, err := decodeValue(dec, doc, depth+1)
			if err != nil {
				return node{}, err
			}
			n.elems = append(n.elems, v)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return node{}, jsonError(dec, err)
		}
		return n, nil
	}
	return node{}, malformed("The policy is not valid JSON.")
}

func jsonError(dec *json.Decoder, err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return malformed("The policy is not valid JSON: %s at offset %d.", se.Error(), se.Offset)
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return malformed("The policy is not valid JSON: the document ends early.")
	}
	return malformed("The policy is not valid JSON: %s at offset %d.", err.Error(), dec.InputOffset())
}

// checkKeyPolicyCharacters enforces KMS's alphabet for key policies:
// printable ASCII and Latin-1, tab, line feed and carriage return.
func checkKeyPolicyCharacters(doc []byte) error {
	for i := 0; i < len(doc); {
		c := doc[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return malformed("The policy contains a character that is not allowed in a key policy: U+%04X at offset %d.", c, i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(doc[i:])
		if r == utf8.RuneError && size == 1 {
			return malformed("The policy is not valid UTF-8 at offset %d.", i)
		}
		if r > 0xFF || r < 0xA0 { // C1 controls, and anything past Latin-1
			return malformed("The policy contains a character that is not allowed in a key policy: U+%04X at offset %d.", r, i)
		}
		i += size
	}
	return nil
}
