package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Strings that exercise every escape: quotes, backslashes, controls,
// invalid UTF-8, U+2028/U+2029, HTML characters (left as they are), and
// multi-byte runes.
var awkward = []string{
	"", "plain", `quote " and backslash \`, "nl\ncr\rtab\t", "\x00\x01\x1f\x7f",
	"bad utf-8 \xff\xfe and a cut rune \xe2\x82", "line\u2028para\u2029", "<html>&amp;",
	"résumé 日本語 🔑", strings.Repeat("x", 300),
}

// AppendJSON and encoding/json agree: what AppendJSON writes decodes to the
// record, and each string decodes as it does from json.Marshal.
func TestAppendJSONRoundTrip(t *testing.T) {
	for _, s := range awkward {
		r := rec(7)
		r.UserAgent, r.ErrorMessage, r.UserIdentity.ARN, r.Resources[0].ARN = s, s, s, s
		r.Seq, r.PrevHash = 42, "ab"
		r.Digest = &Digest{FirstSeq: 1, LastSeq: 41, HeadHash: "cd", Signature: []byte{0, 1, 2, 0xff}}
		line, err := r.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(line) || bytes.ContainsAny(line, "\n\r") {
			t.Fatalf("%q: not one line of JSON: %s", s, line)
		}
		var got Record
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatal(err)
		}
		var want Record
		std, _ := json.Marshal(r)
		json.Unmarshal(std, &want)
		if !reflect.DeepEqual(&got, &want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", s, got, want)
		}
		if s != "" && strings.ToValidUTF8(s, "\uFFFD") == s && got.UserAgent != s {
			t.Fatalf("%q came back as %q", s, got.UserAgent)
		}
	}
}

func TestAppendJSONRawValues(t *testing.T) {
	for raw, want := range map[string]string{
		`{"keyId":"k"}`:                         `{"keyId":"k"}`,
		" {\"a\":1} ":                           `{"a":1}`,
		"{\n \"a\": [1, 2],\r\n \"b\": null\n}": `{"a":[1,2],"b":null}`,
		`"just a string"`:                       `"just a string"`,
	} {
		r := &Record{RequestParameters: json.RawMessage(raw)}
		line, err := r.AppendJSON(nil)
		if err != nil || !bytes.Contains(line, []byte(`"requestParameters":`+want+`,`)) {
			t.Errorf("%q: %v %s", raw, err, line)
		}
	}
	for _, raw := range []string{`{`, `{"a":1}{`, `nul`, "{\"a\":\"x\ny\"}", `{'a':1}`} {
		r := &Record{ResponseElements: json.RawMessage(raw)}
		if _, err := r.AppendJSON(nil); err == nil {
			t.Errorf("%q accepted", raw)
		}
	}
}

// Encoding a record allocates nothing once its buffer has grown.
func TestAppendJSONAllocations(t *testing.T) {
	r := rec(1)
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf, _ = r.AppendJSON(buf[:0]) }); n != 0 {
		t.Fatalf("%v allocations per record", n)
	}
}

func BenchmarkEncode(b *testing.B) {
	r := rec(1)
	r.Seq, r.PrevHash = 123456, strings.Repeat("ab", 32)
	b.Run("impl=append", func(b *testing.B) {
		buf, _ := r.AppendJSON(nil)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = r.AppendJSON(buf[:0])
		}
	})
	b.Run("impl=encoding-json", func(b *testing.B) {
		buf, _ := json.Marshal(r)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			json.Marshal(r)
		}
	})
}

// validJSON agrees with json.Valid.
func TestValidJSONAgreesWithEncodingJSON(t *testing.T) {
	cases := []string{
		``, ` `, `{}`, `[]`, `""`, `0`, `-0`, `-`, `01`, `1.`, `1.5`, `.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`, `-1.25e-7`,
		`true`, `tru`, `truex`, `false`, `null`, `nul`, `NaN`, `Infinity`, `"\u00e9"`, `"\u00g9"`, `"\u00"`, `"\x"`, `"\/\b\f\n\r\t\"\\"`,
		"\"\x1f\"", "\"\x7f\xff\xfe\"", `"unterminated`, `"\`, `{"a":1,}`, `{"a" 1}`, `{"a":}`, `{a:1}`, `{"a":1 "b":2}`,
		`[1,]`, `[,1]`, `[1 2]`, `[[[]]]`, ` {"a" : [ 1 , {"b":null} ] } `, "{\n\"a\":\r\n\t1}", `{}{}`, `{} x`, `[1]]`,
		`{"a":{"b":{"c":[true,false,null,"x",-1.5e+3]}}}`, "\xef\xbb\xbf{}", "{\"a\":1}\x00",
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
		strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
	}
	for _, c := range cases {
		if got, want := validJSON([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("%.40q: %v, json.Valid says %v", c, got, want)
		}
	}
}

// plain8 never passes a byte that needs escaping.
func TestPlain8(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			b := []byte("abcdefgh")
			b[pos] = byte(c)
			needs := c < 0x20 || c == '"' || c == '\\' || c >= 0x80
			if plain8(string(b)) && needs {
				t.Fatalf("byte %#x at %d passed as plain", c, pos)
			}
			if !plain8(string(b)) && !needs {
				t.Fatalf("plain byte %#x at %d flagged", c, pos)
			}
		}
	}
}

// A record whose parameters are given as Params encodes to the same bytes
// as one whose RequestParameters are Params.JSON, awkward strings and all;
// setting both is refused.
func TestAppendJSONParams(t *testing.T) {
	for i, s := range awkward {
		p := Params{KeyID: s, EncryptionContext: map[string]string{s: awkward[(i+1)%len(awkward)], "b": s}, EncryptionAlgorithm: "SYMMETRIC_DEFAULT", NumberOfBytes: i}
		raw := rec(i)
		raw.RequestParameters = p.JSON()
		want, err := raw.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		byParams := rec(i)
		byParams.RequestParameters, byParams.Params = nil, &p
		got, err := byParams.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%q: Params encodes as\n%s\nRequestParameters as\n%s", s, got, want)
		}
	}
	r := rec(1)
	r.Params = &Params{KeyID: "k"}
	if _, err := r.AppendJSON(nil); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("Params and RequestParameters both set: %v", err)
	}
}

// BenchmarkEncodeParams: a record's parameters rendered by Params into a
// buffer of their own and given as RequestParameters, which Append checks
// and copies (how=json), against given as Params, rendered straight into
// the line (how=typed).
func BenchmarkEncodeParams(b *testing.B) {
	p := Params{KeyID: "alias/app", EncryptionContext: map[string]string{"tenant": "acme"}, EncryptionAlgorithm: "SYMMETRIC_DEFAULT"}
	line := make([]byte, 0, 1024)
	b.Run("how=json", func(b *testing.B) {
		var params [256]byte
		r := rec(1)
		b.ReportAllocs()
		for b.Loop() {
			r.RequestParameters = p.AppendJSON(params[:0])
			line, _ = r.AppendJSON(line[:0])
		}
	})
	b.Run("how=typed", func(b *testing.B) {
		r := rec(1)
		r.RequestParameters, r.Params = nil, &p
		b.ReportAllocs()
		for b.Loop() {
			line, _ = r.AppendJSON(line[:0])
		}
	})
}
