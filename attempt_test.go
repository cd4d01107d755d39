package seawall_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/seawall-go/seawall"
)

// TestAttemptNames checks the names that telemetry puts in its
// attributes: snake_case, a bounded set.
func TestAttemptNames(t *testing.T) {
	assert.Equal(t, []string{"none", "backoff", "retry_after", "pushback", "unknown"}, []string{
		seawall.DelayNone.String(), seawall.DelayBackoff.String(), seawall.DelayRetryAfter.String(),
		seawall.DelayPushback.String(), seawall.DelayReason(200).String(),
	})
	assert.Equal(t, []string{"success", "failure", "rejected", "shed", "unknown"}, []string{
		seawall.OutcomeSuccess.String(), seawall.OutcomeFailure.String(), seawall.OutcomeRejected.String(),
		seawall.OutcomeShed.String(), seawall.AttemptOutcome(200).String(),
	})
	assert.Equal(t, []string{"http", "grpc", "unknown"}, []string{
		seawall.ProtocolHTTP.String(), seawall.ProtocolGRPC.String(), seawall.Protocol(0).String(),
	})
}

func TestOutcomeOf(t *testing.T) {
	boom := errors.New("boom")
	overload := seawall.WithRetryAfter(seawall.NewRejection("server: busy"), 0)
	for _, tc := range []struct {
		err  error
		want seawall.AttemptOutcome
	}{
		{nil, seawall.OutcomeSuccess},
		{boom, seawall.OutcomeFailure},
		{seawall.WithRetryAfter(boom, 1), seawall.OutcomeFailure}, // a hint alone is no refusal
		{seawall.NewRejection("local: no"), seawall.OutcomeFailure},
		{overload, seawall.OutcomeShed},
	} {
		assert.Equal(t, tc.want, seawall.OutcomeOf(tc.err), "%v", tc.err)
	}
}
