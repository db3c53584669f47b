//! HTTP/1.1 request stream rewriting: add `X-Forwarded-For` to every
//! request a client sends through a terminated TLS connection.
//!
//! [`XffInserter`] reads the client's plaintext byte stream in whatever
//! pieces it arrives and writes it on with one header line,
//! `X-Forwarded-For: <client address>`, after each request line. It
//! follows message framing (RFC 9112 §6: `Content-Length`, chunked
//! transfer coding, trailers) so that request bodies pass untouched and
//! pipelined requests each get the header. Anything it cannot follow — a
//! head longer than [`MAX_HEAD`], a malformed length or chunk size, an
//! `Upgrade` or `CONNECT` (the connection becomes a tunnel) — switches it
//! to pass-through for the rest of the connection: it never rewrites
//! bytes it does not understand, and never drops or reorders any.
//!
//! Per RFC 9110 §5.3 several `X-Forwarded-For` lines are equivalent to one
//! comma-joined list, so a header the client sent is kept as is and ours
//! adds the next hop.

/// Longest request head (request line + headers) followed, in bytes.
pub const MAX_HEAD: usize = 64 * 1024;
/// Longest single header line examined for framing headers.
const MAX_LINE: usize = 256;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    /// In the request line (`seen` bytes so far of the head).
    RequestLine,
    /// In the header block, at the start of a line.
    HeaderStart,
    /// In a header line.
    Header,
    /// After the head: `n` body bytes to pass.
    Body(u64),
    /// Chunked body: reading a chunk-size line.
    ChunkSize,
    /// Chunk data: `n` bytes, then CRLF.
    ChunkData(u64),
    /// The CRLF after chunk data (`left` bytes of it).
    ChunkEnd(u8),
    /// Trailer section after the last chunk, at the start of a line.
    TrailerStart,
    /// In a trailer line.
    Trailer,
    /// Everything passes unexamined.
    Passthrough,
}

/// Why the inserter stopped rewriting (see the module docs).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Passthrough {
    /// The head exceeded [`MAX_HEAD`].
    HeadTooLong,
    /// A bad `Content-Length` or chunk size.
    BadFraming,
    /// `Upgrade` or `CONNECT`: the stream is a tunnel now.
    Tunnel,
    /// A request line that is not `METHOD target HTTP/1.x`.
    NotHttp,
}

/// See the module docs.
#[derive(Clone, Debug)]
pub struct XffInserter {
    header: Vec<u8>,
    state: State,
    head_len: usize,
    line: [u8; MAX_LINE],
    line_len: usize,
    line_overflow: bool,
    content_length: Option<u64>,
    chunked: bool,
    tunnel: bool,
    chunk_size: u64,
    chunk_digits: bool,
    chunk_ext: bool,
    requests: u64,
    why: Option<Passthrough>,
}

impl XffInserter {
    /// An inserter adding `X-Forwarded-For: {client}`.
    pub fn new(client: impl Into<core::net::IpAddr>) -> XffInserter {
        let client: core::net::IpAddr = client.into();
        XffInserter {
            header: format!("X-Forwarded-For: {client}\r\n").into_bytes(),
            state: State::RequestLine,
            head_len: 0,
            line: [0; MAX_LINE],
            line_len: 0,
            line_overflow: false,
            content_length: None,
            chunked: false,
            tunnel: false,
            chunk_size: 0,
            chunk_digits: false,
            chunk_ext: false,
            requests: 0,
            why: None,
        }
    }

    /// Requests that got the header.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Why it went to pass-through, if it did.
    pub fn passthrough(&self) -> Option<Passthrough> {
        self.why
    }

    /// Most bytes one call can add: one header line per request that
    /// ends its request line in `data` (a request is at least 14 bytes:
    /// `M / HTTP/1.1\n\n`).
    pub fn max_growth(&self, data_len: usize) -> usize {
        (data_len / 14 + 1) * self.header.len()
    }

    fn stop(&mut self, why: Passthrough) {
        self.state = State::Passthrough;
        self.why = Some(why);
    }

    fn start_head(&mut self) {
        self.state = State::RequestLine;
        self.head_len = 0;
        self.content_length = None;
        self.chunked = false;
        self.tunnel = false;
        self.line_len = 0;
        self.line_overflow = false;
    }

