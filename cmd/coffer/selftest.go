package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/coffer-kms/coffer/engine"
)

// selfTest runs the engine's crypto self-test before anything is served:
// a primitive that gives a wrong known answer, or a key pair that fails its
// pairwise test, stops the start.
func selfTest(log *slog.Logger) error {
	results, err := engine.SelfTest()
	if err != nil {
		return fmt.Errorf("refusing to start: %w", err)
	}
	var chosen []string
	for _, r := range results {
		name := r.Name
		if !r.Chosen {
			name += "(tested, not in use)"
		}
		chosen = append(chosen, name)
	}
	log.Info("crypto self-test passed", "primitives", strings.Join(chosen, " "))
	return nil
}
