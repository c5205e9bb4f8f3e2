// Package audit is Coffer's tamper-evident audit trail: one CloudTrail-shaped
// JSON record per API call, appended to JSON-lines files and durable before
// the call is answered.
//
// Records are chained: each carries the SHA-256 of the exact bytes of the
// line before it (across file rotation), and every N records or T seconds a
// digest record signed with the audit signing key (ECDSA P-256) seals the
// chain so far. Verify replays the chain and the signatures and names the
// first record that was edited, deleted, inserted or moved.
//
// A Record has no member for plaintext, data keys, MAC messages or secrets:
// callers put only request parameters that AWS itself logs.
package audit

import (
	"encoding/json"
	"errors"
)

// Record is one audit record, CloudTrail-shaped.
type Record struct {
	EventVersion       string          `json:"eventVersion"`
	EventTime          string          `json:"eventTime"`
	EventSource        string          `json:"eventSource"`
	EventName          string          `json:"eventName"`
	AWSRegion          string          `json:"awsRegion"`
	SourceIPAddress    string          `json:"sourceIPAddress,omitempty"`
	UserAgent          string          `json:"userAgent,omitempty"`
	UserIdentity       UserIdentity    `json:"userIdentity"`
	RequestParameters  json.RawMessage `json:"requestParameters,omitempty"`
	ResponseElements   json.RawMessage `json:"responseElements,omitempty"`
	RequestID          string          `json:"requestID"`
	EventID            string          `json:"eventID"`
	ReadOnly           bool            `json:"readOnly"`
	Resources          []Resource      `json:"resources,omitempty"`
	ErrorCode          string          `json:"errorCode,omitempty"`
	ErrorMessage       string          `json:"errorMessage,omitempty"`
	EventType          string          `json:"eventType"`
	RecipientAccountID string          `json:"recipientAccountId,omitempty"`

	// The chain: the record's position and the SHA-256 (hex) of the
	// previous line's bytes. Set by the Writer.
	Seq      uint64 `json:"seq"`
	PrevHash string `json:"prevHash"`

	// Digest records (EventType "CofferDigest") seal the chain.
	Digest *Digest `json:"digest,omitempty"`
}

// UserIdentity is who made the call.
type UserIdentity struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId,omitempty"`
	ARN         string `json:"arn,omitempty"`
	AccountID   string `json:"accountId,omitempty"`
	AccessKeyID string `json:"accessKeyId,omitempty"`
}

// Resource is a resource the call touched.
type Resource struct {
	ARN       string `json:"ARN"`
	Type      string `json:"type"`
	AccountID string `json:"accountId,omitempty"`
}

// Digest is the body of a digest record: a signature over the chain head
// (the hash of the line before the digest) and the range it seals.
type Digest struct {
	FirstSeq  uint64 `json:"firstSeq"`
	LastSeq   uint64 `json:"lastSeq"`
	HeadHash  string `json:"headHash"`
	Signature []byte `json:"signature"` // ASN.1 ECDSA over SHA-256 of signedBytes
}

// Event types.
const (
	EventTypeAPICall = "AwsApiCall"
	EventTypeDigest  = "CofferDigest"
)

// ErrUnavailable is what Append returns once the audit cannot be written:
// the caller must refuse the request rather than serve it unaudited.
var ErrUnavailable = errors.New("audit: unavailable")

// signedBytes is what a digest's signature covers.
func (d *Digest) signedBytes() []byte {
	b, _ := json.Marshal(struct {
		F, L uint64
		H    string
	}{d.FirstSeq, d.LastSeq, d.HeadHash})
	return append([]byte("coffer/audit-digest/v1\n"), b...)
}
