//! The access log's writer, on the control thread: drains the lcores'
//! record rings, formats one JSON line per connection and appends it to the
//! file (or stdout). SIGUSR1 or `POST /api/v1/access-log/reopen` reopens
//! the file (logrotate's `postrotate`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{Error, Result};
use qsplice_lb::access::{AccessRecord, AccessRing};
use serde_json::{json, Value};

/// Records written per drain at most (the control loop has other work; the
/// rest waits for the next iteration, 5 ms later).
const PER_DRAIN: usize = 8192;

/// The access log: the lcores' rings and, when it is on, the open file.
pub struct AccessLog {
    /// None: stdout.
    path: Option<PathBuf>,
    /// None: the log is off (`[lb.access_log] path` absent).
    out: Option<Box<dyn Write + Send>>,
    rings: Vec<Arc<AccessRing>>,
    /// VIP names, already JSON strings (quoted, escaped).
    vip_names: HashMap<SocketAddr, String>,
    hz: u64,
    /// The line being formatted (reused: no allocation per record).
    line: String,
    date: DateCache,
    /// Lines written.
    pub written: u64,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("path", &self.path)
            .field("written", &self.written)
            .finish()
    }
}

fn open(path: &Option<PathBuf>) -> Result<Box<dyn Write + Send>> {
    Ok(match path {
        None => Box::new(std::io::LineWriter::new(std::io::stdout())),
        Some(p) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| {
                    Error(format!(
                        "lb.access_log.path {}: cannot open: {e}",
                        p.display()
                    ))
                })?;
            Box::new(std::io::BufWriter::with_capacity(1 << 16, f))
        }
    })
}

impl AccessLog {
    /// Open `path` (`"-"`: stdout; None: off for now) for the lcores'
    /// `rings`.
    pub fn new(path: Option<&str>, rings: Vec<Arc<AccessRing>>, hz: u64) -> Result<Self> {
        let mut a = AccessLog {
            path: None,
            out: None,
            rings,
            vip_names: HashMap::new(),
            hz: hz.max(1),
            line: String::with_capacity(512),
            date: DateCache::default(),
            written: 0,
        };
        a.set_path(path)?;
        Ok(a)
    }

    /// Is it on?
    pub fn is_on(&self) -> bool {
        self.out.is_some()
    }

    /// Name the VIP at `addr` (added or renamed while running).
    pub fn set_vip_name(&mut self, addr: SocketAddr, name: &str) {
        self.vip_names
            .insert(addr, Value::String(name.to_string()).to_string());
    }

    /// Lcore `i`'s ring.
    pub fn ring(&self, i: usize) -> Arc<AccessRing> {
        self.rings[i].clone()
    }

    /// Write to `path` (`"-"`: stdout; None: off) from now on (`[lb.access_log]
    /// path` changed by a reload); the old file is flushed and closed.
    pub fn set_path(&mut self, path: Option<&str>) -> Result<()> {
        let p = path.map(|p| (p != "-").then(|| PathBuf::from(p)));
        let out = match &p {
            Some(p) => Some(open(p)?),
            None => None,
        };
        if let Some(o) = self.out.as_mut() {
            let _ = o.flush();
        }
        let was_on = self.out.is_some();
        self.out = out;
        self.path = p.flatten();
        if was_on || self.out.is_some() {
            tracing::info!(path = ?path, "access log {}", if self.out.is_some() { "on" } else { "off" });
        }
        Ok(())
    }

    /// Reopen the file (after a rotation moved it away); false when the
    /// log is off.
    pub fn reopen(&mut self) -> Result<bool> {
        let Some(o) = self.out.as_mut() else {
            return Ok(false);
        };
        let _ = o.flush();
        self.out = Some(open(&self.path)?);
        tracing::info!(path = ?self.path, "access log reopened");
        Ok(true)
    }

    /// Write what the lcores pushed. `tsc_now` is the lcores' clock now
    /// (records carry that clock; it becomes wall time here).
    pub fn drain(&mut self, tsc_now: u64) {
        let wall_now = SystemTime::now();
        let mut n = 0;
        for ring in &self.rings {
            while n < PER_DRAIN {
                let Some(r) = ring.pop() else {
                    break;
                };
                n += 1;
                let Some(out) = self.out.as_mut() else {
                    // Off: what was pushed before the lcores heard is dropped.
                    continue;
                };
                self.line.clear();
                write_record_cached(
                    &mut self.line,
                    &r,
                    &self.vip_names,
                    self.hz,
                    tsc_now,
                    wall_now,
                    &mut self.date,
                );
                self.line.push('\n');
                if let Err(e) = out.write_all(self.line.as_bytes()) {
                    tracing::warn!("access log: {e}");
                    return;
                }
                self.written += 1;
            }
        }
        if n > 0 {
            if let Some(o) = self.out.as_mut() {
                let _ = o.flush();
            }
        }
    }
}

/// RFC 3339 UTC time with microseconds.
pub fn rfc3339(t: SystemTime) -> String {
    let mut s = String::new();
    write_rfc3339(&mut s, t);
    s
}

