//! Per-lcore loops of `qsplice dhcp-server` and `qsplice dhcp-tester`,
//! generic over [`qsplice_netdev::Queue`] and [`qsplice_netdev::Clock`]:
//! the same code runs on DPDK queues with the TSC and, in tests, on
//! [`qsplice_netdev::mem::MemQueue`] with a manual clock.
//!
//! Each iteration is bounded: one rx burst, the replies it calls for, the
//! due delayed replies (at most a burst), one tester poll (at most a burst),
//! one tx burst. After construction nothing allocates per packet: frames
//! come from the queue's pool, replies are built in preallocated buffers,
//! delayed replies wait in a preallocated slot table ordered by a
//! preallocated heap. The control thread reads [`LoopCounters`] (atomics)
//! and a snapshot the loop publishes every `publish_every` ticks through a
//! mutex the loop only ever `try_lock`s.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use hdrhistogram::Histogram;
use qsplice_netdev::{Burst, Clock, Frame, Queue, MAX_BURST};
use qsplice_wire::{ethertype, ArpOp, ArpPacket, ArpRepr, EthernetFrame, MacAddr};

use crate::client::{ReplyEvent, Tester, TxBatch};
use crate::client6::Tester6;
use crate::frame::parse_frame;
use crate::frame6::{is_ipv6, neighbor_advert};
use crate::frame6::{parse_frame6, Frame6Error};

use crate::link6::{Server6Link, Server6Report};
use crate::server::{Server, ServerReport};
use crate::stats::{TesterCounters, TesterReport};

/// The virtual clients a [`TesterLoop`] drives: DHCPv4 ([`Tester`]) or
/// DHCPv6 ([`crate::client6::Tester6`]).
pub trait Clients {
    /// Writes the frames due at `now` into `batch`; returns how many.
    fn poll(&mut self, now: u64, batch: &mut TxBatch) -> usize;
    /// Whether a received frame (neither ARP nor a Neighbor Solicitation)
    /// can be a reply to these clients; `ours` says whether a destination
    /// MAC is one of the tester's.
    fn relevant(&self, frame: &[u8], ours: &dyn Fn(MacAddr) -> bool) -> bool;
    /// Handles a relevant frame; returns a client and the IPv4 address it
    /// was just bound to (the loop then answers ARP for it).
    fn on_frame(&mut self, now: u64, frame: &[u8]) -> Option<(u32, Ipv4Addr)>;
    /// Whether every client finished.
    fn is_finished(&self) -> bool;
    /// Clients in flight.
    fn in_flight(&self) -> u32;
    /// Protocol counters.
    fn counters(&self) -> &TesterCounters;
    /// The report at `now`.
    fn report(&self, now: u64) -> TesterReport;
    /// Latencies: first exchange (DISCOVER→OFFER / SOLICIT→ADVERTISE),
    /// second (REQUEST→ACK / REQUEST→REPLY), whole.
    fn histograms(&self) -> [&Histogram<u64>; 3];
    /// Client `i`'s MAC.
    fn client_mac(&self, i: u32) -> MacAddr;
    /// The address client `i` holds.
    fn lease(&self, i: u32) -> Option<IpAddr>;
    /// The prefix delegated to client `i` (DHCPv6).
    fn prefix(&self, _i: u32) -> Option<(Ipv6Addr, u8)> {
        None
    }
    /// The MAC that answers a Neighbor Solicitation for `target` (DHCPv6:
    /// the clients' link-local addresses, the relay's address).
    fn nd_owner(&self, _target: Ipv6Addr) -> Option<MacAddr> {
        None
    }
}

impl Clients for Tester {
    fn poll(&mut self, now: u64, batch: &mut TxBatch) -> usize {
        Tester::poll(self, now, batch)
    }

    fn relevant(&self, data: &[u8], ours: &dyn Fn(MacAddr) -> bool) -> bool {
        // Cheap prefilter: only server → client (or → relay) datagrams
        // addressed to one of our MACs reach the tester; our own requests,
        // seen again in promiscuous mode, do not.
        match parse_frame(data) {
            Ok(p) => {
                ours(p.meta.dst_mac)
                    && p.meta.src_port == SERVER_PORT
                    && (p.meta.dst_port == CLIENT_PORT
                        || (self.is_relay() && p.meta.dst_port == SERVER_PORT))
            }
            // A damaged frame to one of our MACs is counted by the tester
            // (parse errors); anything else is not ours.
            Err(_) => data.len() >= 6 && ours(MacAddr(data[0..6].try_into().unwrap_or([0; 6]))),
        }
    }

    fn on_frame(&mut self, now: u64, frame: &[u8]) -> Option<(u32, Ipv4Addr)> {
        match self.on_reply(now, frame) {
            Ok(ReplyEvent::Ack(i, a)) => Some((i, a)),
            _ => None,
        }
    }

    fn is_finished(&self) -> bool {
        Tester::is_finished(self)
    }

    fn in_flight(&self) -> u32 {
        Tester::in_flight(self)
    }

    fn counters(&self) -> &TesterCounters {
        &self.stats().counters
    }

    fn report(&self, now: u64) -> TesterReport {
        Tester::report(self, now)
    }

    fn histograms(&self) -> [&Histogram<u64>; 3] {
        let st = self.stats();
        [
            st.discover_offer.histogram(),
            st.request_ack.histogram(),
            st.total.histogram(),
        ]
    }

    fn client_mac(&self, i: u32) -> MacAddr {
        Tester::client_mac(self, i)
    }

    fn lease(&self, i: u32) -> Option<IpAddr> {
        self.client_addr(i).map(IpAddr::V4)
    }
}
use crate::wire::{CLIENT_PORT, SERVER_PORT};

/// Largest frame a delayed-reply slot holds.
pub const SLOT_LEN: usize = 1024;

