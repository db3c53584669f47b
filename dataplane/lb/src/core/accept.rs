//! Accepting connections: SYNs answered from the SYN cache or with cookies, and the handshake-completing ACK that creates a flow (any VIP kind).

use super::*;

impl<F: Frame> LbCore<F> {
    /// The client's ACK `s` completes a handshake we answered: from its SYN
    /// cache entry (consumed) or its cookie. `None`: neither (a forged or
    /// stale ACK, or a live flow's segment on the wrong lcore).
    pub(super) fn complete_handshake(
        &mut self,
        s: &Seg,
        opts: &SynOptions,
        now: u64,
    ) -> Option<Accepted> {
        if let Some(e) = self.syncache.take(s.src, s.dst, s.seq, s.ack) {
            self.c.syn_cache_hits += 1;
            self.edge.confirm(*s.src.ip());
            return Some(Accepted {
                mss: e.mss,
                ws: e.ws,
                sack: e.sack,
                entry: Some(e),
            });
        }
        let slot = self.cookie_slot(now);
        let mss = SynCookie::decode(&self.conf.secret, s.src, s.dst, s.seq, s.ack, slot)?;
        self.c.cookie_ok += 1;
        self.edge.confirm(*s.src.ip());
        let (ws, sack) = match opts.ts {
            Some((_, tsecr)) => decode_ts(tsecr),
            None => (None, false),
        };
        Some(Accepted {
            mss: mss.max(self.conf.min_mss),
            ws,
            sack,
            entry: None,
        })
    }

    /// Would `s` complete a handshake (SYN cache entry or cookie)? Nothing
    /// is consumed: session-aware dispatch checks the first data segment
    /// before it holds the hello.
    pub(super) fn handshake_valid(&self, s: &Seg, now: u64) -> bool {
        if let Some(e) = self.syncache.get(s.src, s.dst) {
            if s.seq == e.irs.wrapping_add(1) && s.ack == e.iss.wrapping_add(1) {
                return true;
            }
        }
        let slot = self.cookie_slot(now);
        SynCookie::decode(&self.conf.secret, s.src, s.dst, s.seq, s.ack, slot).is_some()
    }

    /// A client RST for its own half-open entry (sequence number exactly
    /// where its data would start, RFC 5961): the entry is dropped.
    pub(super) fn half_open_reset(&mut self, s: &Seg) -> bool {
        match self.syncache.get(s.src, s.dst) {
            Some(e) if s.seq == e.irs.wrapping_add(1) => self.syncache.remove(s.src, s.dst),
            _ => false,
        }
    }

    /// Our ISN for a SYN answered statefully: RFC 6528 (keyed hash of the
    /// tuple plus a 4 µs clock), not a valid cookie.
    pub(super) fn stateful_isn(&self, client: SocketAddrV4, vip: SocketAddrV4, now: u64) -> u32 {
        let us4 = (u128::from(now) * 250_000 / u128::from(self.conf.hz.max(1))) as u32;
        self.conf
            .secret
            .isn(client, vip, 0x5eed_0003)
            .wrapping_add(us4)
    }

