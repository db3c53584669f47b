//! The balancer's whole per-segment path on one lcore: a spliced flow's
//! client data segment in, through the engine worker (Ethernet/IPv4/TCP
//! parse, VIP and flow lookup, `LbCore`'s splice forwarding: sequence,
//! acknowledgement, SACK and timestamp translation, NAT, checksums), and the
//! translated frame out on the backend port — `frame in → frame out`, on
//! in-memory queues with a manual clock.
//!
//! Next to it in the same run: `harness`, the same injection and poll with a
//! frame the engine drops at once (an unknown EtherType) — the cost of the
//! in-memory queues and the frame copy, to subtract; `--bench splice` has
//! `translate` alone (the floor of the translation).
//!
//! `spliced_client_burst` / `harness_burst`: the same with 32 segments per
//! poll (a full receive burst, as on a loaded lcore), per segment.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use crossbeam::queue::ArrayQueue;
use qsplice_engine::{ArpConf, EngineConf, IfAddr, PortSetup, SharedCounters, Worker};
use qsplice_lb::health::HealthShared;
use qsplice_lb::tcp::{write_segment, Segment, SynOptions};
use qsplice_lb::{BackendCounters, LbConf, LbCore, LbShared, PoolBoard, SharedLbCounters, VipConf};
use qsplice_netdev::mem::{ManualClock, MemQueue, VecFrame};
use qsplice_pool::{Backend, Policy, Snapshot};
use qsplice_splice::isn::IsnSecret;
use qsplice_wire::{MacAddr, TcpFlags, TcpPacket};

const CMAC: MacAddr = MacAddr([2, 0x51, 0, 0, 0, 1]);
const BMAC: MacAddr = MacAddr([2, 0x51, 0, 0, 0, 2]);
const CLIENT_MAC: MacAddr = MacAddr([2, 0xcc, 0, 0, 0, 1]);
const SERVER_MAC: MacAddr = MacAddr([2, 0xbb, 0, 0, 0, 1]);
const VIP_IP: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 1);
const LOCAL_IP: Ipv4Addr = Ipv4Addr::new(10, 10, 2, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 2);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 10, 2, 11);

type W = Worker<MemQueue, ManualClock, LbCore<VecFrame>>;

fn vip() -> SocketAddrV4 {
    SocketAddrV4::new(VIP_IP, 80)
}
fn client() -> SocketAddrV4 {
    SocketAddrV4::new(CLIENT_IP, 40001)
}
fn server() -> SocketAddrV4 {
    SocketAddrV4::new(SERVER_IP, 8080)
}

#[allow(clippy::too_many_arguments)]
fn seg(
    from: MacAddr,
    to: MacAddr,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    opts: &SynOptions,
    payload: &[u8],
) -> Vec<u8> {
    let mut ob = [0u8; 40];
    let n = if flags.contains(TcpFlags::SYN) {
        qsplice_lb::tcp::write_syn_options(&mut ob, opts)
    } else if let Some((a, b)) = opts.ts {
        qsplice_lb::tcp::write_ts_option(&mut ob, a, b)
    } else {
        0
    };
    let mut buf = vec![0u8; 2048];
    let len = write_segment(
        &mut buf,
        &Segment {
            src_mac: from,
            dst_mac: to,
            src,
            dst,
            seq,
            ack,
            flags,
            window: 500,
            options: &ob[..n],
            payload,
        },
    )
    .expect("segment");
    buf.truncate(len);
    buf
}

