package engine

import (
	"bytes"
	"crypto"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/coffer-kms/coffer/asm"
)

// The startup self-test: every primitive the engine may use passes a
// known-answer test (fixed vectors from the cited standard, inline) and,
// for the key pairs, a pairwise-consistency test on a freshly generated
// key (sign then verify, encrypt then decrypt). A server that fails one
// must not serve. Each primitive is one row of selfTests: a new primitive
// is a new row.

// SelfTestResult is one row's outcome.
type SelfTestResult struct {
	Name   string // "aes-gcm/vaes512", "hmac-sha256", "ecdsa-p256" …
	Chosen bool   // the implementation the engine uses for its kind
	Err    error
}

// corruptVector is set by this package's tests to corrupt one row.
var corruptVector string

// ErrSelfTest wraps every self-test failure.
var ErrSelfTest = errors.New("engine: crypto self-test failed")

type selfTest struct {
	name   string
	chosen bool
	// run fails when the primitive misbehaves; corrupt makes it expect a
	// wrong answer, which must then fail (the test hook).
	run func(corrupt bool) error
}

// SelfTest runs every row and returns each result, with an error wrapping
// ErrSelfTest that names every failed row when any fails.
func SelfTest() ([]SelfTestResult, error) {
	corrupt := corruptedVector()
	var out []SelfTestResult
	var failed []string
	for _, t := range selfTests() {
		err := t.run(t.name == corrupt)
		out = append(out, SelfTestResult{Name: t.name, Chosen: t.chosen, Err: err})
		if err != nil {
			failed = append(failed, t.name+": "+err.Error())
		}
	}
	if failed != nil {
		return out, fmt.Errorf("%w: %v", ErrSelfTest, failed)
	}
	return out, nil
}

