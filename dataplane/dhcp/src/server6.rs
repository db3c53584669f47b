//! A DHCPv6 server core (RFC 8415 §18.3), sans-IO: messages in, replies
//! out, time as an argument. Addresses (IA_NA) come from one range and
//! delegated prefixes (IA_PD) from one aggregate; bindings are kept per
//! (client DUID, IAID). Relayed messages (RELAY-FORW, any depth up to 8)
//! are answered inside RELAY-REPL with the Interface-ID echoed (§19.3).
//!
//! All memory is allocated in [`Server6::new`]: the binding tables are
//! sized to the pools and the owner index is created with that capacity,
//! so no message allocates.
//!
//! What the server does per message (client ones; anything else is
//! refused with a [`Reject6`] reason):
//!
//! | message | needs | reply |
//! |---|---|---|
//! | SOLICIT | Client ID, no Server ID | ADVERTISE offering an address / prefix per IA (held `offer_hold_s`), or REPLY binding them when the client asked for Rapid Commit and it is on |
//! | REQUEST | our Server ID | REPLY binding the IAs (the offered lease, or a new one) |
//! | RENEW / REBIND | ours / no Server ID | REPLY extending the IAs' bindings; an IA with none gets NoBinding |
//! | RELEASE / DECLINE | our Server ID | REPLY Success; the leases are freed / set aside |
//! | CONFIRM | — | REPLY Success when the addresses are in the range, else NotOnLink |
//! | INFORMATION-REQUEST | — | REPLY with the Server ID |

use std::collections::HashMap;
use std::net::Ipv6Addr;

use crate::wire6::{self, msg, opt, status, Dhcp6Packet, IaAddr, IaNa, IaPrefix, Writer};

/// Relay nesting answered at most (RFC 8415 §19.1: HOP_COUNT_LIMIT 8).
pub const MAX_RELAY_DEPTH: usize = 8;
/// The longest DUID (RFC 8415 §11.1: 128 bytes plus the type).
pub const MAX_DUID: usize = 130;
/// IAs answered per message at most (more are ignored).
pub const MAX_IAS: usize = 8;

/// The server's pools and timers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server6Config {
    /// The server's DUID (Server ID option).
    pub duid: Vec<u8>,
    /// First address of the IA_NA range.
    pub addr_first: Ipv6Addr,
    /// Addresses in the range (0: no IA_NA service).
    pub addr_count: u32,
    /// Delegated prefixes: the aggregate, its length, and the length of
    /// each delegated prefix (None: no IA_PD service).
    pub pd: Option<(Ipv6Addr, u8, u8)>,
    /// Preferred lifetime, s.
    pub preferred_s: u32,
    /// Valid lifetime, s.
    pub valid_s: u32,
    /// T1 and T2 given in IAs, s.
    pub t1_s: u32,
    /// See `t1_s`.
    pub t2_s: u32,
    /// Answer a SOLICIT with Rapid Commit by binding at once.
    pub rapid_commit: bool,
    /// Server Preference in ADVERTISE (0: option left out).
    pub preference: u8,
    /// How long an advertised lease is held for the client's REQUEST, s.
    pub offer_hold_s: u32,
}

/// Why a configuration cannot run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config6Error(pub String);

impl std::fmt::Display for Config6Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Config6Error {}

/// Why a message got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject6 {
    /// Not a DHCPv6 message (the reason of [`wire6::Error`]).
    Malformed(wire6::Error),
    /// A message only servers send, or an unknown type.
    UnexpectedType,
    /// No Client ID, or one that is no DUID.
    NoClientId,
    /// A SOLICIT / REBIND / CONFIRM / INFORMATION-REQUEST that names a
    /// server, or a REQUEST / RENEW / RELEASE / DECLINE without ours.
    ServerId,
    /// A relay chain deeper than [`MAX_RELAY_DEPTH`] or without a Relay
    /// Message.
    Relay,
    /// The reply did not fit the output buffer.
    NoRoom,
}

impl Reject6 {
    /// A stable name (counters).
    pub fn as_str(&self) -> &'static str {
        match self {
            Reject6::Malformed(_) => "malformed",
            Reject6::UnexpectedType => "unexpected_type",
            Reject6::NoClientId => "no_client_id",
            Reject6::ServerId => "server_id",
            Reject6::Relay => "relay",
            Reject6::NoRoom => "no_room",
        }
    }
}

