//! `[dhcp_server]` and `[dhcp_tester]`: the DHCP modes' schema and their validation rules.

use super::*;

/// A probability 0.0..=1.0 (compared bit for bit, so configs stay `Eq`).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct Probability(pub f64);

impl PartialEq for Probability {
    fn eq(&self, o: &Self) -> bool {
        self.0.to_bits() == o.0.to_bits()
    }
}
impl Eq for Probability {}

/// `[[dhcp_server.pools]]`: one subnet and the range handed out in it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DhcpPoolConf {
    /// The subnet, `10.20.0.0/24` (relayed requests pick the pool whose
    /// subnet holds giaddr; direct ones the pool holding the server address,
    /// else the first).
    pub subnet: Cidr,
    /// First address handed out.
    pub range_start: Ipv4Addr,
    /// Last address handed out (inclusive).
    pub range_end: Ipv4Addr,
    /// Option 3 (routers), at most 8.
    #[serde(default)]
    pub routers: Vec<Ipv4Addr>,
    /// Option 6 (DNS servers), at most 8.
    #[serde(default)]
    pub dns_servers: Vec<Ipv4Addr>,
    /// Lease time, seconds (T1/T2 are 1/2 and 7/8 of it).
    #[serde(default = "default_lease_time")]
    pub lease_time_s: u64,
}

fn default_lease_time() -> u64 {
    3600
}

/// `dhcp_server.exhaustion`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ExhaustionConf {
    /// Stay silent.
    #[default]
    NoReply,
    /// Answer DHCPNAK.
    Nak,
}

/// `[dhcp_server.faults]`: fault simulation.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DhcpFaultsConf {
    /// Probability that a request is dropped unseen (0.0–1.0).
    pub drop_rate: Probability,
    /// Fixed delay added to every reply, ms (0: none). Exclusive with the
    /// uniform delay below.
    pub delay_ms: u64,
    /// Uniform delay: smallest, ms.
    pub delay_min_ms: u64,
    /// Uniform delay: largest, ms (0: no uniform delay).
    pub delay_max_ms: u64,
    /// Replies held for delay at once, at most (a bounded, preallocated
    /// timer structure; replies beyond it are dropped and counted).
    pub max_delayed: u32,
    /// Token-bucket limit on requests per second (0: none).
    pub rate_limit_pps: u64,
    /// Bucket size of the rate limit.
    pub rate_limit_burst: u64,
}

impl Default for DhcpFaultsConf {
    fn default() -> Self {
        DhcpFaultsConf {
            drop_rate: Probability(0.0),
            delay_ms: 0,
            delay_min_ms: 0,
            delay_max_ms: 0,
            max_delayed: 4096,
            rate_limit_pps: 0,
            rate_limit_burst: 64,
        }
    }
}

/// `[dhcp_server]`: the DHCP server simulator.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DhcpServerConf {
    /// Name of the `[[ports]]` entry it serves on.
    pub port: String,
    /// Server identifier and source of replies; empty: the port's first
    /// address.
    #[serde(deserialize_with = "opt_ipv4")]
    pub server_ip: Option<Ipv4Addr>,
    /// The pools (at least one).
    pub pools: Vec<DhcpPoolConf>,
    /// An unclaimed offer returns to the pool after this long, ms.
    pub offer_timeout_ms: u64,
    /// A declined address stays out of use this long, s.
    pub decline_quarantine_s: u64,
    /// Pool exhausted: `"no-reply"` or `"nak"`.
    pub exhaustion: ExhaustionConf,
    /// NAK requests for unknown leases (RFC 2131 §4.3.2) instead of silence.
    pub authoritative: bool,
    /// Echo Option 82 in replies to relayed requests (RFC 3046).
    pub echo_option82: bool,
    /// Upper bound on addresses over all pools (lease table size).
    pub max_leases: u32,
    /// Seed of the fault simulation.
    pub seed: u64,
    /// Fault simulation (DHCPv4 and DHCPv6 alike).
    pub faults: DhcpFaultsConf,
    /// DHCPv6 service on the same port (`[dhcp_server.v6]`), if any.
    pub v6: Option<DhcpServer6Conf>,
    /// Sleep after an empty poll, µs; unset: `engine.idle_sleep_us` when
    /// that is non-zero, else 50 on kernel-backed ports (`net_af_packet`,
    /// `net_af_xdp`, `net_tap`: a busy-polling lcore takes the CPU the kernel's veth path
    /// and the peers on the same machine need) and 0 (busy polling) on
    /// others.
    pub idle_sleep_us: Option<u64>,
}

