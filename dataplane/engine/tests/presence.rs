//! The worker's L2/L3 presence on in-memory queues with a manual clock:
//! ARP replies, neighbour resolution, ICMP echo, and malformed input counted
//! by reason. Frames are raw byte fixtures.

use std::sync::Arc;

use qsplice_engine::{
    ArpConf, ControlLink, CoreCmd, CoreEvent, DropReason, EngineConf, IfAddr, PortSetup,
    SharedCounters, Worker,
};
use qsplice_netdev::mem::{ManualClock, MemQueue, VecFrame};
use qsplice_netdev::Frame;
use qsplice_wire::{Ipv4Addr, MacAddr};

const OUR_MAC: [u8; 6] = [0x02, 0x51, 0x51, 0, 0, 1];
const PEER_MAC: [u8; 6] = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x02];
const VIP: [u8; 4] = [10, 10, 1, 1];
const PEER_IP: [u8; 4] = [10, 10, 1, 2];

fn csum(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in data.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn eth(dst: [u8; 6], src: [u8; 6], et: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&et.to_be_bytes());
    f.extend_from_slice(payload);
    while f.len() < 60 {
        f.push(0);
    }
    f
}

fn arp(op: u16, smac: [u8; 6], sip: [u8; 4], tmac: [u8; 6], tip: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&smac);
    a.extend_from_slice(&sip);
    a.extend_from_slice(&tmac);
    a.extend_from_slice(&tip);
    a
}

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    let tot = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&tot.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0x40, 0, 61, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![8, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(b"abcdefghijklmnopqrstuvwabcdefghi");
    let c = csum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

struct Rig {
    w: Worker<MemQueue, ManualClock>,
    clock: ManualClock,
    shared: Arc<SharedCounters>,
    link: ControlLink,
}

fn rig(primary: bool, neighbors: Vec<Ipv4Addr>) -> Rig {
    rig_limited(primary, neighbors, 0)
}

fn rig_limited(primary: bool, neighbors: Vec<Ipv4Addr>, kernel_max_pps: u64) -> Rig {
    let clock = ManualClock::default();
    clock.advance_ms(1);
    let conf = EngineConf {
        burst: 32,
        tx_drain_us: 100,
        idle_sleep_us: 0,
        idle_spin_us: 0,
        arp: ArpConf {
            reachable_ms: 30_000,
            probe_interval_ms: 1000,
            max_probes: 3,
            gratuitous_on_start: true,
            table_size: 64,
        },
        primary,
        kernel_poll_us: 100,
        kernel_max_pps,
    };
    let setup = PortSetup {
        name: "client".into(),
        addrs6: vec![],
        addrs: vec![IfAddr {
            addr: Ipv4Addr::from(VIP),
            prefix: 24,
        }],
        neighbors,
        gateway: None,
        neighbors6: vec![],
        gateway6: None,
    };
    let shared = Arc::new(SharedCounters::default());
    let link = ControlLink::new(64);
    let w = Worker::new(
        conf,
        vec![(MemQueue::new(OUR_MAC), setup)],
        clock.clone(),
        shared.clone(),
        Some(link.clone()),
    );
    Rig {
        w,
        clock,
        shared,
        link,
    }
}

impl Rig {
    fn inject(&mut self, frame: Vec<u8>) {
        self.w
            .queue_mut(0)
            .rx
            .push_back(VecFrame::from_bytes(&frame));
    }
    /// Poll, let the TX drain timer fire, return what was sent.
    fn run(&mut self) -> Vec<Vec<u8>> {
        self.w.poll();
        self.clock.advance_ms(2);
        self.w.poll();
        std::mem::take(&mut self.w.queue_mut(0).tx)
            .into_iter()
            .map(VecFrame::into_vec)
            .collect()
    }
}

#[test]
fn primary_announces_addresses_with_gratuitous_arp() {
    let mut r = rig(true, vec![]);
    let out = r.run();
    assert_eq!(out.len(), 1);
    let f = &out[0];
    assert_eq!(&f[0..6], &[0xff; 6]);
    assert_eq!(&f[6..12], &OUR_MAC);
    assert_eq!(&f[12..14], &[0x08, 0x06]);
    assert_eq!(&f[14..22], &[0, 1, 8, 0, 6, 4, 0, 1]);
    assert_eq!(&f[28..32], &VIP, "sender ip");
    assert_eq!(&f[38..42], &VIP, "target ip = sender ip: gratuitous");
    assert_eq!(r.w.counters().arp_gratuitous_sent, 1);
    // A secondary worker does not announce.
    let mut s = rig(false, vec![]);
    assert!(s.run().is_empty());
}

#[test]
fn answers_arp_request_for_vip_in_place_and_learns_sender() {
    let mut r = rig(false, vec![]);
    r.inject(eth(
        [0xff; 6],
        PEER_MAC,
        0x0806,
        &arp(1, PEER_MAC, PEER_IP, [0; 6], VIP),
    ));
    let out = r.run();
    assert_eq!(out.len(), 1);
    let f = &out[0];
    assert_eq!(&f[0..6], &PEER_MAC);
    assert_eq!(&f[6..12], &OUR_MAC);
    assert_eq!(&f[20..22], &[0, 2], "op reply");
    assert_eq!(&f[22..28], &OUR_MAC);
    assert_eq!(&f[28..32], &VIP);
    assert_eq!(&f[32..38], &PEER_MAC);
    assert_eq!(&f[38..42], &PEER_IP);
    assert_eq!(r.w.counters().arp_requests_answered, 1);
    assert_eq!(
        r.w.neighbors().lookup(0, Ipv4Addr::from(PEER_IP)),
        Some(MacAddr(PEER_MAC))
    );
    assert_eq!(
        r.link.events.pop(),
        Some(CoreEvent::NeighLearned {
            port: 0,
            ip: Ipv4Addr::from(PEER_IP).into(),
            mac: MacAddr(PEER_MAC)
        })
    );
}

#[test]
fn arp_for_someone_else_is_dropped_and_not_learned() {
    let mut r = rig(false, vec![]);
    r.inject(eth(
        [0xff; 6],
        PEER_MAC,
        0x0806,
        &arp(1, PEER_MAC, PEER_IP, [0; 6], [10, 10, 1, 99]),
    ));
    assert!(r.run().is_empty());
    assert_eq!(r.w.counters().drops_of(DropReason::ArpNotForUs), 1);
    assert_eq!(r.w.neighbors().lookup(0, Ipv4Addr::from(PEER_IP)), None);
}

#[test]
fn resolves_configured_neighbour_and_retries() {
    let peer = Ipv4Addr::from(PEER_IP);
    let mut r = rig(true, vec![peer]);
    let out = r.run();
    // gratuitous ARP + one request for the neighbour
    let reqs: Vec<_> = out.iter().filter(|f| f[38..42] == PEER_IP).collect();
    assert_eq!(reqs.len(), 1, "one broadcast request for the neighbour");
    assert_eq!(&reqs[0][0..6], &[0xff; 6]);
    assert_eq!(
        &reqs[0][28..32],
        &VIP,
        "asked from our address on that subnet"
    );
    // Unanswered: retried after probe_interval.
    r.clock.advance_ms(1000);
    let out = r.run();
    assert_eq!(out.iter().filter(|f| f[38..42] == PEER_IP).count(), 1);
    // The reply resolves it.
    r.inject(eth(
        OUR_MAC,
        PEER_MAC,
        0x0806,
        &arp(2, PEER_MAC, PEER_IP, OUR_MAC, VIP),
    ));
    r.run();
    assert_eq!(r.w.neighbors().lookup(0, peer), Some(MacAddr(PEER_MAC)));
    assert_eq!(r.w.counters().arp_replies_received, 1);
    r.clock.advance_ms(5000);
    assert!(r.run().is_empty(), "no more requests once resolved");
}

#[test]
fn neighbour_from_control_command_is_applied() {
    let mut r = rig(false, vec![]);
    r.link
        .cmds
        .push(CoreCmd::Neigh {
            port: 0,
            ip: Ipv4Addr::from(PEER_IP).into(),
            mac: MacAddr(PEER_MAC),
        })
        .unwrap();
    r.run();
    assert_eq!(
        r.w.neighbors().lookup(0, Ipv4Addr::from(PEER_IP)),
        Some(MacAddr(PEER_MAC))
    );
}

#[test]
fn answers_ping_with_valid_checksums() {
    let mut r = rig(false, vec![]);
    let req = eth(
        OUR_MAC,
        PEER_MAC,
        0x0800,
        &ipv4(PEER_IP, VIP, 1, &echo_request(0x4242, 7)),
    );
    r.inject(req.clone());
    let out = r.run();
    assert_eq!(out.len(), 1);
    let f = &out[0];
    assert_eq!(&f[0..6], &PEER_MAC);
    assert_eq!(&f[6..12], &OUR_MAC);
    let ip = &f[14..34];
    assert_eq!(&ip[12..16], &VIP, "source is the VIP");
    assert_eq!(&ip[16..20], &PEER_IP);
    assert_eq!(ip[8], 64, "our TTL");
    assert_eq!(
        csum(ip),
        0,
        "IPv4 header checksum valid after incremental update"
    );
    let icmp_len = u16::from_be_bytes([ip[2], ip[3]]) as usize - 20;
    let icmp = &f[34..34 + icmp_len];
    assert_eq!(icmp[0], 0, "echo reply");
    assert_eq!(&icmp[4..8], &[0x42, 0x42, 0, 7], "id and seq echoed");
    assert_eq!(&icmp[8..], &req[42..42 + icmp_len - 8], "payload echoed");
    assert_eq!(
        csum(icmp),
        0,
        "ICMP checksum valid after incremental update"
    );
    assert_eq!(r.w.counters().icmp_echo_replied, 1);
}

#[test]
#[allow(clippy::vec_init_then_push)]
fn malformed_frames_are_counted_by_reason_never_answered() {
    let mut r = rig(false, vec![]);
    let good_ip = ipv4(PEER_IP, VIP, 1, &echo_request(1, 1));
    let mut cases: Vec<(DropReason, Vec<u8>)> = Vec::new();
    cases.push((DropReason::EthTruncated, vec![0xff; 10]));
    cases.push((
        DropReason::NotOurMac,
        eth([0x02, 9, 9, 9, 9, 9], PEER_MAC, 0x0800, &good_ip),
    ));
    cases.push((
        DropReason::L2Multicast,
        eth([0x01, 0, 0x5e, 0, 0, 1], PEER_MAC, 0x0800, &good_ip),
    ));
    cases.push((
        DropReason::UnknownEthertype,
        eth(OUR_MAC, PEER_MAC, 0x88b5, b"hi"),
    ));
    cases.push((
        DropReason::Ipv6,
        eth(OUR_MAC, PEER_MAC, 0x86dd, &[0x60; 40]),
    ));
    let mut bad_csum = good_ip.clone();
    bad_csum[10] ^= 0xff;
    cases.push((
        DropReason::Ipv4BadChecksum,
        eth(OUR_MAC, PEER_MAC, 0x0800, &bad_csum),
    ));
    let mut bad_ver = good_ip.clone();
    bad_ver[0] = 0x65;
    cases.push((
        DropReason::Ipv4BadVersion,
        eth(OUR_MAC, PEER_MAC, 0x0800, &bad_ver),
    ));
    let mut bad_ihl = good_ip.clone();
    bad_ihl[0] = 0x43;
    cases.push((
        DropReason::Ipv4BadHeaderLen,
        eth(OUR_MAC, PEER_MAC, 0x0800, &bad_ihl),
    ));
    let mut bad_tot = good_ip.clone();
    bad_tot[2..4].copy_from_slice(&1400u16.to_be_bytes());
    cases.push((
        DropReason::Ipv4BadTotalLen,
        eth(OUR_MAC, PEER_MAC, 0x0800, &bad_tot),
    ));
    let mut trunc = eth(OUR_MAC, PEER_MAC, 0x0800, &good_ip[..10]);
    trunc.truncate(24);
    cases.push((DropReason::Ipv4Truncated, trunc));
    cases.push((
        DropReason::Ipv4NotForUs,
        eth(
            OUR_MAC,
            PEER_MAC,
            0x0800,
            &ipv4(PEER_IP, [10, 10, 1, 77], 1, &echo_request(1, 1)),
        ),
    ));
    cases.push((
        DropReason::Ipv4BadSource,
        eth(
            OUR_MAC,
            PEER_MAC,
            0x0800,
            &ipv4([255, 255, 255, 255], VIP, 1, &echo_request(1, 1)),
        ),
    ));
    let mut frag = good_ip.clone();
    frag[6] = 0x20; // MF
    let c = {
        frag[10] = 0;
        frag[11] = 0;
        csum(&frag[..20])
    };
    frag[10..12].copy_from_slice(&c.to_be_bytes());
    cases.push((
        DropReason::Ipv4Fragment,
        eth(OUR_MAC, PEER_MAC, 0x0800, &frag),
    ));
    let mut bad_icmp = echo_request(1, 1);
    bad_icmp[2] ^= 0x55;
    cases.push((
        DropReason::IcmpBadChecksum,
        eth(OUR_MAC, PEER_MAC, 0x0800, &ipv4(PEER_IP, VIP, 1, &bad_icmp)),
    ));
    cases.push((
        DropReason::IcmpTruncated,
        eth(
            OUR_MAC,
            PEER_MAC,
            0x0800,
            &ipv4(PEER_IP, VIP, 1, &[8, 0, 0]),
        ),
    ));
    let mut unreach = vec![3, 3, 0, 0, 0, 0, 0, 0];
    let c = csum(&unreach);
    unreach[2..4].copy_from_slice(&c.to_be_bytes());
    cases.push((
        DropReason::IcmpUnhandled,
        eth(OUR_MAC, PEER_MAC, 0x0800, &ipv4(PEER_IP, VIP, 1, &unreach)),
    ));
    cases.push((
        DropReason::TcpNoService,
        eth(OUR_MAC, PEER_MAC, 0x0800, &ipv4(PEER_IP, VIP, 6, &[0; 20])),
    ));
    cases.push((
        DropReason::UdpNoService,
        eth(OUR_MAC, PEER_MAC, 0x0800, &ipv4(PEER_IP, VIP, 17, &[0; 8])),
    ));
    cases.push((
        DropReason::UnknownProtocol,
        eth(OUR_MAC, PEER_MAC, 0x0800, &ipv4(PEER_IP, VIP, 47, &[0; 8])),
    ));
    cases.push((
        DropReason::ArpTruncated,
        eth(OUR_MAC, PEER_MAC, 0x0806, &[0, 1, 8, 0])
            .into_iter()
            .take(18)
            .collect(),
    ));
    cases.push((
        DropReason::ArpUnsupported,
        eth(OUR_MAC, PEER_MAC, 0x0806, &{
            let mut a = arp(1, PEER_MAC, PEER_IP, [0; 6], VIP);
            a[1] = 6; // htype IEEE 802
            a
        }),
    ));
    cases.push((
        DropReason::ArpInvalid,
        eth(
            [0xff; 6],
            PEER_MAC,
            0x0806,
            &arp(1, [0xff; 6], PEER_IP, [0; 6], VIP),
        ),
    ));

    for (reason, frame) in &cases {
        r.inject(frame.clone());
        let out = r.run();
        assert!(
            out.is_empty(),
            "{reason:?}: malformed frame must not be answered, got {out:?}"
        );
        assert_eq!(
            r.w.counters().drops_of(*reason),
            1,
            "{reason:?} counted once"
        );
    }
    assert_eq!(
        r.w.counters().total_drops(),
        cases.len() as u64,
        "each frame counted under exactly one reason"
    );
    // Still healthy afterwards.
    r.inject(eth(
        OUR_MAC,
        PEER_MAC,
        0x0800,
        &ipv4(PEER_IP, VIP, 1, &echo_request(9, 9)),
    ));
    assert_eq!(r.run().len(), 1);
    // Counters were published for the control thread.
    assert_eq!(r.shared.snapshot().icmp_echo_replied, 1);
}

#[test]
fn vlan_tagged_request_gets_tagged_reply() {
    let mut r = rig(false, vec![]);
    let mut payload = vec![0x00, 0x64, 0x08, 0x06]; // VID 100, inner ARP
    payload.extend_from_slice(&arp(1, PEER_MAC, PEER_IP, [0; 6], VIP));
    r.inject(eth([0xff; 6], PEER_MAC, 0x8100, &payload));
    let out = r.run();
    assert_eq!(out.len(), 1);
    assert_eq!(
        &out[0][12..18],
        &[0x81, 0x00, 0x00, 0x64, 0x08, 0x06],
        "tag kept"
    );
    assert_eq!(&out[0][24..26], &[0, 2], "ARP reply");
}

#[test]
fn tx_full_is_counted_not_fatal() {
    let mut r = rig(false, vec![]);
    r.w.queue_mut(0).tx_limit = 0;
    r.inject(eth(
        OUR_MAC,
        PEER_MAC,
        0x0800,
        &ipv4(PEER_IP, VIP, 1, &echo_request(1, 1)),
    ));
    assert!(r.run().is_empty());
    assert_eq!(r.w.counters().drops_of(DropReason::TxFull), 1);
}

#[test]
fn random_garbage_never_panics() {
    let mut r = rig(true, vec![Ipv4Addr::from(PEER_IP)]);
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for i in 0..20_000 {
        let len = (i * 7) % 120;
        let mut f = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            f.push(x as u8);
        }
        // Bias toward our MAC and real ethertypes so deeper layers get hit.
        if f.len() >= 14 && i % 2 == 0 {
            f[..6].copy_from_slice(&OUR_MAC);
            f[12..14].copy_from_slice(if i % 4 == 0 { &[8, 0] } else { &[8, 6] });
        }
        r.inject(f);
        if i % 64 == 0 {
            r.run();
        }
    }
    r.run();
    let c = r.w.counters();
    assert_eq!(c.rx_packets, 20_000);
    let accounted =
        c.total_drops() + c.arp_requests_answered + c.arp_replies_received + c.icmp_echo_replied;
    assert_eq!(
        accounted, 20_000,
        "every frame is either answered, consumed, or counted as a drop"
    );
    let _ = Frame::len(&VecFrame::from_bytes(&[]));
}

