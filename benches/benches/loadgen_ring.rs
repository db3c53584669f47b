//! `qsplice loadgen` client and server back to back on DPDK's `net_ring`
//! PMD, one lcore each: the issue's "new connections per core pair"
//! figure measured on real DPDK (EAL, mempool, mbufs, ethdev rx/tx bursts,
//! the engine's ARP / IPv4 / TCP checks, the loadgen services), with
//! nothing but two `rte_ring`s as the wire (`rte_eth_from_rings`: what one
//! port transmits the other receives).
//!
//! ```text
//! cargo bench -p qsplice-benches --bench loadgen_ring [-- CONNECTIONS [tls]]
//! ```
//!
//! Plain: CONNECTIONS (default 1,000,000) HTTP/1.1 connections, one GET
//! and a 100-byte body each, 256 open at once; prints connections/s from
//! the first SYN to the last close (as the main thread sees the client's published counters, ±1 ms), against
//! the 500k/s target. `tls`: full X25519MLKEM768 TLS 1.3 handshakes
//! (CONNECTIONS default 5,000, no resumption), handshakes/s.
//!
//! EAL runs in memory (`--no-huge --no-pci`), lcores 1 and 2 on CPUs 0 and
//! 1 (the main lcore waits on CPU 0): on a 2-vCPU machine the pair takes
//! both.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qsplice_dpdk::{Eal, EthPort, Mempool, PortConf, Ring, TscClock};
use qsplice_engine::{ArpConf, EngineConf, IfAddr, PortSetup, SharedCounters, Worker};
use qsplice_loadgen::{
    ClientConf, ClientTls, LoadgenClient, LoadgenServer, Responses, ServerConf, SharedStats,
};
use qsplice_tcp::Config;

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 70, 0, 2);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 70, 0, 1);

fn econf(primary: bool) -> EngineConf {
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
        primary,
        kernel_poll_us: 100,
        kernel_max_pps: 0,
    }
}

fn setup(ip: Ipv4Addr) -> PortSetup {
    PortSetup {
        name: "ring".into(),
        addrs6: vec![],
        addrs: vec![IfAddr {
            addr: ip,
            prefix: 24,
        }],
        neighbors: vec![],
        gateway: None,
        neighbors6: vec![],
        gateway6: None,
    }
}

