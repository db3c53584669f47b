//! ARP (RFC 826) for IPv4 over Ethernet.

use core::net::Ipv4Addr;

use crate::field::{self, Field};
use crate::{ethertype, Error, MacAddr, Result};

mod f {
    use super::Field;
    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
    pub const END: usize = 28;
}

/// ARP operation codes, as returned by [`ArpPacket::operation`] and stored in
/// [`ArpRepr::op`]. A namespace for constants; other values are possible on
/// the wire (RARP, InARP, …) and are passed through as plain `u16`.
#[derive(Debug)]
pub enum ArpOp {}

impl ArpOp {
    /// ARP request ("who-has").
    pub const REQUEST: u16 = 1;
    /// ARP reply ("is-at").
    pub const REPLY: u16 = 2;
}

/// Hardware type "Ethernet (10 Mb)".
const HTYPE_ETHERNET: u16 = 1;

/// A view of an ARP packet for IPv4 over Ethernet (the only variant this
/// crate handles).
///
/// ```text
///  0        2        4    5    6        8
/// +--------+--------+----+----+--------+
/// | htype  | ptype  |hlen|plen|  oper  |
/// +--------+--------+----+----+--------+------------+
/// |   sender MAC (6)          | sender IPv4 (4)     |
/// +---------------------------+---------------------+
/// |   target MAC (6)          | target IPv4 (4)     |   28 bytes
/// +---------------------------+---------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket<T> {
    buffer: T,
}

impl<T> ArpPacket<T> {
    /// Length of an Ethernet/IPv4 ARP packet.
    pub const LEN: usize = f::END;
    /// Same as [`Self::LEN`] (the whole packet is header).
    pub const HEADER_LEN: usize = f::END;

    /// Wraps `buffer` without validation (for emitting). Accessors panic if
    /// `buffer` is shorter than [`Self::LEN`].
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The packet length, always [`Self::LEN`].
    pub const fn header_len(&self) -> usize {
        Self::LEN
    }
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps `buffer` after validating it. No accessor can panic afterwards.
    ///
    /// Errors: [`Error::Truncated`] if shorter than the 8-byte fixed part or
    /// than [`Self::LEN`]; [`Error::Unsupported`] unless hardware type is 1
    /// (Ethernet), protocol type 0x0800, hardware length 6 and protocol
    /// length 4. Bytes past [`Self::LEN`] (Ethernet padding) are ignored.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The validation performed by [`Self::new_checked`].
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < f::OPER.start {
            return Err(Error::Truncated);
        }
        if field::get_u16(b, f::HTYPE) != HTYPE_ETHERNET
            || field::get_u16(b, f::PTYPE) != ethertype::IPV4
            || b[f::HLEN] != 6
            || b[f::PLEN] != 4
        {
            return Err(Error::Unsupported);
        }
        if b.len() < f::END {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Hardware type (1 = Ethernet).
    #[inline]
    pub fn hardware_type(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::HTYPE)
    }

    /// Protocol type (an EtherType, 0x0800 = IPv4).
    #[inline]
    pub fn protocol_type(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::PTYPE)
    }

    /// Hardware address length in bytes.
    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[f::HLEN]
    }

    /// Protocol address length in bytes.
    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[f::PLEN]
    }

    /// Operation ([`ArpOp::REQUEST`], [`ArpOp::REPLY`], or anything else).
    #[inline]
    pub fn operation(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::OPER)
    }

    /// Sender hardware address.
    #[inline]
    pub fn sender_mac(&self) -> MacAddr {
        field::get_mac(self.buffer.as_ref(), f::SHA)
    }

    /// Sender protocol address.
    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        field::get_ipv4(self.buffer.as_ref(), f::SPA)
    }

    /// Target hardware address (usually zero in requests).
    #[inline]
    pub fn target_mac(&self) -> MacAddr {
        field::get_mac(self.buffer.as_ref(), f::THA)
    }

    /// Target protocol address.
    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        field::get_ipv4(self.buffer.as_ref(), f::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the hardware type.
    #[inline]
    pub fn set_hardware_type(&mut self, v: u16) {
        field::set_u16(self.buffer.as_mut(), f::HTYPE, v)
    }

    /// Sets the protocol type.
    #[inline]
    pub fn set_protocol_type(&mut self, v: u16) {
        field::set_u16(self.buffer.as_mut(), f::PTYPE, v)
    }

    /// Sets the hardware address length.
    #[inline]
    pub fn set_hardware_len(&mut self, v: u8) {
        self.buffer.as_mut()[f::HLEN] = v
    }

    /// Sets the protocol address length.
    #[inline]
    pub fn set_protocol_len(&mut self, v: u8) {
        self.buffer.as_mut()[f::PLEN] = v
    }

    /// Sets the operation.
    #[inline]
    pub fn set_operation(&mut self, op: u16) {
        field::set_u16(self.buffer.as_mut(), f::OPER, op)
    }

    /// Sets the sender hardware address.
    #[inline]
    pub fn set_sender_mac(&mut self, mac: MacAddr) {
        field::set_mac(self.buffer.as_mut(), f::SHA, mac)
    }

    /// Sets the sender protocol address.
    #[inline]
    pub fn set_sender_ip(&mut self, ip: Ipv4Addr) {
        field::set_ipv4(self.buffer.as_mut(), f::SPA, ip)
    }

    /// Sets the target hardware address.
    #[inline]
    pub fn set_target_mac(&mut self, mac: MacAddr) {
        field::set_mac(self.buffer.as_mut(), f::THA, mac)
    }

    /// Sets the target protocol address.
    #[inline]
    pub fn set_target_ip(&mut self, ip: Ipv4Addr) {
        field::set_ipv4(self.buffer.as_mut(), f::TPA, ip)
    }
}

