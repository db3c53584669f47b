//! TLS termination for qsplice's lcores.
//!
//! Why rustls (0.23, aws-lc-rs provider) rather than the `aes-gcm` /
//! `pqcrypto-kyber` crates named on the project card: termination must
//! interoperate with real clients (curl/OpenSSL, Chromium, Go), which
//! takes a complete, maintained TLS 1.3/1.2 implementation — rustls is
//! one, with the hybrid X25519MLKEM768 / SecP256r1MLKEM768 groups and
//! ML-DSA certificates through aws-lc-rs, and a sans-IO "unbuffered" API
//! that an lcore can drive with its own buffers (no sockets, threads or
//! async runtime). Measured on the development VM: ≈ 94 µs of server CPU
//! per X25519MLKEM768 + ECDSA P-256 full handshake, ≈ 8.8 GB/s of
//! AES-256-GCM per core (see docs/perf.md and `benches/benches/tls.rs`).
//!
//! - [`groups`]: key-exchange groups by name and the PQ policy;
//! - [`certgen`]: a lab CA issuing ECDSA / Ed25519 / RSA / ML-DSA certificates;
//! - [`certs`]: PEM loading and SNI / signature-scheme certificate choice;
//! - [`client`]: client configurations for the load generator's sessions;
//! - [`ticket`]: session-ticket keys shared by all lcores, rotated;
//! - [`cache`]: the shared, bounded, TTL'd stateful session cache;
//! - [`context`]: settings → per-VIP rustls configurations;
//! - [`session`]: one connection, sans-IO;
//! - [`stats`]: what was negotiated, why connections failed.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cache;
pub mod certgen;
pub mod certs;
pub mod client;
pub mod context;
pub mod groups;
pub mod session;
pub mod stats;
pub mod ticket;

pub use context::{ContextError, TlsContext, TlsSettings};
pub use groups::{Group, PqPolicy};
pub use session::{Phase, Plaintext, Progress, TlsBuffers, TlsSession};
pub use stats::{Failure, HandshakeInfo, TlsReport, TlsStats};
