//! Forwarding a spliced flow: client and backend segments translated in place (sequence, acknowledgement, SACK, timestamps, NAT) and sent on.

use super::*;

impl<F: Frame> LbCore<F> {
    pub(super) fn client_segment<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        f: F,
        l3: usize,
        id: FlowId,
        s: &Seg,
        now: u64,
    ) {
        match self.meta[id as usize].phase {
            Phase::Spliced => self.forward(io, f, l3, id, Dir::C2S, now),
            Phase::Connecting => {
                if s.flags.contains(TcpFlags::RST) {
                    self.c.conn_client_abort += 1;
                    self.meta[id as usize].how = EndReason::ClientAbort;
                    self.remove_flow(io, id, Gone::Aborted);
                } else if s.payload > 0 || s.flags.contains(TcpFlags::FIN) {
                    self.hold(id, f);
                } else {
                    // A pure ACK (window update, duplicate handshake ACK):
                    // the backend gets our own ACK instead.
                    self.c.held_dropped += 1;
                }
            }
            Phase::Free => self.c.drop_unexpected += 1,
        }
    }

    /// Translate a segment of a spliced flow and send it to the other leg.
    pub(super) fn forward<Q: Queue<Frame = F>>(
        &mut self,
        io: &mut Io<'_, Q>,
        mut f: F,
        l3: usize,
        id: FlowId,
        dir: Dir,
        now: u64,
    ) {
        if dir == Dir::S2C && !self.sa.is_idle() && !self.meta[id as usize].adopted {
            self.sa_learn(id, f.data(), l3);
        }
        let Some(flow) = self.flows.get_mut(id) else {
            self.c.drop_unexpected += 1;
            return;
        };
        let tr = flow.translation(dir);
        let t = match translate(f.data_mut(), l3, tr) {
            Ok(t) => t,
            Err(_) => {
                self.c.drop_translate += 1;
                return;
            }
        };
        // The sender's acknowledgement number as it sent it (before the
        // rewrite): the peer-side point a shutdown RST must hit.
        let raw_ack = t.ack.wrapping_sub(tr.ack_delta);
        flow.on_segment(dir, &t, now, &self.timers);
        let (lingering, fins) = (
            matches!(flow.state, FlowState::Linger { .. }),
            flow.both_fins(),
        );
        let m = &mut self.meta[id as usize];
        if t.flags.contains(TcpFlags::ACK) {
            match dir {
                Dir::C2S => m.c_ack = raw_ack,
                Dir::S2C => m.s_ack = raw_ack,
            }
        }
        let (pool, backend, closed) = (usize::from(m.pool), usize::from(m.backend), m.closed);
        let dst_mac = match dir {
            Dir::C2S => m.backend_mac,
            Dir::S2C => m.client_mac,
        };
        // A session stops being served once both sides have sent FIN (not
        // when the last FIN is acknowledged: a client's next connection,
        // possibly on another lcore, would race that last ACK).
        if fins && !self.sa.serves_none() {
            self.sa_forget(id);
        }
        if lingering && !closed {
            let how = if t.flags.contains(TcpFlags::RST) {
                EndReason::Reset
            } else {
                EndReason::Fin
            };
            self.mark_closed(id, now, how);
        }
        let bytes = t.payload_len as u64;
        let rst = u64::from(t.flags.contains(TcpFlags::RST));
        let st = self.bstats.get_mut(pool).and_then(|p| p.get_mut(backend));
        let pi = match dir {
            Dir::C2S => {
                self.c.c2s_packets += 1;
                self.c.c2s_bytes += bytes;
                if let Some(st) = st {
                    st.c2s_packets += 1;
                    st.c2s_bytes += bytes;
                    st.reset += rst;
                }
                self.conf.backend_port
            }
            Dir::S2C => {
                self.c.s2c_packets += 1;
                self.c.s2c_bytes += bytes;
                if let Some(st) = st {
                    st.s2c_packets += 1;
                    st.s2c_bytes += bytes;
                    st.reset += rst;
                }
                self.conf.client_port
            }
        };
        {
            let mut eth = EthernetFrame::new_unchecked(f.data_mut());
            eth.set_src(io.mac(pi));
            eth.set_dst(dst_mac);
        }
        self.edge.send(io, pi, f);
    }
}
