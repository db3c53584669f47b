//! The generator's lcore loop, generic over [`Queue`] and [`Clock`]: paced
//! TX on `tx`, parse-and-account RX on `rx` (which may be the same queue),
//! counters published every millisecond, a final result at the end.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;
use qsplice_netdev::{Burst, Clock, Frame, Queue, MAX_BURST};
use rand::rngs::SmallRng;

use crate::pacer::{Pacer, Rate};
use crate::rx::{RxCounters, RxSide, StreamRxCounters};
use crate::stream::{SizeDist, Sizer, Stream, StreamSpec, FCS, L1_OVERHEAD};

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Streams, sent round robin; stream ids must be `0..n`.
    pub streams: Vec<StreamSpec>,
    /// Frame sizes (incl. FCS); each frame is raised to its stream's minimum.
    pub sizes: SizeDist,
    /// Target rate.
    pub rate: Rate,
    /// Stop after this many packets (0: no limit).
    pub count: u64,
    /// Stop after this many ms of sending (0: no limit).
    pub duration_ms: u64,
    /// Frames per tx burst (and the pacer's bucket depth).
    pub burst: u32,
    /// Keep receiving this long after the last frame is sent, ms.
    pub drain_ms: u64,
    /// RNG seed (random fields and sizes).
    pub seed: u64,
    /// Poll the receive queue (false: TX only, e.g. benchmarks on net_null,
    /// whose rx invents frames).
    pub receive: bool,
}

/// The transmit side: streams, sizes, pacing, stop condition.
#[derive(Debug)]
pub struct Generator {
    /// The streams.
    pub streams: Vec<Stream>,
    sizer: Sizer,
    /// The pacer.
    pub pacer: Pacer,
    rng: SmallRng,
    next: usize,
    count: u64,
    deadline: Option<u64>,
    /// Packets built.
    pub sent: u64,
    /// Bytes built, incl. FCS.
    pub bytes: u64,
    /// Frames raised to their stream's minimum size.
    pub clamped: u64,
}

impl Generator {
    /// Builds the streams' templates; `now`/`hz` start the pacer and deadline.
    pub fn new(cfg: &GenConfig, hz: u64, now: u64) -> Self {
        let sizer = Sizer::new(cfg.sizes.clone());
        let max = sizer.max();
        Generator {
            streams: cfg.streams.iter().cloned().map(Stream::new).collect(),
            pacer: Pacer::new(cfg.rate, hz, cfg.burst, max, now),
            sizer,
            rng: crate::stream::rng(cfg.seed),
            next: 0,
            count: cfg.count,
            deadline: (cfg.duration_ms > 0)
                .then(|| now + (u128::from(hz) * u128::from(cfg.duration_ms) / 1000) as u64),
            sent: 0,
            bytes: 0,
            clamped: 0,
        }
    }

    /// Whether the count or the duration is reached.
    pub fn finished(&self, now: u64) -> bool {
        (self.count > 0 && self.sent >= self.count) || self.deadline.is_some_and(|d| now >= d)
    }

