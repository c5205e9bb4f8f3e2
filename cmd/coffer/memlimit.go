package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// DefaultMemoryLimit is the soft memory limit `serve` sets when neither
// --memory-limit nor GOMEMLIMIT says otherwise and the memory available
// is larger: see autoMemoryLimit.
const DefaultMemoryLimit = 1 << 30

// parseSize reads a size in bytes: a whole number with an optional unit,
// binary (KiB, MiB, GiB, TiB; K, M, G, T as in GOMEMLIMIT's "MiB") or
// decimal (kB, MB, GB, TB), case-insensitive: 512MiB, 2GiB, 1500MB, 1073741824.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := len(s)
	for i > 0 && (s[i-1] < '0' || s[i-1] > '9') {
		i--
	}
	num, unit := strings.TrimSpace(s[:i]), strings.ToLower(strings.TrimSpace(s[i:]))
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (e.g. 512MiB, 2GiB)", s)
	}
	mult := map[string]int64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40,
		"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("%q: unknown unit %q (use KiB, MiB, GiB, TiB, or kB, MB, GB, TB)", s, s[i:])
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// memorySource reads what bounds the process's memory: the cgroup's limit
// (0 when none) and the machine's memory (0 when unknown).
type memorySource struct {
	cgroup   func() int64
	physical func() int64
}

var systemMemory = memorySource{cgroup: cgroupMemoryLimit, physical: physicalMemory}

// autoMemoryLimit is the default limit: three quarters of the cgroup's
// memory limit when the process runs under one (a container), leaving room
// for what the Go runtime does not count (stacks of threads in C, the
// mmapped database's page cache); otherwise DefaultMemoryLimit, or three
// quarters of the machine's memory if that is less.
func autoMemoryLimit(src memorySource) (int64, string) {
	if c := src.cgroup(); c > 0 {
		return c / 4 * 3, "3/4 of the cgroup memory limit"
	}
	if p := src.physical(); p > 0 && p/4*3 < DefaultMemoryLimit {
		return p / 4 * 3, "3/4 of physical memory"
	}
	return DefaultMemoryLimit, "default"
}

// resolveMemoryLimit turns the --memory-limit value into bytes: "auto"
// (autoMemoryLimit), "off" or "0" (no limit: math.MaxInt64, the runtime's
// own default), or a size (parseSize).
func resolveMemoryLimit(flag string, src memorySource) (int64, string, error) {
	switch strings.ToLower(strings.TrimSpace(flag)) {
	case "", "auto":
		n, why := autoMemoryLimit(src)
		return n, why, nil
	case "off", "none", "0":
		return math.MaxInt64, "off", nil
	}
	n, err := parseSize(flag)
	if err != nil {
		return 0, "", fmt.Errorf("--memory-limit: %w", err)
	}
	if n < 64<<20 {
		return 0, "", fmt.Errorf("--memory-limit %s is under 64MiB: the server would spend its time collecting garbage", flag)
	}
	return n, "--memory-limit", nil
}

// applyMemoryLimit sets the Go runtime's soft memory limit from flag,
// unless GOMEMLIMIT is set in the environment (getenv), which the runtime
// has applied already and which wins, as GOGC does over --gc-percent. It
// returns the limit in force and where it came from.
func applyMemoryLimit(flag string, getenv func(string) (string, bool), src memorySource) (int64, string, error) {
	n, why, err := resolveMemoryLimit(flag, src)
	if err != nil {
		return 0, "", err
	}
	if _, set := getenv("GOMEMLIMIT"); set {
		return debug.SetMemoryLimit(-1), "GOMEMLIMIT", nil
	}
	debug.SetMemoryLimit(n)
	return n, why, nil
}

// cgroupMemoryLimit returns the memory limit of the process's cgroup (v2,
// then v1), or 0 when there is none or it cannot be read.
func cgroupMemoryLimit() int64 {
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		s := string(bytes.TrimSpace(raw))
		if s == "max" {
			return 0
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 { // v1 says "no limit" with a huge number
			return 0
		}
		return n
	}
	return 0
}

// physicalMemory returns MemTotal from /proc/meminfo, or 0.
func physicalMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// formatSize prints n in the largest binary unit that divides it.
func formatSize(n int64) string {
	if n == math.MaxInt64 {
		return "off"
	}
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.m && n%u.m == 0 {
			return fmt.Sprintf("%d%s", n/u.m, u.s)
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
