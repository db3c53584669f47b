//! Boot and run the appliance: EAL, mempools, ports, workers, control loop.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use qsplice_config::Config;
use qsplice_dpdk::{Eal, EthPort, EthQueue, Mempool, PortConf, TscClock};
use qsplice_engine::fwd::{Forwarder, FwdMode};
use qsplice_engine::{
    ArpConf, ControlLink, CoreCmd, CoreEvent, Counters, EngineConf, IfAddr, PortSetup,
    SharedCounters, Worker,
};
use qsplice_wire::MacAddr;

use crate::lb::LbRuntime;
use crate::outfile::write_json;

use crate::stats::{counter_map, NeighborReport, PortReport, Report};

/// Options of `qsplice run`.
#[derive(Clone, Debug, Default)]
pub struct RunOpts {
    /// Stop after this long (None: until SIGINT/SIGTERM).
    pub duration: Option<Duration>,
    /// Write the final report as JSON here.
    pub stats_json: Option<PathBuf>,
    /// Also rewrite `stats_json` at every stats interval (live view for tools).
    pub live_json: bool,
    /// The config file, re-read on SIGHUP (backend state, weights, limits,
    /// policies and health timers change without a restart).
    pub config_path: Option<PathBuf>,
}

/// The DPDK side of a booted appliance.
pub(crate) struct Booted {
    pub(crate) eal: &'static Eal,
    pub(crate) ports: Vec<EthPort>,
    pub(crate) pools: Vec<(String, Mempool)>,
    /// Port names from the config, in port order.
    pub(crate) names: Vec<String>,
    /// queues[w] = worker w's queue on every port, in port order.
    pub(crate) queues: Vec<Vec<EthQueue>>,
    /// The kernel interfaces (exception path) — kept open while we run.
    pub(crate) kernel_ports: Vec<EthPort>,
    /// kernel_queues[w] = worker w's queue of each port's kernel interface,
    /// with the port's index.
    pub(crate) kernel_queues: Vec<Vec<(usize, EthQueue)>>,
}

fn mac_str(m: [u8; 6]) -> String {
    MacAddr(m).to_string()
}

/// A start refused because DPDK's af_packet fanout group id for one of our
/// interfaces is taken by another process in this network namespace. The
/// id derives from the pid, so a new process (a restart) gets another one:
/// `main` exits with 75 (EX_TEMPFAIL) for supervisors and scripts to retry.
#[derive(Debug)]
pub struct FanoutClash {
    /// The kernel interface of the refused port.
    pub iface: String,
    /// The group id DPDK would use.
    pub id: u16,
}

impl std::fmt::Display for FanoutClash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "net_af_packet on {}: PACKET_FANOUT group {:#06x} (DPDK derives it from pid {} xor the ifindex) \
             is already used by another process in this network namespace for another interface; \
             the kernel would refuse the port. Start again (a new pid gets another group)",
            self.iface,
            self.id,
            std::process::id()
        )
    }
}
impl std::error::Error for FanoutClash {}

/// The af_packet vdevs of EAL arguments `args`: (device name, interface).
fn af_packet_vdevs(args: &[String]) -> impl Iterator<Item = (&str, &str)> {
    args.windows(2).filter_map(|w| {
        if w[0] != "--vdev" || !w[1].starts_with("net_af_packet") {
            return None;
        }
        let name = w[1].split(',').next()?;
        let iface = w[1].split(',').find_map(|kv| kv.strip_prefix("iface="))?;
        Some((name, iface))
    })
}

/// Refuse to start, with the reason, where the af_packet PMD would fail to
/// join its fanout group (see [`qsplice_dpdk::af_packet_fanout_clash`]).
///
/// Before EAL (`eal` None) every af_packet interface is probed. After it,
/// those whose vdev EAL failed to create are probed again: two processes
/// starting at the same moment both pass the first check, and the one that
/// joins second is refused by the kernel (its group id is now taken); that
/// is the same clash, and a restart is again what cures it.
fn check_af_packet_fanout(args: &[String], eal: Option<&Eal>) -> Result<()> {
    for (name, iface) in af_packet_vdevs(args) {
        if eal.is_some_and(|e| qsplice_dpdk::EthPort::id_by_name(e, name).is_ok()) {
            continue;
        }
        if let Some(id) = qsplice_dpdk::af_packet_fanout_clash(iface) {
            return Err(FanoutClash {
                iface: iface.to_string(),
                id,
            }
            .into());
        }
    }
    Ok(())
}

