package server

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/coffer-kms/coffer/kms"
)

// STS speaks AWS's Query protocol: a form-encoded POST to / with Action and
// Version, signed for the service "sts", answered in XML. Coffer serves the
// two actions a client of temporary credentials needs: AssumeRole and
// GetCallerIdentity. Every call is audited with eventSource
// sts.amazonaws.com; the secret and the session token never are.

const (
	stsService   = "sts"
	stsVersion   = "2011-06-15"
	stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"
	formType     = "application/x-www-form-urlencoded"
)

// isSTS reports whether a request is for STS: a form post with no
// X-Amz-Target (every KMS request carries one).
func isSTS(ctx *fasthttp.RequestCtx) bool {
	return ctx.IsPost() && len(ctx.Request.Header.Peek("X-Amz-Target")) == 0 &&
		bytes.HasPrefix(ctx.Request.Header.ContentType(), []byte(formType))
}

// stsError is an STS failure, sent as <ErrorResponse>.
type stsError struct {
	status        int
	typ, code, ms string
}

func (e *stsError) Error() string { return e.code + ": " + e.ms }

// serveSTS runs one STS request and writes its XML answer.
func (s *Server) serveSTS(ctx *fasthttp.RequestCtx, octx context.Context, requestID string, start time.Time) {
	action := "Unknown"
	var caller *kms.Caller
	var in any
	body, err := func() (body []byte, err error) {
		defer func() {
			if v := recover(); v != nil {
				body, err = nil, recovered(action, v)
			}
		}()
		if len(ctx.Request.Body()) > s.max {
			return nil, &stsError{413, "Sender", "RequestEntityTooLarge", "Request body is larger than the service accepts."}
		}
		var form fasthttp.Args
		form.ParseBytes(ctx.Request.Body())
		switch a := string(form.Peek("Action")); a {
		case "AssumeRole", "GetCallerIdentity":
			action = a
		default:
			return nil, &stsError{400, "Sender", "InvalidAction", "Could not find operation " + truncateHeader(a) + " for version " + stsVersion}
		}
		if v := form.Peek("Version"); string(v) != stsVersion {
			return nil, &stsError{400, "Sender", "InvalidAction", "Could not find operation " + action + " for version " + truncateHeader(string(v))}
		}
		if caller, _, err = s.authenticateFor(ctx, octx, stsService, start); err != nil {
			return nil, err
		}
		if action == "GetCallerIdentity" {
			id := s.svc.GetCallerIdentity(octx, caller)
			return marshalSTS("GetCallerIdentityResponse", requestID, struct {
				XMLName xml.Name `xml:"GetCallerIdentityResult"`
				Arn     string   `xml:"Arn"`
				UserId  string   `xml:"UserId"`
				Account string   `xml:"Account"`
			}{Arn: id.ARN, UserId: id.UserID, Account: id.Account})
		}
		ar := &kms.AssumeRoleInput{RoleArn: string(form.Peek("RoleArn")), RoleSessionName: string(form.Peek("RoleSessionName"))}
		if d := form.Peek("DurationSeconds"); d != nil {
			n, err := strconv.Atoi(string(d))
			if err != nil {
				return nil, &stsError{400, "Sender", "ValidationError", "DurationSeconds must be a number"}
			}
			ar.DurationSeconds = &n
		}
		in = ar
		out, err := s.svc.AssumeRole(octx, caller, ar)
		if err != nil {
			return nil, err
		}
		type credentials struct {
			AccessKeyId     string `xml:"AccessKeyId"`
			SecretAccessKey string `xml:"SecretAccessKey"`
			SessionToken    string `xml:"SessionToken"`
			Expiration      string `xml:"Expiration"`
		}
		type assumedRoleUser struct {
			AssumedRoleId string `xml:"AssumedRoleId"`
			Arn           string `xml:"Arn"`
		}
		return marshalSTS("AssumeRoleResponse", requestID, struct {
			XMLName         xml.Name        `xml:"AssumeRoleResult"`
			Credentials     credentials     `xml:"Credentials"`
			AssumedRoleUser assumedRoleUser `xml:"AssumedRoleUser"`
		}{
			Credentials:     credentials{out.AccessKeyID, out.SecretAccessKey, out.SessionToken, out.Expiration.Format(time.RFC3339)},
			AssumedRoleUser: assumedRoleUser{out.AssumedRoleID, out.AssumedRoleARN},
		})
	}()
	if s.audit != nil {
		info := infoPool.Get().(*kms.RequestInfo)
		info.Reset()
		row, _ := kms.LookupOperation(kms.APISTS, action)
		if aerr := s.auditCallFrom(ctx, "sts.amazonaws.com", requestID, action, row, caller, info, in, nil, err); aerr != nil {
			s.log.Error("audit trail unavailable: refusing the call", "requestId", requestID, "err", aerr)
			body, err = nil, errAuditUnavailable
		}
		infoPool.Put(info)
	}
	code := ""
	if err != nil {
		code = s.writeSTSError(ctx, requestID, err)
	} else {
		ctx.SetContentType("text/xml")
		ctx.SetBody(body)
	}
	s.metrics.observe(action, code, time.Since(start))
}

