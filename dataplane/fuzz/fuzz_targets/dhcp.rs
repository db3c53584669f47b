//! Fuzz target `dhcp`: the DHCP frame and message parsers, Option 82, and
//! the two state machines of `qsplice-dhcp` fed with the input.
//!
//! The input is tried as a whole Ethernet frame and as a bare DHCP message:
//! * `parse_frame`, `DhcpPacket` accessors and the options iterator,
//!   `DhcpRepr::parse` and `RelayAgentInfo::parse` must not panic; whatever
//!   parses must re-emit and parse back to the same value;
//! * a `Server` gets the frame (`handle_frame`) and the bare message
//!   (`handle`), and a reply it emits must parse as a BOOTREPLY frame;
//! * a `Tester` whose clients have just sent their DISCOVERs gets the frame
//!   as a reply (`on_reply`), then polls.
//! No counter may disagree with what was returned.
#![no_main]

use qsplice_dhcp::client::{Tester, TesterConfig, TxBatch};
use qsplice_dhcp::frame::parse_frame;
use qsplice_dhcp::server::{PoolConfig, RequestMeta, Server, ServerConfig};
use qsplice_dhcp::wire::{AddrList, DhcpPacket, DhcpRepr, RelayAgentInfo, BOOTREPLY};
use qsplice_dhcp::{Ipv4Addr, MacAddr};

const HZ: u64 = 1_000_000_000;

fn check_message(b: &[u8]) {
    if let Ok(p) = DhcpPacket::new_checked(b) {
        let _ = (p.op(), p.xid(), p.chaddr(), p.chaddr_bytes(), p.sname(), p.file());
        let mut n = 0;
        for o in p.options() {
            n += 1;
            assert!(n <= b.len(), "options iterator must be bounded");
            if let Ok(o) = o {
                if o.code == 82 {
                    let _ = RelayAgentInfo::parse(o.data);
                }
            }
        }
    }
    match DhcpRepr::parse(b) {
        Ok(r) => {
            let mut out = [0u8; 2048];
            let n = r.emit(&mut out).expect("a parsed message fits 2 KiB");
            let back = DhcpRepr::parse(&out[..n]).expect("re-emitted message parses");
            assert_eq!(back, r);
            if let Some(raw) = r.relay_agent_info {
                RelayAgentInfo::parse(raw).expect("validated by parse");
            }
        }
        Err(e) => assert!(!e.as_str().is_empty()),
    }
}

fn server() -> Server {
    let pool = PoolConfig {
        network: Ipv4Addr::new(10, 0, 0, 0),
        prefix_len: 24,
        range_start: Ipv4Addr::new(10, 0, 0, 10),
        range_end: Ipv4Addr::new(10, 0, 0, 20),
        routers: AddrList::from_iter([Ipv4Addr::new(10, 0, 0, 1)]),
        dns_servers: AddrList::new(),
        lease_time: core::time::Duration::from_secs(60),
    };
    let mut cfg = ServerConfig::new(
        Ipv4Addr::new(10, 0, 0, 1),
        MacAddr([2, 0xaa, 0, 0, 0, 1]),
        pool,
    );
    cfg.offer_timeout = core::time::Duration::from_secs(1);
    Server::new(&cfg, HZ).expect("valid config")
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(p) = parse_frame(data) {
        check_message(p.dhcp(data));
    }
    check_message(data);

    let local = Ipv4Addr::new(10, 0, 0, 1);
    let mut s = server();
    let mut out = [0u8; 1600];
    let before = s.stats().rejected_total();
    match s.handle_frame(5, local, data, &mut out) {
        Ok(Some(m)) => {
            let p = parse_frame(&out[..m.len]).expect("server reply frame parses");
            let r = DhcpRepr::parse(p.dhcp(&out[..m.len])).expect("server reply parses");
            assert_eq!(r.op, BOOTREPLY);
            assert_eq!(s.stats().rejected_total(), before);
        }
        Ok(None) => assert_eq!(s.stats().rejected_total(), before),
        Err(_) => assert_eq!(s.stats().rejected_total(), before + 1),
    }
    // The same bytes as a bare DHCP message, later (expiry paths).
    let meta = RequestMeta {
        src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
        src_ip: Ipv4Addr::UNSPECIFIED,
        dst_ip: Ipv4Addr::BROADCAST,
        vlan: None,
        local_ip: local,
    };
    if let Ok(Some(m)) = s.handle(2 * HZ, &meta, data, &mut out) {
        let r = DhcpRepr::parse(&out[..m.len]).expect("server reply parses");
        assert_eq!(r.op, BOOTREPLY);
    }
    s.tick(u64::MAX / 2);

    let mut cfg = TesterConfig::new(4);
    cfg.retransmit.initial = core::time::Duration::from_millis(1);
    cfg.retransmit.max = core::time::Duration::from_millis(4);
    let mut t = Tester::new(&cfg, HZ).expect("valid config");
    let mut batch = TxBatch::new(8);
    t.poll(0, &mut batch);
    let errors = t.stats().counters.reply_errors;
    match t.on_reply(10, data) {
        Ok(_) => assert_eq!(t.stats().counters.reply_errors, errors),
        Err(e) => {
            assert_eq!(t.stats().counters.reply_errors, errors + 1);
            assert!(!e.as_str().is_empty());
        }
    }
    batch.clear();
    t.poll(20, &mut batch);
    for f in batch.iter() {
        parse_frame(f).expect("tester frames parse");
    }
    batch.clear();
    t.poll(HZ, &mut batch);
    let _ = t.report(HZ);
});
