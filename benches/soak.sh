#!/usr/bin/env bash
# Soak test of `qsplice lb` (not in CI): mixed traffic on the network-
# namespace topology for a bounded time, with impairments, then assertions
# on the appliance's health.
#
#   benches/soak.sh [--minutes N] [--report FILE] [--prefix P] [--keep] [--no-build]
#
#   --minutes N    duration of the traffic phase (default 30)
#   --report FILE  also write the summary as markdown to FILE
#   --prefix P     topology prefix (default soak; scripts/netns.sh rules)
#   --keep         keep the work directory (logs, samples, config)
#   --no-build     use target/release/qsplice as it is
#
# Needs root (namespaces, nftables, DPDK net_af_packet), the tools of
# scripts/setup.sh (nginx, curl, openssl, wrk, hping3, nft, jq, python3)
# and optionally Go (tests/tools/tlsclient: resumption, X25519MLKEM768).
#
# Topology: scripts/netns.sh up --prefix P --backends 3 --bigfile 64;
# `qsplice lb --stats-json F --live-json` with three VIPs:
#   10.10.1.1:80    spliced HTTP, round robin           -> nginx :80
#   10.10.1.1:443   TLS terminated (lab ECDSA cert)      -> nginx :80
#   10.10.1.1:8443  TLS pass-through, session-aware      -> nginx :443
#
# Traffic, all the time: curl loops on the spliced and TLS VIPs, wrk bursts
# on the spliced VIP, the Go TLS client (resuming) on the TLS VIP, an
# openssl s_client resumption loop on the session-aware VIP, and 64 MiB
# downloads alternately through the spliced and the TLS VIP, each checked
# against the backend's sha256.
#
# Impairments, scheduled over the run (fractions of it): 1 % random loss
# both ways on the client link (nftables numgen in the client namespace),
# SYN floods (hping3 --flood --rand-source under `timeout`: spoofed
# sources, as real floods are — a flood from the client's own address
# makes the client namespace's kernel answer every SYN-ACK with a RST on
# the same two vCPUs and walks the legitimate clients' own source ports,
# which measures the test rig, not the appliance), nginx of backend b2 killed
# (SIGKILL) and restarted, SIGHUP reloads. Everything started is tracked by
# PID and stopped by PID on exit.
#
# Every 10 s: VmRSS, flows_active / tls_active / flows_connecting /
# syn_cache_active, mbufs in use, drop counters. At the end it asserts:
# the process is alive and exits 0 on SIGTERM, no panic in its log, RSS
# and the table gauges flat (last-quarter median <= 1.10 x second-quarter
# median; gauges with +16 slack and from samples outside the wrk bursts,
# whose thousands of lingering connections are a spike, not a trend), the
# tables drain once traffic stops,
# every completed download matched its sha256 (0 corrupted bytes), failed
# requests <= 1 % during impairments and <= 0.5 % otherwise.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

MINUTES=30
REPORT=
P=soak
KEEP=0
BUILD=1
while (($#)); do
    case $1 in
        --minutes) MINUTES=${2:?}; shift ;;
        --report) REPORT=${2:?}; shift ;;
        --prefix) P=${2:?}; shift ;;
        --keep) KEEP=1 ;;
        --no-build) BUILD=0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "soak: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[[ $MINUTES =~ ^[0-9]+$ ]] && ((MINUTES >= 1 && MINUTES <= 1440)) ||
    { echo "soak: --minutes must be 1..1440" >&2; exit 2; }
((EUID == 0)) || { echo "soak: must run as root" >&2; exit 1; }
for t in curl openssl wrk hping3 nft jq python3 sha256sum; do
    command -v "$t" >/dev/null || { echo "soak: missing $t (scripts/setup.sh)" >&2; exit 1; }
done
if [[ -n $REPORT ]]; then
    REPORT=$(realpath -m -- "$REPORT")
fi

