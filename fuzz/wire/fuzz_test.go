// Package wire holds server/wire to encoding/json: the reflection-free
// decoders of the hot operations must accept exactly the bodies
// encoding/json accepts and decode them to the same values, and the
// encoders must write JSON that means what json.Marshal's does.
package wire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/kms"
	"github.com/coffer-kms/coffer/server/wire"
)

type decoder struct {
	name    string
	members []string
	decode  func([]byte) (any, error)
	oracle  func([]byte) (any, error)
}

func pair[T any](name string, members []string, fast func([]byte, *T) error) decoder {
	return decoder{
		name:    name,
		members: members,
		decode:  func(b []byte) (any, error) { v := new(T); err := fast(b, v); return v, err },
		oracle: func(b []byte) (any, error) {
			v := new(T)
			if len(strings.Trim(string(b), jsonSpace)) == 0 {
				return v, nil // an empty body is an empty request
			}
			if strings.TrimLeft(string(b), jsonSpace)[0] != '{' {
				return v, &json.SyntaxError{}
			}
			if err := wire.CheckDepth(b); err != nil { // the server's general path does the same
				return v, err
			}
			return v, json.Unmarshal(b, v)
		},
	}
}

// jsonSpace is JSON's whitespace (RFC 8259), narrower than unicode.IsSpace.
const jsonSpace = " \t\r\n"

var decoders = []decoder{
	pair("Encrypt", []string{"KeyId", "Plaintext", "EncryptionContext", "GrantTokens", "EncryptionAlgorithm", "DryRun"}, wire.DecodeEncrypt),
	pair("Decrypt", []string{"CiphertextBlob", "EncryptionContext", "GrantTokens", "KeyId", "EncryptionAlgorithm", "Recipient", "DryRun"}, wire.DecodeDecrypt),
	pair("GenerateDataKey", []string{"KeyId", "EncryptionContext", "NumberOfBytes", "KeySpec", "GrantTokens", "Recipient", "DryRun"}, wire.DecodeGenerateDataKey),
	pair("ReEncrypt", []string{"CiphertextBlob", "SourceEncryptionContext", "SourceKeyId", "DestinationKeyId", "DestinationEncryptionContext",
		"SourceEncryptionAlgorithm", "DestinationEncryptionAlgorithm", "GrantTokens", "DryRun"}, wire.DecodeReEncrypt),
}

// caseFolded reports whether body names a member in another letter case:
// encoding/json matches it, AWS (and wire) do not.
func caseFolded(body []byte, members []string) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return false
	}
	for k := range top {
		for _, m := range members {
			if k != m && strings.EqualFold(k, m) {
				return true
			}
		}
	}
	return false
}

func FuzzDecode(f *testing.F) {
	for i, body := range []string{
		`{"KeyId":"alias/x","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b","c":null},"GrantTokens":["t",null],"DryRun":true}`,
		`{"CiphertextBlob":"AQID","Recipient":{"AttestationDocument":"x"},"KeyId":null}`,
		`{"KeyId":"k","NumberOfBytes":32,"KeySpec":"AES_256"}`,
		`{"CiphertextBlob":"AQID","DestinationKeyId":"k","SourceEncryptionContext":{}}`,
		`{"KeyId":"\u00e9\ud83d\ude00\ud800x\\n","Unknown":[1,{"a":[]},-2.5e3,true]}`,
		`{"NumberOfBytes":1e2}`, `{"NumberOfBytes":99999999999999999999}`, `{"Plaintext":"a b"}`,
		` { } `, ``, `[]`, `{"KeyId":1}`, `{"a":1,}`, `{"KeyId":"x"} x`, "{\"KeyId\":\"\xff\"}",
		"{\"Plaintext\":\"aGVs\nbG8=\"}", `{"Plaintext":"aGVs\nbG8="}`, `{"Plaintext":"aGVs\/bG8="}`, `{"Plaintext":"aGVs\"}`,
		`{"Plaintext":"aGVsbG8="`, "{\"Plaintext\":\"aGVs\x00bG8=\"}", `{"Plaintext":"aGVs\u0062G8="}`,
	} {
		f.Add(uint8(i), []byte(body))
	}
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		d := decoders[int(op)%len(decoders)]
		if caseFolded(body, d.members) {
			return
		}
		got, err := d.decode(body)
		want, werr := d.oracle(body)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%s %q: wire error %v, encoding/json error %v", d.name, body, err, werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s %q:\n wire %#v\n json %#v", d.name, body, got, want)
		}
	})
}

// FuzzEncode checks the response encoders against json.Marshal.
func FuzzEncode(f *testing.F) {
	f.Add([]byte("blob"), "arn:aws:kms:us-east-1:111122223333:key/1", "SYMMETRIC_DEFAULT", "mat")
	f.Add([]byte{}, "<&>\u2028\"\\\x01\xff", "", "")
	f.Fuzz(func(t *testing.T, blob []byte, s1, s2, s3 string) {
		check := func(name string, fast []byte, v any) {
			std, _ := json.Marshal(v)
			var a, b any
			if err := json.Unmarshal(fast, &a); err != nil {
				t.Fatalf("%s: wire wrote invalid JSON %q: %v", name, fast, err)
			}
			json.Unmarshal(std, &b)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%s:\n wire %s\n json %s", name, fast, std)
			}
		}
		enc := &kms.EncryptOutput{CiphertextBlob: blob, KeyId: s1, EncryptionAlgorithm: s2}
		check("Encrypt", wire.AppendEncryptOutput(nil, enc), enc)
		dec := &kms.DecryptOutput{KeyId: s1, Plaintext: blob, EncryptionAlgorithm: s2, KeyMaterialId: s3}
		check("Decrypt", wire.AppendDecryptOutput(nil, dec), dec)
		gdk := &kms.GenerateDataKeyOutput{CiphertextBlob: blob, Plaintext: []byte(s3), KeyId: s1, KeyMaterialId: s2}
		check("GenerateDataKey", wire.AppendGenerateDataKeyOutput(nil, gdk), gdk)
		re := &kms.ReEncryptOutput{CiphertextBlob: blob, SourceKeyId: s1, KeyId: s2, SourceEncryptionAlgorithm: s3,
			DestinationEncryptionAlgorithm: s1, SourceKeyMaterialId: s2, DestinationKeyMaterialId: s3}
		check("ReEncrypt", wire.AppendReEncryptOutput(nil, re), re)
	})
}
