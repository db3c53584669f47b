//! The balancer inside a real engine worker on in-memory queues: every
//! segment a client and a backend would exchange, byte for byte, through
//! accept (cookie), backend connect, hold-and-release, splice, close and
//! the failure paths.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;
use proptest::prelude::*;
use qsplice_engine::AddrClaims;
use qsplice_engine::{ArpConf, EngineConf, IfAddr, PortSetup, SharedCounters, Worker};
use qsplice_lb::health::{HealthCheck, HealthResult, HealthShared, ProbeKind};
use qsplice_lb::tcp::{write_segment, Segment, SynOptions};
use qsplice_lb::{
    Adopt, BackendCounters, FlowSyncShared, LbConf, LbCore, LbShared, PoolBoard, SharedLbCounters,
    VipConf,
};
use qsplice_netdev::mem::{ManualClock, MemQueue, VecFrame};
use qsplice_pool::{Backend, Policy, Snapshot};
use qsplice_splice::isn::IsnSecret;
use qsplice_splice::SpliceParams;
use qsplice_wire::{Ipv4Packet, MacAddr, TcpFlags, TcpPacket};

const CMAC: MacAddr = MacAddr([2, 0x51, 0, 0, 0, 1]);
const BMAC: MacAddr = MacAddr([2, 0x51, 0, 0, 0, 2]);
const CLIENT_MAC: MacAddr = MacAddr([2, 0xcc, 0, 0, 0, 1]);
const SERVER_MAC: MacAddr = MacAddr([2, 0xbb, 0, 0, 0, 1]);
const VIP_IP: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 1);
const LOCAL_IP: Ipv4Addr = Ipv4Addr::new(10, 10, 2, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 2);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 10, 2, 11);

fn vip() -> SocketAddrV4 {
    SocketAddrV4::new(VIP_IP, 80)
}
fn client() -> SocketAddrV4 {
    SocketAddrV4::new(CLIENT_IP, 40001)
}
fn server() -> SocketAddrV4 {
    SocketAddrV4::new(SERVER_IP, 8080)
}

type W = Worker<MemQueue, ManualClock, LbCore<VecFrame>>;

struct Rig {
    w: W,
    clock: ManualClock,
    counters: Arc<SharedLbCounters>,
    board: Arc<PoolBoard>,
    health: Arc<HealthShared>,
    backends: Arc<BackendCounters>,
}

fn conf() -> LbConf {
    LbConf {
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
        max_flows: 64,
        max_connecting: 16,
        syn_rto_ms: 200,
        syn_retries: 2,
        retries: 0,
        idle_timeout_ms: 60_000,
        linger_ms: 1000,
        client_mss: 1460,
        min_mss: 536,
        congestion: qsplice_lb::Congestion::Cubic,
        syn_backlog: 64,
        syn_rate: 0,
        backend_mss: 1400,
        vip_ws: 7,
        hz: 1_000_000_000,
        secret: IsnSecret::from_bytes([7; 16]),
        health_path: "/health".into(),
        health_status: 200,
        tls_vips: Vec::new(),
        tls_max_conns: 16,
        access_sample: 1,
        content: Vec::new(),
        kernel_ports: 0,
    }
}

fn rig_with(conf: LbConf) -> Rig {
    rig_full(conf, None)
}

fn rig_full(conf: LbConf, flowsync: Option<Arc<FlowSyncShared>>) -> Rig {
    let clock = ManualClock::default();
    clock.advance_ms(5_000);
    let board = Arc::new(PoolBoard::new(vec![Snapshot::build(
        1,
        Policy::RoundRobin,
        vec![Backend::new(server())],
        vec![],
        qsplice_pool::MAGLEV_M,
    )]));
    let counters = Arc::new(SharedLbCounters::default());
    let health = Arc::new(HealthShared::new(16));
    let backends = Arc::new(BackendCounters::new(&[1]));
    let shared = LbShared {
        board: board.clone(),
        counters: counters.clone(),
        hists: Default::default(),
        access: None,
        flowsync: flowsync.clone(),
        backends: backends.clone(),
        inboxes: Arc::new((0..conf.lcores).map(|_| ArrayQueue::new(64)).collect()),
        health: Some(health.clone()),
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
            reachable_ms: 600_000,
            probe_interval_ms: 1000,
            max_probes: 3,
            gratuitous_on_start: false,
            table_size: 64,
        },
        primary: true,
        kernel_poll_us: 100,
        kernel_max_pps: 0,
    };
    let ports = vec![
        (
            MemQueue::new(CMAC.0),
            PortSetup {
                name: "client".into(),
                addrs6: vec![],
                addrs: vec![IfAddr {
                    addr: VIP_IP,
                    prefix: 24,
                }],
                neighbors: vec![],
                gateway: None,
                neighbors6: vec![],
                gateway6: None,
            },
        ),
        (
            MemQueue::new(BMAC.0),
            PortSetup {
                name: "backend".into(),
                addrs6: vec![],
                addrs: vec![IfAddr {
                    addr: LOCAL_IP,
                    prefix: 24,
                }],
                neighbors: vec![SERVER_IP],
                gateway: None,
                neighbors6: vec![],
                gateway6: None,
            },
        ),
    ];
    let w = Worker::with_service(
        econf,
        ports,
        clock.clone(),
        Arc::new(SharedCounters::default()),
        None,
        lb,
    );
    let mut w = w;
    if let Some(fs) = &flowsync {
        w.attach_claims(1, fs.claims.clone());
    }
    let mut r = Rig {
        w,
        clock,
        counters,
        board,
        health,
        backends,
    };
    // Start (ARP request for the backend), then the backend's ARP reply.
    r.w.poll();
    r.take(1);
    let mut a = vec![0u8; 60];
    a[..6].copy_from_slice(&BMAC.0);
    a[6..12].copy_from_slice(&SERVER_MAC.0);
    a[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    a[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    a[22..28].copy_from_slice(&SERVER_MAC.0);
    a[28..32].copy_from_slice(&SERVER_IP.octets());
    a[32..38].copy_from_slice(&BMAC.0);
    a[38..42].copy_from_slice(&LOCAL_IP.octets());
    r.inject(1, a);
    assert!(r.take(1).is_empty());
    r
}

fn rig() -> Rig {
    rig_with(conf())
}

/// A parsed segment the worker sent.
#[derive(Debug, Clone)]
struct Out {
    eth_dst: MacAddr,
    eth_src: MacAddr,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    win: u16,
    opts: SynOptions,
    payload: Vec<u8>,
}

fn parse(f: &[u8]) -> Out {
    let ip = Ipv4Packet::new_checked(&f[14..]).expect("ipv4");
    assert!(ip.verify_checksum(), "ip checksum");
    let tcp = TcpPacket::new_checked(ip.payload()).expect("tcp");
    assert!(
        tcp.verify_checksum(ip.src_addr(), ip.dst_addr()),
        "tcp checksum"
    );
    let opts = if tcp.flags().contains(TcpFlags::SYN) {
        SynOptions::parse(tcp.options()).unwrap()
    } else {
        SynOptions {
            ts: SynOptions::timestamps(tcp.options()),
            ..Default::default()
        }
    };
    Out {
        eth_dst: MacAddr::from_bytes(&f[0..6]).unwrap(),
        eth_src: MacAddr::from_bytes(&f[6..12]).unwrap(),
        src: SocketAddrV4::new(ip.src_addr(), tcp.src_port()),
        dst: SocketAddrV4::new(ip.dst_addr(), tcp.dst_port()),
        seq: tcp.seq_number(),
        ack: tcp.ack_number(),
        flags: tcp.flags(),
        win: tcp.window_len(),
        opts,
        payload: tcp.payload().to_vec(),
    }
}

#[allow(clippy::too_many_arguments)]
fn seg(
    from_mac: MacAddr,
    to_mac: MacAddr,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    win: u16,
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
            src_mac: from_mac,
            dst_mac: to_mac,
            src,
            dst,
            seq,
            ack,
            flags,
            window: win,
            options: &ob[..n],
            payload,
        },
    )
    .unwrap();
    buf.truncate(len);
    buf
}

impl Rig {
    fn inject(&mut self, port: usize, f: Vec<u8>) {
        self.w
            .queue_mut(port)
            .rx
            .push_back(VecFrame::from_bytes(&f));
        self.w.poll();
        self.w.finish();
    }
    fn take(&mut self, port: usize) -> Vec<Vec<u8>> {
        self.w.finish();
        self.w
            .queue_mut(port)
            .tx
            .drain(..)
            .map(VecFrame::into_vec)
            .collect()
    }
    fn take_tcp(&mut self, port: usize) -> Vec<Out> {
        self.take(port).iter().map(|f| parse(f)).collect()
    }
    fn client_sends(
        &mut self,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        ts: Option<(u32, u32)>,
        payload: &[u8],
    ) {
        let o = SynOptions {
            ts,
            ..Default::default()
        };
        let f = seg(
            CLIENT_MAC,
            CMAC,
            client(),
            vip(),
            seq,
            ack,
            flags,
            500,
            &o,
            payload,
        );
        self.inject(0, f);
    }
    #[allow(clippy::too_many_arguments)]
    fn server_sends(
        &mut self,
        dst: SocketAddrV4,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        win: u16,
        opts: &SynOptions,
        payload: &[u8],
    ) {
        let f = seg(
            SERVER_MAC,
            BMAC,
            server(),
            dst,
            seq,
            ack,
            flags,
            win,
            opts,
            payload,
        );
        self.inject(1, f);
    }
    fn lb(&self) -> &LbCore<VecFrame> {
        self.w.service()
    }
    fn counters_now(&self) -> qsplice_lb::LbCounters {
        self.lb().counters().clone()
    }
    fn tick_ms(&mut self, ms: u64) {
        for _ in 0..ms {
            self.clock.advance_ms(1);
            self.w.poll();
        }
        self.w.finish();
    }
}

const CISN: u32 = 0xffff_ff00; // wraps within the test
const SISN: u32 = 0x7fff_fff0;

