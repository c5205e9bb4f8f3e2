package kms

import (
	"context"
	"fmt"

	"github.com/coffer-kms/coffer/engine/stream"
)

// StreamKeys is a stream.KeyProvider over a Service in the same process:
// data keys come from GenerateDataKey (AES_256) and are unwrapped with
// Decrypt, run as one caller with the same authorization, key states and
// errors as over the API. Its blobs are the API's: a stream written through
// StreamKeys reads back through a remote Coffer (package
// engine/stream/awskms) and the other way round.
//
// Calls through StreamKeys never reach a server, so they are not in the
// server's audit trail; a program that embeds the Service audits them
// itself.
type StreamKeys struct {
	svc    *Service
	caller Caller
}

var _ stream.KeyProvider = (*StreamKeys)(nil)

// StreamKeys returns a provider acting as c.
func (s *Service) StreamKeys(c Caller) *StreamKeys {
	return &StreamKeys{svc: s, caller: c}
}

// GenerateDataKey implements stream.KeyProvider. Errors are the service's
// *Error values, wrapped.
func (p *StreamKeys) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) ([]byte, []byte, string, error) {
	c := p.caller
	out, err := p.svc.GenerateDataKey(ctx, &c, &GenerateDataKeyInput{KeyId: keyID, KeySpec: "AES_256", EncryptionContext: encCtx})
	if err != nil {
		return nil, nil, "", fmt.Errorf("kms: GenerateDataKey: %w", err)
	}
	if len(out.Plaintext) != stream.DataKeySize {
		clear(out.Plaintext)
		return nil, nil, "", fmt.Errorf("kms: GenerateDataKey made a %d-byte key", len(out.Plaintext))
	}
	return out.Plaintext, out.CiphertextBlob, out.KeyId, nil
}

// Decrypt implements stream.KeyProvider; a blob under another key than
// keyID fails with IncorrectKeyException.
func (p *StreamKeys) Decrypt(ctx context.Context, keyID string, blob []byte, encCtx map[string]string) ([]byte, error) {
	c := p.caller
	out, err := p.svc.Decrypt(ctx, &c, &DecryptInput{KeyId: keyID, CiphertextBlob: blob, EncryptionContext: encCtx})
	if err != nil {
		return nil, fmt.Errorf("kms: Decrypt: %w", err)
	}
	return out.Plaintext, nil
}