impl Default for DhcpServerConf {
    fn default() -> Self {
        DhcpServerConf {
            port: String::new(),
            server_ip: None,
            pools: Vec::new(),
            offer_timeout_ms: 30_000,
            decline_quarantine_s: 600,
            exhaustion: ExhaustionConf::NoReply,
            authoritative: true,
            echo_option82: true,
            max_leases: 1 << 20,
            seed: 1,
            faults: DhcpFaultsConf::default(),
            v6: None,
            idle_sleep_us: None,
        }
    }
}

/// `[dhcp_server.v6]`: DHCPv6 (RFC 8415) addresses (IA_NA) from one range
/// and delegated prefixes (IA_PD) from one aggregate, answered on the
/// same port as DHCPv4 (or alone, with no `[[dhcp_server.pools]]`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DhcpServer6Conf {
    /// First address handed out (IA_NA); unset: no address service.
    pub range_start: Option<Ipv6Addr>,
    /// Last address handed out (inclusive).
    pub range_end: Option<Ipv6Addr>,
    /// Aggregate delegated prefixes are cut from (IA_PD), e.g.
    /// `2001:db8:4000::/40`; unset: no prefix delegation.
    pub pd_pool: Option<Cidr6>,
    /// Length of each delegated prefix (e.g. 56).
    pub pd_length: u8,
    /// Preferred lifetime, s.
    pub preferred_lifetime_s: u32,
    /// Valid lifetime, s.
    pub valid_lifetime_s: u32,
    /// T1 sent in IAs, s; unset: half the preferred lifetime.
    pub t1_s: Option<u32>,
    /// T2 sent in IAs, s; unset: 0.8 × the preferred lifetime.
    pub t2_s: Option<u32>,
    /// Bind at once when a SOLICIT asks for Rapid Commit.
    pub rapid_commit: bool,
    /// Server Preference option in ADVERTISE (0: left out; 255: clients
    /// take this server at once).
    pub preference: u8,
    /// An advertised lease is held for the client's REQUEST this long, s.
    pub offer_hold_s: u32,
    /// Server DUID in hex (e.g. `00:03:00:01:02:00:00:00:00:01`); empty:
    /// DUID-LL of the port's MAC.
    pub duid: String,
}

impl Default for DhcpServer6Conf {
    fn default() -> Self {
        DhcpServer6Conf {
            range_start: None,
            range_end: None,
            pd_pool: None,
            pd_length: 56,
            preferred_lifetime_s: 3600,
            valid_lifetime_s: 7200,
            t1_s: None,
            t2_s: None,
            rapid_commit: true,
            preference: 0,
            offer_hold_s: 30,
            duid: String::new(),
        }
    }
}

impl DhcpServer6Conf {
    /// T1 and T2 after defaults.
    pub fn t1_t2(&self) -> (u32, u32) {
        let p = self.preferred_lifetime_s;
        (self.t1_s.unwrap_or(p / 2), self.t2_s.unwrap_or(p / 5 * 4))
    }

    /// Addresses in the range (0 without one).
    pub fn range_len(&self) -> u128 {
        match (self.range_start, self.range_end) {
            (Some(s), Some(e)) if e >= s => u128::from(e) - u128::from(s) + 1,
            _ => 0,
        }
    }
}

