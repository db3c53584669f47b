//! Property tests for the wire views: checksum arithmetic, the no-panic
//! contract on arbitrary input, TCP option iteration, and emit→parse round
//! trips.

use proptest::collection::vec;
use proptest::prelude::*;
use qsplice_wire::checksum::{
    self, checksum as cksum, fold, pseudo_header_v4, sum, update_addr, update_u16, update_u32,
};
use qsplice_wire::rewrite::{rewrite_dst_v4_tcp, rewrite_src_v4_tcp};
use qsplice_wire::*;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Byte-pair reference sum, folded.
fn naive_fold(data: &[u8], initial: u32) -> u16 {
    let mut s = u64::from(initial);
    for c in data.chunks(2) {
        s += u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// A u16 that hits the one's-complement corner values often.
fn corner_u16() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(0u16),
        Just(0xffff),
        Just(0xfffe),
        Just(1),
        any::<u16>()
    ]
}

fn corner_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(u32::MAX),
        Just(0xffff_0000),
        Just(0x0000_ffff),
        any::<u32>()
    ]
}

fn addr() -> impl Strategy<Value = Ipv4Addr> {
    corner_u32().prop_map(Ipv4Addr::from)
}

/// A random IPv4 header (no options) with a correct checksum; if
/// `zero_csum`, the identification field is chosen so that the checksum is
/// exactly 0x0000 (the corner case incremental updates must get right).
fn ipv4_header(fields: [u16; 6], src: Ipv4Addr, dst: Ipv4Addr, zero_csum: bool) -> [u8; 20] {
    let mut h = [0u8; 20];
    let mut ip = Ipv4Packet::new_unchecked(&mut h[..]);
    ip.set_version(4);
    ip.set_header_len(20);
    ip.set_dscp_ecn(fields[0] as u8);
    ip.set_total_len(fields[1]);
    ip.set_ident(fields[2]);
    ip.set_flags_frag(fields[3]);
    ip.set_ttl(fields[4] as u8);
    ip.set_protocol((fields[4] >> 8) as u8);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    if zero_csum {
        ip.set_ident(0);
        let x = fold(sum(ip.header(), 0));
        ip.set_ident(0xffff - x);
    }
    ip.fill_checksum();
    if zero_csum {
        assert_eq!(ip.checksum(), 0);
    }
    h
}

