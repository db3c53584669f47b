//! The `lb_segments` target: the load balancer inside an engine worker on
//! in-memory queues, driven by a script of segments decoded from the input
//! — raw TCP headers on either port, structured segments on the flows the
//! script opened, complete handshakes (so the spliced path is reached), and
//! clock advances (timers, expiry, retransmission).
//!
//! Oracles: no panic; the flow table and hold buffer stay within their
//! bounds; every frame the balancer emits is a well-formed IPv4/TCP frame,
//! and the frames it builds itself during handshakes carry valid checksums.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;
use qsplice_engine::{ArpConf, EngineConf, IfAddr, PortSetup, SharedCounters, Worker};
use qsplice_lb::health::HealthShared;
use qsplice_lb::tcp::{write_segment, write_syn_options, write_ts_option, Segment, SynOptions};
use qsplice_lb::{
    BackendCounters, LbConf, LbCore, LbShared, PoolBoard, SharedLbCounters, VipConf, HOLD_MAX,
};
use qsplice_netdev::mem::{ManualClock, MemQueue, VecFrame};
use qsplice_pool::{Backend, Policy, Snapshot};
use qsplice_splice::isn::IsnSecret;
use qsplice_wire::{Ipv4Packet, MacAddr, TcpFlags, TcpPacket};

pub(crate) const CMAC: MacAddr = MacAddr([2, 0x51, 0, 0, 0, 1]);
pub(crate) const BMAC: MacAddr = MacAddr([2, 0x51, 0, 0, 0, 2]);
pub(crate) const PEER: MacAddr = MacAddr([2, 0xcc, 0, 0, 0, 1]);
pub(crate) const VIP: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 1);
pub(crate) const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 10, 2, 1);
pub(crate) const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 2);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 10, 2, 11);
const MAX_FLOWS: usize = 32;

/// An engine worker running the balancer on in-memory queues.
pub(crate) type W = Worker<MemQueue, ManualClock, LbCore<VecFrame>>;

struct Rig {
    w: W,
    clock: ManualClock,
    /// (client port, appliance-side local port) of flows opened by handshakes.
    flows: Vec<(u16, u16)>,
}

pub(crate) fn frame(
    from: MacAddr,
    to: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    tcp: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(34 + tcp.len());
    f.extend_from_slice(&to.0);
    f.extend_from_slice(&from.0);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = [0u8; 20];
    {
        let mut p = Ipv4Packet::new_unchecked(&mut ip[..]);
        p.set_version(4);
        p.set_header_len(20);
        p.set_total_len((20 + tcp.len()) as u16);
        p.set_ttl(64);
        p.set_protocol(6);
        p.set_src_addr(src);
        p.set_dst_addr(dst);
        p.fill_checksum();
    }
    f.extend_from_slice(&ip);
    f.extend_from_slice(tcp);
    while f.len() < 60 {
        f.push(0);
    }
    f
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn segment(
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
        write_syn_options(&mut ob, opts)
    } else if let Some((a, b)) = opts.ts {
        write_ts_option(&mut ob, a, b)
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
            window: 1000,
            options: &ob[..n],
            payload,
        },
    )
    .expect("segment fits");
    buf.truncate(len);
    buf
}

