//! The session-aware lookup on the lcore: from a whole ClientHello message
//! (already reassembled) to a backend — parse the hello
//! (`qsplice_wire::tls::ClientHello`), derive the offer's keys
//! (`qsplice_sessions::identity::Offer`: SipHash-2-4 per identity), look them
//! up in a published table of 100,000 sessions, skipping candidates the
//! shared BUSY counters (`BusyCounts`) say serve the session now — as the
//! lcore does. Target (issue 5): ≤ 100 ns for the lookup itself; the parse
//! and hashing are shown separately.
//!
//! Also the control thread's side: building the snapshot it publishes.
//!
//! `cargo bench -p qsplice-benches --bench sessions`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use qsplice_sessions::identity::Offer;
use qsplice_sessions::{choose, BusyCounts, Candidates, Choice, IdentityKind, SessionKey};
use qsplice_wire::tls::{ClientHello, HelloAssembler};

const SECRET: (u64, u64) = (0x1234, 0x5678);

fn hello(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../dataplane/wire/tests/fixtures/tls")
        .join(name);
    let raw = std::fs::read(&p).expect("fixture");
    let mut a = HelloAssembler::new();
    a.push(&raw).expect("hello").expect("whole");
    a.message().expect("message").to_vec()
}

type Table = Candidates;

/// The lcore's choice (`qsplice_sessions::choose`): the first offered key
/// with a candidate that is not busy; every backend can take a connection.
fn pick(table: &Table, busy: &BusyCounts, offer: &Offer) -> Choice {
    choose(offer, table, |k, b| busy.get(0, k, b) > 0, |_| true)
}

fn bench(c: &mut Criterion) {
    // 100k sessions, 1–3 candidate backends each; the fixture's own
    // session is among them.
    let mut table: Table = Table::default();
    let busy = BusyCounts::new(1 << 20);
    for i in 0..100_000u32 {
        let k = SessionKey::of(SECRET, IdentityKind::SessionId, &i.to_be_bytes());
        table.insert(k, (0..=(i % 3) as u16).collect());
    }
    let tls12 = hello("ch-tls12-resume-sessid.bin");
    let tls13 = hello("ch-tls13-psk.bin");
    for m in [&tls12, &tls13] {
        let ch = ClientHello::parse(m).unwrap();
        for k in Offer::of(SECRET, &ch).keys {
            table.insert(k, [1u16, 2].into_iter().collect());
        }
    }
    let mut g = c.benchmark_group("session_aware");
    for (name, m) in [("tls12_session_id", &tls12), ("tls13_psk", &tls13)] {
        let ch = ClientHello::parse(m).unwrap();
        let offer = Offer::of(SECRET, &ch);
        g.bench_function(format!("lookup/{name}"), |b| {
            b.iter(|| pick(&table, &busy, black_box(&offer)))
        });
        // The least recently used candidate serves the session right now:
        // the next one is taken.
        busy.enter(0, offer.keys[0], 1);
        assert!(matches!(
            pick(&table, &busy, &offer),
            Choice::Hit { backend: 2, .. }
        ));
        g.bench_function(format!("lookup_first_busy/{name}"), |b| {
            b.iter(|| pick(&table, &busy, black_box(&offer)))
        });
        busy.leave(0, offer.keys[0], 1);
        g.bench_function(format!("offer_keys/{name}"), |b| {
            b.iter(|| Offer::of(SECRET, black_box(&ch)))
        });
        g.bench_function(format!("parse_offer_lookup/{name}"), |b| {
            b.iter(|| {
                let ch = ClientHello::parse(black_box(m)).unwrap();
                let o = Offer::of(SECRET, &ch);
                pick(&table, &busy, &o)
            })
        });
    }
    // The control thread's publication: a snapshot of a 100k-session
    // table (a copy of its candidate map).
    let mut t = qsplice_sessions::SessionTable::new(100_000, u64::MAX);
    for i in 0..100_000u64 {
        let k = SessionKey::of(SECRET, IdentityKind::SessionId, &i.to_be_bytes());
        for b in 0..=(i % 3) as u16 {
            t.learn(k, b, i + u64::from(b));
        }
    }
    g.sample_size(20);
    g.bench_function("snapshot/100k_sessions", |b| b.iter(|| t.snapshot()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
