package deadline

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seawall-go/seawall/internal/bubble"
)

// mk makes a context with a deadline of d under parent: context.WithDeadline
// or this package's.
type mk func(parent context.Context, d time.Time) (context.Context, func())

func std(parent context.Context, d time.Time) (context.Context, func()) {
	return context.WithDeadline(parent, d)
}

func lazy(parent context.Context, d time.Time) (context.Context, func()) {
	c := WithDeadline(parent, d)
	return c, c.Cancel
}

// customCtx is a parent that is neither a context package type nor
// derived from one: the context package watches it with a goroutine.
type customCtx struct {
	done chan struct{}
	mu   sync.Mutex
	err  error
}

func newCustom() *customCtx { return &customCtx{done: make(chan struct{})} }

func (*customCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *customCtx) Done() <-chan struct{}     { return c.done }
func (*customCtx) Value(any) any               { return nil }
func (c *customCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
func (c *customCtx) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = context.Canceled
	close(c.done)
}

// afterFuncCtx is a custom parent with an AfterFunc method, which the
// context package uses in place of a goroutine.
type afterFuncCtx struct {
	*customCtx
	calls int
}

func (c *afterFuncCtx) AfterFunc(f func()) func() bool {
	c.calls++
	return context.AfterFunc(cancelOf(c.customCtx), f)
}

// cancelOf is a context.Context ended when c is.
func cancelOf(c *customCtx) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-c.done; cancel() }()
	return ctx
}

type key string

// observation is what a scenario saw, to compare the two implementations.
type observation []string

