#!/usr/bin/env bash
# TLS session resumption through a pass-through VIP, in one run on the same
# topology (scripts/netns.sh: three nginx backends, each terminating TLS on
# :443 with its own session cache and ticket keys):
#   qsplice lb, policy "session-aware"      (server mapping table)
#   qsplice lb, policy "round-robin"        (what a session-blind balancer does)
#   qsplice lb, policy "maglev"             (source-IP hashing: sticky by client,
#                                            not by session)
#   HAProxy 2.6, mode tcp, roundrobin + its documented SSL session-ID
#     stickiness: stick on req.payload_lv(43,1) / stick store-response
#     res.payload_lv(43,1)
#
#   benches/e2e/sessions-vs-haproxy.sh [--sessions N] [--resumes R] [--tls13 N]
#                                      [--load-secs S] [--clients C] [--renew K] [--rounds R]
#
# Workloads (per device):
#  1. sequential resumption ratio: TLS 1.2 session IDs — N sessions made with
#     `openssl s_client -tls1_2 -no_ticket -sess_out`, each resumed R times
#     with `-sess_in`; TLS 1.3 tickets — the Go client (tests/tools/tlsclient),
#     one full handshake then N connections each offering the newest ticket.
#  2. handshake rate under load: the Go client, C concurrent clients for S
#     seconds, each from one of 16 client addresses (so source hashing has
#     something to spread), connect + TLS + GET + close in a loop, starting a
#     new session every K connections (ideal resumption (K-1)/K); TLS 1.3
#     tickets and TLS 1.2 tickets. Printed: handshakes/s, resumed / attempts,
#     and the new-session imbalance (largest backend's deviation from the mean
#     of full handshakes per backend, read from each response's X-Backend).
#     R rounds (default 3), devices interleaved within a round; medians of
#     the rate and imbalance, resumed summed over rounds.
# Bounded: every client call has a timeout.
set -euo pipefail
cd "$(dirname "$0")/../.."

SESSIONS=10
RESUMES=5
TLS13=30
LOAD_SECS=5
CLIENTS=8
RENEW=4
ROUNDS=3
while (($#)); do
    case "$1" in
        --sessions) SESSIONS=$2; shift ;;
        --resumes) RESUMES=$2; shift ;;
        --tls13) TLS13=$2; shift ;;
        --load-secs) LOAD_SECS=$2; shift ;;
        --clients) CLIENTS=$2; shift ;;
        --renew) RENEW=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

. benches/e2e/lib.sh
bench_init qh sess-bench haproxy openssl go
LOCAL_HAPROXY=10.10.2.2
KERNEL_ADDRS=("$LOCAL_HAPROXY")
(cd tests/tools/tlsclient && GOTOOLCHAIN=local GOFLAGS=-mod=mod go build -o "$WORK/tlsclient" .)
CA=$(awk -F= '/^TLS_CA=/{print $2}' "$WORK/netns.env")
SRCS=$(for i in $(seq 100 115); do
    ip netns exec "$CLI_NS" ip addr add "10.10.1.$i/24" dev "$P-cli0" 2>/dev/null || true
    printf '10.10.1.%s,' "$i"
done)
SRCS=${SRCS%,}

start_qsplice() {
    sed -e "s/qs-dut-c\"/$DUT_C\"/" -e "s/qs-dut-b\"/$DUT_B\"/" \
        -e 's/^kind = "http".*/kind = "tcp"/' \
        -e "s/^stats_interval_ms = .*/stats_interval_ms = 1000\nidle_sleep_us = 50/" \
        conf/lb.toml >"$WORK/lb.toml"
    local b
    b=$(for x in "${BACKENDS[@]}"; do echo "    { address = \"$x:443\" },"; done)
    cat >>"$WORK/lb.toml" <<EOF

[[lb.vips]]
name = "sa"
address = "$VIP:443"
policy = "session-aware"
backends = [
$b
]

[[lb.vips]]
name = "rr"
address = "$VIP:8443"
policy = "round-robin"
backends = [
$b
]

[[lb.vips]]
name = "hash"
address = "$VIP:9443"
policy = "maglev"
backends = [
$b
]
EOF
    "$QS" lb --config "$WORK/lb.toml" --stats-json "$WORK/qs.json" >"$WORK/qsplice.out" 2>&1 &
    PIDS+=($!)
    PEER_PID=$!
}

