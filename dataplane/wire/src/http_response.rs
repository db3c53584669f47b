//! HTTP/1.1 responses read off a client connection (RFC 9112), for a load
//! generator's clients: where each response ends, its status, how long its
//! body was, and whether the server keeps the connection.
//!
//! [`ResponseReader`] takes the byte stream in whatever pieces it arrives,
//! holds no buffer beyond one short header line, and never allocates. It
//! follows message framing (RFC 9112 §6): `Content-Length`, the chunked
//! transfer coding (chunk extensions skipped, trailers read), a body
//! delimited by the connection's close, no body for 1xx / 204 / 304 or the
//! answer to a `HEAD`; interim 1xx responses (`100 Continue`) are skipped.
//! `Connection: close` (or an HTTP/1.0 response without `keep-alive`)
//! tells the caller the connection ends after this response.
//!
//! Anything it cannot follow is an error ([`ResponseError`]) — the caller
//! counts a bad response and closes — never a panic (fuzzed:
//! `http_response`). Bodies are counted, not kept; the caller may ask for
//! them ([`ResponseReader::feed`] reports the body bytes of each piece).

/// Longest response head (status line + headers) accepted, in bytes.
pub const MAX_HEAD: usize = 64 * 1024;
/// Bytes of a header line kept for examination (framing headers are short;
/// longer lines of other headers are skipped, not kept).
const LINE: usize = 128;

/// Why a response could not be read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// Not `HTTP/1.x SSS …` (or a status outside 100..=999).
    BadStatusLine,
    /// A header line without a colon, or with whitespace before it.
    BadHeader,
    /// The head exceeded [`MAX_HEAD`].
    HeadTooLong,
    /// A bad or conflicting `Content-Length`, or one beside
    /// `Transfer-Encoding`, or a transfer coding other than chunked last.
    BadLength,
    /// A bad chunk-size line or chunk terminator.
    BadChunk,
    /// Bytes after a response that ends with the connection, or the
    /// connection ended inside a response with a known length.
    Truncated,
}

impl ResponseError {
    /// Stable `snake_case` name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            ResponseError::BadStatusLine => "bad_status_line",
            ResponseError::BadHeader => "bad_header",
            ResponseError::HeadTooLong => "head_too_long",
            ResponseError::BadLength => "bad_length",
            ResponseError::BadChunk => "bad_chunk",
            ResponseError::Truncated => "truncated",
        }
    }
}

/// A response read whole.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Its status code (the final one: interim 1xx are skipped).
    pub status: u16,
    /// Body bytes (after removing the chunked coding).
    pub body_len: u64,
    /// The server closes the connection after it.
    pub close: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    /// In the status line.
    Status,
    /// In the header block, at the start of a line.
    HeaderStart,
    /// In a header line.
    Header,
    /// The LF after the blank line's CR.
    HeadEnd,
    /// Body with a length: `n` bytes left.
    Body(u64),
    /// Body until the connection closes.
    UntilClose,
    /// Chunk-size line (digits read so far in `chunk`).
    ChunkSize,
    /// Chunk extension: skipped to the end of the line.
    ChunkExt,
    /// Chunk data: `n` bytes left, then CRLF.
    ChunkData(u64),
    /// The CR / LF after chunk data (`0`: CR expected, `1`: LF).
    ChunkEnd(u8),
    /// Trailer section, at the start of a line.
    TrailerStart,
    /// In a trailer line.
    Trailer,
    /// The LF after the final blank line's CR.
    TrailerEnd,
    /// Between responses.
    Idle,
    /// An error was returned: every later call returns it again.
    Failed(ResponseError),
}

/// Reads the responses of one connection. See the module docs.
#[derive(Clone, Debug)]
pub struct ResponseReader {
    state: State,
    /// The request this response answers was a `HEAD`.
    head_request: bool,
    // The response being read.
    status: u16,
    minor: u8,
    head_len: usize,
    content_length: Option<u64>,
    chunked: bool,
    te_other: bool,
    close: bool,
    keep_alive: bool,
    body_len: u64,
    chunk: u64,
    chunk_digits: u8,
    line: [u8; LINE],
    line_len: usize,
    responses: u64,
}

