//! Backend pools and schedulers.
//!
//! The control thread owns the pool: backends with weight, connection limit
//! and state (up, down, draining). Whenever something changes (config,
//! health check, drain), it builds a new immutable [`Snapshot`] — including
//! the Maglev lookup table, which is the expensive part — and publishes it to
//! the lcores in one atomic swap. Lcores only read snapshots; the little
//! mutable scheduling state they need (a round-robin cursor, their own
//! connection counts) is per-lcore ([`Cursor`]), so picking a backend takes
//! no lock and touches no shared cache line.
//!
//! Schedulers ([`Policy`]):
//! * `RoundRobin`: eligible backends in turn.
//! * `WeightedRoundRobin`: the smooth weighted sequence (as in nginx): over
//!   `sum(weights)` picks each backend gets exactly its weight, interleaved.
//! * `LeastConnections`: fewest active connections per weight, counting the
//!   connections this lcore has opened plus the last totals the control
//!   thread published for the others.
//! * `Maglev`: consistent hashing on the client address (Eisenbud et al.,
//!   NSDI 2016): a prime-sized lookup table in which each backend owns
//!   slots in proportion to its weight; adding or removing one of N backends
//!   moves about 1/N of the clients.
#![forbid(unsafe_code)]

use std::hash::Hasher;
use std::net::SocketAddrV4;

use siphasher::sip::SipHasher24;

/// Administrative / health state of a backend.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BackendState {
    /// In rotation.
    Up,
    /// Failing health checks or disabled: no new connections.
    Down,
    /// No new connections; existing ones run to completion.
    Draining,
}

/// One backend server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// Address and port.
    pub addr: SocketAddrV4,
    /// Relative weight, ≥ 1 (0 behaves like draining).
    pub weight: u32,
    /// Connection limit (0: unlimited).
    pub max_conns: u32,
    /// State.
    pub state: BackendState,
    /// Raised by the control thread when the backend's established
    /// connections must be reset (health checks marked it down and
    /// `lb.health.on_down = "reset"`): an lcore that sees it change between
    /// two snapshots resets that backend's flows toward their clients.
    pub reset_epoch: u32,
}

impl Backend {
    /// An up backend with weight 1 and no limit.
    pub fn new(addr: SocketAddrV4) -> Self {
        Backend {
            addr,
            weight: 1,
            max_conns: 0,
            state: BackendState::Up,
            reset_epoch: 0,
        }
    }
    fn eligible(&self) -> bool {
        self.state == BackendState::Up && self.weight > 0
    }
}

/// Scheduling policy of a pool.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Eligible backends in turn.
    RoundRobin,
    /// Smooth weighted round robin.
    WeightedRoundRobin,
    /// Fewest connections relative to weight.
    LeastConnections,
    /// Maglev consistent hashing on the client address.
    Maglev,
    /// Maglev consistent hashing on the connection (client address and
    /// port, VIP address and port): a client's connections spread over the
    /// backends, each one to the same backend on every node of a cluster.
    MaglevFlow,
}

/// Default Maglev table size: a prime well above 100 × the backend count.
pub const MAGLEV_M: usize = 65_537;

/// An immutable view of a pool, built by the control thread.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Monotonic version (lets lcores notice a new snapshot).
    pub version: u64,
    /// The policy.
    pub policy: Policy,
    /// All backends, indexed as everywhere else.
    pub backends: Vec<Backend>,
    /// Total active connections per backend as last aggregated by control.
    pub conns: Vec<u32>,
    eligible: Vec<u16>,
    wrr: Vec<u16>,
    maglev: Vec<u16>,
}

/// Per-lcore scheduling state.
#[derive(Clone, Debug, Default)]
pub struct Cursor {
    next: usize,
    /// Connections this lcore opened per backend since the snapshot's
    /// `conns` were aggregated (kept by the lcore: +1 on open, -1 on close).
    pub local_conns: Vec<i32>,
}

fn hash64(key: &[u8], seed: u64) -> u64 {
    let mut h = SipHasher24::new_with_keys(seed, 0x7173_706c_6963_6521);
    h.write(key);
    h.finish()
}

fn addr_key(a: SocketAddrV4) -> [u8; 6] {
    let mut k = [0u8; 6];
    k[..4].copy_from_slice(&a.ip().octets());
    k[4..].copy_from_slice(&a.port().to_be_bytes());
    k
}

/// Hash of a client address for Maglev lookups (same on every lcore and
/// every node: fixed keys).
pub fn client_hash(client: std::net::Ipv4Addr) -> u64 {
    hash64(&client.octets(), 0x6d61_676c_6576)
}