// ---------------------------------------------------------------------------
// The exception path: a port's kernel interface
// ---------------------------------------------------------------------------

fn kernel_rig() -> Rig {
    let mut r = rig(false, vec![]);
    r.w.attach_kernel(0, MemQueue::new(OUR_MAC));
    r
}

impl Rig {
    fn take_kernel_tx(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.w.kernel_queue_mut(0).expect("kernel path").tx)
            .into_iter()
            .map(VecFrame::into_vec)
            .collect()
    }
}

fn udp(sport: u16, dport: u16, body: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]); // no checksum (IPv4 allows it)
    u.extend_from_slice(body);
    u
}

#[test]
fn unserved_traffic_to_our_address_goes_to_the_kernel_unchanged() {
    let mut r = kernel_rig();
    // BFD control (UDP 3784), OSPF-like protocol 89, an echo reply to a
    // ping the kernel sent: none is served by the dataplane.
    let bfd = eth(
        OUR_MAC,
        PEER_MAC,
        0x0800,
        &ipv4(PEER_IP, VIP, 17, &udp(49152, 3784, &[0x20; 24])),
    );
    let ospf = eth(
        OUR_MAC,
        PEER_MAC,
        0x0800,
        &ipv4(PEER_IP, VIP, 89, &[1, 2, 3, 4]),
    );
    let mut reply = echo_request(7, 1);
    reply[0] = 0;
    let c = csum(&{
        let mut z = reply.clone();
        z[2] = 0;
        z[3] = 0;
        z
    });
    reply[2..4].copy_from_slice(&c.to_be_bytes());
    let echo_reply = eth(OUR_MAC, PEER_MAC, 0x0800, &ipv4(PEER_IP, VIP, 1, &reply));
    for f in [&bfd, &ospf, &echo_reply] {
        r.inject(f.clone());
    }
    let out = r.run();
    assert!(out.is_empty(), "nothing answered on the wire: {out:?}");
    let k = r.take_kernel_tx();
    assert_eq!(
        k,
        vec![bfd, ospf, echo_reply],
        "handed over byte for byte, in order"
    );
    let c = r.w.counters();
    assert_eq!(c.kernel_in, 3);
    assert_eq!(c.drops_of(DropReason::UdpNoService), 0);
    assert_eq!(c.drops_of(DropReason::UnknownProtocol), 0);
    assert_eq!(c.drops_of(DropReason::IcmpUnhandled), 0);
}

