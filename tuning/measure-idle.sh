#!/usr/bin/env bash
# measure-idle.sh: memory per idle, authenticated, heartbeating connection.
#
# Starts a release websocket-app (2 shards, ephemeral port, heartbeats every
# 2 s so they really flow), warms it up, records its RSS and the kernel's
# socket memory, ramps to N idle connections with `loadgen` (PROCS processes,
# one after the other, N/PROCS each), lets heartbeats flow for SETTLE seconds
# and records again after each process is up. Prints:
#
#   user-space bytes/conn = (VmRSS after - VmRSS before) / N
#   marginal bytes/conn   = (VmRSS at N - VmRSS at N/PROCS*(PROCS-1)) / (N/PROCS)
#   from fresh            = (VmRSS after - VmRSS of the fresh process) / N, an
#                           upper bound: "before" is sampled after the warm-up,
#                           and memory the allocator kept from it makes the
#                           first figure come out low
#   kernel bytes/conn     = delta sockstat TCP mem pages * 4096 / N, and the
#                           delta of the socket slab caches (/proc/slabinfo,
#                           root only) / N and / 2N (loadgen runs on this host,
#                           so both ends of every connection are counted)
#   setup rate            = connections / wall time from start to ESTABLISHED
#
# With --subscriptions K every connection also holds K channel subscriptions
# (loadgen's channels scenario with --rate 0 --hold, over --channels C
# channels per process); the difference of the user-space figure with and
# without them, divided by K, is the memory per subscription.
#
# Why several loadgen processes: each process has its own open-file limit
# (20,000 here), so 19,000 connections take two processes of 9,500.
# The server needs N + ~100 fds: the script raises its soft limit to the hard
# one and refuses to start if that is not enough.
#
# Usage: tuning/measure-idle.sh [-n N] [--procs P] [--rate R] [--settle S]
#                               [--shards K] [--warmup W] [--no-build] [--keep-logs]
#                               [--subscriptions K] [--channels C]
# Env equivalents: N, PROCS, RATE, SETTLE, SHARDS, WARMUP, SUBS, CHANNELS.
# Bounded: every wait has a deadline; the whole run takes < 3 minutes.
set -euo pipefail

N=${N:-19000}
PROCS=${PROCS:-2}
RATE=${RATE:-5000}          # connect rate per loadgen process (conn/s)
SETTLE=${SETTLE:-5}         # seconds of heartbeats before each sample
SHARDS=${SHARDS:-2}
WARMUP=${WARMUP:-500}       # connections opened and closed before the baseline
SUBS=${SUBS:-0}             # channel subscriptions per connection
CHANNELS=${CHANNELS:-1000}  # channels per loadgen process (with SUBS > 0)
BUILD=1
KEEP_LOGS=0
HB_MS=2000
HB_TIMEOUT_MS=10000
DEADLINE_S=170              # hard bound of the whole run

while [ $# -gt 0 ]; do
    case "$1" in
        -n|--connections) N=$2; shift 2 ;;
        --procs) PROCS=$2; shift 2 ;;
        --rate) RATE=$2; shift 2 ;;
        --settle) SETTLE=$2; shift 2 ;;
        --shards) SHARDS=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --subscriptions) SUBS=$2; shift 2 ;;
        --channels) CHANNELS=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --keep-logs) KEEP_LOGS=1; shift ;;
        -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
        *) echo "measure-idle: unknown argument $1" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
T0=$(date +%s)
WORK=$(mktemp -d /tmp/measure-idle.XXXXXX)
PIDS=()

cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && kill -INT "$p" 2>/dev/null || true
    done
    sleep 0.5
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ "$KEEP_LOGS" = 1 ]; then
        echo "logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "measure-idle: $*" >&2; exit 1; }
left() { echo $(( DEADLINE_S - ($(date +%s) - T0) )); }
now_ms() { date +%s%3N; }

# --- build ----------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
    cargo build --release --bins --quiet 2>"$WORK/build.log" \
        || { tail -20 "$WORK/build.log" >&2; die "cargo build --release --bins failed"; }
fi
TARGET_DIR=${CARGO_TARGET_DIR:-target}
SERVER=$TARGET_DIR/release/websocket-app
LOADGEN=$TARGET_DIR/release/loadgen
[ -x "$SERVER" ] && [ -x "$LOADGEN" ] || die "missing $SERVER or $LOADGEN"
T0=$(date +%s)   # the 3-minute bound is for the measurement, not the build

