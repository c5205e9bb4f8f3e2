package kms

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"time"
	"unicode/utf8"
)

// A key record read from the store is decoded on every cache miss (every
// request, once keys far outnumber the cache), and encoding/json spends
// about 11 µs on one of 860 bytes: a validating scan of the whole input,
// then the decoding, with the policy's escaped quotes and newlines
// unquoted a byte at a time. decodeKeyJSON decodes the records
// json.Marshal writes, in one pass, into the same values; anything it does
// not expect — a name that differs from the field's, a member twice, a
// \u escape, a number that is not a plain integer, bytes that are not
// UTF-8 — makes it give up, and decodeKey falls back to json.Unmarshal,
// which decides. FuzzDecodeKeyJSON holds the two to the same result.

// decodeKeyJSON decodes data into r, which must be zero, and reports
// whether it could; when it could not, r holds partial results.
func decodeKeyJSON(data []byte, r *keyRecord) bool {
	s := jsonScan{b: data}
	if !s.keyRecord(r) {
		return false
	}
	s.ws()
	return s.i == len(s.b)
}

// jsonScan reads JSON from b at i.
type jsonScan struct {
	b []byte
	i int
}

func (s *jsonScan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips white space and consumes c if it comes next.
func (s *jsonScan) next(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object reads an object whose member names are among names (each at most
// once), calling member with each name's index to read its value.
func (s *jsonScan) object(names []string, member func(int) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	var seen uint64
	for {
		name, ok := s.str()
		if !ok || !s.next(':') {
			return false
		}
		f := -1
		for j, n := range names {
			if n == name {
				f = j
				break
			}
		}
		if f < 0 || seen&(1<<f) != 0 {
			return false
		}
		// null leaves the member's zero value, as encoding/json does for
		// every type here (the value starts zero; a member comes once).
		if !s.null() && !member(f) {
			return false
		}
		seen |= 1 << f
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// null consumes null if it comes next.
func (s *jsonScan) null() bool {
	s.ws()
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// arrayOf reads an array into *dst, elem reading each element into the
// zero value it is given; an empty array is an empty, non-nil slice, as
// encoding/json makes it.
func arrayOf[T any](s *jsonScan, dst *[]T, elem func(*T) bool) bool {
	if !s.next('[') {
		return false
	}
	*dst = []T{}
	if s.next(']') {
		return true
	}
	for {
		*dst = append(*dst, *new(T))
		if !elem(&(*dst)[len(*dst)-1]) {
			return false
		}
		if s.next(']') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// plainByte marks the bytes a string may hold as they are: not a quote, a
// backslash or a control character.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// quoted reads a string and returns its bytes between the quotes, still
// escaped, and whether it holds a backslash.
func (s *jsonScan) quoted() (raw []byte, escaped, ok bool) {
	if !s.next('"') {
		return nil, false, false
	}
	start := s.i
	for {
		for s.i < len(s.b) && plainByte[s.b[s.i]] {
			s.i++
		}
		if s.i >= len(s.b) {
			return nil, false, false
		}
		switch s.b[s.i] {
		case '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, escaped, true
		case '\\':
			escaped = true
			s.i += 2
		default: // a control character
			return nil, false, false
		}
	}
}

// str reads a string: its escapes may be the two-byte ones only, and its
// bytes must be UTF-8 (encoding/json replaces what is not).
func (s *jsonScan) str() (string, bool) {
	raw, escaped, ok := s.quoted()
	if !ok || !utf8.Valid(raw) {
		return "", false
	}
	if !escaped {
		return string(raw), true
	}
	out := make([]byte, 0, len(raw))
	for {
		i := bytes.IndexByte(raw, '\\')
		if i < 0 {
			return string(append(out, raw...)), true
		}
		if i+1 == len(raw) {
			return "", false
		}
		out = append(out, raw[:i]...)
		switch raw[i+1] {
		case '"', '\\', '/':
			out = append(out, raw[i+1])
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
		default: // \u, or not an escape
			return "", false
		}
		raw = raw[i+2:]
	}
}

// bytes reads a []byte: standard base64, as encoding/json decodes it.
func (s *jsonScan) bytes() ([]byte, bool) {
	raw, escaped, ok := s.quoted()
	if !ok || escaped {
		return nil, false
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
	n, err := base64.StdEncoding.Decode(b, raw)
	return b[:n], err == nil
}

// time reads a time.Time through its own UnmarshalJSON, as encoding/json
// does.
func (s *jsonScan) time(t *time.Time) bool {
	s.ws()
	start := s.i
	if _, escaped, ok := s.quoted(); !ok || escaped {
		return false
	}
	return t.UnmarshalJSON(s.b[start:s.i]) == nil
}

// int reads an integer written without fraction or exponent.
func (s *jsonScan) int() (int, bool) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	n := s.i - digits
	if n == 0 || n > 18 || (n > 1 && s.b[digits] == '0') {
		return 0, false
	}
	v, err := strconv.Atoi(string(s.b[start:s.i]))
	return v, err == nil
}

// bool reads true or false.
func (s *jsonScan) bool() (v, ok bool) {
	s.ws()
	switch {
	case len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "true":
		s.i += 4
		return true, true
	case len(s.b)-s.i >= 5 && string(s.b[s.i:s.i+5]) == "false":
		s.i += 5
		return false, true
	}
	return false, false
}

// strField reads a string into *dst.
func (s *jsonScan) strField(dst *string) bool {
	v, ok := s.str()
	*dst = v
	return ok
}

func (s *jsonScan) intField(dst *int) bool {
	v, ok := s.int()
	*dst = v
	return ok
}

// keyRecordNames are keyRecord's JSON member names, in the order of the
// switch in keyRecord.
var keyRecordNames = []string{
	"id", "account", "region", "created", "description", "usage", "spec", "origin", "manager", "state",
	"deletionDate", "pendingWindowDays", "policy", "tags", "versions", "rotationEnabled", "rotationPeriodDays",
	"nextRotation", "onDemandRotations", "lastOnDemand", "customKeyStoreId", "clusterId", "availableState",
	"pendingMaterial", "expirationModel", "validTo", "primaryRegion", "replicaRegions",
}

func (s *jsonScan) keyRecord(r *keyRecord) bool {
	return s.object(keyRecordNames, func(f int) bool {
		switch f {
		case 0:
			return s.strField(&r.ID)
		case 1:
			return s.strField(&r.Account)
		case 2:
			return s.strField(&r.Region)
		case 3:
			return s.time(&r.Created)
		case 4:
			return s.strField(&r.Description)
		case 5:
			return s.strField(&r.Usage)
		case 6:
			return s.strField(&r.Spec)
		case 7:
			return s.strField(&r.Origin)
		case 8:
			return s.strField(&r.Manager)
		case 9:
			return s.strField(&r.State)
		case 10:
			return s.time(&r.DeletionDate)
		case 11:
			return s.intField(&r.PendingWindowDays)
		case 12:
			return s.strField(&r.Policy)
		case 13:
			return arrayOf(s, &r.Tags, func(t *Tag) bool {
				return s.object([]string{"TagKey", "TagValue"}, func(f int) bool {
					if f == 0 {
						return s.strField(&t.TagKey)
					}
					return s.strField(&t.TagValue)
				})
			})
		case 14:
			return arrayOf(s, &r.Versions, s.keyVersion)
		case 15:
			v, ok := s.bool()
			r.RotationEnabled = v
			return ok
		case 16:
			return s.intField(&r.RotationPeriodDays)
		case 17:
			return s.time(&r.NextRotation)
		case 18:
			return s.intField(&r.OnDemandRotations)
		case 19:
			return s.time(&r.LastOnDemand)
		case 20:
			return s.strField(&r.CustomKeyStoreID)
		case 21:
			return s.strField(&r.ClusterID)
		case 22:
			return s.strField(&r.AvailableState)
		case 23:
			r.PendingMaterial = new(keyVersion)
			return s.keyVersion(r.PendingMaterial)
		case 24:
			return s.strField(&r.ExpirationModel)
		case 25:
			return s.time(&r.ValidTo)
		case 26:
			return s.strField(&r.PrimaryRegion)
		case 27:
			return arrayOf(s, &r.ReplicaRegions, s.strField)
		}
		return false
	})
}

// keyVersionNames are keyVersion's JSON member names, in the order of the
// switch in keyVersion.
var keyVersionNames = []string{
	"materialId", "wrapped", "created", "rotationType", "hsmKey", "description", "imported", "expirationModel", "validTo",
}

func (s *jsonScan) keyVersion(v *keyVersion) bool {
	return s.object(keyVersionNames, func(f int) bool {
		switch f {
		case 0:
			return s.strField(&v.MaterialID)
		case 1:
			b, ok := s.bytes()
			v.Wrapped = b
			return ok
		case 2:
			return s.time(&v.Created)
		case 3:
			return s.strField(&v.RotationType)
		case 4:
			return s.strField(&v.HSMKey)
		case 5:
			return s.strField(&v.Description)
		case 6:
			return s.time(&v.Imported)
		case 7:
			return s.strField(&v.ExpirationModel)
		case 8:
			return s.time(&v.ValidTo)
		}
		return false
	})
}
