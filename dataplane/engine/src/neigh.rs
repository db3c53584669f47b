//! Per-lcore neighbour table — IPv4 (ARP) by default, IPv6 (NDP) as
//! `NeighborTable<Ipv6Addr>`: fixed capacity, allocation-free after
//! creation, timers driven by the caller's clock.
//!
//! Open addressing with a bounded probe window: a key lives within
//! [`WINDOW`] slots of its hash; when the window is full, the least recently
//! updated unpinned entry is evicted. Lookups therefore touch at most
//! `WINDOW` slots, and a flood of ARP senders cannot grow memory.

use qsplice_wire::{Ipv4Addr, Ipv6Addr, MacAddr};

/// An address family the table can hold.
pub trait NeighAddr: Copy + Eq + core::fmt::Debug {
    /// The key's hash (with its port).
    fn slot_hash(&self, port: u8) -> usize;
}

impl NeighAddr for Ipv4Addr {
    #[inline]
    fn slot_hash(&self, port: u8) -> usize {
        let x = (u32::from(*self) ^ (u32::from(port) << 24)).wrapping_mul(0x9e37_79b1);
        (x ^ (x >> 15)) as usize
    }
}

impl NeighAddr for Ipv6Addr {
    #[inline]
    fn slot_hash(&self, port: u8) -> usize {
        let v = u128::from(*self);
        let x = ((v as u64) ^ ((v >> 64) as u64).rotate_left(17) ^ (u64::from(port) << 56))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (x ^ (x >> 29)) as usize
    }
}

/// Slots searched from a key's home slot.
pub const WINDOW: usize = 8;

/// State of one neighbour entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum NeighState {
    /// Resolution in progress: `probes` requests sent, next one due at `next`.
    Incomplete {
        /// Requests sent so far.
        probes: u8,
        /// When the next request is due (cycles).
        next: u64,
    },
    /// Confirmed until `expires`.
    Reachable {
        /// The neighbour's MAC.
        mac: MacAddr,
        /// End of the confirmation (cycles).
        expires: u64,
    },
    /// Confirmation expired: still used, re-probed (unicast) `probes` times.
    Stale {
        /// Last known MAC.
        mac: MacAddr,
        /// Refresh requests sent so far.
        probes: u8,
        /// When the next refresh request is due.
        next: u64,
    },
    /// Resolution gave up; retried on demand after `retry`.
    Failed {
        /// When a new resolution may start.
        retry: u64,
    },
}

#[derive(Copy, Clone, Debug)]
struct Entry<A> {
    ip: A,
    port: u8,
    pinned: bool,
    updated: u64,
    state: NeighState,
}

/// What a probe the table asks the caller to send looks like.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Probe<A = Ipv4Addr> {
    /// Port to send on.
    pub port: u8,
    /// Address to resolve.
    pub ip: A,
    /// Unicast the request to this MAC (refresh of a known entry), or
    /// broadcast when `None`.
    pub unicast: Option<MacAddr>,
}

/// Result of [`NeighborTable::learn`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Learned {
    /// A new or previously unresolved entry is now reachable.
    New,
    /// A known neighbour moved to another MAC.
    Changed,
    /// Same MAC, confirmation extended.
    Refreshed,
    /// Not recorded (not allowed to create, or the window is full of pinned entries).
    Ignored,
}

/// Timer settings in clock cycles.
#[derive(Copy, Clone, Debug)]
pub struct NeighTimers {
    /// Lifetime of a confirmation.
    pub reachable: u64,
    /// Interval between unanswered requests.
    pub probe_interval: u64,
    /// Requests before giving up.
    pub max_probes: u8,
}

/// The table. See the module docs.
#[derive(Debug)]
pub struct NeighborTable<A = Ipv4Addr> {
    slots: Vec<Option<Entry<A>>>,
    mask: usize,
    timers: NeighTimers,
}

fn hash<A: NeighAddr>(ip: A, port: u8) -> usize {
    ip.slot_hash(port)
}

impl<A: NeighAddr> NeighborTable<A> {
    /// A table with `capacity` slots (rounded up to a power of two, at least `WINDOW`).
    pub fn new(capacity: usize, timers: NeighTimers) -> Self {
        let cap = capacity.max(WINDOW).next_power_of_two();
        NeighborTable {
            slots: vec![None; cap],
            mask: cap - 1,
            timers,
        }
    }

    fn find(&self, port: u8, ip: A) -> Option<usize> {
        let h = hash(ip, port);
        (0..WINDOW)
            .map(|i| (h + i) & self.mask)
            .find(|&s| matches!(self.slots[s], Some(e) if e.ip == ip && e.port == port))
    }

