//! TLS termination on the lcore, for VIPs marked `tls = "terminate"`.
//!
//! ```text
//! client ──TCP──▶ [Endpoint]─TLS bytes─▶ TlsSession ─plaintext─▶ [Endpoint] ──TCP──▶ backend
//!        ◀──────             ◀─ records ─            ◀──────────             ◀──────
//! ```
//!
//! A SYN to a terminated VIP is answered like any VIP's (`answer_syn`: from
//! the lcore's SYN cache, or with a SYN cookie under pressure): nothing is
//! allocated for it. When the client's ACK completes the handshake (its SYN
//! cache entry, or its cookie), the connection is created with a
//! [`qsplice_tcp::Endpoint`] already ESTABLISHED with what the handshake
//! agreed (MSS, window scale, SACK, timestamps), and a [`TlsSession`]. The
//! backend leg is a second endpoint, opened actively from a source port
//! this lcore owns once the TLS handshake is done, with the splice path's
//! monotonic ISN and TSval (a reused tuple the backend still holds in
//! TIME-WAIT is accepted there, RFC 6191). The lcore demultiplexes by
//! 4-tuple; segments go to the endpoints parsed in place (no copy) and the
//! endpoints' output goes straight into mbufs.
//!
//! The endpoints are our own (`dataplane/tcp`), not smoltcp: loss recovery
//! with SACK (RFC 6675), fast retransmit, a 200 ms minimum RTO on a
//! measured RTT, a tail-loss probe, window scaling, CUBIC — and adoption of
//! a handshake completed elsewhere (SYN cache / cookie), which smoltcp
//! cannot do (docs/ARCHITECTURE.md).
//!
//! Per connection: buffers and the TLS state are allocated when the
//! handshake completes (not per packet); the table is bounded
//! (`max_conns` per lcore, beyond it a RST and `tls_refused`). Timers
//! (retransmission, delayed ACK, the handshake timeout, idle) run from a
//! deadline heap checked every tick.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddrV4;
use std::sync::Arc;

use qsplice_engine::Io;
use qsplice_netdev::{Frame, Queue};
use qsplice_tcp::{
    Config as TcpConfig, Endpoint, Handshake, Now, Outcome, Segment as TcpSegment, SegmentOut,
    State, TsInfo, MAX_SEGS_PER_CALL,
};
use qsplice_tls::{Failure, Plaintext, TlsContext, TlsSession, TlsStats};
use qsplice_wire::http1::XffInserter;
use qsplice_wire::tls::HelloAssembler;
use qsplice_wire::{ethertype, ip_proto, EthernetFrame, Ipv4Packet, MacAddr, TcpFlags, TcpPacket};

use super::{LbCore, Seg};
use crate::access::{AccessRecord, EndReason, SaDecision, TlsAccess};
use crate::board::AcceptMode;
use crate::tcp::{SynOptions, MIN_FRAME, OUR_TTL};

/// Client leg buffers: receive (TLS records in) and send (records out).
const CLIENT_RX: usize = 64 * 1024;
const CLIENT_TX: usize = 128 * 1024;
/// Backend leg buffers.
const BACKEND_RX: usize = 128 * 1024;
const BACKEND_TX: usize = 64 * 1024;
/// Rewritten plaintext held for the backend leg at most (beyond it the
/// connection is reset: a client pipelining tiny requests to grow it).
const XFF_PENDING_MAX: usize = 256 * 1024;
/// Drive/output rounds per event.
const ROUNDS: usize = 16;

/// A VIP whose TLS the appliance terminates.
#[derive(Clone, Debug)]
pub struct TlsVip {
    /// The VIP (address and port).
    pub addr: SocketAddrV4,
    /// Index of its pool on the board.
    pub pool: usize,
    /// Its TLS configuration, shared by all lcores and replaced whole by a
    /// reload (new handshakes take the new one; a connection keeps the
    /// rustls configuration its handshake chose).
    pub ctx: Arc<arc_swap::ArcSwap<TlsContext>>,
    /// Add `X-Forwarded-For` to the HTTP/1.1 requests relayed.
    pub x_forwarded_for: bool,
}

#[derive(Copy, Clone, Debug)]
struct Route {
    client_mac: MacAddr,
    cpi: usize,
    server_mac: MacAddr,
    bpi: usize,
}

/// One terminated connection.
struct Conn {
    /// Reset both legs at the next lifecycle step (backend marked down).
    kill: bool,
    /// Plaintext relayed from the client and to it (access log).
    bytes_in: u64,
    bytes_out: u64,
    /// TLS handshake time, µs (0: not completed).
    hs_us: u64,
    /// Client SYN time where known (SYN cache entry), else the connection's.
    born: u64,
    gen: u32,
    vip: usize,
    client: SocketAddrV4,
    vip_addr: SocketAddrV4,
    route: Route,
    /// The client leg.
    cli: Endpoint,
    /// Added to the TS clock on the client leg: our SYN-ACK's TSval may be
    /// ahead of the clock (a cookie's option bits), and TSvals must never
    /// go backwards (the client's PAWS would drop our segments).
    cli_ts_off: u32,
    /// The backend leg, once opened.
    be: Option<Endpoint>,
    /// Backend: (address, source port, pool, index).
    server: Option<(SocketAddrV4, u16, usize, usize)>,
    tls: TlsSession,
    /// `X-Forwarded-For` insertion, and rewritten bytes the backend leg
    /// had no room for yet.
    xff: Option<XffInserter>,
    xff_pending: Vec<u8>,
    created: u64,
    last: u64,
    want_connect: bool,
    /// Deadline of this connection's pending heap entry (`u64::MAX`: none).
    armed: u64,
    backend_up: bool,
    /// Backends tried (bit `index % 64`) and retries made (`lb.retries`).
    tried: u64,
    retried: u8,
    backend_fin_sent: bool,
    client_fin_sent: bool,
    failed: bool,
    /// On `Terminator::corked`: the client leg is corked until the end of
    /// this receive burst.
    corked: bool,
}

