package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// TLSConfig configures TLS on the API listener.
type TLSConfig struct {
	// CertFile and KeyFile are the PEM certificate chain and private key.
	// Both are read again by Reload and when either file changes.
	CertFile, KeyFile string
	// ClientCAFile, when set, holds the PEM CA certificates that client
	// certificates are verified against.
	ClientCAFile string
	// ClientAuth is "" (no client certificate asked), "request" (asked,
	// verified when given) or "require" (a verified one is required).
	ClientAuth string
}

// Certificates holds the serving certificate behind an atomic pointer, so
// that a new one is swapped in whole while connections keep using theirs:
// a handshake reads the pointer once, a connection already up never sees
// the swap.
type Certificates struct {
	certFile, keyFile string
	cur               atomic.Pointer[loadedCert]
}

type loadedCert struct {
	cert             *tls.Certificate
	certMod, keyMod  time.Time
	certSize, keySiz int64
}

// LoadCertificates reads the certificate and key; a pair that does not
// load is an error here, and later keeps the previous pair serving.
func LoadCertificates(certFile, keyFile string) (*Certificates, error) {
	c := &Certificates{certFile: certFile, keyFile: keyFile}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again and, when they hold a valid pair, serves it
// to every new handshake.
func (c *Certificates) Reload() error {
	ci, err := os.Stat(c.certFile)
	if err != nil {
		return fmt.Errorf("tls certificate: %w", err)
	}
	ki, err := os.Stat(c.keyFile)
	if err != nil {
		return fmt.Errorf("tls key: %w", err)
	}
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("tls certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	c.cur.Store(&loadedCert{cert: &pair, certMod: ci.ModTime(), keyMod: ki.ModTime(), certSize: ci.Size(), keySiz: ki.Size()})
	return nil
}

// changed reports whether either file differs from what was loaded.
func (c *Certificates) changed() bool {
	l := c.cur.Load()
	ci, err1 := os.Stat(c.certFile)
	ki, err2 := os.Stat(c.keyFile)
	if err1 != nil || err2 != nil {
		return false // a file being replaced; the next poll sees it
	}
	return !ci.ModTime().Equal(l.certMod) || !ki.ModTime().Equal(l.keyMod) || ci.Size() != l.certSize || ki.Size() != l.keySiz
}

// Watch reloads the pair whenever its files change, polling every
// interval until ctx ends. A pair that fails to load (a half-written file)
// is logged and tried again at the next poll; the old one keeps serving.
func (c *Certificates) Watch(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !c.changed() {
			continue
		}
		if err := c.Reload(); err != nil {
			if err.Error() != lastErr {
				log.Warn("tls certificate changed but does not load; the previous one keeps serving", "err", err)
			}
			lastErr = err.Error()
			continue
		}
		lastErr = ""
		log.Info("tls certificate reloaded", "cert", c.certFile)
	}
}

// GetCertificate is tls.Config.GetCertificate.
func (c *Certificates) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load().cert, nil
}

// Leaf returns the serving certificate, parsed.
func (c *Certificates) Leaf() (*x509.Certificate, error) {
	cert := c.cur.Load().cert
	if cert.Leaf != nil {
		return cert.Leaf, nil
	}
	return x509.ParseCertificate(cert.Certificate[0])
}

// NewTLSConfig returns the listener's tls.Config: TLS 1.2 and later with
// Go's default suites, the certificate from certs, and client
// certificates as cfg asks.
func NewTLSConfig(cfg TLSConfig, certs *Certificates) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}
	switch cfg.ClientAuth {
	case "", "none":
		if cfg.ClientCAFile != "" {
			tc.ClientAuth = tls.VerifyClientCertIfGiven
		}
	case "request":
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	case "require":
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, fmt.Errorf("tls client auth %q: want request or require", cfg.ClientAuth)
	}
	if tc.ClientAuth != tls.NoClientCert {
		if cfg.ClientCAFile == "" {
			return nil, errors.New("client certificate authentication needs the CA that issues them (--tls-client-ca)")
		}
		raw, err := os.ReadFile(cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(raw) || !bytes.Contains(raw, []byte("CERTIFICATE")) {
			return nil, fmt.Errorf("tls client CA %s holds no PEM certificate", cfg.ClientCAFile)
		}
		tc.ClientCAs = pool
	}
	return tc, nil
}

// ServeTLS is Serve over TLS: ctx.IsTLS() is then true for every request,
// and with it aws:SecureTransport.
func (s *Server) ServeTLS(ln net.Listener, cfg *tls.Config) error {
	return s.http.Serve(tls.NewListener(ln, cfg))
}

// Files returns the certificate and key paths.
func (c *Certificates) Files() (cert, key string) { return c.certFile, c.keyFile }
