//! A sans-IO TCP endpoint for the TLS-terminating path: one [`Endpoint`]
//! per connection leg, driven by the lcore with segments, a clock and a
//! closure that transmits.
//!
//! # Why not smoltcp
//!
//! The TLS path used smoltcp 0.14 per connection. With 1 % random loss on
//! the client link a 100 MiB download through the TLS VIP took 143 s,
//! against 0.7 s through the spliced VIP (where the client and the backend
//! run Linux's TCP end to end). smoltcp cannot be configured out of it:
//!
//! * its minimum RTO is a hard-coded 1000 ms (`RTTE_MIN_RTO`);
//! * it ignores received SACK blocks;
//! * its fast retransmit resends only the first unacknowledged segment, so
//!   every further loss in the window waits for an RTO;
//! * its ISN / TSval hooks are plain `fn` pointers, not per socket;
//! * it cannot adopt a connection whose handshake was completed elsewhere,
//!   which answering SYNs from a SYN cache or with SYN cookies needs (the
//!   endpoint should exist only once the handshake completes).
//!
//! # What it does
//!
//! * **State machine** (RFC 9293): active open ([`Endpoint::connect`]:
//!   SYN-SENT, SYN retransmission with backoff, `syn_retries`, a RST →
//!   [`Outcome::Refused`], retries exhausted → [`Outcome::TimedOut`],
//!   simultaneous open through SYN-RECEIVED); passive open from a completed
//!   handshake ([`Endpoint::accept`], with [`SynOptions`] / [`SynAck`] to
//!   build the SYN-ACK consistently); ESTABLISHED, FIN-WAIT-1/2,
//!   CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT (configurable, default 1 s,
//!   may be 0: our ISNs and TSvals are monotonic), CLOSED.
//! * **RFC 5961**: a RST is accepted only at exactly RCV.NXT, a RST
//!   elsewhere in the window and any SYN in a synchronized state get a
//!   (rate-limited) challenge ACK; ACKs of unsent data or older than the
//!   largest window are dropped with an ACK.
//! * **Out-of-window segments** get an ACK (immediately when they carry
//!   data, rate-limited otherwise: no ACK loops) and are dropped.
//! * **Receiving**: in-order data into a ring; out-of-order data kept in
//!   the same ring (bounded by the buffer and [`OOO_RANGES`] ranges);
//!   SACK blocks (RFC 2018: the block of the latest arrival first, then the
//!   others by recency; 3 with timestamps, 4 without) and D-SACK (RFC
//!   2883) for duplicates; delayed ACKs (every second full-sized segment,
//!   at once for out-of-order, hole-filling, FIN and duplicate data, else
//!   after `delayed_ack_us`; quick-ACK for the first `quickack_segs`);
//!   window from free buffer space, scaled (RFC 7323), receiver SWS
//!   avoidance, never shrinking the right edge; window updates when the
//!   application frees enough.
//! * **Sending**: initial window 10 segments (RFC 6928), slow start with
//!   byte counting, congestion avoidance by [`Congestion::NewReno`] or
//!   [`Congestion::Cubic`] (RFC 9438), or the window set by BBR's model
//!   ([`Congestion::Bbr`]: delivery-rate samples, bottleneck bandwidth ×
//!   minimum RTT, ACK-aggregation allowance, ProbeRTT; random loss does not
//!   shrink it; no pacing); no Nagle, but a caller that writes a stream in
//!   pieces can cork ([`Endpoint::set_cork`]); sender SWS avoidance; send MSS = the peer's MSS (capped by
//!   ours) minus the timestamp option, never below `min_snd_mss` (a peer
//!   announcing MSS 1 cannot make us send tiny segments).
//! * **Loss recovery**: SACK scoreboard ([`SACK_RANGES`] ranges) and RFC
//!   6675 (IsLost, pipe, NextSeg rules 1–2, entry on 3 duplicate ACKs or
//!   IsLost(HighACK+1), limited transmit through the pipe). Not NextSeg
//!   rules 3–4 (as Linux): with the send buffer all in flight they resend
//!   in-flight segments, spuriously. Instead a *recovery probe*: when the
//!   cumulative ACK has not moved for 2·SRTT + 2 ms in recovery, what
//!   was sent before and is still un-SACKed is lost and resent (a lost
//!   retransmission or a lost tail, which no SACK may reveal) — not an
//!   RTO's 200 ms and cwnd of 1 segment. Without SACK,
//!   RFC 5681 fast retransmit and RFC 6582 NewReno (window inflation,
//!   partial ACKs retransmit the next hole, RFC 3042 limited transmit);
//!   RFC 5827 early retransmit (threshold = outstanding segments − 1 when
//!   fewer than 4 are outstanding and nothing new can be sent: the tail of
//!   a short response).
//!   RTO per RFC 6298 (SRTT/RTTVAR, min 200 ms, initial 1 s, max 60 s,
//!   exponential backoff); on RTO cwnd = 1 segment, resend from SND.UNA
//!   under slow start, skipping SACKed data (the scoreboard is kept). Tail
//!   loss probe (RFC 8985 §7: PTO = 2·SRTT + 2 ms, + 40 ms for a lone
//!   segment): new data or the last segment, so a lost tail is repaired by
//!   SACK recovery instead of an RTO; a probe that repaired a loss (no
//!   D-SACK for it) reduces cwnd. Zero-window probing (persist timer with
//!   backoff) when the peer's window is closed.
//! * **RTT**: one timed segment per RTT with the µs clock (Karn's rule: no
//!   sample across a retransmission); with timestamps, the TSecr of ACKs
//!   measures also retransmitted data (RFC 7323 §4). TSval comes from the
//!   caller ([`Now::tsval`], ms, monotonic across restarts), TSecr echoes
//!   TS.Recent (RFC 7323 §4.3); PAWS drops older TSvals (§5).
//!
//! # Driving it
//!
//! ```text
//! segment arrives ──▶ input(&seg, now) ─┐
//! app sends/reads ──▶ send / recv_*    ─┼─▶ output(now, max, |seg| tx(seg)) ──▶ wire
//! timer reached   ──────────────────────┘        └─ then poll_at() = next wake-up
//! ```
//!
//! Every call takes [`Now`] (µs of a monotonic clock, plus the TS clock).
//! [`Endpoint::output`] emits what is due through the caller's closure;
//! [`SegmentOut::write`] writes the TCP header (checksum 0), options and
//! payload for the caller to checksum with the pseudo-header.
//! [`Endpoint::poll_at`] says when to call `output` next.
//!
//! # In the lcore
//!
//! * **Passive open.** A SYN gets a SYN-ACK without an endpoint:
//!   [`SynOptions::from_segment`] reads the offer, [`SynAck::answer`] picks
//!   our options (`tsval` is ours — a cookie path may encode the peer's
//!   window scale and SACK-ok in its low bits), [`SynAck::write_options`]
//!   writes them, the window is [`Config::syn_window`]. When the ACK that
//!   completes the handshake validates (SYN-cache entry or cookie),
//!   [`SynAck::handshake`] (or a [`Handshake`] rebuilt from the cookie)
//!   goes to [`Endpoint::accept`], then that same ACK segment to
//!   [`Endpoint::input`] (it may carry data).
//! * **Active open** (backend leg): [`Endpoint::connect`] with our ISN.
//! * **Per segment:** [`Segment::parse`] on the TCP bytes (checksum
//!   verified by the caller), `input`, then `output` whose closure writes
//!   each [`SegmentOut`] into an mbuf ([`SegmentOut::write`], then the
//!   pseudo-header checksum) and returns `false` when no mbuf is left.
//! * **Timers:** keep one deadline per connection, [`Endpoint::poll_at`]
//!   after every `input` / `output` / application call; at the deadline
//!   call `output`.
//! * **End:** free the connection when [`Endpoint::is_closed`] (its
//!   [`Endpoint::outcome`] says why: [`Outcome::Refused`] /
//!   [`Outcome::TimedOut`] for a backend connect, [`Outcome::Reset`]), or
//!   keep it through TIME-WAIT; a SYN reaching a TIME-WAIT endpoint may
//!   start a new connection if [`Endpoint::accepts_new_syn`]. Segments for
//!   no connection: [`reset_reply`].
//!
//! # Invariants
//!
//! * **Bounded memory, no allocation after construction.** The send and
//!   receive buffers are allocated once (sizes from [`Config`]); the
//!   out-of-order ranges and the SACK scoreboard are fixed-capacity arrays.
//!   Per segment, work is O(ranges) (≤ [`SACK_RANGES`]), never an
//!   allocation. A full range set drops the newest out-of-order data (the
//!   peer resends it) or ignores a SACK block (its bytes just look
//!   un-SACKed).
//! * **No panics on any input.** Arithmetic on wire values is wrapping
//!   (sequence space, through [`qsplice_splice::seq`]) or saturating;
//!   slices are clamped. A property test feeds arbitrary segments to
//!   endpoints in every state.
//! * One `output` call emits at most `max_segs` segments.
//!
//! # Deliberately not implemented
//!
//! Urgent data (URG is ignored; the bytes are ordinary data); LISTEN and
//! SYN handling on a listening socket (passive opens come from the caller's
//! SYN cache or cookies); path MTU *probing* (the caller sets `mss` from
//! its MTU and hands on routers' "packet too big" errors:
//! [`Endpoint::path_mtu`] lowers the send MSS and resends the flight); ECN; keepalives (the caller runs idle timeouts); F-RTO /
//! Eifel spurious-RTO undo; RACK time-based loss detection beyond the tail
//! probe; pacing; PRR (recovery follows RFC 6675's cwnd = ssthresh); the
//! RFC 6298 §5.7 3 s RTO after a lost SYN; a FIN-WAIT-2 timeout (the
//! caller's idle timeout covers it).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bbr;
mod buf;
mod cc;
mod config;
mod endpoint;
mod handshake;
mod ranges;
mod rtt;
mod segment;

pub use config::{Config, Congestion, DEFAULT_MIN_SND_MSS};
pub use endpoint::{
    reset_reply, Buffers, Endpoint, EndpointStats, Now, Outcome, State, MAX_SEGS_PER_CALL,
    OOO_RANGES, SACK_RANGES,
};
pub use handshake::{Handshake, SynAck, SynOptions, TsInfo};
pub use qsplice_wire::TcpFlags;
pub use segment::{OutOptions, SegOptions, Segment, SegmentOut};

#[cfg(test)]
mod tests;
