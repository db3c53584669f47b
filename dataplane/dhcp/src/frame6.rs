//! Ethernet (+ optional 802.1Q tag) / IPv6 / UDP framing of DHCPv6
//! messages (RFC 8415 §7: clients on port 546, servers and relays on 547),
//! and the Neighbor Discovery a DHCPv6 node owes its link: an answer to a
//! Neighbor Solicitation for one of its addresses (RFC 4861 §7.2.4).
//!
//! Parsing walks IPv6 extension headers with `qsplice_wire`'s bounded walk
//! (fragments refused) and verifies the UDP checksum, which IPv6 makes
//! mandatory (RFC 8200 §8.1: a zero checksum is an error).

use core::fmt;
use core::net::Ipv6Addr;

use qsplice_wire::icmpv6::{kind, na_flags, nd_option, write_neighbor_advert};
use qsplice_wire::ipv6::{multicast_mac, next_header};
use qsplice_wire::{
    ethertype, EthernetFrame, Icmpv6Packet, Ipv6Packet, MacAddr, UdpPacket, VlanHeader,
};

use crate::wire6::{CLIENT_PORT, SERVER_PORT};

/// Why a frame is not a usable DHCPv6 datagram. [`Frame6Error::as_str`]
/// names are stable counter names.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum Frame6Error {
    /// Cut short in the Ethernet header or a VLAN tag.
    Truncated,
    /// More than two VLAN tags.
    TooManyVlanTags,
    /// Not IPv6.
    NotIpv6,
    /// IPv6 header invalid (version, payload length past the frame).
    BadIpHeader,
    /// An extension header runs past the payload, is out of order, or
    /// there are too many.
    BadExtHeader,
    /// An IPv6 fragment.
    Fragmented,
    /// Not UDP.
    NotUdp,
    /// UDP length field below 8 or past the IP payload.
    BadUdpLength,
    /// UDP checksum wrong or zero.
    BadUdpChecksum,
    /// The destination port is neither 546 nor 547.
    NotDhcpPort,
    /// The output buffer is too small (emit only).
    BufferTooSmall,
}

impl Frame6Error {
    /// All variants, in declaration order.
    pub const ALL: [Frame6Error; 11] = [
        Frame6Error::Truncated,
        Frame6Error::TooManyVlanTags,
        Frame6Error::NotIpv6,
        Frame6Error::BadIpHeader,
        Frame6Error::BadExtHeader,
        Frame6Error::Fragmented,
        Frame6Error::NotUdp,
        Frame6Error::BadUdpLength,
        Frame6Error::BadUdpChecksum,
        Frame6Error::NotDhcpPort,
        Frame6Error::BufferTooSmall,
    ];

    /// Stable `snake_case` name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Frame6Error::Truncated => "frame_truncated",
            Frame6Error::TooManyVlanTags => "too_many_vlan_tags",
            Frame6Error::NotIpv6 => "not_ipv6",
            Frame6Error::BadIpHeader => "bad_ipv6_header",
            Frame6Error::BadExtHeader => "bad_extension_header",
            Frame6Error::Fragmented => "fragmented",
            Frame6Error::NotUdp => "not_udp",
            Frame6Error::BadUdpLength => "bad_udp_length",
            Frame6Error::BadUdpChecksum => "bad_udp_checksum",
            Frame6Error::NotDhcpPort => "not_dhcp6_port",
            Frame6Error::BufferTooSmall => "frame_buffer_too_small",
        }
    }

    /// Index in [`Frame6Error::ALL`].
    pub const fn index(&self) -> usize {
        *self as usize
    }
}

impl fmt::Display for Frame6Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Frame6Error {}

/// The L2–L4 facts of a received DHCPv6 frame.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Frame6Meta {
    /// Ethernet source.
    pub src_mac: MacAddr,
    /// Ethernet destination.
    pub dst_mac: MacAddr,
    /// VID of the outermost VLAN tag, if any.
    pub vlan: Option<u16>,
    /// IPv6 source.
    pub src_ip: Ipv6Addr,
    /// IPv6 destination.
    pub dst_ip: Ipv6Addr,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
}

/// A parsed frame: metadata and where the DHCPv6 message is.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Parsed6 {
    /// L2–L4 metadata.
    pub meta: Frame6Meta,
    /// Offset of the DHCPv6 message (UDP payload) in the frame.
    pub offset: usize,
    /// Its length (UDP length − 8).
    pub len: usize,
}

