//! `qsplice pktgen`, the pure part: a rate-controlled packet generator.
//!
//! * [`stream`]: stream templates (MACs, optional VLAN, IPv4 and port
//!   ranges, UDP or TCP SYN), built once; the per-packet path copies the
//!   template prefix and rewrites only the varying fields with RFC 1624
//!   incremental checksum updates. Frame sizes: fixed, uniform range, IMIX.
//! * [`pacer`]: TSC token bucket (pps or L1 bit/s, burst-limited, or max).
//! * [`payload`]: the 18-byte payload header (magic, stream, sequence, TX
//!   TSC) and the panic-free receive parser (fuzzed: `pktgen_rx`).
//! * [`rx`]: receive accounting per stream (received, lost by gaps,
//!   reordered, duplicated) and one-way latency in an HDR histogram.
//! * [`lcore`]: the loop on one lcore, TX and RX (same or different
//!   queues), generic over `qsplice_netdev::{Queue, Clock}`.
//!
//! Nothing allocates per packet.
#![forbid(unsafe_code)]

pub mod lcore;
pub mod pacer;
pub mod payload;
pub mod rx;
pub mod stream;

pub use lcore::{rates, GenConfig, GenFinal, GenLoop, GenShared, Generator};
pub use pacer::{Pacer, Rate};
pub use stream::{FieldMode, Proto, SizeDist, StreamSpec};

#[cfg(test)]
mod tests;
