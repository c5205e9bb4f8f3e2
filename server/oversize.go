package server

import (
	"errors"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/coffer-kms/coffer/kms"
)

// Bodies larger than Config.MaxBodyBytes get one answer whatever their size,
// RequestEntityTooLarge (413) in AWS's JSON error shape. Up to bodyReadLimit
// fasthttp reads the body and the handler refuses it, on a connection that
// stays open. Beyond, fasthttp stops reading at the Content-Length header
// (nothing larger is ever buffered) and hands readError ErrBodyTooLarge;
// readError answers the same, and reads and discards what the client is
// still sending before the connection is closed: closing a socket with
// unread data makes the kernel send a reset, and a reset loses the answer
// on its way to the client.

// bodyReadLimit is how much of a body fasthttp buffers: up to it an
// oversize body is refused by the handler, connection kept.
func bodyReadLimit(max int) int { return 4 * max }

const (
	// drainFor bounds how long readError discards a refused body.
	drainFor = 10 * time.Second
	// drainIdle is how long it waits for more of the body once what is
	// left could be no more than what fasthttp's reader had buffered.
	drainIdle = 50 * time.Millisecond
	// readBufferSize is fasthttp's default per-connection read buffer: the
	// most of a body that may already be read when the headers are parsed.
	readBufferSize = 4096
)

var errEntityTooLarge = &protocolError{"RequestEntityTooLarge", 413, "Request body is larger than the service accepts."}

// readError answers a request fasthttp could not read (fasthttp's
// Server.ErrorHandler). The connection is closed after the answer.
func (s *Server) readError(ctx *fasthttp.RequestCtx, err error) {
	if !errors.Is(err, fasthttp.ErrBodyTooLarge) {
		defaultReadError(ctx, err)
		return
	}
	start := time.Now()
	requestID := newRequestID()
	ctx.Response.Header.Set("x-amzn-RequestId", requestID)
	if s.audit != nil {
		// Refused calls are audited like every other; the trail's own
		// failure changes nothing about this answer.
		_ = s.auditCall(ctx, requestID, "", nil, nil, new(kms.RequestInfo), nil, nil, errEntityTooLarge)
	}
	code := s.writeError(ctx, requestID, errEntityTooLarge)
	s.metrics.observe("", code, time.Since(start))
	drain(ctx.Conn(), ctx.Request.Header.ContentLength())
}

// drain reads and discards what is left of a body of length n (-1 for
// chunked), for at most drainFor.
func drain(c net.Conn, n int) {
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 32<<10)
	end := time.Now().Add(drainFor)
	read := 0
	for {
		deadline := end
		if n < 0 || read >= n-readBufferSize {
			if idle := time.Now().Add(drainIdle); idle.Before(end) {
				deadline = idle
			}
		}
		if c.SetReadDeadline(deadline) != nil {
			return
		}
		m, err := c.Read(buf)
		read += m
		if err != nil || (n >= 0 && read >= n) {
			return
		}
	}
}

// defaultReadError is fasthttp's answer to the other unreadable requests
// (a header too large, a timeout, malformed HTTP), which are not the API's.
func defaultReadError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var netErr *net.OpError
	switch {
	case errors.As(err, &small):
		ctx.Error("Too big request header", fasthttp.StatusRequestHeaderFieldsTooLarge)
	case errors.As(err, &netErr) && netErr.Timeout():
		ctx.Error("Request timeout", fasthttp.StatusRequestTimeout)
	default:
		ctx.Error("Error when parsing request", fasthttp.StatusBadRequest)
	}
}
