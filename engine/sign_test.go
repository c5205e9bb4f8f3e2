package engine

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// messageTypes returns the message types alg takes.
func messageTypes(alg string) []string {
	switch alg {
	case "ED25519_SHA_512":
		return []string{MessageRaw}
	case "ED25519_PH_SHA_512":
		return []string{MessageDigest}
	case "ML_DSA_SHAKE_256":
		return []string{MessageRaw}
	}
	return []string{MessageRaw, MessageDigest}
}

func messageFor(alg, mt string) []byte {
	m := []byte("a message to sign, " + alg)
	if mt == MessageDigest {
		return digest(sigAlgs[alg].hash, m)
	}
	return m
}

// TestSignVerifyRoundTrip signs with every supported spec, every signing
// algorithm and every message type it takes, verifies with the Key and
// with the public key GetPublicKey's DER gives back, and checks each way a
// signature or request can be wrong.
func TestSignVerifyRoundTrip(t *testing.T) {
	skipAsymShort(t)
	var otherAlg = map[Kind]string{KindRSA: "ECDSA_SHA_256", KindEC: "RSASSA_PSS_SHA_256", KindEd25519: "ECDSA_SHA_512", KindMLDSA: "ED25519_SHA_512"}
	for _, s := range Specs() {
		algs, ok := s.Algorithms(UsageSignVerify)
		if !ok || !s.Supported() {
			continue
		}
		t.Run(s.Name(), func(t *testing.T) {
			skipSlow(t, s.Name())
			k := testKey(t, s.Name())
			der, err := k.PublicKeyDER()
			if err != nil {
				t.Fatal(err)
			}
			pub, err := ParsePublicKey(s.Name(), der)
			if err != nil {
				t.Fatalf("ParsePublicKey(PublicKeyDER()): %v", err)
			}
			for _, alg := range algs.Signing {
				for _, mt := range messageTypes(alg) {
					msg := messageFor(alg, mt)
					sig, err := k.Sign(alg, mt, msg)
					if err != nil {
						t.Fatalf("%s %s: Sign: %v", alg, mt, err)
					}
					if err := k.Verify(alg, mt, msg, sig); err != nil {
						t.Fatalf("%s %s: Verify: %v", alg, mt, err)
					}
					if err := VerifyPublic(pub, s.Name(), alg, mt, msg, sig); err != nil {
						t.Fatalf("%s %s: VerifyPublic: %v", alg, mt, err)
					}
					checkSignatureNegatives(t, k, alg, mt, msg, sig)
				}
			}
			// An algorithm of another family, and a message type none takes.
			if _, err := k.Sign(otherAlg[s.Kind()], MessageRaw, []byte("m")); !errors.Is(err, ErrAlgorithm) {
				t.Errorf("Sign with %s: %v, want ErrAlgorithm", otherAlg[s.Kind()], err)
			}
			if err := k.Verify(otherAlg[s.Kind()], MessageRaw, []byte("m"), []byte("s")); !errors.Is(err, ErrAlgorithm) {
				t.Errorf("Verify with %s: %v, want ErrAlgorithm", otherAlg[s.Kind()], err)
			}
			if _, err := k.Sign(algs.Signing[0], "HASHED", []byte("m")); !errors.Is(err, ErrMessageType) {
				t.Errorf("message type HASHED: %v, want ErrMessageType", err)
			}
		})
	}
}

func checkSignatureNegatives(t *testing.T, k *Key, alg, mt string, msg, sig []byte) {
	t.Helper()
	for _, i := range []int{0, len(sig) / 2, len(sig) - 1} {
		bad := bytes.Clone(sig)
		bad[i] ^= 0x01
		if err := k.Verify(alg, mt, msg, bad); err != ErrSignatureMismatch {
			t.Errorf("%s %s: signature with byte %d flipped: %v", alg, mt, i, err)
		}
	}
	for _, bad := range [][]byte{nil, sig[:len(sig)-1], append(bytes.Clone(sig), 0), make([]byte, 6145)} {
		if err := k.Verify(alg, mt, msg, bad); err != ErrSignatureMismatch {
			t.Errorf("%s %s: %d-byte signature: %v", alg, mt, len(bad), err)
		}
	}
	other := bytes.Clone(msg)
	other[0] ^= 0x80
	if err := k.Verify(alg, mt, other, sig); err != ErrSignatureMismatch {
		t.Errorf("%s %s: wrong message: %v", alg, mt, err)
	}
	if mt == MessageDigest {
		for _, n := range []int{0, len(msg) - 1, len(msg) + 1, 4096} {
			m := make([]byte, n)
			if _, err := k.Sign(alg, mt, m); !errors.Is(err, ErrDigestLength) {
				t.Errorf("%s: Sign of a %d-byte DIGEST: %v, want ErrDigestLength", alg, n, err)
			}
			if err := k.Verify(alg, mt, m, sig); !errors.Is(err, ErrDigestLength) {
				t.Errorf("%s: Verify of a %d-byte DIGEST: %v, want ErrDigestLength", alg, n, err)
			}
		}
	}
	// The message type the algorithm does not take.
	wrong := map[string]string{MessageRaw: MessageDigest, MessageDigest: MessageRaw}[mt]
	if alg == "ED25519_SHA_512" || alg == "ED25519_PH_SHA_512" || alg == "ML_DSA_SHAKE_256" {
		if alg == "ML_DSA_SHAKE_256" {
			wrong = MessageDigest
		}
		if _, err := k.Sign(alg, wrong, msg); !errors.Is(err, ErrMessageType) {
			t.Errorf("%s with %s: %v, want ErrMessageType", alg, wrong, err)
		}
	}
}

