//! IPv6 (RFC 8200) and its extension headers.

use core::net::Ipv6Addr;

use crate::field::{self, Field};
use crate::{Error, Result};

mod f {
    use super::Field;
    pub const VER_TC_FL: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
    pub const PAYLOAD: usize = 40;
}

/// Extension-header and upper-layer "next header" values.
pub mod next_header {
    /// Hop-by-Hop Options (must come first).
    pub const HOP_BY_HOP: u8 = 0;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// Routing header.
    pub const ROUTING: u8 = 43;
    /// Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating Security Payload (opaque: the walk stops there).
    pub const ESP: u8 = 50;
    /// Authentication Header.
    pub const AUTH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// No next header.
    pub const NO_NEXT: u8 = 59;
    /// Destination Options.
    pub const DEST_OPTS: u8 = 60;
}

/// Extension headers walked at most before giving up (a chain longer than
/// this is refused as [`Error::Unsupported`]: no legitimate packet to an
/// appliance carries one, and the walk stays bounded).
pub const MAX_EXT_HEADERS: usize = 8;

/// A view of an IPv6 packet.
///
/// ```text
///  0       4               12                              32
/// +-------+---------------+--------------------------------+
/// |version| traffic class |           flow label           |
/// +-------+---------------+-------+------------------------+
/// |        payload length         | next header| hop limit |
/// +-------------------------------+------------+-----------+
/// |                source address (128 bits)               |
/// |             destination address (128 bits)            |
/// +--------------------------------------------------------+
/// ```
///
/// The buffer may extend past the payload (Ethernet padding); [`payload`]
/// stops at `40 + payload_len`.
///
/// [`payload`]: Ipv6Packet::payload
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T> {
    buffer: T,
}

/// Where the upper-layer protocol starts, after the extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// Its protocol (a `next header` value that is not an extension header).
    pub proto: u8,
    /// Its offset from the start of the IPv6 header.
    pub offset: usize,
    /// A Fragment header was crossed: this is a fragment.
    pub fragment: bool,
    /// Extension headers crossed.
    pub ext_headers: u8,
}

impl<T> Ipv6Packet<T> {
    /// Length of the fixed header.
    pub const HEADER_LEN: usize = f::PAYLOAD;

