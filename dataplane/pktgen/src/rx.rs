//! Receive-side accounting: per-stream sequence tracking (received, lost by
//! gaps, reordered, duplicated, late) and one-way latency in an HDR
//! histogram. Fixed-size state: nothing allocates per packet.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::payload::RxHeader;

/// Sequence numbers remembered behind the highest one seen (to tell a
/// reordered packet from a duplicate).
pub const WINDOW: u64 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// Counters of one stream's receive side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StreamRxCounters {
    /// Generator frames of this stream received (incl. duplicates).
    pub received: u64,
    /// Distinct sequence numbers received.
    pub unique: u64,
    /// Sequence numbers skipped and not (yet) seen: loss by gaps.
    pub gap_lost: u64,
    /// Arrived after a higher sequence number (filled an earlier gap).
    pub reordered: u64,
    /// Seen before (inside the window).
    pub duplicated: u64,
    /// Older than the window: counted neither as unique nor as duplicate.
    pub late: u64,
}

/// One stream's sequence tracker.
#[derive(Clone, Debug, Default)]
pub struct SeqTracker {
    /// Next expected (extended, 64-bit) sequence number.
    next: u64,
    /// Bit i of the window: sequence `next - 1 - i` was received.
    seen: [u64; WORDS],
    /// The counters.
    pub c: StreamRxCounters,
}

impl SeqTracker {
    fn shift(&mut self, k: u64) {
        if k >= WINDOW {
            self.seen = [0; WORDS];
            return;
        }
        let (w, b) = ((k / 64) as usize, (k % 64) as u32);
        for i in (0..WORDS).rev() {
            let hi = if i >= w { self.seen[i - w] } else { 0 };
            let lo = if b > 0 && i > w {
                self.seen[i - w - 1] >> (64 - b)
            } else {
                0
            };
            self.seen[i] = if b > 0 { (hi << b) | lo } else { hi };
        }
    }

    fn bit(&mut self, age: u64) -> (usize, u64) {
        ((age / 64) as usize, 1u64 << (age % 64))
    }

    /// Accounts sequence number `seq` (32-bit, wrapping; the sender starts at 0).
    pub fn record(&mut self, seq: u32) {
        self.c.received += 1;
        let d = i64::from(seq.wrapping_sub(self.next as u32) as i32);
        let e = self.next as i64 + d;
        if e < 0 {
            self.c.late += 1;
            return;
        }
        let e = e as u64;
        if e >= self.next {
            let gap = e - self.next;
            self.c.gap_lost += gap;
            self.shift(gap + 1);
            self.seen[0] |= 1;
            self.next = e + 1;
            self.c.unique += 1;
        } else {
            let age = self.next - 1 - e;
            if age >= WINDOW {
                self.c.late += 1;
                return;
            }
            let (w, m) = self.bit(age);
            if self.seen[w] & m != 0 {
                self.c.duplicated += 1;
            } else {
                self.seen[w] |= m;
                self.c.reordered += 1;
                self.c.gap_lost = self.c.gap_lost.saturating_sub(1);
                self.c.unique += 1;
            }
        }
    }
}

/// Frame-level receive counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RxCounters {
    /// Frames received on the rx port (anything).
    pub frames: u64,
    /// Generator frames (payload header parsed, known stream).
    pub pkts: u64,
    /// Bytes of generator frames incl. FCS (L2).
    pub bytes: u64,
    /// Frames that are not generator frames (by reason below).
    pub not_ipv4: u64,
    /// Invalid IPv4 or fragment.
    pub bad_ipv4: u64,
    /// Neither UDP nor TCP.
    pub not_udp_tcp: u64,
    /// L4 header truncated.
    pub bad_l4: u64,
    /// No payload header (magic).
    pub no_magic: u64,
    /// Payload header with a stream id not configured.
    pub unknown_stream: u64,
    /// Timestamp in the future (clock mismatch): latency not recorded.
    pub ts_future: u64,
}

/// The receive side: trackers per stream, frame counters, latency.
#[derive(Debug)]
pub struct RxSide {
    /// One tracker per stream id `0..streams`.
    pub streams: Vec<SeqTracker>,
    /// Frame counters.
    pub c: RxCounters,
    /// One-way latency, ns.
    pub latency: Histogram<u64>,
    hz: u64,
}

