//! Post-splice header translation of one TCP/IPv4 segment, in place.
//!
//! A spliced flow has two legs: client ↔ appliance (VIP) and appliance
//! (backend-side address) ↔ server. Each leg negotiated its own initial
//! sequence numbers, window scales and timestamp clocks. Forwarding a
//! segment from one leg to the other rewrites:
//!
//! * source/destination address and port (full NAT);
//! * sequence number (`+ seq_delta`) and acknowledgement and SACK block
//!   edges (`+ ack_delta`: they refer to the *other* side's sequence space);
//! * the timestamp option: TSval `+ tsval_delta`, TSecr `+ tsecr_delta`, so
//!   each end keeps seeing a monotonic clock from its peer (PAWS, RFC 7323);
//! * the window value, when the two legs use different window scales
//!   (`win_shift`): the byte window is preserved, rounding down (never
//!   advertising more than the receiver offered);
//! * IPv4 header and TCP checksums, by RFC 1624 incremental updates of the
//!   changed words only; the payload is never read.
//!
//! Malformed input is refused with an error before anything is written: the
//! frame is then unchanged.

use std::net::SocketAddrV4;

use qsplice_wire::checksum::Delta;
use qsplice_wire::{ip_proto, Error, Ipv4Packet, Result, TcpFlags, TcpPacket};

/// How to rewrite segments of one direction of a spliced flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// New source address and port.
    pub src: SocketAddrV4,
    /// New destination address and port.
    pub dst: SocketAddrV4,
    /// Added (mod 2^32) to the sequence number.
    pub seq_delta: u32,
    /// Added to the acknowledgement number and to SACK block edges.
    pub ack_delta: u32,
    /// Added to the timestamp option's TSval.
    pub tsval_delta: u32,
    /// Added to the timestamp option's TSecr (when non-zero on the wire).
    pub tsecr_delta: u32,
    /// Window value scaling: `v << s` (clamped to 65535) for `s > 0`,
    /// `v >> -s` for `s < 0`.
    pub win_shift: i8,
}

/// What a translated segment was, for the flow's state tracking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translated {
    /// TCP flags.
    pub flags: TcpFlags,
    /// Sequence number after translation.
    pub seq: u32,
    /// Acknowledgement number after translation.
    pub ack: u32,
    /// Payload bytes.
    pub payload_len: usize,
}

/// Facts about the two legs of a flow at splice time, from which both
/// directions' [`Translation`]s follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpliceParams {
    /// The client's address and port.
    pub client: SocketAddrV4,
    /// The VIP and port the client connected to.
    pub vip: SocketAddrV4,
    /// The appliance's backend-side address and the source port it used.
    pub local: SocketAddrV4,
    /// The backend server.
    pub server: SocketAddrV4,
    /// Server-leg sequence = client-leg sequence + this, for bytes the
    /// client sends (0 when the backend SYN reused the client's ISN).
    pub c2s_seq_delta: u32,
    /// Client-leg sequence = server-leg sequence + this, for bytes the
    /// server sends (`vs_seq - s_seq` in the paper).
    pub s2c_seq_delta: u32,
    /// TSval seen by the server = client's TSval + this (timestamps on both legs).
    pub c2s_ts_delta: u32,
    /// TSval seen by the client = server's TSval + this.
    pub s2c_ts_delta: u32,
    /// Window scale the client announced (its windows are `v << client_ws`).
    pub client_ws: u8,
    /// Window scale the appliance announced to the client.
    pub vip_ws: u8,
    /// Window scale the appliance announced to the server.
    pub local_ws: u8,
    /// Window scale the server announced.
    pub server_ws: u8,
}

impl SpliceParams {
    /// Client → server.
    pub fn c2s(&self) -> Translation {
        Translation {
            src: self.local,
            dst: self.server,
            seq_delta: self.c2s_seq_delta,
            ack_delta: self.s2c_seq_delta.wrapping_neg(),
            tsval_delta: self.c2s_ts_delta,
            tsecr_delta: self.s2c_ts_delta.wrapping_neg(),
            win_shift: self.client_ws as i8 - self.local_ws as i8,
        }
    }

    /// Server → client.
    pub fn s2c(&self) -> Translation {
        Translation {
            src: self.vip,
            dst: self.client,
            seq_delta: self.s2c_seq_delta,
            ack_delta: self.c2s_seq_delta.wrapping_neg(),
            tsval_delta: self.s2c_ts_delta,
            tsecr_delta: self.c2s_ts_delta.wrapping_neg(),
            win_shift: self.server_ws as i8 - self.vip_ws as i8,
        }
    }
}

