package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"

	"github.com/coffer-kms/coffer/kms"
	"github.com/coffer-kms/coffer/server/wire"
)

// handler decodes one operation's request, runs it and appends the JSON
// response to dst. It returns the decoded input too (nil when decoding
// failed), for the audit record.
type handler func(ctx context.Context, c *kms.Caller, body, dst []byte) ([]byte, any, error)

// generic adapts a catalogue method to a handler with encoding/json.
func generic(s *kms.Service, m kms.Method, row *kms.Operation) handler {
	scrub := scrubber(row, reflect.TypeOf(m.NewInput()).Elem())
	return func(ctx context.Context, c *kms.Caller, body, dst []byte) ([]byte, any, error) {
		in := m.NewInput()
		if err := decode(body, in); err != nil {
			return nil, nil, err
		}
		decoded(ctx, in)
		out, err := m.Call(s, ctx, c, in)
		if err != nil {
			return nil, in, err
		}
		if scrub != nil {
			scrub(in)
		}
		raw, err := json.Marshal(out)
		if err != nil {
			return nil, in, err
		}
		dst = append(dst, raw...)
		clear(raw) // it may hold a secret in base64 (a private key, random bytes); dst is cleared after the response
		return dst, in, nil
	}
}

// fastOp adapts a hot operation to a handler with the reflection-free
// codec of package wire, for its catalogue row. Once the operation has
// succeeded it zeroes the input's secret members (scrubber): by then
// nothing holds them. (A failed operation may have left an HSM call queued
// with its input, which still reads it; that input is left to the garbage
// collector.)
func fastOp[I, O any](f func(context.Context, *kms.Caller, *I) (*O, error), dec func([]byte, *I) error, enc func([]byte, *O) []byte) func(*kms.Operation) handler {
	return func(row *kms.Operation) handler {
		scrub := scrubber(row, reflect.TypeFor[I]())
		return func(ctx context.Context, c *kms.Caller, body, dst []byte) ([]byte, any, error) {
			in := new(I)
			if err := dec(body, in); err != nil {
				var we *wire.Error
				if errors.As(err, &we) {
					return nil, nil, serialization(we.Msg)
				}
				return nil, nil, err
			}
			decoded(ctx, in)
			out, err := f(ctx, c, in)
			if err != nil {
				return nil, in, err
			}
			if scrub != nil {
				scrub(in)
			}
			return enc(dst, out), in, nil
		}
	}
}

// scrubber returns what zeroes, in a decoded input (a pointer to a t), the
// request members row lists as secret (Operation.Secrets), or nil when it
// lists none. It panics, at startup, when a listed member is not a byte
// slice of t: the catalogue and the input type disagree.
func scrubber(row *kms.Operation, t reflect.Type) func(any) {
	if len(row.Secrets) == 0 {
		return nil
	}
	fields := make([]int, len(row.Secrets))
	for i, m := range row.Secrets {
		f, ok := t.FieldByName(m)
		if !ok || f.Type != reflect.TypeFor[[]byte]() || len(f.Index) != 1 {
			panic(fmt.Sprintf("server: %s's secret member %s is not a []byte of %v", row.Name, m, t))
		}
		fields[i] = f.Index[0]
	}
	return func(in any) {
		v := reflect.ValueOf(in).Elem()
		for _, i := range fields {
			clear(v.Field(i).Bytes())
		}
	}
}

// fastHandlers are the hot operations with the reflection-free codecs of
// package wire, each made for its catalogue row; every other operation
// decodes with encoding/json.
func fastHandlers(s *kms.Service) map[string]func(*kms.Operation) handler {
	return map[string]func(*kms.Operation) handler{
		"Encrypt":                         fastOp(s.Encrypt, wire.DecodeEncrypt, wire.AppendEncryptOutput),
		"Decrypt":                         fastOp(s.Decrypt, wire.DecodeDecrypt, wire.AppendDecryptOutput),
		"GenerateDataKey":                 fastOp(s.GenerateDataKey, wire.DecodeGenerateDataKey, wire.AppendGenerateDataKeyOutput),
		"GenerateDataKeyWithoutPlaintext": fastOp(s.GenerateDataKeyWithoutPlaintext, wire.DecodeGenerateDataKey, wire.AppendGenerateDataKeyOutput),
		"ReEncrypt":                       fastOp(s.ReEncrypt, wire.DecodeReEncrypt, wire.AppendReEncryptOutput),
	}
}

// dispatch builds the table of the operations served under api from the
// kms operation catalogue.
func dispatch(s *kms.Service, api kms.API) (map[string]*operation, error) {
	fast := map[string]func(*kms.Operation) handler{}
	if api == kms.APIKMS {
		fast = fastHandlers(s)
	}
	out := map[string]*operation{}
	for _, row := range kms.Operations() {
		if row.API != api {
			continue
		}
		var h handler
		if build, ok := fast[row.Name]; ok {
			h = build(row)
		} else {
			m, bound := row.Method()
			if !bound {
				return nil, fmt.Errorf("server: operation %s has no method", row.Name)
			}
			h = generic(s, m, row)
		}
		delete(fast, row.Name)
		out[row.Name] = &operation{name: row.Name, run: h, row: row, quota: quotaOf(row)}
	}
	for name := range fast {
		return nil, fmt.Errorf("server: fast codec for %s, which the catalogue does not have", name)
	}
	return out, nil
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
	if err := wire.CheckDepth(body); err != nil {
		return serialization(wire.ErrTooDeep.Msg)
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
