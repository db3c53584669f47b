//! The config schema: serde types with defaults. Every table denies
//! unknown keys. Field docs are the reference (docs/config.md mirrors them).

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::Deserialize;

use crate::lcores::parse_lcore_map;

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
    /// The management listener (metrics, JSON API, `qsplice ctl`).
    pub management: ManagementConf,
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
}

impl Default for EngineConf {
    fn default() -> Self {
        EngineConf {
            burst: 32,
            tx_drain_us: 100,
            stats_interval_ms: 1000,
            idle_sleep_us: 0,
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
    /// IPv4 addresses (CIDR) owned on this port.
    pub addresses: Vec<Cidr>,
    /// Neighbours to resolve at start and keep fresh.
    pub neighbors: Vec<Ipv4Addr>,
    /// Next hop for destinations outside the port's subnets (`""` or
    /// absent: none).
    #[serde(deserialize_with = "opt_ipv4")]
    pub gateway: Option<Ipv4Addr>,
}

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
            addresses: Vec::new(),
            neighbors: Vec::new(),
            gateway: None,
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
            .map(|p| (u64::from(p.rx_desc) + u64::from(p.tx_desc)) * u64::from(workers))
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
        if !pci {
            a.push("--no-pci".into());
        }
        a.extend(e.extra_args.iter().cloned());
        a
    }
}

/// `[lb]`: the L4 load balancer (`qsplice lb`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LbConf {
    /// Name of the port facing clients (owns the VIP addresses).
    pub client_port: String,
    /// Name of the port facing backends (owns `local`).
    pub backend_port: String,
    /// Source address of backend connections; empty: the backend port's
    /// first address.
    #[serde(deserialize_with = "opt_ipv4")]
    pub local: Option<Ipv4Addr>,
    /// Lowest source port of backend connections.
    pub source_port_min: u16,
    /// Highest source port of backend connections.
    pub source_port_max: u16,
    /// Flow table size per worker lcore.
    pub max_flows: u32,
    /// Connections waiting for a backend's SYN-ACK per lcore.
    pub max_connecting: u32,
    /// First backend SYN retransmission timeout, ms (doubles per retry).
    pub syn_rto_ms: u64,
    /// Backend SYN retransmissions before the client is reset.
    pub syn_retries: u8,
    /// Other backends tried after one refuses or does not answer.
    pub retries: u8,
    /// Idle timeout of a flow, s.
    pub idle_timeout_s: u64,
    /// Graceful shutdown: how long established connections may finish
    /// after SIGTERM / `ctl shutdown` before the rest are reset, s.
    pub shutdown_grace_s: u64,
    /// How long a closed flow is kept for late segments, ms.
    pub linger_ms: u64,
    /// Window scale announced to clients that offer window scaling.
    pub window_scale: u8,
    /// Smallest MSS a peer may make the appliance send (a peer announcing
    /// less is treated as announcing this).
    pub min_mss: u16,
    /// Congestion control of the appliance's own TCP endpoints (the client
    /// and backend legs of TLS-terminated VIPs).
    pub tcp_congestion: TcpCongestion,
    /// Half-open connections answered statefully per worker lcore.
    pub syn_backlog: u32,
    /// Stateful SYN answers per second per worker lcore (0: no limit).
    pub syn_rate: u32,
    /// Terminated TLS connections per worker lcore.
    pub tls_max_conns: u32,
    /// The server mapping table of session-aware dispatch.
    pub sessions: SessionsConf,
    /// The access log (one line per connection).
    pub access_log: AccessLogConf,
    /// Active health checks.
    pub health: HealthConf,
    /// Virtual services.
    pub vips: Vec<VipConf>,
}

impl Default for LbConf {
    fn default() -> Self {
        LbConf {
            client_port: String::new(),
            backend_port: String::new(),
            local: None,
            source_port_min: 10_000,
            source_port_max: 60_999,
            max_flows: 65_536,
            max_connecting: 4096,
            syn_rto_ms: 250,
            syn_retries: 3,
            retries: 2,
            idle_timeout_s: 300,
            shutdown_grace_s: 10,
            linger_ms: 2000,
            window_scale: 7,
            min_mss: 536,
            tcp_congestion: TcpCongestion::Cubic,
            syn_backlog: 4096,
            syn_rate: 50_000,
            tls_max_conns: 4096,
            sessions: SessionsConf::default(),
            access_log: AccessLogConf::default(),
            health: HealthConf::default(),
            vips: Vec::new(),
        }
    }
}

