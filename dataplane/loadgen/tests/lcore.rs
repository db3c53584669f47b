//! A load-generator client lcore against a load-generator server lcore,
//! each a real engine worker on in-memory queues, wired back to back
//! (frames moved between them: Ethernet, ARP, IPv4, TCP checksums), with
//! and without loss.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use qsplice_engine::{ArpConf, EngineConf, IfAddr, PortSetup, SharedCounters, Worker};
use qsplice_loadgen::{
    build_response, BodyFraming, ClientConf, ClientTls, LoadgenClient, LoadgenServer, ServerConf,
};
use qsplice_netdev::mem::{ManualClock, MemQueue, VecFrame};
use qsplice_tcp::Config;
use qsplice_tls::certgen::{KeyAlg, LabCa};
use qsplice_tls::certs::CertSpec;
use qsplice_tls::client::{client_config, ClientSettings};
use qsplice_tls::{Group, TlsContext, TlsSettings};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rustls::pki_types::ServerName;

const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 50, 0, 2);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 50, 0, 1);
const BODY: usize = 3000;

fn econf() -> EngineConf {
    EngineConf {
        burst: 32,
        tx_drain_us: 0,
        idle_sleep_us: 0,
        idle_spin_us: 0,
        arp: ArpConf {
            reachable_ms: 600_000,
            probe_interval_ms: 100,
            max_probes: 30,
            gratuitous_on_start: false,
            table_size: 64,
        },
        primary: true,
        kernel_poll_us: 100,
        kernel_max_pps: 0,
    }
}

fn port(mac: [u8; 6], ips: &[Ipv4Addr]) -> Vec<(MemQueue, PortSetup)> {
    vec![(
        MemQueue::new(mac),
        PortSetup {
            name: "lg".into(),
            addrs6: vec![],
            addrs: ips
                .iter()
                .map(|&addr| IfAddr { addr, prefix: 24 })
                .collect(),
            neighbors: vec![],
            gateway: None,
            neighbors6: vec![],
            gateway6: None,
        },
    )]
}

fn tcp() -> Config {
    Config {
        time_wait_us: 0,
        rcv_buf: 32 * 1024,
        snd_buf: 32 * 1024,
        ..Config::default()
    }
}

/// What crossed the link.
#[derive(Default)]
struct Wire {
    lost: u64,
    /// SYNs (without ACK) by source address, and when the first and the
    /// last were carried (simulated ns).
    syns: HashMap<Ipv4Addr, u64>,
    first_syn_ns: Option<u64>,
    last_syn_ns: u64,
}

/// Moves the frames `from` sent to `to`, dropping IPv4 ones with `loss`.
fn carry(
    from: &mut MemQueue,
    to: &mut MemQueue,
    rng: &mut SmallRng,
    loss: f64,
    wire: &mut Wire,
    now_ns: u64,
) -> u64 {
    let mut lost = 0;
    for f in from.tx.drain(..) {
        let v = f.into_vec();
        // Ethernet + IPv4 (20 B) + TCP flags at 13: SYN alone.
        if v.get(12..14) == Some(&[8, 0]) && v.get(23) == Some(&6) && v.get(47) == Some(&0x02) {
            let src = Ipv4Addr::new(v[26], v[27], v[28], v[29]);
            *wire.syns.entry(src).or_default() += 1;
            wire.first_syn_ns.get_or_insert(now_ns);
            wire.last_syn_ns = now_ns;
        }
        if v.get(12..14) == Some(&[8, 0]) && rng.random::<f64>() < loss {
            lost += 1;
            continue;
        }
        to.rx.push_back(VecFrame::from_bytes(&v));
    }
    lost
}

struct Outcome {
    client: qsplice_loadgen::LoadgenStats,
    lat: qsplice_loadgen::Latencies,
    server: qsplice_loadgen::LoadgenStats,
    server_conns: usize,
    finished: bool,
    lost: u64,
    wire: Wire,
    /// Simulated time when the client finished, ns after the start.
    elapsed_ns: u64,
    /// The most client sessions seen open at once with their TCP buffers
    /// parked, and the most open.
    parked_max: (usize, usize),
}

fn run(connections: u64, concurrency: u32, requests: u32, loss: f64, seed: u64) -> Outcome {
    run_with(connections, concurrency, requests, loss, seed, |_| {})
}

