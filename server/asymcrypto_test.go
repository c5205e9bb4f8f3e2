package server_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"github.com/coffer-kms/coffer/engine"
	"hash"
	"testing"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// TestAsymEncryptDecrypt: RSAES_OAEP_SHA_1 and _256 on every RSA size, up
// to AWS's per-size plaintext limits (botocore EncryptRequest.Plaintext),
// with ciphertexts the standard library made from GetPublicKey's key
// decrypted by the service and the service's own round-tripped.
func TestAsymEncryptDecrypt(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	limits := map[types.KeySpec][2]int{ // OAEP-SHA1, OAEP-SHA256
		types.KeySpecRsa2048: {214, 190}, types.KeySpecRsa3072: {342, 318}, types.KeySpecRsa4096: {470, 446},
	}
	sym := e.createKey("symmetric")
	for _, spec := range []types.KeySpec{types.KeySpecRsa2048, types.KeySpecRsa3072, types.KeySpecRsa4096} {
		key := must[*awskms.CreateKeyOutput](t)(c.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: spec, KeyUsage: types.KeyUsageTypeEncryptDecrypt}))
		id := key.KeyMetadata.KeyId
		want := []types.EncryptionAlgorithmSpec{types.EncryptionAlgorithmSpecRsaesOaepSha1, types.EncryptionAlgorithmSpecRsaesOaepSha256}
		if len(key.KeyMetadata.EncryptionAlgorithms) != 2 || key.KeyMetadata.EncryptionAlgorithms[0] != want[0] || key.KeyMetadata.EncryptionAlgorithms[1] != want[1] {
			t.Fatalf("%s: EncryptionAlgorithms %v", spec, key.KeyMetadata.EncryptionAlgorithms)
		}
		pubOut := must[*awskms.GetPublicKeyOutput](t)(c.GetPublicKey(ctx, &awskms.GetPublicKeyInput{KeyId: id}))
		pubAny, err := x509.ParsePKIXPublicKey(pubOut.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		pub := pubAny.(*rsa.PublicKey)
		for i, alg := range want {
			max := limits[spec][i]
			newHash := map[int]func() hash.Hash{0: sha1.New, 1: sha256.New}[i]
			pt := bytes.Repeat([]byte{0x5a}, max)
			enc := must[*awskms.EncryptOutput](t)(c.Encrypt(ctx, &awskms.EncryptInput{KeyId: id, Plaintext: pt, EncryptionAlgorithm: alg}))
			if enc.EncryptionAlgorithm != alg || len(enc.CiphertextBlob) != pub.Size() {
				t.Fatalf("%s %s: Encrypt %v, %d bytes", spec, alg, enc.EncryptionAlgorithm, len(enc.CiphertextBlob))
			}
			dec := must[*awskms.DecryptOutput](t)(c.Decrypt(ctx, &awskms.DecryptInput{KeyId: id, CiphertextBlob: enc.CiphertextBlob, EncryptionAlgorithm: alg}))
			if !bytes.Equal(dec.Plaintext, pt) || dec.EncryptionAlgorithm != alg {
				t.Fatalf("%s %s: Decrypt", spec, alg)
			}
			// The independent encrypter: the standard library, from the
			// public key.
			local, err := rsa.EncryptOAEP(newHash(), rand.Reader, pub, []byte("from outside"), nil)
			if err != nil {
				t.Fatal(err)
			}
			dec = must[*awskms.DecryptOutput](t)(c.Decrypt(ctx, &awskms.DecryptInput{KeyId: id, CiphertextBlob: local, EncryptionAlgorithm: alg}))
			if string(dec.Plaintext) != "from outside" {
				t.Fatalf("%s %s: Decrypt of a stdlib ciphertext", spec, alg)
			}
			// One byte over AWS's limit.
			_, err = c.Encrypt(ctx, &awskms.EncryptInput{KeyId: id, Plaintext: append(pt, 1), EncryptionAlgorithm: alg})
			wantCode(t, err, "ValidationException")
			// The other OAEP hash does not open it.
			_, err = c.Decrypt(ctx, &awskms.DecryptInput{KeyId: id, CiphertextBlob: local, EncryptionAlgorithm: want[1-i]})
			wantCode(t, err, "InvalidCiphertextException")
		}
		if spec != types.KeySpecRsa2048 {
			continue
		}
		alg := types.EncryptionAlgorithmSpecRsaesOaepSha256
		enc := must[*awskms.EncryptOutput](t)(c.Encrypt(ctx, &awskms.EncryptInput{KeyId: id, Plaintext: []byte("asym"), EncryptionAlgorithm: alg}))
		// An RSA ciphertext whose first byte is a Coffer blob version (2 in 256
		// of them) frames as a symmetric blob naming a random key, which is
		// answered as an unknown key is (AccessDeniedException): take one that
		// does not, as almost every RSA ciphertext does not.
		for enc.CiphertextBlob[0] == engine.BlobVersion || enc.CiphertextBlob[0] == engine.HSMBlobVersion {
			enc = must[*awskms.EncryptOutput](t)(c.Encrypt(ctx, &awskms.EncryptInput{KeyId: id, Plaintext: []byte("asym"), EncryptionAlgorithm: alg}))
		}
		// Without KeyId an RSA ciphertext names no key.
		_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionAlgorithm: alg})
		wantCode(t, err, "InvalidCiphertextException")
		// Without an algorithm: SYMMETRIC_DEFAULT, incompatible with RSA.
		_, err = c.Decrypt(ctx, &awskms.DecryptInput{KeyId: id, CiphertextBlob: enc.CiphertextBlob})
		wantCode(t, err, "InvalidKeyUsageException")
		_, err = c.Encrypt(ctx, &awskms.EncryptInput{KeyId: id, Plaintext: []byte("x")})
		wantCode(t, err, "InvalidKeyUsageException")
		_, err = c.Encrypt(ctx, &awskms.EncryptInput{KeyId: &sym, Plaintext: []byte("x"), EncryptionAlgorithm: alg})
		wantCode(t, err, "InvalidKeyUsageException")
		// An encryption context is for symmetric keys only.
		_, err = c.Encrypt(ctx, &awskms.EncryptInput{KeyId: id, Plaintext: []byte("x"), EncryptionAlgorithm: alg, EncryptionContext: map[string]string{"a": "b"}})
		wantCode(t, err, "ValidationException")
		// ReEncrypt RSA → symmetric → RSA.
		re := must[*awskms.ReEncryptOutput](t)(c.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceKeyId: id,
			SourceEncryptionAlgorithm: alg, DestinationKeyId: &sym}))
		if re.SourceEncryptionAlgorithm != alg || re.DestinationEncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault {
			t.Fatalf("ReEncrypt algorithms %s %s", re.SourceEncryptionAlgorithm, re.DestinationEncryptionAlgorithm)
		}
		back := must[*awskms.ReEncryptOutput](t)(c.ReEncrypt(ctx, &awskms.ReEncryptInput{CiphertextBlob: re.CiphertextBlob, DestinationKeyId: id,
			DestinationEncryptionAlgorithm: alg}))
		dec := must[*awskms.DecryptOutput](t)(c.Decrypt(ctx, &awskms.DecryptInput{KeyId: id, CiphertextBlob: back.CiphertextBlob, EncryptionAlgorithm: alg}))
		if string(dec.Plaintext) != "asym" {
			t.Fatal("ReEncrypt lost the plaintext")
		}
	}
}

