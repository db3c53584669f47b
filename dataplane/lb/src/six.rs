//! IPv6 on the balancer's IPv4 lcore path: stand-in addresses.
//!
//! The lcore path (SYN cache, cookies, flow table, splice, TLS
//! termination, health probes) is written over IPv4 addresses. An IPv6
//! VIP, client, backend or source address takes part in it through an
//! IPv4 **stand-in** from 240.0.0.0/4 (RFC 1112 class E: never configured
//! on a host, never on the wire here), and the IP header of an IPv6 leg is
//! translated at the edges ([`qsplice_splice::family`]): an IPv6 segment
//! becomes an IPv4 one with stand-ins when it arrives, and an IPv4 segment
//! addressed to a stand-in becomes IPv6 when it leaves. NAT64 (an IPv6 VIP
//! with IPv4 backends) and NAT46 (the reverse) are the same mechanism with
//! one leg translated.
//!
//! * 240.0.0.0/5 — **static** stand-ins, given by the control thread to
//!   IPv6 VIPs and backends (never reused while the process runs, so a
//!   flow's stand-in stays valid across reloads) and published with the
//!   services ([`SixMap`]). The balancer's IPv6 source address on the
//!   backend side (`lb.local6`) stands behind the IPv4 `local`.
//! * 248.0.0.0/5 — **client** stand-ins, one table per lcore ([`Clients`]):
//!   a stand-in names its slot, so the way back is one array read. The
//!   home slot of an address is a hash keyed with the cluster's cookie
//!   secret, the same on every lcore: a client finds the same stand-in on
//!   whichever lcore its segment lands (a handshake ACK that af_packet's
//!   rollover moved to another lcore still matches its SYN cookie). Backend
//!   segments are steered by source port to the lcore that holds the flow,
//!   whose table made the stand-in.
//!
//! A client slot holds its address while the client sends (every segment
//! refreshes it) and for `keep` after (longer than a flow may sit idle,
//! plus two SYN-cookie slots; segments sent to it count too). A new slot
//! is *provisional* until its client completes a handshake (the balancer
//! confirms it): a flood of SYNs, ACKs or anything else from random IPv6
//! sources only recycles provisional slots and cannot push out clients
//! that hold connections. The same client finds the same stand-in again —
//! what a SYN cookie needs — unless an earlier slot of its window changed
//! meanwhile.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use qsplice_splice::isn::IsnSecret;

/// First static stand-in (240.0.0.0).
pub const STATIC_BASE: u32 = 0xF000_0000;
/// Static stand-ins available (240.0.0.0/5).
pub const STATIC_MAX: u32 = 1 << 27;
/// First client stand-in (248.0.0.0).
pub const CLIENT_BASE: u32 = 0xF800_0000;
/// Client slot index bits.
pub const CLIENT_SLOT_BITS: u32 = 21;
/// Slots looked at from a client address's home slot.
const WINDOW: usize = 8;

/// An address in 240.0.0.0/4: a stand-in for an IPv6 address.
#[inline(always)]
pub fn is_standin(ip: Ipv4Addr) -> bool {
    u32::from(ip) >= STATIC_BASE
}

/// A client stand-in (248.0.0.0/5).
#[inline(always)]
pub fn is_client_standin(ip: Ipv4Addr) -> bool {
    u32::from(ip) >= CLIENT_BASE
}

/// The `i`th static stand-in (`i < STATIC_MAX`).
pub fn static_standin(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(STATIC_BASE | (i & (STATIC_MAX - 1)))
}

/// The control thread's stand-ins, as the lcores read them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SixMap {
    /// (IPv6 address, stand-in), sorted by address.
    by6: Vec<(Ipv6Addr, Ipv4Addr)>,
    /// (stand-in, IPv6 address), sorted by stand-in.
    by4: Vec<(Ipv4Addr, Ipv6Addr)>,
    /// The backend-side IPv6 source address (stands behind `LbConf::local`).
    pub local6: Option<Ipv6Addr>,
    /// VIPs (as the lcores know them) whose pool has IPv6 backends while
    /// clients reach them over IPv4, or the reverse: the MSS announced to
    /// their clients is 20 bytes less (the other leg's larger header).
    /// Sorted.
    pub narrow: Vec<SocketAddrV4>,
}

