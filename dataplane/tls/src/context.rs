//! From settings to rustls server configurations, per VIP.
//!
//! A [`TlsContext`] is built once on the control thread and shared
//! (`Arc`) by every lcore; it holds:
//! - the general `ServerConfig` (all allowed groups; in `require` mode,
//!   the allowed post-quantum groups only);
//! - in `prefer` mode, one `ServerConfig` per allowed PQ group with that
//!   group alone, used when the client's first flight carries a key share
//!   for it — rustls otherwise follows the client's group order, and a
//!   client listing X25519 first would get classical even though it sent a
//!   hybrid share. No extra round trip either way (no HelloRetryRequest);
//! - the ticket keys and the session cache, common to all its configs, so
//!   a session resumes whichever config and lcore serve the next
//!   connection.
//!
//! Every config lists the same cipher suites in the same (server) order
//! and, with `prefer_server_ciphers`, picks the first of them the client
//! offers (rustls' `ignore_client_order`, which concerns suites only): the
//! per-PQ-group configs differ from the general one by their groups alone.

use std::sync::Arc;
use std::time::Duration;

use qsplice_wire::tls::ClientHello;
use rustls::crypto::aws_lc_rs;
use rustls::crypto::CryptoProvider;
use rustls::server::NoServerSessionStorage;
use rustls::{ServerConfig, SupportedCipherSuite};

use crate::cache::SessionCache;
use crate::certs::{CertError, CertSpec, CertStore};
use crate::groups::{Group, PqPolicy};
use crate::stats::SUITES;
use crate::ticket::TicketKeys;

/// Everything configurable about TLS termination on one VIP port.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    /// Also offer TLS 1.2 (TLS 1.3 is always on).
    pub tls12: bool,
    /// Allowed key-exchange groups, in server preference order.
    pub groups: Vec<Group>,
    /// Post-quantum policy.
    pub policy: PqPolicy,
    /// Allowed cipher suites by name (see [`SUITES`]), in server
    /// preference order; empty: rustls' defaults (AES-256-GCM,
    /// AES-128-GCM, ChaCha20-Poly1305).
    pub cipher_suites: Vec<String>,
    /// Pick the first of `cipher_suites` the client offers (rustls'
    /// `ignore_client_order`), not the client's first choice. Suites only:
    /// key-exchange groups follow [`policy`](Self::policy) and `groups`.
    pub prefer_server_ciphers: bool,
    /// ALPN protocols offered, in preference order (empty: no ALPN).
    pub alpn: Vec<Vec<u8>>,
    /// Certificates.
    pub certs: Vec<CertSpec>,
    /// Stateless session tickets (TLS 1.3 tickets and TLS 1.2 RFC 5077).
    pub tickets: bool,
    /// Ticket key rotation interval (a key is accepted for two intervals).
    pub ticket_rotation: Duration,
    /// TLS 1.3 tickets sent after each handshake.
    pub tickets_per_handshake: usize,
    /// Stateful session cache capacity (0: off). Serves TLS 1.2 session
    /// IDs, and TLS 1.3 resumption when tickets are off.
    pub session_cache: usize,
    /// Lifetime of a cached session.
    pub session_ttl: Duration,
    /// A handshake that has not finished after this long is aborted.
    pub handshake_timeout: Duration,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            tls12: true,
            groups: Group::DEFAULT.to_vec(),
            policy: PqPolicy::Prefer,
            cipher_suites: Vec::new(),
            prefer_server_ciphers: true,
            alpn: vec![b"http/1.1".to_vec()],
            certs: Vec::new(),
            tickets: true,
            ticket_rotation: Duration::from_secs(3600),
            tickets_per_handshake: 1,
            session_cache: 20_000,
            session_ttl: Duration::from_secs(300),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a [`TlsContext`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextError {
    /// A certificate or key file problem.
    Cert(CertError),
    /// No certificate configured.
    NoCertificates,
    /// The groups list is empty, or (in `require` mode) has no PQ group.
    NoGroups(&'static str),
    /// An unknown cipher suite name.
    UnknownSuite(String),
    /// The cipher suite list leaves TLS 1.3 (always on) without a suite.
    NoTls13Suite,
    /// rustls refused the combination.
    Rustls(String),
}

impl core::fmt::Display for ContextError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ContextError::Cert(e) => write!(f, "{e}"),
            ContextError::NoCertificates => f.write_str("no certificate configured"),
            ContextError::NoGroups(why) => f.write_str(why),
            ContextError::UnknownSuite(s) => {
                write!(f, "unknown cipher suite {s:?} (known: ")?;
                for (i, (_, n)) in SUITES.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(n)?;
                }
                f.write_str(")")
            }
            ContextError::NoTls13Suite => {
                f.write_str("cipher_suites: TLS 1.3 is always on: list at least one TLS13_* suite")
            }
            ContextError::Rustls(e) => write!(f, "rustls: {e}"),
        }
    }
}

impl std::error::Error for ContextError {}

/// The TLS state one VIP port shares across lcores (see the module docs).
#[derive(Debug)]
pub struct TlsContext {
    general: Arc<ServerConfig>,
    pq: Vec<(u16, Arc<ServerConfig>)>,
    policy: PqPolicy,
    /// Ticket keys (rotate them from the control thread).
    pub tickets: Option<Arc<TicketKeys>>,
    /// The stateful session cache.
    pub cache: Option<Arc<SessionCache>>,
    /// See [`TlsSettings::handshake_timeout`].
    pub handshake_timeout: Duration,
    /// Ticket rotation, cache size and TTL: what a rebuild must match to
    /// keep the ticket keys and the cache.
    state: (Duration, usize, Duration),
    served: Vec<crate::certs::CertInfo>,
}

