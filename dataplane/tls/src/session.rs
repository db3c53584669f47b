//! One TLS connection, sans-IO: TLS bytes in and out, plaintext through a
//! [`Plaintext`] adapter, over rustls' unbuffered API.
//!
//! The caller (the lcore's TCP glue) owns the sockets; per connection it
//! - appends bytes from the client to [`TlsSession::receive`] (as many as
//!   [`TlsSession::rx_room`] allows — TCP flow control does the rest);
//! - calls [`TlsSession::process`] with a [`Plaintext`] that hands
//!   decrypted bytes to the backend leg and gives plaintext from the
//!   backend to encrypt;
//! - sends [`TlsSession::outgoing`] to the client and
//!   [`TlsSession::consume_outgoing`]s what it sent.
//!
//! Records are decrypted in place in the receive buffer and encrypted
//! straight into the transmit buffer: no allocation per record here
//! (rustls allocates only for handshake messages). The receive buffer
//! holds at least one whole record; while the backend leg has no room for
//! one more record of plaintext, no record is decrypted (records stay in
//! the buffer, the buffer fills, the client's TCP window closes).
//!
//! Before rustls sees the first byte, the ClientHello is reassembled and
//! parsed by `qsplice_wire::tls` to pick the VIP's configuration for the
//! client's key shares (see [`TlsContext::config_for`]).
//!
//! The same session drives rustls' unbuffered *client* for the load
//! generator ([`TlsSession::client`], [`TlsSession::process_client`]): the
//! record loop is shared; the plaintext adapter then takes the server's
//! decrypted bytes and hands out requests to encrypt.

use std::sync::Arc;

use qsplice_wire::tls::{ClientHello, HelloAssembler};
use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::pki_types::ServerName;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{ClientConfig, CommonState, HandshakeKind};

use crate::context::TlsContext;
use crate::groups::Group;
use crate::stats::{Failure, HandshakeInfo, TlsStats};

/// Largest TLS record on the wire (TLS 1.2 allows 2^14 + 2048 of
/// ciphertext, plus the 5-byte header).
pub const MAX_RECORD: usize = 5 + 16384 + 2048;
/// Largest plaintext of one record.
pub const MAX_PLAINTEXT: usize = 16384;
/// Receive buffer: two records, so one can arrive while one waits.
const RX_CAP: usize = 2 * MAX_RECORD;
/// Transmit buffer start / hard limit (a handshake flight with an ML-DSA-87
/// chain is about 15 KB).
const TX_INITIAL: usize = 32 * 1024;
const TX_MAX: usize = 128 * 1024;
/// Record overhead bound (header, explicit nonce, content type, tag).
const RECORD_OVERHEAD: usize = 5 + 8 + 1 + 16 + 8;
/// Iteration guard for one `process` call.
const MAX_STEPS: usize = 256;

/// The backend side of a connection, as [`TlsSession::process`] sees it.
pub trait Plaintext {
    /// Bytes of decrypted client data the backend leg can take now.
    fn room(&self) -> usize;
    /// Takes decrypted client data (never more than [`room`](Self::room)).
    fn put(&mut self, data: &[u8]);
    /// Plaintext from the backend waiting to be encrypted (a contiguous
    /// prefix of it; empty when none).
    fn pending(&mut self) -> &[u8];
    /// `n` bytes of [`pending`](Self::pending) were encrypted.
    fn consume(&mut self, n: usize);
}

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for / inside the handshake.
    Handshaking,
    /// Application data flows.
    Established,
    /// Failed (see [`TlsSession::failure`]); send what is in
    /// [`TlsSession::outgoing`] (an alert, if any) and close.
    Failed,
    /// Closed cleanly both ways.
    Closed,
}

/// What one [`TlsSession::process`] call changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// The handshake completed in this call ([`TlsSession::handshake`]).
    pub handshake_done: bool,
    /// The client sent close_notify in this call.
    pub peer_closed: bool,
    /// The connection failed in this call ([`TlsSession::failure`]).
    pub failed: bool,
}

