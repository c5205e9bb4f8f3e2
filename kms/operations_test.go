package kms

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/hsm"
	"github.com/coffer-kms/coffer/keystore"
)

// neverAudited are request and response members that carry plaintext,
// ciphertext, key material, messages, MACs, signatures, tokens or secrets:
// no row may allow them, whatever operation grows them.
var neverAudited = []string{"Plaintext", "CiphertextBlob", "CiphertextForRecipient", "GrantTokens", "GrantToken",
	"KeyStorePassword", "SecretAccessKey", "SessionToken", "Message", "Mac", "Signature", "ImportToken",
	"EncryptedKeyMaterial", "PrivateKeyPlaintext", "PrivateKeyCiphertextBlob", "SharedSecret", "Recipient",
	"XksProxyConfiguration", "XksProxyAuthenticationCredential", "AccessKey", "Credentials"}

// jsonMembers lists the JSON member names of struct type t, embedded
// structs flattened as encoding/json does.
func jsonMembers(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonMembers(f.Type)...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		if name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// serviceMethods are the exported methods of *Service shaped as operations:
// (ctx, *Caller, *Input) (*Output, error).
func serviceMethods() map[string]reflect.Method {
	t := reflect.TypeFor[*Service]()
	ctxType, callerType, errType := reflect.TypeFor[context.Context](), reflect.TypeFor[*Caller](), reflect.TypeFor[error]()
	out := map[string]reflect.Method{}
	for i := range t.NumMethod() {
		m := t.Method(i)
		mt := m.Type
		if mt.NumIn() == 4 && mt.In(1) == ctxType && mt.In(2) == callerType && mt.In(3).Kind() == reflect.Pointer &&
			mt.NumOut() == 2 && mt.Out(0).Kind() == reflect.Pointer && mt.Out(1) == errType {
			out[m.Name] = m
		}
	}
	return out
}

func TestCatalogue(t *testing.T) {
	methods := serviceMethods()
	seen := map[string]bool{}
	for _, o := range Operations() {
		key := string(rune('0'+o.API)) + o.Name
		if seen[key] {
			t.Errorf("%s: two rows", o.Name)
		}
		seen[key] = true
		if got, ok := LookupOperation(o.API, o.Name); !ok || got != o {
			t.Errorf("%s: LookupOperation does not find the row", o.Name)
		}
		m, bound := o.Method()
		if o.API == APISTS {
			if bound {
				t.Errorf("%s: an STS row is served by the STS transport, not a generic method", o.Name)
			}
			continue
		}
		if !bound {
			t.Errorf("%s: no method", o.Name)
			continue
		}
		sm, ok := methods[o.Name]
		if !ok {
			t.Errorf("%s: no Service method of that name", o.Name)
			continue
		}
		delete(methods, o.Name)
		in := reflect.TypeOf(m.NewInput())
		if in != sm.Type.In(3) {
			t.Errorf("%s: the bound method takes %v, Service.%s takes %v", o.Name, in, o.Name, sm.Type.In(3))
		}
		inMembers, outMembers := jsonMembers(in.Elem()), jsonMembers(sm.Type.Out(0).Elem())
		for _, member := range o.Request {
			if !slices.Contains(inMembers, member) {
				t.Errorf("%s: audited request member %s is not a member of %v", o.Name, member, in.Elem())
			}
			if slices.Contains(neverAudited, member) {
				t.Errorf("%s: request member %s must never be audited", o.Name, member)
			}
		}
		for _, member := range o.Secrets {
			if f, ok := in.Elem().FieldByName(member); !ok || f.Type != reflect.TypeFor[[]byte]() {
				t.Errorf("%s: secret request member %s is not a byte blob of %v", o.Name, member, in.Elem())
			}
			if o.Audited(member) {
				t.Errorf("%s: secret request member %s is audited", o.Name, member)
			}
		}
		for _, member := range o.Response {
			if !slices.Contains(outMembers, member) {
				t.Errorf("%s: audited response member %s is not a member of the output", o.Name, member)
			}
			if slices.Contains(neverAudited, member) {
				t.Errorf("%s: response member %s must never be audited", o.Name, member)
			}
		}
		if o.Action == "" && len(o.Keys) == 0 {
			t.Errorf("%s: neither an IAM action nor a key member", o.Name)
		}
		for _, k := range o.Keys {
			if !slices.Contains(inMembers, k.Member) {
				t.Errorf("%s: key member %s is not a member of the input", o.Name, k.Member)
			}
			if !strings.HasPrefix(k.Action, "kms:") || k.Forms&KeyOnly != KeyOnly || len(k.States) == 0 {
				t.Errorf("%s: key member %s: action %q, forms %b, states %v", o.Name, k.Member, k.Action, k.Forms, k.States)
			}
			if k.Grant != "" && !slices.Contains(grantOperations, k.Grant) {
				t.Errorf("%s: grant operation %s is not one of AWS's", o.Name, k.Grant)
			}
		}
	}
	// Every method shaped as an operation is served: a method added
	// without a row would be unreachable, or served without its facts.
	for name := range methods {
		if name == "AssumeRole" {
			continue // served by the STS transport: a row of APISTS
		}
		t.Errorf("Service.%s looks like an operation but has no row", name)
	}
	if _, ok := LookupOperation(APISTS, "AssumeRole"); !ok {
		t.Error("AssumeRole has no row")
	}
}

// TestGrantOperationsFromCatalogue checks that every grant operation AWS
// lets a grant allow maps back to the action of a row, or is one of an
// operation Coffer does not serve yet.
func TestGrantOperationsFromCatalogue(t *testing.T) {
	for _, want := range []struct{ action, grant string }{
		{"kms:Encrypt", "Encrypt"}, {"kms:Decrypt", "Decrypt"}, {"kms:ReEncryptFrom", "ReEncryptFrom"},
		{"kms:ReEncryptTo", "ReEncryptTo"}, {"kms:GenerateDataKey", "GenerateDataKey"},
		{"kms:GenerateDataKeyWithoutPlaintext", "GenerateDataKeyWithoutPlaintext"}, {"kms:CreateGrant", "CreateGrant"},
		{"kms:RetireGrant", "RetireGrant"}, {"kms:DescribeKey", "DescribeKey"},
		{"kms:PutKeyPolicy", ""}, {"kms:ScheduleKeyDeletion", ""}, {"kms:ListGrants", ""}, {"kms:RevokeGrant", ""},
	} {
		if got := grantOperationOf(want.action); got != want.grant {
			t.Errorf("grantOperationOf(%s) = %q, want %q", want.action, got, want.grant)
		}
	}
}

// keyIDCases is, for every row with a KeyId-like member, a request body
// that passes validation, with $KEY where the key goes.
var keyIDCases = map[string]string{
	"Encrypt":                         `{"KeyId":"$KEY","Plaintext":"aGk="}`,
	"Decrypt":                         `{"KeyId":"$KEY","CiphertextBlob":"$BLOB"}`,
	"GenerateDataKey":                 `{"KeyId":"$KEY","KeySpec":"AES_256"}`,
	"GenerateDataKeyWithoutPlaintext": `{"KeyId":"$KEY","KeySpec":"AES_256"}`,
	"DescribeKey":                     `{"KeyId":"$KEY"}`,
	"EnableKey":                       `{"KeyId":"$KEY"}`,
	"DisableKey":                      `{"KeyId":"$KEY"}`,
	"UpdateKeyDescription":            `{"KeyId":"$KEY","Description":"d"}`,
	"ScheduleKeyDeletion":             `{"KeyId":"$KEY","PendingWindowInDays":7}`,
	"CancelKeyDeletion":               `{"KeyId":"$KEY"}`,
	"EnableKeyRotation":               `{"KeyId":"$KEY"}`,
	"DisableKeyRotation":              `{"KeyId":"$KEY"}`,
	"RotateKeyOnDemand":               `{"KeyId":"$KEY"}`,
	"GetKeyRotationStatus":            `{"KeyId":"$KEY"}`,
	"ListKeyRotations":                `{"KeyId":"$KEY"}`,
	"GetKeyPolicy":                    `{"KeyId":"$KEY"}`,
	"PutKeyPolicy":                    `{"KeyId":"$KEY","Policy":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::111122223333:root\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}]}"}`,
	"ListKeyPolicies":                 `{"KeyId":"$KEY"}`,
	"TagResource":                     `{"KeyId":"$KEY","Tags":[{"TagKey":"k","TagValue":"v"}]}`,
	"UntagResource":                   `{"KeyId":"$KEY","TagKeys":["k"]}`,
	"ListResourceTags":                `{"KeyId":"$KEY"}`,
	"CreateGrant":                     `{"KeyId":"$KEY","GranteePrincipal":"arn:aws:iam::111122223333:user/g","Operations":["Decrypt"]}`,
	"ListGrants":                      `{"KeyId":"$KEY"}`,
	"RevokeGrant":                     `{"KeyId":"$KEY","GrantId":"0000000000000000000000000000000000000000000000000000000000000000"}`,
	"ReEncrypt/SourceKeyId":           `{"SourceKeyId":"$KEY","CiphertextBlob":"$BLOB","DestinationKeyId":"$OTHER"}`,
	"ReEncrypt/DestinationKeyId":      `{"DestinationKeyId":"$KEY","CiphertextBlob":"$BLOB"}`,
	// The forms are checked before the key's usage: a symmetric key
	// serves to tell them apart.
	"Sign":                                `{"KeyId":"$KEY","Message":"aGk=","SigningAlgorithm":"ECDSA_SHA_256"}`,
	"Verify":                              `{"KeyId":"$KEY","Message":"aGk=","SigningAlgorithm":"ECDSA_SHA_256","Signature":"aGk="}`,
	"GetPublicKey":                        `{"KeyId":"$KEY"}`,
	"GenerateMac":                         `{"KeyId":"$KEY","Message":"aGk=","MacAlgorithm":"HMAC_SHA_256"}`,
	"VerifyMac":                           `{"KeyId":"$KEY","Message":"aGk=","MacAlgorithm":"HMAC_SHA_256","Mac":"aGk="}`,
	"DeriveSharedSecret":                  `{"KeyId":"$KEY","KeyAgreementAlgorithm":"ECDH","PublicKey":"aGk="}`,
	"GenerateDataKeyPair":                 `{"KeyId":"$KEY","KeyPairSpec":"ECC_NIST_P256"}`,
	"GenerateDataKeyPairWithoutPlaintext": `{"KeyId":"$KEY","KeyPairSpec":"ECC_NIST_P256"}`,
	"GetParametersForImport":              `{"KeyId":"$KEY","WrappingAlgorithm":"RSAES_OAEP_SHA_256","WrappingKeySpec":"RSA_2048"}`,
	"ImportKeyMaterial":                   `{"KeyId":"$KEY","ImportToken":"aGk=","EncryptedKeyMaterial":"aGk=","ExpirationModel":"KEY_MATERIAL_DOES_NOT_EXPIRE"}`,
	"DeleteImportedKeyMaterial":           `{"KeyId":"$KEY"}`,
	"GetKeyLastUsage":                     `{"KeyId":"$KEY"}`,
	"ReplicateKey":                        `{"KeyId":"$KEY","ReplicaRegion":"eu-west-1"}`,
	"UpdatePrimaryRegion":                 `{"KeyId":"$KEY","PrimaryRegion":"eu-west-1"}`,
}

// awsAliasMembers are the key members whose botocore documentation reads
// "To specify a KMS key, use its key ID, key ARN, alias name, or alias ARN".
var awsAliasMembers = []string{"Encrypt", "Decrypt", "ReEncrypt/SourceKeyId", "ReEncrypt/DestinationKeyId",
	"GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "DescribeKey",
	"Sign", "Verify", "GetPublicKey", "GenerateMac", "VerifyMac", "DeriveSharedSecret",
	"GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext"}

// TestKeyIDForms runs every operation with a key member with the key named
// in each of the four forms: the forms the row accepts reach the key (any
// answer but the NotFoundException of an invalid key ID), the others are
// that NotFoundException, as AWS answers an alias given to an operation that
// takes none.
func TestKeyIDForms(t *testing.T) {
	s, c := newFormsService(t)
	ctx := context.Background()
	covered := map[string]bool{}
	for _, o := range Operations() {
		for _, k := range o.Keys {
			if k.Member == "TargetKeyId" {
				continue // the alias operations: a ValidationException of their own, tested in server
			}
			name := o.Name
			if len(o.Keys) > 1 {
				name += "/" + k.Member
			}
			body, ok := keyIDCases[name]
			if !ok {
				if o.Name == "RetireGrant" {
					continue // KeyId only with GrantId of an existing grant; server's grant tests
				}
				t.Errorf("%s: no case", name)
				continue
			}
			covered[name] = true
			// botocore's documentation of each KeyId member: these take
			// alias names and alias ARNs; every other operation takes a key
			// ID or key ARN only.
			wantForms := KeyOnly
			if slices.Contains(awsAliasMembers, name) {
				wantForms = AnyKeyForm
			}
			if k.Forms != wantForms {
				t.Errorf("%s: the row accepts forms %b, AWS documents %b", name, k.Forms, wantForms)
			}
			for _, form := range []KeyIDForms{FormKeyID, FormKeyARN, FormAliasName, FormAliasARN} {
				id, other, blob := newFormsKey(t, s, c)
				ref := map[KeyIDForms]string{
					FormKeyID: id, FormKeyARN: s.keyARN(c.Account, id),
					FormAliasName: "alias/forms-" + id, FormAliasARN: s.aliasARN(c.Account, "alias/forms-"+id),
				}[form]
				b := strings.NewReplacer("$KEY", ref, "$OTHER", other, "$BLOB", blob).Replace(body)
				m, _ := o.Method()
				in := m.NewInput()
				if err := json.Unmarshal([]byte(b), in); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				_, err := m.Call(s, ctx, c, in)
				var ke *Error
				refused := errors.As(err, &ke) && ke.Kind == ErrNotFound &&
					(strings.HasPrefix(ke.Message, "Invalid keyId") || strings.HasPrefix(ke.Message, "Invalid arn"))
				if accepts := k.Forms&form != 0; accepts == refused {
					t.Errorf("%s with a %s: accepted=%v, answered %v", name, formName(form), accepts, err)
				}
			}
		}
	}
	for name := range keyIDCases {
		if !covered[name] {
			t.Errorf("case %s names no catalogue row", name)
		}
	}
}

func formName(f KeyIDForms) string {
	return map[KeyIDForms]string{FormKeyID: "key ID", FormKeyARN: "key ARN", FormAliasName: "alias name", FormAliasARN: "alias ARN"}[f]
}

func newFormsService(t *testing.T) (*Service, *Caller) {
	t.Helper()
	root, err := hsm.OpenSoftware(hsm.SoftwareConfig{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Region: "us-east-1", Account: "111122223333", Store: keystore.NewMemory(), Root: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, &Caller{ARN: "arn:aws:iam::111122223333:root", Account: "111122223333"}
}

// newFormsKey makes a key with an alias alias/forms-<id>, a second key, and
// a ciphertext under the first, base64-encoded.
func newFormsKey(t *testing.T, s *Service, c *Caller) (id, other, blob string) {
	t.Helper()
	ctx := context.Background()
	k1, err := s.CreateKey(ctx, c, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	k2, err := s.CreateKey(ctx, c, &CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	id = k1.KeyMetadata.KeyId
	if _, err := s.CreateAlias(ctx, c, &AliasInput{AliasName: "alias/forms-" + id, TargetKeyId: id}); err != nil {
		t.Fatal(err)
	}
	enc, err := s.Encrypt(ctx, c, &EncryptInput{KeyId: id, Plaintext: []byte("hi")})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(enc.CiphertextBlob)
	return id, k2.KeyMetadata.KeyId, strings.Trim(string(raw), `"`)
}
