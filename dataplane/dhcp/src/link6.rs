//! The DHCPv6 server on a link: [`Server6`] behind Ethernet/IPv6/UDP
//! framing ([`crate::frame6`]), with the fault simulation of the DHCPv4
//! server (token-bucket rate limit, drop probability, reply delay) and the
//! server's own addresses (the EUI-64 link-local of the port's MAC plus the
//! configured ones) for Neighbor Discovery.
//!
//! Replies go back where the request came from (RFC 8415 §18.3.10, §19.3):
//! a client's message (port 546, usually from its link-local address to
//! ff02::1:2) is answered to its source address and MAC on port 546; a
//! RELAY-FORW (port 547, from a relay agent) is answered with RELAY-REPL
//! to the relay's address and MAC on port 547. The source address is the
//! one the request was sent to when that is ours, else our link-local
//! address for link-local peers and our first configured (global) address
//! for the others.

use core::net::Ipv6Addr;
use std::collections::BTreeMap;

use qsplice_wire::MacAddr;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::duration_to_ticks;
use crate::frame6::{parse_frame6, Frame6Error, Frame6Spec};
use crate::server::{DelayConfig, FaultConfig};
use crate::server6::{Config6Error, Reject6, Server6, Server6Config};
use crate::wire6::{self, msg, CLIENT_PORT, SERVER_PORT};

/// Why a frame got no reply (counted by name).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Link6Reject {
    /// Not a usable DHCPv6 datagram.
    Frame(Frame6Error),
    /// Sent to port 546 (a client's) or from a port that is neither.
    NotToServerPort,
    /// Dropped by the rate limit.
    RateLimited,
    /// Dropped by the simulated loss.
    SimulatedDrop,
    /// Refused by the server core.
    Server(Reject6),
}

const FRAME_N: usize = Frame6Error::ALL.len();
const SERVER_N: usize = 6;
const REJECT_N: usize = FRAME_N + 3 + SERVER_N;

fn server_index(r: Reject6) -> usize {
    match r {
        Reject6::Malformed(_) => 0,
        Reject6::UnexpectedType => 1,
        Reject6::NoClientId => 2,
        Reject6::ServerId => 3,
        Reject6::Relay => 4,
        Reject6::NoRoom => 5,
    }
}

impl Link6Reject {
    /// Index in the counter array.
    pub fn index(&self) -> usize {
        match self {
            Link6Reject::Frame(e) => e.index(),
            Link6Reject::NotToServerPort => FRAME_N,
            Link6Reject::RateLimited => FRAME_N + 1,
            Link6Reject::SimulatedDrop => FRAME_N + 2,
            Link6Reject::Server(r) => FRAME_N + 3 + server_index(*r),
        }
    }

    /// Stable `snake_case` name of the counter at `i`.
    pub fn name_of_index(i: usize) -> &'static str {
        const SERVER: [&str; SERVER_N] = [
            "malformed",
            "unexpected_type",
            "no_client_id",
            "server_id",
            "relay",
            "no_room",
        ];
        match i {
            i if i < FRAME_N => Frame6Error::ALL[i].as_str(),
            i if i == FRAME_N => "not_to_server_port",
            i if i == FRAME_N + 1 => "rate_limited",
            i if i == FRAME_N + 2 => "simulated_drop",
            i => SERVER.get(i - FRAME_N - 3).copied().unwrap_or("unknown"),
        }
    }

    /// Stable `snake_case` name.
    pub fn as_str(&self) -> &'static str {
        Self::name_of_index(self.index())
    }
}

/// A reply frame written by [`Server6Link::handle_frame`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Reply6 {
    /// Frame length.
    pub len: usize,
    /// Simulated delay: send at `now + delay` ticks.
    pub delay: u64,
}

/// A summary of the DHCPv6 side (serialised in `--json`).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Server6Report {
    /// Messages received by type name (SOLICIT, REQUEST, …, RELAY-FORW).
    pub received: BTreeMap<&'static str, u64>,
    /// ADVERTISEs sent.
    pub advertise_sent: u64,
    /// REPLYs sent.
    pub reply_sent: u64,
    /// IAs answered NoAddrsAvail / NoPrefixAvail.
    pub exhausted: u64,
    /// IAs answered NoBinding.
    pub no_binding: u64,
    /// Replies given a non-zero simulated delay.
    pub delayed: u64,
    /// Addresses bound now.
    pub addresses_bound: u64,
    /// Prefixes delegated now.
    pub prefixes_bound: u64,
    /// Non-zero rejection counters by name.
    pub rejects: BTreeMap<&'static str, u64>,
}

