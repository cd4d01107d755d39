package preset

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: an
// HTTPTransport must not leak a connection's goroutines, nor a waiter.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