PER=$(( N / PROCS ))
[ $(( PER * PROCS )) -eq "$N" ] || die "N ($N) must be a multiple of PROCS ($PROCS)"
SUBS_PER_CHANNEL=0
if [ "$SUBS" -gt 0 ]; then
    SUBS_PER_CHANNEL=$(( PER * SUBS / CHANNELS ))
    [ $(( SUBS_PER_CHANNEL * CHANNELS )) -eq $(( PER * SUBS )) ] \
        || die "N/PROCS x SUBS ($(( PER * SUBS ))) must be a multiple of CHANNELS ($CHANNELS)"
fi

# --- limits ---------------------------------------------------------------
HARD=$(ulimit -Hn)
if [ "$HARD" != unlimited ]; then ulimit -Sn "$HARD"; fi
SOFT=$(ulimit -Sn)
if [ "$SOFT" != unlimited ] && [ "$SOFT" -lt $(( N + 200 )) ]; then
    die "open-file limit $SOFT < N + 200 = $(( N + 200 )) for the server (raise it or lower -n)"
fi
if [ "$SOFT" != unlimited ] && [ "$SOFT" -lt $(( PER + 100 )) ]; then
    die "open-file limit $SOFT < N/PROCS + 100 for each loadgen process (use more --procs)"
fi

# --- probes ---------------------------------------------------------------
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
anon_kb() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status"; }
tcp_inuse() { awk '/^TCP:/ {print $3}' /proc/net/sockstat; }
tcp_mem_pages() { awk '/^TCP:/ {for (i = 1; i < NF; i++) if ($i == "mem") print $(i + 1)}' /proc/net/sockstat; }
# Bytes held by the slab caches a TCP socket lives in (num_objs * objsize).
SLAB_CACHES='^(TCP|sock_inode_cache|filp|dentry|io_kiocb|eventpoll_epi|eventpoll_pwq|tcp_bind_bucket|tcp_bind2_bucket|skbuff_head_cache|skbuff_small_head)$'
slab_ok() { [ -r /proc/slabinfo ] && head -1 /proc/slabinfo >/dev/null 2>&1; }
slab_dump() { # file: "cache bytes" lines
    if slab_ok; then
        awk -v re="$SLAB_CACHES" 'NR > 2 && $1 ~ re {printf "%s %d\n", $1, $3 * $4}' /proc/slabinfo >"$1"
    else
        : >"$1"
    fi
}
slab_bytes() {
    if slab_ok; then
        awk -v re="$SLAB_CACHES" 'NR > 2 && $1 ~ re {s += $3 * $4} END {printf "%d\n", s}' /proc/slabinfo
    else
        echo -1
    fi
}

sample() { # name pid
    local n=$1 pid=$2
    eval "RSS_$n=$(rss_kb "$pid")"
    eval "ANON_$n=$(anon_kb "$pid")"
    eval "TCPMEM_$n=$(tcp_mem_pages)"
    eval "INUSE_$n=$(tcp_inuse)"
    eval "SLAB_$n=$(slab_bytes)"
    slab_dump "$WORK/slab.$n"
}

# --- server ---------------------------------------------------------------
INUSE_START=$(tcp_inuse)
# Authenticated: HS256 tokens (loadgen mints one per user with the same secret).
export JWT_SECRET=${JWT_SECRET:-measure-idle-secret-0123456789abcdef0123}
# The loadgen's channels live in namespace `lg` (its JWTs grant every channel).
printf '[namespaces.lg]\npublic = true\n' >"$WORK/channels.toml"
export CHANNELS_CONFIG=$WORK/channels.toml
NO_COLOR=1 RUST_LOG=${RUST_LOG:-info} "$SERVER" --port 0 --shards "$SHARDS" \
    --heartbeat-interval-ms "$HB_MS" --heartbeat-timeout-ms "$HB_TIMEOUT_MS" \
    --max-connections $(( N + 1000 )) --dashboard off \
    >"$WORK/server.out" 2>"$WORK/server.err" &
SPID=$!
PIDS+=("$SPID")

ADDR=
for _ in $(seq 1 100); do
    ADDR=$(sed -e 's/\x1b\[[0-9;]*m//g' "$WORK/server.err" \
        | grep -m1 'listening' | grep -oE 'addr=[0-9.]+:[0-9]+' | cut -d= -f2 || true)
    [ -n "$ADDR" ] && break
    kill -0 "$SPID" 2>/dev/null || { cat "$WORK/server.err" >&2; die "server exited"; }
    sleep 0.1
done
[ -n "$ADDR" ] || { cat "$WORK/server.err" >&2; die "no 'listening ... addr=' line in 10 s"; }
URL="ws://$ADDR/ws"
DRIVER=$(sed -e 's/\x1b\[[0-9;]*m//g' "$WORK/server.err" | grep -m1 -oE 'io driver: [a-z_]+' || echo 'io driver: see server log')

