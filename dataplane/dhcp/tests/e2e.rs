//! Tester against server through in-memory frames.

use core::time::Duration;
use std::collections::{BTreeMap, HashSet};

use qsplice_dhcp::client::{
    ConfigError, FailReason, Pacing, Phase, RelayConfig, ReplyError, RetransmitConfig, Tester,
    TesterConfig, TxBatch,
};
use qsplice_dhcp::frame::parse_frame;
use qsplice_dhcp::server::{ExhaustionPolicy, PoolConfig, Reject, Server, ServerConfig};
use qsplice_dhcp::wire::{AddrList, DhcpRepr, MessageType, OptionScratch};
use qsplice_dhcp::{Ipv4Addr, MacAddr};

const HZ: u64 = 1_000_000_000;
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const SERVER_MAC: MacAddr = MacAddr([0x02, 0xaa, 0, 0, 0, 1]);

fn pool(net: [u8; 2], size: u32) -> PoolConfig {
    // A /16 starting at .0.10.
    let start = u32::from(Ipv4Addr::new(net[0], net[1], 0, 10));
    PoolConfig {
        network: Ipv4Addr::new(net[0], net[1], 0, 0),
        prefix_len: 16,
        range_start: Ipv4Addr::from(start),
        range_end: Ipv4Addr::from(start + size - 1),
        routers: AddrList::from_iter([Ipv4Addr::new(net[0], net[1], 0, 1)]),
        dns_servers: AddrList::new(),
        lease_time: Duration::from_secs(3600),
    }
}

fn server_cfg(size: u32) -> ServerConfig {
    ServerConfig::new(SERVER_IP, SERVER_MAC, pool([10, 0], size))
}

fn fast_retransmit() -> RetransmitConfig {
    RetransmitConfig {
        initial: Duration::from_millis(20),
        multiplier: 2,
        max: Duration::from_millis(160),
        jitter_pct: 25,
        discover_retries: 4,
        request_retries: 4,
    }
}

fn tester_cfg(n: u32) -> TesterConfig {
    let mut c = TesterConfig::new(n);
    c.retransmit = fast_retransmit();
    c
}

#[derive(Default, Debug)]
struct RunInfo {
    now: u64,
    max_in_flight: u32,
    server_replies: u64,
    reply_errors: BTreeMap<&'static str, u64>,
    starts: Vec<u64>,
}

/// Runs until the tester finishes (or `limit` ticks): tester frames go to
/// the server, replies (after their simulated delay) back to the tester.
fn run(t: &mut Tester, s: &mut Server, limit: u64) -> RunInfo {
    run_step(t, s, limit, None)
}

/// [`run`] with a fixed time step (default: 20 µs when busy, 1 ms idle).
fn run_step(t: &mut Tester, s: &mut Server, limit: u64, step: Option<u64>) -> RunInfo {
    let mut info = RunInfo::default();
    let mut batch = TxBatch::new(64);
    let mut out = vec![0u8; 1500];
    let mut delayed: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut now = 0u64;
    let mut started_before = 0;
    while !t.is_finished() && now < limit {
        batch.clear();
        let sent = t.poll(now, &mut batch);
        info.max_in_flight = info.max_in_flight.max(t.in_flight());
        let started = t.stats().counters.started;
        for _ in started_before..started {
            info.starts.push(now);
        }
        started_before = started;
        let mut replies = Vec::new();
        for f in batch.iter() {
            if let Ok(Some(m)) = s.handle_frame(now, SERVER_IP, f, &mut out) {
                info.server_replies += 1;
                if m.delay == 0 {
                    replies.push(out[..m.len].to_vec());
                } else {
                    delayed.push((now + m.delay, out[..m.len].to_vec()));
                }
            }
        }
        delayed.retain(|(due, f)| {
            if *due <= now {
                replies.push(f.clone());
                false
            } else {
                true
            }
        });
        for r in &replies {
            if let Err(e) = t.on_reply(now, r) {
                *info.reply_errors.entry(e.as_str()).or_default() += 1;
            }
        }
        s.tick(now);
        now += step.unwrap_or(if sent == 0 && replies.is_empty() {
            1_000_000
        } else {
            20_000
        });
    }
    info.now = now;
    info
}