/// `[lb.access_log]`: one JSON line per connection at its end.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AccessLogConf {
    /// File to append to, `"-"` for stdout; absent: no access log.
    pub path: Option<String>,
    /// Log one connection in this many (1: every connection).
    pub sample: u32,
    /// Records each lcore's ring holds before the control thread drains it.
    pub ring: u32,
}

impl Default for AccessLogConf {
    fn default() -> Self {
        AccessLogConf {
            path: None,
            sample: 1,
            ring: 16384,
        }
    }
}

/// `[lb.sessions]`: the server mapping table (session-aware VIPs).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConf {
    /// Reference age: rows not used for this long are deleted, s.
    pub max_age_s: u64,
    /// Sessions remembered per VIP at most (oldest evicted first).
    pub max_keys: u32,
    /// How often expired rows are swept, ms.
    pub sweep_interval_ms: u64,
}

impl Default for SessionsConf {
    fn default() -> Self {
        SessionsConf {
            max_age_s: 300,
            max_keys: 100_000,
            sweep_interval_ms: 1000,
        }
    }
}

/// Scheduling policy of a VIP.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyConf {
    /// Eligible backends in turn.
    #[default]
    RoundRobin,
    /// Smooth weighted round robin.
    WeightedRoundRobin,
    /// Fewest active connections per weight.
    LeastConnections,
    /// Maglev consistent hashing on the client address.
    Maglev,
    /// TLS pass-through: the backend that holds the client's TLS session
    /// (server mapping table), else round robin.
    SessionAware,
}

/// `[[lb.vips]]`: one virtual service.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VipConf {
    /// Name (counters, logs).
    pub name: String,
    /// `address:port` clients connect to.
    pub address: std::net::SocketAddrV4,
    /// Scheduling policy.
    #[serde(default)]
    pub policy: PolicyConf,
    /// The pool.
    pub backends: Vec<BackendConf>,
    /// TLS handling: `off` (TCP spliced as is) or `terminate`.
    #[serde(default)]
    pub tls: TlsModeConf,
    /// TLS termination settings (`tls = "terminate"`).
    #[serde(default)]
    pub tls_options: Option<VipTlsConf>,
    /// Content-aware dispatch rules (plaintext HTTP VIPs), first match wins.
    #[serde(default)]
    pub rules: Vec<ContentRuleConf>,
}

/// `[[lb.vips.rules]]`: a content-aware dispatch rule.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ContentRuleConf {
    /// `Host` header to match (case-insensitive, port ignored).
    #[serde(default)]
    pub host: Option<String>,
    /// Request-target prefix to match.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Cookie `name=value` to match.
    #[serde(default)]
    pub cookie: Option<String>,
    /// Backends (addresses among the VIP's) that serve matching requests.
    pub backends: Vec<std::net::SocketAddrV4>,
}

/// What a VIP does with TLS.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsModeConf {
    /// Nothing: the TCP connection is spliced to a backend as is.
    #[default]
    Off,
    /// Each lcore terminates TLS and relays plaintext to the backend.
    Terminate,
}

/// Post-quantum key-exchange policy of a terminated VIP.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsPolicyConf {
    /// Hybrid whenever the client sends a hybrid share, else classical.
    #[default]
    Prefer,
    /// Post-quantum groups only (HelloRetryRequest / handshake failure).
    Require,
}

/// A key-exchange group, by its IANA name.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
pub enum TlsGroupConf {
    /// X25519 + ML-KEM-768.
    #[serde(rename = "X25519MLKEM768")]
    X25519MlKem768,
    /// P-256 + ML-KEM-768.
    #[serde(rename = "SecP256r1MLKEM768")]
    SecP256r1MlKem768,
    /// ML-KEM-768.
    #[serde(rename = "MLKEM768")]
    MlKem768,
    /// ML-KEM-1024.
    #[serde(rename = "MLKEM1024")]
    MlKem1024,
    /// X25519.
    #[serde(rename = "X25519")]
    X25519,
    /// NIST P-256.
    #[serde(rename = "secp256r1")]
    Secp256r1,
    /// NIST P-384.
    #[serde(rename = "secp384r1")]
    Secp384r1,
}

