//! The load generator on an lcore: engine [`Service`]s that run HTTP/1.1
//! client sessions ([`LoadgenClient`]) or server sessions
//! ([`LoadgenServer`]) on one port, over IPv4, with the engine answering
//! ARP and ICMP as for every mode.
//!
//! * **Client**: each session owns one (source address, source port)
//!   slot (a segment finds its session by a binary search over the few
//!   source addresses and a port offset); up to `concurrency` sessions at
//!   once, `connections` in all, at `rate` new ones per second if set (the
//!   worker's clock: connection *k* is due at *k*/`rate` s); a session
//!   opens once the target's MAC is known, sends `requests` requests one
//!   after the other (a think time apart) and closes; a finished slot goes
//!   to the back of the free queue.
//! * **Server**: SYNs to `local:port` get a SYN-ACK from a [`PassiveOpen`]
//!   kept per client address and port until the handshake's ACK; then a
//!   [`ServerSession`] answers each request head with `response`. Frames
//!   go back to the Ethernet address the SYN came from (no ARP per peer).
//! * Segments are checked (IPv4 header, TCP checksum) before an endpoint
//!   sees them; malformed or stray ones are counted and dropped. Timers:
//!   every tick (1 ms) the live sessions whose deadline passed send what
//!   is due.
//!
//! Allocation happens when a session opens (its endpoint's buffers), never
//! per segment; latencies go to preallocated HDR histograms.
//!
//! **Several lcores** ([`Steering`]): each lcore of a role owns part of
//! the connections, and a segment that a port's receive distribution
//! (af_packet's fanout hash and rollover, RSS, a single AF_XDP queue)
//! hands to another lcore is passed to its owner through a bounded
//! lock-free inbox, as the balancer does. A client lcore owns a
//! contiguous share of the source ports (the owner is read from the
//! destination port); a server lcore owns the client address and port
//! pairs that hash to it. Nothing is shared but the inboxes.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam::queue::ArrayQueue;
use hdrhistogram::Histogram;
use qsplice_tls::{Failure, Group, TlsContext, TlsSession};
use qsplice_wire::tls::HelloAssembler;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use qsplice_engine::{Io, Service};
use qsplice_netdev::{Frame, Queue};
use qsplice_tcp::{Config, Now, Outcome, Segment, SegmentOut, MAX_SEGS_PER_CALL};
use qsplice_wire::{ethertype, ip_proto, EthernetFrame, Ipv4Packet, MacAddr, TcpPacket};

use crate::http::{
    ClientEvent, ClientSession, PassiveOpen, Responses, ServerSession, SessionBuffers,
};

/// Shortest frame handed to a port (without FCS).
const MIN_FRAME: usize = 60;

