//! `[cluster]`: start the Redis sync of the state the nodes share (today:
//! TLS ticket keys, `qsplice-cluster`) and report it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use qsplice_cluster::{ClusterSync, RowMsg, SyncConf, VipShare};
use qsplice_config::ClusterConf;
use qsplice_mgmt::report::ClusterReport;

/// This node's default name: host name and PID.
fn default_node() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "node".into());
    format!("{host}-{}", std::process::id())
}

pub(crate) fn start(c: &ClusterConf) -> Result<ClusterSync> {
    let node = if c.node.is_empty() {
        default_node()
    } else {
        c.node.clone()
    };
    tracing::info!(redis = %c.redis, cluster = %c.name, %node, "cluster: sharing TLS ticket keys and sessions through Redis");
    ClusterSync::spawn(SyncConf {
        redis_url: c.redis.clone(),
        prefix: c.name.clone(),
        node,
        interval: Duration::from_millis(c.sync_interval_ms),
        timeout: Duration::from_millis(c.timeout_ms),
    })
    .context("starting the cluster sync thread")
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

pub(crate) fn report(s: &ClusterSync) -> ClusterReport {
    let st = &s.stats;
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
    }
}
