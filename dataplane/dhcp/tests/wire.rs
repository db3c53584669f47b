//! DHCP wire format and framing: byte fixtures, validation errors, property
//! tests.

use proptest::prelude::*;
use qsplice_dhcp::frame::{parse_frame, FrameError, FrameSpec};
use qsplice_dhcp::wire::{
    opt, AddrList, DhcpPacket, DhcpRepr, Error, MessageType, OptionScratch, RelayAgentInfo,
    BOOTREPLY, BOOTREQUEST, MAGIC_COOKIE, MIN_EMIT_LEN,
};
use qsplice_dhcp::{Ipv4Addr, MacAddr};

/// A DHCPDISCOVER as ISC dhclient sends it (the one in Wireshark's
/// `dhcp.pcap` sample capture), assembled field by field.
fn real_discover() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&[0x01, 0x01, 0x06, 0x00]); // op, htype, hlen, hops
    b.extend_from_slice(&[0x00, 0x00, 0x3d, 0x1d]); // xid
    b.extend_from_slice(&[0x00, 0x00, 0x00, 0x00]); // secs, flags
    b.extend_from_slice(&[0; 16]); // ciaddr yiaddr siaddr giaddr
    b.extend_from_slice(&[0x00, 0x0b, 0x82, 0x01, 0xfc, 0x42]); // chaddr
    b.extend_from_slice(&[0; 10]); // chaddr padding
    b.extend_from_slice(&[0; 64]); // sname
    b.extend_from_slice(&[0; 128]); // file
    b.extend_from_slice(&[0x63, 0x82, 0x53, 0x63]); // magic cookie
    b.extend_from_slice(&[0x35, 0x01, 0x01]); // 53: DISCOVER
    b.extend_from_slice(&[0x3d, 0x07, 0x01, 0x00, 0x0b, 0x82, 0x01, 0xfc, 0x42]); // 61
    b.extend_from_slice(&[0x32, 0x04, 0x00, 0x00, 0x00, 0x00]); // 50: 0.0.0.0
    b.extend_from_slice(&[0x37, 0x04, 0x01, 0x03, 0x06, 0x2a]); // 55
    b.push(0xff); // end
    b.resize(272, 0); // dhclient pads to 272 bytes here
    b
}

#[test]
fn parse_real_discover_every_field() {
    let b = real_discover();
    assert_eq!(b.len(), 272);
    let p = DhcpPacket::new_checked(&b[..]).unwrap();
    assert_eq!(p.op(), BOOTREQUEST);
    assert_eq!(p.htype(), 1);
    assert_eq!(p.hlen(), 6);
    assert_eq!(p.hops(), 0);
    assert_eq!(p.xid(), 0x3d1d);
    assert_eq!(p.secs(), 0);
    assert_eq!(p.flags(), 0);
    assert!(!p.broadcast());
    for a in [p.ciaddr(), p.yiaddr(), p.siaddr(), p.giaddr()] {
        assert_eq!(a, Ipv4Addr::UNSPECIFIED);
    }
    assert_eq!(p.chaddr(), MacAddr([0x00, 0x0b, 0x82, 0x01, 0xfc, 0x42]));
    assert_eq!(p.chaddr_bytes(), &[0x00, 0x0b, 0x82, 0x01, 0xfc, 0x42]);
    assert_eq!(&p.chaddr_raw()[6..], &[0; 10]);
    assert!(p.sname().iter().all(|&x| x == 0) && p.sname().len() == 64);
    assert!(p.file().iter().all(|&x| x == 0) && p.file().len() == 128);
    assert_eq!(p.cookie(), MAGIC_COOKIE);
    let codes: Vec<u8> = p.options().map(|o| o.unwrap().code).collect();
    assert_eq!(codes, [53, 61, 50, 55]);

    let mut scratch = OptionScratch::new();
    let r = DhcpRepr::parse(&b, &mut scratch).unwrap();
    assert_eq!(r.message_type, MessageType::Discover);
    assert_eq!(r.mac(), p.chaddr());
    assert_eq!(
        r.client_id,
        Some(&[0x01, 0x00, 0x0b, 0x82, 0x01, 0xfc, 0x42][..])
    );
    assert_eq!(r.requested_ip, Some(Ipv4Addr::UNSPECIFIED));
    assert_eq!(r.parameter_request_list, Some(&[1u8, 3, 6, 42][..]));
    assert_eq!(r.server_id, None);
    assert_eq!(r.lease_time, None);
    assert_eq!(r.relay_agent_info, None);
}

