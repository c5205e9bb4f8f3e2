package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestServeExportsDefaultRegion: the first start's export line, with and
// without --print-credentials, sets AWS_DEFAULT_REGION as well as
// AWS_REGION: the AWS CLI v1 and boto3 read only the former.
func TestServeExportsDefaultRegion(t *testing.T) {
	for _, args := range [][]string{nil, {"--print-credentials", "--region", "eu-west-1"}} {
		p := startServe(t, t.TempDir(), args...)
		_, exports := p.output(5 * time.Second)
		want := "us-east-1"
		if args != nil {
			want = "eu-west-1"
		}
		if exports["AWS_DEFAULT_REGION"] != want || exports["AWS_REGION"] != want {
			t.Fatalf("serve %v exported %v", args, exports)
		}
	}
}

// TestServeLockedDataDir: a second `coffer serve` on a data dir another
// process holds says so, with that process's ID, within a second of what
// starting the binary costs on this host now (measured by running
// `coffer version` just before: a loaded CI host takes over a second to
// start a process, which says nothing about the lock wait).
func TestServeLockedDataDir(t *testing.T) {
	dir := t.TempDir()
	first := startServe(t, dir)
	start := time.Now()
	if out, err := exec.Command(cofferBin, "version").CombinedOutput(); err != nil {
		t.Fatalf("coffer version: %v\n%s", err, out)
	}
	startup := time.Since(start)
	start = time.Now()
	cmd := exec.Command(cofferBin, "serve", "--listen", "127.0.0.1:0")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err == nil {
		t.Fatalf("the second serve did not fail:\n%s", out)
	}
	want := "coffer.db is in use by another process (PID " + strconv.Itoa(first.cmd.Process.Pid) + ")"
	if !strings.Contains(string(out), want) || strings.Contains(string(out), "timeout") {
		t.Fatalf("the second serve said, after %v:\n%s\nwant %q", took, out, want)
	}
	if took > startup+time.Second {
		t.Fatalf("the second serve took %v to fail (starting the binary: %v)", took, startup)
	}
}

// TestServeBindFails: a server that cannot listen fails before it creates
// anything in its data dir.
func TestServeBindFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	cmd := exec.Command(cofferBin, "serve", "--listen", ln.Addr().String())
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "address already in use") {
		t.Fatalf("serve on a taken port: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "coffer-data")); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(dir)
		t.Fatalf("serve created its data dir before failing to listen: %v %v", err, entries)
	}
}
