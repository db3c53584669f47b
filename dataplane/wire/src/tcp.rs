//! TCP (RFC 9293) segments and options (RFC 9293 MSS, RFC 7323 window scale
//! and timestamps, RFC 2018 SACK).

use core::fmt;
use core::net::Ipv4Addr;
use core::ops;
use core::str::FromStr;

use crate::field::{self, Field};
use crate::{checksum, ip_proto, Error, Result};

mod f {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    pub const FLAGS: Field = 12..14;
    pub const WIN_SIZE: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
    pub const OPTIONS: usize = 20;
}

/// The nine TCP control bits, as a bit set (the low 9 bits of the 16-bit
/// data-offset/flags word).
///
/// Displays as one letter per set flag in the order `FSRPAUECN` (so SYN+ACK
/// is `"SA"`, PSH+ACK is `"PA"`, as in scapy), or `"-"` when no flag is set;
/// [`FromStr`] accepts the same letters in any order.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u16);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x001);
    /// Synchronise sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x002);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x004);
    /// Push.
    pub const PSH: TcpFlags = TcpFlags(0x008);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x010);
    /// Urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x020);
    /// ECN-Echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x040);
    /// Congestion window reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x080);
    /// ECN nonce (RFC 3540, historic).
    pub const NS: TcpFlags = TcpFlags(0x100);

    const MASK: u16 = 0x1ff;
    const LETTERS: [(TcpFlags, char); 9] = [
        (Self::FIN, 'F'),
        (Self::SYN, 'S'),
        (Self::RST, 'R'),
        (Self::PSH, 'P'),
        (Self::ACK, 'A'),
        (Self::URG, 'U'),
        (Self::ECE, 'E'),
        (Self::CWR, 'C'),
        (Self::NS, 'N'),
    ];
    const NAMES: [&'static str; 9] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS"];

    /// No flags.
    pub const fn empty() -> Self {
        TcpFlags(0)
    }

    /// All nine flags.
    pub const fn all() -> Self {
        TcpFlags(Self::MASK)
    }

    /// The flags from the low 9 bits of `bits` (other bits are dropped).
    pub const fn from_bits_truncate(bits: u16) -> Self {
        TcpFlags(bits & Self::MASK)
    }

    /// The raw bits (0..=0x1ff).
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set in `self`.
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: TcpFlags) {
        self.0 |= other.0
    }

    /// Clears the flags of `other`.
    pub fn remove(&mut self, other: TcpFlags) {
        self.0 &= !other.0
    }

    /// Sets or clears the flags of `other`.
    pub fn set(&mut self, other: TcpFlags, value: bool) {
        if value {
            self.insert(other)
        } else {
            self.remove(other)
        }
    }
}

impl ops::BitOr for TcpFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        TcpFlags(self.0 | rhs.0)
    }
}

impl ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0
    }
}

impl ops::BitAnd for TcpFlags {
    type Output = Self;
    fn bitand(self, rhs: Self) -> Self {
        TcpFlags(self.0 & rhs.0)
    }
}

impl ops::BitAndAssign for TcpFlags {
    fn bitand_assign(&mut self, rhs: Self) {
        self.0 &= rhs.0
    }
}

impl ops::BitXor for TcpFlags {
    type Output = Self;
    fn bitxor(self, rhs: Self) -> Self {
        TcpFlags(self.0 ^ rhs.0)
    }
}

impl ops::Sub for TcpFlags {
    type Output = Self;
    /// Set difference.
    fn sub(self, rhs: Self) -> Self {
        TcpFlags(self.0 & !rhs.0)
    }
}

