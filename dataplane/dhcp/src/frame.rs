//! Ethernet (+ optional 802.1Q tag) / IPv4 / UDP framing of DHCP messages,
//! with the IPv4 header and UDP checksums, built on `qsplice_wire`'s views.

use core::fmt;
use core::net::Ipv4Addr;

use qsplice_wire::{
    ethertype, ip_proto, EthernetFrame, Ipv4Packet, MacAddr, UdpPacket, VlanHeader,
};

use crate::wire::{CLIENT_PORT, SERVER_PORT};

/// Why a frame is not a usable DHCP datagram. [`FrameError::as_str`] names
/// are stable counter names.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum FrameError {
    /// Cut short in the Ethernet header or a VLAN tag.
    Truncated,
    /// More than two VLAN tags.
    TooManyVlanTags,
    /// Not IPv4.
    NotIpv4,
    /// IPv4 header invalid (version, IHL, total length).
    BadIpHeader,
    /// IPv4 header checksum wrong.
    BadIpChecksum,
    /// An IP fragment.
    Fragmented,
    /// Not UDP.
    NotUdp,
    /// UDP length field below 8 or past the IP payload.
    BadUdpLength,
    /// UDP checksum wrong.
    BadUdpChecksum,
    /// Neither port is a DHCP port (67/68), or the destination port is not.
    NotDhcpPort,
    /// The output buffer is too small (emit only).
    BufferTooSmall,
}

impl FrameError {
    /// All variants, in declaration order.
    pub const ALL: [FrameError; 11] = [
        FrameError::Truncated,
        FrameError::TooManyVlanTags,
        FrameError::NotIpv4,
        FrameError::BadIpHeader,
        FrameError::BadIpChecksum,
        FrameError::Fragmented,
        FrameError::NotUdp,
        FrameError::BadUdpLength,
        FrameError::BadUdpChecksum,
        FrameError::NotDhcpPort,
        FrameError::BufferTooSmall,
    ];

    /// Stable `snake_case` name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            FrameError::Truncated => "frame_truncated",
            FrameError::TooManyVlanTags => "too_many_vlan_tags",
            FrameError::NotIpv4 => "not_ipv4",
            FrameError::BadIpHeader => "bad_ip_header",
            FrameError::BadIpChecksum => "bad_ip_checksum",
            FrameError::Fragmented => "fragmented",
            FrameError::NotUdp => "not_udp",
            FrameError::BadUdpLength => "bad_udp_length",
            FrameError::BadUdpChecksum => "bad_udp_checksum",
            FrameError::NotDhcpPort => "not_dhcp_port",
            FrameError::BufferTooSmall => "frame_buffer_too_small",
        }
    }

    /// Index in [`FrameError::ALL`].
    pub const fn index(&self) -> usize {
        *self as usize
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for FrameError {}

/// The L2–L4 facts of a received DHCP frame.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct FrameMeta {
    /// Ethernet source.
    pub src_mac: MacAddr,
    /// Ethernet destination.
    pub dst_mac: MacAddr,
    /// VID of the outermost VLAN tag, if any.
    pub vlan: Option<u16>,
    /// IPv4 source.
    pub src_ip: Ipv4Addr,
    /// IPv4 destination.
    pub dst_ip: Ipv4Addr,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
}

/// A parsed frame: metadata and where the DHCP message is.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct ParsedFrame {
    /// L2–L4 metadata.
    pub meta: FrameMeta,
    /// Offset of the DHCP message (UDP payload) in the frame.
    pub dhcp_offset: usize,
    /// Length of the DHCP message (UDP length − 8).
    pub dhcp_len: usize,
}

impl ParsedFrame {
    /// The DHCP message inside `frame` (the frame this was parsed from).
    pub fn dhcp<'f>(&self, frame: &'f [u8]) -> &'f [u8] {
        frame
            .get(self.dhcp_offset..self.dhcp_offset + self.dhcp_len)
            .unwrap_or(&[])
    }
}