impl TlsGroupConf {
    /// Post-quantum (hybrid or ML-KEM)?
    pub fn is_post_quantum(self) -> bool {
        matches!(
            self,
            TlsGroupConf::X25519MlKem768
                | TlsGroupConf::SecP256r1MlKem768
                | TlsGroupConf::MlKem768
                | TlsGroupConf::MlKem1024
        )
    }
}

/// Cipher suite names `cipher_suites` accepts: those of the aws-lc-rs
/// provider, TLS 1.3 (`TLS13_*`) then TLS 1.2 (`TLS_ECDHE_*`).
pub const TLS_CIPHER_SUITES: [&str; 9] = [
    "TLS13_AES_256_GCM_SHA384",
    "TLS13_AES_128_GCM_SHA256",
    "TLS13_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// Largest OCSP response file `ocsp` may name, bytes.
pub const TLS_OCSP_MAX: u64 = 64 * 1024;

/// One certificate chain and key of a terminated VIP.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsCertConf {
    /// PEM file: end-entity certificate first, then intermediates.
    pub cert: std::path::PathBuf,
    /// PEM file with the private key.
    pub key: std::path::PathBuf,
    /// SNI names it serves (`*.example.com` allowed); empty: default.
    #[serde(default)]
    pub names: Vec<String>,
    /// DER OCSP response stapled to this chain (read when the
    /// certificates are loaded).
    #[serde(default)]
    pub ocsp: Option<std::path::PathBuf>,
}

/// `[lb.vips.tls_options]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct VipTlsConf {
    /// Certificates (at least one).
    pub certificates: Vec<TlsCertConf>,
    /// Post-quantum policy.
    pub policy: TlsPolicyConf,
    /// Allowed groups, in server preference order.
    pub groups: Vec<TlsGroupConf>,
    /// Also offer TLS 1.2.
    pub tls12: bool,
    /// Allowed cipher suites, server preference order (names of
    /// [`TLS_CIPHER_SUITES`]); empty: the provider's defaults.
    pub cipher_suites: Vec<String>,
    /// Choose the first suite of `cipher_suites` the client offers, rather
    /// than the client's first choice.
    pub prefer_server_ciphers: bool,
    /// ALPN protocols offered.
    pub alpn: Vec<String>,
    /// Stateless session tickets.
    pub tickets: bool,
    /// Ticket key rotation interval, s.
    pub ticket_rotation_s: u64,
    /// Stateful session cache size (0: off).
    pub session_cache: u32,
    /// Cached session lifetime, s.
    pub session_ttl_s: u64,
    /// Handshake timeout, ms.
    pub handshake_timeout_ms: u64,
    /// Add `X-Forwarded-For: <client>` to every HTTP/1.1 request relayed
    /// to the backend.
    pub x_forwarded_for: bool,
}

impl Default for VipTlsConf {
    fn default() -> Self {
        VipTlsConf {
            certificates: Vec::new(),
            policy: TlsPolicyConf::Prefer,
            groups: vec![
                TlsGroupConf::X25519MlKem768,
                TlsGroupConf::SecP256r1MlKem768,
                TlsGroupConf::X25519,
                TlsGroupConf::Secp256r1,
                TlsGroupConf::Secp384r1,
            ],
            tls12: true,
            cipher_suites: Vec::new(),
            prefer_server_ciphers: true,
            alpn: vec!["http/1.1".to_string()],
            tickets: true,
            ticket_rotation_s: 3600,
            session_cache: 20_000,
            session_ttl_s: 300,
            handshake_timeout_ms: 10_000,
            x_forwarded_for: false,
        }
    }
}

/// Administrative state of a backend.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BackendStateConf {
    /// In rotation (subject to health checks).
    #[default]
    Up,
    /// Out of rotation.
    Down,
    /// No new connections; existing ones continue.
    Draining,
}

