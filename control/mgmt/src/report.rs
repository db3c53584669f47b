//! What the appliance reports: the types of the JSON report (`--stats-json`,
//! `GET /api/v1/status`), shared by the control thread that fills them and
//! by `qsplice ctl`, which reads them back.

use std::collections::BTreeMap;

pub use qsplice_tls::TlsReport;
use serde::{Deserialize, Serialize};

/// One port's view: device counters plus identity.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PortReport {
    /// Config name.
    pub name: String,
    /// DPDK device name.
    pub device: String,
    /// MAC address.
    pub mac: String,
    /// NUMA socket, if the device has one.
    pub socket: Option<u32>,
    /// Packets received by the device.
    pub ipackets: u64,
    /// Packets sent by the device.
    pub opackets: u64,
    /// Rx drops because queues were full.
    pub imissed: u64,
    /// Rx errors.
    pub ierrors: u64,
    /// Tx errors.
    pub oerrors: u64,
    /// Rx mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// A resolved neighbour.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct NeighborReport {
    /// Port name.
    pub port: String,
    /// Neighbour address.
    pub ip: String,
    /// Its MAC.
    pub mac: String,
}

/// Route announcement (`[bgp]`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BgpReport {
    /// VIP addresses the speaker announces now (as last applied).
    pub announced: Vec<String>,
    /// VIP addresses this node would announce now.
    pub wanted: Vec<String>,
    /// Whether the node can serve (ports up, workers polling, not
    /// draining); when not, why.
    pub serving: bool,
    /// Why not serving (empty when serving).
    pub reason: String,
    /// Changes the speaker accepted.
    pub updates: u64,
    /// Failed attempts (speaker down, bad configuration); retried.
    pub failures: u64,
    /// The last failure's message.
    pub last_error: String,
}

/// State shared through Redis (`[cluster]`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClusterReport {
    /// Connected to Redis now.
    pub connected: bool,
    /// Sync rounds that reached Redis.
    pub rounds: u64,
    /// Rounds that failed.
    pub errors: u64,
    /// Ticket-key rotations this node performed (holding the lock).
    pub rotations_led: u64,
    /// Shared key sets installed.
    pub installs: u64,
    /// TLS sessions this node appended to the cluster's streams.
    #[serde(default)]
    pub sessions_out: u64,
    /// TLS sessions imported from other nodes.
    #[serde(default)]
    pub sessions_in: u64,
    /// Session-aware table rows sent to / received from the cluster, and
    /// lost to a full queue.
    #[serde(default)]
    pub rows_out: u64,
    /// See `rows_out`.
    #[serde(default)]
    pub rows_in: u64,
    /// See `rows_out`.
    #[serde(default)]
    pub rows_dropped: u64,
    /// The last error.
    pub last_error: String,
    /// The flow sync (`cluster.flow_sync`).
    #[serde(default)]
    pub flows: Option<FlowSyncReport>,
}

/// The cluster's flow sync: records out, lookups answered, takeovers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowSyncReport {
    /// Reaches Redis now.
    pub connected: bool,
    /// Records written to Redis.
    pub published: u64,
    /// Records lost to a full queue toward Redis.
    pub dropped: u64,
    /// Records waiting for Redis now.
    pub backlog: u64,
    /// Lookups that found a record.
    pub found: u64,
    /// Lookups no node had a record for.
    pub not_found: u64,
    /// Lookups Redis could not answer.
    pub unavailable: u64,
    /// Flows installed from dead nodes' records.
    pub loaded: u64,
    /// Installs lost to a full lcore ring.
    pub load_dropped: u64,
    /// Backend-side addresses of dead nodes served now.
    pub claimed: Vec<String>,
    /// Takeovers so far.
    pub takeovers: u64,
    /// Peers seen going away.
    pub peers_dead: u64,
    /// Redis commands sent.
    pub redis_ops: u64,
    /// Rounds that failed.
    pub errors: u64,
    /// The last error.
    pub last_error: String,
}

