//! TLS hello readers for dispatch decisions: reassemble the first handshake
//! message from TLS records as they arrive in TCP segments, and read the
//! ClientHello (SNI, ALPN, legacy session ID, TLS 1.2 session ticket,
//! TLS 1.3 pre-shared-key identities, offered versions and key-share
//! groups) or the ServerHello (echoed session ID, selected version, cipher,
//! selected PSK identity, key-share group, HelloRetryRequest).
//!
//! rustls does not expose these on the server side, and a load balancer
//! in pass-through mode must read them without terminating TLS. A
//! ClientHello with a post-quantum key share (X25519MLKEM768: a 1216-byte
//! share) is larger than one TCP segment, hence the reassembler, which is
//! bounded ([`MAX_HANDSHAKE`]) and never grows its buffer.
//!
//! **No-panic contract:** every reader returns a [`TlsError`] on malformed
//! input; all lengths are checked against the bytes present.

use arrayvec::ArrayVec;

/// Largest first handshake message accepted (a ClientHello is far smaller;
/// a PQ one is ~1.8 KiB).
pub const MAX_HANDSHAKE: usize = 16 * 1024;
/// Largest TLS record payload (2^14 plus the TLS 1.2 expansion allowance).
pub const MAX_RECORD: usize = 16 * 1024 + 2048;
/// Record content type: handshake.
pub const CONTENT_HANDSHAKE: u8 = 22;
/// Handshake type: ClientHello.
pub const CLIENT_HELLO: u8 = 1;
/// Handshake type: ServerHello (also HelloRetryRequest).
pub const SERVER_HELLO: u8 = 2;
/// TLS 1.3's version number in `supported_versions`.
pub const TLS13: u16 = 0x0304;
/// Items kept per list (ALPN protocols, PSK identities, key-share groups).
pub const MAX_ITEMS: usize = 8;

/// The ServerHello random that marks a HelloRetryRequest (RFC 8446 §4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

mod ext {
    pub const SERVER_NAME: u16 = 0;
    pub const ALPN: u16 = 16;
    pub const SESSION_TICKET: u16 = 35;
    pub const PRE_SHARED_KEY: u16 = 41;
    pub const SUPPORTED_VERSIONS: u16 = 43;
    pub const KEY_SHARE: u16 = 51;
}

/// Why bytes are not a usable hello.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum TlsError {
    /// The record is not a handshake record (e.g. plain HTTP, SSLv2).
    NotHandshake,
    /// Record header with a bad version or length.
    BadRecord,
    /// The handshake message would exceed [`MAX_HANDSHAKE`].
    TooLong,
    /// The message ends before a length it declares.
    Truncated,
    /// The first handshake message is not the expected hello.
    WrongMessage,
    /// A length field disagrees with its contents.
    BadLength,
    /// An extension is malformed.
    BadExtension,
    /// The same extension appears twice (RFC 8446 §4.2).
    DuplicateExtension,
}

impl TlsError {
    /// Stable snake_case name (counter names).
    pub const fn as_str(&self) -> &'static str {
        match self {
            TlsError::NotHandshake => "tls_not_handshake",
            TlsError::BadRecord => "tls_bad_record",
            TlsError::TooLong => "tls_too_long",
            TlsError::Truncated => "tls_truncated",
            TlsError::WrongMessage => "tls_wrong_message",
            TlsError::BadLength => "tls_bad_length",
            TlsError::BadExtension => "tls_bad_extension",
            TlsError::DuplicateExtension => "tls_duplicate_extension",
        }
    }
}

impl core::fmt::Display for TlsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the assembler is in the byte stream.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    /// Reading a 5-byte record header (`have` bytes so far).
    Header { have: usize },
    /// Inside a handshake record with `left` payload bytes to go.
    Body { left: usize },
    /// The message is complete.
    Done,
    /// Failed; every later push returns the error.
    Failed(TlsError),
}

/// Reassembles the first handshake message of a TLS byte stream.
///
/// Feed the stream in order with [`push`](Self::push) (segment payloads as
/// they arrive); it answers `Ok(None)` until the message is complete, then
/// `Ok(Some(msg_len))`, and [`message`](Self::message) returns it. The
/// buffer is allocated once in [`new`](Self::new).
#[derive(Clone, Debug)]
pub struct HelloAssembler {
    hdr: [u8; 5],
    state: State,
    msg: Vec<u8>,
    /// Stream bytes consumed so far.
    consumed: usize,
}

impl Default for HelloAssembler {
    fn default() -> Self {
        Self::new()
    }
}