    /// Wraps `buffer` without validation (for emitting). Accessors panic if
    /// `buffer` is shorter than [`Self::HEADER_LEN`].
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps `buffer` after validating it. No accessor can panic afterwards.
    ///
    /// Errors, in the order checked:
    /// * [`Error::Truncated`]: shorter than 40 bytes;
    /// * [`Error::BadVersion`]: version is not 6;
    /// * [`Error::BadTotalLen`]: the payload length points past the buffer.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        let len = p.buffer.as_ref().len();
        if len < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        if p.version() != 6 {
            return Err(Error::BadVersion);
        }
        if Self::HEADER_LEN + usize::from(p.payload_len()) > len {
            return Err(Error::BadTotalLen);
        }
        Ok(p)
    }

    /// IP version (6 for a validated packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Traffic class (DSCP and ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (field::get_u32(self.buffer.as_ref(), f::VER_TC_FL) >> 20) as u8
    }

    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        field::get_u32(self.buffer.as_ref(), f::VER_TC_FL) & 0x000f_ffff
    }

    /// Payload length: everything after the fixed header, extension headers
    /// included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::LENGTH)
    }

    /// The first next-header value.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[f::NEXT_HEADER]
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[f::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        get_ipv6(self.buffer.as_ref(), f::SRC_ADDR)
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        get_ipv6(self.buffer.as_ref(), f::DST_ADDR)
    }

    /// The payload: `40..40 + payload_len` (clamped to the buffer).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = (f::PAYLOAD + usize::from(self.payload_len())).min(b.len());
        b.get(f::PAYLOAD..end).unwrap_or(&[])
    }

    /// Walk the extension headers to the upper-layer protocol (bounded by
    /// [`MAX_EXT_HEADERS`]; never reads past the payload).
    ///
    /// Errors: [`Error::Truncated`] (an extension header runs past the
    /// payload), [`Error::BadOption`] (a Hop-by-Hop header that is not
    /// first), [`Error::Unsupported`] (more than [`MAX_EXT_HEADERS`]).
    /// A Fragment header is crossed and reported in
    /// [`UpperLayer::fragment`] (the protocol is then the fragment's: only
    /// the first fragment carries its header). ESP and "no next header"
    /// end the walk: they are returned as the protocol.
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        let p = self.payload();
        let mut proto = self.next_header();
        let mut off = 0usize;
        let mut fragment = false;
        let mut n = 0u8;
        loop {
            let len = match proto {
                next_header::HOP_BY_HOP if n > 0 => return Err(Error::BadOption),
                next_header::HOP_BY_HOP | next_header::ROUTING | next_header::DEST_OPTS => {
                    let l = *p.get(off + 1).ok_or(Error::Truncated)?;
                    (usize::from(l) + 1) * 8
                }
                next_header::FRAGMENT => {
                    fragment = true;
                    8
                }
                next_header::AUTH => {
                    let l = *p.get(off + 1).ok_or(Error::Truncated)?;
                    (usize::from(l) + 2) * 4
                }
                _ => {
                    return Ok(UpperLayer {
                        proto,
                        offset: f::PAYLOAD + off,
                        fragment,
                        ext_headers: n,
                    })
                }
            };
            if usize::from(n) >= MAX_EXT_HEADERS {
                return Err(Error::Unsupported);
            }
            if off + len > p.len() {
                return Err(Error::Truncated);
            }
            proto = p[off];
            off += len;
            n += 1;
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Set version 6, the traffic class and the flow label.
    #[inline]
    pub fn set_version_tc_flow(&mut self, tc: u8, flow: u32) {
        let w = (6u32 << 28) | (u32::from(tc) << 20) | (flow & 0x000f_ffff);
        self.buffer.as_mut()[f::VER_TC_FL].copy_from_slice(&w.to_be_bytes());
    }

    /// Set the payload length.
    #[inline]
    pub fn set_payload_len(&mut self, v: u16) {
        self.buffer.as_mut()[f::LENGTH].copy_from_slice(&v.to_be_bytes());
    }

    /// Set the first next-header value.
    #[inline]
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[f::NEXT_HEADER] = v;
    }

    /// Set the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[f::HOP_LIMIT] = v;
    }

    /// Set the source address.
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[f::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Set the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[f::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// The payload, mutable (clamped like [`Ipv6Packet::payload`]).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = (f::PAYLOAD + usize::from(self.payload_len())).min(self.buffer.as_ref().len());
        self.buffer
            .as_mut()
            .get_mut(f::PAYLOAD..end)
            .unwrap_or(&mut [])
    }
}

#[inline(always)]
fn get_ipv6(buf: &[u8], f: Field) -> Ipv6Addr {
    let mut b = [0u8; 16];
    b.copy_from_slice(&buf[f]);
    Ipv6Addr::from(b)
}