/// Hash of a connection for [`Policy::MaglevFlow`] (same on every lcore
/// and every node: fixed keys).
pub fn flow_hash(client: SocketAddrV4, vip: SocketAddrV4) -> u64 {
    let mut k = [0u8; 12];
    k[..6].copy_from_slice(&addr_key(client));
    k[6..].copy_from_slice(&addr_key(vip));
    hash64(&k, 0x6d61_676c_6576_6c77)
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The smooth weighted round-robin sequence over `(index, weight)`, one
/// period long (`sum(weight)/gcd`, capped at 64k picks by scaling weights).
fn smooth_wrr(items: &[(u16, u32)]) -> Vec<u16> {
    if items.is_empty() {
        return Vec::new();
    }
    let g = items.iter().fold(0, |g, (_, w)| gcd(g, *w)).max(1);
    let mut w: Vec<i64> = items.iter().map(|(_, x)| i64::from(*x / g)).collect();
    let mut total: i64 = w.iter().sum();
    while total > 65_536 {
        for x in w.iter_mut() {
            *x = (*x / 2).max(1);
        }
        total = w.iter().sum();
    }
    let mut cur = vec![0i64; w.len()];
    let mut seq = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, x) in cur.iter_mut().zip(&w) {
            *c += *x;
        }
        let (best, _) = cur
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
            .unwrap_or((0, &0));
        cur[best] -= total;
        seq.push(items[best].0);
    }
    seq
}

/// The Maglev lookup table of size `m` (prime) over `(index, weight, key)`.
///
/// The table depends only on the set of `(weight, key)`, not on the order of
/// `items` or on the indices: backends are taken in the order of their keys
/// (addresses). So nodes whose backend slots were numbered differently (a
/// backend added live on one, from the file on another) build the same
/// table, and the same flow goes to the same backend address everywhere.
fn maglev_table(items: &[(u16, u32, [u8; 6])], m: usize) -> Vec<u16> {
    if items.is_empty() {
        return Vec::new();
    }
    let mut items = items.to_vec();
    items.sort_unstable_by_key(|(i, _, k)| (*k, *i));
    let items = &items[..];
    let perm: Vec<(usize, usize)> = items
        .iter()
        .map(|(_, _, k)| {
            (
                (hash64(k, 1) % m as u64) as usize,
                (hash64(k, 2) % (m as u64 - 1)) as usize + 1,
            )
        })
        .collect();
    let max_w = items.iter().map(|(_, w, _)| *w).max().unwrap_or(1).max(1);
    let mut next = vec![0usize; items.len()];
    let mut credit = vec![0u32; items.len()];
    let mut table = vec![u16::MAX; m];
    let mut filled = 0;
    'fill: loop {
        for (i, (idx, w, _)) in items.iter().enumerate() {
            // Weighted turns: a backend of weight w fills w/max_w slots per round.
            credit[i] += *w;
            if credit[i] < max_w {
                continue;
            }
            credit[i] -= max_w;
            let (off, skip) = perm[i];
            loop {
                let slot = (off + next[i] * skip) % m;
                next[i] += 1;
                if table[slot] == u16::MAX {
                    table[slot] = *idx;
                    filled += 1;
                    break;
                }
            }
            if filled == m {
                break 'fill;
            }
        }
    }
    table
}

impl Snapshot {
    /// Build a snapshot (control thread). `m` is the Maglev table size (a
    /// prime; [`MAGLEV_M`] by default), only used with [`Policy::Maglev`].
    pub fn build(
        version: u64,
        policy: Policy,
        backends: Vec<Backend>,
        conns: Vec<u32>,
        m: usize,
    ) -> Snapshot {
        assert!(backends.len() < usize::from(u16::MAX), "too many backends");
        let eligible: Vec<u16> = backends
            .iter()
            .enumerate()
            .filter(|(_, b)| b.eligible())
            .map(|(i, _)| i as u16)
            .collect();
        let wrr = if policy == Policy::WeightedRoundRobin {
            smooth_wrr(
                &eligible
                    .iter()
                    .map(|&i| (i, backends[usize::from(i)].weight))
                    .collect::<Vec<_>>(),
            )
        } else {
            Vec::new()
        };
        let maglev = if matches!(policy, Policy::Maglev | Policy::MaglevFlow) {
            maglev_table(
                &eligible
                    .iter()
                    .map(|&i| {
                        (
                            i,
                            backends[usize::from(i)].weight,
                            addr_key(backends[usize::from(i)].addr),
                        )
                    })
                    .collect::<Vec<_>>(),
                m,
            )
        } else {
            Vec::new()
        };
        let mut conns = conns;
        conns.resize(backends.len(), 0);
        Snapshot {
            version,
            policy,
            backends,
            conns,
            eligible,
            wrr,
            maglev,
        }
    }

    /// A cursor sized for this snapshot (per lcore).
    pub fn cursor(&self) -> Cursor {
        Cursor {
            next: 0,
            local_conns: vec![0; self.backends.len()],
        }
    }

    fn load(&self, i: usize, cur: &Cursor) -> i64 {
        i64::from(self.conns[i]) + i64::from(cur.local_conns.get(i).copied().unwrap_or(0))
    }

    fn has_room(&self, i: usize, cur: &Cursor) -> bool {
        let max = self.backends[i].max_conns;
        max == 0 || self.load(i, cur) < i64::from(max)
    }