/// Client SYN → SYN-ACK; returns (our ISN, our TSval).
fn handshake(r: &mut Rig) -> (u32, u32) {
    let syn = SynOptions {
        mss: Some(1460),
        ws: Some(9),
        sack_ok: true,
        ts: Some((100, 0)),
    };
    let f = seg(
        CLIENT_MAC,
        CMAC,
        client(),
        vip(),
        CISN,
        0,
        TcpFlags::SYN,
        64240,
        &syn,
        &[],
    );
    r.inject(0, f);
    let out = r.take_tcp(0);
    assert_eq!(out.len(), 1, "one SYN-ACK");
    let sa = &out[0];
    assert_eq!(sa.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!((sa.src, sa.dst), (vip(), client()));
    assert_eq!((sa.eth_src, sa.eth_dst), (CMAC, CLIENT_MAC));
    assert_eq!(sa.ack, CISN.wrapping_add(1));
    assert_eq!(sa.opts.mss, Some(1460));
    assert_eq!(sa.opts.ws, Some(7));
    assert!(sa.opts.sack_ok);
    let (tsval, tsecr) = sa.opts.ts.unwrap();
    assert_eq!(tsecr, 100);
    assert!(r.lb().flows() == 0, "a SYN costs no state");
    (sa.seq, tsval)
}

/// The backend leg as the balancer opened it.
#[derive(Copy, Clone, Debug)]
struct Leg {
    local: SocketAddrV4,
    /// Our ISN toward the backend.
    isn: u32,
    /// Our TSval in the backend SYN.
    ts: u32,
}

/// Handshake ACK + request; backend SYN → SYN-ACK; returns the backend leg.
fn connect(r: &mut Rig, y: u32, our_ts: u32, req: &[u8]) -> Leg {
    r.client_sends(
        CISN.wrapping_add(1),
        y.wrapping_add(1),
        TcpFlags::ACK,
        Some((101, our_ts)),
        &[],
    );
    r.client_sends(
        CISN.wrapping_add(1),
        y.wrapping_add(1),
        TcpFlags::ACK | TcpFlags::PSH,
        Some((102, our_ts)),
        req,
    );
    assert_eq!(r.lb().flows(), 1);
    assert_eq!(r.lb().held(), 1, "request held, not acknowledged");
    assert!(r.take(0).is_empty(), "nothing to the client");
    let out = r.take_tcp(1);
    assert_eq!(out.len(), 1, "one backend SYN: {out:?}");
    let syn = &out[0];
    assert_eq!(syn.flags, TcpFlags::SYN);
    assert_eq!(syn.dst, server());
    assert_eq!(*syn.src.ip(), LOCAL_IP);
    assert_eq!((syn.eth_src, syn.eth_dst), (BMAC, SERVER_MAC));
    assert_eq!(syn.opts.mss, Some(1400), "MSS clamped to the client side");
    assert_eq!(syn.opts.ws, Some(9), "the client's window scale");
    assert!(syn.opts.sack_ok);
    let (ts, ecr) = syn.opts.ts.expect("timestamps toward the backend");
    assert_eq!(ecr, 0);
    Leg {
        local: syn.src,
        isn: syn.seq,
        ts,
    }
}

#[test]
fn accept_connect_splice_and_close() {
    let mut r = rig();
    let (y, our_ts) = handshake(&mut r);
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let leg = connect(&mut r, y, our_ts, req);
    let local = leg.local;
    // Client → server: sequence numbers and TSvals move into the backend
    // leg's spaces.
    let c2b = |seq: u32| seq.wrapping_add(leg.isn.wrapping_sub(CISN));
    let ts2b = |t: u32| t.wrapping_add(leg.ts.wrapping_sub(101));

    // Backend SYN-ACK with a different window scale and TS clock.
    let sa = SynOptions {
        mss: Some(1460),
        ws: Some(5),
        sack_ok: true,
        ts: Some((7000, leg.ts)),
    };
    r.server_sends(
        local,
        SISN,
        leg.isn.wrapping_add(1),
        TcpFlags::SYN | TcpFlags::ACK,
        65160,
        &sa,
        &[],
    );
    let out = r.take_tcp(1);
    assert_eq!(out.len(), 2, "ACK + held request: {out:?}");
    let ack = &out[0];
    assert_eq!(ack.flags, TcpFlags::ACK);
    assert_eq!((ack.src, ack.dst), (local, server()));
    assert_eq!(ack.seq, leg.isn.wrapping_add(1));
    assert_eq!(ack.ack, SISN.wrapping_add(1));
    assert_eq!(ack.opts.ts, Some((leg.ts, 7000)));
    let data = &out[1];
    assert_eq!(data.payload, req);
    assert_eq!((data.src, data.dst), (local, server()));
    assert_eq!(
        data.seq,
        c2b(CISN.wrapping_add(1)),
        "c2s sequence in the backend leg's space"
    );
    assert_eq!(
        data.ack,
        SISN.wrapping_add(1),
        "ack moved into the server's space"
    );
    assert_eq!(
        data.opts.ts,
        Some((ts2b(102), 7000)),
        "TSval to our backend-leg clock, TSecr to the server's clock"
    );
    assert_eq!(data.win, 500, "both legs use the client's scale");
    assert_eq!(r.lb().held(), 0);
    assert_eq!(r.lb().counters().conn_spliced, 1);

    // Response: seq/ack/TS/window translated toward the client.
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let c_next = CISN.wrapping_add(1).wrapping_add(req.len() as u32);
    let ts_ack = SynOptions {
        ts: Some((7001, ts2b(102))),
        ..Default::default()
    };
    r.server_sends(
        local,
        SISN.wrapping_add(1),
        c2b(c_next),
        TcpFlags::ACK | TcpFlags::PSH,
        100,
        &ts_ack,
        resp,
    );
    let out = r.take_tcp(0);
    assert_eq!(out.len(), 1);
    let d = &out[0];
    assert_eq!((d.src, d.dst), (vip(), client()));
    assert_eq!((d.eth_src, d.eth_dst), (CMAC, CLIENT_MAC));
    assert_eq!(d.seq, y.wrapping_add(1));
    assert_eq!(d.ack, c_next);
    assert_eq!(d.payload, resp);
    assert_eq!(d.opts.ts, Some((our_ts.wrapping_add(1), 102)));
    assert_eq!(d.win, 25, "100 << 5 >> 7");

    // Close: server FIN, client FIN+ACK, server ACK.
    let s_fin = SISN.wrapping_add(1).wrapping_add(resp.len() as u32);
    r.server_sends(
        local,
        s_fin,
        c2b(c_next),
        TcpFlags::ACK | TcpFlags::FIN,
        100,
        &ts_ack,
        &[],
    );
    let fin = r.take_tcp(0);
    assert!(fin[0].flags.contains(TcpFlags::FIN));
    let y_fin = y.wrapping_add(1).wrapping_add(resp.len() as u32);
    assert_eq!(fin[0].seq, y_fin);
    r.client_sends(
        c_next,
        y_fin.wrapping_add(1),
        TcpFlags::ACK | TcpFlags::FIN,
        Some((103, our_ts + 2)),
        &[],
    );
    let out = r.take_tcp(1);
    assert_eq!(out[0].ack, s_fin.wrapping_add(1));
    r.server_sends(
        local,
        s_fin.wrapping_add(1),
        c2b(c_next).wrapping_add(1),
        TcpFlags::ACK,
        100,
        &ts_ack,
        &[],
    );
    assert_eq!(r.take_tcp(0).len(), 1);
    assert_eq!(r.lb().flows(), 1, "lingers");
    r.w.finish();
    assert_eq!(
        r.backends.get(0, 0).active,
        0,
        "a closed flow is not active while it lingers"
    );
    r.tick_ms(1100);
    assert_eq!(r.lb().flows(), 0, "removed after the linger");
    let c = r.counters.snapshot();
    assert_eq!(c.conn_closed, 1);
    assert_eq!(c.c2s_bytes, req.len() as u64);
    assert_eq!(c.s2c_bytes, resp.len() as u64);
    assert_eq!(c.flows_active, 0);
    let b = r.backends.get(0, 0);
    assert_eq!(
        (b.opened, b.spliced, b.active, b.failed, b.reset),
        (1, 1, 0, 0, 0)
    );
    assert_eq!(
        (b.c2s_bytes, b.s2c_bytes),
        (req.len() as u64, resp.len() as u64)
    );
    assert_eq!(
        (b.c2s_packets, b.s2c_packets),
        (2, 3),
        "request + FIN; response, FIN, last ACK"
    );
}

#[test]
fn backend_syn_ack_retransmission_is_reacknowledged() {
    let mut r = rig();
    let (y, ts) = handshake(&mut r);
    let leg = connect(&mut r, y, ts, b"x");
    let local = leg.local;
    let sa = SynOptions {
        mss: Some(1460),
        ws: Some(7),
        sack_ok: false,
        ts: Some((1, 101)),
    };
    r.server_sends(
        local,
        SISN,
        leg.isn.wrapping_add(1),
        TcpFlags::SYN | TcpFlags::ACK,
        1000,
        &sa,
        &[],
    );
    assert_eq!(r.take(1).len(), 2);
    r.server_sends(
        local,
        SISN,
        leg.isn.wrapping_add(1),
        TcpFlags::SYN | TcpFlags::ACK,
        1000,
        &sa,
        &[],
    );
    let out = r.take_tcp(1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, TcpFlags::ACK);
    assert_eq!(out[0].ack, SISN.wrapping_add(1));
    assert!(
        r.take(0).is_empty(),
        "the client never sees a SYN-ACK from the backend"
    );
}

#[test]
fn reused_backend_tuple_gets_a_newer_isn_and_tsval() {
    // One source port: the second connection reuses the backend tuple the
    // first one used (the backend may hold it in TIME-WAIT).
    let mut c = conf();
    c.sport_max = c.sport_min;
    let mut r = rig_with(c);
    let (y, ts) = handshake(&mut r);
    let first = connect(&mut r, y, ts, b"a");
    // The backend refuses; the flow goes away; 3 s later the same tuple.
    r.server_sends(
        first.local,
        0,
        first.isn.wrapping_add(1),
        TcpFlags::RST | TcpFlags::ACK,
        0,
        &SynOptions::default(),
        &[],
    );
    assert_eq!(r.lb().flows(), 0);
    assert_eq!(r.take_tcp(0)[0].flags, TcpFlags::RST);
    r.tick_ms(3000);
    r.take(1);
    let (y2, ts2) = handshake(&mut r);
    let second = connect(&mut r, y2, ts2, b"b");
    assert_eq!(second.local, first.local, "same tuple");
    let d = second.isn.wrapping_sub(first.isn);
    // 3 s of 4 µs ticks later (modulo nothing else).
    assert!((750_000..760_000).contains(&d), "ISN advanced by {d}");
    let t = second.ts.wrapping_sub(first.ts);
    assert!((3000..3100).contains(&t), "TSval advanced by {t} ms");
}

#[test]
fn health_probe_on_a_reused_backend_tuple_gets_a_newer_isn_and_tsval() {
    // A data flow used the only source port; a health check a moment later
    // reuses that tuple while the backend may hold it in TIME-WAIT. Linux
    // takes such a SYN as a new connection only when its timestamp (or
    // ISN) is newer: a random ISN without timestamps was answered with the
    // TIME-WAIT ACK half the time, and a busy backend was marked down.
    let mut c = conf();
    c.sport_max = c.sport_min;
    let mut r = rig_with(c);
    let (y, ts) = handshake(&mut r);
    let leg = connect(&mut r, y, ts, b"a");
    r.server_sends(
        leg.local,
        0,
        leg.isn.wrapping_add(1),
        TcpFlags::RST | TcpFlags::ACK,
        0,
        &SynOptions::default(),
        &[],
    );
    assert_eq!(r.lb().flows(), 0);
    r.take(0);
    r.tick_ms(2000);
    r.take(1);
    r.health.checks.push(check(ProbeKind::Http)).unwrap();
    r.tick_ms(2);
    let syn = r.take_tcp(1).remove(0);
    assert_eq!(syn.flags, TcpFlags::SYN);
    assert_eq!(syn.src, leg.local, "same tuple");
    let d = syn.seq.wrapping_sub(leg.isn);
    assert!((500_000..510_000).contains(&d), "ISN advanced by {d}");
    let (tsval, tsecr) = syn.opts.ts.expect("the probe SYN carries timestamps");
    assert_eq!(tsecr, 0);
    let t = tsval.wrapping_sub(leg.ts);
    assert!((2000..2100).contains(&t), "TSval advanced by {t} ms");
    // The request echoes the backend's TSval; the check completes.
    let sa = SynOptions {
        mss: Some(1460),
        ts: Some((9000, tsval)),
        ..Default::default()
    };
    r.server_sends(
        syn.src,
        500,
        syn.seq.wrapping_add(1),
        TcpFlags::SYN | TcpFlags::ACK,
        100,
        &sa,
        &[],
    );
    let req = r.take_tcp(1).remove(0);
    assert_eq!(req.flags, TcpFlags::ACK | TcpFlags::PSH);
    assert_eq!(req.opts.ts, Some((tsval, 9000)));
    r.server_sends(
        syn.src,
        501,
        req.seq.wrapping_add(req.payload.len() as u32),
        TcpFlags::ACK | TcpFlags::PSH,
        100,
        &SynOptions::default(),
        b"HTTP/1.1 200 OK\r\n\r\n",
    );
    assert_eq!(r.health.results.pop().unwrap().result, HealthResult::Up);
}

#[test]
fn backend_refusal_resets_the_client() {
    let mut r = rig();
    let (y, ts) = handshake(&mut r);
    let leg = connect(&mut r, y, ts, b"GET /");
    let local = leg.local;
    r.server_sends(
        local,
        0,
        leg.isn.wrapping_add(1),
        TcpFlags::RST | TcpFlags::ACK,
        0,
        &SynOptions::default(),
        &[],
    );
    let out = r.take_tcp(0);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, TcpFlags::RST);
    assert_eq!(out[0].seq, y.wrapping_add(1), "in the client's window");
    assert_eq!(r.lb().flows(), 0);
    assert_eq!(r.lb().held(), 0, "held data released");
    r.w.finish();
    assert_eq!(r.counters.snapshot().conn_refused, 1);
}

