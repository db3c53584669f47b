//! Config loading: every shipped file is valid, every rule rejects with the
//! right key, value and reason, nothing panics, and the EAL argv is right.

use std::path::PathBuf;

use proptest::prelude::*;
use qsplice_config::{parse, ConfigError, Hugepages};

const BASE: &str = r#"
[eal]
main_lcore = 0
worker_lcores = [1]

[[ports]]
name = "client"
device = "net_af_packet0,iface=veth0"
addresses = ["10.10.1.1/24"]
neighbors = ["10.10.1.2"]

[[ports]]
name = "backend"
device = "0000:03:00.1"
addresses = ["10.10.2.1/24"]
"#;

fn with(find: &str, replace: &str) -> String {
    assert!(BASE.contains(find), "fixture lacks {find:?}");
    BASE.replacen(find, replace, 1)
}

fn reject(text: &str) -> ConfigError {
    match parse(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn every_shipped_config_is_valid() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conf");
    // conf/lb-tls.toml names the files `qsplice tls-cert --out
    // /tmp/qsplice-certs` writes; validation checks they can be read.
    let certs = std::path::Path::new("/tmp/qsplice-certs");
    std::fs::create_dir_all(certs).unwrap();
    for f in [
        "ml-dsa-65.pem",
        "ml-dsa-65.key",
        "ecdsa-p256.pem",
        "ecdsa-p256.key",
    ] {
        if !certs.join(f).exists() {
            std::fs::write(certs.join(f), "placeholder for check-config\n").unwrap();
        }
    }
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("toml") {
            qsplice_config::load(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 3, "expected the shipped configs in {}", dir.display());
}

#[test]
fn base_fixture_is_valid_and_defaults_apply() {
    let c = parse(BASE).unwrap();
    assert_eq!(c.mempool.mbufs, 8191);
    assert_eq!(c.engine.burst, 32);
    assert_eq!(c.eal.hugepages, Hugepages::Auto);
    assert_eq!(c.ports[0].iface(), Some("veth0"));
    assert!(c.ports[0].is_vdev() && !c.ports[1].is_vdev());
}

/// (replace this, with this, expected key, expected value, reason fragment)
const BAD: &[(&str, &str, &str, &str, &str)] = &[
    (
        "worker_lcores = [1]",
        "worker_lcores = []",
        "eal.worker_lcores",
        "[]",
        "at least one",
    ),
    (
        "worker_lcores = [1]",
        "worker_lcores = [0]",
        "eal.worker_lcores[0]",
        "0",
        "main lcore",
    ),
    (
        "worker_lcores = [1]",
        "worker_lcores = [1, 1]",
        "eal.worker_lcores[1]",
        "1",
        "twice",
    ),
    (
        "worker_lcores = [1]",
        "worker_lcores = [500]",
        "eal.worker_lcores[0]",
        "500",
        "RTE_MAX_LCORE",
    ),
    (
        "worker_lcores = [1]",
        "worker_lcores = [1]\nmemory_mb = 10",
        "eal.memory_mb",
        "10",
        "at least 64",
    ),
    (
        "worker_lcores = [1]",
        "worker_lcores = [1]\nlog_level = \"loud\"",
        "eal.log_level",
        "loud",
        "one of",
    ),
    (
        "worker_lcores = [1]",
        "worker_lcores = [1]\niova_mode = \"xx\"",
        "eal.iova_mode",
        "xx",
        "\"va\"",
    ),
    (
        "worker_lcores = [1]",
        "worker_lcores = [1]\nfile_prefix = \"a b\"",
        "eal.file_prefix",
        "a b",
        "letters",
    ),
    (
        "worker_lcores = [1]",
        "worker_lcores = [1]\nlcore_map = \"0@0\"",
        "eal.lcore_map",
        "0@0",
        "does not map lcore 1",
    ),
    (
        "worker_lcores = [1]",
        "worker_lcores = [1]\nlcore_map = \"zz\"",
        "eal.lcore_map",
        "zz",
        "EAL --lcores syntax",
    ),
    (
        "worker_lcores = [1]",
        "worker_lcores = [1]\n[engine]\nburst = 0",
        "engine.burst",
        "0",
        "between 1 and 256",
    ),
    (
        "worker_lcores = [1]",
        "worker_lcores = [1]\n[engine]\ntx_drain_us = 0",
        "engine.tx_drain_us",
        "0",
        "between",
    ),
    (
        "worker_lcores = [1]",
        "worker_lcores = [1]\n[engine]\nidle_sleep_us = 50\nidle_spin_us = 2000000",
        "engine.idle_spin_us",
        "2000000",
        "between",
    ),
    (
        "worker_lcores = [1]",
        "worker_lcores = [1]\n[arp]\ntable_size = 1000",
        "arp.table_size",
        "1000",
        "power of two",
    ),
    (
        "worker_lcores = [1]",
        "worker_lcores = [1]\n[arp]\nmax_probes = 0",
        "arp.max_probes",
        "0",
        "between",
    ),
    (
        "worker_lcores = [1]",
        "worker_lcores = [1]\n[mempool]\nmbufs = 100",
        "mempool.mbufs",
        "100",
        "too few",
    ),
    (
        "worker_lcores = [1]",
        "worker_lcores = [1]\n[mempool]\ncache = 600",
        "mempool.cache",
        "600",
        "512",
    ),
    (
        "worker_lcores = [1]",
        "worker_lcores = [1]\n[mempool]\ndata_room = 1000",
        "mempool.data_room",
        "1000",
        "needs at least",
    ),
    (
        "name = \"client\"",
        "name = \"Client!\"",
        "ports[0].name",
        "Client!",
        "[a-z0-9_-]",
    ),
    (
        "name = \"backend\"",
        "name = \"client\"",
        "ports[1].name",
        "client",
        "another port",
    ),
    (
        "device = \"net_af_packet0,iface=veth0\"",
        "device = \"net_af_packet0\"",
        "ports[0].device",
        "net_af_packet0",
        "iface=",
    ),
    (
        "device = \"net_af_packet0,iface=veth0\"",
        "device = \"eth0\"",
        "ports[0].device",
        "eth0",
        "neither a vdev",
    ),
    (
        "device = \"net_af_packet0,iface=veth0\"",
        "device = \"net_null0,oops\"",
        "ports[0].device",
        "net_null0,oops",
        "key=value",
    ),
    (
        "device = \"0000:03:00.1\"",
        "device = \"0000:03:00.9\"",
        "ports[1].device",
        "0000:03:00.9",
        "PCI",
    ),
    (
        "device = \"0000:03:00.1\"",
        "device = \"net_af_packet0,iface=veth1\"",
        "ports[1].device",
        "net_af_packet0,iface=veth1",
        "used by another port",
    ),
    (
        "addresses = [\"10.10.1.1/24\"]",
        "addresses = []",
        "ports[0].addresses",
        "[]",
        "at least one",
    ),
    (
        "addresses = [\"10.10.1.1/24\"]",
        "addresses = [\"10.10.1.0/24\"]",
        "ports[0].addresses[0]",
        "10.10.1.0/24",
        "network address",
    ),
    (
        "addresses = [\"10.10.1.1/24\"]",
        "addresses = [\"10.10.1.255/24\"]",
        "ports[0].addresses[0]",
        "10.10.1.255/24",
        "broadcast address",
    ),
    (
        "addresses = [\"10.10.1.1/24\"]",
        "addresses = [\"224.0.0.1/24\"]",
        "ports[0].addresses[0]",
        "224.0.0.1/24",
        "unicast",
    ),
    (
        "addresses = [\"10.10.2.1/24\"]",
        "addresses = [\"10.10.1.1/24\"]",
        "ports[1].addresses[0]",
        "10.10.1.1/24",
        "already configured",
    ),
    (
        "addresses = [\"10.10.1.1/24\"]",
        "addresses = [\"2001:db8::1/64\", \"10.10.1.1/24\", \"ff02::1/64\"]",
        "ports[0].addresses[2]",
        "ff02::1/64",
        "unicast",
    ),
    (
        "addresses = [\"10.10.1.1/24\"]",
        "addresses = [\"10.10.1.1/24\", \"2001:db8::1/129\"]",
        "ports[0].addresses[1]",
        "2001:db8::1/129",
        "0..=128",
    ),
    (
        "addresses = [\"10.10.1.1/24\"]",
        "addresses = [\"10.10.1.1/24\", \"2001:db8::zz/64\"]",
        "ports[0].addresses[1]",
        "2001:db8::zz/64",
        "invalid IPv6 address",
    ),
    (
        "addresses = [\"10.10.2.1/24\"]",
        "addresses = [\"2001:db8::1/64\", \"10.10.2.1/24\", \"2001:db8::1/64\"]",
        "ports[1].addresses[2]",
        "2001:db8::1/64",
        "already configured",
    ),
    (
        "addresses = [\"10.10.2.1/24\"]",
        "addresses = [\"2001:db8::7/64\", \"10.10.2.0/24\"]",
        "ports[1].addresses[1]",
        "10.10.2.0/24",
        "network address",
    ),
    (
        "neighbors = [\"10.10.1.2\"]",
        "neighbors = [\"192.168.0.1\"]",
        "ports[0].neighbors[0]",
        "192.168.0.1",
        "not inside any subnet",
    ),
    (
        "neighbors = [\"10.10.1.2\"]",
        "neighbors = [\"10.10.1.1\"]",
        "ports[0].neighbors[0]",
        "10.10.1.1",
        "own addresses",
    ),
    (
        "neighbors = [\"10.10.1.2\"]",
        "gateway = \"10.99.0.1\"",
        "ports[0].gateway",
        "10.99.0.1",
        "inside a subnet",
    ),
    (
        "name = \"client\"",
        "name = \"client\"\nmtu = 20",
        "ports[0].mtu",
        "20",
        "between 68 and 9600",
    ),
    (
        "name = \"client\"",
        "name = \"client\"\nrx_desc = 1000",
        "ports[0].rx_desc",
        "1000",
        "power of two",
    ),
];

#[test]
fn each_rule_names_key_value_and_reason() {
    for (find, repl, key, value, reason) in BAD {
        let e = reject(&with(find, repl));
        assert_eq!(e.key, *key, "for {repl:?}: {e}");
        assert_eq!(e.value, *value, "for {repl:?}: {e}");
        assert!(
            e.reason.contains(reason),
            "for {repl:?}: reason {:?} lacks {reason:?}",
            e.reason
        );
        let shown = e.to_string();
        assert!(shown.contains(key) && shown.contains(value), "{shown}");
    }
}

#[test]
fn schema_errors_name_the_key() {
    // Unknown key at top level, in a table, and in an array-of-tables entry.
    let e = reject(&format!("bogus = 1\n{BASE}"));
    assert_eq!(e.key, "bogus");
    assert!(e.reason.contains("unknown key"), "{e}");
    let e = reject(&with(
        "worker_lcores = [1]",
        "worker_lcores = [1]\nlcores = 3",
    ));
    assert_eq!(e.key, "eal.lcores");
    // The value shown for an unknown key is the value given to it.
    assert_eq!(e.value, "3");
    assert!(e.reason.contains("expected one of"), "{e}");
    let e = reject(&with(
        "name = \"backend\"",
        "name = \"backend\"\nspeed = 10",
    ));
    assert_eq!(e.key, "ports[1].speed");
    assert_eq!(
        e.line,
        Some(
            BASE.lines()
                .position(|l| l.contains("name = \"backend\""))
                .unwrap()
                + 2
        ),
        "{e}"
    );
    // Wrong type.
    let e = reject(&with("main_lcore = 0", "main_lcore = \"zero\""));
    assert_eq!(e.key, "eal.main_lcore");
    assert!(e.reason.contains("invalid type"), "{e}");
    // Bad address syntax is reported at its index.
    let e = reject(&with(
        "addresses = [\"10.10.2.1/24\"]",
        "addresses = [\"10.10.2.1/24\", \"10.0.0.300/24\"]",
    ));
    assert_eq!(e.key, "ports[1].addresses[1]");
    assert!(e.reason.contains("10.0.0.300"), "{e}");
    // Bad enum value.
    let e = reject(&with(
        "worker_lcores = [1]",
        "worker_lcores = [1]\nhugepages = \"maybe\"",
    ));
    assert_eq!(e.key, "eal.hugepages");
    assert!(e.reason.contains("auto"), "{e}");
}

#[test]
fn syntax_error_has_line() {
    let text = "[eal]\nmain_lcore = 0\nworker_lcores = [1,\n";
    let e = reject(text);
    assert!(e.reason.contains("TOML syntax error"), "{e}");
    assert!(e.line.is_some(), "{e}");
}

#[test]
fn load_reports_the_file() {
    let p = std::env::temp_dir().join(format!("qsplice-cfg-{}.toml", std::process::id()));
    std::fs::write(
        &p,
        with("worker_lcores = [1]", "worker_lcores = [1]\nmemory_mb = 1"),
    )
    .unwrap();
    let e = qsplice_config::load(&p).unwrap_err();
    std::fs::remove_file(&p).unwrap();
    assert_eq!(e.file.as_deref(), Some(p.as_path()));
    assert!(
        e.to_string().starts_with(&format!("{}:", p.display())),
        "{e}"
    );
    let missing = qsplice_config::load(std::path::Path::new("/nonexistent/q.toml")).unwrap_err();
    assert!(missing.reason.contains("cannot read"), "{missing}");
}

#[test]
fn eal_args_follow_the_config() {
    let c = parse(BASE).unwrap();
    let a = c.eal_args(42, false);
    let s = a.join(" ");
    assert_eq!(a[0], "qsplice");
    assert!(s.contains("-l 0,1"), "{s}");
    assert!(s.contains("--main-lcore 0"), "{s}");
    assert!(s.contains("--file-prefix qsplice-42"), "{s}");
    assert!(
        s.contains("--no-huge") && !s.contains("--in-memory"),
        "auto without hugepages: {s}"
    );
    assert!(s.contains("--vdev net_af_packet0,iface=veth0"), "{s}");
    assert!(s.contains("-a 0000:03:00.1"), "{s}");
    assert!(!s.contains("--no-pci"), "a PCI port is configured: {s}");
    let h = c.eal_args(42, true).join(" ");
    assert!(h.contains("--in-memory") && !h.contains("--no-huge"), "{h}");

    let off = parse(&with("worker_lcores = [1]", "worker_lcores = [1]\nhugepages = \"off\"\nlcore_map = \"0@0,1@0\"\nextra_args = [\"--huge-worker-stack\"]")).unwrap();
    let o = off.eal_args(1, true).join(" ");
    assert!(
        o.contains("--no-huge"),
        "off wins over available hugepages: {o}"
    );
    assert!(o.contains("--lcores 0@0,1@0") && !o.contains(" -l "), "{o}");
    assert!(o.ends_with("--huge-worker-stack"), "{o}");

    let vdev_only = parse(&with("device = \"0000:03:00.1\"", "device = \"net_null0\"")).unwrap();
    assert!(vdev_only
        .eal_args(1, false)
        .contains(&"--no-pci".to_string()));
}

proptest! {
    #[test]
    fn parse_never_panics(s in ".{0,400}") {
        let _ = parse(&s);
    }

    #[test]
    fn parse_never_panics_on_mutated_config(pos in 0usize..BASE.len(), byte in any::<u8>()) {
        let mut b = BASE.as_bytes().to_vec();
        b[pos] = byte;
        if let Ok(s) = String::from_utf8(b) {
            let _ = parse(&s);
        }
    }
}

const DHCP: &str = r#"
[eal]
main_lcore = 0
worker_lcores = [1]

[[ports]]
name = "dhcp"
device = "net_af_packet0,iface=veth0"
addresses = ["10.30.0.1/16"]
promiscuous = true

[dhcp_server]
port = "dhcp"

[[dhcp_server.pools]]
subnet = "10.30.0.0/16"
range_start = "10.30.1.0"
range_end = "10.30.9.255"

[dhcp_server.faults]
drop_rate = 0.0

[dhcp_tester]
port = "dhcp"
clients = 100

[dhcp_tester.relay]
giaddr = "10.31.0.1"
server_ip = "10.30.0.1"
server_mac = "02:00:00:00:00:01"
"#;

#[test]
fn dhcp_sections_parse_with_defaults() {
    let c = parse(DHCP).unwrap_or_else(|e| panic!("{e}"));
    let s = c.dhcp_server.unwrap();
    assert_eq!(s.offer_timeout_ms, 30_000);
    assert_eq!(s.faults.max_delayed, 4096);
    assert_eq!(s.pools[0].lease_time_s, 3600);
    let t = c.dhcp_tester.unwrap();
    assert_eq!((t.clients, t.concurrency, t.burst), (100, 0, 16));
    assert_eq!(t.retransmit.initial_ms, 4000);
    assert_eq!(t.relay.unwrap().max_hops, 16);
    assert_eq!(
        qsplice_config::parse_mac("02:0a:00:00:00:ff"),
        Some([2, 10, 0, 0, 0, 255])
    );
    assert_eq!(qsplice_config::parse_mac("02:0a:00:00:00"), None);
}

#[test]
fn dhcp_rules_name_key_value_and_reason() {
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "port = \"dhcp\"\n\n[[dhcp_server",
            "port = \"nope\"\n\n[[dhcp_server",
            "dhcp_server.port",
            "nope",
            "no [[ports]]",
        ),
        (
            "range_end = \"10.30.9.255\"",
            "range_end = \"10.30.0.255\"\nlease_time_s = 5",
            "dhcp_server.pools[0].range_end",
            "10.30.0.255",
            "before range_start",
        ),
        (
            "range_start = \"10.30.1.0\"",
            "range_start = \"10.40.1.0\"",
            "dhcp_server.pools[0].range_start",
            "10.40.1.0",
            "host address",
        ),
        (
            "drop_rate = 0.0",
            "drop_rate = 1.5",
            "dhcp_server.faults.drop_rate",
            "1.5",
            "probability",
        ),
        (
            "drop_rate = 0.0",
            "delay_ms = 5\ndelay_max_ms = 9",
            "dhcp_server.faults.delay_max_ms",
            "9",
            "exclude",
        ),
        (
            "drop_rate = 0.0",
            "delay_min_ms = 10\ndelay_max_ms = 9",
            "dhcp_server.faults.delay_min_ms",
            "10",
            "above delay_max_ms",
        ),
        (
            "clients = 100",
            "clients = 0",
            "dhcp_tester.clients",
            "0",
            "1..=",
        ),
        (
            "clients = 100",
            "clients = 100\nconcurrency = 101",
            "dhcp_tester.concurrency",
            "101",
            "0..=100",
        ),
        (
            "clients = 100",
            "clients = 100\nbase_mac = \"01:00:00:00:00:00\"",
            "dhcp_tester.base_mac",
            "01:00:00:00:00:00",
            "unicast",
        ),
        (
            "clients = 100",
            "clients = 100\nbase_mac = \"zz\"",
            "dhcp_tester.base_mac",
            "zz",
            "not a MAC",
        ),
        (
            "clients = 100",
            "clients = 100\nvlan = 4095",
            "dhcp_tester.vlan",
            "4095",
            "0..=4094",
        ),
        (
            "server_mac = \"02:00:00:00:00:01\"",
            "server_mac = \"02:00:00:00:00:01\"\nhops = 16",
            "dhcp_tester.relay.hops",
            "16",
            "below max_hops",
        ),
        (
            "giaddr = \"10.31.0.1\"",
            "giaddr = \"\"",
            "dhcp_tester.relay.giaddr",
            "",
            "required",
        ),
        (
            "promiscuous = true",
            "promiscuous = false",
            "ports[0].promiscuous",
            "false",
            "promiscuous",
        ),
    ];
    for (find, repl, key, value, reason) in cases {
        assert!(DHCP.contains(find), "fixture lacks {find:?}");
        let e = reject(&DHCP.replacen(find, repl, 1));
        assert_eq!(e.key, *key, "for {repl:?}: {e}");
        assert_eq!(e.value, *value, "for {repl:?}: {e}");
        assert!(e.reason.contains(reason), "for {repl:?}: {e}");
    }
    let two = DHCP
        .replace("worker_lcores = [1]", "worker_lcores = [1, 2]")
        .replace("iface=veth0", "iface=veth0,qpairs=2");
    let e = reject(&two);
    assert_eq!(
        (e.key.as_str(), e.value.as_str()),
        ("eal.worker_lcores", "[1, 2]"),
        "{e}"
    );
    assert!(e.reason.contains("exactly one worker"), "{e}");
    let e = reject(&DHCP.replace("[dhcp_server.faults]", "[dhcp_server.faults]\nbogus = 1"));
    assert!(e.to_string().contains("bogus"), "{e}");
    let e = reject(&DHCP.replace("clients = 100", "clients = 100\nclinets = 5"));
    assert!(e.to_string().contains("clinets"), "{e}");
}

