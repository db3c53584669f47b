//! Ends and timers: closing, resets (backend down, shutdown), removal with the access-log record, idle expiry, taking a new publication of pools and services, publishing counters.

use super::*;

impl<F: Frame> LbCore<F> {
    /// The access-log record of a spliced VIP's connection, at its end.
    pub(super) fn log_flow(&mut self, m: &Meta, end: &Ended, why: Gone) {
        let how = match why {
            Gone::Failed => EndReason::ConnectFailed,
            _ => m.how,
        };
        let setup_us = if m.spliced_at > 0 {
            self.us(m.spliced_at.saturating_sub(m.born))
        } else {
            0
        };
        let r = AccessRecord {
            lcore: self.conf.lcore,
            vip: self.edge.real_sock(end.vip),
            client: self.edge.real_sock(end.client),
            backend: Some(self.edge.real_sock(end.server)),
            start: m.born,
            end: self.now,
            setup_us,
            c2s_bytes: end.bytes[0],
            s2c_bytes: end.bytes[1],
            how,
            tls: None,
            sa: m.sa,
        };
        if !self.access.push(r) {
            self.c.access_log_lost += 1;
        }
    }

    /// Spliced flow `id` has closed (FINs acknowledged or a RST) and
    /// lingers: off its backend's active count and its session, its
    /// duration observed.
    pub(super) fn mark_closed(&mut self, id: FlowId, now: u64, how: EndReason) {
        self.meta[id as usize].how = how;
        self.sa_forget(id);
        let born = self.meta[id as usize].born;
        self.h
            .flow_duration
            .record(self.us(now.saturating_sub(born)));
        let m = &mut self.meta[id as usize];
        m.closed = true;
        let (pool, b) = (usize::from(m.pool), usize::from(m.backend));
        self.bstat(pool, b, |st| st.active = st.active.saturating_sub(1));
        if let Some(l) = self
            .cursors
            .get_mut(pool)
            .and_then(|c| c.local_conns.get_mut(b))
        {
            *l -= 1;
        }
    }