/// `[[lb.vips.backends]]`: one backend server.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BackendConf {
    /// `address:port`.
    pub address: std::net::SocketAddrV4,
    /// Weight (weighted policies), 1..=1000.
    #[serde(default = "one")]
    pub weight: u32,
    /// Connection limit (0: none).
    #[serde(default)]
    pub max_conns: u32,
    /// Administrative state.
    #[serde(default)]
    pub state: BackendStateConf,
}

fn one() -> u32 {
    1
}

/// Kind of health check.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HealthKind {
    /// TCP handshake completes.
    #[default]
    Tcp,
    /// `GET http_path` answers `expect_status`.
    Http,
}

/// `[lb.health]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConf {
    /// Run health checks.
    pub enabled: bool,
    /// What a check does.
    pub kind: HealthKind,
    /// Time between checks of one backend, ms.
    pub interval_ms: u64,
    /// A check not answered in this long fails, ms.
    pub timeout_ms: u64,
    /// Consecutive successes to bring a failed backend back.
    pub rise: u32,
    /// Consecutive failures to take a backend out.
    pub fall: u32,
    /// Path of the HTTP check.
    pub http_path: String,
    /// Expected HTTP status.
    pub expect_status: u16,
    /// What happens to a backend's established connections when health
    /// checks mark it down.
    pub on_down: OnDownConf,
}

/// `lb.health.on_down`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnDownConf {
    /// Reset them toward their clients at once (counted, logged).
    #[default]
    Reset,
    /// Leave them to end on their own (idle timeout).
    Keep,
}

impl Default for HealthConf {
    fn default() -> Self {
        HealthConf {
            enabled: true,
            kind: HealthKind::Tcp,
            interval_ms: 1000,
            timeout_ms: 500,
            rise: 2,
            fall: 2,
            http_path: "/".into(),
            expect_status: 200,
            on_down: OnDownConf::Reset,
        }
    }
}

/// A probability 0.0..=1.0 (compared bit for bit, so configs stay `Eq`).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct Probability(pub f64);

impl PartialEq for Probability {
    fn eq(&self, o: &Self) -> bool {
        self.0.to_bits() == o.0.to_bits()
    }
}
impl Eq for Probability {}

/// `[[dhcp_server.pools]]`: one subnet and the range handed out in it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DhcpPoolConf {
    /// The subnet, `10.20.0.0/24` (relayed requests pick the pool whose
    /// subnet holds giaddr; direct ones the pool holding the server address,
    /// else the first).
    pub subnet: Cidr,
    /// First address handed out.
    pub range_start: Ipv4Addr,
    /// Last address handed out (inclusive).
    pub range_end: Ipv4Addr,
    /// Option 3 (routers), at most 8.
    #[serde(default)]
    pub routers: Vec<Ipv4Addr>,
    /// Option 6 (DNS servers), at most 8.
    #[serde(default)]
    pub dns_servers: Vec<Ipv4Addr>,
    /// Lease time, seconds (T1/T2 are 1/2 and 7/8 of it).
    #[serde(default = "default_lease_time")]
    pub lease_time_s: u64,
}

fn default_lease_time() -> u64 {
    3600
}

/// `dhcp_server.exhaustion`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ExhaustionConf {
    /// Stay silent.
    #[default]
    NoReply,
    /// Answer DHCPNAK.
    Nak,
}

/// `[dhcp_server.faults]`: fault simulation.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DhcpFaultsConf {
    /// Probability that a request is dropped unseen (0.0–1.0).
    pub drop_rate: Probability,
    /// Fixed delay added to every reply, ms (0: none). Exclusive with the
    /// uniform delay below.
    pub delay_ms: u64,
    /// Uniform delay: smallest, ms.
    pub delay_min_ms: u64,
    /// Uniform delay: largest, ms (0: no uniform delay).
    pub delay_max_ms: u64,
    /// Replies held for delay at once, at most (a bounded, preallocated
    /// timer structure; replies beyond it are dropped and counted).
    pub max_delayed: u32,
    /// Token-bucket limit on requests per second (0: none).
    pub rate_limit_pps: u64,
    /// Bucket size of the rate limit.
    pub rate_limit_burst: u64,
}

