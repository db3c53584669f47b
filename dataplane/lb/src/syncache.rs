//! The per-lcore SYN cache: half-open connections answered statefully.
//!
//! Linux answers a SYN from its SYN queue while there is room and falls
//! back to SYN cookies only under pressure; so does the balancer, for every
//! VIP kind. A stateful answer keeps what a cookie cannot carry without TCP
//! timestamps — the client's window scale and SACK-permitted, and its exact
//! MSS — so a client that sends no timestamps (Windows by default) still
//! gets window scaling and SACK. When the cache is full, or more SYNs
//! arrive than `syn_rate` per second, the SYN is answered with a cookie
//! (no state; a flood costs nothing) and counted.
//!
//! Entries are never evicted to make room: a client whose SYN-ACK said
//! "window scaling on" must find its entry when its ACK arrives, or it would
//! be taken for a cookie client without scaling. An entry lives
//! [`SYN_TTL_MS`] (clients retransmit their SYN meanwhile, answered from the
//! same entry); a stateful ISN is not a valid cookie, so an ACK after expiry
//! is refused like any forged ACK.
//!
//! Memory is fixed at construction: the map and the expiry queue are
//! allocated with their bound and never grow past it. The map hashes with
//! std's randomly keyed SipHash, so clients cannot aim collisions at it.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddrV4;

/// How long a half-open entry waits for the client's ACK.
pub const SYN_TTL_MS: u64 = 10_000;

/// What the SYN offered and what we answered.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SynEntry {
    /// The client's ISN.
    pub irs: u32,
    /// Our ISN (the SYN-ACK's sequence number).
    pub iss: u32,
    /// The client's MSS (already raised to `min_mss`).
    pub mss: u16,
    /// The client's window scale (we announced ours iff `Some`).
    pub ws: Option<u8>,
    /// SACK permitted both ways.
    pub sack: bool,
    /// The SYN's TSval when timestamps were offered (and answered).
    pub ts: Option<u32>,
    /// Our SYN-ACK's TSval.
    pub our_tsval: u32,
    /// When the SYN arrived (lcore clock).
    pub created: u64,
}

/// Why a SYN is answered with a cookie.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Answer statefully (the caller then calls [`SynCache::insert`]).
    Stateful,
    /// The cache holds `capacity` half-open entries.
    Full,
    /// More than `rate` SYNs per second.
    RateLimited,
}

type Key = (SocketAddrV4, SocketAddrV4);

/// One lcore's SYN cache.
#[derive(Debug)]
pub struct SynCache {
    map: HashMap<Key, SynEntry>,
    /// Insertion order for expiry: `(key, created)`; stale items (taken or
    /// replaced entries) are skipped.
    order: VecDeque<(Key, u64)>,
    cap: usize,
    ttl: u64,
    /// Token bucket: tokens in SYNs × `hz` (integer arithmetic).
    rate: u64,
    hz: u64,
    tokens: u64,
    last: u64,
}

impl SynCache {
    /// A cache for `capacity` half-open connections (0: cookies only),
    /// admitting at most `rate` SYNs per second (0: no limit) on a clock of
    /// `hz` ticks per second.
    pub fn new(capacity: usize, rate: u32, hz: u64) -> SynCache {
        let hz = hz.max(1);
        SynCache {
            map: HashMap::with_capacity(capacity),
            order: VecDeque::with_capacity(2 * capacity + 1),
            cap: capacity,
            ttl: SYN_TTL_MS.saturating_mul(hz) / 1000,
            rate: u64::from(rate),
            hz,
            // A full bucket: one second's worth, at most.
            tokens: u64::from(rate).saturating_mul(hz),
            last: 0,
        }
    }

    /// Half-open entries now.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No half-open entry.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The entry for `(client, vip)`, if any (not consumed).
    pub fn get(&self, client: SocketAddrV4, vip: SocketAddrV4) -> Option<&SynEntry> {
        self.map.get(&(client, vip))
    }

