package server

import (
	"context"

	"github.com/coffer-kms/coffer/kms"
)

// SetOperation replaces the API operation name (as in TrentService.<name>)
// with run, for tests of failures no request can reach. Call it before
// Serve.
func SetOperation(s *Server, name string, run func(ctx context.Context, body []byte) error) {
	row, _ := kms.LookupOperation(kms.APIKMS, name)
	s.ops[name] = &operation{name: name, row: row, quota: quotaOf(row), run: func(ctx context.Context, _ *kms.Caller, body, _ []byte) ([]byte, any, error) {
		return nil, nil, run(ctx, body)
	}}
}

// SetReleased makes f see each API request's kms.RequestInfo as it goes
// back to its pool. Call it before Serve.
func SetReleased(s *Server, f func(*kms.RequestInfo)) { s.released = f }

// SetServedInput makes f see each API request's decoded input and body
// once the response is written. Call it before Serve.
func SetServedInput(s *Server, f func(op string, in any, body []byte)) { s.servedInput = f }
