//! `qsplice loadgen`: HTTP/1.1 clients or a server on one port
//! (`[loadgen]`), over the appliance's own TCP (`qsplice-loadgen`), on the
//! single worker lcore; live lines while it runs, a final report (text and
//! `--json`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use qsplice_config::{Config, LoadgenConf, LoadgenRole};
use qsplice_dpdk::TscClock;
use qsplice_engine::{SharedCounters, Worker};
use qsplice_loadgen::{
    ClientConf, LoadgenClient, LoadgenServer, LoadgenStats, ServerConf, SharedStats,
};
use serde::Serialize;

use crate::runtime::{boot, engine_conf, install_signal_handler, port_setups};

/// Command-line overrides and outputs.
#[derive(Clone, Debug, Default)]
pub struct LoadgenOpts {
    /// Connections in all (overrides `loadgen.connections`).
    pub connections: Option<u64>,
    /// Run at most this long (overrides `loadgen.timeout_s`).
    pub duration: Option<Duration>,
    /// Write the final report here as JSON.
    pub json: Option<PathBuf>,
}

/// The final report.
#[derive(Clone, Debug, Serialize)]
pub struct LoadgenReport {
    /// `client` or `server`.
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
    /// Connections that failed (refused, timed out, reset, closed early;
    /// server: handshakes never completed).
    pub failed: u64,
    /// Responses read (client) / requests answered (server).
    pub responses: u64,
    /// Client: responses with a 2xx status.
    pub status_2xx: u64,
    /// Client: responses that could not be read.
    pub bad_responses: u64,
    /// Client: response body bytes.
    pub body_bytes: u64,
    /// Completed connections per second.
    pub connections_per_s: f64,
    /// Responses per second.
    pub requests_per_s: f64,
    /// Client: mean / largest connect time, µs.
    pub connect_us_mean: f64,
    /// See `connect_us_mean`.
    pub connect_us_max: u64,
    /// Client: mean / largest request → whole response time, µs.
    pub response_us_mean: f64,
    /// See `response_us_mean`.
    pub response_us_max: u64,
    /// Segments dropped (malformed, bad checksum, no session).
    pub segs_dropped: u64,
    /// Segments not sent (no mbuf, next hop unresolved).
    pub segs_unsent: u64,
}

