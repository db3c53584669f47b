#!/usr/bin/env bash
# qsplice demo / test network topology built from network namespaces.
#
# Usage:
#   scripts/netns.sh up     [--prefix P] [--backends N] [--bigfile MB] [--ipv6]
#   scripts/netns.sh down   [--prefix P]
#   scripts/netns.sh status [--prefix P]
#   scripts/netns.sh check  [--prefix P]
#
#   --prefix P     name prefix, 1-8 chars [A-Za-z0-9] (default: qs)
#   --backends N   number of nginx backends, 1..8 (default: 3)
#   --bigfile MB   also create html/big.bin of MB MiB (one random file,
#                  hard-linked into every backend)
#   --ipv6         dual-stack: the client link gets 2001:db8:1::/64 (client
#                  ::2, the appliance ::1), the backend link 2001:db8:2::/64
#                  (backend K ::(10+K) in hex digits, i.e. ::11, ::12 …,
#                  the appliance ::1), nginx listens on IPv6 too; `up` also
#                  prints VIP6, CLIENT_IP6, BACKEND_SIDE_IP6, BACKENDS6
#
# Topology (qsplice runs in the ROOT namespace and binds P-dut-c / P-dut-b
# with DPDK net_af_packet; those two ends are UP and carry no IP address):
#
#   [ns P-client]  P-cli0 10.10.1.2/24, default via 10.10.1.1 (VIP)
#         | veth
#     P-dut-c  (root ns)            P-dut-b  (root ns)
#                                       | veth
#   [ns P-sw]  bridge P-br0: P-sw-dut + P-sw1..P-swN
#                                       | veths
#   [ns P-bK]  P-bk0 10.10.2.(10+K)/24, default via 10.10.2.1; nginx on :80,
#              and TLS on :443 (its own certificate from a lab CA in
#              STATE_DIR/shared/ca.pem, its own session cache and ticket
#              keys: a session resumes only on the backend that made it;
#              GET /tls answers "backend bK reused r|. PROTOCOL")
#
# `up` ends with machine-readable KEY=VALUE lines (CLIENT_NS, SW_NS,
# BACKEND_NS, DUT_CLIENT_IF, DUT_BACKEND_IF, VIP, BACKEND_SIDE_IP, BACKENDS,
# STATE_DIR, SHA256SUMS). State lives in /tmp/qsplice-netns-P/.
set -euo pipefail

VIP=10.10.1.1
CLIENT_IP=10.10.1.2
BACKEND_SIDE_IP=10.10.2.1
VIP6=2001:db8:1::1
CLIENT_IP6=2001:db8:1::2
BACKEND_SIDE_IP6=2001:db8:2::1
MAX_BACKENDS=8

log()  { printf '[netns] %s\n' "$*" >&2; }
warn() { printf '[netns] WARNING: %s\n' "$*" >&2; }
die()  { printf '[netns] ERROR: %s\n' "$*" >&2; exit 1; }

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }

# ---------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------
CMD=${1:-}
[[ -n $CMD ]] || { usage >&2; exit 2; }
shift
case "$CMD" in
    up|down|status|check) ;;
    -h|--help|help) usage; exit 0 ;;
    *) usage >&2; die "unknown command: $CMD" ;;
esac