#[test]
fn silent_backend_is_retried_then_client_reset() {
    let mut r = rig();
    let (y, ts) = handshake(&mut r);
    connect(&mut r, y, ts, b"GET /");
    // RTO 200 ms, doubling: retries at 200, 600 (200+400); give up at 1400.
    r.tick_ms(210);
    assert_eq!(r.take_tcp(1).len(), 1, "first retransmission");
    r.tick_ms(400);
    assert_eq!(r.take_tcp(1).len(), 1, "second retransmission");
    r.tick_ms(900);
    let out = r.take_tcp(0);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, TcpFlags::RST);
    assert_eq!(r.lb().flows(), 0);
    let c = r.counters.snapshot();
    assert_eq!((c.backend_syn_retx, c.conn_timeout), (2, 1));
}

#[test]
fn forged_ack_and_unknown_port_get_rst_and_no_state() {
    let mut r = rig();
    r.client_sends(5000, 12345, TcpFlags::ACK, Some((1, 2)), &[]);
    let out = r.take_tcp(0);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].flags, out[0].seq), (TcpFlags::RST, 12345));
    assert_eq!(r.lb().flows(), 0);
    // SYN to a port with no VIP.
    let f = seg(
        CLIENT_MAC,
        CMAC,
        client(),
        SocketAddrV4::new(VIP_IP, 81),
        77,
        0,
        TcpFlags::SYN,
        100,
        &SynOptions::default(),
        &[],
    );
    r.inject(0, f);
    let out = r.take_tcp(0);
    assert_eq!(out[0].flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!(out[0].ack, 78);
    let c = r.counters.snapshot();
    assert_eq!((c.cookie_bad, c.syn_no_listener), (1, 1));
}

#[test]
fn with_a_kernel_interface_unserved_tcp_goes_to_the_kernel_not_a_rst() {
    let mut c = conf();
    c.kernel_ports = 0b11;
    let mut r = rig_with(c);
    r.w.attach_kernel(0, MemQueue::new(CMAC.0));
    r.w.attach_kernel(1, MemQueue::new(BMAC.0));
    // SSH / BGP to the VIP address on a port without a VIP.
    let ssh = seg(
        CLIENT_MAC,
        CMAC,
        client(),
        SocketAddrV4::new(VIP_IP, 179),
        77,
        0,
        TcpFlags::SYN,
        100,
        &SynOptions::default(),
        &[],
    );
    r.inject(0, ssh.clone());
    assert!(r.take(0).is_empty(), "no RST from the balancer");
    let k: Vec<Vec<u8>> =
        r.w.kernel_queue_mut(0)
            .unwrap()
            .tx
            .drain(..)
            .map(VecFrame::into_vec)
            .collect();
    assert_eq!(k.len(), 1);
    assert_eq!(
        k[0][..ssh.len().min(k[0].len())],
        ssh[..ssh.len().min(k[0].len())]
    );
    // To the backend-side address outside the source-port range.
    let mgmt = seg(
        SERVER_MAC,
        BMAC,
        server(),
        SocketAddrV4::new(LOCAL_IP, 22),
        5,
        0,
        TcpFlags::SYN,
        100,
        &SynOptions::default(),
        &[],
    );
    r.inject(1, mgmt);
    assert!(r.take(1).is_empty());
    assert_eq!(r.w.kernel_queue_mut(1).unwrap().tx.len(), 1);
    // The VIP itself is still the balancer's: a SYN to it is answered.
    r.client_sends(900, 0, TcpFlags::SYN, None, &[]);
    let out = r.take_tcp(0);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, TcpFlags::SYN | TcpFlags::ACK);
    assert!(r.w.kernel_queue_mut(0).unwrap().tx.is_empty());
    let c = r.counters.snapshot();
    assert_eq!(c.syn_no_listener, 0);
    assert_eq!(r.w.counters().kernel_in, 2);
}

#[test]
fn no_eligible_backend_resets() {
    let mut r = rig();
    let mut b = Backend::new(server());
    b.state = qsplice_pool::BackendState::Down;
    r.board.publish(vec![Snapshot::build(
        2,
        Policy::RoundRobin,
        vec![b],
        vec![],
        qsplice_pool::MAGLEV_M,
    )]);
    r.tick_ms(2);
    let (y, ts) = handshake(&mut r);
    r.client_sends(
        CISN.wrapping_add(1),
        y.wrapping_add(1),
        TcpFlags::ACK,
        Some((101, ts)),
        &[],
    );
    let out = r.take_tcp(0);
    assert_eq!(out[0].flags, TcpFlags::RST);
    assert!(r.take(1).is_empty());
    assert_eq!(r.counters.snapshot().conn_no_backend, 1);
}

#[test]
fn client_without_timestamps_gets_no_scaling_or_sack_from_a_cookie() {
    // Cookies only (no SYN cache): nowhere to keep the options.
    let mut c = conf();
    c.syn_backlog = 0;
    let mut r = rig_with(c);
    let syn = SynOptions {
        mss: Some(1300),
        ws: Some(9),
        sack_ok: true,
        ts: None,
    };
    let f = seg(
        CLIENT_MAC,
        CMAC,
        client(),
        vip(),
        1,
        0,
        TcpFlags::SYN,
        100,
        &syn,
        &[],
    );
    r.inject(0, f);
    let sa = r.take_tcp(0).remove(0);
    assert_eq!(
        (sa.opts.ws, sa.opts.sack_ok, sa.opts.ts),
        (None, false, None)
    );
    r.client_sends(2, sa.seq.wrapping_add(1), TcpFlags::ACK, None, &[]);
    let syn = r.take_tcp(1).remove(0);
    assert_eq!(syn.opts.mss, Some(1220), "the cookie's MSS class");
    assert_eq!(
        (syn.opts.ws, syn.opts.sack_ok, syn.opts.ts),
        (None, false, None)
    );
}

#[test]
fn backend_segments_for_another_lcore_are_steered() {
    let mut c = conf();
    c.lcores = 2;
    let mut r = rig_with(c);
    // Port 10001 belongs to lcore 1.
    let local = SocketAddrV4::new(LOCAL_IP, 10001);
    r.server_sends(local, 1, 2, TcpFlags::ACK, 10, &SynOptions::default(), b"x");
    assert!(r.take(0).is_empty() && r.take(1).is_empty());
    r.w.finish();
    assert_eq!(r.counters.snapshot().steered_out, 1);
    assert_eq!(r.lb().owner_of(10001), Some(1));
    assert_eq!(r.lb().owner_of(10000), Some(0));
    assert_eq!(r.lb().owner_of(9999), None);
}

