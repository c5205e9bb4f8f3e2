package wire

import (
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/kms"
)

// TestDepth: the lexer and CheckDepth (the general path's pre-scan) draw
// the line at the same depth, for nesting in a member they skip, a member
// of the wrong type, a map and a list, in objects and arrays.
func TestDepth(t *testing.T) {
	// nest returns a body whose deepest value sits at depth d (the
	// top-level object is 1), by wrapping v in d-1 levels of open/close.
	nest := func(member, open, close string, d int) string {
		return `{"` + member + `":` + strings.Repeat(open, d-1) + `"v"` + strings.Repeat(close, d-1) + `}`
	}
	decode := func(b string) error { return DecodeEncrypt([]byte(b), new(kms.EncryptInput)) }
	for _, tc := range []struct{ member, open, close string }{
		{"Unknown", "[", "]"},
		{"Unknown", `{"a":`, "}"},
		{"KeyId", "[", "]"},                 // wrong type: skipped to report it
		{"EncryptionContext", `{"a":`, "}"}, // a map, then deeper
		{"GrantTokens", "[", "]"},           // a list, then deeper
	} {
		for _, d := range []int{MaxDepth, MaxDepth + 1, 10000} {
			body := nest(tc.member, tc.open, tc.close, d)
			err, pre := decode(body), CheckDepth([]byte(body))
			tooDeep := d > MaxDepth
			if (err == ErrTooDeep) != tooDeep || (pre == ErrTooDeep) != tooDeep {
				t.Errorf("%s %s depth %d: lexer %v, CheckDepth %v", tc.member, tc.open, d, err, pre)
			}
		}
	}
	// Brackets inside strings are not nesting.
	s := `{"KeyId":"` + strings.Repeat(`[{\"`, 100) + `"}`
	if err := decode(s); err != nil {
		t.Errorf("brackets in a string: %v", err)
	}
	if err := CheckDepth([]byte(s)); err != nil {
		t.Errorf("CheckDepth, brackets in a string: %v", err)
	}
}