/// Parses a DUID written as hex bytes, with or without `:` separators.
pub fn parse_hex_bytes(s: &str) -> Option<Vec<u8>> {
    let h: String = s.chars().filter(|c| *c != ':' && *c != '-').collect();
    if h.len() % 2 != 0 {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `[dhcp_tester.retransmit]`: RFC 2131 §4.1 retransmission.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DhcpRetransmitConf {
    /// First wait, ms (RFC: 4000).
    pub initial_ms: u64,
    /// Factor applied after each retransmission (RFC: 2).
    pub multiplier: u32,
    /// Largest wait, ms (RFC: 64000).
    pub max_ms: u64,
    /// ± this percentage of randomisation of each wait.
    pub jitter_pct: u8,
    /// DISCOVER retransmissions before the client fails.
    pub discover_retries: u8,
    /// REQUEST retransmissions before the client fails.
    pub request_retries: u8,
}

impl Default for DhcpRetransmitConf {
    fn default() -> Self {
        DhcpRetransmitConf {
            initial_ms: 4000,
            multiplier: 2,
            max_ms: 64_000,
            jitter_pct: 25,
            discover_retries: 4,
            request_retries: 4,
        }
    }
}

/// `[dhcp_tester.relay]`: relay-agent mode (RFC 3046).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DhcpRelayConf {
    /// giaddr and source address of relayed frames (the tester answers ARP
    /// for it).
    #[serde(deserialize_with = "opt_ipv4")]
    pub giaddr: Option<Ipv4Addr>,
    /// The server's unicast address.
    #[serde(deserialize_with = "opt_ipv4")]
    pub server_ip: Option<Ipv4Addr>,
    /// The server's (or next hop's) MAC, `aa:bb:cc:dd:ee:ff`.
    pub server_mac: String,
    /// Hops already on the message (the relay sends hops + 1).
    pub hops: u8,
    /// Refuse to relay at hops ≥ this.
    pub max_hops: u8,
    /// Circuit-ID template; `{index}` is the client index; empty: none.
    pub circuit_id: String,
    /// Remote-ID template; empty: none.
    pub remote_id: String,
}

impl Default for DhcpRelayConf {
    fn default() -> Self {
        DhcpRelayConf {
            giaddr: None,
            server_ip: None,
            server_mac: String::new(),
            hops: 0,
            max_hops: 16,
            circuit_id: "port-{index}".into(),
            remote_id: "qsplice".into(),
        }
    }
}

/// `[dhcp_tester]`: the DHCP load tester.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DhcpTesterConf {
    /// Name of the `[[ports]]` entry it sends on (set it promiscuous: the
    /// clients' MACs are not the port's).
    pub port: String,
    /// Virtual clients.
    pub clients: u32,
    /// Clients in flight at most (0: all).
    pub concurrency: u32,
    /// New clients per second (0: as fast as concurrency allows).
    pub rate: u64,
    /// Largest burst of new clients at `rate`.
    pub burst: u32,
    /// MAC of client 0; client i has base_mac + i.
    pub base_mac: String,
    /// 802.1Q VLAN id of sent frames (0: untagged).
    pub vlan: u16,
    /// Set the broadcast flag (replies broadcast) instead of unicast replies.
    pub broadcast: bool,
    /// Send option 61 (client identifier).
    pub client_id: bool,
    /// NAKs a client takes (restarting) before failing.
    pub max_naks: u8,
    /// Renew (unicast REQUEST) this long after BOUND, ms (0: no renew).
    pub renew_after_ms: u64,
    /// Send a RELEASE at the end.
    pub release: bool,
    /// Ethernet destination of unicast renew/release; empty: learned from
    /// the first reply.
    pub server_mac: String,
    /// Seed of the jitter / xid generator.
    pub seed: u64,
    /// Give up (clients still in flight count as unfinished) after this
    /// long, s.
    pub timeout_s: u64,
    /// Retransmission.
    pub retransmit: DhcpRetransmitConf,
    /// Relay-agent mode (absent: direct clients).
    pub relay: Option<DhcpRelayConf>,
    /// DHCPv6 mode (`[dhcp_tester.v6]`): the clients speak DHCPv6 instead.
    pub v6: Option<DhcpTester6Conf>,
}

/// `[dhcp_tester.v6]`: the virtual clients speak DHCPv6 (RFC 8415).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DhcpTester6Conf {
    /// Ask for an address (IA_NA).
    pub ia_na: bool,
    /// Ask for a delegated prefix (IA_PD).
    pub ia_pd: bool,
    /// IAID of both IAs.
    pub iaid: u32,
    /// Send Rapid Commit in SOLICIT.
    pub rapid_commit: bool,
    /// How a bound client extends its binding (`renew_after_ms` after
    /// binding).
    pub extend: Extend6Conf,
    /// REBIND when a RENEW goes unanswered.
    pub rebind: bool,
    /// Retransmission (RFC 8415 §15, §7.6).
    pub retransmit: DhcpRetransmit6Conf,
    /// Relay-agent mode (RELAY-FORW / RELAY-REPL).
    pub relay: Option<DhcpRelay6Conf>,
}

