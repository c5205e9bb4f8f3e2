// Under -race, sync.Pool drops a random share of what is put in it, so
// allocation counts mean nothing there; make test runs this file without it.

//go:build !race

package server_test

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/coffer-kms/coffer/audit"
)

// TestAuditAllocations holds the audit's share of an Encrypt's allocations
// to the one it needs (the event ID): the record, its resources and its
// parameters are built on the request's stack. An interface call or a
// store through a pointer moves them to the heap without a word; this test
// is the word.
func TestAuditAllocations(t *testing.T) {
	trail := openTrail(t)
	allocs := func(trail *audit.Writer) float64 {
		h, creds, id := benchServerWith(t, trail)
		body := `{"KeyId":"` + id + `","Plaintext":"` + strings.Repeat("A", 1368) + `","EncryptionContext":{"purpose":"allocs"}}`
		req := signedRequest(t, creds, "Encrypt", body)
		var ctx fasthttp.RequestCtx
		return testing.AllocsPerRun(200, func() {
			ctx.Init(req, nil, nil)
			h(&ctx)
			if ctx.Response.StatusCode() != 200 {
				t.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
			}
			ctx.Response.Reset()
		})
	}
	plain, audited := allocs(nil), allocs(trail)
	t.Logf("Encrypt: %.0f allocations, %.0f audited", plain, audited)
	if audited > plain+1 {
		t.Fatalf("the audit adds %.0f allocations to an Encrypt, want at most 1", audited-plain)
	}
}

// TestHandlerAllocations holds the hot operations, in process and without
// an audit trail, to the allocations they make today (BenchmarkHandler's
// allocs/op): their outputs are the request's memory (kms.RequestInfo),
// and so is the policy context of the key they authorize on. A change that
// adds one says so here.
func TestHandlerAllocations(t *testing.T) {
	h, creds, id := benchServer(t)
	pt := strings.Repeat("A", 1368)
	enc := serveSigned(t, h, creds, "Encrypt", `{"KeyId":"`+id+`","Plaintext":"`+pt+`"}`)
	_, blob, _ := strings.Cut(enc, `"CiphertextBlob":"`)
	blob, _, _ = strings.Cut(blob, `"`)
	for _, tc := range []struct {
		op, body string
		max      float64
	}{
		{"Encrypt", `{"KeyId":"` + id + `","Plaintext":"` + pt + `","EncryptionContext":{"purpose":"allocs"}}`, 12},
		{"Decrypt", `{"CiphertextBlob":"` + blob + `"}`, 10},
		{"GenerateDataKey", `{"KeyId":"` + id + `","KeySpec":"AES_256","EncryptionContext":{"purpose":"allocs"}}`, 12},
	} {
		req := signedRequest(t, creds, tc.op, tc.body)
		var ctx fasthttp.RequestCtx
		n := testing.AllocsPerRun(200, func() {
			ctx.Init(req, nil, nil)
			h(&ctx)
			if ctx.Response.StatusCode() != 200 {
				t.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
			}
			ctx.Response.Reset()
		})
		if n > tc.max {
			t.Errorf("%s: %.0f allocations a request, want at most %.0f", tc.op, n, tc.max)
		}
	}
}
