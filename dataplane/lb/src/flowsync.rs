//! What the lcores share with the cluster's flow sync (`[cluster]
//! flow_sync`): the records of flows they splice go out, lookups of flows
//! they do not know go out, and found records come back.
//!
//! ```text
//! lcore ── out[lcore]: SpliceParams of a flow just spliced ──▶ flow-sync thread ─▶ Redis
//!       ── lookups[lcore]: a client-side pair with no flow ──▶        (HSET / HGET / HSCAN)
//!       ◀─ answers[lcore]: found / not found / unavailable, and
//!          installs of a dead peer's flows this node now serves ──
//! ```
//!
//! Every queue is a bounded lock-free ring sized once: an lcore never
//! waits and never allocates for it; a full ring is counted. The lcore
//! republishes its spliced flows when [`FlowSyncShared::generation`] moves
//! (the sync's record epoch rolled over, or Redis came back after an
//! outage), a bounded number per tick.

use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;
use qsplice_engine::AddrClaims;
use qsplice_splice::SpliceParams;

/// A client-side pair (client, VIP) the lcore has no flow for.
pub type Pair = (SocketAddrV4, SocketAddrV4);

/// What comes back to an lcore.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Adopt {
    /// The record of a looked-up pair.
    Found(SpliceParams),
    /// No node published the pair.
    NotFound(Pair),
    /// Redis could not be asked (away or slow): nothing is known.
    Unavailable(Pair),
    /// A flow of a dead peer whose backend-side address this node now
    /// serves: install it so the backend's segments find it.
    Install(SpliceParams),
}

/// The rings between the lcores and the flow-sync thread.
#[derive(Debug)]
pub struct FlowSyncShared {
    /// Per lcore: records of flows just spliced (or republished).
    pub out: Vec<ArrayQueue<SpliceParams>>,
    /// Per lcore: pairs to look up.
    pub lookups: Vec<ArrayQueue<Pair>>,
    /// Per lcore: answers and installs.
    pub answers: Vec<ArrayQueue<Adopt>>,
    /// Moves when every spliced flow should be published again.
    pub generation: AtomicU64,
    /// Backend-side addresses this node serves besides its own (claimed
    /// from dead peers; the engine answers ARP for them).
    pub claims: Arc<AddrClaims>,
    /// Lookups one lcore may ask per millisecond.
    pub lookups_per_ms: u32,
    /// The sync's first round is done: this node's own earlier flows (a
    /// restart under the same name) are installed. Until then a backend
    /// segment for no flow is dropped, not reset (it may be such a flow).
    pub ready: AtomicBool,
    /// Other nodes alive at the last round: with none, a shutdown resets
    /// its open flows as without a cluster (nobody can adopt them).
    pub peers_alive: AtomicU32,
}

impl FlowSyncShared {
    /// Rings for `lcores` lcores, `cap` records each way per lcore.
    pub fn new(lcores: usize, cap: usize, claims: Arc<AddrClaims>) -> FlowSyncShared {
        let cap = cap.max(16);
        FlowSyncShared {
            out: (0..lcores).map(|_| ArrayQueue::new(cap)).collect(),
            lookups: (0..lcores)
                .map(|_| ArrayQueue::new(cap.min(4096)))
                .collect(),
            answers: (0..lcores).map(|_| ArrayQueue::new(cap)).collect(),
            generation: AtomicU64::new(0),
            claims,
            lookups_per_ms: 64,
            ready: AtomicBool::new(false),
            peers_alive: AtomicU32::new(0),
        }
    }

    /// Bound the lookups per lcore to `pps` per second (at least one per
    /// millisecond).
    pub fn with_lookup_rate(mut self, pps: u32) -> FlowSyncShared {
        self.lookups_per_ms = (pps / 1000).max(1);
        self
    }

    /// See [`FlowSyncShared::ready`].
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// See [`FlowSyncShared::peers_alive`].
    pub fn has_peers(&self) -> bool {
        self.peers_alive.load(Ordering::Relaxed) > 0
    }

    /// Ask every lcore to publish its spliced flows again.
    pub fn republish(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The lcore that receives the backend's segments for source port
    /// `port` (the balancer's steering: `(port − sport_min) mod lcores`,
    /// also for ports outside this node's range, as a dead peer's are).
    pub fn owner(port: u16, sport_min: u16, lcores: u16) -> usize {
        usize::from(port.wrapping_sub(sport_min) % lcores.max(1))
    }
}
