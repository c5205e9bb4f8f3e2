package audit_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/coffer-kms/coffer/audit"
)

func Example() {
	dir, _ := os.MkdirTemp("", "audit")
	defer os.RemoveAll(dir)

	// The server keeps the signing key sealed; its public half goes beside
	// the trail for whoever verifies it.
	key, err := audit.GenerateSigningKey()
	if err != nil {
		log.Fatal(err)
	}
	if err := audit.WritePublicKey(dir, &key.PublicKey); err != nil {
		log.Fatal(err)
	}

	w, err := audit.Open(audit.Config{Dir: dir, Signer: key})
	if err != nil {
		log.Fatal(err)
	}
	r := &audit.Record{
		EventName:    "Decrypt",
		AWSRegion:    "us-east-1",
		UserIdentity: audit.UserIdentity{Type: "IAMUser", ARN: "arn:aws:iam::111122223333:user/alice", AccountID: "111122223333"},
		// Key ID, encryption context, algorithm: never the plaintext.
		RequestParameters: []byte(`{"encryptionContext":{"tenant":"acme"},"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}`),
		RequestID:         "b1a4c7e2-0000-4000-8000-000000000001",
		EventID:           audit.NewEventID(),
		ReadOnly:          true,
		Resources:         []audit.Resource{{ARN: "arn:aws:kms:us-east-1:111122223333:key/k1", Type: audit.ResourceTypeKey, AccountID: "111122223333"}},
	}
	if err := w.Append(context.Background(), r); err != nil {
		// errors.Is(err, audit.ErrUnavailable): refuse the call.
		log.Fatal(err)
	}
	if err := w.Close(); err != nil { // seals the chain with a final digest
		log.Fatal(err)
	}

	pub, err := audit.ReadPublicKey(dir)
	if err != nil {
		log.Fatal(err)
	}
	rep, err := audit.Verify(dir, pub)
	if err != nil {
		log.Fatal(err) // rep.Bad names the first bad record
	}
	fmt.Printf("%d records, %d digest, %d unsealed\n", rep.Records, rep.Digests, rep.Unsealed)

	audit.Query(dir, audit.Filter{KeyID: "k1"}, func(r *audit.Record) error {
		fmt.Println(r.Seq, r.EventName, r.UserIdentity.ARN)
		return nil
	})
	// Output:
	// 2 records, 1 digest, 0 unsealed
	// 1 Decrypt arn:aws:iam::111122223333:user/alice
}