macro_rules! loadgen_stats {
    ($( $(#[$m:meta])* $name:ident, )*) => {
        /// Counters of a load-generator lcore (both roles use the ones that apply).
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct LoadgenStats {
            $( $(#[$m])* pub $name: u64, )*
        }

        const N_STATS: usize = [$( stringify!($name), )*].len();

        impl LoadgenStats {
            fn to_array(&self) -> [u64; N_STATS] {
                [$( self.$name, )*]
            }

            fn from_array(a: [u64; N_STATS]) -> LoadgenStats {
                let mut it = a.into_iter();
                LoadgenStats { $( $name: it.next().unwrap_or(0), )* }
            }

            /// Adds `o`'s counters to these (several lcores' sum).
            pub fn add(&mut self, o: &LoadgenStats) {
                $( self.$name += o.$name; )*
            }
        }
    };
}

loadgen_stats! {
    /// Connections opened (SYN sent / SYN answered).
    opened,
    /// Handshakes completed.
    connected,
    /// Connections that ended with both FINs after all their requests.
    completed,
    /// Connections that ended otherwise (the kinds below, and handshakes a
    /// server never saw completed).
    failed,
    /// Client: connections refused (RST to the SYN).
    refused,
    /// Client: connections timed out (SYN or data retransmissions
    /// exhausted; the report adds those still open when the run gave up).
    timed_out,
    /// Client: connections the server reset.
    reset,
    /// Client: connections the server closed before answering every
    /// request.
    closed_early,
    /// Responses read whole / requests answered (server).
    responses,
    /// … of them with a 2xx status.
    status_2xx,
    /// Bad responses (framing, status line); the connection is reset.
    bad_responses,
    /// Client with TLS: handshakes completed.
    tls_handshakes,
    /// … of them resumed (ticket or session ID).
    tls_resumed,
    /// … of them with a post-quantum hybrid group.
    tls_pq,
    /// … of them TLS 1.3.
    tls13,
    /// Client with TLS: connections whose TLS failed (the kinds below).
    tls_failed,
    /// … the server sent a fatal alert.
    tls_alert_received,
    /// … no version, suite, group or signature scheme in common.
    tls_incompatible,
    /// … the server broke the protocol (unexpected or malformed message,
    /// bad Finished, undecryptable record).
    tls_protocol,
    /// … anything else (an untrusted or invalid certificate among them).
    tls_other,
    /// Response body bytes.
    body_bytes,
    /// Sum of connect times, µs (the histograms hold the distribution).
    connect_us_sum,
    /// Sum of request → whole response times, µs.
    response_us_sum,
    /// Client with a `rate`: connections opened more than 1 ms after
    /// their scheduled time (every `concurrency` slot was busy).
    behind,
    /// Segments dropped: malformed, bad checksum, for no session.
    segs_dropped,
    /// Segments not sent: no mbuf, or the next hop not resolved yet.
    segs_unsent,
    /// Several lcores: segments handed to the lcore owning their
    /// connection.
    steered,
    /// … dropped instead, the owner's inbox being full (TCP retransmits).
    steer_full,
    /// TCP payload bytes sent (retransmissions included; with TLS, the
    /// records).
    tx_bytes,
    /// TCP payload bytes received (duplicates included).
    rx_bytes,
}

/// Latency distributions of a client lcore, µs (HDR histograms, 3
/// significant digits, up to an hour; recording never allocates).
#[derive(Clone, Debug)]
pub struct Latencies {
    /// SYN sent → handshake complete.
    pub connect: Histogram<u64>,
    /// Request sent → first response byte.
    pub first_byte: Histogram<u64>,
    /// Request sent → response read whole.
    pub response: Histogram<u64>,
    /// TCP handshake complete → TLS handshake complete (TLS only).
    pub tls_handshake: Histogram<u64>,
    /// SYN sent → the connection's last response whole: what a new
    /// connection costs its user (connect, TLS, every request).
    pub connection: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        let h = || Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
        Latencies {
            connect: h(),
            first_byte: h(),
            response: h(),
            tls_handshake: h(),
            connection: h(),
        }
    }
}

impl Latencies {
    /// Adds `o`'s observations to these (several lcores' distributions).
    pub fn merge(&mut self, o: &Latencies) {
        for (a, b) in [
            (&mut self.connect, &o.connect),
            (&mut self.first_byte, &o.first_byte),
            (&mut self.response, &o.response),
            (&mut self.tls_handshake, &o.tls_handshake),
            (&mut self.connection, &o.connection),
        ] {
            // Same bounds: adding never resizes, never fails.
            let _ = a.add(b);
        }
    }

    fn copy_from(&mut self, o: &Latencies) {
        for (a, b) in [
            (&mut self.connect, &o.connect),
            (&mut self.first_byte, &o.first_byte),
            (&mut self.response, &o.response),
            (&mut self.tls_handshake, &o.tls_handshake),
            (&mut self.connection, &o.connection),
        ] {
            a.reset();
            // Same bounds: adding never resizes, never fails.
            let _ = a.add(b);
        }
    }
}

/// [`LoadgenStats`] as the control thread reads them: published by the
/// lcore every tick (relaxed atomics, no lock), and `finished` once a
/// client lcore opened and ended every connection; the client's
/// [`Latencies`] every 100 ticks (a `try_lock`: the lcore never waits)
/// and when the worker stops.
#[derive(Debug, Default)]
pub struct SharedStats {
    vals: [AtomicU64; N_STATS],
    finished: AtomicBool,
    latencies: Mutex<Option<Latencies>>,
}

impl SharedStats {
    fn publish(&self, s: &LoadgenStats, finished: bool) {
        for (a, v) in self.vals.iter().zip(s.to_array()) {
            a.store(v, Ordering::Relaxed);
        }
        self.finished.store(finished, Ordering::Release);
    }

    fn publish_latencies(&self, l: &Latencies, wait: bool) {
        let g = if wait {
            self.latencies.lock().ok()
        } else {
            self.latencies.try_lock().ok()
        };
        if let Some(mut g) = g {
            match g.as_mut() {
                Some(x) => x.copy_from(l),
                None => *g = Some(l.clone()),
            }
        }
    }

    /// The last published counters.
    pub fn snapshot(&self) -> LoadgenStats {
        let mut a = [0u64; N_STATS];
        for (o, v) in a.iter_mut().zip(&self.vals) {
            *o = v.load(Ordering::Relaxed);
        }
        LoadgenStats::from_array(a)
    }

    /// The last published latencies (a client lcore's; `None` before the
    /// first publication and for a server).
    pub fn latencies(&self) -> Option<Latencies> {
        self.latencies.lock().ok().and_then(|g| g.clone())
    }

    /// A client lcore is done with every connection.
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }
}

/// Builds `seg` from `src` to `dst` in a new frame on port `pi` and
/// queues it. False: no mbuf, or no MAC for `dst` yet.
fn emit<Q: Queue>(
    io: &mut Io<'_, Q>,
    pi: usize,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seg: &SegmentOut<'_>,
) -> bool {
    match io.resolve(pi, *dst.ip()) {
        Some(mac) => emit_to(io, pi, mac, src, dst, seg),
        None => false,
    }
}

/// [`emit`] to Ethernet address `dst_mac`.
fn emit_to<Q: Queue>(
    io: &mut Io<'_, Q>,
    pi: usize,
    dst_mac: MacAddr,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seg: &SegmentOut<'_>,
) -> bool {
    let tcp_len = seg.len();
    let len = 34 + tcp_len;
    let Some(mut fr) = io.alloc(pi) else {
        return false;
    };
    if len > usize::from(u16::MAX) || !fr.set_len(len.max(MIN_FRAME)) {
        return false;
    }
    let src_mac: MacAddr = io.mac(pi);
    {
        let d = fr.data_mut();
        d[len..].fill(0);
        let mut eth = EthernetFrame::new_unchecked(&mut d[..]);
        eth.set_dst(dst_mac);
        eth.set_src(src_mac);
        eth.set_ethertype(ethertype::IPV4);
        let mut ip = Ipv4Packet::new_unchecked(&mut d[14..len]);
        ip.set_version(4);
        ip.set_header_len(20);
        ip.set_dscp_ecn(0);
        ip.set_total_len((20 + tcp_len) as u16);
        ip.set_ident(0);
        ip.set_flags_frag(0x4000);
        ip.set_ttl(64);
        ip.set_protocol(ip_proto::TCP);
        ip.set_src_addr(*src.ip());
        ip.set_dst_addr(*dst.ip());
        ip.fill_checksum();
        if seg.write(&mut d[34..len], src.port(), dst.port()).is_none() {
            return false;
        }
        TcpPacket::new_unchecked(&mut d[34..len]).fill_checksum(*src.ip(), *dst.ip());
    }
    io.send(pi, fr);
    true
}

/// A TCP segment in frame `f` (IPv4 at `l3`, header valid per the
/// engine): (source, destination, TCP bytes range) if the checksum
/// verifies.
fn tcp_in(f: &[u8], l3: usize) -> Option<(SocketAddrV4, SocketAddrV4, std::ops::Range<usize>)> {
    let ip = Ipv4Packet::new_checked(f.get(l3..)?).ok()?;
    if ip.protocol() != ip_proto::TCP {
        return None;
    }
    let l4 = l3 + usize::from(ip.header_len());
    let end = l3 + usize::from(ip.total_len());
    let tcp = TcpPacket::new_checked(f.get(l4..end)?).ok()?;
    if !tcp.verify_checksum(ip.src_addr(), ip.dst_addr()) {
        return None;
    }
    Some((
        SocketAddrV4::new(ip.src_addr(), tcp.src_port()),
        SocketAddrV4::new(ip.dst_addr(), tcp.dst_port()),
        l4..end,
    ))
}

/// The RST a closed port sends for `seg` (RFC 9293 §3.10.7.1).
fn rst_for(seg: &Segment<'_>) -> SegmentOut<'static> {
    use qsplice_tcp::TcpFlags;
    match seg.ack {
        Some(a) => SegmentOut {
            seq: a,
            ack: None,
            flags: TcpFlags::RST,
            window: 0,
            options: Default::default(),
            payload: (&[], &[]),
        },
        None => {
            let len = seg.payload.len() as u32
                + u32::from(seg.flags.contains(TcpFlags::SYN))
                + u32::from(seg.flags.contains(TcpFlags::FIN));
            SegmentOut {
                seq: 0,
                ack: Some(seg.seq.wrapping_add(len)),
                flags: TcpFlags::RST | TcpFlags::ACK,
                window: 0,
                options: Default::default(),
                payload: (&[], &[]),
            }
        }
    }
}

/// Clock ticks → [`Now`] by one multiply: µs per tick in fixed point with
/// 48 fractional bits (a 128-bit division per segment showed in profiles;
/// the relative error, under hz × 2⁻⁴⁸ / 10⁶, is below 10⁻¹⁰ at GHz
/// clocks). Past the product's range (not reached by real clocks) it
/// divides.
#[derive(Clone, Copy, Debug)]
struct Micros {
    mul: u128,
    hz: u64,
}

impl Micros {
    const SHIFT: u32 = 48;

    fn new(hz: u64) -> Micros {
        let hz = hz.max(1);
        Micros {
            mul: (1_000_000u128 << Self::SHIFT) / u128::from(hz),
            hz,
        }
    }

    fn now(self, ticks: u64) -> Now {
        let us = match u128::from(ticks).checked_mul(self.mul) {
            Some(p) => (p >> Self::SHIFT) as u64,
            None => (u128::from(ticks) * 1_000_000 / u128::from(self.hz)) as u64,
        };
        Now {
            us,
            tsval: (us / 1000) as u32,
        }
    }
}

/// Bytes an open connection holds besides its TCP buffers: the session
/// record (client or server; TLS state, when used, comes on top).
pub fn session_bytes(client: bool) -> usize {
    if client {
        std::mem::size_of::<ClientSession>()
    } else {
        std::mem::size_of::<ServerSession>() + std::mem::size_of::<Conn>()
    }
}

/// Frames handed between the lcores of one role (see the module docs):
/// one bounded inbox per lcore, of (frame, IPv4 header offset).
pub struct Steering<F> {
    inboxes: Vec<ArrayQueue<(F, u16)>>,
}

impl<F> std::fmt::Debug for Steering<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steering")
            .field("lcores", &self.inboxes.len())
            .finish()
    }
}

impl<F> Steering<F> {
    /// Inboxes for `lcores` lcores, `cap` frames each.
    pub fn new(lcores: usize, cap: usize) -> Steering<F> {
        Steering {
            inboxes: (0..lcores.max(1))
                .map(|_| ArrayQueue::new(cap.max(1)))
                .collect(),
        }
    }

    /// Number of lcores.
    pub fn lcores(&self) -> usize {
        self.inboxes.len()
    }
}

/// Frames taken from the inbox per poll at most.
const INBOX_BURST: usize = 64;

/// One lcore's end of a [`Steering`].
struct Steer<F> {
    me: usize,
    all: Arc<Steering<F>>,
}

impl<F> std::fmt::Debug for Steer<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steer")
            .field("me", &self.me)
            .field("all", &self.all)
            .finish()
    }
}

