//! Hash flooding of the flow table (issue 12, item 7): keys that pile up on
//! one probe chain under the old unkeyed hash spread out under the keyed
//! one; the probe bound holds through inserts and backward-shift removals
//! (a property test against a map model); an insert past the bound fails
//! cleanly and is counted.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use proptest::prelude::*;
use qsplice_splice::flow::{FlowKey, MAX_PROBE};
use qsplice_splice::{Dir, FlowTable, InsertError, SpliceParams};
use siphasher::sip::SipHasher13;

/// The hash before issue 12 (unkeyed multiplicative mix, a fixed seed per
/// lcore), kept to build keys that attack it.
fn old_key_hash(seed: u64, k: &(SocketAddrV4, SocketAddrV4)) -> u64 {
    let a = u64::from(u32::from(*k.0.ip())) << 16 | u64::from(k.0.port());
    let b = u64::from(u32::from(*k.1.ip())) << 16 | u64::from(k.1.port());
    let mut x = (a ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.rotate_left(29);
    x ^= x >> 32;
    x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
    x ^ (x >> 29)
}

/// Lcore 0's seed as `src/lb.rs` set it (`0x9e37_79b9_7f4a_7c15 * (i + 1)`).
const OLD_SEED: u64 = 0x9e37_79b9_7f4a_7c15;
/// The default `lb.max_flows` (per lcore).
const DEFAULT_MAX_FLOWS: usize = 65_536;

fn vip() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 10, 1, 1), 443)
}

fn server() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 10, 2, 11), 80)
}

fn local(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(10, 10, 2, 1 + (i / 60_000) as u8),
        1024 + (i % 60_000) as u16,
    )
}

fn params(client: SocketAddrV4, local: SocketAddrV4) -> SpliceParams {
    SpliceParams {
        client,
        vip: vip(),
        local,
        server: server(),
        c2s_seq_delta: 0,
        s2c_seq_delta: 0,
        c2s_ts_delta: 0,
        s2c_ts_delta: 0,
        client_ws: 7,
        vip_ws: 7,
        local_ws: 7,
        server_ws: 7,
    }
}

/// Linear probing with the old hash, as the old table placed keys: the
/// largest distance of a key from its home slot.
fn old_max_displacement(keys: &[(SocketAddrV4, SocketAddrV4)], slots: usize) -> usize {
    let mask = slots - 1;
    let mut used = vec![false; slots];
    let mut worst = 0;
    for k in keys {
        let mut i = old_key_hash(OLD_SEED, k) as usize & mask;
        let mut d = 0;
        while used[i] {
            i = (i + 1) & mask;
            d += 1;
        }
        used[i] = true;
        worst = worst.max(d);
    }
    worst
}

/// `n` client endpoints (an attacker's addresses in 203.0.113.0/24 and up,
/// any port) whose old-hash home slots, in a table of the default size, all
/// fall in the 256 slots from `target`.
fn adversarial_clients(n: usize, slots: usize, target: usize) -> Vec<SocketAddrV4> {
    let mask = slots - 1;
    let mut out = Vec::with_capacity(n);
    'search: for ip in 0xcb00_7100u32.. {
        for port in 1024..=u16::MAX {
            let c = SocketAddrV4::new(Ipv4Addr::from(ip), port);
            let home = old_key_hash(OLD_SEED, &(c, vip())) as usize & mask;
            if home.wrapping_sub(target) & mask < 256 {
                out.push(c);
                if out.len() == n {
                    break 'search;
                }
            }
        }
    }
    out
}

