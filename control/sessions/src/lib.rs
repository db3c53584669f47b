//! The server mapping table of session-aware dispatch (the source paper,
//! §5.2–5.3), owned by the control thread.
//!
//! Rows are `session key | backend | timestamp | state`, several rows per
//! key: every backend known to hold the session. The timestamp is the
//! appliance's clock when that backend last *finished* serving the session
//! (or learned it). The state column is [`BusyCounts`], shared with the
//! lcores: BUSY while that backend serves the session right now. A new
//! connection presenting a session key goes to the candidate that is not
//! busy (and whose backend is eligible: up, under its limit) with the
//! **oldest** timestamp — least recently used, which keeps load spread —
//! and falls back to the VIP's ordinary scheduler when no candidate is left
//! ([`choose`], run on the lcores against a published [`Candidates`]
//! snapshot).
//!
//! Expiry: rows older than the reference age are deleted by a periodic
//! [`SessionTable::sweep`] (bounding how long a session can be reused: the
//! paper's partial forward secrecy argument); the table is bounded in keys
//! (the key with the oldest newest row is evicted first) and in rows per key
//! ([`MAX_ROWS`]).
//!
//! Keys are keyed hashes of the session identity ([`SessionKey::of`]): a
//! TLS 1.2 session ID, a TLS 1.2 ticket, a TLS 1.3 PSK identity, or the key
//! name that starts OpenSSL/nginx tickets — the table itself does not care
//! which.
#![forbid(unsafe_code)]

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};

use arrayvec::ArrayVec;
use siphasher::sip::SipHasher24;

pub mod identity;

/// Backends remembered per session.
pub const MAX_ROWS: usize = 4;

/// What a session identity is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum IdentityKind {
    /// TLS 1.2 `legacy_session_id`.
    SessionId = 1,
    /// TLS 1.2 session ticket (the whole ticket).
    Ticket = 2,
    /// TLS 1.3 `pre_shared_key` identity.
    PskIdentity = 3,
    /// The key name at the start of an OpenSSL/nginx ticket (first 16 bytes):
    /// which backend's ticket key encrypted it.
    TicketKeyName = 4,
}

/// A session's key in the table: a keyed 64-bit hash of its identity.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey(pub u64);

impl SessionKey {
    /// Hash `identity` of `kind` with the appliance's `secret` (so outsiders
    /// cannot aim collisions at the table).
    pub fn of(secret: (u64, u64), kind: IdentityKind, identity: &[u8]) -> SessionKey {
        let mut h = SipHasher24::new_with_keys(secret.0, secret.1);
        h.write_u8(kind as u8);
        h.write(identity);
        SessionKey(h.finish())
    }
}

/// Hashes a [`SessionKey`] by taking its value: the key already is a
/// keyed SipHash of the identity, uniform and unpredictable to clients, so
/// hashing it again would only cost time on every lookup and update.
#[derive(Copy, Clone, Debug, Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

/// A map keyed by session key (see [`KeyHasher`]).
pub type KeyMap<V> = HashMap<SessionKey, V, BuildHasherDefault<KeyHasher>>;

/// What lcores read: per session, the backends holding it, least recently
/// used first.
pub type Candidates = KeyMap<ArrayVec<u16, MAX_ROWS>>;

/// One `session key | backend | timestamp` row (its state is in
/// [`BusyCounts`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Backend index (in the VIP's pool).
    pub backend: u16,
    /// When the backend last finished serving the session (or learned it).
    pub ts: u64,
}

/// The outcome of [`choose`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// The least recently used candidate that is not busy and can take a
    /// connection; `key` is the session key that chose it (`None` when it
    /// was a ticket key name).
    Hit {
        /// Backend index.
        backend: u16,
        /// The offered session key it holds.
        key: Option<SessionKey>,
    },
    /// Rows exist but no candidate is left: use the scheduler (a counted
    /// fallback). `session`: a candidate was serving one of the offer's
    /// sessions right now (else: every backend was down, draining or full).
    Busy {
        /// Some candidate was BUSY with the session.
        session: bool,
    },
    /// The table knows none of the offered keys: use the scheduler.
    Miss,
}