impl<F> Steer<F> {
    /// Hands `f` to lcore `to` unless that is this one (then `f` comes
    /// back).
    fn hand(&self, to: usize, f: F, l3: usize, st: &mut LoadgenStats) -> Option<F> {
        if to == self.me {
            return Some(f);
        }
        match self.all.inboxes.get(to).map(|q| q.push((f, l3 as u16))) {
            Some(Ok(())) => st.steered += 1,
            // Full: dropped here (the frame goes back to its pool).
            Some(Err(_)) => st.steer_full += 1,
            None => st.segs_dropped += 1,
        }
        None
    }

    /// The next frame other lcores handed here, with its IPv4 offset.
    /// (`is_empty` first: `pop` on an empty queue costs a full fence.)
    fn next(&self) -> Option<(F, usize)> {
        let q = self.all.inboxes.get(self.me).filter(|q| !q.is_empty())?;
        q.pop().map(|(f, l3)| (f, usize::from(l3)))
    }
}

/// The source address and the TCP ports of an IPv4 frame (header at
/// `l3`), read without checks beyond bounds: enough to pick the lcore
/// that owns it (which checks it whole).
fn tcp_ports(f: &[u8], l3: usize) -> Option<(Ipv4Addr, u16, u16)> {
    if *f.get(l3 + 9)? != ip_proto::TCP {
        return None;
    }
    let src: [u8; 4] = f.get(l3 + 12..l3 + 16)?.try_into().ok()?;
    let l4 = l3 + usize::from(f.get(l3)? & 0x0f) * 4;
    let p = f.get(l4..l4 + 4)?;
    Some((
        Ipv4Addr::from(src),
        u16::from_be_bytes([p[0], p[1]]),
        u16::from_be_bytes([p[2], p[3]]),
    ))
}

