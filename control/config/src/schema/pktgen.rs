//! `[pktgen]`: the packet generator's schema.

use super::*;

/// `[pktgen]`: the packet generator (`qsplice pktgen`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PktgenConf {
    /// Name of the `[[ports]]` entry it sends on.
    pub tx_port: String,
    /// Name of the `[[ports]]` entry it receives on (empty: `tx_port`).
    pub rx_port: String,
    /// Target rate in packets/s (0 with `rate_bps` 0: as fast as possible).
    pub rate_pps: u64,
    /// Target rate in L1 bit/s (frame + FCS + 20 B preamble/IFG per frame).
    pub rate_bps: u64,
    /// Stop after this many packets (0: no limit).
    pub count: u64,
    /// Stop after this long of sending, ms (0: no limit).
    pub duration_ms: u64,
    /// Frames per TX burst; also the pacer's bucket depth.
    pub burst: u32,
    /// Keep receiving this long after the last frame is sent, ms.
    pub drain_ms: u64,
    /// Frame size distribution: `fixed` (`size`), `range` (`size_min..=size_max`)
    /// or `imix` (`imix` weights).
    pub size_mode: PktgenSizeMode,
    /// Frame size incl. FCS for `fixed`.
    pub size: u16,
    /// Smallest size of `range`.
    pub size_min: u16,
    /// Largest size of `range`.
    pub size_max: u16,
    /// `[[size, weight], …]` of `imix` (default 7:4:1 of 64/594/1518).
    pub imix: Vec<[u32; 2]>,
    /// Seed of random fields and sizes.
    pub seed: u64,
    /// Poll `rx_port` (false: transmit only, e.g. benchmarks on net_null).
    pub receive: bool,
    /// The streams (sent round robin).
    pub streams: Vec<PktgenStreamConf>,
}

impl Default for PktgenConf {
    fn default() -> Self {
        PktgenConf {
            tx_port: String::new(),
            rx_port: String::new(),
            rate_pps: 0,
            rate_bps: 0,
            count: 0,
            duration_ms: 0,
            burst: 32,
            drain_ms: 200,
            size_mode: PktgenSizeMode::Fixed,
            size: 64,
            size_min: 64,
            size_max: 1518,
            imix: vec![[64, 7], [594, 4], [1518, 1]],
            seed: 1,
            receive: true,
            streams: Vec::new(),
        }
    }
}

/// `pktgen.size_mode`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PktgenSizeMode {
    /// `size`.
    #[default]
    Fixed,
    /// Uniform in `size_min..=size_max`.
    Range,
    /// Weighted mix `imix`.
    Imix,
}

/// `pktgen.streams[].proto`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PktgenProto {
    /// UDP datagrams.
    #[default]
    Udp,
    /// TCP segments with SYN set.
    TcpSyn,
}

/// `pktgen.streams[].fields`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PktgenFields {
    /// Each ranged field steps by one per packet.
    #[default]
    Inc,
    /// Each ranged field is uniformly random.
    Random,
}

/// `[[pktgen.streams]]`: one stream template.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PktgenStreamConf {
    /// `udp` or `tcp-syn`.
    pub proto: PktgenProto,
    /// Ethernet source (empty: the tx port's MAC).
    pub src_mac: String,
    /// Ethernet destination (empty: the rx port's MAC).
    pub dst_mac: String,
    /// 802.1Q VID (0: untagged).
    pub vlan: u16,
    /// IPv4 source: `a.b.c.d` or a range `a.b.c.d-e.f.g.h`.
    pub src_ip: String,
    /// IPv4 destination: address or range.
    pub dst_ip: String,
    /// Source port: `n` or `n-m`.
    pub src_port: String,
    /// Destination port: `n` or `n-m`.
    pub dst_port: String,
    /// IPv4 TTL.
    pub ttl: u8,
    /// `inc` or `random`.
    pub fields: PktgenFields,
}

impl Default for PktgenStreamConf {
    fn default() -> Self {
        PktgenStreamConf {
            proto: PktgenProto::Udp,
            src_mac: String::new(),
            dst_mac: String::new(),
            vlan: 0,
            src_ip: "198.18.0.1".into(),
            dst_ip: "198.19.0.1".into(),
            src_port: "1024".into(),
            dst_port: "9".into(),
            ttl: 64,
            fields: PktgenFields::Inc,
        }
    }
}

/// Parses `a.b.c.d` or `a.b.c.d-e.f.g.h` (first ≤ last).
pub fn parse_ip_range(s: &str) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (Ipv4Addr, Ipv4Addr) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (u32::from(a) <= u32::from(b)).then_some((a, b))
}

/// Parses `n` or `n-m` (first ≤ last).
pub fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}