const PKTGEN: &str = r#"
[eal]
main_lcore = 0
worker_lcores = [1]

[[ports]]
name = "a"
device = "net_af_packet0,iface=pg-a"
addresses = ["198.18.255.254/16"]

[[ports]]
name = "b"
device = "net_af_packet1,iface=pg-b"
addresses = ["198.19.255.254/16"]
promiscuous = true

[pktgen]
tx_port = "a"
rx_port = "b"
rate_pps = 10000
count = 1000

[[pktgen.streams]]
proto = "udp"
src_ip = "10.0.0.1-10.0.0.10"
dst_port = "9-19"

[[pktgen.streams]]
proto = "tcp-syn"
fields = "random"
vlan = 5
"#;

#[test]
fn pktgen_section_parses_with_defaults() {
    let c = parse(PKTGEN).unwrap_or_else(|e| panic!("{e}"));
    let g = c.pktgen.unwrap();
    assert_eq!(
        (g.burst, g.drain_ms, g.size, g.receive),
        (32, 200, 64, true)
    );
    assert_eq!(g.size_mode, qsplice_config::PktgenSizeMode::Fixed);
    assert_eq!(g.imix, vec![[64, 7], [594, 4], [1518, 1]]);
    assert_eq!(g.streams.len(), 2);
    assert_eq!(g.streams[1].proto, qsplice_config::PktgenProto::TcpSyn);
    assert_eq!(g.streams[1].fields, qsplice_config::PktgenFields::Random);
    assert_eq!(g.streams[1].dst_ip, "198.19.0.1");
    assert_eq!(
        qsplice_config::parse_ip_range("10.0.0.1-10.0.0.10"),
        Some(("10.0.0.1".parse().unwrap(), "10.0.0.10".parse().unwrap()))
    );
    assert_eq!(qsplice_config::parse_ip_range("10.0.0.9-10.0.0.1"), None);
    assert_eq!(qsplice_config::parse_port_range("9-19"), Some((9, 19)));
    assert_eq!(qsplice_config::parse_port_range("70000"), None);
}

