//! Safe Rust over the system DPDK 22.11.
//!
//! This crate and `qsplice-dpdk-sys` are the only places in qsplice with
//! `unsafe` code; every block carries a `// SAFETY:` comment. What it offers:
//!
//! * [`Eal`]: process-wide EAL initialisation from an argv, lcore queries and
//!   [`Eal::launch`] of closures on worker lcores.
//! * [`Mempool`] and [`Mbuf`]: an mbuf is owned; dropping it frees it, and
//!   sending it hands ownership to the device explicitly
//!   ([`EthQueue::tx_burst`] leaves unsent mbufs with the caller).
//! * [`EthPort`]: configure a port with N rx/tx queue pairs (RSS where the PMD
//!   supports it), start/stop, statistics; [`EthQueue`] is one queue pair,
//!   owned by one lcore, and implements [`qsplice_netdev::Queue`].
//! * [`Ring`]: a DPDK ring of mbufs between lcores.
//! * [`tsc`]/[`tsc_hz`] and [`TscClock`].
//! * [`af_packet_fanout_clash`]: the af_packet PMD's fanout-group pre-flight.
//!
//! ## Soundness model
//! * EAL is initialised at most once per process and never torn down while
//!   the process runs, and mempools are never freed: an `Mbuf` can therefore
//!   never outlive the memory it points into. Memory returns to the OS at
//!   process exit (use `--in-memory` or `--huge-unlink` so that no hugepage
//!   files stay behind).
//! * An [`EthQueue`] is `Send` but not `Clone`/`Sync`: DPDK's per-queue rx/tx
//!   functions are not thread-safe, and the type system guarantees one user.
//! * Mbufs are single-segment (ports are configured without scatter-gather),
//!   so the frame bytes are `buf_addr + data_off .. + data_len`.
#![deny(clippy::undocumented_unsafe_blocks)]

mod eal;
mod error;
mod fanout;
mod mbuf;
mod port;
mod ring;

pub use eal::{lcore_id, socket_id, tsc, tsc_hz, Eal, LaunchError, TscClock};
pub use error::DpdkError;
pub use fanout::{af_packet_fanout_arg, af_packet_fanout_clash};
pub use mbuf::{Mbuf, Mempool};
pub use port::{EthPort, EthQueue, LinkStatus, PortConf, PortInfo, PortStats};
pub use ring::Ring;

/// Raw FFI, for the few places (benchmarks, diagnostics) that need a DPDK
/// symbol this wrapper does not cover. Using it requires `unsafe`.
pub use qsplice_dpdk_sys as sys;
