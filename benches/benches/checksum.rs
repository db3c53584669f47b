//! RFC 1071 checksum throughput and RFC 1624 incremental update cost.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use qsplice_wire::checksum;
use qsplice_wire::Ipv4Addr;

/// The textbook implementation: one big-endian 16-bit word at a time into a
/// 32-bit accumulator, then fold and complement.
fn naive_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut i = 0;
    while i + 1 < data.len() {
        sum = sum.wrapping_add(u32::from(data[i]) << 8 | u32::from(data[i + 1]));
        i += 2;
    }
    if i < data.len() {
        sum = sum.wrapping_add(u32::from(data[i]) << 8);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn data(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect()
}

fn bench_full(c: &mut Criterion) {
    let mut g = c.benchmark_group("checksum");
    for size in [64usize, 1500, 9000] {
        let buf = data(size);
        assert_eq!(checksum::checksum(&buf), naive_checksum(&buf));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("rfc1071", size), &buf, |b, buf| {
            b.iter(|| checksum::checksum(black_box(buf)))
        });
        g.bench_with_input(BenchmarkId::new("naive", size), &buf, |b, buf| {
            b.iter(|| naive_checksum(black_box(buf)))
        });
    }
    g.finish();
}

fn bench_update(c: &mut Criterion) {
    let mut g = c.benchmark_group("checksum_update");
    g.throughput(Throughput::Elements(1));
    g.bench_function("update_u16", |b| {
        b.iter(|| checksum::update_u16(black_box(0xdd2f), black_box(0x5555), black_box(0x3285)))
    });
    g.bench_function("update_u32", |b| {
        b.iter(|| {
            checksum::update_u32(
                black_box(0x1234),
                black_box(0xdead_beef),
                black_box(0x0bad_f00d),
            )
        })
    });
    let (old, new) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(192, 168, 77, 3));
    g.bench_function("update_addr", |b| {
        b.iter(|| checksum::update_addr(black_box(0x1234), black_box(old), black_box(new)))
    });
    g.finish();
}

criterion_group!(benches, bench_full, bench_update);
criterion_main!(benches);
