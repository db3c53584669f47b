//! Flow sync against a real Redis (Debian `redis-server`): two "nodes" in
//! one process, each with its lcore rings as the dataplane sees them. A
//! record published by one is found by the other's lookup; a node that
//! leaves has its backend-side address taken over by the survivor, which
//! installs the node's flows on the lcore that owns each source port; the
//! address is released when its node is back; Redis going away answers
//! lookups "unavailable", keeps the records and republishes on return.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qsplice_cluster::flows::{FlowConf, FlowSync};
use qsplice_engine::AddrClaims;
use qsplice_lb::{Adopt, FlowSyncShared};
use qsplice_splice::SpliceParams;

struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis(dir: &Path) -> Redis {
    let sock = dir.join("redis.sock");
    let _ = std::fs::remove_file(&sock);
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--save",
            "",
            "--appendonly",
            "no",
            "--unixsocket",
        ])
        .arg(&sock)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (Debian redis-server) must be installed: scripts/setup.sh");
    wait("redis-server to start", Duration::from_secs(10), || {
        sock.exists()
    });
    Redis(child)
}

fn wait(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

const LCORES: u16 = 2;

fn node(dir: &Path, name: &str, addr: &str) -> (FlowSync, Arc<FlowSyncShared>) {
    node_ttl(dir, name, addr, Duration::from_secs(60))
}

fn node_ttl(dir: &Path, name: &str, addr: &str, ttl: Duration) -> (FlowSync, Arc<FlowSyncShared>) {
    let shared = Arc::new(FlowSyncShared::new(
        usize::from(LCORES),
        1024,
        Arc::new(AddrClaims::new()),
    ));
    let s = FlowSync::spawn(
        FlowConf {
            redis_url: format!("redis+unix://{}", dir.join("redis.sock").display()),
            prefix: "qsflows".into(),
            node: name.into(),
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(300),
            ttl,
            addrs: vec![addr.parse().unwrap()],
            sport_min: 20000,
            lcores: LCORES,
        },
        shared.clone(),
    )
    .unwrap();
    (s, shared)
}

fn flow(client_port: u16, local: &str, sport: u16) -> SpliceParams {
    SpliceParams {
        client: SocketAddrV4::new(Ipv4Addr::new(10, 10, 1, 2), client_port),
        vip: "10.99.0.1:80".parse().unwrap(),
        local: SocketAddrV4::new(local.parse().unwrap(), sport),
        server: "10.10.2.11:80".parse().unwrap(),
        c2s_seq_delta: 0x1234_5678,
        s2c_seq_delta: 0x9abc_def0,
        c2s_ts_delta: 11,
        s2c_ts_delta: 22,
        client_ws: 7,
        vip_ws: 9,
        local_ws: 7,
        server_ws: 7,
    }
}

/// Everything in lcore `i`'s answer ring.
fn answers(s: &FlowSyncShared, i: usize) -> Vec<Adopt> {
    std::iter::from_fn(|| s.answers[i].pop()).collect()
}

/// Ask `s` (from lcore 0) for the pair of `p` and wait for the answer.
fn ask(s: &FlowSyncShared, p: &SpliceParams) -> Adopt {
    s.lookups[0].push((p.client, p.vip)).unwrap();
    let mut got = None;
    wait("a lookup's answer", Duration::from_secs(5), || {
        got = s.answers[0].pop();
        got.is_some()
    });
    got.unwrap()
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qsplice-flows-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_flow_published_by_one_node_is_adopted_by_another_and_its_address_taken_over() {
    let dir = tmp("a");
    let _redis = start_redis(&dir);
    let (a, sa) = node(&dir, "na", "10.10.2.1");
    let (b, sb) = node(&dir, "nb", "10.10.2.2");
    // Node A splices three flows (source ports owned by lcores 0, 1, 0).
    let fa: Vec<SpliceParams> = (0..3)
        .map(|i| flow(40000 + i, "10.10.2.1", 20000 + i))
        .collect();
    for f in &fa {
        sa.out[0].push(*f).unwrap();
    }
    wait("A to publish", Duration::from_secs(5), || {
        a.stats.published.load(Ordering::Relaxed) == 3
    });
    // B knows them by their client-side pair; not an unknown one.
    assert_eq!(ask(&sb, &fa[1]), Adopt::Found(fa[1]));
    let stranger = flow(41000, "10.10.2.1", 20100);
    assert_eq!(
        ask(&sb, &stranger),
        Adopt::NotFound((stranger.client, stranger.vip))
    );
    assert!(
        sb.claims.list().is_empty(),
        "A is alive: nothing to take over"
    );
    wait("B to see A alive", Duration::from_secs(5), || {
        sb.is_ready() && sb.has_peers()
    });
    // A leaves: B takes 10.10.2.1 over and installs A's flows on the
    // lcores that receive the backends' segments for each source port.
    a.leave();
    wait("B to take A's address over", Duration::from_secs(5), || {
        sb.claims.list() == vec!["10.10.2.1".parse::<Ipv4Addr>().unwrap()]
    });
    wait("B to install A's flows", Duration::from_secs(5), || {
        b.stats.loaded.load(Ordering::Relaxed) == 3
    });
    let mut l0 = answers(&sb, 0);
    let mut l1 = answers(&sb, 1);
    l0.sort_by_key(|a| format!("{a:?}"));
    l1.sort_by_key(|a| format!("{a:?}"));
    let mut want0 = vec![Adopt::Install(fa[0]), Adopt::Install(fa[2])];
    want0.sort_by_key(|a| format!("{a:?}"));
    assert_eq!(l0, want0);
    assert_eq!(l1, vec![Adopt::Install(fa[1])]);
    assert_eq!(b.stats.takeovers.load(Ordering::Relaxed), 1);
    assert!(!sb.has_peers(), "A left: B is alone");
    // A comes back under the same name: B releases the address, and A
    // installs its own earlier flows (B may have adopted their client side).
    let (a2, sa2) = node(&dir, "na", "10.10.2.1");
    wait("B to release A's address", Duration::from_secs(5), || {
        sb.claims.list().is_empty()
    });
    wait("A to reload its flows", Duration::from_secs(5), || {
        a2.stats.loaded.load(Ordering::Relaxed) == 3
    });
    assert_eq!(answers(&sa2, 0).len() + answers(&sa2, 1).len(), 3);
    drop(a2);
    drop(b);
}

#[test]
fn redis_away_answers_unavailable_keeps_records_and_republishes_on_return() {
    let dir = tmp("b");
    let redis = start_redis(&dir);
    let (a, sa) = node(&dir, "na", "10.10.2.1");
    wait("A connected", Duration::from_secs(5), || {
        a.stats.connected.load(Ordering::Relaxed)
    });
    drop(redis);
    let f = flow(40000, "10.10.2.1", 20000);
    // Spliced during the outage: queued, not lost.
    sa.out[1].push(f).unwrap();
    let gen0 = sa.generation.load(Ordering::Relaxed);
    assert_eq!(ask(&sa, &f), Adopt::Unavailable((f.client, f.vip)));
    wait("the outage to be counted", Duration::from_secs(5), || {
        a.stats.errors.load(Ordering::Relaxed) > 0 && !a.stats.connected.load(Ordering::Relaxed)
    });
    assert_eq!(a.stats.published.load(Ordering::Relaxed), 0);
    let _redis = start_redis(&dir);
    wait(
        "the queued record to be written",
        Duration::from_secs(10),
        || a.stats.published.load(Ordering::Relaxed) == 1,
    );
    assert!(
        sa.generation.load(Ordering::Relaxed) > gen0,
        "the lcores are asked to publish again (Redis came back empty)"
    );
    assert_eq!(ask(&sa, &f), Adopt::Found(f));
}

#[test]
fn a_taken_over_address_is_released_once_no_flow_is_left_on_it() {
    let dir = tmp("c");
    let _redis = start_redis(&dir);
    let ttl = Duration::from_secs(1);
    let (a, sa) = node_ttl(&dir, "na", "10.10.2.1", ttl);
    let (b, sb) = node_ttl(&dir, "nb", "10.10.2.2", ttl);
    sa.out[0].push(flow(40000, "10.10.2.1", 20000)).unwrap();
    wait("A to publish", Duration::from_secs(5), || {
        a.stats.published.load(Ordering::Relaxed) == 1
    });
    a.leave();
    wait("B to take A's address over", Duration::from_secs(5), || {
        !sb.claims.list().is_empty()
    });
    // A's records expire (two lifetimes) and B published no flow on the
    // address: the claim is released and A leaves the node list.
    wait("B to release A's address", Duration::from_secs(15), || {
        sb.claims.list().is_empty()
    });
    let nodes = Command::new("redis-cli")
        .args(["-s"])
        .arg(dir.join("redis.sock"))
        .args(["hkeys", "qsflows:nodes"])
        .output()
        .unwrap();
    let nodes = String::from_utf8_lossy(&nodes.stdout).to_string();
    assert!(!nodes.contains("na") && nodes.contains("nb"), "{nodes}");
    drop(b);
}
