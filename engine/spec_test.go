package engine

import (
	"crypto/rand"
	"errors"
	"slices"
	"testing"
)

// awsKeySpecs is botocore's KeySpec enum (aws-kms-api.md §1.2): the table
// must hold every one of them and nothing else.
var awsKeySpecs = []string{
	"SYMMETRIC_DEFAULT",
	"RSA_2048", "RSA_3072", "RSA_4096",
	"ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_SECG_P256K1",
	"ECC_NIST_EDWARDS25519",
	"ML_DSA_44", "ML_DSA_65", "ML_DSA_87",
	"HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512",
	"SM2",
}

func TestSpecTableComplete(t *testing.T) {
	var names []string
	for _, s := range Specs() {
		names = append(names, s.Name())
	}
	slices.Sort(names)
	want := slices.Sorted(slices.Values(awsKeySpecs))
	if !slices.Equal(names, want) {
		t.Fatalf("table specs = %v, want %v", names, want)
	}
	for _, name := range awsKeySpecs {
		if s, ok := LookupSpec(name); !ok || s.Name() != name {
			t.Errorf("LookupSpec(%q) = %v, %v", name, s, ok)
		}
	}
	for _, name := range []string{"", "symmetric_default", "RSA_1024", "AES_256", "HMAC_SHA_256"} {
		if _, ok := LookupSpec(name); ok {
			t.Errorf("LookupSpec(%q) found a spec", name)
		}
	}
}

// TestSpecAlgorithms checks each usage lists the algorithms of the family
// AWS documents for it, and no others.
func TestSpecAlgorithms(t *testing.T) {
	for _, s := range Specs() {
		usages := s.Usages()
		if len(usages) == 0 {
			t.Errorf("%s: no usages", s.Name())
		}
		for _, u := range usages {
			if !s.Allows(u) {
				t.Errorf("%s: Usages lists %s but Allows refuses it", s.Name(), u)
			}
			a, ok := s.Algorithms(u)
			if !ok {
				t.Fatalf("%s: no algorithms for allowed usage %s", s.Name(), u)
			}
			lists := map[string][]string{
				UsageEncryptDecrypt:    a.Encryption,
				UsageSignVerify:        a.Signing,
				UsageKeyAgreement:      a.KeyAgreement,
				UsageGenerateVerifyMAC: a.MAC,
			}
			for lu, l := range lists {
				if lu == u && len(l) == 0 {
					t.Errorf("%s/%s: empty algorithm list", s.Name(), u)
				}
				if lu != u && l != nil {
					t.Errorf("%s/%s: lists %s algorithms %v", s.Name(), u, lu, l)
				}
			}
		}
		if s.Allows("SIGN") || s.Allows("") {
			t.Errorf("%s allows a usage AWS does not have", s.Name())
		}
		if _, ok := s.Algorithms("NOT_A_USAGE"); ok {
			t.Errorf("%s: algorithms for an unknown usage", s.Name())
		}
	}
}

func TestSpecUsages(t *testing.T) {
	tests := []struct {
		spec   string
		kind   Kind
		usages []string
	}{
		{"SYMMETRIC_DEFAULT", KindSymmetric, []string{UsageEncryptDecrypt}},
		{"RSA_2048", KindRSA, []string{UsageEncryptDecrypt, UsageSignVerify}},
		{"RSA_3072", KindRSA, []string{UsageEncryptDecrypt, UsageSignVerify}},
		{"RSA_4096", KindRSA, []string{UsageEncryptDecrypt, UsageSignVerify}},
		{"ECC_NIST_P256", KindEC, []string{UsageSignVerify, UsageKeyAgreement}},
		{"ECC_NIST_P384", KindEC, []string{UsageSignVerify, UsageKeyAgreement}},
		{"ECC_NIST_P521", KindEC, []string{UsageSignVerify, UsageKeyAgreement}},
		{"ECC_SECG_P256K1", KindEC, []string{UsageSignVerify}},
		{"ECC_NIST_EDWARDS25519", KindEd25519, []string{UsageSignVerify}},
		{"ML_DSA_44", KindMLDSA, []string{UsageSignVerify}},
		{"ML_DSA_65", KindMLDSA, []string{UsageSignVerify}},
		{"ML_DSA_87", KindMLDSA, []string{UsageSignVerify}},
		{"HMAC_224", KindHMAC, []string{UsageGenerateVerifyMAC}},
		{"HMAC_256", KindHMAC, []string{UsageGenerateVerifyMAC}},
		{"HMAC_384", KindHMAC, []string{UsageGenerateVerifyMAC}},
		{"HMAC_512", KindHMAC, []string{UsageGenerateVerifyMAC}},
		{"SM2", KindSM2, []string{UsageEncryptDecrypt, UsageSignVerify, UsageKeyAgreement}},
	}
	for _, tt := range tests {
		s, ok := LookupSpec(tt.spec)
		if !ok {
			t.Fatalf("LookupSpec(%q) not found", tt.spec)
		}
		if s.Kind() != tt.kind {
			t.Errorf("%s: kind %v, want %v", tt.spec, s.Kind(), tt.kind)
		}
		if got := s.Usages(); !slices.Equal(got, tt.usages) {
			t.Errorf("%s: usages %v, want %v", tt.spec, got, tt.usages)
		}
	}
}