start_haproxy() {
    cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn 8000
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend vip
    bind $VIP:443
    tcp-request inspect-delay 5s
    tcp-request content accept if { req_ssl_hello_type 1 }
    default_backend web
backend web
    balance roundrobin
    source $LOCAL_HAPROXY
    stick-table type binary len 32 size 30k expire 30m
    acl clienthello req_ssl_hello_type 1
    acl serverhello rep_ssl_hello_type 2
    tcp-request inspect-delay 5s
    tcp-request content accept if clienthello
    # without a response inspect delay the ServerHello is examined before
    # it has arrived and nothing is stored (every resumption then sticks
    # to whichever server its first attempt hit)
    tcp-response inspect-delay 5s
    tcp-response content accept if serverhello
    stick on req.payload_lv(43,1) if clienthello
    stick store-response res.payload_lv(43,1) if serverhello
$(for i in "${!BACKENDS[@]}"; do echo "    server b$((i + 1)) ${BACKENDS[$i]}:443"; done)
EOF
    haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
    PIDS+=($!)
    PEER_PID=$!
}

wait_vip() { # port
    for _ in $(seq 1 100); do
        if ip netns exec "$CLI_NS" timeout 3 openssl s_client -connect "$VIP:$1" -CAfile "$CA" \
            -servername vip.test </dev/null >/dev/null 2>&1; then
            sleep 1
            return 0
        fi
        sleep 0.2
    done
    echo "VIP :$1 not answering" >&2
    return 1
}

s_client() { # port sessfile out|in
    echo | ip netns exec "$CLI_NS" timeout 5 openssl s_client -connect "$VIP:$1" -tls1_2 -no_ticket \
        -CAfile "$CA" -servername vip.test "-sess_$3" "$2" 2>/dev/null | grep -E '^(New|Reused),' | cut -d, -f1
}

tls12() { # port -> "resumed attempts"
    local r=0 n=0 s i f
    for s in $(seq 1 "$SESSIONS"); do
        f="$WORK/sess-$1-$s.pem"
        s_client "$1" "$f" out >/dev/null
        sleep 0.25
        for i in $(seq 1 "$RESUMES"); do
            n=$((n + 1))
            [[ $(s_client "$1" "$f" in) == Reused ]] && r=$((r + 1))
        done
    done
    echo "$r $n"
}

tls13() { # port -> "resumed attempts"
    ip netns exec "$CLI_NS" timeout 120 "$WORK/tlsclient" -addr "$VIP:$1" -name vip.test -ca "$CA" -n $((TLS13 + 1)) |
        python3 -c 'import json, sys; rs = [json.loads(l) for l in sys.stdin]; print(sum(1 for r in rs[1:] if r["resumed"]), len(rs) - 1)'
}

load() { # port max-version -> "per_s resumed attempts imbalance%"
    ip netns exec "$CLI_NS" timeout $((LOAD_SECS + 60)) "$WORK/tlsclient" -addr "$VIP:$1" -name vip.test \
        -ca "$CA" -c "$CLIENTS" -d "$LOAD_SECS" -resume -renew "$RENEW" -max-version "$2" -src "$SRCS" |
        python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
new = [r["new_by_backend"].get(b, 0) for b in ("b1", "b2", "b3")]
mean = sum(new) / 3
imb = max(abs(n - mean) for n in new) / mean * 100 if mean else 0
print("%.0f %d %d %.0f %d" % (r["per_s"], r["resumed"], r["attempts"], imb, r["errors"]))'
}

