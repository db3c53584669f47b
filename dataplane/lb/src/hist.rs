//! Latency histograms of the balancer: fixed buckets, plain `u64`s on the
//! lcore, published with the counters (relaxed atomics) and summed by the
//! control thread for `/metrics`.
//!
//! Recording is a binary search over [`BOUNDS_US`] and two additions; no
//! allocation, no lock.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the buckets, µs (Prometheus `le`); one more bucket
/// holds everything above the last (`+Inf`).
pub const BOUNDS_US: [u64; 20] = [
    50,
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
    300_000_000,
];

/// Buckets, with the `+Inf` one.
pub const BUCKETS: usize = BOUNDS_US.len() + 1;

/// One histogram (per-bucket counts, not cumulative).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hist {
    /// Observations per bucket (`counts[i]`: `BOUNDS_US[i-1] < v <= BOUNDS_US[i]`).
    pub counts: [u64; BUCKETS],
    /// Sum of the observations, µs.
    pub sum_us: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Hist {
            counts: [0; BUCKETS],
            sum_us: 0,
        }
    }
}

impl Hist {
    /// Record one observation of `us` microseconds.
    #[inline]
    pub fn record(&mut self, us: u64) {
        let i = BOUNDS_US.partition_point(|b| *b < us);
        self.counts[i] += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    /// Observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Add another histogram.
    pub fn add(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a += b;
        }
        self.sum_us = self.sum_us.saturating_add(o.sum_us);
    }
}

/// The published copy of one [`Hist`].
#[derive(Debug)]
pub struct SharedHist {
    counts: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

impl Default for SharedHist {
    fn default() -> Self {
        SharedHist {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl SharedHist {
    fn publish(&self, h: &Hist) {
        for (a, v) in self.counts.iter().zip(h.counts) {
            a.store(v, Ordering::Relaxed);
        }
        self.sum_us.store(h.sum_us, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Hist {
        Hist {
            counts: std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed)),
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

macro_rules! lb_hists {
    ($( $(#[$m:meta])* $name:ident, )*) => {
        /// The balancer's latency histograms (working copy, owned by the lcore).
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct LbHists {
            $( $(#[$m])* pub $name: Hist, )*
        }

        /// The published copy of one lcore's [`LbHists`].
        #[derive(Debug, Default)]
        pub struct SharedLbHists {
            $( $name: SharedHist, )*
        }

        impl SharedLbHists {
            /// Store `h` (relaxed; a reader may see one bucket a tick newer
            /// than another).
            pub fn publish(&self, h: &LbHists) {
                $( self.$name.publish(&h.$name); )*
            }
            /// Read the last published values.
            pub fn snapshot(&self) -> LbHists {
                LbHists { $( $name: self.$name.snapshot(), )* }
            }
        }

        impl LbHists {
            /// Add another lcore's histograms.
            pub fn add(&mut self, o: &LbHists) {
                $( self.$name.add(&o.$name); )*
            }
            /// Visit every histogram by name.
            pub fn for_each(&self, mut f: impl FnMut(&'static str, &Hist)) {
                $( f(stringify!($name), &self.$name); )*
            }
        }
    };
}

lb_hists! {
    /// Client connection setup of spliced VIPs: from the client's SYN (the
    /// SYN cache entry; from its handshake ACK when it came back with a
    /// cookie) to the flow spliced (the backend's SYN-ACK answered).
    setup,
    /// Backend connect time: from our SYN to the backend's SYN-ACK, per
    /// connection that succeeded (from the first SYN to the backend that
    /// answered, retransmissions included).
    backend_connect,
    /// TLS handshake time on terminated VIPs: from the TCP connection's
    /// completion to the TLS handshake's.
    tls_handshake,
    /// Flow duration of spliced connections: from the client's SYN (as for
    /// `setup`) to the flow closed (both FINs acknowledged, or a RST).
    flow_duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_upper_bounds() {
        let mut h = Hist::default();
        for v in [
            0,
            50,
            51,
            100,
            299_999_999,
            300_000_000,
            300_000_001,
            u64::MAX,
        ] {
            h.record(v);
        }
        assert_eq!(h.counts[0], 2, "0 and 50 are <= 50");
        assert_eq!(h.counts[1], 2, "51 and 100");
        assert_eq!(h.counts[BUCKETS - 2], 2, "<= 300 s");
        assert_eq!(h.counts[BUCKETS - 1], 2, "+Inf");
        assert_eq!(h.count(), 8);
        assert_eq!(h.sum_us, u64::MAX, "saturates");
    }

    #[test]
    fn publish_snapshot_and_sum() {
        let mut h = LbHists::default();
        h.setup.record(700);
        h.flow_duration.record(2_000_000);
        let s = SharedLbHists::default();
        s.publish(&h);
        let mut t = s.snapshot();
        assert_eq!(t, h);
        t.add(&h);
        assert_eq!(t.setup.counts[4], 2);
        assert_eq!(t.setup.sum_us, 1400);
        let mut names = Vec::new();
        t.for_each(|n, _| names.push(n));
        assert_eq!(
            names,
            ["setup", "backend_connect", "tls_handshake", "flow_duration"]
        );
    }
}