/// The server lcore (of `n`) that owns client `addr:port`.
pub fn server_owner(addr: Ipv4Addr, port: u16, n: usize) -> usize {
    let k =
        (u64::from(u32::from(addr)) << 16 | u64::from(port)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (((k >> 32) * n as u64) >> 32) as usize
}

/// How `qsplice loadgen` splits a client's source ports among `n`
/// lcores: lcore `k`'s range (the last takes the remainder).
pub fn client_ports(sport_min: u16, sport_max: u16, n: usize, k: usize) -> (u16, u16) {
    let total = u32::from(sport_max - sport_min) + 1;
    let per = (total / n.max(1) as u32).max(1);
    let lo = u32::from(sport_min) + per * k as u32;
    let hi = if k + 1 >= n {
        u32::from(sport_max)
    } else {
        lo + per - 1
    };
    (
        lo.min(u32::from(sport_max)) as u16,
        hi.min(u32::from(sport_max)) as u16,
    )
}

/// The client lcore (of `n`) owning local port `port`, if it is in
/// `sport_min..=sport_max` (the inverse of [`client_ports`]).
fn client_owner(sport_min: u16, sport_max: u16, n: usize, port: u16) -> Option<usize> {
    if port < sport_min || port > sport_max {
        return None;
    }
    let total = u32::from(sport_max - sport_min) + 1;
    let per = (total / n.max(1) as u32).max(1);
    Some(((u32::from(port - sport_min) / per) as usize).min(n.max(1) - 1))
}

/// A client lcore's settings.
#[derive(Clone, Debug)]
pub struct ClientConf {
    /// The port it runs on.
    pub port: usize,
    /// Our addresses on it (at least one; sessions use them in turn).
    pub locals: Vec<Ipv4Addr>,
    /// Source ports, one per session on each address.
    pub sport_min: u16,
    /// See `sport_min`.
    pub sport_max: u16,
    /// The server.
    pub target: SocketAddrV4,
    /// Connections to open in all.
    pub connections: u64,
    /// Connections open at once at most.
    pub concurrency: u32,
    /// New connections per second (paced by the worker's clock; 0: as
    /// fast as `concurrency` allows).
    pub rate: u64,
    /// Requests per connection.
    pub requests: u32,
    /// Think time between a response and the next request, µs.
    pub think_us: u64,
    /// The request's bytes (whole).
    pub request: Vec<u8>,
    /// The requests are `HEAD`s.
    pub head: bool,
    /// HTTPS: each connection runs a TLS client session first.
    pub tls: Option<ClientTls>,
    /// TCP settings of each endpoint.
    pub tcp: Config,
    /// Clock frequency of the worker's `now`.
    pub hz: u64,
}

/// TLS settings of a client lcore.
#[derive(Clone, Debug)]
pub struct ClientTls {
    /// Configuration of connections that keep and offer sessions.
    pub resuming: Arc<ClientConfig>,
    /// Configuration of the others (full handshakes only).
    pub fresh: Arc<ClientConfig>,
    /// SNI / the name verified.
    pub name: ServerName<'static>,
    /// Connections per thousand that use `resuming` (spread evenly).
    pub resume_per_mille: u32,
}

/// Not in `LoadgenClient::live`. (Slot `i` of a client is address
/// `i % addresses`, source port `sport_min + i / addresses`.)
const NO_POS: u32 = u32::MAX;

/// HTTP/1.1 clients on an lcore. See the module docs.
///
/// Sessions live in slots, one per (source address, source port): a
/// segment finds its session by its destination address (binary search
/// over the few local addresses) and port (an offset). Free slots are
/// reused first in, first out, so a 4-tuple comes back as late as the
/// range allows (a server may still hold the last one in TIME-WAIT).
/// `live` lists the busy slots, so timers cost O(concurrency) per tick.
#[derive(Debug)]
pub struct LoadgenClient<F = ()> {
    conf: ClientConf,
    /// Local addresses sorted, with their index in `conf.locals`.
    by_addr: Vec<(Ipv4Addr, u32)>,
    slots: Vec<Option<Box<ClientSession>>>,
    /// Records of ended sessions, for the next ones (no allocation per
    /// connection; at most the peak of `live`).
    #[allow(clippy::vec_box)] // the boxes are what is reused: `slots` holds boxes
    records: Vec<Box<ClientSession>>,
    free: VecDeque<u32>,
    live: Vec<u32>,
    pos: Vec<u32>,
    started: u64,
    /// When the first connection could open (target resolved), µs.
    t0: Option<u64>,
    iss: u32,
    ticks: u32,
    micros: Micros,
    /// TCP buffers of ended sessions, for the next ones.
    spare: Vec<SessionBuffers>,
    /// Spreads resuming connections evenly (per mille accumulator).
    resume_acc: u32,
    stats: LoadgenStats,
    lat: Latencies,
    shared: Option<Arc<SharedStats>>,
    /// Several lcores: the inboxes, and the source ports of all of them.
    steer: Option<(Steer<F>, u16, u16)>,
}

/// Buffers kept for reuse at most (a client keeps up to `concurrency`),
/// and the memory they may hold together.
const SPARE_MAX: usize = 4096;
const SPARE_BYTES: usize = 64 << 20;

/// How many buffer pairs of `tcp`'s size an lcore with `n` connections
/// keeps for reuse.
fn spare_cap(n: usize, tcp: &Config, tls: bool) -> usize {
    // With TLS: the record buffers (≈ 33 KiB in, 32 KiB out) and the
    // client's decrypted bytes (32 KiB) on top.
    let pair = (tcp.rcv_buf + tcp.snd_buf + if tls { 97 << 10 } else { 0 }).max(1);
    n.min(SPARE_MAX).min((SPARE_BYTES / pair).max(64))
}

/// Keeps `b` for the next connection if it holds memory and there is room.
fn keep(spare: &mut Vec<SessionBuffers>, b: SessionBuffers) {
    if !b.is_empty() && spare.len() < spare.capacity() {
        spare.push(b);
    }
}

impl<F> LoadgenClient<F> {
    /// A client lcore for `conf` (its slot table and histograms allocated
    /// here).
    pub fn new(conf: ClientConf) -> LoadgenClient<F> {
        let na = conf.locals.len().max(1);
        let np = usize::from(conf.sport_max.saturating_sub(conf.sport_min)) + 1;
        let n = (na * np).min(NO_POS as usize);
        let mut by_addr: Vec<(Ipv4Addr, u32)> = conf
            .locals
            .iter()
            .enumerate()
            .map(|(i, a)| (*a, i as u32))
            .collect();
        by_addr.sort_unstable();
        LoadgenClient {
            by_addr,
            slots: (0..n).map(|_| None).collect(),
            records: Vec::new(),
            free: (0..n as u32).collect(),
            live: Vec::with_capacity((conf.concurrency as usize).min(n)),
            pos: vec![NO_POS; n],
            started: 0,
            t0: None,
            iss: 0x5eed_1000,
            ticks: 0,
            micros: Micros::new(conf.hz),
            spare: Vec::with_capacity(spare_cap(
                conf.concurrency as usize,
                &conf.tcp,
                conf.tls.is_some(),
            )),
            resume_acc: 0,
            stats: LoadgenStats::default(),
            lat: Latencies::default(),
            shared: None,
            steer: None,
            conf,
        }
    }

    /// Publish the counters to `shared` every tick.
    pub fn with_shared(mut self, shared: Arc<SharedStats>) -> LoadgenClient<F> {
        self.shared = Some(shared);
        self
    }

    /// Lcore `me` of `steering`'s, the client lcores together using
    /// source ports `sport_min..=sport_max` as split by [`client_ports`]
    /// (this one's range is its `ClientConf`'s): segments for another
    /// lcore's ports are handed to it.
    pub fn with_steering(
        mut self,
        me: usize,
        steering: Arc<Steering<F>>,
        sport_min: u16,
        sport_max: u16,
    ) -> LoadgenClient<F> {
        self.steer = Some((Steer { me, all: steering }, sport_min, sport_max));
        self
    }

    /// Counters so far.
    pub fn stats(&self) -> &LoadgenStats {
        &self.stats
    }

    /// Latencies so far.
    pub fn latencies(&self) -> &Latencies {
        &self.lat
    }

    /// Open sessions, and of them those holding no TCP buffers (at rest:
    /// nothing queued either way).
    pub fn parked(&self) -> (usize, usize) {
        let parked = self
            .live
            .iter()
            .filter_map(|&i| self.slots[i as usize].as_ref())
            .filter(|s| s.is_parked())
            .count();
        (self.live.len(), parked)
    }

    /// Bytes of buffers the lcore keeps for reuse (its pool).
    pub fn pool_bytes(&self) -> usize {
        self.spare.iter().map(SessionBuffers::bytes).sum()
    }

    /// Every connection opened and ended.
    pub fn is_finished(&self) -> bool {
        self.started >= self.conf.connections && self.live.is_empty()
    }

    /// Slot `i`'s local address and port.
    fn slot_addr(&self, i: usize) -> SocketAddrV4 {
        let na = self.conf.locals.len().max(1);
        SocketAddrV4::new(
            self.conf.locals[i % na],
            self.conf.sport_min.wrapping_add((i / na) as u16),
        )
    }

    /// The slot of local `addr:port`, if it is one of ours.
    fn slot_of(&self, addr: Ipv4Addr, port: u16) -> Option<usize> {
        let a = self
            .by_addr
            .binary_search_by(|(x, _)| x.cmp(&addr))
            .ok()
            .map(|k| self.by_addr[k].1 as usize)?;
        let p = usize::from(port.wrapping_sub(self.conf.sport_min));
        let i = p * self.conf.locals.len() + a;
        (port >= self.conf.sport_min && i < self.slots.len()).then_some(i)
    }

    fn drive<Q: Queue>(&mut self, io: &mut Io<'_, Q>, i: usize, now: Now) {
        let (pi, src, dst) = (self.conf.port, self.slot_addr(i), self.conf.target);
        let Some(s) = self.slots[i].as_mut() else {
            return;
        };
        if s.is_parked() {
            s.unpark(self.spare.pop().unwrap_or_default());
        }
        let (st, lat) = (&mut self.stats, &mut self.lat);
        let mut ev = |e: ClientEvent| match e {
            ClientEvent::Connected { us } => {
                st.connected += 1;
                st.connect_us_sum += us;
                lat.connect.saturating_record(us);
            }
            ClientEvent::Response {
                status,
                body_len,
                first_byte_us,
                us,
                conn_us,
            } => {
                st.responses += 1;
                st.status_2xx += u64::from((200..300).contains(&status));
                st.body_bytes += body_len;
                st.response_us_sum += us;
                lat.first_byte.saturating_record(first_byte_us);
                lat.response.saturating_record(us);
                if let Some(c) = conn_us {
                    lat.connection.saturating_record(c);
                }
            }
            ClientEvent::BadResponse(_) => st.bad_responses += 1,
            ClientEvent::ClosedEarly => st.closed_early += 1,
            ClientEvent::TlsHandshake {
                us,
                resumed,
                group,
                tls13,
            } => {
                st.tls_handshakes += 1;
                st.tls_resumed += u64::from(resumed);
                st.tls_pq += u64::from(group.is_some_and(Group::is_post_quantum));
                st.tls13 += u64::from(tls13);
                lat.tls_handshake.saturating_record(us);
            }
            ClientEvent::TlsFailed(f) => {
                st.tls_failed += 1;
                match f {
                    Failure::AlertReceived => st.tls_alert_received += 1,
                    Failure::Incompatible => st.tls_incompatible += 1,
                    Failure::HandshakeProtocol | Failure::BadRecord | Failure::MalformedHello => {
                        st.tls_protocol += 1
                    }
                    _ => st.tls_other += 1,
                }
            }
            ClientEvent::Ended { outcome, .. } => match outcome {
                Some(Outcome::Refused) => st.refused += 1,
                Some(Outcome::TimedOut) => st.timed_out += 1,
                Some(Outcome::Reset) => st.reset += 1,
                // Aborted: after a bad response, counted there.
                Some(Outcome::Aborted) | None => {}
            },
        };
        let req = &self.conf.request;
        s.step(req, now, &mut ev);
        let (mut unsent, mut tx) = (0, 0);
        // One neighbour lookup for all of this call's segments.
        let mut mac = None;
        s.endpoint().output(now, MAX_SEGS_PER_CALL, |seg| {
            tx += seg.payload_len() as u64;
            let m = *mac.get_or_insert_with(|| io.resolve(pi, *dst.ip()));
            if !m.is_some_and(|m| emit_to(io, pi, m, src, dst, seg)) {
                unsent += 1;
            }
            true
        });
        s.step(req, now, &mut ev);
        st.segs_unsent += unsent;
        st.tx_bytes += tx;
        // At rest (nothing queued either way): the buffers go back to the
        // pool until the next segment or request.
        if !s.is_done() {
            if let Some(b) = s.park() {
                keep(&mut self.spare, b);
            }
        }
        if s.is_done() {
            let ok = s.answered() == self.conf.requests && s.endpoint().outcome().is_none();
            if ok {
                self.stats.completed += 1;
            } else {
                self.stats.failed += 1;
            }
            self.release(i);
        }
    }

    /// Frees slot `i` (its session ended); keeps its buffers.
    fn release(&mut self, i: usize) {
        if let Some(mut s) = self.slots[i].take() {
            keep(&mut self.spare, s.take_buffers());
            self.records.push(s);
        }
        let p = self.pos[i];
        if p != NO_POS {
            self.live.swap_remove(p as usize);
            if let Some(&moved) = self.live.get(p as usize) {
                self.pos[moved as usize] = p;
            }
            self.pos[i] = NO_POS;
        }
        self.free.push_back(i as u32);
    }

    /// Connections the schedule allows by `now` (all of them without a
    /// rate).
    fn due(&self, now_us: u64) -> u64 {
        match (self.conf.rate, self.t0) {
            (0, _) => u64::MAX,
            (r, Some(t0)) => {
                (u128::from(now_us.saturating_sub(t0)) * u128::from(r) / 1_000_000) as u64 + 1
            }
            (_, None) => 1,
        }
    }

    fn open<Q: Queue>(&mut self, io: &mut Io<'_, Q>, now: Now) {
        while self.started < self.conf.connections
            && (self.live.len() as u32) < self.conf.concurrency
        {
            // Wait for the target's MAC (ARP is asked meanwhile).
            if io.resolve(self.conf.port, *self.conf.target.ip()).is_none() {
                return;
            }
            let t0 = *self.t0.get_or_insert(now.us);
            if self.started >= self.due(now.us) {
                return;
            }
            if self.conf.rate > 0 {
                let sched =
                    t0 + (u128::from(self.started) * 1_000_000 / u128::from(self.conf.rate)) as u64;
                if now.us > sched + 1_000 {
                    self.stats.behind += 1;
                }
            }
            let Some(i) = self.free.pop_front() else {
                return;
            };
            self.iss = self.iss.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let mut bufs = self.spare.pop().unwrap_or_default();
            let s = ClientSession::connect_reusing(
                &self.conf.tcp,
                self.iss,
                self.conf.requests,
                self.conf.head,
                now,
                std::mem::take(&mut bufs.tcp),
            )
            .with_think_time(self.conf.think_us);
            let s = match &self.conf.tls {
                None => s,
                Some(t) => {
                    self.resume_acc += t.resume_per_mille;
                    let cfg = if self.resume_acc >= 1000 {
                        self.resume_acc -= 1000;
                        &t.resuming
                    } else {
                        &t.fresh
                    };
                    match TlsSession::client(cfg.clone(), t.name.clone()) {
                        Ok(tls) => s.with_tls(tls),
                        Err(_) => {
                            // A configuration rustls refuses: counted, not opened.
                            self.stats.tls_failed += 1;
                            self.stats.failed += 1;
                            self.started += 1;
                            self.stats.opened += 1;
                            self.free.push_front(i);
                            continue;
                        }
                    }
                }
            };
            let mut s = match self.records.pop() {
                Some(mut r) => {
                    *r = s;
                    r
                }
                None => Box::new(s),
            };
            // The TLS parts of the buffers taken (none without TLS).
            s.unpark(bufs);
            let i = i as usize;
            self.slots[i] = Some(s);
            self.pos[i] = self.live.len() as u32;
            self.live.push(i as u32);
            self.started += 1;
            self.stats.opened += 1;
            self.drive(io, i, now);
        }
    }
}

impl<F: Frame> LoadgenClient<F> {
    /// A TCP segment in frame `f` (IPv4 at `l3`) for this lcore.
    fn segment<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, f: F, l3: usize, now: u64) {
        let now = self.micros.now(now);
        let Some((src, dst, tcp)) = tcp_in(f.data(), l3) else {
            self.stats.segs_dropped += 1;
            return;
        };
        let slot = self
            .slot_of(*dst.ip(), dst.port())
            .filter(|&i| src == self.conf.target && self.slots[i].is_some());
        let seg = f.data().get(tcp).and_then(Segment::parse);
        match (slot, seg) {
            (Some(i), Some(seg)) => {
                self.stats.rx_bytes += seg.payload.len() as u64;
                if let Some(s) = self.slots[i].as_mut() {
                    if s.is_parked() {
                        s.unpark(self.spare.pop().unwrap_or_default());
                    }
                    s.endpoint().input(&seg, now);
                }
                self.drive(io, i, now);
            }
            // The server's segment for a connection this client ended (no
            // TIME-WAIT here: a retransmitted FIN whose last ACK was lost):
            // a RST, as a closed port answers, so the server lets go at
            // once instead of retrying until it times out.
            (None, Some(seg))
                if src == self.conf.target
                    && self.slot_of(*dst.ip(), dst.port()).is_some()
                    && !seg.flags.contains(qsplice_tcp::TcpFlags::RST) =>
            {
                self.stats.segs_dropped += 1;
                let rst = rst_for(&seg);
                if !emit(io, self.conf.port, dst, src, &rst) {
                    self.stats.segs_unsent += 1;
                }
            }
            _ => self.stats.segs_dropped += 1,
        }
    }
}

