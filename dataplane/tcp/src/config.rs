//! Per-endpoint configuration.

/// The congestion controller an endpoint runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Congestion {
    /// RFC 5681 slow start and congestion avoidance (AIMD, β = 1/2), with
    /// RFC 6582 NewReno recovery when the peer has no SACK.
    NewReno,
    /// RFC 9438 CUBIC (β = 0.7, C = 0.4, fast convergence, the
    /// Reno-friendly region). The default, as on Linux.
    #[default]
    Cubic,
    /// BBR's model of the path (bottleneck bandwidth × minimum RTT, from
    /// delivery rate samples) sets the window, 2·BDP; random loss does not
    /// shrink it (Linux `bbr`, v1, without its pacing). No
    /// pacing.
    Bbr,
}

/// How an endpoint behaves: buffers, timers, options offered, limits.
///
/// All times are µs of the caller's monotonic clock. Values that make no
/// sense are sanitised when an endpoint is created (never a panic): buffer
/// sizes are clamped to `1 ..= 2^30`, `min_rto_us ≤ initial_rto_us ≤
/// max_rto_us` is enforced by clamping, `min_snd_mss` is at least 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Our MSS: announced in our SYN / SYN-ACK, and also the upper bound of
    /// the segments we send (it stands for the local MTU: a segment's payload
    /// plus options never exceeds it unless `min_snd_mss` forces more).
    pub mss: u16,
    /// Receive buffer (bytes): in-order data not yet consumed plus
    /// out-of-order data. Allocated once at creation; it bounds the
    /// advertised window.
    pub rcv_buf: usize,
    /// Send buffer (bytes): data queued by [`send`](crate::Endpoint::send)
    /// and not yet acknowledged. Allocated once at creation.
    pub snd_buf: usize,
    /// Floor of the retransmission timeout (RFC 6298 says 1 s; Linux uses
    /// 200 ms, as we do by default).
    pub min_rto_us: u64,
    /// RTO before any RTT sample (RFC 6298: 1 s).
    pub initial_rto_us: u64,
    /// Ceiling of the RTO, after backoff (RFC 6298: at least 60 s).
    pub max_rto_us: u64,
    /// SYN retransmissions in an active open before it ends with
    /// [`Outcome::TimedOut`](crate::Outcome::TimedOut).
    pub syn_retries: u8,
    /// Consecutive retransmission timeouts of the same data (or
    /// unanswered zero-window probes) after which the connection ends with
    /// [`Outcome::TimedOut`](crate::Outcome::TimedOut) (Linux
    /// `tcp_retries2` = 15).
    pub max_retries: u8,
    /// Delayed-ACK timeout: in-order data that did not complete a second
    /// full-sized segment is acknowledged after this long.
    pub delayed_ack_us: u64,
    /// Segments acknowledged one by one at the start of a connection
    /// (Linux's quick-ACK mode), so the peer's slow start is not slowed by
    /// our delayed ACKs. 0 disables.
    pub quickack_segs: u32,
    /// How long TIME-WAIT lasts (0: none, the endpoint closes at once).
    /// Short by default (1 s): our ISNs and TSvals are monotonic, so a new
    /// incarnation of the 4-tuple is told apart from old duplicates
    /// (RFC 6191) without the classic 2·MSL.
    pub time_wait_us: u64,
    /// Smallest payload we put in a full-sized segment whatever MSS the peer
    /// announces: a peer announcing MSS 1 or 8 cannot make us send tiny
    /// segments (CVE-2019-11479; Linux `tcp_min_snd_mss` = 48). Default 88.
    pub min_snd_mss: u16,
    /// Our window-scale shift (RFC 7323) offered in the SYN / SYN-ACK;
    /// `None`: the smallest shift that lets the window cover `rcv_buf`.
    pub ws_local: Option<u8>,
    /// Offer / accept window scaling.
    pub window_scaling: bool,
    /// Offer / accept SACK (RFC 2018).
    pub sack: bool,
    /// Offer / accept timestamps (RFC 7323).
    pub timestamps: bool,
    /// The congestion controller.
    pub congestion: Congestion,
    /// Initial congestion window in segments (RFC 6928: 10).
    pub initial_cwnd_segs: u32,
    /// Duplicate ACKs that trigger fast retransmit (RFC 5681: 3).
    pub dup_thresh: u32,
    /// Tail loss probe (RFC 8985 §7): when the last segments of a flight
    /// are not acknowledged within PTO = 2·SRTT + 2 ms, send one probe
    /// so the loss is repaired by fast recovery instead of an RTO.
    pub tlp: bool,
    /// Minimum interval between ACKs sent in answer to out-of-window
    /// segments that carry no data, and between RFC 5961 challenge ACKs
    /// (Linux `tcp_invalid_ratelimit` = 500 ms). Out-of-window *data* is
    /// always answered (the sender needs the ACK).
    pub oow_ack_interval_us: u64,
}

