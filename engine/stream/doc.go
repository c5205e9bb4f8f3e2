// Package stream is envelope encryption for data of any length: each stream
// is encrypted under its own data key from a KMS (AWS KMS, Coffer, or the
// offline LocalProvider), in minio/sio's DARE 2.0 format, on every core and
// in bounded memory.
//
// # Format
//
// A stream is an authenticated header followed by a body (see Header for the
// byte layout). The header carries the KMS ciphertext blob of the data key,
// the key's ARN, the encryption context, the cipher suite and the package
// geometry, and a random 32-byte message ID. Two keys are derived from the
// data key with HKDF-SHA-256, salted with the message ID:
//
//	header key = HKDF(data key, message ID, "coffer stream v1 header key")
//	body key   = HKDF(data key, message ID, "coffer stream v1 body key")
//
// The header ends with HMAC-SHA-256 under the header key, which also commits
// the stream to its data key. The body is one DARE 2.0 stream under the body
// key, byte for byte what minio/sio writes: given the body key
// (Header.BodyKey), sio decrypts any body this package writes, and this
// package decrypts any DARE 2.0 stream sio writes under a header's body key.
// Because every stream has its own body key, a data key shared through a
// Cache never puts two bodies under one key, and a body cannot be moved
// under another header. An empty plaintext is a header with the empty flag
// and no body (DARE has no empty final package; sio writes nothing for it).
//
// DARE seals 64 KiB packages with a shared random nonce, a sequence number
// and a final flag, so truncation, reordering, splicing and trailing data
// are each detected, and reported as ErrTruncated, ErrNotAuthentic,
// ErrSpliced and ErrTrailingData in a *PackageError that names the package.
//
// # Reading and what it guarantees
//
// NewReader authenticates the header before returning, after the
// KeyProvider has unwrapped the data key (a wrong key or context fails
// there, or with ErrContextMismatch if Config.Context requires a pair the
// stream lacks). Read then returns only plaintext of packages that
// authenticated at their position. The stream is complete and authentic
// only when Read returns io.EOF: an error in package i is returned after
// the plaintext of packages 0..i-1, in place of io.EOF, on both paths.
// Consumers that must not act on a partial stream commit their output only
// at io.EOF. ReaderAt authenticates the header, package 0 and the last
// package up front, so its Size is authentic and truncation or trailing
// data fail NewReaderAt; each ReadAt authenticates the packages it touches.
//
// # Paths
//
// Config.Workers == 1 is the sequential path: where package asm has a
// kernel (VAES), packages are sealed and opened with it on the caller's
// goroutine, one package buffer, in place; elsewhere (no VAES, the purego
// build, ChaCha20-Poly1305) it is minio/sio's own writer and reader.
// Otherwise packages are sealed and opened by up to Workers (default
// GOMAXPROCS) goroutines in a ring of at most 8×Workers package buffers
// (capped at 64, 4 MiB), with order preserved; the workers live as long as
// the stream, not one per package, and no package allocates. A plain reader or
// writer is used only on the caller's goroutine. A source that is also an
// io.ReaderAt and io.Seeker (a file, a bytes.Reader) is read at offsets:
// the caller's goroutine reads package headers and each worker reads its
// own payload; but Reader.WriteTo (io.Copy) from a source that lends its
// bytes (a *bytes.Reader or *bytes.Buffer, whose WriteTo hands all it
// holds to one Write) opens each package straight from them, with no copy
// out of the source. A destination that is also an io.WriterAt and io.Seeker (a
// file not opened for appending) is written at offsets: each worker writes
// the package it sealed, from the offset the destination had when the
// header was written, and Close leaves the offset at the end of the
// stream, as writes in order would. Reader.WriteTo (io.Copy) into such a
// destination that can also be truncated and has nothing after its offset
// has the workers write the plaintext at offsets, and truncates it after
// the last good package if one fails. Such a source or destination must not
// be used otherwise until the stream is closed. A destination that lends
// its spare capacity (a *bytes.Buffer, a *bufio.Writer with room for a
// package) gets packages sealed, or plaintext opened by Reader.WriteTo,
// straight into that capacity, where the Write that appends them copies
// nothing; the workers fill it out of order, and the caller's goroutine
// writes each region in order before its Write, Close or WriteTo returns,
// so the destination is the caller's again whenever the stream is not
// inside one of them (a *bytes.Buffer is grown to hold what a Write will
// write). The ring seals with
// Config.NewAESGCM (default: package asm's fastest kernel, contexts pooled
// and zeroed between streams) or ChaCha20-Poly1305 and writes the same
// bytes sio writes, which the tests check for random inputs.
//
// The cipher suite is AES-256-GCM where the CPU has AES instructions
// (golang.org/x/sys/cpu) and ChaCha20-Poly1305 where it does not; it is
// recorded in the header and readers follow it.
//
// # Keys
//
// Data keys come from a KeyProvider: awskms for AWS KMS or a remote Coffer,
// Coffer's service in process ((*kms.Service).StreamKeys), or LocalProvider.
// A Cache (off by default) shares data keys among many small streams within
// bounds of age, messages and bytes, as the AWS Encryption SDK's caching
// materials manager does.
// Data keys and derived keys are zeroed as soon as their ciphers are built,
// and never appear in errors.
package stream
