//! RFC 3396 long options: a repeated option is one value, the concatenation
//! of its pieces (options field, then `file`, then `sname`). Byte fixtures
//! for the server (a split Option 82 echoed whole, conflicting message
//! types, a long Option 82 re-split when echoed), for the tester (a split
//! Option 82 in a reply), for the codec (identical pieces, pieces across
//! overloaded fields, values over 255 bytes emitted as several pieces,
//! the scratch bound), and property tests.

use core::time::Duration;

use proptest::prelude::*;
use qsplice_dhcp::client::{RelayConfig, ReplyError, ReplyEvent, Tester, TesterConfig, TxBatch};
use qsplice_dhcp::frame::{parse_frame, FrameSpec};
use qsplice_dhcp::server::{PoolConfig, Reject, RequestMeta, Server, ServerConfig};
use qsplice_dhcp::wire::{
    opt, AddrList, DhcpPacket, DhcpRepr, Error, MessageType, OptionScratch, RelayAgentInfo,
    BOOTREPLY, BOOTREQUEST, MAGIC_COOKIE, MAX_CONCAT_LEN,
};
use qsplice_dhcp::{Ipv4Addr, MacAddr};

const HZ: u64 = 1_000_000_000;
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
const GIADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const RELAY_MAC: MacAddr = MacAddr([0x02, 0xbb, 0, 0, 0, 1]);
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x42];

/// The 240-byte fixed part (cookie included) of a BOOTREQUEST from
/// `CLIENT_MAC` relayed through `giaddr` (hops 1 if relayed).
fn header(xid: u32, giaddr: Ipv4Addr) -> Vec<u8> {
    let mut b = vec![0u8; 240];
    b[0] = BOOTREQUEST;
    b[1] = 1; // htype Ethernet
    b[2] = 6; // hlen
    b[3] = u8::from(!giaddr.is_unspecified()); // hops
    b[4..8].copy_from_slice(&xid.to_be_bytes());
    b[24..28].copy_from_slice(&giaddr.octets());
    b[28..34].copy_from_slice(&CLIENT_MAC);
    b[236..240].copy_from_slice(&MAGIC_COOKIE);
    b
}

/// `header` + `opts` (which must carry their own end option).
fn message(xid: u32, giaddr: Ipv4Addr, opts: &[u8]) -> Vec<u8> {
    let mut b = header(xid, giaddr);
    b.extend_from_slice(opts);
    b
}

fn server() -> Server {
    let pool = PoolConfig {
        network: Ipv4Addr::new(10, 0, 0, 0),
        prefix_len: 24,
        range_start: Ipv4Addr::new(10, 0, 0, 10),
        range_end: Ipv4Addr::new(10, 0, 0, 20),
        routers: AddrList::from_iter([GIADDR]),
        dns_servers: AddrList::new(),
        lease_time: Duration::from_secs(3600),
    };
    Server::new(
        &ServerConfig::new(SERVER, MacAddr([0x02, 0xaa, 0, 0, 0, 1]), pool),
        HZ,
    )
    .unwrap()
}

fn relay_meta() -> RequestMeta {
    RequestMeta {
        src_mac: RELAY_MAC,
        src_ip: GIADDR,
        dst_ip: SERVER,
        vlan: None,
        local_ip: SERVER,
    }
}

/// The pieces of option `code` in a DHCP message, as on the wire.
fn pieces_of(dhcp: &[u8], code: u8) -> Vec<Vec<u8>> {
    DhcpPacket::new_checked(dhcp)
        .unwrap()
        .options()
        .map(|o| o.unwrap())
        .filter(|o| o.code == code)
        .map(|o| o.data.to_vec())
        .collect()
}

/// Circuit id `eth0/1/7` (sub-option 1) and remote id 00:11:22:33:44:55
/// (sub-option 2).
const CIRCUIT: [u8; 10] = [1, 8, b'e', b't', b'h', b'0', b'/', b'1', b'/', b'7'];
const REMOTE: [u8; 8] = [2, 6, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55];

