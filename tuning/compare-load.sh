#!/usr/bin/env bash
# compare-load.sh: the loadgen scenarios of tuning/BENCHMARKS.md against one
# or more builds, alternated run by run so that every build sees the same
# quiet minutes. Prints one markdown row per build, scenario and run.
#
# Each DIR holds a `websocket-app` and a `loadgen` binary (for example
# target/release of this checkout and of an older commit's worktree). The
# server runs with --shards 2 --rate-limit 0 and no byte budget on an
# ephemeral port; loadgen runs 1,000 clients, 1 s warm-up, 5 s measured.
#
# Usage: tuning/compare-load.sh [--runs R] [--scenarios LIST] DIR [DIR...]
#   LIST: comma-separated among direct, echo, broadcast, channels
#         (default direct,echo,broadcast; channels needs a round-2 loadgen:
#         one channel with 1,000 subscribers, 100 publications/s)
# Env: CLIENTS (1000), DURATION (5), WARMUP (1).
# Bounded: each server start waits at most 10 s, each loadgen run is bounded
# by its own duration plus its grace.
set -euo pipefail

RUNS=2
SCENARIOS=direct,echo,broadcast
CLIENTS=${CLIENTS:-1000}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
DIRS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --scenarios) SCENARIOS=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        -*) echo "compare-load: unknown option $1" >&2; exit 2 ;;
        *) DIRS+=("$1"); shift ;;
    esac
done
[ ${#DIRS[@]} -gt 0 ] || { echo "compare-load: give at least one DIR (see --help)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/compare-load.XXXXXX)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/channels.toml" <<'EOF'
[default]
public = true
client_publish = true
EOF

# Starts DIR's server; sets PORT and SERVER_PID.
start_server() {
    local dir=$1 log=$WORK/server.log
    CHANNELS_CONFIG=$WORK/channels.toml RATE_LIMIT_BYTES_PER_SEC=0 RUST_LOG=info \
        "$dir/websocket-app" --host 127.0.0.1 --port 0 --shards 2 --rate-limit 0 >"$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        PORT=$(sed -n 's/.*listening addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
        [ -n "$PORT" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "compare-load: $dir/websocket-app did not start:" >&2
    cat "$log" >&2
    exit 1
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# loadgen arguments of a scenario.
scenario_args() {
    case "$1" in
        direct) echo "--clients $CLIENTS --scenario direct --rate 20000" ;;
        echo) echo "--clients $CLIENTS --scenario echo --rate 10000" ;;
        broadcast) echo "--clients $CLIENTS --scenario broadcast --rate 100" ;;
        channels) echo "--scenario channels --channels 1 --subscribers-per-channel $CLIENTS --rate 100" ;;
        *) echo "compare-load: unknown scenario $1" >&2; exit 2 ;;
    esac
}

echo "| build | scenario | run | sent/s | delivered/s | missing | p50 ms | p99 ms | p99.9 ms |"
echo "|---|---|---|---|---|---|---|---|---|"
for run in $(seq "$RUNS"); do
    for scenario in ${SCENARIOS//,/ }; do
        for dir in "${DIRS[@]}"; do
            if [ "$scenario" = channels ] && ! "$dir/loadgen" run --help | grep -q -- --channels; then
                echo "| $dir | $scenario | $run | (this loadgen has no channels scenario) | | | | | |"
                continue
            fi
            start_server "$dir"
            # shellcheck disable=SC2046
            "$dir/loadgen" run --url "ws://127.0.0.1:$PORT/ws" $(scenario_args "$scenario") \
                --duration "$DURATION" --warmup "$WARMUP" --quiet --json "$WORK/report.json" >/dev/null
            stop_server
            python3 - "$WORK/report.json" "$dir" "$scenario" "$run" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
m, l, rates = r["messages"], r["latency_ms"], r["rates"]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {rates['sent_per_s']:,.0f} | "
      f"{rates['delivered_per_s']:,.0f} | {m['missing']} | {l['p50']:.2f} | {l['p99']:.2f} | {l['p999']:.2f} |")
EOF
        done
    done
done
