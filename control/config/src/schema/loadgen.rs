//! `[loadgen]`: the stateful load generator's schema (`qsplice loadgen`).

use super::*;

/// What the load generator plays.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LoadgenRole {
    /// HTTP/1.1 clients toward `target`.
    #[default]
    Client,
    /// An HTTP/1.1 server on `listen`.
    Server,
    /// Both in one process: clients on `port` toward `target`, the server
    /// on `server_port` (`listen`), each worker lcore running both sides.
    Both,
}

/// How the loadgen server delimits its response bodies.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ResponseMode {
    /// `Content-Length`.
    #[default]
    Length,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// `Connection: close`, no length.
    Close,
}

/// `[[loadgen.paths]]`: a loadgen server's response for one request path.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LoadgenPath {
    /// The request target up to `?`, e.g. `/1m.bin`.
    pub path: String,
    /// Body bytes of its `200 OK`.
    pub response_bytes: u32,
}

/// `[loadgen]`: HTTP/1.1 clients or a server on one port, over the
/// appliance's own TCP.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LoadgenConf {
    /// `client` or `server`.
    pub role: LoadgenRole,
    /// Name of the `[[ports]]` entry it runs on.
    pub port: String,
    /// Client: the server, `a.b.c.d:port`.
    pub target: Option<std::net::SocketAddrV4>,
    /// Client: connections to open in all.
    pub connections: u64,
    /// Client: connections open at once at most.
    pub concurrency: u32,
    /// Client: new connections per second, paced by the lcore's clock
    /// (0: as fast as `concurrency` allows).
    pub rate: u64,
    /// Client: wait this long after a response before the next request
    /// on the connection, ms.
    pub think_ms: u64,
    /// Client: requests per connection (keep-alive).
    pub requests: u32,
    /// Client: request method, `GET`, `HEAD` or `POST`.
    pub method: String,
    /// Client: `POST` body bytes (sent with `Content-Length`).
    pub request_bytes: u32,
    /// Client: request target.
    pub path: String,
    /// Client: `Host` header (empty: the target's address).
    pub host: String,
    /// Client: source addresses: the first `sources` IPv4 addresses of
    /// `port`, used in turn.
    pub sources: u32,
    /// Client: source ports `sport_min..=sport_max` on each source
    /// address (a connection holds one; freed ones are reused oldest
    /// first).
    pub sport_min: u16,
    /// See `sport_min`.
    pub sport_max: u16,
    /// Server: the address and TCP port it serves (an address of `port`;
    /// role `both`: of `server_port`).
    pub listen: Option<std::net::SocketAddrV4>,
    /// Role `both`: the port the server side runs on.
    pub server_port: String,
    /// Server: answer on every IPv4 address of `port` (at `listen`'s TCP
    /// port), standing in for several backends.
    pub listen_all: bool,
    /// Server: response body bytes.
    pub response_bytes: u32,
    /// Server: other body sizes for given request paths.
    pub paths: Vec<LoadgenPath>,
    /// Server: how the body is delimited: `length` (Content-Length),
    /// `chunked`, `close` (Connection: close, the connection closes after
    /// the response).
    pub response_mode: ResponseMode,
    /// Server: largest chunk of a `chunked` body, bytes.
    pub chunk_bytes: u32,
    /// Server: connections held at most.
    pub max_conns: u32,
    /// Give up after this long, s (client: unfinished connections count
    /// as failed; server: it stops).
    pub timeout_s: u64,
    /// TCP receive and send buffer of each connection, bytes.
    pub tcp_buf: u32,
    /// HTTPS: each connection runs TLS first (client: TLS client
    /// sessions; server: `tls_cert` / `tls_key`).
    pub tls: bool,
    /// TLS versions offered / accepted: `"1.3"`, `"1.2"`.
    pub tls_versions: Vec<String>,
    /// Key-exchange groups, most preferred first (client: the first is
    /// the key share sent).
    pub tls_groups: Vec<TlsGroupConf>,
    /// Client: verify the server's certificate against this CA file
    /// (PEM); empty: no verification.
    pub tls_ca: String,
    /// Client: server name sent (SNI) and verified (empty: `host`, else
    /// the target's address).
    pub tls_sni: String,
    /// Client: percentage of connections that keep and offer a TLS
    /// session (ticket / session ID), `0..=100`.
    pub tls_resume_pct: u32,
    /// Server: certificate chain (PEM).
    pub tls_cert: String,
    /// Server: its private key (PEM).
    pub tls_key: String,
}

impl Default for LoadgenConf {
    fn default() -> Self {
        LoadgenConf {
            role: LoadgenRole::Client,
            port: String::new(),
            target: None,
            connections: 1000,
            concurrency: 64,
            rate: 0,
            think_ms: 0,
            requests: 1,
            method: "GET".into(),
            request_bytes: 0,
            path: "/".into(),
            host: String::new(),
            sources: 1,
            sport_min: 20_000,
            sport_max: 60_999,
            listen: None,
            server_port: String::new(),
            listen_all: false,
            response_bytes: 100,
            paths: Vec::new(),
            response_mode: ResponseMode::Length,
            chunk_bytes: 4096,
            max_conns: 65_536,
            timeout_s: 60,
            tcp_buf: 64 * 1024,
            tls: false,
            tls_versions: vec!["1.3".into(), "1.2".into()],
            // What browsers offer: hybrid first, then the classical
            // curves (a TLS 1.2 server with an ECDSA certificate needs
            // the certificate's curve among them).
            tls_groups: vec![
                TlsGroupConf::X25519MlKem768,
                TlsGroupConf::X25519,
                TlsGroupConf::Secp256r1,
                TlsGroupConf::Secp384r1,
            ],
            tls_ca: String::new(),
            tls_sni: String::new(),
            tls_resume_pct: 0,
            tls_cert: String::new(),
            tls_key: String::new(),
        }
    }
}