impl ops::Not for TcpFlags {
    type Output = Self;
    /// Complement within the nine defined flags.
    fn not(self) -> Self {
        TcpFlags(!self.0 & Self::MASK)
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        for (flag, c) in Self::LETTERS {
            if self.contains(flag) {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TcpFlags(")?;
        let mut first = true;
        for ((flag, _), name) in Self::LETTERS.iter().zip(Self::NAMES) {
            if self.contains(*flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("empty")?;
        }
        f.write_str(")")
    }
}

impl FromStr for TcpFlags {
    type Err = Error;

    /// Parses the [`Display`](fmt::Display) form: letters from `FSRPAUECN`
    /// in any order (each at most once), or `"-"`/`""` for no flags. Returns
    /// [`Error::Unsupported`] on any other input.
    fn from_str(s: &str) -> Result<Self> {
        if s == "-" {
            return Ok(TcpFlags::empty());
        }
        let mut out = TcpFlags::empty();
        for ch in s.chars() {
            let (flag, _) = Self::LETTERS
                .iter()
                .find(|(_, c)| *c == ch)
                .ok_or(Error::Unsupported)?;
            if out.contains(*flag) {
                return Err(Error::Unsupported);
            }
            out.insert(*flag);
        }
        Ok(out)
    }
}

/// A view of a TCP segment. The buffer must be exactly the segment (the
/// IPv4 payload, `Ipv4Packet::payload()`): the checksum covers all of it.
///
/// ```text
///  0                16               32
/// +-----------------+-----------------+
/// |   source port   |    dest port    |
/// +-----------------+-----------------+
/// |          sequence number          |
/// +-----------------------------------+
/// |       acknowledgment number       |
/// +----+-----+------+-----------------+
/// |off |rsvd |flags |     window      |
/// +----+-----+------+-----------------+
/// |    checksum     | urgent pointer  |
/// +-----------------+-----------------+
/// |  options (off*4 - 20 bytes) | data…
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T> {
    buffer: T,
}

impl<T> TcpPacket<T> {
    /// Length of the header without options.
    pub const HEADER_LEN: usize = f::OPTIONS;
    /// Largest possible header (data offset 15).
    pub const MAX_HEADER_LEN: usize = 60;

    /// Wraps `buffer` without validation (for emitting). Fixed-field
    /// accessors panic if `buffer` is shorter than [`Self::HEADER_LEN`];
    /// variable-length accessors never panic.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer` after validating it. No accessor can panic afterwards.
    ///
    /// Errors: [`Error::Truncated`] if shorter than 20 bytes;
    /// [`Error::BadHeaderLen`] if the data offset is below 5 or the header
    /// runs past the buffer. Options and checksum are not checked.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The validation performed by [`Self::new_checked`].
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = usize::from(self.header_len());
        if hl < Self::HEADER_LEN || hl > len {
            return Err(Error::BadHeaderLen);
        }
        Ok(())
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::DST_PORT)
    }

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        field::get_u32(self.buffer.as_ref(), f::SEQ_NUM)
    }

    /// Acknowledgment number (meaningful when ACK is set).
    #[inline]
    pub fn ack_number(&self) -> u32 {
        field::get_u32(self.buffer.as_ref(), f::ACK_NUM)
    }

    /// Header length in bytes (data offset × 4; 20–60 for a validated
    /// segment).
    #[inline]
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[f::FLAGS.start] >> 4) * 4
    }

    /// The control flags.
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags::from_bits_truncate(field::get_u16(self.buffer.as_ref(), f::FLAGS))
    }

    /// Window size (unscaled).
    #[inline]
    pub fn window_len(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::WIN_SIZE)
    }

    /// Checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::CHECKSUM)
    }

    /// Urgent pointer (meaningful when URG is set).
    #[inline]
    pub fn urgent_at(&self) -> u16 {
        field::get_u16(self.buffer.as_ref(), f::URGENT)
    }

    /// The options area, `20..header_len` (clamped to the buffer).
    #[inline]
    pub fn options(&self) -> &[u8] {
        field::clamp(
            self.buffer.as_ref(),
            f::OPTIONS,
            usize::from(self.header_len()),
        )
    }

    /// An iterator over the parsed options.
    #[inline]
    pub fn options_iter(&self) -> TcpOptionsIter<'_> {
        TcpOptionsIter::new(self.options())
    }

    /// The data after the header (clamped to the buffer).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        field::clamp(b, usize::from(self.header_len()), b.len())
    }

    /// Sequence space consumed by this segment: payload length, plus one
    /// each for SYN and FIN.
    #[inline]
    pub fn segment_len(&self) -> usize {
        let fl = self.flags();
        self.payload().len()
            + usize::from(fl.contains(TcpFlags::SYN))
            + usize::from(fl.contains(TcpFlags::FIN))
    }

    /// Whether the checksum is correct for the IPv4 pseudo-header
    /// `src`/`dst` (the whole buffer is the segment).
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let b = self.buffer.as_ref();
        let ph = checksum::pseudo_header_v4(src, dst, ip_proto::TCP, b.len() as u16);
        checksum::fold(checksum::sum(b, ph)) == 0xffff
    }
    /// Whether the checksum verifies over the IPv6 pseudo-header of
    /// `src` → `dst` (RFC 8200 §8.1; the whole buffer is the segment).
    pub fn verify_checksum_v6(&self, src: core::net::Ipv6Addr, dst: core::net::Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        let ph = checksum::pseudo_header_v6(src, dst, ip_proto::TCP, b.len() as u32);
        checksum::fold(checksum::sum(b, ph)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        field::set_u16(self.buffer.as_mut(), f::SRC_PORT, port)
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        field::set_u16(self.buffer.as_mut(), f::DST_PORT, port)
    }

    /// Sets the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, seq: u32) {
        field::set_u32(self.buffer.as_mut(), f::SEQ_NUM, seq)
    }

    /// Sets the acknowledgment number.
    #[inline]
    pub fn set_ack_number(&mut self, ack: u32) {
        field::set_u32(self.buffer.as_mut(), f::ACK_NUM, ack)
    }

    /// Sets the header length in bytes (rounded down to a multiple of 4;
    /// values above 60 are truncated to the 4-bit data-offset field). Keeps
    /// the flags.
    #[inline]
    pub fn set_header_len(&mut self, len: u8) {
        let b = &mut self.buffer.as_mut()[f::FLAGS.start];
        *b = (*b & 0x0f) | (((len / 4) & 0x0f) << 4);
    }

    /// Sets the control flags (keeps the data offset; clears the reserved
    /// bits).
    #[inline]
    pub fn set_flags(&mut self, flags: TcpFlags) {
        let b = self.buffer.as_mut();
        let v = (u16::from(b[f::FLAGS.start] & 0xf0) << 8) | flags.bits();
        field::set_u16(b, f::FLAGS, v)
    }

    /// Sets the window size.
    #[inline]
    pub fn set_window_len(&mut self, win: u16) {
        field::set_u16(self.buffer.as_mut(), f::WIN_SIZE, win)
    }

    /// Sets the stored checksum.
    #[inline]
    pub fn set_checksum(&mut self, csum: u16) {
        field::set_u16(self.buffer.as_mut(), f::CHECKSUM, csum)
    }

    /// Sets the urgent pointer.
    #[inline]
    pub fn set_urgent_at(&mut self, at: u16) {
        field::set_u16(self.buffer.as_mut(), f::URGENT, at)
    }

    /// Mutable options area, `20..header_len` (clamped to the buffer). Set
    /// the header length first.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = usize::from(self.header_len());
        field::clamp_mut(self.buffer.as_mut(), f::OPTIONS, hl)
    }

    /// Mutable data after the header.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = usize::from(self.header_len());
        let b = self.buffer.as_mut();
        let len = b.len();
        field::clamp_mut(b, hl, len)
    }

    /// Raises the MSS option of this segment to at least `min` in place
    /// (RFC 1624 update of the checksum, which stays valid if it was).
    /// Returns the MSS the segment announced if it was raised, `None` when
    /// there is no MSS option, it already was `>= min`, or the options are
    /// malformed (left untouched).
    ///
    /// A peer announcing a tiny MSS (1, 8…) would otherwise make every
    /// segment toward it carry a few bytes behind 40 bytes of headers: an
    /// amplification an attacker gets for free (Linux clamps at
    /// `net.ipv4.tcp_min_snd_mss`).
    pub fn clamp_mss_option(&mut self, min: u16) -> Option<u16> {
        let hl = usize::from(self.header_len());
        // Find the MSS value's offset within the segment.
        let mut at = None;
        {
            let b = self.buffer.as_ref();
            if hl < 20 || hl > b.len() {
                return None;
            }
            let opts = &b[20..hl];
            let mut i = 0;
            while i < opts.len() {
                match opts[i] {
                    0 => break,
                    1 => i += 1,
                    kind => {
                        let len = usize::from(*opts.get(i + 1)?);
                        if len < 2 || i + len > opts.len() {
                            return None;
                        }
                        if kind == 2 {
                            if len != 4 {
                                return None;
                            }
                            at = Some(20 + i + 2);
                            break;
                        }
                        i += len;
                    }
                }
            }
        }
        let at = at?;
        let old = {
            let b = self.buffer.as_ref();
            u16::from_be_bytes([b[at], b[at + 1]])
        };
        if old >= min {
            return None;
        }
        // The aligned words covering bytes at..at+2 before and after.
        let words = |b: &[u8]| -> [u16; 3] {
            let s = at & !1;
            let w = |o: usize| u16::from_be_bytes([b[o], *b.get(o + 1).unwrap_or(&0)]);
            [w(s), if s + 2 < b.len() { w(s + 2) } else { 0 }, 0]
        };
        let before = words(self.buffer.as_ref());
        self.buffer.as_mut()[at..at + 2].copy_from_slice(&min.to_be_bytes());
        let after = words(self.buffer.as_ref());
        let mut c = self.checksum();
        for k in 0..2 {
            if before[k] != after[k] {
                c = checksum::update_u16(c, before[k], after[k]);
            }
        }
        self.set_checksum(c);
        Some(old)
    }

    /// Computes and stores the checksum over the IPv4 pseudo-header and the
    /// whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let ph = checksum::pseudo_header_v4(src, dst, ip_proto::TCP, b.len() as u16);
        let c = !checksum::fold(checksum::sum(b, ph));
        self.set_checksum(c)
    }
    /// Compute and store the checksum over the IPv6 pseudo-header.
    pub fn fill_checksum_v6(&mut self, src: core::net::Ipv6Addr, dst: core::net::Ipv6Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let ph = checksum::pseudo_header_v6(src, dst, ip_proto::TCP, b.len() as u32);
        let c = !checksum::fold(checksum::sum(b, ph));
        self.set_checksum(c)
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for TcpPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

mod kind {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WS: u8 = 3;
    pub const SACK_PERM: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TSTAMP: u8 = 8;
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpOption<'a> {
    /// End of option list (kind 0); nothing after it is parsed.
    EndOfList,
    /// No-operation padding (kind 1).
    NoOp,
    /// Maximum segment size (kind 2, length 4).
    MaxSegmentSize(u16),
    /// Window scale shift count (kind 3, length 3).
    WindowScale(u8),
    /// SACK permitted (kind 4, length 2).
    SackPermitted,
    /// SACK blocks `(left edge, right edge)` (kind 5, length 2 + 8·n with
    /// n = 1..=4). Parsed blocks fill the array from the front; the rest are
    /// `None`.
    SackRange([Option<(u32, u32)>; 4]),
    /// Timestamps (kind 8, length 10).
    Timestamp {
        /// TSval.
        tsval: u32,
        /// TSecr.
        tsecr: u32,
    },
    /// Any other kind; `data` excludes the kind and length bytes.
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option data (length − 2 bytes).
        data: &'a [u8],
    },
}

