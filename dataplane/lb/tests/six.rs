//! IPv6 legs of the balancer inside a real engine worker on in-memory
//! queues: an IPv6 client through an IPv6 VIP to an IPv6 backend, byte for
//! byte (the backend resolved by Neighbor Discovery, every segment's
//! addresses, checksum, hop limit and flow label checked), NAT46's smaller
//! MSS, and what the edge refuses.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;
use qsplice_engine::{ArpConf, EngineConf, IfAddr, IfAddr6, PortSetup, SharedCounters, Worker};
use qsplice_lb::board::Services;
use qsplice_lb::six::{static_standin, SixMap};
use qsplice_lb::tcp::{write_segment, write_syn_options, Segment, SynOptions};
use qsplice_lb::{BackendCounters, LbConf, LbCore, LbShared, PoolBoard, SharedLbCounters, VipConf};
use qsplice_netdev::mem::{ManualClock, MemQueue, VecFrame};
use qsplice_pool::{Backend, Policy, Snapshot};
use qsplice_splice::family::{tcp4_to_6, tcp6_to_4};
use qsplice_splice::isn::IsnSecret;
use qsplice_wire::{Ipv4Packet, Ipv6Packet, MacAddr, TcpFlags, TcpPacket};

const CMAC: MacAddr = MacAddr([2, 0x51, 0, 0, 0, 1]);
const BMAC: MacAddr = MacAddr([2, 0x51, 0, 0, 0, 2]);
const CLIENT_MAC: MacAddr = MacAddr([2, 0xcc, 0, 0, 0, 1]);
const SERVER_MAC: MacAddr = MacAddr([2, 0xbb, 0, 0, 0, 1]);
const VIP4: Ipv4Addr = Ipv4Addr::new(10, 10, 1, 1);
const LOCAL4: Ipv4Addr = Ipv4Addr::new(10, 10, 2, 1);

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}
fn vip6() -> Ipv6Addr {
    v6("2001:db8:1::1")
}
fn client6() -> Ipv6Addr {
    v6("2001:db8:1::2")
}
fn local6() -> Ipv6Addr {
    v6("2001:db8:2::1")
}
fn server6() -> Ipv6Addr {
    v6("2001:db8:2::11")
}

type W = Worker<MemQueue, ManualClock, LbCore<VecFrame>>;

struct Rig {
    w: W,
    counters: Arc<SharedLbCounters>,
}

/// VIP 0: [vip6]:80 → [server6]:8080; VIP 1 (NAT46): 10.10.1.1:80 → the same.
fn rig() -> Rig {
    let clock = ManualClock::default();
    clock.advance_ms(5_000);
    let (vip_lane, server_lane) = (static_standin(2), static_standin(1));
    let six = SixMap::new(
        [(server6(), server_lane), (vip6(), vip_lane)],
        Some(local6()),
        vec![SocketAddrV4::new(VIP4, 80)],
    );
    let vips = vec![
        VipConf {
            addr: SocketAddrV4::new(vip_lane, 80),
            pool: 0,
            session_aware: false,
            open: true,
        },
        VipConf {
            addr: SocketAddrV4::new(VIP4, 80),
            pool: 1,
            session_aware: false,
            open: true,
        },
    ];
    let pool = || {
        Snapshot::build(
            1,
            Policy::RoundRobin,
            vec![Backend::new(SocketAddrV4::new(server_lane, 8080))],
            vec![],
            qsplice_pool::MAGLEV_M,
        )
    };
    let board = Arc::new(PoolBoard::new(Vec::new()));
    board.publish_services(
        Services {
            vips: vips.clone(),
            tls_vips: Vec::new(),
            content: Vec::new(),
            access_sample: 0,
            six,
        },
        vec![pool(), pool()],
    );
    let counters = Arc::new(SharedLbCounters::default());
    let shared = LbShared {
        board: board.clone(),
        counters: counters.clone(),
        hists: Default::default(),
        access: None,
        flowsync: None,
        backends: Arc::new(BackendCounters::new(&[1, 1])),
        inboxes: Arc::new(vec![ArrayQueue::new(64)]),
        health: None,
        tls: Default::default(),
        sessions: None,
    };
    let conf = LbConf {
        vips,
        client_port: 0,
        backend_port: 1,
        local: LOCAL4,
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
        health_path: "/".into(),
        health_status: 200,
        tls_vips: Vec::new(),
        tls_max_conns: 16,
        access_sample: 0,
        content: Vec::new(),
        kernel_ports: 0,
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
                addrs: vec![IfAddr {
                    addr: VIP4,
                    prefix: 24,
                }],
                addrs6: vec![IfAddr6 {
                    addr: vip6(),
                    prefix: 64,
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
                addrs: vec![IfAddr {
                    addr: LOCAL4,
                    prefix: 24,
                }],
                addrs6: vec![IfAddr6 {
                    addr: local6(),
                    prefix: 64,
                }],
                neighbors: vec![],
                gateway: None,
                neighbors6: vec![server6()],
                gateway6: None,
            },
        ),
    ];
    let w = Worker::with_service(
        econf,
        ports,
        clock,
        Arc::new(SharedCounters::default()),
        None,
        lb,
    );
    let mut r = Rig { w, counters };
    // Start: a Neighbor Solicitation for the backend; its advertisement.
    r.w.poll();
    r.take(1);
    let mut na = vec![0u8; 32];
    qsplice_wire::icmpv6::write_neighbor_advert(&mut na, server6(), 0x60, SERVER_MAC).unwrap();
    {
        let mut m = qsplice_wire::Icmpv6Packet::new_unchecked(&mut na[..]);
        m.fill_checksum(server6(), local6());
    }
    let mut f = Vec::new();
    f.extend_from_slice(&BMAC.0);
    f.extend_from_slice(&SERVER_MAC.0);
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(na.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, 255]);
    f.extend_from_slice(&server6().octets());
    f.extend_from_slice(&local6().octets());
    f.extend_from_slice(&na);
    r.inject(1, f);
    r.take(1);
    r
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
    fn lb(&self) -> qsplice_lb::LbCounters {
        self.w.service().counters().clone()
    }
}

