//! The IPv6 edge: IPv6 segments in (translated to the IPv4 path with
//! stand-in addresses), segments to stand-ins out as IPv6, neighbours of
//! stand-ins resolved over NDP. See [`crate::six`].

use std::net::{IpAddr, Ipv6Addr};

use qsplice_splice::family::{headroom_for_6, tcp4_to_6, tcp6_to_4};

use super::*;
use crate::six::{self, Clients, SixMap};

/// Client stand-in slots examined per tick for expiry.
const SWEEP_BUDGET: usize = 1024;

/// One lcore's IPv6 edge state.
#[derive(Debug)]
pub(super) struct Edge {
    pub(super) six: SixMap,
    /// Allocated once the services name an IPv6 address.
    clients: Option<Clients>,
    /// Any IPv6 at all (else every check is skipped).
    on: bool,
    local: Ipv4Addr,
    secret: qsplice_splice::isn::IsnSecret,
    capacity: usize,
    keep: u64,
    sweep: usize,
    /// The clock at the last IPv6 segment in or tick (slots touched by
    /// segments sent to their clients).
    now: u64,
    pub(super) out: u64,
    pub(super) untranslatable: u64,
}

/// RFC 6437 flow label of a flow: a hash of its addresses and ports.
#[inline]
fn flow_label(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16) -> u32 {
    let (s, d) = (src.to_bits(), dst.to_bits());
    let x = (s ^ s >> 64 ^ d ^ d >> 64) as u64 ^ (u64::from(sport) << 16 | u64::from(dport));
    let h = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((h >> 40) as u32 & 0xf_ffff).max(1)
}

impl Edge {
    /// `keep`: clock ticks a client stand-in outlives its last segment.
    pub(super) fn new(
        six: SixMap,
        local: Ipv4Addr,
        secret: qsplice_splice::isn::IsnSecret,
        capacity: usize,
        keep: u64,
    ) -> Edge {
        let mut e = Edge {
            six: SixMap::default(),
            clients: None,
            on: false,
            local,
            secret,
            capacity,
            keep,
            sweep: 0,
            now: 0,
            out: 0,
            untranslatable: 0,
        };
        e.set_map(six);
        e
    }

    /// New services' stand-ins (at a tick: may allocate the client table).
    pub(super) fn set_map(&mut self, six: SixMap) {
        self.on = !six.is_empty();
        self.six = six;
        if self.on && self.clients.is_none() {
            self.clients = Some(Clients::new(self.capacity, self.keep, self.secret));
        }
    }

    #[inline(always)]
    pub(super) fn on(&self) -> bool {
        self.on
    }

    /// Expire unused client stand-ins (a bounded step); clients in use.
    pub(super) fn tick(&mut self, now: u64) -> u64 {
        self.now = now;
        match self.clients.as_mut() {
            Some(c) => {
                c.sweep(now, &mut self.sweep, SWEEP_BUDGET);
                c.len() as u64
            }
            None => 0,
        }
    }

    /// Client stand-in `ip`'s client completed a handshake: keep its slot.
    #[inline]
    pub(super) fn confirm(&mut self, ip: Ipv4Addr) {
        if self.on && six::is_client_standin(ip) {
            if let Some(c) = self.clients.as_mut() {
                c.confirm(ip);
            }
        }
    }

    /// The stand-in client `a` has on this lcore, if any (none is made).
    pub(super) fn find_client(&self, a: Ipv6Addr) -> Option<Ipv4Addr> {
        self.clients.as_ref().and_then(|c| c.find(a))
    }

    /// The address `ip` stands for (itself when it is no stand-in).
    pub(super) fn real(&self, ip: Ipv4Addr) -> IpAddr {
        if !(self.on && six::is_standin(ip)) {
            return IpAddr::V4(ip);
        }
        let a = if six::is_client_standin(ip) {
            self.clients.as_ref().and_then(|c| c.get(ip))
        } else if ip == self.local {
            self.six.local6
        } else {
            self.six.to6(ip)
        };
        a.map_or(IpAddr::V4(ip), IpAddr::V6)
    }