impl Parsed6 {
    /// The DHCPv6 message inside `frame` (the frame this was parsed from).
    pub fn message<'f>(&self, frame: &'f [u8]) -> &'f [u8] {
        frame
            .get(self.offset..self.offset + self.len)
            .unwrap_or(&[])
    }
}

/// Parses an Ethernet frame carrying UDP/IPv6 to a DHCPv6 port.
///
/// Checks, in order: Ethernet/VLAN (up to two tags), EtherType IPv6, the
/// IPv6 header (Ethernet padding ignored), the extension headers, no
/// fragment, protocol UDP, the UDP length, the UDP checksum (zero refused),
/// and that the destination port is 546 or 547.
pub fn parse_frame6(frame: &[u8]) -> Result<Parsed6, Frame6Error> {
    let (et, l3, vlan) = qsplice_wire::ethernet_l3(frame).map_err(|e| match e {
        qsplice_wire::Error::Unsupported => Frame6Error::TooManyVlanTags,
        _ => Frame6Error::Truncated,
    })?;
    if et != ethertype::IPV6 {
        return Err(Frame6Error::NotIpv6);
    }
    let eth = EthernetFrame::new_checked(frame).map_err(|_| Frame6Error::Truncated)?;
    let ip_bytes = frame.get(l3..).ok_or(Frame6Error::Truncated)?;
    let ip = Ipv6Packet::new_checked(ip_bytes).map_err(|_| Frame6Error::BadIpHeader)?;
    let ul = ip.upper_layer().map_err(|_| Frame6Error::BadExtHeader)?;
    if ul.fragment {
        return Err(Frame6Error::Fragmented);
    }
    if ul.proto != next_header::UDP {
        return Err(Frame6Error::NotUdp);
    }
    let end = Ipv6Packet::<&[u8]>::HEADER_LEN + usize::from(ip.payload_len());
    let l4 = ip_bytes
        .get(ul.offset..end)
        .ok_or(Frame6Error::BadUdpLength)?;
    let udp = UdpPacket::new_checked(l4).map_err(|_| Frame6Error::BadUdpLength)?;
    if udp.checksum() == 0 || !udp.verify_checksum_v6(ip.src_addr(), ip.dst_addr()) {
        return Err(Frame6Error::BadUdpChecksum);
    }
    let dst_port = udp.dst_port();
    if dst_port != SERVER_PORT && dst_port != CLIENT_PORT {
        return Err(Frame6Error::NotDhcpPort);
    }
    Ok(Parsed6 {
        meta: Frame6Meta {
            src_mac: eth.src(),
            dst_mac: eth.dst(),
            vlan,
            src_ip: ip.src_addr(),
            dst_ip: ip.dst_addr(),
            src_port: udp.src_port(),
            dst_port,
        },
        offset: l3 + ul.offset + UdpPacket::<&[u8]>::HEADER_LEN,
        len: udp.payload().len(),
    })
}

/// The headers of a DHCPv6 frame to send.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Frame6Spec {
    /// Ethernet source.
    pub src_mac: MacAddr,
    /// Ethernet destination.
    pub dst_mac: MacAddr,
    /// One 802.1Q tag with this VID (PCP 0), if set.
    pub vlan: Option<u16>,
    /// IPv6 source.
    pub src_ip: Ipv6Addr,
    /// IPv6 destination.
    pub dst_ip: Ipv6Addr,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// Hop limit (RFC 8415 uses link scope: any value; 64 here, 255 for
    /// nothing in particular).
    pub hop_limit: u8,
}

/// IPv6 header length (no extension headers are emitted).
const IP6_LEN: usize = 40;
/// UDP header length.
const UDP_LEN: usize = 8;

impl Frame6Spec {
    /// Where the DHCPv6 message starts in the emitted frame: 62, or 66 with
    /// a VLAN tag.
    pub const fn offset(&self) -> usize {
        14 + if self.vlan.is_some() { 4 } else { 0 } + IP6_LEN + UDP_LEN
    }

