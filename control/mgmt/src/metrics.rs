//! `GET /metrics`: the report as Prometheus metrics.
//!
//! The lcores already publish their counters (relaxed atomics the control
//! thread snapshots for the report); a scrape only reads that report, so it
//! never touches the hot path. Each scrape builds a fresh
//! [`prometheus_client`] registry from the report and encodes it as the
//! Prometheus text format (0.0.4) or, when the scraper asks for it with
//! `Accept: application/openmetrics-text`, as OpenMetrics 1.0.
//!
//! Names follow Prometheus conventions: `qsplice_` prefix, base units
//! (`_bytes`, `_seconds`), counters end in `_total` (added by the encoder),
//! one metric per meaning with labels for the dimensions (`lcore`, `vip`,
//! `backend`, `port`, `reason`, `group`, `version`, `direction`, ...).
//! docs/operations.md lists them.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{prometheus_text, text, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::report::Report;

/// Content type of the Prometheus text format.
pub const PROMETHEUS_CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;
/// Content type of OpenMetrics text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Counters of the balancer that are gauges (everything else in its
/// counter set only grows).
pub const LB_GAUGES: [&str; 5] = [
    "flows_active",
    "flows_adopted",
    "flows_connecting",
    "syn_cache_active",
    "tls_active",
];

/// Session-table statistics that are gauges.
const SESSION_GAUGES: [&str; 2] = ["sessions", "memory_bytes"];

type Labels = Vec<(String, String)>;

