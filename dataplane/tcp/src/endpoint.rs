//! The TCP endpoint: state machine, sender (RFC 6675 SACK recovery, RFC
//! 6582 NewReno, RFC 6298 RTO, RFC 8985 tail loss probe, persist timer) and
//! receiver (out-of-order queue, SACK / D-SACK generation, delayed ACKs,
//! window advertisement).

use arrayvec::ArrayVec;
use qsplice_splice::seq::{ge, gt, le, lt};
use qsplice_wire::TcpFlags;

use crate::bbr::RateSampler;
use crate::buf::Ring;
use crate::cc::Cc;
use crate::config::{Config, Congestion, Params};
use crate::handshake::Handshake;
use crate::ranges::{Inserted, SeqRange, SeqRanges};
use crate::rtt::Rtt;
use crate::segment::{OutOptions, Segment, SegmentOut};

/// Out-of-order ranges the receiver keeps (beyond: new out-of-order data
/// that would need another range is dropped, the sender retransmits it).
pub const OOO_RANGES: usize = 16;
/// SACKed ranges the sender's scoreboard keeps (beyond: a new block is
/// ignored; its bytes merely look un-SACKed).
pub const SACK_RANGES: usize = 32;
/// A sensible `max_segs` for [`Endpoint::output`].
pub const MAX_SEGS_PER_CALL: usize = 64;

/// Allowance for the peer's delayed ACK in the probe timeout when a single
/// segment is in flight (RFC 8985 §7.2 uses a worst case; Linux 200 ms;
/// peers in quick-ACK mode answer at once).
const TLP_DELACK_US: u64 = 40_000;
/// Added to 2·SRTT in the probe timeout: room for the receiver's and our
/// own scheduling (Linux adds `TCP_TIMEOUT_MIN`, 2 ms; the early draft of
/// TLP floored the PTO at 10 ms, which on a sub-millisecond path let a
/// lost retransmission stall the flow for 50–100 RTTs).
const PTO_SLACK_US: u64 = 2_000;

/// The time, as the caller's clocks tell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic clock, µs (timers, RTT samples).
    pub us: u64,
    /// The TCP timestamp clock (TSval we send): ms granularity, monotonic
    /// across restarts of the appliance, wrapping.
    pub tsval: u32,
}

impl Now {
    /// `us`, with the TS clock derived from it (ms).
    pub fn from_us(us: u64) -> Now {
        Now {
            us,
            tsval: (us / 1000) as u32,
        }
    }
}

/// RFC 9293 connection states (no LISTEN: passive opens are created
/// established by [`Endpoint::accept`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Ended (see [`Endpoint::outcome`]), or never opened.
    Closed,
    /// Active open: our SYN sent, waiting for the SYN-ACK.
    SynSent,
    /// Simultaneous open: both SYNs seen, our SYN-ACK not yet acknowledged.
    SynReceived,
    /// Data flows both ways.
    Established,
    /// We closed; our FIN queued or sent, not acknowledged.
    FinWait1,
    /// Our FIN acknowledged; waiting for the peer's.
    FinWait2,
    /// The peer closed; we may still send.
    CloseWait,
    /// Both closed at once; our FIN not yet acknowledged.
    Closing,
    /// The peer closed, then we did; our FIN not yet acknowledged.
    LastAck,
    /// Both FINs exchanged and acknowledged; lingering for retransmitted FINs.
    TimeWait,
}

/// How a connection ended, when it did not end with both FINs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Active open answered by a RST.
    Refused,
    /// SYN retransmissions exhausted, or data / probes unacknowledged after
    /// `max_retries` timeouts.
    TimedOut,
    /// The peer reset the connection.
    Reset,
    /// [`Endpoint::abort`] was called.
    Aborted,
}

/// Counters and current values, for the lcore's counters and for tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Segments given to [`Endpoint::input`].
    pub segs_in: u64,
    /// Segments emitted.
    pub segs_out: u64,
    /// Payload bytes delivered in order to the receive buffer.
    pub bytes_in: u64,
    /// New payload bytes sent (retransmissions not counted).
    pub bytes_out: u64,
    /// Segments retransmitted, whatever the cause (SYN, fast retransmit,
    /// SACK recovery, RTO, tail loss probe, zero-window probe).
    pub retransmits: u64,
    /// Payload bytes retransmitted.
    pub retransmit_bytes: u64,
    /// Fast recovery episodes entered (duplicate ACKs or SACK loss
    /// detection).
    pub fast_retransmits: u64,
    /// Of those, episodes driven by SACK (RFC 6675).
    pub sack_recoveries: u64,
    /// Retransmission timeouts (SYN timeouts included).
    pub rto_timeouts: u64,
    /// Tail loss probes sent.
    pub tlp_probes: u64,
    /// Tail losses repaired by a probe (congestion response taken).
    pub tlp_recoveries: u64,
    /// Probe timeouts in fast recovery: the cumulative ACK did not move
    /// for 2·SRTT + 2 ms, so what was sent before and is still
    /// un-SACKed (a lost retransmission, a lost tail) is resent instead of
    /// waiting for the RTO.
    pub recovery_probes: u64,
    /// Zero-window probes sent.
    pub persist_probes: u64,
    /// Duplicate ACKs received.
    pub dup_acks: u64,
    /// D-SACK blocks received.
    pub dsacks_rx: u64,
    /// Out-of-order segments stored.
    pub ooo_segments: u64,
    /// Out-of-order segments dropped (no range left).
    pub ooo_dropped: u64,
    /// ACKs sent in answer to out-of-window segments.
    pub oow_acks: u64,
    /// RFC 5961 challenge ACKs sent.
    pub challenge_acks: u64,
    /// Segments dropped by PAWS (RFC 7323 §5).
    pub paws_drops: u64,
    /// RTT samples taken.
    pub rtt_samples: u64,
    /// Smoothed RTT (µs, 0: no sample yet).
    pub srtt_us: u64,
    /// RTT variation (µs).
    pub rttvar_us: u64,
    /// Current RTO, backoff included (µs).
    pub rto_us: u64,
    /// Congestion window (bytes).
    pub cwnd: u32,
    /// Slow-start threshold (bytes; `u32::MAX` before the first loss).
    pub ssthresh: u32,
    /// The peer's receive window (bytes, scaled).
    pub snd_wnd: u32,
    /// Payload bytes per full-sized segment we send.
    pub snd_mss: u32,
    /// Times an ICMP "packet too big" lowered the send MSS
    /// ([`Endpoint::path_mtu`]).
    pub pmtu_lowered: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recovery {
    None,
    /// Fast recovery (RFC 6675 with SACK, RFC 6582 without).
    Fast,
    /// After a retransmission timeout: everything un-SACKed below the
    /// recovery point is lost and resent under slow start.
    Rto,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    New,
    Head,
    Lost,
    Probe,
    Tlp,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Rst { seq: u32, ack: Option<u32> },
    Syn,
    SynAck,
    Data { rtx: bool, why: Why },
    Ack,
}

#[derive(Clone, Copy, Debug)]
struct Plan {
    kind: Kind,
    seq: u32,
    len: u32,
    fin: bool,
}

/// One TCP connection, sans-IO. See the [crate documentation](crate).
#[derive(Debug)]
pub struct Endpoint {
    p: Params,
    state: State,
    outcome: Option<Outcome>,
    /// Opened by `connect` (a RST in SYN-RECEIVED means refused).
    active: bool,

    // ---- send side ----
    iss: u32,
    snd_una: u32,
    /// Highest sequence number sent + 1 (RFC 6675 HighData + 1).
    snd_nxt: u32,
    snd_wnd: u32,
    snd_wl1: u32,
    snd_wl2: u32,
    max_snd_wnd: u32,
    snd_ws: u8,
    rcv_ws: u8,
    /// Window scaling agreed.
    ws_ok: bool,
    /// Payload bytes per full segment.
    smss: u32,
    sndbuf: Ring,
    /// Sequence number of the send buffer's first byte.
    snd_base: u32,
    fin_queued: bool,
    /// Sequence number of our FIN once sent.
    fin_seq: Option<u32>,
    syn_pending: bool,
    syn_sends: u8,
    sack_ok: bool,
    ts_ok: bool,
    scoreboard: SeqRanges<SACK_RANGES>,
    sack_stamp: u32,
    dupacks: u32,
    recovery: Recovery,
    recovery_point: u32,
    /// RFC 6582 `recover`: no new fast recovery until the cumulative ACK
    /// passes it.
    recover: u32,
    /// RFC 6675 HighRxt: retransmissions of this episode reached here.
    high_rxt: u32,
    /// Retransmit the segment at `snd_una` next, whatever the pipe (fast
    /// retransmit; NewReno partial ACK).
    rtx_head: bool,
    /// NewReno's inflated window during fast recovery without SACK.
    nr_cwnd: u32,
    cc: Cc,
    /// Delivery rate sampling (BBR only).
    rates: Option<Box<RateSampler>>,
    rtt: Rtt,
    /// The segment being timed: (sequence number it ends at, sent at µs).
    timed: Option<(u32, u64)>,
    /// A retransmission happened since the last RTT sample: timestamps
    /// may measure (Karn's rule forbids timing it otherwise).
    rtx_unsampled: bool,
    /// Retransmission timer; also the SYN timer and the persist timer.
    rto_at: Option<u64>,
    retries: u8,
    probes: u8,
    probe_due: bool,
    /// Corked (see [`set_cork`](Endpoint::set_cork)).
    cork: bool,
    /// A zero-window probe sent new data from here (nothing else was in
    /// flight): if the window reopens without it being accepted, sending
    /// resumes from here (as BSD does).
    zwp_from: Option<u32>,
    tlp_at: Option<u64>,
    tlp_due: bool,
    /// snd_nxt when a retransmitting tail loss probe went out.
    tlp_high: Option<u32>,
    /// In fast recovery, `tlp_at` is the recovery probe: snd_nxt when it
    /// was armed (what it will call lost if still un-SACKed).
    probe_hi: u32,
    /// A recovery probe fired: everything un-SACKed below this is lost.
    lost_upto: Option<u32>,

