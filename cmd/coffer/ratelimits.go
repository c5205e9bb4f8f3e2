package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/coffer-kms/coffer/server"
)

// rateLimitsOf reads the file's rate-limits key (AWS's defaults when the
// file has none). Errors name the file and line.
func rateLimitsOf(cf *configFile) (*server.RateLimits, error) {
	rl := &server.RateLimits{}
	if cf == nil || cf.rateLimits == nil {
		return rl, nil
	}
	if err := yaml.NodeToValue(cf.rateLimits, rl, yaml.DisallowUnknownField()); err != nil {
		return nil, yamlError(cf.path, err)
	}
	if err := rl.Validate(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", cf.path, line(cf.rateLimits), err)
	}
	return rl, nil
}

// printRateLimits writes rl as the file's rate-limits key.
func printRateLimits(w io.Writer, rl *server.RateLimits) {
	if len(rl.Default) == 0 && len(rl.Accounts) == 0 {
		fmt.Fprintln(w, "rate-limits: {} # AWS's default quotas")
		return
	}
	var b strings.Builder
	b.WriteString("rate-limits:\n")
	writeRates := func(indent string, m map[string]float64) {
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			fmt.Fprintf(&b, "%s%s: %v\n", indent, n, m[n])
		}
	}
	if len(rl.Default) > 0 {
		b.WriteString("  default:\n")
		writeRates("    ", rl.Default)
	}
	if len(rl.Accounts) > 0 {
		b.WriteString("  accounts:\n")
		accts := make([]string, 0, len(rl.Accounts))
		for a := range rl.Accounts {
			accts = append(accts, a)
		}
		slices.Sort(accts)
		for _, a := range accts {
			fmt.Fprintf(&b, "    %q:\n", a)
			writeRates("      ", rl.Accounts[a])
		}
	}
	io.WriteString(w, b.String())
}
