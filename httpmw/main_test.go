package httpmw

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: a
// Transport must not leak a connection's goroutines, nor a middleware a
// waiter.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
