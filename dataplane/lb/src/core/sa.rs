//! Session-aware dispatch for TLS pass-through VIPs (`policy =
//! "session-aware"`): the backend is chosen from the ClientHello.
//!
//! The handshake ACK creates no state (as for every VIP: SYN cookies).
//! The client's first data segments — its ClientHello, one or two
//! segments (post-quantum key shares make it span two) — are held, not
//! acknowledged, in a small per-lcore table keyed by the 4-tuple, until
//! `qsplice_wire::tls::assemble_segments` has the whole hello (or a
//! second has passed, or it is not TLS). Then the offer's session keys
//! (`qsplice_sessions::identity::Offer`) are looked up in the table the
//! control thread publishes: the least recently used idle candidate that
//! can take a connection wins; with none, the VIP's scheduler (round
//! robin) decides and the fallback is counted. The connection then opens
//! exactly like any other (cookie-checked accept, backend SYN, held
//! segments released after the backend's SYN-ACK).
//!
//! Learning: the flow remembers its offer until the backend's first data
//! segment, read as a ServerHello (`Outcome`): the keys the backend now
//! holds (echoed or new TLS 1.2 session ID, accepted ticket or PSK
//! identity, and the ticket's key name) go to the control thread as
//! events on a bounded lock-free queue; the control thread updates the
//! server mapping table and republishes it.
//!
//! BUSY at session grain: while a connection serves a session key on a
//! backend (from its ServerHello on: the session was created or resumed
//! there; a resumption the backend refuses makes the control thread forget
//! that row), the key's counter in the shared [`BusyCounts`] is raised — one
//! atomic add at dispatch or learning and one at the end, not per packet —
//! so every lcore skips that candidate at once, without waiting for a
//! publication. The end (both FINs, a RST, or removal) also sends a close
//! event: the row's timestamp becomes the time the backend last finished
//! serving the session, which orders the candidates (LRU).

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use arrayvec::ArrayVec;
use crossbeam::queue::ArrayQueue;
use qsplice_engine::Io;
use qsplice_netdev::{Frame, Queue};
use qsplice_sessions::identity::{Offer, Outcome};
use qsplice_sessions::{choose, BusyCounts, Candidates, Choice, SessionKey};
use qsplice_splice::flow::FlowId;
use qsplice_wire::tls::{assemble_segments, ClientHello, HelloAssembler, ServerHello};
use qsplice_wire::TcpFlags;

use super::{LbCore, Seg};
use crate::access::SaDecision;

/// Connections one lcore holds while their ClientHello completes.
pub const MAX_PENDING: usize = 1024;
/// Segments held per pending connection.
const MAX_PIECES: usize = 4;
/// Longest HTTP request head a content-aware VIP waits for.
const HTTP_HEAD_MAX: usize = 8192;
/// Clients remembered per lcore for the last-backend hint.
const RECENT_MAX: usize = 65_536;
/// A ClientHello not whole after this long is dispatched by the scheduler.
const HELLO_WAIT_MS: u64 = 1000;

/// Per-pool candidate lists, as the control thread publishes them.
pub type SessionSnap = Vec<Candidates>;

/// What lcores tell the control thread.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SessionEvent {
    /// Pool (VIP) index.
    pub pool: u16,
    /// The session key.
    pub key: SessionKey,
    /// The backend that holds it.
    pub backend: u16,
    /// What happened.
    pub kind: EventKind,
    /// When the lcore queued it, µs since [`SessionShared::epoch`] (the
    /// control thread measures how long until the lcores see it).
    pub at_us: u64,
}

/// What a [`SessionEvent`] reports.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A connection started serving the session on the backend (its
    /// ServerHello created or resumed it).
    Open,
    /// That connection ended.
    Close,
    /// The table sent a resumption there and the backend refused it: it
    /// no longer holds the session.
    Refused,
}

