package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/kms"
	"github.com/coffer-kms/coffer/server"
)

// BenchmarkEncryptOverTLS measures an Encrypt round trip over a real
// loopback socket (one keep-alive connection, client and server in this
// process) to Coffer and to a bare fasthttp server answering a canned
// response, each over plain HTTP and over TLS 1.3, in the same run: the
// TLS cost per request, and how it compares with the transport's own.
func BenchmarkEncryptOverTLS(b *testing.B) {
	cert, pool := selfSigned(b)
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
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
	key, err := svc.CreateKey(context.Background(), &kms.Caller{ARN: "arn:aws:iam::" + testAccount + ":root", Account: testAccount}, &kms.CreateKeyInput{})
	if err != nil {
		b.Fatal(err)
	}
	body := `{"KeyId":"` + key.KeyMetadata.KeyId + `","Plaintext":"` + strings.Repeat("A", 1368) + `","EncryptionContext":{"purpose":"bench"}}`
	canned := []byte(`{"CiphertextBlob":"` + strings.Repeat("A", 1500) + `","KeyId":"arn","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}`)
	bare := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/x-amz-json-1.1")
		ctx.SetBody(canned)
	}}
	for _, target := range []string{"coffer", "bare"} {
		for _, transport := range []string{"plain", "tls"} {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			var serve func(net.Listener) error
			switch target {
			case "coffer":
				srv, err := server.New(server.Config{Service: svc})
				if err != nil {
					b.Fatal(err)
				}
				serve = srv.Serve
				if transport == "tls" {
					serve = func(ln net.Listener) error { return srv.ServeTLS(ln, tlsCfg) }
				}
				defer srv.Shutdown(context.Background())
			case "bare":
				serve = bare.Serve
				if transport == "tls" {
					serve = func(ln net.Listener) error { return bare.Serve(tls.NewListener(ln, tlsCfg)) }
				}
			}
			go serve(ln)
			client := &fasthttp.HostClient{Addr: ln.Addr().String(), MaxConns: 1, IsTLS: transport == "tls",
				TLSConfig: &tls.Config{RootCAs: pool}, ReadTimeout: 10 * time.Second}
			req := signedRequest(b, creds, "Encrypt", body)
			if transport == "tls" {
				req.URI().SetScheme("https")
			}
			b.Run("target="+target+"/transport="+transport, func(b *testing.B) {
				var resp fasthttp.Response
				b.ReportAllocs()
				for b.Loop() {
					if err := client.Do(req, &resp); err != nil || resp.StatusCode() != 200 {
						b.Fatalf("%v %d %s", err, resp.StatusCode(), resp.Body())
					}
				}
			})
			ln.Close()
		}
	}
}

// selfSigned makes a P-256 certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(b *testing.B) (tls.Certificate, *x509.CertPool) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}, pool
}