    /// Find a slot for a new key: an empty one in the window, else the least
    /// recently updated unpinned one.
    fn place(&self, port: u8, ip: A) -> Option<usize> {
        let h = hash(ip, port);
        let window = (0..WINDOW).map(|i| (h + i) & self.mask);
        if let Some(s) = window.clone().find(|&s| self.slots[s].is_none()) {
            return Some(s);
        }
        window
            .filter(|&s| self.slots[s].is_some_and(|e| !e.pinned))
            .min_by_key(|&s| self.slots[s].map_or(0, |e| e.updated))
    }

    /// The MAC for `ip` on `port`, if known (reachable or stale).
    #[inline]
    pub fn lookup(&self, port: u8, ip: A) -> Option<MacAddr> {
        match self.slots[self.find(port, ip)?]?.state {
            NeighState::Reachable { mac, .. } | NeighState::Stale { mac, .. } => Some(mac),
            _ => None,
        }
    }

    /// The state of an entry (for diagnostics and tests).
    pub fn state(&self, port: u8, ip: A) -> Option<NeighState> {
        Some(self.slots[self.find(port, ip)?]?.state)
    }

    /// Record that `ip` on `port` is at `mac`. Creates the entry only when
    /// `create` is set (the ARP was addressed to us, RFC 826's merge rule
    /// otherwise only updates existing entries).
    pub fn learn(&mut self, port: u8, ip: A, mac: MacAddr, now: u64, create: bool) -> Learned {
        let reachable = NeighState::Reachable {
            mac,
            expires: now.saturating_add(self.timers.reachable),
        };
        if let Some(s) = self.find(port, ip) {
            let Some(e) = self.slots[s].as_mut() else {
                return Learned::Ignored;
            };
            let old = e.state;
            e.state = reachable;
            e.updated = now;
            return match old {
                NeighState::Reachable { mac: m, .. } | NeighState::Stale { mac: m, .. }
                    if m == mac =>
                {
                    Learned::Refreshed
                }
                NeighState::Reachable { .. } | NeighState::Stale { .. } => Learned::Changed,
                _ => Learned::New,
            };
        }
        if !create {
            return Learned::Ignored;
        }
        match self.place(port, ip) {
            Some(s) => {
                self.slots[s] = Some(Entry {
                    ip,
                    port,
                    pinned: false,
                    updated: now,
                    state: reachable,
                });
                Learned::New
            }
            None => Learned::Ignored,
        }
    }

    /// Ask for `ip` on `port` to be resolved (and, if `pinned`, kept fresh
    /// and never evicted). Returns false if the table has no room.
    pub fn want(&mut self, port: u8, ip: A, now: u64, pinned: bool) -> bool {
        if let Some(s) = self.find(port, ip) {
            if let Some(e) = self.slots[s].as_mut() {
                e.pinned |= pinned;
                if let NeighState::Failed { retry } = e.state {
                    if now >= retry {
                        e.state = NeighState::Incomplete {
                            probes: 0,
                            next: now,
                        };
                    }
                }
            }
            return true;
        }
        match self.place(port, ip) {
            Some(s) => {
                self.slots[s] = Some(Entry {
                    ip,
                    port,
                    pinned,
                    updated: now,
                    state: NeighState::Incomplete {
                        probes: 0,
                        next: now,
                    },
                });
                true
            }
            None => false,
        }
    }

    /// Advance timers: call `send` for every request due now, return how many
    /// resolutions failed in this call. Stale unpinned entries that stop
    /// answering are removed; pinned ones go to `Failed` and are retried.
    pub fn poll(&mut self, now: u64, mut send: impl FnMut(Probe<A>)) -> u64 {
        let t = self.timers;
        let mut failed = 0;
        for slot in self.slots.iter_mut() {
            let Some(e) = slot.as_mut() else { continue };
            match e.state {
                NeighState::Incomplete { probes, next } if now >= next => {
                    if probes >= t.max_probes {
                        e.state = NeighState::Failed {
                            retry: now.saturating_add(
                                t.probe_interval.saturating_mul(u64::from(t.max_probes)),
                            ),
                        };
                        failed += 1;
                    } else {
                        send(Probe {
                            port: e.port,
                            ip: e.ip,
                            unicast: None,
                        });
                        e.state = NeighState::Incomplete {
                            probes: probes + 1,
                            next: now.saturating_add(t.probe_interval),
                        };
                    }
                }
                NeighState::Reachable { mac, expires } if now >= expires => {
                    e.state = NeighState::Stale {
                        mac,
                        probes: 0,
                        next: now,
                    };
                    if e.pinned {
                        send(Probe {
                            port: e.port,
                            ip: e.ip,
                            unicast: Some(mac),
                        });
                        e.state = NeighState::Stale {
                            mac,
                            probes: 1,
                            next: now.saturating_add(t.probe_interval),
                        };
                    }
                }
                NeighState::Stale { mac, probes, next } if now >= next && e.pinned => {
                    if probes >= t.max_probes {
                        // Unicast refresh unanswered: fall back to broadcast resolution.
                        e.state = NeighState::Incomplete {
                            probes: 0,
                            next: now,
                        };
                    } else {
                        send(Probe {
                            port: e.port,
                            ip: e.ip,
                            unicast: Some(mac),
                        });
                        e.state = NeighState::Stale {
                            mac,
                            probes: probes + 1,
                            next: now.saturating_add(t.probe_interval),
                        };
                    }
                }
                NeighState::Failed { retry } if e.pinned && now >= retry => {
                    e.state = NeighState::Incomplete {
                        probes: 0,
                        next: now,
                    };
                }
                _ => {}
            }
        }
        failed
    }

