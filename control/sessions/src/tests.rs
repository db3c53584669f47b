use super::*;
use proptest::prelude::*;

const S: (u64, u64) = (1, 2);

fn key(n: u8) -> SessionKey {
    SessionKey::of(S, IdentityKind::SessionId, &[n; 32])
}

#[test]
fn keys_depend_on_kind_identity_and_secret() {
    let a = SessionKey::of(S, IdentityKind::SessionId, b"abc");
    assert_eq!(a, SessionKey::of(S, IdentityKind::SessionId, b"abc"));
    assert_ne!(a, SessionKey::of(S, IdentityKind::PskIdentity, b"abc"));
    assert_ne!(a, SessionKey::of(S, IdentityKind::SessionId, b"abd"));
    assert_ne!(a, SessionKey::of((9, 9), IdentityKind::SessionId, b"abc"));
}

#[test]
fn paper_selection_least_recently_used_idle_candidate() {
    let mut t = SessionTable::new(100, 1000);
    let k = key(1);
    assert_eq!(t.select(k, |_| true), Selection::Miss);
    // The session was created on backend 0 and resumed on backend 2.
    t.on_open(k, 0, 10);
    t.on_close(k, 0, 20);
    t.on_open(k, 2, 30);
    t.on_close(k, 2, 40);
    assert_eq!(t.rows(k).len(), 2);
    // Both idle: the older timestamp (backend 0, finished at 20).
    assert_eq!(t.select(k, |_| true), Selection::Hit(0));
    // Backend 0 busy with this session: backend 2.
    t.on_open(k, 0, 50);
    assert_eq!(t.select(k, |_| true), Selection::Hit(2));
    // Backend 2 not eligible (down / over its limit): all candidates out.
    assert_eq!(t.select(k, |b| b != 2), Selection::Busy);
    // Backend 0 finishes: its timestamp is now the newest → backend 2 first.
    t.on_close(k, 0, 60);
    assert_eq!(t.select(k, |_| true), Selection::Hit(2));
    assert_eq!(
        t.snapshot().get(&k).map(|c| c.as_slice().to_vec()),
        Some(vec![2, 0])
    );
}

#[test]
fn busy_counts_nest() {
    let mut t = SessionTable::new(10, 1000);
    let k = key(2);
    t.on_open(k, 1, 0);
    t.on_open(k, 1, 1);
    t.on_close(k, 1, 2);
    assert_eq!(
        t.select(k, |_| true),
        Selection::Busy,
        "one connection left"
    );
    t.on_close(k, 1, 3);
    assert_eq!(t.select(k, |_| true), Selection::Hit(1));
}

#[test]
fn sweep_removes_old_idle_rows_only() {
    let mut t = SessionTable::new(10, 100);
    let (a, b) = (key(1), key(2));
    t.on_open(a, 0, 0);
    t.on_close(a, 0, 10);
    t.on_open(a, 1, 0);
    t.on_close(a, 1, 150);
    t.on_open(b, 0, 5); // busy: kept however old
    assert_eq!(t.sweep(200), 1, "a/0 (ts 10) is older than 200 - 100");
    assert_eq!(t.rows(a).len(), 1);
    assert_eq!(t.rows(b).len(), 1);
    assert_eq!(t.sweep(300), 1, "a/1 now too");
    assert!(t.rows(a).is_empty());
    assert_eq!(t.len(), 1);
    assert_eq!(t.stats().expired, 2);
}

#[test]
fn bounded_keys_evict_the_oldest() {
    let mut t = SessionTable::new(3, 1_000_000);
    for n in 0..3u8 {
        t.on_open(key(n), 0, u64::from(n) * 10);
        t.on_close(key(n), 0, u64::from(n) * 10);
    }
    t.on_open(key(9), 0, 100);
    assert_eq!(t.len(), 3);
    assert!(t.rows(key(0)).is_empty(), "the oldest key went");
    assert_eq!(t.stats().evicted, 1);
}