/// Counters of a loop's own I/O (not the protocol's), read by the control
/// thread at any time.
#[derive(Debug, Default)]
pub struct LoopCounters {
    /// Frames received.
    pub rx_frames: AtomicU64,
    /// Frames sent.
    pub tx_frames: AtomicU64,
    /// Frames the device did not take (tx ring full), dropped.
    pub tx_full: AtomicU64,
    /// No mbuf to build a frame in.
    pub alloc_failed: AtomicU64,
    /// ARP requests answered.
    pub arp_replies: AtomicU64,
    /// IPv6 Neighbor Solicitations answered.
    pub nd_adverts: AtomicU64,
    /// Frames that were not for us (other ARP, non-IPv4, other MACs, our own
    /// requests seen again in promiscuous mode).
    pub ignored: AtomicU64,
    /// Delayed replies dropped because every delay slot was in use.
    pub delay_overflow: AtomicU64,
}

impl LoopCounters {
    fn add(c: &AtomicU64, n: u64) {
        if n > 0 {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// `(name, value)` pairs, for reports.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("rx_frames", g(&self.rx_frames)),
            ("tx_frames", g(&self.tx_frames)),
            ("tx_full", g(&self.tx_full)),
            ("alloc_failed", g(&self.alloc_failed)),
            ("arp_replies", g(&self.arp_replies)),
            ("nd_adverts", g(&self.nd_adverts)),
            ("ignored", g(&self.ignored)),
            ("delay_overflow", g(&self.delay_overflow)),
        ]
    }
}

/// Copies `data` into a frame from the queue's pool and appends it to `tx`
/// (flushing first when `tx` is full).
fn push_frame<Q: Queue>(q: &mut Q, tx: &mut Burst<Q::Frame>, data: &[u8], c: &LoopCounters) {
    if tx.is_full() {
        flush(q, tx, c);
    }
    let Some(mut f) = q.alloc() else {
        LoopCounters::add(&c.alloc_failed, 1);
        return;
    };
    if !f.set_len(data.len()) {
        LoopCounters::add(&c.alloc_failed, 1);
        return;
    }
    f.data_mut().copy_from_slice(data);
    tx.push(f);
}

/// Sends what `tx` holds; frames the device refuses are dropped (the
/// protocol retransmits) and counted.
fn flush<Q: Queue>(q: &mut Q, tx: &mut Burst<Q::Frame>, c: &LoopCounters) {
    if tx.is_empty() {
        return;
    }
    let n = q.tx_burst(tx);
    LoopCounters::add(&c.tx_frames, n as u64);
    LoopCounters::add(&c.tx_full, tx.len() as u64);
    tx.clear();
}

/// If `frame` is an ARP request for an address `owner` maps to a MAC,
/// writes the reply into `out` and returns its length.
fn arp_reply(
    frame: &[u8],
    out: &mut [u8; 64],
    owner: impl Fn(Ipv4Addr) -> Option<MacAddr>,
) -> Option<usize> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != ethertype::ARP {
        return None;
    }
    let arp = ArpPacket::new_checked(eth.payload()).ok()?;
    let req = ArpRepr::parse(&arp).ok()?;
    if req.op != ArpOp::REQUEST {
        return None;
    }
    let mac = owner(req.target_ip)?;
    let rep = ArpRepr {
        op: ArpOp::REPLY,
        sender_mac: mac,
        sender_ip: req.target_ip,
        target_mac: req.sender_mac,
        target_ip: req.sender_ip,
    };
    out.fill(0);
    out[0..6].copy_from_slice(&req.sender_mac.0);
    out[6..12].copy_from_slice(&mac.0);
    out[12..14].copy_from_slice(&ethertype::ARP.to_be_bytes());
    let mut p = ArpPacket::new_unchecked(&mut out[14..14 + rep.buffer_len()]);
    rep.emit(&mut p);
    Some(60) // padded to the Ethernet minimum
}

fn is_arp(frame: &[u8]) -> bool {
    frame.len() >= 14 && frame[12..14] == ethertype::ARP.to_be_bytes()
}

/// Replies held back by the delay simulation: a fixed number of slots,
/// ordered by due time in a preallocated heap.
#[derive(Debug)]
pub struct DelayQueue {
    slots: Vec<[u8; SLOT_LEN]>,
    lens: Vec<u16>,
    free: Vec<u32>,
    heap: BinaryHeap<Reverse<(u64, u32)>>,
}

impl DelayQueue {
    /// Room for `cap` frames (at least 1).
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        DelayQueue {
            slots: vec![[0u8; SLOT_LEN]; cap],
            lens: vec![0; cap],
            free: (0..cap as u32).rev().collect(),
            heap: BinaryHeap::with_capacity(cap),
        }
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Holds `frame` until `due`; false when full or the frame is too big.
    pub fn push(&mut self, due: u64, frame: &[u8]) -> bool {
        if frame.len() > SLOT_LEN {
            return false;
        }
        let Some(i) = self.free.pop() else {
            return false;
        };
        self.slots[i as usize][..frame.len()].copy_from_slice(frame);
        self.lens[i as usize] = frame.len() as u16;
        self.heap.push(Reverse((due, i)));
        true
    }

    /// The next frame due at `now`, passed to `f`.
    pub fn pop_due(&mut self, now: u64, f: impl FnOnce(&[u8])) -> bool {
        match self.heap.peek() {
            Some(Reverse((due, _))) if *due <= now => {}
            _ => return false,
        }
        let Some(Reverse((_, i))) = self.heap.pop() else {
            return false;
        };
        f(&self.slots[i as usize][..self.lens[i as usize] as usize]);
        self.free.push(i);
        true
    }
}

impl Clients for Tester6 {
    fn poll(&mut self, now: u64, batch: &mut TxBatch) -> usize {
        Tester6::poll(self, now, batch)
    }

