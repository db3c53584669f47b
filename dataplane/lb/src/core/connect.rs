//! Connecting to a backend: source ports this lcore owns, monotonic ISN and TSval per backend tuple, the held client segments, the backend handshake, retries on another backend, and the connect timers.

use super::*;

impl<F: Frame> LbCore<F> {
    /// Our ISN and TSval toward `server` from `local`. The ISN is RFC 6528's
    /// keyed hash of the tuple plus a 4 µs clock; the TSval is the
    /// machine's TSC in ms (it runs on across restarts of the appliance,
    /// unlike anything keyed by a per-process secret). Both are monotonic
    /// per tuple, so when a source port is reused toward a backend that
    /// still holds the previous connection in TIME-WAIT, the new SYN is
    /// newer than what it remembers and is accepted (RFC 6191). A client's
    /// own ISN and TSval are random relative to the previous user's of the
    /// tuple: reusing them (the paper's trick) was measured to get about 1
    /// in 4 reused tuples refused, and a per-process TS key did the same
    /// after every restart.
    pub(super) fn backend_isn_ts(
        &self,
        local: SocketAddrV4,
        server: SocketAddrV4,
        now: u64,
    ) -> (u32, u32) {
        let us4 = (u128::from(now) * 250_000 / u128::from(self.conf.hz.max(1))) as u32;
        let isn = self.conf.secret.isn(local, server, 0x5eed_0001);
        (isn.wrapping_add(us4), self.ts_clock(now))
    }

    pub(super) fn bstat(&mut self, pool: usize, b: usize, f: impl FnOnce(&mut BackendStats)) {
        if let Some(st) = self.bstats.get_mut(pool).and_then(|p| p.get_mut(b)) {
            f(st);
        }
    }

    /// A free source port owned by this lcore toward `server`.
    pub(super) fn alloc_sport(&mut self, server: SocketAddrV4) -> Option<u16> {
        let lcores = u32::from(self.conf.lcores.max(1));
        let base = u32::from(self.conf.sport_min) + u32::from(self.conf.lcore);
        let max = u32::from(self.conf.sport_max);
        if base > max {
            return None;
        }
        let count = (max - base) / lcores + 1;
        for _ in 0..SPORT_TRIES.min(count as usize) {
            let k = self.sport_next % count;
            self.sport_next = self.sport_next.wrapping_add(1);
            let port = (base + k * lcores) as u16;
            let local = SocketAddrV4::new(self.conf.local, port);
            if self.flows.lookup(server, local).is_none()
                && !self.term.owns_backend(server, port)
                && !self
                    .probes
                    .iter()
                    .any(|p| p.local == local && p.check.addr == server)
            {
                return Some(port);
            }
        }
        None
    }

    pub(super) fn hold(&mut self, id: FlowId, f: F) {
        match self.held.try_push((id, f)) {
            Ok(()) => self.c.held += 1,
            Err(_) => self.c.held_dropped += 1,
        }
    }

