//! TSC token-bucket pacing in integer arithmetic (no drift).
//!
//! Tokens are kept in "unit × cycle" so that refilling is `elapsed_cycles ×
//! rate` and a packet costs `units × hz` (units: 1 per packet for a pps
//! rate, the frame's L1 bits for a bit rate). The bucket holds at most
//! `burst` packets' worth: a late loop catches up by at most one burst.

use crate::stream::L1_OVERHEAD;

/// Target rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rate {
    /// No pacing: as fast as the device takes frames.
    Max,
    /// Packets per second.
    Pps(u64),
    /// L1 bits per second (frame incl. FCS + 20 B preamble/SFD/IFG).
    L1Bps(u64),
}

/// The token bucket.
#[derive(Clone, Debug)]
pub struct Pacer {
    rate: Rate,
    hz: u128,
    tokens: u128,
    cap: u128,
    last: u64,
}

impl Pacer {
    /// A pacer starting (empty) at `now`; `burst` packets of `max_size`
    /// bytes (incl. FCS) bound the bucket.
    pub fn new(rate: Rate, hz: u64, burst: u32, max_size: u16, now: u64) -> Self {
        let hz = u128::from(hz);
        let per = match rate {
            Rate::Max => 0,
            Rate::Pps(_) => hz,
            Rate::L1Bps(_) => (usize::from(max_size) + L1_OVERHEAD) as u128 * 8 * hz,
        };
        Pacer {
            rate,
            hz,
            tokens: 0,
            cap: per * u128::from(burst.max(1)),
            last: now,
        }
    }

    /// The configured rate.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Adds the tokens earned since the last call.
    #[inline]
    pub fn refill(&mut self, now: u64) {
        let r = match self.rate {
            Rate::Max => return,
            Rate::Pps(r) | Rate::L1Bps(r) => u128::from(r),
        };
        let el = u128::from(now.saturating_sub(self.last));
        self.last = self.last.max(now);
        self.tokens = (self.tokens + el * r).min(self.cap);
    }

    /// Takes one frame of `size` bytes (incl. FCS) if the bucket allows.
    #[inline]
    pub fn take(&mut self, size: u16) -> bool {
        let cost = match self.rate {
            Rate::Max => return true,
            Rate::Pps(_) => self.hz,
            Rate::L1Bps(_) => (usize::from(size) + L1_OVERHEAD) as u128 * 8 * self.hz,
        };
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }
}