impl Default for DhcpTester6Conf {
    fn default() -> Self {
        DhcpTester6Conf {
            ia_na: true,
            ia_pd: false,
            iaid: 1,
            rapid_commit: false,
            extend: Extend6Conf::Renew,
            rebind: true,
            retransmit: DhcpRetransmit6Conf::default(),
            relay: None,
        }
    }
}

/// How a DHCPv6 tester client extends its binding.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Extend6Conf {
    /// RENEW to the server that granted it.
    #[default]
    Renew,
    /// REBIND to any server.
    Rebind,
}

/// `[dhcp_tester.v6.retransmit]`: initial and maximum retransmission
/// times and counts per message (RFC 8415 §7.6 defaults).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DhcpRetransmit6Conf {
    /// SOL_TIMEOUT, ms.
    pub solicit_irt_ms: u64,
    /// SOL_MAX_RT, ms.
    pub solicit_mrt_ms: u64,
    /// SOLICITs sent before the client fails (the RFC has no limit).
    pub solicit_max_rc: u32,
    /// REQ_TIMEOUT, ms.
    pub request_irt_ms: u64,
    /// REQ_MAX_RT, ms.
    pub request_mrt_ms: u64,
    /// REQ_MAX_RC.
    pub request_max_rc: u32,
    /// REN_TIMEOUT, ms.
    pub renew_irt_ms: u64,
    /// REN_MAX_RT, ms.
    pub renew_mrt_ms: u64,
    /// RENEWs sent before the client REBINDs (or fails).
    pub renew_max_rc: u32,
    /// REB_TIMEOUT, ms.
    pub rebind_irt_ms: u64,
    /// REB_MAX_RT, ms.
    pub rebind_mrt_ms: u64,
    /// REBINDs sent before the client fails.
    pub rebind_max_rc: u32,
    /// Randomisation of each timeout, ± percent (RFC: 10).
    pub jitter_pct: u8,
}

impl Default for DhcpRetransmit6Conf {
    fn default() -> Self {
        DhcpRetransmit6Conf {
            solicit_irt_ms: 1_000,
            solicit_mrt_ms: 3_600_000,
            solicit_max_rc: 10,
            request_irt_ms: 1_000,
            request_mrt_ms: 30_000,
            request_max_rc: 10,
            renew_irt_ms: 10_000,
            renew_mrt_ms: 600_000,
            renew_max_rc: 10,
            rebind_irt_ms: 10_000,
            rebind_mrt_ms: 600_000,
            rebind_max_rc: 10,
            jitter_pct: 10,
        }
    }
}

/// `[dhcp_tester.v6.relay]`: the tester sends as a DHCPv6 relay agent.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DhcpRelay6Conf {
    /// link-address of RELAY-FORW (selects the server's subnet).
    pub link_address: Option<Ipv6Addr>,
    /// The relay's own address (source of RELAY-FORW; the tester answers
    /// Neighbor Solicitations for it). Unset: `link_address`.
    pub address: Option<Ipv6Addr>,
    /// Where RELAY-FORWs go: a server's unicast address or ff02::1:2.
    pub server_ip: Ipv6Addr,
    /// The server's (or next hop's) MAC, for a unicast `server_ip`.
    pub server_mac: String,
    /// Interface-ID template (`{index}` = client index; empty: omitted).
    pub interface_id: String,
    /// Remote-ID template (empty: omitted).
    pub remote_id: String,
    /// Enterprise number of the Remote-ID.
    pub remote_id_enterprise: u32,
}

impl Default for DhcpRelay6Conf {
    fn default() -> Self {
        DhcpRelay6Conf {
            link_address: None,
            address: None,
            server_ip: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2),
            server_mac: String::new(),
            interface_id: "port-{index}".into(),
            remote_id: "qsplice".into(),
            remote_id_enterprise: 0,
        }
    }
}

