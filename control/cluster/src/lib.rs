//! State the nodes of a qsplice cluster share through Redis.
//!
//! **TLS ticket keys.** Every node must seal and open tickets with the same
//! keys, so a ticket issued through node A resumes through node B. Per
//! terminated VIP, Redis holds one record (`<prefix>:tickets:<vip>`):
//! `previous`, `current`, `next` key and the `current` key's creation time
//! (Redis' clock, `TIME`, so the nodes' clocks do not matter). Nodes seal
//! with `current` and open with any of the three. When `current` is older
//! than the VIP's rotation interval, the node that takes the rotation lock
//! (`SET <prefix>:lock:<vip> <node> NX PX`) shifts the record: `next`
//! becomes `current` and a new `next` is drawn. Because `next` was published
//! a whole interval before it is used, a node that has not yet seen the
//! rotation still opens the tickets of one that has.
//!
//! **TLS session-ID cache.** A TLS 1.2 session (or TLS 1.3 stateful PSK)
//! stored on one node is appended to a Redis stream per VIP
//! (`<prefix>:sessions:<vip>`, trimmed to about the cache's size, each
//! entry with its node and Redis time); every node reads the stream and
//! imports the other nodes' sessions into its cache (with their age, so
//! the TTL holds). A resumption on another node therefore finds the
//! session one sync interval after the handshake.
//!
//! **Session-aware dispatch rows.** A row one node's server mapping table
//! learns (session key, keyed with the cluster's secret, → backend
//! address) is appended to the stream `<prefix>:rows`; every other node
//! reads it and learns the same row, so a resumption that ECMP sends to
//! another node still goes to the backend that holds the session. The BUSY
//! column stays per node.
//!
//! **Flows** ([`flows`]): every spliced flow's record, adopted by another
//! node when ECMP moves the flow there, and a dead node's backend-side
//! address taken over by a survivor.
//!
//! The sync runs on its own thread ([`ClusterSync::spawn`]), never on an
//! lcore and never blocking the control loop; Redis being away only stops
//! rotation (the installed keys stay in use) and is counted.

#![forbid(unsafe_code)]

mod conn;
pub mod flows;

pub use conn::parse_cluster;
use conn::{Conn, Connector};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qsplice_tls::cache::SessionCache;
use qsplice_tls::ticket::{KeyMaterial, TicketKeys};

/// One VIP's shared ticket keys, as stored in Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedKeys {
    /// Rotations so far (1 at creation).
    pub epoch: u64,
    /// When `current` became current, ms since the Unix epoch (Redis' clock).
    pub created_ms: u64,
    /// The key rotated out last (opened, not sealed with).
    pub previous: Option<KeyMaterial>,
    /// Sealing key.
    pub current: KeyMaterial,
    /// The key that becomes current at the next rotation.
    pub next: KeyMaterial,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn key_str(k: &KeyMaterial) -> String {
    format!("{}:{}", hex(&k.name), hex(&k.secret))
}

fn key_parse(s: &str) -> Option<KeyMaterial> {
    let (n, k) = s.split_once(':')?;
    Some(KeyMaterial {
        name: unhex(n)?,
        secret: unhex(k)?,
    })
}

impl SharedKeys {
    /// A first record: fresh `current` and `next`.
    pub fn first(now_ms: u64) -> SharedKeys {
        SharedKeys {
            epoch: 1,
            created_ms: now_ms,
            previous: None,
            current: KeyMaterial::generate(),
            next: KeyMaterial::generate(),
        }
    }

    /// The record after one rotation at `now_ms`.
    pub fn rotated(&self, now_ms: u64) -> SharedKeys {
        SharedKeys {
            epoch: self.epoch + 1,
            created_ms: now_ms,
            previous: Some(self.current.clone()),
            current: self.next.clone(),
            next: KeyMaterial::generate(),
        }
    }

    /// The stored text: `v1 <epoch> <created_ms> <prev|-> <cur> <next>`,
    /// each key `name:secret` in hex.
    pub fn encode(&self) -> String {
        format!(
            "v1 {} {} {} {} {}",
            self.epoch,
            self.created_ms,
            self.previous.as_ref().map_or("-".to_string(), key_str),
            key_str(&self.current),
            key_str(&self.next)
        )
    }

