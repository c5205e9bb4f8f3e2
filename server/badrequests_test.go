package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// rawRequest is one hand-made HTTP request to the API.
type rawRequest struct {
	target  string
	body    string
	region  string // credential scope; default testRegion
	service string // default "kms"
	signAt  time.Time
	id      string // access key; default the admin's
	secret  string
	// before runs on the request before it is signed; after on the signed
	// request, to break it.
	before, after func(r *http.Request)
	// unsigned sends no Authorization header at all.
	unsigned bool
	// targetAfterSigning adds X-Amz-Target after the signature, so that
	// SignedHeaders leaves it out.
	targetAfterSigning bool
	method             string
}

func (e *testEnv) send(t *testing.T, rr rawRequest) (int, string, string, string) {
	t.Helper()
	if rr.method == "" {
		rr.method = http.MethodPost
	}
	req, err := http.NewRequest(rr.method, e.url+"/", strings.NewReader(rr.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if rr.target != "" && !rr.targetAfterSigning {
		req.Header.Set("X-Amz-Target", rr.target)
	}
	if rr.before != nil {
		rr.before(req)
	}
	if !rr.unsigned {
		region, service := rr.region, rr.service
		if region == "" {
			region = testRegion
		}
		if service == "" {
			service = "kms"
		}
		at := rr.signAt
		if at.IsZero() {
			at = time.Now()
		}
		id, secret := rr.id, rr.secret
		if id == "" {
			id = e.creds.AccessKeyID
		}
		if secret == "" {
			secret = e.creds.SecretAccessKey
		}
		sum := sha256.Sum256([]byte(rr.body))
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: id, SecretAccessKey: secret},
			req, hex.EncodeToString(sum[:]), service, region, at)
		if err != nil {
			t.Fatal(err)
		}
	}
	if rr.targetAfterSigning {
		req.Header.Set("X-Amz-Target", rr.target)
	}
	if rr.after != nil {
		rr.after(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if resp.StatusCode != 200 {
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("error body is not JSON: %q", raw)
		}
		if resp.Header.Get("x-amzn-RequestId") == "" {
			t.Fatal("no x-amzn-RequestId on an error")
		}
	}
	return resp.StatusCode, body.Type, body.Message, string(raw)
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	keyID := e.createKey("bad requests")
	const enc = "TrentService.Encrypt"
	valid := `{"KeyId":"` + keyID + `","Plaintext":"aGVsbG8="}`
	secretPlaintext := "c3VwZXItc2VjcmV0LXBsYWludGV4dA==" // "super-secret-plaintext"

	cases := []struct {
		name       string
		req        rawRequest
		status     int
		code       string
		msgContain string
	}{
		{"control: valid request", rawRequest{target: enc, body: valid}, 200, "", ""},
		{"no Authorization header", rawRequest{target: enc, body: valid, unsigned: true}, 400, "MissingAuthenticationTokenException", "Missing Authentication Token"},
		{"unknown operation, unsigned", rawRequest{target: "TrentService.MakeCoffee", body: "{}", unsigned: true}, 400, "UnknownOperationException", ""},
		{"Authorization without Credential", rawRequest{target: enc, body: valid, after: func(r *http.Request) {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=00")
		}}, 400, "IncompleteSignatureException", "Authorization header requires 'Credential' parameter."},
		{"Authorization without Signature", rawRequest{target: enc, body: valid, after: func(r *http.Request) {
			h := r.Header.Get("Authorization")
			r.Header.Set("Authorization", h[:strings.Index(h, ", Signature=")])
		}}, 400, "IncompleteSignatureException", "Authorization header requires 'Signature' parameter."},
		{"unsupported algorithm", rawRequest{target: enc, body: valid, after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1", 1))
		}}, 400, "IncompleteSignatureException", "Unsupported AWS 'algorithm'"},
		{"no X-Amz-Date", rawRequest{target: enc, body: valid, after: func(r *http.Request) { r.Header.Del("X-Amz-Date") }},
			400, "IncompleteSignatureException", "'X-Amz-Date'"},
		{"wrong secret", rawRequest{target: enc, body: valid, secret: "wrongwrongwrongwrongwrongwrongwrongwrong"},
			400, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided."},
		{"body changed after signing", rawRequest{target: enc, body: valid, after: func(r *http.Request) {
			b := strings.Replace(valid, "aGVsbG8=", "aGVsbG9=", 1)
			r.Body = io.NopCloser(strings.NewReader(b))
			r.ContentLength = int64(len(b))
		}}, 400, "InvalidSignatureException", "does not match"},
		{"target changed after signing", rawRequest{target: enc, body: valid, after: func(r *http.Request) {
			r.Header.Set("X-Amz-Target", "TrentService.GenerateRandom")
		}}, 400, "InvalidSignatureException", "does not match"},
		// A signature that does not cover the operation could be replayed
		// as another operation with the same body.
		{"X-Amz-Target not signed", rawRequest{target: enc, body: valid, targetAfterSigning: true},
			400, "InvalidSignatureException", "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."},
		{"X-Amz-Date not signed", rawRequest{target: enc, body: valid, after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), ";x-amz-date", "", 1))
		}}, 400, "InvalidSignatureException", "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."},
		{"Host not signed", rawRequest{target: enc, body: valid, after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), ";host", "", 1))
		}}, 400, "InvalidSignatureException", "'Host' must be a 'SignedHeader' in the AWS Authorization."},
		{"unknown access key", rawRequest{target: enc, body: valid, id: "AKIAIOSFODNN7EXAMPLE"},
			400, "UnrecognizedClientException", "The security token included in the request is invalid."},
		{"clock 16 minutes behind", rawRequest{target: enc, body: valid, signAt: time.Now().Add(-16 * time.Minute)},
			400, "InvalidSignatureException", "Signature expired:"},
		{"clock 16 minutes ahead", rawRequest{target: enc, body: valid, signAt: time.Now().Add(16 * time.Minute)},
			400, "InvalidSignatureException", "Signature not yet current:"},
		{"clock 14 minutes behind is fine", rawRequest{target: enc, body: valid, signAt: time.Now().Add(-14 * time.Minute)}, 200, "", ""},
		{"scoped to another region", rawRequest{target: enc, body: valid, region: "eu-west-1"},
			400, "InvalidSignatureException", "Credential should be scoped to a valid region"},
		{"scoped to another service", rawRequest{target: enc, body: valid, service: "s3"},
			400, "InvalidSignatureException", "Credential should be scoped to correct service: 'kms'"},
		{"unknown operation", rawRequest{target: "TrentService.MakeCoffee", body: "{}"}, 400, "UnknownOperationException", ""},
		{"no X-Amz-Target", rawRequest{body: "{}"}, 400, "UnknownOperationException", ""},
		{"other service prefix", rawRequest{target: "DynamoDB_20120810.ListTables", body: "{}"}, 400, "UnknownOperationException", ""},
		{"malformed JSON", rawRequest{target: enc, body: `{"KeyId":`}, 400, "SerializationException", ""},
		{"JSON array body", rawRequest{target: enc, body: `[1,2]`}, 400, "SerializationException", ""},
		{"trailing data", rawRequest{target: enc, body: valid + `{}`}, 400, "SerializationException", ""},
		{"wrong member type", rawRequest{target: enc, body: `{"KeyId":5,"Plaintext":"aGVsbG8="}`}, 400, "SerializationException", "KeyId"},
		{"bad base64 never echoed", rawRequest{target: enc, body: `{"KeyId":"` + keyID + `","Plaintext":"super-secret-plaintext!!"}`}, 400, "SerializationException", ""},
		{"missing required member", rawRequest{target: enc, body: `{"Plaintext":"aGVsbG8="}`}, 400, "ValidationException", "Value null at 'keyId' failed to satisfy constraint: Member must not be null"},
		{"two validation errors", rawRequest{target: enc, body: `{}`}, 400, "ValidationException", "2 validation errors detected"},
		{"value out of range", rawRequest{target: "TrentService.GenerateRandom", body: `{"NumberOfBytes":2000}`}, 400, "ValidationException", "Member must have value less than or equal to 1024"},
		{"enum outside its set", rawRequest{target: "TrentService.CreateKey", body: `{"KeyUsage":"MAKE_TEA"}`}, 400, "ValidationException", "Member must satisfy enum value set"},
		{"oversize body", rawRequest{target: enc, body: `{"KeyId":"` + keyID + `","Description":"` + strings.Repeat("x", 300<<10) + `"}`}, 413, "RequestEntityTooLarge", ""},
		{"plaintext too long, not echoed", rawRequest{target: enc, body: `{"KeyId":"` + keyID + `","Plaintext":"` + strings.Repeat(secretPlaintext[:28], 200) + `"}`},
			400, "ValidationException", "Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"},
		{"GET is not an operation", rawRequest{target: enc, method: http.MethodGet}, 400, "UnknownOperationException", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, code, msg, raw := e.send(t, tc.req)
			if status != tc.status || code != tc.code {
				t.Fatalf("got %d %s %q, want %d %s", status, code, msg, tc.status, tc.code)
			}
			if !strings.Contains(msg, tc.msgContain) {
				t.Fatalf("message %q does not contain %q", msg, tc.msgContain)
			}
			if strings.Contains(raw, "super-secret") || strings.Contains(raw, secretPlaintext) {
				t.Fatalf("response echoes the plaintext: %s", raw)
			}
		})
	}
	// None of the refused requests changed anything: still exactly one key.
	status, _, _, raw := e.send(t, rawRequest{target: "TrentService.ListKeys", body: "{}"})
	if status != 200 || strings.Count(raw, `"KeyId"`) != 1 {
		t.Fatalf("after bad requests: %d %s", status, raw)
	}
}

func TestDevModeAcceptsAnyWellFormedSignature(t *testing.T) {
	e := newEnv(t)
	e.stop()
	// Reuse the harness pieces with Dev on.
	e.startWith(true)
	status, _, _, raw := e.send(t, rawRequest{target: "TrentService.CreateKey", body: "{}", id: "AKIADEVDEVDEVDEVDEV1", secret: "anything"})
	if status != 200 || !strings.Contains(raw, `"AWSAccountId":"111122223333"`) {
		t.Fatalf("dev CreateKey: %d %s", status, raw)
	}
	status, code, _, _ := e.send(t, rawRequest{target: "TrentService.ListKeys", body: "{}", unsigned: true})
	if status != 400 || code != "MissingAuthenticationTokenException" {
		t.Fatalf("dev still needs a signature: %d %s", status, code)
	}
	status, code, _, _ = e.send(t, rawRequest{target: "TrentService.ListKeys", body: "{}", signAt: time.Now().Add(-time.Hour)})
	if status != 400 || code != "InvalidSignatureException" {
		t.Fatalf("dev still checks the clock: %d %s", status, code)
	}
}