log() { printf '[soak %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

VIP=10.10.1.1
QS=$REPO_ROOT/target/release/qsplice
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
WORK=$(mktemp -d /tmp/qsplice-soak-XXXX)
PIDS=()       # background jobs (workloads, floods), stopped by PID
QS_PID=
TOPO_UP=0
KILLED_BACKEND=0

# --- cleanup ------------------------------------------------------------------
stop_pid() { # stop_pid PID [GRACE_S]: TERM (children first), then KILL
    local pid=$1 grace=${2:-5} c i
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    for c in $(ps -o pid= --ppid "$pid" 2>/dev/null); do kill -TERM "$c" 2>/dev/null || true; done
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    for c in $(ps -o pid= --ppid "$pid" 2>/dev/null); do kill -KILL "$c" 2>/dev/null || true; done
    kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$? pid
    set +e
    for pid in "${PIDS[@]}"; do stop_pid "$pid" 2; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    [[ -n $QS_PID ]] && stop_pid "$QS_PID" 10
    if ((TOPO_UP)); then
        ip netns exec "$P-client" nft delete table inet qsoak 2>/dev/null
        scripts/netns.sh down --prefix "$P" >/dev/null 2>&1
    fi
    if ((KEEP)); then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build, topology, certificates, config --------------------------------
if ((BUILD)); then
    log "building target/release/qsplice"
    cargo build --release --bin qsplice >&2
fi
[[ -x $QS ]] || { echo "soak: $QS missing (drop --no-build)" >&2; exit 1; }

log "topology: scripts/netns.sh up --prefix $P --backends 3 --bigfile 64"
TOPO_UP=1
scripts/netns.sh up --prefix "$P" --backends 3 --bigfile 64 >"$WORK/netns.env"
while IFS='=' read -r k v; do
    [[ $k =~ ^[A-Z][A-Z0-9_]*$ ]] && printf -v "N_$k" '%s' "$v"
done <"$WORK/netns.env"
CLI_NS=$N_CLIENT_NS
STATE_DIR=$N_STATE_DIR
BIG_SHA=$(awk '$2 == "big.bin" || $2 == "*big.bin" { print $1 }' "$N_SHA256SUMS")
[[ -n $BIG_SHA ]] || { echo "soak: no big.bin in $N_SHA256SUMS" >&2; exit 1; }
ip netns exec "$CLI_NS" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"

"$QS" tls-cert --out "$WORK/certs" --name vip.test --alg ecdsa-p256 >/dev/null
CA=$WORK/certs/ca.pem

backends() { # backends PORT: the pool's TOML lines
    local b
    for b in $N_BACKENDS; do printf '    { address = "%s:%s" },\n' "$b" "$1"; done
}
CONF=$WORK/soak.toml
cat >"$CONF" <<EOF
# generated by benches/soak.sh
[eal]
main_lcore = 0
worker_lcores = [1]
memory_mb = 512
hugepages = "off"
file_prefix = "qs-soak-$$"
log_level = "warning"

[mempool]
mbufs = 16383
cache = 128

[engine]
stats_interval_ms = 1000
idle_sleep_us = 20

[management]
listen = "127.0.0.1:0"   # any free port: a soak may run beside other appliances

[arp]
probe_interval_ms = 200
max_probes = 5

[[ports]]
name = "client"
device = "net_af_packet0,iface=$N_DUT_CLIENT_IF"
addresses = ["10.10.1.1/24"]

[[ports]]
name = "backend"
device = "net_af_packet1,iface=$N_DUT_BACKEND_IF"
addresses = ["10.10.2.1/24"]
neighbors = [$(printf '"%s", ' $N_BACKENDS | sed 's/, $//')]

[lb]
client_port = "client"
backend_port = "backend"
idle_timeout_s = 30

[lb.health]
kind = "tcp"
interval_ms = 1000
timeout_ms = 500

[[lb.vips]]
name = "web"
address = "10.10.1.1:80"
policy = "round-robin"
backends = [
$(backends 80)
]

[[lb.vips]]
name = "web-tls"
address = "10.10.1.1:443"
tls = "terminate"
backends = [
$(backends 80)
]

[lb.vips.tls_options]
certificates = [
    { cert = "$WORK/certs/ecdsa-p256.pem", key = "$WORK/certs/ecdsa-p256.key", names = ["vip.test"] },
]
handshake_timeout_ms = 10000

[[lb.vips]]
name = "sa"
address = "10.10.1.1:8443"
policy = "session-aware"
backends = [
$(backends 443)
]
EOF
"$QS" check-config "$CONF" >/dev/null

# --- the appliance ------------------------------------------------------------
STATS=$WORK/stats.json
log "starting qsplice lb"
"$QS" lb --config "$CONF" --stats-json "$STATS" --live-json >"$WORK/qsplice.log" 2>&1 &
QS_PID=$!
healthy() {
    jq -e '[.lb.vips[].backends[].healthy] | all' "$STATS" >/dev/null 2>&1
}
for ((i = 0; i < 300; i++)); do
    healthy && break
    kill -0 "$QS_PID" 2>/dev/null || { cat "$WORK/qsplice.log" >&2; echo "soak: qsplice exited at start" >&2; exit 1; }
    sleep 0.1
done
healthy || { tail -n 30 "$WORK/qsplice.log" >&2; echo "soak: backends never healthy" >&2; exit 1; }

TLSCLIENT=
if command -v go >/dev/null; then
    if (cd tests/tools/tlsclient && GOTOOLCHAIN=local GOFLAGS=-mod=mod go build -o "$WORK/tlsclient" .) >"$WORK/go-build.log" 2>&1; then
        TLSCLIENT=$WORK/tlsclient
    else
        log "Go TLS client did not build (see --keep and go-build.log); skipping it"
    fi
fi

# --- schedule -------------------------------------------------------------------
T=$((MINUTES * 60))
START=$(date +%s)
END=$((START + T))
export END
at() { awk -v t="$T" -v f="$1" 'BEGIN { printf "%d", t * f }'; }
FLOOD_S=$(((T / 20) < 5 ? 5 : ((T / 20) > 20 ? 20 : T / 20)))
DOWN_S=$(((T / 12) > 30 ? 30 : T / 12))
EVENTS=() # "second action"
EVENTS+=("$(at 0.20) loss_on" "$(at 0.35) loss_off" "$(at 0.62) loss_on" "$(at 0.77) loss_off")
EVENTS+=("$(at 0.42) flood_80" "$(at 0.88) flood_443")
for f in 0.15 0.32 0.50 0.68 0.85; do
    EVENTS+=("$(at $f) kill_b2" "$(($(at $f) + DOWN_S)) start_b2")
done
for f in 0.10 0.27 0.45 0.60 0.80 0.95; do EVENTS+=("$(at $f) hup"); done
mapfile -t EVENTS < <(printf '%s\n' "${EVENTS[@]}" | sort -n)
: >"$WORK/events.tsv" # start end kind: impaired windows

# --- workloads (each appends "epoch kind result [detail]" lines) --------------
R=$WORK/results
mkdir -p "$R"
cx() { ip netns exec "$CLI_NS" "$@"; }

# One request per connection; a failure line carries the HTTP status and
# curl's exit code (7: refused, 28: timeout, 35: TLS, 52: empty, 56: reset).
http_loop() {
    local code rc
    while (($(date +%s) < END)); do
        rc=0
        code=$(cx curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$VIP/" 2>/dev/null) || rc=$?
        [[ $code == 200 ]] && echo "$(date +%s) http ok" || echo "$(date +%s) http fail status=$code curl_rc=$rc"
        sleep 0.05
    done >>"$R/http.log"
}
tls_loop() {
    local code rc
    while (($(date +%s) < END)); do
        rc=0
        code=$(cx curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$CA" \
            --resolve "vip.test:443:$VIP" https://vip.test/ 2>/dev/null) || rc=$?
        [[ $code == 200 ]] && echo "$(date +%s) tls ok" || echo "$(date +%s) tls fail status=$code curl_rc=$rc"
        sleep 0.05
    done >>"$R/tls.log"
}
go_loop() {
    local line
    while (($(date +%s) < END)); do
        cx timeout 60 "$TLSCLIENT" -addr "$VIP:443" -name vip.test -ca "$CA" -n 5 2>/dev/null |
            while read -r line; do
                if jq -e '.error == null and .status == 200' <<<"$line" >/dev/null 2>&1; then
                    echo "$(date +%s) go ok $(jq -r 'if .resumed then "resumed" else "new" end + " " + .group' <<<"$line")"
                else
                    echo "$(date +%s) go fail $(jq -r '.error // .status' <<<"$line" | tr ' ' '_')"
                fi
            done
        sleep 0.2
    done >>"$R/go.log"
}
sa_loop() {
    local i sess=$WORK/sa-sess.pem out
    while (($(date +%s) < END)); do
        for i in 0 1 2 3 4; do
            if ((i == 0)); then
                out=$(echo | cx timeout 15 openssl s_client -connect "$VIP:8443" -tls1_2 -no_ticket \
                    -CAfile "$N_TLS_CA" -servername vip.test -sess_out "$sess" 2>/dev/null) || true
            else
                out=$(echo | cx timeout 15 openssl s_client -connect "$VIP:8443" -tls1_2 -no_ticket \
                    -CAfile "$N_TLS_CA" -servername vip.test -sess_in "$sess" 2>/dev/null) || true
            fi
            if grep -q '^Reused, TLSv1.2' <<<"$out"; then
                echo "$(date +%s) sa ok resumed"
            elif grep -q '^New, TLSv1.2' <<<"$out"; then
                echo "$(date +%s) sa ok new"
            else
                echo "$(date +%s) sa fail"
                break
            fi
        done
        sleep 0.2
    done >>"$R/sa.log"
}
wrk_loop() {
    local out reqs errs non2xx t0 kinds
    while (($(date +%s) + 10 < END)); do
        touch "$WORK/wrk.running"
        t0=$(date +%s)
        out=$(cx wrk -t1 -c16 -d8s -H 'Connection: close' "http://$VIP/" 2>&1) || true
        sleep 3 # its closed flows linger (lb.linger_ms, 2 s)
        rm -f "$WORK/wrk.running"
        reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<<"$out")
        kinds=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' <<<"$out")
        errs=$(awk '{ print $1 + $2 + $3 + $4 }' <<<"${kinds:-0 0 0 0}")
        non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' <<<"$out")
        # start time first (the phase is judged over the whole batch), then
        # the end, and connect/read/write/timeout/non-2xx for the record
        echo "$t0 wrk batch ${reqs:-0} $((${errs:-0} + ${non2xx:-0})) $(date +%s) ${kinds:-0 0 0 0} ${non2xx:-0}"
        sleep 17
    done >>"$R/wrk.log"
}
big_loop() {
    local n=0 url kind rc sum
    while (($(date +%s) + 30 < END)); do
        if ((n % 2 == 0)); then
            kind=big_splice
            url=(--url "http://$VIP/big.bin")
        else
            kind=big_tls
            url=(--cacert "$CA" --resolve "vip.test:443:$VIP" --url https://vip.test/big.bin)
        fi
        n=$((n + 1))
        rc=0
        cx curl -sS --fail --max-time 240 -o "$WORK/dl.bin" "${url[@]}" 2>>"$WORK/big-curl.err" || rc=$?
        if ((rc != 0)); then
            echo "$(date +%s) $kind fail curl_rc=$rc"
        else
            sum=$(sha256sum <"$WORK/dl.bin" | cut -c1-64)
            if [[ $sum == "$BIG_SHA" ]]; then
                echo "$(date +%s) $kind ok $(stat -c %s "$WORK/dl.bin")"
            else
                echo "$(date +%s) $kind CORRUPT $(stat -c %s "$WORK/dl.bin") $sum"
            fi
        fi
        rm -f "$WORK/dl.bin"
        sleep 1
    done >>"$R/big.log"
}

log "traffic for $MINUTES min (loss, SYN floods, backend kills, SIGHUP scheduled)"
http_loop & PIDS+=($!)
tls_loop & PIDS+=($!)
sa_loop & PIDS+=($!)
wrk_loop & PIDS+=($!)
big_loop & PIDS+=($!)
[[ -n $TLSCLIENT ]] && { go_loop & PIDS+=($!); }

# --- controller + sampler ------------------------------------------------------
SAMPLES=$WORK/samples.tsv
echo -e "t\twrk\trss_kb\tflows_active\ttls_active\tflows_connecting\tsyn_cache_active\tmbuf_in_use\tdrops\ttls_failed\tconn_refused" >"$SAMPLES"
sample() {
    local t rss vals wrk=0
    t=$(($(date +%s) - START))
    [[ -e $WORK/wrk.running ]] && wrk=1
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$QS_PID/status" 2>/dev/null || echo NA)
    vals=$(jq -r '[.lb.total.flows_active, .lb.total.tls_active, .lb.total.flows_connecting,
                   .lb.total.syn_cache_active,
                   ([.mempools[] | .[2] - .[1]] | add),
                   (([.total | to_entries[] | select(.key | startswith("drop_")) | .value] | add // 0)
                    + ([.lb.total | to_entries[] | select(.key | startswith("drop_")) | .value] | add // 0)),
                   .lb.total.tls_failed, .lb.total.conn_refused] | map(tostring) | join("\t")' "$STATS" 2>/dev/null) ||
        vals=$'NA\tNA\tNA\tNA\tNA\tNA\tNA\tNA'
    echo -e "$t\t$wrk\t$rss\t$vals" >>"$SAMPLES"
}
impaired() { echo "$1 $2 $3" >>"$WORK/events.tsv"; }
run_event() {
    local now=$1 what=$2 dir pid c
    case $what in
        loss_on)
            printf '%s\n' "add table inet qsoak" \
                "add chain inet qsoak in { type filter hook input priority 0 ; }" \
                "add chain inet qsoak out { type filter hook output priority 0 ; }" \
                "add rule inet qsoak in meta l4proto tcp numgen random mod 100 < 1 drop" \
                "add rule inet qsoak out meta l4proto tcp numgen random mod 100 < 1 drop" |
                ip netns exec "$CLI_NS" nft -f -
            LOSS_SINCE=$now ;;
        loss_off)
            ip netns exec "$CLI_NS" nft delete table inet qsoak 2>/dev/null || true
            impaired "$LOSS_SINCE" "$((now + 5))" loss ;;
        flood_80 | flood_443)
            timeout "$FLOOD_S" ip netns exec "$CLI_NS" hping3 --flood --rand-source -q -S -p "${what#flood_}" "$VIP" \
                >/dev/null 2>&1 &
            PIDS+=($!)
            impaired "$now" "$((now + FLOOD_S + 5))" "$what" ;;
        kill_b2)
            dir=$STATE_DIR/b2
            pid=$(tr -dc '0-9' <"$dir/nginx.pid" 2>/dev/null || true)
            if [[ -n $pid ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == nginx ]]; then
                # The master first: killed after its workers, it respawned
                # one in between, which outlived it holding the listening
                # sockets, and every restart failed (a backend down for the
                # rest of the run). Then every process left in b2's namespace.
                kill -KILL "$pid" 2>/dev/null || true
                for c in $(ip netns pids "$P-b2" 2>/dev/null); do
                    [[ $(cat "/proc/$c/comm" 2>/dev/null) == nginx ]] && kill -KILL "$c" 2>/dev/null
                done
                KILLED_BACKEND=$((KILLED_BACKEND + 1))
                KILL_SINCE=$now
            fi ;;
        start_b2)
            dir=$STATE_DIR/b2
            ip netns exec "$P-b2" "$NGINX" -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" ||
                log "restarting nginx b2 failed"
            impaired "${KILL_SINCE:-$now}" "$((now + 5))" kill_b2 ;;
        hup)
            kill -HUP "$QS_PID" ;;
    esac
    echo "$((now - START)) $what" >>"$WORK/events.log"
}
next_sample=$START
ei=0
while :; do
    now=$(date +%s)
    ((now < END)) || break
    while ((ei < ${#EVENTS[@]})); do
        read -r sec what <<<"${EVENTS[ei]}"
        ((START + sec <= now)) || break
        run_event "$now" "$what"
        ei=$((ei + 1))
    done
    if ((now >= next_sample)); then
        sample
        next_sample=$((next_sample + 10))
    fi
    kill -0 "$QS_PID" 2>/dev/null || { log "qsplice died"; break; }
    sleep 1
done
# Leftover impairments end with the traffic phase.
now=$(date +%s)
if ip netns exec "$CLI_NS" nft list table inet qsoak >/dev/null 2>&1; then run_event "$now" loss_off; fi
if ! [[ -s $STATE_DIR/b2/nginx.pid ]] || ! kill -0 "$(tr -dc '0-9' <"$STATE_DIR/b2/nginx.pid")" 2>/dev/null; then
    run_event "$now" start_b2
fi

log "traffic phase over; waiting for the workloads"
for pid in "${PIDS[@]}"; do
    for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    stop_pid "$pid" 2
    wait "$pid" 2>/dev/null || true
done
PIDS=()

# Tables drain once traffic stops (idle timeout 30 s, TLS handshake 10 s,
# SYN cache 10 s).
DRAINED=no
for ((i = 0; i < 60; i++)); do
    if jq -e '.lb.total | .flows_active == 0 and .tls_active == 0 and .flows_connecting == 0 and .syn_cache_active == 0' \
        "$STATS" >/dev/null 2>&1; then
        DRAINED=yes
        break
    fi
    sleep 1
done
sample
DRAIN_STATE=$(jq -r '.lb.total | "flows_active=\(.flows_active) tls_active=\(.tls_active) flows_connecting=\(.flows_connecting) syn_cache_active=\(.syn_cache_active)"' "$STATS" 2>/dev/null || echo "?")
cp "$STATS" "$WORK/stats-final.json" 2>/dev/null || true

ALIVE=no
kill -0 "$QS_PID" 2>/dev/null && ALIVE=yes
EXIT=none
if [[ $ALIVE == yes ]]; then
    kill -TERM "$QS_PID"
    for ((i = 0; i < 300; i++)); do kill -0 "$QS_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$QS_PID" 2>/dev/null; then
        EXIT="still running 30 s after SIGTERM"
        kill -KILL "$QS_PID" 2>/dev/null || true
    fi
fi
rc=0
wait "$QS_PID" 2>/dev/null || rc=$?
[[ $EXIT == none ]] && EXIT=$rc
QS_PID=
PANICS=$(grep -ciE 'panicked|panic:|RUST_BACKTRACE' "$WORK/qsplice.log" || true)

# --- summary ----------------------------------------------------------------------
cat "$R"/*.log >"$WORK/results.all"
set +e
python3 - "$WORK" "$MINUTES" "$ALIVE" "$EXIT" "$PANICS" "$DRAINED" "$DRAIN_STATE" "$KILLED_BACKEND" "${REPORT:-}" "$START" <<'PY'
import statistics, sys
work, minutes, alive, exitc, panics, drained, drain_state, kills, report, start = sys.argv[1:11]
start = int(start)
windows = []
for line in open(f"{work}/events.tsv"):
    a, b, k = line.split()
    windows.append((int(a), int(b), k))
def phase(t):
    return "impaired" if any(a <= t <= b for a, b, _ in windows) else "calm"
cnt = {}   # (kind, phase) -> [ok, fail]
corrupt, big_ok_bytes, resumed, newsess, go_res, go_new, groups = 0, 0, 0, 0, 0, 0, {}
for line in open(f"{work}/results.all"):
    f = line.split()
    if len(f) < 3:
        continue
    t, kind, res = int(f[0]), f[1], f[2]
    ph = phase(t)
    if kind == "wrk":
        reqs, errs = int(f[3]), int(f[4])
        # a batch overlapping an impairment window is impaired
        if len(f) > 5 and any(a <= int(f[5]) and t <= b for a, b, _ in windows):
            ph = "impaired"
        c = cnt.setdefault((kind, ph), [0, 0])
        c[0] += max(reqs - errs, 0); c[1] += errs
        continue
    c = cnt.setdefault((kind, ph), [0, 0])
    if res == "ok":
        c[0] += 1
        if kind.startswith("big_"):
            big_ok_bytes += int(f[3])
        if kind == "sa":
            resumed += f[3] == "resumed"; newsess += f[3] == "new"
        if kind == "go":
            go_res += f[3] == "resumed"; go_new += f[3] == "new"
            if len(f) > 4:
                groups[f[4]] = groups.get(f[4], 0) + 1
    elif res == "CORRUPT":
        corrupt += 1; c[1] += 1
    else:
        c[1] += 1
rows = []
S = [l.rstrip("\n").split("\t") for l in open(f"{work}/samples.tsv")]
hdr, S = S[0], [s for s in S[1:] if "NA" not in s]
col = {h: i for i, h in enumerate(hdr)}
def series(name, steady):
    # steady: leave out samples taken during a wrk burst (thousands of
    # short connections lingering at once: a load spike, not a trend).
    return [(int(s[0]), float(s[col[name]])) for s in S if not (steady and s[col["wrk"]] == "1")]
T = int(minutes) * 60
def quarter_median(name, q, steady):
    v = [x for t, x in series(name, steady) if q * T / 4 <= t < (q + 1) * T / 4]
    return statistics.median(v) if v else None
checks = []
def check(name, ok, detail):
    checks.append((name, "PASS" if ok else "FAIL", detail))
check("process alive at the end", alive == "yes", alive)
check("clean exit on SIGTERM", exitc == "0", f"exit status {exitc}")
check("no panic in the log", panics == "0", f"{panics} panic lines")
for name, slack in (("rss_kb", 0), ("flows_active", 16), ("tls_active", 16), ("flows_connecting", 16), ("mbuf_in_use", 64)):
    steady = name != "rss_kb"
    q2, q4 = quarter_median(name, 1, steady), quarter_median(name, 3, steady)
    if q2 is None or q4 is None:
        check(f"{name} flat", False, "not enough samples")
        continue
    ok = q4 <= q2 * 1.10 + slack
    what = " (samples outside wrk bursts)" if steady else ""
    check(f"{name} flat (Q4 median <= 1.10 x Q2 median{' + %d' % slack if slack else ''}){what}", ok, f"Q2 {q2:.0f}, Q4 {q4:.0f}")
check("tables drained after traffic", drained == "yes", drain_state)
big = {k: v for k, v in cnt.items() if k[0].startswith("big_")}
big_n = sum(v[0] + v[1] for v in big.values())
check("every download's sha256 matched (0 corrupted)", corrupt == 0 and big_n > 0,
      f"{sum(v[0] for v in big.values())} ok, {corrupt} corrupt, {sum(v[1] for v in big.values()) - corrupt} failed transfers, {big_ok_bytes / 2**20:.0f} MiB verified")
for ph, budget in (("impaired", 1.0), ("calm", 0.5)):
    ok = sum(v[0] for k, v in cnt.items() if k[1] == ph)
    bad = sum(v[1] for k, v in cnt.items() if k[1] == ph)
    rate = 100.0 * bad / max(ok + bad, 1)
    check(f"failed requests while {ph} <= {budget} %", rate <= budget, f"{bad} / {ok + bad} = {rate:.3f} %")
lines = []
lines.append(f"## qsplice soak: {minutes} min")
lines.append("")
lines.append("| check | result | detail |")
lines.append("|---|---|---|")
for n, r, d in checks:
    lines.append(f"| {n} | {r} | {d} |")
lines.append("")
lines.append("| workload | calm ok / fail | impaired ok / fail |")
lines.append("|---|---:|---:|")
for kind in sorted({k for k, _ in cnt}):
    c = cnt.get((kind, "calm"), [0, 0]); i = cnt.get((kind, "impaired"), [0, 0])
    lines.append(f"| {kind} | {c[0]} / {c[1]} | {i[0]} / {i[1]} |")
lines.append("")
sa_n = resumed + newsess
lines.append(f"Session-aware pass-through (openssl, TLS 1.2 session IDs): {resumed} resumed / {sa_n} handshakes"
             + (f" ({100.0 * resumed / sa_n:.1f} %)" if sa_n else ""))
if go_res + go_new:
    lines.append(f"TLS-terminated, Go client: {go_res} resumed / {go_res + go_new}; groups {groups}")
lines.append(f"Impairments: {len(windows)} windows ({', '.join(sorted({k for _, _, k in windows}))}), backend b2 killed {kills} times")
if S:
    last = S[-1]
    lines.append(f"RSS: first {S[0][col['rss_kb']]} kB, max {max(float(s[col['rss_kb']]) for s in S):.0f} kB, last {last[col['rss_kb']]} kB; "
                 f"drops (all drop_* counters) at the end: {last[col['drops']]}; samples: {len(S)}")
text = "\n".join(lines) + "\n"
print(text)
if report:
    open(report, "w").write(text)
sys.exit(0 if all(r == "PASS" for _, r, _ in checks) else 1)
PY
result=$?
set -e
if ((result != 0)); then
    log "soak FAILED (see above; --keep keeps $WORK)"
    exit 1
fi
log "soak passed"
