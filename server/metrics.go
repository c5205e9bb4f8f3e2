package server

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/coffer-kms/coffer/kms"
)

// serverMetrics are the transport's Prometheus metrics, in a private set.
type serverMetrics struct {
	set *metrics.Set
	ops map[string]*opMetrics // prebuilt for every operation: no allocation per request
}

type opMetrics struct {
	ok       *metrics.Counter
	duration *metrics.Histogram
}

func newServerMetrics(rows []*kms.Operation) *serverMetrics {
	m := &serverMetrics{set: metrics.NewSet(), ops: map[string]*opMetrics{}}
	for _, row := range rows {
		op := row.Name
		m.ops[op] = &opMetrics{
			ok:       m.set.NewCounter(fmt.Sprintf(`coffer_requests_total{operation=%q,code="OK"}`, op)),
			duration: m.set.NewHistogram(fmt.Sprintf(`coffer_request_duration_seconds{operation=%q}`, op)),
		}
	}
	return m
}

func (m *serverMetrics) observe(op, code string, d time.Duration) {
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
		om.duration.Update(d.Seconds())
	}
}

// extraMetrics are writers of further Prometheus text, such as the HSM
// pool's; registered by the command that wires the server.
var extraMetricsMu sync.Mutex

func (s *Server) writeMetrics(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; version=0.0.4")
	w := ctx.Response.BodyWriter()
	s.metrics.set.WritePrometheus(w)
	if usage, err := s.svc.AllUsage(ctx); err == nil {
		fmt.Fprintln(w, "# HELP coffer_usage_calls_total KMS calls per account, key and operation (what is charged).")
		fmt.Fprintln(w, "# TYPE coffer_usage_calls_total counter")
		for _, u := range usage {
			fmt.Fprintf(w, "coffer_usage_calls_total{account=%q,key=%q,operation=%q} %s\n", u.Account, u.KeyArn, u.Operation, strconv.FormatUint(u.Calls, 10))
		}
	}
	extraMetricsMu.Lock()
	extras := s.extraMetrics
	extraMetricsMu.Unlock()
	for _, f := range extras {
		f(w)
	}
}

// AddMetrics registers a writer of further Prometheus text for /metrics.
func (s *Server) AddMetrics(f func(io.Writer)) {
	extraMetricsMu.Lock()
	s.extraMetrics = append(s.extraMetrics, f)
	extraMetricsMu.Unlock()
}

// infoPool recycles the per-request facts the service reports.
var infoPool = sync.Pool{New: func() any { return &kms.RequestInfo{KeyARNs: make([]string, 0, 2)} }}