func (o *observation) add(format string, args ...any) { *o = append(*o, fmt.Sprintf(format, args...)) }

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// scenarios run in a synctest bubble with a context made by m with a
// deadline 1s away, and return what they saw; each must see the same with
// context.WithDeadline and with this package's Context.
var scenarios = map[string]func(t *testing.T, m mk) observation{
	"deadline passes, only Err checked": func(t *testing.T, m mk) (o observation) {
		ctx, cancel := m(context.Background(), time.Now().Add(time.Second))
		defer cancel()
		o.add("before: %v", ctx.Err())
		bubble.Sleep(999 * time.Millisecond)
		o.add("just before: %v", ctx.Err())
		bubble.Sleep(time.Millisecond)
		synctest.Wait()
		o.add("at: %v cause %v", ctx.Err(), context.Cause(ctx))
		o.add("done: %v", closed(ctx.Done()))
		return o
	},
	"a handler selects on Done": func(t *testing.T, m mk) (o observation) {
		start := time.Now()
		ctx, cancel := m(context.Background(), start.Add(time.Second))
		defer cancel()
		select {
		case <-ctx.Done():
			o.add("done after %v: %v cause %v", time.Since(start), ctx.Err(), context.Cause(ctx))
		case <-time.After(time.Hour):
			o.add("not done")
		}
		return o
	},
	"AfterFunc runs at the deadline": func(t *testing.T, m mk) (o observation) {
		start := time.Now()
		ctx, cancel := m(context.Background(), start.Add(time.Second))
		defer cancel()
		ran := make(chan time.Duration, 1)
		context.AfterFunc(ctx, func() { ran <- time.Since(start) })
		o.add("ran after %v, err %v", <-ran, ctx.Err())
		return o
	},
	"AfterFunc runs at the parent's cancellation": func(t *testing.T, m mk) (o observation) {
		parent, cancelParent := context.WithCancelCause(context.Background())
		ctx, cancel := m(parent, time.Now().Add(time.Second))
		defer cancel()
		ran := make(chan struct{})
		context.AfterFunc(ctx, func() { close(ran) })
		bubble.Sleep(100 * time.Millisecond)
		cancelParent(errors.New("client gone"))
		<-ran
		o.add("err %v cause %v", ctx.Err(), context.Cause(ctx))
		return o
	},
	"AfterFunc runs at cancel, and stop after it is false": func(t *testing.T, m mk) (o observation) {
		ctx, cancel := m(context.Background(), time.Now().Add(time.Second))
		ran := make(chan struct{})
		stop := context.AfterFunc(ctx, func() { close(ran) })
		cancel()
		<-ran
		o.add("err %v stop %v", ctx.Err(), stop())
		return o
	},
	"AfterFunc stopped does not run": func(t *testing.T, m mk) (o observation) {
		ctx, cancel := m(context.Background(), time.Now().Add(time.Second))
		defer cancel()
		ran := false
		stop := context.AfterFunc(ctx, func() { ran = true })
		o.add("stop %v", stop())
		bubble.Sleep(2 * time.Second)
		synctest.Wait()
		o.add("ran %v err %v", ran, ctx.Err())
		return o
	},
	"a child WithCancel ends at the deadline": func(t *testing.T, m mk) (o observation) {
		ctx, cancel := m(context.Background(), time.Now().Add(time.Second))
		defer cancel()
		n := runtime.NumGoroutine()
		child, cancelChild := context.WithCancel(ctx)
		defer cancelChild()
		// Registered as a child of a *cancelCtx: no goroutine watches it.
		o.add("goroutines started for the child: %d", runtime.NumGoroutine()-n)
		dl, ok := child.Deadline()
		o.add("child deadline %v %v", dl, ok)
		<-ctx.Done()
		// context.WithDeadline closes Done before it cancels its children,
		// so a child read just after Done may not have ended yet: wait for
		// the goroutine that ends it, then look.
		synctest.Wait()
		o.add("child err %v cause %v", child.Err(), context.Cause(child))
		o.add("at %v", time.Now())
		return o
	},
	"a child WithCancel cancelled leaves the context alone": func(t *testing.T, m mk) (o observation) {
		ctx, cancel := m(context.Background(), time.Now().Add(time.Second))
		defer cancel()
		child, cancelChild := context.WithCancel(ctx)
		cancelChild()
		o.add("child %v, ctx %v", child.Err(), ctx.Err())
		cancel()
		o.add("after cancel: %v", ctx.Err())
		return o
	},
	"a child WithTimeout shorter than the deadline": func(t *testing.T, m mk) (o observation) {
		ctx, cancel := m(context.Background(), time.Now().Add(time.Second))
		defer cancel()
		start := time.Now()
		child, cancelChild := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancelChild()
		<-child.Done()
		o.add("child %v after %v, ctx %v", child.Err(), time.Since(start), ctx.Err())
		return o
	},
	"a child made after the deadline passed unseen": func(t *testing.T, m mk) (o observation) {
		ctx, cancel := m(context.Background(), time.Now().Add(time.Second))
		defer cancel()
		bubble.Sleep(2 * time.Second)
		child, cancelChild := context.WithCancel(ctx)
		defer cancelChild()
		o.add("child %v cause %v", child.Err(), context.Cause(child))
		return o
	},
	"the parent is cancelled first, looked at after the deadline": func(t *testing.T, m mk) (o observation) {
		parent, cancelParent := context.WithCancelCause(context.Background())
		ctx, cancel := m(parent, time.Now().Add(time.Second))
		defer cancel()
		bubble.Sleep(100 * time.Millisecond)
		cancelParent(errors.New("client gone"))
		bubble.Sleep(2 * time.Second)
		o.add("err %v cause %v done %v", ctx.Err(), context.Cause(ctx), closed(ctx.Done()))
		child, cancelChild := context.WithCancel(ctx)
		defer cancelChild()
		o.add("child %v cause %v", child.Err(), context.Cause(child))
		return o
	},
	"the deadline passes first, seen, then the parent is cancelled": func(t *testing.T, m mk) (o observation) {
		parent, cancelParent := context.WithCancel(context.Background())
		ctx, cancel := m(parent, time.Now().Add(time.Second))
		defer cancel()
		bubble.Sleep(2 * time.Second)
		o.add("err %v", ctx.Err())
		cancelParent()
		o.add("err %v cause %v done %v", ctx.Err(), context.Cause(ctx), closed(ctx.Done()))
		return o
	},
	"cancel before the deadline": func(t *testing.T, m mk) (o observation) {
		ctx, cancel := m(context.Background(), time.Now().Add(time.Second))
		bubble.Sleep(100 * time.Millisecond)
		cancel()
		cancel()
		o.add("err %v cause %v done %v", ctx.Err(), context.Cause(ctx), closed(ctx.Done()))
		bubble.Sleep(2 * time.Second)
		o.add("later %v", ctx.Err())
		return o
	},
	"cancel after the parent was cancelled": func(t *testing.T, m mk) (o observation) {
		parent, cancelParent := context.WithCancelCause(context.Background())
		ctx, cancel := m(parent, time.Now().Add(time.Second))
		cancelParent(errors.New("client gone"))
		cancel()
		o.add("err %v cause %v done %v", ctx.Err(), context.Cause(ctx), closed(ctx.Done()))
		return o
	},
	"the parent's deadline is earlier": func(t *testing.T, m mk) (o observation) {
		start := time.Now()
		parent, cancelParent := context.WithDeadlineCause(context.Background(), start.Add(100*time.Millisecond), errors.New("parent's time"))
		defer cancelParent()
		ctx, cancel := m(parent, start.Add(time.Second))
		defer cancel()
		dl, _ := ctx.Deadline()
		o.add("deadline in %v", dl.Sub(start))
		bubble.Sleep(100 * time.Millisecond)
		synctest.Wait()
		o.add("err %v cause %v", ctx.Err(), context.Cause(ctx))
		return o
	},
	"the parent's deadline is earlier, Done": func(t *testing.T, m mk) (o observation) {
		start := time.Now()
		parent, cancelParent := context.WithDeadlineCause(context.Background(), start.Add(100*time.Millisecond), errors.New("parent's time"))
		defer cancelParent()
		ctx, cancel := m(parent, start.Add(time.Second))
		defer cancel()
		<-ctx.Done()
		o.add("after %v err %v cause %v", time.Since(start), ctx.Err(), context.Cause(ctx))
		return o
	},
	"a custom parent cancelled, Err only": func(t *testing.T, m mk) (o observation) {
		parent := newCustom()
		ctx, cancel := m(parent, time.Now().Add(time.Second))
		defer cancel()
		parent.cancel()
		synctest.Wait()
		o.add("err %v cause %v", ctx.Err(), context.Cause(ctx))
		return o
	},
	"a custom parent cancelled, Done": func(t *testing.T, m mk) (o observation) {
		parent := newCustom()
		ctx, cancel := m(parent, time.Now().Add(time.Second))
		defer cancel()
		done := ctx.Done()
		bubble.Sleep(100 * time.Millisecond)
		parent.cancel()
		<-done
		o.add("err %v cause %v", ctx.Err(), context.Cause(ctx))
		return o
	},
	"a custom parent never cancelled, Done, then cancel": func(t *testing.T, m mk) (o observation) {
		parent := newCustom()
		ctx, cancel := m(parent, time.Now().Add(time.Second))
		_ = ctx.Done() // the context package watches parent with a goroutine, which cancel ends
		cancel()
		o.add("err %v", ctx.Err())
		synctest.Wait()
		parent.cancel()
		return o
	},
	"an AfterFunc parent cancelled": func(t *testing.T, m mk) (o observation) {
		parent := &afterFuncCtx{customCtx: newCustom()}
		ctx, cancel := m(parent, time.Now().Add(time.Second))
		defer cancel()
		done := ctx.Done()
		o.add("parent's AfterFunc used %d", parent.calls)
		parent.cancel()
		<-done
		o.add("err %v cause %v", ctx.Err(), context.Cause(ctx))
		return o
	},
	"values pass through": func(t *testing.T, m mk) (o observation) {
		parent := context.WithValue(context.Background(), key("k"), "v")
		n := 7
		parent = context.WithValue(parent, &n, "int key")
		ctx, cancel := m(parent, time.Now().Add(time.Second))
		o.add("%v %v %v", ctx.Value(key("k")), ctx.Value(&n), ctx.Value(key("none")))
		_ = ctx.Done()
		o.add("%v %v", ctx.Value(key("k")), ctx.Value(&n))
		cancel()
		o.add("%v %v", ctx.Value(key("k")), ctx.Value(&n))
		return o
	},
	"values pass through after the deadline": func(t *testing.T, m mk) (o observation) {
		n := 7
		parent := context.WithValue(context.Background(), &n, "int key")
		ctx, cancel := m(parent, time.Now().Add(time.Second))
		defer cancel()
		bubble.Sleep(2 * time.Second)
		o.add("%v %v %v", ctx.Err(), ctx.Value(&n), context.Cause(ctx))
		return o
	},
	"a deadline already past": func(t *testing.T, m mk) (o observation) {
		ctx, cancel := m(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		o.add("err %v cause %v done %v", ctx.Err(), context.Cause(ctx), closed(ctx.Done()))
		return o
	},
	"Expired": func(t *testing.T, m mk) (o observation) {
		ctx, cancel := m(context.Background(), time.Now().Add(time.Second))
		defer cancel()
		o.add("before %v", Expired(context.Background(), ctx))
		bubble.Sleep(time.Second)
		synctest.Wait()
		o.add("at %v", Expired(context.Background(), ctx))
		return o
	},
}

// TestContextAsWithDeadline runs each scenario with context.WithDeadline
// and with a Context, and wants the same observations.
func TestContextAsWithDeadline(t *testing.T) {
	for name, sc := range scenarios {
		t.Run(name, func(t *testing.T) {
			var want, got observation
			synctest.Test(t, func(t *testing.T) { want = sc(t, std) })
			synctest.Test(t, func(t *testing.T) { got = sc(t, lazy) })
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("got\n\t%s\nwant (context.WithDeadline)\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
			}
			if len(want) == 0 {
				t.Error("the scenario saw nothing")
			}
		})
	}
}

// TestContextCancelAfterDeadlineUnseen pins the one documented difference:
// Cancel after a deadline that nobody looked at wins, as it does against a
// context.WithDeadline whose timer has not run yet.
func TestContextCancelAfterDeadlineUnseen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := WithTimeout(context.Background(), time.Second)
		bubble.Sleep(2 * time.Second)
		c.Cancel()
		if err := c.Err(); err != context.Canceled {
			t.Errorf("Err = %v, want Canceled", err)
		}
		if err := context.Cause(c); err != context.Canceled {
			t.Errorf("Cause = %v, want Canceled", err)
		}
	})
}

