//! `qsplice dhcp-server` and `qsplice dhcp-tester`: boot DPDK from the
//! config, run the DHCP lcore loop (`qsplice_dhcp::lcore`) on the single
//! worker lcore, and drive the dashboard / counters / reports from the
//! control thread.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use qsplice_config::{
    parse_hex_bytes, parse_mac, Config, DhcpServer6Conf, DhcpServerConf, DhcpTesterConf,
    ExhaustionConf,
};
use qsplice_dhcp::client::{Pacing, RelayConfig, RetransmitConfig, Tester, TesterConfig};
use qsplice_dhcp::client6::{Relay6Config, Retransmit6Config, Tester6, Tester6Config};
use qsplice_dhcp::lcore::{ServerLoop, ServerShared, TesterFinal, TesterLoop, TesterShared};
use qsplice_dhcp::link6::{Server6Link, Server6Report};
use qsplice_dhcp::server::{
    DelayConfig, ExhaustionPolicy, FaultConfig, PoolConfig, RateLimit, Server, ServerConfig,
    ServerReport,
};
use qsplice_dhcp::server6::Server6Config;
use qsplice_dhcp::stats::{LatencySummary, TesterCounters, TesterReport};
use qsplice_dhcp::wire::AddrList;
use qsplice_dpdk::TscClock;
use qsplice_netdev::Clock;
use qsplice_wire::MacAddr;
use serde::Serialize;

use crate::outfile::write_json;
use crate::runtime::boot;

/// Options of the DHCP subcommands.
#[derive(Clone, Debug, Default)]
pub struct DhcpOpts {
    /// Stop after this long (server: None = until SIGINT/SIGTERM; tester:
    /// None = `dhcp_tester.timeout_s`).
    pub duration: Option<Duration>,
    /// Write the final report as JSON here.
    pub json: Option<PathBuf>,
    /// Tester: write a latency histogram / CDF PNG here.
    pub plot: Option<PathBuf>,
    /// Force plain line output even on a terminal.
    pub plain: bool,
}

fn stop_flag() -> Arc<AtomicBool> {
    crate::runtime::install_signal_handler()
}

fn port_index(cfg: &Config, name: &str) -> Result<usize> {
    cfg.ports
        .iter()
        .position(|p| p.name == name)
        .ok_or_else(|| anyhow!("no port named {name}"))
}