/// A relayed DISCOVER whose Option 82 is split in two instances: the circuit
/// id in the first, the remote id in the second, a client id between them.
fn discover_with_split_82() -> Vec<u8> {
    let mut o = vec![53, 1, 1];
    o.extend_from_slice(&[82, CIRCUIT.len() as u8]);
    o.extend_from_slice(&CIRCUIT);
    o.extend_from_slice(&[61, 7, 1]);
    o.extend_from_slice(&CLIENT_MAC);
    o.extend_from_slice(&[82, REMOTE.len() as u8]);
    o.extend_from_slice(&REMOTE);
    o.push(255);
    message(0x1234, GIADDR, &o)
}

#[test]
fn split_option_82_is_parsed_whole() {
    let b = discover_with_split_82();
    let mut scratch = OptionScratch::new();
    let r = DhcpRepr::parse(&b, &mut scratch).unwrap();
    let whole: Vec<u8> = [&CIRCUIT[..], &REMOTE[..]].concat();
    assert_eq!(r.relay_agent_info, Some(&whole[..]));
    let info = RelayAgentInfo::parse(r.relay_agent_info.unwrap()).unwrap();
    assert_eq!(info.circuit_id, Some(&b"eth0/1/7"[..]));
    assert_eq!(info.remote_id, Some(&REMOTE[2..]));
    // The same through the packet view.
    let p = DhcpPacket::new_checked(&b[..]).unwrap();
    let mut s2 = OptionScratch::new();
    assert_eq!(
        p.option_concat(opt::RELAY_AGENT_INFO, &mut s2),
        Ok(Some(&whole[..]))
    );
    assert_eq!(
        p.option_concat(opt::CLIENT_ID, &mut s2),
        Ok(Some(&[1, 2, 0, 0, 0, 0, 0x42][..]))
    );
    assert_eq!(p.option_concat(opt::HOSTNAME, &mut s2), Ok(None));
}

#[test]
fn server_echoes_a_split_option_82_whole() {
    let mut s = server();
    let mut out = [0u8; 1500];
    let b = discover_with_split_82();
    let m = s.handle(0, &relay_meta(), &b, &mut out).unwrap().unwrap();
    assert_eq!(m.message_type, MessageType::Offer);
    assert_eq!((m.dst_ip, m.dst_port, m.dst_mac), (GIADDR, 67, RELAY_MAC));
    let reply = &out[..m.len];
    // On the wire: one Option 82 instance holding both sub-options, last
    // before the end option.
    let mut expect = vec![82, 18];
    expect.extend_from_slice(&CIRCUIT);
    expect.extend_from_slice(&REMOTE);
    expect.push(255);
    assert_eq!(expect.len(), 21);
    let at = reply
        .windows(expect.len())
        .position(|w| w == &expect[..])
        .expect("the reply carries the whole Option 82, then end");
    assert!(at >= 240);
    assert_eq!(
        pieces_of(reply, 82),
        vec![[&CIRCUIT[..], &REMOTE[..]].concat()]
    );
    let mut scratch = OptionScratch::new();
    let r = DhcpRepr::parse(reply, &mut scratch).unwrap();
    assert_eq!(r.op, BOOTREPLY);
    assert_eq!(r.yiaddr, Ipv4Addr::new(10, 0, 0, 10));
    assert_eq!(
        r.relay_agent_info,
        Some(&[&CIRCUIT[..], &REMOTE[..]].concat()[..])
    );
}

#[test]
fn server_echoes_option_82_split_inside_a_sub_option() {
    // RFC 3396 allows a split anywhere: here inside the circuit id.
    let whole: Vec<u8> = [&CIRCUIT[..], &REMOTE[..]].concat();
    let mut o = vec![53, 1, 1, 82, 5];
    o.extend_from_slice(&whole[..5]);
    o.extend_from_slice(&[0, 0, 82, 0, 82, (whole.len() - 5) as u8]); // pads, an empty piece
    o.extend_from_slice(&whole[5..]);
    o.push(255);
    let b = message(9, GIADDR, &o);
    let mut s = server();
    let mut out = [0u8; 1500];
    let m = s.handle(0, &relay_meta(), &b, &mut out).unwrap().unwrap();
    assert_eq!(pieces_of(&out[..m.len], 82), vec![whole]);
}

