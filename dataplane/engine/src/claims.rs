//! Addresses a port serves besides its configured ones, claimed at run
//! time: a cluster node that takes over a dead peer's backend-side address
//! (as keepalived/VRRP does) answers ARP for it, announces it with
//! gratuitous ARP and receives the frames sent to it.
//!
//! The control side writes the set ([`AddrClaims::set`]); each worker reads
//! it at its millisecond tick when the version moved ([`AddrClaims::read`]),
//! so the per-packet path only sees a worker-local copy. Lock-free, a
//! sequence lock: the version is odd while the single writer (the sync
//! thread) changes the addresses; a reader that sees it odd, or moved
//! under it, tries again at its next tick.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use arrayvec::ArrayVec;

/// Addresses claimed on one port at most.
pub const MAX_CLAIMS: usize = 8;

/// One port's claimed addresses (shared by the control side and workers).
#[derive(Debug, Default)]
pub struct AddrClaims {
    version: AtomicU64,
    /// `u32::from(addr)`, 0 for an empty slot.
    addrs: [AtomicU32; MAX_CLAIMS],
}

impl AddrClaims {
    /// An empty set.
    pub fn new() -> AddrClaims {
        AddrClaims::default()
    }

    /// Replace the set (at most [`MAX_CLAIMS`]; the rest are ignored, and
    /// unspecified addresses are skipped). Returns whether it changed.
    pub fn set(&self, addrs: &[Ipv4Addr]) -> bool {
        let mut want = [0u32; MAX_CLAIMS];
        for (w, a) in want
            .iter_mut()
            .zip(addrs.iter().filter(|a| !a.is_unspecified()))
        {
            *w = u32::from(*a);
        }
        let same = self
            .addrs
            .iter()
            .zip(want.iter())
            .all(|(s, w)| s.load(Ordering::Relaxed) == *w);
        if same {
            return false;
        }
        // Odd while the slots change (a reader seeing it waits).
        self.version.fetch_add(1, Ordering::AcqRel);
        for (s, w) in self.addrs.iter().zip(want.iter()) {
            s.store(*w, Ordering::Release);
        }
        self.version.fetch_add(1, Ordering::Release);
        true
    }

    /// The version (moves at every change).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// A consistent copy and its version (`None`: a change was under way;
    /// read again later).
    pub fn read(&self) -> Option<(u64, ArrayVec<Ipv4Addr, MAX_CLAIMS>)> {
        let v = self.version.load(Ordering::Acquire);
        if v % 2 == 1 {
            return None;
        }
        let mut out = ArrayVec::new();
        for s in &self.addrs {
            let a = s.load(Ordering::Acquire);
            if a != 0 {
                out.push(Ipv4Addr::from(a));
            }
        }
        (self.version.load(Ordering::Acquire) == v).then_some((v, out))
    }

    /// The addresses now (for reports).
    pub fn list(&self) -> Vec<Ipv4Addr> {
        self.addrs
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|&a| a != 0)
            .map(Ipv4Addr::from)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_read_and_versions() {
        let c = AddrClaims::new();
        let (v0, l) = c.read().unwrap();
        assert!(l.is_empty());
        let a: Ipv4Addr = "10.10.2.1".parse().unwrap();
        assert!(c.set(&[a, Ipv4Addr::UNSPECIFIED]));
        assert!(!c.set(&[a]), "no change, no new version");
        let (v1, l) = c.read().unwrap();
        assert!(v1 > v0);
        assert_eq!(l.as_slice(), &[a]);
        let many: Vec<Ipv4Addr> = (1..20u32).map(Ipv4Addr::from).collect();
        assert!(c.set(&many));
        assert_eq!(c.list().len(), MAX_CLAIMS);
        assert!(c.set(&[]));
        assert!(c.list().is_empty());
    }
}
