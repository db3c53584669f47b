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

/// An offer of these keys (session IDs, looked up in order).
fn offer(keys: &[SessionKey]) -> identity::Offer {
    let mut o = identity::Offer::default();
    o.keys.extend(keys.iter().copied());
    o
}

#[test]
fn paper_selection_least_recently_used_candidate_not_busy() {
    let mut t = SessionTable::new(100, 1000);
    let k = key(1);
    let none = |_: SessionKey, _: u16| false;
    let all = |_: u16| true;
    assert_eq!(choose(&offer(&[k]), &t.snapshot(), none, all), Choice::Miss);
    // The session was created on backend 0 and resumed on backend 2.
    t.learn(k, 0, 10);
    t.finished(k, 0, 20);
    t.learn(k, 2, 30);
    t.finished(k, 2, 40);
    assert_eq!(t.rows(k).len(), 2);
    let hit = |b| Choice::Hit {
        backend: b,
        key: Some(k),
    };
    // The older timestamp first (backend 0, finished at 20).
    let snap = t.snapshot();
    assert_eq!(choose(&offer(&[k]), &snap, none, all), hit(0));
    // Backend 0 serving this session right now: backend 2.
    let busy0 = |_: SessionKey, b: u16| b == 0;
    assert_eq!(choose(&offer(&[k]), &snap, busy0, all), hit(2));
    // … and backend 2 cannot take a connection: the scheduler, counted as
    // busy with the session.
    assert_eq!(
        choose(&offer(&[k]), &snap, busy0, |b| b != 2),
        Choice::Busy { session: true }
    );
    // No candidate can take a connection, none busy.
    assert_eq!(
        choose(&offer(&[k]), &snap, none, |_| false),
        Choice::Busy { session: false }
    );
    // Backend 0 finishes: its timestamp is now the newest → backend 2 first.
    t.finished(k, 0, 60);
    assert_eq!(choose(&offer(&[k]), &t.snapshot(), none, all), hit(2));
    assert_eq!(
        t.snapshot().get(&k).map(|c| c.as_slice().to_vec()),
        Some(vec![2, 0])
    );
}

#[test]
fn keys_are_tried_in_offer_order_and_key_names_are_never_busy() {
    let mut t = SessionTable::new(100, 1000);
    let (ticket, name, other) = (key(1), key(2), key(3));
    t.learn(name, 1, 0); // backend 1's ticket key
    t.learn(other, 2, 0);
    let mut o = offer(&[ticket, name]);
    o.ticket = Some((ticket, Some(name)));
    let snap = t.snapshot();
    // The ticket itself is unknown: its key name places it (no session key).
    assert_eq!(
        choose(&o, &snap, |_, _| true, |_| true),
        Choice::Hit {
            backend: 1,
            key: None
        },
        "a key name is never busy"
    );
    // The ticket known on backend 1 and busy there: the key name must not
    // lead back to backend 1.
    t.learn(ticket, 1, 5);
    let snap = t.snapshot();
    assert_eq!(
        choose(&o, &snap, |k, b| k == ticket && b == 1, |_| true),
        Choice::Busy { session: true }
    );
    assert_eq!(
        choose(&o, &snap, |_, _| false, |_| true),
        Choice::Hit {
            backend: 1,
            key: Some(ticket)
        }
    );
    // Unrelated sessions are not consulted.
    assert_eq!(
        choose(&offer(&[key(9)]), &snap, |_, _| false, |_| true),
        Choice::Miss
    );
}

