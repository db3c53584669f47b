//! Route announcement for a cluster of qsplice nodes behind ECMP.
//!
//! Every node announces the VIP addresses it can serve by BGP, and the
//! upstream router spreads flows over the nodes that announce them. The BGP
//! speaker is a real routing daemon — BIRD 2 — running on the node's kernel
//! interface (the exception path); qsplice never speaks BGP itself. It
//! drives BIRD through BIRD's own interfaces:
//!
//! * a routes file that the operator's `bird.conf` includes, holding two
//!   static protocols: `<protocol>` (channel `ipv4`) with a `/32` per IPv4
//!   VIP and `<protocol>6` (channel `ipv6`) with a `/128` per IPv6 VIP
//!   ([`routes_file`]);
//! * BIRD's control socket (the one `birdc` uses), where `configure`
//!   makes BIRD re-read its configuration: a changed static protocol is
//!   reconfigured in place and the BGP sessions stay up, so announcing or
//!   withdrawing a VIP is one BGP UPDATE ([`Bird`]).
//!
//! [`Announcer`] holds what was applied and what is wanted, and retries a
//! failed step (BIRD not started yet, socket gone) with a bounded backoff.
//! The control thread calls it; nothing here runs on an lcore.

#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutingError {
    /// Writing the routes file failed.
    File(String),
    /// The control socket could not be reached or broke off.
    Socket(String),
    /// BIRD answered with an error code (its reply text).
    Bird(u16, String),
    /// BIRD's reply was not its control protocol.
    Protocol(String),
}

impl std::fmt::Display for RoutingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoutingError::File(e) => write!(f, "routes file: {e}"),
            RoutingError::Socket(e) => write!(f, "BIRD control socket: {e}"),
            RoutingError::Bird(c, t) => write!(f, "BIRD answered {c:04}: {t}"),
            RoutingError::Protocol(e) => write!(f, "BIRD control protocol: {e}"),
        }
    }
}

impl std::error::Error for RoutingError {}

/// The routes file: BIRD static protocols `protocol` (channel `ipv4`, a
/// blackhole `/32` per IPv4 address) and `protocol` + `6` (channel `ipv6`,
/// a blackhole `/128` per IPv6 address), both always present (possibly
/// empty), so the operator's BGP channels can name them. BGP exports them
/// with `next hop self` (an IPv6 route over an IPv4 session needs the
/// channel's `next hop address`); the blackhole only matters if the
/// operator also exports static routes into the node's kernel, where VIP
/// traffic never arrives anyway. Addresses are sorted, so the same set
/// always gives the same bytes.
pub fn routes_file(protocol: &str, vips: &BTreeSet<IpAddr>) -> String {
    let mut s = String::from(
        "# Written by qsplice: the VIP addresses this node serves now.\n\
         # Include it from bird.conf; do not edit (it is rewritten on every change).\n",
    );
    s.push_str(&format!("protocol static {protocol} {{\n    ipv4;\n"));
    for v in vips.iter().filter(|v| v.is_ipv4()) {
        s.push_str(&format!("    route {v}/32 blackhole;\n"));
    }
    s.push_str("}\n");
    s.push_str(&format!("protocol static {protocol}6 {{\n    ipv6;\n"));
    for v in vips.iter().filter(|v| v.is_ipv6()) {
        s.push_str(&format!("    route {v}/128 blackhole;\n"));
    }
    s.push_str("}\n");
    s
}

/// One reply of BIRD's control protocol: lines `DDDD-text` continue,
/// lines starting with a space continue the previous code, and the first
/// `DDDD text` line ends it. Codes 0xxx report success, 1xxx data,
/// 8xxx run-time errors, 9xxx parse errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The final line's code.
    pub code: u16,
    /// Every line's text, in order.
    pub lines: Vec<String>,
}

impl Reply {
    /// Success (0xxx) or data (1xxx, 2xxx).
    pub fn ok(&self) -> bool {
        self.code < 8000
    }
}

/// Parse one line of a reply: `Some((code, final, text))`, or `None` for a
/// continuation line (leading space).
pub fn parse_line(line: &str) -> Result<Option<(u16, bool, &str)>, RoutingError> {
    if let Some(rest) = line.strip_prefix(' ') {
        let _ = rest;
        return Ok(None);
    }
    let b = line.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || !(b[4] == b' ' || b[4] == b'-') {
        return Err(RoutingError::Protocol(format!(
            "unexpected line {:?}",
            line.chars().take(80).collect::<String>()
        )));
    }
    let code = line[..4].parse::<u16>().unwrap_or(9999);
    Ok(Some((code, b[4] == b' ', &line[5..])))
}

/// Read one reply from `r` (bounded: at most 10,000 lines).
pub fn read_reply(r: &mut impl BufRead) -> Result<Reply, RoutingError> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for _ in 0..10_000 {
        line.clear();
        let n = r
            .read_line(&mut line)
            .map_err(|e| RoutingError::Socket(e.to_string()))?;
        if n == 0 {
            return Err(RoutingError::Socket(
                "closed in the middle of a reply".into(),
            ));
        }
        let l = line.trim_end_matches(['\n', '\r']);
        match parse_line(l)? {
            None => lines.push(l.trim_start().to_string()),
            Some((code, last, text)) => {
                lines.push(text.to_string());
                if last {
                    return Ok(Reply { code, lines });
                }
            }
        }
    }
    Err(RoutingError::Protocol(
        "reply longer than 10,000 lines".into(),
    ))
}