/// What both sides of rustls' unbuffered API have in common, for the
/// record loop below.
trait Unbuffered {
    type Data;
    fn common(&self) -> &CommonState;
    fn records<'c, 'i>(&'c mut self, rx: &'i mut [u8]) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Unbuffered for UnbufferedServerConnection {
    type Data = ServerConnectionData;
    fn common(&self) -> &CommonState {
        self
    }
    fn records<'c, 'i>(&'c mut self, rx: &'i mut [u8]) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(rx)
    }
}

impl Unbuffered for UnbufferedClientConnection {
    type Data = ClientConnectionData;
    fn common(&self) -> &CommonState {
        self
    }
    fn records<'c, 'i>(&'c mut self, rx: &'i mut [u8]) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(rx)
    }
}

/// The rustls connection of a session: we terminate (server) or we
/// connect (client, e.g. the load generator).
enum Conn {
    Server(Box<UnbufferedServerConnection>),
    Client(Box<UnbufferedClientConnection>),
}

/// A session's record buffers, given back while it is at rest
/// ([`TlsSession::park`]) and taken again ([`TlsSession::unpark`]).
#[derive(Debug, Default)]
pub struct TlsBuffers {
    rx: Box<[u8]>,
    tx: Vec<u8>,
}

impl TlsBuffers {
    /// Whether it holds no memory.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty() && self.tx.is_empty()
    }

    /// Bytes of memory it holds.
    pub fn bytes(&self) -> usize {
        self.rx.len() + self.tx.capacity()
    }
}

/// See the module docs.
pub struct TlsSession {
    conn: Option<Conn>,
    rx: Box<[u8]>,
    rx_len: usize,
    /// Transmit buffer: `tx[tx_start..tx_end]` is to be sent; the whole
    /// vector stays initialized (no zero-fill per record).
    tx: Vec<u8>,
    tx_start: usize,
    tx_end: usize,
    phase: Phase,
    failure: Option<Failure>,
    hello_malformed: bool,
    info: Option<HandshakeInfo>,
    sni: Option<String>,
    /// rustls stopped on an application-data record the backend leg had
    /// no room for.
    read_blocked: bool,
    peer_closed: bool,
    close_wanted: bool,
    close_sent: bool,
}

impl core::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlsSession")
            .field("phase", &self.phase)
            .field("rx_len", &self.rx_len)
            .field("tx", &(self.tx_end - self.tx_start))
            .field("failure", &self.failure)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Default for TlsSession {
    fn default() -> Self {
        Self::new()
    }
}

impl TlsSession {
    /// A session waiting for its ClientHello (its buffers are allocated
    /// when the first bytes arrive).
    pub fn new() -> TlsSession {
        TlsSession {
            conn: None,
            // Allocated on first use: a half-open TCP connection (a SYN
            // flood) costs no TLS buffers.
            rx: Box::default(),
            rx_len: 0,
            tx: Vec::new(),
            tx_start: 0,
            tx_end: 0,
            phase: Phase::Handshaking,
            failure: None,
            hello_malformed: false,
            info: None,
            sni: None,
            read_blocked: false,
            peer_closed: false,
            close_wanted: false,
            close_sent: false,
        }
    }