#[test]
fn ten_thousand_clients_all_bound_with_unique_addresses() {
    let n = 10_000;
    let mut s = Server::new(&server_cfg(20_000), HZ).unwrap();
    let mut t = Tester::new(&tester_cfg(n), HZ).unwrap();
    let info = run(&mut t, &mut s, 60 * HZ);
    assert!(t.is_finished(), "{:?}", t.stats().counters);
    let c = &t.stats().counters;
    assert_eq!(c.started, u64::from(n));
    assert_eq!(c.done, u64::from(n));
    assert_eq!(c.bound, u64::from(n));
    assert_eq!(c.failed, 0);
    assert_eq!((c.discover_sent, c.offer_received), (n.into(), n.into()));
    assert_eq!((c.request_sent, c.ack_received), (n.into(), n.into()));
    assert_eq!((c.retries, c.timeouts, c.reply_errors), (0, 0, 0));
    assert!(info.reply_errors.is_empty());
    assert_eq!(s.leases_bound(), u64::from(n));
    // State: 64 bytes per client plus the fixed 256 KiB timer wheel
    // (1M clients: ≈ 64 MB, issue 6 allows 200 MB).
    assert!(
        t.state_bytes() <= 64 * n as usize + (256 << 10),
        "{}",
        t.state_bytes()
    );
    let first = u32::from(Ipv4Addr::new(10, 0, 0, 10));
    let mut seen = HashSet::new();
    for i in 0..n {
        let a = t.client_addr(i).expect("bound");
        assert!((first..first + 20_000).contains(&u32::from(a)), "{a}");
        assert!(seen.insert(a), "duplicate {a}");
        assert_eq!(t.client_phase(i), Some(Phase::Done));
        // The server agrees on who holds what.
        let mac = t.client_mac(i);
        let cid = [
            1, mac.0[0], mac.0[1], mac.0[2], mac.0[3], mac.0[4], mac.0[5],
        ];
        assert_eq!(s.lease_of(Some(&cid), mac), Some(a));
    }
    let st = t.stats();
    assert_eq!(st.discover_offer.count(), u64::from(n));
    assert_eq!(st.request_ack.count(), u64::from(n));
    assert_eq!(st.total.count(), u64::from(n));
    let rep = t.report(info.now);
    assert_eq!(rep.success_rate, 1.0);
    assert!(rep.clients_per_s > 0.0);
    // Replies come back in the same 20 µs step: stage latency is 0 ticks
    // (clamped to 1 ns) for DISCOVER → OFFER; REQUEST goes out one poll after.
    assert!(rep.total.p99_us >= rep.request_ack.p50_us);
    assert_eq!(rep.retries_histogram, vec![(0, u64::from(n))]);
    let json = serde_json::to_value(&rep).unwrap();
    assert_eq!(json["counters"]["ack_received"], 10_000);
    assert_eq!(json["success_rate"], 1.0);
    assert!(json["total"]["p95_us"].is_number());
    // Distinct MACs, deterministic from the base.
    assert_eq!(t.client_mac(0), MacAddr([2, 0, 0, 0, 0, 0]));
    assert_eq!(t.client_mac(9_999), MacAddr([2, 0, 0, 0, 0x27, 0x0f]));
}

#[test]
fn latency_reflects_server_delay() {
    let mut sc = server_cfg(1000);
    sc.faults.delay = qsplice_dhcp::server::DelayConfig::Fixed(Duration::from_millis(3));
    let mut s = Server::new(&sc, HZ).unwrap();
    let mut t = Tester::new(&tester_cfg(200), HZ).unwrap();
    run(&mut t, &mut s, 60 * HZ);
    assert_eq!(t.stats().counters.done, 200);
    let r = t.report(0);
    assert!(r.discover_offer.min_us >= 3000.0, "{:?}", r.discover_offer);
    assert!(r.discover_offer.max_us < 3100.0, "{:?}", r.discover_offer);
    assert!(r.request_ack.min_us >= 3000.0);
    assert!(r.total.min_us >= 6000.0);
}

fn relay() -> RelayConfig {
    RelayConfig {
        giaddr: Ipv4Addr::new(172, 16, 0, 1),
        relay_mac: MacAddr([0x02, 0xbb, 0, 0, 0, 1]),
        server_ip: SERVER_IP,
        server_mac: SERVER_MAC,
        hops: 0,
        max_hops: 16,
        circuit_id: "ge-0/0/1:{index}".into(),
        remote_id: "lab-{index}".into(),
    }
}