fn write_rfc3339(out: &mut String, t: SystemTime) {
    write_rfc3339_cached(out, t, &mut DateCache::default());
}

/// The `YYYY-MM-DDTHH:MM:SS` of the last second formatted (lines come in
/// bursts within the same second).
#[derive(Debug, Default)]
pub struct DateCache {
    secs: Option<u64>,
    text: String,
}

fn write_rfc3339_cached(out: &mut String, t: SystemTime, cache: &mut DateCache) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    if cache.secs != Some(secs) {
        let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        cache.text.clear();
        let _ = write!(
            cache.text,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
        );
        cache.secs = Some(secs);
    }
    out.push_str(&cache.text);
    out.push('.');
    push_padded(out, u64::from(d.subsec_micros()), 6);
    out.push('Z');
}

/// `n` in decimal (no allocation, no `fmt` machinery).
fn push_u64(out: &mut String, n: u64) {
    push_padded(out, n, 1);
}

/// `n` in decimal, zero-padded to at least `width` digits.
fn push_padded(out: &mut String, mut n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = i.min(buf.len() - width.min(buf.len()));
    out.push_str(std::str::from_utf8(&buf[start..]).unwrap_or_default());
}

/// `a.b.c.d:port`.
fn push_sock(out: &mut String, a: &SocketAddr) {
    match a {
        SocketAddr::V4(a) => {
            for (k, o) in a.ip().octets().iter().enumerate() {
                if k > 0 {
                    out.push('.');
                }
                push_u64(out, u64::from(*o));
            }
            out.push(':');
            push_u64(out, u64::from(a.port()));
        }
        SocketAddr::V6(a) => {
            use std::fmt::Write;
            let _ = write!(out, "[{}]:{}", a.ip(), a.port());
        }
    }
}

/// `us` microseconds as milliseconds with three decimals.
fn push_ms(out: &mut String, us: u64) {
    push_u64(out, us / 1000);
    out.push('.');
    push_padded(out, us % 1000, 3);
}

/// Lcore clock ticks as microseconds.
fn ticks_us(t: u64, hz: u64) -> u64 {
    let hz = hz.max(1);
    match t.checked_mul(1_000_000) {
        Some(x) => x / hz,
        None => (u128::from(t) * 1_000_000 / u128::from(hz)) as u64,
    }
}

/// One record as a JSON line into `out` (no newline; docs/operations.md
/// lists the fields). `vip_names` holds JSON strings.
pub fn write_record(
    out: &mut String,
    r: &AccessRecord,
    vip_names: &HashMap<SocketAddr, String>,
    hz: u64,
    tsc_now: u64,
    wall_now: SystemTime,
) {
    write_record_cached(
        out,
        r,
        vip_names,
        hz,
        tsc_now,
        wall_now,
        &mut DateCache::default(),
    );
}

