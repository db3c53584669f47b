//! Stateful server-side session cache shared by all lcores.
//!
//! rustls asks its `StoresServerSessions` on every full handshake (`put`)
//! and every session-ID or stateful-PSK resumption attempt (`get` /
//! `take`), never per record. The cache is split in shards, each behind
//! its own mutex, so lcores rarely meet on the same lock; entries expire
//! after a TTL (checked on lookup) and each shard is bounded, evicting its
//! oldest entry first.

use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::server::StoresServerSessions;

const SHARDS: usize = 16;

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<Vec<u8>, (Vec<u8>, Instant, u64)>,
    /// Insertion order: (sequence, key); entries whose sequence no longer
    /// matches the map are stale and skipped.
    order: VecDeque<(u64, Vec<u8>)>,
    seq: u64,
}

/// Counters of a [`SessionCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    /// Sessions stored.
    pub stored: u64,
    /// Lookups that found a live session.
    pub hits: u64,
    /// Lookups that found nothing (or an expired session).
    pub misses: u64,
    /// Sessions evicted to stay within the bound.
    pub evicted: u64,
    /// Sessions dropped on lookup because their TTL had passed.
    pub expired: u64,
    /// Sessions held now.
    pub entries: u64,
}

/// A stored session: key (session ID) and rustls' state.
pub type Session = (Vec<u8>, Vec<u8>);

/// See the module docs.
#[derive(Debug)]
pub struct SessionCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    ttl: Duration,
    stored: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    evicted: AtomicU64,
    expired: AtomicU64,
    /// Sessions stored here that a cluster sync has not taken yet
    /// (`None`: not shared). Bounded; the oldest is dropped when full.
    outbox: Mutex<Option<VecDeque<Session>>>,
    outbox_cap: AtomicU64,
    /// Sessions dropped from a full outbox (never reached the cluster).
    pub share_dropped: AtomicU64,
    /// Sessions imported from other nodes.
    pub imported: AtomicU64,
}

impl SessionCache {
    /// Share this cache with a cluster: from now on every session stored
    /// here (a full handshake on this node) is also queued, at most `cap`
    /// at a time, for [`SessionCache::drain_outbox`].
    pub fn share(&self, cap: usize) {
        let mut o = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        if o.is_none() {
            *o = Some(VecDeque::new());
        }
        self.outbox_cap.store(cap.max(1) as u64, Ordering::Relaxed);
    }

    /// Take up to `max` queued sessions (the cluster sync thread).
    pub fn drain_outbox(&self, max: usize) -> Vec<Session> {
        let mut o = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        match o.as_mut() {
            Some(q) => {
                let n = q.len().min(max);
                q.drain(..n).collect()
            }
            None => Vec::new(),
        }
    }

    /// A session another node stored, `age` old (not queued again).
    pub fn import(&self, key: Vec<u8>, value: Vec<u8>, age: Duration) {
        if age >= self.ttl {
            return;
        }
        let at = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
        self.insert(key, value, at);
        self.imported.fetch_add(1, Ordering::Relaxed);
    }

