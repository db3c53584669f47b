//! Session-ticket keys shared by every lcore, rotated on a schedule.
//!
//! rustls' own ticketer is per process and rotates on a fixed 6-hour
//! schedule; qsplice wants the rotation interval in its config, visible
//! rotation (for tests and operators), and lock-free use on the lcores. A
//! [`TicketKeys`] holds the current and the previous key in an
//! [`ArcSwap`]: lcores encrypt with the current key and decrypt with
//! either (a load is a few atomic operations, no lock); the control
//! thread calls [`TicketKeys::rotate_if_due`], which publishes a new
//! current key and demotes the old one to previous. A ticket therefore
//! resumes for at least one and at most two rotation intervals, on any
//! lcore, and never after its key has been rotated out twice.
//!
//! Ticket format: key name (16 random bytes) ‖ nonce (12 random bytes) ‖
//! AES-256-GCM(plaintext) ‖ tag (16 bytes), the key name as associated
//! data. This protects only the server's own state blob (like nginx's
//! `ssl_session_ticket_key`); the TLS protocol itself is rustls'.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;

const NAME_LEN: usize = 16;
const TAG_LEN: usize = 16;

struct Key {
    name: [u8; NAME_LEN],
    aead: LessSafeKey,
}

/// One ticket key's material: its name (in every ticket it seals) and
/// its AES-256-GCM secret. A cluster shares these (`qsplice-cluster`).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial {
    /// Key name.
    pub name: [u8; NAME_LEN],
    /// AES-256-GCM key.
    pub secret: [u8; 32],
}

impl core::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "KeyMaterial({:02x?}, ..)", &self.name[..4])
    }
}

impl KeyMaterial {
    /// Fresh random material.
    pub fn generate() -> KeyMaterial {
        let rng = SystemRandom::new();
        let mut m = KeyMaterial {
            name: [0; NAME_LEN],
            secret: [0; 32],
        };
        rng.fill(&mut m.name).expect("system random");
        rng.fill(&mut m.secret).expect("system random");
        m
    }
}

impl Key {
    fn generate(rng: &SystemRandom) -> Key {
        let mut name = [0u8; NAME_LEN];
        let mut secret = [0u8; 32];
        rng.fill(&mut name).expect("system random");
        rng.fill(&mut secret).expect("system random");
        Key::from_material(&KeyMaterial { name, secret })
    }

    fn from_material(m: &KeyMaterial) -> Key {
        let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &m.secret).expect("key length"));
        Key { name: m.name, aead }
    }
}

struct KeySet {
    current: Arc<Key>,
    previous: Option<Arc<Key>>,
    /// The key that becomes current at the next rotation (cluster keys:
    /// published an interval ahead, so every node decrypts what a node
    /// that rotated first seals).
    next: Option<Arc<Key>>,
    created: Instant,
}

/// Ticket keys shared by all lcores (see the module docs).
pub struct TicketKeys {
    set: ArcSwap<KeySet>,
    interval: Duration,
    rng: SystemRandom,
    rotations: AtomicU64,
    /// Keys come from the cluster: no local rotation on schedule.
    managed: std::sync::atomic::AtomicBool,
    issued: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
}

impl core::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TicketKeys")
            .field("interval", &self.interval)
            .field("rotations", &self.rotations())
            .finish_non_exhaustive()
    }
}

impl TicketKeys {
    /// Fresh random keys, rotated every `interval` (clamped to ≥ 1 s).
    pub fn new(interval: Duration) -> Arc<TicketKeys> {
        let rng = SystemRandom::new();
        Arc::new(TicketKeys {
            set: ArcSwap::from_pointee(KeySet {
                current: Arc::new(Key::generate(&rng)),
                previous: None,
                next: None,
                created: Instant::now(),
            }),
            interval: interval.max(Duration::from_secs(1)),
            rng,
            rotations: AtomicU64::new(0),
            managed: std::sync::atomic::AtomicBool::new(false),
            issued: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        })
    }