    /// [`Self::real`] of an address and port.
    pub(super) fn real_sock(&self, a: SocketAddrV4) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.real(*a.ip()), a.port())
    }

    /// The scheduler's hash of a connection (see
    /// [`qsplice_pool::Snapshot::key_hash_ip`]): of the real addresses when
    /// one is a stand-in, so that an IPv6 client hashes alike on every
    /// lcore and node.
    #[inline]
    pub(super) fn key_hash(
        &self,
        snap: &qsplice_pool::Snapshot,
        client: SocketAddrV4,
        vip: SocketAddrV4,
    ) -> u64 {
        if self.on && (six::is_standin(*client.ip()) || six::is_standin(*vip.ip())) {
            snap.key_hash_ip(self.real_sock(client), self.real_sock(vip))
        } else {
            snap.key_hash(client, vip)
        }
    }

    /// The next hop's MAC toward `ip` on port `pi` (NDP for a stand-in).
    #[inline]
    pub(super) fn resolve<Q: Queue>(
        &self,
        io: &mut Io<'_, Q>,
        pi: usize,
        ip: Ipv4Addr,
    ) -> Option<MacAddr> {
        if self.on && six::is_standin(ip) {
            return self.six.to6(ip).and_then(|a| io.resolve6(pi, a));
        }
        io.resolve(pi, ip)
    }

    /// Queue `f` on port `pi`, as IPv6 when it is addressed to a stand-in.
    #[inline(always)]
    pub(super) fn send<Q: Queue>(&mut self, io: &mut Io<'_, Q>, pi: usize, f: Q::Frame) {
        if self.on {
            let d = f.data();
            // Untagged IPv4 (what the balancer builds and mostly forwards):
            // the destination's first byte at 30; anything else parsed.
            let l3 = if d.get(12..14) == Some(&[8, 0]) {
                Some(14)
            } else {
                ethernet_l3(d)
                    .ok()
                    .filter(|(t, _, _)| *t == 0x0800)
                    .map(|(_, l3, _)| l3)
            };
            let to_standin = l3
                .and_then(|l3| d.get(l3 + 16))
                .is_some_and(|b| *b >= (six::STATIC_BASE >> 24) as u8);
            if to_standin {
                return self.send6(io, pi, f);
            }
        }
        io.send(pi, f)
    }

    fn send6<Q: Queue>(&mut self, io: &mut Io<'_, Q>, pi: usize, mut f: Q::Frame) {
        let Some((l3, l4, end, s4, d4, ports)) = (|| {
            let d = f.data();
            let (_, l3, _) = ethernet_l3(d).ok()?;
            let ip = Ipv4Packet::new_checked(d.get(l3..)?).ok()?;
            let l4 = l3 + usize::from(ip.header_len());
            let end = l3 + usize::from(ip.total_len());
            let p = d.get(l4..l4 + 4)?;
            Some((
                l3,
                l4,
                end,
                ip.src_addr(),
                ip.dst_addr(),
                (
                    u16::from_be_bytes([p[0], p[1]]),
                    u16::from_be_bytes([p[2], p[3]]),
                ),
            ))
        })() else {
            self.untranslatable += 1;
            return;
        };
        let dst = if six::is_client_standin(d4) {
            self.clients.as_mut().and_then(|c| {
                c.touch(d4, self.now);
                c.get(d4)
            })
        } else {
            self.six.to6(d4)
        };
        let src = if s4 == self.local {
            self.six.local6
        } else {
            self.six.to6(s4)
        };
        let (Some(src), Some(dst)) = (src, dst) else {
            self.untranslatable += 1;
            return;
        };
        let room = headroom_for_6(0, l3, l4);
        if room > 0 && !f.prepend(room) {
            self.untranslatable += 1;
            return;
        }
        let label = flow_label(src, dst, ports.0, ports.1);
        match tcp4_to_6(f.data_mut(), (room, room + l3, room + l4), src, dst, label) {
            Ok(start) => {
                // Padding of a short IPv4 frame goes; the front moves up.
                if !f.set_len(room + end) || !f.adj(start) {
                    self.untranslatable += 1;
                    return;
                }
            }
            Err(_) => {
                self.untranslatable += 1;
                return;
            }
        }
        self.out += 1;
        io.send(pi, f)
    }
}

impl<F: Frame> LbCore<F> {
    /// An IPv6 TCP segment for one of our addresses (see
    /// `Service::on_ipv6`): to `lb.local6` from a backend, or to an IPv6
    /// VIP from a client. Translated in place and handed to the IPv4 path;
    /// anything else is declined.
    pub(super) fn on_ipv6_tcp<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        pi: usize,
        mut f: F,
        (l3, l4, end): (usize, usize, usize),
        now: u64,
    ) -> Option<F> {
        let d = f.data();
        let Some(a) = d.get(l3 + 8..l3 + 40) else {
            self.c.six_bad += 1;
            return None;
        };
        let mut s = [0u8; 16];
        s.copy_from_slice(&a[..16]);
        let mut t = [0u8; 16];
        t.copy_from_slice(&a[16..]);
        let (src6, dst6) = (Ipv6Addr::from(s), Ipv6Addr::from(t));
        self.edge.now = now;
        let backend = pi == self.conf.backend_port && Some(dst6) == self.edge.six.local6;
        let (src4, dst4) = if backend {
            match self.edge.six.to4(src6) {
                Some(s) => (s, self.conf.local),
                None => {
                    self.c.six_unknown_source += 1;
                    return None;
                }
            }
        } else if pi == self.conf.client_port {
            let Some(vip) = self.edge.six.to4(dst6).filter(|v| self.vix.has_ip(*v)) else {
                return Some(f);
            };
            let Some(clients) = self.edge.clients.as_mut() else {
                return Some(f);
            };
            match clients.intern(src6, now) {
                Ok(s) => (s, vip),
                Err(_) => {
                    self.c.six_clients_full += 1;
                    return None;
                }
            }
        } else {
            return Some(f);
        };
        match tcp6_to_4(f.data_mut(), (0, l3, l4), src4, dst4) {
            Ok(start) if f.set_len(end) && f.adj(start) => {}
            _ => {
                self.c.six_bad += 1;
                return None;
            }
        }
        self.c.six_in += 1;
        // The link header kept its length: the IPv4 header is at `l3`.
        if backend {
            self.on_backend(io, f, l3, false, now);
        } else {
            self.on_client(io, f, l3, now);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_labels_are_per_flow_and_never_zero() {
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let x = flow_label(a, b, 1000, 80);
        assert_eq!(x, flow_label(a, b, 1000, 80));
        assert_ne!(x, flow_label(a, b, 1001, 80));
        assert!(x > 0 && x <= 0xf_ffff);
    }
}
