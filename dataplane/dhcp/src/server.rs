//! A sans-IO DHCPv4 server simulator (RFC 2131 §4.3, RFC 3046 §2.2).
//!
//! [`Server::handle`] takes one DHCP message with the facts of the frame it
//! came in ([`RequestMeta`]) and writes the reply, if any, into a caller's
//! buffer, returning where it must go ([`ReplyMeta`]).
//! [`Server::handle_frame`] does the same on whole Ethernet frames.
//!
//! # Model
//!
//! * One pool per subnet ([`PoolConfig`]). A relayed request (giaddr ≠ 0)
//!   is served from the pool whose subnet contains giaddr; otherwise from
//!   the pool whose subnet contains the receiving interface's address
//!   ([`RequestMeta::local_ip`]).
//! * Every address of every pool has a preallocated lease record; clients
//!   are identified by option 61 when present, else by `htype` + `chaddr`,
//!   and found through a preallocated open-addressing index. A client keeps
//!   its address while the record is not reused: a known client is offered
//!   its existing (bound, offered, released or expired) address again.
//! * Free addresses are handed out in FIFO order, so a released or expired
//!   address is reused as late as possible.
//! * Offers expire after `offer_timeout` and leases after the pool's lease
//!   time; declined addresses are quarantined. Expiry is driven by
//!   per-pool FIFO timer rings, processed (boundedly) on every call and by
//!   [`Server::tick`]: no scan of the lease table.
//! * Faults: a token-bucket rate limit, a drop probability (the request is
//!   lost before it is looked at) and a reply delay, drawn from a `SmallRng`
//!   seeded from the configuration: a run is reproducible.
//!
//! * Options are read after RFC 3396 concatenation: an option split into
//!   several instances is one value, so a split Option 82 is echoed whole
//!   (re-split into pieces of at most 255 bytes when longer); two message
//!   types (option 53 twice) are rejected as malformed.
//!
//! Every request that gets no reply is an `Err(`[`Reject`]`)` (counted in
//! [`ServerStats`]), except RELEASE and DECLINE, which never get one
//! (`Ok(None)`).

use core::fmt;
use core::hash::Hasher;
use core::net::Ipv4Addr;
use core::time::Duration;
use std::collections::BTreeMap;

use qsplice_wire::MacAddr;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::duration_to_ticks;
use crate::frame::{parse_frame, FrameError, FrameSpec};
use crate::ring::Ring;
use crate::wire::{
    self, AddrList, DhcpRepr, MessageType, OptionScratch, BOOTREPLY, BOOTREQUEST, CLIENT_PORT,
    SERVER_PORT,
};

/// One address pool: a subnet and the range of addresses handed out in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// The subnet's network address.
    pub network: Ipv4Addr,
    /// The subnet's prefix length (1–30 here: a pool needs host addresses).
    pub prefix_len: u8,
    /// First address handed out.
    pub range_start: Ipv4Addr,
    /// Last address handed out (inclusive).
    pub range_end: Ipv4Addr,
    /// Option 3.
    pub routers: AddrList,
    /// Option 6.
    pub dns_servers: AddrList,
    /// Lease time (option 51); T1 and T2 are 1/2 and 7/8 of it.
    pub lease_time: Duration,
}

/// What to do when a pool has no free address for a DISCOVER.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ExhaustionPolicy {
    /// Stay silent (the client retransmits and eventually fails).
    NoReply,
    /// Answer with a DHCPNAK.
    Nak,
}

/// Added reply delay.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DelayConfig {
    /// No delay.
    None,
    /// The same delay for every reply.
    Fixed(Duration),
    /// A delay drawn uniformly from `min..=max`.
    Uniform {
        /// Smallest delay.
        min: Duration,
        /// Largest delay.
        max: Duration,
    },
}

/// Token-bucket rate limit on received requests.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_sec: u64,
    /// Bucket size (requests accepted back to back after a quiet period).
    pub burst: u64,
}

/// Fault simulation.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// Probability (0.0–1.0) that a request is dropped unseen.
    pub drop_probability: f64,
    /// Delay added to every reply ([`ReplyMeta::delay`]).
    pub delay: DelayConfig,
    /// Rate limit, if any.
    pub rate_limit: Option<RateLimit>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            drop_probability: 0.0,
            delay: DelayConfig::None,
            rate_limit: None,
        }
    }
}

/// The server's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// Our address: source of replies and the server identifier (option 54).
    pub server_ip: Ipv4Addr,
    /// Our MAC address: source of reply frames.
    pub server_mac: MacAddr,
    /// The pools.
    pub pools: Vec<PoolConfig>,
    /// How long an offered address stays reserved for the client.
    pub offer_timeout: Duration,
    /// How long a declined address stays out of use.
    pub decline_quarantine: Duration,
    /// What to do when a pool is exhausted.
    pub exhaustion: ExhaustionPolicy,
    /// NAK requests for leases we know nothing about (INIT-REBOOT,
    /// RENEWING, REBINDING), instead of staying silent (RFC 2131 §4.3.2).
    pub authoritative: bool,
    /// Echo Option 82 in replies to relayed requests (RFC 3046 requires
    /// it; turn off only to test a tester's mismatch detection).
    pub echo_relay_agent_info: bool,
    /// Upper bound on the total number of addresses over all pools (the
    /// lease table is preallocated for all of them).
    pub max_leases: usize,
    /// Fault simulation.
    pub faults: FaultConfig,
    /// Seed of the fault simulation's random generator.
    pub seed: u64,
}