/// [`write_record`] with the date of the previous line kept in `cache`.
pub fn write_record_cached(
    out: &mut String,
    r: &AccessRecord,
    vip_names: &HashMap<SocketAddr, String>,
    hz: u64,
    tsc_now: u64,
    wall_now: SystemTime,
    cache: &mut DateCache,
) {
    let ago = Duration::from_micros(ticks_us(tsc_now.saturating_sub(r.end), hz));
    let end = wall_now.checked_sub(ago).unwrap_or(wall_now);
    out.push_str("{\"time\":\"");
    write_rfc3339_cached(out, end, cache);
    out.push_str("\",\"client\":\"");
    push_sock(out, &r.client);
    out.push_str("\",\"vip\":");
    out.push_str(vip_names.get(&r.vip).map_or("\"\"", String::as_str));
    out.push_str(",\"vip_address\":\"");
    push_sock(out, &r.vip);
    out.push_str("\",\"backend\":");
    match &r.backend {
        Some(b) => {
            out.push('"');
            push_sock(out, b);
            out.push('"');
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"bytes_c2s\":");
    push_u64(out, r.c2s_bytes);
    out.push_str(",\"bytes_s2c\":");
    push_u64(out, r.s2c_bytes);
    out.push_str(",\"duration_ms\":");
    push_ms(out, ticks_us(r.end.saturating_sub(r.start), hz));
    out.push_str(",\"setup_ms\":");
    push_ms(out, r.setup_us);
    out.push_str(",\"end\":\"");
    out.push_str(r.how.as_str());
    out.push_str("\",\"lcore\":");
    push_u64(out, u64::from(r.lcore));
    if let Some(t) = &r.tls {
        let version = match t.version {
            0x0304 => "1.3",
            0x0303 => "1.2",
            0 => "",
            _ => "other",
        };
        out.push_str(",\"tls\":{\"version\":\"");
        out.push_str(version);
        out.push_str("\",\"group\":");
        match t.group {
            Some(g) => {
                out.push('"');
                out.push_str(g.name());
                out.push('"');
            }
            None => out.push_str("null"),
        }
        let sni = Value::String(String::from_utf8_lossy(t.sni()).into_owned());
        let _ = write!(out, ",\"resumed\":{},\"sni\":{sni}}}", t.resumed);
    }
    if let Some(d) = r.sa.as_str() {
        out.push_str(",\"session\":\"");
        out.push_str(d);
        out.push('"');
    }
    out.push('}');
}

/// [`write_record`] as a JSON value (tests, tools).
pub fn format_record(
    r: &AccessRecord,
    vip_names: &HashMap<SocketAddr, String>,
    hz: u64,
    tsc_now: u64,
    wall_now: SystemTime,
) -> Value {
    let names = vip_names
        .iter()
        .map(|(a, n)| (*a, Value::String(n.clone()).to_string()))
        .collect();
    let mut s = String::new();
    write_record(&mut s, r, &names, hz, tsc_now, wall_now);
    serde_json::from_str(&s).unwrap_or_else(|e| json!({ "error": e.to_string(), "line": s }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use qsplice_lb::access::{EndReason, SaDecision, TlsAccess};

    /// The hand-written number and address formatting is `fmt`'s.
    #[test]
    fn digits_match_fmt() {
        let mut vals = vec![
            0u64,
            1,
            9,
            10,
            99,
            100,
            999,
            1000,
            65_535,
            u64::MAX,
            u64::MAX - 1,
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            vals.push(x >> (x % 64));
        }
        for v in vals {
            let mut s = String::new();
            push_u64(&mut s, v);
            assert_eq!(s, v.to_string());
            for w in [3, 6] {
                s.clear();
                push_padded(&mut s, v, w);
                assert_eq!(s, format!("{v:0w$}"));
            }
            s.clear();
            push_ms(&mut s, v);
            assert_eq!(s, format!("{}.{:03}", v / 1000, v % 1000));
            let a = SocketAddr::V4(std::net::SocketAddrV4::new(
                std::net::Ipv4Addr::from(v as u32),
                (v >> 32) as u16,
            ));
            s.clear();
            push_sock(&mut s, &a);
            assert_eq!(s, a.to_string());
            let a6 = SocketAddr::new(
                std::net::Ipv6Addr::from(u128::from(v) << 17).into(),
                v as u16,
            );
            s.clear();
            push_sock(&mut s, &a6);
            assert_eq!(s, a6.to_string());
            assert_eq!(
                ticks_us(v, 2_500_000_000),
                (u128::from(v) * 1_000_000 / 2_500_000_000) as u64
            );
        }
        // The cached date is the uncached one, across a second boundary.
        let mut cache = DateCache::default();
        for us in [
            1_796_445_123_999_999u64,
            1_796_445_124_000_000,
            1_796_445_124_000_001,
        ] {
            let t = UNIX_EPOCH + Duration::from_micros(us);
            let mut s = String::new();
            write_rfc3339_cached(&mut s, t, &mut cache);
            assert_eq!(s, rfc3339(t));
        }
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::from_micros(1_796_445_123_456_789);
        assert_eq!(rfc3339(t), "2026-12-05T04:32:03.456789Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn a_record_becomes_one_json_line() {
        let vip: SocketAddr = "10.10.1.1:443".parse().unwrap();
        let mut tls = TlsAccess::of(None);
        tls.version = 0x0304;
        tls.group = Some(qsplice_tls::Group::X25519MlKem768);
        tls.sni[..8].copy_from_slice(b"vip.test");
        tls.sni_len = 8;
        let r = AccessRecord {
            lcore: 1,
            vip,
            client: "10.10.1.2:40001".parse().unwrap(),
            backend: Some("10.10.2.11:80".parse().unwrap()),
            start: 1_000_000,
            end: 3_500_000,
            setup_us: 1234,
            c2s_bytes: 77,
            s2c_bytes: 1_048_576,
            how: EndReason::Fin,
            tls: Some(tls),
            sa: SaDecision::None,
        };
        let names = [(vip, "web-tls".to_string())].into_iter().collect();
        let now = UNIX_EPOCH + Duration::from_secs(1_796_445_123);
        // 1 MHz clock: the record ended 0.5 s before "now".
        let v = format_record(&r, &names, 1_000_000, 4_000_000, now);
        assert_eq!(v["time"], "2026-12-05T04:32:02.500000Z");
        assert_eq!(v["vip"], "web-tls");
        assert_eq!(v["backend"], "10.10.2.11:80");
        assert_eq!(v["duration_ms"], 2500.0);
        assert_eq!(v["setup_ms"], 1.234);
        assert_eq!(v["end"], "fin");
        assert_eq!(v["tls"]["version"], "1.3");
        assert_eq!(v["tls"]["group"], "X25519MLKEM768");
        assert_eq!(v["tls"]["sni"], "vip.test");
        assert!(v.get("session").is_none());
        let hit = AccessRecord {
            sa: SaDecision::Hit,
            tls: None,
            backend: None,
            ..r
        };
        let v = format_record(&hit, &names, 1_000_000, 4_000_000, now);
        assert_eq!(v["session"], "hit");
        assert_eq!(v["backend"], serde_json::Value::Null);
        assert!(v.get("tls").is_none());
        let line = v.to_string();
        assert!(!line.contains('\n'));
    }
}
