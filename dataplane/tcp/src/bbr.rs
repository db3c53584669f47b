//! BBR's model of the path (Cardwell et al., "BBR: Congestion-Based
//! Congestion Control", ACM Queue 2016; draft-cardwell-iccrg-bbr-congestion-
//! control-00, the v1 that Linux ships as `bbr`), as a congestion window:
//!
//! * **Delivery rate samples** (draft-cheng-iccrg-delivery-rate-estimation):
//!   every data segment sent records how much had been delivered and when;
//!   the ACK that delivers it (cumulatively or by SACK) turns that into a
//!   rate over the longer of the send and the ACK intervals.
//! * **BtlBw**: the largest rate sample of the last 10 round trips
//!   (app-limited samples count only when they raise it).
//! * **RTprop**: the smallest RTT sample of the last 10 s; when it is that
//!   old, ProbeRTT holds the window at 4 segments for 200 ms and a round
//!   trip, so queues drain and a fresh minimum is seen.
//! * **Startup** grows the window by what each ACK delivers (doubling per
//!   round) until BtlBw has not grown by 25 % for three rounds; from then
//!   on the window tracks `2 · BtlBw · RTprop` (+ 3 segments for delayed
//!   and aggregated ACKs).
//!
//! Random loss is not congestion here: fast recovery repairs it without
//! shrinking the window; only an RTO does (to one segment, and the model
//! rebuilds it within round trips). What v1 does with its pacing rate (the
//! gain cycle of ProbeBW, Drain) is not done: the endpoint does not pace,
//! it sends what the window allows when the caller polls it.

/// Send records kept per connection for rate sampling. When full, new
/// segments are not recorded (fewer samples, not wrong ones).
pub(crate) const RECORDS: usize = 256;
const BW_ROUNDS: usize = 10;
const RTPROP_WINDOW_US: u64 = 10_000_000;
const PROBE_RTT_US: u64 = 200_000;
const STARTUP_GAIN: f64 = 2.885;
const CWND_GAIN: f64 = 2.0;
/// Rounds per window of the ACK-aggregation maximum (two windows kept).
const EXTRA_ACKED_ROUNDS: u8 = 5;
/// The aggregation allowance never exceeds this much of BtlBw (µs).
const EXTRA_ACKED_MAX_US: f64 = 100_000.0;

#[derive(Clone, Copy, Debug, Default)]
struct SendRec {
    /// Sequence number just past the segment.
    end: u32,
    sent_us: u64,
    /// Connection's delivered bytes when it was sent.
    delivered: u64,
    delivered_us: u64,
    first_sent_us: u64,
    app_limited: bool,
    /// A retransmission: its ACK may be the original's (Karn), no RTT.
    rtx: bool,
    /// Already turned into a sample (by SACK).
    done: bool,
}

/// One delivery rate sample.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RateSample {
    /// Bytes per µs.
    pub rate: f64,
    /// The connection's delivered bytes when the sampled segment was sent.
    pub prior_delivered: u64,
    pub app_limited: bool,
    /// Send-to-ACK time of the sampled segment (µs clock; none for a
    /// retransmission).
    pub rtt_us: Option<u64>,
}

/// Send records and the connection's delivery clock.
#[derive(Clone, Debug)]
pub(crate) struct RateSampler {
    recs: Vec<SendRec>,
    head: usize,
    len: usize,
    delivered: u64,
    delivered_us: u64,
    first_sent_us: u64,
    /// Samples whose segment was sent before this much was delivered are
    /// app-limited (the sender ran out of data with window to spare).
    app_limited_until: u64,
}

fn seq_le(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) >= 0
}

impl RateSampler {
    pub fn new() -> RateSampler {
        RateSampler {
            recs: vec![SendRec::default(); RECORDS],
            head: 0,
            len: 0,
            delivered: 0,
            delivered_us: 0,
            first_sent_us: 0,
            app_limited_until: 0,
        }
    }

    /// A data segment ending at `end` leaves now; `in_flight` is what was
    /// in flight before it.
    pub fn on_send(&mut self, end: u32, in_flight: u32, rtx: bool, now: u64) {
        if in_flight == 0 {
            self.first_sent_us = now;
            self.delivered_us = now;
        }
        if self.len == RECORDS {
            return;
        }
        let i = (self.head + self.len) % RECORDS;
        self.recs[i] = SendRec {
            end,
            sent_us: now,
            delivered: self.delivered,
            delivered_us: self.delivered_us,
            first_sent_us: self.first_sent_us,
            app_limited: self.delivered < self.app_limited_until,
            rtx,
            done: false,
        };
        self.len += 1;
    }

    /// The sender had window to spare and nothing to send.
    pub fn mark_app_limited(&mut self, in_flight: u32) {
        self.app_limited_until = self.delivered + u64::from(in_flight).max(1);
    }