    /// The rotation interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Rotates now: a new current key; the old current key is kept as
    /// previous, the old previous key is dropped.
    pub fn rotate(&self) {
        let old = self.set.load_full();
        self.set.store(Arc::new(KeySet {
            current: Arc::new(Key::generate(&self.rng)),
            previous: Some(old.current.clone()),
            next: None,
            created: Instant::now(),
        }));
        self.rotations.fetch_add(1, Ordering::Relaxed);
    }

    /// Take the keys a cluster agreed on: seal with `current`, open with
    /// any of the three. From then on the keys rotate only by the next
    /// `install` (the cluster rotates), never on the local schedule.
    /// `age` is how old `current` is. Counts a rotation when the current
    /// key changes.
    pub fn install(
        &self,
        previous: Option<&KeyMaterial>,
        current: &KeyMaterial,
        next: Option<&KeyMaterial>,
        age: Duration,
    ) {
        let old = self.set.load_full();
        let changed = old.current.name != current.name;
        self.set.store(Arc::new(KeySet {
            current: Arc::new(Key::from_material(current)),
            previous: previous.map(|m| Arc::new(Key::from_material(m))),
            next: next.map(|m| Arc::new(Key::from_material(m))),
            created: Instant::now().checked_sub(age).unwrap_or_else(Instant::now),
        }));
        self.managed.store(true, Ordering::Relaxed);
        if changed {
            self.rotations.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether the keys come from a cluster ([`TicketKeys::install`]).
    pub fn managed(&self) -> bool {
        self.managed.load(Ordering::Relaxed)
    }

    /// Rotates if the current key is older than the interval (call it from
    /// the control thread's periodic work). Returns whether it rotated.
    pub fn rotate_if_due(&self, now: Instant) -> bool {
        if self.managed() {
            return false;
        }
        let due = now.saturating_duration_since(self.set.load().created) >= self.interval;
        if due {
            self.rotate();
        }
        due
    }

    /// Age of the current key.
    pub fn key_age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.set.load().created)
    }

    /// Rotations so far.
    pub fn rotations(&self) -> u64 {
        self.rotations.load(Ordering::Relaxed)
    }

    /// Tickets issued / accepted / rejected (unknown key, bad tag, short).
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.issued.load(Ordering::Relaxed),
            self.accepted.load(Ordering::Relaxed),
            self.rejected.load(Ordering::Relaxed),
        )
    }

    fn seal(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let set = self.set.load();
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(NAME_LEN + NONCE_LEN + plain.len() + TAG_LEN);
        out.extend_from_slice(&set.current.name);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let (head, body) = out.split_at_mut(NAME_LEN + NONCE_LEN);
        let tag = set
            .current
            .aead
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&head[..NAME_LEN]),
                body,
            )
            .ok()?;
        out.extend_from_slice(tag.as_ref());
        self.issued.fetch_add(1, Ordering::Relaxed);
        Some(out)
    }

    fn open(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        let r = self.open_inner(ticket);
        let c = if r.is_some() {
            &self.accepted
        } else {
            &self.rejected
        };
        c.fetch_add(1, Ordering::Relaxed);
        r
    }

    fn open_inner(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        if ticket.len() < NAME_LEN + NONCE_LEN + TAG_LEN {
            return None;
        }
        let (name, rest) = ticket.split_at(NAME_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let set = self.set.load();
        let key = if name == set.current.name {
            &set.current
        } else {
            [set.previous.as_ref(), set.next.as_ref()]
                .into_iter()
                .flatten()
                .find(|k| name == k.name)?
        };
        let mut buf = sealed.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = key
            .aead
            .open_in_place(nonce, Aad::from(name), &mut buf)
            .ok()?
            .len();
        buf.truncate(plain);
        Some(buf)
    }

    /// The rustls ticketer backed by these keys.
    pub fn ticketer(self: &Arc<Self>) -> Arc<dyn ProducesTickets> {
        Arc::new(Ticketer(self.clone()))
    }
}

