//! A deterministic network simulator for two endpoints.
//!
//! A client (`Endpoint::connect`) and a server whose SYNs are answered the
//! way the lcore will: statelessly with [`SynAck::answer`], the endpoint
//! created by [`Endpoint::accept`] when the handshake's ACK arrives. The
//! client sends a request, the server answers with `bytes` of a known
//! pattern and closes; the client checks every byte and closes.
//!
//! Each direction is a link with a one-way delay, optional uniform jitter
//! (reordering), a serialisation rate, a drop-tail queue, random loss and
//! duplication from a seeded RNG. Time is virtual (ns); segments travel as
//! bytes (written with `SegmentOut::write`, read with `Segment::parse`).

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use qsplice_tcp::{
    Config, Endpoint, EndpointStats, Now, Outcome, Segment, SegmentOut, State, SynAck, SynOptions,
    TcpFlags, MAX_SEGS_PER_CALL,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// One direction of the path.
#[derive(Clone, Debug)]
pub struct LinkCfg {
    pub delay_us: u64,
    /// Extra delay, uniform in `0..=jitter_us`, per packet (reorders).
    pub jitter_us: u64,
    /// Serialisation rate (bit/s); 0: infinite.
    pub rate_bps: u64,
    /// Random loss probability per packet.
    pub loss: f64,
    /// Probability that a packet is delivered twice.
    pub dup: f64,
    /// Drop-tail queue (bytes waiting for the link).
    pub queue_bytes: u64,
}

impl LinkCfg {
    pub fn new(delay_us: u64, rate_bps: u64) -> LinkCfg {
        LinkCfg {
            delay_us,
            jitter_us: 0,
            rate_bps,
            loss: 0.0,
            dup: 0.0,
            queue_bytes: 8 << 20,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Scenario {
    /// Response size (server → client).
    pub bytes: u64,
    /// Request size (client → server).
    pub request: u64,
    /// Server → client.
    pub fwd: LinkCfg,
    /// Client → server.
    pub rev: LinkCfg,
    pub client: Config,
    pub server: Config,
    pub seed: u64,
    /// Give up after this much virtual time.
    pub limit_us: u64,
    /// The client reads at most this many bytes per event (0: all).
    pub client_read_chunk: usize,
    /// The server runs like the lcore: its `output` is called when one of
    /// its segments arrives or when its deadline is reached, and deadlines
    /// (`poll_at`) are honoured only at the next whole tick (µs; 0: at
    /// once, and `output` after every event).
    pub server_tick_us: u64,
}

impl Scenario {
    pub fn new(bytes: u64, fwd: LinkCfg, rev: LinkCfg, seed: u64) -> Scenario {
        Scenario {
            bytes,
            request: 300,
            fwd,
            rev,
            client: Config::default(),
            server: Config::default(),
            seed,
            limit_us: 600_000_000,
            client_read_chunk: 0,
            server_tick_us: 0,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct LinkStats {
    pub sent: u64,
    pub lost: u64,
    pub lost_data: u64,
    pub queue_drops: u64,
    pub dups: u64,
}

#[derive(Debug)]
pub struct Report {
    /// When the client had every response byte (µs).
    pub done_us: Option<u64>,
    /// When the simulation ended (both closed, or the limit).
    pub end_us: u64,
    pub client: EndpointStats,
    pub server: EndpointStats,
    pub client_state: State,
    pub server_state: Option<State>,
    pub client_outcome: Option<Outcome>,
    pub server_outcome: Option<Outcome>,
    pub received: u64,
    pub request_received: u64,
    pub fwd: LinkStats,
    pub rev: LinkStats,
    /// Largest segment seen on the wire (TCP header + options + payload).
    pub max_seg_len: usize,
    /// RSTs sent for segments reaching a closed endpoint.
    pub rsts_for_closed: u64,
    /// Server data segments that resent bytes already sent (seen on the
    /// wire, lost or not).
    pub srv_rtx_segs: u64,
    /// Of those that reached the client, the ones whose every byte the
    /// client had already received: spurious retransmissions.
    pub spurious_rtx: u64,
}

impl Report {
    pub fn mbit_s(&self, bytes: u64) -> f64 {
        match self.done_us {
            Some(t) if t > 0 => bytes as f64 * 8.0 / t as f64,
            _ => 0.0,
        }
    }

    /// Both ends reached CLOSED or TIME-WAIT.
    pub fn both_closed(&self) -> bool {
        let ok = |s: State| matches!(s, State::Closed | State::TimeWait);
        ok(self.client_state) && self.server_state.is_some_and(ok)
    }
}

pub fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 29) as u8
}

struct Link {
    cfg: LinkCfg,
    busy_until: u64,
    stats: LinkStats,
}

impl Link {
    /// Schedules `bytes` sent at `now` (ns); returns the arrival times.
    fn transmit(
        &mut self,
        now: u64,
        len: usize,
        data: bool,
        rng: &mut SmallRng,
    ) -> [Option<u64>; 2] {
        self.stats.sent += 1;
        // Ethernet + IPv4 around the segment.
        let wire = len as u64 + 14 + 20 + 24;
        let ser = (wire * 8 * 1_000_000_000)
            .checked_div(self.cfg.rate_bps)
            .unwrap_or(0);
        let start = self.busy_until.max(now);
        let backlog_bytes = if self.cfg.rate_bps == 0 {
            0
        } else {
            (start - now) * self.cfg.rate_bps / 8 / 1_000_000_000
        };
        if backlog_bytes + wire > self.cfg.queue_bytes {
            self.stats.queue_drops += 1;
            return [None, None];
        }
        self.busy_until = start + ser;
        if rng.random::<f64>() < self.cfg.loss {
            self.stats.lost += 1;
            if data {
                self.stats.lost_data += 1;
            }
            return [None, None];
        }
        let at = |rng: &mut SmallRng| {
            let j = if self.cfg.jitter_us > 0 {
                rng.random_range(0..=self.cfg.jitter_us * 1000)
            } else {
                0
            };
            self.busy_until + self.cfg.delay_us * 1000 + j
        };
        let first = at(rng);
        let second = if rng.random::<f64>() < self.cfg.dup {
            self.stats.dups += 1;
            Some(at(rng) + 1)
        } else {
            None
        };
        [Some(first), second]
    }
}

const CLIENT: usize = 0;
const SERVER: usize = 1;
const SERVER_ISS: u32 = 0xfffe_0000; // wraps during the transfer
const CLIENT_ISS: u32 = 0x7fff_ff00;
const SERVER_TS_OFFSET: u32 = 0xffff_0000;
const CLIENT_TS_OFFSET: u32 = 12345;

enum Server {
    Listen(Option<(SynOptions, SynAck, u32)>),
    Conn(Box<Endpoint>),
}

/// (arrival ns, id, to, bytes, a server retransmission)
type Event = Reverse<(u64, u64, usize, Vec<u8>, bool)>;

struct Sim<'s> {
    s: &'s Scenario,
    now: u64,
    rng: SmallRng,
    links: [Link; 2], // [to client (fwd), to server (rev)]
    heap: BinaryHeap<Event>,
    ids: u64,
    client: Endpoint,
    server: Server,
    // application state
    req_sent: u64,
    req_got: u64,
    resp_pushed: u64,
    received: u64,
    done_us: Option<u64>,
    client_closed: bool,
    server_closed: bool,
    bad_byte: Option<u64>,
    max_seg_len: usize,
    rsts_for_closed: u64,
    /// Server data sent up to this offset (bytes after the SYN).
    srv_high: u64,
    srv_rtx_segs: u64,
    spurious_rtx: u64,
    /// Response bytes that reached the client (one bit each).
    delivered: Vec<u64>,
}

fn now_of(ns: u64, offset: u32) -> Now {
    Now {
        us: ns / 1000,
        tsval: ((ns / 1_000_000) as u32).wrapping_add(offset),
    }
}

impl Sim<'_> {
    fn send_segment(&mut self, from: usize, seg: &SegmentOut<'_>) {
        let mut b = vec![0u8; seg.len()];
        let (sp, dp) = if from == CLIENT {
            (40000, 443)
        } else {
            (443, 40000)
        };
        seg.write(&mut b, sp, dp).expect("buffer sized by len()");
        self.schedule(from, b, seg.payload_len() > 0, false);
    }

    fn schedule(&mut self, from: usize, b: Vec<u8>, data: bool, rtx: bool) {
        self.max_seg_len = self.max_seg_len.max(b.len());
        let to = 1 - from;
        let link = if to == CLIENT { 0 } else { 1 };
        let arr = self.links[link].transmit(self.now, b.len(), data, &mut self.rng);
        for at in arr.into_iter().flatten() {
            self.ids += 1;
            self.heap.push(Reverse((at, self.ids, to, b.clone(), rtx)));
        }
    }

    fn out(&mut self, who: usize) {
        let now = self.now_for(who);
        let mut segs: Vec<(Vec<u8>, bool)> = Vec::new();
        let ep = match who {
            CLIENT => &mut self.client,
            _ => match &mut self.server {
                Server::Conn(e) => e,
                Server::Listen(_) => return,
            },
        };
        let (sp, dp) = if who == CLIENT {
            (40000, 443)
        } else {
            (443, 40000)
        };
        ep.output(now, MAX_SEGS_PER_CALL, |s| {
            let mut b = vec![0u8; s.len()];
            s.write(&mut b, sp, dp).unwrap();
            segs.push((b, s.payload_len() > 0));
            true
        });
        for (b, data) in segs {
            let mut rtx = false;
            if who == SERVER && data {
                // The sender must put the right bytes at the right place.
                let seg = Segment::parse(&b).unwrap();
                let off = u64::from(seg.seq.wrapping_sub(SERVER_ISS.wrapping_add(1)));
                let end = off + seg.payload.len() as u64;
                if off < self.srv_high {
                    rtx = true;
                    self.srv_rtx_segs += 1;
                }
                self.srv_high = self.srv_high.max(end);
                for (k, &x) in seg.payload.iter().enumerate() {
                    assert_eq!(
                        x,
                        pattern(off + k as u64),
                        "server sent a wrong byte at {} (seq {:#x} len {})",
                        off + k as u64,
                        seg.seq,
                        seg.payload.len()
                    );
                }
            }
            self.schedule(who, b, data, rtx);
        }
    }

    /// Marks the response bytes of a segment reaching the client; returns
    /// whether all of them had arrived before.
    fn mark_delivered(&mut self, seg: &Segment<'_>) -> bool {
        if seg.payload.is_empty() || seg.flags.contains(TcpFlags::SYN) {
            return false;
        }
        let off = u64::from(seg.seq.wrapping_sub(SERVER_ISS.wrapping_add(1)));
        let mut all = true;
        for i in off..off + seg.payload.len() as u64 {
            let (w, bit) = ((i / 64) as usize, 1u64 << (i % 64));
            if w >= self.delivered.len() {
                self.delivered.resize(w + 1, 0);
            }
            all &= self.delivered[w] & bit != 0;
            self.delivered[w] |= bit;
        }
        all
    }

    fn now_for(&self, who: usize) -> Now {
        now_of(
            self.now,
            if who == CLIENT {
                CLIENT_TS_OFFSET
            } else {
                SERVER_TS_OFFSET
            },
        )
    }

    fn deliver(&mut self, to: usize, bytes: &[u8], rtx: bool) {
        let seg = Segment::parse(bytes).expect("we wrote it");
        let now = self.now_for(to);
        if to == CLIENT {
            if self.mark_delivered(&seg) && rtx {
                self.spurious_rtx += 1;
            }
            if self.client.is_closed() {
                self.answer_closed(CLIENT, &seg);
            } else {
                self.client.input(&seg, now);
            }
            return;
        }
        match &mut self.server {
            Server::Conn(ep) if ep.is_closed() => self.answer_closed(SERVER, &seg),
            Server::Conn(ep) => ep.input(&seg, now),
            Server::Listen(st) => {
                if seg.flags.contains(TcpFlags::SYN) && seg.ack.is_none() {
                    // Stateless SYN-ACK (as from a SYN cookie).
                    let offer = SynOptions::from_segment(&seg);
                    let answer = SynAck::answer(&self.s.server, &offer, now.tsval);
                    *st = Some((offer, answer, seg.seq));
                    let sa = SegmentOut {
                        seq: SERVER_ISS,
                        ack: Some(seg.seq.wrapping_add(1)),
                        flags: TcpFlags::SYN | TcpFlags::ACK,
                        window: self.s.server.syn_window(),
                        options: answer.out_options(),
                        payload: (&[], &[]),
                    };
                    self.send_segment(SERVER, &sa);
                } else if let Some((offer, answer, irs)) = *st {
                    if seg.ack == Some(SERVER_ISS.wrapping_add(1))
                        && seg.seq == irs.wrapping_add(1)
                        && !seg.flags.intersects(TcpFlags::SYN | TcpFlags::RST)
                    {
                        let hs =
                            answer.handshake(&offer, SERVER_ISS, irs, seg.window, seg.options.ts);
                        let mut ep = Endpoint::accept(&self.s.server, hs, now);
                        ep.input(&seg, now);
                        self.server = Server::Conn(Box::new(ep));
                    }
                }
            }
        }
    }

    /// What the lcore does for a segment of no connection: a RST (RFC
    /// 9293 §3.10.7.1), none for a RST.
    fn answer_closed(&mut self, who: usize, seg: &Segment<'_>) {
        let Some(rst) = qsplice_tcp::reset_reply(seg) else {
            return;
        };
        self.rsts_for_closed += 1;
        self.send_segment(who, &rst);
    }

    fn apps(&mut self) {
        let s = self.s;
        // Client: request, then read and check the response, close after
        // the server's FIN.
        if self.client.state() == State::Established && self.req_sent < s.request {
            let req: Vec<u8> = (self.req_sent..s.request).map(|i| i as u8).collect();
            self.req_sent += self.client.send(&req) as u64;
        }
        loop {
            let (a, b) = self.client.recv_peek();
            let mut n = a.len() + b.len();
            if s.client_read_chunk > 0 {
                n = n.min(s.client_read_chunk);
            }
            if n == 0 {
                break;
            }
            for (k, &x) in a.iter().chain(b.iter()).take(n).enumerate() {
                let i = self.received + k as u64;
                if x != pattern(i) && self.bad_byte.is_none() {
                    self.bad_byte = Some(i);
                }
            }
            self.received += n as u64;
            self.client.recv_consume(n);
            if s.client_read_chunk > 0 {
                break;
            }
        }
        if self.received >= s.bytes && self.done_us.is_none() {
            self.done_us = Some(self.now / 1000);
        }
        if !self.client_closed && !self.client.may_recv() && self.client.state() == State::CloseWait
        {
            self.client.close();
            self.client_closed = true;
        }
        // Server: read the request, then push the response and close.
        if let Server::Conn(ep) = &mut self.server {
            let n = ep.recv_ready();
            self.req_got += n as u64;
            ep.recv_consume(n);
            if self.req_got >= s.request {
                let mut buf = [0u8; 16384];
                while self.resp_pushed < s.bytes && ep.send_room() > 0 {
                    let n = (s.bytes - self.resp_pushed)
                        .min(buf.len() as u64)
                        .min(ep.send_room() as u64) as usize;
                    for (k, x) in buf[..n].iter_mut().enumerate() {
                        *x = pattern(self.resp_pushed + k as u64);
                    }
                    let took = ep.send(&buf[..n]);
                    self.resp_pushed += took as u64;
                    if took == 0 {
                        break;
                    }
                }
                if self.resp_pushed >= s.bytes && !self.server_closed {
                    ep.close();
                    self.server_closed = true;
                }
            }
        }
    }

    fn server_poll(&self) -> Option<u64> {
        match &self.server {
            Server::Conn(e) => e.poll_at(),
            Server::Listen(_) => None,
        }
    }

    fn finished(&self) -> bool {
        let ok = |s: State| matches!(s, State::Closed | State::TimeWait);
        ok(self.client.state())
            && self.client.recv_ready() == 0
            && match &self.server {
                Server::Conn(e) => ok(e.state()),
                Server::Listen(_) => false,
            }
    }
}

pub fn run(s: &Scenario) -> Report {
    let now0 = now_of(0, CLIENT_TS_OFFSET);
    let mut sim = Sim {
        s,
        now: 0,
        rng: SmallRng::seed_from_u64(s.seed),
        links: [
            Link {
                cfg: s.fwd.clone(),
                busy_until: 0,
                stats: LinkStats::default(),
            },
            Link {
                cfg: s.rev.clone(),
                busy_until: 0,
                stats: LinkStats::default(),
            },
        ],
        heap: BinaryHeap::new(),
        ids: 0,
        client: Endpoint::connect(&s.client, CLIENT_ISS, now0),
        server: Server::Listen(None),
        req_sent: 0,
        req_got: 0,
        resp_pushed: 0,
        received: 0,
        done_us: None,
        client_closed: false,
        server_closed: false,
        bad_byte: None,
        max_seg_len: 0,
        rsts_for_closed: 0,
        srv_high: 0,
        srv_rtx_segs: 0,
        spurious_rtx: 0,
        delivered: Vec::new(),
    };
    let tick_ns = s.server_tick_us * 1000;
    sim.out(CLIENT);
    let mut iters = 0u64;
    loop {
        iters += 1;
        assert!(iters < 200_000_000, "simulation runs away");
        if sim.finished() {
            break;
        }
        let t_pkt = sim.heap.peek().map(|Reverse((t, ..))| *t);
        let t_c = sim.client.poll_at().map(|u| u.saturating_mul(1000));
        let t_s = sim.server_poll().map(|u| {
            let at = u.saturating_mul(1000);
            if tick_ns == 0 {
                at
            } else {
                // The lcore's deadline heap: the next whole tick.
                at.max(sim.now + 1)
                    .div_ceil(tick_ns)
                    .saturating_mul(tick_ns)
            }
        });
        // A slow reader wakes up every 100 µs while it has unread data.
        let t_app =
            (s.client_read_chunk > 0 && sim.client.recv_ready() > 0).then(|| sim.now + 100_000);
        let Some(t) = [t_pkt, t_c, t_s, t_app].into_iter().flatten().min() else {
            break;
        };
        if t / 1000 > s.limit_us {
            break;
        }
        sim.now = sim.now.max(t);
        let mut server_runs = tick_ns == 0 || t_s == Some(t);
        if t_pkt == Some(t) {
            let Reverse((_, _, to, bytes, rtx)) = sim.heap.pop().unwrap();
            server_runs |= to == SERVER;
            sim.deliver(to, &bytes, rtx);
        }
        for _ in 0..2 {
            sim.apps();
            sim.out(CLIENT);
            if server_runs {
                sim.out(SERVER);
            }
        }
    }
    assert_eq!(sim.bad_byte, None, "response corrupted");
    let (server, server_state, server_outcome) = match &sim.server {
        Server::Conn(e) => (e.stats().clone(), Some(e.state()), e.outcome()),
        Server::Listen(_) => (EndpointStats::default(), None, None),
    };
    Report {
        done_us: sim.done_us,
        end_us: sim.now / 1000,
        client: sim.client.stats().clone(),
        server,
        client_state: sim.client.state(),
        server_state,
        client_outcome: sim.client.outcome(),
        server_outcome,
        received: sim.received,
        request_received: sim.req_got,
        fwd: sim.links[0].stats.clone(),
        rev: sim.links[1].stats.clone(),
        max_seg_len: sim.max_seg_len,
        rsts_for_closed: sim.rsts_for_closed,
        srv_rtx_segs: sim.srv_rtx_segs,
        spurious_rtx: sim.spurious_rtx,
    }
}
