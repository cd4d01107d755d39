package grpcmw

import (
	"strconv"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/seawall-go/seawall/internal/hint"
)

// The pushback trailer, both ways: the server writes it (pushbackTrailer),
// the client reads it (parsePushback), and a status message that shows a
// wait shows what the trailer says (waitText). The rounding rule and the
// digit parser are those of every seawall transport (internal/hint).

// PushbackKey is the trailer in which a server asks a client to wait
// before its next retry, in whole milliseconds (gRFC A6): the client's next
// retry waits exactly that long; a negative or malformed value means "do
// not retry". A server of this package rounds its wait up to the next
// millisecond.
const PushbackKey = "grpc-retry-pushback-ms"

// parsePushback parses the values of a PushbackKey trailer: exactly one
// value of 1 to 9 ASCII digits (up to 11.5 days), and nothing else (no
// sign, "-0" too; no space, no fraction).
func parsePushback(vs []string) (time.Duration, bool) {
	if len(vs) != 1 {
		return 0, false // none, or ambiguous
	}
	ms, ok := hint.ParseDigits(vs[0])
	return time.Duration(ms) * time.Millisecond, ok
}

// pushbackTrailer returns the trailer that asks a client to wait d: d in
// whole milliseconds, rounded up.
func pushbackTrailer(d time.Duration) metadata.MD {
	return metadata.Pairs(PushbackKey, strconv.FormatInt(hint.Ceil(d, time.Millisecond), 10))
}

// waitText is how a status message shows a wait of d: rounded up to the
// millisecond, as the trailer carries it ("retry in 3ms" with a trailer of
// 3, for a wait of 2.4ms).
func waitText(d time.Duration) string {
	return hint.CeilMillis(d).String()
}