    /// SYN to a VIP (any kind): SYN-ACK from the SYN cache while it has
    /// room and the SYN rate is under `syn_rate` (full options: the
    /// client's exact MSS, window scale and SACK whether or not it sends
    /// timestamps), else a SYN cookie keeping no state (window scale and
    /// SACK only through the timestamp bits, as Linux does).
    pub(super) fn answer_syn<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        f: F,
        s: &Seg,
        opts: &SynOptions,
        now: u64,
    ) {
        if self.shared.board.mode() != AcceptMode::Serving {
            self.c.syn_refused_shutdown += 1;
            let pi = self.conf.client_port;
            return self.reply_rst(io, pi, f, s);
        }
        if !self.vip_open(s.dst) {
            self.c.syn_refused_removed += 1;
            let pi = self.conf.client_port;
            return self.reply_rst(io, pi, f, s);
        }
        self.c.syn_received += 1;
        let mss = opts.mss.unwrap_or(DEFAULT_MSS);
        if mss < self.conf.min_mss {
            self.c.mss_clamped += 1;
        }
        let mss = mss.max(self.conf.min_mss);
        // A retransmitted SYN of a held entry: the same answer again.
        let held = self
            .syncache
            .get(s.src, s.dst)
            .filter(|e| e.irs == s.seq)
            .copied();
        let entry = match held {
            Some(e) => Some(e),
            None => match self.syncache.admit(now) {
                Admit::Stateful => {
                    // With timestamps the answer is also a valid cookie
                    // (ISN and TSval as a cookie SYN-ACK's): a handshake
                    // ACK that reaches another lcore (af_packet's rollover
                    // under load) still completes there, with the same
                    // options. Without, the entry alone holds them.
                    let (iss, our_tsval) = match opts.ts {
                        Some(_) => (
                            SynCookie::encode(
                                &self.conf.secret,
                                s.src,
                                s.dst,
                                s.seq,
                                mss,
                                self.cookie_slot(now),
                            ),
                            encode_ts(self.ts_clock(now), opts.ws, opts.sack_ok),
                        ),
                        None => (self.stateful_isn(s.src, s.dst, now), self.ts_clock(now)),
                    };
                    let e = SynEntry {
                        irs: s.seq,
                        iss,
                        mss,
                        ws: opts.ws,
                        sack: opts.sack_ok,
                        ts: opts.ts.map(|t| t.0),
                        our_tsval,
                        created: now,
                    };
                    if self.syncache.insert(s.src, s.dst, e) {
                        self.c.syn_stateful += 1;
                        Some(e)
                    } else {
                        self.c.syn_cache_full += 1;
                        None
                    }
                }
                Admit::Full => {
                    self.c.syn_cache_full += 1;
                    None
                }
                Admit::RateLimited => {
                    self.c.syn_rate_limited += 1;
                    None
                }
            },
        };
        // One leg IPv4, the other IPv6: what the client may send must fit
        // the other leg's 20-byte larger header.
        let client_mss = if self.edge.on() && self.edge.six.is_narrow(s.dst) {
            self.conf.client_mss.saturating_sub(20)
        } else {
            self.conf.client_mss
        };
        let (isn, ours) = match entry {
            Some(e) => (
                e.iss,
                SynOptions {
                    mss: Some(client_mss),
                    ws: e.ws.map(|_| self.conf.vip_ws),
                    sack_ok: e.sack,
                    ts: e.ts.map(|v| (e.our_tsval, v)),
                },
            ),
            None => {
                self.c.syn_cookies += 1;
                let cookie = SynCookie::encode(
                    &self.conf.secret,
                    s.src,
                    s.dst,
                    s.seq,
                    mss,
                    self.cookie_slot(now),
                );
                // Without timestamps there is nowhere to keep the client's
                // window scale and SACK-permitted: offer neither (as Linux).
                let ts = opts.ts.map(|(tsval, _)| {
                    (encode_ts(self.ts_clock(now), opts.ws, opts.sack_ok), tsval)
                });
                (
                    cookie,
                    SynOptions {
                        mss: Some(client_mss),
                        ws: (ts.is_some() && opts.ws.is_some()).then_some(self.conf.vip_ws),
                        sack_ok: ts.is_some() && opts.sack_ok,
                        ts,
                    },
                )
            }
        };
        let mut ob = [0u8; 40];
        let n = write_syn_options(&mut ob, &ours);
        let pi = self.conf.client_port;
        let seg = Segment {
            src_mac: io.mac(pi),
            dst_mac: s.eth_src,
            src: s.dst,
            dst: s.src,
            seq: isn,
            ack: s.seq.wrapping_add(1),
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: u16::MAX,
            options: &ob[..n],
            payload: &[],
        };
        self.emit(io, pi, f, &seg);
    }

    /// An ACK for no flow: if its cookie checks out, choose a backend and
    /// open the backend leg.
    /// A handshake ACK (or the first data segment) with a valid cookie:
    /// open the backend leg — to backend `forced` when given (chosen by
    /// session-aware or content-aware dispatch), else to the scheduler's
    /// choice. Returns the new flow.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn accept_forced<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        f: F,
        s: &Seg,
        opts: &SynOptions,
        pool: usize,
        now: u64,
        forced: Option<usize>,
    ) -> Option<FlowId> {
        let pi = self.conf.client_port;
        if self.shared.board.mode() != AcceptMode::Serving {
            self.c.syn_refused_shutdown += 1;
            self.reply_rst(io, pi, f, s);
            return None;
        }
        let Some(acc) = self.complete_handshake(s, opts, now) else {
            self.c.cookie_bad += 1;
            // With several lcores the segment may belong to a live flow that
            // another lcore owns (net_af_packet's fanout rolls packets over
            // to another queue when a ring is full): a RST from here would
            // kill it. Drop; TCP retransmits. A single lcore owns every flow,
            // so there the segment really is for no connection.
            if self.conf.lcores > 1 {
                return None;
            }
            {
                self.reply_rst(io, pi, f, s);
                return None;
            }
        };
        // A new connection's handshake (its SYN cache entry or a valid
        // cookie), so not a draining flow's stray segment: a removed VIP
        // refuses it.
        if !self.vip_open(s.dst) {
            self.c.syn_refused_removed += 1;
            self.reply_rst(io, pi, f, s);
            return None;
        }
        let Accepted {
            mss,
            ws,
            sack,
            entry,
        } = acc;
        let born = entry.map(|e| e.created);
        if self.connecting.len() >= self.conf.max_connecting {
            self.c.connecting_full += 1;
            {
                self.reply_rst(io, pi, f, s);
                return None;
            }
        }
        let Some(snap) = self.pools.get(pool) else {
            self.c.conn_no_backend += 1;
            {
                self.reply_rst(io, pi, f, s);
                return None;
            }
        };
        let picked = match forced {
            Some(b) => Some(b),
            None => self
                .cursors
                .get_mut(pool)
                .and_then(|cur| snap.pick(self.edge.key_hash(snap, s.src, s.dst), cur)),
        };
        let Some(b) = picked else {
            self.c.conn_no_backend += 1;
            {
                self.reply_rst(io, pi, f, s);
                return None;
            }
        };
        let server = snap.backends[b].addr;
        let bp = self.conf.backend_port;
        let Some(backend_mac) = self.edge.resolve(io, bp, *server.ip()) else {
            // The client retransmits; by then ARP has answered. Its SYN
            // cache entry must still be there to complete the handshake.
            if let Some(e) = acc.entry {
                self.syncache.insert(s.src, s.dst, e);
            }
            self.c.drop_unresolved += 1;
            return None;
        };
        let Some(sport) = self.alloc_sport(server) else {
            self.c.no_source_port += 1;
            {
                self.reply_rst(io, pi, f, s);
                return None;
            }
        };
        let cws = ws.unwrap_or(0);
        let local = SocketAddrV4::new(self.conf.local, sport);
        let params = SpliceParams {
            client: s.src,
            vip: s.dst,
            local,
            server,
            c2s_seq_delta: 0,
            s2c_seq_delta: 0,
            c2s_ts_delta: 0,
            s2c_ts_delta: 0,
            client_ws: cws,
            vip_ws: if ws.is_some() { self.conf.vip_ws } else { 0 },
            local_ws: cws,
            server_ws: 0,
        };
        let id = match self.flows.insert(params, now) {
            Ok(id) => id,
            Err(InsertError::Full) => {
                self.c.flow_table_full += 1;
                {
                    self.reply_rst(io, pi, f, s);
                    return None;
                }
            }
            Err(InsertError::Exists) => {
                self.c.drop_unexpected += 1;
                return None;
            }
        };
        let (client_tsval, our_tsval) = opts.ts.unwrap_or((0, 0));
        let (bisn, bts) = self.backend_isn_ts(local, server, now);
        self.meta[id as usize] = Meta {
            phase: Phase::Connecting,
            pool: pool as u16,
            backend: b as u16,
            client_mac: s.eth_src,
            backend_mac,
            client_isn: s.seq.wrapping_sub(1),
            our_isn: s.ack.wrapping_sub(1),
            mss,
            ws,
            sack,
            ts: opts.ts.is_some(),
            client_tsval,
            our_tsval,
            bisn,
            bts,
            client_win: s.win,
            server_isn: 0,
            server_tsval: 0,
            backend_ts: false,
            closed: false,
            tries: 0,
            deadline: now + self.conf.syn_rto_ms * self.ms,
            cidx: 0,
            tried: 1u64 << (b % 64),
            retried: 0,
            born: born.unwrap_or(now),
            attempt_at: now,
            c_ack: s.ack,
            s_ack: 0,
            spliced_at: 0,
            how: EndReason::Fin,
            sa: SaDecision::None,
            adopted: false,
            pub_gen: 0,
        };
        self.connecting_add(id);
        self.c.conn_opened += 1;
        if let Some(cur) = self.cursors.get_mut(pool) {
            if let Some(l) = cur.local_conns.get_mut(b) {
                *l += 1;
            }
        }
        self.bstat(pool, b, |st| st.opened += 1);
        self.send_backend_syn(io, id);
        if s.payload > 0 || s.flags.contains(TcpFlags::FIN) {
            self.hold(id, f);
        }
        Some(id)
    }
}