// TestDeriveSharedSecret: ECDH on each NIST curve, the secret checked
// against crypto/ecdh on the caller's side with GetPublicKey's key;
// invalid and wrong-curve peer keys are ValidationException.
func TestDeriveSharedSecret(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	curves := map[types.KeySpec]ecdh.Curve{types.KeySpecEccNistP256: ecdh.P256(), types.KeySpecEccNistP384: ecdh.P384(), types.KeySpecEccNistP521: ecdh.P521()}
	for _, spec := range []types.KeySpec{types.KeySpecEccNistP256, types.KeySpecEccNistP384, types.KeySpecEccNistP521} {
		key := must[*awskms.CreateKeyOutput](t)(c.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: spec, KeyUsage: types.KeyUsageTypeKeyAgreement}))
		id := key.KeyMetadata.KeyId
		if len(key.KeyMetadata.KeyAgreementAlgorithms) != 1 || key.KeyMetadata.KeyAgreementAlgorithms[0] != types.KeyAgreementAlgorithmSpecEcdh {
			t.Fatalf("KeyAgreementAlgorithms %v", key.KeyMetadata.KeyAgreementAlgorithms)
		}
		pub := must[*awskms.GetPublicKeyOutput](t)(c.GetPublicKey(ctx, &awskms.GetPublicKeyInput{KeyId: id}))
		kmsPub, err := x509.ParsePKIXPublicKey(pub.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		kmsECDH, err := kmsPub.(*ecdsa.PublicKey).ECDH()
		if err != nil {
			t.Fatal(err)
		}
		mine, _ := curves[spec].GenerateKey(rand.Reader)
		myDER, _ := x509.MarshalPKIXPublicKey(mine.PublicKey())
		out := must[*awskms.DeriveSharedSecretOutput](t)(c.DeriveSharedSecret(ctx, &awskms.DeriveSharedSecretInput{KeyId: id,
			KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: myDER}))
		want, _ := mine.ECDH(kmsECDH)
		if !bytes.Equal(out.SharedSecret, want) || out.KeyAgreementAlgorithm != types.KeyAgreementAlgorithmSpecEcdh || out.KeyOrigin != types.OriginTypeAwsKms {
			t.Fatalf("%s: the shared secret differs from crypto/ecdh's", spec)
		}
		// Another curve's key, an Ed25519 key, garbage, a point off the curve.
		other := ecdh.P256()
		if spec == types.KeySpecEccNistP256 {
			other = ecdh.P384()
		}
		o, _ := other.GenerateKey(rand.Reader)
		otherDER, _ := x509.MarshalPKIXPublicKey(o.PublicKey())
		edPub, _, _ := ed25519.GenerateKey(rand.Reader)
		edDER, _ := x509.MarshalPKIXPublicKey(edPub)
		offCurve := bytes.Clone(myDER)
		offCurve[len(offCurve)-1] ^= 1
		for name, bad := range map[string][]byte{"other curve": otherDER, "Ed25519": edDER, "garbage": []byte("not a key"), "off the curve": offCurve,
			"trailing bytes": append(bytes.Clone(myDER), 0)} {
			_, err := c.DeriveSharedSecret(ctx, &awskms.DeriveSharedSecretInput{KeyId: id, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: bad})
			if apiCode(err) != "ValidationException" {
				t.Errorf("%s: peer key %s: %v", spec, name, err)
			}
		}
		_, err = c.DeriveSharedSecret(ctx, &awskms.DeriveSharedSecretInput{KeyId: id, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: make([]byte, 8193)})
		wantCode(t, err, "ValidationException")
	}
	// A SIGN_VERIFY key does not agree keys.
	sv := must[*awskms.CreateKeyOutput](t)(c.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})).KeyMetadata.KeyId
	p, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&p.PublicKey)
	_, err := c.DeriveSharedSecret(ctx, &awskms.DeriveSharedSecretInput{KeyId: sv, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: der})
	wantCode(t, err, "InvalidKeyUsageException")
}

