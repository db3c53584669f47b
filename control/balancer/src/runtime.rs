//! [`LbRuntime`]: the balancer as the control thread runs it.

use std::collections::BTreeMap;
use std::net::{SocketAddr, SocketAddrV4};
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
use qsplice_mgmt::ApiError;
use qsplice_pool::{Backend, BackendState, Policy, Snapshot, MAGLEV_M};
use qsplice_sessions::{SessionKey, SessionTable};
use qsplice_splice::isn::IsnSecret;
use qsplice_tls::certs::CertSpec;
use qsplice_tls::{Group, PqPolicy, TlsContext, TlsSettings, TlsStats};

/// Session-learning events queued from the lcores at most.
const SESSION_EVENTS: usize = 65_536;
/// The session table is republished at most this often when building a
/// snapshot is slow (a large table); small tables are republished at every
/// control step that changed them. Never more than half a sweep interval.
const SESSION_PUBLISH_MAX: Duration = Duration::from_millis(100);

/// VIP addresses one process may have known (removed ones keep their
/// slot so that their flows' indices stay valid).
const MAX_VIP_SLOTS: usize = 1024;
/// Backend addresses one VIP may have known (the same reason; flows hold
/// a 16-bit index).
const MAX_BACKEND_SLOTS: usize = 4096;

/// Steering inbox size per lcore.
const INBOX: usize = 4096;
/// How often the pools are republished with fresh connection totals
/// (least-connections).
const LOAD_REFRESH: Duration = Duration::from_millis(100);

#[derive(Clone, Debug)]
struct BackendCtl {
    addr: SocketAddr,
    /// The address the lcores use (`addr`, or its IPv4 stand-in).
    lane: SocketAddrV4,
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
    /// Removed while running (the slot stays, never selected, until the
    /// same address is added again; its flows end naturally).
    removed: bool,
}

impl BackendCtl {
    fn new(b: &qsplice_config::BackendConf, lane: SocketAddrV4, now: Instant) -> Self {
        BackendCtl {
            addr: b.address,
            lane,
            weight: b.weight,
            max_conns: b.max_conns,
            admin: b.state,
            healthy: true,
            ok_streak: 0,
            fail_streak: 0,
            checks: 0,
            last_error: "",
            // First check once ARP had a chance to resolve the backend (a
            // check that finds no MAC fails).
            next_check: now + Duration::from_millis(300),
            reset_epoch: 0,
            removed: false,
        }
    }
}

/// IPv6 addresses and their IPv4 stand-ins, given out in order and never
/// taken back while the process runs: a flow holds its stand-in, and a
/// VIP or backend removed and added again finds its own.
#[derive(Clone, Debug)]
struct Standins {
    by6: std::collections::BTreeMap<std::net::Ipv6Addr, std::net::Ipv4Addr>,
    local6: Option<std::net::Ipv6Addr>,
}

impl Standins {
    /// Stand-in 0 stays for `lb.local` on a backend port without IPv4.
    fn new(local6: Option<std::net::Ipv6Addr>) -> Standins {
        Standins {
            by6: Default::default(),
            local6,
        }
    }

    /// The address the lcores use for `a`.
    fn lane(&mut self, a: SocketAddr) -> SocketAddrV4 {
        match a {
            SocketAddr::V4(v) => v,
            SocketAddr::V6(v) => {
                let next = self.by6.len() as u32 + 1;
                let s = *self
                    .by6
                    .entry(*v.ip())
                    .or_insert_with(|| qsplice_lb::six::static_standin(next));
                SocketAddrV4::new(s, v.port())
            }
        }
    }

    /// What the lcores read.
    fn map(&self, narrow: Vec<SocketAddrV4>) -> qsplice_lb::six::SixMap {
        qsplice_lb::six::SixMap::new(self.by6.iter().map(|(a, b)| (*a, *b)), self.local6, narrow)
    }
}

/// A server-mapping-table row one node learned, as the cluster shares it
/// (by addresses: backend indices differ between nodes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedRow {
    /// The session-aware VIP (its configured address: stand-ins are a
    /// node's own).
    pub vip: SocketAddr,
    /// The table key (keyed with the cluster's secret).
    pub key: u64,
    /// The backend that holds the session.
    pub backend: SocketAddr,
}

/// Learned rows waiting for the cluster sync at most.
const ROWS_OUT_MAX: usize = 65_536;

/// One VIP slot: its pool index on the board is its index in
/// `LbRuntime::vips`. Slots are only appended: a removed VIP keeps its slot
/// (closed) so that the indices its flows hold stay valid, and adding the
/// same address again reopens it.
#[derive(Clone, Debug)]
struct VipCtl {
    name: String,
    addr: SocketAddr,
    /// The address the lcores use (`addr`, or its IPv4 stand-in).
    lane: SocketAddrV4,
    policy: Policy,
    session_aware: bool,
    backends: Vec<BackendCtl>,
    /// The config entry it runs (the last one, once removed).
    conf: qsplice_config::VipConf,
    removed: bool,
    /// Index in `template.tls_vips` (terminated VIPs).
    tls: Option<usize>,
    /// Index in `template.content` (a VIP that has had content rules).
    content: Option<usize>,
}

/// The balancer as the control thread runs it.
#[derive(Debug)]
pub struct LbRuntime<F> {
    vips: Vec<VipCtl>,
    /// IPv4 stand-ins of IPv6 VIPs and backends (see `qsplice_lb::six`).
    standins: Standins,
    board: Arc<PoolBoard>,
    counters: Vec<Arc<SharedLbCounters>>,
    hists: Vec<Arc<qsplice_lb::SharedLbHists>>,
    /// The access log (`[lb.access_log]`), drained by [`Self::drain_access_log`].
    /// The access log's writer and the lcores' rings (always there: the
    /// log can be turned on by a reload).
    access: crate::accesslog::AccessLog,
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
    /// Per VIP slot: its mapping table (session-aware VIPs).
    tables: Vec<Option<SessionTable>>,
    /// The VIP set changed: the next publication carries the services.
    services_dirty: bool,
    sessions_conf: qsplice_config::SessionsConf,
    sessions_dirty: bool,
    /// The cluster's flow sync (`[cluster] flow_sync`), once set.
    flowsync: Option<Arc<qsplice_lb::FlowSyncShared>>,
    next_sweep: Instant,
    next_session_publish: Instant,
    epoch: Instant,
    view: ViewLag,
    /// Rows learned here for the cluster (`Some` once sharing is on).
    rows_out: Option<std::collections::VecDeque<SharedRow>>,
    /// Rows lost to a full `rows_out`.
    rows_dropped: u64,
    /// Rows imported from other nodes / that matched no VIP or backend here.
    rows_imported: u64,
    rows_unknown: u64,
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
        PolicyConf::MaglevFlow => Policy::MaglevFlow,
        // Its fallback scheduler.
        PolicyConf::SessionAware => Policy::RoundRobin,
    }
}