    /// Builds up to `max` paced frames into `out`: first the burst's sizes
    /// (and the pacer's tokens for them), then its buffers in one bulk
    /// allocation straight into `out`, then the frames. Returns how many
    /// were built.
    pub fn fill<Q: Queue>(
        &mut self,
        q: &mut Q,
        out: &mut Burst<Q::Frame>,
        max: usize,
        now: u64,
    ) -> usize {
        if self.streams.is_empty() || self.finished(now) {
            return 0;
        }
        self.pacer.refill(now);
        let mut room = max.min(out.capacity() - out.len());
        if self.count > 0 {
            room = room.min(usize::try_from(self.count - self.sent).unwrap_or(usize::MAX));
        }
        let nstreams = self.streams.len();
        if nstreams == 1 {
            if let Some(fixed) = self.sizer.fixed() {
                return self.fill_one(q, out, room, fixed, now);
            }
        }
        let mut sizes = [0u16; MAX_BURST];
        let mut k = 0;
        let mut si = self.next;
        // At max rate with one size, the burst is `room` frames of it (each
        // stream's minimum applied).
        if let (Rate::Max, Some(fixed)) = (self.pacer.rate(), self.sizer.fixed()) {
            for size in &mut sizes[..room] {
                let min = self.streams[si].min_frame;
                *size = if fixed < min {
                    self.clamped += 1;
                    min
                } else {
                    fixed
                };
                si = if si + 1 >= nstreams { 0 } else { si + 1 };
            }
            k = room;
        }
        while k < room {
            let size = self.sizer.next(&mut self.rng);
            let min = self.streams[si].min_frame;
            let size = if size < min {
                self.clamped += 1;
                min
            } else {
                size
            };
            if !self.pacer.take(size) {
                break;
            }
            sizes[k] = size;
            k += 1;
            si = if si + 1 >= nstreams { 0 } else { si + 1 };
        }
        if k == 0 {
            return 0;
        }
        let start = out.len();
        q.alloc_bulk(out, k);
        let mut n = 0;
        let mut si = self.next;
        for (f, &size) in out[start..].iter_mut().zip(&sizes[..k]) {
            if !f.set_len(usize::from(size) - FCS) {
                break;
            }
            self.streams[si].emit(f.data_mut(), now, &mut self.rng);
            si = if si + 1 >= nstreams { 0 } else { si + 1 };
            self.bytes += u64::from(size);
            n += 1;
        }
        // Buffers not built (allocation short, or a size the buffers do not
        // hold) go back to the pool.
        out.truncate(start + n);
        self.next = si;
        self.sent += n as u64;
        n
    }

    /// [`Generator::fill`] for one stream of one size: the stream builds
    /// the whole burst with its cursors in registers.
    fn fill_one<Q: Queue>(
        &mut self,
        q: &mut Q,
        out: &mut Burst<Q::Frame>,
        room: usize,
        fixed: u16,
        now: u64,
    ) -> usize {
        let min = self.streams[0].min_frame;
        let size = fixed.max(min);
        let k = match self.pacer.rate() {
            Rate::Max => room,
            _ => {
                let mut k = 0;
                while k < room && self.pacer.take(size) {
                    k += 1;
                }
                k
            }
        };
        if k == 0 {
            return 0;
        }
        let start = out.len();
        q.alloc_bulk(out, k);
        let n = self.streams[0].emit_burst(
            &mut out[start..],
            usize::from(size) - FCS,
            now,
            &mut self.rng,
        );
        // Buffers not built (a size the buffers do not hold) go back.
        out.truncate(start + n);
        if fixed < min {
            self.clamped += n as u64;
        }
        self.bytes += u64::from(size) * n as u64;
        self.sent += n as u64;
        n
    }
}

/// Counters the lcore publishes (relaxed stores, every millisecond).
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Packets sent (taken by the device).
    pub tx_pkts: AtomicU64,
    /// Bytes sent incl. FCS.
    pub tx_bytes: AtomicU64,
    /// Generator packets received.
    pub rx_pkts: AtomicU64,
    /// Their bytes incl. FCS.
    pub rx_bytes: AtomicU64,
    /// Loss by sequence gaps so far.
    pub gap_lost: AtomicU64,
    /// Reordered.
    pub reordered: AtomicU64,
    /// Duplicated.
    pub duplicated: AtomicU64,
    /// Frames received that are not generator frames.
    pub rx_other: AtomicU64,
    /// Latency p50 / p99 so far, ns (updated every ~100 ms).
    pub lat_p50_ns: AtomicU64,
    /// Latency p99 so far, ns.
    pub lat_p99_ns: AtomicU64,
}

/// The end result of a run, handed to the control thread.
#[derive(Clone, Debug)]
pub struct GenFinal {
    /// Per stream: (packets sent, receive counters).
    pub streams: Vec<(u64, StreamRxCounters)>,
    /// Packets sent.
    pub tx_pkts: u64,
    /// Bytes sent incl. FCS.
    pub tx_bytes: u64,
    /// Cycles from the first to the last frame sent.
    pub tx_cycles: u64,
    /// Frames the device refused at least once (retried).
    pub tx_retries: u64,
    /// Frames raised to their stream's minimum size.
    pub clamped: u64,
    /// Frame-level receive counters.
    pub rx: RxCounters,
    /// Cycles from the first frame sent to the last generator frame received.
    pub rx_cycles: u64,
    /// One-way latency, ns.
    pub latency: Histogram<u64>,
    /// Cycles per second of the clock.
    pub hz: u64,
    /// Stopped by the control thread before count/duration.
    pub interrupted: bool,
}

