//! The DHCPv6 load tester's virtual clients (RFC 8415 §18.2), sans IO: the
//! IPv6 counterpart of [`crate::client::Tester`].
//!
//! A [`Tester6`] drives `clients` virtual clients, each through
//! SOLICIT → ADVERTISE → REQUEST → REPLY → bound (or SOLICIT → REPLY with
//! Rapid Commit) → optionally RENEW → REPLY (a RENEW left unanswered:
//! REBIND → REPLY, like a client at T2) → optionally RELEASE → done, or
//! failed with a [`FailReason6`].
//!
//! * Client `i` has MAC `base_mac + i` (the 48-bit address read as an
//!   integer), Client ID DUID-LL (type 3, hardware type 1, the MAC), the
//!   EUI-64 link-local address of the MAC, and one IA_NA and/or one IA_PD
//!   with IAID [`Tester6Config::iaid`]. A reply's Client ID maps back to
//!   its client in O(1) (the DUID carries the MAC).
//! * The first valid ADVERTISE is taken (like perfdhcp): its transaction id
//!   and Client ID must be ours, it must carry a Server ID, and every
//!   requested IA must hold an address / prefix; one that does not (a
//!   NoAddrsAvail / NoPrefixAvail ADVERTISE) is counted by status and the
//!   client keeps soliciting, failing with [`FailReason6::NoAddrsAvail`]
//!   after more than `max_naks` of them. The REQUEST carries the
//!   ADVERTISE's Server ID and the advertised address / prefix as hints.
//!   A REPLY with Rapid Commit to a SOLICIT binds at once.
//! * Extending: `renew_after` the binding, a RENEW to the server that
//!   granted it ([`Tester6Config::extend`] = [`Extend6::Rebind`]: a REBIND
//!   at once, as a client whose server is gone at T2 does). When the
//!   RENEW's transmissions run out, a REBIND without Server ID follows
//!   ([`Tester6Config::rebind`]; RFC 8415 §18.2.5), answered by any server
//!   (the client then follows that server); its transmissions running out
//!   fail the client ([`FailReason6::RebindTimeout`]).
//! * A REPLY to a REQUEST / RENEW / REBIND (or a Rapid Commit REPLY) with a
//!   top-level or IA status other than Success (or without the IA's
//!   address / prefix) is an error status: the client restarts from SOLICIT,
//!   up to `max_naks` times, then fails with [`FailReason6::TooManyErrors`].
//! * Retransmission (RFC 8415 §15): `RT = IRT + RAND×IRT`, then
//!   `RT = 2×RTprev + RAND×RTprev`, capped as `RT = MRT + RAND×MRT`, with
//!   `RAND` uniform in ±`jitter_pct`% (strictly positive for the first
//!   SOLICIT, §18.2.1); a retransmission keeps the transaction id and
//!   updates Elapsed Time; after `max_rc` transmissions the client fails
//!   ([`Retransmit6Config`]). Every exchange (SOLICIT, REQUEST, RENEW,
//!   REBIND, RELEASE) gets a new transaction id; Elapsed Time counts from its first
//!   message. The RELEASE is sent once and not waited for.
//! * Direct mode: frames from the client's MAC and link-local address, port
//!   546, to ff02::1:2 (MAC 33:33:00:01:00:02) port 547, hop limit 1;
//!   replies are expected on port 546 (to the client's link-local address).
//! * Relay mode ([`Relay6Config`], RFC 8415 §19): each message is wrapped in
//!   a RELAY-FORW (hop count 0, the configured link-address, the client's
//!   link-local address as peer-address, Interface-ID and Remote-ID from
//!   templates) sent from the relay's MAC / address, port 547, to the
//!   server; replies must be a RELAY-REPL to port 547 whose peer-address is
//!   the client's, and must echo our Interface-ID (mismatches counted).
//! * Load shape, time and memory are those of the DHCPv4 tester: at most
//!   `concurrency` clients in flight, started as [`Pacing`] allows; time is
//!   a tick count at `hz`; timers live in a hashed timer wheel with
//!   intrusive links in the client records (O(1) arm and cancel); all
//!   memory is allocated by [`Tester6::new`]: 88 bytes per client
//!   ([`CLIENT_RECORD_BYTES`]) plus a 256 KiB wheel, so a million clients
//!   take about 88 MB. Parsing and emitting do not allocate.
//!
//! # Statistics
//!
//! The counters are the DHCPv4 tester's [`TesterCounters`], read as:
//!
//! | counter | DHCPv6 meaning |
//! |---|---|
//! | `started` | clients started (first SOLICIT sent) |
//! | `discover_sent` | SOLICITs sent, retransmissions included |
//! | `offer_received` | ADVERTISEs accepted |
//! | `request_sent` | REQUESTs sent, retransmissions included (RENEWs are not: see `renew_sent`) |
//! | `ack_received` | REPLYs accepted with Success (to REQUEST, RENEW, REBIND, or a Rapid Commit SOLICIT) |
//! | `nak_received` | REPLYs with an error status (top-level or IA) or without the IA's lease |
//! | `timeouts` | retransmission timer expiries |
//! | `retries` | retransmissions sent |
//! | `bound` | clients that got their addresses / prefixes |
//! | `renew_sent` | RENEWs sent, retransmissions included |
//! | `renew_ack` | RENEWs answered with Success |
//! | `rebind_sent` | REBINDs sent, retransmissions included |
//! | `rebind_ack` | REBINDs answered with Success |
//! | `release_sent` | RELEASEs sent |
//! | `done`, `failed` | clients finished successfully / failed |
//! | `reply_errors` | frames refused (by reason: [`ReplyError6`]) |
//! | `option82_mismatch` | relay mode: accepted replies whose RELAY-REPL did not echo our Interface-ID unchanged (there is no Option 82 in DHCPv6) |
//! | `tx_buffer_full` | frames that could not be built or held |
//!
//! Latencies: `discover_offer` = first SOLICIT of the attempt → ADVERTISE;
//! `request_ack` = first REQUEST → REPLY; `total` = the client's first
//! SOLICIT → bound (with Rapid Commit: SOLICIT → REPLY, and no
//! `discover_offer` sample); `renew` = first RENEW (or REBIND) → REPLY.
//! Status codes
//! other than Success received in ADVERTISEs and REPLYs are counted in
//! [`Tester6Stats::statuses`].
//!
//! The caller's loop: receive frames and give each to [`Tester6::on_reply`];
//! call [`Tester6::poll`] with a [`TxBatch`] and send what it holds.

use core::fmt;
use core::net::Ipv6Addr;
use core::time::Duration;
use std::collections::BTreeMap;

use qsplice_wire::ipv6::link_local;
use qsplice_wire::MacAddr;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::client::{Pacing, TxBatch, MAX_AGENT_ID_LEN};
use crate::frame6::{parse_frame6, Frame6Error, Frame6Spec};
use crate::stats::{Latency, TesterCounters, TesterReport, RETRY_BUCKETS};
use crate::wire6::{
    self, duid_ll, msg, opt, status, Dhcp6Packet, IaAddr, IaPrefix, Writer, ALL_RELAYS_AND_SERVERS,
    CLIENT_PORT, SERVER_PORT,
};
use crate::{duration_to_ticks, ticks_to_ns};

/// Option Request option sent by the virtual clients: DNS servers (23).
pub const OPTION_REQUEST_LIST: [u8; 2] = [0, 23];

/// Distinct Server IDs (DUIDs) the tester remembers; an ADVERTISE (or
/// Rapid Commit REPLY) from yet another server is refused
/// ([`ReplyError6::TooManyServers`]).
pub const MAX_SERVERS: usize = 16;

/// The longest DUID (RFC 8415 §11.1: 128 bytes plus the type).
pub const MAX_DUID_LEN: usize = 130;

/// Bytes of one client's record (the per-client memory of a [`Tester6`]).
pub const CLIENT_RECORD_BYTES: usize = core::mem::size_of::<Client6>();

// A million clients in under 96 MB.
const _: () = assert!(CLIENT_RECORD_BYTES <= 96);

/// Hop limit of relayed frames (direct frames use 1: link scope).
pub const RELAY_HOP_LIMIT: u8 = 64;

/// RFC 8415 §15 retransmission, per message (§7.6 defaults).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Retransmit6Config {
    /// SOLICIT initial RT (SOL_IRT, 1 s).
    pub solicit_irt: Duration,
    /// SOLICIT largest RT (SOL_MRT, 3600 s; zero: no cap).
    pub solicit_mrt: Duration,
    /// SOLICIT transmissions before the client fails (the RFC has no
    /// bound; the tester's default is 10; 0: unlimited).
    pub solicit_max_rc: u8,
    /// REQUEST initial RT (REQ_IRT, 1 s).
    pub request_irt: Duration,
    /// REQUEST largest RT (REQ_MRT, 30 s; zero: no cap).
    pub request_mrt: Duration,
    /// REQUEST transmissions before the client fails (REQ_MAX_RC, 10; 0:
    /// unlimited).
    pub request_max_rc: u8,
    /// RENEW initial RT (REN_IRT, 10 s).
    pub renew_irt: Duration,
    /// RENEW largest RT (REN_MRT, 600 s; zero: no cap).
    pub renew_mrt: Duration,
    /// RENEW transmissions before the client fails (the RFC bounds RENEW
    /// by T2 instead; the tester's default is 10; 0: unlimited).
    pub renew_max_rc: u8,
    /// REBIND initial RT (REB_IRT, 10 s).
    pub rebind_irt: Duration,
    /// REBIND largest RT (REB_MRT, 600 s; zero: no cap).
    pub rebind_mrt: Duration,
    /// REBIND transmissions before the client fails (the RFC bounds REBIND
    /// by the leases' valid lifetimes instead; the tester's default is 10;
    /// 0: unlimited).
    pub rebind_max_rc: u8,
    /// `RAND` is uniform in ± this percentage (RFC: 10; 0–100).
    pub jitter_pct: u8,
}

impl Default for Retransmit6Config {
    fn default() -> Self {
        Retransmit6Config {
            solicit_irt: Duration::from_secs(1),
            solicit_mrt: Duration::from_secs(3600),
            solicit_max_rc: 10,
            request_irt: Duration::from_secs(1),
            request_mrt: Duration::from_secs(30),
            request_max_rc: 10,
            renew_irt: Duration::from_secs(10),
            renew_mrt: Duration::from_secs(600),
            renew_max_rc: 10,
            rebind_irt: Duration::from_secs(10),
            rebind_mrt: Duration::from_secs(600),
            rebind_max_rc: 10,
            jitter_pct: 10,
        }
    }
}

/// Relay-agent mode (RFC 8415 §19): the tester sends as a lightweight relay
/// agent in front of its clients would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relay6Config {
    /// The link-address of RELAY-FORW (identifies the clients' link to the
    /// server; a global address of the relay's client-facing interface).
    pub link_address: Ipv6Addr,
    /// The relay's address: IPv6 source of relayed frames, and where the
    /// server's RELAY-REPLs come back to.
    pub relay_ip: Ipv6Addr,
    /// Ethernet source of relayed frames (`None`: the tester's
    /// [`Tester6Config::port_mac`]).
    pub relay_mac: Option<MacAddr>,
    /// The server's address (unicast, or ff02::1:2).
    pub server_ip: Ipv6Addr,
    /// The server's (or next hop's) MAC, for a unicast `server_ip`.
    pub server_mac: MacAddr,
    /// Interface-ID (option 18) template: `{index}` becomes the client
    /// index; empty = option left out.
    pub interface_id: String,
    /// Remote-ID (option 37) template for the id after the enterprise
    /// number; empty = option left out.
    pub remote_id: String,
    /// Enterprise number of the Remote-ID.
    pub remote_id_enterprise: u32,
}

impl Relay6Config {
    /// A relay for `link_address` sending from `relay_ip` to ff02::1:2,
    /// with no Interface-ID or Remote-ID.
    pub fn new(link_address: Ipv6Addr, relay_ip: Ipv6Addr) -> Self {
        Relay6Config {
            link_address,
            relay_ip,
            relay_mac: None,
            server_ip: ALL_RELAYS_AND_SERVERS,
            server_mac: MacAddr::BROADCAST,
            interface_id: String::new(),
            remote_id: String::new(),
            remote_id_enterprise: 0,
        }
    }
}

/// The DHCPv6 tester's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tester6Config {
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
    /// The tester port's own MAC (source of relayed frames unless
    /// [`Relay6Config::relay_mac`] is set).
    pub port_mac: MacAddr,
    /// Ask for an address (one IA_NA).
    pub ia_na: bool,
    /// Ask for a delegated prefix (one IA_PD).
    pub ia_pd: bool,
    /// IAID of the IA_NA and of the IA_PD.
    pub iaid: u32,
    /// Send Rapid Commit in SOLICIT (and bind on a Rapid Commit REPLY).
    pub rapid_commit: bool,
    /// Relay-agent mode.
    pub relay: Option<Relay6Config>,
    /// Retransmission.
    pub retransmit: Retransmit6Config,
    /// Error statuses a client accepts (REPLYs: restarting from SOLICIT
    /// each time; ADVERTISEs without a lease: soliciting on) before it
    /// fails.
    pub max_naks: u8,
    /// Extend the binding this long after binding.
    pub renew_after: Option<Duration>,
    /// How the binding is extended `renew_after` it was made.
    pub extend: Extend6,
    /// REBIND when a RENEW's transmissions run out (else the client fails
    /// with [`FailReason6::RenewTimeout`]).
    pub rebind: bool,
    /// Send a RELEASE at the end.
    pub release: bool,
    /// Seed of the jitter and transaction-id generator.
    pub seed: u64,
}

impl Tester6Config {
    /// `clients` clients with the defaults: concurrency = clients,
    /// unlimited pacing, base MAC `02:00:00:00:00:00`, no VLAN, port MAC
    /// `02:00:00:00:00:ff`, IA_NA only (IAID 1), no Rapid Commit, direct
    /// mode, RFC retransmission, 3 error statuses, no renew (REBIND after
    /// an unanswered RENEW), no release, seed 1.
    pub fn new(clients: u32) -> Self {
        Tester6Config {
            clients,
            concurrency: clients.max(1),
            pacing: Pacing::Unlimited,
            base_mac: MacAddr([0x02, 0, 0, 0, 0, 0]),
            vlan: None,
            port_mac: MacAddr([0x02, 0, 0, 0, 0, 0xff]),
            ia_na: true,
            ia_pd: false,
            iaid: 1,
            rapid_commit: false,
            relay: None,
            retransmit: Retransmit6Config::default(),
            max_naks: 3,
            renew_after: None,
            extend: Extend6::Renew,
            rebind: true,
            release: false,
            seed: 1,
        }
    }
}

