//! One lcore's balancer: accept, connect, splice, close.
//!
//! ```text
//! client                     appliance (this lcore)                  backend
//!   SYN x ───────────────▶  stateless: SYN-ACK y = cookie(x, MSS),
//!                            TSval low bits = client WS + SACK-ok
//!   ◀─────────────── SYN-ACK y
//!   ACK x+1, y+1 ────────▶  cookie ok → pick backend, source port owned
//!                            by this lcore, flow entry (Connecting)
//!                            SYN b (own ISN, client's options) ─────▶
//!   data (held, not ACKed)                  ◀──────────────── SYN-ACK z
//!                            ACK z+1 ───────────────────────────────▶
//!                            held data, translated ─────────────────▶
//!   ◀──── every later segment: addresses, seq/ack (+y−z), SACK, TS,
//!         window scale rewritten in place (splice) ──────────────────▶
//! ```
//!
//! Client→server sequence numbers are shifted by `b − x`, server→client
//! ones by `y − z` (and timestamps likewise); see [`LbCore`]'s
//! `backend_isn_ts` for why the backend leg does not reuse the client's ISN.
//! The appliance never acknowledges client data itself, so nothing is in
//! flight inside it when the flow is spliced: the splice happens as soon as
//! the backend's SYN-ACK arrives.
//!
//! One file per stage of the packet path; this one holds the types, the
//! per-lcore state and the dispatch (`on_client`, `on_backend`, the engine
//! `Service`):
//!
//! | file | stage |
//! |---|---|
//! | `core/accept.rs` | SYNs (SYN cache, cookies), the handshake-completing ACK that creates a flow |
//! | `core/connect.rs` | source ports, backend ISN/TSval, held segments, the backend handshake, retries, connect timers |
//! | `core/forward.rs` | a spliced flow's segments translated and sent on |
//! | `core/probes.rs` | health probes through the dataplane |
//! | `core/timers.rs` | closes, resets, removal (access log), idle expiry, new publications, counters |
//! | `core/adopt.rs` | cluster flow sync: spliced flows published, unknown flows looked up and adopted |
//! | `core/term.rs` | TLS termination |
//! | `core/sa.rs` | session-aware and content-aware dispatch (the held ClientHello or request) |

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use arrayvec::ArrayVec;
use crossbeam::queue::ArrayQueue;
use qsplice_engine::{Io, Service};
use qsplice_netdev::{Frame, Queue};
use qsplice_pool::{Cursor, Snapshot};
use qsplice_splice::flow::{Dir, FlowId, FlowState, FlowTable, FlowTimers, InsertError};
use qsplice_splice::isn::{IsnSecret, SynCookie};
use qsplice_splice::translate::{scale_window, translate, SpliceParams};
use qsplice_wire::{
    ethernet_l3, ip_proto, EthernetFrame, Ipv4Packet, MacAddr, TcpFlags, TcpPacket,
};

use crate::access::{AccessRecord, EndReason, SaDecision};
use crate::board::{AcceptMode, BackendCounters, BackendStats, PoolBoard};
use crate::counters::{LbCounters, SharedLbCounters};
use crate::flowsync::{Adopt, FlowSyncShared};
use crate::health::{
    http_status, HealthCheck, HealthReport, HealthResult, HealthShared, ProbeKind,
};
use crate::syncache::{Admit, SynCache, SynEntry};
pub use sa::{
    rule_matches, ContentRule, ContentVip, EventKind, SessionEvent, SessionShared, SessionSnap,
    MAX_PENDING,
};
pub use term::TlsVip;

mod accept;
mod adopt;
mod connect;
mod edge;
mod forward;
mod icmp;
mod probes;
mod sa;
mod term;
mod timers;

use crate::tcp::{
    decode_ts, encode_ts, rst_for, segment_len, write_segment, write_syn_options, write_ts_option,
    Segment, SynOptions,
};

/// Client segments one lcore holds while backend handshakes complete.
pub const HOLD_MAX: usize = 128;
/// Frames taken from the steering inbox per poll.
const INBOX_BURST: usize = 64;
/// Cookie time slot: 64 s (a cookie is valid for up to two slots).
const COOKIE_SLOT_S: u64 = 64;
/// Source ports tried per new connection.
const SPORT_TRIES: usize = 64;
/// Flows examined for expiry per tick.
const EXPIRE_BUDGET: usize = 1024;
/// A gap between two ticks longer than this (ms) is a stall of the lcore
/// itself: pending health probes get that time back.
const PROBE_STALL_MS: u64 = 20;
/// MSS assumed when a SYN carries none (RFC 9293).
const DEFAULT_MSS: u16 = 536;

/// A virtual service: address and port, and the pool it spreads over.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct VipConf {
    /// VIP address and port.
    pub addr: SocketAddrV4,
    /// Index of its pool on the [`PoolBoard`].
    pub pool: usize,
    /// TLS pass-through with session-aware dispatch (the backend is chosen
    /// from the ClientHello's session; see `core::sa`).
    pub session_aware: bool,
    /// Takes new connections. A VIP removed while running stays, closed:
    /// its SYNs get a RST, its established flows end naturally.
    pub open: bool,
}

/// What the lcore knows of one VIP address, found by binary search
/// ([`VipIndex`]) instead of scanning every VIP list per packet.
#[derive(Copy, Clone, Debug)]
struct VipEntry {
    pool: u32,
    open: bool,
    session_aware: bool,
    /// Index in the terminator's VIPs (`u32::MAX`: not terminated).
    tls: u32,
    /// Index in `LbConf::content` (`u32::MAX`: no content rules).
    content: u32,
}

impl VipEntry {
    fn tls(&self) -> Option<usize> {
        (self.tls != u32::MAX).then_some(self.tls as usize)
    }
    fn content(&self) -> Option<usize> {
        (self.content != u32::MAX).then_some(self.content as usize)
    }
}

/// The TCP destination port of a valid IPv4 packet at `l3` (0 if the
/// header is cut short: no VIP or source port is 0).
#[inline]
fn tcp_dport<F: Frame>(f: &F, l3: usize) -> u16 {
    let d = f.data();
    let Some(&vihl) = d.get(l3) else { return 0 };
    let l4 = l3 + usize::from(vihl & 0x0f) * 4;
    match d.get(l4 + 2..l4 + 4) {
        Some(b) => u16::from_be_bytes([b[0], b[1]]),
        None => 0,
    }
}