#[test]
fn what_the_dataplane_answers_or_rejects_never_reaches_the_kernel() {
    let mut r = kernel_rig();
    // An echo request is answered by the engine itself.
    r.inject(eth(
        OUR_MAC,
        PEER_MAC,
        0x0800,
        &ipv4(PEER_IP, VIP, 1, &echo_request(1, 1)),
    ));
    // Not our address, bad checksum, another MAC: dropped as before.
    r.inject(eth(
        OUR_MAC,
        PEER_MAC,
        0x0800,
        &ipv4(PEER_IP, [10, 10, 1, 77], 17, &udp(1, 2, b"x")),
    ));
    let mut bad = ipv4(PEER_IP, VIP, 17, &udp(1, 2, b"x"));
    bad[10] ^= 0xff;
    r.inject(eth(OUR_MAC, PEER_MAC, 0x0800, &bad));
    r.inject(eth(
        [0x02, 9, 9, 9, 9, 9],
        PEER_MAC,
        0x0800,
        &ipv4(PEER_IP, VIP, 17, &udp(1, 2, b"x")),
    ));
    // An ARP request for us is answered here (the kernel does not answer
    // it a second time).
    r.inject(eth(
        [0xff; 6],
        PEER_MAC,
        0x0806,
        &arp(1, PEER_MAC, PEER_IP, [0; 6], VIP),
    ));
    let out = r.run();
    assert_eq!(out.len(), 2, "echo reply and ARP reply");
    assert!(r.take_kernel_tx().is_empty());
    let c = r.w.counters();
    assert_eq!(c.kernel_in, 0);
    assert_eq!(c.drops_of(DropReason::Ipv4NotForUs), 1);
    assert_eq!(c.drops_of(DropReason::Ipv4BadChecksum), 1);
    assert_eq!(c.drops_of(DropReason::NotOurMac), 1);
}

