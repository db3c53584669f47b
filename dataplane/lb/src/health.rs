//! Active health checks, run by the first balancer lcore through the
//! dataplane itself (the backends are reachable only through DPDK ports).
//!
//! The control thread schedules checks ([`HealthCheck`]) on a bounded
//! lock-free queue; lcore 0 opens a TCP connection from the balancer's
//! backend-side address (a source port it owns, so replies steer to it),
//! and for HTTP checks sends `GET <path> HTTP/1.0` and reads the status
//! line of the first response segment; then it resets the connection and
//! reports a [`HealthReport`] on the result queue. The control thread turns
//! results into up/down decisions (rise/fall) and republishes the pools.

use std::net::SocketAddrV4;

use crossbeam::queue::ArrayQueue;

/// What a check does.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    /// The TCP handshake completes.
    Tcp,
    /// An HTTP GET answers the expected status.
    Http,
}

/// One check to run.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// Pool (VIP) index.
    pub pool: u16,
    /// Backend index in the pool.
    pub backend: u16,
    /// The backend.
    pub addr: SocketAddrV4,
    /// What to check.
    pub kind: ProbeKind,
    /// Give up after this long, ms.
    pub timeout_ms: u64,
    /// Caller's token, echoed in the report.
    pub token: u32,
}

/// Outcome of a check.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum HealthResult {
    /// Passed.
    Up,
    /// The backend reset the connection (port closed).
    Refused,
    /// No answer in time.
    Timeout,
    /// HTTP status other than expected, or not an HTTP response.
    BadStatus,
    /// The backend's MAC is not resolved (ARP unanswered).
    Unresolved,
    /// No buffer, port or probe slot to run the check.
    NoResources,
}

impl HealthResult {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthResult::Up => "up",
            HealthResult::Refused => "refused",
            HealthResult::Timeout => "timeout",
            HealthResult::BadStatus => "bad_status",
            HealthResult::Unresolved => "unresolved",
            HealthResult::NoResources => "no_resources",
        }
    }
}

/// A finished check.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct HealthReport {
    /// Pool index.
    pub pool: u16,
    /// Backend index.
    pub backend: u16,
    /// The check's token.
    pub token: u32,
    /// Outcome.
    pub result: HealthResult,
}

/// The queues between the control thread and the probing lcore.
#[derive(Debug)]
pub struct HealthShared {
    /// Control → lcore 0.
    pub checks: ArrayQueue<HealthCheck>,
    /// Lcore 0 → control.
    pub results: ArrayQueue<HealthReport>,
}

impl HealthShared {
    /// Queues of `cap` entries each.
    pub fn new(cap: usize) -> Self {
        HealthShared {
            checks: ArrayQueue::new(cap),
            results: ArrayQueue::new(cap),
        }
    }
}

/// The status code of an HTTP/1.x status line at the start of `data`.
pub fn http_status(data: &[u8]) -> Option<u16> {
    let rest = data.strip_prefix(b"HTTP/1.")?;
    let rest = rest.get(1..)?.strip_prefix(b" ")?;
    let code = rest.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if rest.get(3).is_some_and(|b| *b != b' ' && *b != b'\r') {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(http_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(http_status(b"HTTP/1.0 404 Not Found"), Some(404));
        assert_eq!(http_status(b"HTTP/1.1 503\r\n"), Some(503));
        assert_eq!(http_status(b"HTTP/1.1 20"), None);
        assert_eq!(http_status(b"HTTP/2 200"), None);
        assert_eq!(http_status(b"HTTP/1.1 2x0 OK"), None);
        assert_eq!(http_status(b"HTTP/1.1 2000 OK"), None);
        assert_eq!(http_status(b""), None);
    }
}
