package bench

import (
	"slices"
	"testing"
)

func TestAuditModeArgs(t *testing.T) {
	for mode, want := range map[string][]string{
		"on":            nil,
		"off":           {"--audit=false"},
		"interval:10ms": {"--audit-sync=interval:10ms"},
		"commit":        {"--audit-sync=commit"},
	} {
		if got := auditModeArgs(mode); !slices.Equal(got, want) {
			t.Errorf("auditModeArgs(%q) = %q, want %q", mode, got, want)
		}
	}
}

func TestPeerRatios(t *testing.T) {
	p := PeersPoint{CPUvsBare: map[string]float64{}, RPSvsLocalKMS: map[string]float64{}, Results: []*LoadResult{
		{Target: "coffer audit off", RPS: 30000, ServerCPUus: 30},
		{Target: "bare", RPS: 50000, ServerCPUus: 15},
		{Target: "local-kms", RPS: 5000, ServerCPUus: 150},
	}}
	peerRatios(&p)
	if got := p.CPUvsBare["coffer audit off"]; got != 2 {
		t.Errorf("CPU ÷ bare = %v, want 2", got)
	}
	if got := p.RPSvsLocalKMS["coffer audit off"]; got != 6 {
		t.Errorf("req/s ÷ local-kms = %v, want 6", got)
	}
	if _, ok := p.CPUvsBare["bare"]; ok {
		t.Error("the bare server has a ratio to itself")
	}
	if _, ok := p.RPSvsLocalKMS["local-kms"]; ok {
		t.Error("local-kms has a ratio to itself")
	}
}
