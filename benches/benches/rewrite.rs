//! The TCP splice hot-path header rewrite: incremental (RFC 1624) checksum
//! fix-up versus full recomputation, per packet.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use qsplice_wire::rewrite::rewrite_dst_v4_tcp;
use qsplice_wire::{
    ethertype, ip_proto, EthernetFrame, Ipv4Addr, Ipv4Packet, Result, TcpFlags, TcpPacket,
};

const L3: usize = 14;

/// An Ethernet/IPv4/TCP (PSH|ACK) frame of `frame_len` bytes with correct
/// checksums.
fn frame(frame_len: usize) -> Vec<u8> {
    let mut f = vec![0u8; frame_len];
    for (i, b) in f.iter_mut().enumerate().skip(54) {
        *b = (i * 31) as u8;
    }
    let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
    eth.set_ethertype(ethertype::IPV4);
    let mut ip = Ipv4Packet::new_unchecked(eth.payload_mut());
    ip.set_version(4);
    ip.set_header_len(20);
    ip.set_total_len((frame_len - L3) as u16);
    ip.set_dont_frag(true);
    ip.set_ttl(64);
    ip.set_protocol(ip_proto::TCP);
    ip.set_src_addr(Ipv4Addr::new(198, 51, 100, 7));
    ip.set_dst_addr(Ipv4Addr::new(203, 0, 113, 1));
    ip.fill_checksum();
    let (s, d) = (ip.src_addr(), ip.dst_addr());
    let mut tcp = TcpPacket::new_unchecked(ip.payload_mut());
    tcp.set_src_port(51000);
    tcp.set_dst_port(443);
    tcp.set_seq_number(0x1234_5678);
    tcp.set_ack_number(0x9abc_def0);
    tcp.set_header_len(20);
    tcp.set_flags(TcpFlags::PSH | TcpFlags::ACK);
    tcp.set_window_len(512);
    tcp.fill_checksum(s, d);
    f
}

/// The same rewrite as `rewrite_dst_v4_tcp`, but recomputing both checksums
/// from scratch (a pass over the whole TCP segment).
fn rewrite_full(
    frame: &mut [u8],
    l3_off: usize,
    new_dst: Ipv4Addr,
    new_dport: u16,
    seq_delta: u32,
    ack_delta: u32,
) -> Result<()> {
    let l3 = frame
        .get_mut(l3_off..)
        .ok_or(qsplice_wire::Error::Truncated)?;
    let mut ip = Ipv4Packet::new_checked(l3)?;
    if ip.protocol() != ip_proto::TCP {
        return Err(qsplice_wire::Error::Unsupported);
    }
    if ip.is_fragment() {
        return Err(qsplice_wire::Error::Fragmented);
    }
    TcpPacket::new_checked(ip.payload())?;
    ip.set_dst_addr(new_dst);
    ip.fill_checksum();
    let src = ip.src_addr();
    let mut tcp = TcpPacket::new_unchecked(ip.payload_mut());
    tcp.set_dst_port(new_dport);
    tcp.set_seq_number(tcp.seq_number().wrapping_add(seq_delta));
    tcp.set_ack_number(tcp.ack_number().wrapping_add(ack_delta));
    tcp.fill_checksum(src, new_dst);
    Ok(())
}

fn bench_rewrite(c: &mut Criterion) {
    let mut g = c.benchmark_group("rewrite");
    g.throughput(Throughput::Elements(1));
    let backends = [Ipv4Addr::new(10, 0, 0, 11), Ipv4Addr::new(10, 0, 0, 12)];
    for size in [64usize, 1500] {
        // Sanity: both variants produce identical frames.
        let (mut a, mut b) = (frame(size), frame(size));
        rewrite_dst_v4_tcp(&mut a, L3, backends[0], 8443, 1000, 0u32.wrapping_sub(77)).unwrap();
        rewrite_full(&mut b, L3, backends[0], 8443, 1000, 0u32.wrapping_sub(77)).unwrap();
        assert_eq!(a, b);

        // Alternate between two backends so that every iteration really
        // changes the header (and the checksum work is not a no-op). The
        // counter is a full-width add: a byte-wide `i ^= 1` made the
        // compiler store one byte and reload eight, a store-forwarding
        // stall that cost more than the rewrite itself.
        let mut f = frame(size);
        let mut n = 0u64;
        g.bench_function(BenchmarkId::new("incremental", size), |bch| {
            bch.iter(|| {
                n = n.wrapping_add(1);
                let i = (n & 1) as usize;
                rewrite_dst_v4_tcp(black_box(&mut f), L3, backends[i], 8443 + i as u16, 1000, 7)
            })
        });
        let mut f = frame(size);
        let mut n = 0u64;
        g.bench_function(BenchmarkId::new("full_recompute", size), |bch| {
            bch.iter(|| {
                n = n.wrapping_add(1);
                let i = (n & 1) as usize;
                rewrite_full(black_box(&mut f), L3, backends[i], 8443 + i as u16, 1000, 7)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_rewrite);
criterion_main!(benches);