/// A random TCP segment with a correct checksum for `src`/`dst`.
fn tcp_segment(
    hdr: [u8; 20],
    payload: &[u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    zero_csum: bool,
) -> Vec<u8> {
    let mut seg = hdr.to_vec();
    seg.extend_from_slice(payload);
    let mut t = TcpPacket::new_unchecked(&mut seg[..]);
    t.set_header_len(20);
    if zero_csum {
        t.set_urgent_at(0);
        t.set_checksum(0);
        let ph = pseudo_header_v4(src, dst, ip_proto::TCP, t.as_ref().len() as u16);
        let x = fold(sum(t.as_ref(), ph));
        t.set_urgent_at(0xffff - x);
    }
    t.fill_checksum(src, dst);
    if zero_csum {
        assert_eq!(t.checksum(), 0);
    }
    seg
}

// ---------------------------------------------------------------------------
// (1) Checksum arithmetic
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn sum_matches_naive(data in vec(any::<u8>(), 0..2100), initial in any::<u32>(), skip in 0usize..8) {
        let d = &data[skip.min(data.len())..];
        prop_assert_eq!(fold(sum(d, initial)), naive_fold(d, u32::from(fold(initial))));
        prop_assert_eq!(cksum(d), !naive_fold(d, 0));
    }

    #[test]
    fn sum_chains_at_even_boundaries(data in vec(any::<u8>(), 0..600), split in 0usize..300) {
        let at = (split * 2).min(data.len() & !1);
        let (a, b) = data.split_at(at);
        prop_assert_eq!(fold(sum(b, sum(a, 0))), fold(sum(&data, 0)));
    }

    /// Raw RFC 1624 update on arbitrary word vectors: equal to recomputation,
    /// except that when the data is all-zero before or after the change the
    /// two may differ only by the representation of zero (0x0000 vs 0xffff).
    #[test]
    fn update_u16_matches_recompute(mut words in vec(corner_u16(), 1..64), idx in any::<prop::sample::Index>(), new in corner_u16()) {
        let bytes = |w: &[u16]| w.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
        let before = cksum(&bytes(&words));
        let i = idx.index(words.len());
        let old = words[i];
        let all_zero_before = words.iter().all(|&w| w == 0);
        words[i] = new;
        let all_zero_after = words.iter().all(|&w| w == 0);
        let full = cksum(&bytes(&words));
        let inc = update_u16(before, old, new);
        if all_zero_before || all_zero_after {
            prop_assert!(inc == full || (inc ^ full) == 0xffff, "inc {inc:#x} full {full:#x}");
        } else {
            prop_assert_eq!(inc, full);
        }
    }

    /// IPv4 header: change any 16-bit word (except the checksum) or an
    /// address; the incremental result equals `fill_checksum`.
    #[test]
    fn ipv4_incremental_equals_full(
        fields in prop::array::uniform6(corner_u16()),
        src in addr(), dst in addr(),
        zero_csum in any::<bool>(),
        word in 0usize..9, new_word in corner_u16(),
        new_addr in addr(), which_addr in any::<bool>(),
    ) {
        let h = ipv4_header(fields, src, dst, zero_csum);
        let csum = Ipv4Packet::new_unchecked(&h[..]).checksum();

        // A 16-bit word (skip index 5 = the checksum field).
        let w = if word >= 5 { word + 1 } else { word };
        // Word 0 is version/IHL/DSCP-ECN: only vary DSCP-ECN (the IHL
        // decides what the checksum covers, and a real header is never
        // all-zero).
        let new_word = if w == 0 { (new_word & 0x00ff) | 0x4500 } else { new_word };
        let mut a = h;
        let old = u16::from_be_bytes([a[2 * w], a[2 * w + 1]]);
        a[2 * w..2 * w + 2].copy_from_slice(&new_word.to_be_bytes());
        let mut ip = Ipv4Packet::new_unchecked(&mut a[..]);
        ip.set_checksum(update_u16(csum, old, new_word));
        let inc = ip.checksum();
        ip.fill_checksum();
        prop_assert_eq!(inc, ip.checksum());

        // An address.
        let mut b = h;
        let mut ip = Ipv4Packet::new_unchecked(&mut b[..]);
        let old = if which_addr { ip.src_addr() } else { ip.dst_addr() };
        if which_addr { ip.set_src_addr(new_addr) } else { ip.set_dst_addr(new_addr) }
        ip.set_checksum(update_addr(csum, old, new_addr));
        let inc = ip.checksum();
        ip.fill_checksum();
        prop_assert_eq!(inc, ip.checksum());
        prop_assert!(ip.verify_checksum());
    }

    /// TCP segment: port (u16), seq/ack (u32) and pseudo-header address
    /// changes, applied incrementally, equal `fill_checksum`.
    #[test]
    fn tcp_incremental_equals_full(
        hdr in prop::array::uniform20(any::<u8>()),
        payload in vec(any::<u8>(), 0..64),
        src in addr(), dst in addr(),
        zero_csum in any::<bool>(),
        new_port in corner_u16(), new_seq in corner_u32(), new_ack in corner_u32(), new_dst in addr(),
    ) {
        let mut seg = tcp_segment(hdr, &payload, src, dst, zero_csum);
        let mut t = TcpPacket::new_checked(&mut seg[..]).unwrap();
        let mut c = t.checksum();
        let (op, os, oa) = (t.dst_port(), t.seq_number(), t.ack_number());
        t.set_dst_port(new_port);
        c = update_u16(c, op, new_port);
        t.set_seq_number(new_seq);
        c = update_u32(c, os, new_seq);
        t.set_ack_number(new_ack);
        c = update_u32(c, oa, new_ack);
        c = update_addr(c, dst, new_dst);
        t.set_checksum(c);
        prop_assert!(t.verify_checksum(src, new_dst));
        t.fill_checksum(src, new_dst);
        prop_assert_eq!(c, t.checksum());
    }

    /// The splice rewrite on a full Ethernet/IPv4/TCP frame equals the same
    /// rewrite with full recomputation of both checksums.
    #[test]
    fn rewrite_equals_full(
        fields in prop::array::uniform6(corner_u16()),
        hdr in prop::array::uniform20(any::<u8>()),
        payload in vec(any::<u8>(), 0..100),
        src in addr(), dst in addr(),
        zero_ip in any::<bool>(), zero_tcp in any::<bool>(),
        new_addr in addr(), new_port in corner_u16(), sd in corner_u32(), ad in corner_u32(),
        reverse in any::<bool>(),
    ) {
        let seg = tcp_segment(hdr, &payload, src, dst, zero_tcp);
        let mut fields = fields;
        fields[1] = (20 + seg.len()) as u16; // total length
        fields[3] &= 0x4000; // DF only: not a fragment
        fields[4] = (u16::from(ip_proto::TCP) << 8) | (fields[4] & 0xff);
        let ip = ipv4_header(fields, src, dst, zero_ip);
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&ethertype::IPV4.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&seg);

        let mut inc = frame.clone();
        if reverse {
            rewrite_src_v4_tcp(&mut inc, 14, new_addr, new_port, sd, ad).unwrap();
        } else {
            rewrite_dst_v4_tcp(&mut inc, 14, new_addr, new_port, sd, ad).unwrap();
        }

        let mut full = frame;
        let mut ip = Ipv4Packet::new_checked(&mut full[14..]).unwrap();
        if reverse { ip.set_src_addr(new_addr) } else { ip.set_dst_addr(new_addr) }
        ip.fill_checksum();
        let (s, d) = (ip.src_addr(), ip.dst_addr());
        let mut t = TcpPacket::new_checked(ip.payload_mut()).unwrap();
        if reverse { t.set_src_port(new_port) } else { t.set_dst_port(new_port) }
        t.set_seq_number(t.seq_number().wrapping_add(sd));
        t.set_ack_number(t.ack_number().wrapping_add(ad));
        t.fill_checksum(s, d);
        prop_assert_eq!(inc, full);
    }
}

