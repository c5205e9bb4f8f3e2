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
	open := len(b) // where the first member goes: no comma before it
	b = appendParam(b, open, "keyId", p.KeyID)
	b = appendParam(b, open, "destinationKeyId", p.DestinationKeyID)
	b = appendParam(b, open, "sourceKeyId", p.SourceKeyID)
	b = appendParam(b, open, "aliasName", p.AliasName)
	b = appendParam(b, open, "targetKeyId", p.TargetKeyID)
	b = appendContext(b, open, "encryptionContext", p.EncryptionContext)
	b = appendContext(b, open, "sourceEncryptionContext", p.SourceEncryptionContext)
	b = appendContext(b, open, "destinationEncryptionContext", p.DestinationEncryptionContext)
	b = appendParam(b, open, "encryptionAlgorithm", p.EncryptionAlgorithm)
	b = appendParam(b, open, "sourceEncryptionAlgorithm", p.SourceEncryptionAlgorithm)
	b = appendParam(b, open, "destinationEncryptionAlgorithm", p.DestinationEncryptionAlgorithm)
	b = appendParam(b, open, "signingAlgorithm", p.SigningAlgorithm)
	b = appendParam(b, open, "macAlgorithm", p.MacAlgorithm)
	b = appendParam(b, open, "messageType", p.MessageType)
	b = appendParam(b, open, "keySpec", p.KeySpec)
	b = appendParam(b, open, "keyUsage", p.KeyUsage)
	if p.NumberOfBytes != 0 {
		b = strconv.AppendInt(appendName(b, open, "numberOfBytes"), int64(p.NumberOfBytes), 10)
	}
	if p.PendingWindowInDays != 0 {
		b = strconv.AppendInt(appendName(b, open, "pendingWindowInDays"), int64(p.PendingWindowInDays), 10)
	}
	return append(b, '}')
}

func appendName(b []byte, open int, name string) []byte {
	if len(b) > open {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

func appendParam(b []byte, open int, name, v string) []byte {
	if v == "" {
		return b
	}
	return appendString(appendName(b, open, name), v)
}

func appendContext(b []byte, open int, name string, ec map[string]string) []byte {
	if len(ec) == 0 {
		return b
	}
	var small [8]string
	keys := small[:0]
	for k := range ec {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(appendName(b, open, name), '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendString(b, k), ':')
		b = appendString(b, ec[k])
	}
	return append(b, '}')
}
