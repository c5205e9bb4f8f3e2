// Package wire is the reflection-free AWS JSON 1.1 codec of the hot
// operations (Encrypt, Decrypt, GenerateDataKey, ReEncrypt): a small
// lexer over the request body and append-style encoders of the responses.
// It accepts exactly what encoding/json accepts for the same types, except
// that member names are matched case-sensitively, as AWS does; the
// differential fuzz target in fuzz/wire holds it to that.
package wire

import (
	"bytes"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/coffer-kms/coffer/asm/b64"
)

// Error is a body that is not the operation's JSON shape. Its message names
// at most a member, never a value.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func syntaxError() error       { return &Error{"Request body is not valid JSON."} }
func typeError(m string) error { return &Error{"Unexpected value type for member " + m + "."} }

// ErrNotObject reports a body that is not one JSON object.
var ErrNotObject = &Error{"Request body must be a JSON object."}

type lexer struct {
	b     []byte
	i     int
	depth int // objects and arrays open at i (depth.go)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (l *lexer) ws() {
	for l.i < len(l.b) && isSpace(l.b[l.i]) {
		l.i++
	}
}

func (l *lexer) peek() byte {
	l.ws()
	if l.i < len(l.b) {
		return l.b[l.i]
	}
	return 0
}

// object walks the members of the top-level object, calling member for
// each name with the lexer positioned at its value. member must consume
// the value. An empty body is an empty object.
func (l *lexer) object(member func(name []byte) error) error {
	if l.ws(); l.i == len(l.b) {
		return nil
	}
	if l.b[l.i] != '{' {
		return ErrNotObject
	}
	if err := l.members(member); err != nil {
		return err
	}
	if l.ws(); l.i != len(l.b) {
		return &Error{"Request body has data after the JSON object."}
	}
	return nil
}

// members reads {"name": value, ...} calling member for each.
func (l *lexer) members(member func(name []byte) error) error {
	l.i++ // '{'
	if err := l.enter(); err != nil {
		return err
	}
	defer l.leave()
	if l.peek() == '}' {
		l.i++
		return nil
	}
	for {
		if l.peek() != '"' {
			return syntaxError()
		}
		name, err := l.str()
		if err != nil {
			return err
		}
		if l.peek() != ':' {
			return syntaxError()
		}
		l.i++
		if err := member(name); err != nil {
			return err
		}
		switch l.peek() {
		case ',':
			l.i++
		case '}':
			l.i++
			return nil
		default:
			return syntaxError()
		}
	}
}

// null consumes a JSON null if one is next.
func (l *lexer) null() bool {
	if l.peek() == 'n' && len(l.b)-l.i >= 4 && string(l.b[l.i:l.i+4]) == "null" {
		l.i += 4
		return true
	}
	return false
}

// str reads a string, returning its unescaped bytes (aliasing the body
// when it has no escapes).
func (l *lexer) str() ([]byte, error) {
	l.i++ // '"'
	start := l.i
	end := bytes.IndexByte(l.b[start:], '"')
	if end < 0 {
		return nil, syntaxError()
	}
	s := l.b[start : start+end]
	for j, c := range s {
		if c < 0x20 {
			return nil, syntaxError()
		}
		if c == '\\' {
			l.i = start + j
			return l.strSlow(start)
		}
	}
	l.i = start + end + 1
	if !utf8.Valid(s) {
		return []byte(string([]rune(string(s)))), nil // invalid UTF-8 becomes U+FFFD, as encoding/json does
	}
	return s, nil
}

