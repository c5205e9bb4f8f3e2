// Package server is Coffer's transport: AWS JSON 1.1 over fasthttp, with
// every request's SigV4 signature verified before the kms service sees it.
// Each failure is sent as AWS sends it: {"__type": code, "message": text}
// with AWS's HTTP status.
package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/coffer-kms/coffer/audit"
	"github.com/coffer-kms/coffer/kms"
)

// Config configures a Server.
type Config struct {
	// Service answers the operations. Required. Its Region is the default
	// one: the Region of STS calls and of what no request names.
	Service *kms.Service
	// Regions are the Services of the other Regions served (kms.Service.
	// InRegion of Service): a request goes to the Service of the Region of
	// its SigV4 credential scope, and a scope naming a Region not served is
	// refused as AWS refuses it.
	Regions []*kms.Service
	// Dev accepts any well-formed SigV4 signature as the account root.
	Dev bool
	// MaxBodyBytes limits request bodies (default 256 KiB; AWS's largest
	// request, a 32 KiB policy JSON-escaped with tags, fits far below it).
	MaxBodyBytes int
	// Now is the clock used for signature expiry (default time.Now).
	Now func() time.Time
	// Logger receives request failures (default slog.Default()).
	Logger *slog.Logger
	// Audit, when set, receives one record per API call, durable before
	// the call is answered; when it cannot, calls are refused. It is the
	// concrete writer, not an interface: Append keeps nothing of the record,
	// so a record built on the request's stack stays there (through an
	// interface call it would escape, three allocations per call).
	Audit *audit.Writer
	// RequestTimeout bounds how long one operation may run (default 30 s).
	// Operations run under their own context, not the connection's: a
	// shutdown lets the requests it accepted finish rather than cancel them.
	RequestTimeout time.Duration
	// SeparateMetrics keeps GET /metrics off the API listener: it is then
	// served only by ServeMetrics, on an address of its own.
	SeparateMetrics bool
	// RateLimits, when set, throttles each account as AWS does
	// (ratelimit.go); nil serves without quotas.
	RateLimits *RateLimits
	// Status is what GetStatus reports of the binary (status.go).
	Status StatusConfig
}

