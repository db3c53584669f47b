//! Fuzz harness bodies for `qsplice-wire`, shared by the targets in
//! `fuzz_targets/`.
//!
//! Each function validates its input with `new_checked`, then calls every
//! accessor (a panic is a bug: the crate promises none after validation),
//! exercises the setters on a copy, and asserts semantic invariants:
//! emit/parse round trips, `fill_checksum` ⇒ `verify_checksum`, RFC 1624
//! incremental updates preserving checksum validity, and the splice
//! rewrite leaving the frame untouched on error.
//!
//! Input conventions: the `udp` and `tcp` targets take the IPv4 source and
//! destination address from the first 8 bytes and the segment from the
//! rest; every other target takes the raw packet.

pub mod lb;
pub mod lb_stateful;
pub mod loadgen;

pub use loadgen::{loadgen_client, loadgen_server};

use qsplice_wire::checksum::{update_u16, update_u32};
use qsplice_wire::rewrite::{rewrite_dst_v4_tcp, rewrite_src_v4_tcp};
use qsplice_wire::{
    ethernet_l3, ethertype, ip_proto, ArpPacket, ArpRepr, EthernetFrame, Icmpv4Packet, Ipv4Addr,
    Ipv4Packet, TcpOption, TcpOptionsIter, TcpPacket, UdpPacket, VlanHeader,
};

fn split_addrs(data: &[u8]) -> (Ipv4Addr, Ipv4Addr, &[u8]) {
    match data.split_first_chunk::<8>() {
        Some((a, rest)) => {
            let src = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            let dst = Ipv4Addr::new(a[4], a[5], a[6], a[7]);
            (src, dst, rest)
        }
        None => (
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(198, 51, 100, 2),
            data,
        ),
    }
}