fn report(role: LoadgenRole, s: &LoadgenStats, elapsed: f64, timed_out: bool) -> LoadgenReport {
    let per = |n: u64| {
        if elapsed > 0.0 {
            n as f64 / elapsed
        } else {
            0.0
        }
    };
    let mean = |sum: u64, n: u64| if n > 0 { sum as f64 / n as f64 } else { 0.0 };
    LoadgenReport {
        role: match role {
            LoadgenRole::Client => "client",
            LoadgenRole::Server => "server",
        },
        elapsed_s: elapsed,
        timed_out,
        opened: s.opened,
        connected: s.connected,
        completed: s.completed,
        failed: s.failed,
        responses: s.responses,
        status_2xx: s.status_2xx,
        bad_responses: s.bad_responses,
        body_bytes: s.body_bytes,
        connections_per_s: per(s.completed),
        requests_per_s: per(s.responses),
        connect_us_mean: mean(s.connect_us_sum, s.connected),
        connect_us_max: s.connect_us_max,
        response_us_mean: mean(s.response_us_sum, s.responses),
        response_us_max: s.response_us_max,
        segs_dropped: s.segs_dropped,
        segs_unsent: s.segs_unsent,
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
    if r.role == "client" {
        s += &format!(
            "  responses: {} ({} 2xx, {} bad) {:.0}/s, body {} bytes\n  connect mean {:.0} us max {} us; response mean {:.0} us max {} us\n",
            r.responses,
            r.status_2xx,
            r.bad_responses,
            r.requests_per_s,
            r.body_bytes,
            r.connect_us_mean,
            r.connect_us_max,
            r.response_us_mean,
            r.response_us_max
        );
    } else {
        s += &format!(
            "  requests answered: {} ({:.0}/s)\n",
            r.responses, r.requests_per_s
        );
    }
    s += &format!(
        "  segments dropped {} unsent {}",
        r.segs_dropped, r.segs_unsent
    );
    s
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
    let local = cfg.ports[pi]
        .addresses
        .first()
        .map(|c| c.addr)
        .ok_or_else(|| anyhow!("loadgen.port {}: no IPv4 address", g.port))?;
    let mut b = boot(cfg)?;
    let lcore = cfg.eal.worker_lcores[0];
    let ports: Vec<_> = std::mem::take(&mut b.queues[0])
        .into_iter()
        .zip(port_setups(cfg))
        .collect();
    let econf = engine_conf(cfg, true);
    let clock = TscClock::new(b.eal);
    let hz = qsplice_netdev::Clock::hz(&clock);
    let shared = Arc::new(SharedStats::default());
    let stop = install_signal_handler();
    let worker_stop = Arc::new(AtomicBool::new(false));
    let (sh, ws) = (shared.clone(), worker_stop.clone());
    let role = g.role;
    let timeout = opts.duration.unwrap_or(Duration::from_secs(g.timeout_s));
    match role {
        LoadgenRole::Client => {
            let target = g.target.ok_or_else(|| anyhow!("loadgen.target"))?;
            let host = if g.host.is_empty() {
                target.ip().to_string()
            } else {
                g.host.clone()
            };
            let request = format!(
                "{} {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: qsplice-loadgen\r\n\r\n",
                g.method, g.path
            )
            .into_bytes();
            let conns = opts.connections.unwrap_or(g.connections);
            let cc = ClientConf {
                port: pi,
                local,
                sport_min: g.sport_min,
                sport_max: g.sport_min.saturating_add((g.concurrency - 1) as u16),
                target,
                connections: conns,
                concurrency: g.concurrency,
                requests: g.requests,
                request,
                head: g.method == "HEAD",
                tcp: tcp_config(g),
                hz,
            };
            tracing::info!(%target, connections = conns, concurrency = g.concurrency, requests = g.requests, "loadgen client starting");
            b.eal
                .launch(lcore, move || {
                    let svc = LoadgenClient::new(cc).with_shared(sh);
                    let mut w = Worker::with_service(
                        econf,
                        ports,
                        clock,
                        Arc::new(SharedCounters::default()),
                        None,
                        svc,
                    );
                    w.run(&ws);
                    0
                })
                .with_context(|| format!("launch the load generator on lcore {lcore}"))?;
        }
        LoadgenRole::Server => {
            let listen = g.listen.ok_or_else(|| anyhow!("loadgen.listen"))?;
            let mut response = format!(
                "HTTP/1.1 200 OK\r\nServer: qsplice-loadgen\r\nContent-Length: {}\r\n\r\n",
                g.response_bytes
            )
            .into_bytes();
            response.extend((0..g.response_bytes).map(|i| b'a' + (i % 26) as u8));
            let sc = ServerConf {
                port: pi,
                listen,
                response,
                max_conns: g.max_conns as usize,
                tcp: tcp_config(g),
                hz,
            };
            tracing::info!(%listen, "loadgen server starting");
            b.eal
                .launch(lcore, move || {
                    let svc = LoadgenServer::new(sc).with_shared(sh);
                    let mut w = Worker::with_service(
                        econf,
                        ports,
                        clock,
                        Arc::new(SharedCounters::default()),
                        None,
                        svc,
                    );
                    w.run(&ws);
                    0
                })
                .with_context(|| format!("launch the load generator on lcore {lcore}"))?;
        }
    }
    let started = Instant::now();
    let interval = Duration::from_millis(cfg.engine.stats_interval_ms.max(100));
    let mut next = started + interval;
    let mut timed_out = false;
    loop {
        if shared.is_finished() || stop.load(Ordering::SeqCst) {
            break;
        }
        if started.elapsed() >= timeout {
            timed_out = true;
            break;
        }
        if cfg.engine.stats_interval_ms > 0 && Instant::now() >= next {
            next += interval;
            let s = shared.snapshot();
            println!(
                "loadgen {:.1}s opened {} connected {} completed {} failed {} responses {} (2xx {}, bad {})",
                started.elapsed().as_secs_f64(),
                s.opened,
                s.connected,
                s.completed,
                s.failed,
                s.responses,
                s.status_2xx,
                s.bad_responses
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed().as_secs_f64();
    worker_stop.store(true, Ordering::SeqCst);
    b.eal.wait(lcore);
    for p in &mut b.ports {
        p.stop();
    }
    let s = shared.snapshot();
    let r = report(role, &s, elapsed, timed_out && role == LoadgenRole::Client);
    if let Some(p) = &opts.json {
        crate::outfile::write_json(p, &r)?;
    }
    Ok(r)
}