#[test]
fn pktgen_rules_name_key_value_and_reason() {
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "tx_port = \"a\"",
            "tx_port = \"z\"",
            "pktgen.tx_port",
            "z",
            "no [[ports]]",
        ),
        (
            "rx_port = \"b\"",
            "rx_port = \"y\"",
            "pktgen.rx_port",
            "y",
            "no [[ports]]",
        ),
        (
            "rate_pps = 10000",
            "rate_pps = 10000\nrate_bps = 5",
            "pktgen.rate_bps",
            "5",
            "not both",
        ),
        (
            "count = 1000",
            "count = 1000\nburst = 0",
            "pktgen.burst",
            "0",
            "between 1 and 256",
        ),
        (
            "count = 1000",
            "count = 1000\nsize = 63",
            "pktgen.size",
            "63",
            "between 64",
        ),
        (
            "count = 1000",
            "count = 1000\nsize = 3000",
            "pktgen.size",
            "3000",
            "and 2052",
        ),
        (
            "count = 1000",
            "count = 1000\nsize_mode = \"range\"\nsize_min = 600\nsize_max = 500",
            "pktgen.size_min",
            "600",
            "above size_max",
        ),
        (
            "count = 1000",
            "count = 1000\nsize_mode = \"imix\"\nimix = [[64, 0]]",
            "pktgen.imix[0][1]",
            "0",
            "between 1",
        ),
        (
            "src_ip = \"10.0.0.1-10.0.0.10\"",
            "src_ip = \"10.0.0.10-10.0.0.1\"",
            "pktgen.streams[0].src_ip",
            "10.0.0.10-10.0.0.1",
            "range",
        ),
        (
            "dst_port = \"9-19\"",
            "dst_port = \"x\"",
            "pktgen.streams[0].dst_port",
            "x",
            "port",
        ),
        (
            "vlan = 5",
            "vlan = 4095",
            "pktgen.streams[1].vlan",
            "4095",
            "between 0 and 4094",
        ),
        (
            "vlan = 5",
            "vlan = 5\ndst_mac = \"nope\"",
            "pktgen.streams[1].dst_mac",
            "nope",
            "not a MAC",
        ),
    ];
    for (find, repl, key, value, reason) in cases {
        assert!(PKTGEN.contains(find), "fixture lacks {find:?}");
        let e = reject(&PKTGEN.replacen(find, repl, 1));
        assert_eq!(e.key, *key, "for {repl:?}: {e}");
        assert_eq!(e.value, *value, "for {repl:?}: {e}");
        assert!(e.reason.contains(reason), "for {repl:?}: {e}");
    }
    let e = reject(&PKTGEN.replace("vlan = 5", "vlan = 5\nbogus = 1"));
    assert!(e.to_string().contains("bogus"), "{e}");
    let two = PKTGEN
        .replace("worker_lcores = [1]", "worker_lcores = [1, 2]")
        .replace("iface=pg-a", "iface=pg-a,qpairs=2")
        .replace("iface=pg-b", "iface=pg-b,qpairs=2")
        .replace("[pktgen]", "[mempool]\nmbufs = 32767\n\n[pktgen]");
    let e = reject(&two);
    assert_eq!(e.key, "eal.worker_lcores", "{e}");
    assert!(e.reason.contains("exactly one worker"), "{e}");
    let no_streams = PKTGEN.split("[[pktgen.streams]]").next().unwrap();
    let e = reject(no_streams);
    assert_eq!(e.key, "pktgen.streams", "{e}");
}

