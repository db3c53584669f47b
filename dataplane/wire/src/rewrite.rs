//! Header rewrites for the TCP splice hot path, with RFC 1624 incremental
//! checksum updates (no pass over the payload).
//!
//! A splicing load balancer forwards a client's segments to a backend by
//! changing the destination address/port and shifting sequence and
//! acknowledgment numbers by the per-connection offsets between the two
//! halves; the reverse direction rewrites the source instead. Both the IPv4
//! header checksum and the TCP checksum (whose pseudo-header covers the
//! addresses) are patched in O(1).
//!
//! The functions assume the stored checksums are complete (not a
//! pseudo-header seed left for TX checksum offload). Both validate the
//! whole IPv4/TCP header chain *before* writing, so on error the frame is
//! unchanged.

use core::net::Ipv4Addr;

use crate::checksum::{update_addr, update_u16, update_u32};
use crate::{ip_proto, Error, Ipv4Packet, Result, TcpPacket};

#[derive(Clone, Copy)]
enum Side {
    Src,
    Dst,
}

/// Rewrites the destination of the IPv4/TCP packet at `frame[l3_off..]`:
/// destination address to `new_dst`, destination port to `new_dport`,
/// sequence number `+= seq_delta` and acknowledgment number `+= ack_delta`
/// (both wrapping, so a "negative" delta is `0u32.wrapping_sub(d)`), and fixes
/// the IPv4 and TCP checksums incrementally.
///
/// Errors (frame untouched): [`Error::Truncated`] if `l3_off` is past the
/// end; any [`Ipv4Packet::new_checked`] error; [`Error::Unsupported`] if the
/// protocol is not TCP; [`Error::Fragmented`] for any IPv4 fragment; any
/// [`TcpPacket::new_checked`] error for the IPv4 payload.
///
/// The acknowledgment number is shifted whether or not ACK is set.
#[inline]
pub fn rewrite_dst_v4_tcp(
    frame: &mut [u8],
    l3_off: usize,
    new_dst: Ipv4Addr,
    new_dport: u16,
    seq_delta: u32,
    ack_delta: u32,
) -> Result<()> {
    rewrite(
        frame,
        l3_off,
        Side::Dst,
        new_dst,
        new_dport,
        seq_delta,
        ack_delta,
    )
}

/// The reverse-direction counterpart of [`rewrite_dst_v4_tcp`]: rewrites the
/// *source* address and port, shifts sequence/acknowledgment numbers, and
/// fixes both checksums incrementally. Same errors.
#[inline]
pub fn rewrite_src_v4_tcp(
    frame: &mut [u8],
    l3_off: usize,
    new_src: Ipv4Addr,
    new_sport: u16,
    seq_delta: u32,
    ack_delta: u32,
) -> Result<()> {
    rewrite(
        frame,
        l3_off,
        Side::Src,
        new_src,
        new_sport,
        seq_delta,
        ack_delta,
    )
}

