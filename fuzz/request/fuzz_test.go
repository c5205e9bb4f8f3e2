// Package request fuzzes request decoding: arbitrary bodies sent to every
// operation through the real server handler.
package request

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/kms"
	"github.com/coffer-kms/coffer/server"
)

var operations = []string{
	"CancelKeyDeletion", "CreateAlias", "CreateKey", "Decrypt", "DeleteAlias", "DescribeKey", "DisableKey",
	"DisableKeyRotation", "EnableKey", "EnableKeyRotation", "Encrypt", "GenerateDataKey",
	"GenerateDataKeyWithoutPlaintext", "GenerateRandom", "GetKeyPolicy", "GetKeyRotationStatus", "ListAliases",
	"ListKeyPolicies", "ListKeyRotations", "ListKeys", "ListResourceTags", "PutKeyPolicy", "ReEncrypt",
	"RotateKeyOnDemand", "ScheduleKeyDeletion", "TagResource", "UntagResource", "UpdateAlias", "UpdateKeyDescription",
	"CreateGrant", "ListGrants", "ListRetirableGrants", "RetireGrant", "RevokeGrant", "NoSuchOperation",
}

func newHandler(t testing.TB) (fasthttp.RequestHandler, string) {
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := kms.New(kms.Config{Region: "us-east-1", Account: "111122223333", Store: keystore.NewMemory(), Root: root})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Service: svc, Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	status, body := call(h, "CreateKey", []byte(`{"Description":"fuzz"}`))
	if status != 200 {
		t.Fatalf("setup CreateKey: %d %s", status, body)
	}
	var out struct{ KeyMetadata struct{ KeyId string } }
	json.Unmarshal(body, &out)
	return h, out.KeyMetadata.KeyId
}

func call(h fasthttp.RequestHandler, op string, body []byte) (int, []byte) {
	var req fasthttp.Request
	now := time.Now().UTC()
	req.Header.SetMethod("POST")
	req.SetRequestURI("/")
	req.Header.SetHost("localhost")
	req.Header.Set("X-Amz-Target", "TrentService."+op)
	req.Header.Set("X-Amz-Date", now.Format("20060102T150405Z"))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAFUZZFUZZFUZZFUZZ/"+now.Format("20060102")+
		"/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature="+strings.Repeat("ab", 32))
	req.SetBody(body)
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	h(&ctx)
	return ctx.Response.StatusCode(), append([]byte(nil), ctx.Response.Body()...)
}

// FuzzRequest asserts that no body sent to any operation panics the server
// or makes it fail on its side: every answer is a success or a 4xx with an
// AWS-shaped error, and errors never quote a Plaintext sent.
func FuzzRequest(f *testing.F) {
	h, keyID := newHandler(f)
	for i := range operations {
		f.Add(uint8(i), []byte(`{}`))
	}
	f.Add(uint8(10), []byte(`{"KeyId":"`+keyID+`","Plaintext":"aGVsbG8="}`))
	f.Add(uint8(11), []byte(`{"KeyId":"`+keyID+`","KeySpec":"AES_256","EncryptionContext":{"a":"b"}}`))
	f.Add(uint8(3), []byte(`{"CiphertextBlob":"AQID"}`))
	f.Add(uint8(1), []byte(`{"AliasName":"alias/x","TargetKeyId":"`+keyID+`"}`))
	f.Add(uint8(21), []byte(`{"KeyId":"`+keyID+`","Policy":"{\"Statement\":[]}"}`))
	f.Add(uint8(19), []byte(`{"Limit":1,"Marker":"abc"}`))
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		name := operations[int(op)%len(operations)]
		status, resp := call(h, name, body)
		if status == 200 {
			if !json.Valid(resp) {
				t.Fatalf("%s: 200 with invalid JSON %q", name, resp)
			}
			return
		}
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(resp, &e); err != nil || e.Type == "" {
			t.Fatalf("%s: error body %q is not AWS-shaped", name, resp)
		}
		if status >= 500 {
			t.Fatalf("%s: server fault %d %s: %s for body %q", name, status, e.Type, e.Message, body)
		}
		var in struct{ Plaintext string }
		if json.Unmarshal(body, &in) == nil && len(in.Plaintext) >= 8 && strings.Contains(e.Message, in.Plaintext) {
			t.Fatalf("%s: error message quotes the plaintext", name)
		}
	})
}