impl Default for DhcpTesterConf {
    fn default() -> Self {
        DhcpTesterConf {
            port: String::new(),
            clients: 1000,
            concurrency: 0,
            rate: 0,
            burst: 16,
            base_mac: "02:00:00:00:00:00".into(),
            vlan: 0,
            broadcast: true,
            client_id: true,
            max_naks: 3,
            renew_after_ms: 0,
            release: false,
            server_mac: String::new(),
            seed: 1,
            timeout_s: 120,
            retransmit: DhcpRetransmitConf::default(),
            relay: None,
            v6: None,
        }
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut n = 0;
    for part in s.split([':', '-']) {
        if n == 6 || part.len() != 2 {
            return None;
        }
        out[n] = u8::from_str_radix(part, 16).ok()?;
        n += 1;
    }
    (n == 6).then_some(out)
}

type Checked = Result<(), crate::ConfigError>;

fn bad(key: impl Into<String>, value: impl fmt::Display, reason: impl Into<String>) -> Checked {
    Err(crate::ConfigError::new(key, value, reason))
}

fn within<T: PartialOrd + fmt::Display + Copy>(key: &str, v: T, lo: T, hi: T) -> Checked {
    if v < lo || v > hi {
        return bad(key, v, format!("must be in {lo}..={hi}"));
    }
    Ok(())
}

fn mac_key(key: &str, s: &str, required: bool) -> Checked {
    if s.is_empty() {
        if required {
            return bad(key, "", "is required: a MAC address like 02:00:00:00:00:01");
        }
        return Ok(());
    }
    match parse_mac(s) {
        None => bad(key, s, "not a MAC address (expected aa:bb:cc:dd:ee:ff)"),
        Some(m) if m[0] & 1 == 1 => bad(key, s, "must be a unicast MAC (multicast bit set)"),
        Some(_) => Ok(()),
    }
}

fn validate_tester6(v: &DhcpTester6Conf) -> Checked {
    if !v.ia_na && !v.ia_pd {
        return bad(
            "dhcp_tester.v6.ia_na",
            false,
            "ia_na or ia_pd (or both) must be asked for",
        );
    }
    let r = &v.retransmit;
    let k = |f: &str| format!("dhcp_tester.v6.retransmit.{f}");
    for (irt, mrt, rc, irt_v, mrt_v, rc_v) in [
        (
            "solicit_irt_ms",
            "solicit_mrt_ms",
            "solicit_max_rc",
            r.solicit_irt_ms,
            r.solicit_mrt_ms,
            r.solicit_max_rc,
        ),
        (
            "request_irt_ms",
            "request_mrt_ms",
            "request_max_rc",
            r.request_irt_ms,
            r.request_mrt_ms,
            r.request_max_rc,
        ),
        (
            "renew_irt_ms",
            "renew_mrt_ms",
            "renew_max_rc",
            r.renew_irt_ms,
            r.renew_mrt_ms,
            r.renew_max_rc,
        ),
        (
            "rebind_irt_ms",
            "rebind_mrt_ms",
            "rebind_max_rc",
            r.rebind_irt_ms,
            r.rebind_mrt_ms,
            r.rebind_max_rc,
        ),
    ] {
        within(&k(irt), irt_v, 1, 600_000)?;
        within(&k(mrt), mrt_v, irt_v, 86_400_000)?;
        within(&k(rc), rc_v, 1, 255)?;
    }
    within(&k("jitter_pct"), r.jitter_pct, 0, 100)?;
    if let Some(rl) = &v.relay {
        let k = |f: &str| format!("dhcp_tester.v6.relay.{f}");
        let Some(link) = rl.link_address else {
            return bad(k("link_address"), "", "is required in relay mode");
        };
        for (f, a) in [("link_address", Some(link)), ("address", rl.address)] {
            if let Some(a) = a {
                if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
                    return bad(k(f), a, "must be a unicast address");
                }
            }
        }
        if rl.server_ip.is_unspecified() {
            return bad(
                k("server_ip"),
                rl.server_ip,
                "must be a unicast address or ff02::1:2",
            );
        }
        mac_key(
            &k("server_mac"),
            &rl.server_mac,
            !rl.server_ip.is_multicast(),
        )?;
        for (f, s) in [
            ("interface_id", &rl.interface_id),
            ("remote_id", &rl.remote_id),
        ] {
            if s.len() > 200 {
                return bad(k(f), s, "at most 200 bytes");
            }
        }
    }
    Ok(())
}