func selfTests() []selfTest {
	var ts []selfTest
	for _, k := range asm.Kernels() {
		ts = append(ts, selfTest{name: "aes-gcm/" + k, chosen: k == asm.Kernel(), run: func(c bool) error {
			return aeadKAT(func(key []byte) (cipher.AEAD, error) { return asm.NewKernel(k, key) }, gcmVectors, c)
		}})
	}
	ts = append(ts,
		selfTest{name: "chacha20-poly1305", chosen: true, run: func(c bool) error {
			return aeadKAT(chacha20poly1305.New, chachaVectors, c)
		}},
		selfTest{name: "hkdf-sha256", chosen: true, run: hkdfKAT},
		selfTest{name: "hmac-sha224", chosen: true, run: hmacKAT(sha256.New224, "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44")},
		selfTest{name: "hmac-sha256", chosen: true, run: hmacKAT(sha256.New, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")},
		selfTest{name: "hmac-sha384", chosen: true, run: hmacKAT(sha512.New384, "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649")},
		selfTest{name: "hmac-sha512", chosen: true, run: hmacKAT(sha512.New, "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737")},
		selfTest{name: "ecdsa-p256", chosen: true, run: ecdsaTest("ECC_NIST_P256", crypto.SHA256, &ecdsaP256KAT)},
		selfTest{name: "ecdsa-p384", chosen: true, run: ecdsaTest("ECC_NIST_P384", crypto.SHA384, nil)},
		selfTest{name: "ecdsa-p521", chosen: true, run: ecdsaTest("ECC_NIST_P521", crypto.SHA512, nil)},
		selfTest{name: "rsa", chosen: true, run: rsaTest},
		selfTest{name: "ed25519", chosen: true, run: ed25519Test},
		// The engine's own entry points, as kms calls them, on fresh keys.
		selfTest{name: "sign/ECC_NIST_P256", chosen: true, run: engineSign("ECC_NIST_P256", "ECDSA_SHA_256")},
		selfTest{name: "sign/ECC_SECG_P256K1", chosen: true, run: engineSign("ECC_SECG_P256K1", "ECDSA_SHA_256")},
		selfTest{name: "sign/ECC_NIST_EDWARDS25519", chosen: true, run: engineSign("ECC_NIST_EDWARDS25519", "ED25519_SHA_512")},
		selfTest{name: "sign/RSA_2048", chosen: true, run: engineSign("RSA_2048", "RSASSA_PSS_SHA_256")},
		selfTest{name: "sign/ML_DSA_44", chosen: true, run: engineSign("ML_DSA_44", "ML_DSA_SHAKE_256")},
		selfTest{name: "oaep/RSA_2048", chosen: true, run: engineOAEP},
		selfTest{name: "ecdh/ECC_NIST_P256", chosen: true, run: engineECDH},
		selfTest{name: "mac/HMAC_256", chosen: true, run: engineMAC},
	)
	return ts
}

// engineSign is a pairwise test of Key.Sign and Key.Verify: a fresh key's
// signature verifies, and one with a bit flipped does not.
func engineSign(spec, alg string) func(bool) error {
	return func(corrupt bool) error {
		k, err := GenerateKey(spec, nil)
		if err != nil {
			return err
		}
		defer k.Zero()
		sig, err := k.Sign(alg, MessageRaw, selfTestMessage)
		if err != nil {
			return err
		}
		if corrupt {
			sig[len(sig)/2] ^= 1
		}
		if err := k.Verify(alg, MessageRaw, selfTestMessage, sig); err != nil {
			return fmt.Errorf("pairwise consistency: a fresh key's signature does not verify: %w", err)
		}
		sig[len(sig)/2] ^= 0x80
		if k.Verify(alg, MessageRaw, selfTestMessage, sig) == nil {
			return errors.New("pairwise consistency: a tampered signature verifies")
		}
		return nil
	}
}

// engineOAEP encrypts to a fresh key's public half and decrypts.
func engineOAEP(corrupt bool) error {
	k, err := GenerateKey("RSA_2048", nil)
	if err != nil {
		return err
	}
	defer k.Zero()
	ct, err := EncryptOAEP(k.Public(), "RSA_2048", "RSAES_OAEP_SHA_256", selfTestMessage)
	if err != nil {
		return err
	}
	if corrupt {
		ct[len(ct)/2] ^= 1
	}
	pt, err := k.DecryptOAEP("RSAES_OAEP_SHA_256", ct)
	if err != nil || !bytes.Equal(pt, selfTestMessage) {
		return errors.New("pairwise consistency: OAEP decrypt of an encrypt failed")
	}
	return nil
}

// engineECDH derives the shared secret from both sides of two fresh keys.
func engineECDH(corrupt bool) error {
	a, err := GenerateKey("ECC_NIST_P256", nil)
	if err != nil {
		return err
	}
	defer a.Zero()
	b, err := GenerateKey("ECC_NIST_P256", nil)
	if err != nil {
		return err
	}
	defer b.Zero()
	apub, err := a.PublicKeyDER()
	if err != nil {
		return err
	}
	bpub, err := b.PublicKeyDER()
	if err != nil {
		return err
	}
	ab, err := a.DeriveSharedSecret("ECDH", bpub)
	if err != nil {
		return err
	}
	ba, err := b.DeriveSharedSecret("ECDH", apub)
	if err != nil {
		return err
	}
	if corrupt {
		ab[0] ^= 1
	}
	if !bytes.Equal(ab, ba) || len(ab) != 32 {
		return errors.New("pairwise consistency: the two sides derive different secrets")
	}
	return nil
}

// engineMAC is a pairwise test of Key.MAC and Key.VerifyMAC.
func engineMAC(corrupt bool) error {
	k, err := GenerateKey("HMAC_256", nil)
	if err != nil {
		return err
	}
	defer k.Zero()
	mac, err := k.MAC("HMAC_SHA_256", selfTestMessage)
	if err != nil {
		return err
	}
	if corrupt {
		mac[0] ^= 1
	}
	if err := k.VerifyMAC("HMAC_SHA_256", selfTestMessage, mac); err != nil {
		return fmt.Errorf("pairwise consistency: a fresh MAC does not verify: %w", err)
	}
	mac[len(mac)-1] ^= 0x80
	if k.VerifyMAC("HMAC_SHA_256", selfTestMessage, mac) == nil {
		return errors.New("pairwise consistency: a tampered MAC verifies")
	}
	return nil
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic("engine: internal error: bad self-test vector " + s)
	}
	return b
}

// expect compares got with want (hex), flipped when corrupt.
func expect(what string, got []byte, want string, corrupt bool) error {
	w := unhex(want)
	if corrupt {
		w[0] ^= 1
	}
	if !bytes.Equal(got, w) {
		return fmt.Errorf("%s: known answer mismatch", what)
	}
	return nil
}

type aeadVector struct{ key, nonce, aad, pt, ct string } // ct includes the tag

var (
	// The GCM paper's test cases 2 (AES-128) and 14 (AES-256): McGrew and
	// Viega, "The Galois/Counter Mode of Operation", appendix B.
	gcmVectors = []aeadVector{
		{key: "00000000000000000000000000000000", nonce: "000000000000000000000000", pt: "00000000000000000000000000000000",
			ct: "0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf"},
		{key: "0000000000000000000000000000000000000000000000000000000000000000", nonce: "000000000000000000000000", pt: "00000000000000000000000000000000",
			ct: "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"},
	}
	// RFC 8439, section 2.8.2.
	chachaVectors = []aeadVector{{
		key:   "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
		nonce: "070000004041424344454647", aad: "50515253c0c1c2c3c4c5c6c7",
		pt: hex.EncodeToString([]byte("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")),
		ct: "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116" +
			"1ae10b594f09e26a7e902ecbd0600691",
	}}
)

// aeadKAT seals each vector, compares, opens it back, and expects a flipped
// bit in the nonce, the additional data, the ciphertext and the tag to fail.
func aeadKAT(newAEAD func([]byte) (cipher.AEAD, error), vs []aeadVector, corrupt bool) error {
	for i, v := range vs {
		a, err := newAEAD(unhex(v.key))
		if err != nil {
			return err
		}
		nonce, aad, pt := unhex(v.nonce), unhex(v.aad), unhex(v.pt)
		ct := a.Seal(nil, nonce, pt, aad)
		if err := expect(fmt.Sprintf("vector %d seal", i), ct, v.ct, corrupt); err != nil {
			return err
		}
		got, err := a.Open(nil, nonce, ct, aad)
		if err != nil || !bytes.Equal(got, pt) {
			return fmt.Errorf("vector %d: open of its own seal failed", i)
		}
		flips := []func() ([]byte, []byte, []byte){
			func() ([]byte, []byte, []byte) { n := bytes.Clone(nonce); n[0] ^= 1; return n, ct, aad },
			func() ([]byte, []byte, []byte) { return nonce, ct, append(bytes.Clone(aad), 1) },
			func() ([]byte, []byte, []byte) { c := bytes.Clone(ct); c[0] ^= 1; return nonce, c, aad },
			func() ([]byte, []byte, []byte) { c := bytes.Clone(ct); c[len(c)-1] ^= 1; return nonce, c, aad },
		}
		for j, f := range flips {
			n, c, d := f()
			if _, err := a.Open(nil, n, c, d); err == nil {
				return fmt.Errorf("vector %d: tampered input %d opened", i, j)
			}
		}
	}
	return nil
}

// hkdfKAT is RFC 5869's test case 1 through the engine's own HKDF, which
// produces T(1), the first 32 bytes of its OKM.
func hkdfKAT(corrupt bool) error {
	k := kdfPool.Get().(*kdf)
	defer kdfPool.Put(k)
	var out [32]byte
	info := unhex("f0f1f2f3f4f5f6f7f8f9")
	k.derive(&out, bytes.Repeat([]byte{0x0b}, 22), unhex("000102030405060708090a0b0c"), info[:4], info[4:])
	return expect("RFC 5869 test case 1", out[:], "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf", corrupt)
}

// hmacKAT is RFC 4231's test case 2 ("Jefe").
func hmacKAT(h func() hash.Hash, want string) func(bool) error {
	return func(corrupt bool) error {
		m := hmac.New(h, []byte("Jefe"))
		m.Write([]byte("what do ya want for nothing?"))
		if err := expect("RFC 4231 test case 2", m.Sum(nil), want, corrupt); err != nil {
			return err
		}
		return nil
	}
}

var selfTestMessage = []byte("coffer self-test")

// ecdsaP256KAT and rsaKAT are signatures of selfTestMessage made with
// OpenSSL 3 (through pyca/cryptography) for the self-test, with the public
// keys (SubjectPublicKeyInfo DER) that verify them: ECDSA-SHA-256 on P-256,
// RSASSA-PKCS1-v1_5 with SHA-256 on RSA-2048.
var (
	ecdsaP256KAT = [2]string{
		"3059301306072a8648ce3d020106082a8648ce3d03010703420004f5e2ed43a9c2af61e30553875af4ff4c47da8c61eb9cff90042a3d1e059529bbdd570de9434c42875792db078ef0f8988a8d295641060beb53b4daeb304f9632",
		"3046022100aabdfda97cf3d1cc6605c36c8f88066ba08a7e3f512b1d92f03fb652f00be8cf022100bdd42c0805aa295d013142e302a8f32b49533c8200cb5228a7c8aa7ffef59499",
	}
	rsaKAT = [2]string{
		"30820122300d06092a864886f70d01010105000382010f003082010a0282010100879163b6a61977462ff7215f8a8f40ce75e0ef33ba08c4795758949914695c306c368a1f8f19eb41b1d8f2f11a91f6b95642266e0b67bd0d01bcf3daffa2a46d62843de2fdb1cea5eebb9f72074c7d314b286798e7b5dff94af883e6640319570ee6207c374fb7928d894cae71c3cdba9bff354c98e0bbccdeb34de0ded214c3c823c7f6881524dcd6661dc204802670675744ad7c054ca0cb20861787a1a9421d2b66d92315552ebd8a3104e9c7f39a721cb138f4d8fa8b420536f5cb929d684005219458a233b1be234856a4f1bf2b77fc6fecf7202416fda7ed9d0b2f65bff36cff8a300587506bca0da336f1a20993a35de4c4d4edc184dbd5f6c1c5837b0203010001",
		"1eaffc63d581eecd69be7d5e7883f5dfb2ab33d1ebcfe6500366be449783778bdf59642919cc0769080c6ea602f2e5ced4880607c43cf57beb125d6b97bc988a5226d37f7dbd1b8fe49f20252fe2d9789ee2692ad7bccc651f730cad2f019fdbef675b1e158683a85dcf4dfc7cd734a6a2f8731e06886eeab56813de816e4cce850f2a6355d42b060754046acacba302b2a0e26f6f89ab8d31f3fa1d97c9f029ac51e64086cdf76edd00f76d0a9f37c256b7e768baaa2fc3f929a9ad003f4405036d78dfe4e43517f18dc41de63d2ff136fe2fc9017bebe781ab152ed70b2e6509cf98ce5d0f4efac080f670ebf99e3481eff81ccac1007a48b27d2ba2b1ad55",
	}
)

// katPublic parses a KAT's public key, flipping a signature byte when
// corrupt so that verification must fail.
func katPublic(kat [2]string, corrupt bool) (any, []byte, error) {
	pub, err := x509.ParsePKIXPublicKey(unhex(kat[0]))
	if err != nil {
		return nil, nil, err
	}
	sig := unhex(kat[1])
	if corrupt {
		sig[len(sig)/2] ^= 1
	}
	return pub, sig, nil
}

func ecdsaTest(spec string, h crypto.Hash, kat *[2]string) func(bool) error {
	return func(corrupt bool) error {
		if kat != nil {
			pub, sig, err := katPublic(*kat, corrupt)
			if err != nil {
				return err
			}
			if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest(h, selfTestMessage), sig) {
				return errors.New("known-answer signature does not verify")
			}
		}
		return pairwiseSign(spec, h, corrupt && kat == nil)
	}
}

