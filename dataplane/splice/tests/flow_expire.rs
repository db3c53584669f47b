//! The flow table's expiry sweep against a model: whatever the mix of
//! inserts, removals, clock steps and sweep budgets, a sweep examines at
//! most its budget of slots, never removes a live flow, and once the
//! sweeps have covered every slot since a flow expired, that flow is gone
//! (the occupancy bitmap that lets the sweep skip empty slots must agree
//! with the table).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use proptest::prelude::*;
use qsplice_splice::flow::FlowTimers;
use qsplice_splice::{FlowTable, SpliceParams};

fn params(i: u16) -> SpliceParams {
    SpliceParams {
        client: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 1000 + i),
        vip: SocketAddrV4::new(Ipv4Addr::new(10, 10, 1, 1), 80),
        local: SocketAddrV4::new(Ipv4Addr::new(10, 10, 2, 1), 20000 + i),
        server: SocketAddrV4::new(Ipv4Addr::new(10, 10, 2, 11), 80),
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

#[derive(Clone, Debug)]
enum Op {
    Insert(u16),
    Remove(u8),
    Advance(u16),
    Sweep(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u16..400).prop_map(Op::Insert),
        1 => any::<u8>().prop_map(Op::Remove),
        2 => (0u16..300).prop_map(Op::Advance),
        3 => (1u16..200).prop_map(Op::Sweep),
    ]
}

proptest! {
    #[test]
    fn sweep_matches_the_model(cap in 1usize..300, ops in proptest::collection::vec(op(), 1..200)) {
        let timers = FlowTimers { idle: 100, linger: 10 };
        let mut t = FlowTable::new(cap);
        // id -> (port, last_seen)
        let mut model: BTreeMap<u32, (u16, u64)> = BTreeMap::new();
        let mut now = 1_000u64;
        for o in ops {
            match o {
                Op::Insert(p) => {
                    if let Ok(id) = t.insert(params(p), now) {
                        prop_assert!(model.insert(id, (p, now)).is_none());
                    }
                }
                Op::Remove(k) => {
                    if let Some(&id) = model.keys().nth(usize::from(k) % model.len().max(1)) {
                        prop_assert!(t.remove(id).is_some());
                        model.remove(&id);
                    }
                }
                Op::Advance(ms) => now += u64::from(ms),
                Op::Sweep(budget) => {
                    let mut gone = Vec::new();
                    let n = t.expire(now, &timers, usize::from(budget), |id, _| gone.push(id));
                    prop_assert_eq!(n, gone.len());
                    prop_assert!(n <= usize::from(budget));
                    for id in gone {
                        let (_, seen) = model.remove(&id).expect("removed a flow the model lacks");
                        prop_assert!(now - seen >= timers.idle, "removed a live flow");
                    }
                }
            }
            prop_assert_eq!(t.len(), model.len());
        }
        // Sweeps covering every slot remove exactly the expired flows.
        let mut gone = Vec::new();
        t.expire(now, &timers, cap, |id, _| gone.push(id));
        t.expire(now, &timers, cap, |id, _| gone.push(id));
        for id in gone {
            model.remove(&id);
        }
        for (id, (_, seen)) in &model {
            prop_assert!(now - seen < timers.idle, "flow {} expired but kept", id);
            prop_assert!(t.get(*id).is_some());
        }
        prop_assert_eq!(t.len(), model.len());
    }
}
