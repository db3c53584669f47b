//! "Packet too big" errors about TCP segments, both families: ICMPv4
//! Destination Unreachable / Fragmentation Needed (RFC 792, RFC 1191) and
//! ICMPv6 Packet Too Big (RFC 4443 §3.2, RFC 8201).
//!
//! A router that cannot forward a segment because it is larger than the
//! next link's MTU (and may not fragment it: DF set, or IPv6) sends one of
//! these to the segment's source, quoting the segment's IP header and at
//! least the first 8 bytes of its TCP header (ports and sequence number).
//! A load balancer that splices TCP must hand it on to the host that sent
//! the bytes — with the quoted header rewritten to that host's side of the
//! connection — or path MTU discovery fails and large segments vanish.
//!
//! [`parse`] reads the error (no panic on any input; the ICMP checksum is
//! the caller's), [`write`] builds one from scratch: an IPv4 or IPv6
//! header, the ICMP message, and a quote of the segment's IP header and
//! first 8 TCP bytes (RFC 792's minimum; receivers match the connection by
//! it and check the sequence number against their send window).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum::{checksum, fold, pseudo_header_v6, sum};

/// ICMPv4 Destination Unreachable.
const ICMP4_UNREACH: u8 = 3;
/// … code Fragmentation Needed and DF set.
const ICMP4_FRAG_NEEDED: u8 = 4;
/// ICMPv6 Packet Too Big.
const ICMP6_TOO_BIG: u8 = 2;
/// IP protocol / next header numbers.
const PROTO_TCP: u8 = 6;
const PROTO_ICMP: u8 = 1;
const PROTO_ICMPV6: u8 = 58;

/// The smallest MTU an IPv4 host must accept (RFC 791).
pub const MIN_MTU4: u32 = 68;
/// The smallest MTU of an IPv6 link (RFC 8200 §5).
pub const MIN_MTU6: u32 = 1280;

/// The quoted TCP segment, as much as an error names of it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Quoted {
    /// The segment's source address and port (the host the error goes to).
    pub src: (IpAddr, u16),
    /// Its destination address and port.
    pub dst: (IpAddr, u16),
    /// Its sequence number.
    pub seq: u32,
    /// The length its IP header claimed (total length; IPv6: payload
    /// length + 40).
    pub ip_len: u32,
}

/// A parsed "packet too big" error.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Ptb {
    /// The MTU the router reported (IPv4: 0 from routers older than RFC
    /// 1191 — the caller picks a plateau).
    pub mtu: u32,
    /// The segment it was about.
    pub quoted: Quoted,
}

/// Why an ICMP message is not a usable "packet too big" about TCP.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PtbError {
    /// Another ICMP type or code (not an error of this kind).
    NotPtb,
    /// Shorter than the ICMP header plus the quoted IP header and 8 TCP
    /// bytes, or a quoted header that is not a valid one.
    Malformed,
    /// The quoted packet is not TCP (or an IPv6 one with extension
    /// headers before TCP), or a non-first fragment.
    NotTcp,
}

