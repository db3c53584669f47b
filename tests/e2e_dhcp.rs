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
//!    both sides count the same leases;
//! 4. ISC perfdhcp at 1000 DORA/s against `qsplice dhcp-server`: every
//!    request answered, no drops other than perfdhcp's own socket
//!    overflowing (kernel `UdpRcvbufErrors`), at most 0.5%;
//! 5. `qsplice dhcp-tester` against ISC Kea (raw sockets, memfile): direct
//!    and relayed clients (giaddr selects the subnet, Kea echoes Option 82)
//!    all bound and in Kea's lease file;
//! 6. hand-made malformed requests (tests/tools/send_dhcp_malformed.py)
//!    counted by reason, the server still serving;
//! 7. ISC `dhclient -6` gets an address (IA_NA) and a delegated prefix
//!    (IA_PD) from the dual-stack `qsplice dhcp-server`, releases both, the
//!    server answers Neighbor Solicitations, DHCPv4 still served;
//! 8. the DHCPv6 tester relayed (Interface-ID, Remote-ID) against the
//!    DHCPv6 server dropping 20% and delaying every reply: all bound via
//!    retransmissions;
//! 9. the DHCPv6 tester against ISC Kea `kea-dhcp6`, direct (Kea resolves
//!    each client's link-local address by ND, the tester answers; every
//!    binding RENEWed) and relayed (every binding REBOUND); every lease in
//!    Kea's lease file.
//!
//! Namespaces and veths are made and removed by the test (prefix `qd…`);
//! every process is stopped by PID; every wait is bounded.
//! `QSPLICE_E2E_PMD=af_xdp` binds qsplice's ports with `net_af_xdp`
//! instead of `net_af_packet` (the test stage `af_xdp` of scripts/test.sh).

mod common;

