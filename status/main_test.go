package status

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// handler promises to start none.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
