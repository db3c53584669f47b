//! The access log's records: one fixed-size [`AccessRecord`] per
//! connection at its end, pushed by the lcore into a bounded lock-free
//! ring ([`AccessRing`]); the control thread formats and writes them. The
//! lcore never formats, allocates or makes a system call for it; a full
//! ring loses the record and counts it (`access_log_lost`).

use std::net::SocketAddr;

use crossbeam::queue::ArrayQueue;

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// Both FINs acknowledged (or the TLS connection closed cleanly).
    Fin,
    /// A RST from either side.
    Reset,
    /// Removed by the idle timeout.
    Idle,
    /// The backend refused or never answered the connect (retries spent).
    ConnectFailed,
    /// The client gave up before the backend answered.
    ClientAbort,
    /// Reset because health checks marked its backend down.
    BackendDown,
    /// Reset when the shutdown grace period ended.
    Shutdown,
    /// TLS-terminated: the TLS connection failed (alert, handshake
    /// timeout, bad record...).
    TlsFailed,
}

impl EndReason {
    /// Stable name, used in the log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Fin => "fin",
            EndReason::Reset => "rst",
            EndReason::Idle => "idle_timeout",
            EndReason::ConnectFailed => "connect_failed",
            EndReason::ClientAbort => "client_abort",
            EndReason::BackendDown => "backend_down",
            EndReason::Shutdown => "shutdown",
            EndReason::TlsFailed => "tls_failed",
        }
    }
}

/// Session-aware dispatch's decision for the connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SaDecision {
    /// Not a session-aware VIP.
    #[default]
    None,
    /// The table named a backend holding the session.
    Hit,
    /// No row for the session: the scheduler chose.
    Miss,
    /// The session's backends were busy or ineligible: another one.
    Fallback,
}

impl SaDecision {
    /// Stable name (None: not logged).
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            SaDecision::None => None,
            SaDecision::Hit => Some("hit"),
            SaDecision::Miss => Some("miss"),
            SaDecision::Fallback => Some("fallback"),
        }
    }
}

/// Longest SNI kept in a record (longer ones are cut, marked).
pub const SNI_MAX: usize = 64;

/// What a terminated connection negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsAccess {
    /// Protocol version (0x0304: TLS 1.3, 0x0303: TLS 1.2; 0: the
    /// handshake never completed).
    pub version: u16,
    /// Key-exchange group (none: no handshake, or a TLS 1.2 resumption).
    pub group: Option<qsplice_tls::Group>,
    /// A resumed session.
    pub resumed: bool,
    /// SNI bytes (first `sni_len`).
    pub sni: [u8; SNI_MAX],
    /// Bytes of `sni` used.
    pub sni_len: u8,
}

/// One connection, at its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessRecord {
    /// The lcore that served it.
    pub lcore: u16,
    /// VIP (address:port).
    pub vip: SocketAddr,
    /// Client address:port.
    pub client: SocketAddr,
    /// The backend it was sent to (none: it never got one).
    pub backend: Option<SocketAddr>,
    /// Lcore clock when it began (the client's SYN where known) and ended.
    pub start: u64,
    /// See `start`.
    pub end: u64,
    /// Setup time, µs: SYN → spliced (spliced VIPs), TCP established → TLS
    /// handshake done (terminated VIPs); 0 when it never got there.
    pub setup_us: u64,
    /// Payload bytes client → backend and back (plaintext on terminated VIPs).
    pub c2s_bytes: u64,
    /// See `c2s_bytes`.
    pub s2c_bytes: u64,
    /// How it ended.
    pub how: EndReason,
    /// Terminated VIPs: what TLS negotiated.
    pub tls: Option<TlsAccess>,
    /// Session-aware VIPs: the dispatch decision.
    pub sa: SaDecision,
}

/// One lcore's ring of records toward the control thread.
pub type AccessRing = ArrayQueue<AccessRecord>;

impl TlsAccess {
    /// The record of a TLS session's negotiated parameters.
    pub fn of(info: Option<&qsplice_tls::HandshakeInfo>) -> TlsAccess {
        let mut t = TlsAccess {
            version: 0,
            group: None,
            resumed: false,
            sni: [0; SNI_MAX],
            sni_len: 0,
        };
        if let Some(i) = info {
            t.version = i.version.into();
            t.group = i.group;
            t.resumed = i.resumed;
            if let Some(sni) = &i.sni {
                let n = sni.len().min(SNI_MAX);
                t.sni[..n].copy_from_slice(&sni.as_bytes()[..n]);
                t.sni_len = n as u8;
            }
        }
        t
    }

    /// The SNI (as far as it was kept).
    pub fn sni(&self) -> &[u8] {
        &self.sni[..usize::from(self.sni_len)]
    }
}

/// The lcore side: sampling and the push.
#[derive(Debug)]
pub struct AccessLogger {
    ring: Option<std::sync::Arc<AccessRing>>,
    sample: u32,
    seen: u32,
}

impl AccessLogger {
    /// Log every `sample`-th connection into `ring` (None or a sample of
    /// 0: off).
    pub fn new(ring: Option<std::sync::Arc<AccessRing>>, sample: u32) -> Self {
        AccessLogger {
            ring,
            sample,
            seen: 0,
        }
    }

    /// A new sampling rate (0: off), taken from a publication.
    pub fn set_sample(&mut self, sample: u32) {
        self.sample = sample;
    }

    /// Is the access log on (records are worth building)?
    #[inline]
    pub fn wants(&mut self) -> bool {
        if self.ring.is_none() || self.sample == 0 {
            return false;
        }
        self.seen = self.seen.wrapping_add(1);
        self.seen % self.sample == 0
    }

    /// Push `r`; false when the ring was full (the record is lost).
    #[inline]
    pub fn push(&self, r: AccessRecord) -> bool {
        match &self.ring {
            Some(q) => q.push(r).is_ok(),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> AccessRecord {
        AccessRecord {
            lcore: 0,
            vip: "10.0.0.1:80".parse().unwrap(),
            client: "10.0.0.2:4000".parse().unwrap(),
            backend: None,
            start: 1,
            end: 2,
            setup_us: 0,
            c2s_bytes: 0,
            s2c_bytes: 0,
            how: EndReason::Fin,
            tls: None,
            sa: SaDecision::None,
        }
    }

    #[test]
    fn samples_one_in_n_and_counts_a_full_ring() {
        let ring = std::sync::Arc::new(AccessRing::new(2));
        let mut l = AccessLogger::new(Some(ring.clone()), 3);
        let taken: Vec<bool> = (0..9).map(|_| l.wants()).collect();
        assert_eq!(taken.iter().filter(|t| **t).count(), 3);
        assert!(l.push(rec()) && l.push(rec()));
        assert!(!l.push(rec()), "full");
        assert_eq!(ring.len(), 2);
        let mut off = AccessLogger::new(None, 1);
        assert!(!off.wants());
        l.set_sample(0);
        assert!(!(0..9).any(|_| l.wants()), "sample 0: off");
        l.set_sample(1);
        assert!(l.wants());
    }
}