impl Default for ResponseReader {
    fn default() -> Self {
        ResponseReader::new()
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = s {
        s = rest;
    }
    s
}

fn has_token(list: &[u8], token: &[u8]) -> bool {
    list.split(|&b| b == b',')
        .any(|t| trim(t).eq_ignore_ascii_case(token))
}

impl ResponseReader {
    /// A reader waiting for the first response.
    pub const fn new() -> ResponseReader {
        ResponseReader {
            state: State::Idle,
            head_request: false,
            status: 0,
            minor: 1,
            head_len: 0,
            content_length: None,
            chunked: false,
            te_other: false,
            close: false,
            keep_alive: false,
            body_len: 0,
            chunk: 0,
            chunk_digits: 0,
            line: [0; LINE],
            line_len: 0,
            responses: 0,
        }
    }

    /// The next response answers a `HEAD` request (no body, whatever its
    /// headers say). Set before its first byte arrives.
    pub fn expect_head(&mut self, head: bool) {
        self.head_request = head;
    }

    /// Responses read whole so far.
    pub fn responses(&self) -> u64 {
        self.responses
    }

    /// Whether a response is under way (some of it read, not all).
    pub fn in_response(&self) -> bool {
        !matches!(self.state, State::Idle | State::Failed(_))
    }

    fn start(&mut self) {
        self.state = State::Status;
        self.status = 0;
        self.minor = 1;
        self.head_len = 0;
        self.content_length = None;
        self.chunked = false;
        self.te_other = false;
        self.close = false;
        self.keep_alive = false;
        self.body_len = 0;
        self.line_len = 0;
    }

    fn fail(&mut self, e: ResponseError) -> ResponseError {
        self.state = State::Failed(e);
        e
    }

    fn done(&mut self) -> Response {
        self.state = State::Idle;
        self.responses += 1;
        self.head_request = false;
        Response {
            status: self.status,
            body_len: self.body_len,
            close: self.close || (self.minor == 0 && !self.keep_alive),
        }
    }

    /// The status line, whole in `line` (or cut at [`LINE`] bytes).
    fn status_line(&mut self) -> Result<(), ResponseError> {
        let l = &self.line[..self.line_len];
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        let ok = l.len() >= 12
            && l.starts_with(b"HTTP/1.")
            && matches!(l[7], b'0' | b'1')
            && l[8] == b' '
            && l[9..12].iter().all(u8::is_ascii_digit)
            && l.get(12).is_none_or(|&b| b == b' ');
        if !ok {
            return Err(ResponseError::BadStatusLine);
        }
        self.minor = l[7] - b'0';
        self.status = l[9..12]
            .iter()
            .fold(0u16, |a, &d| a * 10 + u16::from(d - b'0'));
        if self.status < 100 {
            return Err(ResponseError::BadStatusLine);
        }
        Ok(())
    }

    /// A header line, whole or cut at [`LINE`] bytes (framing headers are
    /// short: a cut one is not framing).
    fn header_line(&mut self, whole: bool) -> Result<(), ResponseError> {
        let l = &self.line[..self.line_len];
        let Some(colon) = l.iter().position(|&b| b == b':') else {
            return if whole {
                Err(ResponseError::BadHeader)
            } else {
                Ok(())
            };
        };
        let name = &l[..colon];
        if name.is_empty() || name.iter().any(|&b| b == b' ' || b == b'\t') {
            return Err(ResponseError::BadHeader);
        }
        let value = trim(&l[colon + 1..]);
        if name.eq_ignore_ascii_case(b"content-length") {
            if !whole || value.is_empty() || value.len() > 18 {
                return Err(ResponseError::BadLength);
            }
            // A list of equal values is one value (RFC 9110 §8.6).
            let mut n: Option<u64> = None;
            for v in value.split(|&b| b == b',') {
                let v = trim(v);
                if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
                    return Err(ResponseError::BadLength);
                }
                let x = v.iter().fold(0u64, |a, &d| a * 10 + u64::from(d - b'0'));
                if n.is_some_and(|n| n != x) {
                    return Err(ResponseError::BadLength);
                }
                n = Some(x);
            }
            if self.content_length.is_some_and(|c| Some(c) != n) {
                return Err(ResponseError::BadLength);
            }
            self.content_length = n;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if !whole {
                return Err(ResponseError::BadLength);
            }
            // Chunked must be the last coding; earlier ones are the
            // body's (counted as they come).
            let last = value.rsplit(|&b| b == b',').next().map(trim);
            if last.is_some_and(|t| t.eq_ignore_ascii_case(b"chunked")) {
                self.chunked = true;
                self.te_other = false;
            } else {
                self.chunked = false;
                self.te_other = true;
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            if has_token(value, b"close") {
                self.close = true;
            }
            if has_token(value, b"keep-alive") {
                self.keep_alive = true;
            }
        }
        Ok(())
    }