/// The VIPs by address (sorted; rebuilt when the services change) and the
/// VIP IP addresses.
#[derive(Clone, Debug, Default)]
struct VipIndex {
    by_addr: Vec<(u64, VipEntry)>,
    ips: Vec<u32>,
    /// Some VIP is TLS-terminated (else a client segment skips that lookup).
    any_tls: bool,
}

impl VipIndex {
    fn key(a: SocketAddrV4) -> u64 {
        (u64::from(u32::from(*a.ip())) << 16) | u64::from(a.port())
    }

    fn build(vips: &[VipConf], tls: &[TlsVip], content: &[ContentVip]) -> VipIndex {
        let mut by_addr: Vec<(u64, VipEntry)> = Vec::with_capacity(vips.len());
        for v in vips {
            let k = Self::key(v.addr);
            if by_addr.iter().any(|(x, _)| *x == k) {
                continue; // the first entry of an address wins, as before
            }
            by_addr.push((
                k,
                VipEntry {
                    pool: v.pool as u32,
                    open: v.open,
                    session_aware: v.session_aware,
                    tls: tls
                        .iter()
                        .position(|t| t.addr == v.addr)
                        .map_or(u32::MAX, |i| i as u32),
                    content: content
                        .iter()
                        .position(|c| c.addr == v.addr)
                        .map_or(u32::MAX, |i| i as u32),
                },
            ));
        }
        by_addr.sort_unstable_by_key(|(k, _)| *k);
        let mut ips: Vec<u32> = vips.iter().map(|v| u32::from(*v.addr.ip())).collect();
        ips.sort_unstable();
        ips.dedup();
        let any_tls = by_addr.iter().any(|(_, e)| e.tls().is_some());
        VipIndex {
            by_addr,
            ips,
            any_tls,
        }
    }

    /// The TLS-terminated VIP at the packed endpoint `k` (see `key`).
    #[inline]
    fn tls_at(&self, k: u64) -> Option<usize> {
        if !self.any_tls {
            return None;
        }
        self.get_at(k).and_then(VipEntry::tls)
    }

    /// The TLS-terminated VIP at `a`.
    #[inline]
    fn tls(&self, a: SocketAddrV4) -> Option<usize> {
        self.tls_at(Self::key(a))
    }

    #[inline]
    fn get(&self, a: SocketAddrV4) -> Option<&VipEntry> {
        self.get_at(Self::key(a))
    }

    #[inline]
    fn get_at(&self, k: u64) -> Option<&VipEntry> {
        self.by_addr
            .binary_search_by_key(&k, |(x, _)| *x)
            .ok()
            .map(|i| &self.by_addr[i].1)
    }

    #[inline]
    fn has_ip(&self, ip: Ipv4Addr) -> bool {
        self.ips.binary_search(&u32::from(ip)).is_ok()
    }
}

/// One lcore's balancer settings.
#[derive(Clone, Debug)]
pub struct LbConf {
    /// Virtual services.
    pub vips: Vec<VipConf>,
    /// Port index facing clients (owns the VIP addresses).
    pub client_port: usize,
    /// Port index facing backends (owns `local`).
    pub backend_port: usize,
    /// Source address of backend connections.
    pub local: Ipv4Addr,
    /// Source ports of backend connections: `sport_min..=sport_max`,
    /// interleaved over lcores (port `p` belongs to lcore
    /// `(p − sport_min) % lcores`).
    pub sport_min: u16,
    /// See `sport_min`.
    pub sport_max: u16,
    /// This lcore's index among the balancer's lcores.
    pub lcore: u16,
    /// Number of balancer lcores.
    pub lcores: u16,
    /// Flow table size.
    pub max_flows: usize,
    /// Connections waiting for a backend's SYN-ACK at once.
    pub max_connecting: usize,
    /// First backend SYN retransmission timeout, ms (doubles each retry).
    pub syn_rto_ms: u64,
    /// Backend SYN retransmissions before giving up.
    pub syn_retries: u8,
    /// Other backends tried when one refuses (RST to our SYN) or does not
    /// answer within its SYN retries, before the client is reset
    /// (`lb.retries`; HAProxy's `retries` + `option redispatch`). The
    /// client's first segments are held meanwhile, so it sees no failure.
    pub retries: u8,
    /// Remove a flow with no segment for this long, ms.
    pub idle_timeout_ms: u64,
    /// Keep a closed flow this long for late segments, ms.
    pub linger_ms: u64,
    /// MSS announced to clients (what the backend side can carry).
    pub client_mss: u16,
    /// Smallest MSS a peer may make us send (`lb.min_mss`): a SYN announcing
    /// less is taken as announcing this.
    pub min_mss: u16,
    /// Congestion control of the terminated legs (`lb.tcp_congestion`).
    pub congestion: qsplice_tcp::Congestion,
    /// Half-open connections answered statefully per lcore
    /// (`lb.syn_backlog`; beyond: SYN cookies).
    pub syn_backlog: usize,
    /// Stateful SYN answers per second per lcore (`lb.syn_rate`, 0: no
    /// limit; beyond: SYN cookies).
    pub syn_rate: u32,
    /// Largest MSS announced to backends (what the client side can carry).
    pub backend_mss: u16,
    /// Window scale announced to clients that offer window scaling.
    pub vip_ws: u8,
    /// Clock rate (cycles per second).
    pub hz: u64,
    /// Cookie / ISN secret (the same on every lcore).
    pub secret: IsnSecret,
    /// Path of HTTP health checks.
    pub health_path: String,
    /// Expected status of HTTP health checks.
    pub health_status: u16,
    /// VIPs whose TLS this lcore terminates (also listed in `vips`).
    pub tls_vips: Vec<TlsVip>,
    /// Terminated connections one lcore holds at most.
    pub tls_max_conns: usize,
    /// Access log: one connection in this many is logged (1: all; 0: off).
    pub access_sample: u32,
    /// Content-aware (LARD-style) VIPs and their rules.
    pub content: Vec<ContentVip>,
    /// Ports with a kernel interface (exception path), bit `i` for port
    /// `i`: there, TCP the balancer does not serve — to a VIP address on a
    /// port without a VIP, to `local` outside the source port range — is
    /// declined (the engine hands it to the kernel, which runs BGP, SSH, …)
    /// instead of answered with a RST.
    pub kernel_ports: u8,
}

