package server_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// Sign and Verify over a real socket for every SIGN_VERIFY spec, every
// signing algorithm it offers and every message type the algorithm takes,
// each signature checked by an independent verifier: the standard library
// from the public key GetPublicKey returned where it has the algorithm,
// openssl (TestSignOpenSSL) for one key of each family and secp256k1, and
// the service's own Verify for ML-DSA, which neither has (Go 1.26's x509
// and OpenSSL 3.0 do not parse ML-DSA keys).

// signSpecs are the SIGN_VERIFY specs with the algorithms AWS lists for
// them (reference §1.2), encoded here rather than read from the server.
var signSpecs = []struct {
	spec types.KeySpec
	algs []types.SigningAlgorithmSpec
}{
	{types.KeySpecRsa2048, rsaSigning},
	{types.KeySpecRsa3072, rsaSigning},
	{types.KeySpecRsa4096, rsaSigning},
	{types.KeySpecEccNistP256, []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecEcdsaSha256}},
	{types.KeySpecEccNistP384, []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecEcdsaSha384}},
	{types.KeySpecEccNistP521, []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecEcdsaSha512}},
	{types.KeySpecEccSecgP256k1, []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecEcdsaSha256}},
	{types.KeySpecEccNistEdwards25519, []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecEd25519Sha512, types.SigningAlgorithmSpecEd25519PhSha512}},
	{types.KeySpecMlDsa44, []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecMlDsaShake256}},
	{types.KeySpecMlDsa65, []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecMlDsaShake256}},
	{types.KeySpecMlDsa87, []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecMlDsaShake256}},
}

var rsaSigning = []types.SigningAlgorithmSpec{
	types.SigningAlgorithmSpecRsassaPssSha256, types.SigningAlgorithmSpecRsassaPssSha384, types.SigningAlgorithmSpecRsassaPssSha512,
	types.SigningAlgorithmSpecRsassaPkcs1V15Sha256, types.SigningAlgorithmSpecRsassaPkcs1V15Sha384, types.SigningAlgorithmSpecRsassaPkcs1V15Sha512,
}

// hashOf is the hash of a signing algorithm (0 for pure Ed25519, ML-DSA).
func hashOf(alg types.SigningAlgorithmSpec) crypto.Hash {
	s := string(alg)
	switch {
	case strings.HasSuffix(s, "SHA_256"):
		return crypto.SHA256
	case strings.HasSuffix(s, "SHA_384"):
		return crypto.SHA384
	case alg == types.SigningAlgorithmSpecEd25519Sha512:
		return 0
	case strings.HasSuffix(s, "SHA_512"):
		return crypto.SHA512
	}
	return 0
}

func digestOf(h crypto.Hash, m []byte) []byte {
	switch h {
	case crypto.SHA256:
		d := sha256.Sum256(m)
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384(m)
		return d[:]
	}
	d := sha512.Sum512(m)
	return d[:]
}

// messageTypesOf are the message types AWS lets alg sign.
func messageTypesOf(alg types.SigningAlgorithmSpec) []types.MessageType {
	switch alg {
	case types.SigningAlgorithmSpecEd25519Sha512, types.SigningAlgorithmSpecMlDsaShake256:
		return []types.MessageType{types.MessageTypeRaw}
	case types.SigningAlgorithmSpecEd25519PhSha512:
		return []types.MessageType{types.MessageTypeDigest}
	}
	return []types.MessageType{types.MessageTypeRaw, types.MessageTypeDigest}
}

