//go:build race || !(amd64 || arm64 || ppc64 || ppc64le || s390x || riscv64 || loong64 || mips64 || mips64le)

package shard

import "sync/atomic"

// inc increments a counter atomically: under the race detector, which does
// not know about pinning, and on platforms where a 64-bit store may tear.
func inc(p *uint64) { atomic.AddUint64(p, 1) }