#[test]
fn malformed_tcp_is_counted_not_answered() {
    let mut r = rig();
    let mut f = seg(
        CLIENT_MAC,
        CMAC,
        client(),
        vip(),
        1,
        0,
        TcpFlags::SYN,
        100,
        &SynOptions::default(),
        &[],
    );
    f[14 + 20 + 12] = 0xf0; // data offset 60 > segment
    r.inject(0, f);
    let mut g = seg(
        CLIENT_MAC,
        CMAC,
        client(),
        vip(),
        1,
        0,
        TcpFlags::SYN,
        100,
        &SynOptions::default(),
        &[],
    );
    g[14 + 20 + 16] ^= 0xff; // TCP checksum
    r.inject(0, g);
    assert!(r.take(0).is_empty());
    r.w.finish();
    let c = r.counters.snapshot();
    assert_eq!((c.drop_tcp_malformed, c.drop_tcp_bad_checksum), (1, 1));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Arbitrary TCP headers and options after a valid IPv4 header, on
    /// either port: never a panic, and the table never exceeds its size.
    #[test]
    fn arbitrary_segments_never_panic(
        port in 0usize..2,
        tcp in proptest::collection::vec(any::<u8>(), 0..80),
        fix_offset in any::<bool>(),
    ) {
        let mut r = rig();
        let mut tcp = tcp;
        if fix_offset && tcp.len() >= 20 {
            tcp[12] = ((tcp.len().min(60) / 4) as u8) << 4;
        }
        let (src, dst) = if port == 0 { (CLIENT_IP, VIP_IP) } else { (SERVER_IP, LOCAL_IP) };
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
        ip.extend_from_slice(&src.octets());
        ip.extend_from_slice(&dst.octets());
        let c = !qsplice_wire::checksum::fold(qsplice_wire::checksum::sum(&ip, 0));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        ip.extend_from_slice(&tcp);
        let mut f = Vec::new();
        f.extend_from_slice(&(if port == 0 { CMAC } else { BMAC }).0);
        f.extend_from_slice(&CLIENT_MAC.0);
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        f.extend_from_slice(&ip);
        while f.len() < 60 { f.push(0); }
        r.inject(port, f);
        prop_assert!(r.lb().flows() <= 64);
    }
}

fn check(kind: ProbeKind) -> HealthCheck {
    HealthCheck {
        pool: 0,
        backend: 0,
        addr: server(),
        kind,
        timeout_ms: 300,
        token: 9,
    }
}

#[test]
fn tcp_health_check_up_refused_timeout() {
    let mut r = rig();
    // Up: SYN → SYN-ACK → RST from us, result Up.
    r.health.checks.push(check(ProbeKind::Tcp)).unwrap();
    r.tick_ms(2);
    let syn = r.take_tcp(1).remove(0);
    assert_eq!(syn.flags, TcpFlags::SYN);
    assert_eq!(syn.dst, server());
    r.server_sends(
        syn.src,
        1,
        syn.seq.wrapping_add(1),
        TcpFlags::SYN | TcpFlags::ACK,
        100,
        &SynOptions::default(),
        &[],
    );
    let rst = r.take_tcp(1).remove(0);
    assert_eq!(
        (rst.flags, rst.seq),
        (TcpFlags::RST, syn.seq.wrapping_add(1))
    );
    let rep = r.health.results.pop().unwrap();
    assert_eq!((rep.result, rep.token), (HealthResult::Up, 9));
    // Refused.
    r.health.checks.push(check(ProbeKind::Tcp)).unwrap();
    r.tick_ms(2);
    let syn = r.take_tcp(1).remove(0);
    r.server_sends(
        syn.src,
        0,
        syn.seq.wrapping_add(1),
        TcpFlags::RST | TcpFlags::ACK,
        0,
        &SynOptions::default(),
        &[],
    );
    assert_eq!(
        r.health.results.pop().unwrap().result,
        HealthResult::Refused
    );
    // Timeout.
    r.health.checks.push(check(ProbeKind::Tcp)).unwrap();
    r.tick_ms(2);
    assert_eq!(r.take(1).len(), 1);
    r.tick_ms(400);
    assert_eq!(
        r.health.results.pop().unwrap().result,
        HealthResult::Timeout
    );
    assert!(r.health.results.pop().is_none());
}

#[test]
fn http_health_check_reads_the_status() {
    for (resp, want) in [
        (&b"HTTP/1.1 200 OK\r\n\r\n"[..], HealthResult::Up),
        (
            &b"HTTP/1.1 503 Service Unavailable\r\n\r\n"[..],
            HealthResult::BadStatus,
        ),
        (&b"SSH-2.0-OpenSSH\r\n"[..], HealthResult::BadStatus),
    ] {
        let mut r = rig();
        r.health.checks.push(check(ProbeKind::Http)).unwrap();
        r.tick_ms(2);
        let syn = r.take_tcp(1).remove(0);
        r.server_sends(
            syn.src,
            500,
            syn.seq.wrapping_add(1),
            TcpFlags::SYN | TcpFlags::ACK,
            100,
            &SynOptions::default(),
            &[],
        );
        let req = r.take_tcp(1).remove(0);
        assert_eq!(req.flags, TcpFlags::ACK | TcpFlags::PSH);
        assert!(
            req.payload.starts_with(b"GET /health HTTP/1.0\r\n"),
            "{:?}",
            String::from_utf8_lossy(&req.payload)
        );
        assert_eq!(req.ack, 501);
        r.server_sends(
            syn.src,
            501,
            req.seq.wrapping_add(req.payload.len() as u32),
            TcpFlags::ACK | TcpFlags::PSH,
            100,
            &SynOptions::default(),
            resp,
        );
        let rst = r.take_tcp(1).remove(0);
        assert_eq!(rst.flags, TcpFlags::RST);
        assert_eq!(rst.seq, req.seq.wrapping_add(req.payload.len() as u32));
        assert_eq!(r.health.results.pop().unwrap().result, want);
    }
}

#[test]
fn client_without_timestamps_gets_scaling_sack_and_its_mss_from_the_syn_cache() {
    let mut r = rig();
    let syn = SynOptions {
        mss: Some(1300),
        ws: Some(9),
        sack_ok: true,
        ts: None,
    };
    let f = seg(
        CLIENT_MAC,
        CMAC,
        client(),
        vip(),
        1,
        0,
        TcpFlags::SYN,
        100,
        &syn,
        &[],
    );
    r.inject(0, f);
    let sa = r.take_tcp(0).remove(0);
    assert_eq!(
        (sa.opts.ws.is_some(), sa.opts.sack_ok, sa.opts.ts),
        (true, true, None)
    );
    // A retransmitted SYN gets the same answer from the same entry.
    let f = seg(
        CLIENT_MAC,
        CMAC,
        client(),
        vip(),
        1,
        0,
        TcpFlags::SYN,
        100,
        &syn,
        &[],
    );
    r.inject(0, f);
    let again = r.take_tcp(0).remove(0);
    assert_eq!((again.seq, again.opts.ws), (sa.seq, sa.opts.ws));
    // The ACK completes it: the backend sees the client's options.
    r.client_sends(2, sa.seq.wrapping_add(1), TcpFlags::ACK, None, &[]);
    let bsyn = r.take_tcp(1).remove(0);
    assert_eq!(bsyn.opts.mss, Some(1300), "the client's exact MSS");
    assert_eq!((bsyn.opts.ws, bsyn.opts.sack_ok), (Some(9), true));
    let c = r.counters.snapshot();
    assert_eq!((c.syn_stateful, c.syn_cookies, c.syn_cache_hits), (1, 0, 1));
}

#[test]
fn syn_cache_full_falls_back_to_cookies_and_a_stale_ack_is_refused() {
    let mut c = conf();
    c.syn_backlog = 1;
    let mut r = rig_with(c);
    let syn = SynOptions {
        mss: Some(1460),
        ws: Some(7),
        sack_ok: true,
        ts: None,
    };
    // First SYN: stateful (options offered without timestamps).
    r.inject(
        0,
        seg(
            CLIENT_MAC,
            CMAC,
            client(),
            vip(),
            1,
            0,
            TcpFlags::SYN,
            100,
            &syn,
            &[],
        ),
    );
    let first = r.take_tcp(0).remove(0);
    assert!(first.opts.ws.is_some() && first.opts.sack_ok);
    // Second client while the cache is full: a cookie, no options.
    let other = SocketAddrV4::new(*client().ip(), client().port() + 1);
    r.inject(
        0,
        seg(
            CLIENT_MAC,
            CMAC,
            other,
            vip(),
            1,
            0,
            TcpFlags::SYN,
            100,
            &syn,
            &[],
        ),
    );
    let second = r.take_tcp(0).remove(0);
    assert_eq!((second.opts.ws, second.opts.sack_ok), (None, false));
    let c = r.counters.snapshot();
    assert_eq!((c.syn_stateful, c.syn_cookies, c.syn_cache_full), (1, 1, 1));
    // An ACK for the stateful entry with a wrong ack number is refused,
    // and the stateful ISN is no cookie either.
    r.client_sends(2, first.seq.wrapping_add(7), TcpFlags::ACK, None, &[]);
    assert!(r.take(1).is_empty(), "no backend connection from a bad ACK");
    assert!(r.counters.snapshot().cookie_bad >= 1);
}

/// A spliced flow with a response delivered and acknowledged: returns the
/// backend leg, the client's last acknowledgement (client leg) and the
/// backend's (backend leg).
fn spliced_with_response(r: &mut Rig) -> (Leg, u32, u32) {
    let (y, our_ts) = handshake(r);
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let leg = connect(r, y, our_ts, req);
    let c2b = |seq: u32| seq.wrapping_add(leg.isn.wrapping_sub(CISN));
    r.server_sends(
        leg.local,
        SISN,
        leg.isn.wrapping_add(1),
        TcpFlags::SYN | TcpFlags::ACK,
        65160,
        &SynOptions {
            mss: Some(1460),
            ws: Some(5),
            sack_ok: true,
            ts: Some((7000, leg.ts)),
        },
        &[],
    );
    assert_eq!(r.take_tcp(1).len(), 2, "ACK + request to the backend");
    let c_next = CISN.wrapping_add(1).wrapping_add(req.len() as u32);
    let backend_ack = c2b(c_next);
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    r.server_sends(
        leg.local,
        SISN.wrapping_add(1),
        backend_ack,
        TcpFlags::ACK | TcpFlags::PSH,
        100,
        &SynOptions {
            ts: Some((7001, leg.ts)),
            ..Default::default()
        },
        resp,
    );
    assert_eq!(r.take_tcp(0).len(), 1, "response to the client");
    let client_ack = y.wrapping_add(1).wrapping_add(resp.len() as u32);
    r.client_sends(c_next, client_ack, TcpFlags::ACK, Some((103, our_ts)), &[]);
    r.take(1);
    assert_eq!(r.lb().counters().conn_spliced, 1);
    (leg, client_ack, backend_ack)
}

