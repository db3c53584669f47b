//! Semantic checks after parsing: every rule names the key, the value and
//! the reason. Rules are checked in file order (eal, mempool, engine, arp,
//! ports, log) except where one value's limit depends on another section.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use crate::lcores::{parse_lcore_map, MAX_LCORE};
use crate::schema::{Config, PortConf};
use crate::ConfigError;

/// `RTE_MEMPOOL_CACHE_MAX_SIZE`.
const MEMPOOL_CACHE_MAX: u32 = 512;
/// `RTE_PKTMBUF_HEADROOM`.
const HEADROOM: u32 = 128;
/// Ethernet header + two VLAN tags + FCS beyond the MTU.
const L2_OVERHEAD: u32 = 14 + 8 + 4;
/// Linux `IFNAMSIZ - 1`.
const IFNAME_MAX: usize = 15;
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
const TRACING_LEVELS: &[&str] = &[
    "off", "error", "warn", "info", "debug", "trace", "0", "1", "2", "3", "4", "5",
];
/// EAL options `eal_args` generates from the config, with the key that sets
/// each. Passing them again in `extra_args` would contradict the config or
/// make EAL reject the command line.
const MANAGED_EAL_OPTS: &[(&str, &str)] = &[
    ("-l", "eal.worker_lcores / eal.main_lcore"),
    ("-c", "eal.worker_lcores / eal.main_lcore"),
    ("--lcores", "eal.lcore_map"),
    ("--main-lcore", "eal.main_lcore"),
    ("--master-lcore", "eal.main_lcore"),
    ("--file-prefix", "eal.file_prefix"),
    ("-m", "eal.memory_mb"),
    (
        "--socket-mem",
        "eal.memory_mb (EAL rejects -m with --socket-mem)",
    ),
    ("--no-huge", "eal.hugepages = \"off\""),
    ("--in-memory", "eal.in_memory"),
    ("--huge-unlink", "eal.in_memory"),
    ("--iova-mode", "eal.iova_mode"),
];

type R = Result<(), ConfigError>;

fn err(key: impl Into<String>, value: impl std::fmt::Display, reason: impl Into<String>) -> R {
    Err(ConfigError::new(key, value, reason))
}

fn validate_vip_tls(i: usize, v: &crate::VipConf) -> R {
    use crate::schema::TlsModeConf;
    let k = |f: &str| format!("lb.vips[{i}].{f}");
    let t = match (v.tls, &v.tls_options) {
        (TlsModeConf::Off, None) => return Ok(()),
        (TlsModeConf::Off, Some(_)) => {
            return err(
                k("tls_options"),
                "{…}",
                "given, but the VIP does not terminate TLS (set tls = \"terminate\")",
            )
        }
        (TlsModeConf::Terminate, None) => {
            return err(
                k("tls_options"),
                "(absent)",
                "tls = \"terminate\" needs [lb.vips.tls_options] with at least one certificate",
            )
        }
        (TlsModeConf::Terminate, Some(t)) => t,
    };
    let k = |f: &str| format!("lb.vips[{i}].tls_options.{f}");
    if t.certificates.is_empty() {
        return err(
            k("certificates"),
            "[]",
            "at least one certificate is needed",
        );
    }
    for (j, c) in t.certificates.iter().enumerate() {
        for (f, path) in [("cert", &c.cert), ("key", &c.key)] {
            if let Err(e) = std::fs::metadata(path) {
                return err(
                    k(&format!("certificates[{j}].{f}")),
                    path.display(),
                    format!("cannot read the file: {e}"),
                );
            }
        }
        if let Some(path) = &c.ocsp {
            let key = k(&format!("certificates[{j}].ocsp"));
            match std::fs::metadata(path) {
                Err(e) => {
                    return err(key, path.display(), format!("cannot read the file: {e}"));
                }
                Ok(m) if !m.is_file() => {
                    return err(
                        key,
                        path.display(),
                        "not a regular file (a DER OCSP response is expected)",
                    );
                }
                Ok(m) if m.len() == 0 => {
                    return err(
                        key,
                        path.display(),
                        "the file is empty (a DER OCSP response is expected)",
                    );
                }
                Ok(m) if m.len() > crate::schema::TLS_OCSP_MAX => {
                    return err(
                        key,
                        path.display(),
                        format!(
                            "{} bytes: an OCSP response file is at most {} bytes",
                            m.len(),
                            crate::schema::TLS_OCSP_MAX
                        ),
                    );
                }
                Ok(_) => {}
            }
        }
        for n in &c.names {
            let host = n.strip_prefix("*.").unwrap_or(n);
            let ok = !host.is_empty()
                && n.len() <= 253
                && host
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '.');
            if !ok {
                return err(
                    k(&format!("certificates[{j}].names")),
                    n,
                    "not a DNS name (letters, digits, '-', '.', an optional leading \"*.\")",
                );
            }
        }
    }
    if t.groups.is_empty() {
        return err(
            k("groups"),
            "[]",
            "at least one key-exchange group is needed",
        );
    }
    let mut seen = HashSet::new();
    for g in &t.groups {
        if !seen.insert(*g) {
            return err(k("groups"), format!("{g:?}"), "listed twice");
        }
    }
    if t.policy == crate::schema::TlsPolicyConf::Require
        && !t.groups.iter().any(|g| g.is_post_quantum())
    {
        return err(
            k("groups"),
            format!("{:?}", t.groups),
            "policy \"require\" needs at least one post-quantum group (X25519MLKEM768, SecP256r1MLKEM768, MLKEM768, MLKEM1024)",
        );
    }
    validate_cipher_suites(&k("cipher_suites"), &t.cipher_suites, t.tls12)?;
    for a in &t.alpn {
        if a.is_empty() || a.len() > 255 {
            return err(k("alpn"), a, "an ALPN protocol id is 1-255 bytes");
        }
    }
    in_range(&k("ticket_rotation_s"), t.ticket_rotation_s, 1, 604_800)?;
    in_range(&k("session_cache"), t.session_cache, 0, 10_000_000)?;
    in_range(&k("session_ttl_s"), t.session_ttl_s, 1, 86_400)?;
    in_range(
        &k("handshake_timeout_ms"),
        t.handshake_timeout_ms,
        100,
        600_000,
    )?;
    Ok(())
}

