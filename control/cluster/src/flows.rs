//! Flow sync: every spliced flow's record in Redis, so that another node
//! can go on translating the flow when ECMP moves it there (a node died or
//! was drained), and a survivor takes over a dead node's backend-side
//! address so the backends' replies reach it.
//!
//! **Records.** A flow's record ([`qsplice_splice::record`], 45 bytes) is
//! written once, when the flow is spliced, into the hash
//! `<prefix>:flows:<node>:<epoch>` under its client-side pair (12 bytes);
//! the epoch is Redis' time divided by the record lifetime (`flow_ttl_s`),
//! a hash expires two lifetimes after its last write, and the lcores
//! publish their live flows again when the epoch rolls over (so a
//! long-lived flow costs one write per lifetime, a short one exactly one).
//! Records are batched: one `HSET` with up to [`BATCH`] records and one
//! `PEXPIRE` per round, whatever the connection rate. The queue toward
//! Redis is bounded ([`BACKLOG_MAX`]; overflow drops the oldest, counted)
//! and survives an outage: records wait, and when Redis is back every lcore
//! publishes its flows again (Redis may have come back empty).
//!
//! **Adoption.** An lcore that receives a client segment for a flow it does
//! not know asks here; the pair is looked up (`HGET`, pipelined) in every
//! known node's current and previous hash, and the record, "not found" or
//! "unavailable" goes back to that lcore.
//!
//! **Liveness and address takeover.** Each node refreshes
//! `<prefix>:alive:<node>` (`PX` three sync intervals) every interval and
//! lists its backend-side addresses in the hash `<prefix>:nodes`. A node
//! listed there whose alive key is gone is dead; an address of a dead node
//! that no live node lists is an orphan, and one survivor takes it
//! (`SET <prefix>:claim:<addr> <node> NX PX`, renewed every interval): its
//! dataplane answers ARP for it and announces it with gratuitous ARP, and
//! the dead node's records on that address are loaded (`HSCAN`) and
//! installed on the lcores that receive the backend's segments. When the
//! address's owner is alive again, the claim is released. A node also
//! loads, once at start, its own name's records (a restart with a fixed
//! `cluster.node`). A graceful shutdown deletes the alive key after the
//! dataplane stopped, so the takeover starts at once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qsplice_lb::{Adopt, FlowSyncShared};
use qsplice_splice::record;
use qsplice_splice::SpliceParams;

use crate::conn::{Conn, Connector, Pipe};

/// Records per `HSET` at most.
pub const BATCH: usize = 1024;
/// Records waiting for Redis at most (the oldest are dropped beyond).
pub const BACKLOG_MAX: usize = 1 << 18;
/// Lookups answered per round at most (the rest wait for the next round).
const LOOKUPS_PER_ROUND: usize = 512;

/// Settings of the flow sync.
#[derive(Clone, Debug)]
pub struct FlowConf {
    /// As [`crate::SyncConf::redis_url`].
    pub redis_url: String,
    /// Key prefix shared by the cluster's nodes.
    pub prefix: String,
    /// This node's name.
    pub node: String,
    /// Liveness and claim round.
    pub interval: Duration,
    /// Connect / read / write timeout.
    pub timeout: Duration,
    /// A record's lifetime (the epoch length).
    pub ttl: Duration,
    /// This node's own backend-side addresses.
    pub addrs: Vec<Ipv4Addr>,
    /// The balancer's first source port and lcore count (which lcore
    /// receives a backend's segments for a port).
    pub sport_min: u16,
    /// See `sport_min`.
    pub lcores: u16,
}

