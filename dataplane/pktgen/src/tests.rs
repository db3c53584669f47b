use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use qsplice_netdev::mem::{ManualClock, MemQueue, VecFrame};
use qsplice_netdev::{Burst, Frame};
use qsplice_wire::{ethernet_l3, Ipv4Addr, Ipv4Packet, TcpPacket, UdpPacket};

use crate::*;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn cfg(streams: Vec<StreamSpec>, sizes: SizeDist, rate: Rate, count: u64) -> GenConfig {
    GenConfig {
        streams,
        sizes,
        rate,
        count,
        duration_ms: 0,
        burst: 32,
        drain_ms: 10,
        seed: 7,
        receive: true,
    }
}

fn build(c: &GenConfig, n: usize) -> Vec<Vec<u8>> {
    let clock = ManualClock::default();
    let mut g = Generator::new(c, 1_000_000_000, 0);
    let mut q = MemQueue::new([2, 0, 0, 0, 0, 1]);
    let mut out: Vec<Vec<u8>> = Vec::new();
    while out.len() < n {
        clock.advance_ms(1);
        let mut b: Burst<VecFrame> = Burst::new();
        let k = g.fill(&mut q, &mut b, 64, qsplice_netdev::Clock::now(&clock));
        assert!(k > 0 || g.finished(0));
        out.extend(b.into_iter().map(|f| f.into_vec()));
        if k == 0 {
            break;
        }
    }
    out.truncate(n);
    out
}

/// Checks IPv4 + L4 checksums with a full recomputation; returns (src, dst, sport, dport).
fn check(frame: &[u8]) -> (Ipv4Addr, Ipv4Addr, u16, u16) {
    let (_, off, _) = ethernet_l3(frame).unwrap();
    let p = Ipv4Packet::new_checked(&frame[off..]).unwrap();
    assert!(p.verify_checksum(), "ip csum");
    assert_eq!(usize::from(p.total_len()), frame.len() - off);
    let (s, d) = (p.src_addr(), p.dst_addr());
    if p.protocol() == 17 {
        let u = UdpPacket::new_checked(p.payload()).unwrap();
        assert_ne!(u.checksum(), 0);
        assert!(u.verify_checksum(s, d), "udp csum");
        (s, d, u.src_port(), u.dst_port())
    } else {
        let t = TcpPacket::new_checked(p.payload()).unwrap();
        assert!(t.verify_checksum(s, d), "tcp csum");
        assert_eq!(t.flags(), qsplice_wire::TcpFlags::SYN);
        (s, d, t.src_port(), t.dst_port())
    }
}

#[test]
fn udp_template_ranges_and_checksums() {
    let mut s = StreamSpec::udp(0, ip("10.0.0.1"), ip("10.1.0.1"), 1000, 2000);
    s.src_ip.1 = ip("10.0.0.4");
    s.dst_port.1 = 2002;
    let c = cfg(vec![s], SizeDist::Range(64, 1518), Rate::Max, 0);
    let frames = build(&c, 200);
    for (i, f) in frames.iter().enumerate() {
        let (src, dst, sp, dp) = check(f);
        assert_eq!(
            src,
            Ipv4Addr::from(u32::from(ip("10.0.0.1")) + (i as u32 % 4))
        );
        assert_eq!(dst, ip("10.1.0.1"));
        assert_eq!(sp, 1000);
        assert_eq!(dp, 2000 + (i as u16 % 3));
        let h = payload::parse_frame(f).unwrap();
        assert_eq!((h.stream, h.seq), (0, i as u32));
        assert!(f.len() + 4 >= 64 && f.len() + 4 <= 1518);
    }
}

#[test]
fn tcp_syn_vlan_random_fields_checksums() {
    let mut s = StreamSpec::udp(0, ip("192.168.0.0"), ip("172.16.0.0"), 1, 1024);
    s.proto = Proto::TcpSyn;
    s.vlan = Some(100);
    s.mode = FieldMode::Random;
    s.src_ip.1 = ip("192.168.255.255");
    s.dst_ip.1 = ip("172.16.0.255");
    s.src_port.1 = 65535;
    s.dst_port.1 = 65535;
    let mut s2 = s.clone();
    s2.id = 1;
    s2.vlan = None;
    let c = cfg(vec![s, s2], SizeDist::imix_default(), Rate::Max, 0);
    let frames = build(&c, 500);
    let mut streams = [0; 2];
    for f in &frames {
        let (src, dst, sp, _) = check(f);
        assert!(u32::from(src) >> 16 == 0xc0a8 && u32::from(dst) >> 8 == 0xac1000);
        assert!(sp >= 1);
        let h = payload::parse_frame(f).unwrap();
        streams[h.stream as usize] += 1;
        let (_, _, vid) = ethernet_l3(f).unwrap();
        assert_eq!(vid.is_some(), h.stream == 0);
    }
    assert_eq!(streams, [250, 250]);
}