// verifyStdlib checks sig with the standard library; false when it has no
// verifier for the key (secp256k1, ML-DSA).
func verifyStdlib(t *testing.T, pubDER []byte, alg types.SigningAlgorithmSpec, mt types.MessageType, msg, sig []byte) bool {
	t.Helper()
	pub, err := x509.ParsePKIXPublicKey(pubDER)
	if err != nil {
		return false
	}
	h := hashOf(alg)
	d := msg
	if mt == types.MessageTypeRaw && h != 0 {
		d = digestOf(h, msg)
	}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if strings.Contains(string(alg), "PSS") {
			err = rsa.VerifyPSS(p, h, d, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
		} else {
			err = rsa.VerifyPKCS1v15(p, h, d, sig)
		}
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(p, d, sig) {
			err = errBadSig
		}
	case ed25519.PublicKey:
		if alg == types.SigningAlgorithmSpecEd25519PhSha512 {
			err = ed25519.VerifyWithOptions(p, d, sig, &ed25519.Options{Hash: crypto.SHA512})
		} else if !ed25519.Verify(p, msg, sig) {
			err = errBadSig
		}
	default:
		t.Fatalf("a %T public key", pub)
	}
	if err != nil {
		t.Fatalf("%s %s: the standard library refuses the signature: %v", alg, mt, err)
	}
	return true
}

var errBadSig = os.ErrInvalid

func TestSignVerifyEverySpec(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	msg := []byte("Coffer signs this message over a real socket.")
	for _, sp := range signSpecs {
		t.Run(string(sp.spec), func(t *testing.T) {
			key := must[*awskms.CreateKeyOutput](t)(c.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: sp.spec, KeyUsage: types.KeyUsageTypeSignVerify}))
			id := key.KeyMetadata.KeyId
			if !slices.Equal(key.KeyMetadata.SigningAlgorithms, sp.algs) || key.KeyMetadata.EncryptionAlgorithms != nil {
				t.Fatalf("CreateKey metadata: signing %v, encryption %v", key.KeyMetadata.SigningAlgorithms, key.KeyMetadata.EncryptionAlgorithms)
			}
			pub := must[*awskms.GetPublicKeyOutput](t)(c.GetPublicKey(ctx, &awskms.GetPublicKeyInput{KeyId: id}))
			if pub.KeySpec != sp.spec || pub.KeyUsage != types.KeyUsageTypeSignVerify || !slices.Equal(pub.SigningAlgorithms, sp.algs) ||
				*pub.KeyId != *key.KeyMetadata.Arn || pub.CustomerMasterKeySpec != types.CustomerMasterKeySpec(sp.spec) {
				t.Fatalf("GetPublicKey %+v", pub)
			}
			for _, alg := range sp.algs {
				for _, mt := range messageTypesOf(alg) {
					m := msg
					if mt == types.MessageTypeDigest {
						m = digestOf(hashOf(alg), msg)
					}
					out := must[*awskms.SignOutput](t)(c.Sign(ctx, &awskms.SignInput{KeyId: id, Message: m, MessageType: mt, SigningAlgorithm: alg}))
					if out.SigningAlgorithm != alg || *out.KeyId != *key.KeyMetadata.Arn {
						t.Fatalf("Sign output %+v", out)
					}
					verifyStdlib(t, pub.PublicKey, alg, mt, m, out.Signature)
					v := must[*awskms.VerifyOutput](t)(c.Verify(ctx, &awskms.VerifyInput{KeyId: id, Message: m, MessageType: mt, SigningAlgorithm: alg, Signature: out.Signature}))
					if !v.SignatureValid || v.SigningAlgorithm != alg {
						t.Fatalf("Verify %+v", v)
					}
					bad := bytes.Clone(out.Signature)
					bad[len(bad)/2] ^= 1
					_, err := c.Verify(ctx, &awskms.VerifyInput{KeyId: id, Message: m, MessageType: mt, SigningAlgorithm: alg, Signature: bad})
					wantCode(t, err, "KMSInvalidSignatureException")
					other := append(bytes.Clone(m[:len(m)-1]), m[len(m)-1]^1)
					_, err = c.Verify(ctx, &awskms.VerifyInput{KeyId: id, Message: other, MessageType: mt, SigningAlgorithm: alg, Signature: out.Signature})
					wantCode(t, err, "KMSInvalidSignatureException")
				}
			}
		})
	}
}