    fn relevant(&self, data: &[u8], ours: &dyn Fn(MacAddr) -> bool) -> bool {
        use crate::wire6::{CLIENT_PORT as C6, SERVER_PORT as S6};
        match parse_frame6(data) {
            Ok(p) => {
                let relay = self.relay();
                ours(p.meta.dst_mac)
                    && p.meta.src_port == S6
                    && match relay {
                        None => p.meta.dst_port == C6,
                        // Our own RELAY-FORWs, seen again in promiscuous
                        // mode, come from the relay address.
                        Some(r) => p.meta.dst_port == S6 && p.meta.src_ip != r.relay_ip,
                    }
            }
            // The link's other IPv6 traffic (MLD, router and neighbor
            // discovery, other UDP) is not for the tester; a damaged UDP
            // frame to one of our MACs is counted by it.
            Err(Frame6Error::NotUdp | Frame6Error::NotDhcpPort | Frame6Error::NotIpv6) => false,
            Err(_) => data.len() >= 6 && ours(MacAddr(data[0..6].try_into().unwrap_or([0; 6]))),
        }
    }

    fn on_frame(&mut self, now: u64, frame: &[u8]) -> Option<(u32, Ipv4Addr)> {
        let _ = self.on_reply(now, frame);
        None
    }

    fn is_finished(&self) -> bool {
        Tester6::is_finished(self)
    }

    fn in_flight(&self) -> u32 {
        Tester6::in_flight(self)
    }

    fn counters(&self) -> &TesterCounters {
        &self.stats().counters
    }

    fn report(&self, now: u64) -> TesterReport {
        Tester6::report(self, now)
    }

    fn histograms(&self) -> [&Histogram<u64>; 3] {
        let st = self.stats();
        [
            st.discover_offer.histogram(),
            st.request_ack.histogram(),
            st.total.histogram(),
        ]
    }

    fn client_mac(&self, i: u32) -> MacAddr {
        Tester6::client_mac(self, i)
    }

    fn lease(&self, i: u32) -> Option<IpAddr> {
        self.client_addr(i).map(IpAddr::V6)
    }

    fn prefix(&self, i: u32) -> Option<(Ipv6Addr, u8)> {
        self.client_prefix(i)
    }

    fn nd_owner(&self, target: Ipv6Addr) -> Option<MacAddr> {
        if let Some(r) = self.relay() {
            return (target == r.relay_ip || target == r.link_address).then(|| self.relay_mac());
        }
        // A kernel server (Kea) answers a client at its link-local address
        // and resolves it first: the EUI-64 interface id names the MAC,
        // hence the client.
        let o = target.octets();
        if o[0..8] != [0xfe, 0x80, 0, 0, 0, 0, 0, 0] || o[11] != 0xff || o[12] != 0xfe {
            return None;
        }
        let mac = [o[8] ^ 2, o[9], o[10], o[13], o[14], o[15]];
        let i = mac_u64(MacAddr(mac)).wrapping_sub(mac_u64(Tester6::client_mac(self, 0)));
        let i = u32::try_from(i).ok().filter(|i| *i < self.clients())?;
        (self.client_link_local(i) == target).then(|| Tester6::client_mac(self, i))
    }
}

/// What the server loop shares with the control thread.
#[derive(Debug, Default)]
pub struct ServerShared {
    /// I/O counters.
    pub io: LoopCounters,
    /// The server's report, republished periodically and at exit.
    pub report: Mutex<Option<ServerReport>>,
    /// The DHCPv6 server's report, likewise.
    pub report6: Mutex<Option<Server6Report>>,
}

/// The `dhcp-server` lcore loop.
#[derive(Debug)]
pub struct ServerLoop<Q: Queue, C: Clock> {
    server: Option<Server>,
    v6: Option<Server6Link>,
    q: Q,
    clock: C,
    ip: Ipv4Addr,
    mac: MacAddr,
    burst: usize,
    rx: Burst<Q::Frame>,
    tx: Burst<Q::Frame>,
    out: Vec<u8>,
    delayed: DelayQueue,
    shared: std::sync::Arc<ServerShared>,
    publish_every: u64,
    next_publish: u64,
}

impl<Q: Queue, C: Clock> ServerLoop<Q, C> {
    /// A loop serving DHCPv4 with `server` (if any) on `q`, answering ARP
    /// for `ip` (the server address) with the queue's MAC. DHCPv6 is
    /// added with [`ServerLoop::with_v6`].
    pub fn new(
        server: Option<Server>,
        q: Q,
        clock: C,
        ip: Ipv4Addr,
        burst: usize,
        max_delayed: usize,
        shared: std::sync::Arc<ServerShared>,
    ) -> Self {
        let mac = MacAddr(q.mac());
        let publish_every = clock.hz() / 10;
        ServerLoop {
            server,
            v6: None,
            q,
            clock,
            ip,
            mac,
            burst: burst.clamp(1, MAX_BURST),
            rx: Burst::new(),
            tx: Burst::new(),
            out: vec![0u8; 2048],
            delayed: DelayQueue::new(max_delayed),
            shared,
            publish_every,
            next_publish: 0,
        }
    }

    /// Serves DHCPv6 with `link` as well (Neighbor Discovery for its
    /// addresses included).
    pub fn with_v6(mut self, link: Server6Link) -> Self {
        self.v6 = Some(link);
        self
    }

    /// The DHCPv4 server (counters, leases).
    pub fn server(&self) -> Option<&Server> {
        self.server.as_ref()
    }

    /// The DHCPv6 server.
    pub fn server6(&self) -> Option<&Server6Link> {
        self.v6.as_ref()
    }

    /// The queue (tests inspect a `MemQueue`'s tx).
    pub fn queue_mut(&mut self) -> &mut Q {
        &mut self.q
    }

