#!/usr/bin/env bash
# Load test of the reference claims server (issue 15): claims writes/s and token
# mints/s (/api/platform/tokens and /oauth/token), p50/p99 and errors, on SQLite and on
# PostgreSQL, at 1, 16 and 64 concurrent clients, with one and with two instances;
# and in the same run the floor: the same SQL as bare sqlx transactions from 64
# tasks, and the same SQL plus bare Ed25519 signing for the mints
# (examples/server_floor.rs). Loopback only, bounded
# in time. Load generator: Debian's wrk.
#
#   bash benches/server_load.sh                   # 5 s per cell
#   DURATION=10 DATABASES="sqlite" bash benches/server_load.sh
#   TIERGATE_BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432/test (the default)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
DATABASES=${DATABASES:-"sqlite postgres"}
CLIENTS=${CLIENTS:-"1 16 64"}
PG=${TIERGATE_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}
PORT_A=${PORT_A:-18180}
PORT_B=${PORT_B:-18181}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
cargo build --quiet --release --features server --bin tiergate --example server_floor
TG=target/release/tiergate
FLOOR=target/release/examples/server_floor
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

cat > "$WORK/claims.lua" <<'LUA'
local counter = 0
local id = 0
local auth = os.getenv("AUTH")
function setup(thread) id = id + 1; thread:set("id", id) end
function request()
  counter = counter + 1
  local body = string.format('{"email":"load%d-%d@example.com","claims":{"plan":"pro","seats":%d}}',
    id, counter % 500, counter)
  return wrk.format("POST", "/api/platform/claims",
    {["Content-Type"] = "application/json", ["Authorization"] = auth}, body)
end
LUA
cat > "$WORK/tokens.lua" <<'LUA'
local auth = os.getenv("AUTH")
wrk.method = "POST"
wrk.body = '{"email":"bench@example.com"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = auth
LUA
cat > "$WORK/oauth.lua" <<'LUA'
local auth = os.getenv("AUTH")
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = auth
LUA

ROWS=()
FLOORS=()
wait_up() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return; sleep 0.1; done; echo "server on $1 did not start"; exit 1; }

# wrk against one or two instances (connections split between them); prints
# "rps p50_ms p99_ms errors".
load() { # script path clients instances
    local script=$1 path=$2 clients=$3 instances=$4 i port c t
    local wrks=()
    for i in $(seq "$instances"); do
        port=$PORT_A; [ "$i" = 2 ] && port=$PORT_B
        c=$(( clients / instances )); [ "$c" -lt 1 ] && c=1
        t=2; [ "$c" -lt 2 ] && t=1
        AUTH="$AUTH" wrk -t"$t" -c"$c" -d"${DURATION}s" --latency -s "$WORK/$script" \
            "http://127.0.0.1:$port$path" > "$WORK/wrk.$i" 2>&1 &
        wrks+=($!)
    done
    wait "${wrks[@]}"
    python3 - "$WORK" "$instances" <<'PY'
import re, sys
work, n = sys.argv[1], int(sys.argv[2])
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    x = float(m.group(1)); return x / 1000 if m.group(2) == "us" else x * 1000 if m.group(2) == "s" else x
rps = errs = 0.0; p50 = p99 = 0.0
for i in range(1, n + 1):
    out = open(f"{work}/wrk.{i}").read()
    rps += float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = max(p50, ms(re.search(r"\s50%\s+(\S+)", out).group(1)))
    p99 = max(p99, ms(re.search(r"\s99%\s+(\S+)", out).group(1)))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out); errs += int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errs += sum(int(x) for x in m.groups()) if m else 0
print(f"{rps:.0f} {p50:.2f} {p99:.2f} {errs:.0f}")
PY
}

