//! Aggregated counters as the control thread sees them, rendered as text
//! for operators and as JSON for tests and tooling.

use std::collections::BTreeMap;

use qsplice_engine::Counters;
use serde::Serialize;

/// One port's view: device counters plus identity.
#[derive(Clone, Debug, Serialize)]
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
#[derive(Clone, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct NeighborReport {
    /// Port name.
    pub port: String,
    /// Neighbour address.
    pub ip: String,
    /// Its MAC.
    pub mac: String,
}

/// Everything `qsplice run` reports.
#[derive(Clone, Debug, Serialize)]
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
    pub lb: Option<crate::lb::LbReport>,
    /// Mbufs free / total per mempool.
    pub mempools: Vec<(String, u32, u32)>,
}

/// Counters as a name → value map.
pub fn counter_map(c: &Counters) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    c.for_each(|k, v| {
        m.insert(k.to_string(), v);
    });
    m
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
        s
    }
}
