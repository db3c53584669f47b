//! The config schema: serde types with defaults. Every table denies
//! unknown keys. Field docs are the reference (docs/config.md mirrors them).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::Deserialize;

use crate::lcores::parse_lcore_map;

mod dhcp;
mod lb;
mod loadgen;
mod pktgen;
pub use dhcp::*;
pub use lb::*;
pub use loadgen::*;
pub use pktgen::*;

/// The whole config.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// DPDK EAL: lcores, memory, logging.
    pub eal: EalConf,
    /// Packet buffer pools.
    pub mempool: MempoolConf,
    /// The lcore loop.
    pub engine: EngineConf,
    /// ARP / neighbour resolution.
    pub arp: ArpConf,
    /// Ports (1..=8).
    pub ports: Vec<PortConf>,
    /// Logging of the control thread.
    pub log: LogConf,
    /// The L4 load balancer (absent: no balancing).
    pub lb: Option<LbConf>,
    /// The DHCP server simulator (`qsplice dhcp-server`).
    pub dhcp_server: Option<DhcpServerConf>,
    /// The DHCP load tester (`qsplice dhcp-tester`).
    pub dhcp_tester: Option<DhcpTesterConf>,
    /// The packet generator (`qsplice pktgen`).
    pub pktgen: Option<PktgenConf>,
    /// The stateful load generator (`qsplice loadgen`).
    pub loadgen: Option<LoadgenConf>,
    /// The management listener (metrics, JSON API, `qsplice ctl`).
    pub management: ManagementConf,
    /// Route announcement of the VIPs by a BGP speaker (scale-out behind
    /// ECMP; needs `[lb]`).
    pub bgp: Option<BgpConf>,
    /// State shared with the other nodes of a cluster through Redis
    /// (needs `[lb]`).
    pub cluster: Option<ClusterConf>,
}

/// `[cluster]`: what the nodes of a cluster share through Redis.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConf {
    /// `redis://host:port[/db]` or `redis+unix:///path`.
    pub redis: String,
    /// Key prefix: the nodes of one cluster use the same.
    pub name: String,
    /// This node's name in locks and logs (empty: host name and PID).
    pub node: String,
    /// How often the shared records are read, ms.
    pub sync_interval_ms: u64,
    /// Connect / read / write timeout toward Redis, ms.
    pub timeout_ms: u64,
    /// Publish every spliced flow's record and adopt other nodes' flows
    /// (failover of established connections; address takeover).
    pub flow_sync: bool,
    /// A flow record's lifetime in Redis, s (long-lived flows are
    /// published again every period).
    pub flow_ttl_s: u64,
    /// Records (and lookups) queued per lcore toward the sync at most.
    pub flow_queue: usize,
    /// Lookups of unknown flows per second per lcore at most (a flood of
    /// stray segments must not become a flood of Redis commands).
    pub adopt_max_pps: u32,
}

impl Default for ClusterConf {
    fn default() -> Self {
        ClusterConf {
            redis: String::new(),
            name: "qsplice".into(),
            node: String::new(),
            sync_interval_ms: 500,
            timeout_ms: 500,
            flow_sync: true,
            flow_ttl_s: 120,
            flow_queue: 16_384,
            adopt_max_pps: 16_000,
        }
    }
}

/// `[bgp]`: announce each VIP address while this node can serve it, through
/// a BGP speaker on the node (BIRD 2) driven by its own control socket.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct BgpConf {
    /// The speaker: `"bird"` (BIRD 2).
    pub speaker: String,
    /// BIRD's control socket (`bird -s`).
    pub control_socket: String,
    /// The file qsplice writes with the routes to announce; the speaker's
    /// configuration includes it.
    pub routes_file: String,
    /// Name of the static protocol in `routes_file` (export it to the BGP
    /// sessions by this name).
    pub protocol: String,
    /// Withdraw every route when a data port's link is down or a worker
    /// lcore stops polling for this long, ms.
    pub stall_ms: u64,
    /// On shutdown, the routes are withdrawn first and new connections
    /// are still taken for this long (the router moves traffic away) before
    /// the usual drain, ms.
    pub withdraw_delay_ms: u64,
}

impl Default for BgpConf {
    fn default() -> Self {
        BgpConf {
            speaker: "bird".into(),
            control_socket: "/run/bird/bird.ctl".into(),
            routes_file: String::new(),
            protocol: "qsplice_vips".into(),
            stall_ms: 1000,
            withdraw_delay_ms: 1000,
        }
    }
}