/// Bring up EAL, mempools and ports from `cfg`.
pub(crate) fn boot(cfg: &Config) -> Result<Booted> {
    let needed_mb = cfg.eal.memory_mb;
    let huge = qsplice_config::hugepages_available(needed_mb);
    let args = cfg.eal_args(std::process::id(), huge);
    tracing::info!(hugepages = huge, args = %args.join(" "), "starting EAL");
    check_af_packet_fanout(&args, None)?;
    let eal = Eal::init(&args).context("EAL initialisation")?;
    check_af_packet_fanout(&args, Some(eal))?;
    tracing::info!(version = %Eal::version(), "EAL up");

    let workers = cfg.eal.worker_lcores.clone();
    let enabled = eal.worker_lcores();
    for w in &workers {
        if !enabled.contains(w) {
            bail!("eal.worker_lcores: lcore {w} is not enabled in EAL (enabled: {enabled:?})");
        }
    }
    // One mempool per NUMA socket that runs a worker (l3fwd's model): rx
    // queues fill from the pool local to the lcore that polls them.
    let sockets: BTreeSet<Option<u32>> = workers.iter().map(|w| eal.lcore_socket(*w)).collect();
    let mut pools = Vec::new();
    for s in &sockets {
        let name = match s {
            Some(s) => format!("mbuf_s{s}"),
            None => "mbuf_any".to_string(),
        };
        let mp = Mempool::create(
            eal,
            &name,
            cfg.mempool.mbufs,
            cfg.mempool.cache,
            cfg.mempool.data_room,
            *s,
        )
        .with_context(|| {
            format!(
                "mempool {name} ({} mbufs): lower [mempool].mbufs or raise [eal].memory_mb",
                cfg.mempool.mbufs
            )
        })?;
        pools.push((name, mp));
    }
    let pool_of = |w: u32| -> Mempool {
        let s = eal.lcore_socket(w);
        let i = sockets.iter().position(|x| *x == s).unwrap_or(0);
        pools[i].1
    };
    let worker_pools: Vec<Mempool> = workers.iter().map(|w| pool_of(*w)).collect();

    let mut ports = Vec::new();
    let mut kernel_ports = Vec::new();
    let mut queues: Vec<Vec<EthQueue>> = workers.iter().map(|_| Vec::new()).collect();
    for p in &cfg.ports {
        let dev_name = p.device.split(',').next().unwrap_or(&p.device);
        let id = EthPort::id_by_name(eal, dev_name)
            .with_context(|| format!("ports `{}`: device {}", p.name, p.device))?;
        let conf = PortConf {
            queues: workers.len() as u16,
            rx_desc: p.rx_desc,
            tx_desc: p.tx_desc,
            mtu: p.mtu,
            promiscuous: p.promiscuous,
            rss: p.rss,
            mac: None,
        };
        let mut port = EthPort::configure(eal, id, &conf, &worker_pools)
            .with_context(|| format!("ports `{}`: configure {}", p.name, p.device))?;
        let info = port.info().clone();
        tracing::info!(port = %p.name, device = %info.name, driver = %info.driver, mac = %mac_str(info.mac), socket = ?info.socket, rss_hf = info.rss_hf, rx_desc = info.rx_desc, tx_desc = info.tx_desc, "port started");
        for (w, q) in port.take_queues().into_iter().enumerate() {
            queues[w].push(q);
        }
        ports.push(port);
    }
    // The exception path: each port's kernel interface, with the port's MAC
    // (the kernel's frames leave through the port as they are) and one
    // queue pair per worker like every port.
    let mut kernel_queues: Vec<Vec<(usize, EthQueue)>> =
        workers.iter().map(|_| Vec::new()).collect();
    for (pi, p) in cfg.ports.iter().enumerate() {
        let Some(iface) = &p.kernel_iface else {
            continue;
        };
        let dev = qsplice_config::kernel_vdev(pi);
        let id = EthPort::id_by_name(eal, &dev)
            .with_context(|| format!("ports `{}`: kernel interface {iface}", p.name))?;
        let conf = PortConf {
            queues: workers.len() as u16,
            rx_desc: qsplice_config::KERNEL_DESC,
            tx_desc: qsplice_config::KERNEL_DESC,
            mtu: p.mtu,
            promiscuous: false,
            rss: false,
            mac: Some(ports[pi].info().mac),
        };
        let mut port = EthPort::configure(eal, id, &conf, &worker_pools)
            .with_context(|| format!("ports `{}`: kernel interface {iface} ({dev})", p.name))?;
        crate::kernel::configure(iface, p)
            .with_context(|| format!("ports `{}`: kernel interface {iface}", p.name))?;
        tracing::info!(port = %p.name, iface = %iface, mac = %mac_str(port.info().mac), "kernel interface up (exception path)");
        for (w, q) in port.take_queues().into_iter().enumerate() {
            kernel_queues[w].push((pi, q));
        }
        kernel_ports.push(port);
    }
    let names = cfg.ports.iter().map(|p| p.name.clone()).collect();
    Ok(Booted {
        eal,
        ports,
        pools,
        names,
        queues,
        kernel_ports,
        kernel_queues,
    })
}

