//! Splice translation on byte-level TCP/IPv4 frames.

use std::net::{Ipv4Addr, SocketAddrV4};

use proptest::prelude::*;
use qsplice_splice::translate::{endpoints, scale_window};
use qsplice_splice::{translate, SpliceParams, Translation};
use qsplice_wire::{Error, Ipv4Packet, TcpFlags, TcpPacket};

fn sa(a: [u8; 4], p: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::from(a), p)
}

/// Ethernet + IPv4 + TCP with the given options (padded to 4) and payload,
/// correct checksums.
#[allow(clippy::too_many_arguments)]
fn frame(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: u16,
    win: u16,
    opts: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let mut o = opts.to_vec();
    while o.len() % 4 != 0 {
        o.push(0);
    }
    let thl = 20 + o.len();
    let tl = 20 + thl + payload.len();
    let mut f = vec![0u8; 14 + tl];
    f[12..14].copy_from_slice(&[8, 0]);
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
        ip.set_version(4);
        ip.set_header_len(20);
        ip.set_total_len(tl as u16);
        ip.set_ttl(64);
        ip.set_protocol(6);
        ip.set_src_addr(*src.ip());
        ip.set_dst_addr(*dst.ip());
        ip.fill_checksum();
    }
    {
        let seg = &mut f[34..];
        let mut t = TcpPacket::new_unchecked(&mut *seg);
        t.set_src_port(src.port());
        t.set_dst_port(dst.port());
        t.set_seq_number(seq);
        t.set_ack_number(ack);
        t.set_header_len(thl as u8);
        t.set_flags(TcpFlags::from_bits_truncate(flags));
        t.set_window_len(win);
        t.options_mut().copy_from_slice(&o);
        t.payload_mut().copy_from_slice(payload);
        t.fill_checksum(*src.ip(), *dst.ip());
    }
    f
}

fn ts(tsval: u32, tsecr: u32) -> Vec<u8> {
    let mut v = vec![1, 1, 8, 10];
    v.extend_from_slice(&tsval.to_be_bytes());
    v.extend_from_slice(&tsecr.to_be_bytes());
    v
}

fn checksums_valid(f: &[u8]) -> bool {
    let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
    let (s, d) = (ip.src_addr(), ip.dst_addr());
    ip.verify_checksum()
        && TcpPacket::new_checked(ip.payload())
            .unwrap()
            .verify_checksum(s, d)
}

fn tcp(f: &[u8]) -> TcpPacket<&[u8]> {
    TcpPacket::new_unchecked(&f[34..])
}

const CLIENT: [u8; 4] = [10, 10, 1, 2];
const VIP: [u8; 4] = [10, 10, 1, 1];
const LOCAL: [u8; 4] = [10, 10, 2, 1];
const SERVER: [u8; 4] = [10, 10, 2, 11];

fn params() -> SpliceParams {
    SpliceParams {
        client: sa(CLIENT, 40000),
        vip: sa(VIP, 80),
        local: sa(LOCAL, 50001),
        server: sa(SERVER, 80),
        c2s_seq_delta: 0, // backend SYN reused the client's ISN
        s2c_seq_delta: 0x9000_0000,
        c2s_ts_delta: 1000,
        s2c_ts_delta: 0xffff_ff00,
        client_ws: 7,
        vip_ws: 7,
        local_ws: 7,
        server_ws: 9,
    }
}