/// Largest latency recorded (larger values are clamped), ns: 60 s.
pub const MAX_LATENCY_NS: u64 = 60_000_000_000;

impl RxSide {
    /// State for `streams` streams on a clock of `hz`.
    pub fn new(streams: usize, hz: u64) -> Self {
        RxSide {
            streams: vec![SeqTracker::default(); streams],
            c: RxCounters::default(),
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("valid histogram bounds"),
            hz: hz.max(1),
        }
    }

    /// Accounts one received frame of `len` bytes (without FCS) at `now`.
    pub fn frame(&mut self, data: &[u8], now: u64) {
        self.c.frames += 1;
        match crate::payload::parse_frame(data) {
            Ok(h) => self.header(h, data.len(), now),
            Err(e) => {
                use crate::payload::RxError::*;
                let c = match e {
                    NotIpv4 => &mut self.c.not_ipv4,
                    BadIpv4 => &mut self.c.bad_ipv4,
                    NotUdpTcp => &mut self.c.not_udp_tcp,
                    BadL4 => &mut self.c.bad_l4,
                    NoMagic => &mut self.c.no_magic,
                };
                *c += 1;
            }
        }
    }

    /// Accounts a parsed payload header.
    pub fn header(&mut self, h: RxHeader, len: usize, now: u64) {
        let Some(t) = self.streams.get_mut(usize::from(h.stream)) else {
            self.c.unknown_stream += 1;
            return;
        };
        t.record(h.seq);
        self.c.pkts += 1;
        self.c.bytes += (len + crate::stream::FCS) as u64;
        if now < h.tsc {
            self.c.ts_future += 1;
            return;
        }
        let ns = (u128::from(now - h.tsc) * 1_000_000_000 / u128::from(self.hz)) as u64;
        self.latency.saturating_record(ns.clamp(1, MAX_LATENCY_NS));
    }

    /// Sum of the streams' counters.
    pub fn totals(&self) -> StreamRxCounters {
        let mut t = StreamRxCounters::default();
        for s in &self.streams {
            t.received += s.c.received;
            t.unique += s.c.unique;
            t.gap_lost += s.c.gap_lost;
            t.reordered += s.c.reordered;
            t.duplicated += s.c.duplicated;
            t.late += s.c.late;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(seqs: &[u32]) -> StreamRxCounters {
        let mut t = SeqTracker::default();
        for &s in seqs {
            t.record(s);
        }
        t.c
    }

    #[test]
    fn in_order() {
        let c = feed(&[0, 1, 2, 3]);
        assert_eq!(
            (c.received, c.unique, c.gap_lost, c.reordered, c.duplicated),
            (4, 4, 0, 0, 0)
        );
    }

    #[test]
    fn gap_then_fill_is_reorder() {
        let c = feed(&[0, 1, 3, 4, 2]);
        assert_eq!(
            (c.unique, c.gap_lost, c.reordered, c.duplicated),
            (5, 0, 1, 0)
        );
        let c = feed(&[0, 5]);
        assert_eq!((c.unique, c.gap_lost), (2, 4));
    }

    #[test]
    fn duplicates() {
        let c = feed(&[0, 1, 1, 2, 0, 2]);
        assert_eq!(
            (c.received, c.unique, c.duplicated, c.reordered),
            (6, 3, 3, 0)
        );
    }

    #[test]
    fn window_shift_across_words() {
        let mut t = SeqTracker::default();
        t.record(0);
        t.record(100); // gap of 99
        t.record(0); // age 100: dup
        t.record(50); // reordered
        t.record(50); // dup
        assert_eq!((t.c.duplicated, t.c.reordered, t.c.gap_lost), (2, 1, 98));
        t.record(100 + WINDOW as u32 + 5);
        t.record(1); // too old
        assert_eq!(t.c.late, 1);
    }

    #[test]
    fn wraps_32_bits() {
        let mut t = SeqTracker::default();
        let mut s = 0u32;
        t.next = u64::from(u32::MAX) - 2;
        s = s.wrapping_add(u32::MAX - 2);
        for _ in 0..6 {
            t.record(s);
            s = s.wrapping_add(1);
        }
        assert_eq!((t.c.unique, t.c.gap_lost, t.c.late), (6, 0, 0));
        assert_eq!(t.next, u64::from(u32::MAX) + 4);
    }
}
