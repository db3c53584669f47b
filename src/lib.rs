//! The `qsplice` appliance runtime: boots DPDK from a validated config,
//! configures ports and mempools, launches one [`qsplice_engine::Worker`] per
//! worker lcore, and runs the control loop on the main lcore (neighbour
//! relay between workers, counter aggregation, periodic stats, shutdown).
//!
//! The CLI (`src/main.rs`) is a thin layer over [`run`], [`fwd_bench`] and
//! the topology report.
#![forbid(unsafe_code)]

mod cluster;
pub mod ctl;
pub mod dhcp;
mod kernel;
pub mod lb;
pub mod loadgen;
pub mod outfile;
pub mod pktgen;
mod routes;
pub mod runtime;
pub mod stats;

pub use runtime::{fwd_bench, run, FanoutClash, FwdBenchOpts, RunOpts};
