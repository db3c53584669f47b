//! TLS counters: what was negotiated, and why connections failed.
//!
//! One [`TlsStats`] per VIP per lcore, plain integers (the lcore owns it);
//! the control thread sums lcores' snapshots with [`TlsStats::merge`].

use rustls::{CipherSuite, ProtocolVersion};
use serde::Serialize;

use crate::groups::Group;

/// Cipher suites counted by name (the ones the aws-lc-rs provider offers).
pub const SUITES: [(CipherSuite, &str); 9] = [
    (
        CipherSuite::TLS13_AES_256_GCM_SHA384,
        "TLS13_AES_256_GCM_SHA384",
    ),
    (
        CipherSuite::TLS13_AES_128_GCM_SHA256,
        "TLS13_AES_128_GCM_SHA256",
    ),
    (
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
        "TLS13_CHACHA20_POLY1305_SHA256",
    ),
    (
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
];

/// Why a TLS connection ended badly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// The first flight was not a parseable ClientHello (bad record
    /// header, truncated or oversized hello, bad extension bounds).
    MalformedHello,
    /// No protocol version, cipher suite, key-exchange group or signature
    /// scheme in common (includes `require` against a classical-only client).
    Incompatible,
    /// No certificate for the requested name (and no default).
    NoCertificate,
    /// The peer broke the handshake protocol (unexpected message, bad
    /// Finished, refused a HelloRetryRequest, ...).
    HandshakeProtocol,
    /// The handshake did not finish within the configured time.
    HandshakeTimeout,
    /// A record after the handshake failed to decrypt or decode (garbage
    /// after the handshake).
    BadRecord,
    /// The peer sent a fatal alert.
    AlertReceived,
    /// Output did not fit the connection's buffers (a bug or a hostile
    /// peer forcing unbounded output); the connection is reset.
    BufferOverflow,
    /// Anything else rustls reported.
    Other,
    /// The client closed (FIN) or reset its connection before the
    /// handshake finished.
    ClientClosed,
}

impl Failure {
    /// Every reason, in counter order.
    pub const ALL: [Failure; 10] = [
        Failure::MalformedHello,
        Failure::Incompatible,
        Failure::NoCertificate,
        Failure::HandshakeProtocol,
        Failure::HandshakeTimeout,
        Failure::BadRecord,
        Failure::AlertReceived,
        Failure::BufferOverflow,
        Failure::Other,
        Failure::ClientClosed,
    ];

    /// Counter name.
    pub fn name(self) -> &'static str {
        match self {
            Failure::MalformedHello => "malformed_hello",
            Failure::Incompatible => "incompatible",
            Failure::NoCertificate => "no_certificate",
            Failure::HandshakeProtocol => "handshake_protocol",
            Failure::HandshakeTimeout => "handshake_timeout",
            Failure::BadRecord => "bad_record",
            Failure::AlertReceived => "alert_received",
            Failure::BufferOverflow => "buffer_overflow",
            Failure::Other => "other",
            Failure::ClientClosed => "client_closed",
        }
    }

    /// Index into [`TlsStats::failures`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Classifies a rustls error; `handshaking` says whether the handshake
    /// was still in progress.
    pub fn of(e: &rustls::Error, handshaking: bool) -> Failure {
        use rustls::Error as E;
        match e {
            E::PeerIncompatible(_) => Failure::Incompatible,
            E::AlertReceived(_) => Failure::AlertReceived,
            E::NoCertificatesPresented => Failure::NoCertificate,
            E::General(m) if m.contains("certificate") => Failure::NoCertificate,
            E::DecryptError | E::InvalidMessage(_) | E::PeerMisbehaved(_) if !handshaking => {
                Failure::BadRecord
            }
            E::InvalidMessage(_) if handshaking => Failure::MalformedHello,
            E::DecryptError
            | E::PeerMisbehaved(_)
            | E::InappropriateMessage { .. }
            | E::InappropriateHandshakeMessage { .. } => {
                if handshaking {
                    Failure::HandshakeProtocol
                } else {
                    Failure::BadRecord
                }
            }
            _ => Failure::Other,
        }
    }
}

/// Counters of one VIP on one lcore (or, merged, of one VIP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsStats {
    /// TCP connections established on the VIP (counted by the terminator
    /// when the client's handshake completes, whether or not it ever sends
    /// a byte): every one ends up in `handshakes`, in a handshake-stage
    /// `failures` reason, or is still handshaking.
    pub connections: u64,
    /// Completed handshakes, full and resumed.
    pub handshakes: u64,
    /// Completed handshakes that resumed a session (ticket or cache).
    pub resumed: u64,
    /// Completed full handshakes that needed a HelloRetryRequest.
    pub hello_retries: u64,
    /// Completed handshakes by negotiated group (full handshakes and TLS
    /// 1.3 resumptions with (EC)DHE), indexed by [`Group::index`].
    pub groups: [u64; Group::COUNT],
    /// Completed handshakes by cipher suite, indexed like [`SUITES`].
    pub suites: [u64; SUITES.len()],
    /// Completed TLS 1.3 handshakes.
    pub tls13: u64,
    /// Completed TLS 1.2 handshakes.
    pub tls12: u64,
    /// Failed connections by reason, indexed by [`Failure::index`].
    pub failures: [u64; Failure::ALL.len()],
    /// Connections closed cleanly by the client (close_notify).
    pub close_notify: u64,
    /// Application bytes decrypted (client to backend).
    pub bytes_in: u64,
    /// Application bytes encrypted (backend to client).
    pub bytes_out: u64,
    /// Connections open now (a gauge, kept by the terminator).
    pub active: u64,
}

