package server_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"path/filepath"
	"testing"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/coffer-kms/coffer/audit"
)

// TestAsymAudited: each asymmetric and HMAC call is audited, readOnly and
// with its allowed members, and no message, signature, MAC, shared secret
// or private key reaches the trail or the logs, raw or base64-encoded.
func TestAsymAudited(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	msg := []byte("ASYM-MESSAGE-CANARY-41c7e2")
	secrets := [][]byte{msg}
	sv := must[*awskms.CreateKeyOutput](t)(c.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})).KeyMetadata.KeyId
	ka := must[*awskms.CreateKeyOutput](t)(c.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeKeyAgreement})).KeyMetadata.KeyId
	hm := must[*awskms.CreateKeyOutput](t)(c.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})).KeyMetadata.KeyId
	sym := e.createKey("wrapping")

	sig := must[*awskms.SignOutput](t)(c.Sign(ctx, &awskms.SignInput{KeyId: sv, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256}))
	secrets = append(secrets, sig.Signature)
	must[*awskms.VerifyOutput](t)(c.Verify(ctx, &awskms.VerifyInput{KeyId: sv, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, Signature: sig.Signature}))
	must[*awskms.GetPublicKeyOutput](t)(c.GetPublicKey(ctx, &awskms.GetPublicKeyInput{KeyId: sv}))
	mac := must[*awskms.GenerateMacOutput](t)(c.GenerateMac(ctx, &awskms.GenerateMacInput{KeyId: hm, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256}))
	secrets = append(secrets, mac.Mac)
	must[*awskms.VerifyMacOutput](t)(c.VerifyMac(ctx, &awskms.VerifyMacInput{KeyId: hm, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Mac: mac.Mac}))
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	peerDER, _ := x509.MarshalPKIXPublicKey(peer.PublicKey())
	z := must[*awskms.DeriveSharedSecretOutput](t)(c.DeriveSharedSecret(ctx, &awskms.DeriveSharedSecretInput{KeyId: ka, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peerDER}))
	secrets = append(secrets, z.SharedSecret)
	pair := must[*awskms.GenerateDataKeyPairOutput](t)(c.GenerateDataKeyPair(ctx, &awskms.GenerateDataKeyPairInput{KeyId: &sym, KeyPairSpec: types.DataKeyPairSpecEccNistP256}))
	secrets = append(secrets, pair.PrivateKeyPlaintext)
	must[*awskms.GenerateDataKeyPairWithoutPlaintextOutput](t)(c.GenerateDataKeyPairWithoutPlaintext(ctx, &awskms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: &sym, KeyPairSpec: types.DataKeyPairSpecEccNistP256}))
	// A failing call is audited without its message too.
	_, err := c.VerifyMac(ctx, &awskms.VerifyMacInput{KeyId: hm, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Mac: sig.Signature})
	wantCode(t, err, "KMSInvalidMacException")
	e.stop()

	all := e.trailAndLogs()
	for i, s := range secrets {
		if bytes.Contains(all, s) || bytes.Contains(all, []byte(base64.StdEncoding.EncodeToString(s))) {
			t.Errorf("secret %d reached the trail or the logs", i)
		}
	}
	seen := map[string]int{}
	audit.Query(filepath.Join(e.dir, "audit"), audit.Filter{}, func(r *audit.Record) error {
		seen[r.EventName]++
		switch r.EventName {
		case "Sign", "Verify", "GetPublicKey", "GenerateMac", "VerifyMac", "DeriveSharedSecret", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext":
			if !r.ReadOnly {
				t.Errorf("%s: readOnly false", r.EventName)
			}
			if r.EventName == "Sign" && !bytes.Contains(r.RequestParameters, []byte(`"signingAlgorithm":"ECDSA_SHA_256"`)) {
				t.Errorf("Sign parameters %s", r.RequestParameters)
			}
			if r.EventName == "GenerateDataKeyPair" && !bytes.Contains(r.RequestParameters, []byte(`"keyPairSpec":"ECC_NIST_P256"`)) {
				t.Errorf("GenerateDataKeyPair parameters %s", r.RequestParameters)
			}
		}
		return nil
	})
	for op, n := range map[string]int{"Sign": 1, "Verify": 1, "GetPublicKey": 1, "GenerateMac": 1, "VerifyMac": 2, "DeriveSharedSecret": 1,
		"GenerateDataKeyPair": 1, "GenerateDataKeyPairWithoutPlaintext": 1} {
		if seen[op] != n {
			t.Errorf("%s audited %d times, want %d", op, seen[op], n)
		}
	}
}