    /// The head ended: where the body goes. `Some(r)`: the response is
    /// whole (no body).
    fn head_done(&mut self) -> Result<Option<Response>, ResponseError> {
        if (100..200).contains(&self.status) && self.status != 101 {
            // Interim: the final response follows.
            self.start();
            return Ok(None);
        }
        if self.head_request || self.status == 204 || self.status == 304 || self.status == 101 {
            return Ok(Some(self.done()));
        }
        if self.te_other {
            // RFC 9112 §6.3: a response with a transfer coding other than
            // chunked last runs until the connection closes.
            self.state = State::UntilClose;
            self.close = true;
            return Ok(None);
        }
        if self.chunked {
            if self.content_length.is_some() {
                return Err(ResponseError::BadLength);
            }
            self.state = State::ChunkSize;
            self.chunk = 0;
            self.chunk_digits = 0;
            return Ok(None);
        }
        match self.content_length {
            Some(0) => Ok(Some(self.done())),
            Some(n) => {
                self.state = State::Body(n);
                Ok(None)
            }
            None => {
                self.state = State::UntilClose;
                self.close = true;
                Ok(None)
            }
        }
    }

    fn push_line(&mut self, b: u8) {
        if self.line_len < LINE {
            self.line[self.line_len] = b;
            self.line_len += 1;
        }
    }

    /// Reads `data`, the next bytes of the connection. Returns how many
    /// bytes it consumed, the body bytes among them, and the response they
    /// completed, if any: the caller feeds the rest (the next response's
    /// bytes, if the server sent them early) after acting on it.
    pub fn feed(&mut self, data: &[u8]) -> Result<(usize, u64, Option<Response>), ResponseError> {
        let mut i = 0;
        let mut body = 0u64;
        while i < data.len() {
            match self.state {
                State::Failed(e) => return Err(e),
                State::Idle => self.start(),
                State::Body(n) => {
                    let k = (n.min((data.len() - i) as u64)) as usize;
                    i += k;
                    body += k as u64;
                    self.body_len += k as u64;
                    if n == k as u64 {
                        return Ok((i, body, Some(self.done())));
                    }
                    self.state = State::Body(n - k as u64);
                }
                State::UntilClose => {
                    let k = data.len() - i;
                    i += k;
                    body += k as u64;
                    self.body_len += k as u64;
                }
                State::ChunkData(n) => {
                    let k = (n.min((data.len() - i) as u64)) as usize;
                    i += k;
                    body += k as u64;
                    self.body_len += k as u64;
                    self.state = if n == k as u64 {
                        State::ChunkEnd(0)
                    } else {
                        State::ChunkData(n - k as u64)
                    };
                }
                _ => {
                    let b = data[i];
                    i += 1;
                    match self.byte(b) {
                        Ok(Some(r)) => return Ok((i, body, Some(r))),
                        Ok(None) => {}
                        Err(e) => return Err(self.fail(e)),
                    }
                }
            }
        }
        Ok((i, body, None))
    }

