package benchmarks

import (
	"testing"

	"golang.org/x/sync/semaphore"
)

// BenchmarkSemaphore reads seawall's primitive layer against the two
// semaphores a Go programmer would otherwise write: take a slot without
// waiting, then give it back. Names are api=try/mode=…/lib=…, as in
// BenchmarkBulkhead, so that benchstat -col /lib puts them side by side:
//
//   - lib=seawall: Bulkhead TryAcquire/Release (FIFO, exact limit, counted).
//   - lib=xsync: golang.org/x/sync/semaphore Weighted TryAcquire(1)/Release(1)
//     (FIFO, a mutex on every call).
//   - lib=chan: a buffered channel of maxConcurrent, a select-default send
//     to take a slot and a receive to give it back (no FIFO for waiters).
//   - mode=serial runs one goroutine with b.Loop; mode=parallel runs
//     GOMAXPROCS goroutines on one semaphore with b.RunParallel.
//
// Every semaphore admits maxConcurrent calls at once, more than the
// goroutines of mode=parallel, so none is ever full, and each loop checks
// that no call is rejected.
func BenchmarkSemaphore(b *testing.B) {
	libs := []struct {
		name  string
		bench func(b *testing.B, parallel bool)
	}{
		{"seawall", benchSeawallTry},
		{"xsync", benchXsyncTry},
		{"chan", benchChanTry},
	}
	for _, mode := range []string{"serial", "parallel"} {
		for _, lib := range libs {
			b.Run("api=try/mode="+mode+"/lib="+lib.name, func(b *testing.B) {
				b.ReportAllocs()
				lib.bench(b, mode == "parallel")
			})
		}
	}
}

func benchXsyncTry(b *testing.B, parallel bool) {
	s := semaphore.NewWeighted(maxConcurrent)
	if !parallel {
		for b.Loop() {
			if !s.TryAcquire(1) {
				b.Fatal("x/sync/semaphore: full")
			}
			s.Release(1)
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !s.TryAcquire(1) {
				panic("x/sync/semaphore: full")
			}
			s.Release(1)
		}
	})
}

func benchChanTry(b *testing.B, parallel bool) {
	s := make(chan struct{}, maxConcurrent)
	try := func() bool {
		select {
		case s <- struct{}{}:
			return true
		default:
			return false
		}
	}
	if !parallel {
		for b.Loop() {
			if !try() {
				b.Fatal("channel semaphore: full")
			}
			<-s
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !try() {
				panic("channel semaphore: full")
			}
			<-s
		}
	})
}
