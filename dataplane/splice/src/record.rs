//! A spliced flow's record as the nodes of a cluster share it: everything
//! another node needs to go on translating the flow's segments in both
//! directions ([`SpliceParams`]: the four endpoints, the sequence and
//! timestamp offsets, the four window scales).
//!
//! Translation needs nothing else: a spliced flow's rewrite is a function
//! of these numbers alone (see [`crate::translate`]), so a node that was
//! not on the flow's path at splice time adopts it from its record.
//!
//! Layout (big-endian, [`RECORD_LEN`] bytes):
//!
//! ```text
//! 0      version (1)
//! 1..7   client address, port       7..13  VIP address, port
//! 13..19 local (backend-side) address, source port
//! 19..25 server address, port
//! 25..29 c2s_seq_delta   29..33 s2c_seq_delta
//! 33..37 c2s_ts_delta    37..41 s2c_ts_delta
//! 41     client_ws  42 vip_ws  43 local_ws  44 server_ws
//! ```
//!
//! The record is found by its client-side pair, [`client_key`]
//! ([`KEY_LEN`] bytes: client then VIP, as in the record). Decoding is the
//! no-panic contract of the wire parsers: any byte string is either a
//! record or `None` (fuzzed: `flow_record`).

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::translate::SpliceParams;

/// Record format version.
pub const RECORD_VERSION: u8 = 1;
/// Encoded record length.
pub const RECORD_LEN: usize = 45;
/// Encoded client-side key length.
pub const KEY_LEN: usize = 12;

/// Largest window scale a record may carry (RFC 7323 §2.3).
const MAX_WS: u8 = 14;

fn put_addr(out: &mut [u8], a: SocketAddrV4) {
    out[..4].copy_from_slice(&a.ip().octets());
    out[4..6].copy_from_slice(&a.port().to_be_bytes());
}

fn get_addr(b: &[u8]) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(b[0], b[1], b[2], b[3]),
        u16::from_be_bytes([b[4], b[5]]),
    )
}

fn get_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The key a flow's record is stored under: its client and VIP.
pub fn client_key(client: SocketAddrV4, vip: SocketAddrV4) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    put_addr(&mut k[..6], client);
    put_addr(&mut k[6..], vip);
    k
}

/// The pair [`client_key`] encodes (`None`: not [`KEY_LEN`] bytes).
pub fn parse_key(b: &[u8]) -> Option<(SocketAddrV4, SocketAddrV4)> {
    if b.len() != KEY_LEN {
        return None;
    }
    Some((get_addr(&b[..6]), get_addr(&b[6..])))
}

/// Encode a flow's parameters.
pub fn encode(p: &SpliceParams) -> [u8; RECORD_LEN] {
    let mut r = [0u8; RECORD_LEN];
    r[0] = RECORD_VERSION;
    put_addr(&mut r[1..7], p.client);
    put_addr(&mut r[7..13], p.vip);
    put_addr(&mut r[13..19], p.local);
    put_addr(&mut r[19..25], p.server);
    r[25..29].copy_from_slice(&p.c2s_seq_delta.to_be_bytes());
    r[29..33].copy_from_slice(&p.s2c_seq_delta.to_be_bytes());
    r[33..37].copy_from_slice(&p.c2s_ts_delta.to_be_bytes());
    r[37..41].copy_from_slice(&p.s2c_ts_delta.to_be_bytes());
    r[41] = p.client_ws;
    r[42] = p.vip_ws;
    r[43] = p.local_ws;
    r[44] = p.server_ws;
    r
}

