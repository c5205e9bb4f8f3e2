package bench

import (
	"bytes"
	"net"

	"github.com/valyala/fasthttp"
)

// BareHandler answers every request as a minimal AWS JSON service would
// without doing any KMS work: it reads the body, sets the same headers
// Coffer sets and returns a canned response of the size an Encrypt
// response of 1 KiB has. It is the transport's own cost, the baseline every
// server figure is divided by.
func BareHandler() fasthttp.RequestHandler {
	canned := []byte(`{"CiphertextBlob":"` + string(bytes.Repeat([]byte("A"), 1476)) +
		`","KeyId":"arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}`)
	return func(ctx *fasthttp.RequestCtx) {
		if len(ctx.Request.Header.Peek("X-Amz-Target")) == 0 || len(ctx.Request.Body()) == 0 {
			ctx.SetStatusCode(400)
			return
		}
		ctx.Response.Header.Set("x-amzn-RequestId", "00000000-0000-4000-8000-000000000000")
		ctx.SetContentType("application/x-amz-json-1.1")
		ctx.SetBody(canned)
	}
}

// ServeBare serves BareHandler on ln with the server settings Coffer uses.
func ServeBare(ln net.Listener) error {
	s := &fasthttp.Server{Handler: BareHandler(), Name: "Coffer"}
	return s.Serve(ln)
}
