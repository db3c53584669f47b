#!/usr/bin/env bash
# TLS termination through the VIP: qsplice lb (`tls = "terminate"`, hybrid
# X25519MLKEM768) vs HAProxy 2.6 and nginx 1.22 (both OpenSSL 3.0, which
# negotiates classical X25519 with the same client) as the device between
# the client namespace and three plaintext nginx backends, same topology
# (scripts/netns.sh), one run.
#
#   benches/e2e/tls-vs-peers.sh [--seconds N] [--rounds R] [--conns C] [--workers W] [--idle-sleep-us U]
#
# Load: tests/tools/tlsclient (Go crypto/tls; offers X25519MLKEM768 and
# X25519 key shares, like Chromium), C concurrent clients for N seconds,
# each looping TLS connect + `GET /` + close:
#   full/s     every connection a full handshake (no session cache)
#   resumed/s  TLS 1.3 ticket resumption after each client's first handshake
# with p50/p99 of connect+request, connections per CPU-second of the device
# process (/proc utime+stime: the client shares the machine, so throughput
# alone can be the client's limit), and the ratio qsplice/device. ECDSA P-256
# certificate everywhere. The devices take turns on the same veths (see
# lb-vs-peers.sh for the address plan). Bounded: every load runs N seconds.
set -euo pipefail
cd "$(dirname "$0")/../.."

SECS=10
ROUNDS=3
CONNS=32
WORKERS=1
IDLE_SLEEP_US=50
while (($#)); do
    case "$1" in
        --seconds) SECS=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --conns) CONNS=$2; shift ;;
        --workers) WORKERS=$2; shift ;;
        --idle-sleep-us) IDLE_SLEEP_US=$2; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

. benches/e2e/lib.sh
bench_init qt tls-bench haproxy nginx go
LOCAL_HAPROXY=10.10.2.2
LOCAL_NGINX=10.10.2.3
KERNEL_ADDRS=("$LOCAL_HAPROXY" "$LOCAL_NGINX")
(cd tests/tools/tlsclient && GOTOOLCHAIN=local GOFLAGS=-mod=mod go build -o "$WORK/tlsclient" .)
"$QS" tls-cert --out "$WORK/certs" --name vip.test --alg ecdsa-p256 >/dev/null
cat "$WORK/certs/ecdsa-p256.pem" "$WORK/certs/ecdsa-p256.key" >"$WORK/certs/combined.pem"

start_haproxy() {
    cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn 8000
    nbthread $WORKERS
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend vip
    bind $VIP:443 ssl crt $WORK/certs/combined.pem curves X25519:P-256
    default_backend web
backend web
    balance roundrobin
    source $LOCAL_HAPROXY
$(for i in "${!BACKENDS[@]}"; do echo "    server b$((i + 1)) ${BACKENDS[$i]}:80"; done)
EOF
    haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
    PIDS+=($!)
    PEER_PID=$!
}

start_nginx() {
    mkdir -p "$WORK/nginx"
    cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes $WORKERS;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    upstream web {
$(for b in "${BACKENDS[@]}"; do echo "        server $b:80;"; done)
    }
    server {
        listen $VIP:443 ssl;
        ssl_certificate $WORK/certs/ecdsa-p256.pem;
        ssl_certificate_key $WORK/certs/ecdsa-p256.key;
        ssl_ecdh_curve X25519:prime256v1;
        ssl_session_cache shared:S:10m;
        ssl_session_tickets on;
        location / {
            proxy_pass http://web;
            proxy_bind $LOCAL_NGINX;
        }
    }
}
EOF
    nginx -c "$WORK/nginx/nginx.conf" >"$WORK/nginx/out.log" 2>&1 &
    PIDS+=($!)
    PEER_PID=$!
}

