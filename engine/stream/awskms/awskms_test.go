package awskms_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/coffer-kms/coffer/engine/stream"
	"github.com/coffer-kms/coffer/engine/stream/awskms"
	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
	cofferkms "github.com/coffer-kms/coffer/kms"
	"github.com/coffer-kms/coffer/server"
)

// startCoffer runs a real Coffer server (--dev) on a loopback socket and
// returns an aws-sdk-go-v2 client for it.
func startCoffer(t *testing.T) *kms.Client {
	t.Helper()
	client, _ := startCofferService(t)
	return client
}

// startCofferService is startCoffer that also returns the server's Service,
// for in-process use beside the remote client.
func startCofferService(t testing.TB) (*kms.Client, *cofferkms.Service) {
	t.Helper()
	dir := t.TempDir()
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{Path: filepath.Join(dir, "root.key")})
	if err != nil {
		t.Fatal(err)
	}
	store, err := keystore.OpenBolt(filepath.Join(dir, "coffer.db"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := cofferkms.New(cofferkms.Config{Region: "us-east-1", Account: "111122223333", Store: store, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Service: svc, Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		svc.Close()
		store.Close()
		root.Close()
	})
	return kms.New(kms.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String("http://" + ln.Addr().String()),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		RetryMaxAttempts: 1,
	}), svc
}

func TestRoundTripThroughCoffer(t *testing.T) {
	client := startCoffer(t)
	ctx := context.Background()
	key, err := client.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/pipeline"), TargetKeyId: key.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	p := awskms.New(client)
	encCtx := map[string]string{"bucket": "logs"}
	pt := make([]byte, 200_000)
	rand.Read(pt)
	buf := roundTrip(t, p, p, aws.ToString(key.KeyMetadata.Arn), encCtx, pt)

	// Another key named by the reader: the KMS refuses the blob.
	other, err := client.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.NewReader(ctx, bytes.NewReader(buf.Bytes()), p, stream.Config{KeyID: aws.ToString(other.KeyMetadata.KeyId)})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "IncorrectKeyException" {
		t.Fatalf("reading under another key: %v", err)
	}
}

// The same pipeline code runs on Coffer's service in process and on a
// remote Coffer: a stream written through one provider reads back through
// the other, and the in-process provider keeps the service's authorization
// and key checks.
func TestInProcessAndRemoteProvidersInteroperate(t *testing.T) {
	client, svc := startCofferService(t)
	ctx := context.Background()
	key, err := client.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/pipeline"), TargetKeyId: key.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	// --dev serves every signature as the account root; in process, the same.
	local := svc.StreamKeys(cofferkms.Caller{ARN: "arn:aws:iam::111122223333:root", Account: "111122223333"})
	remote := awskms.New(client)
	encCtx := map[string]string{"bucket": "logs", "object": "2026/11/23/part-0001"}
	pt := make([]byte, 3<<20+17)
	rand.Read(pt)

	for _, tc := range []struct {
		name           string
		writer, reader stream.KeyProvider
	}{
		{"in-process writes, remote reads", local, remote},
		{"remote writes, in-process reads", remote, local},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := roundTrip(t, tc.writer, tc.reader, aws.ToString(key.KeyMetadata.Arn), encCtx, pt)
			// A stream read under another key fails with the service's error.
			other, err := client.CreateKey(ctx, &kms.CreateKeyInput{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = stream.NewReader(ctx, bytes.NewReader(buf.Bytes()), local, stream.Config{KeyID: aws.ToString(other.KeyMetadata.KeyId)})
			if !errors.Is(err, cofferkms.ErrIncorrectKey) {
				t.Fatalf("in-process read under another key: %v", err)
			}
		})
	}

	// A principal no policy allows gets AccessDeniedException in process too.
	nobody := svc.StreamKeys(cofferkms.Caller{ARN: "arn:aws:iam::111122223333:user/nobody", Account: "111122223333"})
	_, err = stream.NewWriter(ctx, io.Discard, nobody, stream.Config{KeyID: "alias/pipeline"})
	if !errors.Is(err, cofferkms.ErrAccessDenied) {
		t.Fatalf("writer as a principal without permission: %v", err)
	}
}

// roundTrip writes pt under alias/pipeline through writer, checks the
// header names keyARN, reads it back through reader sequentially and in
// parallel, and returns the stream.
func roundTrip(t *testing.T, writer, reader stream.KeyProvider, keyARN string, encCtx map[string]string, pt []byte) *bytes.Buffer {
	t.Helper()
	ctx := context.Background()
	var buf bytes.Buffer
	w, err := stream.NewWriter(ctx, &buf, writer, stream.Config{KeyID: "alias/pipeline", Context: encCtx})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pt); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := w.Header().KeyARN; got != keyARN {
		t.Fatalf("header records %q, want the key ARN %q", got, keyARN)
	}
	for _, workers := range []int{1, 0} {
		r, err := stream.NewReader(ctx, bytes.NewReader(buf.Bytes()), reader, stream.Config{Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("workers %d: %d bytes back, %v", workers, len(got), err)
		}
	}
	return &buf
}