/// `[management]`: the HTTP management listener of `qsplice run` / `lb`,
/// on a kernel socket served by the control thread.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ManagementConf {
    /// `"IP:port"` (port 0: any free port), `"unix:/absolute/path"`, or
    /// `"off"`.
    pub listen: String,
    /// File holding the bearer token every mutating call must present
    /// (mode 0600 or stricter). Absent: no token is asked for.
    pub token_file: Option<String>,
}

impl Default for ManagementConf {
    fn default() -> Self {
        ManagementConf {
            listen: "127.0.0.1:9180".into(),
            token_file: None,
        }
    }
}

/// Where `[management] listen` points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManagementListen {
    /// Disabled.
    Off,
    /// A TCP address.
    Tcp(std::net::SocketAddr),
    /// A Unix socket path.
    Unix(std::path::PathBuf),
}

impl ManagementConf {
    /// The parsed `listen` (validation has accepted it).
    pub fn parse_listen(&self) -> Result<ManagementListen, String> {
        let l = self.listen.trim();
        if l == "off" {
            return Ok(ManagementListen::Off);
        }
        if let Some(p) = l.strip_prefix("unix:") {
            let path = std::path::PathBuf::from(p);
            if !path.is_absolute() {
                return Err(
                    "a Unix socket path must be absolute (\"unix:/run/qsplice.sock\")".into(),
                );
            }
            return Ok(ManagementListen::Unix(path));
        }
        l.parse::<std::net::SocketAddr>()
            .map(ManagementListen::Tcp)
            .map_err(|_| {
                "expected \"IP:port\", \"[IPv6]:port\", \"unix:/path\" or \"off\"".to_string()
            })
    }
}

/// A congestion controller of `qsplice-tcp` (`lb.tcp_congestion`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TcpCongestion {
    /// RFC 9438 CUBIC, as Linux by default.
    #[default]
    Cubic,
    /// RFC 5681 / 6582 NewReno.
    Newreno,
    /// BBR's model (bandwidth × minimum RTT) sets the window; random loss
    /// does not shrink it. No pacing.
    Bbr,
}

/// Hugepage use.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Hugepages {
    /// Use hugepages if enough are free and hugetlbfs is mounted, else `--no-huge`.
    #[default]
    Auto,
    /// Require hugepages (EAL fails without them).
    On,
    /// Never use hugepages (`--no-huge`; slower, works everywhere).
    Off,
}

/// `[eal]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct EalConf {
    /// Lcore of the control thread.
    pub main_lcore: u32,
    /// Lcores running the packet loop; worker i polls queue i of every port.
    pub worker_lcores: Vec<u32>,
    /// Optional lcore→CPU map passed as `--lcores` (e.g. `"0@0,1@1"`).
    pub lcore_map: String,
    /// Memory for EAL, MiB.
    pub memory_mb: u32,
    /// Hugepage use.
    pub hugepages: Hugepages,
    /// EAL `--file-prefix`; empty: `qsplice-<pid>`.
    pub file_prefix: String,
    /// EAL `--in-memory` (no hugepage files left behind); only with hugepages.
    pub in_memory: bool,
    /// `"va"`, `"pa"` or `""` (EAL decides).
    pub iova_mode: String,
    /// Extra EAL arguments, appended verbatim.
    pub extra_args: Vec<String>,
    /// EAL log level.
    pub log_level: String,
}

impl Default for EalConf {
    fn default() -> Self {
        EalConf {
            main_lcore: 0,
            worker_lcores: vec![1],
            lcore_map: String::new(),
            memory_mb: 512,
            hugepages: Hugepages::Auto,
            file_prefix: String::new(),
            in_memory: true,
            iova_mode: "va".into(),
            extra_args: Vec::new(),
            log_level: "notice".into(),
        }
    }
}

/// `[mempool]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConf {
    /// Mbufs per pool (one pool per NUMA socket running workers).
    pub mbufs: u32,
    /// Per-lcore mbuf cache.
    pub cache: u32,
    /// Buffer size including the 128-byte headroom.
    pub data_room: u16,
}

impl Default for MempoolConf {
    fn default() -> Self {
        MempoolConf {
            mbufs: 8191,
            cache: 250,
            data_room: 2176,
        }
    }
}

