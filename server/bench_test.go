package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/valyala/fasthttp"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/kms"
	"github.com/coffer-kms/coffer/server"
)

// benchServer is a server over a memory store, answered in-process.
func benchServer(b testing.TB) (fasthttp.RequestHandler, *kms.Credentials, string) {
	return benchServerWith(b, nil)
}

// benchServerWith is benchServer writing its audit trail to trail.
func benchServerWith(b testing.TB, trail *audit.Writer) (fasthttp.RequestHandler, *kms.Credentials, string) {
	return benchServerLimited(b, trail, nil)
}

// benchServerLimited is benchServerWith with request quotas (nil: none).
func benchServerLimited(b testing.TB, trail *audit.Writer, limits *server.RateLimits) (fasthttp.RequestHandler, *kms.Credentials, string) {
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		b.Fatal(err)
	}
	svc, err := kms.New(kms.Config{Region: testRegion, Account: testAccount, Store: keystore.NewMemory(), Root: root})
	if err != nil {
		b.Fatal(err)
	}
	creds, err := svc.Bootstrap(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(server.Config{Service: svc, Audit: trail, RateLimits: limits})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	resp := serveSigned(b, h, creds, "CreateKey", "{}")
	_, id, _ := strings.Cut(resp, `"KeyId":"`)
	id, _, _ = strings.Cut(id, `"`)
	return h, creds, id
}

// openTrail opens an audit trail in a temporary directory, closed when the
// test or benchmark ends.
func openTrail(tb testing.TB) *audit.Writer {
	key, err := audit.GenerateSigningKey()
	if err != nil {
		tb.Fatal(err)
	}
	trail, err := audit.Open(audit.Config{Dir: tb.TempDir(), Signer: key})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { trail.Close() })
	return trail
}

// signedRequest builds a SigV4-signed request with the SDK's own signer.
func signedRequest(b testing.TB, creds *kms.Credentials, op, body string) *fasthttp.Request {
	hr, _ := http.NewRequest("POST", "http://127.0.0.1:7300/", strings.NewReader(body))
	hr.Header.Set("Content-Type", "application/x-amz-json-1.1")
	hr.Header.Set("X-Amz-Target", "TrentService."+op)
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey},
		hr, hex.EncodeToString(sum[:]), "kms", testRegion, time.Now()); err != nil {
		b.Fatal(err)
	}
	var req fasthttp.Request
	req.Header.SetMethod("POST")
	req.SetRequestURI("/")
	req.Header.SetHost("127.0.0.1:7300")
	for k, vs := range hr.Header {
		req.Header.Set(k, vs[0])
	}
	req.SetBodyString(body)
	return &req
}

func serveSigned(b testing.TB, h fasthttp.RequestHandler, creds *kms.Credentials, op, body string) string {
	var ctx fasthttp.RequestCtx
	ctx.Init(signedRequest(b, creds, op, body), nil, nil)
	h(&ctx)
	if ctx.Response.StatusCode() != 200 {
		b.Fatalf("%s: %d %s", op, ctx.Response.StatusCode(), ctx.Response.Body())
	}
	return string(ctx.Response.Body())
}

// BenchmarkHandler measures whole requests in-process: SigV4
// verification, JSON, the service and the response, without sockets.
func BenchmarkHandler(b *testing.B) {
	h, creds, id := benchServer(b)
	pt := strings.Repeat("A", 1368) // 1 KiB of plaintext, base64
	enc := serveSigned(b, h, creds, "Encrypt", `{"KeyId":"`+id+`","Plaintext":"`+pt+`"}`)
	_, blob, _ := strings.Cut(enc, `"CiphertextBlob":"`)
	blob, _, _ = strings.Cut(blob, `"`)
	for _, tc := range []struct{ op, body string }{
		{"Encrypt", `{"KeyId":"` + id + `","Plaintext":"` + pt + `","EncryptionContext":{"purpose":"bench"}}`},
		{"Decrypt", `{"CiphertextBlob":"` + blob + `"}`},
		{"GenerateDataKey", `{"KeyId":"` + id + `","KeySpec":"AES_256","EncryptionContext":{"purpose":"bench"}}`},
	} {
		b.Run("op="+tc.op, func(b *testing.B) {
			serveLoop(b, h, signedRequest(b, creds, tc.op, tc.body))
		})
	}
}

// BenchmarkHandlerRateLimits is BenchmarkHandler's Encrypt with request
// quotas off and on (a quota no request reaches, so that every request
// takes its token): the cost of throttling on the hot path. Run with
// -count to interleave the two.
func BenchmarkHandlerRateLimits(b *testing.B) {
	pt := strings.Repeat("A", 1368)
	for _, tc := range []struct {
		name   string
		limits *server.RateLimits
	}{
		{"limits=off", nil},
		{"limits=on", &server.RateLimits{Default: map[string]float64{"cryptographic": 1e9}}},
	} {
		h, creds, id := benchServerLimited(b, nil, tc.limits)
		req := signedRequest(b, creds, "Encrypt", `{"KeyId":"`+id+`","Plaintext":"`+pt+`","EncryptionContext":{"purpose":"bench"}}`)
		b.Run("op=Encrypt/"+tc.name, func(b *testing.B) {
			var ctx fasthttp.RequestCtx
			b.ReportAllocs()
			for b.Loop() {
				ctx.Init(req, nil, nil)
				h(&ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
				}
				ctx.Response.Reset()
			}
		})
	}
}