/// Everything `qsplice run` reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// Seconds since the workers started.
    pub uptime_s: f64,
    /// Counters summed over all workers (`drop_*` are drops by reason).
    pub total: BTreeMap<String, u64>,
    /// Per-worker counters, indexed like `eal.worker_lcores`.
    pub per_core: Vec<BTreeMap<String, u64>>,
    /// Per-port device counters.
    pub ports: Vec<PortReport>,
    /// Neighbours learned so far.
    pub neighbors: Vec<NeighborReport>,
    /// The load balancer, when configured.
    pub lb: Option<LbReport>,
    /// Mbufs free / total per mempool.
    pub mempools: Vec<(String, u32, u32)>,
    /// Route announcement, when `[bgp]` is configured.
    #[serde(default)]
    pub bgp: Option<BgpReport>,
    /// Cluster state sync, when `[cluster]` is configured.
    #[serde(default)]
    pub cluster: Option<ClusterReport>,
}

impl Report {
    /// Human-readable summary: non-zero counters only.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "qsplice counters after {:.1} s", self.uptime_s);
        for (k, v) in &self.total {
            if *v != 0 {
                let _ = writeln!(s, "  {k:<28} {v}");
            }
        }
        for p in &self.ports {
            let _ = writeln!(
                s,
                "  port {:<8} {} mac {} rx {} tx {} missed {} rx_err {} tx_err {} nombuf {}",
                p.name,
                p.device,
                p.mac,
                p.ipackets,
                p.opackets,
                p.imissed,
                p.ierrors,
                p.oerrors,
                p.rx_nombuf
            );
        }
        for n in &self.neighbors {
            let _ = writeln!(s, "  neighbor {} {} is-at {}", n.port, n.ip, n.mac);
        }
        if let Some(lb) = &self.lb {
            for (k, v) in &lb.total {
                if *v != 0 {
                    let _ = writeln!(s, "  lb.{k:<25} {v}");
                }
            }
            for v in &lb.vips {
                let t = |k: &str| v.total.get(k).copied().unwrap_or(0);
                let _ = writeln!(
                    s,
                    "  vip {} {}: active {} opened {} spliced {} failed {} reset {} bytes c2s {} s2c {}",
                    v.name,
                    v.address,
                    t("active"),
                    t("opened"),
                    t("spliced"),
                    t("failed"),
                    t("reset"),
                    t("c2s_bytes"),
                    t("s2c_bytes")
                );
                if let Some(tl) = &v.tls {
                    let list = |l: &[(String, u64)]| {
                        l.iter()
                            .map(|(k, n)| format!("{k}={n}"))
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    let _ = writeln!(
                        s,
                        "    tls: handshakes {} (post-quantum {}, resumed {}, hrr {}, tls1.3 {}, tls1.2 {}) groups [{}] suites [{}] failures [{}] close_notify {} bytes in {} out {}",
                        tl.handshakes,
                        tl.post_quantum,
                        tl.resumed,
                        tl.hello_retries,
                        tl.tls13,
                        tl.tls12,
                        list(&tl.groups),
                        list(&tl.suites),
                        list(&tl.failures),
                        tl.close_notify,
                        tl.bytes_in,
                        tl.bytes_out
                    );
                }
                for b in &v.backends {
                    let _ = writeln!(
                        s,
                        "    backend {:<21} {:<8} {:<9} active {} opened {} failed {} checks {}{}",
                        b.address,
                        b.admin,
                        if b.healthy { "healthy" } else { "unhealthy" },
                        b.active,
                        b.opened,
                        b.failed,
                        b.checks,
                        if b.last_error.is_empty() {
                            String::new()
                        } else {
                            format!(" last_error {}", b.last_error)
                        }
                    );
                }
            }
        }
        for (name, free, size) in &self.mempools {
            let _ = writeln!(s, "  mempool {name}: {free}/{size} free");
        }
        if let Some(g) = &self.bgp {
            let _ = writeln!(
                s,
                "  bgp: announced [{}]{}",
                g.announced.join(", "),
                if g.serving {
                    String::new()
                } else {
                    format!(" — not serving: {}", g.reason)
                }
            );
        }
        s
    }
}

/// Sessions shown per session-aware VIP in the report.
pub const TABLE_DUMP_ROWS: usize = 16;

/// One session of the server mapping table in the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionRowReport {
    /// The session key (keyed hash of its identity), hex.
    pub key: String,
    /// `backend address`, `ms` (appliance clock when it last finished
    /// serving the session), `state` (`idle` or `busy(n)`) per row.
    pub rows: Vec<(String, u64, String)>,
}

