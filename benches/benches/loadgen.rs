//! `qsplice-loadgen`'s sessions in memory, no I/O: whole HTTP/1.1
//! connections — SYN, SYN-ACK, ACK, request, response, FINs — between a
//! [`ClientSession`] and a [`ServerSession`] (passive open included), the
//! TCP segments written and parsed as on the wire (headers, options) and
//! handed over in reused buffers, both sides on this one core. Elements/s
//! = complete connections (one request each, 100-byte body) per second
//! for the pair — the sans-IO ceiling of the "new connections/s per core
//! pair" figure (frames, IP and the NIC come on top).
//!
//! `loadgen/lcore_pair`: the same exchange through two engine workers on
//! in-memory queues, one running [`LoadgenClient`] and one
//! [`LoadgenServer`] (Ethernet, ARP, IPv4 header and TCP checksum checks,
//! the slot and connection tables, timers), frames moved between them —
//! both workers on this one core, so the figure is per core *pair*
//! halved. The in-memory queue allocates a `Vec` per frame, which a
//! mempool would not: an upper bound on the per-connection cost.
//!
//! `cargo bench -p qsplice-benches --bench loadgen`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qsplice_engine::{ArpConf, EngineConf, IfAddr, PortSetup, SharedCounters, Worker};
use qsplice_loadgen::{
    ClientConf, ClientEvent, ClientSession, LoadgenClient, LoadgenServer, PassiveOpen, ServerConf,
    ServerSession,
};
use qsplice_netdev::mem::{ManualClock, MemQueue};
use qsplice_tcp::{Config, Now, Segment, MAX_SEGS_PER_CALL};

const REQ: &[u8] = b"GET /100 HTTP/1.1\r\nHost: loadgen.test\r\n\r\n";

/// Segments in flight one way, in one reused buffer.
#[derive(Default)]
struct Queue {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Queue {
    fn push(&mut self, s: &qsplice_tcp::SegmentOut<'_>) {
        let at = self.data.len();
        self.data.resize(at + s.len(), 0);
        s.write(&mut self.data[at..], 40000, 80);
        self.ends.push(self.data.len());
    }
    fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }
}

struct Pair {
    cfg: Config,
    resp: qsplice_loadgen::Responses,
    c2s: Queue,
    s2c: Queue,
}

impl Pair {
    /// One whole connection; returns the responses read (1).
    fn connection(&mut self, iss: u32, t0: u64) -> u32 {
        let cfg = self.cfg.clone();
        let mut t = t0;
        let now = |t: u64| Now {
            us: t,
            tsval: (t / 1000) as u32,
        };
        let mut c = ClientSession::connect(&cfg, iss, 1, false, now(t));
        let mut po: Option<PassiveOpen> = None;
        let mut srv: Option<ServerSession> = None;
        let mut answered = 0;
        for _ in 0..64 {
            let mut ev = |e: ClientEvent| {
                if let ClientEvent::Response { .. } = e {
                    answered += 1;
                }
            };
            c.step(REQ, now(t), &mut ev);
            self.c2s.clear();
            let q = &mut self.c2s;
            c.endpoint().output(now(t), MAX_SEGS_PER_CALL, |s| {
                q.push(s);
                true
            });
            self.s2c.clear();
            let mut start = 0;
            for &end in &self.c2s.ends {
                let Some(seg) = Segment::parse(&self.c2s.data[start..end]) else {
                    start = end;
                    continue;
                };
                start = end;
                match (&mut srv, &po) {
                    (Some(s), _) => s.endpoint().input(&seg, now(t)),
                    (None, Some(p)) => {
                        if let Some(ep) = p.complete(&cfg, &seg, now(t)) {
                            srv = Some(ServerSession::new(ep));
                        }
                    }
                    (None, None) => {
                        if let Some(p) = PassiveOpen::answer(&cfg, &seg, !iss, now(t)) {
                            self.s2c.push(&p.syn_ack());
                            po = Some(p);
                        }
                    }
                }
            }
            if let Some(s) = srv.as_mut() {
                s.step(&self.resp);
                let q = &mut self.s2c;
                s.endpoint().output(now(t), MAX_SEGS_PER_CALL, |seg| {
                    q.push(seg);
                    true
                });
                s.step(&self.resp);
            }
            let mut start = 0;
            for &end in &self.s2c.ends {
                if let Some(seg) = Segment::parse(&self.s2c.data[start..end]) {
                    c.endpoint().input(&seg, now(t));
                }
                start = end;
            }
            c.step(REQ, now(t), &mut ev);
            if c.is_done() && srv.as_ref().is_none_or(ServerSession::is_closed) {
                break;
            }
            t += 10;
        }
        answered
    }
}

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