/// State shared between the lcore and the control thread.
#[derive(Debug, Default)]
pub struct GenShared {
    /// Live counters.
    pub live: LiveCounters,
    /// Set by the lcore once sending is over.
    pub tx_done: AtomicBool,
    /// The final result, set once by the lcore.
    pub result: Mutex<Option<GenFinal>>,
}

/// The per-lcore loop.
#[derive(Debug)]
pub struct GenLoop<Q: Queue, C: Clock> {
    gen: Generator,
    rx: RxSide,
    tx_q: Q,
    rx_q: Option<Q>,
    clock: C,
    burst: usize,
    drain: u64,
    shared: Arc<GenShared>,
    receive: bool,
    pending: Burst<Q::Frame>,
    /// Frames in `pending` and their bytes incl. FCS (as far as known:
    /// the count tells whether the sum is current).
    pending_bytes: (usize, u64),
    tx_pkts: u64,
    tx_bytes: u64,
    tx_retries: u64,
    first_tx: Option<u64>,
    last_tx: u64,
    last_rx: u64,
}

impl<Q: Queue, C: Clock> GenLoop<Q, C> {
    /// A loop sending on `tx_q` and receiving on `rx_q` (None: on `tx_q`).
    pub fn new(
        cfg: &GenConfig,
        tx_q: Q,
        rx_q: Option<Q>,
        clock: C,
        shared: Arc<GenShared>,
    ) -> Self {
        let now = clock.now();
        let hz = clock.hz();
        GenLoop {
            gen: Generator::new(cfg, hz, now),
            rx: RxSide::new(cfg.streams.len(), hz),
            tx_q,
            rx_q,
            burst: (cfg.burst as usize).clamp(1, MAX_BURST),
            drain: clock.us_to_cycles(cfg.drain_ms * 1000),
            clock,
            shared,
            receive: cfg.receive,
            pending: Burst::new(),
            pending_bytes: (0, 0),
            tx_pkts: 0,
            tx_bytes: 0,
            tx_retries: 0,
            first_tx: None,
            last_tx: 0,
            last_rx: 0,
        }
    }

    /// The transmit side (tests).
    pub fn generator(&self) -> &Generator {
        &self.gen
    }

    /// The receive side (tests).
    pub fn rx_side(&self) -> &RxSide {
        &self.rx
    }

    /// The tx queue (tests).
    pub fn tx_queue(&mut self) -> &mut Q {
        &mut self.tx_q
    }

    /// One iteration: TX (retry pending, else build a paced burst), then RX.
    /// Returns whether sending is still going on.
    pub fn poll(&mut self, sending: bool) -> bool {
        let now = self.clock.now();
        let mut active = sending && !(self.pending.is_empty() && self.gen.finished(now));
        if active {
            if self.pending.is_empty() {
                let max = self.burst;
                let bytes = self.gen.bytes;
                let n = self.gen.fill(&mut self.tx_q, &mut self.pending, max, now);
                self.pending_bytes = (n, self.gen.bytes - bytes);
            }
            if !self.pending.is_empty() {
                let before = self.pending.len();
                // What is left after the burst is summed (rarely: the
                // device took everything); what was there is known.
                let bytes = if before == self.pending_bytes.0 {
                    self.pending_bytes.1
                } else {
                    self.pending.iter().map(|f| (f.len() + FCS) as u64).sum()
                };
                let n = self.tx_q.tx_burst(&mut self.pending);
                if n > 0 {
                    self.first_tx.get_or_insert(now);
                    self.last_tx = now;
                }
                let left: u64 = if n == before {
                    0
                } else {
                    self.pending.iter().map(|f| (f.len() + FCS) as u64).sum()
                };
                self.pending_bytes = (self.pending.len(), left);
                self.tx_pkts += n as u64;
                self.tx_bytes += bytes - left;
                if n < before {
                    self.tx_retries += (before - n) as u64;
                }
            }
            active = !(self.pending.is_empty() && self.gen.finished(now));
        }
        if !self.receive {
            return active;
        }
        let mut b: Burst<Q::Frame> = Burst::new();
        let q = self.rx_q.as_mut().unwrap_or(&mut self.tx_q);
        q.rx_burst(&mut b, self.burst.max(32));
        if b.is_empty() {
            return active;
        }
        // A fresh timestamp: on a loopback the frames sent above may be
        // received in the same iteration.
        let now = self.clock.now();
        let pkts = self.rx.c.pkts;
        for f in b.drain(..) {
            self.rx.frame(f.data(), now);
        }
        if self.rx.c.pkts != pkts {
            self.last_rx = now;
        }
        active
    }