    /// RSTs ending spliced flow `id` both ways: toward the client at its
    /// last acknowledgement, toward the backend at the backend's (each end
    /// accepts a RST exactly at its receive point).
    pub(super) fn rst_both_ways<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, id: FlowId) {
        let m = self.meta[id as usize];
        let Some(p) = self.flows.get(id).map(|fl| fl.params) else {
            return;
        };
        let (cp, bp) = (self.conf.client_port, self.conf.backend_port);
        let rst = |src, dst, smac, dmac, seq| Segment {
            src_mac: smac,
            dst_mac: dmac,
            src,
            dst,
            seq,
            ack: 0,
            flags: TcpFlags::RST,
            window: 0,
            options: &[],
            payload: &[],
        };
        let to_client = rst(p.vip, p.client, io.mac(cp), m.client_mac, m.c_ack);
        self.emit_new(io, cp, &to_client);
        let to_backend = rst(p.local, p.server, io.mac(bp), m.backend_mac, m.s_ack);
        self.emit_new(io, bp, &to_backend);
    }

    /// Health checks marked these backends (`(pool, backend)`) down with
    /// `lb.health.on_down = "reset"`: their spliced flows end now, as if
    /// the backend had reset them (the client learns at once instead of
    /// waiting for the idle timeout). Slow path: a scan of the table.
    pub(super) fn reset_backends<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        dead: &[(usize, usize)],
        now: u64,
    ) {
        let ids: Vec<FlowId> = self.flows.ids().collect();
        for id in ids {
            let m = self.meta[id as usize];
            if m.phase != Phase::Spliced
                || m.closed
                || !dead.contains(&(usize::from(m.pool), usize::from(m.backend)))
            {
                continue;
            }
            self.rst_both_ways(io, id);
            let rst = qsplice_splice::Translated {
                flags: TcpFlags::RST,
                seq: m.c_ack,
                ack: 0,
                payload_len: 0,
            };
            if let Some(fl) = self.flows.get_mut(id) {
                fl.on_segment(Dir::S2C, &rst, now, &self.timers);
            }
            self.mark_closed(id, now, EndReason::BackendDown);
            self.c.conn_reset_backend_down += 1;
        }
        self.term_reset_backends(io, dead, now);
    }

    /// The shutdown grace period is over: every connection still open is
    /// reset both ways (spliced: a RST to the client at its last
    /// acknowledgement and one to the backend at its; connecting: the
    /// client; terminated: both legs through their endpoints). Once, on
    /// the slow path.
    pub(super) fn reset_all<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, now: u64) {
        let ids: Vec<FlowId> = self.flows.ids().collect();
        // Flow sync with another node alive: spliced flows live on there.
        let leave = self.adopt.on()
            && self
                .shared
                .flowsync
                .as_ref()
                .is_some_and(|fs| fs.has_peers());
        for id in ids {
            let m = self.meta[id as usize];
            // A flow with an IPv6 leg was never published (its stand-ins
            // are this node's own): reset like any other.
            let leave = leave
                && self.flows.get(id).is_some_and(|f| {
                    !crate::six::is_standin(*f.params.client.ip())
                        && !crate::six::is_standin(*f.params.server.ip())
                });
            match m.phase {
                Phase::Connecting => {
                    self.reset_client(io, id);
                    self.c.conn_abort_shutdown += 1;
                    self.meta[id as usize].how = EndReason::Shutdown;
                }
                // With flow sync the flow lives on through another node
                // (the router moved the client side there when the routes
                // were withdrawn; a survivor takes the backend side over
                // with this node's address): it leaves without a RST.
                Phase::Spliced if !m.closed && leave => {
                    if m.adopted {
                        self.c.adopted_ended += 1;
                    } else {
                        self.c.conn_left_to_cluster += 1;
                    }
                    self.meta[id as usize].how = EndReason::Shutdown;
                }
                Phase::Spliced if !m.closed => {
                    self.rst_both_ways(io, id);
                    self.c.conn_reset_shutdown += 1;
                    self.meta[id as usize].how = EndReason::Shutdown;
                }
                _ => {}
            }
            let why = if m.closed {
                Gone::Closed
            } else if m.phase == Phase::Spliced && leave {
                Gone::Left
            } else {
                Gone::Aborted
            };
            self.remove_flow(io, id, why);
        }
        self.term_reset_all(io, now);
    }

    pub(super) fn remove_flow<Q: Queue<Frame = F>>(
        &mut self,
        _io: &mut Io<'_, Q>,
        id: FlowId,
        why: Gone,
    ) {
        if let Some(flow) = self.flows.remove(id) {
            self.forget(id, Ended::of(&flow), why);
        }
    }

    /// Release everything a removed flow held.
    pub(super) fn forget(&mut self, id: FlowId, end: Ended, why: Gone) {
        self.sa_forget(id);
        if self.meta[id as usize].phase == Phase::Connecting {
            // (by its index in `connecting`, which the meta holds)
            self.connecting_remove(id);
        }
        let m = std::mem::replace(&mut self.meta[id as usize], Meta::FREE);
        if m.phase != Phase::Free && self.access.wants() {
            self.log_flow(&m, &end, why);
        }
        let (pool, b) = (usize::from(m.pool), usize::from(m.backend));
        match m.phase {
            Phase::Connecting => self.held.retain(|(h, _)| *h != id),
            Phase::Spliced if m.closed => {} // already off the active counts
            Phase::Spliced => self.bstat(pool, b, |st| st.active = st.active.saturating_sub(1)),
            Phase::Free => return,
        }
        if !m.closed {
            if let Some(l) = self
                .cursors
                .get_mut(pool)
                .and_then(|c| c.local_conns.get_mut(b))
            {
                *l -= 1;
            }
        }
        if m.adopted {
            // Adopted flows were counted when adopted, not opened here.
            self.c.flows_adopted = self.c.flows_adopted.saturating_sub(1);
            if why == Gone::Closed {
                self.c.adopted_ended += 1;
            }
        } else if why == Gone::Closed {
            self.c.conn_closed += 1;
        }
    }

    pub(super) fn expire(&mut self, now: u64) {
        let mut gone: ArrayVec<(FlowId, bool, Ended), EXPIRE_BUDGET> = ArrayVec::new();
        let budget = EXPIRE_BUDGET.min(self.flows.capacity() / 64 + 16);
        self.flows.expire(now, &self.timers, budget, |id, flow| {
            let closed = matches!(flow.state, FlowState::Linger { .. });
            let _ = gone.try_push((id, closed, Ended::of(&flow)));
        });
        for (id, closed, end) in gone {
            if !closed && self.meta[id as usize].adopted {
                self.c.adopted_ended += 1;
                self.meta[id as usize].how = EndReason::Idle;
            } else if !closed {
                self.c.conn_idle += 1;
                self.meta[id as usize].how = EndReason::Idle;
            }
            self.forget(id, end, if closed { Gone::Closed } else { Gone::Aborted });
        }
    }

    pub(super) fn refresh_pools<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, now: u64) {
        let v = self.shared.board.version();
        if v == self.pools_version {
            return;
        }
        // Services before pools: the control thread stores the pools first
        // (see `PoolBoard::publish_services`), so new services always come
        // with their pools; old services with new pools last one tick.
        let services = self.shared.board.services();
        let old = std::mem::replace(&mut self.pools, self.shared.board.load());
        self.pools_version = v;
        // VIPs added, removed or changed (a new publication of services;
        // indices only grow, so what flows hold stays valid).
        if !services.vips.is_empty() && !Arc::ptr_eq(&services, &self.services) {
            self.conf.vips.clone_from(&services.vips);
            self.conf.content.clone_from(&services.content);
            self.term.set_vips(&services.tls_vips);
            self.vix = VipIndex::build(&services.vips, &services.tls_vips, &services.content);
            self.access.set_sample(services.access_sample);
            if services.six != self.edge.six {
                self.edge.set_map(services.six.clone());
            }
            self.services = services;
        }
        // Room for new VIPs' and backends' counters (one allocation per
        // change, here at a tick).
        let grown = self.bstats.len() != self.pools.len()
            || self
                .bstats
                .iter()
                .zip(self.pools.iter())
                .any(|(b, p)| b.len() != p.backends.len());
        if grown {
            self.bstats.resize_with(self.pools.len(), Vec::new);
            for (b, p) in self.bstats.iter_mut().zip(self.pools.iter()) {
                if b.len() < p.backends.len() {
                    b.resize(p.backends.len(), BackendStats::default());
                }
            }
            let sizes: Vec<usize> = self.bstats.iter().map(Vec::len).collect();
            self.shared.backends.resize(&sizes);
        }
        // Backends whose connections the control thread asks to reset.
        let mut dead = Vec::new();
        for (pi, (o, n)) in old.iter().zip(self.pools.iter()).enumerate() {
            for (bi, (ob, nb)) in o.backends.iter().zip(&n.backends).enumerate() {
                if ob.addr == nb.addr && ob.reset_epoch != nb.reset_epoch {
                    dead.push((pi, bi));
                }
            }
        }
        if !dead.is_empty() {
            self.reset_backends(io, &dead, now);
        }
        for (i, p) in self.pools.iter().enumerate() {
            match self.cursors.get_mut(i) {
                Some(c) if c.local_conns.len() == p.backends.len() => {
                    // The new snapshot's totals include this lcore's opens.
                    c.local_conns.iter_mut().for_each(|l| *l = 0);
                }
                Some(c) => *c = p.cursor(),
                None => self.cursors.push(p.cursor()),
            }
        }
    }

    pub(super) fn publish(&mut self) {
        self.publishes += 1;
        if !self.term.stats.is_empty() && self.publishes % TLS_PUBLISH_MS == 0 {
            self.shared.tls.store(Arc::new(self.term.stats.clone()));
        }
        self.c.flows_active = self.flows.len() as u64;
        self.c.flow_probe_overflow = self.flows.probe_overflow();
        self.c.flows_connecting = self.connecting.len() as u64;
        self.c.six_out = self.edge.out;
        self.c.six_untranslatable = self.edge.untranslatable;
        self.shared.counters.publish(&self.c);
        self.shared.hists.publish(&self.h);
        self.shared.backends.store_all(&self.bstats);
    }
}
