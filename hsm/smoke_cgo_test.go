//go:build cgo

package hsm

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

func TestSmokePKCS11(t *testing.T) {
	ctx := context.Background()
	b := openPKCS11(t, "smoke")
	w, err := b.Wrap(ctx, []byte("0123456789abcdef0123456789abcdef"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := b.Unwrap(ctx, w, []byte("aad"))
	if err != nil || !bytes.Equal(pt, []byte("0123456789abcdef0123456789abcdef")) {
		t.Fatal(pt, err)
	}
	w[20] ^= 1
	_, err = b.Unwrap(ctx, w, []byte("aad"))
	t.Log(err)
	if !errors.Is(err, ErrUnwrap) {
		t.Fatal(err)
	}
	w[20] ^= 1
	pt, err = b.Unwrap(ctx, w, []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := b.GenerateKey(ctx, "cks-1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.Encrypt(ctx, id, []byte("hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.Decrypt(ctx, id, c, nil)
	t.Log(string(p), err)
	if err := b.DestroyKey(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err = b.Decrypt(ctx, id, c, nil)
	t.Log(err)
	r, err := b.GenerateRandom(ctx, 16)
	t.Log(len(r), err)
	b.mod.ctx.CloseAllSessions(uint(b.slot.Load()))
	pt, err = b.Unwrap(ctx, w, []byte("aad"))
	t.Log("after closeall", err)
	b.mod.ctx.Finalize()
	pt, err = b.Unwrap(ctx, w, []byte("aad"))
	t.Log("after finalize", err)
	pt, err = b.Unwrap(ctx, w, []byte("aad"))
	t.Log("after finalize", err)
}