impl Translation {
    /// The translation that undoes this one (window scaling aside, which
    /// loses precision when shifting down).
    pub fn inverse(&self, orig_src: SocketAddrV4, orig_dst: SocketAddrV4) -> Translation {
        Translation {
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

/// Scale a window value by `shift` (see [`Translation::win_shift`]).
#[inline]
pub fn scale_window(v: u16, shift: i8) -> u16 {
    match shift {
        0 => v,
        s if s > 0 => (u32::from(v) << s.min(16) as u32).min(0xffff) as u16,
        s => (u32::from(v) >> (-(s as i32)).min(16) as u32) as u16,
    }
}

/// The checksum change of two 32-bit words `(a, b)` replaced by `(na, nb)`
/// at byte offset `off` from the start of the checksummed area. Even offsets
/// are two plain word changes; odd offsets straddle 16-bit words, which a
/// zero byte in front of both old and new bytes keeps aligned.
#[inline(always)]
fn delta_pair(d: Delta, off: usize, (a, b): (u32, u32), (na, nb): (u32, u32)) -> Delta {
    if off % 2 == 0 {
        return d.u32(a, na).u32(b, nb);
    }
    let mut o = [0u8; 9];
    let mut n = [0u8; 9];
    o[1..5].copy_from_slice(&a.to_be_bytes());
    o[5..].copy_from_slice(&b.to_be_bytes());
    n[1..5].copy_from_slice(&na.to_be_bytes());
    n[5..].copy_from_slice(&nb.to_be_bytes());
    d.bytes(&o, &n)
}

#[inline]
fn rd32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Where the timestamp and SACK options sit, found before anything is written.
#[derive(Default)]
struct OptionPlan {
    ts: Option<usize>,
    sack: Option<(usize, usize)>,
}

/// Inlined: its plan came back through memory (a store-forwarding stall
/// on every segment); the common layout is checked first, the general walk
/// stays out of line.
#[inline(always)]
fn plan_options(opts: &[u8]) -> Result<OptionPlan> {
    // What Linux, BSD and Windows send on every segment once timestamps
    // are on: NOP, NOP, timestamps (SACK blocks follow only after a loss).
    if opts.len() == 12 && opts[..4] == [1, 1, 8, 10] {
        return Ok(OptionPlan {
            ts: Some(4),
            sack: None,
        });
    }
    plan_options_walk(opts)
}

/// [`plan_options`] for any layout: every option walked.
#[inline(never)]
fn plan_options_walk(opts: &[u8]) -> Result<OptionPlan> {
    let mut p = OptionPlan::default();
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let len = *opts.get(i + 1).ok_or(Error::BadOption)? as usize;
                if len < 2 || i + len > opts.len() {
                    return Err(Error::BadOption);
                }
                match kind {
                    8 if len == 10 => p.ts = Some(i + 2),
                    8 => return Err(Error::BadOption),
                    5 if (len - 2) % 8 == 0 && len > 2 => p.sack = Some((i + 2, (len - 2) / 8)),
                    5 => return Err(Error::BadOption),
                    _ => {}
                }
                i += len;
            }
        }
    }
    Ok(p)
}

/// Translate the TCP/IPv4 segment whose IPv4 header starts at `l3` in
/// `frame`. On error nothing was written.
#[inline]
pub fn translate(frame: &mut [u8], l3: usize, t: &Translation) -> Result<Translated> {
    let ip_buf = frame.get_mut(l3..).ok_or(Error::Truncated)?;
    let (hl, tl, old_src, old_dst) = {
        let ip = Ipv4Packet::new_checked(&*ip_buf)?;
        if ip.protocol() != ip_proto::TCP {
            return Err(Error::Unsupported);
        }
        if ip.is_fragment() {
            return Err(Error::Fragmented);
        }
        (
            ip.header_len() as usize,
            ip.total_len() as usize,
            ip.src_addr(),
            ip.dst_addr(),
        )
    };
    let seg = ip_buf.get_mut(hl..tl).ok_or(Error::BadTotalLen)?;
    let (new_src, new_dst) = (*t.src.ip(), *t.dst.ip());
    // The address change: in the IPv4 header checksum and in the TCP
    // pseudo-header alike.
    let addrs = Delta::NONE
        .u32(u32::from(old_src), u32::from(new_src))
        .u32(u32::from(old_dst), u32::from(new_dst));
    let translated = rewrite_segment(
        seg,
        addrs,
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
    let mut ip = Ipv4Packet::new_unchecked(ip_buf);
    let ic = addrs.apply(ip.checksum());
    ip.set_src_addr(new_src);
    ip.set_dst_addr(new_dst);
    ip.set_checksum(ic);
    Ok(translated)
}

/// The TCP part of a translation (ports and deltas), common to both IP
/// versions.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TcpRewrite {
    pub(crate) sport: u16,
    pub(crate) dport: u16,
    pub(crate) seq_delta: u32,
    pub(crate) ack_delta: u32,
    pub(crate) tsval_delta: u32,
    pub(crate) tsecr_delta: u32,
    pub(crate) win_shift: i8,
}