// Server serves the KMS API.
type Server struct {
	svc          *kms.Service
	home         *region            // svc's
	regions      map[string]*region // every served Region, home's among them
	dev          bool
	max          int
	timeout      time.Duration
	deadlines    deadlines
	owed         owed           // calls whose records wait in the outbox for the trail
	appended     appendedEvents // service events in the trail whose outbox delete failed
	unauth       *unauthLimiter
	now          func() time.Time
	log          *slog.Logger
	keys         signingKeys
	ops          map[string]*operation
	admin        map[string]*operation
	audit        *audit.Writer
	metrics      *serverMetrics
	extraMetrics []func(io.Writer)
	readyChecks  atomic.Pointer[[]readyCheck]
	http         *fasthttp.Server
	ready        atomic.Bool
	conns        connTracker
	limits       *limiter
	started      time.Time
	status       StatusConfig

	metricsElsewhere bool // Config.SeparateMetrics
	metricsMu        sync.Mutex
	metricsHTTP      *fasthttp.Server
	// released, when set (by tests), sees each API request's info as it
	// goes back to its pool.
	released func(*kms.RequestInfo)
	// servedInput, when set (by tests), sees each API request's decoded
	// input and body once the response is written.
	servedInput func(op string, in any, body []byte)
	// realClock says s.now is time.Now: a request's signature is checked
	// against its start, not a clock read of its own.
	realClock bool
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Service == nil {
		return nil, errors.New("server: Service is required")
	}
	s := &Server{svc: cfg.Service, dev: cfg.Dev, max: cfg.MaxBodyBytes, now: cfg.Now, log: cfg.Logger, audit: cfg.Audit, timeout: cfg.RequestTimeout, metricsElsewhere: cfg.SeparateMetrics}
	if s.max <= 0 {
		s.max = 256 << 10
	}
	if s.timeout <= 0 {
		s.timeout = 30 * time.Second
	}
	s.deadlines.timeout = s.timeout
	if s.now == nil {
		s.now, s.realClock = time.Now, true
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	var err error
	if cfg.Audit != nil {
		// With the trail's interval policy an appended record is durable
		// only after its fdatasync: no outbox entry goes before.
		cfg.Service.SetOutboxBarrier(cfg.Audit.Sync)
	}
	if s.ops, err = dispatch(cfg.Service, kms.APIKMS); err != nil {
		return nil, err
	}
	s.home = &region{svc: cfg.Service, ops: s.ops}
	s.regions = map[string]*region{cfg.Service.Region(): s.home}
	for _, o := range cfg.Regions {
		if o == nil || s.regions[o.Region()] != nil {
			return nil, fmt.Errorf("server: Region %v given twice or nil", o)
		}
		r := &region{svc: o}
		if r.ops, err = dispatch(o, kms.APIKMS); err != nil {
			return nil, err
		}
		s.regions[o.Region()] = r
	}
	if s.admin, err = dispatch(cfg.Service, kms.APIAdmin); err != nil {
		return nil, err
	}
	s.metrics = newServerMetrics(kms.Operations())
	s.initStatus(cfg)
	if cfg.RateLimits != nil {
		s.unauth = newUnauthLimiter() // rate limits on: unauthenticated failures have their budget too
		if s.limits, err = newLimiter(*cfg.RateLimits, s.metrics.set); err != nil {
			return nil, err
		}
		for name, r := range s.regions {
			r.quotas = s.limits.inRegion(name)
		}
	}
	cfg.Service.OnAccessKeyDeleted(s.keys.forget)
	s.http = &fasthttp.Server{
		Handler: s.handle,
		Name:    "Coffer",
		// Bodies up to 4x the limit are read and refused by handle with an
		// AWS-shaped error; anything larger by readError (oversize.go).
		MaxRequestBodySize:           bodyReadLimit(s.max),
		ErrorHandler:                 s.readError,
		Logger:                       fasthttpLogger{s.log},
		ReadTimeout:                  30 * time.Second,
		WriteTimeout:                 30 * time.Second,
		IdleTimeout:                  2 * time.Minute,
		DisablePreParseMultipartForm: true,
		NoDefaultDate:                false,
		CloseOnShutdown:              true,
		ConnState:                    s.conns.track,
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
// finish (or ctx to end). Requests it waits for are not cancelled: each
// runs under its own context with its own deadline (Config.RequestTimeout).
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	if s.unauth != nil {
		s.unauth.stop()
	}
	s.metricsMu.Lock()
	if m := s.metricsHTTP; m != nil {
		go m.ShutdownWithContext(ctx)
	}
	s.metricsMu.Unlock()
	done := make(chan error, 1)
	go func() { done <- s.http.ShutdownWithContext(ctx) }()
	// fasthttp closes connections idle after a request; connections that
	// never carried one (clients dial spares) would hold shutdown until they
	// time out. Neither kind has a request in flight: close both.
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		s.conns.closeQuiet()
		select {
		case err := <-done:
			return err
		case <-t.C:
		}
	}
}

// connTracker knows each connection's state, to close the quiet ones at
// shutdown.
type connTracker struct {
	mu sync.Mutex
	m  map[net.Conn]fasthttp.ConnState
}

func (c *connTracker) track(conn net.Conn, st fasthttp.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[net.Conn]fasthttp.ConnState{}
	}
	if st == fasthttp.StateClosed || st == fasthttp.StateHijacked {
		delete(c.m, conn)
		return
	}
	c.m[conn] = st
}