/// 88 bytes of payload: see [`Config::min_snd_mss`].
pub const DEFAULT_MIN_SND_MSS: u16 = 88;

impl Default for Config {
    fn default() -> Self {
        Config {
            mss: 1460,
            rcv_buf: 256 * 1024,
            snd_buf: 256 * 1024,
            min_rto_us: 200_000,
            initial_rto_us: 1_000_000,
            max_rto_us: 60_000_000,
            syn_retries: 6,
            max_retries: 15,
            delayed_ack_us: 40_000,
            quickack_segs: 16,
            time_wait_us: 1_000_000,
            min_snd_mss: DEFAULT_MIN_SND_MSS,
            ws_local: None,
            window_scaling: true,
            sack: true,
            timestamps: true,
            congestion: Congestion::Cubic,
            initial_cwnd_segs: 10,
            dup_thresh: 3,
            tlp: true,
            oow_ack_interval_us: 500_000,
        }
    }
}

/// Largest window that can be expressed: 65535 << 14 (RFC 7323 §2.3).
pub(crate) const MAX_WINDOW: usize = 65535 << 14;

impl Config {
    /// The window-scale shift we offer: `ws_local` (at most 14), or the
    /// smallest shift such that `rcv_buf >> shift` fits in 16 bits.
    pub fn window_shift(&self) -> u8 {
        if let Some(s) = self.ws_local {
            return s.min(14);
        }
        let buf = self.rcv_buf_clamped();
        let mut s = 0u8;
        while s < 14 && (buf >> s) > 65535 {
            s += 1;
        }
        s
    }

    pub(crate) fn rcv_buf_clamped(&self) -> usize {
        self.rcv_buf.clamp(1, MAX_WINDOW)
    }

    pub(crate) fn snd_buf_clamped(&self) -> usize {
        self.snd_buf.clamp(1, 1 << 30)
    }

    /// The window field of a SYN or SYN-ACK we send (never scaled).
    pub fn syn_window(&self) -> u16 {
        self.rcv_buf_clamped().min(65535) as u16
    }
}

/// The sanitised numbers an endpoint keeps from its [`Config`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub mss: u16,
    pub min_rto_us: u64,
    pub initial_rto_us: u64,
    pub max_rto_us: u64,
    pub syn_retries: u8,
    pub max_retries: u8,
    pub delayed_ack_us: u64,
    pub quickack_segs: u32,
    pub time_wait_us: u64,
    pub min_snd_mss: u16,
    pub ws_local: u8,
    pub window_scaling: bool,
    pub sack: bool,
    pub timestamps: bool,
    pub congestion: Congestion,
    pub initial_cwnd_segs: u32,
    pub dup_thresh: u32,
    pub tlp: bool,
    pub oow_ack_interval_us: u64,
}

impl Params {
    pub(crate) fn new(cfg: &Config) -> Params {
        let max_rto_us = cfg.max_rto_us.clamp(1, 1 << 40);
        let min_rto_us = cfg.min_rto_us.clamp(1, max_rto_us);
        Params {
            mss: cfg.mss.max(1),
            min_rto_us,
            initial_rto_us: cfg.initial_rto_us.clamp(min_rto_us, max_rto_us),
            max_rto_us,
            syn_retries: cfg.syn_retries,
            max_retries: cfg.max_retries,
            delayed_ack_us: cfg.delayed_ack_us.min(1 << 40),
            quickack_segs: cfg.quickack_segs,
            time_wait_us: cfg.time_wait_us.min(1 << 40),
            min_snd_mss: cfg.min_snd_mss.max(1),
            ws_local: cfg.window_shift(),
            window_scaling: cfg.window_scaling,
            sack: cfg.sack,
            timestamps: cfg.timestamps,
            congestion: cfg.congestion,
            initial_cwnd_segs: cfg.initial_cwnd_segs.clamp(1, 1000),
            dup_thresh: cfg.dup_thresh.clamp(1, 1000),
            tlp: cfg.tlp,
            oow_ack_interval_us: cfg.oow_ack_interval_us.min(1 << 40),
        }
    }
}