start_qsplice() {
    local lcores="[1]" map="" q=""
    if ((WORKERS > 1)); then
        lcores="[$(seq -s, 1 "$WORKERS")]"
        q=",qpairs=$WORKERS"
        local n; n=$(nproc)
        map="lcore_map = \"$(for i in $(seq 0 "$WORKERS"); do printf '%s%d@%d' "${i:+,}" "$i" $((i % n)); done | sed 's/^,//')\""
    fi
    sed -e "s/qs-dut-c\"/$DUT_C$q\"/" -e "s/qs-dut-b\"/$DUT_B$q\"/" \
        -e "s/^worker_lcores = .*/worker_lcores = $lcores\n$map/" \
        -e "s/^mbufs = .*/mbufs = 32767/" \
        -e "s/^memory_mb = .*/memory_mb = 1024/" \
        -e "s/^stats_interval_ms = .*/stats_interval_ms = 1000\nidle_sleep_us = $IDLE_SLEEP_US/" \
        conf/lb.toml >"$WORK/lb.toml"
    cat >>"$WORK/lb.toml" <<EOF

[[lb.vips]]
name = "tls"
address = "$VIP:443"
tls = "terminate"
backends = [
$(for b in "${BACKENDS[@]}"; do echo "    { address = \"$b:80\" },"; done)
]
[lb.vips.tls_options]
certificates = [{ cert = "$WORK/certs/ecdsa-p256.pem", key = "$WORK/certs/ecdsa-p256.key" }]
EOF
    "$QS" lb --config "$WORK/lb.toml" --stats-json "$WORK/qs.json" >"$WORK/qsplice.out" 2>&1 &
    PIDS+=($!)
    PEER_PID=$!
}

wait_vip() {
    for _ in $(seq 1 100); do
        if ip netns exec "$CLI_NS" curl -skf -m 1 -o /dev/null --resolve "vip.test:443:$VIP" "https://vip.test/"; then
            sleep 1
            return 0
        fi
        sleep 0.2
    done
    echo "VIP not answering TLS" >&2
    return 1
}

# CPU time (user + system, clock ticks) of a process and its threads.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

load() { # resume(0|1) -> "per_s p50 p99 group resumed per_device_cpu_s"
    local extra=() out c0 c1
    (($1)) && extra=(-resume)
    c0=$(cpu_ticks "$PEER_PID")
    out=$(ip netns exec "$CLI_NS" "$WORK/tlsclient" -addr "$VIP:443" -name vip.test -ca "$WORK/certs/ca.pem" \
        -c "$CONNS" -d "$SECS" "${extra[@]}")
    c1=$(cpu_ticks "$PEER_PID")
    out=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["device_cpu_s"]=(int(sys.argv[3])-int(sys.argv[2]))/float(sys.argv[4]); print(json.dumps(r))' \
        "$out" "$c0" "$c1" "$(getconf CLK_TCK)")
    echo "$out" >>"$WORK/load.log"
    python3 -c '
import json, sys
r = json.loads(sys.argv[1])
g = max(r["groups"], key=r["groups"].get) if r["groups"] else "-"
if r["errors"]:
    print("[tls-bench] errors:", r["errors"], r["last_error"], file=sys.stderr)
cpu = r["device_cpu_s"]
print("%.0f %.2f %.2f %s %d %.0f" % (r["per_s"], r["p50_ms"], r["p99_ms"], g, r["resumed"], r["conns"] / cpu if cpu > 0 else 0))
' "$out"
}

declare -A RES
measure() { # device
    local dev=$1
    RES[$dev.full]+="$(load 0);"
    log "$dev full: $(tail -c 48 <<<"${RES[$dev.full]}")"
    RES[$dev.res]+="$(load 1);"
    log "$dev resumed: $(tail -c 48 <<<"${RES[$dev.res]}")"
}
stop_peer() { kill -TERM "$PEER_PID" 2>/dev/null || true; wait "$PEER_PID" 2>/dev/null || true; }