#[test]
fn tcp_congestion_is_one_of_three() {
    let lb = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conf/lb.toml"),
    )
    .unwrap();
    assert!(lb.contains("\n[lb]\n"));
    let cfg = |v: &str| lb.replacen("\n[lb]\n", &format!("\n[lb]\ntcp_congestion = {v}\n"), 1);
    assert_eq!(
        parse(&lb).unwrap().lb.unwrap().tcp_congestion,
        qsplice_config::TcpCongestion::Cubic
    );
    for (v, want) in [
        ("\"cubic\"", qsplice_config::TcpCongestion::Cubic),
        ("\"newreno\"", qsplice_config::TcpCongestion::Newreno),
        ("\"bbr\"", qsplice_config::TcpCongestion::Bbr),
    ] {
        assert_eq!(
            parse(&cfg(v)).unwrap().lb.unwrap().tcp_congestion,
            want,
            "{v}"
        );
    }
    let e = reject(&cfg("\"vegas\""));
    assert_eq!(e.key, "lb.tcp_congestion");
    assert!(e.reason.contains("bbr"), "{e}");
}

#[test]
fn management_listen_is_a_kernel_address_never_a_data_port_address() {
    let lb = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conf/lb.toml"),
    )
    .unwrap();
    let m = parse(&lb).unwrap().management;
    assert_eq!(
        m.parse_listen().unwrap(),
        qsplice_config::ManagementListen::Tcp("127.0.0.1:9180".parse().unwrap())
    );
    let cfg = |body: &str| format!("{lb}\n[management]\n{body}\n");
    for (v, want) in [
        ("\"off\"", qsplice_config::ManagementListen::Off),
        (
            "\"unix:/run/qsplice.sock\"",
            qsplice_config::ManagementListen::Unix("/run/qsplice.sock".into()),
        ),
        (
            "\"[::1]:9180\"",
            qsplice_config::ManagementListen::Tcp("[::1]:9180".parse().unwrap()),
        ),
    ] {
        let c = parse(&cfg(&format!("listen = {v}"))).unwrap();
        assert_eq!(c.management.parse_listen().unwrap(), want, "{v}");
    }
    for bad in ["\"localhost\"", "\"unix:relative.sock\"", "\"9180\""] {
        let e = reject(&cfg(&format!("listen = {bad}")));
        assert_eq!(e.key, "management.listen", "{bad}: {e}");
    }
    // conf/lb.toml's client port owns 10.10.1.1.
    let e = reject(&cfg("listen = \"10.10.1.1:9180\""));
    assert_eq!(e.key, "management.listen");
    assert!(e.reason.contains("data port"), "{e}");
    let e = reject(&cfg("tokens = \"x\""));
    assert!(e.to_string().contains("tokens"), "{e}");
}

/// AF_XDP ports: the interface is required, queue counts are checked
/// against the worker lcores like af_packet's queue pairs.
#[test]
fn af_xdp_ports() {
    let xdp = with(
        "net_af_packet0,iface=veth0",
        "net_af_xdp0,iface=veth0,start_queue=0,busy_budget=0",
    );
    parse(&xdp).unwrap_or_else(|e| panic!("{e}"));
    let e = reject(&with(
        "net_af_packet0,iface=veth0",
        "net_af_xdp0,start_queue=0",
    ));
    assert_eq!(e.key, "ports[0].device", "{e}");
    assert!(e.reason.contains("iface"), "{e}");
    let e = reject(&with(
        "net_af_packet0,iface=veth0",
        "net_af_xdp0,iface=veth0,queue_count=x",
    ));
    assert!(e.reason.contains("queue_count"), "{e}");
    let e = reject(&with(
        "net_af_packet0,iface=veth0",
        "net_af_xdp0,iface=veth0,start_queue=-1",
    ));
    assert!(e.reason.contains("start_queue"), "{e}");
    let two = xdp.replace("worker_lcores = [1]", "worker_lcores = [1, 2]");
    let e = reject(&two);
    assert!(e.reason.contains("queue_count=2"), "{e}");
    parse(&format!(
        "{}\n[mempool]\nmbufs = 16383\n",
        two.replace("busy_budget=0", "busy_budget=0,queue_count=2")
    ))
    .unwrap_or_else(|e| panic!("{e}"));
}

const LB_MIN: &str = r#"
[lb]
client_port = "client"
backend_port = "backend"
[[lb.vips]]
name = "web"
address = "10.10.1.1:80"
policy = "maglev-flow"
backends = [{ address = "10.10.2.11:80" }]
"#;