/// Parses an Ethernet frame carrying UDP to or from a DHCP port.
///
/// Checks, in order: Ethernet/VLAN (up to two tags), EtherType IPv4, the
/// IPv4 header (version, IHL, total length; Ethernet padding is ignored),
/// its checksum, no fragmentation, protocol UDP, the UDP length, the UDP
/// checksum (0 = none is accepted), and that the destination port is 67 or
/// 68.
pub fn parse_frame(frame: &[u8]) -> Result<ParsedFrame, FrameError> {
    let (et, l3, vlan) = qsplice_wire::ethernet_l3(frame).map_err(|e| match e {
        qsplice_wire::Error::Unsupported => FrameError::TooManyVlanTags,
        _ => FrameError::Truncated,
    })?;
    if et != ethertype::IPV4 {
        return Err(FrameError::NotIpv4);
    }
    let eth = EthernetFrame::new_checked(frame).map_err(|_| FrameError::Truncated)?;
    let ip_bytes = frame.get(l3..).ok_or(FrameError::Truncated)?;
    let ip = Ipv4Packet::new_checked(ip_bytes).map_err(|_| FrameError::BadIpHeader)?;
    if !ip.verify_checksum() {
        return Err(FrameError::BadIpChecksum);
    }
    if ip.is_fragment() {
        return Err(FrameError::Fragmented);
    }
    if ip.protocol() != ip_proto::UDP {
        return Err(FrameError::NotUdp);
    }
    let udp = UdpPacket::new_checked(ip.payload()).map_err(|_| FrameError::BadUdpLength)?;
    if !udp.verify_checksum(ip.src_addr(), ip.dst_addr()) {
        return Err(FrameError::BadUdpChecksum);
    }
    let dst_port = udp.dst_port();
    if dst_port != SERVER_PORT && dst_port != CLIENT_PORT {
        return Err(FrameError::NotDhcpPort);
    }
    let dhcp_offset = l3 + usize::from(ip.header_len()) + UdpPacket::<&[u8]>::HEADER_LEN;
    Ok(ParsedFrame {
        meta: FrameMeta {
            src_mac: eth.src(),
            dst_mac: eth.dst(),
            vlan,
            src_ip: ip.src_addr(),
            dst_ip: ip.dst_addr(),
            src_port: udp.src_port(),
            dst_port,
        },
        dhcp_offset,
        dhcp_len: udp.payload().len(),
    })
}

/// The headers of a frame to send.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct FrameSpec {
    /// Ethernet source.
    pub src_mac: MacAddr,
    /// Ethernet destination.
    pub dst_mac: MacAddr,
    /// One 802.1Q tag with this VID (PCP 0), if set.
    pub vlan: Option<u16>,
    /// IPv4 source.
    pub src_ip: Ipv4Addr,
    /// IPv4 destination.
    pub dst_ip: Ipv4Addr,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// IPv4 TTL (64 unless a relay wants another).
    pub ttl: u8,
    /// IPv4 identification.
    pub ident: u16,
}

/// IPv4 header length used when emitting (no options).
const IP_LEN: usize = 20;
/// UDP header length.
const UDP_LEN: usize = 8;

impl FrameSpec {
    /// Where the DHCP message starts in the emitted frame: 42, or 46 with a
    /// VLAN tag.
    pub const fn dhcp_offset(&self) -> usize {
        14 + if self.vlan.is_some() { 4 } else { 0 } + IP_LEN + UDP_LEN
    }

    /// Writes the Ethernet, VLAN, IPv4 and UDP headers in front of a DHCP
    /// message of `dhcp_len` bytes that the caller has already written at
    /// [`Self::dhcp_offset`], computes both checksums and returns the frame
    /// length. [`FrameError::BufferTooSmall`] if the frame does not fit (or
    /// the datagram would exceed 65,535 bytes).
    pub fn emit(&self, out: &mut [u8], dhcp_len: usize) -> Result<usize, FrameError> {
        let off = self.dhcp_offset();
        let total = off + dhcp_len;
        let ip_total = IP_LEN + UDP_LEN + dhcp_len;
        if total > out.len() || ip_total > usize::from(u16::MAX) {
            return Err(FrameError::BufferTooSmall);
        }
        let out = &mut out[..total];
        let mut eth = EthernetFrame::new_unchecked(&mut *out);
        eth.set_dst(self.dst_mac);
        eth.set_src(self.src_mac);
        let mut l3 = 14;
        if let Some(vid) = self.vlan {
            eth.set_ethertype(ethertype::VLAN);
            let mut tag = VlanHeader::new_unchecked(&mut out[14..18]);
            tag.set_tci(vid & 0x0fff);
            tag.set_inner_ethertype(ethertype::IPV4);
            l3 = 18;
        } else {
            eth.set_ethertype(ethertype::IPV4);
        }
        let ip_buf = &mut out[l3..];
        let mut ip = Ipv4Packet::new_unchecked(&mut *ip_buf);
        ip.set_version(4);
        ip.set_header_len(IP_LEN as u8);
        ip.set_dscp_ecn(0);
        ip.set_total_len(ip_total as u16);
        ip.set_ident(self.ident);
        ip.set_flags_frag(0);
        ip.set_ttl(self.ttl);
        ip.set_protocol(ip_proto::UDP);
        ip.set_src_addr(self.src_ip);
        ip.set_dst_addr(self.dst_ip);
        ip.fill_checksum();
        let mut udp = UdpPacket::new_unchecked(&mut ip_buf[IP_LEN..]);
        udp.set_src_port(self.src_port);
        udp.set_dst_port(self.dst_port);
        udp.set_len((UDP_LEN + dhcp_len) as u16);
        udp.fill_checksum(self.src_ip, self.dst_ip);
        Ok(total)
    }
}