pub(crate) fn engine_conf(cfg: &Config, primary: bool) -> EngineConf {
    EngineConf {
        burst: cfg.engine.burst as usize,
        tx_drain_us: cfg.engine.tx_drain_us,
        idle_sleep_us: cfg.engine.idle_sleep_us,
        idle_spin_us: cfg.engine.idle_spin_us,
        arp: ArpConf {
            reachable_ms: cfg.arp.reachable_ms,
            probe_interval_ms: cfg.arp.probe_interval_ms,
            max_probes: cfg.arp.max_probes.min(u32::from(u8::MAX)) as u8,
            gratuitous_on_start: cfg.arp.gratuitous_on_start,
            table_size: cfg.arp.table_size as usize,
        },
        primary,
        kernel_poll_us: cfg.engine.kernel_poll_us,
        kernel_max_pps: cfg.engine.kernel_max_pps,
    }
}

pub(crate) fn port_setups(cfg: &Config) -> Vec<PortSetup> {
    cfg.ports
        .iter()
        .map(|p| PortSetup {
            name: p.name.clone(),
            addrs: p
                .addresses
                .iter()
                .map(|c| IfAddr {
                    addr: c.addr,
                    prefix: c.prefix,
                })
                .collect(),
            addrs6: p
                .addresses
                .v6()
                .iter()
                .map(|c| qsplice_engine::IfAddr6 {
                    addr: c.addr,
                    prefix: c.prefix,
                })
                .collect(),
            neighbors: p.neighbors.to_vec(),
            gateway: p.gateway,
            neighbors6: p.neighbors.v6().to_vec(),
            gateway6: p.gateway6,
        })
        .collect()
}

/// Set by SIGINT/SIGTERM.
/// SIGINT and SIGTERM set the returned flag (the control loop stops the
/// workers and reports). SIGHUP is left to the caller (reload).
pub(crate) fn install_signal_handler() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            tracing::warn!("cannot install the handler of signal {sig}: {e}");
        }
    }
    stop
}

/// Passes what one worker learned about a neighbour to the others (each
/// keeps its own table); `learned` sees each entry once.
pub(crate) fn relay_neighbours_with(
    links: &[ControlLink],
    mut learned: impl FnMut(u8, std::net::IpAddr, qsplice_wire::MacAddr),
) {
    for (i, l) in links.iter().enumerate() {
        while let Some(ev) = l.events.pop() {
            match ev {
                CoreEvent::NeighLearned { port, ip, mac } => {
                    learned(port, ip, mac);
                    for (j, other) in links.iter().enumerate() {
                        if j != i && other.cmds.push(CoreCmd::Neigh { port, ip, mac }).is_err() {
                            tracing::warn!(
                                worker = j,
                                "command queue full; neighbour update dropped"
                            );
                        }
                    }
                }
                CoreEvent::NeighFailed { count } => {
                    tracing::warn!(count, "neighbour resolution failed")
                }
            }
        }
    }
}

/// [`relay_neighbours_with`] for modes that do not report neighbours.
pub(crate) fn relay_neighbours(links: &[ControlLink]) {
    relay_neighbours_with(links, |_, _, _| {});
}