func TestSpecAlgorithmLists(t *testing.T) {
	tests := []struct {
		spec, usage string
		want        Algorithms
	}{
		{"SYMMETRIC_DEFAULT", UsageEncryptDecrypt, Algorithms{Encryption: []string{"SYMMETRIC_DEFAULT"}}},
		{"RSA_2048", UsageEncryptDecrypt, Algorithms{Encryption: []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}}},
		{"RSA_4096", UsageSignVerify, Algorithms{Signing: []string{
			"RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
			"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512"}}},
		{"ECC_NIST_P256", UsageSignVerify, Algorithms{Signing: []string{"ECDSA_SHA_256"}}},
		{"ECC_NIST_P384", UsageSignVerify, Algorithms{Signing: []string{"ECDSA_SHA_384"}}},
		{"ECC_NIST_P521", UsageSignVerify, Algorithms{Signing: []string{"ECDSA_SHA_512"}}},
		{"ECC_NIST_P521", UsageKeyAgreement, Algorithms{KeyAgreement: []string{"ECDH"}}},
		{"ECC_SECG_P256K1", UsageSignVerify, Algorithms{Signing: []string{"ECDSA_SHA_256"}}},
		{"ECC_NIST_EDWARDS25519", UsageSignVerify, Algorithms{Signing: []string{"ED25519_SHA_512", "ED25519_PH_SHA_512"}}},
		{"ML_DSA_65", UsageSignVerify, Algorithms{Signing: []string{"ML_DSA_SHAKE_256"}}},
		{"HMAC_224", UsageGenerateVerifyMAC, Algorithms{MAC: []string{"HMAC_SHA_224"}}},
		{"HMAC_512", UsageGenerateVerifyMAC, Algorithms{MAC: []string{"HMAC_SHA_512"}}},
		{"SM2", UsageEncryptDecrypt, Algorithms{Encryption: []string{"SM2PKE"}}},
	}
	for _, tt := range tests {
		s, _ := LookupSpec(tt.spec)
		got, ok := s.Algorithms(tt.usage)
		if !ok || !slices.Equal(got.Encryption, tt.want.Encryption) || !slices.Equal(got.Signing, tt.want.Signing) ||
			!slices.Equal(got.KeyAgreement, tt.want.KeyAgreement) || !slices.Equal(got.MAC, tt.want.MAC) {
			t.Errorf("%s/%s: algorithms %+v, %v; want %+v", tt.spec, tt.usage, got, ok, tt.want)
		}
	}
	for _, tt := range []struct{ spec, usage string }{
		{"SYMMETRIC_DEFAULT", UsageSignVerify},
		{"RSA_2048", UsageKeyAgreement},
		{"ECC_NIST_P256", UsageEncryptDecrypt},
		{"ECC_SECG_P256K1", UsageKeyAgreement},
		{"ECC_NIST_EDWARDS25519", UsageKeyAgreement},
		{"HMAC_256", UsageSignVerify},
	} {
		if s, _ := LookupSpec(tt.spec); s.Allows(tt.usage) {
			t.Errorf("%s allows %s", tt.spec, tt.usage)
		}
	}
}