/// The solicited-node multicast address of `a` (`ff02::1:ffXX:XXXX`, RFC
/// 4291 §2.7.1).
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet multicast address of IPv6 multicast `a` (`33:33` and its
/// last 32 bits, RFC 2464 §7).
pub fn multicast_mac(a: Ipv6Addr) -> crate::MacAddr {
    let o = a.octets();
    crate::MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// The link-local address a port with MAC `mac` forms (modified EUI-64,
/// RFC 4291 appendix A).
pub fn link_local(mac: crate::MacAddr) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([m[0] ^ 0x02, m[1]]),
        u16::from_be_bytes([m[2], 0xff]),
        u16::from_be_bytes([0xfe, m[3]]),
        u16::from_be_bytes([m[4], m[5]]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// ICMPv6 echo request fe80::1 → fe80::2 with a Hop-by-Hop and a
    /// Destination Options header in front.
    fn fixture() -> Vec<u8> {
        let mut v = vec![
            0x60, 0x00, 0x00, 0x05, // version 6, tc 0, flow label 5
            0x00, 0x18, 0x00, 0x40, // payload 24, next: hop-by-hop, hop limit 64
        ];
        v.extend_from_slice(&Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1).octets());
        v.extend_from_slice(&Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2).octets());
        v.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]); // HbH → DestOpts, PadN
        v.extend_from_slice(&[58, 0, 1, 4, 0, 0, 0, 0]); // DestOpts → ICMPv6
        v.extend_from_slice(&[128, 0, 0, 0, 0, 1, 0, 1]); // echo request
        v
    }

    #[test]
    fn fields_and_extension_walk() {
        let b = fixture();
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.version(), p.traffic_class(), p.flow_label()), (6, 0, 5));
        assert_eq!(
            (p.payload_len(), p.next_header(), p.hop_limit()),
            (24, 0, 64)
        );
        assert_eq!(p.src_addr(), "fe80::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "fe80::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            p.upper_layer(),
            Ok(UpperLayer {
                proto: next_header::ICMPV6,
                offset: 56,
                fragment: false,
                ext_headers: 2
            })
        );
    }

    #[test]
    fn refuses_bad_headers_and_chains() {
        let b = fixture();
        assert_eq!(Ipv6Packet::new_checked(&b[..39]), Err(Error::Truncated));
        let mut v = b.clone();
        v[0] = 0x40;
        assert_eq!(Ipv6Packet::new_checked(&v[..]), Err(Error::BadVersion));
        let mut v = b.clone();
        v[5] = 25;
        assert_eq!(Ipv6Packet::new_checked(&v[..]), Err(Error::BadTotalLen));
        // Hop-by-Hop after another header.
        let mut v = b.clone();
        v[40] = 0;
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::BadOption));
        // An extension header past the payload.
        let mut v = b.clone();
        v[49] = 3;
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::Truncated));
        // A chain of nine Destination Options headers.
        let mut v = b[..40].to_vec();
        v[6] = 60;
        for i in 0..9 {
            v.extend_from_slice(&[if i < 8 { 60 } else { 58 }, 0, 1, 4, 0, 0, 0, 0]);
        }
        v[4..6].copy_from_slice(&72u16.to_be_bytes());
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::Unsupported));
        // A fragment is reported.
        let mut v = b[..40].to_vec();
        v[6] = 44;
        v.extend_from_slice(&[17, 0, 0, 1, 0, 0, 0, 7]);
        v[4..6].copy_from_slice(&8u16.to_be_bytes());
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        let u = p.upper_layer().unwrap();
        assert!(u.fragment);
        assert_eq!((u.proto, u.offset), (17, 48));
    }

    #[test]
    fn addresses_derived() {
        let a: Ipv6Addr = "2001:db8::1:2345:6789".parse().unwrap();
        assert_eq!(
            solicited_node(a),
            "ff02::1:ff45:6789".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            multicast_mac(solicited_node(a)).0,
            [0x33, 0x33, 0xff, 0x45, 0x67, 0x89]
        );
        assert_eq!(
            link_local(crate::MacAddr([0x02, 0x51, 0xaa, 0xbb, 0xcc, 0xdd])),
            "fe80::51:aaff:febb:ccdd".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn emit_round_trip() {
        let mut b = [0u8; 48];
        let mut p = Ipv6Packet::new_unchecked(&mut b[..]);
        p.set_version_tc_flow(0xb8, 0x12345);
        p.set_payload_len(8);
        p.set_next_header(59);
        p.set_hop_limit(255);
        p.set_src_addr("2001:db8::1".parse().unwrap());
        p.set_dst_addr("2001:db8::2".parse().unwrap());
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            (p.traffic_class(), p.flow_label(), p.hop_limit()),
            (0xb8, 0x12345, 255)
        );
        assert_eq!(p.upper_layer().unwrap().proto, 59);
    }

    proptest! {
        #[test]
        fn any_bytes_parse_and_walk_without_panic(b in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(p) = Ipv6Packet::new_checked(&b[..]) {
                let _ = (p.payload(), p.flow_label(), p.src_addr(), p.dst_addr());
                if let Ok(u) = p.upper_layer() {
                    prop_assert!(u.offset <= 40 + p.payload().len());
                    prop_assert!(usize::from(u.ext_headers) <= MAX_EXT_HEADERS);
                }
            }
        }
    }
}
