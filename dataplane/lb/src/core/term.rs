//! TLS termination on the lcore, for VIPs marked `tls = "terminate"`.
//!
//! ```text
//! client ──TCP──▶ [smoltcp socket]─TLS bytes─▶ TlsSession ─plaintext─▶ [smoltcp socket] ──TCP──▶ backend
//!        ◀──────                ◀─ records ───            ◀──────────                  ◀──────
//! ```
//!
//! Each terminated connection owns a small smoltcp `Interface` (medium IP,
//! no ARP) with two sockets: the client's (accepted on the VIP) and the
//! backend's (opened from `local`, a source port this lcore owns, once the
//! TLS handshake is done). One interface per connection keeps smoltcp's
//! per-packet socket scan at two sockets, whatever the number of
//! connections; the lcore demultiplexes by 4-tuple itself. Frames go in as
//! borrowed IP packets (no copy) and out through the engine's `Io` (the
//! Ethernet header is added here: the client's next hop is the SYN's
//! source MAC, the backend's comes from the neighbour table).
//!
//! Per connection: the TCP sockets' buffers and a [`TlsSession`] are
//! allocated when the SYN arrives (not per packet); the table is bounded
//! (`max_conns` per lcore, beyond it a RST and `tls_refused`). Timers
//! (retransmission, delayed ACK, the handshake timeout, idle) run from a
//! deadline heap checked every tick.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use qsplice_engine::Io;
use qsplice_netdev::{Frame, Queue};
use qsplice_pool::client_hash;
use qsplice_tls::{Failure, Plaintext, TlsContext, TlsSession, TlsStats};
use qsplice_wire::http1::XffInserter;
use qsplice_wire::tls::HelloAssembler;
use qsplice_wire::{Ipv4Packet, MacAddr, TcpFlags};
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration as SDuration, Instant as SInstant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpListenEndpoint};

use super::{LbCore, Seg};

/// Client socket buffers: receive (TLS records in) and send (records out).
const CLIENT_RX: usize = 32 * 1024;
const CLIENT_TX: usize = 64 * 1024;
/// Rewritten plaintext held for the backend socket at most (beyond it the
/// connection is reset: a client pipelining tiny requests to grow it).
const XFF_PENDING_MAX: usize = 256 * 1024;
/// Backend socket buffers.
const BACKEND_RX: usize = 64 * 1024;
const BACKEND_TX: usize = 64 * 1024;
/// Drive/poll rounds per event.
const ROUNDS: usize = 16;
/// Half-open connections (SYN received, TCP handshake not complete) one
/// lcore keeps, as a share of `max_conns`; beyond it the oldest half-open
/// one is dropped (a SYN cache: under a SYN flood a real client's ACK
/// arrives long before a thousand newer SYNs have pushed its entry out).
const HALF_OPEN_SHARE: usize = 4;

/// The TCP timestamp clock of the terminated legs: the machine's TSC in
/// milliseconds (the splice path's `ts_clock`), stored by every lcore as it
/// runs. smoltcp asks for a TSval through a plain `fn() -> u32`, hence a
/// process-wide value. It runs on across restarts of the appliance (the TSC
/// counts from boot), so a backend that still holds a previous process's
/// connection on the same tuple in TIME-WAIT sees a newer TSval and accepts
/// the new SYN (RFC 6191) instead of answering with the old connection's
/// ACK — which cost a 1 s SYN retransmission (or a reset) per reused port
/// after every restart.
static TS_CLOCK: AtomicU32 = AtomicU32::new(0);

fn term_tsval() -> u32 {
    TS_CLOCK.load(Ordering::Relaxed)
}

/// Advances [`TS_CLOCK`] to `ts` unless another lcore already stored a
/// later value (serial-number order: the u32 millisecond clock wraps), so
/// a connection never sees its TSval go backwards.
fn advance_ts_clock(ts: u32) {
    let _ = TS_CLOCK.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
        ((ts.wrapping_sub(cur) as i32) > 0).then_some(ts)
    });
}

/// A VIP whose TLS the appliance terminates.
#[derive(Clone, Debug)]
pub struct TlsVip {
    /// The VIP (address and port).
    pub addr: SocketAddrV4,
    /// Index of its pool on the board.
    pub pool: usize,
    /// Its TLS configuration (shared by all lcores).
    pub ctx: Arc<TlsContext>,
    /// Add `X-Forwarded-For` to the HTTP/1.1 requests relayed.
    pub x_forwarded_for: bool,
}

