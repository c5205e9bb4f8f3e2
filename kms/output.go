package kms

import "context"

// outputSize is the memory a request's outputs get from its RequestInfo:
// ReEncrypt's opened plaintext and new blob at their largest (4 KiB each,
// the blob's framing, and room to spare).
const outputSize = 12 << 10

// output returns an empty slice of capacity n from the request's output
// memory: the memory of the RequestInfo the transport attached, which it
// clears once the response is written (ClearOutput), so that the
// plaintexts, data keys and blobs an operation returns cost the request no
// allocation and plaintexts do not outlive it. Without a RequestInfo, or
// past its memory, the slice is a fresh one the garbage collector reclaims
// uncleared, as before.
//
// The slice's capacity is exactly n: appending past it must not run into
// the next output.
func output(ctx context.Context, n int) []byte {
	ri, ok := ctx.Value(RequestInfoKey).(*RequestInfo)
	if !ok || ri == nil {
		return make([]byte, 0, n)
	}
	if ri.out == nil {
		ri.out = make([]byte, 0, outputSize)
	}
	at := len(ri.out)
	if n > cap(ri.out)-at {
		return make([]byte, 0, n)
	}
	ri.out = ri.out[:at+n]
	return ri.out[at : at : at+n]
}

// toOutput moves a secret an operation returns (a private key, a shared
// secret) into the request's output memory and zeroes where it was, so
// that it is cleared with the response (without a RequestInfo, or past its
// memory, into a fresh slice, as output).
func toOutput(ctx context.Context, secret []byte) []byte {
	out := append(output(ctx, len(secret)), secret...)
	clear(secret)
	return out
}

// ClearOutput zeroes the output memory the request's operation used. The
// transport calls it once the response is written, before the info goes
// back to its pool: the memory may hold a plaintext or a data key. Reset
// frees it for the next request.
func (ri *RequestInfo) ClearOutput() { clear(ri.out) }

// Output is the output memory the request used; after ClearOutput, zeros.
func (ri *RequestInfo) Output() []byte { return ri.out }
