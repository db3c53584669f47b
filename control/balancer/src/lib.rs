//! The load balancer's control-thread side (`qsplice lb`): builds each
//! lcore's [`qsplice_lb::LbCore`] settings from the config, owns the backend
//! pools (administrative state + health), publishes them to the lcores as
//! one atomic snapshot, runs the health checks, applies reloads (all or
//! nothing), aggregates counters into the report, and writes the access log
//! from the lcores' record rings.
//!
//! Generic over the frame type `F` the lcores use (DPDK's `Mbuf` in the
//! binary, in-memory frames in tests): nothing here touches a packet.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod accesslog;
pub mod edit;
pub mod runtime;

pub use runtime::{
    BackendReport, HistReport, LbReport, LbRuntime, SessionRowReport, SharedRow, VipReport,
    TABLE_DUMP_ROWS,
};

/// Why the balancer's control side refused something (a config it cannot
/// run, a reload it cannot apply, a file it cannot open).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(pub String);

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
