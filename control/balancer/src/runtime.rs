//! [`LbRuntime`]: the balancer as the control thread runs it.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{Error, Result};
use arc_swap::ArcSwap;
use crossbeam::queue::ArrayQueue;
use qsplice_config::{BackendStateConf, Config, HealthKind, PolicyConf, TcpCongestion};
use qsplice_config::{TlsGroupConf, TlsModeConf, TlsPolicyConf};
use qsplice_lb::health::{HealthCheck, HealthResult, HealthShared, ProbeKind};
use qsplice_lb::{
    BackendCounters, ContentRule, ContentVip, EventKind, LbConf, LbCounters, LbShared, PoolBoard,
    SessionShared, SharedLbCounters, TlsVip, VipConf,
};
pub use qsplice_mgmt::report::{
    BackendReport, HistReport, LbReport, SessionRowReport, VipReport, TABLE_DUMP_ROWS,
};
use qsplice_mgmt::report::{CertReport, TicketReport};
use qsplice_mgmt::{ApiError, BackendChange};
use qsplice_pool::{Backend, BackendState, Policy, Snapshot, MAGLEV_M};
use qsplice_sessions::SessionTable;
use qsplice_splice::isn::IsnSecret;
use qsplice_tls::certs::CertSpec;
use qsplice_tls::{Group, PqPolicy, TlsContext, TlsSettings, TlsStats};

/// Session-learning events queued from the lcores at most.
const SESSION_EVENTS: usize = 65_536;
/// The session table is republished at most this often when building a
/// snapshot is slow (a large table); small tables are republished at every
/// control step that changed them. Never more than half a sweep interval.
const SESSION_PUBLISH_MAX: Duration = Duration::from_millis(100);

/// Steering inbox size per lcore.
const INBOX: usize = 4096;
/// How often the pools are republished with fresh connection totals
/// (least-connections).
const LOAD_REFRESH: Duration = Duration::from_millis(100);

#[derive(Clone, Debug)]
struct BackendCtl {
    addr: SocketAddrV4,
    weight: u32,
    max_conns: u32,
    admin: BackendStateConf,
    /// Health verdict (true until checks say otherwise).
    healthy: bool,
    ok_streak: u32,
    fail_streak: u32,
    checks: u64,
    last_error: &'static str,
    next_check: Instant,
    /// See `qsplice_pool::Backend::reset_epoch`.
    reset_epoch: u32,
}

#[derive(Clone, Debug)]
struct VipCtl {
    name: String,
    addr: SocketAddrV4,
    policy: Policy,
    session_aware: bool,
    backends: Vec<BackendCtl>,
}

/// The balancer as the control thread runs it.
#[derive(Debug)]
pub struct LbRuntime<F> {
    vips: Vec<VipCtl>,
    board: Arc<PoolBoard>,
    counters: Vec<Arc<SharedLbCounters>>,
    hists: Vec<Arc<qsplice_lb::SharedLbHists>>,
    /// The access log (`[lb.access_log]`), drained by [`Self::drain_access_log`].
    access: Option<crate::accesslog::AccessLog>,
    backends: Vec<Arc<BackendCounters>>,
    inboxes: Arc<Vec<ArrayQueue<F>>>,
    health: Arc<HealthShared>,
    health_conf: qsplice_config::HealthConf,
    /// The `[lb]` section now in force (a reload compares against it).
    running: qsplice_config::LbConf,
    template: LbConf,
    /// Per lcore: its TLS counters per terminated VIP.
    tls_stats: Vec<Arc<ArcSwap<Vec<TlsStats>>>>,
    version: u64,
    /// `lb.shutdown_grace_s`.
    shutdown_grace: Duration,
    next_load_refresh: Instant,
    token: u32,
    /// Session-aware dispatch: the table per pool, shared state, timers.
    sessions: Option<Arc<SessionShared>>,
    tables: Vec<SessionTable>,
    sessions_conf: qsplice_config::SessionsConf,
    sessions_dirty: bool,
    next_sweep: Instant,
    next_session_publish: Instant,
    epoch: Instant,
    view: ViewLag,
}

/// How stale the lcores' view of the session table gets: for every event
/// an lcore queued, the time until a snapshot containing it was published
/// (what the lcores then load). Control thread only.
#[derive(Debug, Default)]
struct ViewLag {
    /// Applied since the last publication: count, sum and minimum of
    /// their queueing times (µs since the shared epoch).
    pending: u64,
    pending_sum: u128,
    pending_oldest: Option<u64>,
    /// Over the run.
    events: u64,
    lagged: u64,
    sum_us: u128,
    max_us: u64,
    publishes: u64,
    build: Duration,
    build_max: Duration,
}

impl ViewLag {
    fn applied(&mut self, at_us: u64) {
        self.pending += 1;
        self.pending_sum += u128::from(at_us);
        self.pending_oldest = Some(self.pending_oldest.map_or(at_us, |o| o.min(at_us)));
    }

    fn published(&mut self, now_us: u64, build: Duration) {
        self.publishes += 1;
        self.build = build;
        self.build_max = self.build_max.max(build);
        if let Some(oldest) = self.pending_oldest.take() {
            self.max_us = self.max_us.max(now_us.saturating_sub(oldest));
            self.sum_us +=
                (u128::from(now_us) * u128::from(self.pending)).saturating_sub(self.pending_sum);
            self.lagged += self.pending;
        }
        self.pending = 0;
        self.pending_sum = 0;
    }

