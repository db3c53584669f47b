//! The per-lcore table of spliced flows and each flow's close tracking.
//!
//! Every flow is found from either direction: the client-side pair
//! `(client, vip)` for client→server segments and the server-side pair
//! `(server, local)` for server→client ones. The index is open addressing
//! with linear probing and backward-shift deletion (no tombstones), sized
//! once at creation: lookups, inserts and removals never allocate, and the
//! table cannot grow past its capacity (an insert into a full table fails
//! and is counted by the caller).
//!
//! Clients choose their own address and port, so the index is built to
//! withstand hash flooding: slots come from a keyed hash (SipHash-1-3 with a
//! per-table random [`FlowKey`]), and no key is stored more than
//! [`MAX_PROBE`] slots past its home slot — an insert that would need a
//! longer probe fails like one into a full table and is counted
//! ([`FlowTable::probe_overflow`]), and a lookup reads at most `MAX_PROBE`
//! slots.
//!
//! Close tracking per flow: FINs in each direction and the ACKs that cover
//! them, RST, then a short linger (TIME-WAIT-like) so late retransmissions
//! are still translated, and an idle timeout. Time is an argument.

use std::net::SocketAddrV4;

use qsplice_wire::TcpFlags;

use crate::seq;
use crate::translate::{SpliceParams, Translated, Translation};

/// Direction of a segment within a flow.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client → server.
    C2S,
    /// Server → client.
    S2C,
}

/// Where a flow is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FlowState {
    /// Data flowing.
    Established,
    /// One or both sides sent FIN; not both acknowledged yet.
    Closing,
    /// Both FINs acknowledged, or a RST seen: kept until `until` for late
    /// segments, then removed.
    Linger {
        /// Removal time.
        until: u64,
    },
}

/// Timer settings in clock units (the caller's clock).
#[derive(Copy, Clone, Debug)]
pub struct FlowTimers {
    /// Remove a flow with no segment for this long.
    pub idle: u64,
    /// Keep a closed flow this long.
    pub linger: u64,
}

/// One spliced flow.
#[derive(Clone, Debug)]
pub struct Flow {
    /// How it was set up.
    pub params: SpliceParams,
    /// Client → server translation.
    pub c2s: Translation,
    /// Server → client translation.
    pub s2c: Translation,
    /// Life cycle.
    pub state: FlowState,
    /// Last segment time.
    pub last_seen: u64,
    /// Sequence number just after the client's FIN (server leg's space), once seen.
    fin_c: Option<u32>,
    /// Sequence number just after the server's FIN (client leg's space), once seen.
    fin_s: Option<u32>,
    fin_c_acked: bool,
    fin_s_acked: bool,
    /// Segments forwarded each way.
    pub segments: [u64; 2],
    /// Payload bytes forwarded each way.
    pub bytes: [u64; 2],
}

impl Flow {
    /// A new established flow.
    pub fn new(params: SpliceParams, now: u64) -> Flow {
        Flow {
            c2s: params.c2s(),
            s2c: params.s2c(),
            params,
            state: FlowState::Established,
            last_seen: now,
            fin_c: None,
            fin_s: None,
            fin_c_acked: false,
            fin_s_acked: false,
            segments: [0; 2],
            bytes: [0; 2],
        }
    }

    /// Replace the flow's parameters once the backend leg's handshake is
    /// known (sequence, timestamp and window-scale deltas), recomputing both
    /// translations. The four endpoints must stay the same (they are the
    /// table keys); returns false and changes nothing otherwise.
    pub fn rebase(&mut self, params: SpliceParams) -> bool {
        let p = &self.params;
        if (p.client, p.vip, p.local, p.server)
            != (params.client, params.vip, params.local, params.server)
        {
            return false;
        }
        self.params = params;
        self.c2s = params.c2s();
        self.s2c = params.s2c();
        true
    }

    /// The translation for segments travelling in `dir`.
    pub fn translation(&self, dir: Dir) -> &Translation {
        match dir {
            Dir::C2S => &self.c2s,
            Dir::S2C => &self.s2c,
        }
    }

