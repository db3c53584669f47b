//! End to end: `qsplice lb` terminating TLS on two worker lcores
//! (af_packet vdevs) in front of three plaintext nginx backends.
//!
//! One appliance run covers: curl (Debian OpenSSL 3.0, classical X25519)
//! through the VIP; Go crypto/tls (X25519MLKEM768) with session tickets
//! resuming across lcores; headless Chromium (X25519MLKEM768) with an
//! ML-DSA-65 + ECDSA certificate pair; `require` mode refusing classical
//! clients and serving PQ ones; a 100 MB download byte-exact; plain HTTP,
//! a stalled handshake and garbage after the handshake each ended and
//! counted by reason while other connections carry on; no connection or
//! mbuf left behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use qsplice_tls::certgen::{KeyAlg, LabCa};

fn write_certs(dir: &Path) -> PathBuf {
    let ca = LabCa::new().unwrap();
    std::fs::write(dir.join("ca.pem"), ca.cert_pem()).unwrap();
    for alg in [KeyAlg::EcdsaP256, KeyAlg::MlDsa65] {
        let leaf = ca.leaf(alg, &["vip.test"]).unwrap();
        std::fs::write(dir.join(format!("{alg}.pem")), leaf.cert_pem).unwrap();
        std::fs::write(dir.join(format!("{alg}.key")), leaf.key_pem).unwrap();
    }
    dir.join("ca.pem")
}