impl HelloAssembler {
    /// An empty assembler (allocates [`MAX_HANDSHAKE`] + 4 bytes once).
    pub fn new() -> Self {
        HelloAssembler {
            hdr: [0; 5],
            state: State::Header { have: 0 },
            msg: Vec::with_capacity(MAX_HANDSHAKE + 4),
            consumed: 0,
        }
    }

    /// Forget everything (reuse for another connection).
    pub fn reset(&mut self) {
        self.state = State::Header { have: 0 };
        self.msg.clear();
        self.consumed = 0;
    }

    /// Stream bytes consumed so far (the message may end before the data
    /// pushed last: bytes after it are not consumed).
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// The complete handshake message (type, 3-byte length, body), once
    /// [`push`](Self::push) returned `Some`.
    pub fn message(&self) -> Option<&[u8]> {
        (self.state == State::Done).then_some(&self.msg[..])
    }

    fn fail(&mut self, e: TlsError) -> Result<Option<usize>, TlsError> {
        self.state = State::Failed(e);
        Err(e)
    }

    /// The declared total length of the message, once its 4-byte header is in.
    fn target(&self) -> Option<usize> {
        let h = self.msg.get(..4)?;
        Some(4 + (usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3])))
    }

    /// Consume the next bytes of the stream.
    pub fn push(&mut self, mut data: &[u8]) -> Result<Option<usize>, TlsError> {
        loop {
            match self.state {
                State::Failed(e) => return Err(e),
                State::Done => return Ok(Some(self.msg.len())),
                State::Header { have } => {
                    if data.is_empty() {
                        return Ok(None);
                    }
                    let n = (5 - have).min(data.len());
                    self.hdr[have..have + n].copy_from_slice(&data[..n]);
                    data = &data[n..];
                    self.consumed += n;
                    if have + n < 5 {
                        self.state = State::Header { have: have + n };
                        return Ok(None);
                    }
                    if self.hdr[0] != CONTENT_HANDSHAKE {
                        return self.fail(TlsError::NotHandshake);
                    }
                    let len = usize::from(u16::from_be_bytes([self.hdr[3], self.hdr[4]]));
                    if self.hdr[1] != 3 || len == 0 || len > MAX_RECORD {
                        return self.fail(TlsError::BadRecord);
                    }
                    self.state = State::Body { left: len };
                }
                State::Body { left } => {
                    if data.is_empty() {
                        return Ok(None);
                    }
                    // Copy no further than the message's end once known.
                    let want = match self.target() {
                        Some(t) => t.saturating_sub(self.msg.len()),
                        None => 4 - self.msg.len(),
                    };
                    let n = left.min(data.len()).min(want);
                    self.msg.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    self.consumed += n;
                    let left = left - n;
                    if let Some(t) = self.target() {
                        if t > MAX_HANDSHAKE + 4 {
                            return self.fail(TlsError::TooLong);
                        }
                        if self.msg.len() >= t {
                            self.state = State::Done;
                            return Ok(Some(t));
                        }
                    }
                    self.state = if left == 0 {
                        State::Header { have: 0 }
                    } else {
                        State::Body { left }
                    };
                }
            }
        }
    }
}