/// Decode a record: `None` for anything that is not one (wrong length or
/// version, a window scale above 14, a zero port or unspecified address).
pub fn decode(r: &[u8]) -> Option<SpliceParams> {
    if r.len() != RECORD_LEN || r[0] != RECORD_VERSION {
        return None;
    }
    let p = SpliceParams {
        client: get_addr(&r[1..7]),
        vip: get_addr(&r[7..13]),
        local: get_addr(&r[13..19]),
        server: get_addr(&r[19..25]),
        c2s_seq_delta: get_u32(&r[25..29]),
        s2c_seq_delta: get_u32(&r[29..33]),
        c2s_ts_delta: get_u32(&r[33..37]),
        s2c_ts_delta: get_u32(&r[37..41]),
        client_ws: r[41],
        vip_ws: r[42],
        local_ws: r[43],
        server_ws: r[44],
    };
    let ends = [p.client, p.vip, p.local, p.server];
    if ends
        .iter()
        .any(|a| a.port() == 0 || a.ip().is_unspecified())
        || [p.client_ws, p.vip_ws, p.local_ws, p.server_ws]
            .iter()
            .any(|&w| w > MAX_WS)
    {
        return None;
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> SpliceParams {
        SpliceParams {
            client: "10.10.1.2:40000".parse().unwrap(),
            vip: "10.99.0.1:80".parse().unwrap(),
            local: "10.10.2.1:20001".parse().unwrap(),
            server: "10.10.2.11:80".parse().unwrap(),
            c2s_seq_delta: 0x0102_0304,
            s2c_seq_delta: 0xfffe_fdfc,
            c2s_ts_delta: 7,
            s2c_ts_delta: 0x8000_0000,
            client_ws: 7,
            vip_ws: 9,
            local_ws: 7,
            server_ws: 14,
        }
    }

    #[test]
    fn fixture_bytes() {
        let r = encode(&sample());
        let want: [u8; RECORD_LEN] = [
            1, // version
            10, 10, 1, 2, 0x9c, 0x40, // client 10.10.1.2:40000
            10, 99, 0, 1, 0, 80, // vip
            10, 10, 2, 1, 0x4e, 0x21, // local :20001
            10, 10, 2, 11, 0, 80, // server
            1, 2, 3, 4, 0xff, 0xfe, 0xfd, 0xfc, 0, 0, 0, 7, 0x80, 0, 0, 0, // deltas
            7, 9, 7, 14, // window scales
        ];
        assert_eq!(r, want);
        assert_eq!(decode(&want), Some(sample()));
        assert_eq!(
            client_key(sample().client, sample().vip),
            [10, 10, 1, 2, 0x9c, 0x40, 10, 99, 0, 1, 0, 80]
        );
    }

    #[test]
    fn refuses_what_is_not_a_record() {
        let r = encode(&sample());
        assert_eq!(decode(&r[..RECORD_LEN - 1]), None);
        let mut v = r;
        v[0] = 2;
        assert_eq!(decode(&v), None, "unknown version");
        let mut w = r;
        w[44] = 15;
        assert_eq!(decode(&w), None, "window scale 15");
        let mut z = r;
        z[5] = 0;
        z[6] = 0;
        assert_eq!(decode(&z), None, "client port 0");
        let mut l = r.to_vec();
        l.push(0);
        assert_eq!(decode(&l), None, "trailing byte");
        assert_eq!(parse_key(&[0; 11]), None);
    }

    fn addr() -> impl Strategy<Value = SocketAddrV4> {
        (1u32.., 1u16..).prop_map(|(a, p)| SocketAddrV4::new(Ipv4Addr::from(a), p))
    }

    proptest! {
        #[test]
        fn round_trips(c in addr(), v in addr(), l in addr(), s in addr(),
                       d in any::<[u32; 4]>(), ws in prop::array::uniform4(0u8..=14)) {
            let p = SpliceParams {
                client: c, vip: v, local: l, server: s,
                c2s_seq_delta: d[0], s2c_seq_delta: d[1], c2s_ts_delta: d[2], s2c_ts_delta: d[3],
                client_ws: ws[0], vip_ws: ws[1], local_ws: ws[2], server_ws: ws[3],
            };
            prop_assert_eq!(decode(&encode(&p)), Some(p));
            prop_assert_eq!(parse_key(&client_key(c, v)), Some((c, v)));
        }

        #[test]
        fn any_bytes_decode_or_refuse(b in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Some(p) = decode(&b) {
                prop_assert_eq!(&encode(&p)[..], &b[..]);
            }
        }
    }
}
