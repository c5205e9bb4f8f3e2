package audit

import (
	"encoding/json"
	"slices"
	"strconv"
)

// Params are the request parameters CloudTrail logs for KMS operations, for
// callers that would rather not build RequestParameters by hand. It has no
// member for plaintext, ciphertext, data keys, MAC messages, signatures,
// grant tokens or key material: what cannot be set cannot leak.
type Params struct {
	KeyID                          string
	DestinationKeyID               string // ReEncrypt
	SourceKeyID                    string
	AliasName                      string
	TargetKeyID                    string
	EncryptionContext              map[string]string
	SourceEncryptionContext        map[string]string
	DestinationEncryptionContext   map[string]string
	EncryptionAlgorithm            string
	SourceEncryptionAlgorithm      string
	DestinationEncryptionAlgorithm string
	SigningAlgorithm               string
	MacAlgorithm                   string
	MessageType                    string
	KeySpec                        string
	KeyUsage                       string
	NumberOfBytes                  int // GenerateDataKey, GenerateRandom; 0 is left out
	PendingWindowInDays            int
}

// JSON renders p as CloudTrail does: lower-camel member names, empty
// members left out, encryption context keys in order.
func (p *Params) JSON() json.RawMessage {
	return p.AppendJSON(make([]byte, 0, 128))
}

// AppendJSON appends what JSON returns to b.
func (p *Params) AppendJSON(b []byte) json.RawMessage {
	b = append(b, '{')
	b = appendParam(b, "keyId", p.KeyID)
	b = appendParam(b, "destinationKeyId", p.DestinationKeyID)
	b = appendParam(b, "sourceKeyId", p.SourceKeyID)
	b = appendParam(b, "aliasName", p.AliasName)
	b = appendParam(b, "targetKeyId", p.TargetKeyID)
	b = appendContext(b, "encryptionContext", p.EncryptionContext)
	b = appendContext(b, "sourceEncryptionContext", p.SourceEncryptionContext)
	b = appendContext(b, "destinationEncryptionContext", p.DestinationEncryptionContext)
	b = appendParam(b, "encryptionAlgorithm", p.EncryptionAlgorithm)
	b = appendParam(b, "sourceEncryptionAlgorithm", p.SourceEncryptionAlgorithm)
	b = appendParam(b, "destinationEncryptionAlgorithm", p.DestinationEncryptionAlgorithm)
	b = appendParam(b, "signingAlgorithm", p.SigningAlgorithm)
	b = appendParam(b, "macAlgorithm", p.MacAlgorithm)
	b = appendParam(b, "messageType", p.MessageType)
	b = appendParam(b, "keySpec", p.KeySpec)
	b = appendParam(b, "keyUsage", p.KeyUsage)
	if p.NumberOfBytes != 0 {
		b = strconv.AppendInt(appendName(b, "numberOfBytes"), int64(p.NumberOfBytes), 10)
	}
	if p.PendingWindowInDays != 0 {
		b = strconv.AppendInt(appendName(b, "pendingWindowInDays"), int64(p.PendingWindowInDays), 10)
	}
	return append(b, '}')
}

func appendName(b []byte, name string) []byte {
	if len(b) > 1 {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

func appendParam(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	return appendString(appendName(b, name), v)
}

func appendContext(b []byte, name string, ec map[string]string) []byte {
	if len(ec) == 0 {
		return b
	}
	var small [8]string
	keys := small[:0]
	for k := range ec {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(appendName(b, name), '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendString(b, k), ':')
		b = appendString(b, ec[k])
	}
	return append(b, '}')
}
