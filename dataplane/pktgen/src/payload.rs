//! The generator's payload header and the receive-side parser.
//!
//! Every generated frame carries, right after its UDP or TCP header, an
//! 18-byte header (all big-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `QSPG` (`0x5153_5047`) |
//! | 4 | 2 | stream id |
//! | 6 | 4 | sequence number within the stream (wraps) |
//! | 10 | 8 | TX timestamp (TSC cycles of the sending lcore) |
//!
//! 18 bytes is what fits a 64-byte UDP frame (60 B + FCS).

use qsplice_wire::{ethernet_l3, ethertype, ip_proto, Ipv4Packet, TcpPacket, UdpPacket};

/// `QSPG`.
pub const MAGIC: u32 = 0x5153_5047;
/// Bytes of the payload header.
pub const HEADER_LEN: usize = 18;
/// Offset of the stream id in the header.
pub const OFF_STREAM: usize = 4;
/// Offset of the sequence number in the header.
pub const OFF_SEQ: usize = 6;
/// Offset of the TX timestamp in the header.
pub const OFF_TSC: usize = 10;

/// The parsed payload header of one received generator frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxHeader {
    /// Stream id.
    pub stream: u16,
    /// Sequence number (32-bit, wraps).
    pub seq: u32,
    /// TSC at transmission.
    pub tsc: u64,
}

/// Why a received frame is not a generator frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxError {
    /// Not IPv4 (ARP, IPv6, …) or a bad Ethernet/VLAN header.
    NotIpv4,
    /// IPv4 header invalid, or a fragment.
    BadIpv4,
    /// Neither UDP nor TCP.
    NotUdpTcp,
    /// L4 header truncated.
    BadL4,
    /// Payload shorter than the header or without the magic.
    NoMagic,
}

impl RxError {
    /// Stable counter name.
    pub fn as_str(self) -> &'static str {
        match self {
            RxError::NotIpv4 => "rx_not_ipv4",
            RxError::BadIpv4 => "rx_bad_ipv4",
            RxError::NotUdpTcp => "rx_not_udp_tcp",
            RxError::BadL4 => "rx_bad_l4",
            RxError::NoMagic => "rx_no_magic",
        }
    }
}

/// Writes the payload header into `buf[..HEADER_LEN]` (panics if shorter:
/// emit-side programming error).
pub fn write_header(buf: &mut [u8], stream: u16, seq: u32, tsc: u64) {
    buf[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    buf[OFF_STREAM..OFF_STREAM + 2].copy_from_slice(&stream.to_be_bytes());
    buf[OFF_SEQ..OFF_SEQ + 4].copy_from_slice(&seq.to_be_bytes());
    buf[OFF_TSC..OFF_TSC + 8].copy_from_slice(&tsc.to_be_bytes());
}

/// Parses the payload header of a payload (the bytes after the L4 header).
pub fn parse_payload(p: &[u8]) -> Result<RxHeader, RxError> {
    let h = p.get(..HEADER_LEN).ok_or(RxError::NoMagic)?;
    let word = |r: core::ops::Range<usize>| h.get(r).unwrap_or(&[]);
    let m = u32::from_be_bytes(word(0..4).try_into().map_err(|_| RxError::NoMagic)?);
    if m != MAGIC {
        return Err(RxError::NoMagic);
    }
    let stream = u16::from_be_bytes(word(4..6).try_into().map_err(|_| RxError::NoMagic)?);
    let seq = u32::from_be_bytes(word(6..10).try_into().map_err(|_| RxError::NoMagic)?);
    let tsc = u64::from_be_bytes(word(10..18).try_into().map_err(|_| RxError::NoMagic)?);
    Ok(RxHeader { stream, seq, tsc })
}

/// Parses a whole received Ethernet frame (up to two VLAN tags, IPv4, UDP
/// or TCP) down to the payload header. Never panics.
pub fn parse_frame(frame: &[u8]) -> Result<RxHeader, RxError> {
    let (et, off, _) = ethernet_l3(frame).map_err(|_| RxError::NotIpv4)?;
    if et != ethertype::IPV4 {
        return Err(RxError::NotIpv4);
    }
    let ip = Ipv4Packet::new_checked(frame.get(off..).ok_or(RxError::NotIpv4)?)
        .map_err(|_| RxError::BadIpv4)?;
    if ip.is_fragment() {
        return Err(RxError::BadIpv4);
    }
    match ip.protocol() {
        ip_proto::UDP => {
            let u = UdpPacket::new_checked(ip.payload()).map_err(|_| RxError::BadL4)?;
            parse_payload(u.payload())
        }
        ip_proto::TCP => {
            let t = TcpPacket::new_checked(ip.payload()).map_err(|_| RxError::BadL4)?;
            parse_payload(t.payload())
        }
        _ => Err(RxError::NotUdpTcp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let mut b = [0u8; HEADER_LEN];
        write_header(&mut b, 7, 0xdead_beef, 0x0102_0304_0506_0708);
        assert_eq!(
            parse_payload(&b),
            Ok(RxHeader {
                stream: 7,
                seq: 0xdead_beef,
                tsc: 0x0102_0304_0506_0708
            })
        );
        assert_eq!(parse_payload(&b[..17]), Err(RxError::NoMagic));
        b[0] ^= 1;
        assert_eq!(parse_payload(&b), Err(RxError::NoMagic));
    }
}
