//! The DHCP load tester's virtual clients (RFC 2131 §4.4), sans IO.
//!
//! A [`Tester`] drives `clients` virtual clients, each through
//! INIT → SELECTING (DISCOVER) → REQUESTING (REQUEST) → BOUND → optionally
//! RENEWING (unicast REQUEST to the server identifier) → optionally RELEASE
//! → done, or failed with a [`FailReason`].
//!
//! * Client `i` has MAC `base_mac + i` (the 48-bit address read as an
//!   integer) and, if enabled, client identifier `01:<mac>` (option 61):
//!   distinct and deterministic, and a reply's `chaddr` maps back to its
//!   client in O(1).
//! * Retransmission (RFC 2131 §4.1): the n-th retransmission waits
//!   `min(initial × multiplier^n, max)` ± `jitter_pct`%, with separate retry
//!   limits for DISCOVER and REQUEST. A NAK sends the client back to INIT
//!   (up to `max_naks` times).
//! * Relay mode (RFC 3046): frames are sent as a relay agent would forward
//!   them (giaddr, hops + 1, Option 82 from templates, unicast to the
//!   server); replies must echo Option 82 unchanged (mismatches counted),
//!   compared after RFC 3396 concatenation of a reply's Option 82 pieces.
//! * Load shape: at most `concurrency` clients in flight, started at a paced
//!   rate (GCRA, bursts of at most `burst`) or as fast as possible.
//! * Time is a tick counter (e.g. the TSC) at `hz` passed in; timers live in
//!   a hashed timer wheel with intrusive links in the client records (O(1)
//!   arm and cancel; `poll` visits only due slots), so a million clients
//!   cost no per-poll scan. All memory is allocated by [`Tester::new`]
//!   (about 64 bytes per client).
//!
//! The caller's loop: receive frames and give each to [`Tester::on_reply`];
//! call [`Tester::poll`] with a [`TxBatch`] and send what it holds.

use core::fmt;
use core::net::Ipv4Addr;
use core::time::Duration;
use std::collections::BTreeMap;

use qsplice_wire::MacAddr;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::frame::{parse_frame, FrameError, FrameSpec};
use crate::stats::{Latency, TesterCounters, TesterReport, RETRY_BUCKETS};
use crate::wire::{
    self, DhcpRepr, MessageType, OptionScratch, RelayAgentInfo, BOOTREPLY, BOOTREQUEST,
    CLIENT_PORT, HTYPE_ETHERNET, SERVER_PORT,
};
use crate::{duration_to_ticks, ticks_to_ns};

/// The largest frame the tester emits; [`TxBatch`] buffers have this size.
pub const MAX_FRAME_LEN: usize = 1024;

/// Longest rendered circuit-id / remote-id (longer renderings are cut).
pub const MAX_AGENT_ID_LEN: usize = 120;

/// Parameter request list sent by the virtual clients: mask, router, DNS,
/// lease time, server id, T1, T2.
pub const PARAMETER_REQUEST_LIST: [u8; 7] = [1, 3, 6, 51, 54, 58, 59];

/// RFC 2131 §4.1 retransmission.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RetransmitConfig {
    /// Wait before the first retransmission (RFC: 4 s).
    pub initial: Duration,
    /// Factor applied to the wait after each retransmission (RFC: 2).
    pub multiplier: u32,
    /// Largest wait (RFC: 64 s).
    pub max: Duration,
    /// Randomisation of each wait, ± this percentage (0–100).
    pub jitter_pct: u8,
    /// Retransmissions of a DISCOVER before the client fails.
    pub discover_retries: u8,
    /// Retransmissions of a REQUEST (selecting or renewing) before the
    /// client fails.
    pub request_retries: u8,
}

impl Default for RetransmitConfig {
    fn default() -> Self {
        RetransmitConfig {
            initial: Duration::from_secs(4),
            multiplier: 2,
            max: Duration::from_secs(64),
            jitter_pct: 25,
            discover_retries: 4,
            request_retries: 4,
        }
    }
}

/// Relay-agent mode (RFC 3046): the tester sends as a relay agent would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayConfig {
    /// The relay's address: giaddr and the IPv4 source of relayed frames.
    pub giaddr: Ipv4Addr,
    /// The relay's MAC: Ethernet source of relayed frames.
    pub relay_mac: MacAddr,
    /// The server's address (relayed frames are unicast to it).
    pub server_ip: Ipv4Addr,
    /// The server's (or next hop's) MAC.
    pub server_mac: MacAddr,
    /// Hops already on the client's message; the relay sends `hops + 1`.
    pub hops: u8,
    /// A relay refuses a message with `hops ≥ max_hops` (RFC 1542 §4.1.1
    /// suggests 16 at most).
    pub max_hops: u8,
    /// Circuit-id template (`{index}` becomes the client index); empty =
    /// no sub-option 1.
    pub circuit_id: String,
    /// Remote-id template; empty = no sub-option 2.
    pub remote_id: String,
}

/// How fast new clients start.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Pacing {
    /// As fast as `poll` is called and concurrency allows.
    Unlimited,
    /// `per_sec` new clients per second, at most `burst` back to back.
    Rate {
        /// New clients per second.
        per_sec: u64,
        /// Largest burst (≥ 1).
        burst: u32,
    },
}

