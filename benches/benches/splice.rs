//! Per-segment cost of the spliced fast path: `qsplice_splice::translate`
//! (and `translate6`, the same segments over IPv6; `ipv6_edge`, an IPv6
//! leg carried through the IPv4 path: translated in, spliced, out)
//! (NAT + seq/ack + timestamp option + SACK blocks + window scaling, with
//! incremental checksums) on a data segment and on a pure ACK with SACK,
//! compared in the same group with the plain address/port/seq/ack rewrite;
//! and the flow table every spliced segment is looked up in (`flow_table`:
//! lookup hit and miss, remove + insert, in cache and at the default size).

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use qsplice_splice::family::{tcp4_to_6, tcp6_to_4};
use qsplice_splice::{translate, translate6, FlowTable, SpliceParams, Translation, Translation6};
use qsplice_wire::rewrite::rewrite_dst_v4_tcp;
use qsplice_wire::{Ipv4Packet, Ipv6Packet, TcpFlags, TcpPacket};

fn frame(opts: &[u8], payload_len: usize) -> Vec<u8> {
    let thl = 20 + opts.len();
    let tl = 20 + thl + payload_len;
    let mut f = vec![0x5au8; 14 + tl];
    f[12..14].copy_from_slice(&[8, 0]);
    f[14..54].fill(0); // headers start zeroed (no fragment bits); payload keeps the filler
    let (s, d) = (Ipv4Addr::new(10, 10, 1, 2), Ipv4Addr::new(10, 10, 1, 1));
    let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.set_version(4);
    ip.set_header_len(20);
    ip.set_total_len(tl as u16);
    ip.set_ttl(64);
    ip.set_protocol(6);
    ip.set_src_addr(s);
    ip.set_dst_addr(d);
    ip.fill_checksum();
    let mut t = TcpPacket::new_unchecked(ip.payload_mut());
    t.set_src_port(40000);
    t.set_dst_port(80);
    t.set_seq_number(1);
    t.set_ack_number(2);
    t.set_header_len(thl as u8);
    t.set_flags(TcpFlags::ACK | TcpFlags::PSH);
    t.set_window_len(1000);
    t.options_mut().copy_from_slice(opts);
    t.fill_checksum(s, d);
    f
}

/// The IPv6 counterpart of [`frame`]: Ethernet + IPv6 + TCP.
fn frame6(opts: &[u8], payload_len: usize) -> Vec<u8> {
    let thl = 20 + opts.len();
    let mut f = vec![0x5au8; 14 + 40 + thl + payload_len];
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    f[14..54 + thl].fill(0);
    let (s, d): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8:1::2".parse().unwrap(),
        "2001:db8:1::1".parse().unwrap(),
    );
    let mut ip = Ipv6Packet::new_unchecked(&mut f[14..]);
    ip.set_version_tc_flow(0, 0);
    ip.set_payload_len((thl + payload_len) as u16);
    ip.set_next_header(6);
    ip.set_hop_limit(64);
    ip.set_src_addr(s);
    ip.set_dst_addr(d);
    let mut t = TcpPacket::new_unchecked(ip.payload_mut());
    t.set_src_port(40000);
    t.set_dst_port(80);
    t.set_seq_number(1);
    t.set_ack_number(2);
    t.set_header_len(thl as u8);
    t.set_flags(TcpFlags::ACK | TcpFlags::PSH);
    t.set_window_len(1000);
    t.options_mut().copy_from_slice(opts);
    t.fill_checksum_v6(s, d);
    f
}