fn tls_config(topo: &Topology, dir: &Path) -> PathBuf {
    let base = two_lcore_config(topo);
    let backends: Vec<String> = topo
        .var("BACKENDS")
        .split_whitespace()
        .map(|b| format!("    {{ address = \"{b}:80\" }},"))
        .collect();
    let backends = backends.join("\n");
    let d = dir.display();
    let certs = format!(
        r#"certificates = [
    {{ cert = "{d}/ml-dsa-65.pem", key = "{d}/ml-dsa-65.key", names = ["vip.test"] }},
    {{ cert = "{d}/ecdsa-p256.pem", key = "{d}/ecdsa-p256.key", names = ["vip.test"] }},
]"#
    );
    let cfg = format!(
        r#"{base}
[lb]
client_port = "client"
backend_port = "backend"
tls_max_conns = 512
# As conf/lb-tls.toml: the terminated legs run BBR's model (the backends'
# kernels run BBR here too); CUBIC is covered by qsplice-tcp's simulator
# and property tests and by the lb_stateful fuzz target.
tcp_congestion = "bbr"

[lb.health]
kind = "http"
interval_ms = 300
timeout_ms = 250

[[lb.vips]]
name = "tls"
address = "10.10.1.1:443"
tls = "terminate"
backends = [
{backends}
]
[lb.vips.tls_options]
{certs}
handshake_timeout_ms = 2000
x_forwarded_for = true

[[lb.vips]]
name = "pq-only"
address = "10.10.1.1:8443"
tls = "terminate"
backends = [
{backends}
]
[lb.vips.tls_options]
{certs}
policy = "require"

[[lb.vips]]
name = "web"
address = "10.10.1.1:80"
backends = [
{backends}
]
"#
    );
    let path = dir.join("tls.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// The VIP's TLS counters (`vips[i].tls`).
fn tls(v: &serde_json::Value, vip: usize) -> serde_json::Value {
    v["lb"]["vips"][vip]["tls"].clone()
}

fn named(t: &serde_json::Value, list: &str, name: &str) -> u64 {
    t[list]
        .as_array()
        .and_then(|a| a.iter().find(|e| e[0] == name).and_then(|e| e[1].as_u64()))
        .unwrap_or(0)
}

/// The TLS counters once the lcores have republished (every 100 ms).
fn settle(json: &Path) -> serde_json::Value {
    std::thread::sleep(Duration::from_millis(600));
    stats(json).expect("stats")
}

fn curl(topo: &Topology, ca: &Path, port: u16, path: &str, extra: &[&str]) -> (bool, String) {
    let url = format!("https://vip.test:{port}{path}");
    let resolve = format!("vip.test:{port}:10.10.1.1");
    let mut args = vec![
        "curl",
        "-sS",
        "-m",
        "10",
        "--cacert",
        ca.to_str().unwrap(),
        "--resolve",
        &resolve,
        "-D-",
        "-o",
        "/dev/null",
    ];
    args.extend_from_slice(extra);
    args.push(&url);
    let out = topo.exec(topo.var("CLIENT_NS"), &args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Downloads big.bin through the VIP from the client namespace — TLS on
/// 443 (`ca`) or plain HTTP on 80 (`None`) — and returns (seconds, sha256).
fn fetch_big(topo: &Topology, ca: Option<&Path>) -> (f64, String) {
    let url = match ca {
        Some(ca) => format!(
            "--cacert {} --resolve vip.test:443:10.10.1.1 https://vip.test/big.bin",
            ca.display()
        ),
        None => "http://10.10.1.1/big.bin".to_string(),
    };
    let t = std::time::Instant::now();
    let out = Command::new("sh")
        .args([
            "-c",
            &format!(
                "ip netns exec {} curl -sf -m 300 {url} | sha256sum",
                topo.var("CLIENT_NS")
            ),
        ])
        .output()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let sum = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    (secs, sum)
}

/// `nft` in the client namespace: 1 % random loss both ways (`on`), or none.
fn client_loss(topo: &Topology, on: bool) {
    let ns = topo.var("CLIENT_NS");
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
    assert!(st.success() || !on, "nft loss rules");
}

/// Builds tests/tools/tlsclient (Go) into `dir`; `None` without Go.
fn go_run(
    topo: &Topology,
    bin: &Path,
    ca: &Path,
    port: u16,
    args: &[&str],
) -> Vec<serde_json::Value> {
    go_tls_run(
        topo.var("CLIENT_NS"),
        bin,
        ca,
        &format!("10.10.1.1:{port}"),
        args,
    )
}

#[test]
fn tls_termination_end_to_end() {
    if !require_root() {
        return;
    }
    let topo = Topology::up_with("qtl", 3, &["--bigfile", "100"]);
    let scratch = Scratch::new("e2e-tls");
    let ca = write_certs(&scratch.0);
    let cfg = tls_config(&topo, &scratch.0);
    let (mut app, json) = spawn_lb(&scratch.0, &cfg);
    wait_vip0_healthy(&app, &json);
    let got = wait_for(Duration::from_secs(10), || {
        curl(&topo, &ca, 443, "/", &[])
            .1
            .contains("200 OK")
            .then_some(())
    });
    assert!(got.is_some(), "curl through the TLS VIP\n{}", app.logs());

    // 1. curl (OpenSSL 3.0): classical X25519, ECDSA certificate verified.
    for _ in 0..5 {
        let (ok, out) = curl(&topo, &ca, 443, "/", &[]);
        assert!(ok && out.contains("X-Backend: b"), "curl: {out}");
    }
    let t = tls(&settle(&json), 0);
    assert!(named(&t, "groups", "X25519") >= 6, "curl handshakes: {t}");
    assert_eq!(t["post_quantum"], 0, "{t}");

    // 2. Go crypto/tls: X25519MLKEM768, tickets resume across lcores.
    let go = go_client(&scratch.0);
    if let Some(bin) = &go {
        let before = settle(&json);
        let r = go_run(&topo, bin, &ca, 443, &["-n", "16"]);
        assert_eq!(r.len(), 16, "{r:?}");
        for (i, c) in r.iter().enumerate() {
            assert_eq!(c["status"], 200, "{c}");
            assert_eq!(c["group"], "X25519MLKEM768", "{c}");
            assert_eq!(c["version"], "TLS 1.3", "{c}");
            assert_eq!(c["resumed"], i > 0, "connection {i}: {c}");
        }
        let after = settle(&json);
        let (t0, t1) = (tls(&before, 0), tls(&after, 0));
        assert_eq!(
            t1["resumed"].as_u64().unwrap() - t0["resumed"].as_u64().unwrap(),
            15,
            "{t1}"
        );
        assert!(named(&t1, "groups", "X25519MLKEM768") >= 16, "{t1}");
        // Each connection resumed the previous one's ticket: if both lcores
        // took some of them, a ticket crossed lcores.
        let per: Vec<u64> = (0..2)
            .map(|i| {
                after["lb"]["per_core"][i]["tls_accepted"]
                    .as_u64()
                    .unwrap_or(0)
                    - before["lb"]["per_core"][i]["tls_accepted"]
                        .as_u64()
                        .unwrap_or(0)
            })
            .collect();
        // 16 connections from fresh source ports: all on one lcore has
        // probability 2^-15.
        assert!(
            per.iter().all(|n| *n > 0),
            "connections spread over both lcores: {per:?}"
        );
        // TLS 1.2 with a ticket resumes too.
        let r = go_run(&topo, bin, &ca, 443, &["-n", "2", "-max-version", "1.2"]);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[0]["version"], "TLS 1.2");
        assert_eq!(r[1]["resumed"], true, "{r:?}");
    } else {
        missing_pq_client("the Go toolchain (tests/tools/tlsclient)");
    }

    // 3. Chromium: X25519MLKEM768.
    let has_chromium = Command::new("chromium").arg("--version").output().is_ok();
    if has_chromium {
        let before = tls(&settle(&json), 0);
        let profile = scratch.0.join("chromium");
        let out = topo.exec(
            topo.var("CLIENT_NS"),
            &[
                "timeout",
                "60",
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                &format!("--user-data-dir={}", profile.display()),
                "--ignore-certificate-errors",
                "--host-resolver-rules=MAP vip.test 10.10.1.1",
                "--dump-dom",
                "https://vip.test/",
            ],
        );
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(
            dom.contains("backend b"),
            "chromium page: {dom}\n{}",
            app.logs()
        );
        let after = tls(&settle(&json), 0);
        assert!(
            named(&after, "groups", "X25519MLKEM768") > named(&before, "groups", "X25519MLKEM768"),
            "chromium negotiated the hybrid: {after}"
        );
    } else {
        missing_pq_client("chromium");
    }

    // 4. `require`: classical-only clients refused, PQ clients served.
    let (ok, out) = curl(&topo, &ca, 8443, "/", &[]);
    assert!(
        !ok,
        "curl (X25519 only) must fail on the PQ-only VIP: {out}"
    );
    if let Some(bin) = &go {
        let r = go_run(&topo, bin, &ca, 8443, &["-groups", "X25519"]);
        assert!(
            r[0]["error"].is_string(),
            "classical Go client refused: {r:?}"
        );
        let r = go_run(&topo, bin, &ca, 8443, &[]);
        assert_eq!(r[0]["group"], "X25519MLKEM768", "{r:?}");
        assert_eq!(r[0]["status"], 200, "{r:?}");
    }
    let pq = tls(&settle(&json), 1);
    assert!(named(&pq, "failures", "incompatible") >= 1, "{pq}");
    assert_eq!(named(&pq, "groups", "X25519"), 0, "{pq}");

    // 5. 100 MB through TLS, byte-exact.
    let want = std::fs::read_to_string(topo.var("SHA256SUMS"))
        .unwrap()
        .lines()
        .find_map(|l| {
            let (h, n) = l.split_once(char::is_whitespace)?;
            (n.trim().trim_start_matches('*') == "big.bin").then(|| h.to_string())
        })
        .expect("big.bin sum");
    let out = Command::new("sh")
        .args([
            "-c",
            &format!(
                "ip netns exec {} curl -sSf -m 120 --cacert {} --resolve vip.test:443:10.10.1.1 https://vip.test/big.bin | sha256sum",
                topo.var("CLIENT_NS"),
                ca.display()
            ),
        ])
        .output()
        .unwrap();
    let got = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    assert_eq!(got, want, "big.bin over TLS\n{}", app.logs());

    // 5b. X-Forwarded-For on every request of a keep-alive connection, and
    //     a request body passes intact around it.
    let ca_s = ca.to_str().unwrap();
    let out = topo.exec(
        topo.var("CLIENT_NS"),
        &[
            "curl",
            "-sS",
            "-m",
            "10",
            "--cacert",
            ca_s,
            "--resolve",
            "vip.test:443:10.10.1.1",
            "https://vip.test/xff",
            "https://vip.test/xff",
        ],
    );
    let body = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        body.matches("xff 10.10.1.2").count(),
        2,
        "both requests: {body}"
    );
    let up = scratch.0.join("up.bin");
    std::fs::write(
        &up,
        (0..3_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let out = topo.exec(
        topo.var("CLIENT_NS"),
        &[
            "curl",
            "-sS",
            "-m",
            "30",
            "--cacert",
            ca_s,
            "--resolve",
            "vip.test:443:10.10.1.1",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-T",
            up.to_str().unwrap(),
            "https://vip.test/upload/tls.bin",
        ],
    );
    let code = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(code == "201" || code == "204", "upload over TLS: {code}");
    let stored: Vec<Vec<u8>> = (1..=3)
        .filter_map(|k| {
            std::fs::read(format!("{}/b{k}/upload/tls.bin", topo.var("STATE_DIR"))).ok()
        })
        .collect();
    assert_eq!(stored.len(), 1, "one backend stored it");
    assert!(stored[0] == std::fs::read(&up).unwrap(), "upload intact");

    // 6. Bad input, each ended and counted, while a good client carries on.
    let before = tls(&settle(&json), 0);
    let hostile = topo.exec(
        topo.var("CLIENT_NS"),
        &[
            "python3",
            repo_root()
                .join("tests/tools/tls_hostile.py")
                .to_str()
                .unwrap(),
            "10.10.1.1",
            "443",
            "vip.test",
            ca.to_str().unwrap(),
        ],
    );
    let lines = String::from_utf8_lossy(&hostile.stdout).to_string();
    let case = |name: &str| -> Vec<String> {
        lines
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing: {lines}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let p = case("plain_http");
    assert_eq!(
        (p[1].as_str(), p[2].as_str()),
        ("15", "eof"),
        "alert, then close: {lines}"
    );
    let s = case("stall");
    let secs: f64 = s[1].parse().unwrap();
    assert!(
        (1.5..6.0).contains(&secs) && s[2] == "reset",
        "handshake timeout: {lines}"
    );
    let g = case("garbage");
    assert_eq!(g[1], "ok", "{lines}");
    assert!(
        g[3] == "eof" || g[3] == "reset",
        "garbage ends the connection: {lines}"
    );
    let (ok, out) = curl(&topo, &ca, 443, "/", &[]);
    assert!(ok, "a good client is unaffected: {out}");
    let after = tls(&settle(&json), 0);
    for reason in ["malformed_hello", "handshake_timeout", "bad_record"] {
        assert_eq!(
            named(&after, "failures", reason),
            named(&before, "failures", reason) + 1,
            "{reason}: {after}"
        );
    }

    // 6a. Hostile segments (bad checksums on SYN/RST/FIN/data, malformed
    //     options) to the TLS VIP: dropped and counted, never a connection.
    hostile_segments(&topo, &json, &app, 443, false, || {
        curl(&topo, &ca, 443, "/", &[]).0
    });

    // 6a'. A client announcing a tiny MSS (88, the least Linux sends) gets
    //      segments of lb.min_mss (536), not of its MSS; counted.
    let clamped_before = stats(&json).unwrap()["lb"]["total"]["mss_clamped"]
        .as_u64()
        .unwrap_or(0);
    let out = topo.exec(
        topo.var("CLIENT_NS"),
        &[
            "python3",
            repo_root()
                .join("tests/tools/tiny_mss.py")
                .to_str()
                .unwrap(),
            &format!("{}-cli0", topo.prefix),
            "10.10.1.1",
            "443",
            "/",
            "88",
            "--tls",
            ca.to_str().unwrap(),
            "vip.test",
        ],
    );
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |k: &str| -> u64 {
        report
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{k} missing: {report}"))
    };
    assert_eq!(field("ok"), 1, "tiny-MSS client served: {report}");
    let max = field("max_payload");
    assert!(
        (89..=536).contains(&max),
        "segments to a client announcing MSS 88 carry up to min_mss (536) bytes: {report}"
    );
    assert!(
        stats(&json).unwrap()["lb"]["total"]["mss_clamped"]
            .as_u64()
            .unwrap_or(0)
            > clamped_before,
        "mss_clamped counted"
    );

    // 6b. A SYN flood on the TLS VIP (forged sources): the SYN cache fills
    //     and SYN cookies take over (no state per SYN); every real client
    //     still gets through, and memory stays flat.
    let mut flood = Command::new("ip")
        .args([
            "netns",
            "exec",
            topo.var("CLIENT_NS"),
            "timeout",
            "8",
            "hping3",
            "--flood",
            "-S",
            "-p",
            "443",
            "--rand-source",
            "-q",
            "10.10.1.1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("hping3");
    std::thread::sleep(Duration::from_secs(2));
    let rss = |pid: u32| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
            })
            .unwrap_or(0)
    };
    let rss_before = rss(app.child.id());
    let mut ok = 0;
    let mut failed = Vec::new();
    for i in 0..30 {
        let t = Instant::now();
        let (good, out) = curl(&topo, &ca, 443, "/", &[]);
        if good {
            ok += 1;
        } else {
            failed.push(format!("request {i} after {:?}: {out}", t.elapsed()));
        }
    }
    let rss_during = rss(app.child.id());
    let _ = flood.wait();
    assert_eq!(
        ok,
        30,
        "{ok}/30 TLS requests during the SYN flood:\n{}\nlb: {}\n{}",
        failed.join("\n"),
        stats(&json)
            .map(|v| v["lb"]["total"].to_string())
            .unwrap_or_default(),
        app.logs()
    );
    let v = settle(&json);
    let total = &v["lb"]["total"];
    assert!(
        total["syn_cookies"].as_u64().unwrap_or(0) > 100
            && total["syn_cache_full"].as_u64().unwrap_or(0) > 0,
        "the flood filled the SYN cache and got cookies: {total}"
    );
    assert!(
        rss_during < rss_before + 64 * 1024,
        "memory flat under the flood: {rss_before} -> {rss_during} KiB"
    );

    // 6c. Loss recovery: 1 % random loss both ways on the client link.
    //     The terminated VIP's TCP (SACK, fast recovery, 200 ms minimum
    //     RTO) must keep a bulk download close to the spliced VIP's (where
    //     the client's and the backend's Linux TCP run end to end). Before
    //     (smoltcp: 1 s minimum RTO, no SACK) it took ~200x longer.
    let want_big = sha256_of_file(&format!("{}/shared/big.bin", topo.var("STATE_DIR")));
    let (plain_clean, s) = fetch_big(&topo, None);
    assert_eq!(s, want_big, "spliced download intact");
    let out_pkts = |v: &serde_json::Value| v["ports"][0]["opackets"].as_u64().unwrap();
    let before = out_pkts(&settle(&json));
    let (tls_clean, s) = fetch_big(&topo, Some(&ca));
    assert_eq!(s, want_big, "TLS download intact");
    // Full-sized segments: one TLS record is made per backend segment, and
    // the client leg is corked until the end of each receive burst, so the
    // records go out packed, not as a full segment and a runt each (which
    // doubled the packets: ~138k for 100 MiB).
    let segs = out_pkts(&settle(&json)) - before;
    let full = (100u64 << 20) / 1448;
    eprintln!("100 MiB over TLS: {segs} segments to the client ({full} full-sized)");
    assert!(
        segs * 100 <= full * 115,
        "100 MiB over TLS took {segs} segments to the client (full-sized: {full})"
    );
    client_loss(&topo, true);
    let (plain_lossy, s1) = fetch_big(&topo, None);
    let (tls_lossy, s2) = fetch_big(&topo, Some(&ca));
    client_loss(&topo, false);
    eprintln!(
        "100 MiB: spliced {plain_clean:.2} s, TLS {tls_clean:.2} s; with 1% loss: spliced {plain_lossy:.2} s, TLS {tls_lossy:.2} s"
    );
    assert_eq!(s1, want_big, "spliced download under loss intact");
    assert_eq!(s2, want_big, "TLS download under loss intact");
    assert!(
        tls_lossy < 3.0 * tls_clean.max(plain_lossy) + 2.0,
        "TLS under 1% loss: {tls_lossy:.1} s vs {tls_clean:.1} s clean, spliced {plain_lossy:.1} s lossy"
    );

    // 6d. A client that sends no TCP timestamps (Windows' default) still
    //     gets window scaling and SACK (the SYN cache keeps them; a cookie
    //     could not) and downloads as fast as one that does.
    let set_ts = |on: bool| {
        let v = format!("net.ipv4.tcp_timestamps={}", u8::from(on));
        let out = topo.exec(topo.var("CLIENT_NS"), &["sysctl", "-qw", &v]);
        assert!(out.status.success(), "sysctl {v}");
    };
    let sniff = |port: u16| {
        Command::new("ip")
            .args(["netns", "exec", topo.var("CLIENT_NS"), "python3"])
            .arg(repo_root().join("tests/tools/syn_options.py"))
            .args([&format!("{}-cli0", topo.prefix), &port.to_string(), "20"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut best = [f64::MAX; 2];
    let mut seen = String::new();
    // Best of three each, interleaved: one 100 MiB transfer on this shared
    // 2-vCPU machine (debug build in the test run) varies by ±20 %.
    for round in 0..3 {
        for (k, ts_on) in [(0, true), (1, false)] {
            set_ts(ts_on);
            let mut sn = (round == 0 && !ts_on).then(|| sniff(443));
            if let Some(c) = sn.as_mut() {
                // Wait until the sniffer's socket is bound.
                let mut line = String::new();
                let mut r = std::io::BufReader::new(c.stdout.as_mut().unwrap());
                std::io::BufRead::read_line(&mut r, &mut line).unwrap();
            }
            let (secs, sum) = fetch_big(&topo, Some(&ca));
            assert_eq!(sum, want_big, "download intact (timestamps {ts_on})");
            best[k] = best[k].min(secs);
            if let Some(c) = sn {
                let out = c.wait_with_output().unwrap();
                seen = String::from_utf8_lossy(&out.stdout).to_string();
            }
        }
    }
    set_ts(true);
    let line = |k: &str| {
        seen.lines()
            .find(|l| l.starts_with(&format!("{k} ")))
            .unwrap_or_else(|| panic!("no {k} captured: {seen}"))
            .to_string()
    };
    assert!(
        line("syn").contains("ts=0"),
        "the client sent no timestamps: {seen}"
    );
    let synack = line("synack");
    assert!(
        synack.contains("sack=1") && !synack.contains("ws=-1") && synack.contains("ts=0"),
        "window scaling and SACK negotiated without timestamps: {seen}"
    );
    eprintln!(
        "100 MiB through the TLS VIP: timestamps {:.2} s, none {:.2} s",
        best[0], best[1]
    );
    assert!(
        best[1] <= best[0] / 0.9,
        "no-timestamp client at >= 0.9x: {:.2} s vs {:.2} s",
        best[1],
        best[0]
    );

    // 6e. Round 1 of a load that is repeated across a restart (section 8).
    let round = |go: &Path| -> serde_json::Value {
        let r = go_run(&topo, go, &ca, 443, &["-c", "8", "-d", "3"]);
        assert_eq!(r.len(), 1, "one load report: {r:?}");
        r[0].clone()
    };
    let round1 = go.as_deref().map(round);

    // 7. Nothing left behind.
    let idle = wait_for(Duration::from_secs(30), || {
        let v = stats(&json)?;
        (v["lb"]["total"]["tls_active"] == 0).then_some(v)
    });
    assert!(
        idle.is_some(),
        "terminated connections left open\n{}",
        app.logs()
    );
    // The per-VIP TLS counters are republished every 100 ms, the lcore
    // counters every millisecond: let both settle before comparing them.
    std::thread::sleep(Duration::from_millis(1500));
    let v = stats(&json).unwrap();
    let t = &v["lb"]["total"];
    let n = |k: &str| t[k].as_u64().unwrap_or(0);
    assert_eq!(n("tls_accepted"), n("tls_closed"), "{t}");
    assert_eq!(
        n("tls_closed"),
        n("tls_completed") + n("tls_failed"),
        "accepted = completed + failed + active (0): {t}"
    );
    // Every connection established is in the VIPs' TLS `connections`.
    let conns: u64 = v["lb"]["vips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["tls"]["connections"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(conns, n("tls_accepted"), "TLS connections counted: {t}");
    // Bytes relayed through the TLS VIP appear on its counters (the 100 MiB
    // downloads alone are over 400 MB).
    assert!(
        v["lb"]["vips"][0]["total"]["s2c_bytes"]
            .as_u64()
            .unwrap_or(0)
            > 400 << 20,
        "TLS VIP bytes: {}",
        v["lb"]["vips"][0]["total"]
    );
    let st = app.stop(Duration::from_secs(10));
    assert!(
        st.is_some_and(|s| s.success()),
        "clean exit\n{}",
        app.logs()
    );

    // 8. A restarted appliance serves as well as the first one, round after
    //    round: its backend legs reuse source ports the backends still hold
    //    in TIME-WAIT from the previous process, and must be accepted there
    //    (monotonic TSval, RFC 6191) — not cost a 1 s SYN retransmission.
    let (Some(go), Some(r1)) = (go.as_deref(), round1) else {
        return;
    };
    let (mut app, json) = spawn_lb(&scratch.0, &cfg);
    wait_vip0_healthy(&app, &json);
    // Warm the new process (ARP, page faults) for a second; the TIME-WAIT
    // tuples this guards against last 60 s.
    let _ = go_run(&topo, go, &ca, 443, &["-c", "2", "-d", "1"]);
    let mut rounds = vec![r1];
    for _ in 0..2 {
        rounds.push(round(go));
    }
    let rate = |r: &serde_json::Value| r["per_s"].as_f64().unwrap_or(0.0);
    for (i, r) in rounds.iter().enumerate() {
        assert_eq!(r["errors"], 0, "round {}: {r}\n{}", i + 1, app.logs());
        // One lost SYN on this shared box costs a client 1 s; the bug this
        // guards against cost every reused tuple (a rate of 0.47x).
        assert!(
            r["p99_ms"].as_f64().unwrap_or(1e9) < 1500.0,
            "round {}: p99 {} ms: {rounds:?}",
            i + 1,
            r["p99_ms"]
        );
        assert!(
            rate(r) >= 0.6 * rate(&rounds[0]),
            "round {} at {:.0}/s vs round 1 {:.0}/s: {rounds:?}",
            i + 1,
            rate(r),
            rate(&rounds[0])
        );
    }
    eprintln!(
        "tls rounds (full handshakes/s): {:?}",
        rounds.iter().map(rate).collect::<Vec<_>>()
    );
    let st = app.stop(Duration::from_secs(10));
    assert!(
        st.is_some_and(|s| s.success()),
        "clean exit\n{}",
        app.logs()
    );
}
