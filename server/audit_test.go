package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/middleware"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	smithymw "github.com/aws/smithy-go/middleware"

	"github.com/coffer-kms/coffer/audit"
)

// TestAuditEveryCallOnceWithoutSecrets sends known plaintexts and data keys
// through every operation, then checks that each call has exactly one
// record with the right fields and that no secret is anywhere in the audit
// files or the server's logs.
func TestAuditEveryCallOnceWithoutSecrets(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	e.principal(t, testAccount, "x", "") // the grantee below: grants name principals that exist (issue 19.6)
	secretPT := []byte("PLAINTEXT-CANARY-7f3a9c")
	var secrets [][]byte
	secrets = append(secrets, secretPT)
	ids := map[string]string{} // request ID → operation
	note := func(op string, md smithymw.Metadata) {
		id, ok := middleware.GetRequestIDMetadata(md)
		if !ok || id == "" {
			t.Fatalf("%s: no request ID", op)
		}
		ids[id] = op
	}
	key := must[*awskms.CreateKeyOutput](t)(c.CreateKey(ctx, &awskms.CreateKeyInput{Description: aws.String("audited")}))
	note("CreateKey", key.ResultMetadata)
	id := key.KeyMetadata.KeyId
	ec := map[string]string{"purpose": "audit-test"}
	enc := must[*awskms.EncryptOutput](t)(c.Encrypt(ctx, &awskms.EncryptInput{KeyId: id, Plaintext: secretPT, EncryptionContext: ec}))
	note("Encrypt", enc.ResultMetadata)
	dec := must[*awskms.DecryptOutput](t)(c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec}))
	note("Decrypt", dec.ResultMetadata)
	dk := must[*awskms.GenerateDataKeyOutput](t)(c.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{KeyId: id, KeySpec: types.DataKeySpecAes256}))
	note("GenerateDataKey", dk.ResultMetadata)
	secrets = append(secrets, dk.Plaintext)
	re := must[*awskms.ReEncryptOutput](t)(c.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ec, DestinationKeyId: id}))
	note("ReEncrypt", re.ResultMetadata)
	rnd := must[*awskms.GenerateRandomOutput](t)(c.GenerateRandom(ctx, &awskms.GenerateRandomInput{NumberOfBytes: aws.Int32(32)}))
	note("GenerateRandom", rnd.ResultMetadata)
	secrets = append(secrets, rnd.Plaintext)
	wo := must[*awskms.GenerateDataKeyWithoutPlaintextOutput](t)(c.GenerateDataKeyWithoutPlaintext(ctx, &awskms.GenerateDataKeyWithoutPlaintextInput{KeyId: id, KeySpec: types.DataKeySpecAes256}))
	note("GenerateDataKeyWithoutPlaintext", wo.ResultMetadata)
	d := must[*awskms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: id}))
	note("DescribeKey", d.ResultMetadata)
	g := must[*awskms.CreateGrantOutput](t)(c.CreateGrant(ctx, &awskms.CreateGrantInput{KeyId: id, GranteePrincipal: aws.String("arn:aws:iam::111122223333:user/x"), Operations: []types.GrantOperation{types.GrantOperationDecrypt}}))
	note("CreateGrant", g.ResultMetadata)
	secrets = append(secrets, []byte(*g.GrantToken))
	_, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String("alias/missing"), Plaintext: secretPT})
	wantCode(t, err, "NotFoundException")
	// A call refused before authentication is audited too.
	status, _, _, _ := e.send(t, rawRequest{target: "TrentService.Encrypt", body: `{"KeyId":"` + *id + `","Plaintext":"` + base64.StdEncoding.EncodeToString(secretPT) + `"}`, secret: "wrongwrongwrongwrongwrongwrongwrongwrong"})
	if status != 400 {
		t.Fatal("bad signature accepted")
	}
	e.stop() // seals the chain

	dir := filepath.Join(e.dir, "audit")
	rep, err := audit.Verify(dir, &e.signer.PublicKey)
	if err != nil || rep.Unsealed != 0 {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	count := map[string]int{}
	eventIDs := map[string]bool{}
	var errorsSeen, unauthenticated int
	audit.Query(dir, audit.Filter{}, func(r *audit.Record) error {
		if op, ok := ids[r.RequestID]; ok {
			count[r.RequestID]++
			if r.EventName != op || r.EventSource != "kms.amazonaws.com" || r.AWSRegion != "us-east-1" || r.EventType != "AwsApiCall" ||
				r.UserIdentity.ARN != "arn:aws:iam::111122223333:user/admin" || r.UserIdentity.AccessKeyID == "" || r.SourceIPAddress != "127.0.0.1" || r.EventID == "" {
				t.Errorf("%s record: %+v", op, r)
			}
			if op != "GenerateRandom" && (len(r.Resources) != 1 || r.Resources[0].ARN != *key.KeyMetadata.Arn || r.Resources[0].Type != "AWS::KMS::Key" ||
				r.Resources[0].AccountID != "111122223333") {
				t.Errorf("%s resources %+v", op, r.Resources)
			}
			if _, err := time.Parse(time.RFC3339, r.EventTime); err != nil || len(r.EventID) != 36 || eventIDs[r.EventID] {
				t.Errorf("%s record: event time %q, event ID %q (repeated: %v)", op, r.EventTime, r.EventID, eventIDs[r.EventID])
			}
			eventIDs[r.EventID] = true
			if op == "Encrypt" && !bytes.Contains(r.RequestParameters, []byte(`"encryptionContext":{"purpose":"audit-test"}`)) {
				t.Errorf("Encrypt parameters %s", r.RequestParameters)
			}
			if op == "CreateKey" && !bytes.Contains(r.ResponseElements, []byte(*id)) {
				t.Errorf("CreateKey response elements %s", r.ResponseElements)
			}
		}
		if r.ErrorCode == "NotFoundException" && r.EventName == "Encrypt" {
			errorsSeen++
		}
		if r.ErrorCode == "InvalidSignatureException" && r.UserIdentity.Type == "Unknown" {
			unauthenticated++
		}
		return nil
	})
	for rid, op := range ids {
		if count[rid] != 1 {
			t.Errorf("%s (%s) has %d records, want 1", op, rid, count[rid])
		}
	}
	if errorsSeen != 1 || unauthenticated != 1 {
		t.Errorf("failed calls audited: %d NotFound, %d unauthenticated", errorsSeen, unauthenticated)
	}
	all := e.trailAndLogs()
	for _, s := range secrets {
		for _, form := range [][]byte{s, []byte(base64.StdEncoding.EncodeToString(s)), []byte(hex.EncodeToString(s))} {
			if bytes.Contains(all, form) {
				t.Fatalf("a secret (%d bytes) appears in the audit trail or the logs", len(s))
			}
		}
	}
}