    /// Every entry as `(port, ip, state)` (control-plane dumps).
    pub fn entries(&self) -> impl Iterator<Item = (u8, A, NeighState)> + '_ {
        self.slots.iter().flatten().map(|e| (e.port, e.ip, e.state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T: NeighTimers = NeighTimers {
        reachable: 1000,
        probe_interval: 100,
        max_probes: 3,
    };
    const IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 5]);

    fn probes(t: &mut NeighborTable, now: u64) -> Vec<Probe> {
        let mut v = Vec::new();
        t.poll(now, |p| v.push(p));
        v
    }

    #[test]
    fn resolve_then_expire_then_refresh_pinned() {
        let mut t = NeighborTable::new(16, T);
        assert!(t.want(0, IP, 0, true));
        assert_eq!(t.lookup(0, IP), None);
        assert_eq!(
            probes(&mut t, 0),
            vec![Probe {
                port: 0,
                ip: IP,
                unicast: None
            }]
        );
        assert!(
            probes(&mut t, 50).is_empty(),
            "next probe only after the interval"
        );
        assert_eq!(t.learn(0, IP, MAC, 60, false), Learned::New);
        assert_eq!(t.lookup(0, IP), Some(MAC));
        assert_eq!(t.learn(0, IP, MAC, 70, false), Learned::Refreshed);
        // Expiry: pinned entries are refreshed by unicast and stay usable.
        let p = probes(&mut t, 70 + 1000);
        assert_eq!(
            p,
            vec![Probe {
                port: 0,
                ip: IP,
                unicast: Some(MAC)
            }]
        );
        assert_eq!(t.lookup(0, IP), Some(MAC), "stale entries are still used");
        let other = MacAddr([2, 0, 0, 0, 0, 6]);
        assert_eq!(t.learn(0, IP, other, 1100, false), Learned::Changed);
        assert_eq!(t.lookup(0, IP), Some(other));
    }

    #[test]
    fn gives_up_after_max_probes_and_retries_pinned() {
        let mut t = NeighborTable::new(16, T);
        t.want(1, IP, 0, true);
        let mut sent = 0;
        let mut failed = 0;
        for now in (0..=1000).step_by(10) {
            t.poll(now, |_| sent += 1);
        }
        for now in (1001..2000).step_by(10) {
            failed += t.poll(now, |_| {});
        }
        assert!(sent >= 3);
        assert!(failed >= 1);
        assert_eq!(t.lookup(1, IP), None);
    }

    #[test]
    fn learn_does_not_create_unless_allowed() {
        let mut t = NeighborTable::new(16, T);
        assert_eq!(t.learn(0, IP, MAC, 0, false), Learned::Ignored);
        assert_eq!(t.lookup(0, IP), None);
        assert_eq!(t.learn(0, IP, MAC, 0, true), Learned::New);
        assert_eq!(t.lookup(1, IP), None, "entries are per port");
    }

    #[test]
    fn pinned_entries_survive_a_flood() {
        let mut t = NeighborTable::new(8, T);
        t.want(0, IP, 0, true);
        t.learn(0, IP, MAC, 0, false);
        for i in 0..10_000u32 {
            t.learn(0, Ipv4Addr::from(0x0a01_0000 + i), MAC, u64::from(i), true);
        }
        assert_eq!(t.lookup(0, IP), Some(MAC));
        assert!(t.entries().count() <= 8);
    }

    proptest! {
        #[test]
        fn learned_entries_are_found(ips in proptest::collection::vec(any::<u32>(), 1..64)) {
            let mut t = NeighborTable::new(1024, T);
            for (i, ip) in ips.iter().enumerate() {
                let mac = MacAddr([2, 0, 0, 0, (i >> 8) as u8, i as u8]);
                if t.learn(0, Ipv4Addr::from(*ip), mac, 0, true) != Learned::Ignored {
                    // the most recent value for a key wins
                    prop_assert_eq!(t.lookup(0, Ipv4Addr::from(*ip)), Some(mac));
                }
            }
        }
    }
}