/// How a bound client extends its binding.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Extend6 {
    /// RENEW to the server that granted it (a client at T1); REBIND if
    /// that goes unanswered and [`Tester6Config::rebind`] is set.
    #[default]
    Renew,
    /// REBIND to any server (a client at T2 whose server stayed silent).
    Rebind,
}

/// Why a [`Tester6Config`] was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Tester6ConfigError {
    /// `concurrency` is 0.
    ZeroConcurrency,
    /// A rate of 0 per second or a burst of 0.
    BadRate,
    /// An initial RT of zero, or a non-zero MRT below its IRT.
    BadRetransmit,
    /// `jitter_pct` above 100.
    BadJitter,
    /// Neither `ia_na` nor `ia_pd`.
    NoIa,
    /// Relay mode with an unspecified or multicast relay address, or an
    /// unspecified server address.
    BadRelay,
    /// The client MACs `base_mac .. base_mac + clients` wrap around 2^48.
    MacRangeOverflow,
}

impl Tester6ConfigError {
    /// Stable `snake_case` name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Tester6ConfigError::ZeroConcurrency => "zero_concurrency",
            Tester6ConfigError::BadRate => "bad_rate",
            Tester6ConfigError::BadRetransmit => "bad_retransmit",
            Tester6ConfigError::BadJitter => "bad_jitter",
            Tester6ConfigError::NoIa => "no_ia",
            Tester6ConfigError::BadRelay => "bad_relay",
            Tester6ConfigError::MacRangeOverflow => "mac_range_overflow",
        }
    }
}

impl fmt::Display for Tester6ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Tester6ConfigError {}

/// Why a client failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum FailReason6 {
    /// No usable ADVERTISE (or Rapid Commit REPLY) after all SOLICIT
    /// transmissions.
    SolicitTimeout,
    /// No REPLY after all REQUEST transmissions.
    RequestTimeout,
    /// No REPLY after all RENEW transmissions (and no REBIND:
    /// [`Tester6Config::rebind`] off).
    RenewTimeout,
    /// More than `max_naks` ADVERTISEs without the requested address or
    /// prefix (NoAddrsAvail / NoPrefixAvail, or another error status).
    NoAddrsAvail,
    /// More than `max_naks` REPLYs with an error status.
    TooManyErrors,
    /// A message could not be built (frame larger than the batch buffers).
    EmitFailed,
    /// No REPLY after all REBIND transmissions.
    RebindTimeout,
}

impl FailReason6 {
    /// All variants in order.
    pub const ALL: [FailReason6; 7] = [
        FailReason6::SolicitTimeout,
        FailReason6::RequestTimeout,
        FailReason6::RenewTimeout,
        FailReason6::NoAddrsAvail,
        FailReason6::TooManyErrors,
        FailReason6::EmitFailed,
        FailReason6::RebindTimeout,
    ];

    /// Stable `snake_case` name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            FailReason6::SolicitTimeout => "solicit_timeout",
            FailReason6::RequestTimeout => "request_timeout",
            FailReason6::RenewTimeout => "renew_timeout",
            FailReason6::NoAddrsAvail => "no_addrs_avail",
            FailReason6::TooManyErrors => "too_many_error_statuses",
            FailReason6::EmitFailed => "emit_failed",
            FailReason6::RebindTimeout => "rebind_timeout",
        }
    }
}

/// Why a received frame was not accepted as a reply.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReplyError6 {
    /// Not a valid DHCPv6 datagram.
    Frame(Frame6Error),
    /// The DHCPv6 message (or the one in a RELAY-REPL) does not parse.
    Malformed(wire6::Error),
    /// Not to our port (546, or 547 in relay mode).
    WrongPort,
    /// A message type clients do not take (anything but ADVERTISE and
    /// REPLY; a relay message in direct mode).
    UnexpectedType,
    /// Relay mode: not a RELAY-REPL.
    NotRelayReply,
    /// A RELAY-REPL without a Relay Message option.
    RelayNoMessage,
    /// A RELAY-REPL holding another relay message (we relay one level).
    RelayNested,
    /// A RELAY-REPL for another link-address than ours.
    RelayLinkMismatch,
    /// A RELAY-REPL whose peer-address is not the link-local address of
    /// the client its Client ID names.
    PeerAddressMismatch,
    /// No Client ID, or not the DUID-LL of one of our clients.
    UnknownClient,
    /// Direct mode: sent to another client's address than the one its
    /// Client ID names.
    ClientIdMismatch,
    /// The client is not waiting for this message (late or duplicate
    /// ADVERTISE, a REPLY to a SOLICIT without Rapid Commit, a client that
    /// is bound, finished or not started).
    NotWaiting,
    /// `transaction-id` is not the client's current one.
    XidMismatch,
    /// No (valid) Server ID.
    NoServerId,
    /// A REPLY from another server than the one the REQUEST / RENEW named.
    ServerIdMismatch,
    /// An ADVERTISE from a server beyond the [`MAX_SERVERS`] remembered.
    TooManyServers,
}

const WIRE6_ERRORS: [wire6::Error; 4] = [
    wire6::Error::Truncated,
    wire6::Error::BadOption,
    wire6::Error::BadType,
    wire6::Error::NoRoom,
];

const WIRE6_ERROR_NAMES: [&str; 4] = [
    "dhcp6_truncated",
    "dhcp6_bad_option",
    "dhcp6_bad_type",
    "dhcp6_no_room",
];

const OWN_REPLY_ERRORS: [&str; 14] = [
    "wrong_port",
    "unexpected_type",
    "not_relay_reply",
    "relay_no_message",
    "relay_nested",
    "relay_link_mismatch",
    "peer_address_mismatch",
    "unknown_client",
    "client_id_mismatch",
    "not_waiting",
    "xid_mismatch",
    "no_server_id",
    "server_id_mismatch",
    "too_many_servers",
];

const fn wire6_index(e: wire6::Error) -> usize {
    match e {
        wire6::Error::Truncated => 0,
        wire6::Error::BadOption => 1,
        wire6::Error::BadType => 2,
        wire6::Error::NoRoom => 3,
    }
}

impl ReplyError6 {
    /// Number of distinct counters.
    pub const COUNT: usize = Frame6Error::ALL.len() + WIRE6_ERRORS.len() + OWN_REPLY_ERRORS.len();

    /// Dense counter index (below [`ReplyError6::COUNT`]).
    pub const fn index(&self) -> usize {
        const F: usize = Frame6Error::ALL.len();
        const M: usize = F + WIRE6_ERRORS.len();
        match self {
            ReplyError6::Frame(e) => e.index(),
            ReplyError6::Malformed(e) => F + wire6_index(*e),
            ReplyError6::WrongPort => M,
            ReplyError6::UnexpectedType => M + 1,
            ReplyError6::NotRelayReply => M + 2,
            ReplyError6::RelayNoMessage => M + 3,
            ReplyError6::RelayNested => M + 4,
            ReplyError6::RelayLinkMismatch => M + 5,
            ReplyError6::PeerAddressMismatch => M + 6,
            ReplyError6::UnknownClient => M + 7,
            ReplyError6::ClientIdMismatch => M + 8,
            ReplyError6::NotWaiting => M + 9,
            ReplyError6::XidMismatch => M + 10,
            ReplyError6::NoServerId => M + 11,
            ReplyError6::ServerIdMismatch => M + 12,
            ReplyError6::TooManyServers => M + 13,
        }
    }

    /// Name of counter `index`; `"unknown"` out of range.
    pub fn name_of_index(index: usize) -> &'static str {
        const F: usize = Frame6Error::ALL.len();
        const M: usize = F + WIRE6_ERRORS.len();
        if index < F {
            Frame6Error::ALL[index].as_str()
        } else if index < M {
            WIRE6_ERROR_NAMES[index - F]
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

impl fmt::Display for ReplyError6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for ReplyError6 {}

/// Slots of [`Tester6Stats::statuses`]: status codes 1..=6 at their own
/// index, any other non-zero code at index 7 (index 0, Success, unused).
pub const STATUS_SLOTS: usize = 8;

/// Stable name of the [`Tester6Stats::statuses`] slot of status `code`.
pub fn status_name(code: u16) -> &'static str {
    match code {
        status::SUCCESS => "status_success",
        status::UNSPEC_FAIL => "status_unspec_fail",
        status::NO_ADDRS_AVAIL => "status_no_addrs_avail",
        status::NO_BINDING => "status_no_binding",
        status::NOT_ON_LINK => "status_not_on_link",
        status::USE_MULTICAST => "status_use_multicast",
        status::NO_PREFIX_AVAIL => "status_no_prefix_avail",
        _ => "status_other",
    }
}

fn status_slot(code: u16) -> usize {
    if code <= status::NO_PREFIX_AVAIL {
        usize::from(code)
    } else {
        STATUS_SLOTS - 1
    }
}

/// What an accepted reply did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Reply6Event {
    /// Client `0` accepted an ADVERTISE; its REQUEST is due.
    Advertise(u32),
    /// Client `0` is bound: its address (IA_NA) and delegated prefix
    /// (IA_PD), as configured.
    Bound(u32, Option<Ipv6Addr>, Option<(Ipv6Addr, u8)>),
    /// Client `0`'s RENEW (or REBIND) was answered with Success.
    Renewed(u32),
    /// Client `0` got an error status (see the module docs for what it
    /// does next).
    Error(u32),
    /// The REPLY to client `0`'s RELEASE (not waited for; accepted
    /// quietly).
    Released(u32),
}

/// Where a client is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Phase6 {
    /// Not started yet.
    #[default]
    Idle,
    /// SOLICIT sent (or due), waiting for an ADVERTISE.
    Soliciting,
    /// REQUEST sent (or due), waiting for a REPLY.
    Requesting,
    /// Bound, waiting to renew.
    Bound,
    /// RENEW sent (or due), waiting for a REPLY.
    Renewing,
    /// REBIND sent (or due), waiting for a REPLY from any server.
    Rebinding,
    /// RELEASE due.
    Releasing,
    /// Finished successfully.
    Done,
    /// Failed.
    Failed,
}

const NONE: u32 = u32::MAX;
const WHEEL_SLOTS: usize = 1 << 16;
const WHEEL_MASK: u64 = WHEEL_SLOTS as u64 - 1;

/// `flags` bits.
const ARMED: u8 = 1;
/// The timer means "send the first message of the phase", not "timeout".
const SEND_DUE: u8 = 2;
/// A Done client whose RELEASE went out (its REPLY is accepted quietly).
const RELEASED: u8 = 4;

/// Per-client state, kept small (88 bytes).
#[derive(Copy, Clone, Debug)]
struct Client6 {
    /// Timer deadline (ticks).
    deadline: u64,
    /// First SOLICIT of the client (total latency).
    t_start: u64,
    /// First transmission of the current exchange (Elapsed Time, stage
    /// latencies).
    t_phase: u64,
    /// The current retransmission timeout, RAND applied (ticks).
    rt: u64,
    /// Advertised, then bound address (all zero: none).
    addr: [u8; 16],
    /// Advertised, then delegated prefix (all zero: none).
    prefix: [u8; 16],
    /// Transaction id (24 bits).
    xid: u32,
    next: u32,
    prev: u32,
    slot: u32,
    retries: u16,
    phase: Phase6,
    /// Transmissions of the current message.
    attempt: u8,
    /// Error statuses so far.
    naks: u8,
    flags: u8,
    /// 1 + index of the server's DUID in the tester's table; 0: none.
    server: u8,
    /// Length of `prefix`.
    plen: u8,
}

impl Default for Client6 {
    fn default() -> Self {
        Client6 {
            deadline: 0,
            t_start: 0,
            t_phase: 0,
            rt: 0,
            addr: [0; 16],
            prefix: [0; 16],
            xid: 0,
            next: NONE,
            prev: NONE,
            slot: 0,
            retries: 0,
            phase: Phase6::Idle,
            attempt: 0,
            naks: 0,
            flags: 0,
            server: 0,
            plen: 0,
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
        self.pieces.len() <= 1 && self.pieces.iter().all(|p| p.is_empty())
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
            let index_bytes: &[u8] = if k > 0 { &digits[..n] } else { &[] };
            for &b in index_bytes.iter().chain(piece) {
                if let Some(o) = out.get_mut(pos) {
                    *o = b;
                    pos += 1;
                }
            }
        }
        pos
    }
}

/// GCRA pacer (as in the DHCPv4 tester).
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
    Solicit,
    Request,
    Renew,
    Rebind,
    Release,
}

/// A remembered Server ID.
#[derive(Copy, Clone, Debug)]
struct ServerDuid {
    len: u8,
    duid: [u8; MAX_DUID_LEN],
}

impl ServerDuid {
    fn bytes(&self) -> &[u8] {
        &self.duid[..usize::from(self.len).min(MAX_DUID_LEN)]
    }
}

/// The DHCPv6 tester's statistics.
#[derive(Clone, Debug)]
pub struct Tester6Stats {
    /// Counters (DHCPv6 meanings in the [module documentation](self)).
    pub counters: TesterCounters,
    /// Reply errors, indexed by [`ReplyError6::index`].
    pub reply_errors: [u64; ReplyError6::COUNT],
    /// Failures, indexed like [`FailReason6::ALL`].
    pub failures: [u64; FailReason6::ALL.len()],
    /// Error status codes received (ADVERTISE and REPLY, top-level or per
    /// IA; a missing lease counts as NoAddrsAvail / NoPrefixAvail), by
    /// [`STATUS_SLOTS`] slot.
    pub statuses: [u64; STATUS_SLOTS],
    /// SOLICIT → ADVERTISE latency.
    pub discover_offer: Latency,
    /// REQUEST → REPLY latency.
    pub request_ack: Latency,
    /// First SOLICIT → bound latency.
    pub total: Latency,
    /// RENEW (or REBIND) → REPLY latency.
    pub renew: Latency,
    /// Finished clients by retries (last bucket: that many or more).
    pub retries: [u64; RETRY_BUCKETS],
}

impl Default for Tester6Stats {
    fn default() -> Self {
        Tester6Stats {
            counters: TesterCounters::default(),
            reply_errors: [0; ReplyError6::COUNT],
            failures: [0; FailReason6::ALL.len()],
            statuses: [0; STATUS_SLOTS],
            discover_offer: Latency::new(),
            request_ack: Latency::new(),
            total: Latency::new(),
            renew: Latency::new(),
            retries: [0; RETRY_BUCKETS],
        }
    }
}

impl Tester6Stats {
    /// Count of reply error `e`.
    pub fn reply_error(&self, e: ReplyError6) -> u64 {
        self.reply_errors[e.index()]
    }