impl TcpOption<'_> {
    /// Bytes [`emit`](Self::emit) writes. A `SackRange` without any block
    /// has no valid encoding and takes 0 bytes.
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOp => 1,
            TcpOption::MaxSegmentSize(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::SackRange(r) => match r.iter().flatten().count() {
                0 => 0,
                n => 2 + 8 * n,
            },
            TcpOption::Timestamp { .. } => 10,
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the start of `buf` and returns the number of
    /// bytes written ([`buffer_len`](Self::buffer_len)). For `SackRange`,
    /// only the `Some` blocks are written, in order.
    ///
    /// # Panics
    /// If `buf` is shorter than `buffer_len()`, or an `Unknown` option's data
    /// is longer than 253 bytes (not representable).
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let len = self.buffer_len();
        let b = &mut buf[..len];
        match *self {
            TcpOption::EndOfList => b[0] = kind::END,
            TcpOption::NoOp => b[0] = kind::NOP,
            TcpOption::MaxSegmentSize(mss) => {
                b[..2].copy_from_slice(&[kind::MSS, 4]);
                b[2..4].copy_from_slice(&mss.to_be_bytes());
            }
            TcpOption::WindowScale(shift) => b.copy_from_slice(&[kind::WS, 3, shift]),
            TcpOption::SackPermitted => b.copy_from_slice(&[kind::SACK_PERM, 2]),
            TcpOption::SackRange(ranges) => {
                if len > 0 {
                    b[0] = kind::SACK;
                    b[1] = len as u8;
                    for (chunk, (l, r)) in b[2..].chunks_exact_mut(8).zip(ranges.iter().flatten()) {
                        chunk[..4].copy_from_slice(&l.to_be_bytes());
                        chunk[4..].copy_from_slice(&r.to_be_bytes());
                    }
                }
            }
            TcpOption::Timestamp { tsval, tsecr } => {
                b[..2].copy_from_slice(&[kind::TSTAMP, 10]);
                b[2..6].copy_from_slice(&tsval.to_be_bytes());
                b[6..10].copy_from_slice(&tsecr.to_be_bytes());
            }
            TcpOption::Unknown { kind, data } => {
                let l = u8::try_from(len).expect("TCP option data longer than 253 bytes");
                b[0] = kind;
                b[1] = l;
                b[2..].copy_from_slice(data);
            }
        }
        len
    }
}