fn run_with(
    connections: u64,
    concurrency: u32,
    requests: u32,
    loss: f64,
    seed: u64,
    tweak: impl FnOnce(&mut ClientConf),
) -> Outcome {
    run_tls(connections, concurrency, requests, loss, seed, tweak, None)
}

fn run_tls(
    connections: u64,
    concurrency: u32,
    requests: u32,
    loss: f64,
    seed: u64,
    tweak: impl FnOnce(&mut ClientConf),
    server_tls: Option<Arc<TlsContext>>,
) -> Outcome {
    run_framed(
        connections,
        concurrency,
        requests,
        (loss, seed),
        tweak,
        server_tls,
        BodyFraming::Length,
    )
}

fn run_framed(
    connections: u64,
    concurrency: u32,
    requests: u32,
    (loss, seed): (f64, u64),
    tweak: impl FnOnce(&mut ClientConf),
    server_tls: Option<Arc<TlsContext>>,
    framing: BodyFraming,
) -> Outcome {
    run_servers(
        connections,
        concurrency,
        requests,
        (loss, seed),
        tweak,
        server_tls,
        framing,
        &[],
        |_| {},
    )
}

/// [`run_framed`] with a server that also answers on `also` (its port
/// holds them too), its settings tweaked.
#[allow(clippy::too_many_arguments)]
fn run_servers(
    connections: u64,
    concurrency: u32,
    requests: u32,
    (loss, seed): (f64, u64),
    tweak: impl FnOnce(&mut ClientConf),
    server_tls: Option<Arc<TlsContext>>,
    framing: BodyFraming,
    also: &[Ipv4Addr],
    stweak: impl FnOnce(&mut ServerConf),
) -> Outcome {
    let clock = ManualClock::default();
    clock.advance_ms(1000);
    let response = qsplice_loadgen::Responses::new(build_response(BODY, framing));
    let mut sc = ServerConf {
        port: 0,
        listen: SocketAddrV4::new(SERVER_IP, 80),
        also: also.to_vec(),
        response,
        close_after_response: framing == BodyFraming::Close,
        tls: server_tls,
        max_conns: 4096,
        tcp: tcp(),
        hz: 1_000_000_000,
    };
    stweak(&mut sc);
    let server = LoadgenServer::new(sc);
    let mut cc = ClientConf {
        port: 0,
        locals: vec![CLIENT_IP],
        sport_min: 20_000,
        sport_max: 20_255,
        target: SocketAddrV4::new(SERVER_IP, 80),
        connections,
        concurrency,
        rate: 0,
        requests,
        think_us: 0,
        request: b"GET /3k HTTP/1.1\r\nHost: lcore.test\r\n\r\n".to_vec(),
        head: false,
        tls: None,
        tcp: tcp(),
        hz: 1_000_000_000,
    };
    tweak(&mut cc);
    let client_ips = cc.locals.clone();
    let client = LoadgenClient::new(cc);
    let server_ips: Vec<Ipv4Addr> = std::iter::once(SERVER_IP)
        .chain(also.iter().copied())
        .collect();
    let mut ws = Worker::with_service(
        econf(),
        port([2, 0x50, 0, 0, 0, 1], &server_ips),
        clock.clone(),
        Arc::new(SharedCounters::default()),
        None,
        server,
    );
    let mut wc = Worker::with_service(
        econf(),
        port([2, 0x50, 0, 0, 0, 2], &client_ips),
        clock.clone(),
        Arc::new(SharedCounters::default()),
        None,
        client,
    );
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut wire = Wire::default();
    let mut elapsed_ns = 0;
    let mut parked_max = (0, 0);
    // 100 µs steps, at most 60 simulated seconds.
    for step in 1..=600_000u64 {
        clock.advance_ns(100_000);
        let t = step * 100_000;
        wc.poll();
        wc.finish();
        wire.lost += carry(
            wc.queue_mut(0),
            ws.queue_mut(0),
            &mut rng,
            loss,
            &mut wire,
            t,
        );
        ws.poll();
        ws.finish();
        wire.lost += carry(
            ws.queue_mut(0),
            wc.queue_mut(0),
            &mut rng,
            loss,
            &mut wire,
            t,
        );
        if wc.service().is_finished() && elapsed_ns == 0 {
            elapsed_ns = t;
        }
        let (open, parked) = wc.service().parked();
        parked_max = (parked_max.0.max(parked), parked_max.1.max(open));
        if wc.service().is_finished() && ws.service().conns() == 0 {
            break;
        }
    }
    Outcome {
        client: wc.service().stats().clone(),
        lat: wc.service().latencies().clone(),
        server: ws.service().stats().clone(),
        server_conns: ws.service().conns(),
        finished: wc.service().is_finished(),
        lost: wire.lost,
        wire,
        elapsed_ns,
        parked_max,
    }
}