    /// Account a segment that was translated in direction `dir` (`t` holds
    /// its post-translation numbers) and advance the close state.
    #[inline]
    pub fn on_segment(&mut self, dir: Dir, t: &Translated, now: u64, timers: &FlowTimers) {
        self.last_seen = now;
        let d = dir as usize;
        self.segments[d] += 1;
        self.bytes[d] += t.payload_len as u64;
        if let FlowState::Linger { .. } = self.state {
            return;
        }
        if t.flags.contains(TcpFlags::RST) {
            self.state = FlowState::Linger {
                until: now.saturating_add(timers.linger),
            };
            return;
        }
        // The FIN occupies one sequence number after the payload.
        let fin_end = t.seq.wrapping_add(t.payload_len as u32).wrapping_add(1);
        let acks = t.flags.contains(TcpFlags::ACK);
        match dir {
            // `t` holds post-translation numbers: a C2S segment's seq is in
            // the server leg's space and its ack in the client leg's space
            // turned into the server leg's (and vice versa), so an ack is
            // mapped back into the FIN's space before comparing.
            Dir::C2S => {
                if t.flags.contains(TcpFlags::FIN) {
                    self.fin_c = Some(self.fin_c.map_or(fin_end, |f| seq::max(f, fin_end)));
                }
                if let (true, Some(f)) = (acks, self.fin_s) {
                    let ack = t.ack.wrapping_add(self.params.s2c_seq_delta);
                    self.fin_s_acked |= seq::ge(ack, f);
                }
            }
            Dir::S2C => {
                if t.flags.contains(TcpFlags::FIN) {
                    self.fin_s = Some(self.fin_s.map_or(fin_end, |f| seq::max(f, fin_end)));
                }
                if let (true, Some(f)) = (acks, self.fin_c) {
                    let ack = t.ack.wrapping_add(self.params.c2s_seq_delta);
                    self.fin_c_acked |= seq::ge(ack, f);
                }
            }
        }
        if self.fin_c_acked && self.fin_s_acked {
            self.state = FlowState::Linger {
                until: now.saturating_add(timers.linger),
            };
        } else if self.fin_c.is_some() || self.fin_s.is_some() {
            self.state = FlowState::Closing;
        }
    }

    /// Both sides have sent their FIN (acknowledged or not): the
    /// connection carries no more requests. A RST counts as both.
    pub fn both_fins(&self) -> bool {
        (self.fin_c.is_some() && self.fin_s.is_some())
            || matches!(self.state, FlowState::Linger { .. })
    }

    /// Whether the flow should be removed at `now`.
    pub fn expired(&self, now: u64, timers: &FlowTimers) -> bool {
        match self.state {
            FlowState::Linger { until } => now >= until,
            _ => now.saturating_sub(self.last_seen) >= timers.idle,
        }
    }
}

/// A flow's handle in its table.
pub type FlowId = u32;

/// The longest probe: a key is stored at most `MAX_PROBE - 1` slots past its
/// home slot, and a lookup reads at most `MAX_PROBE` slots. An insert that
/// finds no free slot that close fails ([`InsertError::Full`]) and is
/// counted by [`FlowTable::probe_overflow`].
///
/// With the keyed hash an outsider cannot aim keys at one slot, so the
/// bound only matters for bad luck, and only near a full table: the index
/// has at least four slots per flow (two keys each), and with every flow in
/// use (load 1/2) about one key insert in 15 000 finds its 32 slots taken,
/// at 90 % of the flows one in 50 000, at 80 % one in 500 000 (simulated
/// linear probing with a random hash). The bound also caps what a lookup
/// costs should the key ever be known.
pub const MAX_PROBE: usize = 32;

const EMPTY: u32 = u32::MAX;

/// The flow table's hash key: 128 secret bits, drawn from the OS at
/// [`FlowTable::new`]. Keys hash with SipHash-1-3 (the keyed PRF of Rust's
/// `HashMap`): without the key, which slot a client's address and port
/// land in is unpredictable, so a client cannot choose ports that pile up
/// on one probe chain (hash flooding).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlowKey(..)")
    }
}

impl FlowKey {
    /// A key from 16 bytes (tests and callers that hold their own secret).
    pub fn from_bytes(b: [u8; 16]) -> FlowKey {
        let mut k0 = [0u8; 8];
        let mut k1 = [0u8; 8];
        k0.copy_from_slice(&b[..8]);
        k1.copy_from_slice(&b[8..]);
        FlowKey {
            k0: u64::from_le_bytes(k0),
            k1: u64::from_le_bytes(k1),
        }
    }

