//! `qsplice ctl`: operate a running appliance through its management
//! listener (`[management] listen`), as `haproxyctl` / `ipvsadm` users
//! expect: tables for people, `--json` for scripts, a non-zero exit status
//! with the server's message on failure.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Subcommand;
use qsplice_mgmt::client::{escape, Client};
use qsplice_mgmt::report::Report;
use serde_json::{json, Value};

/// What `qsplice ctl` does.
#[derive(Subcommand, Debug, Clone)]
pub enum CtlVerb {
    /// Everything the appliance reports (counters, ports, VIPs, backends).
    Status,
    /// VIPs with their connection sums, TLS and session-table counters.
    Vips,
    /// Every backend: administrative state, health, weight, connections.
    Backends,
    /// A session-aware VIP's mapping table, most recently used first.
    Sessions {
        /// VIP name (or address:port).
        vip: String,
        /// Rows to skip.
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// Rows to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Terminated VIPs: certificates served (subject, names, expiry) and
    /// ticket keys (age, rotations).
    Tls,
    /// Per-lcore engine and balancer counters.
    Lcores,
    /// Ports, mempools and neighbours.
    Ports,
    /// The Prometheus exposition (`GET /metrics`), as a scraper sees it.
    Metrics,
    /// Re-read the config file and apply it (as SIGHUP); fails with the
    /// key, value and reason when the new config is refused.
    Reload,
    /// Reopen the access log file (as SIGUSR1; after logrotate moved it).
    ReopenAccessLog,
    /// Shut the appliance down gracefully (as SIGTERM): new connections
    /// refused at once, open ones may finish for `lb.shutdown_grace_s`.
    Shutdown,
    /// Change one backend: state and/or weight.
    Backend {
        /// VIP name (or address:port).
        vip: String,
        /// Backend address:port.
        backend: String,
        /// up, down or draining.
        #[arg(long)]
        state: Option<String>,
        /// Scheduler weight, 1..=1000.
        #[arg(long)]
        weight: Option<u32>,
    },
    /// Drain a backend: no new connections, established ones continue.
    Drain {
        /// VIP name (or address:port).
        vip: String,
        /// Backend address:port.
        backend: String,
    },
    /// Put a backend back in rotation (state up).
    Enable {
        /// VIP name (or address:port).
        vip: String,
        /// Backend address:port.
        backend: String,
    },
    /// Take a backend out of rotation (state down).
    Disable {
        /// VIP name (or address:port).
        vip: String,
        /// Backend address:port.
        backend: String,
    },
}

/// Options common to every verb.
#[derive(Debug, Clone)]
pub struct CtlOpts {
    /// Listener base URL.
    pub url: String,
    /// Bearer token file (mutating verbs).
    pub token_file: Option<PathBuf>,
    /// Print JSON instead of tables.
    pub json: bool,
    /// Per-call timeout.
    pub timeout: Duration,
}

/// Run one verb; the text to print.
pub fn run(opts: &CtlOpts, verb: &CtlVerb) -> Result<String> {
    let token = match &opts.token_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("token file {}", p.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let c = Client::new(&opts.url, token, opts.timeout);
    let set = |vip: &str, backend: &str, body: Value| -> Result<Value> {
        Ok(c.post(
            &format!("/api/v1/vips/{}/backends/{}", escape(vip), escape(backend)),
            &body,
        )?)
    };
    let v: Value = match verb {
        CtlVerb::Metrics => return Ok(c.get_text("/metrics")?),
        CtlVerb::Status => {
            let v = c.get("/api/v1/status")?;
            if !opts.json {
                let r: Report = serde_json::from_value(v).context("status: unexpected answer")?;
                return Ok(r.render());
            }
            v
        }
        CtlVerb::Vips => c.get("/api/v1/vips")?,
        CtlVerb::Backends => c.get("/api/v1/backends")?,
        CtlVerb::Sessions { vip, offset, limit } => c.get(&format!(
            "/api/v1/sessions/{}?offset={offset}&limit={limit}",
            escape(vip)
        ))?,
        CtlVerb::Lcores => c.get("/api/v1/lcores")?,
        CtlVerb::Tls => c.get("/api/v1/tls")?,
        CtlVerb::Ports => c.get("/api/v1/ports")?,
        CtlVerb::Reload => c.post("/api/v1/reload", &json!({}))?,
        CtlVerb::Shutdown => c.post("/api/v1/shutdown", &json!({}))?,
        CtlVerb::ReopenAccessLog => c.post("/api/v1/access-log/reopen", &json!({}))?,
        CtlVerb::Backend {
            vip,
            backend,
            state,
            weight,
        } => {
            let mut body = serde_json::Map::new();
            if let Some(s) = state {
                body.insert("state".into(), json!(s));
            }
            if let Some(w) = weight {
                body.insert("weight".into(), json!(w));
            }
            set(vip, backend, Value::Object(body))?
        }
        CtlVerb::Drain { vip, backend } => set(vip, backend, json!({ "state": "draining" }))?,
        CtlVerb::Enable { vip, backend } => set(vip, backend, json!({ "state": "up" }))?,
        CtlVerb::Disable { vip, backend } => set(vip, backend, json!({ "state": "down" }))?,
    };
    if opts.json {
        return Ok(serde_json::to_string_pretty(&v)?);
    }
    Ok(match verb {
        CtlVerb::Vips => vips_table(&v),
        CtlVerb::Backends => backends_table(&v),
        CtlVerb::Sessions { .. } => sessions_table(&v),
        CtlVerb::Tls => tls_table(&v),
        _ => serde_json::to_string_pretty(&v)?,
    })
}

fn n(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn vips_table(v: &Value) -> String {
    let mut out = format!(
        "{:<16} {:<21} {:>8} {:>10} {:>10} {:>8} {:>14} {:>14}\n",
        "VIP", "ADDRESS", "ACTIVE", "OPENED", "SPLICED", "FAILED", "BYTES C2S", "BYTES S2C"
    );
    for x in v["vips"].as_array().into_iter().flatten() {
        let t = &x["total"];
        let _ = writeln!(
            out,
            "{:<16} {:<21} {:>8} {:>10} {:>10} {:>8} {:>14} {:>14}",
            s(x, "name"),
            s(x, "address"),
            n(t, "active"),
            n(t, "opened"),
            n(t, "spliced"),
            n(t, "failed"),
            n(t, "c2s_bytes"),
            n(t, "s2c_bytes")
        );
    }
    out
}

fn backends_table(v: &Value) -> String {
    let mut out = format!(
        "{:<16} {:<21} {:<9} {:<9} {:>6} {:>8} {:>10} {:>8}  {}\n",
        "VIP", "BACKEND", "ADMIN", "HEALTH", "WEIGHT", "ACTIVE", "OPENED", "FAILED", "LAST ERROR"
    );
    for x in v["backends"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:<16} {:<21} {:<9} {:<9} {:>6} {:>8} {:>10} {:>8}  {}",
            s(x, "vip"),
            s(x, "address"),
            s(x, "admin"),
            if x["healthy"].as_bool().unwrap_or(false) {
                "healthy"
            } else {
                "unhealthy"
            },
            n(x, "weight"),
            n(x, "active"),
            n(x, "opened"),
            n(x, "failed"),
            s(x, "last_error")
        );
    }
    out
}

fn tls_table(v: &Value) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut out = format!(
        "{:<16} {:<32} {:<24} {:>10}  {}\n",
        "VIP", "SUBJECT", "NAMES", "DAYS LEFT", "TICKET KEY"
    );
    for x in v["tls"].as_array().into_iter().flatten() {
        let keys = match x.get("tickets").filter(|t| !t.is_null()) {
            Some(t) => format!(
                "age {} s of {} s, {} rotations",
                n(t, "key_age_s"),
                n(t, "rotation_s"),
                n(t, "rotations")
            ),
            None => "off".to_string(),
        };
        for c in x["certificates"].as_array().into_iter().flatten() {
            let names: Vec<&str> = c["names"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let left = (c["not_after"].as_i64().unwrap_or(0) - now) / 86_400;
            let _ = writeln!(
                out,
                "{:<16} {:<32} {:<24} {:>10}  {}",
                s(x, "vip"),
                s(c, "subject"),
                names.join(","),
                left,
                keys
            );
        }
    }
    out
}

fn sessions_table(v: &Value) -> String {
    let mut out = format!(
        "VIP {}: {} sessions (from {})\n{:<18} {:<21} {:>14} {:>5}\n",
        s(v, "vip"),
        n(v, "total"),
        n(v, "offset"),
        "KEY",
        "BACKEND",
        "LAST USED (ms)",
        "BUSY"
    );
    for x in v["sessions"].as_array().into_iter().flatten() {
        for r in x["rows"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "{:<18} {:<21} {:>14} {:>5}",
                s(x, "key"),
                s(r, "backend"),
                n(r, "last_used_ms"),
                n(r, "busy")
            );
        }
    }
    out
}