/// What one lcore shares with the control thread and the other lcores.
#[derive(Debug)]
pub struct LbShared<F> {
    /// Published backend state.
    pub board: Arc<PoolBoard>,
    /// This lcore's published counters.
    pub counters: Arc<SharedLbCounters>,
    /// This lcore's published per-backend counters.
    pub backends: Arc<BackendCounters>,
    /// One inbox per lcore for segments of flows it owns that arrived on
    /// another lcore's queue (indexed by lcore).
    pub inboxes: Arc<Vec<ArrayQueue<F>>>,
    /// Health-check queues (the probing lcore only).
    pub health: Option<Arc<HealthShared>>,
    /// The session-aware dispatch table and its learning queue (shared
    /// by every lcore; `None` when no VIP uses it).
    pub sessions: Option<Arc<SessionShared>>,
    /// This lcore's TLS counters per terminated VIP (in `tls_vips` order),
    /// republished every [`TLS_PUBLISH_MS`].
    pub tls: Arc<arc_swap::ArcSwap<Vec<qsplice_tls::TlsStats>>>,
    /// This lcore's published latency histograms.
    pub hists: Arc<crate::hist::SharedLbHists>,
    /// This lcore's access-log ring (None: no access log).
    pub access: Option<Arc<crate::access::AccessRing>>,
    /// The cluster's flow sync (None: off): records of spliced flows go
    /// out, flows this node does not know are looked up and adopted.
    pub flowsync: Option<Arc<FlowSyncShared>>,
}

/// How often an lcore republishes its TLS counters (one allocation each).
pub const TLS_PUBLISH_MS: u64 = 100;

impl<F> Clone for LbShared<F> {
    fn clone(&self) -> Self {
        LbShared {
            board: self.board.clone(),
            counters: self.counters.clone(),
            hists: self.hists.clone(),
            access: self.access.clone(),
            backends: self.backends.clone(),
            inboxes: self.inboxes.clone(),
            health: self.health.clone(),
            sessions: self.sessions.clone(),
            tls: self.tls.clone(),
            flowsync: self.flowsync.clone(),
        }
    }
}

/// Health probes one lcore runs at once.
pub const MAX_PROBES: usize = 64;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum ProbeState {
    SynSent,
    /// Request sent; the response's first byte is at this sequence number.
    AwaitResponse(u32),
}

#[derive(Copy, Clone, Debug)]
struct Probe {
    check: HealthCheck,
    local: SocketAddrV4,
    mac: MacAddr,
    isn: u32,
    /// Our TSval on the SYN (the backend leg's clock).
    tsval: u32,
    state: ProbeState,
    deadline: u64,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    Free,
    Connecting,
    Spliced,
}

/// Per-flow facts beside the splice table's entry.
#[derive(Copy, Clone, Debug)]
struct Meta {
    phase: Phase,
    pool: u16,
    backend: u16,
    client_mac: MacAddr,
    backend_mac: MacAddr,
    client_isn: u32,
    our_isn: u32,
    mss: u16,
    ws: Option<u8>,
    sack: bool,
    ts: bool,
    client_tsval: u32,
    our_tsval: u32,
    /// Our ISN and TSval on the backend leg (monotonic per backend tuple).
    bisn: u32,
    bts: u32,
    client_win: u16,
    server_isn: u32,
    server_tsval: u32,
    backend_ts: bool,
    /// The flow closed (FINs acknowledged or RST) and was taken off its
    /// backend's active count; it lingers for late segments.
    closed: bool,
    tries: u8,
    deadline: u64,
    /// Its index in `LbCore::connecting` while connecting (O(1) removal).
    cidx: u32,
    /// Backends tried for this connection so far (bit `index % 64`): a
    /// refused or silent backend is retried on another (`lb.retries`).
    tried: u64,
    /// Backends tried after the first.
    retried: u8,
    /// When the client's SYN arrived (its SYN cache entry; the handshake
    /// ACK for a cookie): `setup` and `flow_duration` histograms.
    born: u64,
    /// When the first SYN to the current backend went out.
    attempt_at: u64,
    /// The last acknowledgement number the client sent (its receive
    /// point, client leg) and the backend sent (backend leg): where a RST
    /// toward each must be to be accepted (the shutdown reset).
    c_ack: u32,
    s_ack: u32,
    /// When the flow was spliced (0: never).
    spliced_at: u64,
    /// How it ended, for the access log (set where it ends).
    how: EndReason,
    /// Session-aware dispatch's decision (access log).
    sa: SaDecision,
    /// Adopted from another node's record (flow sync), not opened here.
    adopted: bool,
    /// The flow-sync generation it was last published in (low 32 bits).
    pub_gen: u32,
}

impl Meta {
    const FREE: Meta = Meta {
        phase: Phase::Free,
        pool: 0,
        backend: 0,
        client_mac: MacAddr::ZERO,
        backend_mac: MacAddr::ZERO,
        client_isn: 0,
        our_isn: 0,
        mss: 0,
        ws: None,
        sack: false,
        ts: false,
        client_tsval: 0,
        our_tsval: 0,
        bisn: 0,
        bts: 0,
        client_win: 0,
        server_isn: 0,
        server_tsval: 0,
        backend_ts: false,
        closed: false,
        tries: 0,
        deadline: 0,
        cidx: 0,
        tried: 0,
        retried: 0,
        born: 0,
        attempt_at: 0,
        c_ack: 0,
        s_ack: 0,
        spliced_at: 0,
        how: EndReason::Fin,
        sa: SaDecision::None,
        adopted: false,
        pub_gen: 0,
    };
}

/// What a completed handshake agreed (SYN cache entry or cookie).
#[derive(Copy, Clone, Debug)]
struct Accepted {
    /// The client's MSS.
    mss: u16,
    /// The client's window scale (ours was announced iff `Some`).
    ws: Option<u8>,
    /// SACK agreed.
    sack: bool,
    /// The SYN cache entry it came from (to put back if the connection
    /// cannot be made yet and the client will retransmit).
    entry: Option<SynEntry>,
}