/// The terminator's per-lcore state (a field of [`LbCore`]).
pub(super) struct Terminator {
    vips: Vec<TlsVip>,
    conns: Vec<Option<Box<Conn>>>,
    gens: Vec<u32>,
    free: Vec<u32>,
    by_client: HashMap<(SocketAddrV4, SocketAddrV4), u32>,
    by_backend: HashMap<(SocketAddrV4, u16), u32>,
    timers: BinaryHeap<Reverse<(u64, u32, u32)>>,
    /// Connections whose client leg was corked during this receive burst
    /// (slot, generation): uncorked and flushed by `term_flush` when the
    /// burst is over.
    corked: Vec<(u32, u32)>,
    scratch: HelloAssembler,
    /// Per-VIP TLS counters (working copy).
    pub(super) stats: Vec<TlsStats>,
    max_conns: usize,
    cli_cfg: TcpConfig,
    be_cfg: TcpConfig,
}

impl core::fmt::Debug for Terminator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Terminator")
            .field("vips", &self.vips.len())
            .field("conns", &self.by_client.len())
            .finish_non_exhaustive()
    }
}

/// What the endpoints are configured from (the balancer's settings).
#[derive(Copy, Clone, Debug)]
pub(super) struct TermTcp {
    pub client_mss: u16,
    pub backend_mss: u16,
    pub vip_ws: u8,
    pub min_mss: u16,
    pub congestion: qsplice_tcp::Congestion,
    pub syn_rto_ms: u64,
    pub syn_retries: u8,
}

impl Terminator {
    pub(super) fn new(vips: Vec<TlsVip>, max_conns: usize, t: TermTcp) -> Terminator {
        let n = vips.len();
        let base = TcpConfig {
            min_snd_mss: t.min_mss,
            congestion: t.congestion,
            // Our ISNs and TSvals are monotonic per tuple: no TIME-WAIT
            // needed to protect a reused tuple; a late FIN finds no
            // connection (dropped, or a RST with one lcore).
            time_wait_us: 0,
            ..TcpConfig::default()
        };
        Terminator {
            vips,
            conns: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            by_client: HashMap::new(),
            by_backend: HashMap::new(),
            timers: BinaryHeap::new(),
            corked: Vec::new(),
            scratch: HelloAssembler::new(),
            stats: vec![TlsStats::default(); n],
            max_conns: max_conns.max(1),
            cli_cfg: TcpConfig {
                mss: t.client_mss,
                rcv_buf: CLIENT_RX,
                snd_buf: CLIENT_TX,
                // What answer_syn announced.
                ws_local: Some(t.vip_ws),
                ..base
            },
            be_cfg: TcpConfig {
                mss: t.backend_mss,
                rcv_buf: BACKEND_RX,
                snd_buf: BACKEND_TX,
                initial_rto_us: t.syn_rto_ms.max(1) * 1000,
                syn_retries: t.syn_retries,
                ..base
            },
        }
    }

    /// Take the published terminated VIPs (a VIP added or changed live;
    /// entries are only ever appended, so a connection's `vip` index stays
    /// valid).
    pub(super) fn set_vips(&mut self, vips: &[TlsVip]) {
        self.vips = vips.to_vec();
        if self.stats.len() < self.vips.len() {
            self.stats.resize(self.vips.len(), TlsStats::default());
        }
    }

    /// Is `(server, sport)` a backend leg of a terminated connection?
    pub(super) fn owns_backend(&self, server: SocketAddrV4, sport: u16) -> bool {
        self.by_backend.contains_key(&(server, sport))
    }

    /// Connections open.
    pub(super) fn active(&self) -> usize {
        self.by_client.len()
    }

    fn slot(&mut self) -> Option<u32> {
        if let Some(i) = self.free.pop() {
            return Some(i);
        }
        if self.conns.len() >= self.max_conns {
            return None;
        }
        self.conns.push(None);
        self.gens.push(0);
        Some((self.conns.len() - 1) as u32)
    }
}

// ---- segments out ---------------------------------------------------------