#[test]
fn arp_replies_are_learned_and_passed_to_the_kernel() {
    let mut r = kernel_rig();
    let reply = eth(
        OUR_MAC,
        PEER_MAC,
        0x0806,
        &arp(2, PEER_MAC, PEER_IP, OUR_MAC, VIP),
    );
    r.inject(reply.clone());
    r.run();
    assert_eq!(
        r.w.neighbors().lookup(0, Ipv4Addr::from(PEER_IP)),
        Some(MacAddr(PEER_MAC))
    );
    assert_eq!(r.take_kernel_tx(), vec![reply]);
}

#[test]
fn what_the_kernel_sends_leaves_through_the_port() {
    let mut r = kernel_rig();
    let syn = eth(PEER_MAC, OUR_MAC, 0x0800, &ipv4(VIP, PEER_IP, 6, &[0; 20]));
    let arp_req = eth(
        [0xff; 6],
        OUR_MAC,
        0x0806,
        &arp(1, OUR_MAC, VIP, [0; 6], PEER_IP),
    );
    {
        let k = r.w.kernel_queue_mut(0).unwrap();
        k.rx.push_back(VecFrame::from_bytes(&syn));
        k.rx.push_back(VecFrame::from_bytes(&arp_req));
        k.rx.push_back(VecFrame::from_bytes(&[1, 2, 3])); // a runt
    }
    let out = r.run();
    assert_eq!(
        out,
        vec![syn, arp_req],
        "forwarded as the kernel built them"
    );
    let c = r.w.counters();
    assert_eq!(c.kernel_out, 2);
    assert_eq!(c.drops_of(DropReason::EthTruncated), 1);
}

