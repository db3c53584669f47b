//! The load generator on an lcore: engine [`Service`]s that run HTTP/1.1
//! client sessions ([`LoadgenClient`]) or server sessions
//! ([`LoadgenServer`]) on one port, over IPv4, with the engine answering
//! ARP and ICMP as for every mode.
//!
//! * **Client**: each session owns one source port of `sport_min..=
//!   sport_max` (its slot: a segment finds its session in O(1)); up to
//!   `concurrency` sessions at once, `connections` in all; a session
//!   opens as soon as the target's MAC is known, sends `requests`
//!   requests one after the other and closes; a finished slot is reused.
//! * **Server**: SYNs to `local:port` get a SYN-ACK from a [`PassiveOpen`]
//!   kept per client address and port until the handshake's ACK; then a
//!   [`ServerSession`] answers each request head with `response`.
//! * Segments are checked (IPv4 header, TCP checksum) before an endpoint
//!   sees them; malformed or stray ones are counted and dropped. Timers:
//!   every tick (1 ms) the sessions whose deadline passed send what is due.
//!
//! Allocation happens when a session opens (its endpoint's buffers), never
//! per segment.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use qsplice_engine::{Io, Service};
use qsplice_netdev::{Frame, Queue};
use qsplice_tcp::{Config, Now, Segment, SegmentOut, MAX_SEGS_PER_CALL};
use qsplice_wire::{ethertype, ip_proto, EthernetFrame, Ipv4Packet, MacAddr, TcpPacket};

use crate::http::{ClientEvent, ClientSession, PassiveOpen, ServerSession};

/// Shortest frame handed to a port (without FCS).
const MIN_FRAME: usize = 60;

/// Counters of a load-generator lcore (both roles use the ones that apply).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadgenStats {
    /// Connections opened (SYN sent / SYN answered).
    pub opened: u64,
    /// Handshakes completed.
    pub connected: u64,
    /// Connections that ended with both FINs after all their requests.
    pub completed: u64,
    /// Connections that ended otherwise (refused, timed out, reset,
    /// aborted, closed early).
    pub failed: u64,
    /// Responses read whole / requests answered (server).
    pub responses: u64,
    /// … of them with a 2xx status.
    pub status_2xx: u64,
    /// Bad responses (framing, status line).
    pub bad_responses: u64,
    /// Response body bytes.
    pub body_bytes: u64,
    /// Sum and maximum of connect times, µs.
    pub connect_us_sum: u64,
    /// See `connect_us_sum`.
    pub connect_us_max: u64,
    /// Sum and maximum of request → whole response times, µs.
    pub response_us_sum: u64,
    /// See `response_us_sum`.
    pub response_us_max: u64,
    /// Segments dropped: malformed, bad checksum, for no session.
    pub segs_dropped: u64,
    /// Segments not sent: no mbuf, or the next hop not resolved yet.
    pub segs_unsent: u64,
}

/// [`LoadgenStats`] as the control thread reads them: published by the
/// lcore every tick (relaxed atomics, no lock), and `finished` once a
/// client lcore opened and ended every connection.
#[derive(Debug, Default)]
pub struct SharedStats {
    vals: [AtomicU64; 16],
    finished: AtomicBool,
}

impl SharedStats {
    fn publish(&self, s: &LoadgenStats, finished: bool) {
        for (a, v) in self.vals.iter().zip(s.to_array()) {
            a.store(v, Ordering::Relaxed);
        }
        self.finished.store(finished, Ordering::Release);
    }

    /// The last published counters.
    pub fn snapshot(&self) -> LoadgenStats {
        let mut a = [0u64; 16];
        for (o, v) in a.iter_mut().zip(&self.vals) {
            *o = v.load(Ordering::Relaxed);
        }
        LoadgenStats::from_array(a)
    }

    /// A client lcore is done with every connection.
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }
}

impl LoadgenStats {
    fn to_array(&self) -> [u64; 16] {
        [
            self.opened,
            self.connected,
            self.completed,
            self.failed,
            self.responses,
            self.status_2xx,
            self.bad_responses,
            self.body_bytes,
            self.connect_us_sum,
            self.connect_us_max,
            self.response_us_sum,
            self.response_us_max,
            self.segs_dropped,
            self.segs_unsent,
            0,
            0,
        ]
    }

