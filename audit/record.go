package audit

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Record is one audit record, shaped like a CloudTrail event for KMS.
//
// It deliberately has no member for plaintext, data keys, MAC messages,
// private keys, grant tokens or secret access keys. RequestParameters and
// ResponseElements are JSON the caller builds; they must hold only what
// CloudTrail logs (key IDs, encryption context, algorithms, key specs,
// counts), never a secret. Params.JSON builds RequestParameters from a type
// that has no place for one.
type Record struct {
	EventVersion    string       `json:"eventVersion"` // "1.08" when empty
	UserIdentity    UserIdentity `json:"userIdentity"`
	EventTime       string       `json:"eventTime"`   // RFC 3339, UTC; the Writer's clock when empty
	EventSource     string       `json:"eventSource"` // "kms.amazonaws.com" when empty
	EventName       string       `json:"eventName"`   // the operation, e.g. "Decrypt"
	AWSRegion       string       `json:"awsRegion"`
	SourceIPAddress string       `json:"sourceIPAddress,omitempty"`
	UserAgent       string       `json:"userAgent,omitempty"`
	ErrorCode       string       `json:"errorCode,omitempty"` // failures only
	ErrorMessage    string       `json:"errorMessage,omitempty"`

	// Each must be a JSON value when set (Append refuses anything else).
	RequestParameters json.RawMessage `json:"requestParameters,omitempty"`
	ResponseElements  json.RawMessage `json:"responseElements,omitempty"`
	// AdditionalEventData is CloudTrail's member for what the service adds:
	// Coffer marks a record recovered from the store's outbox at start.
	AdditionalEventData json.RawMessage `json:"additionalEventData,omitempty"`
	// Params, when set, is encoded as requestParameters in place of
	// RequestParameters (set at most one of the two): the bytes are those
	// Params.AppendJSON appends, JSON by construction, so Append encodes
	// them straight into the line without checking them again. Decoding a
	// line sets RequestParameters.
	Params *Params `json:"-"`

	RequestID          string     `json:"requestID"`
	EventID            string     `json:"eventID"` // a UUID; see NewEventID
	ReadOnly           bool       `json:"readOnly"`
	Resources          []Resource `json:"resources,omitempty"`
	EventType          string     `json:"eventType"` // EventTypeAPICall when empty
	RecipientAccountID string     `json:"recipientAccountId,omitempty"`

	// Digest is set on digest records only (EventType EventTypeDigest).
	Digest *Digest `json:"digest,omitempty"`
	// Gap is set on acknowledged-gap records only (EventType EventTypeGap).
	Gap *Gap `json:"gap,omitempty"`

	// The chain, set by the Writer: the record's position in the trail and
	// the hex SHA-256 of the exact bytes of the line before it ("" for the
	// first record).
	Seq      uint64 `json:"seq"`
	PrevHash string `json:"prevHash"`
}

// UserIdentity is who made the call.
type UserIdentity struct {
	Type        string `json:"type"` // "IAMUser", "Root", "AssumedRole", "Unknown"
	PrincipalID string `json:"principalId,omitempty"`
	ARN         string `json:"arn,omitempty"`
	AccountID   string `json:"accountId,omitempty"`
	AccessKeyID string `json:"accessKeyId,omitempty"`
}

// Resource is a resource the call touched.
type Resource struct {
	ARN       string `json:"ARN"`
	Type      string `json:"type"` // ResourceTypeKey
	AccountID string `json:"accountId,omitempty"`
}

// Values CloudTrail uses for KMS, and Coffer's own for digests.
const (
	EventVersion     = "1.08"
	EventSource      = "kms.amazonaws.com"
	EventTypeAPICall = "AwsApiCall"
	// EventTypeServiceEvent is CloudTrail's type of what KMS does by itself
	// (automatic rotation, deletion at the end of a waiting period).
	EventTypeServiceEvent = "AwsServiceEvent"
	EventTypeDigest       = "CofferDigest"
	EventNameDigest       = "Digest"
	EventTypeGap          = "CofferGap"
	EventNameGap          = "AcknowledgeGap"
	ResourceTypeKey       = "AWS::KMS::Key"
)

// NewEventID returns a random (version 4) UUID for Record.EventID.
func NewEventID() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	hex.Encode(b[9:13], u[4:6])
	hex.Encode(b[14:18], u[6:8])
	hex.Encode(b[19:23], u[8:10])
	hex.Encode(b[24:], u[10:])
	b[8], b[13], b[18], b[23] = '-', '-', '-', '-'
	return string(b[:])
}

// fillDefaults sets the members every record has when the caller left them
// empty.
func (r *Record) fillDefaults(now func() time.Time) {
	if r.EventVersion == "" {
		r.EventVersion = EventVersion
	}
	if r.EventTime == "" {
		r.EventTime = now().UTC().Format(time.RFC3339)
	}
	if r.EventSource == "" {
		r.EventSource = EventSource
	}
	if r.EventType == "" {
		r.EventType = EventTypeAPICall
	}
}
