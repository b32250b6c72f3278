#!/usr/bin/env bash
# Builds the servers and the load generator, runs every scenario against
# every server side by side, prints the markdown table and writes it to
# RESULTS.md (RESULTS-quick.md with -quick).
#
#   ./run.sh            # full run, about 16 minutes on 2 cores; also updates ../README.md
#   ./run.sh -quick     # a small subset, about 3 minutes
#   ./run.sh -only echo # one or more sections (echo, idle, broadcast, stream, storm, deflate)
set -euo pipefail
cd "$(dirname "$0")"
command -v taskset >/dev/null || { echo "run.sh needs taskset (util-linux)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || echo "warning: fewer than 2 cores; server and load generator will share one" >&2
# Raise the soft open-file limit to the hard one (the programs do it too).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
go build -o bin/ ./cmd/benchserver ./cmd/benchload ./cmd/benchtable
exec bin/benchtable -command "./run.sh" -readme ../README.md "$@"