    fn from_array(a: [u64; 16]) -> LoadgenStats {
        LoadgenStats {
            opened: a[0],
            connected: a[1],
            completed: a[2],
            failed: a[3],
            responses: a[4],
            status_2xx: a[5],
            bad_responses: a[6],
            body_bytes: a[7],
            connect_us_sum: a[8],
            connect_us_max: a[9],
            response_us_sum: a[10],
            response_us_max: a[11],
            segs_dropped: a[12],
            segs_unsent: a[13],
        }
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
    let Some(dst_mac) = io.resolve(pi, *dst.ip()) else {
        return false;
    };
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

/// A TCP segment for `local` in frame `f` (IPv4 at `l3`, header valid per
/// the engine): (source, destination port, TCP bytes range) if the
/// checksum verifies.
fn tcp_in(f: &[u8], l3: usize) -> Option<(SocketAddrV4, u16, std::ops::Range<usize>)> {
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
        tcp.dst_port(),
        l4..end,
    ))
}

fn now_of(now: u64, hz: u64) -> Now {
    let us = (u128::from(now) * 1_000_000 / u128::from(hz.max(1))) as u64;
    Now {
        us,
        tsval: (us / 1000) as u32,
    }
}

/// A client lcore's settings.
#[derive(Clone, Debug)]
pub struct ClientConf {
    /// The port it runs on.
    pub port: usize,
    /// Our address on it.
    pub local: Ipv4Addr,
    /// Source ports, one per session.
    pub sport_min: u16,
    /// See `sport_min`.
    pub sport_max: u16,
    /// The server.
    pub target: SocketAddrV4,
    /// Connections to open in all.
    pub connections: u64,
    /// Connections open at once at most.
    pub concurrency: u32,
    /// Requests per connection.
    pub requests: u32,
    /// The request's bytes (whole).
    pub request: Vec<u8>,
    /// The requests are `HEAD`s.
    pub head: bool,
    /// TCP settings of each endpoint.
    pub tcp: Config,
    /// Clock frequency of the worker's `now`.
    pub hz: u64,
}

/// HTTP/1.1 clients on an lcore. See the module docs.
#[derive(Debug)]
pub struct LoadgenClient {
    conf: ClientConf,
    slots: Vec<Option<Box<ClientSession>>>,
    free: Vec<u16>,
    active: u32,
    started: u64,
    iss: u32,
    stats: LoadgenStats,
    shared: Option<Arc<SharedStats>>,
}

impl LoadgenClient {
    /// A client lcore for `conf` (its slot table allocated here).
    pub fn new(conf: ClientConf) -> LoadgenClient {
        let n = usize::from(conf.sport_max.saturating_sub(conf.sport_min)) + 1;
        LoadgenClient {
            slots: (0..n).map(|_| None).collect(),
            free: (0..n as u16).rev().collect(),
            active: 0,
            started: 0,
            iss: 0x5eed_1000,
            stats: LoadgenStats::default(),
            shared: None,
            conf,
        }
    }

    /// Publish the counters to `shared` every tick.
    pub fn with_shared(mut self, shared: Arc<SharedStats>) -> LoadgenClient {
        self.shared = Some(shared);
        self
    }

    /// Counters so far.
    pub fn stats(&self) -> &LoadgenStats {
        &self.stats
    }

    /// Every connection opened and ended.
    pub fn is_finished(&self) -> bool {
        self.started >= self.conf.connections && self.active == 0
    }

    fn drive<Q: Queue>(&mut self, io: &mut Io<'_, Q>, i: usize, now: Now) {
        let Some(s) = self.slots[i].as_mut() else {
            return;
        };
        let st = &mut self.stats;
        let mut ev = |e: ClientEvent| match e {
            ClientEvent::Connected { us } => {
                st.connected += 1;
                st.connect_us_sum += us;
                st.connect_us_max = st.connect_us_max.max(us);
            }
            ClientEvent::Response {
                status,
                body_len,
                us,
                ..
            } => {
                st.responses += 1;
                st.status_2xx += u64::from((200..300).contains(&status));
                st.body_bytes += body_len;
                st.response_us_sum += us;
                st.response_us_max = st.response_us_max.max(us);
            }
            ClientEvent::BadResponse(_) => st.bad_responses += 1,
            ClientEvent::ClosedEarly => {}
            ClientEvent::Ended { .. } => {}
        };
        let req = &self.conf.request;
        s.step(req, now, &mut ev);
        let (pi, src, dst) = (
            self.conf.port,
            SocketAddrV4::new(self.conf.local, self.conf.sport_min + i as u16),
            self.conf.target,
        );
        let mut unsent = 0;
        s.endpoint().output(now, MAX_SEGS_PER_CALL, |seg| {
            if !emit(io, pi, src, dst, seg) {
                unsent += 1;
            }
            true
        });
        st.segs_unsent += unsent;
        s.step(req, now, &mut ev);
        if s.is_done() {
            let ok = s.answered() == self.conf.requests && s.endpoint().outcome().is_none();
            if ok {
                self.stats.completed += 1;
            } else {
                self.stats.failed += 1;
            }
            self.slots[i] = None;
            self.free.push(i as u16);
            self.active -= 1;
        }
    }