// pairwiseSign generates a key of spec, signs and verifies; a signature
// verified with one bit flipped must fail.
func pairwiseSign(spec string, h crypto.Hash, corrupt bool) error {
	k, err := GenerateKey(spec, nil)
	if err != nil {
		return err
	}
	defer k.Zero()
	opts := crypto.SignerOpts(h)
	msg := selfTestMessage
	if h != 0 {
		msg = digest(h, msg)
	}
	sig, err := k.Private().Sign(rand.Reader, msg, opts)
	if err != nil {
		return err
	}
	if corrupt {
		sig[len(sig)/2] ^= 1
	}
	var ok, tamperedOK bool
	bad := bytes.Clone(sig)
	bad[len(bad)/2] ^= 0x80
	switch pub := k.Public().(type) {
	case *ecdsa.PublicKey:
		ok, tamperedOK = ecdsa.VerifyASN1(pub, msg, sig), ecdsa.VerifyASN1(pub, msg, bad)
	case ed25519.PublicKey:
		ok, tamperedOK = ed25519.Verify(pub, msg, sig), ed25519.Verify(pub, msg, bad)
	case *rsa.PublicKey:
		pss := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}
		if sig, err = k.Private().Sign(rand.Reader, msg, pss); err != nil {
			return err
		}
		if corrupt {
			sig[len(sig)/2] ^= 1
		}
		bad = bytes.Clone(sig)
		bad[len(bad)/2] ^= 0x80
		ok, tamperedOK = rsa.VerifyPSS(pub, h, msg, sig, pss) == nil, rsa.VerifyPSS(pub, h, msg, bad, pss) == nil
	default:
		return fmt.Errorf("pairwise test of %T", pub)
	}
	if !ok {
		return errors.New("pairwise consistency: a fresh key's signature does not verify")
	}
	if tamperedOK {
		return errors.New("pairwise consistency: a tampered signature verifies")
	}
	return nil
}