/// Reads the ICMP message `icmp` (the ICMPv4 or ICMPv6 header onward;
/// `v6`: which) as a "packet too big" about a TCP segment.
pub fn parse(icmp: &[u8], v6: bool) -> Result<Ptb, PtbError> {
    let (&t, &code) = (
        icmp.first().ok_or(PtbError::Malformed)?,
        icmp.get(1).ok_or(PtbError::Malformed)?,
    );
    let head = icmp.get(..8).ok_or(PtbError::Malformed)?;
    let inner = &icmp[8..];
    if v6 {
        if t != ICMP6_TOO_BIG || code != 0 {
            return Err(PtbError::NotPtb);
        }
        let mtu = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        let ip = inner.get(..40).ok_or(PtbError::Malformed)?;
        if ip[0] >> 4 != 6 {
            return Err(PtbError::Malformed);
        }
        if ip[6] != PROTO_TCP {
            return Err(PtbError::NotTcp);
        }
        let tcp = inner.get(40..48).ok_or(PtbError::Malformed)?;
        let a = |o: usize| {
            let mut b = [0u8; 16];
            b.copy_from_slice(&ip[o..o + 16]);
            IpAddr::V6(Ipv6Addr::from(b))
        };
        let (sport, dport, seq) = ports_seq(tcp);
        Ok(Ptb {
            mtu,
            quoted: Quoted {
                src: (a(8), sport),
                dst: (a(24), dport),
                seq,
                ip_len: u32::from(u16::from_be_bytes([ip[4], ip[5]])) + 40,
            },
        })
    } else {
        if t != ICMP4_UNREACH || code != ICMP4_FRAG_NEEDED {
            return Err(PtbError::NotPtb);
        }
        let mtu = u32::from(u16::from_be_bytes([head[6], head[7]]));
        let v_ihl = *inner.first().ok_or(PtbError::Malformed)?;
        let ihl = usize::from(v_ihl & 0x0f) * 4;
        if v_ihl >> 4 != 4 || ihl < 20 {
            return Err(PtbError::Malformed);
        }
        let ip = inner.get(..ihl).ok_or(PtbError::Malformed)?;
        if ip[9] != PROTO_TCP {
            return Err(PtbError::NotTcp);
        }
        // A non-first fragment quotes no TCP header.
        if u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0 {
            return Err(PtbError::NotTcp);
        }
        let tcp = inner.get(ihl..ihl + 8).ok_or(PtbError::Malformed)?;
        let a = |o: usize| IpAddr::V4(Ipv4Addr::new(ip[o], ip[o + 1], ip[o + 2], ip[o + 3]));
        let (sport, dport, seq) = ports_seq(tcp);
        Ok(Ptb {
            mtu,
            quoted: Quoted {
                src: (a(12), sport),
                dst: (a(16), dport),
                seq,
                ip_len: u32::from(u16::from_be_bytes([ip[2], ip[3]])),
            },
        })
    }
}

fn ports_seq(tcp: &[u8]) -> (u16, u16, u32) {
    (
        u16::from_be_bytes([tcp[0], tcp[1]]),
        u16::from_be_bytes([tcp[2], tcp[3]]),
        u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
    )
}

/// The MTU to report on a leg of family `to_v6` for `mtu` reported on a
/// leg of family `from_v6` (RFC 7915 §4.2 / §5.2: the IP header grows or
/// shrinks by 20 bytes; an IPv6 link is never below 1280, an IPv4 one
/// below 68).
pub fn translate_mtu(mtu: u32, from_v6: bool, to_v6: bool) -> u32 {
    let m = match (from_v6, to_v6) {
        (true, false) => mtu.saturating_sub(20),
        (false, true) => mtu.saturating_add(20),
        _ => mtu,
    };
    if to_v6 {
        m.max(MIN_MTU6)
    } else {
        m.clamp(MIN_MTU4, 0xffff)
    }
}

/// Bytes [`write`] needs after the link header: IPv4 20 + 8 + 20 + 8,
/// IPv6 40 + 8 + 40 + 8.
pub const fn len(v6: bool) -> usize {
    if v6 {
        96
    } else {
        56
    }
}

