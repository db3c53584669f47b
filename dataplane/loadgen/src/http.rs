//! HTTP/1.1 sessions over a [`qsplice_tcp::Endpoint`]. See the crate docs.

use qsplice_tcp::{
    Buffers, Config, Endpoint, Now, Outcome, Segment, SegmentOut, State, SynAck, SynOptions,
};
use qsplice_tls::{Failure, Group, Phase, Plaintext, TlsBuffers, TlsContext, TlsSession, TlsStats};
use qsplice_wire::http_response::{ResponseError, ResponseReader};
use qsplice_wire::tls::HelloAssembler;
use qsplice_wire::TcpFlags;

/// Decrypted response bytes a TLS client session holds before parsing
/// them (one record's plaintext at least).
const PLAIN_CAP: usize = 2 * qsplice_tls::session::MAX_PLAINTEXT;

/// What a client session reports from [`ClientSession::step`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// The handshake completed `us` after the SYN.
    Connected {
        /// Connect time, µs.
        us: u64,
    },
    /// A response was read whole.
    Response {
        /// Its status.
        status: u16,
        /// Body bytes.
        body_len: u64,
        /// Request sent → first response byte, µs.
        first_byte_us: u64,
        /// Request sent → response whole, µs.
        us: u64,
        /// The connection's last response: the time from its SYN to here,
        /// µs (`None` for the others).
        conn_us: Option<u64>,
    },
    /// The server's bytes are not a response ([`ResponseError`]): the
    /// connection is reset.
    BadResponse(ResponseError),
    /// The server closed before every request was answered.
    ClosedEarly,
    /// The TLS handshake completed `us` after the TCP one.
    TlsHandshake {
        /// TLS handshake time, µs.
        us: u64,
        /// Resumed (ticket or session ID).
        resumed: bool,
        /// Key-exchange group (none for a resumed TLS 1.2 session).
        group: Option<Group>,
        /// TLS 1.3 (else 1.2).
        tls13: bool,
    },
    /// The TLS connection failed (alert received or sent, bad record);
    /// the connection is closed.
    TlsFailed(Failure),
    /// The connection ended; `requests` were answered. Reported once.
    Ended {
        /// Why the endpoint ended (`None`: a normal close).
        outcome: Option<Outcome>,
        /// Responses read on this connection.
        requests: u32,
    },
}

/// One client connection that sends `requests` requests, one at a time
/// (keep-alive), and reads each response whole before the next.
#[derive(Debug)]
pub struct ClientSession {
    ep: Endpoint,
    reader: ResponseReader,
    left: u32,
    answered: u32,
    outstanding: bool,
    head: bool,
    opened_us: u64,
    sent_us: u64,
    first_byte_us: Option<u64>,
    connected: bool,
    closing: bool,
    ended: bool,
    think_us: u64,
    next_req_us: u64,
    connected_us: u64,
    tls: Option<Box<TlsLeg>>,
}

/// A session's buffers — TCP both ways; with TLS the record buffers and
/// the client's decrypted-bytes buffer — kept by an lcore for the next
/// session, or while a session is at rest ([`ClientSession::park`],
/// [`ServerSession::park`]).
#[derive(Debug, Default)]
pub struct SessionBuffers {
    pub(crate) tcp: Buffers,
    tls: TlsBuffers,
    plain: Vec<u8>,
}

impl SessionBuffers {
    /// Whether it holds no memory.
    pub fn is_empty(&self) -> bool {
        self.tcp.is_empty() && self.tls.is_empty() && self.plain.capacity() == 0
    }

    /// Bytes of memory it holds.
    pub fn bytes(&self) -> usize {
        self.tcp.bytes() + self.tls.bytes() + self.plain.capacity()
    }
}

/// A client session's TLS: the session, its counters, decrypted bytes
/// not yet parsed, and how much of the current request is still to be
/// encrypted.
#[derive(Debug)]
struct TlsLeg {
    s: TlsSession,
    stats: TlsStats,
    plain: Vec<u8>,
    req_left: usize,
    close_queued: bool,
}

/// The HTTP side of a TLS client session, as [`TlsSession`] sees it.
struct Adapter<'a> {
    plain: &'a mut Vec<u8>,
    req: &'a [u8],
    req_left: &'a mut usize,
}

impl Plaintext for Adapter<'_> {
    fn room(&self) -> usize {
        PLAIN_CAP - self.plain.len()
    }
    fn put(&mut self, data: &[u8]) {
        self.plain.extend_from_slice(data);
    }
    fn pending(&mut self) -> &[u8] {
        &self.req[self.req.len() - *self.req_left..]
    }
    fn consume(&mut self, n: usize) {
        *self.req_left -= n.min(*self.req_left);
    }
}

impl ClientSession {
    /// Whether a buffer is parked ([`park`](Self::park)).
    pub fn is_parked(&self) -> bool {
        self.ep.is_parked()
            || self
                .tls
                .as_ref()
                .is_some_and(|t| t.s.is_parked() || t.plain.capacity() == 0)
    }

    /// Opens a connection (our ISN `iss`) that will send `requests`
    /// requests; `head`: they are `HEAD` requests (no response bodies).
    pub fn connect(cfg: &Config, iss: u32, requests: u32, head: bool, now: Now) -> ClientSession {
        ClientSession::connect_reusing(cfg, iss, requests, head, now, Buffers::default())
    }