/// A parsed Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Operation ([`ArpOp::REQUEST`], [`ArpOp::REPLY`], …).
    pub op: u16,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Parses a packet, validating it as [`ArpPacket::new_checked`] does (so
    /// a view from `new_unchecked` is fine too). The operation is not
    /// restricted to request/reply.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr> {
        packet.check_len()?;
        Ok(ArpRepr {
            op: packet.operation(),
            sender_mac: packet.sender_mac(),
            sender_ip: packet.sender_ip(),
            target_mac: packet.target_mac(),
            target_ip: packet.target_ip(),
        })
    }

    /// Bytes needed to emit this packet ([`ArpPacket::LEN`]).
    pub const fn buffer_len(&self) -> usize {
        f::END
    }

    /// Writes the complete packet, including the fixed Ethernet/IPv4
    /// hardware and protocol type/length fields.
    ///
    /// # Panics
    /// If the packet's buffer is shorter than [`ArpPacket::LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        packet.set_hardware_type(HTYPE_ETHERNET);
        packet.set_protocol_type(ethertype::IPV4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.op);
        packet.set_sender_mac(self.sender_mac);
        packet.set_sender_ip(self.sender_ip);
        packet.set_target_mac(self.target_mac);
        packet.set_target_ip(self.target_ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EthernetFrame;

    /// A real ARP request as captured on a LAN: "who-has 192.168.1.1 tell
    /// 192.168.1.100" from 00:1c:42:b8:f3:2a, padded to the 60-byte Ethernet
    /// minimum.
    const ARP_REQUEST_FRAME: [u8; 60] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x1c, 0x42, 0xb8, 0xf3, 0x2a, 0x08,
        0x06, // ethernet
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype ptype hlen plen oper
        0x00, 0x1c, 0x42, 0xb8, 0xf3, 0x2a, 0xc0, 0xa8, 0x01, 0x64, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xa8, 0x01, 0x01, // target
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // padding
    ];

    #[test]
    fn parse_real_request() {
        let eth = EthernetFrame::new_checked(&ARP_REQUEST_FRAME[..]).unwrap();
        assert_eq!(eth.ethertype(), ethertype::ARP);
        let arp = ArpPacket::new_checked(eth.payload()).unwrap();
        assert_eq!(arp.hardware_type(), 1);
        assert_eq!(arp.protocol_type(), 0x0800);
        assert_eq!(arp.hardware_len(), 6);
        assert_eq!(arp.protocol_len(), 4);
        assert_eq!(arp.operation(), ArpOp::REQUEST);
        assert_eq!(
            arp.sender_mac(),
            MacAddr([0x00, 0x1c, 0x42, 0xb8, 0xf3, 0x2a])
        );
        assert_eq!(arp.sender_ip(), Ipv4Addr::new(192, 168, 1, 100));
        assert_eq!(arp.target_mac(), MacAddr::ZERO);
        assert_eq!(arp.target_ip(), Ipv4Addr::new(192, 168, 1, 1));
        assert_eq!(arp.header_len(), ArpPacket::<&[u8]>::LEN);
        let repr = ArpRepr::parse(&arp).unwrap();
        assert_eq!(
            repr,
            ArpRepr {
                op: ArpOp::REQUEST,
                sender_mac: MacAddr([0x00, 0x1c, 0x42, 0xb8, 0xf3, 0x2a]),
                sender_ip: Ipv4Addr::new(192, 168, 1, 100),
                target_mac: MacAddr::ZERO,
                target_ip: Ipv4Addr::new(192, 168, 1, 1),
            }
        );
        // Emitting the repr reproduces the wire bytes.
        let mut out = [0xaau8; 28];
        repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
        assert_eq!(&out[..], &ARP_REQUEST_FRAME[14..42]);
    }

    #[test]
    fn reply_in_place() {
        let mut buf = ARP_REQUEST_FRAME;
        let mut arp = ArpPacket::new_unchecked(&mut buf[14..]);
        let me = MacAddr([0x02, 0, 0, 0, 0, 1]);
        let (smac, sip, tip) = (arp.sender_mac(), arp.sender_ip(), arp.target_ip());
        arp.set_operation(ArpOp::REPLY);
        arp.set_target_mac(smac);
        arp.set_target_ip(sip);
        arp.set_sender_mac(me);
        arp.set_sender_ip(tip);
        let r = ArpRepr::parse(&ArpPacket::new_checked(&buf[14..]).unwrap()).unwrap();
        assert_eq!(r.op, ArpOp::REPLY);
        assert_eq!(
            (r.sender_mac, r.sender_ip, r.target_mac, r.target_ip),
            (me, tip, smac, sip)
        );
    }

    #[test]
    fn validation() {
        let p = &ARP_REQUEST_FRAME[14..42];
        assert!(ArpPacket::new_checked(p).is_ok());
        assert_eq!(ArpPacket::new_checked(&p[..27]), Err(Error::Truncated));
        assert_eq!(ArpPacket::new_checked(&p[..7]), Err(Error::Truncated));
        for (i, v) in [(1, 6u8), (2, 0x86), (4, 16), (5, 16)] {
            let mut b = [0u8; 28];
            b.copy_from_slice(p);
            b[i] = v;
            assert_eq!(
                ArpPacket::new_checked(&b[..]),
                Err(Error::Unsupported),
                "byte {i}"
            );
            // Unsupported is reported even when the rest is cut short.
            assert_eq!(
                ArpPacket::new_checked(&b[..10]),
                Err(Error::Unsupported),
                "byte {i}"
            );
        }
        let un = ArpPacket::new_unchecked(&p[..10]);
        assert_eq!(ArpRepr::parse(&un), Err(Error::Truncated));
    }
}