/// The cluster's cookie / ISN secret from `lb.cluster_secret_file`: a
/// regular file only its owner can read (mode 0600 or stricter) holding at
/// least 32 hex digits (128 bits; `openssl rand -hex 32`). Longer secrets
/// are folded into 16 bytes (XOR); whitespace around the digits is ignored.
pub fn read_cluster_secret(path: &std::path::Path) -> Result<[u8; 16]> {
    use std::os::unix::fs::PermissionsExt;
    let bad = |why: String| {
        Error(format!(
            "lb.cluster_secret_file = {:?}: {why}",
            path.display().to_string()
        ))
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(bad(format!(
            "mode {mode:04o} lets group or others read it; chmod 600"
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let hex = text.trim();
    if hex.len() < 32 || hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("must hold an even number (at least 32) of hex digits and nothing else (openssl rand -hex 32)".into()));
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let byte = u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("00"), 16).unwrap_or(0);
        out[i % 16] ^= byte;
    }
    Ok(out)
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
        let local6 = l.local6.or_else(|| {
            cfg.ports[bp]
                .addresses
                .v6()
                .iter()
                .map(|c| c.addr)
                .find(|a| !a.is_unicast_link_local())
        });
        // Without IPv4 on the backend port the lcores' `local` is a stand-in
        // (for `local6`).
        let local = l
            .local
            .or_else(|| cfg.ports[bp].addresses.first().map(|c| c.addr))
            .unwrap_or(if local6.is_some() {
                qsplice_lb::six::static_standin(0)
            } else {
                std::net::Ipv4Addr::UNSPECIFIED
            });
        let mtu = |i: usize| cfg.ports[i].mtu.saturating_sub(40);
        let now = Instant::now();
        // A cluster shares its secret: a handshake that completes through
        // another node (ECMP moved the flow) still validates.
        let secret = IsnSecret::from_bytes(match &l.cluster_secret_file {
            Some(p) => read_cluster_secret(std::path::Path::new(p))?,
            None => random_secret()?,
        });
        let template = LbConf {
            vips: Vec::new(),
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
            tls_vips: Vec::new(),
            tls_max_conns: l.tls_max_conns as usize,
            access_sample: if l.access_log.path.is_some() {
                l.access_log.sample
            } else {
                0
            },
            content: Vec::new(),
            kernel_ports: cfg
                .ports
                .iter()
                .enumerate()
                .filter(|(_, p)| p.kernel_iface.is_some())
                .fold(0u8, |m, (i, _)| m | (1 << i)),
        };
        // The session table is shared by every lcore from the start (a
        // session-aware VIP may be added live), its BUSY counters sized for
        // every flow the lcores can hold (4 bytes a slot, at most 16 MiB).
        // With a cluster secret the table keys are the same on every node,
        // so rows learned by one node mean the same session on another.
        let (b, c) = match &l.cluster_secret_file {
            Some(p) => {
                let s = read_cluster_secret(std::path::Path::new(p))?;
                let mut h = siphasher::sip::SipHasher24::new_with_keys(
                    u64::from_le_bytes(s[..8].try_into().unwrap_or_default()),
                    u64::from_le_bytes(s[8..].try_into().unwrap_or_default()),
                );
                std::hash::Hasher::write(&mut h, b"qsplice session table key");
                let x = std::hash::Hasher::finish(&h).to_le_bytes();
                std::hash::Hasher::write(&mut h, b"2");
                let y = std::hash::Hasher::finish(&h).to_le_bytes();
                let (mut b, mut c) = ([0u8; 16], [0u8; 16]);
                b[..8].copy_from_slice(&x);
                c[..8].copy_from_slice(&y);
                (b, c)
            }
            None => (random_secret()?, random_secret()?),
        };
        let session_secret = (
            u64::from_le_bytes(b[..8].try_into().unwrap_or_default()),
            u64::from_le_bytes(c[..8].try_into().unwrap_or_default()),
        );
        let busy_flows = (l.max_flows as usize).saturating_mul(workers);
        let mut rt = LbRuntime {
            standins: Standins::new(local6),
            board: Arc::new(PoolBoard::new(Vec::new())),
            counters: (0..workers)
                .map(|_| Arc::new(SharedLbCounters::default()))
                .collect(),
            hists: (0..workers).map(|_| Arc::default()).collect(),
            access: crate::accesslog::AccessLog::new(
                l.access_log.path.as_deref(),
                (0..workers)
                    .map(|_| Arc::new(ArrayQueue::new(l.access_log.ring as usize)))
                    .collect(),
                hz,
            )?,
            backends: (0..workers)
                .map(|_| Arc::new(BackendCounters::new(&[])))
                .collect(),
            inboxes: Arc::new((0..workers).map(|_| ArrayQueue::new(INBOX)).collect()),
            health: Arc::new(HealthShared::new(256)),
            tls_stats: (0..workers)
                .map(|_| Arc::new(ArcSwap::from_pointee(Vec::new())))
                .collect(),
            health_conf: l.health.clone(),
            running: l.clone(),
            vips: Vec::new(),
            template,
            version: 0,
            shutdown_grace: Duration::from_secs(l.shutdown_grace_s),
            next_load_refresh: now,
            token: 0,
            sessions: Some(SessionShared::new(
                0,
                session_secret,
                SESSION_EVENTS,
                busy_flows,
            )),
            tables: Vec::new(),
            sessions_conf: l.sessions.clone(),
            sessions_dirty: false,
            flowsync: None,
            next_sweep: now,
            next_session_publish: now,
            epoch: now,
            rows_out: None,
            rows_dropped: 0,
            rows_imported: 0,
            rows_unknown: 0,
            view: ViewLag::default(),
            services_dirty: true,
        };
        let ctxs = rt.tls_contexts(l)?;
        rt.apply_vips(l, ctxs, now);
        // The lcores are built from the template: it carries the services.
        let svc = rt.services();
        rt.template.vips = svc.vips;
        rt.template.content = svc.content;
        let sizes: Vec<usize> = rt.vips.iter().map(|v| v.backends.len()).collect();
        for c in &rt.backends {
            c.resize(&sizes);
        }
        rt.publish();
        Ok(rt)
    }

    /// Every terminated VIP's TLS context for the config `l`, built before
    /// anything is applied (a bad certificate refuses the whole change):
    /// an existing VIP's is rebuilt (its ticket keys and session cache
    /// carry over; certificate files are read again even when their paths
    /// did not change, as a rotated certificate is replaced in place), a
    /// new VIP gets a new one. Indexed like `l.vips`.
    fn tls_contexts(&self, l: &qsplice_config::LbConf) -> Result<Vec<Option<TlsContext>>> {
        let mut out = Vec::with_capacity(l.vips.len());
        for (i, v) in l.vips.iter().enumerate() {
            if v.tls != TlsModeConf::Terminate {
                out.push(None);
                continue;
            }
            let Some(t) = &v.tls_options else {
                return Err(Error(format!("key `lb.vips[{i}].tls_options` is missing")));
            };
            let old = self
                .vips
                .iter()
                .find(|s| s.addr == v.address)
                .and_then(|s| s.tls)
                .map(|ti| self.template.tls_vips[ti].ctx.load_full());
            let ctx = match old {
                Some(o) => o.rebuild(&tls_settings(t)),
                None => TlsContext::new(&tls_settings(t)),
            }
            .map_err(|e| Error(format!("key `lb.vips[{i}].tls_options`: {e}")))?;
            out.push(Some(ctx));
        }
        Ok(out)
    }

    /// Make the VIP slots run `l.vips` (validated, checked by
    /// [`LbRuntime::unchangeable_key`], TLS contexts built): VIPs matched by
    /// address are updated in place (a removed one reopens), new ones get a
    /// slot, running ones that are gone close and drain; within a VIP,
    /// backends are matched by address the same way. Returns how many
    /// settings changed.
    fn apply_vips(
        &mut self,
        l: &qsplice_config::LbConf,
        mut ctxs: Vec<Option<TlsContext>>,
        now: Instant,
    ) -> usize {
        let mut n = 0;
        let live = self.version > 0;
        for (ci, nv) in l.vips.iter().enumerate() {
            let si = match self.vips.iter().position(|s| s.addr == nv.address) {
                Some(si) => si,
                None => {
                    let lane = self.standins.lane(nv.address);
                    self.vips.push(VipCtl {
                        name: nv.name.clone(),
                        addr: nv.address,
                        lane,
                        policy: policy(nv.policy),
                        session_aware: nv.policy == PolicyConf::SessionAware,
                        backends: Vec::new(),
                        conf: nv.clone(),
                        removed: false,
                        tls: None,
                        content: None,
                    });
                    self.tables.push(None);
                    self.services_dirty = true;
                    n += 1;
                    if live {
                        tracing::info!(vip = %nv.name, address = %nv.address, "VIP added");
                    }
                    self.vips.len() - 1
                }
            };
            let slot = &mut self.vips[si];
            if slot.removed {
                slot.removed = false;
                self.services_dirty = true;
                n += 1;
                tracing::info!(vip = %nv.name, address = %nv.address, "VIP added again (its slot reopens)");
            }
            if slot.name != nv.name {
                slot.name.clone_from(&nv.name);
                n += 1;
            }
            self.access.set_vip_name(nv.address, &nv.name);
            let p = policy(nv.policy);
            n += usize::from(slot.policy != p);
            slot.policy = p;
            slot.session_aware = nv.policy == PolicyConf::SessionAware;
            // Backends by address.
            for nb in &nv.backends {
                match slot.backends.iter_mut().find(|b| b.addr == nb.address) {
                    Some(b) => {
                        n += usize::from(b.weight != nb.weight)
                            + usize::from(b.max_conns != nb.max_conns)
                            + usize::from(b.admin != nb.state)
                            + usize::from(b.removed);
                        if b.admin != nb.state {
                            tracing::info!(vip = %nv.name, backend = %b.addr, from = ?b.admin, to = ?nb.state, "backend state");
                        }
                        if b.removed {
                            tracing::info!(vip = %nv.name, backend = %b.addr, "backend added again");
                            b.removed = false;
                            b.next_check = now;
                        }
                        b.weight = nb.weight;
                        b.max_conns = nb.max_conns;
                        b.admin = nb.state;
                    }
                    None => {
                        let lane = self.standins.lane(nb.address);
                        slot.backends.push(BackendCtl::new(nb, lane, now));
                        n += 1;
                        if live {
                            tracing::info!(vip = %nv.name, backend = %nb.address, "backend added");
                        }
                    }
                }
            }
            for b in &mut slot.backends {
                if !b.removed && !nv.backends.iter().any(|x| x.address == b.addr) {
                    b.removed = true;
                    n += 1;
                    tracing::info!(vip = %nv.name, backend = %b.addr, "backend removed (its connections drain)");
                }
            }
            // Content rules (backend indices are slot indices).
            let rules = content_rules(nv, &slot.backends);
            match slot.content {
                Some(ci) if slot.conf.rules != nv.rules => {
                    self.template.content[ci].rules.store(Arc::new(rules));
                    tracing::info!(vip = %nv.name, rules = nv.rules.len(), "content rules changed");
                    n += 1;
                }
                Some(_) => {}
                None if !nv.rules.is_empty() => {
                    slot.content = Some(self.template.content.len());
                    self.template.content.push(ContentVip {
                        addr: slot.lane,
                        rules: Arc::new(ArcSwap::from_pointee(rules)),
                    });
                    self.services_dirty = true;
                    n += 1;
                }
                None => {}
            }
            // TLS.
            if let Some(ctx) = ctxs.get_mut(ci).and_then(Option::take) {
                match slot.tls {
                    Some(ti) => {
                        let changed = slot.conf.tls_options != nv.tls_options;
                        self.template.tls_vips[ti].ctx.store(Arc::new(ctx));
                        tracing::info!(vip = %nv.name, options_changed = changed, "TLS configuration and certificates reloaded (new handshakes use them)");
                        n += usize::from(changed);
                    }
                    None => {
                        slot.tls = Some(self.template.tls_vips.len());
                        self.template.tls_vips.push(TlsVip {
                            addr: slot.lane,
                            pool: si,
                            ctx: Arc::new(ArcSwap::from_pointee(ctx)),
                            x_forwarded_for: nv
                                .tls_options
                                .as_ref()
                                .is_some_and(|t| t.x_forwarded_for),
                        });
                        self.services_dirty = true;
                    }
                }
            }
            if slot.session_aware && self.tables[si].is_none() {
                self.tables[si] = Some(SessionTable::new(
                    self.sessions_conf.max_keys as usize,
                    self.sessions_conf.max_age_s * 1000,
                ));
            }
            if slot.conf.health != nv.health {
                tracing::info!(vip = %nv.name, health = ?nv.health, "health check kind changed");
                n += 1;
            }
            slot.conf = nv.clone();
        }
        for slot in &mut self.vips {
            if !slot.removed && !l.vips.iter().any(|v| v.address == slot.addr) {
                slot.removed = true;
                self.services_dirty = true;
                n += 1;
                tracing::info!(vip = %slot.name, address = %slot.addr, "VIP removed (new connections refused, established ones drain)");
            }
        }
        n
    }

    /// The lcores' access-log sampling (0: off).
    fn access_sample(&self) -> u32 {
        if self.access.is_on() {
            self.running.access_log.sample
        } else {
            0
        }
    }

    /// The services as the lcores see them.
    fn services(&self) -> qsplice_lb::board::Services {
        qsplice_lb::board::Services {
            vips: self
                .vips
                .iter()
                .enumerate()
                .map(|(i, v)| VipConf {
                    addr: v.lane,
                    pool: i,
                    session_aware: v.session_aware,
                    open: !v.removed,
                })
                .collect(),
            tls_vips: self.template.tls_vips.clone(),
            content: self.template.content.clone(),
            access_sample: self.access_sample(),
            six: self.six_map(),
        }
    }

    /// The IPv6 addresses the lcores know by their stand-ins, and the VIPs
    /// whose two legs differ in family (a smaller MSS to their clients).
    fn six_map(&self) -> qsplice_lb::six::SixMap {
        let narrow = self
            .vips
            .iter()
            .filter(|v| {
                v.backends
                    .iter()
                    .any(|b| !b.removed && b.addr.is_ipv6() && !v.addr.is_ipv6())
            })
            .map(|v| v.lane)
            .collect();
        self.standins.map(narrow)
    }

    /// Lcore `i`'s settings and shared handles.
    pub fn core_parts(&mut self, i: usize) -> (LbConf, LbShared<F>) {
        let mut c = self.template.clone();
        c.lcore = i as u16;
        let shared = LbShared {
            board: self.board.clone(),
            counters: self.counters[i].clone(),
            hists: self.hists[i].clone(),
            access: Some(self.access.ring(i)),
            backends: self.backends[i].clone(),
            inboxes: self.inboxes.clone(),
            health: (i == 0).then(|| self.health.clone()),
            sessions: self.sessions.clone(),
            tls: self.tls_stats[i].clone(),
            flowsync: self.flowsync.clone(),
        };
        (c, shared)
    }

    /// Turn the cluster's flow sync on (before the lcores' parts are taken).
    pub fn set_flowsync(&mut self, fs: Arc<qsplice_lb::FlowSyncShared>) {
        self.flowsync = Some(fs);
    }

    /// The balancer's lcores' settings as the flow sync needs them: the
    /// backend-side address, the first source port, the lcore count.
    pub fn backend_side(&self) -> (std::net::Ipv4Addr, u16, u16) {
        (
            self.template.local,
            self.template.sport_min,
            self.template.lcores,
        )
    }

    fn active(&self, pool: usize, b: usize) -> u64 {
        self.backends.iter().map(|c| c.get(pool, b).active).sum()
    }

    /// Connections VIP slot `pool` still holds on every lcore: spliced to
    /// its backends, and TLS-terminated ones.
    fn vip_open_connections(&self, pool: usize) -> u64 {
        let Some(v) = self.vips.get(pool) else {
            return 0;
        };
        let spliced: u64 = (0..v.backends.len()).map(|b| self.active(pool, b)).sum();
        let tls: u64 = v.tls.map_or(0, |ti| {
            self.tls_stats
                .iter()
                .filter_map(|lc| lc.load().get(ti).map(|st| st.active))
                .sum()
        });
        spliced + tls
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
                        let mut x = Backend::new(b.lane);
                        x.weight = b.weight;
                        x.max_conns = b.max_conns;
                        x.reset_epoch = b.reset_epoch;
                        x.state = match (b.admin, b.healthy) {
                            _ if b.removed => BackendState::Down,
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
        // The stand-ins change with the backends too (an IPv6 backend added
        // to a running VIP needs its address on the lcores before its
        // first connection).
        let six_moved = self.board.services().six != self.six_map();
        if std::mem::take(&mut self.services_dirty) || six_moved {
            self.board.publish_services(self.services(), snaps);
        } else {
            self.board.publish(snaps);
        }
    }

    /// Control-loop step: health checks, republishing.
    pub fn control(&mut self, now: Instant) {
        let mut changed = false;
        self.sessions_step(now);
        for t in &self.template.tls_vips {
            if let Some(k) = &t.ctx.load().tickets {
                if k.rotate_if_due(now) {
                    let vip = self.vips.get(t.pool).map(|v| v.addr);
                    tracing::info!(vip = ?vip, rotations = k.rotations(), "TLS ticket keys rotated");
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
            for (pi, v) in self.vips.iter_mut().enumerate() {
                if v.removed {
                    continue;
                }
                let kind = match v.conf.health.unwrap_or(self.health_conf.kind) {
                    HealthKind::Tcp => ProbeKind::Tcp,
                    HealthKind::Http => ProbeKind::Http,
                };
                for (bi, b) in v.backends.iter_mut().enumerate() {
                    if b.removed || b.admin == BackendStateConf::Down || now < b.next_check {
                        continue;
                    }
                    self.token = self.token.wrapping_add(1);
                    let check = HealthCheck {
                        pool: pi as u16,
                        backend: bi as u16,
                        addr: b.lane,
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
            if let Some(t) = self
                .tables
                .get_mut(usize::from(ev.pool))
                .and_then(Option::as_mut)
            {
                if let (EventKind::Open, Some(out)) = (&ev.kind, self.rows_out.as_mut()) {
                    let vip = self.vips.get(usize::from(ev.pool));
                    let be = vip.and_then(|v| v.backends.get(usize::from(ev.backend)));
                    if let (Some(v), Some(be)) = (vip, be) {
                        if out.len() >= ROWS_OUT_MAX {
                            out.pop_front();
                            self.rows_dropped += 1;
                        }
                        out.push_back(SharedRow {
                            vip: v.addr,
                            key: ev.key.0,
                            backend: be.addr,
                        });
                    }
                }
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
                let Some(t) = t else { continue };
                let busy = |k, b| shared.busy.get(pi as u16, k, b) > 0;
                if t.sweep(ms, busy) > 0 {
                    self.sessions_dirty = true;
                }
            }
        }
        if self.sessions_dirty && now >= self.next_session_publish {
            self.sessions_dirty = false;
            let t0 = Instant::now();
            let snap: Vec<_> = self
                .tables
                .iter()
                .map(|t| t.as_ref().map(SessionTable::snapshot).unwrap_or_default())
                .collect();
            shared.snap.store(Arc::new(snap));
            let build = t0.elapsed();
            self.view.published(shared.now_us(), build);
            let cap = SESSION_PUBLISH_MAX.min(Duration::from_millis(
                self.sessions_conf.sweep_interval_ms / 2,
            ));
            self.next_session_publish = now + (build * 2).min(cap);
        }
    }

    /// Apply a reloaded (or API-edited) `[lb]` section, all or nothing:
    /// VIPs and backends added, removed (they drain) and changed (policy,
    /// weight, limit, state, TLS options and certificates, content rules),
    /// `[lb.health]`, `[lb.sessions]` and `lb.shutdown_grace_s`. What the
    /// lcores were built with (ports, source range, table sizes, timeouts,
    /// ...) and how an existing VIP address handles its connections (TLS
    /// termination, session-aware or not, `X-Forwarded-For`) cannot change:
    /// a difference is an error naming the key and why, and nothing
    /// changes. Returns how many settings changed.
    pub fn reconfigure(&mut self, l: &qsplice_config::LbConf) -> Result<usize> {
        if let Some(why) = self.unchangeable_key(l) {
            return Err(Error(why));
        }
        // Everything fallible first.
        let ctxs = self.tls_contexts(l)?;
        let mut n = 0;
        if self.running.access_log.path != l.access_log.path {
            self.access.set_path(l.access_log.path.as_deref())?;
            n += 1;
        }
        if self.running.access_log != l.access_log {
            self.services_dirty = true;
        }
        let now = Instant::now();
        n += self.apply_vips(l, ctxs, now);
        let h = &l.health;
        if self.health_conf != *h {
            n += 1;
            self.health_conf = h.clone();
        }
        if self.sessions_conf != l.sessions {
            for t in self.tables.iter_mut().flatten() {
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

    /// The running `[lb]` section (the file's, with the management API's
    /// changes since).
    pub fn running(&self) -> &qsplice_config::LbConf {
        &self.running
    }

    /// Reset every connection of the backends `addrs` of VIP slot `vi`
    /// (`--force` on a removal): their reset epoch moves, the lcores reset
    /// what they hold to them within a tick.
    fn force_reset(&mut self, vi: usize, addrs: Option<&[SocketAddr]>) -> usize {
        let mut n = 0;
        if let Some(v) = self.vips.get_mut(vi) {
            for b in &mut v.backends {
                if addrs.is_none_or(|a| a.contains(&b.addr)) {
                    b.reset_epoch = b.reset_epoch.wrapping_add(1);
                    n += 1;
                }
            }
        }
        self.publish();
        n
    }

    /// Why `new` cannot be applied to the running balancer (None: it can).
    fn unchangeable_key(&self, new: &qsplice_config::LbConf) -> Option<String> {
        if let Some(k) = unchangeable_key(&self.running, new) {
            return Some(format!(
                "key `{k}` changed: it takes a restart to apply (what applies live: VIPs and backends added, removed or changed, policies, TLS options and certificates, content rules, [lb.health], [lb.sessions], lb.shutdown_grace_s)"
            ));
        }
        for (i, nv) in new.vips.iter().enumerate() {
            let Some(slot) = self.vips.iter().find(|s| s.addr == nv.address) else {
                continue;
            };
            let o = &slot.conf;
            let gone = if slot.removed {
                " (removed, still known)"
            } else {
                ""
            };
            let why = |k: &str, what: &str| {
                Some(format!(
                    "key `lb.vips[{i}].{k}` changed for VIP {}{gone}: {what} is fixed for its address while the appliance runs (its connections are dispatched by it); add the new service on another address or port, or restart",
                    nv.address
                ))
            };
            if o.tls != nv.tls {
                return why("tls", "whether it terminates TLS");
            }
            let sa = |p: PolicyConf| p == PolicyConf::SessionAware;
            if sa(o.policy) != sa(nv.policy) {
                return why("policy", "session-aware dispatch (to or from)");
            }
            let xff = |v: &qsplice_config::VipConf| {
                v.tls_options.as_ref().is_some_and(|t| t.x_forwarded_for)
            };
            if xff(o) != xff(nv) {
                return why("tls_options.x_forwarded_for", "X-Forwarded-For insertion");
            }
            if slot.backends.len()
                + nv.backends
                    .iter()
                    .filter(|b| !slot.backends.iter().any(|x| x.addr == b.address))
                    .count()
                > MAX_BACKEND_SLOTS
            {
                return Some(format!(
                    "key `lb.vips[{i}].backends`: VIP {} would hold more than {MAX_BACKEND_SLOTS} backend addresses (removed ones included) since start; restart to compact",
                    nv.address
                ));
            }
        }
        let new_vips = new
            .vips
            .iter()
            .filter(|v| !self.vips.iter().any(|s| s.addr == v.address))
            .count();
        if self.vips.len() + new_vips > MAX_VIP_SLOTS {
            return Some(format!(
                "key `lb.vips`: more than {MAX_VIP_SLOTS} VIP addresses (removed ones included) since start; restart to compact"
            ));
        }
        None
    }

    /// Write what the lcores logged (`tsc_now`: their clock now).
    pub fn drain_access_log(&mut self, tsc_now: u64) {
        self.access.drain(tsc_now);
    }

    /// Reopen the access log file (SIGUSR1, `POST /api/v1/access-log/reopen`).
    pub fn reopen_access_log(&mut self) -> Result<bool> {
        self.access.reopen()
    }

    /// The VIP addresses this node can serve now: those with at least one
    /// open VIP that has a backend in rotation (administratively up, not
    /// removed, healthy). What `[bgp]` announces.
    pub fn serviceable_vip_ips(&self) -> Vec<std::net::IpAddr> {
        let mut ips: Vec<std::net::IpAddr> = self
            .vips
            .iter()
            .filter(|v| !v.removed)
            .filter(|v| {
                v.backends
                    .iter()
                    .any(|b| !b.removed && b.healthy && b.admin == BackendStateConf::Up)
            })
            // The real address (an IPv6 VIP's, never its stand-in).
            .map(|v| v.addr.ip())
            .collect();
        ips.sort_unstable();
        ips.dedup();
        ips
    }

    /// Each terminated VIP's ticket keys and session cache, by VIP address
    /// (what `[cluster]` shares between nodes): `(vip, tickets, cache)`.
    #[allow(clippy::type_complexity)]
    pub fn tls_state(
        &self,
    ) -> Vec<(
        String,
        Option<Arc<qsplice_tls::ticket::TicketKeys>>,
        Option<Arc<qsplice_tls::cache::SessionCache>>,
    )> {
        // Named by the configured address (stand-ins are a node's own).
        self.template
            .tls_vips
            .iter()
            .map(|t| {
                let c = t.ctx.load();
                let name = self
                    .vips
                    .get(t.pool)
                    .map_or_else(|| t.addr.to_string(), |v| v.addr.to_string());
                (name, c.tickets.clone(), c.cache.clone())
            })
            .filter(|(_, t, c)| t.is_some() || c.is_some())
            .collect()
    }

    /// Start collecting the rows session-aware VIPs learn, for the cluster.
    pub fn share_rows(&mut self) {
        if self.rows_out.is_none() {
            self.rows_out = Some(std::collections::VecDeque::new());
        }
    }

    /// The rows learned since the last call (the cluster sync sends them).
    pub fn take_rows(&mut self) -> Vec<SharedRow> {
        self.rows_out
            .as_mut()
            .map(|q| q.drain(..).collect())
            .unwrap_or_default()
    }

    /// A row another node learned: the same session key now maps to that
    /// backend here too (if this node serves that VIP with that backend).
    pub fn import_row(&mut self, r: &SharedRow, now: Instant) {
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        let slot = self.vips.iter().position(|v| v.addr == r.vip && !v.removed);
        let found = slot.and_then(|pi| {
            let b = self.vips[pi]
                .backends
                .iter()
                .position(|b| b.addr == r.backend && !b.removed)?;
            Some((pi, b))
        });
        match found.and_then(|(pi, b)| Some((self.tables.get_mut(pi)?.as_mut()?, b))) {
            Some((t, b)) => {
                t.learn(SessionKey(r.key), b as u16, ms);
                self.rows_imported += 1;
                self.sessions_dirty = true;
            }
            None => self.rows_unknown += 1,
        }
    }

    /// Rows shared so far: (imported, unknown here, dropped before sending).
    pub fn row_counts(&self) -> (u64, u64, u64) {
        (self.rows_imported, self.rows_unknown, self.rows_dropped)
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
    /// `--force` on a removal: reset the connections of the VIP at
    /// `vip` to `backend` (or to all its backends) now. Returns how many
    /// backends' connections were reset.
    pub fn force_reset_addr(&mut self, vip: SocketAddr, backend: Option<SocketAddr>) -> usize {
        let Some(vi) = self.vips.iter().position(|v| v.addr == vip) else {
            return 0;
        };
        let one = backend.map(|b| [b]);
        let n = self.force_reset(vi, one.as_ref().map(|a| &a[..]));
        tracing::warn!(vip = %vip, backend = ?backend, backends = n, "connections reset (forced removal)");
        n
    }

    /// `POST /api/v1/tls/rotate-tickets`: new ticket keys now for every
    /// terminated VIP (or the one named); returns the VIPs rotated.
    pub fn rotate_tickets(
        &mut self,
        vip: Option<&str>,
    ) -> std::result::Result<serde_json::Value, ApiError> {
        let mut done = Vec::new();
        for v in self.vips.iter().filter(|v| !v.removed) {
            if vip.is_some_and(|n| v.name != n && v.addr.to_string() != n) {
                continue;
            }
            let Some(ti) = v.tls else { continue };
            if let Some(k) = &self.template.tls_vips[ti].ctx.load().tickets {
                k.rotate();
                tracing::info!(vip = %v.name, rotations = k.rotations(), "TLS ticket keys rotated (management API)");
                done.push(v.name.clone());
            }
        }
        if done.is_empty() {
            return Err(ApiError::not_found(match vip {
                Some(n) => format!("no terminated VIP `{n}` with tickets"),
                None => "no terminated VIP with tickets".to_string(),
            }));
        }
        Ok(serde_json::json!({ "rotated": done }))
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
            .position(|v| !v.removed && (v.name == vip || v.addr.to_string() == vip))
            .ok_or_else(|| ApiError::not_found(format!("no VIP named `{vip}`")))?;
        let v = &self.vips[pi];
        let t = v
            .session_aware
            .then(|| self.tables.get(pi).and_then(Option::as_ref))
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
            .filter(|&(pi, v)| !v.removed || self.vip_open_connections(pi) > 0)
            .map(|(pi, v)| {
                let mut vt = qsplice_lb::BackendStats::default();
                let backends = v
                    .backends
                    .iter()
                    .enumerate()
                    .filter_map(|(bi, b)| {
                        let mut st = qsplice_lb::BackendStats::default();
                        for c in &self.backends {
                            st.add(&c.get(pi, bi));
                        }
                        vt.add(&st);
                        // A removed backend is listed while it drains.
                        if b.removed && st.active == 0 {
                            return None;
                        }
                        Some(BackendReport {
                            address: b.addr.to_string(),
                            admin: if b.removed {
                                "removed".to_string()
                            } else {
                                format!("{:?}", b.admin).to_lowercase()
                            },
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
                        })
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
                    .position(|t| t.addr == v.lane)
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
                    .then(|| self.tables.get(pi).and_then(Option::as_ref))
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
                    .then(|| self.tables.get(pi).and_then(Option::as_ref))
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
                    .find(|t| t.addr == v.lane)
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
                    // A draining slot keeps a distinct name: the same name
                    // may already serve at another address.
                    name: if v.removed {
                        format!("{} (removed {})", v.name, v.addr)
                    } else {
                        v.name.clone()
                    },
                    address: v.addr.to_string(),
                    total,
                    backends,
                    removed: v.removed,
                    policy: policy_name(v.conf.policy).to_string(),
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
            session_view: self
                .vips
                .iter()
                .any(|v| v.session_aware)
                .then(|| self.view.report()),
            vips,
        }
    }
}

/// The TLS crate's group for a configured one.
pub fn group_of(g: TlsGroupConf) -> Group {
    match g {
        TlsGroupConf::X25519MlKem768 => Group::X25519MlKem768,
        TlsGroupConf::SecP256r1MlKem768 => Group::SecP256r1MlKem768,
        TlsGroupConf::MlKem768 => Group::MlKem768,
        TlsGroupConf::MlKem1024 => Group::MlKem1024,
        TlsGroupConf::X25519 => Group::X25519,
        TlsGroupConf::Secp256r1 => Group::P256,
        TlsGroupConf::Secp384r1 => Group::P384,
    }
}

fn tls_settings(t: &qsplice_config::VipTlsConf) -> TlsSettings {
    TlsSettings {
        tls12: t.tls12,
        groups: t.groups.iter().copied().map(group_of).collect(),
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

/// A VIP's content rules as the lcores match them (backends as indices
/// of the VIP's slots).
fn content_rules(v: &qsplice_config::VipConf, slots: &[BackendCtl]) -> Vec<ContentRule> {
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
                    slots
                        .iter()
                        .position(|x| x.addr == *b && !x.removed)
                        .map(|i| i as u16)
                })
                .collect(),
        })
        .collect()
}

/// The first key of `new` outside the VIPs that differs from `running` and
/// that a reload cannot apply (None: every change applies live; the VIPs
/// themselves are checked by [`LbRuntime::reconfigure`]).
fn unchangeable_key(
    running: &qsplice_config::LbConf,
    new: &qsplice_config::LbConf,
) -> Option<String> {
    macro_rules! first_differing {
        ($($f:ident),*) => {
            $( if running.$f != new.$f { return Some(format!("lb.{}", stringify!($f))); } )*
        };
    }
    first_differing!(
        client_port,
        backend_port,
        local,
        local6,
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
        tls_max_conns
    );
    if running.access_log.ring != new.access_log.ring {
        return Some("lb.access_log.ring (the lcores' rings are allocated at start)".into());
    }
    if running.health.http_path != new.health.http_path {
        return Some("lb.health.http_path".into());
    }
    if running.health.expect_status != new.health.expect_status {
        return Some("lb.health.expect_status".into());
    }
    None
}

/// The config's name of a policy.
fn policy_name(p: PolicyConf) -> &'static str {
    match p {
        PolicyConf::RoundRobin => "round-robin",
        PolicyConf::WeightedRoundRobin => "weighted-round-robin",
        PolicyConf::LeastConnections => "least-connections",
        PolicyConf::Maglev => "maglev",
        PolicyConf::MaglevFlow => "maglev-flow",
        PolicyConf::SessionAware => "session-aware",
    }
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
    use super::LbRuntime;
    use qsplice_config::{BackendConf, BackendStateConf, Config, LbConf, PolicyConf};

    fn config() -> Config {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../conf/lb.toml"))
                .unwrap();
        qsplice_config::parse(&text).unwrap()
    }

    fn runtime() -> (LbRuntime<Vec<u8>>, LbConf) {
        let cfg = config();
        let l = cfg.lb.clone().unwrap();
        (LbRuntime::new(&cfg, &l, 2, 1_000_000_000).unwrap(), l)
    }

    fn backend(a: &str) -> BackendConf {
        BackendConf {
            address: a.parse().unwrap(),
            weight: 1,
            max_conns: 0,
            state: BackendStateConf::Up,
        }
    }

    /// A reload names the first key it cannot apply and changes nothing;
    /// what it can apply passes.
    #[test]
    fn reload_refuses_what_it_cannot_apply_and_names_it() {
        let (mut rt, running) = runtime();
        let refused = |rt: &mut LbRuntime<Vec<u8>>, f: &dyn Fn(&mut LbConf)| {
            let mut n = running.clone();
            f(&mut n);
            let e = rt.reconfigure(&n).unwrap_err().0;
            // Nothing moved.
            assert_eq!(rt.running(), &running);
            e
        };
        let e = refused(&mut rt, &|n| n.syn_backlog += 1);
        assert!(
            e.contains("`lb.syn_backlog`") && e.contains("restart"),
            "{e}"
        );
        let e = refused(&mut rt, &|n| n.health.http_path = "/other".into());
        assert!(e.contains("lb.health.http_path"), "{e}");
        let e = refused(&mut rt, &|n| {
            n.vips[0].tls = qsplice_config::TlsModeConf::Terminate
        });
        assert!(
            e.contains("lb.vips[0].tls") || e.contains("tls_options"),
            "{e}"
        );
        let e = refused(&mut rt, &|n| n.vips[0].policy = PolicyConf::SessionAware);
        assert!(
            e.contains("lb.vips[0].policy") && e.contains("session-aware"),
            "{e}"
        );
        // What applies live.
        let mut n = running.clone();
        n.vips[0].backends[1].weight = 7;
        n.vips[0].backends[2].state = BackendStateConf::Draining;
        n.vips[0].policy = PolicyConf::LeastConnections;
        n.health.interval_ms = 2000;
        n.shutdown_grace_s = 1;
        n.sessions.max_age_s += 1;
        assert!(rt.reconfigure(&n).unwrap() >= 6);
        let r = rt.report();
        assert_eq!(r.vips[0].backends[1].weight, 7);
        assert_eq!(r.vips[0].backends[2].admin, "draining");
    }

    /// VIPs and backends come and go live: a removed one closes (the lcores
    /// refuse its new connections) and keeps its slot, adding it again
    /// reopens the same slot, a new one is appended; the lcores get the
    /// services with the pools.
    #[test]
    fn vips_and_backends_are_added_and_removed_live() {
        let (mut rt, running) = runtime();
        let vips0 = running.vips.len();
        let b0 = running.vips[0].backends.len();
        let mut n = running.clone();
        n.vips[0].backends.remove(0);
        n.vips[0].backends.push(backend("10.10.2.99:80"));
        let mut extra = running.vips[0].clone();
        extra.name = "extra".into();
        extra.address.set_port(8080);
        extra.backends = vec![backend("10.10.2.11:80")];
        n.vips.push(extra);
        rt.reconfigure(&n).unwrap();
        let svc = rt.board.services();
        assert_eq!(svc.vips.len(), vips0 + 1);
        assert!(svc.vips.iter().all(|v| v.open));
        let pools = rt.board.load();
        assert_eq!(pools.len(), vips0 + 1);
        // The removed backend keeps its slot, never selected.
        assert_eq!(pools[0].backends.len(), b0 + 1);
        assert_eq!(pools[0].backends[0].state, qsplice_pool::BackendState::Down);
        assert_eq!(pools[0].backends[b0].addr, "10.10.2.99:80".parse().unwrap());
        // The report lists what runs (a drained removed backend is gone).
        let r = rt.report();
        assert_eq!(r.vips.len(), vips0 + 1);
        assert_eq!(r.vips[0].backends.len(), b0);
        assert!(r.vips[0]
            .backends
            .iter()
            .all(|b| b.address != running.vips[0].backends[0].address.to_string()));
        assert_eq!(r.vips[vips0].name, "extra");
        // Remove the new VIP: closed on the board, gone from the report.
        rt.reconfigure(&running).unwrap();
        let svc = rt.board.services();
        assert_eq!(svc.vips.len(), vips0 + 1);
        assert!(!svc.vips[vips0].open);
        assert_eq!(rt.report().vips.len(), vips0);
        let pools = rt.board.load();
        assert_eq!(
            pools[0].backends[0].state,
            qsplice_pool::BackendState::Up,
            "re-added: same slot, selectable"
        );
        assert_eq!(
            pools[0].backends[b0].state,
            qsplice_pool::BackendState::Down
        );
        // Adding it again reopens its slot.
        rt.reconfigure(&n).unwrap();
        let svc = rt.board.services();
        assert_eq!(svc.vips.len(), vips0 + 1);
        assert!(svc.vips[vips0].open);
    }

    /// The access log turns on, moves and turns off by reload; its rings
    /// (allocated at start) cannot be resized.
    #[test]
    fn access_log_changes_live() {
        let (mut rt, running) = runtime();
        assert_eq!(rt.board.services().access_sample, 0, "off");
        let dir = std::env::temp_dir().join(format!("qsplice-al-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut on = running.clone();
        on.access_log.path = Some(dir.join("a.log").display().to_string());
        on.access_log.sample = 3;
        rt.reconfigure(&on).unwrap();
        assert!(dir.join("a.log").exists());
        assert_eq!(rt.board.services().access_sample, 3);
        let mut bad = on.clone();
        bad.access_log.ring += 1;
        let e = rt.reconfigure(&bad).unwrap_err().0;
        assert!(e.contains("lb.access_log.ring"), "{e}");
        let mut unwritable = on.clone();
        unwritable.access_log.path = Some("/nonexistent/dir/a.log".into());
        let e = rt.reconfigure(&unwritable).unwrap_err().0;
        assert!(e.contains("cannot open"), "{e}");
        assert_eq!(rt.board.services().access_sample, 3, "unchanged");
        rt.reconfigure(&running).unwrap();
        assert_eq!(rt.board.services().access_sample, 0, "off again");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The names `cipher_suites` accepts are the ones the TLS crate knows.
    #[test]
    fn config_suite_names_are_the_tls_crate_s() {
        let tls: Vec<&str> = qsplice_tls::stats::SUITES.iter().map(|(_, n)| *n).collect();
        assert_eq!(qsplice_config::TLS_CIPHER_SUITES.to_vec(), tls);
    }
}

#[cfg(test)]
mod cluster_secret_tests {
    use super::read_cluster_secret;
    use std::os::unix::fs::PermissionsExt;

    fn file(name: &str, text: &str, mode: u32) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("qsplice-secret-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn every_node_reading_the_file_gets_the_same_secret() {
        let hex = "00112233445566778899aabbccddeeff";
        let a = file("a", &format!("{hex}\n"), 0o600);
        let b = file("b", hex, 0o400);
        let sa = read_cluster_secret(&a).unwrap();
        assert_eq!(sa, read_cluster_secret(&b).unwrap());
        assert_eq!(sa[0], 0x00);
        assert_eq!(sa[15], 0xff);
        // 64 digits fold into 16 bytes, and differ from the first half alone.
        let c = file("c", &format!("{hex}{hex}"), 0o600);
        assert_eq!(read_cluster_secret(&c).unwrap(), [0; 16]);
        for p in [a, b, c] {
            let _ = std::fs::remove_file(p);
        }
    }

    #[test]
    fn a_readable_short_or_non_hex_secret_is_refused_with_the_reason() {
        let cases = [
            (
                "open",
                "00112233445566778899aabbccddeeff",
                0o644,
                "chmod 600",
            ),
            ("short", "0011", 0o600, "at least 32"),
            (
                "odd",
                "00112233445566778899aabbccddeeff0",
                0o600,
                "even number",
            ),
            (
                "text",
                "this is not hex but is long enough!!",
                0o600,
                "hex digits",
            ),
        ];
        for (name, text, mode, why) in cases {
            let p = file(name, text, mode);
            let e = read_cluster_secret(&p).unwrap_err().to_string();
            assert!(
                e.contains("lb.cluster_secret_file") && e.contains(why),
                "{name}: {e}"
            );
            let _ = std::fs::remove_file(p);
        }
        let e = read_cluster_secret(std::path::Path::new("/nonexistent/qs")).unwrap_err();
        assert!(e.to_string().contains("No such file"), "{e}");
    }
}
