package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/coffer-kms/coffer/audit"
)

// TestCrashConsistency kills `coffer serve` with SIGKILL at seeded random
// moments under a load of changes (keys created, aliases created for them,
// tags set), restarts it each time, and checks the promises of DESIGN.md's
// "A change and its audit record":
//
//   - every acknowledged change is there after the restart;
//   - every change in the store has the audit record of the call that made
//     it in the trail (written then, or recovered from the outbox at start);
//   - the trail verifies against its anchor.
//
// COFFER_CRASH_SEED replays a run; COFFER_CRASH_KILLS sets the number of
// kills (default 48; 8 with -short).
func TestCrashConsistency(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("COFFER_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	kills := 48
	if testing.Short() {
		kills = 8
	}
	if s := os.Getenv("COFFER_CRASH_KILLS"); s != "" {
		kills, _ = strconv.Atoi(s)
	}
	t.Logf("COFFER_CRASH_SEED=%d, %d kills", seed, kills)
	rng := rand.New(rand.NewPCG(seed, seed>>1|1))

	dir := t.TempDir()
	credFile := filepath.Join(dir, "coffer-data", "credentials")
	var (
		mu          sync.Mutex
		ackedKeys   = map[string]bool{} // key IDs whose CreateKey was answered
		ackedAlias  = map[string]string{}
		ackedTagged = map[string]string{} // key ID → the last tag value acknowledged
		attempted   int
		checked     = map[string]bool{}
	)
	p := startServe(t, dir)
	for kill := range kills {
		c := sdkClient(t, credFile, p.endpoint)
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ctx.Err() == nil; n++ {
					mu.Lock()
					attempted++
					mu.Unlock()
					k, err := c.CreateKey(ctx, &awskms.CreateKeyInput{Description: aws.String(fmt.Sprintf("crash %d/%d/%d", kill, w, n))})
					if err != nil {
						return
					}
					id := *k.KeyMetadata.KeyId
					mu.Lock()
					ackedKeys[id] = true
					mu.Unlock()
					alias := fmt.Sprintf("alias/crash-%d-%d-%d", kill, w, n)
					if _, err := c.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: &alias, TargetKeyId: &id}); err != nil {
						return
					}
					mu.Lock()
					ackedAlias[alias] = id
					mu.Unlock()
					val := strconv.Itoa(n)
					if _, err := c.TagResource(ctx, &awskms.TagResourceInput{KeyId: &id, Tags: []kmstypes.Tag{{TagKey: aws.String("n"), TagValue: &val}}}); err != nil {
						return
					}
					mu.Lock()
					ackedTagged[id] = val
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(20+rng.IntN(300)) * time.Millisecond)
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.done
		p.done <- nil
		stop()
		wg.Wait()

		p = startServe(t, dir)
		c = sdkClient(t, credFile, p.endpoint)
		// The changes acknowledged since the last kill are all checked now;
		// the earlier ones once more at the end, through the same maps.
		mu.Lock()
		checkAcked(t, c, fmt.Sprintf("kill %d", kill), fresh(ackedKeys, checked), ackedAlias, ackedTagged)
		mu.Unlock()
	}
	mu.Lock()
	checkAcked(t, sdkClient(t, credFile, p.endpoint), "at the end", ackedKeys, ackedAlias, ackedTagged)
	mu.Unlock()

	// Everything in the store, as a client sees it.
	c := sdkClient(t, credFile, p.endpoint)
	keys, aliases := map[string]bool{}, map[string]bool{}
	for pg := awskms.NewListKeysPaginator(c, &awskms.ListKeysInput{}); pg.HasMorePages(); {
		out, err := pg.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range out.Keys {
			keys[*k.KeyId] = true
		}
	}
	for pg := awskms.NewListAliasesPaginator(c, &awskms.ListAliasesInput{}); pg.HasMorePages(); {
		out, err := pg.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range out.Aliases {
			aliases[*a.AliasName] = true
		}
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	p.done <- nil

	// Every change has its record: a CreateKey record naming the key, a
	// CreateAlias record naming the alias, that did not fail.
	auditDir := filepath.Join(dir, "coffer-data", "audit")
	recorded := map[string]bool{}
	recovered := 0
	if err := audit.Query(auditDir, audit.Filter{}, func(r *audit.Record) error {
		if r.ErrorCode != "" {
			return nil
		}
		if len(r.AdditionalEventData) > 0 {
			recovered++
		}
		switch r.EventName {
		case "CreateKey":
			for _, res := range r.Resources {
				recorded["key:"+res.ARN[strings.LastIndexByte(res.ARN, '/')+1:]] = true
			}
		case "CreateAlias":
			var p struct{ AliasName string }
			if err := json.Unmarshal(r.RequestParameters, &p); err == nil {
				recorded["alias:"+p.AliasName] = true
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for id := range keys {
		if !recorded["key:"+id] {
			t.Errorf("key %s is in the store with no CreateKey record in the trail", id)
		}
	}
	for a := range aliases {
		if strings.HasPrefix(a, "alias/aws/") {
			continue
		}
		if !recorded["alias:"+a] {
			t.Errorf("alias %s is in the store with no CreateAlias record in the trail", a)
		}
	}
	out, err := exec.Command(cofferBin, "audit", "verify", auditDir).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "OK:") {
		var ee *exec.ExitError
		errors.As(err, &ee)
		t.Fatalf("the trail does not verify after %d kills: %v\n%s", kills, err, out)
	}
	t.Logf("%d kills, %d calls attempted; %d keys, %d aliases in the store, all with their records (%d recovered from the outbox); acknowledged: %d keys, %d aliases, %d tags",
		kills, attempted, len(keys), len(aliases), recovered, len(ackedKeys), len(ackedAlias), len(ackedTagged))
}

type kmsClient = *awskms.Client

// fresh returns the keys of all not yet in checked, and marks them checked.
func fresh(all, checked map[string]bool) map[string]bool {
	out := map[string]bool{}
	for id := range all {
		if !checked[id] {
			out[id] = true
			checked[id] = true
		}
	}
	return out
}

// checkAcked fails unless every acknowledged key among keys exists, with
// its acknowledged aliases and tag.
func checkAcked(t *testing.T, c kmsClient, when string, keys map[string]bool, aliases, tags map[string]string) {
	t.Helper()
	for id := range keys {
		if _, err := c.DescribeKey(context.Background(), &awskms.DescribeKeyInput{KeyId: &id}); err != nil {
			t.Fatalf("%s: acknowledged key %s is gone: %v", when, id, err)
		}
		if val, ok := tags[id]; ok {
			out, err := c.ListResourceTags(context.Background(), &awskms.ListResourceTagsInput{KeyId: &id})
			if err != nil || len(out.Tags) != 1 || *out.Tags[0].TagValue != val {
				t.Fatalf("%s: acknowledged tag n=%s of %s is gone: %v %v", when, val, id, out, err)
			}
		}
	}
	for alias, id := range aliases {
		if !keys[id] {
			continue
		}
		out, err := c.DescribeKey(context.Background(), &awskms.DescribeKeyInput{KeyId: aws.String(alias)})
		if err != nil || *out.KeyMetadata.KeyId != id {
			t.Fatalf("%s: acknowledged alias %s → %s is gone: %v", when, alias, id, err)
		}
	}
}