// TestContextDeadlineWithoutDone checks the point of a Context: its
// deadline needs no timer to be seen by Err.
func TestContextDeadlineWithoutDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		c := WithDeadline(context.Background(), start.Add(time.Second))
		defer c.Cancel()
		if dl, ok := c.Deadline(); !ok || !dl.Equal(start.Add(time.Second)) {
			t.Errorf("Deadline = %v, %v", dl, ok)
		}
		bubble.Sleep(time.Second) // no timer of c is pending: nothing to run
		if err := c.Err(); err != context.DeadlineExceeded {
			t.Errorf("Err at the deadline = %v", err)
		}
		if c.state.Load()&made != 0 {
			t.Error("Err armed a timer")
		}
	})
}

func TestContextString(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := time.Now().Add(time.Second)
		s, cancel := context.WithDeadline(context.Background(), d)
		defer cancel()
		c := WithDeadline(context.Background(), d)
		defer c.Cancel()
		if got, want := c.String(), fmt.Sprint(s); got != want {
			t.Errorf("String = %q, want %q", got, want)
		}
	})
}

func TestContextAllocs(t *testing.T) {
	bg := context.Background()
	parent, cancel := context.WithCancel(bg)
	defer cancel()
	allocs := testing.AllocsPerRun(1000, func() {
		c := WithTimeout(parent, time.Hour)
		_, _ = c.Deadline()
		_ = c.Err()
		_ = c.Value(key("k"))
		c.Cancel()
		_ = c.Err()
	})
	if allocs != 1 {
		t.Errorf("a Context nobody waits on: %v allocations, want 1 (itself)", allocs)
	}
}

// TestContextConcurrent has goroutines wait, look and cancel at once, for
// the race detector, and checks that whoever saw it end saw Done closed.
func TestContextConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for i := range 200 {
			parent, cancelParent := context.WithCancel(context.Background())
			c := WithTimeout(parent, time.Duration(i%3)*time.Millisecond)
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for g := range 4 {
				wg.Go(func() {
					switch (g + i) % 4 {
					case 0:
						<-c.Done()
					case 1:
						_ = context.Cause(c)
					case 2:
						if i%2 == 0 {
							c.Cancel()
						} else {
							cancelParent()
						}
					case 3:
						child, cancel := context.WithCancel(c)
						_ = child.Err()
						cancel()
					}
					errs[g] = c.Err()
				})
			}
			bubble.Sleep(5 * time.Millisecond)
			wg.Wait()
			first := c.Err()
			if first == nil || !closed(c.Done()) {
				t.Fatalf("%d: not ended: %v", i, first)
			}
			for _, err := range errs {
				if err != nil && err != first {
					t.Fatalf("%d: Err changed from %v to %v", i, err, first)
				}
			}
			c.Cancel()
			cancelParent()
		}
	})
}
