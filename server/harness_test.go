package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
	"github.com/coffer-kms/coffer/keystore/postgres"
	"github.com/coffer-kms/coffer/keystore/postgres/pgtest"
	"github.com/coffer-kms/coffer/kms"
	"github.com/coffer-kms/coffer/server"
)

const (
	testRegion  = "us-east-1"
	testAccount = "111122223333"
)

// testPG is the private PostgreSQL server of a COFFER_TEST_STORE=postgres
// run (make test runs the suite once more so): every test env then keeps
// its store in a database of its own on it instead of a bbolt file.
var testPG *pgtest.Server

func TestMain(m *testing.M) {
	if onPostgres() {
		os.Exit(pgtest.Main(m, &testPG))
	}
	os.Exit(m.Run())
}

func onPostgres() bool { return os.Getenv("COFFER_TEST_STORE") == "postgres" }

// fakeClock is the service's clock in tests; signatures use real time.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testEnv is a real Coffer server on a loopback socket over a data dir.
type testEnv struct {
	t       *testing.T
	dir     string
	clock   *fakeClock
	creds   *kms.Credentials
	url     string
	svc     *kms.Service
	srv     *server.Server
	store   keystore.Store
	root    hsm.Backend
	client  *awskms.Client
	stopped bool
	trail   *audit.Writer
	signer  *ecdsa.PrivateKey
	logs    *syncBuffer
	// rootKind forces the root of trust ("pkcs11"); "" follows
	// COFFER_TEST_ROOT.
	rootKind string
	// beforeServe, when set, sees each new server before it serves.
	beforeServe func(*server.Server)
	// configure, when set, adjusts each new server's Config.
	configure func(*server.Config)
	// pgURL is the env's database with COFFER_TEST_STORE=postgres; "":
	// the store is dir/coffer.db.
	pgURL string
}

// syncBuffer collects the server's logs for inspection.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t *testing.T) *testEnv { return newEnvOn(t, "") }

// newEnvOn is newEnv on a given root of trust ("pkcs11" or "" for the
// default); a PKCS#11 env skips when SoftHSM2 is missing.
func newEnvOn(t *testing.T, rootKind string) *testEnv {
	t.Helper()
	signer, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, dir: t.TempDir(), clock: &fakeClock{t: time.Now().UTC()}, signer: signer, logs: &syncBuffer{}, rootKind: rootKind}
	if onPostgres() {
		e.pgURL = testPG.Database(t) // dropped after e.stop (cleanups run last first)
	}
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *testEnv) start() { e.startWith(false) }

func (e *testEnv) startWith(dev bool) {
	t := e.t
	t.Helper()
	root, err := e.openRoot()
	if err != nil {
		t.Fatal(err)
	}
	store, err := e.openStore()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := kms.New(kms.Config{Region: testRegion, Account: testAccount, Store: store, Root: root, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := svc.Bootstrap(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if creds != nil {
		e.creds = creds
	}
	trail, err := audit.Open(audit.Config{Dir: filepath.Join(e.dir, "audit"), Signer: e.signer})
	if err != nil {
		t.Fatal(err)
	}
	e.trail = trail
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := server.Config{Service: svc, Dev: dev, Audit: trail, Logger: logger}
	if e.configure != nil {
		e.configure(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if e.beforeServe != nil {
		e.beforeServe(srv)
	}
	go srv.Serve(ln)
	e.root, e.store, e.svc, e.srv = root, store, svc, srv
	e.url = "http://" + ln.Addr().String()
	e.client = e.newClient(e.creds.AccessKeyID, e.creds.SecretAccessKey)
	e.stopped = false
}

func (e *testEnv) stop() {
	if e.stopped {
		return
	}
	e.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.srv.Shutdown(ctx)
	if err := e.trail.Close(); err != nil {
		e.t.Errorf("audit close: %v", err)
	}
	e.svc.Close()
	e.store.Close()
	e.root.Close()
}

// restart stops the server and starts a new one on the same data dir.
func (e *testEnv) restart() {
	e.stop()
	e.start()
}

func (e *testEnv) newClient(id, secret string) *awskms.Client {
	return awskms.New(awskms.Options{
		Region:           testRegion,
		BaseEndpoint:     aws.String(e.url),
		Credentials:      credentials.NewStaticCredentialsProvider(id, secret, ""),
		RetryMaxAttempts: 1,
	})
}

// apiCode returns the AWS error code of err ("" when err is nil).
func apiCode(err error) string {
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return "not an API error: " + err.Error()
}

func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

// wantCode fails the test unless err is the AWS error code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := apiCode(err); got != code {
		t.Fatalf("error code %q (%v), want %s", got, err, code)
	}
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func (e *testEnv) createKey(desc string) string {
	e.t.Helper()
	out, err := e.client.CreateKey(context.Background(), &awskms.CreateKeyInput{Description: aws.String(desc)})
	if err != nil {
		e.t.Fatal(err)
	}
	return *out.KeyMetadata.KeyId
}

func tags(kv ...string) []types.Tag {
	var out []types.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, types.Tag{TagKey: aws.String(kv[i]), TagValue: aws.String(kv[i+1])})
	}
	return out
}

// openRoot opens the env's root of trust: the sealed software root, or with
// COFFER_TEST_ROOT=pkcs11 (make test sets it for a second pass) a SoftHSM2
// token behind the hsm pool, so that every integration test also runs on
// the PKCS#11 root.
func (e *testEnv) openRoot() (hsm.Backend, error) {
	kind := e.rootKind
	if kind == "" {
		kind = os.Getenv("COFFER_TEST_ROOT")
	}
	if kind != "pkcs11" {
		return hsm.OpenSoftware(hsm.SoftwareConfig{Path: filepath.Join(e.dir, "root.key")})
	}
	const module = "/usr/lib/softhsm/libsofthsm2.so"
	if _, err := os.Stat(module); err != nil {
		e.t.Skip("a PKCS#11 root needs SoftHSM2 (apt-get install softhsm2)")
	}
	tokens := filepath.Join(e.dir, "tokens")
	conf := filepath.Join(e.dir, "softhsm2.conf")
	if _, err := os.Stat(conf); err != nil { // first start of this env: a fresh token
		os.MkdirAll(tokens, 0o700)
		os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\n"), 0o600)
		e.t.Setenv("SOFTHSM2_CONF", conf)
		if out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "coffer-test", "--pin", "1234", "--so-pin", "567890").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("init token: %v: %s", err, out)
		}
	}
	b, err := hsm.OpenPKCS11(hsm.PKCS11Config{ModulePath: module, TokenLabel: "coffer-test", PIN: "1234", RootKey: hsm.RootKeyCreate})
	if err != nil {
		return nil, err
	}
	return hsm.NewPool(b, hsm.PoolConfig{})
}

// openStore opens the env's store: dir/coffer.db, or its PostgreSQL
// database with COFFER_TEST_STORE=postgres.
func (e *testEnv) openStore() (keystore.Store, error) {
	if e.pgURL != "" {
		return postgres.Open(context.Background(), postgres.Config{URL: e.pgURL})
	}
	return keystore.OpenBolt(filepath.Join(e.dir, "coffer.db"))
}

// trailAndLogs is every byte of the audit trail's files and of the
// server's logs, for tests that secrets appear in neither.
func (e *testEnv) trailAndLogs() []byte {
	names, _ := filepath.Glob(filepath.Join(e.dir, "audit", "*"))
	all := []byte(e.logs.String())
	for _, n := range names {
		b, _ := os.ReadFile(n)
		all = append(all, b...)
	}
	return all
}
