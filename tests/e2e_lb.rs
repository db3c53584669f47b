//! End to end: `qsplice lb` on af_packet vdevs with two worker lcores
//! between a client namespace (curl, wrk, hping3) and three nginx backends.
//!
//! One appliance run covers, in order: spreading over every backend, a
//! large download and an upload compared by sha256, 20,000 short
//! connections with no error and no leak (flow tables and mbuf pools back
//! to idle), a SYN flood that does not stop real clients, a backend killed
//! at the start of a 200-request loop without one request failing
//! (refused connections retried on another backend) and brought back
//! (health checks), large transfers both ways under loss, reordering and
//! duplication, and at rest the counters' invariants (docs/operations.md).

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn lb_config(topo: &Topology, scratch: &std::path::Path) -> std::path::PathBuf {
    let base = two_lcore_config(topo);
    let backends: Vec<String> = topo
        .var("BACKENDS")
        .split_whitespace()
        .map(|b| format!("    {{ address = \"{b}:80\" }},"))
        .collect();
    let cfg = format!(
        r#"{base}
[lb]
client_port = "client"
backend_port = "backend"
linger_ms = 500

[lb.health]
kind = "http"
http_path = "/"
interval_ms = 300
timeout_ms = 250
rise = 2
fall = 2

[[lb.vips]]
name = "web"
address = "10.10.1.1:80"
policy = "round-robin"
backends = [
{}
]
"#,
        backends.join("\n")
    );
    let path = scratch.join("lb.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn lb_total(v: &serde_json::Value, k: &str) -> u64 {
    v["lb"]["total"][k].as_u64().unwrap_or(0)
}

fn healthy(v: &serde_json::Value) -> Vec<bool> {
    v["lb"]["vips"][0]["backends"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|b| b["healthy"].as_bool() == Some(true))
                .collect()
        })
        .unwrap_or_default()
}