/// Rewrite the TCP segment `seg` (header, options; never the payload):
/// `addrs` is the pseudo-header's address change; the header fields' changes
/// join it and the checksum is updated once (RFC 1624). The options are
/// planned before anything is written: on error `seg` is unchanged.
///
/// Inlined: returned through memory, `Translated` was written in narrow
/// stores and read back wider, a store-forwarding stall on every segment
/// (`--bench lb_path`).
#[inline(always)]
pub(crate) fn rewrite_segment(seg: &mut [u8], addrs: Delta, t: &TcpRewrite) -> Result<Translated> {
    let tcp = TcpPacket::new_checked(&*seg)?;
    let thl = tcp.header_len() as usize;
    let plan = plan_options(tcp.options())?;
    let flags = tcp.flags();
    let (sport, dport, seq, ack, win, csum) = (
        tcp.src_port(),
        tcp.dst_port(),
        tcp.seq_number(),
        tcp.ack_number(),
        tcp.window_len(),
        tcp.checksum(),
    );
    let payload_len = seg.len() - thl;

    let nseq = seq.wrapping_add(t.seq_delta);
    let nack = ack.wrapping_add(t.ack_delta);
    let nwin = scale_window(win, t.win_shift);

    let mut c = addrs
        .u16(sport, t.sport)
        .u16(dport, t.dport)
        .u32(seq, nseq)
        .u32(ack, nack)
        .u16(win, nwin);

    // Options (offsets relative to the TCP header start, which is 16-bit
    // aligned in the checksummed area).
    if let Some(at) = plan.ts {
        let o = 20 + at;
        let (tsval, tsecr) = (
            rd32(seg, o).ok_or(Error::BadOption)?,
            rd32(seg, o + 4).ok_or(Error::BadOption)?,
        );
        let ntsval = tsval.wrapping_add(t.tsval_delta);
        // TSecr is zero (and meaningless) until the sender has seen a TSval.
        let ntsecr = if tsecr == 0 {
            0
        } else {
            tsecr.wrapping_add(t.tsecr_delta)
        };
        c = delta_pair(c, o, (tsval, tsecr), (ntsval, ntsecr));
        seg[o..o + 4].copy_from_slice(&ntsval.to_be_bytes());
        seg[o + 4..o + 8].copy_from_slice(&ntsecr.to_be_bytes());
    }
    if let Some((at, n)) = plan.sack {
        for b in 0..n {
            let o = 20 + at + b * 8;
            let (l, r) = (
                rd32(seg, o).ok_or(Error::BadOption)?,
                rd32(seg, o + 4).ok_or(Error::BadOption)?,
            );
            let (nl, nr) = (l.wrapping_add(t.ack_delta), r.wrapping_add(t.ack_delta));
            c = delta_pair(c, o, (l, r), (nl, nr));
            seg[o..o + 4].copy_from_slice(&nl.to_be_bytes());
            seg[o + 4..o + 8].copy_from_slice(&nr.to_be_bytes());
        }
    }
    {
        let mut tcp = TcpPacket::new_unchecked(&mut *seg);
        tcp.set_src_port(t.sport);
        tcp.set_dst_port(t.dport);
        tcp.set_seq_number(nseq);
        tcp.set_ack_number(nack);
        tcp.set_window_len(nwin);
        tcp.set_checksum(c.apply(csum));
    }
    Ok(Translated {
        flags,
        seq: nseq,
        ack: nack,
        payload_len,
    })
}

/// The `(source, destination)` endpoints of a TCP/IPv4 segment whose IPv4
/// header starts at `l3` (the flow-table key).
pub fn endpoints(frame: &[u8], l3: usize) -> Result<(SocketAddrV4, SocketAddrV4)> {
    let ip = Ipv4Packet::new_checked(frame.get(l3..).ok_or(Error::Truncated)?)?;
    if ip.protocol() != ip_proto::TCP {
        return Err(Error::Unsupported);
    }
    let tcp = TcpPacket::new_checked(ip.payload())?;
    Ok((
        SocketAddrV4::new(ip.src_addr(), tcp.src_port()),
        SocketAddrV4::new(ip.dst_addr(), tcp.dst_port()),
    ))
}