/// Parsed IPv4/TCP header facts of a received segment.
#[derive(Copy, Clone, Debug)]
struct Seg {
    src: SocketAddrV4,
    dst: SocketAddrV4,
    /// `src` and `dst` packed for the flow table (built from the header
    /// fields as they are read: see [`qsplice_splice::flow::pack`]).
    key: (u64, u64),
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    win: u16,
    payload: usize,
    eth_src: MacAddr,
}

/// Why a flow is being removed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Gone {
    Failed,
    Aborted,
    Closed,
    /// Left to the cluster at shutdown (flow sync): counted by the caller.
    Left,
}

/// What the access log needs of a flow that left the table.
#[derive(Clone, Copy, Debug)]
struct Ended {
    client: SocketAddrV4,
    vip: SocketAddrV4,
    server: SocketAddrV4,
    bytes: [u64; 2],
}

impl Ended {
    fn of(f: &qsplice_splice::flow::Flow) -> Ended {
        Ended {
            client: f.params.client,
            vip: f.params.vip,
            server: f.params.server,
            bytes: f.bytes,
        }
    }
}

/// One lcore's balancer. See the module docs.
#[derive(Debug)]
pub struct LbCore<F> {
    conf: LbConf,
    shared: LbShared<F>,
    flows: FlowTable,
    /// Half-open connections answered statefully (every VIP kind).
    syncache: SynCache,
    meta: Vec<Meta>,
    connecting: Vec<FlowId>,
    /// No connecting flow's deadline is earlier (a lower bound: removals do
    /// not raise it): `connect_timers` scans only from then on.
    connect_due: u64,
    held: ArrayVec<(FlowId, F), HOLD_MAX>,
    pools: Arc<Vec<Snapshot>>,
    pools_version: u64,
    /// Clock at the last `probe_timers` (stall detection).
    last_tick: u64,
    /// `conf.vips` (with the TLS and content VIPs) by address.
    vix: VipIndex,
    /// The services last taken from the board (see `refresh_pools`).
    services: Arc<crate::board::Services>,
    cursors: Vec<Cursor>,
    bstats: Vec<Vec<BackendStats>>,
    c: LbCounters,
    h: crate::hist::LbHists,
    /// The shutdown reset ran ([`AcceptMode::Reset`]).
    resetting: bool,
    /// The access log's sampling and ring.
    access: crate::access::AccessLogger,
    /// The clock at the last segment or tick (for records made where no
    /// `now` is passed).
    now: u64,
    sport_next: u32,
    ms: u64,
    timers: FlowTimers,
    probes: ArrayVec<Probe, MAX_PROBES>,
    /// `GET <path> HTTP/1.0` request of HTTP checks (built once).
    http_req: Vec<u8>,
    term: term::Terminator,
    sa: sa::SessionAware<F>,
    publishes: u64,
    /// Flow sync: lookups in flight and their answers (see `core/adopt.rs`).
    adopt: adopt::Adoption,
    /// IPv6 legs: stand-ins and translation (see `core/edge.rs`).
    edge: edge::Edge,
    /// "Packet too big" errors this lcore may still take now (see
    /// `core/icmp.rs`).
    ptb_tokens: u32,
}

impl<F: Frame> LbCore<F> {
    /// A balancer lcore. All memory is allocated here.
    pub fn new(conf: LbConf, shared: LbShared<F>) -> Self {
        let ms = (conf.hz / 1000).max(1);
        let pools = shared.board.load();
        let pools_version = shared.board.version();
        let cursors = pools.iter().map(Snapshot::cursor).collect();
        let bstats = pools
            .iter()
            .map(|p| vec![BackendStats::default(); p.backends.len()])
            .collect();
        let timers = FlowTimers {
            idle: conf.idle_timeout_ms.saturating_mul(ms),
            linger: conf.linger_ms.saturating_mul(ms),
        };
        LbCore {
            flows: FlowTable::new(conf.max_flows),
            syncache: SynCache::new(conf.syn_backlog, conf.syn_rate, conf.hz),
            meta: vec![Meta::FREE; conf.max_flows],
            connecting: Vec::with_capacity(conf.max_connecting),
            connect_due: u64::MAX,
            held: ArrayVec::new(),
            pools,
            pools_version,
            services: shared.board.services(),
            vix: VipIndex::build(&conf.vips, &conf.tls_vips, &conf.content),
            last_tick: 0,
            cursors,
            bstats,
            c: LbCounters::default(),
            h: crate::hist::LbHists::default(),
            resetting: false,
            access: crate::access::AccessLogger::new(
                shared.access.clone(),
                conf.access_sample,
            ),
            now: 0,
            // A per-process random start: a restarted appliance does not
            // walk the backends' TIME-WAIT tuples of its predecessor in order.
            sport_next: conf.secret.isn(
                std::net::SocketAddrV4::new(conf.local, 0),
                std::net::SocketAddrV4::new(conf.local, conf.lcore),
                0x5eed_0002,
            ),
            ms,
            timers,
            probes: ArrayVec::new(),
            http_req: format!(
                "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: qsplice-health\r\nConnection: close\r\n\r\n",
                conf.health_path, conf.local
            )
            .into_bytes(),
            term: term::Terminator::new(
                conf.tls_vips.clone(),
                conf.tls_max_conns,
                term::TermTcp {
                    client_mss: conf.client_mss,
                    backend_mss: conf.backend_mss,
                    vip_ws: conf.vip_ws,
                    min_mss: conf.min_mss,
                    congestion: conf.congestion,
                    syn_rto_ms: conf.syn_rto_ms,
                    syn_retries: conf.syn_retries,
                },
            ),
            sa: sa::SessionAware::new(shared.sessions.clone()),
            publishes: 0,
            adopt: adopt::Adoption::new(shared.flowsync.is_some()),
            edge: edge::Edge::new(
                shared.board.services().six.clone(),
                conf.local,
                conf.secret,
                conf.max_flows,
                // A client stand-in outlives any flow of it that sits idle,
                // its linger, and two SYN-cookie slots.
                (conf.idle_timeout_ms + conf.linger_ms + 2 * COOKIE_SLOT_S * 1000 + 2000)
                    .saturating_mul(ms),
            ),
            ptb_tokens: icmp::PTB_BURST,
            conf,
            shared,
        }
    }

