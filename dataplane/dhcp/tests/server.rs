//! Server simulator behaviour (RFC 2131 §4.3, RFC 3046), message by message.

use core::time::Duration;

use qsplice_dhcp::frame::{parse_frame, FrameSpec};
use qsplice_dhcp::server::{
    ConfigError, DelayConfig, ExhaustionPolicy, PoolConfig, RateLimit, Reject, ReplyMeta,
    RequestMeta, Server, ServerConfig,
};
use qsplice_dhcp::wire::{
    self, AddrList, DhcpRepr, MessageType, OptionScratch, BOOTREPLY, BOOTREQUEST,
};
use qsplice_dhcp::{Ipv4Addr, MacAddr};

const HZ: u64 = 1_000_000_000;
const SEC: u64 = HZ;
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);

fn pool(net: [u8; 3], first: u8, last: u8) -> PoolConfig {
    PoolConfig {
        network: Ipv4Addr::new(net[0], net[1], net[2], 0),
        prefix_len: 24,
        range_start: Ipv4Addr::new(net[0], net[1], net[2], first),
        range_end: Ipv4Addr::new(net[0], net[1], net[2], last),
        routers: AddrList::from_iter([Ipv4Addr::new(net[0], net[1], net[2], 1)]),
        dns_servers: AddrList::from_iter([Ipv4Addr::new(9, 9, 9, 9)]),
        lease_time: Duration::from_secs(3600),
    }
}

fn config(p: PoolConfig) -> ServerConfig {
    ServerConfig::new(SERVER, MacAddr([0x02, 0xaa, 0, 0, 0, 1]), p)
}

fn mac(i: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, i])
}

fn meta(i: u8) -> RequestMeta {
    RequestMeta {
        src_mac: mac(i),
        src_ip: Ipv4Addr::UNSPECIFIED,
        dst_ip: Ipv4Addr::BROADCAST,
        vlan: None,
        local_ip: LOCAL,
    }
}

struct Rig {
    s: Server,
    out: Vec<u8>,
}

impl Rig {
    fn new(cfg: ServerConfig) -> Rig {
        Rig {
            s: Server::new(&cfg, HZ).unwrap(),
            out: vec![0; 1500],
        }
    }

    fn send(
        &mut self,
        now: u64,
        m: &RequestMeta,
        r: &DhcpRepr<'_>,
    ) -> Result<Option<(ReplyMeta, DhcpRepr<'static>)>, Reject> {
        let mut buf = [0u8; 600];
        let n = r.emit(&mut buf).unwrap();
        match self.s.handle(now, m, &buf[..n], &mut self.out)? {
            None => Ok(None),
            Some(rm) => {
                // Tests only: leak a copy so the reply outlives the buffer.
                let copy: &'static [u8] = Box::leak(self.out[..rm.len].to_vec().into_boxed_slice());
                let scratch = Box::leak(Box::new(OptionScratch::new()));
                let rep = DhcpRepr::parse(copy, scratch).unwrap();
                Ok(Some((rm, rep)))
            }
        }
    }
}

fn discover(i: u8, xid: u32) -> DhcpRepr<'static> {
    DhcpRepr::new(BOOTREQUEST, MessageType::Discover, xid, mac(i))
}

fn select(i: u8, xid: u32, sid: Ipv4Addr, want: Ipv4Addr) -> DhcpRepr<'static> {
    let mut r = DhcpRepr::new(BOOTREQUEST, MessageType::Request, xid, mac(i));
    r.server_id = Some(sid);
    r.requested_ip = Some(want);
    r
}

/// DISCOVER + REQUEST; returns the bound address.
fn dora(rig: &mut Rig, now: u64, i: u8) -> Ipv4Addr {
    let (_, offer) = rig
        .send(now, &meta(i), &discover(i, 100 + u32::from(i)))
        .unwrap()
        .unwrap();
    let yi = offer.yiaddr;
    let (_, ack) = rig
        .send(now, &meta(i), &select(i, 1, SERVER, yi))
        .unwrap()
        .unwrap();
    assert_eq!(ack.message_type, MessageType::Ack);
    assert_eq!(ack.yiaddr, yi);
    yi
}