    /// [`connect`](Self::connect) in the buffers of a session that ended
    /// ([`take_buffers`](Self::take_buffers)): no allocation or zeroing
    /// of the TCP buffers per connection.
    pub fn connect_reusing(
        cfg: &Config,
        iss: u32,
        requests: u32,
        head: bool,
        now: Now,
        bufs: Buffers,
    ) -> ClientSession {
        ClientSession {
            ep: Endpoint::connect_reusing(cfg, iss, now, bufs),
            reader: ResponseReader::new(),
            left: requests,
            answered: 0,
            outstanding: false,
            head,
            opened_us: now.us,
            sent_us: 0,
            first_byte_us: None,
            connected: false,
            closing: false,
            ended: false,
            think_us: 0,
            next_req_us: 0,
            connected_us: 0,
            tls: None,
        }
    }

    /// Speaks HTTP through `tls` (a client session,
    /// [`TlsSession::client`]): its handshake starts once TCP's completes.
    pub fn with_tls(mut self, tls: TlsSession) -> ClientSession {
        self.tls = Some(Box::new(TlsLeg {
            s: tls,
            stats: TlsStats::default(),
            // Memory when first needed (`unpark`, or the first record).
            plain: Vec::new(),
            req_left: 0,
            close_queued: false,
        }));
        self
    }

    /// The TLS counters of this connection (bytes, failures), if TLS.
    pub fn tls_stats(&self) -> Option<&TlsStats> {
        self.tls.as_ref().map(|t| &t.stats)
    }

    /// Waits `us` after each response before the next request (think
    /// time; the first request goes as soon as the handshake completes).
    pub fn with_think_time(mut self, us: u64) -> ClientSession {
        self.think_us = us;
        self
    }

    /// The connection's endpoint: segments in ([`Endpoint::input`]) and
    /// out ([`Endpoint::output`]), timers ([`Endpoint::poll_at`]).
    pub fn endpoint(&mut self) -> &mut Endpoint {
        &mut self.ep
    }

    /// When it wants `step` and its endpoint `output` next (µs), if ever:
    /// the endpoint's timers, or the end of a think time.
    pub fn poll_at(&self) -> Option<u64> {
        let ep = self.ep.poll_at();
        if self.thinking() {
            Some(ep.map_or(self.next_req_us, |t| t.min(self.next_req_us)))
        } else {
            ep
        }
    }

    /// Waiting out a think time before the next request.
    fn thinking(&self) -> bool {
        self.connected && !self.closing && !self.outstanding && self.left > 0 && self.think_us > 0
    }

    /// The session's buffers, for the next session; the session (ended)
    /// keeps its record, whose memory serves the next session too.
    pub fn take_buffers(&mut self) -> SessionBuffers {
        let (tls, plain) = match self.tls.take() {
            Some(t) => {
                let TlsLeg { s, plain, .. } = *t;
                (s.into_buffers(), plain)
            }
            None => Default::default(),
        };
        SessionBuffers {
            tcp: self.ep.take_buffers(),
            tls,
            plain,
        }
    }

    /// Gives back the buffers that hold nothing now (TCP with nothing
    /// queued either way; TLS with no record bytes pending; no decrypted
    /// bytes unparsed): at rest the session holds its record and rustls'
    /// state only. [`unpark`](Self::unpark) before it is stepped again.
    pub fn park(&mut self) -> Option<SessionBuffers> {
        // All or nothing: a pool of whole sets serves the next session
        // without allocating.
        let tls_rest = self
            .tls
            .as_ref()
            .is_none_or(|t| t.s.at_rest() && t.plain.is_empty());
        if !self.ep.at_rest() || !tls_rest || self.is_parked() {
            return None;
        }
        let tcp = self.ep.park().unwrap_or_default();
        let (tls, plain) = match self.tls.as_mut() {
            Some(t) => (
                t.s.park().unwrap_or_default(),
                if t.plain.is_empty() {
                    std::mem::take(&mut t.plain)
                } else {
                    Vec::new()
                },
            ),
            None => Default::default(),
        };
        let b = SessionBuffers { tcp, tls, plain };
        (!b.is_empty()).then_some(b)
    }

    /// Memory again for what is parked (`b`'s parts that fit; the rest is
    /// allocated when needed).
    pub fn unpark(&mut self, b: SessionBuffers) {
        self.ep.unpark(b.tcp);
        if let Some(t) = self.tls.as_mut() {
            t.s.unpark(b.tls);
            if t.plain.capacity() == 0 {
                t.plain = b.plain;
            }
        }
    }

    /// Responses read whole so far.
    pub fn answered(&self) -> u32 {
        self.answered
    }

    /// The session reported [`ClientEvent::Ended`]: it may be dropped.
    pub fn is_done(&self) -> bool {
        self.ended
    }

