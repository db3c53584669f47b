//! Scale-out, part 1 (issue 15): two qsplice nodes behind a router running
//! BIRD with kernel ECMP on the 5-tuple (`scripts/cluster.sh`). Each node's
//! BGP speaker (BIRD) runs on its kernel interface — the exception path —
//! and qsplice drives it: the VIP is announced while the node can serve,
//! withdrawn when its backends are out, on a graceful shutdown (before it
//! refuses anything) and, by BFD on the router, when the node dies. The
//! nodes share TLS ticket keys through Redis (in the router namespace,
//! reached over each node's exception path): a ticket issued through one
//! node resumes through the other.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use qsplice_tls::certgen::{KeyAlg, LabCa};

/// Redis in the router namespace, killed by PID on drop.
struct Redis(Child);

impl Redis {
    fn start(c: &Cluster) -> Redis {
        Redis(
            Command::new("ip")
                .args(["netns", "exec", c.var("ROUTER_NS"), "redis-server"])
                .args([
                    "--port",
                    "6379",
                    "--bind",
                    "0.0.0.0",
                    "--protected-mode",
                    "no",
                ])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server (Debian redis-server): scripts/setup.sh installs it"),
        )
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cluster_state(dir: &Path, n: &str) -> serde_json::Value {
    api(dir, n, "GET", "/api/v1/status", None)["cluster"].clone()
}

struct Cluster {
    prefix: String,
    vars: std::collections::HashMap<String, String>,
}

impl Cluster {
    fn up(tag: &str) -> Cluster {
        Cluster::up_with(tag, 0)
    }
    /// With `big_mb` > 0 the backends also serve `/big.bin` of that size.
    fn up_with(tag: &str, big_mb: u32) -> Cluster {
        let prefix = format!("{}{}", tag, std::process::id() % 100_000);
        let out = Command::new(repo_root().join("scripts/cluster.sh"))
            .args(["up", "--prefix", &prefix, "--backends", "2"])
            .args(["--bigfile", &big_mb.to_string()])
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/cluster.sh");
        let c = Cluster {
            prefix,
            vars: String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| {
                    l.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect(),
        };
        assert!(out.status.success(), "cluster.sh up failed");
        c
    }
    fn var(&self, k: &str) -> &str {
        self.vars
            .get(k)
            .unwrap_or_else(|| panic!("cluster.sh did not print {k}"))
    }
    fn ns(&self, ns: &str, args: &[&str]) -> String {
        let o = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .output()
            .expect("ip netns exec");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    /// The router's next hops toward the VIP.
    fn next_hops(&self) -> Vec<String> {
        let r = self.ns(
            self.var("ROUTER_NS"),
            &["ip", "route", "show", self.var("VIP")],
        );
        ["10.20.0.2", "10.21.0.2"]
            .iter()
            .filter(|h| r.contains(*h))
            .map(|h| h.to_string())
            .collect()
    }
    fn wait_hops(&self, want: &[&str], timeout: Duration) -> Option<Duration> {
        let t = Instant::now();
        wait_for(timeout, || {
            let h = self.next_hops();
            (h.len() == want.len() && want.iter().all(|w| h.iter().any(|x| x == w)))
                .then(|| t.elapsed())
        })
    }
    /// `n` new connections (Connection: close, 16 at a time) from the
    /// client: how many answered 200.
    fn connections(&self, dir: &Path, n: usize) -> usize {
        let urls = dir.join(format!("urls-{n}.txt"));
        let line = format!("url = \"http://{}/\"\n", self.var("VIP"));
        std::fs::write(&urls, line.repeat(n)).unwrap();
        let out = Command::new("timeout")
            .args([
                "120",
                "ip",
                "netns",
                "exec",
                self.var("CLIENT_NS"),
                "curl",
                "-s",
                "-m",
                "5",
            ])
            .args([
                "--parallel",
                "--parallel-max",
                "16",
                "-H",
                "Connection: close",
            ])
            .args(["-o", "/dev/null", "-w", "%{http_code}\\n", "-K"])
            .arg(&urls)
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| *l == "200")
            .count()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/cluster.sh"))
            .args(["down", "--prefix", &self.prefix])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn node_config(c: &Cluster, n: &str, dir: &Path) -> PathBuf {
    let up = |a: &str, b: &str| {
        if n == "a" {
            a.to_string()
        } else {
            b.to_string()
        }
    };
    let state = c.var("STATE_DIR");
    let (ip, rip, local) = (
        up("10.20.0.2", "10.21.0.2"),
        up("10.20.0.1", "10.21.0.1"),
        up("10.10.2.1", "10.10.2.2"),
    );
    let text = format!(
        r#"
[eal]
main_lcore = 0
worker_lcores = [1]
memory_mb = 256
hugepages = "off"
log_level = "warning"

[mempool]
mbufs = 4095
cache = 128

[engine]
idle_sleep_us = 50
stats_interval_ms = 0

[management]
listen = "unix:{dir}/mgmt-{n}.sock"

[[ports]]
name = "up"
device = "net_af_packet0,iface={upif}"
addresses = ["{ip}/24", "{vip}/32"]
neighbors = ["{rip}"]
gateway = "{rip}"
kernel_iface = "{kif}"
rx_desc = 512
tx_desc = 512

[[ports]]
name = "down"
device = "net_af_packet1,iface={downif}"
addresses = ["{local}/24"]
neighbors = ["10.10.2.11", "10.10.2.12"]
rx_desc = 512
tx_desc = 512

[lb]
client_port = "up"
backend_port = "down"
cluster_secret_file = "{dir}/cluster.secret"
shutdown_grace_s = 5

# Forgiving checks: two nodes, two backends, Redis, BIRD and a 25 MB/s
# download share two vCPUs in CI, and a probe answer late by a second must
# not take both backends down (on_down resets their connections, the
# download included).
[lb.health]
interval_ms = 1000
timeout_ms = 900
fall = 3

[[lb.vips]]
name = "web"
address = "{vip}:80"
policy = "maglev-flow"
backends = [{{ address = "10.10.2.11:80" }}, {{ address = "10.10.2.12:80" }}]

[[lb.vips]]
name = "tls"
address = "{vip}:443"
tls = "terminate"
policy = "maglev-flow"
backends = [{{ address = "10.10.2.11:80" }}, {{ address = "10.10.2.12:80" }}]
[lb.vips.tls_options]
certificates = [{{ cert = "{dir}/ecdsa-p256.pem", key = "{dir}/ecdsa-p256.key", names = ["vip.test"] }}]

[[lb.vips]]
name = "tls12"
address = "{vip}:8443"
tls = "terminate"
policy = "maglev-flow"
backends = [{{ address = "10.10.2.11:80" }}, {{ address = "10.10.2.12:80" }}]
[lb.vips.tls_options]
certificates = [{{ cert = "{dir}/ecdsa-p256.pem", key = "{dir}/ecdsa-p256.key", names = ["vip.test"] }}]
tickets = false

[[lb.vips]]
name = "passthrough"
address = "{vip}:9443"
policy = "session-aware"
backends = [{{ address = "10.10.2.11:443" }}, {{ address = "10.10.2.12:443" }}]

[cluster]
redis = "redis://{rip}:6379"
name = "cl-test"
node = "node-{n}"
sync_interval_ms = 200
timeout_ms = 300

[bgp]
control_socket = "{state}/bird-n{n}.ctl"
routes_file = "{state}/vips-n{n}.conf"
withdraw_delay_ms = 1500
"#,
        dir = dir.display(),
        upif = c.var(&format!("NODE_{}_UP_IF", n.to_uppercase())),
        downif = c.var(&format!("NODE_{}_DOWN_IF", n.to_uppercase())),
        kif = c.var(&format!("NODE_{}_KERNEL_IF", n.to_uppercase())),
        vip = c.var("VIP"),
    );
    let p = dir.join(format!("node-{n}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

/// A node's qsplice (`ip netns exec` execs it: the child's PID is
/// qsplice's), killed on drop so a failing test leaves nothing running.
struct Node(Child);

impl Node {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
    fn try_wait(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        self.0.try_wait()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

fn spawn_node(c: &Cluster, n: &str, dir: &Path) -> Node {
    let cfg = node_config(c, n, dir);
    let ns = c.var(&format!("NODE_{}_NS", n.to_uppercase()));
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            env!("CARGO_BIN_EXE_qsplice"),
            "lb",
            "--config",
        ])
        .arg(&cfg)
        .stdout(std::fs::File::create(dir.join(format!("q-{n}.log"))).unwrap())
        .stderr(std::fs::File::create(dir.join(format!("q-{n}.err"))).unwrap())
        .spawn()
        .map(Node)
        .expect("spawn qsplice in the node namespace")
}

/// The node's BIRD (after its qsplice: the BGP session runs on the kernel
/// interface qsplice creates). Killed by `cluster.sh down` (pid file).
fn start_bird(c: &Cluster, n: &str) {
    let state = c.var("STATE_DIR");
    let ok = Command::new("ip")
        .args([
            "netns",
            "exec",
            c.var(&format!("NODE_{}_NS", n.to_uppercase())),
            "bird",
        ])
        .args(["-c", &format!("{state}/bird-n{n}.conf")])
        .args(["-s", &format!("{state}/bird-n{n}.ctl")])
        .args(["-P", &format!("{state}/bird-n{n}.pid")])
        .status()
        .expect("bird (Debian bird2): scripts/setup.sh installs it");
    assert!(ok.success(), "node {n}: bird did not start");
}

fn api(dir: &Path, n: &str, method: &str, path: &str, body: Option<&str>) -> serde_json::Value {
    let mut c = Command::new("curl");
    c.args(["-s", "-m", "5", "--unix-socket"])
        .arg(dir.join(format!("mgmt-{n}.sock")))
        .args(["-X", method]);
    if let Some(b) = body {
        c.args(["-d", b]);
    }
    let o = c
        .arg(format!("http://qsplice{path}"))
        .output()
        .expect("curl");
    serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null)
}

fn opened(dir: &Path, n: &str) -> u64 {
    api(dir, n, "GET", "/api/v1/status", None)["lb"]["total"]["conn_opened"]
        .as_u64()
        .unwrap_or(0)
}

fn logs(dir: &Path) -> String {
    let mut s = String::new();
    for f in ["q-a.log", "q-a.err", "q-b.log", "q-b.err"] {
        s += &format!(
            "--- {f}\n{}\n",
            std::fs::read_to_string(dir.join(f)).unwrap_or_default()
        );
    }
    s
}

/// The tests of this file run one at a time (each runs two nodes, BIRDs,
/// Redis and the backends on a 2-vCPU machine).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Write the cluster secret, start Redis, both nodes and their BIRDs, and
/// wait for both ECMP next hops.
fn start_cluster(c: &Cluster, dir: &Path) -> (Redis, Node, Node) {
    {
        use std::os::unix::fs::PermissionsExt;
        let s = dir.join("cluster.secret");
        std::fs::write(
            &s,
            "5f1e0c9a3b7d2e4f6a8c0b1d3e5f7a9c5f1e0c9a3b7d2e4f6a8c0b1d3e5f7a9c\n",
        )
        .unwrap();
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let ca = LabCa::new().unwrap();
    std::fs::write(dir.join("ca.pem"), ca.cert_pem()).unwrap();
    let leaf = ca.leaf(KeyAlg::EcdsaP256, &["vip.test"]).unwrap();
    std::fs::write(dir.join("ecdsa-p256.pem"), leaf.cert_pem).unwrap();
    std::fs::write(dir.join("ecdsa-p256.key"), leaf.key_pem).unwrap();
    let redis = Redis::start(c);
    let a = spawn_node(c, "a", dir);
    let b = spawn_node(c, "b", dir);
    for n in ["a", "b"] {
        wait_kernel_if(c, n, dir);
        start_bird(c, n);
    }
    let t = c.wait_hops(&["10.20.0.2", "10.21.0.2"], Duration::from_secs(30));
    assert!(
        t.is_some(),
        "ECMP route never had both nodes: {:?}\n{}",
        c.next_hops(),
        logs(dir)
    );
    (redis, a, b)
}

/// Node `n`'s kernel interface has its address (its ports are up).
fn wait_kernel_if(c: &Cluster, n: &str, dir: &Path) {
    let k = c.var(&format!("NODE_{}_KERNEL_IF", n.to_uppercase()));
    let ns = c.var(&format!("NODE_{}_NS", n.to_uppercase()));
    let up = wait_for(Duration::from_secs(20), || {
        c.ns(ns, &["ip", "-4", "addr", "show", "dev", k])
            .contains("inet ")
            .then_some(())
    });
    assert!(
        up.is_some(),
        "node {n}: kernel interface {k} never got its address\n{}",
        logs(dir)
    );
}

fn lb_total(dir: &Path, n: &str, k: &str) -> u64 {
    api(dir, n, "GET", "/api/v1/status", None)["lb"]["total"][k]
        .as_u64()
        .unwrap_or(0)
}

fn flows_state(dir: &Path, n: &str) -> serde_json::Value {
    cluster_state(dir, n)["flows"].clone()
}

/// A rate-limited download of `/big.bin` from the client namespace.
struct Download {
    child: Child,
}

impl Download {
    fn start(c: &Cluster, dir: &Path, tag: &str, rate: &str) -> Download {
        let out = dir.join(format!("dl-{tag}.bin"));
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                c.var("CLIENT_NS"),
                "curl",
                "-s",
                "-m",
                "120",
            ])
            .args(["--limit-rate", rate, "-o"])
            .arg(&out)
            .args(["-w", "%{http_code} %{size_download}"])
            .arg(format!("http://{}/big.bin", c.var("VIP")))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("curl");
        Download { child }
    }
    /// Wait for the end: (curl's exit status, "code size").
    fn finish(mut self, timeout: Duration) -> (Option<i32>, String) {
        let st = wait_for(timeout, || self.child.try_wait().ok().flatten());
        if st.is_none() {
            let _ = self.child.kill();
        }
        let st = self.child.wait().ok().and_then(|s| s.code());
        let mut o = String::new();
        if let Some(mut so) = self.child.stdout.take() {
            use std::io::Read;
            let _ = so.read_to_string(&mut o);
        }
        (st, o)
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256_of(p: &Path) -> String {
    let o = Command::new("sha256sum")
        .arg(p)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Which node carries the running download: the one whose server→client
/// bytes grow.
fn carrier(dir: &Path) -> &'static str {
    let b0 = (
        lb_total(dir, "a", "s2c_bytes"),
        lb_total(dir, "b", "s2c_bytes"),
    );
    std::thread::sleep(Duration::from_millis(700));
    let b1 = (
        lb_total(dir, "a", "s2c_bytes"),
        lb_total(dir, "b", "s2c_bytes"),
    );
    if b1.0 - b0.0 >= b1.1 - b0.1 {
        "a"
    } else {
        "b"
    }
}

#[test]
fn two_nodes_behind_ecmp_announce_withdraw_and_survive_a_node_death() {
    if !require_root() {
        return;
    }
    let _serial = serial();
    let scratch = Scratch::new("cluster");
    let dir = scratch.0.clone();
    let c = Cluster::up("cl");
    // 1. Both nodes announce (start_cluster waits for both next hops); the
    //    router spreads 2,000 connections.
    let (redis, mut a, mut b) = start_cluster(&c, &dir);
    let ok = c.connections(&dir, 2000);
    let (oa, ob) = (opened(&dir, "a"), opened(&dir, "b"));
    assert_eq!(
        ok,
        2000,
        "every connection answered 200 (a {oa}, b {ob})\n{}",
        logs(&dir)
    );
    for (n, o) in [("a", oa), ("b", ob)] {
        assert!(
            o * 100 > 2000 * 30,
            "node {n} took {o} of 2000 (> 30 % each): a {oa}, b {ob}"
        );
    }

    // 1b. TLS tickets: both nodes run the keys Redis holds (reached over
    //     their exception paths); a chain of 16 resumptions spread by ECMP
    //     crosses nodes, and every one resumes.
    for n in ["a", "b"] {
        let ok = wait_for(Duration::from_secs(10), || {
            let st = cluster_state(&dir, n);
            (st["connected"] == true && st["installs"].as_u64() >= Some(1)).then_some(())
        });
        assert!(
            ok.is_some(),
            "node {n} never synced with Redis: {}\n{}",
            cluster_state(&dir, n),
            logs(&dir)
        );
    }
    let led: u64 = ["a", "b"]
        .iter()
        .map(|n| {
            cluster_state(&dir, n)["rotations_led"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(led, 1, "one node created the shared keys");
    let tls_ok = |n: &str| {
        api(&dir, n, "GET", "/api/v1/status", None)["lb"]["total"]["tls_accepted"]
            .as_u64()
            .unwrap_or(0)
    };
    match go_client(&dir) {
        Some(bin) => {
            let vip = format!("{}:443", c.var("VIP"));
            let r = go_tls_run(
                c.var("CLIENT_NS"),
                &bin,
                &dir.join("ca.pem"),
                &vip,
                &["-n", "16"],
            );
            assert_eq!(r.len(), 16, "{r:?}\n{}", logs(&dir));
            for (i, x) in r.iter().enumerate() {
                assert_eq!(x["status"], 200, "{x}");
                assert_eq!(x["resumed"], i > 0, "connection {i} (a ticket from the previous one, maybe from the other node): {x}");
            }
            let (ta, tb) = (tls_ok("a"), tls_ok("b"));
            // 16 connections from fresh source ports on one node: 2^-15.
            assert!(
                ta > 0 && tb > 0,
                "TLS connections on both nodes: a {ta}, b {tb}"
            );
        }
        None => missing_pq_client("the Go toolchain (tests/tools/tlsclient)"),
    }

    // 1b'. TLS 1.2 session IDs (tickets off): a session made through one
    //      node resumes through either (the stateful cache is shared).
    let sess = dir.join("tls12.sess");
    let s_client = |extra: &[&str]| -> String {
        let vip = format!("{}:8443", c.var("VIP"));
        let mut a = vec![
            "netns",
            "exec",
            c.var("CLIENT_NS"),
            "openssl",
            "s_client",
            "-connect",
            &vip,
        ];
        a.extend_from_slice(&["-servername", "vip.test", "-tls1_2", "-no_ticket"]);
        let ca = dir.join("ca.pem");
        a.extend_from_slice(&["-CAfile", ca.to_str().unwrap()]);
        a.extend_from_slice(extra);
        let o = Command::new("ip")
            .args(&a)
            .stdin(Stdio::null())
            .output()
            .expect("openssl s_client");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let first = s_client(&["-sess_out", sess.to_str().unwrap()]);
    assert!(first.contains("New, TLSv1.2"), "{first}");
    let before = (tls_ok("a"), tls_ok("b"));
    // The other node has the session once it read it from the stream (the
    // import goes straight into the shared cache).
    let crossed = wait_for(Duration::from_secs(10), || {
        let n: u64 = ["a", "b"]
            .iter()
            .map(|n| cluster_state(&dir, n)["sessions_in"].as_u64().unwrap_or(0))
            .sum();
        (n >= 1).then_some(())
    });
    assert!(
        crossed.is_some(),
        "the TLS 1.2 session never crossed through Redis\n{}",
        logs(&dir)
    );
    for i in 0..12 {
        let r = s_client(&["-sess_in", sess.to_str().unwrap()]);
        assert!(
            r.contains("Reused, TLSv1.2"),
            "resumption {i} was not a session-ID resumption:\n{r}"
        );
    }
    let (da, db) = (tls_ok("a") - before.0, tls_ok("b") - before.1);
    assert!(
        da > 0 && db > 0,
        "resumptions on both nodes (12 from fresh ports on one: 2^-11): a {da}, b {db}"
    );
    let shared: u64 = ["a", "b"]
        .iter()
        .map(|n| cluster_state(&dir, n)["sessions_in"].as_u64().unwrap_or(0))
        .sum();
    assert!(shared >= 1, "a session crossed through Redis");

    // 1b''. Session-aware pass-through: the backend that holds a TLS
    //       session is found through either node (table rows shared).
    let sess9 = dir.join("pass.sess");
    let pass = |extra: &[&str]| -> String {
        let vip = format!("{}:9443", c.var("VIP"));
        let mut a = vec![
            "netns",
            "exec",
            c.var("CLIENT_NS"),
            "openssl",
            "s_client",
            "-connect",
            &vip,
        ];
        a.extend_from_slice(&["-tls1_2", "-no_ticket"]);
        a.extend_from_slice(extra);
        let o = Command::new("ip")
            .args(&a)
            .stdin(Stdio::null())
            .output()
            .expect("openssl s_client");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let first = pass(&["-sess_out", sess9.to_str().unwrap()]);
    assert!(first.contains("New, TLSv1.2"), "{first}");
    let hits = |n: &str| {
        api(&dir, n, "GET", "/api/v1/status", None)["lb"]["total"]["sa_hits"]
            .as_u64()
            .unwrap_or(0)
    };
    // Learned by the first node's lcore, written to the stream, read by the
    // other node and handed to its lcores at their next tick.
    let crossed = wait_for(Duration::from_secs(10), || {
        let n: u64 = ["a", "b"]
            .iter()
            .map(|n| cluster_state(&dir, n)["rows_in"].as_u64().unwrap_or(0))
            .sum();
        (n >= 1).then_some(())
    });
    assert!(
        crossed.is_some(),
        "the session-table row never crossed through Redis\n{}",
        logs(&dir)
    );
    std::thread::sleep(Duration::from_millis(500)); // the lcores' tick
    let before = (hits("a"), hits("b"));
    for i in 0..12 {
        let r = pass(&["-sess_in", sess9.to_str().unwrap()]);
        assert!(
            r.contains("Reused, TLSv1.2"),
            "pass-through resumption {i} reached a backend without the session:\n{r}\n{}",
            logs(&dir)
        );
    }
    let (ha, hb) = (hits("a") - before.0, hits("b") - before.1);
    let lb = |n: &str| api(&dir, n, "GET", "/api/v1/status", None)["lb"]["total"].clone();
    assert!(
        ha > 0 && hb > 0,
        "table hits on both nodes: a {ha}, b {hb}\ncluster a {}\ncluster b {}\nlb a {}\nlb b {}",
        cluster_state(&dir, "a"),
        cluster_state(&dir, "b"),
        lb("a"),
        lb("b")
    );
    let rows: u64 = ["a", "b"]
        .iter()
        .map(|n| cluster_state(&dir, n)["rows_in"].as_u64().unwrap_or(0))
        .sum();
    assert!(rows >= 1, "a row crossed through Redis");

    // 1c. Redis away: the nodes keep serving on their installed keys and
    //     count the gap; they reconnect when it returns.
    drop(redis);
    let ok = c.connections(&dir, 200);
    assert_eq!(ok, 200, "connections while Redis is down");
    for n in ["a", "b"] {
        let st = wait_for(Duration::from_secs(5), || {
            let st = cluster_state(&dir, n);
            (st["connected"] == false && st["errors"].as_u64() > Some(0)).then_some(st)
        });
        assert!(
            st.is_some(),
            "node {n} did not count Redis' absence: {}",
            cluster_state(&dir, n)
        );
    }
    let _redis = Redis::start(&c);
    for n in ["a", "b"] {
        let ok = wait_for(Duration::from_secs(10), || {
            (cluster_state(&dir, n)["connected"] == true).then_some(())
        });
        assert!(
            ok.is_some(),
            "node {n} did not reconnect: {}",
            cluster_state(&dir, n)
        );
    }

    // 2. A node without a healthy backend withdraws, and announces again
    //    when one is back.
    // (every VIP on the address)
    for vip in ["web", "tls", "tls12", "passthrough"] {
        let port = if vip == "passthrough" { 443 } else { 80 };
        for be in [format!("10.10.2.11:{port}"), format!("10.10.2.12:{port}")] {
            let r = api(
                &dir,
                "b",
                "POST",
                &format!("/api/v1/vips/{vip}/backends/{be}"),
                Some(r#"{"state":"down"}"#),
            );
            assert_eq!(r["admin"], "down", "{r}");
        }
    }
    assert!(
        c.wait_hops(&["10.20.0.2"], Duration::from_secs(3))
            .is_some(),
        "node b kept its route with every backend down: {:?}",
        c.next_hops()
    );
    api(
        &dir,
        "b",
        "POST",
        "/api/v1/vips/web/backends/10.10.2.11:80",
        Some(r#"{"state":"up"}"#),
    );
    assert!(
        c.wait_hops(&["10.20.0.2", "10.21.0.2"], Duration::from_secs(5))
            .is_some(),
        "node b did not announce again: {:?}",
        c.next_hops()
    );
    let bgp = &api(&dir, "b", "GET", "/api/v1/status", None)["bgp"];
    assert_eq!(bgp["announced"], serde_json::json!(["10.99.0.1"]), "{bgp}");
    assert_eq!(bgp["serving"], true);

    // 3. SIGKILL node A: BFD on the router withdraws its route within 3 s,
    //    and new connections all succeed through B.
    a.kill();
    let gone = c.wait_hops(&["10.21.0.2"], Duration::from_secs(3));
    assert!(
        gone.is_some(),
        "node a's route outlived it by 3 s: {:?}",
        c.next_hops()
    );
    eprintln!("node a killed: route withdrawn after {:?}", gone.unwrap());
    let ok = c.connections(&dir, 300);
    assert_eq!(ok, 300, "connections after node a's death\n{}", logs(&dir));

    // 4. Graceful shutdown of B: the route goes first, while B still takes
    //    connections (withdraw_delay_ms), then B exits by itself.
    // Through `qsplice ctl`, over the listener's Unix socket.
    let o = Command::new(env!("CARGO_BIN_EXE_qsplice"))
        .args(["ctl", "--json", "--url"])
        .arg(format!("unix:{}", dir.join("mgmt-b.sock").display()))
        .arg("shutdown")
        .output()
        .expect("qsplice ctl");
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(
        r["shutdown"],
        true,
        "ctl shutdown: {r} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let t = c.wait_hops(&[], Duration::from_secs(1));
    assert!(
        t.is_some(),
        "node b's route not withdrawn at once: {:?}",
        c.next_hops()
    );
    assert!(
        matches!(b.try_wait(), Ok(None)),
        "node b withdrew by exiting, not before"
    );
    let st = api(&dir, "b", "GET", "/api/v1/status", None);
    assert_eq!(st["bgp"]["serving"], false, "{}", st["bgp"]);
    let exited = wait_for(Duration::from_secs(15), || b.try_wait().ok().flatten());
    assert!(
        exited.is_some_and(|s| s.success()),
        "node b did not exit cleanly\n{}",
        logs(&dir)
    );
    let f = std::fs::read_to_string(Path::new(c.var("STATE_DIR")).join("vips-nb.conf")).unwrap();
    assert!(!f.contains("route "), "routes file left announcing: {f}");
}

/// Part 3 (issue 15): established flows survive a node's graceful drain and
/// its death. Every spliced flow's record goes to Redis; the node ECMP moves
/// a flow to adopts it from the record, and a survivor takes the dead
/// node's backend-side address over (gratuitous ARP) so the backends'
/// segments reach it. Redis away under load fails nothing and the records
/// catch up when it returns.
#[test]
fn established_flows_survive_a_drain_and_a_node_death() {
    if !require_root() {
        return;
    }
    let _serial = serial();
    let scratch = Scratch::new("cluster-flows");
    let dir = scratch.0.clone();
    let c = Cluster::up_with("cf", 200);
    let want = std::fs::read_to_string(Path::new(c.var("STATE_DIR")).join("shared/SHA256SUMS"))
        .unwrap()
        .lines()
        .find(|l| l.ends_with("big.bin"))
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .expect("big.bin in SHA256SUMS");
    let (redis, a, b) = start_cluster(&c, &dir);
    let mut nodes = std::collections::HashMap::from([("a", a), ("b", b)]);
    let other = |n: &str| if n == "a" { "b" } else { "a" };
    let hop = |n: &str| if n == "a" { "10.20.0.2" } else { "10.21.0.2" };
    let local = |n: &str| if n == "a" { "10.10.2.1" } else { "10.10.2.2" };

    // 1. Graceful drain of the node carrying a 200 MB download: its routes
    //    go first, the download moves to the other node (adopted from its
    //    record), the drained node exits, and the download completes intact.
    let dl = Download::start(&c, &dir, "drain", "25M");
    std::thread::sleep(Duration::from_millis(1500));
    let x = carrier(&dir);
    let y = other(x);
    assert!(
        flows_state(&dir, x)["published"].as_u64() >= Some(1),
        "the download's record was published: {}",
        flows_state(&dir, x)
    );
    let o = Command::new(env!("CARGO_BIN_EXE_qsplice"))
        .args(["ctl", "--json", "--url"])
        .arg(format!(
            "unix:{}",
            dir.join(format!("mgmt-{x}.sock")).display()
        ))
        .arg("shutdown")
        .output()
        .expect("qsplice ctl");
    assert!(o.status.success(), "ctl shutdown {x}");
    assert!(
        c.wait_hops(&[hop(y)], Duration::from_secs(2)).is_some(),
        "node {x}'s route not withdrawn first: {:?}",
        c.next_hops()
    );
    let exited = wait_for(Duration::from_secs(20), || {
        nodes.get_mut(x).unwrap().try_wait().ok().flatten()
    });
    assert!(
        exited.is_some_and(|s| s.success()),
        "node {x} did not exit cleanly\n{}",
        logs(&dir)
    );
    let (st, out) = dl.finish(Duration::from_secs(90));
    assert_eq!(
        (st, out.as_str()),
        (Some(0), "200 209715200"),
        "the download through the drained node completed\n{}\n{}",
        flows_state(&dir, y),
        logs(&dir)
    );
    assert_eq!(sha256_of(&dir.join("dl-drain.bin")), want, "sha256 intact");
    let adopted = lb_total(&dir, y, "adopted") + lb_total(&dir, y, "adopt_installed");
    assert!(
        adopted >= 1,
        "node {y} adopted the flow\n{}",
        flows_state(&dir, y)
    );
    // The drained node left: its address is served by the survivor now.
    let claimed = wait_for(Duration::from_secs(5), || {
        let f = flows_state(&dir, y);
        (f["claimed"] == serde_json::json!([local(x)])).then_some(())
    });
    assert!(
        claimed.is_some(),
        "node {y} took {x}'s address over: {}",
        flows_state(&dir, y)
    );
    eprintln!(
        "drain of {x}: download completed through {y}; {y} flows: {}",
        flows_state(&dir, y)
    );

    // The drained node comes back under its name: the address is released.
    nodes.insert(x, spawn_node(&c, x, &dir));
    wait_kernel_if(&c, x, &dir);
    assert!(
        c.wait_hops(&["10.20.0.2", "10.21.0.2"], Duration::from_secs(30))
            .is_some(),
        "node {x} did not announce again: {:?}\n{}",
        c.next_hops(),
        logs(&dir)
    );
    let released = wait_for(Duration::from_secs(5), || {
        (flows_state(&dir, y)["claimed"] == serde_json::json!([])).then_some(())
    });
    assert!(
        released.is_some(),
        "node {y} kept {x}'s address: {}",
        flows_state(&dir, y)
    );

    // 2. SIGKILL the node carrying a 200 MB download: BFD withdraws its
    //    route within 3 s, the survivor takes its address over and the
    //    download completes through it, sha256 intact; new connections
    //    after the withdrawal all succeed.
    let dl = Download::start(&c, &dir, "kill", "25M");
    std::thread::sleep(Duration::from_millis(2000));
    let x = carrier(&dir);
    let y = other(x);
    nodes.get_mut(x).unwrap().kill();
    let gone = c.wait_hops(&[hop(y)], Duration::from_secs(3));
    assert!(
        gone.is_some(),
        "node {x}'s route outlived it by 3 s: {:?}",
        c.next_hops()
    );
    let ok = c.connections(&dir, 200);
    assert_eq!(
        ok,
        200,
        "new connections after node {x}'s death\n{}",
        logs(&dir)
    );
    let (st, out) = dl.finish(Duration::from_secs(90));
    assert_eq!(
        (st, out.as_str()),
        (Some(0), "200 209715200"),
        "the download through the killed node completed\n{}\n{}",
        flows_state(&dir, y),
        logs(&dir)
    );
    assert_eq!(sha256_of(&dir.join("dl-kill.bin")), want, "sha256 intact");
    let f = flows_state(&dir, y);
    assert_eq!(f["claimed"], serde_json::json!([local(x)]), "{f}");
    assert!(
        f["loaded"].as_u64() >= Some(1),
        "the dead node's flows installed: {f}"
    );
    eprintln!(
        "SIGKILL of {x}: route withdrawn after {:?}; download completed through {y}; {y} flows: {f}",
        gone.unwrap()
    );

    // 3. Redis away for 10 s under load: no connection fails, the gap is
    //    counted, and the records queued meanwhile reach Redis when it
    //    returns.
    let before = flows_state(&dir, y)["published"].as_u64().unwrap_or(0);
    drop(redis);
    let t = Instant::now();
    let mut made = 0;
    while t.elapsed() < Duration::from_secs(10) {
        let ok = c.connections(&dir, 100);
        assert_eq!(ok, 100, "connections while Redis is away\n{}", logs(&dir));
        made += ok;
    }
    let f = flows_state(&dir, y);
    assert_eq!(f["connected"], false, "{f}");
    assert!(
        f["errors"].as_u64() > Some(0) && f["backlog"].as_u64() >= Some(1),
        "{f}"
    );
    let _redis = Redis::start(&c);
    let caught_up = wait_for(Duration::from_secs(15), || {
        let f = flows_state(&dir, y);
        (f["connected"] == true
            && f["backlog"] == 0
            && f["published"].as_u64().unwrap_or(0) >= before + made as u64)
            .then_some(f)
    });
    assert!(
        caught_up.is_some(),
        "records of the {made} connections made while Redis was away did not reach it: {}",
        flows_state(&dir, y)
    );
    let keys = c.ns(
        c.var("ROUTER_NS"),
        &["redis-cli", "--scan", "--pattern", "cl-test:flows:*"],
    );
    let stored: u64 = keys
        .lines()
        .map(|k| {
            c.ns(c.var("ROUTER_NS"), &["redis-cli", "HLEN", k])
                .trim()
                .parse::<u64>()
                .unwrap_or(0)
        })
        .sum();
    // Every queued record was written (none dropped); Redis holds one per
    // client pair, and the client reuses its ports over thousands of
    // connections, so there are fewer keys than connections.
    assert_eq!(flows_state(&dir, y)["dropped"], 0);
    assert!(
        stored * 4 >= made as u64,
        "Redis holds {stored} records after the outage, {made} connections were made"
    );
    eprintln!("Redis outage: {made} connections, all served; {stored} records after it returned");
}