/// The paper's selection (§5.3) for `offer`, as the lcores run it: for each
/// offered key in order, its candidates least recently used first; one that
/// serves one of the offer's sessions now (`busy`) is dropped — for the
/// offer's later keys too, since a ticket's key name leads back to the same
/// backend; key names themselves are never busy —, and one whose backend
/// cannot take a connection (`can_take`) is passed over.
pub fn choose(
    offer: &identity::Offer,
    table: &Candidates,
    busy: impl Fn(SessionKey, u16) -> bool,
    can_take: impl Fn(u16) -> bool,
) -> Choice {
    let (mut seen, mut session) = (false, false);
    let mut busy_on: ArrayVec<u16, { identity::MAX_OFFER_KEYS }> = ArrayVec::new();
    for &k in &offer.keys {
        let Some(cands) = table.get(&k) else {
            continue;
        };
        seen = true;
        let name = offer.is_key_name(k);
        for &b in cands {
            if busy_on.contains(&b) {
                continue;
            }
            if !name && busy(k, b) {
                session = true;
                let _ = busy_on.try_push(b);
                continue;
            }
            if can_take(b) {
                return Choice::Hit {
                    backend: b,
                    key: (!name).then_some(k),
                };
            }
        }
    }
    if seen {
        Choice::Busy { session }
    } else {
        Choice::Miss
    }
}

/// Counters of the table's life.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Rows added.
    pub learned: u64,
    /// Rows removed by the age sweep.
    pub expired: u64,
    /// Keys evicted to stay within the bound.
    pub evicted: u64,
    /// Rows replaced because a key had [`MAX_ROWS`] already.
    pub replaced: u64,
}

/// The table. See the crate docs.
#[derive(Debug)]
pub struct SessionTable {
    rows: KeyMap<ArrayVec<Row, MAX_ROWS>>,
    /// Per key, the backends in LRU order: kept in step with `rows` so a
    /// snapshot is a plain copy of this map (no rehashing, no sorting).
    cands: Candidates,
    /// Every row as `(timestamp, key, backend)`: the sweep walks the old
    /// end, eviction takes the key of the oldest row.
    order: BTreeSet<(u64, SessionKey, u16)>,
    max_keys: usize,
    max_age: u64,
    stats: Stats,
}

impl SessionTable {
    /// A table for at most `max_keys` sessions whose rows live `max_age`
    /// (in the caller's clock units) after their timestamp.
    pub fn new(max_keys: usize, max_age: u64) -> Self {
        SessionTable {
            rows: KeyMap::with_capacity_and_hasher(max_keys.min(1 << 20), Default::default()),
            cands: Candidates::with_capacity_and_hasher(max_keys.min(1 << 20), Default::default()),
            order: BTreeSet::new(),
            max_keys: max_keys.max(1),
            max_age,
            stats: Stats::default(),
        }
    }

    /// Removes the session holding the oldest row (the LRU key). False when
    /// the table is empty.
    fn evict_oldest(&mut self) -> bool {
        let Some(&(_, victim, _)) = self.order.iter().next() else {
            return false;
        };
        self.cands.remove(&victim);
        if let Some(rows) = self.rows.remove(&victim) {
            for r in &rows {
                self.order.remove(&(r.ts, victim, r.backend));
            }
        }
        self.stats.evicted += 1;
        true
    }

    /// New bounds (a reload): rows older than `max_age` go at the next
    /// sweep; when `max_keys` shrinks below the sessions held, the least
    /// recently used are evicted now (counted).
    pub fn set_limits(&mut self, max_keys: usize, max_age: u64) {
        self.max_keys = max_keys.max(1);
        self.max_age = max_age;
        while self.rows.len() > self.max_keys && self.evict_oldest() {}
    }