#[test]
fn server_echoes_a_long_option_82_as_several_pieces() {
    // 2 + 200 + 2 + 100 = 304 bytes: more than one instance can hold.
    let circuit = [b'c'; 200];
    let remote = [b'r'; 100];
    let info = RelayAgentInfo {
        circuit_id: Some(&circuit),
        remote_id: Some(&remote),
    };
    let mut whole = [0u8; 304];
    assert_eq!(info.emit(&mut whole), Ok(304));
    // Sent split 150 / 154 (any split is fine).
    let mut o = vec![53, 1, 1, 82, 150];
    o.extend_from_slice(&whole[..150]);
    o.extend_from_slice(&[82, 154]);
    o.extend_from_slice(&whole[150..]);
    o.push(255);
    let b = message(7, GIADDR, &o);
    let mut s = server();
    let mut out = [0u8; 1500];
    let m = s.handle(0, &relay_meta(), &b, &mut out).unwrap().unwrap();
    let reply = &out[..m.len];
    // Echoed as 255 + 49 bytes, consecutive, last.
    let mut expect = vec![82, 255];
    expect.extend_from_slice(&whole[..255]);
    expect.extend_from_slice(&[82, 49]);
    expect.extend_from_slice(&whole[255..]);
    expect.push(255);
    let at = reply
        .windows(expect.len())
        .position(|w| w == &expect[..])
        .expect("Option 82 re-split into 255 + 49 bytes");
    assert!(at >= 240);
    let mut scratch = OptionScratch::new();
    let r = DhcpRepr::parse(reply, &mut scratch).unwrap();
    assert_eq!(r.relay_agent_info, Some(&whole[..]));
    assert_eq!(RelayAgentInfo::parse(&whole).unwrap(), info);
}

#[test]
fn conflicting_message_types_are_malformed() {
    let mut s = server();
    let mut out = [0u8; 1500];
    let reason = Reject::Malformed(Error::ConflictingMessageType);
    assert_eq!(reason.as_str(), "conflicting_message_type");
    // DISCOVER and REQUEST in one message; the same type twice (concatenated
    // to 2 bytes); and a type split across `options` and an overloaded file.
    let both = message(1, GIADDR, &[53, 1, 1, 61, 2, 1, 2, 53, 1, 3, 255]);
    let twice = message(2, GIADDR, &[53, 1, 1, 53, 1, 1, 255]);
    let mut overloaded = message(3, GIADDR, &[53, 1, 3, 52, 1, 1, 255]);
    overloaded[108..112].copy_from_slice(&[53, 1, 1, 255]);
    for (i, b) in [both, twice, overloaded].iter().enumerate() {
        assert_eq!(
            s.handle(0, &relay_meta(), b, &mut out),
            Err(reason),
            "case {i}"
        );
        assert_eq!(
            DhcpRepr::parse(b, &mut OptionScratch::new()),
            Err(Error::ConflictingMessageType)
        );
        assert_eq!(s.stats().rejected(reason), i as u64 + 1);
    }
    assert_eq!(s.stats().rejected_total(), 3);
    assert_eq!(s.stats().counters.offer_sent, 0);
    // One piece of the wrong size stays bad_option_len; an empty piece
    // plus a one-byte piece is one message type.
    let two_bytes = message(4, GIADDR, &[53, 2, 1, 1, 255]);
    assert_eq!(
        DhcpRepr::parse(&two_bytes, &mut OptionScratch::new()),
        Err(Error::BadOptionLen)
    );
    let empty_then_one = message(5, GIADDR, &[53, 0, 53, 1, 1, 255]);
    let mut scratch = OptionScratch::new();
    let r = DhcpRepr::parse(&empty_then_one, &mut scratch).unwrap();
    assert_eq!(r.message_type, MessageType::Discover);
}

