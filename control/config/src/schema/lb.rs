//! `[lb]`: the load balancer's schema (VIPs, backends, TLS, health, sessions, access log).

use super::*;

/// `[lb]`: the L4 load balancer (`qsplice lb`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LbConf {
    /// Name of the port facing clients (owns the VIP addresses).
    pub client_port: String,
    /// Name of the port facing backends (owns `local`).
    pub backend_port: String,
    /// Source address of backend connections; empty: the backend port's
    /// first address.
    #[serde(deserialize_with = "opt_ipv4")]
    pub local: Option<Ipv4Addr>,
    /// IPv6 source address of connections to IPv6 backends; empty: the
    /// backend port's first global IPv6 address.
    #[serde(deserialize_with = "opt_ipv6")]
    pub local6: Option<Ipv6Addr>,
    /// Lowest source port of backend connections.
    pub source_port_min: u16,
    /// Highest source port of backend connections.
    pub source_port_max: u16,
    /// Flow table size per worker lcore.
    pub max_flows: u32,
    /// Connections waiting for a backend's SYN-ACK per lcore.
    pub max_connecting: u32,
    /// First backend SYN retransmission timeout, ms (doubles per retry).
    pub syn_rto_ms: u64,
    /// Backend SYN retransmissions before the client is reset.
    pub syn_retries: u8,
    /// Other backends tried after one refuses or does not answer.
    pub retries: u8,
    /// Idle timeout of a flow, s.
    pub idle_timeout_s: u64,
    /// Graceful shutdown: how long established connections may finish
    /// after SIGTERM / `ctl shutdown` before the rest are reset, s.
    pub shutdown_grace_s: u64,
    /// How long a closed flow is kept for late segments, ms.
    pub linger_ms: u64,
    /// Window scale announced to clients that offer window scaling.
    pub window_scale: u8,
    /// Smallest MSS a peer may make the appliance send (a peer announcing
    /// less is treated as announcing this).
    pub min_mss: u16,
    /// Congestion control of the appliance's own TCP endpoints (the client
    /// and backend legs of TLS-terminated VIPs).
    pub tcp_congestion: TcpCongestion,
    /// Half-open connections answered statefully per worker lcore.
    pub syn_backlog: u32,
    /// Stateful SYN answers per second per worker lcore (0: no limit).
    pub syn_rate: u32,
    /// Terminated TLS connections per worker lcore.
    pub tls_max_conns: u32,
    /// The server mapping table of session-aware dispatch.
    pub sessions: SessionsConf,
    /// The access log (one line per connection).
    pub access_log: AccessLogConf,
    /// Active health checks.
    pub health: HealthConf,
    /// Virtual services.
    pub vips: Vec<VipConf>,
    /// The cluster's shared secret for SYN cookies and ISNs (a file of
    /// hex, mode 0600): every node that reads the same file validates a
    /// cookie or ISN another node issued. Absent: a random secret per run.
    pub cluster_secret_file: Option<String>,
}

impl Default for LbConf {
    fn default() -> Self {
        LbConf {
            client_port: String::new(),
            backend_port: String::new(),
            local: None,
            local6: None,
            source_port_min: 10_000,
            source_port_max: 60_999,
            max_flows: 65_536,
            max_connecting: 4096,
            syn_rto_ms: 250,
            syn_retries: 3,
            retries: 2,
            idle_timeout_s: 300,
            shutdown_grace_s: 10,
            linger_ms: 2000,
            window_scale: 7,
            min_mss: 536,
            tcp_congestion: TcpCongestion::Cubic,
            syn_backlog: 4096,
            syn_rate: 50_000,
            tls_max_conns: 4096,
            sessions: SessionsConf::default(),
            access_log: AccessLogConf::default(),
            health: HealthConf::default(),
            vips: Vec::new(),
            cluster_secret_file: None,
        }
    }
}

/// `[lb.access_log]`: one JSON line per connection at its end.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AccessLogConf {
    /// File to append to, `"-"` for stdout; absent: no access log.
    pub path: Option<String>,
    /// Log one connection in this many (1: every connection).
    pub sample: u32,
    /// Records each lcore's ring holds before the control thread drains it.
    pub ring: u32,
}

impl Default for AccessLogConf {
    fn default() -> Self {
        AccessLogConf {
            path: None,
            sample: 1,
            ring: 16384,
        }
    }
}

/// `[lb.sessions]`: the server mapping table (session-aware VIPs).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConf {
    /// Reference age: rows not used for this long are deleted, s.
    pub max_age_s: u64,
    /// Sessions remembered per VIP at most (oldest evicted first).
    pub max_keys: u32,
    /// How often expired rows are swept, ms.
    pub sweep_interval_ms: u64,
}