#[test]
fn kernel_iface_and_bgp_rules_name_key_value_and_reason() {
    let k = |v: &str| {
        with(
            "neighbors = [\"10.10.1.2\"]",
            &format!("neighbors = [\"10.10.1.2\"]\nkernel_iface = \"{v}\""),
        )
    };
    let ok = parse(&format!("{}{LB_MIN}", k("qs-up"))).unwrap();
    assert_eq!(ok.ports[0].kernel_iface.as_deref(), Some("qs-up"));
    let s = ok.eal_args(1, false).join(" ");
    assert!(s.contains("--vdev net_tap_qsk0,iface=qs-up"), "{s}");
    let cases: Vec<(String, &str, &str, &str)> = vec![
        (
            k("this-name-is-too-long"),
            "ports[0].kernel_iface",
            "this-name-is-too-long",
            "interface name",
        ),
        (
            k("bad/name"),
            "ports[0].kernel_iface",
            "bad/name",
            "interface name",
        ),
        (k(""), "ports[0].kernel_iface", "", "interface name"),
        (k("veth0"), "ports[0].kernel_iface", "veth0", "iface="),
        (
            with(
                "addresses = [\"10.10.2.1/24\"]",
                "addresses = [\"10.10.2.1/24\"]\nkernel_iface = \"k0\"",
            )
            .replacen(
                "neighbors = [\"10.10.1.2\"]",
                "neighbors = [\"10.10.1.2\"]\nkernel_iface = \"k0\"",
                1,
            ),
            "ports[1].kernel_iface",
            "k0",
            "another port",
        ),
        (
            with(
                "worker_lcores = [1]",
                "worker_lcores = [1]\n[engine]\nkernel_poll_us = 5",
            ),
            "engine.kernel_poll_us",
            "5",
            "between",
        ),
        (
            format!("{}\n[bgp]\nroutes_file = \"/run/v.conf\"\n", k("k0")),
            "bgp",
            "[bgp]",
            "[lb]",
        ),
        (
            format!("{BASE}{LB_MIN}\n[bgp]\nroutes_file = \"/run/v.conf\"\n"),
            "bgp",
            "[bgp]",
            "kernel_iface",
        ),
        (
            format!("{}{LB_MIN}\n[bgp]\n", k("k0")),
            "bgp.routes_file",
            "\"\"",
            "required",
        ),
        (
            format!("{}{LB_MIN}\n[bgp]\nroutes_file = \"v.conf\"\n", k("k0")),
            "bgp.routes_file",
            "v.conf",
            "absolute",
        ),
        (
            format!(
                "{}{LB_MIN}\n[bgp]\nroutes_file = \"/v\"\nspeaker = \"frr\"\n",
                k("k0")
            ),
            "bgp.speaker",
            "frr",
            "bird",
        ),
        (
            format!(
                "{}{LB_MIN}\n[bgp]\nroutes_file = \"/v\"\nprotocol = \"9vips\"\n",
                k("k0")
            ),
            "bgp.protocol",
            "9vips",
            "BIRD symbol",
        ),
        (
            format!(
                "{}{LB_MIN}\n[bgp]\nroutes_file = \"/v\"\nwithdraw_delay_ms = 70000\n",
                k("k0")
            ),
            "bgp.withdraw_delay_ms",
            "70000",
            "between",
        ),
    ];
    for (text, key, value, why) in cases {
        let e = reject(&text).to_string();
        assert!(
            e.contains(&format!("`{key}`")) && e.contains(value) && e.contains(why),
            "{key}: {e}"
        );
    }
    let e = reject(&format!(
        "{}{LB_MIN}\n[bgp]\nroutes_file = \"/v\"\nholdtime = 3\n",
        k("k0")
    ))
    .to_string();
    assert!(e.contains("holdtime"), "unknown [bgp] key: {e}");
    let b = parse(&format!(
        "{}{LB_MIN}\n[bgp]\nroutes_file = \"/v\"\n",
        k("k0")
    ))
    .unwrap();
    let g = b.bgp.unwrap();
    assert_eq!(
        (
            g.speaker.as_str(),
            g.control_socket.as_str(),
            g.protocol.as_str()
        ),
        ("bird", "/run/bird/bird.ctl", "qsplice_vips")
    );
    assert_eq!((g.stall_ms, g.withdraw_delay_ms), (1000, 1000));
}

#[test]
fn cluster_rules_name_key_value_and_reason() {
    for good in [
        "redis+sentinel://10.0.0.5:26379,10.0.0.6:26379/qsplice",
        "redis+unix:///run/redis.sock",
        "redis+cluster://10.0.0.5:7000,10.0.0.6:7000",
    ] {
        parse(&format!("{BASE}{LB_MIN}\n[cluster]\nredis = \"{good}\"\n")).unwrap();
    }
    let e = reject(&format!(
        "{BASE}{LB_MIN}\n[cluster]\nredis = \"redis+sentinel://h/m\"\n"
    ))
    .to_string();
    assert!(e.contains("cluster.redis") && e.contains("sentinel"), "{e}");
    let e = reject(&format!(
        "{BASE}{LB_MIN}\n[cluster]\nredis = \"redis+cluster://h\"\n"
    ))
    .to_string();
    assert!(
        e.contains("cluster.redis") && e.contains("redis+cluster://"),
        "{e}"
    );
    let ok = parse(&format!(
        "{BASE}{LB_MIN}\n[cluster]\nredis = \"redis://10.0.0.5:6379/0\"\n"
    ))
    .unwrap();
    let c = ok.cluster.unwrap();
    assert_eq!(
        (
            c.name.as_str(),
            c.node.as_str(),
            c.sync_interval_ms,
            c.timeout_ms
        ),
        ("qsplice", "", 500, 500)
    );
    assert_eq!(
        (c.flow_sync, c.flow_ttl_s, c.flow_queue),
        (true, 120, 16_384)
    );
    let cases: Vec<(String, &str, &str, &str)> = vec![
        (
            format!("{BASE}\n[cluster]\nredis = \"redis://r:6379\"\n"),
            "cluster",
            "[cluster]",
            "[lb]",
        ),
        (
            format!("{BASE}{LB_MIN}\n[cluster]\n"),
            "cluster.redis",
            "\"\"",
            "required",
        ),
        (
            format!("{BASE}{LB_MIN}\n[cluster]\nredis = \"http://r\"\n"),
            "cluster.redis",
            "http://r",
            "redis://",
        ),
        (
            format!("{BASE}{LB_MIN}\n[cluster]\nredis = \"redis://r\"\nname = \"a b\"\n"),
            "cluster.name",
            "a b",
            "1-64",
        ),
        (
            format!("{BASE}{LB_MIN}\n[cluster]\nredis = \"redis://r\"\nnode = \"n/1\"\n"),
            "cluster.node",
            "n/1",
            "1-64",
        ),
        (
            format!("{BASE}{LB_MIN}\n[cluster]\nredis = \"redis://r\"\nsync_interval_ms = 1\n"),
            "cluster.sync_interval_ms",
            "1",
            "between",
        ),
        (
            format!("{BASE}{LB_MIN}\n[cluster]\nredis = \"redis://r\"\ntimeout_ms = 0\n"),
            "cluster.timeout_ms",
            "0",
            "between",
        ),
        (
            format!("{BASE}{LB_MIN}\n[cluster]\nredis = \"redis://r\"\nflow_ttl_s = 5\n"),
            "cluster.flow_ttl_s",
            "5",
            "between",
        ),
        (
            format!("{BASE}{LB_MIN}\n[cluster]\nredis = \"redis://r\"\nflow_queue = 10\n"),
            "cluster.flow_queue",
            "10",
            "between",
        ),
    ];
    for (text, key, value, why) in cases {
        let e = reject(&text).to_string();
        assert!(
            e.contains(&format!("`{key}`")) && e.contains(value) && e.contains(why),
            "{key}: {e}"
        );
    }
    let e = reject(&format!(
        "{BASE}{LB_MIN}\n[cluster]\nredis = \"redis://r\"\nsentinel = 1\n"
    ))
    .to_string();
    assert!(e.contains("sentinel"), "{e}");
}

#[test]
fn ports_take_ipv6_addresses_beside_ipv4_ones() {
    let c = parse(&with(
        "addresses = [\"10.10.1.1/24\"]",
        "addresses = [\"2001:db8:1::1/64\", \"10.10.1.1/24\", \"fe80::1/64\"]",
    ))
    .unwrap();
    let a = &c.ports[0].addresses;
    assert_eq!(a.len(), 1, "dereferences to the IPv4 addresses");
    assert_eq!(
        a[0].addr,
        "10.10.1.1".parse::<std::net::Ipv4Addr>().unwrap()
    );
    let v6: Vec<String> = a.v6().iter().map(|c| c.to_string()).collect();
    assert_eq!(v6, ["2001:db8:1::1/64", "fe80::1/64"]);
    assert_eq!((a.pos4(0), a.pos6(0), a.pos6(1)), (1, 0, 2));
}