impl<Q: Queue> Service<Q> for LoadgenClient<Q::Frame> {
    fn on_ipv4(
        &mut self,
        io: &mut Io<'_, Q>,
        pi: usize,
        f: Q::Frame,
        l3: usize,
        now: u64,
    ) -> Option<Q::Frame> {
        if pi != self.conf.port {
            return Some(f);
        }
        let f = match &self.steer {
            Some((st, lo, hi)) => {
                let owner = tcp_ports(f.data(), l3)
                    .and_then(|(_, _, dport)| client_owner(*lo, *hi, st.all.lcores(), dport));
                match owner {
                    Some(o) => st.hand(o, f, l3, &mut self.stats)?,
                    None => f,
                }
            }
            None => f,
        };
        self.segment(io, f, l3, now);
        None
    }

    fn poll(&mut self, io: &mut Io<'_, Q>, now: u64) -> bool {
        let mut n = 0;
        while n < INBOX_BURST {
            let Some((f, l3)) = self.steer.as_ref().and_then(|(st, ..)| st.next()) else {
                break;
            };
            n += 1;
            self.segment(io, f, l3, now);
        }
        let before = self.started;
        self.open(io, self.micros.now(now));
        self.started != before || n > 0
    }

    fn finish(&mut self, _io: &mut Io<'_, Q>, _now: u64) {
        if let Some(sh) = &self.shared {
            sh.publish(&self.stats, self.is_finished());
            sh.publish_latencies(&self.lat, true);
        }
    }

