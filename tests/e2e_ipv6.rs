//! End to end: IPv6 on `qsplice lb` — two worker lcores (af_packet) in
//! front of three nginx backends on a dual-stack topology
//! (`scripts/netns.sh up --ipv6`).
//!
//! One appliance run covers: curl -6 through a spliced IPv6 VIP reaching
//! every IPv6 backend (HTTP health checks over IPv6 keep them up); NAT64
//! (IPv6 VIP, IPv4 backends) and NAT46 (IPv4 VIP, IPv6 backends); path
//! MTU discovery through the splice (a client-side "packet too big" lowers
//! the backend's path MTU, in either family) and on a TLS-terminated leg;
//! IPv4
//! and IPv6 clients at once on one service; TLS termination on an IPv6
//! VIP (curl, and Go's crypto/tls with X25519MLKEM768), X-Forwarded-For
//! carrying the client's IPv6 address; content rules (path, Host) and
//! Maglev on IPv6 VIPs; session-aware dispatch (TLS 1.2 session IDs, TLS
//! 1.3 tickets) on an IPv6 VIP; a 1 GiB download over IPv6 byte exact, then its
//! first 100 MiB with 1 % loss each way on the client link (nftables);
//! a SYN flood from random IPv6 sources while curl -6 still succeeds; the
//! access log naming IPv6 clients; every connection closed afterwards and
//! nothing left untranslatable.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use qsplice_tls::certgen::{KeyAlg, LabCa};