#[test]
fn ipv6_neighbors_and_gateway6_are_checked_against_the_port_links() {
    let v6 = |neigh: &str, gw: &str| {
        with(
            "addresses = [\"10.10.1.1/24\"]\nneighbors = [\"10.10.1.2\"]",
            &format!(
                "addresses = [\"10.10.1.1/24\", \"2001:db8:1::1/64\"]\nneighbors = [{neigh}]\ngateway6 = \"{gw}\""
            ),
        )
    };
    let c = parse(&v6(
        "\"10.10.1.2\", \"2001:db8:1::2\", \"fe80::9\"",
        "fe80::1",
    ))
    .unwrap();
    let p = &c.ports[0];
    assert_eq!(p.neighbors.len(), 1, "dereferences to the IPv4 neighbours");
    assert_eq!(p.neighbors.v6().len(), 2);
    assert_eq!(p.gateway6, Some("fe80::1".parse().unwrap()));
    for (text, key, value, why) in [
        (
            v6("\"10.10.1.2\", \"2001:db8:2::2\"", ""),
            "ports[0].neighbors[1]",
            "2001:db8:2::2",
            "not on a link",
        ),
        (
            v6("\"2001:db8:1::1\", \"10.10.1.2\"", ""),
            "ports[0].neighbors[0]",
            "2001:db8:1::1",
            "own addresses",
        ),
        (
            v6("\"10.10.1.2\"", "2001:db8:9::1"),
            "ports[0].gateway6",
            "2001:db8:9::1",
            "on a link",
        ),
        (
            v6("\"10.10.1.2\"", "nope"),
            "ports[0].gateway6",
            "nope",
            "invalid IPv6 address",
        ),
    ] {
        let e = reject(&text).to_string();
        assert!(
            e.contains(&format!("`{key}`")) && e.contains(value) && e.contains(why),
            "{key}: {e}"
        );
    }
}

#[test]
fn ipv6_vips_and_backends_are_checked_with_key_value_and_reason() {
    let dual = with(
        "addresses = [\"10.10.1.1/24\"]",
        "addresses = [\"10.10.1.1/24\", \"2001:db8:1::1/64\"]",
    );
    let dual = dual.replacen(
        "addresses = [\"10.10.2.1/24\"]",
        "addresses = [\"10.10.2.1/24\", \"2001:db8:2::1/64\"]",
        1,
    );
    let lb = |vip: &str, backend: &str, extra: &str| {
        format!(
            "\n[lb]\nclient_port = \"client\"\nbackend_port = \"backend\"\n{extra}\n[[lb.vips]]\nname = \"v\"\naddress = \"{vip}\"\nbackends = [{{ address = \"{backend}\" }}]\n"
        )
    };
    // Every combination of families is accepted.
    for (vip, be) in [
        ("[2001:db8:1::1]:80", "[2001:db8:2::11]:80"),
        ("[2001:db8:1::1]:80", "10.10.2.11:80"),
        ("10.10.1.1:80", "[2001:db8:2::11]:80"),
        ("10.10.1.1:80", "[fe80::11]:80"),
    ] {
        let c = parse(&format!("{dual}{}", lb(vip, be, "")))
            .unwrap_or_else(|e| panic!("{vip} {be}: {e}"));
        assert_eq!(c.lb.unwrap().vips[0].address.to_string(), vip);
    }
    let ok = parse(&format!(
        "{dual}{}",
        lb(
            "[2001:db8:1::1]:80",
            "[2001:db8:2::11]:80",
            "local6 = \"2001:db8:2::1\""
        )
    ))
    .unwrap();
    assert_eq!(
        ok.lb.unwrap().local6,
        Some("2001:db8:2::1".parse().unwrap())
    );
    let cases: Vec<(String, &str, &str, &str)> = vec![
        (
            format!(
                "{dual}{}",
                lb("[2001:db8:1::9]:80", "[2001:db8:2::11]:80", "")
            ),
            "lb.vips[0].address",
            "[2001:db8:1::9]:80",
            "not one of the client port",
        ),
        (
            format!("{BASE}{}", lb("10.10.1.1:80", "[2001:db8:2::11]:80", "")),
            "lb.vips[0].backends[0].address",
            "[2001:db8:2::11]:80",
            "IPv6 source address",
        ),
        (
            format!("{dual}{}", lb("10.10.1.1:80", "[2001:db8:3::11]:80", "")),
            "lb.vips[0].backends[0].address",
            "[2001:db8:3::11]:80",
            "gateway6",
        ),
        (
            format!("{dual}{}", lb("10.10.1.1:80", "[2001:db8:2::1]:80", "")),
            "lb.vips[0].backends[0].address",
            "[2001:db8:2::1]:80",
            "own addresses",
        ),
        (
            format!(
                "{dual}{}",
                lb(
                    "10.10.1.1:80",
                    "[2001:db8:2::11]:80",
                    "local6 = \"2001:db8:2::7\""
                )
            ),
            "lb.local6",
            "2001:db8:2::7",
            "not an IPv6 address of the backend port",
        ),
    ];
    for (text, key, value, why) in cases {
        let e = reject(&text).to_string();
        assert!(
            e.contains(&format!("`{key}`")) && e.contains(value) && e.contains(why),
            "{key}: {e}"
        );
    }
    let e = reject(&format!(
        "{dual}{}",
        lb("10.10.1.1:80", "10.10.2.11:80", "local6 = \"nope\"")
    ))
    .to_string();
    assert!(e.contains("local6") && e.contains("nope"), "{e}");
}

#[test]
fn dhcp_server_v6_parses_alone_or_beside_v4_and_its_rules_name_key_value_and_reason() {
    const V6: &str = r#"
[dhcp_server.v6]
range_start = "2001:db8:30::1000"
range_end = "2001:db8:30::ffff"
pd_pool = "2001:db8:4000::/40"
pd_length = 56
"#;
    let dual = format!("{DHCP}{V6}");
    let c = parse(&dual).unwrap_or_else(|e| panic!("{e}"));
    let v = c.dhcp_server.unwrap().v6.unwrap();
    assert_eq!(v.range_len(), 0xf000);
    assert_eq!(v.t1_t2(), (1800, 2880));
    assert!(v.rapid_commit);
    // DHCPv6 alone: no pools.
    let alone = dual
        .replace("[[dhcp_server.pools]]\nsubnet = \"10.30.0.0/16\"\nrange_start = \"10.30.1.0\"\nrange_end = \"10.30.9.255\"\n", "")
        .replace("addresses = [\"10.30.0.1/16\"]", "addresses = [\"10.30.0.1/16\", \"2001:db8:30::1/64\"]");
    let c = parse(&alone).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.dhcp_server.unwrap().pools.is_empty());
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "range_end = \"2001:db8:30::ffff\"",
            "range_end = \"2001:db8:30::fff\"",
            "dhcp_server.v6.range_end",
            "2001:db8:30::fff",
            "before range_start",
        ),
        (
            "range_end = \"2001:db8:30::ffff\"",
            "range_end = \"2001:db8:31::ffff\"",
            "dhcp_server.v6.range_end",
            "2001:db8:31::ffff",
            "at most 4194304",
        ),
        (
            "range_start = \"2001:db8:30::1000\"",
            "range_start = \"ff02::1:2\"",
            "dhcp_server.v6.range_start",
            "ff02::1:2",
            "unicast",
        ),
        (
            "pd_length = 56",
            "pd_length = 36",
            "dhcp_server.v6.pd_length",
            "36",
            "prefix length /40",
        ),
        (
            "pd_length = 56",
            "pd_length = 64",
            "dhcp_server.v6.pd_length",
            "64",
            "more than 2^22",
        ),
        (
            "pd_length = 56",
            "pd_length = 56\npreferred_lifetime_s = 9000",
            "dhcp_server.v6.preferred_lifetime_s",
            "9000",
            "valid_lifetime_s",
        ),
        (
            "pd_length = 56",
            "pd_length = 56\nt1_s = 3000\nt2_s = 2000",
            "dhcp_server.v6.t1_s",
            "3000",
            "t1_s ≤ t2_s",
        ),
        (
            "pd_length = 56",
            "pd_length = 56\nduid = \"zz\"",
            "dhcp_server.v6.duid",
            "zz",
            "hex",
        ),
    ];
    for (find, repl, key, value, why) in cases {
        let e = reject(&dual.replace(find, repl));
        assert_eq!((e.key.as_str(), e.value.as_str()), (*key, *value), "{e}");
        assert!(e.reason.contains(why), "{e}");
    }
    let e = reject(&dual.replace("pd_length = 56", "pd_length = 56\nrange = 1"));
    assert!(e.to_string().contains("range"), "{e}");
    let e = reject(
        &dual
            .replace("range_start = \"2001:db8:30::1000\"\n", "")
            .replace("range_end = \"2001:db8:30::ffff\"\n", "")
            .replace("pd_pool = \"2001:db8:4000::/40\"\n", ""),
    );
    assert_eq!(e.key, "dhcp_server.v6.range_start", "{e}");
}