/// `qsplice run`: the appliance's L2/L3 presence (ARP, neighbour
/// resolution, ICMP echo) on every configured port, until stopped.
pub fn run(cfg: &Config, opts: &RunOpts) -> Result<Report> {
    // Before the EAL: a listener that cannot start stops the appliance
    // before it takes any port.
    let mgmt = start_management(cfg)?;
    let mut b = boot(cfg)?;
    let setups = port_setups(cfg);
    let workers = cfg.eal.worker_lcores.clone();
    let stop = install_signal_handler();
    let reload = Arc::new(AtomicBool::new(false));
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone()) {
        tracing::warn!("cannot install the SIGHUP (reload) handler: {e}");
    }
    let reopen = Arc::new(AtomicBool::new(false));
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGUSR1, reopen.clone()) {
        tracing::warn!("cannot install the SIGUSR1 (reopen the access log) handler: {e}");
    }
    let worker_stop = Arc::new(AtomicBool::new(false));
    let mut shared = Vec::new();
    let mut links = Vec::new();
    let hz = qsplice_netdev::Clock::hz(&TscClock::new(b.eal));
    let mut lb = match &cfg.lb {
        Some(l) => Some(LbRuntime::new(cfg, l, workers.len(), hz)?),
        None => None,
    };
    // The cluster's flow sync: rings between the lcores and its thread,
    // and the backend-side addresses taken over from dead nodes.
    let flowsync = match (&cfg.cluster, lb.as_mut()) {
        (Some(c), Some(l)) if c.flow_sync => {
            let claims = Arc::new(qsplice_engine::AddrClaims::new());
            let fs = Arc::new(
                qsplice_lb::FlowSyncShared::new(workers.len(), c.flow_queue, claims)
                    .with_lookup_rate(c.adopt_max_pps),
            );
            l.set_flowsync(fs.clone());
            Some(fs)
        }
        _ => None,
    };
    for (i, lcore) in workers.iter().enumerate() {
        let sc = Arc::new(SharedCounters::default());
        let link = ControlLink::new(1024);
        let qs = std::mem::take(&mut b.queues[i]);
        let ports: Vec<(EthQueue, PortSetup)> =
            qs.into_iter().zip(setups.iter().cloned()).collect();
        let kq = std::mem::take(&mut b.kernel_queues[i]);
        let conf = engine_conf(cfg, i == 0);
        let clock = TscClock::new(b.eal);
        let (sc2, link2, st) = (sc.clone(), link.clone(), worker_stop.clone());
        let lb_core = lb.as_mut().map(|l| l.core_parts(i));
        b.eal
            .launch(*lcore, move || {
                // Built on the lcore itself: the worker's memory is first
                // touched on its own NUMA node.
                match lb_core {
                    Some((lconf, lshared)) => {
                        let claims = lshared.flowsync.as_ref().map(|f| f.claims.clone());
                        let bp = lconf.backend_port;
                        let svc = qsplice_lb::LbCore::new(lconf, lshared);
                        let mut w = Worker::with_service(conf, ports, clock, sc2, Some(link2), svc);
                        for (pi, q) in kq {
                            w.attach_kernel(pi, q);
                        }
                        if let Some(c) = claims {
                            w.attach_claims(bp, c);
                        }
                        w.run(&st);
                    }
                    None => {
                        let mut w = Worker::new(conf, ports, clock, sc2, Some(link2));
                        for (pi, q) in kq {
                            w.attach_kernel(pi, q);
                        }
                        w.run(&st);
                    }
                }
                0
            })
            .with_context(|| format!("launch worker on lcore {lcore}"))?;
        shared.push(sc);
        links.push(link);
    }
    tracing::info!(workers = ?workers, "workers running");

    let started = Instant::now();
    let mut routes = cfg
        .bgp
        .as_ref()
        .map(|c| crate::routes::RouteCtl::new(c, workers.len(), started));
    let cluster = match (&cfg.cluster, lb.as_mut()) {
        (Some(c), Some(l)) => {
            let s = crate::cluster::start(c, flowsync.clone(), l)?;
            crate::cluster::publish(&s.sync, l);
            l.share_rows();
            Some(s)
        }
        _ => None,
    };
    let mut next_cluster_keys = started;
    let ctl_clock = TscClock::new(b.eal);
    let mut neighbors: BTreeSet<NeighborReport> = BTreeSet::new();
    let interval = Duration::from_millis(cfg.engine.stats_interval_ms);
    let mut next_stats = started + interval;
    // Graceful shutdown: the deadline of the grace period once it began.
    let mut draining: Option<Instant> = None;
    // [bgp]: the routes were withdrawn for a shutdown; it proceeds then.
    let mut withdrawn_until: Option<Instant> = None;
    loop {
        // A stop request (signal, --duration, `ctl shutdown`): consumed,
        // so a second signal during the grace period is seen as such.
        let mut asked = stop.swap(false, Ordering::SeqCst)
            || (draining.is_none()
                && withdrawn_until.is_none()
                && opts.duration.is_some_and(|d| started.elapsed() >= d));
        // With [bgp], a shutdown first withdraws the routes and keeps
        // taking new connections for `bgp.withdraw_delay_ms`, while the
        // router moves the traffic to the other nodes; then it drains as
        // usual. A second request ends the wait at once.
        if let (Some(rc), None) = (routes.as_mut(), draining) {
            match withdrawn_until {
                None if asked => {
                    rc.withdraw_all();
                    let delay = cfg.bgp.as_ref().map_or(0, |c| c.withdraw_delay_ms);
                    tracing::info!(
                        delay_ms = delay,
                        "shutdown: routes withdrawn; still taking new connections while the router moves away"
                    );
                    withdrawn_until = Some(Instant::now() + Duration::from_millis(delay));
                    asked = false;
                }
                Some(t) if !asked && Instant::now() >= t => asked = true,
                _ => {}
            }
        }
        match (draining, lb.as_ref()) {
            (None, Some(l)) if asked && !l.shutdown_grace().is_zero() => {
                l.set_accept_mode(qsplice_lb::AcceptMode::Draining);
                let open = l.open_connections();
                tracing::info!(
                    open,
                    grace_s = l.shutdown_grace().as_secs(),
                    "shutdown: new connections refused; waiting for open connections to finish"
                );
                draining = Some(Instant::now() + l.shutdown_grace());
            }
            (None, _) if asked => break,
            (Some(deadline), Some(l)) => {
                let open = l.open_connections();
                if open == 0 || asked || Instant::now() >= deadline {
                    if open > 0 {
                        tracing::warn!(
                            open,
                            "shutdown: {}; resetting what is still open",
                            if asked {
                                "asked again"
                            } else {
                                "grace period over"
                            }
                        );
                    } else {
                        tracing::info!("shutdown: every connection finished");
                    }
                    break;
                }
            }
            _ => {}
        }
        // Relay what one worker learned to the others (share-nothing tables).
        relay_neighbours_with(&links, |port, ip, mac| {
            let name = cfg
                .ports
                .get(port as usize)
                .map(|p| p.name.clone())
                .unwrap_or_default();
            let entry = NeighborReport {
                port: name.clone(),
                ip: ip.to_string(),
                mac: mac.to_string(),
            };
            if !neighbors.contains(&entry) {
                neighbors.retain(|n| !(n.port == name && n.ip == entry.ip));
                neighbors.insert(entry);
                tracing::info!(port = %name, %ip, %mac, "neighbour learned");
            }
        });
        if reload.swap(false, Ordering::SeqCst) {
            let _ = reload_config(cfg, opts, lb.as_mut(), "SIGHUP");
        }
        if let Some(rc) = routes.as_mut() {
            rc.step(
                &b,
                &shared,
                lb.as_ref(),
                draining.is_some() || withdrawn_until.is_some(),
                Instant::now(),
            );
        }
        if let (Some(c), Some(l)) = (&cluster, lb.as_mut()) {
            // A reload may have replaced a VIP's keys.
            if Instant::now() >= next_cluster_keys {
                crate::cluster::publish(&c.sync, l);
                next_cluster_keys = Instant::now() + Duration::from_millis(100);
            }
            crate::cluster::exchange_rows(&c.sync, l);
        }
        if let Some(l) = lb.as_mut() {
            l.control(Instant::now());
            l.drain_access_log(qsplice_netdev::Clock::now(&ctl_clock));
            if reopen.swap(false, Ordering::SeqCst) {
                if let Err(e) = l.reopen_access_log() {
                    tracing::error!("SIGUSR1: {e:#}");
                }
            }
        }
        if let Some(m) = &mgmt {
            m.poll(&mut ApiCtl {
                b: &b,
                shared: &shared,
                neighbors: &neighbors,
                started,
                lb: lb.as_mut(),
                opts,
                stop: &stop,
                cfg,
                routes: routes.as_ref(),
                cluster: cluster.as_ref(),
            });
        }
        if cfg.engine.stats_interval_ms > 0 && Instant::now() >= next_stats {
            next_stats += interval;
            let mut r = report(&b, &shared, &neighbors, started, lb.as_ref());
            r.bgp = routes.as_ref().map(crate::routes::RouteCtl::report);
            r.cluster = cluster.as_ref().map(crate::cluster::report);
            println!("{}", r.render());
            if opts.live_json {
                if let Some(p) = &opts.stats_json {
                    write_json(p, &r)?;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if let Some(rc) = routes.as_mut() {
        // Before anything is reset: the router stops sending here first.
        rc.withdraw_all();
    }
    if let Some(l) = lb.as_ref() {
        // Every lcore resets what is still open on its next tick (1 ms),
        // then the workers stop.
        l.set_accept_mode(qsplice_lb::AcceptMode::Reset);
        std::thread::sleep(Duration::from_millis(30));
    }
    worker_stop.store(true, Ordering::SeqCst);
    for (i, l) in workers.iter().enumerate() {
        let code = b.eal.wait(*l);
        if code != 0 {
            tracing::error!(worker = i, lcore = l, code, "worker exited with an error");
        }
    }
    if let Some(l) = lb.as_mut() {
        // What the lcores logged last (the shutdown resets among it).
        l.drain_access_log(qsplice_netdev::Clock::now(&ctl_clock));
    }
    let mut r = report(&b, &shared, &neighbors, started, lb.as_ref());
    r.bgp = routes.as_ref().map(crate::routes::RouteCtl::report);
    r.cluster = cluster.as_ref().map(crate::cluster::report);
    if let Some(c) = cluster {
        // The dataplane stopped: a survivor may take our address now.
        c.leave();
    }
    for p in b.ports.iter_mut().chain(b.kernel_ports.iter_mut()) {
        p.stop();
    }
    for p in &cfg.ports {
        crate::kernel::cleanup(p);
    }
    if let Some(p) = &opts.stats_json {
        write_json(p, &r)?;
    }
    Ok(r)
}

/// SIGHUP or `POST /api/v1/reload`: re-read the config and apply what can
/// change while running. `Ok(changes)` or why nothing was applied.
fn reload_config(
    running: &Config,
    opts: &RunOpts,
    lb: Option<&mut LbRuntime>,
    why: &str,
) -> Result<usize, String> {
    let Some(path) = &opts.config_path else {
        tracing::warn!("{why}: no config file to reload");
        return Err("no config file to reload".into());
    };
    let cfg = match qsplice_config::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{why}: config not reloaded: {e}");
            return Err(format!("config not reloaded: {e}"));
        }
    };
    // Only [lb] changes live: any other section that changed refuses the
    // whole reload (named), rather than being ignored.
    if let Some(k) = changed_section(running, &cfg) {
        tracing::error!("{why}: config not reloaded: `{k}` changed: it takes a restart to apply");
        return Err(format!(
            "config not reloaded: `{k}` changed: it takes a restart to apply (a reload applies parts of [lb] only)"
        ));
    }
    match (lb, &cfg.lb) {
        (Some(l), Some(new)) => match l.reconfigure(new) {
            Ok(n) => {
                tracing::info!(changes = n, "{why}: config reloaded");
                Ok(n)
            }
            Err(e) => {
                tracing::error!("{why}: config not reloaded: {e}");
                Err(format!("config not reloaded: {e}"))
            }
        },
        _ => {
            tracing::info!("{why}: nothing to reload without an [lb] section");
            Err("nothing to reload without an [lb] section".into())
        }
    }
}

/// The first section of `new` outside `[lb]` that differs from `running`.
fn changed_section(running: &Config, new: &Config) -> Option<&'static str> {
    macro_rules! check {
        ($($f:ident => $name:expr),*) => {
            $( if running.$f != new.$f { return Some($name); } )*
        };
    }
    check!(
        eal => "eal", mempool => "mempool", engine => "engine", arp => "arp", ports => "ports",
        log => "log", management => "management", dhcp_server => "dhcp_server",
        dhcp_tester => "dhcp_tester", pktgen => "pktgen"
    );
    if running.lb.is_some() != new.lb.is_some() {
        return Some("lb (section added or removed)");
    }
    None
}