/// `[engine]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConf {
    /// Rx burst size.
    pub burst: u32,
    /// TX buffer flush timeout, µs.
    pub tx_drain_us: u64,
    /// Counter aggregation/print period, ms; 0 disables printing.
    pub stats_interval_ms: u64,
    /// Sleep after an empty poll, µs; 0 = pure busy polling.
    pub idle_sleep_us: u64,
    /// With `idle_sleep_us`, keep polling until nothing has arrived for
    /// this long, µs, before sleeping; 0 = sleep after the first empty poll.
    pub idle_spin_us: u64,
    /// Poll the ports' kernel interfaces (exception path) this often, µs.
    pub kernel_poll_us: u64,
    /// Frames per second one worker hands to the kernel interfaces at most
    /// (0: no limit).
    pub kernel_max_pps: u64,
}

impl Default for EngineConf {
    fn default() -> Self {
        EngineConf {
            burst: 32,
            tx_drain_us: 100,
            stats_interval_ms: 1000,
            idle_sleep_us: 0,
            idle_spin_us: 0,
            kernel_poll_us: 200,
            kernel_max_pps: 20_000,
        }
    }
}

/// `[arp]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ArpConf {
    /// Lifetime of a confirmed neighbour, ms.
    pub reachable_ms: u64,
    /// Retransmit interval of unanswered requests, ms.
    pub probe_interval_ms: u64,
    /// Requests before a resolution fails.
    pub max_probes: u32,
    /// Announce our addresses at start.
    pub gratuitous_on_start: bool,
    /// Neighbour entries per worker (power of two).
    pub table_size: u32,
}

impl Default for ArpConf {
    fn default() -> Self {
        ArpConf {
            reachable_ms: 30_000,
            probe_interval_ms: 1000,
            max_probes: 3,
            gratuitous_on_start: true,
            table_size: 1024,
        }
    }
}

/// One `[[ports]]` entry.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PortConf {
    /// Unique name, `[a-z0-9_-]{1,32}`.
    pub name: String,
    /// DPDK vdev spec (`net_af_packet0,iface=X`, `net_null0`…) or PCI address.
    pub device: String,
    /// Rx descriptors per queue (power of two).
    pub rx_desc: u16,
    /// Tx descriptors per queue (power of two).
    pub tx_desc: u16,
    /// MTU.
    pub mtu: u16,
    /// Promiscuous mode.
    pub promiscuous: bool,
    /// RSS over worker queues where the PMD supports it.
    pub rss: bool,
    /// Addresses (CIDR) owned on this port: IPv4 (`10.0.0.1/24`) and IPv6
    /// (`2001:db8::1/64`) in one list; it dereferences to the IPv4 ones
    /// ([`PortAddrs::v6`] for the others).
    pub addresses: PortAddrs,
    /// Neighbours to resolve at start and keep fresh: IPv4 (ARP) and
    /// IPv6 (NDP) in one list; it dereferences to the IPv4 ones
    /// ([`NeighborList::v6`] for the others).
    pub neighbors: NeighborList,
    /// Next hop for destinations outside the port's subnets (`""` or
    /// absent: none).
    #[serde(deserialize_with = "opt_ipv4")]
    pub gateway: Option<Ipv4Addr>,
    /// IPv6 next hop for destinations outside the port's IPv6 prefixes
    /// (`""` or absent: none).
    #[serde(deserialize_with = "opt_ipv6")]
    pub gateway6: Option<Ipv6Addr>,
    /// The exception path: a kernel interface of this name (a DPDK
    /// `net_tap` device) stands for the port in the kernel, with the port's
    /// MAC, MTU and addresses; what the dataplane does not serve on the
    /// port's addresses goes to it, and what the kernel sends leaves
    /// through the port (a routing daemon, sshd, … run unchanged).
    pub kernel_iface: Option<String>,
}

/// Rx and tx descriptors of each queue of a kernel interface (exception
/// path: control traffic, not the data path).
pub const KERNEL_DESC: u16 = 128;

/// `""` → `None`, else an IPv4 address.
fn opt_ipv4<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Ipv4Addr>, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("invalid IPv4 address `{s}`")))
}

/// `""` → `None`, else an IPv6 address.
fn opt_ipv6<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Ipv6Addr>, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("invalid IPv6 address `{s}`")))
}