impl ServerConfig {
    /// A configuration with one pool and the defaults: offer timeout 30 s,
    /// quarantine 10 min, no reply on exhaustion, authoritative, Option 82
    /// echoed, at most 16M addresses, no faults, seed 1.
    pub fn new(server_ip: Ipv4Addr, server_mac: MacAddr, pool: PoolConfig) -> Self {
        ServerConfig {
            server_ip,
            server_mac,
            pools: vec![pool],
            offer_timeout: Duration::from_secs(30),
            decline_quarantine: Duration::from_secs(600),
            exhaustion: ExhaustionPolicy::NoReply,
            authoritative: true,
            echo_relay_agent_info: true,
            max_leases: 1 << 24,
            faults: FaultConfig::default(),
            seed: 1,
        }
    }
}

/// Why a [`ServerConfig`] was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// No pool.
    NoPools,
    /// A prefix length outside 1..=30.
    BadPrefix,
    /// A range end before its start.
    RangeReversed,
    /// A range that is not inside its subnet, or includes the network or
    /// broadcast address.
    RangeOutsideSubnet,
    /// Two pools with overlapping subnets.
    PoolsOverlap,
    /// More addresses than `max_leases`.
    TooManyAddresses,
    /// A drop probability outside 0.0..=1.0.
    BadProbability,
    /// A uniform delay with `min > max`.
    BadDelay,
    /// A rate limit of 0 per second or a burst of 0.
    BadRateLimit,
    /// A lease time of zero or above `u32::MAX` seconds.
    BadLeaseTime,
}

impl ConfigError {
    /// Stable `snake_case` name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            ConfigError::NoPools => "no_pools",
            ConfigError::BadPrefix => "bad_prefix",
            ConfigError::RangeReversed => "range_reversed",
            ConfigError::RangeOutsideSubnet => "range_outside_subnet",
            ConfigError::PoolsOverlap => "pools_overlap",
            ConfigError::TooManyAddresses => "too_many_addresses",
            ConfigError::BadProbability => "bad_probability",
            ConfigError::BadDelay => "bad_delay",
            ConfigError::BadRateLimit => "bad_rate_limit",
            ConfigError::BadLeaseTime => "bad_lease_time",
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for ConfigError {}

/// Why a request got no reply. [`Reject::as_str`] names are stable counter
/// names; [`Reject::index`] numbers all of them densely for counter tables.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reject {
    /// The frame is not a valid DHCP datagram ([`Server::handle_frame`]).
    Frame(FrameError),
    /// The DHCP message does not parse.
    Malformed(wire::Error),
    /// The frame went to the client port (68), not to us.
    NotToServerPort,
    /// `op` is not BOOTREQUEST.
    NotBootRequest,
    /// `htype`/`hlen` other than Ethernet/6.
    UnsupportedHardware,
    /// A server-to-client message type (OFFER, ACK, NAK).
    UnexpectedMessageType,
    /// No pool serves the request's subnet.
    NoPool,
    /// The pool has no free address (and the policy is no reply).
    PoolExhausted,
    /// A REQUEST in SELECTING state for another server's offer.
    OtherServer,
    /// A REQUEST whose fields match no RFC 2131 §4.3.2 state, or a DECLINE
    /// without requested address.
    BadRequestState,
    /// A lease we know nothing about, and we are not authoritative.
    UnknownLease,
    /// RELEASE or DECLINE with another server's identifier.
    WrongServerId,
    /// RELEASE of an address the client does not hold.
    ReleaseUnknown,
    /// DECLINE of an address the client was not given.
    DeclineUnknown,
    /// INFORM with ciaddr 0.
    InformWithoutCiaddr,
    /// Refused by the simulated rate limit.
    RateLimited,
    /// Dropped by the simulated loss.
    SimulatedDrop,
    /// The output buffer is too small for the reply.
    BufferTooSmall,
}

const OWN_REJECTS: [&str; 16] = [
    "not_to_server_port",
    "not_boot_request",
    "unsupported_hardware",
    "unexpected_message_type",
    "no_pool",
    "pool_exhausted",
    "other_server",
    "bad_request_state",
    "unknown_lease",
    "wrong_server_id",
    "release_unknown",
    "decline_unknown",
    "inform_without_ciaddr",
    "rate_limited",
    "simulated_drop",
    "reply_buffer_too_small",
];

impl Reject {
    /// Number of distinct counters ([`Reject::index`] is below this).
    pub const COUNT: usize = FrameError::ALL.len() + wire::Error::ALL.len() + OWN_REJECTS.len();

    /// Dense counter index.
    pub const fn index(&self) -> usize {
        const F: usize = FrameError::ALL.len();
        const M: usize = F + wire::Error::ALL.len();
        match self {
            Reject::Frame(e) => e.index(),
            Reject::Malformed(e) => F + e.index(),
            Reject::NotToServerPort => M,
            Reject::NotBootRequest => M + 1,
            Reject::UnsupportedHardware => M + 2,
            Reject::UnexpectedMessageType => M + 3,
            Reject::NoPool => M + 4,
            Reject::PoolExhausted => M + 5,
            Reject::OtherServer => M + 6,
            Reject::BadRequestState => M + 7,
            Reject::UnknownLease => M + 8,
            Reject::WrongServerId => M + 9,
            Reject::ReleaseUnknown => M + 10,
            Reject::DeclineUnknown => M + 11,
            Reject::InformWithoutCiaddr => M + 12,
            Reject::RateLimited => M + 13,
            Reject::SimulatedDrop => M + 14,
            Reject::BufferTooSmall => M + 15,
        }
    }

    /// The name of counter `index` (see [`Reject::index`]); `"unknown"` out
    /// of range.
    pub fn name_of_index(index: usize) -> &'static str {
        const F: usize = FrameError::ALL.len();
        const M: usize = F + wire::Error::ALL.len();
        if index < F {
            FrameError::ALL[index].as_str()
        } else if index < M {
            wire::Error::ALL[index - F].as_str()
        } else {
            OWN_REJECTS.get(index - M).copied().unwrap_or("unknown")
        }
    }

    /// Stable `snake_case` name.
    pub fn as_str(&self) -> &'static str {
        Self::name_of_index(self.index())
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Reject {}