/// One backend in the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackendReport {
    /// `address:port`.
    pub address: String,
    /// `up`, `down` or `draining` (configured), or `removed` (removed
    /// while running, connections still draining; listed until they end).
    pub admin: String,
    /// Scheduler weight.
    #[serde(default)]
    pub weight: u32,
    /// Connection limit (0: none).
    #[serde(default)]
    pub max_conns: u32,
    /// Passing health checks (or checks disabled).
    pub healthy: bool,
    /// Health checks run.
    pub checks: u64,
    /// Why the last failed check failed.
    pub last_error: String,
    /// Connections now spliced to it.
    pub active: u64,
    /// Connections opened to it.
    pub opened: u64,
    /// Connections to it that failed.
    pub failed: u64,
    /// Spliced connections ended by a RST.
    pub reset: u64,
    /// Connections that reached the spliced state.
    pub spliced: u64,
    /// Client → backend segments and payload bytes.
    pub c2s_packets: u64,
    /// See `c2s_packets`.
    pub c2s_bytes: u64,
    /// Backend → client segments and payload bytes.
    pub s2c_packets: u64,
    /// See `s2c_packets`.
    pub s2c_bytes: u64,
    /// Session-aware VIPs: full TLS handshakes it made (new sessions).
    pub tls_new: u64,
    /// Session-aware VIPs: TLS handshakes it resumed.
    pub tls_resumed: u64,
}

/// One VIP in the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VipReport {
    /// Name.
    pub name: String,
    /// `address:port`.
    pub address: String,
    /// Sums over the VIP's backends: connections opened / active / failed /
    /// reset, segments and bytes each way.
    pub total: BTreeMap<String, u64>,
    /// Its pool.
    pub backends: Vec<BackendReport>,
    /// Removed while running: new connections are refused, the listed
    /// established ones drain (the VIP is listed until they end).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
    /// Scheduling policy (the config's name for it).
    #[serde(default)]
    pub policy: String,
    /// The server mapping table (session-aware VIPs only): sessions held,
    /// rows learned / expired / replaced, keys evicted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<BTreeMap<String, u64>>,
    /// The table's newest rows (session-aware VIPs only): up to
    /// [`TABLE_DUMP_ROWS`] sessions, most recently used first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_rows: Option<Vec<SessionRowReport>>,
    /// TLS termination counters (terminated VIPs only): negotiated groups
    /// (the share of post-quantum handshakes), suites, versions,
    /// resumptions, failures by reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsReport>,
    /// Terminated VIPs: the certificates served (after the last reload).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertReport>,
    /// Terminated VIPs with tickets: the ticket keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tickets: Option<TicketReport>,
}

/// A served certificate.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CertReport {
    /// Names it is configured for (empty: the default certificate).
    pub names: Vec<String>,
    /// The leaf's subject.
    pub subject: String,
    /// The leaf's notAfter, Unix seconds.
    pub not_after: i64,
}

/// A terminated VIP's ticket keys.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TicketReport {
    /// Rotations since start.
    pub rotations: u64,
    /// Age of the current key, s.
    pub key_age_s: u64,
    /// Rotation interval, s.
    pub rotation_s: u64,
    /// Tickets issued / accepted / rejected.
    pub issued: u64,
    /// See `issued`.
    pub accepted: u64,
    /// See `issued`.
    pub rejected: u64,
}

/// One latency histogram (summed over lcores).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HistReport {
    /// Upper bounds of the buckets, µs; `counts` has one more (`+Inf`).
    pub bounds_us: Vec<u64>,
    /// Observations per bucket (not cumulative).
    pub counts: Vec<u64>,
    /// Sum of the observations, µs.
    pub sum_us: u64,
}

/// The balancer's part of the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LbReport {
    /// Latency histograms by name: `setup` (client SYN → spliced),
    /// `backend_connect`, `tls_handshake`, `flow_duration`.
    #[serde(default)]
    pub histograms: BTreeMap<String, HistReport>,
    /// Counters summed over lcores.
    pub total: BTreeMap<String, u64>,
    /// Per-lcore counters.
    pub per_core: Vec<BTreeMap<String, u64>>,
    /// Session-aware dispatch (when a VIP uses it): how stale the lcores'
    /// view of the table got — events applied, publications,
    /// `view_lag_max_us` / `view_lag_avg_us` (lcore event → published
    /// snapshot), snapshot build time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_view: Option<BTreeMap<String, u64>>,
    /// VIPs and backends.
    pub vips: Vec<VipReport>,
}