#[test]
fn sweep_removes_old_rows_unless_busy() {
    let mut t = SessionTable::new(10, 100);
    let (a, b) = (key(1), key(2));
    t.learn(a, 0, 0);
    t.finished(a, 0, 10);
    t.learn(a, 1, 0);
    t.finished(a, 1, 150);
    t.learn(b, 0, 5); // served right now: kept however old
    let busy = |k: SessionKey, _: u16| k == b;
    assert_eq!(t.sweep(200, busy), 1, "a/0 (ts 10) is older than 200 - 100");
    assert_eq!(t.rows(a).len(), 1);
    assert_eq!(t.rows(b).len(), 1);
    assert_eq!(t.sweep(300, busy), 1, "a/1 now too");
    assert!(t.rows(a).is_empty());
    assert_eq!(t.len(), 1);
    assert_eq!(t.stats().expired, 2);
    assert_eq!(t.sweep(300, |_, _| false), 1, "b once its connection ended");
    assert!(t.is_empty());
}

#[test]
fn bounded_keys_evict_the_oldest() {
    let mut t = SessionTable::new(3, 1_000_000);
    for n in 0..3u8 {
        t.learn(key(n), 0, u64::from(n) * 10);
    }
    t.learn(key(9), 0, 100);
    assert_eq!(t.len(), 3);
    assert!(t.rows(key(0)).is_empty(), "the oldest key went");
    assert!(!t.snapshot().contains_key(&key(0)));
    assert_eq!(t.stats().evicted, 1);
}

#[test]
fn rows_per_key_are_bounded() {
    let mut t = SessionTable::new(3, 1_000_000);
    let k = key(1);
    for b in 0..MAX_ROWS as u16 {
        t.learn(k, b, u64::from(b));
    }
    t.learn(k, 99, 100);
    assert_eq!(t.rows(k).len(), MAX_ROWS);
    assert!(t.rows(k).iter().all(|r| r.backend != 0), "oldest replaced");
    assert_eq!(t.stats().replaced, 1);
}

#[derive(Debug, Clone)]
enum Op {
    Learn(u8, u16),
    Finished(u8, u16),
    Forget(u8, u16),
    Sweep,
}

proptest! {
    /// Random operations keep the invariants: bounded keys and rows, no
    /// duplicate backend per key, the eviction index and the published
    /// candidates in step with the rows, and `choose` returns a candidate
    /// of minimal timestamp among those it may take.
    #[test]
    fn invariants(ops in proptest::collection::vec(prop_oneof![
        (0u8..12, 0u16..6).prop_map(|(k, b)| Op::Learn(k, b)),
        (0u8..12, 0u16..6).prop_map(|(k, b)| Op::Finished(k, b)),
        (0u8..12, 0u16..6).prop_map(|(k, b)| Op::Forget(k, b)),
        Just(Op::Sweep),
    ], 1..200)) {
        let mut t = SessionTable::new(8, 50);
        // backends 3 and 4 serve every session "now"
        let busy = |_: SessionKey, b: u16| b == 3 || b == 4;
        for (now, op) in ops.into_iter().enumerate() {
            let now = now as u64;
            match op {
                Op::Learn(k, b) => t.learn(key(k), b, now),
                Op::Finished(k, b) => t.finished(key(k), b, now),
                Op::Forget(k, b) => t.forget(key(k), b),
                Op::Sweep => { t.sweep(now, busy); }
            }
            prop_assert!(t.len() <= 8);
            let mut n = 0;
            let snap = t.snapshot();
            for (k, rows) in &t.rows {
                prop_assert!(!rows.is_empty() && rows.len() <= MAX_ROWS);
                let mut bs: Vec<u16> = rows.iter().map(|r| r.backend).collect();
                bs.sort_unstable();
                bs.dedup();
                prop_assert_eq!(bs.len(), rows.len());
                for r in rows {
                    prop_assert!(t.order.contains(&(r.ts, *k, r.backend)));
                }
                // the published candidates are the rows in LRU order
                let mut lru: Vec<Row> = rows.to_vec();
                lru.sort_by_key(|r| (r.ts, r.backend));
                let want: Vec<u16> = lru.iter().map(|r| r.backend).collect();
                prop_assert_eq!(t.cands.get(k).map(|c| c.to_vec()), Some(want));
                n += rows.len();
                let even = |b: u16| b % 2 == 0;
                let usable = |r: &&Row| !busy(*k, r.backend) && even(r.backend);
                match choose(&offer(&[*k]), &snap, busy, even) {
                    Choice::Hit { backend, key } => {
                        prop_assert_eq!(key, Some(*k));
                        let r = rows.iter().find(|r| r.backend == backend).unwrap();
                        prop_assert!(usable(&r));
                        prop_assert!(rows.iter().filter(usable).all(|x| (x.ts, x.backend) >= (r.ts, r.backend)));
                    }
                    Choice::Busy { session } => {
                        prop_assert_eq!(rows.iter().filter(usable).count(), 0);
                        prop_assert_eq!(session, rows.iter().any(|r| busy(*k, r.backend)));
                    }
                    Choice::Miss => prop_assert!(false, "a present key is never a miss"),
                }
            }
            prop_assert_eq!(n, t.order.len());
            prop_assert_eq!(t.cands.len(), t.rows.len());
        }
    }
}