/// The tester's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TesterConfig {
    /// Number of virtual clients.
    pub clients: u32,
    /// Clients in flight at most.
    pub concurrency: u32,
    /// Start rate.
    pub pacing: Pacing,
    /// MAC of client 0; client `i` has `base_mac + i`.
    pub base_mac: MacAddr,
    /// 802.1Q VID of sent frames.
    pub vlan: Option<u16>,
    /// Set the broadcast flag in DISCOVER and REQUEST.
    pub broadcast_flag: bool,
    /// Send a client identifier (option 61, type 1 + MAC).
    pub send_client_id: bool,
    /// Relay-agent mode.
    pub relay: Option<RelayConfig>,
    /// Retransmission.
    pub retransmit: RetransmitConfig,
    /// NAKs a client accepts (restarting from INIT each time) before it
    /// fails.
    pub max_naks: u8,
    /// Renew this long after BOUND (unicast REQUEST to the server).
    pub renew_after: Option<Duration>,
    /// Send a RELEASE at the end.
    pub release: bool,
    /// Ethernet destination of unicast renew/release frames. If `None`: the
    /// relay's `server_mac` in relay mode, else learned from the source of
    /// the first valid reply (broadcast until then).
    pub server_mac: Option<MacAddr>,
    /// Seed of the jitter and xid generator.
    pub seed: u64,
}

impl TesterConfig {
    /// `clients` clients with the defaults: concurrency = clients,
    /// unlimited pacing, base MAC `02:00:00:00:00:00`, no VLAN, broadcast
    /// flag set, client id sent, direct mode, RFC retransmission, 3 NAKs, no
    /// renew, no release, seed 1.
    pub fn new(clients: u32) -> Self {
        TesterConfig {
            clients,
            concurrency: clients.max(1),
            pacing: Pacing::Unlimited,
            base_mac: MacAddr([0x02, 0, 0, 0, 0, 0]),
            vlan: None,
            broadcast_flag: true,
            send_client_id: true,
            relay: None,
            retransmit: RetransmitConfig::default(),
            max_naks: 3,
            renew_after: None,
            release: false,
            server_mac: None,
            seed: 1,
        }
    }
}

/// Why a [`TesterConfig`] was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `concurrency` is 0.
    ZeroConcurrency,
    /// A rate of 0 per second or a burst of 0.
    BadRate,
    /// `multiplier` 0, `initial` 0 or `max < initial`.
    BadRetransmit,
    /// `jitter_pct` above 100.
    BadJitter,
    /// Relay mode with `hops ≥ max_hops`: the relay would refuse to relay.
    HopsExceeded,
    /// The client MACs `base_mac .. base_mac + clients` wrap around 2^48.
    MacRangeOverflow,
}

impl ConfigError {
    /// Stable `snake_case` name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            ConfigError::ZeroConcurrency => "zero_concurrency",
            ConfigError::BadRate => "bad_rate",
            ConfigError::BadRetransmit => "bad_retransmit",
            ConfigError::BadJitter => "bad_jitter",
            ConfigError::HopsExceeded => "hops_exceeded",
            ConfigError::MacRangeOverflow => "mac_range_overflow",
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for ConfigError {}

/// Why a client failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum FailReason {
    /// No OFFER after all DISCOVER retransmissions.
    DiscoverTimeout,
    /// No ACK/NAK after all REQUEST retransmissions.
    RequestTimeout,
    /// No ACK/NAK to the renewal after all retransmissions.
    RenewTimeout,
    /// More NAKs than `max_naks`.
    TooManyNaks,
    /// A message could not be built (frame larger than [`MAX_FRAME_LEN`]).
    EmitFailed,
}

impl FailReason {
    /// All variants in order.
    pub const ALL: [FailReason; 5] = [
        FailReason::DiscoverTimeout,
        FailReason::RequestTimeout,
        FailReason::RenewTimeout,
        FailReason::TooManyNaks,
        FailReason::EmitFailed,
    ];

    /// Stable `snake_case` name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            FailReason::DiscoverTimeout => "discover_timeout",
            FailReason::RequestTimeout => "request_timeout",
            FailReason::RenewTimeout => "renew_timeout",
            FailReason::TooManyNaks => "too_many_naks",
            FailReason::EmitFailed => "emit_failed",
        }
    }
}

/// Why a received frame was not accepted as a reply.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReplyError {
    /// Not a valid DHCP datagram.
    Frame(FrameError),
    /// The DHCP message does not parse (short, cookie, option bounds …).
    Malformed(wire::Error),
    /// Not to our port (68, or 67 in relay mode).
    WrongPort,
    /// `op` is not BOOTREPLY.
    NotBootReply,
    /// `chaddr` is not one of our clients (or not Ethernet/6).
    UnknownClient,
    /// `xid` is not the client's current transaction.
    XidMismatch,
    /// A message type the client does not expect in its state (late or
    /// duplicate OFFER, ACK while selecting, client-side types).
    Unexpected,
    /// An OFFER or ACK without server identifier.
    MissingServerId,
    /// An OFFER or ACK with yiaddr 0, or an ACK for another address than
    /// the one requested.
    BadYiaddr,
}

const OWN_REPLY_ERRORS: [&str; 7] = [
    "wrong_port",
    "not_boot_reply",
    "unknown_client",
    "xid_mismatch",
    "unexpected_reply",
    "missing_server_id",
    "bad_yiaddr",
];

impl ReplyError {
    /// Number of distinct counters.
    pub const COUNT: usize =
        FrameError::ALL.len() + wire::Error::ALL.len() + OWN_REPLY_ERRORS.len();

