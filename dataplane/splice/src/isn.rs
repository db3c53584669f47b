//! Initial sequence numbers and SYN cookies.
//!
//! The source paper derives the proxy's ISN from the client's address and
//! port so that any core can recompute it without state. Here it is a keyed
//! SipHash-2-4 of the 4-tuple and a coarse time slot: recomputable by every
//! lcore that holds the secret, unpredictable to anyone else (RFC 6528).
//!
//! SYN cookies (the layout popularised by Linux): the ISN we send in the
//! SYN-ACK *is* the state — it carries an 8-bit time slot and an index into
//! [`MSS_TABLE`], authenticated by two keyed hashes — so a SYN flood costs no
//! memory; the connection is created only when the client's ACK proves its
//! address by acknowledging `cookie + 1`. Unlike Linux, the client's ISN is
//! also an input of the second hash, so an ACK whose sequence number is off
//! by a little does not decode to a neighbouring MSS index.

use std::hash::Hasher;
use std::net::{SocketAddrV4, SocketAddrV6};

use siphasher::sip::SipHasher24;

/// MSS values a cookie can carry (index in 0..4), the common path MTUs.
pub const MSS_TABLE: [u16; 4] = [536, 1220, 1440, 1460];

/// Cookies older than this many time slots are refused.
pub const COOKIE_MAX_AGE: u32 = 2;

/// A connection endpoint the ISNs and cookies are computed over: an
/// IPv4 or an IPv6 address and port (the hash input is the address's
/// octets, so the two families never collide by accident of encoding).
pub trait Endpoint: Copy {
    /// Feed the address's octets to `h`.
    fn write_ip(&self, h: &mut SipHasher24);
    /// The port.
    fn port_of(&self) -> u16;
}

impl Endpoint for SocketAddrV4 {
    #[inline]
    fn write_ip(&self, h: &mut SipHasher24) {
        h.write(&self.ip().octets());
    }
    #[inline]
    fn port_of(&self) -> u16 {
        self.port()
    }
}

impl Endpoint for SocketAddrV6 {
    #[inline]
    fn write_ip(&self, h: &mut SipHasher24) {
        h.write(&self.ip().octets());
    }
    #[inline]
    fn port_of(&self) -> u16 {
        self.port()
    }
}

/// The per-appliance secret (shared by all lcores; rotate by replacing it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IsnSecret {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for IsnSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IsnSecret(..)")
    }
}

impl IsnSecret {
    /// A secret from 16 random bytes.
    pub fn from_bytes(b: [u8; 16]) -> Self {
        let (a, c) = b.split_at(8);
        let mut x = [0u8; 8];
        x.copy_from_slice(a);
        let mut y = [0u8; 8];
        y.copy_from_slice(c);
        IsnSecret {
            k0: u64::from_le_bytes(x),
            k1: u64::from_le_bytes(y),
        }
    }

    fn hash<A: Endpoint>(&self, client: A, vip: A, extra: u32, tag: u8) -> u32 {
        self.hash2(client, vip, extra, 0, tag)
    }

    fn hash2<A: Endpoint>(&self, client: A, vip: A, extra: u32, extra2: u32, tag: u8) -> u32 {
        let mut h = SipHasher24::new_with_keys(self.k0, self.k1);
        h.write(&extra2.to_be_bytes());
        client.write_ip(&mut h);
        vip.write_ip(&mut h);
        h.write(&client.port_of().to_be_bytes());
        h.write(&vip.port_of().to_be_bytes());
        h.write(&extra.to_be_bytes());
        h.write_u8(tag);
        h.finish() as u32
    }

    /// The appliance's ISN toward `client` for a connection to `vip` in time
    /// slot `slot` (the paper's `vs_seq`, keyed).
    pub fn isn<A: Endpoint>(&self, client: A, vip: A, slot: u32) -> u32 {
        self.hash(client, vip, slot, 0)
    }
}

/// SYN cookie encoding and validation.
#[derive(Clone, Copy, Debug)]
pub struct SynCookie;

impl SynCookie {
    /// The largest table MSS not above `mss` (index into [`MSS_TABLE`]).
    pub fn mss_index(mss: u16) -> u32 {
        MSS_TABLE.iter().rposition(|m| *m <= mss).unwrap_or(0) as u32
    }

    /// The cookie (our ISN) answering a SYN with sequence `client_isn` and
    /// MSS option `mss`, in time slot `slot` (e.g. `now / 64 s`).
    pub fn encode<A: Endpoint>(
        secret: &IsnSecret,
        client: A,
        vip: A,
        client_isn: u32,
        mss: u16,
        slot: u32,
    ) -> u32 {
        let count = slot & 0xff;
        let data = Self::mss_index(mss);
        secret
            .hash(client, vip, 0, 1)
            .wrapping_add(client_isn)
            .wrapping_add(count << 24)
            .wrapping_add(
                secret
                    .hash2(client, vip, count, client_isn, 2)
                    .wrapping_add(data)
                    & 0x00ff_ffff,
            )
    }

    /// Validate the ACK completing a cookie handshake: `ack_seq` is the
    /// ACK's sequence number (client ISN + 1) and `ack_num` its
    /// acknowledgement (cookie + 1). Returns the MSS the SYN carried.
    pub fn decode<A: Endpoint>(
        secret: &IsnSecret,
        client: A,
        vip: A,
        ack_seq: u32,
        ack_num: u32,
        slot: u32,
    ) -> Option<u16> {
        let client_isn = ack_seq.wrapping_sub(1);
        let cookie = ack_num.wrapping_sub(1);
        let v = cookie
            .wrapping_sub(secret.hash(client, vip, 0, 1))
            .wrapping_sub(client_isn);
        let sent = v >> 24;
        let age = (slot & 0xff).wrapping_sub(sent) & 0xff;
        if age >= COOKIE_MAX_AGE {
            return None;
        }
        let data = v.wrapping_sub(secret.hash2(client, vip, sent, client_isn, 2)) & 0x00ff_ffff;
        MSS_TABLE.get(data as usize).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const S: [u8; 16] = *b"qsplice-secret!!";

    fn sa(a: [u8; 4], p: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(a), p)
    }