    fn report(&self) -> BTreeMap<String, u64> {
        [
            ("events", self.events),
            ("publishes", self.publishes),
            ("view_lag_max_us", self.max_us),
            (
                "view_lag_avg_us",
                (self.sum_us / u128::from(self.lagged.max(1))) as u64,
            ),
            ("build_last_us", self.build.as_micros() as u64),
            ("build_max_us", self.build_max.as_micros() as u64),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

fn lb_map(c: &LbCounters) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    c.for_each(|k, v| {
        m.insert(k.to_string(), v);
    });
    m
}

fn policy(p: PolicyConf) -> Policy {
    match p {
        PolicyConf::RoundRobin => Policy::RoundRobin,
        PolicyConf::WeightedRoundRobin => Policy::WeightedRoundRobin,
        PolicyConf::LeastConnections => Policy::LeastConnections,
        PolicyConf::Maglev => Policy::Maglev,
        // Its fallback scheduler.
        PolicyConf::SessionAware => Policy::RoundRobin,
    }
}

/// 16 bytes from the kernel's CSPRNG (the cookie secret).
fn random_secret() -> Result<[u8; 16]> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| {
            Error(format!(
                "reading /dev/urandom for the SYN-cookie secret: {e}"
            ))
        })?;
    Ok(b)
}

impl<F> LbRuntime<F> {
    /// Set up from a validated config for `workers` lcores whose clock runs
    /// at `hz`.
    pub fn new(cfg: &Config, l: &qsplice_config::LbConf, workers: usize, hz: u64) -> Result<Self> {
        let cp = cfg.port_index(&l.client_port).unwrap_or(0);
        let bp = cfg.port_index(&l.backend_port).unwrap_or(0);
        let local = l
            .local
            .or_else(|| cfg.ports[bp].addresses.first().map(|c| c.addr))
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
        let mtu = |i: usize| cfg.ports[i].mtu.saturating_sub(40);
        let now = Instant::now();
        let vips: Vec<VipCtl> = l
            .vips
            .iter()
            .map(|v| VipCtl {
                name: v.name.clone(),
                addr: v.address,
                policy: policy(v.policy),
                session_aware: v.policy == PolicyConf::SessionAware,
                backends: v
                    .backends
                    .iter()
                    .map(|b| BackendCtl {
                        addr: b.address,
                        weight: b.weight,
                        max_conns: b.max_conns,
                        admin: b.state,
                        healthy: true,
                        ok_streak: 0,
                        fail_streak: 0,
                        checks: 0,
                        last_error: "",
                        // First check once ARP had a chance to resolve the
                        // backend (a check that finds no MAC fails).
                        next_check: now + Duration::from_millis(300),
                        reset_epoch: 0,
                    })
                    .collect(),
            })
            .collect();
        let sizes: Vec<usize> = vips.iter().map(|v| v.backends.len()).collect();
        let secret = IsnSecret::from_bytes(random_secret()?);
        let mut tls_vips = Vec::new();
        for (i, v) in l.vips.iter().enumerate() {
            if v.tls != TlsModeConf::Terminate {
                continue;
            }
            let Some(t) = &v.tls_options else {
                return Err(Error(format!("key `lb.vips[{i}].tls_options` is missing")));
            };
            let ctx = TlsContext::new(&tls_settings(t))
                .map_err(|e| Error(format!("key `lb.vips[{i}].tls_options`: {e}")))?;
            tls_vips.push(TlsVip {
                addr: v.address,
                pool: i,
                ctx: Arc::new(ArcSwap::from_pointee(ctx)),
                x_forwarded_for: t.x_forwarded_for,
            });
        }
        let template = LbConf {
            vips: vips
                .iter()
                .enumerate()
                .map(|(i, v)| VipConf {
                    addr: v.addr,
                    pool: i,
                    session_aware: v.session_aware,
                })
                .collect(),
            client_port: cp,
            backend_port: bp,
            local,
            sport_min: l.source_port_min,
            sport_max: l.source_port_max,
            lcore: 0,
            lcores: workers as u16,
            max_flows: l.max_flows as usize,
            max_connecting: l.max_connecting as usize,
            syn_rto_ms: l.syn_rto_ms,
            syn_retries: l.syn_retries,
            retries: l.retries,
            idle_timeout_ms: l.idle_timeout_s * 1000,
            linger_ms: l.linger_ms,
            client_mss: mtu(bp),
            backend_mss: mtu(cp),
            vip_ws: l.window_scale,
            min_mss: l.min_mss,
            congestion: congestion_of(l.tcp_congestion),
            syn_backlog: l.syn_backlog as usize,
            syn_rate: l.syn_rate,
            hz,
            secret,
            health_path: l.health.http_path.clone(),
            health_status: l.health.expect_status,
            tls_vips,
            tls_max_conns: l.tls_max_conns as usize,
            access_sample: l.access_log.sample,
            content: l
                .vips
                .iter()
                .filter(|v| !v.rules.is_empty())
                .map(|v| ContentVip {
                    addr: v.address,
                    rules: Arc::new(ArcSwap::from_pointee(content_rules(v))),
                })
                .collect(),
        };
        let mut rt = LbRuntime {
            board: Arc::new(PoolBoard::new(Vec::new())),
            counters: (0..workers)
                .map(|_| Arc::new(SharedLbCounters::default()))
                .collect(),
            hists: (0..workers).map(|_| Arc::default()).collect(),
            access: match &l.access_log.path {
                Some(p) => {
                    let rings: Vec<_> = (0..workers)
                        .map(|_| Arc::new(ArrayQueue::new(l.access_log.ring as usize)))
                        .collect();
                    let names = l.vips.iter().map(|v| (v.address, v.name.clone())).collect();
                    Some(crate::accesslog::AccessLog::new(p, rings, names, hz)?)
                }
                None => None,
            },
            backends: (0..workers)
                .map(|_| Arc::new(BackendCounters::new(&sizes)))
                .collect(),
            inboxes: Arc::new((0..workers).map(|_| ArrayQueue::new(INBOX)).collect()),
            health: Arc::new(HealthShared::new(256)),
            tls_stats: (0..workers)
                .map(|_| Arc::new(ArcSwap::from_pointee(Vec::new())))
                .collect(),
            health_conf: l.health.clone(),
            running: l.clone(),
            vips,
            template,
            version: 0,
            shutdown_grace: Duration::from_secs(l.shutdown_grace_s),
            next_load_refresh: now,
            token: 0,
            sessions: None,
            tables: Vec::new(),
            sessions_conf: l.sessions.clone(),
            sessions_dirty: false,
            next_sweep: now,
            next_session_publish: now,
            epoch: now,
            view: ViewLag::default(),
        };
        if rt.vips.iter().any(|v| v.session_aware) {
            let b = random_secret()?;
            let c = random_secret()?;
            let secret = (
                u64::from_le_bytes(b[..8].try_into().unwrap_or_default()),
                u64::from_le_bytes(c[..8].try_into().unwrap_or_default()),
            );
            let flows = (l.max_flows as usize).saturating_mul(workers);
            rt.sessions = Some(SessionShared::new(
                rt.vips.len(),
                secret,
                SESSION_EVENTS,
                flows,
            ));
            let max_age = l.sessions.max_age_s * 1000;
            rt.tables = (0..rt.vips.len())
                .map(|_| SessionTable::new(l.sessions.max_keys as usize, max_age))
                .collect();
        }
        rt.publish();
        Ok(rt)
    }