    /// Dense counter index (below [`ReplyError::COUNT`]).
    pub const fn index(&self) -> usize {
        const F: usize = FrameError::ALL.len();
        const M: usize = F + wire::Error::ALL.len();
        match self {
            ReplyError::Frame(e) => e.index(),
            ReplyError::Malformed(e) => F + e.index(),
            ReplyError::WrongPort => M,
            ReplyError::NotBootReply => M + 1,
            ReplyError::UnknownClient => M + 2,
            ReplyError::XidMismatch => M + 3,
            ReplyError::Unexpected => M + 4,
            ReplyError::MissingServerId => M + 5,
            ReplyError::BadYiaddr => M + 6,
        }
    }

    /// Name of counter `index`; `"unknown"` out of range.
    pub fn name_of_index(index: usize) -> &'static str {
        const F: usize = FrameError::ALL.len();
        const M: usize = F + wire::Error::ALL.len();
        if index < F {
            FrameError::ALL[index].as_str()
        } else if index < M {
            wire::Error::ALL[index - F].as_str()
        } else {
            OWN_REPLY_ERRORS
                .get(index - M)
                .copied()
                .unwrap_or("unknown")
        }
    }

    /// Stable `snake_case` name.
    pub fn as_str(&self) -> &'static str {
        Self::name_of_index(self.index())
    }
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for ReplyError {}

/// What an accepted reply did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReplyEvent {
    /// Client `0` accepted an OFFER of the address; a REQUEST is due.
    Offer(u32, Ipv4Addr),
    /// Client `0` is bound to the address (or renewed it).
    Ack(u32, Ipv4Addr),
    /// Client `0` got a NAK (and restarted, or failed).
    Nak(u32),
}

/// Where a client is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Phase {
    /// Not started yet.
    #[default]
    Idle,
    /// DISCOVER sent, waiting for an OFFER.
    Selecting,
    /// REQUEST sent (or due), waiting for an ACK.
    Requesting,
    /// Bound, waiting to renew.
    Bound,
    /// Renewal REQUEST sent (or due).
    Renewing,
    /// RELEASE due.
    Releasing,
    /// Finished successfully.
    Done,
    /// Failed.
    Failed,
}

/// Fixed-capacity batch of frames to send, allocated once.
#[derive(Debug, Clone)]
pub struct TxBatch {
    bufs: Vec<[u8; MAX_FRAME_LEN]>,
    lens: Vec<usize>,
}

impl TxBatch {
    /// A batch of up to `capacity` frames (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        TxBatch {
            bufs: vec![[0u8; MAX_FRAME_LEN]; capacity],
            lens: Vec::with_capacity(capacity),
        }
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// Whether no frame is held.
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Whether no more frames fit.
    pub fn is_full(&self) -> bool {
        self.lens.len() == self.bufs.len()
    }

    /// Forgets the frames (keeps the buffers).
    pub fn clear(&mut self) {
        self.lens.clear()
    }

    /// Frame `i`, if held.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let n = *self.lens.get(i)?;
        self.bufs.get(i).map(|b| &b[..n])
    }

    /// The frames in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.lens.iter().zip(&self.bufs).map(|(&n, b)| &b[..n])
    }

    pub(crate) fn next_buf(&mut self) -> Option<&mut [u8; MAX_FRAME_LEN]> {
        let i = self.lens.len();
        self.bufs.get_mut(i)
    }

    pub(crate) fn commit(&mut self, len: usize) {
        if self.lens.len() < self.bufs.len() {
            self.lens.push(len)
        }
    }
}

const NONE: u32 = u32::MAX;
const WHEEL_SLOTS: usize = 1 << 16;
const WHEEL_MASK: u64 = WHEEL_SLOTS as u64 - 1;

/// `flags` bits.
const ARMED: u8 = 1;
/// The timer means "send the first message of the phase", not "timeout".
const SEND_DUE: u8 = 2;

/// Per-client state, kept small (≤ 64 bytes).
#[derive(Copy, Clone, Debug)]
struct Client {
    /// Timer deadline (ticks).
    deadline: u64,
    /// First DISCOVER of the client (total latency).
    t_start: u64,
    /// First transmission of the current phase.
    t_phase: u64,
    /// Current retransmission wait before jitter (ticks).
    rto: u64,
    xid: u32,
    /// Offered, then bound address.
    addr: u32,
    /// Server identifier of the offer.
    server: u32,
    next: u32,
    prev: u32,
    slot: u32,
    retries: u16,
    phase: Phase,
    attempt: u8,
    naks: u8,
    flags: u8,
}

impl Default for Client {
    fn default() -> Self {
        Client {
            deadline: 0,
            t_start: 0,
            t_phase: 0,
            rto: 0,
            xid: 0,
            addr: 0,
            server: 0,
            next: NONE,
            prev: NONE,
            slot: 0,
            retries: 0,
            phase: Phase::Idle,
            attempt: 0,
            naks: 0,
            flags: 0,
        }
    }
}

/// A template with `{index}` placeholders, split once at construction.
#[derive(Clone, Debug, Default)]
struct Template {
    /// Literal pieces; an index is rendered between consecutive pieces.
    pieces: Vec<Vec<u8>>,
}

