#!/usr/bin/env bash
# Measures what counting Server.Stats costs an echo, in instructions, which
# the load of the machine does not change. Callgrind runs
# BenchmarkServerEcho/16B (a Server's connection echoing 16-byte messages)
# for 2000 and for 6000 round trips: the difference over 4000 is one round
# trip (the setup cancels out), in all and in the counting code, which is
# what callgrind attributes to countWritten and to the lines of stats.go and
# sync/atomic inlined into endMessage. (A nil check of the counters beside
# each call is not attributed: a few instructions more.)
#
#   scripts/stats-cost.sh        # needs valgrind; about a minute
#
# GOMAXPROCS=1, so that idle Ps do not spin. Valgrind now and then crashes
# on a Go binary: such a run is run again, up to 5 times.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d "${TMPDIR:-/tmp}/wesos-stats-cost.XXXXXX")
trap 'rm -rf "$dir"' EXIT
CGO_ENABLED=0 go test -c -o "$dir/ws.test" ./ws

# run N: the instructions of N round trips, in all and in the counting code.
run() {
	for _ in 1 2 3 4 5; do
		if GOMAXPROCS=1 valgrind --tool=callgrind --callgrind-out-file="$dir/cg.$1" "$dir/ws.test" \
			-test.run '^$' -test.bench 'ServerEcho/16B$' -test.benchtime "${1}x" >"$dir/log.$1" 2>&1 &&
			grep -q 'Collected' "$dir/log.$1"; then
			total=$(sed -n 's/.*Collected : //p' "$dir/log.$1")
			counting=$(callgrind_annotate --auto=no --threshold=100 "$dir/cg.$1" |
				grep -E 'ws\.\(\*Conn\)\.countWritten|stats\.go:.*endMessage|atomic/type\.go:.*endMessage' |
				awk '{ gsub(",", "", $1); s += $1 } END { print s + 0 }')
			echo "$total $counting"
			return
		fi
	done
	echo "valgrind failed 5 times; see $dir/log.$1" >&2
	exit 1
}
read -r total2 count2 < <(run 2000)
read -r total6 count6 < <(run 6000)
per=$(((total6 - total2) / 4000))
cnt=$(((count6 - count2) / 4000))
echo "instructions per round trip: $per; counting Stats: $cnt ($(awk -v c="$cnt" -v p="$per" 'BEGIN { printf "%.2f", 100 * c / p }')%)"