#[test]
fn repeated_identical_pieces_are_concatenated() {
    let o = [
        53, 1, 8, // INFORM
        12, 2, b'a', b'b', 12, 2, b'a', b'b', // host name "abab"
        3, 4, 10, 0, 0, 1, 3, 4, 10, 0, 0, 1, // two routers, the same
        82, 4, 1, 2, b'x', b'y', 82, 4, 1, 2, b'x', b'y', // circuit id twice
        255,
    ];
    let b = message(1, GIADDR, &o);
    let mut scratch = OptionScratch::new();
    let r = DhcpRepr::parse(&b, &mut scratch).unwrap();
    assert_eq!(r.message_type, MessageType::Inform);
    assert_eq!(r.hostname, Some(&b"abab"[..]));
    assert_eq!(&r.routers[..], &[GIADDR, GIADDR]);
    assert_eq!(
        r.relay_agent_info,
        Some(&[1, 2, b'x', b'y', 1, 2, b'x', b'y'][..])
    );
    // Emitted again, each is one instance (all short), and parses the same.
    let mut out = [0u8; 600];
    let n = r.emit(&mut out).unwrap();
    assert_eq!(pieces_of(&out[..n], 12), vec![b"abab".to_vec()]);
    assert_eq!(pieces_of(&out[..n], 82).len(), 1);
    assert_eq!(DhcpRepr::parse(&out[..n], &mut OptionScratch::new()), Ok(r));
}

#[test]
fn pieces_are_joined_in_options_file_sname_order() {
    // Option 52 = 3: options, then file, then sname (RFC 3396 §7).
    let mut b = message(
        1,
        Ipv4Addr::UNSPECIFIED,
        &[53, 1, 1, 12, 1, b'o', 52, 1, 3, 255],
    );
    b[108..112].copy_from_slice(&[12, 1, b'f', 255]); // file
    b[44..48].copy_from_slice(&[12, 1, b's', 255]); // sname
    let mut scratch = OptionScratch::new();
    let r = DhcpRepr::parse(&b, &mut scratch).unwrap();
    assert_eq!(r.hostname, Some(&b"ofs"[..]));
    let p = DhcpPacket::new_checked(&b[..]).unwrap();
    let mut s2 = OptionScratch::new();
    assert_eq!(p.option_concat(12, &mut s2), Ok(Some(&b"ofs"[..])));
}

#[test]
fn values_over_255_bytes_are_emitted_as_several_pieces() {
    let host: Vec<u8> = (0..600u32).map(|i| b'a' + (i % 26) as u8).collect();
    let circuit = [7u8; 255];
    let remote = [9u8; 40];
    let info = RelayAgentInfo {
        circuit_id: Some(&circuit),
        remote_id: Some(&remote),
    };
    let mut o82 = [0u8; 299];
    assert_eq!(info.emit(&mut o82), Ok(299));
    let mut r = DhcpRepr::new(BOOTREPLY, MessageType::Ack, 5, MacAddr(CLIENT_MAC));
    r.hostname = Some(&host);
    r.relay_agent_info = Some(&o82);
    let mut out = [0u8; 1500];
    let n = r.emit(&mut out).unwrap();
    assert_eq!(n, r.buffer_len());
    // 53 (3 bytes), 12 as 255 + 255 + 90, 82 as 255 + 44, end.
    assert_eq!(
        n,
        240 + 3 + (2 + 255) * 2 + (2 + 90) + (2 + 255) + (2 + 44) + 1
    );
    let opts = &out[240..n];
    assert_eq!(&opts[..3], &[53, 1, 5]);
    assert_eq!(&opts[3..5], &[12, 255]);
    assert_eq!(&opts[5..260], &host[..255]);
    assert_eq!(&opts[260..262], &[12, 255]);
    assert_eq!(&opts[262..517], &host[255..510]);
    assert_eq!(&opts[517..519], &[12, 90]);
    assert_eq!(&opts[519..609], &host[510..]);
    assert_eq!(&opts[609..611], &[82, 255]);
    assert_eq!(&opts[611..866], &o82[..255]);
    assert_eq!(&opts[866..868], &[82, 44]);
    assert_eq!(&opts[868..912], &o82[255..]);
    assert_eq!(&opts[912..], &[255]);
    let mut scratch = OptionScratch::new();
    let back = DhcpRepr::parse(&out[..n], &mut scratch).unwrap();
    assert_eq!(back, r);
    assert_eq!(r.emit(&mut out[..n - 1]), Err(Error::BufferTooSmall));
}