    /// The destination MAC for `dst_ip` when it is multicast (RFC 2464
    /// §7: 33:33 + the low 32 bits), else `unicast`.
    pub fn mac_for(dst_ip: Ipv6Addr, unicast: MacAddr) -> MacAddr {
        if dst_ip.is_multicast() {
            multicast_mac(dst_ip)
        } else {
            unicast
        }
    }

    /// Writes the Ethernet, VLAN, IPv6 and UDP headers in front of a
    /// DHCPv6 message of `len` bytes that the caller has already written at
    /// [`Self::offset`], computes the UDP checksum and returns the frame
    /// length. [`Frame6Error::BufferTooSmall`] if it does not fit (or the
    /// payload length would exceed 65,535).
    pub fn emit(&self, out: &mut [u8], len: usize) -> Result<usize, Frame6Error> {
        let off = self.offset();
        let total = off + len;
        let payload = UDP_LEN + len;
        if total > out.len() || payload > usize::from(u16::MAX) {
            return Err(Frame6Error::BufferTooSmall);
        }
        let out = &mut out[..total];
        let l3 = write_l2(out, self.src_mac, self.dst_mac, self.vlan);
        let ip_buf = &mut out[l3..];
        let mut ip = Ipv6Packet::new_unchecked(&mut *ip_buf);
        ip.set_version_tc_flow(0, 0);
        ip.set_payload_len(payload as u16);
        ip.set_next_header(next_header::UDP);
        ip.set_hop_limit(self.hop_limit);
        ip.set_src_addr(self.src_ip);
        ip.set_dst_addr(self.dst_ip);
        let mut udp = UdpPacket::new_unchecked(&mut ip_buf[IP6_LEN..]);
        udp.set_src_port(self.src_port);
        udp.set_dst_port(self.dst_port);
        udp.set_len(payload as u16);
        udp.fill_checksum_v6(self.src_ip, self.dst_ip);
        Ok(total)
    }
}

/// Writes the Ethernet header (and a VLAN tag) with EtherType IPv6;
/// returns where the IPv6 header starts. `out` holds at least 18 bytes.
fn write_l2(out: &mut [u8], src: MacAddr, dst: MacAddr, vlan: Option<u16>) -> usize {
    let mut eth = EthernetFrame::new_unchecked(&mut *out);
    eth.set_dst(dst);
    eth.set_src(src);
    match vlan {
        Some(vid) => {
            eth.set_ethertype(ethertype::VLAN);
            let mut tag = VlanHeader::new_unchecked(&mut out[14..18]);
            tag.set_tci(vid & 0x0fff);
            tag.set_inner_ethertype(ethertype::IPV6);
            18
        }
        None => {
            eth.set_ethertype(ethertype::IPV6);
            14
        }
    }
}

/// Whether `frame` is an IPv6 frame (after up to two VLAN tags).
pub fn is_ipv6(frame: &[u8]) -> bool {
    matches!(
        qsplice_wire::ethernet_l3(frame),
        Ok((ethertype::IPV6, _, _))
    )
}