impl Default for DhcpFaultsConf {
    fn default() -> Self {
        DhcpFaultsConf {
            drop_rate: Probability(0.0),
            delay_ms: 0,
            delay_min_ms: 0,
            delay_max_ms: 0,
            max_delayed: 4096,
            rate_limit_pps: 0,
            rate_limit_burst: 64,
        }
    }
}

/// `[dhcp_server]`: the DHCP server simulator.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DhcpServerConf {
    /// Name of the `[[ports]]` entry it serves on.
    pub port: String,
    /// Server identifier and source of replies; empty: the port's first
    /// address.
    #[serde(deserialize_with = "opt_ipv4")]
    pub server_ip: Option<Ipv4Addr>,
    /// The pools (at least one).
    pub pools: Vec<DhcpPoolConf>,
    /// An unclaimed offer returns to the pool after this long, ms.
    pub offer_timeout_ms: u64,
    /// A declined address stays out of use this long, s.
    pub decline_quarantine_s: u64,
    /// Pool exhausted: `"no-reply"` or `"nak"`.
    pub exhaustion: ExhaustionConf,
    /// NAK requests for unknown leases (RFC 2131 §4.3.2) instead of silence.
    pub authoritative: bool,
    /// Echo Option 82 in replies to relayed requests (RFC 3046).
    pub echo_option82: bool,
    /// Upper bound on addresses over all pools (lease table size).
    pub max_leases: u32,
    /// Seed of the fault simulation.
    pub seed: u64,
    /// Fault simulation.
    pub faults: DhcpFaultsConf,
    /// Sleep after an empty poll, µs; unset: `engine.idle_sleep_us` when
    /// that is non-zero, else 50 on kernel-backed ports (`net_af_packet`,
    /// `net_af_xdp`, `net_tap`: a busy-polling lcore takes the CPU the kernel's veth path
    /// and the peers on the same machine need) and 0 (busy polling) on
    /// others.
    pub idle_sleep_us: Option<u64>,
}

impl Default for DhcpServerConf {
    fn default() -> Self {
        DhcpServerConf {
            port: String::new(),
            server_ip: None,
            pools: Vec::new(),
            offer_timeout_ms: 30_000,
            decline_quarantine_s: 600,
            exhaustion: ExhaustionConf::NoReply,
            authoritative: true,
            echo_option82: true,
            max_leases: 1 << 20,
            seed: 1,
            faults: DhcpFaultsConf::default(),
            idle_sleep_us: None,
        }
    }
}

/// `[dhcp_tester.retransmit]`: RFC 2131 §4.1 retransmission.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DhcpRetransmitConf {
    /// First wait, ms (RFC: 4000).
    pub initial_ms: u64,
    /// Factor applied after each retransmission (RFC: 2).
    pub multiplier: u32,
    /// Largest wait, ms (RFC: 64000).
    pub max_ms: u64,
    /// ± this percentage of randomisation of each wait.
    pub jitter_pct: u8,
    /// DISCOVER retransmissions before the client fails.
    pub discover_retries: u8,
    /// REQUEST retransmissions before the client fails.
    pub request_retries: u8,
}

impl Default for DhcpRetransmitConf {
    fn default() -> Self {
        DhcpRetransmitConf {
            initial_ms: 4000,
            multiplier: 2,
            max_ms: 64_000,
            jitter_pct: 25,
            discover_retries: 4,
            request_retries: 4,
        }
    }
}

/// `[dhcp_tester.relay]`: relay-agent mode (RFC 3046).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DhcpRelayConf {
    /// giaddr and source address of relayed frames (the tester answers ARP
    /// for it).
    #[serde(deserialize_with = "opt_ipv4")]
    pub giaddr: Option<Ipv4Addr>,
    /// The server's unicast address.
    #[serde(deserialize_with = "opt_ipv4")]
    pub server_ip: Option<Ipv4Addr>,
    /// The server's (or next hop's) MAC, `aa:bb:cc:dd:ee:ff`.
    pub server_mac: String,
    /// Hops already on the message (the relay sends hops + 1).
    pub hops: u8,
    /// Refuse to relay at hops ≥ this.
    pub max_hops: u8,
    /// Circuit-ID template; `{index}` is the client index; empty: none.
    pub circuit_id: String,
    /// Remote-ID template; empty: none.
    pub remote_id: String,
}

