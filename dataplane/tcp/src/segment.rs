//! Segments in and out of an endpoint, and their options.

use qsplice_wire::{TcpFlags, TcpOption, TcpOptionsIter, TcpPacket};

/// The TCP options of an incoming segment that the endpoint uses.
///
/// Parsing stops at the first malformed option (what was parsed before it
/// is kept), as Linux does; unknown options are skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegOptions {
    /// MSS (SYN only).
    pub mss: Option<u16>,
    /// Window-scale shift (SYN only).
    pub ws: Option<u8>,
    /// SACK permitted (SYN only).
    pub sack_ok: bool,
    /// SACK blocks `(left, right)`, in the order sent, from the front.
    pub sack: [Option<(u32, u32)>; 4],
    /// Timestamps `(TSval, TSecr)`.
    pub ts: Option<(u32, u32)>,
}

impl SegOptions {
    /// Parses a TCP options area (header bytes 20..data offset).
    pub fn parse(area: &[u8]) -> SegOptions {
        let mut o = SegOptions::default();
        for opt in TcpOptionsIter::new(area) {
            let Ok((_, opt)) = opt else { break };
            match opt {
                TcpOption::MaxSegmentSize(m) => o.mss = Some(m),
                TcpOption::WindowScale(s) => o.ws = Some(s),
                TcpOption::SackPermitted => o.sack_ok = true,
                TcpOption::SackRange(r) => o.sack = r,
                TcpOption::Timestamp { tsval, tsecr } => o.ts = Some((tsval, tsecr)),
                _ => {}
            }
        }
        o
    }
}

/// One incoming segment, already checksum-verified and demultiplexed to
/// its endpoint by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number; `None` when the ACK flag is off (the ACK bit of
    /// `flags` is not looked at).
    pub ack: Option<u32>,
    /// Control flags (SYN, FIN, RST are used; PSH, URG, ECE, CWR ignored).
    pub flags: TcpFlags,
    /// The window field as on the wire (unscaled).
    pub window: u16,
    /// Parsed options.
    pub options: SegOptions,
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> Segment<'a> {
    /// Reads a whole TCP segment (header, options, payload: the IPv4
    /// payload). `None` when the header is truncated or its data offset is
    /// invalid. The checksum is not checked.
    pub fn parse(bytes: &'a [u8]) -> Option<Segment<'a>> {
        let p = TcpPacket::new_checked(bytes).ok()?;
        let hl = usize::from(p.header_len());
        let flags = p.flags();
        Some(Segment {
            seq: p.seq_number(),
            ack: flags.contains(TcpFlags::ACK).then(|| p.ack_number()),
            flags,
            window: p.window_len(),
            options: SegOptions::parse(bytes.get(20..hl).unwrap_or(&[])),
            payload: bytes.get(hl..).unwrap_or(&[]),
        })
    }

    /// Sequence space the segment occupies: payload, plus SYN and FIN.
    pub fn seq_len(&self) -> u32 {
        (self.payload.len() as u32)
            .wrapping_add(u32::from(self.flags.contains(TcpFlags::SYN)))
            .wrapping_add(u32::from(self.flags.contains(TcpFlags::FIN)))
    }
}

/// The options of a segment we send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutOptions {
    /// MSS (SYN / SYN-ACK).
    pub mss: Option<u16>,
    /// Window-scale shift (SYN / SYN-ACK).
    pub ws: Option<u8>,
    /// SACK permitted (SYN / SYN-ACK).
    pub sack_ok: bool,
    /// Timestamps `(TSval, TSecr)`.
    pub ts: Option<(u32, u32)>,
    /// SACK blocks (D-SACK first when present, then the most recent), from
    /// the front; at most 3 are written with timestamps, 4 without.
    pub sack: [Option<(u32, u32)>; 4],
}

impl OutOptions {
    fn sack_count(&self) -> usize {
        let max = if self.ts.is_some() { 3 } else { 4 };
        self.sack
            .iter()
            .take(max)
            .take_while(|b| b.is_some())
            .count()
    }

