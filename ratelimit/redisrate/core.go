package redisrate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seawall-go/seawall"
	"github.com/seawall-go/seawall/breaker"
	"github.com/seawall-go/seawall/internal/obs"
	"github.com/seawall-go/seawall/ratelimit"
	"github.com/seawall-go/seawall/registry"
)

// ErrLimited is ratelimit.ErrLimited, the refusal of an event over the
// limit: every refusal of this package's limiters matches it (and
// seawall.ErrRejected) with errors.Is and carries a retry-after hint
// (seawall.RetryAfter), the time until enough tokens will be in the bucket,
// so code written for ratelimit's limiters and seawall's middleware treat a
// shared limit as they treat a local one.
var ErrLimited = ratelimit.ErrLimited

// ErrUnavailable is the refusal of a limiter whose Fallback is FailClosed
// while Redis is unavailable. It matches seawall.ErrRejected with
// errors.Is. The error returned wraps the cause as well: breaker.ErrOpen
// (with the breaker's retry-after hint) while the breaker is open, or the
// error of the Redis call that failed.
var ErrUnavailable = seawall.NewRejection("redisrate: Redis unavailable")

var (
	errNilClient = errors.New("redisrate: nil client")
	errEmptyKey  = errors.New("redisrate: empty key")
)

type keyLenError struct{ n int }

func (e *keyLenError) Error() string {
	return fmt.Sprintf("redisrate: key of %d bytes is longer than MaxKeyLen %d", e.n, MaxKeyLen)
}

// errExceedsBurst is returned when n tokens are asked for and n exceeds the
// burst: no wait can ever grant them, so it is not a rejection to retry.
func errExceedsBurst(n, burst int) error {
	return fmt.Errorf("redisrate: n %d exceeds Burst %d", n, burst)
}

// limitedError is a refusal with its exact retry-after hint.
type limitedError struct{ after time.Duration }

func (e *limitedError) Error() string             { return ErrLimited.Error() }
func (e *limitedError) Unwrap() error             { return ErrLimited }
func (e *limitedError) RetryAfter() time.Duration { return e.after }

// unavailableError is FailClosed's refusal.
type unavailableError struct{ cause error }

func (e *unavailableError) Error() string   { return ErrUnavailable.Error() + ": " + e.cause.Error() }
func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.cause} }

// noRetry is a Redis command that go-redis must not send again: go-redis
// retries a command whose connection broke or whose reply timed out
// (MaxRetries, 3 by default), but the script may have run and taken the
// tokens before the reply was lost, and running it again would take them
// twice. go-redis honours NoRetry for every client type (single node,
// Sentinel, Cluster, Ring), and still follows Cluster's MOVED and ASK
// redirects, which mean the command did not run. A struct of one pointer,
// it is stored in an interface without allocating.
type noRetry struct{ *redis.Cmd }

func (noRetry) NoRetry() bool { return true }

// Boxed once: a string converted to an interface allocates.
var (
	evalshaArg any = "evalsha"
	evalArg    any = "eval"
	shaArg     any = scriptSHA
	scriptArg  any = script
)

// forever is the maxwait of a Wait without deadline, µs (about 31 years).
const forever = int64(1e15)

// core is what a Limiter and a Keyed share: the client, the bucket's
// settings as the script takes them, the breaker in front of Redis and the
// counters.
type core struct {
	client   redis.UniversalClient
	prefix   string
	timeout  time.Duration
	mode     Mode
	burst    int
	rate     float64
	interval any // T = 1/Rate, µs, as a decimal string
	tau      any // Burst × T, µs, as a decimal string
	br       *breaker.Breaker
	stats    stats
	slot     obs.Slot
}

// shared returns the snapshot a registry takes of a limiter with core c,
// from its metrics m.
func (c *core) shared(m Metrics, keyed bool) registry.SharedLimitMetrics {
	return registry.SharedLimitMetrics{
		RateLimitMetrics: registry.RateLimitMetrics{
			Metrics: ratelimit.Metrics{Allowed: m.Admitted, Limited: m.Rejected},
			Rate:    c.rate,
			Burst:   c.burst,
			Shared: &registry.SharedStore{
				Store:           "redis",
				Fallback:        c.mode.String(),
				Breaker:         m.Breaker,
				FallbackAllowed: m.Fallback.LocalAdmitted + m.Fallback.Open,
				FallbackLimited: m.Fallback.LocalRejected + m.Fallback.Closed,
				Errors:          m.RedisErrors,
				Timeouts:        m.Timeouts,
			},
		},
		Keyed: keyed,
	}
}

