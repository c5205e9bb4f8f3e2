package hsm

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	cleanup := setupSoftHSM()
	code := m.Run()
	cleanup()
	os.Exit(code)
}