    /// Bytes [`write`](Self::write) produces (a multiple of 4, at most 40).
    pub fn len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        if self.ts.is_some() || self.sack_ok {
            n += if self.ts.is_some() { 12 } else { 4 };
        }
        if self.ws.is_some() {
            n += 4;
        }
        let k = self.sack_count();
        if k > 0 {
            n += 4 + 8 * k;
        }
        n
    }

    /// Whether there are no options.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the options, 32-bit aligned with NOPs in Linux's layout (MSS;
    /// SACK-permitted + timestamps, or NOP NOP + timestamps, or NOP NOP +
    /// SACK-permitted; NOP + window scale; NOP NOP + SACK blocks). Returns
    /// the bytes written, or 0 (writing nothing) if `buf` is shorter than
    /// [`len`](Self::len).
    pub fn write(&self, buf: &mut [u8]) -> usize {
        let len = self.len();
        let Some(b) = buf.get_mut(..len) else {
            return 0;
        };
        let mut at = 0;
        let mut put = |o: TcpOption<'_>, b: &mut [u8]| {
            at += o.emit(&mut b[at..]);
        };
        if let Some(m) = self.mss {
            put(TcpOption::MaxSegmentSize(m), b);
        }
        match (self.sack_ok, self.ts) {
            (true, Some((tsval, tsecr))) => {
                put(TcpOption::SackPermitted, b);
                put(TcpOption::Timestamp { tsval, tsecr }, b);
            }
            (false, Some((tsval, tsecr))) => {
                put(TcpOption::NoOp, b);
                put(TcpOption::NoOp, b);
                put(TcpOption::Timestamp { tsval, tsecr }, b);
            }
            (true, None) => {
                put(TcpOption::NoOp, b);
                put(TcpOption::NoOp, b);
                put(TcpOption::SackPermitted, b);
            }
            (false, None) => {}
        }
        if let Some(s) = self.ws {
            put(TcpOption::NoOp, b);
            put(TcpOption::WindowScale(s), b);
        }
        let k = self.sack_count();
        if k > 0 {
            let mut blocks = [None; 4];
            blocks[..k].copy_from_slice(&self.sack[..k]);
            put(TcpOption::NoOp, b);
            put(TcpOption::NoOp, b);
            put(TcpOption::SackRange(blocks), b);
        }
        at
    }
}

/// One segment an endpoint sends, handed to the caller's closure by
/// [`Endpoint::output`](crate::Endpoint::output).
///
/// Either read the fields and build the header yourself, or call
/// [`write`](Self::write), which writes the whole TCP segment (checksum 0)
/// for the caller to checksum with the IPv4 pseudo-header
/// (`TcpPacket::fill_checksum`).
#[derive(Clone, Copy, Debug)]
pub struct SegmentOut<'a> {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (`None`: ACK flag off, only on a SYN or a RST
    /// answering a segment without ACK).
    pub ack: Option<u32>,
    /// Flags; ACK is set iff `ack` is `Some`.
    pub flags: TcpFlags,
    /// Window field, already scaled down for the wire.
    pub window: u16,
    /// Options.
    pub options: OutOptions,
    /// Payload, in one or two pieces (the send buffer is a ring).
    pub payload: (&'a [u8], &'a [u8]),
}

