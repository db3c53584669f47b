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
    std::fs::write(&cfg_path, demo_config(&topo, "")).unwrap();
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

    // Hostile input: malformed frames of every kind, then ping again.
    let cli_if = format!("{}-cli0", topo.prefix);
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
    for kind in &kinds {
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
