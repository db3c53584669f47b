//! The per-lcore worker: rx burst → classify → ARP/ICMP → TX buffers.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arrayvec::ArrayVec;
use crossbeam::queue::ArrayQueue;
use qsplice_netdev::{Burst, Clock, Frame, Queue};
use qsplice_wire::icmpv6::na_flags;
use qsplice_wire::{
    checksum, ethernet_l3, ethertype, ip_proto, ArpPacket, ArpRepr, EthernetFrame, Icmpv4Packet,
    Icmpv6Packet, Ipv4Addr, Ipv4Packet, Ipv6Addr, Ipv6Packet, MacAddr,
};

use crate::claims::{AddrClaims, MAX_CLAIMS};
use crate::counters::{Counters, DropReason, SharedCounters};
use crate::neigh::{Learned, NeighTimers, NeighborTable, Probe};

/// ARP opcodes.
const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;
/// Minimum Ethernet frame without FCS.
const MIN_FRAME: usize = 60;
/// TTL of packets we originate.
const OUR_TTL: u8 = 64;

/// An IPv4 address the appliance owns on a port, with its prefix.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct IfAddr {
    /// The address.
    pub addr: Ipv4Addr,
    /// Prefix length (0..=32).
    pub prefix: u8,
}

impl IfAddr {
    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix.min(32)))
        }
    }
    /// Whether `ip` is in this address's subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) ^ u32::from(self.addr)) & self.mask() == 0
    }
}

/// An IPv6 address the appliance owns on a port, with its prefix.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct IfAddr6 {
    /// The address.
    pub addr: Ipv6Addr,
    /// Prefix length, 0..=128.
    pub prefix: u8,
}

impl IfAddr6 {
    /// Whether `ip` is in this address's prefix.
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        let m = match self.prefix {
            0 => 0,
            p => u128::MAX << (128 - u32::from(p.min(128))),
        };
        (u128::from(ip) ^ u128::from(self.addr)) & m == 0
    }
}

/// Static description of one port as a worker sees it.
#[derive(Clone, Debug)]
pub struct PortSetup {
    /// Port name (from config), for diagnostics.
    pub name: String,
    /// Addresses the appliance owns on this port.
    pub addrs: Vec<IfAddr>,
    /// IPv6 addresses the appliance owns on this port (with any, the port
    /// also has its EUI-64 link-local address and answers NDP).
    pub addrs6: Vec<IfAddr6>,
    /// Neighbours to resolve at start and keep fresh (primary worker only).
    pub neighbors: Vec<Ipv4Addr>,
    /// Next hop for destinations outside the port's subnets.
    pub gateway: Option<Ipv4Addr>,
    /// IPv6 neighbours to resolve at start and keep fresh (NDP).
    pub neighbors6: Vec<Ipv6Addr>,
    /// IPv6 next hop for destinations outside the port's IPv6 prefixes.
    pub gateway6: Option<Ipv6Addr>,
}

/// ARP timers and table size.
#[derive(Copy, Clone, Debug)]
pub struct ArpConf {
    /// Lifetime of a confirmed entry, ms.
    pub reachable_ms: u64,
    /// Interval between unanswered requests, ms.
    pub probe_interval_ms: u64,
    /// Requests before giving up.
    pub max_probes: u8,
    /// Announce our addresses with gratuitous ARP at start.
    pub gratuitous_on_start: bool,
    /// Neighbour table slots per worker.
    pub table_size: usize,
}

/// When an lcore with `idle_sleep_us` sleeps: after a poll that received
/// nothing, once nothing has been received for `spin` cycles.
#[derive(Copy, Clone, Debug)]
pub struct Idle {
    /// Sleeping at all (`idle_sleep_us > 0`).
    pub enabled: bool,
    spin: u64,
    last_busy: u64,
}

impl Idle {
    /// A policy starting at `now`.
    pub fn new(enabled: bool, spin: u64, now: u64) -> Idle {
        Idle {
            enabled,
            spin,
            last_busy: now,
        }
    }

    /// After a poll at `now` that received something (`busy`) or not:
    /// whether to sleep now.
    pub fn sleep_after(&mut self, busy: bool, now: u64) -> bool {
        if busy {
            self.last_busy = now;
            return false;
        }
        self.enabled && now.saturating_sub(self.last_busy) >= self.spin
    }
}

/// Engine settings for one worker.
#[derive(Copy, Clone, Debug)]
pub struct EngineConf {
    /// Rx burst size (≤ [`qsplice_netdev::MAX_BURST`]).
    pub burst: usize,
    /// TX buffer flush timeout, µs.
    pub tx_drain_us: u64,
    /// Sleep this long after a poll that found nothing (0: busy poll).
    pub idle_sleep_us: u64,
    /// With `idle_sleep_us`, sleep only once nothing has been received for
    /// this long (0: after the first empty poll).
    pub idle_spin_us: u64,
    /// ARP settings.
    pub arp: ArpConf,
    /// The primary worker (queue 0 of every port, which receives non-RSS
    /// traffic such as ARP) resolves configured neighbours and announces
    /// our addresses.
    pub primary: bool,
    /// How often the kernel interfaces (exception path) are polled, µs.
    /// Their receive is a system call, so it is not made on every loop.
    pub kernel_poll_us: u64,
    /// Frames per second this worker hands to the kernel interfaces at
    /// most (each is a system call); beyond, dropped and counted
    /// (`kernel_in_limited`). 0: no limit.
    pub kernel_max_pps: u64,
}

/// A command from the control thread to a worker.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CoreCmd {
    /// A neighbour learned by another worker.
    Neigh {
        /// Port index.
        port: u8,
        /// Neighbour address (IPv4: ARP; IPv6: NDP).
        ip: IpAddr,
        /// Its MAC.
        mac: MacAddr,
    },
}

/// An event from a worker to the control thread.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CoreEvent {
    /// A neighbour became reachable or changed MAC.
    NeighLearned {
        /// Port index.
        port: u8,
        /// Neighbour address (IPv4: ARP; IPv6: NDP).
        ip: IpAddr,
        /// Its MAC.
        mac: MacAddr,
    },
    /// Resolution of a neighbour gave up.
    NeighFailed {
        /// Number of entries that failed in this tick.
        count: u64,
    },
}

/// Bounded lock-free queues between one worker and the control thread.
#[derive(Clone, Debug)]
pub struct ControlLink {
    /// Control → worker.
    pub cmds: Arc<ArrayQueue<CoreCmd>>,
    /// Worker → control.
    pub events: Arc<ArrayQueue<CoreEvent>>,
}

impl ControlLink {
    /// A link with room for `cap` messages each way.
    pub fn new(cap: usize) -> Self {
        ControlLink {
            cmds: Arc::new(ArrayQueue::new(cap)),
            events: Arc::new(ArrayQueue::new(cap)),
        }
    }
}