impl Default for DhcpRelayConf {
    fn default() -> Self {
        DhcpRelayConf {
            giaddr: None,
            server_ip: None,
            server_mac: String::new(),
            hops: 0,
            max_hops: 16,
            circuit_id: "port-{index}".into(),
            remote_id: "qsplice".into(),
        }
    }
}

/// `[dhcp_tester]`: the DHCP load tester.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DhcpTesterConf {
    /// Name of the `[[ports]]` entry it sends on (set it promiscuous: the
    /// clients' MACs are not the port's).
    pub port: String,
    /// Virtual clients.
    pub clients: u32,
    /// Clients in flight at most (0: all).
    pub concurrency: u32,
    /// New clients per second (0: as fast as concurrency allows).
    pub rate: u64,
    /// Largest burst of new clients at `rate`.
    pub burst: u32,
    /// MAC of client 0; client i has base_mac + i.
    pub base_mac: String,
    /// 802.1Q VLAN id of sent frames (0: untagged).
    pub vlan: u16,
    /// Set the broadcast flag (replies broadcast) instead of unicast replies.
    pub broadcast: bool,
    /// Send option 61 (client identifier).
    pub client_id: bool,
    /// NAKs a client takes (restarting) before failing.
    pub max_naks: u8,
    /// Renew (unicast REQUEST) this long after BOUND, ms (0: no renew).
    pub renew_after_ms: u64,
    /// Send a RELEASE at the end.
    pub release: bool,
    /// Ethernet destination of unicast renew/release; empty: learned from
    /// the first reply.
    pub server_mac: String,
    /// Seed of the jitter / xid generator.
    pub seed: u64,
    /// Give up (clients still in flight count as unfinished) after this
    /// long, s.
    pub timeout_s: u64,
    /// Retransmission.
    pub retransmit: DhcpRetransmitConf,
    /// Relay-agent mode (absent: direct clients).
    pub relay: Option<DhcpRelayConf>,
}