    /// One byte of the head, a chunk-size line, a chunk end or a trailer.
    fn byte(&mut self, b: u8) -> Result<Option<Response>, ResponseError> {
        if matches!(
            self.state,
            State::Status | State::HeaderStart | State::Header | State::HeadEnd
        ) {
            self.head_len += 1;
            if self.head_len > MAX_HEAD {
                return Err(ResponseError::HeadTooLong);
            }
        }
        match self.state {
            State::Status => {
                if b == b'\n' {
                    self.status_line()?;
                    self.line_len = 0;
                    self.state = State::HeaderStart;
                } else {
                    self.push_line(b);
                }
            }
            State::HeaderStart => match b {
                b'\r' => self.state = State::HeadEnd,
                b'\n' => return self.head_done(),
                b' ' | b'\t' => return Err(ResponseError::BadHeader), // obs-fold
                _ => {
                    self.line_len = 0;
                    self.push_line(b);
                    self.state = State::Header;
                }
            },
            State::Header => {
                if b == b'\n' {
                    let whole = self.line_len < LINE;
                    self.header_line(whole)?;
                    self.line_len = 0;
                    self.state = State::HeaderStart;
                } else {
                    self.push_line(b);
                }
            }
            State::HeadEnd => {
                if b != b'\n' {
                    return Err(ResponseError::BadHeader);
                }
                return self.head_done();
            }
            State::ChunkSize => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    if self.chunk_digits >= 15 {
                        return Err(ResponseError::BadChunk);
                    }
                    let d = (b as char).to_digit(16).unwrap_or(0);
                    self.chunk = self.chunk * 16 + u64::from(d);
                    self.chunk_digits += 1;
                }
                b';' | b' ' | b'\t' if self.chunk_digits > 0 => self.state = State::ChunkExt,
                b'\r' if self.chunk_digits > 0 => self.state = State::ChunkExt,
                b'\n' if self.chunk_digits > 0 => self.chunk_line_done(),
                _ => return Err(ResponseError::BadChunk),
            },
            State::ChunkExt if b == b'\n' => self.chunk_line_done(),
            State::ChunkEnd(0) => match b {
                b'\r' => self.state = State::ChunkEnd(1),
                b'\n' => self.next_chunk(),
                _ => return Err(ResponseError::BadChunk),
            },
            State::ChunkEnd(_) => {
                if b != b'\n' {
                    return Err(ResponseError::BadChunk);
                }
                self.next_chunk();
            }
            State::TrailerStart => match b {
                b'\r' => self.state = State::TrailerEnd,
                b'\n' => return Ok(Some(self.done())),
                _ => self.state = State::Trailer,
            },
            State::Trailer if b == b'\n' => self.state = State::TrailerStart,
            State::TrailerEnd => {
                if b != b'\n' {
                    return Err(ResponseError::BadChunk);
                }
                return Ok(Some(self.done()));
            }
            _ => {}
        }
        Ok(None)
    }

    fn chunk_line_done(&mut self) {
        self.state = if self.chunk == 0 {
            State::TrailerStart
        } else {
            State::ChunkData(self.chunk)
        };
    }

    fn next_chunk(&mut self) {
        self.chunk = 0;
        self.chunk_digits = 0;
        self.state = State::ChunkSize;
    }

    /// The connection ended (the server's FIN). `Ok(Some(r))`: a response
    /// delimited by the close is whole; `Ok(None)`: none was under way;
    /// an error: one was cut short.
    pub fn finish(&mut self) -> Result<Option<Response>, ResponseError> {
        match self.state {
            State::Idle => Ok(None),
            State::UntilClose => Ok(Some(self.done())),
            State::Failed(e) => Err(e),
            _ => Err(self.fail(ResponseError::Truncated)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `data` in pieces of `step` bytes; returns the responses.
    fn read(
        r: &mut ResponseReader,
        data: &[u8],
        step: usize,
    ) -> Result<Vec<Response>, ResponseError> {
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let piece = &rest[..step.min(rest.len())];
            let mut p = piece;
            while !p.is_empty() {
                let (n, _, done) = r.feed(p)?;
                p = &p[n..];
                out.extend(done);
            }
            rest = &rest[piece.len()..];
        }
        Ok(out)
    }

    const NGINX: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 06 Dec 2026 12:00:00 GMT\r\nContent-Type: text/html\r\nContent-Length: 11\r\nConnection: keep-alive\r\nX-Backend: b1\r\n\r\nbackend b1\n";

    #[test]
    fn content_length_keep_alive_in_any_pieces() {
        for step in [1, 2, 7, 64, 1000] {
            let mut r = ResponseReader::new();
            let two = [NGINX, NGINX].concat();
            let got = read(&mut r, &two, step).unwrap();
            let want = Response {
                status: 200,
                body_len: 11,
                close: false,
            };
            assert_eq!(got, vec![want, want], "step {step}");
            assert_eq!(r.responses(), 2);
            assert!(!r.in_response());
            assert_eq!(r.finish(), Ok(None));
        }
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;name=val\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: 1\r\n\r\n";
        for step in [1, 3, 100] {
            let mut r = ResponseReader::new();
            let got = read(&mut r, resp, step).unwrap();
            assert_eq!(got.len(), 1, "step {step}");
            assert_eq!(
                (got[0].status, got[0].body_len, got[0].close),
                (200, 31, false)
            );
        }
        // Bare LF line ends are tolerated.
        let mut r = ResponseReader::new();
        let got = read(
            &mut r,
            b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n",
            5,
        )
        .unwrap();
        assert_eq!(got[0].body_len, 3);
    }

    #[test]
    fn bodiless_interim_and_close_delimited() {
        // 100 Continue, then the final response.
        let mut r = ResponseReader::new();
        let got = read(
            &mut r,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 99\r\n\r\n",
            4,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![Response {
                status: 204,
                body_len: 0,
                close: false
            }]
        );
        // HEAD: no body whatever the length says.
        let mut r = ResponseReader::new();
        r.expect_head(true);
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n";
        assert_eq!(read(&mut r, head, 9).unwrap()[0].body_len, 0);
        // The next one is a GET again.
        let got = read(&mut r, NGINX, 9).unwrap();
        assert_eq!(got[0].body_len, 11);
        // HTTP/1.0 without a length: the body runs to the close.
        let mut r = ResponseReader::new();
        assert!(read(&mut r, b"HTTP/1.0 200 OK\r\n\r\nsome body", 3)
            .unwrap()
            .is_empty());
        assert!(r.in_response());
        assert_eq!(
            r.finish(),
            Ok(Some(Response {
                status: 200,
                body_len: 9,
                close: true
            }))
        );
        // Connection: close, HTTP/1.0 keep-alive.
        let mut r = ResponseReader::new();
        let got = read(
            &mut r,
            b"HTTP/1.1 404 Not Found\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n",
            100,
        )
        .unwrap();
        assert_eq!((got[0].status, got[0].close), (404, true));
        let got = read(
            &mut ResponseReader::new(),
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
            100,
        )
        .unwrap();
        assert!(!got[0].close);
    }

    #[test]
    fn malformed_responses_are_errors_that_stick() {
        let cases: &[(&[u8], ResponseError)] = &[
            (b"HTTP/2 200 OK\r\n", ResponseError::BadStatusLine),
            (b"HTTP/1.1 20 OK\r\n", ResponseError::BadStatusLine),
            (b"HTTP/1.1 099 Low\r\n", ResponseError::BadStatusLine),
            (b"ICY 200 OK\r\n", ResponseError::BadStatusLine),
            (
                b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
                ResponseError::BadHeader,
            ),
            (
                b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
                ResponseError::BadHeader,
            ),
            (
                b"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n",
                ResponseError::BadHeader,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
                ResponseError::BadLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                ResponseError::BadLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n",
                ResponseError::BadLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
                ResponseError::BadLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                ResponseError::BadLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                ResponseError::BadChunk,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX",
                ResponseError::BadChunk,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
                ResponseError::BadChunk,
            ),
        ];
        for (bytes, want) in cases {
            let mut r = ResponseReader::new();
            assert_eq!(
                read(&mut r, bytes, 1000),
                Err(*want),
                "{}",
                String::from_utf8_lossy(bytes)
            );
            assert_eq!(r.feed(b"HTTP/1.1 200 OK\r\n\r\n"), Err(*want), "sticks");
        }
        // Equal repeated lengths are one length.
        let got = read(
            &mut ResponseReader::new(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nab",
            1000,
        )
        .unwrap();
        assert_eq!(got[0].body_len, 2);
        // A head past the limit.
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        while big.len() <= MAX_HEAD {
            big.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
        }
        assert_eq!(
            read(&mut ResponseReader::new(), &big, 4096),
            Err(ResponseError::HeadTooLong)
        );
        // Cut short.
        let mut r = ResponseReader::new();
        read(&mut r, &NGINX[..NGINX.len() - 3], 1000).unwrap();
        assert_eq!(r.finish(), Err(ResponseError::Truncated));
    }

    #[test]
    fn long_headers_that_are_not_framing_are_skipped() {
        let mut resp = b"HTTP/1.1 200 OK\r\nSet-Cookie: ".to_vec();
        resp.extend(std::iter::repeat_n(b'a', 4000));
        resp.extend_from_slice(b"\r\nContent-Length: 4\r\n\r\nbody");
        let got = read(&mut ResponseReader::new(), &resp, 333).unwrap();
        assert_eq!(got[0].body_len, 4);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_in_any_pieces_never_panic(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
            step in 1usize..50,
        ) {
            let mut r = ResponseReader::new();
            let _ = read(&mut r, &data, step);
            let _ = r.finish();
        }

        #[test]
        fn a_valid_response_reads_the_same_in_any_pieces(
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            chunks in proptest::collection::vec(1usize..40, 1..8),
            chunked in proptest::bool::ANY,
            step in 1usize..64,
        ) {
            let mut resp = Vec::new();
            if chunked {
                resp.extend_from_slice(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
                let mut rest = &body[..];
                let mut k = 0;
                while !rest.is_empty() {
                    let n = chunks[k % chunks.len()].min(rest.len());
                    resp.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                    resp.extend_from_slice(&rest[..n]);
                    resp.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                    k += 1;
                }
                resp.extend_from_slice(b"0\r\n\r\n");
            } else {
                resp.extend_from_slice(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes());
                resp.extend_from_slice(&body);
            }
            let mut r = ResponseReader::new();
            let got = read(&mut r, &resp, step).unwrap();
            proptest::prop_assert_eq!(got, vec![Response { status: 200, body_len: body.len() as u64, close: false }]);
        }
    }
}