// TestSignBadInput: every bad request is AWS's exception and changes
// nothing (the key signs and verifies as before afterwards).
func TestSignBadInput(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	ec := must[*awskms.CreateKeyOutput](t)(c.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})).KeyMetadata.KeyId
	ed := must[*awskms.CreateKeyOutput](t)(c.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: types.KeySpecEccNistEdwards25519, KeyUsage: types.KeyUsageTypeSignVerify})).KeyMetadata.KeyId
	ml := must[*awskms.CreateKeyOutput](t)(c.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: types.KeySpecMlDsa44, KeyUsage: types.KeyUsageTypeSignVerify})).KeyMetadata.KeyId
	sym := e.createKey("symmetric")
	hm := must[*awskms.CreateKeyOutput](t)(c.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})).KeyMetadata.KeyId
	good := must[*awskms.SignOutput](t)(c.Sign(ctx, &awskms.SignInput{KeyId: ec, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256}))
	for _, tc := range []struct {
		name string
		in   *awskms.SignInput
		code string
	}{
		{"wrong usage (symmetric)", &awskms.SignInput{KeyId: &sym, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256}, "InvalidKeyUsageException"},
		{"wrong usage (HMAC)", &awskms.SignInput{KeyId: hm, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256}, "InvalidKeyUsageException"},
		{"wrong algorithm", &awskms.SignInput{KeyId: ec, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha384}, "InvalidKeyUsageException"},
		{"RSA algorithm on EC", &awskms.SignInput{KeyId: ec, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256}, "InvalidKeyUsageException"},
		{"unknown algorithm", &awskms.SignInput{KeyId: ec, Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_1"}, "ValidationException"},
		{"DIGEST of the wrong length", &awskms.SignInput{KeyId: ec, Message: make([]byte, 31), MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256}, "ValidationException"},
		{"4097-byte message", &awskms.SignInput{KeyId: ec, Message: make([]byte, 4097), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256}, "ValidationException"},
		{"ED25519_SHA_512 with DIGEST", &awskms.SignInput{KeyId: ed, Message: make([]byte, 64), MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEd25519Sha512}, "ValidationException"},
		{"ED25519_PH_SHA_512 with RAW", &awskms.SignInput{KeyId: ed, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEd25519PhSha512}, "ValidationException"},
		{"EXTERNAL_MU on ECDSA", &awskms.SignInput{KeyId: ec, Message: make([]byte, 64), MessageType: types.MessageTypeExternalMu, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256}, "ValidationException"},
		{"EXTERNAL_MU on ML-DSA", &awskms.SignInput{KeyId: ml, Message: make([]byte, 64), MessageType: types.MessageTypeExternalMu, SigningAlgorithm: types.SigningAlgorithmSpecMlDsaShake256}, "UnsupportedOperationException"},
	} {
		_, err := c.Sign(ctx, tc.in)
		if apiCode(err) != tc.code {
			t.Errorf("Sign, %s: %v, want %s", tc.name, err, tc.code)
		}
	}
	for _, tc := range []struct {
		name string
		in   *awskms.VerifyInput
		code string
	}{
		{"6145-byte signature", &awskms.VerifyInput{KeyId: ec, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, Signature: make([]byte, 6145)}, "ValidationException"},
		{"empty signature", &awskms.VerifyInput{KeyId: ec, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, Signature: []byte{}}, "ValidationException"},
		{"wrong usage", &awskms.VerifyInput{KeyId: &sym, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, Signature: good.Signature}, "InvalidKeyUsageException"},
		{"4097-byte message", &awskms.VerifyInput{KeyId: ec, Message: make([]byte, 4097), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, Signature: good.Signature}, "ValidationException"},
		{"6144 bytes of garbage", &awskms.VerifyInput{KeyId: ec, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, Signature: make([]byte, 6144)}, "KMSInvalidSignatureException"},
	} {
		_, err := c.Verify(ctx, tc.in)
		if apiCode(err) != tc.code {
			t.Errorf("Verify, %s: %v, want %s", tc.name, err, tc.code)
		}
	}
	_, err := c.GetPublicKey(ctx, &awskms.GetPublicKeyInput{KeyId: &sym})
	wantCode(t, err, "UnsupportedOperationException")
	_, err = c.GetPublicKey(ctx, &awskms.GetPublicKeyInput{KeyId: hm})
	wantCode(t, err, "UnsupportedOperationException")
	// Nothing changed: the key is Enabled and its signature still verifies.
	d := must[*awskms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: ec}))
	if d.KeyMetadata.KeyState != types.KeyStateEnabled {
		t.Fatalf("key is %s", d.KeyMetadata.KeyState)
	}
	must[*awskms.VerifyOutput](t)(c.Verify(ctx, &awskms.VerifyInput{KeyId: ec, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, Signature: good.Signature}))
	// Disabled: DisabledException.
	must[*awskms.DisableKeyOutput](t)(c.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: ec}))
	_, err = c.Sign(ctx, &awskms.SignInput{KeyId: ec, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	wantCode(t, err, "DisabledException")
}

// TestSignOpenSSL verifies a signature of one key of each family (RSA
// PSS and PKCS#1 v1.5, ECDSA on P-256 and secp256k1, Ed25519) with
// openssl, from the PEM of the public key GetPublicKey returned.
func TestSignOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed: the openssl cross-check is skipped")
	}
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	dir := t.TempDir()
	msg := []byte("openssl checks what Coffer signed")
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	msgFile := write("msg", msg)
	for _, tc := range []struct {
		spec types.KeySpec
		alg  types.SigningAlgorithmSpec
		args []string // openssl arguments before the file names
	}{
		{types.KeySpecRsa2048, types.SigningAlgorithmSpecRsassaPssSha256, []string{"dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"}},
		{types.KeySpecRsa2048, types.SigningAlgorithmSpecRsassaPkcs1V15Sha512, []string{"dgst", "-sha512"}},
		{types.KeySpecEccNistP256, types.SigningAlgorithmSpecEcdsaSha256, []string{"dgst", "-sha256"}},
		{types.KeySpecEccSecgP256k1, types.SigningAlgorithmSpecEcdsaSha256, []string{"dgst", "-sha256"}},
		{types.KeySpecEccNistEdwards25519, types.SigningAlgorithmSpecEd25519Sha512, []string{"pkeyutl", "-rawin"}},
	} {
		t.Run(string(tc.spec)+"/"+string(tc.alg), func(t *testing.T) {
			id := must[*awskms.CreateKeyOutput](t)(c.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: tc.spec, KeyUsage: types.KeyUsageTypeSignVerify})).KeyMetadata.KeyId
			pub := must[*awskms.GetPublicKeyOutput](t)(c.GetPublicKey(ctx, &awskms.GetPublicKeyInput{KeyId: id}))
			pemFile := write(string(tc.spec)+".pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub.PublicKey}))
			sig := must[*awskms.SignOutput](t)(c.Sign(ctx, &awskms.SignInput{KeyId: id, Message: msg, SigningAlgorithm: tc.alg})).Signature
			sigFile := write(string(tc.spec)+".sig", sig)
			var args []string
			if tc.args[0] == "dgst" {
				args = append(append(args, tc.args...), "-verify", pemFile, "-signature", sigFile, msgFile)
			} else {
				args = append(append(args, tc.args...), "-verify", "-pubin", "-inkey", pemFile, "-sigfile", sigFile, "-in", msgFile)
			}
			out, err := exec.Command("openssl", args...).CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte("Verified")) && !bytes.Contains(out, []byte("Successfully")) {
				t.Fatalf("openssl %s: %v: %s", strings.Join(args, " "), err, out)
			}
			// And refuses a flipped signature.
			sig[len(sig)/2] ^= 1
			write(string(tc.spec)+".sig", sig)
			if out, err := exec.Command("openssl", args...).CombinedOutput(); err == nil {
				t.Fatalf("openssl accepts a flipped signature: %s", out)
			}
		})
	}
	_ = aws.String
}
