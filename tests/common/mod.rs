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
    pub fn spawn(dir: &Path, args: &[&str]) -> Appliance {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::fs::File::create(dir.join("qsplice.out")).unwrap();
        let err = std::fs::File::create(dir.join("qsplice.err")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_qsplice"))
            .args(args)
            .current_dir(repo_root())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn qsplice");
        Appliance {
            child,
            dir: dir.to_path_buf(),
        }
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
pub fn two_lcore_config(topo: &Topology) -> String {
    let q = |k: &str| {
        (
            format!("iface={}\"", topo.var(k)),
            format!("iface={},qpairs=2,framecnt=4096\"", topo.var(k)),
        )
    };
    let (c0, c1) = q("DUT_CLIENT_IF");
    let (b0, b1) = q("DUT_BACKEND_IF");
    demo_config(topo, "")
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
    format!(
        r#"
[eal]
main_lcore = 0
worker_lcores = [1]
memory_mb = 256
hugepages = "off"
file_prefix = "qs-e2e-{pid}"
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
device = "net_af_packet0,iface={c}"
addresses = ["10.10.1.1/24"]
{extra}

[[ports]]
name = "backend"
device = "net_af_packet1,iface={b}"
addresses = ["10.10.2.1/24"]
neighbors = [{neigh}]
"#,
        pid = std::process::id(),
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
    let before = stats(json).expect("stats");
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
    assert!(still_serving(), "still serving after hostile input on port {port}");
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
