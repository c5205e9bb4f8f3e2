package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/coffer-kms/coffer/audit"
)

// Requests that never establish a caller — a bad or missing signature, an
// unknown operation, a malformed body — cost a durable, fsync'd audit record
// each, and anyone who can reach the port can send them. So that no
// unauthenticated client can fill the disk, each source address gets a
// budget of individually audited failures (unauthRate a second, a second's
// burst); beyond it its requests are answered ThrottlingException and only
// counted, and once a second one record per address sums them up
// (coalescing). The set of addresses tracked is bounded: past unauthMaxIPs
// the rest share one entry. It is on with the rate limits (Config.RateLimits,
// `coffer serve --throttle`, on by default).
const (
	unauthRate   = 10
	unauthMaxIPs = 10000
	unauthOther  = "other addresses"
)

type unauthLimiter struct {
	mu    sync.Mutex
	epoch time.Time
	ips   map[string]*unauthIP
	once  sync.Once
	done  chan struct{}
}

type unauthIP struct {
	b          bucket
	suppressed int
	first      time.Time
	last       time.Time
}

func newUnauthLimiter() *unauthLimiter {
	return &unauthLimiter{epoch: time.Now(), ips: map[string]*unauthIP{}, done: make(chan struct{})}
}

// allow reports whether an unauthenticated failure from ip may be audited
// one by one; if not it is counted for the address's summary.
func (l *unauthLimiter) allow(ip net.IP, now time.Time) bool {
	key := unauthOther
	if ip != nil {
		key = lastIP.get(ip)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.ips[key]
	if !ok {
		if len(l.ips) >= unauthMaxIPs {
			key = unauthOther
			e = l.ips[key]
		}
		if e == nil {
			e = &unauthIP{}
			e.b.init(unauthRate)
			l.ips[key] = e
		}
	}
	if e.b.take(int64(now.Sub(l.epoch))) {
		return true
	}
	if e.suppressed == 0 {
		e.first = now
	}
	e.suppressed++
	e.last = now
	return false
}

// flush writes one record per address whose failures were only counted
// since the last flush, and forgets addresses idle for a minute.
func (l *unauthLimiter) flush(s *Server, now time.Time) {
	type summary struct {
		ip          string
		n           int
		first, last time.Time
	}
	var out []summary
	l.mu.Lock()
	for ip, e := range l.ips {
		if e.suppressed > 0 {
			out = append(out, summary{ip, e.suppressed, e.first, e.last})
			e.suppressed = 0
		}
		if idle := now.Sub(l.epoch) - time.Duration(e.b.tat.Load()); idle > time.Minute {
			delete(l.ips, ip)
		}
	}
	l.mu.Unlock()
	for _, sm := range out {
		requestID := newRequestID()
		extra, _ := json.Marshal(struct {
			Coalesced int    `json:"coalescedUnauthenticatedRequests"`
			From      string `json:"from"`
			To        string `json:"to"`
		}{sm.n, sm.first.UTC().Format(time.RFC3339Nano), sm.last.UTC().Format(time.RFC3339Nano)})
		r := audit.Record{
			EventName:           "UnauthenticatedRequests",
			AWSRegion:           s.svc.Region(),
			UserIdentity:        audit.UserIdentity{Type: "Unknown"},
			ErrorCode:           errThrottled.code,
			ErrorMessage:        fmt.Sprintf("%d requests without a valid signature from this address, over %d a second, were refused and are recorded here, not one by one.", sm.n, unauthRate),
			RequestID:           requestID,
			EventID:             eventID(requestID),
			EventType:           audit.EventTypeAPICall,
			AdditionalEventData: extra,
		}
		if sm.ip != unauthOther {
			r.SourceIPAddress = sm.ip
		}
		if err := s.audit.Append(context.Background(), &r); err != nil {
			s.log.Warn("a summary of unauthenticated requests could not be audited", "sourceIp", sm.ip, "requests", sm.n, "err", err)
		}
	}
}

// start runs the once-a-second flush, from the first suppressed request
// until the server shuts down.
func (l *unauthLimiter) start(s *Server) {
	l.once.Do(func() {
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-l.done:
					l.flush(s, time.Now())
					return
				case now := <-t.C:
					l.flush(s, now)
				}
			}
		}()
	})
}

func (l *unauthLimiter) stop() {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
}
