package main

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestMemoryLimitParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"512MiB": 512 << 20, "2GiB": 2 << 30, "2gib": 2 << 30, "1G": 1 << 30, "64M": 64 << 20,
		"1500MB": 1500e6, "1TB": 1e12, "1073741824": 1 << 30, " 3 GiB ": 3 << 30, "0": 0,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "1.5GiB", "-1GiB", "12 parsecs", "99999999999TiB"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestMemoryLimitResolve(t *testing.T) {
	none := memorySource{cgroup: func() int64 { return 0 }, physical: func() int64 { return 0 }}
	for _, c := range []struct {
		flag string
		src  memorySource
		want int64
	}{
		{"auto", none, DefaultMemoryLimit},
		{"", none, DefaultMemoryLimit},
		{"auto", memorySource{cgroup: func() int64 { return 4 << 30 }, physical: func() int64 { return 64 << 30 }}, 3 << 30},
		{"auto", memorySource{cgroup: func() int64 { return 0 }, physical: func() int64 { return 64 << 30 }}, DefaultMemoryLimit},
		{"auto", memorySource{cgroup: func() int64 { return 0 }, physical: func() int64 { return 512 << 20 }}, 384 << 20},
		{"768MiB", none, 768 << 20},
		{"off", none, math.MaxInt64},
	} {
		got, _, err := resolveMemoryLimit(c.flag, c.src)
		if err != nil || got != c.want {
			t.Errorf("resolveMemoryLimit(%q) = %d, %v; want %d", c.flag, got, err, c.want)
		}
	}
	for _, bad := range []string{"1MiB", "lots"} {
		if _, _, err := resolveMemoryLimit(bad, none); err == nil {
			t.Errorf("resolveMemoryLimit(%q): no error", bad)
		}
	}
}

// The limit reaches the runtime, unless GOMEMLIMIT is set, which wins.
func TestMemoryLimitApply(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(before)
	none := memorySource{cgroup: func() int64 { return 0 }, physical: func() int64 { return 0 }}
	noEnv := func(string) (string, bool) { return "", false }

	got, src, err := applyMemoryLimit("700MiB", noEnv, none)
	if err != nil || got != 700<<20 || src != "--memory-limit" || debug.SetMemoryLimit(-1) != 700<<20 {
		t.Fatalf("applied %d from %q (%v); runtime has %d", got, src, err, debug.SetMemoryLimit(-1))
	}
	if got, _, _ := applyMemoryLimit("auto", noEnv, none); got != DefaultMemoryLimit || debug.SetMemoryLimit(-1) != DefaultMemoryLimit {
		t.Fatalf("auto applied %d; runtime has %d", got, debug.SetMemoryLimit(-1))
	}

	debug.SetMemoryLimit(300 << 20) // as the runtime would have from GOMEMLIMIT=300MiB
	env := func(k string) (string, bool) { return "300MiB", k == "GOMEMLIMIT" }
	got, src, err = applyMemoryLimit("2GiB", env, none)
	if err != nil || got != 300<<20 || src != "GOMEMLIMIT" || debug.SetMemoryLimit(-1) != 300<<20 {
		t.Fatalf("with GOMEMLIMIT: %d from %q (%v); runtime has %d", got, src, err, debug.SetMemoryLimit(-1))
	}
	if _, _, err := applyMemoryLimit("2 furlongs", env, none); err == nil {
		t.Fatal("a bad flag passed because GOMEMLIMIT is set")
	}
}

func TestMemoryLimitFormat(t *testing.T) {
	for n, want := range map[int64]string{1 << 30: "1GiB", 768 << 20: "768MiB", 1000: "1000B", math.MaxInt64: "off"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