    /// Moves the exchange on at `now` after input, a timer or output:
    /// reads what arrived, sends the next request (`req`, the whole
    /// request's bytes) when the last was answered, closes after the last
    /// answer. Events go to `ev`.
    pub fn step(&mut self, req: &[u8], now: Now, ev: &mut impl FnMut(ClientEvent)) {
        if self.ended {
            return;
        }
        if !self.connected && self.ep.state() == State::Established {
            self.connected = true;
            self.connected_us = now.us;
            ev(ClientEvent::Connected {
                us: now.us.saturating_sub(self.opened_us),
            });
        }
        if self.tls.is_some() {
            if self.connected {
                self.step_tls(req, now, ev);
            }
            self.check_ended(ev);
            return;
        }
        self.read(now, ev);
        if self.connected
            && !self.closing
            && !self.outstanding
            && self.left > 0
            && now.us >= self.next_req_us
            && self.ep.may_send()
            && self.ep.send_room() >= req.len()
        {
            self.reader.expect_head(self.head);
            self.ep.send(req);
            self.left -= 1;
            self.outstanding = true;
            self.sent_us = now.us;
            self.first_byte_us = None;
        }
        // The server's FIN.
        if self.connected && !self.ep.may_recv() && !self.closing {
            self.server_closed(now, ev);
            self.ep.close();
        }
        self.check_ended(ev);
    }

    fn check_ended(&mut self, ev: &mut impl FnMut(ClientEvent)) {
        if self.ep.is_closed() && !self.ended {
            self.ended = true;
            ev(ClientEvent::Ended {
                outcome: self.ep.outcome(),
                requests: self.answered,
            });
        }
    }

    /// [`step`](Self::step) of a TLS session: TCP bytes into TLS, the
    /// next request through it, decrypted bytes into the response reader,
    /// TLS bytes out to TCP; close_notify before FIN.
    fn step_tls(&mut self, req: &[u8], now: Now, ev: &mut impl FnMut(ClientEvent)) {
        let Some(mut t) = self.tls.take() else {
            return;
        };
        for _ in 0..4 {
            tcp_to_tls(&mut self.ep, &mut t.s);
            // The next request, once the handshake is done.
            if t.s.phase() == Phase::Established
                && !self.closing
                && !self.outstanding
                && self.left > 0
                && now.us >= self.next_req_us
            {
                self.reader.expect_head(self.head);
                t.req_left = req.len();
                self.left -= 1;
                self.outstanding = true;
                self.sent_us = now.us;
                self.first_byte_us = None;
            }
            let p = {
                let TlsLeg {
                    s,
                    stats,
                    plain,
                    req_left,
                    ..
                } = &mut *t;
                s.process_client(
                    &mut Adapter {
                        plain,
                        req,
                        req_left,
                    },
                    stats,
                )
            };
            if p.handshake_done {
                if let Some(h) = t.s.handshake() {
                    ev(ClientEvent::TlsHandshake {
                        us: now.us.saturating_sub(self.connected_us),
                        resumed: h.resumed,
                        group: h.group,
                        tls13: h.version == rustls::ProtocolVersion::TLSv1_3,
                    });
                }
            }
            if p.failed && !self.closing {
                ev(ClientEvent::TlsFailed(
                    t.s.failure().unwrap_or(Failure::Other),
                ));
                self.closing = true;
                t.close_queued = true;
            }
            // Decrypted response bytes.
            if !t.plain.is_empty() {
                if self.first_byte_us.is_none() && self.outstanding {
                    self.first_byte_us = Some(now.us);
                }
                let mut used = 0;
                while used < t.plain.len() && !self.closing {
                    match self.reader.feed(&t.plain[used..]) {
                        Ok((n, _, done)) => {
                            used += n;
                            if let Some(r) = done {
                                self.closing = self.response_done(r, now, ev);
                            } else if n == 0 {
                                break;
                            }
                        }
                        Err(e) => {
                            ev(ClientEvent::BadResponse(e));
                            self.closing = true;
                            self.ep.abort();
                        }
                    }
                }
                if self.closing {
                    used = t.plain.len();
                }
                t.plain.drain(..used);
            }
            // The server's close_notify or FIN.
            if (t.s.peer_closed() || !self.ep.may_recv()) && !self.closing {
                self.server_closed(now, ev);
            }
            if self.closing && !t.close_queued {
                t.close_queued = true;
                t.s.close();
                continue;
            }
            tls_to_tcp(&mut t.s, &mut self.ep);
            if self.closing
                && t.s.outgoing().is_empty()
                && (t.s.close_sent() || t.s.phase() == Phase::Failed)
                && self.ep.may_send()
            {
                self.ep.close();
            }
            if !(p.handshake_done && self.left > 0) {
                break;
            }
        }
        self.tls = Some(t);
    }

    fn read(&mut self, now: Now, ev: &mut impl FnMut(ClientEvent)) {
        loop {
            let (a, _) = self.ep.recv_peek();
            if a.is_empty() {
                return;
            }
            if self.first_byte_us.is_none() && self.outstanding {
                self.first_byte_us = Some(now.us);
            }
            match self.reader.feed(a) {
                Ok((n, _, done)) => {
                    self.ep.recv_consume(n);
                    if let Some(r) = done {
                        if self.response_done(r, now, ev) {
                            self.closing = true;
                            self.ep.close();
                        }
                    }
                }
                Err(e) => {
                    ev(ClientEvent::BadResponse(e));
                    self.closing = true;
                    self.ep.abort();
                    return;
                }
            }
        }
    }

    /// A response was read whole: reports it; true when the connection is
    /// to close now (the last request answered, or the server said
    /// `Connection: close` — before the last request: closed early).
    fn response_done(
        &mut self,
        r: qsplice_wire::http_response::Response,
        now: Now,
        ev: &mut impl FnMut(ClientEvent),
    ) -> bool {
        self.answer(r.status, r.body_len, now, ev);
        if r.close && self.left > 0 {
            ev(ClientEvent::ClosedEarly);
        }
        r.close || self.left == 0
    }