    /// Counters so far (working copy).
    pub fn counters(&self) -> &LbCounters {
        &self.c
    }

    /// Flows in the table.
    pub fn flows(&self) -> usize {
        self.flows.len()
    }

    /// Client segments held right now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Which lcore owns backend-side source port `port` (`None`: outside
    /// the balancer's range).
    pub fn owner_of(&self, port: u16) -> Option<u16> {
        if port < self.conf.sport_min || port > self.conf.sport_max {
            return None;
        }
        // No division on every backend segment of a single-lcore balancer.
        match self.conf.lcores {
            0 | 1 => Some(0),
            n => Some((port - self.conf.sport_min) % n),
        }
    }

    /// Does the VIP `vip` take new connections (not removed)?
    fn vip_open(&self, vip: SocketAddrV4) -> bool {
        self.vix.get(vip).is_some_and(|e| e.open)
    }

    fn vip_pool(&self, vip: SocketAddrV4) -> Option<usize> {
        self.vix.get(vip).map(|e| e.pool as usize)
    }

    fn vip_session_aware(&self, vip: SocketAddrV4) -> bool {
        self.vix.get(vip).is_some_and(|e| e.session_aware)
    }

    #[inline]
    fn kernel_path(&self, pi: usize) -> bool {
        pi < 8 && self.conf.kernel_ports & (1 << pi) != 0
    }

    fn is_vip_addr(&self, ip: Ipv4Addr) -> bool {
        self.vix.has_ip(ip)
    }

    /// Ticks of the clock as microseconds.
    fn us(&self, ticks: u64) -> u64 {
        (u128::from(ticks) * 1_000_000 / u128::from(self.conf.hz.max(1))) as u64
    }

    fn ts_clock(&self, now: u64) -> u32 {
        (now / self.ms) as u32
    }

    fn cookie_slot(&self, now: u64) -> u32 {
        (now / self.conf.hz.max(1) / COOKIE_SLOT_S) as u32
    }

    /// Parse the TCP segment at `l3` (IPv4 already validated by the engine)
    /// and verify its checksum: every path — spliced, terminated,
    /// session-aware, health probes — acts on a segment only once it is
    /// known intact (a forged RST or FIN with a bad checksum must not end a
    /// flow the endpoints would keep; a bad SYN must not be answered).
    fn parse(&mut self, f: &F, l3: usize) -> Option<(Seg, SynOptions)> {
        let (s, opts) = self.parse_with(f, l3, true)?;
        self.intact(f, l3).then_some((s, opts))
    }

    /// Whether the TCP checksum of the (parsed) segment in `f` holds; a
    /// segment whose checksum fails is counted (`drop_tcp_bad_checksum`)
    /// and must be dropped.
    ///
    /// Every segment the appliance acts on is checked — anything it
    /// answers, terminates, learns from or that changes a flow's state
    /// (SYN, FIN, RST). One kind is not: a spliced flow's data or ACK
    /// segment ([`Self::pass_through`]) is forwarded with its checksum
    /// updated incrementally (RFC 1624), which carries a wrong checksum
    /// over as wrong as it came: the receiving endpoint drops it, as it
    /// would have without the appliance between (what IP routers and
    /// kernel NAT do). That saves summing every byte of every forwarded
    /// segment a second time.
    fn intact(&mut self, f: &F, l3: usize) -> bool {
        let d = f.data();
        let ip = Ipv4Packet::new_unchecked(&d[l3..]);
        let (sip, dip) = (ip.src_addr(), ip.dst_addr());
        let l4 = l3 + usize::from(ip.header_len());
        let end = l3 + usize::from(ip.total_len());
        let ok = d
            .get(l4..end)
            .is_some_and(|b| TcpPacket::new_unchecked(b).verify_checksum(sip, dip));
        if !ok {
            self.c.drop_tcp_bad_checksum += 1;
        }
        ok
    }

    /// Whether `s`, a segment of the spliced flow `id`, is passed through
    /// without a checksum check (see [`Self::intact`]): a data or ACK
    /// segment — no SYN, FIN or RST — of a flow in the Spliced phase whose
    /// payload nobody reads (the server's first response of a
    /// session-aware flow is read for its session id).
    #[inline]
    fn pass_through(&self, id: FlowId, dir: Dir, flags: TcpFlags) -> bool {
        let m = &self.meta[id as usize];
        m.phase == Phase::Spliced
            && !flags.intersects(TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST)
            && (dir == Dir::C2S || self.sa.is_idle() || m.adopted)
    }