#[test]
fn emit_discover_matches_hand_assembled_bytes() {
    let b = real_discover();
    let mut r = DhcpRepr::new(
        BOOTREQUEST,
        MessageType::Discover,
        0x3d1d,
        MacAddr([0x00, 0x0b, 0x82, 0x01, 0xfc, 0x42]),
    );
    let cid = [0x01, 0x00, 0x0b, 0x82, 0x01, 0xfc, 0x42];
    r.client_id = Some(&cid);
    r.requested_ip = Some(Ipv4Addr::UNSPECIFIED);
    r.parameter_request_list = Some(&[1, 3, 6, 42]);
    let mut out = [0xaau8; 400];
    let n = r.emit(&mut out).unwrap();
    assert_eq!(n, MIN_EMIT_LEN);
    // Header identical; our option order is 53, 50, 61, 55.
    assert_eq!(out[..240], b[..240]);
    let mut expect = vec![0x35, 0x01, 0x01, 0x32, 0x04, 0, 0, 0, 0];
    expect.extend_from_slice(&[0x3d, 0x07, 0x01, 0x00, 0x0b, 0x82, 0x01, 0xfc, 0x42]);
    expect.extend_from_slice(&[0x37, 0x04, 0x01, 0x03, 0x06, 0x2a, 0xff]);
    assert_eq!(&out[240..240 + expect.len()], &expect[..]);
    assert!(
        out[240 + expect.len()..n].iter().all(|&x| x == 0),
        "padding"
    );
    assert_eq!(out[n], 0xaa, "nothing written past the message");
    assert_eq!(
        DhcpRepr::parse(&out[..n], &mut OptionScratch::new()).unwrap(),
        r
    );
}

#[test]
fn emit_offer_every_option_in_order() {
    let mut r = DhcpRepr::new(
        BOOTREPLY,
        MessageType::Offer,
        0x01020304,
        MacAddr([2, 0, 0, 0, 0, 9]),
    );
    r.yiaddr = Ipv4Addr::new(10, 0, 0, 50);
    r.giaddr = Ipv4Addr::new(10, 0, 0, 1);
    r.broadcast = true;
    r.server_id = Some(Ipv4Addr::new(10, 0, 0, 254));
    r.lease_time = Some(3600);
    r.renewal_time = Some(1800);
    r.rebinding_time = Some(3150);
    r.subnet_mask = Some(Ipv4Addr::new(255, 255, 255, 0));
    r.routers = AddrList::from_iter([Ipv4Addr::new(10, 0, 0, 1)]);
    r.dns_servers = AddrList::from_iter([Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::new(1, 1, 1, 1)]);
    r.hostname = Some(b"host");
    r.max_message_size = Some(1500);
    let o82 = [1, 3, b'a', b'b', b'c', 2, 1, b'z'];
    r.relay_agent_info = Some(&o82);
    let mut out = [0u8; 600];
    let n = r.emit(&mut out).unwrap();
    assert_eq!(&out[10..12], &[0x80, 0x00], "broadcast flag");
    assert_eq!(&out[16..20], &[10, 0, 0, 50]);
    assert_eq!(&out[24..28], &[10, 0, 0, 1]);
    let codes: Vec<u8> = DhcpPacket::new_checked(&out[..n])
        .unwrap()
        .options()
        .map(|o| o.unwrap().code)
        .collect();
    assert_eq!(codes, [53, 54, 51, 58, 59, 1, 3, 6, 57, 12, 82], "82 last");
    let (lt, t1) = (&out[240 + 3 + 6..], &out[240 + 3 + 6 + 6..]);
    assert_eq!(&lt[..6], &[51, 4, 0, 0, 0x0e, 0x10]);
    assert_eq!(&t1[..6], &[58, 4, 0, 0, 0x07, 0x08]);
    assert_eq!(
        DhcpRepr::parse(&out[..n], &mut OptionScratch::new()).unwrap(),
        r
    );
    // Too small a buffer is an error, never a panic.
    assert_eq!(r.emit(&mut out[..n - 1]), Err(Error::BufferTooSmall));
}