/// The facts of the frame a request came in.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RequestMeta {
    /// Ethernet source (the client, or the relay).
    pub src_mac: MacAddr,
    /// IPv4 source.
    pub src_ip: Ipv4Addr,
    /// IPv4 destination (broadcast or us).
    pub dst_ip: Ipv4Addr,
    /// VLAN of the request; the reply uses the same.
    pub vlan: Option<u16>,
    /// Address of the interface the request arrived on: selects the pool of
    /// a request that was not relayed.
    pub local_ip: Ipv4Addr,
}

/// Where a reply goes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ReplyMeta {
    /// Bytes written: the DHCP message for [`Server::handle`], the whole
    /// frame for [`Server::handle_frame`].
    pub len: usize,
    /// Type of the reply.
    pub message_type: MessageType,
    /// Ethernet destination.
    pub dst_mac: MacAddr,
    /// IPv4 destination.
    pub dst_ip: Ipv4Addr,
    /// UDP destination port (67 to a relay, 68 to a client).
    pub dst_port: u16,
    /// IPv4 source (the server address).
    pub src_ip: Ipv4Addr,
    /// UDP source port (67).
    pub src_port: u16,
    /// VLAN to send on (the request's).
    pub vlan: Option<u16>,
    /// Simulated delay: send at `now + delay` ticks.
    pub delay: u64,
}

/// Server counters. Plain integers: read them between calls.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServerCounters {
    /// DHCP messages given to `handle` (directly, or by `handle_frame` once
    /// the frame parsed).
    pub received: u64,
    /// DISCOVERs processed.
    pub discover: u64,
    /// REQUESTs processed.
    pub request: u64,
    /// DECLINEs processed.
    pub decline: u64,
    /// RELEASEs processed.
    pub release: u64,
    /// INFORMs processed.
    pub inform: u64,
    /// Requests that came through a relay (giaddr ≠ 0).
    pub relayed: u64,
    /// OFFERs sent.
    pub offer_sent: u64,
    /// ACKs sent.
    pub ack_sent: u64,
    /// NAKs sent.
    pub nak_sent: u64,
    /// DISCOVERs that found the pool exhausted (whatever the policy).
    pub pool_exhausted: u64,
    /// Offers that expired unclaimed.
    pub offers_expired: u64,
    /// Leases that expired.
    pub leases_expired: u64,
    /// Replies given a non-zero simulated delay.
    pub delayed: u64,
}

/// Server statistics: counters and rejections by reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerStats {
    /// Counters.
    pub counters: ServerCounters,
    /// Rejections, indexed by [`Reject::index`].
    pub rejects: [u64; Reject::COUNT],
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            counters: ServerCounters::default(),
            rejects: [0; Reject::COUNT],
        }
    }
}

impl ServerStats {
    /// How many requests were rejected for `r`.
    pub fn rejected(&self, r: Reject) -> u64 {
        self.rejects[r.index()]
    }

    /// Total rejections.
    pub fn rejected_total(&self) -> u64 {
        self.rejects.iter().sum()
    }
}

/// A summary of a server run (JSON via serde).
#[derive(Clone, Debug, Serialize)]
pub struct ServerReport {
    /// Counters.
    pub counters: ServerCounters,
    /// Leases bound now.
    pub leases_bound: u64,
    /// Addresses offered (reserved) now.
    pub leases_offered: u64,
    /// Addresses in all pools.
    pub addresses: u64,
    /// Non-zero rejection counters by name.
    pub rejects: BTreeMap<&'static str, u64>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
enum State {
    #[default]
    Free,
    Offered,
    Bound,
    Released,
    Expired,
    Declined,
}

const IN_FREE: u8 = 1;
const IN_OFFERS: u8 = 2;
const IN_TIMERS: u8 = 4;
const IN_QUARANTINE: u8 = 8;

#[derive(Copy, Clone, Debug, Default)]
struct Lease {
    /// Client key; 0 = no client.
    key: u64,
    /// Deadline of the current state (offer, lease, quarantine), in ticks.
    expires: u64,
    state: State,
    /// Ring membership bits (`IN_*`).
    rings: u8,
}

#[derive(Debug)]
struct Pool {
    network: u32,
    mask: u32,
    start: u32,
    size: u32,
    /// Index of the first lease record of this pool.
    base: u32,
    lease_secs: u32,
    lease_ticks: u64,
    routers: AddrList,
    dns: AddrList,
    free: Ring<u32>,
    offers: Ring<(u64, u32)>,
    timers: Ring<(u64, u32)>,
    quarantine: Ring<(u64, u32)>,
}

impl Pool {
    fn contains_subnet(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask == self.network
    }

    fn lease_index(&self, a: Ipv4Addr) -> Option<u32> {
        let off = u32::from(a).wrapping_sub(self.start);
        (off < self.size).then_some(self.base + off)
    }
}

#[derive(Debug)]
struct Bucket {
    level: u64,
    cap: u64,
    cost: u64,
    per_tick_num: u64,
    last: u64,
}

/// Upper bound on expirations processed per pool and timer ring in one
/// `handle` call (bounded per-packet work); [`Server::tick`] has none.
const EXPIRE_BUDGET: usize = 32;

/// The DHCPv4 server simulator. See the [module documentation](self).
#[derive(Debug)]
pub struct Server {
    server_ip: Ipv4Addr,
    server_mac: MacAddr,
    offer_ticks: u64,
    quarantine_ticks: u64,
    exhaustion: ExhaustionPolicy,
    authoritative: bool,
    echo_82: bool,
    drop_p: f64,
    delay: (u64, u64),
    bucket: Option<Bucket>,
    pools: Vec<Pool>,
    leases: Vec<Lease>,
    index: Vec<u32>,
    index_mask: usize,
    state_counts: [u64; 6],
    rng: SmallRng,
    stats: ServerStats,
}

fn client_key(r: &DhcpRepr<'_>) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    match r.client_id {
        Some(id) => {
            h.write_u8(61);
            h.write(id);
        }
        None => {
            h.write_u8(r.htype);
            h.write(&r.chaddr[..usize::from(r.hlen.min(16))]);
        }
    }
    h.finish().max(1)
}