/// `cipher_suites`: known names, each once, at least one TLS 1.3 suite
/// (TLS 1.3 is always on) and, with `tls12`, at least one TLS 1.2 suite.
fn validate_cipher_suites(key: &str, suites: &[String], tls12: bool) -> R {
    use crate::schema::TLS_CIPHER_SUITES;
    if suites.is_empty() {
        return Ok(());
    }
    let mut seen = HashSet::new();
    for s in suites {
        if !TLS_CIPHER_SUITES.contains(&s.as_str()) {
            return err(
                key,
                s,
                format!(
                    "unknown cipher suite (known: {})",
                    TLS_CIPHER_SUITES.join(", ")
                ),
            );
        }
        if !seen.insert(s.as_str()) {
            return err(key, s, "listed twice");
        }
    }
    let is13 = |s: &String| s.starts_with("TLS13_");
    if !suites.iter().any(is13) {
        return err(
            key,
            format!("{suites:?}"),
            "TLS 1.3 is always on: list at least one TLS13_* suite",
        );
    }
    if tls12 && suites.iter().all(is13) {
        return err(
            key,
            format!("{suites:?}"),
            "tls12 = true but no TLS 1.2 suite is listed: add a TLS_ECDHE_* suite or set tls12 = false",
        );
    }
    Ok(())
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

/// `DDDD:BB:DD.F` or `BB:DD.F`, hex; device 0..=0x1f, function 0..=7.
fn is_pci(s: &str) -> bool {
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
    hex(bus, 2)
        && hex(dev, 2)
        && u8::from_str_radix(dev, 16).is_ok_and(|d| d <= 0x1f)
        && func.len() == 1
        && matches!(func.as_bytes()[0], b'0'..=b'7')
}

/// A kernel interface name of a vdev (`iface=`).
fn check_iface(key: &str, dev: &str, iface: &str) -> R {
    if iface.len() > IFNAME_MAX
        || iface
            .bytes()
            .any(|b| b == b'/' || b.is_ascii_whitespace() || b == b':')
    {
        return err(
            key,
            dev,
            format!("`{iface}` is not a Linux interface name (at most {IFNAME_MAX} characters, no `/`, `:` or spaces)"),
        );
    }
    Ok(())
}

/// Check a vdev spec: `net_<driver><instance>[,key=value...]`, and what the
/// engine's model needs of it (one queue pair per worker).
fn check_vdev(key: &str, p: &PortConf, workers: usize) -> R {
    let dev = p.device.as_str();
    let name = p.dev_name();
    if name.len() <= 4
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return err(key, dev, "vdev name must be `net_<driver><n>` in lowercase letters, digits and `_` (e.g. net_af_packet0)");
    }
    let mut keys = HashSet::new();
    for kv in dev.split(',').skip(1) {
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
        if !keys.insert(k) {
            return err(key, dev, format!("vdev option `{k}` is given twice"));
        }
    }
    if name.starts_with("net_af_xdp") {
        let Some(iface) = p.iface() else {
            return err(key, dev, "net_af_xdp needs `iface=<interface>`");
        };
        check_iface(key, dev, iface)?;
        for k in ["start_queue", "busy_budget"] {
            if let Some(v) = p.vdev_arg(k) {
                if v.parse::<u32>().is_err() {
                    return err(key, dev, format!("{k}=`{v}` is not a non-negative integer"));
                }
            }
        }
        let queues = match p.vdev_arg("queue_count") {
            None => 1,
            Some(q) => match q.parse::<usize>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return err(
                        key,
                        dev,
                        format!("queue_count=`{q}` is not a positive integer"),
                    )
                }
            },
        };
        if queues < workers {
            return err(
                key,
                dev,
                format!(
                    "net_af_xdp has {queues} queue(s) but each of the {workers} worker lcores polls its own queue: add `,queue_count={workers}` (and give the interface that many queues)"
                ),
            );
        }
    }
    if name.starts_with("net_af_packet") {
        let Some(iface) = p.iface() else {
            return err(key, dev, "net_af_packet needs `iface=<interface>`");
        };
        check_iface(key, dev, iface)?;
        let qpairs = match p.vdev_arg("qpairs") {
            None => 1,
            Some(q) => match q.parse::<usize>() {
                Ok(n) if n >= 1 => n,
                _ => return err(key, dev, format!("qpairs=`{q}` is not a positive integer")),
            },
        };
        if qpairs < workers {
            return err(
                key,
                dev,
                format!(
                    "net_af_packet has {qpairs} queue pair(s) but each of the {workers} worker lcores polls its own queue: add `,qpairs={workers}`"
                ),
            );
        }
    }
    Ok(())
}

/// A `tracing` `EnvFilter` string: comma-separated `[target][span]=level`
/// or bare `level` directives. A bare word that is not a level would be
/// taken as a target (enabling everything from it) — almost always a typo
/// for a level (`warning`, `inof`), so it is rejected.
fn check_log_filter(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("must not be empty (e.g. \"info\")".into());
    }
    let mut depth = 0i32;
    let mut start = 0;
    let mut directives = Vec::new();
    for (i, c) in s.char_indices() {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                directives.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    directives.push(&s[start..]);
    let is_level = |l: &str| TRACING_LEVELS.contains(&l.trim().to_ascii_lowercase().as_str());
    for d in directives {
        let d = d.trim();
        if d.is_empty() {
            return Err("empty directive (stray `,`)".into());
        }
        let lvl = d.rfind('=').filter(|i| !d[*i..].contains(['}', ']']));
        match lvl {
            Some(i) => {
                if !is_level(&d[i + 1..]) {
                    return Err(format!(
                        "`{}` in `{d}` is not a level (trace, debug, info, warn, error, off)",
                        &d[i + 1..]
                    ));
                }
            }
            None if is_level(d) || d.contains('[') => {}
            None => {
                return Err(format!(
                    "`{d}` is not a level (trace, debug, info, warn, error, off); to enable everything from target `{d}` write `{d}=trace`"
                ))
            }
        }
    }
    Ok(())
}

impl Config {
    /// Check every value; the first problem is returned, naming the key
    /// (`ports[1].addresses[0]`), the value and the reason. [`crate::parse`]
    /// and [`crate::load`] call this; call it again after changing a
    /// `Config` in code.
    pub fn validate(&self) -> R {
        self.validate_eal()?;
        in_range("mempool.data_room", self.mempool.data_room, 256, u16::MAX)?;
        self.validate_engine()?;
        self.validate_arp()?;
        self.validate_ports()?;
        self.validate_mempool()?;
        self.validate_lb()?;
        self.validate_dhcp()?;
        self.validate_pktgen()?;
        self.validate_loadgen()?;
        self.validate_bgp()?;
        self.validate_cluster()?;
        self.validate_management()?;
        if let Err(reason) = check_log_filter(&self.log.level) {
            return err("log.level", &self.log.level, reason);
        }
        Ok(())
    }

