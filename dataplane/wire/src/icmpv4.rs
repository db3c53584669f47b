//! ICMPv4 (RFC 792).

use crate::field::{self, Field};
use crate::{checksum, Error, Result};

mod f {
    use super::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const REST: Field = 4..8;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQ: Field = 6..8;
    pub const PAYLOAD: usize = 8;
}

/// A view of an ICMPv4 message. The buffer must be exactly the message (the
/// IPv4 payload): the checksum covers all of it.
///
/// ```text
///  0        8        16                32
/// +--------+--------+------------------+
/// |  type  |  code  |     checksum     |
/// +--------+--------+------------------+
/// |  rest of header (echo: ident, seq) |
/// +------------------------------------+
/// |  data …                            |
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv4Packet<T> {
    buffer: T,
}

impl<T> Icmpv4Packet<T> {
    /// Length of the ICMP header (type, code, checksum, 4-byte rest of
    /// header), common to all message types.
    pub const HEADER_LEN: usize = f::PAYLOAD;
    /// Message type "echo reply".
    pub const ECHO_REPLY: u8 = 0;
    /// Message type "destination unreachable".
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Message type "echo request".
    pub const ECHO_REQUEST: u8 = 8;
    /// Message type "time exceeded".
    pub const TIME_EXCEEDED: u8 = 11;

    /// Wraps `buffer` without validation (for emitting). Fixed-field
    /// accessors panic if `buffer` is shorter than [`Self::HEADER_LEN`].
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
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

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps `buffer` after checking it holds the 8-byte header
    /// ([`Error::Truncated`] otherwise). No accessor can panic afterwards.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The validation performed by [`Self::new_checked`].
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < Self::HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Message type ([`Self::ECHO_REQUEST`], …).
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[f::TYPE]
    }

    /// Message code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[f::CODE]
    }

    /// Checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::CHECKSUM)
    }

    /// The type-specific 4-byte "rest of header" word.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        field::get_u32(self.buffer.as_ref(), f::REST)
    }

    /// Echo identifier (echo request/reply).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::ECHO_IDENT)
    }

    /// Echo sequence number (echo request/reply).
    #[inline]
    pub fn echo_seq(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::ECHO_SEQ)
    }

    /// Message data after the 8-byte header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        field::clamp(b, f::PAYLOAD, b.len())
    }

    /// Whether the checksum over the whole buffer is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets the message type.
    #[inline]
    pub fn set_msg_type(&mut self, t: u8) {
        self.buffer.as_mut()[f::TYPE] = t
    }

    /// Sets the code.
    #[inline]
    pub fn set_code(&mut self, code: u8) {
        self.buffer.as_mut()[f::CODE] = code
    }

    /// Sets the stored checksum.
    #[inline]
    pub fn set_checksum(&mut self, csum: u16) {
        field::set_u16(self.buffer.as_mut(), f::CHECKSUM, csum)
    }

    /// Sets the 4-byte "rest of header" word.
    #[inline]
    pub fn set_rest_of_header(&mut self, v: u32) {
        field::set_u32(self.buffer.as_mut(), f::REST, v)
    }

    /// Sets the echo identifier.
    #[inline]
    pub fn set_echo_ident(&mut self, id: u16) {
        field::set_u16(self.buffer.as_mut(), f::ECHO_IDENT, id)
    }

    /// Sets the echo sequence number.
    #[inline]
    pub fn set_echo_seq(&mut self, seq: u16) {
        field::set_u16(self.buffer.as_mut(), f::ECHO_SEQ, seq)
    }

    /// Mutable message data.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let b = self.buffer.as_mut();
        let len = b.len();
        field::clamp_mut(b, f::PAYLOAD, len)
    }

    /// Computes and stores the checksum over the whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c)
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Icmpv4Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::Ipv4Packet;

    /// IPv4 + ICMP echo request in the exact layout sent by iputils
    /// `ping 8.8.8.8` on Linux from 192.168.1.100: ident 0x0f2a, seq 1,
    /// 8-byte timeval then the 0x10.. pattern; IPv4 checksum 0x0b52, ICMP
    /// checksum 0x51e3.
    pub(crate) const PING_IP: [u8; 84] = [
        0x45, 0x00, 0x00, 0x54, 0x5d, 0x3b, 0x40, 0x00, 0x40, 0x01, 0x0b, 0x52, 0xc0, 0xa8, 0x01,
        0x64, //
        0x08, 0x08, 0x08, 0x08, 0x08, 0x00, 0x51, 0xe3, 0x0f, 0x2a, 0x00, 0x01, 0xd2, 0xe3, 0xab,
        0x65, //
        0x00, 0x00, 0x00, 0x00, 0x4f, 0xd5, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12,
        0x13, //
        0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22,
        0x23, //
        0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32,
        0x33, //
        0x34, 0x35, 0x36, 0x37,
    ];

    #[test]
    fn parse_real_echo() {
        let ip = Ipv4Packet::new_checked(&PING_IP[..]).unwrap();
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(icmp.msg_type(), Icmpv4Packet::<&[u8]>::ECHO_REQUEST);
        assert_eq!(icmp.code(), 0);
        assert_eq!(icmp.checksum(), 0x51e3);
        assert_eq!(icmp.echo_ident(), 0x0f2a);
        assert_eq!(icmp.echo_seq(), 1);
        assert_eq!(icmp.rest_of_header(), 0x0f2a_0001);
        assert_eq!(icmp.header_len(), 8);
        assert_eq!(icmp.payload().len(), 56);
        assert_eq!(icmp.payload()[16..], (0x10u8..0x38).collect::<Vec<_>>()[..]);
        assert!(icmp.verify_checksum());
        assert_eq!(
            Icmpv4Packet::new_checked(&ip.payload()[..7]),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn echo_reply_incremental_equals_full() {
        let mut buf = PING_IP;
        let mut icmp = Icmpv4Packet::new_unchecked(&mut buf[20..]);
        icmp.set_msg_type(Icmpv4Packet::<&[u8]>::ECHO_REPLY);
        let inc = checksum::update_u16(icmp.checksum(), 0x0800, 0x0000);
        icmp.fill_checksum();
        assert_eq!(icmp.checksum(), inc);
        assert!(icmp.verify_checksum());
        assert_eq!(icmp.checksum(), 0x59e3);
    }

    #[test]
    fn emit() {
        let mut buf = [0u8; 12];
        let mut icmp = Icmpv4Packet::new_unchecked(&mut buf[..]);
        icmp.set_msg_type(Icmpv4Packet::<&[u8]>::ECHO_REQUEST);
        icmp.set_code(0);
        icmp.set_echo_ident(0xbeef);
        icmp.set_echo_seq(7);
        icmp.payload_mut().copy_from_slice(b"ping");
        icmp.fill_checksum();
        assert!(icmp.verify_checksum());
        icmp.set_rest_of_header(0x0102_0304);
        assert_eq!((icmp.echo_ident(), icmp.echo_seq()), (0x0102, 0x0304));
        icmp.set_msg_type(Icmpv4Packet::<&[u8]>::TIME_EXCEEDED);
        icmp.set_code(1);
        assert_eq!(&buf[..2], &[11, 1]);
        assert_eq!(&buf[8..], b"ping");
    }
}