#[test]
fn client_segment_to_server() {
    let p = params();
    let mut sack = vec![1, 1, 5, 18];
    for v in [0x1000u32, 0x2000, 0x3000, 0x4000] {
        sack.extend_from_slice(&v.to_be_bytes());
    }
    let mut opts = ts(5000, 777);
    opts.extend_from_slice(&sack);
    let mut f = frame(
        p.client,
        p.vip,
        0xffff_fff0,
        0x9000_1000,
        0x18,
        1000,
        &opts,
        b"GET / HTTP/1.1\r\n\r\n",
    );
    let before = f.clone();
    let r = translate(&mut f, 14, &p.c2s()).unwrap();
    assert!(
        checksums_valid(&f),
        "incremental checksums verify after translation"
    );
    let ip = Ipv4Packet::new_unchecked(&f[14..]);
    assert_eq!(
        (ip.src_addr(), ip.dst_addr()),
        (Ipv4Addr::from(LOCAL), Ipv4Addr::from(SERVER))
    );
    let t = tcp(&f);
    assert_eq!((t.src_port(), t.dst_port()), (50001, 80));
    assert_eq!(t.seq_number(), 0xffff_fff0, "ISN reuse: no seq translation");
    assert_eq!(
        t.ack_number(),
        0x1000,
        "ack moved into the server's space (wraps)"
    );
    assert_eq!(t.window_len(), 1000, "same scale on both sides");
    let o = t.options();
    assert_eq!(&o[4..8], &6000u32.to_be_bytes(), "TSval + c2s delta");
    assert_eq!(
        &o[8..12],
        &(777u32.wrapping_add(0x100)).to_be_bytes(),
        "TSecr back into the server's clock"
    );
    assert_eq!(
        &o[16..20],
        &(0x1000u32.wrapping_add(0x7000_0000)).to_be_bytes(),
        "SACK edges like ack"
    );
    assert_eq!(
        &f[f.len() - 18..],
        &before[before.len() - 18..],
        "payload untouched"
    );
    assert_eq!(r.payload_len, 18);
    assert!(r.flags.contains(TcpFlags::PSH));
}

#[test]
fn server_segment_to_client_scales_window_down() {
    let p = params();
    let mut f = frame(
        p.server,
        p.local,
        0x100,
        0xffff_fff0u32.wrapping_add(18),
        0x10,
        1001,
        &ts(9, 6000),
        b"",
    );
    translate(&mut f, 14, &p.s2c()).unwrap();
    assert!(checksums_valid(&f));
    let t = tcp(&f);
    assert_eq!(t.seq_number(), 0x9000_0100);
    assert_eq!(
        t.ack_number(),
        0xffff_fff0u32.wrapping_add(18),
        "client sees its own sequence space"
    );
    assert_eq!(t.window_len(), 4004, "server ws 9 vs vip ws 7: 1001 << 2");
    assert_eq!(
        &t.options()[4..8],
        &9u32.wrapping_add(0xffff_ff00).to_be_bytes()
    );
    assert_eq!(
        &t.options()[8..12],
        &5000u32.to_be_bytes(),
        "TSecr back in the client's clock"
    );
}

#[test]
fn window_scaling_rounds_down_and_clamps() {
    assert_eq!(scale_window(1001, -2), 250);
    assert_eq!(scale_window(40000, 2), 0xffff);
    assert_eq!(scale_window(7, 0), 7);
    assert_eq!(scale_window(7, -20), 0);
}

#[test]
fn misaligned_timestamp_option() {
    // WS (3 bytes) then TS: TSval lands at an odd offset in the header.
    let mut opts = vec![3, 3, 7, 8, 10];
    opts.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    opts.extend_from_slice(&0x0a0b_0c0du32.to_be_bytes());
    let p = params();
    let mut f = frame(p.client, p.vip, 1, 2, 0x10, 5, &opts, b"x");
    translate(&mut f, 14, &p.c2s()).unwrap();
    assert!(
        checksums_valid(&f),
        "odd-offset option update keeps the checksum right"
    );
    assert_eq!(
        &tcp(&f).options()[5..9],
        &(0x0102_0304u32 + 1000).to_be_bytes()
    );
}

#[test]
fn zero_tsecr_stays_zero() {
    let p = params();
    let mut f = frame(p.client, p.vip, 1, 0, 0x02, 5, &ts(1, 0), b"");
    translate(&mut f, 14, &p.c2s()).unwrap();
    assert_eq!(&tcp(&f).options()[8..12], &[0, 0, 0, 0]);
    assert!(checksums_valid(&f));
}

#[test]
fn a_byte_acked_by_the_server_is_acked_to_the_client() {
    let mut p = params();
    p.c2s_seq_delta = 0x1234_5678; // no ISN reuse
    let (x, len) = (0xffff_ff00u32, 300u32);
    let mut c = frame(p.client, p.vip, x, 7, 0x18, 10, &[], &[0u8; 300]);
    translate(&mut c, 14, &p.c2s()).unwrap();
    let server_seq = tcp(&c).seq_number();
    let mut s = frame(
        p.server,
        p.local,
        99,
        server_seq.wrapping_add(len),
        0x10,
        10,
        &[],
        b"",
    );
    translate(&mut s, 14, &p.s2c()).unwrap();
    assert_eq!(tcp(&s).ack_number(), x.wrapping_add(len));
}