    /// One bounded iteration; returns the frames received.
    pub fn poll_once(&mut self) -> usize {
        let io = &self.shared.io;
        let n = self.q.rx_burst(&mut self.rx, self.burst);
        // Read after the burst: a clock read before it, on a preempted
        // lcore, would date the frames it returns too early (replies
        // "faster" than a simulated delay, delays cut short).
        let now = self.clock.now();
        LoopCounters::add(&io.rx_frames, n as u64);
        let mut arp = [0u8; 64];
        let (ip, mac) = (self.ip, self.mac);
        for f in self.rx.drain(..) {
            let data = f.data();
            if is_arp(data) {
                match arp_reply(data, &mut arp, |t| (t == ip).then_some(mac)) {
                    Some(len) => {
                        push_frame(&mut self.q, &mut self.tx, &arp[..len], io);
                        LoopCounters::add(&io.arp_replies, 1);
                    }
                    None => LoopCounters::add(&io.ignored, 1),
                }
                continue;
            }
            // Our own replies come back on af_packet in promiscuous mode,
            // and other hosts' unicast is not for us.
            if data.len() >= 14 {
                let dst = &data[0..6];
                if data[6..12] == mac.0 || (dst[0] & 1 == 0 && dst != mac.0) {
                    LoopCounters::add(&io.ignored, 1);
                    continue;
                }
            }
            let reply = if is_ipv6(data) {
                let Some(v6) = self.v6.as_mut() else {
                    LoopCounters::add(&io.ignored, 1);
                    continue;
                };
                let mut na = [0u8; 128];
                if let Some(len) = neighbor_advert(data, |t| v6.owns(t).then_some(mac), &mut na) {
                    push_frame(&mut self.q, &mut self.tx, &na[..len], io);
                    LoopCounters::add(&io.nd_adverts, 1);
                    continue;
                }
                match v6.handle_frame(now, data, &mut self.out) {
                    Ok(Some(r)) => Some((r.len, r.delay)),
                    Ok(None) => {
                        LoopCounters::add(&io.ignored, 1);
                        None
                    }
                    Err(_) => None, // counted by the link
                }
            } else {
                let Some(server) = self.server.as_mut() else {
                    LoopCounters::add(&io.ignored, 1);
                    continue;
                };
                match server.handle_frame(now, ip, data, &mut self.out) {
                    Ok(Some(m)) => Some((m.len, m.delay)),
                    Ok(None) | Err(_) => None, // counted by the server
                }
            };
            if let Some((len, delay)) = reply {
                if delay == 0 {
                    push_frame(&mut self.q, &mut self.tx, &self.out[..len], io);
                } else if !self
                    .delayed
                    .push(now.saturating_add(delay), &self.out[..len])
                {
                    LoopCounters::add(&io.delay_overflow, 1);
                }
            }
        }
        let mut due = 0;
        while due < self.burst {
            let (q, tx) = (&mut self.q, &mut self.tx);
            if !self.delayed.pop_due(now, |fr| push_frame(q, tx, fr, io)) {
                break;
            }
            due += 1;
        }
        flush(&mut self.q, &mut self.tx, io);
        if now >= self.next_publish {
            self.next_publish = now.saturating_add(self.publish_every);
            if let Some(s) = self.server.as_mut() {
                s.tick(now);
            }
            if let Some(v6) = self.v6.as_mut() {
                v6.tick(now);
            }
            self.publish();
        }
        n + due
    }

    /// Publishes the server's report for the control thread (skipped when
    /// the control thread holds the lock: it reads a slightly older one).
    pub fn publish(&self) {
        let now = self.clock.now();
        if let Some(s) = &self.server {
            if let Ok(mut g) = self.shared.report.try_lock() {
                *g = Some(s.report());
            }
        }
        if let Some(v6) = &self.v6 {
            if let Ok(mut g) = self.shared.report6.try_lock() {
                *g = Some(v6.report(now));
            }
        }
    }

    /// Runs until `stop`, then publishes a last report (blocking lock).
    pub fn run(&mut self, stop: &AtomicBool, idle_sleep_us: u64) {
        while !stop.load(Ordering::Relaxed) {
            if self.poll_once() == 0 && idle_sleep_us > 0 && self.delayed.is_empty() {
                std::thread::sleep(std::time::Duration::from_micros(idle_sleep_us));
            }
        }
        let now = self.clock.now();
        if let Some(s) = &self.server {
            if let Ok(mut g) = self.shared.report.lock() {
                *g = Some(s.report());
            }
        }
        if let Some(v6) = &self.v6 {
            if let Ok(mut g) = self.shared.report6.lock() {
                *g = Some(v6.report(now));
            }
        }
    }
}

/// The tester's result at the end of a run.
#[derive(Debug, Clone)]
pub struct TesterFinal {
    /// The report.
    pub report: TesterReport,
    /// DISCOVER → OFFER latencies, ns.
    pub discover_offer: Histogram<u64>,
    /// REQUEST → ACK latencies, ns.
    pub request_ack: Histogram<u64>,
    /// Whole exchange latencies, ns.
    pub total: Histogram<u64>,
    /// Clients bound and the address each got (index, address), for checks.
    pub addresses: Vec<(u32, IpAddr)>,
    /// DHCPv6 clients with a delegated prefix (index, prefix, length).
    pub prefixes: Vec<(u32, Ipv6Addr, u8)>,
    /// Stopped by the deadline or a signal before every client finished.
    pub interrupted: bool,
}

/// What the tester loop shares with the control thread.
#[derive(Debug, Default)]
pub struct TesterShared {
    /// I/O counters.
    pub io: LoopCounters,
    /// Protocol counters, republished every `publish_every` ticks.
    pub counters: Mutex<TesterCounters>,
    /// Set once the loop ends.
    pub result: Mutex<Option<TesterFinal>>,
    /// Clients in flight at the last publish.
    pub in_flight: AtomicU64,
}