impl Default for SessionsConf {
    fn default() -> Self {
        SessionsConf {
            max_age_s: 300,
            max_keys: 100_000,
            sweep_interval_ms: 1000,
        }
    }
}

/// Scheduling policy of a VIP.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyConf {
    /// Eligible backends in turn.
    #[default]
    RoundRobin,
    /// Smooth weighted round robin.
    WeightedRoundRobin,
    /// Fewest active connections per weight.
    LeastConnections,
    /// Maglev consistent hashing on the client address.
    Maglev,
    /// Maglev consistent hashing on the connection (client address and
    /// port, VIP).
    MaglevFlow,
    /// TLS pass-through: the backend that holds the client's TLS session
    /// (server mapping table), else round robin.
    SessionAware,
}

/// `[[lb.vips]]`: one virtual service.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VipConf {
    /// Name (counters, logs).
    pub name: String,
    /// `address:port` clients connect to: IPv4 `a.b.c.d:p` or IPv6
    /// `[a:b::c]:p` (an address of the client port).
    pub address: std::net::SocketAddr,
    /// Scheduling policy.
    #[serde(default)]
    pub policy: PolicyConf,
    /// The pool.
    pub backends: Vec<BackendConf>,
    /// TLS handling: `off` (TCP spliced as is) or `terminate`.
    #[serde(default)]
    pub tls: TlsModeConf,
    /// TLS termination settings (`tls = "terminate"`).
    #[serde(default)]
    pub tls_options: Option<VipTlsConf>,
    /// Content-aware dispatch rules (plaintext HTTP VIPs), first match wins.
    #[serde(default)]
    pub rules: Vec<ContentRuleConf>,
    /// Health check kind for this VIP's backends (`tcp` or `http`);
    /// absent: `lb.health.kind`.
    #[serde(default)]
    pub health: Option<HealthKind>,
}

/// `[[lb.vips.rules]]`: a content-aware dispatch rule.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ContentRuleConf {
    /// `Host` header to match (case-insensitive, port ignored).
    #[serde(default)]
    pub host: Option<String>,
    /// Request-target prefix to match.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Cookie `name=value` to match.
    #[serde(default)]
    pub cookie: Option<String>,
    /// Backends (addresses among the VIP's) that serve matching requests.
    pub backends: Vec<std::net::SocketAddr>,
}

/// What a VIP does with TLS.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsModeConf {
    /// Nothing: the TCP connection is spliced to a backend as is.
    #[default]
    Off,
    /// Each lcore terminates TLS and relays plaintext to the backend.
    Terminate,
}

/// Post-quantum key-exchange policy of a terminated VIP.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsPolicyConf {
    /// Hybrid whenever the client sends a hybrid share, else classical.
    #[default]
    Prefer,
    /// Post-quantum groups only (HelloRetryRequest / handshake failure).
    Require,
}

/// A key-exchange group, by its IANA name.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
pub enum TlsGroupConf {
    /// X25519 + ML-KEM-768.
    #[serde(rename = "X25519MLKEM768")]
    X25519MlKem768,
    /// P-256 + ML-KEM-768.
    #[serde(rename = "SecP256r1MLKEM768")]
    SecP256r1MlKem768,
    /// ML-KEM-768.
    #[serde(rename = "MLKEM768")]
    MlKem768,
    /// ML-KEM-1024.
    #[serde(rename = "MLKEM1024")]
    MlKem1024,
    /// X25519.
    #[serde(rename = "X25519")]
    X25519,
    /// NIST P-256.
    #[serde(rename = "secp256r1")]
    Secp256r1,
    /// NIST P-384.
    #[serde(rename = "secp384r1")]
    Secp384r1,
}

impl TlsGroupConf {
    /// Post-quantum (hybrid or ML-KEM)?
    pub fn is_post_quantum(self) -> bool {
        matches!(
            self,
            TlsGroupConf::X25519MlKem768
                | TlsGroupConf::SecP256r1MlKem768
                | TlsGroupConf::MlKem768
                | TlsGroupConf::MlKem1024
        )
    }
}

/// Cipher suite names `cipher_suites` accepts: those of the aws-lc-rs
/// provider, TLS 1.3 (`TLS13_*`) then TLS 1.2 (`TLS_ECDHE_*`).
pub const TLS_CIPHER_SUITES: [&str; 9] = [
    "TLS13_AES_256_GCM_SHA384",
    "TLS13_AES_128_GCM_SHA256",
    "TLS13_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// Largest OCSP response file `ocsp` may name, bytes.
pub const TLS_OCSP_MAX: u64 = 64 * 1024;

/// One certificate chain and key of a terminated VIP.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsCertConf {
    /// PEM file: end-entity certificate first, then intermediates.
    pub cert: std::path::PathBuf,
    /// PEM file with the private key.
    pub key: std::path::PathBuf,
    /// SNI names it serves (`*.example.com` allowed); empty: default.
    #[serde(default)]
    pub names: Vec<String>,
    /// DER OCSP response stapled to this chain (read when the
    /// certificates are loaded).
    #[serde(default)]
    pub ocsp: Option<std::path::PathBuf>,
}

