// Package server is Coffer's transport: AWS JSON 1.1 over fasthttp, with
// every request's SigV4 signature verified before the kms service sees it.
// Each failure is sent as AWS sends it: {"__type": code, "message": text}
// with AWS's HTTP status.
package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/coffer-kms/coffer/kms"
)

// Config configures a Server.
type Config struct {
	// Service answers the operations. Required.
	Service *kms.Service
	// Dev accepts any well-formed SigV4 signature as the account root.
	Dev bool
	// MaxBodyBytes limits request bodies (default 256 KiB; AWS's largest
	// request, a 32 KiB policy JSON-escaped with tags, fits far below it).
	MaxBodyBytes int
	// Now is the clock used for signature expiry (default time.Now).
	Now func() time.Time
	// Logger receives request failures (default slog.Default()).
	Logger *slog.Logger
}

// Server serves the KMS API.
type Server struct {
	svc   *kms.Service
	dev   bool
	max   int
	now   func() time.Time
	log   *slog.Logger
	keys  signingKeys
	ops   map[string]handler
	admin map[string]handler
	http  *fasthttp.Server
	ready atomic.Bool
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Service == nil {
		return nil, errors.New("server: Service is required")
	}
	s := &Server{svc: cfg.Service, dev: cfg.Dev, max: cfg.MaxBodyBytes, now: cfg.Now, log: cfg.Logger}
	if s.max <= 0 {
		s.max = 256 << 10
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.ops = operations(cfg.Service)
	s.admin = adminOperations(cfg.Service)
	cfg.Service.OnAccessKeyDeleted(s.keys.forget)
	s.http = &fasthttp.Server{
		Handler: s.handle,
		Name:    "Coffer",
		// Bodies up to 4x the limit are read and refused by handle with an
		// AWS-shaped error; anything larger is cut off at the connection.
		MaxRequestBodySize:           4 * s.max,
		Logger:                       fasthttpLogger{s.log},
		ReadTimeout:                  30 * time.Second,
		WriteTimeout:                 30 * time.Second,
		IdleTimeout:                  2 * time.Minute,
		DisablePreParseMultipartForm: true,
		NoDefaultDate:                false,
		CloseOnShutdown:              true,
	}
	s.ready.Store(true)
	return s, nil
}

// Handler returns the request handler, for in-process use by benchmarks
// and fuzzing.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.http.Serve(ln) }

// Shutdown stops accepting connections and waits for requests in flight to
// finish (or ctx to end).
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	return s.http.ShutdownWithContext(ctx)
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/healthz":
		ctx.SetBodyString("ok\n")
		return
	case "/readyz":
		if !s.ready.Load() {
			ctx.SetStatusCode(503)
			ctx.SetBodyString("shutting down\n")
			return
		}
		ctx.SetBodyString("ready\n")
		return
	}
	requestID := newRequestID()
	ctx.Response.Header.Set("x-amzn-RequestId", requestID)
	buf := bufPool.Get().(*[]byte)
	out, err := s.serveAPI(ctx, (*buf)[:0])
	if err != nil {
		s.writeError(ctx, requestID, err)
	} else {
		ctx.SetContentType("application/x-amz-json-1.1")
		ctx.SetBody(out)
	}
	if out == nil {
		out = (*buf)[:0]
	}
	clear(out) // may hold plaintext; fasthttp copied it
	if cap(out) <= maxPooledBuf {
		*buf = out[:0]
		bufPool.Put(buf)
	}
}

// Response buffers are pooled; they are cleared before reuse because a
// response may carry plaintext or a data key.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

const maxPooledBuf = 64 << 10

func (s *Server) serveAPI(ctx *fasthttp.RequestCtx, dst []byte) ([]byte, error) {
	if !ctx.IsPost() {
		return nil, &protocolError{"UnknownOperationException", 400, "Only POST is accepted by this service."}
	}
	if len(ctx.Request.Body()) > s.max {
		return nil, &protocolError{"RequestEntityTooLarge", 413, "Request body is larger than the service accepts."}
	}
	caller, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	target := string(ctx.Request.Header.Peek("X-Amz-Target"))
	var h handler
	if op, ok := strings.CutPrefix(target, "TrentService."); ok {
		h = s.ops[op]
	} else if op, ok := strings.CutPrefix(target, "CofferAdmin."); ok && !s.dev {
		h = s.admin[op]
	}
	if h == nil {
		return nil, &protocolError{"UnknownOperationException", 400, ""}
	}
	return h(ctx, caller, ctx.Request.Body(), dst)
}

// authenticate verifies the request's SigV4 signature and returns the caller.
func (s *Server) authenticate(ctx *fasthttp.RequestCtx) (*kms.Caller, error) {
	sr, err := parseAuthorization(&ctx.Request, s.svc.Region(), s.now())
	if err != nil {
		return nil, err
	}
	if s.dev {
		acct := s.svc.Account()
		return &kms.Caller{ARN: "arn:aws:iam::" + acct + ":root", Account: acct, AccessKeyID: sr.accessKey}, nil
	}
	caller, secret, err := s.svc.AccessKey(ctx, sr.accessKey)
	if errors.Is(err, kms.ErrUnknownAccessKey) {
		return nil, unknownAccessKey
	}
	if err != nil {
		return nil, err
	}
	if !s.keys.verify(&ctx.Request, sr, secret) {
		return nil, signatureMismatch
	}
	return caller, nil
}

func (s *Server) writeError(ctx *fasthttp.RequestCtx, requestID string, err error) {
	code, status, msg := classify(err)
	if status >= 500 {
		var ke *kms.Error
		cause := err
		if errors.As(err, &ke) && ke.Cause() != nil {
			cause = ke.Cause()
		}
		s.log.Error("request failed", "requestId", requestID, "code", code, "err", cause)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/x-amz-json-1.1")
	ctx.Response.Header.Set("x-amzn-ErrorType", code)
	body, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message,omitempty"`
	}{code, msg})
	ctx.SetBody(body)
}

// Request IDs are UUID-shaped: a random per-process prefix and a counter,
// unique without a system call per request.
var (
	requestIDPrefix = func() [8]byte {
		var b [8]byte
		rand.Read(b[:])
		b[6] = b[6]&0x0f | 0x40 // version 4, as AWS's request IDs look
		return b
	}()
	requestCounter atomic.Uint64
)

func newRequestID() string {
	var b [16]byte
	copy(b[:8], requestIDPrefix[:])
	binary.BigEndian.PutUint64(b[8:], requestCounter.Add(1))
	b[8] = b[8]&0x3f | 0x80
	var h [36]byte
	hex.Encode(h[0:8], b[0:4])
	h[8] = '-'
	hex.Encode(h[9:13], b[4:6])
	h[13] = '-'
	hex.Encode(h[14:18], b[6:8])
	h[18] = '-'
	hex.Encode(h[19:23], b[8:10])
	h[23] = '-'
	hex.Encode(h[24:], b[10:])
	return string(h[:])
}

// fasthttpLogger sends fasthttp's connection-level messages to slog at
// debug level: they are about misbehaving clients, not the service.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}
