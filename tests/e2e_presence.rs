//! End-to-end: the appliance on DPDK `net_af_packet` ports bound to veths of
//! a namespace topology answers ARP and ping for its VIP, resolves the
//! backends by ARP, and counts malformed frames by reason without failing.

mod common;

use std::time::Duration;

use common::*;

fn counter(report: &serde_json::Value, name: &str) -> u64 {
    report["total"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("counter {name} missing in {report}"))
}

#[test]
fn vip_answers_arp_and_ping_and_counts_malformed_frames() {
    if !require_root() {
        return;
    }
    let topo = Topology::up("qp", 2);
    let scratch = Scratch::new("e2e-presence");
    let cfg_path = scratch.0.join("qsplice.toml");
    // The client port also has an IPv6 address (NDP and ICMPv6 echo).
    let cfg = demo_config(&topo, "").replacen(
        "addresses = [\"10.10.1.1/24\"]",
        "addresses = [\"10.10.1.1/24\", \"2001:db8:1::1/64\"]",
        1,
    );
    assert!(cfg.contains("2001:db8:1::1/64"));
    std::fs::write(&cfg_path, cfg).unwrap();
    let json = scratch.0.join("stats.json");
    let mut app = Appliance::spawn(
        &scratch.0,
        &[
            "run",
            "--config",
            cfg_path.to_str().unwrap(),
            "--duration",
            "60",
            "--stats-json",
            json.to_str().unwrap(),
            "--live-json",
        ],
    );

    let read = || -> Option<serde_json::Value> {
        serde_json::from_slice(&std::fs::read(&json).ok()?).ok()
    };
    // The backends are configured neighbours: the appliance resolves them by ARP.
    let backends: Vec<String> = topo
        .var("BACKENDS")
        .split_whitespace()
        .map(String::from)
        .collect();
    let resolved = wait_for(Duration::from_secs(20), || {
        assert!(app.is_running(), "qsplice exited early\n{}", app.logs());
        let r = read()?;
        let ips: Vec<String> = r["neighbors"]
            .as_array()?
            .iter()
            .filter_map(|n| n["ip"].as_str().map(String::from))
            .collect();
        backends.iter().all(|b| ips.contains(b)).then_some(r)
    });
    let r = resolved.unwrap_or_else(|| panic!("backends not resolved by ARP\n{}", app.logs()));
    let vip_mac = r["ports"][0]["mac"].as_str().unwrap().to_string();
    assert!(
        counter(&r, "arp_gratuitous_sent") >= 2,
        "gratuitous ARP for both addresses"
    );

    // The client resolves the VIP by ARP and pings it.
    let client = topo.var("CLIENT_NS").to_string();
    let ping = topo.exec(
        &client,
        &["ping", "-c", "5", "-i", "0.2", "-W", "2", "10.10.1.1"],
    );
    assert!(
        ping.status.success(),
        "ping VIP failed: {}\n{}",
        String::from_utf8_lossy(&ping.stdout),
        app.logs()
    );
    let neigh = topo.exec(&client, &["ip", "neigh", "show", "10.10.1.1"]);
    let neigh = String::from_utf8_lossy(&neigh.stdout).to_lowercase();
    assert!(
        neigh.contains(&vip_mac),
        "client's ARP entry for the VIP ({neigh}) is the DPDK port's MAC {vip_mac}"
    );

    // IPv6: the client resolves the port's address by NDP and pings it.
    let cli_if = format!("{}-cli0", topo.prefix);
    for k in [
        "net.ipv6.conf.all.disable_ipv6=0".to_string(),
        format!("net.ipv6.conf.{cli_if}.disable_ipv6=0"),
        format!("net.ipv6.conf.{cli_if}.accept_ra=0"),
    ] {
        topo.exec(&client, &["sysctl", "-qw", &k]);
    }
    topo.exec(
        &client,
        &[
            "ip",
            "-6",
            "addr",
            "add",
            "2001:db8:1::2/64",
            "dev",
            &cli_if,
            "nodad",
        ],
    );
    let ping6 = topo.exec(
        &client,
        &[
            "ping",
            "-6",
            "-c",
            "5",
            "-i",
            "0.2",
            "-W",
            "2",
            "2001:db8:1::1",
        ],
    );
    assert!(
        ping6.status.success(),
        "ping -6 failed: {}{}\n{}",
        String::from_utf8_lossy(&ping6.stdout),
        String::from_utf8_lossy(&ping6.stderr),
        app.logs()
    );
    let neigh6 = topo.exec(&client, &["ip", "-6", "neigh", "show", "2001:db8:1::1"]);
    let neigh6 = String::from_utf8_lossy(&neigh6.stdout).to_lowercase();
    assert!(
        neigh6.contains(&vip_mac),
        "client's neighbor entry for 2001:db8:1::1 ({neigh6}) is the DPDK port's MAC {vip_mac}"
    );
    // The appliance learned the client's IPv6 address from its
    // solicitation (NDP), like ARP: it is in the report's neighbours.
    let learned6 = wait_for(Duration::from_secs(10), || {
        let r = read()?;
        r["neighbors"]
            .as_array()?
            .iter()
            .any(|n| n["ip"] == "2001:db8:1::2")
            .then_some(())
    });
    assert!(
        learned6.is_some(),
        "the client's IPv6 address not among the neighbours: {}",
        read()
            .map(|r| r["neighbors"].to_string())
            .unwrap_or_default()
    );
    let send6 = topo.exec(
        &client,
        &[
            repo_root()
                .join("tests/tools/send_frames.py")
                .to_str()
                .unwrap(),
            "--v6",
            &cli_if,
            &vip_mac,
            "2001:db8:1::2",
            "2001:db8:1::1",
            "3",
        ],
    );
    assert!(
        send6.status.success(),
        "send_frames.py --v6: {}",
        String::from_utf8_lossy(&send6.stderr)
    );
    let kinds6: Vec<String> = String::from_utf8_lossy(&send6.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    assert!(kinds6.len() >= 10, "{kinds6:?}");

    // Hostile input: malformed frames of every kind, then ping again.
    let send = topo.exec(
        &client,
        &[
            repo_root()
                .join("tests/tools/send_frames.py")
                .to_str()
                .unwrap(),
            &cli_if,
            &vip_mac,
            "10.10.1.2",
            "10.10.1.1",
            "3",
        ],
    );
    assert!(
        send.status.success(),
        "send_frames.py: {}",
        String::from_utf8_lossy(&send.stderr)
    );
    let kinds: Vec<String> = String::from_utf8_lossy(&send.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    assert!(kinds.len() >= 8);
    let ping = topo.exec(
        &client,
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.10.1.1"],
    );
    assert!(
        ping.status.success(),
        "VIP stops answering after malformed input\n{}",
        app.logs()
    );
    let ping6 = topo.exec(
        &client,
        &[
            "ping",
            "-6",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            "2001:db8:1::1",
        ],
    );
    assert!(
        ping6.status.success(),
        "the IPv6 address stops answering after malformed input\n{}",
        app.logs()
    );

    // Let the live report catch up, then stop and read the final report.
    std::thread::sleep(Duration::from_millis(500));
    let status = app
        .stop(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("qsplice did not stop on SIGTERM\n{}", app.logs()));
    assert!(
        status.success(),
        "qsplice exited with {status}\n{}",
        app.logs()
    );
    let r = read().expect("final report");

    assert!(counter(&r, "icmp_echo_replied") >= 8, "{r}");
    assert!(counter(&r, "arp_requests_answered") >= 1, "{r}");
    assert!(counter(&r, "arp_replies_received") >= 2, "{r}");
    assert!(counter(&r, "icmpv6_echo_replied") >= 8, "{r}");
    assert!(counter(&r, "ndp_solicits_answered") >= 1, "{r}");
    assert!(
        counter(&r, "ndp_adverts_sent") >= 2,
        "address and link-local announced: {r}"
    );
    for kind in kinds.iter().chain(&kinds6) {
        let name = format!("drop_{kind}");
        assert!(
            counter(&r, &name) >= 3,
            "malformed frames of kind {kind} counted under {name}: {r}"
        );
    }
    // Every mbuf is back in its pool when the workers stop — except, on
    // AF_XDP, the ones each queue's XSK fill ring holds for the kernel
    // (2,048 per queue, lent for the port's life).
    let lent = if e2e_pmd() == "af_xdp" { 2 * 2048 } else { 0 };
    for pool in r["mempools"].as_array().unwrap() {
        let (free, size) = (pool[1].as_u64().unwrap(), pool[2].as_u64().unwrap());
        assert!(free + 64 + lent >= size, "mempool leak: {free}/{size} free");
    }
}
