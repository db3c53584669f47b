//! Ethernet II frames and IEEE 802.1Q / 802.1ad VLAN tags.

use crate::field::{self, Field};
use crate::{ethertype, Error, MacAddr, Result};

mod eth {
    use super::Field;
    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    pub const PAYLOAD: usize = 14;
}

/// A view of an Ethernet II frame (without preamble or FCS).
///
/// ```text
///  0                   6                  12       14
/// +-------------------+-------------------+--------+---------
/// |  destination MAC  |    source MAC     |  type  | payload
/// +-------------------+-------------------+--------+---------
/// ```
///
/// If the EtherType is [`ethertype::VLAN`] or [`ethertype::QINQ`], the payload
/// starts with a [`VlanHeader`]; [`ethernet_l3`] skips up to two of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T> {
    buffer: T,
}

impl<T> EthernetFrame<T> {
    /// Length of the Ethernet II header: two MACs and the EtherType.
    pub const HEADER_LEN: usize = eth::PAYLOAD;

    /// Wraps `buffer` without validation (for emitting). Fixed-field
    /// accessors panic if `buffer` is shorter than [`Self::HEADER_LEN`].
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The header length, always [`Self::HEADER_LEN`].
    pub const fn header_len(&self) -> usize {
        Self::HEADER_LEN
    }

    /// The buffer length needed for a frame carrying `payload_len` bytes.
    pub const fn buffer_len(payload_len: usize) -> usize {
        Self::HEADER_LEN + payload_len
    }
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` after checking it holds at least the 14-byte header
    /// ([`Error::Truncated`] otherwise). No accessor can panic afterwards.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Checks the buffer is long enough for the header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < Self::HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Destination MAC address.
    #[inline]
    pub fn dst(&self) -> MacAddr {
        field::get_mac(self.buffer.as_ref(), eth::DST)
    }

    /// Source MAC address.
    #[inline]
    pub fn src(&self) -> MacAddr {
        field::get_mac(self.buffer.as_ref(), eth::SRC)
    }

    /// The EtherType (or, below 0x0600, an IEEE 802.3 length).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), eth::ETHERTYPE)
    }

    /// Everything after the 14-byte header (including any VLAN tags and any
    /// trailing Ethernet padding). Empty if the buffer is shorter.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        field::clamp(b, eth::PAYLOAD, b.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC address.
    #[inline]
    pub fn set_dst(&mut self, mac: MacAddr) {
        field::set_mac(self.buffer.as_mut(), eth::DST, mac)
    }

    /// Sets the source MAC address.
    #[inline]
    pub fn set_src(&mut self, mac: MacAddr) {
        field::set_mac(self.buffer.as_mut(), eth::SRC, mac)
    }

    /// Sets the EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, ethertype: u16) {
        field::set_u16(self.buffer.as_mut(), eth::ETHERTYPE, ethertype)
    }

    /// Mutable payload (everything after the header).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let b = self.buffer.as_mut();
        let len = b.len();
        field::clamp_mut(b, eth::PAYLOAD, len)
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for EthernetFrame<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

mod vlan {
    use super::Field;
    pub const TCI: Field = 0..2;
    pub const ETHERTYPE: Field = 2..4;
    pub const PAYLOAD: usize = 4;
}

/// A view of an IEEE 802.1Q tag as it appears in the payload of an
/// [`EthernetFrame`] whose EtherType is [`ethertype::VLAN`] (or
/// [`ethertype::QINQ`]): the tag control information followed by the
/// EtherType of what the tag encapsulates.
///
/// ```text
///  0     3   4            16               32
/// +-----+---+-------------+----------------+---------
/// | PCP |DEI|     VID     | inner EtherType| payload
/// +-----+---+-------------+----------------+---------
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanHeader<T> {
    buffer: T,
}

impl<T> VlanHeader<T> {
    /// Length of the tag as seen from the Ethernet payload (TCI + EtherType).
    pub const HEADER_LEN: usize = vlan::PAYLOAD;

