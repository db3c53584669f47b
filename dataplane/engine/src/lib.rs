//! The lcore engine: one [`Worker`] per worker lcore runs a
//! run-to-completion loop over its rx/tx queue pairs (one per port):
//!
//! ```text
//! loop {
//!     for each port: rx burst (≤ 32) → classify → ARP / ICMP / (later: TCP splice)
//!                    → in-place reply pushed to that port's TX buffer, or counted drop
//!     TX buffers flushed when they reach a burst, or every `tx_drain_us` (TSC)
//!     every ms: neighbour timers (ARP probes, expiry), control commands,
//!               publish counters for the control thread
//! }
//! ```
//!
//! **Architecture invariants**
//! * Generic over [`qsplice_netdev::Queue`] and [`qsplice_netdev::Clock`]: no
//!   DPDK here, the same code runs on mbufs and on in-memory test frames.
//! * After construction, the loop neither allocates nor locks nor makes
//!   system calls (except the optional idle sleep when a poll found nothing).
//! * Per-core state is share-nothing. Counters are plain `u64`s published
//!   with relaxed atomic stores to a cache-aligned block the control thread
//!   reads ([`counters::SharedCounters`]). Neighbour learning crosses cores
//!   only through bounded lock-free queues via the control thread.
//! * A malformed frame is counted by reason ([`DropReason`]) and dropped;
//!   nothing a packet contains can make the worker panic.
#![forbid(unsafe_code)]

pub mod claims;
pub mod counters;
pub mod fwd;
pub mod neigh;
pub mod worker;

pub use claims::{AddrClaims, MAX_CLAIMS};
pub use counters::{Counters, DropReason, SharedCounters};
pub use neigh::{NeighState, NeighborTable};
pub use worker::{
    ArpConf, ControlLink, CoreCmd, CoreEvent, EngineConf, IfAddr, IfAddr6, Io, NoService,
    PortSetup, Service, Worker,
};