fn bench(c: &mut Criterion) {
    let mut ts = vec![1u8, 1, 8, 10];
    ts.extend_from_slice(&[0, 0, 0x13, 0x88, 0, 0, 3, 9]);
    let mut ts_sack = ts.clone();
    ts_sack.extend_from_slice(&[1, 1, 5, 18]);
    for v in [100u32, 200, 300, 400] {
        ts_sack.extend_from_slice(&v.to_be_bytes());
    }
    let t = Translation {
        src: SocketAddrV4::new(Ipv4Addr::new(10, 10, 2, 1), 50001),
        dst: SocketAddrV4::new(Ipv4Addr::new(10, 10, 2, 11), 80),
        seq_delta: 0,
        ack_delta: 0x7000_0000,
        tsval_delta: 1000,
        tsecr_delta: 0x100,
        win_shift: 0,
    };
    let back = t.inverse(
        SocketAddrV4::new(Ipv4Addr::new(10, 10, 1, 2), 40000),
        SocketAddrV4::new(Ipv4Addr::new(10, 10, 1, 1), 80),
    );
    let mut g = c.benchmark_group("splice");
    g.throughput(Throughput::Elements(1));
    for (name, mut f) in [
        ("data_1448B_ts", frame(&ts, 1448)),
        ("ack_ts_sack", frame(&ts_sack, 0)),
    ] {
        // Alternate forward and inverse so the frame stays realistic.
        g.bench_function(format!("translate/{name}"), |b| {
            b.iter(|| {
                translate(black_box(&mut f), 14, &t).unwrap();
                translate(black_box(&mut f), 14, &back).unwrap()
            })
        });
    }
    // The same segments over IPv6 (no IP checksum; the pseudo-header's
    // 128-bit addresses updated at once).
    let t6 = Translation6 {
        src: SocketAddrV6::new("2001:db8:2::1".parse().unwrap(), 50001, 0, 0),
        dst: SocketAddrV6::new("2001:db8:2::11".parse().unwrap(), 80, 0, 0),
        seq_delta: 0,
        ack_delta: 0x7000_0000,
        tsval_delta: 1000,
        tsecr_delta: 0x100,
        win_shift: 0,
    };
    let back6 = t6.inverse(
        SocketAddrV6::new("2001:db8:1::2".parse().unwrap(), 40000, 0, 0),
        SocketAddrV6::new("2001:db8:1::1".parse().unwrap(), 80, 0, 0),
    );
    for (name, mut f) in [
        ("data_1448B_ts", frame6(&ts, 1448)),
        ("ack_ts_sack", frame6(&ts_sack, 0)),
    ] {
        g.bench_function(format!("translate6/{name}"), |b| {
            b.iter(|| {
                translate6(black_box(&mut f), 14, &t6).unwrap();
                translate6(black_box(&mut f), 14, &back6).unwrap()
            })
        });
    }
    // An IPv6 leg on the IPv4 lcore path (`qsplice_splice::family`): the
    // segment translated to IPv4 with stand-ins on the way in, spliced by
    // `translate`, and translated back to IPv6 on the way out — per segment
    // what an IPv6 flow pays over `translate/`.
    let (a4, b4) = (Ipv4Addr::new(248, 0, 0, 7), Ipv4Addr::new(240, 0, 0, 1));
    let (c6, v6): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8:1::2".parse().unwrap(),
        "2001:db8:1::1".parse().unwrap(),
    );
    let (l6, s6): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8:2::1".parse().unwrap(),
        "2001:db8:2::11".parse().unwrap(),
    );
    let t_in = Translation {
        src: SocketAddrV4::new(Ipv4Addr::new(10, 10, 2, 1), 50001),
        dst: SocketAddrV4::new(Ipv4Addr::new(240, 0, 0, 2), 80),
        ..t
    };
    let back_in = t_in.inverse(SocketAddrV4::new(a4, 40000), SocketAddrV4::new(b4, 80));
    for (name, mut f) in [
        ("data_1448B_ts", frame6(&ts, 1448)),
        ("ack_ts_sack", frame6(&ts_sack, 0)),
    ] {
        g.bench_function(format!("ipv6_edge/{name}"), |b| {
            b.iter(|| {
                // Client → backend: in, splice, out.
                let s = tcp6_to_4(black_box(&mut f), (0, 14, 54), a4, b4).unwrap();
                translate(&mut f[s..], 14, &t_in).unwrap();
                tcp4_to_6(&mut f, (s, s + 14, 54), l6, s6, 0x12345).unwrap();
                // Backend → client.
                let s = tcp6_to_4(
                    black_box(&mut f),
                    (0, 14, 54),
                    Ipv4Addr::new(240, 0, 0, 2),
                    Ipv4Addr::new(10, 10, 2, 1),
                )
                .unwrap();
                translate(&mut f[s..], 14, &back_in).unwrap();
                tcp4_to_6(&mut f, (s, s + 14, 54), v6, c6, 0x54321).unwrap()
            })
        });
    }
    let mut f = frame(&ts, 1448);
    g.bench_function("baseline_rewrite_x2/data_1448B_ts", |b| {
        b.iter(|| {
            rewrite_dst_v4_tcp(
                black_box(&mut f),
                14,
                Ipv4Addr::new(10, 10, 2, 11),
                80,
                0,
                0x7000_0000,
            )
            .unwrap();
            rewrite_dst_v4_tcp(
                black_box(&mut f),
                14,
                Ipv4Addr::new(10, 10, 1, 1),
                80,
                0,
                0x9000_0000,
            )
            .unwrap()
        })
    });
    g.finish();
}