func (c *connTracker) closeQuiet() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for conn, st := range c.m {
		if st == fasthttp.StateNew || st == fasthttp.StateIdle {
			conn.Close()
			delete(c.m, conn)
		}
	}
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/healthz":
		ctx.SetBodyString("ok\n")
		return
	case "/readyz":
		if why := s.notReady(); why != "" {
			ctx.SetStatusCode(503)
			ctx.SetBodyString(why + "\n")
			return
		}
		ctx.SetBodyString("ready\n")
		return
	case "/metrics":
		if ctx.IsGet() && !s.metricsElsewhere {
			s.writeMetrics(ctx)
			return
		}
	}
	start := time.Now()
	requestID := newRequestID()
	ctx.Response.Header.Set("x-amzn-RequestId", requestID)
	if isSTS(ctx) && !s.dev {
		octx := s.operationContext(ctx, start)
		s.serveSTS(ctx, octx, requestID, start)
		return
	}
	info := infoPool.Get().(*kms.RequestInfo)
	info.Reset()
	ctx.SetUserValue(kms.RequestInfoKey, info)
	buf := bufPool.Get().(*[]byte)
	octx := s.operationContext(ctx, start)
	octx.requestID, octx.info = requestID, info
	o, caller, out, in, err := s.serveAPI(ctx, octx, start, (*buf)[:0])
	op := ""
	var row *kms.Operation
	if o != nil {
		op, row = o.name, o.row
	}
	audited := s.audit != nil
	if audited && s.unauth != nil && caller == nil && err != nil && !s.unauth.allow(ctx.RemoteIP(), start) {
		// An unauthenticated failure over its address's budget: refused
		// and counted into a summary record, not audited one by one.
		err, audited = errThrottled, false
		s.unauth.start(s)
	}
	if audited {
		s.appendOwed()
		aerr := s.auditCall(ctx, requestID, op, row, caller, info, in, out, err)
		switch {
		case aerr == nil && octx.committed:
			s.svc.AuditDrained(requestID)
		case aerr != nil && octx.committed:
			// The change is durable, and so is its record, in the outbox:
			// the call is answered as it came out, and the record goes to
			// the trail when the trail is back (appendOwed).
			s.log.Warn("audit trail unavailable after a change committed: its record waits in the outbox", "requestId", requestID, "err", aerr)
			s.owe(requestID)
		case aerr != nil:
			// The writer logs each change of its health; one line per
			// refused call would flood the log while the disk is full.
			s.log.Debug("audit trail unavailable: refusing the call", "requestId", requestID, "err", aerr)
			err = errAuditUnavailable
		}
	}
	code := ""
	if err != nil {
		code = s.writeError(ctx, requestID, err)
	} else {
		ctx.SetContentType("application/x-amz-json-1.1")
		ctx.SetBody(out)
	}
	if caller != nil {
		key := ""
		if len(info.KeyARNs) > 0 {
			key = info.KeyARNs[0]
		}
		svc := s.svcOf(ctx)
		svc.RecordUsage(caller.Account, key, op)
		if err == nil {
			svc.RecordRequestLastUsage(info, op, requestID)
		}
	}
	s.metrics.observe(op, code, time.Since(start))
	ctx.RemoveUserValue(kms.RequestInfoKey)
	info.ClearOutput() // the operation's plaintexts and blobs; fasthttp copied the response
	// The request's body, which fasthttp keeps for its next request on the
	// connection, may carry a plaintext in base64 (Encrypt's, often a key);
	// nothing refers to it any more (decoding copies).
	clear(ctx.Request.Body())
	if s.released != nil {
		s.released(info)
	}
	if s.servedInput != nil {
		s.servedInput(op, in, ctx.Request.Body())
	}
	info.Reset() // lets go of the request's memory while pooled
	infoPool.Put(info)
	if out == nil {
		out = (*buf)[:0]
	}
	clear(out) // may hold plaintext; fasthttp copied it
	if cap(out) <= maxPooledBuf {
		*buf = out[:0]
		bufPool.Put(buf)
	}
}

// operationContext is the context an operation runs under: the request's
// values, but not its cancellation (fasthttp cancels every request's
// context when shutdown begins, which failed requests the shutdown had
// promised to finish), and a deadline of its own, between RequestTimeout
// and a second more after start. The deadline is shared by the requests of
// one second, so that an operation costs no timer of its own. It is not
// pooled: a queued HSM call may still ask it Done after the request ended.
func (s *Server) operationContext(ctx *fasthttp.RequestCtx, start time.Time) *opContext {
	return &opContext{Context: s.deadlines.get(start), req: ctx}
}

