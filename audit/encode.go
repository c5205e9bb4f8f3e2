package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends r as one line of JSON (without the newline) to dst,
// with its chain members as they are (the Writer sets them). It decodes with
// encoding/json to the same Record, RequestParameters and ResponseElements
// compacted. It fails, wrapping ErrInvalidRecord, only when one of those two
// is not JSON.
func (r *Record) AppendJSON(dst []byte) ([]byte, error) {
	b, err := r.appendBody(dst)
	if err != nil {
		return dst, err
	}
	return appendChain(b, r.Seq, r.PrevHash), nil
}

// appendBody appends everything but the chain members and the closing
// brace: Append encodes this part on the caller's goroutine, and the writer
// goroutine adds the chain with appendChain.
func (r *Record) appendBody(b []byte) ([]byte, error) {
	b = append(b, `{"eventVersion":`...)
	b = appendString(b, r.EventVersion)
	b = append(b, `,"userIdentity":{"type":`...)
	b = appendString(b, r.UserIdentity.Type)
	b = appendOptional(b, `,"principalId":`, r.UserIdentity.PrincipalID)
	b = appendOptional(b, `,"arn":`, r.UserIdentity.ARN)
	b = appendOptional(b, `,"accountId":`, r.UserIdentity.AccountID)
	b = appendOptional(b, `,"accessKeyId":`, r.UserIdentity.AccessKeyID)
	b = append(b, `},"eventTime":`...)
	b = appendString(b, r.EventTime)
	b = append(b, `,"eventSource":`...)
	b = appendString(b, r.EventSource)
	b = append(b, `,"eventName":`...)
	b = appendString(b, r.EventName)
	b = append(b, `,"awsRegion":`...)
	b = appendString(b, r.AWSRegion)
	b = appendOptional(b, `,"sourceIPAddress":`, r.SourceIPAddress)
	b = appendOptional(b, `,"userAgent":`, r.UserAgent)
	b = appendOptional(b, `,"errorCode":`, r.ErrorCode)
	b = appendOptional(b, `,"errorMessage":`, r.ErrorMessage)
	var err error
	if r.Params != nil {
		if len(r.RequestParameters) > 0 {
			return b, fmt.Errorf("%w: both Params and RequestParameters are set", ErrInvalidRecord)
		}
		b = append(b, `,"requestParameters":`...)
		b = r.Params.AppendJSON(b)
	} else if len(r.RequestParameters) > 0 {
		b = append(b, `,"requestParameters":`...)
		if b, err = appendRaw(b, r.RequestParameters); err != nil {
			return b, fmt.Errorf("%w: requestParameters: %v", ErrInvalidRecord, err)
		}
	}
	if len(r.ResponseElements) > 0 {
		b = append(b, `,"responseElements":`...)
		if b, err = appendRaw(b, r.ResponseElements); err != nil {
			return b, fmt.Errorf("%w: responseElements: %v", ErrInvalidRecord, err)
		}
	}
	if len(r.AdditionalEventData) > 0 {
		b = append(b, `,"additionalEventData":`...)
		if b, err = appendRaw(b, r.AdditionalEventData); err != nil {
			return b, fmt.Errorf("%w: additionalEventData: %v", ErrInvalidRecord, err)
		}
	}
	b = append(b, `,"requestID":`...)
	b = appendString(b, r.RequestID)
	b = append(b, `,"eventID":`...)
	b = appendString(b, r.EventID)
	b = append(b, `,"readOnly":`...)
	b = strconv.AppendBool(b, r.ReadOnly)
	if len(r.Resources) > 0 {
		b = append(b, `,"resources":[`...)
		for i := range r.Resources {
			res := &r.Resources[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"ARN":`...)
			b = appendString(b, res.ARN)
			b = append(b, `,"type":`...)
			b = appendString(b, res.Type)
			b = appendOptional(b, `,"accountId":`, res.AccountID)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"eventType":`...)
	b = appendString(b, r.EventType)
	b = appendOptional(b, `,"recipientAccountId":`, r.RecipientAccountID)
	if d := r.Digest; d != nil {
		b = append(b, `,"digest":{"firstSeq":`...)
		b = strconv.AppendUint(b, d.FirstSeq, 10)
		b = append(b, `,"lastSeq":`...)
		b = strconv.AppendUint(b, d.LastSeq, 10)
		b = append(b, `,"headHash":`...)
		b = appendString(b, d.HeadHash)
		b = append(b, `,"signature":"`...)
		b = base64.StdEncoding.AppendEncode(b, d.Signature)
		b = append(b, `"}`...)
	}
	if g := r.Gap; g != nil {
		b = append(b, `,"gap":{"firstSeq":`...)
		b = strconv.AppendUint(b, g.FirstSeq, 10)
		b = append(b, `,"lastSeq":`...)
		b = strconv.AppendUint(b, g.LastSeq, 10)
		b = append(b, `,"headHash":`...)
		b = appendString(b, g.HeadHash)
		b = append(b, `,"reason":`...)
		b = appendString(b, g.Reason)
		b = append(b, `,"by":`...)
		b = appendString(b, g.By)
		b = append(b, `,"signature":"`...)
		b = base64.StdEncoding.AppendEncode(b, g.Signature)
		b = append(b, `"}`...)
	}
	return b, nil
}

// appendChain closes a record body with its chain members.
func appendChain(b []byte, seq uint64, prevHash string) []byte {
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"prevHash":`...)
	b = appendString(b, prevHash)
	return append(b, '}')
}

// appendChainHash is appendChain for the writer, which keeps the previous
// line's hash as bytes (hasPrev false for the first record of the trail).
func appendChainHash(b []byte, seq uint64, prev *[32]byte, hasPrev bool) []byte {
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"prevHash":"`...)
	if hasPrev {
		b = hex.AppendEncode(b, prev[:])
	}
	return append(b, `"}`...)
}

func appendOptional(b []byte, name, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, name...), s)
}