/// A TCP/IPv6 segment (built as IPv4, then translated).
#[allow(clippy::too_many_arguments)]
fn seg6(
    (from, to): (MacAddr, MacAddr),
    (src, sport): (Ipv6Addr, u16),
    (dst, dport): (Ipv6Addr, u16),
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    opts: &SynOptions,
    payload: &[u8],
) -> Vec<u8> {
    let mut ob = [0u8; 40];
    let n = if flags.contains(TcpFlags::SYN) {
        write_syn_options(&mut ob, opts)
    } else {
        0
    };
    let mut buf = vec![0u8; 2048];
    let len = write_segment(
        &mut buf[20..],
        &Segment {
            src_mac: from,
            dst_mac: to,
            src: SocketAddrV4::new(Ipv4Addr::new(1, 1, 1, 1), sport),
            dst: SocketAddrV4::new(Ipv4Addr::new(2, 2, 2, 2), dport),
            seq,
            ack,
            flags,
            window: 8000,
            options: &ob[..n],
            payload,
        },
    )
    .unwrap();
    buf.truncate(20 + len);
    let ihl = 20;
    let start = tcp4_to_6(&mut buf, (20, 34, 34 + ihl), src, dst, 7).unwrap();
    assert_eq!(start, 0);
    let total = 14 + 40 + (len - 34);
    buf.truncate(total);
    buf
}

/// An IPv6 frame the worker sent, checked and read: (hop limit, flow
/// label, src, dst, sport, dport, seq, ack, flags, SYN options, payload).
#[derive(Debug)]
struct Out6 {
    hop: u8,
    flow: u32,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    eth_dst: MacAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    mss: Option<u16>,
    payload: Vec<u8>,
}

fn parse6(f: &[u8]) -> Out6 {
    assert_eq!(&f[12..14], &[0x86, 0xdd], "an IPv6 frame: {f:02x?}");
    let ip = Ipv6Packet::new_checked(&f[14..]).expect("ipv6");
    assert_eq!(
        f.len(),
        14 + 40 + usize::from(ip.payload_len()),
        "no padding"
    );
    let tcp = TcpPacket::new_checked(ip.payload()).expect("tcp");
    assert!(
        tcp.verify_checksum_v6(ip.src_addr(), ip.dst_addr()),
        "tcp checksum over the IPv6 pseudo-header"
    );
    let mss = if tcp.flags().contains(TcpFlags::SYN) {
        SynOptions::parse(tcp.options()).unwrap().mss
    } else {
        None
    };
    Out6 {
        hop: ip.hop_limit(),
        flow: ip.flow_label(),
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        eth_dst: MacAddr::from_bytes(&f[0..6]).unwrap(),
        sport: tcp.src_port(),
        dport: tcp.dst_port(),
        seq: tcp.seq_number(),
        ack: tcp.ack_number(),
        flags: tcp.flags(),
        mss,
        payload: tcp.payload().to_vec(),
    }
}