/// A layer-4 service plugged into a worker (the load balancer, a
/// generator): it gets the IPv4 packets addressed to the appliance that are
/// not ARP/ICMP, and a hook on every loop iteration and every tick.
///
/// Implementations follow the worker's rules: no locks, no allocation, no
/// system calls per packet.
pub trait Service<Q: Queue> {
    /// A TCP or UDP packet for one of our addresses on port `pi`: the IPv4
    /// header is valid (checksum included), it is not a fragment, and it
    /// starts at `l3`. Return the frame to decline it (the worker counts a
    /// `tcp_no_service`/`udp_no_service` drop).
    fn on_ipv4(
        &mut self,
        io: &mut Io<'_, Q>,
        pi: usize,
        f: Q::Frame,
        l3: usize,
        now: u64,
    ) -> Option<Q::Frame>;
    /// A TCP or UDP (`proto`) segment for one of our IPv6 addresses on
    /// port `pi`: the IPv6 header is valid, extension headers (none
    /// fragmenting) were walked, and `(l3, l4, end)` are the offsets of the
    /// IPv6 header, the upper-layer header and the end of the packet. The
    /// upper-layer checksum is not verified yet. Return the frame to
    /// decline it (the worker counts an `ipv6_no_service` drop).
    fn on_ipv6(
        &mut self,
        _io: &mut Io<'_, Q>,
        _pi: usize,
        f: Q::Frame,
        _proto: u8,
        _offsets: (usize, usize, usize),
        _now: u64,
    ) -> Option<Q::Frame> {
        Some(f)
    }
    /// An ICMP error for one of our addresses on port `pi`, its checksum
    /// verified: IPv4 Destination Unreachable, Time Exceeded or Parameter
    /// Problem (`v6` false), ICMPv6 types 1–4 (`v6` true). `(l3, l4, end)`
    /// are the offsets of the IP header, the ICMP header and the end of
    /// the packet. Return the frame to decline it (IPv4: handed to the
    /// kernel interface, if any, as before; IPv6: counted
    /// `icmpv6_unhandled`).
    fn on_icmp_error(
        &mut self,
        _io: &mut Io<'_, Q>,
        _pi: usize,
        f: Q::Frame,
        _v6: bool,
        _offsets: (usize, usize, usize),
        _now: u64,
    ) -> Option<Q::Frame> {
        Some(f)
    }
    /// Called on every loop iteration after the rx bursts (e.g. to take
    /// frames other lcores steered here). Returns whether it did any work.
    fn poll(&mut self, _io: &mut Io<'_, Q>, _now: u64) -> bool {
        false
    }
    /// Called every millisecond (timers, counter publication).
    fn tick(&mut self, _io: &mut Io<'_, Q>, _now: u64) {}
    /// Called once when the worker stops, after the last poll.
    fn finish(&mut self, _io: &mut Io<'_, Q>, _now: u64) {}
}

/// No service: every TCP/UDP packet is declined.
#[derive(Copy, Clone, Debug, Default)]
pub struct NoService;

impl<Q: Queue> Service<Q> for NoService {
    #[inline]
    fn on_ipv4(
        &mut self,
        _io: &mut Io<'_, Q>,
        _pi: usize,
        f: Q::Frame,
        _l3: usize,
        _now: u64,
    ) -> Option<Q::Frame> {
        Some(f)
    }
}

/// What a [`Service`] may do with the worker's ports while it runs:
/// allocate frames, resolve next hops, queue frames for transmission.
pub struct Io<'a, Q: Queue> {
    ports: &'a mut [PortState<Q>],
    neigh: &'a mut NeighborTable,
    neigh6: &'a mut NeighborTable<Ipv6Addr>,
    c: &'a mut Counters,
    burst: usize,
    now: u64,
}

impl<Q: Queue> std::fmt::Debug for Io<'_, Q> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io")
            .field("ports", &self.ports.len())
            .finish()
    }
}

impl<Q: Queue> Io<'_, Q> {
    /// Number of ports.
    pub fn ports(&self) -> usize {
        self.ports.len()
    }
    /// Port `pi`'s MAC address.
    #[inline]
    pub fn mac(&self, pi: usize) -> MacAddr {
        self.ports[pi].mac
    }
    /// An empty frame from port `pi`'s pool (counted `no_buffer` when the
    /// pool is empty).
    #[inline]
    pub fn alloc(&mut self, pi: usize) -> Option<Q::Frame> {
        let f = self.ports[pi].q.alloc();
        if f.is_none() {
            self.c.drop(DropReason::NoBuffer);
        }
        f
    }
    /// The MAC of the next hop toward `ip` on port `pi`: the neighbour
    /// itself when on-link, else the port's gateway. `None` while
    /// unresolved (resolution is started; the caller drops or retries).
    #[inline]
    pub fn resolve(&mut self, pi: usize, ip: Ipv4Addr) -> Option<MacAddr> {
        let hop = if self.ports[pi].on_link(ip) {
            ip
        } else {
            self.ports[pi].setup.gateway?
        };
        let port = pi as u8;
        match self.neigh.lookup(port, hop) {
            Some(m) => Some(m),
            None => {
                if !self.neigh.want(port, hop, self.now, false) {
                    self.c.neigh_table_full += 1;
                }
                None
            }
        }
    }
    /// The MAC to send IPv6 `ip` to from port `pi` (NDP): the address
    /// itself when on-link (a configured prefix, or link-local), else the
    /// port's `gateway6`. `None` while unresolved (resolution is started).
    #[inline]
    pub fn resolve6(&mut self, pi: usize, ip: Ipv6Addr) -> Option<MacAddr> {
        let hop = if self.ports[pi].on_link6(ip) {
            ip
        } else {
            self.ports[pi].setup.gateway6?
        };
        let port = pi as u8;
        match self.neigh6.lookup(port, hop) {
            Some(m) => Some(m),
            None => {
                if !self.neigh6.want(port, hop, self.now, false) {
                    self.c.neigh_table_full += 1;
                }
                None
            }
        }
    }
    /// Queue `f` for transmission on port `pi` (flushed at a burst or by
    /// the drain timer).
    #[inline]
    pub fn send(&mut self, pi: usize, f: Q::Frame) {
        port_send(&mut self.ports[pi], self.c, self.burst, f);
    }
    /// Count a drop in the worker's counters.
    #[inline]
    pub fn drop_frame(&mut self, r: DropReason) {
        self.c.drop(r);
    }
}

#[inline]
fn port_send<Q: Queue>(p: &mut PortState<Q>, c: &mut Counters, burst: usize, f: Q::Frame) {
    if p.txbuf.is_full() {
        port_flush(p, c);
    }
    let len = f.len();
    if let Err(e) = p.txbuf.try_push(f) {
        drop(e.element());
        c.drop(DropReason::TxFull);
        return;
    }
    // Counted now, while the frame is in cache (a pass over the burst at
    // the flush chased every frame's pointer again).
    p.txbytes += len;
    if p.txbuf.len() >= burst {
        port_flush(p, c);
    }
}

/// Hand a port's TX buffer to the device; what it refuses is dropped and
/// counted (the device is overloaded; retrying would stall rx).
fn port_flush<Q: Queue>(p: &mut PortState<Q>, c: &mut Counters) {
    if p.txbuf.is_empty() {
        return;
    }
    let bytes = std::mem::take(&mut p.txbytes);
    let sent = p.q.tx_burst(&mut p.txbuf);
    c.tx_packets += sent as u64;
    if p.txbuf.is_empty() {
        c.tx_bytes += bytes as u64;
        return;
    }
    // The device took only part of the burst (ring full): the rest is
    // dropped and counted.
    let unsent_bytes: usize = p.txbuf.iter().map(|f| f.len()).sum();
    c.tx_bytes += (bytes - unsent_bytes) as u64;
    c.drops[DropReason::TxFull as usize] += p.txbuf.len() as u64;
    p.txbuf.clear();
}

