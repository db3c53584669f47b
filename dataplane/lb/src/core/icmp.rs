//! Path MTU discovery through the splice: "packet too big" errors about a
//! spliced flow's segments (ICMPv4 Fragmentation Needed, ICMPv6 Packet Too
//! Big) are handed on to the host that sent the bytes, translated to its
//! leg of the connection.
//!
//! ```text
//! router on the client side ── PTB about VIP → client (seq in the client leg)
//!    → flow by (client, VIP) → PTB local → backend about backend → local,
//!      seq − s2c delta, MTU for the backend leg's family
//! router on the backend side ── PTB about local → backend
//!    → flow by (backend, local) → PTB VIP → client about client → VIP,
//!      seq − c2s delta, MTU for the client leg's family
//! ```
//!
//! The receiving stack matches its connection by the quoted addresses and
//! ports and checks the quoted sequence number against its send window
//! (Linux: `snd_una ≤ seq ≤ snd_nxt`), so the quote must be exact: the
//! one of the segment the host itself sent. Families may differ (NAT64 /
//! NAT46): the MTU then changes by the header difference (RFC 7915).
//!
//! An error about the backend leg is steered by the quoted source port to
//! the lcore that owns it, like the backend's segments; one about the
//! client leg may arrive on any lcore (the NIC hashes the router's address,
//! not the flow's), so an lcore that does not hold the flow hands a copy
//! to every other lcore, and the one that holds it answers. Errors are
//! rate-limited per lcore ([`PTB_PER_MS`], burst [`PTB_BURST`]); anything
//! An error about a TLS-terminated connection's segment goes to that leg's
//! TCP endpoint (the appliance's own), which lowers its MSS and sends its
//! flight again at the new size. Anything else — other ICMP errors,
//! errors about no connection of this node — is declined (the kernel
//! interface, if any, sees it as before).

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

use qsplice_wire::ptb::{self, PtbError, Quoted};
use qsplice_wire::Ipv6Packet;

use super::*;

/// Errors taken per millisecond per lcore (sustained).
pub(super) const PTB_PER_MS: u32 = 4;
/// Errors taken at once after a quiet spell.
pub(super) const PTB_BURST: u32 = 64;

/// Ethertypes.
const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;

impl<F: Frame> LbCore<F> {
    /// Refill the rate limit (every tick).
    pub(super) fn ptb_tick(&mut self) {
        self.ptb_tokens = (self.ptb_tokens + PTB_PER_MS).min(PTB_BURST);
    }

    /// The lcore-path (IPv4, stand-in) address of `a`: itself for IPv4;
    /// for IPv6 `lb.local6`'s stand-in, a VIP's or backend's static one, or
    /// a client's (only if this lcore's table has one: never made here).
    fn ptb_addr(&self, a: IpAddr) -> Option<Ipv4Addr> {
        match a {
            IpAddr::V4(v) => Some(v),
            IpAddr::V6(v) => {
                if !self.edge.on() {
                    None
                } else if Some(v) == self.edge.six.local6 {
                    Some(self.conf.local)
                } else {
                    self.edge.six.to4(v).or_else(|| self.edge.find_client(v))
                }
            }
        }
    }

