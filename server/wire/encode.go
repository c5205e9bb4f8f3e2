package wire

import (
	"unicode/utf8"

	"github.com/coffer-kms/coffer/asm/b64"
	"github.com/coffer-kms/coffer/kms"
)

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string, escaped as encoding/json does
// (without its HTML escaping, which JSON does not need).
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendBlob(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = b64.AppendEncode(dst, b)
	return append(dst, '"')
}

// AppendEncryptOutput appends the JSON of an Encrypt response.
func AppendEncryptOutput(dst []byte, o *kms.EncryptOutput) []byte {
	dst = append(dst, `{"CiphertextBlob":`...)
	dst = appendBlob(dst, o.CiphertextBlob)
	dst = append(dst, `,"KeyId":`...)
	dst = AppendString(dst, o.KeyId)
	dst = append(dst, `,"EncryptionAlgorithm":`...)
	dst = AppendString(dst, o.EncryptionAlgorithm)
	return append(dst, '}')
}

// AppendDecryptOutput appends the JSON of a Decrypt response.
func AppendDecryptOutput(dst []byte, o *kms.DecryptOutput) []byte {
	dst = append(dst, `{"KeyId":`...)
	dst = AppendString(dst, o.KeyId)
	dst = append(dst, `,"Plaintext":`...)
	dst = appendBlob(dst, o.Plaintext)
	dst = append(dst, `,"EncryptionAlgorithm":`...)
	dst = AppendString(dst, o.EncryptionAlgorithm)
	if o.KeyMaterialId != "" {
		dst = append(dst, `,"KeyMaterialId":`...)
		dst = AppendString(dst, o.KeyMaterialId)
	}
	return append(dst, '}')
}

// AppendGenerateDataKeyOutput appends the JSON of a GenerateDataKey
// (or WithoutPlaintext) response.
func AppendGenerateDataKeyOutput(dst []byte, o *kms.GenerateDataKeyOutput) []byte {
	dst = append(dst, `{"CiphertextBlob":`...)
	dst = appendBlob(dst, o.CiphertextBlob)
	if len(o.Plaintext) > 0 {
		dst = append(dst, `,"Plaintext":`...)
		dst = appendBlob(dst, o.Plaintext)
	}
	dst = append(dst, `,"KeyId":`...)
	dst = AppendString(dst, o.KeyId)
	if o.KeyMaterialId != "" {
		dst = append(dst, `,"KeyMaterialId":`...)
		dst = AppendString(dst, o.KeyMaterialId)
	}
	return append(dst, '}')
}

// AppendReEncryptOutput appends the JSON of a ReEncrypt response.
func AppendReEncryptOutput(dst []byte, o *kms.ReEncryptOutput) []byte {
	dst = append(dst, `{"CiphertextBlob":`...)
	dst = appendBlob(dst, o.CiphertextBlob)
	for _, f := range [...]struct{ name, v string }{
		{"SourceKeyId", o.SourceKeyId},
		{"KeyId", o.KeyId},
		{"SourceEncryptionAlgorithm", o.SourceEncryptionAlgorithm},
		{"DestinationEncryptionAlgorithm", o.DestinationEncryptionAlgorithm},
		{"SourceKeyMaterialId", o.SourceKeyMaterialId},
		{"DestinationKeyMaterialId", o.DestinationKeyMaterialId},
	} {
		if f.v == "" && (f.name == "SourceKeyMaterialId" || f.name == "DestinationKeyMaterialId") {
			continue
		}
		dst = append(dst, ',', '"')
		dst = append(dst, f.name...)
		dst = append(dst, '"', ':')
		dst = AppendString(dst, f.v)
	}
	return append(dst, '}')
}