/// A flow waiting for its ServerHello.
#[derive(Debug)]
pub(super) struct Learning {
    pool: u16,
    offer: Offer,
    /// The table chose the backend.
    table_hit: bool,
    /// The session key (not a ticket key name) that chose it.
    hit: Option<SessionKey>,
}

/// Shared between the control thread and the lcores.
#[derive(Debug)]
pub struct SessionShared {
    /// The published table (per pool).
    pub snap: ArcSwap<SessionSnap>,
    /// Learning events, lcores → control thread.
    pub events: ArrayQueue<SessionEvent>,
    /// The secret keying session hashes (the same on every lcore).
    pub secret: (u64, u64),
    /// The BUSY column at session grain (exact for every lcore at once).
    pub busy: BusyCounts,
    /// The clock origin of [`SessionEvent::at_us`].
    pub epoch: Instant,
}

impl SessionShared {
    /// An empty table for `pools` pools; busy counters sized for `flows`
    /// concurrent connections (all lcores).
    pub fn new(pools: usize, secret: (u64, u64), queue: usize, flows: usize) -> Arc<SessionShared> {
        Arc::new(SessionShared {
            snap: ArcSwap::from_pointee(vec![Candidates::default(); pools]),
            events: ArrayQueue::new(queue.max(1)),
            secret,
            busy: BusyCounts::new(flows),
            epoch: Instant::now(),
        })
    }

    /// Now, in [`SessionEvent::at_us`] units.
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

pub(super) struct Pending<F> {
    /// (sequence number, frame, payload offset, payload length)
    pieces: ArrayVec<(u32, F, usize, usize), MAX_PIECES>,
    base: u32,
    pool: usize,
    client: std::net::Ipv4Addr,
    deadline: u64,
}

/// The session keys one connection is serving (BUSY while it lasts).
#[derive(Debug)]
struct Serving {
    pool: u16,
    backend: u16,
    keys: ArrayVec<SessionKey, 6>,
}

/// The lcore's session-aware state (a field of [`LbCore`]).
pub(super) struct SessionAware<F> {
    pub(super) shared: Option<Arc<SessionShared>>,
    pending: HashMap<(SocketAddrV4, SocketAddrV4), Pending<F>>,
    /// Flows waiting for their ServerHello.
    learning: HashMap<FlowId, Learning>,
    /// Connections serving a known session now.
    serving: HashMap<FlowId, Serving>,
    /// The backend this lcore last gave each client (per pool): the one
    /// that issued the client's newest ticket. Tried for an offer the table
    /// does not know yet (a TLS 1.3 ticket travels encrypted, so its key
    /// name is learned only from a first accepted resumption).
    recent: HashMap<(u16, std::net::Ipv4Addr), u16>,
    scratch: HelloAssembler,
    /// The held HTTP request head of a content-aware VIP (reused).
    bytes: Vec<u8>,
    /// Rotation among a content rule's backends.
    rr: usize,
}

impl<F> core::fmt::Debug for SessionAware<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SessionAware")
            .field("pending", &self.pending.len())
            .field("learning", &self.learning.len())
            .field("serving", &self.serving.len())
            .finish_non_exhaustive()
    }
}

impl<F> SessionAware<F> {
    /// No flow waits for its ServerHello.
    pub(super) fn is_idle(&self) -> bool {
        self.learning.is_empty()
    }

    /// No flow serves a known session (BUSY).
    pub(super) fn serves_none(&self) -> bool {
        self.serving.is_empty()
    }

    pub(super) fn new(shared: Option<Arc<SessionShared>>) -> Self {
        SessionAware {
            shared,
            pending: HashMap::new(),
            learning: HashMap::new(),
            serving: HashMap::new(),
            recent: HashMap::new(),
            scratch: HelloAssembler::new(),
            bytes: Vec::with_capacity(HTTP_HEAD_MAX),
            rr: 0,
        }
    }
}

