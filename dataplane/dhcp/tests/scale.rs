//! Scale check: one million virtual clients against the server in memory.
//! Ignored by default (it wants `--release`):
//! `cargo test -p qsplice-dhcp --release --test scale -- --ignored --nocapture`

use core::time::Duration;
use std::time::Instant;

use qsplice_dhcp::client::{Tester, TesterConfig, TxBatch};
use qsplice_dhcp::server::{PoolConfig, Server, ServerConfig};
use qsplice_dhcp::wire::AddrList;
use qsplice_dhcp::{Ipv4Addr, MacAddr};

#[test]
#[ignore = "1M clients; run with --release"]
fn one_million_clients_in_memory() {
    const N: u32 = 1_000_000;
    const HZ: u64 = 1_000_000_000;
    let server_ip = Ipv4Addr::new(10, 0, 0, 1);
    let pool = PoolConfig {
        network: Ipv4Addr::new(10, 0, 0, 0),
        prefix_len: 8,
        range_start: Ipv4Addr::new(10, 0, 1, 0),
        range_end: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 1, 0)) + N - 1),
        routers: AddrList::from_iter([Ipv4Addr::new(10, 0, 0, 1)]),
        dns_servers: AddrList::new(),
        lease_time: Duration::from_secs(3600),
    };
    let mut s = Server::new(
        &ServerConfig::new(server_ip, MacAddr([2, 0xaa, 0, 0, 0, 1]), pool),
        HZ,
    )
    .unwrap();
    let mut tc = TesterConfig::new(N);
    tc.concurrency = 65_536;
    let mut t = Tester::new(&tc, HZ).unwrap();
    let mut batch = TxBatch::new(32);
    let mut replies = TxBatch::new(32);
    let mut out = [0u8; 1500];
    let start = Instant::now();
    let mut now = 0u64;
    let (mut tester_ns, mut server_ns) = (0u128, 0u128);
    while !t.is_finished() {
        batch.clear();
        let t0 = Instant::now();
        t.poll(now, &mut batch);
        tester_ns += t0.elapsed().as_nanos();
        let t1 = Instant::now();
        let mut got = Vec::with_capacity(32);
        for f in batch.iter() {
            if let Ok(Some(m)) = s.handle_frame(now, server_ip, f, &mut out) {
                got.push(out[..m.len].to_vec());
            }
        }
        server_ns += t1.elapsed().as_nanos();
        let t2 = Instant::now();
        for r in &got {
            t.on_reply(now, r).unwrap();
        }
        tester_ns += t2.elapsed().as_nanos();
        now += 1_000;
        replies.clear();
    }
    let wall = start.elapsed();
    let c = &t.stats().counters;
    assert_eq!(c.done, u64::from(N));
    assert_eq!(s.leases_bound(), u64::from(N));
    // Issue 6: at most 200 bytes of state per emulated client.
    let per_client = t.state_bytes() as f64 / f64::from(N);
    assert!(per_client <= 200.0, "{per_client} bytes per client");
    println!(
        "1M DORA: tester state {:.1} B/client ({:.1} MB), server leases {:.1} B/lease",
        per_client,
        t.state_bytes() as f64 / 1e6,
        s.state_bytes() as f64 / f64::from(N),
    );
    println!(
        "1M DORA: wall {:.2} s; tester {:.2} s ({:.2} M DORA/s), server {:.2} s ({:.2} M requests/s)",
        wall.as_secs_f64(),
        tester_ns as f64 / 1e9,
        f64::from(N) / (tester_ns as f64 / 1e9) / 1e6,
        server_ns as f64 / 1e9,
        2.0 * f64::from(N) / (server_ns as f64 / 1e9) / 1e6,
    );
}

/// The DHCPv6 counterpart: one million clients SOLICIT → ADVERTISE →
/// REQUEST → REPLY (IA_NA) against the DHCPv6 server on its link (whole
/// frames both ways: IPv6/UDP framing, checksums, the server's reply
/// addressing), in memory.
#[test]
#[ignore = "1M clients; run with --release"]
fn one_million_dhcpv6_clients_in_memory() {
    use qsplice_dhcp::client6::{Tester6, Tester6Config};
    use qsplice_dhcp::link6::Server6Link;
    use qsplice_dhcp::server::FaultConfig;
    use qsplice_dhcp::server6::Server6Config;
    use std::net::Ipv6Addr;
    const N: u32 = 1_000_000;
    const HZ: u64 = 1_000_000_000;
    let mac = MacAddr([2, 0xaa, 0, 0, 0, 1]);
    let cfg = Server6Config {
        duid: vec![0, 3, 0, 1, 2, 0xaa, 0, 0, 0, 1],
        addr_first: "2001:db8:1::1:0".parse::<Ipv6Addr>().unwrap(),
        addr_count: N,
        pd: None,
        preferred_s: 1800,
        valid_s: 3600,
        t1_s: 900,
        t2_s: 1440,
        rapid_commit: false,
        preference: 0,
        offer_hold_s: 30,
    };
    let mut s = Server6Link::new(&cfg, mac, &[], &FaultConfig::default(), 1, HZ).unwrap();
    let mut tc = Tester6Config::new(N);
    tc.concurrency = 65_536;
    let mut t = Tester6::new(&tc, HZ).unwrap();
    let mut batch = TxBatch::new(32);
    let mut out = [0u8; 1500];
    let start = Instant::now();
    let mut now = 0u64;
    let (mut tester_ns, mut server_ns) = (0u128, 0u128);
    let mut got: Vec<Vec<u8>> = Vec::with_capacity(32);
    while !t.is_finished() {
        batch.clear();
        let t0 = Instant::now();
        t.poll(now, &mut batch);
        tester_ns += t0.elapsed().as_nanos();
        let t1 = Instant::now();
        got.clear();
        for f in batch.iter() {
            if let Ok(Some(r)) = s.handle_frame(now, f, &mut out) {
                got.push(out[..r.len].to_vec());
            }
        }
        server_ns += t1.elapsed().as_nanos();
        let t2 = Instant::now();
        for r in &got {
            t.on_reply(now, r).unwrap();
        }
        tester_ns += t2.elapsed().as_nanos();
        now += 1_000;
    }
    let wall = start.elapsed();
    let c = &t.stats().counters;
    assert_eq!(c.done, u64::from(N));
    assert_eq!(s.server().bound(), (N as usize, 0));
    let per_client = t.state_bytes() as f64 / f64::from(N);
    assert!(per_client <= 200.0, "{per_client} bytes per client");
    println!(
        "1M SARR: tester state {:.1} B/client ({:.1} MB)",
        per_client,
        t.state_bytes() as f64 / 1e6,
    );
    println!(
        "1M SARR: wall {:.2} s; tester {:.2} s ({:.2} M SARR/s), server {:.2} s ({:.2} M requests/s)",
        wall.as_secs_f64(),
        tester_ns as f64 / 1e9,
        f64::from(N) / (tester_ns as f64 / 1e9) / 1e6,
        server_ns as f64 / 1e9,
        2.0 * f64::from(N) / (server_ns as f64 / 1e9) / 1e6,
    );
}