    /// Sessions in the table.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Bytes the table holds, approximately (hash map slots at their
    /// capacity, plus the eviction index's entries with B-tree overhead):
    /// bounded by `max_keys` and [`MAX_ROWS`].
    pub fn memory(&self) -> usize {
        let slot = std::mem::size_of::<(SessionKey, ArrayVec<Row, MAX_ROWS>)>() + 1;
        let cand = std::mem::size_of::<(SessionKey, ArrayVec<u16, MAX_ROWS>)>() + 1;
        let entry = std::mem::size_of::<(u64, SessionKey, u16)>();
        self.rows.capacity() * slot
            + self.cands.capacity() * cand
            + self.order.len() * entry * 3 / 2
    }

    /// The `n` most recently used sessions, newest first, with their rows
    /// (the table dump of the control interface).
    pub fn top(&self, n: usize) -> Vec<(SessionKey, &[Row])> {
        let mut out: Vec<(SessionKey, &[Row])> = Vec::with_capacity(n.min(self.rows.len()));
        for &(_, key, _) in self.order.iter().rev() {
            if out.len() >= n {
                break;
            }
            if out.iter().any(|(k, _)| *k == key) {
                continue;
            }
            out.push((key, self.rows(key)));
        }
        out
    }

    /// The rows of `key`.
    pub fn rows(&self, key: SessionKey) -> &[Row] {
        self.rows.get(&key).map_or(&[], |r| r.as_slice())
    }

    /// Change `key`'s rows through `f`, keeping the eviction order right;
    /// creates the key (evicting the stalest one at the bound) if `create`.
    fn update(
        &mut self,
        key: SessionKey,
        create: bool,
        f: impl FnOnce(&mut ArrayVec<Row, MAX_ROWS>, &mut Stats),
    ) {
        if !self.rows.contains_key(&key) {
            if !create {
                return;
            }
            if self.rows.len() >= self.max_keys {
                self.evict_oldest();
            }
            self.rows.insert(key, ArrayVec::new());
        }
        let Some(rows) = self.rows.get_mut(&key) else {
            return;
        };
        for r in rows.iter() {
            self.order.remove(&(r.ts, key, r.backend));
        }
        f(rows, &mut self.stats);
        for r in rows.iter() {
            self.order.insert((r.ts, key, r.backend));
        }
        if rows.is_empty() {
            self.rows.remove(&key);
            self.cands.remove(&key);
        } else {
            let mut lru: ArrayVec<Row, MAX_ROWS> = rows.clone();
            lru.sort_by_key(|r| (r.ts, r.backend));
            self.cands
                .insert(key, lru.iter().map(|r| r.backend).collect());
        }
    }

