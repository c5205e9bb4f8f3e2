package server_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// TestConcurrentRequestsAreIsolated sends many concurrent requests, each
// with its own plaintext and encryption context, and checks that every
// response belongs to its request: fasthttp reuses request and response
// memory, pooled buffers are reused, and nothing may leak between them.
// `make test` runs it under the race detector.
func TestConcurrentRequestsAreIsolated(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	keys := []string{e.createKey("a"), e.createKey("b"), e.createKey("c")}
	const workers, rounds = 32, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				key := keys[(w+r)%len(keys)]
				pt := bytes.Repeat(fmt.Appendf(nil, "w%03d-r%03d|", w, r), 1+(w*7+r)%60)
				ec := map[string]string{"worker": fmt.Sprint(w), "round": fmt.Sprint(r)}
				enc, err := e.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(key), Plaintext: pt, EncryptionContext: ec})
				if err != nil {
					errs <- err
					return
				}
				if *enc.KeyId != "arn:aws:kms:us-east-1:111122223333:key/"+key {
					errs <- fmt.Errorf("worker %d got the key of another request: %s", w, *enc.KeyId)
					return
				}
				dec, err := e.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(dec.Plaintext, pt) {
					errs <- fmt.Errorf("worker %d round %d decrypted another request's data", w, r)
					return
				}
				dk, err := e.client.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: aws.String(key), KeySpec: types.DataKeySpecAes256, EncryptionContext: ec})
				if err != nil {
					errs <- err
					return
				}
				back, err := e.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec, KeyId: aws.String(key)})
				if err != nil || !bytes.Equal(back.Plaintext, dk.Plaintext) {
					errs <- fmt.Errorf("worker %d: data key round trip: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
