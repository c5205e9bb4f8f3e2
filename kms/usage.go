package kms

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coffer-kms/coffer/keystore"
)

// RequestInfo collects what the service learned while serving one request
// that the transport needs afterwards, for metering and audit: the keys the
// request resolved. The server attaches one to the request context.
type RequestInfo struct {
	KeyARNs []string
	// EventID is the event ID of the request's audit record (a UUID),
	// once the server has made it, zero without an audit trail:
	// GetKeyLastUsage's CloudTrailEventId. An array, so that keeping it
	// costs a request no allocation.
	EventID EventID

	// out is the memory the request's outputs are written into (output).
	out []byte
	// now is the request's time by the service's clock, once read
	// (requestTime).
	now time.Time
	// policy is the request's first policy context (firstPolicy).
	policy *requestPolicy
}

// EventID is an audit record's event ID, a UUID in its 36-character form;
// zero for none.
type EventID [36]byte

func (e *EventID) String() string {
	if *e == (EventID{}) {
		return ""
	}
	return string(e[:])
}

// requestInfoKey is the context key of *RequestInfo.
type requestInfoKey struct{}

// RequestInfoKey is the context key under which the server stores a
// *RequestInfo (fasthttp's RequestCtx.Value reads its user values).
var RequestInfoKey any = requestInfoKey{}

// Reset empties the info for reuse, and lets go of what the request's
// operation referred to. It does not clear the output memory: ClearOutput
// has, when the previous request's response was written.
func (ri *RequestInfo) Reset() {
	ri.KeyARNs, ri.EventID, ri.out, ri.now = ri.KeyARNs[:0], EventID{}, ri.out[:0], time.Time{}
	if ri.policy != nil {
		ri.policy.reset()
	}
}

// requestTime is the time of the request ctx carries by the service's
// clock: read once per request, for its condition keys (aws:CurrentTime)
// and the freshness of what the caches answer it, each of which would
// otherwise read the clock again (≈ 50 ns a read on a VM). Without a
// RequestInfo it is the clock's time now.
func (s *Service) requestTime(ctx context.Context) time.Time {
	ri, ok := ctx.Value(RequestInfoKey).(*RequestInfo)
	if !ok || ri == nil {
		return s.now()
	}
	if ri.now.IsZero() {
		ri.now = s.now()
	}
	return ri.now
}

func noteKey(ctx context.Context, r *keyRecord) noted {
	if ri, ok := ctx.Value(RequestInfoKey).(*RequestInfo); ok && ri != nil {
		arn := r.arn()
		if !slices.Contains(ri.KeyARNs, arn) {
			ri.KeyARNs = append(ri.KeyARNs, arn)
			return noted{ri, len(ri.KeyARNs) - 1}
		}
	}
	return noted{}
}

// noted is a key noteKey added to a request's info, which undo removes.
type noted struct {
	ri *RequestInfo
	at int
}

func (n noted) undo() {
	if n.ri != nil && n.at < len(n.ri.KeyARNs) {
		n.ri.KeyARNs = slices.Delete(n.ri.KeyARNs, n.at, n.at+1)
	}
}

// usageKey names one counter: calls of an operation on a key by an account.
type usageKey struct {
	account, key, op string
}

// usage counts calls in memory; FlushUsage adds the counts to the store and
// starts a fresh map, so that memory holds only the counters of one flush
// interval, not one per key ever called. Counters are incremented under the
// read lock, so that a flush (under the write lock) sees every increment of
// the map it takes.
//
// The map is bounded (CacheConfig.UsageEntries, as is the last-use map):
// the call that adds a counter to a full map starts a flush in the
// background (flushSoon) and goes on; it never waits for the store. While
// that flush writes, new counters go to the fresh map, so the bound is
// exceeded by at most the counters added during one flush, and a flush
// that leaves the map full again is followed at once by another.
type usage struct {
	mu sync.RWMutex
	m  map[usageKey]*atomic.Uint64
	// flushMu serialises flushes (periodic, on Close, and those the bound
	// starts), so that two never merge into the store at once.
	flushMu sync.Mutex
	// flushing is set while a flush started by the bound runs.
	flushing atomic.Bool
}

// flushChunk is the most counters, or last uses, one flush writes in one
// store transaction; a flush writes its keys in order, chunk by chunk. A
// write transaction holds every page it changes in memory until it
// commits, and counters and last uses are keyed by key ID, so each one of a
// flush lands on its own page once the keys far outnumber them: in one
// transaction, a flush at the bound (65 536) over a million keys held
// ≈ 250 MiB on bbolt (BENCHMARKS.md, "What the usage flush holds"). A chunk
// holds ≈ 25 MiB at most. A variable for tests.
var flushChunk = 1024

// usageBound is the most counters, and last uses, held between flushes.
func (s *Service) usageBound() int {
	if n := s.cacheCfg.UsageEntries; n > 0 {
		return n
	}
	return 65536
}

// usageFull reports whether either in-memory map is at its bound.
func (s *Service) usageFull() bool {
	bound := s.usageBound()
	s.usage.mu.RLock()
	n := len(s.usage.m)
	s.usage.mu.RUnlock()
	s.last.mu.Lock()
	l := len(s.last.m)
	s.last.mu.Unlock()
	return n >= bound || l >= bound
}

// flushSoon starts a flush in the background unless one started so is
// running; it runs flushes until neither map is full. A failed flush puts
// its counts back (FlushUsage) and leaves them to the periodic flush.
func (s *Service) flushSoon() {
	if !s.usage.flushing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.usage.flushing.Store(false)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := s.FlushUsage(ctx)
			cancel()
			if err != nil || !s.usageFull() {
				return
			}
		}
	}()
}