PREFIX=qs
NBACKENDS=3
BIGFILE_MB=0
IPV6=0
while (($#)); do
    case "$1" in
        --prefix)     [[ $# -ge 2 ]] || die "--prefix needs a value"; PREFIX=$2; shift ;;
        --prefix=*)   PREFIX=${1#*=} ;;
        --backends)   [[ $# -ge 2 ]] || die "--backends needs a value"; NBACKENDS=$2; shift ;;
        --backends=*) NBACKENDS=${1#*=} ;;
        --bigfile)    [[ $# -ge 2 ]] || die "--bigfile needs a value"; BIGFILE_MB=$2; shift ;;
        --bigfile=*)  BIGFILE_MB=${1#*=} ;;
        --ipv6)       IPV6=1 ;;
        -h|--help)    usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done

# Longest interface name is "P-sw-dut" (len(P)+7) and must fit IFNAMSIZ-1=15.
[[ $PREFIX =~ ^[A-Za-z0-9]{1,8}$ ]] || die "--prefix must be 1-8 characters of [A-Za-z0-9] (got '$PREFIX')"
if ! [[ $NBACKENDS =~ ^[0-9]+$ ]] || ((NBACKENDS < 1 || NBACKENDS > MAX_BACKENDS)); then
    die "--backends must be 1..$MAX_BACKENDS (got '$NBACKENDS')"
fi
[[ $BIGFILE_MB =~ ^[0-9]+$ ]] || die "--bigfile must be a size in MiB (got '$BIGFILE_MB')"
((EUID == 0)) || die "must run as root (network namespaces, veths, sysctls)"

CLIENT_NS=$PREFIX-client
SW_NS=$PREFIX-sw
DUT_C=$PREFIX-dut-c
DUT_B=$PREFIX-dut-b
CLI_IF=$PREFIX-cli0
SW_DUT_IF=$PREFIX-sw-dut
BRIDGE=$PREFIX-br0
BK_IF=$PREFIX-bk0          # same name inside every backend namespace
STATE_DIR=/tmp/qsplice-netns-$PREFIX

backend_ns() { echo "$PREFIX-b$1"; }
sw_port()    { echo "$PREFIX-sw$1"; }
backend_ip() { echo "10.10.2.$((10 + $1))"; }
backend_ip6() { echo "2001:db8:2::$((10 + $1))"; }
# Turn IPv6 on for interface IFNAME in NS (prep_ns/prep_if turn it off).
enable_ipv6() {
    local ns=$1 ifname=$2
    set_sysctl "$ns" net.ipv6.conf.all.disable_ipv6 0
    set_if_sysctl "$ns" ipv6 "$ifname" disable_ipv6 0
    set_if_sysctl "$ns" ipv6 "$ifname" accept_ra 0
    set_if_sysctl "$ns" ipv6 "$ifname" accept_dad 0
}
# every namespace name this prefix can own (client, switch, b1..b8)
all_ns() {
    local k
    echo "$CLIENT_NS"
    echo "$SW_NS"
    for ((k = 1; k <= MAX_BACKENDS; k++)); do backend_ns "$k"; done
}

NGINX=$(command -v nginx || true)
[[ -n $NGINX ]] || NGINX=/usr/sbin/nginx

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
ns_exists()   { [[ -e /run/netns/$1 ]]; }
link_exists() { ip link show dev "$1" >/dev/null 2>&1; }
nsx()         { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# Write a /proc/sys value inside namespace ns ("" = root namespace); a missing
# key (e.g. IPv6 compiled out) or a refused write is ignored. /proc/sys/net is
# resolved in the namespace of the process that opens it, hence `tee` via nsx.
write_proc() {
    local ns=$1 path=$2 val=$3
    [[ -e $path ]] || [[ -n $ns ]] || return 0
    if [[ -z $ns ]]; then
        { printf '%s\n' "$val" >"$path"; } 2>/dev/null || true
    else
        printf '%s\n' "$val" | nsx "$ns" tee "$path" >/dev/null 2>&1 || true
    fi
}

# Usage: set_sysctl NS key.dotted.name VALUE
set_sysctl() { write_proc "$1" "/proc/sys/${2//.//}" "$3"; }

# Usage: set_if_sysctl NS ipv4|ipv6 IFNAME KEY VALUE  (IFNAME may contain '-')
set_if_sysctl() { write_proc "$1" "/proc/sys/net/$2/conf/$3/$4" "$5"; }

# Disable offloads on one interface. Each feature is tried separately so a
# feature the driver does not support does not block the others; TX checksum
# offload MUST end up off (otherwise af_packet sees partial checksums).
no_offload() {
    local ns=$1 ifname=$2 required=${3:-required} feat
    local -a pre=()
    [[ -n $ns ]] && pre=(ip netns exec "$ns")
    for feat in tx rx tso gso gro lro ufo sg; do
        "${pre[@]}" ethtool -K "$ifname" "$feat" off >/dev/null 2>&1 || true
    done
    if [[ $required == required ]] &&
        "${pre[@]}" ethtool -k "$ifname" 2>/dev/null | grep -q '^tx-checksumming: on'; then
        die "could not disable TX checksum offload on $ifname${ns:+ (ns $ns)}"
    fi
}

# Common per-interface treatment: quiet IPv6, no rp_filter, no offloads.
prep_if() {
    local ns=$1 ifname=$2
    set_if_sysctl "$ns" ipv6 "$ifname" disable_ipv6 1
    set_if_sysctl "$ns" ipv6 "$ifname" accept_ra 0
    if [[ -n $ns ]]; then
        set_if_sysctl "$ns" ipv4 "$ifname" rp_filter 0
    fi
    no_offload "$ns" "$ifname"
}

# Namespace-wide settings: loopback up, IPv6 off by default, rp_filter off.
prep_ns() {
    local ns=$1
    ip netns add "$ns"
    set_sysctl "$ns" net.ipv6.conf.all.disable_ipv6 1
    set_sysctl "$ns" net.ipv6.conf.default.disable_ipv6 1
    set_sysctl "$ns" net.ipv4.conf.all.rp_filter 0
    set_sysctl "$ns" net.ipv4.conf.default.rp_filter 0
    nsx "$ns" ip link set lo up
}

pid_alive_nginx() {
    local pid=$1
    [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/comm ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == nginx ]]
}

# nginx processes (masters first) whose command line names this prefix's state dir.
stray_nginx_pids() {
    local d p cmd masters=() workers=()
    for d in /proc/[0-9]*; do
        p=${d#/proc/}
        [[ "$(cat "$d/comm" 2>/dev/null)" == nginx ]] || continue
        cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) || continue
        [[ $cmd == *"$STATE_DIR/b"* ]] || continue
        if [[ $cmd == *master* ]]; then masters+=("$p"); else workers+=("$p"); fi
    done
    echo "${masters[@]}" "${workers[@]}"
}

# alive and not a zombie waiting to be reaped
pid_running() {
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || echo Z)
    [[ $st != Z && $st != X ]]
}

# Stop processes: SIGTERM to all, wait up to 5 s, SIGKILL the rest, then give
# init a moment to reap them (so `pgrep` is clean right after `down`).
# Usage: kill_pids_gracefully "label:pid" ...
kill_pids_gracefully() {
    local item pid i left
    (($#)) || return 0
    for item in "$@"; do kill -TERM "${item##*:}" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
        left=0
        for item in "$@"; do pid_running "${item##*:}" && left=1; done
        ((left)) || break
        sleep 0.1
    done
    for item in "$@"; do
        pid=${item##*:}
        if pid_running "$pid"; then
            warn "${item%:*} (pid $pid) ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        else
            log "stopped ${item%:*} (pid $pid)"
        fi
    done
    for ((i = 0; i < 30; i++)); do
        left=0
        for item in "$@"; do [[ -e /proc/${item##*:} ]] && left=1; done
        ((left)) || return 0
        sleep 0.1
    done
    for item in "$@"; do
        pid_running "${item##*:}" && warn "${item%:*} (pid ${item##*:}) still alive after SIGKILL"
    done
    return 0
}

# ---------------------------------------------------------------------------
# nginx backend
# ---------------------------------------------------------------------------
write_nginx_conf() {
    local k=$1 dir=$2
    cat >"$dir/nginx.conf" <<EOF
# generated by scripts/netns.sh for backend b$k (prefix $PREFIX); do not edit
daemon on;
master_process on;
user root;
worker_processes 1;
worker_rlimit_nofile 16384;
error_log $dir/error.log warn;
pid $dir/nginx.pid;

events {
    worker_connections 8192;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;

    log_format qsplice '\$remote_addr:\$remote_port "\$request" \$status '
                       'req_len=\$request_length sent=\$body_bytes_sent rt=\$request_time';
    access_log $dir/access.log qsplice;

    client_body_temp_path $dir/tmp/client_body;
    proxy_temp_path       $dir/tmp/proxy;
    fastcgi_temp_path     $dir/tmp/fastcgi;
    uwsgi_temp_path       $dir/tmp/uwsgi;
    scgi_temp_path        $dir/tmp/scgi;

    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 100000;
    server_tokens off;

    # Internal PUT sink used to store POST bodies (loopback only).
    server {
        listen 127.0.0.1:8081;
        access_log off;
        client_max_body_size 0;
        location /upload/ {
            root $dir;
            dav_methods PUT;
            create_full_put_path on;
        }
    }

    server {
        listen 80 default_server;
$(if ((IPV6)); then echo "        listen [::]:80 default_server;"; fi)
        server_name _;
        add_header X-Backend b$k always;
        client_max_body_size 0;

        location / {
            root $dir/html;
            index index.html;
        }

        location = /health {
            default_type text/plain;
            return 200 "ok b$k\n";
        }

        location = /xff {
            default_type text/plain;
            return 200 "xff \$http_x_forwarded_for\n";
        }

        location = /whoami {
            default_type text/plain;
            return 200 "backend b$k client \$remote_addr:\$remote_port server \$server_addr:\$server_port\n";
        }

        # PUT /upload/NAME stores the body in $dir/upload/NAME (201 Created,
        # 204 when overwriting). POST /upload/NAME stores it the same way;
        # GET /upload/NAME returns it. PUT/POST /upload stores upload/_body.
        location = /upload {
            rewrite ^ /upload/_body last;
        }

        location /upload/ {
            root $dir;
            dav_methods PUT DELETE;
            create_full_put_path on;
            if (\$request_method = POST) {
                rewrite ^ /_post\$uri last;
            }
        }

        location /_post/ {
            internal;
            proxy_pass http://127.0.0.1:8081/;
            proxy_method PUT;
            proxy_http_version 1.1;
            proxy_request_buffering off;
            proxy_set_header Connection "";
        }
    }

    # TLS pass-through target (session-aware dispatch): a per-backend
    # session cache and per-process random ticket keys.
    server {
        listen 443 ssl default_server;
$(if ((IPV6)); then echo "        listen [::]:443 ssl default_server;"; fi)
        server_name _;
        ssl_certificate $dir/tls.pem;
        ssl_certificate_key $dir/tls.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:b$k:1m;
        ssl_session_timeout 10m;
        ssl_session_tickets on;
        add_header X-Backend b$k always;
        location / {
            root $dir/html;
            index index.html;
        }
        location = /tls {
            default_type text/plain;
            return 200 "backend b$k reused \$ssl_session_reused \$ssl_protocol\n";
        }
    }
}
EOF
}

# A lab CA (once per topology) and a leaf per backend (vip.test, bK.test).
make_ca() {
    local d=$STATE_DIR/shared
    [[ -e $d/ca.pem ]] && return 0
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
        -subj "/CN=qsplice netns CA" -keyout "$d/ca.key" -out "$d/ca.pem" >/dev/null 2>&1 \
        || die "openssl: cannot make the lab CA"
}
make_leaf() { # k dir
    local k=$1 dir=$2 d=$STATE_DIR/shared
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=vip.test" \
        -keyout "$dir/tls.key" -out "$dir/tls.csr" >/dev/null 2>&1 || die "openssl: leaf key for b$k"
    printf 'subjectAltName=DNS:vip.test,DNS:b%s.test\n' "$k" >"$dir/tls.ext"
    openssl x509 -req -in "$dir/tls.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
        -days 30 -extfile "$dir/tls.ext" -out "$dir/tls.pem" >/dev/null 2>&1 || die "openssl: leaf cert for b$k"
}

start_backend() {
    local k=$1 ns dir i
    ns=$(backend_ns "$k")
    dir=$STATE_DIR/b$k
    mkdir -p "$dir/html" "$dir/upload" "$dir/tmp"
    echo "backend b$k" >"$dir/html/index.html"
    ln -f "$STATE_DIR/shared/1m.bin" "$dir/html/1m.bin"
    if [[ -e $STATE_DIR/shared/big.bin ]]; then
        ln -f "$STATE_DIR/shared/big.bin" "$dir/html/big.bin"
    fi
    make_leaf "$k" "$dir"
    write_nginx_conf "$k" "$dir"
    nsx "$ns" "$NGINX" -t -q -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" \
        || die "nginx config test failed for b$k (see $dir/error.log)"
    nsx "$ns" "$NGINX" -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" \
        || die "nginx failed to start in $ns (see $dir/error.log)"
    for ((i = 0; i < 50; i++)); do
        if nsx "$ns" curl -sf --max-time 1 -o /dev/null "http://127.0.0.1/"; then
            log "backend b$k: nginx pid $(cat "$dir/nginx.pid") listening on $(backend_ip "$k"):80 in $ns"
            return 0
        fi
        sleep 0.1
    done
    die "nginx in $ns is not answering on 127.0.0.1:80 after 5s (see $dir/error.log)"
}

# ---------------------------------------------------------------------------
# down
# ---------------------------------------------------------------------------
prefix_present() {
    local k
    [[ -d $STATE_DIR ]] && return 0
    ns_exists "$CLIENT_NS" && return 0
    ns_exists "$SW_NS" && return 0
    link_exists "$DUT_C" && return 0
    link_exists "$DUT_B" && return 0
    for ((k = 1; k <= MAX_BACKENDS; k++)); do
        ns_exists "$(backend_ns "$k")" && return 0
    done
    return 1
}

do_down() {
    local k ns pidfile pid p
    # 1. nginx masters, by the PIDs in their pid files.
    local -a victims=()
    for ((k = 1; k <= MAX_BACKENDS; k++)); do
        pidfile=$STATE_DIR/b$k/nginx.pid
        [[ -r $pidfile ]] || continue
        pid=$(tr -dc '0-9' <"$pidfile")
        if pid_alive_nginx "$pid"; then
            victims+=("nginx b$k:$pid")
        fi
    done
    kill_pids_gracefully "${victims[@]}"
    # 2. stray nginx processes of this prefix (state dir lost, namespace
    #    already deleted, orphaned worker): recognised by the unique
    #    "-p /tmp/qsplice-netns-P/bK/" in their command line, killed by PID.
    victims=()
    for p in $(stray_nginx_pids); do
        victims+=("stray nginx:$p")
    done
    kill_pids_gracefully "${victims[@]}"
    # Anything else still inside our namespaces is not ours to kill; the
    # namespace is removed anyway (it lives on until that process exits).
    for ((k = 1; k <= MAX_BACKENDS; k++)); do
        ns=$(backend_ns "$k")
        ns_exists "$ns" || continue
        for p in $(ip netns pids "$ns" 2>/dev/null || true); do
            [[ -d /proc/$p ]] || continue
            warn "process $p ($(cat "/proc/$p/comm" 2>/dev/null || echo '?')) still runs in $ns; not touching it"
        done
    done
    # 3. root-namespace veth ends (deleting one end removes its peer as well,
    #    synchronously, so a following `up` does not race the netns cleanup).
    for ifname in "$DUT_C" "$DUT_B"; do
        if link_exists "$ifname"; then
            ip link del "$ifname" 2>/dev/null || warn "could not delete $ifname"
        fi
    done
    # 4. namespaces.
    local -a namespaces
    mapfile -t namespaces < <(all_ns)
    for ns in "${namespaces[@]}"; do
        if ns_exists "$ns"; then
            ip netns del "$ns" 2>/dev/null || warn "could not delete namespace $ns"
        fi
    done
    # 5. state.
    if [[ -d $STATE_DIR ]]; then
        rm -rf -- "$STATE_DIR"
    fi
}

cmd_down() {
    if prefix_present; then
        log "tearing down prefix '$PREFIX'"
        do_down
    else
        log "prefix '$PREFIX' is not up; nothing to do"
    fi
    log "down: done"
}

# ---------------------------------------------------------------------------
# up
# ---------------------------------------------------------------------------
UP_DONE=0
up_cleanup() {
    local rc=$?
    if ((!UP_DONE)); then
        warn "up failed (rc=$rc); rolling back prefix '$PREFIX'"
        set +e
        do_down
    fi
}

cmd_up() {
    local k ns port ip
    if prefix_present; then
        log "prefix '$PREFIX' already present; tearing it down first"
        do_down
    fi
    for cmd in ip ethtool curl "$NGINX" sha256sum; do
        command -v "$cmd" >/dev/null 2>&1 || die "missing tool '$cmd' (run scripts/setup.sh)"
    done

    trap up_cleanup EXIT
    mkdir -p "$STATE_DIR/shared"
    echo "$NBACKENDS" >"$STATE_DIR/backends"

    # --- namespaces --------------------------------------------------------
    prep_ns "$CLIENT_NS"
    prep_ns "$SW_NS"
    for ((k = 1; k <= NBACKENDS; k++)); do
        prep_ns "$(backend_ns "$k")"
    done

    # --- client side: P-cli0 (client ns) <-> P-dut-c (root) --------------
    ip link add "$DUT_C" type veth peer name "$CLI_IF" netns "$CLIENT_NS"
    # --- backend side: P-dut-b (root) <-> P-sw-dut (sw ns) ----------------
    ip link add "$DUT_B" type veth peer name "$SW_DUT_IF" netns "$SW_NS"

    # Root-ns ends: no IP, kernel kept out of the way (no ARP replies, no
    # forwarding), IPv6 off, offloads off; then UP for DPDK af_packet.
    for ifname in "$DUT_C" "$DUT_B"; do
        prep_if "" "$ifname"
        set_if_sysctl "" ipv4 "$ifname" forwarding 0
        set_if_sysctl "" ipv4 "$ifname" arp_ignore 8
        ip link set dev "$ifname" arp off
        ip link set dev "$ifname" up
    done

    # Client.
    prep_if "$CLIENT_NS" "$CLI_IF"
    nsx "$CLIENT_NS" ip addr add "$CLIENT_IP/24" dev "$CLI_IF"
    nsx "$CLIENT_NS" ip link set dev "$CLI_IF" up
    nsx "$CLIENT_NS" ip route add default via "$VIP" dev "$CLI_IF"
    if ((IPV6)); then
        enable_ipv6 "$CLIENT_NS" "$CLI_IF"
        nsx "$CLIENT_NS" ip -6 addr add "$CLIENT_IP6/64" dev "$CLI_IF" nodad
        nsx "$CLIENT_NS" ip -6 route add default via "$VIP6" dev "$CLI_IF"
    fi

    # Switch.
    nsx "$SW_NS" ip link add "$BRIDGE" type bridge stp_state 0 forward_delay 0 mcast_snooping 0
    set_if_sysctl "$SW_NS" ipv6 "$BRIDGE" disable_ipv6 1
    no_offload "$SW_NS" "$BRIDGE" optional
    prep_if "$SW_NS" "$SW_DUT_IF"
    nsx "$SW_NS" ip link set dev "$SW_DUT_IF" master "$BRIDGE"
    nsx "$SW_NS" ip link set dev "$SW_DUT_IF" up

    # Backends.
    for ((k = 1; k <= NBACKENDS; k++)); do
        ns=$(backend_ns "$k")
        port=$(sw_port "$k")
        ip=$(backend_ip "$k")
        nsx "$SW_NS" ip link add "$port" type veth peer name "$BK_IF" netns "$ns"
        prep_if "$SW_NS" "$port"
        nsx "$SW_NS" ip link set dev "$port" master "$BRIDGE"
        nsx "$SW_NS" ip link set dev "$port" up
        prep_if "$ns" "$BK_IF"
        nsx "$ns" ip addr add "$ip/24" dev "$BK_IF"
        nsx "$ns" ip link set dev "$BK_IF" up
        nsx "$ns" ip route add default via "$BACKEND_SIDE_IP" dev "$BK_IF"
        if ((IPV6)); then
            enable_ipv6 "$ns" "$BK_IF"
            nsx "$ns" ip -6 addr add "$(backend_ip6 "$k")/64" dev "$BK_IF" nodad
            nsx "$ns" ip -6 route add default via "$BACKEND_SIDE_IP6" dev "$BK_IF"
        fi
    done
    nsx "$SW_NS" ip link set dev "$BRIDGE" up

    # --- content -----------------------------------------------------------
    head -c $((1024 * 1024)) /dev/urandom >"$STATE_DIR/shared/1m.bin"
    if ((BIGFILE_MB > 0)); then
        log "generating big.bin (${BIGFILE_MB} MiB)"
        head -c $((BIGFILE_MB * 1024 * 1024)) /dev/urandom >"$STATE_DIR/shared/big.bin"
    fi
    (cd "$STATE_DIR/shared" && sha256sum -- *.bin >SHA256SUMS)
    make_ca

    # --- nginx -------------------------------------------------------------
    for ((k = 1; k <= NBACKENDS; k++)); do
        start_backend "$k"
    done

    UP_DONE=1
    trap - EXIT

    local backend_list="" ns_list=""
    for ((k = 1; k <= NBACKENDS; k++)); do
        backend_list+="${backend_list:+ }$(backend_ip "$k")"
        ns_list+="${ns_list:+ }$(backend_ns "$k")"
    done
    log "up: prefix '$PREFIX' ready with $NBACKENDS backend(s)"
    echo "CLIENT_NS=$CLIENT_NS"
    echo "SW_NS=$SW_NS"
    echo "BACKEND_NS=$ns_list"
    echo "DUT_CLIENT_IF=$DUT_C"
    echo "DUT_BACKEND_IF=$DUT_B"
    echo "VIP=$VIP"
    echo "BACKEND_SIDE_IP=$BACKEND_SIDE_IP"
    echo "BACKENDS=$backend_list"
    echo "STATE_DIR=$STATE_DIR"
    echo "SHA256SUMS=$STATE_DIR/shared/SHA256SUMS"
    echo "TLS_CA=$STATE_DIR/shared/ca.pem"
    if ((IPV6)); then
        local b6=""
        for ((k = 1; k <= NBACKENDS; k++)); do
            b6+="${b6:+ }$(backend_ip6 "$k")"
        done
        echo "VIP6=$VIP6"
        echo "CLIENT_IP6=$CLIENT_IP6"
        echo "BACKEND_SIDE_IP6=$BACKEND_SIDE_IP6"
        echo "BACKENDS6=$b6"
    fi
}

# ---------------------------------------------------------------------------
# status / check
# ---------------------------------------------------------------------------
recorded_backends() {
    local n
    n=$(cat "$STATE_DIR/backends" 2>/dev/null || echo 0)
    [[ $n =~ ^[0-9]+$ ]] || n=0
    echo "$n"
}

cmd_status() {
    local k ns pid n healthy=1 any=0 state
    n=$(recorded_backends)
    echo "prefix:     $PREFIX"
    echo "state dir:  $STATE_DIR $([[ -d $STATE_DIR ]] && echo '(present)' || echo '(absent)')"
    echo "root-ns links:"
    for ifname in "$DUT_C" "$DUT_B"; do
        if link_exists "$ifname"; then
            any=1
            echo "  $(ip -br link show dev "$ifname")"
        else
            healthy=0
            echo "  $ifname (missing)"
        fi
    done
    local -a namespaces
    mapfile -t namespaces < <(all_ns)
    for ns in "${namespaces[@]}"; do
        if ! ns_exists "$ns"; then
            case "$ns" in
                "$CLIENT_NS"|"$SW_NS") healthy=0; echo "namespace $ns: (missing)" ;;
            esac
            continue
        fi
        any=1
        echo "namespace $ns:"
        nsx "$ns" ip -br addr show | sed 's/^/  /'
    done
    ((n > 0)) || healthy=0
    echo "nginx:"
    for ((k = 1; k <= n; k++)); do
        pid=$(tr -dc '0-9' <"$STATE_DIR/b$k/nginx.pid" 2>/dev/null || true)
        if [[ -n $pid ]] && pid_alive_nginx "$pid"; then
            echo "  b$k: pid $pid running ($(backend_ip "$k"):80 in $(backend_ns "$k"))"
        else
            healthy=0
            echo "  b$k: NOT running"
        fi
    done
    if ((healthy)); then state=up; elif ((any)); then state=partial; else state=down; fi
    echo "STATE=$state"
    [[ $state == up ]]
}

cmd_check() {
    local k j ns n out fail=0
    n=$(recorded_backends)
    ((n > 0)) || die "prefix '$PREFIX' is not up"
    for ((k = 1; k <= n; k++)); do
        ns=$(backend_ns "$k")
        out=$(nsx "$ns" curl -sf --max-time 3 http://127.0.0.1/ || true)
        if [[ $out == "backend b$k" ]]; then
            log "ok: $ns 127.0.0.1 -> '$out'"
        else
            warn "FAIL: $ns 127.0.0.1 answered '$out'"; fail=1
        fi
    done
    # Bridge: every backend reaches every other backend through P-sw.
    for ((k = 1; k <= n; k++)); do
        for ((j = 1; j <= n; j++)); do
            ((j != k)) || continue
            ns=$(backend_ns "$k")
            out=$(nsx "$ns" curl -sf --max-time 3 "http://$(backend_ip "$j")/" || true)
            if [[ $out == "backend b$j" ]]; then
                log "ok: $ns -> $(backend_ip "$j") -> '$out'"
            else
                warn "FAIL: $ns -> $(backend_ip "$j") answered '$out'"; fail=1
            fi
        done
    done
    # Root-ns DUT ends must be up, without an IPv4 address, TX csum offload off.
    for ifname in "$DUT_C" "$DUT_B"; do
        if ! ip -o link show dev "$ifname" 2>/dev/null | grep -q '[<,]UP[,>]'; then
            warn "FAIL: $ifname is not UP"; fail=1
        fi
        if [[ -n $(ip -4 -o addr show dev "$ifname" 2>/dev/null) ]]; then
            warn "FAIL: $ifname has an IPv4 address"; fail=1
        fi
        if ethtool -k "$ifname" 2>/dev/null | grep -q '^tx-checksumming: on'; then
            warn "FAIL: $ifname has TX checksum offload on"; fail=1
        fi
    done
    if ((fail)); then
        echo "CHECK=fail"
        return 1
    fi
    echo "CHECK=ok"
}

case "$CMD" in
    up)     cmd_up ;;
    down)   cmd_down ;;
    status) cmd_status ;;
    check)  cmd_check ;;
esac