    fn validate_cluster(&self) -> R {
        let Some(c) = &self.cluster else {
            return Ok(());
        };
        if self.lb.is_none() {
            return err(
                "cluster",
                "[cluster]",
                "shares the balancer's state: needs an [lb] section",
            );
        }
        if c.redis.is_empty() {
            return err(
                "cluster.redis",
                "\"\"",
                "is required: redis://host:port[/db] or redis+unix:///path",
            );
        }
        let hosts_ok = |hosts: &str| {
            hosts.split(',').all(|h| {
                h.rsplit_once(':')
                    .is_some_and(|(a, p)| !a.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
            })
        };
        let scheme_ok = ["redis://", "rediss://", "redis+unix://", "unix://"]
            .iter()
            .any(|p| c.redis.starts_with(p) && c.redis.len() > p.len())
            || c.redis.strip_prefix("redis+sentinel://").is_some_and(|r| {
                r.split_once('/').is_some_and(|(hosts, master)| {
                    !master.is_empty() && !master.contains('/') && hosts_ok(hosts)
                })
            })
            || c.redis
                .strip_prefix("redis+cluster://")
                .is_some_and(|r| !r.is_empty() && hosts_ok(r));
        if !scheme_ok {
            return err(
                "cluster.redis",
                &c.redis,
                "must be redis://host:port[/db], rediss://…, redis+unix:///path, redis+sentinel://host:port[,…]/master or redis+cluster://host:port[,…]",
            );
        }
        let ok = |v: &str| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
        };
        if !ok(&c.name) {
            return err("cluster.name", &c.name, "must be 1-64 of [A-Za-z0-9_.:-]");
        }
        if !c.node.is_empty() && !ok(&c.node) {
            return err(
                "cluster.node",
                &c.node,
                "must be 1-64 of [A-Za-z0-9_.:-] (or empty: host name and PID)",
            );
        }
        in_range("cluster.sync_interval_ms", c.sync_interval_ms, 50, 60_000)?;
        in_range("cluster.timeout_ms", c.timeout_ms, 10, 10_000)?;
        in_range("cluster.flow_ttl_s", c.flow_ttl_s, 10, 86_400)?;
        in_range("cluster.flow_queue", c.flow_queue as u64, 256, 1 << 20)?;
        in_range("cluster.adopt_max_pps", c.adopt_max_pps, 1000, 1_000_000)?;
        Ok(())
    }

