package deadline

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: a
// Context must leave no timer's goroutine nor parent watcher behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
