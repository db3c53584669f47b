//! UDP (RFC 768).

use core::net::Ipv4Addr;

use crate::field::{self, Field};
use crate::{checksum, ip_proto, Error, Result};

mod f {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
    pub const PAYLOAD: usize = 8;
}

/// A view of a UDP datagram (the IPv4 payload).
///
/// ```text
///  0                16               32
/// +-----------------+-----------------+
/// |   source port   |    dest port    |
/// +-----------------+-----------------+
/// |     length      |    checksum     |
/// +-----------------+-----------------+
/// |  data …                           |
/// ```
///
/// The buffer may extend past `len()`; [`payload`](Self::payload) and the
/// checksum stop at `len()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<T> {
    buffer: T,
}

impl<T> UdpPacket<T> {
    /// Length of the UDP header.
    pub const HEADER_LEN: usize = f::PAYLOAD;

    /// Wraps `buffer` without validation (for emitting). Fixed-field
    /// accessors panic if `buffer` is shorter than [`Self::HEADER_LEN`].
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The header length, always [`Self::HEADER_LEN`].
    pub const fn header_len(&self) -> usize {
        Self::HEADER_LEN
    }
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps `buffer` after validating it. No accessor can panic afterwards.
    ///
    /// Errors: [`Error::Truncated`] if shorter than 8 bytes;
    /// [`Error::BadTotalLen`] if the length field is below 8 or exceeds the
    /// buffer. The checksum is not checked.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The validation performed by [`Self::new_checked`].
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = usize::from(self.len());
        if l < Self::HEADER_LEN || l > len {
            return Err(Error::BadTotalLen);
        }
        Ok(())
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::DST_PORT)
    }

    /// The length field (header + data).
    #[allow(clippy::len_without_is_empty)]
    #[inline]
    pub fn len(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::LENGTH)
    }

    /// Checksum as stored (`0` = none transmitted).
    #[inline]
    pub fn checksum(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::CHECKSUM)
    }

    /// The datagram `0..len()` (clamped to the buffer).
    #[inline]
    pub fn datagram(&self) -> &[u8] {
        field::clamp(self.buffer.as_ref(), 0, usize::from(self.len()))
    }

    /// Data, `8..len()` (clamped to the buffer).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        field::clamp(self.buffer.as_ref(), f::PAYLOAD, usize::from(self.len()))
    }

    /// Whether the checksum is correct for the IPv4 pseudo-header
    /// `src`/`dst`. A stored checksum of `0` means the sender did not compute
    /// one and verifies as `true`.
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let d = self.datagram();
        let ph = checksum::pseudo_header_v4(src, dst, ip_proto::UDP, d.len() as u16);
        checksum::fold(checksum::sum(d, ph)) == 0xffff
    }
    /// Whether the checksum verifies over the IPv6 pseudo-header. Unlike
    /// IPv4, a zero checksum is invalid over IPv6 (RFC 8200 §8.1).
    pub fn verify_checksum_v6(&self, src: core::net::Ipv6Addr, dst: core::net::Ipv6Addr) -> bool {
        if self.checksum() == 0 {
            return false;
        }
        let d = self.datagram();
        let ph = checksum::pseudo_header_v6(src, dst, ip_proto::UDP, d.len() as u32);
        checksum::fold(checksum::sum(d, ph)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        field::set_u16(self.buffer.as_mut(), f::SRC_PORT, port)
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        field::set_u16(self.buffer.as_mut(), f::DST_PORT, port)
    }

    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, len: u16) {
        field::set_u16(self.buffer.as_mut(), f::LENGTH, len)
    }

    /// Sets the stored checksum.
    #[inline]
    pub fn set_checksum(&mut self, csum: u16) {
        field::set_u16(self.buffer.as_mut(), f::CHECKSUM, csum)
    }

    /// Mutable data, `8..len()` (clamped to the buffer).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let l = usize::from(self.len());
        field::clamp_mut(self.buffer.as_mut(), f::PAYLOAD, l)
    }

    /// Computes and stores the checksum over the pseudo-header and
    /// `0..len()`. A computed `0` is stored as `0xffff` (RFC 768), since `0`
    /// means "no checksum".
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let d = self.datagram();
        let ph = checksum::pseudo_header_v4(src, dst, ip_proto::UDP, d.len() as u16);
        let c = !checksum::fold(checksum::sum(d, ph));
        self.set_checksum(if c == 0 { 0xffff } else { c })
    }
    /// Compute and store the checksum over the IPv6 pseudo-header (a
    /// computed zero is sent as `0xffff`).
    pub fn fill_checksum_v6(&mut self, src: core::net::Ipv6Addr, dst: core::net::Ipv6Addr) {
        self.set_checksum(0);
        let d = self.datagram();
        let ph = checksum::pseudo_header_v6(src, dst, ip_proto::UDP, d.len() as u32);
        let c = !checksum::fold(checksum::sum(d, ph));
        self.set_checksum(if c == 0 { 0xffff } else { c })
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for UdpPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ipv4Packet;

    #[test]
    fn checksum_over_the_ipv6_pseudo_header_and_zero_is_invalid() {
        let src: core::net::Ipv6Addr = "2001:db8:1::2".parse().unwrap();
        let dst: core::net::Ipv6Addr = "2001:db8:1::1".parse().unwrap();
        let mut d = [0x02, 0x22, 0x02, 0x23, 0, 12, 0, 0, b'a', b'b', b'c', b'd'];
        let mut p = UdpPacket::new_unchecked(&mut d[..]);
        p.fill_checksum_v6(src, dst);
        assert_eq!(p.checksum(), 0xdb53, "independent implementation");
        let p = UdpPacket::new_checked(&d[..]).unwrap();
        assert!(p.verify_checksum_v6(src, dst));
        let mut z = d;
        z[6..8].copy_from_slice(&[0, 0]);
        assert!(!UdpPacket::new_checked(&z[..])
            .unwrap()
            .verify_checksum_v6(src, dst));
    }

    /// A DNS query for example.com A (as sent by `dig`) from 192.168.1.100:53000 to
    /// 192.168.1.1:53, IPv4 + UDP, UDP checksum 0x3175.
    pub(crate) const DNS_QUERY: [u8; 57] = [
        0x45, 0x00, 0x00, 0x39, 0x1c, 0x46, 0x00, 0x00, 0x40, 0x11, 0xda, 0xb8, 0xc0, 0xa8, 0x01,
        0x64, //
        0xc0, 0xa8, 0x01, 0x01, 0xcf, 0x08, 0x00, 0x35, 0x00, 0x25, 0x31, 0x75, 0xab, 0xcd, 0x01,
        0x00, //
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, b'e', b'x', b'a', b'm', b'p', b'l',
        b'e', //
        0x03, b'c', b'o', b'm', 0x00, 0x00, 0x01, 0x00, 0x01,
    ];

    #[test]
    fn parse_real_dns_query() {
        let ip = Ipv4Packet::new_checked(&DNS_QUERY[..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.protocol(), ip_proto::UDP);
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(udp.src_port(), 53000);
        assert_eq!(udp.dst_port(), 53);
        assert_eq!(udp.len(), 37);
        assert_eq!(udp.checksum(), 0x3175);
        assert_eq!(udp.header_len(), 8);
        assert_eq!(udp.payload().len(), 29);
        assert_eq!(&udp.payload()[..2], &[0xab, 0xcd]);
        assert!(udp.verify_checksum(ip.src_addr(), ip.dst_addr()));
        assert!(!udp.verify_checksum(ip.src_addr(), Ipv4Addr::new(192, 168, 1, 2)));
    }

    #[test]
    fn validation() {
        let d = &DNS_QUERY[20..];
        assert_eq!(UdpPacket::new_checked(&d[..7]), Err(Error::Truncated));
        assert_eq!(UdpPacket::new_checked(&d[..36]), Err(Error::BadTotalLen));
        let mut b = d.to_vec();
        b[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(UdpPacket::new_checked(&b[..]), Err(Error::BadTotalLen));
        // Trailing bytes past the length are excluded.
        let mut b = d.to_vec();
        b.extend_from_slice(&[1, 2, 3]);
        let u = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(u.payload(), &d[8..]);
        assert!(u.verify_checksum(
            Ipv4Addr::new(192, 168, 1, 100),
            Ipv4Addr::new(192, 168, 1, 1)
        ));
    }

    #[test]
    fn fill_and_zero_checksum() {
        let (s, d) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let mut b = [0u8; 12];
        let mut u = UdpPacket::new_unchecked(&mut b[..]);
        u.set_src_port(1234);
        u.set_dst_port(5678);
        u.set_len(12);
        u.payload_mut().copy_from_slice(&[1, 2, 3, 4]);
        u.fill_checksum(s, d);
        assert!(u.verify_checksum(s, d));
        u.set_checksum(0);
        assert!(
            u.verify_checksum(s, Ipv4Addr::new(1, 1, 1, 1)),
            "0 = no checksum"
        );

        // Choose data so that the computed checksum is 0: stored as 0xffff.
        let mut b = [0u8; 10];
        let mut u = UdpPacket::new_unchecked(&mut b[..]);
        u.set_len(10);
        let ph = checksum::pseudo_header_v4(s, d, ip_proto::UDP, 10);
        let partial = checksum::fold(checksum::sum(&[0, 0, 0, 0, 0, 10, 0, 0], ph));
        // Make the total sum 0xffff so that !sum == 0.
        u.payload_mut()
            .copy_from_slice(&(0xffff - partial).to_be_bytes());
        u.fill_checksum(s, d);
        assert_eq!(u.checksum(), 0xffff);
        assert!(u.verify_checksum(s, d));
    }
}