#[test]
fn clients_and_servers_on_two_lcores_exchange_every_request() {
    let o = run(300, 32, 3, 0.0, 1);
    assert!(o.finished);
    let c = &o.client;
    assert_eq!(
        (c.opened, c.connected, c.completed, c.failed),
        (300, 300, 300, 0),
        "{c:?}"
    );
    assert_eq!((c.responses, c.status_2xx, c.bad_responses), (900, 900, 0));
    assert_eq!(c.body_bytes, 900 * BODY as u64);
    assert_eq!(c.segs_dropped, 0);
    let s = &o.server;
    assert_eq!(
        (s.opened, s.connected, s.responses),
        (300, 300, 900),
        "{s:?}"
    );
    assert_eq!(s.completed, 300);
    assert_eq!(o.server_conns, 0);
    // Throughput each way: no loss, so what one side sent the other got.
    assert_eq!((c.tx_bytes, c.rx_bytes), (s.rx_bytes, s.tx_bytes));
    assert!(c.rx_bytes > 900 * BODY as u64 && c.tx_bytes >= 900 * 30);
    // Latency histograms: one connect time per connection, one
    // first-byte and one whole-response time per response.
    assert_eq!(o.lat.connect.len(), 300);
    assert_eq!((o.lat.first_byte.len(), o.lat.response.len()), (900, 900));
    assert!(o.lat.response.value_at_quantile(0.5) >= o.lat.first_byte.value_at_quantile(0.5));
    // One whole-connection time per connection (its third response), longer
    // than any of its responses and than its connect.
    assert_eq!(o.lat.connection.len(), 300);
    assert!(o.lat.connection.min() >= o.lat.response.min() + o.lat.connect.min());
    assert!(c.response_us_sum > 0 && c.connect_us_sum > 0);
    // One SYN per connection (no loss), all from the one address.
    assert_eq!(o.wire.syns.get(&CLIENT_IP), Some(&300));
}

#[test]
fn several_source_addresses_take_turns() {
    let ips = [
        CLIENT_IP,
        Ipv4Addr::new(10, 50, 0, 3),
        Ipv4Addr::new(10, 50, 0, 4),
    ];
    // Two source ports per address: 6 slots for 8 at once, so 6 at once;
    // each 4-tuple is reused 20 times.
    let o = run_with(120, 8, 2, 0.0, 3, |c| {
        c.locals = ips.to_vec();
        c.sport_max = c.sport_min + 1;
    });
    assert!(o.finished);
    assert_eq!(
        (o.client.completed, o.client.failed),
        (120, 0),
        "{:?}",
        o.client
    );
    assert_eq!(o.client.responses, 240);
    for ip in ips {
        assert_eq!(o.wire.syns.get(&ip), Some(&40), "{:?}", o.wire.syns);
    }
}

#[test]
fn a_rate_paces_new_connections() {
    // 1,000 connections/s: 200 connections take ≈ 199 ms from the first
    // SYN to the last, whatever the concurrency allows.
    let o = run_with(200, 64, 1, 0.0, 4, |c| c.rate = 1000);
    assert!(o.finished);
    assert_eq!(
        (o.client.completed, o.client.behind),
        (200, 0),
        "{:?}",
        o.client
    );
    let span = o.wire.last_syn_ns - o.wire.first_syn_ns.unwrap();
    assert!(
        (198_000_000..=201_000_000).contains(&span),
        "first to last SYN: {span} ns"
    );
}

#[test]
fn a_rate_above_what_concurrency_allows_counts_late_connections() {
    // One connection at a time cannot keep 100,000/s: most open late.
    let o = run_with(50, 1, 1, 0.0, 5, |c| c.rate = 100_000);
    assert!(o.finished);
    assert_eq!(o.client.completed, 50);
    assert!(o.client.behind >= 40, "{:?}", o.client);
}

