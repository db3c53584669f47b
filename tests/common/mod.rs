//! Harness for end-to-end tests: a network-namespace topology built by
//! `scripts/netns.sh`, a `qsplice` process, and helpers to run commands in
//! namespaces. Everything started is torn down by `Drop`, by PID.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// End-to-end tests need root (namespaces, af_packet). Without it they fail
/// loudly unless QSPLICE_SKIP_NETNS=1 says to skip on purpose.
pub fn require_root() -> bool {
    let euid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if euid == "0" {
        return true;
    }
    if std::env::var("QSPLICE_SKIP_NETNS").as_deref() == Ok("1") {
        eprintln!("skipping: not root and QSPLICE_SKIP_NETNS=1");
        return false;
    }
    panic!("end-to-end tests need root (network namespaces); set QSPLICE_SKIP_NETNS=1 to skip");
}

/// The demo topology (client ns, DUT veths in the root ns, backends).
pub struct Topology {
    pub prefix: String,
    pub vars: HashMap<String, String>,
}

impl Topology {
    pub fn up(tag: &str, backends: u32) -> Topology {
        Topology::up_with(tag, backends, &[])
    }

    /// `up` with extra `netns.sh up` arguments (e.g. `--bigfile 64`).
    pub fn up_with(tag: &str, backends: u32, extra: &[&str]) -> Topology {
        // ≤ 8 chars, unique per process and test.
        let prefix = format!("{}{}", tag, std::process::id() % 100_000);
        let out = Command::new(repo_root().join("scripts/netns.sh"))
            .args([
                "up",
                "--prefix",
                &prefix,
                "--backends",
                &backends.to_string(),
            ])
            .args(extra)
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/netns.sh");
        let mut topo = Topology {
            prefix,
            vars: HashMap::new(),
        };
        assert!(
            out.status.success(),
            "netns.sh up failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        topo.vars = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                l.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        topo
    }

    pub fn var(&self, k: &str) -> &str {
        self.vars
            .get(k)
            .unwrap_or_else(|| panic!("netns.sh did not print {k}"))
    }

    /// Run a command inside namespace `ns`.
    pub fn exec(&self, ns: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .output()
            .expect("ip netns exec")
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/netns.sh"))
            .args(["down", "--prefix", &self.prefix])
            .stdout(Stdio::null())
            .status();
    }
}

/// A running `qsplice` process, killed (by PID) on drop.
pub struct Appliance {
    pub child: Child,
    pub dir: PathBuf,
}

impl Appliance {
    /// Start `qsplice <args>`; stdout/stderr go to files in `dir`.
    ///
    /// Several appliances in one namespace (tests run concurrently) can meet
    /// DPDK's af_packet fanout-id clash (the id derives from the pid): qsplice
    /// then refuses at once with exit code 75, and a new process (another
    /// pid) is started, as a supervisor would. Waits until EAL is up, the
    /// process exited otherwise, or 20 s.
    pub fn spawn(dir: &Path, args: &[&str]) -> Appliance {
        std::fs::create_dir_all(dir).unwrap();
        for attempt in 0.. {
            let out = std::fs::File::create(dir.join("qsplice.out")).unwrap();
            let err = std::fs::File::create(dir.join("qsplice.err")).unwrap();
            let child = Command::new(env!("CARGO_BIN_EXE_qsplice"))
                .args(args)
                .current_dir(repo_root())
                .stdout(out)
                .stderr(err)
                .spawn()
                .expect("spawn qsplice");
            let mut app = Appliance {
                child,
                dir: dir.to_path_buf(),
            };
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(20) {
                match app.child.try_wait() {
                    Ok(Some(s)) if s.code() == Some(75) && attempt < 5 => break,
                    Ok(Some(_)) => return app,
                    _ => {}
                }
                if app.logs().contains("EAL up") {
                    return app;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if t.elapsed() >= Duration::from_secs(20) {
                return app;
            }
            eprintln!(
                "qsplice refused with 75 (af_packet fanout clash), starting it again:\n{}",
                app.logs()
            );
        }
        unreachable!()
    }

    pub fn logs(&self) -> String {
        let o = std::fs::read_to_string(self.dir.join("qsplice.out")).unwrap_or_default();
        let e = std::fs::read_to_string(self.dir.join("qsplice.err")).unwrap_or_default();
        format!("--- stdout\n{o}\n--- stderr\n{e}")
    }

    /// Ask it to stop (SIGTERM) and wait up to `timeout`.
    pub fn stop(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let t = Instant::now();
        while t.elapsed() < timeout {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The stats JSON an appliance rewrites (`None` while absent or mid-write).
pub fn stats(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// `qsplice lb --config <cfg> --stats-json <dir>/stats.json --live-json`;
/// returns it and the stats path.
pub fn spawn_lb(dir: &Path, cfg: &Path) -> (Appliance, PathBuf) {
    let json = dir.join("stats.json");
    let app = Appliance::spawn(
        dir,
        &[
            "lb",
            "--config",
            cfg.to_str().unwrap(),
            "--stats-json",
            json.to_str().unwrap(),
            "--live-json",
        ],
    );
    (app, json)
}

/// Wait (20 s at most) until every backend of the first VIP passes its
/// health checks; fails the test with the appliance's logs otherwise.
pub fn wait_vip0_healthy(app: &Appliance, json: &Path) {
    let up = wait_for(Duration::from_secs(20), || {
        stats(json)?["lb"]["vips"][0]["backends"]
            .as_array()?
            .iter()
            .all(|b| b["healthy"].as_bool() == Some(true))
            .then_some(())
    });
    assert!(up.is_some(), "backends never healthy\n{}", app.logs());
}

/// Poll `f` every 100 ms until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if t.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A scratch directory for one test, removed on drop unless the test failed
/// (then kept for inspection).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("qsplice-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            eprintln!("keeping {} for inspection", self.0.display());
        }
    }
}

/// A config for the demo topology with the DUT ifaces of `topo`.
/// [`demo_config`] on two worker lcores (one CPU each on a 2-vCPU box),
/// two queue pairs per af_packet port with big rings (fanout rollover is
/// rarer), a larger mempool, and a 20 µs idle sleep so the client and
/// backends in the namespaces get CPU.
/// The PMD the single-lcore end-to-end configs use for the DUT veths:
/// `QSPLICE_E2E_PMD=af_packet` (default) or `af_xdp`. Two-lcore configs stay
/// on af_packet: DPDK 22.11's net_af_xdp takes a veth for one combined
/// channel (veths report rx/tx channels, not combined ones), so one queue.
pub fn e2e_pmd() -> &'static str {
    match std::env::var("QSPLICE_E2E_PMD").as_deref() {
        Err(_) | Ok("") | Ok("af_packet") => "af_packet",
        Ok("af_xdp") => "af_xdp",
        Ok(o) => panic!("QSPLICE_E2E_PMD={o}: expected af_packet or af_xdp"),
    }
}

pub fn two_lcore_config(topo: &Topology) -> String {
    let q = |k: &str| {
        (
            format!("iface={}\"", topo.var(k)),
            format!("iface={},qpairs=2,framecnt=4096\"", topo.var(k)),
        )
    };
    let (c0, c1) = q("DUT_CLIENT_IF");
    let (b0, b1) = q("DUT_BACKEND_IF");
    demo_config_on(topo, "", "af_packet")
        .replace(
            "worker_lcores = [1]",
            "worker_lcores = [1, 2]\nlcore_map = \"0@0,1@1,2@0\"",
        )
        .replace("mbufs = 8191", "mbufs = 16383")
        .replace(
            "stats_interval_ms = 200",
            "stats_interval_ms = 200\nidle_sleep_us = 20",
        )
        .replace(&c0, &c1)
        .replace(&b0, &b1)
}

pub fn demo_config(topo: &Topology, extra_port_keys: &str) -> String {
    demo_config_on(topo, extra_port_keys, e2e_pmd())
}

/// [`demo_config`] on the PMD `pmd` (`af_packet` or `af_xdp`).
pub fn demo_config_on(topo: &Topology, extra_port_keys: &str, pmd: &str) -> String {
    format!(
        r#"
[eal]
main_lcore = 0
worker_lcores = [1]
memory_mb = 256
hugepages = "off"
file_prefix = "qs-{tag}"
log_level = "warning"

[mempool]
mbufs = 8191
cache = 128

[engine]
stats_interval_ms = 200

[arp]
probe_interval_ms = 200
max_probes = 5

[[ports]]
name = "client"
device = "net_{pmd}0,iface={c}"
addresses = ["10.10.1.1/24"]
{extra}

[[ports]]
name = "backend"
device = "net_{pmd}1,iface={b}"
addresses = ["10.10.2.1/24"]
neighbors = [{neigh}]
"#,
        // One EAL file prefix per topology: two tests of one binary run
        // at once, each with its own topology and appliance.
        tag = topo
            .var("CLIENT_NS")
            .trim_end_matches("-client")
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"),
        c = topo.var("DUT_CLIENT_IF"),
        b = topo.var("DUT_BACKEND_IF"),
        extra = extra_port_keys,
        neigh = topo
            .var("BACKENDS")
            .split_whitespace()
            .map(|b| format!("\"{b}\""))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// Sends `tests/tools/send_frames.py --lb` hostile segments (malformed
/// options, bad checksums on a SYN, a RST, a FIN and a data segment, and
/// — with `cookie` — a forged-cookie ACK) from the client namespace to the
/// VIP `10.10.1.1:port`, then asserts that every one was counted under the
/// `lb.total` counter named for it and that `still_serving` still works.
pub fn hostile_segments(
    topo: &Topology,
    json: &Path,
    app: &Appliance,
    port: u16,
    cookie: bool,
    still_serving: impl Fn() -> bool,
) {
    let total = |v: &serde_json::Value, k: &str| v["lb"]["total"][k].as_u64().unwrap_or(0);
    // The stats file lags the appliance by up to one interval: start from a
    // settled snapshot, so earlier connections are not taken for these.
    let key = |v: &serde_json::Value| {
        ["syn_received", "tls_accepted", "conn_opened"].map(|k| total(v, k))
    };
    // Settled: two snapshots at least a second apart *in the appliance's
    // own time* (a file not rewritten meanwhile proves nothing) agree.
    let up = |v: &serde_json::Value| v["uptime_s"].as_f64().unwrap_or(0.0);
    let mut before = stats(json).expect("stats");
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(1100));
        let now = stats(json).expect("stats");
        let same = key(&now) == key(&before) && up(&now) >= up(&before) + 1.0;
        if up(&now) >= up(&before) + 1.0 || key(&now) != key(&before) {
            before = now;
        }
        if same {
            break;
        }
    }
    let vip_mac = before["ports"][0]["mac"].as_str().unwrap().to_string();
    let script = repo_root().join("tests/tools/send_frames.py");
    let port_arg = format!("--port={port}");
    let iface = format!("{}-cli0", topo.prefix);
    let mut args = vec![script.to_str().unwrap(), "--lb", &port_arg];
    if !cookie {
        args.push("--no-cookie");
    }
    args.extend([iface.as_str(), &vip_mac, "10.10.1.2", "10.10.1.1", "5"]);
    let out = topo.exec(topo.var("CLIENT_NS"), &args);
    assert!(out.status.success(), "send_frames.py --lb failed");
    let mut sent: std::collections::BTreeMap<String, u64> = Default::default();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((k, n)) = l.split_once(' ') {
            *sent.entry(k.to_string()).or_default() += n.trim().parse::<u64>().unwrap();
        }
    }
    assert!(
        sent.get("drop_tcp_bad_checksum").copied().unwrap_or(0) >= 20,
        "bad checksums on SYN, RST, FIN and data: {sent:?}"
    );
    let counted = wait_for(Duration::from_secs(5), || {
        let v = stats(json)?;
        sent.iter()
            .all(|(k, n)| total(&v, k) >= total(&before, k) + n)
            .then_some(())
    });
    let after = stats(json).unwrap_or_default();
    assert!(
        counted.is_some(),
        "hostile segments to port {port} not counted: sent {sent:?}, counters {}\n{}",
        after["lb"]["total"],
        app.logs()
    );
    // None of them was taken for a connection.
    for k in ["tls_accepted", "syn_received", "conn_opened"] {
        assert_eq!(
            total(&after, k),
            total(&before, k),
            "{k}: a hostile segment to port {port} was taken for a connection"
        );
    }
    assert!(
        still_serving(),
        "still serving after hostile input on port {port}"
    );
}

/// A real client the hybrid post-quantum checks need (Go crypto/tls,
/// Chromium) is missing: fails the test — a green suite must have pushed
/// X25519MLKEM768 handshakes through the VIP — unless the operator opted
/// out with `QSPLICE_SKIP_PQ_CLIENTS=1` (scripts/test.sh prints that in its
/// summary). Returns normally only when skipping was asked for.
pub fn missing_pq_client(what: &str) {
    if std::env::var("QSPLICE_SKIP_PQ_CLIENTS").as_deref() == Ok("1") {
        eprintln!("{what} missing: its post-quantum checks skipped (QSPLICE_SKIP_PQ_CLIENTS=1)");
        return;
    }
    panic!(
        "{what} is missing: scripts/setup.sh installs it; the post-quantum checks need it \
         (QSPLICE_SKIP_PQ_CLIENTS=1 skips them explicitly)"
    );
}

/// sha256 of a file, as `sha256sum` prints it.
pub fn sha256_of_file(path: &str) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Sends SIGTERM to `pid` and waits up to `timeout` until it has exited
/// (gone from `/proc`, or a zombie). For an nginx master this means its
/// workers are gone too (it reaps them before it exits): its listening
/// socket is closed and the kernel answers SYNs to it with RST.
pub fn terminate_and_wait(pid: u32, timeout: Duration) -> bool {
    let _ = Command::new("kill").arg(pid.to_string()).status();
    wait_for(timeout, || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // `pid (comm) S ...`: the state follows the last ')'.
        let state = stat
            .rsplit_once(')')
            .map(|(_, r)| r.trim_start().chars().next());
        matches!(state, None | Some(Some('Z')) | Some(None)).then_some(())
    })
    .is_some()
}

/// `n` sequential HTTP GETs of `url` from namespace `ns`, one curl (one
/// new TCP connection) each, each bounded by `per_request_s` seconds and
/// the whole loop by `total_s`. Returns `(status, X-Backend header)` per
/// request that ran, in order: a failed request is `("000", "")`, and a
/// loop cut short by `total_s` returns fewer than `n` entries.
pub fn http_loop(
    ns: &str,
    url: &str,
    n: u32,
    per_request_s: u32,
    total_s: u32,
) -> Vec<(String, String)> {
    let script = format!(
        "for i in $(seq {n}); do curl -s -o /dev/null --connect-timeout {per_request_s} \
         -m {per_request_s} -w '%{{http_code}} %header{{x-backend}}\\n' '{url}'; done"
    );
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "timeout",
            &total_s.to_string(),
            "sh",
            "-c",
        ])
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .expect("ip netns exec sh");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (code, b) = l.split_once(' ').unwrap_or((l, ""));
            (code.trim().to_string(), b.trim().to_string())
        })
        .collect()
}