#[test]
fn relay_mode_selects_pool_by_giaddr_and_checks_option_82() {
    for echo in [true, false] {
        let mut sc = server_cfg(100);
        sc.pools.push(pool([172, 16], 2000));
        sc.echo_relay_agent_info = echo;
        let mut s = Server::new(&sc, HZ).unwrap();
        let mut tc = tester_cfg(500);
        tc.relay = Some(relay());
        let mut t = Tester::new(&tc, HZ).unwrap();
        // Look at the first frame the tester sends.
        let mut b = TxBatch::new(1);
        t.poll(0, &mut b);
        let f = b.get(0).unwrap();
        let p = parse_frame(f).unwrap();
        assert_eq!((p.meta.src_ip, p.meta.dst_ip), (relay().giaddr, SERVER_IP));
        assert_eq!((p.meta.src_port, p.meta.dst_port), (67, 67));
        assert_eq!(
            (p.meta.src_mac, p.meta.dst_mac),
            (relay().relay_mac, SERVER_MAC)
        );
        let mut scratch = OptionScratch::new();
        let d = DhcpRepr::parse(p.dhcp(f), &mut scratch).unwrap();
        assert_eq!(d.giaddr, relay().giaddr);
        assert_eq!(d.hops, 1);
        let info = qsplice_dhcp::wire::RelayAgentInfo::parse(d.relay_agent_info.unwrap()).unwrap();
        assert_eq!(info.circuit_id, Some(&b"ge-0/0/1:0"[..]));
        assert_eq!(info.remote_id, Some(&b"lab-0"[..]));
        let mut out = [0u8; 1500];
        let m = s.handle_frame(0, SERVER_IP, f, &mut out).unwrap().unwrap();
        t.on_reply(0, &out[..m.len]).unwrap();

        run(&mut t, &mut s, 60 * HZ);
        let c = &t.stats().counters;
        assert_eq!(c.done, 500);
        for i in 0..500 {
            assert_eq!(t.client_addr(i).unwrap().octets()[..2], [172, 16]);
        }
        assert_eq!(s.stats().counters.relayed, 1000);
        if echo {
            assert_eq!(c.option82_mismatch, 0);
        } else {
            assert_eq!(c.option82_mismatch, 1000, "every OFFER and ACK");
            assert_eq!(t.report(0).errors.get("option82_mismatch"), Some(&1000));
        }
    }
}

#[test]
fn relay_refuses_hops_at_max() {
    let mut tc = tester_cfg(1);
    let mut r = relay();
    r.hops = 16;
    tc.relay = Some(r);
    assert_eq!(Tester::new(&tc, HZ).err(), Some(ConfigError::HopsExceeded));
    tc.relay.as_mut().unwrap().hops = 15;
    assert!(Tester::new(&tc, HZ).is_ok());
}

#[test]
fn pool_exhaustion_fails_clients_by_reason() {
    let mut s = Server::new(&server_cfg(100), HZ).unwrap();
    let mut t = Tester::new(&tester_cfg(150), HZ).unwrap();
    run(&mut t, &mut s, 60 * HZ);
    assert!(t.is_finished());
    let st = t.stats();
    assert_eq!(st.counters.done, 100);
    assert_eq!(st.counters.failed, 50);
    assert_eq!(st.failed(FailReason::DiscoverTimeout), 50);
    // Each failed client sent 1 + 4 DISCOVERs and timed out 5 times.
    assert_eq!(st.counters.discover_sent, 100 + 50 * 5);
    assert_eq!(st.counters.retries, 50 * 4);
    assert_eq!(st.counters.timeouts, 50 * 5);
    assert_eq!(s.stats().counters.pool_exhausted, 250);
    assert_eq!(s.stats().rejected(Reject::PoolExhausted), 250);
    let rep = t.report(0);
    assert_eq!(rep.errors.get("discover_timeout"), Some(&50));
    assert!((rep.success_rate - 100.0 / 150.0).abs() < 1e-9);
    assert_eq!(rep.retries_histogram, vec![(0, 100), (4, 50)]);

    // With the NAK policy the clients fail on NAKs instead.
    let mut sc = server_cfg(100);
    sc.exhaustion = ExhaustionPolicy::Nak;
    let mut s = Server::new(&sc, HZ).unwrap();
    let mut tc = tester_cfg(150);
    tc.max_naks = 2;
    let mut t = Tester::new(&tc, HZ).unwrap();
    run(&mut t, &mut s, 60 * HZ);
    let st = t.stats();
    assert_eq!(st.failed(FailReason::TooManyNaks), 50);
    assert_eq!(st.counters.nak_received, 50 * 3);
}

