use super::*;
use proptest::prelude::*;
use std::io::Cursor;

use std::net::{Ipv4Addr, Ipv6Addr};

fn set(v: &[[u8; 4]]) -> BTreeSet<IpAddr> {
    v.iter().map(|a| IpAddr::V4(Ipv4Addr::from(*a))).collect()
}

#[test]
fn routes_file_is_one_static_protocol_with_sorted_host_routes() {
    let f = routes_file("qsplice_vips", &set(&[[10, 99, 0, 2], [10, 99, 0, 1]]));
    assert!(f.contains("protocol static qsplice_vips {\n    ipv4;\n"));
    let a = f.find("route 10.99.0.1/32 blackhole;").unwrap();
    let b = f.find("route 10.99.0.2/32 blackhole;").unwrap();
    assert!(a < b, "sorted");
    assert!(
        f.ends_with("protocol static qsplice_vips6 {\n    ipv6;\n}\n"),
        "{f}"
    );
    let mut both = set(&[[10, 99, 0, 1]]);
    both.insert(IpAddr::V6("2001:db8:1::1".parse().unwrap()));
    let f = routes_file("qsplice_vips", &both);
    assert!(f.contains("protocol static qsplice_vips6 {\n    ipv6;\n    route 2001:db8:1::1/128 blackhole;\n}\n"), "{f}");
    assert_eq!(f.matches("route ").count(), 2, "{f}");
    let empty = routes_file("p", &BTreeSet::new());
    assert!(
        !empty.contains("route "),
        "an empty set withdraws everything"
    );
    assert!(empty.contains("protocol static p {"));
}

#[test]
fn replies_parse_with_continuations_and_codes() {
    let raw = "0002-Reading configuration from /etc/bird/bird.conf\n0003 Reconfigured\n";
    let r = read_reply(&mut Cursor::new(raw)).unwrap();
    assert_eq!(r.code, 3);
    assert!(r.ok());
    assert_eq!(r.lines.len(), 2);
    let raw = "0002-Reading configuration from /x\n8002 /x:3:5 syntax error, unexpected CF_SYM_UNDEFINED\n";
    let r = read_reply(&mut Cursor::new(raw)).unwrap();
    assert_eq!(r.code, 8002);
    assert!(!r.ok());
    let raw = "1000-BIRD 2.0.12\n 2nd line\n0000 \n";
    let r = read_reply(&mut Cursor::new(raw)).unwrap();
    assert_eq!(r.code, 0);
    assert_eq!(r.lines, vec!["BIRD 2.0.12", "2nd line", ""]);
}

#[test]
fn bad_replies_are_errors_not_panics() {
    for raw in ["", "hello\n", "12 x\n", "0002-half", "abcd efg\n", "0002"] {
        assert!(read_reply(&mut Cursor::new(raw)).is_err(), "{raw:?}");
    }
}

#[test]
fn a_failed_step_backs_off_and_a_forced_one_does_not_wait() {
    let dir = std::env::temp_dir().join(format!("qsplice-routing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("vips.conf");
    let mut a = Announcer::new(Bird::new(dir.join("no-such.ctl")), &file, "qsplice_vips");
    let want = set(&[[10, 99, 0, 1]]);
    let t0 = Instant::now();
    assert!(matches!(
        a.step(&want, t0, false),
        Step::Failed(RoutingError::Socket(_))
    ));
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("10.99.0.1/32"),
        "file written first"
    );
    assert_eq!(
        a.step(&want, t0 + Duration::from_millis(10), false),
        Step::Idle,
        "backing off"
    );
    assert!(
        matches!(
            a.step(&want, t0 + Duration::from_millis(10), true),
            Step::Failed(_)
        ),
        "forced"
    );
    assert_eq!(a.failures, 2);
    assert!(a.applied().is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

proptest! {
    #[test]
    fn any_line_parses_or_errors(s in "\\PC{0,40}") {
        let _ = parse_line(&s);
        let _ = read_reply(&mut Cursor::new(format!("{s}\n")));
    }

    #[test]
    fn routes_file_lists_exactly_the_set(v in proptest::collection::btree_set(any::<u32>(), 0..20)) {
        let s: BTreeSet<IpAddr> = v
            .iter()
            .map(|x| if x % 2 == 0 {
                IpAddr::V4(Ipv4Addr::from(*x))
            } else {
                IpAddr::V6(Ipv6Addr::from(u128::from(*x) << 64 | 1))
            })
            .collect();
        let f = routes_file("p", &s);
        let routes: Vec<&str> = f.lines().filter(|l| l.trim_start().starts_with("route ")).collect();
        prop_assert_eq!(routes.len(), s.len());
        let (v4, v6) = f.split_once("protocol static p6 {").unwrap();
        for a in &s {
            let (needle, part) = match a {
                IpAddr::V4(_) => (format!("route {a}/32 blackhole;"), v4),
                IpAddr::V6(_) => (format!("route {a}/128 blackhole;"), v6),
            };
            prop_assert!(part.contains(&needle));
        }
    }
}