#[test]
fn tiny_sizes_are_clamped_to_the_stream_minimum() {
    let mut s = StreamSpec::udp(0, ip("10.0.0.1"), ip("10.0.0.2"), 1, 2);
    s.proto = Proto::TcpSyn;
    let c = cfg(vec![s], SizeDist::Fixed(64), Rate::Max, 0);
    let f = &build(&c, 1)[0];
    assert_eq!(f.len() + 4, stream::min_frame_size(false, Proto::TcpSyn));
    check(f);
    // UDP untagged fits exactly in 64 bytes.
    let c = cfg(
        vec![StreamSpec::udp(0, ip("10.0.0.1"), ip("10.0.0.2"), 1, 2)],
        SizeDist::Fixed(64),
        Rate::Max,
        0,
    );
    assert_eq!(build(&c, 1)[0].len(), 60);
}

#[test]
fn imix_proportions() {
    let mut sz = stream::Sizer::new(SizeDist::imix_default());
    let mut r = stream::rng(1);
    let mut n = std::collections::BTreeMap::new();
    for _ in 0..12_000 {
        *n.entry(sz.next(&mut r)).or_insert(0u32) += 1;
    }
    assert_eq!(n[&64], 7000);
    assert_eq!(n[&594], 4000);
    assert_eq!(n[&1518], 1000);
    // Random range: mean within 2% of the midpoint.
    let mut sz = stream::Sizer::new(SizeDist::Range(100, 300));
    let sum: u64 = (0..100_000).map(|_| u64::from(sz.next(&mut r))).sum();
    let mean = sum as f64 / 100_000.0;
    assert!((mean - 200.0).abs() < 4.0, "{mean}");
    // Custom weights, interleaved (no long runs of one size).
    let mut sz = stream::Sizer::new(SizeDist::Imix(vec![(100, 1), (200, 1)]));
    let seq: Vec<u16> = (0..6).map(|_| sz.next(&mut r)).collect();
    assert_eq!(seq, [100, 200, 100, 200, 100, 200]);
}

#[test]
fn pacing_pps_accuracy() {
    // 1 Mpps for 100 ms of ManualClock time, polled every 7 us.
    let mut p = Pacer::new(Rate::Pps(1_000_000), 1_000_000_000, 32, 64, 0);
    let mut sent = 0u64;
    let mut t = 0u64;
    let mut max_burst = 0;
    while t < 100_000_000 {
        t += 7_000;
        p.refill(t);
        let mut k = 0;
        while k < 64 && p.take(64) {
            k += 1;
        }
        max_burst = max_burst.max(k);
        sent += k;
    }
    assert!(
        (sent as i64 - (t / 1000) as i64).abs() <= 1,
        "{sent} in {t} ns"
    );
    assert!(max_burst <= 8, "{max_burst}");
    // A stalled loop catches up by at most one burst.
    p.refill(t + 1_000_000_000);
    let mut k = 0;
    while p.take(64) {
        k += 1;
    }
    assert_eq!(k, 32);
}

#[test]
fn pacing_bps_accuracy() {
    // 1 Gbit/s L1 with 1518 B frames = 1e9 / (1538 * 8) = 81274.4 pps.
    let mut p = Pacer::new(Rate::L1Bps(1_000_000_000), 1_000_000_000, 32, 1518, 0);
    let mut sent = 0u64;
    let mut t = 0;
    while t < 1_000_000_000 {
        t += 50_000;
        p.refill(t);
        while p.take(1518) {
            sent += 1;
        }
    }
    assert!((sent as i64 - 81_274).abs() <= 1, "{sent}");
}