// opContext is one operation's context: Deadline, Done and Err of its
// second's shared deadline, and the request's values; for a call that may
// change state, also its kms.PendingAudit (outbox.go).
type opContext struct {
	context.Context
	req *fasthttp.RequestCtx

	requestID string
	info      *kms.RequestInfo
	// Set for a call that may change state, while the trail is on.
	s         *Server
	row       *kms.Operation
	caller    *kms.Caller
	in        any  // the decoded input, once decoded
	pending   bool // PendingAuditKey answers c
	committed bool // a transaction holding c's record committed
}

func (c *opContext) Value(key any) any {
	if key == kms.PendingAuditKey {
		if c.pending {
			return c
		}
		return nil
	}
	if v := c.req.Value(key); v != nil {
		return v
	}
	return c.Context.Value(key)
}

// deadlines hands out one context per second of request arrival, expiring
// RequestTimeout plus a second after that second began, and cancelled by
// nothing else.
type deadlines struct {
	timeout time.Duration
	cur     atomic.Pointer[deadline]
}

type deadline struct {
	sec    int64
	ctx    context.Context
	cancel context.CancelFunc // the timer cancels it at its deadline; kept for vet
}

func (d *deadlines) get(now time.Time) context.Context {
	sec := now.Unix()
	if c := d.cur.Load(); c != nil && c.sec == sec {
		return c.ctx
	}
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(sec+1, 0).Add(d.timeout))
	c := &deadline{sec: sec, ctx: ctx, cancel: cancel}
	d.cur.Store(c) // a racing request of the same second may store its own: both are right
	return ctx
}

// Response buffers are pooled; they are cleared before reuse because a
// response may carry plaintext or a data key.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

const maxPooledBuf = 64 << 10

// serveAPI authenticates and runs one API request. It returns the
// operation's name and the caller when they were established.
//
// A panic below it is the server's fault, never the caller's: it answers
// KMSInternalException, is audited and logged as such, and the server goes
// on serving.
func (s *Server) serveAPI(ctx *fasthttp.RequestCtx, octx context.Context, start time.Time, dst []byte) (o *operation, caller *kms.Caller, out []byte, in any, err error) {
	defer func() {
		if v := recover(); v != nil {
			name := ""
			if o != nil {
				name = o.name
			}
			out, in, err = nil, nil, recovered(name, v)
		}
	}()
	if !ctx.IsPost() {
		return nil, nil, nil, nil, &protocolError{"UnknownOperationException", 400, "Only POST is accepted by this service."}
	}
	if len(ctx.Request.Body()) > s.max {
		return nil, nil, nil, nil, errEntityTooLarge
	}
	// As AWS's front end, an unknown operation is refused before the
	// signature is looked at.
	target := ctx.Request.Header.Peek("X-Amz-Target")
	if name, ok := bytes.CutPrefix(target, []byte("TrentService.")); ok {
		o = s.ops[string(name)]
	} else if name, ok := bytes.CutPrefix(target, []byte("CofferAdmin.")); ok && !s.dev {
		o = s.admin[string(name)]
	}
	if o == nil {
		return nil, nil, nil, nil, unknownOperation(target)
	}
	var reg *region
	caller, reg, err = s.authenticateFor(ctx, octx, sigService, start)
	if err != nil {
		return o, nil, nil, nil, err
	}
	if reg != s.home {
		// The operation of the request's Region (o was the home Region's,
		// to refuse an unknown operation before the signature).
		ctx.SetUserValue(regionKey{}, reg)
		if ro := reg.ops[o.name]; ro != nil {
			o = ro
		}
	}
	// AWS throttles per account and Region, so after the signature names
	// them (in --dev a Region not served counts as the home one it goes to).
	if reg.quotas != nil && o.quota >= 0 && !reg.quotas.allow(caller.Account, o.quota, o.name) {
		return o, caller, nil, nil, errThrottled
	}
	if s.audit != nil && o.row != nil && !o.row.ReadOnly {
		// A call that may change state runs only while its record can be
		// written, and leaves its record in the outbox with every change.
		if err := s.audit.Err(); err != nil {
			return o, caller, nil, nil, errAuditUnavailable
		}
		if oc, ok := octx.(*opContext); ok {
			oc.s, oc.row, oc.caller, oc.pending = s, o.row, caller, true
		}
	}
	out, in, err = o.run(octx, caller, ctx.Request.Body(), dst)
	return o, caller, out, in, err
}