#[derive(Copy, Clone, Debug)]
struct Route {
    client_mac: MacAddr,
    cpi: usize,
    server_ip: Option<Ipv4Addr>,
    server_mac: MacAddr,
    bpi: usize,
}

/// One terminated connection.
struct Conn {
    gen: u32,
    vip: usize,
    client: SocketAddrV4,
    route: Route,
    iface: Interface,
    sockets: SocketSet<'static>,
    client_h: SocketHandle,
    backend_h: Option<SocketHandle>,
    /// Backend: (address, source port, pool, index).
    server: Option<(SocketAddrV4, u16, usize, usize)>,
    tls: TlsSession,
    /// `X-Forwarded-For` insertion, and rewritten bytes the backend socket
    /// had no room for yet.
    xff: Option<XffInserter>,
    xff_pending: Vec<u8>,
    created: u64,
    last: u64,
    want_connect: bool,
    /// The client's TCP handshake completed.
    established: bool,
    /// The client socket left LISTEN (its SYN was taken).
    syn_seen: bool,
    /// Deadline of this connection's pending heap entry (`u64::MAX`: none).
    armed: u64,
    backend_up: bool,
    /// Backends tried (bit `index % 64`) and retries made (`lb.retries`).
    tried: u64,
    retried: u8,
    backend_fin_sent: bool,
    client_fin_sent: bool,
    failed: bool,
}

/// The terminator's per-lcore state (a field of [`LbCore`]).
pub(super) struct Terminator {
    vips: Vec<TlsVip>,
    conns: Vec<Option<Box<Conn>>>,
    gens: Vec<u32>,
    free: Vec<u32>,
    by_client: HashMap<(SocketAddrV4, SocketAddrV4), u32>,
    by_backend: HashMap<(SocketAddrV4, u16), u32>,
    timers: BinaryHeap<Reverse<(u64, u32, u32)>>,
    /// Half-open connections, oldest first (stale entries skipped).
    half_open: std::collections::VecDeque<(u32, u32)>,
    half_open_count: usize,
    max_half_open: usize,
    scratch: HelloAssembler,
    /// Per-VIP TLS counters (working copy).
    pub(super) stats: Vec<TlsStats>,
    max_conns: usize,
}

impl core::fmt::Debug for Terminator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Terminator")
            .field("vips", &self.vips.len())
            .field("conns", &self.by_client.len())
            .finish_non_exhaustive()
    }
}

impl Terminator {
    pub(super) fn new(vips: Vec<TlsVip>, max_conns: usize) -> Terminator {
        let n = vips.len();
        Terminator {
            vips,
            conns: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            by_client: HashMap::new(),
            by_backend: HashMap::new(),
            timers: BinaryHeap::new(),
            half_open: std::collections::VecDeque::new(),
            half_open_count: 0,
            max_half_open: (max_conns / HALF_OPEN_SHARE).max(1),
            scratch: HelloAssembler::new(),
            stats: vec![TlsStats::default(); n],
            max_conns: max_conns.max(1),
        }
    }

    /// The terminated VIP at `addr`.
    pub(super) fn vip_at(&self, addr: SocketAddrV4) -> Option<usize> {
        self.vips.iter().position(|v| v.addr == addr)
    }

    /// Is `(server, sport)` a backend leg of a terminated connection?
    pub(super) fn owns_backend(&self, server: SocketAddrV4, sport: u16) -> bool {
        self.by_backend.contains_key(&(server, sport))
    }

    /// Connections open.
    pub(super) fn active(&self) -> usize {
        self.by_client.len()
    }

    fn slot(&mut self) -> Option<u32> {
        if let Some(i) = self.free.pop() {
            return Some(i);
        }
        if self.conns.len() >= self.max_conns {
            return None;
        }
        self.conns.push(None);
        self.gens.push(0);
        Some((self.conns.len() - 1) as u32)
    }
}

// ---- smoltcp device over the engine's Io ----------------------------------

struct Dev<'a, 'b, Q: Queue> {
    rx: Option<&'a [u8]>,
    io: &'a mut Io<'b, Q>,
    route: Route,
}

struct RxTok<'a>(&'a [u8]);

impl phy::RxToken for RxTok<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.0)
    }
}

struct TxTok<'a, 'b, Q: Queue> {
    io: &'a mut Io<'b, Q>,
    route: Route,
}

