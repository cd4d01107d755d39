package benchmarks

import (
	"context"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	fstimeout "github.com/failsafe-go/failsafe-go/timeout"

	"github.com/seawall-go/seawall/timeout"
)

// timeLimit is long enough that no call of the benchmarks expires: only
// the success path is measured, and each loop checks that no call fails.
const timeLimit = time.Minute

// timeoutOp is the operation under every timeout: it reads its context's
// error, as an operation that checks it would, and succeeds.
func timeoutOp(ctx context.Context) error { return ctx.Err() }

// BenchmarkTimeout runs a call that succeeds under a timeout that does not
// expire, against each library; names are mode=…/lib=…, so that
// benchstat -col /lib puts the libraries side by side:
//
//   - lib=seawall: timeout.Do (the waiting mode, the default).
//   - lib=failsafe: failsafe-go's timeout policy, through an executor
//     built once, the operation reading the execution's context.
//   - lib=floor: what any timeout must do: context.WithTimeout, the call,
//     cancel.
//   - mode=serial runs one goroutine with b.Loop; mode=parallel runs
//     GOMAXPROCS goroutines on one policy with b.RunParallel.
func BenchmarkTimeout(b *testing.B) {
	libs := []struct {
		name  string
		bench func(b *testing.B, parallel bool)
	}{
		{"seawall", benchSeawallTimeout},
		{"failsafe", benchFailsafeTimeout},
		{"floor", benchFloorTimeout},
	}
	for _, mode := range []string{"serial", "parallel"} {
		for _, lib := range libs {
			b.Run("mode="+mode+"/lib="+lib.name, func(b *testing.B) {
				b.ReportAllocs()
				lib.bench(b, mode == "parallel")
			})
		}
	}
}

// loop runs call serially or in parallel, failing on an error.
func loop(b *testing.B, parallel bool, call func() error) {
	if !parallel {
		for b.Loop() {
			if err := call(); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := call(); err != nil {
				panic(err)
			}
		}
	})
}

func benchSeawallTimeout(b *testing.B, parallel bool) {
	t, err := timeout.New(timeout.Config{Timeout: timeLimit})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	loop(b, parallel, func() error { return t.Do(ctx, timeoutOp) })
}

func benchFailsafeTimeout(b *testing.B, parallel bool) {
	exec := failsafe.With[any](fstimeout.New[any](timeLimit))
	op := func(e failsafe.Execution[any]) error { return timeoutOp(e.Context()) }
	loop(b, parallel, func() error { return exec.RunWithExecution(op) })
}

func benchFloorTimeout(b *testing.B, parallel bool) {
	ctx := context.Background()
	loop(b, parallel, func() error {
		dctx, cancel := context.WithTimeout(ctx, timeLimit)
		defer cancel()
		return timeoutOp(dctx)
	})
}
