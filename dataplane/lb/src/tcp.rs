//! The few TCP segments the balancer originates itself (SYN-ACK, the
//! backend SYN, the ACK completing the backend handshake, RST) and the SYN
//! options it reads and writes.
//!
//! Everything is written into a caller's buffer (a frame taken from the
//! pool, or the received frame being answered); nothing allocates.

use std::net::{SocketAddrV4, SocketAddrV6};

use qsplice_wire::checksum;
use qsplice_wire::{
    ethertype, ip_proto, EthernetFrame, Ipv4Packet, MacAddr, TcpFlags, TcpOption, TcpPacket,
};

/// Ethernet frames are padded to this length (without FCS).
pub const MIN_FRAME: usize = 60;
/// TTL of the segments we originate.
pub const OUR_TTL: u8 = 64;
/// Low bits of our SYN-ACK TSval that carry the client's SYN options in
/// cookie mode (window scale: 4 bits, SACK permitted: 1 bit, 1 spare), as
/// Linux does: the client echoes them back in the handshake ACK's TSecr.
pub const TS_OPT_BITS: u32 = 6;
const TS_WS_NONE: u32 = 0xf;
const TS_SACK: u32 = 0x10;

/// The options of a SYN (or SYN-ACK) that matter to a connection.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SynOptions {
    /// Maximum segment size.
    pub mss: Option<u16>,
    /// Window scale shift (clamped to 14, RFC 7323 §2.3).
    pub ws: Option<u8>,
    /// SACK permitted.
    pub sack_ok: bool,
    /// Timestamps `(tsval, tsecr)`.
    pub ts: Option<(u32, u32)>,
}

impl SynOptions {
    /// Read the options area of a TCP header. A malformed option list is an
    /// error (the segment is dropped and counted).
    pub fn parse(area: &[u8]) -> Result<SynOptions, qsplice_wire::Error> {
        let mut o = SynOptions::default();
        for opt in qsplice_wire::TcpOptionsIter::new(area) {
            match opt?.1 {
                TcpOption::MaxSegmentSize(m) => o.mss = Some(m),
                TcpOption::WindowScale(s) => o.ws = Some(s.min(14)),
                TcpOption::SackPermitted => o.sack_ok = true,
                TcpOption::Timestamp { tsval, tsecr } => o.ts = Some((tsval, tsecr)),
                _ => {}
            }
        }
        Ok(o)
    }

    /// Timestamps of a non-SYN segment (malformed options: none).
    pub fn timestamps(area: &[u8]) -> Option<(u32, u32)> {
        qsplice_wire::TcpOptionsIter::new(area)
            .map_while(Result::ok)
            .find_map(|(_, o)| match o {
                TcpOption::Timestamp { tsval, tsecr } => Some((tsval, tsecr)),
                _ => None,
            })
    }
}

/// Our SYN-ACK TSval in cookie mode: the clock with the client's window
/// scale and SACK-permitted folded into the low [`TS_OPT_BITS`] bits.
pub fn encode_ts(clock: u32, ws: Option<u8>, sack_ok: bool) -> u32 {
    let ws = ws.map_or(TS_WS_NONE, |w| u32::from(w.min(14)));
    let sack = if sack_ok { TS_SACK } else { 0 };
    (clock & !((1 << TS_OPT_BITS) - 1)) | ws | sack
}

/// The client's window scale and SACK-permitted, from the TSecr of its
/// handshake ACK (see [`encode_ts`]).
pub fn decode_ts(tsecr: u32) -> (Option<u8>, bool) {
    let ws = tsecr & 0xf;
    (
        (ws != TS_WS_NONE).then(|| ws.min(14) as u8),
        tsecr & TS_SACK != 0,
    )
}

/// Write SYN options in Linux's order (MSS, SACK-permitted + TS, WS) into
/// `buf`; returns the length (a multiple of 4, at most 20).
pub fn write_syn_options(buf: &mut [u8; 40], o: &SynOptions) -> usize {
    let mut n = 0;
    if let Some(mss) = o.mss {
        n += TcpOption::MaxSegmentSize(mss).emit(&mut buf[n..]);
    }
    match (o.sack_ok, o.ts) {
        (true, Some((tsval, tsecr))) => {
            n += TcpOption::SackPermitted.emit(&mut buf[n..]);
            n += TcpOption::Timestamp { tsval, tsecr }.emit(&mut buf[n..]);
        }
        (false, Some((tsval, tsecr))) => {
            buf[n..n + 2].fill(1);
            n += 2;
            n += TcpOption::Timestamp { tsval, tsecr }.emit(&mut buf[n..]);
        }
        (true, None) => {
            buf[n..n + 2].fill(1);
            n += 2;
            n += TcpOption::SackPermitted.emit(&mut buf[n..]);
        }
        (false, None) => {}
    }
    if let Some(ws) = o.ws {
        buf[n] = 1;
        n += 1;
        n += TcpOption::WindowScale(ws).emit(&mut buf[n..]);
    }
    n
}