for db in $DATABASES; do
    case $db in
        sqlite) URL="sqlite://$WORK/bench.db"; FLOOR_URL="sqlite://$WORK/floor.db" ;;
        postgres)
            if ! pg_isready -q -d "$PG" 2>/dev/null; then echo "PostgreSQL at $PG is not reachable: skipping it"; continue; fi
            SCHEMA="bench_$(date +%s)_$$"
            psql -q "$PG" -c "CREATE SCHEMA $SCHEMA; CREATE SCHEMA ${SCHEMA}_floor;"
            URL="$PG?options=-c%20search_path%3D$SCHEMA"
            FLOOR_URL="$PG?options=-c%20search_path%3D${SCHEMA}_floor" ;;
    esac
    CRED=$("$TG" client create --name bench --database-url "$URL")
    ID=$(echo "$CRED" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
    SECRET=$(echo "$CRED" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
    AUTH="Basic $(printf '%s:%s' "$ID" "$SECRET" | base64 -w0)"
    for instances in 1 2; do
        [ "$instances" = 2 ] && [ "$db" = sqlite ] && [ -n "${ONE_SQLITE_INSTANCE:-}" ] && continue
        "$TG" serve --policy policies/saas.yaml --database-url "$URL" --addr "127.0.0.1:$PORT_A" > "$WORK/serve.a" 2>&1 &
        PIDS+=($!)
        if [ "$instances" = 2 ]; then
            "$TG" serve --policy policies/saas.yaml --database-url "$URL" --addr "127.0.0.1:$PORT_B" > "$WORK/serve.b" 2>&1 &
            PIDS+=($!)
            wait_up "$PORT_B"
        fi
        wait_up "$PORT_A"
        curl -sf -X POST "http://127.0.0.1:$PORT_A/api/platform/claims" -H "authorization: $AUTH" \
            -H 'content-type: application/json' -d '{"email":"bench@example.com","claims":{"plan":"pro"}}' > /dev/null
        for clients in $CLIENTS; do
            for kind in "claims writes:claims.lua:/api/platform/claims" \
                        "user token mints:tokens.lua:/api/platform/tokens" \
                        "machine token mints:oauth.lua:/oauth/token"; do
                IFS=: read -r name script path <<< "$kind"
                read -r rps p50 p99 errs <<< "$(load "$script" "$path" "$clients" "$instances")"
                echo "$db, $instances instance(s), $clients clients, $name: $rps/s, p50 $p50 ms, p99 $p99 ms, errors $errs"
                ROWS+=("$db|$instances|$clients|$name|$rps|$p50|$p99|$errs")
            done
        done
        for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
        PIDS=()
    done
    for what in writes mint-user mint-machine; do
        F=$("$FLOOR" "$what" "$FLOOR_URL" 64 "$DURATION")
        echo "$db floor, $what, bare from 64 tasks: $F"
        FLOORS+=("$db|$what|$F")
    done
done
FS=$("$FLOOR" sign - 64 "$DURATION")
echo "floor, bare Ed25519 signing on every core: $FS"
FLOORS+=("any|sign|$FS")

# The table, with each row's ratio to its floor from this run.
python3 - "${ROWS[@]}" -- "${FLOORS[@]}" <<'PY'
import json, sys
args = sys.argv[1:]; cut = args.index("--")
rows = [r.split("|") for r in args[:cut]]
floors = {}
for f in args[cut + 1:]:
    db, what, j = f.split("|", 2); floors[(db, what)] = json.loads(j)
floor_of = {"claims writes": "writes", "user token mints": "mint-user", "machine token mints": "mint-machine"}
print("\n| database | instances | clients | operation | per second | ratio to floor | p50 ms | p99 ms | errors |")
print("|---|---|---|---|---|---|---|---|---|")
for db, inst, clients, name, rps, p50, p99, errs in rows:
    floor = floors[(db, floor_of[name])]["per_sec"]
    print(f"| {db} | {inst} | {clients} | {name} | {float(rps):,.0f} | {float(rps) / floor:.2f}× | {p50} | {p99} | {errs} |")
print()
for (db, what), f in sorted(floors.items()):
    label = {"sign": "bare Ed25519 signing alone, every core (reference)",
             "writes": f"{db}: a claims merge's SQL as bare sqlx transactions, 64 tasks",
             "mint-user": f"{db}: a user mint's SQL + Ed25519 signature, bare, 64 tasks",
             "mint-machine": f"{db}: a machine mint's SQL + Ed25519 signature, bare, 64 tasks"}[what]
    print(f"floor — {label}: {f['per_sec']:,.0f}/s (p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms, errors {f['errors']})")
PY
