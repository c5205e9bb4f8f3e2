package hsm

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// poolMetrics lives in a private metrics.Set: the server decides whether
// and where to expose it (metrics.RegisterSet, or WriteMetrics on its own
// endpoint), and two pools in one process never collide.
type poolMetrics struct {
	set         *metrics.Set
	requests    [numOps]*metrics.Counter
	latency     [numOps]*metrics.PrometheusHistogram
	batch       *metrics.PrometheusHistogram
	coalesced   *metrics.Counter
	queueFull   *metrics.Counter
	timeouts    *metrics.Counter
	unwrap      *metrics.Counter // ErrUnwrap: forged or mismatched blobs
	unavailable *metrics.Counter
	otherErrors *metrics.Counter

	calls    atomic.Uint64
	batches  atomic.Uint64
	maxBatch atomic.Int64
}

// HSM calls take tens of microseconds on a local token and milliseconds on
// a network one; the default buckets start at 5 ms.
var latencyBuckets = []float64{10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 100e-3, 250e-3, 1}

var batchBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128}

func newPoolMetrics(p *Pool) *poolMetrics {
	s := metrics.NewSet()
	backend := fmt.Sprintf("backend=%q", p.b.Name())
	m := &poolMetrics{set: s}
	for o := range numOps {
		l := fmt.Sprintf("{%s,op=%q}", backend, opNames[o])
		m.requests[o] = s.NewCounter("coffer_hsm_requests_total" + l)
		m.latency[o] = s.NewPrometheusHistogramExt("coffer_hsm_call_duration_seconds"+l, latencyBuckets)
	}
	s.NewGauge("coffer_hsm_queue_depth{"+backend+"}", func() float64 { return float64(len(p.queue)) })
	m.batch = s.NewPrometheusHistogramExt("coffer_hsm_batch_size{"+backend+"}", batchBuckets)
	m.coalesced = s.NewCounter("coffer_hsm_coalesced_total{" + backend + "}")
	errs := func(kind string) *metrics.Counter {
		return s.NewCounter(fmt.Sprintf("coffer_hsm_errors_total{%s,kind=%q}", backend, kind))
	}
	m.queueFull = errs("queue_full")
	m.timeouts = errs("timeout")
	m.unwrap = errs("unwrap")
	m.unavailable = errs("unavailable")
	m.otherErrors = errs("other")
	if r, ok := p.b.(interface{ Reconnects() uint64 }); ok {
		s.NewGauge("coffer_hsm_reconnects_total{"+backend+"}", func() float64 { return float64(r.Reconnects()) })
	}
	if _, ok := p.b.(HealthChecker); ok {
		s.NewGauge("coffer_hsm_up{"+backend+"}", func() float64 {
			if p.Healthy() != nil {
				return 0
			}
			return 1
		})
	}
	return m
}

func (m *poolMetrics) recordBatch(n int) {
	m.batch.Update(float64(n))
	m.batches.Add(1)
	for {
		old := m.maxBatch.Load()
		if int64(n) <= old || m.maxBatch.CompareAndSwap(old, int64(n)) {
			return
		}
	}
}

func (m *poolMetrics) countError(err error) {
	switch {
	case err == nil:
	case errors.Is(err, ErrUnwrap):
		m.unwrap.Inc()
	case errors.Is(err, ErrUnavailable):
		m.unavailable.Inc()
	default:
		m.otherErrors.Inc()
	}
}

// Metrics returns the pool's private metric set, for the server to
// register (metrics.RegisterSet) or write.
func (p *Pool) Metrics() *metrics.Set { return p.m.set }

// WriteMetrics writes the pool's metrics in Prometheus text format.
func (p *Pool) WriteMetrics(w io.Writer) { p.m.set.WritePrometheus(w) }

// PoolStats is a snapshot of what a pool has done.
type PoolStats struct {
	Queued    int    // requests waiting for a worker now
	Calls     uint64 // backend calls made
	Coalesced uint64 // requests answered by another request's call
	Batches   uint64 // times a worker took work from the queue
	MaxBatch  int    // most requests a worker took at once
	QueueFull uint64 // requests refused with ErrQueueFull
}

// Stats returns a snapshot of the pool's counters.
func (p *Pool) Stats() PoolStats {
	return PoolStats{
		Queued:    len(p.queue),
		Calls:     p.m.calls.Load(),
		Coalesced: p.m.coalesced.Get(),
		Batches:   p.m.batches.Load(),
		MaxBatch:  int(p.m.maxBatch.Load()),
		QueueFull: p.m.queueFull.Get(),
	}
}
