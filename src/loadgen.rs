//! `qsplice loadgen`: HTTP/1.1 clients or a server on one port
//! (`[loadgen]`), over the appliance's own TCP (`qsplice-loadgen`), on
//! every worker lcore (each its share of the connections, segments steered
//! to the lcore owning them); live lines or a dashboard while it runs, a
//! final report (text, `--json`, `--plot`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use hdrhistogram::Histogram;
use qsplice_balancer::runtime::group_of;
use qsplice_config::{Config, LoadgenConf, LoadgenRole, ResponseMode};
use qsplice_dpdk::Mbuf;
use qsplice_dpdk::TscClock;
use qsplice_engine::{ControlLink, SharedCounters, Worker};
use qsplice_loadgen::{build_response, BodyFraming, ClientTls, Responses};
use qsplice_loadgen::{
    client_ports, ClientConf, Latencies, LoadgenBoth, LoadgenClient, LoadgenServer, LoadgenStats,
    ServerConf, SharedStats, Steering,
};
use qsplice_tls::certs::CertSpec;
use qsplice_tls::client::ServerName;
use qsplice_tls::client::{client_config, ClientSettings};
use qsplice_tls::{TlsContext, TlsSettings};
use serde::Serialize;

use crate::runtime::{boot, engine_conf, install_signal_handler, port_setups, relay_neighbours};

/// Command-line overrides and outputs.
#[derive(Clone, Debug, Default)]
pub struct LoadgenOpts {
    /// Connections in all (overrides `loadgen.connections`).
    pub connections: Option<u64>,
    /// Run at most this long (overrides `loadgen.timeout_s`).
    pub duration: Option<Duration>,
    /// Write the final report here as JSON.
    pub json: Option<PathBuf>,
    /// Write a PNG time series of rates and latencies here.
    pub plot: Option<PathBuf>,
    /// Plain lines even when stdout is a terminal.
    pub plain: bool,
}

/// A latency distribution, µs.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct LatencySummary {
    /// Observations.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Percentiles (HDR histogram, 3 significant digits).
    pub p50: u64,
    /// See `p50`.
    pub p90: u64,
    /// See `p50`.
    pub p99: u64,
    /// See `p50`.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl LatencySummary {
    fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// Client latencies, µs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LatencyReport {
    /// TCP established → TLS handshake complete (TLS only).
    pub tls_handshake: LatencySummary,
    /// SYN → handshake complete.
    pub connect: LatencySummary,
    /// Request sent → first response byte (time to first byte).
    pub first_byte: LatencySummary,
    /// Request sent → response read whole.
    pub response: LatencySummary,
    /// SYN sent → the connection's last response read whole (connect,
    /// TLS and every request of the connection).
    pub connection: LatencySummary,
}

/// One point of the time series (one live interval).
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    /// Seconds since the start (end of the interval).
    pub t_s: f64,
    /// Connections completed per second in the interval.
    pub connections_per_s: f64,
    /// Responses per second in the interval.
    pub requests_per_s: f64,
    /// TCP payload MB/s sent and received in the interval.
    pub tx_mb_per_s: f64,
    /// See `tx_mb_per_s`.
    pub rx_mb_per_s: f64,
    /// Client: response time percentiles of the interval, µs (0: none).
    pub response_p50_us: u64,
    /// See `response_p50_us`.
    pub response_p99_us: u64,
}

