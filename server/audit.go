package server

import (
	"bytes"
	"encoding/json"
	"strconv"
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
}

// withResponseElements lists operations whose response CloudTrail keeps;
// none of them carries a secret.
var withResponseElements = map[string]bool{
	"CreateKey": true, "ScheduleKeyDeletion": true, "CancelKeyDeletion": true, "RotateKeyOnDemand": true,
}

var eventCounter atomic.Uint64

// auditCall writes the record of one call and waits until it is durable.
func (s *Server) auditCall(ctx *fasthttp.RequestCtx, requestID, op string, caller *kms.Caller, info *kms.RequestInfo, in any, out []byte, callErr error) error {
	r := &audit.Record{
		EventVersion: "1.08",
		EventTime:    s.now().UTC().Format(time.RFC3339),
		EventSource:  "kms.amazonaws.com",
		EventName:    op,
		AWSRegion:    s.svc.Region(),
		RequestID:    requestID,
		EventID:      eventID(),
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
		r.SourceIPAddress = ip.String()
	}
	if ua := ctx.UserAgent(); len(ua) > 0 {
		r.UserAgent = string(ua[:min(len(ua), 512)])
	}
	if caller != nil {
		typ := "IAMUser"
		if bytes.HasSuffix([]byte(caller.ARN), []byte(":root")) {
			typ = "Root"
		}
		r.UserIdentity = audit.UserIdentity{Type: typ, PrincipalID: caller.ARN, ARN: caller.ARN, AccountID: caller.Account, AccessKeyID: caller.AccessKeyID}
		r.RecipientAccountID = caller.Account
	} else {
		r.UserIdentity = audit.UserIdentity{Type: "Unknown"}
	}
	for _, arn := range info.KeyARNs {
		acct := ""
		if parts := bytes.SplitN([]byte(arn), []byte(":"), 6); len(parts) == 6 {
			acct = string(parts[4])
		}
		r.Resources = append(r.Resources, audit.Resource{ARN: arn, Type: "AWS::KMS::Key", AccountID: acct})
		if r.RecipientAccountID == "" {
			r.RecipientAccountID = acct
		}
	}
	if in != nil {
		r.RequestParameters = requestParameters(in)
	}
	if callErr != nil {
		code, _, msg := classify(callErr)
		r.ErrorCode, r.ErrorMessage = code, msg
	} else if withResponseElements[op] && len(out) > 0 {
		r.ResponseElements = append(json.RawMessage(nil), out...)
	}
	if err := s.audit.Append(ctx, r); err != nil {
		s.auditFailed.Store(true)
		return err
	}
	return nil
}

// eventID makes a UUID-shaped unique event ID.
func eventID() string {
	id := newRequestID()
	n := eventCounter.Add(1)
	return id[:24] + strconv.FormatUint(0x800000000000|n&0x7fffffffffff, 16)[:12]
}

// secretMembers are request members never logged.
var secretMembers = map[string]bool{"Plaintext": true, "CiphertextBlob": true, "Recipient": true, "SecretAccessKey": true, "GrantTokens": true, "GrantToken": true}

// requestParameters renders an operation's input as CloudTrail does:
// lower-camel member names, empty members left out, and no plaintext,
// ciphertext or secret.
func requestParameters(in any) json.RawMessage {
	switch v := in.(type) { // the hot operations, without reflection
	case *kms.EncryptInput:
		return (&audit.Params{KeyID: v.KeyId, EncryptionContext: v.EncryptionContext, EncryptionAlgorithm: v.EncryptionAlgorithm}).JSON()
	case *kms.DecryptInput:
		return (&audit.Params{KeyID: v.KeyId, EncryptionContext: v.EncryptionContext, EncryptionAlgorithm: v.EncryptionAlgorithm}).JSON()
	case *kms.GenerateDataKeyInput:
		p := audit.Params{KeyID: v.KeyId, EncryptionContext: v.EncryptionContext, KeySpec: v.KeySpec}
		if v.NumberOfBytes != nil {
			p.NumberOfBytes = *v.NumberOfBytes
		}
		return p.JSON()
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
	return b
}