// appendRaw appends a caller's JSON value, which must stay on one line.
func appendRaw(b, raw []byte) ([]byte, error) {
	if !validJSON(raw) {
		return b, fmt.Errorf("not a JSON value")
	}
	if bytes.IndexByte(raw, '\n') < 0 && bytes.IndexByte(raw, '\r') < 0 {
		return append(b, bytes.TrimSpace(raw)...), nil
	}
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, raw); err != nil {
		return b, err
	}
	return buf.Bytes(), nil
}

// safe marks the ASCII bytes a JSON string carries as they are.
var safe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, as encoding/json writes it but
// without HTML escaping: invalid UTF-8 becomes U+FFFD, and U+2028 and U+2029
// are escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		i = skipPlain(s, i)
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// skipPlain returns the index of the first byte at or after i that is not
// plain ASCII, eight bytes at a time, or len(s).
func skipPlain(s string, i int) int {
	for ; i+8 <= len(s); i += 8 {
		w := s[i : i+8]
		if !plainWord(uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56) {
			break
		}
	}
	for i < len(s) && s[i] < utf8.RuneSelf && safe[s[i]] {
		i++
	}
	return i
}

// plain8 reports whether the 8 bytes of s need no escaping.
func plain8(s string) bool {
	return plainWord(uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56)
}

// plainWord reports whether the 8 bytes of x (one byte a lane) need no
// escaping: none is below 0x20, a quote, a backslash or non-ASCII. (The
// tests for a zero or a small byte may flag a plain byte next to one that
// is not, never miss one.) Small enough to inline in the scanning loops.
func plainWord(x uint64) bool {
	q := x ^ (lsb * '"')
	bs := x ^ (lsb * '\\')
	return (x|(x-lsb*0x20)|((q-lsb)&^q)|((bs-lsb)&^bs))&msb == 0
}