/// Byte offset of a segment's TCP payload in its frame.
fn payload_off(data: &[u8], l3: usize) -> Option<usize> {
    let ihl = usize::from(*data.get(l3)? & 0x0f) * 4;
    let doff = usize::from(*data.get(l3 + ihl + 12)? >> 4) * 4;
    Some(l3 + ihl + doff)
}

impl<F: Frame> LbCore<F> {
    /// A client segment for a session-aware VIP (pool `pool`) with no flow.
    /// Returns the frame when the ordinary path should take it.
    pub(super) fn sa_client<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        f: F,
        l3: usize,
        s: &Seg,
        pool: usize,
        now: u64,
    ) -> Option<F> {
        let content = self.content_rules(s.dst).is_some();
        if self.sa.shared.is_none() && !content {
            return Some(f);
        }
        let key = (s.src, s.dst);
        let data_or_fin = s.payload > 0 || s.flags.contains(TcpFlags::FIN);
        let plain_ack =
            s.flags.contains(TcpFlags::ACK) && !s.flags.intersects(TcpFlags::SYN | TcpFlags::RST);
        if !plain_ack {
            if s.flags.contains(TcpFlags::RST) {
                self.sa.pending.remove(&key);
            }
            return Some(f);
        }
        if !self.sa.pending.contains_key(&key) {
            if !data_or_fin {
                // The handshake's last ACK: wait for the hello (nothing is
                // kept; the SYN cache entry or cookie is checked again on
                // the first data segment). A forged one is counted.
                if self.handshake_valid(s, now) {
                    self.c.sa_ack_waiting += 1;
                } else {
                    self.c.cookie_bad += 1;
                }
                return None;
            }
            if s.flags.contains(TcpFlags::FIN) && s.payload == 0 {
                return Some(f);
            }
            if self.sa.pending.len() >= MAX_PENDING {
                self.c.sa_pending_full += 1;
                return Some(f);
            }
            // Only the first data segment (seq = client ISN + 1) carries a
            // checkable cookie; later ones wait for it.
            if !self.handshake_valid(s, now) {
                self.c.cookie_bad += 1;
                return None;
            }
            self.sa.pending.insert(
                key,
                Pending {
                    pieces: ArrayVec::new(),
                    base: s.seq,
                    pool,
                    client: *s.src.ip(),
                    deadline: now + HELLO_WAIT_MS * self.ms,
                },
            );
        }
        let Some(p) = self.sa.pending.get_mut(&key) else {
            return Some(f);
        };
        if p.pieces.is_full() {
            self.c.held_dropped += 1;
            return None;
        }
        let off = payload_off(f.data(), l3)?;
        let len = payload_len(f.data(), l3);
        p.pieces.push((s.seq, f, off, len));
        let fin = s.flags.contains(TcpFlags::FIN);
        let whole = if content {
            http_head(&mut self.sa.bytes, p).is_some()
        } else {
            !matches!(assemble(&mut self.sa.scratch, p), Ok(None))
        };
        if !whole && !fin && !p.pieces.is_full() {
            return None;
        }
        self.sa_decide(io, key, now);
        None
    }

    /// The hello is whole (or will not be): choose and open the connection.
    fn sa_decide<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        key: (SocketAddrV4, SocketAddrV4),
        now: u64,
    ) {
        let Some(p) = self.sa.pending.remove(&key) else {
            return;
        };
        if let Some(rules) = self.content_rules(key.1) {
            let forced = http_head(&mut self.sa.bytes, &p)
                .and_then(|n| self.content_pick(&rules, p.pool, n));
            return self.sa_open(io, p, forced, None, SaDecision::None, now);
        }
        let Some(shared) = self.sa.shared.clone() else {
            return;
        };
        let _ = assemble(&mut self.sa.scratch, &p);
        let offer = match self.sa.scratch.message().map(ClientHello::parse) {
            Some(Ok(ch)) => Offer::of(shared.secret, &ch),
            _ => {
                self.c.sa_not_tls += 1;
                Offer::default()
            }
        };
        // Table lookup (`choose`): the least recently used candidate that is
        // not serving the session right now (shared BUSY counters) and can
        // take a connection (up, not draining, under its limit).
        let mut forced = None;
        let mut hit = None;
        let mut table_hit = false;
        // No session offered: a new session, the scheduler's choice.
        let mut decision = SaDecision::Miss;
        if !offer.is_empty() {
            self.c.sa_lookups += 1;
            let snap = shared.snap.load();
            let pool = p.pool as u16;
            let choice = match (
                snap.get(p.pool),
                self.pools.get(p.pool),
                self.cursors.get(p.pool),
            ) {
                (Some(table), Some(pool_snap), Some(cur)) => choose(
                    &offer,
                    table,
                    |k, b| shared.busy.get(pool, k, b) > 0,
                    |b| pool_snap.can_take(usize::from(b), cur),
                ),
                _ => Choice::Miss,
            };
            match choice {
                Choice::Hit { backend, key } => {
                    self.c.sa_hits += 1;
                    decision = SaDecision::Hit;
                    forced = Some(usize::from(backend));
                    hit = key;
                    table_hit = true;
                }
                Choice::Busy { session } => {
                    self.c.sa_fallback_busy += 1;
                    decision = SaDecision::Fallback;
                    if session {
                        self.c.sa_fallback_session_busy += 1;
                    } else {
                        self.c.sa_fallback_backend += 1;
                    }
                }
                Choice::Miss => {
                    self.c.sa_misses += 1;
                    // Only a ticket or PSK the table cannot place yet (its
                    // key name unlearned) goes to the client's last backend;
                    // an unknown session ID (TLS 1.3 clients send a random
                    // one) is a new session: the scheduler keeps those
                    // balanced.
                    let ticket = !offer.psk.is_empty() || offer.ticket.is_some();
                    let hint = ticket
                        .then(|| self.sa.recent.get(&(pool, *key.0.ip())).copied())
                        .flatten();
                    if let (Some(b), Some(pool_snap), Some(cur)) =
                        (hint, self.pools.get(p.pool), self.cursors.get(p.pool))
                    {
                        if pool_snap.can_take(usize::from(b), cur) {
                            forced = Some(usize::from(b));
                            self.c.sa_client_hint += 1;
                        }
                    }
                }
            }
        }
        let learn = Learning {
            pool: p.pool as u16,
            offer,
            table_hit,
            hit,
        };
        self.sa_open(io, p, forced, Some(learn), decision, now);
    }

    /// Opens a held connection: accept with the first segment (it carries
    /// the cookie) to `forced` (else the scheduler), hold the rest, and
    /// wait for the ServerHello when `learn` is given.
    fn sa_open<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        mut p: Pending<F>,
        forced: Option<usize>,
        learn: Option<Learning>,
        decision: SaDecision,
        now: u64,
    ) {
        let client = p.client;
        let base = p.base;
        p.pieces
            .sort_by_key(|(seq, _, _, _)| seq.wrapping_sub(base));
        let mut it = p.pieces.into_iter();
        let Some((_, first, _, _)) = it.next() else {
            return;
        };
        let l3 = match qsplice_wire::ethernet_l3(first.data()) {
            Ok((_, l3, _)) => l3,
            Err(_) => return,
        };
        let Some((s, opts)) = self.parse(&first, l3) else {
            return;
        };
        let pool = p.pool;
        let Some(id) = self.accept_forced(io, first, &s, &opts, pool, now, forced) else {
            return;
        };
        if self.sa.recent.len() >= RECENT_MAX {
            self.sa.recent.clear();
        }
        if let Some(m) = self.meta.get_mut(id as usize) {
            m.sa = decision;
        }
        let backend = self.meta.get(id as usize).map_or(0, |m| m.backend);
        self.sa.recent.insert((pool as u16, client), backend);
        for (_, f, _, _) in it {
            self.hold(id, f);
        }
        // Learn from the ServerHello even when nothing was offered: a
        // TLS 1.2 server names its new session there.
        if let Some(l) = learn {
            self.sa.learning.insert(id, l);
        }
    }

    /// Hellos waiting too long: dispatch what is there.
    pub(super) fn sa_timers<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, now: u64) {
        if self.sa.pending.is_empty() {
            return;
        }
        let due: ArrayVec<(SocketAddrV4, SocketAddrV4), 64> = self
            .sa
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| *k)
            .take(64)
            .collect();
        for k in due {
            self.c.sa_hello_timeout += 1;
            self.sa_decide(io, k, now);
        }
    }

    /// A backend → client data segment of flow `id` before translation:
    /// the first one is read as the ServerHello.
    pub(super) fn sa_learn(&mut self, id: FlowId, data: &[u8], l3: usize) {
        if payload_len(data, l3) == 0 || !self.sa.learning.contains_key(&id) {
            return;
        }
        let Some(l) = self.sa.learning.remove(&id) else {
            return;
        };
        let Some(shared) = self.sa.shared.clone() else {
            return;
        };
        let Some(off) = payload_off(data, l3) else {
            return;
        };
        let end = data.len().min(off + payload_len(data, l3));
        let payload = data.get(off..end).unwrap_or(&[]);
        self.sa.scratch.reset();
        if !matches!(self.sa.scratch.push(payload), Ok(Some(_))) {
            self.c.sa_no_server_hello += 1;
            return;
        }
        let Some(Ok(sh)) = self.sa.scratch.message().map(ServerHello::parse) else {
            self.c.sa_no_server_hello += 1;
            return;
        };
        let (pool, offer) = (l.pool, &l.offer);
        let out = Outcome::of(shared.secret, offer, &sh);
        if out.retry {
            // The real ServerHello follows the client's second hello.
            self.sa.learning.insert(id, l);
            return;
        }
        let backend = self.meta.get(id as usize).map(|m| m.backend).unwrap_or(0);
        let resumed = out.resumed;
        if resumed {
            self.c.sa_resumed += 1;
            self.c.sa_hit_resumed += u64::from(l.table_hit);
        } else if let Some(k) = l.hit {
            // The table sent the session to a backend that no longer has
            // it (its cache dropped it): forget that row.
            self.c.sa_refused += 1;
            self.sa_event(pool, k, backend, EventKind::Refused);
        }
        self.bstat(usize::from(pool), usize::from(backend), |st| {
            if resumed {
                st.tls_resumed += 1;
            } else {
                st.tls_new += 1;
            }
        });
        for key in out.learn {
            self.c.sa_learned += 1;
            if offer.is_key_name(key) {
                // the backend's ticket key: learned, never busy
                self.sa_event(pool, key, backend, EventKind::Open);
                self.sa_event(pool, key, backend, EventKind::Close);
            } else {
                self.sa_serve(id, pool, backend, key);
            }
        }
    }

    fn sa_event(&mut self, pool: u16, key: SessionKey, backend: u16, kind: EventKind) {
        let Some(shared) = self.sa.shared.as_ref() else {
            return;
        };
        let ev = SessionEvent {
            pool,
            key,
            backend,
            kind,
            at_us: shared.now_us(),
        };
        if shared.events.push(ev).is_err() {
            self.c.sa_events_full += 1;
        }
    }

    /// Flow `id` serves session `key` on `backend` from now on: BUSY for
    /// every lcore at once, and an open event for the table.
    fn sa_serve(&mut self, id: FlowId, pool: u16, backend: u16, key: SessionKey) {
        let Some(shared) = self.sa.shared.as_ref() else {
            return;
        };
        let s = self.sa.serving.entry(id).or_insert_with(|| Serving {
            pool,
            backend,
            keys: ArrayVec::new(),
        });
        if s.keys.contains(&key) || s.keys.is_full() {
            return;
        }
        s.keys.push(key);
        shared.busy.enter(pool, key, backend);
        self.sa_event(pool, key, backend, EventKind::Open);
    }

    /// Flow `id` no longer serves its sessions (both sides closed, reset,
    /// or removed): not BUSY any more, and the rows' timestamps move to now.
    pub(super) fn sa_release(&mut self, id: FlowId) {
        if self.sa.serving.is_empty() {
            return;
        }
        let (Some(s), Some(shared)) = (self.sa.serving.remove(&id), self.sa.shared.as_ref()) else {
            return;
        };
        let at_us = shared.now_us();
        for key in s.keys {
            shared.busy.leave(s.pool, key, s.backend);
            let ev = SessionEvent {
                pool: s.pool,
                key,
                backend: s.backend,
                kind: EventKind::Close,
                at_us,
            };
            if shared.events.push(ev).is_err() {
                self.c.sa_events_full += 1;
            }
        }
    }

    /// Connecting flow `id` became `nid` (redispatched to another backend):
    /// its pending learning follows. A table hit no longer stands for the
    /// backend the flow goes to, so it is learned as a plain connection.
    pub(super) fn sa_rekey(&mut self, id: FlowId, nid: FlowId) {
        if let Some(mut l) = self.sa.learning.remove(&id) {
            l.table_hit = false;
            l.hit = None;
            self.sa.learning.insert(nid, l);
        }
    }

    /// Forget a flow's pending learning and release its sessions (it ended).
    pub(super) fn sa_forget(&mut self, id: FlowId) {
        self.sa.learning.remove(&id);
        self.sa_release(id);
    }
}

