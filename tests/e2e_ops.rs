//! End to end: operating `qsplice lb` through its management listener.
//!
//! One appliance on the namespace topology with a token-protected listener
//! on a loopback port: `/metrics` scraped while traffic flows and checked by
//! Prometheus' own `promtool` (text format and OpenMetrics), its counters
//! equal to the report's; a real Prometheus server scraping it reads a
//! non-zero connection rate from its own query API; the status page
//! rendered by headless Chromium shows a backend with a non-zero rate; the
//! listener unreachable from the client
//! namespace; `qsplice ctl` reading status, VIPs and backends, refusing
//! changes without the token, draining / re-enabling a backend (seen in the
//! traffic, in `ctl` and in `/metrics`), rejecting bad values with the
//! server's reason and a non-zero exit, reloading a good config and refusing
//! a bad one with the key; a certificate rotated in place and reloaded;
//! twenty live changes under wrk (keep-alive and `Connection: close`) with
//! no socket error; a second appliance on the same listener refuses
//! to start.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(topo: &Topology, listen: &str, token: &std::path::Path, weight_b3: u32) -> String {
    let backends: Vec<String> = topo
        .var("BACKENDS")
        .split_whitespace()
        .enumerate()
        .map(|(i, b)| {
            let w = if i == 2 { weight_b3 } else { 1 };
            format!("    {{ address = \"{b}:80\", weight = {w} }},")
        })
        .collect();
    format!(
        r#"{base}
[management]
listen = "{listen}"
token_file = "{token}"

[lb]
client_port = "client"
backend_port = "backend"
linger_ms = 500
shutdown_grace_s = 3

[lb.access_log]
path = "{access}"

[lb.health]
kind = "http"
http_path = "/"
interval_ms = 300
timeout_ms = 250

[[lb.vips]]
name = "web"
address = "10.10.1.1:80"
policy = "round-robin"
backends = [
{b}
]

[[lb.vips]]
name = "web-tls"
address = "10.10.1.1:443"
tls = "terminate"
backends = [
{b}
]

[lb.vips.tls_options]
certificates = [
    {{ cert = "{certs}/ecdsa-p256.pem", key = "{certs}/ecdsa-p256.key", names = ["vip.test"] }},
]
"#,
        base = demo_config(topo, ""),
        token = token.display(),
        access = token.with_file_name("access.log").display(),
        certs = token.with_file_name("certs").display(),
        b = backends.join("\n")
    )
}

fn ctl(url: &str, token: Option<&std::path::Path>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_qsplice"));
    c.args(["ctl", "--url", url]);
    if let Some(t) = token {
        c.args(["--token-file", t.to_str().unwrap()]);
    }
    c.args(args).output().expect("run qsplice ctl")
}

