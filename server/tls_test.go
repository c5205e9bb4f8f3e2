package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/coffer-kms/coffer/server"
)

// testCA is a throw-away certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key signed by the CA: a server
// certificate for 127.0.0.1 or a client one.
func (ca *testCA) issue(t *testing.T, serial int64, client bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "coffer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	if client {
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// tlsServer serves e's service over TLS; it returns the endpoint and the
// certificates, whose files are dir/cert.pem and dir/key.pem.
func (e *testEnv) tlsServer(ca *testCA, cfg server.TLSConfig) (string, *server.Certificates) {
	t := e.t
	t.Helper()
	dir := t.TempDir()
	cert, key := ca.issue(t, 100, false)
	cfg.CertFile, cfg.KeyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cfg.CertFile, cert, 0o600)
	os.WriteFile(cfg.KeyFile, key, 0o600)
	certs, err := server.LoadCertificates(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := server.NewTLSConfig(cfg, certs)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Service: e.svc})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(ln, tc)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return "https://" + ln.Addr().String(), certs
}

// tlsClient is an SDK client that trusts only ca, optionally presenting a
// client certificate.
func (e *testEnv) tlsClient(endpoint string, ca *testCA, clientCert *tls.Certificate, keepAlive bool) *awskms.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	tc := &tls.Config{RootCAs: pool}
	if clientCert != nil {
		tc.Certificates = []tls.Certificate{*clientCert}
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 4}}
	return awskms.New(awskms.Options{
		Region: testRegion, BaseEndpoint: aws.String(endpoint), HTTPClient: hc, RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(e.creds.AccessKeyID, e.creds.SecretAccessKey, ""),
	})
}

// TestTLSWithCABundleOnly: aws-sdk-go-v2 trusting only the CA works over
// TLS, and aws:SecureTransport is true there and false over plain HTTP.
func TestTLSWithCABundleOnly(t *testing.T) {
	e := newEnv(t)
	ca := newTestCA(t)
	endpoint, _ := e.tlsServer(ca, server.TLSConfig{})
	c := e.tlsClient(endpoint, ca, nil, true)
	ctx := context.Background()
	policy := `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
 {"Effect":"Deny","Principal":"*","Action":"kms:Encrypt","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`
	key := must[*awskms.CreateKeyOutput](t)(c.CreateKey(ctx, &awskms.CreateKeyInput{Policy: aws.String(policy)}))
	if _, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("x")}); err != nil {
		t.Fatalf("Encrypt over TLS: %v", err)
	}
	_, err := e.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("x")})
	wantCode(t, err, "AccessDeniedException")

	// A client that does not trust the CA is refused by the handshake.
	other := e.tlsClient(endpoint, newTestCA(t), nil, true)
	if _, err := other.ListKeys(ctx, &awskms.ListKeysInput{}); err == nil {
		t.Fatal("a client trusting another CA connected")
	}
}

// TestTLSClientCertificate: with --tls-client-auth=require a client with a
// certificate of the client CA is served, one without is refused.
func TestTLSClientCertificate(t *testing.T) {
	e := newEnv(t)
	serverCA, clientCA := newTestCA(t), newTestCA(t)
	caFile := filepath.Join(t.TempDir(), "clients.pem")
	os.WriteFile(caFile, clientCA.pem, 0o600)
	endpoint, _ := e.tlsServer(serverCA, server.TLSConfig{ClientCAFile: caFile, ClientAuth: "require"})
	ctx := context.Background()

	cp, kp := clientCA.issue(t, 7, true)
	pair, err := tls.X509KeyPair(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.tlsClient(endpoint, serverCA, &pair, true).ListKeys(ctx, &awskms.ListKeysInput{}); err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	if _, err := e.tlsClient(endpoint, serverCA, nil, true).ListKeys(ctx, &awskms.ListKeysInput{}); err == nil {
		t.Fatal("without a client certificate: served")
	}
	// One from another CA is refused too.
	cp, kp = serverCA.issue(t, 8, true)
	stranger, _ := tls.X509KeyPair(cp, kp)
	if _, err := e.tlsClient(endpoint, serverCA, &stranger, true).ListKeys(ctx, &awskms.ListKeysInput{}); err == nil {
		t.Fatal("with a certificate of another CA: served")
	}
	if _, err := server.NewTLSConfig(server.TLSConfig{ClientAuth: "require"}, nil); err == nil {
		t.Fatal("require without a client CA accepted")
	}
}

// TestTLSCertificateRotationUnderLoad swaps the certificate files and
// reloads while 8 goroutines Encrypt, half of them on a new connection
// per call: no call fails, and new handshakes get the new certificate.
func TestTLSCertificateRotationUnderLoad(t *testing.T) {
	e := newEnv(t)
	ca := newTestCA(t)
	endpoint, certs := e.tlsServer(ca, server.TLSConfig{})
	keyID := e.createKey("rotation")
	ctx := context.Background()
	stop := make(chan struct{})
	var calls, failed atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		c := e.tlsClient(endpoint, ca, nil, i%2 == 0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("under load")}); err != nil {
					failed.Add(1)
					t.Error(err)
				}
				calls.Add(1)
			}
		}()
	}
	certFile, keyFile := certs.Files()
	for serial := int64(101); serial <= 104; serial++ {
		time.Sleep(150 * time.Millisecond)
		cp, kp := ca.issue(t, serial, false)
		os.WriteFile(keyFile+".tmp", kp, 0o600)
		os.WriteFile(certFile+".tmp", cp, 0o600)
		os.Rename(keyFile+".tmp", keyFile)
		os.Rename(certFile+".tmp", certFile)
		if err := certs.Reload(); err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", endpoint[len("https://"):], &tls.Config{RootCAs: poolOf(ca)})
		if err != nil {
			t.Fatal(err)
		}
		if got := conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != serial {
			t.Errorf("after reload a handshake got serial %d, want %d", got, serial)
		}
		conn.Close()
	}
	time.Sleep(150 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || calls.Load() < 16 {
		t.Fatalf("%d of %d calls failed", failed.Load(), calls.Load())
	}
	t.Logf("%d calls across 4 certificate rotations", calls.Load())
}

// TestTLSReloadKeepsTheOldPairOnABadFile: a half-written file does not
// replace a working certificate.
func TestTLSReloadKeepsTheOldPairOnABadFile(t *testing.T) {
	e := newEnv(t)
	ca := newTestCA(t)
	_, certs := e.tlsServer(ca, server.TLSConfig{})
	certFile, _ := certs.Files()
	os.WriteFile(certFile, []byte("-----BEGIN CERT"), 0o600)
	if err := certs.Reload(); err == nil {
		t.Fatal("a truncated certificate loaded")
	}
	if leaf, err := certs.Leaf(); err != nil || leaf.SerialNumber.Int64() != 100 {
		t.Fatalf("serving %v, %v; want the previous certificate", leaf, err)
	}
}

func poolOf(ca *testCA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(ca.pem)
	return p
}
