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

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use arrayvec::ArrayVec;
use crossbeam::queue::ArrayQueue;
use qsplice_engine::{Io, Service};
use qsplice_netdev::{Frame, Queue};
use qsplice_pool::{client_hash, Cursor, Snapshot};
use qsplice_splice::flow::{Dir, FlowId, FlowState, FlowTable, FlowTimers, InsertError};
use qsplice_splice::isn::{IsnSecret, SynCookie};
use qsplice_splice::translate::{scale_window, translate, SpliceParams};
use qsplice_wire::{
    ethernet_l3, ip_proto, EthernetFrame, Ipv4Packet, MacAddr, TcpFlags, TcpPacket,
};

use crate::access::{AccessRecord, EndReason, SaDecision};
use crate::board::{AcceptMode, BackendCounters, BackendStats, PoolBoard};
use crate::counters::{LbCounters, SharedLbCounters};
use crate::health::{
    http_status, HealthCheck, HealthReport, HealthResult, HealthShared, ProbeKind,
};
use crate::syncache::{Admit, SynCache, SynEntry};
pub use sa::{
    rule_matches, ContentRule, ContentVip, EventKind, SessionEvent, SessionShared, SessionSnap,
    MAX_PENDING,
};
pub use term::TlsVip;

mod sa;
mod term;

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
        tried: 0,
        retried: 0,
        born: 0,
        attempt_at: 0,
        c_ack: 0,
        s_ack: 0,
        spliced_at: 0,
        how: EndReason::Fin,
        sa: SaDecision::None,
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
    held: ArrayVec<(FlowId, F), HOLD_MAX>,
    pools: Arc<Vec<Snapshot>>,
    pools_version: u64,
    /// Clock at the last `probe_timers` (stall detection).
    last_tick: u64,
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
            held: ArrayVec::new(),
            pools,
            pools_version,
            services: shared.board.services(),
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
        Some((port - self.conf.sport_min) % self.conf.lcores.max(1))
    }

    /// Does the VIP `vip` take new connections (not removed)?
    fn vip_open(&self, vip: SocketAddrV4) -> bool {
        self.conf.vips.iter().any(|v| v.addr == vip && v.open)
    }

    fn vip_pool(&self, vip: SocketAddrV4) -> Option<usize> {
        self.conf
            .vips
            .iter()
            .find(|v| v.addr == vip)
            .map(|v| v.pool)
    }

    fn vip_session_aware(&self, vip: SocketAddrV4) -> bool {
        self.conf
            .vips
            .iter()
            .any(|v| v.addr == vip && v.session_aware)
    }

    fn is_vip_addr(&self, ip: Ipv4Addr) -> bool {
        self.conf.vips.iter().any(|v| *v.addr.ip() == ip)
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
        self.parse_with(f, l3, true)
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

    /// [`Self::parse`]; with `ts` false a non-SYN segment's timestamps are
    /// left unread (`opts.ts` None: see [`Self::timestamps_of`]).
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
        if !tcp.verify_checksum(sip, dip) {
            self.c.drop_tcp_bad_checksum += 1;
            return None;
        }
        let seg = Seg {
            src: SocketAddrV4::new(sip, tcp.src_port()),
            dst: SocketAddrV4::new(dip, tcp.dst_port()),
            seq: tcp.seq_number(),
            ack: tcp.ack_number(),
            flags,
            win: tcp.window_len(),
            payload: tcp.payload().len(),
            eth_src: EthernetFrame::new_unchecked(d).src(),
        };
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
                io.send(pi, f);
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
        // A spliced flow's segment needs no options here (the translation
        // walks them once): the timestamps are read only on the other paths.
        let Some((s, mut opts)) = self.parse_with(&f, l3, false) else {
            return;
        };
        let syn = s.flags.contains(TcpFlags::SYN);
        if let Some(vi) = self.term.vip_at(s.dst) {
            if !syn {
                opts.ts = Self::timestamps_of(&f, l3);
            }
            return self.term_client(io, f, l3, vi, &s, &opts, now);
        }
        if let Some((id, dir)) = self.flows.lookup(s.src, s.dst) {
            if dir != Dir::C2S {
                self.c.drop_unexpected += 1;
                return;
            }
            let closed = matches!(
                self.flows.get(id).map(|x| x.state),
                Some(FlowState::Linger { .. })
            );
            let new_syn = s.flags.contains(TcpFlags::SYN) && !s.flags.contains(TcpFlags::ACK);
            if !(closed && new_syn) {
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

    /// The client's ACK `s` completes a handshake we answered: from its SYN
    /// cache entry (consumed) or its cookie. `None`: neither (a forged or
    /// stale ACK, or a live flow's segment on the wrong lcore).
    fn complete_handshake(&mut self, s: &Seg, opts: &SynOptions, now: u64) -> Option<Accepted> {
        if let Some(e) = self.syncache.take(s.src, s.dst, s.seq, s.ack) {
            self.c.syn_cache_hits += 1;
            return Some(Accepted {
                mss: e.mss,
                ws: e.ws,
                sack: e.sack,
                entry: Some(e),
            });
        }
        let slot = self.cookie_slot(now);
        let mss = SynCookie::decode(&self.conf.secret, s.src, s.dst, s.seq, s.ack, slot)?;
        self.c.cookie_ok += 1;
        let (ws, sack) = match opts.ts {
            Some((_, tsecr)) => decode_ts(tsecr),
            None => (None, false),
        };
        Some(Accepted {
            mss: mss.max(self.conf.min_mss),
            ws,
            sack,
            entry: None,
        })
    }

    /// Would `s` complete a handshake (SYN cache entry or cookie)? Nothing
    /// is consumed: session-aware dispatch checks the first data segment
    /// before it holds the hello.
    fn handshake_valid(&self, s: &Seg, now: u64) -> bool {
        if let Some(e) = self.syncache.get(s.src, s.dst) {
            if s.seq == e.irs.wrapping_add(1) && s.ack == e.iss.wrapping_add(1) {
                return true;
            }
        }
        let slot = self.cookie_slot(now);
        SynCookie::decode(&self.conf.secret, s.src, s.dst, s.seq, s.ack, slot).is_some()
    }

    /// A client RST for its own half-open entry (sequence number exactly
    /// where its data would start, RFC 5961): the entry is dropped.
    fn half_open_reset(&mut self, s: &Seg) -> bool {
        match self.syncache.get(s.src, s.dst) {
            Some(e) if s.seq == e.irs.wrapping_add(1) => self.syncache.remove(s.src, s.dst),
            _ => false,
        }
    }

    /// Our ISN for a SYN answered statefully: RFC 6528 (keyed hash of the
    /// tuple plus a 4 µs clock), not a valid cookie.
    fn stateful_isn(&self, client: SocketAddrV4, vip: SocketAddrV4, now: u64) -> u32 {
        let us4 = (u128::from(now) * 250_000 / u128::from(self.conf.hz.max(1))) as u32;
        self.conf
            .secret
            .isn(client, vip, 0x5eed_0003)
            .wrapping_add(us4)
    }

    /// SYN to a VIP (any kind): SYN-ACK from the SYN cache while it has
    /// room and the SYN rate is under `syn_rate` (full options: the
    /// client's exact MSS, window scale and SACK whether or not it sends
    /// timestamps), else a SYN cookie keeping no state (window scale and
    /// SACK only through the timestamp bits, as Linux does).
    fn answer_syn<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        f: F,
        s: &Seg,
        opts: &SynOptions,
        now: u64,
    ) {
        if self.shared.board.mode() != AcceptMode::Serving {
            self.c.syn_refused_shutdown += 1;
            let pi = self.conf.client_port;
            return self.reply_rst(io, pi, f, s);
        }
        if !self.vip_open(s.dst) {
            self.c.syn_refused_removed += 1;
            let pi = self.conf.client_port;
            return self.reply_rst(io, pi, f, s);
        }
        self.c.syn_received += 1;
        let mss = opts.mss.unwrap_or(DEFAULT_MSS);
        if mss < self.conf.min_mss {
            self.c.mss_clamped += 1;
        }
        let mss = mss.max(self.conf.min_mss);
        // A retransmitted SYN of a held entry: the same answer again.
        let held = self
            .syncache
            .get(s.src, s.dst)
            .filter(|e| e.irs == s.seq)
            .copied();
        let entry = match held {
            Some(e) => Some(e),
            None => match self.syncache.admit(now) {
                Admit::Stateful => {
                    let e = SynEntry {
                        irs: s.seq,
                        iss: self.stateful_isn(s.src, s.dst, now),
                        mss,
                        ws: opts.ws,
                        sack: opts.sack_ok,
                        ts: opts.ts.map(|t| t.0),
                        our_tsval: self.ts_clock(now),
                        created: now,
                    };
                    if self.syncache.insert(s.src, s.dst, e) {
                        self.c.syn_stateful += 1;
                        Some(e)
                    } else {
                        self.c.syn_cache_full += 1;
                        None
                    }
                }
                Admit::Full => {
                    self.c.syn_cache_full += 1;
                    None
                }
                Admit::RateLimited => {
                    self.c.syn_rate_limited += 1;
                    None
                }
            },
        };
        let (isn, ours) = match entry {
            Some(e) => (
                e.iss,
                SynOptions {
                    mss: Some(self.conf.client_mss),
                    ws: e.ws.map(|_| self.conf.vip_ws),
                    sack_ok: e.sack,
                    ts: e.ts.map(|v| (e.our_tsval, v)),
                },
            ),
            None => {
                self.c.syn_cookies += 1;
                let cookie = SynCookie::encode(
                    &self.conf.secret,
                    s.src,
                    s.dst,
                    s.seq,
                    mss,
                    self.cookie_slot(now),
                );
                // Without timestamps there is nowhere to keep the client's
                // window scale and SACK-permitted: offer neither (as Linux).
                let ts = opts.ts.map(|(tsval, _)| {
                    (encode_ts(self.ts_clock(now), opts.ws, opts.sack_ok), tsval)
                });
                (
                    cookie,
                    SynOptions {
                        mss: Some(self.conf.client_mss),
                        ws: (ts.is_some() && opts.ws.is_some()).then_some(self.conf.vip_ws),
                        sack_ok: ts.is_some() && opts.sack_ok,
                        ts,
                    },
                )
            }
        };
        let mut ob = [0u8; 40];
        let n = write_syn_options(&mut ob, &ours);
        let pi = self.conf.client_port;
        let seg = Segment {
            src_mac: io.mac(pi),
            dst_mac: s.eth_src,
            src: s.dst,
            dst: s.src,
            seq: isn,
            ack: s.seq.wrapping_add(1),
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: u16::MAX,
            options: &ob[..n],
            payload: &[],
        };
        self.emit(io, pi, f, &seg);
    }

    /// An ACK for no flow: if its cookie checks out, choose a backend and
    /// open the backend leg.
    /// A handshake ACK (or the first data segment) with a valid cookie:
    /// open the backend leg — to backend `forced` when given (chosen by
    /// session-aware or content-aware dispatch), else to the scheduler's
    /// choice. Returns the new flow.
    #[allow(clippy::too_many_arguments)]
    fn accept_forced<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        f: F,
        s: &Seg,
        opts: &SynOptions,
        pool: usize,
        now: u64,
        forced: Option<usize>,
    ) -> Option<FlowId> {
        let pi = self.conf.client_port;
        if self.shared.board.mode() != AcceptMode::Serving {
            self.c.syn_refused_shutdown += 1;
            self.reply_rst(io, pi, f, s);
            return None;
        }
        let Some(acc) = self.complete_handshake(s, opts, now) else {
            self.c.cookie_bad += 1;
            // With several lcores the segment may belong to a live flow that
            // another lcore owns (net_af_packet's fanout rolls packets over
            // to another queue when a ring is full): a RST from here would
            // kill it. Drop; TCP retransmits. A single lcore owns every flow,
            // so there the segment really is for no connection.
            if self.conf.lcores > 1 {
                return None;
            }
            {
                self.reply_rst(io, pi, f, s);
                return None;
            }
        };
        // A new connection's handshake (its SYN cache entry or a valid
        // cookie), so not a draining flow's stray segment: a removed VIP
        // refuses it.
        if !self.vip_open(s.dst) {
            self.c.syn_refused_removed += 1;
            self.reply_rst(io, pi, f, s);
            return None;
        }
        let Accepted {
            mss,
            ws,
            sack,
            entry,
        } = acc;
        let born = entry.map(|e| e.created);
        if self.connecting.len() >= self.conf.max_connecting {
            self.c.connecting_full += 1;
            {
                self.reply_rst(io, pi, f, s);
                return None;
            }
        }
        let Some(snap) = self.pools.get(pool) else {
            self.c.conn_no_backend += 1;
            {
                self.reply_rst(io, pi, f, s);
                return None;
            }
        };
        let picked = match forced {
            Some(b) => Some(b),
            None => self
                .cursors
                .get_mut(pool)
                .and_then(|cur| snap.pick(client_hash(*s.src.ip()), cur)),
        };
        let Some(b) = picked else {
            self.c.conn_no_backend += 1;
            {
                self.reply_rst(io, pi, f, s);
                return None;
            }
        };
        let server = snap.backends[b].addr;
        let bp = self.conf.backend_port;
        let Some(backend_mac) = io.resolve(bp, *server.ip()) else {
            // The client retransmits; by then ARP has answered. Its SYN
            // cache entry must still be there to complete the handshake.
            if let Some(e) = acc.entry {
                self.syncache.insert(s.src, s.dst, e);
            }
            self.c.drop_unresolved += 1;
            return None;
        };
        let Some(sport) = self.alloc_sport(server) else {
            self.c.no_source_port += 1;
            {
                self.reply_rst(io, pi, f, s);
                return None;
            }
        };
        let cws = ws.unwrap_or(0);
        let local = SocketAddrV4::new(self.conf.local, sport);
        let params = SpliceParams {
            client: s.src,
            vip: s.dst,
            local,
            server,
            c2s_seq_delta: 0,
            s2c_seq_delta: 0,
            c2s_ts_delta: 0,
            s2c_ts_delta: 0,
            client_ws: cws,
            vip_ws: if ws.is_some() { self.conf.vip_ws } else { 0 },
            local_ws: cws,
            server_ws: 0,
        };
        let id = match self.flows.insert(params, now) {
            Ok(id) => id,
            Err(InsertError::Full) => {
                self.c.flow_table_full += 1;
                {
                    self.reply_rst(io, pi, f, s);
                    return None;
                }
            }
            Err(InsertError::Exists) => {
                self.c.drop_unexpected += 1;
                return None;
            }
        };
        let (client_tsval, our_tsval) = opts.ts.unwrap_or((0, 0));
        let (bisn, bts) = self.backend_isn_ts(local, server, now);
        self.meta[id as usize] = Meta {
            phase: Phase::Connecting,
            pool: pool as u16,
            backend: b as u16,
            client_mac: s.eth_src,
            backend_mac,
            client_isn: s.seq.wrapping_sub(1),
            our_isn: s.ack.wrapping_sub(1),
            mss,
            ws,
            sack,
            ts: opts.ts.is_some(),
            client_tsval,
            our_tsval,
            bisn,
            bts,
            client_win: s.win,
            server_isn: 0,
            server_tsval: 0,
            backend_ts: false,
            closed: false,
            tries: 0,
            deadline: now + self.conf.syn_rto_ms * self.ms,
            tried: 1u64 << (b % 64),
            retried: 0,
            born: born.unwrap_or(now),
            attempt_at: now,
            c_ack: s.ack,
            s_ack: 0,
            spliced_at: 0,
            how: EndReason::Fin,
            sa: SaDecision::None,
        };
        self.connecting.push(id);
        self.c.conn_opened += 1;
        if let Some(cur) = self.cursors.get_mut(pool) {
            if let Some(l) = cur.local_conns.get_mut(b) {
                *l += 1;
            }
        }
        self.bstat(pool, b, |st| st.opened += 1);
        self.send_backend_syn(io, id);
        if s.payload > 0 || s.flags.contains(TcpFlags::FIN) {
            self.hold(id, f);
        }
        Some(id)
    }

    /// Our ISN and TSval toward `server` from `local`. The ISN is RFC 6528's
    /// keyed hash of the tuple plus a 4 µs clock; the TSval is the
    /// machine's TSC in ms (it runs on across restarts of the appliance,
    /// unlike anything keyed by a per-process secret). Both are monotonic
    /// per tuple, so when a source port is reused toward a backend that
    /// still holds the previous connection in TIME-WAIT, the new SYN is
    /// newer than what it remembers and is accepted (RFC 6191). A client's
    /// own ISN and TSval are random relative to the previous user's of the
    /// tuple: reusing them (the paper's trick) was measured to get about 1
    /// in 4 reused tuples refused, and a per-process TS key did the same
    /// after every restart.
    fn backend_isn_ts(&self, local: SocketAddrV4, server: SocketAddrV4, now: u64) -> (u32, u32) {
        let us4 = (u128::from(now) * 250_000 / u128::from(self.conf.hz.max(1))) as u32;
        let isn = self.conf.secret.isn(local, server, 0x5eed_0001);
        (isn.wrapping_add(us4), self.ts_clock(now))
    }

    fn bstat(&mut self, pool: usize, b: usize, f: impl FnOnce(&mut BackendStats)) {
        if let Some(st) = self.bstats.get_mut(pool).and_then(|p| p.get_mut(b)) {
            f(st);
        }
    }

    /// A free source port owned by this lcore toward `server`.
    fn alloc_sport(&mut self, server: SocketAddrV4) -> Option<u16> {
        let lcores = u32::from(self.conf.lcores.max(1));
        let base = u32::from(self.conf.sport_min) + u32::from(self.conf.lcore);
        let max = u32::from(self.conf.sport_max);
        if base > max {
            return None;
        }
        let count = (max - base) / lcores + 1;
        for _ in 0..SPORT_TRIES.min(count as usize) {
            let k = self.sport_next % count;
            self.sport_next = self.sport_next.wrapping_add(1);
            let port = (base + k * lcores) as u16;
            let local = SocketAddrV4::new(self.conf.local, port);
            if self.flows.lookup(server, local).is_none()
                && !self.term.owns_backend(server, port)
                && !self
                    .probes
                    .iter()
                    .any(|p| p.local == local && p.check.addr == server)
            {
                return Some(port);
            }
        }
        None
    }

    fn hold(&mut self, id: FlowId, f: F) {
        match self.held.try_push((id, f)) {
            Ok(()) => self.c.held += 1,
            Err(_) => self.c.held_dropped += 1,
        }
    }

    fn send_backend_syn<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, id: FlowId) {
        let (Some(flow), Some(m)) = (self.flows.get(id), self.meta.get(id as usize)) else {
            return;
        };
        let m = *m;
        let p = flow.params;
        let opts = SynOptions {
            mss: Some(m.mss.min(self.conf.backend_mss)),
            ws: m.ws,
            sack_ok: m.sack,
            ts: m.ts.then_some((m.bts, 0)),
        };
        let mut ob = [0u8; 40];
        let n = write_syn_options(&mut ob, &opts);
        let bp = self.conf.backend_port;
        let window = scale_window(m.client_win, m.ws.unwrap_or(0) as i8);
        let seg = Segment {
            src_mac: io.mac(bp),
            dst_mac: m.backend_mac,
            src: p.local,
            dst: p.server,
            seq: m.bisn,
            ack: 0,
            flags: TcpFlags::SYN,
            window,
            options: &ob[..n],
            payload: &[],
        };
        self.emit_new(io, bp, &seg);
    }

    fn client_segment<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        f: F,
        l3: usize,
        id: FlowId,
        s: &Seg,
        now: u64,
    ) {
        match self.meta[id as usize].phase {
            Phase::Spliced => self.forward(io, f, l3, id, Dir::C2S, now),
            Phase::Connecting => {
                if s.flags.contains(TcpFlags::RST) {
                    self.c.conn_client_abort += 1;
                    self.meta[id as usize].how = EndReason::ClientAbort;
                    self.remove_flow(io, id, Gone::Aborted);
                } else if s.payload > 0 || s.flags.contains(TcpFlags::FIN) {
                    self.hold(id, f);
                } else {
                    // A pure ACK (window update, duplicate handshake ACK):
                    // the backend gets our own ACK instead.
                    self.c.held_dropped += 1;
                }
            }
            Phase::Free => self.c.drop_unexpected += 1,
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
        let Some((s, opts)) = self.parse(&f, l3) else {
            return;
        };
        let bp = self.conf.backend_port;
        let Some(owner) = self.owner_of(s.dst.port()) else {
            self.c.no_flow += 1;
            return self.reply_rst(io, bp, f, &s);
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
        let f = match self.term_backend(io, f, l3, &s, now) {
            Some(f) => f,
            None => return,
        };
        let Some((id, Dir::S2C)) = self.flows.lookup(s.src, s.dst) else {
            if let Some(i) = self
                .probes
                .iter()
                .position(|p| p.local == s.dst && p.check.addr == s.src)
            {
                return self.probe_segment(io, f, l3, i, &s, &opts);
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

    fn backend_handshake<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        f: F,
        id: FlowId,
        s: &Seg,
        opts: &SynOptions,
        now: u64,
    ) {
        let m = self.meta[id as usize];
        let acceptable = s.flags.contains(TcpFlags::ACK) && s.ack == m.bisn.wrapping_add(1);
        if s.flags.contains(TcpFlags::RST) {
            if acceptable {
                self.c.conn_refused += 1;
                self.bstat(m.pool.into(), m.backend.into(), |st| st.failed += 1);
                if self.redispatch(io, id, now) {
                    return;
                }
                self.reset_client(io, id);
                self.remove_flow(io, id, Gone::Failed);
            } else {
                self.c.drop_unexpected += 1;
            }
            return;
        }
        if !s.flags.contains(TcpFlags::SYN) || !acceptable {
            self.c.drop_unexpected += 1;
            return;
        }
        let Some(flow) = self.flows.get_mut(id) else {
            return;
        };
        let mut p = flow.params;
        // Window scaling on the backend leg only if both ends agreed.
        let (local_ws, server_ws) = match (m.ws, opts.ws) {
            (Some(c), Some(sv)) => (c, sv),
            _ => (0, 0),
        };
        let backend_ts = m.ts && opts.ts.is_some();
        let server_tsval = opts.ts.map_or(0, |t| t.0);
        p.local_ws = local_ws;
        p.server_ws = server_ws;
        p.s2c_seq_delta = m.our_isn.wrapping_sub(s.seq);
        p.c2s_seq_delta = m.bisn.wrapping_sub(m.client_isn);
        p.c2s_ts_delta = if backend_ts {
            m.bts.wrapping_sub(m.client_tsval)
        } else {
            0
        };
        p.s2c_ts_delta = if backend_ts {
            m.our_tsval.wrapping_sub(server_tsval)
        } else {
            0
        };
        flow.rebase(p);
        flow.last_seen = now;
        let meta = &mut self.meta[id as usize];
        meta.server_isn = s.seq;
        meta.server_tsval = server_tsval;
        meta.backend_ts = backend_ts;
        meta.phase = Phase::Spliced;
        meta.s_ack = s.ack;
        meta.spliced_at = now;
        let (born, attempt_at) = (meta.born, meta.attempt_at);
        self.h.setup.record(self.us(now.saturating_sub(born)));
        self.h
            .backend_connect
            .record(self.us(now.saturating_sub(attempt_at)));
        self.connecting.retain(|x| *x != id);
        self.c.conn_spliced += 1;
        self.bstat(m.pool.into(), m.backend.into(), |st| {
            st.active += 1;
            st.spliced += 1;
        });
        self.ack_backend(io, f, id);
        // Release what the client sent meanwhile, in order.
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].0 == id {
                let (_, hf) = self.held.remove(i);
                match ethernet_l3(hf.data()) {
                    Ok((_, l3, _)) => self.forward(io, hf, l3, id, Dir::C2S, now),
                    Err(_) => self.c.drop_unexpected += 1,
                }
            } else {
                i += 1;
            }
        }
    }

    /// The ACK completing the backend handshake, written into `f`.
    fn ack_backend<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, f: F, id: FlowId) {
        let (Some(flow), Some(m)) = (self.flows.get(id), self.meta.get(id as usize)) else {
            return;
        };
        let m = *m;
        let p = flow.params;
        let mut ob = [0u8; 40];
        let n = if m.backend_ts {
            write_ts_option(&mut ob, m.bts, m.server_tsval)
        } else {
            0
        };
        let bp = self.conf.backend_port;
        let seg = Segment {
            src_mac: io.mac(bp),
            dst_mac: m.backend_mac,
            src: p.local,
            dst: p.server,
            seq: m.bisn.wrapping_add(1),
            ack: m.server_isn.wrapping_add(1),
            flags: TcpFlags::ACK,
            window: scale_window(m.client_win, flow.c2s.win_shift),
            options: &ob[..n],
            payload: &[],
        };
        self.emit(io, bp, f, &seg);
    }

    /// RST to the client of flow `id` (its backend failed).
    fn reset_client<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, id: FlowId) {
        let (Some(flow), Some(m)) = (self.flows.get(id), self.meta.get(id as usize)) else {
            return;
        };
        let m = *m;
        let p = flow.params;
        let pi = self.conf.client_port;
        let seg = Segment {
            src_mac: io.mac(pi),
            dst_mac: m.client_mac,
            src: p.vip,
            dst: p.client,
            seq: m.our_isn.wrapping_add(1),
            ack: 0,
            flags: TcpFlags::RST,
            window: 0,
            options: &[],
            payload: &[],
        };
        self.emit_new(io, pi, &seg);
    }

    // ----- spliced ----------------------------------------------------------

    /// Translate a segment of a spliced flow and send it to the other leg.
    fn forward<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        mut f: F,
        l3: usize,
        id: FlowId,
        dir: Dir,
        now: u64,
    ) {
        if dir == Dir::S2C && !self.sa.is_idle() {
            self.sa_learn(id, f.data(), l3);
        }
        let Some(flow) = self.flows.get_mut(id) else {
            self.c.drop_unexpected += 1;
            return;
        };
        // The sender's acknowledgement number as it sent it (before the
        // rewrite): the peer-side point a shutdown RST must hit.
        let raw_ack = {
            let d = f.data();
            let l4 = l3 + usize::from(d.get(l3).map_or(5, |b| b & 0x0f)) * 4;
            d.get(l4 + 8..l4 + 12)
                .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let t = match translate(f.data_mut(), l3, flow.translation(dir)) {
            Ok(t) => t,
            Err(_) => {
                self.c.drop_translate += 1;
                return;
            }
        };
        flow.on_segment(dir, &t, now, &self.timers);
        if t.flags.contains(TcpFlags::ACK) {
            let m = &mut self.meta[id as usize];
            match dir {
                Dir::C2S => m.c_ack = raw_ack,
                Dir::S2C => m.s_ack = raw_ack,
            }
        }
        let lingering = matches!(flow.state, FlowState::Linger { .. });
        let fins = flow.both_fins();
        // A session stops being served once both sides have sent FIN (not
        // when the last FIN is acknowledged: a client's next connection,
        // possibly on another lcore, would race that last ACK).
        if fins && !self.sa.serves_none() {
            self.sa_forget(id);
        }
        if lingering && !self.meta[id as usize].closed {
            let how = if t.flags.contains(TcpFlags::RST) {
                EndReason::Reset
            } else {
                EndReason::Fin
            };
            self.mark_closed(id, now, how);
        }
        let m = self.meta[id as usize];
        let bytes = t.payload_len as u64;
        let rst = t.flags.contains(TcpFlags::RST);
        let st = self
            .bstats
            .get_mut(usize::from(m.pool))
            .and_then(|p| p.get_mut(usize::from(m.backend)));
        let (pi, dst_mac) = match dir {
            Dir::C2S => {
                self.c.c2s_packets += 1;
                self.c.c2s_bytes += bytes;
                if let Some(st) = st {
                    st.c2s_packets += 1;
                    st.c2s_bytes += bytes;
                    st.reset += u64::from(rst);
                }
                (self.conf.backend_port, m.backend_mac)
            }
            Dir::S2C => {
                self.c.s2c_packets += 1;
                self.c.s2c_bytes += bytes;
                if let Some(st) = st {
                    st.s2c_packets += 1;
                    st.s2c_bytes += bytes;
                    st.reset += u64::from(rst);
                }
                (self.conf.client_port, m.client_mac)
            }
        };
        {
            let mut eth = EthernetFrame::new_unchecked(f.data_mut());
            eth.set_src(io.mac(pi));
            eth.set_dst(dst_mac);
        }
        io.send(pi, f);
    }

    // ----- health probes ----------------------------------------------------

    fn report_probe(&mut self, check: &HealthCheck, result: HealthResult) {
        if let Some(h) = &self.shared.health {
            let _ = h.results.push(HealthReport {
                pool: check.pool,
                backend: check.backend,
                token: check.token,
                result,
            });
        }
    }

    /// Take scheduled checks and send their SYNs.
    fn start_probes<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, now: u64) {
        let Some(h) = self.shared.health.clone() else {
            return;
        };
        while !self.probes.is_full() {
            let Some(check) = h.checks.pop() else {
                break;
            };
            let bp = self.conf.backend_port;
            let Some(mac) = io.resolve(bp, *check.addr.ip()) else {
                self.report_probe(&check, HealthResult::Unresolved);
                continue;
            };
            let Some(sport) = self.alloc_sport(check.addr) else {
                self.report_probe(&check, HealthResult::NoResources);
                continue;
            };
            // The probe's source port was a data flow's a moment ago, and
            // the backend may still hold that 4-tuple in TIME-WAIT: a SYN
            // there is taken as a new connection only when its ISN or its
            // timestamp is newer than the old connection's (RFC 6191), so
            // the probe takes both from the backend legs' clocks. A random
            // ISN without timestamps was answered with the TIME-WAIT ACK
            // half the time, and a busy backend timed out its checks.
            let local = SocketAddrV4::new(self.conf.local, sport);
            let (isn, tsval) = self.backend_isn_ts(local, check.addr, now);
            let probe = Probe {
                check,
                local,
                mac,
                isn,
                tsval,
                state: ProbeState::SynSent,
                deadline: now + check.timeout_ms.max(1) * self.ms,
            };
            let mut ob = [0u8; 40];
            let n = write_syn_options(
                &mut ob,
                &SynOptions {
                    mss: Some(self.conf.backend_mss),
                    ts: Some((tsval, 0)),
                    ..Default::default()
                },
            );
            let seg = Segment {
                src_mac: io.mac(bp),
                dst_mac: mac,
                src: probe.local,
                dst: check.addr,
                seq: probe.isn,
                ack: 0,
                flags: TcpFlags::SYN,
                window: 65535,
                options: &ob[..n],
                payload: &[],
            };
            self.probes.push(probe);
            self.emit_new(io, bp, &seg);
        }
    }

    /// A backend segment for probe `i`.
    fn probe_segment<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        f: F,
        l3: usize,
        i: usize,
        s: &Seg,
        opts: &SynOptions,
    ) {
        let p = self.probes[i];
        let bp = self.conf.backend_port;
        if s.flags.contains(TcpFlags::RST) {
            self.probes.remove(i);
            let r = match p.state {
                ProbeState::SynSent => HealthResult::Refused,
                ProbeState::AwaitResponse(_) => HealthResult::BadStatus,
            };
            return self.report_probe(&p.check, r);
        }
        let mut seg = Segment {
            src_mac: io.mac(bp),
            dst_mac: p.mac,
            src: p.local,
            dst: p.check.addr,
            seq: p.isn.wrapping_add(1),
            ack: 0,
            flags: TcpFlags::RST,
            window: 0,
            options: &[],
            payload: &[],
        };
        match p.state {
            ProbeState::SynSent => {
                if !s.flags.contains(TcpFlags::SYN | TcpFlags::ACK)
                    || s.ack != p.isn.wrapping_add(1)
                {
                    return;
                }
                if p.check.kind == ProbeKind::Tcp {
                    self.probes.remove(i);
                    self.report_probe(&p.check, HealthResult::Up);
                    return self.emit(io, bp, f, &seg);
                }
                self.probes[i].state = ProbeState::AwaitResponse(s.seq.wrapping_add(1));
                let req = std::mem::take(&mut self.http_req);
                // Timestamps agreed on the SYN-ACK go on every segment.
                let mut ob = [0u8; 40];
                let n = match opts.ts {
                    Some((tsval, _)) => write_ts_option(&mut ob, p.tsval, tsval),
                    None => 0,
                };
                seg.flags = TcpFlags::ACK | TcpFlags::PSH;
                seg.ack = s.seq.wrapping_add(1);
                seg.window = 65535;
                seg.options = &ob[..n];
                seg.payload = &req;
                self.emit(io, bp, f, &seg);
                self.http_req = req;
            }
            ProbeState::AwaitResponse(first) => {
                if s.payload == 0 || s.seq != first {
                    return;
                }
                let status = {
                    let d = f.data();
                    let ip = Ipv4Packet::new_unchecked(&d[l3..]);
                    let l4 = l3 + usize::from(ip.header_len());
                    let end = l3 + usize::from(ip.total_len());
                    d.get(l4..end)
                        .map(TcpPacket::new_unchecked)
                        .and_then(|t| http_status(t.payload()))
                };
                self.probes.remove(i);
                let ok = status == Some(self.conf.health_status);
                self.report_probe(
                    &p.check,
                    if ok {
                        HealthResult::Up
                    } else {
                        HealthResult::BadStatus
                    },
                );
                seg.seq = p
                    .isn
                    .wrapping_add(1)
                    .wrapping_add(self.http_req.len() as u32);
                self.emit(io, bp, f, &seg);
            }
        }
    }

    fn probe_timers(&mut self, now: u64) {
        // A probe measures the backend, not this lcore: when the lcore
        // itself did not run for a while (descheduled on a busy host), the
        // answers may be sitting unread in its rx ring, so the time it
        // missed is added to every pending probe's deadline instead of
        // failing them all at once.
        let gap = now.saturating_sub(self.last_tick);
        if self.last_tick > 0 && gap > PROBE_STALL_MS * self.ms && !self.probes.is_empty() {
            for p in &mut self.probes {
                p.deadline = p.deadline.saturating_add(gap);
            }
            self.c.probe_stalls += 1;
        }
        self.last_tick = now;
        let mut i = 0;
        while i < self.probes.len() {
            if self.probes[i].deadline <= now {
                let p = self.probes.remove(i);
                self.report_probe(&p.check, HealthResult::Timeout);
            } else {
                i += 1;
            }
        }
    }

    // ----- removal and timers ---------------------------------------------

    /// The access-log record of a spliced VIP's connection, at its end.
    fn log_flow(&mut self, m: &Meta, end: &Ended, why: Gone) {
        let how = match why {
            Gone::Failed => EndReason::ConnectFailed,
            _ => m.how,
        };
        let setup_us = if m.spliced_at > 0 {
            self.us(m.spliced_at.saturating_sub(m.born))
        } else {
            0
        };
        let r = AccessRecord {
            lcore: self.conf.lcore,
            vip: end.vip,
            client: end.client,
            backend: Some(end.server),
            start: m.born,
            end: self.now,
            setup_us,
            c2s_bytes: end.bytes[0],
            s2c_bytes: end.bytes[1],
            how,
            tls: None,
            sa: m.sa,
        };
        if !self.access.push(r) {
            self.c.access_log_lost += 1;
        }
    }

    /// Spliced flow `id` has closed (FINs acknowledged or a RST) and
    /// lingers: off its backend's active count and its session, its
    /// duration observed.
    fn mark_closed(&mut self, id: FlowId, now: u64, how: EndReason) {
        self.meta[id as usize].how = how;
        self.sa_forget(id);
        let born = self.meta[id as usize].born;
        self.h
            .flow_duration
            .record(self.us(now.saturating_sub(born)));
        let m = &mut self.meta[id as usize];
        m.closed = true;
        let (pool, b) = (usize::from(m.pool), usize::from(m.backend));
        self.bstat(pool, b, |st| st.active = st.active.saturating_sub(1));
        if let Some(l) = self
            .cursors
            .get_mut(pool)
            .and_then(|c| c.local_conns.get_mut(b))
        {
            *l -= 1;
        }
    }

    /// RSTs ending spliced flow `id` both ways: toward the client at its
    /// last acknowledgement, toward the backend at the backend's (each end
    /// accepts a RST exactly at its receive point).
    fn rst_both_ways<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, id: FlowId) {
        let m = self.meta[id as usize];
        let Some(p) = self.flows.get(id).map(|fl| fl.params) else {
            return;
        };
        let (cp, bp) = (self.conf.client_port, self.conf.backend_port);
        let rst = |src, dst, smac, dmac, seq| Segment {
            src_mac: smac,
            dst_mac: dmac,
            src,
            dst,
            seq,
            ack: 0,
            flags: TcpFlags::RST,
            window: 0,
            options: &[],
            payload: &[],
        };
        let to_client = rst(p.vip, p.client, io.mac(cp), m.client_mac, m.c_ack);
        self.emit_new(io, cp, &to_client);
        let to_backend = rst(p.local, p.server, io.mac(bp), m.backend_mac, m.s_ack);
        self.emit_new(io, bp, &to_backend);
    }

    /// Health checks marked these backends (`(pool, backend)`) down with
    /// `lb.health.on_down = "reset"`: their spliced flows end now, as if
    /// the backend had reset them (the client learns at once instead of
    /// waiting for the idle timeout). Slow path: a scan of the table.
    fn reset_backends<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        dead: &[(usize, usize)],
        now: u64,
    ) {
        let ids: Vec<FlowId> = self.flows.ids().collect();
        for id in ids {
            let m = self.meta[id as usize];
            if m.phase != Phase::Spliced
                || m.closed
                || !dead.contains(&(usize::from(m.pool), usize::from(m.backend)))
            {
                continue;
            }
            self.rst_both_ways(io, id);
            let rst = qsplice_splice::Translated {
                flags: TcpFlags::RST,
                seq: m.c_ack,
                ack: 0,
                payload_len: 0,
            };
            if let Some(fl) = self.flows.get_mut(id) {
                fl.on_segment(Dir::S2C, &rst, now, &self.timers);
            }
            self.mark_closed(id, now, EndReason::BackendDown);
            self.c.conn_reset_backend_down += 1;
        }
        self.term_reset_backends(io, dead, now);
    }

    /// The shutdown grace period is over: every connection still open is
    /// reset both ways (spliced: a RST to the client at its last
    /// acknowledgement and one to the backend at its; connecting: the
    /// client; terminated: both legs through their endpoints). Once, on
    /// the slow path.
    fn reset_all<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, now: u64) {
        let ids: Vec<FlowId> = self.flows.ids().collect();
        for id in ids {
            let m = self.meta[id as usize];
            match m.phase {
                Phase::Connecting => {
                    self.reset_client(io, id);
                    self.c.conn_abort_shutdown += 1;
                    self.meta[id as usize].how = EndReason::Shutdown;
                }
                Phase::Spliced if !m.closed => {
                    self.rst_both_ways(io, id);
                    self.c.conn_reset_shutdown += 1;
                    self.meta[id as usize].how = EndReason::Shutdown;
                }
                _ => {}
            }
            let why = if m.closed {
                Gone::Closed
            } else {
                Gone::Aborted
            };
            self.remove_flow(io, id, why);
        }
        self.term_reset_all(io, now);
    }

    fn remove_flow<Q: Queue<Frame = F>>(&mut self, _io: &mut Io<'_, Q>, id: FlowId, why: Gone) {
        if let Some(flow) = self.flows.remove(id) {
            self.forget(id, Ended::of(&flow), why);
        }
    }

    /// Release everything a removed flow held.
    fn forget(&mut self, id: FlowId, end: Ended, why: Gone) {
        self.sa_forget(id);
        let m = std::mem::replace(&mut self.meta[id as usize], Meta::FREE);
        if m.phase != Phase::Free && self.access.wants() {
            self.log_flow(&m, &end, why);
        }
        let (pool, b) = (usize::from(m.pool), usize::from(m.backend));
        match m.phase {
            Phase::Connecting => {
                self.connecting.retain(|x| *x != id);
                self.held.retain(|(h, _)| *h != id);
            }
            Phase::Spliced if m.closed => {} // already off the active counts
            Phase::Spliced => self.bstat(pool, b, |st| st.active = st.active.saturating_sub(1)),
            Phase::Free => return,
        }
        if !m.closed {
            if let Some(l) = self
                .cursors
                .get_mut(pool)
                .and_then(|c| c.local_conns.get_mut(b))
            {
                *l -= 1;
            }
        }
        if why == Gone::Closed {
            self.c.conn_closed += 1;
        }
    }

    /// The backend of connecting flow `id` refused it or did not answer:
    /// try another backend of the pool (not one tried already) from a new
    /// source port, keeping the client's held segments. Returns false when
    /// no retry is left or possible (the caller resets the client).
    fn redispatch<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        id: FlowId,
        now: u64,
    ) -> bool {
        let m = self.meta[id as usize];
        if m.phase != Phase::Connecting || m.retried >= self.conf.retries {
            return false;
        }
        let pool = usize::from(m.pool);
        let Some(flow) = self.flows.get(id) else {
            return false;
        };
        let mut params = flow.params;
        let bp = self.conf.backend_port;
        // The next untried backend whose MAC is known (one still being
        // resolved is skipped for this connection, not a reason to fail).
        let mut skip = m.tried;
        let mut found = None;
        for _ in 0..8 {
            let picked = self.pools.get(pool).and_then(|snap| {
                let cur = self.cursors.get_mut(pool)?;
                let b = snap.pick_excluding(client_hash(*params.client.ip()), cur, skip)?;
                Some((b, snap.backends[b].addr))
            });
            let Some((b, server)) = picked else {
                break;
            };
            match io.resolve(bp, *server.ip()) {
                Some(mac) => {
                    found = Some((b, server, mac));
                    break;
                }
                None => skip |= 1u64 << (b % 64),
            }
        }
        let Some((b, server, backend_mac)) = found else {
            self.c.retry_no_backend += 1;
            return false;
        };
        let Some(sport) = self.alloc_sport(server) else {
            self.c.no_source_port += 1;
            return false;
        };
        // A new backend tuple: the flow is re-inserted under it (the
        // client-side key is the same), meta and held segments move along.
        let local = SocketAddrV4::new(self.conf.local, sport);
        params.server = server;
        params.local = local;
        let Some(old) = self.flows.remove(id) else {
            return false;
        };
        let nid = match self.flows.insert(params, now) {
            Ok(n) => n,
            Err(_) => {
                // No free slot under the new backend tuple (the probe
                // window is bounded): the client is reset here, the flow
                // being gone already. Handled: the caller does nothing more.
                let m = self.meta[id as usize];
                let pi = self.conf.client_port;
                let seg = Segment {
                    src_mac: io.mac(pi),
                    dst_mac: m.client_mac,
                    src: old.params.vip,
                    dst: old.params.client,
                    seq: m.our_isn.wrapping_add(1),
                    ack: 0,
                    flags: TcpFlags::RST,
                    window: 0,
                    options: &[],
                    payload: &[],
                };
                self.emit_new(io, pi, &seg);
                self.c.retry_no_backend += 1;
                self.forget(id, Ended::of(&old), Gone::Failed);
                return true;
            }
        };
        let (bisn, bts) = self.backend_isn_ts(local, server, now);
        let mut nm = std::mem::replace(&mut self.meta[id as usize], Meta::FREE);
        let (old_b, old_pool) = (usize::from(nm.backend), pool);
        nm.backend = b as u16;
        nm.backend_mac = backend_mac;
        nm.bisn = bisn;
        nm.bts = bts;
        nm.tries = 0;
        nm.deadline = now + self.conf.syn_rto_ms * self.ms;
        nm.tried |= 1u64 << (b % 64);
        nm.retried += 1;
        nm.attempt_at = now;
        self.meta[nid as usize] = nm;
        for x in self.connecting.iter_mut().filter(|x| **x == id) {
            *x = nid;
        }
        for h in self.held.iter_mut().filter(|(h, _)| *h == id) {
            h.0 = nid;
        }
        self.sa_rekey(id, nid);
        if let Some(cur) = self.cursors.get_mut(old_pool) {
            if let Some(l) = cur.local_conns.get_mut(old_b) {
                *l -= 1;
            }
            if let Some(l) = cur.local_conns.get_mut(b) {
                *l += 1;
            }
        }
        self.bstat(pool, b, |st| st.opened += 1);
        self.c.conn_retried += 1;
        self.send_backend_syn(io, nid);
        true
    }

    /// Backend SYN retransmissions and give-ups.
    fn connect_timers<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, now: u64) {
        let mut due: ArrayVec<FlowId, 256> = ArrayVec::new();
        for &id in &self.connecting {
            if self.meta[id as usize].deadline <= now && due.try_push(id).is_err() {
                break;
            }
        }
        for id in due {
            let m = &mut self.meta[id as usize];
            if m.tries < self.conf.syn_retries {
                m.tries += 1;
                m.deadline = now + ((self.conf.syn_rto_ms * self.ms) << m.tries.min(10));
                self.c.backend_syn_retx += 1;
                self.send_backend_syn(io, id);
            } else {
                let (pool, b) = (usize::from(m.pool), usize::from(m.backend));
                self.c.conn_timeout += 1;
                self.bstat(pool, b, |st| st.failed += 1);
                if self.redispatch(io, id, now) {
                    continue;
                }
                self.reset_client(io, id);
                self.remove_flow(io, id, Gone::Failed);
            }
        }
    }

    fn expire(&mut self, now: u64) {
        let mut gone: ArrayVec<(FlowId, bool, Ended), EXPIRE_BUDGET> = ArrayVec::new();
        let budget = EXPIRE_BUDGET.min(self.flows.capacity() / 64 + 16);
        self.flows.expire(now, &self.timers, budget, |id, flow| {
            let closed = matches!(flow.state, FlowState::Linger { .. });
            let _ = gone.try_push((id, closed, Ended::of(&flow)));
        });
        for (id, closed, end) in gone {
            if !closed {
                self.c.conn_idle += 1;
                self.meta[id as usize].how = EndReason::Idle;
            }
            self.forget(id, end, if closed { Gone::Closed } else { Gone::Aborted });
        }
    }

    fn refresh_pools<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, now: u64) {
        let v = self.shared.board.version();
        if v == self.pools_version {
            return;
        }
        // Services before pools: the control thread stores the pools first
        // (see `PoolBoard::publish_services`), so new services always come
        // with their pools; old services with new pools last one tick.
        let services = self.shared.board.services();
        let old = std::mem::replace(&mut self.pools, self.shared.board.load());
        self.pools_version = v;
        // VIPs added, removed or changed (a new publication of services;
        // indices only grow, so what flows hold stays valid).
        if !services.vips.is_empty() && !Arc::ptr_eq(&services, &self.services) {
            self.conf.vips.clone_from(&services.vips);
            self.conf.content.clone_from(&services.content);
            self.term.set_vips(&services.tls_vips);
            self.access.set_sample(services.access_sample);
            self.services = services;
        }
        // Room for new VIPs' and backends' counters (one allocation per
        // change, here at a tick).
        let grown = self.bstats.len() != self.pools.len()
            || self
                .bstats
                .iter()
                .zip(self.pools.iter())
                .any(|(b, p)| b.len() != p.backends.len());
        if grown {
            self.bstats.resize_with(self.pools.len(), Vec::new);
            for (b, p) in self.bstats.iter_mut().zip(self.pools.iter()) {
                if b.len() < p.backends.len() {
                    b.resize(p.backends.len(), BackendStats::default());
                }
            }
            let sizes: Vec<usize> = self.bstats.iter().map(Vec::len).collect();
            self.shared.backends.resize(&sizes);
        }
        // Backends whose connections the control thread asks to reset.
        let mut dead = Vec::new();
        for (pi, (o, n)) in old.iter().zip(self.pools.iter()).enumerate() {
            for (bi, (ob, nb)) in o.backends.iter().zip(&n.backends).enumerate() {
                if ob.addr == nb.addr && ob.reset_epoch != nb.reset_epoch {
                    dead.push((pi, bi));
                }
            }
        }
        if !dead.is_empty() {
            self.reset_backends(io, &dead, now);
        }
        for (i, p) in self.pools.iter().enumerate() {
            match self.cursors.get_mut(i) {
                Some(c) if c.local_conns.len() == p.backends.len() => {
                    // The new snapshot's totals include this lcore's opens.
                    c.local_conns.iter_mut().for_each(|l| *l = 0);
                }
                Some(c) => *c = p.cursor(),
                None => self.cursors.push(p.cursor()),
            }
        }
    }

    fn publish(&mut self) {
        self.publishes += 1;
        if !self.term.stats.is_empty() && self.publishes % TLS_PUBLISH_MS == 0 {
            self.shared.tls.store(Arc::new(self.term.stats.clone()));
        }
        self.c.flows_active = self.flows.len() as u64;
        self.c.flow_probe_overflow = self.flows.probe_overflow();
        self.c.flows_connecting = self.connecting.len() as u64;
        self.shared.counters.publish(&self.c);
        self.shared.hists.publish(&self.h);
        self.shared.backends.store_all(&self.bstats);
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
        let (proto, dst) = {
            let ip = Ipv4Packet::new_unchecked(&f.data()[l3..]);
            (ip.protocol(), ip.dst_addr())
        };
        if proto != ip_proto::TCP {
            return Some(f);
        }
        if pi == self.conf.backend_port && dst == self.conf.local {
            self.on_backend(io, f, l3, false, now);
        } else if pi == self.conf.client_port && self.is_vip_addr(dst) {
            self.on_client(io, f, l3, now);
        } else {
            return Some(f);
        }
        None
    }

    fn poll(&mut self, io: &mut Io<'_, Q>, now: u64) -> bool {
        let me = usize::from(self.conf.lcore);
        let mut n = 0;
        while n < INBOX_BURST {
            let Some(f) = self.shared.inboxes.get(me).and_then(ArrayQueue::pop) else {
                break;
            };
            n += 1;
            self.c.steered_in += 1;
            match ethernet_l3(f.data()) {
                Ok((_, l3, _)) => self.on_backend(io, f, l3, true, now),
                Err(_) => self.c.drop_unexpected += 1,
            }
        }
        // The receive burst is over: corked TLS client legs send their tails.
        let flushed = self.term_flush(io, now);
        n > 0 || flushed
    }

    fn tick(&mut self, io: &mut Io<'_, Q>, now: u64) {
        self.now = now;
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
        self.publish();
    }

    fn finish(&mut self, _io: &mut Io<'_, Q>, _now: u64) {
        self.publishes = TLS_PUBLISH_MS - 1;
        self.publish();
    }
}