#[test]
fn dhcp_tester_v6_parses_and_its_rules_name_key_value_and_reason() {
    let v6 = DHCP.replace(
        "[dhcp_tester.relay]\ngiaddr = \"10.31.0.1\"\nserver_ip = \"10.30.0.1\"\nserver_mac = \"02:00:00:00:00:01\"\n",
        "[dhcp_tester.v6]\nia_pd = true\n\n[dhcp_tester.v6.relay]\nlink_address = \"2001:db8:31::1\"\n",
    );
    let c = parse(&v6).unwrap_or_else(|e| panic!("{e}"));
    let t = c.dhcp_tester.unwrap().v6.unwrap();
    assert!(t.ia_na && t.ia_pd && !t.rapid_commit);
    assert_eq!(t.retransmit.solicit_irt_ms, 1000);
    assert_eq!(
        (t.extend, t.rebind, t.retransmit.rebind_irt_ms),
        (qsplice_config::Extend6Conf::Renew, true, 10_000)
    );
    let rb = parse(&v6.replace(
        "ia_pd = true",
        "ia_pd = true\nextend = \"rebind\"\nrebind = false",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let rb = rb.dhcp_tester.unwrap().v6.unwrap();
    assert_eq!(
        (rb.extend, rb.rebind),
        (qsplice_config::Extend6Conf::Rebind, false)
    );
    let r = t.relay.unwrap();
    assert_eq!(
        r.server_ip,
        "ff02::1:2".parse::<std::net::Ipv6Addr>().unwrap()
    );
    assert_eq!(r.interface_id, "port-{index}");
    let e = reject(&DHCP.replace("clients = 100", "clients = 100\n[dhcp_tester.v6]"));
    assert_eq!(e.key, "dhcp_tester.relay", "{e}");
    assert!(e.reason.contains("[dhcp_tester.v6.relay]"), "{e}");
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "ia_pd = true",
            "ia_na = false",
            "dhcp_tester.v6.ia_na",
            "false",
            "ia_pd",
        ),
        (
            "ia_pd = true",
            "[dhcp_tester.v6.retransmit]\nrequest_irt_ms = 5000\nrequest_mrt_ms = 1000",
            "dhcp_tester.v6.retransmit.request_mrt_ms",
            "1000",
            "5000..=",
        ),
        (
            "link_address = \"2001:db8:31::1\"",
            "link_address = \"2001:db8:31::1\"\nserver_ip = \"2001:db8:30::1\"",
            "dhcp_tester.v6.relay.server_mac",
            "",
            "required",
        ),
        (
            "link_address = \"2001:db8:31::1\"",
            "address = \"ff02::2\"",
            "dhcp_tester.v6.relay.link_address",
            "",
            "required",
        ),
        (
            "ia_pd = true",
            "[dhcp_tester.v6.retransmit]\nrebind_irt_ms = 0",
            "dhcp_tester.v6.retransmit.rebind_irt_ms",
            "0",
            "1..=",
        ),
        (
            "ia_pd = true",
            "[dhcp_tester.v6.retransmit]\nrebind_max_rc = 256",
            "dhcp_tester.v6.retransmit.rebind_max_rc",
            "256",
            "1..=255",
        ),
        (
            "ia_pd = true",
            "ia_pd = true\nextend = \"confirm\"",
            "dhcp_tester.v6.extend",
            "confirm",
            "rebind",
        ),
    ];
    for (find, repl, key, value, why) in cases {
        let text = v6.replace(find, repl);
        // The retransmit table goes before the relay table.
        let text = if repl.starts_with("[dhcp_tester.v6.retransmit]") {
            text.replace(
                "[dhcp_tester.v6.relay]\nlink_address = \"2001:db8:31::1\"\n",
                "",
            )
        } else {
            text
        };
        let e = reject(&text);
        assert_eq!((e.key.as_str(), e.value.as_str()), (*key, *value), "{e}");
        assert!(e.reason.contains(why), "{e}");
    }
}

#[test]
fn a_vip_may_choose_its_own_health_check_kind() {
    let ok = parse(&format!("{BASE}{LB_MIN}")).unwrap();
    assert_eq!(ok.lb.as_ref().unwrap().vips[0].health, None);
    let text = format!(
        "{BASE}{}",
        LB_MIN.replace(
            "policy = \"maglev-flow\"",
            "policy = \"maglev-flow\"\nhealth = \"http\""
        )
    );
    let ok = parse(&text).unwrap();
    assert_eq!(
        ok.lb.as_ref().unwrap().vips[0].health,
        Some(qsplice_config::HealthKind::Http)
    );
    let e = reject(&text.replace("health = \"http\"", "health = \"icmp\""));
    assert_eq!(e.key, "lb.vips[0].health", "{e}");
    assert_eq!(e.value, "icmp", "{e}");
    assert!(e.reason.contains("tcp") && e.reason.contains("http"), "{e}");
}

const LOADGEN: &str = r#"
[loadgen]
role = "client"
port = "backend"
target = "10.10.2.11:80"
"#;