/// Write NOP, NOP, timestamps (12 bytes), the options of an ACK.
pub fn write_ts_option(buf: &mut [u8; 40], tsval: u32, tsecr: u32) -> usize {
    buf[..2].fill(1);
    2 + TcpOption::Timestamp { tsval, tsecr }.emit(&mut buf[2..])
}

/// A segment to originate.
#[derive(Copy, Clone, Debug)]
pub struct Segment<'a> {
    /// Ethernet source.
    pub src_mac: MacAddr,
    /// Ethernet destination.
    pub dst_mac: MacAddr,
    /// IPv4 source and TCP source port.
    pub src: SocketAddrV4,
    /// IPv4 destination and TCP destination port.
    pub dst: SocketAddrV4,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number (written even without the ACK flag).
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window field.
    pub window: u16,
    /// Options, a multiple of 4 bytes, at most 40.
    pub options: &'a [u8],
    /// Payload (empty for the segments the balancer originates).
    pub payload: &'a [u8],
}

/// Length of the frame [`write_segment`] produces for `options_len` bytes
/// of options and `payload_len` bytes of payload (before padding to
/// [`MIN_FRAME`]).
pub const fn segment_len(options_len: usize, payload_len: usize) -> usize {
    14 + 20 + 20 + options_len + payload_len
}

/// Write `s` as an untagged Ethernet/IPv4/TCP frame at the start of `buf`
/// (IPv4 DF set, ID 0; both checksums computed). Returns the
/// frame length (padded with zeros to [`MIN_FRAME`]), or `None` when the
/// options are malformed or `buf` is too short.
pub fn write_segment(buf: &mut [u8], s: &Segment<'_>) -> Option<usize> {
    let ol = s.options.len();
    if ol > 40 || ol % 4 != 0 {
        return None;
    }
    let len = segment_len(ol, s.payload.len());
    let framelen = len.max(MIN_FRAME);
    let buf = buf.get_mut(..framelen)?;
    buf[len..].fill(0);
    {
        let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.set_dst(s.dst_mac);
        eth.set_src(s.src_mac);
        eth.set_ethertype(ethertype::IPV4);
    }
    let tcp_len = 20 + ol + s.payload.len();
    if 20 + tcp_len > usize::from(u16::MAX) {
        return None;
    }
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut buf[14..len]);
        ip.set_version(4);
        ip.set_header_len(20);
        ip.set_dscp_ecn(0);
        ip.set_total_len((20 + tcp_len) as u16);
        ip.set_ident(0);
        ip.set_flags_frag(0x4000);
        ip.set_ttl(OUR_TTL);
        ip.set_protocol(ip_proto::TCP);
        ip.set_src_addr(*s.src.ip());
        ip.set_dst_addr(*s.dst.ip());
        ip.fill_checksum();
    }
    {
        let mut tcp = TcpPacket::new_unchecked(&mut buf[34..len]);
        tcp.set_src_port(s.src.port());
        tcp.set_dst_port(s.dst.port());
        tcp.set_seq_number(s.seq);
        tcp.set_ack_number(s.ack);
        tcp.set_header_len((20 + ol) as u8);
        tcp.set_flags(s.flags);
        tcp.set_window_len(s.window);
        tcp.set_urgent_at(0);
        tcp.options_mut().copy_from_slice(s.options);
        tcp.payload_mut().copy_from_slice(s.payload);
        tcp.set_checksum(0);
        let ph =
            checksum::pseudo_header_v4(*s.src.ip(), *s.dst.ip(), ip_proto::TCP, tcp_len as u16);
        let c = !checksum::fold(checksum::sum(&buf[34..len], ph));
        TcpPacket::new_unchecked(&mut buf[34..len]).set_checksum(c);
    }
    Some(framelen)
}

/// A segment the balancer originates toward an IPv6 peer (SYN-ACK, RST,
/// backend SYN over IPv6): [`Segment`] with IPv6 endpoints.
#[derive(Clone, Copy, Debug)]
pub struct Segment6<'a> {
    /// Ethernet source.
    pub src_mac: MacAddr,
    /// Ethernet destination.
    pub dst_mac: MacAddr,
    /// IPv6 source and TCP source port.
    pub src: SocketAddrV6,
    /// IPv6 destination and TCP destination port.
    pub dst: SocketAddrV6,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window field.
    pub window: u16,
    /// Flow label (RFC 6437: the same for every segment of a flow).
    pub flow_label: u32,
    /// Options, a multiple of 4 bytes, at most 40.
    pub options: &'a [u8],
    /// Payload.
    pub payload: &'a [u8],
}

