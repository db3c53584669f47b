//! Content-aware (LARD-style) rule matching on request heads.

use qsplice_lb::{rule_matches, ContentRule};

fn rule(host: Option<&str>, path: Option<&str>, cookie: Option<(&str, &str)>) -> ContentRule {
    ContentRule {
        host: host.map(str::to_string),
        path_prefix: path.map(str::to_string),
        cookie: cookie.map(|(n, v)| (n.to_string(), v.to_string())),
        backends: vec![0],
    }
}

const HEAD: &[u8] = b"GET /static/logo.png?x=1 HTTP/1.1\r\nHost: IMG.example.com:8080\r\nCookie: a=1; srv=b2; z=\r\nAccept: */*\r\n\r\n";

#[test]
fn criteria_must_all_match() {
    assert!(rule_matches(
        &rule(Some("img.example.com"), None, None),
        HEAD
    ));
    assert!(rule_matches(&rule(None, Some("/static/"), None), HEAD));
    assert!(rule_matches(&rule(None, None, Some(("srv", "b2"))), HEAD));
    assert!(rule_matches(
        &rule(
            Some("img.example.com"),
            Some("/static/"),
            Some(("srv", "b2"))
        ),
        HEAD
    ));
    assert!(!rule_matches(
        &rule(Some("www.example.com"), None, None),
        HEAD
    ));
    assert!(!rule_matches(&rule(None, Some("/api/"), None), HEAD));
    assert!(!rule_matches(&rule(None, None, Some(("srv", "b1"))), HEAD));
    assert!(!rule_matches(&rule(None, None, Some(("sr", "v=b2"))), HEAD));
    assert!(!rule_matches(
        &rule(Some("img.example.com"), Some("/api/"), None),
        HEAD
    ));
}

#[test]
fn missing_headers_and_garbage_do_not_match() {
    let bare = b"GET / HTTP/1.1\r\n\r\n";
    assert!(!rule_matches(&rule(Some("a"), None, None), bare));
    assert!(!rule_matches(&rule(None, None, Some(("a", "1"))), bare));
    assert!(rule_matches(&rule(None, Some("/"), None), bare));
    for junk in [&b""[..], b"\r\n\r\n", b"\xff\xfe", b"GET\r\n\r\n"] {
        assert!(
            !rule_matches(&rule(None, Some("/"), None), junk),
            "{junk:?}"
        );
    }
}