    /// Lcore `i`'s settings and shared handles.
    pub fn core_parts(&mut self, i: usize) -> (LbConf, LbShared<F>) {
        let mut c = self.template.clone();
        c.lcore = i as u16;
        let shared = LbShared {
            board: self.board.clone(),
            counters: self.counters[i].clone(),
            hists: self.hists[i].clone(),
            access: self.access.as_ref().map(|a| a.ring(i)),
            backends: self.backends[i].clone(),
            inboxes: self.inboxes.clone(),
            health: (i == 0).then(|| self.health.clone()),
            sessions: self.sessions.clone(),
            tls: self.tls_stats[i].clone(),
        };
        (c, shared)
    }

    fn active(&self, pool: usize, b: usize) -> u64 {
        self.backends.iter().map(|c| c.get(pool, b).active).sum()
    }

    /// Build and publish every pool's snapshot from the current state.
    fn publish(&mut self) {
        self.version += 1;
        let snaps = self
            .vips
            .iter()
            .enumerate()
            .map(|(pi, v)| {
                let backends = v
                    .backends
                    .iter()
                    .map(|b| {
                        let mut x = Backend::new(b.addr);
                        x.weight = b.weight;
                        x.max_conns = b.max_conns;
                        x.reset_epoch = b.reset_epoch;
                        x.state = match (b.admin, b.healthy) {
                            (BackendStateConf::Down, _) | (_, false) => BackendState::Down,
                            (BackendStateConf::Draining, _) => BackendState::Draining,
                            (BackendStateConf::Up, true) => BackendState::Up,
                        };
                        x
                    })
                    .collect();
                let conns = (0..v.backends.len())
                    .map(|b| self.active(pi, b).min(u64::from(u32::MAX)) as u32)
                    .collect();
                Snapshot::build(self.version, v.policy, backends, conns, MAGLEV_M)
            })
            .collect();
        self.board.publish(snaps);
    }

    /// Control-loop step: health checks, republishing.
    pub fn control(&mut self, now: Instant) {
        let mut changed = false;
        self.sessions_step(now);
        for t in &self.template.tls_vips {
            if let Some(k) = &t.ctx.load().tickets {
                if k.rotate_if_due(now) {
                    tracing::info!(vip = %t.addr, rotations = k.rotations(), "TLS ticket keys rotated");
                }
            }
        }
        // Results from the probing lcore.
        while let Some(r) = self.health.results.pop() {
            let h = &self.health_conf;
            let Some(v) = self.vips.get_mut(usize::from(r.pool)) else {
                continue;
            };
            let vip = v.name.as_str();
            let Some(b) = v.backends.get_mut(usize::from(r.backend)) else {
                continue;
            };
            b.checks += 1;
            match r.result {
                HealthResult::Up => {
                    b.ok_streak += 1;
                    b.fail_streak = 0;
                    if !b.healthy && b.ok_streak >= h.rise {
                        b.healthy = true;
                        changed = true;
                        tracing::info!(vip, backend = %b.addr, "backend up (health check)");
                    }
                }
                fail => {
                    b.fail_streak += 1;
                    b.ok_streak = 0;
                    b.last_error = fail.as_str();
                    if b.healthy && b.fail_streak >= h.fall {
                        b.healthy = false;
                        changed = true;
                        let reset = h.on_down == qsplice_config::OnDownConf::Reset;
                        if reset {
                            b.reset_epoch = b.reset_epoch.wrapping_add(1);
                        }
                        tracing::warn!(vip, backend = %b.addr, reason = fail.as_str(), reset_connections = reset, "backend down (health check)");
                    }
                }
            }
        }
        // Schedule due checks.
        if self.health_conf.enabled {
            let interval = Duration::from_millis(self.health_conf.interval_ms);
            let timeout_ms = self.health_conf.timeout_ms;
            let kind = match self.health_conf.kind {
                HealthKind::Tcp => ProbeKind::Tcp,
                HealthKind::Http => ProbeKind::Http,
            };
            for (pi, v) in self.vips.iter_mut().enumerate() {
                for (bi, b) in v.backends.iter_mut().enumerate() {
                    if b.admin == BackendStateConf::Down || now < b.next_check {
                        continue;
                    }
                    self.token = self.token.wrapping_add(1);
                    let check = HealthCheck {
                        pool: pi as u16,
                        backend: bi as u16,
                        addr: b.addr,
                        kind,
                        timeout_ms,
                        token: self.token,
                    };
                    if self.health.checks.push(check).is_ok() {
                        b.next_check = now + interval;
                    }
                }
            }
        }
        // Connection totals matter to least-connections and to any backend
        // with a limit (enforced across lcores: each adds its own opens
        // since the last publication).
        let loads = self.vips.iter().any(|v| {
            v.policy == Policy::LeastConnections || v.backends.iter().any(|b| b.max_conns > 0)
        });
        if changed || (loads && now >= self.next_load_refresh) {
            self.next_load_refresh = now + LOAD_REFRESH;
            self.publish();
        }
    }

