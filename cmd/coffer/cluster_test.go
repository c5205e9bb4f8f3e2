package main

// Three `coffer serve` processes on one PostgreSQL database, over real
// sockets, through the AWS SDK: what issue 23 asks a cluster to show.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/coffer-kms/coffer/keystore/postgres/pgtest"
)

// errCode is the AWS error code of err, "" for none.
func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return "?" + err.Error()
	}
	return ""
}

// waitReady polls the node's /readyz until it answers 200.
func waitReady(t *testing.T, endpoint string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(endpoint + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not ready within %v: %s", endpoint, within, last)
}

// acked is a change a node acknowledged.
type acked struct {
	node      int
	kind      string // key, alias, grant
	key, name string // the key ID; the alias name or grant ID
	requestID string
}

// TestThreeNodeCluster runs three coffer serve processes on one private
// PostgreSQL: keys made on A work on B and C; DisableKey on B is refused
// on C within a second; CreateAlias, RotateKeyOnDemand and CreateGrant
// raced across the nodes keep AWS's limits and lose nothing; kill -9 of a
// node under load loses no acknowledged change, each with its record in
// its node's trail; PostgreSQL stopped under load gives
// DependencyTimeoutException fast, and the nodes serve again by
// themselves once it is back. Lean: it runs in make test.
func TestThreeNodeCluster(t *testing.T) {
	pg := pgtest.ForTest(t, "starts PostgreSQL and three servers")
	url := pg.Database(t)
	ctx := context.Background()

	// The nodes' data dirs side by side, as an operator would gather them
	// for coffer audit verify/query.
	parent := t.TempDir()
	names := []string{"node-a", "node-b", "node-c"}
	args := func(i int) []string {
		return []string{"--store", "postgres", "--postgres-url", url, "--postgres-timeout", "2s", "--data-dir", filepath.Join(parent, names[i])}
	}
	procs := make([]*process, 3)
	procs[0] = startServe(t, parent, args(0)...)
	waitReady(t, procs[0].endpoint, 20*time.Second)
	// One root of trust: B and C get A's sealed root key file.
	rootKey, err := os.ReadFile(filepath.Join(parent, names[0], "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 3; i++ {
		os.MkdirAll(filepath.Join(parent, names[i]), 0o700)
		if err := os.WriteFile(filepath.Join(parent, names[i], "root.key"), rootKey, 0o600); err != nil {
			t.Fatal(err)
		}
		procs[i] = startServe(t, parent, args(i)...)
	}
	for _, p := range procs[1:] {
		waitReady(t, p.endpoint, 20*time.Second)
	}
	// The administrator A created is the cluster's.
	credFile := filepath.Join(parent, names[0], "credentials")
	cl := make([]*awskms.Client, 3)
	for i, p := range procs {
		cl[i] = sdkClient(t, credFile, p.endpoint)
	}
	acct := ""

	t.Run("keys made on A work on B and C", func(t *testing.T) {
		k, err := cl[0].CreateKey(ctx, &awskms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		acct = *k.KeyMetadata.AWSAccountId
		enc, err := cl[1].Encrypt(ctx, &awskms.EncryptInput{KeyId: k.KeyMetadata.KeyId, Plaintext: []byte("cluster")})
		if err != nil {
			t.Fatal(err)
		}
		dec, err := cl[2].Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		if err != nil || string(dec.Plaintext) != "cluster" {
			t.Fatalf("Decrypt on C of B's ciphertext: %q, %v", dec.Plaintext, err)
		}
		if _, err := cl[2].GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: k.KeyMetadata.KeyId, KeySpec: types.DataKeySpecAes256}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("DisableKey on B is refused on C within 1 s", func(t *testing.T) {
		k, err := cl[0].CreateKey(ctx, &awskms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		id := k.KeyMetadata.KeyId
		for _, c := range cl { // cached on every node
			if _, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: id, Plaintext: []byte("x")}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := cl[1].DisableKey(ctx, &awskms.DisableKeyInput{KeyId: id}); err != nil {
			t.Fatal(err)
		}
		acked := time.Now()
		for {
			_, err := cl[2].Encrypt(ctx, &awskms.EncryptInput{KeyId: id, Plaintext: []byte("x")})
			if errCode(err) == "DisabledException" {
				t.Logf("C refused the key %v after B's DisableKey was acknowledged", time.Since(acked))
				break
			}
			if time.Since(acked) > time.Second {
				t.Fatalf("C still serves a key B disabled %v ago: %v", time.Since(acked), err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})

	t.Run("races across the nodes keep AWS's limits", func(t *testing.T) {
		k, err := cl[0].CreateKey(ctx, &awskms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		id := *k.KeyMetadata.KeyId
		// CreateAlias: one name, six callers on three nodes: one wins.
		for round := range 4 {
			name := fmt.Sprintf("alias/race-%d", round)
			var wins atomic.Int32
			var wg sync.WaitGroup
			for g := range 6 {
				wg.Go(func() {
					_, err := cl[g%3].CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: &name, TargetKeyId: &id})
					switch errCode(err) {
					case "":
						wins.Add(1)
					case "AlreadyExistsException":
					default:
						t.Errorf("CreateAlias %s on node %d: %v", name, g%3, err)
					}
				})
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("%s: %d CreateAlias calls won; want exactly 1", name, wins.Load())
			}
		}
		// RotateKeyOnDemand: AWS allows 25 per key; 12 callers on three
		// nodes rotate until refused. ConflictException is AWS's answer
		// while another rotation of the key is in progress: try again.
		var rotations atomic.Int32
		var wg sync.WaitGroup
		deadline := time.Now().Add(30 * time.Second)
		for g := range 12 {
			wg.Go(func() {
				for failures := 0; failures < 5 && time.Now().Before(deadline); {
					_, err := cl[g%3].RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: &id})
					switch errCode(err) {
					case "":
						rotations.Add(1)
					case "LimitExceededException":
						return
					case "ConflictException":
						time.Sleep(time.Millisecond)
					default:
						failures++
						t.Logf("RotateKeyOnDemand on node %d: %v", g%3, err)
					}
				}
			})
		}
		wg.Wait()
		if rotations.Load() != 25 {
			t.Fatalf("%d on-demand rotations succeeded across the nodes; AWS's limit is exactly 25", rotations.Load())
		}
		lr, err := cl[2].ListKeyRotations(ctx, &awskms.ListKeyRotationsInput{KeyId: &id, Limit: aws32(1000)})
		if err != nil || len(lr.Rotations) != 25 {
			t.Fatalf("ListKeyRotations on C: %d rotations, %v; want 25", len(lr.Rotations), err)
		}
		// CreateGrant: AWS allows 500 grants per grantee principal on a
		// key; 510 calls from three nodes: exactly 500 granted, none lost.
		grantee := "arn:aws:iam::" + acct + ":root"
		var mu sync.Mutex
		var granted []string
		var refused atomic.Int32
		work := make(chan int, 510)
		for i := range 510 {
			work <- i
		}
		close(work)
		for g := range 24 {
			wg.Go(func() {
				for range work {
					for attempt := 0; ; attempt++ {
						out, err := cl[g%3].CreateGrant(ctx, &awskms.CreateGrantInput{KeyId: &id, GranteePrincipal: &grantee,
							Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
						code := errCode(err)
						if code == "" {
							mu.Lock()
							granted = append(granted, *out.GrantId)
							mu.Unlock()
						} else if code == "LimitExceededException" {
							refused.Add(1)
						} else if attempt < 5 {
							t.Logf("CreateGrant on node %d: %v", g%3, err)
							continue
						} else {
							t.Errorf("CreateGrant on node %d: %v", g%3, err)
						}
						break
					}
				}
			})
		}
		wg.Wait()
		if len(granted) != 500 || refused.Load() != 10 {
			t.Fatalf("%d grants made, %d refused; want 500 and 10", len(granted), refused.Load())
		}
		var listed []string
		var marker *string
		for {
			out, err := cl[1].ListGrants(ctx, &awskms.ListGrantsInput{KeyId: &id, Limit: aws32(1000), Marker: marker})
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range out.Grants {
				listed = append(listed, *g.GrantId)
			}
			if !out.Truncated {
				break
			}
			marker = out.NextMarker
		}
		slices.Sort(granted)
		slices.Sort(listed)
		if !slices.Equal(granted, listed) {
			t.Fatalf("ListGrants on B lists %d grants; the nodes acknowledged %d (lost or extra grants)", len(listed), len(granted))
		}
	})

	t.Run("kill -9 of a node under load loses no acknowledged change", func(t *testing.T) {
		var mu sync.Mutex
		var done []acked
		note := func(a acked) {
			mu.Lock()
			done = append(done, a)
			mu.Unlock()
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for n := range 3 {
			for g := range 4 {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						k, err := cl[n].CreateKey(ctx, &awskms.CreateKeyInput{})
						if err != nil {
							continue
						}
						id := *k.KeyMetadata.KeyId
						r, _ := awsmw.GetRequestIDMetadata(k.ResultMetadata)
						note(acked{n, "key", id, id, r})
						name := fmt.Sprintf("alias/kill-%d-%d-%d", n, g, i)
						a, err := cl[n].CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: &name, TargetKeyId: &id})
						if err != nil {
							continue
						}
						r, _ = awsmw.GetRequestIDMetadata(a.ResultMetadata)
						note(acked{n, "alias", id, name, r})
						grantee := "arn:aws:iam::" + acct + ":root"
						gr, err := cl[n].CreateGrant(ctx, &awskms.CreateGrantInput{KeyId: &id, GranteePrincipal: &grantee,
							Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
						if err != nil {
							continue
						}
						r, _ = awsmw.GetRequestIDMetadata(gr.ResultMetadata)
						note(acked{n, "grant", id, *gr.GrantId, r})
					}
				})
			}
		}
		// Kill A once it has acknowledged some of each kind of change.
		for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
			mu.Lock()
			n := 0
			for _, d := range done {
				if d.node == 0 && d.kind == "grant" {
					n++
				}
			}
			mu.Unlock()
			if n >= 5 {
				break
			}
			if time.Since(start) > 20*time.Second {
				t.Fatalf("node A acknowledged %d grants in 20 s", n)
			}
		}
		time.Sleep(100 * time.Millisecond)
		a := procs[0]
		a.cmd.Process.Signal(syscall.SIGKILL)
		<-a.done
		a.done <- nil
		// B and C go on under load after A's death.
		survivors := func() int {
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for _, d := range done {
				if d.node != 0 {
					n++
				}
			}
			return n
		}
		after := survivors()
		for start := time.Now(); survivors() < after+20 && time.Since(start) < 20*time.Second; {
			time.Sleep(20 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		if survivors() < after+20 {
			t.Fatalf("B and C acknowledged %d changes after A was killed", survivors()-after)
		}
		count := map[int]int{}
		for _, d := range done {
			if d.kind == "grant" {
				count[d.node]++
			}
		}
		if count[0] == 0 || count[1] == 0 || count[2] == 0 {
			t.Fatalf("the load made too few changes to show anything: grants per node %v", count)
		}
		t.Logf("%d changes acknowledged (grants per node %v)", len(done), count)
		// Every acknowledged change is visible from the surviving nodes.
		grants := map[string]map[string]bool{} // key → grant IDs, as B lists them
		for i, d := range done {
			c := cl[1+i%2]
			switch d.kind {
			case "key":
				if _, err := c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &d.key}); err != nil {
					t.Errorf("key %s acknowledged by node %d: %v", d.key, d.node, err)
				}
			case "alias":
				out, err := c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &d.name})
				if err != nil || *out.KeyMetadata.KeyId != d.key {
					t.Errorf("alias %s acknowledged by node %d: %v", d.name, d.node, err)
				}
			case "grant":
				if grants[d.key] == nil {
					out, err := cl[1].ListGrants(ctx, &awskms.ListGrantsInput{KeyId: &d.key})
					if err != nil {
						t.Fatal(err)
					}
					grants[d.key] = map[string]bool{}
					for _, g := range out.Grants {
						grants[d.key][*g.GrantId] = true
					}
				}
				if !grants[d.key][d.name] {
					t.Errorf("grant %s on %s acknowledged by node %d is gone", d.name, d.key, d.node)
				}
			}
		}
		// Each with its record in its node's trail, as coffer audit query
		// over the three trails reports them.
		out, err := exec.Command(cofferBin, "audit", "query", parent).Output()
		if err != nil {
			t.Fatalf("coffer audit query %s: %v", parent, err)
		}
		trailOf := map[string]string{} // request ID → trail
		last, lastTrail := "", ""
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var r struct {
				RequestID string `json:"requestID"`
				EventTime string `json:"eventTime"`
				ErrorCode string `json:"errorCode"`
				Trail     string `json:"trail"`
			}
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("audit query line %q: %v", line, err)
			}
			// Merged in time order: a record from another trail than the
			// one before it is never older (within a trail, records are in
			// the order written, which can put one a second before the
			// record written just before it).
			if r.Trail != lastTrail && r.EventTime < last {
				t.Fatalf("audit query over three trails is not in time order: %s from %s after %s from %s", r.EventTime, r.Trail, last, lastTrail)
			}
			last, lastTrail = r.EventTime, r.Trail
			if r.ErrorCode == "" {
				trailOf[r.RequestID] = r.Trail
			}
		}
		for _, d := range done {
			if want := filepath.Join(parent, names[d.node], "audit"); trailOf[d.requestID] != want {
				t.Errorf("%s %s acknowledged by %s (request %s): its record is in trail %q", d.kind, d.name, names[d.node], d.requestID, trailOf[d.requestID])
			}
		}
	})

	t.Run("PostgreSQL stopped and restarted under load", func(t *testing.T) {
		k, err := cl[1].CreateKey(ctx, &awskms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		id := k.KeyMetadata.KeyId
		var ok, depTimeout, other atomic.Int32
		var slowest atomic.Int64
		var down atomic.Bool
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				c := cl[1+g%2]
				for {
					select {
					case <-stop:
						return
					default:
					}
					start := time.Now()
					_, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: id, Plaintext: []byte("x")})
					switch code := errCode(err); {
					case code == "":
						ok.Add(1)
					case code == "DependencyTimeoutException":
						depTimeout.Add(1)
						if d := time.Since(start); down.Load() && d.Nanoseconds() > slowest.Load() {
							slowest.Store(d.Nanoseconds())
						}
					default:
						other.Add(1)
						t.Logf("Encrypt with the database down: %v", err)
					}
					time.Sleep(5 * time.Millisecond)
				}
			})
		}
		time.Sleep(200 * time.Millisecond)
		if err := pg.Stop(); err != nil {
			t.Fatal(err)
		}
		down.Store(true)
		before := ok.Load()
		time.Sleep(1500 * time.Millisecond)
		for _, p := range procs[1:] {
			resp, err := http.Get(p.endpoint + "/readyz")
			if err != nil || resp.StatusCode != 503 {
				t.Errorf("/readyz with the database down: %v %v", resp, err)
			}
			if resp != nil {
				resp.Body.Close()
			}
		}
		if _, err := cl[2].CreateKey(ctx, &awskms.CreateKeyInput{}); errCode(err) != "DependencyTimeoutException" {
			t.Errorf("CreateKey with the database down: %v, want DependencyTimeoutException", err)
		}
		failedWhileDown := depTimeout.Load()
		if err := pg.StartAgain(); err != nil {
			t.Fatal(err)
		}
		down.Store(false)
		back := time.Now()
		for _, p := range procs[1:] {
			waitReady(t, p.endpoint, 15*time.Second)
		}
		recovered := ok.Load()
		for ok.Load() < recovered+20 && time.Since(back) < 15*time.Second {
			time.Sleep(20 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		t.Logf("while down: %d DependencyTimeoutException (slowest %v), %d other errors; %d served before, %d after; ready again %v after restart",
			failedWhileDown, time.Duration(slowest.Load()), other.Load(), before, ok.Load()-recovered, time.Since(back))
		if failedWhileDown == 0 {
			t.Fatal("no call failed with the database down")
		}
		if other.Load() > 0 {
			t.Errorf("%d calls failed with another error than DependencyTimeoutException", other.Load())
		}
		if d := time.Duration(slowest.Load()); d > 4*time.Second {
			t.Errorf("a call took %v to fail with the database down; --postgres-timeout is 2s", d)
		}
		if ok.Load() < recovered+20 {
			t.Fatal("the nodes did not serve again by themselves after PostgreSQL came back")
		}
	})

	// Stopped cleanly, B and C seal their trails; A's, cut by kill -9,
	// still verifies: coffer audit verify over the three reports each.
	for _, p := range procs[1:] {
		p.cmd.Process.Signal(syscall.SIGTERM)
		<-p.done
		p.done <- nil
	}
	out, err := exec.Command(cofferBin, "audit", "verify", parent).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "all 3 trails verify") {
		t.Fatalf("coffer audit verify %s: %v\n%s", parent, err, out)
	}
}