#[test]
fn discover_gets_a_complete_offer() {
    let mut rig = Rig::new(config(pool([10, 0, 0], 10, 20)));
    let mut d = discover(1, 0xdead_beef);
    d.broadcast = true;
    let (m, o) = rig.send(0, &meta(1), &d).unwrap().unwrap();
    assert_eq!(o.op, BOOTREPLY);
    assert_eq!(o.message_type, MessageType::Offer);
    assert_eq!(o.xid, 0xdead_beef);
    assert_eq!(o.mac(), mac(1));
    assert_eq!(o.yiaddr, Ipv4Addr::new(10, 0, 0, 10));
    assert_eq!(o.server_id, Some(SERVER));
    assert_eq!(o.lease_time, Some(3600));
    assert_eq!(o.renewal_time, Some(1800));
    assert_eq!(o.rebinding_time, Some(3150));
    assert_eq!(o.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
    assert_eq!(o.routers.as_slice(), &[Ipv4Addr::new(10, 0, 0, 1)]);
    assert_eq!(o.dns_servers.as_slice(), &[Ipv4Addr::new(9, 9, 9, 9)]);
    assert!(o.broadcast);
    // Broadcast flag: broadcast reply (RFC 2131 §4.1).
    assert_eq!(
        (m.dst_mac, m.dst_ip, m.dst_port, m.src_ip, m.src_port),
        (MacAddr::BROADCAST, Ipv4Addr::BROADCAST, 68, SERVER, 67)
    );
    assert_eq!(m.delay, 0);
    // Without the flag: unicast to yiaddr at chaddr.
    let (m, o) = rig.send(0, &meta(2), &discover(2, 5)).unwrap().unwrap();
    assert_eq!((m.dst_mac, m.dst_ip), (mac(2), o.yiaddr));
    assert_eq!(o.yiaddr, Ipv4Addr::new(10, 0, 0, 11));
    assert_eq!(rig.s.leases_offered(), 2);
    assert_eq!(rig.s.stats().counters.offer_sent, 2);
}

#[test]
fn request_binds_and_known_client_gets_same_address() {
    let mut rig = Rig::new(config(pool([10, 0, 0], 10, 20)));
    let a = dora(&mut rig, 0, 1);
    assert_eq!(rig.s.leases_bound(), 1);
    assert_eq!(rig.s.lease_of(None, mac(1)), Some(a));
    // Same client again (by chaddr): same address, still bound.
    let (_, o) = rig.send(SEC, &meta(1), &discover(1, 9)).unwrap().unwrap();
    assert_eq!(o.yiaddr, a);
    // By client id: a different chaddr with the same id is the same client.
    let cid = [0xff, 1, 2, 3];
    let mut d = discover(3, 1);
    d.client_id = Some(&cid);
    let (_, o3) = rig.send(SEC, &meta(3), &d).unwrap().unwrap();
    let mut d = discover(4, 2);
    d.client_id = Some(&cid);
    let (_, o4) = rig.send(SEC, &meta(4), &d).unwrap().unwrap();
    assert_eq!(o3.yiaddr, o4.yiaddr);
    assert_ne!(o3.yiaddr, a);
    assert_eq!(rig.s.lease_of(Some(&cid), mac(99)), Some(o3.yiaddr));
}

#[test]
fn request_states_rfc2131_4_3_2() {
    let mut rig = Rig::new(config(pool([10, 0, 0], 10, 20)));
    // SELECTING for another server: no reply, and our offer is released.
    let (_, o) = rig.send(0, &meta(1), &discover(1, 1)).unwrap().unwrap();
    let other = Ipv4Addr::new(10, 0, 0, 253);
    assert_eq!(
        rig.send(0, &meta(1), &select(1, 1, other, o.yiaddr)).err(),
        Some(Reject::OtherServer)
    );
    assert_eq!(rig.s.leases_offered(), 0);
    // SELECTING for an address we did not offer: NAK, broadcast.
    let (_, o) = rig.send(0, &meta(2), &discover(2, 1)).unwrap().unwrap();
    let wrong = Ipv4Addr::new(10, 0, 0, 19);
    assert_ne!(o.yiaddr, wrong);
    let (m, nak) = rig
        .send(0, &meta(2), &select(2, 1, SERVER, wrong))
        .unwrap()
        .unwrap();
    assert_eq!(nak.message_type, MessageType::Nak);
    assert_eq!(nak.yiaddr, Ipv4Addr::UNSPECIFIED);
    assert_eq!(nak.lease_time, None);
    assert_eq!(
        (m.dst_mac, m.dst_ip),
        (MacAddr::BROADCAST, Ipv4Addr::BROADCAST)
    );
    // SELECTING with ciaddr set: not a valid state.
    let mut bad = select(2, 1, SERVER, o.yiaddr);
    bad.ciaddr = o.yiaddr;
    assert_eq!(
        rig.send(0, &meta(2), &bad).err(),
        Some(Reject::BadRequestState)
    );
    let nothing = DhcpRepr::new(BOOTREQUEST, MessageType::Request, 1, mac(2));
    assert_eq!(
        rig.send(0, &meta(2), &nothing).err(),
        Some(Reject::BadRequestState)
    );

    let a = dora(&mut rig, 0, 3);
    // INIT-REBOOT with the right address: ACK; wrong subnet: NAK; another
    // address of the subnet: NAK.
    let mut reboot = DhcpRepr::new(BOOTREQUEST, MessageType::Request, 7, mac(3));
    reboot.requested_ip = Some(a);
    let (_, r) = rig.send(SEC, &meta(3), &reboot).unwrap().unwrap();
    assert_eq!((r.message_type, r.yiaddr), (MessageType::Ack, a));
    reboot.requested_ip = Some(Ipv4Addr::new(192, 168, 1, 5));
    let (_, r) = rig.send(SEC, &meta(3), &reboot).unwrap().unwrap();
    assert_eq!(r.message_type, MessageType::Nak);
    reboot.requested_ip = Some(Ipv4Addr::new(10, 0, 0, 20));
    let (_, r) = rig.send(SEC, &meta(3), &reboot).unwrap().unwrap();
    assert_eq!(r.message_type, MessageType::Nak);
    // INIT-REBOOT of a client we do not know: NAK (authoritative).
    let mut unknown = DhcpRepr::new(BOOTREQUEST, MessageType::Request, 7, mac(50));
    unknown.requested_ip = Some(Ipv4Addr::new(10, 0, 0, 15));
    let (_, r) = rig.send(SEC, &meta(50), &unknown).unwrap().unwrap();
    assert_eq!(r.message_type, MessageType::Nak);

    // RENEWING: unicast, ciaddr set; the ACK goes unicast to ciaddr.
    let mut renew = DhcpRepr::new(BOOTREQUEST, MessageType::Request, 8, mac(3));
    renew.ciaddr = a;
    let mut m3 = meta(3);
    m3.src_ip = a;
    m3.dst_ip = SERVER;
    let (m, r) = rig.send(2 * SEC, &m3, &renew).unwrap().unwrap();
    assert_eq!(
        (r.message_type, r.yiaddr, r.ciaddr),
        (MessageType::Ack, a, a)
    );
    assert_eq!((m.dst_ip, m.dst_mac, m.dst_port), (a, mac(3), 68));
    // Renewing someone else's address: NAK.
    let mut steal = DhcpRepr::new(BOOTREQUEST, MessageType::Request, 8, mac(4));
    steal.ciaddr = a;
    let (_, r) = rig.send(2 * SEC, &meta(4), &steal).unwrap().unwrap();
    assert_eq!(r.message_type, MessageType::Nak);
    assert_eq!(rig.s.lease_of(None, mac(3)), Some(a), "the owner keeps it");
}

#[test]
fn non_authoritative_server_stays_silent_on_unknown_leases() {
    let mut cfg = config(pool([10, 0, 0], 10, 20));
    cfg.authoritative = false;
    let mut rig = Rig::new(cfg);
    let mut reboot = DhcpRepr::new(BOOTREQUEST, MessageType::Request, 7, mac(1));
    reboot.requested_ip = Some(Ipv4Addr::new(10, 0, 0, 12));
    assert_eq!(
        rig.send(0, &meta(1), &reboot).err(),
        Some(Reject::UnknownLease)
    );
    let mut renew = DhcpRepr::new(BOOTREQUEST, MessageType::Request, 8, mac(1));
    renew.ciaddr = Ipv4Addr::new(10, 0, 0, 12);
    assert_eq!(
        rig.send(0, &meta(1), &renew).err(),
        Some(Reject::UnknownLease)
    );
    assert_eq!(rig.s.stats().rejected(Reject::UnknownLease), 2);
}

#[test]
fn release_returns_address_last_in_line() {
    let mut rig = Rig::new(config(pool([10, 0, 0], 10, 12)));
    let a = dora(&mut rig, 0, 1);
    let mut rel = DhcpRepr::new(BOOTREQUEST, MessageType::Release, 3, mac(1));
    rel.ciaddr = a;
    rel.server_id = Some(SERVER);
    // RELEASE for another client's address, or to another server: refused.
    let mut wrong = rel.clone();
    wrong.chaddr = DhcpRepr::new(BOOTREQUEST, MessageType::Release, 3, mac(2)).chaddr;
    assert_eq!(
        rig.send(0, &meta(2), &wrong).err(),
        Some(Reject::ReleaseUnknown)
    );
    let mut other = rel.clone();
    other.server_id = Some(Ipv4Addr::new(10, 0, 0, 253));
    assert_eq!(
        rig.send(0, &meta(1), &other).err(),
        Some(Reject::WrongServerId)
    );
    assert_eq!(rig.send(0, &meta(1), &rel), Ok(None));
    assert_eq!(rig.s.leases_bound(), 0);
    // The releasing client still gets its old address back if it asks.
    let (_, o) = rig.send(0, &meta(1), &discover(1, 4)).unwrap().unwrap();
    assert_eq!(o.yiaddr, a);
    assert_eq!(rig.send(0, &meta(1), &rel).ok(), Some(None));
    // New clients get never-used addresses before the released one.
    let b = dora(&mut rig, 0, 2);
    let c = dora(&mut rig, 0, 3);
    assert_ne!(b, a);
    assert_ne!(c, a);
    let d = dora(&mut rig, 0, 4);
    assert_eq!(d, a, "released address reused last");
    assert_eq!(rig.s.lease_of(None, mac(1)), None);
}

#[test]
fn decline_quarantines_the_address() {
    let mut cfg = config(pool([10, 0, 0], 10, 10));
    cfg.decline_quarantine = Duration::from_secs(60);
    let mut rig = Rig::new(cfg);
    let a = dora(&mut rig, 0, 1);
    let mut dec = DhcpRepr::new(BOOTREQUEST, MessageType::Decline, 3, mac(1));
    dec.requested_ip = Some(a);
    dec.server_id = Some(SERVER);
    assert_eq!(rig.send(SEC, &meta(1), &dec), Ok(None));
    assert_eq!(
        rig.send(SEC, &meta(1), &dec).err(),
        Some(Reject::DeclineUnknown)
    );
    // Pool of one, quarantined: exhausted until the quarantine ends.
    assert_eq!(
        rig.send(2 * SEC, &meta(2), &discover(2, 1)).err(),
        Some(Reject::PoolExhausted)
    );
    assert_eq!(
        rig.send(60 * SEC, &meta(2), &discover(2, 1)).err(),
        Some(Reject::PoolExhausted)
    );
    let (_, o) = rig
        .send(61 * SEC + 1, &meta(2), &discover(2, 1))
        .unwrap()
        .unwrap();
    assert_eq!(o.yiaddr, a);
    assert_eq!(rig.s.stats().counters.pool_exhausted, 2);
}

#[test]
fn unclaimed_offer_returns_to_pool_after_offer_timeout() {
    let mut cfg = config(pool([10, 0, 0], 10, 10));
    cfg.offer_timeout = Duration::from_secs(5);
    let mut rig = Rig::new(cfg);
    let (_, o) = rig.send(0, &meta(1), &discover(1, 1)).unwrap().unwrap();
    assert_eq!(
        rig.send(SEC, &meta(2), &discover(2, 1)).err(),
        Some(Reject::PoolExhausted)
    );
    // Client 1 asks again before the timeout: the offer is extended.
    rig.send(4 * SEC, &meta(1), &discover(1, 2))
        .unwrap()
        .unwrap();
    assert_eq!(
        rig.send(6 * SEC, &meta(2), &discover(2, 1)).err(),
        Some(Reject::PoolExhausted)
    );
    rig.s.tick(9 * SEC + 1);
    assert_eq!(rig.s.stats().counters.offers_expired, 1);
    assert_eq!(rig.s.leases_offered(), 0);
    let (_, o2) = rig
        .send(9 * SEC + 2, &meta(2), &discover(2, 1))
        .unwrap()
        .unwrap();
    assert_eq!(o2.yiaddr, o.yiaddr);
    // Client 1's late REQUEST is refused.
    let (_, r) = rig
        .send(10 * SEC, &meta(1), &select(1, 2, SERVER, o.yiaddr))
        .unwrap()
        .unwrap();
    assert_eq!(r.message_type, MessageType::Nak);
}

#[test]
fn lease_expires_and_address_is_reused() {
    let mut p = pool([10, 0, 0], 10, 10);
    p.lease_time = Duration::from_secs(100);
    let mut rig = Rig::new(config(p));
    let a = dora(&mut rig, 0, 1);
    // Renewal at 60 s extends to 160 s.
    let mut renew = DhcpRepr::new(BOOTREQUEST, MessageType::Request, 8, mac(1));
    renew.ciaddr = a;
    rig.send(60 * SEC, &meta(1), &renew).unwrap().unwrap();
    rig.s.tick(150 * SEC);
    assert_eq!(rig.s.leases_bound(), 1);
    rig.s.tick(160 * SEC);
    assert_eq!(rig.s.leases_bound(), 0);
    assert_eq!(rig.s.stats().counters.leases_expired, 1);
    assert_eq!(dora(&mut rig, 161 * SEC, 2), a);
}

#[test]
fn exhaustion_policy_nak() {
    let mut cfg = config(pool([10, 0, 0], 10, 11));
    cfg.exhaustion = ExhaustionPolicy::Nak;
    let mut rig = Rig::new(cfg);
    dora(&mut rig, 0, 1);
    dora(&mut rig, 0, 2);
    let (_, r) = rig.send(0, &meta(3), &discover(3, 1)).unwrap().unwrap();
    assert_eq!(r.message_type, MessageType::Nak);
    assert_eq!(rig.s.stats().counters.pool_exhausted, 1);
    assert_eq!(rig.s.stats().counters.nak_sent, 1);
}

#[test]
fn inform_gets_configuration_without_lease() {
    let mut rig = Rig::new(config(pool([10, 0, 0], 10, 20)));
    let mut inf = DhcpRepr::new(BOOTREQUEST, MessageType::Inform, 3, mac(1));
    assert_eq!(
        rig.send(0, &meta(1), &inf).err(),
        Some(Reject::InformWithoutCiaddr)
    );
    inf.ciaddr = Ipv4Addr::new(10, 0, 0, 200);
    let (m, r) = rig.send(0, &meta(1), &inf).unwrap().unwrap();
    assert_eq!(r.message_type, MessageType::Ack);
    assert_eq!(r.yiaddr, Ipv4Addr::UNSPECIFIED);
    assert_eq!((r.lease_time, r.renewal_time), (None, None));
    assert_eq!(r.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
    assert_eq!(m.dst_ip, Ipv4Addr::new(10, 0, 0, 200));
    assert_eq!(rig.s.leases_bound(), 0);
}

#[test]
fn relayed_requests_use_giaddr_pool_and_echo_option_82() {
    let mut cfg = config(pool([10, 0, 0], 10, 20));
    cfg.pools.push(pool([172, 16, 5], 100, 110));
    let mut rig = Rig::new(cfg);
    let relay_mac = MacAddr([0x02, 0xbb, 0, 0, 0, 1]);
    let o82 = [1, 4, b'p', b'o', b'r', b't', 2, 2, 0xab, 0xcd, 9, 1, 7];
    let mut d = discover(1, 77);
    d.giaddr = Ipv4Addr::new(172, 16, 5, 1);
    d.hops = 1;
    d.relay_agent_info = Some(&o82);
    let mut m = meta(1);
    m.src_mac = relay_mac;
    m.src_ip = d.giaddr;
    m.dst_ip = SERVER;
    let (rm, o) = rig.send(0, &m, &d).unwrap().unwrap();
    assert_eq!(o.yiaddr, Ipv4Addr::new(172, 16, 5, 100));
    assert_eq!(o.giaddr, d.giaddr);
    assert_eq!(
        o.relay_agent_info,
        Some(&o82[..]),
        "echoed unchanged, unknown sub-option too"
    );
    assert_eq!(o.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
    assert_eq!(
        (rm.dst_ip, rm.dst_port, rm.dst_mac),
        (d.giaddr, 67, relay_mac)
    );
    assert_eq!(rig.s.stats().counters.relayed, 1);
    // A NAK through a relay has the broadcast bit and Option 82.
    let mut r = select(1, 77, SERVER, Ipv4Addr::new(172, 16, 5, 109));
    r.giaddr = d.giaddr;
    r.relay_agent_info = Some(&o82);
    let (rm, nak) = rig.send(0, &m, &r).unwrap().unwrap();
    assert_eq!(nak.message_type, MessageType::Nak);
    assert!(nak.broadcast);
    assert_eq!(nak.relay_agent_info, Some(&o82[..]));
    assert_eq!(rm.dst_ip, d.giaddr);
    // giaddr of no pool: counted.
    d.giaddr = Ipv4Addr::new(192, 168, 9, 1);
    assert_eq!(rig.send(0, &m, &d).err(), Some(Reject::NoPool));
    // Non-relayed request: Option 82 from a client is not echoed.
    let mut d = discover(2, 1);
    d.relay_agent_info = Some(&o82);
    let (_, o) = rig.send(0, &meta(2), &d).unwrap().unwrap();
    assert_eq!(o.yiaddr.octets()[..3], [10, 0, 0]);
    assert_eq!(o.relay_agent_info, None);
}

#[test]
fn malformed_and_unexpected_requests_are_counted_by_reason() {
    let mut rig = Rig::new(config(pool([10, 0, 0], 10, 20)));
    let mut out = [0u8; 1500];
    let short = [0u8; 100];
    assert_eq!(
        rig.s.handle(0, &meta(1), &short, &mut out).err(),
        Some(Reject::Malformed(wire::Error::Truncated))
    );
    let mut buf = [0u8; 400];
    let n = discover(1, 1).emit(&mut buf).unwrap();
    buf[237] = 0;
    assert_eq!(
        rig.s.handle(0, &meta(1), &buf[..n], &mut out).err(),
        Some(Reject::Malformed(wire::Error::BadCookie))
    );
    let mut offer = discover(1, 1);
    offer.message_type = MessageType::Offer;
    assert_eq!(
        rig.send(0, &meta(1), &offer).err(),
        Some(Reject::UnexpectedMessageType)
    );
    let mut reply = discover(1, 1);
    reply.op = BOOTREPLY;
    assert_eq!(
        rig.send(0, &meta(1), &reply).err(),
        Some(Reject::NotBootRequest)
    );
    let mut tr = discover(1, 1);
    tr.htype = 6;
    assert_eq!(
        rig.send(0, &meta(1), &tr).err(),
        Some(Reject::UnsupportedHardware)
    );
    let st = rig.s.stats();
    assert_eq!(st.rejected_total(), 5);
    let rep = rig.s.report();
    assert_eq!(rep.rejects.get("truncated"), Some(&1));
    assert_eq!(rep.rejects.get("bad_cookie"), Some(&1));
    assert_eq!(rep.rejects.get("unexpected_message_type"), Some(&1));
    assert_eq!(rep.counters.received, 5);
    // Reject names are distinct and stable.
    let mut names: Vec<&str> = (0..Reject::COUNT).map(Reject::name_of_index).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), Reject::COUNT);
    assert_eq!(Reject::PoolExhausted.as_str(), "pool_exhausted");
}

#[test]
fn rate_limit_token_bucket() {
    let mut cfg = config(pool([10, 0, 0], 10, 250));
    cfg.faults.rate_limit = Some(RateLimit {
        per_sec: 10,
        burst: 5,
    });
    let mut rig = Rig::new(cfg);
    let t0 = 100 * SEC;
    let mut ok = 0;
    for i in 0..10 {
        if rig.send(t0, &meta(i), &discover(i, 1)).is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 5, "burst");
    assert_eq!(rig.s.stats().rejected(Reject::RateLimited), 5);
    // 100 ms later: one more token.
    assert!(rig
        .send(t0 + SEC / 10 - 1, &meta(20), &discover(20, 1))
        .is_err());
    assert!(rig
        .send(t0 + SEC / 10 + 1, &meta(21), &discover(21, 1))
        .is_ok());
    // Over 10 s at 100 requests/s offered, about 10/s pass.
    let mut ok = 0;
    for k in 0..1000u64 {
        let i = (k % 200) as u8;
        if rig
            .send(t0 + SEC + k * SEC / 100, &meta(i), &discover(i, 1))
            .is_ok()
        {
            ok += 1;
        }
    }
    assert!((100..=106).contains(&ok), "{ok}");
}

#[test]
fn drop_probability_and_delay_are_seeded_and_bounded() {
    let run = |seed: u64| {
        let mut cfg = config(pool([10, 0, 0], 10, 250));
        cfg.faults.drop_probability = 0.3;
        cfg.faults.delay = DelayConfig::Uniform {
            min: Duration::from_micros(100),
            max: Duration::from_micros(300),
        };
        cfg.seed = seed;
        let mut rig = Rig::new(cfg);
        let mut delays = Vec::new();
        for k in 0..10_000u32 {
            let i = (k % 200) as u8;
            if let Ok(Some((m, _))) = rig.send(0, &meta(i), &discover(i, k)) {
                delays.push(m.delay);
            }
        }
        (rig.s.stats().rejected(Reject::SimulatedDrop), delays)
    };
    let (dropped, delays) = run(7);
    assert!((2700..=3300).contains(&dropped), "{dropped}");
    assert_eq!(delays.len() as u64, 10_000 - dropped);
    assert!(delays.iter().all(|&d| (100_000..=300_000).contains(&d)));
    let mean = delays.iter().sum::<u64>() as f64 / delays.len() as f64;
    assert!((190_000.0..210_000.0).contains(&mean), "{mean}");
    assert_eq!(run(7).0, dropped, "same seed, same run");
    assert_ne!(run(8).1, delays);

    let mut cfg = config(pool([10, 0, 0], 10, 20));
    cfg.faults.delay = DelayConfig::Fixed(Duration::from_millis(2));
    let mut rig = Rig::new(cfg);
    let (m, _) = rig.send(0, &meta(1), &discover(1, 1)).unwrap().unwrap();
    assert_eq!(m.delay, 2_000_000);
    assert_eq!(rig.s.stats().counters.delayed, 1);
    let mut cfg = config(pool([10, 0, 0], 10, 20));
    cfg.faults.drop_probability = 1.0;
    let mut rig = Rig::new(cfg);
    assert_eq!(
        rig.send(0, &meta(1), &discover(1, 1)).err(),
        Some(Reject::SimulatedDrop)
    );
}

#[test]
fn config_validation() {
    let bad = |f: &dyn Fn(&mut ServerConfig)| {
        let mut c = config(pool([10, 0, 0], 10, 20));
        f(&mut c);
        Server::new(&c, HZ).err()
    };
    assert_eq!(bad(&|c| c.pools.clear()), Some(ConfigError::NoPools));
    assert_eq!(
        bad(&|c| c.pools[0].prefix_len = 31),
        Some(ConfigError::BadPrefix)
    );
    assert_eq!(
        bad(&|c| c.pools[0].range_end = Ipv4Addr::new(10, 0, 0, 5)),
        Some(ConfigError::RangeReversed)
    );
    assert_eq!(
        bad(&|c| c.pools[0].range_end = Ipv4Addr::new(10, 0, 0, 255)),
        Some(ConfigError::RangeOutsideSubnet)
    );
    assert_eq!(
        bad(&|c| c.pools[0].range_start = Ipv4Addr::new(10, 0, 0, 0)),
        Some(ConfigError::RangeOutsideSubnet)
    );
    assert_eq!(
        bad(&|c| c.pools.push(pool([10, 0, 0], 30, 40))),
        Some(ConfigError::PoolsOverlap)
    );
    assert_eq!(
        bad(&|c| c.max_leases = 5),
        Some(ConfigError::TooManyAddresses)
    );
    assert_eq!(
        bad(&|c| c.faults.drop_probability = 1.5),
        Some(ConfigError::BadProbability)
    );
    assert_eq!(
        bad(&|c| c.faults.delay = DelayConfig::Uniform {
            min: Duration::from_secs(2),
            max: Duration::from_secs(1)
        }),
        Some(ConfigError::BadDelay)
    );
    assert_eq!(
        bad(&|c| c.faults.rate_limit = Some(RateLimit {
            per_sec: 0,
            burst: 1
        })),
        Some(ConfigError::BadRateLimit)
    );
    assert_eq!(
        bad(&|c| c.pools[0].lease_time = Duration::ZERO),
        Some(ConfigError::BadLeaseTime)
    );
    assert_eq!(bad(&|_| {}), None);
}

#[test]
fn handle_frame_replies_with_a_valid_frame() {
    let mut cfg = config(pool([10, 0, 0], 10, 20));
    cfg.server_mac = MacAddr([0x02, 0xaa, 0, 0, 0, 1]);
    let mut s = Server::new(&cfg, HZ).unwrap();
    let mut d = discover(1, 0x55);
    d.broadcast = true;
    let spec = FrameSpec {
        src_mac: mac(1),
        dst_mac: MacAddr::BROADCAST,
        vlan: Some(42),
        src_ip: Ipv4Addr::UNSPECIFIED,
        dst_ip: Ipv4Addr::BROADCAST,
        src_port: 68,
        dst_port: 67,
        ttl: 64,
        ident: 1,
    };
    let mut f = [0u8; 1500];
    let n = d.emit(&mut f[spec.dhcp_offset()..]).unwrap();
    let len = spec.emit(&mut f, n).unwrap();
    let mut out = [0u8; 1500];
    let m = s
        .handle_frame(0, LOCAL, &f[..len], &mut out)
        .unwrap()
        .unwrap();
    let p = parse_frame(&out[..m.len]).unwrap();
    assert_eq!(p.meta.vlan, Some(42));
    assert_eq!(p.meta.src_mac, cfg.server_mac);
    assert_eq!(p.meta.dst_mac, MacAddr::BROADCAST);
    assert_eq!(
        (p.meta.src_ip, p.meta.dst_ip),
        (SERVER, Ipv4Addr::BROADCAST)
    );
    assert_eq!((p.meta.src_port, p.meta.dst_port), (67, 68));
    let mut scratch = OptionScratch::new();
    let r = DhcpRepr::parse(p.dhcp(&out[..m.len]), &mut scratch).unwrap();
    assert_eq!((r.message_type, r.xid), (MessageType::Offer, 0x55));
    // A corrupted frame is counted by frame reason.
    f[30] ^= 0xff;
    assert!(matches!(
        s.handle_frame(0, LOCAL, &f[..len], &mut out),
        Err(Reject::Frame(_))
    ));
    // A reply-sized output buffer that is too small is an error.
    f[30] ^= 0xff;
    assert_eq!(
        s.handle_frame(0, LOCAL, &f[..len], &mut out[..100]).err(),
        Some(Reject::BufferTooSmall)
    );
}