func TestMLDSAExternalMu(t *testing.T) {
	k := testKey(t, "ML_DSA_44")
	if _, err := k.Sign("ML_DSA_SHAKE_256", MessageExternalMu, make([]byte, 64)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("EXTERNAL_MU: %v, want ErrUnsupported", err)
	}
	if err := k.Verify("ML_DSA_SHAKE_256", MessageExternalMu, make([]byte, 63), nil); !errors.Is(err, ErrDigestLength) {
		t.Errorf("63-byte μ: %v, want ErrDigestLength", err)
	}
	if _, err := testKey(t, "ECC_NIST_P256").Sign("ECDSA_SHA_256", MessageExternalMu, make([]byte, 64)); !errors.Is(err, ErrMessageType) {
		t.Errorf("EXTERNAL_MU with ECDSA: %v, want ErrMessageType", err)
	}
}

func TestVerifyPublicRefusesOtherKeys(t *testing.T) {
	p256, p384 := testKey(t, "ECC_NIST_P256"), testKey(t, "ECC_NIST_P384")
	sig, err := p256.Sign("ECDSA_SHA_256", MessageRaw, []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		spec string
		pub  any
	}{
		{"ECC_NIST_P256", p384.Public()},
		{"ECC_NIST_P256", testKey(t, "ECC_SECG_P256K1").Public()},
		{"ECC_SECG_P256K1", p256.Public()},
		{"ML_DSA_65", testKey(t, "ML_DSA_44").Public()},
		{"RSA_3072", testKey(t, "RSA_2048").Public()},
		{"ECC_NIST_P256", nil},
	} {
		if err := VerifyPublic(tt.pub, tt.spec, "ECDSA_SHA_256", MessageRaw, []byte("m"), sig); !errors.Is(err, ErrInvalidPublicKey) {
			t.Errorf("%s with a %T: %v, want ErrInvalidPublicKey", tt.spec, tt.pub, err)
		}
	}
	for _, name := range []string{"HMAC_256", "SYMMETRIC_DEFAULT"} {
		if _, err := testKey(t, name).Sign("ECDSA_SHA_256", MessageRaw, []byte("m")); !errors.Is(err, ErrAlgorithm) {
			t.Errorf("Sign with %s: %v, want ErrAlgorithm", name, err)
		}
	}
}