/// A bounds-checked reader over a byte slice.
#[derive(Clone, Copy)]
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Reader { b }
    }
    fn is_empty(&self) -> bool {
        self.b.is_empty()
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], TlsError> {
        if self.b.len() < n {
            return Err(TlsError::Truncated);
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8, TlsError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, TlsError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Result<usize, TlsError> {
        let b = self.take(3)?;
        Ok(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }
    /// A vector with a 1-byte length.
    fn vec8(&mut self) -> Result<&'a [u8], TlsError> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }
    /// A vector with a 2-byte length.
    fn vec16(&mut self) -> Result<&'a [u8], TlsError> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

/// Split a handshake message into (type, body), checking its length.
fn handshake(msg: &[u8]) -> Result<(u8, &[u8]), TlsError> {
    let mut r = Reader::new(msg);
    let t = r.u8()?;
    let len = r.u24()?;
    let body = r.take(len)?;
    Ok((t, body))
}

/// Walk an extensions block, rejecting duplicates; calls `f(type, data)`.
fn extensions<'a>(
    block: &'a [u8],
    mut f: impl FnMut(u16, &'a [u8]) -> Result<(), TlsError>,
) -> Result<(), TlsError> {
    let mut seen: ArrayVec<u16, 64> = ArrayVec::new();
    let mut r = Reader::new(block);
    while !r.is_empty() {
        let t = r.u16().map_err(|_| TlsError::BadExtension)?;
        let data = r.vec16().map_err(|_| TlsError::BadExtension)?;
        if seen.contains(&t) {
            return Err(TlsError::DuplicateExtension);
        }
        // Past 64 distinct types duplicates go unnoticed; the reader stays bounded.
        let _ = seen.try_push(t);
        f(t, data)?;
    }
    Ok(())
}

/// What a ClientHello offers, borrowed from the message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello<'a> {
    /// `legacy_version` (0x0303 for TLS 1.2 and 1.3).
    pub legacy_version: u16,
    /// The client random.
    pub random: &'a [u8],
    /// `legacy_session_id` (TLS 1.2 resumption; TLS 1.3 clients send random bytes).
    pub session_id: &'a [u8],
    /// Cipher suites, 2 bytes each.
    pub cipher_suites: &'a [u8],
    /// The first `host_name` of `server_name`.
    pub sni: Option<&'a [u8]>,
    /// ALPN protocol names, in order (the first [`MAX_ITEMS`]).
    pub alpn: ArrayVec<&'a [u8], MAX_ITEMS>,
    /// `session_ticket` extension (TLS 1.2): `Some(&[])` asks for a ticket,
    /// non-empty presents one.
    pub session_ticket: Option<&'a [u8]>,
    /// `pre_shared_key` identities (TLS 1.3), in order (the first [`MAX_ITEMS`]).
    pub psk_identities: ArrayVec<&'a [u8], MAX_ITEMS>,
    /// `supported_versions` lists TLS 1.3.
    pub offers_tls13: bool,
    /// Groups of the `key_share` entries, in order (the first [`MAX_ITEMS`]).
    pub key_share_groups: ArrayVec<u16, MAX_ITEMS>,
}

impl<'a> ClientHello<'a> {
    /// Read a ClientHello handshake message (as [`HelloAssembler::message`]
    /// returns it).
    pub fn parse(msg: &'a [u8]) -> Result<ClientHello<'a>, TlsError> {
        let (t, body) = handshake(msg)?;
        if t != CLIENT_HELLO {
            return Err(TlsError::WrongMessage);
        }
        let mut r = Reader::new(body);
        let mut ch = ClientHello {
            legacy_version: r.u16()?,
            random: r.take(32)?,
            ..Default::default()
        };
        ch.session_id = r.vec8()?;
        if ch.session_id.len() > 32 {
            return Err(TlsError::BadLength);
        }
        ch.cipher_suites = r.vec16()?;
        if ch.cipher_suites.len() % 2 != 0 || ch.cipher_suites.is_empty() {
            return Err(TlsError::BadLength);
        }
        let _compression = r.vec8()?;
        if r.is_empty() {
            return Ok(ch); // no extensions (old TLS 1.2 clients)
        }
        let block = r.vec16()?;
        if !r.is_empty() {
            return Err(TlsError::BadLength);
        }
        extensions(block, |t, data| {
            let bad = |_| TlsError::BadExtension;
            let mut e = Reader::new(data);
            match t {
                ext::SERVER_NAME => {
                    let mut list = Reader::new(e.vec16().map_err(bad)?);
                    while !list.is_empty() {
                        let kind = list.u8().map_err(bad)?;
                        let name = list.vec16().map_err(bad)?;
                        if kind == 0 && ch.sni.is_none() {
                            ch.sni = Some(name);
                        }
                    }
                }
                ext::ALPN => {
                    let mut list = Reader::new(e.vec16().map_err(bad)?);
                    while !list.is_empty() {
                        let p = list.vec8().map_err(bad)?;
                        if p.is_empty() {
                            return Err(TlsError::BadExtension);
                        }
                        let _ = ch.alpn.try_push(p);
                    }
                }
                ext::SESSION_TICKET => ch.session_ticket = Some(data),
                ext::PRE_SHARED_KEY => {
                    let mut ids = Reader::new(e.vec16().map_err(bad)?);
                    while !ids.is_empty() {
                        let id = ids.vec16().map_err(bad)?;
                        let _age = ids.take(4).map_err(bad)?;
                        let _ = ch.psk_identities.try_push(id);
                    }
                    let _binders = e.vec16().map_err(bad)?;
                }
                ext::SUPPORTED_VERSIONS => {
                    let list = e.vec8().map_err(bad)?;
                    if list.len() % 2 != 0 {
                        return Err(TlsError::BadExtension);
                    }
                    ch.offers_tls13 = list.chunks_exact(2).any(|v| v == TLS13.to_be_bytes());
                }
                ext::KEY_SHARE => {
                    let mut list = Reader::new(e.vec16().map_err(bad)?);
                    while !list.is_empty() {
                        let g = list.u16().map_err(bad)?;
                        let _key = list.vec16().map_err(bad)?;
                        let _ = ch.key_share_groups.try_push(g);
                    }
                }
                _ => {}
            }
            Ok(())
        })?;
        Ok(ch)
    }
}

/// What a ServerHello (or HelloRetryRequest) answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerHello<'a> {
    /// `legacy_version`.
    pub legacy_version: u16,
    /// The session ID (TLS 1.2: equal to the client's = resumed; TLS 1.3:
    /// the client's echoed).
    pub session_id: &'a [u8],
    /// The chosen cipher suite.
    pub cipher_suite: u16,
    /// `supported_versions` (TLS 1.3 servers: 0x0304), if present.
    pub selected_version: Option<u16>,
    /// `pre_shared_key` (TLS 1.3): the index of the accepted identity.
    pub selected_psk: Option<u16>,
    /// `key_share`: the server's group (or, in an HRR, the group asked for).
    pub key_share_group: Option<u16>,
    /// This is a HelloRetryRequest.
    pub is_hrr: bool,
    /// The server sent an empty `session_ticket` extension (TLS 1.2: a new
    /// ticket will follow).
    pub will_send_ticket: bool,
}

impl<'a> ServerHello<'a> {
    /// Negotiated TLS 1.3.
    pub fn is_tls13(&self) -> bool {
        self.selected_version == Some(TLS13)
    }

    /// Read a ServerHello handshake message.
    pub fn parse(msg: &'a [u8]) -> Result<ServerHello<'a>, TlsError> {
        let (t, body) = handshake(msg)?;
        if t != SERVER_HELLO {
            return Err(TlsError::WrongMessage);
        }
        let mut r = Reader::new(body);
        let legacy_version = r.u16()?;
        let random = r.take(32)?;
        let mut sh = ServerHello {
            legacy_version,
            session_id: r.vec8()?,
            cipher_suite: r.u16()?,
            is_hrr: random == HRR_RANDOM,
            ..Default::default()
        };
        if sh.session_id.len() > 32 {
            return Err(TlsError::BadLength);
        }
        let _compression = r.u8()?;
        if r.is_empty() {
            return Ok(sh);
        }
        let block = r.vec16()?;
        if !r.is_empty() {
            return Err(TlsError::BadLength);
        }
        let hrr = sh.is_hrr;
        extensions(block, |t, data| {
            let bad = |_| TlsError::BadExtension;
            let mut e = Reader::new(data);
            match t {
                ext::SUPPORTED_VERSIONS => sh.selected_version = Some(e.u16().map_err(bad)?),
                ext::PRE_SHARED_KEY => sh.selected_psk = Some(e.u16().map_err(bad)?),
                ext::KEY_SHARE => {
                    sh.key_share_group = Some(e.u16().map_err(bad)?);
                    if !hrr {
                        let _key = e.vec16().map_err(bad)?;
                    }
                }
                ext::SESSION_TICKET => sh.will_send_ticket = data.is_empty(),
                _ => {}
            }
            Ok(())
        })?;
        Ok(sh)
    }
}

/// Feeds the first bytes of a TCP stream, held as segments, into `asm`
/// (reset first): `pieces` are `(sequence number, payload)` in any order,
/// possibly overlapping or repeated (retransmissions); `base` is the
/// sequence number of the stream's first byte. Bytes are taken in order
/// from `base` until a gap; the result is the assembler's
/// ([`HelloAssembler::push`]): `Ok(Some(len))` once the hello is whole,
/// `Ok(None)` while bytes are missing.
pub fn assemble_segments(
    asm: &mut HelloAssembler,
    base: u32,
    pieces: &[(u32, &[u8])],
) -> Result<Option<usize>, TlsError> {
    asm.reset();
    let mut next = base;
    let mut r = Ok(None);
    loop {
        // The piece covering `next` that reaches furthest.
        let best = pieces
            .iter()
            .filter_map(|&(seq, p)| {
                let off = next.wrapping_sub(seq) as usize;
                (off < p.len() && (next.wrapping_sub(seq) as i32) >= 0).then(|| &p[off..])
            })
            .max_by_key(|rest| rest.len());
        let Some(rest) = best else {
            return r;
        };
        r = asm.push(rest);
        if !matches!(r, Ok(None)) {
            return r;
        }
        next = next.wrapping_add(rest.len() as u32);
    }
}