fn l<const N: usize>(pairs: [(&str, &str); N]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// Histograms whose buckets were counted elsewhere (by the lcores):
/// encoded as they are, one series per label set.
#[derive(Debug, Default)]
struct ConstHistograms(Vec<ConstHistogram>);

/// One series: labels, sum (s), count, `(upper bound, count)` per bucket.
type ConstHistogram = (Labels, f64, u64, Vec<(f64, u64)>);

impl EncodeMetric for ConstHistograms {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, sum, count, buckets) in &self.0 {
            encoder
                .encode_family(labels)?
                .encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The report's histograms: name in the report → metric name and help.
const HISTOGRAMS: [(&str, &str, &str); 4] = [
    (
        "setup",
        "qsplice_connection_setup_seconds",
        "Client connection setup on spliced VIPs: client SYN to flow spliced (backend connected).",
    ),
    (
        "backend_connect",
        "qsplice_backend_connect_seconds",
        "Backend connect time: our SYN to the backend's SYN-ACK.",
    ),
    (
        "tls_handshake",
        "qsplice_tls_handshake_seconds",
        "TLS handshake time on terminated VIPs: TCP connection established to TLS handshake complete.",
    ),
    (
        "flow_duration",
        "qsplice_flow_duration_seconds",
        "Spliced flow duration: client SYN to the flow closed (FINs acknowledged or RST).",
    ),
];

/// Collects samples per metric name, then registers each family once.
#[derive(Default)]
struct Builder {
    hists: BTreeMap<String, (String, ConstHistograms)>,
    counters: BTreeMap<String, (String, Vec<(Labels, u64)>)>,
    gauges: BTreeMap<String, (String, Vec<(Labels, i64)>)>,
    fgauges: BTreeMap<String, (String, Vec<(Labels, f64)>)>,
}

impl Builder {
    fn counter(&mut self, name: &str, help: &str, labels: Labels, v: u64) {
        self.counters
            .entry(name.to_string())
            .or_insert_with(|| (help.to_string(), Vec::new()))
            .1
            .push((labels, v));
    }

    fn gauge(&mut self, name: &str, help: &str, labels: Labels, v: i64) {
        self.gauges
            .entry(name.to_string())
            .or_insert_with(|| (help.to_string(), Vec::new()))
            .1
            .push((labels, v));
    }

    fn fgauge(&mut self, name: &str, help: &str, labels: Labels, v: f64) {
        self.fgauges
            .entry(name.to_string())
            .or_insert_with(|| (help.to_string(), Vec::new()))
            .1
            .push((labels, v));
    }

    fn histogram(&mut self, name: &str, help: &str, labels: Labels, h: &crate::report::HistReport) {
        let mut buckets: Vec<(f64, u64)> = h
            .bounds_us
            .iter()
            .zip(&h.counts)
            .map(|(b, c)| (*b as f64 / 1e6, *c))
            .collect();
        if h.counts.len() == h.bounds_us.len() + 1 {
            buckets.push((f64::INFINITY, h.counts[h.bounds_us.len()]));
        }
        let count = h.counts.iter().sum();
        self.hists
            .entry(name.to_string())
            .or_insert_with(|| (help.to_string(), ConstHistograms::default()))
            .1
             .0
            .push((labels, h.sum_us as f64 / 1e6, count, buckets));
    }

    fn registry(self) -> Registry {
        let mut reg = Registry::default();
        for (name, (help, h)) in self.hists {
            reg.register(name, help, h);
        }
        for (name, (help, samples)) in self.counters {
            let fam = Family::<Labels, Counter>::default();
            for (labels, v) in samples {
                fam.get_or_create(&labels).inc_by(v);
            }
            reg.register(name, help, fam);
        }
        for (name, (help, samples)) in self.gauges {
            let fam = Family::<Labels, Gauge>::default();
            for (labels, v) in samples {
                fam.get_or_create(&labels).set(v);
            }
            reg.register(name, help, fam);
        }
        for (name, (help, samples)) in self.fgauges {
            let fam = Family::<Labels, Gauge<f64, AtomicU64>>::default();
            for (labels, v) in samples {
                fam.get_or_create(&labels).set(v);
            }
            reg.register(name, help, fam);
        }
        reg
    }
}

fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Help text of a balancer counter (the report's names are the keys).
fn lb_help(name: &str) -> String {
    format!("Load balancer counter `{name}` per lcore (docs/operations.md).")
}

/// Build the metrics of `r`.
fn build(r: &Report) -> Registry {
    let mut b = Builder::default();
    b.gauge(
        "qsplice_build_info",
        "Always 1; the version label is the running build.",
        l([("version", env!("CARGO_PKG_VERSION"))]),
        1,
    );
    b.fgauge(
        "qsplice_uptime_seconds",
        "Seconds since the workers started.",
        Labels::new(),
        r.uptime_s,
    );
    // Engine counters per lcore; drops by reason.
    for (i, core) in r.per_core.iter().enumerate() {
        let lc = i.to_string();
        for (k, v) in core {
            if let Some(reason) = k.strip_prefix("drop_") {
                b.counter(
                    "qsplice_drops",
                    "Frames dropped, by layer and reason.",
                    l([("lcore", &lc), ("layer", "engine"), ("reason", reason)]),
                    *v,
                );
            } else {
                b.counter(
                    &format!("qsplice_engine_{k}"),
                    &format!("Engine counter `{k}` per lcore."),
                    l([("lcore", &lc)]),
                    *v,
                );
            }
        }
    }
    for p in &r.ports {
        let port = p.name.as_str();
        for (dir, v) in [("rx", p.ipackets), ("tx", p.opackets)] {
            b.counter(
                "qsplice_port_packets",
                "Packets the device received / sent.",
                l([("port", port), ("direction", dir)]),
                v,
            );
        }
        for (dir, v) in [("rx", p.ierrors), ("tx", p.oerrors)] {
            b.counter(
                "qsplice_port_errors",
                "Device errors.",
                l([("port", port), ("direction", dir)]),
                v,
            );
        }
        b.counter(
            "qsplice_port_rx_missed",
            "Frames the device dropped because its rx queues were full.",
            l([("port", port)]),
            p.imissed,
        );
        b.counter(
            "qsplice_port_rx_nombuf",
            "Rx mbuf allocation failures.",
            l([("port", port)]),
            p.rx_nombuf,
        );
    }
    for (name, free, size) in &r.mempools {
        b.gauge(
            "qsplice_mempool_free_mbufs",
            "Free mbufs in a mempool.",
            l([("pool", name)]),
            i64::from(*free),
        );
        b.gauge(
            "qsplice_mempool_size_mbufs",
            "Mbufs in a mempool.",
            l([("pool", name)]),
            i64::from(*size),
        );
    }
    if let Some(lb) = &r.lb {
        lb_metrics(&mut b, lb);
    }
    if let Some(g) = &r.bgp {
        b.gauge(
            "qsplice_bgp_serving",
            "1 while this node can serve (ports up, workers polling, not draining).",
            l([]),
            i64::from(g.serving),
        );
        for v in &g.announced {
            b.gauge(
                "qsplice_bgp_announced",
                "1 for each VIP address the BGP speaker announces now.",
                l([("vip", v)]),
                1,
            );
        }
        b.counter(
            "qsplice_bgp_updates",
            "Announcement changes the BGP speaker accepted.",
            l([]),
            g.updates,
        );
        b.counter(
            "qsplice_bgp_failures",
            "Failed attempts to update the BGP speaker (retried).",
            l([]),
            g.failures,
        );
    }
    if let Some(c) = &r.cluster {
        b.gauge(
            "qsplice_cluster_connected",
            "1 while the cluster store (Redis) is reachable.",
            l([]),
            i64::from(c.connected),
        );
        b.counter(
            "qsplice_cluster_sync_errors",
            "Cluster sync rounds that failed (Redis away, timeout).",
            l([]),
            c.errors,
        );
        b.counter(
            "qsplice_cluster_ticket_rotations_led",
            "Ticket-key rotations this node performed for the cluster.",
            l([]),
            c.rotations_led,
        );
        if let Some(f) = &c.flows {
            b.gauge(
                "qsplice_cluster_flows_connected",
                "1 while the flow sync reaches Redis.",
                l([]),
                i64::from(f.connected),
            );
            for (name, help, v) in [
                ("published", "Flow records written to Redis.", f.published),
                (
                    "dropped",
                    "Flow records lost to a full queue toward Redis.",
                    f.dropped,
                ),
                ("found", "Flow lookups that found a record.", f.found),
                (
                    "not_found",
                    "Flow lookups no node had a record for.",
                    f.not_found,
                ),
                (
                    "unavailable",
                    "Flow lookups Redis could not answer.",
                    f.unavailable,
                ),
                (
                    "loaded",
                    "Flows installed from dead nodes' records.",
                    f.loaded,
                ),
                (
                    "takeovers",
                    "Dead nodes' backend-side addresses taken over.",
                    f.takeovers,
                ),
                (
                    "redis_ops",
                    "Redis commands the flow sync sent.",
                    f.redis_ops,
                ),
                ("errors", "Flow sync rounds that failed.", f.errors),
            ] {
                b.counter(&format!("qsplice_cluster_flows_{name}"), help, l([]), v);
            }
            b.gauge(
                "qsplice_cluster_flows_backlog",
                "Flow records waiting for Redis.",
                l([]),
                gauge_value(f.backlog),
            );
            b.gauge(
                "qsplice_cluster_claimed_addresses",
                "Backend-side addresses of dead nodes this node serves now.",
                l([]),
                gauge_value(f.claimed.len() as u64),
            );
        }
    }
    b.registry()
}

fn lb_metrics(b: &mut Builder, lb: &crate::report::LbReport) {
    for (key, name, help) in HISTOGRAMS {
        if let Some(h) = lb.histograms.get(key) {
            b.histogram(name, help, Labels::new(), h);
        }
    }
    for (i, core) in lb.per_core.iter().enumerate() {
        let lc = i.to_string();
        for (k, v) in core {
            if let Some(reason) = k.strip_prefix("drop_") {
                b.counter(
                    "qsplice_drops",
                    "Frames dropped, by layer and reason.",
                    l([("lcore", &lc), ("layer", "lb"), ("reason", reason)]),
                    *v,
                );
            } else if LB_GAUGES.contains(&k.as_str()) {
                b.gauge(
                    &format!("qsplice_lb_{k}"),
                    &lb_help(k),
                    l([("lcore", &lc)]),
                    gauge_value(*v),
                );
            } else {
                b.counter(
                    &format!("qsplice_lb_{k}"),
                    &lb_help(k),
                    l([("lcore", &lc)]),
                    *v,
                );
            }
        }
    }
    if let Some(view) = &lb.session_view {
        for (k, v) in view {
            // Prometheus names spell units out (`promtool check metrics`).
            let k = match k.strip_suffix("_us") {
                Some(base) => format!("{base}_microseconds"),
                None => k.clone(),
            };
            b.gauge(
                &format!("qsplice_session_view_{k}"),
                &format!("Session-aware dispatch: the lcores' view of the table, `{k}`."),
                Labels::new(),
                gauge_value(*v),
            );
        }
    }
    for v in &lb.vips {
        let vip = v.name.as_str();
        b.gauge(
            "qsplice_vip_info",
            "1 per VIP: its address, scheduling policy and state (serving, or removed and draining).",
            l([
                ("vip", vip),
                ("address", v.address.as_str()),
                ("policy", v.policy.as_str()),
                ("state", if v.removed { "removed" } else { "serving" }),
            ]),
            1,
        );
        for bk in &v.backends {
            let be = bk.address.as_str();
            let lab = || l([("vip", vip), ("backend", be)]);
            b.gauge(
                "qsplice_backend_up",
                "1 while the backend passes its health checks (or checks are off).",
                lab(),
                i64::from(bk.healthy),
            );
            for st in ["up", "down", "draining", "removed"] {
                b.gauge(
                    "qsplice_backend_admin_state",
                    "1 for the backend's administrative state.",
                    l([("vip", vip), ("backend", be), ("state", st)]),
                    i64::from(bk.admin == st),
                );
            }
            b.gauge(
                "qsplice_backend_weight",
                "Scheduler weight.",
                lab(),
                i64::from(bk.weight),
            );
            b.gauge(
                "qsplice_backend_active_connections",
                "Connections now open to the backend.",
                lab(),
                gauge_value(bk.active),
            );
            b.counter(
                "qsplice_backend_connections_opened",
                "Connections opened to the backend.",
                lab(),
                bk.opened,
            );
            b.counter(
                "qsplice_backend_connections_failed",
                "Connections to the backend that failed (refused, timed out).",
                lab(),
                bk.failed,
            );
            b.counter(
                "qsplice_backend_connections_spliced",
                "Connections that reached the spliced (established) state.",
                lab(),
                bk.spliced,
            );
            b.counter(
                "qsplice_backend_connections_reset",
                "Established connections ended by a RST.",
                lab(),
                bk.reset,
            );
            b.counter(
                "qsplice_backend_health_checks",
                "Health checks run.",
                lab(),
                bk.checks,
            );
            for (dir, p, by) in [
                ("c2s", bk.c2s_packets, bk.c2s_bytes),
                ("s2c", bk.s2c_packets, bk.s2c_bytes),
            ] {
                let dl = || l([("vip", vip), ("backend", be), ("direction", dir)]);
                b.counter(
                    "qsplice_backend_packets",
                    "Segments relayed, client to server (c2s) or back (s2c).",
                    dl(),
                    p,
                );
                b.counter(
                    "qsplice_backend_bytes",
                    "Payload bytes relayed, client to server (c2s) or back (s2c).",
                    dl(),
                    by,
                );
            }
            if v.sessions.is_some() {
                for (kind, n) in [("new", bk.tls_new), ("resumed", bk.tls_resumed)] {
                    b.counter(
                        "qsplice_backend_tls_sessions",
                        "Session-aware VIPs: TLS handshakes the backend made, new or resumed.",
                        l([("vip", vip), ("backend", be), ("kind", kind)]),
                        n,
                    );
                }
            }
        }
        if let Some(s) = &v.sessions {
            for (k, n) in s {
                if SESSION_GAUGES.contains(&k.as_str()) {
                    b.gauge(
                        &format!("qsplice_session_table_{k}"),
                        &format!("Session-aware dispatch: the server mapping table, `{k}`."),
                        l([("vip", vip)]),
                        gauge_value(*n),
                    );
                } else {
                    b.counter(
                        &format!("qsplice_session_table_{k}"),
                        &format!("Session-aware dispatch: the server mapping table, rows `{k}`."),
                        l([("vip", vip)]),
                        *n,
                    );
                }
            }
        }
        for c in &v.certificates {
            b.gauge(
                "qsplice_tls_certificate_expiry_timestamp_seconds",
                "notAfter of a served certificate (Unix time): alert on it minus time().",
                l([
                    ("vip", vip),
                    ("subject", &c.subject),
                    ("names", &c.names.join(",")),
                ]),
                c.not_after,
            );
        }
        if let Some(k) = &v.tickets {
            let vl = || l([("vip", vip)]);
            b.gauge(
                "qsplice_tls_ticket_key_age_seconds",
                "Age of the current TLS ticket key.",
                vl(),
                gauge_value(k.key_age_s),
            );
            b.counter(
                "qsplice_tls_ticket_rotations",
                "TLS ticket key rotations.",
                vl(),
                k.rotations,
            );
        }
        if let Some(t) = &v.tls {
            let vl = || l([("vip", vip)]);
            b.counter(
                "qsplice_tls_connections",
                "TLS connections accepted.",
                vl(),
                t.connections,
            );
            b.counter(
                "qsplice_tls_resumed",
                "TLS handshakes that resumed a session.",
                vl(),
                t.resumed,
            );
            b.counter(
                "qsplice_tls_hello_retries",
                "TLS handshakes that needed a HelloRetryRequest.",
                vl(),
                t.hello_retries,
            );
            b.counter(
                "qsplice_tls_post_quantum_handshakes",
                "TLS handshakes with a post-quantum (hybrid) key exchange.",
                vl(),
                t.post_quantum,
            );
            b.counter(
                "qsplice_tls_close_notify",
                "close_notify alerts received.",
                vl(),
                t.close_notify,
            );
            for (version, n) in [("1.3", t.tls13), ("1.2", t.tls12)] {
                b.counter(
                    "qsplice_tls_handshakes_by_version",
                    "Completed TLS handshakes by protocol version.",
                    l([("vip", vip), ("version", version)]),
                    n,
                );
            }
            for (g, n) in &t.groups {
                b.counter(
                    "qsplice_tls_handshakes",
                    "Completed TLS handshakes by key-exchange group.",
                    l([("vip", vip), ("group", g)]),
                    *n,
                );
            }
            for (s, n) in &t.suites {
                b.counter(
                    "qsplice_tls_handshakes_by_suite",
                    "Completed TLS handshakes by cipher suite.",
                    l([("vip", vip), ("suite", s)]),
                    *n,
                );
            }
            for (f, n) in &t.failures {
                b.counter(
                    "qsplice_tls_failures",
                    "TLS connections that failed, by reason.",
                    l([("vip", vip), ("reason", f)]),
                    *n,
                );
            }
            for (dir, n) in [("in", t.bytes_in), ("out", t.bytes_out)] {
                b.counter(
                    "qsplice_tls_bytes",
                    "Plaintext bytes through the TLS terminator, from clients (in) or to them (out).",
                    l([("vip", vip), ("direction", dir)]),
                    n,
                );
            }
        }
    }
}

/// Does an `Accept` header ask for OpenMetrics?
pub fn wants_openmetrics(accept: &str) -> bool {
    accept
        .split(',')
        .any(|m| m.trim().starts_with("application/openmetrics-text"))
}

/// The report `r` as an exposition: `(body, content type)`.
pub fn render(r: &Report, openmetrics: bool) -> (String, &'static str) {
    let reg = build(r);
    let mut out = String::new();
    if openmetrics {
        // Writing into a String cannot fail.
        let _ = text::encode(&mut out, &reg);
        (out, OPENMETRICS_CONTENT_TYPE)
    } else {
        let _ = prometheus_text::encode(&mut out, &reg);
        (out, PROMETHEUS_CONTENT_TYPE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{BackendReport, LbReport, PortReport, VipReport};

    fn fixture() -> Report {
        let backend = |a: &str, healthy: bool, opened: u64| BackendReport {
            address: a.into(),
            admin: "draining".into(),
            weight: 3,
            max_conns: 0,
            healthy,
            checks: 7,
            last_error: String::new(),
            active: 2,
            opened,
            failed: 1,
            reset: 0,
            spliced: opened - 1,
            c2s_packets: 10,
            c2s_bytes: 1000,
            s2c_packets: 20,
            s2c_bytes: 2_000_000,
            tls_new: 0,
            tls_resumed: 0,
        };
        Report {
            uptime_s: 12.5,
            total: [
                ("rx_packets".to_string(), 30),
                ("drop_ip_checksum".to_string(), 4),
            ]
            .into(),
            per_core: vec![
                [
                    ("rx_packets".to_string(), 10),
                    ("drop_ip_checksum".to_string(), 1),
                ]
                .into(),
                [
                    ("rx_packets".to_string(), 20),
                    ("drop_ip_checksum".to_string(), 3),
                ]
                .into(),
            ],
            ports: vec![PortReport {
                name: "client".into(),
                device: "net_af_packet0".into(),
                mac: "02:00:00:00:00:01".into(),
                socket: Some(0),
                ipackets: 100,
                opackets: 90,
                imissed: 1,
                ierrors: 0,
                oerrors: 0,
                rx_nombuf: 0,
            }],
            neighbors: vec![],
            lb: Some(LbReport {
                total: [
                    ("conn_opened".to_string(), 5),
                    ("flows_active".to_string(), 2),
                ]
                .into(),
                per_core: vec![[
                    ("conn_opened".to_string(), 5),
                    ("flows_active".to_string(), 2),
                    ("drop_tcp_bad_checksum".to_string(), 9),
                ]
                .into()],
                session_view: None,
                histograms: [(
                    "setup".to_string(),
                    crate::report::HistReport {
                        bounds_us: vec![100, 1000],
                        counts: vec![1, 2, 3],
                        sum_us: 5_000_000,
                    },
                )]
                .into(),
                vips: vec![VipReport {
                    name: "web".into(),
                    address: "10.10.1.1:80".into(),
                    total: BTreeMap::new(),
                    backends: vec![
                        backend("10.10.2.11:80", true, 3),
                        backend("10.10.2.12:80", false, 2),
                    ],
                    removed: false,
                    policy: "round-robin".into(),
                    sessions: None,
                    session_rows: None,
                    tls: None,
                    certificates: vec![crate::report::CertReport {
                        names: vec!["vip.test".into()],
                        subject: "CN=vip.test".into(),
                        not_after: 1_800_000_000,
                    }],
                    tickets: None,
                }],
            }),
            mempools: vec![("mbuf_s0".into(), 8000, 8191)],
            bgp: Some(crate::report::BgpReport {
                announced: vec!["10.99.0.1".into()],
                wanted: vec!["10.99.0.1".into()],
                serving: true,
                reason: String::new(),
                updates: 3,
                failures: 1,
                last_error: String::new(),
            }),
            cluster: None,
        }
    }

    fn value(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(series).map(|v| v.trim().to_string()))
    }

    #[test]
    fn prometheus_text_carries_every_dimension() {
        let (t, ctype) = render(&fixture(), false);
        assert!(ctype.starts_with("text/plain; version=0.0.4"));
        assert!(!t.contains("# EOF"));
        for (series, want) in [
            ("qsplice_uptime_seconds ", "12.5"),
            ("qsplice_engine_rx_packets_total{lcore=\"1\"}", "20"),
            ("qsplice_drops_total{lcore=\"1\",layer=\"engine\",reason=\"ip_checksum\"}", "3"),
            ("qsplice_drops_total{lcore=\"0\",layer=\"lb\",reason=\"tcp_bad_checksum\"}", "9"),
            ("qsplice_lb_conn_opened_total{lcore=\"0\"}", "5"),
            ("qsplice_lb_flows_active{lcore=\"0\"}", "2"),
            ("qsplice_bgp_announced{vip=\"10.99.0.1\"}", "1"),
            ("qsplice_bgp_serving ", "1"),
            ("qsplice_bgp_failures_total ", "1"),
            ("qsplice_port_packets_total{port=\"client\",direction=\"rx\"}", "100"),
            ("qsplice_port_rx_missed_total{port=\"client\"}", "1"),
            ("qsplice_mempool_free_mbufs{pool=\"mbuf_s0\"}", "8000"),
            ("qsplice_backend_up{vip=\"web\",backend=\"10.10.2.12:80\"}", "0"),
            ("qsplice_backend_admin_state{vip=\"web\",backend=\"10.10.2.11:80\",state=\"draining\"}", "1"),
            ("qsplice_backend_admin_state{vip=\"web\",backend=\"10.10.2.11:80\",state=\"up\"}", "0"),
            ("qsplice_backend_weight{vip=\"web\",backend=\"10.10.2.11:80\"}", "3"),
            ("qsplice_backend_connections_opened_total{vip=\"web\",backend=\"10.10.2.11:80\"}", "3"),
            ("qsplice_backend_bytes_total{vip=\"web\",backend=\"10.10.2.12:80\",direction=\"s2c\"}", "2000000"),
            ("qsplice_tls_certificate_expiry_timestamp_seconds{vip=\"web\",subject=\"CN=vip.test\",names=\"vip.test\"}", "1800000000"),
        ] {
            assert_eq!(value(&t, series).as_deref(), Some(want), "{series}\n{t}");
        }
        assert!(t.contains("# TYPE qsplice_lb_flows_active gauge"));
        assert!(t.contains("# TYPE qsplice_connection_setup_seconds histogram"));
        for (series, want) in [
            (
                "qsplice_connection_setup_seconds_bucket{le=\"0.0001\"}",
                "1",
            ),
            ("qsplice_connection_setup_seconds_bucket{le=\"0.001\"}", "3"),
            ("qsplice_connection_setup_seconds_bucket{le=\"+Inf\"}", "6"),
            ("qsplice_connection_setup_seconds_count", "6"),
            ("qsplice_connection_setup_seconds_sum", "5.0"),
        ] {
            assert_eq!(value(&t, series).as_deref(), Some(want), "{series}\n{t}");
        }
        assert!(t.contains("# TYPE qsplice_lb_conn_opened_total counter"));
    }

    #[test]
    fn openmetrics_when_asked() {
        assert!(wants_openmetrics(
            "application/openmetrics-text; version=1.0.0,text/plain;q=0.5"
        ));
        assert!(!wants_openmetrics("text/plain"));
        let (t, ctype) = render(&fixture(), true);
        assert_eq!(ctype, OPENMETRICS_CONTENT_TYPE);
        assert!(t.ends_with("# EOF\n"));
        assert!(t.contains("qsplice_lb_conn_opened_total{lcore=\"0\"} 5"));
    }

    /// Every metric the shipped Grafana dashboard queries exists.
    #[test]
    fn grafana_dashboard_queries_existing_metrics() {
        let mut r = fixture();
        if let Some(lb) = r.lb.as_mut() {
            lb.per_core[0].extend(
                [
                    "syn_stateful",
                    "syn_cookies",
                    "syn_rate_limited",
                    "syn_cache_active",
                    "tls_active",
                ]
                .map(|k| (k.to_string(), 1)),
            );
            for k in ["setup", "backend_connect", "tls_handshake", "flow_duration"] {
                lb.histograms.insert(
                    k.to_string(),
                    crate::report::HistReport {
                        bounds_us: vec![100],
                        counts: vec![1, 1],
                        sum_us: 300,
                    },
                );
            }
            let v = &mut lb.vips[0];
            v.sessions = Some(
                [
                    "sessions",
                    "learned",
                    "expired",
                    "replaced",
                    "evicted",
                    "memory_bytes",
                ]
                .map(|k| (k.to_string(), 1))
                .into(),
            );
            v.tls = Some(crate::report::TlsReport {
                connections: 1,
                handshakes: 1,
                resumed: 1,
                hello_retries: 0,
                post_quantum: 1,
                tls13: 1,
                tls12: 0,
                groups: vec![("X25519MLKEM768".into(), 1)],
                suites: vec![("TLS13_AES_256_GCM_SHA384".into(), 1)],
                failures: vec![("alert".into(), 0)],
                close_notify: 1,
                bytes_in: 1,
                bytes_out: 1,
            });
        }
        let (t, _) = render(&r, false);
        let have: std::collections::BTreeSet<&str> = t
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let dash = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../conf/grafana/qsplice.json"
        ))
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&dash).unwrap();
        let mut queried = 0;
        for p in v["panels"].as_array().unwrap() {
            for tgt in p["targets"].as_array().unwrap() {
                let e = tgt["expr"].as_str().unwrap();
                for (i, _) in e.match_indices("qsplice_") {
                    let name: String = e[i..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    assert!(
                        have.contains(name.as_str()),
                        "{name} (panel {}) is not exported",
                        p["title"]
                    );
                    queried += 1;
                }
            }
        }
        assert!(queried >= 20, "{queried}");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut r = fixture();
        if let Some(lb) = r.lb.as_mut() {
            lb.vips[0].name = "we\"b\\\n".into();
        }
        let (t, _) = render(&r, false);
        assert!(t.contains("vip=\"we\\\"b\\\\\\n\""), "{t}");
    }
}