struct PortState<Q: Queue> {
    q: Q,
    mac: MacAddr,
    setup: PortSetup,
    txbuf: Burst<Q::Frame>,
    /// Bytes of the frames in `txbuf`.
    txbytes: usize,
    /// Addresses claimed at run time (this worker's copy of
    /// [`AddrClaims`], refreshed at the tick; usually empty).
    claimed: ArrayVec<Ipv4Addr, MAX_CLAIMS>,
    /// IPv6 addresses answered: the configured ones and the link-local
    /// (empty: IPv6 off on this port).
    v6: Vec<Ipv6Addr>,
}

/// A port's exception path: this worker's queue of the kernel interface
/// (a `net_tap` device) that stands for the port in the kernel. Frames to
/// the port's addresses that the dataplane does not serve go in; what the
/// kernel sends comes out and leaves through the port.
struct KernelPath<Q: Queue> {
    q: Q,
    txbuf: Burst<Q::Frame>,
}

impl<Q: Queue> KernelPath<Q> {
    fn flush(&mut self, c: &mut Counters) {
        if self.txbuf.is_empty() {
            return;
        }
        let sent = self.q.tx_burst(&mut self.txbuf);
        c.kernel_in += sent as u64;
        c.kernel_in_dropped += self.txbuf.len() as u64;
        self.txbuf.clear();
    }
}

impl<Q: Queue> PortState<Q> {
    #[inline]
    fn owns(&self, ip: Ipv4Addr) -> bool {
        self.setup.addrs.iter().any(|a| a.addr == ip)
            || (!self.claimed.is_empty() && self.claimed.contains(&ip))
    }
    #[inline]
    fn on_link(&self, ip: Ipv4Addr) -> bool {
        self.setup.addrs.iter().any(|a| a.contains(ip))
    }
    #[inline]
    fn owns6(&self, ip: Ipv6Addr) -> bool {
        self.v6.contains(&ip)
    }
    /// Is IPv6 `ip` on one of the port's links (a configured prefix, or
    /// link-local when IPv6 is on)?
    fn on_link6(&self, ip: Ipv6Addr) -> bool {
        (!self.v6.is_empty() && ip.is_unicast_link_local())
            || self.setup.addrs6.iter().any(|a| a.contains(ip))
    }
    /// Our IPv6 address to use as the source toward `ip`.
    fn source6_for(&self, ip: Ipv6Addr) -> Option<Ipv6Addr> {
        if ip.is_unicast_link_local() {
            return self.v6.iter().copied().find(|a| a.is_unicast_link_local());
        }
        self.setup
            .addrs6
            .iter()
            .find(|a| a.contains(ip))
            .map(|a| a.addr)
            .or_else(|| self.v6.first().copied())
    }
    /// Frames to `ip` are ours: one of our addresses, all-nodes, or the
    /// solicited-node group of one of them.
    fn accepts6(&self, ip: Ipv6Addr) -> bool {
        self.owns6(ip)
            || ip == ALL_NODES
            || self
                .v6
                .iter()
                .any(|a| qsplice_wire::ipv6::solicited_node(*a) == ip)
    }
    /// Our address to use as the source toward `ip`.
    fn source_for(&self, ip: Ipv4Addr) -> Option<Ipv4Addr> {
        self.setup
            .addrs
            .iter()
            .find(|a| a.contains(ip))
            .or(self.setup.addrs.first())
            .map(|a| a.addr)
    }
}

/// One worker lcore's state. See the crate docs for the loop.
pub struct Worker<Q: Queue, C: Clock, S: Service<Q> = NoService> {
    service: S,
    conf: EngineConf,
    ports: Vec<PortState<Q>>,
    /// `kernel[pi]`: port `pi`'s exception path, if it has one.
    kernel: Vec<Option<KernelPath<Q>>>,
    kernel_cycles: u64,
    next_kernel: u64,
    /// Token bucket of `kernel_max_pps`: tokens (×1) and when last filled.
    kernel_tokens: u64,
    kernel_filled: u64,
    hz: u64,
    neigh: NeighborTable,
    neigh6: NeighborTable<Ipv6Addr>,
    c: Counters,
    shared: Arc<SharedCounters>,
    clock: C,
    link: Option<ControlLink>,
    /// Per port: its claimed-address set and the version last read.
    claims: Vec<Option<(Arc<AddrClaims>, u64)>>,
    /// Gratuitous ARPs still to send for claimed addresses: port, address,
    /// when, how many more.
    garps: ArrayVec<(u8, Ipv4Addr, u64, u8), 16>,
    drain_cycles: u64,
    tick_cycles: u64,
    next_drain: u64,
    next_tick: u64,
    started: bool,
}

impl<Q: Queue, C: Clock, S: Service<Q>> std::fmt::Debug for Worker<Q, C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("ports", &self.ports.len())
            .field("primary", &self.conf.primary)
            .finish()
    }
}

/// The all-nodes link-local multicast group.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Write an IPv6 neighbor advertisement of `target` (from `target` to `to`,
/// hop limit 255, a target link-layer option with `mac`) at the start of
/// `l3` (at least 72 bytes).
fn write_na(l3: &mut [u8], target: Ipv6Addr, to: Ipv6Addr, flags: u8, mac: MacAddr) {
    {
        let mut ip = Ipv6Packet::new_unchecked(&mut *l3);
        ip.set_version_tc_flow(0, 0);
        ip.set_payload_len(32);
        ip.set_next_header(qsplice_wire::ipv6::next_header::ICMPV6);
        ip.set_hop_limit(255);
        ip.set_src_addr(target);
        ip.set_dst_addr(to);
    }
    let msg = &mut l3[40..72];
    let _ = qsplice_wire::icmpv6::write_neighbor_advert(msg, target, flags, mac);
    Icmpv6Packet::new_unchecked(msg).fill_checksum(target, to);
}

/// Fix a word's checksum contribution after changing it (RFC 1624).
#[inline(always)]
fn csum_update(csum: u16, old: u16, new: u16) -> u16 {
    checksum::update_u16(csum, old, new)
}

impl<Q: Queue, C: Clock> Worker<Q, C, NoService> {
    /// A worker over `ports` (queue `i` of each port belongs to this worker;
    /// `setups[i]` describes port `i`) with no layer-4 service. All
    /// allocation happens here.
    pub fn new(
        conf: EngineConf,
        ports: Vec<(Q, PortSetup)>,
        clock: C,
        shared: Arc<SharedCounters>,
        link: Option<ControlLink>,
    ) -> Self {
        Worker::with_service(conf, ports, clock, shared, link, NoService)
    }
}