/// A cheap input-dependent value, so that rewrites vary with the input.
fn mix(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Ethernet header, VLAN tags and `ethernet_l3`.
pub fn ethernet(data: &[u8]) {
    let l3 = ethernet_l3(data);
    match EthernetFrame::new_checked(data) {
        Ok(f) => {
            let (dst, src, et) = (f.dst(), f.src(), f.ethertype());
            let _ = (
                dst.is_broadcast(),
                dst.is_multicast(),
                dst.is_unicast(),
                dst.to_string(),
            );
            assert_eq!(
                f.payload().len(),
                data.len() - EthernetFrame::<&[u8]>::HEADER_LEN
            );
            assert_eq!(f.header_len(), 14);
            if let Ok((_, off, vid)) = l3 {
                assert!(off == 14 || off == 18 || off == 22, "l3 offset {off}");
                assert!(off <= data.len());
                assert_eq!(vid.is_some(), off > 14);
            }
            if et == ethertype::VLAN || et == ethertype::QINQ {
                if let Ok(v) = VlanHeader::new_checked(f.payload()) {
                    let _ = (
                        v.tci(),
                        v.pcp(),
                        v.dei(),
                        v.inner_ethertype(),
                        v.payload().len(),
                    );
                    assert!(v.pcp() < 8 && v.vid() < 4096);
                    if let Ok((_, _, vid)) = l3 {
                        assert_eq!(vid, Some(v.vid()));
                    }
                    let mut tag = [0u8; 4];
                    let mut w = VlanHeader::new_unchecked(&mut tag[..]);
                    w.set_pcp(v.pcp());
                    w.set_dei(v.dei());
                    w.set_vid(v.vid());
                    w.set_inner_ethertype(v.inner_ethertype());
                    assert_eq!(&tag[..], &f.payload()[..4]);
                } else {
                    assert!(l3.is_err());
                }
            } else {
                assert_eq!(l3, Ok((et, 14, None)));
            }
            let mut buf = data.to_vec();
            let mut g = EthernetFrame::new_checked(&mut buf[..]).expect("same length");
            g.set_dst(src);
            g.set_src(dst);
            g.set_ethertype(et);
            assert_eq!((g.dst(), g.src(), g.ethertype()), (src, dst, et));
            assert_eq!(g.payload_mut().len(), data.len() - 14);
        }
        Err(e) => {
            assert!(data.len() < 14);
            assert_eq!(l3, Err(e));
        }
    }
}

/// ARP view and `ArpRepr` parse/emit.
pub fn arp(data: &[u8]) {
    match ArpPacket::new_checked(data) {
        Ok(p) => {
            let _ = (
                p.hardware_type(),
                p.protocol_type(),
                p.hardware_len(),
                p.protocol_len(),
            );
            let r = ArpRepr::parse(&p).expect("checked packet parses");
            assert_eq!(r.op, p.operation());
            assert_eq!((r.sender_mac, r.sender_ip), (p.sender_mac(), p.sender_ip()));
            assert_eq!((r.target_mac, r.target_ip), (p.target_mac(), p.target_ip()));
            let mut out = [0u8; 28];
            r.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
            assert_eq!(&out[..], &data[..28], "emit(parse(x)) == x");
            let mut buf = data.to_vec();
            let mut m = ArpPacket::new_checked(&mut buf[..]).expect("same bytes");
            m.set_operation(2);
            m.set_sender_mac(r.target_mac);
            m.set_target_mac(r.sender_mac);
            m.set_sender_ip(r.target_ip);
            m.set_target_ip(r.sender_ip);
            let back = ArpRepr::parse(&m).expect("still valid");
            assert_eq!((back.sender_ip, back.target_ip), (r.target_ip, r.sender_ip));
        }
        Err(e) => {
            assert_eq!(ArpRepr::parse(&ArpPacket::new_unchecked(data)), Err(e));
        }
    }
}

/// ICMPv4 message (the whole buffer is the message).
pub fn icmp(data: &[u8]) {
    let Ok(p) = Icmpv4Packet::new_checked(data) else {
        assert!(data.len() < 8);
        return;
    };
    let _ = (
        p.msg_type(),
        p.code(),
        p.checksum(),
        p.rest_of_header(),
        p.echo_ident(),
        p.echo_seq(),
    );
    assert_eq!(p.payload().len(), data.len() - 8);
    let valid = p.verify_checksum();

    let mut buf = data.to_vec();
    let mut m = Icmpv4Packet::new_unchecked(&mut buf[..]);
    // Echo request <-> reply with an incremental checksum update (as the
    // engine does); validity is preserved unless the covered data is
    // all-zero before or after (RFC 1624's only ambiguity).
    let old = u16::from_be_bytes([m.msg_type(), m.code()]);
    let new_type = if m.msg_type() == 8 { 0 } else { 8 };
    m.set_msg_type(new_type);
    let new = u16::from_be_bytes([new_type, m.code()]);
    m.set_checksum(update_u16(m.checksum(), old, new));
    let nonzero = |b: &[u8]| {
        b.iter()
            .enumerate()
            .any(|(i, &x)| !(2..4).contains(&i) && x != 0)
    };
    if nonzero(data) && nonzero(m.as_ref()) {
        assert_eq!(m.verify_checksum(), valid);
    }
    m.fill_checksum();
    assert!(m.verify_checksum());
    m.set_echo_ident(1);
    m.set_echo_seq(2);
    m.set_rest_of_header(3);
    m.set_code(4);
    let _ = m.payload_mut().len();
}

/// `udp` target: addresses from the first 8 bytes, then a UDP datagram.
pub fn udp(data: &[u8]) {
    let (src, dst, d) = split_addrs(data);
    udp_datagram(d, src, dst);
}

fn udp_datagram(d: &[u8], src: Ipv4Addr, dst: Ipv4Addr) {
    let Ok(u) = UdpPacket::new_checked(d) else {
        return;
    };
    let len = usize::from(u.len());
    assert!((8..=d.len()).contains(&len));
    assert_eq!(u.payload().len(), len - 8);
    assert_eq!(u.datagram().len(), len);
    let _ = (u.src_port(), u.dst_port(), u.checksum(), u.header_len());
    if u.checksum() == 0 {
        assert!(u.verify_checksum(src, dst));
    }
    let valid = u.verify_checksum(src, dst);

    let mut buf = d.to_vec();
    let mut m = UdpPacket::new_unchecked(&mut buf[..]);
    if m.checksum() != 0 {
        // NAT-style port change with the UDP rules for the incremental
        // update (0 = none; computed 0 is sent as 0xffff).
        let (old, new) = (m.dst_port(), m.dst_port() ^ 0x5a5a);
        m.set_dst_port(new);
        let c = update_u16(m.checksum(), old, new);
        m.set_checksum(if c == 0 { 0xffff } else { c });
        assert_eq!(m.verify_checksum(src, dst), valid);
    }
    m.set_src_port(m.src_port().wrapping_add(1));
    m.fill_checksum(src, dst);
    assert_ne!(m.checksum(), 0);
    assert!(m.verify_checksum(src, dst));
    let _ = m.payload_mut().len();
}

/// `tcp` target: addresses from the first 8 bytes, then a TCP segment.
pub fn tcp(data: &[u8]) {
    let (src, dst, seg) = split_addrs(data);
    tcp_segment(seg, src, dst);
}

fn tcp_segment(seg: &[u8], src: Ipv4Addr, dst: Ipv4Addr) {
    // Option parsing on the raw bytes too (not just a validated header).
    tcp_options(seg.get(20..).unwrap_or(&[]));
    let Ok(t) = TcpPacket::new_checked(seg) else {
        return;
    };
    let hl = usize::from(t.header_len());
    assert!((20..=seg.len()).contains(&hl));
    assert_eq!(t.options().len(), hl - 20);
    assert_eq!(t.payload().len(), seg.len() - hl);
    let _ = (
        t.src_port(),
        t.dst_port(),
        t.window_len(),
        t.urgent_at(),
        t.segment_len(),
    );
    let fl = t.flags();
    assert_eq!(fl.to_string().parse(), Ok(fl));
    assert!(fl.bits() <= 0x1ff);
    tcp_options(t.options());
    let valid = t.verify_checksum(src, dst);

    // Splice-style incremental update: port, seq, ack, pseudo-header
    // address. The pseudo-header makes the covered data non-zero, so
    // validity must be preserved exactly, and after a fill the incremental
    // result must equal a full recomputation.
    let mut buf = seg.to_vec();
    let mut m = TcpPacket::new_unchecked(&mut buf[..]);
    let k = mix(seg);
    let new_dst = Ipv4Addr::from(k);
    let patch = |m: &mut TcpPacket<&mut [u8]>| {
        let mut c = m.checksum();
        let (p, s, a) = (m.dst_port(), m.seq_number(), m.ack_number());
        m.set_dst_port(k as u16);
        c = update_u16(c, p, k as u16);
        m.set_seq_number(s.wrapping_add(k));
        c = update_u32(c, s, s.wrapping_add(k));
        m.set_ack_number(a.wrapping_sub(k));
        c = update_u32(c, a, a.wrapping_sub(k));
        c = qsplice_wire::checksum::update_addr(c, dst, new_dst);
        m.set_checksum(c);
    };
    patch(&mut m);
    assert_eq!(m.verify_checksum(src, new_dst), valid);
    m.fill_checksum(src, dst);
    assert!(m.verify_checksum(src, dst));
    patch(&mut m);
    let inc = m.checksum();
    m.fill_checksum(src, new_dst);
    assert_eq!(inc, m.checksum(), "incremental == full recompute");

    m.set_src_port(1);
    m.set_window_len(2);
    m.set_urgent_at(3);
    m.set_flags(fl);
    m.set_header_len(t.header_len());
    assert_eq!(m.flags(), fl);
    let _ = (m.options_mut().len(), m.payload_mut().len());

    // MSS clamp: never panics, keeps a valid checksum valid, and leaves an
    // MSS option (if any) at >= the minimum.
    let mut buf = seg.to_vec();
    let mut m = TcpPacket::new_unchecked(&mut buf[..]);
    let min = (k >> 16) as u16;
    if m.clamp_mss_option(min).is_some() {
        assert_eq!(m.verify_checksum(src, dst), valid);
        assert_eq!(m.clamp_mss_option(min), None, "idempotent");
    }
}

fn tcp_options(area: &[u8]) {
    let mut last = None;
    let mut n = 0usize;
    let mut errored = false;
    let mut it = TcpOptionsIter::new(area);
    for item in it.by_ref() {
        n += 1;
        assert!(n <= area.len(), "iterator must consume input");
        assert!(!errored, "nothing after an error");
        match item {
            Ok((off, opt)) => {
                assert!(last.is_none_or(|l| off > l));
                last = Some(off);
                let len = opt.buffer_len();
                assert!(off + len <= area.len());
                let mut out = [0u8; 256];
                let w = opt.emit(&mut out);
                assert_eq!(w, len);
                if !matches!(opt, TcpOption::Unknown { .. }) {
                    assert_eq!(&out[..w], &area[off..off + w], "re-emit matches");
                }
            }
            Err(_) => errored = true,
        }
    }
    assert!(it.next().is_none());
}

/// IPv4 packet (with whatever it carries), plus the splice rewrite with the
/// packet at offset 0.
pub fn ipv4(data: &[u8]) {
    ipv4_packet(data);
    rewrite(data, 0);
}

/// IPv6 and its extension-header walk, then ICMPv6 (echo, neighbor
/// messages and their options) at the upper layer the walk found: any
/// bytes are parsed or refused, never a panic, and the walk stays inside
/// the payload.
pub fn ipv6(data: &[u8]) {
    use qsplice_wire::Ipv6Packet;
    let Ok(ip) = Ipv6Packet::new_checked(data) else {
        return;
    };
    assert_eq!(ip.version(), 6);
    assert_eq!(ip.payload().len(), usize::from(ip.payload_len()));
    let _ = (ip.traffic_class(), ip.flow_label(), ip.hop_limit());
    if let Ok(u) = ip.upper_layer() {
        assert!(u.offset >= 40 && u.offset <= 40 + ip.payload().len());
        assert!(usize::from(u.ext_headers) <= qsplice_wire::ipv6::MAX_EXT_HEADERS);
        let end = 40 + ip.payload().len();
        if u.proto == qsplice_wire::ipv6::next_header::ICMPV6 {
            icmpv6_message(&data[u.offset..end], ip.src_addr(), ip.dst_addr());
        }
    }
}

/// An ICMPv6 message alone (the fuzz input is the message; the addresses
/// of the pseudo-header are fixed).
pub fn icmpv6(data: &[u8]) {
    icmpv6_message(data, "fe80::1".parse().unwrap(), "ff02::1".parse().unwrap());
}

fn icmpv6_message(data: &[u8], src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr) {
    use qsplice_wire::icmpv6::{kind, nd_option};
    let Ok(m) = qsplice_wire::Icmpv6Packet::new_checked(data) else {
        return;
    };
    let _ = (m.code(), m.checksum(), m.verify_checksum(src, dst));
    match m.msg_type() {
        kind::ECHO_REQUEST | kind::ECHO_REPLY => {
            let _ = (m.echo_ident(), m.echo_seq());
        }
        kind::NEIGHBOR_SOLICIT | kind::NEIGHBOR_ADVERT => {
            assert!(m.nd_target().is_some());
            let _ = (m.nd_flags(), m.nd_link_layer(nd_option::SOURCE_LL));
            let _ = m.nd_link_layer(nd_option::TARGET_LL);
        }
        _ => {}
    }
    // Filling the checksum makes it verify.
    let mut v = data.to_vec();
    let mut w = qsplice_wire::Icmpv6Packet::new_unchecked(&mut v[..]);
    w.fill_checksum(src, dst);
    assert!(qsplice_wire::Icmpv6Packet::new_checked(&v[..])
        .unwrap()
        .verify_checksum(src, dst));
}

fn ipv4_packet(data: &[u8]) {
    let Ok(ip) = Ipv4Packet::new_checked(data) else {
        return;
    };
    let hl = usize::from(ip.header_len());
    let tl = usize::from(ip.total_len());
    assert_eq!(ip.version(), 4);
    assert!(hl >= 20 && hl <= tl && tl <= data.len());
    assert_eq!(ip.options().len(), hl - 20);
    assert_eq!(ip.header().len(), hl);
    assert_eq!(ip.payload().len(), tl - hl);
    let _ = (
        ip.dscp(),
        ip.ecn(),
        ip.ident(),
        ip.dont_frag(),
        ip.more_frags(),
        ip.reserved_flag(),
    );
    let _ = (
        ip.frag_offset(),
        ip.is_fragment(),
        ip.src_addr(),
        ip.dst_addr(),
    );
    let valid = ip.verify_checksum();

    // TTL decrement with incremental update (a router's job): validity is
    // preserved (the version nibble keeps the header non-zero).
    let mut buf = data.to_vec();
    let mut m = Ipv4Packet::new_unchecked(&mut buf[..]);
    let old = u16::from_be_bytes([m.ttl(), m.protocol()]);
    m.set_ttl(m.ttl().wrapping_sub(1));
    let new = u16::from_be_bytes([m.ttl(), m.protocol()]);
    m.set_checksum(update_u16(m.checksum(), old, new));
    assert_eq!(m.verify_checksum(), valid);
    m.fill_checksum();
    assert!(m.verify_checksum());
    m.set_ident(7);
    m.set_dscp_ecn(0);
    m.set_dont_frag(true);
    m.set_more_frags(false);
    m.set_frag_offset(0);
    assert!(!m.is_fragment());
    let _ = (m.options_mut().len(), m.payload_mut().len());

    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let payload = ip.payload();
    match ip.protocol() {
        ip_proto::TCP => tcp_segment(payload, src, dst),
        ip_proto::UDP => udp_datagram(payload, src, dst),
        ip_proto::ICMP => icmp(payload),
        _ => {}
    }
}

/// The splice rewrite on `frame` with the IPv4 header at `l3`: on success
/// the IPv4 and TCP checksums keep their validity and the fields changed;
/// on error the frame is untouched.
fn rewrite(frame: &[u8], l3: usize) {
    let k = mix(frame);
    let before = frame
        .get(l3..)
        .and_then(|b| Ipv4Packet::new_checked(b).ok())
        .map(|ip| {
            let t = TcpPacket::new_checked(ip.payload()).ok();
            (
                ip.verify_checksum(),
                t.map(|t| t.verify_checksum(ip.src_addr(), ip.dst_addr())),
                t.map(|t| (t.seq_number(), t.ack_number())),
            )
        });
    for reverse in [false, true] {
        let mut f = frame.to_vec();
        let (addr, port, sd, ad) = (Ipv4Addr::from(k.rotate_left(7)), k as u16, k, !k);
        let r = if reverse {
            rewrite_src_v4_tcp(&mut f, l3, addr, port, sd, ad)
        } else {
            rewrite_dst_v4_tcp(&mut f, l3, addr, port, sd, ad)
        };
        match r {
            Ok(()) => {
                let (ip_ok, tcp_ok, Some((seq, ack))) = before.expect("rewrite succeeded") else {
                    panic!("rewrite succeeded on a non-TCP packet")
                };
                let ip = Ipv4Packet::new_checked(&f[l3..]).expect("still valid IPv4");
                assert_eq!(ip.verify_checksum(), ip_ok);
                let t = TcpPacket::new_checked(ip.payload()).expect("still valid TCP");
                assert_eq!(
                    Some(t.verify_checksum(ip.src_addr(), ip.dst_addr())),
                    tcp_ok
                );
                assert_eq!(t.seq_number(), seq.wrapping_add(sd));
                assert_eq!(t.ack_number(), ack.wrapping_add(ad));
                if reverse {
                    assert_eq!((ip.src_addr(), t.src_port()), (addr, port));
                } else {
                    assert_eq!((ip.dst_addr(), t.dst_port()), (addr, port));
                }
            }
            Err(_) => assert_eq!(&f[..], frame, "frame untouched on error"),
        }
    }
}

/// The whole stack: Ethernet → up to two VLAN tags → ARP / IPv4 →
/// TCP / UDP / ICMP, calling every accessor on the way, plus the splice
/// rewrite at the discovered L3 offset.
pub fn packet_parser(data: &[u8]) {
    ethernet(data);
    let Ok((et, l3, _)) = ethernet_l3(data) else {
        return;
    };
    let rest = &data[l3..];
    match et {
        ethertype::ARP => arp(rest),
        ethertype::IPV4 => {
            ipv4_packet(rest);
            rewrite(data, l3);
        }
        _ => {}
    }
}

/// `translate6` over arbitrary bytes: the first 40 bytes choose the
/// translation, the rest is an Ethernet frame. A refused frame is left
/// unchanged; a translated frame whose TCP checksum was valid stays valid.
pub fn splice_translate6(data: &[u8]) {
    use qsplice_splice::translate6::{translate6, Translation6};
    use std::net::{Ipv6Addr, SocketAddrV6};
    if data.len() < 54 {
        return;
    }
    let (h, rest) = data.split_at(54);
    let a = |i: usize| {
        let mut b = [0u8; 16];
        b.copy_from_slice(&h[i..i + 16]);
        Ipv6Addr::from(b)
    };
    let u32at = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let t = Translation6 {
        src: SocketAddrV6::new(a(0), u16::from_be_bytes([h[32], h[33]]), 0, 0),
        dst: SocketAddrV6::new(a(16), u16::from_be_bytes([h[34], h[35]]), 0, 0),
        seq_delta: u32at(36),
        ack_delta: u32at(40),
        tsval_delta: u32at(44),
        tsecr_delta: u32at(48),
        win_shift: (h[52] as i8) % 17,
    };
    let valid = |f: &[u8]| -> Option<bool> {
        let ip = qsplice_wire::Ipv6Packet::new_checked(f.get(14..)?).ok()?;
        if ip.next_header() != 6 {
            return None;
        }
        let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
        Some(tcp.verify_checksum_v6(ip.src_addr(), ip.dst_addr()))
    };
    let mut frame = rest.to_vec();
    let was_valid = valid(&frame) == Some(true);
    let before = frame.clone();
    match translate6(&mut frame, 14, &t) {
        Ok(_) => {
            if was_valid {
                assert_eq!(valid(&frame), Some(true), "checksum broken by translate6");
            }
        }
        Err(_) => assert_eq!(frame, before, "refused frame changed"),
    }
}

/// IP family translation (`qsplice_splice::family`): any bytes, any
/// offsets — refused unchanged or translated; a TCP/IPv6 segment with a
/// good checksum becomes a TCP/IPv4 one with good checksums, and back to
/// IPv6 with a good checksum again; IPv4 input likewise never panics.
pub fn splice_family(data: &[u8]) {
    use qsplice_splice::family::{tcp4_to_6, tcp6_to_4};
    use std::net::{Ipv4Addr, Ipv6Addr};
    if data.len() < 4 {
        return;
    }
    let (h, rest) = data.split_at(4);
    let l4 = 54 + usize::from(h[0] % 4) * 8;
    let (s4, d4) = (
        Ipv4Addr::new(240, 0, 0, h[1]),
        Ipv4Addr::new(248, 0, 1, h[2]),
    );
    let v6 = |f: &[u8]| -> Option<(Ipv6Addr, Ipv6Addr, bool)> {
        let ip = qsplice_wire::Ipv6Packet::new_checked(f.get(14..)?).ok()?;
        if ip.next_header() != 6 || l4 != 54 {
            return None;
        }
        let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
        Some((
            ip.src_addr(),
            ip.dst_addr(),
            tcp.verify_checksum_v6(ip.src_addr(), ip.dst_addr()),
        ))
    };
    let mut f = rest.to_vec();
    let before = f.clone();
    let orig = v6(&f);
    match tcp6_to_4(&mut f, (0, 14, l4), s4, d4) {
        Err(_) => assert_eq!(f, before, "refused frame changed"),
        Ok(start) => {
            let ip = qsplice_wire::Ipv4Packet::new_checked(&f[start + 14..]).expect("IPv4 out");
            assert!(ip.verify_checksum(), "IPv4 header checksum");
            let end = start + 14 + usize::from(ip.total_len());
            if let Some((a, b, good)) = orig {
                let tcp = TcpPacket::new_checked(ip.payload()).expect("TCP out");
                if good {
                    assert!(tcp.verify_checksum(s4, d4), "TCP checksum broken 6→4");
                }
                let mut g = vec![0u8; 20];
                g.extend_from_slice(&f[start..end]);
                let s = tcp4_to_6(&mut g, (20, 34, 54), a, b, u32::from(h[3])).expect("4→6");
                assert_eq!(s, 0);
                let ip6 = qsplice_wire::Ipv6Packet::new_checked(&g[14..]).expect("IPv6 out");
                let tcp = TcpPacket::new_checked(ip6.payload()).expect("TCP out");
                if good {
                    assert!(tcp.verify_checksum_v6(a, b), "TCP checksum broken 4→6");
                }
            }
        }
    }
    // The same bytes as IPv4, offsets from the input.
    let mut f = rest.to_vec();
    let before = f.clone();
    let l3 = 14 + usize::from(h[0] % 3);
    let l4 = l3 + 20 + usize::from(h[1] % 3) * 4;
    let room = 40 + l3 - l4.min(40 + l3);
    let mut g = vec![0u8; room];
    g.extend_from_slice(&f);
    if tcp4_to_6(
        &mut f,
        (0, l3, l4),
        Ipv6Addr::LOCALHOST,
        Ipv6Addr::UNSPECIFIED,
        7,
    )
    .is_err()
    {
        assert_eq!(f, before, "refused frame changed");
    }
    let _ = tcp4_to_6(
        &mut g,
        (room, room + l3, room + l4),
        Ipv6Addr::LOCALHOST,
        Ipv6Addr::LOCALHOST,
        7,
    );
}

/// DHCPv6 messages (`qsplice_dhcp::wire6`, `qsplice_dhcp::server6`): any
/// bytes parse or are refused, never a panic; every accessor and nested
/// view of what parses is safe; its options written again with `Writer`
/// read back the same; the server answers with a well-formed message or
/// refuses.
pub fn dhcp6(data: &[u8]) {
    use qsplice_dhcp::server6::{Server6, Server6Config};
    use qsplice_dhcp::wire6::{duid_ll, Dhcp6Packet, Duid, Writer};
    // The server answers or refuses; an answer is a well-formed message.
    let mut server = Server6::new(&Server6Config {
        duid: duid_ll([2, 0, 0, 0, 0, 1]).to_vec(),
        addr_first: "2001:db8::100".parse().unwrap(),
        addr_count: 4,
        pd: Some(("2001:db8:100::".parse().unwrap(), 48, 50)),
        preferred_s: 300,
        valid_s: 600,
        t1_s: 150,
        t2_s: 240,
        rapid_commit: true,
        preference: 1,
        offer_hold_s: 30,
    })
    .unwrap();
    let mut out = [0u8; 1500];
    for now in [0, 1000] {
        if let Ok(n) = server.handle(now, data, &mut out) {
            assert!(
                Dhcp6Packet::new_checked(&out[..n]).is_ok(),
                "a malformed reply"
            );
        }
    }
    let Ok(p) = Dhcp6Packet::new_checked(data) else {
        return;
    };
    let _ = (p.xid(), p.hop_count(), p.link_address(), p.peer_address());
    let _ = (
        p.elapsed_time(),
        p.preference(),
        p.rapid_commit(),
        p.status(),
    );
    for ia in p.ia_nas().chain(p.ia_pds()) {
        let _ = (ia.addrs().count(), ia.prefixes().count(), ia.status());
    }
    for id in [p.client_id(), p.server_id()].into_iter().flatten() {
        let _ = Duid::parse(id);
    }
    if let Some(Ok(inner)) = p.relay_msg() {
        let _ = (inner.ia_nas().count(), inner.client_id());
    }
    let mut buf = vec![0u8; data.len() + 64];
    let mut w = if p.is_relay() {
        Writer::relay(
            &mut buf,
            p.msg_type(),
            p.hop_count(),
            p.link_address().unwrap(),
            p.peer_address().unwrap(),
        )
        .unwrap()
    } else {
        Writer::message(&mut buf, p.msg_type(), p.xid()).unwrap()
    };
    for o in p.options() {
        let (c, v) = o.expect("validated");
        w.option(c, v).unwrap();
    }
    let n = w.finish().unwrap();
    assert_eq!(&buf[..n], data, "options written again differ");
}

/// A frame reaching the DHCPv6 side of `qsplice dhcp-server`
/// (`qsplice_dhcp::frame6`, `qsplice_dhcp::link6`) and the DHCPv6 load
/// tester (`qsplice_dhcp::client6`): never a panic; every reply the server
/// writes parses back as a DHCPv6 frame to port 546 or 547; a Neighbor
/// Advertisement is only written for an address the server owns.
pub fn dhcp6_frame(data: &[u8]) {
    use qsplice_dhcp::client6::{Tester6, Tester6Config};
    use qsplice_dhcp::frame6::{neighbor_advert, parse_frame6};
    use qsplice_dhcp::link6::Server6Link;
    use qsplice_dhcp::server::{DelayConfig, FaultConfig};
    use qsplice_dhcp::server6::Server6Config;
    use qsplice_dhcp::wire6::duid_ll;
    use qsplice_wire::MacAddr;
    let mac = MacAddr([2, 0, 0, 0, 0, 1]);
    let mut link = Server6Link::new(
        &Server6Config {
            duid: duid_ll(mac.0).to_vec(),
            addr_first: "2001:db8::100".parse().unwrap(),
            addr_count: 4,
            pd: Some(("2001:db8:100::".parse().unwrap(), 48, 50)),
            preferred_s: 300,
            valid_s: 600,
            t1_s: 150,
            t2_s: 240,
            rapid_commit: true,
            preference: 1,
            offer_hold_s: 30,
        },
        mac,
        &["2001:db8::1".parse().unwrap()],
        &FaultConfig {
            drop_probability: 0.0,
            delay: DelayConfig::None,
            rate_limit: None,
        },
        1,
        1_000_000_000,
    )
    .unwrap();
    let _ = parse_frame6(data);
    let mut na = [0u8; 128];
    if let Some(n) = neighbor_advert(data, |a| link.owns(a).then_some(mac), &mut na) {
        assert!(n <= na.len());
    }
    let mut out = [0u8; 2048];
    if let Ok(Some(r)) = link.handle_frame(1_000_000_000, data, &mut out) {
        let p = parse_frame6(&out[..r.len]).expect("a reply that does not parse");
        assert!(p.meta.dst_port == 546 || p.meta.dst_port == 547);
    }
    let mut tester = Tester6::new(&Tester6Config::new(4), 1_000_000_000).unwrap();
    let _ = tester.on_reply(0, data);
}

/// A cluster flow record as read back from Redis (`qsplice_splice::record`):
/// any bytes decode or are refused, never a panic; what decodes encodes
/// back to the same bytes, and the key of its client-side pair parses back.
pub fn flow_record(data: &[u8]) {
    use qsplice_splice::record;
    if let Some(p) = record::decode(data) {
        assert_eq!(&record::encode(&p)[..], data);
        let k = record::client_key(p.client, p.vip);
        assert_eq!(record::parse_key(&k), Some((p.client, p.vip)));
    }
    let _ = record::parse_key(data);
}

/// `splice_translate` target: the first 25 bytes choose a splice
/// translation (addresses, ports, deltas, window shift), the rest is an
/// Ethernet frame. Asserts: a refused frame is left unchanged; a translated
/// frame whose IPv4/TCP checksums were valid still has valid checksums.
pub fn splice_translate(data: &[u8]) {
    use qsplice_splice::translate::{translate, Translation};
    use std::net::{Ipv4Addr, SocketAddrV4};
    if data.len() < 25 {
        return;
    }
    let (h, rest) = data.split_at(25);
    let u32at = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let u16at = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    let t = Translation {
        src: SocketAddrV4::new(Ipv4Addr::from(u32at(0)), u16at(4)),
        dst: SocketAddrV4::new(Ipv4Addr::from(u32at(6)), u16at(10)),
        seq_delta: u32at(12),
        ack_delta: u32at(16),
        tsval_delta: u32at(20),
        tsecr_delta: u32at(8),
        win_shift: (h[24] as i8) % 17,
    };
    let valid = |f: &[u8]| -> Option<bool> {
        let ip = Ipv4Packet::new_checked(f.get(14..)?).ok()?;
        let (s, d) = (ip.src_addr(), ip.dst_addr());
        let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
        Some(ip.verify_checksum() && tcp.verify_checksum(s, d))
    };
    let mut frame = rest.to_vec();
    let was_valid = valid(&frame) == Some(true);
    match translate(&mut frame, 14, &t) {
        Err(_) => assert_eq!(frame, rest, "refused frame must be unchanged"),
        Ok(_) => {
            if was_valid {
                assert_eq!(valid(&frame), Some(true), "checksums must stay valid");
            }
        }
    }
}

/// TLS hello readers: the input, split into segments at positions taken
/// from its first byte, goes through the assembler; whatever message comes
/// out is read as a ClientHello and as a ServerHello. The assembler must
/// agree with itself for the unsplit input, stay within its bounds, and
/// every length a reader returns must lie within the message.
pub fn tls_hello(data: &[u8]) {
    use qsplice_wire::tls::{ClientHello, HelloAssembler, ServerHello, MAX_HANDSHAKE};
    let Some((&k, stream)) = data.split_first() else {
        return;
    };
    let mut whole = HelloAssembler::new();
    let r_whole = whole.push(stream);
    let mut split = HelloAssembler::new();
    let step = usize::from(k % 17) + 1;
    let mut r_split = Ok(None);
    for chunk in stream.chunks(step) {
        r_split = split.push(chunk);
        if !matches!(r_split, Ok(None)) {
            break;
        }
    }
    assert_eq!(r_whole, r_split, "segmentation changed the outcome");
    assert_eq!(whole.message(), split.message());
    // The same pieces held as segments, reversed (out of order), with the
    // first repeated: the same message once whole.
    let base = u32::from(k).wrapping_mul(0x9e37_79b9);
    let mut pieces: Vec<(u32, &[u8])> = stream
        .chunks(step)
        .scan(0u32, |off, c| {
            let p = (base.wrapping_add(*off), c);
            *off += c.len() as u32;
            Some(p)
        })
        .collect();
    pieces.reverse();
    if let Some(&last) = pieces.last() {
        pieces.push(last);
    }
    let mut seg = HelloAssembler::new();
    let r_seg = qsplice_wire::tls::assemble_segments(&mut seg, base, &pieces);
    assert_eq!(r_seg, r_whole, "held segments changed the outcome");
    assert_eq!(seg.message(), whole.message());
    assert!(whole.consumed() <= stream.len());
    let msg = whole.message().unwrap_or(stream);
    assert!(msg.len() <= MAX_HANDSHAKE + 4 || whole.message().is_none());
    if let Ok(ch) = ClientHello::parse(msg) {
        assert!(ch.session_id.len() <= 32 && ch.random.len() == 32);
        assert!(ch.cipher_suites.len() % 2 == 0);
    }
    if let Ok(sh) = ServerHello::parse(msg) {
        assert!(sh.session_id.len() <= 32);
    }
}

/// `http_xff`: the X-Forwarded-For inserter on arbitrary client bytes, cut
/// in two ways. The output never depends on the cut, removing the inserted
/// lines gives the input back, and growth stays within `max_growth`.
pub fn http_xff(data: &[u8]) {
    use qsplice_wire::http1::XffInserter;
    let Some((&k, stream)) = data.split_first() else {
        return;
    };
    let ip = core::net::Ipv4Addr::new(10, 0, 0, k);
    let run = |step: usize| {
        let mut x = XffInserter::new(ip);
        let mut out = Vec::new();
        for piece in stream.chunks(step) {
            let before = out.len();
            x.feed(piece, &mut |b| out.extend_from_slice(b));
            assert!(out.len() - before <= piece.len() + x.max_growth(piece.len()));
        }
        (out, x.requests())
    };
    let (a, na) = run(stream.len().max(1));
    let (b, nb) = run(usize::from(k % 13) + 1);
    assert_eq!(a, b, "segmentation changed the output");
    assert_eq!(na, nb);
    let line = format!("X-Forwarded-For: {ip}\r\n");
    assert_eq!(a.len(), stream.len() + line.len() * na as usize);
}

/// `tls_session`: a server `TlsSession` fed arbitrary client bytes in
/// pieces: it ends in a state, never panics, and its output stays bounded.
pub fn tls_session(data: &[u8]) {
    use qsplice_tls::{Phase, Plaintext, TlsSession, TlsStats};
    use qsplice_wire::tls::HelloAssembler;
    use std::sync::OnceLock;

    struct Sink {
        got: usize,
        out: &'static [u8],
        pos: usize,
    }
    impl Plaintext for Sink {
        fn room(&self) -> usize {
            65_536
        }
        fn put(&mut self, d: &[u8]) {
            self.got += d.len();
        }
        fn pending(&mut self) -> &[u8] {
            &self.out[self.pos..]
        }
        fn consume(&mut self, n: usize) {
            self.pos += n;
        }
    }

    static CTX: OnceLock<qsplice_tls::TlsContext> = OnceLock::new();
    let ctx = CTX.get_or_init(|| {
        use qsplice_tls::certgen::{KeyAlg, LabCa};
        let dir = std::env::temp_dir().join(format!("qsplice-fuzz-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let leaf = LabCa::new()
            .unwrap()
            .leaf(KeyAlg::EcdsaP256, &["vip.test"])
            .unwrap();
        let (c, k) = (dir.join("c.pem"), dir.join("k.pem"));
        std::fs::write(&c, leaf.cert_pem).unwrap();
        std::fs::write(&k, leaf.key_pem).unwrap();
        qsplice_tls::TlsContext::new(&qsplice_tls::TlsSettings {
            certs: vec![qsplice_tls::certs::CertSpec {
                cert: c,
                key: k,
                names: vec![],
                ocsp: None,
            }],
            ..Default::default()
        })
        .unwrap()
    });
    let Some((&k, stream)) = data.split_first() else {
        return;
    };
    let mut s = TlsSession::new();
    let mut scratch = HelloAssembler::new();
    let mut stats = TlsStats::default();
    let mut sink = Sink {
        got: 0,
        out: b"HTTP/1.1 200 OK\r\n\r\n",
        pos: 0,
    };
    for piece in stream.chunks(usize::from(k) * 8 + 1) {
        let mut off = 0;
        while off < piece.len() {
            let n = s.receive(&piece[off..]);
            off += n;
            s.process(ctx, &mut scratch, &mut sink, &mut stats);
            let out = s.outgoing().len();
            assert!(out <= 128 * 1024);
            s.consume_outgoing(out);
            if n == 0 || matches!(s.phase(), Phase::Failed | Phase::Closed) {
                break;
            }
        }
        if matches!(s.phase(), Phase::Failed | Phase::Closed) {
            break;
        }
    }
    // Garbage never yields plaintext without a completed handshake.
    assert!(sink.got == 0 || s.handshake().is_some());
    assert!(stats.failures.iter().sum::<u64>() <= 1);
}

/// `http_rules`: content-aware rule matching on arbitrary request heads:
/// never panics, and a rule with more criteria never matches where the
/// same rule without them does not.
pub fn http_rules(data: &[u8]) {
    use qsplice_lb::{rule_matches, ContentRule};
    let r = |host: Option<&str>, path: Option<&str>, cookie: Option<(&str, &str)>| ContentRule {
        host: host.map(str::to_string),
        path_prefix: path.map(str::to_string),
        cookie: cookie.map(|(n, v)| (n.to_string(), v.to_string())),
        backends: vec![0],
    };
    let host = r(Some("img.test"), None, None);
    let path = r(None, Some("/a"), None);
    let cookie = r(None, None, Some(("srv", "b1")));
    let all = r(Some("img.test"), Some("/a"), Some(("srv", "b1")));
    let (h, p, c, a) = (
        rule_matches(&host, data),
        rule_matches(&path, data),
        rule_matches(&cookie, data),
        rule_matches(&all, data),
    );
    assert!(!a || (h && p && c), "all criteria imply each");
}

/// "Packet too big" (`qsplice_wire::ptb`): the first byte picks the
/// family, the rest is the ICMP message. Parsing never panics; an error
/// that parses is written back (as the balancer does, to the quoted
/// segment's source) and parses to the same error.
pub fn ptb(data: &[u8]) {
    use qsplice_wire::ptb;
    let Some((&sel, msg)) = data.split_first() else {
        return;
    };
    let v6 = sel & 1 == 1;
    let Ok(p) = ptb::parse(msg, v6) else {
        return;
    };
    let q = p.quoted;
    let mut out = [0u8; 96];
    let n = ptb::write(&mut out, q.dst.0, q.src.0, p.mtu, &q).expect("same-family quote");
    assert_eq!(n, ptb::len(v6));
    let ip = if v6 { 40 } else { 20 };
    let back = ptb::parse(&out[ip..n], v6).expect("written back, parses");
    let want_len = if v6 {
        q.ip_len.clamp(40, 0xffff + 40)
    } else {
        q.ip_len.min(0xffff)
    };
    let want_mtu = if v6 { p.mtu } else { p.mtu.min(0xffff) };
    assert_eq!(
        (back.mtu, back.quoted.src, back.quoted.dst, back.quoted.seq),
        (want_mtu, q.src, q.dst, q.seq)
    );
    assert_eq!(back.quoted.ip_len, want_len);
    match (q.dst.0, q.src.0) {
        (std::net::IpAddr::V6(f), std::net::IpAddr::V6(t)) => {
            let m = qsplice_wire::Icmpv6Packet::new_checked(&out[ip..n]).unwrap();
            assert!(m.verify_checksum(f, t));
        }
        _ => assert_eq!(qsplice_wire::checksum::checksum(&out[ip..n]), 0),
    }
}

/// HTTP/1.1 responses (`qsplice_wire::http_response`): the first byte
/// picks the piece size (and whether the request was a HEAD), the rest is
/// the server's byte stream. Never panics; every call consumes at most
/// what it was given and makes progress or completes a response; body
/// bytes reported add up to the responses' body lengths (plus the one
/// under way); an error sticks.
pub fn http_response(data: &[u8]) {
    use qsplice_wire::http_response::ResponseReader;
    let Some((&sel, stream)) = data.split_first() else {
        return;
    };
    let step = usize::from(sel & 0x3f) + 1;
    let mut r = ResponseReader::new();
    r.expect_head(sel & 0x40 != 0);
    let (mut body, mut done_body) = (0u64, 0u64);
    let mut failed = None;
    'outer: for piece in stream.chunks(step) {
        let mut p = piece;
        while !p.is_empty() {
            match r.feed(p) {
                Ok((n, b, done)) => {
                    assert!(n <= p.len());
                    assert!(n > 0 || done.is_some(), "progress");
                    body += b;
                    if let Some(resp) = done {
                        done_body += resp.body_len;
                        assert!((100..=999).contains(&resp.status));
                    }
                    p = &p[n..];
                }
                Err(e) => {
                    failed = Some(e);
                    break 'outer;
                }
            }
        }
    }
    if let Some(e) = failed {
        assert_eq!(r.feed(b"HTTP/1.1 200 OK\r\n\r\n"), Err(e));
        return;
    }
    match r.finish() {
        Ok(Some(resp)) => assert_eq!(done_body + resp.body_len, body),
        Ok(None) => assert_eq!(done_body, body),
        Err(_) => assert!(body >= done_body),
    }
}