/// The final report.
#[derive(Clone, Debug, Serialize)]
pub struct LoadgenReport {
    /// `client`, `server` or `both` (then the fields are the client's and
    /// `server` the server side's).
    pub role: &'static str,
    /// Seconds it ran.
    pub elapsed_s: f64,
    /// It stopped at its timeout / duration (a client: before every
    /// connection ended).
    pub timed_out: bool,
    /// Connections opened (SYN sent / answered).
    pub opened: u64,
    /// Handshakes completed.
    pub connected: u64,
    /// Connections ended cleanly after all their requests.
    pub completed: u64,
    /// Connections that failed (each of the kinds below; server:
    /// handshakes never completed, connections reset).
    pub failed: u64,
    /// Client: refused (RST to the SYN).
    pub refused: u64,
    /// Client: timed out (retransmissions exhausted, or still open when
    /// the run ended).
    pub timed_out_conns: u64,
    /// Client: reset by the server.
    pub reset: u64,
    /// Client: closed by the server before every request was answered.
    pub closed_early: u64,
    /// Responses read (client) / requests answered (server).
    pub responses: u64,
    /// Client: responses with a 2xx status.
    pub status_2xx: u64,
    /// Client: responses that could not be read.
    pub bad_responses: u64,
    /// Client: response body bytes.
    pub body_bytes: u64,
    /// TCP payload bytes sent (retransmissions included) and received.
    pub tx_bytes: u64,
    /// See `tx_bytes`.
    pub rx_bytes: u64,
    /// `tx_bytes` / `rx_bytes` per second, in MB (10^6 bytes).
    pub tx_mb_per_s: f64,
    /// See `tx_mb_per_s`.
    pub rx_mb_per_s: f64,
    /// Memory an open connection holds at rest (nothing queued either
    /// way): its session record; TLS adds its record buffers and rustls'
    /// state.
    pub connection_record_bytes: u64,
    /// The TCP buffers (both ways) a connection takes from its lcore's
    /// pool only while bytes are queued, and gives back at rest.
    pub connection_buffer_bytes: u64,
    /// Completed connections per second.
    pub connections_per_s: f64,
    /// Responses per second.
    pub requests_per_s: f64,
    /// Client: the configured rate, connections/s (0: unpaced).
    pub rate_target: u64,
    /// Client with a rate: connections opened > 1 ms behind schedule.
    pub behind: u64,
    /// TLS: handshakes completed, of them resumed, post-quantum, TLS 1.3;
    /// connections whose TLS failed (client).
    pub tls_handshakes: u64,
    /// See `tls_handshakes`.
    pub tls_resumed: u64,
    /// See `tls_handshakes`.
    pub tls_pq: u64,
    /// See `tls_handshakes`.
    pub tls13: u64,
    /// See `tls_handshakes`.
    pub tls_failed: u64,
    /// Client: TLS failures by kind (alert received, incompatible,
    /// protocol, other — an untrusted certificate among them).
    pub tls_failures: std::collections::BTreeMap<&'static str, u64>,
    /// Client: latency distributions.
    pub latency_us: LatencyReport,
    /// Segments dropped (malformed, bad checksum, no session).
    pub segs_dropped: u64,
    /// Segments not sent (no mbuf, next hop unresolved).
    pub segs_unsent: u64,
    /// Worker lcores it ran on.
    pub lcores: usize,
    /// Several lcores: segments handed to the lcore owning their
    /// connection, and those dropped instead (its inbox full).
    pub steered: u64,
    /// See `steered`.
    pub steer_full: u64,
    /// One point per live interval (`engine.stats_interval_ms`).
    pub series: Vec<Sample>,
    /// Role `both`: the server side's counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerSide>,
}

/// The server side of a `both` run.
#[derive(Clone, Debug, Serialize)]
pub struct ServerSide {
    /// Handshakes answered (SYNs).
    pub opened: u64,
    /// Handshakes completed.
    pub connected: u64,
    /// Connections ended cleanly.
    pub completed: u64,
    /// Connections that failed (handshakes never completed, resets).
    pub failed: u64,
    /// Requests answered.
    pub responses: u64,
    /// TLS handshakes completed, of them post-quantum.
    pub tls_handshakes: u64,
    /// See `tls_handshakes`.
    pub tls_pq: u64,
    /// TCP payload bytes sent and received.
    pub tx_bytes: u64,
    /// See `tx_bytes`.
    pub rx_bytes: u64,
    /// Segments dropped.
    pub segs_dropped: u64,
}