    /// Parse [`SharedKeys::encode`]'s text (`None`: not a record).
    pub fn decode(s: &str) -> Option<SharedKeys> {
        let mut it = s.split(' ');
        if it.next()? != "v1" {
            return None;
        }
        let epoch = it.next()?.parse().ok()?;
        let created_ms = it.next()?.parse().ok()?;
        let previous = match it.next()? {
            "-" => None,
            p => Some(key_parse(p)?),
        };
        let current = key_parse(it.next()?)?;
        let next = key_parse(it.next()?)?;
        if it.next().is_some() {
            return None;
        }
        Some(SharedKeys {
            epoch,
            created_ms,
            previous,
            current,
            next,
        })
    }

    /// Whether `current` has served `interval` at `now_ms`.
    pub fn due(&self, now_ms: u64, interval: Duration) -> bool {
        now_ms.saturating_sub(self.created_ms) >= interval.as_millis() as u64
    }
}

/// Settings of the sync (`[cluster]`).
#[derive(Clone, Debug)]
pub struct SyncConf {
    /// `redis://host:port/db`, `rediss://…`, `redis+unix:///path`, or
    /// `redis+sentinel://host:port[,host:port…]/master` (Redis Sentinel
    /// names the master; a failover is followed at the next reconnect).
    pub redis_url: String,
    /// Key prefix shared by the cluster's nodes.
    pub prefix: String,
    /// This node's name (holder of the rotation lock).
    pub node: String,
    /// How often the records are read.
    pub interval: Duration,
    /// Connect / read / write timeout.
    pub timeout: Duration,
}

/// Counters and state of the sync, read by the control thread's report.
#[derive(Debug, Default)]
pub struct SyncStats {
    /// Connected to Redis now.
    pub connected: AtomicBool,
    /// Sync rounds that reached Redis.
    pub rounds: AtomicU64,
    /// Rounds that failed (Redis away, timeout, refused command).
    pub errors: AtomicU64,
    /// Rotations this node performed (it held the lock).
    pub rotations_led: AtomicU64,
    /// Key sets installed from Redis.
    pub installs: AtomicU64,
    /// Sessions this node appended to the cluster's streams.
    pub sessions_out: AtomicU64,
    /// Sessions imported from other nodes.
    pub sessions_in: AtomicU64,
    /// Mapping-table rows sent / received / lost to a full queue.
    pub rows_out: AtomicU64,
    /// See `rows_out`.
    pub rows_in: AtomicU64,
    /// See `rows_out`.
    pub rows_dropped: AtomicU64,
    /// The last error's message.
    pub last_error: Mutex<String>,
}

/// What one terminated VIP shares.
#[derive(Clone, Debug)]
pub struct VipShare {
    /// The VIP address (`ip:port`): the records' name.
    pub vip: String,
    /// Its ticket keys (tickets on).
    pub tickets: Option<Arc<TicketKeys>>,
    /// Its session-ID cache (cache on).
    pub cache: Option<Arc<SessionCache>>,
}

/// The terminated VIPs whose state is synced, republished by the control
/// thread when the VIP set changes.
pub type KeyTable = Arc<Mutex<Vec<VipShare>>>;

/// A server-mapping-table row as the cluster shares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowMsg {
    /// The session-aware VIP (`ip:port`).
    pub vip: String,
    /// The table key.
    pub key: u64,
    /// The backend (`ip:port`).
    pub backend: String,
}

/// Rows queued each way at most.
const ROWS_MAX: usize = 65_536;

/// Sessions one node appends per VIP and round at most (the rest wait in
/// the cache's outbox, itself bounded).
const SESSIONS_PER_ROUND: usize = 2048;

