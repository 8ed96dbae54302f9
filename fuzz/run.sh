#!/usr/bin/env bash
# Runs the fuzz campaign: each target for MINUTES (default 15; signed_payload twice
# as long), two at a time on this 2-core machine, then minimizes each corpus in place
# (fuzz/corpus/<target>/, which `cargo test` replays on stable through
# tests/fuzz_corpus.rs). Needs the nightly toolchain; installs cargo-fuzz if missing.
#
#   bash fuzz/run.sh                 # the full campaign (~1 hour)
#   MINUTES=1 bash fuzz/run.sh policy token
set -euo pipefail
cd "$(dirname "$0")"
MINUTES=${MINUTES:-15}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(signed_payload policy token claims claims_mapping jwks routes)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p logs
cargo +nightly fuzz build --release
run() {
    local t=$1 secs=$(( MINUTES * 60 ))
    [ "$t" = signed_payload ] && secs=$(( secs * 2 ))
    mkdir -p "corpus/$t"
    cargo +nightly fuzz run --release "$t" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 \
        > "logs/$t.log" 2>&1 || echo "$t: FOUND SOMETHING, see fuzz/logs/$t.log and fuzz/artifacts/$t/"
    # cmin renames what it keeps: set the named seed and regression inputs aside and
    # put them back afterwards, so their names (and the inputs themselves) stay.
    local keep; keep=$(mktemp -d)
    cp corpus/"$t"/regression-* corpus/"$t"/seed-* "$keep"/ 2>/dev/null || true
    cargo +nightly fuzz cmin --release "$t" "corpus/$t" >> "logs/$t.log" 2>&1 || true
    cp "$keep"/* "corpus/$t/" 2>/dev/null || true
    rm -rf "$keep"
    local execs cov
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | tail -1 | grep -o '[0-9]*$' || true)
    cov=$(grep -o 'cov: [0-9]*' "logs/$t.log" | tail -1 | grep -o '[0-9]*$' || true)
    echo "$t: ${secs}s, ${execs:-?} executions, coverage ${cov:-?} edges, corpus $(ls "corpus/$t" | wc -l) inputs after cmin"
}
# Two lanes, one per core: signed_payload (twice as long) leads the first.
lane=(); other=()
for t in "${TARGETS[@]}"; do
    if [ "$t" = signed_payload ] || [ ${#lane[@]} -lt ${#other[@]} ]; then lane+=("$t"); else other+=("$t"); fi
done
( for t in "${lane[@]}"; do run "$t"; done ) &
( for t in "${other[@]:-}"; do [ -n "$t" ] && run "$t"; done ) &
wait
