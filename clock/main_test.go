package clock

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops the clocks it starts: none leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
