//! DHCPv4 for the qsplice DHCP load tester and server simulator: the wire
//! format (including RFC 3046 Option 82), Ethernet/IPv4/UDP framing, and
//! sans-IO state machines for a server ([`server::Server`]) and for many
//! virtual clients ([`client::Tester`]), plus their statistics
//! ([`stats`]).
//!
//! Nothing here links DPDK or makes system calls: time is a tick count
//! (e.g. the TSC) with its frequency, passed in by the caller; frames are
//! byte slices. After construction, the parse / handle / emit paths do not
//! allocate: tables are preallocated and bounded. No input can make any
//! function panic; rejected input is reported with a reason enum whose
//! `as_str()` names are stable counter names.
//!
//! ```
//! use core::time::Duration;
//! use qsplice_dhcp::client::{Tester, TesterConfig, TxBatch};
//! use qsplice_dhcp::server::{PoolConfig, Server, ServerConfig};
//! use qsplice_dhcp::wire::AddrList;
//! use qsplice_dhcp::{Ipv4Addr, MacAddr};
//!
//! let hz = 1_000_000_000; // ticks per second (here: nanoseconds)
//! let server_ip = Ipv4Addr::new(10, 0, 0, 1);
//! let pool = PoolConfig {
//!     network: Ipv4Addr::new(10, 0, 0, 0),
//!     prefix_len: 24,
//!     range_start: Ipv4Addr::new(10, 0, 0, 100),
//!     range_end: Ipv4Addr::new(10, 0, 0, 199),
//!     routers: AddrList::from_iter([server_ip]),
//!     dns_servers: AddrList::new(),
//!     lease_time: Duration::from_secs(3600),
//! };
//! let mut server =
//!     Server::new(&ServerConfig::new(server_ip, MacAddr([2, 0, 0, 0, 0, 1]), pool), hz).unwrap();
//! let mut tester = Tester::new(&TesterConfig::new(50), hz).unwrap();
//! let (mut batch, mut reply, mut now) = (TxBatch::new(32), [0u8; 1500], 0u64);
//! while !tester.is_finished() {
//!     batch.clear();
//!     tester.poll(now, &mut batch); // DISCOVERs, REQUESTs, retransmissions
//!     for frame in batch.iter() {
//!         // `server_ip` is also the address of the receiving interface here.
//!         if let Ok(Some(m)) = server.handle_frame(now, server_ip, frame, &mut reply) {
//!             tester.on_reply(now, &reply[..m.len]).unwrap();
//!         }
//!     }
//!     now += 10_000;
//! }
//! assert_eq!(tester.stats().counters.done, 50);
//! assert_eq!(server.leases_bound(), 50);
//! let report = tester.report(now); // serde::Serialize (JSON for --json)
//! assert_eq!(report.success_rate, 1.0);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod frame;
pub mod frame6;
pub mod link6;
pub mod wire;
pub mod wire6;

pub use core::net::Ipv4Addr;
pub use qsplice_wire::MacAddr;

pub mod client;
pub mod client6;
pub mod lcore;
#[cfg(feature = "plot")]
pub mod plot;
pub mod server;
pub mod server6;
pub mod stats;

mod ring;

use core::time::Duration;

/// Converts a duration to ticks of a clock running at `hz` (saturating).
pub fn duration_to_ticks(d: Duration, hz: u64) -> u64 {
    let t = d.as_nanos().saturating_mul(u128::from(hz)) / 1_000_000_000;
    u64::try_from(t).unwrap_or(u64::MAX)
}

/// Converts ticks of a clock running at `hz` to nanoseconds (saturating;
/// `hz` = 0 is treated as 1).
pub fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
    let t = u128::from(ticks) * 1_000_000_000 / u128::from(hz.max(1));
    u64::try_from(t).unwrap_or(u64::MAX)
}
