#!/usr/bin/env bash
# Runs the whole test suite several times in a row on a loaded machine: two
# CPU-burning processes run beside it for the whole time, so that a test that
# passes only when the machine is fast shows up here before it shows up in CI.
#
#   scripts/stress-tests.sh              # 3 runs of the README's test command (every module)
#   RUNS=5 scripts/stress-tests.sh       # more runs
#   TEST_CMD='go test -short ./...' scripts/stress-tests.sh
#
# Every run uses -count=1 (no cached results). Prints the wall time and the
# result of each run, then "N passed, N failed"; exits 1 if any run failed.
# The burners are bounded by timeout(1) and killed by PID when the script
# ends, however it ends.
set -uo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-3}
# The default: the README's test command (every module of go.work), uncached.
readme_cmd=$(grep -m1 '^go test -race ' README.md | sed 's/[[:space:]]*#.*//')
test_cmd=${TEST_CMD:-${readme_cmd/go test -race/go test -race -count=1}}
limit=${RUN_LIMIT:-1800} # seconds one run may take before it counts as failed
logdir=$(mktemp -d "${TMPDIR:-/tmp}/wesos-stress.XXXXXX")

burners=()
stop_burners() {
	for pid in "${burners[@]}"; do
		kill "$pid" 2>/dev/null
	done
	wait "${burners[@]}" 2>/dev/null
	burners=()
}
trap stop_burners EXIT INT TERM

# Each burner spins one core for at most as long as all runs may take.
burn_for=$((runs * limit + 60))
for _ in 1 2; do
	timeout "$burn_for" sh -c 'while :; do :; done' &
	burners+=($!)
done
echo "stress: ${#burners[@]} CPU burners (PIDs ${burners[*]}), $runs runs of: $test_cmd"
echo "stress: logs in $logdir"

passed=0 failed=0
for i in $(seq 1 "$runs"); do
	start=$SECONDS
	# shellcheck disable=SC2086 # test_cmd is a command line
	if timeout "$limit" $test_cmd >"$logdir/run$i.log" 2>&1; then
		passed=$((passed + 1))
		echo "stress: run $i/$runs green in $((SECONDS - start)) s"
	else
		failed=$((failed + 1))
		echo "stress: run $i/$runs FAILED after $((SECONDS - start)) s; failures:"
		grep -E '^(--- FAIL|FAIL|panic:)' "$logdir/run$i.log" | head -n 40
	fi
done
stop_burners
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