impl<Q: Queue> phy::TxToken for TxTok<'_, '_, Q> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let r = self.route;
        let mut fr = match self.io.alloc(r.cpi) {
            Some(mut fr) => {
                if len < 20 || !fr.set_len(14 + len) {
                    let mut scratch = [0u8; 2048];
                    return f(&mut scratch[..len.min(2048)]);
                }
                fr
            }
            None => {
                // No buffer (counted by the engine): smoltcp retransmits.
                let mut scratch = [0u8; 2048];
                return f(&mut scratch[..len.min(2048)]);
            }
        };
        let out = f(&mut fr.data_mut()[14..14 + len]);
        let d = fr.data();
        let dst = Ipv4Addr::new(d[30], d[31], d[32], d[33]);
        let (pi, mac) = if Some(dst) == r.server_ip {
            (r.bpi, r.server_mac)
        } else {
            (r.cpi, r.client_mac)
        };
        let src = self.io.mac(pi);
        let d = fr.data_mut();
        d[0..6].copy_from_slice(&mac.0);
        d[6..12].copy_from_slice(&src.0);
        d[12..14].copy_from_slice(&[0x08, 0x00]);
        self.io.send(pi, fr);
        out
    }
}

impl<'a, 'b, Q: Queue> Device for Dev<'a, 'b, Q> {
    type RxToken<'t>
        = RxTok<'t>
    where
        Self: 't;
    type TxToken<'t>
        = TxTok<'t, 'b, Q>
    where
        Self: 't;

    fn receive(&mut self, _ts: SInstant) -> Option<(RxTok<'_>, TxTok<'_, 'b, Q>)> {
        let p = self.rx.take()?;
        Some((
            RxTok(p),
            TxTok {
                io: &mut *self.io,
                route: self.route,
            },
        ))
    }

    fn transmit(&mut self, _ts: SInstant) -> Option<TxTok<'_, 'b, Q>> {
        Some(TxTok {
            io: &mut *self.io,
            route: self.route,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = 1500;
        // The lcore verified the IPv4 and TCP checksums before handing the
        // segment over (`LbCore::parse`, counted `drop_tcp_bad_checksum`).
        c.checksum.ipv4 = phy::Checksum::Tx;
        c.checksum.tcp = phy::Checksum::Tx;
        c
    }
}

// ---- the backend leg as the TLS session's plaintext side -------------------

struct Leg<'s> {
    sock: Option<&'s mut tcp::Socket<'static>>,
    xff: Option<&'s mut XffInserter>,
    pending: &'s mut Vec<u8>,
}

impl Plaintext for Leg<'_> {
    fn room(&self) -> usize {
        match &self.sock {
            Some(s) if s.may_send() => {
                (s.send_capacity() - s.send_queue()).saturating_sub(self.pending.len())
            }
            _ => 0,
        }
    }

    fn put(&mut self, data: &[u8]) {
        let Some(s) = self.sock.as_mut() else {
            return;
        };
        match self.xff.as_mut() {
            None => {
                let _ = s.send_slice(data);
            }
            Some(x) => {
                let pending = &mut *self.pending;
                x.feed(data, &mut |b| {
                    let n = if pending.is_empty() {
                        s.send_slice(b).unwrap_or(0)
                    } else {
                        0
                    };
                    pending.extend_from_slice(&b[n..]);
                });
            }
        }
    }

    fn pending(&mut self) -> &[u8] {
        match self.sock.as_mut() {
            Some(s) if s.can_recv() => s.peek(usize::MAX).unwrap_or(&[]),
            _ => &[],
        }
    }

    fn consume(&mut self, mut n: usize) {
        if let Some(s) = self.sock.as_mut() {
            while n > 0 {
                match s.recv(|b| {
                    let k = n.min(b.len());
                    (k, k)
                }) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => n -= k,
                }
            }
        }
    }
}

fn sock<'s>(set: &'s mut SocketSet<'static>, h: SocketHandle) -> &'s mut tcp::Socket<'static> {
    set.get_mut::<tcp::Socket>(h)
}

fn closed(s: State) -> bool {
    matches!(s, State::Closed | State::TimeWait)
}

impl<F: Frame> LbCore<F> {
    fn term_instant(&self, now: u64) -> SInstant {
        SInstant::from_micros(
            (u128::from(now) * 1_000_000 / u128::from(self.conf.hz.max(1))) as i64,
        )
    }

    fn term_ticks(&self, d: SDuration) -> u64 {
        (u128::from(d.total_micros()) * u128::from(self.conf.hz) / 1_000_000) as u64
    }