    fn open<Q: Queue>(&mut self, io: &mut Io<'_, Q>, now: Now) {
        while self.started < self.conf.connections && self.active < self.conf.concurrency {
            // Wait for the target's MAC (ARP is asked meanwhile).
            if io.resolve(self.conf.port, *self.conf.target.ip()).is_none() {
                return;
            }
            let Some(i) = self.free.pop() else {
                return;
            };
            self.iss = self.iss.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let s = ClientSession::connect(
                &self.conf.tcp,
                self.iss,
                self.conf.requests,
                self.conf.head,
                now,
            );
            self.slots[usize::from(i)] = Some(Box::new(s));
            self.active += 1;
            self.started += 1;
            self.stats.opened += 1;
            self.drive(io, usize::from(i), now);
        }
    }
}

impl<Q: Queue> Service<Q> for LoadgenClient {
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
        let now = now_of(now, self.conf.hz);
        let Some((src, dport, tcp)) = tcp_in(f.data(), l3) else {
            self.stats.segs_dropped += 1;
            return None;
        };
        let i = usize::from(dport.wrapping_sub(self.conf.sport_min));
        let known = src == self.conf.target && i < self.slots.len() && self.slots[i].is_some();
        let seg = f.data().get(tcp).and_then(Segment::parse);
        match (known, seg) {
            (true, Some(seg)) => {
                if let Some(s) = self.slots[i].as_mut() {
                    s.endpoint().input(&seg, now);
                }
                self.drive(io, i, now);
            }
            _ => self.stats.segs_dropped += 1,
        }
        None
    }

    fn poll(&mut self, io: &mut Io<'_, Q>, now: u64) -> bool {
        let before = self.started;
        self.open(io, now_of(now, self.conf.hz));
        self.started != before
    }

    fn finish(&mut self, _io: &mut Io<'_, Q>, _now: u64) {
        if let Some(sh) = &self.shared {
            sh.publish(&self.stats, self.is_finished());
        }
    }

    fn tick(&mut self, io: &mut Io<'_, Q>, now: u64) {
        let now = now_of(now, self.conf.hz);
        if let Some(sh) = &self.shared {
            sh.publish(&self.stats, self.is_finished());
        }
        for i in 0..self.slots.len() {
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
    /// The response sent for each request (whole).
    pub response: Vec<u8>,
    /// Connections (and pending handshakes) held at most.
    pub max_conns: usize,
    /// TCP settings of each endpoint.
    pub tcp: Config,
    /// Clock frequency of the worker's `now`.
    pub hz: u64,
}

enum Conn {
    /// SYN answered at µs; waiting for the ACK.
    Pending(PassiveOpen, u64),
    Up(Box<ServerSession>),
}

/// A handshake not completed this long after the SYN is forgotten, µs.
const PENDING_US: u64 = 3_000_000;

/// HTTP/1.1 servers on an lcore. See the module docs.
pub struct LoadgenServer {
    conf: ServerConf,
    conns: HashMap<SocketAddrV4, Conn>,
    /// Reused by `tick` (no allocation per tick).
    due: Vec<SocketAddrV4>,
    iss: u32,
    stats: LoadgenStats,
    shared: Option<Arc<SharedStats>>,
}

impl std::fmt::Debug for LoadgenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadgenServer")
            .field("conns", &self.conns.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl LoadgenServer {
    /// A server lcore for `conf`.
    pub fn new(conf: ServerConf) -> LoadgenServer {
        LoadgenServer {
            conns: HashMap::with_capacity(conf.max_conns),
            due: Vec::with_capacity(conf.max_conns),
            iss: 0x0bad_5eed,
            stats: LoadgenStats::default(),
            shared: None,
            conf,
        }
    }

    /// Publish the counters to `shared` every tick.
    pub fn with_shared(mut self, shared: Arc<SharedStats>) -> LoadgenServer {
        self.shared = Some(shared);
        self
    }

    /// Counters so far.
    pub fn stats(&self) -> &LoadgenStats {
        &self.stats
    }

    /// Connections (and pending handshakes) held now.
    pub fn conns(&self) -> usize {
        self.conns.len()
    }

    /// Steps connection `peer` and sends what is due; drops it once closed.
    fn drive<Q: Queue>(&mut self, io: &mut Io<'_, Q>, peer: SocketAddrV4, now: Now) {
        let Some(Conn::Up(s)) = self.conns.get_mut(&peer) else {
            return;
        };
        let before = s.requests();
        s.step(&self.conf.response);
        let (pi, src) = (self.conf.port, self.conf.listen);
        let mut unsent = 0;
        s.endpoint().output(now, MAX_SEGS_PER_CALL, |seg| {
            if !emit(io, pi, src, peer, seg) {
                unsent += 1;
            }
            true
        });
        s.step(&self.conf.response);
        self.stats.responses += s.requests() - before;
        self.stats.segs_unsent += unsent;
        if s.is_closed() {
            if s.endpoint().outcome().is_none() {
                self.stats.completed += 1;
            } else {
                self.stats.failed += 1;
            }
            self.conns.remove(&peer);
        }
    }
}

impl<Q: Queue> Service<Q> for LoadgenServer {
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
        let now = now_of(now, self.conf.hz);
        let Some((peer, dport, tcp)) = tcp_in(f.data(), l3) else {
            self.stats.segs_dropped += 1;
            return None;
        };
        let Some(seg) = f.data().get(tcp).and_then(Segment::parse) else {
            self.stats.segs_dropped += 1;
            return None;
        };
        if dport != self.conf.listen.port() {
            self.stats.segs_dropped += 1;
            return None;
        }
        let syn = seg.flags.contains(qsplice_tcp::TcpFlags::SYN)
            && !seg.flags.contains(qsplice_tcp::TcpFlags::ACK);
        match self.conns.get_mut(&peer) {
            Some(Conn::Up(s)) => {
                s.endpoint().input(&seg, now);
                self.drive(io, peer, now);
            }
            Some(Conn::Pending(po, _)) if !syn => {
                let po = *po;
                match po.complete(&self.conf.tcp, &seg, now) {
                    Some(ep) => {
                        self.stats.connected += 1;
                        self.conns
                            .insert(peer, Conn::Up(Box::new(ServerSession::new(ep))));
                        self.drive(io, peer, now);
                    }
                    None => self.stats.segs_dropped += 1,
                }
            }
            _ if syn => {
                if !self.conns.contains_key(&peer) && self.conns.len() >= self.conf.max_conns {
                    self.stats.segs_dropped += 1;
                    return None;
                }
                self.iss = self.iss.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let po = PassiveOpen::answer(&self.conf.tcp, &seg, self.iss, now)?;
                if !emit(io, self.conf.port, self.conf.listen, peer, &po.syn_ack()) {
                    self.stats.segs_unsent += 1;
                }
                if !matches!(self.conns.get(&peer), Some(Conn::Pending(..))) {
                    self.stats.opened += 1;
                }
                self.conns.insert(peer, Conn::Pending(po, now.us));
            }
            _ => self.stats.segs_dropped += 1,
        }
        None
    }

    fn finish(&mut self, _io: &mut Io<'_, Q>, _now: u64) {
        if let Some(sh) = &self.shared {
            sh.publish(&self.stats, false);
        }
    }

    fn tick(&mut self, io: &mut Io<'_, Q>, now: u64) {
        let now = now_of(now, self.conf.hz);
        if let Some(sh) = &self.shared {
            sh.publish(&self.stats, false);
        }
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        let before = self.conns.len();
        self.conns.retain(|_, c| match c {
            Conn::Pending(_, at) => now.us.saturating_sub(*at) < PENDING_US,
            Conn::Up(_) => true,
        });
        self.stats.failed += (before - self.conns.len()) as u64;
        due.extend(self.conns.iter_mut().filter_map(|(p, c)| match c {
            Conn::Up(s) if s.poll_at().is_some_and(|t| t <= now.us) => Some(*p),
            _ => None,
        }));
        for &p in &due {
            self.drive(io, p, now);
        }
        self.due = due;
    }
}
