//! Post-splice header translation of one TCP/IPv6 segment, in place: the
//! IPv6 counterpart of [`crate::translate`].
//!
//! The TCP rewrite is the same (ports, sequence and acknowledgement
//! offsets, SACK blocks, timestamps, window scaling, RFC 1624 checksum
//! updates of the changed words only); the IPv6 header has no checksum,
//! so only its addresses change, and the TCP checksum's pseudo-header part
//! is updated over the two 128-bit addresses at once (RFC 1624 eqn. 3 over
//! a group of words). The flow label, traffic class and hop limit are
//! kept. A segment behind extension headers is refused
//! ([`Error::Unsupported`]): the splice path takes plain TCP/IPv6.
//!
//! Malformed input is refused with an error before anything is written.

use std::net::SocketAddrV6;

use qsplice_wire::checksum::Delta;
use qsplice_wire::ipv6::next_header;
use qsplice_wire::{Error, Ipv6Packet, Result};

use crate::translate::{rewrite_segment, TcpRewrite, Translated};

/// How to rewrite segments of one direction of a spliced IPv6 flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation6 {
    /// New source address and port.
    pub src: SocketAddrV6,
    /// New destination address and port.
    pub dst: SocketAddrV6,
    /// Added (mod 2^32) to the sequence number.
    pub seq_delta: u32,
    /// Added to the acknowledgement number and to SACK block edges.
    pub ack_delta: u32,
    /// Added to the timestamp option's TSval.
    pub tsval_delta: u32,
    /// Added to the timestamp option's TSecr (when non-zero on the wire).
    pub tsecr_delta: u32,
    /// Window value scaling (see [`crate::translate::Translation::win_shift`]).
    pub win_shift: i8,
}

impl Translation6 {
    /// The translation that undoes this one (window scaling aside).
    pub fn inverse(&self, orig_src: SocketAddrV6, orig_dst: SocketAddrV6) -> Translation6 {
        Translation6 {
            src: orig_src,
            dst: orig_dst,
            seq_delta: self.seq_delta.wrapping_neg(),
            ack_delta: self.ack_delta.wrapping_neg(),
            tsval_delta: self.tsval_delta.wrapping_neg(),
            tsecr_delta: self.tsecr_delta.wrapping_neg(),
            win_shift: -self.win_shift,
        }
    }
}

/// Translate the TCP/IPv6 segment whose IPv6 header starts at `l3` in
/// `frame`. On error nothing was written.
pub fn translate6(frame: &mut [u8], l3: usize, t: &Translation6) -> Result<Translated> {
    let ip_buf = frame.get_mut(l3..).ok_or(Error::Truncated)?;
    let (end, old) = {
        let ip = Ipv6Packet::new_checked(&*ip_buf)?;
        if ip.next_header() != next_header::TCP {
            return Err(Error::Unsupported);
        }
        let mut old = [0u8; 32];
        old[..16].copy_from_slice(&ip.src_addr().octets());
        old[16..].copy_from_slice(&ip.dst_addr().octets());
        (
            Ipv6Packet::<&[u8]>::HEADER_LEN + usize::from(ip.payload_len()),
            old,
        )
    };
    let mut new = [0u8; 32];
    new[..16].copy_from_slice(&t.src.ip().octets());
    new[16..].copy_from_slice(&t.dst.ip().octets());
    let seg = ip_buf
        .get_mut(Ipv6Packet::<&[u8]>::HEADER_LEN..end)
        .ok_or(Error::BadTotalLen)?;
    let translated = rewrite_segment(
        seg,
        // RFC 1624 eqn. 3 over the 16 words of both addresses.
        Delta::NONE.bytes(&old, &new),
        &TcpRewrite {
            sport: t.src.port(),
            dport: t.dst.port(),
            seq_delta: t.seq_delta,
            ack_delta: t.ack_delta,
            tsval_delta: t.tsval_delta,
            tsecr_delta: t.tsecr_delta,
            win_shift: t.win_shift,
        },
    )?;
    let mut ip = Ipv6Packet::new_unchecked(ip_buf);
    ip.set_src_addr(*t.src.ip());
    ip.set_dst_addr(*t.dst.ip());
    Ok(translated)
}