    /// The server ended its side (FIN, or TLS close_notify): a response
    /// delimited by the close is complete; requests left unanswered make
    /// the connection closed early. Marks the session closing.
    fn server_closed(&mut self, now: Now, ev: &mut impl FnMut(ClientEvent)) {
        match self.reader.finish() {
            Ok(Some(r)) => self.answer(r.status, r.body_len, now, ev),
            Ok(None) => {}
            Err(e) => ev(ClientEvent::BadResponse(e)),
        }
        if self.outstanding || self.left > 0 {
            ev(ClientEvent::ClosedEarly);
        }
        self.closing = true;
    }

    fn answer(&mut self, status: u16, body_len: u64, now: Now, ev: &mut impl FnMut(ClientEvent)) {
        self.outstanding = false;
        self.answered += 1;
        self.next_req_us = now.us.saturating_add(self.think_us);
        ev(ClientEvent::Response {
            status,
            body_len,
            first_byte_us: self
                .first_byte_us
                .unwrap_or(now.us)
                .saturating_sub(self.sent_us),
            us: now.us.saturating_sub(self.sent_us),
            conn_us: (self.left == 0).then(|| now.us.saturating_sub(self.opened_us)),
        });
    }
}

/// A passive open: the SYN-ACK answering a SYN, and the endpoint once the
/// peer's ACK completes the handshake (a listener keeps one per pending
/// handshake, or rebuilds it from a SYN cookie).
#[derive(Copy, Clone, Debug)]
pub struct PassiveOpen {
    syn: SynOptions,
    synack: SynAck,
    iss: u32,
    irs: u32,
    window: u16,
}

impl PassiveOpen {
    /// The answer to `syn` (a SYN segment) with our ISN `iss`; `None` if
    /// it is no SYN.
    pub fn answer(cfg: &Config, syn: &Segment<'_>, iss: u32, now: Now) -> Option<PassiveOpen> {
        if !syn.flags.contains(TcpFlags::SYN) || syn.flags.contains(TcpFlags::ACK) {
            return None;
        }
        let so = SynOptions::from_segment(syn);
        Some(PassiveOpen {
            syn: so,
            synack: SynAck::answer(cfg, &so, now.tsval),
            iss,
            irs: syn.seq,
            window: cfg.syn_window(),
        })
    }

    /// The SYN-ACK segment to send.
    pub fn syn_ack(&self) -> SegmentOut<'static> {
        SegmentOut {
            seq: self.iss,
            ack: Some(self.irs.wrapping_add(1)),
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: self.window,
            options: self.synack.out_options(),
            payload: (&[], &[]),
        }
    }

    /// The endpoint, if `ack` completes the handshake (it acknowledges our
    /// SYN exactly); the ACK (and any data it carries) is taken in.
    pub fn complete(&self, cfg: &Config, ack: &Segment<'_>, now: Now) -> Option<Endpoint> {
        self.complete_reusing(cfg, ack, now, &mut None)
    }

    /// Whether `seg` is a RST for this handshake (its sequence number the
    /// one our SYN-ACK expects next; RFC 5961: not a blind reset).
    pub fn is_reset_by(&self, seg: &Segment<'_>) -> bool {
        seg.flags.contains(TcpFlags::RST) && seg.seq == self.irs.wrapping_add(1)
    }

    /// [`complete`](Self::complete) in the buffers of an endpoint that
    /// ended (taken from `bufs` only when the handshake completes).
    pub fn complete_reusing(
        &self,
        cfg: &Config,
        ack: &Segment<'_>,
        now: Now,
        bufs: &mut Option<Buffers>,
    ) -> Option<Endpoint> {
        if ack.flags.contains(TcpFlags::SYN)
            || ack.flags.contains(TcpFlags::RST)
            || ack.ack != Some(self.iss.wrapping_add(1))
            || ack.seq != self.irs.wrapping_add(1)
        {
            return None;
        }
        let hs = self
            .synack
            .handshake(&self.syn, self.iss, self.irs, ack.window, ack.options.ts);
        let mut ep = Endpoint::accept_reusing(cfg, hs, now, bufs.take().unwrap_or_default());
        ep.input(ack, now);
        Some(ep)
    }
}

/// What a server answers: one response per request path it knows (the
/// request target up to `?`), a default for the others. Paths are matched
/// by a 64-bit FNV-1a hash and length of the target as it streams past
/// (no request bytes kept).
#[derive(Clone, Debug)]
pub struct Responses {
    default: Vec<u8>,
    paths: Vec<(u64, u32, Vec<u8>)>,
}

/// Paths a [`Responses`] holds at most besides its default (a pending
/// request's answer is a 4-bit index).
pub const MAX_PATHS: usize = 15;