/// Writes a "packet too big" from `from` to `to` into `out` (the IP header
/// onward) about `quoted` (whose addresses must be of the same family as
/// `from` / `to`), reporting `mtu`. Returns the bytes written, or `None`
/// when `out` is shorter than [`len`] or the families are mixed.
pub fn write(out: &mut [u8], from: IpAddr, to: IpAddr, mtu: u32, quoted: &Quoted) -> Option<usize> {
    match (from, to, quoted.src.0, quoted.dst.0) {
        (IpAddr::V4(f), IpAddr::V4(t), IpAddr::V4(qs), IpAddr::V4(qd)) => {
            let out = out.get_mut(..len(false))?;
            out.fill(0);
            // Outer IPv4 header.
            out[0] = 0x45;
            out[2..4].copy_from_slice(&56u16.to_be_bytes());
            out[8] = 64;
            out[9] = PROTO_ICMP;
            out[12..16].copy_from_slice(&f.octets());
            out[16..20].copy_from_slice(&t.octets());
            let c = checksum(&out[..20]);
            out[10..12].copy_from_slice(&c.to_be_bytes());
            // ICMP.
            let icmp = &mut out[20..];
            icmp[0] = ICMP4_UNREACH;
            icmp[1] = ICMP4_FRAG_NEEDED;
            icmp[6..8].copy_from_slice(&(mtu.min(0xffff) as u16).to_be_bytes());
            // The quote: its IPv4 header (DF set, as the segment had) and
            // 8 TCP bytes.
            let q = &mut icmp[8..];
            q[0] = 0x45;
            q[2..4].copy_from_slice(&(quoted.ip_len.min(0xffff) as u16).to_be_bytes());
            q[6] = 0x40;
            q[8] = 64;
            q[9] = PROTO_TCP;
            q[12..16].copy_from_slice(&qs.octets());
            q[16..20].copy_from_slice(&qd.octets());
            let c = checksum(&q[..20]);
            q[10..12].copy_from_slice(&c.to_be_bytes());
            quote_tcp(&mut q[20..28], quoted);
            let c = checksum(icmp);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            Some(56)
        }
        (IpAddr::V6(f), IpAddr::V6(t), IpAddr::V6(qs), IpAddr::V6(qd)) => {
            let out = out.get_mut(..len(true))?;
            out.fill(0);
            out[0] = 0x60;
            out[4..6].copy_from_slice(&56u16.to_be_bytes());
            out[6] = PROTO_ICMPV6;
            out[7] = 64;
            out[8..24].copy_from_slice(&f.octets());
            out[24..40].copy_from_slice(&t.octets());
            let icmp = &mut out[40..];
            icmp[0] = ICMP6_TOO_BIG;
            icmp[4..8].copy_from_slice(&mtu.to_be_bytes());
            let q = &mut icmp[8..];
            q[0] = 0x60;
            let plen = quoted.ip_len.saturating_sub(40).min(0xffff) as u16;
            q[4..6].copy_from_slice(&plen.to_be_bytes());
            q[6] = PROTO_TCP;
            q[7] = 64;
            q[8..24].copy_from_slice(&qs.octets());
            q[24..40].copy_from_slice(&qd.octets());
            quote_tcp(&mut q[40..48], quoted);
            let s = sum(icmp, pseudo_header_v6(f, t, PROTO_ICMPV6, 56));
            let c = !fold(s);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            Some(96)
        }
        _ => None,
    }
}

