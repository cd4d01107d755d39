//go:build !race && (amd64 || arm64 || ppc64 || ppc64le || s390x || riscv64 || loong64 || mips64 || mips64le)

package shard

// inc increments a counter of the calling goroutine's own P line while it is
// pinned: no other goroutine can write it meanwhile, and a 64-bit store is
// one instruction on this platform, so readers see the old or the new value.
func inc(p *uint64) { *p++ }