impl SixMap {
    /// A map of `pairs` (IPv6 address, static stand-in).
    pub fn new(
        pairs: impl IntoIterator<Item = (Ipv6Addr, Ipv4Addr)>,
        local6: Option<Ipv6Addr>,
        mut narrow: Vec<SocketAddrV4>,
    ) -> SixMap {
        let mut by6: Vec<(Ipv6Addr, Ipv4Addr)> = pairs.into_iter().collect();
        by6.sort_unstable();
        by6.dedup();
        let mut by4: Vec<(Ipv4Addr, Ipv6Addr)> = by6.iter().map(|(a, b)| (*b, *a)).collect();
        by4.sort_unstable();
        narrow.sort_unstable();
        narrow.dedup();
        SixMap {
            by6,
            by4,
            local6,
            narrow,
        }
    }

    /// No IPv6 anywhere: the lcore path skips every check.
    pub fn is_empty(&self) -> bool {
        self.by6.is_empty() && self.local6.is_none()
    }

    /// The stand-in of `a`.
    #[inline]
    pub fn to4(&self, a: Ipv6Addr) -> Option<Ipv4Addr> {
        self.by6
            .binary_search_by_key(&a, |(x, _)| *x)
            .ok()
            .map(|i| self.by6[i].1)
    }

    /// The IPv6 address behind static stand-in `a`.
    #[inline]
    pub fn to6(&self, a: Ipv4Addr) -> Option<Ipv6Addr> {
        self.by4
            .binary_search_by_key(&a, |(x, _)| *x)
            .ok()
            .map(|i| self.by4[i].1)
    }

    /// Whether `vip`'s clients are told a 20-byte smaller MSS.
    #[inline]
    pub fn is_narrow(&self, vip: SocketAddrV4) -> bool {
        !self.narrow.is_empty() && self.narrow.binary_search(&vip).is_ok()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Free,
    /// Made by a SYN: any newcomer may take the slot.
    Provisional,
    /// The client sent more than a SYN: kept while it is in use.
    Confirmed,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    addr: Ipv6Addr,
    seen: u64,
    state: State,
}

/// Why a client got no stand-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    /// Every slot of its window holds a client in use.
    Window,
}

/// One lcore's IPv6 clients and their stand-ins. See the module docs.
#[derive(Debug)]
pub struct Clients {
    slots: Vec<Slot>,
    mask: usize,
    base: u32,
    keep: u64,
    /// The home-slot hash's key: the cluster's cookie secret, the same on
    /// every lcore.
    secret: IsnSecret,
    /// Slots in use (provisional or confirmed).
    used: usize,
}

impl Clients {
    /// A table of `capacity` slots (rounded up to a power of two, at most
    /// 2^21); a slot unused for `keep` clock ticks may be given to another
    /// client; home slots hashed with `secret`.
    pub fn new(capacity: usize, keep: u64, secret: IsnSecret) -> Clients {
        let n = capacity
            .clamp(WINDOW, 1 << CLIENT_SLOT_BITS)
            .next_power_of_two();
        Clients {
            slots: vec![
                Slot {
                    addr: Ipv6Addr::UNSPECIFIED,
                    seen: 0,
                    state: State::Free,
                };
                n
            ],
            mask: n - 1,
            base: CLIENT_BASE,
            keep,
            secret,
            used: 0,
        }
    }

    /// Slots in use.
    pub fn len(&self) -> usize {
        self.used
    }