    /// Wraps `buffer` without validation. Fixed-field accessors panic if
    /// `buffer` is shorter than [`Self::HEADER_LEN`].
    pub const fn new_unchecked(buffer: T) -> Self {
        VlanHeader { buffer }
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

impl<T: AsRef<[u8]>> VlanHeader<T> {
    /// Wraps `buffer` after checking it holds the 4-byte tag
    /// ([`Error::Truncated`] otherwise). No accessor can panic afterwards.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let v = Self::new_unchecked(buffer);
        v.check_len()?;
        Ok(v)
    }

    /// Checks the buffer is long enough for the tag.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < Self::HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// The raw 16-bit tag control information.
    #[inline]
    pub fn tci(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), vlan::TCI)
    }

    /// Priority code point (802.1p class, 0–7).
    #[inline]
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// Drop eligible indicator.
    #[inline]
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// VLAN identifier (0–4095).
    #[inline]
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// The EtherType of the encapsulated payload.
    #[inline]
    pub fn inner_ethertype(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), vlan::ETHERTYPE)
    }

    /// Everything after the tag.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        field::clamp(b, vlan::PAYLOAD, b.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanHeader<T> {
    /// Sets the raw tag control information.
    #[inline]
    pub fn set_tci(&mut self, tci: u16) {
        field::set_u16(self.buffer.as_mut(), vlan::TCI, tci)
    }

    /// Sets the priority code point (only the low 3 bits of `pcp` are used).
    #[inline]
    pub fn set_pcp(&mut self, pcp: u8) {
        let tci = (self.tci() & 0x1fff) | (u16::from(pcp & 0x7) << 13);
        self.set_tci(tci)
    }

    /// Sets the drop eligible indicator.
    #[inline]
    pub fn set_dei(&mut self, dei: bool) {
        let tci = (self.tci() & !0x1000) | if dei { 0x1000 } else { 0 };
        self.set_tci(tci)
    }

    /// Sets the VLAN identifier (only the low 12 bits of `vid` are used).
    #[inline]
    pub fn set_vid(&mut self, vid: u16) {
        let tci = (self.tci() & 0xf000) | (vid & 0x0fff);
        self.set_tci(tci)
    }

    /// Sets the EtherType of the encapsulated payload.
    #[inline]
    pub fn set_inner_ethertype(&mut self, ethertype: u16) {
        field::set_u16(self.buffer.as_mut(), vlan::ETHERTYPE, ethertype)
    }

    /// Mutable payload (everything after the tag).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let b = self.buffer.as_mut();
        let len = b.len();
        field::clamp_mut(b, vlan::PAYLOAD, len)
    }
}