#[test]
fn relay_agent_info_rfc3046() {
    // circuit-id "eth0/1", remote-id 6-byte MAC, and an unknown sub-option 9.
    let data = [
        1, 6, b'e', b't', b'h', b'0', b'/', b'1', 2, 6, 0, 1, 2, 3, 4, 5, 9, 2, 0xaa, 0xbb,
    ];
    let info = RelayAgentInfo::parse(&data).unwrap();
    assert_eq!(info.circuit_id, Some(&b"eth0/1"[..]));
    assert_eq!(info.remote_id, Some(&[0u8, 1, 2, 3, 4, 5][..]));
    let mut out = [0u8; 64];
    let n = info.emit(&mut out).unwrap();
    assert_eq!(&out[..n], &data[..16], "unknown sub-option not re-emitted");
    assert_eq!(info.data_len(), 16);
    for bad in [&[1u8][..], &[1, 5, 1, 2], &[2, 0], &[1, 2, 3, 4, 2]] {
        assert_eq!(
            RelayAgentInfo::parse(bad),
            Err(Error::BadRelayAgentInfo),
            "{bad:?}"
        );
    }
    assert_eq!(info.emit(&mut out[..10]), Err(Error::BufferTooSmall));
    // Over 255 bytes in all is fine (DhcpRepr::emit splits it, RFC 3396);
    // one sub-option over 255 bytes cannot be encoded.
    let long = [b'x'; 254];
    let long_total = RelayAgentInfo {
        circuit_id: Some(&long),
        remote_id: None,
    };
    assert_eq!(long_total.emit(&mut [0u8; 300]), Ok(256));
    let longer = [b'x'; 256];
    let too_long = RelayAgentInfo {
        circuit_id: Some(&longer),
        remote_id: None,
    };
    assert_eq!(too_long.emit(&mut [0u8; 300]), Err(Error::OptionTooLong));
}

fn with_options(opts: &[u8]) -> Vec<u8> {
    let mut b = real_discover()[..240].to_vec();
    b.extend_from_slice(opts);
    b
}

#[test]
fn validation_errors_by_reason() {
    let good = real_discover();
    assert_eq!(DhcpPacket::new_checked(&good[..239]), Err(Error::Truncated));
    assert_eq!(
        DhcpRepr::parse(&good[..100], &mut OptionScratch::new()),
        Err(Error::Truncated)
    );
    let mut b = good.clone();
    b[236] = 0x64;
    assert_eq!(
        DhcpRepr::parse(&b, &mut OptionScratch::new()),
        Err(Error::BadCookie)
    );
    let mut b = good.clone();
    b[2] = 17;
    assert_eq!(
        DhcpRepr::parse(&b, &mut OptionScratch::new()),
        Err(Error::BadHlen)
    );
    b[2] = 16;
    assert!(DhcpRepr::parse(&b, &mut OptionScratch::new()).is_ok());

    let cases: &[(&[u8], Error)] = &[
        (&[53, 1, 1], Error::MissingEnd),
        (&[53, 1, 1, 0, 0], Error::MissingEnd),
        (&[53, 1, 1, 61], Error::OptionOverrun),
        (&[53, 1, 1, 61, 9, 1, 2], Error::OptionOverrun),
        (&[53, 2, 1, 1, 255], Error::BadOptionLen),
        (&[53, 1, 1, 54, 3, 1, 2, 3, 255], Error::BadOptionLen),
        (&[53, 1, 1, 51, 5, 0, 0, 0, 0, 0, 255], Error::BadOptionLen),
        (
            &[53, 1, 1, 3, 6, 1, 2, 3, 4, 5, 6, 255],
            Error::BadOptionLen,
        ),
        (&[53, 1, 1, 61, 1, 1, 255], Error::BadOptionLen),
        (&[53, 1, 1, 57, 1, 1, 255], Error::BadOptionLen),
        (&[53, 1, 1, 12, 0, 255], Error::BadOptionLen),
        (&[255], Error::MissingMessageType),
        (&[53, 1, 9, 255], Error::BadMessageType),
        (&[53, 1, 0, 255], Error::BadMessageType),
        (&[53, 1, 1, 82, 3, 1, 5, 0, 255], Error::BadRelayAgentInfo),
        (&[53, 1, 1, 82, 0, 255], Error::BadRelayAgentInfo),
        (&[53, 1, 1, 52, 1, 4, 255], Error::BadOverload),
        (&[53, 1, 1, 52, 2, 1, 1, 255], Error::BadOverload),
        (&[53, 1, 1, 52, 1, 1, 52, 1, 1, 255], Error::BadOverload),
        (&[53, 1, 1, 53, 1, 3, 255], Error::ConflictingMessageType),
        (&[53, 1, 1, 53, 1, 1, 255], Error::ConflictingMessageType),
        // Overload promises `file`, which holds no end option.
        (&[53, 1, 1, 52, 1, 1, 255], Error::MissingEnd),
    ];
    for (opts, err) in cases {
        assert_eq!(
            DhcpRepr::parse(&with_options(opts), &mut OptionScratch::new()),
            Err(*err),
            "{opts:?}"
        );
        assert!(!err.as_str().is_empty());
    }
    // Pads, unknown options and an option split in two pieces (RFC 3396)
    // are fine.
    let b = with_options(&[
        0, 0, 53, 1, 3, 200, 2, 9, 9, 51, 2, 0, 0, 0, 51, 2, 0, 2, 255,
    ]);
    let mut scratch = OptionScratch::new();
    let r = DhcpRepr::parse(&b, &mut scratch).unwrap();
    assert_eq!(r.message_type, MessageType::Request);
    assert_eq!(r.lease_time, Some(2));
    // A repeated option is one long option, not "last wins": two 4-byte
    // lease times concatenate to 8 bytes, which is malformed.
    let b = with_options(&[53, 1, 3, 51, 4, 0, 0, 0, 1, 51, 4, 0, 0, 0, 2, 255]);
    assert_eq!(
        DhcpRepr::parse(&b, &mut OptionScratch::new()),
        Err(Error::BadOptionLen)
    );
}

