use super::*;
use proptest::prelude::*;
use std::net::Ipv4Addr;

fn be(last: u8) -> Backend {
    Backend::new(SocketAddrV4::new(Ipv4Addr::new(10, 10, 2, last), 80))
}

fn counts(s: &Snapshot, picks: usize) -> Vec<usize> {
    let mut c = vec![0; s.backends.len()];
    let mut cur = s.cursor();
    for k in 0..picks {
        c[s.pick((k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15), &mut cur)
            .unwrap()] += 1;
    }
    c
}

#[test]
fn round_robin_cycles_and_skips_down_and_draining() {
    let mut b = vec![be(11), be(12), be(13), be(14)];
    b[1].state = BackendState::Down;
    b[3].state = BackendState::Draining;
    let s = Snapshot::build(1, Policy::RoundRobin, b, vec![], MAGLEV_M);
    let mut cur = s.cursor();
    let seq: Vec<usize> = (0..6).map(|_| s.pick(0, &mut cur).unwrap()).collect();
    assert_eq!(seq, vec![0, 2, 0, 2, 0, 2]);
}

#[test]
fn no_eligible_backend_is_none() {
    let mut b = vec![be(11)];
    b[0].state = BackendState::Down;
    for p in [
        Policy::RoundRobin,
        Policy::WeightedRoundRobin,
        Policy::LeastConnections,
        Policy::Maglev,
    ] {
        let s = Snapshot::build(1, p, b.clone(), vec![], 251);
        assert_eq!(s.pick(7, &mut s.cursor()), None, "{p:?}");
    }
}

#[test]
fn smooth_wrr_is_exact_and_interleaved() {
    let mut b = vec![be(11), be(12), be(13)];
    b[0].weight = 5;
    b[1].weight = 1;
    b[2].weight = 1;
    let s = Snapshot::build(1, Policy::WeightedRoundRobin, b, vec![], MAGLEV_M);
    let mut cur = s.cursor();
    let seq: Vec<usize> = (0..7).map(|_| s.pick(0, &mut cur).unwrap()).collect();
    // nginx's smooth WRR for {a:5, b:1, c:1}: a a b a c a a
    assert_eq!(seq, vec![0, 0, 1, 0, 2, 0, 0]);
    assert_eq!(counts(&s, 7000), vec![5000, 1000, 1000]);
}

#[test]
fn least_connections_uses_global_and_local_counts_and_weights() {
    let mut b = vec![be(11), be(12), be(13)];
    b[2].weight = 3;
    let s = Snapshot::build(1, Policy::LeastConnections, b, vec![10, 4, 9], MAGLEV_M);
    let mut cur = s.cursor();
    // loads per weight: 10, 4, 3 → backend 2
    assert_eq!(s.pick(0, &mut cur), Some(2));
    cur.local_conns[2] += 6; // 15/3 = 5 > 4
    assert_eq!(s.pick(0, &mut cur), Some(1));
}

#[test]
fn connection_limit_is_respected() {
    let mut b = vec![be(11), be(12)];
    b[0].max_conns = 2;
    let s = Snapshot::build(1, Policy::RoundRobin, b, vec![2, 0], MAGLEV_M);
    let mut cur = s.cursor();
    assert!(
        (0..4).all(|_| s.pick(0, &mut cur) == Some(1)),
        "full backend skipped"
    );
    let mut b = vec![be(11)];
    b[0].max_conns = 1;
    let s = Snapshot::build(1, Policy::Maglev, b, vec![1], 251);
    assert_eq!(s.pick(5, &mut s.cursor()), None, "every candidate full");
}

#[test]
fn maglev_table_is_full_and_balanced() {
    let b: Vec<Backend> = (11..21).map(be).collect();
    let s = Snapshot::build(1, Policy::Maglev, b, vec![], MAGLEV_M);
    let t = s.maglev_table();
    assert_eq!(t.len(), MAGLEV_M);
    let mut c = [0usize; 10];
    for &i in t {
        c[usize::from(i)] += 1;
    }
    let ideal = MAGLEV_M / 10;
    for n in c {
        assert!(n.abs_diff(ideal) < ideal / 50, "slot shares {c:?}");
    }
}

#[test]
fn maglev_weights_shape_the_table() {
    let mut b = vec![be(11), be(12)];
    b[0].weight = 3;
    let s = Snapshot::build(1, Policy::Maglev, b, vec![], MAGLEV_M);
    let heavy = s.maglev_table().iter().filter(|&&i| i == 0).count() as f64 / MAGLEV_M as f64;
    assert!((heavy - 0.75).abs() < 0.02, "weight 3:1 → {heavy}");
}

