package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

// jsonServe is a `coffer serve --log-format json` whose stderr lines are
// kept, each parsed as one JSON object.
type jsonServe struct {
	endpoint string
	mu       sync.Mutex
	lines    []map[string]any
	bad      []string
}

func (j *jsonServe) snapshot() ([]map[string]any, []string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]map[string]any(nil), j.lines...), append([]string(nil), j.bad...)
}

func startJSONServe(t *testing.T, dir string, args ...string) *jsonServe {
	t.Helper()
	cmd := exec.Command(cofferBin, append([]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "COFFER_THROTTLE=false")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	j := &jsonServe{}
	ready := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			var m map[string]any
			j.mu.Lock()
			if json.Unmarshal([]byte(line), &m) != nil {
				j.bad = append(j.bad, line)
			} else {
				j.lines = append(j.lines, m)
			}
			j.mu.Unlock()
			if ep, ok := m["endpoint"].(string); ok && m["msg"] == "coffer serving" {
				select {
				case ready <- ep:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		<-done
	})
	select {
	case j.endpoint = <-ready:
	case <-done:
		t.Fatal("coffer serve exited before serving")
	case <-time.After(20 * time.Second):
		t.Fatal("coffer serve did not start")
	}
	return j
}

func TestLogFormatJSONRequestIDMatchesAudit(t *testing.T) {
	dir := t.TempDir()
	j := startJSONServe(t, dir, "--log-level", "debug")
	c := sdkClient(t, filepath.Join(dir, "coffer-data", "credentials"), j.endpoint)
	_, err := c.Encrypt(context.Background(), &awskms.EncryptInput{KeyId: aws.String("alias/no-such-alias"), Plaintext: []byte("x")})
	var rid interface{ ServiceRequestID() string }
	if err == nil || !errors.As(err, &rid) || rid.ServiceRequestID() == "" {
		t.Fatalf("Encrypt of a missing alias: %v, want a failure with a request ID", err)
	}
	id := rid.ServiceRequestID()

	var found map[string]any
	for deadline := time.Now().Add(5 * time.Second); found == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		lines, bad := j.snapshot()
		if len(bad) > 0 {
			t.Fatalf("stderr lines that are not JSON: %q", bad)
		}
		for _, m := range lines {
			if m["requestId"] == id {
				found = m
			}
		}
	}
	if found == nil {
		t.Fatalf("no JSON log line with requestId %s", id)
	}
	if found["code"] != "NotFoundException" || found["level"] != "DEBUG" {
		t.Errorf("log line %v: want code NotFoundException at DEBUG", found)
	}

	// The audit record of the same call carries the same ID.
	want := []byte(`"requestID":"` + id + `"`)
	inTrail := false
	filepath.WalkDir(filepath.Join(dir, "coffer-data", "audit"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, want) {
			inTrail = true
		}
		return nil
	})
	if !inTrail {
		t.Errorf("no audit record with %s", want)
	}
}

func TestLogFormatRejectsUnknown(t *testing.T) {
	if _, err := newLogger(os.Stderr, "xml", "info"); err == nil {
		t.Fatal("--log-format xml accepted")
	}
	for _, f := range []string{"text", "json"} {
		if _, err := newLogger(os.Stderr, f, "warn"); err != nil {
			t.Fatalf("--log-format %s: %v", f, err)
		}
	}
}
