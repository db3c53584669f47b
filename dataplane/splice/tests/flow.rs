//! Flow table (against a HashMap model) and flow close tracking.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use proptest::prelude::*;
use qsplice_splice::flow::FlowKey;
use qsplice_splice::{
    Dir, FlowState, FlowTable, FlowTimers, InsertError, SpliceParams, Translated,
};
use qsplice_wire::TcpFlags;

fn params(client_port: u16, local_port: u16) -> SpliceParams {
    SpliceParams {
        client: SocketAddrV4::new(Ipv4Addr::new(10, 10, 1, 2), client_port),
        vip: SocketAddrV4::new(Ipv4Addr::new(10, 10, 1, 1), 80),
        local: SocketAddrV4::new(Ipv4Addr::new(10, 10, 2, 1), local_port),
        server: SocketAddrV4::new(Ipv4Addr::new(10, 10, 2, 11), 80),
        c2s_seq_delta: 0,
        s2c_seq_delta: 1000,
        c2s_ts_delta: 0,
        s2c_ts_delta: 0,
        client_ws: 7,
        vip_ws: 7,
        local_ws: 7,
        server_ws: 7,
    }
}

const T: FlowTimers = FlowTimers {
    idle: 1000,
    linger: 100,
};

fn seg(flags: TcpFlags, seq: u32, ack: u32, len: usize) -> Translated {
    Translated {
        flags,
        seq,
        ack,
        payload_len: len,
    }
}

#[test]
fn found_from_both_directions() {
    let mut t = FlowTable::new(4);
    let p = params(40000, 50000);
    let id = t.insert(p, 0).unwrap();
    assert_eq!(t.lookup(p.client, p.vip), Some((id, Dir::C2S)));
    assert_eq!(t.lookup(p.server, p.local), Some((id, Dir::S2C)));
    assert_eq!(t.lookup(p.vip, p.client), None, "keys are directional");
    assert_eq!(t.insert(p, 0), Err(InsertError::Exists));
    assert_eq!(t.get(id).unwrap().translation(Dir::S2C).dst, p.client);
    t.remove(id).unwrap();
    assert_eq!(t.lookup(p.client, p.vip), None);
    assert!(t.is_empty());
}

#[test]
fn degenerate_identical_keys_are_refused() {
    let mut t = FlowTable::new(2);
    let mut p = params(80, 80);
    p.server = p.client;
    p.local = p.vip;
    assert_eq!(t.insert(p, 0), Err(InsertError::Exists));
    assert!(t.is_empty());
}

#[test]
fn bounded_capacity() {
    let mut t = FlowTable::new(3);
    for i in 0..3 {
        t.insert(params(1000 + i, 2000 + i), 0).unwrap();
    }
    assert_eq!(t.insert(params(9, 9), 0), Err(InsertError::Full));
    let (id, _) = t
        .lookup(params(1001, 2001).client, params(1001, 2001).vip)
        .unwrap();
    t.remove(id);
    assert!(t.insert(params(9, 9), 0).is_ok(), "a freed slot is reused");
}

#[test]
fn orderly_close_lingers_then_expires() {
    let mut t = FlowTable::new(4);
    let id = t.insert(params(1, 2), 0).unwrap();
    let f = t.get_mut(id).unwrap();
    // Client FIN at seq 100 with 10 bytes → FIN ends at 111.
    f.on_segment(
        Dir::C2S,
        &seg(TcpFlags::FIN | TcpFlags::ACK, 100, 5000, 10),
        1,
        &T,
    );
    assert_eq!(f.state, FlowState::Closing);
    assert!(!f.both_fins(), "only the client's FIN");
    // Server ACKs 110 (not the FIN), then 111, with its own FIN at 5000.
    f.on_segment(Dir::S2C, &seg(TcpFlags::ACK, 5000, 110, 0), 2, &T);
    f.on_segment(
        Dir::S2C,
        &seg(TcpFlags::FIN | TcpFlags::ACK, 5000, 111, 0),
        3,
        &T,
    );
    assert_eq!(f.state, FlowState::Closing, "server FIN not acked yet");
    assert!(f.both_fins(), "both FINs sent: no more requests");
    // The client's ACK arrives translated into the server leg's space
    // (s2c_seq_delta = 1000): 4000 is the FIN's own number, 4001 covers it.
    f.on_segment(Dir::C2S, &seg(TcpFlags::ACK, 111, 4000, 0), 4, &T);
    assert_eq!(f.state, FlowState::Closing, "FIN itself not covered");
    f.on_segment(Dir::C2S, &seg(TcpFlags::ACK, 111, 4001, 0), 4, &T);
    assert_eq!(f.state, FlowState::Linger { until: 104 });
    assert_eq!(f.bytes, [10, 0]);
    assert_eq!(t.expire(50, &T, 4, |_, _| {}), 0, "still lingering");
    let mut gone = vec![];
    assert_eq!(t.expire(104, &T, 4, |id, _| gone.push(id)), 1);
    assert_eq!(gone, vec![id]);
    assert!(t.is_empty());
}

