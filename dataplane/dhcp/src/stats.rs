//! Tester statistics: counters, per-stage latency histograms (HDR, so that
//! millions of samples take constant memory), a retries histogram, and the
//! serialisable [`TesterReport`].

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest latency recorded exactly (one hour, in ns); larger samples are
/// clamped to it.
pub const MAX_LATENCY_NS: u64 = 3_600_000_000_000;

/// Buckets of the retries histogram: 0..=31 retries, and 32 or more.
pub const RETRY_BUCKETS: usize = 33;

/// A latency distribution in nanoseconds (HDR histogram, 3 significant
/// digits, 1 ns – 1 h; recording never allocates).
#[derive(Clone, Debug)]
pub struct Latency {
    h: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty distribution.
    pub fn new() -> Self {
        // Constant bounds that `new_with_bounds` accepts (low ≥ 1, high ≥
        // 2 × low, sigfig ≤ 5): this cannot fail at run time.
        let h = Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid constant bounds");
        Latency { h }
    }

    /// Records one sample (clamped to 1 ns ..= [`MAX_LATENCY_NS`]).
    pub fn record(&mut self, ns: u64) {
        self.h.saturating_record(ns.clamp(1, MAX_LATENCY_NS));
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.h.len()
    }

    /// The underlying histogram (for CDF plots).
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.h
    }

    /// Summary in microseconds (zeros when empty).
    pub fn summary(&self) -> LatencySummary {
        if self.h.is_empty() {
            return LatencySummary::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        LatencySummary {
            count: self.h.len(),
            min_us: us(self.h.min()),
            mean_us: self.h.mean() / 1000.0,
            p50_us: us(self.h.value_at_quantile(0.5)),
            p95_us: us(self.h.value_at_quantile(0.95)),
            p99_us: us(self.h.value_at_quantile(0.99)),
            max_us: us(self.h.max()),
        }
    }
}

/// Percentiles of one stage, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Minimum.
    pub min_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 95th percentile.
    pub p95_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Maximum.
    pub max_us: f64,
}

/// Tester counters (the dashboard's numbers).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TesterCounters {
    /// Clients started (first DISCOVER sent).
    pub started: u64,
    /// DISCOVERs sent, retransmissions included.
    pub discover_sent: u64,
    /// OFFERs accepted.
    pub offer_received: u64,
    /// REQUESTs sent (selecting and renewing), retransmissions included.
    pub request_sent: u64,
    /// ACKs accepted (selecting and renewing).
    pub ack_received: u64,
    /// NAKs received.
    pub nak_received: u64,
    /// Retransmission timer expiries (each leads to a retry or a failure).
    pub timeouts: u64,
    /// Retransmissions sent.
    pub retries: u64,
    /// Clients that reached BOUND.
    pub bound: u64,
    /// Renewal REQUESTs sent.
    pub renew_sent: u64,
    /// Renewals acknowledged.
    pub renew_ack: u64,
    /// Rebinding messages sent (DHCPv6 REBIND), retransmissions included.
    pub rebind_sent: u64,
    /// Rebinding messages answered with Success.
    pub rebind_ack: u64,
    /// RELEASEs sent.
    pub release_sent: u64,
    /// Clients finished successfully.
    pub done: u64,
    /// Clients failed.
    pub failed: u64,
    /// Replies dropped as invalid or unexpected (by reason in
    /// [`TesterReport::errors`]).
    pub reply_errors: u64,
    /// Replies to relayed requests whose Option 82 was not our own, echoed
    /// unchanged.
    pub option82_mismatch: u64,
    /// Frames the caller's buffers could not hold (not sent).
    pub tx_buffer_full: u64,
}

/// A final report (serialise it with serde, e.g. to JSON).
#[derive(Clone, Debug, Serialize)]
pub struct TesterReport {
    /// Clients configured.
    pub clients_total: u64,
    /// Counters.
    pub counters: TesterCounters,
    /// bound / clients finished (done + failed), 0 when none finished.
    pub success_rate: f64,
    /// Seconds from the first DISCOVER to the last client finishing (or to
    /// `now` while running).
    pub elapsed_s: f64,
    /// Clients bound per second of `elapsed_s`.
    pub clients_per_s: f64,
    /// DISCOVER → OFFER (from the first DISCOVER of the attempt).
    pub discover_offer: LatencySummary,
    /// REQUEST → ACK (from the first REQUEST).
    pub request_ack: LatencySummary,
    /// First DISCOVER → ACK.
    pub total: LatencySummary,
    /// Renewal REQUEST → ACK.
    pub renew: LatencySummary,
    /// Errors by kind: failure reasons and reply errors, non-zero only.
    pub errors: BTreeMap<&'static str, u64>,
    /// Retries per finished client: `(retries, clients)`, non-zero buckets
    /// only; the last bucket means "that many or more".
    pub retries_histogram: Vec<(u32, u64)>,
}