// TestSpecAlgorithmsCopied: what a caller does to returned lists must not
// reach the table.
func TestSpecAlgorithmsCopied(t *testing.T) {
	s, _ := LookupSpec("RSA_2048")
	a, _ := s.Algorithms(UsageEncryptDecrypt)
	a.Encryption[0] = "tampered"
	s.Usages()[0] = "tampered"
	Specs()[0] = nil
	b, _ := s.Algorithms(UsageEncryptDecrypt)
	if b.Encryption[0] != "RSAES_OAEP_SHA_1" || s.Usages()[0] != UsageEncryptDecrypt || Specs()[0] == nil {
		t.Fatal("a caller's change reached the spec table")
	}
}

func TestSpecSupported(t *testing.T) {
	// ECC_SECG_P256K1 and ML_DSA_* became supported with their libraries
	// (decred secp256k1, cloudflare/circl); SM2 stays out by design.
	unsupported := []string{"SM2"}
	for _, s := range Specs() {
		want := !slices.Contains(unsupported, s.Name())
		if s.Supported() != want {
			t.Errorf("%s: Supported() = %v, want %v", s.Name(), s.Supported(), want)
		}
	}
	for _, name := range unsupported {
		s, _ := LookupSpec(name)
		if _, err := s.Generate(rand.Reader); !errors.Is(err, ErrUnsupportedSpec) {
			t.Errorf("%s: Spec.Generate error %v, want ErrUnsupportedSpec", name, err)
		}
		if _, err := GenerateKey(name, rand.Reader); !errors.Is(err, ErrUnsupportedSpec) {
			t.Errorf("%s: GenerateKey error %v, want ErrUnsupportedSpec", name, err)
		}
		if _, err := ParseKey(name, make([]byte, 32)); !errors.Is(err, ErrUnsupportedSpec) {
			t.Errorf("%s: ParseKey error %v, want ErrUnsupportedSpec", name, err)
		}
	}
	if _, err := GenerateKey("RSA_1024", rand.Reader); !errors.Is(err, ErrUnknownSpec) {
		t.Errorf("GenerateKey(RSA_1024) error %v, want ErrUnknownSpec", err)
	}
	if _, err := ParseKey("AES_256", make([]byte, 32)); !errors.Is(err, ErrUnknownSpec) {
		t.Errorf("ParseKey(AES_256) error %v, want ErrUnknownSpec", err)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindSymmetric: "Symmetric", KindRSA: "RSA", KindHMAC: "HMAC", 0: "Kind(invalid)", 200: "Kind(invalid)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
}

// TestSpecOffers: Offers answers what Algorithms lists, for every spec,
// usage (allowed or not), list and algorithm, and copies nothing.
func TestSpecOffers(t *testing.T) {
	picks := map[string]func(*Algorithms) []string{
		"Encryption":   func(a *Algorithms) []string { return a.Encryption },
		"Signing":      func(a *Algorithms) []string { return a.Signing },
		"KeyAgreement": func(a *Algorithms) []string { return a.KeyAgreement },
		"MAC":          func(a *Algorithms) []string { return a.MAC },
	}
	usages := []string{UsageEncryptDecrypt, UsageSignVerify, UsageGenerateVerifyMAC, UsageKeyAgreement, "NONE"}
	var every []string
	for _, s := range Specs() {
		for _, u := range usages {
			a, _ := s.Algorithms(u)
			for _, pick := range picks {
				every = append(every, pick(&a)...)
			}
		}
	}
	every = append(every, "", "symmetric_default")
	checked := 0
	for _, s := range Specs() {
		for _, u := range usages {
			a, _ := s.Algorithms(u)
			for name, pick := range picks {
				for _, alg := range every {
					if got, want := s.Offers(u, pick, alg), slices.Contains(pick(&a), alg); got != want {
						t.Errorf("%s %s %s %q: Offers %v, Algorithms %v", s.Name(), u, name, alg, got, want)
					}
					checked++
				}
			}
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d cases", checked)
	}
	s, _ := LookupSpec("SYMMETRIC_DEFAULT")
	if n := testing.AllocsPerRun(100, func() { s.Offers(UsageEncryptDecrypt, picks["Encryption"], "SYMMETRIC_DEFAULT") }); n != 0 {
		t.Fatalf("Offers allocates %v times", n)
	}
}