/// `ports[].neighbors`: IPv4 and IPv6 neighbours in one list.
/// Dereferences to the IPv4 ones.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "Vec<std::net::IpAddr>")]
pub struct NeighborList {
    v4: Vec<Ipv4Addr>,
    pos4: Vec<usize>,
    v6: Vec<Ipv6Addr>,
    pos6: Vec<usize>,
}

impl From<Vec<std::net::IpAddr>> for NeighborList {
    fn from(v: Vec<std::net::IpAddr>) -> NeighborList {
        let mut n = NeighborList::default();
        for (i, a) in v.into_iter().enumerate() {
            match a {
                std::net::IpAddr::V4(a) => {
                    n.v4.push(a);
                    n.pos4.push(i);
                }
                std::net::IpAddr::V6(a) => {
                    n.v6.push(a);
                    n.pos6.push(i);
                }
            }
        }
        n
    }
}

impl From<Vec<Ipv4Addr>> for NeighborList {
    fn from(v: Vec<Ipv4Addr>) -> NeighborList {
        NeighborList::from(v.into_iter().map(std::net::IpAddr::V4).collect::<Vec<_>>())
    }
}

impl std::ops::Deref for NeighborList {
    type Target = Vec<Ipv4Addr>;
    fn deref(&self) -> &Vec<Ipv4Addr> {
        &self.v4
    }
}

impl NeighborList {
    /// The IPv6 neighbours.
    pub fn v6(&self) -> &[Ipv6Addr] {
        &self.v6
    }
    /// The list position of IPv4 neighbour `j` (error keys).
    pub fn pos4(&self, j: usize) -> usize {
        self.pos4.get(j).copied().unwrap_or(j)
    }
    /// The list position of IPv6 neighbour `j`.
    pub fn pos6(&self, j: usize) -> usize {
        self.pos6.get(j).copied().unwrap_or(j)
    }
}

impl Cidr6 {
    /// Whether `ip` is in this prefix.
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        let m = if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix.min(128)))
        };
        (u128::from(ip) ^ u128::from(self.addr)) & m == 0
    }
}

/// The DPDK device name of port `i`'s kernel interface (`net_tap` PMD).
pub fn kernel_vdev(i: usize) -> String {
    format!("net_tap_qsk{i}")
}

/// The name the spec uses for a `[[ports]]` entry.
pub type Port = PortConf;

impl Default for PortConf {
    fn default() -> Self {
        PortConf {
            name: String::new(),
            device: String::new(),
            rx_desc: 1024,
            tx_desc: 1024,
            mtu: 1500,
            promiscuous: false,
            rss: true,
            addresses: PortAddrs::default(),
            neighbors: NeighborList::default(),
            gateway: None,
            gateway6: None,
            kernel_iface: None,
        }
    }
}

impl PortConf {
    /// Whether the device is a virtual device (`net_…`) rather than a PCI address.
    pub fn is_vdev(&self) -> bool {
        self.device.starts_with("net_")
    }
    /// The vdev/device name DPDK registers (text before the first comma):
    /// what `rte_eth_dev_get_port_by_name` takes.
    pub fn dev_name(&self) -> &str {
        self.device.split(',').next().unwrap_or(&self.device)
    }
    /// The value of a `key=value` option of a vdev spec.
    pub fn vdev_arg(&self, key: &str) -> Option<&str> {
        if !self.is_vdev() {
            return None;
        }
        self.device
            .split(',')
            .skip(1)
            .find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key))
            .map(|(_, v)| v)
    }
    /// The kernel interface (`iface=`) of an af_packet or af_xdp vdev.
    pub fn iface(&self) -> Option<&str> {
        let n = self.dev_name();
        if !n.starts_with("net_af_packet") && !n.starts_with("net_af_xdp") {
            return None;
        }
        self.vdev_arg("iface")
    }
    /// The PCI address in full `DDDD:BB:DD.F` form (lowercase), for a PCI
    /// port; `None` for a vdev.
    pub fn pci_addr(&self) -> Option<String> {
        if self.is_vdev() {
            return None;
        }
        let d = self.device.to_ascii_lowercase();
        Some(if d.matches(':').count() == 1 {
            format!("0000:{d}")
        } else {
            d
        })
    }
}