// ---------------------------------------------------------------------------
// (2) No accessor panics after new_checked, on arbitrary bytes
// ---------------------------------------------------------------------------

fn touch_eth(b: &mut [u8]) {
    let _ = ethernet_l3(b);
    if let Ok(f) = EthernetFrame::new_checked(&*b) {
        let _ = (
            f.dst(),
            f.src(),
            f.ethertype(),
            f.payload().len(),
            f.header_len(),
        );
    }
    if let Ok(mut f) = EthernetFrame::new_checked(&mut *b) {
        let (d, s, e) = (f.dst(), f.src(), f.ethertype());
        f.set_dst(s);
        f.set_src(d);
        f.set_ethertype(e);
        let _ = f.payload_mut().len();
    }
    if let Ok(mut v) = VlanHeader::new_checked(&mut *b) {
        let _ = (
            v.tci(),
            v.pcp(),
            v.dei(),
            v.vid(),
            v.inner_ethertype(),
            v.payload().len(),
        );
        let (p, d, i, e) = (v.pcp(), v.dei(), v.vid(), v.inner_ethertype());
        v.set_pcp(p.wrapping_add(1));
        v.set_dei(!d);
        v.set_vid(i ^ 0xfff);
        v.set_inner_ethertype(e);
        v.set_tci(0);
        let _ = v.payload_mut().len();
    }
}

fn touch_arp(b: &mut [u8]) {
    if let Ok(mut a) = ArpPacket::new_checked(&mut *b) {
        let _ = (
            a.hardware_type(),
            a.protocol_type(),
            a.hardware_len(),
            a.protocol_len(),
            a.operation(),
        );
        let r = ArpRepr::parse(&a).expect("checked packet parses");
        assert_eq!(r.buffer_len(), ArpPacket::<&[u8]>::LEN);
        a.set_operation(ArpOp::REPLY);
        a.set_sender_mac(r.target_mac);
        a.set_target_mac(r.sender_mac);
        a.set_sender_ip(r.target_ip);
        a.set_target_ip(r.sender_ip);
        r.emit(&mut a);
        assert_eq!(ArpRepr::parse(&a), Ok(r));
    } else {
        let _ = ArpRepr::parse(&ArpPacket::new_unchecked(&*b));
    }
}

