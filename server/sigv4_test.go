package server_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestSigV4HeaderLines signs, with the AWS SDK's signer, requests whose
// signed headers come as several lines, with runs of spaces and tabs, or
// empty: the server's canonical headers must be the SDK's. Removing a
// signed header after signing breaks the signature.
func TestSigV4HeaderLines(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		before func(r *http.Request)
		after  func(r *http.Request)
		status int
	}{
		{"several lines", func(r *http.Request) {
			r.Header.Add("X-Meta", "one")
			r.Header.Add("X-Meta", "  two   three ")
			r.Header.Add("X-Meta", "four")
		}, nil, 200},
		// Runs of spaces only: the Go SDK leaves tabs as they are, where
		// botocore and Coffer (appendTrimmed) take them for spaces.
		{"runs of spaces", func(r *http.Request) { r.Header.Set("X-Meta", "  a   b  c ") }, nil, 200},
		{"empty", func(r *http.Request) { r.Header.Set("X-Empty", "") }, nil, 200},
		{"a line dropped", func(r *http.Request) {
			r.Header.Add("X-Meta", "one")
			r.Header.Add("X-Meta", "two")
		}, func(r *http.Request) { r.Header["X-Meta"] = r.Header["X-Meta"][:1] }, 400},
		{"absent", func(r *http.Request) { r.Header.Set("X-Meta", "one") },
			func(r *http.Request) { r.Header.Del("X-Meta") }, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var signed string
			after := func(r *http.Request) {
				signed = r.Header.Get("Authorization")
				if tc.after != nil {
					tc.after(r)
				}
			}
			status, code, msg, _ := e.send(t, rawRequest{target: "TrentService.ListKeys", body: "{}", before: tc.before, after: after})
			if !strings.Contains(signed, "x-meta") && !strings.Contains(signed, "x-empty") {
				t.Fatalf("the SDK did not sign the header: %s", signed)
			}
			if status != tc.status || status != 200 && code != "InvalidSignatureException" {
				t.Fatalf("answered %d %s %s, want %d", status, code, msg, tc.status)
			}
		})
	}
}
