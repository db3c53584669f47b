//! `translate6`: the splice rewrite of TCP/IPv6 segments, against fixtures
//! built and checked with the wire crate's full checksum computation.

use std::net::{Ipv6Addr, SocketAddrV6};

use proptest::prelude::*;
use qsplice_splice::{translate6, Translation6};
use qsplice_wire::{Error, Ipv6Packet, TcpPacket};

fn sa(a: &str, p: u16) -> SocketAddrV6 {
    SocketAddrV6::new(a.parse().unwrap(), p, 0, 0)
}

/// Ethernet + IPv6 (flow label 0x12345, hop limit 61) + TCP with `opts`
/// and `payload`, checksums filled.
#[allow(clippy::too_many_arguments)]
fn frame(
    s: SocketAddrV6,
    d: SocketAddrV6,
    seq: u32,
    ack: u32,
    flags: u8,
    win: u16,
    opts: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let thl = 20 + opts.len();
    let mut f = vec![0u8; 14 + 40 + thl + payload.len()];
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    {
        let mut ip = Ipv6Packet::new_unchecked(&mut f[14..]);
        ip.set_version_tc_flow(0x20, 0x12345);
        ip.set_payload_len((thl + payload.len()) as u16);
        ip.set_next_header(6);
        ip.set_hop_limit(61);
        ip.set_src_addr(*s.ip());
        ip.set_dst_addr(*d.ip());
    }
    {
        let seg = &mut f[54..];
        let mut t = TcpPacket::new_unchecked(&mut *seg);
        t.set_src_port(s.port());
        t.set_dst_port(d.port());
        t.set_seq_number(seq);
        t.set_ack_number(ack);
        t.set_header_len(thl as u8);
        t.set_flags(qsplice_wire::TcpFlags::from_bits_truncate(u16::from(flags)));
        t.set_window_len(win);
        t.options_mut().copy_from_slice(opts);
        t.payload_mut().copy_from_slice(payload);
        t.fill_checksum_v6(*s.ip(), *d.ip());
    }
    f
}

fn check(f: &[u8]) -> (Ipv6Packet<&[u8]>, TcpPacket<&[u8]>) {
    let ip = Ipv6Packet::new_checked(&f[14..]).unwrap();
    let end = 54 + usize::from(ip.payload_len());
    let tcp = TcpPacket::new_checked(&f[54..end]).unwrap();
    (ip, tcp)
}

fn valid(f: &[u8]) -> bool {
    let (ip, tcp) = check(f);
    tcp.verify_checksum_v6(ip.src_addr(), ip.dst_addr())
}

fn ts(tsval: u32, tsecr: u32) -> Vec<u8> {
    let mut v = vec![1, 1, 8, 10];
    v.extend_from_slice(&tsval.to_be_bytes());
    v.extend_from_slice(&tsecr.to_be_bytes());
    v
}

#[test]
fn client_segment_to_server() {
    let (c, vip) = (sa("2001:db8:1::2", 40000), sa("2001:db8:1::1", 443));
    let (local, server) = (sa("2001:db8:2::1", 20001), sa("2001:db8:2::11", 8443));
    let mut opts = ts(1000, 2000);
    opts.extend_from_slice(&[1, 1, 5, 10, 0, 0, 0, 100, 0, 0, 0, 200]);
    let mut f = frame(c, vip, 5000, 9000, 0x18, 500, &opts, b"hello");
    assert!(valid(&f));
    let t = Translation6 {
        src: local,
        dst: server,
        seq_delta: 1000,
        ack_delta: 0u32.wrapping_sub(2000),
        tsval_delta: 30,
        tsecr_delta: 0u32.wrapping_sub(40),
        win_shift: 2,
    };
    let r = translate6(&mut f, 14, &t).unwrap();
    assert_eq!((r.seq, r.ack, r.payload_len), (6000, 7000, 5));
    assert!(valid(&f), "TCP checksum over the new pseudo-header");
    let (ip, tcp) = check(&f);
    assert_eq!((ip.src_addr(), ip.dst_addr()), (*local.ip(), *server.ip()));
    assert_eq!(
        (ip.flow_label(), ip.traffic_class(), ip.hop_limit()),
        (0x12345, 0x20, 61)
    );
    assert_eq!((tcp.src_port(), tcp.dst_port()), (20001, 8443));
    assert_eq!(
        (tcp.seq_number(), tcp.ack_number(), tcp.window_len()),
        (6000, 7000, 2000)
    );
    let o = tcp.options();
    assert_eq!(&o[4..8], &1030u32.to_be_bytes(), "TSval + 30");
    assert_eq!(&o[8..12], &1960u32.to_be_bytes(), "TSecr - 40");
    assert_eq!(
        &o[16..20],
        &0u32.wrapping_sub(1900).to_be_bytes(),
        "SACK edges moved with the ack"
    );
    assert_eq!(tcp.payload(), b"hello");
}