impl<Q: Queue, C: Clock, S: Service<Q>> Worker<Q, C, S> {
    /// A worker running `service` for TCP/UDP packets to our addresses.
    pub fn with_service(
        conf: EngineConf,
        ports: Vec<(Q, PortSetup)>,
        clock: C,
        shared: Arc<SharedCounters>,
        link: Option<ControlLink>,
        service: S,
    ) -> Self {
        let ms = clock.us_to_cycles(1000).max(1);
        let timers = NeighTimers {
            reachable: conf.arp.reachable_ms.saturating_mul(ms),
            probe_interval: conf.arp.probe_interval_ms.saturating_mul(ms),
            max_probes: conf.arp.max_probes,
        };
        let drain_cycles = clock.us_to_cycles(conf.tx_drain_us).max(1);
        let ports: Vec<PortState<Q>> = ports
            .into_iter()
            .map(|(q, setup)| PortState {
                mac: MacAddr(q.mac()),
                v6: if setup.addrs6.is_empty() {
                    Vec::new()
                } else {
                    let ll = qsplice_wire::ipv6::link_local(MacAddr(q.mac()));
                    let mut v: Vec<Ipv6Addr> = setup.addrs6.iter().map(|a| a.addr).collect();
                    if !v.contains(&ll) {
                        v.push(ll);
                    }
                    v
                },
                setup,
                txbuf: Burst::new(),
                txbytes: 0,
                claimed: ArrayVec::new(),
                q,
            })
            .collect();
        let mut conf = conf;
        conf.burst = conf.burst.clamp(1, qsplice_netdev::MAX_BURST);
        let kernel_cycles = clock.us_to_cycles(conf.kernel_poll_us).max(1);
        let kernel = (0..ports.len()).map(|_| None).collect();
        let claims = (0..ports.len()).map(|_| None).collect();
        Worker {
            service,
            neigh: NeighborTable::new(conf.arp.table_size, timers),
            neigh6: NeighborTable::new(conf.arp.table_size, timers),
            conf,
            ports,
            kernel,
            kernel_cycles,
            next_kernel: 0,
            kernel_tokens: conf.kernel_max_pps,
            kernel_filled: 0,
            hz: clock.hz(),
            c: Counters::default(),
            shared,
            clock,
            link,
            claims,
            garps: ArrayVec::new(),
            drain_cycles,
            tick_cycles: ms,
            next_drain: 0,
            next_tick: 0,
            started: false,
        }
    }

    /// Give port `pi` an exception path: `q` is this worker's queue of the
    /// kernel interface that stands for the port (before [`Worker::run`]).
    /// Frames to the port's addresses that neither the engine nor the
    /// service handles — TCP/UDP the service declines, other IP protocols,
    /// ICMP other than echo requests — and ARP replies (after the engine
    /// learned from them) go to the kernel; every frame the kernel sends
    /// leaves through the port. So a routing daemon (BGP, BFD), sshd or any
    /// other kernel service runs on the appliance's own addresses.
    pub fn attach_kernel(&mut self, pi: usize, q: Q) {
        if let Some(k) = self.kernel.get_mut(pi) {
            *k = Some(KernelPath {
                q,
                txbuf: Burst::new(),
            });
        }
    }

    /// Let port `pi` serve the addresses in `claims` besides its own (read
    /// at every tick when they change): ARP requests for them are
    /// answered, frames to them are ours, and the primary worker announces
    /// each new one with three gratuitous ARPs a second apart, so the
    /// neighbours' caches move to this port's MAC (address takeover, as
    /// keepalived/VRRP does).
    pub fn attach_claims(&mut self, pi: usize, claims: Arc<AddrClaims>) {
        if let Some(c) = self.claims.get_mut(pi) {
            *c = Some((claims, u64::MAX));
        }
    }

    /// The IPv6 neighbour table (NDP).
    pub fn neighbors6(&self) -> &NeighborTable<Ipv6Addr> {
        &self.neigh6
    }

    /// Addresses port `pi` serves now besides its configured ones.
    pub fn claimed(&self, pi: usize) -> &[Ipv4Addr] {
        self.ports.get(pi).map_or(&[], |p| p.claimed.as_slice())
    }

    /// Take the claimed-address sets' changes; queue the announcements.
    fn refresh_claims(&mut self, now: u64) {
        let second = self.hz.max(1);
        for pi in 0..self.claims.len() {
            let Some((claims, seen)) = &mut self.claims[pi] else {
                continue;
            };
            if claims.version() == *seen {
                continue;
            }
            let Some((v, list)) = claims.read() else {
                continue;
            };
            *seen = v;
            let port = &mut self.ports[pi];
            for &a in &list {
                if !port.claimed.contains(&a) && self.conf.primary {
                    let _ = self.garps.try_push((pi as u8, a, now, 3));
                }
            }
            port.claimed = list;
            self.garps
                .retain(|g| usize::from(g.0) != pi || self.ports[pi].claimed.contains(&g.1));
        }
        let mut i = 0;
        while i < self.garps.len() {
            let (pi, ip, at, left) = self.garps[i];
            if now < at {
                i += 1;
                continue;
            }
            if self.send_arp(
                usize::from(pi),
                ARP_REQUEST,
                MacAddr::BROADCAST,
                MacAddr::ZERO,
                ip,
                ip,
            ) {
                self.c.arp_gratuitous_sent += 1;
            }
            if left > 1 {
                self.garps[i] = (pi, ip, now + second, left - 1);
                i += 1;
            } else {
                self.garps.remove(i);
            }
        }
    }

    /// Access a port's kernel-interface queue (tests).
    pub fn kernel_queue_mut(&mut self, pi: usize) -> Option<&mut Q> {
        self.kernel.get_mut(pi)?.as_mut().map(|k| &mut k.q)
    }

    /// Counters so far (the worker's working copy).
    pub fn counters(&self) -> &Counters {
        &self.c
    }

    /// The worker's neighbour table.
    pub fn neighbors(&self) -> &NeighborTable {
        &self.neigh
    }

    /// The layer-4 service.
    pub fn service(&self) -> &S {
        &self.service
    }

    /// The layer-4 service, mutable.
    pub fn service_mut(&mut self) -> &mut S {
        &mut self.service
    }

    /// Access a port's queue (tests inspect what was sent).
    pub fn queue_mut(&mut self, port: usize) -> &mut Q {
        &mut self.ports[port].q
    }

    /// Run until `stop` is set, then flush and publish.
    pub fn run(&mut self, stop: &AtomicBool) {
        let mut idle = Idle::new(
            self.conf.idle_sleep_us > 0,
            self.clock.us_to_cycles(self.conf.idle_spin_us),
            self.clock.now(),
        );
        while !stop.load(Ordering::Relaxed) {
            let busy = self.poll();
            if idle.enabled && idle.sleep_after(busy, self.clock.now()) {
                // Buffered frames leave before the lcore sleeps.
                for pi in 0..self.ports.len() {
                    self.flush(pi);
                }
                std::thread::sleep(std::time::Duration::from_micros(self.conf.idle_sleep_us));
            }
        }
        self.finish();
    }

    /// Flush TX buffers and publish counters (end of run).
    pub fn finish(&mut self) {
        let now = self.clock.now();
        let (svc, mut io) = self.io(now);
        svc.finish(&mut io, now);
        for pi in 0..self.ports.len() {
            self.flush(pi);
        }
        self.shared.publish(&self.c);
    }

    /// One iteration of the loop. Returns whether any frame was received.
    pub fn poll(&mut self) -> bool {
        let now = self.clock.now();
        if !self.started {
            self.start(now);
        }
        let mut busy = false;
        for pi in 0..self.ports.len() {
            let mut rx: Burst<Q::Frame> = Burst::new();
            let n = self.ports[pi].q.rx_burst(&mut rx, self.conf.burst);
            if n == 0 {
                continue;
            }
            busy = true;
            self.c.rx_packets += n as u64;
            for f in rx.drain(..) {
                self.c.rx_bytes += f.len() as u64;
                self.handle(pi, f, now);
            }
        }
        {
            let (svc, mut io) = self.io(now);
            busy |= svc.poll(&mut io, now);
        }
        if now >= self.next_kernel {
            self.next_kernel = now + self.kernel_cycles;
            busy |= self.poll_kernel();
        }
        self.c.polls += 1;
        if !busy {
            self.c.idle_polls += 1;
        }
        if now >= self.next_drain {
            for pi in 0..self.ports.len() {
                self.flush(pi);
            }
            self.next_drain = now + self.drain_cycles;
        }
        if now >= self.next_tick {
            self.tick(now);
            self.next_tick = now + self.tick_cycles;
        }
        busy
    }

