//! Per-segment cost of the spliced fast path: `qsplice_splice::translate`
//! (NAT + seq/ack + timestamp option + SACK blocks + window scaling, with
//! incremental checksums) on a data segment and on a pure ACK with SACK,
//! compared in the same group with the plain address/port/seq/ack rewrite.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use qsplice_splice::{translate, Translation};
use qsplice_wire::rewrite::rewrite_dst_v4_tcp;
use qsplice_wire::{Ipv4Packet, TcpFlags, TcpPacket};

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

criterion_group!(benches, bench);
criterion_main!(benches);
