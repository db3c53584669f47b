//! Semantic checks after parsing: every rule names the key, the value and
//! the reason.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use crate::schema::{Config, PortConf};
use crate::ConfigError;

/// DPDK 22.11 (Debian build) limits.
const MAX_LCORE: u32 = 128;
const MEMPOOL_CACHE_MAX: u32 = 512;
const HEADROOM: u32 = 128;
/// Ethernet header + two VLAN tags + FCS beyond the MTU.
const L2_OVERHEAD: u32 = 14 + 8 + 4;
const EAL_LOG_LEVELS: &[&str] = &[
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "info",
    "debug",
];

type R = Result<(), ConfigError>;

fn err(key: impl Into<String>, value: impl std::fmt::Display, reason: impl Into<String>) -> R {
    Err(ConfigError::new(key, value, reason))
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(key: &str, v: T, lo: T, hi: T) -> R {
    if v < lo || v > hi {
        return err(key, v, format!("must be between {lo} and {hi}"));
    }
    Ok(())
}

fn is_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn is_pci(s: &str) -> bool {
    // DDDD:BB:DD.F or BB:DD.F, hex.
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    let parts: Vec<&str> = s.split(':').collect();
    let (bus, devfn) = match parts.as_slice() {
        [dom, bus, devfn] if hex(dom, 4) => (*bus, *devfn),
        [bus, devfn] => (*bus, *devfn),
        _ => return false,
    };
    let Some((dev, func)) = devfn.split_once('.') else {
        return false;
    };
    hex(bus, 2) && hex(dev, 2) && func.len() == 1 && matches!(func.as_bytes()[0], b'0'..=b'7')
}

/// Check a vdev spec: `net_<driver><instance>[,key=value...]`.
fn check_vdev(key: &str, dev: &str) -> R {
    let mut parts = dev.split(',');
    let name = parts.next().unwrap_or("");
    if name.len() <= 4
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return err(key, dev, "vdev name must be `net_<driver><n>` in lowercase letters, digits and `_` (e.g. net_af_packet0)");
    }
    for kv in parts {
        let Some((k, v)) = kv.split_once('=') else {
            return err(key, dev, format!("vdev option `{kv}` is not key=value"));
        };
        if k.is_empty() || v.is_empty() {
            return err(
                key,
                dev,
                format!("vdev option `{kv}` has an empty key or value"),
            );
        }
    }
    if name.starts_with("net_af_packet") && !dev.contains(",iface=") {
        return err(key, dev, "net_af_packet needs `iface=<interface>`");
    }
    Ok(())
}

impl Config {
    /// Check every value; the first problem is returned.
    pub fn validate(&self) -> R {
        self.validate_eal()?;
        self.validate_engine()?;
        self.validate_arp()?;
        self.validate_ports()?;
        self.validate_mempool()?;
        if self.log.level.trim().is_empty() {
            return err("log.level", "", "must not be empty (e.g. \"info\")");
        }
        Ok(())
    }