    // ---- receive side ----
    irs: u32,
    rcv_nxt: u32,
    /// Right edge of the window last advertised.
    rcv_adv: u32,
    rcvbuf: Ring,
    ooo: SeqRanges<OOO_RANGES>,
    ooo_stamp: u32,
    peer_fin_at: Option<u32>,
    dsack_tx: Option<(u32, u32)>,
    ack_now: bool,
    delack_at: Option<u64>,
    unacked: u32,
    rcv_mss: u32,
    quickack: u32,
    ts_recent: u32,
    last_ack_sent: u32,
    last_oow_ack: Option<u64>,

    pending_rst: Option<(u32, Option<u32>)>,
    tw_at: Option<u64>,
    last_now: u64,
    stats: EndpointStats,
}

fn smss_for(p: &Params, peer_mss: u16, ts: bool) -> u32 {
    let base = u32::from(peer_mss.min(p.mss));
    let opt = if ts { 12 } else { 0 };
    base.saturating_sub(opt)
        .max(u32::from(p.min_snd_mss))
        .max(1)
}

fn seq_min(a: u32, b: u32) -> u32 {
    if lt(a, b) {
        a
    } else {
        b
    }
}

fn seq_max(a: u32, b: u32) -> u32 {
    if gt(a, b) {
        a
    } else {
        b
    }
}

/// The send and receive buffers of an endpoint that ended
/// ([`Endpoint::into_buffers`]), for the next one of the same [`Config`]
/// ([`Endpoint::connect_reusing`], [`Endpoint::accept_reusing`]): a caller
/// that opens connection after connection keeps a few of these and opens
/// without allocating or zeroing the buffers again.
#[derive(Debug, Default)]
pub struct Buffers {
    snd: Option<Vec<u8>>,
    rcv: Option<Vec<u8>>,
}

impl Buffers {
    /// Whether it holds no memory (an endpoint's parked buffers).
    pub fn is_empty(&self) -> bool {
        self.snd.is_none() && self.rcv.is_none()
    }

    /// Bytes of memory it holds.
    pub fn bytes(&self) -> usize {
        self.snd.as_ref().map_or(0, Vec::len) + self.rcv.as_ref().map_or(0, Vec::len)
    }
}

impl Endpoint {
    fn blank_in(cfg: &Config, iss: u32, now: Now, bufs: Buffers) -> Endpoint {
        let p = Params::new(cfg);
        let smss = smss_for(&p, 536, false);
        Endpoint {
            state: State::Closed,
            outcome: None,
            active: false,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_wnd: 0,
            snd_wl1: 0,
            snd_wl2: iss,
            max_snd_wnd: 0,
            snd_ws: 0,
            rcv_ws: 0,
            ws_ok: false,
            smss,
            sndbuf: Ring::reuse(bufs.snd, cfg.snd_buf_clamped()),
            snd_base: iss.wrapping_add(1),
            fin_queued: false,
            fin_seq: None,
            syn_pending: false,
            syn_sends: 0,
            sack_ok: false,
            ts_ok: false,
            scoreboard: SeqRanges::new(),
            sack_stamp: 0,
            dupacks: 0,
            recovery: Recovery::None,
            recovery_point: iss,
            recover: iss,
            high_rxt: iss,
            rtx_head: false,
            nr_cwnd: 0,
            cc: Cc::new(p.congestion, smss, p.initial_cwnd_segs),
            rates: (p.congestion == Congestion::Bbr).then(|| Box::new(RateSampler::new())),
            rtt: Rtt::new(p.initial_rto_us, p.min_rto_us, p.max_rto_us),
            timed: None,
            rtx_unsampled: false,
            rto_at: None,
            retries: 0,
            probes: 0,
            probe_due: false,
            cork: false,
            zwp_from: None,
            tlp_at: None,
            tlp_due: false,
            tlp_high: None,
            probe_hi: iss,
            lost_upto: None,
            irs: 0,
            rcv_nxt: 0,
            rcv_adv: 0,
            rcvbuf: Ring::reuse(bufs.rcv, cfg.rcv_buf_clamped()),
            ooo: SeqRanges::new(),
            ooo_stamp: 0,
            peer_fin_at: None,
            dsack_tx: None,
            ack_now: false,
            delack_at: None,
            unacked: 0,
            rcv_mss: 536,
            quickack: p.quickack_segs,
            ts_recent: 0,
            last_ack_sent: 0,
            last_oow_ack: None,
            pending_rst: None,
            tw_at: None,
            last_now: now.us,
            stats: EndpointStats::default(),
            p,
        }
    }

    /// A passive open whose three-way handshake the caller completed (SYN
    /// cache or SYN cookie: the final ACK was validated). ESTABLISHED at
    /// once. The SYN-ACK must have announced `cfg.syn_window()` and the
    /// options of [`SynAck::answer`](crate::SynAck::answer) (or the same
    /// choices made otherwise, as `hs` records them).
    pub fn accept(cfg: &Config, hs: Handshake, now: Now) -> Endpoint {
        Endpoint::accept_reusing(cfg, hs, now, Buffers::default())
    }

    /// [`accept`](Self::accept) in the buffers of an endpoint that ended
    /// (allocated anew where their sizes differ from `cfg`'s).
    pub fn accept_reusing(cfg: &Config, hs: Handshake, now: Now, bufs: Buffers) -> Endpoint {
        let mut e = Endpoint::blank_in(cfg, hs.iss, now, bufs);
        e.state = State::Established;
        let una = hs.iss.wrapping_add(1);
        e.snd_una = una;
        e.snd_nxt = una;
        e.snd_base = una;
        e.recover = una;
        e.recovery_point = una;
        e.high_rxt = una;
        e.irs = hs.irs;
        e.rcv_nxt = hs.irs.wrapping_add(1);
        e.sack_ok = hs.sack;
        e.ts_ok = hs.ts.is_some();
        if let Some(ts) = hs.ts {
            e.ts_recent = ts.ts_recent;
        }
        if let Some(s) = hs.peer_ws {
            e.snd_ws = s.min(14);
            e.rcv_ws = hs.local_ws.min(14);
            e.ws_ok = true;
        }
        e.set_mss(hs.peer_mss);
        e.snd_wnd = u32::from(hs.peer_window) << e.snd_ws;
        e.max_snd_wnd = e.snd_wnd;
        e.snd_wl1 = e.rcv_nxt;
        e.snd_wl2 = una;
        e.rcv_adv = e.rcv_nxt.wrapping_add(u32::from(cfg.syn_window()));
        e.last_ack_sent = e.rcv_nxt;
        if let Some(r) = hs.rtt_us {
            e.take_rtt(r);
        } else if let Some(ts) = hs.ts {
            e.ts_sample(ts.tsecr, now);
        }
        e.sync_stats();
        e
    }

    /// An active open: SYN-SENT; [`output`](Self::output) sends the SYN
    /// (options: our MSS, window scale, SACK-permitted, timestamps, as the
    /// config enables them) with sequence number `iss`.
    pub fn connect(cfg: &Config, iss: u32, now: Now) -> Endpoint {
        Endpoint::connect_reusing(cfg, iss, now, Buffers::default())
    }

    /// [`connect`](Self::connect) in the buffers of an endpoint that
    /// ended (allocated anew where their sizes differ from `cfg`'s).
    pub fn connect_reusing(cfg: &Config, iss: u32, now: Now, bufs: Buffers) -> Endpoint {
        let mut e = Endpoint::blank_in(cfg, iss, now, bufs);
        e.state = State::SynSent;
        e.active = true;
        e.syn_pending = true;
        e.sync_stats();
        e
    }

    /// Gives up the endpoint's buffers for a next endpoint (what they
    /// hold is not read again).
    pub fn into_buffers(mut self) -> Buffers {
        self.take_buffers()
    }

    /// [`into_buffers`](Self::into_buffers) in place: the endpoint keeps
    /// its record (not to be used again as a connection) and gives up its
    /// buffers, whatever they hold.
    pub fn take_buffers(&mut self) -> Buffers {
        Buffers {
            snd: self.sndbuf.take(),
            rcv: self.rcvbuf.take(),
        }
    }

    /// Gives back the buffers' memory while nothing is queued either way
    /// (no unacknowledged or unsent bytes, no received bytes unread, none
    /// out of order): a connection at rest then holds only its record.
    /// The windows it advertises do not change. [`unpark`](Self::unpark)
    /// before the next [`input`](Self::input) or [`send`](Self::send)
    /// (either allocates if it was not).
    pub fn park(&mut self) -> Option<Buffers> {
        if !self.at_rest() {
            return None;
        }
        let b = Buffers {
            snd: self.sndbuf.park(),
            rcv: self.rcvbuf.park(),
        };
        (!b.is_empty()).then_some(b)
    }

    /// Nothing queued either way: [`park`](Self::park) would give the
    /// buffers back.
    pub fn at_rest(&self) -> bool {
        self.sndbuf.len() == 0 && self.rcvbuf.len() == 0 && self.ooo.is_empty()
    }