    fn start(&mut self, now: u64) {
        self.started = true;
        self.next_drain = now + self.drain_cycles;
        if !self.conf.primary {
            return;
        }
        for pi in 0..self.ports.len() {
            for i in 0..self.ports[pi].setup.neighbors.len() {
                let ip = self.ports[pi].setup.neighbors[i];
                if !self.neigh.want(pi as u8, ip, now, true) {
                    self.c.neigh_table_full += 1;
                }
            }
            if !self.ports[pi].v6.is_empty() {
                for i in 0..self.ports[pi].setup.neighbors6.len() {
                    let ip = self.ports[pi].setup.neighbors6[i];
                    if !self.neigh6.want(pi as u8, ip, now, true) {
                        self.c.neigh_table_full += 1;
                    }
                }
            }
            if self.conf.arp.gratuitous_on_start {
                for i in 0..self.ports[pi].v6.len() {
                    let a = self.ports[pi].v6[i];
                    if self.send_na(pi, a, ALL_NODES, na_flags::OVERRIDE) {
                        self.c.ndp_adverts_sent += 1;
                    }
                }
                for i in 0..self.ports[pi].setup.addrs.len() {
                    let ip = self.ports[pi].setup.addrs[i].addr;
                    if self.send_arp(pi, ARP_REQUEST, MacAddr::BROADCAST, MacAddr::ZERO, ip, ip) {
                        self.c.arp_gratuitous_sent += 1;
                    }
                }
            }
        }
    }

    /// Millisecond timer: control commands, neighbour timers, counters.
    fn tick(&mut self, now: u64) {
        if !self.garps.is_empty() || self.claims.iter().any(Option::is_some) {
            self.refresh_claims(now);
        }
        if let Some(link) = &self.link {
            while let Some(CoreCmd::Neigh { port, ip, mac }) = link.cmds.pop() {
                match ip {
                    IpAddr::V4(ip) => {
                        self.neigh.learn(port, ip, mac, now, true);
                    }
                    IpAddr::V6(ip) => {
                        self.neigh6.learn(port, ip, mac, now, true);
                    }
                }
            }
        }
        let mut probes: ArrayVec<Probe, 64> = ArrayVec::new();
        let mut failed = self.neigh.poll(now, |p| {
            let _ = probes.try_push(p);
        });
        let mut probes6: ArrayVec<Probe<Ipv6Addr>, 64> = ArrayVec::new();
        failed += self.neigh6.poll(now, |p| {
            let _ = probes6.try_push(p);
        });
        if failed > 0 {
            self.c.neigh_failed += failed;
            if let Some(link) = &self.link {
                let _ = link.events.push(CoreEvent::NeighFailed { count: failed });
            }
        }
        {
            let (svc, mut io) = self.io(now);
            svc.tick(&mut io, now);
        }
        for p in probes {
            let pi = p.port as usize;
            let Some(src) = self.ports.get(pi).and_then(|s| s.source_for(p.ip)) else {
                continue;
            };
            let dst = p.unicast.unwrap_or(MacAddr::BROADCAST);
            if self.send_arp(pi, ARP_REQUEST, dst, MacAddr::ZERO, src, p.ip) {
                self.c.arp_requests_sent += 1;
            }
        }
        for p in probes6 {
            if self.send_ns(usize::from(p.port), p.ip, p.unicast) {
                self.c.ndp_solicits_sent += 1;
            }
        }
        self.shared.publish(&self.c);
    }

    /// Queue a frame for transmission on port `pi`.
    #[inline]
    fn send(&mut self, pi: usize, f: Q::Frame) {
        port_send(&mut self.ports[pi], &mut self.c, self.conf.burst, f);
    }

    fn flush(&mut self, pi: usize) {
        port_flush(&mut self.ports[pi], &mut self.c);
        if let Some(k) = &mut self.kernel[pi] {
            k.flush(&mut self.c);
        }
    }

    /// Hand `f` (to our addresses on port `pi`, not served here) to the
    /// port's kernel interface; without one it is dropped as `r`.
    fn hand_to_kernel(&mut self, pi: usize, f: Q::Frame, r: DropReason) {
        let Some(k) = &mut self.kernel[pi] else {
            return self.c.drop(r);
        };
        // A flood to the appliance's own addresses must not turn into a
        // system call per frame on the lcore: a token bucket (burst = one
        // second's worth) bounds what reaches the kernel.
        let max = self.conf.kernel_max_pps;
        if max > 0 {
            let now = self.clock.now();
            let dt = now.saturating_sub(self.kernel_filled);
            let add = (u128::from(dt) * u128::from(max) / u128::from(self.hz.max(1))) as u64;
            if add > 0 {
                self.kernel_tokens = (self.kernel_tokens + add).min(max);
                self.kernel_filled = now;
            }
            if self.kernel_tokens == 0 {
                self.c.kernel_in_limited += 1;
                return;
            }
            self.kernel_tokens -= 1;
        }
        if k.txbuf.is_full() {
            k.flush(&mut self.c);
        }
        if k.txbuf.try_push(f).is_err() {
            self.c.kernel_in_dropped += 1;
        }
    }

    /// Take what the kernel interfaces sent and transmit it on their ports.
    fn poll_kernel(&mut self) -> bool {
        let mut busy = false;
        for pi in 0..self.ports.len() {
            let Some(k) = &mut self.kernel[pi] else {
                continue;
            };
            let mut rx: Burst<Q::Frame> = Burst::new();
            let n = k.q.rx_burst(&mut rx, self.conf.burst);
            if n == 0 {
                continue;
            }
            busy = true;
            for f in rx.drain(..) {
                if f.len() < 14 {
                    self.c.drop(DropReason::EthTruncated);
                    continue;
                }
                self.c.kernel_out += 1;
                port_send(&mut self.ports[pi], &mut self.c, self.conf.burst, f);
            }
        }
        busy
    }

    /// The service's view of this worker.
    fn io(&mut self, now: u64) -> (&mut S, Io<'_, Q>) {
        (
            &mut self.service,
            Io {
                ports: &mut self.ports,
                neigh: &mut self.neigh,
                neigh6: &mut self.neigh6,
                c: &mut self.c,
                burst: self.conf.burst,
                now,
            },
        )
    }

