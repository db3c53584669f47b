//! The packet generator's per-packet work: `Stream::emit` writes one frame
//! of a stream (header template, varying addresses and ports, sequence
//! number, TSC stamp, IPv4 and L4 checksums) into a buffer.
//! `benches/e2e/pktgen-vs-testpmd.sh` measures the whole lcore against
//! `dpdk-testpmd txonly`; this is the part of it that is ours alone.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use qsplice_netdev::mem::VecFrame;
use qsplice_pktgen::stream::{rng, FieldMode, Proto, Stream, StreamSpec};
use qsplice_wire::Ipv4Addr;

fn spec(proto: Proto, mode: FieldMode) -> StreamSpec {
    let mut s = StreamSpec::udp(
        1,
        Ipv4Addr::new(198, 18, 0, 1),
        Ipv4Addr::new(198, 19, 0, 1),
        1024,
        9,
    );
    // The ranges of benches/e2e/pktgen-vs-testpmd.sh.
    s.src_ip.1 = Ipv4Addr::new(198, 18, 0, 254);
    s.src_port.1 = 65535;
    s.proto = proto;
    s.mode = mode;
    s
}

fn emit(c: &mut Criterion) {
    let mut g = c.benchmark_group("pktgen_emit");
    g.throughput(Throughput::Elements(1));
    for (name, proto, mode, len) in [
        ("udp_inc", Proto::Udp, FieldMode::Inc, 64usize),
        ("udp_random", Proto::Udp, FieldMode::Random, 64),
        ("tcp_syn_inc", Proto::TcpSyn, FieldMode::Inc, 80),
        ("udp_inc", Proto::Udp, FieldMode::Inc, 1514),
    ] {
        let mut s = Stream::new(spec(proto, mode));
        let mut r = rng(7);
        let mut buf = vec![0u8; len];
        let mut tsc = 1u64 << 40;
        g.bench_function(BenchmarkId::new(name, len), |b| {
            b.iter(|| {
                tsc += 97;
                black_box(s.emit(black_box(&mut buf[..]), tsc, &mut r))
            })
        });
    }
    g.finish();
}

/// A burst of 32 frames of one stream built at once (`Stream::emit_burst`,
/// what the lcore does for one stream of one size), per frame.
fn emit_burst(c: &mut Criterion) {
    let mut g = c.benchmark_group("pktgen_emit_burst");
    g.throughput(Throughput::Elements(32));
    for (name, proto, mode, len) in [
        ("udp_inc", Proto::Udp, FieldMode::Inc, 64usize),
        ("tcp_syn_inc", Proto::TcpSyn, FieldMode::Inc, 80),
    ] {
        let mut s = Stream::new(spec(proto, mode));
        let mut r = rng(7);
        let mut frames: Vec<VecFrame> = (0..32)
            .map(|_| VecFrame::from_bytes(&vec![0; len]))
            .collect();
        let mut tsc = 1u64 << 40;
        g.bench_function(BenchmarkId::new(name, len), |b| {
            b.iter(|| {
                tsc += 97;
                black_box(s.emit_burst(black_box(&mut frames[..]), len, tsc, &mut r))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, emit, emit_burst);
criterion_main!(benches);