/// The spliced path's counter invariants (docs/operations.md,
/// "Invariants") on a report taken at rest — no flow in any table, and
/// nothing in flight between lcores. Only for an appliance whose VIPs are
/// all spliced (no `tls = "terminate"`: terminated connections' backend
/// legs move `conn_refused` / `conn_timeout` / `conn_retried` and the
/// per-backend counters too). Returns every violated relation, named.
pub fn splice_invariants(v: &serde_json::Value) -> Vec<String> {
    let mut bad = Vec::new();
    let lb = &v["lb"];
    let vips = lb["vips"].as_array().cloned().unwrap_or_default();
    if vips.iter().any(|x| !x["tls"].is_null()) {
        bad.push("splice_invariants: a VIP terminates TLS (they do not apply)".to_string());
        return bad;
    }
    let mut check = |name: &str, what: &str, ok: bool, l: u64, r: u64| {
        if !ok {
            bad.push(format!("{name}: {what} ({l} vs {r})"));
        }
    };
    let mut maps = vec![("lb.total".to_string(), lb["total"].clone())];
    for (i, c) in lb["per_core"].as_array().into_iter().flatten().enumerate() {
        maps.push((format!("lb.per_core[{i}]"), c.clone()));
    }
    for (name, m) in &maps {
        let g = |k: &str| m[k].as_u64().unwrap_or(0);
        // Every backend attempt (the first, and each retry) ended in one
        // of these; every spliced flow ended closed or idle.
        let l = g("conn_opened") + g("conn_retried");
        let r = g("conn_refused")
            + g("conn_timeout")
            + g("conn_client_abort")
            + g("conn_closed")
            + g("conn_idle")
            + g("conn_reset_shutdown")
            + g("conn_left_to_cluster")
            + g("conn_abort_shutdown");
        check(
            name,
            "conn_opened + conn_retried = conn_refused + conn_timeout + conn_client_abort + conn_closed + conn_idle + conn_reset_shutdown + conn_abort_shutdown",
            l == r,
            l,
            r,
        );
        let (l, r) = (
            g("conn_spliced"),
            g("conn_closed")
                + g("conn_idle")
                + g("conn_reset_shutdown")
                + g("conn_left_to_cluster"),
        );
        check(
            name,
            "conn_spliced = conn_closed + conn_idle + conn_reset_shutdown + conn_left_to_cluster",
            l == r,
            l,
            r,
        );
        let (l, r) = (g("conn_retried"), g("conn_refused") + g("conn_timeout"));
        check(
            name,
            "conn_retried <= conn_refused + conn_timeout",
            l <= r,
            l,
            r,
        );
        let (l, r) = (g("conn_opened"), g("cookie_ok") + g("syn_cache_hits"));
        check(
            name,
            "conn_opened <= cookie_ok + syn_cache_hits",
            l <= r,
            l,
            r,
        );
        for k in ["flows_active", "flows_connecting"] {
            check(name, &format!("{k} = 0 at rest"), g(k) == 0, g(k), 0);
        }
        if !m["syn_cookies"].is_null() {
            let (l, r) = (
                g("syn_cookies"),
                g("syn_cache_full") + g("syn_rate_limited"),
            );
            check(
                name,
                "syn_cookies = syn_cache_full + syn_rate_limited",
                l == r,
                l,
                r,
            );
            let (l, r) = (g("syn_received"), g("syn_stateful") + g("syn_cookies"));
            check(
                name,
                "syn_received >= syn_stateful + syn_cookies",
                l >= r,
                l,
                r,
            );
            let (l, r) = (
                g("syn_stateful"),
                g("syn_cache_hits") + g("syn_cache_expired") + g("syn_cache_active"),
            );
            check(
                name,
                "syn_stateful >= syn_cache_hits + syn_cache_expired + syn_cache_active",
                l >= r,
                l,
                r,
            );
        }
    }
    let t = |k: &str| lb["total"][k].as_u64().unwrap_or(0);
    let (l, r) = (t("steered_out"), t("steered_in"));
    check("lb.total", "steered_out = steered_in at rest", l == r, l, r);
    // Per-backend counters of every VIP against the lcores' totals.
    let sum = |k: &str| -> u64 {
        vips.iter()
            .flat_map(|x| x["backends"].as_array().cloned().unwrap_or_default())
            .map(|b| b[k].as_u64().unwrap_or(0))
            .sum()
    };
    for (b, want, what) in [
        (
            "opened",
            t("conn_opened") + t("conn_retried"),
            "conn_opened + conn_retried",
        ),
        ("spliced", t("conn_spliced"), "conn_spliced"),
        (
            "failed",
            t("conn_refused") + t("conn_timeout"),
            "conn_refused + conn_timeout",
        ),
        ("active", 0, "0 at rest"),
        ("c2s_packets", t("c2s_packets"), "c2s_packets"),
        ("c2s_bytes", t("c2s_bytes"), "c2s_bytes"),
        ("s2c_packets", t("s2c_packets"), "s2c_packets"),
        ("s2c_bytes", t("s2c_bytes"), "s2c_bytes"),
    ] {
        let got = sum(b);
        check(
            "lb.vips[*].backends[*]",
            &format!("sum of {b} = lb.total {what}"),
            got == want,
            got,
            want,
        );
    }
    bad
}

