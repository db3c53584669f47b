//! Ticket-key sync against a real Redis (Debian `redis-server`, installed by
//! `scripts/setup.sh`), two "nodes" in one process: a ticket sealed by one
//! opens on the other, across a rotation, and Redis going away is counted
//! while the installed keys keep working.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qsplice_cluster::{ClusterSync, RowMsg, SyncConf, VipShare};
use qsplice_tls::cache::SessionCache;
use qsplice_tls::ticket::TicketKeys;

struct Redis {
    child: Child,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_redis(dir: &Path) -> Redis {
    let sock = dir.join("redis.sock");
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
    let t = Instant::now();
    while !sock.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Redis { child }
}

fn node(dir: &Path, name: &str) -> (ClusterSync, Arc<TicketKeys>) {
    let (s, k, _) = node_with_cache(dir, name);
    (s, k)
}

fn node_with_cache(dir: &Path, name: &str) -> (ClusterSync, Arc<TicketKeys>, Arc<SessionCache>) {
    let s = ClusterSync::spawn(SyncConf {
        redis_url: format!("redis+unix://{}", dir.join("redis.sock").display()),
        prefix: "qstest".into(),
        node: name.into(),
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(300),
    })
    .unwrap();
    let k = TicketKeys::new(Duration::from_secs(2));
    let cache = SessionCache::new(1000, Duration::from_secs(30));
    s.set_vips(vec![VipShare {
        vip: "10.99.0.1:443".into(),
        tickets: Some(k.clone()),
        cache: Some(cache.clone()),
    }]);
    (s, k, cache)
}

fn wait(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_nodes_share_ticket_keys_across_rotation_and_outage() {
    let dir = std::env::temp_dir().join(format!("qsplice-redis-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let redis = start_redis(&dir);
    let (a, ka) = node(&dir, "a");
    let (b, kb) = node(&dir, "b");
    wait("both nodes to install", Duration::from_secs(5), || {
        ka.managed() && kb.managed()
    });
    let (ta, tb) = (ka.ticketer(), kb.ticketer());
    let t1 = ta.encrypt(b"issued on a").unwrap();
    assert_eq!(
        tb.decrypt(&t1).as_deref(),
        Some(&b"issued on a"[..]),
        "resumes on b"
    );
    let led = |s: &ClusterSync| s.stats.rotations_led.load(Ordering::Relaxed);
    assert_eq!(led(&a) + led(&b), 1, "exactly one node created the record");

    // The 2 s interval passes: exactly one node rotates, both follow.
    let r0 = ka.rotations();
    wait("a rotation", Duration::from_secs(6), || {
        ka.rotations() > r0 && kb.rotations() > r0
    });
    assert_eq!(led(&a) + led(&b), 2, "one rotation, by one node");
    let t2 = tb.encrypt(b"issued on b").unwrap();
    assert_eq!(ta.decrypt(&t2).as_deref(), Some(&b"issued on b"[..]));
    assert_eq!(
        ta.decrypt(&t1).as_deref(),
        Some(&b"issued on a"[..]),
        "previous key still opens"
    );
    assert!(
        !ka.rotate_if_due(Instant::now() + Duration::from_secs(60)),
        "no local schedule"
    );

    // Redis away: counted, the installed keys keep working.
    drop(redis);
    let e0 = a.stats.errors.load(Ordering::Relaxed);
    wait("errors counted", Duration::from_secs(5), || {
        a.stats.errors.load(Ordering::Relaxed) > e0
    });
    assert!(!a.stats.connected.load(Ordering::Relaxed));
    assert!(!a.stats.last_error.lock().unwrap().is_empty());
    assert_eq!(
        tb.decrypt(&ta.encrypt(b"x").unwrap()).as_deref(),
        Some(&b"x"[..])
    );

    // Redis back (empty: no persistence): the nodes converge on new keys.
    let _redis = start_redis(&dir);
    let i0 = ka.rotations();
    wait("reconnect", Duration::from_secs(5), || {
        a.stats.connected.load(Ordering::Relaxed) && b.stats.connected.load(Ordering::Relaxed)
    });
    wait("new keys on both", Duration::from_secs(5), || {
        ka.rotations() > i0 && kb.rotations() > i0
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        tb.decrypt(&ta.encrypt(b"y").unwrap()).as_deref(),
        Some(&b"y"[..])
    );
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_session_stored_on_one_node_resumes_on_the_other() {
    let dir = std::env::temp_dir().join(format!("qsplice-redis-s-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _redis = start_redis(&dir);
    let (a, _, ca) = node_with_cache(&dir, "a");
    let (b, _, cb) = node_with_cache(&dir, "b");
    let now = Instant::now();
    for i in 0..50u8 {
        ca.put_at(vec![b'a', i], vec![i; 100], now);
    }
    cb.put_at(b"from-b".to_vec(), b"state-b".to_vec(), now);
    wait("sessions to cross", Duration::from_secs(5), || {
        cb.lookup_at(&[b'a', 49], Instant::now(), false).is_some()
            && ca.lookup_at(b"from-b", Instant::now(), false).is_some()
    });
    for i in 0..50u8 {
        assert_eq!(
            cb.lookup_at(&[b'a', i], Instant::now(), false),
            Some(vec![i; 100])
        );
    }
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(a.stats.sessions_out.load(Ordering::Relaxed), 50);
    assert_eq!(
        b.stats.sessions_in.load(Ordering::Relaxed),
        50,
        "each session imported once"
    );
    assert_eq!(
        a.stats.sessions_in.load(Ordering::Relaxed),
        1,
        "its own sessions are not imported back"
    );
    assert_eq!(ca.imported.load(Ordering::Relaxed), 1);
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mapping_table_rows_learned_on_one_node_reach_the_others_once() {
    let dir = std::env::temp_dir().join(format!("qsplice-redis-r-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _redis = start_redis(&dir);
    let (a, _) = node(&dir, "a");
    let (b, _) = node(&dir, "b");
    let row = |k: u64| RowMsg {
        vip: "10.99.0.1:9443".into(),
        key: k,
        backend: "10.10.2.12:443".into(),
    };
    a.send_rows((0..100).map(row));
    let mut got = Vec::new();
    let t = Instant::now();
    while got.len() < 100 && t.elapsed() < Duration::from_secs(5) {
        got.extend(b.received_rows());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        got,
        (0..100).map(row).collect::<Vec<_>>(),
        "in order, whole"
    );
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        a.received_rows().is_empty(),
        "a node does not learn its own rows back"
    );
    assert!(b.received_rows().is_empty(), "each row once");
    assert_eq!(a.stats.rows_out.load(Ordering::Relaxed), 100);
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_master_is_found_through_redis_sentinel() {
    let dir = std::env::temp_dir().join(format!("qsplice-redis-sent-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = 20_000 + (std::process::id() % 20_000) as u16;
    let sport = port + 1;
    let server = Redis {
        child: Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server"),
    };
    let conf = dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!("port {sport}\nbind 127.0.0.1\nsentinel monitor qsm 127.0.0.1 {port} 1\n"),
    )
    .unwrap();
    let sentinel = Redis {
        child: Command::new("redis-sentinel")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-sentinel (Debian redis-sentinel): scripts/setup.sh installs it"),
    };
    let s = ClusterSync::spawn(SyncConf {
        redis_url: format!("redis+sentinel://127.0.0.1:{sport}/qsm"),
        prefix: "qssent".into(),
        node: "a".into(),
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(300),
    })
    .unwrap();
    let k = TicketKeys::new(Duration::from_secs(60));
    s.set_vips(vec![VipShare {
        vip: "10.99.0.1:443".into(),
        tickets: Some(k.clone()),
        cache: None,
    }]);
    wait(
        "keys through the sentinel's master",
        Duration::from_secs(10),
        || k.managed(),
    );
    assert!(s.stats.connected.load(Ordering::Relaxed));
    drop(s);
    drop((sentinel, server));
    let _ = std::fs::remove_dir_all(&dir);
}