// marshalSTS wraps a result in AWS's response envelope.
func marshalSTS(name, requestID string, result any) ([]byte, error) {
	type metadata struct {
		RequestId string `xml:"RequestId"`
	}
	return xml.Marshal(struct {
		XMLName  xml.Name
		Xmlns    string `xml:"xmlns,attr"`
		Result   any
		Metadata metadata `xml:"ResponseMetadata"`
	}{XMLName: xml.Name{Local: name}, Xmlns: stsNamespace, Result: result, Metadata: metadata{requestID}})
}

// writeSTSError maps err to STS's error codes and writes an ErrorResponse.
func (s *Server) writeSTSError(ctx *fasthttp.RequestCtx, requestID string, err error) string {
	se := stsErrorOf(err)
	if se.status >= 500 {
		s.log.Error("request failed", "requestId", requestID, "code", se.code, "err", err)
	}
	type stsErrorBody struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	body, _ := xml.Marshal(struct {
		XMLName   xml.Name     `xml:"ErrorResponse"`
		Xmlns     string       `xml:"xmlns,attr"`
		Error     stsErrorBody `xml:"Error"`
		RequestId string       `xml:"RequestId"`
	}{Xmlns: stsNamespace, Error: stsErrorBody{se.typ, se.code, se.ms}, RequestId: requestID})
	ctx.SetStatusCode(se.status)
	ctx.SetContentType("text/xml")
	ctx.SetBody(body)
	return se.code
}

func stsErrorOf(err error) *stsError {
	var se *stsError
	if errors.As(err, &se) {
		return se
	}
	var ae *authError
	if errors.As(err, &ae) {
		code := ae.code
		switch code { // STS's names for the JSON services' codes
		case "UnrecognizedClientException":
			code = "InvalidClientTokenId"
		case "ExpiredTokenException":
			code = "ExpiredToken"
		case "InvalidSignatureException":
			code = "SignatureDoesNotMatch"
		case "MissingAuthenticationTokenException":
			code = "MissingAuthenticationToken"
		}
		status := 403
		if code == "IncompleteSignatureException" {
			code, status = "IncompleteSignature", 400
		}
		return &stsError{status, "Sender", code, ae.message}
	}
	var ke *kms.Error
	if errors.As(err, &ke) {
		switch {
		case errors.Is(ke, kms.ErrAccessDenied):
			return &stsError{403, "Sender", "AccessDenied", ke.Message}
		case errors.Is(ke, kms.ErrValidation):
			return &stsError{400, "Sender", "ValidationError", ke.Message}
		case errors.Is(ke, kms.ErrKeyUnavailable), errors.Is(ke, kms.ErrDependencyTimeout):
			return &stsError{503, "Receiver", "ServiceUnavailable", ke.Message}
		case errors.Is(ke, kms.ErrInternal):
			return &stsError{500, "Receiver", "InternalFailure", ke.Message}
		}
		return &stsError{400, "Sender", "ValidationError", ke.Message}
	}
	return &stsError{500, "Receiver", "InternalFailure", "The request could not be served."}
}
