//! Health probes the probing lcore runs through the dataplane (TCP connect, HTTP GET), with the backend legs' ISN and TSval.

use super::*;

impl<F: Frame> LbCore<F> {
    pub(super) fn report_probe(&mut self, check: &HealthCheck, result: HealthResult) {
        if let Some(h) = &self.shared.health {
            let _ = h.results.push(HealthReport {
                pool: check.pool,
                backend: check.backend,
                token: check.token,
                result,
            });
        }
    }

    /// Take scheduled checks and send their SYNs.
    pub(super) fn start_probes<Q: Queue<Frame = F>>(&mut self, io: &mut Io<'_, Q>, now: u64) {
        let Some(h) = self.shared.health.clone() else {
            return;
        };
        while !self.probes.is_full() {
            let Some(check) = h.checks.pop() else {
                break;
            };
            let bp = self.conf.backend_port;
            let Some(mac) = self.edge.resolve(io, bp, *check.addr.ip()) else {
                self.report_probe(&check, HealthResult::Unresolved);
                continue;
            };
            let Some(sport) = self.alloc_sport(check.addr) else {
                self.report_probe(&check, HealthResult::NoResources);
                continue;
            };
            // The probe's source port was a data flow's a moment ago, and
            // the backend may still hold that 4-tuple in TIME-WAIT: a SYN
            // there is taken as a new connection only when its ISN or its
            // timestamp is newer than the old connection's (RFC 6191), so
            // the probe takes both from the backend legs' clocks. A random
            // ISN without timestamps was answered with the TIME-WAIT ACK
            // half the time, and a busy backend timed out its checks.
            let local = SocketAddrV4::new(self.conf.local, sport);
            let (isn, tsval) = self.backend_isn_ts(local, check.addr, now);
            let probe = Probe {
                check,
                local,
                mac,
                isn,
                tsval,
                state: ProbeState::SynSent,
                deadline: now + check.timeout_ms.max(1) * self.ms,
            };
            let mut ob = [0u8; 40];
            let n = write_syn_options(
                &mut ob,
                &SynOptions {
                    mss: Some(self.conf.backend_mss),
                    ts: Some((tsval, 0)),
                    ..Default::default()
                },
            );
            let seg = Segment {
                src_mac: io.mac(bp),
                dst_mac: mac,
                src: probe.local,
                dst: check.addr,
                seq: probe.isn,
                ack: 0,
                flags: TcpFlags::SYN,
                window: 65535,
                options: &ob[..n],
                payload: &[],
            };
            self.probes.push(probe);
            self.emit_new(io, bp, &seg);
        }
    }

    /// A backend segment for probe `i`.
    pub(super) fn probe_segment<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        f: F,
        l3: usize,
        i: usize,
        s: &Seg,
        opts: &SynOptions,
    ) {
        let p = self.probes[i];
        let bp = self.conf.backend_port;
        if s.flags.contains(TcpFlags::RST) {
            self.probes.remove(i);
            let r = match p.state {
                ProbeState::SynSent => HealthResult::Refused,
                ProbeState::AwaitResponse(_) => HealthResult::BadStatus,
            };
            return self.report_probe(&p.check, r);
        }
        let mut seg = Segment {
            src_mac: io.mac(bp),
            dst_mac: p.mac,
            src: p.local,
            dst: p.check.addr,
            seq: p.isn.wrapping_add(1),
            ack: 0,
            flags: TcpFlags::RST,
            window: 0,
            options: &[],
            payload: &[],
        };
        match p.state {
            ProbeState::SynSent => {
                if !s.flags.contains(TcpFlags::SYN | TcpFlags::ACK)
                    || s.ack != p.isn.wrapping_add(1)
                {
                    return;
                }
                if p.check.kind == ProbeKind::Tcp {
                    self.probes.remove(i);
                    self.report_probe(&p.check, HealthResult::Up);
                    return self.emit(io, bp, f, &seg);
                }
                self.probes[i].state = ProbeState::AwaitResponse(s.seq.wrapping_add(1));
                let req = std::mem::take(&mut self.http_req);
                // Timestamps agreed on the SYN-ACK go on every segment.
                let mut ob = [0u8; 40];
                let n = match opts.ts {
                    Some((tsval, _)) => write_ts_option(&mut ob, p.tsval, tsval),
                    None => 0,
                };
                seg.flags = TcpFlags::ACK | TcpFlags::PSH;
                seg.ack = s.seq.wrapping_add(1);
                seg.window = 65535;
                seg.options = &ob[..n];
                seg.payload = &req;
                self.emit(io, bp, f, &seg);
                self.http_req = req;
            }
            ProbeState::AwaitResponse(first) => {
                if s.payload == 0 || s.seq != first {
                    return;
                }
                let status = {
                    let d = f.data();
                    let ip = Ipv4Packet::new_unchecked(&d[l3..]);
                    let l4 = l3 + usize::from(ip.header_len());
                    let end = l3 + usize::from(ip.total_len());
                    d.get(l4..end)
                        .map(TcpPacket::new_unchecked)
                        .and_then(|t| http_status(t.payload()))
                };
                self.probes.remove(i);
                let ok = status == Some(self.conf.health_status);
                self.report_probe(
                    &p.check,
                    if ok {
                        HealthResult::Up
                    } else {
                        HealthResult::BadStatus
                    },
                );
                seg.seq = p
                    .isn
                    .wrapping_add(1)
                    .wrapping_add(self.http_req.len() as u32);
                self.emit(io, bp, f, &seg);
            }
        }
    }

    pub(super) fn probe_timers(&mut self, now: u64) {
        // A probe measures the backend, not this lcore: when the lcore
        // itself did not run for a while (descheduled on a busy host), the
        // answers may be sitting unread in its rx ring, so the time it
        // missed is added to every pending probe's deadline instead of
        // failing them all at once.
        let gap = now.saturating_sub(self.last_tick);
        if self.last_tick > 0 && gap > PROBE_STALL_MS * self.ms && !self.probes.is_empty() {
            for p in &mut self.probes {
                p.deadline = p.deadline.saturating_add(gap);
            }
            self.c.probe_stalls += 1;
        }
        self.last_tick = now;
        let mut i = 0;
        while i < self.probes.len() {
            if self.probes[i].deadline <= now {
                let p = self.probes.remove(i);
                self.report_probe(&p.check, HealthResult::Timeout);
            } else {
                i += 1;
            }
        }
    }
}