    /// Bytes delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// An ACK delivered `newly` bytes (cumulative advance not already
    /// SACKed, plus newly SACKed); `una` is the cumulative ACK, `sacked`
    /// tells whether a sequence number is SACKed. Returns the sample of the
    /// most recently sent segment it delivered.
    pub fn on_ack(
        &mut self,
        newly: u64,
        una: u32,
        sacked_any: bool,
        sacked: impl Fn(u32) -> bool,
        now: u64,
    ) -> Option<RateSample> {
        if newly == 0 {
            return None;
        }
        self.delivered += newly;
        let mut best: Option<SendRec> = None;
        let take = |r: &SendRec, best: &mut Option<SendRec>| {
            if best.is_none_or(|b| r.sent_us >= b.sent_us) {
                *best = Some(*r);
            }
        };
        // Cumulatively acknowledged records leave the ring.
        while self.len > 0 {
            let r = self.recs[self.head];
            if !seq_le(r.end, una) {
                break;
            }
            if !r.done {
                take(&r, &mut best);
            }
            self.head = (self.head + 1) % RECORDS;
            self.len -= 1;
        }
        // SACKed ones are marked (nothing to look for without SACKed data:
        // no walk of the ring on plain cumulative ACKs).
        let n = if sacked_any { self.len } else { 0 };
        for k in 0..n {
            let i = (self.head + k) % RECORDS;
            let r = self.recs[i];
            if !r.done && sacked(r.end.wrapping_sub(1)) {
                take(&r, &mut best);
                self.recs[i].done = true;
            }
        }
        let p = best?;
        let send_elapsed = p.sent_us.saturating_sub(p.first_sent_us);
        let ack_elapsed = now.saturating_sub(p.delivered_us);
        self.first_sent_us = p.sent_us;
        self.delivered_us = now;
        let interval = send_elapsed.max(ack_elapsed);
        if interval == 0 {
            return None;
        }
        Some(RateSample {
            rate: (self.delivered - p.delivered) as f64 / interval as f64,
            prior_delivered: p.delivered,
            app_limited: p.app_limited,
            rtt_us: (!p.rtx).then(|| now.saturating_sub(p.sent_us).max(1)),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Startup,
    ProbeBw,
    ProbeRtt,
}

/// The model and the window it sets.
#[derive(Clone, Debug)]
pub(crate) struct Bbr {
    mode: Mode,
    /// Largest sample per round, for the last `BW_ROUNDS` rounds.
    bw: [f64; BW_ROUNDS],
    round: u64,
    next_round_delivered: u64,
    btl_bw: f64,
    min_rtt_us: u64,
    min_rtt_at: u64,
    full_bw: f64,
    full_bw_rounds: u8,
    filled_pipe: bool,
    probe_rtt_done: Option<u64>,
    probe_rtt_round: Option<u64>,
    prior_cwnd: u32,
    /// ACK aggregation: start of the current epoch and bytes ACKed in it.
    ack_epoch_us: u64,
    ack_epoch_acked: u64,
    /// Largest excess of ACKed bytes over `BtlBw · epoch`, in two windows
    /// of `EXTRA_ACKED_ROUNDS` rounds.
    extra_acked: [u64; 2],
    extra_idx: usize,
    extra_rounds: u8,
}

impl Bbr {
    pub fn new() -> Bbr {
        Bbr {
            mode: Mode::Startup,
            bw: [0.0; BW_ROUNDS],
            round: 0,
            next_round_delivered: 0,
            btl_bw: 0.0,
            min_rtt_us: u64::MAX,
            min_rtt_at: 0,
            full_bw: 0.0,
            full_bw_rounds: 0,
            filled_pipe: false,
            probe_rtt_done: None,
            probe_rtt_round: None,
            prior_cwnd: 0,
            ack_epoch_us: 0,
            ack_epoch_acked: 0,
            extra_acked: [0; 2],
            extra_idx: 0,
            extra_rounds: 0,
        }
    }

    /// The bandwidth-delay product in bytes (None before any sample).
    fn bdp(&self) -> Option<f64> {
        (self.btl_bw > 0.0 && self.min_rtt_us != u64::MAX)
            .then_some(self.btl_bw * self.min_rtt_us as f64)
    }

    /// One ACK: `rs` its rate sample (if it delivered a recorded segment;
    /// with the sampled segment's RTT), `acked` bytes it delivered,
    /// `delivered` the connection's total. Returns the new window.
    #[allow(clippy::too_many_arguments)]
    pub fn on_ack(
        &mut self,
        cwnd: u32,
        rs: Option<RateSample>,
        acked: u32,
        delivered: u64,
        in_flight: u32,
        smss: u32,
        now: u64,
    ) -> u32 {
        let mut round_start = false;
        if let Some(rs) = rs {
            if rs.prior_delivered >= self.next_round_delivered {
                self.next_round_delivered = delivered;
                self.round += 1;
                round_start = true;
                self.bw[(self.round as usize) % BW_ROUNDS] = 0.0;
            }
            if !rs.app_limited || rs.rate >= self.btl_bw {
                let slot = &mut self.bw[(self.round as usize) % BW_ROUNDS];
                *slot = slot.max(rs.rate);
                self.btl_bw = self.bw.iter().copied().fold(0.0, f64::max);
            }
            if round_start && !self.filled_pipe && !rs.app_limited {
                if self.btl_bw >= self.full_bw * 1.25 {
                    self.full_bw = self.btl_bw;
                    self.full_bw_rounds = 0;
                } else {
                    self.full_bw_rounds += 1;
                    if self.full_bw_rounds >= 3 {
                        self.filled_pipe = true;
                    }
                }
            }
        }
        self.ack_aggregation(acked, round_start, cwnd, now);
        if self.mode == Mode::Startup && self.filled_pipe {
            self.mode = Mode::ProbeBw;
        }
        // RTprop, and ProbeRTT when it is stale.
        // (No minimum yet: nothing to expire; the first sample starts the
        // window, as Linux stamps it at connection start.)
        let expired =
            self.min_rtt_us != u64::MAX && now.saturating_sub(self.min_rtt_at) > RTPROP_WINDOW_US;
        if let Some(r) = rs.and_then(|r| r.rtt_us) {
            if r <= self.min_rtt_us || expired {
                self.min_rtt_us = r.max(1);
                self.min_rtt_at = now;
            }
        }
        let floor = smss.saturating_mul(4);
        if expired && self.mode != Mode::ProbeRtt && self.min_rtt_us != u64::MAX {
            self.mode = Mode::ProbeRtt;
            self.prior_cwnd = cwnd;
            self.probe_rtt_done = None;
            self.probe_rtt_round = None;
        }
        if self.mode == Mode::ProbeRtt {
            if self.probe_rtt_done.is_none() && in_flight <= floor {
                self.probe_rtt_done = Some(now + PROBE_RTT_US);
                self.probe_rtt_round = Some(self.round + 1);
            }
            if let (Some(t), Some(r)) = (self.probe_rtt_done, self.probe_rtt_round) {
                if now >= t && self.round >= r {
                    self.min_rtt_at = now;
                    self.mode = if self.filled_pipe {
                        Mode::ProbeBw
                    } else {
                        Mode::Startup
                    };
                    return cwnd.max(self.prior_cwnd);
                }
            }
            return cwnd.min(floor);
        }
        // The window: grow by what was delivered, up to the target once
        // the pipe is full; in startup, as fast as ACKs come back.
        let gain = if self.filled_pipe {
            CWND_GAIN
        } else {
            STARTUP_GAIN
        };
        let aggr = if self.filled_pipe {
            let e = self.extra_acked[0].max(self.extra_acked[1]) as f64;
            e.min(self.btl_bw * EXTRA_ACKED_MAX_US)
        } else {
            0.0
        };
        let target = self.bdp().map(|b| {
            let t = gain * b + aggr + 3.0 * f64::from(smss);
            t.min(f64::from(u32::MAX / 2)) as u32
        });
        let grown = cwnd.saturating_add(acked);
        let next = match target {
            Some(t) if self.filled_pipe => grown.min(t),
            Some(t) if grown < t || delivered < 10 * u64::from(smss) => grown,
            Some(t) => grown.min(t.max(cwnd)),
            None => grown,
        };
        next.max(floor)
    }

    /// ACK aggregation (Linux `bbr_update_ack_aggregation`): receivers,
    /// virtual NICs and polling loops return ACKs in bursts after silences
    /// longer than RTprop; a window of 2·BDP then runs dry while the ACKs
    /// are held. The largest excess of ACKed bytes over what BtlBw
    /// predicts for the epoch (at most a window, recent rounds) is added
    /// to the target.
    fn ack_aggregation(&mut self, acked: u32, round_start: bool, cwnd: u32, now: u64) {
        if acked == 0 {
            return;
        }
        if round_start {
            self.extra_rounds = self.extra_rounds.saturating_add(1);
            if self.extra_rounds >= EXTRA_ACKED_ROUNDS {
                self.extra_rounds = 0;
                self.extra_idx ^= 1;
                self.extra_acked[self.extra_idx] = 0;
            }
        }
        let epoch = now.saturating_sub(self.ack_epoch_us) as f64;
        let mut expected = (self.btl_bw * epoch) as u64;
        if self.ack_epoch_acked <= expected || self.ack_epoch_acked > 1 << 40 {
            self.ack_epoch_acked = 0;
            self.ack_epoch_us = now;
            expected = 0;
        }
        self.ack_epoch_acked += u64::from(acked);
        let extra =
            (self.ack_epoch_acked - expected.min(self.ack_epoch_acked)).min(u64::from(cwnd));
        let slot = &mut self.extra_acked[self.extra_idx];
        *slot = (*slot).max(extra);
    }

    /// Current BtlBw (bytes/µs) and RTprop (µs), for tests and stats.
    #[cfg(test)]
    pub fn model(&self) -> (f64, u64, bool) {
        (self.btl_bw, self.min_rtt_us, self.filled_pipe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_sample_over_the_longer_interval() {
        let mut s = RateSampler::new();
        // 10 segments of 1000 bytes sent 10 µs apart from t=0.
        for i in 0..10u32 {
            s.on_send(1000 * (i + 1), 1000 * i, false, u64::from(i) * 10);
        }
        // The first five are ACKed at t=1000 (RTT ~1 ms).
        let rs = s.on_ack(5000, 5000, false, |_| false, 1000).unwrap();
        assert_eq!(rs.rtt_us, Some(960));
        // Delivered 5000 since the 5th segment was sent; ack interval
        // 1000 µs > send interval 40 µs.
        assert!((rs.rate - 5.0).abs() < 1e-9, "{}", rs.rate);
        assert_eq!(rs.prior_delivered, 0);
        // The rest by SACK at t=1100: the newest record is sampled once.
        let sacked = |q: u32| (5000..10_000).contains(&q);
        let rs = s.on_ack(5000, 5000, true, sacked, 1100).unwrap();
        assert!(rs.rate > 0.0);
        assert!(s.on_ack(0, 5000, true, sacked, 1200).is_none());
    }

    #[test]
    fn startup_fills_the_pipe_then_tracks_two_bdp() {
        // A 10 MB/s (10 bytes/µs) path with a 1 ms RTprop: BDP 10 kB.
        let mut b = Bbr::new();
        let mut cwnd = 10_000u32;
        let mut delivered = 0u64;
        for round in 0..20u64 {
            let now = (round + 1) * 1000;
            // One ACK per round delivering a cwnd's worth at the path rate.
            let acked = cwnd.min(10_000);
            let prior = delivered;
            delivered += u64::from(acked);
            let rs = RateSample {
                rate: f64::from(acked) / 1000.0,
                prior_delivered: prior,
                app_limited: false,
                rtt_us: Some(1000),
            };
            cwnd = b.on_ack(cwnd, Some(rs), acked, delivered, 0, 1000, now);
        }
        let (bw, rtt, full) = b.model();
        assert!((bw - 10.0).abs() < 1e-9 && rtt == 1000 && full);
        // 2·BDP, plus the ACK aggregation seen (one ACK per round trip
        // delivers a whole BDP at once: 10 kB beyond what BtlBw predicts
        // at that instant), plus 3 segments.
        assert_eq!(cwnd, 2 * 10_000 + 10_000 + 3 * 1000);
    }

    #[test]
    fn smooth_acks_add_no_aggregation_allowance() {
        // The same path, ACKed every 100 µs for 1000 bytes: exactly BtlBw.
        let mut b = Bbr::new();
        let mut cwnd = 10_000u32;
        let mut delivered = 0u64;
        for i in 1..=400u64 {
            let prior = delivered.saturating_sub(10_000);
            delivered += 1000;
            let rs = RateSample {
                rate: 10.0,
                prior_delivered: prior,
                app_limited: false,
                rtt_us: Some(1000),
            };
            cwnd = b.on_ack(cwnd, Some(rs), 1000, delivered, 10_000, 1000, i * 100);
        }
        let (_, _, full) = b.model();
        assert!(full);
        // 2·BDP + 3 segments, and at most one ACK's worth of allowance.
        assert!((23_000..=24_000).contains(&cwnd), "{cwnd}");
    }

    #[test]
    fn probe_rtt_after_ten_seconds() {
        let mut b = Bbr::new();
        let rs = |d, rtt| RateSample {
            rate: 10.0,
            prior_delivered: d,
            app_limited: false,
            rtt_us: Some(rtt),
        };
        let mut cwnd = b.on_ack(50_000, Some(rs(0, 1000)), 1000, 1000, 40_000, 1000, 1);
        assert!(cwnd >= 50_000);
        // 11 s later, RTT samples larger: ProbeRTT caps the window.
        cwnd = b.on_ack(
            cwnd,
            Some(rs(1000, 5000)),
            1000,
            2000,
            40_000,
            1000,
            11_000_000,
        );
        assert_eq!(cwnd, 4000);
    }
}