#[test]
fn concatenation_is_bounded_by_the_scratch() {
    // Nine 255-byte host name pieces (2295 bytes) in a jumbo message: more
    // than MAX_CONCAT_LEN. An error, not a panic, not an allocation.
    let mut o = vec![53, 1, 1];
    for _ in 0..9 {
        o.extend_from_slice(&[12, 255]);
        o.extend_from_slice(&[b'h'; 255]);
    }
    o.push(255);
    let b = message(1, Ipv4Addr::UNSPECIFIED, &o);
    const { assert!(9 * 255 > MAX_CONCAT_LEN) };
    assert_eq!(
        DhcpRepr::parse(&b, &mut OptionScratch::new()),
        Err(Error::OptionTooLong)
    );
    let p = DhcpPacket::new_checked(&b[..]).unwrap();
    assert_eq!(
        p.option_concat(12, &mut OptionScratch::new()),
        Err(Error::OptionTooLong)
    );
    // Eight pieces (2040 bytes) fit.
    let mut o = vec![53, 1, 1];
    for _ in 0..8 {
        o.extend_from_slice(&[12, 255]);
        o.extend_from_slice(&[b'h'; 255]);
    }
    o.push(255);
    let b = message(1, Ipv4Addr::UNSPECIFIED, &o);
    let mut scratch = OptionScratch::new();
    let r = DhcpRepr::parse(&b, &mut scratch).unwrap();
    assert_eq!(r.hostname.map(<[u8]>::len), Some(8 * 255));
}

// --- the tester (client side) ---------------------------------------------

fn relay_tester() -> Tester {
    let mut tc = TesterConfig::new(1);
    tc.relay = Some(RelayConfig {
        giaddr: GIADDR,
        relay_mac: RELAY_MAC,
        server_ip: SERVER,
        server_mac: MacAddr([0x02, 0xaa, 0, 0, 0, 1]),
        hops: 0,
        max_hops: 16,
        circuit_id: "eth{index}".into(),
        remote_id: "r{index}".into(),
    });
    Tester::new(&tc, HZ).unwrap()
}

/// The server's OFFER frame for the tester's relayed DISCOVER.
fn offer_frame(t: &mut Tester, s: &mut Server) -> Vec<u8> {
    let mut b = TxBatch::new(4);
    t.poll(0, &mut b);
    let mut out = [0u8; 1500];
    let m = s
        .handle_frame(0, SERVER, b.get(0).unwrap(), &mut out)
        .unwrap()
        .unwrap();
    out[..m.len].to_vec()
}

/// `frame` with its DHCP options rewritten by `f` (called per piece; it
/// appends the replacement bytes), same addresses, fresh checksums.
fn rewrite_options(frame: &[u8], mut f: impl FnMut(u8, &[u8], &mut Vec<u8>)) -> Vec<u8> {
    let pf = parse_frame(frame).unwrap();
    let dhcp = pf.dhcp(frame);
    let mut d = dhcp[..240].to_vec();
    for o in DhcpPacket::new_checked(dhcp).unwrap().options() {
        let o = o.unwrap();
        f(o.code, o.data, &mut d);
    }
    d.push(255);
    d.resize(d.len().max(300), 0);
    let spec = FrameSpec {
        src_mac: pf.meta.src_mac,
        dst_mac: pf.meta.dst_mac,
        vlan: pf.meta.vlan,
        src_ip: pf.meta.src_ip,
        dst_ip: pf.meta.dst_ip,
        src_port: pf.meta.src_port,
        dst_port: pf.meta.dst_port,
        ttl: 64,
        ident: 1,
    };
    let mut out = vec![0u8; 2000];
    let off = spec.dhcp_offset();
    out[off..off + d.len()].copy_from_slice(&d);
    let n = spec.emit(&mut out, d.len()).unwrap();
    out.truncate(n);
    out
}

fn copy_piece(code: u8, data: &[u8], d: &mut Vec<u8>) {
    d.extend_from_slice(&[code, data.len() as u8]);
    d.extend_from_slice(data);
}