fn republish(r: &Rig, version: u64, b: Backend) {
    r.board.publish(vec![Snapshot::build(
        version,
        Policy::RoundRobin,
        vec![b],
        vec![],
        qsplice_pool::MAGLEV_M,
    )]);
}

#[test]
fn backend_marked_down_has_its_flows_reset_both_ways_at_once() {
    let mut r = rig();
    let (leg, client_ack, backend_ack) = spliced_with_response(&mut r);
    r.tick_ms(2);
    assert_eq!(r.backends.get(0, 0).active, 1);
    // Marked down without a reset request: nothing happens to the flow.
    let mut b = Backend::new(server());
    b.state = qsplice_pool::BackendState::Down;
    republish(&r, 2, b.clone());
    r.tick_ms(2);
    assert!(r.take(0).is_empty() && r.take(1).is_empty());
    // With one (lb.health.on_down = "reset"): a RST each way, each at the
    // receiver's point, and the flow ends as closed.
    b.reset_epoch = 1;
    republish(&r, 3, b);
    r.tick_ms(2);
    let to_client = r.take_tcp(0);
    assert_eq!(to_client.len(), 1, "{to_client:?}");
    assert_eq!(to_client[0].flags, TcpFlags::RST);
    assert_eq!((to_client[0].src, to_client[0].dst), (vip(), client()));
    assert_eq!(
        to_client[0].seq, client_ack,
        "at the client's last acknowledgement"
    );
    let to_backend = r.take_tcp(1);
    assert_eq!(to_backend.len(), 1, "{to_backend:?}");
    assert_eq!(to_backend[0].flags, TcpFlags::RST);
    assert_eq!(
        (to_backend[0].src, to_backend[0].dst),
        (leg.local, server())
    );
    assert_eq!(
        to_backend[0].seq, backend_ack,
        "at the backend's last acknowledgement"
    );
    let c = r.lb().counters();
    assert_eq!(c.conn_reset_backend_down, 1);
    assert_eq!(r.backends.get(0, 0).active, 0);
    // It lingers, then goes as a closed flow.
    r.tick_ms(2_000);
    assert_eq!(r.lb().flows(), 0);
    assert_eq!(r.lb().counters().conn_closed, 1);
}

/// A spliced flow's data segment with a wrong TCP checksum is forwarded
/// with its checksum as wrong as it came (the receiving endpoint drops
/// it); a FIN or RST with a wrong checksum is dropped and counted, and the
/// flow carries on.
#[test]
fn a_spliced_flows_bad_checksum_is_carried_over_and_a_bad_fin_or_rst_changes_nothing() {
    let mut r = rig();
    let (leg, client_ack, _backend_ack) = spliced_with_response(&mut r);
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let c_next = CISN.wrapping_add(1).wrapping_add(req.len() as u32);
    let bad = |mut f: Vec<u8>| {
        f[14 + 20 + 16] ^= 0x5a; // the TCP checksum
        f
    };
    let ts = SynOptions {
        ts: Some((104, 7001)),
        ..Default::default()
    };
    let data = seg(
        CLIENT_MAC,
        CMAC,
        client(),
        vip(),
        c_next,
        client_ack,
        TcpFlags::ACK | TcpFlags::PSH,
        500,
        &ts,
        b"more",
    );
    let before = r.counters_now().drop_tcp_bad_checksum;
    r.inject(0, bad(data.clone()));
    let out = r.take(1);
    assert_eq!(out.len(), 1, "forwarded");
    let ip = Ipv4Packet::new_checked(&out[0][14..]).unwrap();
    assert!(
        ip.verify_checksum(),
        "the IPv4 header is the appliance's own"
    );
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(
        (tcp.src_port(), tcp.dst_port()),
        (leg.local.port(), server().port())
    );
    assert_eq!(tcp.payload(), b"more");
    assert!(
        !tcp.verify_checksum(ip.src_addr(), ip.dst_addr()),
        "still wrong: the backend drops it"
    );
    // The good copy comes out right (the same translation).
    r.inject(0, data);
    assert_eq!(r.take_tcp(1).len(), 1);
    // A FIN and a RST with wrong checksums: nothing leaves, the flow stays.
    for flags in [TcpFlags::ACK | TcpFlags::FIN, TcpFlags::RST | TcpFlags::ACK] {
        let f = seg(
            CLIENT_MAC,
            CMAC,
            client(),
            vip(),
            c_next.wrapping_add(4),
            client_ack,
            flags,
            500,
            &ts,
            &[],
        );
        r.inject(0, bad(f));
        let f = seg(
            SERVER_MAC,
            BMAC,
            server(),
            leg.local,
            SISN.wrapping_add(200),
            leg.isn,
            flags,
            100,
            &ts,
            &[],
        );
        r.inject(1, bad(f));
    }
    assert!(r.take(0).is_empty() && r.take(1).is_empty());
    assert_eq!(r.counters_now().drop_tcp_bad_checksum, before + 4);
    r.tick_ms(2_000);
    assert_eq!(r.lb().flows(), 1, "no FIN or RST was taken");
}

#[test]
fn shutdown_refuses_new_connections_then_resets_what_is_open() {
    let mut r = rig();
    let (leg, client_ack, backend_ack) = spliced_with_response(&mut r);
    r.board.set_mode(qsplice_lb::AcceptMode::Draining);
    // A new SYN from another client port: RST, no state.
    let other = SocketAddrV4::new(CLIENT_IP, 40002);
    let f = seg(
        CLIENT_MAC,
        CMAC,
        other,
        vip(),
        77,
        0,
        TcpFlags::SYN,
        100,
        &SynOptions {
            mss: Some(1460),
            ..Default::default()
        },
        &[],
    );
    r.inject(0, f);
    let out = r.take_tcp(0);
    assert_eq!(out.len(), 1);
    assert!(out[0].flags.contains(TcpFlags::RST), "{out:?}");
    assert_eq!(out[0].ack, 78);
    assert_eq!(r.lb().counters().syn_refused_shutdown, 1);
    assert_eq!(
        r.lb().counters().syn_received,
        1,
        "only the first client's SYN"
    );
    // The established flow still relays.
    r.client_sends(
        CISN.wrapping_add(1).wrapping_add(27),
        client_ack,
        TcpFlags::ACK | TcpFlags::PSH,
        Some((104, 0)),
        b"more",
    );
    assert_eq!(r.take_tcp(1).len(), 1, "relayed while draining");
    r.board.set_mode(qsplice_lb::AcceptMode::Reset);
    r.tick_ms(2);
    let to_client = r.take_tcp(0);
    assert_eq!(to_client.len(), 1);
    assert_eq!(
        (to_client[0].flags, to_client[0].seq),
        (TcpFlags::RST, client_ack)
    );
    let to_backend = r.take_tcp(1);
    assert_eq!(to_backend.len(), 1);
    assert_eq!(
        (to_backend[0].flags, to_backend[0].dst, to_backend[0].seq),
        (TcpFlags::RST, server(), backend_ack)
    );
    let _ = leg;
    assert_eq!(r.lb().flows(), 0);
    assert_eq!(r.lb().counters().conn_reset_shutdown, 1);
}

/// A VIP removed while running refuses new connections and lets its
/// established flow finish; a VIP added while running (a new pool, with
/// counters the lcore makes room for) takes connections at the next tick.
#[test]
fn removed_vip_drains_and_an_added_vip_takes_connections() {
    let mut r = rig();
    let (leg, client_ack, _) = spliced_with_response(&mut r);
    let new_vip = SocketAddrV4::new(VIP_IP, 8080);
    let new_server = SocketAddrV4::new(SERVER_IP, 9090);
    let pools = vec![
        Snapshot::build(
            2,
            Policy::RoundRobin,
            vec![Backend::new(server())],
            vec![],
            qsplice_pool::MAGLEV_M,
        ),
        Snapshot::build(
            2,
            Policy::RoundRobin,
            vec![Backend::new(new_server)],
            vec![],
            qsplice_pool::MAGLEV_M,
        ),
    ];
    r.board.publish_services(
        qsplice_lb::board::Services {
            vips: vec![
                VipConf {
                    addr: vip(),
                    pool: 0,
                    session_aware: false,
                    open: false,
                },
                VipConf {
                    addr: new_vip,
                    pool: 1,
                    session_aware: false,
                    open: true,
                },
            ],
            tls_vips: Vec::new(),
            content: Vec::new(),
            access_sample: 1,
            six: Default::default(),
        },
        pools,
    );
    r.tick_ms(2);
    let syn = |src: SocketAddrV4, dst: SocketAddrV4, isn: u32| {
        seg(
            CLIENT_MAC,
            CMAC,
            src,
            dst,
            isn,
            0,
            TcpFlags::SYN,
            64240,
            &SynOptions {
                mss: Some(1460),
                ..Default::default()
            },
            &[],
        )
    };
    // The removed VIP: a RST to a new SYN, no state.
    let other = SocketAddrV4::new(CLIENT_IP, 40002);
    r.inject(0, syn(other, vip(), 77));
    let out = r.take_tcp(0);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].flags.contains(TcpFlags::RST), "{out:?}");
    assert_eq!(r.lb().counters().syn_refused_removed, 1);
    // Its established flow still relays.
    r.client_sends(
        CISN.wrapping_add(1).wrapping_add(27),
        client_ack,
        TcpFlags::ACK | TcpFlags::PSH,
        Some((104, 0)),
        b"more",
    );
    let relayed = r.take_tcp(1);
    assert_eq!(relayed.len(), 1, "relayed while its VIP drains");
    assert_eq!(relayed[0].src, leg.local);
    // The added VIP: SYN-ACK, then the backend of its own pool.
    let c3 = SocketAddrV4::new(CLIENT_IP, 40003);
    r.inject(0, syn(c3, new_vip, 1000));
    let out = r.take_tcp(0);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].flags, TcpFlags::SYN | TcpFlags::ACK);
    let y = out[0].seq;
    let ack = seg(
        CLIENT_MAC,
        CMAC,
        c3,
        new_vip,
        1001,
        y.wrapping_add(1),
        TcpFlags::ACK | TcpFlags::PSH,
        64240,
        &SynOptions::default(),
        b"GET / HTTP/1.1\r\n\r\n",
    );
    r.inject(0, ack);
    let out = r.take_tcp(1);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].flags, TcpFlags::SYN);
    assert_eq!(out[0].dst, new_server);
    r.tick_ms(2);
    assert_eq!(r.backends.get(1, 0).opened, 1, "the new pool's counters");
    assert_eq!(
        r.backends.get(0, 0).opened,
        1,
        "the old pool's carried over"
    );
}