#[test]
fn option_overload_reads_file_then_sname() {
    let mut b = with_options(&[53, 1, 1, 52, 1, 3, 255]);
    // file (offset 108): server id; sname (offset 44): lease time.
    b[108..115].copy_from_slice(&[54, 4, 10, 0, 0, 1, 255]);
    b[44..50].copy_from_slice(&[51, 4, 0, 0, 1, 0]);
    b[50] = 255;
    let mut scratch = OptionScratch::new();
    let r = DhcpRepr::parse(&b, &mut scratch).unwrap();
    assert_eq!(r.server_id, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(r.lease_time, Some(256));
    let p = DhcpPacket::new_checked(&b[..]).unwrap();
    let codes: Vec<u8> = p.options().map(|o| o.unwrap().code).collect();
    assert_eq!(codes, [53, 52, 54, 51]);
    // Overload 2 (sname only) skips file.
    b[245] = 2;
    let mut scratch = OptionScratch::new();
    let r = DhcpRepr::parse(&b, &mut scratch).unwrap();
    assert_eq!((r.server_id, r.lease_time), (None, Some(256)));
}

fn spec(vlan: Option<u16>) -> FrameSpec {
    FrameSpec {
        src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
        dst_mac: MacAddr::BROADCAST,
        vlan,
        src_ip: Ipv4Addr::UNSPECIFIED,
        dst_ip: Ipv4Addr::BROADCAST,
        src_port: 68,
        dst_port: 67,
        ttl: 64,
        ident: 7,
    }
}

fn build_frame(vlan: Option<u16>) -> Vec<u8> {
    let s = spec(vlan);
    let dhcp = real_discover();
    let mut out = vec![0u8; 1500];
    let off = s.dhcp_offset();
    out[off..off + dhcp.len()].copy_from_slice(&dhcp);
    let n = s.emit(&mut out, dhcp.len()).unwrap();
    out.truncate(n);
    out
}

#[test]
fn frame_roundtrip_untagged_and_vlan() {
    for vlan in [None, Some(100)] {
        let f = build_frame(vlan);
        let l3 = if vlan.is_some() { 18 } else { 14 };
        assert_eq!(f.len(), l3 + 20 + 8 + 272);
        if vlan.is_some() {
            assert_eq!(&f[12..16], &[0x81, 0x00, 0x00, 100]);
        }
        assert_eq!(&f[l3..l3 + 4], &[0x45, 0, 0x01, 0x2c], "IHL 5, total 300");
        assert_eq!(f[l3 + 8], 64, "ttl");
        assert_eq!(f[l3 + 9], 17, "udp");
        let p = parse_frame(&f).unwrap();
        assert_eq!(p.meta.vlan, vlan);
        assert_eq!(p.meta.src_mac, MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(p.meta.dst_mac, MacAddr::BROADCAST);
        assert_eq!(p.meta.src_ip, Ipv4Addr::UNSPECIFIED);
        assert_eq!(p.meta.dst_ip, Ipv4Addr::BROADCAST);
        assert_eq!((p.meta.src_port, p.meta.dst_port), (68, 67));
        assert_eq!(p.dhcp(&f), &real_discover()[..]);
        // Ethernet padding after the datagram is ignored.
        let mut padded = f.clone();
        padded.extend_from_slice(&[0; 10]);
        assert_eq!(parse_frame(&padded).unwrap().dhcp(&padded).len(), 272);
    }
}

#[test]
fn frame_errors_by_reason() {
    let f = build_frame(None);
    let mut b = f.clone();
    b[24] ^= 1; // IPv4 checksum
    assert_eq!(parse_frame(&b), Err(FrameError::BadIpChecksum));
    let mut b = f.clone();
    b[14 + 28 + 100] ^= 1; // DHCP byte covered by the UDP checksum
    assert_eq!(parse_frame(&b), Err(FrameError::BadUdpChecksum));
    let mut b = f.clone();
    b[14 + 26..14 + 28].copy_from_slice(&[0, 0]); // no UDP checksum: accepted
    b[14 + 28 + 100] ^= 1;
    assert!(parse_frame(&b).is_ok());
    assert_eq!(parse_frame(&f[..10]), Err(FrameError::Truncated));
    let mut b = f.clone();
    b[12] = 0x86;
    b[13] = 0xdd;
    assert_eq!(parse_frame(&b), Err(FrameError::NotIpv4));
    assert_eq!(parse_frame(&f[..30]), Err(FrameError::BadIpHeader));
    assert_eq!(parse_frame(&f[..200]), Err(FrameError::BadIpHeader));

    let mk = |src_port: u16, dst_port: u16| {
        let mut s = spec(None);
        s.src_port = src_port;
        s.dst_port = dst_port;
        let mut out = vec![0u8; 400];
        let n = s.emit(&mut out, 300).unwrap();
        out.truncate(n);
        out
    };
    assert_eq!(parse_frame(&mk(68, 53)), Err(FrameError::NotDhcpPort));
    assert!(parse_frame(&mk(67, 68)).is_ok());
    assert_eq!(
        spec(None).emit(&mut [0u8; 100], 300),
        Err(FrameError::BufferTooSmall)
    );
}

fn arb_repr() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, Vec<u8>, u64, [u32; 8], u8)> {
    (
        proptest::collection::vec(any::<u8>(), 2..40),
        proptest::collection::vec(any::<u8>(), 1..60),
        proptest::collection::vec(any::<u8>(), 1..60),
        any::<u64>(),
        any::<[u32; 8]>(),
        1u8..=8,
    )
}

proptest! {
    #[test]
    fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..700)) {
        let mut scratch = OptionScratch::new();
        let _ = DhcpRepr::parse(&data, &mut scratch);
        if let Ok(p) = DhcpPacket::new_checked(&data[..]) {
            for o in p.options().take(1000) {
                let _ = o;
            }
        }
        let _ = parse_frame(&data);
    }

    #[test]
    fn parse_never_panics_past_the_cookie(opts in proptest::collection::vec(any::<u8>(), 0..200),
                                          overload in proptest::collection::vec(any::<u8>(), 192)) {
        let mut b = with_options(&opts);
        b[44..236].copy_from_slice(&overload);
        match DhcpRepr::parse(&b, &mut OptionScratch::new()) {
            Ok(r) => {
                // What parses re-emits and parses to the same thing.
                let mut out = vec![0u8; 2000];
                if let Ok(n) = r.emit(&mut out) {
                    let mut sc2 = OptionScratch::new();
                    prop_assert_eq!(DhcpRepr::parse(&out[..n], &mut sc2).unwrap(), r);
                }
            }
            Err(e) => prop_assert!(!e.as_str().is_empty()),
        }
    }

    #[test]
    fn emit_parse_roundtrip((cid, circuit, remote, bits, w, mt) in arb_repr()) {
        let ip = |x: u32| Ipv4Addr::from(x);
        let mut r = DhcpRepr::new(
            if bits & 1 == 0 { BOOTREQUEST } else { BOOTREPLY },
            MessageType::from_u8(mt).unwrap(),
            w[0],
            MacAddr([w[1] as u8, (w[1] >> 8) as u8, 3, 4, 5, 6]),
        );
        r.hops = (bits >> 8) as u8;
        r.secs = (bits >> 16) as u16;
        r.broadcast = bits & 2 != 0;
        r.ciaddr = ip(w[2]);
        r.yiaddr = ip(w[3]);
        r.siaddr = ip(w[4]);
        r.giaddr = ip(w[5]);
        let some = |k: u32| bits & (1 << k) != 0;
        if some(2) { r.server_id = Some(ip(w[6])); }
        if some(3) { r.requested_ip = Some(ip(w[7])); }
        if some(4) { r.lease_time = Some(w[6]); }
        if some(5) { r.renewal_time = Some(w[7]); }
        if some(6) { r.rebinding_time = Some(w[2]); }
        if some(7) { r.subnet_mask = Some(ip(w[3])); }
        if some(8) { r.routers = AddrList::from_iter([ip(w[4]), ip(w[5])]); }
        if some(9) { r.dns_servers = AddrList::from_iter([ip(w[6])]); }
        if some(10) { r.client_id = Some(&cid); }
        if some(11) { r.parameter_request_list = Some(&cid[1..]); }
        if some(12) { r.max_message_size = Some(w[0] as u16); }
        if some(13) { r.hostname = Some(&circuit); }
        if some(14) { r.message = Some(&remote); }
        let info = RelayAgentInfo {
            circuit_id: some(15).then_some(&circuit[..]),
            remote_id: some(16).then_some(&remote[..]),
        };
        let mut o82 = [0u8; 255];
        let n82 = info.emit(&mut o82).unwrap();
        if n82 > 0 { r.relay_agent_info = Some(&o82[..n82]); }

        let mut out = vec![0u8; 1500];
        let n = r.emit(&mut out).unwrap();
        prop_assert_eq!(n, r.buffer_len());
        prop_assert!(n >= MIN_EMIT_LEN);
        let mut scratch = OptionScratch::new();
        let back = DhcpRepr::parse(&out[..n], &mut scratch).unwrap();
        prop_assert_eq!(&back, &r);
        if let Some(raw) = back.relay_agent_info {
            prop_assert_eq!(RelayAgentInfo::parse(raw).unwrap(), info);
        }
        // And inside a frame, with checksums.
        let s = spec(if bits & (1 << 20) != 0 { Some((w[0] & 0xfff) as u16) } else { None });
        let mut f = vec![0u8; 2000];
        let off = s.dhcp_offset();
        f[off..off + n].copy_from_slice(&out[..n]);
        let total = s.emit(&mut f, n).unwrap();
        let pf = parse_frame(&f[..total]).unwrap();
        let mut sc2 = OptionScratch::new();
        prop_assert_eq!(DhcpRepr::parse(pf.dhcp(&f[..total]), &mut sc2).unwrap(), r);
        // Any single bit flip in IP/UDP headers or payload is caught (or
        // changes a field the checksum does not cover: MACs, VLAN).
        let pos = (w[7] as usize) % (total - off + 28) + off - 28;
        f[pos] ^= 1 << (w[6] % 8);
        let udp_csum_zeroed = f[off - 2] == 0 && f[off - 1] == 0;
        prop_assert!(udp_csum_zeroed || parse_frame(&f[..total]).is_err());
    }
}

#[test]
fn error_names_are_distinct() {
    let mut names: Vec<&str> = Error::ALL.iter().map(|e| e.as_str()).collect();
    names.extend(FrameError::ALL.iter().map(|e| e.as_str()));
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n);
    for (i, e) in Error::ALL.iter().enumerate() {
        assert_eq!(e.index(), i);
    }
    assert_eq!(opt::RELAY_AGENT_INFO, 82);
}
