//! `loadgen_client`: a `qsplice loadgen` client session against a server
//! that answers with arbitrary bytes.
//!
//! Input: a selector byte (bit 0: HTTPS, bit 1: the server closes after
//! its bytes, bits 2..7: the size of each piece the server sends), then
//! the server's bytes — an HTTP response stream (plain) or TLS records
//! (HTTPS: the client's ClientHello is answered with them). The client
//! asks for 3 requests. Invariants: no panic; the session ends (a closed
//! endpoint, every piece delivered, the exchange run to quiescence); it
//! never reports more responses than it asked for; an HTTPS session that
//! saw only fuzz bytes never completes a handshake.

use std::sync::{Arc, OnceLock};

use qsplice_loadgen::{ClientEvent, ClientSession, PassiveOpen, Responses, ServerSession};
use qsplice_tcp::{Config, Endpoint, Now, Segment, MAX_SEGS_PER_CALL};
use qsplice_tls::client::{client_config, ClientSettings, ServerName};
use qsplice_tls::{Group, TlsSession};

const REQ: &[u8] = b"GET / HTTP/1.1\r\nHost: fuzz.test\r\n\r\n";

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CFG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CFG.get_or_init(|| {
        client_config(&ClientSettings {
            groups: vec![Group::X25519, Group::P256],
            tls13: true,
            tls12: true,
            ca_pem: None,
            resumption: false,
        })
        .expect("client config")
    })
    .clone()
}

/// Moves every segment `from` emits into `to`.
fn carry(from: &mut Endpoint, to: &mut Endpoint, now: Now) {
    let mut segs: Vec<Vec<u8>> = Vec::new();
    from.output(now, MAX_SEGS_PER_CALL, |s| {
        let mut b = vec![0u8; s.len()];
        if s.write(&mut b, 40000, 80).is_some() {
            segs.push(b);
        }
        true
    });
    for b in &segs {
        if let Some(seg) = Segment::parse(b) {
            to.input(&seg, now);
        }
    }
}

pub fn loadgen_client(data: &[u8]) {
    run(data);
}

/// The body of `loadgen_client`: (responses read, TLS handshakes done).
fn run(data: &[u8]) -> (u32, u32) {
    let Some((&sel, bytes)) = data.split_first() else {
        return (0, 0);
    };
    let (tls, close, piece) = (sel & 1 != 0, sel & 2 != 0, usize::from(sel >> 2) * 64 + 1);
    let cfg = Config {
        time_wait_us: 0,
        rcv_buf: 16 * 1024,
        snd_buf: 16 * 1024,
        ..Config::default()
    };
    let mut t = 1_000_000u64;
    let now = |t: u64| Now {
        us: t,
        tsval: (t / 1000) as u32,
    };
    let mut c = ClientSession::connect(&cfg, 7, 3, false, now(t));
    if tls {
        let s = TlsSession::client(tls_config(), ServerName::try_from("fuzz.test").unwrap())
            .expect("client session");
        c = c.with_tls(s);
    }
    let (mut responses, mut handshakes) = (0u32, 0u32);
    let mut ev = |e: ClientEvent| match e {
        ClientEvent::Response { .. } => responses += 1,
        ClientEvent::TlsHandshake { .. } => handshakes += 1,
        _ => {}
    };
    // The handshake: the client's SYN answered by a passive open.
    c.step(REQ, now(t), &mut ev);
    let mut syn = None;
    c.endpoint().output(now(t), 1, |s| {
        let mut b = vec![0u8; s.len()];
        s.write(&mut b, 40000, 80);
        syn = Some(b);
        true
    });
    let syn = syn.expect("a SYN");
    let seg = Segment::parse(&syn).expect("our SYN parses");
    let po = PassiveOpen::answer(&cfg, &seg, 99, now(t)).expect("a SYN");
    let mut sa = vec![0u8; po.syn_ack().len()];
    po.syn_ack().write(&mut sa, 80, 40000);
    c.endpoint()
        .input(&Segment::parse(&sa).expect("SYN-ACK"), now(t));
    c.step(REQ, now(t), &mut ev);
    let mut ack = None;
    c.endpoint().output(now(t), MAX_SEGS_PER_CALL, |s| {
        if ack.is_none() {
            let mut b = vec![0u8; s.len()];
            s.write(&mut b, 40000, 80);
            ack = Some(b);
        }
        true
    });
    let Some(mut srv) = ack
        .as_deref()
        .and_then(Segment::parse)
        .and_then(|a| po.complete(&cfg, &a, now(t)))
    else {
        return (0, 0);
    };
    // The server sends the fuzz bytes piece by piece, reading (and
    // dropping) whatever the client sends.
    let mut chunks = bytes.chunks(piece);
    let mut closed = false;
    for _ in 0..10_000 {
        t += 1_000;
        c.step(REQ, now(t), &mut ev);
        carry(c.endpoint(), &mut srv, now(t));
        loop {
            let (a, _) = srv.recv_peek();
            let n = a.len();
            if n == 0 {
                break;
            }
            srv.recv_consume(n);
        }
        if srv.send_room() > 0 {
            match chunks.next() {
                Some(p) => {
                    srv.send(p);
                }
                None if close && !closed => {
                    closed = true;
                    srv.close();
                }
                None => {}
            }
        }
        carry(&mut srv, c.endpoint(), now(t));
        c.step(REQ, now(t), &mut ev);
        if c.is_done() {
            break;
        }
        if chunks.len() == 0
            && (closed || !close)
            && srv.poll_at().is_none()
            && c.poll_at().is_none()
        {
            break;
        }
    }
    assert!(responses <= 3, "more responses than requests: {responses}");
    if tls {
        assert_eq!(
            handshakes, 0,
            "a TLS handshake completed against fuzz bytes"
        );
    }
    (responses, handshakes)
}

