//! The balancer's per-core counters: plain `u64`s on the hot path,
//! published every tick to relaxed atomics the control thread sums
//! (the same scheme as the engine's counters).

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! lb_counters {
    ($( $(#[$m:meta])* $name:ident, )*) => {
        /// Per-core balancer counters (working copy, owned by the lcore).
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct LbCounters {
            $( $(#[$m])* pub $name: u64, )*
        }

        /// The published copy of one core's [`LbCounters`].
        #[derive(Debug, Default)]
        #[repr(align(64))]
        pub struct SharedLbCounters {
            $( $name: AtomicU64, )*
        }

        impl SharedLbCounters {
            /// Store `c` (relaxed: each counter is monotonic or a gauge on its own).
            pub fn publish(&self, c: &LbCounters) {
                $( self.$name.store(c.$name, Ordering::Relaxed); )*
            }
            /// Read the last published values.
            pub fn snapshot(&self) -> LbCounters {
                LbCounters { $( $name: self.$name.load(Ordering::Relaxed), )* }
            }
        }

        impl LbCounters {
            /// Add another core's counters.
            pub fn add(&mut self, o: &LbCounters) {
                $( self.$name += o.$name; )*
            }
            /// Visit every counter by name.
            pub fn for_each(&self, mut f: impl FnMut(&'static str, u64)) {
                $( f(stringify!($name), self.$name); )*
            }
        }
    };
}

lb_counters! {
    /// SYNs to a VIP answered with a SYN-ACK (`syn_stateful + syn_cookies`,
    /// plus retransmitted SYNs answered again from the SYN cache).
    syn_received,
    /// SYNs answered statefully (a new SYN cache entry).
    syn_stateful,
    /// SYNs answered with a SYN cookie (no state): the sum of the two below.
    syn_cookies,
    /// … because the SYN cache was full (`lb.syn_backlog`).
    syn_cache_full,
    /// … because SYNs arrived faster than `lb.syn_rate`.
    syn_rate_limited,
    /// Handshakes completed from a SYN cache entry.
    syn_cache_hits,
    /// SYN cache entries that expired without the client's ACK.
    syn_cache_expired,
    /// Half-open entries now in the SYN cache (gauge).
    syn_cache_active,
    /// SYNs to our address on a port with no VIP: answered with RST.
    syn_no_listener,
    /// Handshake ACKs whose cookie checked out.
    cookie_ok,
    /// ACKs for no flow whose cookie did not check out (answered with RST).
    cookie_bad,
    /// Backend connections opened (backend SYN sent).
    conn_opened,
    /// Backend SYN retransmissions.
    backend_syn_retx,
    /// Flows that reached the spliced state.
    conn_spliced,
    /// Backend refused (RST to our SYN): client reset unless retried.
    conn_refused,
    /// Backend did not answer our SYNs (client reset unless retried).
    conn_timeout,
    /// Connections retried on another backend after a refusal or a
    /// timeout (`lb.retries`); the client saw nothing of it.
    conn_retried,
    /// Retries that found no other backend that could take the
    /// connection (every eligible one tried, or ARP pending): client reset.
    retry_no_backend,
    /// No eligible backend for a new connection: client reset.
    conn_no_backend,
    /// Client reset before the backend answered.
    conn_client_abort,
    /// Flows removed after a normal close or a reset (after linger).
    conn_closed,
    /// Flows removed by the idle timeout.
    conn_idle,
    /// SYNs and handshake-completing ACKs refused with a RST because the
    /// appliance is shutting down (`lb.shutdown_grace_s`).
    syn_refused_shutdown,
    /// SYNs and handshake-completing ACKs refused with a RST because their
    /// VIP was removed while running (its established flows drain).
    syn_refused_removed,
    /// Ticks of the probing lcore that came more than 20 ms after the
    /// previous one (it was not running): pending health probes got that
    /// time back instead of timing out.
    probe_stalls,
    /// Spliced flows reset both ways when the shutdown grace period ended
    /// (terminated connections count `tls_reset`).
    conn_reset_shutdown,
    /// Spliced flows left to the cluster at shutdown (flow sync on): no
    /// RST, another node adopts them from their records.
    conn_left_to_cluster,
    /// Records of spliced flows queued for the cluster (flow sync).
    flows_published,
    /// … not queued because the ring was full (published later).
    flows_publish_full,
    /// Records queued again (the sync's epoch rolled over, or Redis came back).
    flows_republished,
    /// Segments of unknown flows looked up in the cluster's records.
    adopt_lookups,
    /// … not looked up: the lookup ring or the per-tick budget was full.
    adopt_lookup_full,
    /// Segments dropped while their lookup was in flight (or Redis away).
    adopt_waiting,
    /// Flows adopted from a lookup (a client segment found its record).
    adopted,
    /// Flows installed from a dead peer's records (address takeover).
    adopt_installed,
    /// Lookups no node had a record for.
    adopt_not_found,
    /// Lookups Redis could not answer.
    adopt_unavailable,
    /// Records not installed: the client's or backend's MAC not resolved yet.
    adopt_unresolved,
    /// Records for a VIP this node does not serve.
    adopt_no_vip,
    /// Backend segments to a taken-over address with no flow (dropped, not reset).
    adopt_backend_miss,
    /// Adopted flows that ended (closed, idle or at shutdown).
    adopted_ended,
    /// Flows still connecting to a backend when the shutdown grace period
    /// ended (the client reset).
    conn_abort_shutdown,
    /// Established connections (spliced, or terminated with a backend leg)
    /// reset because health checks marked their backend down
    /// (`lb.health.on_down = "reset"`); spliced ones then end as closed.
    conn_reset_backend_down,
    /// Access-log records lost because the lcore's ring was full (the
    /// control thread fell behind).
    access_log_lost,
    /// Flows now in the table (gauge).
    flows_active,
    /// Adopted flows in the table (gauge; part of `flows_active`).
    flows_adopted,
    /// Flows now waiting for a backend (gauge).
    flows_connecting,
    /// New connection refused: flow table full.
    flow_table_full,
    /// Flow inserts refused because the key's probe window (`MAX_PROBE`
    /// slots) was full — new connections (also in `flow_table_full`) and
    /// redispatch re-inserts (also in `retry_no_backend`); the keyed hash
    /// makes this rare and unaimable.
    flow_probe_overflow,
    /// New connection refused: too many connections waiting for backends.
    connecting_full,
    /// New connection refused: no free source port toward that backend.
    no_source_port,
    /// Client segments held while the backend handshake completes.
    held,
    /// Client segments dropped while connecting (hold buffer full, pure ACKs).
    held_dropped,
    /// Segments handed to the lcore that owns their flow.
    steered_out,
    /// Segments received from another lcore.
    steered_in,
    /// Segments dropped because the owner's inbox was full.
    steer_full,
    /// Client → server segments forwarded.
    c2s_packets,
    /// Client → server payload bytes forwarded.
    c2s_bytes,
    /// Server → client segments forwarded.
    s2c_packets,
    /// Server → client payload bytes forwarded.
    s2c_bytes,
    /// Segments for no flow (other than cookie ACKs): answered with RST unless RST.
    no_flow,
    /// TCP header truncated, bad data offset or malformed options.
    drop_tcp_malformed,
    /// TCP checksum wrong (verified on every segment to a VIP or from a
    /// backend, before anything acts on it): dropped.
    drop_tcp_bad_checksum,
    /// SYNs / SYN-ACKs whose MSS was below `lb.min_mss` (raised to it).
    mss_clamped,
    /// Segment the splice translation refused.
    drop_translate,
    /// Next hop not resolved yet (ARP pending).
    drop_unresolved,
    /// No mbuf to build a segment.
    drop_no_buffer,
    /// Segment that makes no sense in the flow's state.
    drop_unexpected,
    /// TLS-terminated connections accepted (the client's TCP handshake to a
    /// `tls = "terminate"` VIP completed: SYN cache entry or cookie).
    tls_accepted,
    /// TLS connections refused: this lcore's termination table was full.
    tls_refused,
    /// TLS connections now open on this lcore (gauge).
    tls_active,
    /// Backend connections opened for terminated connections.
    tls_backend_opened,
    /// Backend connections of terminated connections that failed (refused,
    /// timed out, no backend, no source port).
    tls_backend_failed,
    /// Terminated connections ended (cleanly or not): `tls_completed +
    /// tls_failed`. At any time `tls_accepted = tls_closed + tls_active`
    /// on each lcore.
    tls_closed,
    /// … of which ended cleanly: handshake done, backend leg relayed, both
    /// sides closed (close_notify / FIN) — no failure, no reset.
    tls_completed,
    /// … of which ended any other way: TLS failure, handshake or idle
    /// timeout, backend failure, a client reset, an evicted half-open
    /// connection.
    tls_failed,
    /// Terminated connections whose client reset (RST) them; the backend
    /// leg is reset at once (not left to the idle timeout).
    tls_client_reset,
    /// TCP of terminated connections (both legs, summed when a connection
    /// ends): segments retransmitted.
    tcp_retransmits,
    /// … loss recoveries entered on duplicate ACKs / SACK (fast retransmit).
    tcp_fast_recoveries,
    /// … retransmission timeouts.
    tcp_rto,
    /// … tail-loss probes sent.
    tcp_tlp,
    /// … recovery probes (a lost retransmission resent after
    /// max(2·SRTT, 10 ms) without ACK progress, instead of waiting for an RTO).
    tcp_recovery_probes,
    /// … segments that arrived out of order.
    tcp_ooo,
    /// … segments dropped by PAWS (an old timestamp).
    tcp_paws_drops,
    /// Terminated connections aborted with a RST (handshake timeout,
    /// idle timeout, backend failure).
    tls_reset,
    /// Session-aware VIPs: handshake ACKs that only wait for the hello.
    sa_ack_waiting,
    /// Session-aware VIPs: connections dispatched by the scheduler because
    /// the pending-hello table was full.
    sa_pending_full,
    /// Session-aware VIPs: first flights that were not a TLS ClientHello.
    sa_not_tls,
    /// Session-aware VIPs: hellos not whole within 1 s (scheduler).
    sa_hello_timeout,
    /// Hellos that offered a session (keyed lookups).
    sa_lookups,
    /// Lookups answered from the table (a backend holding the session).
    sa_hits,
    /// Lookups whose every candidate was BUSY (serving the session now, or
    /// its backend down, draining or at its limit): scheduler. The sum of
    /// the two below.
    sa_fallback_busy,
    /// … of which at least one candidate was serving the session right now.
    sa_fallback_session_busy,
    /// … of which every candidate's backend was down, draining or full.
    sa_fallback_backend,
    /// Lookups of sessions the table did not know: the client's last
    /// backend on this lcore if it can take the connection (below), else
    /// the scheduler.
    sa_misses,
    /// Misses sent to the backend this lcore last gave the client (the
    /// likely issuer of its newest ticket).
    sa_client_hint,
    /// ServerHellos that resumed the offered session.
    sa_resumed,
    /// … of connections the table dispatched (hits that led to an
    /// accepted resumption).
    sa_hit_resumed,
    /// Table hits the backend refused to resume (the row is forgotten).
    sa_refused,
    /// Session keys learned from ServerHellos.
    sa_learned,
    /// Learning events lost to a full queue.
    sa_events_full,
    /// First backend data segments that were not a ServerHello.
    sa_no_server_hello,
    /// Content-aware VIPs: requests sent to a matching rule's backend.
    ca_matched,
    /// Content-aware VIPs: a rule matched but none of its backends could
    /// take the connection (scheduler).
    ca_fallback,
    /// Content-aware VIPs: no rule matched, or no whole head (scheduler).
    ca_unmatched,
    /// Flow sync: spliced flows with an IPv6 leg, not shared with the
    /// cluster (their stand-in addresses are this node's own).
    flows_not_shared,
    /// IPv6 segments taken in (translated to the IPv4 path with stand-ins).
    six_in,
    /// Segments sent out as IPv6 (translated from stand-ins).
    six_out,
    /// IPv6 clients with a stand-in address right now (gauge, this lcore).
    six_clients,
    /// IPv6 segments dropped: no client stand-in free (every slot of the
    /// address's window holds a client in use).
    six_clients_full,
    /// IPv6 segments dropped: to `lb.local6` from an address that is no
    /// backend.
    six_unknown_source,
    /// IPv6 segments dropped: not translatable (truncated, bad lengths).
    six_bad,
    /// IPv4 segments from 240.0.0.0/4 (the stand-ins' range, never a real
    /// host) dropped while IPv6 is configured.
    six_forged_source,
    /// Segments to a stand-in that could not leave as IPv6 (its address
    /// gone, no `lb.local6`, no headroom).
    six_untranslatable,
    /// "Packet too big" errors (ICMP Fragmentation Needed, ICMPv6 Packet
    /// Too Big) about a spliced flow, handed on to the other leg's host.
    ptb_forwarded,
    /// … about a TLS-terminated connection's segment: that leg's TCP
    /// lowered its MSS and resent its flight.
    ptb_terminated,
    /// … about no flow of this node (declined to the kernel interface), or
    /// not in a terminated connection's flight.
    ptb_no_flow,
    /// … dropped by the per-lcore rate limit.
    ptb_limited,
    /// … too short to name a TCP segment, or with no MTU.
    ptb_malformed,
    /// … whose flow's addresses have no form in the other leg's family.
    ptb_untranslatable,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_snapshot_and_sum() {
        let c = LbCounters {
            syn_received: 3,
            c2s_bytes: 10,
            ..Default::default()
        };
        let s = SharedLbCounters::default();
        s.publish(&c);
        let mut t = s.snapshot();
        assert_eq!(t, c);
        t.add(&c);
        let mut seen = Vec::new();
        t.for_each(|n, v| {
            if v > 0 {
                seen.push((n, v));
            }
        });
        assert_eq!(seen, vec![("syn_received", 6), ("c2s_bytes", 20)]);
    }
}