    /// Classify one received frame and act on it.
    #[inline]
    fn handle(&mut self, pi: usize, f: Q::Frame, now: u64) {
        let data = f.data();
        let Ok((et, l3, _vid)) = ethernet_l3(data) else {
            self.c.drop(DropReason::EthTruncated);
            return;
        };
        let dst = MacAddr([data[0], data[1], data[2], data[3], data[4], data[5]]);
        let v6_group = dst.0[0] == 0x33 && dst.0[1] == 0x33 && !self.ports[pi].v6.is_empty();
        if dst != self.ports[pi].mac && !dst.is_broadcast() && !v6_group {
            self.c.drop(if dst.is_multicast() {
                DropReason::L2Multicast
            } else {
                DropReason::NotOurMac
            });
            return;
        }
        match et {
            ethertype::ARP => self.handle_arp(pi, f, l3, now),
            ethertype::IPV4 => self.handle_ipv4(pi, f, l3, now),
            ethertype::IPV6 if self.ports[pi].v6.is_empty() => self.c.drop(DropReason::Ipv6),
            ethertype::IPV6 => self.handle_ipv6(pi, f, l3, now),
            _ => self.c.drop(DropReason::UnknownEthertype),
        }
    }

    fn handle_arp(&mut self, pi: usize, mut f: Q::Frame, l3: usize, now: u64) {
        let (op, smac, sip, tip) = match ArpPacket::new_checked(&f.data()[l3..]) {
            Ok(a) => (a.operation(), a.sender_mac(), a.sender_ip(), a.target_ip()),
            Err(qsplice_wire::Error::Truncated) => return self.c.drop(DropReason::ArpTruncated),
            Err(_) => return self.c.drop(DropReason::ArpUnsupported),
        };
        if !smac.is_unicast() || (op != ARP_REQUEST && op != ARP_REPLY) {
            return self.c.drop(DropReason::ArpInvalid);
        }
        let port = &self.ports[pi];
        let our_mac = port.mac;
        if port.owns(sip) && smac != our_mac {
            self.c.arp_conflicts += 1;
        }
        let for_us = port.owns(tip);
        if !sip.is_unspecified() && port.on_link(sip) && !port.owns(sip) {
            let learned = self.neigh.learn(pi as u8, sip, smac, now, for_us);
            if matches!(learned, Learned::New | Learned::Changed) {
                self.c.neigh_learned += 1;
            }
            // A refresh is relayed too: with several rx queues the answer to
            // one worker's ARP probe may arrive at another worker, and the
            // prober must hear it or its entry fails (ARP is rare traffic).
            if learned != Learned::Ignored {
                if let Some(link) = &self.link {
                    let _ = link.events.push(CoreEvent::NeighLearned {
                        port: pi as u8,
                        ip: IpAddr::V4(sip),
                        mac: smac,
                    });
                }
            }
        }
        if op == ARP_REPLY {
            self.c.arp_replies_received += 1;
            // Consumed, unless the kernel interface's own resolutions wait
            // for it (the kernel asked through the exception path).
            if self.kernel[pi].is_some() {
                self.hand_to_kernel(pi, f, DropReason::ArpNotForUs);
            }
            return;
        }
        if !for_us {
            return self.c.drop(DropReason::ArpNotForUs);
        }
        // Turn the request into the reply in place (keeps any VLAN tag).
        let data = f.data_mut();
        {
            let mut eth = EthernetFrame::new_unchecked(&mut *data);
            eth.set_dst(smac);
            eth.set_src(our_mac);
        }
        let mut arp = ArpPacket::new_unchecked(&mut data[l3..]);
        arp.set_operation(ARP_REPLY);
        arp.set_target_mac(smac);
        arp.set_target_ip(sip);
        arp.set_sender_mac(our_mac);
        arp.set_sender_ip(tip);
        self.c.arp_requests_answered += 1;
        self.send(pi, f);
    }