/// Waits (up to `timeout`) until the balancer is at rest — no flow in any
/// lcore's table, no connection on any backend, nothing in flight between
/// lcores, and the connection counters unchanged between two reports —
/// and returns that report.
pub fn wait_lb_at_rest(json: &Path, timeout: Duration) -> Option<serde_json::Value> {
    let mut prev: Option<serde_json::Value> = None;
    wait_for(timeout, || {
        let v = stats(json)?;
        let t = &v["lb"]["total"];
        let g = |k: &str| t[k].as_u64().unwrap_or(0);
        let active: u64 = v["lb"]["vips"]
            .as_array()?
            .iter()
            .flat_map(|x| x["backends"].as_array().cloned().unwrap_or_default())
            .map(|b| b["active"].as_u64().unwrap_or(0))
            .sum();
        let conn = |t: &serde_json::Value| -> Vec<u64> {
            t.as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(k, _)| k.starts_with("conn_") || k.starts_with("flows_"))
                        .map(|(_, n)| n.as_u64().unwrap_or(0))
                        .collect()
                })
                .unwrap_or_default()
        };
        let still = prev
            .as_ref()
            .is_some_and(|p| conn(&p["lb"]["total"]) == conn(t));
        let rest = g("flows_active") == 0
            && g("flows_connecting") == 0
            && active == 0
            && g("steered_out") == g("steered_in");
        prev = Some(v.clone());
        (rest && still).then_some(v)
    })
}

