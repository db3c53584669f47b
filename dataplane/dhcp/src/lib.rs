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

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod frame;
pub mod wire;

pub use core::net::Ipv4Addr;
pub use qsplice_wire::MacAddr;

pub mod client;
pub mod server;
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
