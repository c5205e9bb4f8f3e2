package server

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/kms"
)

// TestReadyChecks: /readyz names the first part that is down, and is ready
// again when it comes back.
func TestReadyChecks(t *testing.T) {
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := kms.New(kms.Config{Region: "us-east-1", Account: "111122223333", Store: keystore.NewMemory(), Root: root})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	s.AddReadyCheck("root of trust", func() error {
		if down.Load() {
			return errors.New("token not present")
		}
		return nil
	})
	readyz := func() (int, string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI("/readyz")
		s.handle(&ctx)
		return ctx.Response.StatusCode(), string(ctx.Response.Body())
	}
	if code, body := readyz(); code != 200 || body != "ready\n" {
		t.Fatalf("healthy: %d %q", code, body)
	}
	down.Store(true)
	if code, body := readyz(); code != 503 || body != "root of trust unavailable: token not present\n" {
		t.Fatalf("root down: %d %q", code, body)
	}
	down.Store(false)
	if code, _ := readyz(); code != 200 {
		t.Fatalf("root back: %d", code)
	}
	s.ready.Store(false)
	if code, body := readyz(); code != 503 || body != "shutting down\n" {
		t.Fatalf("shutting down: %d %q", code, body)
	}
}
