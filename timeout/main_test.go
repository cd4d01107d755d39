package timeout

import (
	"testing"

	"go.uber.org/goleak"
)

// Abandon mode starts goroutines: every test must let them return.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
