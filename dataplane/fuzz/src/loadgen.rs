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

use qsplice_loadgen::{ClientEvent, ClientSession, PassiveOpen};
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
}
