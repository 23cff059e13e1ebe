#!/usr/bin/env bash
# Silt benchmarks against VictoriaMetrics and Prometheus: one command, one report.
#
#   benches/run.sh                 # ingest: 20k, 200k, 1M series, 3 runs each, all systems
#   benches/run.sh --runs 1 --scale 20000:6h --systems victoria-metrics,prometheus
#   benches/run.sh query --results benches/results/<ingest run dir>   # query benchmark
#   benches/run.sh rules --results benches/results/<ingest run dir>   # rules benchmark
#
# Arguments after the script name replace the default scales/runs/systems (any
# `silt-bench ingest` flag works; after `query`, any `silt-bench query` flag). Writes
# docs/benchmarks.md and raw results under benches/results/<date>-<host>/ (query runs in
# its query/ subdirectory, rules runs in rules/; give the ingest run's directory so that the
# report shows all of them).
# Needs: apt-get install -y victoria-metrics prometheus.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
if ! command -v victoria-metrics >/dev/null || ! command -v prometheus >/dev/null; then
  echo "installing the peers (Debian packages victoria-metrics, prometheus)" >&2
  apt-get install -y victoria-metrics prometheus >/dev/null
fi

# SILT_BENCH_NO_BUILD=1 reuses the binaries already in $CARGO_TARGET_DIR/release.
if [ -z "${SILT_BENCH_NO_BUILD:-}" ]; then
  cargo build --release -p silt -p silt-bench
fi

# Default: every scale, 3 runs. 1M series use 20 minutes of data so that the pre-encoded
# requests (~39 bytes/sample) and Prometheus' head both fit in memory on a 24 GiB machine.
mode=ingest
if [ "${1:-}" = query ] || [ "${1:-}" = rules ]; then
  mode=$1
  shift
fi
args=("$@")
if [ "$mode" = ingest ] && [ ${#args[@]} -eq 0 ]; then
  args=(--scale 20000:6h --scale 200000:1h --scale 1000000:20m --runs 3)
fi

# Own session (so the priority below applies to the benchmark only, not to the caller's
# session); negative priority only when root. Ctrl-C stops the whole benchmark group.
nice=0
[ "$(id -u)" = 0 ] && nice=-15
setsid "$CARGO_TARGET_DIR/release/silt-bench" "$mode" \
  --silt-bin "$CARGO_TARGET_DIR/release/silt" \
  --nice "$nice" \
  --out docs/benchmarks.md \
  "${args[@]}" &
pid=$!
trap 'kill -TERM -- -"$pid" 2>/dev/null || true' INT TERM
wait "$pid"