/// What the server counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Server6Counters {
    /// Messages received, by type (index = msg-type, 0..=13).
    pub received: [u64; 14],
    /// Replies sent (ADVERTISE and REPLY).
    pub advertised: u64,
    /// See `advertised`.
    pub replied: u64,
    /// IAs answered NoAddrsAvail / NoPrefixAvail (pool exhausted).
    pub exhausted: u64,
    /// IAs answered NoBinding (RENEW / REBIND of a lease we do not hold).
    pub no_binding: u64,
    /// Messages refused (any [`Reject6`]).
    pub rejected: u64,
}

/// Who holds a lease: a 64-bit hash of (client DUID, IAID, IA type),
/// never 0. Eight bytes instead of the DUID itself keep a lease at 24
/// bytes and the owner index at 16 per entry (about 170 MB for the
/// largest pools of 2^22 addresses and 2^22 prefixes); like the DHCPv4
/// server's client key, two clients colliding (odds about n² / 2^65) would
/// share a binding.
type Owner = u64;

fn owner_key(duid: &[u8], iaid: u32, pd: bool) -> Owner {
    use std::hash::Hasher;
    let mut h = std::hash::DefaultHasher::new();
    h.write(duid);
    h.write_u32(iaid);
    h.write_u8(u8::from(pd));
    h.finish().max(1)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Free,
    Offered,
    Bound,
    Declined,
}

#[derive(Clone, Copy, Debug)]
struct Lease {
    state: State,
    /// Seconds (server clock) it expires at.
    until: u64,
    /// The holder (0: none).
    owner: Owner,
}

const FREE: Lease = Lease {
    state: State::Free,
    until: 0,
    owner: 0,
};

/// One pool of leases (addresses or prefixes), indexed by offset.
#[derive(Debug)]
struct Pool {
    leases: Vec<Lease>,
    by_owner: HashMap<Owner, u32>,
    cursor: usize,
    /// Leases per state (index `State as usize`), kept on every change so
    /// reports never scan; expired leases count until the sweep (or a new
    /// owner) frees them.
    counts: [usize; 4],
    /// Where [`Pool::sweep`] goes on.
    sweep_at: usize,
    /// Free leases (each once), lowest index on top.
    free: Vec<u32>,
}

/// Leases looked at for an expired one when none is free.
const TAKE_SCAN: usize = 256;

impl Pool {
    fn new(n: usize) -> Pool {
        Pool {
            leases: vec![FREE; n],
            by_owner: HashMap::with_capacity(n),
            cursor: 0,
            counts: [n, 0, 0, 0],
            sweep_at: 0,
            free: (0..n as u32).rev().collect(),
        }
    }

    fn move_count(&mut self, from: State, to: State) {
        self.counts[from as usize] -= 1;
        self.counts[to as usize] += 1;
    }

    /// Frees up to `budget` expired leases from where the last sweep
    /// stopped (bounded work per call; the whole pool in n / budget calls).
    fn sweep(&mut self, now: u64, budget: usize) {
        let n = self.leases.len();
        for _ in 0..budget.min(n) {
            let i = self.sweep_at;
            self.sweep_at = (i + 1) % n;
            let l = self.leases[i];
            if l.state != State::Free && l.until <= now {
                self.set(i as u32, State::Free, 0);
            }
        }
    }

    /// A usable lease for `o` at `now`: its own, else a free one (a stack
    /// of free leases, O(1)), else an expired one found within
    /// [`TAKE_SCAN`] leases of the cursor (bounded work per message: a
    /// full pool answers NoAddrsAvail without scanning it).
    fn take(&mut self, o: &Owner, now: u64) -> Option<u32> {
        if let Some(&i) = self.by_owner.get(o) {
            return Some(i);
        }
        let n = self.leases.len();
        let i = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                let mut found = None;
                for k in 0..TAKE_SCAN.min(n) {
                    let i = (self.cursor + k) % n;
                    let l = self.leases[i];
                    if l.state != State::Free && l.until <= now {
                        found = Some(i);
                        break;
                    }
                }
                self.cursor = (self.cursor + TAKE_SCAN) % n.max(1);
                found?
            }
        };
        let l = self.leases[i];
        if l.owner != 0 {
            self.by_owner.remove(&l.owner);
        }
        self.move_count(l.state, State::Offered);
        self.leases[i] = Lease {
            state: State::Offered,
            until: now,
            owner: *o,
        };
        self.by_owner.insert(*o, i as u32);
        Some(i as u32)
    }

    fn get(&self, o: &Owner) -> Option<u32> {
        self.by_owner.get(o).copied()
    }

    fn set(&mut self, i: u32, state: State, until: u64) {
        let old = self.leases[i as usize].state;
        self.move_count(old, state);
        if state == State::Free && old != State::Free {
            self.free.push(i);
        }
        let l = &mut self.leases[i as usize];
        l.state = state;
        l.until = until;
        if state == State::Free || state == State::Declined {
            let o = std::mem::take(&mut l.owner);
            if o != 0 {
                self.by_owner.remove(&o);
            }
        }
    }

    fn count(&self, s: State) -> usize {
        self.counts[s as usize]
    }
}

