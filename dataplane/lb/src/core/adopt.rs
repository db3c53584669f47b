//! Cluster flow sync on the lcore: a spliced flow's record is published
//! once (and again when the sync asks, [`FlowSyncShared::generation`]);
//! a segment of a flow this lcore does not know is looked up instead of
//! reset, and the flow adopted from its record.
//!
//! ```text
//! client ACK/data, no flow, no valid handshake
//!    → lookup queued (pair, the sender's MAC), segment dropped: TCP retransmits
//!    → answer Found(record)  → flow installed (Spliced, both keys): the
//!                              retransmission is translated like any segment
//!      answer NotFound       → the usual answer for a stray segment, for 2 s
//!      answer Unavailable    → dropped quietly for 200 ms (Redis away)
//! install(record) (a dead peer's flow on an address this node took over)
//!    → flow installed on the lcore that owns the backend-side port
//! ```
//!
//! Lookups in flight are a direct-mapped table of [`PENDING`] entries (a
//! retransmission does not ask twice; a flood of stray ACKs is bounded by
//! [`FlowSyncShared::lookups_per_ms`] and the ring, counted). An adopted flow keeps no
//! state the record does not give: the translation is a function of the
//! record alone.

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;

use qsplice_engine::MAX_CLAIMS;
use qsplice_splice::flow::pack;

use super::*;

/// Lookups in flight per lcore (direct-mapped by pair).
pub(super) const PENDING: usize = 256;
/// Flows examined per tick when republishing.
const REPUBLISH_PER_TICK: usize = 1024;
/// A lookup not answered in this long (ms) may be asked again.
const PENDING_MS: u64 = 1000;
/// How long a "not found" answer stands (ms).
const NOT_FOUND_MS: u64 = 2000;
/// How long an "unavailable" answer stands (ms).
const UNAVAILABLE_MS: u64 = 200;
/// Answers taken per poll.
const ANSWERS_PER_POLL: usize = 64;
/// A flow installed from a dead node's records that sees no segment for
/// this long (ms) is removed (its records include flows that had closed).
const INSTALL_GRACE_MS: u64 = 30_000;
/// Installs waiting for a MAC (ARP) at most, and how long each waits (ms).
const RETRY_MAX: usize = 64;
const RETRY_MS: u64 = 2_000;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Look {
    Free,
    /// Asked at `at`; the sender's MAC for the install.
    Asked {
        at: u64,
        mac: MacAddr,
    },
    /// No record (until `until`).
    NotFound {
        until: u64,
    },
    /// Redis away (until `until`).
    Unavailable {
        until: u64,
    },
}

#[derive(Copy, Clone, Debug)]
struct Pending {
    key: (u64, u64),
    look: Look,
}

/// One lcore's flow-sync state.
#[derive(Debug)]
pub(super) struct Adoption {
    on: bool,
    pending: Vec<Pending>,
    /// Lookups left this tick.
    budget: u32,
    /// Claimed backend-side addresses (copy of the shared set).
    claimed: ArrayVec<Ipv4Addr, MAX_CLAIMS>,
    claims_seen: u64,
    /// The generation being (re)published and the sweep's position.
    generation: u64,
    cursor: usize,
    sweeping: bool,
    /// Installs whose client's or backend's MAC was not resolved yet:
    /// retried every tick until their deadline.
    retry: ArrayVec<(SpliceParams, u64), RETRY_MAX>,
}

impl Adoption {
    pub(super) fn new(on: bool) -> Adoption {
        Adoption {
            on,
            pending: if on {
                vec![
                    Pending {
                        key: (0, 0),
                        look: Look::Free,
                    };
                    PENDING
                ]
            } else {
                Vec::new()
            },
            budget: 0,
            claimed: ArrayVec::new(),
            claims_seen: u64::MAX,
            generation: 0,
            cursor: 0,
            sweeping: false,
            retry: ArrayVec::new(),
        }
    }

    #[inline]
    pub(super) fn on(&self) -> bool {
        self.on
    }

    /// Is `ip` a backend-side address this node took over?
    #[inline]
    pub(super) fn claims(&self, ip: Ipv4Addr) -> bool {
        !self.claimed.is_empty() && self.claimed.contains(&ip)
    }

    fn slot(key: (u64, u64)) -> usize {
        let h = (key.0 ^ key.1.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> 56) as usize % PENDING
    }
}

