package kms

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// validator collects AWS-style validation failures for one request, so the
// caller learns every problem at once: "2 validation errors detected: …; …".
type validator struct{ errs []string }

// fail records a constraint failure. A nil value prints as AWS prints a
// missing member; sensitive members pass hide and their value is never echoed.
func (v *validator) fail(field string, value any, constraint string) {
	var what string
	switch val := value.(type) {
	case nil:
		what = "Value null"
	case hidden:
		what = "Value"
	default:
		what = fmt.Sprintf("Value '%v'", val)
	}
	v.errs = append(v.errs, fmt.Sprintf("%s at '%s' failed to satisfy constraint: %s", what, field, constraint))
}

// hidden marks a member whose value must not appear in a message.
type hidden struct{}

func (v *validator) required(field string, present bool) bool {
	if !present {
		v.fail(field, nil, "Member must not be null")
	}
	return present
}

func (v *validator) length(field, s string, minLen, maxLen int) {
	n := utf8.RuneCountInString(s)
	if n < minLen {
		v.fail(field, s, fmt.Sprintf("Member must have length greater than or equal to %d", minLen))
	} else if n > maxLen {
		v.fail(field, truncate(s), fmt.Sprintf("Member must have length less than or equal to %d", maxLen))
	}
}

// secretLength checks a blob's length without echoing it.
func (v *validator) secretLength(field string, b []byte, minLen, maxLen int) {
	if len(b) < minLen {
		v.fail(field, hidden{}, fmt.Sprintf("Member must have length greater than or equal to %d", minLen))
	} else if len(b) > maxLen {
		v.fail(field, hidden{}, fmt.Sprintf("Member must have length less than or equal to %d", maxLen))
	}
}

func (v *validator) rangeInt(field string, n, lo, hi int) {
	if n < lo {
		v.fail(field, n, fmt.Sprintf("Member must have value greater than or equal to %d", lo))
	} else if n > hi {
		v.fail(field, n, fmt.Sprintf("Member must have value less than or equal to %d", hi))
	}
}

func (v *validator) enum(field, s string, set []string) {
	if s != "" && !slices.Contains(set, s) {
		v.fail(field, truncate(s), "Member must satisfy enum value set: ["+strings.Join(set, ", ")+"]")
	}
}

func (v *validator) pattern(field, s string, re *regexp.Regexp) {
	if s != "" && !re.MatchString(s) {
		v.fail(field, truncate(s), "Member must satisfy regular expression pattern: "+re.String())
	}
}

// keyID validates a KeyId member (required, 1..2048).
func (v *validator) keyID(field, s string) {
	if v.required(field, s != "") {
		v.length(field, s, 1, 2048)
	}
}

// grantTokens validates GrantTokens (≤10 tokens of 1..8192 characters).
// errWithTokens is err, then, for a request whose members are valid, the
// grant tokens' own check (InvalidGrantTokenException): the order AWS
// answers in.
func (v *validator) errWithTokens(tokens []string) error {
	if err := v.err(); err != nil {
		return err
	}
	return checkGrantTokens(tokens)
}

func (v *validator) grantTokens(tokens []string) {
	if len(tokens) > 10 {
		v.fail("grantTokens", hidden{}, "Member must have length less than or equal to 10")
	}
	for _, t := range tokens {
		if t == "" || len(t) > 8192 {
			v.fail("grantTokens", hidden{}, "Member must have length between 1 and 8192")
			return
		}
	}
}

// Encryption contexts are bounded so their canonical encoding stays small.
const maxEncryptionContextBytes = 8192

func (v *validator) encryptionContext(field string, ctx map[string]string) {
	total := 0
	for k, val := range ctx {
		if k == "" {
			v.fail(field, hidden{}, "Encryption context keys must not be empty")
			return
		}
		total += len(k) + len(val)
	}
	if total > maxEncryptionContextBytes {
		v.fail(field, hidden{}, fmt.Sprintf("Encryption context must be at most %d bytes", maxEncryptionContextBytes))
	}
}

func (v *validator) limit(l *int) {
	if l != nil {
		v.rangeInt("limit", *l, 1, 1000)
	}
}

func (v *validator) marker(m string) {
	if m != "" {
		v.length("marker", m, 1, 1024)
		v.pattern("marker", m, markerPattern)
	}
}

var markerPattern = regexp.MustCompile(`^[\x{0020}-\x{00FF}]*$`)

func (v *validator) err() error {
	switch len(v.errs) {
	case 0:
		return nil
	case 1:
		return newError(ErrValidation, "1 validation error detected: %s", v.errs[0])
	default:
		return newError(ErrValidation, "%d validation errors detected: %s", len(v.errs), strings.Join(v.errs, "; "))
	}
}

func truncate(s string) string {
	if len(s) > 256 {
		return s[:256] + "…"
	}
	return s
}

// pageLimit turns an optional Limit into a page size, clamped to the
// operation's own maximum.
func pageLimit(l *int, def, max int) int {
	if l == nil {
		return def
	}
	return min(*l, max)
}