/// The server. See the module docs.
#[derive(Debug)]
pub struct Server6 {
    cfg: Server6Config,
    addrs: Pool,
    prefixes: Pool,
    /// Inner replies of relayed messages are built here (one buffer per
    /// relay level).
    scratch: Vec<Vec<u8>>,
    c: Server6Counters,
}

/// What a message asked for, per IA.
#[derive(Clone, Copy, Debug)]
struct IaReq {
    iaid: u32,
    pd: bool,
}

impl Server6 {
    /// A server for `cfg` (pools allocated here).
    pub fn new(cfg: &Server6Config) -> Result<Server6, Config6Error> {
        if cfg.duid.len() < 3 || cfg.duid.len() > MAX_DUID {
            return Err(Config6Error("the server DUID must be 3..=130 bytes".into()));
        }
        if cfg.addr_count > 1 << 22 {
            return Err(Config6Error("at most 4194304 addresses".into()));
        }
        let last = u128::from(cfg.addr_first).checked_add(u128::from(cfg.addr_count));
        if last.is_none() {
            return Err(Config6Error("the address range wraps".into()));
        }
        let npd = match cfg.pd {
            None => 0,
            Some((_, plen, dlen)) if plen > dlen || dlen > 128 || dlen - plen > 22 => {
                return Err(Config6Error(format!(
                    "delegated prefixes /{dlen} from a /{plen}: need {plen} ≤ {dlen} ≤ 128 and at most 2^22 of them"
                )))
            }
            Some((_, plen, dlen)) => 1usize << (dlen - plen),
        };
        if cfg.preferred_s > cfg.valid_s || cfg.t1_s > cfg.t2_s || cfg.t2_s > cfg.preferred_s {
            return Err(Config6Error(
                "lifetimes must satisfy T1 ≤ T2 ≤ preferred ≤ valid".into(),
            ));
        }
        Ok(Server6 {
            cfg: cfg.clone(),
            addrs: Pool::new(cfg.addr_count as usize),
            prefixes: Pool::new(npd),
            scratch: vec![vec![0u8; 2048]; MAX_RELAY_DEPTH],
            c: Server6Counters::default(),
        })
    }

    /// Counters so far.
    pub fn counters(&self) -> &Server6Counters {
        &self.c
    }

    /// Addresses and prefixes bound (O(1): leases that expired count until
    /// [`Server6::tick`] frees them).
    pub fn bound(&self) -> (usize, usize) {
        (
            self.addrs.count(State::Bound),
            self.prefixes.count(State::Bound),
        )
    }

    /// Frees expired leases, a bounded number (`budget` per pool) from
    /// where the last call stopped: call it periodically (seconds clock).
    pub fn tick(&mut self, now: u64, budget: usize) {
        self.addrs.sweep(now, budget);
        self.prefixes.sweep(now, budget);
    }

