//! Congestion control: RFC 5681 (slow start with RFC 3465 byte counting,
//! congestion avoidance, ssthresh on loss) with NewReno's AIMD or RFC 9438
//! CUBIC's window growth and β.
//!
//! The controller owns `cwnd` and `ssthresh` (bytes). The endpoint decides
//! *when* to call it (recovery entry, RTO, ACKs outside fast recovery); the
//! controller decides *how much*. Adding another algorithm is one more
//! [`Congestion`] variant and three match arms here.

use crate::bbr::{Bbr, RateSample};
use crate::config::Congestion;

const MAX_CWND: u32 = 1 << 30;
/// RFC 9438 β_cubic.
const CUBIC_BETA: f64 = 0.7;
/// RFC 9438 C (segments / s³).
const CUBIC_C: f64 = 0.4;

#[derive(Clone, Debug, Default)]
struct Cubic {
    /// Window before the last reduction (bytes), W_max.
    w_max: f64,
    /// W_max before that, for fast convergence.
    w_last_max: f64,
    /// Start of the current congestion-avoidance epoch (µs); None: not
    /// started.
    epoch_start: Option<u64>,
    /// K (s).
    k: f64,
    /// Reno-friendly estimate W_est (bytes).
    w_est: f64,
    /// Fractional cwnd increase carried between ACKs (bytes).
    frac: f64,
}

#[derive(Clone, Debug)]
pub(crate) struct Cc {
    kind: Congestion,
    pub cwnd: u32,
    pub ssthresh: u32,
    /// Bytes acknowledged since the last congestion-avoidance increase
    /// (Reno, RFC 3465).
    acked_acc: u32,
    cubic: Cubic,
    bbr: Option<Box<Bbr>>,
}

impl Cc {
    pub fn new(kind: Congestion, smss: u32, iw_segs: u32) -> Cc {
        Cc {
            kind,
            cwnd: smss.saturating_mul(iw_segs).min(MAX_CWND),
            ssthresh: u32::MAX,
            acked_acc: 0,
            cubic: Cubic::default(),
            bbr: (kind == Congestion::Bbr).then(|| Box::new(Bbr::new())),
        }
    }