use std::path::{Path, PathBuf};
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

    /// Turns IPv6 on for the namespace side `b` (without duplicate address
    /// detection, so its link-local address is usable at once); the DPDK
    /// side stays without a kernel IPv6 stack.
    fn enable_ipv6(&self, b: &str) {
        let pre = match &self.ns {
            Some(ns) => format!("ip netns exec {ns} "),
            None => String::new(),
        };
        for k in ["all.accept_dad", &format!("{b}.accept_dad")] {
            ok(&format!("{pre}sysctl -qw net.ipv6.conf.{k}=0"));
        }
        for k in ["all.disable_ipv6", &format!("{b}.disable_ipv6")] {
            ok(&format!("{pre}sysctl -qw net.ipv6.conf.{k}=0"));
        }
        let ll = wait_for(Duration::from_secs(5), || {
            let o = sh(&format!("{pre}ip -6 addr show dev {b} scope link"));
            String::from_utf8_lossy(&o.stdout)
                .contains("fe80::")
                .then_some(())
        });
        assert!(ll.is_some(), "{b} has no link-local address");
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

/// A daemon that wrote its PID to this file (dhclient goes to the
/// background once bound, to renew): killed by that PID on drop, so a
/// test that passes or fails leaves no client running.
struct PidFile(PathBuf);

impl Drop for PidFile {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(&self.0).unwrap_or_default();
        let pid = pid.trim();
        // Still that daemon (not a pid reused since it exited).
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if pid.parse::<u32>().is_ok_and(|p| p > 1) && comm.trim() == "dhclient" {
            let _ = Command::new("kill").args(["-TERM", pid]).status();
        }
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
    let pmd = e2e_pmd();
    format!(
        r#"{}idle_sleep_us = 20

[[ports]]
name = "dhcp"
device = "net_{pmd}0,iface={iface}"
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
    let pmd = e2e_pmd();
    format!(
        r#"{}
[[ports]]
name = "dhcp"
device = "net_{pmd}0,iface={iface}"
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
    let _dhclient = PidFile(pf.clone());
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

/// `[dhcp_server.v6]` next to the DHCPv4 pools of [`server_config`], and
/// an IPv6 address on the port.
fn dual_stack_server_config(iface: &str, prefix: &str, faults: &str) -> String {
    server_config(iface, prefix, faults).replace(
        r#"addresses = ["10.30.0.1/16"]"#,
        r#"addresses = ["10.30.0.1/16", "2001:db8:30::1/64"]"#,
    ) + r#"
[dhcp_server.v6]
range_start = "2001:db8:30::1000"
range_end = "2001:db8:30::ffff"
pd_pool = "2001:db8:4000::/40"
pd_length = 56
preferred_lifetime_s = 1800
valid_lifetime_s = 3600
"#
}

#[test]
fn real_dhcpv6_client_gets_an_address_and_a_prefix_from_qsplice_dhcp_server() {
    if !require_root() {
        return;
    }
    assert!(
        have("dhclient"),
        "dhclient is needed (scripts/setup.sh installs isc-dhcp-client)"
    );
    let scratch = Scratch::new("e2e-dhcp6d");
    let veth = Veth::new("qd7-srv", "02:00:00:00:d7:01", "qd7-cli0", Some("qd7-cli"));
    veth.enable_ipv6("qd7-cli0");
    let json = scratch.0.join("server.json");
    let mut app = spawn_server(
        &scratch.0,
        &dual_stack_server_config("qd7-srv", "qs-e2e-dhcp6d", ""),
        &json,
        60,
    );
    wait_server_up(&mut app, &json);

    // ISC dhclient -6 asking for an address (IA_NA) and a prefix (IA_PD):
    // SOLICIT to ff02::1:2, ADVERTISE, REQUEST, REPLY.
    let lf = scratch.0.join("dhclient6.leases");
    let pf = scratch.0.join("dhclient6.pid");
    let _dhclient6 = PidFile(pf.clone());
    let dh = |extra: &str| {
        format!(
            "ip netns exec qd7-cli timeout 30 dhclient -6 -v -1 {extra} -N -P -lf {} -pf {} -sf /bin/true qd7-cli0",
            lf.display(),
            pf.display()
        )
    };
    let o = sh(&dh(""));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "dhclient -6: {text}\n{}", app.logs());
    let leases = std::fs::read_to_string(&lf).unwrap();
    let field = |k: &str| {
        leases
            .lines()
            .find_map(|l| l.trim().strip_prefix(k))
            .map(|a| a.trim_end_matches(" {").to_string())
            .unwrap_or_else(|| panic!("no {k} in\n{leases}"))
    };
    let addr: std::net::Ipv6Addr = field("iaaddr ").parse().unwrap();
    let range = |x: &str| u128::from(x.parse::<std::net::Ipv6Addr>().unwrap());
    assert!(
        (range("2001:db8:30::1000")..=range("2001:db8:30::ffff")).contains(&u128::from(addr)),
        "{addr} outside the range"
    );
    let prefix = field("iaprefix ");
    let (p, len) = prefix.split_once('/').unwrap();
    let p: std::net::Ipv6Addr = p.parse().unwrap();
    assert_eq!(len, "56", "{prefix}");
    assert_eq!(
        u128::from(p) >> 88,
        range("2001:db8:4000::") >> 88,
        "{prefix} outside 2001:db8:4000::/40"
    );
    assert!(
        leases.contains("preferred-life 1800;") && leases.contains("max-life 3600;"),
        "{leases}"
    );
    assert!(
        leases.contains("option dhcp6.server-id 0:3:0:1:2:0:0:0:d7:1;"),
        "DUID-LL of the port's MAC: {leases}"
    );
    let bound = wait_for(Duration::from_secs(5), || {
        let v = read_json(&json)?;
        let s6 = &v["server6"];
        (s6["addresses_bound"].as_u64() == Some(1) && s6["prefixes_bound"].as_u64() == Some(1))
            .then_some(v)
    });
    bound.unwrap_or_else(|| panic!("server did not count the binding\n{}", app.logs()));

    // The server answers Neighbor Solicitations for its global address.
    ok("ip netns exec qd7-cli ip -6 addr add 2001:db8:30::99/64 dev qd7-cli0 nodad");
    let _ = sh("ip netns exec qd7-cli ping -6 -c 2 -W 1 2001:db8:30::1");
    let neigh = sh("ip netns exec qd7-cli ip -6 neigh show 2001:db8:30::1");
    let neigh = String::from_utf8_lossy(&neigh.stdout).to_string();
    assert!(
        neigh.contains("lladdr 02:00:00:00:d7:01"),
        "neighbor entry: {neigh}"
    );

    // RELEASE frees both.
    ok(&dh("-r"));
    let released = wait_for(Duration::from_secs(10), || {
        let v = read_json(&json)?;
        let s6 = &v["server6"];
        (s6["received"]["release"].as_u64() >= Some(1)
            && s6["addresses_bound"].as_u64() == Some(0)
            && s6["prefixes_bound"].as_u64() == Some(0))
        .then_some(v)
    });
    let v = released.unwrap_or_else(|| panic!("RELEASE did not free the leases\n{}", app.logs()));
    assert!(v["io"]["nd_adverts"].as_u64().unwrap() >= 1, "{v}");
    assert!(
        v["server6"]["rejects"]
            .as_object()
            .is_none_or(|m| m.is_empty()),
        "nothing refused: {v}"
    );

    // The same port still serves DHCPv4.
    ok("ip netns exec qd7-cli ip addr flush dev qd7-cli0 scope global");
    let lf4 = scratch.0.join("dhclient4.leases");
    let dhclient4 = PidFile(scratch.0.join("dhclient4.pid"));
    let o = sh(&format!(
        "ip netns exec qd7-cli timeout 30 dhclient -v -1 -lf {} -pf {} -sf /bin/true qd7-cli0",
        lf4.display(),
        dhclient4.0.display()
    ));
    assert!(
        o.status.success(),
        "dhclient (v4) on the dual-stack server\n{}",
        app.logs()
    );
    assert!(
        app.stop(Duration::from_secs(10))
            .is_some_and(|s| s.success()),
        "{}",
        app.logs()
    );
    let v = read_json(&json).unwrap();
    assert_eq!(v["server"]["leases_bound"].as_u64(), Some(1), "{v}");
    drop(veth);
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

/// The server's config on `iface` with the given EAL prefix and no faults.
fn plain_server(
    dir: &Path,
    iface: &str,
    prefix: &str,
    secs: u32,
) -> (Appliance, std::path::PathBuf) {
    let json = dir.join("server.json");
    let mut app = spawn_server(dir, &server_config(iface, prefix, ""), &json, secs);
    wait_server_up(&mut app, &json);
    (app, json)
}

/// `(sent, received, drops)` of each perfdhcp exchange, in order.
fn perfdhcp_stats(out: &str) -> Vec<(u64, u64, u64)> {
    let num = |l: &str| {
        l.split(':')
            .nth(1)
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let mut r = Vec::new();
    let (mut s, mut rc) = (None, None);
    for l in out.lines().map(str::trim) {
        if l.starts_with("sent packets:") {
            s = num(l);
        } else if l.starts_with("received packets:") {
            rc = num(l);
        } else if l.starts_with("drops:") {
            if let (Some(a), Some(b), Some(d)) = (s, rc, num(l)) {
                r.push((a, b, d));
            }
        }
    }
    r
}

fn nstat_counter(ns: &str, name: &str) -> u64 {
    let o = sh(&format!("ip netns exec {ns} nstat -a 2>/dev/null"));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(name)).then(|| w.next()?.parse().ok())?
        })
        .unwrap_or(0)
}

/// ISC perfdhcp (Kea's load generator) against `qsplice dhcp-server`:
/// 1000 DORA/s for 3 s. The server answers every request, and every
/// exchange completes (a drop is tolerated only where the kernel counts it
/// as perfdhcp's own socket overflowing, at most 0.5%).
#[test]
fn perfdhcp_dora_against_qsplice_dhcp_server() {
    if !require_root() {
        return;
    }
    assert!(
        have("perfdhcp"),
        "perfdhcp is needed (scripts/setup.sh installs kea-admin)"
    );
    let scratch = Scratch::new("e2e-dhcp-perf");
    let _veth = Veth::new("qd4-srv", "02:00:00:00:d4:01", "qd4-cli0", Some("qd4-cli"));
    ok("ip netns exec qd4-cli ip addr add 10.30.0.2/16 dev qd4-cli0");
    let (mut app, json) = plain_server(&scratch.0, "qd4-srv", "qs-e2e-dhcp-perf", 60);
    let _ = sh("ip netns exec qd4-cli nstat -n");
    let t = Instant::now();
    let o = sh("ip netns exec qd4-cli timeout 20 perfdhcp -4 -l qd4-cli0 -r 1000 -p 3 -R 100000 -W 1000000");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let overflows = nstat_counter("qd4-cli", "UdpRcvbufErrors");
    let st = perfdhcp_stats(&out);
    assert_eq!(st.len(), 2, "perfdhcp output:\n{out}");
    let (disc, _, d1) = st[0];
    let (req, _, d2) = st[1];
    assert!(disc >= 2500, "perfdhcp sent {disc} DISCOVERs:\n{out}");
    assert!(
        d1 + d2 <= overflows && (d1 + d2) * 200 <= disc + req,
        "drops {d1}+{d2}, perfdhcp socket overflows {overflows}:\n{out}\n{}",
        app.logs()
    );
    assert!(
        app.stop(Duration::from_secs(10))
            .is_some_and(|s| s.success()),
        "{}",
        app.logs()
    );
    let v = read_json(&json).unwrap();
    assert_eq!(server_counter(&v, "discover"), disc, "{v}\n{out}");
    assert_eq!(server_counter(&v, "offer_sent"), disc, "{v}");
    assert_eq!(server_counter(&v, "request"), req, "{v}");
    assert_eq!(server_counter(&v, "ack_sent"), req, "{v}");
    assert_eq!(v["io"]["tx_full"].as_u64(), Some(0), "{v}");
    eprintln!(
        "perfdhcp: {disc} DISCOVER, {req} REQUEST, drops {d1}/{d2} (socket overflows {overflows}) in {:?}",
        t.elapsed()
    );
}

/// `qsplice dhcp-tester` against ISC Kea (`kea-dhcp4`, raw sockets,
/// memfile lease file): 300 direct clients all bound and in Kea's lease
/// file; then 200 relayed clients (giaddr 10.31.0.1 selects Kea's second
/// subnet), replies carry Option 82 back (Kea echoes it by default).
#[test]
fn tester_against_kea_direct_and_relayed() {
    if !require_root() {
        return;
    }
    assert!(
        have("kea-dhcp4"),
        "kea-dhcp4 is needed (scripts/setup.sh installs kea-dhcp4-server)"
    );
    let scratch = Scratch::new("e2e-dhcpt-kea");
    let _veth = Veth::new("qd5-tst", "02:00:00:00:d5:01", "qd5-srv0", Some("qd5-srv"));
    ok("ip netns exec qd5-srv ip link set qd5-srv0 address 02:00:00:00:d5:02");
    ok("ip netns exec qd5-srv ip addr add 10.30.0.1/16 dev qd5-srv0");
    ok("ip netns exec qd5-srv ip route add 10.31.0.0/16 dev qd5-srv0");
    let d = &scratch.0;
    let leases = d.join("kea-leases4.csv");
    let kea = format!(
        r#"{{ "Dhcp4": {{
  "interfaces-config": {{ "interfaces": [ "qd5-srv0" ], "dhcp-socket-type": "raw" }},
  "lease-database": {{ "type": "memfile", "persist": true, "name": "{}", "lfc-interval": 0 }},
  "valid-lifetime": 3600,
  "subnet4": [
    {{ "id": 1, "subnet": "10.30.0.0/16", "pools": [ {{ "pool": "10.30.1.0 - 10.30.40.255" }} ] }},
    {{ "id": 2, "subnet": "10.31.0.0/16", "pools": [ {{ "pool": "10.31.1.0 - 10.31.40.255" }} ] }}
  ],
  "loggers": [ {{ "name": "kea-dhcp4", "severity": "WARN", "output_options": [ {{ "output": "{}" }} ] }} ]
}} }}"#,
        leases.display(),
        d.join("kea.log").display()
    );
    std::fs::write(d.join("kea.json"), kea).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", "qd5-srv", "kea-dhcp4", "-c"])
        .arg(d.join("kea.json"))
        .env("KEA_PIDFILE_DIR", d)
        .env("KEA_LOCKFILE_DIR", d)
        .stdout(std::fs::File::create(d.join("kea.out")).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("kea-dhcp4");
    let mut kea_proc = Proc(child);
    let up = wait_for(Duration::from_secs(10), || {
        assert!(
            matches!(kea_proc.0.try_wait(), Ok(None)),
            "kea-dhcp4 exited: {}",
            std::fs::read_to_string(d.join("kea.out")).unwrap_or_default()
        );
        leases.exists().then_some(())
    });
    assert!(up.is_some(), "kea-dhcp4 did not open its lease file");
    std::thread::sleep(Duration::from_millis(300));

    let retx = r#"
[dhcp_tester.retransmit]
initial_ms = 500
max_ms = 2000
discover_retries = 6
request_retries = 6
"#;
    let direct = tester_config(
        "qd5-tst",
        "qs-e2e-dhcpt-kea1",
        &format!("clients = 300\nconcurrency = 64\nbase_mac = \"02:50:00:00:00:00\"\nrelease = false\n{retx}"),
    );
    let (v, _) = run_tester(d, &direct, Duration::from_secs(60));
    check_report(&v, 300);
    let relayed = tester_config(
        "qd5-tst",
        "qs-e2e-dhcpt-kea2",
        &format!(
            r#"clients = 200
concurrency = 64
base_mac = "02:51:00:00:00:00"
release = false
{retx}
[dhcp_tester.relay]
giaddr = "10.31.0.1"
server_ip = "10.30.0.1"
server_mac = "02:00:00:00:d5:02"
hops = 1
max_hops = 16
circuit_id = "olt7/port-{{index}}"
remote_id = "qsplice-kea"
"#
        ),
    );
    let (r, logs) = run_tester(d, &relayed, Duration::from_secs(60));
    check_report(&r, 200);
    assert_eq!(
        r["counters"]["option82_mismatch"].as_u64(),
        Some(0),
        "{r}\n{logs}"
    );
    drop(kea_proc);
    // Kea's lease file: address,hwaddr,... one line per lease (the last
    // line of an address wins).
    let text = std::fs::read_to_string(&leases).unwrap();
    let mut by_mac = std::collections::BTreeMap::new();
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        if f.len() > 2 {
            by_mac.insert(f[1].to_string(), f[0].to_string());
        }
    }
    let direct_n = by_mac
        .iter()
        .filter(|(m, a)| m.starts_with("02:50:00:00:") && a.starts_with("10.30."))
        .count();
    let relay_n = by_mac
        .iter()
        .filter(|(m, a)| m.starts_with("02:51:00:00:") && a.starts_with("10.31."))
        .count();
    assert_eq!((direct_n, relay_n), (300, 200), "Kea lease file:\n{text}");
}