fn touch_ipv4(b: &mut [u8]) {
    if let Ok(mut ip) = Ipv4Packet::new_checked(&mut *b) {
        let _ = (
            ip.version(),
            ip.header_len(),
            ip.dscp_ecn(),
            ip.dscp(),
            ip.ecn(),
            ip.total_len(),
            ip.ident(),
        );
        let _ = (
            ip.flags_frag(),
            ip.reserved_flag(),
            ip.dont_frag(),
            ip.more_frags(),
            ip.frag_offset(),
            ip.is_fragment(),
        );
        let _ = (
            ip.ttl(),
            ip.protocol(),
            ip.checksum(),
            ip.src_addr(),
            ip.dst_addr(),
        );
        let _ = (
            ip.header().len(),
            ip.options().len(),
            ip.payload().len(),
            ip.verify_checksum(),
        );
        assert!(ip.payload().len() <= usize::from(ip.total_len()));
        // Setters, including ones that make the length fields inconsistent;
        // the clamped accessors must still not panic.
        let (s, d) = (ip.src_addr(), ip.dst_addr());
        ip.set_src_addr(d);
        ip.set_dst_addr(s);
        ip.set_ttl(ip.ttl().wrapping_sub(1));
        ip.set_dont_frag(true);
        ip.set_more_frags(false);
        ip.set_frag_offset(8);
        ip.clear_flags();
        ip.set_ident(1);
        ip.set_dscp_ecn(0);
        ip.set_protocol(ip_proto::TCP);
        ip.fill_checksum();
        assert!(ip.verify_checksum());
        let _ = (ip.options_mut().len(), ip.payload_mut().len());
        ip.set_header_len(60);
        ip.set_total_len(u16::MAX);
        let _ = (
            ip.header().len(),
            ip.options().len(),
            ip.payload().len(),
            ip.verify_checksum(),
        );
        let _ = (ip.options_mut().len(), ip.payload_mut().len());
        ip.fill_checksum();
        ip.set_version(6);
        ip.set_header_len(0);
        ip.set_total_len(0);
        let _ = (ip.options().len(), ip.payload().len(), ip.verify_checksum());
        ip.set_checksum(0);
    }
}

fn touch_icmp(b: &mut [u8]) {
    if let Ok(mut p) = Icmpv4Packet::new_checked(&mut *b) {
        let _ = (
            p.msg_type(),
            p.code(),
            p.checksum(),
            p.rest_of_header(),
            p.echo_ident(),
            p.echo_seq(),
            p.payload().len(),
        );
        let _ = (p.verify_checksum(), p.header_len());
        p.set_msg_type(Icmpv4Packet::<&[u8]>::ECHO_REPLY);
        p.set_code(0);
        p.set_echo_ident(1);
        p.set_echo_seq(2);
        p.set_rest_of_header(3);
        let _ = p.payload_mut().len();
        p.fill_checksum();
        assert!(p.verify_checksum());
        p.set_checksum(0);
    }
}

fn touch_udp(b: &mut [u8], s: Ipv4Addr, d: Ipv4Addr) {
    if let Ok(mut u) = UdpPacket::new_checked(&mut *b) {
        let _ = (
            u.src_port(),
            u.dst_port(),
            u.len(),
            u.checksum(),
            u.datagram().len(),
            u.payload().len(),
            u.header_len(),
        );
        let _ = u.verify_checksum(s, d);
        u.set_src_port(1);
        u.set_dst_port(2);
        u.fill_checksum(s, d);
        assert!(u.verify_checksum(s, d));
        assert_ne!(u.checksum(), 0);
        let _ = u.payload_mut().len();
        u.set_len(u16::MAX);
        let _ = (
            u.datagram().len(),
            u.payload().len(),
            u.verify_checksum(s, d),
            u.payload_mut().len(),
        );
        u.fill_checksum(s, d);
        u.set_len(0);
        let _ = (
            u.datagram().len(),
            u.payload().len(),
            u.verify_checksum(s, d),
            u.payload_mut().len(),
        );
        u.set_checksum(0);
    }
}

