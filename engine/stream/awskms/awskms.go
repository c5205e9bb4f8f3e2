// Package awskms is a stream.KeyProvider over the AWS KMS API through
// aws-sdk-go-v2: AWS KMS itself, or a remote Coffer, which speaks the same
// protocol. The same pipeline code then runs against either.
//
//	cfg, _ := config.LoadDefaultConfig(ctx) // AWS_ENDPOINT_URL_KMS points it at Coffer
//	p := awskms.New(kms.NewFromConfig(cfg))
//	w, _ := stream.NewWriter(ctx, dst, p, stream.Config{KeyID: "alias/pipeline"})
package awskms

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/coffer-kms/coffer/engine/stream"
)

// API is the part of *kms.Client a Provider calls.
type API interface {
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

var _ API = (*kms.Client)(nil)

// Provider makes and unwraps data keys with GenerateDataKey (KeySpec
// AES_256) and Decrypt.
type Provider struct{ api API }

var _ stream.KeyProvider = (*Provider)(nil)

// New returns a Provider over api, typically a *kms.Client.
func New(api API) *Provider { return &Provider{api: api} }

// Load returns a Provider configured as the AWS CLI and SDKs are: the
// default credential chain, AWS_REGION, and AWS_ENDPOINT_URL_KMS (or
// AWS_ENDPOINT_URL) for the endpoint, which is how it reaches a Coffer.
func Load(ctx context.Context, optFns ...func(*config.LoadOptions) error) (*Provider, error) {
	cfg, err := config.LoadDefaultConfig(ctx, optFns...)
	if err != nil {
		return nil, fmt.Errorf("awskms: load AWS configuration: %w", err)
	}
	return New(kms.NewFromConfig(cfg)), nil
}

// GenerateDataKey implements stream.KeyProvider. The API's errors (smithy
// APIError values such as NotFoundException) are returned wrapped.
func (p *Provider) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) ([]byte, []byte, string, error) {
	out, err := p.api.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(keyID),
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: encCtx,
	})
	if err != nil {
		return nil, nil, "", fmt.Errorf("awskms: GenerateDataKey: %w", err)
	}
	if len(out.Plaintext) != stream.DataKeySize || len(out.CiphertextBlob) == 0 {
		clear(out.Plaintext)
		return nil, nil, "", fmt.Errorf("awskms: GenerateDataKey returned a %d-byte key and a %d-byte blob", len(out.Plaintext), len(out.CiphertextBlob))
	}
	return out.Plaintext, out.CiphertextBlob, aws.ToString(out.KeyId), nil
}

// Decrypt implements stream.KeyProvider. keyID is sent as Decrypt's KeyId,
// so the KMS refuses (IncorrectKeyException) a blob under another key.
func (p *Provider) Decrypt(ctx context.Context, keyID string, blob []byte, encCtx map[string]string) ([]byte, error) {
	in := &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: encCtx}
	if keyID != "" {
		in.KeyId = aws.String(keyID)
	}
	out, err := p.api.Decrypt(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("awskms: Decrypt: %w", err)
	}
	return out.Plaintext, nil
}
