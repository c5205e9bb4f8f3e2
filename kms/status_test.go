package kms

import (
	"context"
	"testing"
)

// TestGetStatus: coffer:GetStatus is an identity-policy action like any
// other, and the key counts are the caller's account's by state.
func TestGetStatus(t *testing.T) {
	s, root := newFormsService(t)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, root, &UserNameInput{UserName: "ops"}); err != nil {
		t.Fatal(err)
	}
	ops := chainUser("ops")
	if _, err := s.GetStatus(ctx, ops, &Empty{}); !isAccessDenied(err) {
		t.Fatalf("GetStatus without coffer:GetStatus: %v, want AccessDeniedException", err)
	}
	if _, err := s.PutUserPolicy(ctx, root, &UserPolicyInput{UserName: "ops", PolicyName: "status", PolicyDocument: `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"coffer:GetStatus","Resource":"*"}]}`}); err != nil {
		t.Fatal(err)
	}
	before, err := s.GetStatus(ctx, ops, &Empty{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.CreateKey(ctx, root, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DisableKey(ctx, root, &KeyIDInput{KeyId: k.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RunMaintenance(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := s.GetStatus(ctx, ops, &Empty{})
	if err != nil {
		t.Fatal(err)
	}
	if st.KeysByState[StateDisabled] != before.KeysByState[StateDisabled]+1 {
		t.Errorf("keys by state %v after disabling one more than %v", st.KeysByState, before.KeysByState)
	}
	if st.LastMaintenance == nil || st.LastMaintenance.Error != "" {
		t.Errorf("last maintenance %+v", st.LastMaintenance)
	}
	if len(st.Caches) != 6 || st.Region == "" {
		t.Errorf("caches %v region %q", st.Caches, st.Region)
	}
}