impl Template {
    fn new(s: &str) -> Self {
        Template {
            pieces: s.split("{index}").map(|p| p.as_bytes().to_vec()).collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.pieces.len() == 1 && self.pieces[0].is_empty()
    }

    /// Renders into `out`, cut at `out.len()`; returns the length.
    fn render(&self, index: u32, out: &mut [u8]) -> usize {
        let mut digits = [0u8; 10];
        let mut n = 0;
        let mut v = index;
        loop {
            digits[n] = b'0' + (v % 10) as u8;
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        digits[..n].reverse();
        let mut pos = 0;
        for (k, piece) in self.pieces.iter().enumerate() {
            if k > 0 {
                for &d in &digits[..n] {
                    if pos < out.len() {
                        out[pos] = d;
                        pos += 1;
                    }
                }
            }
            for &b in piece {
                if pos < out.len() {
                    out[pos] = b;
                    pos += 1;
                }
            }
        }
        pos
    }
}

#[derive(Debug)]
struct Pacer {
    /// Ticks per client, 32-bit fraction.
    interval: u128,
    /// Tolerance (burst − 1) × interval.
    tau: u128,
    /// Theoretical arrival time, 32-bit fraction.
    tat: u128,
}

impl Pacer {
    fn allow(&mut self, now: u64) -> bool {
        let now = u128::from(now) << 32;
        if self.tat <= now + self.tau {
            self.tat = self.tat.max(now) + self.interval;
            true
        } else {
            false
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Msg {
    Discover,
    Request,
    Renew,
    Release,
}

/// The tester's statistics.
#[derive(Clone, Debug)]
pub struct TesterStats {
    /// Counters.
    pub counters: TesterCounters,
    /// Reply errors, indexed by [`ReplyError::index`].
    pub reply_errors: [u64; ReplyError::COUNT],
    /// Failures, indexed like [`FailReason::ALL`].
    pub failures: [u64; FailReason::ALL.len()],
    /// DISCOVER → OFFER latency.
    pub discover_offer: Latency,
    /// REQUEST → ACK latency.
    pub request_ack: Latency,
    /// DISCOVER → ACK latency.
    pub total: Latency,
    /// Renewal REQUEST → ACK latency.
    pub renew: Latency,
    /// Finished clients by retries (last bucket: that many or more).
    pub retries: [u64; RETRY_BUCKETS],
}

impl Default for TesterStats {
    fn default() -> Self {
        TesterStats {
            counters: TesterCounters::default(),
            reply_errors: [0; ReplyError::COUNT],
            failures: [0; FailReason::ALL.len()],
            discover_offer: Latency::new(),
            request_ack: Latency::new(),
            total: Latency::new(),
            renew: Latency::new(),
            retries: [0; RETRY_BUCKETS],
        }
    }
}

impl TesterStats {
    /// Count of reply error `e`.
    pub fn reply_error(&self, e: ReplyError) -> u64 {
        self.reply_errors[e.index()]
    }

    /// Count of failures for `r`.
    pub fn failed(&self, r: FailReason) -> u64 {
        self.failures[r as usize]
    }
}

/// The load tester. See the [module documentation](self).
#[derive(Debug)]
pub struct Tester {
    cfg: TesterConfig,
    hz: u64,
    clients: Vec<Client>,
    heads: Vec<u32>,
    shift: u32,
    cursor: u64,
    next_index: u32,
    in_flight: u32,
    finished: u32,
    pacer: Option<Pacer>,
    rng: SmallRng,
    base_mac: u64,
    circuit: Template,
    remote: Template,
    server_mac: Option<MacAddr>,
    rto_initial: u64,
    rto_max: u64,
    renew_ticks: Option<u64>,
    t_first: Option<u64>,
    t_last: u64,
    stats: TesterStats,
}

fn mac_to_u64(m: MacAddr) -> u64 {
    m.0.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b))
}

fn u64_to_mac(v: u64) -> MacAddr {
    let b = v.to_be_bytes();
    MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
}

impl Tester {
    /// Validates `cfg` and allocates everything. `hz` is the frequency of
    /// the tick counter passed as `now` (e.g. the TSC frequency, or 1e9 for
    /// nanoseconds).
    pub fn new(cfg: &TesterConfig, hz: u64) -> Result<Tester, ConfigError> {
        let hz = hz.max(1);
        if cfg.concurrency == 0 {
            return Err(ConfigError::ZeroConcurrency);
        }
        let rt = &cfg.retransmit;
        if rt.multiplier == 0 || rt.initial.is_zero() || rt.max < rt.initial {
            return Err(ConfigError::BadRetransmit);
        }
        if rt.jitter_pct > 100 {
            return Err(ConfigError::BadJitter);
        }
        if let Some(r) = &cfg.relay {
            if r.hops >= r.max_hops {
                return Err(ConfigError::HopsExceeded);
            }
        }
        let base_mac = mac_to_u64(cfg.base_mac);
        if base_mac + u64::from(cfg.clients) > 1 << 48 {
            return Err(ConfigError::MacRangeOverflow);
        }
        let pacer = match cfg.pacing {
            Pacing::Unlimited => None,
            Pacing::Rate { per_sec, burst } => {
                if per_sec == 0 || burst == 0 {
                    return Err(ConfigError::BadRate);
                }
                let interval = (u128::from(hz) << 32) / u128::from(per_sec);
                Some(Pacer {
                    interval,
                    tau: interval * u128::from(burst - 1),
                    tat: 0,
                })
            }
        };
        // Slot width: the power of two nearest below 1 ms of ticks.
        let per_ms = (hz / 1000).max(1);
        let shift = 63 - per_ms.leading_zeros();
        let (circuit, remote) = match &cfg.relay {
            Some(r) => (Template::new(&r.circuit_id), Template::new(&r.remote_id)),
            None => (Template::default(), Template::default()),
        };
        Ok(Tester {
            hz,
            clients: vec![Client::default(); cfg.clients as usize],
            heads: vec![NONE; WHEEL_SLOTS],
            shift,
            cursor: 0,
            next_index: 0,
            in_flight: 0,
            finished: 0,
            pacer,
            rng: SmallRng::seed_from_u64(cfg.seed),
            base_mac,
            circuit,
            remote,
            server_mac: cfg.server_mac,
            rto_initial: duration_to_ticks(rt.initial, hz).max(1),
            rto_max: duration_to_ticks(rt.max, hz).max(1),
            renew_ticks: cfg.renew_after.map(|d| duration_to_ticks(d, hz)),
            t_first: None,
            t_last: 0,
            stats: TesterStats::default(),
            cfg: cfg.clone(),
        })
    }

    /// Whether the clients are relayed ([`TesterConfig::relay`]).
    pub fn is_relay(&self) -> bool {
        self.cfg.relay.is_some()
    }

    /// Bytes of the tester's tables: the per-client records and the
    /// timer wheel (the fixed-size statistics are not included). Grows
    /// linearly with [`TesterConfig::clients`], about 64 bytes each.
    pub fn state_bytes(&self) -> usize {
        self.clients.capacity() * core::mem::size_of::<Client>()
            + self.heads.capacity() * core::mem::size_of::<u32>()
    }

    /// Statistics so far (cheap: read it for a live dashboard).
    pub fn stats(&self) -> &TesterStats {
        &self.stats
    }

    /// Whether every client has finished (done or failed).
    pub fn is_finished(&self) -> bool {
        self.finished == self.cfg.clients
    }

    /// Clients currently in flight.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// The MAC of client `index`.
    pub fn client_mac(&self, index: u32) -> MacAddr {
        u64_to_mac(self.base_mac + u64::from(index))
    }

    /// The phase of client `index` (`None` out of range).
    pub fn client_phase(&self, index: u32) -> Option<Phase> {
        self.clients.get(index as usize).map(|c| c.phase)
    }

    /// The address client `index` was bound to (also after RELEASE / done),
    /// if it got one.
    pub fn client_addr(&self, index: u32) -> Option<Ipv4Addr> {
        let c = self.clients.get(index as usize)?;
        let bound = matches!(
            c.phase,
            Phase::Bound | Phase::Renewing | Phase::Releasing | Phase::Done
        );
        (bound && c.addr != 0).then(|| Ipv4Addr::from(c.addr))
    }

    /// The client a `chaddr` belongs to.
    fn client_of(&self, mac: MacAddr) -> Option<u32> {
        let off = mac_to_u64(mac).wrapping_sub(self.base_mac);
        (off < u64::from(self.cfg.clients)).then_some(off as u32)
    }

    // ---- timer wheel ----

    fn arm(&mut self, i: u32, deadline: u64) {
        self.disarm(i);
        let slot = ((deadline >> self.shift).max(self.cursor) & WHEEL_MASK) as u32;
        let head = self.heads[slot as usize];
        let c = &mut self.clients[i as usize];
        c.deadline = deadline;
        c.slot = slot;
        c.prev = NONE;
        c.next = head;
        c.flags |= ARMED;
        if head != NONE {
            self.clients[head as usize].prev = i;
        }
        self.heads[slot as usize] = i;
    }

    fn disarm(&mut self, i: u32) {
        let c = self.clients[i as usize];
        if c.flags & ARMED == 0 {
            return;
        }
        if c.prev == NONE {
            self.heads[c.slot as usize] = c.next;
        } else {
            self.clients[c.prev as usize].next = c.next;
        }
        if c.next != NONE {
            self.clients[c.next as usize].prev = c.prev;
        }
        let c = &mut self.clients[i as usize];
        c.flags &= !ARMED;
        c.next = NONE;
        c.prev = NONE;
    }

    /// Emits what is due at `now` into `batch` (appending; stops when it is
    /// full): first due timers (first transmissions after a reply,
    /// retransmissions, renewals, releases; expiries of exhausted retries
    /// fail the client), then new clients as concurrency and pacing allow.
    /// Returns the number of frames added.
    pub fn poll(&mut self, now: u64, batch: &mut TxBatch) -> usize {
        let before = batch.len();
        self.run_timers(now, batch);
        while !batch.is_full()
            && self.next_index < self.cfg.clients
            && self.in_flight < self.cfg.concurrency
        {
            if let Some(p) = self.pacer.as_mut() {
                if !p.allow(now) {
                    break;
                }
            }
            let i = self.next_index;
            self.next_index += 1;
            self.in_flight += 1;
            self.stats.counters.started += 1;
            self.t_first.get_or_insert(now);
            let c = &mut self.clients[i as usize];
            c.t_start = now;
            self.start_phase(i, Phase::Selecting, now, batch);
        }
        batch.len() - before
    }

    fn run_timers(&mut self, now: u64, batch: &mut TxBatch) {
        let now_slot = now >> self.shift;
        if now_slot < self.cursor {
            return;
        }
        let end = now_slot.min(self.cursor + WHEEL_MASK);
        let mut s = self.cursor;
        loop {
            let mut i = self.heads[(s & WHEEL_MASK) as usize];
            while i != NONE {
                let c = self.clients[i as usize];
                if c.deadline <= now {
                    if batch.is_full() {
                        self.cursor = s;
                        return;
                    }
                    self.disarm(i);
                    self.fire(i, now, batch);
                }
                i = c.next;
            }
            if s >= end {
                break;
            }
            s += 1;
        }
        self.cursor = now_slot;
    }

    fn fire(&mut self, i: u32, now: u64, batch: &mut TxBatch) {
        let c = self.clients[i as usize];
        if c.flags & SEND_DUE != 0 {
            self.clients[i as usize].flags &= !SEND_DUE;
            match c.phase {
                Phase::Bound => self.start_phase(i, Phase::Renewing, now, batch),
                Phase::Releasing => {
                    if self.send(i, Msg::Release, now, batch) {
                        self.stats.counters.release_sent += 1;
                        self.finish(i, None, now);
                    }
                }
                p => self.start_phase(i, p, now, batch),
            }
            return;
        }
        // A retransmission timeout.
        self.stats.counters.timeouts += 1;
        let (limit, fail, msg) = match c.phase {
            Phase::Selecting => (
                self.cfg.retransmit.discover_retries,
                FailReason::DiscoverTimeout,
                Msg::Discover,
            ),
            Phase::Requesting => (
                self.cfg.retransmit.request_retries,
                FailReason::RequestTimeout,
                Msg::Request,
            ),
            Phase::Renewing => (
                self.cfg.retransmit.request_retries,
                FailReason::RenewTimeout,
                Msg::Renew,
            ),
            _ => return,
        };
        if c.attempt >= limit {
            self.finish(i, Some(fail), now);
            return;
        }
        {
            let c = &mut self.clients[i as usize];
            c.attempt += 1;
            c.retries = c.retries.saturating_add(1);
            let m = u64::from(self.cfg.retransmit.multiplier);
            c.rto = c.rto.saturating_mul(m).min(self.rto_max);
        }
        self.stats.counters.retries += 1;
        if self.send(i, msg, now, batch) {
            self.count_sent(msg);
            self.arm_rto(i, now);
        }
    }

    /// Enters `phase` and sends its first message now.
    fn start_phase(&mut self, i: u32, phase: Phase, now: u64, batch: &mut TxBatch) {
        let xid: u32 = self.rng.random();
        let c = &mut self.clients[i as usize];
        c.phase = phase;
        c.attempt = 0;
        c.t_phase = now;
        c.rto = self.rto_initial;
        // A new transaction for DISCOVER and renewals; the REQUEST that
        // answers an OFFER keeps the OFFER's xid (RFC 2131 §4.4.1).
        if phase != Phase::Requesting {
            c.xid = xid;
        }
        let msg = match phase {
            Phase::Selecting => Msg::Discover,
            Phase::Requesting => Msg::Request,
            _ => Msg::Renew,
        };
        if self.send(i, msg, now, batch) {
            self.count_sent(msg);
            self.arm_rto(i, now);
        }
    }

    fn count_sent(&mut self, msg: Msg) {
        let c = &mut self.stats.counters;
        match msg {
            Msg::Discover => c.discover_sent += 1,
            Msg::Request => c.request_sent += 1,
            Msg::Renew => {
                c.request_sent += 1;
                c.renew_sent += 1
            }
            Msg::Release => c.release_sent += 1,
        }
    }

    fn arm_rto(&mut self, i: u32, now: u64) {
        let rto = self.clients[i as usize].rto;
        let j = self.cfg.retransmit.jitter_pct;
        let wait = if j == 0 {
            rto
        } else {
            let f = 1.0 + self.rng.random_range(-1.0..=1.0) * f64::from(j) / 100.0;
            ((rto as f64) * f) as u64
        };
        self.arm(i, now.saturating_add(wait.max(1)));
    }

    /// Schedules the first message of the current phase for the next poll.
    fn send_soon(&mut self, i: u32, now: u64) {
        self.clients[i as usize].flags |= SEND_DUE;
        self.arm(i, now);
    }

    fn finish(&mut self, i: u32, fail: Option<FailReason>, now: u64) {
        self.disarm(i);
        let c = &mut self.clients[i as usize];
        c.flags = 0;
        c.phase = if fail.is_some() {
            Phase::Failed
        } else {
            Phase::Done
        };
        let retries = usize::from(c.retries).min(RETRY_BUCKETS - 1);
        self.stats.retries[retries] += 1;
        match fail {
            Some(r) => {
                self.stats.counters.failed += 1;
                self.stats.failures[r as usize] += 1;
            }
            None => self.stats.counters.done += 1,
        }
        self.in_flight -= 1;
        self.finished += 1;
        self.t_last = now;
    }

    /// Builds and appends the frame for `msg` of client `i`. Returns false
    /// (and fails the client) if it cannot be built; false without failing
    /// if the batch is full.
    fn send(&mut self, i: u32, msg: Msg, now: u64, batch: &mut TxBatch) -> bool {
        let c = self.clients[i as usize];
        let mac = self.client_mac(i);
        let mut cid = [1u8; 7];
        cid[1..].copy_from_slice(&mac.0);
        let mt = match msg {
            Msg::Discover => MessageType::Discover,
            Msg::Request | Msg::Renew => MessageType::Request,
            Msg::Release => MessageType::Release,
        };
        let mut r = DhcpRepr::new(BOOTREQUEST, mt, c.xid, mac);
        let secs = now.saturating_sub(c.t_start) / self.hz;
        r.secs = u16::try_from(secs).unwrap_or(u16::MAX);
        if self.cfg.send_client_id {
            r.client_id = Some(&cid);
        }
        let addr = Ipv4Addr::from(c.addr);
        let server = Ipv4Addr::from(c.server);
        if msg != Msg::Release {
            r.parameter_request_list = Some(&PARAMETER_REQUEST_LIST);
            r.max_message_size = Some(1500);
        }
        let relayed = matches!(msg, Msg::Discover | Msg::Request) && self.cfg.relay.is_some();
        match msg {
            Msg::Discover | Msg::Request => {
                r.broadcast = self.cfg.broadcast_flag;
                if msg == Msg::Request {
                    r.server_id = Some(server);
                    r.requested_ip = Some(addr);
                }
            }
            Msg::Renew => r.ciaddr = addr,
            Msg::Release => {
                r.ciaddr = addr;
                r.server_id = Some(server);
            }
        }
        let mut o82 = [0u8; 255];
        let mut spec = FrameSpec {
            src_mac: mac,
            dst_mac: MacAddr::BROADCAST,
            vlan: self.cfg.vlan,
            src_ip: Ipv4Addr::UNSPECIFIED,
            dst_ip: Ipv4Addr::BROADCAST,
            src_port: CLIENT_PORT,
            dst_port: SERVER_PORT,
            ttl: 64,
            ident: c.xid as u16,
        };
        if relayed {
            if let Some(relay) = &self.cfg.relay {
                r.giaddr = relay.giaddr;
                r.hops = relay.hops + 1;
                let n = self.render_82(i, &mut o82);
                if n > 0 {
                    r.relay_agent_info = Some(&o82[..n]);
                }
                spec.src_mac = relay.relay_mac;
                spec.dst_mac = relay.server_mac;
                spec.src_ip = relay.giaddr;
                spec.dst_ip = relay.server_ip;
                spec.src_port = SERVER_PORT;
            }
        } else if matches!(msg, Msg::Renew | Msg::Release) {
            spec.src_ip = addr;
            spec.dst_ip = server;
            let relay_next_hop = self.cfg.relay.as_ref().map(|r| r.server_mac);
            spec.dst_mac = self
                .server_mac
                .or(relay_next_hop)
                .unwrap_or(MacAddr::BROADCAST);
        }
        let Some(buf) = batch.next_buf() else {
            self.stats.counters.tx_buffer_full += 1;
            return false;
        };
        let off = spec.dhcp_offset();
        let built = r
            .emit(&mut buf[off..])
            .ok()
            .and_then(|n| spec.emit(&mut buf[..], n).ok());
        match built {
            Some(len) => {
                batch.commit(len);
                true
            }
            None => {
                self.stats.counters.tx_buffer_full += 1;
                self.finish(i, Some(FailReason::EmitFailed), now);
                false
            }
        }
    }

    /// Option 82 data for client `i` (empty without sub-options).
    fn render_82(&self, i: u32, out: &mut [u8; 255]) -> usize {
        let mut circuit = [0u8; MAX_AGENT_ID_LEN];
        let mut remote = [0u8; MAX_AGENT_ID_LEN];
        let nc = self.circuit.render(i, &mut circuit);
        let nr = self.remote.render(i, &mut remote);
        let info = RelayAgentInfo {
            circuit_id: (!self.circuit.is_empty() && nc > 0).then_some(&circuit[..nc]),
            remote_id: (!self.remote.is_empty() && nr > 0).then_some(&remote[..nr]),
        };
        info.emit(out).unwrap_or(0)
    }

    fn reject(&mut self, e: ReplyError) -> ReplyError {
        self.stats.reply_errors[e.index()] += 1;
        self.stats.counters.reply_errors += 1;
        e
    }

    /// Takes one received frame at `now`. Every frame is validated (frame
    /// checksums, length ≥ 240, cookie, option bounds, op, chaddr, xid,
    /// message type for the client's phase, server id, yiaddr); an invalid
    /// or unexpected one is counted by reason and returned as an error. In
    /// relay mode a reply to a relayed request whose Option 82 is not ours
    /// unchanged is counted in `option82_mismatch` (and still accepted).
    /// Messages the accepted reply calls for are sent by the next
    /// [`Self::poll`].
    pub fn on_reply(&mut self, now: u64, frame: &[u8]) -> Result<ReplyEvent, ReplyError> {
        let p = parse_frame(frame).map_err(|e| self.reject(ReplyError::Frame(e)))?;
        let port_ok = p.meta.dst_port == CLIENT_PORT
            || (self.cfg.relay.is_some() && p.meta.dst_port == SERVER_PORT);
        if !port_ok {
            return Err(self.reject(ReplyError::WrongPort));
        }
        // Repeated options (e.g. a split Option 82) are joined (RFC 3396).
        let mut scratch = OptionScratch::new();
        let r = match DhcpRepr::parse(p.dhcp(frame), &mut scratch) {
            Ok(r) => r,
            Err(e) => return Err(self.reject(ReplyError::Malformed(e))),
        };
        if r.op != BOOTREPLY {
            return Err(self.reject(ReplyError::NotBootReply));
        }
        let client = if r.htype == HTYPE_ETHERNET && r.hlen == 6 {
            self.client_of(r.mac())
        } else {
            None
        };
        let Some(i) = client else {
            return Err(self.reject(ReplyError::UnknownClient));
        };
        let c = self.clients[i as usize];
        if c.xid != r.xid {
            return Err(self.reject(ReplyError::XidMismatch));
        }
        let yi = u32::from(r.yiaddr);
        let event = match (r.message_type, c.phase) {
            (MessageType::Offer, Phase::Selecting) => {
                let Some(sid) = r.server_id else {
                    return Err(self.reject(ReplyError::MissingServerId));
                };
                if yi == 0 {
                    return Err(self.reject(ReplyError::BadYiaddr));
                }
                self.stats.counters.offer_received += 1;
                self.stats
                    .discover_offer
                    .record(ticks_to_ns(now.saturating_sub(c.t_phase), self.hz));
                let cm = &mut self.clients[i as usize];
                cm.addr = yi;
                cm.server = u32::from(sid);
                cm.phase = Phase::Requesting;
                self.send_soon(i, now);
                ReplyEvent::Offer(i, r.yiaddr)
            }
            (MessageType::Ack, Phase::Requesting | Phase::Renewing) => {
                if r.server_id.is_none() {
                    return Err(self.reject(ReplyError::MissingServerId));
                }
                if yi == 0 || yi != c.addr {
                    return Err(self.reject(ReplyError::BadYiaddr));
                }
                self.stats.counters.ack_received += 1;
                let elapsed = ticks_to_ns(now.saturating_sub(c.t_phase), self.hz);
                if c.phase == Phase::Requesting {
                    self.stats.counters.bound += 1;
                    self.stats.request_ack.record(elapsed);
                    self.stats
                        .total
                        .record(ticks_to_ns(now.saturating_sub(c.t_start), self.hz));
                } else {
                    self.stats.counters.renew_ack += 1;
                    self.stats.renew.record(elapsed);
                }
                self.disarm(i);
                match (c.phase, self.renew_ticks) {
                    (Phase::Requesting, Some(t)) => {
                        self.clients[i as usize].phase = Phase::Bound;
                        self.clients[i as usize].flags |= SEND_DUE;
                        self.arm(i, now.saturating_add(t));
                    }
                    _ if self.cfg.release => {
                        self.clients[i as usize].phase = Phase::Releasing;
                        self.send_soon(i, now);
                    }
                    _ => self.finish(i, None, now),
                }
                ReplyEvent::Ack(i, r.yiaddr)
            }
            (MessageType::Nak, Phase::Selecting | Phase::Requesting | Phase::Renewing) => {
                self.stats.counters.nak_received += 1;
                self.disarm(i);
                let cm = &mut self.clients[i as usize];
                cm.naks = cm.naks.saturating_add(1);
                if cm.naks > self.cfg.max_naks {
                    self.finish(i, Some(FailReason::TooManyNaks), now);
                } else {
                    cm.phase = Phase::Selecting;
                    cm.addr = 0;
                    self.send_soon(i, now);
                }
                ReplyEvent::Nak(i)
            }
            _ => return Err(self.reject(ReplyError::Unexpected)),
        };
        if self.server_mac.is_none() && self.cfg.relay.is_none() {
            self.server_mac = Some(p.meta.src_mac);
        }
        if self.cfg.relay.is_some() && !r.giaddr.is_unspecified() {
            let mut want = [0u8; 255];
            let n = self.render_82(i, &mut want);
            let expected = (n > 0).then_some(&want[..n]);
            if r.relay_agent_info != expected {
                self.stats.counters.option82_mismatch += 1;
            }
        }
        Ok(event)
    }

    /// The final (or a running) report at `now`. Allocates.
    pub fn report(&self, now: u64) -> TesterReport {
        let c = &self.stats.counters;
        let end = if self.is_finished() { self.t_last } else { now };
        let elapsed_s = self.t_first.map_or(0.0, |t0| {
            ticks_to_ns(end.saturating_sub(t0), self.hz) as f64 / 1e9
        });
        let finished = c.done + c.failed;
        let mut errors = BTreeMap::new();
        for r in FailReason::ALL {
            let n = self.stats.failures[r as usize];
            if n > 0 {
                errors.insert(r.as_str(), n);
            }
        }
        for (k, &n) in self.stats.reply_errors.iter().enumerate() {
            if n > 0 {
                errors.insert(ReplyError::name_of_index(k), n);
            }
        }
        if c.option82_mismatch > 0 {
            errors.insert("option82_mismatch", c.option82_mismatch);
        }
        TesterReport {
            clients_total: u64::from(self.cfg.clients),
            counters: c.clone(),
            success_rate: if finished == 0 {
                0.0
            } else {
                c.done as f64 / finished as f64
            },
            elapsed_s,
            clients_per_s: if elapsed_s > 0.0 {
                c.done as f64 / elapsed_s
            } else {
                0.0
            },
            discover_offer: self.stats.discover_offer.summary(),
            request_ack: self.stats.request_ack.summary(),
            total: self.stats.total.summary(),
            renew: self.stats.renew.summary(),
            errors,
            retries_histogram: self
                .stats
                .retries
                .iter()
                .enumerate()
                .filter(|(_, &n)| n > 0)
                .map(|(k, &n)| (k as u32, n))
                .collect(),
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn client_record_is_small() {
        assert!(
            core::mem::size_of::<Client>() <= 64,
            "{}",
            core::mem::size_of::<Client>()
        );
    }

    #[test]
    fn template_renders_index() {
        let t = Template::new("eth0/{index}/x{index}");
        let mut out = [0u8; 64];
        let n = t.render(4021, &mut out);
        assert_eq!(&out[..n], b"eth0/4021/x4021");
        let n = t.render(0, &mut out);
        assert_eq!(&out[..n], b"eth0/0/x0");
        let mut short = [0u8; 6];
        assert_eq!(t.render(4021, &mut short), 6);
        assert_eq!(&short, b"eth0/4");
        assert!(Template::new("").is_empty());
        assert!(!Template::new("{index}").is_empty());
    }

    #[test]
    fn pacer_allows_burst_then_rate() {
        // 1000 clients/s at 1 GHz ticks, burst 3.
        let hz = 1_000_000_000u128;
        let interval = (hz << 32) / 1000;
        let mut p = Pacer {
            interval,
            tau: interval * 2,
            tat: 0,
        };
        let t0 = 5_000_000_000u64;
        assert!(p.allow(t0) && p.allow(t0) && p.allow(t0));
        assert!(!p.allow(t0));
        assert!(!p.allow(t0 + 999_999));
        assert!(p.allow(t0 + 1_000_000));
        assert!(!p.allow(t0 + 1_000_001));
        // Over one second, about 1000 more.
        let mut n = 0;
        for k in 0..1_000_000u64 {
            if p.allow(t0 + 1_000_001 + k * 1000) {
                n += 1;
            }
        }
        assert!((999..=1001).contains(&n), "{n}");
    }
}