/// A content-aware dispatch rule (LARD-style): every criterion given must
/// match; the request then goes to one of `backends` that can take it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentRule {
    /// `Host` header (lowercase, without port).
    pub host: Option<String>,
    /// Request-target prefix.
    pub path_prefix: Option<String>,
    /// A cookie `name=value` in the `Cookie` header.
    pub cookie: Option<(String, String)>,
    /// Backend indices in the VIP's pool.
    pub backends: Vec<u16>,
}

/// The rules of one content-aware VIP.
#[derive(Clone, Debug)]
pub struct ContentVip {
    /// The VIP.
    pub addr: SocketAddrV4,
    /// Rules, first match wins; shared by every lcore and replaced whole
    /// by a reload (a decision takes the current set).
    pub rules: Arc<arc_swap::ArcSwap<Vec<ContentRule>>>,
}

/// The held pieces of `p` in order into `buf`; the head's length once
/// `\r\n\r\n` is in (or `None`).
fn http_head<F: Frame>(buf: &mut Vec<u8>, p: &Pending<F>) -> Option<usize> {
    buf.clear();
    let mut order: ArrayVec<usize, MAX_PIECES> = (0..p.pieces.len()).collect();
    order.sort_by_key(|&i| p.pieces[i].0.wrapping_sub(p.base));
    for i in order {
        let (seq, fr, off, len) = &p.pieces[i];
        let d = fr.data();
        let piece = d.get(*off..d.len().min(off + len)).unwrap_or(&[]);
        let at = seq.wrapping_sub(p.base) as usize;
        if at > buf.len() {
            break;
        }
        let skip = buf.len() - at;
        if skip < piece.len() {
            let room = HTTP_HEAD_MAX.saturating_sub(buf.len());
            let take = (piece.len() - skip).min(room);
            buf.extend_from_slice(&piece[skip..skip + take]);
        }
    }
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Does `rule` match the request head `head`?
pub fn rule_matches(rule: &ContentRule, head: &[u8]) -> bool {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let Some(req) = lines.next() else {
        return false;
    };
    let mut parts = req.split(|&b| b == b' ');
    let (Some(_method), Some(target)) = (parts.next(), parts.next()) else {
        return false;
    };
    let (mut host, mut cookie) = (None, None);
    for l in lines {
        let Some(c) = l.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&l[..c], l[c + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"host") {
            host = Some(value);
        } else if name.eq_ignore_ascii_case(b"cookie") {
            cookie = Some(value);
        }
    }
    if let Some(h) = &rule.host {
        let got = host.map(|v| v.split(|&b| b == b':').next().unwrap_or(v));
        if !got.is_some_and(|g| g.eq_ignore_ascii_case(h.as_bytes())) {
            return false;
        }
    }
    if let Some(pre) = &rule.path_prefix {
        if !target.starts_with(pre.as_bytes()) {
            return false;
        }
    }
    if let Some((name, value)) = &rule.cookie {
        let found = cookie.is_some_and(|c| {
            c.split(|&b| b == b';').any(|kv| {
                let kv = kv.trim_ascii();
                kv.len() == name.len() + 1 + value.len()
                    && kv.starts_with(name.as_bytes())
                    && kv[name.len()] == b'='
                    && kv.ends_with(value.as_bytes())
            })
        });
        if !found {
            return false;
        }
    }
    true
}

impl<F: Frame> LbCore<F> {
    /// The content rules of VIP `vip`, if it has any (None also when its
    /// rules were all removed live: its connections are spliced at once
    /// again, not held for the request).
    pub(super) fn content_rules(&self, vip: SocketAddrV4) -> Option<Arc<Vec<ContentRule>>> {
        self.vix
            .get(vip)
            .and_then(super::VipEntry::content)
            .and_then(|i| self.conf.content.get(i))
            .map(|c| c.rules.load_full())
            .filter(|r| !r.is_empty())
    }

    /// The backend for the held head (`len` bytes of `self.sa.bytes`).
    fn content_pick(&mut self, rules: &[ContentRule], pool: usize, len: usize) -> Option<usize> {
        let head = &self.sa.bytes[..len.min(self.sa.bytes.len())];
        let Some(rule) = rules.iter().find(|r| rule_matches(r, head)) else {
            self.c.ca_unmatched += 1;
            return None;
        };
        let (snap, cur) = (self.pools.get(pool)?, self.cursors.get(pool)?);
        let n = rule.backends.len();
        for k in 0..n {
            let b = usize::from(rule.backends[(self.sa.rr + k) % n]);
            if snap.can_take(b, cur) {
                self.sa.rr = self.sa.rr.wrapping_add(k + 1);
                self.c.ca_matched += 1;
                return Some(b);
            }
        }
        self.c.ca_fallback += 1;
        None
    }
}

/// Runs the held pieces of `p` through the hello assembler.
fn assemble<F: Frame>(
    asm: &mut HelloAssembler,
    p: &Pending<F>,
) -> Result<Option<usize>, qsplice_wire::tls::TlsError> {
    let pieces: ArrayVec<(u32, &[u8]), MAX_PIECES> = p
        .pieces
        .iter()
        .map(|(seq, fr, off, len)| {
            let d = fr.data();
            (*seq, d.get(*off..d.len().min(off + len)).unwrap_or(&[]))
        })
        .collect();
    assemble_segments(asm, p.base, &pieces)
}

/// TCP payload length of the IPv4 packet at `l3`.
fn payload_len(data: &[u8], l3: usize) -> usize {
    let (Some(&v), Some(tl_hi), Some(tl_lo)) = (data.get(l3), data.get(l3 + 2), data.get(l3 + 3))
    else {
        return 0;
    };
    let ihl = usize::from(v & 0x0f) * 4;
    let total = usize::from(*tl_hi) << 8 | usize::from(*tl_lo);
    let doff = data
        .get(l3 + ihl + 12)
        .map_or(0, |b| usize::from(b >> 4) * 4);
    total.saturating_sub(ihl + doff)
}
