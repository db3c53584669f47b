//! Stream templates: the headers of a stream are built once; per packet the
//! hot path copies the template prefix (a fixed 64- or 96-byte copy, the
//! template padded with zeros), zeroes what padding is left and writes the
//! varying fields (addresses, ports, lengths, sequence number, timestamp).
//!
//! Checksums are not updated field by field: each is the template's
//! constant part (with the length fields of the current frame size),
//! summed once, plus the varying fields' values added whole into a `u64`
//! and folded once: one's-complement addition is addition modulo 0xffff,
//! where 2^16 ≡ 1, so a 32- or 64-bit field counts as its 16-bit words
//! (RFC 1071 §2), as long as every field starts at an even offset, which
//! the payload header's fields do.

use qsplice_netdev::Frame;
use qsplice_wire::{ethertype, ip_proto, Ipv4Addr, Ipv4Packet, TcpFlags, TcpPacket};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::payload;

/// Ethernet FCS bytes (counted in frame sizes, not written by software).
pub const FCS: usize = 4;
/// Preamble + start delimiter + inter-frame gap: what L1 adds to a frame.
pub const L1_OVERHEAD: usize = 20;

/// Transport of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// UDP datagrams.
    Udp,
    /// TCP segments with only SYN set (the payload header rides as data).
    TcpSyn,
}

/// How a ranged field moves from packet to packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldMode {
    /// Each field steps by one per packet of the stream, wrapping in its range.
    Inc,
    /// Each field is uniformly random in its range.
    Random,
}

/// One stream's template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSpec {
    /// Stream id carried in the payload header.
    pub id: u16,
    /// Ethernet source.
    pub src_mac: [u8; 6],
    /// Ethernet destination.
    pub dst_mac: [u8; 6],
    /// 802.1Q VID (None: untagged).
    pub vlan: Option<u16>,
    /// IPv4 source range, inclusive.
    pub src_ip: (Ipv4Addr, Ipv4Addr),
    /// IPv4 destination range, inclusive.
    pub dst_ip: (Ipv4Addr, Ipv4Addr),
    /// Source port range, inclusive.
    pub src_port: (u16, u16),
    /// Destination port range, inclusive.
    pub dst_port: (u16, u16),
    /// UDP or TCP SYN.
    pub proto: Proto,
    /// IPv4 TTL.
    pub ttl: u8,
    /// Field movement.
    pub mode: FieldMode,
}

