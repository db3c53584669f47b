//! IP family translation of one TCP segment, in place (SIIT, RFC 7915,
//! for TCP only): a TCP/IPv6 segment becomes a TCP/IPv4 one and back.
//!
//! The balancer's lcore path is written for IPv4. An IPv6 leg is carried
//! through it by giving every IPv6 address an IPv4 stand-in that never
//! leaves the appliance (see `qsplice_lb::six`) and translating the IP
//! header at the edges: in on receive ([`tcp6_to_4`]), out on transmit
//! ([`tcp4_to_6`]). The same two functions make NAT64 (IPv6 client, IPv4
//! backend) and NAT46 (the reverse) work: only the IPv6 leg is translated.
//!
//! What is kept: the TCP header and payload untouched except the checksum
//! (RFC 1624 update of the pseudo-header's addresses: the upper-layer
//! length and protocol sum the same in both families), traffic class ↔
//! TOS, hop limit ↔ TTL. What is not translated: IPv4 options and IPv6
//! extension headers are dropped (the offsets say where TCP starts),
//! fragments are refused ([`Error::Fragmented`]), and the IPv4 header is
//! sent with DF set and identification 0 (RFC 7915 §5.1: the IPv6 side
//! does path MTU discovery; the appliance itself never fragments). The
//! flow label is the caller's (RFC 6437: one per flow).
//!
//! The Ethernet header (and any VLAN tags: everything before `l3`) moves
//! with the frame: both functions return where the frame now starts, for
//! the caller to trim ([`tcp6_to_4`]) or to have made room for
//! ([`tcp4_to_6`]). Malformed input is refused before anything is written.

use std::net::{Ipv4Addr, Ipv6Addr};

use qsplice_wire::checksum::{checksum, fold, sum};
use qsplice_wire::ipv6::next_header;
use qsplice_wire::{ip_proto, Error, Ipv4Packet, Ipv6Packet, Result};

const V4: usize = 20;
const V6: usize = 40;
const TCP_MIN: usize = 20;
/// TCP checksum offset in the TCP header.
const CSUM: usize = 16;

/// RFC 1624 eqn. 3 over a group of words: the checksum after `old` (the
/// replaced pseudo-header addresses) became `new`.
#[inline]
fn swap_sum(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    !fold(u32::from(!csum) + u32::from(!fold(sum(old, 0))) + sum(new, 0))
}

/// Translate the TCP/IPv6 segment of `frame` — link header at `l2`, IPv6
/// header at `l3`, TCP at `l4` (after any extension headers, which are
/// dropped) — into TCP/IPv4 from `src` to `dst`. Returns the frame's new
/// start (`l4 − 20 − (l3 − l2)`): the caller removes that many bytes from
/// the front. The IPv6 payload length must cover the segment.
pub fn tcp6_to_4(
    frame: &mut [u8],
    (l2, l3, l4): (usize, usize, usize),
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> Result<usize> {
    if l3 < l2 + 2 || l4 < l3 + V6 {
        return Err(Error::BadHeaderLen);
    }
    let (end, tc, hop, old) = {
        let ip = Ipv6Packet::new_checked(frame.get(l3..).ok_or(Error::Truncated)?)?;
        let mut old = [0u8; 32];
        old[..16].copy_from_slice(&ip.src_addr().octets());
        old[16..].copy_from_slice(&ip.dst_addr().octets());
        (
            l3 + V6 + usize::from(ip.payload_len()),
            ip.traffic_class(),
            ip.hop_limit(),
            old,
        )
    };
    if end > frame.len() || l4 + TCP_MIN > end {
        return Err(Error::BadTotalLen);
    }
    let tcp_len = end - l4;
    if tcp_len + V4 > usize::from(u16::MAX) {
        return Err(Error::BadTotalLen);
    }
    let link = l3 - l2;
    let start = l4 - V4 - link;
    // The checksum first (reads the TCP header only).
    let mut new = [0u8; 8];
    new[..4].copy_from_slice(&src.octets());
    new[4..].copy_from_slice(&dst.octets());
    let c = u16::from_be_bytes([frame[l4 + CSUM], frame[l4 + CSUM + 1]]);
    let c = swap_sum(c, &old, &new);
    frame[l4 + CSUM..l4 + CSUM + 2].copy_from_slice(&c.to_be_bytes());
    // Link header (less its ethertype) to its new place, then the IPv4 header.
    frame.copy_within(l2..l3 - 2, start);
    frame[start + link - 2..start + link].copy_from_slice(&0x0800u16.to_be_bytes());
    let h = &mut frame[l4 - V4..l4];
    h.fill(0);
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut *h);
        ip.set_version(4);
        ip.set_header_len(V4 as u8);
        ip.set_dscp_ecn(tc);
        ip.set_total_len((tcp_len + V4) as u16);
        ip.set_dont_frag(true);
        ip.set_ttl(hop);
        ip.set_protocol(ip_proto::TCP);
        ip.set_src_addr(src);
        ip.set_dst_addr(dst);
    }
    let c = checksum(h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    Ok(start)
}

