package server

import (
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/coffer-kms/coffer/kms"
)

// BenchmarkLimiterAllow is the whole cost throttling adds to a request: the
// account's buckets in the request's Region looked up and one token taken.
func BenchmarkLimiterAllow(b *testing.B) {
	l, err := newLimiter(RateLimits{Default: map[string]float64{kms.QuotaCryptographic: 1e12}}, metrics.NewSet())
	if err != nil {
		b.Fatal(err)
	}
	q := l.inRegion("us-east-1")
	b.ReportAllocs()
	for b.Loop() {
		if !q.allow("111122223333", 0, "Encrypt") {
			b.Fatal("throttled")
		}
	}
}

// TestBucketRefills: a bucket gives a second's worth at once, then one
// token per interval.
func TestBucketRefills(t *testing.T) {
	var bk bucket
	bk.init(10) // 100 ms a token, 10 at once
	now := int64(5e9)
	for i := range 10 {
		if !bk.take(now) {
			t.Fatalf("token %d of the burst refused", i)
		}
	}
	if bk.take(now) {
		t.Fatal("an 11th token in the same instant")
	}
	if !bk.take(now + 100e6) {
		t.Fatal("no token 100 ms later")
	}
	if bk.take(now + 100e6) {
		t.Fatal("two tokens 100 ms later")
	}
}

// TestLimiterRegionDefaults: each Region's buckets start from AWS's
// cryptographic quota of that Region (kms.CryptographicQuota), and a
// configured rate applies in every Region.
func TestLimiterRegionDefaults(t *testing.T) {
	l, err := newLimiter(RateLimits{Default: map[string]float64{"CreateKey": 7}}, metrics.NewSet())
	if err != nil {
		t.Fatal(err)
	}
	create := quotaIndex()["CreateKey"]
	for region, want := range map[string]float64{"us-east-1": 50000, "eu-west-2": 20000, "eu-west-3": 10000, "af-south-1": 5500} {
		q := l.inRegion(region)
		if q.defaults[0] != want || q.defaults[create] != 7 {
			t.Errorf("%s: cryptographic %v (want %v), CreateKey %v (want 7)", region, q.defaults[0], want, q.defaults[create])
		}
	}
}