impl StreamSpec {
    /// A UDP stream with single addresses and ports.
    pub fn udp(id: u16, src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> Self {
        StreamSpec {
            id,
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            vlan: None,
            src_ip: (src, src),
            dst_ip: (dst, dst),
            src_port: (sport, sport),
            dst_port: (dport, dport),
            proto: Proto::Udp,
            ttl: 64,
            mode: FieldMode::Inc,
        }
    }
}

/// Bytes of the template prefix (L2..payload header) for this stream shape.
pub fn header_len(vlan: bool, proto: Proto) -> usize {
    14 + if vlan { 4 } else { 0 }
        + 20
        + match proto {
            Proto::Udp => 8,
            Proto::TcpSyn => 20,
        }
        + payload::HEADER_LEN
}

/// Smallest frame size (including FCS) a stream of this shape can send.
pub fn min_frame_size(vlan: bool, proto: Proto) -> usize {
    (header_len(vlan, proto) + FCS).max(64)
}

/// Template bytes kept per stream: the longest prefix (802.1Q, IPv4, TCP
/// and payload headers: 76 bytes) padded with zeros, so that the hot path
/// copies a fixed size.
const TMPL: usize = 96;
/// The fixed copy of the common case (an untagged UDP template, 60 bytes,
/// into a 64-byte frame); frames up to `TMPL` take a second, overlapping
/// one of `TMPL - SHORT` bytes.
const SHORT: usize = 64;

/// A built stream: template bytes, offsets, the checksums' constant parts,
/// field cursors.
#[derive(Debug)]
pub struct Stream {
    /// The spec it was built from.
    pub spec: StreamSpec,
    tmpl: [u8; TMPL],
    hl: usize,
    l3: usize,
    /// Big-endian word sum of the IPv4 header without its varying
    /// fields (total length, addresses) and checksum.
    ip_k: u64,
    /// The same for the L4 checksum: pseudo-header protocol, L4 header and
    /// payload header without their varying fields.
    l4_k: u64,
    /// The frame length (without FCS) the template's length fields and
    /// `sized_k` are for (0: none yet). A stream of one size sets it once.
    sized_len: usize,
    /// `ip_k` and `l4_k` with the length fields of `sized_len` added.
    sized_k: (u64, u64),
    src_span: u32,
    dst_span: u32,
    sport_span: u32,
    dport_span: u32,
    cur: [u32; 4],
    /// Smallest frame size incl. FCS this stream sends (its headers and
    /// FCS, at least 64): smaller sizes are raised to it.
    pub min_frame: u16,
    /// Next sequence number (= packets built so far, mod 2^32).
    pub next_seq: u32,
    /// Packets built.
    pub sent: u64,
}

fn span_ip(r: (Ipv4Addr, Ipv4Addr)) -> u32 {
    u32::from(r.1)
        .wrapping_sub(u32::from(r.0))
        .wrapping_add(1)
        .max(1)
}

fn span_port(r: (u16, u16)) -> u32 {
    u32::from(r.1.saturating_sub(r.0)) + 1
}

/// Sum of the big-endian 16-bit words of `b` (even length).
fn word_sum(b: &[u8]) -> u64 {
    b.chunks_exact(2)
        .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
        .sum()
}

/// Folds a word sum to 16 bits with end-around carry (not complemented).
#[inline(always)]
fn fold64(s: u64) -> u16 {
    // 64 → 32 bits with end-around carry, then 32 → 16 (RFC 1071 §4.1:
    // after one fold at most one carry is left, the second adds it).
    let (a, c) = (s as u32).overflowing_add((s >> 32) as u32);
    let x = a.wrapping_add(u32::from(c));
    let x = (x >> 16) + (x & 0xffff);
    (x + (x >> 16)) as u16
}

/// A 16-bit field's contribution to a word sum.
#[inline(always)]
fn w16(x: u16) -> u64 {
    u64::from(x)
}

/// A 32-bit field's: added whole (2^16 ≡ 1 modulo 0xffff, so it counts
/// as its two 16-bit words once folded).
#[inline(always)]
fn w32(x: u32) -> u64 {
    u64::from(x)
}

impl Stream {
    /// Builds the template (headers for the smallest frame) and the
    /// checksums' constant parts.
    pub fn new(spec: StreamSpec) -> Self {
        let hl = header_len(spec.vlan.is_some(), spec.proto);
        let (spec_vlan, spec_proto) = (spec.vlan.is_some(), spec.proto);
        let mut t = [0u8; TMPL];
        t[0..6].copy_from_slice(&spec.dst_mac);
        t[6..12].copy_from_slice(&spec.src_mac);
        let mut l3 = 14;
        if let Some(vid) = spec.vlan {
            t[12..14].copy_from_slice(&ethertype::VLAN.to_be_bytes());
            t[14..16].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
            l3 = 18;
        }
        t[l3 - 2..l3].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        let l4 = l3 + 20;
        let l4_hl = match spec.proto {
            Proto::Udp => 8,
            Proto::TcpSyn => 20,
        };
        let pay = l4 + l4_hl;
        // Varying fields stay zero in the template: they are written, and
        // added to the checksums, per packet.
        payload::write_header(&mut t[pay..], spec.id, 0, 0);
        let proto = match spec.proto {
            Proto::Udp => ip_proto::UDP,
            Proto::TcpSyn => ip_proto::TCP,
        };
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut t[l3..l3 + 20]);
            ip.set_version(4);
            ip.set_header_len(20);
            ip.set_ident(0);
            ip.set_dont_frag(true);
            ip.set_ttl(spec.ttl);
            ip.set_protocol(proto);
        }
        if spec.proto == Proto::TcpSyn {
            let mut s = TcpPacket::new_unchecked(&mut t[l4..pay]);
            s.set_ack_number(0);
            s.set_header_len(20);
            s.set_flags(TcpFlags::SYN);
            s.set_window_len(65535);
        }
        let ip_k = word_sum(&t[l3..l4]);
        let l4_k = word_sum(&t[l4..hl]) + w16(u16::from(proto));
        Stream {
            src_span: span_ip(spec.src_ip),
            dst_span: span_ip(spec.dst_ip),
            sport_span: span_port(spec.src_port),
            dport_span: span_port(spec.dst_port),
            spec,
            tmpl: t,
            hl,
            l3,
            ip_k,
            l4_k,
            min_frame: min_frame_size(spec_vlan, spec_proto) as u16,
            sized_len: 0,
            sized_k: (0, 0),
            cur: [0; 4],
            next_seq: 0,
            sent: 0,
        }
    }

    /// Bytes of the template prefix (the smallest frame, without FCS).
    pub fn header_len(&self) -> usize {
        self.hl
    }

    /// The field offsets of the next packet (the cursors' values before
    /// they move on).
    #[inline(always)]
    fn advance(&self, cur: &mut [u32; 4], rng: &mut SmallRng) -> [u32; 4] {
        let spans = [
            self.src_span,
            self.dst_span,
            self.sport_span,
            self.dport_span,
        ];
        let v = *cur;
        match self.spec.mode {
            FieldMode::Inc => {
                for (c, s) in cur.iter_mut().zip(spans) {
                    *c = if c.wrapping_add(1) >= s { 0 } else { *c + 1 };
                }
                v
            }
            FieldMode::Random => spans.map(|s| rng.random_range(0..s)),
        }
    }

    /// Writes the length fields of `len`-byte frames (IPv4 total length,
    /// UDP length) into the template and adds them, and the pseudo
    /// header's L4 length, to the checksums' constant parts.
    #[cold]
    fn resize<const L3: usize, const TCP: bool>(&mut self, len: usize) {
        let l4 = L3 + 20;
        let total = (len - L3) as u16;
        let l4_len = (len - l4) as u16;
        self.tmpl[L3 + 2..L3 + 4].copy_from_slice(&total.to_be_bytes());
        let mut l4_k = self.l4_k + w16(l4_len);
        if !TCP {
            self.tmpl[l4 + 4..l4 + 6].copy_from_slice(&l4_len.to_be_bytes());
            l4_k += w16(l4_len);
        }
        self.sized_k = (self.ip_k + w16(total), l4_k);
        self.sized_len = len;
    }

    /// Writes the next packet of the stream into `buf` (exactly the frame
    /// without FCS; `buf.len() >= header_len()`), stamped with `tsc`.
    /// Returns the sequence number used.
    #[inline]
    pub fn emit(&mut self, buf: &mut [u8], tsc: u64, rng: &mut SmallRng) -> u32 {
        // One body per header layout: its offsets are constants, so the
        // single length check covers every field write.
        match (self.l3, self.spec.proto) {
            (14, Proto::Udp) => self.emit_one::<14, false>(buf, tsc, rng),
            (18, Proto::Udp) => self.emit_one::<18, false>(buf, tsc, rng),
            (14, Proto::TcpSyn) => self.emit_one::<14, true>(buf, tsc, rng),
            _ => self.emit_one::<18, true>(buf, tsc, rng),
        }
    }

    /// Builds consecutive packets of the stream, `len` bytes each (without
    /// FCS, at least `header_len()`), stamped with `tsc`, into the fresh
    /// buffers `frames`. Returns how many were built: all of them, unless a
    /// buffer cannot hold `len` bytes (it and those after it are left).
    pub fn emit_burst<F: Frame>(
        &mut self,
        frames: &mut [F],
        len: usize,
        tsc: u64,
        rng: &mut SmallRng,
    ) -> usize {
        match (self.l3, self.spec.proto) {
            (14, Proto::Udp) => self.burst_as::<14, false, F>(frames, len, tsc, rng),
            (18, Proto::Udp) => self.burst_as::<18, false, F>(frames, len, tsc, rng),
            (14, Proto::TcpSyn) => self.burst_as::<14, true, F>(frames, len, tsc, rng),
            _ => self.burst_as::<18, true, F>(frames, len, tsc, rng),
        }
    }

    #[inline(always)]
    fn emit_one<const L3: usize, const TCP: bool>(
        &mut self,
        buf: &mut [u8],
        tsc: u64,
        rng: &mut SmallRng,
    ) -> u32 {
        if buf.len() != self.sized_len {
            self.resize::<L3, TCP>(buf.len());
        }
        let mut cur = self.cur;
        let seq = self.next_seq;
        self.write::<L3, TCP>(buf, &mut cur, seq, tsc, rng);
        self.cur = cur;
        self.next_seq = seq.wrapping_add(1);
        self.sent += 1;
        seq
    }

    #[inline(always)]
    fn burst_as<const L3: usize, const TCP: bool, F: Frame>(
        &mut self,
        frames: &mut [F],
        len: usize,
        tsc: u64,
        rng: &mut SmallRng,
    ) -> usize {
        if len != self.sized_len {
            self.resize::<L3, TCP>(len);
        }
        // The cursors in locals for the burst (kept in registers: the
        // frames' bytes cannot alias them).
        let mut cur = self.cur;
        let mut seq = self.next_seq;
        let mut n = 0;
        for f in frames.iter_mut() {
            if !f.set_len(len) {
                break;
            }
            self.write::<L3, TCP>(f.data_mut(), &mut cur, seq, tsc, rng);
            seq = seq.wrapping_add(1);
            n += 1;
        }
        self.cur = cur;
        self.next_seq = seq;
        self.sent += n as u64;
        n
    }

    /// One packet into `buf` (its length is `self.sized_len`).
    #[inline(always)]
    fn write<const L3: usize, const TCP: bool>(
        &self,
        buf: &mut [u8],
        cur: &mut [u32; 4],
        seq: u32,
        tsc: u64,
        rng: &mut SmallRng,
    ) {
        let l4 = L3 + 20;
        let pay = l4 + if TCP { 20 } else { 8 };
        let hl = pay + payload::HEADER_LEN;
        let len = buf.len();
        assert!(len >= hl, "frame shorter than its headers");
        // The template, zero-padded: fixed-size copies in the common cases.
        if len >= TMPL {
            buf[..TMPL].copy_from_slice(&self.tmpl);
            if len > TMPL {
                buf[TMPL..].fill(0);
            }
        } else if len >= SHORT {
            // Two fixed-size copies, overlapping, cover SHORT..TMPL.
            buf[..SHORT].copy_from_slice(&self.tmpl[..SHORT]);
            let t = len - (TMPL - SHORT);
            buf[t..t + (TMPL - SHORT)].copy_from_slice(&self.tmpl[t..t + (TMPL - SHORT)]);
        } else {
            buf.copy_from_slice(&self.tmpl[..len]);
        }
        let [si, di, sp, dp] = self.advance(cur, rng);
        let src = u32::from(self.spec.src_ip.0).wrapping_add(si);
        let dst = u32::from(self.spec.dst_ip.0).wrapping_add(di);
        let sport = self.spec.src_port.0.wrapping_add(sp as u16);
        let dport = self.spec.dst_port.0.wrapping_add(dp as u16);
        let (n_src, n_dst, n_seq) = (w32(src), w32(dst), w32(seq));
        let n_tsc = w32((tsc >> 32) as u32) + w32(tsc as u32);
        let (ip_k, l4_k) = self.sized_k;
        // IPv4 header.
        buf[L3 + 12..L3 + 16].copy_from_slice(&src.to_be_bytes());
        buf[L3 + 16..L3 + 20].copy_from_slice(&dst.to_be_bytes());
        let ic = !fold64(ip_k + n_src + n_dst);
        buf[L3 + 10..L3 + 12].copy_from_slice(&ic.to_be_bytes());
        // L4: pseudo header (addresses, length), ports, seq, timestamp.
        let mut a = l4_k + n_src + n_dst + w16(sport) + w16(dport) + n_seq + n_tsc;
        buf[l4..l4 + 2].copy_from_slice(&sport.to_be_bytes());
        buf[l4 + 2..l4 + 4].copy_from_slice(&dport.to_be_bytes());
        if TCP {
            a += n_seq;
            buf[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
        }
        buf[pay + payload::OFF_SEQ..pay + payload::OFF_SEQ + 4].copy_from_slice(&seq.to_be_bytes());
        buf[pay + payload::OFF_TSC..pay + payload::OFF_TSC + 8].copy_from_slice(&tsc.to_be_bytes());
        let mut c = !fold64(a);
        let csum_off = if TCP { 16 } else { 6 };
        if !TCP && c == 0 {
            c = 0xffff;
        }
        buf[l4 + csum_off..l4 + csum_off + 2].copy_from_slice(&c.to_be_bytes());
    }
}

