//! `[bgp]`: keep the BGP speaker's announcements equal to what this node
//! can serve. Control thread only: the decision reads the balancer's VIP
//! and backend state, the ports' links and the workers' published poll
//! counters; the speaker is driven by `qsplice-routing` (BIRD's control
//! socket), never from an lcore.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qsplice_config::BgpConf;
use qsplice_engine::SharedCounters;
use qsplice_mgmt::report::BgpReport;
use qsplice_routing::{Announcer, Bird, Step};

use crate::lb::LbRuntime;
use crate::runtime::Booted;

/// How often the decision is re-evaluated.
const CHECK: Duration = Duration::from_millis(50);

/// The route announcement of one node.
pub(crate) struct RouteCtl {
    ann: Announcer,
    stall: Duration,
    /// Per worker: the last poll count seen and when it last moved.
    polls: Vec<(u64, Instant)>,
    next_check: Instant,
    wanted: BTreeSet<IpAddr>,
    reason: String,
    last_error: String,
}

impl RouteCtl {
    pub(crate) fn new(c: &BgpConf, workers: usize, now: Instant) -> RouteCtl {
        RouteCtl {
            ann: Announcer::new(Bird::new(&c.control_socket), &c.routes_file, &c.protocol),
            stall: Duration::from_millis(c.stall_ms),
            polls: vec![(0, now); workers],
            next_check: now,
            wanted: BTreeSet::new(),
            reason: "starting".into(),
            last_error: String::new(),
        }
    }

    /// Why this node cannot serve now (`None`: it can).
    fn unfit(
        &mut self,
        b: &Booted,
        shared: &[Arc<SharedCounters>],
        draining: bool,
        now: Instant,
    ) -> Option<String> {
        if draining {
            return Some("shutting down".into());
        }
        for (i, p) in b.ports.iter().enumerate() {
            if !p.link().up {
                return Some(format!(
                    "port `{}` link down",
                    b.names.get(i).map_or("?", String::as_str)
                ));
            }
        }
        for (s, seen) in shared.iter().zip(self.polls.iter_mut()) {
            let polls = s.snapshot().polls;
            if polls != seen.0 {
                *seen = (polls, now);
            }
        }
        if let Some(i) = self
            .polls
            .iter()
            .position(|(_, t)| now.duration_since(*t) > self.stall)
        {
            return Some(format!("worker {i} stopped polling"));
        }
        None
    }

    /// One control-loop step: decide what to announce and tell the speaker
    /// when that changed (or an earlier attempt failed and is due again).
    pub(crate) fn step(
        &mut self,
        b: &Booted,
        shared: &[Arc<SharedCounters>],
        lb: Option<&LbRuntime>,
        draining: bool,
        now: Instant,
    ) {
        if now < self.next_check {
            return;
        }
        self.next_check = now + CHECK;
        let reason = self.unfit(b, shared, draining, now);
        self.wanted = match (&reason, lb) {
            (None, Some(l)) => l.serviceable_vip_ips().into_iter().collect(),
            _ => BTreeSet::new(),
        };
        let reason = reason.unwrap_or_default();
        if reason != self.reason {
            if reason.is_empty() {
                tracing::info!("bgp: this node can serve; announcing its healthy VIPs");
            } else {
                tracing::warn!(%reason, "bgp: this node cannot serve; withdrawing every VIP");
            }
            self.reason = reason;
        }
        let wanted = self.wanted.clone();
        self.apply(&wanted, now, false);
    }

    fn apply(&mut self, want: &BTreeSet<IpAddr>, now: Instant, force: bool) {
        match self.ann.step(want, now, force) {
            Step::Idle => {}
            Step::Applied {
                announced,
                withdrawn,
            } => {
                tracing::info!(?announced, ?withdrawn, now = ?want, "bgp: routes updated");
                self.last_error.clear();
            }
            Step::Failed(e) => {
                let msg = e.to_string();
                // Once per distinct error (a speaker that is not up yet
                // fails the same way every retry).
                if msg != self.last_error {
                    tracing::warn!("bgp: {msg}; retrying");
                }
                self.last_error = msg;
            }
        }
    }

    /// Withdraw everything now (shutdown, before connections are reset).
    pub(crate) fn withdraw_all(&mut self) {
        self.wanted.clear();
        self.reason = "shutting down".into();
        self.apply(&BTreeSet::new(), Instant::now(), true);
    }

    pub(crate) fn report(&self) -> BgpReport {
        BgpReport {
            announced: self
                .ann
                .applied()
                .map(|s| s.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            wanted: self.wanted.iter().map(ToString::to_string).collect(),
            serving: self.reason.is_empty(),
            reason: self.reason.clone(),
            updates: self.ann.updates,
            failures: self.ann.failures,
            last_error: self.last_error.clone(),
        }
    }
}
