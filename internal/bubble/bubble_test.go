package bubble

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestSleepAdvancesTheBubbleClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		Sleep(time.Hour)
		if got := time.Since(start); got != time.Hour {
			t.Fatalf("slept %v, want 1h of fake time", got)
		}
	})
}

func TestSleepPanicsOutsideABubble(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Sleep outside a bubble did not panic")
		}
	}()
	Sleep(time.Nanosecond)
}
