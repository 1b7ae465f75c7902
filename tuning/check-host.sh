#!/usr/bin/env bash
# check-host.sh: compare this host with what websocket-app needs for ~1M
# connections (tuning/sysctl.d/90-websocket-app.conf, limits.d, the systemd
# unit, README.md "CPU layout"). Read-only: it changes nothing.
#
# Usage: tuning/check-host.sh [--report|--strict] [--connections N] [--pid PID]
#   --report (default)  one line per setting, OK or WARN, exit 0
#   --strict            same lines, exit 1 if any WARN (for provisioning checks)
#   --connections N     size the memory checks for N connections (default 1000000)
#   --pid PID           also check a running server's limits (else: this shell's)
#
# Output: "<OK|WARN> <setting> = <value> (want <target>)[: what to do]"
set -uo pipefail

MODE=report
CONNS=1000000
PID=
while [ $# -gt 0 ]; do
    case "$1" in
        --report) MODE=report; shift ;;
        --strict) MODE=strict; shift ;;
        --connections) CONNS=${2:?}; shift 2 ;;
        --pid) PID=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "check-host: unknown argument $1" >&2; exit 2 ;;
    esac
done

# Measured by tuning/measure-idle.sh (see tuning/README.md): per connection.
USER_BYTES=${USER_BYTES:-400}      # user space (server RSS growth; measured 180-380 B, BENCHMARKS.md)
KERNEL_BYTES=${KERNEL_BYTES:-4100} # kernel slab per server socket, idle (measured ~4,000 B)

WARNS=0
ok() { printf 'OK   %s\n' "$*"; }
warn() { printf 'WARN %s\n' "$*"; WARNS=$((WARNS + 1)); }

sysctl_val() { # key -> value with tabs squeezed, or empty
    local f="/proc/sys/${1//.//}"
    [ -r "$f" ] && tr -s ' \t' ' ' <"$f" 2>/dev/null
}

# at_least KEY MIN [FIX]: numeric sysctl >= MIN
at_least() {
    local key=$1 min=$2 v
    v=$(sysctl_val "$key")
    if [ -z "$v" ]; then
        warn "$key = (unavailable) (want >= $min): not readable here"
    elif [ "$v" -ge "$min" ] 2>/dev/null; then
        ok "$key = $v (want >= $min)"
    else
        warn "$key = $v (want >= $min): sysctl -w $key=$min (tuning/sysctl.d/90-websocket-app.conf)"
    fi
}
at_most() {
    local key=$1 max=$2 v
    v=$(sysctl_val "$key")
    if [ -z "$v" ]; then
        warn "$key = (unavailable) (want <= $max): not readable here"
    elif [ "$v" -le "$max" ] 2>/dev/null; then
        ok "$key = $v (want <= $max)"
    else
        warn "$key = $v (want <= $max): sysctl -w $key=$max"
    fi
}
equals() {
    local key=$1 want=$2 v
    v=$(sysctl_val "$key")
    if [ -z "$v" ]; then
        warn "$key = (unavailable) (want $want): not readable here"
    elif [ "$v" = "$want" ]; then
        ok "$key = $v (want $want)"
    else
        warn "$key = $v (want $want): sysctl -w $key=$want"
    fi
}

MEM_KB=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
MEM_BYTES=$((MEM_KB * 1024))
NCPU=$(nproc 2>/dev/null || echo 1)
NOFILE_WANT=$((CONNS * 2 > 2097152 ? CONNS * 2 : 2097152))
[ "$NOFILE_WANT" -gt 2097152 ] || NOFILE_WANT=2097152
FILE_MAX_WANT=$((CONNS + CONNS / 10 + 65536))

# --- file descriptors ---------------------------------------------------------
at_least fs.file-max "$FILE_MAX_WANT"
at_least fs.nr_open 2097152

# --- connection setup ---------------------------------------------------------
at_least net.core.somaxconn 4096
at_least net.ipv4.tcp_max_syn_backlog 65536
at_least net.core.netdev_max_backlog 16384
equals net.ipv4.tcp_syncookies 1

# --- ports and closing ----------------------------------------------------------
v=$(sysctl_val net.ipv4.ip_local_port_range)
if [ -n "$v" ]; then
    set -- $v
    if [ $(($2 - $1)) -ge 60000 ]; then ok "net.ipv4.ip_local_port_range = $1 $2 (want >= 60000 ports)"
    else warn "net.ipv4.ip_local_port_range = $1 $2 (want 1024 65535): matters for loadgen hosts and outbound Redis"; fi
else
    warn "net.ipv4.ip_local_port_range = (unavailable) (want 1024 65535)"
fi
equals net.ipv4.tcp_tw_reuse 1
at_most net.ipv4.tcp_fin_timeout 30
at_least net.ipv4.tcp_max_orphans 262144

# --- TCP memory ------------------------------------------------------------------
# tcp_mem (pages): max must cover CONNS sockets with >= 1 page each under load
# (idle sockets hold ~0) and must not exceed ~40% of RAM (user space needs the rest).
v=$(sysctl_val net.ipv4.tcp_mem)
if [ -n "$v" ]; then
    set -- $v
    max_b=$(($3 * 4096))
    if [ "$3" -lt $((CONNS * 3 / 4)) ]; then
        warn "net.ipv4.tcp_mem = $1 $2 $3 (want max >= $((CONNS * 3 / 4)) pages, ~1 per socket under traffic): see 90-websocket-app.conf"
    elif [ "$max_b" -gt $((MEM_BYTES * 2 / 5)) ]; then
        warn "net.ipv4.tcp_mem = $1 $2 $3 (want max <= 40% of RAM = $((MEM_BYTES * 2 / 5 / 4096)) pages): TCP buffers could starve the server"
    else
        ok "net.ipv4.tcp_mem = $1 $2 $3 (want max in $((CONNS * 3 / 4))..$((MEM_BYTES * 2 / 5 / 4096)) pages)"
    fi