/// An engine worker (ARP table of 16, no TX drain delay) around `lb`:
/// port 0 faces clients (MAC [`CMAC`], the VIP address [`VIP`]/24),
/// port 1 backends (MAC [`BMAC`], [`LOCAL`]/24, `backends` as pinned
/// neighbours). Used by the `lb_segments` and `lb_stateful` targets.
pub(crate) fn worker(lb: LbCore<VecFrame>, clock: &ManualClock, backends: &[Ipv4Addr]) -> W {
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
            table_size: 16,
        },
        primary: true,
        kernel_poll_us: 100,
        kernel_max_pps: 0,
    };
    let port = |mac: MacAddr, addr: Ipv4Addr, neighbors: Vec<Ipv4Addr>| {
        (
            MemQueue::new(mac.0),
            PortSetup {
                name: String::new(),
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
        port(CMAC, VIP, vec![]),
        port(BMAC, LOCAL, backends.to_vec()),
    ];
    Worker::with_service(
        econf,
        ports,
        clock.clone(),
        Arc::new(SharedCounters::default()),
        None,
        lb,
    )
}

/// An ARP reply from `ip` at `mac` to `to_ip` at `to_mac` (60 bytes).
pub(crate) fn arp_reply(to_mac: MacAddr, mac: MacAddr, ip: Ipv4Addr, to_ip: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0u8; 60];
    a[..6].copy_from_slice(&to_mac.0);
    a[6..12].copy_from_slice(&mac.0);
    a[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    a[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    a[22..28].copy_from_slice(&mac.0);
    a[28..32].copy_from_slice(&ip.octets());
    a[32..38].copy_from_slice(&to_mac.0);
    a[38..42].copy_from_slice(&to_ip.octets());
    a
}

struct Out {
    seq: u32,
    flags: TcpFlags,
    src_port: u16,
    ts: Option<(u32, u32)>,
}

/// Check a frame the balancer sent; returns its TCP facts.
fn check(f: &[u8], csum: bool) -> Out {
    let ip = Ipv4Packet::new_checked(&f[14..]).expect("emitted IPv4 parses");
    assert!(ip.verify_checksum(), "emitted IPv4 checksum");
    let tcp = TcpPacket::new_checked(ip.payload()).expect("emitted TCP parses");
    if csum {
        assert!(
            tcp.verify_checksum(ip.src_addr(), ip.dst_addr()),
            "built TCP checksum"
        );
    }
    Out {
        seq: tcp.seq_number(),
        flags: tcp.flags(),
        src_port: tcp.src_port(),
        ts: SynOptions::timestamps(tcp.options()),
    }
}

impl Rig {
    fn new() -> Rig {
        let clock = ManualClock::default();
        clock.advance_ms(100_000);
        let board = Arc::new(PoolBoard::new(vec![Snapshot::build(
            1,
            Policy::RoundRobin,
            vec![Backend::new(SocketAddrV4::new(SERVER, 80))],
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
            inboxes: Arc::new(vec![ArrayQueue::new(8), ArrayQueue::new(8)]),
            health: Some(Arc::new(HealthShared::new(4))),
            tls: Default::default(),
            sessions: None,
        };
        let conf = LbConf {
            vips: vec![VipConf {
                addr: SocketAddrV4::new(VIP, 80),
                pool: 0,
                session_aware: false,
                open: true,
            }],
            client_port: 0,
            backend_port: 1,
            local: LOCAL,
            sport_min: 10000,
            sport_max: 10063,
            lcore: 0,
            lcores: 2,
            max_flows: MAX_FLOWS,
            max_connecting: 8,
            syn_rto_ms: 100,
            syn_retries: 2,
            retries: 1,
            idle_timeout_ms: 5_000,
            linger_ms: 200,
            client_mss: 1460,
            min_mss: 536,
            congestion: qsplice_lb::Congestion::Cubic,
            syn_backlog: 64,
            syn_rate: 0,
            backend_mss: 1460,
            vip_ws: 7,
            hz: 1_000_000_000,
            secret: IsnSecret::from_bytes([3; 16]),
            health_path: "/".into(),
            health_status: 200,
            tls_vips: Vec::new(),
            tls_max_conns: 16,
            access_sample: 1,
            content: Vec::new(),
            kernel_ports: 0,
        };
        let lb = LbCore::new(conf, shared);
        let w = worker(lb, &clock, &[SERVER]);
        let mut r = Rig {
            w,
            clock,
            flows: Vec::new(),
        };
        r.w.poll();
        // The backend's ARP reply.
        let a = arp_reply(BMAC, PEER, SERVER, LOCAL);
        r.inject(1, a);
        r.drain(false);
        r
    }

    fn inject(&mut self, port: usize, f: Vec<u8>) {
        self.w
            .queue_mut(port)
            .rx
            .push_back(VecFrame::from_bytes(&f));
        self.w.poll();
        self.w.finish();
        let lb = self.w.service();
        assert!(lb.flows() <= MAX_FLOWS);
        assert!(lb.held() <= HOLD_MAX);
    }

    /// Take and check everything sent; returns (port, facts).
    fn drain(&mut self, csum: bool) -> Vec<(usize, Out)> {
        self.w.finish();
        let mut out = Vec::new();
        for port in 0..2 {
            for f in self.w.queue_mut(port).tx.drain(..).collect::<Vec<_>>() {
                let f = f.into_vec();
                if f.len() >= 14 && f[12..14] == [0x08, 0x00] {
                    out.push((port, check(&f, csum)));
                }
            }
        }
        out
    }

    fn handshake(&mut self, b: &[u8]) {
        let g = |i: usize| b.get(i).copied().unwrap_or(0);
        let cport = 40000 + u16::from(g(0));
        let client = SocketAddrV4::new(CLIENT, cport);
        let vip = SocketAddrV4::new(VIP, 80);
        let isn = u32::from_be_bytes([g(1), g(2), g(3), g(4)]);
        let ts = (g(5) & 1 == 1).then_some((u32::from(g(6)) << 24, 0));
        let syn = SynOptions {
            mss: (g(5) & 2 == 2).then_some(u16::from_be_bytes([g(7), g(8)])),
            ws: (g(5) & 4 == 4).then_some(g(9) % 16),
            sack_ok: g(5) & 8 == 8,
            ts,
        };
        self.inject(
            0,
            segment(PEER, CMAC, client, vip, isn, 0, TcpFlags::SYN, &syn, &[]),
        );
        let Some((_, sa)) = self.drain(true).into_iter().find(|(p, _)| *p == 0) else {
            return;
        };
        let ack_opts = SynOptions {
            ts: sa.ts.map(|(v, _)| (ts.map_or(0, |t| t.0) + 1, v)),
            ..Default::default()
        };
        let payload = &b[b.len().min(10)..];
        self.inject(
            0,
            segment(
                PEER,
                CMAC,
                client,
                vip,
                isn.wrapping_add(1),
                sa.seq.wrapping_add(1),
                TcpFlags::ACK,
                &ack_opts,
                payload,
            ),
        );
        let Some((_, bsyn)) = self
            .drain(true)
            .into_iter()
            .find(|(p, o)| *p == 1 && o.flags.contains(TcpFlags::SYN))
        else {
            return;
        };
        let local = SocketAddrV4::new(LOCAL, bsyn.src_port);
        let server = SocketAddrV4::new(SERVER, 80);
        let sopts = SynOptions {
            mss: Some(1460),
            ws: (g(5) & 16 == 16).then_some(g(10) % 16),
            sack_ok: g(5) & 32 == 32,
            ts: bsyn.ts.map(|(v, _)| (u32::from(g(11)) << 24 | 7, v)),
        };
        let sisn = u32::from_be_bytes([g(12), g(13), g(14), g(15)]);
        let flags = if g(5) & 64 == 64 {
            TcpFlags::RST | TcpFlags::ACK
        } else {
            TcpFlags::SYN | TcpFlags::ACK
        };
        self.inject(
            1,
            segment(
                PEER,
                BMAC,
                server,
                local,
                sisn,
                bsyn.seq.wrapping_add(1),
                flags,
                &sopts,
                &[],
            ),
        );
        // The ACK we build is checked; forwarded held data keeps the
        // client's checksum (valid here, so it must stay valid).
        self.drain(true);
        self.flows.push((cport, bsyn.src_port));
    }

    /// A segment on a known flow with fuzzed numbers, flags and payload.
    fn on_flow(&mut self, backend: bool, b: &[u8]) {
        let Some(&(cport, lport)) = self
            .flows
            .get(usize::from(b.first().copied().unwrap_or(0)) % self.flows.len().max(1))
        else {
            return;
        };
        let g = |i: usize| b.get(i).copied().unwrap_or(0);
        let seq = u32::from_be_bytes([g(1), g(2), g(3), g(4)]);
        let ack = u32::from_be_bytes([g(5), g(6), g(7), g(8)]);
        let flags = TcpFlags::from_bits_truncate(u16::from(g(9)) | 0x10 * u16::from(g(10) & 1));
        let opts = SynOptions {
            ts: (g(10) & 2 == 2).then_some((u32::from(g(11)), u32::from(g(12)))),
            ..Default::default()
        };
        let payload = &b[b.len().min(13)..];
        let f = if backend {
            segment(
                PEER,
                BMAC,
                SocketAddrV4::new(SERVER, 80),
                SocketAddrV4::new(LOCAL, lport),
                seq,
                ack,
                flags,
                &opts,
                payload,
            )
        } else {
            segment(
                PEER,
                CMAC,
                SocketAddrV4::new(CLIENT, cport),
                SocketAddrV4::new(VIP, 80),
                seq,
                ack,
                flags,
                &opts,
                payload,
            )
        };
        self.inject(usize::from(backend), f);
        // Input checksums are valid, translation keeps them valid.
        self.drain(true);
    }

    fn raw(&mut self, port: usize, tcp: &[u8]) {
        // Keep raw segments off the flows the script opened (their checksum
        // is arbitrary, so what they would release could not be checked).
        let mut tcp = tcp.to_vec();
        if tcp.len() >= 2 {
            let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
            let sport = if port == 0 {
                1024 + sport % 1000
            } else {
                81 + sport % 1000
            };
            tcp[..2].copy_from_slice(&sport.to_be_bytes());
        }
        let tcp = &tcp[..];
        let f = if port == 0 {
            frame(PEER, CMAC, CLIENT, VIP, tcp)
        } else {
            frame(PEER, BMAC, SERVER, LOCAL, tcp)
        };
        self.inject(port, f);
        self.drain(false);
    }

    fn advance(&mut self, b: &[u8]) {
        let ms = u64::from(b.first().copied().unwrap_or(1)) * 10;
        for _ in 0..(ms / 10).max(1) {
            self.clock.advance_ms(10);
            self.w.poll();
        }
        self.drain(true);
    }
}

/// See the module docs.
pub fn lb_segments(data: &[u8]) {
    let mut r = Rig::new();
    let mut i = 0;
    let mut steps = 0;
    while i + 2 <= data.len() && steps < 64 {
        let op = data[i];
        let len = usize::from(data[i + 1]);
        let body = &data[i + 2..(i + 2 + len).min(data.len())];
        i += 2 + len;
        steps += 1;
        match op % 6 {
            0 => r.raw(0, body),
            1 => r.raw(1, body),
            2 => r.handshake(body),
            3 => r.on_flow(false, body),
            4 => r.on_flow(true, body),
            _ => r.advance(body),
        }
    }
}