// init sets c up for client and cfg, cfg's defaults applied.
func (c *core) init(client redis.UniversalClient, cfg Config) error {
	if err := checkClient(client, cfg.Timeout); err != nil {
		return err
	}
	br, err := breaker.New(cfg.Breaker)
	if err != nil {
		return fmt.Errorf("redisrate: Breaker: %w", err)
	}
	t := 1e6 / cfg.Rate
	c.client, c.prefix, c.timeout, c.mode = client, cfg.Prefix, cfg.Timeout, cfg.Fallback
	c.burst, c.rate, c.br = cfg.Burst, cfg.Rate, br
	c.interval = strconv.FormatFloat(t, 'g', -1, 64)
	c.tau = strconv.FormatFloat(float64(cfg.Burst)*t, 'g', -1, 64)
	return nil
}

// checkClient rejects a nil client, and a client whose options show that
// it would not end a call at the limiter's timeout: go-redis applies a
// context's deadline to the socket only with ContextTimeoutEnabled, and
// otherwise waits up to ReadTimeout (5s by default). A client of another
// type (a wrapper) must honour context deadlines itself; the package doc
// says so.
func checkClient(c redis.UniversalClient, timeout time.Duration) error {
	var ctxOK bool
	var rt, wt time.Duration
	switch c := c.(type) {
	case nil:
		return errNilClient
	case *redis.Client:
		if c == nil {
			return errNilClient
		}
		o := c.Options()
		ctxOK, rt, wt = o.ContextTimeoutEnabled, o.ReadTimeout, o.WriteTimeout
	case *redis.ClusterClient:
		if c == nil {
			return errNilClient
		}
		o := c.Options()
		ctxOK, rt, wt = o.ContextTimeoutEnabled, o.ReadTimeout, o.WriteTimeout
	case *redis.Ring:
		if c == nil {
			return errNilClient
		}
		o := c.Options()
		ctxOK, rt, wt = o.ContextTimeoutEnabled, o.ReadTimeout, o.WriteTimeout
	default:
		return nil
	}
	switch {
	case rt < 0 || wt < 0:
		return fmt.Errorf("redisrate: Timeout %v cannot bound a call: the client sets no socket deadlines (ReadTimeout %v, WriteTimeout %v)", timeout, rt, wt)
	case !ctxOK && (rt == 0 || rt > timeout || wt == 0 || wt > timeout):
		return fmt.Errorf("redisrate: Timeout %v cannot bound a call: the client ignores context deadlines (ContextTimeoutEnabled false) and its ReadTimeout %v or WriteTimeout %v is longer; set ContextTimeoutEnabled", timeout, rt, wt)
	}
	return nil
}

// ask asks Redis for n tokens from the bucket at rkey, through the breaker.
// It returns the script's answer, or a non-nil err if Redis was not asked
// (the breaker is open: breaker.ErrOpen, allocation-free) or did not answer
// in time; the caller then decides by its mode, or returns parent's error if
// parent has ended. A call that failed because parent ended is not held
// against Redis.
func (c *core) ask(parent context.Context, rkey any, n int, maxWait int64) (ok bool, wait time.Duration, err error) {
	p, err := c.br.Allow()
	if err != nil {
		return false, 0, err
	}
	ok, wait, err = c.eval(parent, rkey, n, maxWait)
	if err != nil && parent.Err() != nil {
		p.Record(breaker.Ignore)
		return false, 0, err
	}
	p.Done(err)
	return ok, wait, err
}

// eval runs the script once, by digest, and again in full if Redis has lost
// it (NOSCRIPT: it did not run), all within the timeout. Nothing is ever
// sent again after a failure: see noRetry.
func (c *core) eval(parent context.Context, rkey any, n int, maxWait int64) (bool, time.Duration, error) {
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel()
	start := time.Now()
	cmd := redis.NewCmd(ctx, evalshaArg, shaArg, 1, rkey, c.interval, c.tau, n, maxWait)
	err := c.client.Process(ctx, noRetry{cmd})
	if err != nil && isNoScript(err) {
		c.stats.add(&c.stats.loads)
		cmd = redis.NewCmd(ctx, evalArg, scriptArg, 1, rkey, c.interval, c.tau, n, maxWait)
		err = c.client.Process(ctx, noRetry{cmd})
	}
	c.stats.observe(time.Since(start))
	if err == nil {
		var v []int64
		if v, err = cmd.Int64Slice(); err == nil && len(v) != 2 {
			err = fmt.Errorf("redisrate: the script answered %v, want 2 integers", v)
		}
		if err == nil {
			return v[0] == 1, time.Duration(v[1]) * time.Microsecond, nil
		}
	}
	c.stats.add(&c.stats.errors)
	if isTimeout(err) {
		c.stats.add(&c.stats.timeouts)
	}
	return false, 0, err
}

func isNoScript(err error) bool {
	return errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT")
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// maxWait returns how long a Wait with ctx may wait for its tokens, µs:
// less than the time left before ctx's deadline, since acting at the
// deadline is too late.
func maxWait(ctx context.Context) int64 {
	dl, ok := ctx.Deadline()
	if !ok {
		return forever
	}
	return max(time.Until(dl).Microseconds()-1, 0)
}

// unavailable returns FailClosed's refusal for the cause err.
func unavailable(err error) error { return &unavailableError{cause: err} }

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