/// `[log]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConf {
    /// tracing filter directive, e.g. `info` or `qsplice=debug`.
    pub level: String,
    /// Output format.
    pub format: LogFormat,
}

impl Default for LogConf {
    fn default() -> Self {
        LogConf {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `ports[].addresses`: IPv4 and IPv6 interface addresses in one list.
/// Dereferences to the IPv4 ones (what most rules are about).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "Vec<PortAddr>")]
pub struct PortAddrs {
    v4: Vec<Cidr>,
    /// Position of each IPv4 address in the list (for error keys).
    pos4: Vec<usize>,
    v6: Vec<Cidr6>,
    pos6: Vec<usize>,
}

/// One entry of `ports[].addresses`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum PortAddr {
    /// `a.b.c.d/len`.
    V4(Cidr),
    /// `x:y::z/len`.
    V6(Cidr6),
}

impl TryFrom<String> for PortAddr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.contains(':') {
            s.parse().map(PortAddr::V6)
        } else {
            s.parse().map(PortAddr::V4)
        }
    }
}

impl From<Vec<PortAddr>> for PortAddrs {
    fn from(v: Vec<PortAddr>) -> PortAddrs {
        let mut a = PortAddrs::default();
        for (i, x) in v.into_iter().enumerate() {
            match x {
                PortAddr::V4(c) => {
                    a.v4.push(c);
                    a.pos4.push(i);
                }
                PortAddr::V6(c) => {
                    a.v6.push(c);
                    a.pos6.push(i);
                }
            }
        }
        a
    }
}

impl From<Vec<Cidr>> for PortAddrs {
    fn from(v: Vec<Cidr>) -> PortAddrs {
        PortAddrs::from(v.into_iter().map(PortAddr::V4).collect::<Vec<_>>())
    }
}

impl std::ops::Deref for PortAddrs {
    type Target = Vec<Cidr>;
    fn deref(&self) -> &Vec<Cidr> {
        &self.v4
    }
}

impl<'a> IntoIterator for &'a PortAddrs {
    type Item = &'a Cidr;
    type IntoIter = std::slice::Iter<'a, Cidr>;
    fn into_iter(self) -> Self::IntoIter {
        self.v4.iter()
    }
}

impl PortAddrs {
    /// The IPv6 addresses.
    pub fn v6(&self) -> &[Cidr6] {
        &self.v6
    }
    /// The list position of IPv4 address `j` (error keys).
    pub fn pos4(&self, j: usize) -> usize {
        self.pos4.get(j).copied().unwrap_or(j)
    }
    /// The list position of IPv6 address `j`.
    pub fn pos6(&self, j: usize) -> usize {
        self.pos6.get(j).copied().unwrap_or(j)
    }
}

/// An IPv6 interface address with its prefix, `2001:db8::1/64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr6 {
    /// The address.
    pub addr: Ipv6Addr,
    /// Prefix length 0..=128.
    pub prefix: u8,
}

impl FromStr for Cidr6 {
    type Err = String;
    /// `x:y::z/len`; the message of an error names what is wrong.
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| "missing `/prefix` (expected e.g. 2001:db8::1/64)".to_string())?;
        let addr: Ipv6Addr = a
            .parse()
            .map_err(|_| format!("invalid IPv6 address `{a}`"))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| *p <= 128)
            .ok_or_else(|| format!("invalid prefix length `{p}` (must be 0..=128)"))?;
        Ok(Cidr6 { addr, prefix })
    }
}