#[test]
fn loop_count_stop_and_loopback_accounting() {
    // TX queue whose sent frames we feed back as received frames.
    let clock = ManualClock::default();
    let shared = Arc::new(GenShared::default());
    let mut c = cfg(
        vec![
            StreamSpec::udp(0, ip("10.0.0.1"), ip("10.0.0.2"), 1, 2),
            StreamSpec::udp(1, ip("10.0.0.1"), ip("10.0.0.3"), 1, 2),
        ],
        SizeDist::Fixed(128),
        Rate::Pps(100_000),
        1000,
    );
    c.burst = 16;
    let mut l = GenLoop::new(
        &c,
        MemQueue::new([2, 0, 0, 0, 0, 1]),
        None,
        clock.clone(),
        shared,
    );
    let mut guard = 0;
    while l.poll(true) {
        clock.advance_ns(20_000);
        let q = l.tx_queue();
        let sent: Vec<VecFrame> = q.tx.drain(..).collect();
        q.rx.extend(sent);
        guard += 1;
        assert!(guard < 100_000);
    }
    let q = l.tx_queue();
    let sent: Vec<VecFrame> = q.tx.drain(..).collect();
    q.rx.extend(sent);
    l.poll(false);
    let f = l.finish(false);
    assert_eq!(f.tx_pkts, 1000);
    assert_eq!(f.rx.pkts, 1000);
    assert_eq!(f.streams[0].0 + f.streams[1].0, 1000);
    assert_eq!(f.streams[0].1.unique, 500);
    assert_eq!(f.streams[1].1.gap_lost, 0);
    assert_eq!(f.latency.len(), 1000);
    assert!(f.latency.max() <= 21_000);
    // 1000 packets at 100 kpps: 10 ms (the first burst is immediate).
    let secs = f.tx_cycles as f64 / 1e9;
    assert!((secs - 0.01).abs() < 0.0005, "{secs}");
}

#[test]
fn loss_reorder_duplicate_from_byte_fixtures() {
    let c = cfg(
        vec![StreamSpec::udp(0, ip("10.0.0.1"), ip("10.0.0.2"), 1, 2)],
        SizeDist::Fixed(64),
        Rate::Max,
        0,
    );
    let frames = build(&c, 10);
    let mut rx = rx::RxSide::new(1, 1_000_000_000);
    // 0 1 2 [3 lost] 5 4 6 6 7 [8 lost] 9 + a garbage frame and an ARP-ish frame.
    for i in [0, 1, 2, 5, 4, 6, 6, 7, 9] {
        rx.frame(&frames[i], 1_000_000);
    }
    rx.frame(&[0u8; 10], 0);
    let mut arp = frames[0].clone();
    arp[12] = 0x08;
    arp[13] = 0x06;
    rx.frame(&arp, 0);
    let mut junk = frames[0].clone();
    let n = junk.len();
    junk[n - 18] ^= 0xff; // magic (60-byte frame: header is the last 18 bytes)
    rx.frame(&junk, 0);
    let t = rx.totals();
    assert_eq!(
        (t.received, t.unique, t.gap_lost, t.reordered, t.duplicated),
        (9, 8, 2, 1, 1)
    );
    assert_eq!(
        (rx.c.frames, rx.c.pkts, rx.c.not_ipv4, rx.c.no_magic),
        (12, 9, 2, 1)
    );
    assert_eq!(rx.latency.len(), 9);
}

#[test]
fn loop_with_separate_rx_queue_and_duration() {
    let clock = ManualClock::default();
    let shared = Arc::new(GenShared::default());
    let mut c = cfg(
        vec![StreamSpec::udp(0, ip("10.0.0.1"), ip("10.0.0.2"), 1, 2)],
        SizeDist::Fixed(64),
        Rate::Pps(1_000_000),
        0,
    );
    c.duration_ms = 2;
    c.drain_ms = 0;
    let rxq = MemQueue::new([2, 0, 0, 0, 0, 2]);
    let mut l = GenLoop::new(
        &c,
        MemQueue::new([2, 0, 0, 0, 0, 1]),
        Some(rxq),
        clock.clone(),
        shared.clone(),
    );
    let mut polls = 0;
    while l.poll(true) {
        clock.advance_ns(1_000);
        polls += 1;
        assert!(polls < 10_000);
    }
    let sent = l.tx_queue().tx.len() as i64;
    assert!((sent - 2000).abs() <= 1, "{sent}");
    let stop = AtomicBool::new(true);
    l.run(&stop);
    assert!(shared.result.lock().unwrap().is_some());
    let _ = VecFrame::from_bytes(&[]).len();
}

mod prop {
    use proptest::prelude::*;

