package server

import (
	"testing"
	"time"
)

func TestParseAmzDate(t *testing.T) {
	for in, want := range map[string]string{
		"20261123T011400Z": "2026-11-23T01:14:00Z",
		"20240229T235959Z": "2024-02-29T23:59:59Z",
	} {
		got, ok := parseAmzDate([]byte(in))
		if !ok || got.Format(time.RFC3339) != want {
			t.Errorf("%s: %v %v, want %s", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "20261123T011400", "20261323T011400Z", "20260231T000000Z", "2026112xT011400Z",
		"20261123 011400Z", "20261123T246000Z", "20240229T235960Z", "Mon, 23 Nov 2026 01:14:00 GMT"} {
		if _, ok := parseAmzDate([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
	// It agrees with time.Parse on every valid instant of a year, hour by hour.
	for tm := time.Date(2028, 1, 1, 0, 0, 7, 0, time.UTC); tm.Year() == 2028; tm = tm.Add(time.Hour + time.Minute) {
		s := tm.Format(amzDateLayout)
		got, ok := parseAmzDate([]byte(s))
		want, _ := time.Parse(amzDateLayout, s)
		if !ok || !got.Equal(want) {
			t.Fatalf("%s: %v, want %v", s, got, want)
		}
	}
}

// TestScopeDay holds scopeDay to time.Format's "20060102" over every day of
// four centuries and the ends of the four-digit years.
func TestScopeDay(t *testing.T) {
	for _, start := range []time.Time{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1900, 1, 1, 23, 59, 59, 0, time.UTC), time.Date(9999, 12, 1, 12, 0, 0, 0, time.UTC)} {
		for d := start; d.Year() <= 9999 && d.Before(start.AddDate(400, 0, 0)); d = d.AddDate(0, 0, 1) {
			var day [8]byte
			scopeDay(&day, d)
			if want := d.Format("20060102"); string(day[:]) != want {
				t.Fatalf("scopeDay(%v) = %q, want %q", d, day[:], want)
			}
		}
	}
}