/// BIRD 2, driven through its control socket.
#[derive(Debug, Clone)]
pub struct Bird {
    socket: PathBuf,
    timeout: Duration,
}

impl Bird {
    /// The daemon behind `socket` (`bird -s`, default `/run/bird/bird.ctl`).
    pub fn new(socket: impl Into<PathBuf>) -> Bird {
        Bird {
            socket: socket.into(),
            timeout: Duration::from_secs(3),
        }
    }

    /// Run one command; the reply must be a success.
    pub fn command(&self, cmd: &str) -> Result<Reply, RoutingError> {
        let s = UnixStream::connect(&self.socket)
            .map_err(|e| RoutingError::Socket(format!("{}: {e}", self.socket.display())))?;
        let io = |e: std::io::Error| RoutingError::Socket(e.to_string());
        s.set_read_timeout(Some(self.timeout)).map_err(io)?;
        s.set_write_timeout(Some(self.timeout)).map_err(io)?;
        let mut r = BufReader::new(s.try_clone().map_err(io)?);
        let hello = read_reply(&mut r)?;
        if hello.code != 1 {
            return Err(RoutingError::Protocol(format!(
                "greeting {:04} {:?}",
                hello.code, hello.lines
            )));
        }
        let mut w = s;
        w.write_all(cmd.as_bytes()).map_err(io)?;
        w.write_all(b"\n").map_err(io)?;
        let reply = read_reply(&mut r)?;
        if !reply.ok() {
            return Err(RoutingError::Bird(reply.code, reply.lines.join(" / ")));
        }
        Ok(reply)
    }

    /// `configure`: re-read the configuration (with the new routes file).
    pub fn configure(&self) -> Result<Reply, RoutingError> {
        self.command("configure")
    }
}

/// Write `content` to `path` atomically (a temporary file beside it, then
/// a rename): BIRD never reads half a file.
pub fn write_atomic(path: &Path, content: &str) -> Result<(), RoutingError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let err = |e: std::io::Error| RoutingError::File(format!("{}: {e}", path.display()));
    std::fs::write(&tmp, content).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}

/// What an [`Announcer::step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do (or waiting for the retry time).
    Idle,
    /// The wanted set is now announced (and these were added / removed).
    Applied {
        /// Newly announced.
        announced: Vec<IpAddr>,
        /// Withdrawn.
        withdrawn: Vec<IpAddr>,
    },
    /// The step failed; retried after a backoff.
    Failed(RoutingError),
}

/// Keeps the speaker's announced set equal to the wanted one.
#[derive(Debug)]
pub struct Announcer {
    bird: Bird,
    file: PathBuf,
    protocol: String,
    /// What BIRD was last told successfully (`None`: unknown, e.g. at start).
    applied: Option<BTreeSet<IpAddr>>,
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Steps that reached BIRD, and failures.
    pub updates: u64,
    /// Failed steps.
    pub failures: u64,
}

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Announcer {
    /// An announcer writing `file` (static protocol `protocol`) for `bird`.
    /// Until its first successful step the announced set is unknown, so the
    /// first step always writes (withdrawing what an earlier run left).
    pub fn new(bird: Bird, file: impl Into<PathBuf>, protocol: impl Into<String>) -> Announcer {
        Announcer {
            bird,
            file: file.into(),
            protocol: protocol.into(),
            applied: None,
            retry_at: None,
            backoff: BACKOFF_MIN,
            updates: 0,
            failures: 0,
        }
    }

    /// The set last applied (`None` before the first success).
    pub fn applied(&self) -> Option<&BTreeSet<IpAddr>> {
        self.applied.as_ref()
    }

    /// Whether `want` differs from what is applied.
    pub fn pending(&self, want: &BTreeSet<IpAddr>) -> bool {
        self.applied.as_ref() != Some(want)
    }

    /// Make `want` the announced set: write the routes file and have BIRD
    /// re-read it, unless it is already applied or a failed attempt waits
    /// for its retry time. `force` ignores the retry time (shutdown).
    pub fn step(&mut self, want: &BTreeSet<IpAddr>, now: Instant, force: bool) -> Step {
        if !self.pending(want) {
            return Step::Idle;
        }
        if !force && self.retry_at.is_some_and(|t| now < t) {
            return Step::Idle;
        }
        let r = write_atomic(&self.file, &routes_file(&self.protocol, want))
            .and_then(|_| self.bird.configure());
        match r {
            Ok(_) => {
                let before = self.applied.take().unwrap_or_default();
                let announced = want.difference(&before).copied().collect();
                let withdrawn = before.difference(want).copied().collect();
                self.applied = Some(want.clone());
                self.retry_at = None;
                self.backoff = BACKOFF_MIN;
                self.updates += 1;
                Step::Applied {
                    announced,
                    withdrawn,
                }
            }
            Err(e) => {
                self.failures += 1;
                self.retry_at = Some(now + self.backoff);
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                Step::Failed(e)
            }
        }
    }
}

#[cfg(test)]
mod tests;
