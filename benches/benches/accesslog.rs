//! The access log's control-thread cost: one record formatted as a JSON
//! line (`qsplice_balancer::accesslog::write_record_cached`, as the writer
//! does it: the date of the previous line's second kept), for a spliced
//! connection and a TLS-terminated one. At N lines/s the control thread
//! spends N × this per second.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::SystemTime;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use qsplice_balancer::accesslog::{write_record_cached, DateCache};
use qsplice_lb::access::{AccessRecord, EndReason, SaDecision, TlsAccess};

fn record(tls: bool) -> AccessRecord {
    let vip: SocketAddr = if tls { "10.10.1.1:443" } else { "10.10.1.1:80" }
        .parse()
        .unwrap();
    AccessRecord {
        lcore: 0,
        vip,
        client: "10.10.1.2:40123".parse().unwrap(),
        backend: Some("10.10.2.11:80".parse().unwrap()),
        start: 1_000_000,
        end: 3_500_000,
        setup_us: 180,
        c2s_bytes: 78,
        s2c_bytes: 853,
        how: EndReason::Fin,
        tls: tls.then(|| {
            let mut t = TlsAccess::of(None);
            t.version = 0x0304;
            t.group = Some(qsplice_tls::Group::X25519MlKem768);
            t.sni[..8].copy_from_slice(b"vip.test");
            t.sni_len = 8;
            t
        }),
        sa: SaDecision::None,
    }
}

fn bench(c: &mut Criterion) {
    let names: HashMap<SocketAddr, String> = [
        ("10.10.1.1:80".parse().unwrap(), "\"web\"".to_string()),
        ("10.10.1.1:443".parse().unwrap(), "\"web-tls\"".to_string()),
    ]
    .into_iter()
    .collect();
    let mut g = c.benchmark_group("accesslog");
    g.throughput(Throughput::Elements(1));
    let mut line = String::with_capacity(512);
    let now = SystemTime::now();
    let mut date = DateCache::default();
    for (what, tls) in [("spliced", false), ("tls", true)] {
        let r = record(tls);
        g.bench_function(format!("write_record/{what}"), |b| {
            b.iter(|| {
                line.clear();
                write_record_cached(
                    &mut line,
                    std::hint::black_box(&r),
                    &names,
                    1_000_000_000,
                    4_000_000,
                    now,
                    &mut date,
                );
                line.len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