    /// The flow-table key (packed endpoints) and flags of the TCP segment
    /// at `l3` (IPv4 validated by the engine), read with exactly the
    /// length checks of [`Self::parse_with`] and nothing else: what a
    /// spliced flow's segment needs before [`Self::forward`]. `None`: the
    /// full parse decides (and counts why).
    #[inline(always)]
    fn peek(f: &F, l3: usize) -> Option<((u64, u64), TcpFlags)> {
        let d = f.data();
        let ip = d.get(l3..l3 + 20)?;
        let l4 = l3 + usize::from(ip[0] & 0x0f) * 4;
        let end = l3 + usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let tcp = d.get(l4..end)?;
        if tcp.len() < 20 {
            return None;
        }
        let thl = usize::from(tcp[12] >> 4) * 4;
        if thl < 20 || thl > tcp.len() {
            return None;
        }
        let w32 = |b: &[u8], i: usize| {
            u64::from(u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]))
        };
        let w16 = |b: &[u8], i: usize| u64::from(u16::from_be_bytes([b[i], b[i + 1]]));
        let key = (
            w32(ip, 12) << 16 | w16(tcp, 0),
            w32(ip, 16) << 16 | w16(tcp, 2),
        );
        let flags = TcpFlags::from_bits_truncate(u16::from_be_bytes([tcp[12], tcp[13]]));
        Some((key, flags))
    }

    /// The timestamps option of the (already validated) TCP segment in `f`.
    fn timestamps_of(f: &F, l3: usize) -> Option<(u32, u32)> {
        let d = f.data();
        let ip = Ipv4Packet::new_unchecked(d.get(l3..)?);
        let l4 = l3 + usize::from(ip.header_len());
        let end = l3 + usize::from(ip.total_len());
        let tcp = TcpPacket::new_checked(d.get(l4..end)?).ok()?;
        SynOptions::timestamps(tcp.options())
    }

    /// [`Self::parse`] without the checksum check (the caller checks with
    /// [`Self::intact`] before acting on the segment); with `ts` false a
    /// non-SYN segment's timestamps are left unread (`opts.ts` None: see
    /// [`Self::timestamps_of`]).
    ///
    /// Inlined: returned through memory, the pair was written field by
    /// field and read back in wider loads, a store-forwarding stall that
    /// was a fifth of the spliced path (`--bench lb_path`).
    #[inline(always)]
    fn parse_with(&mut self, f: &F, l3: usize, ts: bool) -> Option<(Seg, SynOptions)> {
        let d = f.data();
        let ip = Ipv4Packet::new_unchecked(d.get(l3..)?);
        let (sip, dip) = (ip.src_addr(), ip.dst_addr());
        let l4 = l3 + usize::from(ip.header_len());
        let end = l3 + usize::from(ip.total_len());
        let Some(Ok(tcp)) = d.get(l4..end).map(TcpPacket::new_checked) else {
            self.c.drop_tcp_malformed += 1;
            return None;
        };
        let flags = tcp.flags();
        let opts = if flags.contains(TcpFlags::SYN) {
            let Ok(o) = SynOptions::parse(tcp.options()) else {
                self.c.drop_tcp_malformed += 1;
                return None;
            };
            o
        } else {
            SynOptions {
                ts: if ts {
                    SynOptions::timestamps(tcp.options())
                } else {
                    None
                },
                ..Default::default()
            }
        };
        let (sport, dport) = (tcp.src_port(), tcp.dst_port());
        let seg = Seg {
            src: SocketAddrV4::new(sip, sport),
            dst: SocketAddrV4::new(dip, dport),
            key: (
                u64::from(u32::from(sip)) << 16 | u64::from(sport),
                u64::from(u32::from(dip)) << 16 | u64::from(dport),
            ),
            seq: tcp.seq_number(),
            ack: tcp.ack_number(),
            flags,
            win: tcp.window_len(),
            payload: tcp.payload().len(),
            eth_src: EthernetFrame::new_unchecked(d).src(),
        };
        debug_assert_eq!(
            seg.key,
            (
                qsplice_splice::flow::pack(seg.src),
                qsplice_splice::flow::pack(seg.dst)
            )
        );
        Some((seg, opts))
    }

    /// Rewrite `f` in place into `seg` and queue it on port `pi`.
    fn emit<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        pi: usize,
        mut f: F,
        seg: &Segment<'_>,
    ) {
        let need = segment_len(seg.options.len(), seg.payload.len()).max(crate::tcp::MIN_FRAME);
        if !f.set_len(need) {
            self.c.drop_no_buffer += 1;
            return;
        }
        match write_segment(f.data_mut(), seg) {
            Some(len) => {
                f.set_len(len);
                self.edge.send(io, pi, f);
            }
            None => self.c.drop_no_buffer += 1,
        }
    }

    /// Build `seg` in a new frame and queue it on port `pi`.
    fn emit_new<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, pi: usize, seg: &Segment<'_>) {
        match io.alloc(pi) {
            Some(f) => self.emit(io, pi, f, seg),
            None => self.c.drop_no_buffer += 1,
        }
    }

    /// Answer the segment in `f` with a RST (unless it is one), in place.
    fn reply_rst<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, pi: usize, f: F, s: &Seg) {
        if s.flags.contains(TcpFlags::RST) {
            return;
        }
        let (seq, ack, flags) = rst_for(s.flags, s.seq, s.ack, s.payload);
        let seg = Segment {
            src_mac: io.mac(pi),
            dst_mac: s.eth_src,
            src: s.dst,
            dst: s.src,
            seq,
            ack,
            flags,
            window: 0,
            options: &[],
            payload: &[],
        };
        self.emit(io, pi, f, &seg);
    }

    // ----- client side --------------------------------------------------

    fn on_client<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, f: F, l3: usize, now: u64) {
        self.now = now;
        // A spliced flow's segment: its key and flags, the lookup, on
        // (a terminated VIP's segments go to the terminator below). `early`
        // holds the lookup when it was made here.
        let mut early = None;
        if let Some((key, flags)) = Self::peek(&f, l3) {
            if self.vix.tls_at(key.1).is_none() {
                let hit = self.flows.lookup_packed(key.0, key.1);
                if let Some((id, Dir::C2S)) = hit {
                    if self.pass_through(id, Dir::C2S, flags) {
                        return self.forward(io, f, l3, id, Dir::C2S, now);
                    }
                }
                early = Some(hit);
            }
        }
        // Everything else: the whole parse. (A spliced flow's segment needs
        // no options here — the translation walks them once: the timestamps
        // are read only on the other paths.)
        let Some((s, mut opts)) = self.parse_with(&f, l3, false) else {
            return;
        };
        let syn = s.flags.contains(TcpFlags::SYN);
        if let Some(vi) = self.vix.tls(s.dst) {
            if !self.intact(&f, l3) {
                return;
            }
            if !syn {
                opts.ts = Self::timestamps_of(&f, l3);
            }
            return self.term_client(io, f, l3, vi, &s, &opts, now);
        }
        let hit = early.unwrap_or_else(|| self.flows.lookup_packed(s.key.0, s.key.1));
        if !self.intact(&f, l3) {
            return;
        }
        if let Some((id, dir)) = hit {
            if dir != Dir::C2S {
                self.c.drop_unexpected += 1;
                return;
            }
            let closed = matches!(
                self.flows.get(id).map(|x| x.state),
                Some(FlowState::Linger { .. })
            );
            let new_syn = s.flags.contains(TcpFlags::SYN) && !s.flags.contains(TcpFlags::ACK);
            // An adopted copy sees one direction only and may never reach
            // Linger: a new SYN on its 4-tuple is a new connection too.
            let stale = closed || self.meta[id as usize].adopted;
            if !(stale && new_syn) {
                return self.client_segment(io, f, l3, id, &s, now);
            }
            // The client reuses the 4-tuple of a closed flow: start afresh.
            self.remove_flow(io, id, Gone::Closed);
        }
        if !syn {
            opts.ts = Self::timestamps_of(&f, l3);
        }
        let pi = self.conf.client_port;
        let Some(pool) = self.vip_pool(s.dst) else {
            self.c.syn_no_listener += u64::from(s.flags.contains(TcpFlags::SYN));
            self.c.no_flow += u64::from(!s.flags.contains(TcpFlags::SYN));
            return self.reply_rst(io, pi, f, &s);
        };
        // A segment of a flow another node may have spliced (flow sync):
        // looked up before anything answers it.
        let f = if self.adopt.on() && !syn {
            match self.adopt_client(f, &s, now) {
                Some(f) => f,
                None => return,
            }
        } else {
            f
        };
        let f = if self.vip_session_aware(s.dst) || self.content_rules(s.dst).is_some() {
            match self.sa_client(io, f, l3, &s, pool, now) {
                Some(f) => f,
                None => return,
            }
        } else {
            f
        };
        let syn = s.flags.contains(TcpFlags::SYN);
        let ack = s.flags.contains(TcpFlags::ACK);
        let rst = s.flags.contains(TcpFlags::RST);
        if syn && !ack && !rst && !s.flags.contains(TcpFlags::FIN) {
            self.answer_syn(io, f, &s, &opts, now);
        } else if rst && self.half_open_reset(&s) {
            // The client gave up its handshake: nothing to answer.
        } else if ack && !syn && !rst {
            let _ = self.accept_forced(io, f, &s, &opts, pool, now, None);
        } else {
            self.c.no_flow += 1;
            self.reply_rst(io, pi, f, &s);
        }
    }

    // ----- backend side ---------------------------------------------------

    fn on_backend<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        f: F,
        l3: usize,
        steered: bool,
        now: u64,
    ) {
        // A spliced flow's segment to our address on the lcore that owns
        // its port: its key and flags, the lookup, on. `early` holds the
        // lookup when it was made here.
        let mut early = None;
        if let Some((key, flags)) = Self::peek(&f, l3) {
            let (dip, dport) = ((key.1 >> 16) as u32, key.1 as u16);
            if dip == u32::from(self.conf.local)
                && (steered || self.owner_of(dport) == Some(self.conf.lcore))
            {
                let hit = self.flows.lookup_packed(key.0, key.1);
                if let Some((id, Dir::S2C)) = hit {
                    if self.pass_through(id, Dir::S2C, flags) {
                        return self.forward(io, f, l3, id, Dir::S2C, now);
                    }
                }
                early = Some(hit);
            }
        }
        // Checked below, once it is known whether the segment passes
        // through a spliced flow (see `intact`).
        let Some((s, opts)) = self.parse_with(&f, l3, true) else {
            return;
        };
        let bp = self.conf.backend_port;
        let foreign = *s.dst.ip() != self.conf.local;
        let owner = if foreign {
            FlowSyncShared::owner(s.dst.port(), self.conf.sport_min, self.conf.lcores) as u16
        } else {
            match self.owner_of(s.dst.port()) {
                Some(o) => o,
                None => {
                    if self.intact(&f, l3) {
                        self.c.no_flow += 1;
                        self.reply_rst(io, bp, f, &s);
                    }
                    return;
                }
            }
        };
        if owner != self.conf.lcore && !steered {
            let Some(inbox) = self.shared.inboxes.get(usize::from(owner)) else {
                self.c.drop_unexpected += 1;
                return;
            };
            match inbox.push(f) {
                Ok(()) => self.c.steered_out += 1,
                Err(_) => self.c.steer_full += 1,
            }
            return;
        }
        // The flow table first: a backend tuple is either a spliced flow's
        // or a terminated connection's leg (source ports are allocated
        // against both), and a spliced segment should not pay the
        // terminator's SipHash lookup whenever TLS connections exist.
        let hit = match early {
            Some(hit) => hit,
            None => {
                let hit = self.flows.lookup_packed(s.key.0, s.key.1);
                if let Some((id, Dir::S2C)) = hit {
                    if self.pass_through(id, Dir::S2C, s.flags) {
                        return self.forward(io, f, l3, id, Dir::S2C, now);
                    }
                }
                hit
            }
        };
        if !self.intact(&f, l3) {
            return;
        }
        if foreign && !matches!(hit, Some((_, Dir::S2C))) {
            // A flow of the peer whose address this is, not (yet) installed
            // from its records: no RST (it lives on), the backend retransmits.
            self.c.adopt_backend_miss += 1;
            return;
        }
        let f = if matches!(hit, Some((_, Dir::S2C))) {
            f
        } else {
            match self.term_backend(io, f, l3, &s, now) {
                Some(f) => f,
                None => return,
            }
        };
        let Some((id, Dir::S2C)) = hit else {
            if let Some(i) = self
                .probes
                .iter()
                .position(|p| p.local == s.dst && p.check.addr == s.src)
            {
                return self.probe_segment(io, f, l3, i, &s, &opts);
            }
            // With flow sync, no RST while the segment may belong to a flow
            // that lives on elsewhere: this node's earlier run's (until the
            // sync reloaded them), or one left to the cluster at shutdown.
            if self.adopt.on()
                && (self.resetting
                    || self
                        .shared
                        .flowsync
                        .as_ref()
                        .is_some_and(|fs| !fs.is_ready()))
            {
                self.c.adopt_backend_miss += 1;
                return;
            }
            self.c.no_flow += 1;
            return self.reply_rst(io, bp, f, &s);
        };
        match self.meta[id as usize].phase {
            Phase::Connecting => self.backend_handshake(io, f, id, &s, &opts, now),
            Phase::Spliced => {
                if s.flags.contains(TcpFlags::SYN) {
                    // Our ACK to its SYN-ACK was lost: send it again.
                    if s.flags.contains(TcpFlags::ACK) && s.seq == self.meta[id as usize].server_isn
                    {
                        self.ack_backend(io, f, id);
                    } else {
                        self.c.drop_unexpected += 1;
                    }
                    return;
                }
                self.forward(io, f, l3, id, Dir::S2C, now)
            }
            Phase::Free => self.c.drop_unexpected += 1,
        }
    }
}