/// The sync thread's handle.
#[derive(Debug)]
pub struct ClusterSync {
    /// Its counters.
    pub stats: Arc<SyncStats>,
    /// What it syncs (the control thread replaces the list).
    pub keys: KeyTable,
    /// Rows this node learned, for the cluster (control thread pushes).
    pub rows_out: Arc<Mutex<std::collections::VecDeque<RowMsg>>>,
    /// Rows other nodes learned (control thread drains).
    pub rows_in: Arc<Mutex<std::collections::VecDeque<RowMsg>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ClusterSync {
    /// Start the sync thread (`qsplice-cluster`).
    pub fn spawn(conf: SyncConf) -> std::io::Result<ClusterSync> {
        let stats = Arc::new(SyncStats::default());
        let keys: KeyTable = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let rows_out: Arc<Mutex<std::collections::VecDeque<RowMsg>>> = Arc::default();
        let rows_in: Arc<Mutex<std::collections::VecDeque<RowMsg>>> = Arc::default();
        let (s2, k2, st2) = (stats.clone(), keys.clone(), stop.clone());
        let rows = (rows_out.clone(), rows_in.clone());
        let thread = std::thread::Builder::new()
            .name("qsplice-cluster".into())
            .spawn(move || run(conf, &k2, &s2, &st2, &rows))?;
        Ok(ClusterSync {
            stats,
            keys,
            rows_out,
            rows_in,
            stop,
            thread: Some(thread),
        })
    }

    /// Queue rows this node learned (bounded; the oldest are dropped).
    pub fn send_rows(&self, rows: impl IntoIterator<Item = RowMsg>) {
        if let Ok(mut q) = self.rows_out.lock() {
            for r in rows {
                if q.len() >= ROWS_MAX {
                    q.pop_front();
                    self.stats.rows_dropped.fetch_add(1, Ordering::Relaxed);
                }
                q.push_back(r);
            }
        }
    }

    /// Rows other nodes learned since the last call.
    pub fn received_rows(&self) -> Vec<RowMsg> {
        self.rows_in
            .lock()
            .map(|mut q| q.drain(..).collect())
            .unwrap_or_default()
    }

    /// Replace the list of VIPs whose state is synced.
    pub fn set_vips(&self, v: Vec<VipShare>) {
        for x in &v {
            if let Some(c) = &x.cache {
                c.share(c.capacity());
            }
        }
        if let Ok(mut k) = self.keys.lock() {
            *k = v;
        }
    }
}

impl Drop for ClusterSync {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Joined only if it ends promptly: a connect to an unreachable
        // sentinel may block, and shutdown must not wait for it.
        if let Some(t) = self.thread.take() {
            let deadline = std::time::Instant::now() + Duration::from_millis(500);
            while !t.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

type RowQueues = (
    Arc<Mutex<std::collections::VecDeque<RowMsg>>>,
    Arc<Mutex<std::collections::VecDeque<RowMsg>>>,
);

/// `host:port[,host:port…]/master` → the sentinels and the master's name.
pub fn parse_sentinel(rest: &str) -> Option<(Vec<String>, String)> {
    let (hosts, master) = rest.split_once('/')?;
    let hosts: Vec<String> = hosts.split(',').map(str::to_string).collect();
    let ok_host = |h: &String| {
        h.rsplit_once(':')
            .is_some_and(|(a, p)| !a.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
    };
    if master.is_empty() || master.contains('/') || hosts.is_empty() || !hosts.iter().all(ok_host) {
        return None;
    }
    Some((hosts, master.to_string()))
}

fn run(conf: SyncConf, keys: &KeyTable, stats: &SyncStats, stop: &AtomicBool, rows: &RowQueues) {
    let mut client = match Connector::open(conf.redis_url.as_str()) {
        Ok(c) => c,
        Err(e) => {
            set_error(stats, format!("redis url: {e}"));
            return;
        }
    };
    let mut conn: Option<Conn> = None;
    // Per VIP: the epoch and current key name installed last (a Redis
    // that restarted empty starts again at epoch 1 with other keys).
    let mut installed: HashMap<String, (u64, [u8; 16])> = HashMap::new();
    // Per VIP: the last session-stream entry read.
    let mut last_ids: HashMap<String, String> = HashMap::new();
    let mut rows_last = "0-0".to_string();
    let mut logged = String::new();
    while !stop.load(Ordering::Relaxed) {
        let vips: Vec<VipShare> = keys.lock().map(|k| k.clone()).unwrap_or_default();
        let r = (|| -> redis::RedisResult<()> {
            if conn.is_none() {
                let c = client.connect(conf.timeout)?;
                conn = Some(c);
            }
            let c = conn.as_mut().expect("connected");
            let now = redis_now_ms(c)?;
            for v in &vips {
                if let Some(k) = &v.tickets {
                    sync_vip(c, &conf, &v.vip, k, now, &mut installed, stats)?;
                }
                if let Some(cache) = &v.cache {
                    sync_sessions(c, &conf, &v.vip, cache, now, &mut last_ids, stats)?;
                }
            }
            sync_rows(c, &conf, rows, &mut rows_last, stats)?;
            Ok(())
        })();
        match r {
            Ok(()) => {
                stats.connected.store(conn.is_some(), Ordering::Relaxed);
                stats.rounds.fetch_add(1, Ordering::Relaxed);
                if !logged.is_empty() {
                    tracing::info!("cluster: Redis reachable again");
                    logged.clear();
                }
            }
            Err(e) => {
                conn = None;
                stats.connected.store(false, Ordering::Relaxed);
                stats.errors.fetch_add(1, Ordering::Relaxed);
                let msg = e.to_string();
                if msg != logged {
                    tracing::warn!(
                        "cluster: Redis {}: {msg}; keeping the installed ticket keys",
                        conf.redis_url
                    );
                    logged = msg.clone();
                }
                set_error(stats, msg);
            }
        }
        // Sleep in small steps so a stop is seen quickly.
        let mut left = conf.interval;
        while !left.is_zero() && !stop.load(Ordering::Relaxed) {
            let d = left.min(Duration::from_millis(50));
            std::thread::sleep(d);
            left -= d;
        }
    }
}

fn set_error(stats: &SyncStats, msg: String) {
    if let Ok(mut e) = stats.last_error.lock() {
        *e = msg;
    }
}

fn redis_now_ms(c: &mut Conn) -> redis::RedisResult<u64> {
    let (s, us): (u64, u64) = redis::cmd("TIME").query(c)?;
    Ok(s * 1000 + us / 1000)
}

#[allow(clippy::too_many_arguments)]
fn sync_vip(
    c: &mut Conn,
    conf: &SyncConf,
    vip: &str,
    k: &TicketKeys,
    now: u64,
    installed: &mut HashMap<String, (u64, [u8; 16])>,
    stats: &SyncStats,
) -> redis::RedisResult<()> {
    let key = format!("{}:tickets:{vip}", conf.prefix);
    let lock = format!("{}:lock:{vip}", conf.prefix);
    let stored: Option<String> = redis::cmd("GET").arg(&key).query(c)?;
    let rec = stored.as_deref().and_then(SharedKeys::decode);
    let needs_write = match &rec {
        None => true,
        Some(r) => r.due(now, k.interval()),
    };
    let rec = if needs_write {
        // One node rotates (or creates); the others read its result.
        let hold = (conf.timeout * 4).as_millis().max(1000) as u64;
        let got: Option<String> = redis::cmd("SET")
            .arg(&lock)
            .arg(&conf.node)
            .arg("NX")
            .arg("PX")
            .arg(hold)
            .query(c)?;
        if got.is_some() {
            // Re-read under the lock: another node may have just done it.
            let again: Option<String> = redis::cmd("GET").arg(&key).query(c)?;
            let cur = again.as_deref().and_then(SharedKeys::decode);
            let new = match cur {
                None => SharedKeys::first(now),
                Some(r) if r.due(now, k.interval()) => r.rotated(now),
                Some(r) => r,
            };
            if Some(&new) != rec.as_ref() {
                let _: () = redis::cmd("SET").arg(&key).arg(new.encode()).query(c)?;
                stats.rotations_led.fetch_add(1, Ordering::Relaxed);
                tracing::info!(vip, epoch = new.epoch, node = %conf.node, "cluster: ticket keys rotated");
            }
            let holder: Option<String> = redis::cmd("GET").arg(&lock).query(c)?;
            if holder.as_deref() == Some(conf.node.as_str()) {
                let _: () = redis::cmd("DEL").arg(&lock).query(c)?;
            }
            Some(new)
        } else {
            rec
        }
    } else {
        rec
    };
    if let Some(r) = rec {
        let id = (r.epoch, r.current.name);
        if installed.get(vip) != Some(&id) || !k.managed() {
            k.install(
                r.previous.as_ref(),
                &r.current,
                Some(&r.next),
                Duration::from_millis(now.saturating_sub(r.created_ms)),
            );
            installed.insert(vip.to_string(), id);
            stats.installs.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Append this node's new sessions to the VIP's stream, import the other
/// nodes'.
fn sync_sessions(
    c: &mut Conn,
    conf: &SyncConf,
    vip: &str,
    cache: &SessionCache,
    now: u64,
    last_ids: &mut HashMap<String, String>,
    stats: &SyncStats,
) -> redis::RedisResult<()> {
    let key = format!("{}:sessions:{vip}", conf.prefix);
    let out = cache.drain_outbox(SESSIONS_PER_ROUND);
    if !out.is_empty() {
        let mut p = redis::pipe();
        for (k, v) in &out {
            p.cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(cache.capacity().max(1000))
                .arg("*")
                .arg("n")
                .arg(&conf.node)
                .arg("t")
                .arg(now)
                .arg("k")
                .arg(k.as_slice())
                .arg("v")
                .arg(v.as_slice())
                .ignore();
        }
        let _: () = p.query(c)?;
        stats
            .sessions_out
            .fetch_add(out.len() as u64, Ordering::Relaxed);
    }
    let last = last_ids
        .entry(vip.to_string())
        .or_insert_with(|| "0-0".into());
    loop {
        let r: Option<redis::streams::StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(SESSIONS_PER_ROUND)
            .arg("STREAMS")
            .arg(&key)
            .arg(last.as_str())
            .query(c)?;
        let Some(r) = r else { break };
        let ids: Vec<redis::streams::StreamId> = r.keys.into_iter().flat_map(|k| k.ids).collect();
        if ids.is_empty() {
            break;
        }
        let full = ids.len() >= SESSIONS_PER_ROUND;
        for e in ids {
            *last = e.id.clone();
            let field = |f: &str| -> Option<Vec<u8>> {
                e.map
                    .get(f)
                    .and_then(|v| redis::from_redis_value_ref::<Vec<u8>>(v).ok())
            };
            let (Some(n), Some(t), Some(k), Some(v)) =
                (field("n"), field("t"), field("k"), field("v"))
            else {
                continue;
            };
            if n == conf.node.as_bytes() {
                continue;
            }
            let t: u64 = std::str::from_utf8(&t)
                .ok()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
            cache.import(k, v, Duration::from_millis(now.saturating_sub(t)));
            stats.sessions_in.fetch_add(1, Ordering::Relaxed);
        }
        if !full {
            break;
        }
    }
    Ok(())
}

/// Send the rows this node learned; receive the others'.
fn sync_rows(
    c: &mut Conn,
    conf: &SyncConf,
    rows: &RowQueues,
    last: &mut String,
    stats: &SyncStats,
) -> redis::RedisResult<()> {
    let key = format!("{}:rows", conf.prefix);
    let out: Vec<RowMsg> = rows
        .0
        .lock()
        .map(|mut q| {
            let n = q.len().min(SESSIONS_PER_ROUND);
            q.drain(..n).collect()
        })
        .unwrap_or_default();
    if !out.is_empty() {
        let mut p = redis::pipe();
        for r in &out {
            p.cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(ROWS_MAX)
                .arg("*")
                .arg("n")
                .arg(&conf.node)
                .arg("v")
                .arg(&r.vip)
                .arg("k")
                .arg(r.key)
                .arg("b")
                .arg(&r.backend)
                .ignore();
        }
        if let Err(e) = p.query::<()>(c) {
            // Put them back (they are sent after the reconnect).
            if let Ok(mut q) = rows.0.lock() {
                for r in out.into_iter().rev() {
                    q.push_front(r);
                }
            }
            return Err(e);
        }
        stats
            .rows_out
            .fetch_add(out.len() as u64, Ordering::Relaxed);
    }
    loop {
        let r: Option<redis::streams::StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(SESSIONS_PER_ROUND)
            .arg("STREAMS")
            .arg(&key)
            .arg(last.as_str())
            .query(c)?;
        let Some(r) = r else { break };
        let ids: Vec<redis::streams::StreamId> = r.keys.into_iter().flat_map(|k| k.ids).collect();
        if ids.is_empty() {
            break;
        }
        let full = ids.len() >= SESSIONS_PER_ROUND;
        let mut got = Vec::new();
        for e in ids {
            *last = e.id.clone();
            let field = |f: &str| -> Option<String> {
                e.map
                    .get(f)
                    .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
            };
            let (Some(n), Some(v), Some(k), Some(b)) =
                (field("n"), field("v"), field("k"), field("b"))
            else {
                continue;
            };
            if n == conf.node {
                continue;
            }
            let Ok(key) = k.parse() else { continue };
            got.push(RowMsg {
                vip: v,
                key,
                backend: b,
            });
        }
        stats.rows_in.fetch_add(got.len() as u64, Ordering::Relaxed);
        if let Ok(mut q) = rows.1.lock() {
            for r in got {
                if q.len() >= ROWS_MAX {
                    q.pop_front();
                    stats.rows_dropped.fetch_add(1, Ordering::Relaxed);
                }
                q.push_back(r);
            }
        }
        if !full {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