    /// A client session to `name` with `cfg` (the load generator's side):
    /// its first [`process_client`](Self::process_client) queues the
    /// ClientHello in [`outgoing`](Self::outgoing).
    pub fn client(
        cfg: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<TlsSession, Failure> {
        let mut s = TlsSession::new();
        s.connect(cfg, name)?;
        Ok(s)
    }

    /// After [`reset`](Self::reset): a new client connection in the same
    /// buffers.
    pub fn connect(
        &mut self,
        cfg: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<(), Failure> {
        let c = UnbufferedClientConnection::new(cfg, name).map_err(|e| Failure::of(&e, true))?;
        self.conn = Some(Conn::Client(Box::new(c)));
        if self.rx.len() < RX_CAP {
            self.rx = vec![0; RX_CAP].into_boxed_slice();
        }
        Ok(())
    }

    /// Runs a client session ([`client`](Self::client)) as far as the
    /// input, `plain` and the transmit buffer allow.
    pub fn process_client(&mut self, plain: &mut dyn Plaintext, stats: &mut TlsStats) -> Progress {
        let mut p = Progress::default();
        if matches!(self.phase, Phase::Failed | Phase::Closed)
            || self.close_sent && self.peer_closed
        {
            return p;
        }
        self.run(plain, stats, &mut p);
        p
    }

    /// Forgets the connection, keeps the buffers (reuse from a free list).
    pub fn reset(&mut self) {
        self.conn = None;
        self.rx_len = 0;
        self.tx_start = 0;
        self.tx_end = 0;
        self.phase = Phase::Handshaking;
        self.failure = None;
        self.hello_malformed = false;
        self.info = None;
        self.sni = None;
        self.read_blocked = false;
        self.peer_closed = false;
        self.close_wanted = false;
        self.close_sent = false;
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Still handshaking?
    pub fn is_handshaking(&self) -> bool {
        self.phase == Phase::Handshaking
    }

    /// Why it failed.
    pub fn failure(&self) -> Option<Failure> {
        self.failure
    }

    /// What the handshake negotiated, once done.
    pub fn handshake(&self) -> Option<&HandshakeInfo> {
        self.info.as_ref()
    }

    /// The client sent close_notify.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// A close_notify has been queued in [`outgoing`](Self::outgoing).
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// Gives back the record buffers while nothing is queued either way
    /// (no TLS bytes unprocessed or unsent): a session at rest then holds
    /// rustls' state only. [`receive`](Self::receive) and the record
    /// writers allocate again if [`unpark`](Self::unpark) did not give
    /// them memory first.
    pub fn park(&mut self) -> Option<TlsBuffers> {
        if !self.at_rest() {
            return None;
        }
        self.tx_start = 0;
        self.tx_end = 0;
        let b = TlsBuffers {
            rx: std::mem::take(&mut self.rx),
            tx: std::mem::take(&mut self.tx),
        };
        (!b.is_empty()).then_some(b)
    }

    /// The record buffers, for another session (what they hold is not
    /// read again).
    pub fn into_buffers(mut self) -> TlsBuffers {
        TlsBuffers {
            rx: std::mem::take(&mut self.rx),
            tx: std::mem::take(&mut self.tx),
        }
    }

    /// No record bytes pending either way: [`park`](Self::park) would give
    /// the buffers back.
    pub fn at_rest(&self) -> bool {
        self.rx_len == 0 && self.tx_start == self.tx_end && !self.read_blocked
    }

    /// Memory for the record buffers (`bufs`' when it fits; else they are
    /// allocated when needed). Only fills what is not there.
    pub fn unpark(&mut self, bufs: TlsBuffers) {
        if self.rx.is_empty() && bufs.rx.len() == RX_CAP {
            self.rx = bufs.rx;
        }
        if self.tx.is_empty() && !bufs.tx.is_empty() {
            self.tx = bufs.tx;
        }
    }

    /// Whether a record buffer has no memory now (parked, or not yet
    /// allocated).
    pub fn is_parked(&self) -> bool {
        self.rx.is_empty() || self.tx.is_empty()
    }

    /// Bytes [`receive`](Self::receive) can take now.
    pub fn rx_room(&self) -> usize {
        RX_CAP - self.rx_len
    }

    /// TLS bytes from the client not yet processed.
    pub fn rx_pending(&self) -> usize {
        self.rx_len
    }

    /// Appends TLS bytes from the client; returns how many it took.
    pub fn receive(&mut self, data: &[u8]) -> usize {
        if data.is_empty() {
            return 0;
        }
        if self.rx.len() < RX_CAP {
            self.rx = vec![0; RX_CAP].into_boxed_slice();
        }
        let n = data.len().min(self.rx_room());
        self.rx[self.rx_len..self.rx_len + n].copy_from_slice(&data[..n]);
        self.rx_len += n;
        n
    }

    /// TLS bytes to send to the client.
    pub fn outgoing(&self) -> &[u8] {
        &self.tx[self.tx_start..self.tx_end]
    }

    /// `n` bytes of [`outgoing`](Self::outgoing) were sent.
    pub fn consume_outgoing(&mut self, n: usize) {
        self.tx_start = (self.tx_start + n).min(self.tx_end);
        if self.tx_start == self.tx_end {
            self.tx_start = 0;
            self.tx_end = 0;
        }
    }

    /// Spare room at the end of `tx` for `want` bytes (compacting sent
    /// bytes away, then growing up to [`TX_MAX`]); false when it cannot.
    fn tx_room(&mut self, want: usize) -> bool {
        if self.tx.len() - self.tx_end >= want {
            return true;
        }
        if self.tx_start > 0 {
            self.tx.copy_within(self.tx_start..self.tx_end, 0);
            self.tx_end -= self.tx_start;
            self.tx_start = 0;
        }
        if self.tx.len() - self.tx_end >= want {
            return true;
        }
        if self.tx_end + want > TX_MAX {
            return false;
        }
        let grow = (self.tx_end + want)
            .max(2 * self.tx.len())
            .clamp(TX_INITIAL, TX_MAX);
        self.tx.resize(grow, 0);
        true
    }

    /// Queues a close_notify (sent by the next [`process`](Self::process)
    /// once pending plaintext is encrypted).
    pub fn close(&mut self) {
        self.close_wanted = true;
    }

    /// Fails the connection from outside (e.g. handshake timeout).
    pub fn abort(&mut self, why: Failure, stats: &mut TlsStats) {
        if self.failure.is_none() {
            self.failure = Some(why);
            self.phase = Phase::Failed;
            stats.count_failure(why);
        }
    }

    fn discard(&mut self, n: usize) {
        let n = n.min(self.rx_len);
        if n > 0 {
            self.rx.copy_within(n..self.rx_len, 0);
            self.rx_len -= n;
        }
    }

    /// Runs the connection as far as the input, the plaintext adapter and
    /// the transmit buffer allow.
    pub fn process(
        &mut self,
        ctx: &TlsContext,
        scratch: &mut HelloAssembler,
        plain: &mut dyn Plaintext,
        stats: &mut TlsStats,
    ) -> Progress {
        let mut p = Progress::default();
        if matches!(self.phase, Phase::Failed | Phase::Closed) {
            return p;
        }
        if self.close_sent {
            // Our close_notify is out (the backend finished): nothing the
            // client sends can go anywhere, and rustls must not see it —
            // any error after a close_notify trips its `sent_fatal_alert`
            // assertion (rustls #959; a remote client could abort a debug
            // build with one byte). Input is dropped; the client's FIN
            // ends the connection.
            self.rx_len = 0;
            return p;
        }
        if self.conn.is_none() {
            if self.rx_len == 0 {
                return p;
            }
            scratch.reset();
            let hello = match scratch.push(&self.rx[..self.rx_len]) {
                Ok(None) if self.rx_room() > 0 => return p,
                Ok(None) => {
                    self.hello_malformed = true;
                    None
                }
                Ok(Some(_)) => match scratch.message().map(ClientHello::parse) {
                    Some(Ok(h)) => {
                        self.sni = h
                            .sni
                            .and_then(|n| core::str::from_utf8(n).ok())
                            .map(str::to_ascii_lowercase);
                        Some(h)
                    }
                    _ => {
                        self.hello_malformed = true;
                        None
                    }
                },
                Err(_) => {
                    self.hello_malformed = true;
                    None
                }
            };
            let cfg = ctx.config_for(hello.as_ref()).clone();
            match UnbufferedServerConnection::new(cfg) {
                Ok(c) => self.conn = Some(Conn::Server(Box::new(c))),
                Err(e) => {
                    self.fail(Failure::of(&e, true), stats, &mut p);
                    return p;
                }
            }
        }
        self.run(plain, stats, &mut p);
        p
    }

    /// After an error rustls may have queued an alert: encode it into `tx`.
    /// rustls hands out queued records before it looks at any input, so it
    /// is only called while something is queued (a call with nothing queued
    /// would deframe the bad input again); the receive buffer is passed as
    /// it is (with every discard applied): the handshake deframer may hold
    /// offsets into it.
    fn drain_alert<C: Unbuffered>(&mut self, conn: &mut C) {
        let mut rx = core::mem::take(&mut self.rx);
        for _ in 0..4 {
            if !conn.common().wants_write() {
                break;
            }
            let st = conn.records(&mut rx[..self.rx_len]);
            let done = match st.state {
                Ok(ConnectionState::EncodeTlsData(mut enc)) if self.tx_room(256) => {
                    match enc.encode(&mut self.tx[self.tx_end..]) {
                        Ok(n) => {
                            self.tx_end += n;
                            false
                        }
                        Err(_) => true,
                    }
                }
                _ => true,
            };
            if done {
                break;
            }
        }
        self.rx = rx;
    }

    fn fail(&mut self, f: Failure, stats: &mut TlsStats, p: &mut Progress) {
        let f = if self.hello_malformed && self.phase == Phase::Handshaking {
            Failure::MalformedHello
        } else {
            f
        };
        self.failure = Some(f);
        self.phase = Phase::Failed;
        stats.count_failure(f);
        p.failed = true;
    }

    fn run(&mut self, plain: &mut dyn Plaintext, stats: &mut TlsStats, p: &mut Progress) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        match &mut conn {
            Conn::Server(c) => self.steps(&mut **c, plain, stats, p),
            Conn::Client(c) => self.steps(&mut **c, plain, stats, p),
        }
        self.conn = Some(conn);
    }

    fn steps<C: Unbuffered>(
        &mut self,
        conn: &mut C,
        plain: &mut dyn Plaintext,
        stats: &mut TlsStats,
        p: &mut Progress,
    ) {
        for _ in 0..MAX_STEPS {
            // Decrypt only while the backend leg can take a whole record;
            // otherwise show rustls no input, so it reaches WriteTraffic.
            // Only right after rustls stopped on an application-data record
            // (so its handshake deframer holds nothing: RFC 8446 §5.1
            // forbids interleaving) may the input be hidden from it.
            let feed = if self.read_blocked && plain.room() < MAX_PLAINTEXT {
                0
            } else {
                self.read_blocked = false;
                self.rx_len
            };
            let status = conn.records(&mut self.rx[..feed]);
            let mut discard = status.discard;
            let state = match status.state {
                Ok(s) => s,
                Err(e) => {
                    let handshaking = self.phase == Phase::Handshaking;
                    // `discard` is relative to the buffer passed in.
                    self.discard(discard);
                    self.drain_alert(conn);
                    let f = Failure::of(&e, handshaking);
                    self.fail(f, stats, p);
                    return;
                }
            };
            let mut stop = false;
            match state {
                ConnectionState::EncodeTlsData(mut enc) => {
                    let mut want = 4096;
                    loop {
                        if !self.tx_room(want) {
                            self.fail(Failure::BufferOverflow, stats, p);
                            return;
                        }
                        match enc.encode(&mut self.tx[self.tx_end..]) {
                            Ok(n) => {
                                self.tx_end += n;
                                break;
                            }
                            Err(EncodeError::InsufficientSize(s)) if s.required_size > want => {
                                want = s.required_size;
                            }
                            Err(_) => {
                                self.fail(Failure::BufferOverflow, stats, p);
                                return;
                            }
                        }
                    }
                }
                ConnectionState::TransmitTlsData(t) => {
                    // Everything encoded is in `tx`, sent in order by the
                    // caller: for rustls it is as good as transmitted.
                    t.done();
                }
                ConnectionState::BlockedHandshake => stop = true,
                ConnectionState::ReadTraffic(mut rt) => loop {
                    match rt.peek_len() {
                        Some(n) if n.get() > plain.room() => {
                            self.read_blocked = true;
                            break;
                        }
                        None => break,
                        Some(_) => {}
                    }
                    match rt.next_record() {
                        Some(Ok(rec)) => {
                            discard += rec.discard;
                            plain.put(rec.payload);
                            stats.bytes_in += rec.payload.len() as u64;
                        }
                        Some(Err(e)) => {
                            drop(rt);
                            self.discard(discard);
                            self.drain_alert(conn);
                            self.fail(Failure::of(&e, false), stats, p);
                            return;
                        }
                        None => break,
                    }
                },
                ConnectionState::ReadEarlyData(_) => {
                    // Early data is never enabled (max_early_data_size = 0).
                    stop = true;
                }
                ConnectionState::PeerClosed => {
                    if !self.peer_closed {
                        self.peer_closed = true;
                        p.peer_closed = true;
                        stats.close_notify += 1;
                    }
                }
                ConnectionState::Closed => {
                    if !self.peer_closed {
                        self.peer_closed = true;
                        p.peer_closed = true;
                        stats.close_notify += 1;
                    }
                    self.phase = Phase::Closed;
                    stop = true;
                }
                ConnectionState::WriteTraffic(mut wt) => {
                    loop {
                        let data = plain.pending();
                        if data.is_empty() {
                            break;
                        }
                        let chunk = data.len().min(MAX_PLAINTEXT);
                        if !self.tx_room(chunk + RECORD_OVERHEAD) {
                            break;
                        }
                        match wt.encrypt(&data[..chunk], &mut self.tx[self.tx_end..]) {
                            Ok(n) => {
                                self.tx_end += n;
                                plain.consume(chunk);
                                stats.bytes_out += chunk as u64;
                            }
                            Err(EncryptError::InsufficientSize(_)) => break,
                            Err(_) => {
                                self.fail(Failure::Other, stats, p);
                                return;
                            }
                        }
                    }
                    if self.close_wanted
                        && !self.close_sent
                        && plain.pending().is_empty()
                        && self.tx_room(64)
                    {
                        if let Ok(n) = wt.queue_close_notify(&mut self.tx[self.tx_end..]) {
                            self.tx_end += n;
                            self.close_sent = true;
                        }
                    }
                    stop = true;
                }
                _ => stop = true,
            }
            self.discard(discard);
            if self.phase == Phase::Handshaking && !conn.common().is_handshaking() {
                self.phase = Phase::Established;
                let info = handshake_info(conn.common(), self.sni.take());
                stats.count_handshake(&info);
                self.info = Some(info);
                p.handshake_done = true;
            }
            if stop {
                return;
            }
        }
    }
}

fn handshake_info(conn: &CommonState, sni: Option<String>) -> HandshakeInfo {
    let kind = conn.handshake_kind();
    HandshakeInfo {
        version: conn
            .protocol_version()
            .unwrap_or(rustls::ProtocolVersion::Unknown(0)),
        suite: conn
            .negotiated_cipher_suite()
            .map(|s| s.suite())
            .unwrap_or(rustls::CipherSuite::Unknown(0)),
        group: conn
            .negotiated_key_exchange_group()
            .and_then(|g| Group::from_named(g.name())),
        resumed: kind == Some(HandshakeKind::Resumed),
        hello_retry: kind == Some(HandshakeKind::FullWithHelloRetryRequest),
        sni,
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
    }
}