/// A stall of the probing lcore itself (not scheduled for 500 ms, its
/// rx ring filling meanwhile) does not fail the probes it had pending: the
/// backend's answer read after the stall counts; a backend that never
/// answers still times out.
#[test]
fn a_stalled_prober_does_not_fail_its_probes() {
    let mut r = rig();
    r.health.checks.push(check(ProbeKind::Tcp)).unwrap();
    r.tick_ms(2);
    let stalls = r.lb().counters().probe_stalls;
    let syn = r.take_tcp(1).remove(0);
    // The lcore does not run for 500 ms (> the 300 ms timeout); the
    // backend answered meanwhile.
    r.clock.advance_ms(500);
    r.server_sends(
        syn.src,
        1,
        syn.seq.wrapping_add(1),
        TcpFlags::SYN | TcpFlags::ACK,
        100,
        &SynOptions::default(),
        &[],
    );
    r.tick_ms(1);
    assert_eq!(
        r.health.results.pop().map(|x| x.result),
        Some(HealthResult::Up)
    );
    r.take(1); // our RST closing the check
               // The same stall with no answer: the probe gets the stall back, then
               // times out on its own clock.
    r.health.checks.push(check(ProbeKind::Tcp)).unwrap();
    r.tick_ms(2);
    assert_eq!(r.take(1).len(), 1);
    r.clock.advance_ms(500);
    r.tick_ms(1);
    assert!(r.health.results.pop().is_none(), "not failed by the stall");
    assert_eq!(
        r.lb().counters().probe_stalls,
        stalls + 1,
        "counted once, with a probe pending"
    );
    r.tick_ms(400);
    assert_eq!(
        r.health.results.pop().map(|x| x.result),
        Some(HealthResult::Timeout)
    );
}

/// With several lcores, a segment of a removed VIP that completes no
/// handshake may be a draining flow's, delivered to the wrong lcore: it is
/// dropped (cookie_bad), never answered with a RST that would kill the flow.
#[test]
fn removed_vip_stray_ack_with_several_lcores_is_dropped_not_reset() {
    let mut c = conf();
    c.lcores = 2;
    let mut r = rig_with(c);
    let pools = vec![Snapshot::build(
        2,
        Policy::RoundRobin,
        vec![Backend::new(server())],
        vec![],
        qsplice_pool::MAGLEV_M,
    )];
    r.board.publish_services(
        qsplice_lb::board::Services {
            vips: vec![VipConf {
                addr: vip(),
                pool: 0,
                session_aware: false,
                open: false,
            }],
            tls_vips: Vec::new(),
            content: Vec::new(),
            access_sample: 1,
            six: Default::default(),
        },
        pools,
    );
    r.tick_ms(2);
    r.client_sends(5000, 777_777, TcpFlags::ACK, Some((300, 1)), b"data");
    assert!(r.take(0).is_empty(), "no RST for a possibly live flow");
    assert_eq!(r.lb().counters().cookie_bad, 1);
    assert_eq!(r.lb().counters().syn_refused_removed, 0);
}

/// Many connections connecting at once, answered by the backend in another
/// order than they were opened (the connecting list is kept by index, the
/// last one moving into a removed one's place), and some never answered
/// (their SYN retransmissions and give-up come from the deadline scan):
/// every one is accounted for and the connecting list ends empty.
#[test]
fn many_connecting_flows_answered_out_of_order_or_timing_out() {
    let mut r = rig();
    let n = 15u16; // conf(): max_connecting = 16
    let mut legs = Vec::new();
    for k in 0..n {
        let c = SocketAddrV4::new(CLIENT_IP, 41000 + k);
        let isn = 1000 + u32::from(k) * 100_000;
        let syn = SynOptions {
            mss: Some(1460),
            ..Default::default()
        };
        r.inject(
            0,
            seg(
                CLIENT_MAC,
                CMAC,
                c,
                vip(),
                isn,
                0,
                TcpFlags::SYN,
                500,
                &syn,
                &[],
            ),
        );
        let sa = r.take_tcp(0).remove(0);
        r.inject(
            0,
            seg(
                CLIENT_MAC,
                CMAC,
                c,
                vip(),
                isn + 1,
                sa.seq.wrapping_add(1),
                TcpFlags::ACK | TcpFlags::PSH,
                500,
                &SynOptions::default(),
                b"GET / HTTP/1.0\r\n\r\n",
            ),
        );
        let mut out = r.take_tcp(1);
        assert_eq!(out.len(), 1, "connection {k}: {:?}", r.lb().counters());
        let bsyn = out.remove(0);
        assert_eq!(bsyn.flags, TcpFlags::SYN);
        legs.push(bsyn);
    }
    r.tick_ms(1);
    assert_eq!(r.lb().counters().flows_connecting, u64::from(n));
    // Every third one never answers; the others answer last-opened first,
    // then first-opened, alternating.
    let mut order: Vec<usize> = (0..legs.len()).filter(|i| i % 3 != 0).collect();
    let (a, b): (Vec<usize>, Vec<usize>) = order.drain(..).partition(|i| i % 2 == 0);
    for i in a.into_iter().rev().chain(b) {
        let l = &legs[i];
        r.server_sends(
            l.src,
            7000,
            l.seq.wrapping_add(1),
            TcpFlags::SYN | TcpFlags::ACK,
            500,
            &SynOptions {
                mss: Some(1460),
                ..Default::default()
            },
            &[],
        );
    }
    let answered = legs.len() - legs.len().div_ceil(3);
    assert_eq!(r.lb().counters().conn_spliced, answered as u64);
    r.tick_ms(1);
    assert_eq!(
        r.lb().counters().flows_connecting,
        (legs.len() - answered) as u64
    );
    // The silent ones: retransmitted on their deadlines, then given up.
    r.tick_ms(5_000);
    let c = r.lb().counters();
    assert_eq!(c.flows_connecting, 0, "{c:?}");
    assert_eq!(c.conn_timeout, (legs.len() - answered) as u64, "{c:?}");
    assert_eq!(
        c.backend_syn_retx,
        2 * (legs.len() - answered) as u64,
        "two retransmissions each (syn_retries = 2): {c:?}"
    );
}

// ----- cluster flow sync ------------------------------------------------

fn rig_sync() -> (Rig, Arc<FlowSyncShared>) {
    let fs = Arc::new(FlowSyncShared::new(1, 64, Arc::new(AddrClaims::new())));
    (rig_full(conf(), Some(fs.clone())), fs)
}

/// A flow another node spliced: client and VIP as in the rig, the backend
/// leg from `local`.
fn peer_flow(local: SocketAddrV4) -> SpliceParams {
    SpliceParams {
        client: client(),
        vip: vip(),
        local,
        server: server(),
        c2s_seq_delta: 1000,
        s2c_seq_delta: 2000,
        c2s_ts_delta: 30,
        s2c_ts_delta: 40,
        client_ws: 7,
        vip_ws: 7,
        local_ws: 7,
        server_ws: 7,
    }
}

#[test]
fn a_spliced_flow_is_published_once_with_its_translation() {
    let (mut r, fs) = rig_sync();
    let (y, our_ts) = handshake(&mut r);
    let leg = connect(&mut r, y, our_ts, b"GET / HTTP/1.1\r\n\r\n");
    assert!(fs.out[0].is_empty(), "not spliced yet: nothing published");
    let sa = SynOptions {
        mss: Some(1460),
        ws: Some(5),
        sack_ok: true,
        ts: Some((9000, leg.ts)),
    };
    r.server_sends(
        leg.local,
        SISN,
        leg.isn.wrapping_add(1),
        TcpFlags::SYN | TcpFlags::ACK,
        65535,
        &sa,
        &[],
    );
    let _ = r.take(1);
    let p = fs.out[0].pop().expect("the record of the spliced flow");
    assert!(fs.out[0].is_empty(), "one record per connection");
    assert_eq!(
        (p.client, p.vip, p.local, p.server),
        (client(), vip(), leg.local, server())
    );
    assert_eq!(p.s2c_seq_delta, y.wrapping_sub(SISN));
    assert_eq!(p.c2s_seq_delta, leg.isn.wrapping_sub(CISN));
    assert_eq!(
        (p.client_ws, p.vip_ws, p.local_ws, p.server_ws),
        (9, 7, 9, 5)
    );
    assert_eq!(r.counters_now().flows_published, 1);
    // A new generation (epoch rolled over, Redis back): published again.
    fs.republish();
    r.tick_ms(2);
    assert_eq!(fs.out[0].pop(), Some(p));
    assert_eq!(r.counters_now().flows_republished, 1);
}