    fn tick(&mut self, io: &mut Io<'_, Q>, now: u64) {
        let now = self.micros.now(now);
        if let Some(sh) = &self.shared {
            sh.publish(&self.stats, self.is_finished());
            self.ticks = self.ticks.wrapping_add(1);
            if self.ticks % 100 == 0 {
                sh.publish_latencies(&self.lat, false);
            }
        }
        // Backwards: a session that ends is swapped out by the last one,
        // which this walk has already visited.
        let mut k = self.live.len();
        while k > 0 {
            k -= 1;
            let Some(&i) = self.live.get(k) else {
                continue;
            };
            let i = i as usize;
            let due = self.slots[i]
                .as_ref()
                .is_some_and(|s| s.poll_at().is_some_and(|t| t <= now.us));
            if due {
                self.drive(io, i, now);
            }
        }
        self.open(io, now);
    }
}

/// A server lcore's settings.
#[derive(Clone, Debug)]
pub struct ServerConf {
    /// The port it runs on.
    pub port: usize,
    /// The address and TCP port it serves.
    pub listen: SocketAddrV4,
    /// More addresses it answers on, at `listen`'s TCP port (a server
    /// standing in for several backends; sorted by `new`).
    pub also: Vec<Ipv4Addr>,
    /// The responses sent (whole), by request path.
    pub response: Responses,
    /// Close each connection after its first response (`response`
    /// says `Connection: close` or has no length).
    pub close_after_response: bool,
    /// HTTPS: certificates and groups served (each connection a TLS
    /// server session first).
    pub tls: Option<Arc<TlsContext>>,
    /// Connections (and pending handshakes) held at most.
    pub max_conns: usize,
    /// TCP settings of each endpoint.
    pub tcp: Config,
    /// Clock frequency of the worker's `now`.
    pub hz: u64,
}

/// A server connection, with the Ethernet address its SYN came from
/// (where everything for it goes: the peer, or the router it is behind).
enum Conn {
    /// SYN answered at µs; waiting for the ACK.
    Pending(PassiveOpen, u64, MacAddr),
    Up(Box<ServerSession>, MacAddr),
}

/// A handshake not completed this long after the SYN is forgotten, µs.
const PENDING_US: u64 = 3_000_000;

/// HTTP/1.1 servers on an lcore. See the module docs.
pub struct LoadgenServer<F = ()> {
    conf: ServerConf,
    /// By (client, our address and port). foldhash: keyed per map like
    /// std's SipHash (the keys come off the wire) at a fraction of its
    /// cost (SipHash of the two addresses took ≈ 7 % of a server lcore).
    conns: HashMap<(SocketAddrV4, SocketAddrV4), Conn, foldhash::fast::RandomState>,
    /// Reused by `tick` (no allocation per tick).
    due: Vec<(SocketAddrV4, SocketAddrV4)>,
    iss: u32,
    micros: Micros,
    /// TCP buffers of ended connections, for the next ones.
    spare: Vec<SessionBuffers>,
    /// Records of ended connections, for the next ones (no allocation per
    /// connection; as many as `spare` at most).
    #[allow(clippy::vec_box)] // the boxes are what is reused: `conns` holds boxes
    records: Vec<Box<ServerSession>>,
    /// ClientHello reassembly (TLS), shared by the connections.
    scratch: HelloAssembler,
    stats: LoadgenStats,
    shared: Option<Arc<SharedStats>>,
    steer: Option<Steer<F>>,
}

