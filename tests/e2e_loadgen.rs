//! End to end: `qsplice loadgen` (issue 16, first slice) on the demo
//! topology, over the appliance's own TCP on an af_packet port.
//!
//! 1. Clients: 400 connections × 5 keep-alive requests from the backend
//!    port to nginx b1 — every response a 200 with nginx's body, every
//!    connection closed cleanly; then again with 1 % loss each way on
//!    b1's link (nftables in b1's namespace).
//! 2. Server: `qsplice loadgen` answers on the client port; curl (HTTP/1.1
//!    keep-alive, several URLs on one connection) and a burst of separate
//!    curl connections from the client namespace get the configured body,
//!    byte exact.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

fn config(topo: &Topology, dir: &Path, name: &str, section: &str) -> PathBuf {
    let cfg = format!("{}\n{section}\n", demo_config(topo, ""));
    let p = dir.join(name);
    std::fs::write(&p, cfg).unwrap();
    p
}

/// Runs `qsplice loadgen` to its end; returns (exit ok, its JSON report).
fn run_loadgen(
    dir: &Path,
    cfg: &Path,
    json: &Path,
    secs: u64,
) -> (bool, serde_json::Value, String) {
    let mut app = Appliance::spawn(
        dir,
        &[
            "loadgen",
            "--config",
            cfg.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let ended = wait_for(Duration::from_secs(secs), || {
        app.child.try_wait().ok().flatten()
    });
    let logs = app.logs();
    let ok = ended.is_some_and(|s| s.success());
    let v = std::fs::read_to_string(json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    (ok, v, logs)
}

fn loss(ns: &str, on: bool) {
    let script = if on {
        "add table inet qsloss\n\
         add chain inet qsloss in { type filter hook input priority 0 ; }\n\
         add chain inet qsloss out { type filter hook output priority 0 ; }\n\
         add rule inet qsloss in meta l4proto tcp numgen random mod 100 < 1 drop\n\
         add rule inet qsloss out meta l4proto tcp numgen random mod 100 < 1 drop\n"
    } else {
        "delete table inet qsloss\n"
    };
    let st = Command::new("sh")
        .args([
            "-c",
            &format!("printf '{script}' | ip netns exec {ns} nft -f -"),
        ])
        .status()
        .unwrap();
    assert!(st.success() || !on, "nft loss rules in {ns}");
}

#[test]
fn loadgen_clients_against_nginx_and_curl_against_the_loadgen_server() {
    if !require_root() {
        return;
    }
    let topo = Topology::up_with("qlg", 1, &[]);
    let scratch = Scratch::new("e2e-loadgen");
    let dir = scratch.0.clone();
    let body = b"backend b1\n".len() as u64;

    // 1. Clients against nginx b1, clean then lossy.
    let section = r#"[loadgen]
role = "client"
port = "backend"
target = "10.10.2.11:80"
connections = 400
concurrency = 32
requests = 5
path = "/"
timeout_s = 60
"#;
    let cfg = config(&topo, &dir, "client.toml", section);
    let (ok, v, logs) = run_loadgen(&dir, &cfg, &dir.join("client.json"), 90);
    assert!(ok, "loadgen client run\n{v}\n{logs}");
    let g = |k: &str| v[k].as_u64().unwrap_or(u64::MAX);
    assert_eq!(
        (g("opened"), g("connected"), g("completed"), g("failed")),
        (400, 400, 400, 0),
        "{v}"
    );
    assert_eq!(
        (g("responses"), g("status_2xx"), g("bad_responses")),
        (2000, 2000, 0),
        "{v}"
    );
    assert_eq!(g("body_bytes"), 2000 * body, "{v}");
    eprintln!(
        "loadgen → nginx: {:.0} connections/s, {:.0} requests/s, response mean {:.0} µs",
        v["connections_per_s"].as_f64().unwrap_or(0.0),
        v["requests_per_s"].as_f64().unwrap_or(0.0),
        v["response_us_mean"].as_f64().unwrap_or(0.0)
    );
    let b1 = topo
        .var("BACKEND_NS")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    loss(&b1, true);
    let cfg = config(
        &topo,
        &dir,
        "client-loss.toml",
        &section.replace("connections = 400", "connections = 200"),
    );
    let (ok, v, logs) = run_loadgen(&dir, &cfg, &dir.join("client-loss.json"), 90);
    loss(&b1, false);
    let g = |k: &str| v[k].as_u64().unwrap_or(u64::MAX);
    assert!(ok, "loadgen client run under loss\n{v}\n{logs}");
    assert_eq!((g("completed"), g("failed")), (200, 0), "{v}");
    assert_eq!((g("responses"), g("status_2xx")), (1000, 1000), "{v}");
    assert_eq!(g("body_bytes"), 1000 * body, "{v}");

    // 2. The loadgen server on the client port; curl from the client
    //    namespace.
    let section = r#"[loadgen]
role = "server"
port = "client"
listen = "10.10.1.1:80"
response_bytes = 4321
timeout_s = 60
"#;
    let cfg = config(&topo, &dir, "server.toml", section);
    let json = dir.join("server.json");
    let mut app = Appliance::spawn(
        &dir,
        &[
            "loadgen",
            "--config",
            cfg.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let ns = topo.var("CLIENT_NS").to_string();
    let want: Vec<u8> = (0..4321u32).map(|i| b'a' + (i % 26) as u8).collect();
    let served = wait_for(Duration::from_secs(10), || {
        let o = topo.exec(&ns, &["curl", "-sf", "-m", "3", "http://10.10.1.1/"]);
        (o.status.success() && o.stdout == want).then_some(())
    });
    assert!(
        served.is_some(),
        "curl gets the loadgen server's body\n{}",
        app.logs()
    );
    // Three requests on one keep-alive connection, then 50 connections.
    let o = topo.exec(
        &ns,
        &[
            "curl",
            "-sf",
            "-m",
            "10",
            "-w",
            "%{num_connects} ",
            "http://10.10.1.1/a",
            "http://10.10.1.1/b",
            "http://10.10.1.1/c",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
        ],
    );
    let w = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "keep-alive curl: {w}\n{}", app.logs());
    assert_eq!(
        w.split_whitespace().collect::<Vec<_>>(),
        ["1", "0", "0"],
        "one connection for three requests"
    );
    let r = http_loop(&ns, "http://10.10.1.1/", 50, 5, 60);
    assert_eq!(r.iter().filter(|(c, _)| c == "200").count(), 50, "{r:?}");
    let _ = app.stop(Duration::from_secs(10));
    let v = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .unwrap_or_default();
    let g = |k: &str| v[k].as_u64().unwrap_or(0);
    assert!(g("responses") >= 54, "requests answered: {v}");
    assert!(
        g("completed") >= 51,
        "connections closed cleanly: {v}\n{}",
        app.logs()
    );
}