fn touch_tcp(b: &mut [u8], s: Ipv4Addr, d: Ipv4Addr) {
    if let Ok(mut t) = TcpPacket::new_checked(&mut *b) {
        let _ = (
            t.src_port(),
            t.dst_port(),
            t.seq_number(),
            t.ack_number(),
            t.header_len(),
            t.flags(),
            t.window_len(),
        );
        let _ = (
            t.checksum(),
            t.urgent_at(),
            t.options().len(),
            t.payload().len(),
            t.segment_len(),
        );
        let _ = t.flags().to_string();
        let _ = t.verify_checksum(s, d);
        for (_, o) in t.options_iter().flatten() {
            let _ = o.buffer_len();
        }
        t.set_src_port(1);
        t.set_dst_port(2);
        t.set_seq_number(3);
        t.set_ack_number(4);
        t.set_flags(TcpFlags::all());
        t.set_window_len(5);
        t.set_urgent_at(6);
        t.fill_checksum(s, d);
        assert!(t.verify_checksum(s, d));
        let _ = (t.options_mut().len(), t.payload_mut().len());
        t.set_header_len(60);
        let _ = (
            t.options().len(),
            t.payload().len(),
            t.options_iter().count(),
            t.options_mut().len(),
            t.payload_mut().len(),
        );
        t.set_header_len(0);
        let _ = (
            t.options().len(),
            t.payload().len(),
            t.options_iter().count(),
            t.options_mut().len(),
            t.payload_mut().len(),
        );
        t.set_checksum(0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn no_view_panics_on_arbitrary_bytes(data in vec(any::<u8>(), 0..200), s in any::<u32>(), d in any::<u32>()) {
        let (s, d) = (Ipv4Addr::from(s), Ipv4Addr::from(d));
        touch_eth(&mut data.clone());
        touch_arp(&mut data.clone());
        touch_ipv4(&mut data.clone());
        touch_icmp(&mut data.clone());
        touch_udp(&mut data.clone(), s, d);
        touch_tcp(&mut data.clone(), s, d);
        let mut f = data.clone();
        let _ = rewrite_dst_v4_tcp(&mut f, 14, s, 1, 2, 3);
        let _ = rewrite_src_v4_tcp(&mut f, 0, d, 1, 2, 3);
    }

    /// The same, on inputs biased towards getting past `new_checked` (a
    /// plausible IPv4 first byte, plausible length fields).
    #[test]
    fn no_view_panics_on_plausible_headers(
        mut data in vec(any::<u8>(), 20..200),
        ihl in 5u8..16, tl in any::<prop::sample::Index>(), off in 5u8..16,
    ) {
        let len = data.len();
        data[0] = 0x40 | ihl;
        let total = (tl.index(len + 1)) as u16;
        data[2..4].copy_from_slice(&total.to_be_bytes());
        data[12] = (off << 4) | (data[12] & 0x0f);
        data[4..6].copy_from_slice(&total.to_be_bytes());
        let (s, d) = (Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8));
        touch_ipv4(&mut data.clone());
        touch_tcp(&mut data.clone(), s, d);
        touch_udp(&mut data.clone(), s, d);
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype::IPV4.to_be_bytes());
        f.extend_from_slice(&data);
        let _ = rewrite_dst_v4_tcp(&mut f, 14, s, 1, 2, 3);
    }
}

// ---------------------------------------------------------------------------
// (3) TCP option iteration terminates and never panics
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn options_iter_terminates(area in vec(any::<u8>(), 0..64)) {
        let mut last_off = None;
        let mut n = 0usize;
        let mut it = TcpOptionsIter::new(&area);
        for item in it.by_ref() {
            n += 1;
            prop_assert!(n <= area.len(), "more items than bytes");
            match item {
                Ok((off, opt)) => {
                    prop_assert!(last_off.is_none_or(|l| off > l), "offsets strictly increase");
                    prop_assert!(off < area.len());
                    last_off = Some(off);
                    // Known options re-encode to the same bytes.
                    if !matches!(opt, TcpOption::Unknown { .. }) {
                        let mut buf = [0u8; 64];
                        let k = opt.emit(&mut buf);
                        prop_assert_eq!(&buf[..k], &area[off..off + k]);
                    }
                }
                Err(e) => prop_assert_eq!(e, Error::BadOption),
            }
        }
        // Fused: stays finished.
        prop_assert!(it.next().is_none());
    }
}

// ---------------------------------------------------------------------------
// (4) emit → parse round trips
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum OwnedOpt {
    NoOp,
    Mss(u16),
    Ws(u8),
    SackPerm,
    Sack(Vec<(u32, u32)>),
    Ts(u32, u32),
    Unknown(u8, Vec<u8>),
}