#[test]
fn rows_per_key_are_bounded() {
    let mut t = SessionTable::new(3, 1_000_000);
    let k = key(1);
    for b in 0..MAX_ROWS as u16 {
        t.on_open(k, b, u64::from(b));
        t.on_close(k, b, u64::from(b));
    }
    t.on_open(k, 99, 100);
    assert_eq!(t.rows(k).len(), MAX_ROWS);
    assert!(
        t.rows(k).iter().all(|r| r.backend != 0),
        "oldest idle replaced"
    );
    assert_eq!(t.stats().replaced, 1);
}

#[derive(Debug, Clone)]
enum Op {
    Open(u8, u16),
    Close(u8, u16),
    Forget(u8, u16),
    Sweep,
}

proptest! {
    /// Random operations keep the invariants: bounded keys and rows, no
    /// duplicate backend per key, the eviction index in step with the rows,
    /// and `select` always returns an idle eligible row of minimal timestamp.
    #[test]
    fn invariants(ops in proptest::collection::vec(prop_oneof![
        (0u8..12, 0u16..6).prop_map(|(k, b)| Op::Open(k, b)),
        (0u8..12, 0u16..6).prop_map(|(k, b)| Op::Close(k, b)),
        (0u8..12, 0u16..6).prop_map(|(k, b)| Op::Forget(k, b)),
        Just(Op::Sweep),
    ], 1..200)) {
        let mut t = SessionTable::new(8, 50);
        for (now, op) in ops.into_iter().enumerate() {
            let now = now as u64;
            match op {
                Op::Open(k, b) => t.on_open(key(k), b, now),
                Op::Close(k, b) => t.on_close(key(k), b, now),
                Op::Forget(k, b) => t.forget(key(k), b),
                Op::Sweep => { t.sweep(now); }
            }
            prop_assert!(t.len() <= 8);
            let mut n = 0;
            for (k, rows) in &t.rows {
                prop_assert!(!rows.is_empty() && rows.len() <= MAX_ROWS);
                let mut bs: Vec<u16> = rows.iter().map(|r| r.backend).collect();
                bs.sort_unstable();
                bs.dedup();
                prop_assert_eq!(bs.len(), rows.len());
                for r in rows {
                    prop_assert!(t.order.contains(&(r.ts, *k, r.backend)));
                }
                n += rows.len();
                let even = |b: u16| b % 2 == 0;
                match t.select(*k, even) {
                    Selection::Hit(b) => {
                        let r = rows.iter().find(|r| r.backend == b).unwrap();
                        prop_assert_eq!(r.state, RowState::Idle);
                        prop_assert!(rows.iter().filter(|x| x.state == RowState::Idle && even(x.backend)).all(|x| x.ts >= r.ts));
                    }
                    Selection::Busy => prop_assert!(rows.iter().all(|x| x.state != RowState::Idle || !even(x.backend))),
                    Selection::Miss => prop_assert!(false, "a present key is never a miss"),
                }
            }
            prop_assert_eq!(n, t.order.len());
        }
    }
}

#[test]
fn top_lists_the_newest_sessions_first() {
    let mut t = SessionTable::new(100, 1_000);
    for i in 0..10u64 {
        t.on_open(SessionKey(i), (i % 3) as u16, i * 10);
        t.on_close(SessionKey(i), (i % 3) as u16, i * 10);
    }
    // session 2 used again, most recently
    t.on_open(SessionKey(2), 0, 500);
    t.on_close(SessionKey(2), 0, 500);
    let top = t.top(3);
    let keys: Vec<u64> = top.iter().map(|(k, _)| k.0).collect();
    assert_eq!(keys, vec![2, 9, 8]);
    assert_eq!(top[0].1.len(), 2, "session 2 on backends 2 and 0");
    assert_eq!(t.top(100).len(), 10);
}
