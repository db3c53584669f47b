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
    /// Add a backend to a VIP (new connections may use it at once).
    AddBackend {
        /// VIP name (or address:port).
        vip: String,
        /// Backend address:port.
        backend: String,
        /// Scheduler weight, 1..=1000.
        #[arg(long)]
        weight: Option<u32>,
        /// Connection limit (0: none).
        #[arg(long)]
        max_conns: Option<u32>,
        /// up, down or draining.
        #[arg(long)]
        state: Option<String>,
    },
    /// Remove a backend: no new connections, established ones finish
    /// (`--force`: reset them now).
    RemoveBackend {
        /// VIP name (or address:port).
        vip: String,
        /// Backend address:port.
        backend: String,
        /// Reset its connections now instead of letting them drain.
        #[arg(long)]
        force: bool,
    },
    /// Add a VIP: from flags, or `--file` holding one `[[lb.vips]]` entry
    /// (TOML, the config file's keys, or the same as JSON).
    AddVip {
        /// Name (with flags).
        #[arg(long, required_unless_present = "file")]
        name: Option<String>,
        /// address:port clients connect to (with flags).
        #[arg(long, required_unless_present = "file")]
        address: Option<String>,
        /// A backend address:port, optionally `=WEIGHT` (repeat).
        #[arg(long = "backend")]
        backends: Vec<String>,
        /// Scheduling policy (round-robin, weighted-round-robin,
        /// least-connections, maglev, session-aware).
        #[arg(long)]
        policy: Option<String>,
        /// A file with the whole entry (TOML or JSON) instead of flags.
        #[arg(long, conflicts_with_all = ["name", "address", "backends", "policy"])]
        file: Option<PathBuf>,
    },
    /// Remove a VIP: new connections refused, established ones finish
    /// (`--force`: reset them now).
    RemoveVip {
        /// VIP name (or address:port).
        vip: String,
        /// Reset its connections now instead of letting them drain.
        #[arg(long)]
        force: bool,
    },
    /// Change a VIP: its policy, name, or content rules.
    SetVip {
        /// VIP name (or address:port).
        vip: String,
        /// New scheduling policy.
        #[arg(long)]
        policy: Option<String>,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// A file with the new `rules` (TOML `[[rules]]` tables or a JSON
        /// object with a `rules` array; an empty array removes them).
        #[arg(long)]
        rules_file: Option<PathBuf>,
    },
    /// New TLS session-ticket keys now (every terminated VIP, or one).
    RotateTickets {
        /// VIP name (or address:port).
        vip: Option<String>,
    },
    /// Re-read every terminated VIP's certificate and key files now.
    ReloadTls,
}

/// A JSON or TOML file as a JSON value.
fn read_entry(p: &std::path::Path) -> Result<Value> {
    let text = std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?;
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        return Ok(v);
    }
    let t: toml::Table =
        toml::from_str(&text).with_context(|| format!("{}: neither JSON nor TOML", p.display()))?;
    Ok(serde_json::to_value(t)?)
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
        CtlVerb::AddBackend {
            vip,
            backend,
            weight,
            max_conns,
            state,
        } => {
            let mut body = serde_json::Map::new();
            body.insert("address".into(), json!(backend));
            if let Some(w) = weight {
                body.insert("weight".into(), json!(w));
            }
            if let Some(m) = max_conns {
                body.insert("max_conns".into(), json!(m));
            }
            if let Some(s) = state {
                body.insert("state".into(), json!(s));
            }
            c.post(
                &format!("/api/v1/vips/{}/backends", escape(vip)),
                &Value::Object(body),
            )?
        }
        CtlVerb::RemoveBackend {
            vip,
            backend,
            force,
        } => c.delete(&format!(
            "/api/v1/vips/{}/backends/{}{}",
            escape(vip),
            escape(backend),
            if *force { "?force=1" } else { "" }
        ))?,
        CtlVerb::AddVip {
            name,
            address,
            backends,
            policy,
            file,
        } => {
            let body = match file {
                Some(f) => read_entry(f)?,
                None => {
                    let mut b = serde_json::Map::new();
                    b.insert("name".into(), json!(name));
                    b.insert("address".into(), json!(address));
                    if let Some(p) = policy {
                        b.insert("policy".into(), json!(p));
                    }
                    let list: Vec<Value> = backends
                        .iter()
                        .map(|x| match x.split_once('=') {
                            Some((a, w)) => match w.parse::<u32>() {
                                Ok(w) => Ok(json!({ "address": a, "weight": w })),
                                Err(_) => Err(anyhow::anyhow!(
                                    "--backend {x}: the weight after `=` is not a number"
                                )),
                            },
                            None => Ok(json!({ "address": x })),
                        })
                        .collect::<Result<_>>()?;
                    b.insert("backends".into(), Value::Array(list));
                    Value::Object(b)
                }
            };
            c.post("/api/v1/vips", &body)?
        }
        CtlVerb::RemoveVip { vip, force } => c.delete(&format!(
            "/api/v1/vips/{}{}",
            escape(vip),
            if *force { "?force=1" } else { "" }
        ))?,
        CtlVerb::SetVip {
            vip,
            policy,
            name,
            rules_file,
        } => {
            let mut b = serde_json::Map::new();
            if let Some(p) = policy {
                b.insert("policy".into(), json!(p));
            }
            if let Some(n) = name {
                b.insert("name".into(), json!(n));
            }
            if let Some(f) = rules_file {
                let v = read_entry(f)?;
                let rules = v.get("rules").cloned().ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}: no `rules` key (TOML `[[rules]]` tables, or JSON {{\"rules\": [...]}}; an empty list removes them)",
                        f.display()
                    )
                })?;
                b.insert("rules".into(), rules);
            }
            c.post(&format!("/api/v1/vips/{}", escape(vip)), &Value::Object(b))?
        }
        CtlVerb::RotateTickets { vip } => c.post(
            &match vip {
                Some(v) => format!("/api/v1/tls/rotate-tickets?vip={}", escape(v)),
                None => "/api/v1/tls/rotate-tickets".to_string(),
            },
            &json!({}),
        )?,
        CtlVerb::ReloadTls => c.post("/api/v1/tls/reload", &json!({}))?,
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
        "{:<16} {:<21} {:<21} {:>8} {:>10} {:>10} {:>8} {:>14} {:>14}\n",
        "VIP",
        "ADDRESS",
        "POLICY",
        "ACTIVE",
        "OPENED",
        "SPLICED",
        "FAILED",
        "BYTES C2S",
        "BYTES S2C"
    );
    for x in v["vips"].as_array().into_iter().flatten() {
        let t = &x["total"];
        let policy = if x["removed"].as_bool().unwrap_or(false) {
            "(removed, draining)"
        } else {
            s(x, "policy")
        };
        let _ = writeln!(
            out,
            "{:<16} {:<21} {:<21} {:>8} {:>10} {:>10} {:>8} {:>14} {:>14}",
            s(x, "name"),
            s(x, "address"),
            policy,
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