impl<Q: Queue> Service<Q> for LbCore<Q::Frame> {
    fn on_ipv4(
        &mut self,
        io: &mut Io<'_, Q>,
        pi: usize,
        f: Q::Frame,
        l3: usize,
        now: u64,
    ) -> Option<Q::Frame> {
        let (proto, src, dst) = {
            let ip = Ipv4Packet::new_unchecked(&f.data()[l3..]);
            (ip.protocol(), ip.src_addr(), ip.dst_addr())
        };
        if proto != ip_proto::TCP {
            return Some(f);
        }
        // Stand-ins never come from the wire: one that does is forged (to
        // reach an IPv6 leg's flow from the IPv4 side).
        if self.edge.on() && crate::six::is_standin(src) {
            self.c.six_forged_source += 1;
            return None;
        }
        if pi == self.conf.backend_port && dst == self.conf.local {
            if self.kernel_path(pi)
                && !(self.conf.sport_min..=self.conf.sport_max).contains(&tcp_dport(&f, l3))
            {
                return Some(f);
            }
            self.on_backend(io, f, l3, false, now);
        } else if pi == self.conf.backend_port && self.adopt.claims(dst) {
            // A dead peer's backend-side address this node took over.
            self.on_backend(io, f, l3, false, now);
        } else if pi == self.conf.client_port && self.is_vip_addr(dst) {
            if self.kernel_path(pi)
                && self
                    .vix
                    .get(SocketAddrV4::new(dst, tcp_dport(&f, l3)))
                    .is_none()
            {
                return Some(f);
            }
            self.on_client(io, f, l3, now);
        } else {
            return Some(f);
        }
        None
    }