impl<F: Frame> LbCore<F> {
    /// Queue spliced flow `id`'s record for the cluster.
    pub(super) fn sync_publish(&mut self, id: FlowId) {
        let Some(fs) = self.shared.flowsync.as_ref() else {
            return;
        };
        let Some(p) = self.flows.get(id).map(|fl| fl.params) else {
            return;
        };
        // A flow with an IPv6 leg is not shared: its stand-ins mean
        // nothing on another node (counted; see `crate::six`).
        if crate::six::is_standin(*p.client.ip()) || crate::six::is_standin(*p.server.ip()) {
            self.c.flows_not_shared += 1;
            self.meta[id as usize].pub_gen = self.adopt.generation as u32;
            return;
        }
        let q = &fs.out[usize::from(self.conf.lcore)];
        if q.push(p).is_ok() {
            self.c.flows_published += 1;
            self.meta[id as usize].pub_gen = self.adopt.generation as u32;
        } else {
            // Left unpublished: the next republish sweep tries again.
            self.c.flows_publish_full += 1;
            self.meta[id as usize].pub_gen = (self.adopt.generation as u32).wrapping_sub(1);
            // (From the start: a sweep under way may be past this flow.)
            self.adopt.sweeping = true;
            self.adopt.cursor = 0;
        }
    }

    /// A client segment for no flow: `Some(f)` to go on as before (a
    /// handshake, or the cluster knows no such flow); `None` when it was
    /// taken (dropped while the flow is looked up).
    pub(super) fn adopt_client(&mut self, f: F, s: &Seg, now: u64) -> Option<F> {
        if self.handshake_valid(s, now) || crate::six::is_standin(*s.src.ip()) {
            return Some(f);
        }
        let i = Adoption::slot(s.key);
        let e = self.adopt.pending[i];
        if e.key == s.key {
            match e.look {
                Look::NotFound { until } if now < until => return Some(f),
                Look::Unavailable { until } if now < until => {
                    self.c.adopt_waiting += 1;
                    return None;
                }
                Look::Asked { at, .. } if now < at + PENDING_MS * self.ms => {
                    self.c.adopt_waiting += 1;
                    return None;
                }
                _ => {}
            }
        }
        if s.flags.contains(TcpFlags::RST) {
            // Nothing to adopt for a RST: the usual path (a half-open
            // entry's reset, else counted).
            return Some(f);
        }
        if self.resetting {
            // Shutting down: the flows left to the cluster are not ours.
            self.c.adopt_waiting += 1;
            return None;
        }
        let fs = self.shared.flowsync.as_ref()?;
        if self.adopt.budget == 0 {
            self.c.adopt_lookup_full += 1;
            return None;
        }
        if fs.lookups[usize::from(self.conf.lcore)]
            .push((s.src, s.dst))
            .is_err()
        {
            self.c.adopt_lookup_full += 1;
            return None;
        }
        self.adopt.budget -= 1;
        self.c.adopt_lookups += 1;
        self.adopt.pending[i] = Pending {
            key: s.key,
            look: Look::Asked {
                at: now,
                mac: s.eth_src,
            },
        };
        None
    }

