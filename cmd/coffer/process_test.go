package main

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

// cofferBin is the binary under test, built once by TestMain.
var cofferBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "coffer-bin-")
	if err != nil {
		panic(err)
	}
	cofferBin = filepath.Join(dir, "coffer")
	if out, err := exec.Command("go", "build", "-o", cofferBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build coffer: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is a running `coffer serve`.
type process struct {
	cmd      *exec.Cmd
	endpoint string
	done     chan error

	mu      sync.Mutex
	stdout  strings.Builder
	exports map[string]string
}

// output returns what the process printed on stdout so far and the
// variables of its export line.
func (p *process) output(wait time.Duration) (string, map[string]string) {
	deadline := time.Now().Add(wait)
	for {
		p.mu.Lock()
		out, n := p.stdout.String(), len(p.exports)
		exports := maps.Clone(p.exports)
		p.mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			return out, exports
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var endpointRE = regexp.MustCompile(`endpoint=(https?://\S+)`)

// startServe runs `coffer serve` in dir with args and waits until it serves.
func startServe(t *testing.T, dir string, args ...string) *process {
	t.Helper()
	p := &process{done: make(chan error, 1), exports: map[string]string{}}
	p.cmd = exec.Command(cofferBin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	p.cmd.Dir = dir
	// The load these tests make (crash and kill loops creating keys and
	// aliases flat out) is over AWS's management quotas; throttling has
	// tests of its own, which pass --throttle (a flag wins over this).
	p.cmd.Env = append(os.Environ(), "COFFER_LOG_LEVEL=info", "COFFER_THROTTLE=false")
	stdout, _ := p.cmd.StdoutPipe()
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stdout.WriteString(line + "\n")
			if rest, ok := strings.CutPrefix(line, "export "); ok {
				for _, kv := range strings.Fields(rest) {
					k, v, _ := strings.Cut(kv, "=")
					p.exports[k] = v
				}
			}
			p.mu.Unlock()
		}
	}()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := endpointRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case ready <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		err := p.cmd.Wait()
		wg.Wait()
		p.done <- err
	}()
	select {
	case p.endpoint = <-ready:
	case err := <-p.done:
		t.Fatalf("coffer serve exited: %v", err)
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		t.Fatal("coffer serve did not start")
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		p.done <- nil
	})
	return p
}

// sdkClient reads credentials the way an AWS user would: from the
// shared-credentials file the server wrote.
func sdkClient(t *testing.T, credFile, endpoint string) *awskms.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithSharedCredentialsFiles([]string{credFile}),
		config.WithSharedConfigFiles([]string{credFile}),
		config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	return awskms.NewFromConfig(cfg, func(o *awskms.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.RetryMaxAttempts = 1
	})
}

func TestFirstStartCreatesAdministrator(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, dir)
	data := filepath.Join(dir, "coffer-data")
	for _, f := range []string{"root.key", "credentials", "coffer.db"} {
		st, err := os.Stat(filepath.Join(data, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	// The first start prints where the credentials are, as a line to
	// paste, and never the secret (stdout ends up in logs).
	stdout, exports := p.output(5 * time.Second)
	credFile := filepath.Join(data, "credentials")
	if exports["AWS_SHARED_CREDENTIALS_FILE"] != credFile || exports["AWS_ENDPOINT_URL_KMS"] != p.endpoint || exports["AWS_REGION"] != "us-east-1" {
		t.Fatalf("first start printed %q", stdout)
	}
	creds, _ := os.ReadFile(credFile)
	secret := regexp.MustCompile(`aws_secret_access_key = (\S+)`).FindStringSubmatch(string(creds))
	if !strings.HasPrefix(string(creds), "[default]\n") || secret == nil {
		t.Fatalf("credentials file: %q", creds)
	}
	if strings.Contains(stdout, secret[1]) || strings.Contains(stdout, "AWS_SECRET_ACCESS_KEY") {
		t.Fatalf("first start printed the secret: %q", stdout)
	}
	c := sdkClient(t, credFile, p.endpoint)
	out, err := c.CreateKey(context.Background(), &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}

	// A second start prints no credentials and serves the same key.
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p.done; err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	p.done <- nil
	p2 := startServe(t, dir)
	if out2, exports2 := p2.output(300 * time.Millisecond); strings.Contains(out2, "AWS_SECRET_ACCESS_KEY") || len(exports2) != 0 {
		t.Fatal("second start printed credentials again")
	}
	c = sdkClient(t, credFile, p2.endpoint)
	if _, err := c.DescribeKey(context.Background(), &awskms.DescribeKeyInput{KeyId: out.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
}

// TestPrintCredentials: --print-credentials prints the first start's
// secret as an export line, the one in the credentials file.
func TestPrintCredentials(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, dir, "--print-credentials")
	stdout, exports := p.output(5 * time.Second)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL_KMS"} {
		if exports[k] == "" {
			t.Fatalf("first start did not print %s: %q", k, stdout)
		}
	}
	if exports["AWS_ENDPOINT_URL_KMS"] != p.endpoint || exports["AWS_REGION"] != "us-east-1" {
		t.Fatalf("exports %v", exports)
	}
	creds, _ := os.ReadFile(filepath.Join(dir, "coffer-data", "credentials"))
	if !strings.Contains(string(creds), exports["AWS_SECRET_ACCESS_KEY"]) || !strings.Contains(string(creds), exports["AWS_ACCESS_KEY_ID"]) {
		t.Fatalf("credentials file: %q", creds)
	}
}

// TestNoCoreDumps: the server's memory holds key material, so it runs with
// RLIMIT_CORE 0 unless --allow-core-dumps.
func TestNoCoreDumps(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("core dumps are turned off on Linux")
	}
	coreLimit := func(pid int) string {
		t.Helper()
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.HasPrefix(line, "Max core file size") {
				return strings.Join(strings.Fields(line)[4:6], " ")
			}
		}
		t.Fatalf("no core limit in %s", raw)
		return ""
	}
	p := startServe(t, t.TempDir())
	if got := coreLimit(p.cmd.Process.Pid); got != "0 0" {
		t.Fatalf("Max core file size %q, want 0 0", got)
	}
	p = startServe(t, t.TempDir(), "--allow-core-dumps")
	if got, want := coreLimit(p.cmd.Process.Pid), coreLimit(os.Getpid()); got != want {
		t.Fatalf("--allow-core-dumps: Max core file size %q, want the inherited %q", got, want)
	}
}