impl Default for DhcpTesterConf {
    fn default() -> Self {
        DhcpTesterConf {
            port: String::new(),
            clients: 1000,
            concurrency: 0,
            rate: 0,
            burst: 16,
            base_mac: "02:00:00:00:00:00".into(),
            vlan: 0,
            broadcast: true,
            client_id: true,
            max_naks: 3,
            renew_after_ms: 0,
            release: false,
            server_mac: String::new(),
            seed: 1,
            timeout_s: 120,
            retransmit: DhcpRetransmitConf::default(),
            relay: None,
        }
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut n = 0;
    for part in s.split([':', '-']) {
        if n == 6 || part.len() != 2 {
            return None;
        }
        out[n] = u8::from_str_radix(part, 16).ok()?;
        n += 1;
    }
    (n == 6).then_some(out)
}

type Checked = Result<(), crate::ConfigError>;

fn bad(key: impl Into<String>, value: impl fmt::Display, reason: impl Into<String>) -> Checked {
    Err(crate::ConfigError::new(key, value, reason))
}

fn within<T: PartialOrd + fmt::Display + Copy>(key: &str, v: T, lo: T, hi: T) -> Checked {
    if v < lo || v > hi {
        return bad(key, v, format!("must be in {lo}..={hi}"));
    }
    Ok(())
}

fn mac_key(key: &str, s: &str, required: bool) -> Checked {
    if s.is_empty() {
        if required {
            return bad(key, "", "is required: a MAC address like 02:00:00:00:00:01");
        }
        return Ok(());
    }
    match parse_mac(s) {
        None => bad(key, s, "not a MAC address (expected aa:bb:cc:dd:ee:ff)"),
        Some(m) if m[0] & 1 == 1 => bad(key, s, "must be a unicast MAC (multicast bit set)"),
        Some(_) => Ok(()),
    }
}

impl Config {
    /// The `[dhcp_server]` / `[dhcp_tester]` rules (called by `validate`).
    pub(crate) fn validate_dhcp(&self) -> Checked {
        if self.dhcp_server.is_none() && self.dhcp_tester.is_none() {
            return Ok(());
        }
        if self.eal.worker_lcores.len() != 1 {
            return bad(
                "eal.worker_lcores",
                format!("{:?}", self.eal.worker_lcores),
                "the DHCP modes keep their lease / client tables on one lcore: configure exactly one worker",
            );
        }
        let port = |key: &str, name: &str| -> Result<&PortConf, crate::ConfigError> {
            if name.is_empty() {
                return Err(crate::ConfigError::new(
                    key,
                    "",
                    "is required: the name of a [[ports]] entry",
                ));
            }
            self.ports.iter().find(|p| p.name == name).ok_or_else(|| {
                crate::ConfigError::new(key, name, "no [[ports]] entry has this name")
            })
        };
        if let Some(s) = &self.dhcp_server {
            let p = port("dhcp_server.port", &s.port)?;
            if s.server_ip.is_none() && p.addresses.is_empty() {
                return bad(
                    "dhcp_server.server_ip",
                    "",
                    format!("is required: port `{}` has no address to use", p.name),
                );
            }
            if s.pools.is_empty() {
                return bad(
                    "dhcp_server.pools",
                    "[]",
                    "at least one [[dhcp_server.pools]] entry is needed",
                );
            }
            within(
                "dhcp_server.offer_timeout_ms",
                s.offer_timeout_ms,
                100,
                3_600_000,
            )?;
            within(
                "dhcp_server.decline_quarantine_s",
                s.decline_quarantine_s,
                0,
                7 * 86_400,
            )?;
            within("dhcp_server.max_leases", s.max_leases, 1, 1 << 24)?;
            if let Some(v) = s.idle_sleep_us {
                within("dhcp_server.idle_sleep_us", v, 0, 1_000_000)?;
            }
            let mut total: u64 = 0;
            for (i, pool) in s.pools.iter().enumerate() {
                let k = |f: &str| format!("dhcp_server.pools[{i}].{f}");
                let net = pool.subnet;
                if !(1..=30).contains(&net.prefix) {
                    return bad(
                        k("subnet"),
                        net,
                        "prefix length must be 1..=30 (a pool needs host addresses)",
                    );
                }
                let (lo, hi) = (u32::from(net.network()), u32::from(net.broadcast()));
                for (f, a) in [
                    ("range_start", pool.range_start),
                    ("range_end", pool.range_end),
                ] {
                    let v = u32::from(a);
                    if v <= lo || v >= hi {
                        return bad(
                            k(f),
                            a,
                            format!("must be a host address of {}/{} (not its network or broadcast address)", net.network(), net.prefix),
                        );
                    }
                }
                if pool.range_end < pool.range_start {
                    return bad(
                        k("range_end"),
                        pool.range_end,
                        format!("is before range_start {}", pool.range_start),
                    );
                }
                if pool.routers.len() > 8 {
                    return bad(k("routers"), pool.routers.len(), "at most 8 routers");
                }
                if pool.dns_servers.len() > 8 {
                    return bad(
                        k("dns_servers"),
                        pool.dns_servers.len(),
                        "at most 8 DNS servers",
                    );
                }
                within(
                    &k("lease_time_s"),
                    pool.lease_time_s,
                    1,
                    u64::from(u32::MAX) - 1,
                )?;
                for (j, other) in s.pools.iter().enumerate().take(i) {
                    let m = net.mask_u32().min(other.subnet.mask_u32());
                    if u32::from(net.addr) & m == u32::from(other.subnet.addr) & m {
                        return bad(
                            k("subnet"),
                            net,
                            format!("overlaps dhcp_server.pools[{j}].subnet {}", other.subnet),
                        );
                    }
                }
                total += u64::from(u32::from(pool.range_end) - u32::from(pool.range_start)) + 1;
            }
            if total > u64::from(s.max_leases) {
                return bad(
                    "dhcp_server.max_leases",
                    s.max_leases,
                    format!(
                        "the pools hold {total} addresses: raise max_leases or shrink the ranges"
                    ),
                );
            }
            let f = &s.faults;
            if !(0.0..=1.0).contains(&f.drop_rate.0) {
                return bad(
                    "dhcp_server.faults.drop_rate",
                    f.drop_rate.0,
                    "must be a probability in 0.0..=1.0",
                );
            }
            within("dhcp_server.faults.delay_ms", f.delay_ms, 0, 60_000)?;
            within("dhcp_server.faults.delay_max_ms", f.delay_max_ms, 0, 60_000)?;
            if f.delay_max_ms > 0 && f.delay_ms > 0 {
                return bad(
                    "dhcp_server.faults.delay_max_ms",
                    f.delay_max_ms,
                    "a fixed delay_ms and a uniform delay_min_ms..delay_max_ms exclude each other",
                );
            }
            if f.delay_min_ms > f.delay_max_ms && (f.delay_max_ms > 0 || f.delay_min_ms > 0) {
                return bad(
                    "dhcp_server.faults.delay_min_ms",
                    f.delay_min_ms,
                    format!("is above delay_max_ms ({})", f.delay_max_ms),
                );
            }
            within("dhcp_server.faults.max_delayed", f.max_delayed, 1, 1 << 20)?;
            within(
                "dhcp_server.faults.rate_limit_pps",
                f.rate_limit_pps,
                0,
                1_000_000_000,
            )?;
            if f.rate_limit_pps > 0 {
                within(
                    "dhcp_server.faults.rate_limit_burst",
                    f.rate_limit_burst,
                    1,
                    1_000_000,
                )?;
            }
        }
        if let Some(t) = &self.dhcp_tester {
            let p = port("dhcp_tester.port", &t.port)?;
            if !p.promiscuous {
                return bad(
                    format!("ports[{}].promiscuous", self.ports.iter().position(|q| q.name == p.name).unwrap_or(0)),
                    "false",
                    "the DHCP tester's port must be promiscuous: replies go to the virtual clients' MACs",
                );
            }
            within("dhcp_tester.clients", t.clients, 1, 1 << 24)?;
            within("dhcp_tester.concurrency", t.concurrency, 0, t.clients)?;
            within("dhcp_tester.rate", t.rate, 0, 100_000_000)?;
            within("dhcp_tester.burst", t.burst, 1, 256)?;
            mac_key("dhcp_tester.base_mac", &t.base_mac, true)?;
            if let Some(m) = parse_mac(&t.base_mac) {
                let mut b = [0u8; 8];
                b[2..].copy_from_slice(&m);
                let v = u64::from_be_bytes(b);
                if v + u64::from(t.clients) > 1 << 48 {
                    return bad(
                        "dhcp_tester.base_mac",
                        &t.base_mac,
                        "base_mac + clients passes ff:ff:ff:ff:ff:ff",
                    );
                }
            }
            within("dhcp_tester.vlan", t.vlan, 0, 4094)?;
            within("dhcp_tester.timeout_s", t.timeout_s, 1, 7 * 86_400)?;
            mac_key("dhcp_tester.server_mac", &t.server_mac, false)?;
            let r = &t.retransmit;
            within(
                "dhcp_tester.retransmit.initial_ms",
                r.initial_ms,
                1,
                600_000,
            )?;
            within("dhcp_tester.retransmit.multiplier", r.multiplier, 1, 16)?;
            within(
                "dhcp_tester.retransmit.max_ms",
                r.max_ms,
                r.initial_ms,
                3_600_000,
            )?;
            within("dhcp_tester.retransmit.jitter_pct", r.jitter_pct, 0, 100)?;
            if let Some(rl) = &t.relay {
                if rl.giaddr.is_none() {
                    return bad("dhcp_tester.relay.giaddr", "", "is required in relay mode");
                }
                if rl.server_ip.is_none() {
                    return bad(
                        "dhcp_tester.relay.server_ip",
                        "",
                        "is required in relay mode: relayed requests are unicast",
                    );
                }
                mac_key("dhcp_tester.relay.server_mac", &rl.server_mac, true)?;
                within("dhcp_tester.relay.max_hops", rl.max_hops, 1, 255)?;
                if rl.hops >= rl.max_hops {
                    return bad(
                        "dhcp_tester.relay.hops",
                        rl.hops,
                        format!(
                            "must be below max_hops ({}): a relay refuses such a message",
                            rl.max_hops
                        ),
                    );
                }
                for (f, v) in [("circuit_id", &rl.circuit_id), ("remote_id", &rl.remote_id)] {
                    if v.len() > 200 {
                        return bad(
                            format!("dhcp_tester.relay.{f}"),
                            v,
                            "at most 200 bytes (an option holds 255)",
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

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
