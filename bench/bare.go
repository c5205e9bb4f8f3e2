package bench

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"time"

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

// ServeBareTLS is ServeBare over TLS 1.2+ with a self-signed ECDSA P-256
// certificate made in memory, the baseline for Coffer over TLS.
func ServeBareTLS(ln net.Listener) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
	return ServeBare(tls.NewListener(ln, cfg))
}
