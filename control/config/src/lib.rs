//! qsplice configuration.
//!
//! A config is a TOML file (see `docs/config.md` for every key). Loading is
//! three steps: TOML syntax → serde into the typed [`Config`] with
//! `deny_unknown_fields` everywhere → [`Config::validate`], which checks
//! every value against what DPDK and the engine can actually do. Each failure
//! is one [`ConfigError`] naming the key (`ports[1].addresses[0]`), the
//! offending value, and why — and, when it can be located, the file and line.
#![forbid(unsafe_code)]

mod error;
mod lcores;
mod schema;
mod validate;

use std::path::Path;

pub use error::ConfigError;
pub use lcores::{parse_lcore_map, MAX_CPU, MAX_LCORE};
pub use schema::{
    kernel_vdev, parse_ip_range, parse_port_range, BgpConf, ClusterConf, LoadgenConf, LoadgenPath,
    LoadgenRole, PktgenConf, PktgenFields, PktgenProto, PktgenSizeMode, PktgenStreamConf,
    ResponseMode, KERNEL_DESC,
};
pub use schema::{
    parse_hex_bytes, parse_mac, AccessLogConf, ArpConf, BackendConf, BackendStateConf, Cidr, Cidr6,
    Config, ContentRuleConf, DhcpFaultsConf, DhcpPoolConf, DhcpRelay6Conf, DhcpRelayConf,
    DhcpRetransmit6Conf, DhcpRetransmitConf, DhcpServer6Conf, DhcpServerConf, DhcpTester6Conf,
    DhcpTesterConf, EalConf, EngineConf, ExhaustionConf, Extend6Conf, HealthConf, HealthKind,
    Hugepages, LbConf, LogConf, LogFormat, ManagementConf, ManagementListen, MempoolConf,
    OnDownConf, PolicyConf, Port, PortAddr, PortAddrs, PortConf, Probability, SessionsConf,
    TcpCongestion, TlsCertConf, TlsGroupConf, TlsModeConf, TlsPolicyConf, VipConf, VipTlsConf,
    TLS_CIPHER_SUITES, TLS_OCSP_MAX,
};

/// Read, parse and validate a config file. Errors carry the file's path.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        key: String::new(),
        value: path.display().to_string(),
        reason: format!("cannot read config file: {e}"),
        file: Some(path.to_path_buf()),
        line: None,
    })?;
    parse(&text).map_err(|e| e.in_file(path))
}

/// Parse and validate config text (TOML syntax → schema → [`Config::validate`]).
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let doc = toml::de::DeTable::parse(text).map_err(|e| ConfigError::syntax(text, &e))?;
    let de = toml::de::Deserializer::parse(text).map_err(|e| ConfigError::syntax(text, &e))?;
    let cfg: Config =
        serde_path_to_error::deserialize(de).map_err(|e| ConfigError::schema(text, &doc, &e))?;
    cfg.validate().map_err(|e| e.locate(text, &doc))?;
    Ok(cfg)
}

/// The same as [`parse`] (the name the design notes use).
pub fn from_str(text: &str) -> Result<Config, ConfigError> {
    parse(text)
}

impl std::str::FromStr for Config {
    type Err = ConfigError;
    /// [`parse`]: `text.parse::<Config>()`.
    fn from_str(text: &str) -> Result<Config, ConfigError> {
        parse(text)
    }
}

/// Whether hugetlbfs is mounted and enough free hugepages of the default
/// size are reserved (`HugePages_Free × Hugepagesize` in `/proc/meminfo`)
/// for EAL to get `needed_mb` MiB. Feed the result to [`Config::eal_args`].
pub fn hugepages_available(needed_mb: u32) -> bool {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| -> u64 {
        meminfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let free_kb = field("HugePages_Free:") * field("Hugepagesize:");
    let mounted = std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs"));
    mounted && free_kb >= u64::from(needed_mb) * 1024
}
