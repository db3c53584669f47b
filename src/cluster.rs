//! `[cluster]`: start the Redis sync of the state the nodes share (today:
//! TLS ticket keys, `qsplice-cluster`) and report it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use std::sync::Arc;

use qsplice_cluster::flows::{FlowConf, FlowStats, FlowSync};
use qsplice_cluster::{ClusterSync, RowMsg, SyncConf, VipShare};
use qsplice_config::ClusterConf;
use qsplice_lb::FlowSyncShared;
use qsplice_mgmt::report::{ClusterReport, FlowSyncReport};

/// This node's default name: host name and PID.
fn default_node() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "node".into());
    format!("{host}-{}", std::process::id())
}

/// The cluster's threads: the state sync (tickets, sessions, rows) and
/// the flow sync (`cluster.flow_sync`).
pub(crate) struct Cluster {
    pub(crate) sync: ClusterSync,
    pub(crate) flows: Option<FlowSync>,
    shared: Option<Arc<FlowSyncShared>>,
}

impl Cluster {
    /// The node is leaving after its dataplane stopped: the flow sync
    /// deletes its alive key so a survivor takes the address over at once.
    pub(crate) fn leave(self) {
        if let Some(f) = self.flows {
            f.leave();
        }
    }
}

pub(crate) fn start(
    c: &ClusterConf,
    flows: Option<Arc<FlowSyncShared>>,
    lb: &crate::lb::LbRuntime,
) -> Result<Cluster> {
    let node = if c.node.is_empty() {
        default_node()
    } else {
        c.node.clone()
    };
    tracing::info!(redis = %c.redis, cluster = %c.name, %node, flow_sync = c.flow_sync, "cluster: sharing TLS ticket keys, sessions and flows through Redis");
    let interval = Duration::from_millis(c.sync_interval_ms);
    let timeout = Duration::from_millis(c.timeout_ms);
    let sync = ClusterSync::spawn(SyncConf {
        redis_url: c.redis.clone(),
        prefix: c.name.clone(),
        node: node.clone(),
        interval,
        timeout,
    })
    .context("starting the cluster sync thread")?;
    let fshared = flows.clone();
    let flows = match flows {
        Some(shared) => {
            let (local, sport_min, lcores) = lb.backend_side();
            Some(
                FlowSync::spawn(
                    FlowConf {
                        redis_url: c.redis.clone(),
                        prefix: c.name.clone(),
                        node,
                        interval,
                        timeout,
                        ttl: Duration::from_secs(c.flow_ttl_s),
                        addrs: vec![local],
                        sport_min,
                        lcores,
                    },
                    shared,
                )
                .context("starting the cluster flow-sync thread")?,
            )
        }
        None => None,
    };
    Ok(Cluster {
        sync,
        flows,
        shared: fshared,
    })
}

/// Hand the sync thread the terminated VIPs' state as the balancer holds
/// it now (a reload may have replaced a VIP's keys or cache).
pub(crate) fn publish(s: &ClusterSync, lb: &crate::lb::LbRuntime) {
    s.set_vips(
        lb.tls_state()
            .into_iter()
            .map(|(vip, tickets, cache)| VipShare {
                vip,
                tickets,
                cache,
            })
            .collect(),
    );
}

/// Exchange server-mapping-table rows: what this node learned goes out,
/// what the others learned is learned here (control thread, every loop).
pub(crate) fn exchange_rows(s: &ClusterSync, lb: &mut crate::lb::LbRuntime) {
    let out = lb.take_rows();
    if !out.is_empty() {
        s.send_rows(out.into_iter().map(|r| RowMsg {
            vip: r.vip.to_string(),
            key: r.key,
            backend: r.backend.to_string(),
        }));
    }
    let now = std::time::Instant::now();
    for r in s.received_rows() {
        if let (Ok(vip), Ok(backend)) = (r.vip.parse(), r.backend.parse()) {
            lb.import_row(
                &qsplice_balancer::SharedRow {
                    vip,
                    key: r.key,
                    backend,
                },
                now,
            );
        }
    }
}

pub(crate) fn report(c: &Cluster) -> ClusterReport {
    let st = &c.sync.stats;
    ClusterReport {
        connected: st.connected.load(Ordering::Relaxed),
        rounds: st.rounds.load(Ordering::Relaxed),
        errors: st.errors.load(Ordering::Relaxed),
        rotations_led: st.rotations_led.load(Ordering::Relaxed),
        installs: st.installs.load(Ordering::Relaxed),
        sessions_out: st.sessions_out.load(Ordering::Relaxed),
        sessions_in: st.sessions_in.load(Ordering::Relaxed),
        rows_out: st.rows_out.load(Ordering::Relaxed),
        rows_in: st.rows_in.load(Ordering::Relaxed),
        rows_dropped: st.rows_dropped.load(Ordering::Relaxed),
        last_error: st.last_error.lock().map(|e| e.clone()).unwrap_or_default(),
        flows: c
            .flows
            .as_ref()
            .map(|f| flows_report(&f.stats, claimed_of(c))),
    }
}

fn claimed_of(c: &Cluster) -> Vec<String> {
    c.shared
        .as_ref()
        .map(|s| s.claims.list().iter().map(|a| a.to_string()).collect())
        .unwrap_or_default()
}

fn flows_report(f: &FlowStats, claimed: Vec<String>) -> FlowSyncReport {
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    FlowSyncReport {
        connected: f.connected.load(Ordering::Relaxed),
        published: g(&f.published),
        dropped: g(&f.dropped),
        backlog: g(&f.backlog),
        found: g(&f.found),
        not_found: g(&f.not_found),
        unavailable: g(&f.unavailable),
        loaded: g(&f.loaded),
        load_dropped: g(&f.load_dropped),
        claimed,
        takeovers: g(&f.takeovers),
        peers_dead: g(&f.peers_dead),
        redis_ops: g(&f.redis_ops),
        errors: g(&f.errors),
        last_error: f.last_error.lock().map(|e| e.clone()).unwrap_or_default(),
    }
}
