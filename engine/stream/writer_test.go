package stream

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

func TestWriterSizeExceeded(t *testing.T) {
	p := newTestProvider(t)
	for _, m := range modes {
		w, err := NewWriter(context.Background(), new(bytes.Buffer), p, m.cfg(Config{KeyID: p.KeyID(), Size: 10}))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(make([]byte, 8))
		if _, err := w.Write(make([]byte, 3)); !errors.Is(err, ErrSizeExceeded) {
			t.Fatalf("%s: %v", m.name, err)
		}
		if err := w.Close(); !errors.Is(err, ErrSizeExceeded) {
			t.Fatalf("%s: Close after a failed Write: %v", m.name, err)
		}
	}
}

func TestWriteAfterClose(t *testing.T) {
	p := newTestProvider(t)
	for _, m := range modes {
		w, _ := NewWriter(context.Background(), new(bytes.Buffer), p, m.cfg(Config{KeyID: p.KeyID()}))
		w.Write([]byte("x"))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("y")); err != ErrClosed {
			t.Fatalf("%s: Write after Close: %v", m.name, err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("%s: second Close: %v", m.name, err)
		}
	}
}

type failWriter struct{ n int }

var errDisk = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errDisk
	}
	return len(p), nil
}

func TestWriterDestinationFails(t *testing.T) {
	p := newTestProvider(t)
	for _, m := range modes {
		for _, room := range []int{0, 300, 3 * maxPackage} {
			w, err := NewWriter(context.Background(), &failWriter{n: room}, p, m.cfg(Config{KeyID: p.KeyID()}))
			if err != nil {
				t.Fatal(err)
			}
			_, err = w.Write(make([]byte, 10*maxPayload))
			if err == nil {
				err = w.Close()
			}
			if !errors.Is(err, errDisk) {
				t.Fatalf("%s, %d bytes of room: %v", m.name, room, err)
			}
		}
	}
}

func TestWriterConfigErrors(t *testing.T) {
	p := newTestProvider(t)
	ctx := context.Background()
	if _, err := NewWriter(ctx, nil, p, Config{}); err == nil {
		t.Fatal("no KeyID")
	}
	if _, err := NewWriter(ctx, nil, p, Config{KeyID: "local:0000"}); !errors.Is(err, ErrLocalKeyID) {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := NewWriter(ctx, nil, p, Config{KeyID: p.KeyID(), Context: map[string]string{"": "v"}}); !errors.Is(err, ErrMalformedHeader) {
		t.Fatalf("empty context key: %v", err)
	}
	if _, err := NewWriter(ctx, nil, p, Config{KeyID: p.KeyID(), Suite: 9}); err == nil {
		t.Fatal("unknown suite")
	}
}

// Header encoding: Marshal and ParseHeader are inverse, and the data key
// never appears in the header or in an error.
func TestHeaderRoundTrip(t *testing.T) {
	p := newTestProvider(t)
	stream := encrypt(t, p, Config{Context: testCtx}, randBytes(5), 0)
	h, _ := body(t, stream)
	b, err := h.Marshal()
	if err != nil || !bytes.Equal(b, stream[:h.Size()]) {
		t.Fatalf("Marshal of a parsed header differs: %v", err)
	}
	dk := dataKey(t, p, h)
	if bytes.Contains(stream, dk) {
		t.Fatal("data key in the stream")
	}
	if err := h.Verify(dk); err != nil {
		t.Fatal(err)
	}
}