    /// A fresh random key from the OS: 16 bytes of `/dev/urandom`, or, where
    /// that cannot be read, std's `RandomState` (itself keyed from the OS
    /// RNG, getrandom(2)) hashing two constants.
    pub fn random() -> FlowKey {
        use std::io::Read;
        let mut b = [0u8; 16];
        match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)) {
            Ok(()) => FlowKey::from_bytes(b),
            Err(_) => {
                use std::hash::BuildHasher;
                let s = std::collections::hash_map::RandomState::new();
                FlowKey {
                    k0: s.hash_one(0x666c_6f77_6b30_u64),
                    k1: s.hash_one(0x666c_6f77_6b31_u64),
                }
            }
        }
    }

    /// The keyed hash of a directional pair: SipHash-1-3 of the 12 bytes
    /// `ip₁ ‖ port₁ ‖ ip₂ ‖ port₂`, each endpoint as the little-endian
    /// 48-bit word [`pack`] makes.
    #[inline]
    pub fn hash(&self, src: SocketAddrV4, dst: SocketAddrV4) -> u64 {
        self.hash_packed(pack(src), pack(dst))
    }

    /// [`FlowKey::hash`] of two [`pack`]ed endpoints: SipHash-1-3
    /// (Aumasson and Bernstein) of the 12-byte message, written out for
    /// its fixed length — one 8-byte block, then the last block holding
    /// the other 4 bytes and the length; one compression round per block
    /// and three to finish. Twelve bytes rather than two 8-byte words save
    /// a block (a round) on every segment; the result is the reference
    /// SipHash-1-3 of that message (`tests/flow_flood.rs` checks it
    /// against the `siphasher` crate).
    #[inline]
    pub fn hash_packed(&self, a: u64, b: u64) -> u64 {
        #[inline(always)]
        fn round(v: &mut [u64; 4]) {
            v[0] = v[0].wrapping_add(v[1]);
            v[1] = v[1].rotate_left(13) ^ v[0];
            v[0] = v[0].rotate_left(32);
            v[2] = v[2].wrapping_add(v[3]);
            v[3] = v[3].rotate_left(16) ^ v[2];
            v[0] = v[0].wrapping_add(v[3]);
            v[3] = v[3].rotate_left(21) ^ v[0];
            v[2] = v[2].wrapping_add(v[1]);
            v[1] = v[1].rotate_left(17) ^ v[2];
            v[2] = v[2].rotate_left(32);
        }
        let m0 = (a & 0xffff_ffff_ffff) | (b << 48);
        let m1 = ((b >> 16) & 0xffff_ffff) | (12 << 56);
        let mut v = [
            self.k0 ^ 0x736f_6d65_7073_6575,
            self.k1 ^ 0x646f_7261_6e64_6f6d,
            self.k0 ^ 0x6c79_6765_6e65_7261,
            self.k1 ^ 0x7465_6462_7974_6573,
        ];
        for m in [m0, m1] {
            v[3] ^= m;
            round(&mut v);
            v[0] ^= m;
        }
        v[2] ^= 0xff;
        round(&mut v);
        round(&mut v);
        round(&mut v);
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }
}

/// An endpoint as one word: `ip << 16 | port` (48 bits). The index stores
/// and compares keys in this form, and the packet path builds it from the
/// header fields it has just read: a key rebuilt from a `SocketAddrV4`
/// spilled to the stack with narrower stores is a store-forwarding stall
/// (`--bench lb_path` measured one on every spliced segment).
#[inline(always)]
pub fn pack(a: SocketAddrV4) -> u64 {
    u64::from(u32::from(*a.ip())) << 16 | u64::from(a.port())
}

type Key = (u64, u64);

#[derive(Copy, Clone, Debug)]
struct Slot {
    key: Key,
    /// Flow index and direction bit (bit 31 set: S2C); EMPTY if free.
    val: u32,
}

/// Why an insert failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// No room: the table holds its maximum number of flows, or one of the
    /// flow's keys has no free slot within [`MAX_PROBE`] of its home (the
    /// latter also counted by [`FlowTable::probe_overflow`]).
    Full,
    /// One of the two keys is already in use by another flow.
    Exists,
}

/// Where a probe for a key ended.
enum Probe {
    /// The key is in this slot.
    Found(usize),
    /// The key is absent; this is the first free slot of its window.
    Vacant(usize),
    /// The key is absent and its whole window is taken.
    Overflow,
}

/// The flow table. See the module docs.
#[derive(Debug)]
pub struct FlowTable {
    index: Vec<Slot>,
    mask: usize,
    /// Slots a key may be from its home, plus one: `MAX_PROBE`, or the
    /// index's size when that is smaller.
    window: usize,
    flows: Vec<Option<Flow>>,
    free: Vec<u32>,
    key: FlowKey,
    len: usize,
    sweep_at: usize,
    /// One bit per flow slot, set while it holds a flow: the expiry sweep
    /// reads these words and touches only the flows that exist (a mostly
    /// empty table costs a word per 64 slots, not a flow's cache lines).
    occupied: Vec<u64>,
    probe_overflow: u64,
}