#[test]
fn an_ipv6_client_reaches_an_ipv6_backend_byte_for_byte() {
    let mut r = rig();
    let syn_opts = SynOptions {
        mss: Some(1440),
        ..Default::default()
    };
    let c = (CLIENT_MAC, CMAC);
    r.inject(
        0,
        seg6(
            c,
            (client6(), 40001),
            (vip6(), 80),
            1000,
            0,
            TcpFlags::SYN,
            &syn_opts,
            &[],
        ),
    );
    let out = r.take(0);
    assert_eq!(out.len(), 1, "one SYN-ACK");
    let sa = parse6(&out[0]);
    assert_eq!(
        (sa.src, sa.dst, sa.sport, sa.dport),
        (vip6(), client6(), 80, 40001)
    );
    assert_eq!(sa.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!((sa.ack, sa.eth_dst), (1001, CLIENT_MAC));
    assert_eq!(
        sa.mss,
        Some(1460),
        "an IPv6 VIP with IPv6 backends: no narrowing"
    );
    assert!(sa.hop > 0 && sa.flow > 0 && sa.flow <= 0xf_ffff);

    // The handshake's ACK with the request: the backend gets a SYN over IPv6.
    let req = b"GET / HTTP/1.1\r\nHost: v\r\n\r\n";
    r.inject(
        0,
        seg6(
            c,
            (client6(), 40001),
            (vip6(), 80),
            1001,
            sa.seq + 1,
            TcpFlags::ACK | TcpFlags::PSH,
            &SynOptions::default(),
            req,
        ),
    );
    let out = r.take(1);
    assert_eq!(out.len(), 1, "a backend SYN");
    let bs = parse6(&out[0]);
    assert_eq!((bs.src, bs.dst, bs.dport), (local6(), server6(), 8080));
    assert_eq!(bs.eth_dst, SERVER_MAC, "resolved by Neighbor Discovery");
    assert_eq!(bs.flags, TcpFlags::SYN);
    assert!((10000..=10999).contains(&bs.sport));
    assert_eq!(bs.mss, Some(1400), "min(the client's 1440, backend_mss)");

    // The backend's SYN-ACK: the held request goes out, translated.
    let b = (SERVER_MAC, BMAC);
    r.inject(
        1,
        seg6(
            b,
            (server6(), 8080),
            (local6(), bs.sport),
            5000,
            bs.seq + 1,
            TcpFlags::SYN | TcpFlags::ACK,
            &SynOptions {
                mss: Some(1440),
                ..Default::default()
            },
            &[],
        ),
    );
    let out: Vec<Out6> = r.take(1).iter().map(|f| parse6(f)).collect();
    let data = out
        .iter()
        .find(|o| !o.payload.is_empty())
        .unwrap_or_else(|| panic!("the held request: {out:?}"));
    assert_eq!(data.payload, req);
    assert_eq!((data.src, data.dst), (local6(), server6()));

    // The response back to the client.
    r.inject(
        1,
        seg6(
            b,
            (server6(), 8080),
            (local6(), bs.sport),
            5001,
            data.seq + req.len() as u32,
            TcpFlags::ACK | TcpFlags::PSH,
            &SynOptions::default(),
            b"HTTP/1.1 200 OK\r\n\r\n",
        ),
    );
    let out: Vec<Out6> = r.take(0).iter().map(|f| parse6(f)).collect();
    let resp = out
        .iter()
        .find(|o| !o.payload.is_empty())
        .expect("the response");
    assert_eq!(
        (resp.src, resp.dst, resp.sport, resp.dport),
        (vip6(), client6(), 80, 40001)
    );
    assert_eq!(
        resp.ack,
        1001 + req.len() as u32,
        "the client's bytes acknowledged in its sequence space"
    );
    assert_eq!(
        resp.seq,
        sa.seq + 1,
        "the backend's bytes in the VIP's sequence space"
    );
    let c = r.lb();
    assert!(c.six_in >= 4 && c.six_out >= 4, "{c:?}");
    assert_eq!(
        (c.six_bad, c.six_untranslatable, c.six_unknown_source),
        (0, 0, 0)
    );
    assert_eq!(c.conn_spliced, 1);
    let _ = &r.counters;
}

#[test]
fn nat46_clients_are_told_a_smaller_mss_and_strangers_are_refused() {
    let mut r = rig();
    // An IPv4 client to the IPv4 VIP whose backend is IPv6.
    let mut buf = vec![0u8; 128];
    let mut ob = [0u8; 40];
    let n = write_syn_options(
        &mut ob,
        &SynOptions {
            mss: Some(1460),
            ..Default::default()
        },
    );
    let len = write_segment(
        &mut buf,
        &Segment {
            src_mac: CLIENT_MAC,
            dst_mac: CMAC,
            src: SocketAddrV4::new(Ipv4Addr::new(10, 10, 1, 2), 40002),
            dst: SocketAddrV4::new(VIP4, 80),
            seq: 1,
            ack: 0,
            flags: TcpFlags::SYN,
            window: 8000,
            options: &ob[..n],
            payload: &[],
        },
    )
    .unwrap();
    buf.truncate(len);
    r.inject(0, buf);
    let out = r.take(0);
    assert_eq!(out.len(), 1);
    let ip = Ipv4Packet::new_checked(&out[0][14..]).unwrap();
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    let o = SynOptions::parse(tcp.options()).unwrap();
    assert_eq!(
        o.mss,
        Some(1440),
        "1460 less the IPv6 header's 20 more bytes"
    );

    // A segment to lb.local6 from an address that is no backend.
    let b = (SERVER_MAC, BMAC);
    r.inject(
        1,
        seg6(
            b,
            (v6("2001:db8:2::99"), 8080),
            (local6(), 10001),
            1,
            1,
            TcpFlags::ACK,
            &SynOptions::default(),
            &[],
        ),
    );
    assert!(r.take(1).is_empty());
    assert_eq!(r.lb().six_unknown_source, 1);
    // A truncated IPv6 TCP segment (payload length says 20, 12 bytes there)
    // is the engine's to drop: the balancer never sees it.
    let mut f = seg6(
        (CLIENT_MAC, CMAC),
        (client6(), 40003),
        (vip6(), 80),
        1,
        0,
        TcpFlags::SYN,
        &SynOptions::default(),
        &[],
    );
    f.truncate(14 + 40 + 12);
    r.inject(0, f);
    assert!(r.take(0).is_empty());
    assert_eq!(r.lb().six_in, 0, "nothing translated");
}

#[test]
fn tcp6_to_4_keeps_what_the_ipv4_path_checks() {
    // A sanity check of the fixture builder itself: seg6 → IPv4 round trip.
    let f = seg6(
        (CLIENT_MAC, CMAC),
        (client6(), 1),
        (vip6(), 2),
        3,
        4,
        TcpFlags::ACK,
        &SynOptions::default(),
        b"x",
    );
    let mut g = f.clone();
    let s = tcp6_to_4(
        &mut g,
        (0, 14, 54),
        Ipv4Addr::new(248, 0, 0, 1),
        Ipv4Addr::new(240, 0, 0, 2),
    )
    .unwrap();
    let ip = Ipv4Packet::new_checked(&g[s + 14..]).unwrap();
    assert!(ip.verify_checksum());
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    assert!(tcp.verify_checksum(ip.src_addr(), ip.dst_addr()));
    assert_eq!(tcp.payload(), b"x");
}

#[test]
fn hostile_ipv6_segments_are_counted_and_dropped_and_extension_headers_pass() {
    let mut r = rig();
    let syn = |port: u16| {
        seg6(
            (CLIENT_MAC, CMAC),
            (client6(), port),
            (vip6(), 80),
            1,
            0,
            TcpFlags::SYN,
            &SynOptions {
                mss: Some(1440),
                ..Default::default()
            },
            &[],
        )
    };
    // A bad TCP checksum: no answer, counted after translation as on IPv4.
    let mut f = syn(41000);
    f[54 + 16] ^= 0x5a;
    r.inject(0, f);
    assert!(r.take(0).is_empty());
    assert_eq!(r.lb().drop_tcp_bad_checksum, 1);
    // A data offset past the segment.
    let mut f = syn(41001);
    f[54 + 12] = 15 << 4;
    r.inject(0, f);
    assert!(r.take(0).is_empty());
    assert_eq!(r.lb().drop_tcp_malformed, 1);
    // A SYN behind a hop-by-hop options header (8 bytes of padding): the
    // engine walks it, the edge drops it in translation, the SYN is answered.
    let mut f = syn(41002);
    f[20] = 0; // next header: hop-by-hop
    f.splice(54..54, [6u8, 0, 1, 4, 0, 0, 0, 0]);
    let pl = u16::from_be_bytes([f[18], f[19]]) + 8;
    f[18..20].copy_from_slice(&pl.to_be_bytes());
    r.inject(0, f);
    let out = r.take(0);
    assert_eq!(
        out.len(),
        1,
        "the SYN behind an extension header is answered"
    );
    let sa = parse6(&out[0]);
    assert_eq!(
        (sa.dst, sa.dport, sa.flags),
        (client6(), 41002, TcpFlags::SYN | TcpFlags::ACK)
    );
    let c = r.lb();
    assert_eq!((c.six_bad, c.six_untranslatable), (0, 0));
}