#[test]
fn top_lists_the_newest_sessions_first() {
    let mut t = SessionTable::new(100, 1_000);
    for i in 0..10u64 {
        t.learn(SessionKey(i), (i % 3) as u16, i * 10);
    }
    // session 2 used again, most recently
    t.learn(SessionKey(2), 0, 500);
    t.finished(SessionKey(2), 0, 500);
    let top = t.top(3);
    let keys: Vec<u64> = top.iter().map(|(k, _)| k.0).collect();
    assert_eq!(keys, vec![2, 9, 8]);
    assert_eq!(top[0].1.len(), 2, "session 2 on backends 2 and 0");
    assert_eq!(t.top(100).len(), 10);
}

#[test]
fn busy_counts_enter_leave_per_triple() {
    let c = BusyCounts::new(1000);
    assert!(c.memory() >= 4 * 4096);
    let (k1, k2) = (key(1), key(2));
    c.enter(0, k1, 3);
    c.enter(0, k1, 3);
    assert_eq!(c.get(0, k1, 3), 2);
    c.leave(0, k1, 3);
    assert_eq!(c.get(0, k1, 3), 1);
    c.leave(0, k1, 3);
    c.leave(0, k1, 3); // an unmatched leave does not wrap
    assert_eq!(c.get(0, k1, 3), 0);
    // Other triples are (almost surely) elsewhere.
    c.enter(0, k1, 3);
    let others = [(1, k1, 3), (0, k2, 3), (0, k1, 4)];
    assert!(others.iter().all(|&(p, k, b)| c.get(p, k, b) == 0));
}

proptest! {
    /// Any interleaving of enters and leaves leaves each counter at its
    /// own balance (≥ what this triple alone would give, when shared).
    #[test]
    fn busy_counts_balance(ops in proptest::collection::vec((0u16..2, 0u8..20, 0u16..4, any::<bool>()), 0..300)) {
        let c = BusyCounts::new(16);
        let mut model: HashMap<(u16, u8, u16), u32> = HashMap::new();
        for (p, k, b, enter) in ops {
            let m = model.entry((p, k, b)).or_default();
            if enter {
                c.enter(p, key(k), b);
                *m += 1;
            } else if *m > 0 {
                c.leave(p, key(k), b);
                *m -= 1;
            }
        }
        for (&(p, k, b), &n) in &model {
            prop_assert!(c.get(p, key(k), b) >= n);
        }
        let total: u32 = model.values().sum();
        let seen: u32 = c.slots.iter().map(|s| s.load(Ordering::Relaxed)).sum();
        prop_assert_eq!(seen, total);
    }
}