fn worker() -> (W, ManualClock) {
    let conf = LbConf {
        vips: vec![VipConf {
            addr: vip(),
            pool: 0,
            session_aware: false,
            open: true,
        }],
        client_port: 0,
        backend_port: 1,
        local: LOCAL_IP,
        sport_min: 10000,
        sport_max: 10999,
        lcore: 0,
        lcores: 1,
        max_flows: 1024,
        max_connecting: 16,
        syn_rto_ms: 200,
        syn_retries: 2,
        retries: 0,
        idle_timeout_ms: 86_400_000,
        linger_ms: 1000,
        client_mss: 1460,
        min_mss: 536,
        congestion: qsplice_lb::Congestion::Cubic,
        syn_backlog: 64,
        syn_rate: 0,
        backend_mss: 1460,
        vip_ws: 7,
        hz: 1_000_000_000,
        secret: IsnSecret::from_bytes([7; 16]),
        health_path: "/health".into(),
        health_status: 200,
        tls_vips: Vec::new(),
        tls_max_conns: 16,
        access_sample: 0,
        content: Vec::new(),
        kernel_ports: 0,
    };
    let clock = ManualClock::default();
    clock.advance_ms(5_000);
    let board = Arc::new(PoolBoard::new(vec![Snapshot::build(
        1,
        Policy::RoundRobin,
        vec![Backend::new(server())],
        vec![],
        qsplice_pool::MAGLEV_M,
    )]));
    let shared = LbShared {
        board,
        counters: Arc::new(SharedLbCounters::default()),
        hists: Default::default(),
        access: None,
        flowsync: None,
        backends: Arc::new(BackendCounters::new(&[1])),
        inboxes: Arc::new((0..1).map(|_| ArrayQueue::new(64)).collect()),
        health: Some(Arc::new(HealthShared::new(16))),
        tls: Default::default(),
        sessions: None,
    };
    let lb = LbCore::new(conf, shared);
    let econf = EngineConf {
        burst: 32,
        tx_drain_us: 0,
        idle_sleep_us: 0,
        idle_spin_us: 0,
        arp: ArpConf {
            reachable_ms: 3_600_000,
            probe_interval_ms: 1000,
            max_probes: 3,
            gratuitous_on_start: false,
            table_size: 64,
        },
        primary: true,
        kernel_poll_us: 100,
        kernel_max_pps: 0,
    };
    let port = |mac: MacAddr, name: &str, addr: Ipv4Addr, neighbors: Vec<Ipv4Addr>| {
        (
            MemQueue::new(mac.0),
            PortSetup {
                name: name.into(),
                addrs6: vec![],
                addrs: vec![IfAddr { addr, prefix: 24 }],
                neighbors,
                gateway: None,
                neighbors6: vec![],
                gateway6: None,
            },
        )
    };
    let ports = vec![
        port(CMAC, "client", VIP_IP, vec![]),
        port(BMAC, "backend", LOCAL_IP, vec![SERVER_IP]),
    ];
    let mut w = Worker::with_service(
        econf,
        ports,
        clock.clone(),
        Arc::new(SharedCounters::default()),
        None,
        lb,
    );
    w.poll();
    w.finish();
    w.queue_mut(1).tx.clear();
    // The backend answers ARP.
    let mut a = vec![0u8; 60];
    a[..6].copy_from_slice(&BMAC.0);
    a[6..12].copy_from_slice(&SERVER_MAC.0);
    a[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    a[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    a[22..28].copy_from_slice(&SERVER_MAC.0);
    a[28..32].copy_from_slice(&SERVER_IP.octets());
    a[32..38].copy_from_slice(&BMAC.0);
    a[38..42].copy_from_slice(&LOCAL_IP.octets());
    inject(&mut w, 1, &a);
    (w, clock)
}

fn inject(w: &mut W, port: usize, f: &[u8]) {
    w.queue_mut(port).rx.push_back(VecFrame::from_bytes(f));
    w.poll();
    w.finish();
}

fn take(w: &mut W, port: usize) -> Vec<Vec<u8>> {
    w.queue_mut(port)
        .tx
        .drain(..)
        .map(VecFrame::into_vec)
        .collect()
}

/// Client and backend handshakes through the worker: a spliced flow.
/// Returns the client's next sequence number and its acknowledgement.
fn splice(w: &mut W) -> (u32, u32) {
    let cisn = 1000u32;
    let syn = SynOptions {
        mss: Some(1460),
        ws: Some(7),
        sack_ok: true,
        ts: Some((100, 0)),
    };
    inject(
        w,
        0,
        &seg(
            CLIENT_MAC,
            CMAC,
            client(),
            vip(),
            cisn,
            0,
            TcpFlags::SYN,
            &syn,
            &[],
        ),
    );
    let sa = take(w, 0).pop().expect("SYN-ACK");
    let sa = TcpPacket::new_checked(&sa[34..]).expect("tcp");
    let (y, tsval) = (sa.seq_number(), 5u32);
    let ts = |v| SynOptions {
        ts: Some((v, tsval)),
        ..Default::default()
    };
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    inject(
        w,
        0,
        &seg(
            CLIENT_MAC,
            CMAC,
            client(),
            vip(),
            cisn + 1,
            y + 1,
            TcpFlags::ACK,
            &ts(101),
            &[],
        ),
    );
    inject(
        w,
        0,
        &seg(
            CLIENT_MAC,
            CMAC,
            client(),
            vip(),
            cisn + 1,
            y + 1,
            TcpFlags::ACK | TcpFlags::PSH,
            &ts(102),
            req,
        ),
    );
    let bsyn = take(w, 1).pop().expect("backend SYN");
    let bsyn = TcpPacket::new_checked(&bsyn[34..]).expect("tcp");
    let local = SocketAddrV4::new(LOCAL_IP, bsyn.src_port());
    let bisn = bsyn.seq_number();
    let synack = SynOptions {
        mss: Some(1460),
        ws: Some(7),
        sack_ok: true,
        ts: Some((7000, 1)),
    };
    inject(
        w,
        1,
        &seg(
            SERVER_MAC,
            BMAC,
            server(),
            local,
            5000,
            bisn + 1,
            TcpFlags::SYN | TcpFlags::ACK,
            &synack,
            &[],
        ),
    );
    take(w, 1);
    take(w, 0);
    assert_eq!(w.service().counters().conn_spliced, 1, "spliced");
    (cisn + 1 + req.len() as u32, y + 1)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("lb_path");
    g.throughput(Throughput::Elements(1));
    let (mut w, clock) = worker();
    let (mut seq, ack) = splice(&mut w);
    let payload = [0x61u8; 100];
    let template = seg(
        CLIENT_MAC,
        CMAC,
        client(),
        vip(),
        seq,
        ack,
        TcpFlags::ACK | TcpFlags::PSH,
        &SynOptions {
            ts: Some((200, 5)),
            ..Default::default()
        },
        &payload,
    );
    // One by hand first: it must come out on the backend port.
    {
        let mut f = template.clone();
        inject(&mut w, 0, &f);
        let out = take(&mut w, 1);
        assert_eq!(out.len(), 1, "forwarded: {:?}", w.service().counters());
        seq = seq.wrapping_add(payload.len() as u32);
        f.clear();
    }
    g.bench_function("spliced_client_segment", |b| {
        let mut f = template.clone();
        b.iter(|| {
            next_segment(&mut f, &mut seq, payload.len());
            w.queue_mut(0).rx.push_back(VecFrame::from_bytes(&f));
            // 1 µs per segment: the worker drains its tx buffer when the
            // clock moved (as on a real lcore); a 1 ms tick every 1,000.
            clock.advance_ns(1_000);
            w.poll();
            let Some(out) = w.queue_mut(1).tx.pop() else {
                w.finish();
                panic!(
                    "not forwarded: tx0 {} tx1 {} {:?}",
                    w.queue_mut(0).tx.len(),
                    w.queue_mut(1).tx.len(),
                    w.service().counters()
                );
            };
            std::hint::black_box(out);
        });
    });
    let mut junk = template.clone();
    junk[12..14].copy_from_slice(&0x88b5u16.to_be_bytes()); // local experimental EtherType
    g.bench_function("harness", |b| {
        b.iter(|| {
            w.queue_mut(0).rx.push_back(VecFrame::from_bytes(&junk));
            clock.advance_ns(1_000);
            w.poll();
            std::hint::black_box(w.queue_mut(1).tx.pop());
        });
    });
    // A full receive burst (32 segments in one poll), as on a loaded lcore:
    // the per-poll work (rx call, service poll, tx flush) is shared by the
    // burst. Per segment. The frames are made outside the timing (32
    // allocations and copies would be most of it, and the allocator's
    // state made it vary from run to run); both variants free their 32
    // frames inside it (the harness's worker drops them, the spliced
    // variant drops what it took off the wire).
    g.throughput(Throughput::Elements(BURST as u64));
    g.bench_function("spliced_client_burst", |b| {
        let mut f = template.clone();
        b.iter_batched(
            || {
                (0..BURST)
                    .map(|_| {
                        next_segment(&mut f, &mut seq, payload.len());
                        VecFrame::from_bytes(&f)
                    })
                    .collect::<Vec<_>>()
            },
            |frames| {
                w.queue_mut(0).rx.extend(frames);
                clock.advance_ns(32_000);
                w.poll();
                let tx = &mut w.queue_mut(1).tx;
                assert_eq!(tx.len(), BURST, "a burst forwarded");
                for out in tx.drain(..) {
                    std::hint::black_box(out);
                }
            },
            BatchSize::SmallInput,
        );
    });
    g.bench_function("harness_burst", |b| {
        b.iter_batched(
            || vec![VecFrame::from_bytes(&junk); BURST],
            |frames| {
                w.queue_mut(0).rx.extend(frames);
                clock.advance_ns(32_000);
                w.poll();
                std::hint::black_box(w.queue_mut(1).tx.pop());
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

/// Make `f` the next in-order segment: sequence number `seq` (then
/// advanced by `len`), the checksum updated incrementally (RFC 1624; the
/// bench's own cost kept small).
fn next_segment(f: &mut [u8], seq: &mut u32, len: usize) {
    let old = u32::from_be_bytes([f[38], f[39], f[40], f[41]]);
    let csum = u16::from_be_bytes([f[50], f[51]]);
    let csum = qsplice_wire::checksum::update_u32(csum, old, *seq);
    f[38..42].copy_from_slice(&seq.to_be_bytes());
    f[50..52].copy_from_slice(&csum.to_be_bytes());
    *seq = seq.wrapping_add(len as u32);
}

/// Segments per receive burst (the engine's `burst`).
const BURST: usize = 32;

criterion_group!(benches, bench);
criterion_main!(benches);
