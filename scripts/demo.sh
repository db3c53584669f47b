#!/usr/bin/env bash
# qsplice demo on a fresh machine: set up, build, create the namespace
# topology, run the appliance on it, and show it working from the client's
# side. Cleans up everything it started.
#
#   scripts/demo.sh [--seconds N] [--keep]
#
#   --seconds N   upper bound on the appliance's run (default 300; the demo
#                 stops it as soon as it is done — every tool is built before
#                 it starts, so no build races this bound)
#   --keep        leave the topology up afterwards (tear down: scripts/netns.sh down)
set -euo pipefail
cd "$(dirname "$0")/.."

RUN_SECONDS=300
KEEP=0
while (($#)); do
    case "$1" in
        --seconds) RUN_SECONDS=$2; shift ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "setup (packages, hugepages)"
scripts/setup.sh

step "build (the appliance and every client tool, before anything starts)"
cargo build --release --bin qsplice
QS=target/release/qsplice
"$QS" --version
TLSCLIENT=
if command -v go >/dev/null 2>&1; then
    (cd tests/tools/tlsclient && GOTOOLCHAIN=local GOFLAGS=-mod=mod go build -o /tmp/qsplice-tlsclient .)
    TLSCLIENT=/tmp/qsplice-tlsclient
fi

step "topology: client ns -- [qsplice on af_packet] -- backend ns with nginx"
scripts/netns.sh up --prefix qs --backends 3 | tee /tmp/qsplice-demo-netns.env
APP_PID=""
cleanup() {
    if [[ -n $APP_PID ]] && kill -0 "$APP_PID" 2>/dev/null; then
        kill -TERM "$APP_PID" 2>/dev/null || true
        wait "$APP_PID" 2>/dev/null || true
    fi
    if [[ $KEEP == 0 ]]; then scripts/netns.sh down --prefix qs >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

step "machine topology and placement plan"
"$QS" topo --config conf/lb.toml || true

step "lab certificates for the HTTPS VIP (ML-DSA-65 and ECDSA P-256, one lab CA)"
"$QS" tls-cert --out /tmp/qsplice-certs --name vip.test --alg ml-dsa-65 --alg ecdsa-p256

step "start the load balancer: qsplice lb (conf/lb-tls.toml: HTTP VIP :80 spliced, HTTPS VIP :443 terminated)"
STATS=$(mktemp /tmp/qsplice-demo-XXXX.json)
"$QS" lb --config conf/lb-tls.toml --duration "$RUN_SECONDS" --stats-json "$STATS" --live-json >/tmp/qsplice-demo.out 2>/tmp/qsplice-demo.err &
APP_PID=$!
for _ in $(seq 1 100); do
    if [[ -s $STATS ]] && python3 - "$STATS" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ok = len(r["neighbors"]) >= 3 and all(
    b["healthy"] and b["checks"] >= 2 for v in r["lb"]["vips"] for b in v["backends"])
sys.exit(0 if ok else 1)
PY
    then break; fi
    kill -0 "$APP_PID" 2>/dev/null || { cat /tmp/qsplice-demo.err; echo "qsplice exited early" >&2; exit 1; }
    sleep 0.2
done
echo "backends resolved by ARP:"
python3 -c 'import json,sys; [print("  ", n["port"], n["ip"], "is-at", n["mac"]) for n in json.load(open(sys.argv[1]))["neighbors"]]' "$STATS"

step "client namespace: ping the VIP 10.10.1.1 through DPDK af_packet"
ip netns exec qs-client ping -c 5 -i 0.2 10.10.1.1
echo "client's ARP entry for the VIP (the DPDK port's MAC):"
ip netns exec qs-client ip neigh show 10.10.1.1

step "client namespace: HTTP to the VIP, spread over the nginx backends and spliced"
for i in $(seq 1 6); do
    printf '  request %d -> ' "$i"
    ip netns exec qs-client curl -s -m 5 -D- -o /dev/null http://10.10.1.1/ | grep -i '^x-backend' || echo "FAILED"
done
echo "1 MiB download through the VIP:"
printf '  got      %s\n' "$(ip netns exec qs-client curl -s -m 20 http://10.10.1.1/1m.bin | sha256sum | cut -d' ' -f1)"
printf '  expected %s\n' "$(grep ' 1m.bin' /tmp/qsplice-netns-qs/shared/SHA256SUMS | cut -d' ' -f1)"

step "client namespace: HTTPS to the VIP, TLS terminated on the lcore (hybrid post-quantum when the client offers it)"
CURL_TLS=(curl -s -m 5 --cacert /tmp/qsplice-certs/ca.pem --resolve vip.test:443:10.10.1.1)
printf '  curl (OpenSSL 3.0, classical X25519): '
ip netns exec qs-client "${CURL_TLS[@]}" -w ' [%{http_version}, verify %{ssl_verify_result}]\n' https://vip.test/xff || echo "FAILED"
if [[ -n $TLSCLIENT ]]; then
    echo "  Go crypto/tls, 3 connections (X25519MLKEM768, then ticket resumption):"
    ip netns exec qs-client "$TLSCLIENT" -addr 10.10.1.1:443 -name vip.test \
        -ca /tmp/qsplice-certs/ca.pem -n 3 | sed 's/^/    /'
elif command -v chromium >/dev/null 2>&1; then
    echo "  headless Chromium (X25519MLKEM768):"
    ip netns exec qs-client chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --user-data-dir="$(mktemp -d)" --ignore-certificate-errors \
        --host-resolver-rules="MAP vip.test 10.10.1.1" --dump-dom https://vip.test/ 2>/dev/null | sed 's/^/    /'
fi

step "operate it: qsplice ctl and Prometheus metrics on the management listener (127.0.0.1:9180, a kernel socket)"
"$QS" ctl vips
"$QS" ctl backends
echo "drain b1 (no new connections to it), then 3 requests:"
"$QS" ctl drain web 10.10.2.11:80 >/dev/null
for i in 1 2 3; do
    printf '  request %d -> ' "$i"
    ip netns exec qs-client curl -s -m 5 -D- -o /dev/null http://10.10.1.1/ | grep -i '^x-backend' || echo "FAILED"
done
"$QS" ctl enable web 10.10.2.11:80 >/dev/null && echo "b1 enabled again"
echo "a few lines of GET /metrics:"
curl -s http://127.0.0.1:9180/metrics | grep -E '^qsplice_(backend_connections_opened_total|tls_handshakes_total)' | head -n 6 | sed 's/^/  /'
if command -v promtool >/dev/null 2>&1; then
    curl -s http://127.0.0.1:9180/metrics | promtool check metrics && echo "  promtool check metrics: OK"
fi

step "client namespace: hostile frames (bad checksums, bad lengths, unknown protocols...)"
ip netns exec qs-client tests/tools/send_frames.py qs-cli0 "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ports"][0]["mac"])' "$STATS")" 10.10.1.2 10.10.1.1 2
ip netns exec qs-client ping -c 2 -i 0.2 10.10.1.1 >/dev/null && echo "VIP still answering"

step "stop qsplice: final counters"
kill -TERM "$APP_PID"; wait "$APP_PID" || true; APP_PID=""
tail -n 60 /tmp/qsplice-demo.out
rm -f "$STATS"