/// Bytes a TCP/IPv4 frame needs in front of it for [`tcp4_to_6`] with
/// TCP at `l4` and the link header at `l2..l3` (0 when its IPv4 options
/// already make room).
pub fn headroom_for_6(l2: usize, l3: usize, l4: usize) -> usize {
    (l3 - l2 + V6).saturating_sub(l4 - l2)
}

/// Translate the TCP/IPv4 segment of `frame` — link header at `l2`, IPv4
/// header at `l3`, TCP at `l4` (IPv4 options are dropped) — into TCP/IPv6
/// from `src` to `dst` with flow label `flow` (20 bits). There must be room
/// in front: `l2 ≥ headroom_for_6(0, l3 − l2, l4 − l2)` — prepend first.
/// Returns the frame's new start (`l4 − 40 − (l3 − l2)`).
pub fn tcp4_to_6(
    frame: &mut [u8],
    (l2, l3, l4): (usize, usize, usize),
    src: Ipv6Addr,
    dst: Ipv6Addr,
    flow: u32,
) -> Result<usize> {
    if l3 < l2 + 2 || l4 < l3 + V4 {
        return Err(Error::BadHeaderLen);
    }
    let link = l3 - l2;
    let Some(start) = l4.checked_sub(V6 + link) else {
        return Err(Error::Truncated);
    };
    let (end, tos, ttl, old) = {
        let ip = Ipv4Packet::new_checked(frame.get(l3..).ok_or(Error::Truncated)?)?;
        if ip.protocol() != ip_proto::TCP {
            return Err(Error::Unsupported);
        }
        if ip.is_fragment() {
            return Err(Error::Fragmented);
        }
        if l3 + usize::from(ip.header_len()) != l4 {
            return Err(Error::BadHeaderLen);
        }
        let mut old = [0u8; 8];
        old[..4].copy_from_slice(&ip.src_addr().octets());
        old[4..].copy_from_slice(&ip.dst_addr().octets());
        (
            l3 + usize::from(ip.total_len()),
            ip.dscp_ecn(),
            ip.ttl(),
            old,
        )
    };
    if end > frame.len() || l4 + TCP_MIN > end {
        return Err(Error::BadTotalLen);
    }
    let tcp_len = end - l4;
    let mut new = [0u8; 32];
    new[..16].copy_from_slice(&src.octets());
    new[16..].copy_from_slice(&dst.octets());
    let c = u16::from_be_bytes([frame[l4 + CSUM], frame[l4 + CSUM + 1]]);
    let c = swap_sum(c, &old, &new);
    frame[l4 + CSUM..l4 + CSUM + 2].copy_from_slice(&c.to_be_bytes());
    frame.copy_within(l2..l3 - 2, start);
    frame[start + link - 2..start + link].copy_from_slice(&0x86ddu16.to_be_bytes());
    let mut ip = Ipv6Packet::new_unchecked(&mut frame[l4 - V6..l4]);
    ip.set_version_tc_flow(tos, flow & 0xf_ffff);
    ip.set_payload_len(tcp_len as u16);
    ip.set_next_header(next_header::TCP);
    ip.set_hop_limit(ttl);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use qsplice_wire::TcpPacket;

    const MACS: [u8; 12] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];

    /// An Ethernet + IPv6 + TCP frame with a valid checksum.
    fn frame6(src: Ipv6Addr, dst: Ipv6Addr, payload: &[u8]) -> Vec<u8> {
        let mut f = MACS.to_vec();
        f.extend_from_slice(&[0x86, 0xdd]);
        let tcp_len = 20 + payload.len();
        f.extend_from_slice(&[0x60 | 0x0b, 0xa1, 0x23, 0x45]); // tc 0xba, flow 0x12345
        f.extend_from_slice(&(tcp_len as u16).to_be_bytes());
        f.extend_from_slice(&[6, 57]);
        f.extend_from_slice(&src.octets());
        f.extend_from_slice(&dst.octets());
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&443u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&0x1122_3344u32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x18;
        tcp[14..16].copy_from_slice(&512u16.to_be_bytes());
        tcp.extend_from_slice(payload);
        let ps = qsplice_wire::checksum::pseudo_header_v6(src, dst, 6, tcp_len as u32);
        let c = !fold(sum(&tcp, ps));
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&tcp);
        f
    }

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn six_to_four_and_back_is_the_same_segment() {
        let (a6, b6) = (v6("2001:db8::10"), v6("2001:db8:1::1"));
        let (a4, b4) = (Ipv4Addr::new(248, 0, 0, 7), Ipv4Addr::new(240, 0, 0, 1));
        let orig = frame6(a6, b6, b"GET / HTTP/1.1\r\n\r\n");
        let mut f = orig.clone();
        let start = tcp6_to_4(&mut f, (0, 14, 54), a4, b4).unwrap();
        assert_eq!(start, 20);
        let f4 = f[start..].to_vec();
        assert_eq!(&f4[..12], &MACS);
        assert_eq!(&f4[12..14], &[0x08, 0x00]);
        let ip = Ipv4Packet::new_checked(&f4[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.src_addr(), ip.dst_addr()), (a4, b4));
        assert_eq!((ip.ttl(), ip.dscp_ecn(), ip.dont_frag()), (57, 0xba, true));
        assert_eq!(usize::from(ip.total_len()), f4.len() - 14);
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(
            tcp.verify_checksum(a4, b4),
            "the TCP checksum follows the addresses"
        );
        assert_eq!(tcp.payload(), b"GET / HTTP/1.1\r\n\r\n");
        // And back, with 20 bytes prepended.
        let mut g = vec![0u8; 20];
        g.extend_from_slice(&f4);
        assert_eq!(headroom_for_6(0, 14, 34), 20);
        let s = tcp4_to_6(&mut g, (20, 34, 54), a6, b6, 0x12345).unwrap();
        assert_eq!(s, 0);
        assert_eq!(g, orig, "byte for byte the original frame");
    }

    #[test]
    fn extension_headers_and_options_are_dropped() {
        let (a6, b6) = (v6("2001:db8::10"), v6("2001:db8:1::1"));
        let mut f = frame6(a6, b6, b"x");
        // Insert an 8-byte hop-by-hop header.
        f[20] = 0; // next header: hop-by-hop
        f.splice(54..54, [6u8, 0, 1, 4, 0, 0, 0, 0]);
        let pl = u16::from_be_bytes([f[18], f[19]]) + 8;
        f[18..20].copy_from_slice(&pl.to_be_bytes());
        let start = tcp6_to_4(
            &mut f,
            (0, 14, 62),
            Ipv4Addr::new(1, 2, 3, 4),
            Ipv4Addr::new(5, 6, 7, 8),
        )
        .unwrap();
        assert_eq!(start, 28);
        let ip = Ipv4Packet::new_checked(&f[start + 14..]).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(ip.src_addr(), ip.dst_addr()));
        assert_eq!(tcp.payload(), b"x");
    }

    #[test]
    fn malformed_input_is_refused_untouched() {
        let (a6, b6) = (v6("2001:db8::10"), v6("2001:db8:1::1"));
        let good = frame6(a6, b6, b"abc");
        let a4 = Ipv4Addr::new(1, 2, 3, 4);
        // Payload length past the frame.
        let mut f = good.clone();
        f[18..20].copy_from_slice(&500u16.to_be_bytes());
        let before = f.clone();
        assert!(tcp6_to_4(&mut f, (0, 14, 54), a4, a4).is_err());
        assert_eq!(f, before);
        // TCP offset past the end.
        let mut f = good.clone();
        assert!(tcp6_to_4(&mut f, (0, 14, 70), a4, a4).is_err());
        assert_eq!(f, good);
        // No room in front for IPv6.
        let mut g = good.clone();
        let s = tcp6_to_4(&mut g, (0, 14, 54), a4, a4).unwrap();
        let mut f4 = g[s..].to_vec();
        let before = f4.clone();
        assert_eq!(
            tcp4_to_6(&mut f4, (0, 14, 34), a6, b6, 0),
            Err(Error::Truncated)
        );
        assert_eq!(f4, before);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
                        l2 in 0usize..40, l3 in 0usize..80, l4 in 0usize..160) {
            let mut d = data.clone();
            let _ = tcp6_to_4(&mut d, (l2, l3, l4), Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST);
            let mut d = data;
            let _ = tcp4_to_6(&mut d, (l2, l3, l4), Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST, 1);
        }

        #[test]
        fn round_trip_keeps_every_segment(payload in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
                                          a in proptest::num::u128::ANY, b in proptest::num::u128::ANY,
                                          x in proptest::num::u32::ANY, y in proptest::num::u32::ANY) {
            let (a6, b6) = (Ipv6Addr::from(a), Ipv6Addr::from(b));
            let orig = frame6(a6, b6, &payload);
            let mut f = orig.clone();
            let s = tcp6_to_4(&mut f, (0, 14, 54), Ipv4Addr::from(x), Ipv4Addr::from(y)).unwrap();
            let ip = Ipv4Packet::new_checked(&f[s + 14..]).unwrap();
            let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
            proptest::prop_assert!(tcp.verify_checksum(Ipv4Addr::from(x), Ipv4Addr::from(y)));
            let mut g = vec![0u8; 20];
            g.extend_from_slice(&f[s..]);
            tcp4_to_6(&mut g, (20, 34, 54), a6, b6, 0x12345).unwrap();
            proptest::prop_assert_eq!(g, orig);
        }
    }
}
