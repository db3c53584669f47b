//! IPv4 (RFC 791).

use core::net::Ipv4Addr;

use crate::field::{self, Field};
use crate::{checksum, Error, Result};

mod f {
    use super::Field;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
    pub const OPTIONS: usize = 20;
}

const FLAG_RESERVED: u16 = 0x8000;
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
///
/// ```text
///  0       4       8              16    19                 32
/// +-------+-------+--------------+-----+-------------------+
/// |version|  IHL  |  DSCP / ECN  |      total length       |
/// +-------+-------+--------------+-----+-------------------+
/// |        identification        |flags| fragment offset   |
/// +---------------+--------------+-----+-------------------+
/// |      TTL      |   protocol   |     header checksum     |
/// +---------------+--------------+-------------------------+
/// |                     source address                     |
/// |                   destination address                  |
/// |                 options (IHL*4 - 20 bytes)             |
/// +--------------------------------------------------------+
/// ```
///
/// The buffer may extend past `total_len` (Ethernet padding); [`payload`]
/// stops at `total_len`.
///
/// [`payload`]: Ipv4Packet::payload
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T> {
    buffer: T,
}

impl<T> Ipv4Packet<T> {
    /// Length of the header without options.
    pub const HEADER_LEN: usize = f::OPTIONS;
    /// Largest possible header (IHL = 15).
    pub const MAX_HEADER_LEN: usize = 60;