func TestOAEPRoundTrip(t *testing.T) {
	skipAsymShort(t)
	want := map[string][2]int{"RSA_2048": {214, 190}, "RSA_3072": {342, 318}, "RSA_4096": {470, 446}}
	for spec, max := range want {
		for i, alg := range []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"} {
			if got := MaxOAEPPlaintext(spec, alg); got != max[i] {
				t.Errorf("MaxOAEPPlaintext(%s, %s) = %d, want %d", spec, alg, got, max[i])
			}
		}
	}
	if MaxOAEPPlaintext("ECC_NIST_P256", "RSAES_OAEP_SHA_1") != 0 || MaxOAEPPlaintext("RSA_2048", "SYMMETRIC_DEFAULT") != 0 {
		t.Error("MaxOAEPPlaintext for what cannot encrypt")
	}
	k := testKey(t, "RSA_2048")
	for _, alg := range []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"} {
		max := MaxOAEPPlaintext("RSA_2048", alg)
		for _, n := range []int{0, 1, max} {
			pt := bytes.Repeat([]byte{0xab}, n)
			ct, err := EncryptOAEP(k.Public(), "RSA_2048", alg, pt)
			if err != nil {
				t.Fatal(err)
			}
			got, err := k.DecryptOAEP(alg, ct)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%s %d bytes: %v", alg, n, err)
			}
			other := map[string]string{"RSAES_OAEP_SHA_1": "RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_256": "RSAES_OAEP_SHA_1"}[alg]
			for _, bad := range [][]byte{nil, ct[1:], append(bytes.Clone(ct), 0), flip(ct, 0), flip(ct, len(ct)-1)} {
				if _, err := k.DecryptOAEP(alg, bad); err != ErrInvalidCiphertext {
					t.Errorf("%s: a bad ciphertext: %v", alg, err)
				}
			}
			if _, err := k.DecryptOAEP(other, ct); err != ErrInvalidCiphertext {
				t.Errorf("%s ciphertext under %s: %v", alg, other, err)
			}
		}
		if _, err := EncryptOAEP(k.Public(), "RSA_2048", alg, make([]byte, max+1)); !errors.Is(err, ErrPlaintextTooLong) {
			t.Errorf("%s: %d bytes: %v", alg, max+1, err)
		}
	}
	if _, err := k.DecryptOAEP("SYMMETRIC_DEFAULT", nil); !errors.Is(err, ErrAlgorithm) {
		t.Errorf("DecryptOAEP(SYMMETRIC_DEFAULT): %v", err)
	}
	if _, err := testKey(t, "ECC_NIST_P256").DecryptOAEP("RSAES_OAEP_SHA_256", nil); !errors.Is(err, ErrAlgorithm) {
		t.Errorf("DecryptOAEP with a P-256 key: %v", err)
	}
	if _, err := EncryptOAEP(testKey(t, "ECC_NIST_P256").Public(), "RSA_2048", "RSAES_OAEP_SHA_256", nil); !errors.Is(err, ErrInvalidPublicKey) {
		t.Errorf("EncryptOAEP to a P-256 key: %v", err)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func TestMACRoundTrip(t *testing.T) {
	for spec, alg := range map[string]string{"HMAC_224": "HMAC_SHA_224", "HMAC_256": "HMAC_SHA_256", "HMAC_384": "HMAC_SHA_384", "HMAC_512": "HMAC_SHA_512"} {
		k := testKey(t, spec)
		mac, err := k.MAC(alg, []byte("m"))
		if err != nil {
			t.Fatal(err)
		}
		if err := k.VerifyMAC(alg, []byte("m"), mac); err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		for _, bad := range [][]byte{nil, mac[:len(mac)-1], append(bytes.Clone(mac), 0), flip(mac, 0), flip(mac, len(mac)-1)} {
			if err := k.VerifyMAC(alg, []byte("m"), bad); err != ErrMACMismatch {
				t.Errorf("%s: bad MAC: %v", spec, err)
			}
		}
		if err := k.VerifyMAC(alg, []byte("n"), mac); err != ErrMACMismatch {
			t.Errorf("%s: wrong message: %v", spec, err)
		}
		// The algorithm must be the spec's own.
		for _, other := range []string{"HMAC_SHA_224", "HMAC_SHA_256", "HMAC_SHA_384", "HMAC_SHA_512", "ECDSA_SHA_256"} {
			if other == alg {
				continue
			}
			if _, err := k.MAC(other, []byte("m")); !errors.Is(err, ErrAlgorithm) {
				t.Errorf("%s with %s: %v", spec, other, err)
			}
		}
	}
	if _, err := testKey(t, "SYMMETRIC_DEFAULT").MAC("HMAC_SHA_256", nil); !errors.Is(err, ErrAlgorithm) {
		t.Errorf("MAC with a symmetric key: %v", err)
	}
}

func TestDeriveSharedSecret(t *testing.T) {
	skipAsymShort(t)
	for spec, curve := range map[string]ecdh.Curve{"ECC_NIST_P256": ecdh.P256(), "ECC_NIST_P384": ecdh.P384(), "ECC_NIST_P521": ecdh.P521()} {
		k := testKey(t, spec)
		peer, err := curve.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		peerDER, err := x509.MarshalPKIXPublicKey(peer.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		z, err := k.DeriveSharedSecret("ECDH", peerDER)
		if err != nil {
			t.Fatal(err)
		}
		ours, _ := k.Private().(*ecdsa.PrivateKey).PublicKey.ECDH()
		want, _ := peer.ECDH(ours)
		if !bytes.Equal(z, want) {
			t.Fatalf("%s: shared secrets differ", spec)
		}
		if _, err := k.DeriveSharedSecret("ECDH_X", peerDER); !errors.Is(err, ErrAlgorithm) {
			t.Errorf("%s: algorithm ECDH_X: %v", spec, err)
		}
		// Trailing bytes, a truncated key, an off-curve point, another
		// curve, non-EC keys.
		offCurve := bytes.Clone(peerDER)
		offCurve[len(offCurve)-1] ^= 1
		bad := map[string][]byte{
			"trailing byte": append(bytes.Clone(peerDER), 0),
			"truncated":     peerDER[:len(peerDER)-1],
			"off the curve": offCurve,
			"empty":         nil,
			"another curve": publicDER(t, "ECC_NIST_P256", spec),
			"secp256k1":     publicDER(t, "ECC_SECG_P256K1", ""),
			"RSA":           publicDER(t, "RSA_2048", ""),
			"Ed25519":       publicDER(t, "ECC_NIST_EDWARDS25519", ""),
		}
		for what, der := range bad {
			if der == nil && what != "empty" {
				continue
			}
			if _, err := k.DeriveSharedSecret("ECDH", der); !errors.Is(err, ErrInvalidPublicKey) {
				t.Errorf("%s: %s peer key: %v, want ErrInvalidPublicKey", spec, what, err)
			}
		}
	}
	for _, spec := range []string{"ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519", "RSA_2048", "HMAC_256"} {
		if _, err := testKey(t, spec).DeriveSharedSecret("ECDH", publicDER(t, "ECC_NIST_P256", "")); !errors.Is(err, ErrAlgorithm) {
			t.Errorf("DeriveSharedSecret with %s: %v, want ErrAlgorithm", spec, err)
		}
	}
}

// publicDER returns the SPKI of the cached key of spec, or nil if spec is
// not.
func publicDER(t *testing.T, spec, not string) []byte {
	if spec == not {
		spec = "ECC_NIST_P384"
	}
	der, err := testKey(t, spec).PublicKeyDER()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestGenerateKeyPair: every DataKeyPairSpec but the slow RSA sizes, whose
// encodings TestPublicKeyDER covers with the cached keys.
func TestGenerateKeyPair(t *testing.T) {
	skipAsymShort(t)
	for _, spec := range DataKeyPairSpecs() {
		if spec == "RSA_3072" || spec == "RSA_4096" {
			continue
		}
		pubDER, privDER, err := GenerateKeyPair(spec, nil)
		if spec == "SM2" {
			if !errors.Is(err, ErrUnsupportedSpec) {
				t.Errorf("SM2: %v, want ErrUnsupportedSpec", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		k, err := ParseKey(spec, privDER)
		if err != nil {
			t.Fatalf("%s: the PKCS#8 does not parse: %v", spec, err)
		}
		if der, _ := k.PublicKeyDER(); !bytes.Equal(der, pubDER) {
			t.Fatalf("%s: the public key is not the private key's", spec)
		}
		if spec != "ECC_SECG_P256K1" {
			// The standard library reads both halves.
			if _, err := x509.ParsePKCS8PrivateKey(privDER); err != nil {
				t.Errorf("%s: x509 PKCS#8: %v", spec, err)
			}
			if _, err := x509.ParsePKIXPublicKey(pubDER); err != nil {
				t.Errorf("%s: x509 SPKI: %v", spec, err)
			}
		}
	}
	for _, spec := range []string{"HMAC_256", "ML_DSA_44", "SYMMETRIC_DEFAULT", "RSA_1024"} {
		if _, _, err := GenerateKeyPair(spec, nil); !errors.Is(err, ErrUnknownSpec) {
			t.Errorf("%s: %v, want ErrUnknownSpec", spec, err)
		}
	}
}

// TestPublicKeyDER pins the encodings GetPublicKey returns where x509 does
// not write them: secp256k1 (RFC 5480, OID 1.3.132.0.10, uncompressed) and
// ML-DSA (RFC 9881).
func TestPublicKeyDER(t *testing.T) {
	for spec, prefix := range map[string]string{
		"ECC_SECG_P256K1": "3056301006072a8648ce3d020106052b8104000a03420004",
		"ML_DSA_44":       "30820532300b06096086480165030403110382052100",
		"ML_DSA_65":       "308207b2300b0609608648016503040312038207a100",
		"ML_DSA_87":       "30820a32300b060960864801650304031303820a2100",
	} {
		der, err := testKey(t, spec).PublicKeyDER()
		if err != nil || !strings.HasPrefix(hex.EncodeToString(der), prefix) {
			t.Errorf("%s: %x, %v", spec, der[:min(len(der), 24)], err)
		}
	}
	for _, spec := range []string{"RSA_2048", "RSA_3072", "ECC_NIST_P521", "ECC_NIST_EDWARDS25519"} {
		der, err := testKey(t, spec).PublicKeyDER()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := x509.ParsePKIXPublicKey(der); err != nil {
			t.Errorf("%s: %v", spec, err)
		}
	}
	if _, err := testKey(t, "HMAC_256").PublicKeyDER(); !errors.Is(err, ErrAlgorithm) {
		t.Errorf("HMAC key: %v", err)
	}
}

// TestParseNewKeysRejects: the hand-written PKCS#8 parsers refuse what is
// not a key of their spec.
func TestParseNewKeysRejects(t *testing.T) {
	k1, mlk := marshal(t, testKey(t, "ECC_SECG_P256K1")), marshal(t, testKey(t, "ML_DSA_44"))
	p256 := marshal(t, testKey(t, "ECC_NIST_P256"))
	// A secp256k1 PKCS#8 whose scalar is n (out of range).
	n, _ := hex.DecodeString("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
	d := testKey(t, "ECC_SECG_P256K1").priv.(*secp256k1Key).k.Key.Bytes()
	if bytes.Count(k1, d[:]) != 1 {
		t.Fatal("the scalar is not in the PKCS#8 once")
	}
	outOfRange := bytes.Replace(bytes.Clone(k1), d[:], n, 1)
	// Another key's public key in the ECPrivateKey.
	other := marshal(t, mustGenerate(t, "ECC_SECG_P256K1"))
	mismatched := append(bytes.Clone(k1[:len(k1)-65]), other[len(other)-65:]...)
	for _, tt := range []struct {
		name, spec string
		der        []byte
	}{
		{"P-256 key as secp256k1", "ECC_SECG_P256K1", p256},
		{"secp256k1 key as P-256", "ECC_NIST_P256", k1},
		{"secp256k1 scalar = n", "ECC_SECG_P256K1", outOfRange},
		{"secp256k1 with another key's public key", "ECC_SECG_P256K1", mismatched},
		{"secp256k1 trailing byte", "ECC_SECG_P256K1", append(bytes.Clone(k1), 0)},
		{"ML-DSA-44 key as ML-DSA-65", "ML_DSA_65", mlk},
		{"ML-DSA key as RSA", "RSA_2048", mlk},
		{"ML-DSA seed truncated", "ML_DSA_44", mlk[:len(mlk)-1]},
		{"ML-DSA trailing byte", "ML_DSA_44", append(bytes.Clone(mlk), 0)},
		{"P-256 key as ML-DSA", "ML_DSA_44", p256},
	} {
		if k, err := ParseKey(tt.spec, tt.der); !errors.Is(err, ErrInvalidKey) || k != nil {
			t.Errorf("%s: %v, want ErrInvalidKey", tt.name, err)
		}
	}
}

func mustGenerate(t *testing.T, spec string) *Key {
	k, err := GenerateKey(spec, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestZeroNewKinds(t *testing.T) {
	for _, spec := range []string{"ECC_SECG_P256K1", "ML_DSA_65"} {
		k := mustGenerate(t, spec)
		switch p := k.priv.(type) {
		case *secp256k1Key:
			k.Zero()
			if !p.k.Key.IsZero() {
				t.Error("Zero left the secp256k1 scalar")
			}
		case *mldsaKey:
			k.Zero()
			if p.seed != [32]byte{} {
				t.Error("Zero left the ML-DSA seed")
			}
		}
		checkRefuses(t, k)
		if _, err := k.Sign("ECDSA_SHA_256", MessageRaw, nil); err != ErrKeyZeroed {
			t.Errorf("Sign with a zeroed key: %v", err)
		}
	}
}

// TestErrorsHideMaterial: no error of the new operations carries the
// message, the key or the peer's bytes.
func TestErrorsHideMaterial(t *testing.T) {
	secret := bytes.Repeat([]byte{0x5c}, 40)
	k := testKey(t, "ECC_NIST_P256")
	var errs []error
	_, err := k.Sign("ECDSA_SHA_256", MessageDigest, secret)
	errs = append(errs, err)
	_, err = k.DeriveSharedSecret("ECDH", secret)
	errs = append(errs, err)
	_, err = ParseKey("ECC_SECG_P256K1", secret)
	errs = append(errs, err)
	_, err = ParseKey("ML_DSA_87", secret)
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil || strings.Contains(err.Error(), hex.EncodeToString(secret[:4])) || strings.Contains(err.Error(), string(secret[:4])) {
			t.Errorf("error %q", err)
		}
	}
}
