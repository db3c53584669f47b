//! End-to-end: `qsplice dhcp-server` and `qsplice dhcp-tester` on DPDK
//! `net_af_packet` ports bound to veths, against real peers:
//! 1. ISC dhclient and busybox udhcpc in a namespace get leases from
//!    `qsplice dhcp-server` (and dhclient's unicast RELEASE, which needs the
//!    server's ARP answer, frees its lease);
//! 2. `qsplice dhcp-tester` binds 1000 clients against dnsmasq in a
//!    namespace; every lease is in dnsmasq's lease file;
//! 3. `qsplice dhcp-tester` in relay mode against `qsplice dhcp-server`
//!    (two processes, one veth pair), with the server dropping 20% of the
//!    requests: every client is bound through retries, Option 82 comes back,
//!    both sides count the same leases.
//!
//! Namespaces and veths are made and removed by the test (prefix `qd…`);
//! every process is stopped by PID; every wait is bounded.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn sh(cmd: &str) -> std::process::Output {
    Command::new("sh").args(["-c", cmd]).output().expect("sh")
}

fn ok(cmd: &str) {
    let o = sh(cmd);
    assert!(
        o.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn have(tool: &str) -> bool {
    sh(&format!("command -v {tool} || test -x /usr/sbin/{tool}"))
        .status
        .success()
}

/// A veth pair `a` (root namespace, for DPDK) <-> `b` (in namespace `ns`,
/// or also in the root namespace when `ns` is None); removed on drop.
struct Veth {
    a: String,
    ns: Option<String>,
}

impl Veth {
    fn new(a: &str, a_mac: &str, b: &str, ns: Option<&str>) -> Veth {
        let v = Veth {
            a: a.into(),
            ns: ns.map(String::from),
        };
        v.cleanup();
        if let Some(ns) = ns {
            ok(&format!("ip netns add {ns}"));
            ok(&format!("ip netns exec {ns} ip link set lo up"));
            let _ = sh(&format!(
                "ip netns exec {ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1"
            ));
        }
        ok(&format!(
            "ip link add {a} address {a_mac} type veth peer name {b}"
        ));
        let in_b = match ns {
            Some(ns) => {
                ok(&format!("ip link set {b} netns {ns}"));
                format!("ip netns exec {ns} ")
            }
            None => String::new(),
        };
        for (pre, dev) in [("", a), (in_b.as_str(), b)] {
            let _ = sh(&format!(
                "{pre}sysctl -qw net.ipv6.conf.{dev}.disable_ipv6=1"
            ));
            ok(&format!("{pre}ip link set {dev} up"));
            // checksums computed by the sender, not left to an offload
            let _ = sh(&format!("{pre}ethtool -K {dev} tx off rx off"));
        }
        v
    }

    fn cleanup(&self) {
        let _ = sh(&format!("ip link del {} 2>/dev/null", self.a));
        if let Some(ns) = &self.ns {
            let _ = sh(&format!("ip netns del {ns} 2>/dev/null"));
        }
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// A background process killed by PID on drop.
struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(3) {
                if !matches!(self.0.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn read_json(p: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

fn eal(prefix: &str, lcore_map: &str) -> String {
    format!(
        r#"[eal]
main_lcore = 0
worker_lcores = [1]
lcore_map = "{lcore_map}"
memory_mb = 256
hugepages = "auto"
file_prefix = "{prefix}"
log_level = "warning"

[engine]
burst = 32
stats_interval_ms = 500
"#
    )
}

fn server_config(iface: &str, prefix: &str, faults: &str) -> String {
    format!(
        r#"{}idle_sleep_us = 20

[[ports]]
name = "dhcp"
device = "net_af_packet0,iface={iface}"
addresses = ["10.30.0.1/16"]

[dhcp_server]
port = "dhcp"

[[dhcp_server.pools]]
subnet = "10.30.0.0/16"
range_start = "10.30.1.10"
range_end = "10.30.40.255"
routers = ["10.30.0.1"]
lease_time_s = 3600

[[dhcp_server.pools]]
subnet = "10.31.0.0/16"
range_start = "10.31.1.0"
range_end = "10.31.40.255"
routers = ["10.31.0.1"]
lease_time_s = 600

[dhcp_server.faults]
{faults}
"#,
        eal(prefix, "0@0,1@0")
    )
}

fn spawn_server(dir: &Path, cfg: &str, json: &Path, secs: u32) -> Appliance {
    let p = dir.join("server.toml");
    std::fs::write(&p, cfg).unwrap();
    let app = Appliance::spawn(
        &dir.join("server"),
        &[
            "dhcp-server",
            "--config",
            p.to_str().unwrap(),
            "--duration",
            &secs.to_string(),
            "--json",
            json.to_str().unwrap(),
        ],
    );
    app
}

fn wait_server_up(app: &mut Appliance, json: &Path) {
    let up = wait_for(Duration::from_secs(20), || {
        assert!(app.is_running(), "dhcp-server exited early\n{}", app.logs());
        read_json(json)
    });
    assert!(up.is_some(), "dhcp-server did not come up\n{}", app.logs());
}

fn server_counter(v: &serde_json::Value, k: &str) -> u64 {
    v["server"]["counters"][k]
        .as_u64()
        .unwrap_or_else(|| panic!("server counter {k} missing in {v}"))
}

/// Runs `qsplice dhcp-tester` to completion (bounded); returns its report.
fn run_tester(dir: &Path, cfg: &str, limit: Duration) -> (serde_json::Value, String) {
    let p = dir.join("tester.toml");
    std::fs::write(&p, cfg).unwrap();
    let json = dir.join("tester.json");
    let png = dir.join("tester.png");
    let mut app = Appliance::spawn(
        &dir.join("tester"),
        &[
            "dhcp-tester",
            "--config",
            p.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
            "--plot",
            png.to_str().unwrap(),
        ],
    );
    let status = wait_for(limit, || app.child.try_wait().ok().flatten());
    let logs = app.logs();
    let status = status.unwrap_or_else(|| panic!("dhcp-tester did not finish\n{logs}"));
    let v = read_json(&json).unwrap_or_else(|| panic!("no tester JSON ({status})\n{logs}"));
    assert!(
        std::fs::read(&png).is_ok_and(|b| b.len() > 1000 && &b[1..4] == b"PNG"),
        "--plot wrote no PNG\n{logs}"
    );
    assert!(status.success(), "dhcp-tester failed: {status}\n{logs}");
    (v, logs)
}

fn tester_config(iface: &str, prefix: &str, body: &str) -> String {
    format!(
        r#"{}
[[ports]]
name = "dhcp"
device = "net_af_packet0,iface={iface}"
promiscuous = true
addresses = ["10.31.0.1/16"]

[dhcp_tester]
port = "dhcp"
timeout_s = 60
{body}
"#,
        eal(prefix, "0@0,1@1")
    )
}

fn check_report(v: &serde_json::Value, clients: u64) {
    let c = &v["counters"];
    assert_eq!(c["bound"].as_u64(), Some(clients), "{v}");
    assert_eq!(c["failed"].as_u64(), Some(0), "{v}");
    assert_eq!(v["success_rate"].as_f64(), Some(1.0), "{v}");
    assert_eq!(v["bound_addresses"].as_u64(), Some(clients), "{v}");
    assert_eq!(v["unique_addresses"].as_u64(), Some(clients), "{v}");
    assert_eq!(v["interrupted"].as_bool(), Some(false), "{v}");
    for stage in ["discover_offer", "request_ack", "total"] {
        let s = &v[stage];
        assert_eq!(s["count"].as_u64(), Some(clients), "{stage}: {v}");
        let (min, p50, p99, max) = (
            s["min_us"].as_f64().unwrap(),
            s["p50_us"].as_f64().unwrap(),
            s["p99_us"].as_f64().unwrap(),
            s["max_us"].as_f64().unwrap(),
        );
        assert!(
            0.0 < min && min <= p50 && p50 <= p99 && p99 <= max,
            "{stage}: {s}"
        );
    }
    assert!(v["clients_per_s"].as_f64().unwrap() > 0.0, "{v}");
}

#[test]
fn real_clients_get_leases_from_qsplice_dhcp_server() {
    if !require_root() {
        return;
    }
    assert!(
        have("dhclient") && have("udhcpc"),
        "dhclient and udhcpc are needed (scripts/setup.sh installs isc-dhcp-client, udhcpc)"
    );
    let scratch = Scratch::new("e2e-dhcpd");
    let _veth = Veth::new("qd1-srv", "02:00:00:00:d1:01", "qd1-cli0", Some("qd1-cli"));
    let json = scratch.0.join("server.json");
    let mut app = spawn_server(
        &scratch.0,
        &server_config("qd1-srv", "qs-e2e-dhcpd", ""),
        &json,
        60,
    );
    wait_server_up(&mut app, &json);

    // ISC dhclient: one attempt, lease file in the scratch dir, no script.
    let lf = scratch.0.join("dhclient.leases");
    let pf = scratch.0.join("dhclient.pid");
    let dh = format!(
        "ip netns exec qd1-cli timeout 30 dhclient -v -1 -lf {} -pf {} -sf /bin/true qd1-cli0",
        lf.display(),
        pf.display()
    );
    let o = sh(&dh);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "dhclient: {text}\n{}", app.logs());
    assert!(text.contains("DHCPACK of 10.30."), "{text}");
    let leases = std::fs::read_to_string(&lf).unwrap();
    assert!(
        leases.contains("option dhcp-server-identifier 10.30.0.1;"),
        "{leases}"
    );
    assert!(leases.contains("option routers 10.30.0.1;"), "{leases}");
    assert!(leases.contains("option dhcp-lease-time 3600;"), "{leases}");
    let addr = leases
        .lines()
        .find_map(|l| l.trim().strip_prefix("fixed-address "))
        .map(|a| a.trim_end_matches(';').to_string())
        .unwrap();
    let ip: std::net::Ipv4Addr = addr.parse().unwrap();
    assert!(
        (u32::from(std::net::Ipv4Addr::new(10, 30, 1, 10))
            ..=u32::from(std::net::Ipv4Addr::new(10, 30, 40, 255)))
            .contains(&u32::from(ip)),
        "{ip} outside the pool"
    );
    // RELEASE is unicast from the bound address: the kernel resolves the
    // server by ARP, which the server's loop answers.
    ok(&format!(
        "ip netns exec qd1-cli ip addr add {ip}/16 dev qd1-cli0"
    ));
    ok(&format!(
        "ip netns exec qd1-cli timeout 20 dhclient -r -lf {} -pf {} -sf /bin/true qd1-cli0",
        lf.display(),
        pf.display()
    ));
    let released = wait_for(Duration::from_secs(10), || {
        let v = read_json(&json)?;
        (server_counter(&v, "release") >= 1).then_some(v)
    });
    let v = released.unwrap_or_else(|| panic!("no RELEASE counted\n{}", app.logs()));
    assert!(v["io"]["arp_replies"].as_u64().unwrap() >= 1, "{v}");
    ok("ip netns exec qd1-cli ip addr flush dev qd1-cli0");

    // busybox udhcpc: another client implementation, same server.
    let o = sh("ip netns exec qd1-cli timeout 30 udhcpc -i qd1-cli0 -n -q -t 5 -T 2 -s /bin/true");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "udhcpc: {text}\n{}", app.logs());
    assert!(
        text.contains("lease of 10.30.") && text.contains("obtained from 10.30.0.1"),
        "{text}"
    );

    assert!(
        app.stop(Duration::from_secs(10))
            .is_some_and(|s| s.success()),
        "{}",
        app.logs()
    );
    let v = read_json(&json).unwrap();
    assert!(server_counter(&v, "ack_sent") >= 2, "{v}");
    assert!(server_counter(&v, "offer_sent") >= 2, "{v}");
    assert_eq!(
        v["server"]["leases_bound"].as_u64(),
        Some(1),
        "udhcpc's lease: {v}"
    );
}

#[test]
fn tester_binds_1000_clients_against_dnsmasq() {
    if !require_root() {
        return;
    }
    assert!(have("dnsmasq"), "dnsmasq is needed (scripts/setup.sh)");
    let scratch = Scratch::new("e2e-dhcpt-dnsmasq");
    let _veth = Veth::new("qd2-tst", "02:00:00:00:d2:01", "qd2-srv0", Some("qd2-srv"));
    ok("ip netns exec qd2-srv ip addr add 10.30.0.1/16 dev qd2-srv0");
    let leases = scratch.0.join("dnsmasq.leases");
    let pid = scratch.0.join("dnsmasq.pid");
    let log = std::fs::File::create(scratch.0.join("dnsmasq.log")).unwrap();
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            "qd2-srv",
            "dnsmasq",
            "--keep-in-foreground",
        ])
        .args([
            "--no-resolv",
            "--no-hosts",
            "--port=0",
            "--interface=qd2-srv0",
            "--bind-interfaces",
            "--except-interface=lo",
            "--dhcp-range=10.30.1.0,10.30.40.255,255.255.0.0,1h",
            "--dhcp-lease-max=100000",
            "--dhcp-authoritative",
            "--no-ping",
            "--quiet-dhcp",
            "--log-facility=-",
        ])
        .arg(format!("--dhcp-leasefile={}", leases.display()))
        .arg(format!("--pid-file={}", pid.display()))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("dnsmasq");
    let _dnsmasq = Proc(child);
    std::thread::sleep(Duration::from_millis(500));

    let cfg = tester_config(
        "qd2-tst",
        "qs-e2e-dhcpt",
        r#"clients = 1000
concurrency = 100
base_mac = "02:20:00:00:00:00"

[dhcp_tester.retransmit]
initial_ms = 1000
max_ms = 4000
discover_retries = 6
request_retries = 6
"#,
    );
    let (v, logs) = run_tester(&scratch.0, &cfg, Duration::from_secs(90));
    check_report(&v, 1000);
    assert!(
        logs.contains("dhcp-tester: 1000 clients, 1000 bound"),
        "{logs}"
    );
    // dnsmasq knows every client: one lease line per MAC, ours.
    let text = std::fs::read_to_string(&leases).unwrap();
    let macs: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| m.starts_with("02:20:00:00:"))
        .collect();
    assert_eq!(macs.len(), 1000, "dnsmasq lease file:\n{text}");
}

#[test]
fn relay_tester_against_qsplice_server_with_drops() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new("e2e-dhcp-b2b");
    let _veth = Veth::new("qd3-a", "02:00:00:00:d3:01", "qd3-b", None);
    let _ = sh("ip link set qd3-b address 02:00:00:00:d3:02");
    let json = scratch.0.join("server.json");
    let mut srv = spawn_server(
        &scratch.0,
        &server_config("qd3-a", "qs-e2e-b2b-s", "drop_rate = 0.2"),
        &json,
        100,
    );
    wait_server_up(&mut srv, &json);
    let clients = 2000;
    let cfg = tester_config(
        "qd3-b",
        "qs-e2e-b2b-t",
        &format!(
            r#"clients = {clients}
concurrency = 200
rate = 20000
burst = 32
base_mac = "02:30:00:00:00:00"
release = false

[dhcp_tester.retransmit]
initial_ms = 200
max_ms = 1000
discover_retries = 10
request_retries = 10

[dhcp_tester.relay]
giaddr = "10.31.0.1"
server_ip = "10.30.0.1"
server_mac = "02:00:00:00:d3:01"
hops = 1
max_hops = 16
circuit_id = "olt1/port-{{index}}"
remote_id = "qsplice-e2e"
"#
        ),
    );
    let (v, logs) = run_tester(&scratch.0, &cfg, Duration::from_secs(90));
    check_report(&v, clients);
    let c = &v["counters"];
    assert!(
        c["retries"].as_u64().unwrap() > 0,
        "drops recovered by retries: {v}"
    );
    assert!(c["timeouts"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(
        c["option82_mismatch"].as_u64(),
        Some(0),
        "Option 82 echoed: {v}"
    );
    let hist = v["retries_histogram"].as_array().unwrap();
    assert!(hist.len() >= 2, "some clients needed retries: {v}\n{logs}");
    assert!(v["io"]["arp_replies"].as_u64().is_some());

    // The server saw relayed requests only, dropped ~20%, and holds the
    // same leases (from the giaddr-selected pool).
    assert!(
        srv.stop(Duration::from_secs(10))
            .is_some_and(|s| s.success()),
        "{}",
        srv.logs()
    );
    let s = read_json(&json).unwrap();
    assert_eq!(s["server"]["leases_bound"].as_u64(), Some(clients), "{s}");
    let received = server_counter(&s, "received");
    let dropped = s["server"]["rejects"]["simulated_drop"]
        .as_u64()
        .unwrap_or(0);
    // drops happen before parsing; everything parsed was relayed
    assert_eq!(server_counter(&s, "relayed") + dropped, received, "{s}");
    assert!(server_counter(&s, "ack_sent") >= clients, "{s}");
    let ratio = dropped as f64 / received as f64;
    assert!((0.15..0.25).contains(&ratio), "drop ratio {ratio}: {s}");
    let addrs_ok = v["unique_addresses"].as_u64() == Some(clients);
    assert!(addrs_ok, "{v}");
}
