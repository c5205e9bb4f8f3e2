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
func startCofferService(t *testing.T) (*kms.Client, *cofferkms.Service) {
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