impl Server {
    /// Validates `cfg` and allocates every table. `hz` is the frequency of
    /// the tick counter passed as `now` to the other methods.
    pub fn new(cfg: &ServerConfig, hz: u64) -> Result<Server, ConfigError> {
        if cfg.pools.is_empty() {
            return Err(ConfigError::NoPools);
        }
        let f = &cfg.faults;
        if !(0.0..=1.0).contains(&f.drop_probability) {
            return Err(ConfigError::BadProbability);
        }
        let delay = match f.delay {
            DelayConfig::None => (0, 0),
            DelayConfig::Fixed(d) => (duration_to_ticks(d, hz), duration_to_ticks(d, hz)),
            DelayConfig::Uniform { min, max } => {
                if min > max {
                    return Err(ConfigError::BadDelay);
                }
                (duration_to_ticks(min, hz), duration_to_ticks(max, hz))
            }
        };
        let bucket = match f.rate_limit {
            None => None,
            Some(r) if r.per_sec == 0 || r.burst == 0 => return Err(ConfigError::BadRateLimit),
            Some(r) => Some(Bucket {
                // Units: one request costs `hz`; `per_sec` accrues per tick.
                level: r.burst.saturating_mul(hz),
                cap: r.burst.saturating_mul(hz),
                cost: hz,
                per_tick_num: r.per_sec,
                last: 0,
            }),
        };
        let mut pools = Vec::with_capacity(cfg.pools.len());
        let mut total: u64 = 0;
        for p in &cfg.pools {
            if !(1..=30).contains(&p.prefix_len) {
                return Err(ConfigError::BadPrefix);
            }
            let mask = u32::MAX << (32 - p.prefix_len);
            let network = u32::from(p.network) & mask;
            let (s, e) = (u32::from(p.range_start), u32::from(p.range_end));
            if e < s {
                return Err(ConfigError::RangeReversed);
            }
            let bcast = network | !mask;
            if s & mask != network || e & mask != network || s == network || e == bcast {
                return Err(ConfigError::RangeOutsideSubnet);
            }
            for q in &pools {
                let q: &Pool = q;
                let m = q.mask & mask;
                if q.network & m == network & m {
                    return Err(ConfigError::PoolsOverlap);
                }
            }
            let secs = p.lease_time.as_secs();
            if secs == 0 || secs > u64::from(u32::MAX) {
                return Err(ConfigError::BadLeaseTime);
            }
            let size = e - s + 1;
            let base = total;
            total += u64::from(size);
            if total > cfg.max_leases as u64 || total > u64::from(u32::MAX / 2) {
                return Err(ConfigError::TooManyAddresses);
            }
            let mut free = Ring::with_capacity(size as usize);
            for i in 0..size {
                free.push(base as u32 + i);
            }
            pools.push(Pool {
                network,
                mask,
                start: s,
                size,
                base: base as u32,
                lease_secs: secs as u32,
                lease_ticks: duration_to_ticks(p.lease_time, hz),
                routers: p.routers.clone(),
                dns: p.dns_servers.clone(),
                free,
                offers: Ring::with_capacity(size as usize),
                timers: Ring::with_capacity(size as usize),
                quarantine: Ring::with_capacity(size as usize),
            });
        }
        let mut leases = vec![Lease::default(); total as usize];
        for l in &mut leases {
            l.rings = IN_FREE;
        }
        let index_len = (total as usize * 2).next_power_of_two().max(16);
        let mut state_counts = [0u64; 6];
        state_counts[State::Free as usize] = total;
        Ok(Server {
            server_ip: cfg.server_ip,
            server_mac: cfg.server_mac,
            offer_ticks: duration_to_ticks(cfg.offer_timeout, hz).max(1),
            quarantine_ticks: duration_to_ticks(cfg.decline_quarantine, hz).max(1),
            exhaustion: cfg.exhaustion,
            authoritative: cfg.authoritative,
            echo_82: cfg.echo_relay_agent_info,
            drop_p: f.drop_probability,
            delay,
            bucket,
            pools,
            leases,
            index: vec![0; index_len],
            index_mask: index_len - 1,
            state_counts,
            rng: SmallRng::seed_from_u64(cfg.seed),
            stats: ServerStats::default(),
        })
    }