    pub(super) fn send_backend_syn<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, id: FlowId) {
        let (Some(flow), Some(m)) = (self.flows.get(id), self.meta.get(id as usize)) else {
            return;
        };
        let m = *m;
        let p = flow.params;
        let opts = SynOptions {
            mss: Some(m.mss.min(self.conf.backend_mss)),
            ws: m.ws,
            sack_ok: m.sack,
            ts: m.ts.then_some((m.bts, 0)),
        };
        let mut ob = [0u8; 40];
        let n = write_syn_options(&mut ob, &opts);
        let bp = self.conf.backend_port;
        let window = scale_window(m.client_win, m.ws.unwrap_or(0) as i8);
        let seg = Segment {
            src_mac: io.mac(bp),
            dst_mac: m.backend_mac,
            src: p.local,
            dst: p.server,
            seq: m.bisn,
            ack: 0,
            flags: TcpFlags::SYN,
            window,
            options: &ob[..n],
            payload: &[],
        };
        self.emit_new(io, bp, &seg);
    }

    pub(super) fn backend_handshake<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        f: F,
        id: FlowId,
        s: &Seg,
        opts: &SynOptions,
        now: u64,
    ) {
        let m = self.meta[id as usize];
        let acceptable = s.flags.contains(TcpFlags::ACK) && s.ack == m.bisn.wrapping_add(1);
        if s.flags.contains(TcpFlags::RST) {
            if acceptable {
                self.c.conn_refused += 1;
                self.bstat(m.pool.into(), m.backend.into(), |st| st.failed += 1);
                if self.redispatch(io, id, now) {
                    return;
                }
                self.reset_client(io, id);
                self.remove_flow(io, id, Gone::Failed);
            } else {
                self.c.drop_unexpected += 1;
            }
            return;
        }
        if !s.flags.contains(TcpFlags::SYN) || !acceptable {
            self.c.drop_unexpected += 1;
            return;
        }
        let Some(flow) = self.flows.get_mut(id) else {
            return;
        };
        let mut p = flow.params;
        // Window scaling on the backend leg only if both ends agreed.
        let (local_ws, server_ws) = match (m.ws, opts.ws) {
            (Some(c), Some(sv)) => (c, sv),
            _ => (0, 0),
        };
        let backend_ts = m.ts && opts.ts.is_some();
        let server_tsval = opts.ts.map_or(0, |t| t.0);
        p.local_ws = local_ws;
        p.server_ws = server_ws;
        p.s2c_seq_delta = m.our_isn.wrapping_sub(s.seq);
        p.c2s_seq_delta = m.bisn.wrapping_sub(m.client_isn);
        p.c2s_ts_delta = if backend_ts {
            m.bts.wrapping_sub(m.client_tsval)
        } else {
            0
        };
        p.s2c_ts_delta = if backend_ts {
            m.our_tsval.wrapping_sub(server_tsval)
        } else {
            0
        };
        flow.rebase(p);
        flow.last_seen = now;
        let meta = &mut self.meta[id as usize];
        meta.server_isn = s.seq;
        meta.server_tsval = server_tsval;
        meta.backend_ts = backend_ts;
        meta.phase = Phase::Spliced;
        meta.s_ack = s.ack;
        meta.spliced_at = now;
        let (born, attempt_at) = (meta.born, meta.attempt_at);
        self.h.setup.record(self.us(now.saturating_sub(born)));
        self.h
            .backend_connect
            .record(self.us(now.saturating_sub(attempt_at)));
        self.connecting_remove(id);
        self.c.conn_spliced += 1;
        if self.adopt.on() {
            self.sync_publish(id);
        }
        self.bstat(m.pool.into(), m.backend.into(), |st| {
            st.active += 1;
            st.spliced += 1;
        });
        self.ack_backend(io, f, id);
        // Release what the client sent meanwhile, in order.
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].0 == id {
                let (_, hf) = self.held.remove(i);
                match ethernet_l3(hf.data()) {
                    Ok((_, l3, _)) => self.forward(io, hf, l3, id, Dir::C2S, now),
                    Err(_) => self.c.drop_unexpected += 1,
                }
            } else {
                i += 1;
            }
        }
    }

    /// The ACK completing the backend handshake, written into `f`.
    pub(super) fn ack_backend<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        f: F,
        id: FlowId,
    ) {
        let (Some(flow), Some(m)) = (self.flows.get(id), self.meta.get(id as usize)) else {
            return;
        };
        let m = *m;
        let p = flow.params;
        let mut ob = [0u8; 40];
        let n = if m.backend_ts {
            write_ts_option(&mut ob, m.bts, m.server_tsval)
        } else {
            0
        };
        let bp = self.conf.backend_port;
        let seg = Segment {
            src_mac: io.mac(bp),
            dst_mac: m.backend_mac,
            src: p.local,
            dst: p.server,
            seq: m.bisn.wrapping_add(1),
            ack: m.server_isn.wrapping_add(1),
            flags: TcpFlags::ACK,
            window: scale_window(m.client_win, flow.c2s.win_shift),
            options: &ob[..n],
            payload: &[],
        };
        self.emit(io, bp, f, &seg);
    }

    /// RST to the client of flow `id` (its backend failed).
    pub(super) fn reset_client<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, id: FlowId) {
        let (Some(flow), Some(m)) = (self.flows.get(id), self.meta.get(id as usize)) else {
            return;
        };
        let m = *m;
        let p = flow.params;
        let pi = self.conf.client_port;
        let seg = Segment {
            src_mac: io.mac(pi),
            dst_mac: m.client_mac,
            src: p.vip,
            dst: p.client,
            seq: m.our_isn.wrapping_add(1),
            ack: 0,
            flags: TcpFlags::RST,
            window: 0,
            options: &[],
            payload: &[],
        };
        self.emit_new(io, pi, &seg);
    }

    /// The backend of connecting flow `id` refused it or did not answer:
    /// try another backend of the pool (not one tried already) from a new
    /// source port, keeping the client's held segments. Returns false when
    /// no retry is left or possible (the caller resets the client).
    pub(super) fn redispatch<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        id: FlowId,
        now: u64,
    ) -> bool {
        let m = self.meta[id as usize];
        if m.phase != Phase::Connecting || m.retried >= self.conf.retries {
            return false;
        }
        let pool = usize::from(m.pool);
        let Some(flow) = self.flows.get(id) else {
            return false;
        };
        let mut params = flow.params;
        let bp = self.conf.backend_port;
        // The next untried backend whose MAC is known (one still being
        // resolved is skipped for this connection, not a reason to fail).
        let mut skip = m.tried;
        let mut found = None;
        for _ in 0..8 {
            let picked = self.pools.get(pool).and_then(|snap| {
                let cur = self.cursors.get_mut(pool)?;
                let b = snap.pick_excluding(
                    self.edge.key_hash(snap, params.client, params.vip),
                    cur,
                    skip,
                )?;
                Some((b, snap.backends[b].addr))
            });
            let Some((b, server)) = picked else {
                break;
            };
            match self.edge.resolve(io, bp, *server.ip()) {
                Some(mac) => {
                    found = Some((b, server, mac));
                    break;
                }
                None => skip |= 1u64 << (b % 64),
            }
        }
        let Some((b, server, backend_mac)) = found else {
            self.c.retry_no_backend += 1;
            return false;
        };
        let Some(sport) = self.alloc_sport(server) else {
            self.c.no_source_port += 1;
            return false;
        };
        // A new backend tuple: the flow is re-inserted under it (the
        // client-side key is the same), meta and held segments move along.
        let local = SocketAddrV4::new(self.conf.local, sport);
        params.server = server;
        params.local = local;
        let Some(old) = self.flows.remove(id) else {
            return false;
        };
        let nid = match self.flows.insert(params, now) {
            Ok(n) => n,
            Err(_) => {
                // No free slot under the new backend tuple (the probe
                // window is bounded): the client is reset here, the flow
                // being gone already. Handled: the caller does nothing more.
                let m = self.meta[id as usize];
                let pi = self.conf.client_port;
                let seg = Segment {
                    src_mac: io.mac(pi),
                    dst_mac: m.client_mac,
                    src: old.params.vip,
                    dst: old.params.client,
                    seq: m.our_isn.wrapping_add(1),
                    ack: 0,
                    flags: TcpFlags::RST,
                    window: 0,
                    options: &[],
                    payload: &[],
                };
                self.emit_new(io, pi, &seg);
                self.c.retry_no_backend += 1;
                self.forget(id, Ended::of(&old), Gone::Failed);
                return true;
            }
        };
        let (bisn, bts) = self.backend_isn_ts(local, server, now);
        let mut nm = std::mem::replace(&mut self.meta[id as usize], Meta::FREE);
        let (old_b, old_pool) = (usize::from(nm.backend), pool);
        nm.backend = b as u16;
        nm.backend_mac = backend_mac;
        nm.bisn = bisn;
        nm.bts = bts;
        nm.tries = 0;
        nm.deadline = now + self.conf.syn_rto_ms * self.ms;
        nm.tried |= 1u64 << (b % 64);
        nm.retried += 1;
        nm.attempt_at = now;
        self.meta[nid as usize] = nm;
        // Its place in `connecting` (nm.cidx) passes to the new id.
        if let Some(x) = self.connecting.get_mut(nm.cidx as usize) {
            if *x == id {
                *x = nid;
            }
        }
        self.connect_due = self.connect_due.min(nm.deadline);
        for h in self.held.iter_mut().filter(|(h, _)| *h == id) {
            h.0 = nid;
        }
        self.sa_rekey(id, nid);
        if let Some(cur) = self.cursors.get_mut(old_pool) {
            if let Some(l) = cur.local_conns.get_mut(old_b) {
                *l -= 1;
            }
            if let Some(l) = cur.local_conns.get_mut(b) {
                *l += 1;
            }
        }
        self.bstat(pool, b, |st| st.opened += 1);
        self.c.conn_retried += 1;
        self.send_backend_syn(io, nid);
        true
    }

    /// Add connecting flow `id` (its deadline set).
    pub(super) fn connecting_add(&mut self, id: FlowId) {
        let m = &mut self.meta[id as usize];
        m.cidx = self.connecting.len() as u32;
        self.connect_due = self.connect_due.min(m.deadline);
        self.connecting.push(id);
    }

    /// Take connecting flow `id` out of `connecting`, in O(1) (the last
    /// one takes its place).
    pub(super) fn connecting_remove(&mut self, id: FlowId) {
        let i = self.meta[id as usize].cidx as usize;
        if self.connecting.get(i) != Some(&id) {
            // Not where its index says (never expected; tests and fuzzing
            // run with debug assertions): the slow way.
            debug_assert!(
                !self.connecting.contains(&id),
                "connecting flow {id} not at its index {i}"
            );
            self.connecting.retain(|x| *x != id);
            for (k, &x) in self.connecting.iter().enumerate() {
                self.meta[x as usize].cidx = k as u32;
            }
            return;
        }
        self.connecting.swap_remove(i);
        if let Some(&moved) = self.connecting.get(i) {
            self.meta[moved as usize].cidx = i as u32;
        }
    }

    /// Backend SYN retransmissions and give-ups. Scans the connecting
    /// flows only once the earliest deadline may have passed.
    pub(super) fn connect_timers<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, now: u64) {
        if now < self.connect_due {
            return;
        }
        let mut due: ArrayVec<FlowId, 256> = ArrayVec::new();
        let mut next = u64::MAX;
        for &id in &self.connecting {
            let d = self.meta[id as usize].deadline;
            if d > now {
                next = next.min(d);
            } else if due.try_push(id).is_err() {
                next = now; // more are due: the next tick goes on
                break;
            }
        }
        self.connect_due = next;
        for id in due {
            let m = &mut self.meta[id as usize];
            if m.tries < self.conf.syn_retries {
                m.tries += 1;
                m.deadline = now + ((self.conf.syn_rto_ms * self.ms) << m.tries.min(10));
                self.connect_due = self.connect_due.min(m.deadline);
                self.c.backend_syn_retx += 1;
                self.send_backend_syn(io, id);
            } else {
                let (pool, b) = (usize::from(m.pool), usize::from(m.backend));
                self.c.conn_timeout += 1;
                self.bstat(pool, b, |st| st.failed += 1);
                if self.redispatch(io, id, now) {
                    continue;
                }
                self.reset_client(io, id);
                self.remove_flow(io, id, Gone::Failed);
            }
        }
    }
}
