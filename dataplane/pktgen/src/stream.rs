//! Stream templates: the headers of a stream are built once; per packet the
//! hot path copies the template prefix, zeroes the padding and rewrites the
//! varying fields (addresses, ports, lengths, sequence number, timestamp)
//! with RFC 1624 incremental checksum updates (eq. 3, accumulated over the
//! changed words and folded once per checksum).

use qsplice_wire::checksum::fold;
use qsplice_wire::{ethertype, ip_proto, Ipv4Addr, Ipv4Packet, TcpFlags, TcpPacket, UdpPacket};
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

/// A built stream: template bytes, offsets, base values, field cursors.
#[derive(Debug)]
pub struct Stream {
    /// The spec it was built from.
    pub spec: StreamSpec,
    tmpl: Vec<u8>,
    l3: usize,
    l4: usize,
    pay: usize,
    base_ip_csum: u16,
    base_l4_csum: u16,
    base_total_len: u16,
    base_l4_len: u16,
    src_span: u32,
    dst_span: u32,
    sport_span: u32,
    dport_span: u32,
    cur: [u32; 4],
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

impl Stream {
    /// Builds the template (headers for the smallest frame; checksums
    /// computed once in full).
    pub fn new(spec: StreamSpec) -> Self {
        let hl = header_len(spec.vlan.is_some(), spec.proto);
        let mut t = vec![0u8; hl];
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
        payload::write_header(&mut t[pay..], spec.id, 0, 0);
        let (src, dst) = (spec.src_ip.0, spec.dst_ip.0);
        let total = (hl - l3) as u16;
        let l4_len = (hl - l4) as u16;
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut t[l3..]);
            ip.set_version(4);
            ip.set_header_len(20);
            ip.set_total_len(total);
            ip.set_ident(0);
            ip.set_dont_frag(true);
            ip.set_ttl(spec.ttl);
            ip.set_protocol(match spec.proto {
                Proto::Udp => ip_proto::UDP,
                Proto::TcpSyn => ip_proto::TCP,
            });
            ip.set_src_addr(src);
            ip.set_dst_addr(dst);
            ip.fill_checksum();
        }
        match spec.proto {
            Proto::Udp => {
                let mut u = UdpPacket::new_unchecked(&mut t[l4..]);
                u.set_src_port(spec.src_port.0);
                u.set_dst_port(spec.dst_port.0);
                u.set_len(l4_len);
                u.fill_checksum(src, dst);
            }
            Proto::TcpSyn => {
                let mut s = TcpPacket::new_unchecked(&mut t[l4..]);
                s.set_src_port(spec.src_port.0);
                s.set_dst_port(spec.dst_port.0);
                s.set_seq_number(0);
                s.set_ack_number(0);
                s.set_header_len(20);
                s.set_flags(TcpFlags::SYN);
                s.set_window_len(65535);
                s.fill_checksum(src, dst);
            }
        }
        let base_ip_csum = u16::from_be_bytes([t[l3 + 10], t[l3 + 11]]);
        let off = match spec.proto {
            Proto::Udp => 6,
            Proto::TcpSyn => 16,
        };
        let base_l4_csum = u16::from_be_bytes([t[l4 + off], t[l4 + off + 1]]);
        Stream {
            src_span: span_ip(spec.src_ip),
            dst_span: span_ip(spec.dst_ip),
            sport_span: span_port(spec.src_port),
            dport_span: span_port(spec.dst_port),
            spec,
            tmpl: t,
            l3,
            l4,
            pay,
            base_ip_csum,
            base_l4_csum,
            base_total_len: total,
            base_l4_len: l4_len,
            cur: [0; 4],
            next_seq: 0,
            sent: 0,
        }
    }

    /// Bytes of the template prefix (the smallest frame, without FCS).
    pub fn header_len(&self) -> usize {
        self.tmpl.len()
    }

    fn advance(&mut self, rng: &mut SmallRng) -> [u32; 4] {
        let spans = [
            self.src_span,
            self.dst_span,
            self.sport_span,
            self.dport_span,
        ];
        let v = self.cur;
        match self.spec.mode {
            FieldMode::Inc => {
                for (c, s) in self.cur.iter_mut().zip(spans) {
                    *c = if c.wrapping_add(1) >= s { 0 } else { *c + 1 };
                }
                v
            }
            FieldMode::Random => spans.map(|s| rng.random_range(0..s)),
        }
    }

    /// Writes the next packet of the stream into `buf` (exactly the frame
    /// without FCS; `buf.len() >= header_len()`), stamped with `tsc`.
    /// Returns the sequence number used.
    pub fn emit(&mut self, buf: &mut [u8], tsc: u64, rng: &mut SmallRng) -> u32 {
        let hl = self.tmpl.len();
        let len = buf.len();
        buf[..hl].copy_from_slice(&self.tmpl);
        buf[hl..].fill(0);
        let [si, di, sp, dp] = self.advance(rng);
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        self.sent += 1;
        let (l3, l4, pay) = (self.l3, self.l4, self.pay);
        let src0 = self.spec.src_ip.0;
        let dst0 = self.spec.dst_ip.0;
        let src = Ipv4Addr::from(u32::from(src0).wrapping_add(si));
        let dst = Ipv4Addr::from(u32::from(dst0).wrapping_add(di));
        let sport = self.spec.src_port.0.wrapping_add(sp as u16);
        let dport = self.spec.dst_port.0.wrapping_add(dp as u16);
        let total = (len - l3) as u16;
        let l4_len = (len - l4) as u16;
        // IPv4 header: RFC 1624 eq. 3 over all changed words, folded once
        // (one's complement addition is associative: same result as one
        // `update_*` per field).
        let mut ia = 0u32;
        acc16(&mut ia, self.base_total_len, total);
        acc32(&mut ia, u32::from(src0), u32::from(src));
        acc32(&mut ia, u32::from(dst0), u32::from(dst));
        buf[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
        buf[l3 + 12..l3 + 16].copy_from_slice(&src.octets());
        buf[l3 + 16..l3 + 20].copy_from_slice(&dst.octets());
        let ic = !fold(u32::from(!self.base_ip_csum) + ia);
        buf[l3 + 10..l3 + 12].copy_from_slice(&ic.to_be_bytes());
        // L4: pseudo header (addresses, length), ports, seq, timestamp.
        let mut a = 0u32;
        acc32(&mut a, u32::from(src0), u32::from(src));
        acc32(&mut a, u32::from(dst0), u32::from(dst));
        acc16(&mut a, self.base_l4_len, l4_len);
        acc16(&mut a, self.spec.src_port.0, sport);
        acc16(&mut a, self.spec.dst_port.0, dport);
        buf[l4..l4 + 2].copy_from_slice(&sport.to_be_bytes());
        buf[l4 + 2..l4 + 4].copy_from_slice(&dport.to_be_bytes());
        let csum_off = match self.spec.proto {
            Proto::Udp => {
                acc16(&mut a, self.base_l4_len, l4_len);
                buf[l4 + 4..l4 + 6].copy_from_slice(&l4_len.to_be_bytes());
                6
            }
            Proto::TcpSyn => {
                acc32(&mut a, 0, seq);
                buf[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
                16
            }
        };
        acc32(&mut a, 0, seq);
        acc32(&mut a, 0, (tsc >> 32) as u32);
        acc32(&mut a, 0, tsc as u32);
        let mut c = !fold(u32::from(!self.base_l4_csum) + a);
        buf[pay + payload::OFF_SEQ..pay + payload::OFF_SEQ + 4].copy_from_slice(&seq.to_be_bytes());
        buf[pay + payload::OFF_TSC..pay + payload::OFF_TSC + 8].copy_from_slice(&tsc.to_be_bytes());
        if self.spec.proto == Proto::Udp && c == 0 {
            c = 0xffff;
        }
        buf[l4 + csum_off..l4 + csum_off + 2].copy_from_slice(&c.to_be_bytes());
        seq
    }
}

/// RFC 1624: adds `~old + new` of one changed 16-bit word to an accumulator
/// (at most 16 words per packet here: no overflow of the u32).
#[inline(always)]
fn acc16(a: &mut u32, old: u16, new: u16) {
    *a += u32::from(!old) + u32::from(new);
}

/// [`acc16`] for a 32-bit field at an even offset.
#[inline(always)]
fn acc32(a: &mut u32, old: u32, new: u32) {
    acc16(a, (old >> 16) as u16, (new >> 16) as u16);
    acc16(a, old as u16, new as u16);
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