// TestMac: GenerateMac and VerifyMac on every HMAC spec; a flipped or
// truncated MAC is KMSInvalidMacException; the MacAlgorithm must be the
// spec's one.
func TestMac(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	msg := []byte("MAC me")
	specs := map[types.KeySpec]types.MacAlgorithmSpec{
		types.KeySpecHmac224: types.MacAlgorithmSpecHmacSha224, types.KeySpecHmac256: types.MacAlgorithmSpecHmacSha256,
		types.KeySpecHmac384: types.MacAlgorithmSpecHmacSha384, types.KeySpecHmac512: types.MacAlgorithmSpecHmacSha512,
	}
	sizes := map[types.MacAlgorithmSpec]int{types.MacAlgorithmSpecHmacSha224: 28, types.MacAlgorithmSpecHmacSha256: 32,
		types.MacAlgorithmSpecHmacSha384: 48, types.MacAlgorithmSpecHmacSha512: 64}
	for spec, alg := range specs {
		key := must[*awskms.CreateKeyOutput](t)(c.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: spec, KeyUsage: types.KeyUsageTypeGenerateVerifyMac}))
		id := key.KeyMetadata.KeyId
		if len(key.KeyMetadata.MacAlgorithms) != 1 || key.KeyMetadata.MacAlgorithms[0] != alg {
			t.Fatalf("%s: MacAlgorithms %v", spec, key.KeyMetadata.MacAlgorithms)
		}
		out := must[*awskms.GenerateMacOutput](t)(c.GenerateMac(ctx, &awskms.GenerateMacInput{KeyId: id, Message: msg, MacAlgorithm: alg}))
		if len(out.Mac) != sizes[alg] || out.MacAlgorithm != alg {
			t.Fatalf("%s: a %d-byte MAC", spec, len(out.Mac))
		}
		again := must[*awskms.GenerateMacOutput](t)(c.GenerateMac(ctx, &awskms.GenerateMacInput{KeyId: id, Message: msg, MacAlgorithm: alg}))
		if !bytes.Equal(again.Mac, out.Mac) {
			t.Fatal("HMAC is not deterministic")
		}
		v := must[*awskms.VerifyMacOutput](t)(c.VerifyMac(ctx, &awskms.VerifyMacInput{KeyId: id, Message: msg, MacAlgorithm: alg, Mac: out.Mac}))
		if !v.MacValid {
			t.Fatal("MacValid false")
		}
		flipped := bytes.Clone(out.Mac)
		flipped[0] ^= 1
		for name, bad := range map[string][]byte{"flipped": flipped, "truncated": out.Mac[:len(out.Mac)-1]} {
			_, err := c.VerifyMac(ctx, &awskms.VerifyMacInput{KeyId: id, Message: msg, MacAlgorithm: alg, Mac: bad})
			if apiCode(err) != "KMSInvalidMacException" {
				t.Errorf("%s MAC: %v", name, err)
			}
		}
		_, err := c.VerifyMac(ctx, &awskms.VerifyMacInput{KeyId: id, Message: []byte("MAC mE"), MacAlgorithm: alg, Mac: out.Mac})
		wantCode(t, err, "KMSInvalidMacException")
		wrong := types.MacAlgorithmSpecHmacSha512
		if alg == wrong {
			wrong = types.MacAlgorithmSpecHmacSha256
		}
		_, err = c.GenerateMac(ctx, &awskms.GenerateMacInput{KeyId: id, Message: msg, MacAlgorithm: wrong})
		wantCode(t, err, "InvalidKeyUsageException")
		_, err = c.GenerateMac(ctx, &awskms.GenerateMacInput{KeyId: id, Message: make([]byte, 4097), MacAlgorithm: alg})
		wantCode(t, err, "ValidationException")
		_, err = c.VerifyMac(ctx, &awskms.VerifyMacInput{KeyId: id, Message: msg, MacAlgorithm: alg, Mac: make([]byte, 6145)})
		wantCode(t, err, "ValidationException")
	}
	rsaKey := must[*awskms.CreateKeyOutput](t)(c.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})).KeyMetadata.KeyId
	_, err := c.GenerateMac(ctx, &awskms.GenerateMacInput{KeyId: rsaKey, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	wantCode(t, err, "InvalidKeyUsageException")
}

// TestGenerateDataKeyPair: every DataKeyPairSpec but SM2 (China Regions
// only: UnsupportedOperationException). The public key is DER SPKI, the
// private key PKCS#8 of the same pair, and Decrypt of the blob returns the
// PKCS#8 bytes.
func TestGenerateDataKeyPair(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	sym := e.createKey("wrapping")
	ec := map[string]string{"pair": "yes"}
	for _, spec := range []types.DataKeyPairSpec{types.DataKeyPairSpecRsa2048, types.DataKeyPairSpecRsa3072, types.DataKeyPairSpecRsa4096,
		types.DataKeyPairSpecEccNistP256, types.DataKeyPairSpecEccNistP384, types.DataKeyPairSpecEccNistP521,
		types.DataKeyPairSpecEccSecgP256k1, types.DataKeyPairSpecEccNistEdwards25519} {
		out := must[*awskms.GenerateDataKeyPairOutput](t)(c.GenerateDataKeyPair(ctx, &awskms.GenerateDataKeyPairInput{KeyId: &sym, KeyPairSpec: spec, EncryptionContext: ec}))
		if out.KeyPairSpec != spec || len(out.PublicKey) == 0 || len(out.PrivateKeyPlaintext) == 0 {
			t.Fatalf("%s: %+v", spec, out)
		}
		dec := must[*awskms.DecryptOutput](t)(c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: out.PrivateKeyCiphertextBlob, EncryptionContext: ec}))
		if !bytes.Equal(dec.Plaintext, out.PrivateKeyPlaintext) {
			t.Fatalf("%s: Decrypt of the blob is not the PKCS#8 private key", spec)
		}
		if spec != types.DataKeyPairSpecEccSecgP256k1 { // x509 has no secp256k1
			priv, err := x509.ParsePKCS8PrivateKey(out.PrivateKeyPlaintext)
			if err != nil {
				t.Fatalf("%s: %v", spec, err)
			}
			pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
			if err != nil {
				t.Fatalf("%s: %v", spec, err)
			}
			if !publicEqual(priv, pub) {
				t.Fatalf("%s: the public key is not the private key's", spec)
			}
		}
		wo := must[*awskms.GenerateDataKeyPairWithoutPlaintextOutput](t)(c.GenerateDataKeyPairWithoutPlaintext(ctx, &awskms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: &sym, KeyPairSpec: spec}))
		if wo.KeyPairSpec != spec || len(wo.PublicKey) == 0 || len(wo.PrivateKeyCiphertextBlob) == 0 {
			t.Fatalf("%s: WithoutPlaintext %+v", spec, wo)
		}
	}
	_, err := c.GenerateDataKeyPair(ctx, &awskms.GenerateDataKeyPairInput{KeyId: &sym, KeyPairSpec: types.DataKeyPairSpecSm2})
	wantCode(t, err, "UnsupportedOperationException")
	asym := must[*awskms.CreateKeyOutput](t)(c.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeEncryptDecrypt})).KeyMetadata.KeyId
	_, err = c.GenerateDataKeyPair(ctx, &awskms.GenerateDataKeyPairInput{KeyId: asym, KeyPairSpec: types.DataKeyPairSpecEccNistP256})
	wantCode(t, err, "InvalidKeyUsageException")
	_, err = c.GenerateDataKeyPairWithoutPlaintext(ctx, &awskms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: asym, KeyPairSpec: types.DataKeyPairSpecEccNistP256})
	wantCode(t, err, "InvalidKeyUsageException")
}

// publicEqual reports whether pub is priv's public half.
func publicEqual(priv, pub any) bool {
	p, ok := priv.(crypto.Signer)
	if !ok {
		return false
	}
	e, ok := p.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(pub)
}