impl FlowTable {
    /// A table for up to `max_flows` flows, its hash keyed by a fresh
    /// [`FlowKey::random`].
    pub fn new(max_flows: usize) -> FlowTable {
        FlowTable::with_key(max_flows, FlowKey::random())
    }

    /// A table for up to `max_flows` flows with the given hash key.
    pub fn with_key(max_flows: usize, key: FlowKey) -> FlowTable {
        // Two keys per flow, load factor ≤ 1/2.
        let cap = (max_flows.max(1) * 4).next_power_of_two();
        let empty = Slot {
            key: (0, 0),
            val: EMPTY,
        };
        FlowTable {
            index: vec![empty; cap],
            mask: cap - 1,
            window: MAX_PROBE.min(cap),
            flows: (0..max_flows).map(|_| None).collect(),
            free: (0..max_flows as u32).rev().collect(),
            key,
            len: 0,
            sweep_at: 0,
            occupied: vec![0; max_flows.div_ceil(64)],
            probe_overflow: 0,
        }
    }

    /// Flows in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum flows.
    pub fn capacity(&self) -> usize {
        self.flows.len()
    }

    /// Inserts refused because a key's probe window ([`MAX_PROBE`] slots
    /// from its home) was full, since creation.
    pub fn probe_overflow(&self) -> u64 {
        self.probe_overflow
    }

    /// Slots in the index (a power of two, at least four per flow).
    pub fn slots(&self) -> usize {
        self.index.len()
    }

    /// The slot where the probe for the key `(src, dst)` starts (diagnostics
    /// and tests).
    #[inline]
    pub fn home(&self, src: SocketAddrV4, dst: SocketAddrV4) -> usize {
        self.home_packed(&(pack(src), pack(dst)))
    }

    #[inline]
    fn home_packed(&self, k: &Key) -> usize {
        self.key.hash_packed(k.0, k.1) as usize & self.mask
    }

    /// The largest distance of a stored key from its home slot; always
    /// below [`MAX_PROBE`]. Scans the whole index (diagnostics and tests).
    pub fn max_displacement(&self) -> usize {
        (0..self.index.len())
            .filter(|&i| self.index[i].val != EMPTY)
            .map(|i| i.wrapping_sub(self.home_packed(&self.index[i].key)) & self.mask)
            .max()
            .unwrap_or(0)
    }

    /// Probe the window of `key`, whose home slot is `home`. Invariant: every
    /// stored key sits fewer than `window` slots past its home, with no free
    /// slot between (backward-shift deletion keeps both).
    #[inline]
    fn probe(&self, home: usize, key: &Key) -> Probe {
        let mut i = home;
        for _ in 0..self.window {
            let s = &self.index[i];
            if s.val == EMPTY {
                return Probe::Vacant(i);
            }
            if s.key == *key {
                return Probe::Found(i);
            }
            i = (i + 1) & self.mask;
        }
        Probe::Overflow
    }

    /// The flow a segment from `src` to `dst` belongs to, and its direction.
    #[inline]
    pub fn lookup(&self, src: SocketAddrV4, dst: SocketAddrV4) -> Option<(FlowId, Dir)> {
        self.lookup_packed(pack(src), pack(dst))
    }

    /// [`FlowTable::lookup`] of two [`pack`]ed endpoints (the packet path).
    #[inline]
    pub fn lookup_packed(&self, src: u64, dst: u64) -> Option<(FlowId, Dir)> {
        let key = (src, dst);
        let Probe::Found(i) = self.probe(self.home_packed(&key), &key) else {
            return None;
        };
        let val = self.index[i].val;
        let dir = if val & 0x8000_0000 != 0 {
            Dir::S2C
        } else {
            Dir::C2S
        };
        Some((val & 0x7fff_ffff, dir))
    }

    /// The flow with this id.
    pub fn get(&self, id: FlowId) -> Option<&Flow> {
        self.flows.get(id as usize)?.as_ref()
    }

