//! IPv6 presence of a worker, byte for byte: neighbor solicitations for
//! our addresses answered (unicast, to the solicited-node group, and a
//! duplicate-address probe), ICMPv6 echo answered, unsolicited
//! advertisements at start, and every bad or unhandled IPv6 frame counted
//! by reason, never a panic.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use proptest::prelude::*;
use qsplice_engine::{
    ArpConf, DropReason, EngineConf, IfAddr, IfAddr6, PortSetup, SharedCounters, Worker,
};
use qsplice_netdev::mem::{ManualClock, MemQueue, VecFrame};
use qsplice_wire::icmpv6::{kind, na_flags, nd_option};
use qsplice_wire::ipv6::{link_local, multicast_mac, solicited_node};
use qsplice_wire::{Icmpv6Packet, Ipv6Packet, MacAddr};

const OUR_MAC: [u8; 6] = [0x02, 0x51, 0, 0, 0, 1];
const PEER_MAC: [u8; 6] = [0x02, 0xcc, 0, 0, 0, 2];

fn ours() -> Ipv6Addr {
    "2001:db8:1::1".parse().unwrap()
}
fn peer() -> Ipv6Addr {
    "2001:db8:1::2".parse().unwrap()
}

fn rig(primary: bool, v6: bool) -> (Worker<MemQueue, ManualClock>, ManualClock) {
    rig_with(primary, v6, vec![])
}

fn rig_with(
    primary: bool,
    v6: bool,
    neighbors6: Vec<Ipv6Addr>,
) -> (Worker<MemQueue, ManualClock>, ManualClock) {
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
        kernel_max_pps: 0,
    };
    let setup = PortSetup {
        name: "p".into(),
        addrs: vec![IfAddr {
            addr: Ipv4Addr::new(10, 10, 1, 1),
            prefix: 24,
        }],
        addrs6: if v6 {
            vec![IfAddr6 {
                addr: ours(),
                prefix: 64,
            }]
        } else {
            vec![]
        },
        neighbors: vec![],
        gateway: None,
        neighbors6,
        gateway6: None,
    };
    let w = Worker::new(
        conf,
        vec![(MemQueue::new(OUR_MAC), setup)],
        clock.clone(),
        Arc::new(SharedCounters::default()),
        None,
    );
    (w, clock)
}

fn run(
    w: &mut Worker<MemQueue, ManualClock>,
    clock: &ManualClock,
    frames: Vec<Vec<u8>>,
) -> Vec<Vec<u8>> {
    for f in frames {
        w.queue_mut(0).rx.push_back(VecFrame::from_bytes(&f));
    }
    w.poll();
    clock.advance_ms(2);
    w.poll();
    std::mem::take(&mut w.queue_mut(0).tx)
        .into_iter()
        .map(VecFrame::into_vec)
        .collect()
}