/// Flow-table lookups: a small table in cache (1 024 flows, half in use:
/// the hash and compare alone), then the default size (65 536 flows per
/// lcore) half full (a load factor of 1/4 over the index) and full (1/2),
/// where most lookups miss the CPU caches. Each: a hit (client→server key
/// of a present flow, cycling over all of them so the index is touched as
/// traffic would), a miss (an absent client key), and removing a flow and
/// inserting it again.
fn flow_table(c: &mut Criterion) {
    const MAX: usize = 65_536;
    let p = |i: usize| {
        let client = SocketAddrV4::new(
            Ipv4Addr::from(0x0a00_0000 | (i as u32 >> 14)),
            1024 + (i & 0x3fff) as u16,
        );
        let local = SocketAddrV4::new(
            Ipv4Addr::new(10, 10, 2, 1 + (i >> 15) as u8),
            1024 + (i & 0x7fff) as u16,
        );
        SpliceParams {
            client,
            vip: SocketAddrV4::new(Ipv4Addr::new(10, 10, 1, 1), 443),
            local,
            server: SocketAddrV4::new(Ipv4Addr::new(10, 10, 2, 11), 80),
            c2s_seq_delta: 0,
            s2c_seq_delta: 0,
            c2s_ts_delta: 0,
            s2c_ts_delta: 0,
            client_ws: 7,
            vip_ws: 7,
            local_ws: 7,
            server_ws: 7,
        }
    };
    let mut g = c.benchmark_group("flow_table");
    g.throughput(Throughput::Elements(1));
    for (name, max, n) in [
        ("hot", 1024, 512),
        ("half", MAX, MAX / 2),
        ("full", MAX, MAX),
    ] {
        let mut t = FlowTable::new(max);
        // A full table may refuse the odd flow (a probe window full).
        let present: Vec<usize> = (0..n).filter(|&i| t.insert(p(i), 0).is_ok()).collect();
        let m = present.len();
        // Visit the flows in a scrambled order (not the insertion order).
        let order: Vec<usize> = (0..m).map(|i| present[i * 40_503 % m]).collect();
        let hits: Vec<_> = order.iter().map(|&i| (p(i).client, p(i).vip)).collect();
        let misses: Vec<_> = order
            .iter()
            .map(|&i| (p(i + MAX).client, p(i).vip))
            .collect();
        let mut k = 0;
        g.bench_function(format!("lookup_hit/{name}"), |b| {
            b.iter(|| {
                k = if k + 1 == m { 0 } else { k + 1 };
                let (s, d) = hits[k];
                t.lookup(black_box(s), black_box(d)).unwrap()
            })
        });
        g.bench_function(format!("lookup_miss/{name}"), |b| {
            b.iter(|| {
                k = if k + 1 == m { 0 } else { k + 1 };
                let (s, d) = misses[k];
                t.lookup(black_box(s), black_box(d))
            })
        });
        // Remove a present flow and insert it again (both keys each way);
        // one refused is inserted again on its next turn.
        let mut ids: Vec<_> = (0..n)
            .map(|i| t.lookup(p(i).client, p(i).vip).map(|f| f.0))
            .collect();
        g.bench_function(format!("remove_insert/{name}"), |b| {
            b.iter(|| {
                k = if k + 1 == m { 0 } else { k + 1 };
                let i = order[k];
                if let Some(id) = ids[i] {
                    t.remove(black_box(id)).unwrap();
                }
                ids[i] = t.insert(black_box(p(i)), 0).ok();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, flow_table);
criterion_main!(benches);