#[test]
fn old_hash_collisions_do_not_chain_in_the_keyed_table() {
    const N: usize = 4096;
    let t = FlowTable::new(DEFAULT_MAX_FLOWS);
    let slots = t.slots();
    assert_eq!(slots, 1 << 18);
    let clients = adversarial_clients(N, slots, 12_345);
    assert_eq!(clients.len(), N);
    let keys: Vec<_> = clients.iter().map(|c| (*c, vip())).collect();
    // Against the old table: one chain thousands of slots long, which every
    // segment of these clients walked.
    let old = old_max_displacement(&keys, slots);
    assert!(old >= N - 256, "old hash: longest probe {old}");

    // The keyed table, empty but for them (client and server keys).
    let mut t = t;
    for (i, c) in clients.iter().enumerate() {
        t.insert(params(*c, local(i)), 0).expect("no overflow");
    }
    assert_eq!(t.probe_overflow(), 0);
    let d = t.max_displacement();
    assert!(d <= 8, "keyed hash: longest probe {d}");
    for (i, c) in clients.iter().enumerate() {
        assert!(t.lookup(*c, vip()).is_some());
        assert_eq!(t.lookup(server(), local(i)).unwrap().1, Dir::S2C);
    }

    // At a normal load: half the flows in use by ordinary clients, then the
    // attacker's.
    let mut t = FlowTable::new(DEFAULT_MAX_FLOWS);
    let background = DEFAULT_MAX_FLOWS / 2;
    for i in 0..background {
        let c = SocketAddrV4::new(
            Ipv4Addr::from(0x0a00_0000 | (i as u32 >> 12)),
            10_000 + (i & 0xfff) as u16,
        );
        t.insert(params(c, local(N + i)), 0).unwrap();
    }
    for (i, c) in clients.iter().enumerate() {
        t.insert(params(*c, local(i)), 0).expect("no overflow");
    }
    assert_eq!(t.len(), background + N);
    assert_eq!(t.probe_overflow(), 0);
    let d = t.max_displacement();
    assert!(d < MAX_PROBE, "longest probe {d}");
}

fn siphash13(key: [u8; 16], s: SocketAddrV4, d: SocketAddrV4) -> u64 {
    let mut msg = [0u8; 12];
    msg[..6].copy_from_slice(
        &(u64::from(u32::from(*s.ip())) << 16 | u64::from(s.port())).to_le_bytes()[..6],
    );
    msg[6..].copy_from_slice(
        &(u64::from(u32::from(*d.ip())) << 16 | u64::from(d.port())).to_le_bytes()[..6],
    );
    SipHasher13::new_with_keys(
        u64::from_le_bytes(key[..8].try_into().unwrap()),
        u64::from_le_bytes(key[8..].try_into().unwrap()),
    )
    .hash(&msg)
}

#[test]
fn the_hash_is_keyed_and_random_per_table() {
    let key: [u8; 16] = core::array::from_fn(|i| i as u8);
    let (s, d) = (
        SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 7), 40_000),
        vip(),
    );
    let want = siphash13(key, s, d);
    assert_eq!(FlowKey::from_bytes(key).hash(s, d), want);
    let t = FlowTable::with_key(64, FlowKey::from_bytes(key));
    assert_eq!(t.home(s, d), want as usize & (t.slots() - 1));

    // Two tables get two random keys.
    assert_ne!(FlowKey::random(), FlowKey::random());
    let (a, b) = (FlowTable::new(1024), FlowTable::new(1024));
    let homes = |t: &FlowTable| -> Vec<usize> {
        (0..64)
            .map(|p| t.home(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 7), p), vip()))
            .collect()
    };
    assert_ne!(homes(&a), homes(&b));
}

proptest! {
    /// The hash is SipHash-1-3 of the documented 12-byte message.
    #[test]
    fn the_hash_is_siphash_1_3(
        key in any::<[u8; 16]>(),
        (a, p, b, q) in (any::<u32>(), any::<u16>(), any::<u32>(), any::<u16>()),
    ) {
        let (s, d) = (
            SocketAddrV4::new(Ipv4Addr::from(a), p),
            SocketAddrV4::new(Ipv4Addr::from(b), q),
        );
        prop_assert_eq!(FlowKey::from_bytes(key).hash(s, d), siphash13(key, s, d));
    }
}