    /// Count of failures for `r`.
    pub fn failed(&self, r: FailReason6) -> u64 {
        self.failures[r as usize]
    }

    /// Count of error status `code` received (codes above 6 share a slot).
    pub fn status(&self, code: u16) -> u64 {
        self.statuses[status_slot(code)]
    }
}

/// The DHCPv6 load tester. See the [module documentation](self).
#[derive(Debug)]
pub struct Tester6 {
    cfg: Tester6Config,
    hz: u64,
    clients: Vec<Client6>,
    heads: Vec<u32>,
    shift: u32,
    cursor: u64,
    next_index: u32,
    in_flight: u32,
    finished: u32,
    pacer: Option<Pacer>,
    rng: SmallRng,
    base_mac: u64,
    interface_id: Template,
    remote_id: Template,
    servers: Vec<ServerDuid>,
    /// IRT / MRT (ticks) of SOLICIT, REQUEST, RENEW, REBIND.
    rt_solicit: (u64, u64),
    rt_request: (u64, u64),
    rt_renew: (u64, u64),
    rt_rebind: (u64, u64),
    renew_ticks: Option<u64>,
    t_first: Option<u64>,
    t_last: u64,
    stats: Tester6Stats,
}

fn mac_to_u64(m: &[u8]) -> u64 {
    m.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b))
}

