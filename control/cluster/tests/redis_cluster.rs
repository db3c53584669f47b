//! The syncs against a real Redis Cluster (three masters, Debian
//! `redis-server` with `cluster-enabled`, joined by `redis-cli --cluster
//! create`), reached as `redis+cluster://host:port,host:port`: the keys
//! spread over the shards, so every multi-key pipeline must be routed per
//! command. Ticket keys, TLS sessions and session-aware rows are shared;
//! a flow published by one node is found by another, and a leaving node's
//! address is taken over.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qsplice_cluster::flows::{FlowConf, FlowSync};
use qsplice_cluster::{ClusterSync, RowMsg, SyncConf, VipShare};
use qsplice_engine::AddrClaims;
use qsplice_lb::{Adopt, FlowSyncShared};
use qsplice_splice::SpliceParams;
use qsplice_tls::cache::SessionCache;
use qsplice_tls::ticket::TicketKeys;

struct Servers(Vec<Child>);

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    let o = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli (Debian redis-tools, with redis-server)");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Three masters on `base..base+3` (cluster bus on +10000), slots assigned.
fn start_cluster(dir: &Path, base: u16) -> Servers {
    let mut s = Servers(Vec::new());
    for i in 0..3 {
        let port = base + i;
        let d = dir.join(format!("n{i}"));
        std::fs::create_dir_all(&d).unwrap();
        s.0.push(
            Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&d)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server (Debian redis-server): scripts/setup.sh"),
        );
    }
    for i in 0..3 {
        wait("a cluster node", Duration::from_secs(10), || {
            cli(base + i, &["ping"]).contains("PONG")
        });
    }
    let nodes: Vec<String> = (0..3).map(|i| format!("127.0.0.1:{}", base + i)).collect();
    let o = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&nodes)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli --cluster create");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    wait("the cluster to be ok", Duration::from_secs(20), || {
        (0..3).all(|i| cli(base + i, &["cluster", "info"]).contains("cluster_state:ok"))
    });
    s
}

fn url(base: u16) -> String {
    format!("redis+cluster://127.0.0.1:{base},127.0.0.1:{}", base + 1)
}

fn flow(client_port: u16) -> SpliceParams {
    SpliceParams {
        client: SocketAddrV4::new(Ipv4Addr::new(10, 10, 1, 2), client_port),
        vip: "10.99.0.1:80".parse().unwrap(),
        local: SocketAddrV4::new(Ipv4Addr::new(10, 10, 2, 1), 20000 + client_port % 100),
        server: "10.10.2.11:80".parse().unwrap(),
        c2s_seq_delta: 1,
        s2c_seq_delta: 2,
        c2s_ts_delta: 3,
        s2c_ts_delta: 4,
        client_ws: 7,
        vip_ws: 7,
        local_ws: 7,
        server_ws: 7,
    }
}

fn flow_node(base: u16, name: &str, addr: &str) -> (FlowSync, Arc<FlowSyncShared>) {
    let shared = Arc::new(FlowSyncShared::new(1, 1024, Arc::new(AddrClaims::new())));
    let s = FlowSync::spawn(
        FlowConf {
            redis_url: url(base),
            prefix: "qsrc".into(),
            node: name.into(),
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(500),
            ttl: Duration::from_secs(60),
            addrs: vec![addr.parse().unwrap()],
            sport_min: 20000,
            lcores: 1,
        },
        shared.clone(),
    )
    .unwrap();
    (s, shared)
}

fn tmp() -> PathBuf {
    let d = std::env::temp_dir().join(format!("qsplice-rcluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn tickets_sessions_rows_and_flows_through_a_redis_cluster() {
    let dir = tmp();
    let base = 17000 + (std::process::id() % 1000) as u16 * 3;
    let _servers = start_cluster(&dir, base);

    // Ticket keys, sessions and rows (keys on several shards).
    let state = |name: &str| {
        let s = ClusterSync::spawn(SyncConf {
            redis_url: url(base),
            prefix: "qsrc".into(),
            node: name.into(),
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(500),
        })
        .unwrap();
        let k = TicketKeys::new(Duration::from_secs(30));
        let caches: Vec<Arc<SessionCache>> = (0..3)
            .map(|_| SessionCache::new(1000, Duration::from_secs(30)))
            .collect();
        let vips = ["10.99.0.1:443", "10.99.0.2:443", "10.99.0.3:443"]
            .iter()
            .zip(&caches)
            .map(|(v, c)| VipShare {
                vip: v.to_string(),
                tickets: Some(k.clone()),
                cache: Some(c.clone()),
            })
            .collect();
        s.set_vips(vips);
        (s, k, caches)
    };
    let (a, ka, ca) = state("a");
    let (b, kb, cb) = state("b");
    wait(
        "both nodes to install keys",
        Duration::from_secs(10),
        || ka.managed() && kb.managed(),
    );
    // Both managed does not mean both on the same key yet: each node may
    // have installed its own before it read the other's; they converge.
    wait(
        "b to decrypt a ticket from a",
        Duration::from_secs(10),
        || {
            let t = ka.ticketer().encrypt(b"through a").unwrap();
            kb.ticketer().decrypt(&t).as_deref() == Some(&b"through a"[..])
        },
    );
    ca[2].put_at(b"sid-1".to_vec(), b"state".to_vec(), Instant::now());
    wait("the session to reach b", Duration::from_secs(10), || {
        cb[2].lookup_at(b"sid-1", Instant::now(), false).is_some()
    });
    a.send_rows([RowMsg {
        vip: "10.99.0.1:9443".into(),
        key: 42,
        backend: "10.10.2.11:443".into(),
    }]);
    let mut got = Vec::new();
    wait("the row to reach b", Duration::from_secs(10), || {
        got.extend(b.received_rows());
        !got.is_empty()
    });
    assert_eq!(got[0].key, 42);
    assert_eq!(
        a.stats.errors.load(Ordering::Relaxed),
        0,
        "{:?}",
        a.stats.last_error
    );

    // Flows: published by A, found by B, A's address taken over when it leaves.
    let (fa, sa) = flow_node(base, "na", "10.10.2.1");
    let (fb, sb) = flow_node(base, "nb", "10.10.2.2");
    let flows: Vec<SpliceParams> = (40000..40020).map(flow).collect();
    for f in &flows {
        sa.out[0].push(*f).unwrap();
    }
    wait("A to publish", Duration::from_secs(10), || {
        fa.stats.published.load(Ordering::Relaxed) == 20
    });
    for f in &flows[..5] {
        sb.lookups[0].push((f.client, f.vip)).unwrap();
    }
    let mut answers = Vec::new();
    wait("B's lookups", Duration::from_secs(10), || {
        while let Some(a) = sb.answers[0].pop() {
            answers.push(a);
        }
        answers.len() == 5
    });
    for (a, f) in answers.iter().zip(&flows) {
        assert_eq!(*a, Adopt::Found(*f));
    }
    fa.leave();
    wait(
        "B to take A's address over",
        Duration::from_secs(10),
        || sb.claims.list() == vec!["10.10.2.1".parse::<Ipv4Addr>().unwrap()],
    );
    wait("B to install A's flows", Duration::from_secs(10), || {
        fb.stats.loaded.load(Ordering::Relaxed) == 20
    });
    assert_eq!(
        fb.stats.errors.load(Ordering::Relaxed),
        0,
        "{:?}",
        fb.stats.last_error
    );
}
