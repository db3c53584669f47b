//! TCP splicing, the pure part (no DPDK, no sockets, time as an argument).
//!
//! The appliance answers a client's SYN itself, decides on a backend, opens
//! the backend leg, relays what was buffered, and then **splices** the two
//! TCP connections: every later segment is forwarded with header
//! translation only. This crate holds the logic that decides those headers:
//!
//! * [`seq`]: 32-bit sequence-number arithmetic with wraparound (RFC 793/1982).
//! * [`isn`]: the appliance's initial sequence number toward the client, a
//!   keyed hash of the connection and a coarse time slot (the source paper's
//!   `vs_seq = H(client addr, client port)`, made unpredictable with a
//!   secret), and SYN cookies that carry the client's MSS so a half-open
//!   connection costs no memory.
//! * [`translate`]: the per-segment rewrite of a spliced flow — addresses,
//!   ports, sequence and acknowledgement offsets, SACK blocks, the timestamp
//!   option, window values between legs with different window scales — with
//!   RFC 1624 incremental checksum updates, in place, without touching the
//!   payload.
//! * [`translate6`]: the same rewrite for TCP/IPv6 segments (no IP
//!   checksum; the pseudo-header's 128-bit addresses updated at once).
//! * [`family`]: TCP/IPv6 ↔ TCP/IPv4 header translation in place (SIIT
//!   for TCP), how IPv6 legs ride the IPv4 splice path (NAT64/46 too).
//! * [`flow`]: the per-lcore table of spliced flows (found from either
//!   direction, fixed capacity, no allocation after creation) and each
//!   flow's FIN/RST/idle tracking.
//! * [`record`]: a spliced flow's parameters as the nodes of a cluster
//!   share them (45 bytes), so another node can adopt the flow.
#![forbid(unsafe_code)]

pub mod family;
pub mod flow;
pub mod isn;
pub mod record;
pub mod seq;
pub mod translate;
pub mod translate6;

pub use flow::{Dir, Flow, FlowId, FlowState, FlowTable, FlowTimers, InsertError};
pub use isn::{Endpoint, IsnSecret, SynCookie, MSS_TABLE};
pub use translate::{translate, SpliceParams, Translated, Translation};
pub use translate6::{translate6, Translation6};
