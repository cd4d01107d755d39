package breaker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/seawall-go/seawall"
)

// TestDefaultClassify: shedding is not failure. A refusal with a hint
// (seawall.IsOverload) did not run, and says nothing of the dependency's
// health: it is ignored, as a cancellation is; errors, timeouts and
// rejections without a hint are failures.
func TestDefaultClassify(t *testing.T) {
	overload := seawall.WithRetryAfter(seawall.NewRejection("backend: overloaded"), time.Second)
	for _, tc := range []struct {
		name string
		err  error
		want Outcome
	}{
		{"cancelled", context.Canceled, Ignore},
		{"wrapped cancellation", fmt.Errorf("get: %w", context.Canceled), Ignore},
		{"overload", overload, Ignore},
		{"wrapped overload", fmt.Errorf("call: %w", overload), Ignore},
		{"overload with a zero hint", seawall.WithRetryAfter(seawall.NewRejection("429"), 0), Ignore},
		{"overload with pushback", seawall.WithPushback(seawall.NewRejection("shed"), time.Millisecond), Ignore},
		{"error", errors.New("boom"), Failure},
		{"timeout", context.DeadlineExceeded, Failure},
		{"hinted error that is no rejection", seawall.WithRetryAfter(errors.New("500"), time.Second), Failure},
		{"rejection without a hint", seawall.NewRejection("bulkhead: full"), Failure},
		{"another breaker open, with its hint", seawall.WithRetryAfter(ErrOpen, time.Second), Failure},
	} {
		assert.Equal(t, tc.want, DefaultClassify(tc.err), tc.name)
	}
}

// TestOverloadDoesNotTrip: refusals with a hint, however many, do not
// open a breaker with the default Classify; as many errors do.
func TestOverloadDoesNotTrip(t *testing.T) {
	b := mustNew(t, Config{ConsecutiveFailures: 3})
	overload := seawall.WithRetryAfter(seawall.NewRejection("backend: overloaded"), time.Second)
	assert.Equal(t, 10, run(t, b, 10, overload))
	assert.Equal(t, Closed, b.State())
	assert.Equal(t, uint64(10), b.Metrics().Ignored)
	run(t, b, 3, errBoom)
	assert.Equal(t, Open, b.State())
}