impl OwnedOpt {
    fn as_opt(&self) -> TcpOption<'_> {
        match self {
            OwnedOpt::NoOp => TcpOption::NoOp,
            OwnedOpt::Mss(m) => TcpOption::MaxSegmentSize(*m),
            OwnedOpt::Ws(w) => TcpOption::WindowScale(*w),
            OwnedOpt::SackPerm => TcpOption::SackPermitted,
            OwnedOpt::Sack(r) => {
                let mut a = [None; 4];
                for (slot, &x) in a.iter_mut().zip(r) {
                    *slot = Some(x);
                }
                TcpOption::SackRange(a)
            }
            OwnedOpt::Ts(v, e) => TcpOption::Timestamp {
                tsval: *v,
                tsecr: *e,
            },
            OwnedOpt::Unknown(k, d) => TcpOption::Unknown { kind: *k, data: d },
        }
    }
}

fn owned_opt() -> impl Strategy<Value = OwnedOpt> {
    prop_oneof![
        Just(OwnedOpt::NoOp),
        any::<u16>().prop_map(OwnedOpt::Mss),
        any::<u8>().prop_map(OwnedOpt::Ws),
        Just(OwnedOpt::SackPerm),
        vec((any::<u32>(), any::<u32>()), 1..=4).prop_map(OwnedOpt::Sack),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| OwnedOpt::Ts(a, b)),
        (
            any::<u8>().prop_filter("unknown kinds only", |k| ![0, 1, 2, 3, 4, 5, 8].contains(k)),
            vec(any::<u8>(), 0..12)
        )
            .prop_map(|(k, d)| OwnedOpt::Unknown(k, d)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arp_repr_roundtrip(op in any::<u16>(), sm in any::<[u8; 6]>(), si in any::<u32>(), tm in any::<[u8; 6]>(), ti in any::<u32>(), pad in 0usize..20) {
        let r = ArpRepr { op, sender_mac: MacAddr(sm), sender_ip: Ipv4Addr::from(si), target_mac: MacAddr(tm), target_ip: Ipv4Addr::from(ti) };
        let mut buf = vec![0xa5u8; r.buffer_len() + pad];
        r.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        let p = ArpPacket::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(ArpRepr::parse(&p), Ok(r));
        prop_assert!(buf[r.buffer_len()..].iter().all(|&b| b == 0xa5), "wrote past LEN");
    }

    #[test]
    fn tcp_options_roundtrip(opts in vec(owned_opt(), 0..8), end in any::<bool>()) {
        let mut list: Vec<TcpOption<'_>> = opts.iter().map(OwnedOpt::as_opt).collect();
        if end {
            list.push(TcpOption::EndOfList);
        }
        let total: usize = list.iter().map(TcpOption::buffer_len).sum();
        let mut buf = vec![0u8; total + 8];
        let mut at = 0;
        let mut offsets = Vec::new();
        for o in &list {
            offsets.push(at);
            let n = o.emit(&mut buf[at..]);
            prop_assert_eq!(n, o.buffer_len());
            at += n;
        }
        prop_assert_eq!(at, total);
        // Parse exactly the emitted bytes.
        let parsed: Vec<_> = TcpOptionsIter::new(&buf[..at]).collect::<Result<Vec<_>>>().unwrap();
        let expect: Vec<_> = offsets.into_iter().zip(list.iter().copied()).collect();
        prop_assert_eq!(parsed, expect);

        // And through a TCP header, padded with EOL to a 4-byte multiple.
        if total <= 40 {
            let hl = 20 + total.div_ceil(4) * 4;
            let mut seg = vec![0u8; hl + 3];
            let mut t = TcpPacket::new_unchecked(&mut seg[..]);
            t.set_header_len(hl as u8);
            t.options_mut()[..total].copy_from_slice(&buf[..total]);
            let t = TcpPacket::new_checked(&seg[..]).unwrap();
            let got: Vec<_> = t.options_iter().map(|r| r.map(|(_, o)| o)).collect::<Result<Vec<_>>>().unwrap();
            // Padding zeros parse as one EndOfList (if not already ended).
            let mut want = list.clone();
            if !end && hl - 20 > total {
                want.push(TcpOption::EndOfList);
            }
            prop_assert_eq!(got, want);
        }
    }
}

#[test]
fn checksum_module_reexports() {
    // Smoke-check the module-level free functions are reachable by path.
    assert_eq!(checksum::checksum(&[]), 0xffff);
}