/// Counters of the flow sync.
#[derive(Debug, Default)]
pub struct FlowStats {
    /// Connected to Redis now.
    pub connected: AtomicBool,
    /// Records written to Redis.
    pub published: AtomicU64,
    /// Records lost because the queue toward Redis overflowed.
    pub dropped: AtomicU64,
    /// Records waiting for Redis now (gauge).
    pub backlog: AtomicU64,
    /// Lookups answered: found / not found / unavailable.
    pub found: AtomicU64,
    /// See `found`.
    pub not_found: AtomicU64,
    /// See `found`.
    pub unavailable: AtomicU64,
    /// Records installed from dead nodes' hashes.
    pub loaded: AtomicU64,
    /// Installs lost to a full lcore ring.
    pub load_dropped: AtomicU64,
    /// Addresses claimed now (gauge).
    pub claimed: AtomicU64,
    /// Claims taken so far.
    pub takeovers: AtomicU64,
    /// Peers seen dead so far.
    pub peers_dead: AtomicU64,
    /// Redis commands sent.
    pub redis_ops: AtomicU64,
    /// Rounds that failed (Redis away, timeout).
    pub errors: AtomicU64,
    /// The last error's message.
    pub last_error: Mutex<String>,
}

/// The flow-sync thread's handle.
#[derive(Debug)]
pub struct FlowSync {
    /// Its counters.
    pub stats: Arc<FlowStats>,
    stop: Arc<AtomicBool>,
    /// Set at shutdown: delete the alive key before the thread ends.
    leave: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FlowSync {
    /// Start the thread (`qsplice-flows`) over the lcores' rings.
    pub fn spawn(conf: FlowConf, shared: Arc<FlowSyncShared>) -> std::io::Result<FlowSync> {
        let stats = Arc::new(FlowStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let leave = Arc::new(AtomicBool::new(false));
        let (s2, st2, l2) = (stats.clone(), stop.clone(), leave.clone());
        let thread = std::thread::Builder::new()
            .name("qsplice-flows".into())
            .spawn(move || Runner::new(conf, shared, s2).run(&st2, &l2))?;
        Ok(FlowSync {
            stats,
            stop,
            leave,
            thread: Some(thread),
        })
    }

    /// The node is leaving (its dataplane stopped): publish what is queued,
    /// delete the alive key so a survivor takes the address over at once,
    /// and end the thread (waits up to about a second).
    pub fn leave(mut self) {
        self.leave.store(true, Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
        self.join(Duration::from_millis(1500));
    }

    fn join(&mut self, wait: Duration) {
        if let Some(t) = self.thread.take() {
            let deadline = Instant::now() + wait;
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for FlowSync {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.join(Duration::from_millis(500));
    }
}

/// Key names.
struct Keys {
    prefix: String,
}

impl Keys {
    fn flows(&self, node: &str, epoch: u64) -> String {
        format!("{}:flows:{node}:{epoch}", self.prefix)
    }
    fn alive(&self, node: &str) -> String {
        format!("{}:alive:{node}", self.prefix)
    }
    fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
    fn claim(&self, a: Ipv4Addr) -> String {
        format!("{}:claim:{a}", self.prefix)
    }
}

/// Parse a `nodes` hash value: addresses separated by commas.
pub fn parse_addrs(s: &str) -> Vec<Ipv4Addr> {
    s.split(',').filter_map(|a| a.trim().parse().ok()).collect()
}

/// Orphan addresses: those of dead nodes that no live node lists.
pub fn orphans(nodes: &HashMap<String, Vec<Ipv4Addr>>, alive: &HashSet<String>) -> Vec<Ipv4Addr> {
    let live: HashSet<Ipv4Addr> = nodes
        .iter()
        .filter(|(n, _)| alive.contains(*n))
        .flat_map(|(_, a)| a.iter().copied())
        .collect();
    let mut out: Vec<Ipv4Addr> = nodes
        .iter()
        .filter(|(n, _)| !alive.contains(*n))
        .flat_map(|(_, a)| a.iter().copied())
        .filter(|a| !live.contains(a))
        .collect();
    out.sort();
    out.dedup();
    out
}

struct Runner {
    conf: FlowConf,
    keys: Keys,
    shared: Arc<FlowSyncShared>,
    stats: Arc<FlowStats>,
    backlog: VecDeque<SpliceParams>,
    /// Known nodes and their addresses (from the last round).
    nodes: HashMap<String, Vec<Ipv4Addr>>,
    alive: HashSet<String>,
    /// Addresses this node claims now.
    claimed: Vec<Ipv4Addr>,
    /// (dead node, address) whose records were installed.
    loaded: HashSet<(String, Ipv4Addr)>,
    /// Backend-side addresses of the records this node published, with
    /// the last epoch it did (a taken-over address stays claimed while
    /// this node still republishes flows on it).
    locals: HashMap<Ipv4Addr, u64>,
    /// Redis time minus the local clock, ms (set every round).
    offset_ms: i128,
    epoch: u64,
    started: Instant,
    /// The last round failed: publish everything again once back.
    was_down: bool,
    first_round: bool,
}

impl Runner {
    fn new(conf: FlowConf, shared: Arc<FlowSyncShared>, stats: Arc<FlowStats>) -> Runner {
        Runner {
            keys: Keys {
                prefix: conf.prefix.clone(),
            },
            conf,
            shared,
            stats,
            backlog: VecDeque::new(),
            nodes: HashMap::new(),
            alive: HashSet::new(),
            claimed: Vec::new(),
            loaded: HashSet::new(),
            locals: HashMap::new(),
            offset_ms: 0,
            epoch: 0,
            started: Instant::now(),
            was_down: false,
            first_round: true,
        }
    }

    fn now_ms(&self) -> u64 {
        (self.started.elapsed().as_millis() as i128 + self.offset_ms).max(0) as u64
    }

    fn ttl_ms(&self) -> u64 {
        (self.conf.ttl.as_millis() as u64).max(1000)
    }

    fn ops(&self, n: usize) {
        self.stats.redis_ops.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn run(mut self, stop: &AtomicBool, leave: &AtomicBool) {
        let mut client = match Connector::open(&self.conf.redis_url) {
            Ok(c) => c,
            Err(e) => {
                self.error(format!("redis url: {e}"));
                return;
            }
        };
        let mut conn: Option<Conn> = None;
        let mut next_round = Instant::now();
        let mut next_connect = Instant::now();
        let mut logged = String::new();
        loop {
            let stopping = stop.load(Ordering::Relaxed);
            self.collect();
            let mut lookups: Vec<(usize, (SocketAddrV4, SocketAddrV4))> = Vec::new();
            // Round robin over the lcores: a mass failover does not starve
            // the last ones.
            let mut any = true;
            while any && lookups.len() < LOOKUPS_PER_ROUND {
                any = false;
                for (i, q) in self.shared.lookups.iter().enumerate() {
                    if lookups.len() >= LOOKUPS_PER_ROUND {
                        break;
                    }
                    if let Some(p) = q.pop() {
                        lookups.push((i, p));
                        any = true;
                    }
                }
            }
            if conn.is_none() && Instant::now() >= next_connect {
                next_connect = Instant::now() + Duration::from_millis(200);
                match client.connect(self.conf.timeout) {
                    Ok(c) => conn = Some(c),
                    Err(e) => self.failed(&mut logged, e),
                }
            }
            let mut busy = !lookups.is_empty();
            match conn.as_mut() {
                None => {
                    for (i, p) in lookups {
                        self.answer(i, Adopt::Unavailable(p));
                        self.stats.unavailable.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(c) => {
                    let r = (|| -> redis::RedisResult<bool> {
                        let mut did = false;
                        if Instant::now() >= next_round || stopping {
                            self.round(c, stopping && leave.load(Ordering::Relaxed))?;
                            next_round = Instant::now() + self.conf.interval;
                            did = true;
                        }
                        did |= self.publish(c)?;
                        if !lookups.is_empty() {
                            self.lookup(c, &lookups)?;
                        }
                        Ok(did)
                    })();
                    match r {
                        Ok(did) => {
                            busy |= did;
                            self.stats.connected.store(true, Ordering::Relaxed);
                            if self.was_down {
                                self.was_down = false;
                                // Redis may have lost what it held.
                                self.shared.republish();
                                tracing::info!(
                                    "cluster flows: Redis reachable again; republishing"
                                );
                            }
                            logged.clear();
                        }
                        Err(e) => {
                            conn = None;
                            for (i, p) in &lookups {
                                self.answer(*i, Adopt::Unavailable(*p));
                                self.stats.unavailable.fetch_add(1, Ordering::Relaxed);
                            }
                            self.failed(&mut logged, e);
                        }
                    }
                }
            }
            self.stats
                .backlog
                .store(self.backlog.len() as u64, Ordering::Relaxed);
            if stopping {
                break;
            }
            if !busy {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // Our addresses are no longer answered: release the claims.
        self.shared.claims.set(&[]);
    }

    fn failed(&mut self, logged: &mut String, e: redis::RedisError) {
        self.stats.connected.store(false, Ordering::Relaxed);
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        self.was_down = true;
        let msg = e.to_string();
        if msg != *logged {
            tracing::warn!(
                "cluster flows: Redis {}: {msg}; flows queue meanwhile",
                self.conf.redis_url
            );
            logged.clone_from(&msg);
        }
        self.error(msg);
    }

    fn error(&self, msg: String) {
        if let Ok(mut e) = self.stats.last_error.lock() {
            *e = msg;
        }
    }

    fn answer(&self, lcore: usize, a: Adopt) {
        let Some(q) = self.shared.answers.get(lcore) else {
            return;
        };
        // An answer to a lookup is worth nothing late (the segment is
        // retransmitted and asked again); an install of a dead node's flow
        // waits for room (the lcore drains its ring every poll) up to a
        // second.
        let mut a = a;
        for _ in 0..1000 {
            match q.push(a) {
                Ok(()) => return,
                Err(back) if matches!(back, Adopt::Install(_)) => {
                    a = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => return,
            }
        }
        self.stats.load_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Take the lcores' new records into the backlog.
    fn collect(&mut self) {
        // A full backlog stops draining: the lcores' rings fill and the
        // lcores count it (`flows_publish_full`) and publish again later.
        for q in &self.shared.out {
            while self.backlog.len() < BACKLOG_MAX {
                match q.pop() {
                    Some(p) => self.backlog.push_back(p),
                    None => break,
                }
            }
        }
    }

    /// Write up to [`BATCH`] records. Returns whether it wrote any.
    fn publish(&mut self, c: &mut Conn) -> redis::RedisResult<bool> {
        if self.backlog.is_empty() || self.epoch == 0 {
            return Ok(false);
        }
        let n = self.backlog.len().min(BATCH);
        let key = self.keys.flows(&self.conf.node, self.epoch);
        let mut hset = redis::cmd("HSET");
        hset.arg(&key);
        for p in self.backlog.iter().take(n) {
            hset.arg(&record::client_key(p.client, p.vip)[..])
                .arg(&record::encode(p)[..]);
            self.locals.insert(*p.local.ip(), self.epoch);
        }
        let expire = 2 * self.ttl_ms() + 2 * self.conf.interval.as_millis() as u64;
        redis::pipe()
            .add_command(hset)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(expire)
            .ignore()
            .query::<()>(c)?;
        self.ops(2);
        self.backlog.drain(..n);
        self.stats.published.fetch_add(n as u64, Ordering::Relaxed);
        Ok(true)
    }

    /// Look the pairs up in every known node's newest hashes.
    fn lookup(
        &mut self,
        c: &mut Conn,
        pairs: &[(usize, (SocketAddrV4, SocketAddrV4))],
    ) -> redis::RedisResult<()> {
        // The node list as it is now: a node that joined since the last
        // round may hold the record.
        let mut names: Vec<String> = redis::cmd("HKEYS").arg(self.keys.nodes()).query(c)?;
        self.ops(1);
        if !names.contains(&self.conf.node) {
            names.push(self.conf.node.clone());
        }
        // The next epoch too: a node whose clock reading rolled over first
        // already writes there.
        let epochs = [self.epoch + 1, self.epoch, self.epoch.saturating_sub(1)];
        let mut pipe = Pipe::new();
        for (_, (cl, vip)) in pairs {
            let k = record::client_key(*cl, *vip);
            for n in &names {
                for e in epochs {
                    let mut c = redis::cmd("HGET");
                    c.arg(self.keys.flows(n, e)).arg(&k[..]);
                    pipe.add(c, false);
                }
            }
        }
        let per = names.len() * epochs.len();
        let got: Vec<Option<Vec<u8>>> = pipe.query(c)?;
        self.ops(pairs.len() * per);
        for (j, (lcore, p)) in pairs.iter().enumerate() {
            let found = got
                .iter()
                .skip(j * per)
                .take(per)
                .flatten()
                .filter_map(|b| record::decode(b))
                .find(|r| (r.client, r.vip) == *p);
            match found {
                Some(r) => {
                    self.stats.found.fetch_add(1, Ordering::Relaxed);
                    self.answer(*lcore, Adopt::Found(r));
                }
                None => {
                    self.stats.not_found.fetch_add(1, Ordering::Relaxed);
                    self.answer(*lcore, Adopt::NotFound(*p));
                }
            }
        }
        Ok(())
    }

    /// Liveness, the node list, claims and loads.
    fn round(&mut self, c: &mut Conn, leaving: bool) -> redis::RedisResult<()> {
        let t0 = Instant::now();
        let (s, us): (u64, u64) = redis::cmd("TIME").query(c)?;
        self.ops(1);
        let redis_ms = s * 1000 + us / 1000;
        // Redis' clock: every node computes the same epoch.
        self.offset_ms = redis_ms as i128 - self.started.elapsed().as_millis() as i128;
        let _ = t0;
        let epoch = self.now_ms() / self.ttl_ms() + 1;
        if self.epoch != 0 && epoch != self.epoch {
            // Live flows go into the new hash before the old one expires.
            self.shared.republish();
        }
        self.epoch = epoch;
        let me = self.conf.node.clone();
        if leaving {
            // Publish what is left, then let the survivors take over.
            while self.publish(c)? {}
            let claims: Vec<Ipv4Addr> = self.claimed.clone();
            let mut p = Pipe::new();
            let mut del = redis::cmd("DEL");
            del.arg(self.keys.alive(&me));
            p.add(del, true);
            for a in &claims {
                let mut del = redis::cmd("DEL");
                del.arg(self.keys.claim(*a));
                p.add(del, true);
            }
            p.query::<()>(c)?;
            self.ops(1 + claims.len());
            self.claimed.clear();
            return Ok(());
        }
        let alive_ms = 3 * self.conf.interval.as_millis() as u64;
        let addrs: Vec<String> = self.conf.addrs.iter().map(|a| a.to_string()).collect();
        let mut set = redis::cmd("SET");
        set.arg(self.keys.alive(&me)).arg(1).arg("PX").arg(alive_ms);
        let mut hset = redis::cmd("HSET");
        hset.arg(self.keys.nodes()).arg(&me).arg(addrs.join(","));
        let mut all = redis::cmd("HGETALL");
        all.arg(self.keys.nodes());
        let (nodes,): (HashMap<String, String>,) = Pipe::new()
            .add(set, true)
            .add(hset, true)
            .add(all, false)
            .query(c)?;
        self.ops(3);
        self.nodes = nodes
            .into_iter()
            .map(|(n, a)| (n, parse_addrs(&a)))
            .collect();
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        let mut p = Pipe::new();
        for n in &names {
            let mut e = redis::cmd("EXISTS");
            e.arg(self.keys.alive(n));
            p.add(e, false);
        }
        let exists: Vec<bool> = if names.is_empty() {
            Vec::new()
        } else {
            p.query(c)?
        };
        self.ops(names.len());
        let alive: HashSet<String> = names
            .iter()
            .zip(exists)
            .filter(|(_, e)| *e)
            .map(|(n, _)| n.clone())
            .collect();
        for n in &names {
            if self.alive.contains(n) && !alive.contains(n) {
                self.stats.peers_dead.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(node = %n, "cluster flows: node is gone");
            }
            if alive.contains(n) {
                // Alive again (or still): its records are its own business.
                self.loaded.retain(|(m, _)| m != n || n == &me);
            }
        }
        self.alive = alive;
        let peers = self.alive.iter().filter(|n| **n != me).count();
        self.shared
            .peers_alive
            .store(peers as u32, Ordering::Relaxed);
        // Claims: orphans we can take (keep what we hold).
        let orphans = orphans(&self.nodes, &self.alive);
        let claim_ms = 3 * self.conf.interval.as_millis() as u64;
        let mut mine = Vec::new();
        for a in orphans.iter().take(qsplice_engine::MAX_CLAIMS) {
            let key = self.keys.claim(*a);
            let took: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&me)
                .arg("NX")
                .arg("PX")
                .arg(claim_ms)
                .query(c)?;
            self.ops(1);
            let held = if took.is_some() {
                true
            } else {
                let holder: Option<String> = redis::cmd("GET").arg(&key).query(c)?;
                self.ops(1);
                if holder.as_deref() == Some(me.as_str()) {
                    redis::cmd("PEXPIRE")
                        .arg(&key)
                        .arg(claim_ms)
                        .query::<()>(c)?;
                    self.ops(1);
                    true
                } else {
                    false
                }
            };
            if held {
                if !self.claimed.contains(a) {
                    self.stats.takeovers.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(addr = %a, "cluster flows: taking over a dead node's backend-side address");
                }
                mine.push(*a);
            }
        }
        for a in &self.claimed {
            if !mine.contains(a) {
                tracing::info!(addr = %a, "cluster flows: address released (its node is back, or another took it)");
            }
        }
        self.claimed = mine;
        self.shared.claims.set(&self.claimed);
        self.stats
            .claimed
            .store(self.claimed.len() as u64, Ordering::Relaxed);
        // Loads: dead nodes' records on the addresses we serve (and our own
        // name's, once: a restart with the same name).
        let served: Vec<Ipv4Addr> = self
            .conf
            .addrs
            .iter()
            .chain(self.claimed.iter())
            .copied()
            .collect();
        let mut todo: Vec<(String, Ipv4Addr)> = Vec::new();
        for n in &names {
            let dead = !self.alive.contains(n) || (self.first_round && *n == me);
            if !dead {
                continue;
            }
            for a in &served {
                if !self.loaded.contains(&(n.clone(), *a)) {
                    todo.push((n.clone(), *a));
                }
            }
        }
        if self.first_round && !names.contains(&me) {
            self.loaded.extend(served.iter().map(|a| (me.clone(), *a)));
        }
        self.first_round = false;
        // One scan per dead node for every address to load from it.
        let mut by_node: HashMap<String, Vec<Ipv4Addr>> = HashMap::new();
        for (n, a) in todo {
            by_node.entry(n).or_default().push(a);
        }
        for (n, addrs) in by_node {
            self.load(c, &n, &addrs)?;
            for a in addrs {
                self.loaded.insert((n.clone(), a));
            }
        }
        self.forget_empty(c, &names)?;
        // This node's earlier flows are installed: strays may be reset.
        self.shared.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Install dead node `n`'s records whose backend-side address is `a`.
    fn load(&mut self, c: &mut Conn, n: &str, addrs: &[Ipv4Addr]) -> redis::RedisResult<()> {
        let mut count = 0u64;
        let alive_ms = 3 * self.conf.interval.as_millis() as u64;
        let mut beat = Instant::now();
        for e in [self.epoch + 1, self.epoch, self.epoch.saturating_sub(1)] {
            let key = self.keys.flows(n, e);
            let mut cursor = "0".to_string();
            loop {
                let (next, kv): (String, Vec<Vec<u8>>) = redis::cmd("HSCAN")
                    .arg(&key)
                    .arg(&cursor)
                    .arg("COUNT")
                    .arg(1000)
                    .query(c)?;
                self.ops(1);
                for pair in kv.chunks_exact(2) {
                    let Some(r) = record::decode(&pair[1]) else {
                        continue;
                    };
                    if !addrs.contains(r.local.ip()) {
                        continue;
                    }
                    let lcore = FlowSyncShared::owner(
                        r.local.port(),
                        self.conf.sport_min,
                        self.conf.lcores,
                    );
                    self.answer(lcore, Adopt::Install(r));
                    count += 1;
                }
                if next == "0" {
                    break;
                }
                cursor = next;
                // A long scan must not make this node look dead.
                if beat.elapsed() >= self.conf.interval {
                    beat = Instant::now();
                    redis::cmd("SET")
                        .arg(self.keys.alive(&self.conf.node))
                        .arg(1)
                        .arg("PX")
                        .arg(alive_ms)
                        .query::<()>(c)?;
                    self.ops(1);
                }
            }
        }
        if count > 0 {
            tracing::info!(node = %n, addrs = ?addrs, records = count, "cluster flows: installed a dead node's flows");
        }
        self.stats.loaded.fetch_add(count, Ordering::Relaxed);
        Ok(())
    }

    /// Dead nodes with no records left leave the node list.
    fn forget_empty(&mut self, c: &mut Conn, names: &[String]) -> redis::RedisResult<()> {
        let dead: Vec<&String> = names.iter().filter(|n| !self.alive.contains(*n)).collect();
        if dead.is_empty() {
            return Ok(());
        }
        // One key per EXISTS: in a Redis Cluster the two hashes may live
        // on different shards.
        let mut p = Pipe::new();
        for n in &dead {
            for e in [self.epoch + 1, self.epoch, self.epoch.saturating_sub(1)] {
                let mut x = redis::cmd("EXISTS");
                x.arg(self.keys.flows(n, e));
                p.add(x, false);
            }
        }
        let counts: Vec<u64> = p.query(c)?;
        self.ops(p.len());
        for (n, k) in dead
            .iter()
            .zip(counts.chunks(3).map(|c| c.iter().sum::<u64>()))
        {
            if k > 0 {
                continue; // its records may still be needed
            }
            let addrs = self.nodes.get(*n).cloned().unwrap_or_default();
            // Addresses of it this node serves: kept while this node still
            // republishes flows on them (adopted, long-lived), else given up.
            let recent = |a: &Ipv4Addr| self.locals.get(a).is_some_and(|e| *e + 1 >= self.epoch);
            let mine: Vec<Ipv4Addr> = addrs
                .iter()
                .copied()
                .filter(|a| self.claimed.contains(a))
                .collect();
            if mine.iter().any(recent) {
                continue;
            }
            for a in &mine {
                redis::cmd("DEL").arg(self.keys.claim(*a)).query::<()>(c)?;
                self.ops(1);
                self.claimed.retain(|x| x != a);
                tracing::info!(addr = %a, node = %n, "cluster flows: no flow left on a taken-over address; released");
            }
            if !mine.is_empty() {
                self.shared.claims.set(&self.claimed);
            }
            // Another node's claim on one of its addresses: it still serves
            // flows there.
            let mut p = Pipe::new();
            for a in addrs.iter().filter(|a| !mine.contains(a)) {
                let mut x = redis::cmd("EXISTS");
                x.arg(self.keys.claim(*a));
                p.add(x, false);
            }
            let held: Vec<u64> = if p.len() == 0 {
                Vec::new()
            } else {
                self.ops(p.len());
                p.query(c)?
            };
            if held.iter().any(|h| *h > 0) {
                continue;
            }
            redis::cmd("HDEL")
                .arg(self.keys.nodes())
                .arg(n.as_str())
                .query::<()>(c)?;
            self.ops(1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphans_are_dead_nodes_addresses_no_live_node_lists() {
        let a: Ipv4Addr = "10.10.2.1".parse().unwrap();
        let b: Ipv4Addr = "10.10.2.2".parse().unwrap();
        let mut nodes = HashMap::new();
        nodes.insert("na".to_string(), vec![a]);
        nodes.insert("nb".to_string(), vec![b]);
        nodes.insert("na-old".to_string(), vec![a]);
        let alive: HashSet<String> = ["nb".to_string()].into();
        assert_eq!(orphans(&nodes, &alive), vec![a]);
        // The address's owner restarted under a new name: not an orphan.
        let alive: HashSet<String> = ["nb".to_string(), "na".to_string()].into();
        assert!(orphans(&nodes, &alive).is_empty());
        assert_eq!(parse_addrs("10.10.2.1, x,10.10.2.2"), vec![a, b]);
    }
}
