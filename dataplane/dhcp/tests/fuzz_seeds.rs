//! Writes the seed inputs of the `dhcp` fuzz target
//! (`dataplane/fuzz/corpus/dhcp/seed-*`). Run with
//! `cargo test -p qsplice-dhcp --test fuzz_seeds -- --ignored`.
//! The (not ignored) check verifies the committed seeds still parse.

use core::time::Duration;
use std::path::PathBuf;

use qsplice_dhcp::client::{RelayConfig, Tester, TesterConfig, TxBatch};
use qsplice_dhcp::frame::parse_frame;
use qsplice_dhcp::server::{PoolConfig, Server, ServerConfig};
use qsplice_dhcp::wire::{AddrList, DhcpRepr, MessageType};
use qsplice_dhcp::{Ipv4Addr, MacAddr};

const HZ: u64 = 1_000_000_000;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/dhcp")
}

/// DISCOVER (tester, VLAN 7), OFFER (relayed, Option 82) and ACK frames.
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
        let r = DhcpRepr::parse(p.dhcp(&bytes)).unwrap();
        if name.contains("opt82") {
            assert_eq!(r.message_type, MessageType::Offer);
            assert!(r.relay_agent_info.is_some());
        }
        // The committed seeds are DHCP frames of the same kind.
        if let Ok(on_disk) = std::fs::read(corpus().join(name)) {
            let p = parse_frame(&on_disk).unwrap();
            let d = DhcpRepr::parse(p.dhcp(&on_disk)).unwrap();
            assert_eq!(d.message_type, r.message_type, "{name}");
        }
    }
}