#[inline(always)]
fn rewrite(
    frame: &mut [u8],
    l3_off: usize,
    side: Side,
    addr: Ipv4Addr,
    port: u16,
    seq_delta: u32,
    ack_delta: u32,
) -> Result<()> {
    let l3 = frame.get_mut(l3_off..).ok_or(Error::Truncated)?;
    let mut ip = Ipv4Packet::new_checked(l3)?;
    if ip.protocol() != ip_proto::TCP {
        return Err(Error::Unsupported);
    }
    if ip.is_fragment() {
        return Err(Error::Fragmented);
    }
    TcpPacket::new_checked(ip.payload())?;

    let old_addr = match side {
        Side::Src => ip.src_addr(),
        Side::Dst => ip.dst_addr(),
    };
    match side {
        Side::Src => ip.set_src_addr(addr),
        Side::Dst => ip.set_dst_addr(addr),
    }
    let c = update_addr(ip.checksum(), old_addr, addr);
    ip.set_checksum(c);

    let mut tcp = TcpPacket::new_unchecked(ip.payload_mut());
    let mut c = update_addr(tcp.checksum(), old_addr, addr);
    let old_port = match side {
        Side::Src => tcp.src_port(),
        Side::Dst => tcp.dst_port(),
    };
    match side {
        Side::Src => tcp.set_src_port(port),
        Side::Dst => tcp.set_dst_port(port),
    }
    c = update_u16(c, old_port, port);
    let seq = tcp.seq_number();
    let new_seq = seq.wrapping_add(seq_delta);
    tcp.set_seq_number(new_seq);
    c = update_u32(c, seq, new_seq);
    let ack = tcp.ack_number();
    let new_ack = ack.wrapping_add(ack_delta);
    tcp.set_ack_number(new_ack);
    c = update_u32(c, ack, new_ack);
    tcp.set_checksum(c);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::tests::SYN_FRAME;
    use crate::{ethernet_l3, ethertype, TcpFlags};

    /// The rewrite done with setters and full checksum recomputation.
    fn full(frame: &mut [u8], l3: usize, side: Side, addr: Ipv4Addr, port: u16, sd: u32, ad: u32) {
        let mut ip = Ipv4Packet::new_checked(&mut frame[l3..]).unwrap();
        match side {
            Side::Src => ip.set_src_addr(addr),
            Side::Dst => ip.set_dst_addr(addr),
        }
        ip.fill_checksum();
        let (s, d) = (ip.src_addr(), ip.dst_addr());
        let mut tcp = TcpPacket::new_checked(ip.payload_mut()).unwrap();
        match side {
            Side::Src => tcp.set_src_port(port),
            Side::Dst => tcp.set_dst_port(port),
        }
        tcp.set_seq_number(tcp.seq_number().wrapping_add(sd));
        tcp.set_ack_number(tcp.ack_number().wrapping_add(ad));
        tcp.fill_checksum(s, d);
    }

    fn data_frame() -> Vec<u8> {
        // The SYN fixture turned into a PSH|ACK carrying 1000 bytes.
        let mut f = SYN_FRAME.to_vec();
        f.extend((0..1000u32).map(|i| (i * 7) as u8));
        let (_, l3, _) = ethernet_l3(&f).unwrap();
        let mut ip = Ipv4Packet::new_unchecked(&mut f[l3..]);
        ip.set_total_len(60 + 1000);
        ip.fill_checksum();
        let (s, d) = (ip.src_addr(), ip.dst_addr());
        let mut tcp = TcpPacket::new_unchecked(ip.payload_mut());
        tcp.set_flags(TcpFlags::PSH | TcpFlags::ACK);
        tcp.set_ack_number(0xffff_fff0);
        tcp.fill_checksum(s, d);
        f
    }

    #[test]
    fn incremental_equals_full_recompute() {
        let cases: [(Ipv4Addr, u16, u32, u32); 5] = [
            (Ipv4Addr::new(10, 1, 2, 3), 8080, 1000, 0),
            (Ipv4Addr::new(0, 0, 0, 0), 0, 0, 0),
            (
                Ipv4Addr::new(255, 255, 255, 255),
                0xffff,
                u32::MAX,
                u32::MAX,
            ),
            (Ipv4Addr::new(93, 184, 216, 34), 80, 0, 0x20),
            (
                Ipv4Addr::new(172, 16, 0, 9),
                443,
                0u32.wrapping_sub(12345),
                777,
            ),
        ];
        for base in [SYN_FRAME.to_vec(), data_frame()] {
            let (et, l3, _) = ethernet_l3(&base).unwrap();
            assert_eq!(et, ethertype::IPV4);
            for (side, (addr, port, sd, ad)) in [Side::Dst, Side::Src]
                .into_iter()
                .flat_map(|s| cases.map(|c| (s, c)))
            {
                let mut a = base.clone();
                let mut b = base.clone();
                match side {
                    Side::Dst => rewrite_dst_v4_tcp(&mut a, l3, addr, port, sd, ad).unwrap(),
                    Side::Src => rewrite_src_v4_tcp(&mut a, l3, addr, port, sd, ad).unwrap(),
                }
                full(&mut b, l3, side, addr, port, sd, ad);
                assert_eq!(a, b, "{addr} {port} {sd} {ad}");
                let ip = Ipv4Packet::new_checked(&a[l3..]).unwrap();
                assert!(ip.verify_checksum());
                let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
                assert!(tcp.verify_checksum(ip.src_addr(), ip.dst_addr()));
            }
        }
    }

    #[test]
    fn fields_changed() {
        let mut f = data_frame();
        let before = TcpPacket::new_checked(&f[34..]).unwrap().seq_number();
        rewrite_dst_v4_tcp(&mut f, 14, Ipv4Addr::new(10, 9, 8, 7), 9000, 5, 0x20).unwrap();
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert_eq!(ip.dst_addr(), Ipv4Addr::new(10, 9, 8, 7));
        assert_eq!(ip.src_addr(), Ipv4Addr::new(192, 168, 1, 100));
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((tcp.src_port(), tcp.dst_port()), (54321, 9000));
        assert_eq!(tcp.seq_number(), before + 5);
        assert_eq!(tcp.ack_number(), 0x10, "ack wraps");
    }

    #[test]
    fn errors_leave_frame_untouched() {
        let dst = Ipv4Addr::new(1, 2, 3, 4);
        let base = data_frame();
        let mut f = base.clone();
        assert_eq!(
            rewrite_dst_v4_tcp(&mut f, 2000, dst, 1, 1, 1),
            Err(Error::Truncated)
        );
        assert_eq!(
            rewrite_dst_v4_tcp(&mut f, 12, dst, 1, 1, 1),
            Err(Error::BadVersion)
        );
        assert_eq!(
            rewrite_dst_v4_tcp(&mut f[..40], 14, dst, 1, 1, 1),
            Err(Error::BadTotalLen)
        );
        assert_eq!(f, base);
        // Not TCP.
        f[14 + 9] = ip_proto::UDP;
        assert_eq!(
            rewrite_dst_v4_tcp(&mut f, 14, dst, 1, 1, 1),
            Err(Error::Unsupported)
        );
        f[14 + 9] = ip_proto::TCP;
        // Fragment.
        f[14 + 6] |= 0x20;
        assert_eq!(
            rewrite_src_v4_tcp(&mut f, 14, dst, 1, 1, 1),
            Err(Error::Fragmented)
        );
        f[14 + 6] &= !0x20;
        // Broken TCP data offset.
        f[34 + 12] = 0x40;
        let snapshot = f.clone();
        assert_eq!(
            rewrite_dst_v4_tcp(&mut f, 14, dst, 1, 1, 1),
            Err(Error::BadHeaderLen)
        );
        assert_eq!(f, snapshot);
    }
}