/// `n` connections (one request each, 100-byte body, 64 at once) from a
/// client worker to a server worker; the wall time they took.
fn lcore_pair(n: u64, cfg: &Config, resp: &[u8]) -> Duration {
    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 60, 0, 2);
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 60, 0, 1);
    let clock = ManualClock::default();
    clock.advance_ms(1000);
    let server = LoadgenServer::new(ServerConf {
        port: 0,
        listen: SocketAddrV4::new(SERVER, 80),
        also: vec![],
        response: qsplice_loadgen::Responses::new(resp.to_vec()),
        close_after_response: false,
        max_conns: 4096,
        tls: None,
        tcp: cfg.clone(),
        hz: 1_000_000_000,
    });
    let client = LoadgenClient::new(ClientConf {
        port: 0,
        locals: vec![CLIENT],
        sport_min: 20_000,
        sport_max: 60_999,
        target: SocketAddrV4::new(SERVER, 80),
        connections: n,
        concurrency: 64,
        rate: 0,
        requests: 1,
        think_us: 0,
        request: REQ.to_vec(),
        head: false,
        tls: None,
        tcp: cfg.clone(),
        hz: 1_000_000_000,
    });
    let counters = || Arc::new(SharedCounters::default());
    let mut ws = Worker::with_service(
        econf(),
        port([2, 0, 0, 0, 0, 1], SERVER),
        clock.clone(),
        counters(),
        None,
        server,
    );
    let mut wc = Worker::with_service(
        econf(),
        port([2, 0, 0, 0, 0, 2], CLIENT),
        clock.clone(),
        counters(),
        None,
        client,
    );
    let carry = |from: &mut MemQueue, to: &mut MemQueue| {
        for f in from.tx.drain(..) {
            to.rx.push_back(f);
        }
    };
    let t0 = Instant::now();
    // 10 µs of simulated time per round.
    for _ in 0..100_000_000u64 {
        clock.advance_ns(10_000);
        wc.poll();
        wc.finish();
        carry(wc.queue_mut(0), ws.queue_mut(0));
        ws.poll();
        ws.finish();
        carry(ws.queue_mut(0), wc.queue_mut(0));
        if wc.service().is_finished() {
            break;
        }
    }
    let took = t0.elapsed();
    let st = wc.service().stats();
    assert_eq!((st.completed, st.failed), (n, 0), "{st:?}");
    took
}

fn bench(c: &mut Criterion) {
    let cfg = Config {
        time_wait_us: 0,
        rcv_buf: 16 * 1024,
        snd_buf: 16 * 1024,
        ..Config::default()
    };
    let mut resp = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec();
    resp.extend([b'x'; 100]);
    let mut p = Pair {
        cfg,
        resp: qsplice_loadgen::Responses::new(resp.clone()),
        c2s: Queue::default(),
        s2c: Queue::default(),
    };
    assert_eq!(p.connection(1, 0), 1, "a connection gets its answer");
    let mut g = c.benchmark_group("loadgen");
    g.throughput(Throughput::Elements(1));
    let mut iss = 7u32;
    let mut t = 1_000_000u64;
    g.bench_function("http_connection", |b| {
        b.iter(|| {
            iss = iss.wrapping_add(100_000);
            t += 1_000;
            black_box(p.connection(iss, t))
        })
    });
    let cfg = p.cfg.clone();
    g.bench_function("lcore_pair", |b| {
        b.iter_custom(|iters| lcore_pair(iters.max(64), &cfg, &resp))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