func TestEnvironmentConfiguresServe(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "elsewhere")
	cmd := exec.Command(cofferBin, "serve", "--listen", "127.0.0.1:0")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "COFFER_DATA_DIR="+data, "COFFER_ACCOUNT=123456789012", "COFFER_REGION=eu-west-2")
	out, _ := cmd.StdoutPipe()
	cmd.Start()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if !strings.Contains(line, "arn:aws:iam::123456789012:user/admin") {
		t.Fatalf("COFFER_ACCOUNT not applied: %q", line)
	}
	if _, err := os.Stat(filepath.Join(data, "root.key")); err != nil {
		t.Fatalf("COFFER_DATA_DIR not applied: %v", err)
	}
}

func TestKill9KeepsAcknowledgedKeys(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, dir)
	credFile := filepath.Join(dir, "coffer-data", "credentials")
	c := sdkClient(t, credFile, p.endpoint)

	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				out, err := c.CreateKey(context.Background(), &awskms.CreateKeyInput{Description: aws.String("kill -9")})
				if err != nil {
					return // the server died under us: unacknowledged
				}
				mu.Lock()
				acked = append(acked, *out.KeyMetadata.KeyId)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p.done <- nil
	close(stop)
	wg.Wait()
	if len(acked) < 10 {
		t.Fatalf("only %d keys acknowledged before the kill", len(acked))
	}

	p2 := startServe(t, dir)
	c = sdkClient(t, credFile, p2.endpoint)
	for _, id := range acked {
		if _, err := c.DescribeKey(context.Background(), &awskms.DescribeKeyInput{KeyId: aws.String(id)}); err != nil {
			t.Fatalf("acknowledged key %s lost after kill -9: %v", id, err)
		}
	}
	t.Logf("%d acknowledged keys survived kill -9", len(acked))
}

func TestGracefulShutdownFinishesRequests(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, dir)
	credFile := filepath.Join(dir, "coffer-data", "credentials")
	c := sdkClient(t, credFile, p.endpoint)
	key, err := c.CreateKey(context.Background(), &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				out, err := c.CreateKey(context.Background(), &awskms.CreateKeyInput{})
				if err != nil {
					return
				}
				mu.Lock()
				acked = append(acked, *out.KeyMetadata.KeyId)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("coffer serve exited with %v after SIGTERM", err)
		}
		p.done <- nil
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20 s of SIGTERM")
	}
	wg.Wait()
	p2 := startServe(t, dir)
	c = sdkClient(t, credFile, p2.endpoint)
	for _, id := range append(acked, *key.KeyMetadata.KeyId) {
		if _, err := c.DescribeKey(context.Background(), &awskms.DescribeKeyInput{KeyId: aws.String(id)}); err != nil {
			t.Fatalf("key %s acknowledged before shutdown is gone: %v", id, err)
		}
	}
}

func TestDevModeWarnsAndForgets(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(cofferBin, "serve", "--dev", "--listen", "127.0.0.1:0")
	cmd.Dir = dir
	stderr, _ := cmd.StderrPipe()
	cmd.Start()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	first, _ := bufio.NewReader(stderr).ReadString('\n')
	if !strings.HasPrefix(first, "WARNING: --dev") {
		t.Fatalf("--dev does not warn first thing: %q", first)
	}
	if _, err := os.Stat(filepath.Join(dir, "coffer-data")); !os.IsNotExist(err) {
		t.Fatal("--dev wrote a data dir")
	}
}

func readFile(name string) ([]byte, error)  { return os.ReadFile(name) }
func writeFile(name string, b []byte) error { return os.WriteFile(name, b, 0o600) }

func TestVersionReportsKernel(t *testing.T) {
	out, err := exec.Command(cofferBin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "aes-gcm kernel: ") || !strings.Contains(string(out), "cpu features: ") {
		t.Fatalf("coffer version: %v\n%s", err, out)
	}
}
