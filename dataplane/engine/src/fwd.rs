//! Forwarding loop for benchmarks: receive a burst on one port and send it
//! out of its peer port, optionally swapping the MAC addresses
//! (`dpdk-testpmd --forward-mode=io|macswap` equivalents).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use qsplice_netdev::{Burst, Frame, Queue};

use crate::counters::{Counters, DropReason, SharedCounters};

/// What to do with each frame before sending it on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FwdMode {
    /// Forward untouched.
    Io,
    /// Swap source and destination MAC.
    MacSwap,
}

/// Forwards between queue pairs: frames from `ports[i]` go out `ports[peer(i)]`
/// where ports are paired (0↔1, 2↔3, …; a lone last port forwards to itself).
pub struct Forwarder<Q: Queue> {
    ports: Vec<Q>,
    mode: FwdMode,
    burst: usize,
    c: Counters,
    shared: Arc<SharedCounters>,
}

impl<Q: Queue> std::fmt::Debug for Forwarder<Q> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("ports", &self.ports.len())
            .field("mode", &self.mode)
            .finish()
    }
}

/// Swap destination and source MAC: two fixed-size copies through a
/// 12-byte temporary (compiles to a few loads and stores).
#[inline(always)]
fn macswap(d: &mut [u8]) {
    if let Some(hdr) = d.get_mut(..12) {
        let mut t = [0u8; 12];
        t.copy_from_slice(hdr);
        hdr[..6].copy_from_slice(&t[6..]);
        hdr[6..].copy_from_slice(&t[..6]);
    }
}

impl<Q: Queue> Forwarder<Q> {
    /// A forwarder over `ports`.
    pub fn new(ports: Vec<Q>, mode: FwdMode, burst: usize, shared: Arc<SharedCounters>) -> Self {
        Forwarder {
            ports,
            mode,
            burst: burst.clamp(1, qsplice_netdev::MAX_BURST),
            c: Counters::default(),
            shared,
        }
    }

    fn peer(&self, i: usize) -> usize {
        let p = i ^ 1;
        if p < self.ports.len() {
            p
        } else {
            i
        }
    }

    /// One pass over all ports; returns frames forwarded.
    #[inline]
    pub fn poll(&mut self) -> usize {
        let mut total = 0;
        for i in 0..self.ports.len() {
            let mut b: Burst<Q::Frame> = Burst::new();
            let n = self.ports[i].rx_burst(&mut b, self.burst);
            if n == 0 {
                continue;
            }
            self.c.rx_packets += n as u64;
            if self.mode == FwdMode::MacSwap {
                // Start every header load first, then touch them (as
                // testpmd's macswap does): the misses overlap.
                for f in b.iter() {
                    f.prefetch();
                }
                for f in b.iter_mut() {
                    macswap(f.data_mut());
                }
            }
            let peer = self.peer(i);
            let sent = self.ports[peer].tx_burst(&mut b);
            self.c.tx_packets += sent as u64;
            self.c.drops[DropReason::TxFull as usize] += b.len() as u64;
            total += sent;
            // `b` drops here: unsent frames are freed.
        }
        self.c.polls += 1;
        total
    }

    /// Forward until `stop` is set; counters are published every 1024 polls.
    pub fn run(&mut self, stop: &AtomicBool) {
        let mut i = 0u32;
        while !stop.load(Ordering::Relaxed) {
            self.poll();
            i = i.wrapping_add(1);
            if i % 1024 == 0 {
                self.shared.publish(&self.c);
            }
        }
        self.shared.publish(&self.c);
    }

    /// Counters so far.
    pub fn counters(&self) -> &Counters {
        &self.c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qsplice_netdev::mem::{MemQueue, VecFrame};

    #[test]
    fn macswap_forwards_to_peer_and_counts_tx_full() {
        let mut a = MemQueue::new([2, 0, 0, 0, 0, 1]);
        let b = MemQueue::new([2, 0, 0, 0, 0, 2]);
        let mut frame = vec![0u8; 64];
        frame[..6].copy_from_slice(&[1; 6]);
        frame[6..12].copy_from_slice(&[2; 6]);
        for _ in 0..5 {
            a.rx.push_back(VecFrame::from_bytes(&frame));
        }
        let mut fw = Forwarder::new(vec![a, b], FwdMode::MacSwap, 32, Arc::default());
        fw.ports[1].tx_limit = 3;
        assert_eq!(fw.poll(), 3);
        let out = &fw.ports[1].tx;
        assert_eq!(out.len(), 3);
        assert_eq!(&out[0].data()[..6], &[2; 6]);
        assert_eq!(&out[0].data()[6..12], &[1; 6]);
        assert_eq!(fw.counters().drops_of(DropReason::TxFull), 2);
        assert_eq!(fw.counters().rx_packets, 5);
    }
}