declare -A RES
log "qsplice"
start_qsplice; wait_vip 443; wait_vip 8443; wait_vip 9443
for dev in sa:443 rr:8443 hash:9443; do
    k=${dev%%:*}; port=${dev##*:}
    RES[$k.12]=$(tls12 "$port"); log "$k TLS 1.2 session IDs: ${RES[$k.12]}"
    RES[$k.13]=$(tls13 "$port"); log "$k TLS 1.3 tickets: ${RES[$k.13]}"
done
for r in $(seq 1 "$ROUNDS"); do
    for dev in sa:443 rr:8443 hash:9443; do
        k=${dev%%:*}; port=${dev##*:}
        RES[$k.l13.$r]=$(load "$port" 1.3); log "round $r $k load TLS 1.3 (per_s resumed attempts imbalance% errors): ${RES[$k.l13.$r]}"
        RES[$k.l12.$r]=$(load "$port" 1.2); log "round $r $k load TLS 1.2: ${RES[$k.l12.$r]}"
    done
done
kill -TERM "$PEER_PID"; wait "$PEER_PID" 2>/dev/null || true
python3 - "$WORK/qs.json" <<'PY' >&2 || true
import json, sys
r = json.load(open(sys.argv[1]))["lb"]
print("[sess-bench] qsplice:", {k: v for k, v in r["total"].items() if k.startswith("sa_") and v})
for v in r["vips"]:
    if v["name"] in ("sa", "rr", "hash"):
        print(f"[sess-bench]   {v['name']}: backends opened", [b["opened"] for b in v["backends"]],
              "new", [b.get("tls_new") for b in v["backends"]], v.get("sessions", ""))
print("[sess-bench] session table view:", r.get("session_view"))
PY
ip netns exec "$CLI_NS" ip neigh flush all

log "haproxy"
kernel_on; start_haproxy; wait_vip 443
RES[ha.12]=$(tls12 443); log "haproxy stick TLS 1.2: ${RES[ha.12]}"
RES[ha.13]=$(tls13 443); log "haproxy stick TLS 1.3: ${RES[ha.13]}"
for r in $(seq 1 "$ROUNDS"); do
    RES[ha.l13.$r]=$(load 443 1.3); log "round $r haproxy load TLS 1.3: ${RES[ha.l13.$r]}"
    RES[ha.l12.$r]=$(load 443 1.2); log "round $r haproxy load TLS 1.2: ${RES[ha.l12.$r]}"
done
kill -TERM "$PEER_PID"; wait "$PEER_PID" 2>/dev/null || true
kernel_off

python3 - "$SESSIONS" "$RESUMES" "$TLS13" "$LOAD_SECS" "$CLIENTS" "$RENEW" "$ROUNDS" <<PY
import statistics, sys
s, r, t, secs, c, k, rounds = sys.argv[1:]
res = {}
$(for k in "${!RES[@]}"; do echo "res['$k'] = '${RES[$k]}'"; done)
def pct(k):
    a, n = (int(x) for x in res[k].split()[:2])
    return f"{a}/{n} ({100 * a / n:.0f}%)" if n else "n/a"
def rounds_of(k):
    return [[float(x) for x in v.split()] for key, v in res.items() if key.startswith(k + ".")]
def rate(k):
    return statistics.median(x[0] for x in rounds_of(k))
def load(k):
    rs = rounds_of(k)
    a, n = sum(x[1] for x in rs), sum(x[2] for x in rs)
    ratio = f"{100 * a / n:.0f}%" if n else "n/a"
    return f"{rate(k):.0f}", ratio, f"±{statistics.median(x[3] for x in rs):.0f}%"
devs = [("qsplice session-aware", "sa"), ("qsplice round-robin", "rr"), ("qsplice maglev (source-IP hash)", "hash"),
        ("HAProxy 2.6 stick on session ID", "ha")]
print(f"TLS session resumption through a pass-through VIP (3 backends, own caches/ticket keys)")
print(f"1. sequential: TLS 1.2 {s} sessions x {r} resumptions (one client address); TLS 1.3 {t} ticket resumptions")
print(f"{'device':<34} {'TLS 1.2 session ID':>20} {'TLS 1.3 ticket':>16}")
for name, d in devs:
    print(f"{name:<34} {pct(d + '.12'):>20} {pct(d + '.13'):>16}")
print(f"2. load: {c} Go clients from 16 addresses, {secs} s x {rounds} rounds (medians), new session every {k} connections ({int(k) - 1} of {k} offer a session: resumed = share of those)")
print(f"{'device':<34} {'TLS 1.3 hs/s':>12} {'resumed':>8} {'new-sess imbalance':>18} {'TLS 1.2 hs/s':>12} {'resumed':>8} {'new-sess imbalance':>18}")
for name, d in devs:
    a, b = load(d + '.l13'), load(d + '.l12')
    print(f"{name:<34} {a[0]:>12} {a[1]:>8} {a[2]:>18} {b[0]:>12} {b[1]:>8} {b[2]:>18}")
ratio = lambda x, y: rate(x) / max(1.0, rate(y))
print(f"handshake rate, session-aware / HAProxy: TLS 1.3 {ratio('sa.l13', 'ha.l13'):.2f}x, TLS 1.2 {ratio('sa.l12', 'ha.l12'):.2f}x; "
      f"session-aware / round-robin: TLS 1.3 {ratio('sa.l13', 'rr.l13'):.2f}x, TLS 1.2 {ratio('sa.l12', 'rr.l12'):.2f}x")
print("reproduce: benches/e2e/sessions-vs-haproxy.sh --sessions", s, "--resumes", r, "--tls13", t,
      "--load-secs", secs, "--clients", c, "--renew", k, "--rounds", rounds)
PY
