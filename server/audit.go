package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/kms"
)

// errAuditUnavailable refuses a call whose audit record cannot be written.
var errAuditUnavailable = &kms.Error{Kind: kms.ErrInternal, Message: "The audit trail cannot be written; the request was not served."}

// readOnly lists operations CloudTrail marks readOnly.
var readOnly = map[string]bool{
	"DescribeKey": true, "ListKeys": true, "ListAliases": true, "ListGrants": true, "ListRetirableGrants": true,
	"ListKeyPolicies": true, "ListKeyRotations": true, "ListResourceTags": true, "GetKeyPolicy": true,
	"GetKeyRotationStatus": true, "Encrypt": true, "Decrypt": true, "ReEncrypt": true, "GenerateDataKey": true,
	"GenerateDataKeyWithoutPlaintext": true, "GenerateRandom": true, "ListUsers": true, "ListAccessKeys": true,
	"GetUserPolicy": true, "ListUserPolicies": true, "GetUsage": true,
	"GetRole": true, "ListRoles": true, "GetRolePolicy": true, "ListRolePolicies": true, "GetCallerIdentity": true,
}

// withResponseElements lists operations whose response CloudTrail keeps;
// none of them carries a secret.
var withResponseElements = map[string]bool{
	"CreateKey": true, "ScheduleKeyDeletion": true, "CancelKeyDeletion": true, "RotateKeyOnDemand": true,
}

var eventCounter atomic.Uint64

// auditCall writes the record of one KMS call and waits until it is durable.
func (s *Server) auditCall(ctx *fasthttp.RequestCtx, requestID, op string, caller *kms.Caller, info *kms.RequestInfo, in any, out []byte, callErr error) error {
	return s.auditCallFrom(ctx, "kms.amazonaws.com", requestID, op, caller, info, in, out, callErr)
}

// auditCallFrom is auditCall for a call to the service source.
func (s *Server) auditCallFrom(ctx *fasthttp.RequestCtx, source, requestID, op string, caller *kms.Caller, info *kms.RequestInfo, in any, out []byte, callErr error) error {
	// The record lives on this goroutine's stack, which the request has
	// just used and is still in cache; Append encodes it before returning.
	var (
		resources [2]audit.Resource
		params    [256]byte
	)
	r := audit.Record{ // a value: stores through a pointer would move what they store to the heap
		EventVersion: "1.08",
		EventTime:    eventTime(s.now()),
		EventSource:  source,
		EventName:    op,
		AWSRegion:    s.svc.Region(),
		RequestID:    requestID,
		EventID:      eventID(requestID),
		ReadOnly:     readOnly[op],
		EventType:    audit.EventTypeAPICall,
	}
	if r.EventName == "" {
		target := ctx.Request.Header.Peek("X-Amz-Target")
		if i := bytes.IndexByte(target, '.'); i >= 0 && len(target)-i < 128 {
			r.EventName = string(target[i+1:])
		}
	}
	if ip := ctx.RemoteIP(); ip != nil {
		r.SourceIPAddress = lastIP.get(ip)
	}
	if ua := ctx.UserAgent(); len(ua) > 0 {
		r.UserAgent = lastUserAgent.get(ua[:min(len(ua), 512)])
	}
	if caller != nil {
		typ := "IAMUser"
		switch {
		case caller.RoleARN != "":
			typ = "AssumedRole"
		case strings.HasSuffix(caller.ARN, ":root"):
			typ = "Root"
		}
		r.UserIdentity = audit.UserIdentity{Type: typ, PrincipalID: caller.ARN, ARN: caller.ARN, AccountID: caller.Account, AccessKeyID: caller.AccessKeyID}
		r.RecipientAccountID = caller.Account
	} else {
		r.UserIdentity = audit.UserIdentity{Type: "Unknown"}
	}
	res := resources[:0]
	for _, arn := range info.KeyARNs {
		acct := arnAccount(arn)
		res = append(res, audit.Resource{ARN: arn, Type: "AWS::KMS::Key", AccountID: acct})
		if r.RecipientAccountID == "" {
			r.RecipientAccountID = acct
		}
	}
	r.Resources = res
	if in != nil {
		r.RequestParameters = appendRequestParameters(params[:0], in)
	}
	if callErr != nil {
		code, _, msg := classify(callErr)
		r.ErrorCode, r.ErrorMessage = code, msg
	} else if withResponseElements[op] && len(out) > 0 {
		r.ResponseElements = append(json.RawMessage(nil), out...)
	}
	// The record waits for its fsync however long the disk takes (back
	// pressure, never loss); the writer answers every record it queued.
	if err := s.audit.Append(context.Background(), &r); err != nil {
		s.auditFailed.Store(true)
		return err
	}
	return nil
}

