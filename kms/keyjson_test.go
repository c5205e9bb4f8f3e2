package kms

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/policy"
)

// keyJSONRecords are records of every shape kms writes, each member set
// somewhere, with awkward strings.
func keyJSONRecords() []*keyRecord {
	t0 := time.Date(2026, 12, 7, 21, 41, 53, 409685406, time.UTC)
	full := &keyRecord{
		ID: "00002366-a48e-47e7-8b03-c559596ab8a9", Account: "111122223333", Region: "eu-west-1", Created: t0,
		Description: "tab\there, \"quoted\", back\\slash, é ü 日本, newline\n", Usage: "ENCRYPT_DECRYPT", Spec: "SYMMETRIC_DEFAULT",
		Origin: "EXTERNAL", Manager: "CUSTOMER", State: StatePendingDeletion, DeletionDate: t0.Add(7 * 24 * time.Hour),
		PendingWindowDays: 7, Policy: string(policy.DefaultKeyPolicy("111122223333")),
		Tags:            []Tag{{TagKey: "k", TagValue: "v"}, {TagKey: "empty", TagValue: ""}, {TagKey: "ünï", TagValue: "/slash/"}},
		Versions:        []keyVersion{{MaterialID: strings.Repeat("ab", 32), Wrapped: []byte{1, 2, 3, 250}, Created: t0}, {MaterialID: strings.Repeat("cd", 32), Created: t0.Add(time.Hour), RotationType: "ON_DEMAND", HSMKey: "hsm-1", Description: "imported", Imported: t0.Add(2 * time.Hour), ExpirationModel: "KEY_MATERIAL_EXPIRES", ValidTo: t0.Add(48 * time.Hour), Wrapped: []byte{}}},
		RotationEnabled: true, RotationPeriodDays: 365, NextRotation: t0.AddDate(1, 0, 0), OnDemandRotations: 3, LastOnDemand: t0.Add(-time.Minute),
		CustomKeyStoreID: "cks-1234567890abcdef0", ClusterID: "cluster-1", AvailableState: StateEnabled,
		PendingMaterial: &keyVersion{MaterialID: strings.Repeat("ef", 32), Wrapped: []byte("pending")},
		PrimaryRegion:   "us-east-1", ReplicaRegions: []string{"eu-west-1", "ap-south-1"},
	}
	minimal := &keyRecord{ID: "1234abcd-12ab-34cd-56ef-1234567890ab", Account: "111122223333", Region: "us-east-1", Created: t0.In(time.FixedZone("", 3600)), State: StateEnabled, Versions: []keyVersion{}}
	legacy := &keyRecord{ID: "x", ExpirationModel: "KEY_MATERIAL_EXPIRES", ValidTo: t0, Tags: []Tag{}, ReplicaRegions: []string{}}
	return []*keyRecord{full, minimal, legacy}
}

// TestDecodeKeyJSON: what json.Marshal writes for each shape of record is
// decoded by the one-pass decoder (not left to the fallback), into the
// values encoding/json gives.
func TestDecodeKeyJSON(t *testing.T) {
	for i, r := range keyJSONRecords() {
		raw, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var fast, std keyRecord
		if !decodeKeyJSON(raw, &fast) {
			t.Fatalf("record %d: the one-pass decoder gave up on %s", i, raw)
		}
		if err := json.Unmarshal(raw, &std); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, std) {
			t.Fatalf("record %d:\n one pass %+v\n json     %+v", i, fast, std)
		}
	}
}

// TestDecodeKeyJSONGivesUp: what the one-pass decoder does not expect is
// left to encoding/json, which decodes (or refuses) it.
func TestDecodeKeyJSONGivesUp(t *testing.T) {
	for _, raw := range []string{
		`{"ID":"x"}`, // encoding/json matches names without regard to case
		`{"id":"x","id":"y"}`,
		`{"id":nullx}`,
		`[null]`,
		`{"id":"\u0041"}`,
		`{"description":"a<b"}` + " x",
		`{"pendingWindowDays":7.0}`,
		`{"pendingWindowDays":1e1}`,
		`{"id":"` + "\xff" + `"}`,
		`{"versions":[{"wrapped":"AQ\u003d\u003d"}]}`,
		`{"unknown":1}`,
		`{"id":"x"`,
		`[]`,
	} {
		var r keyRecord
		if decodeKeyJSON([]byte(raw), &r) {
			t.Errorf("decoded %s", raw)
		}
	}
	r, err := decodeKey("x", []byte(`{"ID":"x","id":"y","versions":[{"wrapped":"AQ\u003d\u003d"}]}`))
	if err != nil || r.ID != "y" || len(r.Versions) != 1 || string(r.Versions[0].Wrapped) != "\x01" {
		t.Fatalf("fallback: %+v, %v", r, err)
	}
}

// FuzzDecodeKeyJSON: whatever the one-pass decoder decodes, encoding/json
// decodes too, into the same values.
func FuzzDecodeKeyJSON(f *testing.F) {
	for _, r := range keyJSONRecords() {
		raw, _ := json.Marshal(r)
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var fast, std keyRecord
		if !decodeKeyJSON(raw, &fast) {
			return
		}
		if err := json.Unmarshal(raw, &std); err != nil {
			t.Fatalf("decoded what encoding/json refuses (%v): %q", err, raw)
		}
		if !reflect.DeepEqual(fast, std) {
			t.Fatalf("%q:\n one pass %+v\n json     %+v", raw, fast, std)
		}
	})
}