/// The management API's view of the running appliance (built per poll).
struct ApiCtl<'a> {
    b: &'a Booted,
    shared: &'a [Arc<SharedCounters>],
    neighbors: &'a BTreeSet<NeighborReport>,
    started: Instant,
    lb: Option<&'a mut LbRuntime>,
    opts: &'a RunOpts,
    stop: &'a AtomicBool,
    cfg: &'a Config,
    routes: Option<&'a crate::routes::RouteCtl>,
    cluster: Option<&'a crate::cluster::Cluster>,
}

impl qsplice_mgmt::Control for ApiCtl<'_> {
    fn report(&self) -> Report {
        let mut r = report(
            self.b,
            self.shared,
            self.neighbors,
            self.started,
            self.lb.as_deref(),
        );
        r.bgp = self.routes.map(crate::routes::RouteCtl::report);
        r.cluster = self.cluster.map(crate::cluster::report);
        r
    }

    fn sessions(
        &self,
        vip: &str,
        offset: usize,
        limit: usize,
    ) -> Result<serde_json::Value, qsplice_mgmt::ApiError> {
        match self.lb.as_deref() {
            Some(l) => l.sessions(vip, offset, limit),
            None => Err(qsplice_mgmt::ApiError::not_found("no [lb] configured")),
        }
    }

    fn reload(&mut self) -> Result<serde_json::Value, qsplice_mgmt::ApiError> {
        reload_config(
            self.cfg,
            self.opts,
            self.lb.as_deref_mut(),
            "management API reload",
        )
        .map(|n| serde_json::json!({ "reloaded": true, "changes": n }))
        .map_err(qsplice_mgmt::ApiError::conflict)
    }

    fn reopen_access_log(&mut self) -> Result<serde_json::Value, qsplice_mgmt::ApiError> {
        match self.lb.as_deref_mut().map(LbRuntime::reopen_access_log) {
            Some(Ok(true)) => Ok(serde_json::json!({ "reopened": true })),
            Some(Ok(false)) | None => Err(qsplice_mgmt::ApiError::conflict(
                "no access log is configured ([lb.access_log] path)",
            )),
            Some(Err(e)) => Err(qsplice_mgmt::ApiError::conflict(format!("{e:#}"))),
        }
    }

    fn shutdown(&mut self) -> Result<serde_json::Value, qsplice_mgmt::ApiError> {
        self.stop.store(true, Ordering::SeqCst);
        let grace = self
            .lb
            .as_deref()
            .map_or(0, |l| l.shutdown_grace().as_secs());
        Ok(serde_json::json!({ "shutdown": true, "grace_s": grace }))
    }

    fn set_backend(
        &mut self,
        vip: &str,
        backend: &str,
        change: &qsplice_mgmt::BackendChange,
    ) -> Result<serde_json::Value, qsplice_mgmt::ApiError> {
        self.apply_edit(|l| qsplice_balancer::edit::set_backend(l, vip, backend, change))
    }

    fn change(
        &mut self,
        c: qsplice_mgmt::Change,
    ) -> Result<serde_json::Value, qsplice_mgmt::ApiError> {
        use qsplice_mgmt::{ApiError, Change};
        match c {
            Change::RotateTickets { vip } => match self.lb.as_deref_mut() {
                Some(l) => l.rotate_tickets(vip.as_deref()),
                None => Err(ApiError::not_found("no [lb] configured")),
            },
            Change::ReloadTls => {
                // The running config again: every terminated VIP's
                // certificate files are read anew (and nothing else moves).
                let Some(l) = self.lb.as_deref_mut() else {
                    return Err(ApiError::not_found("no [lb] configured"));
                };
                let running = l.running().clone();
                l.reconfigure(&running)
                    .map(|n| serde_json::json!({ "reloaded": "tls", "changes": n }))
                    .map_err(|e| ApiError::conflict(format!("TLS not reloaded: {e}")))
            }
            c => self.apply_edit(|l| qsplice_balancer::edit::edit(l, &c)),
        }
    }
}

