package engine

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/c2sp/wycheproof"
)

// Known-answer and negative vectors from Wycheproof, read from the
// github.com/c2sp/wycheproof Go module (testvectors_v1/, pinned in go.mod),
// run against the engine's own entry points: ParseKey, ParsePublicKey,
// Sign, Verify/VerifyPublic, DecryptOAEP, MAC/VerifyMAC and
// DeriveSharedSecret. Only the parameters AWS KMS offers are run; groups
// outside them are skipped and counted, except where an AWS verifier must
// refuse them (a PSS salt of another length, a truncated HMAC tag, an OAEP
// label), which run as negatives.

type wpFile struct {
	Algorithm  string
	TestGroups []wpGroup
}

type wpGroup struct {
	KeySize         int
	Sha             string
	MgfSha          string
	SLen            int
	TagSize         int
	Curve           string
	Encoding        string
	PrivateKeyPkcs8 string
	PrivateSeed     string
	PublicKeyDer    string
	PublicKey       json.RawMessage // an object, or hex for ML-DSA
	Tests           []wpTest
}

type wpTest struct {
	TcID                int
	Comment             string
	Flags               []string
	Msg, Sig, Ct, Label string
	Public, Private     string
	Shared, Key, Tag    string
	Ctx, Mu             string
	Result              string
}

func readWycheproof(t *testing.T, name string) *wpFile {
	t.Helper()
	raw, err := fs.ReadFile(wycheproof.TestVectors, name)
	if err != nil {
		t.Fatal(err)
	}
	var f wpFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &f
}

