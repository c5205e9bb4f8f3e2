package stream

import (
	"errors"
	"fmt"
)

// The closed set of errors a stream produces. Package-level failures come
// wrapped in a *PackageError that says where; test for them with errors.Is.
var (
	// ErrMalformedHeader: the input does not start with a well-formed
	// Coffer header (not a Coffer stream, or a damaged one).
	ErrMalformedHeader = errors.New("stream: malformed header")
	// ErrUnsupportedVersion: a header of a format version this build does
	// not read.
	ErrUnsupportedVersion = errors.New("stream: unsupported format version")
	// ErrHeaderAuth: the header MAC does not verify under the data key the
	// KMS returned: the header was modified.
	ErrHeaderAuth = errors.New("stream: header authentication failed: the header was modified")
	// ErrContextMismatch: the stream's encryption context lacks a pair the
	// reader requires.
	ErrContextMismatch = errors.New("stream: encryption context does not match")
	// ErrDataKey: the key provider returned a data key of the wrong size.
	ErrDataKey = errors.New("stream: invalid data key")

	// ErrTruncated: the body ends before its final package.
	ErrTruncated = errors.New("stream: truncated: the body ends before its final package")
	// ErrTrailingData: bytes follow the final package.
	ErrTrailingData = errors.New("stream: unexpected data after the final package")
	// ErrNotAuthentic: a package failed authentication: it was modified,
	// moved to another position, or sealed under another key (a body
	// spliced under another stream's header fails here at package 0).
	ErrNotAuthentic = errors.New("stream: package not authentic: modified, reordered or under another key")
	// ErrSpliced: a package carries another stream's nonce: it was spliced
	// in from another DARE stream.
	ErrSpliced = errors.New("stream: package belongs to another stream (spliced)")

	// ErrClosed: Write or Read after Close.
	ErrClosed = errors.New("stream: use after Close")
	// ErrSizeExceeded: more bytes written than Config.Size declared.
	ErrSizeExceeded = errors.New("stream: more plaintext than the declared size")
)

// PackageError locates a failure in the body.
type PackageError struct {
	Package int64 // index of the package, from 0
	Offset  int64 // plaintext offset of the package
	Err     error // ErrTruncated, ErrTrailingData, ErrNotAuthentic or ErrSpliced
}

func (e *PackageError) Error() string {
	return fmt.Sprintf("%v (package %d, plaintext offset %d)", e.Err, e.Package, e.Offset)
}

func (e *PackageError) Unwrap() error { return e.Err }

func packageError(index int64, err error) error {
	return &PackageError{Package: index, Offset: index * maxPayload, Err: err}
}