    /// A segment for a terminated VIP (`vi`) from a client.
    pub(super) fn term_client<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        f: F,
        l3: usize,
        vi: usize,
        s: &Seg,
        now: u64,
    ) {
        let pi = self.conf.client_port;
        let f = self.term_clamp_mss(f, l3, s);
        let known = self.term.by_client.get(&(s.src, s.dst)).copied();
        if let Some((_, _, pool, b)) = known.and_then(|i| self.term_server(i)) {
            self.bstat(pool, b, |st| st.c2s_packets += 1);
        }
        let idx = match known {
            Some(i) => i,
            None => {
                let syn = s.flags.contains(TcpFlags::SYN)
                    && !s
                        .flags
                        .intersects(TcpFlags::ACK | TcpFlags::RST | TcpFlags::FIN);
                if !syn {
                    self.c.no_flow += 1;
                    // See `accept`: with several lcores this may be a live
                    // connection's segment another lcore owns.
                    if self.conf.lcores > 1 || s.flags.contains(TcpFlags::RST) {
                        return;
                    }
                    return self.reply_rst(io, pi, f, s);
                }
                match self.term_open(io, vi, s, now) {
                    Some(i) => i,
                    None => {
                        self.c.tls_refused += 1;
                        return self.reply_rst(io, pi, f, s);
                    }
                }
            }
        };
        self.term_event(io, idx, Some((f, l3)), now);
    }

    /// A segment from a backend toward a terminated connection's leg;
    /// gives the frame back when no such leg exists.
    pub(super) fn term_backend<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        f: F,
        l3: usize,
        s: &Seg,
        now: u64,
    ) -> Option<F> {
        let Some(&idx) = self.term.by_backend.get(&(s.src, s.dst.port())) else {
            return Some(f);
        };
        let f = self.term_clamp_mss(f, l3, s);
        if let Some((_, _, pool, b)) = self.term_server(idx) {
            self.bstat(pool, b, |st| st.s2c_packets += 1);
        }
        self.term_event(io, idx, Some((f, l3)), now);
        None
    }

    /// The backend leg of connection `idx`, once chosen.
    fn term_server(&self, idx: u32) -> Option<(SocketAddrV4, u16, usize, usize)> {
        self.term.conns.get(idx as usize)?.as_ref()?.server
    }

    /// A SYN (client) or SYN-ACK (backend) announcing an MSS below
    /// `lb.min_mss` is rewritten to announce `min_mss` before the TCP
    /// endpoint reads it, so no peer can make us send tiny segments.
    fn term_clamp_mss(&mut self, mut f: F, l3: usize, s: &Seg) -> F {
        if s.flags.contains(TcpFlags::SYN) {
            let d = f.data_mut();
            if let Some(ip) = d.get(l3..).map(Ipv4Packet::new_unchecked) {
                let (l4, end) = (
                    l3 + usize::from(ip.header_len()),
                    (l3 + usize::from(ip.total_len())).min(d.len()),
                );
                if let Some(seg) = d.get_mut(l4..end) {
                    let mut tcp = qsplice_wire::TcpPacket::new_unchecked(seg);
                    if tcp.clamp_mss_option(self.conf.min_mss).is_some() {
                        self.c.mss_clamped += 1;
                    }
                }
            }
        }
        f
    }

    fn term_open<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        vi: usize,
        s: &Seg,
        now: u64,
    ) -> Option<u32> {
        if self.term.half_open_count >= self.term.max_half_open {
            self.term_evict_half_open();
        }
        let idx = self.term.slot()?;
        advance_ts_clock(self.ts_clock(now));
        let route = Route {
            client_mac: s.eth_src,
            cpi: self.conf.client_port,
            server_ip: None,
            server_mac: MacAddr::ZERO,
            bpi: self.conf.backend_port,
        };
        let inst = self.term_instant(now);
        let mut cfg = Config::new(HardwareAddress::Ip);
        // smoltcp draws the connection's ISN from this seed: keyed by the
        // appliance's secret, the tuple and the clock.
        let hi = self.conf.secret.isn(s.src, s.dst, now as u32);
        let lo = self.conf.secret.isn(s.src, s.dst, (now >> 32) as u32 ^ idx);
        cfg.random_seed = (u64::from(hi) << 32) | u64::from(lo);
        let mut dev = Dev {
            rx: None,
            io,
            route,
        };
        let mut iface = Interface::new(cfg, &mut dev, inst);
        let vip = self.term.vips[vi].addr;
        let local = self.conf.local;
        iface.update_ip_addrs(|a| {
            // Prefix 0: every peer is "on link" for smoltcp (medium IP needs
            // no neighbour; routing is ours).
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(*vip.ip()), 0));
            if local != *vip.ip() {
                let _ = a.push(IpCidr::new(IpAddress::Ipv4(local), 0));
            }
        });
        let mut sockets = SocketSet::new(Vec::with_capacity(2));
        let mut cs = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; CLIENT_RX]),
            tcp::SocketBuffer::new(vec![0; CLIENT_TX]),
        );
        cs.set_nagle_enabled(false);
        cs.set_tsval_generator(Some(term_tsval));
        cs.listen(IpListenEndpoint {
            addr: Some(IpAddress::Ipv4(*vip.ip())),
            port: vip.port(),
        })
        .ok()?;
        let client_h = sockets.add(cs);
        let gen = self.term.gens[idx as usize].wrapping_add(1);
        self.term.gens[idx as usize] = gen;
        self.term.conns[idx as usize] = Some(Box::new(Conn {
            gen,
            vip: vi,
            client: s.src,
            route,
            iface,
            sockets,
            client_h,
            backend_h: None,
            server: None,
            tls: TlsSession::new(),
            xff: self.term.vips[vi]
                .x_forwarded_for
                .then(|| XffInserter::new(*s.src.ip())),
            xff_pending: Vec::new(),
            created: now,
            last: now,
            want_connect: false,
            established: false,
            syn_seen: false,
            armed: u64::MAX,
            backend_up: false,
            tried: 0,
            retried: 0,
            backend_fin_sent: false,
            client_fin_sent: false,
            failed: false,
        }));
        self.term.by_client.insert((s.src, s.dst), idx);
        self.term.half_open.push_back((idx, gen));
        self.term.half_open_count += 1;
        self.c.tls_accepted += 1;
        Some(idx)
    }

    /// Drops the oldest connection still in its TCP handshake (no RST: a
    /// flood's sources are usually forged).
    fn term_evict_half_open(&mut self) {
        while let Some((idx, gen)) = self.term.half_open.pop_front() {
            let live = self
                .term
                .conns
                .get(idx as usize)
                .and_then(Option::as_ref)
                .is_some_and(|c| c.gen == gen && !c.established);
            if live {
                if let Some(conn) = self.term.conns[idx as usize].take() {
                    self.c.tls_syn_evicted += 1;
                    self.term_free(idx, conn);
                }
                return;
            }
        }
    }

    /// Runs connection `idx` on an input frame (or a timer).
    fn term_event<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        idx: u32,
        input: Option<(F, usize)>,
        now: u64,
    ) {
        let Some(mut conn) = self.term.conns.get_mut(idx as usize).and_then(Option::take) else {
            return;
        };
        let inst = self.term_instant(now);
        if let Some((f, l3)) = &input {
            conn.last = now;
            let data = f.data();
            let ip = Ipv4Packet::new_unchecked(&data[*l3..]);
            let end = (*l3 + usize::from(ip.total_len())).min(data.len());
            let mut dev = Dev {
                rx: Some(&data[*l3..end]),
                io: &mut *io,
                route: conn.route,
            };
            conn.iface.poll(inst, &mut dev, &mut conn.sockets);
        }
        drop(input);
        for _ in 0..ROUNDS {
            let moved = self.term_drive(&mut conn);
            if conn.want_connect {
                self.term_connect(io, idx, &mut conn, now);
            }
            self.term_lifecycle(&mut conn, now);
            let mut dev = Dev {
                rx: None,
                io: &mut *io,
                route: conn.route,
            };
            let r = conn.iface.poll(inst, &mut dev, &mut conn.sockets);
            if !moved && r == PollResult::None {
                break;
            }
        }
        let cstate = sock(&mut conn.sockets, conn.client_h).state();
        if cstate != State::Listen {
            conn.syn_seen = true;
        } else if conn.syn_seen && !conn.failed {
            // smoltcp goes back to LISTEN on a RST in SYN-RECEIVED: the
            // client gave up; nothing is left to wait for.
            conn.failed = true;
            self.c.tls_client_reset += 1;
        }
        if !conn.established && !matches!(cstate, State::Listen | State::SynReceived) {
            conn.established = true;
            self.term.half_open_count = self.term.half_open_count.saturating_sub(1);
            self.term.stats[conn.vip].connections += 1;
        }
        if self.term_finished(&conn) {
            self.term_free(idx, conn);
            return;
        }
        // Next wake-up: smoltcp's timers, the handshake deadline, idle.
        let mut due = now + self.conf.idle_timeout_ms.max(1) * self.ms;
        if let Some(at) = conn.iface.poll_at(inst, &conn.sockets) {
            let d = at - inst;
            due = due.min(now + self.term_ticks(d).max(self.ms));
        }
        if conn.tls.is_handshaking() {
            let hs = self.term.vips[conn.vip].ctx.handshake_timeout;
            let t = conn.created + (hs.as_micros() * u128::from(self.conf.hz) / 1_000_000) as u64;
            due = due.min(t.max(now + self.ms));
        }
        if conn.want_connect {
            due = due.min(now + 10 * self.ms);
        }
        if due < conn.armed {
            conn.armed = due;
            self.term.timers.push(Reverse((due, idx, conn.gen)));
        }
        self.term.conns[idx as usize] = Some(conn);
    }

    /// Moves bytes client socket → TLS → backend socket and back.
    /// Returns whether anything moved.
    fn term_drive(&mut self, conn: &mut Conn) -> bool {
        let t = &mut self.term;
        let vip = &t.vips[conn.vip];
        let stats = &mut t.stats[conn.vip];
        let mut moved = false;
        {
            let cs = sock(&mut conn.sockets, conn.client_h);
            while cs.can_recv() && conn.tls.rx_room() > 0 {
                match cs.recv(|b| {
                    let n = conn.tls.receive(b);
                    (n, n)
                }) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => moved = true,
                }
            }
        }
        if let Some(h) = conn.backend_h {
            let bs = sock(&mut conn.sockets, h);
            while !conn.xff_pending.is_empty() {
                match bs.send_slice(&conn.xff_pending) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        conn.xff_pending.drain(..n);
                        moved = true;
                    }
                }
            }
        }
        let before = (conn.tls.outgoing().len(), conn.tls.rx_pending());
        let bytes_before = (stats.bytes_in, stats.bytes_out);
        let p = {
            let (a, b) = (conn.client_h, conn.backend_h);
            let leg = match b {
                Some(h) if h != a => Some(sock(&mut conn.sockets, h)),
                _ => None,
            };
            let mut leg = Leg {
                sock: leg,
                xff: conn.xff.as_mut(),
                pending: &mut conn.xff_pending,
            };
            conn.tls.process(&vip.ctx, &mut t.scratch, &mut leg, stats)
        };
        if conn.xff_pending.len() > XFF_PENDING_MAX {
            let st = &mut t.stats[conn.vip];
            conn.tls.abort(Failure::BufferOverflow, st);
        }
        moved |= before != (conn.tls.outgoing().len(), conn.tls.rx_pending());
        if p.handshake_done {
            conn.want_connect = true;
        }
        // Plaintext relayed each way, on the backend's counters too (the
        // VIP's `c2s_bytes` / `s2c_bytes` are their sums).
        let st = &t.stats[conn.vip];
        let (din, dout) = (
            st.bytes_in - bytes_before.0,
            st.bytes_out - bytes_before.1,
        );
        let cs = sock(&mut conn.sockets, conn.client_h);
        while !conn.tls.outgoing().is_empty() && cs.can_send() {
            match cs.send_slice(conn.tls.outgoing()) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    conn.tls.consume_outgoing(n);
                    moved = true;
                }
            }
        }
        if din | dout != 0 {
            if let Some((_, _, pool, b)) = conn.server {
                self.bstat(pool, b, |st| {
                    st.c2s_bytes += din;
                    st.s2c_bytes += dout;
                });
            }
        }
        moved
    }

    /// Picks a backend and opens the backend leg.
    fn term_connect<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        idx: u32,
        conn: &mut Conn,
        now: u64,
    ) {
        let pool = self.term.vips[conn.vip].pool;
        let picked = self.pools.get(pool).and_then(|snap| {
            let cur = self.cursors.get_mut(pool)?;
            let b = snap.pick_excluding(client_hash(*conn.client.ip()), cur, conn.tried)?;
            Some((b, snap.backends[b].addr))
        });
        let Some((b, server)) = picked else {
            if conn.retried > 0 {
                self.c.retry_no_backend += 1;
            } else {
                self.c.conn_no_backend += 1;
            }
            return self.term_fail_backend(conn);
        };
        let Some(mac) = io.resolve(self.conf.backend_port, *server.ip()) else {
            // ARP is under way; retried from the timer.
            if now.saturating_sub(conn.created) > 3000 * self.ms {
                self.c.drop_unresolved += 1;
                self.term_fail_backend(conn);
            }
            return;
        };
        let Some(sport) = self.alloc_sport(server) else {
            self.c.no_source_port += 1;
            return self.term_fail_backend(conn);
        };
        conn.want_connect = false;
        let mut bs = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; BACKEND_RX]),
            tcp::SocketBuffer::new(vec![0; BACKEND_TX]),
        );
        bs.set_nagle_enabled(false);
        bs.set_tsval_generator(Some(term_tsval));
        // The connect gives up like the splice path's (`syn_rto_ms`
        // doubling over `syn_retries`); cleared once established.
        let rto = self.conf.syn_rto_ms.max(1);
        let give_up = rto * ((2u64 << self.conf.syn_retries.min(10)) - 1);
        bs.set_timeout(Some(SDuration::from_millis(give_up)));
        let local = SocketAddrV4::new(self.conf.local, sport);
        if bs
            .connect(
                conn.iface.context(),
                (IpAddress::Ipv4(*server.ip()), server.port()),
                (IpAddress::Ipv4(*local.ip()), sport),
            )
            .is_err()
        {
            return self.term_fail_backend(conn);
        }
        conn.backend_h = Some(conn.sockets.add(bs));
        conn.route.server_ip = Some(*server.ip());
        conn.route.server_mac = mac;
        conn.server = Some((server, sport, pool, b));
        conn.tried |= 1u64 << (b % 64);
        self.term.by_backend.insert((server, sport), idx);
        self.c.tls_backend_opened += 1;
        self.bstat(pool, b, |st| {
            st.opened += 1;
            st.active += 1;
        });
    }

    fn term_fail_backend(&mut self, conn: &mut Conn) {
        conn.want_connect = false;
        if !conn.failed {
            conn.failed = true;
            self.c.tls_backend_failed += 1;
            self.c.tls_reset += 1;
            if let Some((_, _, pool, b)) = conn.server {
                self.bstat(pool, b, |st| st.failed += 1);
            }
        }
        sock(&mut conn.sockets, conn.client_h).abort();
        if let Some(h) = conn.backend_h {
            sock(&mut conn.sockets, h).abort();
        }
    }

    /// Half-closes, failures and timeouts.
    fn term_lifecycle(&mut self, conn: &mut Conn, now: u64) {
        if conn.failed {
            return;
        }
        let hs = self.term.vips[conn.vip].ctx.handshake_timeout;
        let hs_ticks = (hs.as_micros() * u128::from(self.conf.hz) / 1_000_000) as u64;
        if conn.tls.is_handshaking() && now.saturating_sub(conn.created) >= hs_ticks {
            let st = &mut self.term.stats[conn.vip];
            conn.tls.abort(Failure::HandshakeTimeout, st);
            conn.failed = true;
            self.c.tls_reset += 1;
            sock(&mut conn.sockets, conn.client_h).abort();
            return;
        }
        if now.saturating_sub(conn.last) >= self.conf.idle_timeout_ms.max(1) * self.ms {
            conn.failed = true;
            self.c.tls_reset += 1;
            sock(&mut conn.sockets, conn.client_h).abort();
            if let Some(h) = conn.backend_h {
                sock(&mut conn.sockets, h).abort();
            }
            return;
        }
        if conn.tls.failure().is_some() {
            // The alert (if any) is queued on the client socket: close after it.
            if conn.tls.outgoing().is_empty() && !conn.client_fin_sent {
                conn.client_fin_sent = true;
                sock(&mut conn.sockets, conn.client_h).close();
            }
            if let Some(h) = conn.backend_h {
                sock(&mut conn.sockets, h).abort();
            }
            return;
        }
        let client_state = sock(&mut conn.sockets, conn.client_h).state();
        if conn.established && client_state == State::Closed && !conn.client_fin_sent {
            // The client reset its leg (we never sent our FIN, so this is
            // no orderly close): end the backend leg now.
            conn.failed = true;
            self.c.tls_client_reset += 1;
            if conn.tls.is_handshaking() {
                let st = &mut self.term.stats[conn.vip];
                conn.tls.abort(Failure::ClientClosed, st);
            }
            if let Some(h) = conn.backend_h {
                sock(&mut conn.sockets, h).abort();
            }
            return;
        }
        if let Some(h) = conn.backend_h {
            let bs = sock(&mut conn.sockets, h);
            let bstate = bs.state();
            if bstate == State::Established && !conn.backend_up {
                conn.backend_up = true;
                bs.set_timeout(None);
                if let Some((_, _, pool, b)) = conn.server {
                    self.bstat(pool, b, |st| st.spliced += 1);
                }
            }
            if !conn.backend_up && bstate == State::Closed {
                // Refused (RST) or the connect timed out: another backend
                // while retries last (the client's data waits in the TLS
                // session meanwhile).
                if let Some((server, sport, pool, b)) = conn.server.take() {
                    self.term.by_backend.remove(&(server, sport));
                    self.bstat(pool, b, |st| {
                        st.failed += 1;
                        st.active = st.active.saturating_sub(1);
                    });
                    conn.sockets.remove(h);
                    conn.backend_h = None;
                    conn.route.server_ip = None;
                }
                if conn.retried < self.conf.retries {
                    conn.retried += 1;
                    self.c.conn_retried += 1;
                    conn.want_connect = true;
                    return;
                }
                return self.term_fail_backend(conn);
            }
            // Backend finished its response: close_notify, then FIN.
            if conn.backend_up && !bs.may_recv() && bs.recv_queue() == 0 && !conn.tls.close_sent() {
                conn.tls.close();
            }
            // Client finished (close_notify or FIN) and all it sent went
            // through: FIN to the backend.
            let client_done = conn.tls.peer_closed()
                || (!matches!(client_state, State::Listen | State::SynReceived)
                    && !sock(&mut conn.sockets, conn.client_h).may_recv());
            let bs = sock(&mut conn.sockets, h);
            if client_done
                && conn.backend_up
                && !conn.backend_fin_sent
                && conn.tls.rx_pending() == 0
                && conn.xff_pending.is_empty()
            {
                conn.backend_fin_sent = true;
                bs.close();
            }
        } else if !matches!(client_state, State::Listen | State::SynReceived)
            && !sock(&mut conn.sockets, conn.client_h).may_recv()
            && conn.tls.is_handshaking()
        {
            // The client gave up during the handshake.
            let st = &mut self.term.stats[conn.vip];
            conn.tls.abort(Failure::ClientClosed, st);
            sock(&mut conn.sockets, conn.client_h).close();
        }
        if conn.tls.close_sent() && conn.tls.outgoing().is_empty() && !conn.client_fin_sent {
            conn.client_fin_sent = true;
            sock(&mut conn.sockets, conn.client_h).close();
        }
    }

    fn term_finished(&mut self, conn: &Conn) -> bool {
        let c = conn.sockets.get::<tcp::Socket>(conn.client_h).state();
        let b = conn
            .backend_h
            .map(|h| conn.sockets.get::<tcp::Socket>(h).state());
        let client_gone = closed(c) || (c == State::Listen && conn.failed);
        client_gone && b.is_none_or(closed)
    }

    fn term_free(&mut self, idx: u32, conn: Box<Conn>) {
        if !conn.established {
            self.term.half_open_count = self.term.half_open_count.saturating_sub(1);
        }
        if self.term.half_open.len() > 2 * self.term.max_half_open + 64 {
            // Drop stale entries (connections gone or established).
            let t = &mut self.term;
            let conns = &t.conns;
            t.half_open.retain(|&(i, g)| {
                conns
                    .get(i as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|c| c.gen == g && !c.established)
            });
        }
        let vip = self.term.vips[conn.vip].addr;
        self.term.by_client.remove(&(conn.client, vip));
        if let Some((server, sport, pool, b)) = conn.server {
            self.term.by_backend.remove(&(server, sport));
            self.bstat(pool, b, |st| st.active = st.active.saturating_sub(1));
        }
        self.term.free.push(idx);
        self.c.tls_closed += 1;
        let clean = !conn.failed
            && conn.backend_up
            && conn.client_fin_sent
            && conn.tls.failure().is_none();
        if clean {
            self.c.tls_completed += 1;
        } else {
            self.c.tls_failed += 1;
            if let (true, Some((_, _, pool, b))) = (conn.backend_up, conn.server) {
                self.bstat(pool, b, |st| st.reset += 1);
            }
        }
    }

    /// Runs due timers.
    pub(super) fn term_timers<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, now: u64) {
        // Once per tick, not per segment: one shared cache line.
        if !self.term.vips.is_empty() {
            advance_ts_clock(self.ts_clock(now));
        }
        let mut budget = 4096;
        while let Some(&Reverse((due, idx, gen))) = self.term.timers.peek() {
            if due > now || budget == 0 {
                break;
            }
            budget -= 1;
            self.term.timers.pop();
            let live = match self
                .term
                .conns
                .get_mut(idx as usize)
                .and_then(Option::as_mut)
            {
                // Only the entry the connection armed last counts.
                Some(c) if c.gen == gen && c.armed == due => {
                    c.armed = u64::MAX;
                    true
                }
                _ => false,
            };
            if live {
                self.term_event(io, idx, None, now);
            }
        }
        self.c.tls_active = self.term.active() as u64;
    }
}