/// [`splice_invariants`] in their general form, for a settled report
/// that still has flows in the tables (e.g. a connection that af_packet's
/// rollover split over two lcores under a SYN flood: each lcore's flow
/// sees half of the close and stays until `idle_timeout_s`). Every
/// relation counts the flows still there; `settled` means no counter moved
/// for longer than `linger_ms` (no flow lingering) and no segment between
/// lcores. Only for spliced-only appliances; returns each violated one.
pub fn splice_invariants_settled(v: &serde_json::Value) -> Vec<String> {
    let mut bad = Vec::new();
    let lb = &v["lb"];
    let vips = lb["vips"].as_array().cloned().unwrap_or_default();
    if vips.iter().any(|x| !x["tls"].is_null()) {
        bad.push("splice_invariants_settled: a VIP terminates TLS".to_string());
        return bad;
    }
    let mut check = |name: &str, what: &str, ok: bool, l: u64, r: u64| {
        if !ok {
            bad.push(format!("{name}: {what} ({l} vs {r})"));
        }
    };
    let mut maps = vec![("lb.total".to_string(), lb["total"].clone())];
    for (i, c) in lb["per_core"].as_array().into_iter().flatten().enumerate() {
        maps.push((format!("lb.per_core[{i}]"), c.clone()));
    }
    for (name, m) in &maps {
        let g = |k: &str| m[k].as_u64().unwrap_or(0);
        let l = g("conn_opened") + g("conn_retried");
        let r = g("conn_refused")
            + g("conn_timeout")
            + g("conn_client_abort")
            + g("conn_closed")
            + g("conn_idle")
            + g("conn_reset_shutdown")
            + g("conn_left_to_cluster")
            + g("conn_abort_shutdown")
            + g("flows_active")
            - g("flows_adopted");
        check(
            name,
            "conn_opened + conn_retried = conn_refused + conn_timeout + conn_client_abort \
             + conn_closed + conn_idle + conn_reset_shutdown + conn_abort_shutdown + flows_active",
            l == r,
            l,
            r,
        );
        let l = g("conn_spliced");
        let r = (g("conn_closed")
            + g("conn_idle")
            + g("conn_reset_shutdown")
            + g("conn_left_to_cluster")
            + g("flows_active")
            - g("flows_adopted"))
        .saturating_sub(g("flows_connecting"));
        check(
            name,
            "conn_spliced = conn_closed + conn_idle + conn_left_to_cluster + flows_active - flows_adopted - flows_connecting",
            l == r,
            l,
            r,
        );
        let (l, r) = (g("conn_retried"), g("conn_refused") + g("conn_timeout"));
        check(
            name,
            "conn_retried <= conn_refused + conn_timeout",
            l <= r,
            l,
            r,
        );
        let (l, r) = (g("conn_opened"), g("cookie_ok") + g("syn_cache_hits"));
        check(
            name,
            "conn_opened <= cookie_ok + syn_cache_hits",
            l <= r,
            l,
            r,
        );
        if !m["syn_cookies"].is_null() {
            let (l, r) = (
                g("syn_cookies"),
                g("syn_cache_full") + g("syn_rate_limited"),
            );
            check(
                name,
                "syn_cookies = syn_cache_full + syn_rate_limited",
                l == r,
                l,
                r,
            );
            let (l, r) = (g("syn_received"), g("syn_stateful") + g("syn_cookies"));
            check(
                name,
                "syn_received >= syn_stateful + syn_cookies",
                l >= r,
                l,
                r,
            );
            let (l, r) = (
                g("syn_stateful"),
                g("syn_cache_hits") + g("syn_cache_expired") + g("syn_cache_active"),
            );
            check(
                name,
                "syn_stateful >= syn_cache_hits + syn_cache_expired + syn_cache_active",
                l >= r,
                l,
                r,
            );
        }
    }
    let t = |k: &str| lb["total"][k].as_u64().unwrap_or(0);
    let (l, r) = (t("steered_out"), t("steered_in"));
    check(
        "lb.total",
        "steered_out = steered_in when settled",
        l == r,
        l,
        r,
    );
    let sum = |k: &str| -> u64 {
        vips.iter()
            .flat_map(|x| x["backends"].as_array().cloned().unwrap_or_default())
            .map(|b| b[k].as_u64().unwrap_or(0))
            .sum()
    };
    let open_spliced = t("flows_active").saturating_sub(t("flows_connecting"));
    for (b, want, what) in [
        (
            "opened",
            t("conn_opened") + t("conn_retried"),
            "conn_opened + conn_retried",
        ),
        ("spliced", t("conn_spliced"), "conn_spliced"),
        (
            "failed",
            t("conn_refused") + t("conn_timeout"),
            "conn_refused + conn_timeout",
        ),
        (
            "active",
            open_spliced,
            "flows_active - flows_connecting (none lingering)",
        ),
        ("c2s_packets", t("c2s_packets"), "c2s_packets"),
        ("c2s_bytes", t("c2s_bytes"), "c2s_bytes"),
        ("s2c_packets", t("s2c_packets"), "s2c_packets"),
        ("s2c_bytes", t("s2c_bytes"), "s2c_bytes"),
    ] {
        let got = sum(b);
        check(
            "lb.vips[*].backends[*]",
            &format!("sum of {b} = lb.total {what}"),
            got == want,
            got,
            want,
        );
    }
    bad
}