/// `[lb.vips.tls_options]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct VipTlsConf {
    /// Certificates (at least one).
    pub certificates: Vec<TlsCertConf>,
    /// Post-quantum policy.
    pub policy: TlsPolicyConf,
    /// Allowed groups, in server preference order.
    pub groups: Vec<TlsGroupConf>,
    /// Also offer TLS 1.2.
    pub tls12: bool,
    /// Allowed cipher suites, server preference order (names of
    /// [`TLS_CIPHER_SUITES`]); empty: the provider's defaults.
    pub cipher_suites: Vec<String>,
    /// Choose the first suite of `cipher_suites` the client offers, rather
    /// than the client's first choice.
    pub prefer_server_ciphers: bool,
    /// ALPN protocols offered.
    pub alpn: Vec<String>,
    /// Stateless session tickets.
    pub tickets: bool,
    /// Ticket key rotation interval, s.
    pub ticket_rotation_s: u64,
    /// Stateful session cache size (0: off).
    pub session_cache: u32,
    /// Cached session lifetime, s.
    pub session_ttl_s: u64,
    /// Handshake timeout, ms.
    pub handshake_timeout_ms: u64,
    /// Add `X-Forwarded-For: <client>` to every HTTP/1.1 request relayed
    /// to the backend.
    pub x_forwarded_for: bool,
}

impl Default for VipTlsConf {
    fn default() -> Self {
        VipTlsConf {
            certificates: Vec::new(),
            policy: TlsPolicyConf::Prefer,
            groups: vec![
                TlsGroupConf::X25519MlKem768,
                TlsGroupConf::SecP256r1MlKem768,
                TlsGroupConf::X25519,
                TlsGroupConf::Secp256r1,
                TlsGroupConf::Secp384r1,
            ],
            tls12: true,
            cipher_suites: Vec::new(),
            prefer_server_ciphers: true,
            alpn: vec!["http/1.1".to_string()],
            tickets: true,
            ticket_rotation_s: 3600,
            session_cache: 20_000,
            session_ttl_s: 300,
            handshake_timeout_ms: 10_000,
            x_forwarded_for: false,
        }
    }
}

/// Administrative state of a backend.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BackendStateConf {
    /// In rotation (subject to health checks).
    #[default]
    Up,
    /// Out of rotation.
    Down,
    /// No new connections; existing ones continue.
    Draining,
}

/// `[[lb.vips.backends]]`: one backend server.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BackendConf {
    /// `address:port`, IPv4 or IPv6 (`[a:b::c]:p`) whatever the VIP's
    /// family (NAT64/46 where they differ).
    pub address: std::net::SocketAddr,
    /// Weight (weighted policies), 1..=1000.
    #[serde(default = "one")]
    pub weight: u32,
    /// Connection limit (0: none).
    #[serde(default)]
    pub max_conns: u32,
    /// Administrative state.
    #[serde(default)]
    pub state: BackendStateConf,
}

fn one() -> u32 {
    1
}

/// Kind of health check.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HealthKind {
    /// TCP handshake completes.
    #[default]
    Tcp,
    /// `GET http_path` answers `expect_status`.
    Http,
}

/// `[lb.health]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConf {
    /// Run health checks.
    pub enabled: bool,
    /// What a check does.
    pub kind: HealthKind,
    /// Time between checks of one backend, ms.
    pub interval_ms: u64,
    /// A check not answered in this long fails, ms.
    pub timeout_ms: u64,
    /// Consecutive successes to bring a failed backend back.
    pub rise: u32,
    /// Consecutive failures to take a backend out.
    pub fall: u32,
    /// Path of the HTTP check.
    pub http_path: String,
    /// Expected HTTP status.
    pub expect_status: u16,
    /// What happens to a backend's established connections when health
    /// checks mark it down.
    pub on_down: OnDownConf,
}

/// `lb.health.on_down`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnDownConf {
    /// Reset them toward their clients at once (counted, logged).
    #[default]
    Reset,
    /// Leave them to end on their own (idle timeout).
    Keep,
}

impl Default for HealthConf {
    fn default() -> Self {
        HealthConf {
            enabled: true,
            kind: HealthKind::Tcp,
            interval_ms: 1000,
            timeout_ms: 500,
            rise: 2,
            fall: 2,
            http_path: "/".into(),
            expect_status: 200,
            on_down: OnDownConf::Reset,
        }
    }
}