/// The `dhcp-tester` lcore loop.
#[derive(Debug)]
pub struct TesterLoop<Q: Queue, C: Clock, T: Clients = Tester> {
    tester: T,
    q: Q,
    clock: C,
    burst: usize,
    batch: TxBatch,
    rx: Burst<Q::Frame>,
    tx: Burst<Q::Frame>,
    /// Client MAC range `[lo, lo + n)` as 48-bit integers.
    mac_lo: u64,
    mac_n: u64,
    port_mac: MacAddr,
    relay: Option<(Ipv4Addr, MacAddr)>,
    /// Bound addresses → client index (preallocated; for ARP of renewals).
    bound: HashMap<u32, u32>,
    shared: std::sync::Arc<TesterShared>,
    publish_every: u64,
    next_publish: u64,
}

/// Whether a frame to `dst` can be for the tester: broadcast/multicast,
/// the port's or the relay's MAC, or a client MAC in `[lo, lo + n)`.
fn ours(
    dst: MacAddr,
    port_mac: MacAddr,
    relay: Option<(Ipv4Addr, MacAddr)>,
    lo: u64,
    n: u64,
) -> bool {
    if dst.0[0] & 1 == 1 {
        return true;
    }
    if dst == port_mac || relay.is_some_and(|(_, m)| m == dst) {
        return true;
    }
    mac_u64(dst).wrapping_sub(lo) < n
}

fn mac_u64(m: MacAddr) -> u64 {
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(&m.0);
    u64::from_be_bytes(b)
}