impl TlsStats {
    /// Adds `o` into `self`.
    pub fn merge(&mut self, o: &TlsStats) {
        self.connections += o.connections;
        self.handshakes += o.handshakes;
        self.resumed += o.resumed;
        self.hello_retries += o.hello_retries;
        for (a, b) in self.groups.iter_mut().zip(o.groups) {
            *a += b;
        }
        for (a, b) in self.suites.iter_mut().zip(o.suites) {
            *a += b;
        }
        self.tls13 += o.tls13;
        self.tls12 += o.tls12;
        for (a, b) in self.failures.iter_mut().zip(o.failures) {
            *a += b;
        }
        self.close_notify += o.close_notify;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.active += o.active;
    }

    /// Counts a completed handshake.
    pub fn count_handshake(&mut self, h: &HandshakeInfo) {
        self.handshakes += 1;
        if h.resumed {
            self.resumed += 1;
        }
        if h.hello_retry {
            self.hello_retries += 1;
        }
        if let Some(g) = h.group {
            self.groups[g.index()] += 1;
        }
        if let Some(i) = SUITES.iter().position(|(s, _)| *s == h.suite) {
            self.suites[i] += 1;
        }
        match h.version {
            ProtocolVersion::TLSv1_3 => self.tls13 += 1,
            ProtocolVersion::TLSv1_2 => self.tls12 += 1,
            _ => {}
        }
    }

    /// Counts a failed connection.
    pub fn count_failure(&mut self, f: Failure) {
        self.failures[f.index()] += 1;
    }

    /// Handshakes with a post-quantum group.
    pub fn post_quantum(&self) -> u64 {
        Group::ALL
            .iter()
            .filter(|g| g.is_post_quantum())
            .map(|g| self.groups[g.index()])
            .sum()
    }

    /// A name-keyed view for reports (zero counters left out).
    pub fn report(&self) -> TlsReport {
        let named = |it: &mut dyn Iterator<Item = (&'static str, u64)>| {
            it.filter(|(_, v)| *v > 0)
                .map(|(k, v)| (k.to_string(), v))
                .collect()
        };
        TlsReport {
            connections: self.connections,
            handshakes: self.handshakes,
            resumed: self.resumed,
            hello_retries: self.hello_retries,
            post_quantum: self.post_quantum(),
            tls13: self.tls13,
            tls12: self.tls12,
            groups: named(
                &mut Group::ALL
                    .iter()
                    .map(|g| (g.name(), self.groups[g.index()])),
            ),
            suites: named(&mut SUITES.iter().zip(self.suites).map(|((_, n), v)| (*n, v))),
            failures: named(
                &mut Failure::ALL
                    .iter()
                    .map(|f| (f.name(), self.failures[f.index()])),
            ),
            close_notify: self.close_notify,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
        }
    }
}

/// [`TlsStats`] by name, for JSON reports and the live lines.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct TlsReport {
    /// See [`TlsStats::connections`].
    pub connections: u64,
    /// See [`TlsStats::handshakes`].
    pub handshakes: u64,
    /// See [`TlsStats::resumed`].
    pub resumed: u64,
    /// See [`TlsStats::hello_retries`].
    pub hello_retries: u64,
    /// Handshakes with a post-quantum (hybrid or ML-KEM) group.
    pub post_quantum: u64,
    /// See [`TlsStats::tls13`].
    pub tls13: u64,
    /// See [`TlsStats::tls12`].
    pub tls12: u64,
    /// Handshakes by group name.
    pub groups: Vec<(String, u64)>,
    /// Handshakes by cipher suite name.
    pub suites: Vec<(String, u64)>,
    /// Failures by reason name.
    pub failures: Vec<(String, u64)>,
    /// See [`TlsStats::close_notify`].
    pub close_notify: u64,
    /// See [`TlsStats::bytes_in`].
    pub bytes_in: u64,
    /// See [`TlsStats::bytes_out`].
    pub bytes_out: u64,
}

/// What a completed handshake negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeInfo {
    /// Protocol version.
    pub version: ProtocolVersion,
    /// Cipher suite.
    pub suite: CipherSuite,
    /// Key-exchange group (`None`: TLS 1.2 resumption, no key exchange).
    pub group: Option<Group>,
    /// Resumed a session.
    pub resumed: bool,
    /// A HelloRetryRequest was needed.
    pub hello_retry: bool,
    /// SNI the client sent.
    pub sni: Option<String>,
    /// Negotiated ALPN protocol.
    pub alpn: Option<Vec<u8>>,
}