#[test]
fn maglev_removing_one_of_n_moves_about_one_nth() {
    let n = 8u8;
    let all: Vec<Backend> = (11..11 + n).map(be).collect();
    let s1 = Snapshot::build(1, Policy::Maglev, all.clone(), vec![], MAGLEV_M);
    let mut fewer = all.clone();
    fewer[3].state = BackendState::Down;
    let s2 = Snapshot::build(2, Policy::Maglev, fewer, vec![], MAGLEV_M);
    let clients = 20_000u32;
    let (mut moved, mut collateral) = (0u32, 0u32);
    let (mut c1, mut c2) = (s1.cursor(), s2.cursor());
    for i in 0..clients {
        let h = client_hash(Ipv4Addr::from(0x0a00_0000 + i));
        let (a, b) = (s1.pick(h, &mut c1).unwrap(), s2.pick(h, &mut c2).unwrap());
        if a != b {
            moved += 1;
            if a != 3 {
                collateral += 1;
            }
        }
    }
    let frac = f64::from(moved) / f64::from(clients);
    assert!((frac - 1.0 / f64::from(n)).abs() < 0.03, "moved {frac}");
    // Maglev promises minimal, not zero, disruption of the other backends.
    assert!(
        f64::from(collateral) / f64::from(clients) < 0.02,
        "collateral moves {collateral}"
    );
}

#[test]
fn maglev_is_deterministic_across_builds() {
    let b: Vec<Backend> = (11..15).map(be).collect();
    let s1 = Snapshot::build(1, Policy::Maglev, b.clone(), vec![], 1009);
    let s2 = Snapshot::build(9, Policy::Maglev, b, vec![], 1009);
    assert_eq!(
        s1.maglev_table(),
        s2.maglev_table(),
        "every lcore/control rebuild agrees"
    );
}

#[test]
fn maglev_flow_spreads_one_client_and_agrees_with_itself() {
    let b: Vec<Backend> = (11..15).map(be).collect();
    let s = Snapshot::build(1, Policy::MaglevFlow, b, vec![], MAGLEV_M);
    let vip = SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 1), 80);
    let client = |p: u16| SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 7), p);
    let mut cur = s.cursor();
    let mut seen = [0u32; 4];
    for p in 30_000..34_000u16 {
        let h = s.key_hash(client(p), vip);
        assert_eq!(h, flow_hash(client(p), vip));
        seen[s.pick(h, &mut cur).unwrap()] += 1;
    }
    // One client's connections reach every backend, about evenly.
    for n in seen {
        assert!((800..1200).contains(&n), "{seen:?}");
    }
    // Other policies need no hash.
    let rr = Snapshot::build(1, Policy::RoundRobin, vec![be(11)], vec![], MAGLEV_M);
    assert_eq!(rr.key_hash(client(1), vip), 0);
    let m = Snapshot::build(1, Policy::Maglev, vec![be(11)], vec![], MAGLEV_M);
    assert_eq!(m.key_hash(client(1), vip), client_hash(*client(9).ip()));
}

proptest! {
    /// Two nodes whose backend slots are numbered differently (a backend
    /// added live on one, from the file on the other; removed slots in
    /// between) send every flow to the same backend address.
    #[test]
    fn maglev_picks_the_same_address_whatever_the_slot_order(
        n in 2usize..8,
        rot in 0usize..8,
        down_extra in any::<bool>(),
        hashes in proptest::collection::vec(any::<u64>(), 64),
    ) {
        let a: Vec<Backend> = (0..n).map(|i| be(11 + i as u8)).collect();
        let mut b = a.clone();
        b.rotate_left(rot % n);
        if down_extra {
            // A removed slot (published Down) on node B only.
            let mut gone = be(99);
            gone.state = BackendState::Down;
            b.insert(0, gone);
        }
        for policy in [Policy::Maglev, Policy::MaglevFlow] {
            let sa = Snapshot::build(1, policy, a.clone(), vec![], 1009);
            let sb = Snapshot::build(7, policy, b.clone(), vec![], 1009);
            let (mut ca, mut cb) = (sa.cursor(), sb.cursor());
            for h in &hashes {
                let x = sa.backends[sa.pick(*h, &mut ca).unwrap()].addr;
                let y = sb.backends[sb.pick(*h, &mut cb).unwrap()].addr;
                prop_assert_eq!(x, y);
            }
        }
    }

    #[test]
    fn wrr_gives_each_backend_its_weight(ws in proptest::collection::vec(1u32..20, 1..8)) {
        let b: Vec<Backend> = ws.iter().enumerate().map(|(i, w)| Backend { weight: *w, ..be(i as u8 + 1) }).collect();
        let s = Snapshot::build(1, Policy::WeightedRoundRobin, b, vec![], MAGLEV_M);
        let g = ws.iter().fold(0, |g, w| gcd(g, *w));
        let period: u32 = ws.iter().map(|w| w / g).sum();
        let c = counts(&s, period as usize);
        for (i, w) in ws.iter().enumerate() {
            prop_assert_eq!(c[i] as u32, w / g);
        }
    }

    #[test]
    fn pick_always_returns_an_eligible_backend(states in proptest::collection::vec(0u8..3, 1..10), h in any::<u64>(), p in 0u8..4) {
        let b: Vec<Backend> = states.iter().enumerate().map(|(i, s)| Backend {
            state: [BackendState::Up, BackendState::Down, BackendState::Draining][usize::from(*s)],
            ..be(i as u8 + 1)
        }).collect();
        let policy = [Policy::RoundRobin, Policy::WeightedRoundRobin, Policy::LeastConnections, Policy::Maglev][usize::from(p)];
        let s = Snapshot::build(1, policy, b.clone(), vec![], 251);
        match s.pick(h, &mut s.cursor()) {
            Some(i) => prop_assert_eq!(b[i].state, BackendState::Up),
            None => prop_assert!(b.iter().all(|x| x.state != BackendState::Up)),
        }
    }
}