/// Frame sizes (including FCS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SizeDist {
    /// Every frame this size.
    Fixed(u16),
    /// Uniformly random in `min..=max`.
    Range(u16, u16),
    /// Weighted mix `(size, weight)`, sent as a deterministic interleaved
    /// cycle (smooth weighted round robin) so proportions are exact per cycle.
    Imix(Vec<(u16, u32)>),
}

impl SizeDist {
    /// The classic simple IMIX: 7 × 64, 4 × 594, 1 × 1518.
    pub fn imix_default() -> Self {
        SizeDist::Imix(vec![(64, 7), (594, 4), (1518, 1)])
    }
}

/// Draws frame sizes from a [`SizeDist`] without allocating per packet.
#[derive(Debug)]
pub struct Sizer {
    dist: SizeDist,
    cycle: Vec<u16>,
    pos: usize,
}

impl Sizer {
    /// Prepares the distribution (IMIX: builds its cycle, at most the sum
    /// of the weights long).
    pub fn new(dist: SizeDist) -> Self {
        let mut cycle = Vec::new();
        if let SizeDist::Imix(w) = &dist {
            let total: i64 = w.iter().map(|x| i64::from(x.1)).sum();
            let mut cur = vec![0i64; w.len()];
            for _ in 0..total {
                let mut best = 0;
                for (i, (_, wt)) in w.iter().enumerate() {
                    cur[i] += i64::from(*wt);
                    if cur[i] > cur[best] {
                        best = i;
                    }
                }
                cur[best] -= total;
                cycle.push(w[best].0);
            }
        }
        Sizer {
            dist,
            cycle,
            pos: 0,
        }
    }

    /// The next frame size (including FCS).
    #[inline]
    pub fn next(&mut self, rng: &mut SmallRng) -> u16 {
        match &self.dist {
            SizeDist::Fixed(n) => *n,
            SizeDist::Range(a, b) => rng.random_range(*a..=*b.max(a)),
            SizeDist::Imix(_) => {
                let Some(&s) = self.cycle.get(self.pos) else {
                    return 64;
                };
                self.pos = if self.pos + 1 >= self.cycle.len() {
                    0
                } else {
                    self.pos + 1
                };
                s
            }
        }
    }

    /// The size, when every frame has the same.
    #[inline]
    pub fn fixed(&self) -> Option<u16> {
        match self.dist {
            SizeDist::Fixed(n) => Some(n),
            _ => None,
        }
    }

    /// The largest size it can return.
    pub fn max(&self) -> u16 {
        match &self.dist {
            SizeDist::Fixed(n) => *n,
            SizeDist::Range(a, b) => *b.max(a),
            SizeDist::Imix(w) => w.iter().map(|x| x.0).max().unwrap_or(64),
        }
    }
}

/// A seeded small RNG.
pub fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}