#[test]
fn refuses_extension_headers_and_malformed_segments_unchanged() {
    let (c, vip) = (sa("2001:db8:1::2", 40000), sa("2001:db8:1::1", 443));
    let t = Translation6 {
        src: vip,
        dst: c,
        seq_delta: 1,
        ack_delta: 1,
        tsval_delta: 0,
        tsecr_delta: 0,
        win_shift: 0,
    };
    let orig = frame(c, vip, 1, 2, 0x10, 10, &[], b"");
    let mut f = orig.clone();
    f[20] = 60; // next header: Destination Options
    let before = f.clone();
    assert_eq!(translate6(&mut f, 14, &t), Err(Error::Unsupported));
    assert_eq!(f, before);
    let mut f = orig.clone();
    f[54 + 12] = 0xf0; // data offset 60 in a 20-byte segment
    let before = f.clone();
    assert!(translate6(&mut f, 14, &t).is_err());
    assert_eq!(f, before);
    let mut f = orig.clone();
    f.truncate(60);
    let before = f.clone();
    assert!(translate6(&mut f, 14, &t).is_err());
    assert_eq!(f, before);
}

fn arb_addr() -> impl Strategy<Value = SocketAddrV6> {
    (any::<u128>(), any::<u16>()).prop_map(|(a, p)| SocketAddrV6::new(Ipv6Addr::from(a), p, 0, 0))
}

fn arb_opts() -> impl Strategy<Value = Vec<u8>> {
    let one = prop_oneof![
        Just(vec![1u8]),
        any::<(u32, u32)>().prop_map(|(a, b)| {
            let mut v = vec![8, 10];
            v.extend_from_slice(&a.to_be_bytes());
            v.extend_from_slice(&b.to_be_bytes());
            v
        }),
        proptest::collection::vec(any::<u32>(), 2..=6).prop_map(|e| {
            let n = e.len() / 2 * 2;
            let mut v = vec![5, 2 + 4 * n as u8];
            for x in &e[..n] {
                v.extend_from_slice(&x.to_be_bytes());
            }
            v
        }),
    ];
    proptest::collection::vec(one, 0..4).prop_map(|parts| {
        let mut v: Vec<u8> = Vec::new();
        for p in parts {
            if v.len() + p.len() <= 40 {
                v.extend(p);
            }
        }
        while v.len() % 4 != 0 {
            v.push(1);
        }
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn translation_keeps_the_checksum_valid_and_inverts_exactly(
        s in arb_addr(), d in arb_addr(), ns in arb_addr(), nd in arb_addr(),
        seq in any::<u32>(), ack in any::<u32>(), win in any::<u16>(),
        deltas in any::<(u32, u32, u32, u32)>(),
        opts in arb_opts(), payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let orig = frame(s, d, seq, ack, 0x10, win, &opts, &payload);
        let t = Translation6 {
            src: ns, dst: nd,
            seq_delta: deltas.0, ack_delta: deltas.1, tsval_delta: deltas.2, tsecr_delta: deltas.3,
            win_shift: 0,
        };
        let mut f = orig.clone();
        translate6(&mut f, 14, &t).unwrap();
        prop_assert!(valid(&f));
        let got = check(&f).1.payload().to_vec();
        prop_assert_eq!(got, payload);
        let tsecr_zero = opts.windows(2).any(|w| w == [8, 10]);
        if !tsecr_zero || t.tsecr_delta == 0 {
            translate6(&mut f, 14, &t.inverse(s, d)).unwrap();
            prop_assert_eq!(f, orig);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..160), l3 in 0usize..20) {
        let t = Translation6 {
            src: sa("2001:db8::1", 1), dst: sa("2001:db8::2", 2),
            seq_delta: 7, ack_delta: 9, tsval_delta: 0, tsecr_delta: 0, win_shift: 1,
        };
        let before = bytes.clone();
        if translate6(&mut bytes, l3, &t).is_err() {
            prop_assert_eq!(bytes, before);
        }
    }
}