#[test]
fn nak_sends_client_back_to_init() {
    // Client 0's REQUEST goes to a server that never offered: NAK.
    let mut good = Server::new(&server_cfg(100), HZ).unwrap();
    let mut stranger = Server::new(&server_cfg(100), HZ).unwrap();
    let mut tc = tester_cfg(1);
    tc.max_naks = 1;
    let mut t = Tester::new(&tc, HZ).unwrap();
    let mut b = TxBatch::new(8);
    let mut out = [0u8; 1500];
    let mut exchange = |t: &mut Tester, s: &mut Server, now: u64| -> Result<_, ReplyError> {
        let mut b2 = TxBatch::new(8);
        let n = t.poll(now, &mut b2);
        assert_eq!(n, 1, "{:?} {:?}", t.client_phase(0), t.stats().counters);
        let m = s
            .handle_frame(now, SERVER_IP, b2.get(0).unwrap(), &mut out)
            .unwrap()
            .unwrap();
        t.on_reply(now, &out[..m.len])
    };
    for round in 0..2 {
        assert!(matches!(
            exchange(&mut t, &mut good, 10 + round * 100),
            Ok(qsplice_dhcp::client::ReplyEvent::Offer(0, _))
        ));
        let ev = exchange(&mut t, &mut stranger, 20 + round * 100).unwrap();
        assert_eq!(ev, qsplice_dhcp::client::ReplyEvent::Nak(0));
        assert_eq!(t.stats().counters.nak_received, round + 1);
    }
    assert_eq!(t.client_phase(0), Some(Phase::Failed));
    assert_eq!(t.stats().failed(FailReason::TooManyNaks), 1);
    assert_eq!(
        t.stats().counters.discover_sent,
        2,
        "restarted from INIT once"
    );
    assert_eq!(t.poll(1000, &mut b), 0);
    assert!(t.is_finished());
}

#[test]
fn thirty_percent_drop_recovers_by_retransmission() {
    let n = 2000;
    let mut sc = server_cfg(4000);
    sc.faults.drop_probability = 0.3;
    sc.seed = 42;
    let mut s = Server::new(&sc, HZ).unwrap();
    let mut tc = tester_cfg(n);
    tc.retransmit.discover_retries = 10;
    tc.retransmit.request_retries = 10;
    let mut t = Tester::new(&tc, HZ).unwrap();
    run(&mut t, &mut s, 600 * HZ);
    let c = &t.stats().counters;
    assert_eq!(c.done, u64::from(n), "{c:?}");
    assert_eq!(c.failed, 0);
    let dropped = s.stats().rejected(Reject::SimulatedDrop);
    // Every drop cost one timeout and one retry; nothing else did.
    assert_eq!(c.retries, dropped);
    assert_eq!(c.timeouts, dropped);
    let sent = c.discover_sent + c.request_sent;
    assert_eq!(sent, 2 * u64::from(n) + c.retries);
    let ratio = dropped as f64 / sent as f64;
    assert!((0.27..0.33).contains(&ratio), "{ratio}");
    let rep = t.report(0);
    assert!(rep.retries_histogram.iter().any(|&(k, _)| k >= 2));
    assert_eq!(
        rep.retries_histogram.iter().map(|x| x.1).sum::<u64>(),
        u64::from(n)
    );
    // Retransmission latency shows: some clients needed ≥ 15 ms (20 ms ±25%).
    assert!(rep.discover_offer.max_us >= 15_000.0);
    assert_eq!(s.leases_bound(), u64::from(n));
}

#[test]
fn renew_and_release() {
    let n = 300;
    let mut s = Server::new(&server_cfg(1000), HZ).unwrap();
    let mut tc = tester_cfg(n);
    tc.renew_after = Some(Duration::from_millis(500));
    tc.release = true;
    let mut t = Tester::new(&tc, HZ).unwrap();
    run(&mut t, &mut s, 60 * HZ);
    let c = &t.stats().counters;
    assert_eq!(c.done, u64::from(n));
    assert_eq!((c.renew_sent, c.renew_ack), (n.into(), n.into()));
    assert_eq!(c.release_sent, u64::from(n));
    assert_eq!(c.ack_received, 2 * u64::from(n));
    assert_eq!(t.stats().renew.count(), u64::from(n));
    assert_eq!(s.stats().counters.release, u64::from(n));
    assert_eq!(s.leases_bound(), 0);
    assert_eq!(s.stats().rejected_total(), 0);
}

