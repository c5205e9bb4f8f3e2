package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
)

func TestAliasesAndKeyIdForms(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	id := e.createKey("a")
	id2 := e.createKey("b")
	keyARN := "arn:aws:kms:us-east-1:111122223333:key/" + id
	must[*awskms.CreateAliasOutput](t)(c.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: &keyARN}))

	// Every KeyId form names the same key, for DescribeKey and Encrypt.
	for _, form := range []string{id, keyARN, "alias/app", "arn:aws:kms:us-east-1:111122223333:alias/app"} {
		d := must[*awskms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(form)}))
		if *d.KeyMetadata.KeyId != id {
			t.Fatalf("%s resolved to %s", form, *d.KeyMetadata.KeyId)
		}
		enc := must[*awskms.EncryptOutput](t)(c.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String(form), Plaintext: []byte("x")}))
		if *enc.KeyId != keyARN {
			t.Fatalf("Encrypt via %s used %s", form, *enc.KeyId)
		}
		must[*awskms.DecryptOutput](t)(c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, KeyId: aws.String(form)}))
	}
	for _, form := range []string{
		"alias/missing",
		"arn:aws:kms:us-east-1:111122223333:alias/missing",
		"arn:aws:kms:eu-west-1:111122223333:key/" + id,
		"00000000-0000-4000-8000-000000000000",
		"not-a-key",
		"arn:aws:kms:us-east-1:111122223333:key",
	} {
		_, err := c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String(form)})
		wantCode(t, err, "NotFoundException")
	}

	_, err := c.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: &id2})
	wantCode(t, err, "AlreadyExistsException")
	for name, code := range map[string]string{
		"app":                               "ValidationException",
		"alias/aws/s3":                      "NotAuthorizedException",
		"alias/has sp":                      "ValidationException",
		"alias/":                            "InvalidAliasNameException",
		"alias/" + strings.Repeat("x", 251): "ValidationException",
	} {
		_, err := c.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String(name), TargetKeyId: &id})
		if apiCode(err) != code {
			t.Errorf("CreateAlias(%q): %v, want %s", name, err, code)
		}
	}
	_, err = c.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/x"), TargetKeyId: aws.String("alias/app")})
	wantCode(t, err, "ValidationException")

	must[*awskms.UpdateAliasOutput](t)(c.UpdateAlias(ctx, &awskms.UpdateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: &id2}))
	d := must[*awskms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String("alias/app")}))
	if *d.KeyMetadata.KeyId != id2 {
		t.Fatal("UpdateAlias did not re-point")
	}
	_, err = c.UpdateAlias(ctx, &awskms.UpdateAliasInput{AliasName: aws.String("alias/none"), TargetKeyId: &id2})
	wantCode(t, err, "NotFoundException")

	// Paging and the KeyId filter.
	for i := range 5 {
		must[*awskms.CreateAliasOutput](t)(c.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String(fmt.Sprintf("alias/p%d", i)), TargetKeyId: &id}))
	}
	var names []string
	var marker *string
	for {
		out := must[*awskms.ListAliasesOutput](t)(c.ListAliases(ctx, &awskms.ListAliasesInput{Limit: aws.Int32(2), Marker: marker}))
		for _, a := range out.Aliases {
			names = append(names, *a.AliasName)
			if *a.AliasArn != "arn:aws:kms:us-east-1:111122223333:"+*a.AliasName || a.CreationDate == nil {
				t.Fatalf("alias entry %+v", a)
			}
		}
		if !out.Truncated {
			break
		}
		marker = out.NextMarker
	}
	if fmt.Sprint(names) != "[alias/app alias/p0 alias/p1 alias/p2 alias/p3 alias/p4]" {
		t.Fatalf("ListAliases pages: %v", names)
	}
	byKey := must[*awskms.ListAliasesOutput](t)(c.ListAliases(ctx, &awskms.ListAliasesInput{KeyId: &id2}))
	if len(byKey.Aliases) != 1 || *byKey.Aliases[0].AliasName != "alias/app" {
		t.Fatalf("ListAliases(KeyId): %+v", byKey.Aliases)
	}

	must[*awskms.DeleteAliasOutput](t)(c.DeleteAlias(ctx, &awskms.DeleteAliasInput{AliasName: aws.String("alias/app")}))
	_, err = c.DeleteAlias(ctx, &awskms.DeleteAliasInput{AliasName: aws.String("alias/app")})
	wantCode(t, err, "NotFoundException")
	must[*awskms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &id2}))

	// 50 aliases per key.
	for i := 5; i < 50; i++ {
		must[*awskms.CreateAliasOutput](t)(c.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String(fmt.Sprintf("alias/p%d", i)), TargetKeyId: &id}))
	}
	_, err = c.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/one-too-many"), TargetKeyId: &id})
	wantCode(t, err, "LimitExceededException")
}

func TestRestartKeepsEverything(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	id := e.createKey("durable")
	must[*awskms.CreateAliasOutput](t)(c.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/durable"), TargetKeyId: &id}))
	must[*awskms.TagResourceOutput](t)(c.TagResource(ctx, &awskms.TagResourceInput{KeyId: &id, Tags: tags("env", "prod")}))
	enc := must[*awskms.EncryptOutput](t)(c.Encrypt(ctx, &awskms.EncryptInput{KeyId: aws.String("alias/durable"), Plaintext: []byte("kept"), EncryptionContext: map[string]string{"a": "b"}}))
	must[*awskms.RotateKeyOnDemandOutput](t)(c.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: &id}))
	disabled := e.createKey("disabled")
	must[*awskms.DisableKeyOutput](t)(c.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: &disabled}))

	e.restart()
	c = e.client
	dec := must[*awskms.DecryptOutput](t)(c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"a": "b"}}))
	if string(dec.Plaintext) != "kept" {
		t.Fatal("ciphertext from before the restart")
	}
	d := must[*awskms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String("alias/durable")}))
	if *d.KeyMetadata.KeyId != id || *d.KeyMetadata.Description != "durable" {
		t.Fatal("alias after restart")
	}
	tl := must[*awskms.ListResourceTagsOutput](t)(c.ListResourceTags(ctx, &awskms.ListResourceTagsInput{KeyId: &id}))
	if len(tl.Tags) != 1 || *tl.Tags[0].TagValue != "prod" {
		t.Fatal("tags after restart")
	}
	rot := must[*awskms.ListKeyRotationsOutput](t)(c.ListKeyRotations(ctx, &awskms.ListKeyRotationsInput{KeyId: &id}))
	if len(rot.Rotations) != 1 {
		t.Fatal("rotations after restart")
	}
	d = must[*awskms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &disabled}))
	if d.KeyMetadata.Enabled {
		t.Fatal("disabled key came back enabled")
	}
	enc2 := must[*awskms.EncryptOutput](t)(c.Encrypt(ctx, &awskms.EncryptInput{KeyId: &id, Plaintext: []byte("new")}))
	must[*awskms.DecryptOutput](t)(c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc2.CiphertextBlob}))
}