fn suites(names: &[String]) -> Result<Vec<SupportedCipherSuite>, ContextError> {
    if names.is_empty() {
        return Ok(aws_lc_rs::DEFAULT_CIPHER_SUITES.to_vec());
    }
    names
        .iter()
        .map(|n| {
            let (code, _) = SUITES
                .iter()
                .find(|(_, k)| k.eq_ignore_ascii_case(n))
                .ok_or_else(|| ContextError::UnknownSuite(n.clone()))?;
            aws_lc_rs::ALL_CIPHER_SUITES
                .iter()
                .find(|s| s.suite() == *code)
                .copied()
                .ok_or_else(|| ContextError::UnknownSuite(n.clone()))
        })
        .collect()
}

impl TlsContext {
    /// Loads certificates and builds every configuration.
    pub fn new(s: &TlsSettings) -> Result<TlsContext, ContextError> {
        Self::build(s, None)
    }

    /// A new context for changed settings (a reload: certificates,
    /// groups, policy, suites, ALPN...) that keeps this one's ticket keys
    /// and session cache when the new settings keep them with the same
    /// parameters, so sessions issued before the reload still resume.
    pub fn rebuild(&self, s: &TlsSettings) -> Result<TlsContext, ContextError> {
        Self::build(s, Some(self))
    }

    fn build(s: &TlsSettings, old: Option<&TlsContext>) -> Result<TlsContext, ContextError> {
        if s.certs.is_empty() {
            return Err(ContextError::NoCertificates);
        }
        let mut groups: Vec<Group> = Vec::new();
        for g in &s.groups {
            if !groups.contains(g) {
                groups.push(*g);
            }
        }
        if groups.is_empty() {
            return Err(ContextError::NoGroups("groups: the list is empty"));
        }
        if s.policy == PqPolicy::Require {
            groups.retain(|g| g.is_post_quantum());
            if groups.is_empty() {
                return Err(ContextError::NoGroups(
                    "groups: policy \"require\" needs at least one post-quantum group",
                ));
            }
        }
        let cipher_suites = suites(&s.cipher_suites)?;
        if !cipher_suites
            .iter()
            .any(|c| c.version() == &rustls::version::TLS13)
        {
            return Err(ContextError::NoTls13Suite);
        }
        let base = aws_lc_rs::default_provider();
        let store = Arc::new(CertStore::load(&s.certs, &base).map_err(ContextError::Cert)?);
        let state = (s.ticket_rotation, s.session_cache, s.session_ttl);
        let keep = old.filter(|o| o.state == state);
        let tickets = s.tickets.then(|| {
            keep.and_then(|o| o.tickets.clone())
                .unwrap_or_else(|| TicketKeys::new(s.ticket_rotation))
        });
        let cache = (s.session_cache > 0).then(|| {
            keep.and_then(|o| o.cache.clone())
                .unwrap_or_else(|| SessionCache::new(s.session_cache, s.session_ttl))
        });
        let build = |kx: Vec<Group>| -> Result<Arc<ServerConfig>, ContextError> {
            let provider = CryptoProvider {
                cipher_suites: cipher_suites.clone(),
                kx_groups: kx.iter().map(|g| g.kx()).collect(),
                ..aws_lc_rs::default_provider()
            };
            let versions: &[&rustls::SupportedProtocolVersion] = if s.tls12 {
                &[&rustls::version::TLS13, &rustls::version::TLS12]
            } else {
                &[&rustls::version::TLS13]
            };
            let mut c = ServerConfig::builder_with_provider(Arc::new(provider))
                .with_protocol_versions(versions)
                .map_err(|e| ContextError::Rustls(e.to_string()))?
                .with_no_client_auth()
                .with_cert_resolver(store.clone());
            c.alpn_protocols = s.alpn.clone();
            c.ignore_client_order = s.prefer_server_ciphers;
            c.session_storage = match &cache {
                Some(c) => c.clone(),
                None => Arc::new(NoServerSessionStorage {}),
            };
            match &tickets {
                Some(t) => {
                    c.ticketer = t.ticketer();
                    c.send_tls13_tickets = s.tickets_per_handshake;
                }
                None if cache.is_some() => c.send_tls13_tickets = s.tickets_per_handshake,
                None => c.send_tls13_tickets = 0,
            }
            Ok(Arc::new(c))
        };
        let general = build(groups.clone())?;
        let mut pq = Vec::new();
        if s.policy == PqPolicy::Prefer {
            for g in groups.iter().filter(|g| g.is_post_quantum()) {
                pq.push((g.code(), build(vec![*g])?));
            }
        }
        Ok(TlsContext {
            general,
            pq,
            policy: s.policy,
            tickets,
            cache,
            handshake_timeout: s.handshake_timeout,
            state,
            served: store.served(),
        })
    }

    /// The certificates this context serves (names, subject, expiry).
    pub fn served(&self) -> &[crate::certs::CertInfo] {
        &self.served
    }

    /// The policy.
    pub fn policy(&self) -> PqPolicy {
        self.policy
    }

    /// The configuration for a connection whose ClientHello is `hello`
    /// (`None`: it did not parse; rustls will reject it with the right
    /// alert).
    pub fn config_for(&self, hello: Option<&ClientHello<'_>>) -> &Arc<ServerConfig> {
        if let Some(h) = hello {
            // The first allowed PQ group, in server order, the client sent
            // a key share for.
            for (code, cfg) in &self.pq {
                if h.key_share_groups.contains(code) {
                    return cfg;
                }
            }
        }
        &self.general
    }

    /// The general configuration (tests, tools).
    pub fn general(&self) -> &Arc<ServerConfig> {
        &self.general
    }
}