/// `[dhcp_tester.v6]` for `clients` clients (`extra`: more keys of the
/// section and its tables).
fn tester6_config(iface: &str, prefix: &str, clients: u32, base_mac: &str, extra: &str) -> String {
    tester_config(
        iface,
        prefix,
        &format!(
            r#"clients = {clients}
concurrency = 128
base_mac = "{base_mac}"

[dhcp_tester.v6]
{extra}
"#
        ),
    )
}

/// The DHCPv6 tester in relay mode against the DHCPv6 server (two
/// processes, one veth pair), the server dropping 20% and delaying every
/// reply: every client gets an address and a prefix through
/// retransmissions, the Interface-ID comes back, both count the same.
#[test]
fn dhcpv6_relay_tester_against_qsplice_server_with_drops() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new("e2e-dhcp6-b2b");
    let _veth = Veth::new("qd8-a", "02:00:00:00:d8:01", "qd8-b", None);
    let _ = sh("ip link set qd8-b address 02:00:00:00:d8:02");
    let json = scratch.0.join("server.json");
    let mut srv = spawn_server(
        &scratch.0,
        &dual_stack_server_config("qd8-a", "qs-e2e-b2b6-s", "drop_rate = 0.2\ndelay_ms = 2"),
        &json,
        100,
    );
    wait_server_up(&mut srv, &json);
    let clients = 2000;
    let cfg = tester6_config(
        "qd8-b",
        "qs-e2e-b2b6-t",
        clients,
        "02:38:00:00:00:00",
        r#"ia_pd = true

[dhcp_tester.v6.retransmit]
solicit_irt_ms = 200
solicit_mrt_ms = 1000
solicit_max_rc = 20
request_irt_ms = 200
request_mrt_ms = 1000
request_max_rc = 20

[dhcp_tester.v6.relay]
link_address = "2001:db8:31::1"
interface_id = "olt1/port-{index}"
remote_id = "qsplice-e2e"
remote_id_enterprise = 32473
"#,
    );
    let (v, logs) = run_tester(&scratch.0, &cfg, Duration::from_secs(90));
    check_report(&v, u64::from(clients));
    assert_eq!(v["family"].as_u64(), Some(6), "{v}");
    assert_eq!(
        v["delegated_prefixes"].as_u64(),
        Some(u64::from(clients)),
        "{v}"
    );
    assert_eq!(
        v["unique_prefixes"].as_u64(),
        Some(u64::from(clients)),
        "{v}"
    );
    let c = &v["counters"];
    assert!(
        c["retries"].as_u64().unwrap() > 0,
        "drops recovered by retries: {v}\n{logs}"
    );
    assert_eq!(
        c["option82_mismatch"].as_u64(),
        Some(0),
        "Interface-ID echoed: {v}"
    );
    assert!(
        v["discover_offer"]["min_us"].as_f64().unwrap() >= 2000.0,
        "the 2 ms delay: {v}"
    );
    assert!(
        srv.stop(Duration::from_secs(10))
            .is_some_and(|s| s.success()),
        "{}",
        srv.logs()
    );
    let s = read_json(&json).unwrap();
    let s6 = &s["server6"];
    assert_eq!(
        s6["addresses_bound"].as_u64(),
        Some(u64::from(clients)),
        "{s}"
    );
    assert_eq!(
        s6["prefixes_bound"].as_u64(),
        Some(u64::from(clients)),
        "{s}"
    );
    let relayed = s6["received"]["relay_forw"].as_u64().unwrap();
    let dropped = s6["rejects"]["simulated_drop"].as_u64().unwrap_or(0);
    let ratio = dropped as f64 / (relayed + dropped) as f64;
    assert!((0.15..0.25).contains(&ratio), "drop ratio {ratio}: {s}");
    let got = |k: &str| s6["received"][k].as_u64().unwrap_or(0);
    assert_eq!(
        relayed,
        got("solicit") + got("request"),
        "every client message came inside a RELAY-FORW: {s}"
    );
}

