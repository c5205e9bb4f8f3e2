package server_test

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/coffer-kms/coffer/kms"
	"github.com/coffer-kms/coffer/server"
)

// TestOutputCleared holds the request's output memory, into which
// Decrypt opens its plaintext and GenerateDataKey draws its data key, to
// zeros once the response is written: a pooled buffer must not carry a
// data key to the next request (or to a heap dump). It also holds the
// outputs to that memory, which makes them cost no allocation of their
// own: each call's output memory must cover what it returned.
func TestOutputCleared(t *testing.T) {
	e := newEnv(t)
	id := e.createKey("output")
	var (
		mu   sync.Mutex
		used []int // bytes of output memory, one per request
	)
	e.beforeServe = func(s *server.Server) {
		server.SetReleased(s, func(ri *kms.RequestInfo) {
			out := ri.Output()
			if !bytes.Equal(out, make([]byte, len(out))) {
				t.Errorf("output memory of %d bytes not cleared after the response", len(out))
			}
			mu.Lock()
			used = append(used, len(out))
			mu.Unlock()
		})
	}
	e.restart()
	ctx := context.Background()
	last := func() int {
		mu.Lock()
		defer mu.Unlock()
		return used[len(used)-1]
	}

	pt := bytes.Repeat([]byte{0x5a}, 1024)
	enc := must[*awskms.EncryptOutput](t)(e.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: pt}))
	if n := last(); n < len(enc.CiphertextBlob) {
		t.Errorf("Encrypt used %d bytes of output memory for a %d-byte blob", n, len(enc.CiphertextBlob))
	}
	dec := must[*awskms.DecryptOutput](t)(e.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}))
	if !bytes.Equal(dec.Plaintext, pt) {
		t.Fatal("Decrypt returned another plaintext")
	}
	if n := last(); n < len(pt) {
		t.Errorf("Decrypt used %d bytes of output memory for a %d-byte plaintext", n, len(pt))
	}
	dk := must[*awskms.GenerateDataKeyOutput](t)(e.client.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: &id, KeySpec: types.DataKeySpecAes256}))
	if n := last(); n < len(dk.Plaintext)+len(dk.CiphertextBlob) {
		t.Errorf("GenerateDataKey used %d bytes of output memory for a %d-byte key and a %d-byte blob", n, len(dk.Plaintext), len(dk.CiphertextBlob))
	}
	// The data key the response carried opens from its blob: the memory
	// was cleared after the response was written, not before.
	back := must[*awskms.DecryptOutput](t)(e.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: dk.CiphertextBlob}))
	if !bytes.Equal(back.Plaintext, dk.Plaintext) || bytes.Equal(dk.Plaintext, make([]byte, 32)) {
		t.Fatal("GenerateDataKey's plaintext is not the key its blob holds")
	}
	// The generically encoded operations' secrets: a data key pair's
	// private key, random bytes.
	pair := must[*awskms.GenerateDataKeyPairOutput](t)(e.client.GenerateDataKeyPair(ctx, &awskms.GenerateDataKeyPairInput{KeyId: &id, KeyPairSpec: types.DataKeyPairSpecEccNistP256}))
	if n := last(); len(pair.PrivateKeyPlaintext) == 0 || n < len(pair.PrivateKeyPlaintext)+len(pair.PrivateKeyCiphertextBlob) {
		t.Errorf("GenerateDataKeyPair used %d bytes of output memory for a %d-byte private key and a %d-byte blob", n, len(pair.PrivateKeyPlaintext), len(pair.PrivateKeyCiphertextBlob))
	}
	back = must[*awskms.DecryptOutput](t)(e.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: pair.PrivateKeyCiphertextBlob}))
	if !bytes.Equal(back.Plaintext, pair.PrivateKeyPlaintext) {
		t.Fatal("GenerateDataKeyPair's private key is not the one its blob holds")
	}
	rnd := must[*awskms.GenerateRandomOutput](t)(e.client.GenerateRandom(ctx, &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(64)}))
	if n := last(); len(rnd.Plaintext) != 64 || n < 64 || bytes.Equal(rnd.Plaintext, make([]byte, 64)) {
		t.Errorf("GenerateRandom used %d bytes of output memory for %d random bytes", n, len(rnd.Plaintext))
	}
	re := must[*awskms.ReEncryptOutput](t)(e.client.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: &id}))
	dec = must[*awskms.DecryptOutput](t)(e.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: re.CiphertextBlob, KeyId: aws.String(id)}))
	if !bytes.Equal(dec.Plaintext, pt) {
		t.Fatal("ReEncrypt's blob opens to another plaintext")
	}
}

// TestInputCleared holds a request's body, which fasthttp keeps for the
// connection's next request, to zeros once the response is written, and a
// successful Encrypt's decoded plaintext too: a plaintext (often a data key
// being wrapped) must not outlive its request in pooled memory.
func TestInputCleared(t *testing.T) {
	e := newEnv(t)
	id := e.createKey("input")
	type seen struct {
		op          string
		body, plain []byte
	}
	var (
		mu   sync.Mutex
		last seen
	)
	e.beforeServe = func(s *server.Server) {
		server.SetServedInput(s, func(op string, in any, body []byte) {
			v := seen{op: op, body: bytes.Clone(body)}
			if ein, ok := in.(*kms.EncryptInput); ok {
				v.plain = bytes.Clone(ein.Plaintext)
			}
			mu.Lock()
			last = v
			mu.Unlock()
		})
	}
	e.restart()
	ctx := context.Background()
	get := func() seen {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
	zero := func(b []byte) bool { return len(b) > 0 && bytes.Equal(b, make([]byte, len(b))) }

	pt := bytes.Repeat([]byte{0x5a}, 512)
	enc := must[*awskms.EncryptOutput](t)(e.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: pt}))
	if v := get(); v.op != "Encrypt" || len(v.plain) != len(pt) || !zero(v.plain) || !zero(v.body) {
		t.Fatalf("after Encrypt: op %q, plaintext cleared %v (%d bytes), body cleared %v (%d bytes)", v.op, zero(v.plain), len(v.plain), zero(v.body), len(v.body))
	}
	// The response was written before: the blob opens to the plaintext.
	dec := must[*awskms.DecryptOutput](t)(e.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}))
	if !bytes.Equal(dec.Plaintext, pt) {
		t.Fatal("Decrypt returned another plaintext")
	}
	if v := get(); v.op != "Decrypt" || !zero(v.body) {
		t.Fatalf("after Decrypt: op %q, body cleared %v", v.op, zero(v.body))
	}
	// A refused call's body is cleared too.
	if _, err := e.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String("alias/none"), Plaintext: pt}); err == nil {
		t.Fatal("Encrypt under a missing alias succeeded")
	}
	if v := get(); v.op != "Encrypt" || !zero(v.body) {
		t.Fatalf("after a refused Encrypt: op %q, body cleared %v", v.op, zero(v.body))
	}
}
