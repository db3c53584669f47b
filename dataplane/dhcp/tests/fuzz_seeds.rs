//! Writes the seed inputs of the `dhcp` fuzz target
//! (`dataplane/fuzz/corpus/dhcp/seed-*`). Run with
//! `cargo test -p qsplice-dhcp --test fuzz_seeds -- --ignored`.
//! The (not ignored) check verifies the committed seeds still parse.

use core::time::Duration;
use std::path::PathBuf;

use qsplice_dhcp::client::{RelayConfig, Tester, TesterConfig, TxBatch};
use qsplice_dhcp::frame::{parse_frame, FrameSpec};
use qsplice_dhcp::server::{PoolConfig, Server, ServerConfig};
use qsplice_dhcp::wire::{AddrList, DhcpRepr, MessageType, OptionScratch};
use qsplice_dhcp::{Ipv4Addr, MacAddr};

const HZ: u64 = 1_000_000_000;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/dhcp")
}

/// A relayed DISCOVER whose Option 82 is split in two instances (RFC 3396):
/// circuit id `eth0/1/7` in the first, remote id in the second, a client id
/// between them.
fn discover_split_82() -> Vec<u8> {
    let mut d = vec![0u8; 240];
    d[..4].copy_from_slice(&[1, 1, 6, 1]); // BOOTREQUEST, Ethernet, hlen 6, hops 1
    d[4..8].copy_from_slice(&0x0382_0382u32.to_be_bytes());
    d[24..28].copy_from_slice(&[10, 0, 0, 254]); // giaddr
    d[28..34].copy_from_slice(&[2, 0, 0, 0, 0, 0x42]);
    d[236..240].copy_from_slice(&[99, 130, 83, 99]);
    d.extend_from_slice(&[53, 1, 1]);
    d.extend_from_slice(&[82, 10, 1, 8, b'e', b't', b'h', b'0', b'/', b'1', b'/', b'7']);
    d.extend_from_slice(&[61, 7, 1, 2, 0, 0, 0, 0, 0x42]);
    d.extend_from_slice(&[82, 8, 2, 6, 0, 0x11, 0x22, 0x33, 0x44, 0x55]);
    d.push(255);
    d.resize(300, 0);
    let spec = FrameSpec {
        src_mac: MacAddr([2, 0xbb, 0, 0, 0, 1]),
        dst_mac: MacAddr([2, 0xaa, 0, 0, 0, 1]),
        vlan: None,
        src_ip: Ipv4Addr::new(10, 0, 0, 254),
        dst_ip: Ipv4Addr::new(10, 0, 0, 1),
        src_port: 67,
        dst_port: 67,
        ttl: 64,
        ident: 82,
    };
    let mut f = vec![0u8; 400];
    let off = spec.dhcp_offset();
    f[off..off + d.len()].copy_from_slice(&d);
    let n = spec.emit(&mut f, d.len()).unwrap();
    f.truncate(n);
    f
}

/// DISCOVER (tester, VLAN 7), OFFER (relayed, Option 82), ACK frames and a
/// relayed DISCOVER with a split Option 82.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let server_ip = Ipv4Addr::new(10, 0, 0, 1);
    let pool = PoolConfig {
        network: Ipv4Addr::new(10, 0, 0, 0),
        prefix_len: 24,
        range_start: Ipv4Addr::new(10, 0, 0, 10),
        range_end: Ipv4Addr::new(10, 0, 0, 20),
        routers: AddrList::from_iter([Ipv4Addr::new(10, 0, 0, 1)]),
        dns_servers: AddrList::from_iter([Ipv4Addr::new(10, 0, 0, 2)]),
        lease_time: Duration::from_secs(60),
    };
    let mut s = Server::new(
        &ServerConfig::new(server_ip, MacAddr([2, 0xaa, 0, 0, 0, 1]), pool),
        HZ,
    )
    .unwrap();
    let mut tc = TesterConfig::new(1);
    tc.vlan = Some(7);
    let mut t = Tester::new(&tc, HZ).unwrap();
    let mut b = TxBatch::new(4);
    t.poll(0, &mut b);
    let discover = b.get(0).unwrap().to_vec();

    let mut tc = TesterConfig::new(1);
    tc.relay = Some(RelayConfig {
        giaddr: Ipv4Addr::new(10, 0, 0, 254),
        relay_mac: MacAddr([2, 0xbb, 0, 0, 0, 1]),
        server_ip,
        server_mac: MacAddr([2, 0xaa, 0, 0, 0, 1]),
        hops: 0,
        max_hops: 16,
        circuit_id: "eth{index}".into(),
        remote_id: "r{index}".into(),
    });
    let mut t = Tester::new(&tc, HZ).unwrap();
    b.clear();
    t.poll(0, &mut b);
    let mut out = [0u8; 1500];
    let m = s
        .handle_frame(0, server_ip, b.get(0).unwrap(), &mut out)
        .unwrap()
        .unwrap();
    let offer = out[..m.len].to_vec();
    t.on_reply(0, &offer).unwrap();
    b.clear();
    t.poll(1, &mut b);
    let m = s
        .handle_frame(1, server_ip, b.get(0).unwrap(), &mut out)
        .unwrap()
        .unwrap();
    let ack = out[..m.len].to_vec();
    vec![
        ("seed-discover-vlan", discover),
        ("seed-offer-relay-opt82", offer),
        ("seed-ack-relay", ack),
        ("seed-discover-split-82", discover_split_82()),
    ]
}

#[test]
#[ignore = "writes the fuzz corpus seeds"]
fn write_fuzz_seeds() {
    std::fs::create_dir_all(corpus()).unwrap();
    for (name, bytes) in seeds() {
        std::fs::write(corpus().join(name), bytes).unwrap();
    }
}

#[test]
fn committed_seeds_are_current() {
    for (name, bytes) in seeds() {
        let p = parse_frame(&bytes).unwrap();
        let mut scratch = OptionScratch::new();
        let r = DhcpRepr::parse(p.dhcp(&bytes), &mut scratch).unwrap();
        if name.contains("opt82") {
            assert_eq!(r.message_type, MessageType::Offer);
            assert!(r.relay_agent_info.is_some());
        }
        if name.contains("split-82") {
            assert_eq!(r.message_type, MessageType::Discover);
            let whole: &[u8] = &[
                1, 8, b'e', b't', b'h', b'0', b'/', b'1', b'/', b'7', 2, 6, 0, 0x11, 0x22, 0x33,
                0x44, 0x55,
            ];
            assert_eq!(r.relay_agent_info, Some(whole), "joined (RFC 3396)");
        }
        // The committed seeds are DHCP frames of the same kind.
        if let Ok(on_disk) = std::fs::read(corpus().join(name)) {
            let p = parse_frame(&on_disk).unwrap();
            let mut scratch = OptionScratch::new();
            let d = DhcpRepr::parse(p.dhcp(&on_disk), &mut scratch).unwrap();
            assert_eq!(d.message_type, r.message_type, "{name}");
        }
    }
}
