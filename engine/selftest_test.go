package engine

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestSelfTest: every row passes, and each row fails when its known answer
// is corrupted, naming itself.
func TestSelfTest(t *testing.T) {
	start := time.Now()
	results, err := SelfTest()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows in %v", len(results), time.Since(start))
	for _, r := range results {
		corruptVector = r.Name
		_, err := SelfTest()
		corruptVector = ""
		if !errors.Is(err, ErrSelfTest) || !strings.Contains(err.Error(), r.Name+":") {
			t.Errorf("corrupted %s: %v", r.Name, err)
		}
	}
}