    /// Statistics so far.
    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }

    /// Bytes of the server's lease tables: one record per pool address and
    /// the client-key index.
    pub fn state_bytes(&self) -> usize {
        self.leases.capacity() * core::mem::size_of::<Lease>()
            + self.index.capacity() * core::mem::size_of::<u32>()
    }

    /// Leases bound now.
    pub fn leases_bound(&self) -> u64 {
        self.state_counts[State::Bound as usize]
    }

    /// Addresses reserved by an offer now.
    pub fn leases_offered(&self) -> u64 {
        self.state_counts[State::Offered as usize]
    }

    /// A summary (allocates; not for the per-packet path).
    pub fn report(&self) -> ServerReport {
        let mut rejects = BTreeMap::new();
        for (i, &n) in self.stats.rejects.iter().enumerate() {
            if n > 0 {
                rejects.insert(Reject::name_of_index(i), n);
            }
        }
        ServerReport {
            counters: self.stats.counters.clone(),
            leases_bound: self.leases_bound(),
            leases_offered: self.leases_offered(),
            addresses: self.leases.len() as u64,
            rejects,
        }
    }

    /// The address bound to, or offered to, the client identified by
    /// `client_id` (option 61 data) or else by Ethernet `mac`; `None` if the
    /// client has no record or its record is no longer offered or bound.
    pub fn lease_of(&self, client_id: Option<&[u8]>, mac: MacAddr) -> Option<Ipv4Addr> {
        let mut r = DhcpRepr::new(BOOTREQUEST, MessageType::Discover, 0, mac);
        r.client_id = client_id;
        let i = self.find(client_key(&r))?;
        let l = self.leases[i as usize];
        matches!(l.state, State::Offered | State::Bound).then(|| self.addr_of(i))
    }

    /// Runs all due expirations (offers, leases, quarantines). Call it when
    /// idle; `handle` also does a bounded amount of this work.
    pub fn tick(&mut self, now: u64) {
        self.expire(now, usize::MAX);
    }

    /// Handles a whole request frame and writes the whole reply frame
    /// (Ethernet, the request's VLAN, IPv4, UDP, checksums) into `out`.
    /// `local_ip` is the address of the receiving interface
    /// ([`RequestMeta::local_ip`]). [`ReplyMeta::len`] is the frame length.
    pub fn handle_frame(
        &mut self,
        now: u64,
        local_ip: Ipv4Addr,
        frame: &[u8],
        out: &mut [u8],
    ) -> Result<Option<ReplyMeta>, Reject> {
        let p = match parse_frame(frame) {
            Ok(p) => p,
            Err(e) => return Err(self.count(Reject::Frame(e))),
        };
        if p.meta.dst_port != SERVER_PORT {
            return Err(self.count(Reject::NotToServerPort));
        }
        let meta = RequestMeta {
            src_mac: p.meta.src_mac,
            src_ip: p.meta.src_ip,
            dst_ip: p.meta.dst_ip,
            vlan: p.meta.vlan,
            local_ip,
        };
        let mut spec = FrameSpec {
            src_mac: self.server_mac,
            dst_mac: MacAddr::BROADCAST,
            vlan: p.meta.vlan,
            src_ip: self.server_ip,
            dst_ip: Ipv4Addr::BROADCAST,
            src_port: SERVER_PORT,
            dst_port: CLIENT_PORT,
            ttl: 64,
            ident: 0,
        };
        let off = spec.dhcp_offset();
        let Some(dhcp_out) = out.get_mut(off..) else {
            return Err(self.count(Reject::BufferTooSmall));
        };
        let Some(mut reply) = self.handle(now, &meta, p.dhcp(frame), dhcp_out)? else {
            return Ok(None);
        };
        spec.dst_mac = reply.dst_mac;
        spec.dst_ip = reply.dst_ip;
        spec.dst_port = reply.dst_port;
        spec.ident = self.stats.counters.received as u16;
        match spec.emit(out, reply.len) {
            Ok(n) => {
                reply.len = n;
                Ok(Some(reply))
            }
            Err(_) => Err(self.count(Reject::BufferTooSmall)),
        }
    }

    fn count(&mut self, r: Reject) -> Reject {
        self.stats.rejects[r.index()] += 1;
        r
    }

    /// Handles one DHCP message (the UDP payload of a frame described by
    /// `meta`) received at `now` (ticks) and writes the reply's DHCP message
    /// into `out`. `Ok(None)`: handled, no reply is due (RELEASE,
    /// DECLINE). `Err`: no reply, counted under the reason.
    pub fn handle(
        &mut self,
        now: u64,
        meta: &RequestMeta,
        dhcp: &[u8],
        out: &mut [u8],
    ) -> Result<Option<ReplyMeta>, Reject> {
        self.stats.counters.received += 1;
        self.expire(now, EXPIRE_BUDGET);
        if !self.take_token(now) {
            return Err(self.count(Reject::RateLimited));
        }
        if self.drop_p > 0.0 && self.rng.random::<f64>() < self.drop_p {
            return Err(self.count(Reject::SimulatedDrop));
        }
        // Repeated options are joined here (RFC 3396); a single piece is
        // borrowed from `dhcp`. No allocation: the scratch is on the stack.
        let mut scratch = OptionScratch::new();
        let req = match DhcpRepr::parse(dhcp, &mut scratch) {
            Ok(r) => r,
            Err(e) => return Err(self.count(Reject::Malformed(e))),
        };
        match self.dispatch(now, meta, &req, out) {
            Ok(v) => Ok(v),
            Err(r) => Err(self.count(r)),
        }
    }

    fn take_token(&mut self, now: u64) -> bool {
        let Some(b) = self.bucket.as_mut() else {
            return true;
        };
        let elapsed = now.saturating_sub(b.last);
        b.last = b.last.max(now);
        b.level = b
            .level
            .saturating_add(elapsed.saturating_mul(b.per_tick_num))
            .min(b.cap);
        if b.level >= b.cost {
            b.level -= b.cost;
            true
        } else {
            false
        }
    }

    fn dispatch(
        &mut self,
        now: u64,
        meta: &RequestMeta,
        req: &DhcpRepr<'_>,
        out: &mut [u8],
    ) -> Result<Option<ReplyMeta>, Reject> {
        if req.op != BOOTREQUEST {
            return Err(Reject::NotBootRequest);
        }
        if req.htype != wire::HTYPE_ETHERNET || req.hlen != 6 {
            return Err(Reject::UnsupportedHardware);
        }
        if !req.giaddr.is_unspecified() {
            self.stats.counters.relayed += 1;
        }
        let key = client_key(req);
        match req.message_type {
            MessageType::Discover => {
                self.stats.counters.discover += 1;
                self.discover(now, meta, req, key, out)
            }
            MessageType::Request => {
                self.stats.counters.request += 1;
                self.request(now, meta, req, key, out)
            }
            MessageType::Decline => {
                self.stats.counters.decline += 1;
                self.decline(now, req, key).map(|_| None)
            }
            MessageType::Release => {
                self.stats.counters.release += 1;
                self.release(req, key).map(|_| None)
            }
            MessageType::Inform => {
                self.stats.counters.inform += 1;
                self.inform(meta, req, out).map(Some)
            }
            MessageType::Offer | MessageType::Ack | MessageType::Nak => {
                Err(Reject::UnexpectedMessageType)
            }
        }
    }

    fn select_pool(&self, meta: &RequestMeta, req: &DhcpRepr<'_>) -> Option<usize> {
        let a = if req.giaddr.is_unspecified() {
            meta.local_ip
        } else {
            req.giaddr
        };
        self.pools.iter().position(|p| p.contains_subnet(a))
    }

    fn pool_of_lease(&self, i: u32) -> usize {
        self.pools
            .iter()
            .position(|p| i >= p.base && i < p.base + p.size)
            .unwrap_or(0)
    }

    fn addr_of(&self, i: u32) -> Ipv4Addr {
        let p = &self.pools[self.pool_of_lease(i)];
        Ipv4Addr::from(p.start + (i - p.base))
    }

    /// The lease record of address `a`, if it is in a pool.
    fn lease_by_addr(&self, a: Ipv4Addr) -> Option<(usize, u32)> {
        self.pools
            .iter()
            .enumerate()
            .find_map(|(pi, p)| p.lease_index(a).map(|i| (pi, i)))
    }

    // ---- client index (open addressing, linear probing) ----

    fn find_slot(&self, key: u64) -> Option<usize> {
        let mut i = key as usize & self.index_mask;
        loop {
            let s = self.index[i];
            if s == 0 {
                return None;
            }
            if self.leases[s as usize - 1].key == key {
                return Some(i);
            }
            i = (i + 1) & self.index_mask;
        }
    }

    fn find(&self, key: u64) -> Option<u32> {
        self.find_slot(key).map(|s| self.index[s] - 1)
    }

    fn set_key(&mut self, i: u32, key: u64) {
        self.clear_key(i);
        if let Some(old) = self.find(key) {
            // The client moves to another address: forget the old one.
            self.abandon(old);
        }
        self.leases[i as usize].key = key;
        let mut s = key as usize & self.index_mask;
        while self.index[s] != 0 {
            s = (s + 1) & self.index_mask;
        }
        self.index[s] = i + 1;
    }

    fn clear_key(&mut self, i: u32) {
        let key = self.leases[i as usize].key;
        if key == 0 {
            return;
        }
        if let Some(mut hole) = self.find_slot(key) {
            // Backward-shift deletion.
            let mut j = hole;
            loop {
                j = (j + 1) & self.index_mask;
                let s = self.index[j];
                if s == 0 {
                    break;
                }
                let home = self.leases[s as usize - 1].key as usize & self.index_mask;
                let between = if hole <= j {
                    hole < home && home <= j
                } else {
                    hole < home || home <= j
                };
                if !between {
                    self.index[hole] = s;
                    hole = j;
                }
            }
            self.index[hole] = 0;
        }
        self.leases[i as usize].key = 0;
    }

    /// Forgets the client of record `i` and makes the address free.
    fn abandon(&mut self, i: u32) {
        self.clear_key(i);
        let st = self.leases[i as usize].state;
        if matches!(st, State::Offered | State::Bound) {
            self.set_state(i, State::Expired);
        }
        self.push_free(i);
    }

    fn set_state(&mut self, i: u32, s: State) {
        let l = &mut self.leases[i as usize];
        self.state_counts[l.state as usize] -= 1;
        self.state_counts[s as usize] += 1;
        l.state = s;
    }

    fn push_free(&mut self, i: u32) {
        let l = &mut self.leases[i as usize];
        if l.rings & IN_FREE == 0 {
            l.rings |= IN_FREE;
            let p = self.pool_of_lease(i);
            self.pools[p].free.push(i);
        }
    }

    fn push_offer(&mut self, i: u32) {
        let l = &mut self.leases[i as usize];
        if l.rings & IN_OFFERS == 0 {
            l.rings |= IN_OFFERS;
            let e = l.expires;
            let p = self.pool_of_lease(i);
            self.pools[p].offers.push((e, i));
        }
    }

    fn push_quarantine(&mut self, i: u32) {
        let l = &mut self.leases[i as usize];
        if l.rings & IN_QUARANTINE == 0 {
            l.rings |= IN_QUARANTINE;
            let e = l.expires;
            let p = self.pool_of_lease(i);
            self.pools[p].quarantine.push((e, i));
        }
    }

    fn push_timer(&mut self, i: u32) {
        let l = &mut self.leases[i as usize];
        if l.rings & IN_TIMERS == 0 {
            l.rings |= IN_TIMERS;
            let e = l.expires;
            let p = self.pool_of_lease(i);
            self.pools[p].timers.push((e, i));
        }
    }

    /// Takes a free address from pool `p`.
    fn alloc(&mut self, p: usize) -> Option<u32> {
        while let Some(i) = self.pools[p].free.pop() {
            let l = &mut self.leases[i as usize];
            l.rings &= !IN_FREE;
            if matches!(l.state, State::Free | State::Released | State::Expired) {
                self.clear_key(i);
                return Some(i);
            }
        }
        None
    }

    fn expire(&mut self, now: u64, budget: usize) {
        for p in 0..self.pools.len() {
            let mut n = 0;
            while n < budget {
                let Some((t, i)) = self.pools[p].offers.front() else {
                    break;
                };
                if t > now {
                    break;
                }
                self.pools[p].offers.pop();
                n += 1;
                let l = &mut self.leases[i as usize];
                l.rings &= !IN_OFFERS;
                if l.state != State::Offered {
                    continue;
                }
                if l.expires <= now {
                    self.set_state(i, State::Expired);
                    self.stats.counters.offers_expired += 1;
                    self.push_free(i);
                } else {
                    self.push_offer(i);
                }
            }
            let mut n = 0;
            while n < budget {
                let Some((t, i)) = self.pools[p].timers.front() else {
                    break;
                };
                if t > now {
                    break;
                }
                self.pools[p].timers.pop();
                n += 1;
                let l = &mut self.leases[i as usize];
                l.rings &= !IN_TIMERS;
                if l.state != State::Bound {
                    continue;
                }
                if l.expires <= now {
                    self.set_state(i, State::Expired);
                    self.stats.counters.leases_expired += 1;
                    self.push_free(i);
                } else {
                    self.push_timer(i);
                }
            }
            let mut n = 0;
            while n < budget {
                let Some((t, i)) = self.pools[p].quarantine.front() else {
                    break;
                };
                if t > now {
                    break;
                }
                self.pools[p].quarantine.pop();
                n += 1;
                let l = &mut self.leases[i as usize];
                l.rings &= !IN_QUARANTINE;
                if l.state != State::Declined {
                    continue;
                }
                if l.expires <= now {
                    self.set_state(i, State::Free);
                    self.push_free(i);
                } else {
                    self.push_quarantine(i);
                }
            }
        }
    }

    fn discover(
        &mut self,
        now: u64,
        meta: &RequestMeta,
        req: &DhcpRepr<'_>,
        key: u64,
        out: &mut [u8],
    ) -> Result<Option<ReplyMeta>, Reject> {
        let p = self.select_pool(meta, req).ok_or(Reject::NoPool)?;
        let mut chosen = None;
        if let Some(i) = self.find(key) {
            if self.pool_of_lease(i) == p && self.leases[i as usize].state != State::Declined {
                chosen = Some(i);
            } else {
                self.abandon(i);
            }
        }
        if chosen.is_none() {
            if let Some(want) = req.requested_ip {
                if let Some(i) = self.pools[p].lease_index(want) {
                    let l = self.leases[i as usize];
                    if l.key == 0 && l.state == State::Free {
                        chosen = Some(i);
                    }
                }
            }
        }
        if chosen.is_none() {
            chosen = self.alloc(p);
        }
        let Some(i) = chosen else {
            self.stats.counters.pool_exhausted += 1;
            return match self.exhaustion {
                ExhaustionPolicy::NoReply => Err(Reject::PoolExhausted),
                ExhaustionPolicy::Nak => self.reply_nak(meta, req, out).map(Some),
            };
        };
        if self.leases[i as usize].key != key {
            self.set_key(i, key);
        }
        if self.leases[i as usize].state != State::Bound {
            self.set_state(i, State::Offered);
            self.leases[i as usize].expires = now.saturating_add(self.offer_ticks);
            self.push_offer(i);
        }
        let yi = self.addr_of(i);
        self.reply_lease(MessageType::Offer, p, yi, meta, req, out)
            .map(Some)
    }

    fn request(
        &mut self,
        now: u64,
        meta: &RequestMeta,
        req: &DhcpRepr<'_>,
        key: u64,
        out: &mut [u8],
    ) -> Result<Option<ReplyMeta>, Reject> {
        let ci = req.ciaddr;
        match (req.server_id, req.requested_ip) {
            // SELECTING.
            (Some(sid), Some(want)) if ci.is_unspecified() => {
                if sid != self.server_ip {
                    if let Some(i) = self.find(key) {
                        if self.leases[i as usize].state == State::Offered {
                            // The client took another server's offer.
                            self.abandon(i);
                        }
                    }
                    return Err(Reject::OtherServer);
                }
                match self.find(key) {
                    Some(i)
                        if self.addr_of(i) == want
                            && self.leases[i as usize].state != State::Declined =>
                    {
                        self.bind(now, meta, req, i, out)
                    }
                    _ => self.reply_nak(meta, req, out).map(Some),
                }
            }
            // INIT-REBOOT.
            (None, Some(want)) if ci.is_unspecified() => {
                let Some(p) = self.select_pool(meta, req) else {
                    return Err(Reject::NoPool);
                };
                if !self.pools[p].contains_subnet(want) {
                    return self.reply_nak(meta, req, out).map(Some);
                }
                match self.find(key) {
                    Some(i) if self.addr_of(i) == want => self.bind(now, meta, req, i, out),
                    Some(_) => self.reply_nak(meta, req, out).map(Some),
                    None if self.authoritative => self.reply_nak(meta, req, out).map(Some),
                    None => Err(Reject::UnknownLease),
                }
            }
            // RENEWING (unicast) or REBINDING (broadcast).
            (None, None) if !ci.is_unspecified() => match self.lease_by_addr(ci) {
                Some((_, i)) if self.leases[i as usize].key == key => {
                    self.bind(now, meta, req, i, out)
                }
                Some((_, i)) if self.leases[i as usize].key != 0 => {
                    self.reply_nak(meta, req, out).map(Some)
                }
                _ if self.authoritative => self.reply_nak(meta, req, out).map(Some),
                _ => Err(Reject::UnknownLease),
            },
            _ => Err(Reject::BadRequestState),
        }
    }

    fn bind(
        &mut self,
        now: u64,
        meta: &RequestMeta,
        req: &DhcpRepr<'_>,
        i: u32,
        out: &mut [u8],
    ) -> Result<Option<ReplyMeta>, Reject> {
        let p = self.pool_of_lease(i);
        if self.leases[i as usize].state != State::Bound {
            self.set_state(i, State::Bound);
        }
        self.leases[i as usize].expires = now.saturating_add(self.pools[p].lease_ticks);
        self.push_timer(i);
        let yi = self.addr_of(i);
        self.reply_lease(MessageType::Ack, p, yi, meta, req, out)
            .map(Some)
    }

    fn decline(&mut self, now: u64, req: &DhcpRepr<'_>, key: u64) -> Result<(), Reject> {
        if req.server_id.is_some_and(|s| s != self.server_ip) {
            return Err(Reject::WrongServerId);
        }
        let want = req.requested_ip.ok_or(Reject::BadRequestState)?;
        match self.lease_by_addr(want) {
            Some((_, i)) if self.leases[i as usize].key == key => {
                self.clear_key(i);
                self.set_state(i, State::Declined);
                self.leases[i as usize].expires = now.saturating_add(self.quarantine_ticks);
                self.push_quarantine(i);
                Ok(())
            }
            _ => Err(Reject::DeclineUnknown),
        }
    }

    fn release(&mut self, req: &DhcpRepr<'_>, key: u64) -> Result<(), Reject> {
        if req.server_id.is_some_and(|s| s != self.server_ip) {
            return Err(Reject::WrongServerId);
        }
        match self.lease_by_addr(req.ciaddr) {
            Some((_, i))
                if self.leases[i as usize].key == key
                    && matches!(self.leases[i as usize].state, State::Bound | State::Offered) =>
            {
                self.set_state(i, State::Released);
                self.push_free(i);
                Ok(())
            }
            _ => Err(Reject::ReleaseUnknown),
        }
    }

    fn inform(
        &mut self,
        meta: &RequestMeta,
        req: &DhcpRepr<'_>,
        out: &mut [u8],
    ) -> Result<ReplyMeta, Reject> {
        if req.ciaddr.is_unspecified() {
            return Err(Reject::InformWithoutCiaddr);
        }
        let p = self
            .pools
            .iter()
            .position(|p| p.contains_subnet(req.ciaddr))
            .or_else(|| self.select_pool(meta, req))
            .ok_or(Reject::NoPool)?;
        self.reply_lease(MessageType::Ack, p, Ipv4Addr::UNSPECIFIED, meta, req, out)
    }

    /// The reply skeleton shared by OFFER, ACK and NAK (RFC 2131 table 3).
    fn reply_base<'r>(&self, req: &DhcpRepr<'r>, mt: MessageType) -> DhcpRepr<'r> {
        let mut r = DhcpRepr::new(BOOTREPLY, mt, req.xid, MacAddr::ZERO);
        r.htype = req.htype;
        r.hlen = req.hlen;
        r.chaddr = req.chaddr;
        r.broadcast = req.broadcast;
        r.giaddr = req.giaddr;
        r.server_id = Some(self.server_ip);
        if !req.giaddr.is_unspecified() && self.echo_82 {
            r.relay_agent_info = req.relay_agent_info;
        }
        r
    }

    fn reply_lease(
        &mut self,
        mt: MessageType,
        p: usize,
        yiaddr: Ipv4Addr,
        meta: &RequestMeta,
        req: &DhcpRepr<'_>,
        out: &mut [u8],
    ) -> Result<ReplyMeta, Reject> {
        let pool = &self.pools[p];
        let mut r = self.reply_base(req, mt);
        r.yiaddr = yiaddr;
        if req.message_type != MessageType::Discover {
            r.ciaddr = req.ciaddr;
        }
        if req.message_type != MessageType::Inform {
            let l = pool.lease_secs;
            r.lease_time = Some(l);
            r.renewal_time = Some(l / 2);
            r.rebinding_time = Some((u64::from(l) * 7 / 8) as u32);
        }
        r.subnet_mask = Some(Ipv4Addr::from(pool.mask));
        r.routers = pool.routers.clone();
        r.dns_servers = pool.dns.clone();
        self.finish(meta, req, &r, out)
    }

    fn reply_nak(
        &mut self,
        meta: &RequestMeta,
        req: &DhcpRepr<'_>,
        out: &mut [u8],
    ) -> Result<ReplyMeta, Reject> {
        let mut r = self.reply_base(req, MessageType::Nak);
        if !req.giaddr.is_unspecified() {
            // RFC 2131 §4.3.2: a NAK through a relay asks it to broadcast.
            r.broadcast = true;
        }
        r.client_id = req.client_id;
        self.finish(meta, req, &r, out)
    }

    /// Emits `r` and works out its destination (RFC 2131 §4.1).
    fn finish(
        &mut self,
        meta: &RequestMeta,
        req: &DhcpRepr<'_>,
        r: &DhcpRepr<'_>,
        out: &mut [u8],
    ) -> Result<ReplyMeta, Reject> {
        let len = r.emit(out).map_err(|_| Reject::BufferTooSmall)?;
        let (dst_mac, dst_ip, dst_port) = if !req.giaddr.is_unspecified() {
            (meta.src_mac, req.giaddr, SERVER_PORT)
        } else if r.message_type == MessageType::Nak {
            (MacAddr::BROADCAST, Ipv4Addr::BROADCAST, CLIENT_PORT)
        } else if !req.ciaddr.is_unspecified() {
            (meta.src_mac, req.ciaddr, CLIENT_PORT)
        } else if req.broadcast {
            (MacAddr::BROADCAST, Ipv4Addr::BROADCAST, CLIENT_PORT)
        } else {
            (req.mac(), r.yiaddr, CLIENT_PORT)
        };
        let c = &mut self.stats.counters;
        match r.message_type {
            MessageType::Offer => c.offer_sent += 1,
            MessageType::Ack => c.ack_sent += 1,
            _ => c.nak_sent += 1,
        }
        let delay = if self.delay.1 == 0 {
            0
        } else if self.delay.0 == self.delay.1 {
            self.delay.0
        } else {
            self.rng.random_range(self.delay.0..=self.delay.1)
        };
        if delay > 0 {
            c.delayed += 1;
        }
        Ok(ReplyMeta {
            len,
            message_type: r.message_type,
            dst_mac,
            dst_ip,
            dst_port,
            src_ip: self.server_ip,
            src_port: SERVER_PORT,
            vlan: meta.vlan,
            delay,
        })
    }
}