    /// Session-aware dispatch: apply the lcores' events to the tables
    /// (open: the backend holds the session; close: it finished serving
    /// it, the row's timestamp moves; refused: it no longer holds it), sweep expired rows, republish.
    /// Publication follows every change unless building snapshots is slow,
    /// then at most every `2 × build time` (≤ 100 ms, ≤ half a sweep
    /// interval), and the resulting staleness is measured ([`ViewLag`]).
    fn sessions_step(&mut self, now: Instant) {
        let Some(shared) = self.sessions.clone() else {
            return;
        };
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        let mut n = 0;
        while let Some(ev) = shared.events.pop() {
            if let Some(t) = self.tables.get_mut(usize::from(ev.pool)) {
                match ev.kind {
                    EventKind::Open => t.learn(ev.key, ev.backend, ms),
                    EventKind::Close => t.finished(ev.key, ev.backend, ms),
                    EventKind::Refused => t.forget(ev.key, ev.backend),
                }
                self.view.applied(ev.at_us);
                self.view.events += 1;
                self.sessions_dirty = true;
            }
            n += 1;
            if n >= 100_000 {
                break;
            }
        }
        if now >= self.next_sweep {
            self.next_sweep = now + Duration::from_millis(self.sessions_conf.sweep_interval_ms);
            for (pi, t) in self.tables.iter_mut().enumerate() {
                let busy = |k, b| shared.busy.get(pi as u16, k, b) > 0;
                if t.sweep(ms, busy) > 0 {
                    self.sessions_dirty = true;
                }
            }
        }
        if self.sessions_dirty && now >= self.next_session_publish {
            self.sessions_dirty = false;
            let t0 = Instant::now();
            let snap: Vec<_> = self.tables.iter().map(SessionTable::snapshot).collect();
            shared.snap.store(Arc::new(snap));
            let build = t0.elapsed();
            self.view.published(shared.now_us(), build);
            let cap = SESSION_PUBLISH_MAX.min(Duration::from_millis(
                self.sessions_conf.sweep_interval_ms / 2,
            ));
            self.next_session_publish = now + (build * 2).min(cap);
        }
    }