fn u64_to_mac(v: u64) -> MacAddr {
    let b = v.to_be_bytes();
    MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// An address a client may take: not unspecified, loopback or multicast.
fn usable(a: Ipv6Addr) -> bool {
    !(a.is_unspecified() || a.is_loopback() || a.is_multicast())
}

/// The address of IA_NA `iaid` in `m`, or the status saying why not.
fn ia_na_addr(m: &Dhcp6Packet<'_>, iaid: u32) -> Result<Ipv6Addr, u16> {
    let ia = m
        .ia_nas()
        .find(|ia| ia.iaid == iaid)
        .ok_or(status::NO_ADDRS_AVAIL)?;
    if let Some((code, _)) = ia.status() {
        if code != status::SUCCESS {
            return Err(code);
        }
    }
    ia.addrs()
        .find(|a| a.valid > 0 && a.preferred <= a.valid && usable(a.addr))
        .map(|a| a.addr)
        .ok_or(status::NO_ADDRS_AVAIL)
}

/// The prefix of IA_PD `iaid` in `m`, or the status saying why not.
fn ia_pd_prefix(m: &Dhcp6Packet<'_>, iaid: u32) -> Result<(Ipv6Addr, u8), u16> {
    let ia = m
        .ia_pds()
        .find(|ia| ia.iaid == iaid)
        .ok_or(status::NO_PREFIX_AVAIL)?;
    if let Some((code, _)) = ia.status() {
        if code != status::SUCCESS {
            return Err(code);
        }
    }
    ia.prefixes()
        .find(|p| p.valid > 0 && p.preferred <= p.valid && p.len > 0 && !p.prefix.is_multicast())
        .map(|p| (p.prefix, p.len))
        .ok_or(status::NO_PREFIX_AVAIL)
}

/// What a reply grants: the address and prefix asked for.
type Lease6 = (Option<Ipv6Addr>, Option<(Ipv6Addr, u8)>);

impl Tester6 {
    /// Validates `cfg` and allocates everything. `hz` is the frequency of
    /// the tick counter passed as `now` (e.g. the TSC frequency, or 1e9 for
    /// nanoseconds).
    pub fn new(cfg: &Tester6Config, hz: u64) -> Result<Tester6, Tester6ConfigError> {
        let hz = hz.max(1);
        if cfg.concurrency == 0 {
            return Err(Tester6ConfigError::ZeroConcurrency);
        }
        let rt = &cfg.retransmit;
        for (irt, mrt) in [
            (rt.solicit_irt, rt.solicit_mrt),
            (rt.request_irt, rt.request_mrt),
            (rt.renew_irt, rt.renew_mrt),
            (rt.rebind_irt, rt.rebind_mrt),
        ] {
            if irt.is_zero() || (!mrt.is_zero() && mrt < irt) {
                return Err(Tester6ConfigError::BadRetransmit);
            }
        }
        if rt.jitter_pct > 100 {
            return Err(Tester6ConfigError::BadJitter);
        }
        if !cfg.ia_na && !cfg.ia_pd {
            return Err(Tester6ConfigError::NoIa);
        }
        if let Some(r) = &cfg.relay {
            if r.relay_ip.is_unspecified()
                || r.relay_ip.is_multicast()
                || r.server_ip.is_unspecified()
            {
                return Err(Tester6ConfigError::BadRelay);
            }
        }
        let base_mac = mac_to_u64(&cfg.base_mac.0);
        if base_mac + u64::from(cfg.clients) > 1 << 48 {
            return Err(Tester6ConfigError::MacRangeOverflow);
        }
        let pacer = match cfg.pacing {
            Pacing::Unlimited => None,
            Pacing::Rate { per_sec, burst } => {
                if per_sec == 0 || burst == 0 {
                    return Err(Tester6ConfigError::BadRate);
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
        let (interface_id, remote_id) = match &cfg.relay {
            Some(r) => (Template::new(&r.interface_id), Template::new(&r.remote_id)),
            None => (Template::default(), Template::default()),
        };
        let ticks = |d: Duration| duration_to_ticks(d, hz);
        Ok(Tester6 {
            hz,
            clients: vec![Client6::default(); cfg.clients as usize],
            heads: vec![NONE; WHEEL_SLOTS],
            shift,
            cursor: 0,
            next_index: 0,
            in_flight: 0,
            finished: 0,
            pacer,
            rng: SmallRng::seed_from_u64(cfg.seed),
            base_mac,
            interface_id,
            remote_id,
            servers: Vec::with_capacity(MAX_SERVERS),
            rt_solicit: (ticks(rt.solicit_irt).max(1), ticks(rt.solicit_mrt)),
            rt_request: (ticks(rt.request_irt).max(1), ticks(rt.request_mrt)),
            rt_renew: (ticks(rt.renew_irt).max(1), ticks(rt.renew_mrt)),
            rt_rebind: (ticks(rt.rebind_irt).max(1), ticks(rt.rebind_mrt)),
            renew_ticks: cfg.renew_after.map(ticks),
            t_first: None,
            t_last: 0,
            stats: Tester6Stats::default(),
            cfg: cfg.clone(),
        })
    }

    /// Bytes of the tester's tables: the per-client records
    /// ([`CLIENT_RECORD_BYTES`] each), the timer wheel and the Server ID
    /// table (the fixed-size statistics are not included).
    pub fn state_bytes(&self) -> usize {
        self.clients.capacity() * core::mem::size_of::<Client6>()
            + self.heads.capacity() * core::mem::size_of::<u32>()
            + self.servers.capacity() * core::mem::size_of::<ServerDuid>()
    }

    /// Statistics so far (cheap: read it for a live dashboard).
    pub fn stats(&self) -> &Tester6Stats {
        &self.stats
    }

    /// The relay this tester acts as, if any.
    pub fn relay(&self) -> Option<&Relay6Config> {
        self.cfg.relay.as_ref()
    }

    /// The MAC relayed frames are sent from.
    pub fn relay_mac(&self) -> MacAddr {
        self.cfg
            .relay
            .as_ref()
            .and_then(|r| r.relay_mac)
            .unwrap_or(self.cfg.port_mac)
    }

    /// Number of virtual clients.
    pub fn clients(&self) -> u32 {
        self.cfg.clients
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

    /// The link-local address of client `index` (EUI-64 of its MAC).
    pub fn client_link_local(&self, index: u32) -> Ipv6Addr {
        link_local(self.client_mac(index))
    }

    /// The phase of client `index` (`None` out of range).
    pub fn client_phase(&self, index: u32) -> Option<Phase6> {
        self.clients.get(index as usize).map(|c| c.phase)
    }

    fn holds_lease(c: &Client6) -> bool {
        matches!(
            c.phase,
            Phase6::Bound | Phase6::Renewing | Phase6::Rebinding | Phase6::Releasing | Phase6::Done
        )
    }

    /// The address client `index` was bound to (also after RELEASE / done),
    /// if it got one.
    pub fn client_addr(&self, index: u32) -> Option<Ipv6Addr> {
        let c = self.clients.get(index as usize)?;
        (Self::holds_lease(c) && c.addr != [0; 16]).then(|| Ipv6Addr::from(c.addr))
    }

    /// The prefix delegated to client `index` (also after RELEASE / done),
    /// if it got one.
    pub fn client_prefix(&self, index: u32) -> Option<(Ipv6Addr, u8)> {
        let c = self.clients.get(index as usize)?;
        (Self::holds_lease(c) && c.plen != 0).then(|| (Ipv6Addr::from(c.prefix), c.plen))
    }

    /// The client a Client ID belongs to (our DUID-LLs only).
    fn client_of_duid(&self, d: &[u8]) -> Option<u32> {
        if d.len() != 10 || d[..4] != [0, 3, 0, 1] {
            return None;
        }
        let off = mac_to_u64(&d[4..]).wrapping_sub(self.base_mac);
        (off < u64::from(self.cfg.clients)).then_some(off as u32)
    }

    // ---- timer wheel (as in the DHCPv4 tester) ----

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
    /// retransmissions, renewals, releases; expiries of exhausted
    /// retransmissions fail the client), then new clients as concurrency
    /// and pacing allow. Returns the number of frames added.
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
            self.clients[i as usize].t_start = now;
            self.start_phase(i, Phase6::Soliciting, now, batch);
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
                Phase6::Bound => {
                    let p = match self.cfg.extend {
                        Extend6::Renew => Phase6::Renewing,
                        Extend6::Rebind => Phase6::Rebinding,
                    };
                    self.start_phase(i, p, now, batch)
                }
                Phase6::Releasing => {
                    let xid = self.new_xid();
                    let cm = &mut self.clients[i as usize];
                    cm.xid = xid;
                    cm.t_phase = now;
                    if self.send(i, Msg::Release, now, batch) {
                        self.stats.counters.release_sent += 1;
                        self.finish(i, None, now);
                        self.clients[i as usize].flags |= RELEASED;
                    }
                }
                p => self.start_phase(i, p, now, batch),
            }
            return;
        }
        // A retransmission timeout.
        self.stats.counters.timeouts += 1;
        let rtc = &self.cfg.retransmit;
        let (max_rc, fail, m, mrt) = match c.phase {
            Phase6::Soliciting => (
                rtc.solicit_max_rc,
                FailReason6::SolicitTimeout,
                Msg::Solicit,
                self.rt_solicit.1,
            ),
            Phase6::Requesting => (
                rtc.request_max_rc,
                FailReason6::RequestTimeout,
                Msg::Request,
                self.rt_request.1,
            ),
            Phase6::Renewing => (
                rtc.renew_max_rc,
                FailReason6::RenewTimeout,
                Msg::Renew,
                self.rt_renew.1,
            ),
            Phase6::Rebinding => (
                rtc.rebind_max_rc,
                FailReason6::RebindTimeout,
                Msg::Rebind,
                self.rt_rebind.1,
            ),
            _ => return,
        };
        if max_rc != 0 && c.attempt >= max_rc {
            if c.phase == Phase6::Renewing && self.cfg.rebind {
                // The server that granted the binding stayed silent (its
                // T2): any server may extend it.
                self.start_phase(i, Phase6::Rebinding, now, batch);
            } else {
                self.finish(i, Some(fail), now);
            }
            return;
        }
        let rt = self.next_rt(c.rt, 0, mrt, false);
        {
            let c = &mut self.clients[i as usize];
            c.attempt = c.attempt.saturating_add(1);
            c.retries = c.retries.saturating_add(1);
            c.rt = rt;
        }
        self.stats.counters.retries += 1;
        if self.send(i, m, now, batch) {
            self.count_sent(m);
            self.arm(i, now.saturating_add(rt));
        }
    }

    /// The next RT (RFC 8415 §15): from `irt` when `prev` is 0, else
    /// doubled from `prev`; capped at `mrt` (0: no cap); `first_solicit`
    /// makes RAND strictly positive.
    fn next_rt(&mut self, prev: u64, irt: u64, mrt: u64, first_solicit: bool) -> u64 {
        let j = f64::from(self.cfg.retransmit.jitter_pct) / 100.0;
        let rand = if j == 0.0 {
            0.0
        } else if first_solicit {
            // (0, 1] × j.
            (1.0 - self.rng.random::<f64>()) * j
        } else {
            self.rng.random_range(-1.0..=1.0) * j
        };
        let mut rt = if prev == 0 {
            irt as f64 * (1.0 + rand)
        } else {
            prev as f64 * (2.0 + rand)
        };
        if mrt != 0 && rt > mrt as f64 {
            rt = mrt as f64 * (1.0 + rand);
        }
        let mut rt = rt as u64;
        if first_solicit && rand > 0.0 {
            rt = rt.max(irt.saturating_add(1));
        }
        rt.max(1)
    }

    fn new_xid(&mut self) -> u32 {
        self.rng.random::<u32>() & 0x00ff_ffff
    }

    /// Enters `phase` (a new exchange) and sends its first message now.
    fn start_phase(&mut self, i: u32, phase: Phase6, now: u64, batch: &mut TxBatch) {
        let xid = self.new_xid();
        let (m, (irt, mrt)) = match phase {
            Phase6::Soliciting => (Msg::Solicit, self.rt_solicit),
            Phase6::Requesting => (Msg::Request, self.rt_request),
            Phase6::Rebinding => (Msg::Rebind, self.rt_rebind),
            _ => (Msg::Renew, self.rt_renew),
        };
        let rt = self.next_rt(0, irt, mrt, phase == Phase6::Soliciting);
        let c = &mut self.clients[i as usize];
        c.phase = phase;
        c.attempt = 1;
        c.t_phase = now;
        c.rt = rt;
        c.xid = xid;
        if self.send(i, m, now, batch) {
            self.count_sent(m);
            self.arm(i, now.saturating_add(rt));
        }
    }

    fn count_sent(&mut self, m: Msg) {
        let c = &mut self.stats.counters;
        match m {
            Msg::Solicit => c.discover_sent += 1,
            Msg::Request => c.request_sent += 1,
            Msg::Renew => c.renew_sent += 1,
            Msg::Rebind => c.rebind_sent += 1,
            Msg::Release => c.release_sent += 1,
        }
    }

    /// Schedules the first message of the current phase for the next poll.
    fn send_soon(&mut self, i: u32, now: u64) {
        self.clients[i as usize].flags |= SEND_DUE;
        self.arm(i, now);
    }

    fn finish(&mut self, i: u32, fail: Option<FailReason6>, now: u64) {
        self.disarm(i);
        let c = &mut self.clients[i as usize];
        c.flags = 0;
        c.phase = if fail.is_some() {
            Phase6::Failed
        } else {
            Phase6::Done
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
        self.in_flight = self.in_flight.saturating_sub(1);
        self.finished += 1;
        self.t_last = now;
    }

    /// Elapsed Time (hundredths of a second, saturating) since `t0`.
    fn elapsed(&self, t0: u64, now: u64) -> u16 {
        let cs = ticks_to_ns(now.saturating_sub(t0), self.hz) / 10_000_000;
        u16::try_from(cs).unwrap_or(u16::MAX)
    }

    fn server_duid(&self, idx: u8) -> Option<&[u8]> {
        let k = usize::from(idx).checked_sub(1)?;
        self.servers.get(k).map(ServerDuid::bytes)
    }

    /// The table index (+1) of Server ID `sid`, added if new; `None` when
    /// the table is full.
    fn intern_server(&mut self, sid: &[u8]) -> Option<u8> {
        if let Some(k) = self.servers.iter().position(|s| s.bytes() == sid) {
            return u8::try_from(k + 1).ok();
        }
        if self.servers.len() >= MAX_SERVERS || sid.len() > MAX_DUID_LEN {
            return None;
        }
        let mut s = ServerDuid {
            len: sid.len() as u8,
            duid: [0; MAX_DUID_LEN],
        };
        s.duid[..sid.len()].copy_from_slice(sid);
        self.servers.push(s);
        u8::try_from(self.servers.len()).ok()
    }

    /// Whether Server ID `sid` is already known (or there is room for it).
    fn server_known_or_room(&self, sid: &[u8]) -> bool {
        self.servers.len() < MAX_SERVERS || self.servers.iter().any(|s| s.bytes() == sid)
    }

    /// Writes client `i`'s message `m` (client/server format) into `buf`.
    fn write_client_msg(
        &self,
        i: u32,
        m: Msg,
        elapsed: u16,
        buf: &mut [u8],
    ) -> Result<usize, wire6::Error> {
        let c = &self.clients[i as usize];
        let t = match m {
            Msg::Solicit => msg::SOLICIT,
            Msg::Request => msg::REQUEST,
            Msg::Renew => msg::RENEW,
            Msg::Rebind => msg::REBIND,
            Msg::Release => msg::RELEASE,
        };
        let mut w = Writer::message(buf, t, c.xid)?;
        w.option(opt::CLIENTID, &duid_ll(self.client_mac(i).0))?;
        if m != Msg::Solicit && m != Msg::Rebind {
            if let Some(sid) = self.server_duid(c.server) {
                w.option(opt::SERVERID, sid)?;
            }
        }
        w.option(opt::ELAPSED_TIME, &elapsed.to_be_bytes())?;
        if m != Msg::Release {
            w.option(opt::ORO, &OPTION_REQUEST_LIST)?;
        }
        if m == Msg::Solicit && self.cfg.rapid_commit {
            w.option(opt::RAPID_COMMIT, &[])?;
        }
        let hints = m != Msg::Solicit;
        let iaid = self.cfg.iaid;
        if self.cfg.ia_na {
            w.begin(opt::IA_NA, &Writer::ia_fixed(iaid, 0, 0))?;
            if hints && c.addr != [0; 16] {
                let a = IaAddr {
                    addr: Ipv6Addr::from(c.addr),
                    preferred: 0,
                    valid: 0,
                };
                w.option(opt::IAADDR, &Writer::ia_addr(&a))?;
            }
            w.end()?;
        }
        if self.cfg.ia_pd {
            w.begin(opt::IA_PD, &Writer::ia_fixed(iaid, 0, 0))?;
            if hints && c.plen != 0 {
                let p = IaPrefix {
                    preferred: 0,
                    valid: 0,
                    len: c.plen,
                    prefix: Ipv6Addr::from(c.prefix),
                };
                w.option(opt::IAPREFIX, &Writer::ia_prefix(&p))?;
            }
            w.end()?;
        }
        w.finish()
    }

    /// Interface-ID of client `i` into `out` (`None`: option left out).
    fn render_interface_id<'o>(&self, i: u32, out: &'o mut [u8]) -> Option<&'o [u8]> {
        if self.interface_id.is_empty() {
            return None;
        }
        let n = self.interface_id.render(i, out);
        out.get(..n)
    }

    /// Writes the DHCPv6 payload (a RELAY-FORW around the client's message
    /// in relay mode) into `buf`.
    fn write_message(
        &self,
        i: u32,
        m: Msg,
        elapsed: u16,
        buf: &mut [u8],
    ) -> Result<usize, wire6::Error> {
        let Some(r) = &self.cfg.relay else {
            return self.write_client_msg(i, m, elapsed, buf);
        };
        let mut w = Writer::relay(
            buf,
            msg::RELAY_FORW,
            0,
            r.link_address,
            self.client_link_local(i),
        )?;
        let mut id = [0u8; MAX_AGENT_ID_LEN];
        if let Some(v) = self.render_interface_id(i, &mut id) {
            w.option(opt::INTERFACE_ID, v)?;
        }
        if !self.remote_id.is_empty() {
            let mut rid = [0u8; 4 + MAX_AGENT_ID_LEN];
            rid[..4].copy_from_slice(&r.remote_id_enterprise.to_be_bytes());
            let n = self.remote_id.render(i, &mut rid[4..]);
            w.option(opt::REMOTE_ID, &rid[..4 + n])?;
        }
        let at = w.finish()?;
        // The Relay Message option, written in place around the client's
        // message.
        let inner = buf.get_mut(at + 4..).ok_or(wire6::Error::NoRoom)?;
        let n = self.write_client_msg(i, m, elapsed, inner)?;
        let len = u16::try_from(n).map_err(|_| wire6::Error::NoRoom)?;
        let head = buf.get_mut(at..at + 4).ok_or(wire6::Error::NoRoom)?;
        head[..2].copy_from_slice(&opt::RELAY_MSG.to_be_bytes());
        head[2..].copy_from_slice(&len.to_be_bytes());
        Ok(at + 4 + n)
    }

    /// Builds and appends the frame for `m` of client `i`. Returns false
    /// (and fails the client) if it cannot be built; false without failing
    /// if the batch is full.
    fn send(&mut self, i: u32, m: Msg, now: u64, batch: &mut TxBatch) -> bool {
        let elapsed = self.elapsed(self.clients[i as usize].t_phase, now);
        let spec = match &self.cfg.relay {
            None => Frame6Spec {
                src_mac: self.client_mac(i),
                dst_mac: Frame6Spec::mac_for(ALL_RELAYS_AND_SERVERS, MacAddr::BROADCAST),
                vlan: self.cfg.vlan,
                src_ip: self.client_link_local(i),
                dst_ip: ALL_RELAYS_AND_SERVERS,
                src_port: CLIENT_PORT,
                dst_port: SERVER_PORT,
                hop_limit: 1,
            },
            Some(r) => Frame6Spec {
                src_mac: r.relay_mac.unwrap_or(self.cfg.port_mac),
                dst_mac: Frame6Spec::mac_for(r.server_ip, r.server_mac),
                vlan: self.cfg.vlan,
                src_ip: r.relay_ip,
                dst_ip: r.server_ip,
                src_port: SERVER_PORT,
                dst_port: SERVER_PORT,
                hop_limit: RELAY_HOP_LIMIT,
            },
        };
        let Some(buf) = batch.next_buf() else {
            self.stats.counters.tx_buffer_full += 1;
            return false;
        };
        let off = spec.offset();
        let built = self
            .write_message(i, m, elapsed, &mut buf[off..])
            .ok()
            .and_then(|n| spec.emit(&mut buf[..], n).ok());
        match built {
            Some(len) => {
                batch.commit(len);
                true
            }
            None => {
                self.stats.counters.tx_buffer_full += 1;
                self.finish(i, Some(FailReason6::EmitFailed), now);
                false
            }
        }
    }

    fn reject(&mut self, e: ReplyError6) -> ReplyError6 {
        self.stats.reply_errors[e.index()] += 1;
        self.stats.counters.reply_errors += 1;
        e
    }

    /// Takes one received frame at `now`. Every frame is validated (frame
    /// and UDP checksum, port, message format, in relay mode the
    /// RELAY-REPL's link- and peer-address, message type, Client ID,
    /// the client's phase, transaction id, Server ID, the IAs); an invalid
    /// or unexpected one is counted by reason and returned as an error,
    /// and changes no client. In relay mode an accepted reply whose
    /// RELAY-REPL does not echo our Interface-ID unchanged is counted in
    /// `option82_mismatch`. Messages the accepted reply calls for are sent
    /// by the next [`Self::poll`].
    pub fn on_reply(&mut self, now: u64, frame: &[u8]) -> Result<Reply6Event, ReplyError6> {
        let r = self.take_reply(now, frame);
        if let Err(e) = r {
            self.reject(e);
        }
        r
    }

    fn take_reply(&mut self, now: u64, frame: &[u8]) -> Result<Reply6Event, ReplyError6> {
        let p = parse_frame6(frame).map_err(ReplyError6::Frame)?;
        let relayed = self.cfg.relay.is_some();
        let port = if relayed { SERVER_PORT } else { CLIENT_PORT };
        if p.meta.dst_port != port {
            return Err(ReplyError6::WrongPort);
        }
        let outer = Dhcp6Packet::new_checked(p.message(frame)).map_err(ReplyError6::Malformed)?;
        let (m, relay) = match &self.cfg.relay {
            Some(r) => {
                if outer.msg_type() != msg::RELAY_REPL {
                    return Err(ReplyError6::NotRelayReply);
                }
                let inner = match outer.relay_msg() {
                    None => return Err(ReplyError6::RelayNoMessage),
                    Some(Err(e)) => return Err(ReplyError6::Malformed(e)),
                    Some(Ok(m)) => m,
                };
                if inner.is_relay() {
                    return Err(ReplyError6::RelayNested);
                }
                if outer.link_address() != Some(r.link_address) {
                    return Err(ReplyError6::RelayLinkMismatch);
                }
                (inner, Some(outer))
            }
            None => {
                if outer.is_relay() {
                    return Err(ReplyError6::UnexpectedType);
                }
                (outer, None)
            }
        };
        let t = m.msg_type();
        if t != msg::ADVERTISE && t != msg::REPLY {
            return Err(ReplyError6::UnexpectedType);
        }
        let i = m
            .client_id()
            .and_then(|d| self.client_of_duid(d))
            .ok_or(ReplyError6::UnknownClient)?;
        let ll = self.client_link_local(i);
        let mut iface_mismatch = false;
        match &relay {
            Some(o) => {
                if o.peer_address() != Some(ll) {
                    return Err(ReplyError6::PeerAddressMismatch);
                }
                let mut id = [0u8; MAX_AGENT_ID_LEN];
                let want = self.render_interface_id(i, &mut id);
                iface_mismatch = o.option(opt::INTERFACE_ID) != want;
            }
            None => {
                let dst = p.meta.dst_ip;
                if !dst.is_multicast() && dst != ll {
                    return Err(ReplyError6::ClientIdMismatch);
                }
            }
        }
        let c = self.clients[i as usize];
        if c.phase == Phase6::Done && c.flags & RELEASED != 0 && t == msg::REPLY {
            if m.xid() != c.xid {
                return Err(ReplyError6::XidMismatch);
            }
            return Ok(Reply6Event::Released(i));
        }
        if !matches!(
            c.phase,
            Phase6::Soliciting | Phase6::Requesting | Phase6::Renewing | Phase6::Rebinding
        ) {
            return Err(ReplyError6::NotWaiting);
        }
        if m.xid() != c.xid {
            return Err(ReplyError6::XidMismatch);
        }
        let sid = m
            .server_id()
            .filter(|s| (1..=MAX_DUID_LEN).contains(&s.len()))
            .ok_or(ReplyError6::NoServerId)?;
        let event = match (t, c.phase) {
            (msg::ADVERTISE, Phase6::Soliciting) => self.on_advertise(now, i, &m, sid)?,
            (msg::REPLY, Phase6::Soliciting) if self.cfg.rapid_commit && m.rapid_commit() => {
                if !self.server_known_or_room(sid) {
                    return Err(ReplyError6::TooManyServers);
                }
                let server = self.intern_server(sid).unwrap_or(0);
                self.on_bind_reply(now, i, &m, Some(server))
            }
            (msg::REPLY, Phase6::Requesting | Phase6::Renewing) => {
                if self.server_duid(c.server) != Some(sid) {
                    return Err(ReplyError6::ServerIdMismatch);
                }
                self.on_bind_reply(now, i, &m, None)
            }
            (msg::REPLY, Phase6::Rebinding) => {
                // Any server may answer a REBIND; the client follows it.
                if !self.server_known_or_room(sid) {
                    return Err(ReplyError6::TooManyServers);
                }
                let server = self.intern_server(sid).unwrap_or(0);
                self.on_bind_reply(now, i, &m, Some(server))
            }
            _ => return Err(ReplyError6::NotWaiting),
        };
        if iface_mismatch {
            self.stats.counters.option82_mismatch += 1;
        }
        Ok(event)
    }

    /// What `m` grants for the configured IAs, or the status saying why it
    /// grants less.
    fn lease_of(&self, m: &Dhcp6Packet<'_>) -> Result<Lease6, u16> {
        if let Some((code, _)) = m.status() {
            if code != status::SUCCESS {
                return Err(code);
            }
        }
        let na = if self.cfg.ia_na {
            Some(ia_na_addr(m, self.cfg.iaid)?)
        } else {
            None
        };
        let pd = if self.cfg.ia_pd {
            Some(ia_pd_prefix(m, self.cfg.iaid)?)
        } else {
            None
        };
        Ok((na, pd))
    }

    fn store_lease(&mut self, i: u32, lease: Lease6) {
        let c = &mut self.clients[i as usize];
        c.addr = lease.0.map_or([0; 16], |a| a.octets());
        let (prefix, plen) = lease.1.map_or(([0; 16], 0), |(p, l)| (p.octets(), l));
        c.prefix = prefix;
        c.plen = plen;
    }

    /// An ADVERTISE with our transaction id for a soliciting client.
    fn on_advertise(
        &mut self,
        now: u64,
        i: u32,
        m: &Dhcp6Packet<'_>,
        sid: &[u8],
    ) -> Result<Reply6Event, ReplyError6> {
        let lease = match self.lease_of(m) {
            Ok(l) => l,
            Err(code) => return Ok(self.error_status(now, i, code, false)),
        };
        if !self.server_known_or_room(sid) {
            return Err(ReplyError6::TooManyServers);
        }
        let server = self.intern_server(sid).unwrap_or(0);
        let c = self.clients[i as usize];
        self.stats.counters.offer_received += 1;
        self.stats
            .discover_offer
            .record(ticks_to_ns(now.saturating_sub(c.t_phase), self.hz));
        self.store_lease(i, lease);
        let cm = &mut self.clients[i as usize];
        cm.server = server;
        cm.phase = Phase6::Requesting;
        self.send_soon(i, now);
        Ok(Reply6Event::Advertise(i))
    }

    /// A REPLY with our transaction id to a REQUEST / RENEW, or a Rapid
    /// Commit REPLY to a SOLICIT (`rapid_server`: its interned Server ID).
    fn on_bind_reply(
        &mut self,
        now: u64,
        i: u32,
        m: &Dhcp6Packet<'_>,
        rapid_server: Option<u8>,
    ) -> Reply6Event {
        let lease = match self.lease_of(m) {
            Ok(l) => l,
            Err(code) => return self.error_status(now, i, code, true),
        };
        let c = self.clients[i as usize];
        self.disarm(i);
        self.stats.counters.ack_received += 1;
        let elapsed = ticks_to_ns(now.saturating_sub(c.t_phase), self.hz);
        let renewed = matches!(c.phase, Phase6::Renewing | Phase6::Rebinding);
        if renewed {
            if c.phase == Phase6::Rebinding {
                self.stats.counters.rebind_ack += 1;
            } else {
                self.stats.counters.renew_ack += 1;
            }
            self.stats.renew.record(elapsed);
        } else {
            self.stats.counters.bound += 1;
            if c.phase == Phase6::Requesting {
                self.stats.request_ack.record(elapsed);
            }
            self.stats
                .total
                .record(ticks_to_ns(now.saturating_sub(c.t_start), self.hz));
        }
        self.store_lease(i, lease);
        if let Some(s) = rapid_server {
            self.clients[i as usize].server = s;
        }
        match self.renew_ticks {
            Some(t) if !renewed => {
                self.clients[i as usize].phase = Phase6::Bound;
                self.clients[i as usize].flags |= SEND_DUE;
                self.arm(i, now.saturating_add(t));
            }
            _ if self.cfg.release => {
                self.clients[i as usize].phase = Phase6::Releasing;
                self.send_soon(i, now);
            }
            _ => self.finish(i, None, now),
        }
        if renewed {
            Reply6Event::Renewed(i)
        } else {
            Reply6Event::Bound(i, lease.0, lease.1)
        }
    }

    /// An error status (`reply`: in a REPLY, else in an ADVERTISE).
    fn error_status(&mut self, now: u64, i: u32, code: u16, reply: bool) -> Reply6Event {
        self.stats.statuses[status_slot(code)] += 1;
        if reply {
            self.stats.counters.nak_received += 1;
        }
        let naks = {
            let c = &mut self.clients[i as usize];
            c.naks = c.naks.saturating_add(1);
            c.naks
        };
        if naks > self.cfg.max_naks {
            let r = if reply {
                FailReason6::TooManyErrors
            } else {
                FailReason6::NoAddrsAvail
            };
            self.finish(i, Some(r), now);
        } else if reply {
            // Back to SOLICIT (a new exchange, sent by the next poll).
            self.disarm(i);
            self.store_lease(i, (None, None));
            let c = &mut self.clients[i as usize];
            c.server = 0;
            c.phase = Phase6::Soliciting;
            self.send_soon(i, now);
        }
        // An ADVERTISE without a lease is ignored (RFC 8415 §18.2.9): the
        // SOLICIT's retransmission timer runs on.
        Reply6Event::Error(i)
    }

    /// The final (or a running) report at `now`. Allocates. The `errors`
    /// map holds failure reasons ([`FailReason6::as_str`]), reply errors
    /// ([`ReplyError6::as_str`]), error statuses ([`status_name`]) and
    /// `interface_id_mismatch`.
    pub fn report(&self, now: u64) -> TesterReport {
        let c = &self.stats.counters;
        let end = if self.is_finished() { self.t_last } else { now };
        let elapsed_s = self.t_first.map_or(0.0, |t0| {
            ticks_to_ns(end.saturating_sub(t0), self.hz) as f64 / 1e9
        });
        let finished = c.done + c.failed;
        let mut errors = BTreeMap::new();
        for r in FailReason6::ALL {
            let n = self.stats.failures[r as usize];
            if n > 0 {
                errors.insert(r.as_str(), n);
            }
        }
        for (k, &n) in self.stats.reply_errors.iter().enumerate() {
            if n > 0 {
                errors.insert(ReplyError6::name_of_index(k), n);
            }
        }
        for (k, &n) in self.stats.statuses.iter().enumerate() {
            if n > 0 {
                errors.insert(status_name(k as u16), n);
            }
        }
        if c.option82_mismatch > 0 {
            errors.insert("interface_id_mismatch", c.option82_mismatch);
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
mod tests {
    use super::*;
    use crate::frame6::Parsed6;
    use crate::server6::{Server6, Server6Config};
    use proptest::prelude::*;
    use std::collections::{HashMap, HashSet};

    const HZ: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;
    const SRV_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x53]);

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn server_cfg(addrs: u32) -> Server6Config {
        Server6Config {
            duid: duid_ll(SRV_MAC.0).to_vec(),
            addr_first: a("2001:db8:1::100"),
            addr_count: addrs,
            pd: Some((a("2001:db8:100::"), 40, 56)),
            preferred_s: 300,
            valid_s: 600,
            t1_s: 150,
            t2_s: 240,
            rapid_commit: true,
            preference: 0,
            offer_hold_s: 30,
        }
    }

    fn relay_cfg() -> Relay6Config {
        Relay6Config {
            link_address: a("2001:db8:1::1"),
            relay_ip: a("2001:db8:1::1"),
            relay_mac: Some(MacAddr([2, 0, 0, 0, 0, 0xaa])),
            server_ip: a("2001:db8:ffff::53"),
            server_mac: SRV_MAC,
            interface_id: "eth0/{index}".into(),
            remote_id: "cpe-{index}".into(),
            remote_id_enterprise: 9,
        }
    }

    /// The client's message in a frame the tester sent (a RELAY-FORW's
    /// Relay Message in relay mode).
    fn client_message(frame: &[u8]) -> Vec<u8> {
        let p = parse_frame6(frame).unwrap();
        let m = Dhcp6Packet::new_checked(p.message(frame)).unwrap();
        if m.is_relay() {
            m.option(opt::RELAY_MSG).unwrap().to_vec()
        } else {
            p.message(frame).to_vec()
        }
    }

    /// The frame carrying `msg` from the server back to where `to` came
    /// from (the client's link-local port 546, or the relay port 547).
    fn reply_frame(to: &Parsed6, msg: &[u8]) -> Vec<u8> {
        reply_frame_to(to.meta.src_mac, to.meta.src_ip, to.meta.src_port, msg)
    }

    fn reply_frame_to(mac: MacAddr, ip: Ipv6Addr, port: u16, msg: &[u8]) -> Vec<u8> {
        let spec = Frame6Spec {
            src_mac: SRV_MAC,
            dst_mac: mac,
            vlan: None,
            src_ip: link_local(SRV_MAC),
            dst_ip: ip,
            src_port: SERVER_PORT,
            dst_port: port,
            hop_limit: 64,
        };
        let mut f = vec![0u8; spec.offset() + msg.len()];
        f[spec.offset()..].copy_from_slice(msg);
        let n = spec.emit(&mut f, msg.len()).unwrap();
        f.truncate(n);
        f
    }

    #[derive(Debug, Clone, Copy)]
    struct Sent {
        client: u32,
        t: u8,
        xid: u32,
        elapsed: u16,
        server_id: bool,
    }

    /// Rewrites a server's reply.
    type Tamper = fn(&[u8]) -> Vec<u8>;

    /// The server on the other side of the wire, with faults.
    struct Net {
        server: Server6,
        replies: u64,
        /// Drop every n-th reply (0: none).
        drop_every: u64,
        /// Message types the server does not see.
        ignore: Vec<u8>,
        /// Rewrites each reply.
        tamper: Option<Tamper>,
        sent: Vec<Sent>,
        events: Vec<Result<Reply6Event, ReplyError6>>,
    }

    impl Net {
        fn new(cfg: &Server6Config) -> Net {
            Net {
                server: Server6::new(cfg).unwrap(),
                replies: 0,
                drop_every: 0,
                ignore: Vec::new(),
                tamper: None,
                sent: Vec::new(),
                events: Vec::new(),
            }
        }

        fn exchange(&mut self, t: &mut Tester6, now: u64, frame: &[u8]) {
            let p = parse_frame6(frame).unwrap();
            let cm = client_message(frame);
            let m = Dhcp6Packet::new_checked(&cm).unwrap();
            let duid = m.client_id().unwrap();
            let client = (mac_to_u64(&duid[4..]) - mac_to_u64(&t.client_mac(0).0)) as u32;
            self.sent.push(Sent {
                client,
                t: m.msg_type(),
                xid: m.xid(),
                elapsed: m.elapsed_time().unwrap(),
                server_id: m.server_id().is_some(),
            });
            if self.ignore.contains(&m.msg_type()) {
                return;
            }
            let mut out = [0u8; 2048];
            let Ok(n) = self.server.handle(now / HZ, p.message(frame), &mut out) else {
                return;
            };
            self.replies += 1;
            if self.drop_every > 0 && self.replies % self.drop_every == 0 {
                return;
            }
            let reply = match self.tamper {
                Some(f) => f(&out[..n]),
                None => out[..n].to_vec(),
            };
            let f = reply_frame(&p, &reply);
            self.events.push(t.on_reply(now, &f));
        }

        fn count(&self, t: u8) -> usize {
            self.sent.iter().filter(|s| s.t == t).count()
        }
    }

    /// Polls every `step` until the tester finishes (or `limit`); returns
    /// the time reached.
    fn run(t: &mut Tester6, net: &mut Net, step: u64, limit: u64) -> u64 {
        let mut batch = TxBatch::new(64);
        let mut now = 0;
        while !t.is_finished() && now <= limit {
            batch.clear();
            t.poll(now, &mut batch);
            for f in batch.iter() {
                net.exchange(t, now, f);
            }
            now += step;
        }
        now
    }

    #[test]
    fn client_record_is_small() {
        assert_eq!(CLIENT_RECORD_BYTES, 88);
    }

    #[test]
    fn a_million_clients_fit() {
        let mut t = Tester6::new(&Tester6Config::new(1_000_000), HZ).unwrap();
        assert!(t.state_bytes() <= 1_000_000 * 96 + WHEEL_SLOTS * 4 + MAX_SERVERS * 256);
        let mut b = TxBatch::new(256);
        assert_eq!(t.poll(0, &mut b), 256);
        assert_eq!(t.in_flight(), 256);
        assert_eq!(
            t.client_mac(999_999),
            MacAddr([0x02, 0, 0, 0x0f, 0x42, 0x3f])
        );
    }

    #[test]
    fn configurations_are_checked() {
        let ok = Tester6Config::new(10);
        assert!(Tester6::new(&ok, HZ).is_ok());
        let mut c = ok.clone();
        c.concurrency = 0;
        assert_eq!(
            Tester6::new(&c, HZ).unwrap_err(),
            Tester6ConfigError::ZeroConcurrency
        );
        let mut c = ok.clone();
        c.ia_na = false;
        assert_eq!(Tester6::new(&c, HZ).unwrap_err(), Tester6ConfigError::NoIa);
        let mut c = ok.clone();
        c.retransmit.request_mrt = Duration::from_millis(10);
        assert_eq!(
            Tester6::new(&c, HZ).unwrap_err(),
            Tester6ConfigError::BadRetransmit
        );
        let mut c = ok.clone();
        c.retransmit.renew_irt = Duration::ZERO;
        assert_eq!(
            Tester6::new(&c, HZ).unwrap_err(),
            Tester6ConfigError::BadRetransmit
        );
        let mut c = ok.clone();
        c.retransmit.solicit_mrt = Duration::ZERO; // no cap: fine
        assert!(Tester6::new(&c, HZ).is_ok());
        let mut c = ok.clone();
        c.retransmit.jitter_pct = 101;
        assert_eq!(
            Tester6::new(&c, HZ).unwrap_err(),
            Tester6ConfigError::BadJitter
        );
        let mut c = ok.clone();
        c.relay = Some(Relay6Config::new(a("2001:db8::1"), Ipv6Addr::UNSPECIFIED));
        assert_eq!(
            Tester6::new(&c, HZ).unwrap_err(),
            Tester6ConfigError::BadRelay
        );
        let mut c = ok.clone();
        c.base_mac = MacAddr([0xff; 6]);
        assert_eq!(
            Tester6::new(&c, HZ).unwrap_err(),
            Tester6ConfigError::MacRangeOverflow
        );
        let mut c = ok.clone();
        c.pacing = Pacing::Rate {
            per_sec: 0,
            burst: 1,
        };
        assert_eq!(
            Tester6::new(&c, HZ).unwrap_err(),
            Tester6ConfigError::BadRate
        );
        assert_eq!(Tester6ConfigError::NoIa.to_string(), "no_ia");
    }

    #[test]
    fn reply_error_names_are_distinct() {
        let names: HashSet<&str> = (0..ReplyError6::COUNT)
            .map(ReplyError6::name_of_index)
            .collect();
        assert_eq!(names.len(), ReplyError6::COUNT);
        assert_eq!(ReplyError6::name_of_index(ReplyError6::COUNT), "unknown");
        assert_eq!(ReplyError6::TooManyServers.index(), ReplyError6::COUNT - 1);
        assert_eq!(
            ReplyError6::Malformed(wire6::Error::BadOption).as_str(),
            "dhcp6_bad_option"
        );
        assert_eq!(
            ReplyError6::Frame(Frame6Error::BadUdpChecksum).to_string(),
            "bad_udp_checksum"
        );
        let fails: HashSet<&str> = FailReason6::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(fails.len(), FailReason6::ALL.len());
        assert!(fails.is_disjoint(&names));
    }

    #[test]
    fn a_solicit_is_a_link_scoped_multicast_with_the_rfc_options() {
        let mut c = Tester6Config::new(2);
        c.ia_pd = true;
        c.rapid_commit = true;
        c.vlan = Some(7);
        c.iaid = 0x0102_0304;
        let mut t = Tester6::new(&c, HZ).unwrap();
        let mut b = TxBatch::new(8);
        assert_eq!(t.poll(0, &mut b), 2);
        let f = b.get(1).unwrap();
        let p = parse_frame6(f).unwrap();
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        assert_eq!(t.client_mac(1), mac);
        assert_eq!(t.client_link_local(1), a("fe80::ff:fe00:1"));
        assert_eq!(p.meta.src_mac, mac);
        assert_eq!(p.meta.dst_mac, MacAddr([0x33, 0x33, 0, 1, 0, 2]));
        assert_eq!(p.meta.vlan, Some(7));
        assert_eq!(p.meta.src_ip, t.client_link_local(1));
        assert_eq!(p.meta.dst_ip, ALL_RELAYS_AND_SERVERS);
        assert_eq!((p.meta.src_port, p.meta.dst_port), (546, 547));
        assert_eq!(f[18 + 7], 1, "hop limit 1");
        let m = Dhcp6Packet::new_checked(p.message(f)).unwrap();
        assert_eq!(m.msg_type(), msg::SOLICIT);
        assert!(m.xid() < 1 << 24);
        assert_eq!(m.client_id(), Some(&duid_ll(mac.0)[..]));
        assert_eq!(m.server_id(), None);
        assert_eq!(m.elapsed_time(), Some(0));
        assert_eq!(m.option(opt::ORO), Some(&[0u8, 23][..]));
        assert!(m.rapid_commit());
        let na: Vec<_> = m.ia_nas().collect();
        let pd: Vec<_> = m.ia_pds().collect();
        assert_eq!((na.len(), pd.len()), (1, 1));
        assert_eq!((na[0].iaid, na[0].t1, na[0].t2), (0x0102_0304, 0, 0));
        assert_eq!(na[0].addrs().count(), 0);
        assert_eq!(pd[0].iaid, 0x0102_0304);
        assert_eq!(pd[0].prefixes().count(), 0);
        assert_eq!(t.client_phase(1), Some(Phase6::Soliciting));
        assert_eq!(t.stats().counters.discover_sent, 2);
    }

    #[test]
    fn a_thousand_clients_bind_unique_addresses_in_the_range() {
        let mut net = Net::new(&server_cfg(2000));
        let mut t = Tester6::new(&Tester6Config::new(1000), HZ).unwrap();
        let now = run(&mut t, &mut net, MS, 60 * HZ);
        assert!(t.is_finished());
        let c = &t.stats().counters;
        assert_eq!(
            (c.started, c.done, c.failed, c.bound),
            (1000, 1000, 0, 1000)
        );
        assert_eq!(
            (
                c.discover_sent,
                c.offer_received,
                c.request_sent,
                c.ack_received
            ),
            (1000, 1000, 1000, 1000)
        );
        assert_eq!((c.reply_errors, c.nak_received, c.retries), (0, 0, 0));
        let first = u128::from(a("2001:db8:1::100"));
        let mut seen = HashSet::new();
        for i in 0..1000 {
            let addr = t.client_addr(i).unwrap();
            let v = u128::from(addr);
            assert!(v >= first && v < first + 2000, "{addr}");
            assert!(seen.insert(addr), "{addr} twice");
            assert_eq!(t.client_prefix(i), None);
            assert_eq!(t.client_phase(i), Some(Phase6::Done));
        }
        assert_eq!(net.server.bound(), (1000, 0));
        // REQUESTs carry the server's ID and the advertised address.
        assert_eq!(net.count(msg::REQUEST), 1000);
        let r = t.report(now);
        assert_eq!(r.success_rate, 1.0);
        assert_eq!(r.discover_offer.count, 1000);
        assert_eq!(r.request_ack.count, 1000);
        assert_eq!(r.total.count, 1000);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.retries_histogram, vec![(0, 1000)]);
        assert!(net
            .events
            .iter()
            .all(|e| matches!(e, Ok(Reply6Event::Advertise(_) | Reply6Event::Bound(..)))));
    }

    #[test]
    fn a_request_names_the_server_and_hints_the_advertised_lease() {
        let mut net = Net::new(&server_cfg(10));
        let mut c = Tester6Config::new(1);
        c.ia_pd = true;
        let mut t = Tester6::new(&c, HZ).unwrap();
        let mut b = TxBatch::new(4);
        t.poll(0, &mut b);
        net.exchange(&mut t, 0, b.get(0).unwrap());
        assert_eq!(net.events.last(), Some(&Ok(Reply6Event::Advertise(0))));
        b.clear();
        assert_eq!(t.poll(MS, &mut b), 1);
        let m = client_message(b.get(0).unwrap());
        let p = Dhcp6Packet::new_checked(&m).unwrap();
        assert_eq!(p.msg_type(), msg::REQUEST);
        assert_ne!(p.xid(), net.sent[0].xid, "a new transaction");
        assert_eq!(p.server_id(), Some(&duid_ll(SRV_MAC.0)[..]));
        assert_eq!(p.elapsed_time(), Some(0));
        let na = p.ia_nas().next().unwrap();
        assert_eq!(
            na.addrs().next().map(|x| x.addr),
            Some(a("2001:db8:1::100"))
        );
        let pd = p.ia_pds().next().unwrap().prefixes().next().unwrap();
        assert_eq!((pd.prefix, pd.len), (a("2001:db8:100::"), 56));
    }

    #[test]
    fn addresses_and_prefixes_together() {
        let mut net = Net::new(&server_cfg(1000));
        let mut c = Tester6Config::new(300);
        c.ia_pd = true;
        let mut t = Tester6::new(&c, HZ).unwrap();
        run(&mut t, &mut net, MS, 60 * HZ);
        assert_eq!(t.stats().counters.done, 300);
        assert_eq!(net.server.bound(), (300, 300));
        let agg = u128::from(a("2001:db8:100::"));
        let mut prefixes = HashSet::new();
        let mut addrs = HashSet::new();
        for i in 0..300 {
            let (p, len) = t.client_prefix(i).unwrap();
            assert_eq!(len, 56);
            assert_eq!(u128::from(p) >> 88, agg >> 88, "{p} inside the /40");
            assert!(prefixes.insert(p));
            assert!(addrs.insert(t.client_addr(i).unwrap()));
        }
        let bound: Vec<_> = net
            .events
            .iter()
            .filter_map(|e| match e {
                Ok(Reply6Event::Bound(i, na, pd)) => Some((*i, *na, *pd)),
                _ => None,
            })
            .collect();
        assert_eq!(bound.len(), 300);
        for (i, na, pd) in bound {
            assert_eq!(na, t.client_addr(i));
            assert_eq!(pd, t.client_prefix(i));
        }
    }

    #[test]
    fn rapid_commit_binds_in_one_round_trip() {
        let mut net = Net::new(&server_cfg(1000));
        let mut c = Tester6Config::new(200);
        c.rapid_commit = true;
        c.ia_pd = true;
        let mut t = Tester6::new(&c, HZ).unwrap();
        run(&mut t, &mut net, MS, 60 * HZ);
        let s = t.stats();
        let c = &s.counters;
        assert_eq!((c.done, c.bound, c.ack_received), (200, 200, 200));
        assert_eq!(
            (c.discover_sent, c.offer_received, c.request_sent),
            (200, 0, 0)
        );
        assert_eq!(net.count(msg::REQUEST), 0);
        assert_eq!(net.server.bound(), (200, 200));
        assert_eq!(
            (
                s.discover_offer.count(),
                s.request_ack.count(),
                s.total.count()
            ),
            (0, 0, 200)
        );
        // A server without Rapid Commit: the four-message exchange.
        let mut sc = server_cfg(1000);
        sc.rapid_commit = false;
        let mut net = Net::new(&sc);
        let mut c = Tester6Config::new(50);
        c.rapid_commit = true;
        let mut t = Tester6::new(&c, HZ).unwrap();
        run(&mut t, &mut net, MS, 60 * HZ);
        let c = &t.stats().counters;
        assert_eq!((c.done, c.offer_received, c.request_sent), (50, 50, 50));
    }

    #[test]
    fn relay_mode_wraps_in_relay_forw_with_interface_and_remote_id() {
        let mut net = Net::new(&server_cfg(1000));
        let mut c = Tester6Config::new(100);
        c.relay = Some(relay_cfg());
        c.ia_pd = true;
        let mut t = Tester6::new(&c, HZ).unwrap();
        // The first frame, field by field.
        let mut b = TxBatch::new(4);
        t.poll(0, &mut b);
        let f = b.get(0).unwrap();
        let p = parse_frame6(f).unwrap();
        assert_eq!(p.meta.src_mac, MacAddr([2, 0, 0, 0, 0, 0xaa]));
        assert_eq!(p.meta.dst_mac, SRV_MAC);
        assert_eq!(p.meta.src_ip, a("2001:db8:1::1"));
        assert_eq!(p.meta.dst_ip, a("2001:db8:ffff::53"));
        assert_eq!((p.meta.src_port, p.meta.dst_port), (547, 547));
        let m = Dhcp6Packet::new_checked(p.message(f)).unwrap();
        assert_eq!((m.msg_type(), m.hop_count()), (msg::RELAY_FORW, 0));
        assert_eq!(m.link_address(), Some(a("2001:db8:1::1")));
        assert_eq!(m.peer_address(), Some(t.client_link_local(0)));
        assert_eq!(m.option(opt::INTERFACE_ID), Some(&b"eth0/0"[..]));
        assert_eq!(m.option(opt::REMOTE_ID), Some(&b"\0\0\0\x09cpe-0"[..]));
        let inner = m.relay_msg().unwrap().unwrap();
        assert_eq!(inner.msg_type(), msg::SOLICIT);
        assert_eq!(inner.client_id(), Some(&duid_ll(t.client_mac(0).0)[..]));
        let f3 = b.get(3).unwrap();
        let m3 = Dhcp6Packet::new_checked(parse_frame6(f3).unwrap().message(f3)).unwrap();
        assert_eq!(m3.option(opt::INTERFACE_ID), Some(&b"eth0/3"[..]));
        // The whole run.
        let mut t = Tester6::new(&c, HZ).unwrap();
        run(&mut t, &mut net, MS, 60 * HZ);
        let c2 = &t.stats().counters;
        assert_eq!((c2.done, c2.bound), (100, 100));
        assert_eq!((c2.option82_mismatch, c2.reply_errors), (0, 0));
        assert_eq!(net.server.bound(), (100, 100));

        // A relay to ff02::1:2 (multicast MAC), without the options.
        let mut c = Tester6Config::new(3);
        c.relay = Some(Relay6Config::new(a("2001:db8:1::1"), a("2001:db8:1::1")));
        let mut t = Tester6::new(&c, HZ).unwrap();
        let mut b = TxBatch::new(4);
        t.poll(0, &mut b);
        let f = b.get(0).unwrap();
        let p = parse_frame6(f).unwrap();
        assert_eq!(p.meta.src_mac, MacAddr([2, 0, 0, 0, 0, 0xff]), "port MAC");
        assert_eq!(p.meta.dst_mac, MacAddr([0x33, 0x33, 0, 1, 0, 2]));
        let m = Dhcp6Packet::new_checked(p.message(f)).unwrap();
        assert_eq!(m.option(opt::INTERFACE_ID), None);
        assert_eq!(m.option(opt::REMOTE_ID), None);
        let mut net = Net::new(&server_cfg(10));
        run(&mut t, &mut net, MS, 60 * HZ);
        assert_eq!(t.stats().counters.done, 3);
        assert_eq!(t.stats().counters.option82_mismatch, 0);
    }

    /// The server's RELAY-REPL with another Interface-ID.
    fn tamper_interface_id(m: &[u8]) -> Vec<u8> {
        let p = Dhcp6Packet::new_checked(m).unwrap();
        let mut b = vec![0u8; 2048];
        let mut w = Writer::relay(
            &mut b,
            msg::RELAY_REPL,
            p.hop_count(),
            p.link_address().unwrap(),
            p.peer_address().unwrap(),
        )
        .unwrap();
        w.option(opt::INTERFACE_ID, b"tampered").unwrap();
        w.option(opt::RELAY_MSG, p.option(opt::RELAY_MSG).unwrap())
            .unwrap();
        let n = w.finish().unwrap();
        b.truncate(n);
        b
    }

    #[test]
    fn a_tampered_interface_id_is_counted() {
        let mut net = Net::new(&server_cfg(100));
        net.tamper = Some(tamper_interface_id);
        let mut c = Tester6Config::new(20);
        c.relay = Some(relay_cfg());
        let mut t = Tester6::new(&c, HZ).unwrap();
        let now = run(&mut t, &mut net, MS, 60 * HZ);
        let c = &t.stats().counters;
        assert_eq!(c.done, 20, "still accepted");
        assert_eq!(c.option82_mismatch, 40, "20 ADVERTISEs and 20 REPLYs");
        assert_eq!(t.report(now).errors.get("interface_id_mismatch"), Some(&40));
    }

    #[test]
    fn dropped_replies_are_recovered_by_retransmission_with_the_same_xid() {
        let mut net = Net::new(&server_cfg(1000));
        net.drop_every = 3;
        let mut c = Tester6Config::new(300);
        c.ia_pd = true;
        let mut t = Tester6::new(&c, HZ).unwrap();
        let now = run(&mut t, &mut net, MS, 600 * HZ);
        let c = &t.stats().counters;
        assert_eq!((c.done, c.failed), (300, 0));
        assert!(c.retries > 0 && c.timeouts >= c.retries, "{c:?}");
        assert_eq!(net.server.bound(), (300, 300));
        // Every retransmission (Elapsed Time > 0) keeps its exchange's xid;
        // every new exchange starts at Elapsed Time 0.
        let mut xid: HashMap<(u32, u8), u32> = HashMap::new();
        let mut retransmitted = 0;
        for s in &net.sent {
            if s.elapsed == 0 {
                xid.insert((s.client, s.t), s.xid);
            } else {
                retransmitted += 1;
                assert_eq!(xid.get(&(s.client, s.t)), Some(&s.xid), "{s:?}");
            }
        }
        assert_eq!(retransmitted as u64, c.retries);
        let r = t.report(now);
        assert!(r.retries_histogram.iter().any(|&(k, n)| k > 0 && n > 0));
    }

    /// The times (ns) and Elapsed Times of the SOLICITs of one client that
    /// never hears back, polled every `step`.
    fn solicit_times(cfg: &Tester6Config, step: u64) -> (Tester6, Vec<(u64, u32, u16)>) {
        let mut t = Tester6::new(cfg, HZ).unwrap();
        let mut batch = TxBatch::new(4);
        let mut sent = Vec::new();
        let mut now = 0;
        while !t.is_finished() && now < 2000 * HZ {
            batch.clear();
            t.poll(now, &mut batch);
            for f in batch.iter() {
                let m = client_message(f);
                let p = Dhcp6Packet::new_checked(&m).unwrap();
                assert_eq!(p.msg_type(), msg::SOLICIT);
                sent.push((now, p.xid(), p.elapsed_time().unwrap()));
            }
            now += step;
        }
        (t, sent)
    }

    #[test]
    fn solicit_retransmission_follows_rfc_8415_timing() {
        let step = 100_000; // 0.1 ms
        let tol = 2.0 * step as f64 / 1e9;
        let mut firsts = Vec::new();
        for seed in 1..=5 {
            let mut c = Tester6Config::new(1);
            c.seed = seed;
            c.retransmit.solicit_mrt = Duration::from_secs(5);
            c.retransmit.solicit_max_rc = 8;
            let (t, sent) = solicit_times(&c, step);
            assert_eq!(sent.len(), 8, "solicit_max_rc transmissions");
            assert_eq!(t.stats().failed(FailReason6::SolicitTimeout), 1);
            let c = &t.stats().counters;
            assert_eq!((c.discover_sent, c.retries, c.timeouts), (8, 7, 8));
            assert!(sent.iter().all(|s| s.1 == sent[0].1), "one xid");
            let d: Vec<f64> = sent
                .windows(2)
                .map(|w| (w[1].0 - w[0].0) as f64 / 1e9)
                .collect();
            // First RT: IRT + RAND × IRT with RAND in (0, 0.1].
            assert!(d[0] > 1.0 && d[0] <= 1.1 + tol, "{d:?}");
            firsts.push(d[0]);
            let mut capped = 0;
            for k in 1..d.len() {
                let doubled = d[k] >= 1.9 * d[k - 1] - tol
                    && d[k] <= 2.1 * d[k - 1] + tol
                    && d[k] <= 5.0 + tol;
                let cap = d[k] >= 4.5 - tol && d[k] <= 5.5 + tol;
                assert!(doubled || cap, "{k}: {d:?}");
                capped += usize::from(cap && !doubled);
            }
            assert!(capped >= 3, "{d:?}");
            // Elapsed Time: hundredths of a second since the first SOLICIT.
            for w in sent.windows(2) {
                assert!(w[1].2 > w[0].2);
            }
            for s in &sent {
                assert_eq!(u64::from(s.2), (s.0 - sent[0].0) / 10_000_000);
            }
        }
        assert!(
            firsts.windows(2).any(|w| w[0] != w[1]),
            "RAND varies: {firsts:?}"
        );
        // Without jitter: exactly 1, 2, 4, then the 5 s cap.
        let mut c = Tester6Config::new(1);
        c.retransmit.jitter_pct = 0;
        c.retransmit.solicit_mrt = Duration::from_secs(5);
        c.retransmit.solicit_max_rc = 6;
        let (_, sent) = solicit_times(&c, MS);
        let d: Vec<u64> = sent.windows(2).map(|w| (w[1].0 - w[0].0) / MS).collect();
        assert_eq!(d, vec![1000, 2000, 4000, 5000, 5000]);
        assert_eq!(sent.last().unwrap().2, 1700);
    }

    #[test]
    fn elapsed_time_saturates() {
        let mut c = Tester6Config::new(1);
        c.retransmit.jitter_pct = 0;
        c.retransmit.solicit_irt = Duration::from_secs(700);
        c.retransmit.solicit_max_rc = 3;
        let (_, sent) = solicit_times(&c, 100 * MS);
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[1].2, 0xffff);
    }

    #[test]
    fn unanswered_requests_fail_the_client() {
        let mut net = Net::new(&server_cfg(100));
        net.ignore.push(msg::REQUEST);
        let mut c = Tester6Config::new(10);
        c.retransmit.request_irt = Duration::from_millis(100);
        c.retransmit.request_mrt = Duration::from_millis(400);
        c.retransmit.request_max_rc = 3;
        let mut t = Tester6::new(&c, HZ).unwrap();
        let now = run(&mut t, &mut net, MS, 60 * HZ);
        let s = t.stats();
        assert_eq!(s.failed(FailReason6::RequestTimeout), 10);
        assert_eq!((s.counters.request_sent, s.counters.retries), (30, 20));
        assert_eq!(t.report(now).success_rate, 0.0);
        assert_eq!(t.client_addr(0), None);
    }

    #[test]
    fn renew_and_release() {
        let mut net = Net::new(&server_cfg(1000));
        let mut c = Tester6Config::new(100);
        c.ia_pd = true;
        c.renew_after = Some(Duration::from_secs(10));
        c.release = true;
        let mut t = Tester6::new(&c, HZ).unwrap();
        // Bound first: the server holds the leases.
        let mut batch = TxBatch::new(64);
        let mut now = 0;
        while now < 5 * HZ {
            batch.clear();
            t.poll(now, &mut batch);
            for f in batch.iter() {
                net.exchange(&mut t, now, f);
            }
            now += MS;
        }
        assert_eq!(t.stats().counters.bound, 100);
        assert_eq!(t.client_phase(0), Some(Phase6::Bound));
        assert_eq!(net.server.bound(), (100, 100));
        let addr0 = t.client_addr(0);
        let now = run(&mut t, &mut net, MS, 120 * HZ);
        let s = t.stats();
        let c = &s.counters;
        assert_eq!((c.renew_sent, c.renew_ack, c.release_sent), (100, 100, 100));
        assert_eq!((c.done, c.failed, c.request_sent), (100, 0, 100));
        assert_eq!(c.ack_received, 200);
        assert_eq!(s.renew.count(), 100);
        assert_eq!(c.reply_errors, 0, "{:?}", t.report(now).errors);
        assert_eq!(net.count(msg::RENEW), 100);
        assert_eq!(net.count(msg::RELEASE), 100);
        assert_eq!(net.server.bound(), (0, 0), "released");
        assert_eq!(t.client_addr(0), addr0);
        let released = net
            .events
            .iter()
            .filter(|e| matches!(e, Ok(Reply6Event::Released(_))))
            .count();
        let renewed = net
            .events
            .iter()
            .filter(|e| matches!(e, Ok(Reply6Event::Renewed(_))))
            .count();
        assert_eq!((released, renewed), (100, 100));
        // A RENEW / RELEASE names the server and the lease.
        let renew = net.sent.iter().find(|s| s.t == msg::RENEW).unwrap();
        assert_eq!(renew.elapsed, 0);
    }

    /// `n` clients bound by `net` (within 500 ms), then run to the end.
    fn bind_then_run(t: &mut Tester6, net: &mut Net, n: u64) -> u64 {
        let mut batch = TxBatch::new(64);
        let mut now = 0;
        while now < HZ / 2 && t.stats().counters.bound < n {
            batch.clear();
            t.poll(now, &mut batch);
            for f in batch.iter() {
                net.exchange(t, now, f);
            }
            now += MS;
        }
        assert_eq!(t.stats().counters.bound, n);
        assert_eq!(t.client_phase(0), Some(Phase6::Bound));
        run(t, net, MS, 600 * HZ)
    }

    fn quick_extend(n: u32) -> Tester6Config {
        let mut c = Tester6Config::new(n);
        c.ia_pd = true;
        c.renew_after = Some(Duration::from_secs(1));
        let r = &mut c.retransmit;
        (r.renew_irt, r.renew_mrt, r.renew_max_rc) =
            (Duration::from_millis(100), Duration::from_millis(400), 3);
        (r.rebind_irt, r.rebind_mrt, r.rebind_max_rc) =
            (Duration::from_millis(200), Duration::from_millis(800), 4);
        c
    }

    #[test]
    fn an_unanswered_renew_is_followed_by_a_rebind_without_server_id() {
        // The server ignores RENEWs (its T1 silence): after the RENEW's
        // three transmissions each client REBINDs, which any server may
        // answer — this one extends the same leases.
        let mut net = Net::new(&server_cfg(1000));
        net.ignore.push(msg::RENEW);
        let mut t = Tester6::new(&quick_extend(50), HZ).unwrap();
        let addr0 = t.client_addr(0);
        let now = bind_then_run(&mut t, &mut net, 50);
        let s = t.stats();
        let c = &s.counters;
        assert_eq!((c.renew_sent, c.renew_ack), (150, 0));
        assert_eq!((c.rebind_sent, c.rebind_ack), (50, 50));
        assert_eq!((c.done, c.failed), (50, 0), "{:?}", t.report(now).errors);
        assert_eq!(s.renew.count(), 50);
        assert_eq!(net.count(msg::REBIND), 50);
        for x in net.sent.iter() {
            match x.t {
                msg::REBIND => assert!(!x.server_id, "a REBIND names no server"),
                msg::RENEW | msg::REQUEST => assert!(x.server_id),
                _ => {}
            }
        }
        // A REBIND is a new exchange: its own xid, Elapsed Time from 0.
        let renew = net
            .sent
            .iter()
            .find(|x| x.t == msg::RENEW && x.client == 7)
            .unwrap();
        let rebind = net
            .sent
            .iter()
            .find(|x| x.t == msg::REBIND && x.client == 7)
            .unwrap();
        assert_ne!(renew.xid, rebind.xid);
        assert_eq!(rebind.elapsed, 0);
        assert!(t.client_addr(0).is_some() && addr0.is_none());
        assert_eq!(net.server.bound(), (50, 50), "the leases stay bound");
        let renewed = net
            .events
            .iter()
            .filter(|e| matches!(e, Ok(Reply6Event::Renewed(_))))
            .count();
        assert_eq!(renewed, 50);
    }

    #[test]
    fn rebind_timeouts_and_rebind_off_fail_with_their_reasons() {
        let mut net = Net::new(&server_cfg(1000));
        net.ignore.extend([msg::RENEW, msg::REBIND]);
        let mut t = Tester6::new(&quick_extend(20), HZ).unwrap();
        bind_then_run(&mut t, &mut net, 20);
        let s = t.stats();
        assert_eq!(s.failed(FailReason6::RebindTimeout), 20);
        assert_eq!((s.counters.renew_sent, s.counters.rebind_sent), (60, 80));
        assert_eq!(t.report(0).errors.get("rebind_timeout"), Some(&20));

        let mut net = Net::new(&server_cfg(1000));
        net.ignore.push(msg::RENEW);
        let mut c = quick_extend(20);
        c.rebind = false;
        let mut t = Tester6::new(&c, HZ).unwrap();
        bind_then_run(&mut t, &mut net, 20);
        let s = t.stats();
        assert_eq!(s.failed(FailReason6::RenewTimeout), 20);
        assert_eq!((s.counters.renew_sent, s.counters.rebind_sent), (60, 0));
    }

    #[test]
    fn extend_by_rebind_skips_the_renew() {
        let mut net = Net::new(&server_cfg(1000));
        let mut c = quick_extend(30);
        c.extend = Extend6::Rebind;
        c.release = true;
        let mut t = Tester6::new(&c, HZ).unwrap();
        bind_then_run(&mut t, &mut net, 30);
        let c = &t.stats().counters;
        assert_eq!((c.renew_sent, c.rebind_sent, c.rebind_ack), (0, 30, 30));
        assert_eq!((c.done, c.release_sent), (30, 30));
        assert_eq!(net.server.bound(), (0, 0), "released after rebinding");
    }

    #[test]
    fn an_exhausted_pool_fails_the_extra_clients_with_a_reason() {
        let mut net = Net::new(&server_cfg(50));
        let mut c = Tester6Config::new(80);
        c.max_naks = 2;
        c.retransmit.solicit_irt = Duration::from_millis(100);
        c.retransmit.solicit_mrt = Duration::from_millis(400);
        let mut t = Tester6::new(&c, HZ).unwrap();
        let now = run(&mut t, &mut net, MS, 60 * HZ);
        assert!(t.is_finished());
        let s = t.stats();
        assert_eq!((s.counters.done, s.counters.failed), (50, 30));
        assert_eq!(s.failed(FailReason6::NoAddrsAvail), 30);
        assert_eq!(s.status(status::NO_ADDRS_AVAIL), 90, "3 per failed client");
        assert_eq!(s.counters.nak_received, 0, "ADVERTISEs are no REPLYs");
        assert_eq!(net.server.bound(), (50, 0));
        let r = t.report(now);
        assert_eq!(r.errors.get("no_addrs_avail"), Some(&30));
        assert_eq!(r.errors.get("status_no_addrs_avail"), Some(&90));
        assert!((r.success_rate - 50.0 / 80.0).abs() < 1e-9);
        let errors = net
            .events
            .iter()
            .filter(|e| matches!(e, Ok(Reply6Event::Error(_))))
            .count();
        assert_eq!(errors, 90);

        // With Rapid Commit the error status comes in a REPLY: restart,
        // then fail.
        let mut net = Net::new(&server_cfg(5));
        let mut c = Tester6Config::new(8);
        c.rapid_commit = true;
        c.max_naks = 1;
        let mut t = Tester6::new(&c, HZ).unwrap();
        run(&mut t, &mut net, MS, 60 * HZ);
        let s = t.stats();
        assert_eq!((s.counters.done, s.counters.failed), (5, 3));
        assert_eq!(s.failed(FailReason6::TooManyErrors), 3);
        assert_eq!(s.counters.nak_received, 6);
        assert_eq!(s.counters.discover_sent, 5 + 6);
    }

    #[test]
    fn a_prefix_pool_exhausted_is_no_prefix_avail() {
        let mut sc = server_cfg(100);
        sc.pd = Some((a("2001:db8:100::"), 54, 56)); // 4 prefixes
        let mut net = Net::new(&sc);
        let mut c = Tester6Config::new(6);
        c.ia_pd = true;
        c.max_naks = 0;
        let mut t = Tester6::new(&c, HZ).unwrap();
        run(&mut t, &mut net, MS, 60 * HZ);
        let s = t.stats();
        assert_eq!((s.counters.done, s.counters.failed), (4, 2));
        assert_eq!(s.status(status::NO_PREFIX_AVAIL), 2);
        assert_eq!(s.failed(FailReason6::NoAddrsAvail), 2);
    }

    #[test]
    fn pacing_limits_the_start_rate() {
        let mut c = Tester6Config::new(10);
        c.pacing = Pacing::Rate {
            per_sec: 100,
            burst: 1,
        };
        let mut t = Tester6::new(&c, HZ).unwrap();
        let mut b = TxBatch::new(16);
        assert_eq!(t.poll(0, &mut b), 1);
        assert_eq!(t.poll(5 * MS, &mut b), 0);
        assert_eq!(t.poll(10 * MS, &mut b), 1);
        let mut c = Tester6Config::new(10);
        c.concurrency = 3;
        let mut t = Tester6::new(&c, HZ).unwrap();
        let mut b = TxBatch::new(16);
        assert_eq!(t.poll(0, &mut b), 3);
        assert_eq!(t.in_flight(), 3);
    }

    /// Builds a message with Writer (for hand-made replies).
    fn build(t: u8, xid: u32, f: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
        let mut b = vec![0u8; 1024];
        let mut w = Writer::message(&mut b, t, xid).unwrap();
        f(&mut w);
        let n = w.finish().unwrap();
        b.truncate(n);
        b
    }

    fn ia_with_addr(w: &mut Writer<'_>, iaid: u32, addr: &str) {
        w.begin(opt::IA_NA, &Writer::ia_fixed(iaid, 0, 0)).unwrap();
        let v = Writer::ia_addr(&IaAddr {
            addr: a(addr),
            preferred: 100,
            valid: 200,
        });
        w.option(opt::IAADDR, &v).unwrap();
        w.end().unwrap();
    }

    #[test]
    fn bad_replies_are_refused_by_reason_and_change_nothing() {
        let mut t = Tester6::new(&Tester6Config::new(2), HZ).unwrap();
        let mut b = TxBatch::new(4);
        t.poll(0, &mut b);
        let f0 = b.get(0).unwrap().to_vec();
        let p0 = parse_frame6(&f0).unwrap();
        let xid0 = Dhcp6Packet::new_checked(p0.message(&f0)).unwrap().xid();
        let me = duid_ll(t.client_mac(0).0);
        let srv = duid_ll(SRV_MAC.0);
        let good = build(msg::ADVERTISE, xid0, |w| {
            w.option(opt::SERVERID, &srv).unwrap();
            w.option(opt::CLIENTID, &me).unwrap();
            ia_with_addr(w, 1, "2001:db8::5");
        });
        let ll0 = t.client_link_local(0);
        let mac0 = t.client_mac(0);
        let to0 = |m: &[u8]| reply_frame_to(mac0, ll0, CLIENT_PORT, m);
        let cases: Vec<(Vec<u8>, ReplyError6)> = vec![
            (vec![0u8; 10], ReplyError6::Frame(Frame6Error::Truncated)),
            (
                reply_frame_to(mac0, ll0, SERVER_PORT, &good),
                ReplyError6::WrongPort,
            ),
            (
                to0(&[2, 0]),
                ReplyError6::Malformed(wire6::Error::Truncated),
            ),
            (
                to0(&build(msg::SOLICIT, xid0, |w| {
                    w.option(opt::CLIENTID, &me).unwrap();
                })),
                ReplyError6::UnexpectedType,
            ),
            (
                to0(&build(msg::ADVERTISE, xid0, |w| {
                    w.option(opt::SERVERID, &srv).unwrap();
                    w.option(opt::CLIENTID, &duid_ll([2, 0, 0, 0, 0, 9]))
                        .unwrap();
                })),
                ReplyError6::UnknownClient,
            ),
            (
                to0(&build(msg::ADVERTISE, xid0, |w| {
                    w.option(opt::SERVERID, &srv).unwrap();
                })),
                ReplyError6::UnknownClient,
            ),
            (
                reply_frame_to(mac0, t.client_link_local(1), CLIENT_PORT, &good),
                ReplyError6::ClientIdMismatch,
            ),
            (
                to0(&build(msg::ADVERTISE, xid0 ^ 1, |w| {
                    w.option(opt::SERVERID, &srv).unwrap();
                    w.option(opt::CLIENTID, &me).unwrap();
                    ia_with_addr(w, 1, "2001:db8::5");
                })),
                ReplyError6::XidMismatch,
            ),
            (
                to0(&build(msg::ADVERTISE, xid0, |w| {
                    w.option(opt::CLIENTID, &me).unwrap();
                    ia_with_addr(w, 1, "2001:db8::5");
                })),
                ReplyError6::NoServerId,
            ),
            (
                to0(&build(msg::REPLY, xid0, |w| {
                    w.option(opt::SERVERID, &srv).unwrap();
                    w.option(opt::CLIENTID, &me).unwrap();
                    ia_with_addr(w, 1, "2001:db8::5");
                })),
                ReplyError6::NotWaiting,
            ),
            (
                to0(&build(msg::RELAY_REPL, 0, |_| {})),
                ReplyError6::Malformed(wire6::Error::Truncated),
            ),
        ];
        for (frame, want) in &cases {
            assert_eq!(t.on_reply(0, frame), Err(*want));
            assert_eq!(t.client_phase(0), Some(Phase6::Soliciting));
        }
        // A wrong IAID or a multicast address: no lease (a status, the
        // client keeps soliciting).
        let wrong_iaid = to0(&build(msg::ADVERTISE, xid0, |w| {
            w.option(opt::SERVERID, &srv).unwrap();
            w.option(opt::CLIENTID, &me).unwrap();
            ia_with_addr(w, 2, "2001:db8::5");
        }));
        assert_eq!(t.on_reply(0, &wrong_iaid), Ok(Reply6Event::Error(0)));
        let multicast = to0(&build(msg::ADVERTISE, xid0, |w| {
            w.option(opt::SERVERID, &srv).unwrap();
            w.option(opt::CLIENTID, &me).unwrap();
            ia_with_addr(w, 1, "ff02::1");
        }));
        assert_eq!(t.on_reply(0, &multicast), Ok(Reply6Event::Error(0)));
        assert_eq!(t.client_phase(0), Some(Phase6::Soliciting));
        assert_eq!(t.stats().status(status::NO_ADDRS_AVAIL), 2);
        // The good one, then again: not waiting.
        assert_eq!(t.on_reply(0, &to0(&good)), Ok(Reply6Event::Advertise(0)));
        assert_eq!(t.on_reply(0, &to0(&good)), Err(ReplyError6::NotWaiting));
        // The REQUEST goes out; a REPLY from another server is refused.
        b.clear();
        t.poll(MS, &mut b);
        let f = b.get(0).unwrap();
        let req = Dhcp6Packet::new_checked(parse_frame6(f).unwrap().message(f))
            .unwrap()
            .xid();
        let other = to0(&build(msg::REPLY, req, |w| {
            w.option(opt::SERVERID, &duid_ll([9; 6])).unwrap();
            w.option(opt::CLIENTID, &me).unwrap();
            ia_with_addr(w, 1, "2001:db8::5");
        }));
        assert_eq!(t.on_reply(MS, &other), Err(ReplyError6::ServerIdMismatch));
        // A REPLY with a top-level error status: back to SOLICIT.
        let fail = to0(&build(msg::REPLY, req, |w| {
            w.option(opt::SERVERID, &srv).unwrap();
            w.option(opt::CLIENTID, &me).unwrap();
            w.option(opt::STATUS_CODE, &[0, 1, b'x']).unwrap();
        }));
        assert_eq!(t.on_reply(MS, &fail), Ok(Reply6Event::Error(0)));
        assert_eq!(t.client_phase(0), Some(Phase6::Soliciting));
        assert_eq!(t.stats().counters.nak_received, 1);
        assert_eq!(t.stats().status(status::UNSPEC_FAIL), 1);
        let s = t.stats();
        for (_, e) in &cases {
            assert!(s.reply_error(*e) >= 1, "{e}");
        }
        assert_eq!(s.reply_error(ReplyError6::NotWaiting), 2);
        assert_eq!(s.counters.reply_errors, cases.len() as u64 + 2);
        let r = t.report(MS);
        assert_eq!(r.errors.get("server_id_mismatch"), Some(&1));
        assert_eq!(r.errors.get("status_unspec_fail"), Some(&1));
    }

    #[test]
    fn relay_replies_are_checked() {
        let mut c = Tester6Config::new(2);
        c.relay = Some(relay_cfg());
        let mut t = Tester6::new(&c, HZ).unwrap();
        let mut b = TxBatch::new(4);
        t.poll(0, &mut b);
        let f0 = b.get(0).unwrap().to_vec();
        let p0 = parse_frame6(&f0).unwrap();
        let mut server = Server6::new(&server_cfg(10)).unwrap();
        let mut out = [0u8; 2048];
        let n = server.handle(0, p0.message(&f0), &mut out).unwrap();
        let good = out[..n].to_vec();
        let relay_ip = a("2001:db8:1::1");
        let to_relay = |m: &[u8]| reply_frame_to(SRV_MAC, relay_ip, SERVER_PORT, m);
        let rewrap = |link: &str, peer: Ipv6Addr, inner: &[u8]| {
            let mut b = vec![0u8; 2048];
            let mut w = Writer::relay(&mut b, msg::RELAY_REPL, 0, a(link), peer).unwrap();
            w.option(opt::INTERFACE_ID, b"eth0/0").unwrap();
            w.option(opt::RELAY_MSG, inner).unwrap();
            let n = w.finish().unwrap();
            b.truncate(n);
            b
        };
        let inner = Dhcp6Packet::new_checked(&good)
            .unwrap()
            .option(opt::RELAY_MSG)
            .unwrap()
            .to_vec();
        let ll0 = t.client_link_local(0);
        let cases = [
            (
                reply_frame_to(t.client_mac(0), ll0, CLIENT_PORT, &good),
                ReplyError6::WrongPort,
            ),
            (to_relay(&inner), ReplyError6::NotRelayReply),
            (
                to_relay(&{
                    let mut b = [0u8; 64];
                    let w = Writer::relay(&mut b, msg::RELAY_REPL, 0, relay_ip, ll0).unwrap();
                    let n = w.finish().unwrap();
                    b[..n].to_vec()
                }),
                ReplyError6::RelayNoMessage,
            ),
            (
                to_relay(&rewrap("2001:db8:1::1", ll0, &good)),
                ReplyError6::RelayNested,
            ),
            (
                to_relay(&rewrap("2001:db8:2::1", ll0, &inner)),
                ReplyError6::RelayLinkMismatch,
            ),
            (
                to_relay(&rewrap("2001:db8:1::1", t.client_link_local(1), &inner)),
                ReplyError6::PeerAddressMismatch,
            ),
        ];
        for (f, want) in &cases {
            assert_eq!(t.on_reply(0, f), Err(*want));
        }
        assert_eq!(t.stats().counters.reply_errors, cases.len() as u64);
        assert_eq!(
            t.on_reply(0, &to_relay(&good)),
            Ok(Reply6Event::Advertise(0))
        );
        assert_eq!(t.stats().counters.option82_mismatch, 0);
    }

    /// A tester with 3 clients waiting for an ADVERTISE (stage 0) or a
    /// REPLY (stage 1), the server, the clients' frames (in send order) and
    /// the xid of each client (by index).
    fn waiting(stage: u8, relay: bool, pd: bool) -> (Tester6, Server6, Vec<Vec<u8>>, Vec<u32>) {
        let mut c = Tester6Config::new(3);
        c.ia_pd = pd;
        if relay {
            c.relay = Some(relay_cfg());
        }
        let mut t = Tester6::new(&c, HZ).unwrap();
        let mut server = Server6::new(&server_cfg(10)).unwrap();
        let mut b = TxBatch::new(4);
        t.poll(0, &mut b);
        let mut frames: Vec<Vec<u8>> = b.iter().map(<[u8]>::to_vec).collect();
        if stage == 1 {
            for f in &frames {
                let p = parse_frame6(f).unwrap();
                let mut out = [0u8; 2048];
                let n = server.handle(0, p.message(f), &mut out).unwrap();
                let r = t.on_reply(0, &reply_frame(&p, &out[..n]));
                assert!(matches!(r, Ok(Reply6Event::Advertise(_))));
            }
            b.clear();
            t.poll(MS, &mut b);
            frames = b.iter().map(<[u8]>::to_vec).collect();
        }
        let mut xids = vec![0; 3];
        for f in &frames {
            let m = client_message(f);
            let (i, xid) = sender(&t, &m);
            xids[i as usize] = xid;
        }
        (t, server, frames, xids)
    }

    /// The client index and xid of a client message.
    fn sender(t: &Tester6, m: &[u8]) -> (u32, u32) {
        let m = Dhcp6Packet::new_checked(m).unwrap();
        let i = t.client_of_duid(m.client_id().unwrap()).unwrap();
        (i, m.xid())
    }

    proptest! {
        #[test]
        fn arbitrary_frames_never_panic_or_bind(
            frame in proptest::collection::vec(any::<u8>(), 0..400),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            stage in 0u8..2,
            relay in any::<bool>(),
        ) {
            let (mut t, _, frames, _) = waiting(stage, relay, true);
            let _ = t.on_reply(MS, &frame);
            // Random bytes as the DHCPv6 message of a well-formed frame.
            let p = parse_frame6(&frames[0]).unwrap();
            let _ = t.on_reply(MS, &reply_frame(&p, &payload));
            let c = &t.stats().counters;
            prop_assert_eq!((c.bound, c.offer_received - 3 * u64::from(stage)), (0, 0));
            for i in 0..3 {
                prop_assert_eq!(t.client_addr(i), None);
            }
        }

        #[test]
        fn mutated_replies_never_bind_a_stranger(
            stage in 0u8..2,
            relay in any::<bool>(),
            pd in any::<bool>(),
            k in 0usize..3,
            muts in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in proptest::option::of(any::<usize>()),
        ) {
            let (mut t, mut server, frames, xids) = waiting(stage, relay, pd);
            let (sent_by, _) = sender(&t, &client_message(&frames[k]));
            let p = parse_frame6(&frames[k]).unwrap();
            let mut out = [0u8; 2048];
            let n = server.handle(0, p.message(&frames[k]), &mut out).unwrap();
            let mut m = out[..n].to_vec();
            for (at, v) in &muts {
                let at = at % m.len();
                m[at] = *v;
            }
            if let Some(c) = cut {
                m.truncate(c % (m.len() + 1));
            }
            let before: Vec<_> = (0..3).map(|i| t.client_phase(i)).collect();
            let r = t.on_reply(2 * MS, &reply_frame(&p, &m));
            let who = match r {
                Ok(Reply6Event::Advertise(i)) | Ok(Reply6Event::Bound(i, ..)) => {
                    // Accepted: the (inner) message is ours, exactly.
                    let outer = Dhcp6Packet::new_checked(&m).unwrap();
                    let inner = if relay { outer.relay_msg().unwrap().unwrap() } else { outer };
                    prop_assert_eq!(inner.xid(), xids[i as usize]);
                    prop_assert_eq!(inner.client_id(), Some(&duid_ll(t.client_mac(i).0)[..]));
                    Some(i)
                }
                Ok(Reply6Event::Error(i)) => Some(i),
                Ok(e) => return Err(TestCaseError::fail(format!("{e:?}"))),
                Err(_) => None,
            };
            for i in 0..3u32 {
                if Some(i) != who {
                    prop_assert_eq!(t.client_phase(i), before[i as usize]);
                    prop_assert_eq!(t.client_addr(i), None);
                }
            }
            if let Some(i) = who {
                prop_assert_eq!(i, sent_by, "only the addressed client");
            }
        }
    }
}
