//! The seam between the lcore engine and packet I/O.
//!
//! The engine (`qsplice-engine`) is generic over [`Queue`] and [`Clock`], so
//! its packet logic runs, and is tested, on plain `Vec<u8>` frames
//! ([`mem::MemQueue`]) as well as on DPDK mbufs (`qsplice-dpdk` implements
//! these traits for its `Mbuf` and `EthQueue`).
//!
//! **API boundary:** a [`Queue`] is one rx/tx queue pair of one port, owned by
//! exactly one lcore. Nothing here locks or allocates per packet.
#![forbid(unsafe_code)]

use arrayvec::ArrayVec;

pub mod mem;

/// Upper bound on a burst (rx or tx) anywhere in the engine.
pub const MAX_BURST: usize = 256;

/// A fixed-capacity burst of frames, allocated on the stack or inline in the
/// owner's state: never on the heap per packet.
pub type Burst<F> = ArrayVec<F, MAX_BURST>;

/// One received or to-be-sent frame (a DPDK mbuf, or a byte vector in tests).
///
/// Implementations are single-segment: `data()` is the whole frame.
pub trait Frame: Sized {
    /// The frame bytes, starting at the Ethernet header.
    fn data(&self) -> &[u8];
    /// The frame bytes, mutable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Frame length in bytes.
    fn len(&self) -> usize {
        self.data().len()
    }
    /// True when the frame holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Grow or shrink the frame to `len` bytes. Returns false (and changes
    /// nothing) when `len` exceeds the buffer's capacity. New bytes are not
    /// zeroed.
    fn set_len(&mut self, len: usize) -> bool;
    /// Remove `n` bytes from the front (the frame then starts `n` bytes
    /// later). False (nothing changed) if `n` exceeds the length or the
    /// frame type cannot.
    fn adj(&mut self, _n: usize) -> bool {
        false
    }
    /// Add `n` bytes in front of the frame from the buffer's headroom (their
    /// contents are not defined). False (nothing changed) if the headroom is
    /// too small or the frame type cannot.
    fn prepend(&mut self, _n: usize) -> bool {
        false
    }
    /// The NIC's RSS hash of this frame, when the device computed one.
    fn rss_hash(&self) -> Option<u32> {
        None
    }
    /// Hint the CPU to start loading the frame's first cache line (call a
    /// few frames ahead of touching the data). No-op by default.
    #[inline(always)]
    fn prefetch(&self) {}
}

/// One rx/tx queue pair of one port, used by exactly one lcore.
pub trait Queue {
    /// The frame type this queue receives and sends.
    type Frame: Frame;
    /// Receive up to `max` frames, appending them to `out` (never beyond its
    /// capacity). Returns how many were received.
    fn rx_burst(&mut self, out: &mut Burst<Self::Frame>, max: usize) -> usize;
    /// Send frames from the front of `pkts`. The sent frames are removed (the
    /// device owns them now); frames the device did not take stay in `pkts`,
    /// in order, for the caller to retry or drop. Returns how many were sent.
    fn tx_burst(&mut self, pkts: &mut Burst<Self::Frame>) -> usize;
    /// Allocate an empty frame (length 0) from this queue's pool.
    fn alloc(&mut self) -> Option<Self::Frame>;
    /// Allocate up to `n` frames (never beyond `out`'s capacity), appending
    /// them to `out`; returns how many. Implementations with a bulk
    /// allocator (DPDK mempools) take them in one call.
    fn alloc_bulk(&mut self, out: &mut Burst<Self::Frame>, n: usize) -> usize {
        let mut k = 0;
        while k < n && !out.is_full() {
            match self.alloc() {
                Some(f) => out.push(f),
                None => break,
            }
            k += 1;
        }
        k
    }
    /// The port's MAC address.
    fn mac(&self) -> [u8; 6];
}

/// A monotonic cycle counter (the TSC on DPDK lcores).
pub trait Clock {
    /// Current time in cycles.
    fn now(&self) -> u64;
    /// Cycles per second.
    fn hz(&self) -> u64;
    /// `us` microseconds expressed in cycles.
    fn us_to_cycles(&self, us: u64) -> u64 {
        (u128::from(self.hz()) * u128::from(us) / 1_000_000) as u64
    }
}