impl<F> std::fmt::Debug for LoadgenServer<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadgenServer")
            .field("conns", &self.conns.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl<F> LoadgenServer<F> {
    /// A server lcore for `conf`.
    pub fn new(mut conf: ServerConf) -> LoadgenServer<F> {
        conf.also.sort_unstable();
        LoadgenServer {
            conns: HashMap::with_capacity_and_hasher(conf.max_conns, Default::default()),
            due: Vec::with_capacity(conf.max_conns),
            iss: 0x0bad_5eed,
            micros: Micros::new(conf.hz),
            spare: Vec::with_capacity(spare_cap(conf.max_conns, &conf.tcp, conf.tls.is_some())),
            records: Vec::with_capacity(spare_cap(conf.max_conns, &conf.tcp, conf.tls.is_some())),
            scratch: HelloAssembler::new(),
            stats: LoadgenStats::default(),
            shared: None,
            steer: None,
            conf,
        }
    }

    /// Publish the counters to `shared` every tick.
    pub fn with_shared(mut self, shared: Arc<SharedStats>) -> LoadgenServer<F> {
        self.shared = Some(shared);
        self
    }

    /// Lcore `me` of `steering`'s: segments of client address and port
    /// pairs that [`server_owner`] gives another lcore are handed to it.
    pub fn with_steering(mut self, me: usize, steering: Arc<Steering<F>>) -> LoadgenServer<F> {
        self.steer = Some(Steer { me, all: steering });
        self
    }

    /// Counters so far.
    pub fn stats(&self) -> &LoadgenStats {
        &self.stats
    }

    /// Bytes of buffers the lcore keeps for reuse (its pool).
    pub fn pool_bytes(&self) -> usize {
        self.spare.iter().map(SessionBuffers::bytes).sum()
    }

    /// Connections (and pending handshakes) held now.
    pub fn conns(&self) -> usize {
        self.conns.len()
    }

    /// Connection `key` ended after both FINs (its last ACK never came):
    /// counted completed, dropped.
    fn finished(&mut self, key: (SocketAddrV4, SocketAddrV4)) {
        if self.release(key) {
            self.stats.completed += 1;
        }
    }

    /// Forgets connection `key`; keeps its buffers and record for the
    /// next ones. Whether it was established.
    fn release(&mut self, key: (SocketAddrV4, SocketAddrV4)) -> bool {
        match self.conns.remove(&key) {
            Some(Conn::Up(mut s, _)) => {
                keep(&mut self.spare, s.take_buffers());
                if self.records.len() < self.records.capacity() {
                    self.records.push(s);
                }
                true
            }
            _ => false,
        }
    }

    /// Steps connection `key` (client, us) and sends what is due; drops
    /// it once closed.
    fn drive<Q: Queue>(&mut self, io: &mut Io<'_, Q>, key: (SocketAddrV4, SocketAddrV4), now: Now) {
        let (peer, src) = key;
        let Some(Conn::Up(s, mac)) = self.conns.get_mut(&key) else {
            return;
        };
        if s.is_parked() {
            s.unpark(self.spare.pop().unwrap_or_default());
        }
        let before = s.requests();
        let step = |s: &mut ServerSession, scratch: &mut HelloAssembler, st: &mut LoadgenStats| {
            match &self.conf.tls {
                None => s.step(&self.conf.response),
                Some(ctx) => {
                    if s.step_tls(&self.conf.response, ctx, scratch) {
                        if let Some(h) = s.tls_handshake() {
                            st.tls_handshakes += 1;
                            st.tls_resumed += u64::from(h.resumed);
                            st.tls_pq += u64::from(h.group.is_some_and(Group::is_post_quantum));
                            st.tls13 += u64::from(h.version == rustls::ProtocolVersion::TLSv1_3);
                        }
                    }
                }
            }
        };
        step(s, &mut self.scratch, &mut self.stats);
        let pi = self.conf.port;
        let (mut unsent, mut tx) = (0, 0);
        let mac = *mac;
        s.endpoint().output(now, MAX_SEGS_PER_CALL, |seg| {
            tx += seg.payload_len() as u64;
            if !emit_to(io, pi, mac, src, peer, seg) {
                unsent += 1;
            }
            true
        });
        self.stats.tx_bytes += tx;
        step(s, &mut self.scratch, &mut self.stats);
        self.stats.responses += s.requests() - before;
        self.stats.segs_unsent += unsent;
        if !s.is_closed() {
            if let Some(b) = s.park() {
                keep(&mut self.spare, b);
            }
        }
        if s.is_closed() {
            if s.endpoint().outcome().is_none() {
                self.stats.completed += 1;
            } else {
                self.stats.failed += 1;
            }
            self.release(key);
        }
    }
}

impl<F: Frame> LoadgenServer<F> {
    /// A TCP segment in frame `f` (IPv4 at `l3`) for this lcore.
    fn segment<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, f: F, l3: usize, now: u64) {
        let now = self.micros.now(now);
        let Some((peer, dst, tcp)) = tcp_in(f.data(), l3) else {
            self.stats.segs_dropped += 1;
            return;
        };
        let Some(seg) = f.data().get(tcp).and_then(Segment::parse) else {
            self.stats.segs_dropped += 1;
            return;
        };
        let ours = dst == self.conf.listen
            || (dst.port() == self.conf.listen.port()
                && self.conf.also.binary_search(dst.ip()).is_ok());
        if !ours {
            self.stats.segs_dropped += 1;
            return;
        }
        let key = (peer, dst);
        self.stats.rx_bytes += seg.payload.len() as u64;
        let syn = seg.flags.contains(qsplice_tcp::TcpFlags::SYN)
            && !seg.flags.contains(qsplice_tcp::TcpFlags::ACK);
        // A new SYN on a tuple whose last connection is past both FINs
        // (its last ACK lost, or the client reusing the tuple at once): the
        // old one is done, a new one starts (as Linux takes a SYN in
        // TIME-WAIT).
        if syn {
            if let Some(Conn::Up(s, _)) = self.conns.get_mut(&key) {
                let ep = s.endpoint();
                if !ep.may_send() && !ep.may_recv() {
                    self.finished(key);
                }
            }
        }
        match self.conns.get_mut(&key) {
            Some(Conn::Up(s, _)) => {
                if s.is_parked() {
                    s.unpark(self.spare.pop().unwrap_or_default());
                }
                let ep = s.endpoint();
                let past = !ep.may_send() && !ep.may_recv();
                ep.input(&seg, now);
                // A RST once both FINs were exchanged (the client kept no
                // TIME-WAIT and answered our retransmitted FIN): done.
                if past && seg.flags.contains(qsplice_tcp::TcpFlags::RST) {
                    self.finished(key);
                    return;
                }
                self.drive(io, key, now);
            }
            // A stale duplicate SYN's SYN-ACK refused by the client.
            Some(Conn::Pending(po, ..)) if po.is_reset_by(&seg) => {
                self.conns.remove(&key);
                self.stats.failed += 1;
            }
            Some(Conn::Pending(po, _, mac)) if !syn => {
                let (po, mac) = (*po, *mac);
                let mut sb = self.spare.pop().unwrap_or_default();
                let mut bufs = Some(std::mem::take(&mut sb.tcp));
                let ep = po.complete_reusing(&self.conf.tcp, &seg, now, &mut bufs);
                if let Some(b) = bufs {
                    sb.tcp = b;
                }
                match ep {
                    Some(ep) => {
                        self.stats.connected += 1;
                        let mut srv = ServerSession::new(ep);
                        if self.conf.close_after_response {
                            srv = srv.close_after_response();
                        }
                        if self.conf.tls.is_some() {
                            srv = srv.with_tls(TlsSession::new());
                        }
                        srv.unpark(sb);
                        let srv = match self.records.pop() {
                            Some(mut r) => {
                                *r = srv;
                                r
                            }
                            None => Box::new(srv),
                        };
                        self.conns.insert(key, Conn::Up(srv, mac));
                        self.drive(io, key, now);
                    }
                    None => self.stats.segs_dropped += 1,
                }
            }
            _ if syn => {
                if !self.conns.contains_key(&key) && self.conns.len() >= self.conf.max_conns {
                    self.stats.segs_dropped += 1;
                    return;
                }
                self.iss = self.iss.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let Some(po) = PassiveOpen::answer(&self.conf.tcp, &seg, self.iss, now) else {
                    self.stats.segs_dropped += 1;
                    return;
                };
                // Back to the SYN's sender, without ARP (a client with
                // many addresses asks for ours from one of them only).
                let Ok(mac) = EthernetFrame::new_checked(f.data()).map(|e| e.src()) else {
                    self.stats.segs_dropped += 1;
                    return;
                };
                if !emit_to(io, self.conf.port, mac, dst, peer, &po.syn_ack()) {
                    self.stats.segs_unsent += 1;
                }
                if !matches!(self.conns.get(&key), Some(Conn::Pending(..))) {
                    self.stats.opened += 1;
                }
                self.conns.insert(key, Conn::Pending(po, now.us, mac));
            }
            _ => self.stats.segs_dropped += 1,
        }
    }
}

