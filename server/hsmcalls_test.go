package server_test

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/coffer-kms/coffer/hsm"
)

// TestHSMCallsPerDecrypt counts the PKCS#11 calls behind Decrypt through the
// real server: N concurrent Decrypts of one cold key cost exactly one HSM
// call (one unwrap; the others wait for it and take the material cache
// entry it filled), and Decrypts of a hot key cost none.
func TestHSMCallsPerDecrypt(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	e := newEnvOn(t, "pkcs11")
	ctx := context.Background()
	key := e.createKey("cold")
	enc := must[*awskms.EncryptOutput](t)(e.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("cold start")}))
	e.restart()                                                                      // the material cache is empty again
	must[*awskms.ListKeysOutput](t)(e.client.ListKeys(ctx, &awskms.ListKeysInput{})) // unwraps the caller's access-key secret

	pool := e.root.(*hsm.Pool)
	const n = 64
	decryptAll := func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				out, err := e.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
				if err == nil && string(out.Plaintext) != "cold start" {
					t.Errorf("plaintext %q", out.Plaintext)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	before := pool.Stats()
	decryptAll()
	cold := pool.Stats()
	if calls := cold.Calls - before.Calls; calls != 1 {
		t.Fatalf("%d concurrent Decrypts of a cold key made %d HSM calls, want 1", n, calls)
	}
	decryptAll()
	hot := pool.Stats()
	if calls := hot.Calls - cold.Calls; calls != 0 {
		t.Fatalf("%d Decrypts of a hot key made %d HSM calls, want 0", n, calls)
	}
	t.Logf("cold key: %d concurrent Decrypts, 1 HSM call; hot key: %d Decrypts, 0 HSM calls", n, n)
}