    /// Ids of every flow in the table (a full scan: for the slow path).
    pub fn ids(&self) -> impl Iterator<Item = FlowId> + '_ {
        self.flows
            .iter()
            .enumerate()
            .filter(|(_, f)| f.is_some())
            .map(|(i, _)| i as FlowId)
    }

    /// The flow with this id, mutable.
    pub fn get_mut(&mut self, id: FlowId) -> Option<&mut Flow> {
        self.flows.get_mut(id as usize)?.as_mut()
    }

    /// Add a spliced flow, keyed by `(client, vip)` and `(server, local)`.
    /// Either both keys are stored or neither (the table is unchanged on
    /// error).
    pub fn insert(&mut self, params: SpliceParams, now: u64) -> Result<FlowId, InsertError> {
        let kc = (pack(params.client), pack(params.vip));
        let ks = (pack(params.server), pack(params.local));
        if kc == ks {
            return Err(InsertError::Exists);
        }
        let (hc, hs) = (self.home_packed(&kc), self.home_packed(&ks));
        let (pc, ps) = (self.probe(hc, &kc), self.probe(hs, &ks));
        if matches!(pc, Probe::Found(_)) || matches!(ps, Probe::Found(_)) {
            return Err(InsertError::Exists);
        }
        if self.free.is_empty() {
            return Err(InsertError::Full);
        }
        let (Probe::Vacant(sc), Probe::Vacant(_)) = (pc, ps) else {
            self.probe_overflow += 1;
            return Err(InsertError::Full);
        };
        let id = self.free.pop().ok_or(InsertError::Full)?;
        self.index[sc] = Slot { key: kc, val: id };
        // Re-probe: the client key may have taken the server key's free
        // slot, and then the next one may be out of its window. Undoing is
        // freeing `sc` again: it was free, and nothing else moved.
        let Probe::Vacant(ss) = self.probe(hs, &ks) else {
            self.index[sc].val = EMPTY;
            self.free.push(id);
            self.probe_overflow += 1;
            return Err(InsertError::Full);
        };
        self.index[ss] = Slot {
            key: ks,
            val: id | 0x8000_0000,
        };
        self.flows[id as usize] = Some(Flow::new(params, now));
        self.occupied[id as usize / 64] |= 1 << (id % 64);
        self.len += 1;
        Ok(id)
    }

    /// Remove a flow (both keys). Returns it.
    pub fn remove(&mut self, id: FlowId) -> Option<Flow> {
        let f = self.flows.get_mut(id as usize)?.take()?;
        self.occupied[id as usize / 64] &= !(1 << (id % 64));
        self.unindex(&(pack(f.params.client), pack(f.params.vip)));
        self.unindex(&(pack(f.params.server), pack(f.params.local)));
        self.free.push(id);
        self.len -= 1;
        Some(f)
    }

    /// Backward-shift deletion: close the gap so probes stay unbroken.
    ///
    /// A key at slot `i` whose home is at or before the hole (cyclically:
    /// its displacement `d` is at least the distance `gap` from the hole to
    /// `i`) probes through the hole, so it moves into it, and its
    /// displacement shrinks to `d − gap`: no key ever moves away from its
    /// home, so the `window` bound holds. A key `window` or more slots past
    /// the hole has `d < window ≤ gap` and cannot probe through it, so the
    /// scan stops there (or at a free slot).
    fn unindex(&mut self, key: &Key) {
        let Probe::Found(mut hole) = self.probe(self.home_packed(key), key) else {
            return;
        };
        let mut i = hole;
        loop {
            i = (i + 1) & self.mask;
            let gap = i.wrapping_sub(hole) & self.mask;
            if gap >= self.window {
                break;
            }
            let s = self.index[i];
            if s.val == EMPTY {
                break;
            }
            let d = i.wrapping_sub(self.home_packed(&s.key)) & self.mask;
            if d >= gap {
                self.index[hole] = s;
                hole = i;
            }
        }
        self.index[hole].val = EMPTY;
    }

    /// Remove up to `budget` expired flows, scanning incrementally (call
    /// every tick; the whole table is covered over `capacity / budget`
    /// calls). Returns the removed flows' ids through `on_removed`.
    pub fn expire(
        &mut self,
        now: u64,
        timers: &FlowTimers,
        budget: usize,
        mut on_removed: impl FnMut(FlowId, Flow),
    ) -> usize {
        let n = self.flows.len();
        let mut removed = 0;
        let mut left = budget.min(n);
        while left > 0 {
            let start = self.sweep_at;
            let (word, bit) = (start / 64, start % 64);
            // Slots start..start+span: within one word, the budget, the table.
            let span = (64 - bit).min(left).min(n - start);
            let mask = if span == 64 {
                u64::MAX
            } else {
                ((1u64 << span) - 1) << bit
            };
            let mut w = self.occupied[word] & mask;
            while w != 0 {
                let id = (word * 64 + w.trailing_zeros() as usize) as FlowId;
                w &= w - 1;
                if self.flows[id as usize]
                    .as_ref()
                    .is_some_and(|f| f.expired(now, timers))
                {
                    if let Some(f) = self.remove(id) {
                        on_removed(id, f);
                        removed += 1;
                    }
                }
            }
            left -= span;
            self.sweep_at = if start + span >= n { 0 } else { start + span };
        }
        removed
    }
}