/// Lcores look up and mark sessions busy while the control thread learns
/// and republishes: every lookup sees a whole snapshot (candidates from one
/// publication, LRU order), a learned session becomes visible, and the busy
/// counters return to zero when every connection has left.
#[test]
fn concurrent_learning_and_lookup() {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    type Snap = Candidates;
    let published: Arc<arc_swap::ArcSwap<Snap>> =
        Arc::new(arc_swap::ArcSwap::from_pointee(Snap::default()));
    let busy = Arc::new(BusyCounts::new(1024));
    let events = Arc::new(crossbeam::queue::ArrayQueue::<(SessionKey, u16, bool)>::new(4096));
    let stop = Arc::new(AtomicBool::new(false));
    let lcores: Vec<_> = (0..3u16)
        .map(|lc| {
            let (published, busy, events, stop) = (
                published.clone(),
                busy.clone(),
                events.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let mut hits = 0u64;
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let k = key((i % 50) as u8);
                    let snap = published.load();
                    let choice =
                        choose(&offer(&[k]), &snap, |k, b| busy.get(0, k, b) > 0, |_| true);
                    let b = match choice {
                        Choice::Hit { backend, .. } => {
                            hits += 1;
                            assert!(backend < 4);
                            backend
                        }
                        _ => ((i + u64::from(lc)) % 4) as u16,
                    };
                    busy.enter(0, k, b);
                    while events.push((k, b, true)).is_err() {
                        std::thread::yield_now();
                    }
                    busy.leave(0, k, b);
                    while events.push((k, b, false)).is_err() {
                        std::thread::yield_now();
                    }
                }
                hits
            })
        })
        .collect();
    let mut t = SessionTable::new(1000, 1_000_000);
    let start = std::time::Instant::now();
    let mut now = 0;
    while start.elapsed() < std::time::Duration::from_millis(300) {
        for _ in 0..4096 {
            let Some((k, b, open)) = events.pop() else {
                break;
            };
            now += 1;
            if open {
                t.learn(k, b, now);
            } else {
                t.finished(k, b, now);
            }
        }
        published.store(Arc::new(t.snapshot()));
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    // Keep draining while the lcores finish (they wait on a full queue).
    loop {
        let done = lcores.iter().all(|h| h.is_finished());
        while let Some((k, b, open)) = events.pop() {
            now += 1;
            if open {
                t.learn(k, b, now);
            } else {
                t.finished(k, b, now);
            }
        }
        if done {
            break;
        }
        std::thread::yield_now();
    }
    let hits: u64 = lcores.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(hits > 0, "published sessions were found");
    assert_eq!(t.len(), 50, "every session learned");
    assert!(busy.slots.iter().all(|s| s.load(Ordering::Relaxed) == 0));
    // nothing is served any more: everything ages out
    let rows: usize = (0..50).map(|k| t.rows(key(k)).len()).sum();
    assert_eq!(t.sweep(now + 2_000_000, |k, b| busy.get(0, k, b) > 0), rows);
    assert!(t.is_empty());
}

#[test]
fn memory_is_bounded_by_max_keys() {
    let mut t = SessionTable::new(1000, u64::MAX);
    for i in 0..20_000u64 {
        for b in 0..MAX_ROWS as u16 {
            t.learn(SessionKey(i), b, i);
        }
    }
    assert_eq!(t.len(), 1000);
    let per_key = t.memory() / 1000;
    assert!(per_key < 600, "{per_key} B per session");
    assert!(t.memory() > 0);
}

#[test]
fn new_limits_evict_the_least_recently_used_now_and_age_at_the_next_sweep() {
    let mut t = SessionTable::new(10, 1_000);
    for i in 0..8u64 {
        t.learn(SessionKey(i), 0, 100 + i);
    }
    assert_eq!(t.len(), 8);
    t.set_limits(5, 1_000);
    assert_eq!(t.len(), 5, "three least recently used evicted");
    assert_eq!(t.stats().evicted, 3);
    assert!(t.rows(SessionKey(0)).is_empty() && !t.rows(SessionKey(7)).is_empty());
    // A shorter lifetime applies at the next sweep.
    t.set_limits(5, 50);
    assert_eq!(t.sweep(160, |_, _| false), 5);
    assert!(t.is_empty());
}
