package server_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/server"
)

// TestPanicIsAnInternalFailure makes Encrypt panic, once with a value that
// holds request data and once with a runtime error: each call is answered
// KMSInternalException, audited once with that error code and logged with
// where it happened but not with the value; the server goes on serving.
func TestPanicIsAnInternalFailure(t *testing.T) {
	e := newEnv(t)
	keyID := e.createKey("panics")
	const canary = "PANIC-VALUE-CANARY-41c7"
	e.beforeServe = func(s *server.Server) {
		server.SetOperation(s, "Encrypt", func(_ context.Context, body []byte) error {
			if bytes.Contains(body, []byte("index")) {
				var none []byte
				_ = none[len(body)] // a runtime error: index out of range
			}
			panic(errors.New(canary + string(body)))
		})
	}
	e.restart()

	for _, body := range []string{
		`{"KeyId":"` + keyID + `","Plaintext":"dmFsdWU="}`,
		`{"KeyId":"` + keyID + `","Plaintext":"dmFsdWU=","index":1}`,
	} {
		status, code, msg, _ := e.send(t, rawRequest{target: "TrentService.Encrypt", body: body})
		if status != 500 || code != "KMSInternalException" || strings.Contains(msg, canary) {
			t.Fatalf("a panicking Encrypt answered %d %s %q", status, code, msg)
		}
	}
	if _, err := e.client.DescribeKey(context.Background(), &awskms.DescribeKeyInput{KeyId: &keyID}); err != nil {
		t.Fatalf("the server stopped serving after a panic: %v", err)
	}

	var failed int
	err := audit.Query(filepath.Join(e.dir, "audit"), audit.Filter{}, func(r *audit.Record) error {
		if r.EventName == "Encrypt" {
			if r.ErrorCode != "KMSInternalException" || r.UserIdentity.AccessKeyID != e.creds.AccessKeyID {
				t.Errorf("record of a panicking Encrypt: %+v", r)
			}
			failed++
		}
		return nil
	})
	if err != nil || failed != 2 {
		t.Fatalf("%d Encrypt records (%v), want 2", failed, err)
	}
	logs := e.logs.String()
	for _, want := range []string{"panic serving Encrypt: a value of type *errors.errorString", "panic serving Encrypt: runtime error: index out of range", "TestPanicIsAnInternalFailure"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if bytes.Contains(e.trailAndLogs(), []byte(canary)) {
		t.Fatal("the panic's value reached the audit trail or the logs")
	}
}