fn ok_json(o: &Output, what: &str) -> serde_json::Value {
    assert!(
        o.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

/// A child process killed (by PID) when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl").args(args).output().expect("run curl")
}

/// The value of a sample line `name{labels} value` in an exposition.
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

#[test]
fn management_listener_metrics_and_ctl() {
    if !require_root() {
        return;
    }
    assert!(
        Command::new("promtool")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "promtool (Debian `prometheus`) is needed: scripts/setup.sh installs it"
    );
    let topo = Topology::up("qop", 3);
    let scratch = Scratch::new("e2e-ops");
    let token = scratch.0.join("token");
    std::fs::write(&token, "e2e-0123456789abcdef\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // Lab certificates: the one served, and a second set (another CA) the
    // test rotates in.
    for dir in ["certs", "certs2", "certs3"] {
        let o = Command::new(env!("CARGO_BIN_EXE_qsplice"))
            .args(["tls-cert", "--out"])
            .arg(scratch.0.join(dir))
            .args(["--name", "vip.test", "--alg", "ecdsa-p256"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "tls-cert: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let url = format!("http://{listen}");
    let cfg_path = scratch.0.join("lb.toml");
    std::fs::write(&cfg_path, config(&topo, &listen, &token, 1)).unwrap();
    let (app, json) = spawn_lb(&scratch.0, &cfg_path);
    wait_vip0_healthy(&app, &json);
    let backends: Vec<String> = topo
        .var("BACKENDS")
        .split_whitespace()
        .map(|b| format!("{b}:80"))
        .collect();
    let name_of = |addr: &str| format!("b{}", backends.iter().position(|b| b == addr).unwrap() + 1);

    // Traffic, then a scrape.
    for _ in 0..9 {
        curl_backend(&topo).unwrap_or_else(|| panic!("curl through the VIP\n{}", app.logs()));
    }
    let scrape = curl(&["-s", "-m", "5", "-D", "-", &format!("{url}/metrics")]);
    let text = String::from_utf8_lossy(&scrape.stdout).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let prom = scratch.0.join("metrics.txt");
    std::fs::write(&prom, body).unwrap();
    let check = Command::new("sh")
        .arg("-c")
        .arg(format!("promtool check metrics < {}", prom.display()))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    // The scrape's counters are the report's.
    let opened: f64 = backends
        .iter()
        .map(|b| {
            sample(
                body,
                &format!("qsplice_backend_connections_opened_total{{vip=\"web\",backend=\"{b}\"}}"),
            )
            .unwrap_or_else(|| panic!("no opened counter for {b} in\n{body}"))
        })
        .sum();
    assert!(opened >= 9.0, "opened {opened}");
    // The stats file is rewritten every stats interval: it catches up.
    let reported = wait_for(Duration::from_secs(3), || {
        let n = stats(&json)?["lb"]["vips"][0]["total"]["opened"].as_u64()? as f64;
        (n >= opened).then_some(n)
    })
    .unwrap_or(0.0);
    assert!(
        (opened - reported).abs() <= 2.0,
        "metrics {opened} vs report {reported}"
    );
    for b in &backends {
        assert_eq!(
            sample(
                body,
                &format!("qsplice_backend_up{{vip=\"web\",backend=\"{b}\"}}")
            ),
            Some(1.0),
            "{b} up"
        );
    }
    assert!(body.contains("qsplice_drops_total{"), "drops by reason");
    // Latency histograms from the lcores: every spliced connection counted.
    for h in [
        "qsplice_connection_setup_seconds",
        "qsplice_backend_connect_seconds",
        "qsplice_flow_duration_seconds",
    ] {
        let n = sample(body, &format!("{h}_count")).unwrap_or(0.0);
        assert!(n >= 9.0, "{h}_count = {n}");
        let inf = sample(body, &format!("{h}_bucket{{le=\"+Inf\"}}"));
        assert_eq!(inf, Some(n), "{h}: +Inf bucket = count");
    }
    assert!(
        body.contains("qsplice_mempool_free_mbufs{"),
        "mempool gauge"
    );
    // OpenMetrics when asked for.
    let om = curl(&[
        "-s",
        "-m",
        "5",
        "-D",
        "-",
        "-H",
        "Accept: application/openmetrics-text; version=1.0.0",
        &format!("{url}/metrics"),
    ]);
    let om = String::from_utf8_lossy(&om.stdout).to_string();
    assert!(
        om.contains("application/openmetrics-text"),
        "{}",
        &om[..om.len().min(300)]
    );
    assert!(om.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");

    // A real Prometheus server scrapes it while wrk runs, and its own
    // HTTP API reads a non-zero rate of new connections.
    let prom_port = free_port();
    let prom_dir = scratch.0.join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    std::fs::write(
        prom_dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: qsplice\n    static_configs:\n      - targets: ['{listen}']\n"
        ),
    )
    .unwrap();
    let prom_log = std::fs::File::create(prom_dir.join("prometheus.log")).unwrap();
    let mut prom = KillOnDrop(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                prom_dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                prom_dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(prom_log.try_clone().unwrap())
            .stderr(prom_log)
            .spawn()
            .expect("start prometheus"),
    );
    // `wrk -c4 -d12s` with `Connection: close` in the background.
    let close_load = || {
        let ns = topo.var("CLIENT_NS").to_string();
        std::thread::spawn(move || {
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &ns,
                    "wrk",
                    "-t1",
                    "-c4",
                    "-d12s",
                    "-H",
                    "Connection: close",
                    "http://10.10.1.1/",
                ])
                .output()
                .expect("wrk")
        })
    };
    let wrk = close_load();
    let query = format!(
        "http://127.0.0.1:{prom_port}/api/v1/query?query=sum(rate(qsplice_backend_connections_opened_total%7Bvip%3D%22web%22%7D%5B5s%5D))"
    );
    let rate = wait_for(Duration::from_secs(25), || {
        let o = curl(&["-s", "-m", "2", &query]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        let r: f64 = v["data"]["result"][0]["value"][1].as_str()?.parse().ok()?;
        (r > 0.0).then_some(r)
    });
    let up = curl(&[
        "-s",
        "-m",
        "2",
        &format!("http://127.0.0.1:{prom_port}/api/v1/query?query=up%7Bjob%3D%22qsplice%22%7D"),
    ]);
    assert!(
        rate.is_some(),
        "Prometheus never saw a connection rate; up: {}\n{}",
        String::from_utf8_lossy(&up.stdout),
        std::fs::read_to_string(prom_dir.join("prometheus.log")).unwrap_or_default()
    );
    eprintln!(
        "Prometheus: rate(qsplice_backend_connections_opened_total[5s]) = {:.0}/s",
        rate.unwrap()
    );
    // The status page in a real browser while wrk still runs: headless
    // Chromium loads it, its script polls /api/v1/status, and the rendered
    // DOM has a backend row with a non-zero connection rate.
    let chromium = |extra: &[String]| {
        let profile = scratch.0.join("chromium");
        let mut c = Command::new("timeout");
        c.args([
            "60",
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=6000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("{url}/"));
        c.output().expect("run chromium")
    };
    // Load of its own while the browser renders (the first wrk may be over
    // by now on a slow machine: Prometheus took its time).
    let wrk2 = close_load();
    std::thread::sleep(Duration::from_millis(500));
    let dom = String::from_utf8_lossy(&chromium(&["--dump-dom".to_string()]).stdout).to_string();
    let _ = wrk2.join();
    let rates: Vec<f64> = dom
        .split("<tr class=\"backend\"")
        .skip(1)
        .filter_map(|row| {
            let cell = row.split("<td class=\"rate\">").nth(1)?;
            cell.split('<').next()?.replace(',', "").parse().ok()
        })
        .collect();
    assert_eq!(
        rates.len(),
        6,
        "backend rows of both VIPs in the page: {dom}"
    );
    assert!(
        rates.iter().any(|r| *r > 0.0),
        "a backend row with a non-zero rate: {rates:?}\n{dom}"
    );
    if let Ok(png) = std::env::var("QSPLICE_STATUS_SCREENSHOT") {
        let o = chromium(&[
            format!("--screenshot={png}"),
            "--window-size=1280,1100".to_string(),
        ]);
        assert!(
            o.status.success(),
            "screenshot: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let w = wrk.join().unwrap();
    assert!(
        String::from_utf8_lossy(&w.stdout).contains("requests in"),
        "wrk ran"
    );
    let _ = prom.0.kill();
    let _ = prom.0.wait();

    // Not reachable from the client side: neither through the VIP's
    // address (a data port) nor the namespace's own loopback.
    let ns = topo.var("CLIENT_NS");
    for target in [
        format!("http://10.10.1.1:{port}/metrics"),
        format!("{url}/metrics"),
    ] {
        let o = topo.exec(
            ns,
            &[
                "curl",
                "-s",
                "-m",
                "2",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &target,
            ],
        );
        assert!(
            !o.status.success() && String::from_utf8_lossy(&o.stdout) == "000",
            "{target} answered from the client namespace: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }

    // The access log: one JSON line per connection, written by the control
    // thread from the lcores' records.
    let access = scratch.0.join("access.log");
    let lines = |p: &std::path::Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("access log line {l:?}: {e}"))
            })
            .collect()
    };
    let logged = wait_for(Duration::from_secs(3), || {
        let v = lines(&access);
        (v.iter().filter(|l| l["end"] == "fin").count() >= 9).then_some(v)
    })
    .unwrap_or_else(|| panic!("access log: {:?}", lines(&access)));
    let l = logged.iter().find(|l| l["end"] == "fin").unwrap();
    assert_eq!(l["vip"], "web");
    assert_eq!(l["vip_address"], "10.10.1.1:80");
    assert!(
        l["client"].as_str().unwrap().starts_with("10.10.1.2:"),
        "{l}"
    );
    assert!(backends.iter().any(|b| l["backend"] == b.as_str()), "{l}");
    assert!(
        l["bytes_c2s"].as_u64().unwrap() > 0 && l["bytes_s2c"].as_u64().unwrap() > 0,
        "{l}"
    );
    assert!(l["setup_ms"].as_f64().unwrap() > 0.0, "{l}");
    assert!(l["time"].as_str().unwrap().ends_with('Z'), "{l}");
    // Rotation: move the file away, reopen through ctl, new lines go to a
    // new file.
    std::fs::rename(&access, scratch.0.join("access.log.1")).unwrap();
    ok_json(
        &ctl(&url, Some(&token), &["--json", "reopen-access-log"]),
        "reopen",
    );
    for _ in 0..3 {
        curl_backend(&topo).expect("curl after the rotation");
    }
    let rotated = wait_for(Duration::from_secs(3), || {
        (lines(&access).iter().filter(|l| l["end"] == "fin").count() >= 3).then_some(())
    });
    assert!(
        rotated.is_some(),
        "lines after the reopen: {:?}",
        lines(&access)
    );

    // ctl reads.
    let b = ok_json(&ctl(&url, None, &["--json", "backends"]), "ctl backends");
    let rows = b["backends"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r["admin"] == "up" && r["weight"] == 1));
    assert!(
        rows[..3].iter().all(|r| r["vip"] == "web")
            && rows[3..].iter().all(|r| r["vip"] == "web-tls")
    );
    let st = ctl(&url, None, &["status"]);
    assert!(st.status.success());
    assert!(String::from_utf8_lossy(&st.stdout).contains("vip web 10.10.1.1:80"));
    let table = ctl(&url, None, &["backends"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains(&backends[0]));

    // Changes need the token.
    let denied = ctl(&url, None, &["drain", "web", &backends[0]]);
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    let raw = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "POST",
        "-H",
        "Authorization: Bearer wrong",
        &format!("{url}/api/v1/reload"),
    ]);
    assert_eq!(String::from_utf8_lossy(&raw.stdout), "401");

    // Drain b1: new connections avoid it, ctl and /metrics say so.
    let d = ok_json(
        &ctl(
            &url,
            Some(&token),
            &["--json", "drain", "web", &backends[0]],
        ),
        "ctl drain",
    );
    assert_eq!(d["admin"], "draining");
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..8 {
        let b = curl_backend(&topo).expect("curl while draining");
        *seen.entry(b).or_default() += 1;
    }
    assert!(
        !seen.contains_key(&name_of(&backends[0])),
        "drained backend chosen: {seen:?}"
    );
    let b = ok_json(&ctl(&url, None, &["--json", "backends"]), "ctl backends");
    assert_eq!(b["backends"][0]["admin"], "draining");
    let m = String::from_utf8_lossy(&curl(&["-s", &format!("{url}/metrics")]).stdout).to_string();
    assert_eq!(
        sample(
            &m,
            &format!(
                "qsplice_backend_admin_state{{vip=\"web\",backend=\"{}\",state=\"draining\"}}",
                backends[0]
            )
        ),
        Some(1.0)
    );
    ok_json(
        &ctl(
            &url,
            Some(&token),
            &["--json", "enable", "web", &backends[0]],
        ),
        "ctl enable",
    );
    let back = wait_for(Duration::from_secs(5), || {
        (curl_backend(&topo)? == name_of(&backends[0])).then_some(())
    });
    assert!(back.is_some(), "re-enabled backend never chosen");
    // Weight.
    let w = ok_json(
        &ctl(
            &url,
            Some(&token),
            &["--json", "backend", "web", &backends[1], "--weight", "5"],
        ),
        "weight",
    );
    assert_eq!(w["weight"], 5);
    let m = String::from_utf8_lossy(&curl(&["-s", &format!("{url}/metrics")]).stdout).to_string();
    assert_eq!(
        sample(
            &m,
            &format!(
                "qsplice_backend_weight{{vip=\"web\",backend=\"{}\"}}",
                backends[1]
            )
        ),
        Some(5.0)
    );
    // Bad values: the server's reason, a non-zero exit.
    for (args, want) in [
        (
            vec!["backend", "web", backends[1].as_str(), "--weight", "0"],
            "weight` = `0`: must be between 1 and 1000",
        ),
        (
            vec![
                "backend",
                "web",
                backends[1].as_str(),
                "--state",
                "sideways",
            ],
            "sideways",
        ),
        (
            vec!["drain", "nope", backends[1].as_str()],
            "no VIP named `nope`",
        ),
        (
            vec!["drain", "web", "10.9.9.9:80"],
            "no backend 10.9.9.9:80",
        ),
        (vec!["sessions", "web"], "not session-aware"),
    ] {
        let o = ctl(&url, Some(&token), &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(want), "{args:?}: {err}");
    }

    // Reload: a good file applies (b3's weight from the file), a bad one
    // is refused with its key and nothing changes.
    std::fs::write(&cfg_path, config(&topo, &listen, &token, 3)).unwrap();
    let r = ok_json(
        &ctl(&url, Some(&token), &["--json", "reload"]),
        "ctl reload",
    );
    assert_eq!(r["reloaded"], true);
    let b = ok_json(&ctl(&url, None, &["--json", "backends"]), "ctl backends");
    assert_eq!(b["backends"][2]["weight"], 3);
    std::fs::write(
        &cfg_path,
        config(&topo, &listen, &token, 3).replace("interval_ms = 300", "interval_ms = 0"),
    )
    .unwrap();
    let o = ctl(&url, Some(&token), &["reload"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("lb.health.interval_ms"),
        "{err}"
    );
    std::fs::write(&cfg_path, config(&topo, &listen, &token, 3)).unwrap();

    // Certificate rotation: the files are replaced in place and a reload
    // serves the new certificate to new handshakes (the old CA no longer
    // verifies); the TLS options' `x_forwarded_for` is refused (lcores
    // copied it at start).
    let https = |ca: &str| {
        let ca = scratch.0.join(ca).join("ca.pem");
        topo.exec(
            ns,
            &[
                "curl",
                "-s",
                "-m",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cacert",
                ca.to_str().unwrap(),
                "--resolve",
                "vip.test:443:10.10.1.1",
                "https://vip.test/",
            ],
        )
    };
    assert_eq!(String::from_utf8_lossy(&https("certs").stdout), "200");
    // What is served, and for how long (tls-cert's default: 90 days).
    let tls_state = |what: &str| ok_json(&ctl(&url, None, &["--json", "tls"]), what);
    let st = tls_state("ctl tls");
    let cert = &st["tls"][0]["certificates"][0];
    assert_eq!(st["tls"][0]["vip"], "web-tls", "{st}");
    assert_eq!(cert["names"][0], "vip.test", "{st}");
    let not_after = cert["not_after"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let days = (not_after - now) / 86_400;
    assert!((85..=91).contains(&days), "{days} days left: {st}");
    assert!(
        st["tls"][0]["tickets"]["rotation_s"].as_u64().unwrap() > 0,
        "{st}"
    );
    let m = String::from_utf8_lossy(&curl(&["-s", &format!("{url}/metrics")]).stdout).to_string();
    assert!(
        m.contains("qsplice_tls_certificate_expiry_timestamp_seconds{vip=\"web-tls\""),
        "expiry metric"
    );
    std::fs::create_dir_all(scratch.0.join("old-ca")).unwrap();
    std::fs::copy(
        scratch.0.join("certs/ca.pem"),
        scratch.0.join("old-ca/ca.pem"),
    )
    .unwrap();
    for f in ["ca.pem", "ecdsa-p256.pem", "ecdsa-p256.key"] {
        std::fs::copy(
            scratch.0.join("certs2").join(f),
            scratch.0.join("certs").join(f),
        )
        .unwrap();
    }
    assert_eq!(
        String::from_utf8_lossy(&https("old-ca").stdout),
        "200",
        "the old certificate until the reload"
    );
    ok_json(
        &ctl(&url, Some(&token), &["--json", "reload"]),
        "reload after the rotation",
    );
    assert_eq!(
        String::from_utf8_lossy(&https("certs2").stdout),
        "200",
        "the new certificate"
    );
    let after = tls_state("ctl tls after the rotation");
    assert!(
        after["tls"][0]["certificates"][0]["not_after"]
            .as_i64()
            .unwrap()
            >= not_after
    );
    assert_ne!(
        after["tls"][0]["certificates"][0]["subject"],
        serde_json::Value::Null,
        "{after}"
    );
    let old = https("old-ca").status.code();
    assert!(
        matches!(old, Some(35) | Some(60)),
        "the old CA no longer verifies: curl {old:?}"
    );
    let mut xff = config(&topo, &listen, &token, 3);
    xff = xff.replace(
        "names = [\"vip.test\"] },\n]",
        "names = [\"vip.test\"] },\n]\nx_forwarded_for = true",
    );
    std::fs::write(&cfg_path, &xff).unwrap();
    let o = ctl(&url, Some(&token), &["reload"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("x_forwarded_for"),
        "{err}"
    );
    std::fs::write(&cfg_path, config(&topo, &listen, &token, 3)).unwrap();

    // Twenty live changes under load while wrk runs keep-alive and
    // `Connection: close` through the VIP: weights, drain / enable,
    // backends added and removed, a VIP added, changed, removed (drained
    // and forced) and added again, content rules, a certificate swapped,
    // ticket keys rotated, reloads. Each change is visible in `ctl` and in
    // `/metrics` at once, and not one wrk request fails.
    let rules = scratch.0.join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            "[[rules]]\nhost = \"pinned.test\"\nbackends = [\"{}\"]\n",
            backends[0]
        ),
    )
    .unwrap();
    let served_by = |port: u16, host: &str| -> Option<String> {
        let o = topo.exec(
            ns,
            &[
                "curl",
                "-s",
                "-m",
                "3",
                "-D-",
                "-o",
                "/dev/null",
                "-H",
                &format!("Host: {host}"),
                &format!("http://10.10.1.1:{port}/"),
            ],
        );
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("X-Backend: ").map(|b| b.trim().to_string()))
    };
    let vips_now = || ok_json(&ctl(&url, None, &["--json", "vips"]), "ctl vips");
    let backend_row = |vip: &str, addr: &str| -> Option<serde_json::Value> {
        let b = ok_json(&ctl(&url, None, &["--json", "backends"]), "ctl backends");
        b["backends"]
            .as_array()?
            .iter()
            .find(|r| r["vip"] == vip && r["address"] == addr)
            .cloned()
    };
    let metrics_now =
        || String::from_utf8_lossy(&curl(&["-s", &format!("{url}/metrics")]).stdout).to_string();
    let weight_metric = |vip: &str, b: &str| {
        sample(
            &metrics_now(),
            &format!("qsplice_backend_weight{{vip=\"{vip}\",backend=\"{b}\"}}"),
        )
    };
    let vip_info = |vip: &str| {
        metrics_now()
            .lines()
            .find(|l| l.starts_with(&format!("qsplice_vip_info{{vip=\"{vip}\"")))
            .map(str::to_string)
    };
    let wrk = |close: bool| {
        let ns = topo.var("CLIENT_NS").to_string();
        std::thread::spawn(move || {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &ns, "wrk", "-t1", "-c8", "-d14s"]);
            if close {
                c.args(["-H", "Connection: close"]);
            }
            let o = c.arg("http://10.10.1.1/").output().expect("wrk");
            String::from_utf8_lossy(&o.stdout).to_string()
        })
    };
    let (keep, close) = (wrk(false), wrk(true));
    let under_load = std::time::Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    let (b1, b2, b3) = (
        backends[0].as_str(),
        backends[1].as_str(),
        backends[2].as_str(),
    );
    let change = |i: usize, args: &[&str]| -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let v = ok_json(
            &ctl(&url, Some(&token), &a),
            &format!("change {i}: {args:?}"),
        );
        std::thread::sleep(Duration::from_millis(150));
        v
    };
    // 1. a weight
    change(1, &["backend", "web", b1, "--weight", "4"]);
    assert_eq!(backend_row("web", b1).unwrap()["weight"], 4);
    assert_eq!(weight_metric("web", b1), Some(4.0));
    // 2-3. drain, enable
    change(2, &["drain", "web", b2]);
    assert_eq!(backend_row("web", b2).unwrap()["admin"], "draining");
    change(3, &["enable", "web", b2]);
    assert_eq!(backend_row("web", b2).unwrap()["admin"], "up");
    // 4. a VIP added: serves at once, listed, in /metrics
    change(
        4,
        &[
            "add-vip",
            "--name",
            "extra",
            "--address",
            "10.10.1.1:8080",
            "--backend",
            b1,
            "--backend",
            &format!("{b2}=2"),
        ],
    );
    let v = vips_now();
    let extra = v["vips"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "extra");
    assert_eq!(
        extra.map(|e| e["policy"].clone()),
        Some("round-robin".into()),
        "{v}"
    );
    assert!(served_by(8080, "x").is_some(), "the added VIP serves");
    assert!(vip_info("extra").is_some_and(|l| l.contains("state=\"serving\"")));
    // 5. a backend removed from the loaded VIP: it drains (listed as
    // removed while wrk's keep-alive connections to it last)
    change(5, &["remove-backend", "web", b3]);
    let row = backend_row("web", b3);
    assert!(
        row.as_ref().is_none_or(|r| r["admin"] == "removed"),
        "{row:?}"
    );
    for _ in 0..6 {
        assert_ne!(
            curl_backend(&topo).as_deref(),
            Some(name_of(b3).as_str()),
            "no new connection to a removed backend"
        );
    }
    // 6. a VIP's policy
    change(6, &["set-vip", "extra", "--policy", "least-connections"]);
    assert!(vip_info("extra").is_some_and(|l| l.contains("policy=\"least-connections\"")));
    // 7. the backend added back (same slot, new weight)
    change(7, &["add-backend", "web", b3, "--weight", "2"]);
    assert_eq!(backend_row("web", b3).unwrap()["admin"], "up");
    assert_eq!(weight_metric("web", b3), Some(2.0));
    // 8. the certificate swapped in place, reloaded on its own
    for f in ["ca.pem", "ecdsa-p256.pem", "ecdsa-p256.key"] {
        std::fs::copy(
            scratch.0.join("certs3").join(f),
            scratch.0.join("certs").join(f),
        )
        .unwrap();
    }
    change(8, &["reload-tls"]);
    assert_eq!(
        String::from_utf8_lossy(&https("certs3").stdout),
        "200",
        "the swapped certificate"
    );
    // 9. ticket keys rotated now
    let rot = |st: &serde_json::Value| st["tls"][0]["tickets"]["rotations"].as_u64().unwrap_or(0);
    let before = rot(&tls_state("tls before rotation"));
    change(9, &["rotate-tickets"]);
    assert!(rot(&tls_state("tls after rotation")) > before);
    // 10. the loaded VIP's first content rule, live
    change(
        10,
        &["set-vip", "web", "--rules-file", rules.to_str().unwrap()],
    );
    for _ in 0..4 {
        assert_eq!(
            served_by(80, "pinned.test"),
            Some(name_of(b1)),
            "the rule pins the host"
        );
    }
    // 11. a backend added to the new VIP
    change(11, &["add-backend", "extra", b3]);
    assert!(backend_row("extra", b3).is_some());
    // 12. the new VIP removed: refused at once, gone from the listing
    change(12, &["remove-vip", "extra"]);
    assert_eq!(served_by(8080, "x"), None, "a removed VIP refuses");
    let v = vips_now();
    assert!(
        !v["vips"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "extra"),
        "{v}"
    );
    assert!(vip_info("extra").is_none());
    // 13. the file again: the API's changes are replaced by it (HAProxy's
    // runtime API semantics), the rule goes with them
    change(13, &["reload"]);
    assert_eq!(backend_row("web", b1).unwrap()["weight"], 1);
    assert_eq!(backend_row("web", b3).unwrap()["weight"], 3);
    // 14-15. a state down and up
    change(14, &["backend", "web", b1, "--state", "down"]);
    assert_eq!(backend_row("web", b1).unwrap()["admin"], "down");
    change(15, &["enable", "web", b1]);
    // 16. the VIP added again (its slot reopens) with a weighted policy
    change(
        16,
        &[
            "add-vip",
            "--name",
            "extra",
            "--address",
            "10.10.1.1:8080",
            "--backend",
            b2,
            "--policy",
            "weighted-round-robin",
        ],
    );
    assert_eq!(served_by(8080, "x"), Some(name_of(b2)));
    // 17. a backend removed with --force, 18. another added
    change(17, &["add-backend", "extra", b1]);
    change(18, &["remove-backend", "extra", b2, "--force"]);
    assert_eq!(served_by(8080, "x"), Some(name_of(b1)));
    // 19. the VIP removed with --force
    change(19, &["remove-vip", "extra", "--force"]);
    assert_eq!(served_by(8080, "x"), None);
    // 20. the file once more
    change(20, &["reload"]);
    eprintln!(
        "20 live changes made in {:?} of wrk's 14 s",
        under_load.elapsed()
    );
    for (what, h) in [("keep-alive", keep), ("Connection: close", close)] {
        let out = h.join().unwrap();
        assert!(out.contains("requests in"), "{what}: {out}");
        assert!(
            !out.contains("Socket errors") && !out.contains("Non-2xx"),
            "{what} under 20 changes: {out}"
        );
    }
    // A TLS-terminated VIP added live from a file (one `[[lb.vips]]` entry
    // in TOML), serving HTTPS at once with its certificate, then removed.
    let tls_vip = scratch.0.join("tls-vip.toml");
    std::fs::write(
        &tls_vip,
        format!(
            "name = \"tls-live\"\naddress = \"10.10.1.1:8443\"\ntls = \"terminate\"\n\
             backends = [{{ address = \"{b2}\" }}]\n\n[tls_options]\ncertificates = [\n    \
             {{ cert = \"{c}/ecdsa-p256.pem\", key = \"{c}/ecdsa-p256.key\", names = [\"vip.test\"] }},\n]\n",
            c = scratch.0.join("certs").display()
        ),
    )
    .unwrap();
    ok_json(
        &ctl(
            &url,
            Some(&token),
            &["--json", "add-vip", "--file", tls_vip.to_str().unwrap()],
        ),
        "add a TLS VIP from a file",
    );
    let https8443 = topo.exec(
        ns,
        &[
            "curl",
            "-s",
            "-m",
            "5",
            "-D-",
            "-o",
            "/dev/null",
            "--cacert",
            scratch.0.join("certs3/ca.pem").to_str().unwrap(),
            "--resolve",
            "vip.test:8443:10.10.1.1",
            "https://vip.test:8443/",
        ],
    );
    let head = String::from_utf8_lossy(&https8443.stdout).to_string();
    assert!(
        head.starts_with("HTTP/1.1 200") && head.contains(&format!("X-Backend: {}", name_of(b2))),
        "HTTPS through a VIP added live: {head}"
    );
    let t = ok_json(&ctl(&url, None, &["--json", "tls"]), "ctl tls");
    assert!(
        t["tls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["vip"] == "tls-live"),
        "{t}"
    );
    ok_json(
        &ctl(&url, Some(&token), &["--json", "remove-vip", "tls-live"]),
        "remove the TLS VIP",
    );

    // Refusals name what and why, and change nothing.
    for (args, want) in [
        (
            vec![
                "add-vip",
                "--name",
                "bad",
                "--address",
                "10.10.1.1:8081",
                "--backend",
                "10.77.0.1:80",
            ],
            "backends[0].address",
        ),
        (
            vec![
                "add-vip",
                "--name",
                "web2",
                "--address",
                "10.10.1.1:80",
                "--backend",
                b1,
            ],
            "exists",
        ),
        (vec!["add-backend", "web", b1], "already"),
        (
            vec!["add-backend", "web", "10.10.2.77:80", "--weight", "0"],
            "weight",
        ),
        (
            vec!["set-vip", "web", "--policy", "session-aware"],
            "session-aware",
        ),
        (vec!["remove-backend", "web", "10.10.2.77:80"], "no backend"),
    ] {
        let o = ctl(&url, Some(&token), &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(want), "{args:?}: {err}");
    }
    // The refusals changed nothing; the TLS VIP removed above is listed
    // (as removed) until curl's connection through it has drained and the
    // lcores have republished their TLS gauges (every 100 ms).
    let listed = wait_for(Duration::from_secs(5), || {
        let n = vips_now()["vips"].as_array().unwrap().len();
        (n == 2).then_some(n)
    });
    assert_eq!(listed, Some(2), "{}", vips_now());

    // A second appliance cannot take the same listener: it stops before
    // touching a port, naming the key.
    let second = Command::new(env!("CARGO_BIN_EXE_qsplice"))
        .args([
            "lb",
            "--config",
            cfg_path.to_str().unwrap(),
            "--duration",
            "5",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success() && err.contains("management.listen"),
        "{err}"
    );

    // Still serving, and the listener still answers.
    assert!(curl_backend(&topo).is_some());

    // A backend that stops answering mid-transfer (SIGSTOP): health checks
    // mark it down and its connection is reset toward the client at once
    // (lb.health.on_down = "reset"), instead of hanging until the idle
    // timeout.
    let hdr = scratch.0.join("stall.hdr");
    let stall = {
        let ns = topo.var("CLIENT_NS").to_string();
        let hdr = hdr.clone();
        std::thread::spawn(move || {
            let t = std::time::Instant::now();
            let o = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &ns,
                    "curl",
                    "-s",
                    "-m",
                    "60",
                    "--limit-rate",
                    "50k",
                    "-o",
                    "/dev/null",
                    "-D",
                ])
                .arg(&hdr)
                .arg("http://10.10.1.1/1m.bin")
                .output()
                .expect("curl");
            (o.status.code(), t.elapsed())
        })
    };
    let served_by = wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(&hdr)
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("X-Backend: ").map(|b| b.trim().to_string()))
    })
    .expect("the stalled download's backend");
    let stopped_ns = format!("{}-{served_by}", topo.prefix);
    let pids = Command::new("ip")
        .args(["netns", "pids", &stopped_ns])
        .output()
        .unwrap();
    let pids: Vec<String> = String::from_utf8_lossy(&pids.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert!(!pids.is_empty(), "processes of {stopped_ns}");
    let before = stats(&json).unwrap()["lb"]["total"]["conn_reset_backend_down"]
        .as_u64()
        .unwrap_or(0);
    let stopped_at = std::time::Instant::now();
    for p in &pids {
        let _ = Command::new("kill").args(["-STOP", p]).status();
    }
    let (rc, _) = stall.join().unwrap();
    let took = stopped_at.elapsed();
    for p in &pids {
        let _ = Command::new("kill").args(["-CONT", p]).status();
    }
    assert!(
        matches!(rc, Some(56) | Some(18)),
        "the client sees a reset, curl rc {rc:?}"
    );
    assert!(
        took < Duration::from_secs(6),
        "reset {took:?} after the backend stopped"
    );
    let after = wait_for(Duration::from_secs(3), || {
        let n = stats(&json)?["lb"]["total"]["conn_reset_backend_down"].as_u64()?;
        (n > before).then_some(n)
    });
    assert!(after.is_some(), "conn_reset_backend_down counted");
    // It comes back once it answers again.
    wait_vip0_healthy(&app, &json);

    // Graceful shutdown through ctl: a download in progress completes, a
    // slower one is reset when the grace period (3 s) ends, a new
    // connection is refused at once, and the process exits 0.
    let want = std::fs::read_to_string(topo.var("SHA256SUMS"))
        .unwrap()
        .lines()
        .find_map(|l| {
            let (h, n) = l.split_once(char::is_whitespace)?;
            (n.trim().trim_start_matches('*') == "1m.bin").then(|| h.to_string())
        })
        .expect("1m.bin in SHA256SUMS");
    let download = |rate: &'static str| {
        let ns = topo.var("CLIENT_NS").to_string();
        let out = scratch.0.join(format!("dl-{rate}.bin"));
        std::thread::spawn(move || {
            let o = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &ns,
                    "curl",
                    "-s",
                    "-m",
                    "30",
                    "--limit-rate",
                    rate,
                    "-o",
                ])
                .arg(&out)
                .arg("http://10.10.1.1/1m.bin")
                .output()
                .expect("curl");
            let sum = Command::new("sha256sum").arg(&out).output().map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string()
            });
            (o.status.code(), sum.unwrap_or_default())
        })
    };
    let fast = download("600k");
    let slow = download("60k");
    std::thread::sleep(Duration::from_millis(500));
    let t0 = std::time::Instant::now();
    ok_json(
        &ctl(&url, Some(&token), &["--json", "shutdown"]),
        "ctl shutdown",
    );
    std::thread::sleep(Duration::from_millis(200));
    let refused = topo.exec(
        ns,
        &[
            "curl",
            "-s",
            "-m",
            "3",
            "-o",
            "/dev/null",
            "http://10.10.1.1/",
        ],
    );
    assert_eq!(
        refused.status.code(),
        Some(7),
        "a new connection is refused at once (curl: couldn't connect)"
    );
    let (fast_rc, fast_sum) = fast.join().unwrap();
    assert_eq!(fast_rc, Some(0), "the download in progress completes");
    assert_eq!(fast_sum, want, "and is byte-exact");
    let (slow_rc, _) = slow.join().unwrap();
    assert_ne!(
        slow_rc,
        Some(0),
        "the slow download is reset at the end of the grace period"
    );
    let mut app = app;
    let mut exit = None;
    for _ in 0..100 {
        if let Ok(Some(st)) = app.child.try_wait() {
            exit = Some(st);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let waited = t0.elapsed();
    assert!(
        exit.is_some_and(|c| c.success()),
        "clean exit after the grace period\n{}",
        app.logs()
    );
    assert!(
        waited >= Duration::from_millis(2800) && waited < Duration::from_secs(8),
        "exit after the 3 s grace period, took {waited:?}"
    );
    let v = stats(&json).unwrap();
    let t = |k: &str| v["lb"]["total"][k].as_u64().unwrap_or(0);
    assert!(t("syn_refused_shutdown") >= 1, "{}", v["lb"]["total"]);
    assert_eq!(
        t("conn_reset_shutdown"),
        1,
        "the slow download: {}",
        v["lb"]["total"]
    );
    // The last lines tell how each of those ended.
    let ends: Vec<String> = lines(&access)
        .iter()
        .map(|l| l["end"].as_str().unwrap_or("").to_string())
        .collect();
    for want in ["backend_down", "shutdown"] {
        assert!(ends.iter().any(|e| e == want), "{want} in {ends:?}");
    }
    assert_eq!(t("access_log_lost"), 0);
    // Every spliced connection is accounted for after the shutdown
    // (docs/operations.md, invariant 2, with the shutdown's counters).
    let opened = t("conn_opened") + t("conn_retried");
    let ended = t("conn_refused")
        + t("conn_timeout")
        + t("conn_client_abort")
        + t("conn_closed")
        + t("conn_idle")
        + t("conn_reset_shutdown")
        + t("conn_abort_shutdown")
        + t("flows_active");
    assert_eq!(opened, ended, "{}", v["lb"]["total"]);
    assert_eq!(t("flows_active"), 0);
    assert_eq!(
        t("tls_accepted"),
        t("tls_completed") + t("tls_failed"),
        "{}",
        v["lb"]["total"]
    );
}