    /// An ICMP error from the engine (see `Service::on_icmp_error`), or one
    /// another lcore handed here (`steered`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_icmp<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        pi: usize,
        f: F,
        v6: bool,
        (_l3, l4, end): (usize, usize, usize),
        steered: bool,
        now: u64,
    ) -> Option<F> {
        let p = match f.data().get(l4..end).map(|m| ptb::parse(m, v6)) {
            Some(Ok(p)) => p,
            Some(Err(PtbError::NotPtb | PtbError::NotTcp)) => return Some(f),
            Some(Err(PtbError::Malformed)) | None => {
                self.c.ptb_malformed += 1;
                return Some(f);
            }
        };
        let q = p.quoted;
        let (Some(qs), Some(qd)) = (self.ptb_addr(q.src.0), self.ptb_addr(q.dst.0)) else {
            // An IPv6 address this node has no stand-in for: no flow of
            // ours (a client stand-in lives on another lcore, maybe).
            return self.ptb_elsewhere(io, pi, f, steered);
        };
        let (qs, qd) = (
            SocketAddrV4::new(qs, q.src.1),
            SocketAddrV4::new(qd, q.dst.1),
        );
        let client_side = pi == self.conf.client_port;
        if !client_side && pi != self.conf.backend_port {
            return Some(f);
        }
        if !client_side && !steered {
            // About local:port → backend: the lcore owning the port.
            let owner = if *qs.ip() == self.conf.local {
                self.owner_of(qs.port())
            } else if self.adopt.claims(*qs.ip()) {
                Some(FlowSyncShared::owner(qs.port(), self.conf.sport_min, self.conf.lcores) as u16)
            } else {
                None
            };
            let Some(owner) = owner else {
                return Some(f);
            };
            if owner != self.conf.lcore {
                return self.ptb_steer(f, owner);
            }
        }
        if self.ptb_tokens == 0 {
            self.c.ptb_limited += 1;
            return None;
        }
        self.ptb_tokens -= 1;
        // A TLS-terminated connection: its TCP is our own; the leg's
        // endpoint lowers its MSS (IP and TCP headers off the MTU).
        let mss = p.mtu.saturating_sub(if v6 { 60 } else { 40 });
        if self.term.active() > 0 {
            if let Some(applied) = self.term_ptb(io, client_side, (qd, qs), (mss, q.seq), now) {
                if applied {
                    self.c.ptb_terminated += 1;
                } else {
                    self.c.ptb_no_flow += 1;
                }
                return None;
            }
        }
        // Client side: about VIP → client (the flow's key is client → VIP);
        // backend side: about local → backend (key backend → local).
        let want = if client_side { Dir::C2S } else { Dir::S2C };
        let hit = self.flows.lookup(qd, qs).filter(|(_, d)| *d == want);
        let Some((id, _)) = hit else {
            return if client_side {
                self.ptb_elsewhere(io, pi, f, steered)
            } else {
                self.c.ptb_no_flow += 1;
                Some(f)
            };
        };
        let m = self.meta[id as usize];
        let Some(par) = self.flows.get(id).map(|fl| fl.params) else {
            return Some(f);
        };
        if m.phase != Phase::Spliced || m.closed {
            self.c.ptb_no_flow += 1;
            return None;
        }
        // The segment the other host sent, before the splice translated it.
        let (out_port, mac, from, to, quoted_src, quoted_dst, seq) = if client_side {
            (
                self.conf.backend_port,
                m.backend_mac,
                par.local,
                par.server,
                par.server,
                par.local,
                q.seq.wrapping_sub(par.s2c_seq_delta),
            )
        } else {
            (
                self.conf.client_port,
                m.client_mac,
                par.vip,
                par.client,
                par.client,
                par.vip,
                q.seq.wrapping_sub(par.c2s_seq_delta),
            )
        };
        let to = self.edge.real(*to.ip());
        let out_v6 = to.is_ipv6();
        // `local` is IPv4 on the lcore path; toward an IPv6 backend it is
        // `lb.local6`.
        let real = |a: Ipv4Addr| match self.edge.real(a) {
            IpAddr::V4(v) if out_v6 && v == self.conf.local => {
                self.edge.six.local6.map_or(IpAddr::V4(v), IpAddr::V6)
            }
            r => r,
        };
        let from = real(*from.ip());
        let in_v6 = v6;
        let ip_len = match (in_v6, out_v6) {
            (true, false) => q.ip_len.saturating_sub(20),
            (false, true) => q.ip_len.saturating_add(20),
            _ => q.ip_len,
        };
        if p.mtu == 0 {
            // A pre-RFC 1191 router: no MTU to hand on.
            self.c.ptb_malformed += 1;
            return None;
        }
        let quoted = Quoted {
            src: (real(*quoted_src.ip()), quoted_src.port()),
            dst: (real(*quoted_dst.ip()), quoted_dst.port()),
            seq,
            ip_len,
        };
        let mtu = ptb::translate_mtu(p.mtu, in_v6, out_v6);
        // The error is answered: its frame carries the new one.
        let mut g = f;
        let need = 14 + ptb::len(out_v6);
        if !g.set_len(need) {
            self.c.drop_no_buffer += 1;
            return None;
        }
        let d = g.data_mut();
        d[0..6].copy_from_slice(&mac.0);
        d[6..12].copy_from_slice(&io.mac(out_port).0);
        let et = if out_v6 { ETH_IPV6 } else { ETH_IPV4 };
        d[12..14].copy_from_slice(&et.to_be_bytes());
        match ptb::write(&mut d[14..], from, to, mtu, &quoted) {
            Some(_) => {
                self.c.ptb_forwarded += 1;
                io.send(out_port, g);
            }
            // (Families that do not fit: an address with no IPv6 form.)
            None => self.c.ptb_untranslatable += 1,
        }
        None
    }

    /// A client-side error about no flow of this lcore: copies to every
    /// other lcore (once: a steered copy goes no further).
    fn ptb_elsewhere<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        pi: usize,
        f: F,
        steered: bool,
    ) -> Option<F> {
        if steered || self.conf.lcores <= 1 || pi != self.conf.client_port {
            self.c.ptb_no_flow += u64::from(pi == self.conf.client_port);
            return if steered { None } else { Some(f) };
        }
        if self.ptb_tokens == 0 {
            self.c.ptb_limited += 1;
            return None;
        }
        self.ptb_tokens -= 1;
        let me = self.conf.lcore;
        for l in 0..self.conf.lcores {
            if l == me {
                continue;
            }
            let Some(mut g) = io.alloc(pi) else {
                break;
            };
            if !g.set_len(f.len()) {
                self.c.drop_no_buffer += 1;
                continue;
            }
            g.data_mut().copy_from_slice(f.data());
            self.ptb_steer(g, l);
        }
        None
    }

    fn ptb_steer(&mut self, f: F, to: u16) -> Option<F> {
        match self.shared.inboxes.get(usize::from(to)).map(|q| q.push(f)) {
            Some(Ok(())) => self.c.steered_out += 1,
            Some(Err(_)) => self.c.steer_full += 1,
            None => self.c.drop_unexpected += 1,
        }
        None
    }

    /// A frame from the steering inbox: an ICMP error (another lcore's)?
    /// Then it is taken; else given back.
    pub(super) fn steered_icmp<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        f: F,
        now: u64,
    ) -> Option<F> {
        let d = f.data();
        let Ok((et, l3, _)) = ethernet_l3(d) else {
            return Some(f);
        };
        let offsets = match et {
            ETH_IPV4 => {
                let Some(ip) = d.get(l3..l3 + 20) else {
                    return Some(f);
                };
                if ip[9] != 1 {
                    return Some(f);
                }
                let hl = usize::from(ip[0] & 0x0f) * 4;
                let tl = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
                (false, (l3, l3 + hl, (l3 + tl).min(d.len())))
            }
            ETH_IPV6 => {
                let Ok(ip) = Ipv6Packet::new_checked(&d[l3..]) else {
                    return Some(f);
                };
                match ip.upper_layer() {
                    Ok(u) if u.proto == 58 => (
                        true,
                        (
                            l3,
                            l3 + u.offset,
                            (l3 + 40 + usize::from(ip.payload_len())).min(d.len()),
                        ),
                    ),
                    _ => return Some(f),
                }
            }
            _ => return Some(f),
        };
        let (v6, off) = offsets;
        // Which port it came in on: the steering of a backend-side error
        // is by its quoted source port, of a client-side one a broadcast.
        let pi = if self.ptb_is_backend_side(&f, v6, off) {
            self.conf.backend_port
        } else {
            self.conf.client_port
        };
        if let Some(f) = self.on_icmp(io, pi, f, v6, off, true, now) {
            // Declined by the lcore it was steered to: nobody else will.
            drop(f);
        }
        None
    }

    /// A steered error quotes a segment from `local` (or a claimed
    /// address): it came in on the backend port.
    fn ptb_is_backend_side(&self, f: &F, v6: bool, (_, l4, end): (usize, usize, usize)) -> bool {
        let Some(Ok(p)) = f.data().get(l4..end).map(|m| ptb::parse(m, v6)) else {
            return false;
        };
        match self.ptb_addr(p.quoted.src.0) {
            Some(a) => a == self.conf.local || self.adopt.claims(a),
            None => false,
        }
    }
}