/// Pipelined requests a server session queues answers for at most; the
/// ones beyond get the default response.
const MAX_PIPELINED: u32 = 16;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(path: &[u8]) -> u64 {
    path.iter().fold(FNV_OFFSET, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

impl Responses {
    /// `default` for every request.
    pub fn new(default: Vec<u8>) -> Responses {
        Responses {
            default,
            paths: Vec::new(),
        }
    }

    /// Answers requests for `path` with `resp` (false: already
    /// [`MAX_PATHS`] paths).
    pub fn add_path(&mut self, path: &str, resp: Vec<u8>) -> bool {
        if self.paths.len() >= MAX_PATHS {
            return false;
        }
        let p = path.split('?').next().unwrap_or(path).as_bytes();
        self.paths.push((fnv(p), p.len() as u32, resp));
        true
    }

    /// Response `i` (0: the default, `k`: the `k`th path).
    fn get(&self, i: u8) -> &[u8] {
        match i {
            0 => &self.default,
            k => self
                .paths
                .get(usize::from(k) - 1)
                .map_or(&self.default[..], |p| &p.2[..]),
        }
    }

    /// The response index for a target hashed to `h`, `len` bytes long.
    fn index(&self, h: u64, len: u32) -> u8 {
        self.paths
            .iter()
            .position(|p| p.0 == h && p.1 == len)
            .map_or(0, |k| k as u8 + 1)
    }
}

/// Request heads as they stream past: where in the head we are, the
/// target's running hash, a `Content-Length` being read, the body left
/// to skip, and the answers owed, oldest in the low bits.
#[derive(Copy, Clone, Debug)]
struct HeadScan {
    /// The last bytes read (looking for CR LF CR LF across pieces).
    tail: u32,
    /// 0: method, 1: target, 2: the rest of the head.
    at: u8,
    /// A byte other than CR / LF seen in this head (blank lines before a
    /// request line are skipped, RFC 9112 §2.2).
    begun: bool,
    hash: u64,
    len: u32,
    /// Characters of `content-length:` matched on this line (`CL_NO`:
    /// not this line, `CL_DONE`: its value ended).
    cl_match: u8,
    /// The value being read: (digits seen, value).
    cl_val: (bool, u64),
    /// This head's body length (the last `Content-Length` line's value).
    clen: u64,
    /// Body bytes still to skip.
    body: u64,
    /// Response indices of the pending requests, 4 bits each.
    owed: u64,
}

const CONTENT_LENGTH: &[u8] = b"content-length:";
const CL_NO: u8 = 0xff;
const CL_DONE: u8 = 0xfe;

impl Default for HeadScan {
    fn default() -> Self {
        HeadScan {
            tail: 0,
            at: 0,
            begun: false,
            hash: FNV_OFFSET,
            len: 0,
            cl_match: 0,
            cl_val: (false, 0),
            clen: 0,
            body: 0,
            owed: 0,
        }
    }
}

/// One server connection: every request head it reads (up to the blank
/// line; GET / HEAD requests, no bodies) is answered, in order, with the
/// response its path selects ([`Responses`]); it closes when the client
/// does.
#[derive(Debug)]
pub struct ServerSession {
    ep: Endpoint,
    scan: HeadScan,
    pending: u32,
    written: usize,
    requests: u64,
    /// Responses written whole.
    answered: u64,
    /// Close after the first response (`Connection: close` responses).
    close_after: bool,
    closing: bool,
    tls: Option<Box<ServerTls>>,
}

/// A server session's TLS.
#[derive(Debug)]
struct ServerTls {
    s: TlsSession,
    stats: TlsStats,
    close_queued: bool,
}

/// The HTTP side of a TLS server session: request heads counted as they
/// are decrypted (never kept), the fixed response encrypted per request.
struct SrvAdapter<'a> {
    scan: &'a mut HeadScan,
    pending: &'a mut u32,
    requests: &'a mut u64,
    written: &'a mut usize,
    answered: &'a mut u64,
    close_after: bool,
    resp: &'a Responses,
}

impl Plaintext for SrvAdapter<'_> {
    fn room(&self) -> usize {
        PLAIN_CAP
    }
    fn put(&mut self, data: &[u8]) {
        scan_heads(data, self.scan, self.pending, self.requests, self.resp);
    }
    fn pending(&mut self) -> &[u8] {
        if *self.pending > 0 {
            &self.resp.get(owed_next(self.scan))[*self.written..]
        } else {
            &[]
        }
    }
    fn consume(&mut self, n: usize) {
        *self.written += n;
        if *self.written >= self.resp.get(owed_next(self.scan)).len() {
            answered_one(
                self.scan,
                self.pending,
                self.written,
                self.answered,
                self.close_after,
            );
        }
    }
}

/// The response index the oldest pending request is owed.
fn owed_next(scan: &HeadScan) -> u8 {
    (scan.owed & 0xf) as u8
}

/// The oldest pending request's response is written whole.
fn answered_one(
    scan: &mut HeadScan,
    pending: &mut u32,
    written: &mut usize,
    answered: &mut u64,
    close_after: bool,
) {
    *written = 0;
    *pending -= 1;
    scan.owed >>= 4;
    *answered += 1;
    if close_after {
        *pending = 0;
    }
}