impl<Q: Queue> Service<Q> for LoadgenServer<Q::Frame> {
    fn on_ipv4(
        &mut self,
        io: &mut Io<'_, Q>,
        pi: usize,
        f: Q::Frame,
        l3: usize,
        now: u64,
    ) -> Option<Q::Frame> {
        if pi != self.conf.port {
            return Some(f);
        }
        let f = match &self.steer {
            Some(st) => match tcp_ports(f.data(), l3) {
                Some((src, sport, _)) => st.hand(
                    server_owner(src, sport, st.all.lcores()),
                    f,
                    l3,
                    &mut self.stats,
                )?,
                None => f,
            },
            None => f,
        };
        self.segment(io, f, l3, now);
        None
    }

    fn poll(&mut self, io: &mut Io<'_, Q>, now: u64) -> bool {
        let mut n = 0;
        while n < INBOX_BURST {
            let Some((f, l3)) = self.steer.as_ref().and_then(Steer::next) else {
                break;
            };
            n += 1;
            self.segment(io, f, l3, now);
        }
        n > 0
    }

    fn finish(&mut self, _io: &mut Io<'_, Q>, _now: u64) {
        if let Some(sh) = &self.shared {
            sh.publish(&self.stats, false);
        }
    }

    fn tick(&mut self, io: &mut Io<'_, Q>, now: u64) {
        let now = self.micros.now(now);
        if let Some(sh) = &self.shared {
            sh.publish(&self.stats, false);
        }
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        let before = self.conns.len();
        self.conns.retain(|_, c| match c {
            Conn::Pending(_, at, _) => now.us.saturating_sub(*at) < PENDING_US,
            Conn::Up(..) => true,
        });
        self.stats.failed += (before - self.conns.len()) as u64;
        due.extend(self.conns.iter_mut().filter_map(|(p, c)| match c {
            Conn::Up(s, _) if s.poll_at().is_some_and(|t| t <= now.us) => Some(*p),
            _ => None,
        }));
        for &p in &due {
            self.drive(io, p, now);
        }
        self.due = due;
    }
}

/// Both sides on one lcore (`role = "both"`): the client on its port,
/// the server on its own; each frame goes to the side whose port it came
/// in on.
#[derive(Debug)]
pub struct LoadgenBoth<F = ()> {
    /// The client side.
    pub client: LoadgenClient<F>,
    /// The server side.
    pub server: LoadgenServer<F>,
}

impl<Q: Queue> Service<Q> for LoadgenBoth<Q::Frame> {
    fn on_ipv4(
        &mut self,
        io: &mut Io<'_, Q>,
        pi: usize,
        f: Q::Frame,
        l3: usize,
        now: u64,
    ) -> Option<Q::Frame> {
        let f = self.client.on_ipv4(io, pi, f, l3, now)?;
        self.server.on_ipv4(io, pi, f, l3, now)
    }

    fn poll(&mut self, io: &mut Io<'_, Q>, now: u64) -> bool {
        let a = self.client.poll(io, now);
        let b = self.server.poll(io, now);
        a || b
    }

    fn tick(&mut self, io: &mut Io<'_, Q>, now: u64) {
        self.client.tick(io, now);
        self.server.tick(io, now);
    }

    fn finish(&mut self, io: &mut Io<'_, Q>, now: u64) {
        self.client.finish(io, now);
        self.server.finish(io, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_by_multiply_match_the_exact_division() {
        for hz in [
            1u64,
            1_000_000,
            2_100_000_000,
            2_995_123_457,
            3_700_000_000,
            1_000_000_000_000,
        ] {
            let m = Micros::new(hz);
            // Up to about 100 days of ticks.
            for ticks in [
                0u64,
                1,
                hz - 1,
                hz,
                7 * hz + 12_345,
                hz.saturating_mul(8_640_000),
                u64::MAX,
            ] {
                let exact = (u128::from(ticks) * 1_000_000 / u128::from(hz)) as u64;
                let got = m.now(ticks).us;
                // One µs of rounding, plus the fixed point's relative error
                // (under hz / (10⁶ × 2⁴⁸)).
                let tol = 2 + (u128::from(exact) * u128::from(hz) / (1_000_000u128 << 48)) as u64;
                assert!(
                    got.abs_diff(exact) <= tol,
                    "hz {hz} ticks {ticks}: {got} vs {exact}"
                );
                assert_eq!(m.now(ticks).tsval, (got / 1000) as u32);
            }
        }
    }
}