/// Length of the frame [`write_segment6`] produces.
pub const fn segment6_len(options_len: usize, payload_len: usize) -> usize {
    14 + 40 + 20 + options_len + payload_len
}

/// Write `s` as an untagged Ethernet/IPv6/TCP frame at the start of `buf`
/// (hop limit [`OUR_TTL`], the TCP checksum over the IPv6 pseudo-header).
/// Returns the frame length, or `None` when the options are malformed or
/// `buf` is too short.
pub fn write_segment6(buf: &mut [u8], s: &Segment6<'_>) -> Option<usize> {
    let ol = s.options.len();
    if ol > 40 || ol % 4 != 0 {
        return None;
    }
    let len = segment6_len(ol, s.payload.len());
    let framelen = len.max(MIN_FRAME);
    let buf = buf.get_mut(..framelen)?;
    buf[len..].fill(0);
    let tcp_len = 20 + ol + s.payload.len();
    if tcp_len > usize::from(u16::MAX) {
        return None;
    }
    {
        let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.set_dst(s.dst_mac);
        eth.set_src(s.src_mac);
        eth.set_ethertype(ethertype::IPV6);
    }
    {
        let mut ip = qsplice_wire::Ipv6Packet::new_unchecked(&mut buf[14..len]);
        ip.set_version_tc_flow(0, s.flow_label);
        ip.set_payload_len(tcp_len as u16);
        ip.set_next_header(ip_proto::TCP);
        ip.set_hop_limit(OUR_TTL);
        ip.set_src_addr(*s.src.ip());
        ip.set_dst_addr(*s.dst.ip());
    }
    {
        let mut tcp = TcpPacket::new_unchecked(&mut buf[54..len]);
        tcp.set_src_port(s.src.port());
        tcp.set_dst_port(s.dst.port());
        tcp.set_seq_number(s.seq);
        tcp.set_ack_number(s.ack);
        tcp.set_header_len((20 + ol) as u8);
        tcp.set_flags(s.flags);
        tcp.set_window_len(s.window);
        tcp.set_urgent_at(0);
        tcp.options_mut().copy_from_slice(s.options);
        tcp.payload_mut().copy_from_slice(s.payload);
        tcp.fill_checksum_v6(*s.src.ip(), *s.dst.ip());
    }
    Some(framelen)
}

/// Sequence space a segment occupies (payload, plus one each for SYN and FIN).
pub fn seg_len(flags: TcpFlags, payload: usize) -> u32 {
    payload as u32
        + u32::from(flags.contains(TcpFlags::SYN))
        + u32::from(flags.contains(TcpFlags::FIN))
}

/// The RST answering a segment (RFC 9293 §3.10.7.1): with the ACK flag,
/// `seq = SEG.ACK`; without, `seq = 0, ack = SEG.SEQ + SEG.LEN` and ACK set.
pub fn rst_for(flags: TcpFlags, seq: u32, ack: u32, payload: usize) -> (u32, u32, TcpFlags) {
    if flags.contains(TcpFlags::ACK) {
        (ack, 0, TcpFlags::RST)
    } else {
        (
            0,
            seq.wrapping_add(seg_len(flags, payload)),
            TcpFlags::RST | TcpFlags::ACK,
        )
    }
}

#[cfg(test)]
mod tests6 {
    use super::*;

    #[test]
    fn ipv6_syn_ack_frame() {
        let mut opts = [0u8; 40];
        let n = write_syn_options(
            &mut opts,
            &SynOptions {
                mss: Some(1440),
                ws: Some(7),
                sack_ok: true,
                ts: Some((5, 6)),
            },
        );
        let s = Segment6 {
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            src: "[2001:db8:1::1]:443".parse().unwrap(),
            dst: "[2001:db8:1::2]:40000".parse().unwrap(),
            seq: 77,
            ack: 1001,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: 65535,
            flow_label: 0xabcde,
            options: &opts[..n],
            payload: &[],
        };
        let mut buf = [0u8; 128];
        let len = write_segment6(&mut buf, &s).unwrap();
        assert_eq!(len, segment6_len(n, 0));
        let f = &buf[..len];
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        let ip = qsplice_wire::Ipv6Packet::new_checked(&f[14..]).unwrap();
        assert_eq!(
            (ip.flow_label(), ip.hop_limit(), ip.next_header()),
            (0xabcde, OUR_TTL, 6)
        );
        assert_eq!(usize::from(ip.payload_len()), 20 + n);
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum_v6(*s.src.ip(), *s.dst.ip()));
        assert_eq!((tcp.seq_number(), tcp.ack_number()), (77, 1001));
        let o = SynOptions::parse(tcp.options()).unwrap();
        assert_eq!(
            (o.mss, o.ws, o.sack_ok, o.ts),
            (Some(1440), Some(7), true, Some((5, 6)))
        );
        assert_eq!(write_segment6(&mut [0u8; 40], &s), None, "buffer too short");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn ts_roundtrip_carries_ws_and_sack() {
        for ws in [None, Some(0), Some(7), Some(14)] {
            for sack in [false, true] {
                let t = encode_ts(0x1234_5678, ws, sack);
                assert_eq!(t & !0x3f, 0x1234_5640);
                assert_eq!(decode_ts(t), (ws, sack));
            }
        }
        // A too-large shift is clamped, not confused with "none".
        assert_eq!(decode_ts(encode_ts(0, Some(15), false)), (Some(14), false));
    }

