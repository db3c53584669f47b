//! qsplice's management side, run by the control thread: the report types,
//! the Prometheus metrics built from them, the HTTP management listener
//! (JSON API + `/metrics`) and the client `qsplice ctl` uses.
//!
//! Nothing here runs on an lcore or knows about packets: the listener reads
//! the report the control thread already builds from the lcores' published
//! counters, and changes go through the control thread's own methods
//! ([`server::Control`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod metrics;
pub mod report;
pub mod server;

pub use server::{ApiError, BackendChange, Change, Control, Listen, MgmtServer, StartError};
