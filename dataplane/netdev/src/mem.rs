//! In-memory implementations of [`Queue`] and [`Clock`] for tests and for
//! driving the engine deterministically: frames are `Vec<u8>`, the "wire" is
//! a pair of `VecDeque`s the test fills and drains, and time is set by hand.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;

use crate::{Burst, Clock, Frame, Queue};

/// A frame backed by a `Vec<u8>` with a fixed capacity (like an mbuf's data
/// room). One pointer wide, like an mbuf pointer: a frame moves through
/// the engine's bursts and calls in a register, not as a multi-word copy
/// (a 40-byte frame moved through the stack cost store-forwarding stalls
/// that the DPDK path does not have: `--bench lb_path`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VecFrame(Box<Room>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Room {
    buf: Vec<u8>,
    cap: usize,
    /// Bytes [`Frame::prepend`] may still add in front (an mbuf's headroom).
    headroom: usize,
}

impl VecFrame {
    /// Data room of frames made by [`MemQueue::alloc`], like a default mbuf.
    pub const DEFAULT_CAP: usize = 2048;
    /// Headroom of a new frame, like DPDK's `RTE_PKTMBUF_HEADROOM`.
    pub const HEADROOM: usize = 128;

    /// A frame holding a copy of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        VecFrame(Box::new(Room {
            buf: bytes.to_vec(),
            cap: Self::DEFAULT_CAP.max(bytes.len()),
            headroom: Self::HEADROOM,
        }))
    }
    /// An empty frame of the default size (what [`MemQueue::alloc`] hands out).
    fn empty() -> Self {
        VecFrame(Box::new(Room {
            buf: Vec::new(),
            cap: Self::DEFAULT_CAP,
            headroom: Self::HEADROOM,
        }))
    }
    /// The frame's bytes, consuming it.
    pub fn into_vec(self) -> Vec<u8> {
        self.0.buf
    }
}

impl Frame for VecFrame {
    fn data(&self) -> &[u8] {
        &self.0.buf
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.0.buf
    }
    fn set_len(&mut self, len: usize) -> bool {
        if len > self.0.cap {
            return false;
        }
        self.0.buf.resize(len, 0);
        true
    }
    fn adj(&mut self, n: usize) -> bool {
        let r = &mut *self.0;
        if n > r.buf.len() {
            return false;
        }
        r.buf.drain(..n);
        r.headroom += n;
        r.cap -= n;
        true
    }
    fn prepend(&mut self, n: usize) -> bool {
        let r = &mut *self.0;
        if n > r.headroom {
            return false;
        }
        r.buf.splice(0..0, std::iter::repeat_n(0xa5, n));
        r.headroom -= n;
        r.cap += n;
        true
    }
}

/// A queue whose wire is two in-memory FIFOs: `rx` (what the test injects)
/// and `tx` (what the engine sent). `tx_limit` simulates a full device ring.
#[derive(Debug)]
pub struct MemQueue {
    /// Frames waiting to be received by the engine.
    pub rx: VecDeque<VecFrame>,
    /// Frames the engine has sent.
    pub tx: Vec<VecFrame>,
    /// Accept at most this many frames per `tx_burst` call (`usize::MAX`: no limit).
    pub tx_limit: usize,
    /// Frames `alloc` may still hand out (simulates pool exhaustion).
    pub pool: usize,
    /// The port's MAC address.
    pub mac: [u8; 6],
}

impl MemQueue {
    /// A queue with the given MAC, an unlimited device and a large pool.
    pub fn new(mac: [u8; 6]) -> Self {
        MemQueue {
            rx: VecDeque::new(),
            tx: Vec::new(),
            tx_limit: usize::MAX,
            pool: 1 << 20,
            mac,
        }
    }
}

impl Queue for MemQueue {
    type Frame = VecFrame;
    fn rx_burst(&mut self, out: &mut Burst<VecFrame>, max: usize) -> usize {
        let mut n = 0;
        while n < max && !out.is_full() {
            match self.rx.pop_front() {
                Some(f) => {
                    out.push(f);
                    n += 1;
                }
                None => break,
            }
        }
        n
    }
    fn tx_burst(&mut self, pkts: &mut Burst<VecFrame>) -> usize {
        let n = pkts.len().min(self.tx_limit);
        self.tx.extend(pkts.drain(..n));
        self.pool += n; // sent frames go back to the pool
        n
    }
    fn alloc(&mut self) -> Option<VecFrame> {
        if self.pool == 0 {
            return None;
        }
        self.pool -= 1;
        Some(VecFrame::empty())
    }
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
}

/// A clock the test advances by hand; 1 cycle = 1 ns (hz = 1e9).
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Rc<Cell<u64>>);

impl ManualClock {
    /// Advance time by `ns` nanoseconds.
    pub fn advance_ns(&self, ns: u64) {
        self.0.set(self.0.get() + ns);
    }
    /// Advance time by `ms` milliseconds.
    pub fn advance_ms(&self, ms: u64) {
        self.advance_ns(ms * 1_000_000);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.get()
    }
    fn hz(&self) -> u64 {
        1_000_000_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_limit_leaves_unsent_frames_in_order() {
        let mut q = MemQueue::new([2, 0, 0, 0, 0, 1]);
        q.tx_limit = 2;
        let mut b: Burst<VecFrame> = Burst::new();
        for i in 0..5u8 {
            b.push(VecFrame::from_bytes(&[i]));
        }
        assert_eq!(q.tx_burst(&mut b), 2);
        assert_eq!(
            b.iter().map(|f| f.data()[0]).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        assert_eq!(q.tx.len(), 2);
    }

    #[test]
    fn set_len_respects_capacity() {
        let mut f = VecFrame::from_bytes(&[1, 2, 3]);
        assert!(f.set_len(VecFrame::DEFAULT_CAP));
        assert!(!f.set_len(VecFrame::DEFAULT_CAP + 1));
        assert_eq!(f.len(), VecFrame::DEFAULT_CAP);
    }
}
