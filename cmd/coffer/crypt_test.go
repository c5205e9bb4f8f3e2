package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

// cryptEnv starts `coffer serve --dev`, creates alias/pipeline and returns
// the AWS environment that points the CLI at it.
func cryptEnv(t *testing.T) []string {
	t.Helper()
	p := startServe(t, t.TempDir(), "--dev")
	client := awskms.New(awskms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(p.endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	})
	key, err := client.CreateKey(context.Background(), &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateAlias(context.Background(), &awskms.CreateAliasInput{AliasName: aws.String("alias/pipeline"), TargetKeyId: key.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "AWS_ENDPOINT_URL_KMS="+p.endpoint, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
}

func runCoffer(t *testing.T, env []string, stdin []byte, args ...string) ([]byte, string, error) {
	t.Helper()
	cmd := exec.Command(cofferBin, args...)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.String(), err
}

func TestEncryptDecryptCLI(t *testing.T) {
	env := cryptEnv(t)
	dir := t.TempDir()
	pt := make([]byte, 300_000)
	rand.Read(pt)
	in, enc, out := filepath.Join(dir, "in"), filepath.Join(dir, "in.cfs"), filepath.Join(dir, "out")
	os.WriteFile(in, pt, 0o600)

	// Files.
	if _, stderr, err := runCoffer(t, env, nil, "encrypt", "--key-id", "alias/pipeline", "--context", "bucket=logs", in, enc); err != nil {
		t.Fatalf("encrypt: %v: %s", err, stderr)
	}
	if _, stderr, err := runCoffer(t, env, nil, "decrypt", "--context", "bucket=logs", enc, out); err != nil {
		t.Fatalf("decrypt: %v: %s", err, stderr)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, pt) {
		t.Fatal("file round trip changed the bytes")
	}

	// stdin and stdout, sequential path on one side.
	ct, stderr, err := runCoffer(t, env, pt, "encrypt", "--key-id", "alias/pipeline", "--workers", "1")
	if err != nil {
		t.Fatalf("encrypt from stdin: %v: %s", err, stderr)
	}
	got, stderr, err := runCoffer(t, env, ct, "decrypt", "-", "-")
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("decrypt to stdout: %v: %s", err, stderr)
	}

	// Failures: a clear message, a non-zero exit, no output file.
	stream, _ := os.ReadFile(enc)
	damaged := filepath.Join(dir, "damaged.cfs")
	os.WriteFile(damaged, stream[:len(stream)-1], 0o600)
	failures := []struct {
		name, want string
		args       []string
	}{
		{"truncated", "truncated", []string{"decrypt", damaged, filepath.Join(dir, "o1")}},
		{"wrong context", "encryption context does not match", []string{"decrypt", "--context", "bucket=other", enc, filepath.Join(dir, "o2")}},
		{"unknown key", "NotFoundException", []string{"encrypt", "--key-id", "alias/none", in, filepath.Join(dir, "o3")}},
		{"no key", "--key-id is required", []string{"encrypt", in, filepath.Join(dir, "o4")}},
		{"missing input", "no such file", []string{"decrypt", filepath.Join(dir, "nope"), filepath.Join(dir, "o5")}},
		{"not a stream", "not a Coffer stream", []string{"decrypt", in, filepath.Join(dir, "o6")}},
	}
	for i, f := range failures {
		_, stderr, err := runCoffer(t, env, nil, f.args...)
		if err == nil || !strings.Contains(stderr, f.want) {
			t.Errorf("%s: exit %v, stderr %q, want it to mention %q", f.name, err, stderr, f.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "o"+string(rune('1'+i)))); err == nil {
			t.Errorf("%s: left an output file", f.name)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("left a temporary file %s", e.Name())
		}
	}
}

// TestStreamPeakRSS pipes a 4 GiB stream through `coffer encrypt` into
// `coffer decrypt` and checks that the bytes come back and that neither
// process's peak RSS reaches 64 MiB: memory stays bounded whatever the
// stream length.
func TestStreamPeakRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 4 GiB")
	}
	const size = 4 << 30
	const limitKiB = 64 << 10
	env := cryptEnv(t)
	block := make([]byte, 1<<20)
	rand.Read(block)

	enc := exec.Command(cofferBin, "encrypt", "--key-id", "alias/pipeline")
	dec := exec.Command(cofferBin, "decrypt")
	enc.Env, dec.Env = env, env
	in, err := enc.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	enc.Stdout, dec.Stdin = pw, pr
	out, err := dec.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var encErr, decErr bytes.Buffer
	enc.Stderr, dec.Stderr = &encErr, &decErr
	if err := enc.Start(); err != nil {
		t.Fatal(err)
	}
	if err := dec.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	pr.Close()
	// Peak RSS is read from each process's VmHWM while it runs: the rusage
	// of a child after exit also counts the test process's own size, since
	// Go starts children sharing the parent's memory until exec.
	peaks := map[string]*atomic.Int64{"encrypt": new(atomic.Int64), "decrypt": new(atomic.Int64)}
	stopPolling := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			for name, c := range map[string]*exec.Cmd{"encrypt": enc, "decrypt": dec} {
				if kb := vmHWM(c.Process.Pid); kb > peaks[name].Load() {
					peaks[name].Store(kb)
				}
			}
			select {
			case <-stopPolling:
				return
			case <-tick.C:
			}
		}
	}()

	fed := make(chan error, 1)
	go func() {
		defer in.Close()
		for range size / len(block) {
			if _, err := in.Write(block); err != nil {
				fed <- err
				return
			}
		}
		fed <- nil
	}()
	// The output must be the input: size bytes, block after block.
	var got int64
	buf := make([]byte, len(block))
	for {
		n, err := io.ReadFull(out, buf)
		if n > 0 && !bytes.Equal(buf[:n], block[:n]) {
			t.Fatalf("decrypted bytes differ at offset %d", got)
		}
		got += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	close(stopPolling)
	<-polled
	if err := <-fed; err != nil {
		t.Fatalf("feeding encrypt: %v (%s)", err, encErr.String())
	}
	if err := enc.Wait(); err != nil {
		t.Fatalf("encrypt: %v: %s", err, encErr.String())
	}
	if err := dec.Wait(); err != nil {
		t.Fatalf("decrypt: %v: %s", err, decErr.String())
	}
	if got != size {
		t.Fatalf("decrypted %d bytes, want %d", got, int64(size))
	}
	for name, peak := range peaks {
		kb := peak.Load()
		if kb == 0 {
			t.Skip("no /proc/<pid>/status VmHWM on this platform")
		}
		t.Logf("coffer %s of a 4 GiB stream: peak RSS (VmHWM) %d KiB", name, kb)
		if kb >= limitKiB {
			t.Errorf("coffer %s peaked at %d KiB RSS, limit %d KiB", name, kb, limitKiB)
		}
	}
}

// vmHWM is a process's peak resident set in KiB, 0 if unknown (it ended,
// or there is no /proc).
func vmHWM(pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