    fn handle_ipv4(&mut self, pi: usize, mut f: Q::Frame, l3: usize, now: u64) {
        use qsplice_wire::Error as E;
        let (src, dst, proto, hl, tl, frag, ttl) = match Ipv4Packet::new_checked(&f.data()[l3..]) {
            Ok(ip) => {
                if !ip.verify_checksum() {
                    return self.c.drop(DropReason::Ipv4BadChecksum);
                }
                (
                    ip.src_addr(),
                    ip.dst_addr(),
                    ip.protocol(),
                    ip.header_len() as usize,
                    ip.total_len() as usize,
                    ip.is_fragment(),
                    ip.ttl(),
                )
            }
            Err(e) => {
                return self.c.drop(match e {
                    E::Truncated => DropReason::Ipv4Truncated,
                    E::BadVersion => DropReason::Ipv4BadVersion,
                    E::BadHeaderLen => DropReason::Ipv4BadHeaderLen,
                    _ => DropReason::Ipv4BadTotalLen,
                })
            }
        };
        let port = &self.ports[pi];
        if !port.owns(dst) {
            return self.c.drop(DropReason::Ipv4NotForUs);
        }
        if src.is_unspecified() || src.is_broadcast() || src.is_multicast() || port.owns(src) {
            return self.c.drop(DropReason::Ipv4BadSource);
        }
        if frag {
            return self.c.drop(DropReason::Ipv4Fragment);
        }
        match proto {
            ip_proto::ICMP => {}
            ip_proto::TCP | ip_proto::UDP => {
                let (svc, mut io) = self.io(now);
                if let Some(f) = svc.on_ipv4(&mut io, pi, f, l3, now) {
                    let r = if proto == ip_proto::TCP {
                        DropReason::TcpNoService
                    } else {
                        DropReason::UdpNoService
                    };
                    self.hand_to_kernel(pi, f, r);
                }
                return;
            }
            _ => return self.hand_to_kernel(pi, f, DropReason::UnknownProtocol),
        }
        let our_mac = port.mac;
        let l4 = l3 + hl;
        let end = l3 + tl;
        {
            let Ok(icmp) = Icmpv4Packet::new_checked(&f.data()[l4..end]) else {
                return self.c.drop(DropReason::IcmpTruncated);
            };
            if !icmp.verify_checksum() {
                return self.c.drop(DropReason::IcmpBadChecksum);
            }
            let (t, code) = (icmp.msg_type(), icmp.code());
            if t != Icmpv4Packet::<&[u8]>::ECHO_REQUEST || code != 0 {
                // Errors (destination unreachable, time exceeded, parameter
                // problem) may concern the service's connections first.
                let f = if matches!(t, 3 | 11 | 12) {
                    let (svc, mut io) = self.io(now);
                    match svc.on_icmp_error(&mut io, pi, f, false, (l3, l4, end), now) {
                        Some(f) => f,
                        None => return,
                    }
                } else {
                    f
                };
                // Echo replies to the kernel's pings, unreachables for its
                // connections, …
                return self.hand_to_kernel(pi, f, DropReason::IcmpUnhandled);
            }
        }
        let data = f.data_mut();
        // Echo reply in place: ICMP type 8 → 0; swap addresses (the IPv4
        // checksum is a sum, a swap leaves it unchanged); reset TTL; swap MACs.
        {
            let mut icmp = Icmpv4Packet::new_unchecked(&mut data[l4..end]);
            icmp.set_msg_type(Icmpv4Packet::<&[u8]>::ECHO_REPLY);
            let c = csum_update(
                icmp.checksum(),
                u16::from(Icmpv4Packet::<&[u8]>::ECHO_REQUEST) << 8,
                u16::from(Icmpv4Packet::<&[u8]>::ECHO_REPLY) << 8,
            );
            icmp.set_checksum(c);
        }
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut data[l3..]);
            ip.set_src_addr(dst);
            ip.set_dst_addr(src);
            ip.set_ttl(OUR_TTL);
            let c = csum_update(
                ip.checksum(),
                u16::from_be_bytes([ttl, proto]),
                u16::from_be_bytes([OUR_TTL, proto]),
            );
            ip.set_checksum(c);
        }
        {
            let mut eth = EthernetFrame::new_unchecked(&mut *data);
            let peer = eth.src();
            eth.set_dst(peer);
            eth.set_src(our_mac);
        }
        self.c.icmp_echo_replied += 1;
        self.send(pi, f);
    }

    /// Build and queue an ARP packet on port `pi`. Returns false (counted)
    /// when no buffer is available.
    fn handle_ipv6(&mut self, pi: usize, f: Q::Frame, l3: usize, now: u64) {
        use qsplice_wire::ipv6::next_header;
        use qsplice_wire::Error as E;
        let (src, dst, hop, up) = {
            let ip = match Ipv6Packet::new_checked(&f.data()[l3..]) {
                Ok(ip) => ip,
                Err(e) => {
                    return self.c.drop(match e {
                        E::Truncated => DropReason::Ipv6Truncated,
                        E::BadVersion => DropReason::Ipv6BadVersion,
                        _ => DropReason::Ipv6BadPayloadLen,
                    })
                }
            };
            let up = match ip.upper_layer() {
                Ok(u) => u,
                Err(e) => {
                    return self.c.drop(match e {
                        E::Truncated => DropReason::Ipv6ExtTruncated,
                        E::BadOption => DropReason::Ipv6ExtInvalid,
                        _ => DropReason::Ipv6ExtTooMany,
                    })
                }
            };
            (
                ip.src_addr(),
                ip.dst_addr(),
                ip.hop_limit(),
                (up, 40 + usize::from(ip.payload_len())),
            )
        };
        let (up, end) = up;
        let port = &self.ports[pi];
        if !port.accepts6(dst) {
            return self.c.drop(DropReason::Ipv6NotForUs);
        }
        if src.is_multicast() || port.owns6(src) {
            return self.c.drop(DropReason::Ipv6BadSource);
        }
        if up.fragment {
            return self.c.drop(DropReason::Ipv6Fragment);
        }
        match up.proto {
            next_header::ICMPV6 => self.handle_icmpv6(
                pi,
                f,
                l3,
                (up.offset, end),
                (src, dst, hop),
                up.ext_headers,
                now,
            ),
            next_header::TCP | next_header::UDP => {
                let (svc, mut io) = self.io(now);
                if svc
                    .on_ipv6(
                        &mut io,
                        pi,
                        f,
                        up.proto,
                        (l3, l3 + up.offset, l3 + end),
                        now,
                    )
                    .is_some()
                {
                    // (The kernel interface runs IPv4 only: nothing to hand it.)
                    self.c.drop(DropReason::Ipv6NoService);
                }
            }
            _ => self.c.drop(DropReason::Ipv6NoService),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_icmpv6(
        &mut self,
        pi: usize,
        mut f: Q::Frame,
        l3: usize,
        (off, end): (usize, usize),
        (src, dst, hop): (Ipv6Addr, Ipv6Addr, u8),
        ext: u8,
        now: u64,
    ) {
        use qsplice_wire::icmpv6::{kind, nd_option};
        let (t, code, target, slla, tlla, flags) = {
            let msg = &f.data()[l3 + off..l3 + end];
            let m = match Icmpv6Packet::new_checked(msg) {
                Ok(m) => m,
                Err(_) => return self.c.drop(DropReason::Icmpv6Truncated),
            };
            if !m.verify_checksum(src, dst) {
                return self.c.drop(DropReason::Icmpv6BadChecksum);
            }
            let nd = matches!(m.msg_type(), kind::NEIGHBOR_SOLICIT | kind::NEIGHBOR_ADVERT);
            let (slla, tlla) = if nd {
                match (
                    m.nd_link_layer(nd_option::SOURCE_LL),
                    m.nd_link_layer(nd_option::TARGET_LL),
                ) {
                    (Ok(s), Ok(t)) => (s, t),
                    _ => return self.c.drop(DropReason::NdpInvalid),
                }
            } else {
                (None, None)
            };
            (
                m.msg_type(),
                m.code(),
                m.nd_target(),
                slla,
                tlla,
                m.nd_flags(),
            )
        };
        let port = &self.ports[pi];
        let our_mac = port.mac;
        match t {
            kind::ECHO_REQUEST => {
                if !port.owns6(dst) || ext > 0 {
                    return self.c.drop(DropReason::Icmpv6Unhandled);
                }
                // Echo reply in place: type 128 → 129, addresses swapped.
                let data = f.data_mut();
                {
                    let mut eth = EthernetFrame::new_unchecked(&mut *data);
                    let smac = eth.src();
                    eth.set_dst(smac);
                    eth.set_src(our_mac);
                }
                {
                    let mut ip = Ipv6Packet::new_unchecked(&mut data[l3..]);
                    ip.set_src_addr(dst);
                    ip.set_dst_addr(src);
                    ip.set_hop_limit(64);
                }
                let mut m = Icmpv6Packet::new_unchecked(&mut data[l3 + off..l3 + end]);
                m.set_msg_type(kind::ECHO_REPLY);
                m.fill_checksum(dst, src);
                self.c.icmpv6_echo_replied += 1;
                self.send(pi, f);
            }
            kind::NEIGHBOR_SOLICIT => {
                let Some(target) = target else {
                    return self.c.drop(DropReason::NdpInvalid);
                };
                let dad = src.is_unspecified();
                if hop != 255
                    || code != 0
                    || target.is_multicast()
                    || (dad && (slla.is_some() || !dst.is_multicast()))
                {
                    return self.c.drop(DropReason::NdpInvalid);
                }
                if !port.owns6(target) {
                    return self.c.drop(DropReason::NdpNotForUs);
                }
                if dad {
                    // Another host probes our address (RFC 4862 DAD): ours
                    // is defended by the advertisement below.
                    self.c.ndp_conflicts += 1;
                } else if let Some(mac) = slla {
                    self.learn6(pi, src, mac, true, now);
                }
                let (to, to_mac, flags) = if dad {
                    (
                        ALL_NODES,
                        qsplice_wire::ipv6::multicast_mac(ALL_NODES),
                        na_flags::OVERRIDE,
                    )
                } else {
                    let smac = slla.unwrap_or_else(|| EthernetFrame::new_unchecked(f.data()).src());
                    (src, smac, na_flags::SOLICITED | na_flags::OVERRIDE)
                };
                // The advertisement in place of the solicitation (it may
                // need a few more bytes: the target link-layer option).
                if !f.set_len(l3 + 40 + 32) {
                    return self.c.drop(DropReason::NoBuffer);
                }
                let data = f.data_mut();
                {
                    let mut eth = EthernetFrame::new_unchecked(&mut *data);
                    eth.set_dst(to_mac);
                    eth.set_src(our_mac);
                }
                write_na(&mut data[l3..], target, to, flags, our_mac);
                self.c.ndp_solicits_answered += 1;
                self.send(pi, f);
            }
            kind::NEIGHBOR_ADVERT => {
                if hop != 255 || code != 0 || target.is_none_or(|t| t.is_multicast()) {
                    return self.c.drop(DropReason::NdpInvalid);
                }
                self.c.ndp_adverts_received += 1;
                let solicited = flags & na_flags::SOLICITED != 0 && port.owns6(dst);
                match (target, tlla) {
                    (Some(t), Some(m)) if port.owns6(t) && m != our_mac => {
                        self.c.ndp_conflicts += 1;
                    }
                    (Some(t), Some(_)) if port.owns6(t) => {}
                    (Some(t), Some(m)) => {
                        // RFC 4861 §7.2.5: without the Override flag an
                        // advertisement does not replace a known MAC.
                        let known = self.neigh6.lookup(pi as u8, t);
                        if flags & na_flags::OVERRIDE != 0 || known.is_none_or(|k| k == m) {
                            self.learn6(pi, t, m, solicited, now);
                        }
                    }
                    _ => {}
                }
            }
            kind::ROUTER_SOLICIT | kind::ROUTER_ADVERT | kind::REDIRECT => {
                self.c.drop(DropReason::Icmpv6RouterIgnored)
            }
            1..=4 => {
                // Errors (unreachable, packet too big, time exceeded,
                // parameter problem): the service's connections may be
                // concerned.
                let (svc, mut io) = self.io(now);
                if svc
                    .on_icmp_error(&mut io, pi, f, true, (l3, l3 + off, l3 + end), now)
                    .is_some()
                {
                    self.c.drop(DropReason::Icmpv6Unhandled);
                }
            }
            _ => self.c.drop(DropReason::Icmpv6Unhandled),
        }
    }

    /// Record `ip` → `mac` on port `pi` (creating the entry only if
    /// `create`) and tell the control thread, as ARP learning does.
    fn learn6(&mut self, pi: usize, ip: Ipv6Addr, mac: MacAddr, create: bool, now: u64) {
        if !mac.is_unicast() || !self.ports[pi].on_link6(ip) {
            return;
        }
        let learned = self.neigh6.learn(pi as u8, ip, mac, now, create);
        if matches!(learned, Learned::New | Learned::Changed) {
            self.c.neigh_learned += 1;
        }
        if learned != Learned::Ignored {
            if let Some(link) = &self.link {
                let _ = link.events.push(CoreEvent::NeighLearned {
                    port: pi as u8,
                    ip: IpAddr::V6(ip),
                    mac,
                });
            }
        }
    }

    /// Send a neighbor solicitation for `target`: to its solicited-node
    /// group, or to `unicast` (a refresh of a known entry).
    fn send_ns(&mut self, pi: usize, target: Ipv6Addr, unicast: Option<MacAddr>) -> bool {
        let Some(src) = self.ports.get(pi).and_then(|p| p.source6_for(target)) else {
            return false;
        };
        let our_mac = self.ports[pi].mac;
        let Some(mut f) = self.ports[pi].q.alloc() else {
            self.c.drop(DropReason::NoBuffer);
            return false;
        };
        let l3 = EthernetFrame::<&[u8]>::HEADER_LEN;
        if !f.set_len(l3 + 40 + 32) {
            self.c.drop(DropReason::NoBuffer);
            return false;
        }
        let (dst, dst_mac) = match unicast {
            Some(m) => (target, m),
            None => {
                let g = qsplice_wire::ipv6::solicited_node(target);
                (g, qsplice_wire::ipv6::multicast_mac(g))
            }
        };
        let data = f.data_mut();
        data.fill(0);
        {
            let mut eth = EthernetFrame::new_unchecked(&mut *data);
            eth.set_dst(dst_mac);
            eth.set_src(our_mac);
            eth.set_ethertype(ethertype::IPV6);
        }
        {
            let mut ip = Ipv6Packet::new_unchecked(&mut data[l3..]);
            ip.set_version_tc_flow(0, 0);
            ip.set_payload_len(32);
            ip.set_next_header(qsplice_wire::ipv6::next_header::ICMPV6);
            ip.set_hop_limit(255);
            ip.set_src_addr(src);
            ip.set_dst_addr(dst);
        }
        let msg = &mut data[l3 + 40..l3 + 72];
        msg[0] = qsplice_wire::icmpv6::kind::NEIGHBOR_SOLICIT;
        msg[8..24].copy_from_slice(&target.octets());
        msg[24] = qsplice_wire::icmpv6::nd_option::SOURCE_LL;
        msg[25] = 1;
        msg[26..32].copy_from_slice(&our_mac.0);
        Icmpv6Packet::new_unchecked(msg).fill_checksum(src, dst);
        self.send(pi, f);
        true
    }

    /// Send an unsolicited neighbor advertisement of `target` to `to`.
    fn send_na(&mut self, pi: usize, target: Ipv6Addr, to: Ipv6Addr, flags: u8) -> bool {
        let our_mac = self.ports[pi].mac;
        let Some(mut f) = self.ports[pi].q.alloc() else {
            self.c.drop(DropReason::NoBuffer);
            return false;
        };
        let l3 = EthernetFrame::<&[u8]>::HEADER_LEN;
        if !f.set_len(l3 + 40 + 32) {
            self.c.drop(DropReason::NoBuffer);
            return false;
        }
        let data = f.data_mut();
        data.fill(0);
        {
            let mut eth = EthernetFrame::new_unchecked(&mut *data);
            eth.set_dst(qsplice_wire::ipv6::multicast_mac(to));
            eth.set_src(our_mac);
            eth.set_ethertype(ethertype::IPV6);
        }
        write_na(&mut data[l3..], target, to, flags, our_mac);
        self.send(pi, f);
        true
    }

    fn send_arp(
        &mut self,
        pi: usize,
        op: u16,
        eth_dst: MacAddr,
        target_mac: MacAddr,
        sender_ip: Ipv4Addr,
        target_ip: Ipv4Addr,
    ) -> bool {
        let our_mac = self.ports[pi].mac;
        let Some(mut f) = self.ports[pi].q.alloc() else {
            self.c.drop(DropReason::NoBuffer);
            return false;
        };
        if !f.set_len(MIN_FRAME) {
            self.c.drop(DropReason::NoBuffer);
            return false;
        }
        let data = f.data_mut();
        data.fill(0);
        {
            let mut eth = EthernetFrame::new_unchecked(&mut *data);
            eth.set_dst(eth_dst);
            eth.set_src(our_mac);
            eth.set_ethertype(ethertype::ARP);
        }
        let repr = ArpRepr {
            op,
            sender_mac: our_mac,
            sender_ip,
            target_mac,
            target_ip,
        };
        repr.emit(&mut ArpPacket::new_unchecked(
            &mut data[EthernetFrame::<&[u8]>::HEADER_LEN..],
        ));
        self.send(pi, f);
        true
    }
}

#[cfg(test)]
mod idle_tests {
    use super::Idle;

    #[test]
    fn sleeps_only_after_the_spin_has_passed_without_traffic() {
        // No spin: the first empty poll sleeps.
        let mut i = Idle::new(true, 0, 0);
        assert!(i.sleep_after(false, 1));
        // A spin of 100 cycles: busy at 50, empty polls until 149 spin on.
        let mut i = Idle::new(true, 100, 0);
        assert!(!i.sleep_after(true, 50));
        assert!(!i.sleep_after(false, 60));
        assert!(!i.sleep_after(false, 149));
        assert!(i.sleep_after(false, 150));
        // Traffic again restarts the spin.
        assert!(!i.sleep_after(true, 200));
        assert!(!i.sleep_after(false, 250));
        assert!(i.sleep_after(false, 300));
        // Disabled: never.
        let mut i = Idle::new(false, 0, 0);
        assert!(!i.sleep_after(false, 1_000_000));
    }
}