// BenchmarkHandlerAudited is BenchmarkHandler with the audit trail on, on
// the machine's disk: 64 requests in flight per CPU, so that group commit
// gathers them into shared fsyncs as it does under load. Its allocations
// per request are the whole hot path's.
func BenchmarkHandlerAudited(b *testing.B) {
	trail := openTrail(b)
	h, creds, id := benchServerWith(b, trail)
	pt := strings.Repeat("A", 1368)
	req := signedRequest(b, creds, "Encrypt", `{"KeyId":"`+id+`","Plaintext":"`+pt+`","EncryptionContext":{"purpose":"bench"}}`)
	b.Run("op=Encrypt", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(64)
		before := trail.Stats()
		b.RunParallel(func(pb *testing.PB) {
			var ctx fasthttp.RequestCtx
			var mine fasthttp.Request
			req.CopyTo(&mine)
			for pb.Next() {
				ctx.Init(&mine, nil, nil)
				h(&ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Errorf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
					return
				}
				ctx.Response.Reset()
			}
		})
		after := trail.Stats()
		if n := after.Batches - before.Batches; n > 0 {
			b.ReportMetric(float64(after.Records-before.Records)/float64(n), "records/fsync")
		}
	})
}

// BenchmarkSigV4 measures signature verification alone: a request whose
// operation does not exist fails after authentication succeeds.
func BenchmarkSigV4(b *testing.B) {
	h, creds, _ := benchServer(b)
	for _, size := range []int{64, 4096} {
		b.Run(fmt.Sprintf("body=%d", size), func(b *testing.B) {
			req := signedRequest(b, creds, "NoSuchOperation", `{"Pad":"`+strings.Repeat("x", size-10)+`"}`)
			var ctx fasthttp.RequestCtx
			b.ReportAllocs()
			for b.Loop() {
				ctx.Init(req, nil, nil)
				h(&ctx)
				if ctx.Response.StatusCode() != 400 || !strings.Contains(string(ctx.Response.Body()), "UnknownOperation") {
					b.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
				}
				ctx.Response.Reset()
			}
		})
	}
}

// TestInProcessSignedContentLength covers clients that sign content-length,
// a header fasthttp keeps apart from the others.
func TestInProcessSignedContentLength(t *testing.T) {
	h, creds, id := benchServer(t)
	req := signedRequest(t, creds, "DescribeKey", `{"KeyId":"`+id+`"}`)
	if !strings.Contains(string(req.Header.Peek("Authorization")), "content-length;") {
		t.Fatal("the SDK signer did not sign content-length; the test proves nothing")
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(req, nil, nil)
	h(&ctx)
	if ctx.Response.StatusCode() != 200 {
		t.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
}

// BenchmarkHandlerAsym measures whole Sign, Verify and GenerateMac requests
// in-process (SigV4, the generic JSON codec, the service), beside
// BenchmarkHandler's Encrypt: what the server adds over kms's BenchmarkSign.
func BenchmarkHandlerAsym(b *testing.B) {
	h, creds, _ := benchServer(b)
	keyOf := func(spec, usage string) string {
		out := serveSigned(b, h, creds, "CreateKey", `{"KeySpec":"`+spec+`","KeyUsage":"`+usage+`"}`)
		_, id, _ := strings.Cut(out, `"KeyId":"`)
		id, _, _ = strings.Cut(id, `"`)
		return id
	}
	msg := "dGhlIG1lc3NhZ2UgYSBwaXBlbGluZSBzaWducw==" // base64
	p256 := keyOf("ECC_NIST_P256", "SIGN_VERIFY")
	signed := serveSigned(b, h, creds, "Sign", `{"KeyId":"`+p256+`","Message":"`+msg+`","MessageType":"RAW","SigningAlgorithm":"ECDSA_SHA_256"}`)
	_, sig, _ := strings.Cut(signed, `"Signature":"`)
	sig, _, _ = strings.Cut(sig, `"`)
	mac := keyOf("HMAC_256", "GENERATE_VERIFY_MAC")
	for _, tc := range []struct{ op, name, body string }{
		{"Sign", "Sign/spec=ECC_NIST_P256", `{"KeyId":"` + p256 + `","Message":"` + msg + `","MessageType":"RAW","SigningAlgorithm":"ECDSA_SHA_256"}`},
		{"Verify", "Verify/spec=ECC_NIST_P256", `{"KeyId":"` + p256 + `","Message":"` + msg + `","MessageType":"RAW","SigningAlgorithm":"ECDSA_SHA_256","Signature":"` + sig + `"}`},
		{"GenerateMac", "GenerateMac/spec=HMAC_256", `{"KeyId":"` + mac + `","Message":"` + msg + `","MacAlgorithm":"HMAC_SHA_256"}`},
	} {
		b.Run("op="+tc.name, func(b *testing.B) {
			serveLoop(b, h, signedRequest(b, creds, tc.op, tc.body))
		})
	}
}

// serveLoop runs req through h b.N times, reusing one RequestCtx, and fails
// on any answer but 200.
func serveLoop(b *testing.B, h fasthttp.RequestHandler, req *fasthttp.Request) {
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		ctx.Init(req, nil, nil)
		h(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
		ctx.Response.Reset()
	}
}