#[test]
fn think_time_spaces_the_requests_of_a_connection() {
    // 3 requests with 40 ms between a response and the next request:
    // every connection lasts ≥ 80 ms; responses themselves stay fast.
    let o = run_with(10, 10, 3, 0.0, 6, |c| c.think_us = 40_000);
    assert!(o.finished);
    assert_eq!((o.client.completed, o.client.responses), (10, 30));
    assert!(o.elapsed_ns >= 80_000_000, "{} ns", o.elapsed_ns);
    // Waiting out the think time, every connection is at rest and holds
    // no TCP buffer (its record only).
    assert_eq!(o.parked_max, (10, 10));
    assert!(o.elapsed_ns < 120_000_000, "{} ns", o.elapsed_ns);
    assert!(o.lat.response.max() < 20_000, "{}", o.lat.response.max());
}

#[test]
fn one_percent_loss_each_way_still_answers_every_request() {
    let o = run(200, 16, 4, 0.01, 9);
    assert!(o.lost > 0);
    assert!(o.finished, "{:?}", o.client);
    let c = &o.client;
    assert_eq!((c.completed, c.failed), (200, 0), "{c:?}");
    assert_eq!((c.responses, c.status_2xx), (800, 800));
    assert_eq!(c.body_bytes, 800 * BODY as u64);
    assert_eq!(o.server.responses, 800, "{:?}", o.server);
    // The server ends every connection cleanly and holds none.
    assert_eq!(
        (o.server.completed, o.server.failed),
        (200, 0),
        "{:?}",
        o.server
    );
    assert_eq!(o.server_conns, 0);
}

#[test]
fn a_server_with_several_addresses_answers_on_each_from_that_address() {
    let second = Ipv4Addr::new(10, 50, 0, 9);
    let o = run_servers(
        40,
        8,
        2,
        (0.0, 14),
        |c| c.target = SocketAddrV4::new(second, 80),
        None,
        BodyFraming::Length,
        &[second],
        |_| {},
    );
    // The client takes segments from its target only: every one came
    // from the second address.
    assert!(o.finished, "{:?}", o.client);
    assert_eq!((o.client.completed, o.client.responses), (40, 80));
    assert_eq!(o.client.segs_dropped, 0);
    assert_eq!((o.server.responses, o.server.segs_dropped), (80, 0));
}

#[test]
fn post_bodies_are_read_past_and_every_request_answered() {
    // 5,000-byte bodies that contain request-looking bytes, 3 requests per
    // connection, 1 % loss: the server skips each body by its length.
    let mut req = b"POST /3k HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n".to_vec();
    let fake = b"GET / HTTP/1.1\r\n\r\n";
    req.extend((0..5000).map(|i| fake[i % fake.len()]));
    let o = run_with(40, 8, 3, 0.01, 18, |c| c.request = req);
    assert!(o.finished, "{:?}", o.client);
    assert_eq!((o.client.completed, o.client.responses), (40, 120));
    assert_eq!(o.client.body_bytes, 120 * BODY as u64);
    assert_eq!(o.server.responses, 120, "{:?}", o.server);
}

#[test]
fn a_server_answers_each_path_with_its_own_body() {
    // The client asks for /3k: that path's body, not the default one.
    let o = run_servers(
        20,
        4,
        3,
        (0.01, 16),
        |_| {},
        None,
        BodyFraming::Length,
        &[],
        |s| {
            s.response = qsplice_loadgen::Responses::new(build_response(7, BodyFraming::Length));
            s.response
                .add_path("/other", build_response(1, BodyFraming::Length));
            s.response
                .add_path("/3k", build_response(BODY, BodyFraming::Length));
        },
    );
    assert!(o.finished, "{:?}", o.client);
    assert_eq!((o.client.completed, o.client.responses), (20, 60));
    assert_eq!(o.client.body_bytes, 60 * BODY as u64);
    // Another path: the default body.
    let o = run_servers(
        5,
        5,
        2,
        (0.0, 17),
        |c| c.request = b"GET /3kb?x=1 HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
        None,
        BodyFraming::Length,
        &[],
        |s| {
            s.response = qsplice_loadgen::Responses::new(build_response(7, BodyFraming::Length));
            s.response
                .add_path("/3k", build_response(BODY, BodyFraming::Length));
        },
    );
    assert_eq!((o.client.responses, o.client.body_bytes), (10, 70));
}

