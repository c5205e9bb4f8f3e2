package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/coffer-kms/coffer/kms"
)

// StatusConfig is what the command that wires the server knows and the
// server reports in GetStatus; none of it is secret.
type StatusConfig struct {
	Version string // the binary's version
	Root    string // root of trust kind: software, pkcs11
	Store   string // store kind: memory, bolt, postgres
}

// StatusOutput answers CofferAdmin.GetStatus: the service's part and the
// server's.
type StatusOutput struct {
	kms.StatusOutput
	Version       string
	Started       time.Time
	UptimeSeconds float64
	Root          string
	Store         string
	Audit         *AuditStatus `json:",omitempty"` // nil: the trail is off
}

// AuditStatus is the audit trail's lag: records waiting for the writer
// and when the last group commit was durable.
type AuditStatus struct {
	QueueDepth int
	Records    uint64
	LastCommit *time.Time `json:",omitempty"`
	Failed     bool
}

// getStatus is GetStatus's handler: the kms method, which authorizes the
// caller, then the server's parts.
func (s *Server) getStatus(ctx context.Context, c *kms.Caller, body, dst []byte) ([]byte, any, error) {
	in := &kms.Empty{}
	if err := decode(body, in); err != nil {
		return nil, nil, err
	}
	svc, err := s.svc.GetStatus(ctx, c, in)
	if err != nil {
		return nil, in, err
	}
	now := time.Now()
	out := StatusOutput{StatusOutput: *svc, Version: s.status.Version, Started: s.started.UTC(), UptimeSeconds: now.Sub(s.started).Seconds(),
		Root: s.status.Root, Store: s.status.Store}
	if s.audit != nil {
		st := s.audit.Stats()
		out.Audit = &AuditStatus{QueueDepth: st.QueueDepth, Records: st.Records, Failed: st.Failed}
		if !st.LastCommit.IsZero() {
			t := st.LastCommit.UTC()
			out.Audit.LastCommit = &t
		}
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return nil, in, err
	}
	return append(dst, raw...), in, nil
}

// initStatus readies what GetStatus and /metrics report beyond requests:
// the start time, the served Region's request counter and the caches'.
func (s *Server) initStatus(cfg Config) {
	s.started = time.Now()
	s.status = cfg.Status
	if op := s.admin["GetStatus"]; op != nil {
		op.run = s.getStatus
	}
	// One series per served Region: the label's values are the Regions
	// this server answers as, never anything a caller chooses.
	s.metrics.region = s.metrics.set.NewCounter(fmt.Sprintf(`coffer_region_requests_total{region=%q}`, cfg.Service.Region()))
}

// writeCacheMetrics writes the service's cache counters: one series per
// cache kind, naming no key.
func (s *Server) writeCacheMetrics(w io.Writer) {
	for _, c := range s.svc.CacheStats() {
		metrics.WriteCounterUint64(w, fmt.Sprintf(`coffer_cache_hits_total{cache=%q}`, c.Cache), c.Hits)
		metrics.WriteCounterUint64(w, fmt.Sprintf(`coffer_cache_misses_total{cache=%q}`, c.Cache), c.Misses)
		metrics.WriteGaugeUint64(w, fmt.Sprintf(`coffer_cache_entries{cache=%q}`, c.Cache), uint64(c.Entries))
	}
	metrics.WriteGaugeUint64(w, "coffer_uptime_seconds", uint64(time.Since(s.started).Seconds()))
}
