#!/usr/bin/env bash
# run.sh runs the side-by-side peer benchmarks and prints a benchstat table
# with one column per library (the first, seawall, is the base).
#
# Environment:
#   BENCH  benchmark regexp passed to -bench (default ".")
#   COUNT  runs of each benchmark, for benchstat (default 10)
#   CPU    GOMAXPROCS values passed to -cpu (default "1,2")
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

echo "$(go version), nproc $(nproc)"

benchstat=$(command -v benchstat || true)
if [[ -z "$benchstat" ]]; then
	bin=$(go env GOBIN)
	if [[ -z "$bin" ]]; then
		gopath=$(go env GOPATH)
		bin=${gopath%%:*}/bin
	fi
	benchstat=$bin/benchstat
	if [[ ! -x "$benchstat" ]]; then
		echo "installing benchstat into $bin"
		go install golang.org/x/perf/cmd/benchstat@latest
	fi
fi

mkdir -p results
out=results/$(date -u +%Y%m%dT%H%M%SZ).txt
echo "raw results: benchmarks/$out"
echo

go test -run '^$' -bench "${BENCH:-.}" -benchmem -count "${COUNT:-10}" -cpu "${CPU:-1,2}" ./... | tee "$out"

echo
# Rows are the full benchmark name without /lib (api, mode, GOMAXPROCS
# suffix); columns are libraries, compared against the first one seen.
"$benchstat" -col /lib -row .fullname "$out"
