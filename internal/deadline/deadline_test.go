package deadline

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// timerNotRun is a derived context whose deadline has passed but whose
// timer has not run yet: Err is still nil.
type timerNotRun struct {
	context.Context
	dl time.Time
}

func (c timerNotRun) Deadline() (time.Time, bool) { return c.dl, true }
func (c timerNotRun) Err() error                  { return nil }

func TestExpired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bg := context.Background()
		now := time.Now()
		late, cancelLate := context.WithTimeout(bg, time.Hour)
		defer cancelLate()
		early, cancelEarly := context.WithTimeout(bg, time.Millisecond)
		defer cancelEarly()
		cancelled, cancel := context.WithCancel(bg)
		cancel()
		for _, tc := range []struct {
			name      string
			ctx, dctx context.Context
			want      bool
		}{
			{"no deadline", bg, bg, false},
			{"the clock has reached it, the timer not run", bg, timerNotRun{bg, now}, true},
			{"the clock has not reached it", bg, timerNotRun{bg, now.Add(1)}, false},
			{"the caller's deadline is later", late, timerNotRun{late, now}, true},
			{"the caller's deadline is earlier", early, timerNotRun{early, now.Add(time.Second)}, false},
			{"the caller's deadline is the same", early, timerNotRun{early, now.Add(time.Millisecond)}, false},
			{"the caller cancelled", cancelled, timerNotRun{cancelled, now}, false},
		} {
			if got := Expired(tc.ctx, tc.dctx); got != tc.want {
				t.Errorf("%s: Expired = %v, want %v", tc.name, got, tc.want)
			}
		}
		fired, cancelFired := context.WithTimeout(bg, time.Millisecond)
		defer cancelFired()
		<-fired.Done()
		if !Expired(bg, fired) {
			t.Error("a fired timer: not expired")
		}
		cctx, c := context.WithCancel(bg)
		dctx, cd := context.WithTimeout(cctx, time.Hour)
		defer cd()
		c()
		if Expired(cctx, dctx) {
			t.Error("cancelled by the caller: expired")
		}
	})
}