fn validate_dhcp6(v: &DhcpServer6Conf) -> Checked {
    let k = |f: &str| format!("dhcp_server.v6.{f}");
    match (v.range_start, v.range_end) {
        (None, None) => {}
        (Some(_), None) => return bad(k("range_end"), "", "is required with range_start"),
        (None, Some(_)) => return bad(k("range_start"), "", "is required with range_end"),
        (Some(s), Some(e)) => {
            for (f, a) in [("range_start", s), ("range_end", e)] {
                if a.is_unspecified() || a.is_loopback() || a.is_multicast() {
                    return bad(k(f), a, "must be a unicast address");
                }
            }
            if e < s {
                return bad(k("range_end"), e, format!("is before range_start {s}"));
            }
            if v.range_len() > 1 << 22 {
                return bad(
                    k("range_end"),
                    e,
                    format!(
                        "the range holds {} addresses: at most 4194304 (2^22)",
                        v.range_len()
                    ),
                );
            }
        }
    }
    if let Some(pd) = v.pd_pool {
        if pd.prefix > v.pd_length || v.pd_length > 128 {
            return bad(
                k("pd_length"),
                v.pd_length,
                format!(
                    "must be between the pool's prefix length /{} and 128",
                    pd.prefix
                ),
            );
        }
        if v.pd_length - pd.prefix > 22 {
            return bad(
                k("pd_length"),
                v.pd_length,
                format!(
                    "/{} prefixes from a /{} are more than 2^22",
                    v.pd_length, pd.prefix
                ),
            );
        }
    }
    if v.range_start.is_none() && v.pd_pool.is_none() {
        return bad(
            k("range_start"),
            "",
            "DHCPv6 needs an address range (range_start, range_end) or a pd_pool, or both",
        );
    }
    let (t1, t2) = v.t1_t2();
    if v.preferred_lifetime_s == 0 || v.preferred_lifetime_s > v.valid_lifetime_s {
        return bad(
            k("preferred_lifetime_s"),
            v.preferred_lifetime_s,
            format!("must be 1..=valid_lifetime_s ({})", v.valid_lifetime_s),
        );
    }
    if t1 > t2 || t2 > v.preferred_lifetime_s {
        return bad(
            k("t1_s"),
            t1,
            format!(
                "need t1_s ≤ t2_s ({t2}) ≤ preferred_lifetime_s ({})",
                v.preferred_lifetime_s
            ),
        );
    }
    within(&k("offer_hold_s"), v.offer_hold_s, 1, 3600)?;
    if !v.duid.is_empty() {
        match parse_hex_bytes(&v.duid) {
            Some(d) if (3..=130).contains(&d.len()) => {}
            _ => {
                return bad(
                    k("duid"),
                    &v.duid,
                    "must be 3..=130 bytes in hex (e.g. 00:03:00:01:02:00:00:00:00:01)",
                )
            }
        }
    }
    Ok(())
}