#[test]
fn rst_lingers_and_idle_flows_expire() {
    let mut t = FlowTable::new(4);
    let a = t.insert(params(1, 2), 0).unwrap();
    let b = t.insert(params(3, 4), 0).unwrap();
    t.get_mut(a)
        .unwrap()
        .on_segment(Dir::S2C, &seg(TcpFlags::RST, 1, 0, 0), 10, &T);
    assert_eq!(t.get(a).unwrap().state, FlowState::Linger { until: 110 });
    assert!(t.get(a).unwrap().both_fins(), "a RST ends it too");
    t.get_mut(b)
        .unwrap()
        .on_segment(Dir::C2S, &seg(TcpFlags::ACK, 1, 1, 5), 500, &T);
    assert_eq!(
        t.expire(1499, &T, 8, |_, _| {}),
        1,
        "RST flow gone, active one stays"
    );
    assert!(t.get(b).is_some());
    assert_eq!(t.expire(1500, &T, 8, |_, _| {}), 1, "idle timeout");
    assert!(t.is_empty());
}

#[test]
fn fin_across_sequence_wraparound() {
    let mut t = FlowTable::new(1);
    let id = t.insert(params(1, 2), 0).unwrap();
    let f = t.get_mut(id).unwrap();
    f.on_segment(
        Dir::C2S,
        &seg(TcpFlags::FIN | TcpFlags::ACK, 0xffff_fffa, 7, 5),
        1,
        &T,
    );
    // FIN ends at 0 (wrapped): an ACK of 0 covers it, an ACK of 0xffff_ffff does not.
    f.on_segment(
        Dir::S2C,
        &seg(TcpFlags::FIN | TcpFlags::ACK, 7, 0xffff_ffff, 0),
        2,
        &T,
    );
    // Server FIN ends at 8 in the client's space = 8 - 1000 in the server's.
    f.on_segment(
        Dir::C2S,
        &seg(TcpFlags::ACK, 0, 8u32.wrapping_sub(1000), 0),
        3,
        &T,
    );
    assert_eq!(f.state, FlowState::Closing);
    f.on_segment(Dir::S2C, &seg(TcpFlags::ACK, 8, 0, 0), 4, &T);
    assert!(matches!(f.state, FlowState::Linger { .. }));
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u16, u16),
    Remove(u16),
    Lookup(u16),
}

proptest! {
    #[test]
    fn behaves_like_a_map(ops in proptest::collection::vec(prop_oneof![
        (0u16..64, 0u16..64).prop_map(|(a, b)| Op::Insert(a, b)),
        (0u16..64).prop_map(Op::Remove),
        (0u16..64).prop_map(Op::Lookup),
    ], 1..300), key in any::<[u8; 16]>()) {
        let mut t = FlowTable::with_key(16, FlowKey::from_bytes(key));
        // model: client port -> (local port, id)
        let mut m: HashMap<u16, (u16, u32)> = HashMap::new();
        for op in ops {
            match op {
                Op::Insert(c, l) => {
                    let clash = m.contains_key(&c) || m.values().any(|(ml, _)| *ml == l);
                    match t.insert(params(c, l), 0) {
                        Ok(id) => { prop_assert!(!clash && m.len() < 16); m.insert(c, (l, id)); }
                        Err(InsertError::Exists) => prop_assert!(clash),
                        Err(InsertError::Full) => prop_assert!(m.len() == 16 && !clash),
                    }
                }
                Op::Remove(c) => {
                    if let Some((_, id)) = m.remove(&c) {
                        prop_assert!(t.remove(id).is_some());
                    }
                }
                Op::Lookup(c) => {
                    let p = params(c, 0);
                    let got = t.lookup(p.client, p.vip).map(|(id, _)| id);
                    prop_assert_eq!(got, m.get(&c).map(|(_, id)| *id));
                }
            }
            // Every live flow stays reachable from both directions.
            for (c, (l, id)) in &m {
                let p = params(*c, *l);
                prop_assert_eq!(t.lookup(p.client, p.vip), Some((*id, Dir::C2S)));
                prop_assert_eq!(t.lookup(p.server, p.local), Some((*id, Dir::S2C)));
            }
            prop_assert_eq!(t.len(), m.len());
        }
    }
}
