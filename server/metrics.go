package server

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/coffer-kms/coffer/kms"
)

// serverMetrics are the transport's Prometheus metrics, in a private set.
//
// /metrics is unauthenticated, so it names no account, key or principal:
// its series are per operation and error code only, and its size does not
// grow with the number of keys or callers. What each key is used for is
// metering, kept in the store and read through the authenticated GetUsage
// (`coffer admin usage`).
type serverMetrics struct {
	set *metrics.Set
	ops map[string]*opMetrics // prebuilt for every operation: no allocation per request
	// region counts the requests of the served Region (status.go).
	region *metrics.Counter
}

type opMetrics struct {
	ok           *metrics.Counter
	durationName string
	// duration is made at the operation's first call, so that operations
	// never called cost no series.
	duration atomic.Pointer[metrics.PrometheusHistogram]
}

// durationBuckets are the upper bounds of the request latency histogram:
// fixed, so that a scrape has the same series however latency spreads, and
// fine below a millisecond, where most KMS calls answer.
var durationBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newServerMetrics(rows []*kms.Operation) *serverMetrics {
	m := &serverMetrics{set: metrics.NewSet(), ops: map[string]*opMetrics{}}
	for _, row := range rows {
		op := row.Name
		m.ops[op] = &opMetrics{
			ok:           m.set.NewCounter(fmt.Sprintf(`coffer_requests_total{operation=%q,code="OK"}`, op)),
			durationName: fmt.Sprintf(`coffer_request_duration_seconds{operation=%q}`, op),
		}
	}
	return m
}

func (m *serverMetrics) observe(op, code string, d time.Duration) {
	if m.region != nil {
		m.region.Inc()
	}
	om, known := m.ops[op]
	if !known {
		op = "unknown"
	}
	if code == "" && known {
		om.ok.Inc()
	} else {
		if code == "" {
			code = "OK"
		}
		m.set.GetOrCreateCounter(fmt.Sprintf(`coffer_requests_total{operation=%q,code=%q}`, op, code)).Inc()
	}
	if known {
		h := om.duration.Load()
		if h == nil {
			h = m.set.GetOrCreatePrometheusHistogramExt(om.durationName, durationBuckets)
			om.duration.Store(h)
		}
		h.Update(d.Seconds())
	}
}

// extraMetrics are writers of further Prometheus text, such as the HSM
// pool's; registered by the command that wires the server.
var extraMetricsMu sync.Mutex

func (s *Server) writeMetrics(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; version=0.0.4")
	w := ctx.Response.BodyWriter()
	s.metrics.set.WritePrometheus(w)
	// The Go runtime's memory, GC and scheduler gauges and the process's
	// CPU, memory and descriptors: a fixed set, read at scrape time.
	metrics.WriteProcessMetrics(w)
	s.writeCacheMetrics(w)
	extraMetricsMu.Lock()
	extras := s.extraMetrics
	extraMetricsMu.Unlock()
	for _, f := range extras {
		f(w)
	}
}

// AddMetrics registers a writer of further Prometheus text for /metrics.
// What it writes is served without authentication: it must name no key,
// account or principal.
func (s *Server) AddMetrics(f func(io.Writer)) {
	extraMetricsMu.Lock()
	s.extraMetrics = append(s.extraMetrics, f)
	extraMetricsMu.Unlock()
}

// ServeMetrics serves GET /metrics alone on ln until Shutdown (with
// Config.SeparateMetrics, the API listener does not serve it).
func (s *Server) ServeMetrics(ln net.Listener) error {
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) == "/metrics" && ctx.IsGet() {
				s.writeMetrics(ctx)
				return
			}
			ctx.Error("not found\n", fasthttp.StatusNotFound)
		},
		Name:            "Coffer",
		Logger:          fasthttpLogger{s.log},
		ReadTimeout:     30 * time.Second,
		WriteTimeout:    30 * time.Second,
		IdleTimeout:     2 * time.Minute,
		CloseOnShutdown: true,
	}
	s.metricsMu.Lock()
	s.metricsHTTP = srv
	s.metricsMu.Unlock()
	return srv.Serve(ln)
}

// infoPool recycles the per-request facts the service reports.
var infoPool = sync.Pool{New: func() any { return &kms.RequestInfo{KeyARNs: make([]string, 0, 2)} }}
