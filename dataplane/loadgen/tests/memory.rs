//! What an established connection at rest costs in memory (issue 16:
//! ≤ 2 KB per connection without TLS, ≤ 16 KB with): a client lcore and a
//! server lcore (engine workers on in-memory queues) open connections
//! that each answer one request and then wait out a long think time;
//! the heap they hold then, less the lcores' buffer pools, per
//! connection, counted by a counting global allocator. One test per
//! binary: the allocator counts the whole process.

use std::alloc::System;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use qsplice_engine::{ArpConf, EngineConf, IfAddr, PortSetup, SharedCounters, Worker};
use qsplice_loadgen::{
    build_response, BodyFraming, ClientConf, ClientTls, LoadgenClient, LoadgenServer, Responses,
    ServerConf,
};
use qsplice_netdev::mem::{ManualClock, MemQueue, VecFrame};
use qsplice_tcp::Config;
use qsplice_tls::certgen::{KeyAlg, LabCa};
use qsplice_tls::certs::CertSpec;
use qsplice_tls::client::{client_config, ClientSettings, ServerName};
use qsplice_tls::{Group, TlsContext, TlsSettings};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 80, 0, 2);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 80, 0, 1);
const N: u64 = 64;

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
            name: "mem".into(),
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

/// Heap bytes per connection pair (client + server) at rest, pools
/// excluded.
fn at_rest(tls: bool) -> f64 {
    let tcp = Config {
        time_wait_us: 0,
        rcv_buf: 16 * 1024,
        snd_buf: 16 * 1024,
        ..Config::default()
    };
    let (server_tls, client_tls, dir) = if tls {
        let dir = std::env::temp_dir().join(format!("qs-lg-mem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = LabCa::new().unwrap();
        let leaf = ca.leaf(KeyAlg::EcdsaP256, &["mem.test"]).unwrap();
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
        let cfg = client_config(&ClientSettings {
            groups: vec![Group::X25519MlKem768],
            tls13: true,
            tls12: false,
            ca_pem: Some(ca.cert_pem()),
            resumption: false,
        })
        .unwrap();
        (
            Some(Arc::new(ctx)),
            Some(ClientTls {
                resuming: cfg.clone(),
                fresh: cfg,
                name: ServerName::try_from("mem.test").unwrap(),
                resume_per_mille: 0,
            }),
            Some(dir),
        )
    } else {
        (None, None, None)
    };
    let clock = ManualClock::default();
    clock.advance_ms(1000);
    let server = LoadgenServer::new(ServerConf {
        port: 0,
        listen: SocketAddrV4::new(SERVER, 80),
        also: vec![],
        response: Responses::new(build_response(100, BodyFraming::Length)),
        close_after_response: false,
        tls: server_tls,
        max_conns: 1024,
        tcp: tcp.clone(),
        hz: 1_000_000_000,
    });
    let client = LoadgenClient::new(ClientConf {
        port: 0,
        locals: vec![CLIENT],
        sport_min: 20_000,
        sport_max: 20_999,
        target: SocketAddrV4::new(SERVER, 80),
        connections: N,
        concurrency: N as u32,
        rate: 0,
        // Two requests, 60 s apart: after the first, every connection
        // waits at rest.
        requests: 2,
        think_us: 60_000_000,
        request: b"GET / HTTP/1.1\r\nHost: mem.test\r\n\r\n".to_vec(),
        head: false,
        tls: client_tls,
        tcp,
        hz: 1_000_000_000,
    });
    let mut ws = Worker::with_service(
        econf(),
        port([2, 0x80, 0, 0, 0, 1], SERVER),
        clock.clone(),
        Arc::new(SharedCounters::default()),
        None,
        server,
    );
    let mut wc = Worker::with_service(
        econf(),
        port([2, 0x80, 0, 0, 0, 2], CLIENT),
        clock.clone(),
        Arc::new(SharedCounters::default()),
        None,
        client,
    );
    let region = Region::new(GLOBAL);
    let carry = |from: &mut MemQueue, to: &mut MemQueue| {
        for f in from.tx.drain(..) {
            to.rx.push_back(VecFrame::from_bytes(&f.into_vec()));
        }
    };
    // 100 µs steps: every connection answered once, then 50 ms more
    // (delayed ACKs sent, timers quiet).
    let mut quiet_from = None;
    for step in 0..200_000u64 {
        clock.advance_ns(100_000);
        wc.poll();
        wc.finish();
        carry(wc.queue_mut(0), ws.queue_mut(0));
        ws.poll();
        ws.finish();
        carry(ws.queue_mut(0), wc.queue_mut(0));
        if quiet_from.is_none() && wc.service().stats().responses == N {
            quiet_from = Some(step);
        }
        if quiet_from.is_some_and(|q| step > q + 500) {
            break;
        }
    }
    let st = wc.service().stats();
    assert_eq!((st.connected, st.responses, st.failed), (N, N, 0), "{st:?}");
    assert_eq!(
        wc.service().parked(),
        (N as usize, N as usize),
        "all at rest"
    );
    let s = region.change();
    let live = s.bytes_allocated as f64 - s.bytes_deallocated as f64;
    let pools = (wc.service().pool_bytes() + ws.service().pool_bytes()) as f64;
    let per = (live - pools) / N as f64;
    eprintln!(
        "{}: {:.0} B per connection pair at rest (heap {:.0} B, pools {:.0} B, {} connections)",
        if tls {
            "TLS 1.3 X25519MLKEM768"
        } else {
            "plain TCP"
        },
        per,
        live,
        pools,
        N
    );
    drop((wc, ws));
    if let Some(d) = dir {
        let _ = std::fs::remove_dir_all(d);
    }
    per
}

#[test]
fn an_established_connection_at_rest_holds_its_record_only() {
    // Client and server side together: 2 × 2 KB without TLS, 2 × 16 KB
    // with (rustls' state, the sessions' records; no buffers).
    let plain = at_rest(false);
    assert!(plain <= 2.0 * 2048.0, "{plain} B per pair");
    let tls = at_rest(true);
    assert!(tls <= 2.0 * 16384.0, "{tls} B per pair with TLS");
}
