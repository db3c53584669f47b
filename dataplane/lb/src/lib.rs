//! The L4 load balancer that runs on every worker lcore (`qsplice lb`).
//!
//! * [`core`]: one lcore's balancer — SYNs answered from a bounded SYN cache
//!   ([`syncache`]) or with SYN cookies under pressure, backend
//!   choice from the published pools, backend connect from the client's
//!   ISN with a source port this lcore owns, splice, close and timers. It
//!   plugs into the engine's worker as a [`qsplice_engine::Service`].
//! * `core::term`: TLS termination for VIPs marked `tls = "terminate"`
//!   (`qsplice_tcp` endpoints per connection leg, created when the client's
//!   handshake completes; `qsplice_tls` sessions; the backend leg opened once
//!   the TLS handshake is done).
//! * [`tcp`]: the segments the balancer originates and the SYN options.
//! * [`board`]: backend state published by the control thread (one atomic
//!   swap per change) and per-backend counters published back.
//! * [`counters`]: per-core counters.
//! * [`six`]: IPv6 VIPs, clients and backends on the IPv4 lcore path —
//!   stand-in addresses from 240.0.0.0/4 and header translation at the
//!   edges (NAT64/46 included).
//! * [`flowsync`]: the rings between the lcores and the cluster's flow
//!   sync (records of spliced flows out, lookups out, found records in).
//!
//! **Invariants.** Per-lcore state is share-nothing; all memory is
//! allocated in [`core::LbCore::new`]; nothing a packet contains can make
//! it panic (malformed segments are counted by reason and dropped); an lcore
//! only ever handles flows whose backend-side source port it owns, segments
//! that arrive elsewhere are handed over through a bounded lock-free inbox.
#![forbid(unsafe_code)]

pub mod access;
pub mod board;
pub mod core;
pub mod counters;
pub mod flowsync;
pub mod health;
pub mod hist;
pub mod six;
pub mod syncache;
pub mod tcp;

/// The swappable cell of [`TlsVip::ctx`].
pub use arc_swap::ArcSwap;
pub use board::{AcceptMode, BackendCounters, BackendStats, PoolBoard};
pub use core::{
    rule_matches, ContentRule, ContentVip, EventKind, LbConf, LbCore, LbShared, SessionEvent,
    SessionShared, SessionSnap, TlsVip, VipConf, HOLD_MAX, MAX_PENDING, TLS_PUBLISH_MS,
};
pub use counters::{LbCounters, SharedLbCounters};
pub use flowsync::{Adopt, FlowSyncShared};
pub use hist::{Hist, LbHists, SharedLbHists};
/// The congestion controllers of the terminated legs (`LbConf::congestion`).
pub use qsplice_tcp::Congestion;