// eventID makes a UUID-shaped unique event ID: the request ID's first
// groups and a counter of its own.
func eventID(requestID string) string {
	var b [36]byte
	if len(requestID) != len(b) {
		requestID = newRequestID()
	}
	copy(b[:], requestID[:24])
	n := eventCounter.Add(1)
	const hexDigits = "0123456789abcdef"
	v := 0x800000000000 | n&0x7fffffffffff
	for i := 35; i >= 24; i-- {
		b[i] = hexDigits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

// eventTime formats t as CloudTrail does (RFC 3339, UTC, seconds),
// reusing the last second's string.
func eventTime(t time.Time) string {
	sec := t.Unix()
	if c := lastEventTime.Load(); c != nil && c.sec == sec {
		return c.s
	}
	c := &cachedTime{sec: sec, s: t.UTC().Format(time.RFC3339)}
	lastEventTime.Store(c)
	return c.s
}

type cachedTime struct {
	sec int64
	s   string
}

var lastEventTime atomic.Pointer[cachedTime]

// lastString keeps the string of the last value seen: requests come in
// runs from the same client address and SDK, and the string is then not
// made again.
type lastString struct{ p atomic.Pointer[string] }

func (l *lastString) get(b []byte) string {
	if s := l.p.Load(); s != nil && *s == string(b) {
		return *s
	}
	s := string(b)
	l.p.Store(&s)
	return s
}

var lastUserAgent lastString

// lastIPString is lastString for addresses, kept as their bytes and text.
type lastIPString struct{ p atomic.Pointer[ipText] }

type ipText struct {
	ip net.IP
	s  string
}

func (l *lastIPString) get(ip net.IP) string {
	if c := l.p.Load(); c != nil && c.ip.Equal(ip) {
		return c.s
	}
	c := &ipText{ip: slices.Clone(ip), s: ip.String()}
	l.p.Store(c)
	return c.s
}

var lastIP lastIPString

// arnAccount is the account field of an ARN ("" when it has none).
func arnAccount(arn string) string {
	rest := arn
	for range 4 { // arn:partition:service:region:
		i := strings.IndexByte(rest, ':')
		if i < 0 {
			return ""
		}
		rest = rest[i+1:]
	}
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		return rest[:i]
	}
	return ""
}

// secretMembers are request members never logged.
var secretMembers = map[string]bool{"Plaintext": true, "CiphertextBlob": true, "Recipient": true, "SecretAccessKey": true, "GrantTokens": true, "GrantToken": true,
	"KeyStorePassword": true, "XksProxyAuthenticationCredential": true}

// appendRequestParameters appends an operation's input rendered as
// CloudTrail does: lower-camel member names, empty members left out, and no
// plaintext, ciphertext or secret.
func appendRequestParameters(dst []byte, in any) json.RawMessage {
	switch v := in.(type) { // the hot operations, without reflection
	case *kms.EncryptInput:
		return (&audit.Params{KeyID: v.KeyId, EncryptionContext: v.EncryptionContext, EncryptionAlgorithm: v.EncryptionAlgorithm}).AppendJSON(dst)
	case *kms.DecryptInput:
		return (&audit.Params{KeyID: v.KeyId, EncryptionContext: v.EncryptionContext, EncryptionAlgorithm: v.EncryptionAlgorithm}).AppendJSON(dst)
	case *kms.GenerateDataKeyInput:
		p := audit.Params{KeyID: v.KeyId, EncryptionContext: v.EncryptionContext, KeySpec: v.KeySpec}
		if v.NumberOfBytes != nil {
			p.NumberOfBytes = *v.NumberOfBytes
		}
		return p.AppendJSON(dst)
	}
	raw, err := json.Marshal(in)
	if err != nil {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		if secretMembers[k] || string(v) == "null" || string(v) == `""` || string(v) == "false" || string(v) == "[]" || string(v) == "{}" {
			continue
		}
		out[string(bytes.ToLower([]byte(k[:1])))+k[1:]] = v
	}
	b, _ := json.Marshal(out)
	return append(dst, b...)
}
