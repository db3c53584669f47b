//! End to end: session-aware dispatch (issue 5) on a TLS pass-through VIP
//! in front of three nginx backends that each terminate TLS with their own
//! session cache and ticket keys (a session resumes only where it was
//! made), against round robin on the same backends in the same run.
//!
//! TLS 1.2 session IDs (`openssl s_client -no_ticket -sess_out/-sess_in`)
//! and TLS 1.3 tickets (Go crypto/tls) are resumed through both VIPs; the
//! session-aware VIP must resume ≥ 95% of attempts, round robin about a
//! third; expired table rows send a session back to the scheduler.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

fn config(topo: &Topology, dir: &Path) -> PathBuf {
    let base = demo_config(topo, "");
    let backends: Vec<String> = topo
        .var("BACKENDS")
        .split_whitespace()
        .map(|b| format!("    {{ address = \"{b}:443\" }},"))
        .collect();
    let backends = backends.join("\n");
    let http = backends.replace(":443", ":80");
    let cfg = format!(
        r#"{base}
[lb]
client_port = "client"
backend_port = "backend"

[lb.access_log]
path = "{access}"

[lb.health]
kind = "tcp"
interval_ms = 300
timeout_ms = 250

[lb.sessions]
max_age_s = 3
sweep_interval_ms = 200

[[lb.vips]]
name = "sa"
address = "10.10.1.1:443"
policy = "session-aware"
backends = [
{backends}
]

[[lb.vips]]
name = "web"
address = "10.10.1.1:80"
backends = [
{http}
]
[[lb.vips.rules]]
host = "img.test"
backends = ["10.10.2.12:80"]
[[lb.vips.rules]]
path_prefix = "/whoami"
backends = ["10.10.2.13:80"]
[[lb.vips.rules]]
cookie = "srv=b1"
backends = ["10.10.2.11:80"]

[[lb.vips]]
name = "rr"
address = "10.10.1.1:8443"
policy = "round-robin"
backends = [
{backends}
]
"#,
        access = dir.join("access.log").display(),
    );
    let path = dir.join("sessions.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// `openssl s_client` TLS 1.2 without tickets; returns whether it resumed.
fn s_client(topo: &Topology, ca: &str, port: u16, sess: &Path, save: bool) -> Option<bool> {
    let connect = format!("10.10.1.1:{port}");
    let sess = sess.to_str().unwrap();
    let cmd = format!(
        "echo | ip netns exec {} openssl s_client -connect {connect} -tls1_2 -no_ticket -CAfile {ca} -servername vip.test {} {sess} 2>/dev/null",
        topo.var("CLIENT_NS"),
        if save { "-sess_out" } else { "-sess_in" }
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

/// `sessions` sessions, each resumed `resumes` times; returns (resumed,
/// attempts).
fn tls12_workload(
    topo: &Topology,
    ca: &str,
    port: u16,
    dir: &Path,
    sessions: u32,
    resumes: u32,
) -> (u32, u32) {
    let (mut resumed, mut attempts) = (0, 0);
    for s in 0..sessions {
        let sess = dir.join(format!("sess-{port}-{s}.pem"));
        assert_eq!(
            s_client(topo, ca, port, &sess, true),
            Some(false),
            "new session"
        );
        // the learning event is in the lcores' view within a control step
        // (5 ms) or two; `view_lag_max_us` below bounds it
        std::thread::sleep(Duration::from_millis(50));
        for _ in 0..resumes {
            attempts += 1;
            if s_client(topo, ca, port, &sess, false) == Some(true) {
                resumed += 1;
            }
        }
    }
    (resumed, attempts)
}

#[test]
fn session_aware_dispatch_end_to_end() {
    if !require_root() {
        return;
    }
    let topo = Topology::up_with("qss", 3, &[]);
    let scratch = Scratch::new("e2e-sessions");
    let cfg = config(&topo, &scratch.0);
    let ca = topo.var("TLS_CA").to_string();
    let (mut app, json) = spawn_lb(&scratch.0, &cfg);
    wait_vip0_healthy(&app, &json);

    // 1. TLS 1.2 session IDs: session-aware vs round robin.
    let (sa_r, sa_n) = tls12_workload(&topo, &ca, 443, &scratch.0, 30, 2);
    // the stats file is rewritten every 200 ms: wait for the last handshakes
    let sum = |v: &serde_json::Value, k: &str| -> u64 {
        v["lb"]["vips"][0]["backends"]
            .as_array()
            .map_or(0, |a| a.iter().map(|b| b[k].as_u64().unwrap_or(0)).sum())
    };
    let v = wait_for(Duration::from_secs(3), || {
        let v = stats(&json)?;
        (sum(&v, "tls_new") + sum(&v, "tls_resumed") >= u64::from(sa_n) + 30).then_some(v)
    })
    .unwrap_or_else(|| stats(&json).unwrap());
    let (rr_r, rr_n) = tls12_workload(&topo, &ca, 8443, &scratch.0, 8, 4);
    eprintln!("TLS 1.2 resumed: session-aware {sa_r}/{sa_n}, round robin {rr_r}/{rr_n}");
    assert!(
        f64::from(sa_r) >= 0.95 * f64::from(sa_n),
        "session-aware resumed {sa_r}/{sa_n}\n{}",
        app.logs()
    );
    assert!(
        f64::from(rr_r) <= 0.6 * f64::from(rr_n),
        "round robin resumed {rr_r}/{rr_n}: the backends do not share sessions?"
    );
    // New sessions (full handshakes, read from each backend's
    // ServerHello) stay within ±15% of the mean: the table only steers
    // resumptions, new sessions go round robin (each of the two lcores
    // keeps its own turn: ≤ ±1 each, ±1.33 of a mean of 10 at worst).
    let backends = v["lb"]["vips"][0]["backends"].as_array().unwrap();
    let count = |k: &str| -> Vec<u64> {
        backends
            .iter()
            .map(|b| b[k].as_u64().unwrap_or(0))
            .collect()
    };
    let (new, resumed) = (count("tls_new"), count("tls_resumed"));
    eprintln!("session-aware per backend: new sessions {new:?}, resumed {resumed:?}");
    let mean = new.iter().sum::<u64>() as f64 / new.len() as f64;
    assert!(
        mean >= 10.0,
        "30 sessions and any failed resumptions: {new:?}"
    );
    assert!(
        new.iter().all(|&n| (n as f64 - mean).abs() <= 0.15 * mean),
        "new-session load within ±15% of the mean: {new:?}"
    );
    assert_eq!(resumed.iter().sum::<u64>(), u64::from(sa_r), "{resumed:?}");
    let t = &v["lb"]["total"];
    assert!(t["sa_hits"].as_u64().unwrap_or(0) >= 57, "{t}");
    // The access log records each decision: as many `hit` lines on the
    // session-aware VIP as table hits.
    let hits = t["sa_hits"].as_u64().unwrap_or(0) as usize;
    let logged = wait_for(Duration::from_secs(3), || {
        let n = std::fs::read_to_string(scratch.0.join("access.log"))
            .ok()?
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| l["vip"] == "sa" && l["session"] == "hit")
            .count();
        (n >= hits).then_some(n)
    });
    assert!(logged.is_some(), "{hits} `hit` lines in the access log");
    let hit_resumed = wait_for(Duration::from_secs(3), || {
        let n = stats(&json)?["lb"]["total"]["sa_hit_resumed"].as_u64()?;
        (n as f64 >= 0.95 * f64::from(sa_n)).then_some(n)
    });
    assert!(
        hit_resumed.is_some(),
        "resumptions come from table hits: {t}"
    );
    assert!(t["sa_learned"].as_u64().unwrap_or(0) >= 30, "{t}");
    // The lcores' view of the table: every event published well within a
    // sweep interval (200 ms here).
    let view = &v["lb"]["session_view"];
    eprintln!("session table view: {view}");
    assert!(view["events"].as_u64().unwrap_or(0) >= 60, "{view}");
    let lag = view["view_lag_max_us"].as_u64().unwrap_or(u64::MAX);
    assert!(
        lag > 0 && lag < 200_000,
        "view lag {lag} µs ≥ sweep interval"
    );

    // 1a. BUSY at session grain: while a connection serves a session on its
    //     backend, a second connection offering that session is not sent
    //     there from the table (scheduler fallback, counted); once the first
    //     ends, the session resumes there again.
    let newest = |after: &str| -> Option<(String, String)> {
        wait_for(Duration::from_secs(3), || {
            let v = stats(&json)?;
            let top = v["lb"]["vips"][0]["session_rows"]
                .as_array()?
                .first()?
                .clone();
            let key = top["key"].as_str()?.to_string();
            (key != after).then(|| (key, top["rows"][0][0].as_str().unwrap_or("").to_string()))
        })
    };
    let before = stats(&json).unwrap()["lb"]["vips"][0]["session_rows"][0]["key"]
        .as_str()
        .unwrap_or("")
        .to_string();
    // Hostile segments to the session-aware VIP: dropped and counted.
    {
        let sess = scratch.0.join("sess-hostile.pem");
        hostile_segments(&topo, &json, &app, 443, true, || {
            s_client(&topo, &ca, 443, &sess, true).is_some()
        });
    }
    let sess = scratch.0.join("sess-busy.pem");
    assert_eq!(s_client(&topo, &ca, 443, &sess, true), Some(false));
    let (held_key, _) = newest(&before).expect("the new session in the dump");
    let fallback = |k: &str| -> u64 {
        stats(&json).unwrap()["lb"]["total"][k]
            .as_u64()
            .unwrap_or(0)
    };
    let (busy_before, session_busy_before) = (
        fallback("sa_fallback_busy"),
        fallback("sa_fallback_session_busy"),
    );
    // held open for 5 s (stdin closes then), far longer than the steps below
    let mut holder = hold_session(&topo, &ca, &sess, 5);
    let shown = wait_for(Duration::from_secs(3), || {
        let v = stats(&json)?;
        let rows = v["lb"]["vips"][0]["session_rows"].as_array()?.clone();
        rows.iter()
            .any(|r| r["key"] == held_key.as_str() && r["rows"][0][2] == "busy(1)")
            .then_some(())
    });
    assert!(shown.is_some(), "the held session is busy(1) in the dump");
    let _ = s_client(&topo, &ca, 443, &sess, false);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        fallback("sa_fallback_busy"),
        busy_before + 1,
        "the second connection fell back: its only candidate was busy"
    );
    assert_eq!(
        fallback("sa_fallback_session_busy"),
        session_busy_before + 1,
        "counted as busy with the session"
    );
    let _ = holder.0.wait();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        s_client(&topo, &ca, 443, &sess, false),
        Some(true),
        "idle again: resumed on its backend"
    );
    assert!(
        v["lb"]["vips"][0]["sessions"]["sessions"]
            .as_u64()
            .unwrap_or(0)
            >= 1
    );

    // 1b. The table dump names backends; a draining backend is never
    //     chosen from the table (the scheduler takes the session).
    let sess = scratch.0.join("sess-drain.pem");
    assert_eq!(s_client(&topo, &ca, 443, &sess, true), Some(false));
    // learned (≤ 100 ms) and in the next stats file (200 ms): the newest row
    std::thread::sleep(Duration::from_millis(700));
    let holder = wait_for(Duration::from_secs(3), || {
        let v = stats(&json)?;
        let top = v["lb"]["vips"][0]["session_rows"]
            .as_array()?
            .first()?
            .clone();
        top["rows"][0][0].as_str().map(str::to_string)
    })
    .expect("the new session in the table dump");
    assert!(holder.ends_with(":443"), "{holder}");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let entry = format!("{{ address = \"{holder}\" }}");
    let drained = text.replacen(
        &entry,
        &format!("{{ address = \"{holder}\", state = \"draining\" }}"),
        1,
    );
    assert_ne!(text, drained);
    reload(&app, &cfg, &drained);
    let v = wait_for(Duration::from_secs(5), || {
        let v = stats(&json)?;
        let b = v["lb"]["vips"][0]["backends"]
            .as_array()?
            .iter()
            .find(|b| b["address"] == holder.as_str())?
            .clone();
        (b["admin"] == "draining").then_some(v)
    })
    .expect("backend draining after SIGHUP");
    let (busy0, opened0) = (
        v["lb"]["total"]["sa_fallback_busy"].as_u64().unwrap_or(0),
        opened_of_addr(&v, &holder),
    );
    assert_eq!(
        s_client(&topo, &ca, 443, &sess, false),
        Some(false),
        "resumed elsewhere is a new session"
    );
    std::thread::sleep(Duration::from_millis(500));
    let v = stats(&json).unwrap();
    assert!(
        v["lb"]["total"]["sa_fallback_busy"].as_u64().unwrap_or(0) > busy0,
        "{}",
        v["lb"]["total"]
    );
    assert_eq!(
        opened_of_addr(&v, &holder),
        opened0,
        "the draining backend got no new connection"
    );
    reload(&app, &cfg, &text);
    std::thread::sleep(Duration::from_millis(500));

    // 1b'. A backend at its connection limit is not chosen from the table:
    //      two sessions on one backend X (four new sessions over three
    //      backends: two share one), X limited to one connection, one held
    //      open on X by resuming the first; the second session then falls
    //      back to the scheduler, which picks a backend with room.
    let mut on: Vec<(PathBuf, String)> = Vec::new();
    // Every session the dump shows now is old: a new one is a key not seen.
    let rows_of = |v: &serde_json::Value| -> Vec<(String, String)> {
        v["lb"]["vips"][0]["session_rows"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| {
                        Some((
                            r["key"].as_str()?.to_string(),
                            r["rows"][0][0].as_str().unwrap_or("").to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut seen: std::collections::HashSet<String> = rows_of(&stats(&json).unwrap())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for i in 0..4 {
        let sess = scratch.0.join(format!("sess-limit-{i}.pem"));
        assert_eq!(s_client(&topo, &ca, 443, &sess, true), Some(false));
        let (key, backend) = wait_for(Duration::from_secs(3), || {
            rows_of(&stats(&json)?)
                .into_iter()
                .find(|(k, _)| !seen.contains(k))
        })
        .expect("the new session in the dump");
        seen.insert(key);
        on.push((sess, backend));
    }
    let (x, p, q) = (0..4)
        .flat_map(|i| (i + 1..4).map(move |j| (i, j)))
        .find(|&(i, j)| on[i].1 == on[j].1)
        .map(|(i, j)| (on[i].1.clone(), on[i].0.clone(), on[j].0.clone()))
        .expect("two of four sessions share a backend");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let entry = format!("{{ address = \"{x}\" }}");
    let limited = text.replacen(
        &entry,
        &format!("{{ address = \"{x}\", max_conns = 1 }}"),
        1,
    );
    assert_ne!(text, limited);
    reload(&app, &cfg, &limited);
    std::thread::sleep(Duration::from_millis(500));
    let mut holder = hold_session(&topo, &ca, &p, 4);
    // held on X (wait for it: a loaded box can take a while to run
    // openssl), and X's total republished (≤ 100 ms) to both lcores
    let held = wait_for(Duration::from_secs(3), || {
        let v = stats(&json)?;
        v["lb"]["vips"][0]["backends"]
            .as_array()?
            .iter()
            .find(|b| b["address"] == x.as_str())
            .and_then(|b| b["active"].as_u64())
            .filter(|a| *a >= 1)
    });
    assert!(
        held.is_some(),
        "the held session's connection on X ({x}): {}\n{}",
        stats(&json).unwrap()["lb"]["vips"][0]["backends"],
        stats(&json).unwrap()["lb"]["total"]
    );
    std::thread::sleep(Duration::from_millis(400));
    let v = stats(&json).unwrap();
    let (busy0, opened0) = (
        v["lb"]["total"]["sa_fallback_busy"].as_u64().unwrap_or(0),
        opened_of_addr(&v, &x),
    );
    assert_eq!(
        s_client(&topo, &ca, 443, &q, false),
        Some(false),
        "X is full: the session is made anew elsewhere"
    );
    std::thread::sleep(Duration::from_millis(300));
    let v = stats(&json).unwrap();
    assert_eq!(
        v["lb"]["total"]["sa_fallback_busy"].as_u64().unwrap_or(0),
        busy0 + 1,
        "{}",
        v["lb"]["total"]
    );
    assert_eq!(
        opened_of_addr(&v, &x),
        opened0,
        "no connection to the full backend"
    );
    assert!(
        v["lb"]["total"]["sa_fallback_backend"]
            .as_u64()
            .unwrap_or(0)
            >= 2,
        "drained, then full: {}",
        v["lb"]["total"]
    );
    let _ = holder.0.wait();
    reload(&app, &cfg, &text);
    std::thread::sleep(Duration::from_millis(500));

    // 1c. Content-aware dispatch on the plaintext VIP: Host, path prefix,
    //     cookie rules; unmatched requests go round robin.
    let backend_of = |args: &[&str]| -> String {
        let mut a = vec!["curl", "-s", "-m", "5", "-D-", "-o", "/dev/null"];
        a.extend_from_slice(args);
        let out = topo.exec(topo.var("CLIENT_NS"), &a);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("X-Backend: ").map(|b| b.trim().to_string()))
            .unwrap_or_default()
    };
    for _ in 0..3 {
        assert_eq!(
            backend_of(&["-H", "Host: img.test", "http://10.10.1.1/"]),
            "b2"
        );
        assert_eq!(backend_of(&["http://10.10.1.1/whoami"]), "b3");
        assert_eq!(
            backend_of(&["-b", "x=1; srv=b1", "http://10.10.1.1/"]),
            "b1"
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        seen.insert(backend_of(&["http://10.10.1.1/"]));
    }
    assert_eq!(seen.len(), 3, "unmatched requests round robin: {seen:?}");
    let matched = wait_for(Duration::from_secs(3), || {
        let t = stats(&json)?["lb"]["total"].clone();
        (t["ca_matched"].as_u64()? >= 9).then_some(())
    });
    assert!(matched.is_some(), "ca_matched counts the 9 rule hits");
    // Rules change live: a reload that sends img.test to b3 instead of b2
    // applies to the next request; then back.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let moved = text.replacen(
        "host = \"img.test\"\nbackends = [\"10.10.2.12:80\"]",
        "host = \"img.test\"\nbackends = [\"10.10.2.13:80\"]",
        1,
    );
    assert_ne!(moved, text, "the rule to change");
    reload(&app, &cfg, &moved);
    let now_b3 = wait_for(Duration::from_secs(3), || {
        (backend_of(&["-H", "Host: img.test", "http://10.10.1.1/"]) == "b3").then_some(())
    });
    assert!(
        now_b3.is_some(),
        "img.test to b3 after the reload\n{}",
        app.logs()
    );
    reload(&app, &cfg, &text);
    let back = wait_for(Duration::from_secs(3), || {
        (backend_of(&["-H", "Host: img.test", "http://10.10.1.1/"]) == "b2").then_some(())
    });
    assert!(back.is_some(), "img.test back to b2");

    // 2. Expiry: rows older than max_age_s (3 s) are swept; the session
    //    then goes to the scheduler.
    let sess = scratch.0.join("sess-expiry.pem");
    assert_eq!(s_client(&topo, &ca, 443, &sess, true), Some(false));
    std::thread::sleep(Duration::from_millis(300));
    let before = stats(&json).unwrap()["lb"]["total"]["sa_misses"]
        .as_u64()
        .unwrap_or(0);
    std::thread::sleep(Duration::from_secs(4));
    let gone = wait_for(Duration::from_secs(5), || {
        let v = stats(&json)?;
        (v["lb"]["vips"][0]["sessions"]["sessions"].as_u64()? == 0).then_some(v)
    });
    assert!(
        gone.is_some(),
        "rows expired: {:?}",
        stats(&json).map(|v| v["lb"]["vips"][0]["sessions"].clone())
    );
    let _ = s_client(&topo, &ca, 443, &sess, false);
    std::thread::sleep(Duration::from_millis(500));
    let after = stats(&json).unwrap()["lb"]["total"]["sa_misses"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        after > before,
        "an expired session is a table miss ({before} → {after})"
    );

    // 3. TLS 1.3 tickets (Go): they travel encrypted; the first accepted
    //    resumption teaches the backend's ticket key name.
    let go = ["go", "/usr/local/bin/go"].into_iter().find(|g| {
        Command::new(g)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if let Some(go) = go {
        let bin = scratch.0.join("tlsclient");
        let ok = Command::new(go)
            .args(["build", "-o", bin.to_str().unwrap(), "."])
            .current_dir(repo_root().join("tests/tools/tlsclient"))
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-mod=mod")
            .env("GOCACHE", scratch.0.join("gocache"))
            .env("HOME", &scratch.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "go build");
        let run = |port: u16| -> (usize, usize) {
            let out = topo.exec(
                topo.var("CLIENT_NS"),
                &[
                    bin.to_str().unwrap(),
                    "-addr",
                    &format!("10.10.1.1:{port}"),
                    "-ca",
                    &ca,
                    "-n",
                    "21",
                ],
            );
            let rs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            assert_eq!(rs.len(), 21, "{rs:?}");
            let resumed = rs[1..].iter().filter(|r| r["resumed"] == true).count();
            (resumed, rs.len() - 1)
        };
        let (sa, n) = run(443);
        let (rr, _) = run(8443);
        eprintln!("TLS 1.3 resumed: session-aware {sa}/{n}, round robin {rr}/{n}");
        assert!(
            sa as f64 >= 0.95 * n as f64,
            "TLS 1.3 session-aware {sa}/{n}"
        );
        assert!(rr < sa, "round robin {rr}/{n}");

        // 4. Under load: 4 concurrent Go clients (4 client addresses), a
        //    new session every third connection. Resumptions land where
        //    their tickets were issued; new sessions (TLS 1.3 clients send a
        //    random legacy session ID, which must not pin them) stay within
        //    ±15% per backend.
        let cli_if = format!("{}-cli0", topo.prefix);
        let srcs: Vec<String> = (100..104).map(|i| format!("10.10.1.{i}")).collect();
        for a in &srcs {
            let cidr = format!("{a}/24");
            topo.exec(
                topo.var("CLIENT_NS"),
                &["ip", "addr", "add", &cidr, "dev", &cli_if],
            );
        }
        let srcs = srcs.join(",");
        // TLS 1.3 tickets, then TLS 1.2 tickets (the same ticket offered
        // by a client's next connection right after the previous closed).
        for version in ["1.3", "1.2"] {
            let out = topo.exec(
                topo.var("CLIENT_NS"),
                &[
                    bin.to_str().unwrap(),
                    "-addr",
                    "10.10.1.1:443",
                    "-ca",
                    &ca,
                    "-c",
                    "4",
                    "-d",
                    "4",
                    "-resume",
                    "-renew",
                    "3",
                    "-max-version",
                    version,
                    "-src",
                    &srcs,
                ],
            );
            let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("load summary");
            eprintln!("TLS {version} load through the session-aware VIP: {r}");
            let (resumed, attempts) = (
                r["resumed"].as_u64().unwrap_or(0),
                r["attempts"].as_u64().unwrap_or(0),
            );
            assert!(attempts >= 30, "{r}");
            assert!(
                resumed as f64 >= 0.95 * attempts as f64,
                "TLS {version}: resumed {resumed}/{attempts}"
            );
            let new: Vec<u64> = ["b1", "b2", "b3"]
                .iter()
                .map(|b| r["new_by_backend"][b].as_u64().unwrap_or(0))
                .collect();
            let mean = new.iter().sum::<u64>() as f64 / 3.0;
            assert!(
                new.iter().all(|&n| (n as f64 - mean).abs() <= 0.15 * mean),
                "TLS {version}: new sessions per backend within ±15%: {new:?}"
            );
        }
    } else {
        missing_pq_client("the Go toolchain (tests/tools/tlsclient)");
    }
    let st = app.stop(Duration::from_secs(10));
    assert!(
        st.is_some_and(|s| s.success()),
        "clean exit\n{}",
        app.logs()
    );
}

/// Connections opened to the session-aware VIP's backend `addr`.
fn opened_of_addr(v: &serde_json::Value, addr: &str) -> u64 {
    v["lb"]["vips"][0]["backends"]
        .as_array()
        .and_then(|a| a.iter().find(|b| b["address"] == addr))
        .and_then(|b| b["opened"].as_u64())
        .unwrap_or(0)
}

/// Write `text` as the appliance's config and make it reload (SIGHUP).
fn reload(app: &Appliance, cfg: &Path, text: &str) {
    std::fs::write(cfg, text).unwrap();
    let _ = Command::new("kill")
        .args(["-HUP", &app.child.id().to_string()])
        .status();
}

/// A TLS 1.2 connection resuming `sess` through the session-aware VIP,
/// held open for `secs` seconds (its stdin closes then).
fn hold_session(topo: &Topology, ca: &str, sess: &Path, secs: u32) -> Reaper {
    let child = Command::new("sh")
        .args([
            "-c",
            &format!(
                "sleep {secs} | ip netns exec {} openssl s_client -connect 10.10.1.1:443 -tls1_2 -no_ticket -CAfile {ca} -servername vip.test -sess_in {} >/dev/null 2>&1",
                topo.var("CLIENT_NS"),
                sess.display()
            ),
        ])
        .spawn()
        .unwrap();
    Reaper(child)
}

/// A child process killed (if still running) and reaped when dropped.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