    /// `backend` holds `key` (its ServerHello created or resumed the
    /// session): a row is added if new, timestamped `now`. A key with
    /// [`MAX_ROWS`] rows replaces its oldest row.
    pub fn learn(&mut self, key: SessionKey, backend: u16, now: u64) {
        self.update(key, true, |rows, st| {
            if rows.iter().any(|r| r.backend == backend) {
                return;
            }
            let row = Row { backend, ts: now };
            st.learned += 1;
            if rows.is_full() {
                let victim = rows
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, r)| r.ts)
                    .map_or(0, |(i, _)| i);
                rows[victim] = row;
                st.replaced += 1;
            } else {
                rows.push(row);
            }
        });
    }

    /// A connection serving `key` on `backend` ended: the row's timestamp
    /// becomes `now` (it is then the most recently used candidate).
    pub fn finished(&mut self, key: SessionKey, backend: u16, now: u64) {
        self.update(key, false, |rows, _| {
            if let Some(r) = rows.iter_mut().find(|r| r.backend == backend) {
                r.ts = r.ts.max(now);
            }
        });
    }

    /// Forget that `backend` holds `key` (it refused a resumption).
    pub fn forget(&mut self, key: SessionKey, backend: u16) {
        self.update(key, false, |rows, _| rows.retain(|r| r.backend != backend));
    }

    /// Delete rows whose timestamp is older than the reference age, except
    /// those `busy(key, backend)` says serve their session right now.
    /// Returns rows removed.
    pub fn sweep(&mut self, now: u64, busy: impl Fn(SessionKey, u16) -> bool) -> usize {
        let limit = now.saturating_sub(self.max_age);
        let mut stale: Vec<SessionKey> = self
            .order
            .range(..(limit, SessionKey(0), 0))
            .map(|&(_, k, _)| k)
            .collect();
        stale.dedup();
        let mut removed = 0;
        for key in stale {
            self.update(key, false, |rows, st| {
                let n = rows.len();
                rows.retain(|r| r.ts >= limit || busy(key, r.backend));
                let gone = n - rows.len();
                st.expired += gone as u64;
                removed += gone;
            });
        }
        removed
    }

    /// What lcores need for lookups: per key, every backend holding the
    /// session in order of preference (oldest timestamp first). Whether a
    /// backend serves the session *now* is read from [`BusyCounts`] at
    /// lookup time, which is exact, while a snapshot lives until the next
    /// publication.
    pub fn snapshot(&self) -> Candidates {
        self.cands.clone()
    }
}

/// The BUSY column at session grain, shared by every lcore: how many
/// connections each `(pool, session, backend)` is serving right now.
///
/// A counting array indexed by a hash of the triple (no slots to allocate
/// or free, so an lcore can enter when it dispatches or learns and leave
/// when the connection ends without asking the control thread). Entering
/// and leaving are one atomic add per connection, not per packet; a lookup
/// reads one counter per candidate. Two triples that share a counter make
/// each other look busy while both are served (a fallback to the
/// scheduler, never a wrong resumption): with the array sized at four
/// times the flows it can hold, rare.
#[derive(Debug)]
pub struct BusyCounts {
    slots: Box<[AtomicU32]>,
    bits: u32,
}

impl BusyCounts {
    /// Counters for about `flows` concurrent connections (rounded up to a
    /// power of two of at least 4× that, between 2^12 and 2^22).
    pub fn new(flows: usize) -> Self {
        let n = flows
            .saturating_mul(4)
            .clamp(1 << 12, 1 << 22)
            .next_power_of_two();
        BusyCounts {
            slots: (0..n).map(|_| AtomicU32::new(0)).collect(),
            bits: n.trailing_zeros(),
        }
    }

    /// Bytes held.
    pub fn memory(&self) -> usize {
        self.slots.len() * std::mem::size_of::<AtomicU32>()
    }

    fn slot(&self, pool: u16, key: SessionKey, backend: u16) -> &AtomicU32 {
        let h = key.0
            ^ (u64::from(pool) << 48)
            ^ u64::from(backend).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let i = h.wrapping_mul(0xff51_afd7_ed55_8ccd) >> (64 - self.bits);
        &self.slots[i as usize & (self.slots.len() - 1)]
    }

    /// A connection of `pool` starts serving `key` on `backend`.
    pub fn enter(&self, pool: u16, key: SessionKey, backend: u16) {
        self.slot(pool, key, backend)
            .fetch_add(1, Ordering::Relaxed);
    }

    /// That connection ended (a `leave` without an `enter` does nothing).
    pub fn leave(&self, pool: u16, key: SessionKey, backend: u16) {
        let r =
            self.slot(pool, key, backend)
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        // every leave has its enter (or shares a counter with one)
        debug_assert!(r.is_ok() || cfg!(test), "unpaired BusyCounts::leave");
    }

    /// Connections serving `key` on `backend` now (or sharing its counter).
    pub fn get(&self, pool: u16, key: SessionKey, backend: u16) -> u32 {
        self.slot(pool, key, backend).load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
