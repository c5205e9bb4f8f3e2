package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-kms/coffer/internal/atomicfile"
	"github.com/coffer-kms/coffer/server"
)

// tlsOptions are the API listener's TLS flags.
type tlsOptions struct {
	cert, key    string
	clientCA     string
	clientAuth   string
	selfSigned   bool
	pollInterval time.Duration
}

func (t *tlsOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&t.cert, "tls-cert", "", "PEM certificate (chain) to serve TLS with; reloaded on SIGHUP and when the file changes")
	f.StringVar(&t.key, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&t.clientCA, "tls-client-ca", "", "PEM CA certificates that client certificates must chain to")
	f.StringVar(&t.clientAuth, "tls-client-auth", "", "client certificates: request (verified when given) or require (default with --tls-client-ca: request)")
	f.BoolVar(&t.selfSigned, "tls-self-signed", false, "without --tls-cert, serve TLS with a self-signed ECDSA P-256 certificate kept in <data-dir>/tls (made on first use) and print the AWS_CA_BUNDLE line")
	f.DurationVar(&t.pollInterval, "tls-reload-interval", 5*time.Second, "how often the certificate files are checked for a change")
}

func (t *tlsOptions) enabled() bool { return t.cert != "" || t.key != "" || t.selfSigned }

// selfSignedFiles are where --tls-self-signed keeps its certificate.
func selfSignedFiles(dataDir string) (cert, key string) {
	return filepath.Join(dataDir, "tls", "cert.pem"), filepath.Join(dataDir, "tls", "key.pem")
}

// ensureSelfSigned returns the data dir's self-signed certificate, making
// one when there is none, it expires within a week, or it does not name
// host. The certificate is its own CA: the file is also the CA bundle.
func ensureSelfSigned(dataDir, host string) (certFile, keyFile string, made bool, err error) {
	certFile, keyFile = selfSignedFiles(dataDir)
	if pair, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil {
		if leaf, err := x509.ParseCertificate(pair.Certificate[0]); err == nil &&
			time.Until(leaf.NotAfter) > 7*24*time.Hour && leaf.VerifyHostname(host) == nil {
			return certFile, keyFile, false, nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return "", "", false, err
	}
	certPEM, keyPEM, err := selfSignedPEM(host, time.Now())
	if err != nil {
		return "", "", false, err
	}
	if err := atomicfile.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", false, err
	}
	if err := atomicfile.WriteFile(certFile, certPEM, 0o644); err != nil {
		return "", "", false, err
	}
	return certFile, keyFile, true, nil
}

// selfSignedPEM makes an ECDSA P-256 certificate for 127.0.0.1, ::1,
// localhost and host, valid for a year.
func selfSignedPEM(host string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Coffer self-signed", Organization: []string{"Coffer"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip := net.ParseIP(host); ip != nil {
		if !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) && !ip.IsUnspecified() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	} else if host != "" && host != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// setupTLS resolves the TLS flags into the listener's configuration. The
// CA bundle is the self-signed certificate's path ("" for a given one).
func setupTLS(t tlsOptions, dataDir, listen string) (*tls.Config, *server.Certificates, string, error) {
	cert, key, bundle := t.cert, t.key, ""
	switch {
	case cert == "" && key == "" && t.selfSigned:
		host, _, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, nil, "", fmt.Errorf("--listen: %w", err)
		}
		if cert, key, _, err = ensureSelfSigned(dataDir, host); err != nil {
			return nil, nil, "", fmt.Errorf("--tls-self-signed: %w", err)
		}
		if abs, err := filepath.Abs(cert); err == nil {
			cert = abs
		}
		bundle = cert
	case cert == "" || key == "":
		return nil, nil, "", errors.New("--tls-cert and --tls-key go together")
	}
	certs, err := server.LoadCertificates(cert, key)
	if err != nil {
		return nil, nil, "", err
	}
	tc, err := server.NewTLSConfig(server.TLSConfig{CertFile: cert, KeyFile: key, ClientCAFile: t.clientCA, ClientAuth: t.clientAuth}, certs)
	if err != nil {
		return nil, nil, "", err
	}
	return tc, certs, bundle, nil
}

// reloadOnHUP reloads the certificate on each SIGHUP until ctx ends.
func reloadOnHUP(ctx context.Context, certs *server.Certificates, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := certs.Reload(); err != nil {
				log.Error("SIGHUP: tls certificate not reloaded; the previous one keeps serving", "err", err)
				continue
			}
			log.Info("SIGHUP: tls certificate reloaded")
		}
	}
}