// rsaTest verifies the PKCS#1 v1.5 known answer, then on a fresh RSA-2048
// key signs and verifies (PSS) and encrypts and decrypts (OAEP-SHA-256).
func rsaTest(corrupt bool) error {
	pub, sig, err := katPublic(rsaKAT, corrupt)
	if err != nil {
		return err
	}
	if rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, digest(crypto.SHA256, selfTestMessage), sig) != nil {
		return errors.New("known-answer signature does not verify")
	}
	k, err := GenerateKey("RSA_2048", nil)
	if err != nil {
		return err
	}
	defer k.Zero()
	priv := k.Private().(*rsa.PrivateKey)
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, selfTestMessage, nil)
	if err != nil {
		return err
	}
	pt, err := rsa.DecryptOAEP(sha256.New(), nil, priv, ct, nil)
	if err != nil || !bytes.Equal(pt, selfTestMessage) {
		return errors.New("pairwise consistency: OAEP decrypt of an encrypt failed")
	}
	return pairwiseSignWith(k, crypto.SHA256)
}

func pairwiseSignWith(k *Key, h crypto.Hash) error {
	msg := digest(h, selfTestMessage)
	pss := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}
	sig, err := k.Private().Sign(rand.Reader, msg, pss)
	if err != nil {
		return err
	}
	pub := k.Public().(*rsa.PublicKey)
	if rsa.VerifyPSS(pub, h, msg, sig, pss) != nil {
		return errors.New("pairwise consistency: a fresh key's signature does not verify")
	}
	sig[len(sig)/2] ^= 1
	if rsa.VerifyPSS(pub, h, msg, sig, pss) == nil {
		return errors.New("pairwise consistency: a tampered signature verifies")
	}
	return nil
}

// ed25519Test is RFC 8032's test 1 (empty message), then a pairwise test.
func ed25519Test(corrupt bool) error {
	priv := ed25519.NewKeyFromSeed(unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
	if err := expect("RFC 8032 test 1 public key", priv.Public().(ed25519.PublicKey), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", false); err != nil {
		return err
	}
	sig := ed25519.Sign(priv, nil)
	if err := expect("RFC 8032 test 1 signature", sig, "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b", corrupt); err != nil {
		return err
	}
	return pairwiseSign("ECC_NIST_EDWARDS25519", 0, false)
}