#[derive(Debug)]
struct Bucket {
    level: u64,
    cap: u64,
    cost: u64,
    per_tick: u64,
    last: u64,
}

/// The DHCPv6 server on one port. See the [module documentation](self).
#[derive(Debug)]
pub struct Server6Link {
    server: Server6,
    mac: MacAddr,
    link_local: Ipv6Addr,
    addrs: Vec<Ipv6Addr>,
    hz: u64,
    drop_p: f64,
    delay: (u64, u64),
    bucket: Option<Bucket>,
    rng: SmallRng,
    rejects: [u64; REJECT_N],
    delayed: u64,
}

const MSG_NAMES: [&str; 14] = [
    "0",
    "solicit",
    "advertise",
    "request",
    "confirm",
    "renew",
    "rebind",
    "reply",
    "release",
    "decline",
    "reconfigure",
    "information_request",
    "relay_forw",
    "relay_repl",
];

impl Server6Link {
    /// A server for `cfg` on a port with `mac` and the configured `addrs`
    /// (global ones; the link-local address is derived from `mac`), with
    /// `faults` drawn from `seed`, on a clock of `hz` ticks per second.
    pub fn new(
        cfg: &Server6Config,
        mac: MacAddr,
        addrs: &[Ipv6Addr],
        faults: &FaultConfig,
        seed: u64,
        hz: u64,
    ) -> Result<Server6Link, Config6Error> {
        let hz = hz.max(1);
        if !(0.0..=1.0).contains(&faults.drop_probability) {
            return Err(Config6Error("drop probability must be in 0..=1".into()));
        }
        let delay = match faults.delay {
            DelayConfig::None => (0, 0),
            DelayConfig::Fixed(d) => (duration_to_ticks(d, hz), duration_to_ticks(d, hz)),
            DelayConfig::Uniform { min, max } if min <= max => {
                (duration_to_ticks(min, hz), duration_to_ticks(max, hz))
            }
            DelayConfig::Uniform { .. } => return Err(Config6Error("delay min above max".into())),
        };
        let bucket = match faults.rate_limit {
            None => None,
            Some(r) if r.per_sec == 0 || r.burst == 0 => {
                return Err(Config6Error("rate limit of 0".into()))
            }
            Some(r) => Some(Bucket {
                level: r.burst.saturating_mul(hz),
                cap: r.burst.saturating_mul(hz),
                cost: hz,
                per_tick: r.per_sec,
                last: 0,
            }),
        };
        let link_local = qsplice_wire::ipv6::link_local(mac);
        let mut all = vec![link_local];
        all.extend(addrs.iter().copied().filter(|a| *a != link_local));
        Ok(Server6Link {
            server: Server6::new(cfg)?,
            mac,
            link_local,
            addrs: all,
            hz,
            drop_p: faults.drop_probability,
            delay,
            bucket,
            rng: SmallRng::seed_from_u64(seed ^ 0x6666),
            rejects: [0; REJECT_N],
            delayed: 0,
        })
    }

    /// The server core.
    pub fn server(&self) -> &Server6 {
        &self.server
    }

    /// Our link-local address.
    pub fn link_local(&self) -> Ipv6Addr {
        self.link_local
    }

    /// Whether `a` is one of our addresses (Neighbor Discovery).
    pub fn owns(&self, a: Ipv6Addr) -> bool {
        self.addrs.contains(&a)
    }

    /// Whether a frame to `a` is for us: one of our addresses, the
    /// All_DHCP_Relay_Agents_and_Servers group, or All_DHCP_Servers
    /// (ff05::1:3).
    pub fn accepts(&self, a: Ipv6Addr) -> bool {
        a == wire6::ALL_RELAYS_AND_SERVERS
            || a == Ipv6Addr::new(0xff05, 0, 0, 0, 0, 0, 1, 3)
            || self.owns(a)
    }

    fn take_token(&mut self, now: u64) -> bool {
        let Some(b) = self.bucket.as_mut() else {
            return true;
        };
        let elapsed = now.saturating_sub(b.last);
        b.last = b.last.max(now);
        b.level = b
            .level
            .saturating_add(elapsed.saturating_mul(b.per_tick))
            .min(b.cap);
        if b.level >= b.cost {
            b.level -= b.cost;
            true
        } else {
            false
        }
    }

    fn count(&mut self, r: Link6Reject) -> Link6Reject {
        self.rejects[r.index()] += 1;
        r
    }