#[test]
fn without_a_kernel_path_unserved_traffic_is_dropped_by_reason() {
    let mut r = rig(false, vec![]);
    r.inject(eth(
        OUR_MAC,
        PEER_MAC,
        0x0800,
        &ipv4(PEER_IP, VIP, 17, &udp(1, 3784, b"x")),
    ));
    r.inject(eth(
        OUR_MAC,
        PEER_MAC,
        0x0800,
        &ipv4(PEER_IP, VIP, 89, &[0; 8]),
    ));
    assert!(r.run().is_empty());
    let c = r.w.counters();
    assert_eq!(c.drops_of(DropReason::UdpNoService), 1);
    assert_eq!(c.drops_of(DropReason::UnknownProtocol), 1);
    assert_eq!(c.kernel_in, 0);
}

#[test]
fn a_flood_to_the_kernel_is_bounded_per_second() {
    let mut r = rig_limited(false, vec![], 50);
    r.w.attach_kernel(0, MemQueue::new(OUR_MAC));
    let f = eth(
        OUR_MAC,
        PEER_MAC,
        0x0800,
        &ipv4(PEER_IP, VIP, 17, &udp(1, 22, b"x")),
    );
    for _ in 0..4 {
        for _ in 0..30 {
            r.inject(f.clone());
        }
        r.run();
    }
    let c = r.w.counters();
    assert_eq!(c.kernel_in, 50, "a second's worth of tokens");
    assert_eq!(c.kernel_in_limited, 70);
    assert_eq!(r.take_kernel_tx().len(), 50);
    // (the four runs above took 8 ms: no refill worth a token at 50/s)
    // A second later the bucket is full again.
    r.clock.advance_ms(1000);
    for _ in 0..2 {
        for _ in 0..30 {
            r.inject(f.clone());
        }
        r.run();
    }
    let c = r.w.counters();
    assert_eq!(c.kernel_in, 100);
    assert_eq!(c.kernel_in_limited, 80);
}
