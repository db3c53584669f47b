//! Backend state published by the control thread to every lcore, and
//! per-backend counters published back.
//!
//! The control thread builds a new set of immutable [`Snapshot`]s (one per
//! pool) whenever a backend's state changes (health check, drain, config)
//! and swaps it in atomically ([`arc_swap`]): lcores never lock. An lcore
//! checks the version once per tick (1 ms) and takes the new set then, so
//! its view is at most one tick stale; between ticks it reads its own
//! `Arc` with no atomic operation per packet.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use qsplice_pool::Snapshot;

use crate::core::{ContentVip, TlsVip, VipConf};

/// The virtual services themselves, published beside the pools: which VIPs
/// exist and take new connections, which of them terminate TLS, which
/// dispatch on content. Indices only ever grow while the appliance runs (a
/// removed VIP stays as a closed entry whose flows drain; adding it again
/// reopens the same entry), so the pool and VIP indices a flow holds stay
/// valid across every publication.
#[derive(Clone, Debug, Default)]
pub struct Services {
    /// Every VIP, open or closed (pool `i` is `vips[i].pool`).
    pub vips: Vec<VipConf>,
    /// The TLS-terminated ones.
    pub tls_vips: Vec<TlsVip>,
    /// The content-aware ones.
    pub content: Vec<ContentVip>,
    /// Access log: one connection in this many is logged (0: off).
    pub access_sample: u32,
    /// IPv6 addresses and their IPv4 stand-ins (see `crate::six`).
    pub six: crate::six::SixMap,
}

/// Whether the appliance takes new connections (graceful shutdown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcceptMode {
    /// Normal operation.
    Serving,
    /// Shutting down: new connections are refused (SYNs and cookie ACKs
    /// get a RST), established ones continue.
    Draining,
    /// The grace period is over: every connection still open is reset
    /// both ways, nothing new is taken.
    Reset,
}

/// The published pools.
#[derive(Debug)]
pub struct PoolBoard {
    version: AtomicU64,
    pools: ArcSwap<Vec<Snapshot>>,
    services: ArcSwap<Services>,
    mode: AtomicU8,
}

impl PoolBoard {
    /// A board holding `pools` as version 1 (and no services: the lcores
    /// keep the ones they were built with until [`PoolBoard::publish_services`]).
    pub fn new(pools: Vec<Snapshot>) -> Self {
        PoolBoard {
            version: AtomicU64::new(1),
            pools: ArcSwap::from_pointee(pools),
            services: ArcSwap::from_pointee(Services::default()),
            mode: AtomicU8::new(0),
        }
    }
    /// Replace the services and every pool's snapshot at once (control
    /// thread): the lcores take both at their next tick. Publish the
    /// pools of new VIPs together with them.
    pub fn publish_services(&self, services: Services, pools: Vec<Snapshot>) {
        // Pools first, services second, then the version: an lcore loads
        // services before pools, so it never takes new services (a new
        // VIP) without their pools.
        self.pools.store(Arc::new(pools));
        self.services.store(Arc::new(services));
        self.version.fetch_add(1, Ordering::Release);
    }
    /// The current services (empty until the first
    /// [`PoolBoard::publish_services`]).
    pub fn services(&self) -> Arc<Services> {
        self.services.load_full()
    }
    /// Set the accept mode (control thread; lcores see it within a tick
    /// for the reset, at once for new connections).
    pub fn set_mode(&self, m: AcceptMode) {
        self.mode.store(m as u8, Ordering::Release);
    }
    /// The accept mode.
    #[inline]
    pub fn mode(&self) -> AcceptMode {
        match self.mode.load(Ordering::Acquire) {
            0 => AcceptMode::Serving,
            1 => AcceptMode::Draining,
            _ => AcceptMode::Reset,
        }
    }
    /// Replace every pool's snapshot (control thread).
    pub fn publish(&self, pools: Vec<Snapshot>) {
        self.pools.store(Arc::new(pools));
        self.version.fetch_add(1, Ordering::Release);
    }
    /// Current version (changes on every publish).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }
    /// The current pools.
    pub fn load(&self) -> Arc<Vec<Snapshot>> {
        self.pools.load_full()
    }
}

/// Counters kept per backend.
const CELLS: usize = 11;

/// Per-backend counters of one lcore, laid out `pool × backend`. The
/// layout grows when VIPs or backends are added live: the owning lcore
/// swaps in a larger table (one allocation per change, at a tick), carrying
/// its values over; readers load whichever table is current.
#[derive(Debug)]
pub struct BackendCounters {
    table: ArcSwap<CounterTable>,
}

#[derive(Debug, Default)]
struct CounterTable {
    sizes: Vec<usize>,
    offsets: Vec<usize>,
    /// [`BackendStats`] fields, in declaration order, per backend.
    cells: Vec<[AtomicU64; CELLS]>,
}

impl CounterTable {
    fn new(pool_sizes: &[usize]) -> Self {
        let mut offsets = Vec::with_capacity(pool_sizes.len());
        let mut n = 0;
        for s in pool_sizes {
            offsets.push(n);
            n += s;
        }
        CounterTable {
            sizes: pool_sizes.to_vec(),
            offsets,
            cells: (0..n).map(|_| Default::default()).collect(),
        }
    }
    fn cell(&self, pool: usize, backend: usize) -> Option<&[AtomicU64; CELLS]> {
        if backend >= *self.sizes.get(pool)? {
            return None;
        }
        self.cells.get(self.offsets.get(pool)? + backend)
    }
}