/// Finds the network layer of an Ethernet frame, skipping zero, one or two
/// VLAN tags (802.1Q `0x8100` and/or 802.1ad `0x88a8`, in any order).
///
/// Returns `(ethertype, l3_offset, outer_vid)`: the EtherType of the network
/// layer, the byte offset where it starts in `frame` (which may equal
/// `frame.len()` for an empty payload), and the VID of the outermost tag if
/// there was one.
///
/// Errors: [`Error::Truncated`] if the header or a tag is cut short,
/// [`Error::Unsupported`] if a third tag follows.
pub fn ethernet_l3(frame: &[u8]) -> Result<(u16, usize, Option<u16>)> {
    let eth = EthernetFrame::new_checked(frame)?;
    let mut et = eth.ethertype();
    let mut off = EthernetFrame::<&[u8]>::HEADER_LEN;
    let mut outer = None;
    for _ in 0..2 {
        if et != ethertype::VLAN && et != ethertype::QINQ {
            return Ok((et, off, outer));
        }
        let tag = VlanHeader::new_checked(frame.get(off..).ok_or(Error::Truncated)?)?;
        outer.get_or_insert(tag.vid());
        et = tag.inner_ethertype();
        off += VlanHeader::<&[u8]>::HEADER_LEN;
    }
    if et == ethertype::VLAN || et == ethertype::QINQ {
        return Err(Error::Unsupported);
    }
    Ok((et, off, outer))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Start of a real frame: an ARP request from 52:54:00:12:34:56,
    /// broadcast.
    const ETH_ARP: [u8; 14] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // src
        0x08, 0x06, // ARP
    ];

    #[test]
    fn parse_fields() {
        let f = EthernetFrame::new_checked(&ETH_ARP[..]).unwrap();
        assert_eq!(f.dst(), MacAddr::BROADCAST);
        assert_eq!(f.src(), MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]));
        assert_eq!(f.ethertype(), ethertype::ARP);
        assert_eq!(f.payload(), &[] as &[u8]);
        assert_eq!(f.header_len(), 14);
        assert_eq!(
            EthernetFrame::new_checked(&ETH_ARP[..13]),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn emit_roundtrip() {
        let mut buf = [0u8; 18];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        f.set_dst(MacAddr([1, 2, 3, 4, 5, 6]));
        f.set_src(MacAddr([7, 8, 9, 10, 11, 12]));
        f.set_ethertype(ethertype::IPV4);
        f.payload_mut().copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(
            buf,
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef]
        );
    }

    #[test]
    fn vlan_fields() {
        // PCP 5, DEI 1, VID 0x123, inner IPv4.
        let mut b = [0xb1, 0x23, 0x08, 0x00, 0x45];
        let v = VlanHeader::new_checked(&b[..]).unwrap();
        assert_eq!(
            (v.pcp(), v.dei(), v.vid(), v.inner_ethertype()),
            (5, true, 0x123, ethertype::IPV4)
        );
        assert_eq!(v.payload(), &[0x45]);
        let mut v = VlanHeader::new_unchecked(&mut b[..]);
        v.set_pcp(3);
        v.set_dei(false);
        v.set_vid(0xfff);
        v.set_inner_ethertype(ethertype::ARP);
        assert_eq!(
            (v.pcp(), v.dei(), v.vid(), v.inner_ethertype()),
            (3, false, 0xfff, ethertype::ARP)
        );
        v.set_vid(0x1001); // only 12 bits are kept
        assert_eq!((v.pcp(), v.vid()), (3, 1));
        assert_eq!(VlanHeader::new_checked(&b[..3]), Err(Error::Truncated));
    }

    /// `[macs][tpid0][tci0][tpid1][tci1]..[inner type][2 payload bytes]`.
    fn frame(tags: &[(u16, u16)], inner: u16) -> Vec<u8> {
        let mut out = vec![0u8; 12];
        for &(tpid, tci) in tags {
            out.extend_from_slice(&tpid.to_be_bytes());
            out.extend_from_slice(&tci.to_be_bytes());
        }
        out.extend_from_slice(&inner.to_be_bytes());
        out.extend_from_slice(&[0x45, 0]);
        out
    }

    #[test]
    fn l3_untagged_single_double_triple() {
        assert_eq!(
            ethernet_l3(&frame(&[], ethertype::IPV4)),
            Ok((ethertype::IPV4, 14, None))
        );
        assert_eq!(
            ethernet_l3(&frame(&[(ethertype::VLAN, 0x2064)], ethertype::ARP)),
            Ok((ethertype::ARP, 18, Some(100)))
        );
        assert_eq!(
            ethernet_l3(&frame(
                &[(ethertype::QINQ, 0x000a), (ethertype::VLAN, 0x0014)],
                ethertype::IPV6
            )),
            Ok((ethertype::IPV6, 22, Some(10)))
        );
        assert_eq!(
            ethernet_l3(&frame(
                &[
                    (ethertype::QINQ, 1),
                    (ethertype::VLAN, 2),
                    (ethertype::VLAN, 3)
                ],
                ethertype::IPV4
            )),
            Err(Error::Unsupported)
        );
        // Truncated inside a tag, and a tag followed by nothing at all.
        let f = frame(&[(ethertype::VLAN, 7)], ethertype::IPV4);
        assert_eq!(ethernet_l3(&f[..17]), Err(Error::Truncated));
        assert_eq!(ethernet_l3(&f[..14]), Err(Error::Truncated));
        assert_eq!(ethernet_l3(&f[..18]), Ok((ethertype::IPV4, 18, Some(7))));
        assert_eq!(ethernet_l3(&f[..5]), Err(Error::Truncated));
    }
}