    /// A cache of at most `capacity` sessions (rounded up to a multiple of
    /// the shard count), each valid for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Arc<SessionCache> {
        Arc::new(SessionCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            ttl,
            stored: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            outbox: Mutex::new(None),
            outbox_cap: AtomicU64::new(0),
            share_dropped: AtomicU64::new(0),
            imported: AtomicU64::new(0),
        })
    }

    /// Maximum number of sessions held.
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    fn shard(&self, key: &[u8]) -> std::sync::MutexGuard<'_, Shard> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let i = (h.finish() as usize) % SHARDS;
        // A panic while holding a shard lock cannot leave it inconsistent
        // in a way that matters here (worst case: a stale order entry).
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counters, and the number of entries now.
    pub fn counts(&self) -> CacheCounts {
        let entries = self
            .shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).map.len() as u64)
            .sum();
        CacheCounts {
            stored: self.stored.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
            entries,
        }
    }

    /// Stores `value` under `key` at `now` (and queues it for the cluster
    /// when shared).
    pub fn put_at(&self, key: Vec<u8>, value: Vec<u8>, now: Instant) {
        {
            let mut o = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(q) = o.as_mut() {
                if q.len() as u64 >= self.outbox_cap.load(Ordering::Relaxed) {
                    q.pop_front();
                    self.share_dropped.fetch_add(1, Ordering::Relaxed);
                }
                q.push_back((key.clone(), value.clone()));
            }
        }
        self.insert(key, value, now);
    }

    fn insert(&self, key: Vec<u8>, value: Vec<u8>, now: Instant) {
        let mut s = self.shard(&key);
        s.seq += 1;
        let seq = s.seq;
        s.order.push_back((seq, key.clone()));
        s.map.insert(key, (value, now, seq));
        while s.map.len() > self.per_shard {
            let Some((q, k)) = s.order.pop_front() else {
                break;
            };
            if let Entry::Occupied(e) = s.map.entry(k) {
                if e.get().2 == q {
                    e.remove();
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        // Stale order entries (taken or replaced keys) are compacted away
        // before they can outnumber the live ones.
        if s.order.len() > 2 * self.per_shard {
            let Shard { map, order, .. } = &mut *s;
            order.retain(|(q, k)| map.get(k).is_some_and(|e| e.2 == *q));
        }
        self.stored.fetch_add(1, Ordering::Relaxed);
    }

    /// Looks `key` up at `now`; `remove` takes it out (single use).
    pub fn lookup_at(&self, key: &[u8], now: Instant, remove: bool) -> Option<Vec<u8>> {
        let mut s = self.shard(key);
        let r = match s.map.get(key) {
            None => None,
            Some((_, t, _)) if now.saturating_duration_since(*t) >= self.ttl => {
                s.map.remove(key);
                self.expired.fetch_add(1, Ordering::Relaxed);
                None
            }
            Some((v, _, _)) if !remove => Some(v.clone()),
            Some(_) => s.map.remove(key).map(|e| e.0),
        };
        let c = if r.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        c.fetch_add(1, Ordering::Relaxed);
        r
    }
}

impl StoresServerSessions for SessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.put_at(key, value, Instant::now());
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.lookup_at(key, Instant::now(), false)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.lookup_at(key, Instant::now(), true)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ttl_expires_entries() {
        let c = SessionCache::new(100, Duration::from_secs(10));
        let t0 = Instant::now();
        c.put_at(b"k".to_vec(), b"v".to_vec(), t0);
        assert_eq!(
            c.lookup_at(b"k", t0 + Duration::from_secs(9), false)
                .as_deref(),
            Some(&b"v"[..])
        );
        assert_eq!(c.lookup_at(b"k", t0 + Duration::from_secs(10), false), None);
        assert_eq!(
            c.lookup_at(b"k", t0, false),
            None,
            "expired entries are gone"
        );
        let n = c.counts();
        assert_eq!((n.hits, n.misses, n.expired, n.entries), (1, 2, 1, 0));
    }

    #[test]
    fn take_is_single_use() {
        let c = SessionCache::new(100, Duration::from_secs(10));
        c.put(b"k".to_vec(), b"v".to_vec());
        assert_eq!(c.take(b"k").as_deref(), Some(&b"v"[..]));
        assert_eq!(c.take(b"k"), None);
        assert_eq!(c.get(b"k"), None);
    }

    proptest! {
        /// Never more than the capacity; the newest entries of each shard
        /// survive; every live value is the last one stored for its key.
        #[test]
        fn bounded_and_newest_win(ops in proptest::collection::vec((0u16..400, any::<u8>(), any::<bool>()), 1..2000)) {
            let c = SessionCache::new(64, Duration::from_secs(3600));
            let t = Instant::now();
            let mut last = HashMap::new();
            for (k, v, take) in ops {
                let key = k.to_be_bytes().to_vec();
                if take {
                    let got = c.lookup_at(&key, t, true);
                    if let Some(g) = got {
                        prop_assert_eq!(Some(&g), last.get(&key));
                    }
                    last.remove(&key);
                } else {
                    c.put_at(key.clone(), vec![v], t);
                    last.insert(key, vec![v]);
                }
                prop_assert!(c.counts().entries as usize <= c.capacity());
            }
            for (k, v) in &last {
                if let Some(g) = c.lookup_at(k, t, false) {
                    prop_assert_eq!(&g, v);
                }
            }
            for s in c.shards.iter() {
                let s = s.lock().unwrap();
                prop_assert!(s.order.len() <= 2 * c.per_shard + 1);
            }
        }
    }
}
