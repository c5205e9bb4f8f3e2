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

var eventCounter atomic.Uint64

// auditCall writes the record of one KMS call and waits until it is
// durable. row is the operation's catalogue row (nil for an operation the
// server does not know), which says what of the call may be recorded.
func (s *Server) auditCall(ctx *fasthttp.RequestCtx, requestID, op string, row *kms.Operation, caller *kms.Caller, info *kms.RequestInfo, in any, out []byte, callErr error) error {
	return s.auditCallFrom(ctx, "kms.amazonaws.com", requestID, op, row, caller, info, in, out, callErr)
}

// auditCallFrom is auditCall for a call to the service source.
func (s *Server) auditCallFrom(ctx *fasthttp.RequestCtx, source, requestID, op string, row *kms.Operation, caller *kms.Caller, info *kms.RequestInfo, in any, out []byte, callErr error) error {
	// The record lives on this goroutine's stack, which the request has
	// just used and is still in cache; Append encodes it before returning.
	var (
		resources [2]audit.Resource
		params    [256]byte
	)
	// A value: stores through a pointer would move what they store to the heap.
	r := s.baseRecord(ctx, source, requestID, op, row, caller)
	copy(info.EventID[:], r.EventID) // GetKeyLastUsage's CloudTrailEventId; a copy, so that the string stays off the heap
	res := resources[:0]
	for _, arn := range info.KeyARNs {
		acct := arnAccount(arn)
		res = append(res, audit.Resource{ARN: arn, Type: "AWS::KMS::Key", AccountID: acct})
		if r.RecipientAccountID == "" {
			r.RecipientAccountID = acct
		}
	}
	r.Resources = res
	if p, ok := hotParams(in); ok && row != nil {
		r.Params = &p // the Writer encodes it into the line, with no JSON to check again
	} else if in != nil && row != nil {
		r.RequestParameters = appendRequestParameters(params[:0], row, in)
	}
	if callErr != nil {
		code, _, msg := classify(callErr)
		r.ErrorCode, r.ErrorMessage = code, msg
	} else if row != nil && len(row.Response) > 0 && len(out) > 0 {
		r.ResponseElements = responseElements(row, out)
	}
	// The record waits for its fsync however long the disk takes (back
	// pressure, never loss); the writer answers every record it queued.
	// While the trail cannot be written Append refuses at once; the writer
	// retries by itself and the next call after it heals is served.
	return s.audit.Append(context.Background(), &r)
}

// baseRecord is a call's record as far as who, what and when: everything
// but its resources, parameters and outcome.
func (s *Server) baseRecord(ctx *fasthttp.RequestCtx, source, requestID, op string, row *kms.Operation, caller *kms.Caller) audit.Record {
	r := audit.Record{
		EventVersion: "1.08",
		EventTime:    eventTime(s.now()),
		EventSource:  source,
		EventName:    op,
		AWSRegion:    s.svcOf(ctx).Region(),
		RequestID:    requestID,
		EventID:      eventID(requestID),
		ReadOnly:     row != nil && row.ReadOnly,
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
	return r
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

// appendRequestParameters appends an operation's input rendered as
// CloudTrail does: lower-camel member names, empty members left out, and
// only the members the catalogue row allows, so that no plaintext,
// ciphertext, message, token or secret reaches the trail.
func appendRequestParameters(dst []byte, row *kms.Operation, in any) json.RawMessage {
	if p, ok := hotParams(in); ok {
		return p.AppendJSON(dst)
	}
	b, err := kms.AuditedMembers(in, row.Audited, true)
	if err != nil {
		return nil
	}
	return append(dst, b...)
}

// hotParams is the request parameters of the hot operations, without
// reflection (TestAuditAllowList holds them to the row); false for others.
func hotParams(in any) (audit.Params, bool) {
	switch v := in.(type) {
	case *kms.EncryptInput:
		return audit.Params{KeyID: v.KeyId, EncryptionContext: v.EncryptionContext, EncryptionAlgorithm: v.EncryptionAlgorithm}, true
	case *kms.DecryptInput:
		return audit.Params{KeyID: v.KeyId, EncryptionContext: v.EncryptionContext, EncryptionAlgorithm: v.EncryptionAlgorithm}, true
	case *kms.GenerateDataKeyInput:
		p := audit.Params{KeyID: v.KeyId, EncryptionContext: v.EncryptionContext, KeySpec: v.KeySpec}
		if v.NumberOfBytes != nil {
			p.NumberOfBytes = *v.NumberOfBytes
		}
		return p, true
	}
	return audit.Params{}, false
}

// responseElements renders the members of a response the row allows.
func responseElements(row *kms.Operation, out []byte) json.RawMessage {
	b, err := kms.AuditedMembers(json.RawMessage(out), row.AuditedResponse, false)
	if err != nil {
		return nil
	}
	return b
}