#[test]
fn malformed_segments_are_refused_unchanged() {
    let p = params();
    let good = frame(p.client, p.vip, 1, 2, 0x10, 5, &ts(1, 2), b"abc");
    let mut cases: Vec<(Vec<u8>, Error)> = Vec::new();
    let mut bad_opt = good.clone();
    bad_opt[34 + 23] = 40; // TS length runs past the options
    cases.push((bad_opt, Error::BadOption));
    let mut bad_ts_len = good.clone();
    bad_ts_len[34 + 23] = 6;
    cases.push((bad_ts_len, Error::BadOption));
    let mut zero_len = good.clone();
    zero_len[34 + 23] = 0;
    cases.push((zero_len, Error::BadOption));
    let mut udp = good.clone();
    udp[14 + 9] = 17;
    cases.push((udp, Error::Unsupported));
    let mut frag = good.clone();
    frag[14 + 6] = 0x20;
    cases.push((frag, Error::Fragmented));
    let mut thl = good.clone();
    thl[34 + 12] = 0xf0; // 60-byte TCP header in a shorter segment
    cases.push((thl, Error::BadHeaderLen));
    cases.push((good[..30].to_vec(), Error::Truncated));
    for (mut f, want) in cases {
        let before = f.clone();
        assert_eq!(translate(&mut f, 14, &p.c2s()).unwrap_err(), want);
        assert_eq!(f, before, "frame unchanged after {want:?}");
    }
}

#[test]
fn endpoints_of_a_segment() {
    let p = params();
    let f = frame(p.client, p.vip, 1, 2, 0x10, 5, &[], b"");
    assert_eq!(endpoints(&f, 14).unwrap(), (p.client, p.vip));
}

fn arb_opts() -> impl Strategy<Value = Vec<u8>> {
    // A random sequence of well-formed options, up to 40 bytes.
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
        any::<u16>().prop_map(|m| vec![2, 4, (m >> 8) as u8, m as u8]),
        any::<u8>().prop_map(|s| vec![3, 3, s]),
    ];
    proptest::collection::vec(one, 0..5).prop_map(|parts| {
        let mut v = Vec::new();
        for p in parts {
            if v.len() + p.len() <= 40 {
                v.extend(p);
            }
        }
        v
    })
}

fn arb_translation() -> impl Strategy<Value = Translation> {
    (
        any::<([u8; 4], u16, [u8; 4], u16)>(),
        any::<(u32, u32, u32, u32)>(),
    )
        .prop_map(|((a, ap, b, bp), (s, k, v, e))| Translation {
            src: sa(a, ap),
            dst: sa(b, bp),
            seq_delta: s,
            ack_delta: k,
            tsval_delta: v,
            tsecr_delta: e,
            win_shift: 0,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn translation_keeps_checksums_valid_and_inverts_exactly(
        src in any::<([u8; 4], u16)>(), dst in any::<([u8; 4], u16)>(),
        seq in any::<u32>(), ack in any::<u32>(), flags in any::<u8>(), win in any::<u16>(),
        opts in arb_opts(), payload in proptest::collection::vec(any::<u8>(), 0..64),
        t in arb_translation(),
    ) {
        let (s, d) = (sa(src.0, src.1), sa(dst.0, dst.1));
        let orig = frame(s, d, seq, ack, u16::from(flags), win, &opts, &payload);
        let mut f = orig.clone();
        let r = translate(&mut f, 14, &t).unwrap();
        prop_assert!(checksums_valid(&f));
        prop_assert_eq!(r.seq, seq.wrapping_add(t.seq_delta));
        let got_payload = tcp(&f).payload().to_vec();
        prop_assert_eq!(got_payload, payload);
        // TSecr 0 is never translated, so only invert when that cannot bite.
        let tsecr_zero_after = tcp(&f).options().windows(2).any(|w| w == [8, 10]);
        if !tsecr_zero_after || t.tsecr_delta == 0 {
            translate(&mut f, 14, &t.inverse(s, d)).unwrap();
            prop_assert_eq!(f, orig);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..120), t in arb_translation(), l3 in 0usize..20) {
        let before = bytes.clone();
        if translate(&mut bytes, l3, &t).is_err() {
            prop_assert_eq!(bytes, before);
        }
    }
}