#[test]
fn loadgen_parses_with_defaults_and_its_rules_name_key_value_and_reason() {
    let c = parse(&format!("{BASE}{LOADGEN}")).unwrap_or_else(|e| panic!("{e}"));
    let g = c.loadgen.unwrap();
    assert_eq!(
        (
            g.connections,
            g.concurrency,
            g.requests,
            g.method.as_str(),
            g.path.as_str()
        ),
        (1000, 64, 1, "GET", "/")
    );
    let server = "[loadgen]\nrole = \"server\"\nport = \"client\"\nlisten = \"10.10.1.1:80\"\n";
    let s = parse(&format!("{BASE}{server}")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.loadgen.unwrap().response_bytes, 100);
    let e = reject(&format!("{BASE}{server}tls = true\ntls_key = \"/k.pem\"\n"));
    assert_eq!(e.key, "loadgen.tls_cert", "{e}");
    assert!(e.reason.contains("required for a TLS server"), "{e}");
    let e = reject(&format!(
        "{BASE}{LOADGEN}tls = true\ntls_groups = [\"X448\"]\n"
    ));
    assert!(e.key.starts_with("loadgen.tls_groups"), "{e}");
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "port = \"backend\"",
            "port = \"nope\"",
            "loadgen.port",
            "no [[ports]]",
        ),
        (
            "target = \"10.10.2.11:80\"",
            "",
            "loadgen.target",
            "required",
        ),
        (
            "target = \"10.10.2.11:80\"",
            "target = \"10.10.2.11:0\"",
            "loadgen.target",
            "unicast",
        ),
        (
            "role = \"client\"",
            "role = \"client\"\nconcurrency = 0",
            "loadgen.concurrency",
            "between 1",
        ),
        (
            "role = \"client\"",
            "role = \"client\"\nsport_min = 65500\nsport_max = 65535\nconcurrency = 100",
            "loadgen.concurrency",
            "sources × (sport_max − sport_min + 1) = 36",
        ),
        (
            "role = \"client\"",
            "role = \"client\"\nsport_min = 30000\nsport_max = 29999",
            "loadgen.sport_max",
            "below sport_min (30000)",
        ),
        (
            "role = \"client\"",
            "role = \"client\"\nsources = 2",
            "loadgen.sources",
            "between 1 and the 1 IPv4",
        ),
        (
            "role = \"client\"",
            "role = \"client\"\nthink_ms = 4000000",
            "loadgen.think_ms",
            "between 0",
        ),
        (
            "role = \"client\"",
            "role = \"client\"\ntls = true\ntls_versions = [\"1.1\"]",
            "loadgen.tls_versions",
            "\"1.3\" and \"1.2\"",
        ),
        (
            "role = \"client\"",
            "role = \"client\"\ntls = true\ntls_versions = [\"1.2\"]\ntls_groups = [\"X25519MLKEM768\"]",
            "loadgen.tls_groups",
            "TLS 1.2 only",
        ),
        (
            "role = \"client\"",
            "role = \"client\"\ntls = true\ntls_resume_pct = 101",
            "loadgen.tls_resume_pct",
            "between 0 and 100",
        ),
        (
            "role = \"client\"",
            "role = \"client\"\nmethod = \"PUT\"",
            "loadgen.method",
            "GET, HEAD or POST",
        ),
        (
            "role = \"client\"",
            "role = \"client\"\nrequest_bytes = 10",
            "loadgen.request_bytes",
            "needs method = \"POST\"",
        ),
        (
            "role = \"client\"",
            "role = \"client\"\nmethod = \"POST\"\nrequest_bytes = 70000",
            "loadgen.request_bytes",
            "must fit in tcp_buf (65536)",
        ),
        (
            "role = \"client\"",
            "role = \"client\"\npath = \"no-slash\"",
            "loadgen.path",
            "starts with",
        ),
        (
            "role = \"client\"",
            "role = \"client\"\nrequests = 0",
            "loadgen.requests",
            "between 1",
        ),
        (
            "role = \"client\"",
            "role = \"client\"\ntcp_buf = 100",
            "loadgen.tcp_buf",
            "between 4096",
        ),
        (
            "role = \"client\"",
            "role = \"sniffer\"",
            "loadgen.role",
            "client",
        ),
        (
            "role = \"client\"",
            "role = \"client\"\nbogus = 1",
            "loadgen.bogus",
            "unknown key",
        ),
    ];
    for (find, repl, key, why) in cases {
        let e = reject(&format!("{BASE}{}", LOADGEN.replace(find, repl)));
        assert_eq!(e.key, *key, "{e}");
        assert!(e.reason.contains(why), "{e}");
    }
    let e = reject(&format!(
        "{BASE}{}",
        server.replace("10.10.1.1:80", "10.10.9.9:80")
    ));
    assert_eq!(
        (e.key.as_str(), e.value.as_str()),
        ("loadgen.listen", "10.10.9.9:80"),
        "{e}"
    );
    let e = reject(&format!(
        "{BASE}{}",
        server.replace("listen = \"10.10.1.1:80\"\n", "")
    ));
    assert_eq!(e.key, "loadgen.listen", "{e}");
}

#[test]
fn loadgen_on_several_worker_lcores_splits_ports_concurrency_and_rate() {
    let four = BASE.replace("worker_lcores = [1]", "worker_lcores = [1, 2, 3, 4]");
    let four = four.replace("iface=veth0", "iface=veth0,qpairs=4") + "\n[mempool]\nmbufs = 32768\n";
    let ok = parse(&format!("{four}{LOADGEN}")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.eal.worker_lcores.len(), 4);
    let cases: &[(&str, &str, &str)] = &[
        (
            "concurrency = 3",
            "loadgen.concurrency",
            "below the 4 worker lcores",
        ),
        ("rate = 3", "loadgen.rate", "below the 4 worker lcores"),
        (
            "sport_min = 40000\nsport_max = 40002",
            "loadgen.sport_max",
            "holds 3 port(s), fewer than the 4",
        ),
        // 10 ports: 2 per lcore (the last 4), 9 connections: 3 on some.
        (
            "sport_min = 40000\nsport_max = 40009\nconcurrency = 9",
            "loadgen.concurrency",
            "(2 per worker lcore)",
        ),
    ];
    for (add, key, why) in cases {
        let text = format!(
            "{four}{}",
            LOADGEN.replace("role = \"client\"", &format!("role = \"client\"\n{add}"))
        );
        let e = reject(&text);
        assert_eq!(e.key, *key, "{e}");
        assert!(e.reason.contains(why), "{e}");
    }
    let fits = LOADGEN.replace(
        "role = \"client\"",
        "role = \"client\"\nsport_min = 40000\nsport_max = 40009\nconcurrency = 8\nrate = 4",
    );
    parse(&format!("{four}{fits}")).unwrap_or_else(|e| panic!("{e}"));
    let server = "[loadgen]\nrole = \"server\"\nport = \"client\"\nlisten = \"10.10.1.1:80\"\nmax_conns = 3\n";
    let e = reject(&format!("{four}{server}"));
    assert_eq!(e.key, "loadgen.max_conns", "{e}");
}

#[test]
fn loadgen_both_sides_need_a_server_port_of_their_own() {
    let both = "[loadgen]\nrole = \"both\"\nport = \"backend\"\ntarget = \"10.10.1.1:80\"\nlisten = \"10.10.1.1:80\"\nserver_port = \"client\"\n";
    let ok = parse(&format!("{BASE}{both}")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.loadgen.unwrap().role, qsplice_config::LoadgenRole::Both);
    for (find, repl, key, why) in [
        (
            "server_port = \"client\"\n",
            "",
            "loadgen.server_port",
            "no [[ports]]",
        ),
        (
            "server_port = \"client\"",
            "server_port = \"backend\"",
            "loadgen.server_port",
            "a port of its own",
        ),
        (
            "listen = \"10.10.1.1:80\"",
            "listen = \"10.10.2.1:80\"",
            "loadgen.listen",
            "must be an address of port client",
        ),
        (
            "target = \"10.10.1.1:80\"\n",
            "",
            "loadgen.target",
            "role = \"both\"",
        ),
    ] {
        let e = reject(&format!("{BASE}{}", both.replace(find, repl)));
        assert_eq!(e.key, key, "{e}");
        assert!(e.reason.contains(why), "{e}");
    }
}

#[test]
fn loadgen_server_paths_are_checked() {
    let server = "[loadgen]\nrole = \"server\"\nport = \"client\"\nlisten = \"10.10.1.1:80\"\nlisten_all = true\n";
    let path =
        |p: &str, n: u32| format!("[[loadgen.paths]]\npath = \"{p}\"\nresponse_bytes = {n}\n");
    let ok = parse(&format!(
        "{BASE}{server}{}{}",
        path("/1m.bin", 1 << 20),
        path("/a", 0)
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let g = ok.loadgen.unwrap();
    assert!(g.listen_all);
    assert_eq!(g.paths.len(), 2);
    assert_eq!(
        (g.paths[0].path.as_str(), g.paths[0].response_bytes),
        ("/1m.bin", 1 << 20)
    );
    for (extra, key, why) in [
        (path("nope", 1), "loadgen.paths[0].path", "starts with '/'"),
        (path("/a?b", 1), "loadgen.paths[0].path", "no '?'"),
        (
            path("/a", 1) + &path("/a", 2),
            "loadgen.paths[1].path",
            "listed twice",
        ),
        (
            path("/a", 70 << 20),
            "loadgen.paths[0].response_bytes",
            "between 0",
        ),
        (
            (0..16)
                .map(|i| path(&format!("/{i}"), 1))
                .collect::<String>(),
            "loadgen.paths",
            "at most 15",
        ),
        (
            "[[loadgen.paths]]\npath = \"/a\"\nbytes = 3\n".to_string(),
            "loadgen.paths[0].bytes",
            "unknown",
        ),
    ] {
        let e = reject(&format!("{BASE}{server}{extra}"));
        assert_eq!(e.key, key, "{e}");
        assert!(e.reason.contains(why), "{e}");
    }
}