#[test]
fn tester_joins_a_split_option_82_in_a_reply() {
    let mut s = server();
    let mut t = relay_tester();
    let offer = offer_frame(&mut t, &mut s);
    // Split the echoed Option 82 after its first sub-option (circuit id
    // "eth0": 6 bytes).
    let whole = pieces_of(parse_frame(&offer).unwrap().dhcp(&offer), 82);
    assert_eq!(whole.len(), 1);
    assert_eq!(&whole[0][..6], &[1, 4, b'e', b't', b'h', b'0']);
    let split = rewrite_options(&offer, |code, data, d| {
        if code == 82 {
            copy_piece(82, &data[..6], d);
            copy_piece(200, &[1, 2, 3], d); // an unknown option between
            copy_piece(82, &data[6..], d);
        } else {
            copy_piece(code, data, d);
        }
    });
    assert_eq!(
        pieces_of(parse_frame(&split).unwrap().dhcp(&split), 82),
        vec![whole[0][..6].to_vec(), whole[0][6..].to_vec()]
    );
    assert!(matches!(t.on_reply(1, &split), Ok(ReplyEvent::Offer(0, _))));
    assert_eq!(
        t.stats().counters.option82_mismatch,
        0,
        "joined, then equal"
    );

    // Only the second piece ("last instance wins") is not our Option 82.
    let mut t = relay_tester();
    let offer = offer_frame(&mut t, &mut server());
    let tail_only = rewrite_options(&offer, |code, data, d| {
        if code == 82 {
            copy_piece(82, &data[6..], d)
        } else {
            copy_piece(code, data, d)
        }
    });
    assert!(t.on_reply(1, &tail_only).is_ok());
    assert_eq!(t.stats().counters.option82_mismatch, 1);
}

#[test]
fn tester_rejects_a_reply_with_two_message_types() {
    let mut s = server();
    let mut t = relay_tester();
    let offer = offer_frame(&mut t, &mut s);
    let bad = rewrite_options(&offer, |code, data, d| {
        copy_piece(code, data, d);
        if code == 53 {
            copy_piece(53, &[MessageType::Ack as u8], d);
        }
    });
    let e = ReplyError::Malformed(Error::ConflictingMessageType);
    assert_eq!(t.on_reply(1, &bad), Err(e));
    assert_eq!(t.stats().reply_error(e), 1);
    assert_eq!(t.stats().counters.offer_received, 0);
    // The unmodified offer is still taken.
    assert!(t.on_reply(2, &offer).is_ok());
}

// --- properties ------------------------------------------------------------