/// An Ethernet + IPv6 frame around `l4` (next header `nh`).
fn ip6(dst_mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr, nh: u8, hop: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = dst_mac.to_vec();
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    f.extend_from_slice(&[nh, hop]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(l4);
    f
}

/// An ICMPv6 message with its checksum for `src` → `dst`.
fn icmp(src: Ipv6Addr, dst: Ipv6Addr, mut m: Vec<u8>) -> Vec<u8> {
    Icmpv6Packet::new_unchecked(&mut m[..]).fill_checksum(src, dst);
    m
}

fn ns(target: Ipv6Addr, slla: Option<[u8; 6]>) -> Vec<u8> {
    let mut m = vec![kind::NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    if let Some(mac) = slla {
        m.extend_from_slice(&[nd_option::SOURCE_LL, 1]);
        m.extend_from_slice(&mac);
    }
    m
}

/// The neighbor advertisement in `f`: (eth dst, ip src, ip dst, flags, target, TLLA).
fn parse_na(f: &[u8]) -> (MacAddr, Ipv6Addr, Ipv6Addr, u8, Ipv6Addr, Option<MacAddr>) {
    assert_eq!(&f[12..14], &[0x86, 0xdd]);
    assert_eq!(&f[6..12], &OUR_MAC);
    let ip = Ipv6Packet::new_checked(&f[14..]).unwrap();
    assert_eq!(
        (ip.hop_limit(), ip.next_header(), ip.payload_len()),
        (255, 58, 32)
    );
    let m = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(m.msg_type(), kind::NEIGHBOR_ADVERT);
    assert!(m.verify_checksum(ip.src_addr(), ip.dst_addr()), "checksum");
    (
        MacAddr::from_bytes(&f[0..6]).unwrap(),
        ip.src_addr(),
        ip.dst_addr(),
        m.nd_flags(),
        m.nd_target().unwrap(),
        m.nd_link_layer(nd_option::TARGET_LL).unwrap(),
    )
}

#[test]
fn primary_announces_its_ipv6_addresses_at_start() {
    let (mut w, c) = rig(true, true);
    let out = run(&mut w, &c, vec![]);
    let nas: Vec<_> = out.iter().filter(|f| f[12..14] == [0x86, 0xdd]).collect();
    assert_eq!(nas.len(), 2, "the configured address and the link-local");
    let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
    let ll = link_local(MacAddr(OUR_MAC));
    let mut targets = Vec::new();
    for f in nas {
        let (dmac, src, dst, flags, target, tlla) = parse_na(f);
        assert_eq!(dmac, multicast_mac(all_nodes));
        assert_eq!((src, dst), (target, all_nodes));
        assert_eq!(flags, na_flags::OVERRIDE, "unsolicited");
        assert_eq!(tlla, Some(MacAddr(OUR_MAC)));
        targets.push(target);
    }
    targets.sort();
    let mut want = vec![ours(), ll];
    want.sort();
    assert_eq!(targets, want);
    assert_eq!(w.counters().ndp_adverts_sent, 2);
}

#[test]
fn answers_neighbor_solicitations_for_its_addresses() {
    let (mut w, c) = rig(false, true);
    let group = solicited_node(ours());
    // To the solicited-node group (Ethernet multicast), with the source's MAC.
    let m = icmp(peer(), group, ns(ours(), Some(PEER_MAC)));
    let out = run(
        &mut w,
        &c,
        vec![ip6(multicast_mac(group).0, peer(), group, 58, 255, &m)],
    );
    assert_eq!(out.len(), 1, "one advertisement");
    let (dmac, src, dst, flags, target, tlla) = parse_na(&out[0]);
    assert_eq!(
        (dmac, src, dst, target),
        (MacAddr(PEER_MAC), ours(), peer(), ours())
    );
    assert_eq!(flags, na_flags::SOLICITED | na_flags::OVERRIDE);
    assert_eq!(tlla, Some(MacAddr(OUR_MAC)));
    // Unicast (a reachability probe) without a source link-layer option:
    // answered to the frame's source MAC.
    let m = icmp(peer(), ours(), ns(ours(), None));
    let out = run(&mut w, &c, vec![ip6(OUR_MAC, peer(), ours(), 58, 255, &m)]);
    assert_eq!(parse_na(&out[0]).0, MacAddr(PEER_MAC));
    // Duplicate address detection of our address: defended to all-nodes.
    let dad = icmp(Ipv6Addr::UNSPECIFIED, group, ns(ours(), None));
    let out = run(
        &mut w,
        &c,
        vec![ip6(
            multicast_mac(group).0,
            Ipv6Addr::UNSPECIFIED,
            group,
            58,
            255,
            &dad,
        )],
    );
    let (_, _, dst, flags, _, _) = parse_na(&out[0]);
    assert_eq!(
        (dst, flags),
        ("ff02::1".parse().unwrap(), na_flags::OVERRIDE)
    );
    assert_eq!(w.counters().ndp_solicits_answered, 3);
    assert_eq!(w.counters().ndp_conflicts, 1);
    // The link-local address too.
    let ll = link_local(MacAddr(OUR_MAC));
    let peer_ll: Ipv6Addr = "fe80::cc:ff:fe00:2".parse().unwrap();
    let m = icmp(peer_ll, solicited_node(ll), ns(ll, Some(PEER_MAC)));
    let out = run(
        &mut w,
        &c,
        vec![ip6(
            multicast_mac(solicited_node(ll)).0,
            peer_ll,
            solicited_node(ll),
            58,
            255,
            &m,
        )],
    );
    assert_eq!(parse_na(&out[0]).4, ll);
}

#[test]
fn answers_echo_requests_in_place() {
    let (mut w, c) = rig(false, true);
    let mut m = vec![kind::ECHO_REQUEST, 0, 0, 0, 0x12, 0x34, 0, 7];
    m.extend_from_slice(b"abcdefgh");
    let m = icmp(peer(), ours(), m);
    let out = run(&mut w, &c, vec![ip6(OUR_MAC, peer(), ours(), 58, 64, &m)]);
    assert_eq!(out.len(), 1);
    let f = &out[0];
    assert_eq!((&f[0..6], &f[6..12]), (&PEER_MAC[..], &OUR_MAC[..]));
    let ip = Ipv6Packet::new_checked(&f[14..]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (ours(), peer()));
    let r = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(r.msg_type(), kind::ECHO_REPLY);
    assert_eq!((r.echo_ident(), r.echo_seq()), (0x1234, 7));
    assert!(r.verify_checksum(ours(), peer()));
    assert_eq!(&ip.payload()[8..], b"abcdefgh");
    assert_eq!(w.counters().icmpv6_echo_replied, 1);
}

#[test]
fn bad_and_unhandled_ipv6_is_counted_by_reason() {
    let (mut w, c) = rig(false, true);
    let group = solicited_node(ours());
    let good_ns = icmp(peer(), group, ns(ours(), Some(PEER_MAC)));
    let mut bad_sum = good_ns.clone();
    bad_sum[2] ^= 1;
    let mut zero_opt = ns(ours(), Some(PEER_MAC));
    zero_opt[25] = 0;
    let zero_opt = icmp(peer(), group, zero_opt);
    let other = icmp(peer(), group, ns(peer(), None));
    // Nine Destination Options headers in front of ICMPv6.
    let mut chain = Vec::new();
    for i in 0..9 {
        chain.extend_from_slice(&[if i < 8 { 60 } else { 58 }, 0, 1, 4, 0, 0, 0, 0]);
    }
    chain.extend_from_slice(&good_ns);
    let frag = [17u8, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut truncated = ip6(OUR_MAC, peer(), ours(), 58, 255, &good_ns);
    truncated.truncate(50);
    let mut long = ip6(OUR_MAC, peer(), ours(), 58, 255, &good_ns);
    long[18..20].copy_from_slice(&500u16.to_be_bytes());
    let mut ra = vec![
        kind::ROUTER_ADVERT,
        0,
        0,
        0,
        64,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    ra = icmp(peer(), "ff02::1".parse().unwrap(), std::mem::take(&mut ra));
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (
            ip6(multicast_mac(group).0, peer(), group, 58, 254, &good_ns),
            DropReason::NdpInvalid,
        ),
        (
            ip6(multicast_mac(group).0, peer(), group, 58, 255, &bad_sum),
            DropReason::Icmpv6BadChecksum,
        ),
        (
            ip6(multicast_mac(group).0, peer(), group, 58, 255, &zero_opt),
            DropReason::NdpInvalid,
        ),
        (
            ip6(multicast_mac(group).0, peer(), group, 58, 255, &other),
            DropReason::NdpNotForUs,
        ),
        (
            ip6(OUR_MAC, peer(), peer(), 58, 255, &good_ns),
            DropReason::Ipv6NotForUs,
        ),
        (
            ip6(OUR_MAC, ours(), ours(), 58, 255, &good_ns),
            DropReason::Ipv6BadSource,
        ),
        (
            ip6(OUR_MAC, peer(), ours(), 60, 255, &chain),
            DropReason::Ipv6ExtTooMany,
        ),
        (
            ip6(OUR_MAC, peer(), ours(), 44, 255, &frag),
            DropReason::Ipv6Fragment,
        ),
        (
            ip6(OUR_MAC, peer(), ours(), 6, 64, &[0u8; 20]),
            DropReason::Ipv6NoService,
        ),
        (truncated, DropReason::Ipv6Truncated),
        (long, DropReason::Ipv6BadPayloadLen),
        (
            ip6(
                multicast_mac("ff02::1".parse().unwrap()).0,
                peer(),
                "ff02::1".parse().unwrap(),
                58,
                255,
                &ra,
            ),
            DropReason::Icmpv6RouterIgnored,
        ),
    ];
    for (f, why) in cases {
        let before = w.counters().drops_of(why);
        let out = run(&mut w, &c, vec![f]);
        assert!(out.is_empty(), "{why:?}: nothing answered");
        assert_eq!(w.counters().drops_of(why), before + 1, "{why:?}");
    }
    // A port without IPv6 addresses: every IPv6 frame is one drop, and
    // IPv6 multicast MACs are not ours.
    let (mut w, c) = rig(false, false);
    run(
        &mut w,
        &c,
        vec![ip6(OUR_MAC, peer(), ours(), 58, 255, &good_ns)],
    );
    run(
        &mut w,
        &c,
        vec![ip6(
            multicast_mac(group).0,
            peer(),
            group,
            58,
            255,
            &good_ns,
        )],
    );
    assert_eq!(w.counters().drops_of(DropReason::Ipv6), 1);
    assert_eq!(w.counters().drops_of(DropReason::L2Multicast), 1);
}

proptest! {
    #[test]
    fn arbitrary_ipv6_frames_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..160),
        nh in prop::sample::select(vec![0u8, 6, 17, 43, 44, 51, 58, 59, 60]),
        mcast in any::<bool>(),
    ) {
        let (mut w, c) = rig(false, true);
        let group = solicited_node(ours());
        let (mac, dst) = if mcast { (multicast_mac(group).0, group) } else { (OUR_MAC, ours()) };
        let mut f = ip6(mac, peer(), dst, nh, 255, &body);
        // Sometimes a valid checksum, so the message handlers run too.
        if nh == 58 && body.len() >= 4 {
            let m = icmp(peer(), dst, body.clone());
            f = ip6(mac, peer(), dst, nh, 255, &m);
        }
        let _ = run(&mut w, &c, vec![f]);
    }
}

#[test]
fn resolves_configured_ipv6_neighbors_by_ndp_and_learns_from_solicitations() {
    let (mut w, c) = rig_with(true, true, vec![peer()]);
    let out = run(&mut w, &c, vec![]);
    let ns: Vec<&Vec<u8>> = out
        .iter()
        .filter(|f| {
            f[12..14] == [0x86, 0xdd]
                && Icmpv6Packet::new_checked(&f[54..])
                    .is_ok_and(|m| m.msg_type() == kind::NEIGHBOR_SOLICIT)
        })
        .collect();
    assert_eq!(ns.len(), 1, "one solicitation for the configured neighbour");
    let f = ns[0];
    let group = solicited_node(peer());
    assert_eq!(MacAddr::from_bytes(&f[0..6]).unwrap(), multicast_mac(group));
    let ip = Ipv6Packet::new_checked(&f[14..]).unwrap();
    assert_eq!(
        (ip.src_addr(), ip.dst_addr(), ip.hop_limit()),
        (ours(), group, 255)
    );
    let m = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert!(m.verify_checksum(ours(), group));
    assert_eq!(m.nd_target(), Some(peer()));
    assert_eq!(
        m.nd_link_layer(nd_option::SOURCE_LL),
        Ok(Some(MacAddr(OUR_MAC)))
    );
    assert_eq!(w.counters().ndp_solicits_sent, 1);
    // The neighbour answers: resolved.
    let mut na = vec![
        kind::NEIGHBOR_ADVERT,
        0,
        0,
        0,
        na_flags::SOLICITED | na_flags::OVERRIDE,
        0,
        0,
        0,
    ];
    na.extend_from_slice(&peer().octets());
    na.extend_from_slice(&[nd_option::TARGET_LL, 1]);
    na.extend_from_slice(&PEER_MAC);
    let na = icmp(peer(), ours(), na);
    run(&mut w, &c, vec![ip6(OUR_MAC, peer(), ours(), 58, 255, &na)]);
    assert_eq!(w.neighbors6().lookup(0, peer()), Some(MacAddr(PEER_MAC)));
    assert_eq!(w.counters().ndp_adverts_received, 1);
    // Without the Override flag, an advertisement does not move a known
    // neighbour to another MAC (RFC 4861 §7.2.5).
    let other_mac = [0x02, 0xee, 0, 0, 0, 9];
    let mut na = vec![kind::NEIGHBOR_ADVERT, 0, 0, 0, na_flags::SOLICITED, 0, 0, 0];
    na.extend_from_slice(&peer().octets());
    na.extend_from_slice(&[nd_option::TARGET_LL, 1]);
    na.extend_from_slice(&other_mac);
    let na = icmp(peer(), ours(), na);
    run(&mut w, &c, vec![ip6(OUR_MAC, peer(), ours(), 58, 255, &na)]);
    assert_eq!(w.neighbors6().lookup(0, peer()), Some(MacAddr(PEER_MAC)));
    // Unanswered probes of another configured neighbour fail after the
    // probes run out; an unsolicited advertisement creates nothing.
    let other: Ipv6Addr = "2001:db8:1::9".parse().unwrap();
    let (mut w, c) = rig_with(false, true, vec![]);
    let mut na = vec![kind::NEIGHBOR_ADVERT, 0, 0, 0, na_flags::OVERRIDE, 0, 0, 0];
    na.extend_from_slice(&other.octets());
    na.extend_from_slice(&[nd_option::TARGET_LL, 1]);
    na.extend_from_slice(&PEER_MAC);
    let all: Ipv6Addr = "ff02::1".parse().unwrap();
    let na = icmp(other, all, na);
    run(
        &mut w,
        &c,
        vec![ip6(multicast_mac(all).0, other, all, 58, 255, &na)],
    );
    assert_eq!(
        w.neighbors6().lookup(0, other),
        None,
        "unsolicited: not created"
    );
    // A solicitation from a neighbour (with its MAC) teaches us its address.
    let group = solicited_node(ours());
    let m = icmp(peer(), group, ns_msg(ours(), Some(PEER_MAC)));
    run(
        &mut w,
        &c,
        vec![ip6(multicast_mac(group).0, peer(), group, 58, 255, &m)],
    );
    assert_eq!(w.neighbors6().lookup(0, peer()), Some(MacAddr(PEER_MAC)));
}

fn ns_msg(target: Ipv6Addr, slla: Option<[u8; 6]>) -> Vec<u8> {
    ns(target, slla)
}