/// If `frame` is a valid Neighbor Solicitation (hop limit 255, checksum,
/// code 0) for a target that `owner` maps to a MAC, writes the solicited
/// Neighbor Advertisement (from that MAC, to the solicitor, or to all
/// nodes when the solicitor is unspecified, i.e. doing DAD) into `out` (at
/// least 90 bytes) and returns its length.
pub fn neighbor_advert(
    frame: &[u8],
    owner: impl Fn(Ipv6Addr) -> Option<MacAddr>,
    out: &mut [u8],
) -> Option<usize> {
    let (et, l3, vlan) = qsplice_wire::ethernet_l3(frame).ok()?;
    if et != ethertype::IPV6 {
        return None;
    }
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let ip = Ipv6Packet::new_checked(frame.get(l3..)?).ok()?;
    if ip.next_header() != next_header::ICMPV6 || ip.hop_limit() != 255 {
        return None;
    }
    let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
    if icmp.msg_type() != kind::NEIGHBOR_SOLICIT
        || icmp.code() != 0
        || !icmp.verify_checksum(ip.src_addr(), ip.dst_addr())
    {
        return None;
    }
    let target = icmp.nd_target()?;
    let mac = owner(target)?;
    let dad = ip.src_addr().is_unspecified();
    let (to, to_mac, flags) = if dad {
        let all = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        (all, multicast_mac(all), na_flags::OVERRIDE)
    } else {
        let ll = icmp.nd_link_layer(nd_option::SOURCE_LL).ok().flatten();
        (
            ip.src_addr(),
            ll.unwrap_or(eth.src()),
            na_flags::SOLICITED | na_flags::OVERRIDE,
        )
    };
    let need = 18 + IP6_LEN + 32;
    let out = out.get_mut(..need)?;
    let l3o = write_l2(out, mac, to_mac, vlan);
    let ipb = &mut out[l3o..];
    let n = write_neighbor_advert(&mut ipb[IP6_LEN..], target, flags, mac)?;
    let mut icmp = Icmpv6Packet::new_unchecked(&mut ipb[IP6_LEN..IP6_LEN + n]);
    icmp.fill_checksum(target, to);
    let mut ip = Ipv6Packet::new_unchecked(&mut *ipb);
    ip.set_version_tc_flow(0, 0);
    ip.set_payload_len(n as u16);
    ip.set_next_header(next_header::ICMPV6);
    ip.set_hop_limit(255);
    ip.set_src_addr(target);
    ip.set_dst_addr(to);
    Some(l3o + IP6_LEN + n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    const CLI: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
    const SRV: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);

    fn solicit_frame(vlan: Option<u16>) -> Vec<u8> {
        let spec = Frame6Spec {
            src_mac: CLI,
            dst_mac: Frame6Spec::mac_for(a("ff02::1:2"), MacAddr::BROADCAST),
            vlan,
            src_ip: a("fe80::10"),
            dst_ip: a("ff02::1:2"),
            src_port: CLIENT_PORT,
            dst_port: SERVER_PORT,
            hop_limit: 1,
        };
        let mut out = vec![0u8; 256];
        let msg = [1u8, 0xaa, 0xbb, 0xcc, 0, 8, 0, 2, 0, 0];
        let off = spec.offset();
        out[off..off + msg.len()].copy_from_slice(&msg);
        let n = spec.emit(&mut out, msg.len()).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn emitted_frame_parses_back_with_vlan_and_without() {
        for vlan in [None, Some(42)] {
            let f = solicit_frame(vlan);
            assert_eq!(f.len(), if vlan.is_some() { 76 } else { 72 });
            let p = parse_frame6(&f).unwrap();
            assert_eq!(p.meta.vlan, vlan);
            assert_eq!(p.meta.src_ip, a("fe80::10"));
            assert_eq!(p.meta.dst_ip, a("ff02::1:2"));
            assert_eq!(p.meta.dst_mac, MacAddr([0x33, 0x33, 0, 1, 0, 2]));
            assert_eq!((p.meta.src_port, p.meta.dst_port), (546, 547));
            assert_eq!(p.message(&f)[..4], [1, 0xaa, 0xbb, 0xcc]);
            assert!(is_ipv6(&f));
        }
    }

    #[test]
    fn checksum_zero_or_wrong_is_refused() {
        let mut f = solicit_frame(None);
        let ck = 14 + 40 + 6;
        f[ck] ^= 1;
        assert_eq!(parse_frame6(&f), Err(Frame6Error::BadUdpChecksum));
        f[ck] = 0;
        f[ck + 1] = 0;
        assert_eq!(parse_frame6(&f), Err(Frame6Error::BadUdpChecksum));
    }

    #[test]
    fn refusals_name_the_layer() {
        let f = solicit_frame(None);
        assert_eq!(parse_frame6(&f[..10]), Err(Frame6Error::Truncated));
        let mut v4 = f.clone();
        v4[12..14].copy_from_slice(&[8, 0]);
        assert_eq!(parse_frame6(&v4), Err(Frame6Error::NotIpv6));
        assert_eq!(parse_frame6(&f[..50]), Err(Frame6Error::BadIpHeader));
        let mut tcp = f.clone();
        tcp[14 + 6] = 6;
        assert_eq!(parse_frame6(&tcp), Err(Frame6Error::NotUdp));
        let mut frag = f.clone();
        frag[14 + 6] = next_header::FRAGMENT;
        // The fragment header takes the UDP header's first 8 bytes.
        assert_eq!(parse_frame6(&frag), Err(Frame6Error::Fragmented));
        let mut port = f.clone();
        port[14 + 40 + 2..14 + 40 + 4].copy_from_slice(&53u16.to_be_bytes());
        assert!(matches!(
            parse_frame6(&port),
            Err(Frame6Error::NotDhcpPort | Frame6Error::BadUdpChecksum)
        ));
        let mut ulen = f.clone();
        ulen[14 + 40 + 4..14 + 40 + 6].copy_from_slice(&200u16.to_be_bytes());
        assert_eq!(parse_frame6(&ulen), Err(Frame6Error::BadUdpLength));
    }

    #[test]
    fn a_hop_by_hop_header_is_walked() {
        let f = solicit_frame(None);
        // Insert an 8-byte hop-by-hop header (PadN) before UDP.
        let mut g = f[..14 + 40].to_vec();
        g.extend_from_slice(&[next_header::UDP, 0, 1, 4, 0, 0, 0, 0]);
        g.extend_from_slice(&f[14 + 40..]);
        g[14 + 6] = next_header::HOP_BY_HOP;
        let pl = u16::from_be_bytes([g[18], g[19]]) + 8;
        g[18..20].copy_from_slice(&pl.to_be_bytes());
        let p = parse_frame6(&g).unwrap();
        assert_eq!(p.offset, 14 + 48 + 8);
        assert_eq!(p.message(&g)[0], 1);
    }

    fn ns_frame(src: Ipv6Addr, target: Ipv6Addr, hop: u8) -> Vec<u8> {
        let dst = qsplice_wire::ipv6::solicited_node(target);
        let mut icmp = vec![135u8, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&target.octets());
        if !src.is_unspecified() {
            icmp.extend_from_slice(&[1, 1]);
            icmp.extend_from_slice(&CLI.0);
        }
        Icmpv6Packet::new_unchecked(&mut icmp[..]).fill_checksum(src, dst);
        let mut f = vec![0u8; 14 + 40];
        write_l2(&mut f, CLI, multicast_mac(dst), None);
        let mut ip = Ipv6Packet::new_unchecked(&mut f[14..]);
        ip.set_version_tc_flow(0, 0);
        ip.set_payload_len(icmp.len() as u16);
        ip.set_next_header(next_header::ICMPV6);
        ip.set_hop_limit(hop);
        ip.set_src_addr(src);
        ip.set_dst_addr(dst);
        f.extend_from_slice(&icmp);
        f
    }

    #[test]
    fn neighbor_solicitation_for_an_owned_address_is_answered() {
        let me = a("2001:db8::1");
        let owns = |t: Ipv6Addr| (t == me).then_some(SRV);
        let mut out = [0u8; 128];
        let n = neighbor_advert(&ns_frame(a("fe80::10"), me, 255), owns, &mut out).unwrap();
        let na = &out[..n];
        assert_eq!(&na[0..6], &CLI.0);
        let ip = Ipv6Packet::new_checked(&na[14..]).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr()), (me, a("fe80::10")));
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(icmp.msg_type(), kind::NEIGHBOR_ADVERT);
        assert!(icmp.verify_checksum(me, a("fe80::10")));
        assert_eq!(icmp.nd_target(), Some(me));
        assert_eq!(icmp.nd_link_layer(nd_option::TARGET_LL), Ok(Some(SRV)));
        assert_ne!(icmp.nd_flags() & na_flags::SOLICITED, 0);
        // Not ours, wrong hop limit: no answer. DAD: to all nodes.
        assert!(neighbor_advert(
            &ns_frame(a("fe80::10"), a("2001:db8::2"), 255),
            owns,
            &mut out
        )
        .is_none());
        assert!(neighbor_advert(&ns_frame(a("fe80::10"), me, 64), owns, &mut out).is_none());
        let n = neighbor_advert(&ns_frame(Ipv6Addr::UNSPECIFIED, me, 255), owns, &mut out).unwrap();
        let ip = Ipv6Packet::new_checked(&out[14..n]).unwrap();
        assert_eq!(ip.dst_addr(), a("ff02::1"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_frame6(&b);
            let mut out = [0u8; 128];
            let _ = neighbor_advert(&b, |_| Some(SRV), &mut out);
        }

        #[test]
        fn mutated_frames_never_panic(i in 0usize..72, x in any::<u8>()) {
            let mut f = solicit_frame(None);
            f[i] = x;
            let _ = parse_frame6(&f);
        }
    }
}