    /// Answers a whole frame received at `now` (ticks) by writing the
    /// whole reply frame into `out`. `Ok(None)`: not for a DHCPv6 server
    /// (another host's unicast, not UDP, not to port 546/547), nothing
    /// counted here.
    pub fn handle_frame(
        &mut self,
        now: u64,
        frame: &[u8],
        out: &mut [u8],
    ) -> Result<Option<Reply6>, Link6Reject> {
        let p = match parse_frame6(frame) {
            Ok(p) => p,
            // The link's other traffic (MLD reports, router solicitations,
            // mDNS, …) is not a DHCPv6 message gone wrong.
            Err(Frame6Error::NotUdp | Frame6Error::NotDhcpPort) => return Ok(None),
            Err(e) => return Err(self.count(Link6Reject::Frame(e))),
        };
        if !self.accepts(p.meta.dst_ip) {
            return Ok(None);
        }
        let from_relay = p.meta.src_port == SERVER_PORT;
        if p.meta.dst_port != SERVER_PORT || !(from_relay || p.meta.src_port == CLIENT_PORT) {
            return Err(self.count(Link6Reject::NotToServerPort));
        }
        if !self.take_token(now) {
            return Err(self.count(Link6Reject::RateLimited));
        }
        if self.drop_p > 0.0 && self.rng.random::<f64>() < self.drop_p {
            return Err(self.count(Link6Reject::SimulatedDrop));
        }
        let src_ip = if self.owns(p.meta.dst_ip) {
            p.meta.dst_ip
        } else if is_link_local(p.meta.src_ip) || self.addrs.len() == 1 {
            self.link_local
        } else {
            self.addrs[1]
        };
        let spec = Frame6Spec {
            src_mac: self.mac,
            dst_mac: p.meta.src_mac,
            vlan: p.meta.vlan,
            src_ip,
            dst_ip: p.meta.src_ip,
            src_port: SERVER_PORT,
            dst_port: p.meta.src_port,
            hop_limit: if is_link_local(p.meta.src_ip) {
                255
            } else {
                64
            },
        };
        let off = spec.offset();
        let secs = now / self.hz;
        let m = p.message(frame);
        let Some(body) = out.get_mut(off..) else {
            return Err(self.count(Link6Reject::Server(Reject6::NoRoom)));
        };
        let n = match self.server.handle(secs, m, body) {
            Ok(n) => n,
            Err(r) => return Err(self.count(Link6Reject::Server(r))),
        };
        let len = match spec.emit(out, n) {
            Ok(l) => l,
            Err(_) => return Err(self.count(Link6Reject::Server(Reject6::NoRoom))),
        };
        let delay = if self.delay.1 == 0 {
            0
        } else if self.delay.0 == self.delay.1 {
            self.delay.0
        } else {
            self.rng.random_range(self.delay.0..=self.delay.1)
        };
        if delay > 0 {
            self.delayed += 1;
        }
        Ok(Some(Reply6 { len, delay }))
    }

    /// Frees expired leases (a bounded number per call: 65,536 per pool);
    /// the loop calls it every 100 ms.
    pub fn tick(&mut self, now: u64) {
        self.server.tick(now / self.hz, 1 << 16);
    }

    /// A summary at `now` (ticks; allocates: not for the packet path).
    pub fn report(&self, now: u64) -> Server6Report {
        let c = self.server.counters();
        let mut received = BTreeMap::new();
        for (i, &n) in c.received.iter().enumerate() {
            if n > 0 {
                received.insert(MSG_NAMES[i], n);
            }
        }
        let mut rejects = BTreeMap::new();
        for (i, &n) in self.rejects.iter().enumerate() {
            if n > 0 {
                rejects.insert(Link6Reject::name_of_index(i), n);
            }
        }
        let _ = now;
        let (a, p) = self.server.bound();
        Server6Report {
            received,
            advertise_sent: c.advertised,
            reply_sent: c.replied,
            exhausted: c.exhausted,
            no_binding: c.no_binding,
            delayed: self.delayed,
            addresses_bound: a as u64,
            prefixes_bound: p as u64,
            rejects,
        }
    }

    /// Rejections counted under `r`.
    pub fn rejected(&self, r: Link6Reject) -> u64 {
        self.rejects[r.index()]
    }
}

fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// Message type names, for reports (index = msg-type).
pub fn msg_name(t: u8) -> &'static str {
    MSG_NAMES.get(usize::from(t)).copied().unwrap_or("unknown")
}

