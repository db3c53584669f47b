//! Criterion micro-benchmarks for qsplice; the benchmarks live in
//! `benches/benches/`:
//!
//! * `checksum`: RFC 1071 checksum over 64 / 1500 / 9000 bytes against a
//!   naive byte-pair reference, and the RFC 1624 incremental updates;
//! * `rewrite`: the TCP splice header rewrite (destination address and
//!   port, sequence/acknowledgment shift) with incremental checksum updates
//!   against the same rewrite with full checksum recomputation.
//!
//! Run with `cargo bench -p qsplice-benches` (add `-- --quick` for a fast
//! pass). End-to-end forwarding benchmarks are in `benches/e2e/`.
