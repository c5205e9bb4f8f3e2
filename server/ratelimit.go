package server

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/coffer-kms/coffer/kms"
)

// RateLimits are the request quotas, per account and Region, as AWS KMS
// applies them: the symmetric cryptographic operations share one quota
// (kms.QuotaCryptographic), each management operation has its own; the
// defaults are AWS's (the catalogue's Quota, kms.CryptographicQuota of
// each Region). A server that serves several Regions keeps a set of
// buckets per account in each: a Region's calls never draw on another's
// quota, as in AWS ("quotas … per account and Region", the developer
// guide's "Request quotas").
//
// Each map's keys are "cryptographic" or an operation name, its values
// requests per second; a rate set here applies in every served Region.
type RateLimits struct {
	// Default replaces AWS's default quotas for every account.
	Default map[string]float64 `yaml:"default" json:"default,omitempty"`
	// Accounts replaces them for one account (by 12-digit ID).
	Accounts map[string]map[string]float64 `yaml:"accounts" json:"accounts,omitempty"`
}

// Validate refuses an unknown quota name or a rate that is not positive.
func (r *RateLimits) Validate() error {
	check := func(where string, m map[string]float64) error {
		for name, rate := range m {
			if _, ok := quotaIndex()[name]; !ok {
				return fmt.Errorf("rate limits %s: %q is neither %q nor an operation with a quota", where, name, kms.QuotaCryptographic)
			}
			if !(rate > 0) {
				return fmt.Errorf("rate limits %s: %s: %v requests per second; want more than 0", where, name, rate)
			}
		}
		return nil
	}
	if err := check("default", r.Default); err != nil {
		return err
	}
	for acct, m := range r.Accounts {
		if len(acct) != 12 || !isDigits(acct) {
			return fmt.Errorf("rate limits accounts: %q is not a 12-digit account ID", acct)
		}
		if err := check("account "+acct, m); err != nil {
			return err
		}
	}
	return nil
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// quotaIndex numbers the quotas: 0 is the shared cryptographic one, then
// each operation with a quota of its own, in name order.
var quotaIndex = sync.OnceValue(func() map[string]int {
	m := map[string]int{kms.QuotaCryptographic: 0}
	var names []string
	for _, row := range kms.Operations() {
		if row.API == kms.APIKMS && row.Quota.Shared == "" && row.Quota.PerSecond > 0 {
			names = append(names, row.Name)
		}
	}
	sort.Strings(names)
	for i, n := range names {
		m[n] = i + 1
	}
	return m
})

// quotaOf returns the index of row's quota, or -1 when it has none.
func quotaOf(row *kms.Operation) int {
	if row == nil || row.API != kms.APIKMS {
		return -1
	}
	switch {
	case row.Quota.Shared != "":
		return quotaIndex()[row.Quota.Shared]
	case row.Quota.PerSecond > 0:
		return quotaIndex()[row.Name]
	}
	return -1
}

// limiter holds the rate limits' configuration and the throttle counters;
// each served Region has its buckets (quotas).
type limiter struct {
	epoch  time.Time
	config RateLimits
	// throttled counts refusals per operation, prebuilt.
	throttled map[string]*metrics.Counter
}

// quotas holds a token bucket per account and quota in one Region.
type quotas struct {
	l        *limiter
	defaults []float64 // by quota index, for accounts without their own
	accounts sync.Map  // account → *accountBuckets
}

type accountBuckets struct{ b []bucket }

func newLimiter(cfg RateLimits, set *metrics.Set) (*limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &limiter{epoch: time.Now(), config: cfg, throttled: map[string]*metrics.Counter{}}
	for _, row := range kms.Operations() {
		if quotaOf(row) >= 0 {
			l.throttled[row.Name] = set.NewCounter(fmt.Sprintf(`coffer_throttled_total{operation=%q}`, row.Name))
		}
	}
	return l, nil
}

// inRegion returns new buckets for region, with its default rates: AWS's
// cryptographic quota of the Region, the catalogue's rates, then the
// configuration's defaults.
func (l *limiter) inRegion(region string) *quotas {
	idx := quotaIndex()
	q := &quotas{l: l, defaults: make([]float64, len(idx))}
	q.defaults[0] = float64(kms.CryptographicQuota(region))
	for _, row := range kms.Operations() {
		if i := quotaOf(row); i > 0 {
			q.defaults[i] = float64(row.Quota.PerSecond)
		}
	}
	for name, rate := range l.config.Default {
		q.defaults[idx[name]] = rate
	}
	return q
}

// buckets returns account's buckets, made at its first request.
func (q *quotas) buckets(account string) *accountBuckets {
	if a, ok := q.accounts.Load(account); ok {
		return a.(*accountBuckets)
	}
	rates := q.defaults
	if own := q.l.config.Accounts[account]; own != nil {
		rates = append([]float64(nil), rates...)
		for name, rate := range own {
			rates[quotaIndex()[name]] = rate
		}
	}
	a := &accountBuckets{b: make([]bucket, len(rates))}
	for i, r := range rates {
		a.b[i].init(r)
	}
	got, _ := q.accounts.LoadOrStore(account, a)
	return got.(*accountBuckets)
}

// allow takes a token of quota i from account's bucket.
func (q *quotas) allow(account string, i int, op string) bool {
	if q.buckets(account).b[i].take(int64(time.Since(q.l.epoch))) {
		return true
	}
	if c := q.l.throttled[op]; c != nil {
		c.Inc()
	}
	return false
}

// bucket is a token bucket kept as GCRA's theoretical arrival time: one
// atomic word and one compare-and-swap a request, no lock. It holds up to
// a second of requests (AWS does not document a burst; a second's worth is
// what a per-second quota allows) and refills at the rate.
type bucket struct {
	tat      atomic.Int64 // nanoseconds since the limiter's epoch
	interval int64        // nanoseconds per request
	burst    int64        // how far tat may run ahead of now
}

func (b *bucket) init(perSecond float64) {
	b.interval = int64(float64(time.Second) / perSecond)
	if b.interval < 1 {
		b.interval = 1
	}
	b.burst = int64(time.Second)
	if b.burst < b.interval {
		b.burst = b.interval // a rate below 1/s still allows one request
	}
}

func (b *bucket) take(now int64) bool {
	for {
		old := b.tat.Load()
		next := max(old, now) + b.interval
		if next-now > b.burst {
			return false
		}
		if b.tat.CompareAndSwap(old, next) {
			return true
		}
	}
}

// errThrottled is AWS's answer to a request over its quota.
var errThrottled = &protocolError{"ThrottlingException", 400, "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."}