func aws32(n int32) *int32 { return &n }

// TestClusterNodeStartLeavesOthersOutbox: a node that starts while another
// serves CreateKey flat out on the same PostgreSQL reconciles only its own
// audit outbox entries: none of A's calls lands in B's trail, and `coffer
// audit query` over both trails finds each eventId and request ID once and
// each of A's acknowledged calls in A's trail. (A's outbox holds every call whose
// record reached its trail until its next flush: a start that recovered
// every node's entries appended them again into B's.)
func TestClusterNodeStartLeavesOthersOutbox(t *testing.T) {
	pg := pgtest.ForTest(t, "starts PostgreSQL and two servers")
	url := pg.Database(t)
	ctx := context.Background()
	parent := t.TempDir()
	names := []string{"node-a", "node-b"}
	args := func(i int) []string {
		return []string{"--store", "postgres", "--postgres-url", url, "--postgres-timeout", "2s", "--data-dir", filepath.Join(parent, names[i])}
	}
	a := startServe(t, parent, args(0)...)
	waitReady(t, a.endpoint, 20*time.Second)
	cl := sdkClient(t, filepath.Join(parent, names[0], "credentials"), a.endpoint)

	var mu sync.Mutex
	var acked []string // A's CreateKey request IDs
	stop := make(chan struct{})
	var wg sync.WaitGroup
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
				out, err := cl.CreateKey(ctx, &awskms.CreateKeyInput{})
				if err != nil {
					continue
				}
				r, _ := awsmw.GetRequestIDMetadata(out.ResultMetadata)
				mu.Lock()
				acked = append(acked, r)
				mu.Unlock()
			}
		}()
	}
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 20 {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("A acknowledged %d CreateKeys in 20 s", n)
		}
	}
	rootKey, err := os.ReadFile(filepath.Join(parent, names[0], "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(parent, names[1]), 0o700)
	if err := os.WriteFile(filepath.Join(parent, names[1], "root.key"), rootKey, 0o600); err != nil {
		t.Fatal(err)
	}
	b := startServe(t, parent, args(1)...)
	waitReady(t, b.endpoint, 20*time.Second)
	close(stop)
	wg.Wait()

	out, err := exec.Command(cofferBin, "audit", "query", parent).Output()
	if err != nil {
		t.Fatalf("coffer audit query %s: %v", parent, err)
	}
	trailOf := map[string]string{} // request ID → trail
	events := map[string]string{}  // eventId → trail
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r struct {
			RequestID string `json:"requestID"`
			EventID   string `json:"eventID"`
			Trail     string `json:"trail"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit query line %q: %v", line, err)
		}
		if prev, dup := events[r.EventID]; dup {
			t.Fatalf("eventId %s in trail %s and in trail %s", r.EventID, prev, r.Trail)
		}
		events[r.EventID] = r.Trail
		if prev, dup := trailOf[r.RequestID]; dup && r.RequestID != "" {
			t.Errorf("request %s recorded in trail %s and in trail %s", r.RequestID, prev, r.Trail)
		}
		trailOf[r.RequestID] = r.Trail
	}
	want := filepath.Join(parent, names[0], "audit")
	for _, id := range acked {
		if trailOf[id] != want {
			t.Errorf("A's CreateKey %s: its record is in trail %q", id, trailOf[id])
		}
	}
	t.Logf("%d CreateKeys acknowledged by A while B started", len(acked))
}

// TestClusterRefusesCopiedNodeID starts a second node on a data directory
// copied from a running one (its root key and node-id file): it must refuse
// to start, naming the node ID, rather than share the first node's outbox
// entries as its own. A node restarted at once after kill -9 on its own
// directory, whose last heartbeat is seconds old, still starts.
func TestClusterRefusesCopiedNodeID(t *testing.T) {
	pg := pgtest.ForTest(t, "starts PostgreSQL and servers")
	url := pg.Database(t)
	parent := t.TempDir()
	args := func(name string) []string {
		return []string{"--store", "postgres", "--postgres-url", url, "--postgres-timeout", "2s", "--data-dir", filepath.Join(parent, name)}
	}
	a := startServe(t, parent, args("node-a")...)
	waitReady(t, a.endpoint, 20*time.Second)
	time.Sleep(1500 * time.Millisecond) // a heartbeat or two

	copied := filepath.Join(parent, "node-copy")
	os.MkdirAll(copied, 0o700)
	for _, f := range []string{"root.key", nodeIDFile} {
		raw, err := os.ReadFile(filepath.Join(parent, "node-a", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(copied, f), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	id, _ := os.ReadFile(filepath.Join(copied, nodeIDFile))
	cmd := exec.Command(cofferBin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args("node-copy")...)...)
	cmd.Dir = parent
	done := make(chan struct{})
	var (
		out []byte
		err error
	)
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("a node on a copied data directory is still running after 30 s:\n%s", out)
	}
	if err == nil || !strings.Contains(string(out), "another running node uses node ID "+strings.TrimSpace(string(id))) {
		t.Fatalf("a node on a copied data directory: %v\n%s", err, out)
	}

	// kill -9 and an immediate restart on the node's own directory.
	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.done
	a.done <- nil // for startServe's cleanup
	a2 := startServe(t, parent, args("node-a")...)
	waitReady(t, a2.endpoint, 30*time.Second)
}
