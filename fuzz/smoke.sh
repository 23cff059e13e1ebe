#!/usr/bin/env bash
# Fuzz smoke test for CI: builds every fuzz target, then runs each one for
# SECONDS seconds (default 15) with libFuzzer's -max_total_time. Fails on the
# first crash, leak or failed invariant (the input lands in artifacts/<target>/).
#
#   RUSTC_BOOTSTRAP=1 bash fuzz/smoke.sh 20
#
# cargo-fuzz needs nightly flags (-Zsanitizer); the stable toolchain accepts
# them with RUSTC_BOOTSTRAP=1, which this script sets if the caller did not.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-15}
if ! [[ $seconds =~ ^[0-9]+$ ]]; then
    echo "usage: $0 [seconds-per-target]" >&2
    exit 2
fi
export RUSTC_BOOTSTRAP=${RUSTC_BOOTSTRAP:-1}

mapfile -t targets < <(cargo fuzz list)
echo "fuzz targets: ${targets[*]}"

echo "== building all targets"
cargo fuzz build

for target in "${targets[@]}"; do
    echo "== running $target for ${seconds}s"
    # New inputs go to corpus/<target> (git-ignored); seeds/<target>, when
    # present, holds checked-in starting inputs.
    corpora=("corpus/$target")
    mkdir -p "corpus/$target"
    if [[ -d seeds/$target ]]; then
        corpora+=("seeds/$target")
    fi
    cargo fuzz run "$target" "${corpora[@]}" -- -max_total_time="$seconds" -print_final_stats=1
done
echo "== all ${#targets[@]} fuzz targets ran ${seconds}s without failure"