func unhexT(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tally counts a file's vectors by result and checks each one: a valid
// vector must pass, an invalid one fail, an acceptable one may do either.
type tally struct {
	t                                   *testing.T
	file                                string
	valid, invalid, acceptable, skipped int
	// signing marks a file of signing known answers (or one whose groups
	// at AWS's parameters are all valid): no invalid vectors to count.
	signing bool
}

func newTally(t *testing.T, file string) *tally { return &tally{t: t, file: file} }

func (c *tally) check(tc wpTest, ok bool, detail error) {
	c.t.Helper()
	switch tc.Result {
	case "valid":
		c.valid++
		if !ok {
			c.t.Errorf("%s tcId %d (%s %v): valid vector refused: %v", c.file, tc.TcID, tc.Comment, tc.Flags, detail)
		}
	case "invalid":
		c.invalid++
		if ok {
			c.t.Errorf("%s tcId %d (%s %v): invalid vector accepted", c.file, tc.TcID, tc.Comment, tc.Flags)
		}
	case "acceptable":
		c.acceptable++
	default:
		c.t.Fatalf("%s tcId %d: result %q", c.file, tc.TcID, tc.Result)
	}
}

// mustFail counts a vector that AWS's parameters make invalid whatever
// Wycheproof says about it.
func (c *tally) mustFail(tc wpTest, ok bool, why string) {
	c.t.Helper()
	c.invalid++
	if ok {
		c.t.Errorf("%s tcId %d: accepted though %s", c.file, tc.TcID, why)
	}
}

func (c *tally) done() {
	c.t.Helper()
	c.t.Logf("%s: %d valid, %d invalid, %d acceptable, %d skipped", c.file, c.valid, c.invalid, c.acceptable, c.skipped)
	if c.valid == 0 || c.invalid == 0 && !c.signing {
		c.t.Errorf("%s: ran %d valid and %d invalid vectors; want some of each", c.file, c.valid, c.invalid)
	}
}

var shaBits = map[string]int{"SHA-1": 1, "SHA-256": 256, "SHA-384": 384, "SHA-512": 512}

func rsaSpec(bits int) (string, bool) {
	s := fmt.Sprintf("RSA_%d", bits)
	_, ok := LookupSpec(s)
	return s, ok
}

// TestWycheproofRSAOAEP: RSAES_OAEP_SHA_1 and RSAES_OAEP_SHA_256, MGF1 with
// the same hash, empty label, 2048/3072/4096 bits. Wycheproof has no
// 3072- or 4096-bit SHA-1 file; rsa_oaep_misc_test.json adds those sizes.
func TestWycheproofRSAOAEP(t *testing.T) {
	skipAsymShort(t)
	for _, name := range []string{
		"rsa_oaep_2048_sha1_mgf1sha1_test.json",
		"rsa_oaep_2048_sha256_mgf1sha256_test.json",
		"rsa_oaep_3072_sha256_mgf1sha256_test.json",
		"rsa_oaep_4096_sha256_mgf1sha256_test.json",
		"rsa_oaep_misc_test.json",
	} {
		c := newTally(t, name)
		// rsa_oaep_misc_test.json's groups at AWS's parameters hold only
		// valid vectors.
		c.signing = name == "rsa_oaep_misc_test.json"
		for _, g := range readWycheproof(t, name).TestGroups {
			spec, ok := rsaSpec(g.KeySize)
			alg := map[string]string{"SHA-1": "RSAES_OAEP_SHA_1", "SHA-256": "RSAES_OAEP_SHA_256"}[g.Sha]
			if !ok || alg == "" || g.MgfSha != g.Sha {
				c.skipped += len(g.Tests)
				continue
			}
			k, err := ParseKey(spec, unhexT(t, g.PrivateKeyPkcs8))
			if err != nil {
				t.Fatalf("%s: ParseKey(%s): %v", name, spec, err)
			}
			max := MaxOAEPPlaintext(spec, alg)
			for _, tc := range g.Tests {
				pt, err := k.DecryptOAEP(alg, unhexT(t, tc.Ct))
				if err != nil && err != ErrInvalidCiphertext {
					t.Fatalf("%s tcId %d: error %v is not the opaque one", name, tc.TcID, err)
				}
				if tc.Label != "" {
					c.mustFail(tc, err == nil, "made with a label; AWS's is empty")
					continue
				}
				ok := err == nil && bytes.Equal(pt, unhexT(t, tc.Msg))
				if ok && len(pt) > max {
					t.Errorf("%s tcId %d: %d-byte plaintext over MaxOAEPPlaintext %d", name, tc.TcID, len(pt), max)
				}
				c.check(tc, ok, err)
			}
			// And the group's key encrypts what it decrypts.
			ct, err := EncryptOAEP(k.Public(), spec, alg, bytes.Repeat([]byte{7}, max))
			if err != nil {
				t.Fatal(err)
			}
			if pt, err := k.DecryptOAEP(alg, ct); err != nil || len(pt) != max {
				t.Fatalf("%s: EncryptOAEP round trip: %v", name, err)
			}
		}
		c.done()
	}
}

// TestWycheproofRSASignatures: RSASSA-PSS (salt = hash length, MGF1 with
// the same hash) and RSASSA-PKCS1-v1_5 verification with SHA-256/384/512,
// and PKCS1-v1_5 signing, which is deterministic, as known answers.
func TestWycheproofRSASignatures(t *testing.T) {
	skipAsymShort(t)
	pss := []string{
		"rsa_pss_2048_sha256_mgf1_32_test.json",
		"rsa_pss_2048_sha384_mgf1_48_test.json",
		"rsa_pss_3072_sha256_mgf1_32_test.json",
		"rsa_pss_4096_sha256_mgf1_32_test.json",
		"rsa_pss_4096_sha384_mgf1_48_test.json",
		"rsa_pss_4096_sha512_mgf1_64_test.json",
		"rsa_pss_misc_test.json",
	}
	var pkcs1 []string
	for _, bits := range []int{2048, 3072, 4096} {
		for _, h := range []int{256, 384, 512} {
			pkcs1 = append(pkcs1, fmt.Sprintf("rsa_signature_%d_sha%d_test.json", bits, h))
		}
	}
	for _, name := range append(pss, pkcs1...) {
		isPSS := strings.HasPrefix(name, "rsa_pss")
		c := newTally(t, name)
		for _, g := range readWycheproof(t, name).TestGroups {
			spec, ok := rsaSpec(g.KeySize)
			bits := shaBits[g.Sha]
			if !ok || bits < 256 || (isPSS && g.MgfSha != g.Sha) {
				c.skipped += len(g.Tests)
				continue
			}
			alg := fmt.Sprintf("RSASSA_PKCS1_V1_5_SHA_%d", bits)
			if isPSS {
				alg = fmt.Sprintf("RSASSA_PSS_SHA_%d", bits)
			}
			pub, err := ParsePublicKey(spec, unhexT(t, g.PublicKeyDer))
			if err != nil {
				t.Fatalf("%s: ParsePublicKey: %v", name, err)
			}
			for _, tc := range g.Tests {
				err := VerifyPublic(pub, spec, alg, MessageRaw, unhexT(t, tc.Msg), unhexT(t, tc.Sig))
				if err != nil && err != ErrSignatureMismatch {
					t.Fatalf("%s tcId %d: error %v", name, tc.TcID, err)
				}
				if isPSS && g.SLen != bits/8 {
					if tc.Result == "valid" {
						c.mustFail(tc, err == nil, "its salt is not the hash's length")
					} else {
						c.check(tc, err == nil, err)
					}
					continue
				}
				c.check(tc, err == nil, err)
			}
		}
		c.done()
	}

	for _, bits := range []int{2048, 3072, 4096} {
		name := fmt.Sprintf("rsa_pkcs1_%d_sig_gen_test.json", bits)
		c := newTally(t, name)
		c.signing = true
		for _, g := range readWycheproof(t, name).TestGroups {
			spec, _ := rsaSpec(g.KeySize)
			h := shaBits[g.Sha]
			if h < 256 {
				c.skipped += len(g.Tests)
				continue
			}
			k, err := ParseKey(spec, unhexT(t, g.PrivateKeyPkcs8))
			if err != nil {
				// Go refuses the e = 3 keys of the SmallPublicKey groups.
				c.skipped += len(g.Tests)
				continue
			}
			alg := fmt.Sprintf("RSASSA_PKCS1_V1_5_SHA_%d", h)
			for _, tc := range g.Tests {
				sig, err := k.Sign(alg, MessageRaw, unhexT(t, tc.Msg))
				c.check(tc, err == nil && bytes.Equal(sig, unhexT(t, tc.Sig)), err)
				if tc.Result == "valid" {
					// A known answer must also verify, and fail with a bit flipped.
					if err := k.Verify(alg, MessageRaw, unhexT(t, tc.Msg), sig); err != nil {
						t.Errorf("%s tcId %d: own signature: %v", name, tc.TcID, err)
					}
					sig[len(sig)/2] ^= 1
					if err := k.Verify(alg, MessageRaw, unhexT(t, tc.Msg), sig); err != ErrSignatureMismatch {
						t.Errorf("%s tcId %d: flipped signature: %v", name, tc.TcID, err)
					}
				}
			}
		}
		c.done()
	}
}

// TestWycheproofECDSA: DER signatures on P-256/SHA-256, P-384/SHA-384,
// P-521/SHA-512 and secp256k1/SHA-256, the pairs AWS offers, each checked
// as a RAW message and again as its DIGEST.
func TestWycheproofECDSA(t *testing.T) {
	skipAsymShort(t)
	for name, spec := range map[string]string{
		"ecdsa_secp256r1_sha256_test.json": "ECC_NIST_P256",
		"ecdsa_secp384r1_sha384_test.json": "ECC_NIST_P384",
		"ecdsa_secp521r1_sha512_test.json": "ECC_NIST_P521",
		"ecdsa_secp256k1_sha256_test.json": "ECC_SECG_P256K1",
	} {
		c := newTally(t, name)
		for _, g := range readWycheproof(t, name).TestGroups {
			pub, err := ParsePublicKey(spec, unhexT(t, g.PublicKeyDer))
			if err != nil {
				t.Fatalf("%s: ParsePublicKey: %v", name, err)
			}
			bits := shaBits[g.Sha]
			alg := fmt.Sprintf("ECDSA_SHA_%d", bits)
			for _, tc := range g.Tests {
				msg, sig := unhexT(t, tc.Msg), unhexT(t, tc.Sig)
				err := VerifyPublic(pub, spec, alg, MessageRaw, msg, sig)
				if err != nil && err != ErrSignatureMismatch {
					t.Fatalf("%s tcId %d: error %v", name, tc.TcID, err)
				}
				c.check(tc, err == nil, err)
				if tc.Result != "valid" {
					continue
				}
				if err := VerifyPublic(pub, spec, alg, MessageDigest, digestOf(bits, msg), sig); err != nil {
					t.Errorf("%s tcId %d: the DIGEST of a valid vector: %v", name, tc.TcID, err)
				}
			}
		}
		c.done()
	}
}

func digestOf(bits int, m []byte) []byte {
	switch bits {
	case 256:
		d := sha256.Sum256(m)
		return d[:]
	case 384:
		d := sha512.Sum384(m)
		return d[:]
	}
	d := sha512.Sum512(m)
	return d[:]
}

// TestWycheproofECDH: the SPKI-encoded ("asn") files, since DER SPKI is
// what DeriveSharedSecret takes from AWS callers. Invalid points, wrong
// curves, explicit parameters and malformed DER must all be refused.
func TestWycheproofECDH(t *testing.T) {
	skipAsymShort(t)
	for name, spec := range map[string]string{
		"ecdh_secp256r1_test.json": "ECC_NIST_P256",
		"ecdh_secp384r1_test.json": "ECC_NIST_P384",
		"ecdh_secp521r1_test.json": "ECC_NIST_P521",
	} {
		s, _ := LookupSpec(spec)
		c := newTally(t, name)
		keys := map[string]*Key{} // most vectors share a few private keys
		for _, g := range readWycheproof(t, name).TestGroups {
			if g.Encoding != "asn" {
				t.Fatalf("%s: encoding %q", name, g.Encoding)
			}
			for _, tc := range g.Tests {
				k, ok := keys[tc.Private]
				if !ok {
					k = rawECKey(t, s, unhexT(t, tc.Private))
					keys[tc.Private] = k
				}
				z, err := k.DeriveSharedSecret("ECDH", unhexT(t, tc.Public))
				if err != nil && !errors.Is(err, ErrInvalidPublicKey) {
					t.Fatalf("%s tcId %d: error %v", name, tc.TcID, err)
				}
				ok = err == nil && bytes.Equal(z, unhexT(t, tc.Shared))
				if err == nil && !ok {
					t.Errorf("%s tcId %d (%s): wrong shared secret", name, tc.TcID, tc.Result)
				}
				c.check(tc, ok, err)
			}
		}
		c.done()
	}
}

// rawECKey makes a Key from a Wycheproof private scalar (big-endian, maybe
// with a leading zero or short).
func rawECKey(t *testing.T, s *Spec, d []byte) *Key {
	t.Helper()
	n := (s.curve.Params().BitSize + 7) / 8
	for len(d) > n && d[0] == 0 {
		d = d[1:]
	}
	d = append(make([]byte, n-len(d)), d...)
	p, err := ecdsa.ParseRawPrivateKey(s.curve, d)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{spec: s, priv: p}
}

// TestWycheproofEd25519: pure Ed25519 (ED25519_SHA_512, RAW) from
// ed25519_test.json; Ed25519ph (ED25519_PH_SHA_512, DIGEST) has no
// Wycheproof file: RFC 8032 §7.3's vector, signed and verified, instead.
func TestWycheproofEd25519(t *testing.T) {
	skipAsymShort(t)
	const name = "ed25519_test.json"
	const spec = "ECC_NIST_EDWARDS25519"
	c := newTally(t, name)
	for _, g := range readWycheproof(t, name).TestGroups {
		pub, err := ParsePublicKey(spec, unhexT(t, g.PublicKeyDer))
		if err != nil {
			t.Fatalf("%s: ParsePublicKey: %v", name, err)
		}
		for _, tc := range g.Tests {
			err := VerifyPublic(pub, spec, "ED25519_SHA_512", MessageRaw, unhexT(t, tc.Msg), unhexT(t, tc.Sig))
			if err != nil && err != ErrSignatureMismatch {
				t.Fatalf("%s tcId %d: error %v", name, tc.TcID, err)
			}
			c.check(tc, err == nil, err)
		}
	}
	c.done()

	// RFC 8032 §7.1 TEST 1 (Ed25519, empty message) and §7.3 TEST abc
	// (Ed25519ph), through ParseKey from a PKCS#8 of the seed.
	for _, v := range []struct{ alg, mt, seed, msg, sig string }{
		{"ED25519_SHA_512", MessageRaw, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "",
			"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
		{"ED25519_PH_SHA_512", MessageDigest, "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42", "616263",
			"98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae4131f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"},
	} {
		// PKCS#8 of an Ed25519 seed (RFC 8410): a fixed 16-byte prefix.
		der := append(unhexT(t, "302e020100300506032b657004220420"), unhexT(t, v.seed)...)
		k, err := ParseKey(spec, der)
		if err != nil {
			t.Fatal(err)
		}
		msg := unhexT(t, v.msg)
		if v.mt == MessageDigest {
			msg = digestOf(512, msg)
		}
		sig, err := k.Sign(v.alg, v.mt, msg)
		if err != nil || hex.EncodeToString(sig) != v.sig {
			t.Errorf("RFC 8032 %s: %x, %v", v.alg, sig, err)
		}
		if err := k.Verify(v.alg, v.mt, msg, sig); err != nil {
			t.Errorf("RFC 8032 %s: verify: %v", v.alg, err)
		}
	}
}

// TestWycheproofHMAC: HMAC_SHA_224/256/384/512. Full-length tags are known
// answers for MAC and VerifyMAC; truncated tags are checked as a prefix of
// MAC and must never pass VerifyMAC (AWS compares the whole MAC). Keys of
// every length run, though ParseKey takes only AWS's lengths: MAC itself
// is defined for any key.
func TestWycheproofHMAC(t *testing.T) {
	skipAsymShort(t)
	for name, spec := range map[string]string{
		"hmac_sha224_test.json": "HMAC_224",
		"hmac_sha256_test.json": "HMAC_256",
		"hmac_sha384_test.json": "HMAC_384",
		"hmac_sha512_test.json": "HMAC_512",
	} {
		s, _ := LookupSpec(spec)
		alg := s.usages[0].algs.MAC[0]
		c := newTally(t, name)
		for _, g := range readWycheproof(t, name).TestGroups {
			full := g.TagSize == 8*s.size
			for _, tc := range g.Tests {
				k := &Key{spec: s, secret: Material(unhexT(t, tc.Key))}
				msg, tag := unhexT(t, tc.Msg), unhexT(t, tc.Tag)
				mac, err := k.MAC(alg, msg)
				if err != nil {
					t.Fatal(err)
				}
				verr := k.VerifyMAC(alg, msg, tag)
				if verr != nil && verr != ErrMACMismatch {
					t.Fatalf("%s tcId %d: error %v", name, tc.TcID, verr)
				}
				if full {
					if (verr == nil) != bytes.Equal(mac, tag) {
						t.Errorf("%s tcId %d: VerifyMAC and MAC disagree", name, tc.TcID)
					}
					c.check(tc, verr == nil, verr)
					continue
				}
				c.check(tc, bytes.HasPrefix(mac, tag), nil)
				if verr == nil {
					t.Errorf("%s tcId %d: VerifyMAC accepted a %d-bit tag", name, tc.TcID, g.TagSize)
				}
			}
		}
		c.done()
	}
}

// TestWycheproofMLDSA: ML_DSA_SHAKE_256 (pure ML-DSA, empty context)
// verification from mldsa_*_verify_test.json, where malformed public keys
// must fail ParsePublicKey; and from mldsa_*_sign_seed_test.json, the
// RFC 9881 seed-form PKCS#8 through ParseKey as a known answer for key
// derivation (its public key must be the file's) and its signatures
// through Verify. Vectors with a context string, or given only as μ
// (EXTERNAL_MU, unsupported), are skipped and counted.
func TestWycheproofMLDSA(t *testing.T) {
	skipAsymShort(t)
	for _, level := range []string{"44", "65", "87"} {
		spec := "ML_DSA_" + level
		name := "mldsa_" + level + "_verify_test.json"
		c := newTally(t, name)
		for _, g := range readWycheproof(t, name).TestGroups {
			pub, perr := ParsePublicKey(spec, unhexT(t, g.PublicKeyDer))
			if perr != nil && !errors.Is(perr, ErrInvalidPublicKey) {
				t.Fatalf("%s: ParsePublicKey: %v", name, perr)
			}
			for _, tc := range g.Tests {
				if tc.Ctx != "" {
					c.skipped++
					continue
				}
				err := perr
				if err == nil {
					err = VerifyPublic(pub, spec, "ML_DSA_SHAKE_256", MessageRaw, unhexT(t, tc.Msg), unhexT(t, tc.Sig))
					if err != nil && err != ErrSignatureMismatch {
						t.Fatalf("%s tcId %d: error %v", name, tc.TcID, err)
					}
				}
				c.check(tc, err == nil, err)
			}
		}
		c.done()

		name = "mldsa_" + level + "_sign_seed_test.json"
		c = newTally(t, name)
		c.signing = true
		s, _ := LookupSpec(spec)
		for _, g := range readWycheproof(t, name).TestGroups {
			der := unhexT(t, g.PrivateKeyPkcs8)
			if len(der) == 0 {
				// Groups given only as a seed (of any length, for the
				// IncorrectPrivateKeyLength ones): its seed-form PKCS#8.
				seed := unhexT(t, g.PrivateSeed)
				der = mustMarshal(pkcs8{Algo: pkix.AlgorithmIdentifier{Algorithm: s.mldsa.oid}, PrivateKey: append([]byte{0x80, byte(len(seed))}, seed...)})
				g.PrivateKeyPkcs8 = hex.EncodeToString(der)
			}
			k, err := ParseKey(spec, der)
			if err != nil {
				// A malformed private key: every vector of the group must
				// be invalid.
				if !errors.Is(err, ErrInvalidKey) {
					t.Fatalf("%s: ParseKey: %v", name, err)
				}
				for _, tc := range g.Tests {
					c.check(tc, false, err)
				}
				continue
			}
			var wantPub string
			if err := json.Unmarshal(g.PublicKey, &wantPub); err != nil {
				t.Fatal(err)
			}
			pubDER, err := k.PublicKeyDER()
			if err != nil || !bytes.HasSuffix(pubDER, unhexT(t, wantPub)) {
				t.Fatalf("%s: derived public key differs: %v", name, err)
			}
			if re := marshal(t, k); !bytes.Equal(re, unhexT(t, g.PrivateKeyPkcs8)) {
				t.Fatalf("%s: PKCS#8 does not round-trip", name)
			}
			for _, tc := range g.Tests {
				if tc.Ctx != "" || tc.Msg == "" && tc.Mu != "" || slices.Contains(tc.Flags, "Internal") {
					c.skipped++
					continue
				}
				err := k.Verify("ML_DSA_SHAKE_256", MessageRaw, unhexT(t, tc.Msg), unhexT(t, tc.Sig))
				c.check(tc, err == nil, err)
				if tc.Mu != "" {
					if _, err := k.Sign("ML_DSA_SHAKE_256", MessageExternalMu, unhexT(t, tc.Mu)); !errors.Is(err, ErrUnsupported) {
						t.Fatalf("%s: EXTERNAL_MU: %v", name, err)
					}
				}
			}
		}
		c.done()
	}
}

// skipAsymShort skips the asymmetric vectors in -short runs: make test runs
// them in its main pass, and its purego and arm64 (qemu) passes, which are
// there for the AES-GCM kernels and their fallbacks, run -short: these
// primitives are the standard library's and circl's on every platform, and
// under qemu the vectors alone took minutes.
func skipAsymShort(t *testing.T) {
	if testing.Short() {
		t.Skip("asymmetric vectors run in the full pass (-short)")
	}
}