    /// True when no slot is in use.
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// The stand-in of client `a` at clock `now`, made if needed (a new
    /// slot is provisional until [`Clients::confirm`]).
    #[inline]
    pub fn intern(&mut self, a: Ipv6Addr, now: u64) -> Result<Ipv4Addr, Full> {
        let home = self.secret.isn(
            SocketAddrV6::new(a, 0, 0, 0),
            SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0),
            0x5eed_0006,
        ) as usize;
        let mut take = None;
        for i in 0..WINDOW {
            let si = (home + i) & self.mask;
            let s = &mut self.slots[si];
            match s.state {
                State::Free => {
                    take.get_or_insert(si);
                }
                _ if s.addr == a => {
                    s.seen = now;
                    return Ok(Ipv4Addr::from(self.base | si as u32));
                }
                State::Provisional => {
                    take.get_or_insert(si);
                }
                State::Confirmed => {
                    if now.saturating_sub(s.seen) > self.keep {
                        take.get_or_insert(si);
                    }
                }
            }
        }
        let si = take.ok_or(Full::Window)?;
        let s = &mut self.slots[si];
        if s.state == State::Free {
            self.used += 1;
        }
        // New slots are provisional whatever the segment: a flood of ACKs
        // (or anything else) from random sources must not pin slots. The
        // balancer confirms a slot once its client completed a handshake
        // ([`Clients::confirm`]).
        *s = Slot {
            addr: a,
            seen: now,
            state: State::Provisional,
        };
        Ok(Ipv4Addr::from(self.base | si as u32))
    }

    /// The stand-in client `a` has now, if any (nothing is made).
    pub fn find(&self, a: Ipv6Addr) -> Option<Ipv4Addr> {
        let home = self.secret.isn(
            SocketAddrV6::new(a, 0, 0, 0),
            SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0),
            0x5eed_0006,
        ) as usize;
        (0..WINDOW)
            .map(|i| (home + i) & self.mask)
            .find(|&si| self.slots[si].state != State::Free && self.slots[si].addr == a)
            .map(|si| Ipv4Addr::from(self.base | si as u32))
    }

    /// Keep the slot of stand-in `a`: its client completed a handshake
    /// (a SYN cache entry or a valid cookie), so the balancer holds a
    /// connection of it.
    #[inline]
    pub fn confirm(&mut self, a: Ipv4Addr) {
        if let Some(s) = self.slot_mut(a) {
            s.state = State::Confirmed;
        }
    }

    /// Stand-in `a` is in use at `now` (a segment sent to its client: a
    /// flow the backend keeps talking on must not lose its client's slot).
    #[inline]
    pub fn touch(&mut self, a: Ipv4Addr, now: u64) {
        if let Some(s) = self.slot_mut(a) {
            s.seen = s.seen.max(now);
        }
    }

    fn slot_mut(&mut self, a: Ipv4Addr) -> Option<&mut Slot> {
        let v = u32::from(a);
        if v & !((1 << CLIENT_SLOT_BITS) - 1) != self.base {
            return None;
        }
        self.slots
            .get_mut((v as usize) & ((1 << CLIENT_SLOT_BITS) - 1))
            .filter(|s| s.state != State::Free)
    }

    /// The client behind stand-in `a` (made by this table).
    #[inline]
    pub fn get(&self, a: Ipv4Addr) -> Option<Ipv6Addr> {
        let v = u32::from(a);
        if v & !((1 << CLIENT_SLOT_BITS) - 1) != self.base {
            return None;
        }
        let s = self
            .slots
            .get((v as usize) & ((1 << CLIENT_SLOT_BITS) - 1))?;
        (s.state != State::Free).then_some(s.addr)
    }

    /// Free slots unused for `keep` (at most `budget` examined from
    /// `*cursor`, which moves on): keeps `len` meaningful.
    pub fn sweep(&mut self, now: u64, cursor: &mut usize, budget: usize) {
        for _ in 0..budget.min(self.slots.len()) {
            let si = *cursor & self.mask;
            *cursor = cursor.wrapping_add(1);
            let s = &mut self.slots[si];
            if s.state != State::Free && now.saturating_sub(s.seen) > self.keep {
                s.state = State::Free;
                self.used -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> IsnSecret {
        IsnSecret::from_bytes([5; 16])
    }

    fn a(i: u32) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, (i >> 16) as u16, i as u16)
    }

    #[test]
    fn a_client_keeps_its_standin_and_it_names_it_back() {
        let mut c = Clients::new(1024, 1000, key());
        let s = c.intern(a(1), 0).unwrap();
        assert!(is_client_standin(s) && is_standin(s));
        assert_eq!(c.intern(a(1), 5), Ok(s), "the SYN's stand-in again");
        assert_eq!(c.get(s), Some(a(1)));
        // Every lcore hashes alike: another lcore's table gives the same
        // client the same stand-in (a handshake completes on either), and
        // holds nothing for a stand-in it did not make.
        let mut other = Clients::new(1024, 1000, key());
        assert_eq!(other.get(s), None);
        assert_eq!(other.intern(a(1), 6), Ok(s));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_syn_flood_cannot_push_out_confirmed_clients() {
        let mut c = Clients::new(64, 1_000_000, key());
        let mut real = Vec::new();
        for i in 0..40 {
            // A SYN, then the handshake's ACK: confirmed by the balancer.
            if c.intern(a(i), 1).is_ok() {
                if let Ok(s) = c.intern(a(i), 1) {
                    c.confirm(s);
                    real.push((a(i), s));
                }
            }
        }
        assert!(
            real.len() >= 32,
            "most of 40 fit in 64 slots: {}",
            real.len()
        );
        // SYNs and ACKs from random sources, once each.
        for i in 1000..200_000 {
            let _ = c.intern(a(i), 2);
        }
        for (addr, s) in &real {
            assert_eq!(c.get(*s), Some(*addr));
            assert_eq!(c.intern(*addr, 3), Ok(*s));
        }
        // After `keep` unused, a confirmed slot may go.
        let mut cur = 0;
        c.sweep(3 + 1_000_001, &mut cur, 64);
        assert!(c.is_empty());
    }

    #[test]
    fn segments_sent_to_a_client_keep_its_slot() {
        let mut c = Clients::new(64, 1000, key());
        let s = c.intern(a(1), 0).unwrap();
        c.confirm(s);
        // The client is silent; the backend keeps sending to it.
        for t in (500..5000).step_by(500) {
            c.touch(s, t);
            let mut cur = 0;
            c.sweep(t + 400, &mut cur, 64);
            assert_eq!(c.get(s), Some(a(1)), "at {t}");
        }
        // A stranger's stand-in is not touched or confirmed.
        let other = Clients::new(64, 1000, key());
        let mut c2 = Clients::new(64, 1000, key());
        c2.touch(s, 1);
        c2.confirm(s);
        assert!(other.is_empty() && c2.is_empty());
    }

    #[test]
    fn a_flooded_window_still_admits_a_new_client() {
        // Every slot provisional: a newcomer takes one.
        let mut c = Clients::new(8, 1_000_000, key());
        for i in 0..1000 {
            let _ = c.intern(a(i), 1);
        }
        let s = c.intern(a(5000), 2).unwrap();
        assert_eq!(c.get(s), Some(a(5000)));
        // Every slot confirmed and fresh: the next one waits.
        let mut c = Clients::new(8, 1_000_000, key());
        for i in 0..8 {
            c.intern(a(i), 1).unwrap();
            let s = c.intern(a(i), 1).unwrap();
            c.confirm(s);
        }
        // A second segment alone confirms nothing (a spoofed pair).
        let mut d = Clients::new(8, 1_000_000, key());
        for i in 100..108 {
            let _ = d.intern(a(i), 1);
            let _ = d.intern(a(i), 1);
        }
        assert!(d.intern(a(99), 2).is_ok(), "spoofed pairs pin nothing");
        assert_eq!(c.intern(a(99), 2), Err(Full::Window));
    }

    #[test]
    fn the_static_map_goes_both_ways() {
        let m = SixMap::new(
            [(a(2), static_standin(2)), (a(1), static_standin(1))],
            Some(a(9)),
            vec![SocketAddrV4::new(static_standin(1), 443)],
        );
        assert_eq!(m.to4(a(1)), Some(static_standin(1)));
        assert_eq!(m.to6(static_standin(2)), Some(a(2)));
        assert_eq!(m.to6(static_standin(3)), None);
        assert!(m.is_narrow(SocketAddrV4::new(static_standin(1), 443)));
        assert!(!m.is_narrow(SocketAddrV4::new(static_standin(1), 80)));
        assert!(!m.is_empty() && SixMap::default().is_empty());
    }
}
