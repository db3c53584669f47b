//! The management listener: HTTP/1.1 on a kernel socket (TCP or a Unix
//! socket), served by the control thread.
//!
//! `tiny_http` accepts connections and parses requests on its own threads;
//! the control thread takes finished requests with [`MgmtServer::poll`]
//! between its other duties and answers them from its own state, so the
//! balancer's control side stays single-threaded and the lcores learn of a
//! change only through the snapshot and command queues they already read.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tiny_http::{Header, Method, Request, Response, Server};

use crate::metrics;
use crate::report::Report;

/// Where the listener listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// `address:port` (port 0: the kernel picks one; see
    /// [`MgmtServer::local_addr`]).
    Tcp(SocketAddr),
    /// A Unix socket path (a stale socket file there is replaced).
    Unix(PathBuf),
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(a) => write!(f, "{a}"),
            Listen::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The token file is unusable.
    #[error("management.token_file = {path:?}: {why}")]
    Token {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// Binding failed.
    #[error("management.listen = \"{listen}\": {why}")]
    Bind {
        /// The address.
        listen: String,
        /// Why.
        why: String,
    },
}

/// Read a bearer token from `path`: the file must be a regular file that
/// neither group nor others can read or write (mode 0600 or stricter), and
/// hold one non-empty line.
pub fn read_token(path: &Path) -> Result<String, StartError> {
    use std::os::unix::fs::PermissionsExt;
    let bad = |why: String| StartError::Token {
        path: path.display().to_string(),
        why,
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
    let token = text.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(bad(
            "must hold one token (no spaces), and nothing else".into()
        ));
    }
    Ok(token.to_string())
}

/// An error answer of the API: HTTP status and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// What went wrong (the JSON body's `error`).
    pub message: String,
}

impl ApiError {
    /// 400 Bad Request.
    pub fn bad_request(m: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            message: m.into(),
        }
    }

    /// 404 Not Found.
    pub fn not_found(m: impl Into<String>) -> Self {
        ApiError {
            status: 404,
            message: m.into(),
        }
    }

    /// 409 Conflict: valid, but refused in the current state.
    pub fn conflict(m: impl Into<String>) -> Self {
        ApiError {
            status: 409,
            message: m.into(),
        }
    }
}

/// A change to one backend (`POST /api/v1/vips/{vip}/backends/{address}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackendChange {
    /// New administrative state: `up`, `down` or `draining`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// New weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

/// A change to the running configuration (the balancer's VIPs, backends
/// and TLS). Bodies are JSON objects with the keys of the config file's
/// `[[lb.vips]]` / `[[lb.vips.backends]]` entries; the control thread
/// validates the whole changed config before it applies anything.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// `POST /api/v1/vips`: add a VIP.
    AddVip(Value),
    /// `DELETE /api/v1/vips/{vip}`: remove a VIP (new connections refused,
    /// established ones drain; `?force=1` resets them).
    RemoveVip {
        /// Name or `address:port`.
        vip: String,
        /// Reset its connections now.
        force: bool,
    },
    /// `POST /api/v1/vips/{vip}`: change a VIP's settings (`policy`, `name`).
    SetVip {
        /// Name or `address:port`.
        vip: String,
        /// The keys to change.
        body: Value,
    },
    /// `POST /api/v1/vips/{vip}/backends`: add a backend.
    AddBackend {
        /// Name or `address:port`.
        vip: String,
        /// The backend entry.
        body: Value,
    },
    /// `DELETE /api/v1/vips/{vip}/backends/{address}`: remove a backend
    /// (its connections drain; `?force=1` resets them).
    RemoveBackend {
        /// Name or `address:port`.
        vip: String,
        /// `address:port`.
        backend: String,
        /// Reset its connections now.
        force: bool,
    },
    /// `POST /api/v1/tls/rotate-tickets`: new ticket keys now (every
    /// terminated VIP, or `?vip=`).
    RotateTickets {
        /// One VIP only.
        vip: Option<String>,
    },
    /// `POST /api/v1/tls/reload`: re-read every terminated VIP's
    /// certificate files (and TLS options) from the running config.
    ReloadTls,
}

