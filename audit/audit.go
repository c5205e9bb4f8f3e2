// Package audit is Coffer's tamper-evident audit trail: one CloudTrail-shaped
// JSON record per API call, appended to JSON-lines files and durable before
// the call is answered.
//
// # Writing
//
// A Writer owns a directory of files named audit-<UTC time>-<sequence>.jsonl.
// Append returns nil only once the record is written and fsynced. Concurrent
// Appends are committed together: one goroutine writes every queued record
// with one write and one fsync, then acknowledges all of them, so a request
// waits for one fsync, not for the fsyncs of the requests ahead of it. The
// queue is bounded; when it is full Append blocks (honouring its context)
// rather than drop anything. When a write or fsync fails, every Append
// returns an error wrapping ErrUnavailable at once (the caller must refuse
// the request rather than serve it unaudited) while the Writer retries with
// backoff; once the disk recovers it goes on by itself. Err reports its
// health for a readiness check. It never preallocates the last MinFree
// bytes of the disk, and Open refuses to start under them.
//
// Open recovers from a crash: it drops a torn final line (a write that was
// never acknowledged) and continues the chain from the last complete record.
// It refuses a trail that ends before its anchor (ErrGap) until the records
// are restored or the loss is recorded with AcknowledgeGap.
//
// # Integrity
//
// Every line carries its sequence number and prevHash, the hex SHA-256 of the
// exact bytes of the line before it (across files), so an edited, deleted,
// inserted or moved line breaks the chain at a place Verify names. Every
// DigestEvery records or DigestInterval, and on Close, a digest record signed
// with the audit signing key (ECDSA P-256) seals the chain so far: whoever
// can rewrite the files cannot recompute a sealed chain without the key.
// Records after the last digest (a crash leaves some) are chained but not
// sealed; Verify reports how many, and the signed time of the last digest.
// No chain can show that lines were cut off its end: the Anchor, a signed
// record of the head kept beside the trail and rewritten every second, at
// every digest and on Close, does, for every record but those of the last
// second before an unclean stop.
//
// # Reading
//
// Verify replays the chain and the signatures and names the first bad
// record (file, line, sequence number, reason). Query selects records by
// operation, key and time; Tail follows the trail as it grows. Neither of
// those two verifies.
//
// # Secrets
//
// A Record has no member for plaintext, data keys, MAC messages, private
// keys or credentials. RequestParameters and ResponseElements are JSON built
// by the caller, who must put in them only what AWS CloudTrail logs for the
// operation (key IDs, encryption context, algorithms, key specs, counts).
package audit

import "errors"

// ErrUnavailable is wrapped by every Append error once the audit cannot be
// written (a failed write or fsync, a full disk, a closed Writer): the caller
// must refuse the request rather than serve it unaudited.
var ErrUnavailable = errors.New("audit: unavailable")

// ErrInvalidRecord is wrapped by Append's error when a record cannot be
// encoded (RequestParameters or ResponseElements is not JSON, or the line
// would exceed MaxLine). The Writer stays healthy; the record is not written.
var ErrInvalidRecord = errors.New("audit: invalid record")

// ErrBroken is wrapped by Verify's error when the chain does not hold.
var ErrBroken = errors.New("audit: chain broken")

// ErrCorrupt is wrapped by Open's error when the last complete record of the
// trail cannot be read, so the chain cannot be continued. Nothing is changed;
// run Verify and move the damaged file aside.
var ErrCorrupt = errors.New("audit: trail corrupt")

// MaxLine bounds the length of one record line, for the Writer and the readers.
const MaxLine = 1 << 20
