#!/usr/bin/env bash
# Load test: the same small axum app with and without the tiergate layer, on
# 127.0.0.1, under wrk (Debian's `wrk`), bounded in time. Prints requests per
# second and p50/p99 latency per scenario, then a Markdown table.
#
#   bash benches/load.sh            # 10 s per scenario, 2 threads, 32 connections
#   DURATION=5 bash benches/load.sh
#   SCENARIOS=feed bash benches/load.sh   # claims-change feed off/on, alternately, PAIRS=3 times
#   SCENARIOS=metrics bash benches/load.sh   # no recorder / Prometheus recorder, alternately
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18999}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
cargo build --quiet --release --example load_server
SERVER=target/release/examples/load_server
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
cp policies/saas.yaml "$WORK/policy.yaml"
# A second valid policy: the same tiers with one more feature on pro.
sed 's/features: \[sso, api, audit_log\]/features: [sso, api, audit_log, scim]/' policies/saas.yaml > "$WORK/policy-b.yaml"

ROWS=()
run() { # name mode [rewrite]
    local name=$1 mode=$2 rewrite=${3:-}
    "$SERVER" "$mode" "$PORT" "$WORK/policy.yaml" > "$WORK/token" 2> "$WORK/revisions" &
    local pid=$!
    for _ in $(seq 100); do [ -s "$WORK/token" ] && break; sleep 0.1; done
    local token; token=$(head -1 "$WORK/token")
    if [ -z "$token" ]; then echo "the $mode server did not start:"; cat "$WORK/revisions"; exit 1; fi
    if [ -n "$rewrite" ]; then
        # Rewrite the policy 100 times during the run (atomic renames, alternating).
        ( for i in $(seq 100); do
              if [ $((i % 2)) = 0 ]; then src=policies/saas.yaml; else src="$WORK/policy-b.yaml"; fi
              cp "$src" "$WORK/policy.tmp" && mv "$WORK/policy.tmp" "$WORK/policy.yaml"
              sleep "$(awk "BEGIN {print $DURATION / 110}")"
          done ) &
    fi
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
        -H "Authorization: Bearer $token" "http://127.0.0.1:$PORT/api/dashboard" > "$WORK/out"
    wait_rewrite=$(jobs -p | grep -v "^$pid$" || true)
    [ -n "$wait_rewrite" ] && wait $wait_rewrite 2>/dev/null || true
    kill "$pid"; wait "$pid" 2>/dev/null || true
    local rps p50 p99 non2xx
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/out")
    p50=$(awk '$1 == "50%" {print $2}' "$WORK/out")
    p99=$(awk '$1 == "99%" {print $2}' "$WORK/out")
    non2xx=$(awk '/Non-2xx/ {print $5}' "$WORK/out"); non2xx=${non2xx:-0}
    local reloads; reloads=$(grep -c '^revision' "$WORK/revisions" || true)
    [ -n "$rewrite" ] && name="$name ($reloads revisions activated)"
    echo "$name: $rps req/s, p50 $p50, p99 $p99, non-2xx $non2xx"
    LAST_RPS=$rps
    ROWS+=("| $name | $rps | $p50 | $p99 | $non2xx |")
}

# Runs mode A (`off`) and mode B (`on`) alternately PAIRS times, which goes first
# alternating too, so the machine's drift falls on both; prints each pair's B ÷ A
# and the ratio of the sums.
pairs() { # label-off mode-off label-on mode-on what
    local i off on sum_off=0 sum_on=0
    RATIOS=()
    for i in $(seq "${PAIRS:-3}"); do
        if [ $((i % 2)) = 1 ]; then
            run "layer, HS256, token cache on, $1 (pair $i)" "$2"; off=$LAST_RPS
            run "layer, HS256, token cache on, $3 (pair $i)" "$4"; on=$LAST_RPS
        else
            run "layer, HS256, token cache on, $3 (pair $i)" "$4"; on=$LAST_RPS
            run "layer, HS256, token cache on, $1 (pair $i)" "$2"; off=$LAST_RPS
        fi
        sum_off=$(awk "BEGIN {print $sum_off + $off}"); sum_on=$(awk "BEGIN {print $sum_on + $on}")
        RATIOS+=("pair $i: $5 = $(awk "BEGIN {printf \"%.3f\", $on / $off}")")
    done
    RATIOS+=("all pairs: $5 = $(awk "BEGIN {printf \"%.3f\", $sum_on / $sum_off}")")
    printf '%s\n' "${RATIOS[@]}"
}

if [ "${SCENARIOS:-all}" = metrics ]; then
    # Issue 22: no metrics recorder, and a Prometheus recorder (scraped every 5 s).
    pairs "no recorder" hs256 "Prometheus" hs256-metrics "Prometheus ÷ none"
elif [ "${SCENARIOS:-all}" = feed ]; then
    # Issue 20: the same app and token cache, following a claims-change feed (10,000
    # subjects changed, 20 more changes a second) or not.
    pairs "feed off" hs256 "feed on" hs256-feed "feed on ÷ off"
else
    run "no layer" plain
    run "layer, HS256, token cache on" hs256
    run "layer, HS256, token cache off" hs256-nocache
    run "layer, EdDSA, token cache on" eddsa
    run "layer, EdDSA, token cache off" eddsa-nocache
    run "layer, HS256, policy rewritten 100× during the run" hs256 rewrite
fi

echo
echo "| scenario ($THREADS wrk threads, $CONNECTIONS connections, ${DURATION} s) | requests/s | p50 | p99 | non-2xx |"
echo "|---|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