    fn validate_eal(&self) -> R {
        let e = &self.eal;
        if e.main_lcore >= MAX_LCORE {
            return err(
                "eal.main_lcore",
                e.main_lcore,
                format!("must be < {MAX_LCORE} (RTE_MAX_LCORE)"),
            );
        }
        if e.worker_lcores.is_empty() {
            return err(
                "eal.worker_lcores",
                "[]",
                "at least one worker lcore is needed",
            );
        }
        let mut seen = HashSet::new();
        for (i, w) in e.worker_lcores.iter().enumerate() {
            let key = format!("eal.worker_lcores[{i}]");
            if *w >= MAX_LCORE {
                return err(key, w, format!("must be < {MAX_LCORE} (RTE_MAX_LCORE)"));
            }
            if *w == e.main_lcore {
                return err(key, w, "is the main lcore; the control thread and a busy-polling worker cannot share an lcore");
            }
            if !seen.insert(*w) {
                return err(key, w, "listed twice");
            }
        }
        if !e.lcore_map.is_empty() {
            let mut mapped = HashSet::new();
            for item in e.lcore_map.split(',') {
                let (l, c) = item.split_once('@').unwrap_or((item, item));
                let ok = l.parse::<u32>().is_ok()
                    && c.trim_matches(|ch| ch == '(' || ch == ')')
                        .split('-')
                        .all(|x| x.parse::<u32>().is_ok());
                if !ok {
                    return err(
                        "eal.lcore_map",
                        &e.lcore_map,
                        format!("`{item}` is not LCORE@CPU (e.g. \"0@0,1@1\")"),
                    );
                }
                if let Ok(l) = l.parse::<u32>() {
                    mapped.insert(l);
                }
            }
            for l in std::iter::once(&e.main_lcore).chain(&e.worker_lcores) {
                if !mapped.contains(l) {
                    return err(
                        "eal.lcore_map",
                        &e.lcore_map,
                        format!("does not map lcore {l}"),
                    );
                }
            }
        }
        if e.memory_mb < 64 {
            return err("eal.memory_mb", e.memory_mb, "must be at least 64");
        }
        if !e.file_prefix.is_empty()
            && (e.file_prefix.len() > 32
                || !e
                    .file_prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return err(
                "eal.file_prefix",
                &e.file_prefix,
                "use at most 32 letters, digits, `-` or `_`",
            );
        }
        if !matches!(e.iova_mode.as_str(), "" | "va" | "pa") {
            return err(
                "eal.iova_mode",
                &e.iova_mode,
                "must be \"va\", \"pa\" or \"\"",
            );
        }
        if !EAL_LOG_LEVELS.contains(&e.log_level.as_str()) {
            return err(
                "eal.log_level",
                &e.log_level,
                format!("must be one of {}", EAL_LOG_LEVELS.join(", ")),
            );
        }
        Ok(())
    }

    fn validate_engine(&self) -> R {
        in_range("engine.burst", self.engine.burst, 1, 256)?;
        in_range("engine.tx_drain_us", self.engine.tx_drain_us, 1, 100_000)?;
        in_range(
            "engine.idle_sleep_us",
            self.engine.idle_sleep_us,
            0,
            1_000_000,
        )?;
        Ok(())
    }

    fn validate_arp(&self) -> R {
        let a = &self.arp;
        in_range("arp.reachable_ms", a.reachable_ms, 1000, 3_600_000)?;
        in_range("arp.probe_interval_ms", a.probe_interval_ms, 10, 60_000)?;
        in_range("arp.max_probes", a.max_probes, 1, 255)?;
        in_range("arp.table_size", a.table_size, 8, 1 << 20)?;
        if !a.table_size.is_power_of_two() {
            return err("arp.table_size", a.table_size, "must be a power of two");
        }
        Ok(())
    }

