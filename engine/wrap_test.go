package engine

import (
	"bytes"
	"errors"
	"testing"
)

// TestKWPVectors holds WrapKWP and UnwrapKWP to RFC 5649 §6's two
// examples (192-bit KEK, a 20-octet and a 7-octet key), and every positive
// vector with one bit flipped anywhere to a failure.
func TestKWPVectors(t *testing.T) {
	const kek = "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"
	for _, v := range []struct{ key, wrapped string }{
		{"c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
		{"466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
	} {
		k, key, want := unhex(kek), unhex(v.key), unhex(v.wrapped)
		got, err := WrapKWP(k, key)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("WrapKWP(%s) = %x, %v; want %s", v.key, got, err, v.wrapped)
		}
		back, err := UnwrapKWP(k, want)
		if err != nil || !bytes.Equal(back, key) {
			t.Fatalf("UnwrapKWP(%s) = %x, %v; want %s", v.wrapped, back, err, v.key)
		}
		for i := range len(want) * 8 {
			bad := bytes.Clone(want)
			bad[i/8] ^= 1 << (i % 8)
			if _, err := UnwrapKWP(k, bad); !errors.Is(err, ErrUnwrap) {
				t.Fatalf("bit %d flipped: UnwrapKWP = %v, want ErrUnwrap", i, err)
			}
		}
	}
}

// TestKWPRoundTrip crosses every length around the one-block case and the
// block boundaries, with each AES key size, and refuses truncation, a
// wrong key, and inputs of no whole block.
func TestKWPRoundTrip(t *testing.T) {
	for _, ks := range []int{16, 24, 32} {
		kek := bytes.Repeat([]byte{byte(ks)}, ks)
		for n := 1; n <= 70; n++ {
			pt := bytes.Repeat([]byte{0x5a}, n)
			w, err := WrapKWP(kek, pt)
			if err != nil {
				t.Fatal(err)
			}
			if want := 8 + (n+7)/8*8; len(w) != want {
				t.Fatalf("len %d wraps to %d bytes, want %d", n, len(w), want)
			}
			got, err := UnwrapKWP(kek, w)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("key %d, len %d: round trip = %x, %v", ks, n, got, err)
			}
			if _, err := UnwrapKWP(kek, w[:len(w)-8]); n > 8 && !errors.Is(err, ErrUnwrap) {
				t.Fatalf("truncated: %v", err)
			}
			other := bytes.Repeat([]byte{1}, ks)
			if _, err := UnwrapKWP(other, w); !errors.Is(err, ErrUnwrap) {
				t.Fatalf("wrong key: %v", err)
			}
		}
	}
	for _, bad := range [][]byte{nil, make([]byte, 8), make([]byte, 17)} {
		if _, err := UnwrapKWP(make([]byte, 32), bad); !errors.Is(err, ErrUnwrap) {
			t.Fatalf("%d bytes: %v", len(bad), err)
		}
	}
	if _, err := WrapKWP(make([]byte, 32), nil); err == nil {
		t.Fatal("WrapKWP of nothing succeeded")
	}
}