    /// Memory for parked buffers (`bufs`' when of the right size, else
    /// new); no-op when not parked.
    pub fn unpark(&mut self, bufs: Buffers) {
        self.sndbuf.unpark(bufs.snd);
        self.rcvbuf.unpark(bufs.rcv);
    }

    /// Whether a buffer is parked (call [`unpark`](Self::unpark) before
    /// input or sending).
    pub fn is_parked(&self) -> bool {
        self.sndbuf.is_parked() || self.rcvbuf.is_parked()
    }

    fn set_mss(&mut self, peer_mss: u16) {
        self.smss = smss_for(&self.p, peer_mss, self.ts_ok);
        self.cc = Cc::new(self.p.congestion, self.smss, self.p.initial_cwnd_segs);
    }

    // ---- queries --------------------------------------------------------

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Why the connection ended, when it ended abnormally (`None` while
    /// open and after an orderly close).
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }

    /// Whether [`send`](Self::send) may queue data (not closed by us, not
    /// ended).
    pub fn may_send(&self) -> bool {
        matches!(
            self.state,
            State::SynSent | State::SynReceived | State::Established | State::CloseWait
        ) && !self.fin_queued
    }

    /// Whether more data may arrive: the peer has not sent its FIN and the
    /// connection is synchronized.
    pub fn may_recv(&self) -> bool {
        matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        )
    }

    /// Whether the connection is CLOSED.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Counters and current values.
    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// The peer's initial sequence number (after the handshake).
    pub fn irs(&self) -> u32 {
        self.irs
    }

    /// Our initial sequence number.
    pub fn iss(&self) -> u32 {
        self.iss
    }

    /// In TIME-WAIT (or CLOSED), whether the SYN `seg` may open a new
    /// incarnation of the 4-tuple (RFC 6191): its TSval is newer than the
    /// last one seen when timestamps were in use, else its sequence number
    /// is beyond RCV.NXT. The caller then drops this endpoint and handles
    /// the SYN as a new connection; otherwise it feeds the SYN to
    /// [`input`](Self::input), which answers with a (challenge) ACK.
    pub fn accepts_new_syn(&self, seg: &Segment<'_>) -> bool {
        if !matches!(self.state, State::TimeWait | State::Closed)
            || !seg.flags.contains(TcpFlags::SYN)
            || seg.flags.intersects(TcpFlags::ACK | TcpFlags::RST)
        {
            return false;
        }
        match (self.ts_ok, seg.options.ts) {
            (true, Some((tsval, _))) => gt(tsval, self.ts_recent),
            _ => gt(seg.seq, self.rcv_nxt),
        }
    }

    /// The path's MTU shrank (RFC 1191 / RFC 8201): an ICMP "packet too
    /// big" quoted our segment `seq` and says segments may carry at most
    /// `mss` bytes after the TCP header (options and payload). The send
    /// MSS drops to fit (never below `min_snd_mss`), and what is in flight
    /// — the router dropped it — goes again at once at the new size (as a
    /// retransmission timeout would, without waiting for it). Ignored, as
    /// Linux does, unless `snd_una ≤ seq ≤ snd_nxt` (in flight, or the
    /// next byte of an idle connection) on a connection that sends data,
    /// and unless it lowers the MSS.
    /// Returns whether it applied.
    pub fn path_mtu(&mut self, mss: u32, seq: u32, now: Now) -> bool {
        if !self.sending_state() || lt(seq, self.snd_una) || gt(seq, self.snd_nxt) {
            return false;
        }
        let opt = if self.ts_ok { 12 } else { 0 };
        let new = mss
            .saturating_sub(opt)
            .max(u32::from(self.p.min_snd_mss))
            .max(1);
        if new >= self.smss {
            return false;
        }
        self.smss = new;
        self.stats.snd_mss = new;
        self.stats.pmtu_lowered += 1;
        if self.flight() > 0 {
            self.rto_at = Some(now.us);
        }
        true
    }

    /// Whether SACK was negotiated.
    pub fn sack_enabled(&self) -> bool {
        self.sack_ok
    }

    /// Whether timestamps were negotiated.
    pub fn timestamps_enabled(&self) -> bool {
        self.ts_ok
    }

    /// `(send, receive)` window-scale shifts in use.
    pub fn window_shifts(&self) -> (u8, u8) {
        (self.snd_ws, self.rcv_ws)
    }

    // ---- application side ----------------------------------------------

    /// Queues as much of `data` as the send buffer takes; returns the bytes
    /// queued (0 when [`may_send`](Self::may_send) is false).
    pub fn send(&mut self, data: &[u8]) -> usize {
        if !self.may_send() {
            return 0;
        }
        self.sndbuf.push(data)
    }

    /// Corks the sender (`MSG_MORE`, Linux's `TCP_CORK` for one batch):
    /// while corked, new data that would go out as a segment shorter than
    /// the MSS because it ends at the end of the queued data is held back,
    /// as more is about to be queued — so a writer that queues a stream in
    /// pieces (one TLS record per received segment) does not put a runt
    /// segment on the wire per piece. Full segments, retransmissions,
    /// probes, ACKs and a FIN are not held. The caller must uncork when
    /// it has nothing more to write for now (at the end of a receive
    /// burst), then call [`output`](Self::output).
    pub fn set_cork(&mut self, on: bool) {
        self.cork = on;
    }

    /// Free space in the send buffer (0 when sending is over).
    pub fn send_room(&self) -> usize {
        if self.may_send() {
            self.sndbuf.free()
        } else {
            0
        }
    }

    /// Bytes in the send buffer: not yet sent, or sent and not yet
    /// acknowledged.
    pub fn send_queued(&self) -> usize {
        self.sndbuf.len()
    }

    /// The in-order bytes received and not yet consumed, as one or two
    /// slices.
    pub fn recv_peek(&self) -> (&[u8], &[u8]) {
        self.rcvbuf.slices(0, self.rcvbuf.len())
    }

    /// Bytes ready for [`recv_peek`](Self::recv_peek).
    pub fn recv_ready(&self) -> usize {
        self.rcvbuf.len()
    }

    /// Drops `n` received bytes (at most what is ready). When that opens
    /// the window enough (to at least twice what was advertised, Linux's
    /// rule), a window update is due: call [`output`](Self::output).
    pub fn recv_consume(&mut self, n: usize) {
        let n = n.min(self.rcvbuf.len());
        if n == 0 {
            return;
        }
        self.rcvbuf.consume(n);
        if self.may_recv() {
            let cur = self.adv_wnd();
            let (_, edge) = self.rcv_window();
            let new = edge.wrapping_sub(self.rcv_nxt);
            let max = self.max_rcv_wnd();
            if new > cur && u64::from(new) >= 2 * u64::from(cur) && 2 * u64::from(cur) <= max {
                self.ack_now = true;
            }
        }
    }

    /// Closes our direction: a FIN goes out after the queued data. No-op
    /// once closing; in SYN-SENT the connection is simply dropped.
    pub fn close(&mut self) {
        match self.state {
            State::SynSent => self.end(None),
            State::SynReceived => self.fin_queued = true,
            State::Established => {
                self.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.state = State::LastAck;
            }
            _ => {}
        }
    }

    /// Resets the connection: CLOSED at once ([`Outcome::Aborted`]); the
    /// next [`output`](Self::output) emits the RST (none from SYN-SENT or
    /// TIME-WAIT).
    pub fn abort(&mut self) {
        match self.state {
            State::Closed => {}
            State::SynSent => self.end(Some(Outcome::Aborted)),
            State::TimeWait => self.end(None),
            _ => {
                self.pending_rst = Some((self.snd_nxt, Some(self.rcv_nxt)));
                self.end(Some(Outcome::Aborted));
            }
        }
    }

    fn end(&mut self, outcome: Option<Outcome>) {
        self.state = State::Closed;
        if self.outcome.is_none() {
            self.outcome = outcome;
        }
        self.rto_at = None;
        self.tlp_at = None;
        self.delack_at = None;
        self.tw_at = None;
        self.ack_now = false;
        self.probe_due = false;
        self.tlp_due = false;
        self.syn_pending = false;
    }

    // ---- helpers ----------------------------------------------------------

    fn data_end(&self) -> u32 {
        self.snd_base.wrapping_add(self.sndbuf.len() as u32)
    }

    fn flight(&self) -> u32 {
        self.snd_nxt.wrapping_sub(self.snd_una)
    }

    fn unsent(&self) -> u32 {
        let end = self.data_end();
        if lt(self.snd_nxt, end) {
            end.wrapping_sub(self.snd_nxt)
        } else {
            0
        }
    }

    fn unsacked(&self, a: u32, b: u32) -> u32 {
        if !lt(a, b) {
            return 0;
        }
        b.wrapping_sub(a)
            .saturating_sub(self.scoreboard.covered(a, b))
    }

    /// The duplicate-ACK threshold, lowered by RFC 5827 early retransmit
    /// when fewer than 4 segments are outstanding and nothing new can be
    /// sent (a short response's tail: not enough segments follow a loss
    /// for 3 duplicate ACKs).
    fn dup_thresh(&self) -> u32 {
        let th = self.p.dup_thresh;
        if self.unsent() > 0 {
            return th;
        }
        let k = self.flight().div_ceil(self.smss.max(1));
        if (2..4).contains(&k) {
            th.min(k - 1)
        } else {
            th
        }
    }

    /// Everything un-SACKed below this is lost: RFC 6675 IsLost (DupThresh
    /// SACKed ranges, or more than (DupThresh − 1)·SMSS SACKed bytes,
    /// above), or the recovery point after an RTO.
    fn lost_end(&self) -> u32 {
        if self.recovery == Recovery::Rto {
            return self.recovery_point;
        }
        if !self.sack_ok {
            return self.snd_una;
        }
        let th = self.dup_thresh();
        let thr = (th - 1).saturating_mul(self.smss);
        let (mut bytes, mut n) = (0u32, 0u32);
        let mut end = self.snd_una;
        for r in self.scoreboard.iter().rev() {
            bytes = bytes.saturating_add(r.len());
            n += 1;
            if bytes > thr || n >= th {
                end = r.start;
                break;
            }
        }
        match self.lost_upto {
            Some(u) if self.recovery == Recovery::Fast && gt(u, end) => seq_min(u, self.snd_nxt),
            _ => end,
        }
    }

    /// RFC 6675 SetPipe: un-SACKed bytes not lost, plus retransmitted bytes
    /// not yet acknowledged.
    fn pipe(&self) -> u32 {
        let (una, nxt) = (self.snd_una, self.snd_nxt);
        let lb = seq_min(seq_max(self.lost_end(), una), nxt);
        let hr = seq_min(seq_max(self.high_rxt, una), nxt);
        self.unsacked(lb, nxt)
            .saturating_add(self.unsacked(una, hr))
    }

    fn cwnd_room(&self) -> u32 {
        if self.recovery == Recovery::Fast && !self.sack_ok {
            return self.nr_cwnd.saturating_sub(self.flight());
        }
        let mut c = self.cc.cwnd;
        if !self.sack_ok && self.recovery == Recovery::None {
            // RFC 3042 limited transmit.
            c = c.saturating_add(self.dupacks.min(2).saturating_mul(self.smss));
        }
        c.saturating_sub(self.pipe())
    }

    fn max_rcv_wnd(&self) -> u64 {
        (self.rcvbuf.cap() as u64).min((65535u64) << self.rcv_ws)
    }

    /// Window currently advertised (from rcv_nxt to the advertised edge).
    fn adv_wnd(&self) -> u32 {
        if gt(self.rcv_adv, self.rcv_nxt) {
            self.rcv_adv.wrapping_sub(self.rcv_nxt)
        } else {
            0
        }
    }

    /// The window field to send and the right edge it advertises: free
    /// buffer space, receiver-side SWS avoidance (the edge moves by at
    /// least min(buffer/2, MSS)), never shrinking (RFC 7323 §2.4: rounded
    /// up when the scaled value would move the edge left).
    fn rcv_window(&self) -> (u16, u32) {
        let free = (self.rcvbuf.free() as u64).min(self.max_rcv_wnd()) as u32;
        let cand = self.rcv_nxt.wrapping_add(free);
        let base = seq_max(self.rcv_adv, self.rcv_nxt);
        let thr = ((self.rcvbuf.cap() / 2) as u32)
            .min(u32::from(self.p.mss))
            .max(1);
        let edge = if gt(cand, base) && cand.wrapping_sub(base) >= thr {
            cand
        } else {
            base
        };
        let wnd = edge.wrapping_sub(self.rcv_nxt);
        let shift = u32::from(self.rcv_ws);
        let mut field = wnd >> shift;
        // Rounding down must not move the edge left of the one advertised.
        let need = self.adv_wnd();
        if (field << shift) < need {
            field = need.div_ceil(1 << shift);
        }
        let field = field.min(65535);
        (field as u16, self.rcv_nxt.wrapping_add(field << shift))
    }

    fn sending_state(&self) -> bool {
        matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        )
    }

    fn oow_ack(&mut self, now: u64) -> bool {
        let ok = self
            .last_oow_ack
            .is_none_or(|t| now.saturating_sub(t) >= self.p.oow_ack_interval_us);
        if ok {
            self.last_oow_ack = Some(now);
            self.ack_now = true;
        }
        ok
    }

    fn challenge_ack(&mut self, now: u64) {
        if self.oow_ack(now) {
            self.stats.challenge_acks += 1;
        }
    }

    fn take_rtt(&mut self, r: u64) {
        self.rtt.sample(r);
        self.rtx_unsampled = false;
        self.stats.rtt_samples += 1;
    }

    /// An RTT sample from an echoed TSval (RFC 7323 §4.1).
    fn ts_sample(&mut self, tsecr: u32, now: Now) -> bool {
        if tsecr == 0 {
            return false;
        }
        let d = now.tsval.wrapping_sub(tsecr);
        if d >= 1 << 31 {
            return false;
        }
        self.take_rtt(u64::from(d) * 1000);
        true
    }

    fn sync_stats(&mut self) {
        let s = &mut self.stats;
        s.srtt_us = self.rtt.srtt;
        s.rttvar_us = self.rtt.rttvar;
        s.rto_us = self.rtt.rto();
        s.cwnd = self.cc.cwnd;
        s.ssthresh = self.cc.ssthresh;
        s.snd_wnd = self.snd_wnd;
        s.snd_mss = self.smss;
    }

    // ---- input --------------------------------------------------------------

    /// Processes one incoming segment (checksum verified and demultiplexed
    /// by the caller). Call [`output`](Self::output) afterwards: ACKs, data
    /// and retransmissions it makes due go out there.
    pub fn input(&mut self, seg: &Segment<'_>, now: Now) {
        self.last_now = self.last_now.max(now.us);
        self.stats.segs_in += 1;
        match self.state {
            State::Closed => {}
            State::SynSent => self.input_syn_sent(seg, now),
            _ => self.input_sync(seg, now),
        }
        self.update_timers(now.us);
        self.sync_stats();
    }

    fn negotiate(&mut self, seg: &Segment<'_>) {
        let o = &seg.options;
        self.irs = seg.seq;
        self.rcv_nxt = seg.seq.wrapping_add(1);
        self.sack_ok = self.p.sack && o.sack_ok;
        self.ts_ok = self.p.timestamps && o.ts.is_some();
        if let Some((v, _)) = o.ts {
            self.ts_recent = v;
        }
        match o.ws {
            Some(s) if self.p.window_scaling => {
                self.snd_ws = s.min(14);
                self.rcv_ws = self.p.ws_local;
                self.ws_ok = true;
            }
            _ => {
                self.snd_ws = 0;
                self.rcv_ws = 0;
                self.ws_ok = false;
            }
        }
        self.set_mss(o.mss.unwrap_or(536));
        let syn_window = self.rcvbuf.cap().min(65535) as u32;
        self.rcv_adv = self.rcv_nxt.wrapping_add(syn_window);
        self.last_ack_sent = self.rcv_nxt;
    }

    fn input_syn_sent(&mut self, seg: &Segment<'_>, now: Now) {
        let rst = seg.flags.contains(TcpFlags::RST);
        let ack_ok = match seg.ack {
            Some(a) => {
                if le(a, self.iss) || gt(a, self.snd_nxt) {
                    if !rst {
                        self.pending_rst = Some((a, None));
                    }
                    return;
                }
                true
            }
            None => false,
        };
        if rst {
            if ack_ok {
                self.end(Some(Outcome::Refused));
            }
            return;
        }
        if !seg.flags.contains(TcpFlags::SYN) {
            return;
        }
        self.negotiate(seg);
        if let (true, Some(ack)) = (ack_ok, seg.ack) {
            self.snd_una = ack;
            self.high_rxt = ack;
            self.recover = ack;
            self.recovery_point = ack;
            // The SYN-ACK's window is never scaled (RFC 7323 §2.2).
            self.snd_wnd = u32::from(seg.window);
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = ack;
            self.rto_at = None;
            match self.timed.take() {
                Some((_, t)) => self.take_rtt(now.us.saturating_sub(t)),
                None => {
                    if self.ts_ok {
                        if let Some((_, e)) = seg.options.ts {
                            self.ts_sample(e, now);
                        }
                    }
                }
            }
            self.state = State::Established;
            self.ack_now = true;
            if self.fin_queued {
                self.state = State::FinWait1;
            }
            // Data on the SYN-ACK (rare) is taken as usual.
            let data = Segment {
                seq: self.rcv_nxt,
                flags: seg.flags - TcpFlags::SYN,
                ..*seg
            };
            self.process_data(&data, now);
        } else {
            // Simultaneous open (RFC 9293 §3.5): answer with a SYN-ACK.
            self.state = State::SynReceived;
            self.syn_pending = true;
            self.rto_at = None;
            self.timed = None;
        }
    }

    fn input_sync(&mut self, seg: &Segment<'_>, now: Now) {
        let rst = seg.flags.contains(TcpFlags::RST);
        let syn = seg.flags.contains(TcpFlags::SYN);
        let carries = !seg.payload.is_empty() || seg.flags.contains(TcpFlags::FIN);
        // PAWS (RFC 7323 §5.3).
        if self.ts_ok && !rst {
            if let Some((tsval, _)) = seg.options.ts {
                if lt(tsval, self.ts_recent) {
                    self.stats.paws_drops += 1;
                    if carries {
                        self.ack_now = true;
                    } else {
                        self.oow_ack(now.us);
                    }
                    return;
                }
            }
        }
        let wnd = self.adv_wnd();
        let end = seg.seq.wrapping_add(seg.seq_len());
        if rst {
            // RFC 5961 §3: exact → reset; in window → challenge ACK.
            if seg.seq == self.rcv_nxt {
                let o = match self.state {
                    State::TimeWait => None,
                    State::SynReceived if self.active => Some(Outcome::Refused),
                    _ => Some(Outcome::Reset),
                };
                self.end(o);
            } else if ge(seg.seq, self.rcv_nxt)
                && lt(seg.seq, self.rcv_nxt.wrapping_add(wnd.max(1)))
            {
                self.challenge_ack(now.us);
            }
            return;
        }
        if syn {
            // RFC 5961 §4: a SYN in a synchronized state, whatever its
            // sequence number, gets a challenge ACK.
            self.challenge_ack(now.us);
            return;
        }
        let acceptable = !lt(end, self.rcv_nxt) && !gt(seg.seq, self.rcv_nxt.wrapping_add(wnd));
        if !acceptable {
            if !seg.payload.is_empty() {
                if lt(end, self.rcv_nxt) && self.sack_ok && self.state != State::TimeWait {
                    self.dsack_tx = Some((seg.seq, seg.seq.wrapping_add(seg.payload.len() as u32)));
                }
                self.ack_now = true;
                self.stats.oow_acks += 1;
            } else if self.oow_ack(now.us) {
                self.stats.oow_acks += 1;
            }
            return;
        }
        let Some(ack) = seg.ack else { return };
        // RFC 7323 §4.3: TS.Recent from segments at or before Last.ACK.sent.
        if self.ts_ok {
            if let Some((tsval, _)) = seg.options.ts {
                if le(seg.seq, self.last_ack_sent) && ge(tsval, self.ts_recent) {
                    self.ts_recent = tsval;
                }
            }
        }
        if self.state == State::SynReceived {
            if lt(self.snd_una, ack) && le(ack, self.snd_nxt) {
                self.snd_una = ack;
                self.high_rxt = ack;
                self.recover = ack;
                self.recovery_point = ack;
                self.snd_wnd = u32::from(seg.window) << self.snd_ws;
                self.max_snd_wnd = self.snd_wnd;
                self.snd_wl1 = seg.seq;
                self.snd_wl2 = ack;
                self.rto_at = None;
                self.retries = 0;
                self.rtt.backoff = 0;
                self.state = if self.fin_queued {
                    State::FinWait1
                } else {
                    State::Established
                };
            } else {
                self.pending_rst = Some((ack, None));
                return;
            }
        }
        if gt(ack, self.snd_nxt) {
            // Acknowledges what we never sent.
            if self.oow_ack(now.us) {
                self.stats.oow_acks += 1;
            }
            return;
        }
        if lt(ack, self.snd_una.wrapping_sub(self.max_snd_wnd)) {
            // RFC 5961 §5.2: too old.
            if self.oow_ack(now.us) {
                self.stats.oow_acks += 1;
            }
            return;
        }
        self.process_ack(seg, ack, now);
        if self.state == State::Closed {
            return;
        }
        self.process_data(seg, now);
    }

    /// Marks SACK blocks; returns (bytes newly SACKed, a D-SACK seen).
    fn update_scoreboard(&mut self, blocks: &[Option<(u32, u32)>; 4], ack: u32) -> (u32, bool) {
        let mut newly = 0u32;
        let mut dsack = false;
        for (i, b) in blocks.iter().enumerate() {
            let Some((l, r)) = *b else { break };
            if !lt(l, r) {
                continue;
            }
            if i == 0 {
                // RFC 2883: a first block below the ACK, or inside the
                // second, reports a duplicate.
                let inside_second = blocks[1].is_some_and(|(l2, r2)| le(l2, l) && le(r, r2));
                if le(r, ack) || inside_second {
                    dsack = true;
                    self.stats.dsacks_rx += 1;
                    continue;
                }
            }
            if le(r, ack) || gt(r, self.snd_nxt) {
                continue;
            }
            let l = seq_max(l, ack);
            self.sack_stamp = self.sack_stamp.wrapping_add(1);
            if let Inserted::New(n) = self.scoreboard.insert(l, r, self.sack_stamp) {
                newly = newly.saturating_add(n);
            }
        }
        (newly, dsack)
    }

    fn process_ack(&mut self, seg: &Segment<'_>, ack: u32, now: Now) {
        let flight_before = self.flight();
        // Send window (RFC 9293 §3.10.7.4, SND.WL1/WL2).
        let wnd = u32::from(seg.window) << self.snd_ws;
        let mut window_changed = false;
        if ge(ack, self.snd_una)
            && (lt(self.snd_wl1, seg.seq) || (self.snd_wl1 == seg.seq && le(self.snd_wl2, ack)))
        {
            window_changed = wnd != self.snd_wnd;
            self.snd_wnd = wnd;
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = ack;
            self.max_snd_wnd = self.max_snd_wnd.max(wnd);
            if wnd > 0 {
                self.probe_due = false;
                if let Some(z) = self.zwp_from.take() {
                    // The window reopened: persist is over.
                    self.rtt.backoff = 0;
                    if ack == z && self.snd_una == z {
                        self.snd_nxt = z;
                        if self.fin_seq.is_some_and(|f| ge(f, z)) {
                            self.fin_seq = None;
                        }
                        self.rto_at = None;
                    }
                }
            }
        }
        self.probes = 0;
        // SACK blocks are ignored unless SACK was agreed.
        let has_sack = self.sack_ok && seg.options.sack[0].is_some();
        let una_before = self.snd_una;
        let sacked_before = if self.rates.is_some() {
            self.scoreboard.covered(self.snd_una, self.snd_nxt)
        } else {
            0
        };
        let (newly_sacked, dsack) = if has_sack {
            self.update_scoreboard(&seg.options.sack, ack)
        } else {
            (0, false)
        };

        if gt(ack, self.snd_una) {
            let acked = ack.wrapping_sub(self.snd_una);
            if gt(ack, self.snd_base) {
                let n = ack
                    .wrapping_sub(self.snd_base)
                    .min(self.sndbuf.len() as u32);
                self.sndbuf.consume(n as usize);
                self.snd_base = self.snd_base.wrapping_add(n);
            }
            self.snd_una = ack;
            self.tlp_due = false;
            self.scoreboard.trim_below(ack);
            if lt(self.high_rxt, ack) {
                self.high_rxt = ack;
            }
            self.retries = 0;
            self.rtt_on_ack(seg, ack, now);
            match self.recovery {
                Recovery::Fast if ge(ack, self.recovery_point) => {
                    self.recovery = Recovery::None;
                    self.lost_upto = None;
                    let c = if self.sack_ok {
                        self.cc.ssthresh
                    } else {
                        // RFC 6582 §3.2 step 3, option 1.
                        self.cc
                            .ssthresh
                            .min(self.flight().max(self.smss).saturating_add(self.smss))
                    };
                    self.cc.set_cwnd(c);
                    self.rtx_head = false;
                }
                Recovery::Fast => {
                    // Partial ACK.
                    if !self.sack_ok {
                        self.nr_cwnd = self.nr_cwnd.saturating_sub(acked);
                        if acked >= self.smss {
                            self.nr_cwnd = self.nr_cwnd.saturating_add(self.smss);
                        }
                    }
                    self.rtx_head = lt(ack, self.snd_nxt)
                        && self.high_rxt == ack
                        && !self.scoreboard.contains(ack);
                }
                Recovery::Rto => {
                    if ge(ack, self.recovery_point) {
                        self.recovery = Recovery::None;
                    }
                    self.cc
                        .on_ack(acked, flight_before, self.smss, now.us, self.rtt.srtt);
                }
                Recovery::None => {
                    self.cc
                        .on_ack(acked, flight_before, self.smss, now.us, self.rtt.srtt);
                }
            }
            self.dupacks = 0;
            if let Some(h) = self.tlp_high {
                if dsack {
                    // The probe was a duplicate: nothing was lost.
                    self.tlp_high = None;
                } else if ge(ack, h) {
                    // RFC 8985 §7.4: the probe repaired a tail loss.
                    self.tlp_high = None;
                    self.stats.tlp_recoveries += 1;
                    if self.recovery == Recovery::None {
                        let ss = self.cc.on_congestion(flight_before, self.smss);
                        self.cc.set_cwnd(ss);
                    }
                }
            }
            if self.snd_una == self.snd_nxt {
                self.rto_at = None;
                self.tlp_at = None;
            } else {
                self.rto_at = Some(now.us.saturating_add(self.rtt.rto()));
                self.arm_tlp(now.us);
            }
            if let Some(f) = self.fin_seq {
                if gt(ack, f) {
                    self.on_fin_acked(now.us);
                }
            }
        } else if ack == self.snd_una && self.snd_nxt != self.snd_una {
            let pure =
                seg.payload.is_empty() && !seg.flags.intersects(TcpFlags::SYN | TcpFlags::FIN);
            let dup =
                pure && self.snd_wnd != 0 && (newly_sacked > 0 || (!window_changed && !has_sack));
            if dup {
                self.dupacks = self.dupacks.saturating_add(1);
                self.stats.dup_acks += 1;
                match self.recovery {
                    Recovery::None
                        if self.dupacks >= self.dup_thresh() && ge(ack, self.recover) =>
                    {
                        self.enter_fast();
                    }
                    Recovery::Fast if !self.sack_ok => {
                        self.nr_cwnd = self.nr_cwnd.saturating_add(self.smss);
                    }
                    _ => {}
                }
            }
        }
        if self.rates.is_some() {
            self.bbr_update(una_before, sacked_before, now);
        }
        // RFC 6675 §5 (b): IsLost(HighACK + 1).
        if self.sack_ok
            && self.recovery == Recovery::None
            && self.snd_una != self.snd_nxt
            && ge(self.snd_una, self.recover)
            && lt(self.snd_una, self.lost_end())
            && !self.scoreboard.contains(self.snd_una)
        {
            self.enter_fast();
        }
    }

    /// BBR: what this ACK delivered (cumulative advance not SACKed before,
    /// plus newly SACKed) feeds the rate sampler and the model.
    fn bbr_update(&mut self, una_before: u32, sacked_before: u32, now: Now) {
        let sacked = self.scoreboard.covered(self.snd_una, self.snd_nxt);
        let advanced = self.snd_una.wrapping_sub(una_before);
        // Bytes SACKed before and now below SND.UNA are in both `advanced`
        // and `sacked_before`: delivered then, not now.
        let newly =
            (u64::from(advanced) + u64::from(sacked)).saturating_sub(u64::from(sacked_before));
        let flight = self.flight();
        let (sb, una) = (&self.scoreboard, self.snd_una);
        let Some(r) = self.rates.as_mut() else {
            return;
        };
        let sample = r.on_ack(newly, una, sacked > 0, |q| sb.contains(q), now.us);
        let delivered = r.delivered();
        let acked = u32::try_from(newly).unwrap_or(u32::MAX);
        self.cc
            .bbr_ack(sample, acked, delivered, flight, self.smss, now.us);
    }

    fn rtt_on_ack(&mut self, seg: &Segment<'_>, ack: u32, now: Now) {
        if let Some((end, t)) = self.timed {
            if ge(ack, end) {
                self.timed = None;
                self.take_rtt(now.us.saturating_sub(t));
                return;
            }
        }
        // Karn's rule keeps retransmitted data from being timed; the echoed
        // timestamp says which transmission is acknowledged (RFC 7323 §4).
        if self.ts_ok && self.rtx_unsampled {
            if let Some((_, e)) = seg.options.ts {
                self.ts_sample(e, now);
            }
        }
    }

    fn enter_fast(&mut self) {
        self.recovery = Recovery::Fast;
        self.recovery_point = self.snd_nxt;
        self.recover = self.snd_nxt;
        let ss = self.cc.on_congestion(self.flight(), self.smss);
        self.cc.set_cwnd(ss);
        self.nr_cwnd = ss.saturating_add(self.smss.saturating_mul(3));
        self.high_rxt = self.snd_una;
        self.rtx_head = !self.scoreboard.contains(self.snd_una);
        self.stats.fast_retransmits += 1;
        if self.sack_ok {
            self.stats.sack_recoveries += 1;
        }
        self.tlp_due = false;
        self.tlp_high = None;
        self.lost_upto = None;
        let now = self.last_now;
        self.arm_tlp(now);
    }

    fn on_fin_acked(&mut self, now: u64) {
        match self.state {
            State::FinWait1 => self.state = State::FinWait2,
            State::Closing => self.enter_time_wait(now),
            State::LastAck => self.end(None),
            _ => {}
        }
    }

    fn enter_time_wait(&mut self, now: u64) {
        self.state = State::TimeWait;
        self.tw_at = Some(now.saturating_add(self.p.time_wait_us));
        self.rto_at = None;
        self.tlp_at = None;
        self.tlp_due = false;
        self.probe_due = false;
        self.delack_at = None;
        self.ack_now = true;
    }

    fn process_data(&mut self, seg: &Segment<'_>, now: Now) {
        let mut fin = seg.flags.contains(TcpFlags::FIN);
        if seg.payload.is_empty() && !fin {
            return;
        }
        if !self.may_recv() {
            // After the peer's FIN only duplicates can come: ACK them.
            self.ack_now = true;
            if self.state == State::TimeWait && fin {
                self.tw_at = Some(now.us.saturating_add(self.p.time_wait_us));
            }
            return;
        }
        let mut seq = seg.seq;
        let mut data = seg.payload;
        if lt(seq, self.rcv_nxt) {
            let skip = self.rcv_nxt.wrapping_sub(seq) as usize;
            self.ack_now = true;
            if !data.is_empty() && self.sack_ok {
                let dup_end = if skip < data.len() {
                    self.rcv_nxt
                } else {
                    seq.wrapping_add(data.len() as u32)
                };
                self.dsack_tx = Some((seq, dup_end));
            }
            if skip >= data.len() {
                // All old; the FIN is new only if it sits at rcv_nxt.
                fin = fin && seq.wrapping_add(data.len() as u32) == self.rcv_nxt;
                data = &[];
            } else {
                data = &data[skip..];
            }
            seq = self.rcv_nxt;
        }
        let off = seq.wrapping_sub(self.rcv_nxt) as usize;
        let avail = self.rcvbuf.free();
        let keep = avail.saturating_sub(off).min(data.len());
        if keep < data.len() {
            // Beyond the buffer: trimmed (and the FIN with it).
            data = &data[..keep];
            fin = false;
            self.ack_now = true;
        }
        if data.is_empty() && !fin {
            self.ack_now = true;
            return;
        }
        let n = data.len() as u32;
        let fin_seq = seq.wrapping_add(n);
        if off == 0 {
            let len = self.rcvbuf.len();
            self.rcvbuf.write_at(len, data);
            self.rcvbuf.grow(data.len());
            self.rcv_nxt = self.rcv_nxt.wrapping_add(n);
            self.stats.bytes_in += u64::from(n);
            let filled = !self.ooo.is_empty();
            while let Some(f) = self.ooo.first().copied() {
                if gt(f.start, self.rcv_nxt) {
                    break;
                }
                if gt(f.end, self.rcv_nxt) {
                    let m = f.end.wrapping_sub(self.rcv_nxt);
                    self.rcvbuf.grow(m as usize);
                    self.rcv_nxt = f.end;
                    self.stats.bytes_in += u64::from(m);
                }
                self.ooo.trim_below(self.rcv_nxt);
            }
            if fin {
                self.peer_fin_at = Some(fin_seq);
            }
            if filled {
                // Hole filled: ACK at once (RFC 5681 §4.2).
                self.ack_now = true;
            } else if n > 0 {
                self.rcv_mss = self.rcv_mss.max(n).min(65535);
                self.unacked = self.unacked.saturating_add(n);
                if self.quickack > 0 {
                    self.quickack -= 1;
                    self.ack_now = true;
                } else if self.unacked >= self.rcv_mss.saturating_mul(2) {
                    self.ack_now = true;
                } else if self.delack_at.is_none() {
                    self.delack_at = Some(now.us.saturating_add(self.p.delayed_ack_us));
                }
            }
        } else {
            if n > 0 {
                self.ooo_stamp = self.ooo_stamp.wrapping_add(1);
                match self.ooo.insert(seq, fin_seq, self.ooo_stamp) {
                    Inserted::New(_) => {
                        let at = self.rcvbuf.len() + off;
                        self.rcvbuf.write_at(at, data);
                        self.stats.ooo_segments += 1;
                    }
                    Inserted::Full => {
                        self.stats.ooo_dropped += 1;
                        fin = false;
                    }
                }
            }
            if fin && self.peer_fin_at.is_none() {
                self.peer_fin_at = Some(fin_seq);
            }
            // Out of order: ACK at once, with SACK blocks.
            self.ack_now = true;
        }
        if let Some(f) = self.peer_fin_at {
            if f == self.rcv_nxt {
                self.peer_fin_at = None;
                self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
                self.ack_now = true;
                match self.state {
                    State::Established => self.state = State::CloseWait,
                    State::FinWait1 => self.state = State::Closing,
                    State::FinWait2 => self.enter_time_wait(now.us),
                    _ => {}
                }
            } else if lt(f, self.rcv_nxt) {
                self.peer_fin_at = None;
            }
        }
    }

    // ---- timers -------------------------------------------------------------

    fn on_timers(&mut self, now: Now) {
        let t = now.us;
        if self.delack_at.is_some_and(|d| t >= d) {
            self.delack_at = None;
            self.ack_now = true;
        }
        if self.rto_at.is_some_and(|d| t >= d) {
            self.rto_at = None;
            match self.state {
                State::SynSent | State::SynReceived => self.on_syn_timeout(t),
                State::Closed | State::TimeWait | State::FinWait2 => {}
                _ => {
                    if self.flight() == 0 || self.snd_wnd == 0 {
                        self.on_persist(t);
                    } else {
                        self.on_rto(t);
                    }
                }
            }
        }
        if self.tlp_at.is_some_and(|d| t >= d) {
            self.tlp_at = None;
            if self.flight() > 0 && self.sending_state() {
                match self.recovery {
                    Recovery::None => self.tlp_due = true,
                    Recovery::Fast if self.sack_ok => self.recovery_probe(),
                    _ => {}
                }
            }
        }
        self.check_time_wait(t);
    }

    fn check_time_wait(&mut self, t: u64) {
        if self.state == State::TimeWait && !self.ack_now && self.tw_at.is_some_and(|d| t >= d) {
            self.end(None);
        }
    }

    fn on_syn_timeout(&mut self, t: u64) {
        self.stats.rto_timeouts += 1;
        if self.syn_sends > self.p.syn_retries {
            self.end(Some(Outcome::TimedOut));
            return;
        }
        self.rtt.back_off();
        self.syn_pending = true;
        self.timed = None;
        self.rto_at = Some(t.saturating_add(self.rtt.rto()));
    }

    fn on_persist(&mut self, t: u64) {
        self.probes = self.probes.saturating_add(1);
        if self.probes > self.p.max_retries {
            self.end(Some(Outcome::TimedOut));
            return;
        }
        self.probe_due = true;
        self.rtt.back_off();
        self.rto_at = Some(t.saturating_add(self.rtt.rto()));
    }

    fn on_rto(&mut self, t: u64) {
        self.retries = self.retries.saturating_add(1);
        if self.retries > self.p.max_retries {
            self.end(Some(Outcome::TimedOut));
            return;
        }
        self.stats.rto_timeouts += 1;
        let first = self.recovery == Recovery::None;
        self.cc.on_rto(self.flight(), self.smss, first);
        self.recovery = Recovery::Rto;
        self.lost_upto = None;
        self.recovery_point = self.snd_nxt;
        self.recover = self.snd_nxt;
        self.high_rxt = self.snd_una;
        self.rtx_head = false;
        self.dupacks = 0;
        self.rtt.back_off();
        self.rto_at = Some(t.saturating_add(self.rtt.rto()));
        self.timed = None;
        self.rtx_unsampled = true;
        self.tlp_at = None;
        self.tlp_due = false;
        self.tlp_high = None;
    }

    /// The probe timeout fired in fast recovery: the cumulative ACK has not
    /// moved for 2·SRTT + 2 ms — several RTTs —, so what was sent before
    /// the timer was armed and is still un-SACKed is lost (a lost
    /// retransmission, which no later SACK may reveal when nothing new
    /// could be sent after it; a lost tail with too few SACKs above it).
    /// Rule 1 resends it from SND.UNA, skipping SACKed data, within cwnd;
    /// no further reduction (same episode). One probe per stall: the RTO
    /// stays armed behind it.
    fn recovery_probe(&mut self) {
        if !gt(self.probe_hi, self.snd_una) {
            return;
        }
        self.stats.recovery_probes += 1;
        self.lost_upto = Some(self.probe_hi);
        self.high_rxt = self.snd_una;
        self.rtx_head = false;
    }

    /// Arms the tail loss probe (open state) or the recovery probe (fast
    /// recovery with SACK).
    fn arm_tlp(&mut self, now: u64) {
        self.tlp_at = None;
        if self.rtt.samples == 0 || self.snd_wnd == 0 || self.flight() == 0 {
            return;
        }
        let mut pto = self.rtt.srtt.saturating_mul(2).saturating_add(PTO_SLACK_US);
        match self.recovery {
            Recovery::None if self.p.tlp && self.tlp_high.is_none() => {
                if self.flight() <= self.smss {
                    pto = pto.saturating_add(TLP_DELACK_US);
                }
            }
            Recovery::Fast if self.sack_ok => self.probe_hi = self.snd_nxt,
            _ => return,
        }
        let at = now.saturating_add(pto);
        if self.rto_at.is_none_or(|r| at < r) {
            self.tlp_at = Some(at);
        }
    }

    /// Arms the RTO when something is in flight, the persist timer when
    /// data waits for a window with nothing in flight.
    fn update_timers(&mut self, now: u64) {
        if !self.sending_state() {
            return;
        }
        if self.flight() > 0 {
            if self.rto_at.is_none() {
                self.rto_at = Some(now.saturating_add(self.rtt.rto()));
            }
            return;
        }
        let waiting = self.unsent() > 0 || (self.fin_queued && self.fin_seq.is_none());
        if waiting && self.plan_send().is_none() {
            if self.rto_at.is_none() {
                self.rto_at = Some(now.saturating_add(self.rtt.rto()));
            }
        } else {
            // Nothing to wait for, or something to send right away (which
            // arms the timer when it goes).
            self.rto_at = None;
            if !waiting {
                self.probe_due = false;
            }
        }
    }

    /// The next deadline (µs) at which [`output`](Self::output) has
    /// something to do: a timer (RTO, SYN, persist, delayed ACK, tail loss
    /// probe, TIME-WAIT), or — when a segment can go out right away — the
    /// time of the last call. `None`: nothing until a segment arrives or
    /// the application acts.
    pub fn poll_at(&self) -> Option<u64> {
        if self.plan().is_some() {
            return Some(self.last_now);
        }
        [self.rto_at, self.tlp_at, self.delack_at, self.tw_at]
            .into_iter()
            .flatten()
            .min()
    }

    // ---- output -------------------------------------------------------------

    /// Runs the timers due at `now`, then emits up to `max_segs` segments
    /// that are due (handshake, data within the congestion and receive
    /// windows, retransmissions, FIN, ACKs, window updates, probes, RST),
    /// calling `out` for each. `out` returns whether the segment was
    /// transmitted: on `false` the endpoint stops and takes nothing as sent
    /// (the same segment is planned again next time). Returns the number of
    /// segments emitted. Call it after every [`input`](Self::input),
    /// [`send`](Self::send), [`recv_consume`](Self::recv_consume),
    /// [`close`](Self::close), [`abort`](Self::abort), and when
    /// [`poll_at`](Self::poll_at) is reached.
    pub fn output<F>(&mut self, now: Now, max_segs: usize, mut out: F) -> usize
    where
        F: FnMut(&SegmentOut<'_>) -> bool,
    {
        self.last_now = self.last_now.max(now.us);
        self.on_timers(now);
        let mut n = 0;
        while n < max_segs {
            let Some(plan) = self.plan() else { break };
            let sent = {
                let seg = self.build(&plan, now);
                out(&seg)
            };
            if !sent {
                break;
            }
            self.commit(&plan, now);
            n += 1;
        }
        if self.rates.is_some() && self.unsent() == 0 && self.cwnd_room() > 0 {
            let flight = self.flight();
            if let Some(r) = self.rates.as_mut() {
                r.mark_app_limited(flight);
            }
        }
        self.check_time_wait(now.us);
        self.update_timers(now.us);
        self.sync_stats();
        n
    }

    /// Payload bytes for the next segment: the send MSS, less the SACK
    /// option when blocks will ride along (never below `min_snd_mss`).
    fn max_payload(&self) -> u32 {
        let blocks = self.sack_block_count() as u32;
        if blocks == 0 {
            return self.smss;
        }
        let floor = self.smss.min(u32::from(self.p.min_snd_mss));
        self.smss.saturating_sub(4 + 8 * blocks).max(floor).max(1)
    }

    fn sack_block_count(&self) -> usize {
        if !self.sack_ok {
            return 0;
        }
        let max = if self.ts_ok { 3 } else { 4 };
        (self.ooo.len() + usize::from(self.dsack_tx.is_some())).min(max)
    }

    fn sack_blocks(&self) -> [Option<(u32, u32)>; 4] {
        let mut out = [None; 4];
        if !self.sack_ok {
            return out;
        }
        let max = if self.ts_ok { 3 } else { 4 };
        let mut k = 0;
        if let Some(d) = self.dsack_tx {
            out[0] = Some(d);
            k = 1;
        }
        let mut r: ArrayVec<SeqRange, OOO_RANGES> = self.ooo.iter().copied().collect();
        // Most recent first (RFC 2018 §4); stamps wrap like sequence numbers.
        r.sort_unstable_by(|a, b| {
            if a.stamp == b.stamp {
                core::cmp::Ordering::Equal
            } else if gt(a.stamp, b.stamp) {
                core::cmp::Ordering::Less
            } else {
                core::cmp::Ordering::Greater
            }
        });
        for x in r {
            if k >= max {
                break;
            }
            out[k] = Some((x.start, x.end));
            k += 1;
        }
        out
    }

    fn plan(&self) -> Option<Plan> {
        if let Some((seq, ack)) = self.pending_rst {
            return Some(Plan {
                kind: Kind::Rst { seq, ack },
                seq,
                len: 0,
                fin: false,
            });
        }
        let bare = |kind| Plan {
            kind,
            seq: self.snd_nxt,
            len: 0,
            fin: false,
        };
        match self.state {
            State::Closed => None,
            State::SynSent => self.syn_pending.then(|| Plan {
                seq: self.iss,
                ..bare(Kind::Syn)
            }),
            State::SynReceived => self.syn_pending.then(|| Plan {
                seq: self.iss,
                ..bare(Kind::SynAck)
            }),
            _ => {
                if let Some(p) = self.plan_send() {
                    if p.len > 0 || p.fin {
                        return Some(p);
                    }
                }
                self.ack_now.then(|| bare(Kind::Ack))
            }
        }
    }

    /// A retransmission of `[s, lim)` (at most one segment; the FIN rides
    /// along if the range reaches it).
    fn rtx_plan(&self, s: u32, lim: u32, maxp: u32, why: Why) -> Plan {
        let data_end = self.data_end();
        let data_lim = seq_min(lim, data_end);
        let len = if lt(s, data_lim) {
            data_lim.wrapping_sub(s).min(maxp)
        } else {
            0
        };
        let fin = self.fin_seq.is_some() && s.wrapping_add(len) == data_end && gt(lim, data_end);
        Plan {
            kind: Kind::Data { rtx: true, why },
            seq: s,
            len,
            fin,
        }
    }

    fn new_plan(&self, len: u32, why: Why) -> Plan {
        let fin = self.fin_queued && self.snd_nxt.wrapping_add(len) == self.data_end();
        Plan {
            kind: Kind::Data { rtx: false, why },
            seq: self.snd_nxt,
            len,
            fin,
        }
    }

    fn wnd_room(&self) -> u32 {
        let edge = self.snd_una.wrapping_add(self.snd_wnd);
        if gt(edge, self.snd_nxt) {
            edge.wrapping_sub(self.snd_nxt)
        } else {
            0
        }
    }

    fn plan_send(&self) -> Option<Plan> {
        if !self.sending_state() {
            return None;
        }
        let maxp = self.max_payload();
        let unsent = self.unsent();
        let fin_pending = self.fin_queued && self.fin_seq.is_none() && unsent == 0;
        if self.probe_due {
            if lt(self.snd_una, self.snd_nxt) {
                return Some(self.rtx_plan(
                    self.snd_una,
                    self.snd_una.wrapping_add(1),
                    1,
                    Why::Probe,
                ));
            }
            if unsent > 0 {
                let len = self.wnd_room().min(maxp).min(unsent).max(1);
                return Some(self.new_plan(len, Why::Probe));
            }
            if fin_pending {
                return Some(self.new_plan(0, Why::Probe));
            }
        }
        if self.tlp_due {
            let room = self.wnd_room();
            if unsent > 0 && room > 0 {
                return Some(self.new_plan(unsent.min(maxp).min(room), Why::Tlp));
            }
            if lt(self.snd_una, self.snd_nxt) {
                let data_end = self.data_end();
                let back = seq_max(self.snd_una, data_end.wrapping_sub(maxp));
                let s = if lt(back, data_end) {
                    back
                } else {
                    self.snd_una
                };
                return Some(self.rtx_plan(s, self.snd_nxt, maxp, Why::Tlp));
            }
        }
        if self.rtx_head
            && lt(self.snd_una, self.snd_nxt)
            && !self.scoreboard.contains(self.snd_una)
        {
            let lim = self
                .scoreboard
                .next_start_after(self.snd_una)
                .map_or(self.snd_nxt, |s| seq_min(s, self.snd_nxt));
            return Some(self.rtx_plan(self.snd_una, lim, maxp, Why::Head));
        }
        let room = self.cwnd_room();
        if self.recovery != Recovery::None {
            if let Some((s, lim)) = self.next_lost() {
                let p = self.rtx_plan(s, lim, maxp, Why::Lost);
                return (room >= p.len.max(1)).then_some(p);
            }
        }
        if unsent > 0 {
            let wroom = self.wnd_room();
            let len = unsent.min(maxp).min(wroom).min(room);
            if len > 0 {
                let full = len == maxp;
                // The end of the queued data: a runt, unless corked (more
                // is coming) with no FIN to carry.
                let all = len == unsent && (!self.cork || self.fin_queued);
                // RFC 9293 §3.8.6.2.1: a window-limited partial segment when
                // it is at least half the largest window the peer offered.
                let sws = len == wroom && u64::from(len) * 2 >= u64::from(self.max_snd_wnd);
                if full || all || sws {
                    return Some(self.new_plan(len, Why::New));
                }
            }
        } else if fin_pending {
            return Some(self.new_plan(0, Why::New));
        }
        // No RFC 6675 NextSeg rule 3 (nor rule 4): with nothing new to send
        // — the whole send buffer in flight — it resends every un-SACKed
        // segment above HighRxt as the pipe drains, segments that are in
        // flight, not lost (spurious retransmissions by the window's worth;
        // Linux does not either). Losses among them are found by SACKs
        // (IsLost), lost retransmissions by `relost`, a lost tail by RTO.
        None
    }

    /// RFC 6675 NextSeg rule 1: the first un-SACKed, lost, not yet
    /// retransmitted range.
    fn next_lost(&self) -> Option<(u32, u32)> {
        let lb = self.lost_end();
        let s = self
            .scoreboard
            .skip_covered(seq_max(self.high_rxt, self.snd_una));
        if !(lt(s, lb) && lt(s, self.snd_nxt)) {
            return None;
        }
        let lim = self
            .scoreboard
            .next_start_after(s)
            .map_or(self.snd_nxt, |x| seq_min(x, self.snd_nxt));
        Some((s, seq_min(lim, lb)))
    }

    fn build(&self, plan: &Plan, now: Now) -> SegmentOut<'_> {
        let empty: (&[u8], &[u8]) = (&[], &[]);
        match plan.kind {
            Kind::Rst { seq, ack } => SegmentOut {
                seq,
                ack,
                flags: if ack.is_some() {
                    TcpFlags::RST | TcpFlags::ACK
                } else {
                    TcpFlags::RST
                },
                window: 0,
                options: OutOptions::default(),
                payload: empty,
            },
            Kind::Syn => SegmentOut {
                seq: self.iss,
                ack: None,
                flags: TcpFlags::SYN,
                window: self.rcvbuf.cap().min(65535) as u16,
                options: OutOptions {
                    mss: Some(self.p.mss),
                    ws: self.p.window_scaling.then_some(self.p.ws_local),
                    sack_ok: self.p.sack,
                    ts: self.p.timestamps.then_some((now.tsval, 0)),
                    sack: [None; 4],
                },
                payload: empty,
            },
            Kind::SynAck => SegmentOut {
                seq: self.iss,
                ack: Some(self.rcv_nxt),
                flags: TcpFlags::SYN | TcpFlags::ACK,
                window: self.rcvbuf.cap().min(65535) as u16,
                options: OutOptions {
                    mss: Some(self.p.mss),
                    ws: self.ws_ok.then_some(self.rcv_ws),
                    sack_ok: self.sack_ok,
                    ts: self.ts_ok.then_some((now.tsval, self.ts_recent)),
                    sack: [None; 4],
                },
                payload: empty,
            },
            Kind::Data { .. } | Kind::Ack => {
                let mut flags = TcpFlags::ACK;
                if plan.fin {
                    flags |= TcpFlags::FIN;
                }
                let payload = if plan.len > 0 {
                    let off = plan.seq.wrapping_sub(self.snd_base) as usize;
                    if plan.seq.wrapping_add(plan.len) == self.data_end() {
                        flags |= TcpFlags::PSH;
                    }
                    self.sndbuf.slices(off, plan.len as usize)
                } else {
                    empty
                };
                SegmentOut {
                    seq: plan.seq,
                    ack: Some(self.rcv_nxt),
                    flags,
                    window: self.rcv_window().0,
                    options: OutOptions {
                        ts: self.ts_ok.then_some((now.tsval, self.ts_recent)),
                        sack: self.sack_blocks(),
                        ..OutOptions::default()
                    },
                    payload,
                }
            }
        }
    }

    fn commit(&mut self, plan: &Plan, now: Now) {
        self.stats.segs_out += 1;
        let t = now.us;
        match plan.kind {
            Kind::Rst { .. } => {
                self.pending_rst = None;
                return;
            }
            Kind::Syn | Kind::SynAck => {
                self.syn_pending = false;
                if self.syn_sends == 0 {
                    self.timed = Some((self.iss.wrapping_add(1), t));
                } else {
                    self.stats.retransmits += 1;
                }
                self.syn_sends = self.syn_sends.saturating_add(1);
                self.snd_nxt = self.iss.wrapping_add(1);
                if self.rto_at.is_none() {
                    self.rto_at = Some(t.saturating_add(self.rtt.rto()));
                }
                if plan_is_synack(plan) {
                    self.sent_ack();
                }
                return;
            }
            Kind::Ack => {}
            Kind::Data { rtx, why } => {
                let end = plan
                    .seq
                    .wrapping_add(plan.len)
                    .wrapping_add(u32::from(plan.fin));
                if plan.len > 0 {
                    let flight = self.flight();
                    if let Some(r) = self.rates.as_mut() {
                        r.on_send(end, flight, rtx, t);
                    }
                }
                if rtx {
                    self.stats.retransmits += 1;
                    self.stats.retransmit_bytes += u64::from(plan.len);
                    if gt(end, self.high_rxt) {
                        self.high_rxt = end;
                    }
                    self.timed = None;
                    self.rtx_unsampled = true;
                    if why == Why::Head {
                        self.rtx_head = false;
                    }
                } else {
                    if gt(end, self.snd_nxt) {
                        self.stats.bytes_out += u64::from(plan.len);
                        self.snd_nxt = end;
                    }
                    if plan.fin {
                        self.fin_seq = Some(plan.seq.wrapping_add(plan.len));
                    }
                    if self.timed.is_none() && self.recovery == Recovery::None && why == Why::New {
                        self.timed = Some((end, t));
                    }
                }
                if self.rto_at.is_none() {
                    self.rto_at = Some(t.saturating_add(self.rtt.rto()));
                }
                match why {
                    Why::Tlp => {
                        self.tlp_due = false;
                        self.stats.tlp_probes += 1;
                        if rtx {
                            self.tlp_high = Some(self.snd_nxt);
                        }
                        self.rto_at = Some(t.saturating_add(self.rtt.rto()));
                    }
                    Why::Probe => {
                        self.probe_due = false;
                        self.stats.persist_probes += 1;
                        if !rtx {
                            self.zwp_from = Some(plan.seq);
                        }
                    }
                    Why::New if self.recovery == Recovery::None => self.arm_tlp(t),
                    _ => {}
                }
            }
        }
        self.sent_ack();
    }

    /// Bookkeeping for any segment that carried our ACK and window.
    fn sent_ack(&mut self) {
        let (_, edge) = self.rcv_window();
        if gt(edge, self.rcv_adv) {
            self.rcv_adv = edge;
        }
        self.ack_now = false;
        self.delack_at = None;
        self.unacked = 0;
        self.last_ack_sent = self.rcv_nxt;
        self.dsack_tx = None;
    }
}

fn plan_is_synack(plan: &Plan) -> bool {
    matches!(plan.kind, Kind::SynAck)
}

/// The RST answering `seg` when it reaches no connection (RFC 9293
/// §3.10.7.1): `<SEQ=SEG.ACK><CTL=RST>` if it has an ACK, else
/// `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`; `None` for a RST.
pub fn reset_reply(seg: &Segment<'_>) -> Option<SegmentOut<'static>> {
    if seg.flags.contains(TcpFlags::RST) {
        return None;
    }
    let (seq, ack, flags) = match seg.ack {
        Some(a) => (a, None, TcpFlags::RST),
        None => (
            0,
            Some(seg.seq.wrapping_add(seg.seq_len())),
            TcpFlags::RST | TcpFlags::ACK,
        ),
    };
    Some(SegmentOut {
        seq,
        ack,
        flags,
        window: 0,
        options: OutOptions::default(),
        payload: (&[], &[]),
    })
}