    /// Apply a reloaded `[lb]` section: backend state, weight and limit,
    /// VIP policies, and the health-check timers and thresholds. The VIPs
    /// (names, addresses) and each VIP's backend addresses must be as
    /// before, and so must what the lcores were built with (ports, source
    /// range, table sizes, timeouts, check kind and path); a difference is
    /// an error naming the key, and nothing changes. Returns how many
    /// settings changed.
    pub fn reconfigure(&mut self, l: &qsplice_config::LbConf) -> Result<usize> {
        let h = &l.health;
        // All or nothing: a reload applies only what the running balancer
        // can change live; any other changed key refuses the whole reload,
        // named, instead of being silently ignored.
        if let Some(k) = unchangeable_key(&self.running, l) {
            return Err(Error(format!(
                "key `{k}` changed: it takes a restart to apply (a reload applies backends' weight, max_conns and state, VIP policies other than to or from session-aware, [lb.health] and lb.shutdown_grace_s)"
            )));
        }
        // Every terminated VIP's TLS context is rebuilt — certificate files
        // are read again even when their paths did not change, as a rotated
        // certificate is replaced in place — before anything is applied: a
        // bad certificate refuses the whole reload.
        let mut new_ctx = Vec::new();
        for (i, (old, new)) in self.running.vips.iter().zip(&l.vips).enumerate() {
            let (Some(ot), Some(nt)) = (&old.tls_options, &new.tls_options) else {
                continue;
            };
            let Some(ti) = self
                .template
                .tls_vips
                .iter()
                .position(|t| t.addr == new.address)
            else {
                continue;
            };
            let ctx = self.template.tls_vips[ti]
                .ctx
                .load()
                .rebuild(&tls_settings(nt))
                .map_err(|e| Error(format!("key `lb.vips[{i}].tls_options`: {e}")))?;
            new_ctx.push((ti, new.name.clone(), ctx, ot != nt));
        }
        let mut n = 0;
        for (old, new) in self.running.vips.iter().zip(&l.vips) {
            if old.rules == new.rules {
                continue;
            }
            if let Some(c) = self.template.content.iter().find(|c| c.addr == new.address) {
                c.rules.store(Arc::new(content_rules(new)));
                tracing::info!(vip = %new.name, rules = new.rules.len(), "content rules reloaded");
                n += 1;
            }
        }
        for (ti, name, ctx, changed) in new_ctx {
            self.template.tls_vips[ti].ctx.store(Arc::new(ctx));
            tracing::info!(vip = %name, options_changed = changed, "TLS configuration and certificates reloaded (new handshakes use them)");
            n += usize::from(changed);
        }
        for (old, new) in self.vips.iter_mut().zip(&l.vips) {
            let vip = old.name.as_str();
            let p = policy(new.policy);
            n += usize::from(old.policy != p);
            old.policy = p;
            for (b, nb) in old.backends.iter_mut().zip(&new.backends) {
                n += usize::from(b.weight != nb.weight)
                    + usize::from(b.max_conns != nb.max_conns)
                    + usize::from(b.admin != nb.state);
                if b.admin != nb.state {
                    tracing::info!(vip, backend = %b.addr, from = ?b.admin, to = ?nb.state, "backend state");
                }
                b.weight = nb.weight;
                b.max_conns = nb.max_conns;
                b.admin = nb.state;
            }
        }
        if self.health_conf != *h {
            n += 1;
            self.health_conf = h.clone();
        }
        if self.sessions_conf != l.sessions {
            for t in &mut self.tables {
                t.set_limits(l.sessions.max_keys as usize, l.sessions.max_age_s * 1000);
            }
            self.sessions_conf = l.sessions.clone();
            self.sessions_dirty = true;
            tracing::info!(
                max_keys = l.sessions.max_keys,
                max_age_s = l.sessions.max_age_s,
                "session tables' limits reloaded"
            );
            n += 1;
        }
        let grace = Duration::from_secs(l.shutdown_grace_s);
        if grace != self.shutdown_grace {
            n += 1;
            self.shutdown_grace = grace;
        }
        self.running = l.clone();
        self.publish();
        Ok(n)
    }

    /// Write what the lcores logged (`tsc_now`: their clock now).
    pub fn drain_access_log(&mut self, tsc_now: u64) {
        if let Some(a) = self.access.as_mut() {
            a.drain(tsc_now);
        }
    }

    /// Reopen the access log file (SIGUSR1, `POST /api/v1/access-log/reopen`).
    pub fn reopen_access_log(&mut self) -> Result<bool> {
        match self.access.as_mut() {
            Some(a) => a.reopen().map(|()| true),
            None => Ok(false),
        }
    }

    /// `lb.shutdown_grace_s`.
    pub fn shutdown_grace(&self) -> Duration {
        self.shutdown_grace
    }

    /// Tell every lcore whether to take new connections (shutdown).
    pub fn set_accept_mode(&self, m: qsplice_lb::AcceptMode) {
        self.board.set_mode(m);
    }

    /// Connections still open on every lcore: spliced (not yet closed),
    /// connecting, and TLS-terminated.
    pub fn open_connections(&self) -> u64 {
        let spliced: u64 = (0..self.vips.len())
            .flat_map(|pi| (0..self.vips[pi].backends.len()).map(move |b| (pi, b)))
            .map(|(pi, b)| self.active(pi, b))
            .sum();
        let others: u64 = self
            .counters
            .iter()
            .map(|c| {
                let s = c.snapshot();
                s.flows_connecting + s.tls_active
            })
            .sum();
        spliced + others
    }
    /// `POST /api/v1/vips/{vip}/backends/{address}`: change a backend's
    /// administrative state and/or weight at once (published to the lcores
    /// in this call). A runtime change, like HAProxy's runtime API: the
    /// next reload applies the file again.
    pub fn set_backend(
        &mut self,
        vip: &str,
        backend: &str,
        change: &BackendChange,
    ) -> std::result::Result<serde_json::Value, ApiError> {
        let state = match change.state.as_deref() {
            None => None,
            Some("up") => Some(BackendStateConf::Up),
            Some("down") => Some(BackendStateConf::Down),
            Some("draining" | "drain") => Some(BackendStateConf::Draining),
            Some(o) => {
                return Err(ApiError::bad_request(format!(
                    "state `{o}`: expected up, down or draining"
                )))
            }
        };
        if let Some(w) = change.weight {
            if !(1..=1000).contains(&w) {
                return Err(ApiError::bad_request(format!(
                    "weight {w}: must be 1..=1000"
                )));
            }
        }
        let vi = self
            .vips
            .iter()
            .position(|v| v.name == vip || v.addr.to_string() == vip)
            .ok_or_else(|| ApiError::not_found(format!("no VIP named `{vip}`")))?;
        let v = &mut self.vips[vi];
        let b = v
            .backends
            .iter_mut()
            .find(|b| b.addr.to_string() == backend)
            .ok_or_else(|| {
                ApiError::not_found(format!("VIP `{}` has no backend {backend}", v.name))
            })?;
        if let Some(st) = state {
            b.admin = st;
        }
        if let Some(w) = change.weight {
            b.weight = w;
        }
        let out = serde_json::json!({
            "vip": v.name,
            "backend": b.addr.to_string(),
            "admin": format!("{:?}", b.admin).to_lowercase(),
            "weight": b.weight,
        });
        tracing::info!(vip = %v.name, backend = %b.addr, admin = ?b.admin, weight = b.weight, "backend changed through the management API");
        self.publish();
        Ok(out)
    }