/// Builds `seg` from `src` to `dst` in a new frame on port `pi` (Ethernet,
/// IPv4, TCP with its checksum) and queues it. False: no mbuf.
fn emit<Q: Queue>(
    io: &mut Io<'_, Q>,
    edge: &mut super::edge::Edge,
    pi: usize,
    dst_mac: MacAddr,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seg: &SegmentOut<'_>,
) -> bool {
    let tcp_len = seg.len();
    let len = 34 + tcp_len;
    let Some(mut fr) = io.alloc(pi) else {
        return false;
    };
    if len > usize::from(u16::MAX) || !fr.set_len(len.max(MIN_FRAME)) {
        return false;
    }
    let src_mac = io.mac(pi);
    {
        let d = fr.data_mut();
        d[len..].fill(0);
        let mut eth = EthernetFrame::new_unchecked(&mut d[..]);
        eth.set_dst(dst_mac);
        eth.set_src(src_mac);
        eth.set_ethertype(ethertype::IPV4);
        let mut ip = Ipv4Packet::new_unchecked(&mut d[14..len]);
        ip.set_version(4);
        ip.set_header_len(20);
        ip.set_dscp_ecn(0);
        ip.set_total_len((20 + tcp_len) as u16);
        ip.set_ident(0);
        ip.set_flags_frag(0x4000);
        ip.set_ttl(OUR_TTL);
        ip.set_protocol(ip_proto::TCP);
        ip.set_src_addr(*src.ip());
        ip.set_dst_addr(*dst.ip());
        ip.fill_checksum();
        if seg.write(&mut d[34..len], src.port(), dst.port()).is_none() {
            return false;
        }
        TcpPacket::new_unchecked(&mut d[34..len]).fill_checksum(*src.ip(), *dst.ip());
    }
    edge.send(io, pi, fr);
    true
}

// ---- the backend leg as the TLS session's plaintext side -------------------

struct Leg<'s> {
    ep: Option<&'s mut Endpoint>,
    xff: Option<&'s mut XffInserter>,
    pending: &'s mut Vec<u8>,
}

impl Plaintext for Leg<'_> {
    fn room(&self) -> usize {
        match &self.ep {
            Some(e) if e.may_send() => e.send_room().saturating_sub(self.pending.len()),
            _ => 0,
        }
    }

    fn put(&mut self, data: &[u8]) {
        let Some(e) = self.ep.as_mut() else {
            return;
        };
        match self.xff.as_mut() {
            None => {
                let n = e.send(data);
                // `room` said it fits; keep anything refused, never lose it.
                self.pending.extend_from_slice(&data[n..]);
            }
            Some(x) => {
                let pending = &mut *self.pending;
                x.feed(data, &mut |b| {
                    let n = if pending.is_empty() { e.send(b) } else { 0 };
                    pending.extend_from_slice(&b[n..]);
                });
            }
        }
    }

    fn pending(&mut self) -> &[u8] {
        match self.ep.as_ref() {
            Some(e) => e.recv_peek().0,
            None => &[],
        }
    }

    fn consume(&mut self, n: usize) {
        if let Some(e) = self.ep.as_mut() {
            e.recv_consume(n);
        }
    }
}

/// A leg's handshake completed (any synchronized state).
fn synchronized(s: State) -> bool {
    !matches!(s, State::Closed | State::SynSent | State::SynReceived)
}

impl<F: Frame> LbCore<F> {
    fn term_us(&self, now: u64) -> u64 {
        (u128::from(now) * 1_000_000 / u128::from(self.conf.hz.max(1))) as u64
    }

    fn term_ticks_of_us(&self, us: u64) -> u64 {
        (u128::from(us) * u128::from(self.conf.hz) / 1_000_000) as u64
    }