# Spread client sockets over 20 loopback source addresses (ephemeral ports are
# per source address). Probe first: older loadgen builds reject the flag.
SRC_ARGS=(--source-addrs 127.0.0.1-127.0.0.20)
set +e
"$LOADGEN" run --url "$URL" --clients 0 "${SRC_ARGS[@]}" >/dev/null 2>&1
[ $? -eq 2 ] || { SRC_ARGS=(); echo "measure-idle: loadgen rejects --source-addrs; using 127.0.0.1 only" >&2; }
set -e

run_loadgen() { # out-prefix clients duration [extra...]
    local out=$1 clients=$2 dur=$3; shift 3
    "$LOADGEN" run --url "$URL" --clients "$clients" \
        --connect-rate "$RATE" "${SRC_ARGS[@]}" \
        --duration "$dur" --grace 0 --quiet "$@" >"$out.out" 2>"$out.err" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

wait_established() { # out-prefix pid expected -> sets EST
    local out=$1 pid=$2 want=$3 line
    EST=
    while [ "$(left)" -gt 0 ]; do
        line=$(grep -m1 '^ESTABLISHED' "$out.out" 2>/dev/null || true)
        if [ -n "$line" ]; then EST=${line#ESTABLISHED }; break; fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$EST" ] || { tail -n 5 "$out.err" "$out.out" >&2; die "loadgen $out: no ESTABLISHED line"; }
    [ "$EST" -eq "$want" ] || echo "measure-idle: WARNING: $out established $EST of $want" >&2
}

wait_subscribed() { # out-prefix pid expected
    local out=$1 pid=$2 want=$3 line got=
    while [ "$(left)" -gt 0 ]; do
        line=$(grep -m1 '^SUBSCRIBED' "$out.out" 2>/dev/null || true)
        if [ -n "$line" ]; then got=${line#SUBSCRIBED }; break; fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$got" ] || { tail -n 5 "$out.err" "$out.out" >&2; die "loadgen $out: no SUBSCRIBED line"; }
    [ "$got" -eq "$want" ] || echo "measure-idle: WARNING: $out subscribed $got of $want" >&2
}

# The fresh process, before any connection: the reference for the upper
# bound below (everything the connections cost, one-time growth included).
sleep 1
sample start "$SPID"

# --- warm-up: exercise the accept/upgrade/heartbeat paths once ---------------
if [ "$WARMUP" -gt 0 ]; then
    run_loadgen "$WORK/warmup" "$WARMUP" 3 --scenario idle --hold
    WPID=$LAST_PID
    wait_established "$WORK/warmup" "$WPID" "$WARMUP"
    wait "$WPID" 2>/dev/null || true
fi
# Let closes finish and the server's allocator return what it frees: a shard
# collects its heap at the second sweep tick without churn (ticks are 1 s
# apart with this heartbeat timeout), so 3 s after the last close. The same
# holds for every sample below (SETTLE >= 3).
for _ in $(seq 1 50); do
    [ "$(tcp_inuse)" -le $(( INUSE_START + 20 )) ] && break
    sleep 0.1
done
sleep 3
sample base "$SPID"

# --- ramp: PROCS loadgen processes, one after the other -----------------------
HOLD_S=$(( $(left) + 10 ))
TOTAL_EST=0
SETUP_MS=0
for i in $(seq 1 "$PROCS"); do
    START=$(now_ms)
    if [ "$SUBS" -gt 0 ]; then
        run_loadgen "$WORK/lg$i" "$PER" "$HOLD_S" --hold --scenario channels --rate 0 \
            --channels "$CHANNELS" --subscribers-per-channel "$SUBS_PER_CHANNEL" \
            --subscriptions-per-connection "$SUBS" --channel-prefix "lg:p$i-"
    else
        run_loadgen "$WORK/lg$i" "$PER" "$HOLD_S" --hold --scenario idle
    fi
    wait_established "$WORK/lg$i" "$LAST_PID" "$PER"
    [ "$SUBS" -gt 0 ] && wait_subscribed "$WORK/lg$i" "$LAST_PID" $(( PER * SUBS ))
    END=$(now_ms)
    eval "SETUP_MS_$i=$(( END - START ))"
    SETUP_MS=$(( SETUP_MS + END - START ))
    TOTAL_EST=$(( TOTAL_EST + EST ))
    sleep "$SETTLE"
    kill -0 "$SPID" 2>/dev/null || die "server died during the ramp"
    sample "s$i" "$SPID"
done

# --- stop loadgens, collect their connect timings ------------------------------
for p in "${PIDS[@]}"; do [ "$p" != "$SPID" ] && kill -INT "$p" 2>/dev/null || true; done
for _ in $(seq 1 50); do
    alive=0
    for p in "${PIDS[@]}"; do [ "$p" != "$SPID" ] && kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
done

# --- report ---------------------------------------------------------------------
eval "RSS_end=\$RSS_s$PROCS ANON_end=\$ANON_s$PROCS TCPMEM_end=\$TCPMEM_s$PROCS SLAB_end=\$SLAB_s$PROCS INUSE_end=\$INUSE_s$PROCS"
PREV=$(( PROCS - 1 ))
if [ "$PREV" -ge 1 ]; then
    eval "RSS_prev=\$RSS_s$PREV"
else
    RSS_prev=$RSS_base
fi
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.0f", a / b }'; }

D_RSS=$(( (RSS_end - RSS_base) * 1024 ))
D_ANON=$(( (ANON_end - ANON_base) * 1024 ))
D_TCPMEM=$(( (TCPMEM_end - TCPMEM_base) * 4096 ))
echo "== websocket-app idle memory ($(date -u +%FT%TZ), $(uname -r), $(nproc) cpus)"
echo "server           $SERVER --port 0 --shards $SHARDS --heartbeat-interval-ms $HB_MS --heartbeat-timeout-ms $HB_TIMEOUT_MS ($DRIVER)"
echo "loadgen          $PROCS processes x $PER idle clients (per-process open-file limit $SOFT), connect-rate $RATE/s each, warm-up $WARMUP"
echo "connections      $TOTAL_EST established of $N (TCP inuse $INUSE_base -> $INUSE_end, both ends on this host)"
printf 'RSS              before %d KiB  after %d KiB  (RssAnon %d -> %d KiB)\n' "$RSS_base" "$RSS_end" "$ANON_base" "$ANON_end"
for i in $(seq 1 "$PROCS"); do
    eval "r=\$RSS_s$i"
    echo "  after process $i  $(( PER * i )) conns  RSS $r KiB"
done
echo "user-space       $(div "$D_RSS" "$N") B/conn  (delta RSS $D_RSS B / $N; RssAnon $(div "$D_ANON" "$N") B/conn)"
if [ "$SUBS" -gt 0 ]; then
    echo "  subscriptions  $SUBS per connection over $(( CHANNELS * PROCS )) channels: $(div "$D_RSS" $(( N * SUBS ))) B/subscription including the connection (subtract a run without --subscriptions, divide by $SUBS)"
fi
echo "  marginal       $(div $(( (RSS_end - RSS_prev) * 1024 )) "$PER") B/conn  (last $PER connections only)"
echo "  from fresh     $(div $(( (RSS_end - RSS_start) * 1024 )) "$N") B/conn  (RSS $RSS_start KiB before the warm-up -> $RSS_end KiB: an upper bound, with the one-time growth of tables and allocator pools)"
echo "kernel sockstat  $(div "$D_TCPMEM" "$N") B/conn  (TCP mem $TCPMEM_base -> $TCPMEM_end pages; both ends)"
if [ "$SLAB_base" -ge 0 ] && [ "$SLAB_end" -ge 0 ]; then
    D_SLAB=$(( SLAB_end - SLAB_base ))
    echo "kernel slab      $(div "$D_SLAB" "$N") B/conn both ends, $(div "$D_SLAB" $(( 2 * N ))) B/socket"
    echo "  per socket     $(awk -v n=$(( 2 * N )) 'NR == FNR {b[$1] = $2; next} {d = $2 - b[$1]; if (d != 0) printf "%s %.0f  ", $1, d / n}' "$WORK/slab.base" "$WORK/slab.s$PROCS")"
    echo "                 (dentry also moves with other work on this host; the server uses io_uring, the loadgen epoll)"
else
    echo "kernel slab      n/a (/proc/slabinfo not readable; sockstat only)"
fi
for i in $(seq 1 "$PROCS"); do
    eval "ms=\$SETUP_MS_$i"
    c=$(grep -m1 '^connect ' "$WORK/lg$i.out" 2>/dev/null | sed 's/^connect *//' || true)
    echo "setup process $i $(div $(( PER * 1000 )) "$ms") conn/s  ($PER in $ms ms, capped by --connect-rate $RATE)${c:+  connect $c}"
done
echo "setup rate       $(div $(( TOTAL_EST * 1000 )) "$SETUP_MS") conn/s overall"
echo "wall time        $(( $(date +%s) - T0 )) s"
