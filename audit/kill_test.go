package audit

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	killChildEnv = "COFFER_AUDIT_KILL_CHILD" // the audit directory, in the child
	killKeyEnv   = "COFFER_AUDIT_KILL_KEY"   // the signing key, DER in hex
	killSyncEnv  = "COFFER_AUDIT_KILL_SYNC"  // "interval": the child runs with SyncInterval
)

// TestKill9KeepsEveryAcknowledgedRecord runs a child process (this test
// binary again) that appends from several goroutines as fast as it can and
// prints each acknowledged record; it is killed with SIGKILL mid-stream.
// Reopening the trail recovers it: every acknowledged record is there at the
// sequence number it was given, and the chain verifies. Under both commit
// policies: with SyncInterval (an hour here, so that no fdatasync runs
// but the preallocation's) a record is acknowledged once its group's
// write(2) is done, before any fdatasync, and the kill must not lose it
// either.
func TestKill9KeepsEveryAcknowledgedRecord(t *testing.T) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		killChild(dir, os.Getenv(killSyncEnv) == "interval")
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	for _, policy := range []string{"commit", "interval"} {
		t.Run(policy, func(t *testing.T) { kill9(t, policy) })
	}
}

func kill9(t *testing.T, policy string) {
	dir, key := t.TempDir(), newKey(t)
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9KeepsEveryAcknowledgedRecord$", "-test.count=1")
	cmd.Env = append(os.Environ(), killChildEnv+"="+dir, killKeyEnv+"="+hex.EncodeToString(der), killSyncEnv+"="+policy)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[uint64]string{} // seq → request ID
	sc := bufio.NewScanner(out)
	const killAfter = 3000
	for sc.Scan() {
		seq, id, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseUint(seq, 10, 64)
		if !ok || err != nil {
			t.Fatalf("child said %q", sc.Text())
		}
		acked[n] = id
		if len(acked) == killAfter {
			cmd.Process.Kill() // SIGKILL; what the child already printed is still read
		}
	}
	cmd.Wait()
	if len(acked) < killAfter {
		t.Fatalf("the child acknowledged only %d records", len(acked))
	}

	pub := &key.PublicKey
	before, err := Verify(dir, pub)
	if err != nil {
		t.Fatalf("before recovery: %v", err)
	}
	w := mustOpen(t, Config{Dir: dir, Signer: key})
	torn := w.Stats().TornBytes
	if err := w.Append(context.Background(), rec(-1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := Verify(dir, pub)
	if err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if after.Unsealed != 0 || after.TornTail {
		t.Fatalf("after recovery: %+v", after)
	}
	for _, r := range all(t, dir) {
		if id, ok := acked[r.Seq]; ok {
			if r.RequestID != id {
				t.Fatalf("seq %d holds %s, acknowledged as %s", r.Seq, r.RequestID, id)
			}
			delete(acked, r.Seq)
		}
	}
	if len(acked) != 0 {
		t.Fatalf("%d acknowledged records are missing", len(acked))
	}
	t.Logf("killed after %d acknowledgements; before recovery %d records, %d unsealed, torn tail %v; recovery dropped %d bytes; after %d records in %d files",
		killAfter, before.Records, before.Unsealed, before.TornTail, torn, after.Records, after.Files)
}

// killChild appends until it is killed, printing "<seq> <requestID>" for
// each acknowledged record.
func killChild(dir string, interval bool) {
	der, err := hex.DecodeString(os.Getenv(killKeyEnv))
	if err != nil {
		panic(err)
	}
	key, err := x509.ParseECPrivateKey(der)
	if err != nil {
		panic(err)
	}
	cfg := Config{Dir: dir, Signer: key, DigestEvery: 100, MaxFileBytes: 256 << 10}
	if interval {
		cfg.SyncInterval = time.Hour
	}
	w, err := Open(cfg)
	if err != nil {
		panic(err)
	}
	var mu sync.Mutex
	stdout := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				r := rec(g*1_000_000 + i)
				if err := w.Append(context.Background(), r); err != nil {
					panic(err)
				}
				mu.Lock()
				fmt.Fprintf(stdout, "%d %s\n", r.Seq, r.RequestID)
				stdout.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