    use super::check;
    use crate::payload::parse_payload;
    use crate::stream::{header_len, rng, Stream};
    use crate::*;
    use qsplice_netdev::mem::VecFrame;
    use qsplice_netdev::Frame;
    use qsplice_wire::{ethernet_l3, Ipv4Addr, Ipv4Packet};

    proptest! {
        /// Any stream shape, any ranges (wrapping ones included), any frame
        /// length and timestamp: every frame `emit` writes has correct IPv4
        /// and L4 checksums (recomputed in full), fields inside their
        /// ranges, zero padding, and a payload header that parses back to
        /// the stream id, sequence number and timestamp. The buffer starts
        /// dirty (as a recycled mbuf does).
        #[test]
        fn emit_is_always_a_valid_frame(
            vlan in proptest::option::of(0u16..4096),
            tcp in any::<bool>(),
            random in any::<bool>(),
            src in any::<u32>(), src_n in 0u32..1000,
            dst in any::<u32>(), dst_n in 0u32..3,
            sport in any::<u16>(), sport_n in any::<u16>(),
            dport in any::<u16>(), dport_n in 0u16..5,
            ttl in 1u8..=255,
            id in any::<u16>(),
            extra in proptest::collection::vec(0usize..1460, 1..6),
            tsc in any::<u64>(),
            start_seq in any::<u32>(),
        ) {
            let proto = if tcp { Proto::TcpSyn } else { Proto::Udp };
            let spec = StreamSpec {
                id,
                src_mac: [2, 0, 0, 0, 0, 1],
                dst_mac: [2, 0, 0, 0, 0, 2],
                vlan,
                src_ip: (Ipv4Addr::from(src), Ipv4Addr::from(src.wrapping_add(src_n))),
                dst_ip: (Ipv4Addr::from(dst), Ipv4Addr::from(dst.wrapping_add(dst_n))),
                src_port: (sport, sport.saturating_add(sport_n)),
                dst_port: (dport, dport.saturating_add(dport_n)),
                proto,
                ttl,
                mode: if random { FieldMode::Random } else { FieldMode::Inc },
            };
            let mut s = Stream::new(spec.clone());
            s.next_seq = start_seq;
            let hl = header_len(vlan.is_some(), proto);
            let mut r = rng(3);
            for (i, e) in extra.iter().enumerate() {
                let len = (hl + e).max(60);
                let mut buf = vec![0xa5u8; len];
                let t = tsc.wrapping_add(i as u64 * 1_000_003);
                let seq = s.emit(&mut buf, t, &mut r);
                prop_assert_eq!(seq, start_seq.wrapping_add(i as u32));
                let (sa, da, sp, dp) = check(&buf);
                let within = |v: u32, lo: u32, n: u32| v.wrapping_sub(lo) <= n;
                prop_assert!(within(u32::from(sa), src, src_n));
                prop_assert!(within(u32::from(da), dst, dst_n));
                prop_assert!(sp >= spec.src_port.0 && sp <= spec.src_port.1);
                prop_assert!(dp >= spec.dst_port.0 && dp <= spec.dst_port.1);
                prop_assert!(buf[hl..].iter().all(|&b| b == 0), "padding not zero");
                let (_, off, _) = ethernet_l3(&buf).unwrap();
                let p = Ipv4Packet::new_checked(&buf[off..]).unwrap();
                prop_assert_eq!(p.ttl(), ttl);
                let l4_hl = if tcp { 20 } else { 8 };
                let h = parse_payload(&p.payload()[l4_hl..]).unwrap();
                prop_assert_eq!((h.stream, h.seq, h.tsc), (id, seq, t));
            }
            // A burst built at once is the same bytes as packet by packet.
            let len = (hl + extra[0]).max(60);
            let mut one = Stream::new(spec.clone());
            let mut many = Stream::new(spec.clone());
            let (mut r1, mut r2) = (rng(5), rng(5));
            let mut frames: Vec<VecFrame> = (0..extra.len() + 2)
                .map(|_| VecFrame::from_bytes(&[0x5a; 16]))
                .collect();
            let n = many.emit_burst(&mut frames, len, tsc, &mut r2);
            prop_assert_eq!(n, frames.len());
            for f in &frames {
                let mut buf = vec![0u8; len];
                one.emit(&mut buf, tsc, &mut r1);
                prop_assert_eq!(f.data(), &buf[..]);
            }
            prop_assert_eq!((one.next_seq, one.sent), (many.next_seq, many.sent));
        }
    }
}
