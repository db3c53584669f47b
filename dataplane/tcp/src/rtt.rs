//! RFC 6298 round-trip estimation and retransmission timeout.

/// Clock granularity G of RFC 6298 (µs): the timestamp clock ticks in ms.
const GRANULARITY_US: u64 = 1_000;
/// Backoff shifts beyond this change nothing (the RTO is at its ceiling).
const MAX_BACKOFF: u32 = 20;

#[derive(Clone, Debug)]
pub(crate) struct Rtt {
    /// Smoothed RTT (µs); 0 before the first sample.
    pub srtt: u64,
    pub rttvar: u64,
    /// RTO before backoff (µs).
    base: u64,
    pub backoff: u32,
    min: u64,
    max: u64,
    pub samples: u64,
}

impl Rtt {
    pub fn new(initial: u64, min: u64, max: u64) -> Rtt {
        Rtt {
            srtt: 0,
            rttvar: 0,
            base: initial,
            backoff: 0,
            min,
            max,
            samples: 0,
        }
    }

    /// One measurement `r` (µs), RFC 6298 §2.2–2.3. Resets the backoff
    /// (§5.7: a new RTT sample recomputes the RTO).
    pub fn sample(&mut self, r: u64) {
        let r = r.clamp(1, self.max.saturating_mul(2));
        if self.samples == 0 {
            self.srtt = r;
            self.rttvar = r / 2;
        } else {
            let diff = self.srtt.abs_diff(r);
            // RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|; SRTT <- 7/8 SRTT + 1/8 R'
            self.rttvar = (3 * self.rttvar + diff) / 4;
            self.srtt = (7 * self.srtt + r) / 8;
        }
        self.samples += 1;
        self.base = (self.srtt + (4 * self.rttvar).max(GRANULARITY_US)).clamp(self.min, self.max);
        self.backoff = 0;
    }

    /// The current RTO, backoff included.
    pub fn rto(&self) -> u64 {
        let b = self.backoff.min(MAX_BACKOFF);
        self.base.saturating_mul(1 << b).clamp(self.min, self.max)
    }

    /// Doubles the RTO (RFC 6298 §5.5).
    pub fn back_off(&mut self) {
        if self.backoff < MAX_BACKOFF {
            self.backoff += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6298() {
        let mut r = Rtt::new(1_000_000, 200_000, 60_000_000);
        assert_eq!(r.rto(), 1_000_000);
        r.back_off();
        assert_eq!(r.rto(), 2_000_000);
        r.sample(100_000);
        assert_eq!((r.srtt, r.rttvar, r.backoff), (100_000, 50_000, 0));
        assert_eq!(r.rto(), 300_000);
        r.sample(100_000);
        assert_eq!((r.srtt, r.rttvar), (100_000, 37_500));
        assert_eq!(r.rto(), 250_000);
        // The 200 ms floor.
        for _ in 0..50 {
            r.sample(1_000);
        }
        assert_eq!(r.rto(), 200_000);
        for _ in 0..30 {
            r.back_off();
        }
        assert_eq!(r.rto(), 60_000_000);
    }
}