impl TryFrom<String> for Cidr6 {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for Cidr6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An interface address with its prefix, `10.10.1.1/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr {
    /// The address.
    pub addr: Ipv4Addr,
    /// Prefix length 0..=32.
    pub prefix: u8,
}

impl Cidr {
    /// Netmask as u32.
    pub fn mask_u32(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }
    /// Netmask.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask_u32())
    }
    /// Network address.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask_u32())
    }
    /// Broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask_u32())
    }
    /// Whether `ip` is in this subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) ^ u32::from(self.addr)) & self.mask_u32() == 0
    }
}

impl FromStr for Cidr {
    type Err = String;
    /// `a.b.c.d/len`; the message of an error names what is wrong.
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| "missing `/prefix` (expected e.g. 10.0.0.1/24)".to_string())?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("invalid IPv4 address `{a}`"))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("invalid prefix length `{p}` (must be 0..=32)"))?;
        Ok(Cidr { addr, prefix })
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl EalConf {
    /// CPUs of the main lcore and of every worker lcore: from `lcore_map`
    /// when set, else lcore *n* on CPU *n*. An lcore the map lists with
    /// several CPUs floats over them. Lcores the map lacks (rejected by
    /// validation) fall back to 1:1.
    pub fn lcore_cpus(&self) -> BTreeMap<u32, Vec<u32>> {
        let map = parse_lcore_map(&self.lcore_map).unwrap_or_default();
        std::iter::once(self.main_lcore)
            .chain(self.worker_lcores.iter().copied())
            .map(|l| (l, map.get(&l).cloned().unwrap_or_else(|| vec![l])))
            .collect()
    }
}

impl Config {
    /// The smallest `mempool.mbufs` a pool serving `workers` worker lcores
    /// needs: every rx and tx descriptor of their queues on every port can
    /// hold an mbuf, and each worker holds its mempool cache plus in-flight
    /// packets: one rx burst, and up to two bursts per port in its TX buffer
    /// (forwarded packets plus the ones it builds itself: ARP, ICMP).
    pub fn mbufs_needed(&self, workers: u32) -> u64 {
        let rings: u64 = self
            .ports
            .iter()
            .map(|p| {
                let kernel = if p.kernel_iface.is_some() {
                    2 * u64::from(KERNEL_DESC)
                } else {
                    0
                };
                (u64::from(p.rx_desc) + u64::from(p.tx_desc) + kernel) * u64::from(workers)
            })
            .sum();
        rings + u64::from(workers) * self.mbufs_per_worker()
    }

    /// Cache plus in-flight bursts of one worker (see [`Config::mbufs_needed`]).
    pub(crate) fn mbufs_per_worker(&self) -> u64 {
        u64::from(self.mempool.cache)
            + u64::from(self.engine.burst) * (1 + 2 * self.ports.len() as u64)
    }

    /// The EAL argv for this config. `hugepages_available` is what
    /// [`crate::hugepages_available`] reported (used when `hugepages = "auto"`).
    pub fn eal_args(&self, pid: u32, hugepages_available: bool) -> Vec<String> {
        let e = &self.eal;
        let mut a: Vec<String> = vec!["qsplice".into()];
        if e.lcore_map.is_empty() {
            let mut l: Vec<u32> = std::iter::once(e.main_lcore)
                .chain(e.worker_lcores.iter().copied())
                .collect();
            l.sort_unstable();
            l.dedup();
            a.push("-l".into());
            a.push(
                l.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            );
        } else {
            a.push("--lcores".into());
            a.push(e.lcore_map.clone());
        }
        a.push("--main-lcore".into());
        a.push(e.main_lcore.to_string());
        a.push("--file-prefix".into());
        a.push(if e.file_prefix.is_empty() {
            format!("qsplice-{pid}")
        } else {
            e.file_prefix.clone()
        });
        let huge = match e.hugepages {
            Hugepages::On => true,
            Hugepages::Off => false,
            Hugepages::Auto => hugepages_available,
        };
        a.push("-m".into());
        a.push(e.memory_mb.to_string());
        // DPDK 22.11 turns --no-huge into legacy memory mode, which rejects
        // --in-memory ("Option --legacy-mem is not compatible with
        // --in-memory"), so --in-memory / --huge-unlink only go with hugepages.
        if huge {
            if e.in_memory {
                a.push("--in-memory".into());
            } else {
                a.push("--huge-unlink".into());
            }
        } else {
            a.push("--no-huge".into());
        }
        if !e.iova_mode.is_empty() {
            a.push("--iova-mode".into());
            a.push(e.iova_mode.clone());
        }
        a.push("--log-level".into());
        a.push(e.log_level.clone());
        let mut pci = false;
        for p in &self.ports {
            if p.is_vdev() {
                a.push("--vdev".into());
            } else {
                a.push("-a".into());
                pci = true;
            }
            a.push(p.device.clone());
        }
        for (i, p) in self.ports.iter().enumerate() {
            if let Some(k) = &p.kernel_iface {
                a.push("--vdev".into());
                a.push(format!("{},iface={k}", kernel_vdev(i)));
            }
        }
        if !pci {
            a.push("--no-pci".into());
        }
        a.extend(e.extra_args.iter().cloned());
        a
    }
}