/// What the control thread does for the API.
pub trait Control {
    /// The current report (the same as `--stats-json`).
    fn report(&self) -> Report;
    /// Rows of a session-aware VIP's mapping table, most recently used
    /// first, from `offset`, at most `limit`.
    fn sessions(&self, vip: &str, offset: usize, limit: usize) -> Result<Value, ApiError>;
    /// Re-read the config file and apply it (as SIGHUP).
    fn reload(&mut self) -> Result<Value, ApiError>;
    /// Reopen the access log file (as SIGUSR1).
    fn reopen_access_log(&mut self) -> Result<Value, ApiError>;
    /// Begin the graceful shutdown (as SIGTERM).
    fn shutdown(&mut self) -> Result<Value, ApiError>;
    /// Change one backend's state or weight.
    fn set_backend(
        &mut self,
        vip: &str,
        backend: &str,
        change: &BackendChange,
    ) -> Result<Value, ApiError>;
    /// Apply a configuration change.
    fn change(&mut self, c: Change) -> Result<Value, ApiError> {
        let _ = c;
        Err(ApiError::not_found("no [lb] configured"))
    }
}

/// A JSON object body.
fn json_body(body: &str) -> Result<Value, ApiError> {
    match serde_json::from_str::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::bad_request("body: expected a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!("body: {e}"))),
    }
}

/// The value of `k` in a query string.
fn query_value(query: &str, k: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
        .map(str::to_string)
}

/// A boolean query flag: `?force`, `?force=1` or `?force=true`.
fn flag(query: &str, k: &str) -> bool {
    query.split('&').any(|kv| {
        kv == k || query_value(kv, k).is_some_and(|v| v == "1" || v == "true" || v == "yes")
    })
}

/// `GET /`: the live status page (HTML + inline script reading
/// `/api/v1/status`; no external asset).
const STATUS_PAGE: &str = include_str!("status.html");

/// Requests answered per [`MgmtServer::poll`] at most (the control thread
/// has other work).
const PER_POLL: usize = 16;
/// Largest request body read.
const MAX_BODY: u64 = 64 * 1024;

/// The running listener.
pub struct MgmtServer {
    server: Server,
    listen: Listen,
    token: Option<String>,
}