impl ApiCtl<'_> {
    /// A management API change: an edit of the running `[lb]` section,
    /// validated with the rest of the running config the way a file is,
    /// then applied all or nothing (the reload path).
    fn apply_edit(
        &mut self,
        f: impl FnOnce(
            &mut qsplice_config::LbConf,
        ) -> Result<qsplice_balancer::edit::Edit, qsplice_mgmt::ApiError>,
    ) -> Result<serde_json::Value, qsplice_mgmt::ApiError> {
        use qsplice_mgmt::ApiError;
        let Some(l) = self.lb.as_deref_mut() else {
            return Err(ApiError::not_found("no [lb] configured"));
        };
        let mut new = l.running().clone();
        let edit = f(&mut new)?;
        let mut cfg = self.cfg.clone();
        cfg.lb = Some(new);
        if let Err(e) = cfg.validate() {
            return Err(ApiError::bad_request(format!("refused: {e}")));
        }
        let Some(new) = cfg.lb.as_ref() else {
            return Err(ApiError::bad_request("no [lb]"));
        };
        let n = l
            .reconfigure(new)
            .map_err(|e| ApiError::conflict(format!("refused: {e}")))?;
        let mut out = edit.summary;
        if let Some((vip, backend)) = edit.force {
            let reset = l.force_reset_addr(vip, backend);
            out["reset_backends"] = serde_json::json!(reset);
        }
        out["changes"] = serde_json::json!(n);
        Ok(out)
    }
}