#[test]
fn an_unknown_mid_flow_segment_is_looked_up_then_adopted_and_translated() {
    let (mut r, fs) = rig_sync();
    let local = SocketAddrV4::new(LOCAL_IP, 10005);
    let p = peer_flow(local);
    // A segment of a flow another node spliced: no RST, a lookup.
    r.client_sends(
        5000,
        9000,
        TcpFlags::ACK | TcpFlags::PSH,
        Some((77, 88)),
        b"more",
    );
    assert!(
        r.take(0).is_empty(),
        "no RST to a flow the cluster may know"
    );
    assert!(r.take(1).is_empty());
    assert_eq!(fs.lookups[0].pop(), Some((client(), vip())));
    // Its retransmission does not ask again while the lookup is out.
    r.client_sends(
        5000,
        9000,
        TcpFlags::ACK | TcpFlags::PSH,
        Some((77, 88)),
        b"more",
    );
    assert!(fs.lookups[0].is_empty());
    let c = r.counters_now();
    assert_eq!((c.adopt_lookups, c.adopt_waiting), (1, 1));
    // The record arrives: the flow is adopted.
    fs.answers[0].push(Adopt::Found(p)).unwrap();
    r.tick_ms(1);
    assert_eq!(r.lb().flows(), 1);
    assert_eq!(r.counters_now().adopted, 1);
    r.client_sends(
        5000,
        9000,
        TcpFlags::ACK | TcpFlags::PSH,
        Some((77, 88)),
        b"more",
    );
    let out = r.take_tcp(1);
    assert_eq!(out.len(), 1, "{out:?}");
    let o = &out[0];
    assert_eq!((o.src, o.dst), (local, server()));
    assert_eq!((o.eth_src, o.eth_dst), (BMAC, SERVER_MAC));
    assert_eq!(o.seq, 6000, "seq + c2s_seq_delta");
    assert_eq!(o.ack, 7000, "ack - s2c_seq_delta");
    assert_eq!(o.opts.ts, Some((107, 48)), "TSval + 30, TSecr - 40");
    assert_eq!(o.payload, b"more");
    // The backend's answer goes to the client (the MAC its segment came from).
    r.server_sends(
        local,
        7000,
        6004,
        TcpFlags::ACK,
        100,
        &SynOptions::default(),
        b"ok",
    );
    let out = r.take_tcp(0);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].src, out[0].dst), (vip(), client()));
    assert_eq!((out[0].eth_src, out[0].eth_dst), (CMAC, CLIENT_MAC));
    assert_eq!((out[0].seq, out[0].ack), (9000, 5004));
}

#[test]
fn a_segment_no_node_knows_gets_the_usual_rst_after_the_lookup() {
    let (mut r, fs) = rig_sync();
    r.client_sends(5000, 12345, TcpFlags::ACK, Some((1, 2)), &[]);
    assert!(r.take(0).is_empty());
    assert!(fs.lookups[0].pop().is_some());
    fs.answers[0]
        .push(Adopt::NotFound((client(), vip())))
        .unwrap();
    r.tick_ms(1);
    r.client_sends(5000, 12345, TcpFlags::ACK, Some((1, 2)), &[]);
    let out = r.take_tcp(0);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].flags, out[0].seq), (TcpFlags::RST, 12345));
    // Redis away: dropped quietly, no RST.
    let other = SocketAddrV4::new(CLIENT_IP, 40002);
    let f = seg(
        CLIENT_MAC,
        CMAC,
        other,
        vip(),
        1,
        2,
        TcpFlags::ACK,
        100,
        &SynOptions::default(),
        &[],
    );
    r.inject(0, f.clone());
    assert!(fs.lookups[0].pop().is_some());
    fs.answers[0]
        .push(Adopt::Unavailable((other, vip())))
        .unwrap();
    r.tick_ms(1);
    r.inject(0, f);
    assert!(r.take(0).is_empty(), "no RST while Redis cannot say");
    let c = r.counters_now();
    assert_eq!((c.adopt_not_found, c.adopt_unavailable), (1, 1));
}

#[test]
fn a_dead_peers_address_is_taken_over_announced_and_its_flows_installed() {
    let (mut r, fs) = rig_sync();
    let peer_ip = Ipv4Addr::new(10, 10, 2, 9);
    let local = SocketAddrV4::new(peer_ip, 31007);
    // The client's MAC, as ARP taught it (installs resolve it).
    let mut a = vec![0u8; 60];
    a[..6].copy_from_slice(&[0xff; 6]);
    a[6..12].copy_from_slice(&CLIENT_MAC.0);
    a[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    a[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    a[22..28].copy_from_slice(&CLIENT_MAC.0);
    a[28..32].copy_from_slice(&CLIENT_IP.octets());
    a[38..42].copy_from_slice(&VIP_IP.octets());
    r.inject(0, a);
    let _ = r.take(0);
    // Before the takeover, frames to the peer's address are not ours.
    r.server_sends(local, 1, 1, TcpFlags::ACK, 100, &SynOptions::default(), &[]);
    assert!(r.take(1).is_empty());
    fs.claims.set(&[peer_ip]);
    r.tick_ms(1);
    let garp = r.take(1);
    assert_eq!(garp.len(), 1, "a gratuitous ARP for the address");
    assert_eq!(&garp[0][12..14], &[0x08, 0x06]);
    assert_eq!(&garp[0][28..32], &peer_ip.octets(), "sender IP");
    assert_eq!(&garp[0][38..42], &peer_ip.octets(), "target IP");
    assert_eq!(&garp[0][22..28], &BMAC.0);
    r.tick_ms(1000);
    assert_eq!(r.take(1).len(), 1, "announced again a second later");
    // A backend segment before the flow is installed: no RST (it lives on).
    r.server_sends(
        local,
        7000,
        6004,
        TcpFlags::ACK,
        100,
        &SynOptions::default(),
        b"x",
    );
    assert!(r.take(1).is_empty(), "no RST on a taken-over address");
    assert_eq!(r.counters_now().adopt_backend_miss, 1);
    fs.answers[0]
        .push(Adopt::Install(peer_flow(local)))
        .unwrap();
    r.tick_ms(1);
    assert_eq!(r.counters_now().adopt_installed, 1);
    r.server_sends(
        local,
        7000,
        6004,
        TcpFlags::ACK,
        100,
        &SynOptions::default(),
        b"x",
    );
    let out = r.take_tcp(0);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].src, out[0].dst, out[0].seq),
        (vip(), client(), 9000)
    );
    assert_eq!(out[0].eth_dst, CLIENT_MAC);
    // A record of a flow that had closed (no segment ever comes) is gone
    // after the install grace; the flow in use stays (idle timeout 60 s).
    // (The grace is counted back from the clock: on a clock younger than
    // the idle timeout it is the idle timeout; move it forward.)
    r.clock.advance_ms(120_000);
    r.server_sends(
        local,
        7001,
        6004,
        TcpFlags::ACK,
        100,
        &SynOptions::default(),
        b"z",
    );
    let _ = r.take(0);
    let mut idle = peer_flow(SocketAddrV4::new(peer_ip, 31009));
    idle.client = SocketAddrV4::new(CLIENT_IP, 40999);
    fs.answers[0].push(Adopt::Install(idle)).unwrap();
    r.tick_ms(1);
    assert_eq!(r.lb().flows(), 2);
    r.tick_ms(31_000);
    assert_eq!(
        r.lb().flows(),
        1,
        "the untouched install expired after its grace"
    );
    // Released: the address is not ours any more.
    fs.claims.set(&[]);
    r.tick_ms(1);
    let before = r.w.counters().rx_packets;
    r.server_sends(
        local,
        7001,
        6004,
        TcpFlags::ACK,
        100,
        &SynOptions::default(),
        b"y",
    );
    assert!(r.take(0).is_empty());
    assert!(r.w.counters().rx_packets > before);
}

#[test]
fn at_shutdown_with_flow_sync_spliced_flows_leave_without_a_rst() {
    for peers in [1, 0] {
        shutdown_with_peers(peers);
    }
}

/// With another node alive the flow is left to it; alone, it is reset as
/// without a cluster.
fn shutdown_with_peers(peers: u32) {
    let (mut r, fs) = rig_sync();
    fs.peers_alive
        .store(peers, std::sync::atomic::Ordering::Relaxed);
    let (y, our_ts) = handshake(&mut r);
    let leg = connect(&mut r, y, our_ts, b"GET / HTTP/1.1\r\n\r\n");
    r.server_sends(
        leg.local,
        SISN,
        leg.isn.wrapping_add(1),
        TcpFlags::SYN | TcpFlags::ACK,
        65535,
        &SynOptions {
            mss: Some(1460),
            ws: Some(5),
            sack_ok: true,
            ts: Some((9000, leg.ts)),
        },
        &[],
    );
    let _ = r.take(1);
    r.board.set_mode(qsplice_lb::AcceptMode::Reset);
    r.tick_ms(2);
    let (to_client, to_backend) = (r.take(0).len(), r.take(1).len());
    assert_eq!(r.lb().flows(), 0);
    let c = r.counters_now();
    if peers > 0 {
        assert_eq!((to_client, to_backend), (0, 0), "no RST either way");
        assert_eq!((c.conn_left_to_cluster, c.conn_reset_shutdown), (1, 0));
    } else {
        assert_eq!((to_client, to_backend), (1, 1), "a RST each way");
        assert_eq!((c.conn_left_to_cluster, c.conn_reset_shutdown), (0, 1));
    }
}

#[test]
fn until_the_sync_is_ready_a_stray_backend_segment_is_dropped_not_reset() {
    let (mut r, fs) = rig_sync();
    let local = SocketAddrV4::new(LOCAL_IP, 10009);
    r.server_sends(
        local,
        1,
        1,
        TcpFlags::ACK,
        100,
        &SynOptions::default(),
        b"x",
    );
    assert!(
        r.take(1).is_empty(),
        "maybe a flow of this node's earlier run"
    );
    assert_eq!(r.counters_now().adopt_backend_miss, 1);
    fs.ready.store(true, std::sync::atomic::Ordering::Release);
    r.server_sends(
        local,
        1,
        1,
        TcpFlags::ACK,
        100,
        &SynOptions::default(),
        b"x",
    );
    let out = r.take_tcp(1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, TcpFlags::RST);
}

#[test]
fn segments_to_a_taken_over_address_are_steered_by_source_port_even_outside_the_range() {
    let mut c = conf();
    c.lcores = 2;
    let fs = Arc::new(FlowSyncShared::new(2, 64, Arc::new(AddrClaims::new())));
    let mut r = rig_full(c, Some(fs.clone()));
    let peer_ip = Ipv4Addr::new(10, 10, 2, 9);
    fs.claims.set(&[peer_ip]);
    r.tick_ms(1);
    let _ = r.take(1); // the gratuitous ARP
                       // The dead peer used source ports outside this node's range: the
                       // owner is (port − sport_min) mod lcores all the same (31001 → 1).
    r.server_sends(
        SocketAddrV4::new(peer_ip, 31001),
        1,
        2,
        TcpFlags::ACK,
        10,
        &SynOptions::default(),
        b"x",
    );
    assert!(r.take(0).is_empty() && r.take(1).is_empty(), "no RST");
    r.tick_ms(1);
    assert_eq!(r.counters.snapshot().steered_out, 1, "to lcore 1's inbox");
    assert_eq!(FlowSyncShared::owner(31001, 10000, 2), 1);
    // Port 31000 is this lcore's: a miss, dropped without a RST.
    r.server_sends(
        SocketAddrV4::new(peer_ip, 31000),
        1,
        2,
        TcpFlags::ACK,
        10,
        &SynOptions::default(),
        b"x",
    );
    assert!(r.take(0).is_empty() && r.take(1).is_empty(), "no RST");
    assert_eq!(r.counters_now().adopt_backend_miss, 1);
}