impl std::fmt::Debug for MgmtServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MgmtServer")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl MgmtServer {
    /// Bind `listen`; mutating calls need `Authorization: Bearer <token>`
    /// when `token` is given.
    pub fn bind(listen: &Listen, token: Option<String>) -> Result<Self, StartError> {
        let bind_err = |why: String| StartError::Bind {
            listen: listen.to_string(),
            why,
        };
        let (server, listen) = match listen {
            Listen::Tcp(a) => {
                let s = Server::http(a).map_err(|e| bind_err(e.to_string()))?;
                let bound = s
                    .server_addr()
                    .to_ip()
                    .map(Listen::Tcp)
                    .unwrap_or_else(|| listen.clone());
                (s, bound)
            }
            Listen::Unix(p) => {
                // A socket file left by an earlier run (never anything else).
                if let Ok(m) = std::fs::symlink_metadata(p) {
                    use std::os::unix::fs::FileTypeExt;
                    if m.file_type().is_socket() {
                        let _ = std::fs::remove_file(p);
                    } else {
                        return Err(bind_err("exists and is not a socket".into()));
                    }
                }
                let s = Server::http_unix(p).map_err(|e| bind_err(e.to_string()))?;
                (s, listen.clone())
            }
        };
        Ok(MgmtServer {
            server,
            listen,
            token,
        })
    }

    /// Where it listens (the kernel's port when 0 was asked for).
    pub fn local_addr(&self) -> &Listen {
        &self.listen
    }

    /// Answer the requests that are waiting (at most a few), without
    /// blocking.
    pub fn poll(&self, ctl: &mut dyn Control) {
        for _ in 0..PER_POLL {
            match self.server.try_recv() {
                Ok(Some(req)) => self.answer(req, ctl),
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!("management listener: {e}");
                    return;
                }
            }
        }
    }

    fn authorized(&self, req: &Request) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = req
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .and_then(|h| h.value.as_str().strip_prefix("Bearer "))
            .unwrap_or("");
        // Compare without an early exit on the first differing byte.
        given.len() == token.len()
            && given
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    fn answer(&self, mut req: Request, ctl: &mut dyn Control) {
        let method = req.method().clone();
        let url = req.url().to_string();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let path = path.trim_end_matches('/').to_string();
        let query = query.to_string();
        let mutating = !matches!(method, Method::Get | Method::Head);
        if mutating && !self.authorized(&req) {
            tracing::warn!(%method, path, "management: rejected a call without the bearer token");
            return respond_json(
                req,
                401,
                &json!({ "error": "this call needs `Authorization: Bearer <token>` (management.token_file)" }),
            );
        }
        let mut body = String::new();
        if mutating {
            if let Err(e) = req.as_reader().take(MAX_BODY).read_to_string(&mut body) {
                return respond_json(req, 400, &json!({ "error": format!("request body: {e}") }));
            }
        }
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let res: Result<Value, ApiError> = match (&method, segs.as_slice()) {
            (Method::Get | Method::Head, ["metrics"]) => {
                let accept = req
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Accept"))
                    .map(|h| h.value.as_str().to_string())
                    .unwrap_or_default();
                let (text, ctype) =
                    metrics::render(&ctl.report(), metrics::wants_openmetrics(&accept));
                let resp = Response::from_string(text).with_header(header("Content-Type", ctype));
                if let Err(e) = req.respond(resp) {
                    tracing::debug!("management: {e}");
                }
                return;
            }
            (Method::Get | Method::Head, []) => {
                let resp = Response::from_string(STATUS_PAGE)
                    .with_header(header("Content-Type", "text/html; charset=utf-8"))
                    .with_header(header("Cache-Control", "no-store"));
                if let Err(e) = req.respond(resp) {
                    tracing::debug!("management: {e}");
                }
                return;
            }
            (Method::Get, ["api", "v1", "status"]) => Ok(to_value(&ctl.report())),
            (Method::Get, ["api", "v1", "vips"]) => Ok(vips(&ctl.report())),
            (Method::Get, ["api", "v1", "tls"]) => Ok(tls(&ctl.report())),
            (Method::Get, ["api", "v1", "backends"]) => Ok(backends(&ctl.report())),
            (Method::Get, ["api", "v1", "lcores"]) => Ok(lcores(&ctl.report())),
            (Method::Get, ["api", "v1", "ports"]) => {
                let r = ctl.report();
                Ok(json!({ "ports": r.ports, "mempools": r.mempools, "neighbors": r.neighbors }))
            }
            (Method::Get, ["api", "v1", "sessions", vip]) => {
                let q = |k: &str| {
                    query
                        .split('&')
                        .find_map(|kv| kv.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
                        .map(str::to_string)
                };
                match (parse_num(q("offset"), 0), parse_num(q("limit"), 100)) {
                    (Ok(o), Ok(lim)) => ctl.sessions(&decode(vip), o, lim.min(10_000)),
                    (Err(e), _) | (_, Err(e)) => Err(ApiError::bad_request(e)),
                }
            }
            (Method::Post, ["api", "v1", "reload"]) => ctl.reload(),
            (Method::Post, ["api", "v1", "shutdown"]) => ctl.shutdown(),
            (Method::Post, ["api", "v1", "access-log", "reopen"]) => ctl.reopen_access_log(),
            (Method::Post, ["api", "v1", "vips", vip, "backends", backend]) => {
                match serde_json::from_str::<BackendChange>(if body.trim().is_empty() {
                    "{}"
                } else {
                    &body
                }) {
                    Ok(c) if c.state.is_none() && c.weight.is_none() => Err(ApiError::bad_request(
                        "nothing to change: give `state` (up, down, draining) and/or `weight`",
                    )),
                    Ok(c) => ctl.set_backend(&decode(vip), &decode(backend), &c),
                    Err(e) => Err(ApiError::bad_request(format!("body: {e}"))),
                }
            }
            (Method::Post, ["api", "v1", "vips"]) => {
                json_body(&body).and_then(|b| ctl.change(Change::AddVip(b)))
            }
            (Method::Delete, ["api", "v1", "vips", vip]) => ctl.change(Change::RemoveVip {
                vip: decode(vip),
                force: flag(&query, "force"),
            }),
            (Method::Post, ["api", "v1", "vips", vip]) => json_body(&body).and_then(|b| {
                ctl.change(Change::SetVip {
                    vip: decode(vip),
                    body: b,
                })
            }),
            (Method::Post, ["api", "v1", "vips", vip, "backends"]) => {
                json_body(&body).and_then(|b| {
                    ctl.change(Change::AddBackend {
                        vip: decode(vip),
                        body: b,
                    })
                })
            }
            (Method::Delete, ["api", "v1", "vips", vip, "backends", backend]) => {
                ctl.change(Change::RemoveBackend {
                    vip: decode(vip),
                    backend: decode(backend),
                    force: flag(&query, "force"),
                })
            }
            (Method::Post, ["api", "v1", "tls", "rotate-tickets"]) => {
                ctl.change(Change::RotateTickets {
                    vip: query_value(&query, "vip").map(|v| decode(&v)),
                })
            }
            (Method::Post, ["api", "v1", "tls", "reload"]) => ctl.change(Change::ReloadTls),
            (_, ["metrics"] | ["api", "v1", ..]) => Err(ApiError {
                status: 405,
                message: format!("{method} is not allowed on {path} (or no such resource)"),
            }),
            _ => Err(ApiError::not_found(format!("no such resource: {path}"))),
        };
        match res {
            Ok(v) => {
                if mutating {
                    tracing::info!(%method, path, "management: {}", v);
                }
                respond_json(req, 200, &v)
            }
            Err(e) => {
                if mutating {
                    tracing::warn!(%method, path, status = e.status, "management: refused: {}", e.message);
                }
                respond_json(req, e.status, &json!({ "error": e.message }))
            }
        }
    }
}

