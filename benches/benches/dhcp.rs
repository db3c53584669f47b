//! DHCP in memory, no I/O: `qsplice dhcp-tester`'s client engine against
//! `qsplice dhcp-server`'s server engine, frames handed over in a reused
//! buffer ring. Two figures per run:
//!
//! - `tester_dora`: CPU time the tester spends per complete DORA exchange
//!   (DISCOVER built, OFFER parsed and validated, REQUEST built, ACK parsed,
//!   latency recorded) — elements/s = DORA exchanges/s on one core;
//! - `server_request`: CPU time the server spends per request frame
//!   (parse, validate, lease lookup/allocation, reply frame with checksums)
//!   — elements/s = requests/s on one core.
//!
//! Only the named side is timed (`iter_custom`); the other side's work and
//! the setup (tables for a fresh batch of clients) are excluded.
//!
//! `cargo bench -p qsplice-benches --bench dhcp`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use qsplice_dhcp::client::{Tester, TesterConfig, TxBatch};
use qsplice_dhcp::server::{PoolConfig, Server, ServerConfig};
use qsplice_dhcp::wire::AddrList;
use qsplice_dhcp::{Ipv4Addr, MacAddr};

const HZ: u64 = 1_000_000_000;
/// Clients per fresh tester/server pair.
const CHUNK: u32 = 1 << 17;
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

fn pair(n: u32) -> (Tester, Server) {
    let start = Ipv4Addr::new(10, 1, 0, 0);
    let pool = PoolConfig {
        network: Ipv4Addr::new(10, 0, 0, 0),
        prefix_len: 8,
        range_start: start,
        range_end: Ipv4Addr::from(u32::from(start) + n - 1),
        routers: AddrList::from_iter([SERVER_IP]),
        dns_servers: AddrList::from_iter([SERVER_IP]),
        lease_time: Duration::from_secs(3600),
    };
    let s = Server::new(
        &ServerConfig::new(SERVER_IP, MacAddr([2, 0xaa, 0, 0, 0, 1]), pool),
        HZ,
    )
    .expect("server config");
    let mut tc = TesterConfig::new(n);
    tc.concurrency = 4096;
    let t = Tester::new(&tc, HZ).expect("tester config");
    (t, s)
}

/// Runs `n` clients to completion; returns (tester time, server time).
fn run(n: u32) -> (Duration, Duration) {
    let (mut t, mut s) = pair(n);
    let mut batch = TxBatch::new(32);
    let mut replies = vec![[0u8; 1024]; 32];
    let mut lens = [0usize; 32];
    let (mut tt, mut st) = (Duration::ZERO, Duration::ZERO);
    let mut now = 0u64;
    while !t.is_finished() {
        batch.clear();
        let t0 = Instant::now();
        t.poll(now, &mut batch);
        tt += t0.elapsed();
        let t1 = Instant::now();
        let mut k = 0;
        for f in batch.iter() {
            if let Ok(Some(m)) = s.handle_frame(now, SERVER_IP, f, &mut replies[k]) {
                lens[k] = m.len;
                k += 1;
            }
        }
        st += t1.elapsed();
        let t2 = Instant::now();
        for (r, &len) in replies.iter().zip(&lens).take(k) {
            let _ = black_box(t.on_reply(now, &r[..len]));
        }
        tt += t2.elapsed();
        now += 1_000;
    }
    assert_eq!(t.stats().counters.bound, u64::from(n), "every client bound");
    (tt, st)
}

fn measure(iters: u64, server: bool) -> Duration {
    let mut left = iters;
    let mut total = Duration::ZERO;
    while left > 0 {
        let n = left.min(u64::from(CHUNK)) as u32;
        let (tt, st) = run(n.max(1));
        total += if server { st } else { tt };
        left -= u64::from(n);
    }
    total
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("dhcp");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tester_dora", |b| {
        b.iter_custom(|iters| measure(iters, false))
    });
    // One iteration = one client = two requests (DISCOVER, REQUEST).
    g.throughput(Throughput::Elements(2));
    g.bench_function("server_request", |b| {
        b.iter_custom(|iters| measure(iters, true))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