/// The server's responses in `loadgen_server`: the default and two paths
/// (distinct bodies, so a response stream decomposes one way).
const PATHS: [(&str, &[u8]); 2] = [
    ("/a", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"),
    ("/1m.bin", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nMM"),
];
const DEFAULT: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nddd";

/// The response index (0: default, k: `PATHS[k - 1]`) the request heads in
/// `wire` select, by a reference reading: CR and LF before a head are
/// skipped; a head ends at the first CR LF CR LF after its start; its
/// target is what follows its first space, up to a space, `?`, CR or LF;
/// its body — skipped — is as long as the last of its lines that starts
/// with `content-length:` (any case) says: blanks, then the digits up to
/// the first other byte (saturating; a line without digits says nothing).
fn expected_indices(wire: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    loop {
        while pos < wire.len() && matches!(wire[pos], b'\r' | b'\n') {
            pos += 1;
        }
        let Some(end) = wire[pos..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|e| pos + e + 4)
        else {
            return out;
        };
        let head = &wire[pos..end];
        let k = head.iter().position(|&b| b == b' ').map_or(0, |sp| {
            let t = &head[sp + 1..];
            let e = t
                .iter()
                .position(|b| matches!(b, b' ' | b'?' | b'\r' | b'\n'))
                .unwrap_or(t.len());
            PATHS
                .iter()
                .position(|(p, _)| p.as_bytes() == &t[..e])
                .map_or(0, |k| k + 1)
        });
        out.push(k);
        let mut body = 0u64;
        // Lines end at LF; the last line (after the final LF) is empty.
        for line in head.split(|&b| b == b'\n') {
            let name = b"content-length:";
            if line.len() < name.len() || !line[..name.len()].eq_ignore_ascii_case(name) {
                continue;
            }
            let v = &line[name.len()..];
            let v = &v[v
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t'))
                .unwrap_or(v.len())..];
            let digits = v.iter().take_while(|b| b.is_ascii_digit());
            let mut n = None;
            for d in digits {
                n = Some(
                    n.unwrap_or(0u64)
                        .saturating_mul(10)
                        .saturating_add(u64::from(d - b'0')),
                );
            }
            if let Some(n) = n {
                body = n;
            }
        }
        pos = end.saturating_add(usize::try_from(body).unwrap_or(usize::MAX));
        if pos >= wire.len() {
            return out;
        }
    }
}

/// `loadgen_server`: a loadgen server session (a default response and two
/// paths) reading arbitrary client bytes.
///
/// Input: a selector byte (bits 0..5: the size of each piece the client
/// sends, bit 6: the client closes after its bytes), then the client's
/// bytes — request heads, pipelined or not, with `Content-Length`
/// bodies or not, or anything. Invariants: no
/// panic; the session ends or goes quiet; what the client receives is a
/// sequence of whole responses (the last may be cut short by the end of
/// the run), the i-th being the one the i-th request head's path selects
/// by an independent reading ([`expected_indices`]) — or the default,
/// which requests pipelined beyond 16 unanswered ones get; never more
/// responses than request heads.
pub fn loadgen_server(data: &[u8]) {
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    let (piece, close) = (usize::from(sel & 0x3f) * 16 + 1, sel & 0x40 != 0);
    let cfg = Config {
        time_wait_us: 0,
        rcv_buf: 16 * 1024,
        snd_buf: 16 * 1024,
        ..Config::default()
    };
    let mut resp = Responses::new(DEFAULT.to_vec());
    for (p, r) in PATHS {
        resp.add_path(p, r.to_vec());
    }
    let mut t = 1_000_000u64;
    let now = |t: u64| Now {
        us: t,
        tsval: (t / 1000) as u32,
    };
    // The handshake: an active endpoint's SYN answered by a passive open.
    let mut cli = Endpoint::connect(&cfg, 7, now(t));
    let mut syn = None;
    cli.output(now(t), 1, |s| {
        let mut b = vec![0u8; s.len()];
        s.write(&mut b, 40000, 80);
        syn = Some(b);
        true
    });
    let syn = syn.expect("a SYN");
    let po = PassiveOpen::answer(&cfg, &Segment::parse(&syn).expect("SYN"), 99, now(t))
        .expect("answered");
    let mut sa = vec![0u8; po.syn_ack().len()];
    po.syn_ack().write(&mut sa, 80, 40000);
    cli.input(&Segment::parse(&sa).expect("SYN-ACK"), now(t));
    let mut ack = None;
    cli.output(now(t), MAX_SEGS_PER_CALL, |s| {
        if ack.is_none() {
            let mut b = vec![0u8; s.len()];
            s.write(&mut b, 40000, 80);
            ack = Some(b);
        }
        true
    });
    let Some(ep) = ack
        .as_deref()
        .and_then(Segment::parse)
        .and_then(|a| po.complete(&cfg, &a, now(t)))
    else {
        return;
    };
    let mut srv = ServerSession::new(ep);
    let mut got = Vec::new();
    let mut chunks = bytes.chunks(piece);
    let mut closed = false;
    for _ in 0..10_000 {
        t += 1_000;
        if cli.send_room() > 0 {
            match chunks.next() {
                Some(p) => {
                    cli.send(p);
                }
                None if close && !closed => {
                    closed = true;
                    cli.close();
                }
                None => {}
            }
        }
        carry(&mut cli, srv.endpoint(), now(t));
        srv.step(&resp);
        carry(srv.endpoint(), &mut cli, now(t));
        srv.step(&resp);
        loop {
            let (a, _) = cli.recv_peek();
            let n = a.len();
            if n == 0 {
                break;
            }
            got.extend_from_slice(a);
            cli.recv_consume(n);
        }
        if srv.is_closed() {
            break;
        }
        if chunks.len() == 0
            && (closed || !close)
            && srv.poll_at().is_none()
            && cli.poll_at().is_none()
        {
            break;
        }
    }
    let want = expected_indices(bytes);
    let body = |k: usize| if k == 0 { DEFAULT } else { PATHS[k - 1].1 };
    let mut at = 0;
    let mut i = 0;
    while at < got.len() {
        let rest = &got[at..];
        let k = *want.get(i).unwrap_or_else(|| {
            panic!("response {i} without a request head ({} heads)", want.len())
        });
        let r = [body(k), DEFAULT]
            .into_iter()
            .find(|r| rest.starts_with(r) || r.starts_with(rest))
            .unwrap_or_else(|| panic!("response {i}: not the one its path selects ({k})"));
        at += r.len().min(rest.len());
        i += 1;
    }
    assert!(
        srv.requests() as usize == want.len() || !closed,
        "the server counted {} heads, the reference {}",
        srv.requests(),
        want.len()
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_harness_reaches_responses() {
        // Three well-formed responses in 65-byte pieces, then the close:
        // all three are read.
        let mut d = vec![(1 << 2) | 2];
        for _ in 0..3 {
            d.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        }
        assert_eq!(super::run(&d), (3, 0));
        // Chunked, one byte at a time.
        let mut d = vec![0u8];
        d.extend_from_slice(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        );
        assert_eq!(super::run(&d).0, 1);
        // HTTPS against plaintext: no handshake, no response.
        let mut d = vec![1u8];
        d.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(super::run(&d), (0, 0));
    }

    #[test]
    fn the_server_harness_checks_paths() {
        assert_eq!(
            super::expected_indices(
                b"GET /1m.bin HTTP/1.1\r\n\r\nGET /a?x HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"
            ),
            [2, 1, 0]
        );
        // Pipelined requests in 17-byte pieces, then the close: runs clean.
        let mut d = vec![1 | 0x40];
        for p in ["/a", "/1m.bin", "/zz", "/a?q"] {
            d.extend_from_slice(format!("GET {p} HTTP/1.1\r\nHost: f\r\n\r\n").as_bytes());
        }
        super::loadgen_server(&d);
    }
}
