package wire

import (
	"github.com/coffer-kms/coffer/kms"
)

// raw captures the bytes of any value, as json.RawMessage does.
func (l *lexer) raw(dst *[]byte) error {
	l.ws()
	start := l.i
	if err := l.skip(); err != nil {
		return err
	}
	*dst = append([]byte(nil), l.b[start:l.i]...)
	return nil
}

// DecodeEncrypt decodes an Encrypt request.
func DecodeEncrypt(body []byte, in *kms.EncryptInput) error {
	l := lexer{b: body}
	return l.object(func(name []byte) error {
		switch string(name) {
		case "KeyId":
			return l.stringMember("KeyId", &in.KeyId)
		case "Plaintext":
			return l.blobMember("Plaintext", &in.Plaintext)
		case "EncryptionContext":
			return l.mapMember("EncryptionContext", &in.EncryptionContext)
		case "GrantTokens":
			return l.listMember("GrantTokens", &in.GrantTokens)
		case "EncryptionAlgorithm":
			return l.stringMember("EncryptionAlgorithm", &in.EncryptionAlgorithm)
		case "DryRun":
			return l.boolMember("DryRun", &in.DryRun)
		}
		return l.skip()
	})
}

// DecodeDecrypt decodes a Decrypt request.
func DecodeDecrypt(body []byte, in *kms.DecryptInput) error {
	l := lexer{b: body}
	return l.object(func(name []byte) error {
		switch string(name) {
		case "CiphertextBlob":
			return l.blobMember("CiphertextBlob", &in.CiphertextBlob)
		case "EncryptionContext":
			return l.mapMember("EncryptionContext", &in.EncryptionContext)
		case "GrantTokens":
			return l.listMember("GrantTokens", &in.GrantTokens)
		case "KeyId":
			return l.stringMember("KeyId", &in.KeyId)
		case "EncryptionAlgorithm":
			return l.stringMember("EncryptionAlgorithm", &in.EncryptionAlgorithm)
		case "Recipient":
			return l.raw((*[]byte)(&in.Recipient))
		case "DryRun":
			return l.boolMember("DryRun", &in.DryRun)
		}
		return l.skip()
	})
}

// DecodeGenerateDataKey decodes a GenerateDataKey or
// GenerateDataKeyWithoutPlaintext request.
func DecodeGenerateDataKey(body []byte, in *kms.GenerateDataKeyInput) error {
	l := lexer{b: body}
	return l.object(func(name []byte) error {
		switch string(name) {
		case "KeyId":
			return l.stringMember("KeyId", &in.KeyId)
		case "EncryptionContext":
			return l.mapMember("EncryptionContext", &in.EncryptionContext)
		case "NumberOfBytes":
			return l.intMember("NumberOfBytes", &in.NumberOfBytes)
		case "KeySpec":
			return l.stringMember("KeySpec", &in.KeySpec)
		case "GrantTokens":
			return l.listMember("GrantTokens", &in.GrantTokens)
		case "Recipient":
			return l.raw((*[]byte)(&in.Recipient))
		case "DryRun":
			return l.boolMember("DryRun", &in.DryRun)
		}
		return l.skip()
	})
}

// DecodeReEncrypt decodes a ReEncrypt request.
func DecodeReEncrypt(body []byte, in *kms.ReEncryptInput) error {
	l := lexer{b: body}
	return l.object(func(name []byte) error {
		switch string(name) {
		case "CiphertextBlob":
			return l.blobMember("CiphertextBlob", &in.CiphertextBlob)
		case "SourceEncryptionContext":
			return l.mapMember("SourceEncryptionContext", &in.SourceEncryptionContext)
		case "SourceKeyId":
			return l.stringMember("SourceKeyId", &in.SourceKeyId)
		case "DestinationKeyId":
			return l.stringMember("DestinationKeyId", &in.DestinationKeyId)
		case "DestinationEncryptionContext":
			return l.mapMember("DestinationEncryptionContext", &in.DestinationEncryptionContext)
		case "SourceEncryptionAlgorithm":
			return l.stringMember("SourceEncryptionAlgorithm", &in.SourceEncryptionAlgorithm)
		case "DestinationEncryptionAlgorithm":
			return l.stringMember("DestinationEncryptionAlgorithm", &in.DestinationEncryptionAlgorithm)
		case "GrantTokens":
			return l.listMember("GrantTokens", &in.GrantTokens)
		case "DryRun":
			return l.boolMember("DryRun", &in.DryRun)
		}
		return l.skip()
	})
}
