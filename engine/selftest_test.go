package engine

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestSelfTest: every row passes, each row fails when its known answer (or
// its pairwise result) is corrupted, and SelfTest names the row that failed.
func TestSelfTest(t *testing.T) {
	start := time.Now()
	results, err := SelfTest()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows in %v", len(results), time.Since(start))
	for _, row := range selfTests() {
		if err := row.run(true); err == nil {
			t.Errorf("corrupted %s passed", row.name)
		}
	}
	for _, name := range []string{results[0].Name, results[len(results)-1].Name} {
		corruptVector = name
		_, err := SelfTest()
		corruptVector = ""
		if !errors.Is(err, ErrSelfTest) || !strings.Contains(err.Error(), name+":") {
			t.Errorf("corrupted %s: %v", name, err)
		}
	}
}