/// Iterator over the options area of a TCP header
/// ([`TcpPacket::options_iter`]).
///
/// Yields `Ok((offset, option))`, where `offset` is the option's position
/// within the options area. Iteration ends after [`TcpOption::EndOfList`] or
/// at the end of the area. On a malformed option — length byte missing or
/// < 2, running past the area, or a known kind with the wrong length — it
/// yields `Err(Error::BadOption)` once and then ends. It never panics and
/// always terminates (every step consumes at least one byte).
#[derive(Debug, Clone)]
pub struct TcpOptionsIter<'a> {
    area: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> TcpOptionsIter<'a> {
    /// Iterates over `area` (the bytes from offset 20 to the header length).
    pub const fn new(area: &'a [u8]) -> Self {
        TcpOptionsIter {
            area,
            pos: 0,
            done: false,
        }
    }

    fn parse_one(&self) -> Result<(TcpOption<'a>, usize)> {
        let at = self.pos;
        let rest = self.area.get(at..).unwrap_or(&[]);
        let k = *rest.first().ok_or(Error::BadOption)?;
        match k {
            kind::END => return Ok((TcpOption::EndOfList, 1)),
            kind::NOP => return Ok((TcpOption::NoOp, 1)),
            _ => {}
        }
        let len = usize::from(*rest.get(1).ok_or(Error::BadOption)?);
        if len < 2 {
            return Err(Error::BadOption);
        }
        let data = rest.get(2..len).ok_or(Error::BadOption)?;
        let be32 = |d: &[u8], i: usize| -> Option<u32> {
            d.get(i..i + 4)?
                .first_chunk()
                .map(|b: &[u8; 4]| u32::from_be_bytes(*b))
        };
        let opt = match (k, data.len()) {
            (kind::MSS, 2) => TcpOption::MaxSegmentSize(u16::from_be_bytes([data[0], data[1]])),
            (kind::WS, 1) => TcpOption::WindowScale(data[0]),
            (kind::SACK_PERM, 0) => TcpOption::SackPermitted,
            (kind::SACK, n) if n % 8 == 0 && (8..=32).contains(&n) => {
                let mut ranges = [None; 4];
                for (slot, blk) in ranges.iter_mut().zip(data.chunks_exact(8)) {
                    *slot = Some((
                        be32(blk, 0).ok_or(Error::BadOption)?,
                        be32(blk, 4).ok_or(Error::BadOption)?,
                    ));
                }
                TcpOption::SackRange(ranges)
            }
            (kind::TSTAMP, 8) => TcpOption::Timestamp {
                tsval: be32(data, 0).ok_or(Error::BadOption)?,
                tsecr: be32(data, 4).ok_or(Error::BadOption)?,
            },
            (kind::MSS | kind::WS | kind::SACK_PERM | kind::SACK | kind::TSTAMP, _) => {
                return Err(Error::BadOption)
            }
            (kind, _) => TcpOption::Unknown { kind, data },
        };
        Ok((opt, len))
    }
}