/// Start the management listener of `cfg` (None when `listen = "off"`).
fn start_management(cfg: &Config) -> Result<Option<qsplice_mgmt::MgmtServer>> {
    use qsplice_config::ManagementListen;
    let m = &cfg.management;
    let listen = match m.parse_listen().map_err(anyhow::Error::msg)? {
        ManagementListen::Off => return Ok(None),
        ManagementListen::Tcp(a) => qsplice_mgmt::Listen::Tcp(a),
        ManagementListen::Unix(p) => qsplice_mgmt::Listen::Unix(p),
    };
    let token = match &m.token_file {
        Some(f) => Some(qsplice_mgmt::server::read_token(std::path::Path::new(f))?),
        None => None,
    };
    let authed = token.is_some();
    let s = qsplice_mgmt::MgmtServer::bind(&listen, token)?;
    tracing::info!(listen = %s.local_addr(), token = authed, "management listener up");
    Ok(Some(s))
}

fn report(
    b: &Booted,
    shared: &[Arc<SharedCounters>],
    neighbors: &BTreeSet<NeighborReport>,
    started: Instant,
    lb: Option<&LbRuntime>,
) -> Report {
    let per: Vec<Counters> = shared.iter().map(|s| s.snapshot()).collect();
    let mut total = Counters::default();
    for c in &per {
        total.add(c);
    }
    let ports = b
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let st = p.stats();
            let info = p.info();
            PortReport {
                name: b.names.get(i).cloned().unwrap_or_default(),
                device: info.name.clone(),
                mac: mac_str(info.mac),
                socket: info.socket,
                ipackets: st.ipackets,
                opackets: st.opackets,
                imissed: st.imissed,
                ierrors: st.ierrors,
                oerrors: st.oerrors,
                rx_nombuf: st.rx_nombuf,
            }
        })
        .collect();
    Report {
        uptime_s: started.elapsed().as_secs_f64(),
        total: counter_map(&total),
        per_core: per.iter().map(counter_map).collect(),
        ports,
        neighbors: neighbors.iter().cloned().collect(),
        lb: lb.map(LbRuntime::report),
        bgp: None,
        cluster: None,
        mempools: b
            .pools
            .iter()
            .map(|(n, p)| (n.clone(), p.available(), p.size()))
            .collect(),
    }
}