for r in $(seq 1 "$ROUNDS"); do
    log "round $r/$ROUNDS: qsplice"
    start_qsplice; wait_vip; measure qsplice; stop_peer
    python3 - "$WORK/qs.json" <<'PY' >&2 || true
import json, sys
v = [x for x in json.load(open(sys.argv[1]))["lb"]["vips"] if x.get("tls")][0]["tls"]
print("[tls-bench] qsplice tls:", {k: v[k] for k in ("handshakes", "resumed", "post_quantum", "groups", "failures")})
PY
    ip netns exec "$CLI_NS" ip neigh flush all
    log "round $r/$ROUNDS: haproxy"
    kernel_on; start_haproxy; wait_vip; measure haproxy; stop_peer; kernel_off
    log "round $r/$ROUNDS: nginx"
    kernel_on; start_nginx; wait_vip; measure nginx; stop_peer; kernel_off
done

python3 - "$ROUNDS" "$SECS" "$CONNS" "$WORKERS" <<PY
import statistics, sys
rounds, secs, conns, workers = sys.argv[1:]
res = {}
$(for k in "${!RES[@]}"; do echo "res['$k'] = '${RES[$k]}'"; done)
def col(dev, m, i):
    return [x.split()[i] for x in res[f"{dev}.{m}"].split(";") if x.strip()]
def med(dev, m, i):
    return statistics.median(float(v) for v in col(dev, m, i))
print(f"TLS through the VIP: {rounds} round(s) of {secs} s, {conns} concurrent Go clients, {workers} worker(s)/thread(s); medians")
print(f"{'device':<8} {'group':<15} {'full/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'resumed/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'full/CPU-s':>11} {'res/CPU-s':>10}   ratio qsplice/device (full/s, resumed/s, full/CPU-s)")
q = (med("qsplice", "full", 0), med("qsplice", "res", 0), med("qsplice", "full", 5))
for dev in ["qsplice", "haproxy", "nginx"]:
    f = [med(dev, "full", i) for i in range(3)]
    r = [med(dev, "res", i) for i in range(3)]
    fc, rc = med(dev, "full", 5), med(dev, "res", 5)
    g = statistics.mode(col(dev, "full", 3))
    ratio = lambda a, b: f"{a/b:.2f}x" if b else "nan"
    print(f"{dev:<8} {g:<15} {f[0]:>8.0f} {f[1]:>7.2f} {f[2]:>7.2f} {r[0]:>10.0f} {r[1]:>7.2f} {r[2]:>7.2f} {fc:>11.0f} {rc:>10.0f}   {ratio(q[0], f[0])} {ratio(q[1], r[0])} {ratio(q[2], fc)}")
print("full/CPU-s, res/CPU-s: connections per CPU-second the device process used (user+system; qsplice's lcore polls, sleeping idle_sleep_us when idle)")
# Every round starts a new device process against the same backends (whose
# TIME-WAIT still holds the previous round's tuples): no round may degrade.
print("round by round (full/s, resumed/s; round N / round 1):")
worst = 1.0
for dev in ["qsplice", "haproxy", "nginx"]:
    f = [float(v) for v in col(dev, "full", 0)]
    r = [float(v) for v in col(dev, "res", 0)]
    rel = [min(f[i] / f[0] if f[0] else 0, r[i] / r[0] if r[0] else 0) for i in range(len(f))]
    if dev == "qsplice":
        worst = min(rel)
    print(f"  {dev:<8} full " + " ".join(f"{x:.0f}" for x in f) + "  resumed " + " ".join(f"{x:.0f}" for x in r) + "  worst round/round1 " + f"{min(rel):.2f}")
print(f"qsplice rounds within 10% of round 1: {'yes' if worst >= 0.9 else 'NO'} (worst {worst:.2f})")
print("reproduce: benches/e2e/tls-vs-peers.sh --seconds", secs, "--rounds", rounds, "--conns", conns, "--workers", workers)
PY