impl<'a> Iterator for TcpOptionsIter<'a> {
    type Item = Result<(usize, TcpOption<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.area.len() {
            return None;
        }
        let at = self.pos;
        match self.parse_one() {
            Ok((opt, len)) => {
                self.pos = at.saturating_add(len);
                if opt == TcpOption::EndOfList {
                    self.done = true;
                }
                Some(Ok((at, opt)))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for TcpOptionsIter<'_> {}

#[cfg(test)]
pub(crate) mod tests {

    #[test]
    fn checksum_over_the_ipv6_pseudo_header() {
        let src: core::net::Ipv6Addr = "2001:db8:1::2".parse().unwrap();
        let dst: core::net::Ipv6Addr = "2001:db8:1::1".parse().unwrap();
        // SYN 40000 → 80, seq 0x01020304, window 65535; checksum from an
        // independent implementation (Python, RFC 8200 §8.1).
        let mut seg = [
            0x9c, 0x40, 0x00, 0x50, 1, 2, 3, 4, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
        ];
        let mut p = TcpPacket::new_unchecked(&mut seg[..]);
        p.fill_checksum_v6(src, dst);
        assert_eq!(p.checksum(), 0xb3d5);
        let p = TcpPacket::new_checked(&seg[..]).unwrap();
        assert!(p.verify_checksum_v6(src, dst));
        let other = core::net::Ipv6Addr::from(u128::from(src) ^ 1);
        assert!(!p.verify_checksum_v6(other, dst), "another source");
    }

    #[test]
    fn clamp_mss_option_raises_tiny_mss_and_keeps_checksum_valid() {
        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        // MSS at an even offset (first option) and at an odd one (after a NOP).
        for opts in [
            vec![2u8, 4, 0, 8, 1, 1, 4, 2],
            vec![1u8, 2, 4, 0, 1, 4, 2, 0],
        ] {
            let mut b = vec![0u8; 20 + opts.len() + 3];
            b[12] = ((20 + opts.len()) as u8 / 4) << 4;
            b[13] = 0x02;
            b[20..20 + opts.len()].copy_from_slice(&opts);
            b[20 + opts.len()..].copy_from_slice(b"abc");
            let mut p = TcpPacket::new_unchecked(&mut b[..]);
            p.fill_checksum(src, dst);
            assert_eq!(
                p.clamp_mss_option(536),
                Some(if opts[0] == 2 { 8 } else { 1 })
            );
            assert!(p.verify_checksum(src, dst), "{opts:?}");
            let mss = p.options_iter().find_map(|o| match o {
                Ok((_, TcpOption::MaxSegmentSize(m))) => Some(m),
                _ => None,
            });
            assert_eq!(mss, Some(536));
            // Already big enough: untouched.
            assert_eq!(p.clamp_mss_option(100), None);
        }
        // No MSS option, or malformed options: untouched.
        let mut b = [0u8; 24];
        b[12] = 6 << 4;
        b[20..24].copy_from_slice(&[3, 3, 7, 0]);
        assert_eq!(
            TcpPacket::new_unchecked(&mut b[..]).clamp_mss_option(536),
            None
        );
        b[20..24].copy_from_slice(&[2, 9, 0, 1]);
        let before = b;
        assert_eq!(
            TcpPacket::new_unchecked(&mut b[..]).clamp_mss_option(536),
            None
        );
        assert_eq!(b, before);
    }
    use super::*;
    use crate::{ethertype, EthernetFrame, Ipv4Packet};

    /// A Linux SYN (Ethernet + IPv4 + TCP) from 192.168.1.100:54321 to
    /// 93.184.216.34:80: options MSS 1460, SACK permitted, timestamps
    /// (2674736673, 0), NOP, window scale 7; IPv4 checksum 0xb8b5, TCP
    /// checksum 0x4da2.
    pub(crate) const SYN_FRAME: [u8; 74] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x00, 0x27, 0x0a, 0x0b, 0x0c, 0x08, 0x00, 0x45,
        0x00, //
        0x00, 0x3c, 0x8a, 0x1f, 0x40, 0x00, 0x40, 0x06, 0xb8, 0xb5, 0xc0, 0xa8, 0x01, 0x64, 0x5d,
        0xb8, //
        0xd8, 0x22, 0xd4, 0x31, 0x00, 0x50, 0x3a, 0x4e, 0x1b, 0x27, 0x00, 0x00, 0x00, 0x00, 0xa0,
        0x02, //
        0xfa, 0xf0, 0x4d, 0xa2, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x9f,
        0x6d, //
        0x3e, 0x21, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07, //
    ];

    #[test]
    fn parse_real_syn() {
        let eth = EthernetFrame::new_checked(&SYN_FRAME[..]).unwrap();
        assert_eq!(eth.ethertype(), ethertype::IPV4);
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.total_len(), 60);
        assert_eq!(ip.protocol(), ip_proto::TCP);
        assert_eq!(ip.src_addr(), Ipv4Addr::new(192, 168, 1, 100));
        assert_eq!(ip.dst_addr(), Ipv4Addr::new(93, 184, 216, 34));
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(tcp.src_port(), 54321);
        assert_eq!(tcp.dst_port(), 80);
        assert_eq!(tcp.seq_number(), 0x3a4e_1b27);
        assert_eq!(tcp.ack_number(), 0);
        assert_eq!(tcp.header_len(), 40);
        assert_eq!(tcp.flags(), TcpFlags::SYN);
        assert_eq!(tcp.flags().to_string(), "S");
        assert_eq!(tcp.window_len(), 64240);
        assert_eq!(tcp.checksum(), 0x4da2);
        assert_eq!(tcp.urgent_at(), 0);
        assert_eq!(tcp.options().len(), 20);
        assert!(tcp.payload().is_empty());
        assert_eq!(tcp.segment_len(), 1);
        assert!(tcp.verify_checksum(ip.src_addr(), ip.dst_addr()));
        assert!(!tcp.verify_checksum(ip.dst_addr(), Ipv4Addr::new(93, 184, 216, 35)));
        let opts: Vec<_> = tcp.options_iter().collect();
        assert_eq!(
            opts,
            vec![
                Ok((0, TcpOption::MaxSegmentSize(1460))),
                Ok((4, TcpOption::SackPermitted)),
                Ok((
                    6,
                    TcpOption::Timestamp {
                        tsval: 2674736673,
                        tsecr: 0
                    }
                )),
                Ok((16, TcpOption::NoOp)),
                Ok((17, TcpOption::WindowScale(7))),
            ]
        );
    }

    #[test]
    fn flags_display_debug_parse() {
        let sa = TcpFlags::SYN | TcpFlags::ACK;
        assert_eq!(sa.to_string(), "SA");
        assert_eq!((TcpFlags::PSH | TcpFlags::ACK).to_string(), "PA");
        assert_eq!((TcpFlags::FIN | TcpFlags::ACK).to_string(), "FA");
        assert_eq!(TcpFlags::all().to_string(), "FSRPAUECN");
        assert_eq!(TcpFlags::empty().to_string(), "-");
        assert_eq!(format!("{sa:?}"), "TcpFlags(SYN | ACK)");
        assert_eq!(format!("{:?}", TcpFlags::empty()), "TcpFlags(empty)");
        assert_eq!("AS".parse::<TcpFlags>(), Ok(sa));
        assert_eq!("-".parse::<TcpFlags>(), Ok(TcpFlags::empty()));
        assert_eq!("".parse::<TcpFlags>(), Ok(TcpFlags::empty()));
        assert_eq!("SS".parse::<TcpFlags>(), Err(Error::Unsupported));
        assert_eq!("X".parse::<TcpFlags>(), Err(Error::Unsupported));
        for bits in 0..=0x1ffu16 {
            let f = TcpFlags::from_bits_truncate(bits);
            assert_eq!(f.to_string().parse::<TcpFlags>(), Ok(f));
        }
        let mut f = TcpFlags::SYN;
        f.insert(TcpFlags::ACK);
        assert!(f.contains(sa) && f.intersects(TcpFlags::ACK | TcpFlags::RST));
        f.remove(TcpFlags::SYN);
        assert_eq!(f, TcpFlags::ACK);
        f.set(TcpFlags::FIN, true);
        assert_eq!(f - TcpFlags::ACK, TcpFlags::FIN);
        assert_eq!(!TcpFlags::empty(), TcpFlags::all());
        assert_eq!((sa & TcpFlags::ACK), TcpFlags::ACK);
        assert_eq!((sa ^ TcpFlags::ACK), TcpFlags::SYN);
        assert_eq!(TcpFlags::from_bits_truncate(0xffff).bits(), 0x1ff);
    }

    #[test]
    fn validation() {
        let seg = &SYN_FRAME[34..];
        assert_eq!(TcpPacket::new_checked(&seg[..19]), Err(Error::Truncated));
        assert_eq!(TcpPacket::new_checked(&seg[..39]), Err(Error::BadHeaderLen));
        let mut b = seg.to_vec();
        b[12] = 0x40;
        assert_eq!(TcpPacket::new_checked(&b[..]), Err(Error::BadHeaderLen));
        b[12] = 0x50;
        assert!(TcpPacket::new_checked(&b[..]).is_ok());
    }

    #[test]
    fn emit_syn_ack() {
        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let mut b = [0u8; 32 + 5];
        let mut t = TcpPacket::new_unchecked(&mut b[..]);
        t.set_src_port(80);
        t.set_dst_port(40000);
        t.set_seq_number(0xdead_beef);
        t.set_ack_number(0x3a4e_1b28);
        t.set_header_len(32);
        t.set_flags(TcpFlags::SYN | TcpFlags::ACK | TcpFlags::NS);
        t.set_window_len(65535);
        t.set_urgent_at(3);
        let opts = [
            TcpOption::MaxSegmentSize(1400),
            TcpOption::NoOp,
            TcpOption::WindowScale(9),
            TcpOption::SackPermitted,
            TcpOption::EndOfList,
        ];
        let mut at = 0;
        for o in &opts {
            at += o.emit(&mut t.options_mut()[at..]);
        }
        assert_eq!(at, 11);
        t.payload_mut().copy_from_slice(b"hello");
        t.fill_checksum(src, dst);
        let t = TcpPacket::new_checked(&b[..]).unwrap();
        assert!(t.verify_checksum(src, dst));
        assert_eq!(t.header_len(), 32);
        assert_eq!(t.flags(), TcpFlags::SYN | TcpFlags::ACK | TcpFlags::NS);
        assert_eq!(
            (
                t.seq_number(),
                t.ack_number(),
                t.window_len(),
                t.urgent_at()
            ),
            (0xdead_beef, 0x3a4e_1b28, 65535, 3)
        );
        assert_eq!(t.payload(), b"hello");
        assert_eq!(t.segment_len(), 6);
        let parsed: Vec<_> = t.options_iter().map(|r| r.unwrap().1).collect();
        assert_eq!(parsed, opts);
        // Changing the header length keeps the flags and vice versa.
        let mut t = TcpPacket::new_unchecked(&mut b[..]);
        t.set_header_len(20);
        assert_eq!(t.flags(), TcpFlags::SYN | TcpFlags::ACK | TcpFlags::NS);
        t.set_flags(TcpFlags::RST);
        assert_eq!(t.header_len(), 20);
    }

    #[test]
    fn options_malformed() {
        fn bad(area: &[u8]) -> Vec<Result<(usize, TcpOption<'_>)>> {
            TcpOptionsIter::new(area).collect()
        }
        // Length < 2.
        assert_eq!(
            bad(&[1, 0x22, 1]),
            vec![Ok((0, TcpOption::NoOp)), Err(Error::BadOption)]
        );
        assert_eq!(bad(&[0x22, 0]), vec![Err(Error::BadOption)]);
        // Missing length byte.
        assert_eq!(bad(&[2]), vec![Err(Error::BadOption)]);
        // Runs past the area.
        assert_eq!(bad(&[2, 4, 5]), vec![Err(Error::BadOption)]);
        // Known kinds with the wrong length.
        assert_eq!(bad(&[2, 3, 5]), vec![Err(Error::BadOption)]);
        assert_eq!(bad(&[3, 4, 5, 6]), vec![Err(Error::BadOption)]);
        assert_eq!(bad(&[4, 3, 0]), vec![Err(Error::BadOption)]);
        assert_eq!(bad(&[5, 2]), vec![Err(Error::BadOption)]);
        assert_eq!(
            bad(&[5, 9, 0, 0, 0, 0, 0, 0, 0]),
            vec![Err(Error::BadOption)]
        );
        assert_eq!(
            bad(&[8, 9, 0, 0, 0, 0, 0, 0, 0]),
            vec![Err(Error::BadOption)]
        );
        // End of list stops iteration even with garbage after it.
        assert_eq!(
            bad(&[1, 0, 0xff, 0xff]),
            vec![Ok((0, TcpOption::NoOp)), Ok((1, TcpOption::EndOfList))]
        );
        // Unknown kinds are passed through.
        assert_eq!(
            bad(&[30, 4, 0xab, 0xcd]),
            vec![Ok((
                0,
                TcpOption::Unknown {
                    kind: 30,
                    data: &[0xab, 0xcd]
                }
            ))]
        );
        assert_eq!(bad(&[]), vec![]);
    }

    #[test]
    fn sack_ranges() {
        let mut buf = [0u8; 40];
        let opt = TcpOption::SackRange([Some((1, 2)), Some((0xffff_fff0, 0x10)), None, None]);
        let n = opt.emit(&mut buf);
        assert_eq!(n, 18);
        assert_eq!(&buf[..4], &[5, 18, 0, 0]);
        assert_eq!(
            TcpOptionsIter::new(&buf[..n]).collect::<Vec<_>>(),
            vec![Ok((0, opt))]
        );
        let empty = TcpOption::SackRange([None; 4]);
        assert_eq!(empty.buffer_len(), 0);
        assert_eq!(empty.emit(&mut buf), 0);
        let four = TcpOption::SackRange([Some((1, 2)), Some((3, 4)), Some((5, 6)), Some((7, 8))]);
        assert_eq!(four.emit(&mut buf), 34);
        assert_eq!(TcpOptionsIter::new(&buf[..34]).next(), Some(Ok((0, four))));
    }
}