/// Waits (up to `timeout`) for a settled report: the connection counters
/// (`conn_*`, `flows_*`) unchanged for `quiet` (make it longer than
/// `linger_ms`), and nothing in flight between lcores.
pub fn wait_lb_settled(
    json: &Path,
    quiet: Duration,
    timeout: Duration,
) -> Option<serde_json::Value> {
    let conn = |v: &serde_json::Value| -> Vec<u64> {
        v["lb"]["total"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| k.starts_with("conn_") || k.starts_with("flows_"))
                    .map(|(_, n)| n.as_u64().unwrap_or(0))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut since: Option<(Vec<u64>, Instant)> = None;
    wait_for(timeout, || {
        let v = stats(json)?;
        let t = &v["lb"]["total"];
        let now = conn(&v);
        match &since {
            Some((c, t0)) if *c == now => {
                let steered = t["steered_out"].as_u64() == t["steered_in"].as_u64();
                return (steered && t0.elapsed() >= quiet).then_some(v);
            }
            _ => since = Some((now, Instant::now())),
        }
        None
    })
}

/// One request to the VIP (10.10.1.1:80) from the client namespace: the
/// backend that answered (its `X-Backend` header).
pub fn curl_backend(topo: &Topology) -> Option<String> {
    let ns = topo.var("CLIENT_NS");
    let out = topo.exec(
        ns,
        &[
            "curl",
            "-s",
            "-m",
            "5",
            "-D-",
            "-o",
            "/dev/null",
            "http://10.10.1.1/",
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("X-Backend: ").map(|b| b.trim().to_string()))
}

/// Build the Go TLS client of `tests/tools/tlsclient` (crypto/tls with
/// X25519MLKEM768 and tickets) into `dir`; `None` without a Go toolchain.
pub fn go_client(dir: &Path) -> Option<PathBuf> {
    go_tool(dir, "tlsclient")
}

/// Builds the Go program `tests/tools/<name>` into `dir` (None without a
/// Go toolchain, or if it does not build).
pub fn go_tool(dir: &Path, name: &str) -> Option<PathBuf> {
    let bin = dir.join(name);
    // The first toolchain that builds it (an older `go` on PATH may not).
    ["go", "/usr/local/bin/go"].into_iter().find_map(|go| {
        let st = Command::new(go)
            .args(["build", "-o", bin.to_str().unwrap(), "."])
            .current_dir(repo_root().join("tests/tools").join(name))
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-mod=mod")
            .env("GOCACHE", dir.join("gocache"))
            .env("HOME", dir)
            .status()
            .ok()?;
        st.success().then(|| bin.clone())
    })
}

/// Run the Go TLS client in namespace `ns` against `addr`: one JSON line
/// per connection (status, group, version, resumed).
pub fn go_tls_run(
    ns: &str,
    bin: &Path,
    ca: &Path,
    addr: &str,
    args: &[&str],
) -> Vec<serde_json::Value> {
    let mut a = vec![
        "netns",
        "exec",
        ns,
        bin.to_str().unwrap(),
        "-addr",
        addr,
        "-ca",
        ca.to_str().unwrap(),
    ];
    a.extend_from_slice(args);
    let out = Command::new("ip").args(&a).output().expect("ip netns exec");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
