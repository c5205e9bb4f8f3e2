package server

import (
	"bufio"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestParseAmzDate(t *testing.T) {
	for in, want := range map[string]string{
		"20261123T011400Z": "2026-11-23T01:14:00Z",
		"20240229T235959Z": "2024-02-29T23:59:59Z",
	} {
		got, ok := parseAmzDate([]byte(in))
		if !ok || got.Format(time.RFC3339) != want {
			t.Errorf("%s: %v %v, want %s", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "20261123T011400", "20261323T011400Z", "20260231T000000Z", "2026112xT011400Z",
		"20261123 011400Z", "20261123T246000Z", "20240229T235960Z", "Mon, 23 Nov 2026 01:14:00 GMT"} {
		if _, ok := parseAmzDate([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
	// It agrees with time.Parse on every valid instant of a year, hour by hour.
	for tm := time.Date(2028, 1, 1, 0, 0, 7, 0, time.UTC); tm.Year() == 2028; tm = tm.Add(time.Hour + time.Minute) {
		s := tm.Format(amzDateLayout)
		got, ok := parseAmzDate([]byte(s))
		want, _ := time.Parse(amzDateLayout, s)
		if !ok || !got.Equal(want) {
			t.Fatalf("%s: %v, want %v", s, got, want)
		}
	}
}

// TestScopeDay holds scopeDay to time.Format's "20060102" over every day of
// four centuries and the ends of the four-digit years.
func TestScopeDay(t *testing.T) {
	for _, start := range []time.Time{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1900, 1, 1, 23, 59, 59, 0, time.UTC), time.Date(9999, 12, 1, 12, 0, 0, 0, time.UTC)} {
		for d := start; d.Year() <= 9999 && d.Before(start.AddDate(400, 0, 0)); d = d.AddDate(0, 0, 1) {
			var day [8]byte
			scopeDay(&day, d)
			if want := d.Format("20060102"); string(day[:]) != want {
				t.Fatalf("scopeDay(%v) = %q, want %q", d, day[:], want)
			}
		}
	}
}

// TestCanonicalHeaders holds the canonical headers SigV4 signs, found in
// one pass over the request's headers, to their definition: lower-case
// names in SignedHeaders' order, values trimmed with inner runs of spaces
// collapsed, several lines of one header joined by commas in the order
// they came, an absent header empty. Each case is also built with one
// lookup per header, which must agree.
func TestCanonicalHeaders(t *testing.T) {
	for _, tc := range []struct {
		name, headers, signed, want string
	}{
		{"sdk", "Host: kms.test\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Date: 20260301T120000Z\r\nX-Amz-Target: TrentService.Encrypt\r\n",
			"content-type;host;x-amz-date;x-amz-target",
			"content-type:application/x-amz-json-1.1\nhost:kms.test\nx-amz-date:20260301T120000Z\nx-amz-target:TrentService.Encrypt\n"},
		{"duplicate lines", "Host: h\r\nX-Meta: one\r\nX-Amz-Date: d\r\nx-meta: two\r\nX-META: three\r\n",
			"host;x-meta", "host:h\nx-meta:one,two,three\n"},
		{"folded whitespace", "Host: h\r\nX-Meta: \t a   b \t c  \r\nX-Other:x  y\r\n",
			"host;x-meta;x-other", "host:h\nx-meta:a b c\nx-other:x y\n"},
		{"absent", "Host: h\r\nX-Amz-Date: d\r\n",
			"host;x-absent;x-amz-date", "host:h\nx-absent:\nx-amz-date:d\n"},
		{"empty value", "Host: h\r\nX-Empty:\r\nX-Meta: m\r\n",
			"host;x-empty;x-meta", "host:h\nx-empty:\nx-meta:m\n"},
		{"named twice", "Host: h\r\nX-Meta: m\r\n",
			"x-meta;host;x-meta", "x-meta:m\nhost:h\nx-meta:m\n"},
		{"upper-case name", "Host: h\r\nX-Meta: m\r\n",
			"Host;X-Meta", "Host:h\nX-Meta:m\n"},
		{"kept apart by fasthttp", "Host: h\r\nUser-Agent:  agent  1 \r\nContent-Type: text/plain\r\nConnection: keep-alive\r\nContent-Length: 2\r\n",
			"connection;content-length;content-type;host;user-agent", "connection:keep-alive\ncontent-length:2\ncontent-type:text/plain\nhost:h\nuser-agent:agent 1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var req fasthttp.Request
			raw := "POST / HTTP/1.1\r\n" + tc.headers
			if !strings.Contains(tc.headers, "Content-Length") {
				raw += "Content-Length: 2\r\n"
			}
			if err := req.Read(bufio.NewReader(strings.NewReader(raw + "\r\n{}"))); err != nil {
				t.Fatal(err)
			}
			got := string(appendCanonicalHeaders(nil, &req, []byte(tc.signed)))
			if got != tc.want {
				t.Errorf("one pass:\n%q\nwant\n%q", got, tc.want)
			}
			if each := string(appendCanonicalHeadersEach(nil, &req, []byte(tc.signed))); each != tc.want {
				t.Errorf("one lookup a header:\n%q\nwant\n%q", each, tc.want)
			}
		})
	}
}

// TestCanonicalHeadersMany: past the one pass's bounds, the headers are
// looked up one by one, with the same result.
func TestCanonicalHeadersMany(t *testing.T) {
	var req fasthttp.Request
	req.Header.SetHost("h")
	var signed, want []string
	for i := range maxOnePassSigned + 1 {
		name := fmt.Sprintf("x-h%02d", i)
		for j := range 3 {
			req.Header.Add(name, fmt.Sprintf(" v%d ", j))
		}
		signed = append(signed, name)
		want = append(want, name+":v0,v1,v2\n")
	}
	for _, n := range []int{maxOnePassSigned, maxOnePassSigned + 1} {
		got := string(appendCanonicalHeaders(nil, &req, []byte(strings.Join(signed[:n], ";"))))
		if w := strings.Join(want[:n], ""); got != w {
			t.Errorf("%d signed headers:\n%q\nwant\n%q", n, got, w)
		}
	}
}