impl SegmentOut<'_> {
    /// Payload bytes.
    pub fn payload_len(&self) -> usize {
        self.payload.0.len() + self.payload.1.len()
    }

    /// Header length with options (20..=60, a multiple of 4).
    pub fn header_len(&self) -> usize {
        20 + self.options.len()
    }

    /// Length of the whole TCP segment.
    pub fn len(&self) -> usize {
        self.header_len() + self.payload_len()
    }

    /// Whether the segment has no payload.
    pub fn is_empty(&self) -> bool {
        self.payload_len() == 0
    }

    /// Sequence space the segment occupies (payload, SYN, FIN).
    pub fn seq_len(&self) -> u32 {
        (self.payload_len() as u32)
            .wrapping_add(u32::from(self.flags.contains(TcpFlags::SYN)))
            .wrapping_add(u32::from(self.flags.contains(TcpFlags::FIN)))
    }

    /// Writes the whole TCP segment — header with the given ports and a
    /// zero checksum, options, payload — at the start of `buf`. Returns its
    /// length ([`len`](Self::len)), or `None` (writing nothing) if `buf` is
    /// too short.
    pub fn write(&self, buf: &mut [u8], src_port: u16, dst_port: u16) -> Option<usize> {
        let len = self.len();
        let hl = self.header_len();
        let b = buf.get_mut(..len)?;
        let mut t = TcpPacket::new_unchecked(&mut b[..]);
        t.set_src_port(src_port);
        t.set_dst_port(dst_port);
        t.set_seq_number(self.seq);
        t.set_ack_number(self.ack.unwrap_or(0));
        t.set_header_len(hl as u8);
        t.set_flags(self.flags);
        t.set_window_len(self.window);
        t.set_checksum(0);
        t.set_urgent_at(0);
        self.options.write(&mut b[20..hl]);
        let (p0, p1) = self.payload;
        b[hl..hl + p0.len()].copy_from_slice(p0);
        b[hl + p0.len()..].copy_from_slice(p1);
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_syn_layout_round_trips() {
        let o = OutOptions {
            mss: Some(1460),
            ws: Some(7),
            sack_ok: true,
            ts: Some((2674736673, 0)),
            sack: [None; 4],
        };
        let mut b = [0u8; 40];
        assert_eq!(o.write(&mut b), 20);
        // Byte for byte Linux's SYN options (qsplice-wire's SYN_FRAME).
        assert_eq!(
            &b[..20],
            &[
                0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x9f, 0x6d, 0x3e, 0x21, 0, 0, 0, 0,
                0x01, 0x03, 0x03, 0x07
            ]
        );
        let p = SegOptions::parse(&b[..20]);
        assert_eq!(p.mss, Some(1460));
        assert_eq!(p.ws, Some(7));
        assert!(p.sack_ok);
        assert_eq!(p.ts, Some((2674736673, 0)));
    }

    #[test]
    fn sack_blocks_limited_by_space() {
        let blocks = [Some((1, 2)), Some((3, 4)), Some((5, 6)), Some((7, 8))];
        let mut o = OutOptions {
            ts: Some((9, 10)),
            sack: blocks,
            ..OutOptions::default()
        };
        assert_eq!(o.len(), 12 + 4 + 24);
        let mut b = [0u8; 40];
        assert_eq!(o.write(&mut b), 40);
        let p = SegOptions::parse(&b);
        assert_eq!(p.sack, [Some((1, 2)), Some((3, 4)), Some((5, 6)), None]);
        assert_eq!(p.ts, Some((9, 10)));
        o.ts = None;
        assert_eq!(o.len(), 36);
        assert_eq!(o.write(&mut b), 36);
        assert_eq!(SegOptions::parse(&b[..36]).sack, blocks);
        assert_eq!(o.write(&mut b[..35]), 0);
    }

    #[test]
    fn write_and_parse_segment() {
        let s = SegmentOut {
            seq: 0xdead_beef,
            ack: Some(7),
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window: 512,
            options: OutOptions {
                ts: Some((1, 2)),
                ..OutOptions::default()
            },
            payload: (b"hel", b"lo"),
        };
        let mut b = [0u8; 64];
        assert_eq!(s.write(&mut b[..10], 1, 2), None);
        let n = s.write(&mut b, 443, 5555).unwrap();
        assert_eq!(n, 20 + 12 + 5);
        let p = TcpPacket::new_checked(&b[..n]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (443, 5555));
        let seg = Segment::parse(&b[..n]).unwrap();
        assert_eq!(seg.seq, 0xdead_beef);
        assert_eq!(seg.ack, Some(7));
        assert_eq!(seg.window, 512);
        assert_eq!(seg.options.ts, Some((1, 2)));
        assert_eq!(seg.payload, b"hello");
        assert_eq!(seg.seq_len(), 5);
        assert!(Segment::parse(&b[..19]).is_none());
    }
}