// countingProvider counts the calls that go to the KMS.
type countingProvider struct {
	stream.KeyProvider
	generates, decrypts int
}

func (c *countingProvider) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) ([]byte, []byte, string, error) {
	c.generates++
	return c.KeyProvider.GenerateDataKey(ctx, keyID, encCtx)
}

func (c *countingProvider) Decrypt(ctx context.Context, keyID string, blob []byte, encCtx map[string]string) ([]byte, error) {
	c.decrypts++
	return c.KeyProvider.Decrypt(ctx, keyID, blob, encCtx)
}

// A pipeline writing and reading many small objects under one cached data
// key, against a real Coffer over its API: one GenerateDataKey and one
// Decrypt in all, not one per object; without the decrypt cache, one
// Decrypt per object.
func TestCachedPipelineCallsKMSOnce(t *testing.T) {
	client := startCoffer(t)
	ctx := context.Background()
	key, err := client.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProvider{KeyProvider: awskms.New(client)}
	enc, _ := stream.NewCache(stream.CacheConfig{MaxAge: time.Hour})
	dec, _ := stream.NewCache(stream.CacheConfig{MaxAge: time.Hour})
	encCtx := map[string]string{"bucket": "logs"}
	const objects = 200
	objs := make([][]byte, objects)
	pts := make([][]byte, objects)
	for i := range objs {
		pts[i] = make([]byte, 1+i*37%5000)
		rand.Read(pts[i])
		var buf bytes.Buffer
		w, err := stream.NewWriter(ctx, &buf, p, stream.Config{KeyID: aws.ToString(key.KeyMetadata.KeyId), Context: encCtx, Cache: enc, Size: int64(len(pts[i]))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(pts[i]); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		objs[i] = buf.Bytes()
	}
	read := func(cache *stream.Cache) {
		for i, o := range objs {
			r, err := stream.NewReader(ctx, bytes.NewReader(o), p, stream.Config{Cache: cache})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, pts[i]) {
				t.Fatalf("object %d: %v", i, err)
			}
		}
	}
	read(dec)
	if p.generates != 1 || p.decrypts != 1 {
		t.Fatalf("%d objects through the caches: %d GenerateDataKey and %d Decrypt calls, want 1 and 1", objects, p.generates, p.decrypts)
	}
	read(nil)
	if p.decrypts != 1+objects {
		t.Fatalf("%d objects without a decrypt cache: %d Decrypt calls, want %d", objects, p.decrypts-1, objects)
	}
}

// BenchmarkSmallObjects decrypts 10,000 objects of 1 KiB that share one
// data key, from a real Coffer over its API, with the decrypt cache on and
// off: objects/s and the KMS calls per 10,000 objects.
//
//	go test -run '^$' -bench SmallObjects -benchtime 3x -count 5 ./engine/stream/awskms
func BenchmarkSmallObjects(b *testing.B) {
	client, _ := startCofferService(b)
	ctx := context.Background()
	key, err := client.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		b.Fatal(err)
	}
	remote := awskms.New(client)
	enc, _ := stream.NewCache(stream.CacheConfig{MaxAge: time.Hour})
	const objects = 10_000
	objs := make([][]byte, objects)
	pt := make([]byte, 1024)
	for i := range objs {
		var buf bytes.Buffer
		w, err := stream.NewWriter(ctx, &buf, remote, stream.Config{KeyID: aws.ToString(key.KeyMetadata.KeyId), Cache: enc, Size: int64(len(pt))})
		if err != nil {
			b.Fatal(err)
		}
		w.Write(pt)
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		objs[i] = buf.Bytes()
	}
	out := make([]byte, 2048)
	for _, cached := range []bool{true, false} {
		name := "cache=off"
		if cached {
			name = "cache=on"
		}
		b.Run(name, func(b *testing.B) {
			p := &countingProvider{KeyProvider: remote}
			for b.Loop() {
				var cache *stream.Cache
				if cached {
					cache, _ = stream.NewCache(stream.CacheConfig{MaxAge: time.Hour})
				}
				for _, o := range objs {
					r, err := stream.NewReader(ctx, bytes.NewReader(o), p, stream.Config{Cache: cache, Workers: 1})
					if err != nil {
						b.Fatal(err)
					}
					// To the end, where the stream is authentic and its
					// buffers go back to the pool.
					if n, err := io.ReadFull(r, out); err != io.ErrUnexpectedEOF || n != len(pt) {
						b.Fatal(n, err)
					}
				}
			}
			b.ReportMetric(float64(p.decrypts)/float64(b.N), "kms-calls/op")
			b.ReportMetric(float64(objects*b.N)/b.Elapsed().Seconds(), "objects/s")
		})
	}
}
