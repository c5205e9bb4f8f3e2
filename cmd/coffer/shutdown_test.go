package main

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

// TestShutdownFinishesAcceptedRequests: SIGTERM under load fails none of
// the requests the server accepted. A request that got any HTTP answer
// must have got a 200; one that found the listener closed (no answer) was
// never accepted. Operations used to run under fasthttp's request context,
// which shutdown cancels: 3 or 4 of 16 in flight failed with 500/503.
func TestShutdownFinishesAcceptedRequests(t *testing.T) {
	for round := range 3 {
		dir := t.TempDir()
		p := startServe(t, dir)
		c := sdkClient(t, filepath.Join(dir, "coffer-data", "credentials"), p.endpoint) // no retries
		key, err := c.CreateKey(context.Background(), &awskms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		var (
			ok, refused atomic.Int64
			mu          sync.Mutex
			failures    []error
			wg          sync.WaitGroup
			exited      = make(chan struct{})
		)
		// Half the loops encrypt (the hot path, answered from the cache);
		// half create keys, which write the store, and the store refuses a
		// cancelled context.
		for i := range 16 {
			wg.Add(1)
			call := func() error {
				_, err := c.Encrypt(context.Background(), &awskms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("in flight")})
				return err
			}
			if i%2 == 1 {
				call = func() error {
					_, err := c.CreateKey(context.Background(), &awskms.CreateKeyInput{})
					return err
				}
			}
			go func() {
				defer wg.Done()
				for {
					select {
					case <-exited:
						return
					default:
					}
					err := call()
					var answered *awshttp.ResponseError
					switch {
					case err == nil:
						ok.Add(1)
					case errors.As(err, &answered) && answered.HTTPStatusCode() != 0:
						mu.Lock()
						failures = append(failures, err)
						mu.Unlock()
					default: // no HTTP answer: the listener was closed
						refused.Add(1)
						time.Sleep(5 * time.Millisecond)
					}
				}
			}()
		}
		time.Sleep(300 * time.Millisecond)
		before := ok.Load()
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			if err != nil {
				t.Fatalf("coffer serve exited with %v after SIGTERM", err)
			}
			p.done <- nil
		case <-time.After(10 * time.Second):
			t.Fatal("no exit within 10 s of SIGTERM")
		}
		close(exited)
		wg.Wait()
		t.Logf("round %d: %d answered 200 (%d before SIGTERM), %d found no listener, %d failed", round, ok.Load(), before, refused.Load(), len(failures))
		if before == 0 {
			t.Fatal("no request succeeded before SIGTERM: the load did not run")
		}
		for _, err := range failures {
			t.Errorf("round %d: a request the server accepted failed: %v", round, err)
		}
		if t.Failed() {
			return
		}
	}
}