    /// Take the sync's answers. Returns whether there were any.
    pub(super) fn adopt_answers<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        now: u64,
    ) -> bool {
        let Some(fs) = self.shared.flowsync.clone() else {
            return false;
        };
        let q = &fs.answers[usize::from(self.conf.lcore)];
        if q.is_empty() {
            return false;
        }
        let ms = self.ms;
        for _ in 0..ANSWERS_PER_POLL {
            let Some(a) = q.pop() else { break };
            match a {
                Adopt::Found(p) => {
                    let key = (pack(p.client), pack(p.vip));
                    let i = Adoption::slot(key);
                    let e = self.adopt.pending[i];
                    let mac = match e.look {
                        Look::Asked { mac, .. } if e.key == key => Some(mac),
                        _ => None,
                    };
                    if e.key == key {
                        self.adopt.pending[i].look = Look::Free;
                    }
                    if self.install(io, &p, mac, now) == Installed::Yes {
                        self.c.adopted += 1;
                    }
                }
                Adopt::Install(p) => match self.install(io, &p, None, now) {
                    Installed::Yes => self.c.adopt_installed += 1,
                    Installed::Unresolved => {
                        // ARP is asked meanwhile: retried at the next ticks.
                        let _ = self.adopt.retry.try_push((p, now + RETRY_MS * ms));
                    }
                    Installed::No => {}
                },
                Adopt::NotFound((c, v)) | Adopt::Unavailable((c, v)) => {
                    let key = (pack(c), pack(v));
                    let i = Adoption::slot(key);
                    let look = if matches!(a, Adopt::NotFound(_)) {
                        self.c.adopt_not_found += 1;
                        Look::NotFound {
                            until: now + NOT_FOUND_MS * ms,
                        }
                    } else {
                        self.c.adopt_unavailable += 1;
                        Look::Unavailable {
                            until: now + UNAVAILABLE_MS * ms,
                        }
                    };
                    self.adopt.pending[i] = Pending { key, look };
                }
            }
        }
        true
    }

    /// Install an adopted flow from its record. `client_mac`: the MAC its
    /// client's segments come from (else the client port's next hop).
    fn install<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        p: &SpliceParams,
        client_mac: Option<MacAddr>,
        now: u64,
    ) -> Installed {
        let Some(pool) = self.vip_pool(p.vip) else {
            self.c.adopt_no_vip += 1;
            return Installed::No;
        };
        let (cp, bp) = (self.conf.client_port, self.conf.backend_port);
        let client_mac_given = client_mac;
        let client_mac = match client_mac {
            Some(m) => Some(m),
            None => self.edge.resolve(io, cp, *p.client.ip()),
        };
        let (Some(client_mac), Some(backend_mac)) =
            (client_mac, self.edge.resolve(io, bp, *p.server.ip()))
        else {
            // ARP is asked meanwhile; the next segment looks it up again
            // (an install is retried by the caller).
            self.c.adopt_unresolved += 1;
            return Installed::Unresolved;
        };
        let backend = self
            .pools
            .get(pool)
            .and_then(|snap| snap.backends.iter().position(|b| b.addr == p.server))
            .map_or(u16::MAX, |b| b as u16);
        let id = match self.flows.insert(*p, now) {
            Ok(id) => id,
            Err(InsertError::Exists) => return Installed::No,
            Err(InsertError::Full) => {
                self.c.flow_table_full += 1;
                return Installed::No;
            }
        };
        if client_mac_given.is_none() {
            // Installed ahead of any segment (a dead node's records, some
            // of flows that had closed): gone after a short grace unless a
            // segment comes. (Saturating: on a clock younger than the idle
            // timeout, the grace is the idle timeout.)
            let grace = INSTALL_GRACE_MS.saturating_mul(self.ms);
            if let Some(fl) = self.flows.get_mut(id) {
                fl.last_seen = now
                    .saturating_sub(self.timers.idle)
                    .saturating_add(grace.min(self.timers.idle));
            }
        }
        self.meta[id as usize] = Meta {
            phase: Phase::Spliced,
            pool: pool as u16,
            backend,
            client_mac,
            backend_mac,
            born: now,
            attempt_at: now,
            spliced_at: now,
            adopted: true,
            pub_gen: self.adopt.generation as u32,
            ..Meta::FREE
        };
        self.c.flows_adopted += 1;
        self.bstat(pool, usize::from(backend), |st| st.active += 1);
        if let Some(l) = self
            .cursors
            .get_mut(pool)
            .and_then(|c| c.local_conns.get_mut(usize::from(backend)))
        {
            *l += 1;
        }
        Installed::Yes
    }

    /// Millisecond work: the lookup budget, the claimed-address copy, the
    /// republish sweep.
    pub(super) fn adopt_tick<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, now: u64) {
        let Some(fs) = self.shared.flowsync.clone() else {
            return;
        };
        if !self.adopt.retry.is_empty() {
            let pending = std::mem::take(&mut self.adopt.retry);
            for (p, deadline) in pending {
                match self.install(io, &p, None, now) {
                    Installed::Yes => self.c.adopt_installed += 1,
                    Installed::Unresolved if now < deadline => {
                        let _ = self.adopt.retry.try_push((p, deadline));
                    }
                    _ => {}
                }
            }
        }
        self.adopt.budget = fs.lookups_per_ms;
        if fs.claims.version() != self.adopt.claims_seen {
            if let Some((v, list)) = fs.claims.read() {
                self.adopt.claims_seen = v;
                self.adopt.claimed = list;
            }
        }
        let g = fs.generation.load(Ordering::Acquire);
        if g != self.adopt.generation {
            self.adopt.generation = g;
            self.adopt.sweeping = true;
            self.adopt.cursor = 0;
        }
        if !self.adopt.sweeping {
            return;
        }
        let q = &fs.out[usize::from(self.conf.lcore)];
        let gen = g as u32;
        let end = (self.adopt.cursor + REPUBLISH_PER_TICK).min(self.meta.len());
        while self.adopt.cursor < end {
            let id = self.adopt.cursor;
            let m = self.meta[id];
            if m.phase == Phase::Spliced && !m.closed && m.pub_gen != gen {
                let Some(p) = self.flows.get(id as FlowId).map(|fl| fl.params) else {
                    self.adopt.cursor += 1;
                    continue;
                };
                if q.push(p).is_err() {
                    return; // full: go on at the next tick
                }
                self.meta[id].pub_gen = gen;
                self.c.flows_republished += 1;
            }
            self.adopt.cursor += 1;
        }
        if self.adopt.cursor >= self.meta.len() {
            self.adopt.cursor = 0;
            self.adopt.sweeping = false;
        }
    }
}

/// What [`LbCore::install`] did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Installed {
    Yes,
    /// The client's or the backend's MAC is not known yet.
    Unresolved,
    /// Not installed (no such VIP here, already there, table full).
    No,
}