    pub fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }

    /// New data acknowledged outside fast recovery. `flight` is what was in
    /// flight before this ACK: a window that was not used is not grown
    /// (RFC 7661 in spirit, Linux's `tcp_is_cwnd_limited`).
    pub fn on_ack(&mut self, acked: u32, flight: u32, smss: u32, now_us: u64, srtt_us: u64) {
        if acked == 0 || flight.saturating_mul(2) < self.cwnd || self.kind == Congestion::Bbr {
            return;
        }
        if self.in_slow_start() {
            // RFC 3465, L = 2.
            let inc = acked.min(smss.saturating_mul(2));
            self.cwnd = self.cwnd.saturating_add(inc).min(MAX_CWND);
            if self.cwnd >= self.ssthresh {
                self.cubic.epoch_start = None;
            }
            return;
        }
        match self.kind {
            Congestion::NewReno => {
                self.acked_acc = self.acked_acc.saturating_add(acked);
                if self.acked_acc >= self.cwnd {
                    self.acked_acc -= self.cwnd;
                    self.cwnd = self.cwnd.saturating_add(smss).min(MAX_CWND);
                }
            }
            Congestion::Cubic => self.cubic_ack(acked, smss, now_us, srtt_us),
            Congestion::Bbr => {}
        }
    }

    fn cubic_ack(&mut self, acked: u32, smss: u32, now_us: u64, srtt_us: u64) {
        let smss_f = f64::from(smss.max(1));
        let cwnd = f64::from(self.cwnd);
        let c = &mut self.cubic;
        let start = match c.epoch_start {
            Some(s) => s,
            None => {
                c.epoch_start = Some(now_us);
                if c.w_max <= cwnd {
                    c.w_max = cwnd;
                    c.k = 0.0;
                } else {
                    c.k = ((c.w_max - cwnd) / smss_f / CUBIC_C).cbrt();
                }
                c.w_est = cwnd;
                c.frac = 0.0;
                now_us
            }
        };
        let t = now_us.saturating_sub(start) as f64 / 1e6;
        let rtt = srtt_us as f64 / 1e6;
        let w_cubic = |t: f64| CUBIC_C * (t - c.k).powi(3) * smss_f + c.w_max;
        // Reno-friendly region (RFC 9438 §4.3).
        let alpha = if c.w_est >= c.w_max {
            1.0
        } else {
            3.0 * (1.0 - CUBIC_BETA) / (1.0 + CUBIC_BETA)
        };
        c.w_est += alpha * f64::from(acked) / cwnd * smss_f;
        let inc = if w_cubic(t) < c.w_est {
            (c.w_est - cwnd).max(0.0)
        } else {
            let target = w_cubic(t + rtt).clamp(cwnd, 1.5 * cwnd);
            (target - cwnd) / cwnd * f64::from(acked)
        };
        c.frac += inc;
        if c.frac >= 1.0 {
            let whole = c.frac.floor();
            c.frac -= whole;
            let whole = whole.min(f64::from(MAX_CWND)) as u32;
            self.cwnd = self.cwnd.saturating_add(whole).min(MAX_CWND);
        }
    }

    /// A loss detected by duplicate ACKs / SACK (fast recovery entry) or a
    /// tail loss repaired by a probe. Sets and returns ssthresh; the caller
    /// sets cwnd.
    pub fn on_congestion(&mut self, flight: u32, smss: u32) -> u32 {
        let floor = smss.saturating_mul(2);
        self.acked_acc = 0;
        self.ssthresh = match self.kind {
            // Loss is not congestion to BBR: the window stays (and
            // recovery ends with it).
            Congestion::Bbr => self.cwnd.max(floor),
            Congestion::NewReno => (flight / 2).max(floor),
            Congestion::Cubic => {
                let c = &mut self.cubic;
                let cwnd = f64::from(self.cwnd);
                // Fast convergence (RFC 9438 §4.7).
                c.w_max = if cwnd < c.w_last_max {
                    cwnd * (1.0 + CUBIC_BETA) / 2.0
                } else {
                    cwnd
                };
                c.w_last_max = cwnd;
                c.epoch_start = None;
                ((cwnd * CUBIC_BETA) as u32).max(floor)
            }
        };
        self.ssthresh
    }

    /// A retransmission timeout: ssthresh as for a loss (once per episode,
    /// `first`), cwnd = 1 segment (RFC 5681 §3.1: the loss window).
    pub fn on_rto(&mut self, flight: u32, smss: u32, first: bool) {
        if first {
            self.on_congestion(flight, smss);
        }
        self.cubic.epoch_start = None;
        self.cwnd = smss.max(1);
    }

    /// BBR: one ACK's model update (no-op for the other controllers).
    #[allow(clippy::too_many_arguments)]
    pub fn bbr_ack(
        &mut self,
        rs: Option<RateSample>,
        acked: u32,
        delivered: u64,
        flight: u32,
        smss: u32,
        now_us: u64,
    ) {
        if let Some(b) = self.bbr.as_mut() {
            let c = b.on_ack(self.cwnd, rs, acked, delivered, flight, smss, now_us);
            self.cwnd = c.min(MAX_CWND);
        }
    }

    pub fn set_cwnd(&mut self, cwnd: u32) {
        self.cwnd = cwnd.min(MAX_CWND);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reno_slow_start_and_avoidance() {
        let mut cc = Cc::new(Congestion::NewReno, 1000, 10);
        assert_eq!(cc.cwnd, 10_000);
        // Slow start: byte counting with L = 2.
        cc.on_ack(5000, 10_000, 1000, 0, 0);
        assert_eq!(cc.cwnd, 12_000);
        cc.on_ack(1000, 12_000, 1000, 0, 0);
        assert_eq!(cc.cwnd, 13_000);
        // Not cwnd-limited: no growth.
        cc.on_ack(1000, 2_000, 1000, 0, 0);
        assert_eq!(cc.cwnd, 13_000);
        assert_eq!(cc.on_congestion(13_000, 1000), 6_500);
        cc.set_cwnd(6_500);
        // Avoidance: one segment per window.
        for _ in 0..6 {
            cc.on_ack(1000, 6_500, 1000, 0, 0);
        }
        assert_eq!(cc.cwnd, 6_500);
        cc.on_ack(1000, 6_500, 1000, 0, 0);
        assert_eq!(cc.cwnd, 7_500);
        cc.on_rto(7_500, 1000, true);
        assert_eq!((cc.cwnd, cc.ssthresh), (1000, 3_750));
        assert_eq!(cc.on_congestion(1000, 1000), 2000);
    }

    #[test]
    fn cubic_reduces_by_beta_and_regrows() {
        let mut cc = Cc::new(Congestion::Cubic, 1000, 100);
        assert_eq!(cc.on_congestion(100_000, 1000), 70_000);
        cc.set_cwnd(70_000);
        // Concave growth back to W_max = 100 segments at K = cbrt(30 / 0.4)
        // ≈ 4.2 s (100 ms RTTs: the Reno-friendly estimate stays below).
        let mut now = 0u64;
        let mut at_2s = 0;
        for rtt in 0..42 {
            for _ in 0..cc.cwnd / 1000 {
                let w = cc.cwnd;
                cc.on_ack(1000, w, 1000, now, 100_000);
            }
            now += 100_000;
            if rtt == 19 {
                at_2s = cc.cwnd;
            }
        }
        assert!(at_2s > 90_000 && at_2s < 99_000, "{at_2s}");
        assert!(cc.cwnd > 97_000 && cc.cwnd < 103_000, "{}", cc.cwnd);
        // Fast convergence: a second loss below the previous W_max.
        cc.set_cwnd(80_000);
        cc.on_congestion(80_000, 1000);
        assert_eq!(cc.ssthresh, 56_000);
    }

    #[test]
    fn cubic_grows_at_least_like_aimd_at_low_rtt() {
        // 0.5 ms RTT: the cubic curve is flat for seconds (K ≈ 2.5 s for
        // W_max = 20 segments), so the Reno-friendly region (RFC 9438 §4.3,
        // α = 3(1−β)/(1+β) ≈ 0.53 segment per RTT) must carry the growth.
        let mut cc = Cc::new(Congestion::Cubic, 1000, 20);
        cc.on_congestion(20_000, 1000);
        cc.set_cwnd(14_000);
        let mut now = 0u64;
        for _ in 0..20 {
            for _ in 0..cc.cwnd / 1000 {
                let w = cc.cwnd;
                cc.on_ack(1000, w, 1000, now, 500);
            }
            now += 500;
        }
        // 20 RTTs: ≥ 0.5 segment per RTT, and not runaway.
        assert!(cc.cwnd >= 24_000 && cc.cwnd <= 36_000, "{}", cc.cwnd);
    }
}
