package grpcmw

// PushbackKey is the trailer in which a server asks a client to wait
// before its next retry, in whole milliseconds (gRFC A6): the client's next
// retry waits exactly that long; a negative or malformed value means "do
// not retry".
const PushbackKey = "grpc-retry-pushback-ms"

// parsePushback parses the values of a PushbackKey trailer: exactly one
// non-negative integer of at most 9 digits (11.5 days).
func parsePushback(vs []string) (ms int64, ok bool) {
	if len(vs) != 1 || len(vs[0]) == 0 || len(vs[0]) > 9 {
		return 0, false
	}
	for _, c := range []byte(vs[0]) {
		if c < '0' || c > '9' {
			return 0, false // a sign ("-0" too), a space, a fraction
		}
		ms = ms*10 + int64(c-'0')
	}
	return ms, true
}