impl<Q: Queue, C: Clock, T: Clients> TesterLoop<Q, C, T> {
    /// A loop driving `tester` (built for `clients` clients from `base_mac`)
    /// on `q`. In DHCPv4 relay mode pass `(giaddr, relay_mac)`: the loop
    /// answers ARP for giaddr and accepts replies to the relay.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tester: T,
        q: Q,
        clock: C,
        burst: usize,
        clients: u32,
        base_mac: MacAddr,
        relay: Option<(Ipv4Addr, MacAddr)>,
        shared: std::sync::Arc<TesterShared>,
    ) -> Self {
        let burst = burst.clamp(1, MAX_BURST);
        let port_mac = MacAddr(q.mac());
        let publish_every = clock.hz() / 20;
        TesterLoop {
            tester,
            q,
            clock,
            burst,
            batch: TxBatch::new(burst),
            rx: Burst::new(),
            tx: Burst::new(),
            mac_lo: mac_u64(base_mac),
            mac_n: u64::from(clients),
            port_mac,
            relay,
            bound: HashMap::with_capacity(clients as usize),
            shared,
            publish_every,
            next_publish: 0,
        }
    }

    /// The tester.
    pub fn tester(&self) -> &T {
        &self.tester
    }

    /// The queue.
    pub fn queue_mut(&mut self) -> &mut Q {
        &mut self.q
    }

    /// One bounded iteration; returns frames received + sent.
    pub fn poll_once(&mut self) -> usize {
        let io = &self.shared.io;
        let n = self.q.rx_burst(&mut self.rx, self.burst);
        // Read after the burst: a clock read before it, on a preempted
        // lcore, would date the frames it returns too early (replies
        // "faster" than a simulated delay, delays cut short).
        let now = self.clock.now();
        LoopCounters::add(&io.rx_frames, n as u64);
        let mut arp = [0u8; 64];
        let (pm, rl, lo, cn) = (self.port_mac, self.relay, self.mac_lo, self.mac_n);
        let ours = |m: MacAddr| ours(m, pm, rl, lo, cn);
        for f in self.rx.drain(..) {
            let data = f.data();
            if is_arp(data) {
                let (relay, bound, t) = (self.relay, &self.bound, &self.tester);
                let owner = |ip: Ipv4Addr| {
                    if let Some((g, m)) = relay {
                        if g == ip {
                            return Some(m);
                        }
                    }
                    bound.get(&u32::from(ip)).map(|i| t.client_mac(*i))
                };
                match arp_reply(data, &mut arp, owner) {
                    Some(len) => {
                        push_frame(&mut self.q, &mut self.tx, &arp[..len], io);
                        LoopCounters::add(&io.arp_replies, 1);
                    }
                    None => LoopCounters::add(&io.ignored, 1),
                }
                continue;
            }
            if is_ipv6(data) {
                let t = &self.tester;
                let mut na = [0u8; 128];
                if let Some(len) = neighbor_advert(data, |a| t.nd_owner(a), &mut na) {
                    push_frame(&mut self.q, &mut self.tx, &na[..len], io);
                    LoopCounters::add(&io.nd_adverts, 1);
                    continue;
                }
            }
            if !self.tester.relevant(data, &ours) {
                LoopCounters::add(&io.ignored, 1);
                continue;
            }
            if let Some((i, a)) = self.tester.on_frame(now, data) {
                if self.bound.len() < self.bound.capacity() {
                    self.bound.insert(u32::from(a), i);
                }
            }
        }
        self.batch.clear();
        let sent = self.tester.poll(now, &mut self.batch);
        for i in 0..self.batch.len() {
            if let Some(fr) = self.batch.get(i) {
                push_frame(&mut self.q, &mut self.tx, fr, io);
            }
        }
        flush(&mut self.q, &mut self.tx, io);
        if now >= self.next_publish {
            self.next_publish = now.saturating_add(self.publish_every);
            self.publish();
        }
        n + sent
    }

    /// Publishes the counters for the control thread (skipped when busy).
    pub fn publish(&self) {
        if let Ok(mut g) = self.shared.counters.try_lock() {
            g.clone_from(self.tester.counters());
        }
        self.shared
            .in_flight
            .store(u64::from(self.tester.in_flight()), Ordering::Relaxed);
    }

    /// The final result at `now`.
    pub fn finish(&self, interrupted: bool) -> TesterFinal {
        let now = self.clock.now();
        let t = &self.tester;
        let addresses = (0..self.mac_n as u32)
            .filter_map(|i| t.lease(i).map(|a| (i, a)))
            .collect();
        let prefixes = (0..self.mac_n as u32)
            .filter_map(|i| t.prefix(i).map(|(p, l)| (i, p, l)))
            .collect();
        let [first, second, total] = t.histograms();
        TesterFinal {
            report: t.report(now),
            discover_offer: first.clone(),
            request_ack: second.clone(),
            total: total.clone(),
            addresses,
            prefixes,
            interrupted,
        }
    }

    /// Runs until every client finished or `stop`, then stores the final
    /// result in the shared state.
    pub fn run(&mut self, stop: &AtomicBool) {
        let mut interrupted = false;
        loop {
            if self.tester.is_finished() {
                break;
            }
            if stop.load(Ordering::Relaxed) {
                interrupted = true;
                break;
            }
            self.poll_once();
        }
        // Let the last frames (e.g. RELEASEs) leave.
        flush(&mut self.q, &mut self.tx, &self.shared.io);
        self.publish();
        if let Ok(mut g) = self.shared.counters.lock() {
            g.clone_from(self.tester.counters());
        }
        let fin = self.finish(interrupted);
        if let Ok(mut g) = self.shared.result.lock() {
            *g = Some(fin);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{RelayConfig, TesterConfig};
    use crate::server::{DelayConfig, PoolConfig, ServerConfig};
    use crate::wire::AddrList;
    use core::time::Duration;
    use qsplice_netdev::mem::{ManualClock, MemQueue, VecFrame};
    use std::sync::Arc;

    const SERVER_MAC: [u8; 6] = [2, 0xaa, 0, 0, 0, 1];
    const TESTER_MAC: [u8; 6] = [2, 0xbb, 0, 0, 0, 1];

    fn server(ip: Ipv4Addr, f: impl FnOnce(&mut ServerConfig)) -> Server {
        let pool = PoolConfig {
            network: Ipv4Addr::new(10, 0, 0, 0),
            prefix_len: 16,
            range_start: Ipv4Addr::new(10, 0, 1, 0),
            range_end: Ipv4Addr::new(10, 0, 200, 255),
            routers: AddrList::from_iter([ip]),
            dns_servers: AddrList::new(),
            lease_time: Duration::from_secs(3600),
        };
        let mut cfg = ServerConfig::new(ip, MacAddr(SERVER_MAC), pool);
        f(&mut cfg);
        Server::new(&cfg, 1_000_000_000).unwrap()
    }

    fn back_to_back(
        tcfg: TesterConfig,
        scfg: impl FnOnce(&mut ServerConfig),
        step_ns: u64,
        max_iter: usize,
    ) -> (TesterFinal, Arc<ServerShared>, Arc<TesterShared>) {
        let ip = Ipv4Addr::new(10, 0, 0, 1);
        let clock = ManualClock::default();
        let ss = Arc::new(ServerShared::default());
        let ts = Arc::new(TesterShared::default());
        let mut s = ServerLoop::new(
            Some(server(ip, scfg)),
            MemQueue::new(SERVER_MAC),
            clock.clone(),
            ip,
            32,
            1024,
            ss.clone(),
        );
        let relay = tcfg.relay.as_ref().map(|r| (r.giaddr, r.relay_mac));
        let tester = Tester::new(&tcfg, 1_000_000_000).unwrap();
        let mut t = TesterLoop::new(
            tester,
            MemQueue::new(TESTER_MAC),
            clock.clone(),
            32,
            tcfg.clients,
            tcfg.base_mac,
            relay,
            ts.clone(),
        );
        for _ in 0..max_iter {
            if t.tester().is_finished() {
                break;
            }
            t.poll_once();
            for f in std::mem::take(&mut t.queue_mut().tx) {
                s.queue_mut().rx.push_back(VecFrame::from_bytes(f.data()));
            }
            s.poll_once();
            for f in std::mem::take(&mut s.queue_mut().tx) {
                t.queue_mut().rx.push_back(VecFrame::from_bytes(f.data()));
            }
            clock.advance_ns(step_ns);
        }
        t.run(&AtomicBool::new(true));
        s.run(&AtomicBool::new(true), 0);
        let fin = ts.result.lock().unwrap().clone().unwrap();
        (fin, ss, ts)
    }

    #[test]
    fn tester_and_server_loops_bind_every_client() {
        let (fin, ss, ts) = back_to_back(TesterConfig::new(500), |_| {}, 20_000, 100_000);
        assert!(!fin.interrupted);
        assert_eq!(fin.report.counters.bound, 500);
        assert_eq!(fin.addresses.len(), 500);
        let mut a: Vec<_> = fin.addresses.iter().map(|x| x.1).collect();
        a.sort();
        a.dedup();
        assert_eq!(a.len(), 500, "addresses are unique");
        let sr = ss.report.lock().unwrap().clone().unwrap();
        assert_eq!(sr.leases_bound, 500);
        assert!(fin.total.len() == 500);
        assert!(ts.io.tx_frames.load(Ordering::Relaxed) >= 1000);
    }

    #[test]
    fn delayed_and_dropped_replies_are_recovered_by_retries() {
        let mut tc = TesterConfig::new(200);
        tc.retransmit.initial = Duration::from_millis(50);
        tc.retransmit.max = Duration::from_millis(200);
        tc.retransmit.discover_retries = 10;
        tc.retransmit.request_retries = 10;
        let (fin, ss, _) = back_to_back(
            tc,
            |c| {
                c.faults.drop_probability = 0.2;
                c.faults.delay = DelayConfig::Fixed(Duration::from_millis(2));
            },
            100_000,
            200_000,
        );
        assert_eq!(fin.report.counters.bound, 200, "{:?}", fin.report);
        assert!(fin.report.counters.retries > 0);
        let sr = ss.report.lock().unwrap().clone().unwrap();
        assert!(sr.counters.delayed > 0);
        assert!(sr.rejects.get("simulated_drop").copied().unwrap_or(0) > 0);
        // every reply waited at least the delay
        assert!(fin.report.discover_offer.min_us >= 2000.0);
    }

    #[test]
    fn relay_mode_through_the_loops_echoes_option82() {
        let mut tc = TesterConfig::new(100);
        tc.relay = Some(RelayConfig {
            giaddr: Ipv4Addr::new(10, 0, 5, 1),
            relay_mac: MacAddr(TESTER_MAC),
            server_ip: Ipv4Addr::new(10, 0, 0, 1),
            server_mac: MacAddr(SERVER_MAC),
            hops: 0,
            max_hops: 16,
            circuit_id: "port-{index}".into(),
            remote_id: "rack1".into(),
        });
        let (fin, ss, _) = back_to_back(tc, |_| {}, 20_000, 100_000);
        assert_eq!(fin.report.counters.bound, 100);
        assert_eq!(fin.report.counters.option82_mismatch, 0);
        let sr = ss.report.lock().unwrap().clone().unwrap();
        assert_eq!(sr.counters.relayed, sr.counters.received);
        assert!(sr.counters.relayed >= 200);
    }

    fn v6_back_to_back(
        tcfg: crate::client6::Tester6Config,
        faults: crate::server::FaultConfig,
        step_ns: u64,
        max_iter: usize,
    ) -> (TesterFinal, Arc<ServerShared>, Arc<TesterShared>) {
        use crate::server6::Server6Config;
        let clock = ManualClock::default();
        let ss = Arc::new(ServerShared::default());
        let ts = Arc::new(TesterShared::default());
        let c6 = Server6Config {
            duid: crate::wire6::duid_ll(SERVER_MAC).to_vec(),
            addr_first: "2001:db8:30::1000".parse().unwrap(),
            addr_count: 100_000,
            pd: Some(("2001:db8:4000::".parse().unwrap(), 40, 56)),
            preferred_s: 1800,
            valid_s: 3600,
            t1_s: 900,
            t2_s: 1440,
            rapid_commit: true,
            preference: 0,
            offer_hold_s: 30,
        };
        let link = Server6Link::new(
            &c6,
            MacAddr(SERVER_MAC),
            &["2001:db8:30::1".parse().unwrap()],
            &faults,
            7,
            1_000_000_000,
        )
        .unwrap();
        let mut s = ServerLoop::new(
            None,
            MemQueue::new(SERVER_MAC),
            clock.clone(),
            Ipv4Addr::UNSPECIFIED,
            32,
            1024,
            ss.clone(),
        )
        .with_v6(link);
        let tester = Tester6::new(&tcfg, 1_000_000_000).unwrap();
        let mut t = TesterLoop::new(
            tester,
            MemQueue::new(TESTER_MAC),
            clock.clone(),
            32,
            tcfg.clients,
            tcfg.base_mac,
            None,
            ts.clone(),
        );
        for _ in 0..max_iter {
            if t.tester().is_finished() {
                break;
            }
            t.poll_once();
            for f in std::mem::take(&mut t.queue_mut().tx) {
                s.queue_mut().rx.push_back(VecFrame::from_bytes(f.data()));
            }
            s.poll_once();
            for f in std::mem::take(&mut s.queue_mut().tx) {
                t.queue_mut().rx.push_back(VecFrame::from_bytes(f.data()));
            }
            clock.advance_ns(step_ns);
        }
        t.run(&AtomicBool::new(true));
        s.run(&AtomicBool::new(true), 0);
        let fin = ts.result.lock().unwrap().clone().unwrap();
        (fin, ss, ts)
    }

    #[test]
    fn dhcpv6_tester_and_server_loops_bind_addresses_and_prefixes() {
        let mut tc = crate::client6::Tester6Config::new(500);
        tc.port_mac = MacAddr(TESTER_MAC);
        tc.ia_pd = true;
        let (fin, ss, ts) = v6_back_to_back(tc, Default::default(), 20_000, 100_000);
        assert!(!fin.interrupted);
        assert_eq!(fin.report.counters.bound, 500, "{:?}", fin.report);
        assert_eq!(fin.addresses.len(), 500);
        assert_eq!(fin.prefixes.len(), 500);
        let mut a: Vec<_> = fin.addresses.iter().map(|x| x.1).collect();
        a.sort();
        a.dedup();
        assert_eq!(a.len(), 500, "addresses are unique");
        assert!(fin.addresses.iter().all(|(_, a)| a.is_ipv6()));
        assert!(fin.prefixes.iter().all(|p| p.2 == 56));
        let r6 = ss.report6.lock().unwrap().clone().unwrap();
        assert_eq!((r6.addresses_bound, r6.prefixes_bound), (500, 500));
        assert!(r6.rejects.is_empty(), "{r6:?}");
        assert!(ss.report.lock().unwrap().is_none(), "no DHCPv4 server");
        assert_eq!(fin.total.len(), 500);
        assert!(ts.io.tx_frames.load(Ordering::Relaxed) >= 1000);
    }

    #[test]
    fn dhcpv6_relay_through_the_loops_with_drops_and_delays() {
        use crate::client6::Relay6Config;
        let mut tc = crate::client6::Tester6Config::new(200);
        tc.port_mac = MacAddr(TESTER_MAC);
        let mut r = Relay6Config::new(
            "2001:db8:31::1".parse().unwrap(),
            "2001:db8:31::1".parse().unwrap(),
        );
        r.interface_id = "port-{index}".into();
        r.remote_id = "rack1".into();
        r.remote_id_enterprise = 9;
        tc.relay = Some(r);
        tc.retransmit.solicit_irt = Duration::from_millis(50);
        tc.retransmit.solicit_mrt = Duration::from_millis(200);
        tc.retransmit.request_irt = Duration::from_millis(50);
        tc.retransmit.request_mrt = Duration::from_millis(200);
        tc.retransmit.solicit_max_rc = 20;
        tc.retransmit.request_max_rc = 20;
        let faults = crate::server::FaultConfig {
            drop_probability: 0.2,
            delay: DelayConfig::Fixed(Duration::from_millis(2)),
            rate_limit: None,
        };
        let (fin, ss, _) = v6_back_to_back(tc, faults, 100_000, 200_000);
        assert_eq!(fin.report.counters.bound, 200, "{:?}", fin.report);
        assert_eq!(fin.report.counters.option82_mismatch, 0);
        assert!(fin.report.counters.retries > 0);
        assert!(fin.report.discover_offer.min_us >= 2000.0);
        let r6 = ss.report6.lock().unwrap().clone().unwrap();
        assert_eq!(r6.addresses_bound, 200);
        assert!(r6.received.get("relay_forw").copied().unwrap_or(0) >= 400);
        assert!(r6.rejects.get("simulated_drop").copied().unwrap_or(0) > 0);
        assert!(r6.delayed > 0);
    }

    #[test]
    fn dhcpv6_tester_answers_neighbor_solicitations_for_its_clients() {
        let mut tc = crate::client6::Tester6Config::new(10);
        tc.base_mac = MacAddr([2, 0, 0, 0, 1, 0]);
        let t = Tester6::new(&tc, 1_000_000_000).unwrap();
        let ll = t.client_link_local(7);
        assert_eq!(Clients::nd_owner(&t, ll), Some(t.client_mac(7)));
        let other = qsplice_wire::ipv6::link_local(MacAddr([2, 0, 0, 0, 1, 10]));
        assert_eq!(
            Clients::nd_owner(&t, other),
            None,
            "client 10 of 10 does not exist"
        );
        assert_eq!(Clients::nd_owner(&t, "2001:db8::7".parse().unwrap()), None);
    }

    #[test]
    fn server_loop_answers_arp_for_its_address_only() {
        let ip = Ipv4Addr::new(10, 0, 0, 1);
        let ss = Arc::new(ServerShared::default());
        let mut s = ServerLoop::new(
            Some(server(ip, |_| {})),
            MemQueue::new(SERVER_MAC),
            ManualClock::default(),
            ip,
            32,
            16,
            ss.clone(),
        );
        let req = |target: Ipv4Addr| {
            let mut f = vec![0u8; 60];
            f[0..6].copy_from_slice(&[0xff; 6]);
            f[6..12].copy_from_slice(&[2, 9, 9, 9, 9, 9]);
            f[12..14].copy_from_slice(&ethertype::ARP.to_be_bytes());
            let r = ArpRepr {
                op: ArpOp::REQUEST,
                sender_mac: MacAddr([2, 9, 9, 9, 9, 9]),
                sender_ip: Ipv4Addr::new(10, 0, 0, 9),
                target_mac: MacAddr([0; 6]),
                target_ip: target,
            };
            r.emit(&mut ArpPacket::new_unchecked(&mut f[14..42]));
            VecFrame::from_bytes(&f)
        };
        s.queue_mut().rx.push_back(req(ip));
        s.queue_mut().rx.push_back(req(Ipv4Addr::new(10, 0, 0, 2)));
        s.queue_mut().rx.push_back(VecFrame::from_bytes(&[0u8; 10]));
        s.poll_once();
        let tx = &s.queue_mut().tx;
        assert_eq!(tx.len(), 1);
        let eth = EthernetFrame::new_checked(tx[0].data()).unwrap();
        assert_eq!(eth.dst(), MacAddr([2, 9, 9, 9, 9, 9]));
        let rep = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap();
        assert_eq!(
            (rep.op, rep.sender_ip, rep.sender_mac),
            (ArpOp::REPLY, ip, MacAddr(SERVER_MAC))
        );
        assert_eq!(ss.io.arp_replies.load(Ordering::Relaxed), 1);
        assert_eq!(ss.io.ignored.load(Ordering::Relaxed), 1);
        // the 10-byte frame went to the server, which counted it
        assert_eq!(s.server().unwrap().stats().rejected_total(), 1);
    }

    #[test]
    fn delay_queue_is_bounded_and_ordered() {
        let mut d = DelayQueue::new(2);
        assert!(d.push(30, b"c"));
        assert!(d.push(10, b"a"));
        assert!(!d.push(20, b"b"), "full");
        assert!(!d.pop_due(5, |_| {}));
        let mut got = Vec::new();
        while d.pop_due(100, |f| got.push(f.to_vec())) {}
        assert_eq!(got, vec![b"a".to_vec(), b"c".to_vec()]);
        assert!(d.is_empty());
        assert!(!d.push(0, &[0u8; SLOT_LEN + 1]));
    }

    #[test]
    fn tx_full_frames_are_counted_and_the_tester_recovers() {
        let ip = Ipv4Addr::new(10, 0, 0, 1);
        let clock = ManualClock::default();
        let ts = Arc::new(TesterShared::default());
        let mut tc = TesterConfig::new(64);
        tc.retransmit.initial = Duration::from_millis(10);
        let mut t = TesterLoop::new(
            Tester::new(&tc, 1_000_000_000).unwrap(),
            MemQueue::new(TESTER_MAC),
            clock.clone(),
            32,
            64,
            tc.base_mac,
            None,
            ts.clone(),
        );
        t.queue_mut().tx_limit = 8;
        t.poll_once();
        assert_eq!(ts.io.tx_frames.load(Ordering::Relaxed), 8);
        assert_eq!(ts.io.tx_full.load(Ordering::Relaxed), 24);
        let _ = ip;
    }
}
