package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/coffer-kms/coffer/kms"
	"github.com/coffer-kms/coffer/server/wire"
)

// handler decodes one operation's request, runs it and appends the JSON
// response to dst. It returns the decoded input too (nil when decoding
// failed), for the audit record.
type handler func(ctx context.Context, c *kms.Caller, body, dst []byte) ([]byte, any, error)

// op adapts a service method to a handler with encoding/json.
func op[I, O any](f func(context.Context, *kms.Caller, *I) (*O, error)) handler {
	return func(ctx context.Context, c *kms.Caller, body, dst []byte) ([]byte, any, error) {
		in := new(I)
		if err := decode(body, in); err != nil {
			return nil, nil, err
		}
		out, err := f(ctx, c, in)
		if err != nil {
			return nil, in, err
		}
		raw, err := json.Marshal(out)
		if err != nil {
			return nil, in, err
		}
		return append(dst, raw...), in, nil
	}
}

// fastOp adapts a hot operation to a handler with the reflection-free
// codec of package wire.
func fastOp[I, O any](f func(context.Context, *kms.Caller, *I) (*O, error), dec func([]byte, *I) error, enc func([]byte, *O) []byte) handler {
	return func(ctx context.Context, c *kms.Caller, body, dst []byte) ([]byte, any, error) {
		in := new(I)
		if err := dec(body, in); err != nil {
			var we *wire.Error
			if errors.As(err, &we) {
				return nil, nil, serialization(we.Msg)
			}
			return nil, nil, err
		}
		out, err := f(ctx, c, in)
		if err != nil {
			return nil, in, err
		}
		return enc(dst, out), in, nil
	}
}

// operations is the table of every operation the server answers.
func operations(s *kms.Service) map[string]handler {
	return map[string]handler{
		"CancelKeyDeletion":               op(s.CancelKeyDeletion),
		"ConnectCustomKeyStore":           op(s.ConnectCustomKeyStore),
		"CreateCustomKeyStore":            op(s.CreateCustomKeyStore),
		"DeleteCustomKeyStore":            op(s.DeleteCustomKeyStore),
		"DescribeCustomKeyStores":         op(s.DescribeCustomKeyStores),
		"DisconnectCustomKeyStore":        op(s.DisconnectCustomKeyStore),
		"UpdateCustomKeyStore":            op(s.UpdateCustomKeyStore),
		"CreateAlias":                     op(s.CreateAlias),
		"CreateGrant":                     op(s.CreateGrant),
		"CreateKey":                       op(s.CreateKey),
		"Decrypt":                         fastOp(s.Decrypt, wire.DecodeDecrypt, wire.AppendDecryptOutput),
		"DeleteAlias":                     op(s.DeleteAlias),
		"DescribeKey":                     op(s.DescribeKey),
		"DisableKey":                      op(s.DisableKey),
		"DisableKeyRotation":              op(s.DisableKeyRotation),
		"EnableKey":                       op(s.EnableKey),
		"EnableKeyRotation":               op(s.EnableKeyRotation),
		"Encrypt":                         fastOp(s.Encrypt, wire.DecodeEncrypt, wire.AppendEncryptOutput),
		"GenerateDataKey":                 fastOp(s.GenerateDataKey, wire.DecodeGenerateDataKey, wire.AppendGenerateDataKeyOutput),
		"GenerateDataKeyWithoutPlaintext": fastOp(s.GenerateDataKeyWithoutPlaintext, wire.DecodeGenerateDataKey, wire.AppendGenerateDataKeyOutput),
		"GenerateRandom":                  op(s.GenerateRandom),
		"GetKeyPolicy":                    op(s.GetKeyPolicy),
		"GetKeyRotationStatus":            op(s.GetKeyRotationStatus),
		"ListAliases":                     op(s.ListAliases),
		"ListGrants":                      op(s.ListGrants),
		"ListRetirableGrants":             op(s.ListRetirableGrants),
		"ListKeyPolicies":                 op(s.ListKeyPolicies),
		"ListKeyRotations":                op(s.ListKeyRotations),
		"ListKeys":                        op(s.ListKeys),
		"ListResourceTags":                op(s.ListResourceTags),
		"PutKeyPolicy":                    op(s.PutKeyPolicy),
		"RetireGrant":                     op(s.RetireGrant),
		"RevokeGrant":                     op(s.RevokeGrant),
		"ReEncrypt":                       fastOp(s.ReEncrypt, wire.DecodeReEncrypt, wire.AppendReEncryptOutput),
		"RotateKeyOnDemand":               op(s.RotateKeyOnDemand),
		"ScheduleKeyDeletion":             op(s.ScheduleKeyDeletion),
		"TagResource":                     op(s.TagResource),
		"UntagResource":                   op(s.UntagResource),
		"UpdateAlias":                     op(s.UpdateAlias),
		"UpdateKeyDescription":            op(s.UpdateKeyDescription),
	}
}

// adminOperations is the table of the administration API, served under
// the X-Amz-Target prefix "CofferAdmin.".
func adminOperations(s *kms.Service) map[string]handler {
	return map[string]handler{
		"CreateUser":       op(s.CreateUser),
		"ListUsers":        op(s.ListUsers),
		"DeleteUser":       op(s.DeleteUser),
		"CreateAccessKey":  op(s.CreateAccessKey),
		"ListAccessKeys":   op(s.ListAccessKeys),
		"DeleteAccessKey":  op(s.DeleteAccessKey),
		"PutUserPolicy":    op(s.PutUserPolicy),
		"GetUserPolicy":    op(s.GetUserPolicy),
		"ListUserPolicies": op(s.ListUserPolicies),
		"DeleteUserPolicy": op(s.DeleteUserPolicy),
		"GetUsage":         op(s.GetUsage),

		"CreateRole":             op(s.CreateRole),
		"GetRole":                op(s.GetRole),
		"ListRoles":              op(s.ListRoles),
		"DeleteRole":             op(s.DeleteRole),
		"UpdateAssumeRolePolicy": op(s.UpdateAssumeRolePolicy),
		"PutRolePolicy":          op(s.PutRolePolicy),
		"GetRolePolicy":          op(s.GetRolePolicy),
		"ListRolePolicies":       op(s.ListRolePolicies),
		"DeleteRolePolicy":       op(s.DeleteRolePolicy),
	}
}

// decode reads an AWS JSON 1.1 request body into v. An empty body is an
// empty request. Anything that is not one JSON object of the right member
// types is a SerializationException, whose message never quotes values.
func decode(body []byte, v any) error {
	body = bytes.Trim(body, " \t\r\n") // JSON's whitespace only
	if len(body) == 0 {
		return nil
	}
	if body[0] != '{' {
		return serialization("Request body must be a JSON object.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var b64 base64.CorruptInputError
		switch {
		case errors.As(err, &te):
			return serialization(fmt.Sprintf("Unexpected %s value for member %s.", te.Value, memberName(te.Field)))
		case errors.As(err, &b64):
			return serialization("Blob members must be valid base64.")
		default:
			return serialization("Request body is not valid JSON.")
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return serialization("Request body has data after the JSON object.")
	}
	return nil
}

func memberName(field string) string {
	if field == "" {
		return "of the request"
	}
	return field
}

func serialization(msg string) error {
	return &protocolError{"SerializationException", 400, msg}
}