    /// Wraps `buffer` without validation (for emitting). Fixed-field
    /// accessors panic if `buffer` is shorter than [`Self::HEADER_LEN`];
    /// variable-length accessors never panic.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` after validating it. No accessor can panic afterwards.
    ///
    /// Errors, in the order checked:
    /// * [`Error::Truncated`]: shorter than 20 bytes;
    /// * [`Error::BadVersion`]: version is not 4;
    /// * [`Error::BadHeaderLen`]: IHL < 5, or IHL*4 exceeds the buffer;
    /// * [`Error::BadTotalLen`]: total length is below the header length or
    ///   exceeds the buffer.
    ///
    /// The checksum, fragmentation and options are not checked.
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
        if self.version() != 4 {
            return Err(Error::BadVersion);
        }
        let hl = usize::from(self.header_len());
        if hl < Self::HEADER_LEN || hl > len {
            return Err(Error::BadHeaderLen);
        }
        let tl = usize::from(self.total_len());
        if tl < hl || tl > len {
            return Err(Error::BadTotalLen);
        }
        Ok(())
    }

    /// IP version (4 for a validated packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[f::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4, 20–60 for a validated packet).
    #[inline]
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[f::VER_IHL] & 0x0f) * 4
    }

    /// The DSCP/ECN byte (former type-of-service).
    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[f::DSCP_ECN]
    }

    /// Differentiated services code point (upper 6 bits of [`dscp_ecn`](Self::dscp_ecn)).
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.dscp_ecn() >> 2
    }

    /// Explicit congestion notification (lower 2 bits of [`dscp_ecn`](Self::dscp_ecn)).
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.dscp_ecn() & 0x3
    }

    /// Total length (header + payload) in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::LENGTH)
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::IDENT)
    }

    /// The raw 16-bit flags + fragment-offset word.
    #[inline]
    pub fn flags_frag(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::FLG_OFF)
    }

    /// The reserved ("evil") flag bit.
    #[inline]
    pub fn reserved_flag(&self) -> bool {
        self.flags_frag() & FLAG_RESERVED != 0
    }

    /// Don't-fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }

    /// More-fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }

    /// Fragment offset **in bytes** (the 13-bit field × 8).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag() & OFFSET_MASK) << 3
    }

    /// Whether this is a fragment of a larger datagram (MF set or non-zero
    /// offset).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[f::TTL]
    }

    /// Next-level protocol (see [`crate::ip_proto`]).
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[f::PROTOCOL]
    }

    /// Header checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        field::get_ipv4(self.buffer.as_ref(), f::SRC_ADDR)
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        field::get_ipv4(self.buffer.as_ref(), f::DST_ADDR)
    }

    /// The whole header, `0..header_len` (clamped to the buffer).
    #[inline]
    pub fn header(&self) -> &[u8] {
        field::clamp(self.buffer.as_ref(), 0, usize::from(self.header_len()))
    }

    /// The options, `20..header_len` (clamped to the buffer; empty without
    /// options).
    #[inline]
    pub fn options(&self) -> &[u8] {
        field::clamp(
            self.buffer.as_ref(),
            f::OPTIONS,
            usize::from(self.header_len()),
        )
    }

    /// The payload, `header_len..total_len` (clamped to the buffer): trailing
    /// link-layer padding is excluded.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        field::clamp(
            self.buffer.as_ref(),
            usize::from(self.header_len()),
            usize::from(self.total_len()),
        )
    }

    /// Whether the header checksum is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let h = self.header();
        match <&[u8; 20]>::try_from(h) {
            Ok(h20) => checksum::checksum20(h20) == 0,
            Err(_) => checksum::checksum(h) == 0,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version nibble.
    #[inline]
    pub fn set_version(&mut self, version: u8) {
        let b = &mut self.buffer.as_mut()[f::VER_IHL];
        *b = (*b & 0x0f) | (version << 4);
    }

    /// Sets the header length in bytes (rounded down to a multiple of 4;
    /// values above 60 are truncated to the 4-bit IHL field).
    #[inline]
    pub fn set_header_len(&mut self, len: u8) {
        let b = &mut self.buffer.as_mut()[f::VER_IHL];
        *b = (*b & 0xf0) | ((len / 4) & 0x0f);
    }

    /// Sets the DSCP/ECN byte.
    #[inline]
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[f::DSCP_ECN] = v
    }

    /// Sets the total length.
    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        field::set_u16(self.buffer.as_mut(), f::LENGTH, len)
    }

    /// Sets the identification.
    #[inline]
    pub fn set_ident(&mut self, id: u16) {
        field::set_u16(self.buffer.as_mut(), f::IDENT, id)
    }

    /// Sets the raw flags + fragment-offset word.
    #[inline]
    pub fn set_flags_frag(&mut self, v: u16) {
        field::set_u16(self.buffer.as_mut(), f::FLG_OFF, v)
    }

    /// Clears all three flag bits (keeps the offset).
    #[inline]
    pub fn clear_flags(&mut self) {
        let v = self.flags_frag() & OFFSET_MASK;
        self.set_flags_frag(v)
    }

    /// Sets or clears the don't-fragment flag.
    #[inline]
    pub fn set_dont_frag(&mut self, df: bool) {
        let v = (self.flags_frag() & !FLAG_DF) | if df { FLAG_DF } else { 0 };
        self.set_flags_frag(v)
    }

    /// Sets or clears the more-fragments flag.
    #[inline]
    pub fn set_more_frags(&mut self, mf: bool) {
        let v = (self.flags_frag() & !FLAG_MF) | if mf { FLAG_MF } else { 0 };
        self.set_flags_frag(v)
    }

    /// Sets the fragment offset **in bytes** (must be a multiple of 8; the
    /// low 3 bits are dropped).
    #[inline]
    pub fn set_frag_offset(&mut self, offset: u16) {
        let v = (self.flags_frag() & !OFFSET_MASK) | (offset >> 3);
        self.set_flags_frag(v)
    }

    /// Sets the time to live.
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[f::TTL] = ttl
    }

    /// Sets the protocol.
    #[inline]
    pub fn set_protocol(&mut self, proto: u8) {
        self.buffer.as_mut()[f::PROTOCOL] = proto
    }

    /// Sets the stored header checksum.
    #[inline]
    pub fn set_checksum(&mut self, csum: u16) {
        field::set_u16(self.buffer.as_mut(), f::CHECKSUM, csum)
    }

    /// Sets the source address (the checksum is not updated; see
    /// [`checksum::update_addr`]).
    #[inline]
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        field::set_ipv4(self.buffer.as_mut(), f::SRC_ADDR, addr)
    }

    /// Sets the destination address (the checksum is not updated; see
    /// [`checksum::update_addr`]).
    #[inline]
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        field::set_ipv4(self.buffer.as_mut(), f::DST_ADDR, addr)
    }

    /// Mutable options, `20..header_len` (clamped to the buffer).
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = usize::from(self.header_len());
        field::clamp_mut(self.buffer.as_mut(), f::OPTIONS, hl)
    }

    /// Mutable payload, `header_len..total_len` (clamped to the buffer).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, tl) = (
            usize::from(self.header_len()),
            usize::from(self.total_len()),
        );
        field::clamp_mut(self.buffer.as_mut(), hl, tl)
    }

    /// Computes and stores the header checksum.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c)
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Ipv4Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip_proto;

    /// IPv4 + ICMP echo request as sent by iputils `ping 8.8.8.8` from
    /// 192.168.1.100 (header checksum 0x0b52).
    const PING: [u8; 84] = crate::icmpv4::tests::PING_IP;

    #[test]
    fn parse_real_header() {
        let ip = Ipv4Packet::new_checked(&PING[..]).unwrap();
        assert_eq!(ip.version(), 4);
        assert_eq!(ip.header_len(), 20);
        assert_eq!(ip.dscp_ecn(), 0);
        assert_eq!((ip.dscp(), ip.ecn()), (0, 0));
        assert_eq!(ip.total_len(), 84);
        assert_eq!(ip.ident(), 0x5d3b);
        assert!(ip.dont_frag());
        assert!(!ip.more_frags());
        assert!(!ip.reserved_flag());
        assert_eq!(ip.frag_offset(), 0);
        assert!(!ip.is_fragment());
        assert_eq!(ip.ttl(), 64);
        assert_eq!(ip.protocol(), ip_proto::ICMP);
        assert_eq!(ip.checksum(), 0x0b52);
        assert_eq!(ip.src_addr(), Ipv4Addr::new(192, 168, 1, 100));
        assert_eq!(ip.dst_addr(), Ipv4Addr::new(8, 8, 8, 8));
        assert!(ip.verify_checksum());
        assert_eq!(ip.options(), &[] as &[u8]);
        assert_eq!(ip.payload().len(), 64);
        assert_eq!(ip.payload()[0], 8);
    }

    #[test]
    fn validation_errors() {
        assert_eq!(Ipv4Packet::new_checked(&PING[..19]), Err(Error::Truncated));
        let mut b = PING;
        b[0] = 0x65;
        assert_eq!(Ipv4Packet::new_checked(&b[..]), Err(Error::BadVersion));
        b[0] = 0x44;
        assert_eq!(Ipv4Packet::new_checked(&b[..]), Err(Error::BadHeaderLen));
        b[0] = 0x4f; // 60-byte header in a 40-byte buffer
        assert_eq!(Ipv4Packet::new_checked(&b[..40]), Err(Error::BadHeaderLen));
        b[0] = 0x45;
        // Total length beyond the buffer, and below the header length.
        assert_eq!(Ipv4Packet::new_checked(&b[..83]), Err(Error::BadTotalLen));
        b[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(Ipv4Packet::new_checked(&b[..]), Err(Error::BadTotalLen));
        // Padding past total length is fine and excluded from the payload.
        let mut padded = PING.to_vec();
        padded.extend_from_slice(&[0xee; 10]);
        let ip = Ipv4Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(ip.payload(), &PING[20..]);
    }

    #[test]
    fn emit_and_checksum() {
        let mut buf = [0u8; 28];
        let mut ip = Ipv4Packet::new_unchecked(&mut buf[..]);
        ip.set_version(4);
        ip.set_header_len(24);
        ip.set_dscp_ecn(0xb8);
        ip.set_total_len(28);
        ip.set_ident(0x1234);
        ip.set_dont_frag(true);
        ip.set_more_frags(true);
        ip.set_frag_offset(1480);
        ip.set_ttl(17);
        ip.set_protocol(ip_proto::UDP);
        ip.set_src_addr(Ipv4Addr::new(10, 1, 2, 3));
        ip.set_dst_addr(Ipv4Addr::new(10, 4, 5, 6));
        ip.options_mut().copy_from_slice(&[1, 1, 1, 0]);
        ip.payload_mut().copy_from_slice(&[9; 4]);
        ip.fill_checksum();
        let ip = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(
            (ip.header_len(), ip.dscp(), ip.ecn(), ip.ident()),
            (24, 46, 0, 0x1234)
        );
        assert!(ip.dont_frag() && ip.more_frags() && ip.is_fragment());
        assert_eq!(ip.frag_offset(), 1480);
        assert_eq!(ip.options(), &[1, 1, 1, 0]);
        assert_eq!(ip.payload(), &[9; 4]);
        let mut ip = Ipv4Packet::new_unchecked(&mut buf[..]);
        ip.clear_flags();
        ip.set_frag_offset(0);
        assert!(!ip.is_fragment() && !ip.dont_frag());
        ip.set_ttl(16);
        assert!(!ip.verify_checksum());
    }

    #[test]
    fn inconsistent_lengths_do_not_panic() {
        let mut buf = PING;
        assert_eq!(Ipv4Packet::new_checked(&buf[..30]), Err(Error::BadTotalLen));
        let mut ip = Ipv4Packet::new_unchecked(&mut buf[..30]);
        ip.set_header_len(60);
        ip.set_total_len(10);
        assert_eq!(ip.options().len(), 10);
        assert_eq!(ip.header().len(), 30);
        assert!(ip.payload().is_empty());
        assert!(ip.payload_mut().is_empty());
        let _ = ip.verify_checksum();
        ip.fill_checksum();
        assert!(ip.verify_checksum());
    }
}
