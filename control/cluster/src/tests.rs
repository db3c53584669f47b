use super::*;
use proptest::prelude::*;

#[test]
fn records_round_trip_and_rotate_by_shifting() {
    let a = SharedKeys::first(1_000);
    assert_eq!(SharedKeys::decode(&a.encode()), Some(a.clone()));
    assert!(a.encode().contains(" - "), "no previous key yet");
    let b = a.rotated(61_000);
    assert_eq!(b.epoch, 2);
    assert_eq!(b.previous.as_ref(), Some(&a.current));
    assert_eq!(b.current, a.next, "next becomes current");
    assert_ne!(b.next, a.next);
    assert_eq!(SharedKeys::decode(&b.encode()), Some(b.clone()));
    assert!(!a.due(60_999, Duration::from_secs(60)));
    assert!(a.due(61_000, Duration::from_secs(60)));
}

#[test]
fn foreign_or_damaged_records_are_not_keys() {
    let good = SharedKeys::first(5).encode();
    for bad in [
        String::new(),
        "v2 1 2 - a:b c:d".into(),
        good.replacen("v1 1", "v1 x", 1),
        good[..good.len() - 2].to_string(),
        format!("{good} extra"),
        good.replace(':', ";"),
    ] {
        assert_eq!(SharedKeys::decode(&bad), None, "{bad}");
    }
}

proptest! {
    #[test]
    fn decode_never_panics(s in "\\PC{0,300}") {
        let _ = SharedKeys::decode(&s);
    }
}

#[test]
fn sentinel_urls_name_hosts_and_master() {
    assert_eq!(
        parse_sentinel("10.0.0.1:26379,s2:26380/mymaster"),
        Some((
            vec!["10.0.0.1:26379".into(), "s2:26380".into()],
            "mymaster".into()
        ))
    );
    for bad in ["", "h:1/", "/m", "h/m", "h:0/m", "h:x/m", ":1/m", "h:1/m/x"] {
        assert_eq!(parse_sentinel(bad), None, "{bad}");
    }
}
