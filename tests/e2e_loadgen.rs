//! End to end: `qsplice loadgen` on the demo
//! topology, over the appliance's own TCP on an af_packet port.
//!
//! 1. Clients: 400 connections × 5 keep-alive requests from the backend
//!    port to nginx b1 — every response a 200 with nginx's body, every
//!    connection closed cleanly; then again with 1 % loss each way on
//!    b1's link (nftables in b1's namespace). Latency percentiles, the
//!    time series and its `--plot` PNG are checked; then 600 connections
//!    paced at 400/s from two source addresses (nginx's namespace counts
//!    the SYNs of each).
//! 2. Server: `qsplice loadgen` answers on the client port; curl (HTTP/1.1
//!    keep-alive, several URLs on one connection) and a burst of separate
//!    curl connections from the client namespace get the configured body,
//!    byte exact, and a configured path its own size; then chunked and close-delimited bodies (curl decodes
//!    them; keep-alive with chunked, one connection per URL with close).
//!    Client and server also run on two worker lcores (two queue pairs;
//!    the server also under wrk, keep-alive and `Connection: close`):
//!    segments the kernel's fanout hands to the other lcore are steered
//!    to their owner.
//! 3. HTTPS: loadgen clients to nginx :443 (CA verified; TLS 1.3 with half
//!    the connections resuming; TLS 1.2 resuming by session; an untrusted
//!    CA fails every handshake); the loadgen TLS server answers curl and
//!    the Go client with X25519MLKEM768, tickets resuming; loadgen clients
//!    against Go's crypto/tls server (`tests/tools/tlsserver`: the hybrid
//!    group on every connection, resumptions seen by both sides) and
//!    against qsplice's own TLS termination (`qsplice lb`), X25519MLKEM768
//!    on every handshake, half resumed by ticket.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// The tests of this file take turns: two DPDK af_packet processes
/// started at the same moment can pick the same PACKET_FANOUT group id
/// (DPDK 22.11 derives it from the pid and the ifindex, both consecutive
/// here), and the second one's port probe fails.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

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
    run_loadgen_with(dir, cfg, json, secs, &[])
}

