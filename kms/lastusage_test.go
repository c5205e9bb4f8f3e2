package kms

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// TestKeyLastUsage records each kind of cryptographic operation as the
// server reports it, reads it back before and after a flush, and after a
// restart over the same store.
func TestKeyLastUsage(t *testing.T) {
	e := newImportEnv(t)
	ctx := context.Background()
	sym, _ := e.s.CreateKey(ctx, e.c, &CreateKeyInput{})
	mac, _ := e.s.CreateKey(ctx, e.c, &CreateKeyInput{KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC"})
	sig, _ := e.s.CreateKey(ctx, e.c, &CreateKeyInput{KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY"})
	get := func(s *Service, id string) *GetKeyLastUsageOutput {
		t.Helper()
		out, err := s.GetKeyLastUsage(ctx, e.c, &KeyIDInput{KeyId: id})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	symID := sym.KeyMetadata.KeyId
	if u := get(e.s, symID); u.KeyLastUsage.Operation != "" || u.KeyId != symID || u.TrackingStartDate == nil || u.KeyCreationDate == nil {
		t.Fatalf("unused key: %+v", u)
	}
	for _, c := range []struct {
		key *CreateKeyOutput
		op  string
	}{
		{sym, "Encrypt"}, {sym, "Decrypt"}, {sym, "GenerateDataKey"}, {sym, "ReEncrypt"}, {sym, "GenerateDataKeyWithoutPlaintext"},
		{mac, "GenerateMac"}, {mac, "VerifyMac"}, {sig, "Sign"}, {sig, "Verify"},
	} {
		e.clock.advance(time.Second)
		arn := c.key.KeyMetadata.Arn
		var ev EventID
		copy(ev[:], "evt-"+c.op)
		e.s.RecordLastUsage([]string{arn}, c.op, "req-"+c.op, &ev)
		u := get(e.s, c.key.KeyMetadata.KeyId).KeyLastUsage
		if u.Operation != c.op || u.KmsRequestId != "req-"+c.op || !strings.HasPrefix(u.CloudTrailEventId, "evt-"+c.op) || !u.Timestamp.Equal(e.clock.Now()) {
			t.Fatalf("after %s: %+v", c.op, u)
		}
	}
	// Not tracked: management operations, other Regions.
	e.s.RecordLastUsage([]string{sym.KeyMetadata.Arn}, "DescribeKey", "r", nil)
	e.s.RecordLastUsage([]string{"arn:aws:kms:eu-west-1:111122223333:key/" + symID}, "Encrypt", "r", nil)
	if u := get(e.s, symID).KeyLastUsage; u.Operation != "GenerateDataKeyWithoutPlaintext" {
		t.Fatalf("an untracked call changed the last use: %+v", u)
	}
	if err := e.s.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	want := get(e.s, sig.KeyMetadata.KeyId)
	e.s.Close()
	s2 := e.open(t)
	got := get(s2, sig.KeyMetadata.KeyId)
	if got.KeyLastUsage.Operation != "Verify" || !got.KeyLastUsage.Timestamp.Equal(want.KeyLastUsage.Timestamp.Time) ||
		!strings.HasPrefix(got.KeyLastUsage.CloudTrailEventId, "evt-Verify") || !got.TrackingStartDate.Equal(want.TrackingStartDate.Time) {
		t.Fatalf("after a restart: %+v, want %+v", got, want)
	}
	// An older flushed use does not replace a newer stored one.
	s2.last.m = map[string]memUse{sig.KeyMetadata.KeyId: {op: "Sign", at: e.clock.Now().Add(-time.Hour)}}
	s2.FlushUsage(ctx)
	if u := get(s2, sig.KeyMetadata.KeyId).KeyLastUsage; u.Operation != "Verify" {
		t.Fatalf("an older use replaced the newer: %+v", u)
	}
}

// TestTracksLastUseIsAWSs: the catalogue's TracksLastUse rows are exactly
// the values of AWS's KeyLastUsageTrackingOperation enum (the SDK's
// generated model) that Coffer serves.
func TestTracksLastUseIsAWSs(t *testing.T) {
	aws := map[string]bool{}
	for _, v := range kmstypes.KeyLastUsageTrackingOperation("").Values() {
		if _, served := LookupOperation(APIKMS, string(v)); served {
			aws[string(v)] = true
		}
	}
	if len(aws) == 0 || !maps.Equal(aws, tracksLastUse) {
		t.Fatalf("catalogue tracks %v, AWS's enum (served) %v", tracksLastUse, aws)
	}
}