fn main() {
    // cargo bench passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let tls = args.iter().any(|a| a == "tls");
    let n: u64 =
        args.iter()
            .find_map(|a| a.parse().ok())
            .unwrap_or(if tls { 5_000 } else { 1_000_000 });
    let eal_args: Vec<String> = [
        "loadgen_ring",
        "--lcores",
        "0@0,1@0,2@1",
        "--main-lcore",
        "0",
        "--no-huge",
        "--no-pci",
        "-m",
        "512",
        "--log-level",
        "warning",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--file-prefix=qslgring{}", std::process::id())])
    .collect();
    let eal = Eal::init(&eal_args).expect("EAL");
    let pool = Mempool::create(eal, "lgring", 16383, 256, 2176, None).expect("mempool");
    let (pa, pb) = Ring::port_pair(eal, "lgr", 4096, None).expect("ring port pair");
    let pconf = PortConf {
        queues: 1,
        rx_desc: 1024,
        tx_desc: 1024,
        mtu: 1500,
        promiscuous: false,
        rss: false,
        mac: None,
    };
    let mut ca = EthPort::configure(eal, pa, &pconf, &[pool]).expect("client port");
    let mut cb = EthPort::configure(eal, pb, &pconf, &[pool]).expect("server port");
    // The ring PMD's ports have no address of their own (all zero, and
    // they refuse one): the queues answer ARP with these.
    let qa = ca
        .take_queues()
        .pop()
        .expect("queue")
        .with_mac([2, 0x70, 0, 0, 0, 2]);
    let qb = cb
        .take_queues()
        .pop()
        .expect("queue")
        .with_mac([2, 0x70, 0, 0, 0, 1]);
    let clock = TscClock::new(eal);
    let hz = qsplice_netdev::Clock::hz(&clock);
    let tcp = Config {
        time_wait_us: 0,
        rcv_buf: 16 * 1024,
        snd_buf: 16 * 1024,
        ..Config::default()
    };
    let (server_tls, client_tls) = if tls {
        use qsplice_tls::certgen::{KeyAlg, LabCa};
        let dir = std::env::temp_dir().join(format!("qs-lgring-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let ca = LabCa::new().expect("CA");
        let leaf = ca.leaf(KeyAlg::EcdsaP256, &["ring.test"]).expect("leaf");
        let (cert, key) = (dir.join("leaf.pem"), dir.join("leaf.key"));
        std::fs::write(&cert, &leaf.cert_pem).expect("cert");
        std::fs::write(&key, &leaf.key_pem).expect("key");
        let ctx = qsplice_tls::TlsContext::new(&qsplice_tls::TlsSettings {
            certs: vec![qsplice_tls::certs::CertSpec {
                cert,
                key,
                names: vec![],
                ocsp: None,
            }],
            groups: vec![qsplice_tls::Group::X25519MlKem768],
            ..qsplice_tls::TlsSettings::default()
        })
        .expect("server TLS");
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = qsplice_tls::client::client_config(&qsplice_tls::client::ClientSettings {
            groups: vec![qsplice_tls::Group::X25519MlKem768],
            tls13: true,
            tls12: false,
            ca_pem: Some(ca.cert_pem()),
            resumption: false,
        })
        .expect("client TLS");
        let name = qsplice_tls::client::ServerName::try_from("ring.test").expect("name");
        (
            Some(Arc::new(ctx)),
            Some(ClientTls {
                resuming: cfg.clone(),
                fresh: cfg,
                name,
                resume_per_mille: 0,
            }),
        )
    } else {
        (None, None)
    };
    let mut body = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec();
    body.resize(body.len() + 100, b'x');
    let server = ServerConf {
        port: 0,
        listen: SocketAddrV4::new(SERVER, 80),
        also: vec![],
        response: Responses::new(body),
        close_after_response: false,
        max_conns: 65_536,
        tls: server_tls,
        tcp: tcp.clone(),
        hz,
    };
    let client = ClientConf {
        port: 0,
        locals: vec![CLIENT],
        sport_min: 1024,
        sport_max: 65_535,
        target: SocketAddrV4::new(SERVER, 80),
        connections: n,
        concurrency: 256,
        rate: 0,
        requests: 1,
        think_us: 0,
        request: b"GET /100 HTTP/1.1\r\nHost: ring.test\r\n\r\n".to_vec(),
        head: false,
        tls: client_tls,
        tcp,
        hz,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (cs, ss) = (
        Arc::new(SharedStats::default()),
        Arc::new(SharedStats::default()),
    );
    let (cw, sw) = (
        Arc::new(SharedCounters::default()),
        Arc::new(SharedCounters::default()),
    );
    {
        let (stop, ss, sw) = (stop.clone(), ss.clone(), sw.clone());
        let clock = TscClock::new(eal);
        eal.launch(2, move || {
            let svc = LoadgenServer::new(server).with_shared(ss);
            let mut w = Worker::with_service(
                econf(false),
                vec![(qb, setup(SERVER))],
                clock,
                sw,
                None,
                svc,
            );
            w.run(&stop);
            0
        })
        .expect("launch the server");
    }
    let t0 = Instant::now();
    {
        let (stop, cs, cw) = (stop.clone(), cs.clone(), cw.clone());
        let clock = TscClock::new(eal);
        eal.launch(1, move || {
            let svc = LoadgenClient::new(client).with_shared(cs);
            let mut w =
                Worker::with_service(econf(true), vec![(qa, setup(CLIENT))], clock, cw, None, svc);
            w.run(&stop);
            0
        })
        .expect("launch the client");
    }
    let limit = Duration::from_secs(60);
    // The clock starts when the client's first connection shows (the
    // counters are published every tick, 1 ms): EAL's worker launch and
    // the first ARP exchange are not part of the rate.
    let mut first: Option<Instant> = None;
    while !cs.is_finished() && t0.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(1));
        if first.is_none() && cs.snapshot().opened > 0 {
            first = Some(Instant::now());
        }
        if t0.elapsed() > Duration::from_secs(5) && cs.snapshot().connected == 0 {
            eprintln!("no connection after 5 s: giving up");
            break;
        }
    }
    let took = first.unwrap_or(t0).elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    eal.wait(1);
    eal.wait(2);
    ca.stop();
    cb.stop();
    let (c, s) = (cs.snapshot(), ss.snapshot());
    let lat = cs.latencies();
    println!(
        "loadgen on a net_ring pair (DPDK {}), client lcore 1 / server lcore 2: {} connection(s){}",
        Eal::version(),
        n,
        if tls {
            ", TLS 1.3 X25519MLKEM768 full handshakes"
        } else {
            ""
        }
    );
    println!(
        "  client: completed {} failed {} responses {} (body {} B); server: responses {} handshakes {}",
        c.completed, c.failed, c.responses, c.body_bytes, s.responses, s.tls_handshakes
    );
    // How busy each lcore was: a poll that found nothing to do is idle.
    for (who, w) in [("client", cw.snapshot()), ("server", sw.snapshot())] {
        println!(
            "  {who} lcore: {} polls, {:.1} % idle, {:.2} frames in per busy poll, {} in / {} out",
            w.polls,
            100.0 * w.idle_polls as f64 / w.polls.max(1) as f64,
            w.rx_packets as f64 / (w.polls - w.idle_polls).max(1) as f64,
            w.rx_packets,
            w.tx_packets
        );
    }
    let rate = c.completed as f64 / took;
    if let Some(l) = lat {
        println!(
            "  connect p50 {} us, response p50 {} us p99 {} us",
            l.connect.value_at_quantile(0.5),
            l.response.value_at_quantile(0.5),
            l.response.value_at_quantile(0.99)
        );
    }
    if tls {
        println!(
            "  {:.0} full hybrid TLS handshakes/s for the pair ({} PQ) in {took:.2} s",
            c.tls_handshakes as f64 / took,
            c.tls_pq
        );
    } else {
        println!(
            "  {rate:.0} connections/s for the core pair in {took:.2} s (target 500,000/s: {:.2}x)",
            rate / 500_000.0
        );
    }
    assert_eq!(
        (c.completed, c.failed),
        (n, 0),
        "every connection completes"
    );
}