    #[test]
    fn syn_options_roundtrip_and_linux_layout() {
        let o = SynOptions {
            mss: Some(1460),
            ws: Some(7),
            sack_ok: true,
            ts: Some((1, 2)),
        };
        let mut b = [0u8; 40];
        let n = write_syn_options(&mut b, &o);
        assert_eq!(n, 20);
        assert_eq!(
            &b[..20],
            &[2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 3, 3, 7]
        );
        assert_eq!(SynOptions::parse(&b[..n]).unwrap(), o);
        for o in [
            SynOptions {
                mss: Some(536),
                ..Default::default()
            },
            SynOptions {
                mss: Some(1460),
                sack_ok: true,
                ..Default::default()
            },
            SynOptions {
                mss: Some(1460),
                ts: Some((9, 0)),
                ..Default::default()
            },
            SynOptions {
                ws: Some(0),
                ..Default::default()
            },
        ] {
            let n = write_syn_options(&mut b, &o);
            assert_eq!(n % 4, 0);
            assert_eq!(SynOptions::parse(&b[..n]).unwrap(), o);
        }
    }

    #[test]
    fn malformed_options_are_an_error() {
        assert!(SynOptions::parse(&[2, 4, 5]).is_err());
        assert!(SynOptions::parse(&[3, 1]).is_err());
        assert_eq!(SynOptions::timestamps(&[8, 10, 0, 0]), None);
    }

    #[test]
    fn written_segment_parses_with_valid_checksums() {
        let mut opts = [0u8; 40];
        let n = write_ts_option(&mut opts, 7, 9);
        let s = Segment {
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            src: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 80),
            dst: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 40000),
            seq: 0xffff_fff0,
            ack: 5,
            flags: TcpFlags::ACK,
            window: 512,
            options: &opts[..n],
            payload: &[],
        };
        let mut buf = [0xaau8; 128];
        let len = write_segment(&mut buf, &s).unwrap();
        assert_eq!(len, 66);
        let ip = Ipv4Packet::new_checked(&buf[14..len]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.total_len(), 52);
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(ip.src_addr(), ip.dst_addr()));
        assert_eq!(tcp.seq_number(), 0xffff_fff0);
        assert_eq!(SynOptions::timestamps(tcp.options()), Some((7, 9)));
        // Padding to the Ethernet minimum.
        let s2 = Segment { options: &[], ..s };
        assert_eq!(write_segment(&mut buf, &s2), Some(60));
        assert!(buf[54..60].iter().all(|b| *b == 0));
        // Bad option length, short buffer.
        assert_eq!(
            write_segment(
                &mut buf,
                &Segment {
                    options: &opts[..3],
                    ..s
                }
            ),
            None
        );
        assert_eq!(write_segment(&mut buf[..50], &s), None);
        // With payload.
        let s3 = Segment {
            payload: b"hello",
            ..s
        };
        let len = write_segment(&mut buf, &s3).unwrap();
        assert_eq!(len, 71);
        let ip = Ipv4Packet::new_checked(&buf[14..len]).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(ip.src_addr(), ip.dst_addr()));
        assert_eq!(tcp.payload(), b"hello");
    }

    #[test]
    fn rst_generation_follows_rfc() {
        assert_eq!(rst_for(TcpFlags::ACK, 1, 99, 10), (99, 0, TcpFlags::RST));
        assert_eq!(
            rst_for(TcpFlags::SYN, 1000, 0, 0),
            (0, 1001, TcpFlags::RST | TcpFlags::ACK)
        );
        assert_eq!(
            rst_for(TcpFlags::FIN, u32::MAX, 0, 1),
            (0, 1, TcpFlags::RST | TcpFlags::ACK)
        );
    }
}