    /// May a new SYN be answered statefully at `now`? (A retransmitted SYN
    /// of an entry already held is answered from it: check [`Self::get`]
    /// first.) Takes a token of the rate limit when it says yes.
    pub fn admit(&mut self, now: u64) -> Admit {
        if self.map.len() >= self.cap {
            return Admit::Full;
        }
        if self.rate > 0 {
            let full = self.rate.saturating_mul(self.hz);
            let dt = now.saturating_sub(self.last);
            self.last = now;
            self.tokens = self
                .tokens
                .saturating_add(dt.saturating_mul(self.rate))
                .min(full);
            if self.tokens < self.hz {
                return Admit::RateLimited;
            }
            self.tokens -= self.hz;
        }
        Admit::Stateful
    }

    /// Holds `e` for `(client, vip)` (replacing an older entry of the same
    /// tuple). Returns false when the cache is full.
    pub fn insert(&mut self, client: SocketAddrV4, vip: SocketAddrV4, e: SynEntry) -> bool {
        let key = (client, vip);
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            return false;
        }
        if self.order.len() >= 2 * self.cap {
            self.compact();
        }
        self.map.insert(key, e);
        self.order.push_back((key, e.created));
        true
    }

    /// The ACK `(seq, ack)` from `client` completes the handshake of its
    /// entry: removes and returns it. `None` (entry kept) when there is no
    /// entry or the numbers do not match it.
    pub fn take(
        &mut self,
        client: SocketAddrV4,
        vip: SocketAddrV4,
        seq: u32,
        ack: u32,
    ) -> Option<SynEntry> {
        let key = (client, vip);
        let e = self.map.get(&key)?;
        if seq != e.irs.wrapping_add(1) || ack != e.iss.wrapping_add(1) {
            return None;
        }
        self.map.remove(&key)
    }

    /// Forgets the entry of `(client, vip)` (the client reset it).
    pub fn remove(&mut self, client: SocketAddrV4, vip: SocketAddrV4) -> bool {
        self.map.remove(&(client, vip)).is_some()
    }

    /// Drops entries older than the TTL (at most `budget` of them);
    /// returns how many expired.
    pub fn expire(&mut self, now: u64, budget: usize) -> usize {
        let mut n = 0;
        let mut seen = 0;
        while let Some(&(key, created)) = self.order.front() {
            if created.saturating_add(self.ttl) > now || seen >= budget {
                break;
            }
            seen += 1;
            self.order.pop_front();
            if self.map.get(&key).is_some_and(|e| e.created == created) {
                self.map.remove(&key);
                n += 1;
            }
        }
        n
    }

    /// Drops stale items of the expiry queue (taken or replaced entries).
    fn compact(&mut self) {
        let map = &self.map;
        self.order
            .retain(|(k, c)| map.get(k).is_some_and(|e| e.created == *c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn a(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), port)
    }
    const VIP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 443);

    fn e(irs: u32, created: u64) -> SynEntry {
        SynEntry {
            irs,
            iss: irs ^ 0x5555_0000,
            mss: 1460,
            ws: Some(7),
            sack: true,
            ts: None,
            our_tsval: 0,
            created,
        }
    }

    #[test]
    fn take_needs_the_exact_handshake_numbers() {
        let mut c = SynCache::new(4, 0, 1000);
        assert_eq!(c.admit(0), Admit::Stateful);
        assert!(c.insert(a(1), VIP, e(100, 0)));
        let iss = e(100, 0).iss;
        assert_eq!(
            c.take(a(1), VIP, 100, iss.wrapping_add(1)),
            None,
            "seq off by one"
        );
        assert_eq!(c.take(a(1), VIP, 101, iss), None, "ack off by one");
        assert_eq!(
            c.take(a(2), VIP, 101, iss.wrapping_add(1)),
            None,
            "other client"
        );
        assert_eq!(c.take(a(1), VIP, 101, iss.wrapping_add(1)), Some(e(100, 0)));
        assert!(c.is_empty());
    }

    #[test]
    fn full_cache_refuses_and_never_evicts() {
        let mut c = SynCache::new(2, 0, 1000);
        assert!(c.insert(a(1), VIP, e(1, 0)));
        assert!(c.insert(a(2), VIP, e(2, 0)));
        assert_eq!(c.admit(1), Admit::Full);
        assert!(!c.insert(a(3), VIP, e(3, 1)));
        // Same tuple (a new ISN): replaced in place.
        assert!(c.insert(a(2), VIP, e(20, 1)));
        assert_eq!(c.get(a(2), VIP).unwrap().irs, 20);
        assert!(c.get(a(1), VIP).is_some());
    }

    #[test]
    fn entries_expire_after_the_ttl_only() {
        let hz = 1000;
        let mut c = SynCache::new(8, 0, hz);
        c.insert(a(1), VIP, e(1, 0));
        c.insert(a(2), VIP, e(2, 5000));
        assert_eq!(c.expire(SYN_TTL_MS - 1, 100), 0);
        assert_eq!(c.expire(SYN_TTL_MS, 100), 1);
        assert!(c.get(a(1), VIP).is_none() && c.get(a(2), VIP).is_some());
        assert_eq!(c.expire(SYN_TTL_MS + 5000, 100), 1);
        assert!(c.is_empty());
    }

    #[test]
    fn rate_limit_admits_rate_per_second() {
        let hz = 1_000_000;
        let mut c = SynCache::new(100_000, 1000, hz);
        // A full bucket first (one second's worth), then 1000/s.
        let mut ok = 0;
        for i in 0..3000u64 {
            if c.admit(i) == Admit::Stateful {
                ok += 1;
            }
        }
        assert!((1000..=1004).contains(&ok), "the initial bucket: {ok}");
        let mut later = 0;
        // One more second of SYNs, one every 100 µs: 1000 tokens refilled.
        for k in 1..=10_000u64 {
            if c.admit(3000 + k * 100) == Admit::Stateful {
                later += 1;
            }
        }
        assert!((990..=1001).contains(&later), "{later}");
    }

    proptest! {
        /// Against a model: the cache holds at most `cap` entries, take
        /// returns exactly the inserted entry, the expiry queue stays bounded.
        #[test]
        fn bounded_and_consistent(ops in proptest::collection::vec((0u8..4, 0u16..12, 0u32..3), 1..400)) {
            let cap = 5;
            let mut c = SynCache::new(cap, 0, 1000);
            let mut model: HashMap<SocketAddrV4, SynEntry> = HashMap::new();
            let mut now = 0u64;
            for (op, port, x) in ops {
                now += u64::from(x) * 1500;
                match op {
                    0 | 1 => {
                        let en = e(u32::from(port) * 7 + x, now);
                        let ok = c.insert(a(port), VIP, en);
                        let room = model.contains_key(&a(port)) || model.len() < cap;
                        prop_assert_eq!(ok, room);
                        if ok { model.insert(a(port), en); }
                    }
                    2 => {
                        let got = model.get(&a(port)).copied();
                        if let Some(en) = got {
                            prop_assert_eq!(c.take(a(port), VIP, en.irs.wrapping_add(1), en.iss.wrapping_add(1)), Some(en));
                            model.remove(&a(port));
                        } else {
                            prop_assert_eq!(c.take(a(port), VIP, 1, 1), None);
                        }
                    }
                    _ => {
                        c.expire(now, usize::MAX);
                        model.retain(|_, en| en.created + SYN_TTL_MS > now);
                    }
                }
                prop_assert!(c.len() <= cap);
                prop_assert_eq!(c.len(), model.len());
                prop_assert!(c.order.len() <= 2 * cap + 1);
            }
        }
    }
}