/// `v` split at `cuts` (each taken modulo `v.len() + 1`, so empty pieces
/// occur), then every piece longer than 255 bytes split again.
fn split(v: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (v.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut prev = 0;
    for c in at.into_iter().chain([v.len()]) {
        let piece = &v[prev..c];
        if piece.is_empty() {
            out.push(Vec::new());
        }
        out.extend(piece.chunks(255).map(<[u8]>::to_vec));
        prev = c;
    }
    out
}

/// Options: 53, then `pieces` of `code`, each followed by `filler[i]`
/// (0: nothing, 1: a pad, 2: an unknown option 200), then end.
fn options_with_pieces(code: u8, pieces: &[Vec<u8>], filler: &[u8]) -> Vec<u8> {
    let mut o = vec![53, 1, 3];
    for (i, p) in pieces.iter().enumerate() {
        o.extend_from_slice(&[code, p.len() as u8]);
        o.extend_from_slice(p);
        match filler.get(i).map(|f| f % 3) {
            Some(1) => o.push(0),
            Some(2) => o.extend_from_slice(&[200, 2, i as u8, 0xee]),
            _ => {}
        }
    }
    o.push(255);
    o
}

proptest! {
    #[test]
    fn split_values_parse_to_the_same_value(
        v in proptest::collection::vec(any::<u8>(), 1..700),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
        filler in proptest::collection::vec(any::<u8>(), 0..16),
        code in prop_oneof![Just(opt::HOSTNAME), Just(opt::MESSAGE), Just(opt::PARAMETER_REQUEST_LIST)],
    ) {
        let pieces = split(&v, &cuts);
        let b = message(1, Ipv4Addr::UNSPECIFIED, &options_with_pieces(code, &pieces, &filler));
        let mut scratch = OptionScratch::new();
        let r = DhcpRepr::parse(&b, &mut scratch).unwrap();
        let got = match code {
            opt::HOSTNAME => r.hostname,
            opt::MESSAGE => r.message,
            _ => r.parameter_request_list,
        };
        prop_assert_eq!(got, Some(&v[..]));
        let p = DhcpPacket::new_checked(&b[..]).unwrap();
        let mut s2 = OptionScratch::new();
        prop_assert_eq!(p.option_concat(code, &mut s2), Ok(Some(&v[..])));
        // Re-emitted (255-byte pieces) it parses to the same message.
        let mut out = vec![0u8; 2000];
        let n = r.emit(&mut out).unwrap();
        let mut s3 = OptionScratch::new();
        prop_assert_eq!(DhcpRepr::parse(&out[..n], &mut s3).unwrap(), r);
        prop_assert_eq!(pieces_of(&out[..n], code).len(), v.len().div_ceil(255));
    }

    #[test]
    fn split_option_82_is_echoed_whole(
        circuit in proptest::collection::vec(any::<u8>(), 1..=255),
        remote in proptest::collection::vec(any::<u8>(), 1..=255),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
        filler in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let info = RelayAgentInfo { circuit_id: Some(&circuit), remote_id: Some(&remote) };
        let mut whole = vec![0u8; info.data_len()];
        info.emit(&mut whole).unwrap();
        let mut o = options_with_pieces(82, &split(&whole, &cuts), &filler);
        o[2] = 1; // DISCOVER
        let b = message(3, GIADDR, &o);
        let mut scratch = OptionScratch::new();
        let r = DhcpRepr::parse(&b, &mut scratch).unwrap();
        prop_assert_eq!(r.relay_agent_info, Some(&whole[..]));
        prop_assert_eq!(RelayAgentInfo::parse(&whole).unwrap(), info);
        let mut s = server();
        let mut out = [0u8; 1500];
        let m = s.handle(0, &relay_meta(), &b, &mut out).unwrap().unwrap();
        let echoed = pieces_of(&out[..m.len], 82);
        prop_assert_eq!(echoed.concat(), whole.clone());
        prop_assert!(echoed.iter().all(|p| p.len() <= 255));
        prop_assert_eq!(echoed.len(), whole.len().div_ceil(255));
    }

    /// Whatever parses, every concatenated value fits in the option areas
    /// (options field + `file` + `sname`).
    #[test]
    fn concatenated_values_are_bounded_by_the_option_areas(
        opts in proptest::collection::vec(
            (prop_oneof![Just(53u8), Just(12), Just(82), Just(61), Just(55), Just(3), Just(52), Just(200)],
             proptest::collection::vec(any::<u8>(), 0..300)),
            0..12),
        overload in proptest::collection::vec(any::<u8>(), 192),
    ) {
        let mut o = Vec::new();
        for (code, data) in &opts {
            o.push(*code);
            o.push(data.len().min(255) as u8);
            o.extend_from_slice(&data[..data.len().min(255)]);
        }
        o.push(255);
        let mut b = message(1, Ipv4Addr::UNSPECIFIED, &o);
        b[44..236].copy_from_slice(&overload);
        let areas = b.len() - 240 + 192;
        let mut scratch = OptionScratch::new();
        if let Ok(r) = DhcpRepr::parse(&b, &mut scratch) {
            for v in [r.client_id, r.parameter_request_list, r.hostname, r.relay_agent_info]
                .into_iter()
                .flatten()
            {
                prop_assert!(v.len() <= areas);
            }
        }
        let p = DhcpPacket::new_checked(&b[..]).unwrap();
        for code in [12u8, 82, 200] {
            let mut s2 = OptionScratch::new();
            if let Ok(Some(v)) = p.option_concat(code, &mut s2) {
                prop_assert!(v.len() <= areas);
            }
        }
    }
}