#[derive(Debug)]
struct Ticketer(Arc<TicketKeys>);

impl ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        u32::try_from(self.0.interval.as_secs()).unwrap_or(u32::MAX)
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.0.seal(plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.0.open(cipher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let k = TicketKeys::new(Duration::from_secs(60));
        let t = k.ticketer();
        let c = t.encrypt(b"session state").unwrap();
        assert_eq!(c.len(), 16 + 12 + 13 + 16);
        assert_eq!(t.decrypt(&c).unwrap(), b"session state");
        for i in [0, 20, 30, c.len() - 1] {
            let mut bad = c.clone();
            bad[i] ^= 1;
            assert_eq!(t.decrypt(&bad), None, "byte {i} flipped");
        }
        assert_eq!(t.decrypt(&c[..40]), None);
        assert_eq!(t.decrypt(&[]), None);
        assert_eq!(k.counts(), (1, 1, 6));
        assert_eq!(t.lifetime(), 60);
    }

    #[test]
    fn previous_key_accepted_until_second_rotation() {
        let k = TicketKeys::new(Duration::from_secs(3600));
        let t = k.ticketer();
        let c = t.encrypt(b"x").unwrap();
        assert!(!k.rotate_if_due(Instant::now()));
        k.rotate();
        assert_eq!(t.decrypt(&c).as_deref(), Some(&b"x"[..]), "previous key");
        let c2 = t.encrypt(b"y").unwrap();
        assert_ne!(c[..16], c2[..16], "new key name");
        assert!(k.rotate_if_due(Instant::now() + Duration::from_secs(3601)));
        assert_eq!(t.decrypt(&c), None, "rotated out twice");
        assert_eq!(t.decrypt(&c2).as_deref(), Some(&b"y"[..]));
        assert_eq!(k.rotations(), 2);
    }

    #[test]
    fn separate_key_sets_do_not_accept_each_other() {
        let a = TicketKeys::new(Duration::from_secs(60)).ticketer();
        let b = TicketKeys::new(Duration::from_secs(60)).ticketer();
        let c = a.encrypt(b"z").unwrap();
        assert_eq!(b.decrypt(&c), None);
    }

    #[test]
    fn installed_cluster_keys_are_shared_and_not_rotated_locally() {
        let (k1, k2, k3) = (
            KeyMaterial::generate(),
            KeyMaterial::generate(),
            KeyMaterial::generate(),
        );
        let a = TicketKeys::new(Duration::from_secs(60));
        let b = TicketKeys::new(Duration::from_secs(60));
        a.install(None, &k1, Some(&k2), Duration::ZERO);
        b.install(None, &k1, Some(&k2), Duration::ZERO);
        let c = a.ticketer().encrypt(b"state").unwrap();
        assert_eq!(
            b.ticketer().decrypt(&c).as_deref(),
            Some(&b"state"[..]),
            "node b opens node a's ticket"
        );
        // a rotates first (next becomes current): b, not yet rotated, still
        // opens what a seals now.
        a.install(Some(&k1), &k2, Some(&k3), Duration::ZERO);
        let c2 = a.ticketer().encrypt(b"new").unwrap();
        assert_eq!(b.ticketer().decrypt(&c2).as_deref(), Some(&b"new"[..]));
        assert_eq!(
            a.ticketer().decrypt(&c).as_deref(),
            Some(&b"state"[..]),
            "previous"
        );
        assert_eq!(a.rotations(), 2);
        assert!(a.managed());
        assert!(
            !a.rotate_if_due(Instant::now() + Duration::from_secs(3600)),
            "the cluster rotates"
        );
        // A key from outside the set is refused.
        let other = TicketKeys::new(Duration::from_secs(60));
        assert_eq!(other.ticketer().decrypt(&c2), None);
        assert!(
            format!("{k1:?}").starts_with("KeyMaterial("),
            "no secret printed"
        );
    }
}