    /// `GET /api/v1/sessions/{vip}`: the mapping table's rows, most
    /// recently used first, `offset..offset + limit`.
    pub fn sessions(
        &self,
        vip: &str,
        offset: usize,
        limit: usize,
    ) -> std::result::Result<serde_json::Value, ApiError> {
        let pi = self
            .vips
            .iter()
            .position(|v| v.name == vip || v.addr.to_string() == vip)
            .ok_or_else(|| ApiError::not_found(format!("no VIP named `{vip}`")))?;
        let v = &self.vips[pi];
        let t = v
            .session_aware
            .then(|| self.tables.get(pi))
            .flatten()
            .ok_or_else(|| ApiError::not_found(format!("VIP `{}` is not session-aware", v.name)))?;
        let rows: Vec<serde_json::Value> = t
            .top(offset.saturating_add(limit))
            .into_iter()
            .skip(offset)
            .map(|(k, rows)| {
                serde_json::json!({
                    "key": format!("{:016x}", k.0),
                    "rows": rows.iter().map(|r| serde_json::json!({
                        "backend": v.backends.get(usize::from(r.backend)).map_or_else(
                            || r.backend.to_string(), |b| b.addr.to_string()),
                        "last_used_ms": r.ts,
                        "busy": self.sessions.as_ref().map_or(0, |sh| sh.busy.get(pi as u16, k, r.backend)),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        Ok(serde_json::json!({
            "vip": v.name,
            "total": t.len(),
            "offset": offset,
            "sessions": rows,
        }))
    }

    /// Counters and pool state.
    pub fn report(&self) -> LbReport {
        let per: Vec<LbCounters> = self.counters.iter().map(|c| c.snapshot()).collect();
        let mut total = LbCounters::default();
        for c in &per {
            total.add(c);
        }
        let vips = self
            .vips
            .iter()
            .enumerate()
            .map(|(pi, v)| {
                let mut vt = qsplice_lb::BackendStats::default();
                let backends = v
                    .backends
                    .iter()
                    .enumerate()
                    .map(|(bi, b)| {
                        let mut st = qsplice_lb::BackendStats::default();
                        for c in &self.backends {
                            st.add(&c.get(pi, bi));
                        }
                        vt.add(&st);
                        BackendReport {
                            address: b.addr.to_string(),
                            admin: format!("{:?}", b.admin).to_lowercase(),
                            weight: b.weight,
                            max_conns: b.max_conns,
                            healthy: b.healthy,
                            checks: b.checks,
                            last_error: b.last_error.to_string(),
                            active: st.active,
                            opened: st.opened,
                            failed: st.failed,
                            reset: st.reset,
                            spliced: st.spliced,
                            c2s_packets: st.c2s_packets,
                            c2s_bytes: st.c2s_bytes,
                            s2c_packets: st.s2c_packets,
                            s2c_bytes: st.s2c_bytes,
                            tls_new: st.tls_new,
                            tls_resumed: st.tls_resumed,
                        }
                    })
                    .collect();
                let total = [
                    ("active", vt.active),
                    ("opened", vt.opened),
                    ("spliced", vt.spliced),
                    ("failed", vt.failed),
                    ("reset", vt.reset),
                    ("c2s_packets", vt.c2s_packets),
                    ("c2s_bytes", vt.c2s_bytes),
                    ("s2c_packets", vt.s2c_packets),
                    ("s2c_bytes", vt.s2c_bytes),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                let tls = self
                    .template
                    .tls_vips
                    .iter()
                    .position(|t| t.addr == v.addr)
                    .map(|ti| {
                        let mut sum = TlsStats::default();
                        for lc in &self.tls_stats {
                            if let Some(st) = lc.load().get(ti) {
                                sum.merge(st);
                            }
                        }
                        sum.report()
                    });
                let sessions = (v.session_aware)
                    .then(|| self.tables.get(pi))
                    .flatten()
                    .map(|t| {
                        let st = t.stats();
                        [
                            ("sessions", t.len() as u64),
                            ("learned", st.learned),
                            ("expired", st.expired),
                            ("replaced", st.replaced),
                            ("evicted", st.evicted),
                            ("memory_bytes", t.memory() as u64),
                        ]
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect()
                    });
                let session_rows = (v.session_aware)
                    .then(|| self.tables.get(pi))
                    .flatten()
                    .map(|t| {
                        t.top(TABLE_DUMP_ROWS)
                            .into_iter()
                            .map(|(k, rows)| SessionRowReport {
                                key: format!("{:016x}", k.0),
                                rows: rows
                                    .iter()
                                    .map(|r| {
                                        (
                                            v.backends.get(usize::from(r.backend)).map_or_else(
                                                || r.backend.to_string(),
                                                |b| b.addr.to_string(),
                                            ),
                                            r.ts,
                                            // the lcores' counters are the
                                            // BUSY column (exact, no lag)
                                            match self.sessions.as_ref().map_or(0, |sh| {
                                                sh.busy.get(pi as u16, k, r.backend)
                                            }) {
                                                0 => "idle".to_string(),
                                                n => format!("busy({n})"),
                                            },
                                        )
                                    })
                                    .collect(),
                            })
                            .collect()
                    });
                let ctx = self
                    .template
                    .tls_vips
                    .iter()
                    .find(|t| t.addr == v.addr)
                    .map(|t| t.ctx.load_full());
                let certificates = ctx
                    .iter()
                    .flat_map(|c| c.served())
                    .map(|c| CertReport {
                        names: c.names.clone(),
                        subject: c.subject.clone(),
                        not_after: c.not_after,
                    })
                    .collect();
                let tickets = ctx.as_ref().and_then(|c| c.tickets.as_ref()).map(|k| {
                    let (issued, accepted, rejected) = k.counts();
                    TicketReport {
                        rotations: k.rotations(),
                        key_age_s: k.key_age(Instant::now()).as_secs(),
                        rotation_s: k.interval().as_secs(),
                        issued,
                        accepted,
                        rejected,
                    }
                });
                VipReport {
                    name: v.name.clone(),
                    address: v.addr.to_string(),
                    total,
                    backends,
                    sessions,
                    session_rows,
                    tls,
                    certificates,
                    tickets,
                }
            })
            .collect();
        let mut hists = qsplice_lb::LbHists::default();
        for h in &self.hists {
            hists.add(&h.snapshot());
        }
        let mut histograms = BTreeMap::new();
        hists.for_each(|name, h| {
            histograms.insert(
                name.to_string(),
                HistReport {
                    bounds_us: qsplice_lb::hist::BOUNDS_US.to_vec(),
                    counts: h.counts.to_vec(),
                    sum_us: h.sum_us,
                },
            );
        });
        LbReport {
            histograms,
            total: lb_map(&total),
            per_core: per.iter().map(lb_map).collect(),
            session_view: self.sessions.is_some().then(|| self.view.report()),
            vips,
        }
    }
}

fn tls_settings(t: &qsplice_config::VipTlsConf) -> TlsSettings {
    TlsSettings {
        tls12: t.tls12,
        groups: t
            .groups
            .iter()
            .map(|g| match g {
                TlsGroupConf::X25519MlKem768 => Group::X25519MlKem768,
                TlsGroupConf::SecP256r1MlKem768 => Group::SecP256r1MlKem768,
                TlsGroupConf::MlKem768 => Group::MlKem768,
                TlsGroupConf::MlKem1024 => Group::MlKem1024,
                TlsGroupConf::X25519 => Group::X25519,
                TlsGroupConf::Secp256r1 => Group::P256,
                TlsGroupConf::Secp384r1 => Group::P384,
            })
            .collect(),
        policy: match t.policy {
            TlsPolicyConf::Prefer => PqPolicy::Prefer,
            TlsPolicyConf::Require => PqPolicy::Require,
        },
        cipher_suites: t.cipher_suites.clone(),
        prefer_server_ciphers: t.prefer_server_ciphers,
        alpn: t.alpn.iter().map(|a| a.as_bytes().to_vec()).collect(),
        certs: t
            .certificates
            .iter()
            .map(|c| CertSpec {
                cert: c.cert.clone(),
                key: c.key.clone(),
                names: c.names.clone(),
                ocsp: c.ocsp.clone(),
            })
            .collect(),
        tickets: t.tickets,
        ticket_rotation: Duration::from_secs(t.ticket_rotation_s),
        tickets_per_handshake: 1,
        session_cache: t.session_cache as usize,
        session_ttl: Duration::from_secs(t.session_ttl_s),
        handshake_timeout: Duration::from_millis(t.handshake_timeout_ms),
    }
}

/// A VIP's content rules as the lcores match them.
fn content_rules(v: &qsplice_config::VipConf) -> Vec<ContentRule> {
    v.rules
        .iter()
        .map(|r| ContentRule {
            host: r.host.as_ref().map(|h| h.to_ascii_lowercase()),
            path_prefix: r.path_prefix.clone(),
            cookie: r.cookie.as_ref().and_then(|c| {
                c.split_once('=')
                    .map(|(n, v)| (n.to_string(), v.to_string()))
            }),
            backends: r
                .backends
                .iter()
                .filter_map(|b| {
                    v.backends
                        .iter()
                        .position(|x| x.address == *b)
                        .map(|i| i as u16)
                })
                .collect(),
        })
        .collect()
}

/// The first key of `new` that differs from `running` and that a reload
/// cannot apply (None: every change applies live).
fn unchangeable_key(
    running: &qsplice_config::LbConf,
    new: &qsplice_config::LbConf,
) -> Option<String> {
    // What a reload applies, copied over; whatever still differs cannot.
    let mut m = running.clone();
    m.health = new.health.clone();
    m.shutdown_grace_s = new.shutdown_grace_s;
    m.sessions = new.sessions.clone();
    for (mv, nv) in m.vips.iter_mut().zip(&new.vips) {
        // A terminated VIP's TLS options are rebuilt live (certificates,
        // groups, policy, suites, ALPN, tickets...), except the
        // `X-Forwarded-For` switch each lcore copied at start.
        if let (TlsModeConf::Terminate, TlsModeConf::Terminate, Some(mt), Some(nt)) = (
            mv.tls,
            nv.tls,
            mv.tls_options.as_mut(),
            nv.tls_options.as_ref(),
        ) {
            let xff = mt.x_forwarded_for;
            *mt = nt.clone();
            mt.x_forwarded_for = xff;
        }
        // Content rules are swapped live on a VIP that has some before and
        // after (adding the first or removing the last changes how its
        // connections are accepted).
        if !mv.rules.is_empty() && !nv.rules.is_empty() {
            mv.rules = nv.rules.clone();
        }
        let sa = |p: PolicyConf| p == PolicyConf::SessionAware;
        if sa(mv.policy) == sa(nv.policy) {
            mv.policy = nv.policy;
        }
        if mv.backends.len() == nv.backends.len() {
            for (mb, nb) in mv.backends.iter_mut().zip(&nv.backends) {
                if mb.address == nb.address {
                    mb.weight = nb.weight;
                    mb.max_conns = nb.max_conns;
                    mb.state = nb.state;
                }
            }
        }
    }
    if m == *new {
        return None;
    }
    macro_rules! first_differing {
        ($prefix:expr, $a:expr, $b:expr, $($f:ident),*) => {
            $( if $a.$f != $b.$f { return Some(format!("{}{}", $prefix, stringify!($f))); } )*
        };
    }
    first_differing!(
        "lb.",
        m,
        new,
        client_port,
        backend_port,
        local,
        source_port_min,
        source_port_max,
        max_flows,
        max_connecting,
        syn_rto_ms,
        syn_retries,
        retries,
        idle_timeout_s,
        linger_ms,
        window_scale,
        min_mss,
        tcp_congestion,
        syn_backlog,
        syn_rate,
        tls_max_conns,
        sessions,
        access_log
    );
    if m.vips.len() != new.vips.len() {
        return Some("lb.vips (VIPs added or removed)".into());
    }
    for (i, (a, b)) in m.vips.iter().zip(&new.vips).enumerate() {
        let prefix = format!("lb.vips[{i}].");
        if a.policy != b.policy {
            return Some(format!("{prefix}policy (to or from session-aware)"));
        }
        if a.backends != b.backends {
            return Some(format!("{prefix}backends (added, removed or reordered)"));
        }
        if let (Some(x), Some(y)) = (&a.tls_options, &b.tls_options) {
            if x.x_forwarded_for != y.x_forwarded_for {
                return Some(format!("{prefix}tls_options.x_forwarded_for"));
            }
        }
        first_differing!(prefix, a, b, name, address, tls, tls_options, rules);
    }
    Some("lb".into())
}

/// `lb.tcp_congestion` as the terminated legs' controller.
fn congestion_of(c: TcpCongestion) -> qsplice_lb::Congestion {
    match c {
        TcpCongestion::Cubic => qsplice_lb::Congestion::Cubic,
        TcpCongestion::Newreno => qsplice_lb::Congestion::NewReno,
        TcpCongestion::Bbr => qsplice_lb::Congestion::Bbr,
    }
}

#[cfg(test)]
mod tests {
    /// A reload names the first key it cannot apply; what it can apply
    /// passes.
    #[test]
    fn reload_refuses_what_it_cannot_apply_and_names_it() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../conf/lb.toml"))
                .unwrap();
        let running = qsplice_config::parse(&text).unwrap().lb.unwrap();
        let with = |f: &dyn Fn(&mut qsplice_config::LbConf)| {
            let mut n = running.clone();
            f(&mut n);
            super::unchangeable_key(&running, &n)
        };
        assert_eq!(with(&|_| {}), None);
        assert_eq!(
            with(&|n| {
                n.vips[0].backends[1].weight = 7;
                n.vips[0].backends[2].state = qsplice_config::BackendStateConf::Draining;
                n.vips[0].policy = qsplice_config::PolicyConf::LeastConnections;
                n.health.interval_ms = 2000;
                n.shutdown_grace_s = 1;
            }),
            None,
            "weights, states, policies, health and the grace period apply live"
        );
        assert_eq!(
            with(&|n| n.syn_backlog += 1).as_deref(),
            Some("lb.syn_backlog")
        );
        assert_eq!(
            with(&|n| n.sessions.max_age_s += 1),
            None,
            "[lb.sessions] applies live"
        );
        assert_eq!(
            with(&|n| n.vips[0].tls = qsplice_config::TlsModeConf::Terminate).as_deref(),
            Some("lb.vips[0].tls")
        );
        assert!(with(&|n| {
            n.vips[0].backends.pop();
        })
        .is_some_and(|k| k.starts_with("lb.vips[0].backends")));
        assert!(
            with(&|n| n.vips[0].policy = qsplice_config::PolicyConf::SessionAware)
                .is_some_and(|k| k.starts_with("lb.vips[0].policy"))
        );
        assert!(with(&|n| {
            n.vips.pop();
        })
        .is_some_and(|k| k.starts_with("lb.vips")));
        // Content rules swap live on a VIP that keeps some; the first rule
        // (or removing the last) changes how it accepts: a restart.
        let rule = |host: &str| qsplice_config::ContentRuleConf {
            host: Some(host.into()),
            path_prefix: None,
            cookie: None,
            backends: vec![running.vips[0].backends[0].address],
        };
        let mut with_rules = running.clone();
        with_rules.vips[0].rules = vec![rule("a.test")];
        let mut changed = with_rules.clone();
        changed.vips[0].rules = vec![rule("b.test"), rule("c.test")];
        assert_eq!(super::unchangeable_key(&with_rules, &changed), None);
        assert_eq!(
            super::unchangeable_key(&running, &with_rules).as_deref(),
            Some("lb.vips[0].rules")
        );
        assert_eq!(
            super::unchangeable_key(&with_rules, &running).as_deref(),
            Some("lb.vips[0].rules")
        );
    }

    /// The names `cipher_suites` accepts are the ones the TLS crate knows.
    #[test]
    fn config_suite_names_are_the_tls_crate_s() {
        let tls: Vec<&str> = qsplice_tls::stats::SUITES.iter().map(|(_, n)| *n).collect();
        assert_eq!(qsplice_config::TLS_CIPHER_SUITES.to_vec(), tls);
    }
}