/// The DHCPv6 tester against ISC Kea (`kea-dhcp6`, kernel UDP sockets:
/// Kea resolves each client's link-local address and the relay's address
/// by Neighbor Discovery, which the tester answers): direct clients get an
/// address and a prefix from the interface's subnet, relayed ones an
/// address from the subnet of the relay's link-address; every lease is in
/// Kea's lease file.
#[test]
fn dhcpv6_tester_against_kea_direct_and_relayed() {
    if !require_root() {
        return;
    }
    assert!(
        have("kea-dhcp6"),
        "kea-dhcp6 is needed (scripts/setup.sh installs kea-dhcp6-server)"
    );
    let scratch = Scratch::new("e2e-dhcp6-kea");
    let veth = Veth::new("qd9-tst", "02:00:00:00:d9:01", "qd9-srv0", Some("qd9-srv"));
    veth.enable_ipv6("qd9-srv0");
    ok("ip netns exec qd9-srv ip -6 addr add 2001:db8:30::1/64 dev qd9-srv0 nodad");
    ok("ip netns exec qd9-srv ip -6 route add 2001:db8:31::/64 dev qd9-srv0");
    let d = &scratch.0;
    let leases = d.join("kea-leases6.csv");
    let kea = format!(
        r#"{{ "Dhcp6": {{
  "interfaces-config": {{ "interfaces": [ "qd9-srv0" ] }},
  "lease-database": {{ "type": "memfile", "persist": true, "name": "{}", "lfc-interval": 0 }},
  "server-id": {{ "type": "EN", "enterprise-id": 2495, "identifier": "0102", "persist": false }},
  "preferred-lifetime": 1800, "valid-lifetime": 3600, "renew-timer": 900, "rebind-timer": 1440,
  "subnet6": [
    {{ "id": 1, "subnet": "2001:db8:30::/64", "interface": "qd9-srv0",
      "pools": [ {{ "pool": "2001:db8:30::1000 - 2001:db8:30::ffff" }} ],
      "pd-pools": [ {{ "prefix": "2001:db8:4000::", "prefix-len": 40, "delegated-len": 56 }} ] }},
    {{ "id": 2, "subnet": "2001:db8:31::/64",
      "pools": [ {{ "pool": "2001:db8:31::1000 - 2001:db8:31::ffff" }} ] }}
  ],
  "loggers": [ {{ "name": "kea-dhcp6", "severity": "WARN", "output_options": [ {{ "output": "{}" }} ] }} ]
}} }}"#,
        leases.display(),
        d.join("kea.log").display()
    );
    std::fs::write(d.join("kea.json"), kea).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", "qd9-srv", "kea-dhcp6", "-c"])
        .arg(d.join("kea.json"))
        .env("KEA_PIDFILE_DIR", d)
        .env("KEA_LOCKFILE_DIR", d)
        .stdout(std::fs::File::create(d.join("kea.out")).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("kea-dhcp6");
    let mut kea_proc = Proc(child);
    let up = wait_for(Duration::from_secs(10), || {
        assert!(
            matches!(kea_proc.0.try_wait(), Ok(None)),
            "kea-dhcp6 exited: {}",
            std::fs::read_to_string(d.join("kea.out")).unwrap_or_default()
        );
        leases.exists().then_some(())
    });
    assert!(up.is_some(), "kea-dhcp6 did not open its lease file");
    std::thread::sleep(Duration::from_millis(300));
    let retx = r#"
[dhcp_tester.v6.retransmit]
solicit_irt_ms = 500
solicit_mrt_ms = 2000
request_irt_ms = 500
request_mrt_ms = 2000
"#;
    // Kea's kernel resolves every client by ND: stay well inside the
    // kernel's default neighbor table (gc_thresh3 = 1024, shared by all
    // namespaces).
    // Every binding is extended 200 ms after it is made: the direct
    // clients RENEW, the relayed ones REBIND (no Server ID, as at T2).
    let direct = tester6_config(
        "qd9-tst",
        "qs-e2e-dhcp6-kea1",
        300,
        "02:60:00:00:00:00",
        &format!("ia_pd = true\n{retx}"),
    )
    .replace(
        "concurrency = 128",
        "concurrency = 128\nrenew_after_ms = 200",
    );
    let (v, logs) = run_tester(d, &direct, Duration::from_secs(60));
    check_report(&v, 300);
    assert_eq!(v["delegated_prefixes"].as_u64(), Some(300), "{v}");
    assert_eq!(v["counters"]["renew_ack"].as_u64(), Some(300), "{v}");
    assert!(
        v["io"]["nd_adverts"].as_u64().unwrap() >= 1,
        "Kea resolved clients: {v}\n{logs}"
    );
    let relayed = tester6_config(
        "qd9-tst",
        "qs-e2e-dhcp6-kea2",
        200,
        "02:61:00:00:00:00",
        &format!(
            r#"extend = "rebind"
{retx}
[dhcp_tester.v6.relay]
link_address = "2001:db8:31::1"
interface_id = "olt7/port-{{index}}"
remote_id = "qsplice-kea"
"#
        ),
    );
    let relayed = relayed.replace(
        "concurrency = 128",
        "concurrency = 128\nrenew_after_ms = 200",
    );
    let (r, logs) = run_tester(d, &relayed, Duration::from_secs(60));
    check_report(&r, 200);
    let c = &r["counters"];
    assert_eq!(
        (c["renew_sent"].as_u64(), c["rebind_ack"].as_u64()),
        (Some(0), Some(200)),
        "relayed clients REBIND: {r}\n{logs}"
    );
    assert_eq!(
        r["counters"]["option82_mismatch"].as_u64(),
        Some(0),
        "{r}\n{logs}"
    );
    drop(kea_proc);
    // Kea's lease file: address,duid,valid_lifetime,expire,subnet_id,
    // pref_lifetime,lease_type,iaid,prefix_len,… (lease_type 0 = IA_NA,
    // 2 = IA_PD); the last line of an address wins.
    let text = std::fs::read_to_string(&leases).unwrap();
    let mut last = std::collections::BTreeMap::new();
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        if f.len() > 8 {
            last.insert(
                f[0].to_string(),
                (f[2].to_string(), f[4].to_string(), f[6].to_string()),
            );
        }
    }
    let count = |pre: &str, subnet: &str, kind: &str| {
        last.iter()
            .filter(|(a, (valid, s, k))| {
                a.starts_with(pre) && s == subnet && k == kind && valid != "0"
            })
            .count()
    };
    assert_eq!(
        count("2001:db8:30::", "1", "0"),
        300,
        "direct addresses:\n{text}"
    );
    assert_eq!(
        count("2001:db8:40", "1", "2"),
        300,
        "direct prefixes:\n{text}"
    );
    assert_eq!(
        count("2001:db8:31::", "2", "0"),
        200,
        "relayed addresses:\n{text}"
    );
}

