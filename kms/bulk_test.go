package kms

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/keystore"
)

// TestBulkCreateKeysAsCreateKey holds the records BulkCreateKeys writes to
// what CreateKey writes for the same request: field for field after
// decoding (which checks each record's authentication), but for the key
// ID, the times and the material; the same index entries; and, after a
// restart over the store, a key that describes, encrypts and decrypts as
// the CreateKey one does.
func TestBulkCreateKeysAsCreateKey(t *testing.T) {
	e := newImportEnv(t)
	ctx := context.Background()
	const desc = "scale"
	made, err := e.s.CreateKey(ctx, e.c, &CreateKeyInput{Description: desc})
	if err != nil {
		t.Fatal(err)
	}
	want := made.KeyMetadata.KeyId
	var batches []int
	if err := e.s.BulkCreateKeys(ctx, e.c.Account, desc, 5, 2, func(n int) { batches = append(batches, n) }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(batches, []int{2, 4, 5}) {
		t.Fatalf("progress %v, want batches of 2", batches)
	}
	// Each bulk key's CreateKey record waits in the outbox (the CreateKey
	// call, without a transport, left none).
	pending, err := e.s.PendingAudits(ctx)
	if err != nil || len(pending) != 5 {
		t.Fatalf("%d outbox entries after 5 keys in bulk, %v", len(pending), err)
	}
	for _, p := range pending {
		var r struct {
			EventName, EventType string
			Resources            []struct{ ARN string }
			RequestParameters    map[string]string
		}
		if err := json.Unmarshal(p.Record, &r); err != nil || r.EventName != "CreateKey" || r.EventType != "AwsServiceEvent" ||
			len(r.Resources) != 1 || r.RequestParameters["description"] != desc || !strings.HasPrefix(p.ID, ServiceEventPrefix) {
			t.Fatalf("outbox entry %s: %s, %v", p.ID, p.Record, err)
		}
	}
	// Every key record, decoded (and so authenticated), and every index
	// entry, with the key's ID replaced by a placeholder.
	records := map[string]*keyRecord{}
	index := map[string][]string{}
	if err := e.s.store.View(ctx, func(tx keystore.Tx) error {
		var ids []string
		if err := tx.Scan(bucketKeys, "", "", func(id string, _ []byte) bool { ids = append(ids, id); return true }); err != nil {
			return err
		}
		for _, id := range ids {
			r, err := getKeyTx(tx, id)
			if err != nil {
				return err
			}
			records[id] = r
		}
		for _, b := range []string{bucketKeysByStore, bucketKeysDue, bucketKeyDueOf} {
			if err := tx.Scan(b, "", "", func(k string, v []byte) bool {
				for _, id := range ids {
					if strings.Contains(k, id) || strings.Contains(string(v), id) {
						index[id] = append(index[id], b+"|"+strings.ReplaceAll(k, id, "ID")+"|"+strings.ReplaceAll(string(v), id, "ID"))
					}
				}
				return true
			}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(records) != 6 {
		t.Fatalf("%d key records, want 6", len(records))
	}
	normal := func(r *keyRecord) string {
		c := *r
		c.ID, c.Created = "", time.Time{}
		c.Versions = slices.Clone(r.Versions)
		for i := range c.Versions {
			if len(c.Versions[i].MaterialID) != 64 || len(c.Versions[i].Wrapped) == 0 || !c.Versions[i].Created.Equal(r.Created) {
				t.Fatalf("key %s version %d: %+v", r.ID, i, c.Versions[i])
			}
			c.Versions[i].MaterialID, c.Versions[i].Wrapped, c.Versions[i].Created = "", nil, time.Time{}
		}
		raw, err := json.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	wantRec := normal(records[want])
	for id, r := range records {
		if id == want {
			continue
		}
		if got := normal(r); got != wantRec {
			t.Fatalf("bulk record %s:\n%s\nCreateKey's:\n%s", id, got, wantRec)
		}
		if !slices.Equal(index[id], index[want]) {
			t.Fatalf("bulk key %s index entries %q, CreateKey's %q", id, index[id], index[want])
		}
		if slices.Equal(r.Versions[0].Wrapped, records[want].Versions[0].Wrapped) {
			t.Fatal("two keys share wrapped material")
		}
	}
	// After a restart, each bulk key works as the CreateKey one does.
	s := e.open(t)
	for id := range records {
		d, err := s.DescribeKey(ctx, e.c, &KeyIDInput{KeyId: id})
		if err != nil {
			t.Fatal(err)
		}
		md, wmd := *d.KeyMetadata, *made.KeyMetadata
		md.KeyId, md.Arn, md.CreationDate, md.CurrentKeyMaterialId = "", "", nil, ""
		wmd.KeyId, wmd.Arn, wmd.CreationDate, wmd.CurrentKeyMaterialId = "", "", nil, ""
		if a, b := mustJSON(t, md), mustJSON(t, wmd); a != b {
			t.Fatalf("DescribeKey %s: %s, CreateKey's %s", id, a, b)
		}
		enc, err := s.Encrypt(ctx, e.c, &EncryptInput{KeyId: id, Plaintext: []byte("bulk")})
		if err != nil {
			t.Fatal(err)
		}
		dec, err := s.Decrypt(ctx, e.c, &DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		if err != nil || string(dec.Plaintext) != "bulk" || dec.KeyId != d.KeyMetadata.Arn {
			t.Fatalf("Decrypt %s: %+v %v", id, dec, err)
		}
	}
	if err := s.BulkCreateKeys(ctx, "1234", desc, 1, 1, nil); err == nil {
		t.Fatal("a bad account was accepted")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