#[test]
fn pacing_and_concurrency_limit() {
    let mut s = Server::new(&server_cfg(1000), HZ).unwrap();
    let mut tc = tester_cfg(101);
    tc.pacing = Pacing::Rate {
        per_sec: 1000,
        burst: 1,
    };
    let mut t = Tester::new(&tc, HZ).unwrap();
    let info = run_step(&mut t, &mut s, 60 * HZ, Some(10_000));
    assert_eq!(t.stats().counters.done, 101);
    let span = info.starts[100] - info.starts[0];
    // 100 intervals of 1 ms, observed on a 10 µs grid.
    assert!((100_000_000..=100_010_000).contains(&span), "{span}");
    for w in info.starts.windows(2) {
        assert!(w[1] - w[0] >= 1_000_000, "no burst beyond 1");
    }
    // Burst 10 at 100/s: ten at once, then one every 10 ms.
    let mut s = Server::new(&server_cfg(1000), HZ).unwrap();
    let mut tc = tester_cfg(30);
    tc.pacing = Pacing::Rate {
        per_sec: 100,
        burst: 10,
    };
    let mut t = Tester::new(&tc, HZ).unwrap();
    let info = run_step(&mut t, &mut s, 60 * HZ, Some(10_000));
    assert!(
        info.starts[..10].iter().all(|&x| x == 0),
        "{:?}",
        &info.starts[..12]
    );
    assert_eq!(info.starts[10], 10_000_000);
    assert_eq!(info.starts[29], 200_000_000);

    // Concurrency: at most 7 in flight, with a slow server.
    let mut sc = server_cfg(1000);
    sc.faults.delay = qsplice_dhcp::server::DelayConfig::Fixed(Duration::from_millis(1));
    let mut s = Server::new(&sc, HZ).unwrap();
    let mut tc = tester_cfg(100);
    tc.concurrency = 7;
    let mut t = Tester::new(&tc, HZ).unwrap();
    let info = run(&mut t, &mut s, 60 * HZ);
    assert_eq!(t.stats().counters.done, 100);
    assert_eq!(info.max_in_flight, 7);
}

#[test]
fn tester_validates_replies_by_reason() {
    let mut s = Server::new(&server_cfg(100), HZ).unwrap();
    let mut t = Tester::new(&tester_cfg(2), HZ).unwrap();
    let mut b = TxBatch::new(8);
    t.poll(0, &mut b);
    let mut out = [0u8; 1500];
    let m = s
        .handle_frame(0, SERVER_IP, b.get(0).unwrap(), &mut out)
        .unwrap()
        .unwrap();
    let offer = out[..m.len].to_vec();
    let dhcp_at = 42;
    // Wrong xid (fix the UDP checksum by zeroing it: "no checksum").
    let mut f = offer.clone();
    f[dhcp_at + 4] ^= 1;
    f[40] = 0;
    f[41] = 0;
    assert_eq!(t.on_reply(0, &f), Err(ReplyError::XidMismatch));
    // Unknown chaddr.
    let mut f = offer.clone();
    f[dhcp_at + 28] ^= 0x40;
    f[40] = 0;
    f[41] = 0;
    assert_eq!(t.on_reply(0, &f), Err(ReplyError::UnknownClient));
    // Bad UDP checksum.
    let mut f = offer.clone();
    f[dhcp_at + 100] ^= 1;
    assert!(matches!(t.on_reply(0, &f), Err(ReplyError::Frame(_))));
    // Truncated DHCP (UDP length 8 + 200).
    let mut f = offer.clone();
    f.truncate(42 + 200);
    f[16..18].copy_from_slice(&(20u16 + 8 + 200).to_be_bytes());
    f[24] = 0;
    f[25] = 0;
    let c = qsplice_wire::checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f[38..40].copy_from_slice(&208u16.to_be_bytes());
    f[40] = 0;
    f[41] = 0;
    assert_eq!(
        t.on_reply(0, &f),
        Err(ReplyError::Malformed(qsplice_dhcp::wire::Error::Truncated))
    );
    // The real one is accepted once; the duplicate is unexpected.
    assert!(t.on_reply(0, &offer).is_ok());
    assert_eq!(t.on_reply(0, &offer), Err(ReplyError::Unexpected));
    let st = t.stats();
    assert_eq!(st.counters.reply_errors, 5);
    assert_eq!(st.reply_error(ReplyError::XidMismatch), 1);
    let rep = t.report(0);
    assert_eq!(rep.errors.get("unexpected_reply"), Some(&1));
    assert_eq!(rep.errors.get("bad_udp_checksum"), Some(&1));
    assert_eq!(rep.errors.get("truncated"), Some(&1));
    // A server-bound message is not a reply.
    let req = b.get(0).unwrap();
    assert!(t.on_reply(0, req).is_err());
    let _ = MessageType::Ack;
}