    fn publish(&self, lat: bool) {
        let l = &self.shared.live;
        let t = self.rx.totals();
        l.tx_pkts.store(self.tx_pkts, Ordering::Relaxed);
        l.tx_bytes.store(self.tx_bytes, Ordering::Relaxed);
        l.rx_pkts.store(self.rx.c.pkts, Ordering::Relaxed);
        l.rx_bytes.store(self.rx.c.bytes, Ordering::Relaxed);
        l.gap_lost.store(t.gap_lost, Ordering::Relaxed);
        l.reordered.store(t.reordered, Ordering::Relaxed);
        l.duplicated.store(t.duplicated, Ordering::Relaxed);
        l.rx_other
            .store(self.rx.c.frames - self.rx.c.pkts, Ordering::Relaxed);
        if lat && !self.rx.latency.is_empty() {
            l.lat_p50_ns
                .store(self.rx.latency.value_at_quantile(0.5), Ordering::Relaxed);
            l.lat_p99_ns
                .store(self.rx.latency.value_at_quantile(0.99), Ordering::Relaxed);
        }
    }

    /// Runs until count/duration is reached (or `stop` is set), drains the
    /// receive side for `drain_ms`, and stores the result in the shared state.
    pub fn run(&mut self, stop: &AtomicBool) {
        let ms = self.clock.us_to_cycles(1000).max(1);
        let mut next_pub = self.clock.now() + ms;
        let mut pubs = 0u32;
        let mut sending = true;
        let mut drain_end = None;
        let mut interrupted = false;
        loop {
            let stopping = stop.load(Ordering::Relaxed);
            if stopping && sending {
                interrupted = true;
            }
            let still = self.poll(sending && !stopping);
            let now = self.clock.now();
            if sending && !still {
                sending = false;
                self.shared.tx_done.store(true, Ordering::Relaxed);
                drain_end = Some(now + self.drain);
            }
            if now >= next_pub {
                next_pub = now + ms;
                pubs = pubs.wrapping_add(1);
                self.publish(pubs % 100 == 0);
            }
            if drain_end.is_some_and(|d| now >= d) {
                break;
            }
        }
        // Frames still pending were never sent.
        self.pending.clear();
        self.publish(true);
        let fin = self.finish(interrupted);
        if let Ok(mut g) = self.shared.result.lock() {
            *g = Some(fin);
        }
    }

    /// The result so far.
    pub fn finish(&self, interrupted: bool) -> GenFinal {
        let first = self.first_tx.unwrap_or(0);
        GenFinal {
            streams: self
                .gen
                .streams
                .iter()
                .zip(&self.rx.streams)
                .map(|(s, r)| (s.sent, r.c))
                .collect(),
            tx_pkts: self.tx_pkts,
            tx_bytes: self.tx_bytes,
            tx_cycles: self.last_tx.saturating_sub(first),
            tx_retries: self.tx_retries,
            clamped: self.gen.clamped,
            rx: self.rx.c,
            rx_cycles: self.last_rx.saturating_sub(first),
            latency: self.rx.latency.clone(),
            hz: self.clock.hz(),
            interrupted,
        }
    }
}

/// Rates over an interval: (pps, L1 bit/s, L2 bit/s) for `pkts` frames of
/// `bytes` (incl. FCS) in `secs`.
pub fn rates(pkts: u64, bytes: u64, secs: f64) -> (f64, f64, f64) {
    if secs <= 0.0 {
        return (0.0, 0.0, 0.0);
    }
    let pps = pkts as f64 / secs;
    let l2 = bytes as f64 * 8.0 / secs;
    let l1 = (bytes + pkts * L1_OVERHEAD as u64) as f64 * 8.0 / secs;
    (pps, l1, l2)
}
