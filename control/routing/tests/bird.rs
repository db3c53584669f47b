//! The announcer against a real BIRD 2 (Debian `bird2`, installed by
//! `scripts/setup.sh`): routes appear in and leave BIRD's table as the
//! wanted set changes, and a bad step leaves BIRD's routes as they were.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qsplice_routing::{routes_file, Announcer, Bird, RoutingError, Step};

struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_bird(tag: &str) -> (Daemon, PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("qsplice-bird-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let vips = dir.join("vips.conf");
    std::fs::write(&vips, routes_file("qsplice_vips", &BTreeSet::new())).unwrap();
    let conf = dir.join("bird.conf");
    std::fs::write(
        &conf,
        format!(
            "router id 10.255.0.1;\nprotocol device {{ }}\ninclude \"{}\";\n",
            vips.display()
        ),
    )
    .unwrap();
    let sock = dir.join("bird.ctl");
    let child = Command::new("bird")
        .arg("-f")
        .arg("-c")
        .arg(&conf)
        .arg("-s")
        .arg(&sock)
        .arg("-P")
        .arg(dir.join("bird.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bird (Debian bird2) must be installed: scripts/setup.sh");
    let d = Daemon { child, dir };
    let t = Instant::now();
    while Bird::new(&sock).command("show status").is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "bird did not open its socket"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (d, sock, vips)
}

fn routes(sock: &Path) -> String {
    routes_of(sock, "qsplice_vips")
}

fn routes_of(sock: &Path, protocol: &str) -> String {
    Bird::new(sock)
        .command(&format!("show route protocol {protocol}"))
        .map(|r| r.lines.join("\n"))
        .unwrap_or_default()
}

fn set(v: &[[u8; 4]]) -> BTreeSet<IpAddr> {
    v.iter().map(|a| IpAddr::V4(Ipv4Addr::from(*a))).collect()
}

#[test]
fn announcer_adds_and_withdraws_routes_in_a_running_bird() {
    let (_d, sock, vips) = start_bird("rw");
    let mut a = Announcer::new(Bird::new(&sock), &vips, "qsplice_vips");
    let now = Instant::now();
    let two = set(&[[10, 99, 0, 1], [10, 99, 0, 2]]);
    match a.step(&two, now, false) {
        Step::Applied {
            announced,
            withdrawn,
        } => {
            assert_eq!(announced.len(), 2);
            assert!(withdrawn.is_empty());
        }
        s => panic!("{s:?}"),
    }
    let r = routes(&sock);
    assert!(
        r.contains("10.99.0.1/32") && r.contains("10.99.0.2/32"),
        "{r}"
    );
    assert_eq!(a.step(&two, now, false), Step::Idle, "already applied");
    let one = set(&[[10, 99, 0, 2]]);
    assert!(matches!(a.step(&one, now, false), Step::Applied { .. }));
    let r = routes(&sock);
    assert!(
        !r.contains("10.99.0.1/32") && r.contains("10.99.0.2/32"),
        "{r}"
    );
    assert!(matches!(
        a.step(&BTreeSet::new(), now, false),
        Step::Applied { .. }
    ));
    assert!(!routes(&sock).contains("10.99.0."), "all withdrawn");
    // IPv6 VIPs: /128s in the ipv6 static protocol, beside the IPv4 ones.
    let mut dual = set(&[[10, 99, 0, 3]]);
    dual.insert("2001:db8:99::1".parse().unwrap());
    assert!(matches!(a.step(&dual, now, false), Step::Applied { .. }));
    let r6 = routes_of(&sock, "qsplice_vips6");
    assert!(r6.contains("2001:db8:99::1/128"), "{r6}");
    assert!(routes(&sock).contains("10.99.0.3/32"));
    assert!(matches!(
        a.step(&set(&[[10, 99, 0, 3]]), now, false),
        Step::Applied { .. }
    ));
    assert!(
        !routes_of(&sock, "qsplice_vips6").contains("2001:db8:99::1"),
        "withdrawn"
    );
    assert_eq!(a.failures, 0);
}

#[test]
fn a_rejected_configuration_is_an_error_and_bird_keeps_its_routes() {
    let (_d, sock, vips) = start_bird("bad");
    let mut good = Announcer::new(Bird::new(&sock), &vips, "qsplice_vips");
    assert!(matches!(
        good.step(&set(&[[10, 99, 0, 7]]), Instant::now(), false),
        Step::Applied { .. }
    ));
    // A protocol name BIRD cannot parse: BIRD refuses the new file.
    let mut bad = Announcer::new(Bird::new(&sock), &vips, "bad name");
    match bad.step(&set(&[[10, 99, 0, 8]]), Instant::now(), false) {
        Step::Failed(RoutingError::Bird(code, text)) => {
            assert!(code >= 8000, "{code} {text}");
        }
        s => panic!("expected BIRD's parse error, got {s:?}"),
    }
    assert!(
        routes(&sock).contains("10.99.0.7/32"),
        "the old configuration stays"
    );
}