/// Options of `qsplice fwd-bench`.
#[derive(Clone, Debug)]
pub struct FwdBenchOpts {
    /// io or macswap.
    pub mode: FwdMode,
    /// Measurement time after warm-up.
    pub seconds: f64,
    /// Warm-up time (not measured).
    pub warmup: f64,
}

/// Result of `qsplice fwd-bench`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FwdBenchResult {
    /// "io" or "macswap".
    pub mode: String,
    /// Worker lcores used.
    pub lcores: usize,
    /// Packets forwarded per second, all lcores.
    pub pps: f64,
    /// Per-lcore Mpps.
    pub mpps_per_lcore: f64,
    /// Frames the device refused (tx full).
    pub tx_full: u64,
}

/// `qsplice fwd-bench`: the engine's forwarding loop between port pairs
/// (use `net_null` vdevs for a pure software measurement, comparable with
/// `dpdk-testpmd --forward-mode=io|macswap`).
pub fn fwd_bench(cfg: &Config, opts: &FwdBenchOpts) -> Result<FwdBenchResult> {
    let mut b = boot(cfg)?;
    let stop = Arc::new(AtomicBool::new(false));
    let workers = cfg.eal.worker_lcores.clone();
    let mut shared = Vec::new();
    for (i, lcore) in workers.iter().enumerate() {
        let sc = Arc::new(SharedCounters::default());
        let qs = std::mem::take(&mut b.queues[i]);
        let (sc2, st, mode, burst) = (
            sc.clone(),
            stop.clone(),
            opts.mode,
            cfg.engine.burst as usize,
        );
        b.eal.launch(*lcore, move || {
            let mut f = Forwarder::new(qs, mode, burst, sc2);
            f.run(&st);
            0
        })?;
        shared.push(sc);
    }
    let sum = |sh: &[Arc<SharedCounters>]| -> (u64, u64) {
        sh.iter().map(|s| s.snapshot()).fold((0, 0), |(t, d), c| {
            (
                t + c.tx_packets,
                d + c.drops_of(qsplice_engine::DropReason::TxFull),
            )
        })
    };
    std::thread::sleep(Duration::from_secs_f64(opts.warmup));
    let (t0, d0) = sum(&shared);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(opts.seconds));
    let (t1, d1) = sum(&shared);
    let dt = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    for l in &workers {
        b.eal.wait(*l);
    }
    for p in b.ports.iter_mut().chain(b.kernel_ports.iter_mut()) {
        p.stop();
    }
    for p in &cfg.ports {
        crate::kernel::cleanup(p);
    }
    let pps = (t1 - t0) as f64 / dt;
    Ok(FwdBenchResult {
        mode: match opts.mode {
            FwdMode::Io => "io".into(),
            FwdMode::MacSwap => "macswap".into(),
        },
        lcores: workers.len(),
        pps,
        mpps_per_lcore: pps / 1e6 / workers.len() as f64,
        tx_full: d1 - d0,
    })
}