/// Counts request heads (CR LF CR LF) in `data` and notes the response
/// each one's target selects, skipping request bodies delimited by
/// `Content-Length`, carrying the scan's state across pieces.
fn scan_heads(
    data: &[u8],
    scan: &mut HeadScan,
    pending: &mut u32,
    requests: &mut u64,
    resp: &Responses,
) {
    let mut i = 0;
    while i < data.len() {
        if scan.body > 0 {
            let n = (data.len() - i).min(usize::try_from(scan.body).unwrap_or(usize::MAX));
            scan.body -= n as u64;
            i += n;
            continue;
        }
        let b = data[i];
        i += 1;
        scan.tail = (scan.tail << 8) | u32::from(b);
        let blank = !scan.begun && matches!(b, b'\r' | b'\n');
        scan.begun |= !blank;
        match scan.at {
            0 if b == b' ' => {
                scan.at = 1;
                scan.hash = FNV_OFFSET;
                scan.len = 0;
            }
            1 if matches!(b, b' ' | b'?' | b'\r' | b'\n') => scan.at = 2,
            1 => {
                scan.hash = (scan.hash ^ u64::from(b)).wrapping_mul(FNV_PRIME);
                scan.len = scan.len.saturating_add(1);
            }
            _ => {}
        }
        // Content-Length, line by line.
        if b == b'\n' || blank {
            if b == b'\n' && scan.cl_val.0 {
                scan.clen = scan.cl_val.1;
            }
            scan.cl_match = 0;
            scan.cl_val = (false, 0);
        } else {
            match scan.cl_match {
                CL_NO | CL_DONE => {}
                m if usize::from(m) < CONTENT_LENGTH.len() => {
                    scan.cl_match = if b.to_ascii_lowercase() == CONTENT_LENGTH[usize::from(m)] {
                        m + 1
                    } else {
                        CL_NO
                    };
                }
                _ => match b {
                    b' ' | b'\t' if !scan.cl_val.0 => {}
                    b'0'..=b'9' => {
                        let v = scan.cl_val.1;
                        scan.cl_val = (
                            true,
                            v.saturating_mul(10).saturating_add(u64::from(b - b'0')),
                        );
                    }
                    _ => scan.cl_match = CL_DONE,
                },
            }
        }
        if scan.tail == 0x0d0a_0d0a {
            if scan.begun {
                let k = if scan.at == 0 {
                    0
                } else {
                    resp.index(scan.hash, scan.len)
                };
                if *pending < MAX_PIPELINED {
                    scan.owed |= u64::from(k) << (4 * *pending);
                }
                *pending += 1;
                *requests += 1;
                scan.body = scan.clen;
            }
            let owed = scan.owed;
            *scan = HeadScan {
                owed,
                body: scan.body,
                ..HeadScan::default()
            };
        }
    }
}

impl ServerSession {
    /// The connection's buffers, for the next connection; the session
    /// (ended) keeps its record, whose memory serves the next one too.
    pub fn take_buffers(&mut self) -> SessionBuffers {
        SessionBuffers {
            tcp: self.ep.take_buffers(),
            tls: self
                .tls
                .take()
                .map(|t| t.s.into_buffers())
                .unwrap_or_default(),
            plain: Vec::new(),
        }
    }

    /// Gives back the buffers that hold nothing now (see
    /// [`ClientSession::park`]).
    pub fn park(&mut self) -> Option<SessionBuffers> {
        let tls_rest = self.tls.as_ref().is_none_or(|t| t.s.at_rest());
        if !self.ep.at_rest() || !tls_rest || self.is_parked() {
            return None;
        }
        let b = SessionBuffers {
            tcp: self.ep.park().unwrap_or_default(),
            tls: self
                .tls
                .as_mut()
                .and_then(|t| t.s.park())
                .unwrap_or_default(),
            plain: Vec::new(),
        };
        (!b.is_empty()).then_some(b)
    }

    /// Memory again for what is parked.
    pub fn unpark(&mut self, b: SessionBuffers) {
        self.ep.unpark(b.tcp);
        if let Some(t) = self.tls.as_mut() {
            t.s.unpark(b.tls);
        }
    }

    /// Whether a buffer is parked.
    pub fn is_parked(&self) -> bool {
        self.ep.is_parked() || self.tls.as_ref().is_some_and(|t| t.s.is_parked())
    }

    /// A session on an established endpoint ([`PassiveOpen::complete`]).
    pub fn new(ep: Endpoint) -> ServerSession {
        ServerSession {
            ep,
            scan: HeadScan::default(),
            pending: 0,
            written: 0,
            requests: 0,
            answered: 0,
            close_after: false,
            closing: false,
            tls: None,
        }
    }

    /// Closes the connection after the first response (for responses
    /// that say `Connection: close`, or delimit their body by the close).
    pub fn close_after_response(mut self) -> ServerSession {
        self.close_after = true;
        self
    }

    /// Speaks HTTP through `tls` (a server session waiting for its
    /// ClientHello, [`TlsSession::new`]); drive it with
    /// [`step_tls`](Self::step_tls).
    pub fn with_tls(mut self, tls: TlsSession) -> ServerSession {
        self.tls = Some(Box::new(ServerTls {
            s: tls,
            stats: TlsStats::default(),
            close_queued: false,
        }));
        self
    }

    /// The TLS counters of this connection, if TLS.
    pub fn tls_stats(&self) -> Option<&TlsStats> {
        self.tls.as_ref().map(|t| &t.stats)
    }

    /// What the TLS handshake negotiated, once done.
    pub fn tls_handshake(&self) -> Option<&qsplice_tls::HandshakeInfo> {
        self.tls.as_ref().and_then(|t| t.s.handshake())
    }