// RecordUsage counts one call of op by account on key ("" for calls that
// name no key).
func (s *Service) RecordUsage(account, key, op string) {
	k := usageKey{account, key, op}
	s.usage.mu.RLock()
	if c, ok := s.usage.m[k]; ok {
		c.Add(1)
		s.usage.mu.RUnlock()
		return
	}
	s.usage.mu.RUnlock()
	s.usage.mu.Lock()
	if s.usage.m == nil {
		s.usage.m = map[usageKey]*atomic.Uint64{}
	}
	c, ok := s.usage.m[k]
	full := false
	if !ok {
		full = len(s.usage.m) >= s.usageBound()
		c = new(atomic.Uint64)
		s.usage.m[k] = c
	}
	c.Add(1)
	s.usage.mu.Unlock()
	if full {
		s.flushSoon()
	}
}

func (k usageKey) storeKey() string { return k.account + "|" + k.op + "|" + k.key }

// FlushUsage adds the counts gathered since the last flush to the store,
// and the last use of each key (lastusage.go).
func (s *Service) FlushUsage(ctx context.Context) error {
	s.usage.flushMu.Lock()
	defer s.usage.flushMu.Unlock()
	lerr := s.flushLastUsage(ctx)
	s.usage.mu.Lock()
	taken := s.usage.m
	s.usage.m = nil
	s.usage.mu.Unlock()
	deltas := make(map[usageKey]uint64, len(taken))
	for k, c := range taken {
		if n := c.Load(); n > 0 {
			deltas[k] = n
		}
	}
	if len(deltas) == 0 {
		return lerr
	}
	type counter struct {
		stored string // k.storeKey(), made once
		k      usageKey
		n      uint64
	}
	counters := make([]counter, 0, len(deltas))
	for k, n := range deltas {
		counters = append(counters, counter{k.storeKey(), k, n})
	}
	slices.SortFunc(counters, func(a, b counter) int { return strings.Compare(a.stored, b.stored) })
	var err error
	for len(counters) > 0 && err == nil {
		chunk := counters[:min(len(counters), flushChunk)]
		err = s.store.Update(ctx, func(tx keystore.Tx) error {
			for _, c := range chunk {
				var cur uint64
				if raw, err := tx.Get(bucketUsage, c.stored); err != nil {
					return err
				} else if raw != nil {
					json.Unmarshal(raw, &cur)
				}
				if err := putJSON(tx, bucketUsage, c.stored, cur+c.n); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			counters = counters[len(chunk):]
		}
	}
	if err != nil { // put back the counts not written: nothing is lost or counted twice
		s.usage.mu.Lock()
		if s.usage.m == nil {
			s.usage.m = map[usageKey]*atomic.Uint64{}
		}
		for _, c := range counters {
			n, ok := s.usage.m[c.k]
			if !ok {
				n = new(atomic.Uint64)
				s.usage.m[c.k] = n
			}
			n.Add(c.n)
		}
		s.usage.mu.Unlock()
	}
	if err == nil {
		err = lerr
	}
	return err
}

// UsageEntry is one counter.
type UsageEntry struct {
	Account   string `json:"Account"`
	KeyArn    string `json:"KeyArn,omitempty"`
	Operation string `json:"Operation"`
	Calls     uint64 `json:"Calls"`
}

// UsageOutput is GetUsage's response.
type UsageOutput struct {
	Usage []UsageEntry `json:"Usage"`
}

// GetUsage returns the call counters of the caller's account: persisted
// counts plus those not yet flushed.
func (s *Service) GetUsage(ctx context.Context, c *Caller, _ *Empty) (*UsageOutput, error) {
	if err := s.authorizeIdentity(ctx, c, opGetUsage.Action, "*"); err != nil {
		return nil, err
	}
	all, err := s.usageOf(ctx, c.Account)
	if err != nil {
		return nil, err
	}
	return &UsageOutput{Usage: append([]UsageEntry{}, all...)}, nil
}

// AllUsage returns every counter of every account, sorted.
func (s *Service) AllUsage(ctx context.Context) ([]UsageEntry, error) { return s.usageOf(ctx, "") }

// usageOf returns the counters of account ("" for every account), sorted:
// the stored ones, read by the account's prefix of the usage bucket
// (usageKey.storeKey), plus those not yet flushed.
func (s *Service) usageOf(ctx context.Context, account string) ([]UsageEntry, error) {
	prefix := ""
	if account != "" {
		prefix = account + "|"
	}
	totals := map[usageKey]uint64{}
	err := s.store.View(ctx, func(tx keystore.Tx) error {
		return tx.Scan(bucketUsage, prefix, "", func(k string, raw []byte) bool {
			parts := strings.SplitN(k, "|", 3)
			var n uint64
			if len(parts) == 3 && json.Unmarshal(raw, &n) == nil {
				totals[usageKey{parts[0], parts[2], parts[1]}] += n
			}
			return true
		})
	})
	if err != nil {
		return nil, internal(err)
	}
	s.usage.mu.RLock()
	for k, c := range s.usage.m {
		if account == "" || k.account == account {
			totals[k] += c.Load()
		}
	}
	s.usage.mu.RUnlock()
	out := make([]UsageEntry, 0, len(totals))
	for k, n := range totals {
		out = append(out, UsageEntry{Account: k.account, KeyArn: k.key, Operation: k.op, Calls: n})
	}
	slices.SortFunc(out, func(a, b UsageEntry) int {
		return strings.Compare(a.Account+a.KeyArn+a.Operation, b.Account+b.KeyArn+b.Operation)
	})
	return out, nil
}