func (l *lexer) strSlow(start int) ([]byte, error) {
	out := append([]byte(nil), l.b[start:l.i]...)
	for l.i < len(l.b) {
		c := l.b[l.i]
		switch {
		case c == '"':
			l.i++
			if !utf8.Valid(out) {
				out = []byte(string([]rune(string(out))))
			}
			return out, nil
		case c < 0x20:
			return nil, syntaxError()
		case c != '\\':
			out = append(out, c)
			l.i++
			continue
		}
		if l.i+1 >= len(l.b) {
			return nil, syntaxError()
		}
		e := l.b[l.i+1]
		l.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := l.hex4()
			if !ok {
				return nil, syntaxError()
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if l.i+1 < len(l.b) && l.b[l.i] == '\\' && l.b[l.i+1] == 'u' {
					save := l.i
					l.i += 2
					if x, ok := l.hex4(); ok {
						r2 = x
					} else {
						return nil, syntaxError()
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						out = utf8.AppendRune(out, dec)
						continue
					}
					l.i = save
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, syntaxError()
		}
	}
	return nil, syntaxError()
}

func (l *lexer) hex4() (rune, bool) {
	if l.i+4 > len(l.b) {
		return 0, false
	}
	var r rune
	for _, c := range l.b[l.i : l.i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	l.i += 4
	return r, true
}

// stringMember reads a string value (null leaves dst unchanged).
func (l *lexer) stringMember(name string, dst *string) error {
	if l.null() {
		return nil
	}
	if l.peek() != '"' {
		return l.wrongType(name)
	}
	s, err := l.str()
	if err != nil {
		return err
	}
	*dst = string(s)
	return nil
}

// blobMember reads a base64 string into a new slice (null: nil).
func (l *lexer) blobMember(name string, dst *[]byte) error {
	if l.null() {
		*dst = nil
		return nil
	}
	if l.peek() != '"' {
		return l.wrongType(name)
	}
	// Base64 needs no escapes, so the string usually ends at the next
	// quote and decodes as it stands. The decoder refuses every byte JSON
	// would escape or refuse but CR and LF, which it skips and which are
	// checked first; anything else (an escape, a stray byte) takes the
	// general path and its errors.
	start := l.i + 1
	if end := bytes.IndexByte(l.b[start:], '"'); end >= 0 {
		s := l.b[start : start+end]
		if bytes.IndexByte(s, '\n') < 0 && bytes.IndexByte(s, '\r') < 0 {
			if out, ok := decodeBlob(s); ok {
				l.i = start + end + 1
				*dst = out
				return nil
			}
		}
	}
	s, err := l.str()
	if err != nil {
		return err
	}
	out, ok := decodeBlob(s)
	if !ok {
		return &Error{"Blob members must be valid base64."}
	}
	*dst = out
	return nil
}

// decodeBlob decodes standard base64 into a new slice.
func decodeBlob(s []byte) ([]byte, bool) {
	out := make([]byte, b64.DecodedLen(len(s)))
	n, err := b64.Decode(out, s)
	return out[:n], err == nil
}

// intMember reads an integer into a new *int (null: nil).
func (l *lexer) intMember(name string, dst **int) error {
	if l.null() {
		*dst = nil
		return nil
	}
	c := l.peek()
	if c != '-' && (c < '0' || c > '9') {
		return l.wrongType(name)
	}
	start := l.i
	if err := l.number(); err != nil {
		return err
	}
	n, err := strconv.ParseInt(string(l.b[start:l.i]), 10, 64)
	if err != nil || int64(int(n)) != n {
		return typeError(name)
	}
	v := int(n)
	*dst = &v
	return nil
}

func (l *lexer) boolMember(name string, dst *bool) error {
	if l.null() {
		return nil
	}
	switch {
	case len(l.b)-l.i >= 4 && string(l.b[l.i:l.i+4]) == "true":
		l.i += 4
		*dst = true
	case len(l.b)-l.i >= 5 && string(l.b[l.i:l.i+5]) == "false":
		l.i += 5
		*dst = false
	default:
		return l.wrongType(name)
	}
	return nil
}

// mapMember reads an object of strings (null: nil map).
func (l *lexer) mapMember(name string, dst *map[string]string) error {
	if l.null() {
		*dst = nil
		return nil
	}
	if l.peek() != '{' {
		return l.wrongType(name)
	}
	if *dst == nil {
		*dst = map[string]string{}
	}
	m := *dst
	return l.members(func(k []byte) error {
		if l.null() {
			m[string(k)] = ""
			return nil
		}
		if l.peek() != '"' {
			return l.wrongType(name)
		}
		v, err := l.str()
		if err != nil {
			return err
		}
		// One allocation for the pair rather than one for each string:
		// they live and die together in the map.
		kv := string(k) + string(v)
		m[kv[:len(k)]] = kv[len(k):]
		return nil
	})
}

// listMember reads an array of strings (null: nil).
func (l *lexer) listMember(name string, dst *[]string) error {
	if l.null() {
		*dst = nil
		return nil
	}
	if l.peek() != '[' {
		return l.wrongType(name)
	}
	l.i++
	if err := l.enter(); err != nil {
		return err
	}
	defer l.leave()
	out := []string{}
	if l.peek() == ']' {
		l.i++
		*dst = out
		return nil
	}
	for {
		if l.null() {
			out = append(out, "")
		} else {
			if l.peek() != '"' {
				return l.wrongType(name)
			}
			s, err := l.str()
			if err != nil {
				return err
			}
			out = append(out, string(s))
		}
		switch l.peek() {
		case ',':
			l.i++
		case ']':
			l.i++
			*dst = out
			return nil
		default:
			return syntaxError()
		}
	}
}

// wrongType reports a value of the wrong JSON type for a member, after
// checking that the value is at least valid JSON (a syntax error wins, as
// in encoding/json).
func (l *lexer) wrongType(name string) error {
	if err := l.skip(); err != nil {
		return err
	}
	return typeError(name)
}

// skip consumes any JSON value.
func (l *lexer) skip() error {
	switch c := l.peek(); {
	case c == '"':
		_, err := l.str()
		return err
	case c == '{':
		return l.members(func([]byte) error { return l.skip() })
	case c == '[':
		l.i++
		if err := l.enter(); err != nil {
			return err
		}
		defer l.leave()
		if l.peek() == ']' {
			l.i++
			return nil
		}
		for {
			if err := l.skip(); err != nil {
				return err
			}
			switch l.peek() {
			case ',':
				l.i++
			case ']':
				l.i++
				return nil
			default:
				return syntaxError()
			}
		}
	case c == 't' && len(l.b)-l.i >= 4 && string(l.b[l.i:l.i+4]) == "true":
		l.i += 4
	case c == 'f' && len(l.b)-l.i >= 5 && string(l.b[l.i:l.i+5]) == "false":
		l.i += 5
	case c == 'n' && len(l.b)-l.i >= 4 && string(l.b[l.i:l.i+4]) == "null":
		l.i += 4
	case c == '-' || ('0' <= c && c <= '9'):
		return l.number()
	default:
		return syntaxError()
	}
	return nil
}

// number consumes a JSON number with the grammar of RFC 8259.
func (l *lexer) number() error {
	b, i := l.b, l.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return syntaxError()
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			return syntaxError()
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			return syntaxError()
		}
	}
	l.i = i
	return nil
}