#[test]
fn a_stateful_answer_with_timestamps_is_also_a_valid_cookie() {
    // af_packet's rollover can hand the handshake's ACK to another lcore
    // (whose SYN cache does not hold the entry): with timestamps, the
    // stateful SYN-ACK is a cookie any lcore validates, options included.
    let mut r = rig();
    let syn = SynOptions {
        mss: Some(1300),
        ws: Some(9),
        sack_ok: true,
        ts: Some((777, 0)),
    };
    r.inject(
        0,
        seg(
            CLIENT_MAC,
            CMAC,
            client(),
            vip(),
            1,
            0,
            TcpFlags::SYN,
            100,
            &syn,
            &[],
        ),
    );
    let sa = r.take_tcp(0).remove(0);
    assert_eq!(r.counters.snapshot().syn_stateful, 1);
    let secret = IsnSecret::from_bytes([7; 16]);
    // The rig's clock is at 5 s: cookie slot 0.
    let mss =
        qsplice_splice::SynCookie::decode(&secret, client(), vip(), 2, sa.seq.wrapping_add(1), 0);
    assert!(mss.is_some_and(|m| (1200..=1300).contains(&m)), "{mss:?}");
    let (_, tsecr_ours) = sa.opts.ts.expect("timestamps answered");
    assert_eq!(tsecr_ours, 777);
    let (tsval, _) = sa.opts.ts.unwrap();
    assert_eq!(
        qsplice_lb::tcp::decode_ts(tsval),
        (Some(9), true),
        "the TSval carries the window scale and SACK as a cookie's does"
    );
    // Without timestamps the stateful ISN is no cookie (nowhere to keep the
    // options): only the SYN cache completes it.
    let other = SocketAddrV4::new(*client().ip(), client().port() + 1);
    let syn = SynOptions { ts: None, ..syn };
    r.inject(
        0,
        seg(
            CLIENT_MAC,
            CMAC,
            other,
            vip(),
            1,
            0,
            TcpFlags::SYN,
            100,
            &syn,
            &[],
        ),
    );
    let sa = r.take_tcp(0).remove(0);
    assert_eq!(
        qsplice_splice::SynCookie::decode(&secret, other, vip(), 2, sa.seq.wrapping_add(1), 0),
        None
    );
}

/// A "packet too big" (`wire::ptb`) from `from` to `to` in a frame.
fn ptb_frame(
    from_mac: MacAddr,
    to_mac: MacAddr,
    from: Ipv4Addr,
    to: Ipv4Addr,
    mtu: u32,
    q: &qsplice_wire::ptb::Quoted,
) -> Vec<u8> {
    let mut b = vec![0u8; 14 + 56];
    b[0..6].copy_from_slice(&to_mac.0);
    b[6..12].copy_from_slice(&from_mac.0);
    b[12..14].copy_from_slice(&[8, 0]);
    qsplice_wire::ptb::write(&mut b[14..], from.into(), to.into(), mtu, q).unwrap();
    b
}

/// The "packet too big" in frame `f`: (outer src, outer dst, the error).
fn ptb_out(f: &[u8]) -> (Ipv4Addr, Ipv4Addr, qsplice_wire::ptb::Ptb) {
    let ip = Ipv4Packet::new_checked(&f[14..]).expect("ipv4");
    assert!(ip.verify_checksum());
    assert_eq!(
        qsplice_wire::checksum::checksum(ip.payload()),
        0,
        "ICMP checksum"
    );
    let p = qsplice_wire::ptb::parse(ip.payload(), false).expect("a PTB");
    (ip.src_addr(), ip.dst_addr(), p)
}

/// Path MTU discovery through the splice: a router on the client side
/// reports a response segment too big — the backend gets the error about
/// the segment *it* sent (its addresses, its sequence number); a router on
/// the backend side reports a client segment — the client gets it about
/// its own. Errors about no flow are declined; a burst is rate-limited.
#[test]
fn packet_too_big_reaches_the_host_that_sent_the_segment_in_its_own_terms() {
    use qsplice_wire::ptb::Quoted;
    let mut r = rig();
    let (leg, client_ack, backend_ack) = spliced_with_response(&mut r);
    let router_c = Ipv4Addr::new(10, 10, 1, 254);
    let router_b = Ipv4Addr::new(10, 10, 2, 254);
    // The client's next expected byte (the response's end) in the client
    // leg; the backend sent it as SISN + 1 + response length.
    let resp_len = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".len() as u32;
    let q = Quoted {
        src: (VIP_IP.into(), 80),
        dst: (CLIENT_IP.into(), client().port()),
        seq: client_ack,
        ip_len: 1500,
    };
    r.inject(0, ptb_frame(CLIENT_MAC, CMAC, router_c, VIP_IP, 1400, &q));
    assert!(r.take(0).is_empty());
    let out = r.take(1);
    assert_eq!(out.len(), 1, "one error toward the backend");
    assert_eq!(&out[0][0..12], &[SERVER_MAC.0, BMAC.0].concat()[..]);
    let (src, dst, p) = ptb_out(&out[0]);
    assert_eq!((src, dst, p.mtu), (LOCAL_IP, SERVER_IP, 1400));
    assert_eq!(p.quoted.src, (SERVER_IP.into(), server().port()));
    assert_eq!(p.quoted.dst, ((*leg.local.ip()).into(), leg.local.port()));
    assert_eq!(p.quoted.seq, SISN.wrapping_add(1).wrapping_add(resp_len));
    assert_eq!(p.quoted.ip_len, 1500);

    // The backend side: about local → backend (the request's bytes).
    let q = Quoted {
        src: ((*leg.local.ip()).into(), leg.local.port()),
        dst: (SERVER_IP.into(), server().port()),
        seq: backend_ack,
        ip_len: 1500,
    };
    r.inject(1, ptb_frame(SERVER_MAC, BMAC, router_b, LOCAL_IP, 1300, &q));
    assert!(r.take(1).is_empty());
    let out = r.take(0);
    assert_eq!(out.len(), 1, "one error toward the client");
    assert_eq!(&out[0][0..12], &[CLIENT_MAC.0, CMAC.0].concat()[..]);
    let (src, dst, p) = ptb_out(&out[0]);
    assert_eq!((src, dst, p.mtu), (VIP_IP, CLIENT_IP, 1300));
    assert_eq!(p.quoted.src, (CLIENT_IP.into(), client().port()));
    assert_eq!(p.quoted.dst, (VIP_IP.into(), 80));
    assert_eq!(
        p.quoted.seq,
        backend_ack.wrapping_sub(leg.isn.wrapping_sub(CISN)),
        "the client's own sequence number"
    );
    assert_eq!(r.lb().counters().ptb_forwarded, 2);

    // About no flow (another client port): declined, nothing sent.
    let stray = Quoted {
        src: (VIP_IP.into(), 80),
        dst: (CLIENT_IP.into(), 9),
        seq: 1,
        ip_len: 1500,
    };
    r.inject(
        0,
        ptb_frame(CLIENT_MAC, CMAC, router_c, VIP_IP, 1400, &stray),
    );
    assert!(r.take(0).is_empty() && r.take(1).is_empty());
    assert_eq!(r.lb().counters().ptb_no_flow, 1);
    // Not "too big" (port unreachable): not the balancer's.
    let mut unreach = ptb_frame(CLIENT_MAC, CMAC, router_c, VIP_IP, 1400, &q);
    unreach[14 + 21] = 3;
    let c = qsplice_wire::checksum::checksum(&{
        let mut m = unreach[34..].to_vec();
        m[2] = 0;
        m[3] = 0;
        m
    });
    unreach[36..38].copy_from_slice(&c.to_be_bytes());
    r.inject(0, unreach);
    assert!(r.take(0).is_empty() && r.take(1).is_empty());
    assert_eq!(r.lb().counters().ptb_forwarded, 2);

    // A burst: the rate limit (64 at once, then 4 per ms) holds.
    let q = Quoted {
        src: (VIP_IP.into(), 80),
        dst: (CLIENT_IP.into(), client().port()),
        seq: client_ack,
        ip_len: 1500,
    };
    r.tick_ms(100);
    for _ in 0..100 {
        r.w.queue_mut(0)
            .rx
            .push_back(VecFrame::from_bytes(&ptb_frame(
                CLIENT_MAC, CMAC, router_c, VIP_IP, 1400, &q,
            )));
    }
    r.w.poll();
    r.w.poll();
    r.w.poll();
    r.w.poll();
    let out = r.take(1);
    let c = r.lb().counters();
    assert_eq!(out.len() as u64, c.ptb_forwarded - 2);
    assert!((64..=70).contains(&out.len()), "{}", out.len());
    assert_eq!(c.ptb_forwarded - 2 + c.ptb_limited, 100, "{c:?}");
}

/// With several lcores, a client-side error about a flow this lcore does
/// not hold goes to every other lcore (the NIC spread it by the router's
/// address, not the flow's).
#[test]
fn a_client_side_packet_too_big_for_no_flow_here_goes_to_the_other_lcores() {
    use qsplice_wire::ptb::Quoted;
    let mut c = conf();
    c.lcores = 3;
    let mut r = rig_with(c);
    let q = Quoted {
        src: (VIP_IP.into(), 80),
        dst: (CLIENT_IP.into(), 40001),
        seq: 1,
        ip_len: 1500,
    };
    r.inject(
        0,
        ptb_frame(
            CLIENT_MAC,
            CMAC,
            Ipv4Addr::new(10, 10, 1, 254),
            VIP_IP,
            1400,
            &q,
        ),
    );
    assert!(r.take(0).is_empty() && r.take(1).is_empty());
    assert_eq!(r.lb().counters().steered_out, 2);
    assert_eq!(r.lb().counters().ptb_forwarded, 0);
}