    /// [`step`](Self::step) through TLS (`ctx`: the certificates and
    /// groups served; `scratch`: ClientHello reassembly, shared per
    /// lcore). Returns whether the TLS handshake completed in this call.
    pub fn step_tls(
        &mut self,
        resp: &Responses,
        ctx: &TlsContext,
        scratch: &mut HelloAssembler,
    ) -> bool {
        let Some(mut t) = self.tls.take() else {
            self.step(resp);
            return false;
        };
        let mut done = false;
        for _ in 0..4 {
            tcp_to_tls(&mut self.ep, &mut t.s);
            let p = {
                let ServerTls { s, stats, .. } = &mut *t;
                s.process(
                    ctx,
                    scratch,
                    &mut SrvAdapter {
                        scan: &mut self.scan,
                        pending: &mut self.pending,
                        requests: &mut self.requests,
                        written: &mut self.written,
                        answered: &mut self.answered,
                        close_after: self.close_after,
                        resp,
                    },
                    stats,
                )
            };
            done |= p.handshake_done;
            let peer_done = t.s.peer_closed() || !self.ep.may_recv();
            let answered = self.close_after && self.answered > 0;
            if (p.failed
                || t.s.phase() == Phase::Failed
                || (peer_done || answered) && self.pending == 0)
                && !t.close_queued
            {
                t.close_queued = true;
                t.s.close();
                continue;
            }
            tls_to_tcp(&mut t.s, &mut self.ep);
            if t.close_queued
                && !self.closing
                && t.s.outgoing().is_empty()
                && (t.s.close_sent() || matches!(t.s.phase(), Phase::Failed | Phase::Closed))
            {
                self.closing = true;
                self.ep.close();
            }
            break;
        }
        self.tls = Some(t);
        done
    }

    /// The connection's endpoint.
    pub fn endpoint(&mut self) -> &mut Endpoint {
        &mut self.ep
    }

    /// When its endpoint wants `output` next (µs), if ever.
    pub fn poll_at(&self) -> Option<u64> {
        self.ep.poll_at()
    }

    /// Requests read so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Whether the endpoint is closed (the session may be dropped).
    pub fn is_closed(&self) -> bool {
        self.ep.is_closed()
    }

    /// Reads request heads and writes the response each one selects in
    /// `resp`, as far as the send buffer takes it; closes after the
    /// client's FIN once every answer is out.
    pub fn step(&mut self, resp: &Responses) {
        loop {
            let (a, _) = self.ep.recv_peek();
            if a.is_empty() {
                break;
            }
            let n = a.len();
            scan_heads(
                a,
                &mut self.scan,
                &mut self.pending,
                &mut self.requests,
                resp,
            );
            self.ep.recv_consume(n);
        }
        while self.pending > 0 && self.ep.may_send() {
            let r = resp.get(owed_next(&self.scan));
            let n = self.ep.send(&r[self.written..]);
            self.written += n;
            if self.written < r.len() {
                break;
            }
            answered_one(
                &mut self.scan,
                &mut self.pending,
                &mut self.written,
                &mut self.answered,
                self.close_after,
            );
        }
        let answered = self.close_after && self.answered > 0;
        if !self.closing && (!self.ep.may_recv() || answered) && self.pending == 0 {
            self.closing = true;
            self.ep.close();
        }
    }
}

/// Moves what TCP received into the TLS session, as far as it takes it.
fn tcp_to_tls(ep: &mut Endpoint, tls: &mut TlsSession) {
    loop {
        let (a, _) = ep.recv_peek();
        let n = tls.receive(a);
        if n == 0 {
            return;
        }
        ep.recv_consume(n);
    }
}

/// Queues the TLS session's output on TCP, as far as the send buffer
/// takes it.
fn tls_to_tcp(tls: &mut TlsSession, ep: &mut Endpoint) {
    let out = tls.outgoing();
    if !out.is_empty() {
        let n = ep.send(out);
        tls.consume_outgoing(n);
    }
}

/// How a server response delimits its body.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// `Content-Length`.
    Length,
    /// `Transfer-Encoding: chunked`, chunks of at most this many bytes.
    Chunked(usize),
    /// `Connection: close`, no length: the body ends with the connection
    /// (the server closes after the response).
    Close,
}