    fn push_line(&mut self, b: u8) {
        if self.line_len < MAX_LINE {
            self.line[self.line_len] = b;
            self.line_len += 1;
        } else {
            self.line_overflow = true;
        }
    }

    /// A complete request line in `self.line` (without CRLF): is it
    /// `METHOD target HTTP/1.x`?
    fn request_line(&mut self) -> bool {
        let l = &self.line[..self.line_len];
        let ok = !self.line_overflow
            && l.len() >= 12
            && (l.ends_with(b" HTTP/1.1") || l.ends_with(b" HTTP/1.0"))
            && l[..l.len() - 9].contains(&b' ')
            && l[0].is_ascii_uppercase();
        if ok && l[..8].eq_ignore_ascii_case(b"CONNECT ") {
            self.tunnel = true;
        }
        ok
    }

    /// A complete header line in `self.line` (without CRLF).
    fn header_line(&mut self) -> Result<(), Passthrough> {
        if self.line_overflow {
            // Too long to be a framing header we care about; but a long
            // Content-Length or Transfer-Encoding would be hostile: only
            // those names matter, check the prefix we kept.
            let l = &self.line[..self.line_len];
            if starts_with_ci(l, b"content-length") || starts_with_ci(l, b"transfer-encoding") {
                return Err(Passthrough::BadFraming);
            }
            return Ok(());
        }
        let l = &self.line[..self.line_len];
        let Some(colon) = l.iter().position(|&c| c == b':') else {
            return Ok(());
        };
        let (name, value) = (&l[..colon], trim(&l[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_dec(value).ok_or(Passthrough::BadFraming)?;
            if self.content_length.is_some_and(|m| m != n) {
                return Err(Passthrough::BadFraming);
            }
            self.content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let v = value;
            let last = v.rsplit(|&c| c == b',').next().map(trim).unwrap_or(&[]);
            if last.eq_ignore_ascii_case(b"chunked") {
                self.chunked = true;
            } else {
                // A request body with a non-chunked final coding has no
                // length we can follow (RFC 9112 §6.3).
                return Err(Passthrough::BadFraming);
            }
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            self.tunnel = true;
        }
        Ok(())
    }

    /// Feeds the next bytes of the client's stream; `out` receives the
    /// rewritten stream (possibly in several pieces).
    pub fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(&[u8])) {
        let mut start = 0;
        let mut i = 0;
        while i < data.len() {
            match self.state {
                State::Passthrough => {
                    i = data.len();
                }
                State::Body(n) => {
                    let k = (n.min((data.len() - i) as u64)) as usize;
                    i += k;
                    self.state = if n - k as u64 == 0 {
                        self.next_message_or_tunnel();
                        self.state
                    } else {
                        State::Body(n - k as u64)
                    };
                }
                State::ChunkData(n) => {
                    let k = (n.min((data.len() - i) as u64)) as usize;
                    i += k;
                    self.state = if n - k as u64 == 0 {
                        State::ChunkEnd(2)
                    } else {
                        State::ChunkData(n - k as u64)
                    };
                }
                _ => {
                    let b = data[i];
                    i += 1;
                    if let Some(insert) = self.head_byte(b) {
                        if insert {
                            out(&data[start..i]);
                            out(&self.header);
                            start = i;
                            self.requests += 1;
                        }
                    }
                }
            }
        }
        if start < data.len() {
            out(&data[start..]);
        }
    }

    fn next_message_or_tunnel(&mut self) {
        if self.tunnel {
            self.stop(Passthrough::Tunnel);
        } else {
            self.start_head();
        }
    }

    /// One byte of a head, chunk-size line, chunk end or trailer. Returns
    /// `Some(true)` right after a request line's LF (insert there).
    fn head_byte(&mut self, b: u8) -> Option<bool> {
        if matches!(
            self.state,
            State::RequestLine | State::HeaderStart | State::Header
        ) {
            self.head_len += 1;
            if self.head_len > MAX_HEAD {
                self.stop(Passthrough::HeadTooLong);
                return None;
            }
        }
        match self.state {
            State::RequestLine => {
                if b == b'\n' {
                    if self.line_len == 0 {
                        // Tolerate empty lines before a request (RFC 9112 §2.2).
                        self.head_len = 0;
                        return None;
                    }
                    if !self.request_line() {
                        self.stop(Passthrough::NotHttp);
                        return None;
                    }
                    self.state = State::HeaderStart;
                    self.line_len = 0;
                    self.line_overflow = false;
                    return Some(true);
                }
                if b != b'\r' {
                    self.push_line(b);
                }
            }
            State::HeaderStart | State::Header => {
                if b == b'\n' {
                    if self.state == State::HeaderStart {
                        // End of the head.
                        self.end_of_head();
                    } else {
                        if let Err(e) = self.header_line() {
                            self.stop(e);
                            return None;
                        }
                        self.state = State::HeaderStart;
                        self.line_len = 0;
                        self.line_overflow = false;
                    }
                } else if b != b'\r' {
                    self.state = State::Header;
                    self.push_line(b);
                }
            }
            State::ChunkSize => {
                if b == b'\n' {
                    if !self.chunk_digits {
                        self.stop(Passthrough::BadFraming);
                        return None;
                    }
                    self.state = if self.chunk_size == 0 {
                        State::TrailerStart
                    } else {
                        State::ChunkData(self.chunk_size)
                    };
                    self.chunk_size = 0;
                    self.chunk_digits = false;
                    self.chunk_ext = false;
                } else if b == b'\r' || self.chunk_ext {
                } else if b == b';' || b == b' ' || b == b'\t' {
                    self.chunk_ext = true;
                } else if let Some(d) = (b as char).to_digit(16) {
                    if self.chunk_size > (u64::MAX >> 8) {
                        self.stop(Passthrough::BadFraming);
                        return None;
                    }
                    self.chunk_size = self.chunk_size * 16 + u64::from(d);
                    self.chunk_digits = true;
                } else {
                    self.stop(Passthrough::BadFraming);
                    return None;
                }
            }
            State::ChunkEnd(left) => {
                let want = if left == 2 { b'\r' } else { b'\n' };
                if b != want {
                    self.stop(Passthrough::BadFraming);
                    return None;
                }
                self.state = if left == 2 {
                    State::ChunkEnd(1)
                } else {
                    State::ChunkSize
                };
            }
            State::TrailerStart | State::Trailer => {
                if b == b'\n' {
                    if self.state == State::TrailerStart {
                        self.next_message_or_tunnel();
                    } else {
                        self.state = State::TrailerStart;
                    }
                } else if b != b'\r' {
                    self.state = State::Trailer;
                }
            }
            State::Body(_) | State::ChunkData(_) | State::Passthrough => {}
        }
        None
    }

    fn end_of_head(&mut self) {
        if self.chunked {
            self.state = State::ChunkSize;
            self.chunk_size = 0;
            self.chunk_digits = false;
            self.chunk_ext = false;
        } else {
            match self.content_length {
                Some(n) if n > 0 => self.state = State::Body(n),
                _ => self.next_message_or_tunnel(),
            }
        }
    }
}

fn starts_with_ci(l: &[u8], p: &[u8]) -> bool {
    l.len() >= p.len() && l[..p.len()].eq_ignore_ascii_case(p)
}

fn trim(v: &[u8]) -> &[u8] {
    let s = v
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(v.len());
    let e = v
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |e| e + 1);
    &v[s..e.max(s)]
}