else
    warn "net.ipv4.tcp_mem = (unavailable)"
fi
for key in net.ipv4.tcp_rmem net.ipv4.tcp_wmem; do
    v=$(sysctl_val "$key")
    if [ -n "$v" ]; then
        set -- $v
        if [ "$2" -le 16384 ]; then ok "$key = $1 $2 $3 (want default <= 16384)"
        else warn "$key = $1 $2 $3 (want default 4096): a large default buffer per idle socket adds up at 1M"; fi
    else
        warn "$key = (unavailable)"
    fi
done
equals net.ipv4.tcp_slow_start_after_idle 0

# --- conntrack ---------------------------------------------------------------------
if [ -r /proc/sys/net/netfilter/nf_conntrack_max ]; then
    at_least net.netfilter.nf_conntrack_max $((CONNS + CONNS / 4))
else
    ok "net.netfilter.nf_conntrack_max = (conntrack not loaded) (want: not tracked)"
fi

# --- memory maps and memory -----------------------------------------------------------
at_least vm.max_map_count 262144
need=$(( CONNS * (USER_BYTES + KERNEL_BYTES) ))
need_h=$(( need * 3 / 2 + 1024 * 1024 * 1024 ))   # +50% headroom + 1 GiB for the OS
if [ "$MEM_BYTES" -ge "$need_h" ]; then
    ok "memory = $((MEM_KB / 1024)) MiB (want >= $((need_h / 1048576)) MiB for $CONNS idle conns with headroom)"
else
    warn "memory = $((MEM_KB / 1024)) MiB (want >= $((need_h / 1048576)) MiB for $CONNS idle conns with headroom): fewer connections per host or a larger instance"
fi

# --- process limits -------------------------------------------------------------------
if [ -n "$PID" ] && [ -r "/proc/$PID/limits" ]; then
    who="pid $PID"
    nofile=$(awk '/^Max open files/ {print $4}' "/proc/$PID/limits")
    memlock=$(awk '/^Max locked memory/ {print $4}' "/proc/$PID/limits")
else
    who="this shell"
    nofile=$(ulimit -Hn)
    memlock=$(ulimit -Hl)
fi
if [ "$nofile" = unlimited ] || [ "$nofile" -ge "$NOFILE_WANT" ] 2>/dev/null; then
    ok "RLIMIT_NOFILE ($who) = $nofile (want >= $NOFILE_WANT)"
else
    warn "RLIMIT_NOFILE ($who) = $nofile (want >= $NOFILE_WANT): LimitNOFILE=2097152 in the unit or limits.d/websocket-app.conf"
fi
if [ "$memlock" = unlimited ]; then
    ok "RLIMIT_MEMLOCK ($who) = unlimited (want unlimited)"
else
    warn "RLIMIT_MEMLOCK ($who) = $memlock (want unlimited): LimitMEMLOCK=infinity (io_uring rings on kernels < 5.12)"
fi

# --- io_uring ----------------------------------------------------------------------------
v=$(sysctl_val kernel.io_uring_disabled)
if [ -z "$v" ] || [ "$v" = 0 ]; then
    ok "kernel.io_uring_disabled = ${v:-absent} (want 0)"
else
    warn "kernel.io_uring_disabled = $v (want 0): the server falls back to epoll (IO_DRIVER=legacy)"
fi
kver=$(uname -r)
kmaj=${kver%%.*}; rest=${kver#*.}; kmin=${rest%%.*}
if [ "$kmaj" -gt 5 ] || { [ "$kmaj" -eq 5 ] && [ "$kmin" -ge 10 ]; }; then
    ok "kernel = $kver (want >= 5.10 for io_uring PollAdd/accept)"
else
    warn "kernel = $kver (want >= 5.10): io_uring features missing; epoll fallback"
fi

# --- CPU layout --------------------------------------------------------------------------
if [ "$NCPU" -ge 4 ]; then
    want_shards=$((NCPU - 1))
    [ "$NCPU" -ge 16 ] && want_shards=$((NCPU - 2))
else
    want_shards=$NCPU
fi
if systemctl is-active --quiet irqbalance 2>/dev/null; then
    if [ "$NCPU" -ge 4 ]; then
        warn "irqbalance = active (want inactive on >= 4 vCPU): systemctl disable --now irqbalance, pin NIC IRQs to the spare core(s) (README.md)"
    else
        ok "irqbalance = active (fine on $NCPU vCPU: no spare core)"
    fi
else
    ok "irqbalance = inactive or absent (want inactive on >= 4 vCPU)"
fi
ok "cpus = $NCPU (suggest WSS_SHARDS=$want_shards; shards take the first cores of the affinity set)"

if [ "$WARNS" -gt 0 ]; then
    echo "check-host: $WARNS setting(s) off for $CONNS connections"
    [ "$MODE" = strict ] && exit 1
else
    echo "check-host: host ready for $CONNS connections"
fi
exit 0