impl Config {
    /// The `[dhcp_server]` / `[dhcp_tester]` rules (called by `validate`).
    pub(crate) fn validate_dhcp(&self) -> Checked {
        if self.dhcp_server.is_none() && self.dhcp_tester.is_none() {
            return Ok(());
        }
        if self.eal.worker_lcores.len() != 1 {
            return bad(
                "eal.worker_lcores",
                format!("{:?}", self.eal.worker_lcores),
                "the DHCP modes keep their lease / client tables on one lcore: configure exactly one worker",
            );
        }
        let port = |key: &str, name: &str| -> Result<&PortConf, crate::ConfigError> {
            if name.is_empty() {
                return Err(crate::ConfigError::new(
                    key,
                    "",
                    "is required: the name of a [[ports]] entry",
                ));
            }
            self.ports.iter().find(|p| p.name == name).ok_or_else(|| {
                crate::ConfigError::new(key, name, "no [[ports]] entry has this name")
            })
        };
        if let Some(s) = &self.dhcp_server {
            let p = port("dhcp_server.port", &s.port)?;
            if let Some(v6) = &s.v6 {
                validate_dhcp6(v6)?;
            }
            if s.pools.is_empty() && s.v6.is_some() {
                // DHCPv6 only: nothing below concerns it but the faults.
            } else if s.server_ip.is_none() && p.addresses.is_empty() {
                return bad(
                    "dhcp_server.server_ip",
                    "",
                    format!("is required: port `{}` has no address to use", p.name),
                );
            }
            if s.pools.is_empty() && s.v6.is_none() {
                return bad(
                    "dhcp_server.pools",
                    "[]",
                    "at least one [[dhcp_server.pools]] entry (or a [dhcp_server.v6] section) is needed",
                );
            }
            within(
                "dhcp_server.offer_timeout_ms",
                s.offer_timeout_ms,
                100,
                3_600_000,
            )?;
            within(
                "dhcp_server.decline_quarantine_s",
                s.decline_quarantine_s,
                0,
                7 * 86_400,
            )?;
            within("dhcp_server.max_leases", s.max_leases, 1, 1 << 24)?;
            if let Some(v) = s.idle_sleep_us {
                within("dhcp_server.idle_sleep_us", v, 0, 1_000_000)?;
            }
            let mut total: u64 = 0;
            for (i, pool) in s.pools.iter().enumerate() {
                let k = |f: &str| format!("dhcp_server.pools[{i}].{f}");
                let net = pool.subnet;
                if !(1..=30).contains(&net.prefix) {
                    return bad(
                        k("subnet"),
                        net,
                        "prefix length must be 1..=30 (a pool needs host addresses)",
                    );
                }
                let (lo, hi) = (u32::from(net.network()), u32::from(net.broadcast()));
                for (f, a) in [
                    ("range_start", pool.range_start),
                    ("range_end", pool.range_end),
                ] {
                    let v = u32::from(a);
                    if v <= lo || v >= hi {
                        return bad(
                            k(f),
                            a,
                            format!("must be a host address of {}/{} (not its network or broadcast address)", net.network(), net.prefix),
                        );
                    }
                }
                if pool.range_end < pool.range_start {
                    return bad(
                        k("range_end"),
                        pool.range_end,
                        format!("is before range_start {}", pool.range_start),
                    );
                }
                if pool.routers.len() > 8 {
                    return bad(k("routers"), pool.routers.len(), "at most 8 routers");
                }
                if pool.dns_servers.len() > 8 {
                    return bad(
                        k("dns_servers"),
                        pool.dns_servers.len(),
                        "at most 8 DNS servers",
                    );
                }
                within(
                    &k("lease_time_s"),
                    pool.lease_time_s,
                    1,
                    u64::from(u32::MAX) - 1,
                )?;
                for (j, other) in s.pools.iter().enumerate().take(i) {
                    let m = net.mask_u32().min(other.subnet.mask_u32());
                    if u32::from(net.addr) & m == u32::from(other.subnet.addr) & m {
                        return bad(
                            k("subnet"),
                            net,
                            format!("overlaps dhcp_server.pools[{j}].subnet {}", other.subnet),
                        );
                    }
                }
                total += u64::from(u32::from(pool.range_end) - u32::from(pool.range_start)) + 1;
            }
            if total > u64::from(s.max_leases) {
                return bad(
                    "dhcp_server.max_leases",
                    s.max_leases,
                    format!(
                        "the pools hold {total} addresses: raise max_leases or shrink the ranges"
                    ),
                );
            }
            let f = &s.faults;
            if !(0.0..=1.0).contains(&f.drop_rate.0) {
                return bad(
                    "dhcp_server.faults.drop_rate",
                    f.drop_rate.0,
                    "must be a probability in 0.0..=1.0",
                );
            }
            within("dhcp_server.faults.delay_ms", f.delay_ms, 0, 60_000)?;
            within("dhcp_server.faults.delay_max_ms", f.delay_max_ms, 0, 60_000)?;
            if f.delay_max_ms > 0 && f.delay_ms > 0 {
                return bad(
                    "dhcp_server.faults.delay_max_ms",
                    f.delay_max_ms,
                    "a fixed delay_ms and a uniform delay_min_ms..delay_max_ms exclude each other",
                );
            }
            if f.delay_min_ms > f.delay_max_ms && (f.delay_max_ms > 0 || f.delay_min_ms > 0) {
                return bad(
                    "dhcp_server.faults.delay_min_ms",
                    f.delay_min_ms,
                    format!("is above delay_max_ms ({})", f.delay_max_ms),
                );
            }
            within("dhcp_server.faults.max_delayed", f.max_delayed, 1, 1 << 20)?;
            within(
                "dhcp_server.faults.rate_limit_pps",
                f.rate_limit_pps,
                0,
                1_000_000_000,
            )?;
            if f.rate_limit_pps > 0 {
                within(
                    "dhcp_server.faults.rate_limit_burst",
                    f.rate_limit_burst,
                    1,
                    1_000_000,
                )?;
            }
        }
        if let Some(t) = &self.dhcp_tester {
            let p = port("dhcp_tester.port", &t.port)?;
            if !p.promiscuous {
                return bad(
                    format!("ports[{}].promiscuous", self.ports.iter().position(|q| q.name == p.name).unwrap_or(0)),
                    "false",
                    "the DHCP tester's port must be promiscuous: replies go to the virtual clients' MACs",
                );
            }
            within("dhcp_tester.clients", t.clients, 1, 1 << 24)?;
            within("dhcp_tester.concurrency", t.concurrency, 0, t.clients)?;
            within("dhcp_tester.rate", t.rate, 0, 100_000_000)?;
            within("dhcp_tester.burst", t.burst, 1, 256)?;
            mac_key("dhcp_tester.base_mac", &t.base_mac, true)?;
            if let Some(m) = parse_mac(&t.base_mac) {
                let mut b = [0u8; 8];
                b[2..].copy_from_slice(&m);
                let v = u64::from_be_bytes(b);
                if v + u64::from(t.clients) > 1 << 48 {
                    return bad(
                        "dhcp_tester.base_mac",
                        &t.base_mac,
                        "base_mac + clients passes ff:ff:ff:ff:ff:ff",
                    );
                }
            }
            within("dhcp_tester.vlan", t.vlan, 0, 4094)?;
            within("dhcp_tester.timeout_s", t.timeout_s, 1, 7 * 86_400)?;
            mac_key("dhcp_tester.server_mac", &t.server_mac, false)?;
            let r = &t.retransmit;
            within(
                "dhcp_tester.retransmit.initial_ms",
                r.initial_ms,
                1,
                600_000,
            )?;
            within("dhcp_tester.retransmit.multiplier", r.multiplier, 1, 16)?;
            within(
                "dhcp_tester.retransmit.max_ms",
                r.max_ms,
                r.initial_ms,
                3_600_000,
            )?;
            within("dhcp_tester.retransmit.jitter_pct", r.jitter_pct, 0, 100)?;
            if let Some(rl) = &t.relay {
                if rl.giaddr.is_none() {
                    return bad("dhcp_tester.relay.giaddr", "", "is required in relay mode");
                }
                if rl.server_ip.is_none() {
                    return bad(
                        "dhcp_tester.relay.server_ip",
                        "",
                        "is required in relay mode: relayed requests are unicast",
                    );
                }
                mac_key("dhcp_tester.relay.server_mac", &rl.server_mac, true)?;
                within("dhcp_tester.relay.max_hops", rl.max_hops, 1, 255)?;
                if rl.hops >= rl.max_hops {
                    return bad(
                        "dhcp_tester.relay.hops",
                        rl.hops,
                        format!(
                            "must be below max_hops ({}): a relay refuses such a message",
                            rl.max_hops
                        ),
                    );
                }
                for (f, v) in [("circuit_id", &rl.circuit_id), ("remote_id", &rl.remote_id)] {
                    if v.len() > 200 {
                        return bad(
                            format!("dhcp_tester.relay.{f}"),
                            v,
                            "at most 200 bytes (an option holds 255)",
                        );
                    }
                }
            }
            if let Some(v6) = &t.v6 {
                if t.relay.is_some() {
                    return bad(
                        "dhcp_tester.relay",
                        "[dhcp_tester.relay]",
                        "is the DHCPv4 relay: with [dhcp_tester.v6] use [dhcp_tester.v6.relay]",
                    );
                }
                validate_tester6(v6)?;
            }
        }
        Ok(())
    }
}
