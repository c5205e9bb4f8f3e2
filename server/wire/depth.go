package wire

import "strconv"

// MaxDepth is how deeply a request body's JSON may nest, objects and arrays
// alike, the top-level object counting as 1. No KMS request shape nests
// deeper than 4 (a list of objects of strings); encoding/json alone would
// walk 10,000 levels, and a body of brackets costs its parser far more than
// it costs the client. Both decoding paths refuse deeper bodies with
// ErrTooDeep: the lexer as it goes, the general path with CheckDepth first.
const MaxDepth = 64

// ErrTooDeep reports a body nested deeper than MaxDepth.
var ErrTooDeep = &Error{"Request body is nested too deeply: JSON deeper than " + strconv.Itoa(MaxDepth) + " levels is refused."}

// CheckDepth returns ErrTooDeep if b opens more than MaxDepth objects and
// arrays without closing them, outside strings. It does not otherwise
// check that b is JSON.
func CheckDepth(b []byte) error {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			if depth++; depth > MaxDepth {
				return ErrTooDeep
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// enter counts one more level of nesting; leave ends it.
func (l *lexer) enter() error {
	if l.depth++; l.depth > MaxDepth {
		return ErrTooDeep
	}
	return nil
}

func (l *lexer) leave() { l.depth-- }
