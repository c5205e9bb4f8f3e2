// Package request fuzzes request decoding: arbitrary bodies sent to every
// operation of the kms catalogue (the KMS API, the administration API and
// STS) through the real server handler, signed as a real client signs.
package request

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/valyala/fasthttp"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/kms"
	"github.com/coffer-kms/coffer/server"
)

// target is one operation the fuzzer sends bodies to: every row of the
// kms operation catalogue, whatever API serves it, and one unknown name.
type target struct {
	api  kms.API
	name string
}

var targets = func() []target {
	var out []target
	for _, o := range kms.Operations() {
		out = append(out, target{o.API, o.Name})
	}
	slices.SortFunc(out, func(a, b target) int {
		return cmp.Or(cmp.Compare(a.api, b.api), cmp.Compare(a.name, b.name))
	})
	return append(out, target{kms.APIKMS, "NoSuchOperation"})
}()

// targetIndex is the position of a KMS operation in targets, for seeds.
func targetIndex(name string) uint8 {
	for i, t := range targets {
		if t.api == kms.APIKMS && t.name == name {
			return uint8(i)
		}
	}
	panic("no operation " + name)
}

// newHandler serves a real (not dev) server: the administration API and
// STS are served only there. Requests are signed by the administrator.
func newHandler(t testing.TB) (fasthttp.RequestHandler, *kms.Credentials, string) {
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := kms.New(kms.Config{Region: "us-east-1", Account: "111122223333", Store: keystore.NewMemory(), Root: root})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := svc.Bootstrap(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	status, body := call(h, creds, target{kms.APIKMS, "CreateKey"}, []byte(`{"Description":"fuzz"}`))
	if status != 200 {
		t.Fatalf("setup CreateKey: %d %s", status, body)
	}
	var out struct{ KeyMetadata struct{ KeyId string } }
	json.Unmarshal(body, &out)
	return h, creds, out.KeyMetadata.KeyId
}

// call sends body to op, signed with the SDK's own SigV4 signer. An STS
// action's body is a form after the action and version.
func call(h fasthttp.RequestHandler, creds *kms.Credentials, op target, body []byte) (int, []byte) {
	service, contentType := "kms", "application/x-amz-json-1.1"
	if op.api == kms.APISTS {
		service, contentType = "sts", "application/x-www-form-urlencoded"
		body = append([]byte("Action="+op.name+"&Version=2011-06-15&"), body...)
	}
	hr, _ := http.NewRequest("POST", "http://localhost/", bytes.NewReader(body))
	hr.Header.Set("Content-Type", contentType)
	switch op.api {
	case kms.APIKMS:
		hr.Header.Set("X-Amz-Target", "TrentService."+op.name)
	case kms.APIAdmin:
		hr.Header.Set("X-Amz-Target", "CofferAdmin."+op.name)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey},
		hr, hex.EncodeToString(sum[:]), service, "us-east-1", time.Now()); err != nil {
		panic(err)
	}
	var req fasthttp.Request
	req.Header.SetMethod("POST")
	req.SetRequestURI("/")
	req.Header.SetHost("localhost")
	for k, vs := range hr.Header {
		req.Header.Set(k, vs[0])
	}
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
	h, creds, keyID := newHandler(f)
	for i := range targets {
		f.Add(uint8(i), []byte(`{}`))
	}
	f.Add(targetIndex("Encrypt"), []byte(`{"KeyId":"`+keyID+`","Plaintext":"aGVsbG8="}`))
	f.Add(targetIndex("GenerateDataKey"), []byte(`{"KeyId":"`+keyID+`","KeySpec":"AES_256","EncryptionContext":{"a":"b"}}`))
	f.Add(targetIndex("Decrypt"), []byte(`{"CiphertextBlob":"AQID"}`))
	f.Add(targetIndex("CreateAlias"), []byte(`{"AliasName":"alias/x","TargetKeyId":"`+keyID+`"}`))
	f.Add(targetIndex("PutKeyPolicy"), []byte(`{"KeyId":"`+keyID+`","Policy":"{\"Statement\":[]}"}`))
	f.Add(targetIndex("ListKeys"), []byte(`{"Limit":1,"Marker":"abc"}`))
	f.Add(targetIndex("EnableKey"), []byte(`{"KeyId":"alias/x"}`))
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		tg := targets[int(op)%len(targets)]
		name := tg.name
		status, resp := call(h, creds, tg, body)
		if tg.api == kms.APISTS {
			// Query protocol: an XML result or an XML ErrorResponse, never a fault.
			var doc struct{ XMLName xml.Name }
			if err := xml.Unmarshal(resp, &doc); err != nil {
				t.Fatalf("%s: %d with a body that is not XML: %q", name, status, resp)
			}
			if status >= 500 || (status != 200) != (doc.XMLName.Local == "ErrorResponse") {
				t.Fatalf("%s: %d %s for body %q", name, status, doc.XMLName.Local, body)
			}
			return
		}
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