    fn validate_ports(&self) -> R {
        if self.ports.is_empty() {
            return err("ports", "[]", "at least one [[ports]] entry is needed");
        }
        if self.ports.len() > 8 {
            return err("ports", self.ports.len(), "at most 8 ports");
        }
        let mut names = HashSet::new();
        let mut devs = HashSet::new();
        let mut addrs: HashSet<Ipv4Addr> = HashSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            let k = |f: &str| format!("ports[{i}].{f}");
            if !is_name(&p.name, 32) {
                return err(k("name"), &p.name, "must be 1-32 of [a-z0-9_-]");
            }
            if !names.insert(p.name.as_str()) {
                return err(k("name"), &p.name, "another port has this name");
            }
            self.validate_port(i, p)?;
            if !devs.insert(p.dev_name()) {
                return err(
                    k("device"),
                    &p.device,
                    format!("device `{}` is used by another port", p.dev_name()),
                );
            }
            for (j, c) in p.addresses.iter().enumerate() {
                if !addrs.insert(c.addr) {
                    return err(
                        format!("ports[{i}].addresses[{j}]"),
                        c,
                        "this address is already configured (on this or another port)",
                    );
                }
            }
        }
        Ok(())
    }

    fn validate_port(&self, i: usize, p: &PortConf) -> R {
        let k = |f: &str| format!("ports[{i}].{f}");
        if p.device.is_empty() {
            return err(
                k("device"),
                "",
                "a DPDK vdev (e.g. net_af_packet0,iface=eth1) or PCI address is required",
            );
        }
        if p.is_vdev() {
            check_vdev(&k("device"), &p.device)?;
        } else if !is_pci(&p.device) {
            return err(
                k("device"),
                &p.device,
                "neither a vdev (net_...) nor a PCI address (0000:03:00.0)",
            );
        }
        for (f, v) in [("rx_desc", p.rx_desc), ("tx_desc", p.tx_desc)] {
            in_range(&k(f), v, 64, 16384)?;
            if !v.is_power_of_two() {
                return err(k(f), v, "must be a power of two");
            }
        }
        in_range(&k("mtu"), p.mtu, 68, 9600)?;
        let need = u32::from(p.mtu) + L2_OVERHEAD + HEADROOM;
        if u32::from(self.mempool.data_room) < need {
            return err("mempool.data_room", self.mempool.data_room, format!("port `{}` has MTU {} and needs at least {need} bytes per mbuf (frames are single-segment)", p.name, p.mtu));
        }
        if p.addresses.is_empty() {
            return err(
                k("addresses"),
                "[]",
                "at least one IPv4 address (CIDR) is needed",
            );
        }
        for (j, c) in p.addresses.iter().enumerate() {
            let key = format!("ports[{i}].addresses[{j}]");
            let a = c.addr;
            if a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback() {
                return err(key, c, "not a usable unicast address");
            }
            if c.prefix < 31 && (a == c.network() || a == c.broadcast()) {
                return err(
                    key,
                    c,
                    format!(
                        "is the {} address of its subnet",
                        if a == c.network() {
                            "network"
                        } else {
                            "broadcast"
                        }
                    ),
                );
            }
        }
        for (j, n) in p.neighbors.iter().enumerate() {
            let key = format!("ports[{i}].neighbors[{j}]");
            if !p.addresses.iter().any(|c| c.contains(*n)) {
                return err(
                    key,
                    n,
                    format!("not inside any subnet of port `{}`", p.name),
                );
            }
            if p.addresses.iter().any(|c| c.addr == *n) {
                return err(key, n, "is one of the port's own addresses");
            }
        }
        if let Some(g) = p.gateway {
            if !p.addresses.iter().any(|c| c.contains(g)) || p.addresses.iter().any(|c| c.addr == g)
            {
                return err(
                    k("gateway"),
                    g,
                    format!("must be a neighbour inside a subnet of port `{}`", p.name),
                );
            }
        }
        Ok(())
    }

    fn validate_mempool(&self) -> R {
        let m = &self.mempool;
        let workers = self.eal.worker_lcores.len() as u32;
        // Every rx and tx descriptor can hold an mbuf, each worker's cache and
        // its in-flight bursts (rx burst + TX buffer per port) hold more.
        let rings: u32 = self
            .ports
            .iter()
            .map(|p| (u32::from(p.rx_desc) + u32::from(p.tx_desc)) * workers)
            .sum();
        let per_worker = m.cache + self.engine.burst * (1 + 2 * self.ports.len() as u32);
        let need = rings + workers * per_worker;
        if m.mbufs < need {
            return err(
                "mempool.mbufs",
                m.mbufs,
                format!("too few: rx+tx descriptors of all port queues ({rings}) + per worker cache and bursts ({workers} × {per_worker}) = {need}"),
            );
        }
        if m.cache > MEMPOOL_CACHE_MAX {
            return err(
                "mempool.cache",
                m.cache,
                format!("must be ≤ {MEMPOOL_CACHE_MAX} (RTE_MEMPOOL_CACHE_MAX_SIZE)"),
            );
        }
        if f64::from(m.cache) * 1.5 > f64::from(m.mbufs) {
            return err(
                "mempool.cache",
                m.cache,
                "must be ≤ mbufs / 1.5 (DPDK rule)",
            );
        }
        in_range("mempool.data_room", m.data_room, 256, u16::MAX)?;
        Ok(())
    }
}