fn quote_tcp(out: &mut [u8], q: &Quoted) {
    out[0..2].copy_from_slice(&q.src.1.to_be_bytes());
    out[2..4].copy_from_slice(&q.dst.1.to_be_bytes());
    out[4..8].copy_from_slice(&q.seq.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Icmpv6Packet;

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse().unwrap())
    }
    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse().unwrap())
    }

    /// A Linux router's Fragmentation Needed (captured shape): MTU 1400,
    /// quoting a 1500-byte segment 10.10.1.1:80 → 10.10.1.2:40000 with its
    /// whole IPv4 header and 28 bytes of TCP.
    const FRAG_NEEDED: [u8; 56] = [
        0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x05, 0x78, // type, code, csum, unused, MTU 1400
        0x45, 0x00, 0x05, 0xdc, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, // IPv4 …
        10, 10, 1, 1, 10, 10, 1, 2, // src, dst
        0x00, 0x50, 0x9c, 0x40, 0xde, 0xad, 0xbe, 0xef, // ports, seq
        0x00, 0x00, 0x00, 0x01, 0x50, 0x10, 0x01, 0xf5, 0x00, 0x00, 0x00,
        0x00, // ack, off, win…
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn a_frag_needed_names_the_segment() {
        let p = parse(&FRAG_NEEDED, false).unwrap();
        assert_eq!(p.mtu, 1400);
        assert_eq!(p.quoted.src, (v4("10.10.1.1"), 80));
        assert_eq!(p.quoted.dst, (v4("10.10.1.2"), 40000));
        assert_eq!((p.quoted.seq, p.quoted.ip_len), (0xdead_beef, 1500));
        // Other codes and types are not "too big".
        let mut other = FRAG_NEEDED;
        other[1] = 3;
        assert_eq!(parse(&other, false), Err(PtbError::NotPtb));
        assert_eq!(parse(&FRAG_NEEDED, true), Err(PtbError::NotPtb));
        // Not TCP; a later fragment; truncated quotes.
        let mut udp = FRAG_NEEDED;
        udp[8 + 9] = 17;
        assert_eq!(parse(&udp, false), Err(PtbError::NotTcp));
        let mut frag = FRAG_NEEDED;
        frag[8 + 7] = 1;
        assert_eq!(parse(&frag, false), Err(PtbError::NotTcp));
        for n in 0..36 {
            assert!(parse(&FRAG_NEEDED[..n], false).is_err(), "{n}");
        }
        let mut ihl = FRAG_NEEDED;
        ihl[8] = 0x44;
        assert_eq!(parse(&ihl, false), Err(PtbError::Malformed));
    }

    #[test]
    fn write_then_parse_round_trips_in_both_families() {
        let q4 = Quoted {
            src: (v4("10.10.2.11"), 80),
            dst: (v4("10.10.2.1"), 30001),
            seq: 7,
            ip_len: 1480,
        };
        let mut b = [0u8; 128];
        let n = write(&mut b, v4("10.10.2.1"), v4("10.10.2.11"), 1380, &q4).unwrap();
        assert_eq!(n, 56);
        assert_eq!(checksum(&b[..20]), 0, "IPv4 header checksum");
        assert_eq!(checksum(&b[20..56]), 0, "ICMP checksum");
        assert_eq!(checksum(&b[28..48]), 0, "quoted header checksum");
        let p = parse(&b[20..56], false).unwrap();
        assert_eq!((p.mtu, p.quoted), (1380, q4));

        let q6 = Quoted {
            src: (v6("2001:db8:2::11"), 80),
            dst: (v6("2001:db8:2::1"), 30001),
            seq: u32::MAX,
            ip_len: 1500,
        };
        let (f, t) = (
            "2001:db8:2::1".parse().unwrap(),
            "2001:db8:2::11".parse().unwrap(),
        );
        let n = write(&mut b, IpAddr::V6(f), IpAddr::V6(t), 1400, &q6).unwrap();
        assert_eq!(n, 96);
        let m = Icmpv6Packet::new_checked(&b[40..96]).unwrap();
        assert!(m.verify_checksum(f, t));
        let p = parse(&b[40..96], true).unwrap();
        assert_eq!((p.mtu, p.quoted), (1400, q6));
        // Mixed families, short buffers.
        assert_eq!(write(&mut b, v4("10.0.0.1"), v6("::1"), 1400, &q4), None);
        assert_eq!(
            write(&mut b, v4("10.0.0.1"), v4("10.0.0.2"), 1400, &q6),
            None
        );
        assert_eq!(
            write(&mut b[..55], v4("10.0.0.1"), v4("10.0.0.2"), 1400, &q4),
            None
        );
    }

    #[test]
    fn mtus_follow_the_header_size_and_the_family_minimums() {
        assert_eq!(translate_mtu(1400, false, false), 1400);
        assert_eq!(translate_mtu(1400, true, true), 1400);
        assert_eq!(translate_mtu(1400, true, false), 1380);
        assert_eq!(translate_mtu(1400, false, true), 1420);
        assert_eq!(translate_mtu(600, false, true), 1280);
        assert_eq!(translate_mtu(1000, true, true), 1280);
        assert_eq!(translate_mtu(0, false, false), 68);
        assert_eq!(translate_mtu(100_000, true, false), 0xffff);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(b in proptest::collection::vec(proptest::num::u8::ANY, 0..200), v6 in proptest::bool::ANY) {
            let _ = parse(&b, v6);
        }

        #[test]
        fn any_quote_round_trips(a in proptest::num::u32::ANY, b in proptest::num::u32::ANY,
                                 sp in proptest::num::u16::ANY, dp in proptest::num::u16::ANY,
                                 seq in proptest::num::u32::ANY, len in 40u32..0xffff, mtu in 68u32..0xffff) {
            let q = Quoted {
                src: (IpAddr::V4(Ipv4Addr::from(a)), sp),
                dst: (IpAddr::V4(Ipv4Addr::from(b)), dp),
                seq,
                ip_len: len,
            };
            let mut buf = [0u8; 56];
            write(&mut buf, IpAddr::V4(Ipv4Addr::from(b)), IpAddr::V4(Ipv4Addr::from(a)), mtu, &q).unwrap();
            let p = parse(&buf[20..], false).unwrap();
            proptest::prop_assert_eq!((p.mtu, p.quoted), (mtu, q));
        }
    }
}