fn parse_num(v: Option<String>, default: usize) -> Result<usize, String> {
    match v {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|_| format!("`{s}` is not a non-negative integer")),
    }
}

/// Percent-decoding of a path segment (`10.0.0.1%3A80`); anything that is
/// not a valid escape stays as it is.
fn decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn header(k: &str, v: &str) -> Header {
    // Both are ASCII constants of ours.
    Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap_or_else(|()| {
        Header::from_bytes(&b"X-Invalid"[..], &b"1"[..]).unwrap_or_else(|()| unreachable!())
    })
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

fn respond_json(req: Request, status: u16, v: &Value) {
    let mut body = serde_json::to_string_pretty(v).unwrap_or_default();
    body.push('\n');
    let resp = Response::from_string(body)
        .with_status_code(status)
        .with_header(header("Content-Type", "application/json"));
    if let Err(e) = req.respond(resp) {
        tracing::debug!("management: {e}");
    }
}

/// `GET /api/v1/vips`: every VIP with its sums, TLS and session-table
/// counters, and its backends.
pub fn vips(r: &Report) -> Value {
    json!({ "vips": r.lb.as_ref().map(|l| to_value(&l.vips)).unwrap_or(json!([])) })
}

/// `GET /api/v1/tls`: per terminated VIP, the certificates served (subject,
/// names, expiry), the ticket keys (age, rotations) and the TLS counters.
pub fn tls(r: &Report) -> Value {
    let rows: Vec<Value> =
        r.lb.iter()
            .flat_map(|l| l.vips.iter())
            .filter(|v| v.tls.is_some())
            .map(|v| {
                json!({
                    "vip": v.name,
                    "address": v.address,
                    "certificates": v.certificates,
                    "tickets": v.tickets,
                    "counters": v.tls,
                })
            })
            .collect();
    json!({ "tls": rows })
}

/// `GET /api/v1/backends`: every backend of every VIP, one row each.
pub fn backends(r: &Report) -> Value {
    let rows: Vec<Value> =
        r.lb.iter()
            .flat_map(|l| l.vips.iter())
            .flat_map(|v| {
                v.backends.iter().map(move |b| {
                    let mut row = to_value(b);
                    if let Value::Object(m) = &mut row {
                        m.insert("vip".into(), Value::String(v.name.clone()));
                    }
                    row
                })
            })
            .collect();
    json!({ "backends": rows })
}

/// `GET /api/v1/lcores`: per-lcore engine and balancer counters.
pub fn lcores(r: &Report) -> Value {
    let rows: Vec<Value> = r
        .per_core
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "lcore": i,
                "engine": c,
                "lb": r.lb.as_ref().and_then(|l| l.per_core.get(i)),
            })
        })
        .collect();
    json!({ "lcores": rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(decode("10.0.0.1%3A80"), "10.0.0.1:80");
        assert_eq!(decode("web%20tls"), "web tls");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(decode("a%4"), "a%4");
        assert_eq!(decode("é%C3%A9"), "éé");
    }

    #[test]
    fn token_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("qsplice-mgmt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("token");
        std::fs::write(&p, "s3cret\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_token(&p).unwrap_err().to_string();
        assert!(e.contains("0644") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_token(&p).unwrap(), "s3cret");
        std::fs::write(&p, "two words\n").unwrap();
        assert!(read_token(&p).is_err());
        std::fs::write(&p, "\n").unwrap();
        assert!(read_token(&p).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