fn sha256_of_stdout(cmd: &mut Command) -> String {
    let out = cmd.stderr(Stdio::inherit()).output().expect("run");
    assert!(out.status.success(), "command failed: {cmd:?}");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

fn expected_sum(topo: &Topology, name: &str) -> String {
    std::fs::read_to_string(topo.var("SHA256SUMS"))
        .unwrap()
        .lines()
        .find_map(|l| {
            let (h, n) = l.split_once(char::is_whitespace)?;
            (n.trim().trim_start_matches('*') == name).then(|| h.to_string())
        })
        .unwrap_or_else(|| panic!("{name} not in SHA256SUMS"))
}

/// Download `name` through the VIP and return its sha256.
fn download_sum(topo: &Topology, name: &str, timeout_s: u32) -> String {
    sha256_of_stdout(Command::new("sh").args([
        "-c",
        &format!(
            "ip netns exec {} curl -sf -m {timeout_s} http://10.10.1.1/{name} | sha256sum",
            topo.var("CLIENT_NS")
        ),
    ]))
}

#[test]
fn lb_end_to_end() {
    if !require_root() {
        return;
    }
    let big_mb: u32 = std::env::var("QSPLICE_E2E_BIG_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let topo = Topology::up_with("qlb", 3, &["--bigfile", &big_mb.to_string()]);
    let scratch = Scratch::new("e2e-lb");
    let cfg = lb_config(&topo, &scratch.0);
    let (mut app, json) = spawn_lb(&scratch.0, &cfg);
    // All three backends resolved and passing health checks.
    let up = wait_for(Duration::from_secs(20), || {
        let v = stats(&json)?;
        (v["neighbors"].as_array()?.len() >= 3 && healthy(&v) == vec![true; 3]).then_some(())
    });
    assert!(up.is_some(), "backends never healthy\n{}", app.logs());

    // 1. Spread: 12 requests reach every backend, evenly per lcore cursor.
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..12 {
        let b = curl_backend(&topo)
            .unwrap_or_else(|| panic!("curl through the VIP failed\n{}", app.logs()));
        *seen.entry(b).or_default() += 1;
    }
    assert_eq!(seen.len(), 3, "every backend reached: {seen:?}");
    assert!(
        seen.values().all(|n| *n >= 2),
        "round robin per lcore: {seen:?}"
    );

    // 2. Large download and an upload, byte-exact.
    let got = download_sum(&topo, "big.bin", 300);
    assert_eq!(
        got,
        expected_sum(&topo, "big.bin"),
        "big.bin through the VIP\n{}",
        app.logs()
    );
    let up_file = scratch.0.join("up.bin");
    std::fs::write(
        &up_file,
        (0..8_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let out = topo.exec(
        topo.var("CLIENT_NS"),
        &[
            "curl",
            "-sf",
            "-m",
            "60",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-T",
            up_file.to_str().unwrap(),
            "http://10.10.1.1/upload/e2e.bin",
        ],
    );
    let code = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        code == "201" || code == "204",
        "upload status {code}\n{}",
        app.logs()
    );
    let want = sha256_of_stdout(Command::new("sha256sum").arg(&up_file));
    let state = topo.var("STATE_DIR");
    let stored: Vec<String> = (1..=3)
        .filter_map(|k| {
            let p = format!("{state}/b{k}/upload/e2e.bin");
            std::path::Path::new(&p)
                .exists()
                .then(|| sha256_of_stdout(Command::new("sha256sum").arg(&p)))
        })
        .collect();
    assert_eq!(
        stored,
        vec![want.clone()],
        "exactly one backend stored the upload, intact"
    );

    // 3. 20,000 short connections, zero errors, then no leaks.
    let before = lb_total(&stats(&json).unwrap(), "conn_spliced");
    let out = topo.exec(
        topo.var("CLIENT_NS"),
        &[
            "wrk",
            "-t2",
            "-c32",
            "-d60s",
            "-H",
            "Connection: close",
            "-s",
            common::repo_root()
                .join("tests/tools/wrk-count.lua")
                .to_str()
                .unwrap(),
            "http://10.10.1.1/",
            "--",
            "10000",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "wrk failed: {text}");
    assert!(!text.contains("Socket errors"), "wrk errors: {text}");
    assert!(!text.contains("Non-2xx"), "wrk non-2xx: {text}");
    let reqs: u64 = text
        .lines()
        .find_map(|l| {
            l.trim()
                .split_once(" requests in ")
                .map(|(n, _)| n.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    assert!(reqs >= 20_000, "wrk completed {reqs} requests: {text}");
    let idle = wait_for(Duration::from_secs(15), || {
        let v = stats(&json)?;
        let flows = lb_total(&v, "flows_active");
        let pools_full = v["mempools"]
            .as_array()?
            .iter()
            .all(|p| p[1].as_u64() == p[2].as_u64());
        (flows == 0 && pools_full).then_some(v)
    });
    let v = idle.unwrap_or_else(|| {
        panic!(
            "flows/mbufs not back to idle: {:?}\n{}",
            stats(&json).map(|v| v["lb"]["total"].clone()),
            app.logs()
        )
    });
    assert!(lb_total(&v, "conn_spliced") - before >= 20_000);

    // 4. SYN flood (bounded: 10 s) while curl keeps working.
    let mut flood = Command::new("ip")
        .args([
            "netns",
            "exec",
            topo.var("CLIENT_NS"),
            "timeout",
            "10",
            "hping3",
            "--flood",
            "-S",
            "-p",
            "80",
            "--rand-source",
            "-q",
            "10.10.1.1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("hping3");
    std::thread::sleep(Duration::from_secs(2));
    let mut ok = 0;
    for _ in 0..10 {
        if curl_backend(&topo).is_some() {
            ok += 1;
        }
    }
    let _ = flood.wait();
    assert!(
        ok >= 9,
        "only {ok}/10 requests succeeded during the SYN flood\n{}",
        app.logs()
    );
    let v = stats(&json).unwrap();
    assert!(
        lb_total(&v, "syn_received") > 1000,
        "the flood reached the appliance"
    );
    assert!(
        lb_total(&v, "flows_active") < 100,
        "SYNs cost no flow state"
    );

    // 4b. Drain by config reload (SIGHUP): the backend serving a slow
    //     download stops getting new connections, the download completes.
    let slow_out = scratch.0.join("slow.sum");
    let mut slow = Command::new("sh")
        .args([
            "-c",
            &format!(
                "ip netns exec {} curl -sf -m 60 --limit-rate 300k http://10.10.1.1/1m.bin | sha256sum > {}",
                topo.var("CLIENT_NS"),
                slow_out.display()
            ),
        ])
        .spawn()
        .expect("slow download");
    let serving = wait_for(Duration::from_secs(5), || {
        let v = stats(&json)?;
        let bs = v["lb"]["vips"][0]["backends"].as_array()?.clone();
        let i = bs.iter().position(|b| b["active"].as_u64() == Some(1))?;
        Some(bs[i]["address"].as_str()?.to_string())
    })
    .unwrap_or_else(|| {
        panic!(
            "no backend shows the slow download as active\n{}",
            app.logs()
        )
    });
    let text = std::fs::read_to_string(&cfg).unwrap();
    let drained = text.replace(
        &format!("{{ address = \"{serving}\" }}"),
        &format!("{{ address = \"{serving}\", state = \"draining\" }}"),
    );
    assert_ne!(text, drained);
    std::fs::write(&cfg, &drained).unwrap();
    Command::new("kill")
        .args(["-HUP", &app.child.id().to_string()])
        .status()
        .unwrap();
    let name = format!(
        "b{}",
        serving
            .split(':')
            .next()
            .unwrap()
            .rsplit('.')
            .next()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            - 10
    );
    let applied = wait_for(Duration::from_secs(5), || {
        let v = stats(&json)?;
        let bs = v["lb"]["vips"][0]["backends"].as_array()?.clone();
        bs.iter()
            .any(|b| b["address"].as_str() == Some(&serving) && b["admin"] == "draining")
            .then_some(())
    });
    assert!(applied.is_some(), "reload not applied\n{}", app.logs());
    std::thread::sleep(Duration::from_millis(50));
    for _ in 0..9 {
        let b = curl_backend(&topo).expect("requests work while draining");
        assert_ne!(b, name, "a draining backend got a new connection");
    }
    assert!(slow.wait().unwrap().success());
    assert_eq!(
        std::fs::read_to_string(&slow_out)
            .unwrap()
            .split_whitespace()
            .next(),
        Some(expected_sum(&topo, "1m.bin").as_str()),
        "the connection to the draining backend ran to its end"
    );
    std::fs::write(&cfg, &text).unwrap();
    Command::new("kill")
        .args(["-HUP", &app.child.id().to_string()])
        .status()
        .unwrap();
    let undrained = wait_for(Duration::from_secs(5), || {
        let v = stats(&json)?;
        v["lb"]["vips"][0]["backends"]
            .as_array()?
            .iter()
            .all(|b| b["admin"] == "up")
            .then_some(())
    });
    assert!(
        undrained.is_some(),
        "reload back to up not applied\n{}",
        app.logs()
    );

    // 4c. Hostile segments to the VIP: counted by reason, no harm done.
    common::hostile_segments(&topo, &json, &app, 80, true, || {
        curl_backend(&topo).is_some()
    });

    // 5. Kill backend b2's nginx right before a loop of 200 sequential
    //    requests (a new connection each). Until health checks take it out
    //    (interval × fall: 600 ms here) b2's kernel answers our SYNs with
    //    RST: every such connection must be retried on another backend
    //    (`lb.retries`) with the client's request held, so that not one
    //    request fails. Without retries the RST reaches the client (curl:
    //    connection reset). Then b2 is out of rotation, and back after it
    //    restarts.
    let b2 = format!("{state}/b2");
    let pid = std::fs::read_to_string(format!("{b2}/nginx.pid")).unwrap();
    let before = stats(&json).unwrap();
    assert!(
        common::terminate_and_wait(pid.trim().parse().unwrap(), Duration::from_secs(5)),
        "b2's nginx did not exit"
    );
    let t0 = std::time::Instant::now();
    let results = common::http_loop(topo.var("CLIENT_NS"), "http://10.10.1.1/", 200, 3, 150);
    let loop_s = t0.elapsed().as_secs_f64();
    let v = wait_for(Duration::from_secs(5), || {
        let v = stats(&json)?;
        (lb_total(&v, "flows_connecting") == 0).then_some(v)
    })
    .unwrap_or_else(|| stats(&json).unwrap());
    let delta = |k: &str| lb_total(&v, k) - lb_total(&before, k);
    let mut by_backend: BTreeMap<&str, u32> = BTreeMap::new();
    for (code, b) in &results {
        *by_backend
            .entry(if code == "200" { b.as_str() } else { "FAILED" })
            .or_default() += 1;
    }
    let failed: Vec<_> = results.iter().filter(|(c, _)| c != "200").collect();
    let counters = format!(
        "conn_refused +{} conn_timeout +{} conn_retried +{} retry_no_backend +{}; \
         responses by backend {by_backend:?} in {loop_s:.1} s",
        delta("conn_refused"),
        delta("conn_timeout"),
        delta("conn_retried"),
        delta("retry_no_backend"),
    );
    eprintln!("section 5 (b2 killed under load): {counters}");
    assert!(
        results.len() == 200 && failed.is_empty(),
        "{} of 200 requests failed while b2 went down ({} ran): {failed:?}; {counters}\n{}",
        failed.len() + 200 - results.len(),
        results.len(),
        app.logs()
    );
    assert!(
        delta("conn_refused") > 0,
        "no connection reached b2 before health checks took it out: the check \
         proves nothing; {counters}"
    );
    assert!(
        delta("conn_retried") > 0
            && delta("conn_retried") == delta("conn_refused") + delta("conn_timeout")
            && delta("retry_no_backend") == 0,
        "every refused connection retried on another backend: {counters}"
    );
    let b2_failed = |v: &serde_json::Value| v["lb"]["vips"][0]["backends"][1]["failed"].as_u64();
    assert_eq!(
        b2_failed(&v).unwrap_or(0) - b2_failed(&before).unwrap_or(0),
        delta("conn_refused") + delta("conn_timeout"),
        "b2's `failed` counts the refusals: {counters}"
    );
    let down = wait_for(Duration::from_secs(5), || {
        (healthy(&stats(&json)?) == vec![true, false, true]).then_some(())
    });
    assert!(down.is_some(), "b2 not taken out\n{}", app.logs());
    for _ in 0..9 {
        let b = curl_backend(&topo).expect("requests keep working with a backend down");
        assert_ne!(b, "b2");
    }
    let st = Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("{}-b2", topo.prefix),
            "nginx",
            "-p",
            &format!("{b2}/"),
            "-e",
            &format!("{b2}/error.log"),
            "-c",
            &format!("{b2}/nginx.conf"),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let back = wait_for(Duration::from_secs(5), || {
        (healthy(&stats(&json)?) == vec![true; 3]).then_some(())
    });
    assert!(back.is_some(), "b2 did not rejoin\n{}", app.logs());
    let mut seen = BTreeMap::new();
    for _ in 0..9 {
        *seen.entry(curl_backend(&topo).unwrap()).or_insert(0) += 1;
    }
    assert!(seen.contains_key("b2"), "b2 gets traffic again: {seen:?}");

    // 6. Impaired links (tests/tools/impair.sh: netem where the kernel has
    //    it, else tc BPF): ~1% loss, duplication and reordering on the
    //    client's uplink and on the backends' side toward the appliance; a
    //    large transfer each way stays intact.
    let impair = |ns: &str, dev: &str, op: &str| {
        Command::new(common::repo_root().join("tests/tools/impair.sh"))
            .args([op, ns, dev])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let cli_if = format!("{}-cli0", topo.prefix);
    let sw = topo.var("SW_NS").to_string();
    let sw_if = format!("{}-sw-dut", topo.prefix);
    assert!(
        impair(topo.var("CLIENT_NS"), &cli_if, "add"),
        "impair {cli_if}"
    );
    assert!(impair(&sw, &sw_if, "add"), "impair {sw_if}");
    let got = download_sum(&topo, "1m.bin", 60);
    // The first 32 MiB of big.bin (a range request), checked against the file.
    let range_mb = big_mb.min(32);
    let got_big = sha256_of_stdout(Command::new("sh").args([
        "-c",
        &format!(
            "ip netns exec {} curl -sf -m 300 -r 0-{} http://10.10.1.1/big.bin | sha256sum",
            topo.var("CLIENT_NS"),
            range_mb * 1024 * 1024 - 1
        ),
    ]));
    let want_big = sha256_of_stdout(Command::new("sh").args([
        "-c",
        &format!("head -c {}M {state}/shared/big.bin | sha256sum", range_mb),
    ]));
    let out = topo.exec(
        topo.var("CLIENT_NS"),
        &[
            "curl",
            "-sf",
            "-m",
            "120",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-T",
            up_file.to_str().unwrap(),
            "http://10.10.1.1/upload/e2e-impaired.bin",
        ],
    );
    impair(topo.var("CLIENT_NS"), &cli_if, "del");
    impair(&sw, &sw_if, "del");
    assert_eq!(got, expected_sum(&topo, "1m.bin"));
    assert_eq!(
        got_big, want_big,
        "{range_mb} MiB of big.bin over impaired links"
    );
    assert!(out.status.success(), "upload over impaired links");
    let stored: Vec<String> = (1..=3)
        .filter_map(|k| {
            let p = format!("{state}/b{k}/upload/e2e-impaired.bin");
            std::path::Path::new(&p)
                .exists()
                .then(|| sha256_of_stdout(Command::new("sha256sum").arg(&p)))
        })
        .collect();
    assert_eq!(
        stored,
        vec![want.clone()],
        "upload over impaired links intact"
    );

    // 7. At rest, the counters add up (docs/operations.md, "Invariants").
    //    A connection whose segments af_packet's rollover delivered to
    //    two lcores during the SYN flood (its first data segment carries a
    //    cookie valid on either, so each opens a flow) leaves flows that
    //    never see their close: they stay until idle_timeout_s (300 s).
    //    Then the general forms, counting the flows still there, must
    //    hold on a settled report instead (seen once in five runs).
    let (rest, broken) = match common::wait_lb_at_rest(&json, Duration::from_secs(20)) {
        Some(v) => {
            let b = common::splice_invariants(&v);
            (v, b)
        }
        None => {
            let v = common::wait_lb_settled(&json, Duration::from_secs(2), Duration::from_secs(20))
                .unwrap_or_else(|| {
                    panic!(
                        "counters never settled: {:?}\n{}",
                        stats(&json).map(|v| v["lb"]["total"].clone()),
                        app.logs()
                    )
                });
            eprintln!(
                "WARNING: not at rest: {} flows left (per backend active: {:?}); \
                 checking the settled forms",
                lb_total(&v, "flows_active"),
                v["lb"]["vips"][0]["backends"]
                    .as_array()
                    .map(|a| a.iter().map(|b| b["active"].clone()).collect::<Vec<_>>())
            );
            let b = common::splice_invariants_settled(&v);
            (v, b)
        }
    };
    eprintln!("at rest: lb.total {}", rest["lb"]["total"]);
    assert!(
        broken.is_empty(),
        "counter invariants broken:\n  {}\nlb.total {}\nper-backend {}",
        broken.join("\n  "),
        rest["lb"]["total"],
        rest["lb"]["vips"][0]["backends"]
    );

    let st = app.stop(Duration::from_secs(10));
    assert!(
        st.is_some_and(|s| s.success()),
        "clean shutdown\n{}",
        app.logs()
    );
}