/// Client endpoints whose home is exactly `slot` under `t`'s key.
fn clients_at(t: &FlowTable, slot: usize, n: usize) -> Vec<SocketAddrV4> {
    (1..=u16::MAX)
        .map(|p| SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), p))
        .filter(|c| t.home(*c, vip()) == slot)
        .take(n)
        .collect()
}

/// Local endpoints whose server key's home is at least `MAX_PROBE` slots
/// away (both ways) from every slot in `avoid`.
fn locals_away_from(t: &FlowTable, avoid: &[usize], n: usize) -> Vec<SocketAddrV4> {
    let mask = t.slots() - 1;
    (0..60_000)
        .map(local)
        .filter(|l| {
            let h = t.home(server(), *l);
            avoid.iter().all(|&a| {
                h.wrapping_sub(a) & mask >= MAX_PROBE && a.wrapping_sub(h) & mask >= MAX_PROBE
            })
        })
        .take(n)
        .collect()
}

#[test]
fn an_insert_past_the_probe_bound_fails_cleanly_and_is_counted() {
    let mut t = FlowTable::with_key(256, FlowKey::from_bytes([7; 16]));
    assert!(t.slots() >= 4 * MAX_PROBE);
    let (a, b) = (100, 600);
    let clients = clients_at(&t, a, MAX_PROBE + 3);
    let locals = locals_away_from(&t, &[a, b], 2 * MAX_PROBE + 10);
    assert_eq!(clients.len(), MAX_PROBE + 3);

    // MAX_PROBE client keys fill the window from slot `a`...
    let mut ids = vec![];
    for (c, l) in clients.iter().zip(&locals).take(MAX_PROBE) {
        ids.push(t.insert(params(*c, *l), 0).unwrap());
    }
    assert_eq!(t.max_displacement(), MAX_PROBE - 1);
    assert_eq!(t.probe_overflow(), 0);
    // ...and the next ones are refused, leaving no trace.
    for (k, c) in clients[MAX_PROBE..].iter().enumerate() {
        let l = locals[MAX_PROBE + k];
        assert_eq!(t.insert(params(*c, l), 0), Err(InsertError::Full));
        assert_eq!(t.probe_overflow(), k as u64 + 1);
        assert_eq!(t.lookup(*c, vip()), None);
        assert_eq!(t.lookup(server(), l), None);
    }
    assert_eq!(t.len(), MAX_PROBE);
    // A lookup for an absent key homed there reads MAX_PROBE slots and stops.
    assert_eq!(t.lookup(clients[MAX_PROBE], vip()), None);
    // An existing key is still reported as such, not as an overflow.
    assert_eq!(
        t.insert(params(clients[0], locals[60]), 0),
        Err(InsertError::Exists)
    );
    assert_eq!(t.probe_overflow(), 3);

    // A server key that overflows only because its flow's client key took
    // the last free slot of its window: the client key is undone. Fill the
    // window at `b` but for its last slot with server keys...
    let mask = t.slots() - 1;
    let at_b: Vec<_> = (0..60_000)
        .map(local)
        .filter(|l| t.home(server(), *l) == b)
        .take(MAX_PROBE)
        .collect();
    assert_eq!(at_b.len(), MAX_PROBE);
    let far = |h: usize, x: usize, before: usize| {
        h.wrapping_sub(x) & mask >= MAX_PROBE && x.wrapping_sub(h) & mask >= before
    };
    let others: Vec<_> = (1..=u16::MAX)
        .map(|p| SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 1), p))
        .filter(|c| {
            let h = t.home(*c, vip());
            far(h, a, MAX_PROBE) && far(h, b, MAX_PROBE)
        })
        .take(MAX_PROBE - 1)
        .collect();
    for (c, l) in others.iter().zip(&at_b) {
        t.insert(params(*c, *l), 0).unwrap();
    }
    assert_eq!(t.len(), 2 * MAX_PROBE - 1);
    // ...then a flow whose client key is homed at `b` too: both keys see
    // the last slot free; the client key takes it, the server key has none.
    let c = clients_at(&t, b, 1)[0];
    let l = at_b[MAX_PROBE - 1];
    assert_eq!(t.insert(params(c, l), 0), Err(InsertError::Full));
    assert_eq!(t.probe_overflow(), 4);
    assert_eq!(t.lookup(c, vip()), None, "client key undone");
    assert_eq!(t.lookup(server(), l), None);
    assert_eq!(t.len(), 2 * MAX_PROBE - 1);
    // The slot is free again: the same client with a server key elsewhere.
    let id = t.insert(params(c, locals[70]), 0).unwrap();
    assert_eq!(t.lookup(c, vip()), Some((id, Dir::C2S)));
    assert_eq!(t.max_displacement(), MAX_PROBE - 1);

    // Room again once a flow of the full window leaves.
    t.remove(ids[5]).unwrap();
    let c = clients[MAX_PROBE];
    let id = t.insert(params(c, locals[MAX_PROBE]), 0).unwrap();
    assert_eq!(t.lookup(c, vip()), Some((id, Dir::C2S)));
    for (k, c) in clients.iter().take(MAX_PROBE).enumerate() {
        if k != 5 {
            assert_eq!(t.lookup(*c, vip()), Some((ids[k], Dir::C2S)));
        }
    }
    assert!(t.max_displacement() < MAX_PROBE);
}

