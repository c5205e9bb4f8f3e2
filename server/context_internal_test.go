package server

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestOperationContext: an operation's deadline is RequestTimeout to a
// second more after it arrived, shared within a second, and the request's
// values are visible through it.
func TestOperationContext(t *testing.T) {
	s := &Server{}
	s.deadlines.timeout = 30 * time.Second
	var req fasthttp.RequestCtx
	req.SetUserValue("k", "v")
	start := time.Unix(time.Now().Unix(), 250_000_000)
	a := s.operationContext(&req, start)
	b := s.operationContext(&req, start.Add(500*time.Millisecond))
	if a.Context != b.Context {
		t.Error("two requests of one second have their own deadline contexts")
	}
	d, ok := a.Deadline()
	if !ok || d.Before(start.Add(30*time.Second)) || d.After(start.Add(31*time.Second)) {
		t.Errorf("deadline %v for a request at %v", d, start)
	}
	if a.Value("k") != "v" {
		t.Error("the request's values are not visible")
	}
	if a.Err() != nil {
		t.Error("a fresh operation context is done")
	}
	c := s.operationContext(&req, start.Add(time.Second))
	if c.Context == a.Context {
		t.Error("the next second shares the previous second's deadline")
	}
}