// operation is an entry of a dispatch table; name is the catalogue's own
// string, so keeping it keeps no request memory.
type operation struct {
	name string
	run  handler
	row  *kms.Operation
	// quota is the index of the operation's request quota (-1: none).
	quota int
}

// region is a served Region: its Service and the dispatch table bound to it.
type region struct {
	svc    *kms.Service
	ops    map[string]*operation
	quotas *quotas // its request quotas' buckets; nil without rate limits
}

// regionKey is the request's user value holding its *region when that is
// not the home Region.
type regionKey struct{}

// svcOf returns the Service of the request's Region.
func (s *Server) svcOf(ctx *fasthttp.RequestCtx) *kms.Service {
	if r, ok := ctx.UserValue(regionKey{}).(*region); ok {
		return r.svc
	}
	return s.svc
}

// serves reports whether the server answers for Region r.
func (s *Server) serves(r []byte) bool {
	_, ok := s.regions[string(r)]
	return ok
}

// authenticateFor verifies the SigV4 signature of a request signed for
// service and returns the caller and the served Region the credential scope
// names (in --dev, a Region not served is the home one). A
// temporary access key (ASIA…) must come with the session token STS gave
// with it, in X-Amz-Security-Token; a long-term key must not. The
// signature's time is checked against start, the request's arrival, unless
// Config.Now set a clock of its own.
func (s *Server) authenticateFor(ctx *fasthttp.RequestCtx, octx context.Context, service string, start time.Time) (*kms.Caller, *region, error) {
	regionOK := s.serves
	if s.dev {
		regionOK = wellFormedRegion // devRegion.go
	}
	var sr sigRequest
	now := start
	if !s.realClock {
		now = s.now()
	}
	if err := parseAuthorization(&sr, &ctx.Request, regionOK, service, now); err != nil {
		return nil, nil, err
	}
	reg := s.regions[string(sr.region)]
	if reg == nil {
		reg = s.home
	}
	c, err := s.callerOf(ctx, octx, service, &sr, reg)
	return c, reg, err
}

func (s *Server) callerOf(ctx *fasthttp.RequestCtx, octx context.Context, service string, sr *sigRequest, reg *region) (*kms.Caller, error) {
	var err error
	if s.dev {
		acct := s.svc.Account()
		c := &kms.Caller{ARN: "arn:aws:iam::" + acct + ":root", Account: acct, AccessKeyID: string(sr.accessKey)}
		withTransport(c, ctx)
		if service == sigService {
			if err := s.actAs(ctx, octx, sr, c, reg.svc); err != nil {
				return nil, err
			}
		}
		return c, nil
	}
	token := ctx.Request.Header.Peek("X-Amz-Security-Token")
	var known *kms.Caller
	var secret []byte
	if bytes.HasPrefix(sr.accessKey, []byte("ASIA")) {
		known, secret, err = s.svc.SessionCredentials(octx, string(sr.accessKey), string(token))
	} else if len(token) > 0 {
		return nil, unknownAccessKey
	} else {
		known, secret, err = s.svc.AccessKey(octx, string(sr.accessKey))
	}
	switch {
	case errors.Is(err, kms.ErrUnknownAccessKey), errors.Is(err, kms.ErrInvalidToken):
		return nil, unknownAccessKey
	case errors.Is(err, kms.ErrExpiredToken):
		return nil, expiredToken
	case err != nil:
		return nil, err
	}
	if !s.keys.verify(&ctx.Request, sr, secret) {
		return nil, signatureMismatch
	}
	caller := known // AccessKey's and SessionCredentials' copy: the request's own
	withTransport(caller, ctx)
	if service == sigService {
		if err := s.actAs(ctx, octx, sr, caller, reg.svc); err != nil {
			return nil, err
		}
	}
	return caller, nil
}