    #[test]
    fn ipv6_cookies_round_trip_and_bind_the_tuple() {
        let s = IsnSecret::from_bytes(S);
        let c = SocketAddrV6::new("2001:db8:1::2".parse().unwrap(), 40000, 0, 0);
        let v = SocketAddrV6::new("2001:db8:1::1".parse().unwrap(), 443, 0, 0);
        let cookie = SynCookie::encode(&s, c, v, 1000, 1440, 5);
        assert_eq!(
            SynCookie::decode(&s, c, v, 1001, cookie.wrapping_add(1), 5),
            Some(1440)
        );
        let other = SocketAddrV6::new("2001:db8:1::3".parse().unwrap(), 40000, 0, 0);
        assert_eq!(
            SynCookie::decode(&s, other, v, 1001, cookie.wrapping_add(1), 5),
            None,
            "another client address"
        );
        assert_ne!(s.isn(c, v, 7), s.isn(other, v, 7));
        // An IPv4-mapped address is another endpoint than its IPv4 form.
        let c4 = sa([10, 10, 1, 2], 40000);
        let v4 = sa([10, 10, 1, 1], 443);
        let c6 = SocketAddrV6::new(c4.ip().to_ipv6_mapped(), 40000, 0, 0);
        let v6 = SocketAddrV6::new(v4.ip().to_ipv6_mapped(), 443, 0, 0);
        assert_ne!(s.isn(c4, v4, 7), s.isn(c6, v6, 7));
    }

    #[test]
    fn isn_is_keyed_and_recomputable() {
        let s = IsnSecret::from_bytes(S);
        let c = sa([10, 10, 1, 2], 40000);
        let v = sa([10, 10, 1, 1], 80);
        assert_eq!(
            s.isn(c, v, 7),
            s.isn(c, v, 7),
            "any core computes the same ISN"
        );
        assert_ne!(s.isn(c, v, 7), s.isn(sa([10, 10, 1, 2], 40001), v, 7));
        assert_ne!(s.isn(c, v, 7), s.isn(c, v, 8), "changes with the time slot");
        assert_ne!(
            s.isn(c, v, 7),
            IsnSecret::from_bytes([0; 16]).isn(c, v, 7),
            "depends on the secret"
        );
        assert_eq!(format!("{s:?}"), "IsnSecret(..)", "never printed");
    }

    #[test]
    fn mss_index_rounds_down() {
        assert_eq!(SynCookie::mss_index(1460), 3);
        assert_eq!(SynCookie::mss_index(9000), 3);
        assert_eq!(SynCookie::mss_index(1400), 1);
        assert_eq!(SynCookie::mss_index(100), 0);
    }

    #[test]
    fn cookie_expires_and_is_bound_to_the_tuple() {
        let s = IsnSecret::from_bytes(S);
        let (c, v) = (sa([10, 10, 1, 2], 40000), sa([10, 10, 1, 1], 80));
        let cookie = SynCookie::encode(&s, c, v, 1000, 1460, 255);
        assert_eq!(
            SynCookie::decode(&s, c, v, 1001, cookie.wrapping_add(1), 255),
            Some(1460)
        );
        assert_eq!(
            SynCookie::decode(&s, c, v, 1001, cookie.wrapping_add(1), 0),
            Some(1460),
            "slot counter wraps"
        );
        assert_eq!(
            SynCookie::decode(&s, c, v, 1001, cookie.wrapping_add(1), 1),
            None,
            "too old"
        );
        assert_eq!(
            SynCookie::decode(
                &s,
                sa([10, 10, 1, 3], 40000),
                v,
                1001,
                cookie.wrapping_add(1),
                255
            ),
            None
        );
        assert_eq!(
            SynCookie::decode(&s, c, v, 1002, cookie.wrapping_add(1), 255),
            None,
            "other client ISN"
        );
    }

    proptest! {
        #[test]
        fn cookie_roundtrip(a in any::<[u8; 4]>(), p in any::<u16>(), isn in any::<u32>(), mss in 0u16..=9000, slot in any::<u32>(), age in 0u32..COOKIE_MAX_AGE, key in any::<[u8; 16]>()) {
            let s = IsnSecret::from_bytes(key);
            let (c, v) = (sa(a, p), sa([10, 0, 0, 1], 443));
            let cookie = SynCookie::encode(&s, c, v, isn, mss, slot);
            let got = SynCookie::decode(&s, c, v, isn.wrapping_add(1), cookie.wrapping_add(1), slot.wrapping_add(age));
            prop_assert_eq!(got, Some(MSS_TABLE[SynCookie::mss_index(mss) as usize]));
        }

        #[test]
        fn forged_acks_are_rejected(a in any::<[u8; 4]>(), isn in any::<u32>(), guess in any::<u32>(), slot in any::<u32>()) {
            let s = IsnSecret::from_bytes(S);
            let (c, v) = (sa(a, 1234), sa([10, 0, 0, 1], 443));
            let real = SynCookie::encode(&s, c, v, isn, 1460, slot);
            prop_assume!(guess != real.wrapping_add(1));
            // A random guess passes only if it hits one of 2 slots x 4 MSS
            // values out of 2^32: never in practice.
            prop_assert_eq!(SynCookie::decode(&s, c, v, isn.wrapping_add(1), guess, slot), None);
        }
    }
}