fn config(topo: &Topology, dir: &Path) -> PathBuf {
    let v6: Vec<String> = topo
        .var("BACKENDS6")
        .split_whitespace()
        .map(String::from)
        .collect();
    let v4: Vec<String> = topo
        .var("BACKENDS")
        .split_whitespace()
        .map(String::from)
        .collect();
    let list = |bs: &[String], port: u16, six: bool| -> String {
        bs.iter()
            .map(|b| {
                if six {
                    format!("{{ address = \"[{b}]:{port}\" }}")
                } else {
                    format!("{{ address = \"{b}:{port}\" }}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let neigh6: Vec<String> = v6.iter().map(|b| format!("\"{b}\"")).collect();
    let base = two_lcore_config(topo)
        .replace(
            "addresses = [\"10.10.1.1/24\"]",
            "addresses = [\"10.10.1.1/24\", \"2001:db8:1::1/64\"]",
        )
        .replace(
            "addresses = [\"10.10.2.1/24\"]",
            "addresses = [\"10.10.2.1/24\", \"2001:db8:2::1/64\"]",
        )
        .replacen(
            "neighbors = [",
            &format!("neighbors = [{}, ", neigh6.join(", ")),
            1,
        );
    let d = dir.display();
    let cfg = format!(
        r#"{base}
[management]
listen = "unix:{d}/mgmt.sock"

[lb]
client_port = "client"
backend_port = "backend"
tls_max_conns = 512

[lb.health]
kind = "http"
interval_ms = 300
timeout_ms = 250

[lb.access_log]
path = "{d}/access.log"

[[lb.vips]]
name = "web6"
address = "[2001:db8:1::1]:80"
backends = [{b6}]

[[lb.vips]]
name = "web"
address = "10.10.1.1:80"
backends = [{b6}]

[[lb.vips]]
name = "nat64"
address = "[2001:db8:1::1]:8080"
backends = [{b4}]

[[lb.vips]]
name = "nat46"
address = "10.10.1.1:8080"
backends = [{b6}]

[[lb.vips]]
name = "tls6"
address = "[2001:db8:1::1]:443"
tls = "terminate"
backends = [{b6}]
[lb.vips.tls_options]
certificates = [{{ cert = "{d}/ecdsa-p256.pem", key = "{d}/ecdsa-p256.key", names = ["vip.test"] }}]
x_forwarded_for = true

[[lb.vips]]
name = "rules6"
address = "[2001:db8:1::1]:81"
backends = [{b6}]
[[lb.vips.rules]]
path_prefix = "/1m"
backends = ["[{first}]:80"]
[[lb.vips.rules]]
host = "two.test"
backends = ["[{second}]:80"]

[[lb.vips]]
name = "maglev6"
address = "[2001:db8:1::1]:82"
policy = "maglev"
backends = [{b6}]

[[lb.vips]]
name = "sa6"
address = "[2001:db8:1::1]:8443"
policy = "session-aware"
health = "tcp"
backends = [{b6tls}]
"#,
        b6 = list(&v6, 80, true),
        b6tls = list(&v6, 443, true),
        b4 = list(&v4, 80, false),
        first = v6[0],
        second = v6[1],
    );
    let path = dir.join("lb6.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn write_certs(dir: &Path) -> PathBuf {
    let ca = LabCa::new().unwrap();
    std::fs::write(dir.join("ca.pem"), ca.cert_pem()).unwrap();
    let leaf = ca.leaf(KeyAlg::EcdsaP256, &["vip.test"]).unwrap();
    std::fs::write(dir.join("ecdsa-p256.pem"), leaf.cert_pem).unwrap();
    std::fs::write(dir.join("ecdsa-p256.key"), leaf.key_pem).unwrap();
    dir.join("ca.pem")
}

/// `curl URL` from the client namespace: (success, body and headers).
fn curl(topo: &Topology, url: &str, extra: &[&str]) -> (bool, String) {
    let mut a = vec!["curl", "-sS", "-m", "10", "-D-"];
    a.extend_from_slice(extra);
    a.push(url);
    let o = topo.exec(topo.var("CLIENT_NS"), &a);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
    )
}

/// The backend that answered (`X-Backend`).
fn backend_of(out: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.strip_prefix("X-Backend: ").map(|b| b.trim().to_string()))
}

/// `url` (bytes `range` of it, if given) from the client namespace: its
/// sha256.
fn sha_of(topo: &Topology, url: &str, range: Option<&str>) -> String {
    let range = range.map(|r| format!("-r {r}")).unwrap_or_default();
    let o = Command::new("sh")
        .args([
            "-c",
            &format!(
                "ip netns exec {} curl -sf -m 240 {range} '{url}' | sha256sum",
                topo.var("CLIENT_NS")
            ),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// `openssl s_client` TLS 1.2 without tickets to the session-aware IPv6
/// VIP, saving (`save`) or offering the session in `sess`: whether it
/// resumed.
fn s_client6(topo: &Topology, ca: &str, sess: &Path, save: bool) -> Option<bool> {
    let cmd = format!(
        "echo | ip netns exec {} openssl s_client -connect '[2001:db8:1::1]:8443' -tls1_2 -no_ticket -CAfile {ca} -servername vip.test {} {} 2>/dev/null",
        topo.var("CLIENT_NS"),
        if save { "-sess_out" } else { "-sess_in" },
        sess.display()
    );
    let out = Command::new("sh").args(["-c", &cmd]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("\nReused, TLSv1.2") {
        Some(true)
    } else if text.contains("\nNew, TLSv1.2") {
        Some(false)
    } else {
        None
    }
}

fn client_loss(topo: &Topology, on: bool) {
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
            &format!(
                "printf '{script}' | ip netns exec {} nft -f -",
                topo.var("CLIENT_NS")
            ),
        ])
        .status()
        .unwrap();
    assert!(st.success() || !on, "nft loss rules");
}

#[test]
fn ipv6_vips_nat64_nat46_tls_loss_and_a_flood() {
    if !require_root() {
        return;
    }
    let topo = Topology::up_with("q6", 3, &["--ipv6", "--bigfile", "1024"]);
    let scratch = Scratch::new("e2e-ipv6");
    let dir = scratch.0.clone();
    let ca = write_certs(&dir);
    let cfg = config(&topo, &dir);
    let (app, json) = spawn_lb(&dir, &cfg);

    // Every VIP's backends healthy — the IPv6 ones by HTTP checks over
    // IPv6 — and still so after several check rounds.
    let healthy = || {
        stats(&json).and_then(|v| {
            let vips = v["lb"]["vips"].as_array()?.clone();
            (vips.len() == 8
                && vips.iter().all(|x| {
                    x["backends"]
                        .as_array()
                        .is_some_and(|bs| bs.iter().all(|b| b["healthy"].as_bool() == Some(true)))
                }))
            .then_some(v)
        })
    };
    assert!(
        wait_for(Duration::from_secs(20), healthy).is_some(),
        "backends never healthy\n{}",
        app.logs()
    );
    std::thread::sleep(Duration::from_millis(1500));
    let v = healthy().unwrap_or_else(|| panic!("a backend went down\n{}", app.logs()));
    for b in v["lb"]["vips"][0]["backends"].as_array().unwrap() {
        assert!(
            b["address"]
                .as_str()
                .is_some_and(|a| a.starts_with("[2001:db8:2::")),
            "IPv6 backends are shown by their addresses: {b}"
        );
    }

    // 1. curl -6 through the spliced IPv6 VIP reaches every backend.
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..12 {
        let (ok, out) = curl(&topo, "http://[2001:db8:1::1]/", &[]);
        assert!(
            ok && out.contains(" 200 "),
            "request {i}: {out}\n{}",
            app.logs()
        );
        seen.extend(backend_of(&out));
    }
    assert_eq!(seen.len(), 3, "every backend took requests: {seen:?}");

    // 1a. Content rules on an IPv6 VIP: the path and the Host header pick
    //     the rule's backend every time; Maglev on an IPv6 VIP keeps a
    //     client on one backend (it hashes the client's IPv6 address).
    let pick = |url: &str, extra: &[&str]| {
        let set: std::collections::BTreeSet<String> = (0..5)
            .map(|i| {
                let (ok, out) = curl(&topo, url, extra);
                assert!(
                    ok && out.contains(" 200 "),
                    "{url} {i}: {out}\n{}",
                    app.logs()
                );
                backend_of(&out).unwrap_or_default()
            })
            .collect();
        assert_eq!(set.len(), 1, "{url} {extra:?}: one backend, got {set:?}");
        set.into_iter().next().unwrap()
    };
    let one = pick("http://[2001:db8:1::1]:81/1m.bin", &["-I"]);
    let two = pick("http://[2001:db8:1::1]:81/", &["-H", "Host: two.test"]);
    assert_eq!(
        (one.as_str(), two.as_str()),
        ("b1", "b2"),
        "the rules' backends"
    );
    pick("http://[2001:db8:1::1]:82/", &[]);
    // (The stats file is rewritten periodically: wait for the counters.)
    let matched = wait_for(Duration::from_secs(5), || {
        let v = stats(&json)?;
        let t = &v["lb"]["total"];
        (t["ca_matched"].as_u64()? >= 10 && t["ca_unmatched"].as_u64()? == 0).then_some(())
    });
    assert!(
        matched.is_some(),
        "content rules matched: {:?}",
        stats(&json).map(|v| v["lb"]["total"].clone())
    );

    // 1b. The management API by IPv6 addresses: a VIP added live, a
    //     backend drained and enabled again, the VIP removed.
    let url = format!("unix:{}", dir.join("mgmt.sock").display());
    let ctl = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_qsplice"))
            .args(["ctl", "--url", &url])
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "ctl {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    ctl(&[
        "add-vip",
        "--name",
        "api6",
        "--address",
        "[2001:db8:1::1]:9090",
        "--backend",
        "[2001:db8:2::12]:80",
    ]);
    let served = wait_for(Duration::from_secs(10), || {
        let (ok, out) = curl(&topo, "http://[2001:db8:1::1]:9090/", &[]);
        (ok && backend_of(&out).as_deref() == Some("b2")).then_some(())
    });
    assert!(
        served.is_some(),
        "the VIP added over the API serves
{}",
        app.logs()
    );
    assert!(ctl(&["backends"]).contains("[2001:db8:2::11]:80"));
    ctl(&["drain", "web6", "[2001:db8:2::11]:80"]);
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..6 {
        let (ok, out) = curl(&topo, "http://[2001:db8:1::1]/", &[]);
        assert!(ok, "request {i} with b1 drained: {out}");
        assert_ne!(
            backend_of(&out).as_deref(),
            Some("b1"),
            "b1 is drained: {out}"
        );
    }
    ctl(&["enable", "web6", "[2001:db8:2::11]:80"]);
    ctl(&["remove-vip", "api6"]);

    // 2. NAT64 and NAT46.
    for (url, what) in [
        ("http://[2001:db8:1::1]:8080/", "NAT64"),
        ("http://10.10.1.1:8080/", "NAT46"),
    ] {
        for i in 0..6 {
            let (ok, out) = curl(&topo, url, &[]);
            assert!(ok && out.contains(" 200 "), "{what} request {i}: {out}");
        }
    }
    let (_, out) = curl(&topo, "http://10.10.1.1:8080/whoami", &[]);
    assert!(
        out.contains("2001:db8:2::1"),
        "a NAT46 backend sees the appliance's IPv6 address: {out}"
    );

    // 2a. Path MTU discovery through the splice: a router on the client
    //     side reports a response segment too big (tests/tools/ptb.py);
    //     the backend that sent it takes the error — it must quote the
    //     backend's own addresses and sequence number, which Linux checks
    //     — and lowers its path MTU toward the balancer, by 20 bytes less
    //     or more where the legs' families differ (NAT64, NAT46).
    let dut_mac = stats(&json).unwrap()["ports"][0]["mac"]
        .as_str()
        .unwrap()
        .to_string();
    let cli_if = format!("{}-cli0", topo.prefix);
    for (vip, port, mtu, local, want) in [
        ("2001:db8:1::1", 80, 1400, "2001:db8:2::1", 1400),
        ("2001:db8:1::1", 8080, 1400, "10.10.2.1", 1380),
        ("10.10.1.1", 80, 1300, "2001:db8:2::1", 1320),
    ] {
        let mut child = Command::new("ip")
            .args(["netns", "exec", topo.var("CLIENT_NS"), "python3"])
            .arg(repo_root().join("tests/tools/ptb.py"))
            .args([&cli_if, &dut_mac, vip, &port.to_string(), &mtu.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ptb.py");
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        let backend = v["backend"].as_str().unwrap_or("").to_string();
        assert!(
            v["sent"] == true && backend.starts_with('b'),
            "ptb.py {vip}:{port}: {line}"
        );
        let bns = format!("{}-{backend}", topo.prefix);
        let seen = wait_for(Duration::from_secs(3), || {
            let o = topo.exec(&bns, &["ip", "route", "get", local]);
            let text = String::from_utf8_lossy(&o.stdout).to_string();
            text.contains(&format!("mtu {want}")).then_some(text)
        });
        drop(child.stdin.take());
        let _ = child.wait();
        assert!(
            seen.is_some(),
            "{vip}:{port} (MTU {mtu}): {backend} has no path MTU {want} toward {local}: {}\n{:?}\n{}",
            String::from_utf8_lossy(&topo.exec(&bns, &["ip", "route", "get", local]).stdout),
            stats(&json).map(|v| v["lb"]["total"].clone()),
            app.logs()
        );
    }

    // 3. IPv4 and IPv6 clients at once on one service (the same pool).
    let ns = topo.var("CLIENT_NS").to_string();
    let (ns4, ns6) = (ns.clone(), ns.clone());
    let t4 = std::thread::spawn(move || http_loop(&ns4, "http://10.10.1.1/", 60, 5, 60));
    let t6 = std::thread::spawn(move || http_loop(&ns6, "http://[2001:db8:1::1]/", 60, 5, 60));
    for (fam, r) in [("IPv4", t4.join().unwrap()), ("IPv6", t6.join().unwrap())] {
        let ok = r.iter().filter(|(c, _)| c == "200").count();
        assert_eq!(ok, 60, "{fam} clients during the mixed run: {r:?}");
    }

    // 4. TLS termination on the IPv6 VIP.
    let resolve = "vip.test:443:[2001:db8:1::1]";
    let ca_s = ca.to_str().unwrap();
    let (ok, out) = curl(
        &topo,
        "https://vip.test/xff",
        &["--cacert", ca_s, "--resolve", resolve],
    );
    assert!(
        ok && out.contains(" 200 "),
        "curl -6 https: {out}\n{}",
        app.logs()
    );
    assert!(
        out.contains("xff 2001:db8:1::2"),
        "X-Forwarded-For carries the client's IPv6 address: {out}"
    );
    match go_client(&dir) {
        Some(bin) => {
            let r = go_tls_run(
                topo.var("CLIENT_NS"),
                &bin,
                &ca,
                "[2001:db8:1::1]:443",
                &["-n", "4", "-groups", "X25519MLKEM768"],
            );
            assert_eq!(r.len(), 4, "{r:?}\n{}", app.logs());
            for x in &r {
                assert_eq!(x["status"], 200, "{x}");
                assert_eq!(x["group"], "X25519MLKEM768", "{x}");
            }
        }
        None => missing_pq_client("the Go toolchain (tests/tools/tlsclient)"),
    }

    // 4b. Path MTU on the TLS-terminated VIP: the appliance's own TCP
    //     sends the response; after a "packet too big" (MTU 1300) about
    //     its segment, its segments on that connection fit (≤ 1300 − 60
    //     bytes of TCP payload; options included).
    let o = Command::new("ip")
        .args(["netns", "exec", topo.var("CLIENT_NS"), "python3"])
        .arg(repo_root().join("tests/tools/ptb.py"))
        .args(["--tls", &cli_if, &dut_mac, "2001:db8:1::1", "443", "1300"])
        .output()
        .expect("ptb.py --tls");
    let line = String::from_utf8_lossy(&o.stdout).to_string();
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap_or_default();
    let (before, after) = (
        v["before_max"].as_u64().unwrap_or(0),
        v["after_max"].as_u64().unwrap_or(u64::MAX),
    );
    eprintln!("TLS-terminated leg: largest segment {before} B before the error, {after} B after");
    assert!(
        v["sent"] == true && before > 1240 && after > 0 && after <= 1240,
        "ptb.py --tls: {line}{}\n{:?}",
        String::from_utf8_lossy(&o.stderr),
        stats(&json).map(|v| v["lb"]["total"].clone())
    );

    // 4a. Session-aware dispatch on an IPv6 VIP: TLS passes through to
    //     the backends' own TLS (each nginx with its own session cache and
    //     ticket keys, so a session resumes only where it was made). TLS
    //     1.2 session IDs (openssl) and TLS 1.3 tickets (Go) resume — round
    //     robin would resume about a third of them.
    let tls_ca = topo.var("TLS_CA").to_string();
    let (mut resumed, mut attempts) = (0, 0);
    for s in 0..6 {
        let sess = dir.join(format!("sess6-{s}.pem"));
        assert_eq!(
            s_client6(&topo, &tls_ca, &sess, true),
            Some(false),
            "new TLS 1.2 session {s} over IPv6\n{}",
            app.logs()
        );
        // the learned row reaches the lcores within a control step or two
        std::thread::sleep(Duration::from_millis(50));
        for _ in 0..3 {
            attempts += 1;
            if s_client6(&topo, &tls_ca, &sess, false) == Some(true) {
                resumed += 1;
            }
        }
    }
    eprintln!("TLS 1.2 over IPv6, session-aware: resumed {resumed}/{attempts}");
    assert!(
        resumed + 1 >= attempts,
        "session-aware over IPv6 resumed {resumed}/{attempts}\n{}",
        app.logs()
    );
    if let Some(bin) = go_client(&dir) {
        let r = go_tls_run(
            topo.var("CLIENT_NS"),
            &bin,
            Path::new(&tls_ca),
            "[2001:db8:1::1]:8443",
            &["-n", "32"],
        );
        assert_eq!(r.len(), 32, "{r:?}\n{}", app.logs());
        // TLS 1.3 tickets travel encrypted: the table learns a backend's
        // ticket key name from the first resumption it accepts, so the
        // first few may miss: a miss lands on another backend, which
        // makes a full handshake and a ticket of its own, so learning
        // waits for a resumption that reaches its ticket's backend, then
        // for the row to reach the lcores (a control step; later on a
        // busy machine). The first 20 leave room for both; from then on
        // every one resumes.
        let again = r[1..].iter().filter(|x| x["resumed"] == true).count();
        eprintln!("TLS 1.3 over IPv6, session-aware: resumed {again}/31");
        assert!(
            r[20..].iter().all(|x| x["resumed"] == true) && again >= 16,
            "TLS 1.3 tickets over IPv6: {r:?}"
        );
    }
    let hits = wait_for(Duration::from_secs(3), || {
        let v = stats(&json)?;
        let t = &v["lb"]["total"];
        (t["sa_hits"].as_u64()? >= resumed as u64).then(|| t.clone())
    });
    assert!(
        hits.is_some(),
        "resumptions over IPv6 are table hits: {:?}",
        stats(&json).map(|v| v["lb"]["total"].clone())
    );

    // 5. 1 GiB over IPv6, byte exact; then its first 100 MiB (a range
    //    request) with 1 % loss each way.
    let want = std::fs::read_to_string(topo.var("SHA256SUMS"))
        .unwrap()
        .lines()
        .find(|l| l.ends_with("big.bin"))
        .and_then(|l| l.split_whitespace().next().map(String::from))
        .expect("big.bin in SHA256SUMS");
    assert_eq!(
        sha_of(&topo, "http://[2001:db8:1::1]/big.bin", None),
        want,
        "\n{}",
        app.logs()
    );
    let big = std::path::Path::new(topo.var("SHA256SUMS")).with_file_name("big.bin");
    let o = Command::new("sh")
        .args([
            "-c",
            &format!("head -c 104857600 '{}' | sha256sum", big.display()),
        ])
        .output()
        .unwrap();
    let want100 = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    assert_eq!(want100.len(), 64, "sha256 of big.bin's first 100 MiB");
    client_loss(&topo, true);
    let lossy = sha_of(&topo, "http://[2001:db8:1::1]/big.bin", Some("0-104857599"));
    client_loss(&topo, false);
    assert_eq!(lossy, want100, "100 MiB under 1 % loss\n{}", app.logs());

    // 6. A SYN flood from random IPv6 sources; curl -6 still gets through.
    let mac = stats(&json).unwrap()["ports"][0]["mac"]
        .as_str()
        .unwrap()
        .to_string();
    let flood = Command::new("ip")
        .args(["netns", "exec", &ns, "python3"])
        .arg(repo_root().join("tests/tools/send_frames.py"))
        .args([
            "--syn-flood6",
            "--seconds=8",
            &format!("{}-cli0", topo.prefix),
            &mac,
            "2001:db8:1::",
            "2001:db8:1::1",
            "300000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("send_frames.py");
    std::thread::sleep(Duration::from_millis(1000));
    let mut failed = Vec::new();
    for i in 0..20 {
        let (ok, out) = curl(&topo, "http://[2001:db8:1::1]/", &[]);
        if !(ok && out.contains(" 200 ")) {
            failed.push(format!("request {i}: {out}"));
        }
    }
    let sent = flood.wait_with_output().unwrap();
    let sent = String::from_utf8_lossy(&sent.stdout).to_string();
    let v = stats(&json).unwrap();
    let t = &v["lb"]["total"];
    assert!(
        failed.is_empty(),
        "curl -6 during the flood ({sent}): {failed:?}\n{t}"
    );
    assert!(
        t["syn_received"].as_u64().unwrap_or(0) > 1000,
        "the flood reached the VIP ({sent}): {t}"
    );
    eprintln!(
        "flood: {} SYNs answered: {} (cookies {}), client stand-ins full {}",
        sent.trim(),
        t["syn_received"],
        t["syn_cookies"],
        t["six_clients_full"]
    );

    // 7. Counters and the access log.
    let v = wait_lb_at_rest(&json, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("connections left open\n{}", app.logs()));
    let t = &v["lb"]["total"];
    let g = |k: &str| t[k].as_u64().unwrap_or(0);
    assert!(g("six_in") > 10_000 && g("six_out") > 10_000, "{t}");
    assert!(g("ptb_forwarded") >= 3, "the three errors handed on: {t}");
    assert!(g("ptb_terminated") >= 1, "the terminated leg's error: {t}");
    for k in [
        "six_untranslatable",
        "six_bad",
        "six_unknown_source",
        "drop_translate",
    ] {
        assert_eq!(g(k), 0, "{k}: {t}");
    }
    eprintln!(
        "six_in {} six_out {} six_clients {}",
        g("six_in"),
        g("six_out"),
        g("six_clients")
    );
    let log = std::fs::read_to_string(dir.join("access.log")).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains("\"[2001:db8:1::2]:") && l.contains("\"[2001:db8:2::1"))
            && log
                .lines()
                .any(|l| l.contains("\"10.10.1.2:") && l.contains("[2001:db8:2::1")),
        "the access log names IPv6 clients and backends: {}",
        log.lines().take(5).collect::<Vec<_>>().join("\n")
    );
    drop(app);
}
