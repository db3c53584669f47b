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

const EMPTY: u32 = u32::MAX;

#[derive(Copy, Clone, Debug)]
struct Slot {
    key: (SocketAddrV4, SocketAddrV4),
    /// Flow index and direction bit (bit 31 set: S2C); EMPTY if free.
    val: u32,
}

/// Why an insert failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// The table holds its maximum number of flows.
    Full,
    /// One of the two keys is already in use by another flow.
    Exists,
}

/// The flow table. See the module docs.
#[derive(Debug)]
pub struct FlowTable {
    index: Vec<Slot>,
    mask: usize,
    flows: Vec<Option<Flow>>,
    free: Vec<u32>,
    seed: u64,
    len: usize,
    sweep_at: usize,
}

fn key_hash(seed: u64, k: &(SocketAddrV4, SocketAddrV4)) -> u64 {
    let a = u64::from(u32::from(*k.0.ip())) << 16 | u64::from(k.0.port());
    let b = u64::from(u32::from(*k.1.ip())) << 16 | u64::from(k.1.port());
    let mut x = (a ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.rotate_left(29);
    x ^= x >> 32;
    x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
    x ^ (x >> 29)
}

impl FlowTable {
    /// A table for up to `max_flows` flows; `seed` randomises the hash.
    pub fn new(max_flows: usize, seed: u64) -> FlowTable {
        // Two keys per flow, load factor ≤ 1/2.
        let cap = (max_flows.max(1) * 4).next_power_of_two();
        let empty = Slot {
            key: (
                SocketAddrV4::new(0.into(), 0),
                SocketAddrV4::new(0.into(), 0),
            ),
            val: EMPTY,
        };
        FlowTable {
            index: vec![empty; cap],
            mask: cap - 1,
            flows: (0..max_flows).map(|_| None).collect(),
            free: (0..max_flows as u32).rev().collect(),
            seed,
            len: 0,
            sweep_at: 0,
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

    fn find_slot(&self, key: &(SocketAddrV4, SocketAddrV4)) -> Result<usize, usize> {
        let mut i = key_hash(self.seed, key) as usize & self.mask;
        loop {
            let s = &self.index[i];
            if s.val == EMPTY {
                return Err(i);
            }
            if s.key == *key {
                return Ok(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The flow a segment from `src` to `dst` belongs to, and its direction.
    #[inline]
    pub fn lookup(&self, src: SocketAddrV4, dst: SocketAddrV4) -> Option<(FlowId, Dir)> {
        let s = self.index[self.find_slot(&(src, dst)).ok()?];
        let dir = if s.val & 0x8000_0000 != 0 {
            Dir::S2C
        } else {
            Dir::C2S
        };
        Some((s.val & 0x7fff_ffff, dir))
    }

    /// The flow with this id.
    pub fn get(&self, id: FlowId) -> Option<&Flow> {
        self.flows.get(id as usize)?.as_ref()
    }

    /// The flow with this id, mutable.
    pub fn get_mut(&mut self, id: FlowId) -> Option<&mut Flow> {
        self.flows.get_mut(id as usize)?.as_mut()
    }

    /// Add a spliced flow, keyed by `(client, vip)` and `(server, local)`.
    pub fn insert(&mut self, params: SpliceParams, now: u64) -> Result<FlowId, InsertError> {
        let kc = (params.client, params.vip);
        let ks = (params.server, params.local);
        let (Err(sc), Err(_)) = (self.find_slot(&kc), self.find_slot(&ks)) else {
            return Err(InsertError::Exists);
        };
        if kc == ks {
            return Err(InsertError::Exists);
        }
        let id = self.free.pop().ok_or(InsertError::Full)?;
        self.index[sc] = Slot { key: kc, val: id };
        // Re-probe: the first insert may have taken the server key's slot
        // (ks != kc and ks was absent, so this finds a free slot).
        let ss = self.find_slot(&ks).unwrap_or_else(|s| s);
        self.index[ss] = Slot {
            key: ks,
            val: id | 0x8000_0000,
        };
        self.flows[id as usize] = Some(Flow::new(params, now));
        self.len += 1;
        Ok(id)
    }

    /// Remove a flow (both keys). Returns it.
    pub fn remove(&mut self, id: FlowId) -> Option<Flow> {
        let f = self.flows.get_mut(id as usize)?.take()?;
        self.unindex(&(f.params.client, f.params.vip));
        self.unindex(&(f.params.server, f.params.local));
        self.free.push(id);
        self.len -= 1;
        Some(f)
    }

    /// Backward-shift deletion: close the gap so probes stay unbroken.
    fn unindex(&mut self, key: &(SocketAddrV4, SocketAddrV4)) {
        let Ok(mut hole) = self.find_slot(key) else {
            return;
        };
        let mut i = hole;
        loop {
            i = (i + 1) & self.mask;
            let s = self.index[i];
            if s.val == EMPTY {
                break;
            }
            let home = key_hash(self.seed, &s.key) as usize & self.mask;
            // Move `s` into the hole if its home is not in (hole, i].
            let between = if hole <= i {
                hole < home && home <= i
            } else {
                hole < home || home <= i
            };
            if !between {
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
        for _ in 0..budget.min(n) {
            let id = self.sweep_at as FlowId;
            self.sweep_at = (self.sweep_at + 1) % n.max(1);
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
        removed
    }
}