fn report(
    g: &LoadgenConf,
    s: &LoadgenStats,
    lat: Option<&Latencies>,
    elapsed: f64,
    timed_out: bool,
    series: Vec<Sample>,
    lcores: usize,
) -> LoadgenReport {
    let per = |n: u64| {
        if elapsed > 0.0 {
            n as f64 / elapsed
        } else {
            0.0
        }
    };
    let client = g.role != LoadgenRole::Server;
    // Client connections still open when the run ended failed by timeout.
    let open = if client {
        s.opened.saturating_sub(s.completed + s.failed)
    } else {
        0
    };
    LoadgenReport {
        role: match g.role {
            LoadgenRole::Client => "client",
            LoadgenRole::Server => "server",
            LoadgenRole::Both => "both",
        },
        elapsed_s: elapsed,
        timed_out,
        opened: s.opened,
        connected: s.connected,
        completed: s.completed,
        failed: s.failed + open,
        refused: s.refused,
        timed_out_conns: s.timed_out + open,
        reset: s.reset,
        closed_early: s.closed_early,
        responses: s.responses,
        status_2xx: s.status_2xx,
        bad_responses: s.bad_responses,
        body_bytes: s.body_bytes,
        tx_bytes: s.tx_bytes,
        rx_bytes: s.rx_bytes,
        tx_mb_per_s: per(s.tx_bytes) / 1e6,
        rx_mb_per_s: per(s.rx_bytes) / 1e6,
        connection_record_bytes: qsplice_loadgen::session_bytes(client) as u64,
        connection_buffer_bytes: 2 * u64::from(g.tcp_buf),
        connections_per_s: per(s.completed),
        requests_per_s: per(s.responses),
        rate_target: if client { g.rate } else { 0 },
        behind: s.behind,
        tls_handshakes: s.tls_handshakes,
        tls_resumed: s.tls_resumed,
        tls_pq: s.tls_pq,
        tls13: s.tls13,
        tls_failed: s.tls_failed,
        tls_failures: [
            ("alert_received", s.tls_alert_received),
            ("incompatible", s.tls_incompatible),
            ("protocol", s.tls_protocol),
            ("other", s.tls_other),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect(),
        latency_us: lat
            .map(|l| LatencyReport {
                tls_handshake: LatencySummary::of(&l.tls_handshake),
                connect: LatencySummary::of(&l.connect),
                first_byte: LatencySummary::of(&l.first_byte),
                response: LatencySummary::of(&l.response),
                connection: LatencySummary::of(&l.connection),
            })
            .unwrap_or_default(),
        segs_dropped: s.segs_dropped,
        segs_unsent: s.segs_unsent,
        lcores,
        steered: s.steered,
        steer_full: s.steer_full,
        series,
        server: None,
    }
}

/// The report as text.
pub fn render(r: &LoadgenReport) -> String {
    let mut s = format!(
        "loadgen {}: {:.2} s{}\n  connections: opened {} connected {} completed {} failed {} ({:.0}/s)\n",
        r.role,
        r.elapsed_s,
        if r.timed_out { " (timed out)" } else { "" },
        r.opened,
        r.connected,
        r.completed,
        r.failed,
        r.connections_per_s
    );
    if r.role != "server" {
        s += &format!(
            "  failures: refused {} timed out {} reset {} closed early {} bad responses {}\n",
            r.refused, r.timed_out_conns, r.reset, r.closed_early, r.bad_responses
        );
        if r.rate_target > 0 {
            s += &format!(
                "  rate: target {}/s, opened {:.0}/s, {} behind schedule\n",
                r.rate_target,
                if r.elapsed_s > 0.0 {
                    r.opened as f64 / r.elapsed_s
                } else {
                    0.0
                },
                r.behind
            );
        }
        s += &format!(
            "  responses: {} ({} 2xx) {:.0}/s, body {} bytes\n",
            r.responses, r.status_2xx, r.requests_per_s, r.body_bytes,
        );
        if r.tls_handshakes + r.tls_failed > 0 {
            s += &format!(
                "  tls: {} handshakes ({} resumed, {} post-quantum, {} TLS 1.3), {} failed {:?}\n",
                r.tls_handshakes, r.tls_resumed, r.tls_pq, r.tls13, r.tls_failed, r.tls_failures
            );
        }
        s += "  latency us        count      mean       p50       p90       p99     p99.9       max\n";
        for (name, l) in [
            ("connect", &r.latency_us.connect),
            ("tls", &r.latency_us.tls_handshake),
            ("first byte", &r.latency_us.first_byte),
            ("response", &r.latency_us.response),
            ("connection", &r.latency_us.connection),
        ] {
            s += &format!(
                "    {:<12} {:>9} {:>9.0} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
                name, l.count, l.mean, l.p50, l.p90, l.p99, l.p999, l.max
            );
        }
    } else {
        s += &format!(
            "  requests answered: {} ({:.0}/s)\n",
            r.responses, r.requests_per_s
        );
        if r.tls_handshakes > 0 {
            s += &format!(
                "  tls: {} handshakes ({} resumed, {} post-quantum, {} TLS 1.3)\n",
                r.tls_handshakes, r.tls_resumed, r.tls_pq, r.tls13
            );
        }
    }
    s += &format!(
        "  TCP payload: sent {} B ({:.1} MB/s), received {} B ({:.1} MB/s); per connection {} B at rest{}, + {} B of buffers while bytes are queued\n",
        r.tx_bytes,
        r.tx_mb_per_s,
        r.rx_bytes,
        r.rx_mb_per_s,
        r.connection_record_bytes,
        if r.tls_handshakes > 0 { " (+ TLS state)" } else { "" },
        r.connection_buffer_bytes
    );
    s += &format!(
        "  segments dropped {} unsent {}",
        r.segs_dropped, r.segs_unsent
    );
    if let Some(v) = &r.server {
        s += &format!(
            "\n  server side: opened {} connected {} completed {} failed {}, requests answered {}, TLS handshakes {} ({} post-quantum), segments dropped {}",
            v.opened, v.connected, v.completed, v.failed, v.responses, v.tls_handshakes, v.tls_pq, v.segs_dropped
        );
    }
    if r.lcores > 1 {
        s += &format!(
            "\n  lcores {}: segments steered to their owner {}, dropped (inbox full) {}",
            r.lcores, r.steered, r.steer_full
        );
    }
    s
}

/// Writes the time series as a PNG: rates (left), response latency
/// percentiles (right).
fn plot(path: &std::path::Path, r: &LoadgenReport) -> Result<()> {
    let pts = |f: &dyn Fn(&Sample) -> f64| -> Vec<(f64, f64)> {
        r.series.iter().map(|x| (x.t_s, f(x))).collect()
    };
    let (conn, req) = (pts(&|x| x.connections_per_s), pts(&|x| x.requests_per_s));
    let (p50, p99) = (
        pts(&|x| x.response_p50_us as f64),
        pts(&|x| x.response_p99_us as f64),
    );
    qsplice_dhcp::plot::timeseries_png(
        path,
        (
            "loadgen rates",
            "per second",
            &[("connections/s", &conn), ("requests/s", &req)],
        ),
        ("response latency", "us", &[("p50", &p50), ("p99", &p99)]),
    )
    .map_err(|e| anyhow!("--plot {}: {e}", path.display()))
}

/// The client's TLS: a configuration that keeps and offers sessions and
/// one that does not, the server name, the resuming share.
fn client_tls(g: &LoadgenConf, target: std::net::SocketAddrV4) -> Result<ClientTls> {
    let ca_pem = if g.tls_ca.is_empty() {
        None
    } else {
        Some(
            qsplice_tls::client::read_ca(std::path::Path::new(&g.tls_ca))
                .map_err(|e| anyhow!("loadgen.tls_ca {}: {e}", g.tls_ca))?,
        )
    };
    let settings = |resumption| ClientSettings {
        groups: g.tls_groups.iter().copied().map(group_of).collect(),
        tls13: g.tls_versions.iter().any(|v| v == "1.3"),
        tls12: g.tls_versions.iter().any(|v| v == "1.2"),
        ca_pem: ca_pem.clone(),
        resumption,
    };
    let cfg = |r| client_config(&settings(r)).map_err(|e| anyhow!("loadgen TLS client: {e}"));
    let sni = if !g.tls_sni.is_empty() {
        g.tls_sni.clone()
    } else if !g.host.is_empty() {
        g.host.clone()
    } else {
        target.ip().to_string()
    };
    let name =
        ServerName::try_from(sni.clone()).map_err(|e| anyhow!("loadgen.tls_sni {sni:?}: {e}"))?;
    Ok(ClientTls {
        resuming: cfg(true)?,
        fresh: cfg(false)?,
        name,
        resume_per_mille: g.tls_resume_pct * 10,
    })
}

/// The server's TLS context: `tls_cert` / `tls_key`, the groups and
/// versions configured.
fn server_tls(g: &LoadgenConf) -> Result<Arc<TlsContext>> {
    let ctx = TlsContext::new(&TlsSettings {
        tls12: g.tls_versions.iter().any(|v| v == "1.2"),
        groups: g.tls_groups.iter().copied().map(group_of).collect(),
        certs: vec![CertSpec {
            cert: g.tls_cert.clone().into(),
            key: g.tls_key.clone().into(),
            names: vec![],
            ocsp: None,
        }],
        ..TlsSettings::default()
    })
    .map_err(|e| {
        anyhow!(
            "loadgen TLS server (tls_cert {}, tls_key {}): {e}",
            g.tls_cert,
            g.tls_key
        )
    })?;
    Ok(Arc::new(ctx))
}

fn tcp_config(g: &LoadgenConf) -> qsplice_tcp::Config {
    qsplice_tcp::Config {
        rcv_buf: g.tcp_buf as usize,
        snd_buf: g.tcp_buf as usize,
        time_wait_us: 0,
        ..qsplice_tcp::Config::default()
    }
}

/// Runs `[loadgen]` until done (client), the timeout, or a signal.
pub fn loadgen(cfg: &Config, opts: &LoadgenOpts) -> Result<LoadgenReport> {
    let g = cfg
        .loadgen
        .as_ref()
        .ok_or_else(|| anyhow!("no [loadgen] section"))?;
    let pi = cfg
        .ports
        .iter()
        .position(|p| p.name == g.port)
        .ok_or_else(|| anyhow!("loadgen.port {}: no such port", g.port))?;
    let locals: Vec<_> = cfg.ports[pi]
        .addresses
        .iter()
        .take(g.sources.max(1) as usize)
        .map(|c| c.addr)
        .collect();
    if locals.is_empty() {
        return Err(anyhow!("loadgen.port {}: no IPv4 address", g.port));
    }
    let mut b = boot(cfg)?;
    let workers = cfg.eal.worker_lcores.clone();
    let n = workers.len();
    let setups = port_setups(cfg);
    let clock = TscClock::new(b.eal);
    let hz = qsplice_netdev::Clock::hz(&clock);
    let shared: Vec<Arc<SharedStats>> = (0..n).map(|_| Arc::new(SharedStats::default())).collect();
    let steering = Arc::new(Steering::<Mbuf>::new(n, STEER_INBOX));
    let stop = install_signal_handler();
    let worker_stop = Arc::new(AtomicBool::new(false));
    let role = g.role;
    let timeout = opts.duration.unwrap_or(Duration::from_secs(g.timeout_s));
    let mut links = Vec::with_capacity(n);
    // Client: every lcore gets its share of the connections, of the
    // concurrency and of the rate, its own source ports and its own TLS
    // session cache; the request is the same.
    let request = g.target.map(|target| {
        let host = if g.host.is_empty() {
            target.ip().to_string()
        } else {
            g.host.clone()
        };
        let mut r = format!(
            "{} {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: qsplice-loadgen\r\n",
            g.method, g.path
        );
        if g.method == "POST" {
            r += &format!("Content-Length: {}\r\n", g.request_bytes);
        }
        r += "\r\n";
        let mut r = r.into_bytes();
        r.extend((0..g.request_bytes).map(|i| b'a' + (i % 26) as u8));
        r
    });
    let conns = opts.connections.unwrap_or(g.connections);
    // Server: one response and one TLS context (ticket keys) for all.
    let framing = match g.response_mode {
        ResponseMode::Length => BodyFraming::Length,
        ResponseMode::Chunked => BodyFraming::Chunked(g.chunk_bytes as usize),
        ResponseMode::Close => BodyFraming::Close,
    };
    let mut responses = Responses::new(build_response(g.response_bytes as usize, framing));
    for p in &g.paths {
        responses.add_path(&p.path, build_response(p.response_bytes as usize, framing));
    }
    let server_ctx = match (role, g.tls) {
        (LoadgenRole::Server | LoadgenRole::Both, true) => Some(server_tls(g)?),
        _ => None,
    };
    // Role "both": the server side on its own port.
    let spi = match role {
        LoadgenRole::Both => cfg
            .ports
            .iter()
            .position(|p| p.name == g.server_port)
            .ok_or_else(|| anyhow!("loadgen.server_port {}: no such port", g.server_port))?,
        _ => pi,
    };
    let client_side = role != LoadgenRole::Server;
    let server_side = role != LoadgenRole::Client;
    if client_side {
        tracing::info!(target = ?g.target, connections = conns, concurrency = g.concurrency, requests = g.requests, lcores = n, "loadgen client starting");
    }
    if server_side {
        tracing::info!(listen = ?g.listen, lcores = n, "loadgen server starting");
    }
    // In "both", the server side's counters and inboxes of its own.
    let shared_srv: Vec<Arc<SharedStats>> =
        (0..n).map(|_| Arc::new(SharedStats::default())).collect();
    let steering_srv = Arc::new(Steering::<Mbuf>::new(n, STEER_INBOX));
    for (k, &lcore) in workers.iter().enumerate() {
        let ports: Vec<_> = std::mem::take(&mut b.queues[k])
            .into_iter()
            .zip(setups.iter().cloned())
            .collect();
        let econf = engine_conf(cfg, k == 0);
        let link = ControlLink::new(1024);
        links.push(link.clone());
        let ws = worker_stop.clone();
        let clock = TscClock::new(b.eal);
        let client = if client_side {
            let target = g.target.ok_or_else(|| anyhow!("loadgen.target"))?;
            let (sport_min, sport_max) = client_ports(g.sport_min, g.sport_max, n, k);
            let cc = ClientConf {
                port: pi,
                locals: locals.clone(),
                sport_min,
                sport_max,
                target,
                connections: share(conns, n, k),
                concurrency: share(u64::from(g.concurrency), n, k) as u32,
                rate: share(g.rate, n, k),
                requests: g.requests,
                think_us: g.think_ms.saturating_mul(1000),
                request: request.clone().unwrap_or_default(),
                head: g.method == "HEAD",
                tls: if g.tls {
                    Some(client_tls(g, target)?)
                } else {
                    None
                },
                tcp: tcp_config(g),
                hz,
            };
            let mut svc = LoadgenClient::new(cc).with_shared(shared[k].clone());
            if n > 1 {
                svc = svc.with_steering(k, steering.clone(), g.sport_min, g.sport_max);
            }
            Some(svc)
        } else {
            None
        };
        let server = if server_side {
            let listen = g.listen.ok_or_else(|| anyhow!("loadgen.listen"))?;
            let sc = ServerConf {
                port: spi,
                listen,
                also: if g.listen_all {
                    cfg.ports[spi].addresses.iter().map(|c| c.addr).collect()
                } else {
                    Vec::new()
                },
                response: responses.clone(),
                close_after_response: framing == BodyFraming::Close,
                max_conns: share(u64::from(g.max_conns), n, k).max(1) as usize,
                tls: server_ctx.clone(),
                tcp: tcp_config(g),
                hz,
            };
            let (sh, st) = if client_side {
                (shared_srv[k].clone(), steering_srv.clone())
            } else {
                (shared[k].clone(), steering.clone())
            };
            let mut svc = LoadgenServer::new(sc).with_shared(sh);
            if n > 1 {
                svc = svc.with_steering(k, st);
            }
            Some(svc)
        } else {
            None
        };
        let launched = match (client, server) {
            (Some(client), Some(server)) => b.eal.launch(lcore, move || {
                run_worker(
                    econf,
                    ports,
                    clock,
                    link,
                    &ws,
                    LoadgenBoth { client, server },
                )
            }),
            (Some(c), None) => b
                .eal
                .launch(lcore, move || run_worker(econf, ports, clock, link, &ws, c)),
            (None, Some(s)) => b
                .eal
                .launch(lcore, move || run_worker(econf, ports, clock, link, &ws, s)),
            (None, None) => unreachable!("a role has a side"),
        };
        launched.with_context(|| format!("launch the load generator on lcore {lcore}"))?;
    }
    let totals = || {
        let mut s = LoadgenStats::default();
        let mut lat: Option<Latencies> = None;
        for sh in &shared {
            s.add(&sh.snapshot());
            if let Some(l) = sh.latencies() {
                match lat.as_mut() {
                    Some(a) => a.merge(&l),
                    None => lat = Some(l),
                }
            }
        }
        (s, lat)
    };
    let started = Instant::now();
    let interval = Duration::from_millis(cfg.engine.stats_interval_ms.max(100));
    let mut next = started + interval;
    let mut timed_out = false;
    let mut series = Vec::new();
    let mut last = (0.0f64, LoadgenStats::default(), None::<Latencies>);
    // The point before `last`: a short tail interval is folded into the
    // last point instead of standing alone (a 30 ms interval's rates are
    // noise), so the series still adds up to the totals.
    let mut before_last = last.clone();
    let mut dash = Dashboard {
        tty: !opts.plain && std::io::stdout().is_terminal(),
        client: role != LoadgenRole::Server,
        total: conns,
        drawn: false,
    };
    loop {
        if shared.iter().all(|s| s.is_finished()) || stop.load(Ordering::SeqCst) {
            break;
        }
        relay_neighbours(&links);
        if started.elapsed() >= timeout {
            timed_out = true;
            break;
        }
        if Instant::now() >= next {
            next += interval;
            let t = started.elapsed().as_secs_f64();
            let (s, lat) = totals();
            let sample = interval_sample(t, &s, lat.as_ref(), &last);
            if cfg.engine.stats_interval_ms > 0 {
                dash.draw(t, &s, &sample);
            }
            series.push(sample);
            before_last = std::mem::replace(&mut last, (t, s, lat));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    dash.end();
    let elapsed = started.elapsed().as_secs_f64();
    worker_stop.store(true, Ordering::SeqCst);
    for &lcore in &workers {
        b.eal.wait(lcore);
    }
    for p in &mut b.ports {
        p.stop();
    }
    let (s, lat) = totals();
    close_series(
        &mut series,
        elapsed,
        (&s, lat.as_ref()),
        &last,
        &before_last,
        interval,
    );
    let mut r = report(
        g,
        &s,
        lat.as_ref(),
        elapsed,
        timed_out && role != LoadgenRole::Server,
        series,
        n,
    );
    if role == LoadgenRole::Both {
        let mut v = LoadgenStats::default();
        for sh in &shared_srv {
            v.add(&sh.snapshot());
        }
        r.server = Some(ServerSide {
            opened: v.opened,
            connected: v.connected,
            completed: v.completed,
            failed: v.failed,
            responses: v.responses,
            tls_handshakes: v.tls_handshakes,
            tls_pq: v.tls_pq,
            tx_bytes: v.tx_bytes,
            rx_bytes: v.rx_bytes,
            segs_dropped: v.segs_dropped,
        });
    }
    if let Some(p) = &opts.json {
        crate::outfile::write_json(p, &r)?;
    }
    if let Some(p) = &opts.plot {
        plot(p, &r)?;
    }
    Ok(r)
}

/// The live view: on a terminal a block redrawn in place (progress bar,
/// rates, latency of the last interval, failures by kind), else one line
/// per interval.
struct Dashboard {
    tty: bool,
    client: bool,
    total: u64,
    drawn: bool,
}

/// Lines of the terminal block.
const DASH_LINES: usize = 4;

impl Dashboard {
    fn draw(&mut self, t: f64, s: &LoadgenStats, x: &Sample) {
        if !self.tty {
            println!(
                "loadgen {t:.1}s opened {} completed {} failed {} | {:.0} conn/s {:.0} req/s | response p50 {} us p99 {} us",
                s.opened, s.completed, s.failed, x.connections_per_s, x.requests_per_s,
                x.response_p50_us, x.response_p99_us
            );
            return;
        }
        let ended = s.completed + s.failed;
        let head = if self.client {
            let frac = if self.total == 0 {
                1.0
            } else {
                (ended as f64 / self.total as f64).min(1.0)
            };
            let width = 30;
            let fill = ((frac * width as f64) as usize).min(width);
            format!(
                "[{}{}] {:>5.1}% {ended}/{} connections  {t:>6.1}s",
                "#".repeat(fill),
                "-".repeat(width - fill),
                frac * 100.0,
                self.total
            )
        } else {
            format!("server  {t:>6.1}s  {} connections ended", ended)
        };
        let open = s.opened.saturating_sub(ended);
        let lines = [
            head,
            format!(
                "now {:>9.0} conn/s {:>9.0} req/s {:>7.1} MB/s out {:>7.1} MB/s in   open {open}   responses {} (2xx {})   behind {}",
                x.connections_per_s, x.requests_per_s, x.tx_mb_per_s, x.rx_mb_per_s, s.responses, s.status_2xx, s.behind
            ),
            format!(
                "response p50 {} us p99 {} us (last interval)   TLS handshakes {} resumed {} PQ {}",
                x.response_p50_us, x.response_p99_us, s.tls_handshakes, s.tls_resumed, s.tls_pq
            ),
            format!(
                "failed {}: refused {} timed out {} reset {} closed early {} bad {} TLS {}   steered {} dropped {}",
                s.failed, s.refused, s.timed_out, s.reset, s.closed_early, s.bad_responses,
                s.tls_failed, s.steered, s.segs_dropped + s.steer_full
            ),
        ];
        let mut out = String::new();
        if self.drawn {
            // Back to the block's first line.
            out.push_str(&format!("\x1b[{DASH_LINES}A"));
        }
        for l in &lines {
            out.push_str("\x1b[2K\r");
            out.push_str(l);
            out.push('\n');
        }
        print!("{out}");
        let _ = std::io::stdout().flush();
        self.drawn = true;
    }

    fn end(&self) {
        if self.tty && self.drawn {
            println!();
        }
    }
}

/// Runs one worker lcore's engine with `svc` until `stop`.
fn run_worker<S: qsplice_engine::Service<qsplice_dpdk::EthQueue>>(
    econf: qsplice_engine::EngineConf,
    ports: Vec<(qsplice_dpdk::EthQueue, qsplice_engine::PortSetup)>,
    clock: TscClock,
    link: ControlLink,
    stop: &AtomicBool,
    svc: S,
) -> i32 {
    let mut w = Worker::with_service(
        econf,
        ports,
        clock,
        Arc::new(SharedCounters::default()),
        Some(link),
        svc,
    );
    w.run(stop);
    0
}

/// Frames each lcore's steering inbox holds.
const STEER_INBOX: usize = 4096;

/// Lcore `k`'s share of `x` split among `n` (the first `x % n` get one
/// more).
fn share(x: u64, n: usize, k: usize) -> u64 {
    let n = n.max(1) as u64;
    x / n + u64::from((k as u64) < x % n)
}

/// Ends the time series at `elapsed` s so that every count lands in it:
/// the tail since the last point is a point of its own, or widens the last
/// point when it is shorter than half an interval.
fn close_series(
    series: &mut Vec<Sample>,
    elapsed: f64,
    now: (&LoadgenStats, Option<&Latencies>),
    last: &(f64, LoadgenStats, Option<Latencies>),
    before_last: &(f64, LoadgenStats, Option<Latencies>),
    interval: Duration,
) {
    let (s, lat) = now;
    if elapsed <= last.0 || *s == last.1 {
        return;
    }
    if elapsed - last.0 < interval.as_secs_f64() / 2.0 && !series.is_empty() {
        series.pop();
        series.push(interval_sample(elapsed, s, lat, before_last));
    } else {
        series.push(interval_sample(elapsed, s, lat, last));
    }
}

/// The point of the time series at `t` s: rates since the last point
/// and the response-time percentiles of the responses in between (the
/// histograms' difference).
fn interval_sample(
    t: f64,
    s: &LoadgenStats,
    lat: Option<&Latencies>,
    last: &(f64, LoadgenStats, Option<Latencies>),
) -> Sample {
    let dt = (t - last.0).max(1e-3);
    let mut p = (0, 0);
    if let Some(l) = lat {
        let mut h = l.response.clone();
        if let Some(prev) = &last.2 {
            // A histogram only grows: never fails.
            let _ = h.subtract(&prev.response);
        }
        if !h.is_empty() {
            p = (h.value_at_quantile(0.5), h.value_at_quantile(0.99));
        }
    }
    Sample {
        t_s: t,
        connections_per_s: s.completed.saturating_sub(last.1.completed) as f64 / dt,
        requests_per_s: s.responses.saturating_sub(last.1.responses) as f64 / dt,
        tx_mb_per_s: s.tx_bytes.saturating_sub(last.1.tx_bytes) as f64 / dt / 1e6,
        rx_mb_per_s: s.rx_bytes.saturating_sub(last.1.rx_bytes) as f64 / dt / 1e6,
        response_p50_us: p.0,
        response_p99_us: p.1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sum of requests over the series (rate × interval).
    fn served(series: &[Sample]) -> f64 {
        let mut t0 = 0.0;
        let mut sum = 0.0;
        for x in series {
            sum += x.requests_per_s * (x.t_s - t0);
            t0 = x.t_s;
        }
        sum
    }

    fn at(t: f64, responses: u64) -> (f64, LoadgenStats, Option<Latencies>) {
        let s = LoadgenStats {
            responses,
            ..LoadgenStats::default()
        };
        (t, s, None)
    }

    #[test]
    fn the_series_adds_up_to_the_totals_whatever_the_tail() {
        let interval = Duration::from_millis(200);
        let zero = at(0.0, 0);
        let p1 = at(0.2, 1869);
        // A 30 ms tail (the run that dropped 131 responses) widens the last
        // point; a 150 ms tail stands alone; no tail changes nothing.
        for (elapsed, expect_points) in [(0.233, 1), (0.35, 2), (0.2, 1)] {
            let mut series = vec![interval_sample(p1.0, &p1.1, None, &zero)];
            let end = if elapsed > p1.0 { 2000 } else { 1869 };
            let now = at(elapsed, end).1;
            close_series(&mut series, elapsed, (&now, None), &p1, &zero, interval);
            assert_eq!(series.len(), expect_points, "{elapsed}");
            assert!(
                (served(&series) - end as f64).abs() < 1e-6,
                "{elapsed}: {}",
                served(&series)
            );
            assert_eq!(series.last().unwrap().t_s, elapsed.max(p1.0));
        }
        // A run shorter than one interval gets one point covering it all.
        let mut series = Vec::new();
        close_series(
            &mut series,
            0.03,
            (&at(0.03, 50).1, None),
            &zero,
            &zero,
            interval,
        );
        assert_eq!(series.len(), 1);
        assert!((served(&series) - 50.0).abs() < 1e-6);
    }
}