    fn validate_bgp(&self) -> R {
        let Some(b) = &self.bgp else {
            return Ok(());
        };
        if self.lb.is_none() {
            return err("bgp", "[bgp]", "announces VIPs: needs an [lb] section");
        }
        if b.speaker != "bird" {
            return err(
                "bgp.speaker",
                &b.speaker,
                "the supported speaker is \"bird\" (BIRD 2)",
            );
        }
        for (k, v) in [
            ("bgp.control_socket", &b.control_socket),
            ("bgp.routes_file", &b.routes_file),
        ] {
            if v.is_empty() {
                return err(k, "\"\"", "is required: an absolute path");
            }
            if !v.starts_with('/') {
                return err(k, v, "must be an absolute path");
            }
        }
        let p = b.protocol.as_bytes();
        if p.is_empty()
            || p.len() > 64
            || !(p[0].is_ascii_alphabetic() || p[0] == b'_')
            || !p.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            return err(
                "bgp.protocol",
                &b.protocol,
                "must be a BIRD symbol: a letter or `_`, then letters, digits, `_` (at most 64)",
            );
        }
        in_range("bgp.stall_ms", b.stall_ms, 100, 60_000)?;
        in_range("bgp.withdraw_delay_ms", b.withdraw_delay_ms, 0, 60_000)?;
        if !self.ports.iter().any(|p| p.kernel_iface.is_some()) {
            return err("bgp", "[bgp]", "the speaker's sessions run over the exception path: give the port facing the router a `kernel_iface`");
        }
        Ok(())
    }

    fn validate_management(&self) -> R {
        let m = &self.management;
        match m.parse_listen() {
            Err(why) => return err("management.listen", &m.listen, why),
            Ok(crate::ManagementListen::Tcp(a)) => {
                for p in &self.ports {
                    if p.addresses
                        .iter()
                        .any(|c| std::net::IpAddr::V4(c.addr) == a.ip())
                    {
                        return err(
                            "management.listen",
                            &m.listen,
                            format!(
                                "is an address of the data port `{}`: the management listener is a kernel socket and must never be reachable through a DPDK data port",
                                p.name
                            ),
                        );
                    }
                }
            }
            Ok(_) => {}
        }
        if let Some(t) = &m.token_file {
            if t.is_empty() {
                return err("management.token_file", "\"\"", "must be a file path");
            }
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
            let map = match parse_lcore_map(&e.lcore_map) {
                Ok(m) => m,
                Err(why) => {
                    return err(
                        "eal.lcore_map",
                        &e.lcore_map,
                        format!(
                        "{why} (expected EAL --lcores syntax, e.g. \"0@0,1@2\" or \"(1-2)@(4,6)\")"
                    ),
                    )
                }
            };
            for l in std::iter::once(&e.main_lcore).chain(&e.worker_lcores) {
                if !map.contains_key(l) {
                    return err(
                        "eal.lcore_map",
                        &e.lcore_map,
                        format!("does not map lcore {l} (every lcore in main_lcore and worker_lcores needs a CPU)"),
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
        for (i, a) in e.extra_args.iter().enumerate() {
            let key = format!("eal.extra_args[{i}]");
            if a.is_empty() {
                return err(key, a, "empty argument");
            }
            for (opt, instead) in MANAGED_EAL_OPTS {
                let hit = if opt.starts_with("--") {
                    a == opt || a.starts_with(&format!("{opt}="))
                } else {
                    a.starts_with(opt) && !a.starts_with("--")
                };
                if hit {
                    return err(
                        key,
                        a,
                        format!("`{opt}` is generated from the config; set {instead} instead"),
                    );
                }
            }
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
        in_range(
            "engine.idle_spin_us",
            self.engine.idle_spin_us,
            0,
            1_000_000,
        )?;
        in_range(
            "engine.kernel_poll_us",
            self.engine.kernel_poll_us,
            10,
            100_000,
        )?;
        in_range(
            "engine.kernel_max_pps",
            self.engine.kernel_max_pps,
            0,
            10_000_000,
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

    /// The index of the port named `name`.
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.name == name)
    }

    fn validate_lb(&self) -> R {
        let Some(lb) = &self.lb else {
            return Ok(());
        };
        let port = |key: &str, name: &str| -> Result<usize, ConfigError> {
            if name.is_empty() {
                return Err(ConfigError::new(
                    key,
                    "",
                    "is required: the name of a [[ports]] entry",
                ));
            }
            self.port_index(name)
                .ok_or_else(|| ConfigError::new(key, name, "no [[ports]] entry has this name"))
        };
        let cp = port("lb.client_port", &lb.client_port)?;
        let bp = port("lb.backend_port", &lb.backend_port)?;
        let bport = &self.ports[bp];
        match lb.local {
            Some(a) if !bport.addresses.iter().any(|c| c.addr == a) => {
                return err(
                    "lb.local",
                    a,
                    format!("is not an address of the backend port `{}`", bport.name),
                );
            }
            None if bport.addresses.is_empty() && bport.addresses.v6().is_empty() => {
                return err(
                    "lb.backend_port",
                    &lb.backend_port,
                    "this port has no address to connect to backends from",
                );
            }
            _ => {}
        }
        if let Some(a) = lb.local.filter(|a| u32::from(*a) >= 0xF000_0000) {
            return err(
                "lb.local",
                a,
                "240.0.0.0/4 is reserved (class E; the balancer's stand-ins for IPv6 addresses)",
            );
        }
        if let Some(a) = lb.local6 {
            if !bport.addresses.v6().iter().any(|c| c.addr == a) {
                return err(
                    "lb.local6",
                    a,
                    format!(
                        "is not an IPv6 address of the backend port `{}`",
                        bport.name
                    ),
                );
            }
        }
        if lb.source_port_min < 1024 {
            return err(
                "lb.source_port_min",
                lb.source_port_min,
                "must be at least 1024",
            );
        }
        if lb.source_port_max < lb.source_port_min {
            return err(
                "lb.source_port_max",
                lb.source_port_max,
                format!(
                    "must not be below lb.source_port_min ({})",
                    lb.source_port_min
                ),
            );
        }
        let workers = self.eal.worker_lcores.len().max(1) as u32;
        let span = u32::from(lb.source_port_max - lb.source_port_min) + 1;
        if span < workers * 16 {
            return err(
                "lb.source_port_max",
                lb.source_port_max,
                format!("the source port range must hold at least 16 ports per worker lcore ({} needed)", workers * 16),
            );
        }
        in_range("lb.max_flows", lb.max_flows, 16, 1 << 24)?;
        in_range("lb.max_connecting", lb.max_connecting, 1, lb.max_flows)?;
        in_range("lb.syn_rto_ms", lb.syn_rto_ms, 10, 10_000)?;
        in_range("lb.syn_retries", lb.syn_retries, 0, 8)?;
        in_range("lb.retries", lb.retries, 0, 8)?;
        in_range("lb.idle_timeout_s", lb.idle_timeout_s, 1, 86_400 * 7)?;
        in_range("lb.shutdown_grace_s", lb.shutdown_grace_s, 0, 3600)?;
        in_range("lb.access_log.sample", lb.access_log.sample, 1, 1_000_000)?;
        in_range("lb.access_log.ring", lb.access_log.ring, 64, 1 << 20)?;
        if lb.access_log.path.as_deref() == Some("") {
            return err(
                "lb.access_log.path",
                "\"\"",
                "must be a file path or \"-\" (stdout)",
            );
        }
        in_range("lb.linger_ms", lb.linger_ms, 0, 600_000)?;
        in_range("lb.window_scale", lb.window_scale, 0, 14)?;
        let h = &lb.health;
        in_range("lb.health.interval_ms", h.interval_ms, 50, 3_600_000)?;
        in_range("lb.health.timeout_ms", h.timeout_ms, 10, h.interval_ms)?;
        in_range("lb.health.rise", h.rise, 1, 100)?;
        in_range("lb.health.fall", h.fall, 1, 100)?;
        if !h.http_path.starts_with('/')
            || h.http_path.len() > 200
            || h.http_path.bytes().any(|b| !(0x21..0x7f).contains(&b))
        {
            return err(
                "lb.health.http_path",
                &h.http_path,
                "must start with `/`, be at most 200 characters, without spaces or control characters",
            );
        }
        in_range("lb.health.expect_status", h.expect_status, 100, 599)?;
        if lb.vips.is_empty() {
            return err("lb.vips", "[]", "at least one [[lb.vips]] entry is needed");
        }
        let cport = &self.ports[cp];
        let mut seen = HashSet::new();
        let mut names = HashSet::new();
        for (i, v) in lb.vips.iter().enumerate() {
            let k = |f: &str| format!("lb.vips[{i}].{f}");
            if !is_name(&v.name, 32) {
                return err(k("name"), &v.name, "must be 1-32 of [a-z0-9_-]");
            }
            if !names.insert(v.name.as_str()) {
                return err(k("name"), &v.name, "another VIP has this name");
            }
            let on_port = match v.address.ip() {
                std::net::IpAddr::V4(a) => cport.addresses.iter().any(|c| c.addr == a),
                std::net::IpAddr::V6(a) => cport.addresses.v6().iter().any(|c| c.addr == a),
            };
            if !on_port {
                return err(
                    k("address"),
                    v.address,
                    format!(
                        "the address is not one of the client port `{}`'s addresses",
                        cport.name
                    ),
                );
            }
            if v.address.port() == 0 {
                return err(k("address"), v.address, "port 0 is not a service port");
            }
            if matches!(v.address.ip(), std::net::IpAddr::V4(a) if u32::from(a) >= 0xF000_0000) {
                return err(
                    k("address"),
                    v.address,
                    "240.0.0.0/4 is reserved (class E; the balancer's stand-ins for IPv6 addresses)",
                );
            }
            if !seen.insert(v.address) {
                return err(
                    k("address"),
                    v.address,
                    "another VIP uses this address and port",
                );
            }
            if v.backends.is_empty() {
                return err(k("backends"), "[]", "a VIP needs at least one backend");
            }
            if v.backends.len() > 1024 {
                return err(
                    k("backends"),
                    v.backends.len(),
                    "at most 1024 backends per VIP",
                );
            }
            let mut bseen = HashSet::new();
            for (j, b) in v.backends.iter().enumerate() {
                let bk = |f: &str| format!("lb.vips[{i}].backends[{j}].{f}");
                if !bseen.insert(b.address) {
                    return err(bk("address"), b.address, "listed twice in this VIP");
                }
                if b.address.port() == 0 {
                    return err(bk("address"), b.address, "port 0 is not a service port");
                }
                match b.address.ip() {
                    std::net::IpAddr::V4(ip) if u32::from(ip) >= 0xF000_0000 => {
                        return err(
                            bk("address"),
                            b.address,
                            "240.0.0.0/4 is reserved (class E; the balancer's stand-ins for IPv6 addresses)",
                        );
                    }
                    std::net::IpAddr::V4(ip) => {
                        let on_link = bport.addresses.iter().any(|c| c.contains(ip));
                        if !on_link && bport.gateway.is_none() {
                            return err(
                                bk("address"),
                                b.address,
                                format!("is not on a subnet of the backend port `{}` and that port has no gateway", bport.name),
                            );
                        }
                        if bport.addresses.iter().any(|c| c.addr == ip) {
                            return err(
                                bk("address"),
                                b.address,
                                "is one of the appliance's own addresses",
                            );
                        }
                        if bport.addresses.is_empty() {
                            return err(
                                bk("address"),
                                b.address,
                                format!("an IPv4 backend needs an IPv4 address on the backend port `{}`", bport.name),
                            );
                        }
                    }
                    std::net::IpAddr::V6(ip) => {
                        let v6 = bport.addresses.v6();
                        if lb.local6.is_none() && v6.iter().all(|c| c.addr.is_unicast_link_local())
                        {
                            return err(
                                bk("address"),
                                b.address,
                                format!("an IPv6 backend needs an IPv6 source address: give the backend port `{}` an IPv6 address or set lb.local6", bport.name),
                            );
                        }
                        let on_link =
                            v6.iter().any(|c| c.contains(ip)) || ip.is_unicast_link_local();
                        if !on_link && bport.gateway6.is_none() {
                            return err(
                                bk("address"),
                                b.address,
                                format!("is not in an IPv6 prefix of the backend port `{}` and that port has no gateway6", bport.name),
                            );
                        }
                        if v6.iter().any(|c| c.addr == ip) {
                            return err(
                                bk("address"),
                                b.address,
                                "is one of the appliance's own addresses",
                            );
                        }
                        if ip.is_multicast() || ip.is_unspecified() || ip.is_loopback() {
                            return err(bk("address"), b.address, "is not a unicast address");
                        }
                    }
                }
                in_range(&bk("weight"), b.weight, 1, 1000)?;
            }
            validate_vip_tls(i, v)?;
            for (r, rule) in v.rules.iter().enumerate() {
                let rk = |f: &str| format!("lb.vips[{i}].rules[{r}].{f}");
                if v.tls == crate::TlsModeConf::Terminate
                    || v.policy == crate::PolicyConf::SessionAware
                {
                    return err(
                        k("rules"),
                        format!("[{} rule(s)]", v.rules.len()),
                        "content-aware rules are for plaintext HTTP VIPs (not tls = \"terminate\", not session-aware)",
                    );
                }
                if rule.host.is_none() && rule.path_prefix.is_none() && rule.cookie.is_none() {
                    return err(
                        rk("host"),
                        "(absent)",
                        "a rule needs at least one of host, path_prefix, cookie",
                    );
                }
                if let Some(p) = &rule.path_prefix {
                    if !p.starts_with('/') || p.contains(' ') {
                        return err(
                            rk("path_prefix"),
                            p,
                            "must start with `/` and contain no spaces",
                        );
                    }
                }
                if let Some(c) = &rule.cookie {
                    if c.split_once('=').is_none_or(|(n, _)| n.is_empty()) {
                        return err(rk("cookie"), c, "must be `name=value`");
                    }
                }
                if rule.backends.is_empty() {
                    return err(rk("backends"), "[]", "a rule needs at least one backend");
                }
                for b in &rule.backends {
                    if !v.backends.iter().any(|x| x.address == *b) {
                        return err(rk("backends"), b, "is not one of this VIP's backends");
                    }
                }
            }
            if v.policy == crate::PolicyConf::SessionAware && v.tls == crate::TlsModeConf::Terminate
            {
                return err(
                    k("policy"),
                    "session-aware",
                    "session-aware dispatch is for TLS pass-through VIPs (tls = \"off\"): a terminated VIP resumes sessions itself",
                );
            }
        }
        in_range("lb.tls_max_conns", lb.tls_max_conns, 1, 1_000_000)?;
        in_range("lb.min_mss", lb.min_mss, 48, 1460)?;
        in_range("lb.syn_backlog", lb.syn_backlog, 0, 1_000_000)?;
        in_range("lb.syn_rate", lb.syn_rate, 0, 100_000_000)?;
        in_range("lb.sessions.max_age_s", lb.sessions.max_age_s, 1, 86_400)?;
        in_range("lb.sessions.max_keys", lb.sessions.max_keys, 16, 10_000_000)?;
        in_range(
            "lb.sessions.sweep_interval_ms",
            lb.sessions.sweep_interval_ms,
            10,
            600_000,
        )?;
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
        let mut addrs6: HashSet<std::net::Ipv6Addr> = HashSet::new();
        let ifaces: Vec<&str> = self.ports.iter().filter_map(|p| p.iface()).collect();
        let mut kernel = HashSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            if let Some(name) = &p.kernel_iface {
                let key = format!("ports[{i}].kernel_iface");
                if name.is_empty()
                    || name.len() > IFNAME_MAX
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
                    || name == "."
                    || name == ".."
                {
                    return err(
                        key,
                        name,
                        format!("must be a Linux interface name: 1-{IFNAME_MAX} of [A-Za-z0-9_.-]"),
                    );
                }
                if ifaces.contains(&name.as_str()) {
                    return err(key, name, "is the kernel interface a port's device uses (`iface=`); the exception path creates its own");
                }
                if !kernel.insert(name.as_str()) {
                    return err(key, name, "another port has this kernel interface");
                }
            }
        }
        for (i, p) in self.ports.iter().enumerate() {
            let k = |f: &str| format!("ports[{i}].{f}");
            if p.name.is_empty() {
                return err(k("name"), "", "is required: 1-32 of [a-z0-9_-]");
            }
            if !is_name(&p.name, 32) {
                return err(k("name"), &p.name, "must be 1-32 of [a-z0-9_-]");
            }
            if !names.insert(p.name.as_str()) {
                return err(k("name"), &p.name, "another port has this name");
            }
            self.validate_port(i, p)?;
            let dev_id = p.pci_addr().unwrap_or_else(|| p.dev_name().to_string());
            if !devs.insert(dev_id.clone()) {
                return err(
                    k("device"),
                    &p.device,
                    format!("device `{dev_id}` is used by another port"),
                );
            }
            for (j, c) in p.addresses.iter().enumerate() {
                if !addrs.insert(c.addr) {
                    return err(
                        format!("ports[{i}].addresses[{}]", p.addresses.pos4(j)),
                        c,
                        "this address is already configured (on this or another port)",
                    );
                }
            }
            for (j, c) in p.addresses.v6().iter().enumerate() {
                if !addrs6.insert(c.addr) {
                    return err(
                        format!("ports[{i}].addresses[{}]", p.addresses.pos6(j)),
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
                "is required: a DPDK vdev (e.g. net_af_packet0,iface=eth1) or a PCI address (0000:03:00.0)",
            );
        }
        if p.is_vdev() {
            check_vdev(&k("device"), p, self.eal.worker_lcores.len())?;
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
            return err("mempool.data_room", self.mempool.data_room, format!("port `{}` has MTU {} and needs at least {need} bytes per mbuf = MTU + {L2_OVERHEAD} (Ethernet header, 2 VLAN tags, FCS) + {HEADROOM} headroom (frames are single-segment)", p.name, p.mtu));
        }
        if p.addresses.is_empty() {
            return err(
                k("addresses"),
                "[]",
                "at least one IPv4 address (CIDR) is needed",
            );
        }
        for (j, c) in p.addresses.v6().iter().enumerate() {
            let key = format!("ports[{i}].addresses[{}]", p.addresses.pos6(j));
            let a = c.addr;
            if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
                return err(key, c, "not a usable unicast address");
            }
            if a.to_ipv4_mapped().is_some() {
                return err(key, c, "an IPv4-mapped address: write the IPv4 address");
            }
        }
        for (j, c) in p.addresses.iter().enumerate() {
            let key = format!("ports[{i}].addresses[{}]", p.addresses.pos4(j));
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
        let mut seen = HashSet::new();
        let v6 = p.addresses.v6();
        let on_link6 = |n: std::net::Ipv6Addr| {
            (!v6.is_empty() && n.is_unicast_link_local()) || v6.iter().any(|c| c.contains(n))
        };
        let mut seen6 = HashSet::new();
        for (j, n) in p.neighbors.v6().iter().enumerate() {
            let key = format!("ports[{i}].neighbors[{}]", p.neighbors.pos6(j));
            if !on_link6(*n) || n.is_multicast() {
                return err(
                    key,
                    n,
                    format!(
                        "not on a link of port `{}` (inside one of its IPv6 prefixes, or link-local on a port with IPv6)",
                        p.name
                    ),
                );
            }
            if v6.iter().any(|c| c.addr == *n) {
                return err(key, n, "is one of the port's own addresses");
            }
            if !seen6.insert(*n) {
                return err(key, n, "listed twice");
            }
        }
        if let Some(g) = p.gateway6 {
            if !on_link6(g) || g.is_multicast() || v6.iter().any(|c| c.addr == g) {
                return err(
                    k("gateway6"),
                    g,
                    format!(
                        "must be a neighbour on a link of port `{}` (inside one of its IPv6 prefixes or link-local; not one of its own addresses)",
                        p.name
                    ),
                );
            }
        }
        for (j, n) in p.neighbors.iter().enumerate() {
            let key = format!("ports[{i}].neighbors[{}]", p.neighbors.pos4(j));
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
            if p.addresses
                .iter()
                .any(|c| c.prefix < 31 && (*n == c.network() || *n == c.broadcast()))
            {
                return err(key, n, "is a network or broadcast address");
            }
            if !seen.insert(*n) {
                return err(key, n, "listed twice");
            }
        }
        if let Some(g) = p.gateway {
            if !p.addresses.iter().any(|c| c.contains(g)) || p.addresses.iter().any(|c| c.addr == g)
            {
                return err(
                    k("gateway"),
                    g,
                    format!(
                        "must be a neighbour inside a subnet of port `{}` (not one of its own addresses)",
                        p.name
                    ),
                );
            }
        }
        Ok(())
    }

    fn validate_mempool(&self) -> R {
        let m = &self.mempool;
        let workers = self.eal.worker_lcores.len() as u32;
        let need = self.mbufs_needed(workers);
        if u64::from(m.mbufs) < need {
            let descs: Vec<String> = self
                .ports
                .iter()
                .map(|p| {
                    if p.kernel_iface.is_some() {
                        let k = crate::KERNEL_DESC;
                        format!("{}+{} + kernel interface {k}+{k}", p.rx_desc, p.tx_desc)
                    } else {
                        format!("{}+{}", p.rx_desc, p.tx_desc)
                    }
                })
                .collect();
            return err(
                "mempool.mbufs",
                m.mbufs,
                format!(
                    "too few: need at least {need} = rx+tx descriptors per queue ({}) × {workers} worker queue(s) + {workers} worker(s) × (cache {} + burst {} × (1 rx + 2 × {} port TX buffers))",
                    descs.join(" + "),
                    m.cache,
                    self.engine.burst,
                    self.ports.len(),
                ),
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
                format!(
                    "must be ≤ mbufs / 1.5 = {} (DPDK rule)",
                    u64::from(m.mbufs) * 2 / 3
                ),
            );
        }
        Ok(())
    }
}

impl Config {
    /// The `[loadgen]` rules.
    fn validate_loadgen(&self) -> R {
        use crate::schema::LoadgenRole;
        let Some(g) = &self.loadgen else {
            return Ok(());
        };
        // Each worker lcore runs its share of the connections.
        let n = self.eal.worker_lcores.len().max(1) as u64;
        let Some(port) = self.ports.iter().find(|p| p.name == g.port) else {
            return err("loadgen.port", &g.port, "no [[ports]] entry has this name");
        };
        if port.addresses.is_empty() {
            return err("loadgen.port", &g.port, "the port has no IPv4 address");
        }
        in_range("loadgen.timeout_s", g.timeout_s, 1, 86_400)?;
        in_range("loadgen.tcp_buf", g.tcp_buf, 4096, 16 * 1024 * 1024)?;
        if g.tls {
            if g.tls_versions.is_empty() || g.tls_versions.iter().any(|v| v != "1.3" && v != "1.2")
            {
                return err(
                    "loadgen.tls_versions",
                    format!("{:?}", g.tls_versions),
                    "one or both of \"1.3\" and \"1.2\"",
                );
            }
            if g.tls_groups.is_empty() {
                return err("loadgen.tls_groups", "[]", "at least one group");
            }
            if g.tls_versions.iter().all(|v| v == "1.2")
                && g.tls_groups.iter().all(|x| x.is_post_quantum())
            {
                return err(
                    "loadgen.tls_groups",
                    format!("{:?}", g.tls_groups),
                    "TLS 1.2 only, and no group TLS 1.2 can use (X25519, secp256r1, secp384r1)",
                );
            }
            in_range("loadgen.tls_resume_pct", g.tls_resume_pct, 0, 100)?;
        }
        let (client, server) = (g.role != LoadgenRole::Server, g.role != LoadgenRole::Client);
        let role = match g.role {
            LoadgenRole::Client => "client",
            LoadgenRole::Server => "server",
            LoadgenRole::Both => "both",
        };
        {
            if client {
                let Some(t) = g.target else {
                    return err(
                        "loadgen.target",
                        "",
                        format!("is required for role = \"{role}\""),
                    );
                };
                if t.port() == 0
                    || t.ip().is_unspecified()
                    || t.ip().is_broadcast()
                    || t.ip().is_multicast()
                {
                    return err("loadgen.target", t, "must be a unicast address and a port");
                }
                in_range("loadgen.connections", g.connections, 1, 1_000_000_000)?;
                in_range("loadgen.concurrency", g.concurrency, 1, 65_536)?;
                in_range("loadgen.requests", g.requests, 1, 1_000_000)?;
                in_range("loadgen.rate", g.rate, 0, 100_000_000)?;
                in_range("loadgen.think_ms", g.think_ms, 0, 3_600_000)?;
                let v4 = port.addresses.len() as u32;
                if g.sources == 0 || g.sources > v4 {
                    return err(
                        "loadgen.sources",
                        g.sources,
                        format!("between 1 and the {v4} IPv4 address(es) of port {}", g.port),
                    );
                }
                in_range("loadgen.sport_min", g.sport_min, 1024, 65_535)?;
                if g.sport_max < g.sport_min {
                    return err(
                        "loadgen.sport_max",
                        g.sport_max,
                        format!("must not be below sport_min ({})", g.sport_min),
                    );
                }
                let ports = u64::from(g.sport_max - g.sport_min) + 1;
                if ports < n {
                    return err(
                        "loadgen.sport_max",
                        g.sport_max,
                        format!("sport_min..=sport_max holds {ports} port(s), fewer than the {n} worker lcores that split it"),
                    );
                }
                if u64::from(g.concurrency) < n {
                    return err(
                        "loadgen.concurrency",
                        g.concurrency,
                        format!("below the {n} worker lcores (each runs its share)"),
                    );
                }
                if g.rate > 0 && g.rate < n {
                    return err(
                        "loadgen.rate",
                        g.rate,
                        format!("below the {n} worker lcores (each paces its share; 0 = unpaced)"),
                    );
                }
                // The smallest lcore share of the ports against the
                // largest share of the concurrency.
                let slots = u64::from(g.sources) * (ports / n);
                if u64::from(g.concurrency).div_ceil(n) > slots {
                    return err(
                        "loadgen.concurrency",
                        g.concurrency,
                        format!(
                            "above sources × (sport_max − sport_min + 1) = {} ({slots} per worker lcore): every open connection needs its own source address and port",
                            u64::from(g.sources) * ports
                        ),
                    );
                }
                if !matches!(g.method.as_str(), "GET" | "HEAD" | "POST") {
                    return err("loadgen.method", &g.method, "GET, HEAD or POST");
                }
                if g.request_bytes > 0 && g.method != "POST" {
                    return err(
                        "loadgen.request_bytes",
                        g.request_bytes,
                        format!("a request body needs method = \"POST\" (not {})", g.method),
                    );
                }
                // The request (head and body) is queued whole.
                let request =
                    u64::from(g.request_bytes) + g.path.len() as u64 + g.host.len() as u64 + 128;
                if request > u64::from(g.tcp_buf) {
                    return err(
                        "loadgen.request_bytes",
                        g.request_bytes,
                        format!(
                            "the request (≈ {request} bytes with its head) must fit in tcp_buf ({})",
                            g.tcp_buf
                        ),
                    );
                }
                let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
                if !g.path.starts_with('/') || g.path.len() > 1024 || !printable(&g.path) {
                    return err(
                        "loadgen.path",
                        &g.path,
                        "starts with '/', at most 1024 printable characters, no spaces",
                    );
                }
                if g.host.len() > 255 || !printable(&g.host) {
                    return err(
                        "loadgen.host",
                        &g.host,
                        "at most 255 printable characters, no spaces",
                    );
                }
            }
            if server {
                // Role "both": the server side on its own port.
                let (key, name) = if client {
                    ("loadgen.server_port", g.server_port.as_str())
                } else {
                    ("loadgen.port", g.port.as_str())
                };
                let Some(sport) = self.ports.iter().find(|p| p.name == name) else {
                    return err(key, name, "no [[ports]] entry has this name");
                };
                if client && name == g.port {
                    return err(
                        key,
                        name,
                        "role = \"both\" runs the server on a port of its own, not loadgen.port",
                    );
                }
                let Some(l) = g.listen else {
                    return err(
                        "loadgen.listen",
                        "",
                        format!("is required for role = \"{role}\""),
                    );
                };
                if l.port() == 0 || !sport.addresses.iter().any(|c| c.addr == *l.ip()) {
                    return err(
                        "loadgen.listen",
                        l,
                        format!("must be an address of port {name} and a port"),
                    );
                }
                in_range(
                    "loadgen.response_bytes",
                    g.response_bytes,
                    0,
                    64 * 1024 * 1024,
                )?;
                in_range("loadgen.max_conns", u64::from(g.max_conns), n, 1_000_000)?;
                in_range("loadgen.chunk_bytes", g.chunk_bytes, 1, 16 * 1024 * 1024)?;
                if g.paths.len() > 15 {
                    return err(
                        "loadgen.paths",
                        g.paths.len(),
                        "at most 15 paths (besides the default response)",
                    );
                }
                for (i, p) in g.paths.iter().enumerate() {
                    let key = format!("loadgen.paths[{i}]");
                    if !p.path.starts_with('/')
                        || p.path.len() > 1024
                        || p.path.contains('?')
                        || !p.path.bytes().all(|b| b.is_ascii_graphic())
                    {
                        return err(
                            format!("{key}.path"),
                            &p.path,
                            "starts with '/', at most 1024 printable characters, no spaces, no '?' (the query is not matched)",
                        );
                    }
                    if g.paths[..i].iter().any(|q| q.path == p.path) {
                        return err(format!("{key}.path"), &p.path, "listed twice");
                    }
                    in_range(
                        &format!("{key}.response_bytes"),
                        p.response_bytes,
                        0,
                        64 * 1024 * 1024,
                    )?;
                }
                if g.tls && (g.tls_cert.is_empty() || g.tls_key.is_empty()) {
                    return err(
                        if g.tls_cert.is_empty() {
                            "loadgen.tls_cert"
                        } else {
                            "loadgen.tls_key"
                        },
                        "",
                        "is required for a TLS server (role = \"server\", tls = true)",
                    );
                }
            }
        }
        Ok(())
    }

    /// The `[pktgen]` rules.
    fn validate_pktgen(&self) -> R {
        use crate::schema::{parse_ip_range, parse_mac, parse_port_range, PktgenSizeMode};
        let Some(g) = &self.pktgen else {
            return Ok(());
        };
        let port = |key: &str, name: &str| -> R {
            if !self.ports.iter().any(|p| p.name == name) {
                return err(key, name, "no [[ports]] entry has this name");
            }
            Ok(())
        };
        if self.eal.worker_lcores.len() != 1 {
            return err(
                "eal.worker_lcores",
                format!("{:?}", self.eal.worker_lcores),
                "qsplice pktgen runs on exactly one worker lcore",
            );
        }
        port("pktgen.tx_port", &g.tx_port)?;
        if !g.rx_port.is_empty() {
            port("pktgen.rx_port", &g.rx_port)?;
        }
        if g.rate_pps > 0 && g.rate_bps > 0 {
            return err(
                "pktgen.rate_bps",
                g.rate_bps,
                "set either rate_pps or rate_bps, not both",
            );
        }
        in_range("pktgen.rate_pps", g.rate_pps, 0, 1_000_000_000)?;
        in_range("pktgen.rate_bps", g.rate_bps, 0, 1_000_000_000_000)?;
        in_range("pktgen.burst", g.burst, 1, 256)?;
        in_range("pktgen.drain_ms", g.drain_ms, 0, 60_000)?;
        let max = (u32::from(self.mempool.data_room).saturating_sub(HEADROOM) + 4).min(9220);
        let size = |key: &str, v: u32| in_range(key, v, 64, max);
        match g.size_mode {
            PktgenSizeMode::Fixed => size("pktgen.size", u32::from(g.size))?,
            PktgenSizeMode::Range => {
                size("pktgen.size_min", u32::from(g.size_min))?;
                size("pktgen.size_max", u32::from(g.size_max))?;
                if g.size_min > g.size_max {
                    return err("pktgen.size_min", g.size_min, "is above size_max");
                }
            }
            PktgenSizeMode::Imix => {
                if g.imix.is_empty() || g.imix.len() > 16 {
                    return err(
                        "pktgen.imix",
                        g.imix.len(),
                        "needs 1..=16 [size, weight] pairs",
                    );
                }
                let mut total = 0u32;
                for (i, [s, w]) in g.imix.iter().enumerate() {
                    size(&format!("pktgen.imix[{i}][0]"), *s)?;
                    in_range(&format!("pktgen.imix[{i}][1]"), *w, 1, 10_000)?;
                    total += w;
                }
                in_range("pktgen.imix (sum of weights)", total, 1, 10_000)?;
            }
        }
        if g.streams.is_empty() || g.streams.len() > 1024 {
            return err(
                "pktgen.streams",
                g.streams.len(),
                "needs 1..=1024 [[pktgen.streams]] entries",
            );
        }
        for (i, s) in g.streams.iter().enumerate() {
            let k = |f: &str| format!("pktgen.streams[{i}].{f}");
            for (f, v) in [("src_mac", &s.src_mac), ("dst_mac", &s.dst_mac)] {
                if !v.is_empty() && parse_mac(v).is_none() {
                    return err(k(f), v, "not a MAC address (expected aa:bb:cc:dd:ee:ff)");
                }
            }
            in_range(&k("vlan"), s.vlan, 0, 4094)?;
            for (f, v) in [("src_ip", &s.src_ip), ("dst_ip", &s.dst_ip)] {
                if parse_ip_range(v).is_none() {
                    return err(
                        k(f),
                        v,
                        "expected an IPv4 address or a range a.b.c.d-e.f.g.h (first <= last)",
                    );
                }
            }
            for (f, v) in [("src_port", &s.src_port), ("dst_port", &s.dst_port)] {
                if parse_port_range(v).is_none() {
                    return err(k(f), v, "expected a port or a range n-m (first <= last)");
                }
            }
            in_range(&k("ttl"), s.ttl, 1, 255)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_syntax() {
        for ok in ["0000:03:00.0", "03:00.1", "0000:af:1f.7", "ABCD:EF:00.0"] {
            assert!(is_pci(ok), "{ok}");
        }
        for bad in [
            "0000:03:00.8",
            "03:20.0",
            "3:00.0",
            "0000:03:00",
            "eth0",
            "0000:03:00.0:1",
        ] {
            assert!(!is_pci(bad), "{bad}");
        }
    }

    #[test]
    fn log_filters() {
        for ok in [
            "info",
            "WARN",
            "qsplice=debug,warn",
            "qsplice::runtime=trace",
            "[span{a=1,b=2}]=debug",
            "off",
            "3",
        ] {
            assert_eq!(check_log_filter(ok), Ok(()), "{ok}");
        }
        for bad in ["", " ", "warning", "inof", "qsplice=loud", "info,,debug"] {
            assert!(check_log_filter(bad).is_err(), "{bad:?}");
        }
    }
}