// withTransport records where the request came from, for aws:SourceIp and
// aws:SecureTransport conditions.
func withTransport(c *kms.Caller, ctx *fasthttp.RequestCtx) {
	if ta, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			c.SourceIP = ip.Unmap()
		}
	}
	c.SecureTransport, c.HasTransport = ctx.IsTLS(), true
}

func (s *Server) writeError(ctx *fasthttp.RequestCtx, requestID string, err error) string {
	code, status, msg := classify(err)
	if status >= 500 {
		var ke *kms.Error
		cause := err
		if errors.As(err, &ke) && ke.Cause() != nil {
			cause = ke.Cause()
		}
		s.log.Error("request failed", "requestId", requestID, "code", code, "err", cause)
	} else if s.log.Enabled(context.Background(), slog.LevelDebug) {
		// The caller's error, not the server's: worth a line only when
		// debugging, with the key every request line uses.
		s.log.Debug("request refused", "requestId", requestID, "code", code)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/x-amz-json-1.1")
	ctx.Response.Header.Set("x-amzn-ErrorType", code)
	body, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message,omitempty"`
	}{code, msg})
	ctx.SetBody(body)
	return code
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
// debug level: they are about misbehaving clients, not the service. A
// request fasthttp cannot parse is quoted whole in its message, so the
// secrets a request carries are cut out first.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug(redactSecrets(fmt.Sprintf(format, args...)))
}

// secretHeaders match what must never reach a log from a request: the
// session token (a bearer credential), the signature (with the rest of the
// request it proves, replayable for 15 minutes), cookies and other
// Authorization schemes. A value ends at a quote, a backslash (fasthttp
// quotes the request with %q, so CRLF is "\r\n"), a line end, or the
// next parameter.
var secretHeaders = []*regexp.Regexp{
	regexp.MustCompile(`(?i)(x-amz-security-token\s*[:=]\s*)[^\\"\r\n&,;\s]+`),
	regexp.MustCompile(`(?i)((?:x-amz-)?signature\s*=\s*)[^\\"\r\n&,;\s]+`),
	regexp.MustCompile(`(?i)((?:set-)?cookie\s*:\s*)[^\\"\r\n]+`),
	regexp.MustCompile(`(?i)(authorization\s*:\s*(?:basic|bearer|digest)\s+)[^\\"\r\n]+`),
}

func redactSecrets(msg string) string {
	for _, re := range secretHeaders {
		msg = re.ReplaceAllString(msg, "${1}REDACTED")
	}
	return msg
}

// readyCheck is one part the server needs to serve, as /readyz asks it.
type readyCheck struct {
	name  string
	check func() error
}

// AddReadyCheck registers a part /readyz asks about: while check returns an
// error, /readyz answers 503 with "<name> unavailable: <error>", so that a
// load balancer stops sending and an operator reads which part is down.
// Call it before Serve; check must be cheap and safe for concurrent use.
func (s *Server) AddReadyCheck(name string, check func() error) {
	for {
		old := s.readyChecks.Load()
		next := []readyCheck{{name, check}}
		if old != nil {
			next = append(append([]readyCheck(nil), *old...), next...)
		}
		if s.readyChecks.CompareAndSwap(old, &next) {
			return
		}
	}
}

// notReady says why the server cannot serve now ("" when it can).
func (s *Server) notReady() string {
	if !s.ready.Load() {
		return "shutting down"
	}
	if cs := s.readyChecks.Load(); cs != nil {
		for _, c := range *cs {
			if err := c.check(); err != nil {
				return c.name + " unavailable: " + err.Error()
			}
		}
	}
	return ""
}