    /// A segment for a terminated VIP (`vi`) from a client.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn term_client<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        f: F,
        l3: usize,
        vi: usize,
        s: &Seg,
        opts: &SynOptions,
        now: u64,
    ) {
        let pi = self.conf.client_port;
        if let Some(idx) = self.term.by_client.get(&(s.src, s.dst)).copied() {
            if let Some((_, _, pool, b)) = self.term_server(idx) {
                self.bstat(pool, b, |st| st.c2s_packets += 1);
            }
            return self.term_event(io, idx, Some((f, l3)), false, now);
        }
        let syn = s.flags.contains(TcpFlags::SYN);
        let ack = s.flags.contains(TcpFlags::ACK);
        let rst = s.flags.contains(TcpFlags::RST);
        if syn && !ack && !rst && !s.flags.contains(TcpFlags::FIN) {
            // Answered like any VIP's SYN: no state beyond the SYN cache.
            return self.answer_syn(io, f, s, opts, now);
        }
        if rst && self.half_open_reset(s) {
            return;
        }
        if !(ack && !syn && !rst) {
            self.c.no_flow += 1;
            // With several lcores this may be a live connection's segment
            // another lcore owns (af_packet fanout rollover): drop.
            if self.conf.lcores > 1 || rst {
                return;
            }
            return self.reply_rst(io, pi, f, s);
        }
        if self.shared.board.mode() != AcceptMode::Serving {
            self.c.syn_refused_shutdown += 1;
            return self.reply_rst(io, pi, f, s);
        }
        let Some(acc) = self.complete_handshake(s, opts, now) else {
            self.c.cookie_bad += 1;
            if self.conf.lcores > 1 {
                return;
            }
            return self.reply_rst(io, pi, f, s);
        };
        // A new connection's handshake: a removed VIP refuses it (a
        // draining connection's stray segment never gets here).
        if !self.vip_open(s.dst) {
            self.c.syn_refused_removed += 1;
            return self.reply_rst(io, pi, f, s);
        }
        let Some(idx) = self.term.slot() else {
            self.c.tls_refused += 1;
            return self.reply_rst(io, pi, f, s);
        };
        // The handshake the SYN-ACK made: its ISN is what the ACK
        // acknowledges; window scaling iff the client offered it (we then
        // announced `vip_ws`); timestamps iff the ACK carries them.
        let ts = opts.ts.map(|(v, e)| TsInfo {
            ts_recent: v,
            tsecr: e,
        });
        let hs = Handshake {
            iss: s.ack.wrapping_sub(1),
            irs: s.seq.wrapping_sub(1),
            peer_mss: acc.mss.max(self.conf.min_mss),
            peer_ws: acc.ws,
            local_ws: self.conf.vip_ws,
            sack: acc.sack,
            ts,
            peer_window: s.win,
            rtt_us: None,
        };
        let clock = self.ts_clock(now);
        let cli_ts_off = match opts.ts {
            Some((_, ours)) if (ours.wrapping_sub(clock) as i32) > 0 => ours.wrapping_sub(clock),
            _ => 0,
        };
        let nowt = Now {
            us: self.term_us(now),
            tsval: clock.wrapping_add(cli_ts_off),
        };
        let cli = Endpoint::accept(&self.term.cli_cfg, hs, nowt);
        let gen = self.term.gens[idx as usize].wrapping_add(1);
        self.term.gens[idx as usize] = gen;
        self.term.conns[idx as usize] = Some(Box::new(Conn {
            gen,
            vip: vi,
            client: s.src,
            vip_addr: s.dst,
            route: Route {
                client_mac: s.eth_src,
                cpi: pi,
                server_mac: MacAddr::ZERO,
                bpi: self.conf.backend_port,
            },
            cli,
            cli_ts_off,
            be: None,
            server: None,
            tls: TlsSession::new(),
            xff: self.term.vips[vi]
                .x_forwarded_for
                .then(|| XffInserter::new(self.edge.real(*s.src.ip()))),
            xff_pending: Vec::new(),
            created: now,
            kill: false,
            bytes_in: 0,
            bytes_out: 0,
            hs_us: 0,
            born: acc.entry.map_or(now, |e| e.created),
            last: now,
            want_connect: false,
            armed: u64::MAX,
            backend_up: false,
            tried: 0,
            retried: 0,
            backend_fin_sent: false,
            client_fin_sent: false,
            failed: false,
            corked: false,
        }));
        self.term.by_client.insert((s.src, s.dst), idx);
        self.term.stats[vi].connections += 1;
        self.term.stats[vi].active += 1;
        self.c.tls_accepted += 1;
        // The completing ACK may carry the ClientHello already.
        self.term_event(io, idx, Some((f, l3)), false, now);
    }

    /// A segment from a backend toward a terminated connection's leg;
    /// gives the frame back when no such leg exists.
    pub(super) fn term_backend<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        f: F,
        l3: usize,
        s: &Seg,
        now: u64,
    ) -> Option<F> {
        let Some(&idx) = self.term.by_backend.get(&(s.src, s.dst.port())) else {
            return Some(f);
        };
        if let Some((_, _, pool, b)) = self.term_server(idx) {
            self.bstat(pool, b, |st| st.s2c_packets += 1);
        }
        self.term_event(io, idx, Some((f, l3)), true, now);
        None
    }

    /// The backend leg of connection `idx`, once chosen.
    fn term_server(&self, idx: u32) -> Option<(SocketAddrV4, u16, usize, usize)> {
        self.term.conns.get(idx as usize)?.as_ref()?.server
    }

    /// A "packet too big" about a terminated connection's segment: the
    /// client leg's (`client_leg`, keyed (client, VIP)) or the backend
    /// leg's (keyed (backend, source port)). `None`: no such connection;
    /// else whether it lowered the leg's MSS (its flight is resent at once).
    pub(super) fn term_ptb<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        client_leg: bool,
        (a, b): (SocketAddrV4, SocketAddrV4),
        (mss, seq): (u32, u32),
        now: u64,
    ) -> Option<bool> {
        let idx = if client_leg {
            self.term.by_client.get(&(a, b))
        } else {
            self.term.by_backend.get(&(a, b.port()))
        }
        .copied()?;
        let off = self.term.conns.get(idx as usize)?.as_ref()?.cli_ts_off;
        let t = self.term_now(now, if client_leg { off } else { 0 });
        let conn = self.term.conns.get_mut(idx as usize)?.as_mut()?;
        let applied = if client_leg {
            conn.cli.path_mtu(mss, seq, t)
        } else {
            conn.be.as_mut().is_some_and(|e| e.path_mtu(mss, seq, t))
        };
        if applied {
            self.term_event(io, idx, None, false, now);
        }
        Some(applied)
    }

    fn term_now(&self, now: u64, off: u32) -> Now {
        Now {
            us: self.term_us(now),
            tsval: self.ts_clock(now).wrapping_add(off),
        }
    }

    /// Runs connection `idx` on an input segment (from the client, or the
    /// backend with `from_backend`) or a timer.
    fn term_event<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        idx: u32,
        input: Option<(F, usize)>,
        from_backend: bool,
        now: u64,
    ) {
        let Some(mut conn) = self.term.conns.get_mut(idx as usize).and_then(Option::take) else {
            return;
        };
        let cnow = self.term_now(now, conn.cli_ts_off);
        let bnow = self.term_now(now, 0);
        // A segment corks the client leg until the end of the receive
        // burst: the TLS records made from each backend segment are sent
        // as full-sized segments, the runt at the end once (`term_flush`).
        // Anything else (a timer, the flush) uncorks it.
        let cork = input.is_some();
        if cork && !conn.corked {
            conn.corked = true;
            self.term.corked.push((idx, conn.gen));
        } else if !cork {
            conn.corked = false;
        }
        conn.cli.set_cork(conn.corked);
        if let Some((f, l3)) = &input {
            conn.last = now;
            let data = f.data();
            let ip = Ipv4Packet::new_unchecked(&data[*l3..]);
            let l4 = *l3 + usize::from(ip.header_len());
            let end = (*l3 + usize::from(ip.total_len())).min(data.len());
            if let Some(seg) = data.get(l4..end).and_then(TcpSegment::parse) {
                let mut seg = seg;
                if seg.flags.contains(TcpFlags::SYN)
                    && seg.options.mss.is_some_and(|m| m < self.conf.min_mss)
                {
                    self.c.mss_clamped += 1;
                    seg.options.mss = Some(self.conf.min_mss);
                }
                match (from_backend, conn.be.as_mut()) {
                    (false, _) => conn.cli.input(&seg, cnow),
                    (true, Some(be)) => be.input(&seg, bnow),
                    (true, None) => {}
                }
            }
        }
        drop(input);
        for _ in 0..ROUNDS {
            let moved = self.term_drive(&mut conn, now);
            if conn.want_connect {
                self.term_connect(io, idx, &mut conn, now);
            }
            self.term_lifecycle(&mut conn, now);
            let sent = self.term_output(io, &mut conn, cnow, bnow);
            if !moved && sent == 0 {
                break;
            }
        }
        if self.term_finished(&conn) {
            self.term_free(idx, conn);
            return;
        }
        // Next wake-up: the endpoints' timers, the handshake deadline, idle.
        let mut due = now + self.conf.idle_timeout_ms.max(1) * self.ms;
        let us = cnow.us;
        for at in [
            conn.cli.poll_at(),
            conn.be.as_ref().and_then(Endpoint::poll_at),
        ]
        .into_iter()
        .flatten()
        {
            let d = self.term_ticks_of_us(at.saturating_sub(us));
            due = due.min(now + d.max(1));
        }
        if conn.tls.is_handshaking() {
            let hs = self.term.vips[conn.vip].ctx.load().handshake_timeout;
            let t = conn.created + (hs.as_micros() * u128::from(self.conf.hz) / 1_000_000) as u64;
            due = due.min(t.max(now + 1));
        }
        if conn.want_connect {
            due = due.min(now + 10 * self.ms);
        }
        if due < conn.armed {
            conn.armed = due;
            self.term.timers.push(Reverse((due, idx, conn.gen)));
        }
        self.term.conns[idx as usize] = Some(conn);
    }

    /// Everything both endpoints have to send now. Returns segments sent.
    fn term_output<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        conn: &mut Conn,
        cnow: Now,
        bnow: Now,
    ) -> usize {
        let r = conn.route;
        let mut lost = 0u64;
        let (vip, client) = (conn.vip_addr, conn.client);
        let edge = &mut self.edge;
        let mut n = conn.cli.output(cnow, MAX_SEGS_PER_CALL, |seg| {
            let ok = emit(io, edge, r.cpi, r.client_mac, vip, client, seg);
            lost += u64::from(!ok);
            ok
        });
        if let (Some(be), Some((server, sport, _, _))) = (conn.be.as_mut(), conn.server) {
            let local = SocketAddrV4::new(self.conf.local, sport);
            n += be.output(bnow, MAX_SEGS_PER_CALL, |seg| {
                let ok = emit(io, edge, r.bpi, r.server_mac, local, server, seg);
                lost += u64::from(!ok);
                ok
            });
        }
        // No mbuf: the endpoint keeps the segment and plans it again.
        self.c.drop_no_buffer += lost;
        n
    }

    /// Moves bytes client leg → TLS → backend leg and back.
    /// Returns whether anything moved.
    fn term_drive(&mut self, conn: &mut Conn, now: u64) -> bool {
        let t = &mut self.term;
        let vip = &t.vips[conn.vip];
        let stats = &mut t.stats[conn.vip];
        let mut moved = false;
        while conn.tls.rx_room() > 0 && conn.cli.recv_ready() > 0 {
            let n = {
                let (a, _) = conn.cli.recv_peek();
                conn.tls.receive(a)
            };
            if n == 0 {
                break;
            }
            conn.cli.recv_consume(n);
            moved = true;
        }
        if let Some(be) = conn.be.as_mut() {
            while !conn.xff_pending.is_empty() && be.may_send() {
                let n = be.send(&conn.xff_pending);
                if n == 0 {
                    break;
                }
                conn.xff_pending.drain(..n);
                moved = true;
            }
        }
        let before = (conn.tls.outgoing().len(), conn.tls.rx_pending());
        let bytes_before = (stats.bytes_in, stats.bytes_out);
        let p = {
            let mut leg = Leg {
                ep: conn.be.as_mut(),
                xff: conn.xff.as_mut(),
                pending: &mut conn.xff_pending,
            };
            conn.tls
                .process(&vip.ctx.load(), &mut t.scratch, &mut leg, stats)
        };
        if conn.xff_pending.len() > XFF_PENDING_MAX {
            let st = &mut t.stats[conn.vip];
            conn.tls.abort(Failure::BufferOverflow, st);
        }
        moved |= before != (conn.tls.outgoing().len(), conn.tls.rx_pending());
        if p.handshake_done {
            conn.want_connect = true;
            let ticks = now.saturating_sub(conn.created);
            let us = (u128::from(ticks) * 1_000_000 / u128::from(self.conf.hz.max(1))) as u64;
            self.h.tls_handshake.record(us);
            conn.hs_us = us.max(1);
        }
        // Plaintext relayed each way, on the backend's counters too (the
        // VIP's `c2s_bytes` / `s2c_bytes` are their sums).
        let st = &t.stats[conn.vip];
        let (din, dout) = (st.bytes_in - bytes_before.0, st.bytes_out - bytes_before.1);
        conn.bytes_in += din;
        conn.bytes_out += dout;
        while !conn.tls.outgoing().is_empty() && conn.cli.may_send() {
            let n = conn.cli.send(conn.tls.outgoing());
            if n == 0 {
                break;
            }
            conn.tls.consume_outgoing(n);
            moved = true;
        }
        if din | dout != 0 {
            if let Some((_, _, pool, b)) = conn.server {
                self.bstat(pool, b, |st| {
                    st.c2s_bytes += din;
                    st.s2c_bytes += dout;
                });
            }
        }
        moved
    }

    /// Picks a backend and opens the backend leg.
    fn term_connect<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        idx: u32,
        conn: &mut Conn,
        now: u64,
    ) {
        let pool = self.term.vips[conn.vip].pool;
        let picked = self.pools.get(pool).and_then(|snap| {
            let cur = self.cursors.get_mut(pool)?;
            let b = snap.pick_excluding(
                self.edge.key_hash(snap, conn.client, conn.vip_addr),
                cur,
                conn.tried,
            )?;
            Some((b, snap.backends[b].addr))
        });
        let Some((b, server)) = picked else {
            if conn.retried > 0 {
                self.c.retry_no_backend += 1;
            } else {
                self.c.conn_no_backend += 1;
            }
            return self.term_fail_backend(conn);
        };
        let Some(mac) = self.edge.resolve(io, self.conf.backend_port, *server.ip()) else {
            // ARP is under way; retried from the timer.
            if now.saturating_sub(conn.created) > 3000 * self.ms {
                self.c.drop_unresolved += 1;
                self.term_fail_backend(conn);
            }
            return;
        };
        let Some(sport) = self.alloc_sport(server) else {
            self.c.no_source_port += 1;
            return self.term_fail_backend(conn);
        };
        conn.want_connect = false;
        let local = SocketAddrV4::new(self.conf.local, sport);
        // The splice path's ISN and TSval: monotonic per backend tuple, so
        // the backend's TIME-WAIT of a previous use accepts this SYN.
        let (iss, _) = self.backend_isn_ts(local, server, now);
        conn.be = Some(Endpoint::connect(
            &self.term.be_cfg,
            iss,
            self.term_now(now, 0),
        ));
        conn.route.server_mac = mac;
        conn.server = Some((server, sport, pool, b));
        conn.tried |= 1u64 << (b % 64);
        self.term.by_backend.insert((server, sport), idx);
        self.c.tls_backend_opened += 1;
        if conn.retried > 0 {
            self.c.conn_retried += 1;
        }
        self.bstat(pool, b, |st| {
            st.opened += 1;
            st.active += 1;
        });
    }

    fn term_fail_backend(&mut self, conn: &mut Conn) {
        conn.want_connect = false;
        if !conn.failed {
            conn.failed = true;
            self.c.tls_backend_failed += 1;
            self.c.tls_reset += 1;
            if let Some((_, _, pool, b)) = conn.server {
                self.bstat(pool, b, |st| st.failed += 1);
            }
        }
        conn.cli.abort();
        if let Some(be) = conn.be.as_mut() {
            be.abort();
        }
    }

    /// Half-closes, failures and timeouts.
    fn term_lifecycle(&mut self, conn: &mut Conn, now: u64) {
        if conn.failed {
            return;
        }
        // Both legs reset now: the shutdown grace period is over, the
        // backend was marked down, or the connection idled out.
        let idle = now.saturating_sub(conn.last) >= self.conf.idle_timeout_ms.max(1) * self.ms;
        if self.resetting || conn.kill || idle {
            conn.failed = true;
            self.c.tls_reset += 1;
            conn.cli.abort();
            if let Some(be) = conn.be.as_mut() {
                be.abort();
            }
            return;
        }
        let hs_over = || {
            let hs = self.term.vips[conn.vip].ctx.load().handshake_timeout;
            let hs_ticks = (hs.as_micros() * u128::from(self.conf.hz) / 1_000_000) as u64;
            now.saturating_sub(conn.created) >= hs_ticks
        };
        if conn.tls.is_handshaking() && hs_over() {
            let st = &mut self.term.stats[conn.vip];
            conn.tls.abort(Failure::HandshakeTimeout, st);
            conn.failed = true;
            self.c.tls_reset += 1;
            conn.cli.abort();
            return;
        }
        if conn.cli.is_closed() && !conn.client_fin_sent {
            // The client leg ended without our FIN: the client reset it
            // (or it timed out): end the backend leg now.
            conn.failed = true;
            if conn.cli.outcome() == Some(Outcome::Reset) {
                self.c.tls_client_reset += 1;
            }
            if conn.tls.is_handshaking() {
                let st = &mut self.term.stats[conn.vip];
                conn.tls.abort(Failure::ClientClosed, st);
            }
            if let Some(be) = conn.be.as_mut() {
                be.abort();
            }
            return;
        }
        if conn.cli.is_closed() {
            // The client leg is over after our FIN (both FINs, or the
            // client reset it once it had everything): the backend leg
            // ends too — with a FIN after a clean close, else a RST.
            conn.want_connect = false;
            if let Some(be) = conn.be.as_mut().filter(|b| !b.is_closed()) {
                if conn.cli.outcome().is_none() && conn.tls.failure().is_none() {
                    if !conn.backend_fin_sent {
                        conn.backend_fin_sent = true;
                        be.close();
                    }
                } else {
                    be.abort();
                }
            }
            return;
        }
        if conn.tls.failure().is_some() {
            // The alert (if any) is queued on the client leg: close after it.
            if conn.tls.outgoing().is_empty() && !conn.client_fin_sent {
                conn.client_fin_sent = true;
                conn.cli.close();
            }
            if let Some(be) = conn.be.as_mut() {
                be.abort();
            }
            return;
        }
        if let Some((bstate, bclosed, boutcome)) = conn
            .be
            .as_ref()
            .map(|be| (be.state(), be.is_closed(), be.outcome()))
        {
            if synchronized(bstate) && !conn.backend_up {
                conn.backend_up = true;
                if let Some((_, _, pool, b)) = conn.server {
                    self.bstat(pool, b, |st| st.spliced += 1);
                }
            }
            if !conn.backend_up && bclosed {
                // Refused (RST) or the connect timed out: another backend
                // while retries last (the client's data waits in the TLS
                // session meanwhile).
                if boutcome == Some(Outcome::Refused) {
                    self.c.conn_refused += 1;
                } else {
                    self.c.conn_timeout += 1;
                }
                conn.be = None;
                if let Some((server, sport, pool, b)) = conn.server.take() {
                    self.term.by_backend.remove(&(server, sport));
                    self.bstat(pool, b, |st| {
                        st.failed += 1;
                        st.active = st.active.saturating_sub(1);
                    });
                }
                if conn.retried < self.conf.retries {
                    // Counted in `conn_retried` once another backend is
                    // actually opened (as on the splice path).
                    conn.retried += 1;
                    conn.want_connect = true;
                    return;
                }
                return self.term_fail_backend(conn);
            }
            if conn.backend_up
                && matches!(boutcome, Some(Outcome::Reset | Outcome::TimedOut))
                && !conn.backend_fin_sent
            {
                // The backend reset its leg mid-stream (or stopped
                // answering): the client must not take the truncated
                // response for a complete one.
                conn.failed = true;
                self.c.tls_reset += 1;
                conn.cli.abort();
                return;
            }
            let Some(be) = conn.be.as_mut() else {
                return;
            };
            // Backend finished its response: close_notify, then FIN.
            if conn.backend_up && !be.may_recv() && be.recv_ready() == 0 && !conn.tls.close_sent() {
                conn.tls.close();
            }
            // Client finished (close_notify or FIN) and all it sent went
            // through: FIN to the backend.
            let client_done = conn.tls.peer_closed() || !conn.cli.may_recv();
            if client_done
                && conn.backend_up
                && !conn.backend_fin_sent
                && conn.tls.rx_pending() == 0
                && conn.xff_pending.is_empty()
            {
                conn.backend_fin_sent = true;
                be.close();
            }
        } else if !conn.cli.may_recv() && conn.tls.is_handshaking() {
            // The client gave up during the handshake.
            let st = &mut self.term.stats[conn.vip];
            conn.tls.abort(Failure::ClientClosed, st);
            conn.client_fin_sent = true;
            conn.cli.close();
            return;
        }
        if conn.tls.close_sent() && conn.tls.outgoing().is_empty() && !conn.client_fin_sent {
            conn.client_fin_sent = true;
            conn.cli.close();
        }
    }

    fn term_finished(&mut self, conn: &Conn) -> bool {
        let gone = |e: &Endpoint| e.is_closed() || e.state() == State::TimeWait;
        gone(&conn.cli) && conn.be.as_ref().is_none_or(gone) && !conn.want_connect
    }

    fn term_free(&mut self, idx: u32, conn: Box<Conn>) {
        for ep in std::iter::once(&conn.cli).chain(conn.be.as_ref()) {
            let st = ep.stats();
            self.c.tcp_retransmits += st.retransmits;
            self.c.tcp_fast_recoveries += st.fast_retransmits;
            self.c.tcp_rto += st.rto_timeouts;
            self.c.tcp_tlp += st.tlp_probes;
            self.c.tcp_recovery_probes += st.recovery_probes;
            self.c.tcp_ooo += st.ooo_segments;
            self.c.tcp_paws_drops += st.paws_drops;
        }
        self.term.by_client.remove(&(conn.client, conn.vip_addr));
        if let Some(st) = self.term.stats.get_mut(conn.vip) {
            st.active = st.active.saturating_sub(1);
        }
        if let Some((server, sport, pool, b)) = conn.server {
            self.term.by_backend.remove(&(server, sport));
            self.bstat(pool, b, |st| st.active = st.active.saturating_sub(1));
        }
        self.term.free.push(idx);
        self.c.tls_closed += 1;
        // Clean: the response went through and we closed the client leg
        // (a client that resets after our FIN lost nothing).
        let clean =
            !conn.failed && conn.backend_up && conn.client_fin_sent && conn.tls.failure().is_none();
        if clean {
            self.c.tls_completed += 1;
        } else {
            self.c.tls_failed += 1;
            if let (true, Some((_, _, pool, b))) = (conn.backend_up, conn.server) {
                self.bstat(pool, b, |st| st.reset += 1);
            }
        }
        if self.access.wants() {
            let how = if clean {
                EndReason::Fin
            } else if self.resetting {
                EndReason::Shutdown
            } else if conn.kill {
                EndReason::BackendDown
            } else if conn.cli.outcome() == Some(Outcome::Reset) {
                EndReason::Reset
            } else if conn.server.is_some() && !conn.backend_up {
                EndReason::ConnectFailed
            } else {
                EndReason::TlsFailed
            };
            let r = AccessRecord {
                lcore: self.conf.lcore,
                vip: self.edge.real_sock(conn.vip_addr),
                client: self.edge.real_sock(conn.client),
                backend: conn.server.map(|(s, _, _, _)| self.edge.real_sock(s)),
                start: conn.born,
                end: self.now,
                setup_us: conn.hs_us,
                c2s_bytes: conn.bytes_in,
                s2c_bytes: conn.bytes_out,
                how,
                tls: Some(TlsAccess::of(conn.tls.handshake())),
                sa: SaDecision::None,
            };
            if !self.access.push(r) {
                self.c.access_log_lost += 1;
            }
        }
    }

    /// Terminated connections to these backends (`(pool, backend)`, marked
    /// down by health checks): both legs reset now.
    pub(super) fn term_reset_backends<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        dead: &[(usize, usize)],
        now: u64,
    ) {
        let hit: Vec<u32> = (0..self.term.conns.len() as u32)
            .filter(|&i| {
                self.term.conns[i as usize].as_ref().is_some_and(|c| {
                    c.server
                        .is_some_and(|(_, _, pool, b)| dead.contains(&(pool, b)))
                })
            })
            .collect();
        for idx in hit {
            if let Some(c) = self.term.conns[idx as usize].as_mut() {
                c.kill = true;
            }
            self.c.conn_reset_backend_down += 1;
            self.term_event(io, idx, None, false, now);
        }
    }

    /// Every live terminated connection runs its lifecycle now (the
    /// shutdown reset: `resetting` is set).
    pub(super) fn term_reset_all<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, now: u64) {
        let live: Vec<u32> = (0..self.term.conns.len() as u32)
            .filter(|&i| self.term.conns[i as usize].is_some())
            .collect();
        for idx in live {
            self.term_event(io, idx, None, false, now);
        }
        self.c.tls_active = self.term.active() as u64;
    }

    /// End of a receive burst: uncorks the connections corked during it
    /// and sends what they hold. Returns whether there were any.
    pub(super) fn term_flush<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, now: u64) -> bool {
        if self.term.corked.is_empty() {
            return false;
        }
        let mut i = 0;
        while let Some(&(idx, gen)) = self.term.corked.get(i) {
            i += 1;
            let live = self
                .term
                .conns
                .get(idx as usize)
                .and_then(Option::as_ref)
                .is_some_and(|c| c.gen == gen && c.corked);
            if live {
                self.term_event(io, idx, None, false, now);
            }
        }
        self.term.corked.clear();
        true
    }

    /// Runs due timers.
    pub(super) fn term_timers<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, now: u64) {
        let mut budget = 4096;
        while let Some(&Reverse((due, idx, gen))) = self.term.timers.peek() {
            if due > now || budget == 0 {
                break;
            }
            budget -= 1;
            self.term.timers.pop();
            let live = match self
                .term
                .conns
                .get_mut(idx as usize)
                .and_then(Option::as_mut)
            {
                // Only the entry the connection armed last counts.
                Some(c) if c.gen == gen && c.armed == due => {
                    c.armed = u64::MAX;
                    true
                }
                _ => false,
            };
            if live {
                self.term_event(io, idx, None, false, now);
            }
        }
        self.c.tls_active = self.term.active() as u64;
    }
}
