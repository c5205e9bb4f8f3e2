package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/coffer-kms/coffer/audit"
)

// TestUnauthenticatedCoalesced: a flood of requests without a valid
// signature from one address gets a bounded number of audit records — its
// budget one by one, the rest ThrottlingException summed up in one record —
// so that no unauthenticated client can fill the trail's disk.
func TestUnauthenticatedCoalesced(t *testing.T) {
	f := newOutboxFixture(t)
	f.srv.unauth = newUnauthLimiter() // as with rate limits on (Config.RateLimits)
	const flood = 200
	throttled := 0
	for range flood {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/")
		ctx.Request.Header.Set("X-Amz-Target", "TrentService.ListKeys")
		ctx.Request.SetBodyString("{}")
		f.srv.handle(&ctx)
		if strings.Contains(string(ctx.Response.Body()), "ThrottlingException") {
			throttled++
		}
	}
	if throttled == 0 || throttled > flood-unauthRate {
		t.Fatalf("%d of %d unauthenticated requests throttled, want all but about %d", throttled, flood, unauthRate)
	}
	f.srv.unauth.flush(f.srv, time.Now())
	var one, summed int
	if err := audit.Query(f.dir, audit.Filter{}, func(r *audit.Record) error {
		switch r.EventName {
		case "ListKeys":
			one++
		case "UnauthenticatedRequests":
			var extra struct {
				N int `json:"coalescedUnauthenticatedRequests"`
			}
			if err := json.Unmarshal(r.AdditionalEventData, &extra); err != nil {
				t.Errorf("summary record %s: %v", r.AdditionalEventData, err)
			}
			summed += extra.N
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if one+summed != flood || summed != throttled || one > 2*unauthRate {
		t.Fatalf("%d records one by one and %d summed up for %d requests (%d throttled)", one, summed, flood, throttled)
	}
}
