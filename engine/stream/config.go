package stream

import (
	"context"
	"crypto/cipher"
	"fmt"
)

// Config configures a Writer, Reader or ReaderAt. The zero value is valid
// for reading; writing needs KeyID.
type Config struct {
	// KeyID names the KMS key (key ID, ARN, alias name or alias ARN).
	// Writer: the key that generates the data key; required. Reader: if
	// set, the key the data key must be wrapped under; if empty, the key
	// ARN the header records.
	KeyID string

	// Context is the encryption context. Writer: bound to the data key by
	// the KMS and recorded, authenticated, in the header. Reader: pairs
	// that the stream's context must contain (ErrContextMismatch if not).
	Context map[string]string

	// Suite is the cipher suite a Writer uses; AutoSuite (zero) chooses
	// AES-256-GCM where the CPU has AES instructions, ChaCha20-Poly1305
	// where it does not. Readers follow the header.
	Suite Suite

	// Workers is how many packages are sealed or opened at once; 0 means
	// GOMAXPROCS. Workers == 1 takes the sequential path, on the caller's
	// goroutine: asm's kernel where the CPU has one, minio/sio's own
	// reader and writer where it does not.
	Workers int

	// NewAESGCM builds the AES-256-GCM AEAD the parallel path seals and
	// opens packages with; nil means DefaultAESGCM. Any correct AES-GCM
	// gives the same bytes: the output does not depend on it.
	NewAESGCM func(key []byte) (cipher.AEAD, error)

	// Cache, if set, reuses data keys across streams (see Cache).
	Cache *Cache

	// viaSIO makes the sequential path run through minio/sio wherever it
	// runs (tests: both implementations on every CPU).
	viaSIO bool

	// Size, if positive, declares the Writer's plaintext length: writing
	// more fails with ErrSizeExceeded. A Writer uses Cache only when Size
	// is declared.
	Size int64
}

// generate obtains the data key for a new stream.
func (c *Config) generate(ctx context.Context, p KeyProvider) (dk, blob []byte, arn string, err error) {
	if c.KeyID == "" {
		return nil, nil, "", fmt.Errorf("stream: Config.KeyID is required to write a stream")
	}
	if err := checkContext(c.Context); err != nil {
		return nil, nil, "", err
	}
	if c.Cache != nil && c.Size > 0 {
		dk, blob, arn, err = c.Cache.generate(ctx, p, c.KeyID, c.Context, uint64(c.Size))
	} else {
		dk, blob, arn, err = p.GenerateDataKey(ctx, c.KeyID, c.Context)
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("stream: generate data key under %q: %w", c.KeyID, err)
	}
	if len(dk) != DataKeySize {
		clear(dk)
		return nil, nil, "", fmt.Errorf("%w: the key provider returned %d bytes, want %d", ErrDataKey, len(dk), DataKeySize)
	}
	if arn == "" {
		arn = c.KeyID
	}
	return dk, blob, arn, nil
}

// openHeader checks h against c, obtains its data key from p, verifies the
// header MAC and returns the body key. The caller clears the key.
func (c *Config) openHeader(ctx context.Context, p KeyProvider, h *Header) ([]byte, error) {
	for k, v := range c.Context {
		if got, ok := h.Context[k]; !ok || got != v {
			return nil, fmt.Errorf("%w: the stream's context has no %q with the required value", ErrContextMismatch, k)
		}
	}
	keyID := c.KeyID
	if keyID == "" {
		keyID = h.KeyARN
	}
	var dk []byte
	var err error
	if c.Cache != nil {
		dk, err = c.Cache.decrypt(ctx, p, keyID, h.Blob, h.Context)
	} else {
		dk, err = p.Decrypt(ctx, keyID, h.Blob, h.Context)
	}
	if err != nil {
		return nil, fmt.Errorf("stream: decrypt the data key under %q: %w", keyID, err)
	}
	defer clear(dk)
	if len(dk) != DataKeySize {
		return nil, fmt.Errorf("%w: the key provider returned %d bytes, want %d", ErrDataKey, len(dk), DataKeySize)
	}
	if err := h.Verify(dk); err != nil {
		return nil, err
	}
	return h.BodyKey(dk)
}