/// Removal shifts a key back from the far end of a window: key `y` is homed
/// at `h` but stored `MAX_PROBE - 1` slots past it, behind keys each homed at
/// its own slot; removing the key at `h` must move `y` into `h` (a scan that
/// stopped one slot short would leave `y` unreachable).
#[test]
fn removal_shifts_back_across_a_whole_window() {
    let mut t = FlowTable::with_key(256, FlowKey::from_bytes([9; 16]));
    let h = 300;
    let at = |slot: usize, skip: usize| clients_at(&t, slot, skip + 1)[skip];
    let x = at(h, 0);
    let fillers: Vec<_> = (1..MAX_PROBE - 1).map(|k| at(h + k, 0)).collect();
    let y = at(h, 1);
    let locals = locals_away_from(&t, &[h], MAX_PROBE + 1);
    let idx = t.insert(params(x, locals[0]), 0).unwrap();
    for (c, l) in fillers.iter().zip(&locals[1..]) {
        t.insert(params(*c, *l), 0).unwrap();
    }
    let idy = t.insert(params(y, locals[MAX_PROBE]), 0).unwrap();
    assert_eq!(t.max_displacement(), MAX_PROBE - 1);
    t.remove(idx).unwrap();
    assert_eq!(t.lookup(y, vip()), Some((idy, Dir::C2S)));
    assert!(t.max_displacement() < MAX_PROBE - 1, "y moved home");
    for c in &fillers {
        assert!(t.lookup(*c, vip()).is_some());
    }
}

#[derive(Debug, Clone)]
enum Op {
    Insert(usize, usize),
    Remove(usize),
    Lookup(usize),
}

