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
mod schema;
mod validate;

use std::path::Path;

pub use error::ConfigError;
pub use schema::{
    ArpConf, Cidr, Config, EalConf, EngineConf, Hugepages, LogConf, LogFormat, MempoolConf,
    PortConf,
};

/// Read, parse and validate a config file.
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

/// Parse and validate config text.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::syntax(text, &e))?;
    let cfg: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
        .map_err(|e| ConfigError::schema(text, &e))?;
    cfg.validate().map_err(|e| e.locate(text))?;
    Ok(cfg)
}

/// Whether enough free 2 MB (or other size) hugepages are reserved and
/// hugetlbfs is mounted for EAL to get `needed_mb` MiB.
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
