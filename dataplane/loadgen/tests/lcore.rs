//! A load-generator client lcore against a load-generator server lcore,
//! each a real engine worker on in-memory queues, wired back to back
//! (frames moved between them: Ethernet, ARP, IPv4, TCP checksums), with
//! and without loss.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use qsplice_engine::{ArpConf, EngineConf, IfAddr, PortSetup, SharedCounters, Worker};
use qsplice_loadgen::{ClientConf, LoadgenClient, LoadgenServer, ServerConf};
use qsplice_netdev::mem::{ManualClock, MemQueue, VecFrame};
use qsplice_tcp::Config;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

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

fn port(mac: [u8; 6], ip: Ipv4Addr) -> Vec<(MemQueue, PortSetup)> {
    vec![(
        MemQueue::new(mac),
        PortSetup {
            name: "lg".into(),
            addrs6: vec![],
            addrs: vec![IfAddr {
                addr: ip,
                prefix: 24,
            }],
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

/// Moves the frames `from` sent to `to`, dropping IPv4 ones with `loss`.
fn carry(from: &mut MemQueue, to: &mut MemQueue, rng: &mut SmallRng, loss: f64) -> u64 {
    let mut lost = 0;
    for f in from.tx.drain(..) {
        let v = f.into_vec();
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
    server: qsplice_loadgen::LoadgenStats,
    server_conns: usize,
    finished: bool,
    lost: u64,
}

fn run(connections: u64, concurrency: u32, requests: u32, loss: f64, seed: u64) -> Outcome {
    let clock = ManualClock::default();
    clock.advance_ms(1000);
    let mut response = format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\n\r\n").into_bytes();
    response.extend((0..BODY).map(|i| b'a' + (i % 26) as u8));
    let server = LoadgenServer::new(ServerConf {
        port: 0,
        listen: SocketAddrV4::new(SERVER_IP, 80),
        response,
        max_conns: 4096,
        tcp: tcp(),
        hz: 1_000_000_000,
    });
    let client = LoadgenClient::new(ClientConf {
        port: 0,
        local: CLIENT_IP,
        sport_min: 20_000,
        sport_max: 20_255,
        target: SocketAddrV4::new(SERVER_IP, 80),
        connections,
        concurrency,
        requests,
        request: b"GET /3k HTTP/1.1\r\nHost: lcore.test\r\n\r\n".to_vec(),
        head: false,
        tcp: tcp(),
        hz: 1_000_000_000,
    });
    let mut ws = Worker::with_service(
        econf(),
        port([2, 0x50, 0, 0, 0, 1], SERVER_IP),
        clock.clone(),
        Arc::new(SharedCounters::default()),
        None,
        server,
    );
    let mut wc = Worker::with_service(
        econf(),
        port([2, 0x50, 0, 0, 0, 2], CLIENT_IP),
        clock.clone(),
        Arc::new(SharedCounters::default()),
        None,
        client,
    );
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut lost = 0;
    // 100 µs steps, at most 60 simulated seconds.
    for _ in 0..600_000 {
        clock.advance_ns(100_000);
        wc.poll();
        wc.finish();
        lost += carry(wc.queue_mut(0), ws.queue_mut(0), &mut rng, loss);
        ws.poll();
        ws.finish();
        lost += carry(ws.queue_mut(0), wc.queue_mut(0), &mut rng, loss);
        if wc.service().is_finished() && ws.service().conns() == 0 {
            break;
        }
    }
    Outcome {
        client: wc.service().stats().clone(),
        server: ws.service().stats().clone(),
        server_conns: ws.service().conns(),
        finished: wc.service().is_finished(),
        lost,
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
    assert!(c.response_us_max > 0 && c.connect_us_max > 0);
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
}