const FLOWS: usize = 64;
const UNIVERSE: usize = 96;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Inserts, removals and lookups against a map, with keys crowded into
    /// a few home slots so windows fill, overflow and are shifted back into
    /// by removals. After every step: every live flow is found from both
    /// sides, absent ones are not, no key is `MAX_PROBE` or more slots from
    /// its home, and a refused insert had a window that could really be full.
    #[test]
    fn bounded_probing_behaves_like_a_map(
        key in any::<[u8; 16]>(),
        spread in 1usize..48,
        ops in proptest::collection::vec(prop_oneof![
            4 => (0..UNIVERSE, 0..UNIVERSE).prop_map(|(c, l)| Op::Insert(c, l)),
            2 => (0..UNIVERSE).prop_map(Op::Remove),
            1 => (0..UNIVERSE).prop_map(Op::Lookup),
        ], 1..400),
    ) {
        let mut t = FlowTable::with_key(FLOWS, FlowKey::from_bytes(key));
        let mask = t.slots() - 1;
        // Client and local endpoints whose keys are homed in `spread`
        // slots from slot 0: a crowd much larger than a window.
        let crowd = |mk: &dyn Fn(u16) -> (SocketAddrV4, SocketAddrV4)| -> Vec<SocketAddrV4> {
            (1..=u16::MAX)
                .filter_map(|p| {
                    let (s, d) = mk(p);
                    (t.home(s, d) < spread).then_some(if s == server() { d } else { s })
                })
                .take(UNIVERSE)
                .collect()
        };
        let clients = crowd(&|p| (SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), p), vip()));
        let locals = crowd(&|p| (server(), SocketAddrV4::new(Ipv4Addr::new(10, 10, 2, 1), p)));
        prop_assert_eq!((clients.len(), locals.len()), (UNIVERSE, UNIVERSE));

        // Model: client index -> (local index, id).
        let mut m: HashMap<usize, (usize, u32)> = HashMap::new();
        let mut overflows = 0u64;
        for op in ops {
            match op {
                Op::Insert(c, l) => {
                    let clash = m.contains_key(&c) || m.values().any(|(ml, _)| *ml == l);
                    let p = params(clients[c], locals[l]);
                    match t.insert(p, 0) {
                        Ok(id) => {
                            prop_assert!(!clash && m.len() < FLOWS);
                            m.insert(c, (l, id));
                        }
                        Err(InsertError::Exists) => prop_assert!(clash),
                        Err(InsertError::Full) if m.len() == FLOWS => prop_assert!(!clash),
                        Err(InsertError::Full) => {
                            prop_assert!(!clash);
                            overflows += 1;
                            // A full window of MAX_PROBE slots from key k's home
                            // holds keys homed within MAX_PROBE - 1 slots before
                            // it or inside it: at least MAX_PROBE - 1 of them
                            // live (the client key may be the last one, placed
                            // then undone).
                            let near = |h: usize| {
                                m.iter()
                                    .flat_map(|(mc, (ml, _))| {
                                        [t.home(clients[*mc], vip()), t.home(server(), locals[*ml])]
                                    })
                                    .filter(|&o| {
                                        o.wrapping_sub(h) & mask < MAX_PROBE
                                            || h.wrapping_sub(o) & mask < MAX_PROBE
                                    })
                                    .count()
                            };
                            let (hc, hs) = (t.home(p.client, p.vip), t.home(p.server, p.local));
                            prop_assert!(
                                near(hc) >= MAX_PROBE || near(hs) >= MAX_PROBE - 1,
                                "refused with room: {} {}", near(hc), near(hs)
                            );
                        }
                    }
                }
                Op::Remove(c) => {
                    if let Some((_, id)) = m.remove(&c) {
                        prop_assert!(t.remove(id).is_some());
                        prop_assert!(t.remove(id).is_none());
                    }
                }
                Op::Lookup(c) => {
                    let got = t.lookup(clients[c], vip()).map(|(id, _)| id);
                    prop_assert_eq!(got, m.get(&c).map(|(_, id)| *id));
                }
            }
            prop_assert_eq!(t.probe_overflow(), overflows);
            prop_assert_eq!(t.len(), m.len());
            prop_assert!(t.max_displacement() < MAX_PROBE);
            for (c, client) in clients.iter().enumerate() {
                let want = m.get(&c).map(|(_, id)| (*id, Dir::C2S));
                prop_assert_eq!(t.lookup(*client, vip()), want);
            }
            for (c, (l, id)) in &m {
                prop_assert_eq!(t.lookup(server(), locals[*l]), Some((*id, Dir::S2C)));
                prop_assert_eq!(t.get(*id).map(|f| f.params.client), Some(clients[*c]));
            }
        }
    }
}