fn run_loadgen_with(
    dir: &Path,
    cfg: &Path,
    json: &Path,
    secs: u64,
    extra: &[&str],
) -> (bool, serde_json::Value, String) {
    let mut args = vec![
        "loadgen",
        "--config",
        cfg.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut app = Appliance::spawn(dir, &args);
    let ended = wait_for(Duration::from_secs(secs), || {
        app.child.try_wait().ok().flatten()
    });
    let logs = app.logs();
    let ok = ended.is_some_and(|s| s.success());
    let v = stats(json).unwrap_or_default();
    (ok, v, logs)
}

/// `qsplice loadgen --config cfg --json json` run to completion inside
/// namespace `ns` (bounded: 90 s).
fn loadgen_in_ns(ns: &str, cfg: &Path, json: &Path) -> std::process::Output {
    Command::new("timeout")
        .args(["90", "ip", "netns", "exec", ns])
        .args([env!("CARGO_BIN_EXE_qsplice"), "loadgen", "--config"])
        .arg(cfg)
        .arg("--json")
        .arg(json)
        .current_dir(repo_root())
        .output()
        .unwrap()
}

/// curl fetches three URLs of the server on 10.10.1.1 from namespace
/// `ns`: (success, the connections it opened for each).
fn connects_for_three(topo: &Topology, ns: &str) -> (bool, Vec<String>) {
    let o = topo.exec(
        ns,
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
    let w = String::from_utf8_lossy(&o.stdout);
    (
        o.status.success(),
        w.split_whitespace().map(str::to_string).collect(),
    )
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
    let _turn = serial();
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
    let png = dir.join("client.png");
    let (ok, v, logs) = run_loadgen_with(
        &dir,
        &cfg,
        &dir.join("client.json"),
        90,
        &["--plot", png.to_str().unwrap()],
    );
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
    // Throughput each way: every request went out, every response (heads
    // and bodies) came in; the memory an open connection holds.
    assert!(g("tx_bytes") >= 2000 * 40, "{v}");
    assert!(g("rx_bytes") >= 2000 * (body + 100), "{v}");
    assert!(g("connection_record_bytes") <= 2048, "{v}");
    assert_eq!(g("connection_buffer_bytes"), 2 * 65536, "{v}");
    // Latency distributions: one connect time per connection, one
    // first-byte and one response time per response, ordered percentiles.
    let lat = |stage: &str, k: &str| v["latency_us"][stage][k].as_u64().unwrap_or(u64::MAX);
    assert_eq!(lat("connect", "count"), 400, "{v}");
    assert_eq!(
        (lat("first_byte", "count"), lat("response", "count")),
        (2000, 2000),
        "{v}"
    );
    for stage in ["connect", "first_byte", "response"] {
        let p: Vec<u64> = ["p50", "p90", "p99", "p999", "max"]
            .iter()
            .map(|k| lat(stage, k))
            .collect();
        assert!(
            p[0] > 0 && p.windows(2).all(|w| w[0] <= w[1]),
            "{stage}: {p:?}\n{v}"
        );
    }
    assert!(lat("first_byte", "p50") <= lat("response", "p50"), "{v}");
    let series = v["series"].as_array().cloned().unwrap_or_default();
    let served: f64 = series
        .windows(2)
        .map(|w| {
            let dt = w[1]["t_s"].as_f64().unwrap_or(0.0) - w[0]["t_s"].as_f64().unwrap_or(0.0);
            w[1]["requests_per_s"].as_f64().unwrap_or(0.0) * dt
        })
        .sum::<f64>()
        + series.first().map_or(0.0, |x| {
            x["requests_per_s"].as_f64().unwrap_or(0.0) * x["t_s"].as_f64().unwrap_or(0.0)
        });
    assert!(
        (served - 2000.0).abs() < 5.0,
        "the time series adds up to the responses: {served}\n{v}"
    );
    let png_bytes = std::fs::read(&png).expect("--plot wrote no file");
    assert_eq!(&png_bytes[1..4], b"PNG");
    eprintln!(
        "loadgen → nginx: {:.0} connections/s, {:.0} requests/s, response p50 {} µs p99 {} µs",
        v["connections_per_s"].as_f64().unwrap_or(0.0),
        v["requests_per_s"].as_f64().unwrap_or(0.0),
        lat("response", "p50"),
        lat("response", "p99")
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

    // 1b. Two source addresses at a paced rate: 600 connections at 400/s
    //     take ≈ 1.5 s, and nginx's namespace sees the SYNs of both
    //     addresses, half each (nftables counters).
    let b1_counters = "add table inet qssrc\n\
         add chain inet qssrc in { type filter hook input priority 0 ; }\n\
         add rule inet qssrc in ip saddr 10.10.2.1 tcp flags & (syn|ack) == syn counter\n\
         add rule inet qssrc in ip saddr 10.10.2.201 tcp flags & (syn|ack) == syn counter\n";
    let st = Command::new("sh")
        .args([
            "-c",
            &format!("printf '{b1_counters}' | ip netns exec {b1} nft -f -"),
        ])
        .status()
        .unwrap();
    assert!(st.success(), "nft counters in {b1}");
    let two = format!(
        "{}\n{}\n",
        demo_config(&topo, "").replace(
            "addresses = [\"10.10.2.1/24\"]",
            "addresses = [\"10.10.2.1/24\", \"10.10.2.201/24\"]"
        ),
        section
            .replace("connections = 400", "connections = 600")
            .replace("requests = 5", "requests = 1\nsources = 2\nrate = 400")
    );
    let cfg = dir.join("client-rate.toml");
    std::fs::write(&cfg, two).unwrap();
    let (ok, v, logs) = run_loadgen(&dir, &cfg, &dir.join("client-rate.json"), 90);
    let counters = topo.exec(&b1, &["nft", "list", "table", "inet", "qssrc"]);
    let _ = Command::new("ip")
        .args([
            "netns", "exec", &b1, "nft", "delete", "table", "inet", "qssrc",
        ])
        .status();
    let g = |k: &str| v[k].as_u64().unwrap_or(u64::MAX);
    assert!(ok, "paced two-address run\n{v}\n{logs}");
    assert_eq!(
        (g("completed"), g("failed"), g("responses")),
        (600, 0, 600),
        "{v}"
    );
    let elapsed = v["elapsed_s"].as_f64().unwrap_or(0.0);
    assert!(
        (1.4..3.0).contains(&elapsed),
        "600 connections at 400/s took {elapsed} s\n{v}"
    );
    assert_eq!(g("rate_target"), 400, "{v}");
    let text = String::from_utf8_lossy(&counters.stdout).to_string();
    let syns: Vec<u64> = text
        .lines()
        .filter_map(|l| l.split("counter packets ").nth(1))
        .filter_map(|r| r.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(syns.len(), 2, "{text}");
    assert!(
        syns.iter().all(|&n| (300..=330).contains(&n)),
        "SYNs per source address {syns:?} (300 each, retransmissions aside)\n{text}"
    );

    // 1c. Two worker lcores (two af_packet queue pairs): each opens its
    //     share from its own source ports; the kernel's fanout hash
    //     hands many replies to the other lcore, which steers them to
    //     their owner.
    let two = format!(
        "{}\n{}\n",
        two_lcore_config(&topo),
        section.replace("requests = 5", "requests = 3")
    );
    let cfg = dir.join("client-two.toml");
    std::fs::write(&cfg, two).unwrap();
    let (ok, v, logs) = run_loadgen(&dir, &cfg, &dir.join("client-two.json"), 90);
    let g = |k: &str| v[k].as_u64().unwrap_or(u64::MAX);
    assert!(ok, "two-lcore client run\n{v}\n{logs}");
    assert_eq!(
        (g("lcores"), g("completed"), g("failed"), g("responses")),
        (2, 400, 0, 1200),
        "{v}"
    );
    assert_eq!(g("body_bytes"), 1200 * body, "{v}");
    assert!(g("steered") > 0 && g("steer_full") == 0, "{v}");
    assert_eq!(
        v["latency_us"]["connect"]["count"].as_u64(),
        Some(400),
        "{v}"
    );

    // 2. The loadgen server on the client port; curl from the client
    //    namespace.
    let section = r#"[loadgen]
role = "server"
port = "client"
listen = "10.10.1.1:80"
response_bytes = 4321
timeout_s = 60

[[loadgen.paths]]
path = "/big"
response_bytes = 300000
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
    // A path of its own: its body size (keep-alive with the default one).
    let o = topo.exec(
        &ns,
        &[
            "curl",
            "-sf",
            "-m",
            "5",
            "-w",
            "%{size_download} ",
            "-o",
            "/dev/null",
            "http://10.10.1.1/big?x=1",
            "-o",
            "/dev/null",
            "http://10.10.1.1/",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["300000", "4321"],
        "/big then /\n{}",
        app.logs()
    );
    // POST bodies (100 KB, bytes that look like requests) are read past:
    // one answer each, on one connection with a GET after them.
    let body_file = dir.join("post.bin");
    std::fs::write(
        &body_file,
        b"GET /big HTTP/1.1\r\n\r\n".repeat(100_000 / 23 + 1),
    )
    .unwrap();
    let data = format!("@{}", body_file.display());
    let o = topo.exec(
        &ns,
        &[
            "curl",
            "-sf",
            "-m",
            "10",
            "-w",
            "%{size_download}:%{num_connects} ",
            // (The server answers as soon as a head is read; it sends no
            // `100 Continue`, so curl must not wait for one.)
            "-H",
            "Expect:",
            "--data-binary",
            &data,
            "-o",
            "/dev/null",
            "http://10.10.1.1/up",
            "--data-binary",
            &data,
            "-o",
            "/dev/null",
            "http://10.10.1.1/up",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["4321:1", "4321:0"],
        "two POSTs on one connection\n{}",
        app.logs()
    );
    // Three requests on one keep-alive connection, then 50 connections.
    let (ok, w) = connects_for_three(&topo, &ns);
    assert!(ok, "keep-alive curl: {w:?}\n{}", app.logs());
    assert_eq!(w, ["1", "0", "0"], "one connection for three requests");
    let r = http_loop(&ns, "http://10.10.1.1/", 50, 5, 60);
    assert_eq!(r.iter().filter(|(c, _)| c == "200").count(), 50, "{r:?}");
    let _ = app.stop(Duration::from_secs(10));
    let v = stats(&json).unwrap_or_default();
    let g = |k: &str| v[k].as_u64().unwrap_or(0);
    assert!(g("responses") >= 58, "requests answered: {v}");
    assert!(
        g("completed") >= 51,
        "connections closed cleanly: {v}\n{}",
        app.logs()
    );

    // 2a. The server on two worker lcores: 100 curl connections (their
    //     source ports hash to either lcore, the kernel hands them to
    //     either queue) all get the body.
    let two = format!("{}\n{section}\n", two_lcore_config(&topo));
    let cfg = dir.join("server-two.toml");
    std::fs::write(&cfg, two).unwrap();
    let json = dir.join("server-two.json");
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
    let served = wait_for(Duration::from_secs(10), || {
        let o = topo.exec(&ns, &["curl", "-sf", "-m", "3", "http://10.10.1.1/"]);
        (o.status.success() && o.stdout == want).then_some(())
    });
    assert!(served.is_some(), "two-lcore server\n{}", app.logs());
    let r = http_loop(&ns, "http://10.10.1.1/", 100, 5, 60);
    assert_eq!(r.iter().filter(|(c, _)| c == "200").count(), 100, "{r:?}");
    // wrk, keep-alive and `Connection: close`: not one error.
    for close in [false, true] {
        let mut args = vec!["wrk", "-t2", "-c32", "-d2s"];
        if close {
            args.extend(["-H", "Connection: close"]);
        }
        args.push("http://10.10.1.1/");
        let o = topo.exec(&ns, &args);
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(text.contains("requests in"), "{text}\n{}", app.logs());
        assert!(
            !text.contains("Socket errors") && !text.contains("Non-2xx"),
            "wrk (close: {close}) against the two-lcore server\n{text}"
        );
    }
    let _ = app.stop(Duration::from_secs(10));
    let v = stats(&json).unwrap_or_default();
    let g = |k: &str| v[k].as_u64().unwrap_or(0);
    assert!(g("responses") >= 101 && g("completed") >= 101, "{v}");
    assert!(g("steered") > 0 && g("steer_full") == 0, "{v}");

    // 2b. Chunked and close-delimited bodies: curl decodes them byte
    //     exact; a chunked server keeps the connection, a close one does
    //     not (three URLs: one connection, then three).
    for (mode, connects) in [("chunked", ["1", "0", "0"]), ("close", ["1", "1", "1"])] {
        let cfg = config(
            &topo,
            &dir,
            &format!("server-{mode}.toml"),
            &section.replace(
                "response_bytes = 4321",
                &format!("response_bytes = 4321\nresponse_mode = \"{mode}\"\nchunk_bytes = 1000"),
            ),
        );
        let mut app = Appliance::spawn(&dir, &["loadgen", "--config", cfg.to_str().unwrap()]);
        let served = wait_for(Duration::from_secs(10), || {
            let o = topo.exec(
                &ns,
                &["curl", "-sf", "-m", "3", "-D", "-", "http://10.10.1.1/"],
            );
            let out = String::from_utf8_lossy(&o.stdout).to_string();
            (o.status.success() && o.stdout.ends_with(&want)).then_some(out)
        });
        let head = served.unwrap_or_else(|| panic!("curl gets the {mode} body\n{}", app.logs()));
        let framing = if mode == "chunked" {
            "transfer-encoding: chunked"
        } else {
            "connection: close"
        };
        assert!(
            head.to_ascii_lowercase().contains(framing),
            "{mode}: {head}"
        );
        let (ok, w) = connects_for_three(&topo, &ns);
        assert!(ok, "{mode} curl: {w:?}\n{}", app.logs());
        assert_eq!(w, connects, "{mode}: connections for three URLs");
        let _ = app.stop(Duration::from_secs(10));
    }
}

#[test]
fn loadgen_https_client_against_nginx_and_tls_clients_against_the_loadgen_server() {
    if !require_root() {
        return;
    }
    let _turn = serial();
    let topo = Topology::up_with("qlt", 1, &[]);
    let scratch = Scratch::new("e2e-loadgen-tls");
    let dir = scratch.0.clone();
    let ca = format!("{}/shared/ca.pem", topo.var("STATE_DIR"));

    // 1. HTTPS clients to nginx b1:443 (its lab CA verified, SNI
    //    vip.test): TLS 1.3 with the default groups (nginx's OpenSSL has
    //    no ML-KEM: X25519 is agreed), half the connections resuming.
    let section = format!(
        r#"[loadgen]
role = "client"
port = "backend"
target = "10.10.2.11:443"
connections = 100
concurrency = 16
requests = 3
path = "/tls"
timeout_s = 60
tls = true
tls_ca = "{ca}"
tls_sni = "vip.test"
tls_resume_pct = 50
"#
    );
    let cfg = config(&topo, &dir, "https.toml", &section);
    let (ok, v, logs) = run_loadgen(&dir, &cfg, &dir.join("https.json"), 90);
    let g = |k: &str| v[k].as_u64().unwrap_or(u64::MAX);
    assert!(ok, "loadgen HTTPS run\n{v}\n{logs}");
    assert_eq!(
        (g("completed"), g("failed"), g("tls_failed")),
        (100, 0, 0),
        "{v}"
    );
    assert_eq!((g("responses"), g("status_2xx")), (300, 300), "{v}");
    // "backend b1 reused r|. TLSv1.3\n", 28 bytes each.
    assert_eq!(g("body_bytes"), 300 * 28, "{v}");
    assert_eq!(
        (g("tls_handshakes"), g("tls13"), g("tls_pq")),
        (100, 100, 0),
        "{v}"
    );
    assert!((30..=50).contains(&g("tls_resumed")), "{v}");
    assert_eq!(
        v["latency_us"]["tls_handshake"]["count"].as_u64(),
        Some(100),
        "{v}"
    );
    eprintln!(
        "loadgen HTTPS → nginx: {:.0} connections/s, TLS handshake p50 {} µs (resumed {} of 100)",
        v["connections_per_s"].as_f64().unwrap_or(0.0),
        v["latency_us"]["tls_handshake"]["p50"],
        g("tls_resumed")
    );
    // TLS 1.2 only, every connection offering its session: resumed by
    // session ID / ticket after the first.
    let cfg = config(
        &topo,
        &dir,
        "https12.toml",
        &section
            .replace("connections = 100", "connections = 40")
            .replace("concurrency = 16", "concurrency = 1")
            .replace(
                "tls_resume_pct = 50",
                "tls_resume_pct = 100\ntls_versions = [\"1.2\"]",
            ),
    );
    let (ok, v, logs) = run_loadgen(&dir, &cfg, &dir.join("https12.json"), 90);
    let g = |k: &str| v[k].as_u64().unwrap_or(u64::MAX);
    assert!(ok, "loadgen TLS 1.2 run\n{v}\n{logs}");
    assert_eq!((g("completed"), g("responses")), (40, 120), "{v}");
    assert_eq!(
        (g("tls_handshakes"), g("tls13"), g("tls_resumed")),
        (40, 0, 39),
        "{v}"
    );
    // A CA nginx's certificate does not chain to: every handshake fails,
    // counted, and the run says so (non-zero exit).
    let other = dir.join("other-ca.pem");
    std::fs::write(
        &other,
        qsplice_tls::certgen::LabCa::new().unwrap().cert_pem(),
    )
    .unwrap();
    let cfg = config(
        &topo,
        &dir,
        "https-bad.toml",
        &section
            .replace("connections = 100", "connections = 5")
            .replace(&ca, other.to_str().unwrap()),
    );
    let (ok, v, _) = run_loadgen(&dir, &cfg, &dir.join("https-bad.json"), 60);
    assert!(!ok, "a failed TLS run exits non-zero\n{v}");
    assert_eq!(v["tls_failed"].as_u64(), Some(5), "{v}");

    // 2. The loadgen server with TLS on the client port: curl (OpenSSL)
    //    and the Go client with X25519MLKEM768 and tickets.
    let lab = qsplice_tls::certgen::LabCa::new().unwrap();
    let leaf = lab
        .leaf(qsplice_tls::certgen::KeyAlg::EcdsaP256, &["vip.test"])
        .unwrap();
    let (cert, key, lab_ca) = (
        dir.join("srv.pem"),
        dir.join("srv.key"),
        dir.join("lab-ca.pem"),
    );
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    std::fs::write(&lab_ca, lab.cert_pem()).unwrap();
    let section = format!(
        r#"[loadgen]
role = "server"
port = "client"
listen = "10.10.1.1:443"
response_bytes = 5000
timeout_s = 60
tls = true
tls_cert = "{}"
tls_key = "{}"
"#,
        cert.display(),
        key.display()
    );
    let cfg = config(&topo, &dir, "tls-server.toml", &section);
    let json = dir.join("tls-server.json");
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
    let want: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let served = wait_for(Duration::from_secs(10), || {
        let o = topo.exec(
            &ns,
            &[
                "curl",
                "-sf",
                "-m",
                "3",
                "--cacert",
                lab_ca.to_str().unwrap(),
                "--resolve",
                "vip.test:443:10.10.1.1",
                "https://vip.test/",
            ],
        );
        (o.status.success() && o.stdout == want).then_some(())
    });
    assert!(
        served.is_some(),
        "curl over TLS gets the loadgen server's body\n{}",
        app.logs()
    );
    let mut pq = 0;
    if let Some(bin) = go_client(&dir) {
        let r = go_tls_run(
            &ns,
            &bin,
            &lab_ca,
            "10.10.1.1:443",
            &["-n", "4", "-groups", "X25519MLKEM768"],
        );
        assert_eq!(r.len(), 4, "{r:?}\n{}", app.logs());
        for (i, x) in r.iter().enumerate() {
            assert_eq!(x["status"], 200, "{x}");
            assert_eq!(x["bytes"], 5000, "{x}");
            assert_eq!(x["version"], "TLS 1.3", "{x}");
            assert_eq!(x["group"], "X25519MLKEM768", "{x}");
            assert_eq!(x["resumed"], i > 0, "a ticket resumes the next: {x}");
        }
        pq = 4;
    } else {
        missing_pq_client("the Go toolchain (tests/tools/tlsclient)");
    }
    let _ = app.stop(Duration::from_secs(10));
    let v = stats(&json).unwrap_or_default();
    let g = |k: &str| v[k].as_u64().unwrap_or(0);
    assert!(g("tls_handshakes") > pq, "{v}");
    assert_eq!(g("tls_pq"), pq, "{v}");
    assert!(g("responses") > pq, "{v}");

    // 2b. The loadgen HTTPS client against another TLS implementation's
    //     server: Go's crypto/tls (tests/tools/tlsserver) in b1's
    //     namespace, X25519MLKEM768 only, tickets on. Every connection
    //     agrees the hybrid group on both sides, half resume (Go says so
    //     per request), every body arrives whole.
    match go_tool(&dir, "tlsserver") {
        Some(bin) => {
            let b1 = topo
                .var("BACKEND_NS")
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            let out = dir.join("go-server.out");
            let child = Command::new("ip")
                .args(["netns", "exec", &b1])
                .arg(&bin)
                .args(["-addr", "10.10.2.11:8444", "-body-bytes", "777", "-d", "90"])
                .arg("-cert")
                .arg(&cert)
                .arg("-key")
                .arg(&key)
                .stdout(std::fs::File::create(&out).unwrap())
                .stderr(std::fs::File::create(dir.join("go-server.err")).unwrap())
                .spawn()
                .expect("spawn the Go TLS server");
            let server = KillOnDrop(child);
            let up = wait_for(Duration::from_secs(10), || {
                std::fs::read_to_string(&out)
                    .ok()
                    .filter(|t| t.starts_with("listening"))
            });
            assert!(up.is_some(), "the Go TLS server did not start");
            let section = format!(
                r#"[loadgen]
role = "client"
port = "backend"
target = "10.10.2.11:8444"
connections = 60
concurrency = 8
requests = 2
timeout_s = 60
tls = true
tls_ca = "{}"
tls_sni = "vip.test"
tls_groups = ["X25519MLKEM768"]
tls_resume_pct = 50
"#,
                lab_ca.display()
            );
            let cfg = config(&topo, &dir, "go-https.toml", &section);
            let (ok, v, logs) = run_loadgen(&dir, &cfg, &dir.join("go-https.json"), 90);
            let g = |k: &str| v[k].as_u64().unwrap_or(u64::MAX);
            assert!(ok, "loadgen HTTPS → Go run\n{v}\n{logs}");
            assert_eq!(
                (g("completed"), g("failed"), g("tls_failed")),
                (60, 0, 0),
                "{v}"
            );
            assert_eq!((g("responses"), g("status_2xx")), (120, 120), "{v}");
            assert_eq!(g("body_bytes"), 120 * 777, "{v}");
            assert_eq!(
                (g("tls_handshakes"), g("tls13"), g("tls_pq")),
                (60, 60, 60),
                "{v}"
            );
            let resumed = g("tls_resumed");
            assert!((20..=30).contains(&resumed), "{v}");
            drop(server);
            let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            assert_eq!(lines.len(), 120, "one line per request: {lines:?}");
            for l in &lines {
                assert_eq!(l["version"], "TLS 1.3", "{l}");
                assert_eq!(l["group"], "X25519MLKEM768", "{l}");
            }
            let go_resumed = lines.iter().filter(|l| l["resumed"] == true).count() as u64;
            assert_eq!(
                go_resumed,
                2 * resumed,
                "the server saw the client's resumptions (two requests each)"
            );
            eprintln!(
                "loadgen HTTPS → Go crypto/tls: 60 connections, X25519MLKEM768 on each, {resumed} resumed"
            );
        }
        None => missing_pq_client("the Go toolchain (tests/tools/tlsserver)"),
    }

    // 3. Against qsplice's own TLS termination: `qsplice lb` terminates
    //    10.10.1.1:443 in front of nginx b1; loadgen runs in the client
    //    namespace (its own af_packet port on the client's veth, from
    //    10.10.1.100, an address that namespace's kernel does not hold):
    //    X25519MLKEM768 agreed on every handshake, half of them resumed by
    //    ticket, every response nginx's body through the terminator.
    let backend = topo
        .var("BACKENDS")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let lb = format!(
        r#"{}
[lb]
client_port = "client"
backend_port = "backend"

[[lb.vips]]
name = "tls"
address = "10.10.1.1:443"
tls = "terminate"
backends = [{{ address = "{backend}:80" }}]
[lb.vips.tls_options]
certificates = [{{ cert = "{}", key = "{}", names = ["vip.test"] }}]
"#,
        demo_config(&topo, ""),
        cert.display(),
        key.display()
    );
    let lb_cfg = dir.join("lb-tls.toml");
    std::fs::write(&lb_cfg, lb).unwrap();
    let (mut lb_app, _) = spawn_lb(&dir.join("lb"), &lb_cfg);
    let served = wait_for(Duration::from_secs(15), || {
        let o = topo.exec(
            &ns,
            &[
                "curl",
                "-sf",
                "-m",
                "2",
                "--cacert",
                lab_ca.to_str().unwrap(),
                "--resolve",
                "vip.test:443:10.10.1.1",
                "https://vip.test/",
            ],
        );
        o.status.success().then_some(())
    });
    assert!(
        served.is_some(),
        "the TLS VIP answers curl\n{}",
        lb_app.logs()
    );
    let cli_if = {
        let o = topo.exec(
            &ns,
            &["ip", "-o", "-4", "addr", "show", "to", "10.10.1.0/24"],
        );
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .nth(1)
            .expect("the client namespace's veth")
            .to_string()
    };
    let base = std::fs::read_to_string(repo_root().join("conf/loadgen.toml")).unwrap();
    let base = &base[..base.find("[[ports]]").unwrap()];
    let lg = format!(
        r#"{}
[[ports]]
name = "client"
device = "net_af_packet0,iface={cli_if}"
addresses = ["10.10.1.100/24"]

[loadgen]
role = "client"
port = "client"
target = "10.10.1.1:443"
connections = 200
concurrency = 16
requests = 2
timeout_s = 60
tls = true
tls_ca = "{}"
tls_sni = "vip.test"
tls_resume_pct = 50
"#,
        base.replace("stats_interval_ms = 1000", "stats_interval_ms = 200"),
        lab_ca.display()
    );
    let lg_cfg = dir.join("lg-to-lb.toml");
    std::fs::write(&lg_cfg, lg).unwrap();
    let json = dir.join("lg-to-lb.json");
    let out = loadgen_in_ns(&ns, &lg_cfg, &json);
    let _ = lb_app.stop(Duration::from_secs(10));
    let v = stats(&json).unwrap_or_default();
    let g = |k: &str| v[k].as_u64().unwrap_or(u64::MAX);
    assert!(
        out.status.success(),
        "loadgen → qsplice TLS termination\n{v}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        lb_app.logs()
    );
    assert_eq!(
        (g("completed"), g("failed"), g("responses")),
        (200, 0, 400),
        "{v}"
    );
    assert_eq!(g("body_bytes"), 400 * b"backend b1\n".len() as u64, "{v}");
    assert_eq!(
        (g("tls_handshakes"), g("tls13"), g("tls_pq")),
        (200, 200, 200),
        "{v}"
    );
    assert!((80..=100).contains(&g("tls_resumed")), "{v}");
}

/// `role = "both"`: clients on one af_packet port and the server on
/// another, in one process, the two ports the ends of a veth pair in a
/// namespace of the test's own — on two worker lcores (each running both
/// sides, frames steered to their owners), then with TLS 1.3 and
/// X25519MLKEM768 on both sides.
#[test]
fn loadgen_both_sides_in_one_process_over_a_veth_pair() {
    if !require_root() {
        return;
    }
    let ns = format!("qlb{}", std::process::id());
    let sh = |cmd: &str| {
        let st = Command::new("sh").args(["-c", cmd]).status().unwrap();
        assert!(st.success(), "{cmd}");
    };
    sh(&format!(
        "ip netns add {ns} && ip -n {ns} link add lga type veth peer name lgb && \
         ip -n {ns} link set lga up && ip -n {ns} link set lgb up && ip -n {ns} link set lo up"
    ));
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _gone = Gone(ns.clone());
    let scratch = Scratch::new("e2e-loadgen-both");
    let dir = scratch.0.clone();
    let lab = qsplice_tls::certgen::LabCa::new().unwrap();
    let leaf = lab
        .leaf(qsplice_tls::certgen::KeyAlg::EcdsaP256, &["both.test"])
        .unwrap();
    let (cert, key, ca) = (dir.join("b.pem"), dir.join("b.key"), dir.join("ca.pem"));
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    std::fs::write(&ca, lab.cert_pem()).unwrap();
    let run = |name: &str, workers: usize, extra: &str| -> (bool, serde_json::Value, String) {
        let (lcores, q) = if workers == 2 {
            ("[1, 2]\nlcore_map = \"0@0,1@1,2@0\"", ",qpairs=2")
        } else {
            ("[1]", "")
        };
        let cfg = format!(
            r#"[eal]
main_lcore = 0
worker_lcores = {lcores}
memory_mb = 256
hugepages = "off"
file_prefix = "qs-lgb-{name}-{pid}"
log_level = "warning"

[mempool]
mbufs = 16383
cache = 128

[engine]
stats_interval_ms = 200
idle_sleep_us = 20

[[ports]]
name = "cli"
device = "net_af_packet0,iface=lga{q}"
addresses = ["10.90.0.2/24"]

[[ports]]
name = "srv"
device = "net_af_packet1,iface=lgb{q}"
addresses = ["10.90.0.1/24"]

[loadgen]
role = "both"
port = "cli"
server_port = "srv"
target = "10.90.0.1:80"
listen = "10.90.0.1:80"
connections = 300
concurrency = 16
requests = 2
response_bytes = 2000
timeout_s = 60
{extra}
"#,
            pid = std::process::id()
        );
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, cfg).unwrap();
        let json = dir.join(format!("{name}.json"));
        let out = loadgen_in_ns(&ns, &path, &json);
        let v = stats(&json).unwrap_or_default();
        (
            out.status.success(),
            v,
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, v, err) = run("plain", 2, "");
    let g = |k: &str| v[k].as_u64().unwrap_or(u64::MAX);
    let s = |k: &str| v["server"][k].as_u64().unwrap_or(u64::MAX);
    assert!(ok, "both sides, two lcores\n{v}\n{err}");
    assert_eq!(v["role"], "both", "{v}");
    assert_eq!(
        (g("lcores"), g("completed"), g("failed"), g("responses")),
        (2, 300, 0, 600),
        "{v}"
    );
    assert_eq!(g("body_bytes"), 600 * 2000, "{v}");
    assert_eq!((s("connected"), s("responses")), (300, 600), "{v}");
    assert!(g("steered") > 0, "{v}");
    let tls = format!(
        "tls = true\ntls_ca = \"{}\"\ntls_sni = \"both.test\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\ntls_resume_pct = 50\n",
        ca.display(),
        cert.display(),
        key.display()
    );
    let (ok, v, err) = run("tls", 1, &tls);
    let g = |k: &str| v[k].as_u64().unwrap_or(u64::MAX);
    let s = |k: &str| v["server"][k].as_u64().unwrap_or(u64::MAX);
    assert!(ok, "both sides with TLS\n{v}\n{err}");
    assert_eq!(
        (g("completed"), g("failed"), g("responses")),
        (300, 0, 600),
        "{v}"
    );
    assert_eq!(
        (g("tls_handshakes"), g("tls_pq"), g("tls13")),
        (300, 300, 300),
        "{v}"
    );
    assert!((140..=160).contains(&g("tls_resumed")), "{v}");
    assert_eq!((s("tls_handshakes"), s("tls_pq")), (300, 300), "{v}");
}

/// A child process (here `ip netns exec` of a test server) killed by PID
/// when dropped, however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