    fn addr_at(&self, i: u32) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.cfg.addr_first) + u128::from(i))
    }

    fn prefix_at(&self, i: u32) -> (Ipv6Addr, u8) {
        let (base, _, dlen) = self.cfg.pd.unwrap_or((Ipv6Addr::UNSPECIFIED, 0, 0));
        let shift = 128 - u32::from(dlen);
        let p = u128::from(base) + (u128::from(i) << shift.min(127));
        (Ipv6Addr::from(p), dlen)
    }

    /// Answer `m` (a whole DHCPv6 message, as in a UDP payload) at `now`
    /// (seconds) into `out`: `Ok(len)` of the reply.
    pub fn handle(&mut self, now: u64, m: &[u8], out: &mut [u8]) -> Result<usize, Reject6> {
        let r = self.handle_depth(now, m, out, 0);
        if r.is_err() {
            self.c.rejected += 1;
        }
        r
    }

    fn handle_depth(
        &mut self,
        now: u64,
        m: &[u8],
        out: &mut [u8],
        depth: usize,
    ) -> Result<usize, Reject6> {
        let p = Dhcp6Packet::new_checked(m).map_err(Reject6::Malformed)?;
        let t = p.msg_type();
        self.c.received[usize::from(t)] += 1;
        if t == msg::RELAY_FORW {
            if depth >= MAX_RELAY_DEPTH {
                return Err(Reject6::Relay);
            }
            let inner = p.option(opt::RELAY_MSG).ok_or(Reject6::Relay)?;
            let mut scratch = std::mem::take(&mut self.scratch[depth]);
            let r = self.handle_depth(now, inner, &mut scratch, depth + 1);
            let r = r.and_then(|n| {
                let (Some(link), Some(peer)) = (p.link_address(), p.peer_address()) else {
                    return Err(Reject6::Relay);
                };
                let mut w = Writer::relay(out, msg::RELAY_REPL, p.hop_count(), link, peer)
                    .map_err(|_| Reject6::NoRoom)?;
                if let Some(id) = p.option(opt::INTERFACE_ID) {
                    w.option(opt::INTERFACE_ID, id)
                        .map_err(|_| Reject6::NoRoom)?;
                }
                w.option(opt::RELAY_MSG, &scratch[..n])
                    .map_err(|_| Reject6::NoRoom)?;
                w.finish().map_err(|_| Reject6::NoRoom)
            });
            self.scratch[depth] = scratch;
            return r;
        }
        self.client_message(now, &p, out)
    }

    fn client_message(
        &mut self,
        now: u64,
        p: &Dhcp6Packet<'_>,
        out: &mut [u8],
    ) -> Result<usize, Reject6> {
        let t = p.msg_type();
        if !matches!(
            t,
            msg::SOLICIT
                | msg::REQUEST
                | msg::CONFIRM
                | msg::RENEW
                | msg::REBIND
                | msg::RELEASE
                | msg::DECLINE
                | msg::INFORMATION_REQUEST
        ) {
            return Err(Reject6::UnexpectedType);
        }
        let client = p.client_id();
        if t != msg::INFORMATION_REQUEST {
            match client {
                Some(c) if (3..=MAX_DUID).contains(&c.len()) => {}
                _ => return Err(Reject6::NoClientId),
            }
        }
        let ours = p.server_id().map(|s| s == self.cfg.duid.as_slice());
        let needs_ours = matches!(t, msg::REQUEST | msg::RENEW | msg::RELEASE | msg::DECLINE);
        let refuses_any = matches!(t, msg::SOLICIT | msg::REBIND | msg::CONFIRM);
        if (needs_ours && ours != Some(true)) || (refuses_any && ours.is_some()) {
            return Err(Reject6::ServerId);
        }
        if ours == Some(false) {
            // INFORMATION-REQUEST for another server.
            return Err(Reject6::ServerId);
        }
        // The IAs asked for.
        let mut ias = [IaReq { iaid: 0, pd: false }; MAX_IAS];
        let mut n = 0;
        for o in p.options().map_while(Result::ok) {
            let pd = match o.0 {
                opt::IA_NA => false,
                opt::IA_PD => true,
                _ => continue,
            };
            if let (Ok(ia), true) = (IaNa::parse(o.1), n < MAX_IAS) {
                ias[n] = IaReq { iaid: ia.iaid, pd };
                n += 1;
            }
        }
        let ias = &ias[..n];
        let rapid = t == msg::SOLICIT && self.cfg.rapid_commit && p.rapid_commit();
        let reply_type = if t == msg::SOLICIT && !rapid {
            msg::ADVERTISE
        } else {
            msg::REPLY
        };
        let mut w = Writer::message(out, reply_type, p.xid()).map_err(|_| Reject6::NoRoom)?;
        let room = |_| Reject6::NoRoom;
        w.option(opt::SERVERID, &self.cfg.duid).map_err(room)?;
        if let Some(c) = client {
            w.option(opt::CLIENTID, c).map_err(room)?;
        }
        if rapid {
            w.option(opt::RAPID_COMMIT, &[]).map_err(room)?;
        }
        if reply_type == msg::ADVERTISE && self.cfg.preference > 0 {
            w.option(opt::PREFERENCE, &[self.cfg.preference])
                .map_err(room)?;
        }
        let owner = |iaid: u32, pd: bool| owner_key(client.unwrap_or(&[]), iaid, pd);
        match t {
            msg::SOLICIT | msg::REQUEST | msg::RENEW | msg::REBIND => {
                for ia in ias {
                    let o = owner(ia.iaid, ia.pd);
                    let pool = if ia.pd {
                        &mut self.prefixes
                    } else {
                        &mut self.addrs
                    };
                    let lease = match t {
                        msg::SOLICIT | msg::REQUEST => pool.take(&o, now),
                        _ => pool.get(&o).filter(|&i| {
                            let l = pool.leases[i as usize];
                            l.state == State::Bound && l.until > now
                        }),
                    };
                    let (state, hold) = if t == msg::SOLICIT && !rapid {
                        (State::Offered, u64::from(self.cfg.offer_hold_s))
                    } else {
                        (State::Bound, u64::from(self.cfg.valid_s))
                    };
                    if let Some(i) = lease {
                        pool.set(i, state, now + hold);
                    }
                    self.write_ia(&mut w, ia, lease, t)?;
                }
                if reply_type == msg::ADVERTISE {
                    self.c.advertised += 1;
                } else {
                    self.c.replied += 1;
                }
            }
            msg::RELEASE | msg::DECLINE => {
                for ia in ias {
                    let o = owner(ia.iaid, ia.pd);
                    let pool = if ia.pd {
                        &mut self.prefixes
                    } else {
                        &mut self.addrs
                    };
                    if let Some(i) = pool.get(&o) {
                        if t == msg::RELEASE {
                            pool.set(i, State::Free, 0);
                        } else {
                            pool.set(i, State::Declined, now + u64::from(self.cfg.valid_s));
                        }
                    }
                }
                w.option(opt::STATUS_CODE, &status::SUCCESS.to_be_bytes())
                    .map_err(room)?;
                self.c.replied += 1;
            }
            msg::CONFIRM => {
                let first = u128::from(self.cfg.addr_first);
                let mut on_link = true;
                for ia in p.ia_nas() {
                    for a in ia.addrs() {
                        let v = u128::from(a.addr);
                        on_link &= v >= first && v - first < u128::from(self.cfg.addr_count);
                    }
                }
                let code = if on_link {
                    status::SUCCESS
                } else {
                    status::NOT_ON_LINK
                };
                w.option(opt::STATUS_CODE, &code.to_be_bytes())
                    .map_err(room)?;
                self.c.replied += 1;
            }
            _ => {
                // INFORMATION-REQUEST: the Server ID is the answer.
                self.c.replied += 1;
            }
        }
        w.finish().map_err(|_| Reject6::NoRoom)
    }

    /// One IA of a reply: its lease with lifetimes, or the status saying
    /// why there is none.
    fn write_ia(
        &mut self,
        w: &mut Writer<'_>,
        ia: &IaReq,
        lease: Option<u32>,
        t: u8,
    ) -> Result<(), Reject6> {
        let room = |_| Reject6::NoRoom;
        let code = if ia.pd { opt::IA_PD } else { opt::IA_NA };
        w.begin(
            code,
            &Writer::ia_fixed(ia.iaid, self.cfg.t1_s, self.cfg.t2_s),
        )
        .map_err(room)?;
        match lease {
            Some(i) if ia.pd => {
                let (prefix, len) = self.prefix_at(i);
                let v = Writer::ia_prefix(&IaPrefix {
                    preferred: self.cfg.preferred_s,
                    valid: self.cfg.valid_s,
                    len,
                    prefix,
                });
                w.option(opt::IAPREFIX, &v).map_err(room)?;
            }
            Some(i) => {
                let v = Writer::ia_addr(&IaAddr {
                    addr: self.addr_at(i),
                    preferred: self.cfg.preferred_s,
                    valid: self.cfg.valid_s,
                });
                w.option(opt::IAADDR, &v).map_err(room)?;
            }
            None => {
                let (code, text): (u16, &[u8]) = match t {
                    msg::RENEW | msg::REBIND => {
                        self.c.no_binding += 1;
                        (status::NO_BINDING, b"no binding")
                    }
                    _ if ia.pd => {
                        self.c.exhausted += 1;
                        (status::NO_PREFIX_AVAIL, b"no prefixes")
                    }
                    _ => {
                        self.c.exhausted += 1;
                        (status::NO_ADDRS_AVAIL, b"no addresses")
                    }
                };
                let mut v = [0u8; 16];
                v[..2].copy_from_slice(&code.to_be_bytes());
                v[2..2 + text.len()].copy_from_slice(text);
                w.option(opt::STATUS_CODE, &v[..2 + text.len()])
                    .map_err(room)?;
            }
        }
        w.end().map_err(room)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire6::duid_ll;

    fn cfg(addrs: u32) -> Server6Config {
        Server6Config {
            duid: duid_ll([2, 0, 0, 0, 0, 0x53]).to_vec(),
            addr_first: "2001:db8:1::100".parse().unwrap(),
            addr_count: addrs,
            pd: Some(("2001:db8:100::".parse().unwrap(), 48, 56)),
            preferred_s: 300,
            valid_s: 600,
            t1_s: 150,
            t2_s: 240,
            rapid_commit: true,
            preference: 255,
            offer_hold_s: 30,
        }
    }

    /// A client message: type, xid, client MAC (DUID-LL), extra options
    /// written by `f`.
    fn client_msg(t: u8, xid: u32, mac: u8, f: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        let mut w = Writer::message(&mut b, t, xid).unwrap();
        w.option(opt::CLIENTID, &duid_ll([2, 0, 0, 0, 0, mac]))
            .unwrap();
        w.option(opt::ELAPSED_TIME, &[0, 0]).unwrap();
        f(&mut w);
        let n = w.finish().unwrap();
        b.truncate(n);
        b
    }

    fn ia_na(w: &mut Writer<'_>, iaid: u32) {
        w.begin(opt::IA_NA, &Writer::ia_fixed(iaid, 0, 0)).unwrap();
        w.end().unwrap();
    }

    fn server_id(w: &mut Writer<'_>) {
        w.option(opt::SERVERID, &duid_ll([2, 0, 0, 0, 0, 0x53]))
            .unwrap();
    }

    fn reply(s: &mut Server6, now: u64, m: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; 1500];
        let n = s.handle(now, m, &mut out).unwrap();
        out.truncate(n);
        out
    }

    fn addr_of(r: &[u8]) -> Option<Ipv6Addr> {
        let p = Dhcp6Packet::new_checked(r).unwrap();
        let ia = p.ia_nas().next()?;
        ia.addrs().next().map(|a| a.addr)
    }

    #[test]
    fn solicit_advertise_request_reply_renew_release() {
        let mut s = Server6::new(&cfg(4)).unwrap();
        let sol = client_msg(msg::SOLICIT, 0x111, 1, |w| ia_na(w, 7));
        let adv = reply(&mut s, 10, &sol);
        let p = Dhcp6Packet::new_checked(&adv).unwrap();
        assert_eq!((p.msg_type(), p.xid()), (msg::ADVERTISE, 0x111));
        assert_eq!(p.preference(), Some(255));
        assert_eq!(p.client_id(), Some(&duid_ll([2, 0, 0, 0, 0, 1])[..]));
        let a = addr_of(&adv).expect("an address offered");
        assert_eq!(a, "2001:db8:1::100".parse::<Ipv6Addr>().unwrap());
        let ia = p.ia_nas().next().unwrap();
        assert_eq!((ia.iaid, ia.t1, ia.t2), (7, 150, 240));
        assert_eq!(s.bound(), (0, 0), "offered, not bound");

        let req = client_msg(msg::REQUEST, 0x222, 1, |w| {
            server_id(w);
            ia_na(w, 7)
        });
        let rep = reply(&mut s, 11, &req);
        assert_eq!(
            Dhcp6Packet::new_checked(&rep).unwrap().msg_type(),
            msg::REPLY
        );
        assert_eq!(addr_of(&rep), Some(a), "the advertised address");
        assert_eq!(s.bound(), (1, 0));

        // Another client gets another address.
        let other = reply(&mut s, 12, &client_msg(msg::SOLICIT, 3, 2, |w| ia_na(w, 7)));
        assert_ne!(addr_of(&other), Some(a));

        let renew = client_msg(msg::RENEW, 4, 1, |w| {
            server_id(w);
            ia_na(w, 7)
        });
        assert_eq!(addr_of(&reply(&mut s, 500, &renew)), Some(a));
        // Past the first valid lifetime, still bound (renewed at 500).
        s.tick(700, usize::MAX);
        assert_eq!(s.bound(), (1, 0));

        let rel = client_msg(msg::RELEASE, 5, 1, |w| {
            server_id(w);
            ia_na(w, 7)
        });
        let r = reply(&mut s, 701, &rel);
        assert_eq!(
            Dhcp6Packet::new_checked(&r).unwrap().status(),
            Some((0, &[][..]))
        );
        assert_eq!(s.bound(), (0, 0));
        // A RENEW after the release: NoBinding.
        let r = reply(&mut s, 702, &renew);
        let ia = Dhcp6Packet::new_checked(&r)
            .unwrap()
            .ia_nas()
            .next()
            .unwrap();
        assert_eq!(ia.status().map(|(c, _)| c), Some(status::NO_BINDING));
        assert_eq!(s.counters().no_binding, 1);
    }

    #[test]
    fn a_full_pool_answers_without_scanning_and_expired_leases_are_taken_again() {
        let mut s = Server6::new(&cfg(4)).unwrap();
        let rapid = |mac: u8| {
            client_msg(msg::SOLICIT, u32::from(mac), mac, |w| {
                w.option(opt::RAPID_COMMIT, &[]).unwrap();
                ia_na(w, 1);
            })
        };
        for mac in 1..=4 {
            assert!(addr_of(&reply(&mut s, 1, &rapid(mac))).is_some());
        }
        assert_eq!(s.bound(), (4, 0));
        assert_eq!(addr_of(&reply(&mut s, 2, &rapid(5))), None, "exhausted");
        assert_eq!(s.counters().exhausted, 1);
        // Past the valid lifetime (600 s) with no sweep yet: the bounded
        // scan finds an expired lease for the newcomer.
        let a = addr_of(&reply(&mut s, 10_000, &rapid(5)));
        assert!(a.is_some());
        s.tick(10_000, usize::MAX);
        assert_eq!(s.bound(), (1, 0), "the newcomer's; the others expired");
    }

    #[test]
    fn rapid_commit_binds_at_once_and_prefixes_are_delegated() {
        let mut s = Server6::new(&cfg(4)).unwrap();
        let sol = client_msg(msg::SOLICIT, 9, 1, |w| {
            w.option(opt::RAPID_COMMIT, &[]).unwrap();
            ia_na(w, 1);
            w.begin(opt::IA_PD, &Writer::ia_fixed(2, 0, 0)).unwrap();
            w.end().unwrap();
        });
        let r = reply(&mut s, 1, &sol);
        let p = Dhcp6Packet::new_checked(&r).unwrap();
        assert_eq!(p.msg_type(), msg::REPLY);
        assert!(p.rapid_commit());
        let pd = p.ia_pds().next().unwrap();
        let pfx = pd.prefixes().next().unwrap();
        assert_eq!(
            (pfx.len, pfx.prefix),
            (56, "2001:db8:100::".parse().unwrap())
        );
        assert_eq!(s.bound(), (1, 1));
        // Past the valid lifetime the sweep frees both, a bounded slice at a time.
        s.tick(1_000_000, 1);
        s.tick(1_000_000, 1 << 20);
        assert_eq!(s.bound(), (0, 0), "expired");
        // Rapid commit off: an ADVERTISE even when asked.
        let mut c = cfg(4);
        c.rapid_commit = false;
        let mut s = Server6::new(&c).unwrap();
        assert_eq!(
            Dhcp6Packet::new_checked(&reply(&mut s, 1, &sol))
                .unwrap()
                .msg_type(),
            msg::ADVERTISE
        );
    }

    #[test]
    fn an_exhausted_pool_says_so_and_expired_offers_come_back() {
        let mut s = Server6::new(&cfg(2)).unwrap();
        for mac in 1..=2 {
            let r = reply(
                &mut s,
                0,
                &client_msg(msg::SOLICIT, 1, mac, |w| ia_na(w, 1)),
            );
            assert!(addr_of(&r).is_some());
        }
        let r = reply(&mut s, 1, &client_msg(msg::SOLICIT, 1, 3, |w| ia_na(w, 1)));
        let ia = Dhcp6Packet::new_checked(&r)
            .unwrap()
            .ia_nas()
            .next()
            .unwrap();
        assert_eq!(ia.status().map(|(c, _)| c), Some(status::NO_ADDRS_AVAIL));
        assert_eq!(s.counters().exhausted, 1);
        // The offers are held 30 s.
        let r = reply(&mut s, 31, &client_msg(msg::SOLICIT, 1, 3, |w| ia_na(w, 1)));
        assert!(addr_of(&r).is_some(), "an expired offer is free again");
    }

    #[test]
    fn relayed_messages_are_answered_in_kind() {
        let mut s = Server6::new(&cfg(4)).unwrap();
        let inner = client_msg(msg::SOLICIT, 0xabc, 1, |w| ia_na(w, 1));
        let link: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
        let peer: Ipv6Addr = "fe80::1".parse().unwrap();
        let mut b = vec![0u8; 1024];
        let mut w = Writer::relay(&mut b, msg::RELAY_FORW, 0, link, peer).unwrap();
        w.option(opt::INTERFACE_ID, b"port-7").unwrap();
        w.option(opt::REMOTE_ID, &[0, 0, 0, 9, 1, 2]).unwrap();
        w.option(opt::RELAY_MSG, &inner).unwrap();
        let n = w.finish().unwrap();
        let r = reply(&mut s, 1, &b[..n]);
        let p = Dhcp6Packet::new_checked(&r).unwrap();
        assert_eq!(p.msg_type(), msg::RELAY_REPL);
        assert_eq!(
            (p.link_address(), p.peer_address()),
            (Some(link), Some(peer))
        );
        assert_eq!(
            p.option(opt::INTERFACE_ID),
            Some(&b"port-7"[..]),
            "Interface-ID echoed"
        );
        let i = p.relay_msg().unwrap().unwrap();
        assert_eq!((i.msg_type(), i.xid()), (msg::ADVERTISE, 0xabc));
        // Two relays: answered through both.
        let mut b2 = vec![0u8; 1024];
        let mut w = Writer::relay(&mut b2, msg::RELAY_FORW, 1, link, peer).unwrap();
        w.option(opt::RELAY_MSG, &b[..n]).unwrap();
        let n2 = w.finish().unwrap();
        let r = reply(&mut s, 1, &b2[..n2]);
        let outer = Dhcp6Packet::new_checked(&r).unwrap();
        assert_eq!(outer.hop_count(), 1);
        let mid = outer.relay_msg().unwrap().unwrap();
        assert_eq!(mid.option(opt::INTERFACE_ID), Some(&b"port-7"[..]));
        assert_eq!(mid.relay_msg().unwrap().unwrap().msg_type(), msg::ADVERTISE);
        // Nine relays deep: refused.
        let mut m = inner.clone();
        for _ in 0..9 {
            let mut b = vec![0u8; 2048];
            let mut w = Writer::relay(&mut b, msg::RELAY_FORW, 0, link, peer).unwrap();
            w.option(opt::RELAY_MSG, &m).unwrap();
            let n = w.finish().unwrap();
            b.truncate(n);
            m = b;
        }
        let mut out = vec![0u8; 4096];
        assert_eq!(s.handle(1, &m, &mut out), Err(Reject6::Relay));
    }

    #[test]
    fn messages_that_break_the_rules_are_refused_by_reason() {
        let mut s = Server6::new(&cfg(4)).unwrap();
        let mut out = vec![0u8; 1500];
        // SOLICIT naming a server; REQUEST for another server; no client ID.
        let m = client_msg(msg::SOLICIT, 1, 1, |w| {
            server_id(w);
            ia_na(w, 1)
        });
        assert_eq!(s.handle(0, &m, &mut out), Err(Reject6::ServerId));
        let m = client_msg(msg::REQUEST, 1, 1, |w| {
            w.option(opt::SERVERID, &duid_ll([9; 6])).unwrap();
        });
        assert_eq!(s.handle(0, &m, &mut out), Err(Reject6::ServerId));
        let mut b = [0u8; 64];
        let mut w = Writer::message(&mut b, msg::SOLICIT, 1).unwrap();
        ia_na(&mut w, 1);
        let n = w.finish().unwrap();
        assert_eq!(s.handle(0, &b[..n], &mut out), Err(Reject6::NoClientId));
        // A server's message; garbage; no room for the reply.
        let m = client_msg(msg::ADVERTISE, 1, 1, |_| {});
        assert_eq!(s.handle(0, &m, &mut out), Err(Reject6::UnexpectedType));
        assert!(matches!(
            s.handle(0, &[1, 2], &mut out),
            Err(Reject6::Malformed(_))
        ));
        let m = client_msg(msg::SOLICIT, 1, 1, |w| ia_na(w, 1));
        assert_eq!(s.handle(0, &m, &mut out[..8]), Err(Reject6::NoRoom));
        assert_eq!(s.counters().rejected, 6);
        // Bad configurations.
        let mut c = cfg(4);
        c.t1_s = 1000;
        assert!(Server6::new(&c).is_err());
        let mut c = cfg(4);
        c.pd = Some(("2001:db8::".parse().unwrap(), 60, 56));
        assert!(Server6::new(&c).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_answered_or_refused(b in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let mut s = Server6::new(&cfg(8)).unwrap();
            let mut out = vec![0u8; 1500];
            if let Ok(n) = s.handle(0, &b, &mut out) {
                proptest::prop_assert!(Dhcp6Packet::new_checked(&out[..n]).is_ok());
            }
        }
    }
}
