//! Stateful load generation, sans IO: the HTTP/1.1 client and server
//! sessions `qsplice loadgen` runs on each lcore, over the one user-space
//! TCP of the codebase ([`qsplice_tcp::Endpoint`], the TLS-terminating
//! path's, with its SACK recovery and 200 ms minimum RTO).
//!
//! ```text
//! client: connect ─▶ established ─▶ request ─▶ response read whole ─▶ next request … ─▶ close
//!         (ClientSession: connect / first-byte / whole-response times per request)
//! server: SYN ─▶ PassiveOpen (SYN-ACK) ─▶ ACK ─▶ ServerSession: request heads ─▶ fixed response each
//! ```
//!
//! A session owns its [`Endpoint`]; the caller moves segments (input /
//! output, as for the TLS path) and calls `step` after each input, timer
//! or output, which moves the HTTP exchange on and reports what happened
//! ([`ClientEvent`]). Responses are read by
//! [`qsplice_wire::http_response::ResponseReader`] (framing followed, body
//! counted, never kept); requests a server reads are delimited by their
//! head's end and their `Content-Length` body, and answered by path
//! ([`Responses`]). No allocation after a session is made. Memory per
//! session: the record (≈ 1.7 KB client, ≈ 1.5 KB server, mostly the
//! endpoint's fixed state) always, the endpoint's two buffers (sized by
//! its `Config`) only while bytes are queued either way: at rest the
//! lcore parks them in its pool ([`qsplice_tcp::Endpoint::park`]), so an
//! established connection waiting for its peer holds ≤ 2 KB.
//!
//! On an lcore ([`lcore`]): [`LoadgenClient`] and [`LoadgenServer`] are
//! engine services that run many sessions on one port. A client session
//! holds one (source address, source port) slot, reused oldest first; new
//! connections are paced by the worker's clock when a rate is set, and a
//! think time may separate a response from the next request; connect,
//! first-byte and response times go to HDR histograms ([`Latencies`]),
//! failures are counted by kind. The server keeps passive opens per client
//! address and answers to the Ethernet address each SYN came from. Tested
//! as two engine workers back to back with loss; `qsplice loadgen` runs
//! them (src/loadgen.rs).
//!
//! HTTPS: a client session may speak through a TLS client session
//! ([`ClientSession::with_tls`], rustls' unbuffered client driven by
//! [`qsplice_tls::TlsSession`], the same record loop as the terminating
//! side), a server session through a TLS server session
//! ([`ServerSession::with_tls`] / [`ServerSession::step_tls`]); handshake
//! times, resumptions, groups and failures are reported.
//!
//! Several lcores: each runs its own client or server service on its own
//! queues; [`Steering`] inboxes carry segments that arrive on another
//! lcore's queue to the lcore that owns their connection (see
//! [`lcore`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod http;
pub mod lcore;

pub use http::{
    build_response, BodyFraming, ClientEvent, ClientSession, PassiveOpen, Responses, ServerSession,
    MAX_PATHS,
};
pub use lcore::{
    client_ports, server_owner, session_bytes, ClientConf, ClientTls, Latencies, LoadgenBoth,
    LoadgenClient, LoadgenServer, LoadgenStats, ServerConf, SharedStats, Steering,
};