    /// Can backend `i` take a new connection now (in rotation, under its
    /// limit)? Session-aware dispatch checks its table's candidates with it.
    pub fn can_take(&self, i: usize, cur: &Cursor) -> bool {
        i < self.backends.len() && self.eligible.contains(&(i as u16)) && self.has_room(i, cur)
    }

    /// The hash [`Snapshot::pick`] takes for a connection from `client` to
    /// `vip`: the client address's for [`Policy::Maglev`], the connection's
    /// for [`Policy::MaglevFlow`], 0 for the policies that ignore it.
    #[inline]
    pub fn key_hash(&self, client: SocketAddrV4, vip: SocketAddrV4) -> u64 {
        match self.policy {
            Policy::Maglev => client_hash(*client.ip()),
            Policy::MaglevFlow => flow_hash(client, vip),
            _ => 0,
        }
    }

    /// [`Snapshot::key_hash`] of any address family (an IPv6 client or
    /// VIP: the lcores' IPv4 stand-ins differ between lcores and nodes,
    /// the hash must not). Equals `key_hash` for IPv4 pairs.
    pub fn key_hash_ip(&self, client: std::net::SocketAddr, vip: std::net::SocketAddr) -> u64 {
        use std::net::SocketAddr::V4;
        match (client, vip) {
            (V4(c), V4(v)) => self.key_hash(c, v),
            _ => match self.policy {
                Policy::Maglev => match client.ip() {
                    std::net::IpAddr::V4(a) => client_hash(a),
                    std::net::IpAddr::V6(a) => hash64(&a.octets(), 0x6d61_676c_6576),
                },
                Policy::MaglevFlow => {
                    let mut k = [0u8; 36];
                    let mut put = |at: usize, a: std::net::SocketAddr| {
                        let ip = match a.ip() {
                            std::net::IpAddr::V4(x) => x.to_ipv6_mapped(),
                            std::net::IpAddr::V6(x) => x,
                        };
                        k[at..at + 16].copy_from_slice(&ip.octets());
                        k[at + 16..at + 18].copy_from_slice(&a.port().to_be_bytes());
                    };
                    put(0, client);
                    put(18, vip);
                    hash64(&k, 0x6d61_676c_6576_6c77)
                }
                _ => 0,
            },
        }
    }

    /// Pick a backend for a new connection from `client_hash` (used by
    /// Maglev). Backends at their connection limit are skipped (Maglev then
    /// probes the following table slots). `None`: no eligible backend.
    pub fn pick(&self, client_hash: u64, cur: &mut Cursor) -> Option<usize> {
        if self.eligible.is_empty() {
            return None;
        }
        match self.policy {
            Policy::RoundRobin => self.pick_seq(&self.eligible, cur),
            Policy::WeightedRoundRobin => self.pick_seq(&self.wrr, cur),
            Policy::LeastConnections => self
                .eligible
                .iter()
                .map(|&i| usize::from(i))
                .filter(|&i| self.has_room(i, cur))
                // fewest connections per weight; ties by index for determinism
                .min_by(|&a, &b| {
                    let (la, lb) = (
                        self.load(a, cur) * i64::from(self.backends[b].weight),
                        self.load(b, cur) * i64::from(self.backends[a].weight),
                    );
                    la.cmp(&lb).then(a.cmp(&b))
                }),
            Policy::Maglev | Policy::MaglevFlow => {
                let m = self.maglev.len();
                let start = (client_hash % m as u64) as usize;
                (0..m.min(64))
                    .map(|k| usize::from(self.maglev[(start + k) % m]))
                    .find(|&i| self.has_room(i, cur))
            }
        }
    }

    fn pick_seq(&self, seq: &[u16], cur: &mut Cursor) -> Option<usize> {
        for _ in 0..seq.len() {
            let i = usize::from(seq[cur.next % seq.len()]);
            cur.next = cur.next.wrapping_add(1);
            if self.has_room(i, cur) {
                return Some(i);
            }
        }
        None
    }

    /// Like [`Snapshot::pick`], but never a backend whose bit (`index % 64`)
    /// is set in `tried`: the next attempt of a connection whose backend
    /// refused it or did not answer (HAProxy's `redispatch`). The policy's
    /// own choice if it is untried, else the first eligible untried backend
    /// with room after it in index order. `None`: every eligible backend
    /// was tried (or none can take a connection).
    pub fn pick_excluding(&self, client_hash: u64, cur: &mut Cursor, tried: u64) -> Option<usize> {
        let untried = |i: usize| tried & (1u64 << (i % 64)) == 0;
        let first = self.pick(client_hash, cur)?;
        if untried(first) {
            return Some(first);
        }
        let n = self.eligible.len();
        let at = self
            .eligible
            .iter()
            .position(|&e| usize::from(e) == first)
            .unwrap_or(0);
        (1..n)
            .map(|k| usize::from(self.eligible[(at + k) % n]))
            .find(|&i| untried(i) && self.has_room(i, cur))
    }

    /// The Maglev table (for tests and diagnostics).
    pub fn maglev_table(&self) -> &[u16] {
        &self.maglev
    }
}

#[cfg(test)]
mod tests;