/// Hand-made malformed requests (tests/tools/send_dhcp_malformed.py):
/// each is counted under its reason in the server's JSON, none is
/// answered, and the server keeps serving (udhcpc gets a lease after).
#[test]
fn malformed_requests_are_counted_by_reason() {
    if !require_root() {
        return;
    }
    let scratch = Scratch::new("e2e-dhcp-bad");
    let _veth = Veth::new("qd6-srv", "02:00:00:00:d6:01", "qd6-cli0", Some("qd6-cli"));
    let (mut app, json) = plain_server(&scratch.0, "qd6-srv", "qs-e2e-dhcp-bad", 60);
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/send_dhcp_malformed.py");
    let o = sh(&format!(
        "ip netns exec qd6-cli python3 {} qd6-cli0 5",
        tool.display()
    ));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sent: Vec<(String, u64)> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect();
    assert_eq!(sent.len(), 6, "{sent:?}");
    let want: u64 = sent.iter().map(|x| x.1).sum();
    let v = wait_for(Duration::from_secs(10), || {
        let v = read_json(&json)?;
        let rejected: u64 = sent
            .iter()
            .filter_map(|(k, _)| v["server"]["rejects"][k].as_u64())
            .sum();
        (rejected >= want).then_some(v)
    })
    .unwrap_or_else(|| panic!("the server did not count {want} requests\n{}", app.logs()));
    for (reason, n) in &sent {
        assert_eq!(
            v["server"]["rejects"][reason].as_u64(),
            Some(*n),
            "{reason}: {v}"
        );
    }
    assert_eq!(server_counter(&v, "offer_sent"), 0, "{v}");
    let o = sh("ip netns exec qd6-cli timeout 30 udhcpc -i qd6-cli0 -n -q -t 5 -T 2 -s /bin/true");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success() && text.contains("lease of 10.30."),
        "udhcpc: {text}\n{}",
        app.logs()
    );
    assert!(
        app.stop(Duration::from_secs(10))
            .is_some_and(|s| s.success()),
        "{}",
        app.logs()
    );
}