    fn on_icmp_error(
        &mut self,
        io: &mut Io<'_, Q>,
        pi: usize,
        f: Q::Frame,
        v6: bool,
        offsets: (usize, usize, usize),
        now: u64,
    ) -> Option<Q::Frame> {
        self.on_icmp(io, pi, f, v6, offsets, false, now)
    }

    fn poll(&mut self, io: &mut Io<'_, Q>, now: u64) -> bool {
        let me = usize::from(self.conf.lcore);
        let mut n = 0;
        // `is_empty` is two plain loads; `pop` on an empty queue issues a
        // full fence (crossbeam's ArrayQueue), once per poll otherwise. A
        // frame pushed just after the check waits for the next poll.
        let queued = self.shared.inboxes.get(me).is_some_and(|q| !q.is_empty());
        while queued && n < INBOX_BURST {
            let Some(f) = self.shared.inboxes.get(me).and_then(ArrayQueue::pop) else {
                break;
            };
            n += 1;
            self.c.steered_in += 1;
            // ICMP errors another lcore handed here; else backend segments.
            let Some(f) = self.steered_icmp(io, f, now) else {
                continue;
            };
            match ethernet_l3(f.data()) {
                Ok((_, l3, _)) => self.on_backend(io, f, l3, true, now),
                Err(_) => self.c.drop_unexpected += 1,
            }
        }
        let adopted = self.adopt.on() && self.adopt_answers(io, now);
        // The receive burst is over: corked TLS client legs send their tails.
        let flushed = self.term_flush(io, now);
        n > 0 || flushed || adopted
    }

    fn tick(&mut self, io: &mut Io<'_, Q>, now: u64) {
        self.now = now;
        self.ptb_tick();
        self.refresh_pools(io, now);
        if !self.resetting && self.shared.board.mode() == AcceptMode::Reset {
            self.resetting = true;
            self.reset_all(io, now);
        }
        self.probe_timers(now);
        self.start_probes(io, now);
        self.connect_timers(io, now);
        self.term_timers(io, now);
        self.sa_timers(io, now);
        self.c.syn_cache_expired += self.syncache.expire(now, 1024) as u64;
        self.c.syn_cache_active = self.syncache.len() as u64;
        self.expire(now);
        if self.edge.on() {
            self.c.six_clients = self.edge.tick(now);
        }
        if self.adopt.on() {
            self.adopt_tick(io, now);
        }
        self.publish();
    }

    fn on_ipv6(
        &mut self,
        io: &mut Io<'_, Q>,
        pi: usize,
        f: Q::Frame,
        proto: u8,
        offsets: (usize, usize, usize),
        now: u64,
    ) -> Option<Q::Frame> {
        if proto != ip_proto::TCP || !self.edge.on() {
            return Some(f);
        }
        self.now = now;
        self.on_ipv6_tcp(io, pi, f, offsets, now)
    }

    fn finish(&mut self, _io: &mut Io<'_, Q>, _now: u64) {
        self.publishes = TLS_PUBLISH_MS - 1;
        self.publish();
    }
}

#[cfg(test)]
mod vip_index_tests {
    use super::*;

    #[test]
    fn finds_each_vip_by_address_and_port() {
        let v = |a: &str, pool, open, sa| VipConf {
            addr: a.parse().unwrap(),
            pool,
            session_aware: sa,
            open,
        };
        let vips = [
            v("10.0.0.2:443", 0, true, false),
            v("10.0.0.1:80", 1, false, false),
            v("10.0.0.1:8443", 2, true, true),
            v("10.0.0.1:80", 3, true, false), // a second entry: the first wins
        ];
        let content = [ContentVip {
            addr: "10.0.0.1:80".parse().unwrap(),
            rules: Arc::new(arc_swap::ArcSwap::from_pointee(Vec::new())),
        }];
        let ix = VipIndex::build(&vips, &[], &content);
        let e = ix.get("10.0.0.1:80".parse().unwrap()).unwrap();
        assert_eq!(
            (e.pool, e.open, e.content(), e.tls()),
            (1, false, Some(0), None)
        );
        let e = ix.get("10.0.0.1:8443".parse().unwrap()).unwrap();
        assert_eq!((e.pool, e.open, e.session_aware), (2, true, true));
        assert_eq!(ix.get("10.0.0.2:443".parse().unwrap()).unwrap().pool, 0);
        assert!(ix.get("10.0.0.2:80".parse().unwrap()).is_none());
        assert!(ix.get("10.0.0.3:443".parse().unwrap()).is_none());
        assert!(ix.has_ip("10.0.0.1".parse().unwrap()));
        assert!(ix.has_ip("10.0.0.2".parse().unwrap()));
        assert!(!ix.has_ip("10.0.0.3".parse().unwrap()));
    }
}
