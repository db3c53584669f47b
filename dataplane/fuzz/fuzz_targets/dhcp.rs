//! Fuzz target `dhcp`: the DHCP frame and message parsers, Option 82, and
//! the two state machines of `qsplice-dhcp` fed with the input.
//!
//! The input is tried as a whole Ethernet frame and as a bare DHCP message:
//! * `parse_frame`, `DhcpPacket` accessors and the options iterator,
//!   `DhcpRepr::parse` and `RelayAgentInfo::parse` must not panic; whatever
//!   parses must re-emit and parse back to the same value;
//! * RFC 3396 concatenation: a concatenated value (`DhcpRepr` fields,
//!   `DhcpPacket::option_concat`) is never longer than the option areas
//!   (options field + `file` + `sname`), equals the concatenation of the
//!   iterator's pieces of that code, and a re-emitted value is split into
//!   pieces of at most 255 bytes that join back to it;
//! * a `Server` gets the frame (`handle_frame`) and the bare message
//!   (`handle`), and a reply it emits must parse as a BOOTREPLY frame;
//! * a `Tester` whose clients have just sent their DISCOVERs gets the frame
//!   as a reply (`on_reply`), then polls.
//! No counter may disagree with what was returned.
#![no_main]

use qsplice_dhcp::client::{Tester, TesterConfig, TxBatch};
use qsplice_dhcp::frame::parse_frame;
use qsplice_dhcp::server::{PoolConfig, RequestMeta, Server, ServerConfig};
use qsplice_dhcp::wire::{
    AddrList, DhcpPacket, DhcpRepr, OptionScratch, RelayAgentInfo, BOOTREPLY, MAX_CONCAT_LEN,
};
use qsplice_dhcp::{Ipv4Addr, MacAddr};

const HZ: u64 = 1_000_000_000;

fn check_message(b: &[u8]) {
    // Bytes the options may occupy: the options field, `file` and `sname`.
    let areas = b.len().saturating_sub(240) + 192;
    if let Ok(p) = DhcpPacket::new_checked(b) {
        let _ = (
            p.op(),
            p.xid(),
            p.chaddr(),
            p.chaddr_bytes(),
            p.sname(),
            p.file(),
        );
        let mut n = 0;
        let mut first_code = None;
        for o in p.options() {
            n += 1;
            assert!(n <= b.len(), "options iterator must be bounded");
            if let Ok(o) = o {
                first_code.get_or_insert(o.code);
                if o.code == 82 {
                    let _ = RelayAgentInfo::parse(o.data);
                }
            }
        }
        // RFC 3396: the joined value of a code equals its pieces in order
        // (the first code seen, Option 82 and the host name).
        for code in [first_code.unwrap_or(0), 82, 12] {
            let mut scratch = OptionScratch::new();
            match p.option_concat(code, &mut scratch) {
                Ok(v) => {
                    let (mut joined, mut pieces) = (Vec::new(), 0);
                    for o in p.options() {
                        let o = o.expect("option_concat validated every option");
                        if o.code == code {
                            joined.extend_from_slice(o.data);
                            pieces += 1;
                        }
                    }
                    assert!(joined.len() <= areas && joined.len() <= MAX_CONCAT_LEN);
                    assert_eq!(v, (pieces > 0).then_some(&joined[..]));
                }
                Err(e) => assert!(!e.as_str().is_empty()),
            }
        }
    }
    let mut scratch = OptionScratch::new();
    match DhcpRepr::parse(b, &mut scratch) {
        Ok(r) => {
            for v in [
                r.client_id,
                r.parameter_request_list,
                r.hostname,
                r.message,
                r.relay_agent_info,
            ]
            .into_iter()
            .flatten()
            {
                assert!(
                    v.len() <= areas,
                    "a concatenated option fits the option areas"
                );
            }
            let mut out = vec![0u8; r.buffer_len()];
            let n = r.emit(&mut out).expect("buffer_len bytes suffice");
            assert_eq!(n, out.len());
            if let Some(raw) = r.relay_agent_info {
                RelayAgentInfo::parse(raw).expect("validated by parse");
                let emitted = DhcpPacket::new_checked(&out[..n]).expect("emitted header");
                let pieces: Vec<&[u8]> = emitted
                    .options()
                    .filter_map(|o| o.ok())
                    .filter(|o| o.code == 82)
                    .map(|o| o.data)
                    .collect();
                assert!(pieces.iter().all(|p| p.len() <= 255));
                assert_eq!(pieces.concat(), raw, "re-emitted Option 82 joins back");
            }
            let mut scratch2 = OptionScratch::new();
            let back =
                DhcpRepr::parse(&out[..n], &mut scratch2).expect("re-emitted message parses");
            assert_eq!(back, r);
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
            let mut scratch = OptionScratch::new();
            let r =
                DhcpRepr::parse(p.dhcp(&out[..m.len]), &mut scratch).expect("server reply parses");
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
        let mut scratch = OptionScratch::new();
        let r = DhcpRepr::parse(&out[..m.len], &mut scratch).expect("server reply parses");
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