const _: () = assert!(msg::RELAY_REPL as usize == MSG_NAMES.len() - 1);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::RateLimit;
    use crate::wire6::{opt, Dhcp6Packet, Writer};
    use core::time::Duration;

    const HZ: u64 = 1_000_000_000;
    const SRV: MacAddr = MacAddr([2, 0xaa, 0, 0, 0, 1]);
    const CLI: MacAddr = MacAddr([2, 0xbb, 0, 0, 0, 7]);

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn cfg() -> Server6Config {
        Server6Config {
            duid: wire6::duid_ll(SRV.0).to_vec(),
            addr_first: a("2001:db8:30::1000"),
            addr_count: 100,
            pd: Some((a("2001:db8:4000::"), 40, 56)),
            preferred_s: 3000,
            valid_s: 4000,
            t1_s: 1000,
            t2_s: 2000,
            rapid_commit: true,
            preference: 255,
            offer_hold_s: 30,
        }
    }

    fn link(f: FaultConfig) -> Server6Link {
        Server6Link::new(&cfg(), SRV, &[a("2001:db8:30::1")], &f, 1, HZ).unwrap()
    }

    /// A SOLICIT with an IA_NA from CLI's link-local to ff02::1:2, or as
    /// `relay` (RELAY-FORW from 2001:db8:31::1 with an Interface-ID).
    fn solicit(relay: bool, rapid: bool) -> Vec<u8> {
        solicit_to(relay, rapid, wire6::ALL_RELAYS_AND_SERVERS)
    }

    fn solicit_to(relay: bool, rapid: bool, dst: Ipv6Addr) -> Vec<u8> {
        let mut m = [0u8; 512];
        let duid = wire6::duid_ll(CLI.0);
        let mut w = Writer::message(&mut m, msg::SOLICIT, 0x123456).unwrap();
        w.option(opt::CLIENTID, &duid).unwrap();
        w.option(opt::ELAPSED_TIME, &[0, 0]).unwrap();
        if rapid {
            w.option(opt::RAPID_COMMIT, &[]).unwrap();
        }
        w.begin(opt::IA_NA, &Writer::ia_fixed(1, 0, 0)).unwrap();
        w.end().unwrap();
        let n = w.finish().unwrap();
        let cll = qsplice_wire::ipv6::link_local(CLI);
        let (body, src_ip, sport) = if relay {
            let mut r = [0u8; 600];
            let mut w =
                Writer::relay(&mut r, msg::RELAY_FORW, 0, a("2001:db8:31::1"), cll).unwrap();
            w.option(opt::INTERFACE_ID, b"port-7").unwrap();
            w.option(opt::RELAY_MSG, &m[..n]).unwrap();
            let k = w.finish().unwrap();
            (r[..k].to_vec(), a("2001:db8:31::1"), SERVER_PORT)
        } else {
            (m[..n].to_vec(), cll, CLIENT_PORT)
        };
        let spec = Frame6Spec {
            src_mac: CLI,
            dst_mac: Frame6Spec::mac_for(dst, SRV),
            vlan: None,
            src_ip,
            dst_ip: dst,
            src_port: sport,
            dst_port: SERVER_PORT,
            hop_limit: 1,
        };
        let mut f = vec![0u8; 1024];
        let off = spec.offset();
        f[off..off + body.len()].copy_from_slice(&body);
        let l = spec.emit(&mut f, body.len()).unwrap();
        f.truncate(l);
        f
    }

    #[test]
    fn a_direct_solicit_is_answered_to_the_clients_link_local() {
        let mut l = link(FaultConfig::default());
        let mut out = [0u8; 1500];
        let r = l
            .handle_frame(HZ, &solicit(false, false), &mut out)
            .unwrap()
            .unwrap();
        let p = parse_frame6(&out[..r.len]).unwrap();
        assert_eq!(p.meta.dst_mac, CLI);
        assert_eq!(p.meta.src_mac, SRV);
        assert_eq!(p.meta.dst_ip, qsplice_wire::ipv6::link_local(CLI));
        assert_eq!(p.meta.src_ip, qsplice_wire::ipv6::link_local(SRV));
        assert_eq!((p.meta.src_port, p.meta.dst_port), (547, 546));
        let d = Dhcp6Packet::new_checked(p.message(&out)).unwrap();
        assert_eq!(d.msg_type(), msg::ADVERTISE);
        assert_eq!(d.xid(), 0x123456);
        // Rapid Commit: a REPLY binding at once.
        let r = l
            .handle_frame(HZ, &solicit(false, true), &mut out)
            .unwrap()
            .unwrap();
        let p = parse_frame6(&out[..r.len]).unwrap();
        let d = Dhcp6Packet::new_checked(p.message(&out)).unwrap();
        assert_eq!(d.msg_type(), msg::REPLY);
        let rep = l.report(HZ);
        assert_eq!(rep.addresses_bound, 1);
        assert_eq!(rep.received.get("solicit"), Some(&2));
    }

    #[test]
    fn a_relayed_solicit_is_answered_to_the_relay_on_547_with_its_interface_id() {
        let mut l = link(FaultConfig::default());
        let mut out = [0u8; 1500];
        let r = l
            .handle_frame(HZ, &solicit(true, false), &mut out)
            .unwrap()
            .unwrap();
        let p = parse_frame6(&out[..r.len]).unwrap();
        assert_eq!(p.meta.dst_ip, a("2001:db8:31::1"));
        assert_eq!(
            p.meta.src_ip,
            a("2001:db8:30::1"),
            "a global peer gets our global address"
        );
        assert_eq!((p.meta.src_port, p.meta.dst_port), (547, 547));
        let d = Dhcp6Packet::new_checked(p.message(&out)).unwrap();
        assert_eq!(d.msg_type(), msg::RELAY_REPL);
        assert_eq!(d.option(opt::INTERFACE_ID), Some(&b"port-7"[..]));
        let inner = d.relay_msg().unwrap().unwrap();
        assert_eq!(inner.msg_type(), msg::ADVERTISE);
    }

    #[test]
    fn frames_for_others_and_bad_frames_are_told_apart() {
        let mut l = link(FaultConfig::default());
        let mut out = [0u8; 1500];
        // Unicast to another host's address: not ours, nothing counted.
        let f = solicit_to(false, false, a("2001:db8:30::99"));
        assert_eq!(l.handle_frame(HZ, &f, &mut out), Ok(None));
        // To our global address: answered from it.
        let f = solicit_to(false, false, a("2001:db8:30::1"));
        let r = l.handle_frame(HZ, &f, &mut out).unwrap().unwrap();
        assert_eq!(
            parse_frame6(&out[..r.len]).unwrap().meta.src_ip,
            a("2001:db8:30::1")
        );
        let mut f = solicit(false, false);
        f[14 + 40 + 6] ^= 0xff;
        assert_eq!(
            l.handle_frame(HZ, &f, &mut out),
            Err(Link6Reject::Frame(Frame6Error::BadUdpChecksum))
        );
        let mut g = solicit(false, false);
        g[20] = 6; // TCP
        assert_eq!(
            l.handle_frame(HZ, &g, &mut out),
            Ok(None),
            "not UDP: the link's other traffic"
        );
        assert_eq!(l.report(HZ).rejects.get("bad_udp_checksum"), Some(&1));
        assert!(l.owns(l.link_local()) && l.owns(a("2001:db8:30::1")));
        assert!(!l.owns(a("2001:db8:30::2")));
    }

    #[test]
    fn faults_drop_rate_limit_and_delay() {
        let mut l = link(FaultConfig {
            drop_probability: 0.5,
            delay: DelayConfig::Fixed(Duration::from_millis(3)),
            rate_limit: None,
        });
        let mut out = [0u8; 1500];
        let (mut ok, mut dropped) = (0, 0);
        for _ in 0..400 {
            match l.handle_frame(HZ, &solicit(false, false), &mut out) {
                Ok(Some(r)) => {
                    assert_eq!(r.delay, 3_000_000);
                    ok += 1
                }
                Err(Link6Reject::SimulatedDrop) => dropped += 1,
                e => panic!("{e:?}"),
            }
        }
        assert!((120..280).contains(&ok), "{ok} answered of 400 at p=0.5");
        assert_eq!(ok + dropped, 400);
        let mut l = link(FaultConfig {
            drop_probability: 0.0,
            delay: DelayConfig::None,
            rate_limit: Some(RateLimit {
                per_sec: 10,
                burst: 5,
            }),
        });
        let n = (0..20)
            .filter(|_| l.handle_frame(HZ, &solicit(false, false), &mut out).is_ok())
            .count();
        assert_eq!(n, 5, "the burst");
        assert_eq!(l.rejected(Link6Reject::RateLimited), 15);
        // 1 s later, 10 more tokens (capped at the burst of 5).
        let n = (0..20)
            .filter(|_| {
                l.handle_frame(2 * HZ, &solicit(false, false), &mut out)
                    .is_ok()
            })
            .count();
        assert_eq!(n, 5);
    }

    #[test]
    fn reject_names_are_distinct() {
        let names: std::collections::BTreeSet<_> =
            (0..REJECT_N).map(Link6Reject::name_of_index).collect();
        assert_eq!(names.len(), REJECT_N);
        assert!(!names.contains("unknown"));
    }
}