/// A `200 OK` with `body_len` bytes of body (`a..z` repeated), framed as
/// `framing` says.
pub fn build_response(body_len: usize, framing: BodyFraming) -> Vec<u8> {
    let body = (0..body_len).map(|i| b'a' + (i % 26) as u8);
    let mut r = b"HTTP/1.1 200 OK\r\nServer: qsplice-loadgen\r\n".to_vec();
    match framing {
        BodyFraming::Length => {
            r.extend(format!("Content-Length: {body_len}\r\n\r\n").bytes());
            r.extend(body);
        }
        BodyFraming::Close => {
            r.extend(b"Connection: close\r\n\r\n");
            r.extend(body);
        }
        BodyFraming::Chunked(n) => {
            r.extend(b"Transfer-Encoding: chunked\r\n\r\n");
            let body: Vec<u8> = body.collect();
            for c in body.chunks(n.max(1)) {
                r.extend(format!("{:x}\r\n", c.len()).bytes());
                r.extend_from_slice(c);
                r.extend(b"\r\n");
            }
            r.extend(b"0\r\n\r\n");
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn request_heads_select_their_path_byte_fixture() {
        let mut r = Responses::new(b"default".to_vec());
        assert!(r.add_path("/a", b"A".to_vec()));
        assert!(r.add_path("/1m.bin", b"M".to_vec()));
        let wire = b"GET /1m.bin HTTP/1.1\r\nHost: x\r\n\r\n\
                     HEAD /a?q=1 HTTP/1.1\r\n\r\n\
                     GET /ab HTTP/1.1\r\n\r\n\
                     GET / HTTP/1.1\r\nX: /a\r\n\r\n";
        let (mut scan, mut pending, mut requests) = (HeadScan::default(), 0, 0);
        scan_heads(wire, &mut scan, &mut pending, &mut requests, &r);
        assert_eq!((pending, requests), (4, 4));
        let got: Vec<&[u8]> = (0..4)
            .map(|i| r.get(((scan.owed >> (4 * i)) & 0xf) as u8))
            .collect();
        assert_eq!(got, [&b"M"[..], b"A", b"default", b"default"]);
    }

    #[test]
    fn request_bodies_are_skipped_by_their_content_length() {
        let mut r = Responses::new(b"d".to_vec());
        r.add_path("/a", b"A".to_vec());
        // Blank lines before a request are not requests; a body that looks
        // like a request is not one; the last Content-Length line counts.
        let wire = b"\r\n\r\nPOST /up HTTP/1.1\r\nHost: x\r\ncontent-LENGTH:\t 29\r\n\r\n\
                     GET /a HTTP/1.1\r\n\r\nxxxxxxxxxx\
                     POST /a HTTP/1.1\r\nContent-Length: 99\r\nContent-Length: 3\r\n\r\n\r\n\r\
                     GET /b HTTP/1.1\r\n\r\n";
        let (mut scan, mut pending, mut requests) = (HeadScan::default(), 0, 0);
        for piece in wire.chunks(7) {
            scan_heads(piece, &mut scan, &mut pending, &mut requests, &r);
        }
        assert_eq!((pending, requests), (3, 3));
        let got: Vec<&[u8]> = (0..3)
            .map(|i| r.get(((scan.owed >> (4 * i)) & 0xf) as u8))
            .collect();
        assert_eq!(got, [&b"d"[..], b"A", b"d"]);
        assert_eq!(scan.body, 0);
    }

    proptest! {
        /// Pipelined requests for known and unknown paths (with queries),
        /// cut into arbitrary pieces: each is owed its path's response, in
        /// order, as its answer is written.
        #[test]
        fn pipelined_requests_are_owed_their_paths_responses_in_order(
            picks in proptest::collection::vec(
                (0usize..5, any::<bool>(), proptest::option::of(0usize..300), 0u8..3),
                1..16,
            ),
            cuts in proptest::collection::vec(1usize..40, 1..50),
        ) {
            let paths = ["/a", "/b/c", "/1m.bin", "/zz"];
            let mut r = Responses::new(vec![0]);
            for (k, p) in paths.iter().enumerate().take(3) {
                r.add_path(p, vec![k as u8 + 1]);
            }
            let mut wire = Vec::new();
            let mut want = Vec::new();
            for &(k, query, body, case) in &picks {
                let path = if k < paths.len() { paths[k] } else { "/" };
                let q = if query { "?x=/a" } else { "" };
                match body {
                    None => wire.extend(format!("GET {path}{q} HTTP/1.1\r\nHost: h\r\n\r\n").bytes()),
                    Some(n) => {
                        let name = ["Content-Length", "content-length", "CONTENT-LENGTH"][usize::from(case)];
                        wire.extend(format!("POST {path}{q} HTTP/1.1\r\n{name}: {n}\r\n\r\n").bytes());
                        // A body full of what a request head looks like.
                        let fake = b"GET /a HTTP/1.1\r\n\r\n";
                        wire.extend((0..n).map(|i| fake[i % fake.len()]));
                    }
                }
                want.push(if k < 3 { k as u8 + 1 } else { 0 });
            }
            let (mut scan, mut pending, mut requests) = (HeadScan::default(), 0u32, 0u64);
            let (mut at, mut c) = (0, 0);
            while at < wire.len() {
                let n = cuts[c % cuts.len()].min(wire.len() - at);
                scan_heads(&wire[at..at + n], &mut scan, &mut pending, &mut requests, &r);
                at += n;
                c += 1;
            }
            prop_assert_eq!(pending as usize, want.len());
            let (mut written, mut answered) = (0usize, 0u64);
            for w in want {
                prop_assert_eq!(r.get(owed_next(&scan)), &[w][..]);
                answered_one(&mut scan, &mut pending, &mut written, &mut answered, false);
            }
            prop_assert_eq!(pending, 0);
        }

        #[test]
        fn built_responses_read_back_whole(
            len in 0usize..20_000,
            chunk in 1usize..5000,
            mode in 0u8..3,
            piece in 1usize..3000,
        ) {
            let framing = match mode {
                0 => BodyFraming::Length,
                1 => BodyFraming::Chunked(chunk),
                _ => BodyFraming::Close,
            };
            let r = build_response(len, framing);
            let mut rd = ResponseReader::new();
            let mut got = None;
            for p in r.chunks(piece) {
                let mut p = p;
                while !p.is_empty() {
                    let (n, _, done) = rd.feed(p).unwrap();
                    if let Some(d) = done {
                        got = Some(d);
                    }
                    p = &p[n..];
                }
            }
            if framing == BodyFraming::Close {
                prop_assert!(got.is_none());
                got = rd.finish().unwrap();
            }
            let got = got.expect("a whole response");
            prop_assert_eq!(got.status, 200);
            prop_assert_eq!(got.body_len, len as u64);
            prop_assert_eq!(got.close, framing == BodyFraming::Close);
        }
    }
}