/// A server certificate for `lcore.test` from a lab CA: the server's TLS
/// context and the CA's PEM.
fn tls_server(tag: &str) -> (Arc<TlsContext>, String, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("qs-lg-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = LabCa::new().unwrap();
    let leaf = ca.leaf(KeyAlg::EcdsaP256, &["lcore.test"]).unwrap();
    let (cert, key) = (dir.join("leaf.pem"), dir.join("leaf.key"));
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    let ctx = TlsContext::new(&TlsSettings {
        certs: vec![CertSpec {
            cert,
            key,
            names: vec![],
            ocsp: None,
        }],
        ..TlsSettings::default()
    })
    .unwrap();
    (Arc::new(ctx), ca.cert_pem(), dir)
}

fn client_tls(ca: &str, groups: Vec<Group>, tls12: bool, per_mille: u32) -> ClientTls {
    let settings = |resumption| ClientSettings {
        groups: groups.clone(),
        tls13: !tls12,
        tls12,
        ca_pem: Some(ca.to_string()),
        resumption,
    };
    ClientTls {
        resuming: client_config(&settings(true)).unwrap(),
        fresh: client_config(&settings(false)).unwrap(),
        name: ServerName::try_from("lcore.test").unwrap(),
        resume_per_mille: per_mille,
    }
}

#[test]
fn https_clients_and_servers_hybrid_tls13_and_tls12_with_resumption() {
    let (ctx, ca, dir) = tls_server("https");
    // TLS 1.3 with X25519MLKEM768, half the connections resuming: every
    // request answered through TLS; both sides count the same handshakes.
    let t = client_tls(&ca, vec![Group::X25519MlKem768, Group::X25519], false, 500);
    let o = run_tls(60, 8, 2, 0.0, 7, |c| c.tls = Some(t), Some(ctx.clone()));
    assert!(o.finished, "{:?}", o.client);
    let c = &o.client;
    assert_eq!((c.completed, c.failed, c.tls_failed), (60, 0, 0), "{c:?}");
    assert_eq!(
        (c.responses, c.status_2xx, c.body_bytes),
        (120, 120, 120 * BODY as u64)
    );
    assert_eq!((c.tls_handshakes, c.tls13), (60, 60), "{c:?}");
    assert_eq!(o.server.responses, 120, "{:?}", o.server);
    assert_eq!(o.server.tls_handshakes, 60, "{:?}", o.server);
    // 30 connections offer a session; the first few cannot (no ticket yet).
    assert!((20..=30).contains(&c.tls_resumed), "{c:?}");
    assert_eq!(o.server.tls_resumed, c.tls_resumed);
    // Full handshakes are hybrid; resumed TLS 1.3 ones too (psk_dhe_ke).
    assert_eq!(c.tls_pq, 60, "{c:?}");
    assert_eq!(o.lat.tls_handshake.len(), 60);

    // TLS 1.2 (P-256), every connection resuming after the first, under
    // 1 % loss each way.
    let t = client_tls(&ca, vec![Group::P256], true, 1000);
    let o = run_tls(40, 4, 3, 0.01, 8, |c| c.tls = Some(t), Some(ctx.clone()));
    assert!(o.finished, "{:?}", o.client);
    let c = &o.client;
    assert_eq!((c.completed, c.failed, c.responses), (40, 0, 120), "{c:?}");
    assert_eq!((c.tls_handshakes, c.tls13), (40, 0), "{c:?}");
    assert!(c.tls_resumed >= 30, "{c:?}");

    // A client that trusts another CA: every handshake fails, counted.
    let other = LabCa::new().unwrap().cert_pem();
    let t = client_tls(&other, vec![Group::X25519], false, 0);
    let o = run_tls(5, 5, 1, 0.0, 9, |c| c.tls = Some(t), Some(ctx));
    assert!(o.finished, "{:?}", o.client);
    assert_eq!(
        (o.client.tls_failed, o.client.failed, o.client.responses),
        (5, 5, 0),
        "{:?}",
        o.client
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn chunked_and_close_delimited_responses_are_read_whole() {
    // Chunked bodies (chunks of 700 bytes), 3 keep-alive requests each,
    // under 1 % loss.
    let o = run_framed(
        60,
        8,
        3,
        (0.01, 11),
        |_| {},
        None,
        BodyFraming::Chunked(700),
    );
    assert!(o.finished, "{:?}", o.client);
    let c = &o.client;
    assert_eq!((c.completed, c.failed, c.responses), (60, 0, 180), "{c:?}");
    assert_eq!(c.body_bytes, 180 * BODY as u64);
    // Close-delimited: one request per connection, the server closes.
    let o = run_framed(60, 8, 1, (0.0, 12), |_| {}, None, BodyFraming::Close);
    assert!(o.finished, "{:?}", o.client);
    let c = &o.client;
    assert_eq!((c.completed, c.failed, c.responses), (60, 0, 60), "{c:?}");
    assert_eq!(c.body_bytes, 60 * BODY as u64);
    assert_eq!(o.server_conns, 0);
    // Asking for two requests where the server closes after one: each
    // connection fails as closed early, its one response counted.
    let o = run_framed(10, 4, 2, (0.0, 13), |_| {}, None, BodyFraming::Close);
    let c = &o.client;
    assert_eq!(
        (c.failed, c.closed_early, c.responses),
        (10, 10, 10),
        "{c:?}"
    );
}

/// Two client lcores against two server lcores, each side's frames spread
/// over its lcores at random (the worst a port's receive distribution can
/// do: af_packet's rollover, one AF_XDP queue for all): every segment
/// reaches the lcore that owns its connection through the steering
/// inboxes, with 1 % loss each way; neighbours learned by one lcore are
/// relayed to the other as `qsplice loadgen`'s control thread does.
#[test]
fn segments_reach_the_lcore_owning_their_connection_on_two_lcores_each_side() {
    use qsplice_engine::{ControlLink, CoreCmd, CoreEvent};
    use qsplice_loadgen::{client_ports, server_owner, Steering};
    let n = 2;
    let clock = ClockPair::new();
    let (lo, hi) = (20_000u16, 20_255u16);
    const LOSS: f64 = 0.01;
    let cs = Arc::new(Steering::new(n, 1024));
    let ss = Arc::new(Steering::new(n, 1024));
    let mut links: [Vec<ControlLink>; 2] = [vec![], vec![]];
    let mut clients = Vec::new();
    let mut servers = Vec::new();
    for k in 0..n {
        let (a, b) = client_ports(lo, hi, n, k);
        let cc = ClientConf {
            port: 0,
            locals: vec![CLIENT_IP],
            sport_min: a,
            sport_max: b,
            target: SocketAddrV4::new(SERVER_IP, 80),
            connections: 150,
            concurrency: 16,
            rate: 0,
            requests: 3,
            think_us: 0,
            request: b"GET /3k HTTP/1.1\r\nHost: lcore.test\r\n\r\n".to_vec(),
            head: false,
            tls: None,
            tcp: tcp(),
            hz: 1_000_000_000,
        };
        let lc = ControlLink::new(64);
        links[0].push(lc.clone());
        clients.push(Worker::with_service(
            EngineConf {
                primary: k == 0,
                ..econf()
            },
            port([2, 0x50, 0, 0, 0, 2], &[CLIENT_IP]),
            clock.0.clone(),
            Arc::new(SharedCounters::default()),
            Some(lc),
            LoadgenClient::new(cc).with_steering(k, cs.clone(), lo, hi),
        ));
        let ls = ControlLink::new(64);
        links[1].push(ls.clone());
        servers.push(Worker::with_service(
            EngineConf {
                primary: k == 0,
                ..econf()
            },
            port([2, 0x50, 0, 0, 0, 1], &[SERVER_IP]),
            clock.0.clone(),
            Arc::new(SharedCounters::default()),
            Some(ls),
            LoadgenServer::new(ServerConf {
                port: 0,
                listen: SocketAddrV4::new(SERVER_IP, 80),
                also: vec![],
                response: qsplice_loadgen::Responses::new(build_response(
                    BODY,
                    BodyFraming::Length,
                )),
                close_after_response: false,
                tls: None,
                max_conns: 2048,
                tcp: tcp(),
                hz: 1_000_000_000,
            })
            .with_steering(k, ss.clone()),
        ));
    }
    let mut rng = SmallRng::seed_from_u64(21);
    let (mut lost, mut syn_ports_ok) = (0u64, true);
    for _ in 0..600_000u64 {
        clock.0.advance_ns(100_000);
        for w in clients.iter_mut() {
            w.poll();
            w.finish();
        }
        for w in servers.iter_mut() {
            w.poll();
            w.finish();
        }
        // Each side's frames go to a random lcore of the other side.
        for (k, c) in clients.iter_mut().enumerate() {
            for f in c.queue_mut(0).tx.drain(..).collect::<Vec<_>>() {
                let v = f.into_vec();
                if v.get(23) == Some(&6) && v.get(47) == Some(&0x02) {
                    let sport = u16::from_be_bytes([v[34], v[35]]);
                    let (a, b) = client_ports(lo, hi, n, k);
                    syn_ports_ok &= (a..=b).contains(&sport);
                }
                if v.get(12..14) == Some(&[8, 0]) && rng.random::<f64>() < LOSS {
                    lost += 1;
                    continue;
                }
                let to = rng.random_range(0..n);
                servers[to]
                    .queue_mut(0)
                    .rx
                    .push_back(VecFrame::from_bytes(&v));
            }
        }
        for s in servers.iter_mut() {
            for f in s.queue_mut(0).tx.drain(..).collect::<Vec<_>>() {
                let v = f.into_vec();
                if v.get(12..14) == Some(&[8, 0]) && rng.random::<f64>() < LOSS {
                    lost += 1;
                    continue;
                }
                let to = rng.random_range(0..n);
                clients[to]
                    .queue_mut(0)
                    .rx
                    .push_back(VecFrame::from_bytes(&v));
            }
        }
        // The control thread's neighbour relay.
        for side in &links {
            for (i, l) in side.iter().enumerate() {
                while let Some(CoreEvent::NeighLearned { port, ip, mac }) = l.events.pop() {
                    for (j, o) in side.iter().enumerate() {
                        if j != i {
                            let _ = o.cmds.push(CoreCmd::Neigh { port, ip, mac });
                        }
                    }
                }
            }
        }
        if clients.iter().all(|c| c.service().is_finished())
            && servers.iter().all(|s| s.service().conns() == 0)
        {
            break;
        }
    }
    assert!(LOSS == 0.0 || lost > 0);
    assert!(syn_ports_ok, "a client lcore used another's source port");
    let mut c = qsplice_loadgen::LoadgenStats::default();
    let mut s = qsplice_loadgen::LoadgenStats::default();
    for w in &clients {
        assert!(w.service().is_finished(), "{:?}", w.service().stats());
        assert_eq!(
            w.service().stats().completed,
            150,
            "{:?}",
            w.service().stats()
        );
        assert!(w.service().stats().steered > 0, "{:?}", w.service().stats());
        c.add(w.service().stats());
    }
    for w in &servers {
        assert!(w.service().stats().steered > 0, "{:?}", w.service().stats());
        s.add(w.service().stats());
    }
    assert_eq!((c.completed, c.failed, c.responses), (300, 0, 900), "{c:?}");
    assert_eq!(c.body_bytes, 900 * BODY as u64);
    assert_eq!((c.steer_full, s.steer_full), (0, 0));
    // Every server connection ends cleanly, even those whose last ACK was
    // lost (the client, keeping no TIME-WAIT, answers the retransmitted
    // FIN with a RST).
    // (A handshake answered for a stale duplicate SYN is refused by the
    // client and counts failed: opened = 300 + failed.)
    assert_eq!(
        (s.connected, s.completed, s.opened - s.failed, s.responses),
        (300, 300, 300, 900),
        "{s:?}"
    );
    assert!(servers.iter().all(|w| w.service().conns() == 0));
    // The owner function spreads client ports over both server lcores.
    let owners: std::collections::HashSet<usize> =
        (lo..=hi).map(|p| server_owner(CLIENT_IP, p, n)).collect();
    assert_eq!(owners.len(), 2);
}

struct ClockPair(ManualClock);

impl ClockPair {
    fn new() -> ClockPair {
        let c = ManualClock::default();
        c.advance_ms(1000);
        ClockPair(c)
    }
}