#[test]
fn pick_excluding_skips_tried_backends_for_every_policy() {
    for p in [
        Policy::RoundRobin,
        Policy::WeightedRoundRobin,
        Policy::LeastConnections,
        Policy::Maglev,
    ] {
        let mut b = vec![be(11), be(12), be(13)];
        b[2].state = BackendState::Down;
        let s = Snapshot::build(1, p, b, vec![], 251);
        let mut cur = s.cursor();
        for h in 0..50u64 {
            let first = s.pick(h, &mut cur.clone()).unwrap();
            let other = s.pick_excluding(h, &mut cur, 1 << first).unwrap();
            assert_ne!(other, first, "{p:?}");
            assert_ne!(other, 2, "{p:?}: a down backend is never a retry");
            // Both eligible ones tried: nothing left.
            assert_eq!(s.pick_excluding(h, &mut cur, 0b11), None, "{p:?}");
        }
    }
}

proptest! {
    #[test]
    fn pick_excluding_never_returns_a_tried_or_ineligible_backend(
        n in 1usize..10, down in 0u64..1024, tried in 0u64..1024, h in any::<u64>(),
    ) {
        let mut b: Vec<Backend> = (0..n).map(|i| be(10 + i as u8)).collect();
        for (i, x) in b.iter_mut().enumerate() {
            if down & (1 << i) != 0 {
                x.state = BackendState::Down;
            }
        }
        let s = Snapshot::build(1, Policy::RoundRobin, b, vec![], 251);
        let mut cur = s.cursor();
        let untried_eligible = (0..n).any(|i| down & (1 << i) == 0 && tried & (1 << i) == 0);
        match s.pick_excluding(h, &mut cur, tried) {
            Some(i) => {
                prop_assert!(tried & (1 << i) == 0);
                prop_assert!(down & (1 << i) == 0);
            }
            None => prop_assert!(!untried_eligible),
        }
    }
}

#[test]
fn key_hash_ip_is_key_hash_for_ipv4_and_family_aware_for_ipv6() {
    let b = vec![be(1), be(2), be(3)];
    let c4: SocketAddrV4 = "192.0.2.7:40000".parse().unwrap();
    let v4: SocketAddrV4 = "10.0.0.1:80".parse().unwrap();
    let c6: std::net::SocketAddr = "[2001:db8::7]:40000".parse().unwrap();
    let v6: std::net::SocketAddr = "[2001:db8:1::1]:80".parse().unwrap();
    for p in [Policy::Maglev, Policy::MaglevFlow, Policy::RoundRobin] {
        let s = Snapshot::build(1, p, b.clone(), vec![], MAGLEV_M);
        assert_eq!(s.key_hash_ip(c4.into(), v4.into()), s.key_hash(c4, v4));
        let h = s.key_hash_ip(c6, v6);
        assert_eq!(h, s.key_hash_ip(c6, v6), "stable");
        let other: std::net::SocketAddr = "[2001:db8::8]:40000".parse().unwrap();
        if p != Policy::RoundRobin {
            assert_ne!(
                h,
                s.key_hash_ip(other, v6),
                "{p:?}: the client's address counts"
            );
        }
        let port: std::net::SocketAddr = "[2001:db8::7]:40001".parse().unwrap();
        assert_eq!(
            h == s.key_hash_ip(port, v6),
            p != Policy::MaglevFlow,
            "{p:?}: the port counts for maglev-flow only"
        );
    }
}