/// One backend's counters (summed over lcores by the reader).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct BackendStats {
    /// Connections now spliced to it.
    pub active: u64,
    /// Connections opened to it (backend SYN sent).
    pub opened: u64,
    /// Connections to it that failed (refused, timed out).
    pub failed: u64,
    /// Spliced connections ended by a RST (either side).
    pub reset: u64,
    /// Connections that reached the spliced state.
    pub spliced: u64,
    /// Segments client → backend.
    pub c2s_packets: u64,
    /// Payload bytes client → backend.
    pub c2s_bytes: u64,
    /// Segments backend → client.
    pub s2c_packets: u64,
    /// Payload bytes backend → client.
    pub s2c_bytes: u64,
    /// Session-aware VIPs: full TLS handshakes it made (a ServerHello that
    /// resumed nothing) — its new-session load.
    pub tls_new: u64,
    /// Session-aware VIPs: TLS handshakes it resumed.
    pub tls_resumed: u64,
}

impl BackendStats {
    fn to_array(self) -> [u64; CELLS] {
        [
            self.active,
            self.opened,
            self.failed,
            self.reset,
            self.c2s_packets,
            self.c2s_bytes,
            self.s2c_packets,
            self.s2c_bytes,
            self.spliced,
            self.tls_new,
            self.tls_resumed,
        ]
    }
    fn from_array(a: [u64; CELLS]) -> Self {
        BackendStats {
            active: a[0],
            opened: a[1],
            failed: a[2],
            reset: a[3],
            c2s_packets: a[4],
            c2s_bytes: a[5],
            s2c_packets: a[6],
            s2c_bytes: a[7],
            spliced: a[8],
            tls_new: a[9],
            tls_resumed: a[10],
        }
    }
    /// Add another lcore's (or backend's) counters.
    pub fn add(&mut self, o: &BackendStats) {
        let mut a = self.to_array();
        for (x, y) in a.iter_mut().zip(o.to_array()) {
            *x += y;
        }
        *self = BackendStats::from_array(a);
    }
}

impl BackendCounters {
    /// Counters for pools of the given sizes.
    pub fn new(pool_sizes: &[usize]) -> Self {
        BackendCounters {
            table: ArcSwap::from_pointee(CounterTable::new(pool_sizes)),
        }
    }
    /// Make room for pools of the given sizes (the owning lcore, after it
    /// took a publication with more VIPs or backends); values carry over.
    pub fn resize(&self, pool_sizes: &[usize]) {
        let old = self.table.load();
        if old.sizes == pool_sizes {
            return;
        }
        let new = CounterTable::new(pool_sizes);
        for (p, &n) in pool_sizes.iter().enumerate() {
            for b in 0..n {
                if let (Some(o), Some(c)) = (old.cell(p, b), new.cell(p, b)) {
                    for (x, y) in c.iter().zip(o.iter()) {
                        x.store(y.load(Ordering::Relaxed), Ordering::Relaxed);
                    }
                }
            }
        }
        self.table.store(Arc::new(new));
    }
    /// Store one backend's values (the owning lcore only).
    pub fn store(&self, pool: usize, backend: usize, s: BackendStats) {
        if let Some(c) = self.table.load().cell(pool, backend) {
            for (cell, v) in c.iter().zip(s.to_array()) {
                cell.store(v, Ordering::Relaxed);
            }
        }
    }
    /// Store every backend's values, `stats[pool][backend]` (the owning
    /// lcore only; one table load for all).
    pub fn store_all(&self, stats: &[Vec<BackendStats>]) {
        let t = self.table.load();
        for (pi, p) in stats.iter().enumerate() {
            for (bi, st) in p.iter().enumerate() {
                if let Some(c) = t.cell(pi, bi) {
                    for (cell, v) in c.iter().zip(st.to_array()) {
                        cell.store(v, Ordering::Relaxed);
                    }
                }
            }
        }
    }
    /// Read one backend's values (zero outside the layout).
    pub fn get(&self, pool: usize, backend: usize) -> BackendStats {
        self.table
            .load()
            .cell(pool, backend)
            .map(|c| {
                BackendStats::from_array(std::array::from_fn(|i| c[i].load(Ordering::Relaxed)))
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_grow_and_keep_their_values() {
        let c = BackendCounters::new(&[2, 1]);
        let st = BackendStats {
            opened: 5,
            active: 1,
            ..Default::default()
        };
        c.store(0, 1, st);
        c.store(
            1,
            0,
            BackendStats {
                opened: 7,
                ..Default::default()
            },
        );
        // Out of the layout: ignored, reads zero.
        c.store(1, 1, st);
        assert_eq!(c.get(1, 1), BackendStats::default());
        c.resize(&[3, 2, 1]);
        assert_eq!(c.get(0, 1), st);
        assert_eq!(c.get(1, 0).opened, 7);
        c.store_all(&[vec![], vec![BackendStats::default(), st], vec![st]]);
        assert_eq!(c.get(1, 1), st);
        assert_eq!(c.get(2, 0), st);
        assert_eq!(c.get(0, 1), st, "store_all leaves what it was not given");
    }
}