fn parse_dec(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    v.iter().try_fold(0u64, |a, &c| {
        c.is_ascii_digit().then(|| a * 10 + u64::from(c - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    fn run(input: &[u8], chunk: usize) -> (Vec<u8>, XffInserter) {
        let mut x = XffInserter::new(Ipv4Addr::new(192, 0, 2, 7));
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            let before = out.len();
            x.feed(piece, &mut |b| out.extend_from_slice(b));
            assert!(out.len() - before <= piece.len() + x.max_growth(piece.len()));
        }
        (out, x)
    }

    const XFF: &str = "X-Forwarded-For: 192.0.2.7\r\n";

    #[test]
    fn pipelined_requests_with_bodies() {
        let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\
POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nGET / HTTP\
PUT /c HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n\
GET /last HTTP/1.1\r\n\r\n";
        for chunk in [1, 2, 3, 7, 64, 4096] {
            let (out, x) = run(input, chunk);
            let want = format!(
                "GET / HTTP/1.1\r\n{XFF}Host: a\r\n\r\n\
POST /up HTTP/1.1\r\n{XFF}Host: a\r\nContent-Length: 11\r\n\r\nGET / HTTP\
PUT /c HTTP/1.1\r\n{XFF}Transfer-Encoding: gzip, chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n\
GET /last HTTP/1.1\r\n{XFF}\r\n"
            );
            assert_eq!(String::from_utf8_lossy(&out), want, "chunk {chunk}");
            assert_eq!(x.requests(), 4);
            assert_eq!(x.passthrough(), None);
        }
    }

    #[test]
    fn upgrade_and_connect_become_tunnels() {
        let input =
            b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET /not-a-request HTTP/1.1\r\n\r\n";
        let (out, x) = run(input, 5);
        assert_eq!(x.requests(), 1);
        assert_eq!(x.passthrough(), Some(Passthrough::Tunnel));
        assert!(String::from_utf8_lossy(&out).ends_with("GET /not-a-request HTTP/1.1\r\n\r\n"));
        let (_, x) = run(b"CONNECT a:443 HTTP/1.1\r\n\r\nxx\r\n\r\n", 3);
        assert_eq!(
            (x.requests(), x.passthrough()),
            (1, Some(Passthrough::Tunnel))
        );
    }

    #[test]
    fn bad_framing_passes_through_untouched() {
        for input in [
            &b"POST / HTTP/1.1\r\nContent-Length: 12x\r\n\r\nGET / HTTP/1.1\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET / HTTP/1.1\r\n\r\n",
        ] {
            let (out, x) = run(input, 4);
            assert_eq!(x.passthrough(), Some(Passthrough::BadFraming));
            // Only the first request line got the header; nothing lost.
            let s = String::from_utf8_lossy(&out).replacen(XFF, "", 1);
            assert_eq!(s.as_bytes(), input);
        }
    }

    #[test]
    fn non_http_is_left_alone() {
        for input in [
            &b"garbage\r\nGET / HTTP/1.1\r\n\r\n"[..],
            b"\x16\x03\x01\x02\x00\n",
            b"get / HTTP/1.1\r\n",
        ] {
            let (out, x) = run(input, 3);
            assert_eq!(
                (x.requests(), x.passthrough()),
                (0, Some(Passthrough::NotHttp))
            );
            assert_eq!(out, input);
        }
    }

    #[test]
    fn endless_head_stops_rewriting() {
        let mut input = b"GET / HTTP/1.1\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        input.extend_from_slice(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n");
        let (out, x) = run(&input, 1000);
        assert_eq!(x.passthrough(), Some(Passthrough::HeadTooLong));
        assert_eq!(out.len(), input.len() + XFF.len());
    }

    proptest! {
        /// Whatever the bytes and the segmentation: removing the inserted
        /// lines gives back the input exactly, and the output does not
        /// depend on how the input was cut.
        #[test]
        fn lossless_and_segmentation_independent(
            parts in proptest::collection::vec(prop_oneof![
                Just(b"GET / HTTP/1.1\r\n".to_vec()),
                Just(b"Content-Length: 3\r\n".to_vec()),
                Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
                Just(b"\r\n".to_vec()),
                Just(b"3\r\nabc\r\n0\r\n\r\n".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..20),
            ], 0..30),
            a in 1usize..50,
            b in 1usize..50,
        ) {
            let input: Vec<u8> = parts.concat();
            let (o1, x1) = run(&input, a);
            let (o2, _) = run(&input, b);
            prop_assert_eq!(&o1, &o2);
            let s = String::from_utf8_lossy(&o1).into_owned();
            let restored = s.replace(XFF, "");
            prop_assert_eq!(restored.len() + XFF.len() * x1.requests() as usize, s.len());
            prop_assert_eq!(restored.into_bytes(), String::from_utf8_lossy(&input).replace(XFF, "").into_bytes());
        }
    }
}