fn mac(s: &str) -> Option<MacAddr> {
    parse_mac(s).map(MacAddr)
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Maps `[dhcp_server.faults]` onto the crate's [`FaultConfig`].
pub fn fault_config(s: &DhcpServerConf) -> FaultConfig {
    let f = &s.faults;
    let delay = if f.delay_ms > 0 {
        DelayConfig::Fixed(ms(f.delay_ms))
    } else if f.delay_max_ms > 0 {
        DelayConfig::Uniform {
            min: ms(f.delay_min_ms),
            max: ms(f.delay_max_ms),
        }
    } else {
        DelayConfig::None
    };
    FaultConfig {
        drop_probability: f.drop_rate.0,
        delay,
        rate_limit: (f.rate_limit_pps > 0).then_some(RateLimit {
            per_sec: f.rate_limit_pps,
            burst: f.rate_limit_burst,
        }),
    }
}

/// Maps `[dhcp_server.v6]` onto the crate's [`Server6Config`].
pub fn server6_config(v: &DhcpServer6Conf, port_mac: MacAddr) -> Result<Server6Config> {
    let duid = if v.duid.is_empty() {
        qsplice_dhcp::wire6::duid_ll(port_mac.0).to_vec()
    } else {
        parse_hex_bytes(&v.duid).ok_or_else(|| anyhow!("dhcp_server.v6.duid"))?
    };
    let (t1_s, t2_s) = v.t1_t2();
    Ok(Server6Config {
        duid,
        addr_first: v.range_start.unwrap_or(std::net::Ipv6Addr::UNSPECIFIED),
        addr_count: u32::try_from(v.range_len())
            .map_err(|_| anyhow!("dhcp_server.v6.range_end"))?,
        pd: v.pd_pool.map(|p| (p.addr, p.prefix, v.pd_length)),
        preferred_s: v.preferred_lifetime_s,
        valid_s: v.valid_lifetime_s,
        t1_s,
        t2_s,
        rapid_commit: v.rapid_commit,
        preference: v.preference,
        offer_hold_s: v.offer_hold_s,
    })
}

/// Maps `[dhcp_server]` onto the crate's [`ServerConfig`].
pub fn server_config(cfg: &Config, s: &DhcpServerConf, port_mac: MacAddr) -> Result<ServerConfig> {
    let port = &cfg.ports[port_index(cfg, &s.port)?];
    let ip = s
        .server_ip
        .or_else(|| port.addresses.first().map(|c| c.addr))
        .ok_or_else(|| anyhow!("dhcp_server.server_ip: no address"))?;
    let pools: Vec<PoolConfig> = s
        .pools
        .iter()
        .map(|p| PoolConfig {
            network: p.subnet.network(),
            prefix_len: p.subnet.prefix,
            range_start: p.range_start,
            range_end: p.range_end,
            routers: AddrList::from_iter(p.routers.iter().copied()),
            dns_servers: AddrList::from_iter(p.dns_servers.iter().copied()),
            lease_time: Duration::from_secs(p.lease_time_s),
        })
        .collect();
    let first = pools
        .first()
        .cloned()
        .ok_or_else(|| anyhow!("dhcp_server.pools: none"))?;
    let mut sc = ServerConfig::new(ip, port_mac, first);
    sc.pools = pools;
    sc.offer_timeout = ms(s.offer_timeout_ms);
    sc.decline_quarantine = Duration::from_secs(s.decline_quarantine_s);
    sc.exhaustion = match s.exhaustion {
        ExhaustionConf::NoReply => ExhaustionPolicy::NoReply,
        ExhaustionConf::Nak => ExhaustionPolicy::Nak,
    };
    sc.authoritative = s.authoritative;
    sc.echo_relay_agent_info = s.echo_option82;
    sc.max_leases = s.max_leases as usize;
    sc.seed = s.seed;
    sc.faults = fault_config(s);
    Ok(sc)
}

/// Maps `[dhcp_tester]` onto the crate's [`TesterConfig`].
pub fn tester_config(t: &DhcpTesterConf, port_mac: MacAddr) -> Result<TesterConfig> {
    let mut tc = TesterConfig::new(t.clients);
    tc.concurrency = if t.concurrency == 0 {
        t.clients
    } else {
        t.concurrency
    };
    tc.pacing = if t.rate == 0 {
        Pacing::Unlimited
    } else {
        Pacing::Rate {
            per_sec: t.rate,
            burst: t.burst,
        }
    };
    tc.base_mac = mac(&t.base_mac).ok_or_else(|| anyhow!("dhcp_tester.base_mac"))?;
    tc.vlan = (t.vlan != 0).then_some(t.vlan);
    tc.broadcast_flag = t.broadcast;
    tc.send_client_id = t.client_id;
    tc.max_naks = t.max_naks;
    tc.renew_after = (t.renew_after_ms > 0).then(|| ms(t.renew_after_ms));
    tc.release = t.release;
    tc.server_mac = mac(&t.server_mac);
    tc.seed = t.seed;
    let r = &t.retransmit;
    tc.retransmit = RetransmitConfig {
        initial: ms(r.initial_ms),
        multiplier: r.multiplier,
        max: ms(r.max_ms),
        jitter_pct: r.jitter_pct,
        discover_retries: r.discover_retries,
        request_retries: r.request_retries,
    };
    if let Some(rl) = &t.relay {
        tc.relay = Some(RelayConfig {
            giaddr: rl
                .giaddr
                .ok_or_else(|| anyhow!("dhcp_tester.relay.giaddr"))?,
            relay_mac: port_mac,
            server_ip: rl
                .server_ip
                .ok_or_else(|| anyhow!("dhcp_tester.relay.server_ip"))?,
            server_mac: mac(&rl.server_mac)
                .ok_or_else(|| anyhow!("dhcp_tester.relay.server_mac"))?,
            hops: rl.hops,
            max_hops: rl.max_hops,
            circuit_id: rl.circuit_id.clone(),
            remote_id: rl.remote_id.clone(),
        });
    }
    Ok(tc)
}

/// Maps `[dhcp_tester]` with `[dhcp_tester.v6]` onto the crate's
/// [`Tester6Config`].
pub fn tester6_config(t: &DhcpTesterConf, port_mac: MacAddr) -> Result<Tester6Config> {
    let v =
        t.v6.as_ref()
            .ok_or_else(|| anyhow!("no [dhcp_tester.v6] section"))?;
    let mut tc = Tester6Config::new(t.clients);
    tc.concurrency = if t.concurrency == 0 {
        t.clients
    } else {
        t.concurrency
    };
    tc.pacing = if t.rate == 0 {
        Pacing::Unlimited
    } else {
        Pacing::Rate {
            per_sec: t.rate,
            burst: t.burst,
        }
    };
    tc.base_mac = mac(&t.base_mac).ok_or_else(|| anyhow!("dhcp_tester.base_mac"))?;
    tc.vlan = (t.vlan != 0).then_some(t.vlan);
    tc.port_mac = port_mac;
    tc.ia_na = v.ia_na;
    tc.ia_pd = v.ia_pd;
    tc.iaid = v.iaid;
    tc.rapid_commit = v.rapid_commit;
    tc.extend = match v.extend {
        qsplice_config::Extend6Conf::Renew => qsplice_dhcp::client6::Extend6::Renew,
        qsplice_config::Extend6Conf::Rebind => qsplice_dhcp::client6::Extend6::Rebind,
    };
    tc.rebind = v.rebind;
    tc.max_naks = t.max_naks;
    tc.renew_after = (t.renew_after_ms > 0).then(|| ms(t.renew_after_ms));
    tc.release = t.release;
    tc.seed = t.seed;
    let r = &v.retransmit;
    let rc = |v: u32| u8::try_from(v).unwrap_or(u8::MAX);
    tc.retransmit = Retransmit6Config {
        solicit_irt: ms(r.solicit_irt_ms),
        solicit_mrt: ms(r.solicit_mrt_ms),
        solicit_max_rc: rc(r.solicit_max_rc),
        request_irt: ms(r.request_irt_ms),
        request_mrt: ms(r.request_mrt_ms),
        request_max_rc: rc(r.request_max_rc),
        renew_irt: ms(r.renew_irt_ms),
        renew_mrt: ms(r.renew_mrt_ms),
        renew_max_rc: rc(r.renew_max_rc),
        rebind_irt: ms(r.rebind_irt_ms),
        rebind_mrt: ms(r.rebind_mrt_ms),
        rebind_max_rc: rc(r.rebind_max_rc),
        jitter_pct: r.jitter_pct,
    };
    if let Some(rl) = &v.relay {
        let link = rl
            .link_address
            .ok_or_else(|| anyhow!("dhcp_tester.v6.relay.link_address"))?;
        let mut r = Relay6Config::new(link, rl.address.unwrap_or(link));
        r.server_ip = rl.server_ip;
        r.server_mac = mac(&rl.server_mac).unwrap_or(MacAddr::BROADCAST);
        r.interface_id = rl.interface_id.clone();
        r.remote_id = rl.remote_id.clone();
        r.remote_id_enterprise = rl.remote_id_enterprise;
        tc.relay = Some(r);
    }
    Ok(tc)
}

/// The final report of `qsplice dhcp-server` (also its `--json`).
#[derive(Clone, Debug, Serialize)]
pub struct ServerRunReport {
    /// Seconds run.
    pub uptime_s: f64,
    /// The server's counters, leases and rejections by reason.
    pub server: Option<ServerReport>,
    /// The DHCPv6 server's, when `[dhcp_server.v6]` is configured.
    pub server6: Option<Server6Report>,
    /// The loop's I/O counters.
    pub io: BTreeMap<&'static str, u64>,
}

fn server_line(r: &ServerRunReport) -> String {
    let mut s = format!("dhcp-server up {:.1}s", r.uptime_s);
    if let Some(x) = &r.server {
        let c = &x.counters;
        s += &format!(
            " | rx {} discover {} request {} release {} decline {} inform {} relayed {} | offer {} ack {} nak {} | bound {} offered {} / {} | exhausted {} delayed {} | rejected {}",
            c.received, c.discover, c.request, c.release, c.decline, c.inform, c.relayed,
            c.offer_sent, c.ack_sent, c.nak_sent, x.leases_bound, x.leases_offered, x.addresses,
            c.pool_exhausted, c.delayed, x.rejects.values().sum::<u64>()
        );
    }
    if let Some(x) = &r.server6 {
        let g = |k: &str| x.received.get(k).copied().unwrap_or(0);
        s += &format!(
            " | v6 solicit {} request {} renew {} rebind {} release {} relayed {} | advertise {} reply {} | addresses {} prefixes {} | exhausted {} delayed {} | rejected {}",
            g("solicit"), g("request"), g("renew"), g("rebind"), g("release"), g("relay_forw"),
            x.advertise_sent, x.reply_sent, x.addresses_bound, x.prefixes_bound,
            x.exhausted, x.delayed, x.rejects.values().sum::<u64>()
        );
    }
    s
}

/// Multi-line summary of a server run.
pub fn render_server(r: &ServerRunReport) -> String {
    let mut s = server_line(r);
    if let Some(x) = &r.server {
        if !x.rejects.is_empty() {
            s += "\n  rejected by reason:";
            for (k, v) in &x.rejects {
                s += &format!(" {k}={v}");
            }
        }
    }
    if let Some(x) = &r.server6 {
        if !x.rejects.is_empty() {
            s += "\n  v6 rejected by reason:";
            for (k, v) in &x.rejects {
                s += &format!(" {k}={v}");
            }
        }
    }
    s += "\n  io:";
    for (k, v) in &r.io {
        s += &format!(" {k}={v}");
    }
    s
}

fn server_report(shared: &ServerShared, started: Instant) -> ServerRunReport {
    ServerRunReport {
        uptime_s: started.elapsed().as_secs_f64(),
        server: shared.report.lock().ok().and_then(|g| g.clone()),
        server6: shared.report6.lock().ok().and_then(|g| g.clone()),
        io: shared.io.snapshot().into_iter().collect(),
    }
}

/// The server loop's sleep after an empty poll, µs: `dhcp_server.idle_sleep_us`;
/// unset, `engine.idle_sleep_us` when non-zero, else 50 µs on kernel-backed
/// ports (`net_af_packet`, `net_tap`) and 0 (busy polling) on others.
///
/// Why: on a kernel-backed port the peers (perfdhcp, relays, clients) and
/// the kernel's veth/af_packet path usually run on the same few CPUs; a
/// busy-polling lcore takes a whole CPU from them and their sockets overflow
/// (perfdhcp on 2 vCPUs at 8000 DORA/s: 5759 UDP receive-buffer drops with
/// busy polling, 0 with 50 µs; every request was answered in both runs).
pub fn server_idle_sleep_us(cfg: &Config, s: &DhcpServerConf) -> u64 {
    if let Some(v) = s.idle_sleep_us {
        return v;
    }
    if cfg.engine.idle_sleep_us > 0 {
        return cfg.engine.idle_sleep_us;
    }
    let kernel_backed = port_index(cfg, &s.port).is_ok_and(|i| {
        let d = &cfg.ports[i].device;
        d.starts_with("net_af_packet") || d.starts_with("net_af_xdp") || d.starts_with("net_tap")
    });
    if kernel_backed {
        50
    } else {
        0
    }
}

/// `qsplice dhcp-server`: the DHCP server simulator on `dhcp_server.port`
/// until SIGINT/SIGTERM or `--duration`.
pub fn server(cfg: &Config, opts: &DhcpOpts) -> Result<ServerRunReport> {
    let s = cfg
        .dhcp_server
        .as_ref()
        .ok_or_else(|| anyhow!("no [dhcp_server] section"))?;
    let pi = port_index(cfg, &s.port)?;
    let mut b = boot(cfg)?;
    let lcore = cfg.eal.worker_lcores[0];
    let q = b.queues[0].swap_remove(pi);
    let port_mac = MacAddr(qsplice_netdev::Queue::mac(&q));
    let hz = TscClock::new(b.eal).hz();
    let (server, ip) = if s.pools.is_empty() {
        (None, std::net::Ipv4Addr::UNSPECIFIED)
    } else {
        let sc = server_config(cfg, s, port_mac)?;
        let server = Server::new(&sc, hz).map_err(|e| anyhow!("dhcp_server: {e}"))?;
        tracing::info!(ip = %sc.server_ip, mac = %port_mac, pools = sc.pools.len(), "DHCP server starting");
        (Some(server), sc.server_ip)
    };
    let link6 = match &s.v6 {
        None => None,
        Some(v) => {
            let c6 = server6_config(v, port_mac)?;
            let addrs: Vec<_> = cfg.ports[pi]
                .addresses
                .v6()
                .iter()
                .map(|c| c.addr)
                .collect();
            let l = Server6Link::new(&c6, port_mac, &addrs, &fault_config(s), s.seed, hz)
                .map_err(|e| anyhow!("dhcp_server.v6: {e}"))?;
            tracing::info!(
                link_local = %l.link_local(), addresses = c6.addr_count,
                prefixes = ?c6.pd, "DHCPv6 server starting"
            );
            Some(l)
        }
    };
    let shared = Arc::new(ServerShared::default());
    let stop = stop_flag();
    let worker_stop = Arc::new(AtomicBool::new(false));
    let (sh, ws, clock) = (shared.clone(), worker_stop.clone(), TscClock::new(b.eal));
    let idle = server_idle_sleep_us(cfg, s);
    tracing::info!(idle_sleep_us = idle, "DHCP server polling");
    let (burst, maxd) = (cfg.engine.burst as usize, s.faults.max_delayed as usize);
    b.eal
        .launch(lcore, move || {
            let mut l = ServerLoop::new(server, q, clock, ip, burst, maxd, sh);
            if let Some(v6) = link6 {
                l = l.with_v6(v6);
            }
            l.run(&ws, idle);
            0
        })
        .with_context(|| format!("launch the DHCP server on lcore {lcore}"))?;
    let started = Instant::now();
    let interval = ms(cfg.engine.stats_interval_ms.max(100));
    let mut next = started + interval;
    while !stop.load(Ordering::SeqCst) && opts.duration.is_none_or(|d| started.elapsed() < d) {
        if cfg.engine.stats_interval_ms > 0 && Instant::now() >= next {
            next += interval;
            let r = server_report(&shared, started);
            println!("{}", server_line(&r));
            if let Some(p) = &opts.json {
                write_json(p, &r)?;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    worker_stop.store(true, Ordering::SeqCst);
    b.eal.wait(lcore);
    let r = server_report(&shared, started);
    for p in &mut b.ports {
        p.stop();
    }
    if let Some(p) = &opts.json {
        write_json(p, &r)?;
    }
    Ok(r)
}

/// The final report of `qsplice dhcp-tester` (also its `--json`): the
/// crate's [`TesterReport`] flattened, plus the loop's I/O counters and
/// address checks.
#[derive(Clone, Debug, Serialize)]
pub struct TesterRunReport {
    /// The tester's report.
    #[serde(flatten)]
    pub report: TesterReport,
    /// Clients holding an address at the end.
    pub bound_addresses: u64,
    /// Distinct addresses among them.
    pub unique_addresses: u64,
    /// DHCP version the clients spoke (4 or 6).
    pub family: u8,
    /// DHCPv6: clients holding a delegated prefix at the end.
    pub delegated_prefixes: u64,
    /// DHCPv6: distinct prefixes among them.
    pub unique_prefixes: u64,
    /// Stopped by the deadline or a signal before every client finished.
    pub interrupted: bool,
    /// The loop's I/O counters.
    pub io: BTreeMap<&'static str, u64>,
}

impl TesterRunReport {
    /// Whether every client got a lease.
    pub fn all_bound(&self) -> bool {
        !self.interrupted && self.report.counters.failed == 0
    }
}

fn fmt_stage(name: &str, l: &LatencySummary) -> String {
    format!(
        "  {name:<16} {:>9} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
        l.count, l.min_us, l.mean_us, l.p50_us, l.p95_us, l.p99_us, l.max_us
    )
}

/// Multi-line final report of a tester run.
pub fn render_tester(r: &TesterRunReport) -> String {
    let t = &r.report;
    let c = &t.counters;
    let v6 = r.family == 6;
    let mut s = format!(
        "dhcp-tester{}: {} clients, {} bound, {} failed{} in {:.3}s: success {:.2}%, {:.0} clients/s\n",
        if v6 { " (DHCPv6)" } else { "" },
        t.clients_total,
        c.bound,
        c.failed,
        if r.interrupted { " (interrupted)" } else { "" },
        t.elapsed_s,
        t.success_rate * 100.0,
        t.clients_per_s
    );
    let [d, o, q, a, n, m] = if v6 {
        [
            "solicit",
            "advertise",
            "request",
            "reply",
            "error status",
            "interface-id mismatch",
        ]
    } else {
        [
            "discover",
            "offer",
            "request",
            "ack",
            "nak",
            "option82 mismatch",
        ]
    };
    s += &format!(
        "  {d} sent {}  {o} recv {}  {q} sent {}  {a} recv {}  {n} {}  timeouts {}  retries {}  renew {}/{}{}  release {}  reply errors {}  {m} {}\n",
        c.discover_sent, c.offer_received, c.request_sent, c.ack_received, c.nak_received,
        c.timeouts, c.retries, c.renew_ack, c.renew_sent,
        if c.rebind_sent > 0 {
            format!("  rebind {}/{}", c.rebind_ack, c.rebind_sent)
        } else {
            String::new()
        },
        c.release_sent, c.reply_errors, c.option82_mismatch
    );
    s += &format!(
        "  addresses: {} bound, {} unique\n",
        r.bound_addresses, r.unique_addresses
    );
    if r.delegated_prefixes > 0 {
        s += &format!(
            "  prefixes: {} delegated, {} unique\n",
            r.delegated_prefixes, r.unique_prefixes
        );
    }
    s += &format!(
        "  {:<16} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
        "latency (us)", "count", "min", "mean", "median", "p95", "p99", "max"
    );
    let (first, second) = if v6 {
        ("solicit->advert", "request->reply")
    } else {
        ("discover->offer", "request->ack")
    };
    s += &fmt_stage(first, &t.discover_offer);
    s += "\n";
    s += &fmt_stage(second, &t.request_ack);
    s += "\n";
    s += &fmt_stage("total", &t.total);
    s += "\n";
    if t.renew.count > 0 {
        s += &fmt_stage("renew", &t.renew);
        s += "\n";
    }
    s += "  errors:";
    if t.errors.is_empty() {
        s += " none";
    }
    for (k, v) in &t.errors {
        s += &format!(" {k}={v}");
    }
    s += "\n  retries histogram (retries:clients):";
    for (k, v) in &t.retries_histogram {
        s += &format!(" {k}:{v}");
    }
    s += "\n  io:";
    for (k, v) in &r.io {
        s += &format!(" {k}={v}");
    }
    s
}

struct Dashboard {
    tty: bool,
    v6: bool,
    started: Instant,
    last: (Instant, u64),
    total: u64,
}

impl Dashboard {
    fn draw(&mut self, c: &TesterCounters, in_flight: u64, errs: u64) {
        let now = Instant::now();
        let el = now.duration_since(self.started).as_secs_f64();
        let dt = now.duration_since(self.last.0).as_secs_f64().max(1e-3);
        let finished = c.done + c.failed;
        let rate_now = c.bound.saturating_sub(self.last.1) as f64 / dt;
        let avg = c.bound as f64 / el.max(1e-3);
        self.last = (now, c.bound);
        let frac = if self.total == 0 {
            1.0
        } else {
            finished as f64 / self.total as f64
        };
        let [d, o, q, a, n] = if self.v6 {
            ["solicit", "advertise", "req", "reply", "error-status"]
        } else {
            ["disc", "offer", "req", "ack", "nak"]
        };
        let counters = format!(
            "{d} {} {o} {} {q} {} {a} {} {n} {} timeouts {} retries {} parse/net errors {} failed {} in-flight {}",
            c.discover_sent, c.offer_received, c.request_sent, c.ack_received, c.nak_received,
            c.timeouts, c.retries, c.reply_errors + errs, c.failed, in_flight
        );
        if self.tty {
            let width = 30;
            let fill = ((frac * width as f64) as usize).min(width);
            let bar = format!("{}{}", "#".repeat(fill), "-".repeat(width - fill));
            print!(
                "\x1b[2K\r[{bar}] {:>5.1}% {finished}/{} {el:>6.1}s now {rate_now:>9.0}/s avg {avg:>9.0}/s\n\x1b[2K{counters}\x1b[1A\r",
                frac * 100.0,
                self.total
            );
            let _ = std::io::stdout().flush();
        } else {
            println!(
                "dhcp-tester {:.1}% {finished}/{} elapsed {el:.1}s rate now {rate_now:.0}/s avg {avg:.0}/s | {counters}",
                frac * 100.0,
                self.total
            );
        }
    }

    fn end(&self) {
        if self.tty {
            println!("\n");
        }
    }
}

/// `qsplice dhcp-tester`: runs the configured clients to completion (or
/// to the deadline), then reports.
pub fn tester(cfg: &Config, opts: &DhcpOpts) -> Result<TesterRunReport> {
    let t = cfg
        .dhcp_tester
        .as_ref()
        .ok_or_else(|| anyhow!("no [dhcp_tester] section"))?;
    let pi = port_index(cfg, &t.port)?;
    let mut b = boot(cfg)?;
    let lcore = cfg.eal.worker_lcores[0];
    let q = b.queues[0].swap_remove(pi);
    let port_mac = MacAddr(qsplice_netdev::Queue::mac(&q));
    let hz = TscClock::new(b.eal).hz();
    let shared = Arc::new(TesterShared::default());
    let stop = stop_flag();
    let worker_stop = Arc::new(AtomicBool::new(false));
    let (sh, ws, clock) = (shared.clone(), worker_stop.clone(), TscClock::new(b.eal));
    let burst = cfg.engine.burst as usize;
    let family = if t.v6.is_some() { 6 } else { 4 };
    if t.v6.is_some() {
        let tc = tester6_config(t, port_mac)?;
        let tester = Tester6::new(&tc, hz).map_err(|e| anyhow!("dhcp_tester.v6: {e}"))?;
        tracing::info!(
            clients = tc.clients,
            concurrency = tc.concurrency,
            relay = tc.relay.is_some(),
            ia_na = tc.ia_na,
            ia_pd = tc.ia_pd,
            "DHCPv6 tester starting"
        );
        let (clients, base) = (tc.clients, tc.base_mac);
        b.eal
            .launch(lcore, move || {
                let mut l = TesterLoop::new(tester, q, clock, burst, clients, base, None, sh);
                l.run(&ws);
                0
            })
            .with_context(|| format!("launch the DHCP tester on lcore {lcore}"))?;
    } else {
        let tc = tester_config(t, port_mac)?;
        let tester = Tester::new(&tc, hz).map_err(|e| anyhow!("dhcp_tester: {e}"))?;
        let relay = tc.relay.as_ref().map(|r| (r.giaddr, r.relay_mac));
        tracing::info!(
            clients = tc.clients,
            concurrency = tc.concurrency,
            relay = relay.is_some(),
            "DHCP tester starting"
        );
        let (clients, base) = (tc.clients, tc.base_mac);
        b.eal
            .launch(lcore, move || {
                let mut l = TesterLoop::new(tester, q, clock, burst, clients, base, relay, sh);
                l.run(&ws);
                0
            })
            .with_context(|| format!("launch the DHCP tester on lcore {lcore}"))?;
    }
    let started = Instant::now();
    let deadline = opts.duration.unwrap_or(Duration::from_secs(t.timeout_s));
    let mut dash = Dashboard {
        tty: !opts.plain && std::io::stdout().is_terminal(),
        v6: family == 6,
        started,
        last: (started, 0),
        total: u64::from(t.clients),
    };
    let refresh = if dash.tty {
        Duration::from_millis(250)
    } else {
        ms(cfg.engine.stats_interval_ms.max(250))
    };
    let mut next = started + refresh;
    loop {
        if shared.result.lock().map(|g| g.is_some()).unwrap_or(true) {
            break;
        }
        if stop.load(Ordering::SeqCst) || started.elapsed() >= deadline {
            worker_stop.store(true, Ordering::SeqCst);
        }
        if Instant::now() >= next {
            next += refresh;
            let c = shared
                .counters
                .lock()
                .map(|g| g.clone())
                .unwrap_or_default();
            dash.draw(&c, shared.in_flight.load(Ordering::Relaxed), 0);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    b.eal.wait(lcore);
    let c = shared
        .counters
        .lock()
        .map(|g| g.clone())
        .unwrap_or_default();
    dash.draw(&c, 0, 0);
    dash.end();
    for p in &mut b.ports {
        p.stop();
    }
    let fin: TesterFinal = shared
        .result
        .lock()
        .ok()
        .and_then(|mut g| g.take())
        .ok_or_else(|| anyhow!("the tester lcore ended without a result"))?;
    let unique: BTreeSet<_> = fin.addresses.iter().map(|(_, a)| *a).collect();
    let unique_prefixes: BTreeSet<_> = fin.prefixes.iter().map(|(_, p, l)| (*p, *l)).collect();
    let r = TesterRunReport {
        report: fin.report.clone(),
        bound_addresses: fin.addresses.len() as u64,
        unique_addresses: unique.len() as u64,
        family,
        delegated_prefixes: fin.prefixes.len() as u64,
        unique_prefixes: unique_prefixes.len() as u64,
        interrupted: fin.interrupted,
        io: shared.io.snapshot().into_iter().collect(),
    };
    if let Some(p) = &opts.json {
        write_json(p, &r)?;
    }
    if let Some(p) = &opts.plot {
        plot(p, &fin, family == 6)?;
    }
    Ok(r)
}

fn plot(path: &std::path::Path, fin: &TesterFinal, v6: bool) -> Result<()> {
    qsplice_dhcp::plot::latency_png(
        path,
        &[
            (
                if v6 {
                    "solicit->advertise"
                } else {
                    "discover->offer"
                },
                &fin.discover_offer,
            ),
            (
                if v6 { "request->reply" } else { "request->ack" },
                &fin.request_ack,
            ),
            ("total", &fin.total),
        ],
    )
    .map_err(|e| anyhow!("--plot {}: {e}", path.display()))
}

/// Checks a run's outcome for the exit status.
pub fn check_tester(r: &TesterRunReport) -> Result<()> {
    if !r.all_bound() {
        bail!(
            "{} of {} clients did not get a lease{}",
            r.report.clients_total - r.report.counters.bound.min(r.report.clients_total),
            r.report.clients_total,
            if r.interrupted { " (interrupted)" } else { "" }
        );
    }
    Ok(())
}