#[test]
fn retransmission_backoff_timing() {
    // No server: DISCOVERs go out at 0, ~20, ~60, ~140, ~300 ms (20, 40,
    // 80, 160 capped) within ±25%, then the client fails at ~460 ms.
    let mut tc = tester_cfg(1);
    tc.retransmit.max = Duration::from_millis(160);
    let mut t = Tester::new(&tc, HZ).unwrap();
    let mut b = TxBatch::new(8);
    let mut sends = Vec::new();
    let mut now = 0;
    while !t.is_finished() && now < 2 * HZ {
        b.clear();
        if t.poll(now, &mut b) > 0 {
            sends.push(now);
        }
        now += 100_000;
    }
    assert_eq!(sends.len(), 5);
    let gaps: Vec<u64> = sends
        .windows(2)
        .map(|w| (w[1] - w[0]) / 1_000_000)
        .collect();
    for (g, base) in gaps.iter().zip([20u64, 40, 80, 160]) {
        assert!(*g >= base * 3 / 4 && *g <= base * 5 / 4 + 1, "{gaps:?}");
    }
    assert_eq!(t.stats().failed(FailReason::DiscoverTimeout), 1);
    let end = now / 1_000_000;
    assert!((300 + 120..=300 + 201 + 1).contains(&end), "{end}");
}

#[test]
fn relay_mode_renews_directly_with_the_server() {
    let mut sc = server_cfg(100);
    sc.pools.push(pool([172, 16], 100));
    let mut s = Server::new(&sc, HZ).unwrap();
    let mut tc = tester_cfg(20);
    tc.relay = Some(relay());
    tc.renew_after = Some(Duration::from_millis(50));
    let mut t = Tester::new(&tc, HZ).unwrap();
    // Bind everyone, then catch the renewals on the wire.
    let mut b = TxBatch::new(64);
    let mut out = [0u8; 1500];
    let mut now = 0;
    let mut renewals = 0;
    while !t.is_finished() && now < 10 * HZ {
        b.clear();
        t.poll(now, &mut b);
        let mut replies = Vec::new();
        for f in b.iter() {
            let p = parse_frame(f).unwrap();
            let mut scratch = OptionScratch::new();
            let d = DhcpRepr::parse(p.dhcp(f), &mut scratch).unwrap();
            if !d.ciaddr.is_unspecified() {
                renewals += 1;
                // Unicast from the client's address to the server, no relay.
                assert_eq!((p.meta.src_ip, p.meta.dst_ip), (d.ciaddr, SERVER_IP));
                assert_eq!((p.meta.src_port, p.meta.dst_port), (68, 67));
                assert_eq!(p.meta.dst_mac, SERVER_MAC);
                assert_eq!(d.giaddr, Ipv4Addr::UNSPECIFIED);
                assert_eq!(d.relay_agent_info, None);
                assert_eq!((d.server_id, d.requested_ip), (None, None));
            }
            if let Ok(Some(m)) = s.handle_frame(now, SERVER_IP, f, &mut out) {
                replies.push(out[..m.len].to_vec());
            }
        }
        for r in &replies {
            t.on_reply(now, r).unwrap();
        }
        now += 1_000_000;
    }
    assert_eq!(renewals, 20);
    let c = &t.stats().counters;
    assert_eq!((c.done, c.renew_ack, c.option82_mismatch), (20, 20, 0));
}
